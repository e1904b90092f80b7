/* core/image.h — 8-bit images: PNG writing with text chunks (libpng), reading PNG/JPEG/BMP/TGA
 * (stb_image), reading PNG text chunks back, and conversion to and from the planar floats the
 * VAE works in.
 *
 *   image im = {0};
 *   if (img_from_chw(&im, rgb, 3, h, w, &e)) ...;             // rgb: [3, h, w] in [-1, 1]
 *   img_text meta[] = { {"prompt", "a red circle"}, {"seed", "42"} };
 *   if (img_save_png(&im, "out/x.png", meta, 2, &e)) fprintf(stderr, "%s\n", e.msg);
 *   img_free(&im);
 *
 *   img_text *t; int n;
 *   if (img_read_png_text("out/x.png", &t, &n, &e) == DIT_OK) { ...; img_free_text(t, n); }
 *
 * Error messages are one line and start with the path ("out/x.png: cannot create file: No such
 * file or directory"). Nothing here prints, exits or keeps global state; stb_image keeps its
 * failure reason in a thread-local, which is read right after each failing call.
 */
#ifndef DIT_CORE_IMAGE_H
#define DIT_CORE_IMAGE_H

#include "err.h"

/* Largest width or height img_load accepts (checked from the header, before decoding). */
#define IMG_MAX_SIDE 16384

/* c channels interleaved, 8 bits each: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. The first pixel is
 * the top-left one; rows are contiguous (row stride w*c bytes). px is owned by the image. */
typedef struct {
    int w, h, c;
    unsigned char *px;
} image;

/* Allocate a zeroed w×h×c image (w, h >= 1, c in 1..4). On failure *im is {0}. */
dit_status img_alloc(image *im, int w, int h, int c, dit_err *e);
/* Free the pixels and reset *im to {0}. Safe on {0} and NULL. */
void img_free(image *im);

/* A PNG text chunk. Both strings are UTF-8.
 * key:   1–79 characters, each representable in Latin-1 and printable (U+0020–U+007E,
 *        U+00A1–U+00FF), no leading, trailing or consecutive spaces (PNG spec 11.3.4.2).
 * value: any valid UTF-8. Pure printable ASCII plus '\n' is written as tEXt, anything else as
 *        iTXt; values longer than 1024 bytes are compressed (zTXt / compressed iTXt). */
typedef struct {
    const char *key;
    const char *value;
} img_text;

/* Write im as an 8-bit PNG (gray, gray+alpha, RGB or RGBA from im->c) with the n_text text
 * chunks in the given order, placed before the image data. The file appears complete or not at
 * all: the data goes to a temporary file in the same directory (path + ".tmp-XXXXXX", mode
 * 0666 & ~umask), which is flushed, synced and renamed over path; on any failure it is removed.
 * Errors: DIT_E_ARG (bad image, key or value; checked before anything is created), DIT_E_IO
 * (cannot create, write or rename; the message carries strerror), DIT_E_BACKEND (libpng
 * refused), DIT_E_OOM. libpng warnings are dropped on success and never printed. */
dit_status img_save_png(const image *im, const char *path, const img_text *text, int n_text,
                        dit_err *e);

/* Read every tEXt, zTXt and iTXt chunk of a PNG (before and after the image data, in file
 * order) as owned UTF-8 copies: tEXt/zTXt keys and values are converted from Latin-1, iTXt
 * values are returned as stored. The image data is decoded (and so validated) but not kept.
 * With no text, *text = NULL and *n = 0. Free with img_free_text(*text, *n). */
dit_status img_read_png_text(const char *path, img_text **text, int *n, dit_err *e);
void img_free_text(img_text *text, int n);

/* Load a PNG, JPEG, BMP or TGA file. want_c = 0 keeps the stored channel count (a paletted PNG
 * gives 3 or 4); 1..4 converts (stb_image rules: gray = (77 r + 150 g + 29 b) >> 8, missing
 * alpha = 255). 16-bit PNGs are reduced to 8 bits. The format is recognised from the magic
 * bytes (TGA, which has none, by its header). Checked before decoding: the size (sides above
 * IMG_MAX_SIDE are refused), PNG chunk lengths, critical-chunk CRCs and IEND, and JPEG Huffman
 * tables (stb_image 2.27 overflows on oversized ones).
 * Errors: DIT_E_IO (missing or unreadable file), DIT_E_FORMAT (empty file, unknown format,
 * corrupt or truncated data), DIT_E_UNSUPPORTED (GIF, WebP, TIFF, ... or too large), DIT_E_OOM.
 * On failure *out is {0}. */
dit_status img_load(image *out, const char *path, int want_c, dit_err *e);

/* Planar float [c, h, w] in [-1, 1] -> new 8-bit interleaved image, as diffusers
 * `numpy_to_pil(((x / 2 + 0.5).clamp(0, 1)))`: in float32,
 *     v = clamp(x * 0.5 + 0.5, 0, 1);  byte = round_half_to_even(v * 255)
 * so -1 -> 0, 0 -> 128 (127.5 rounds to even), 1 -> 255; NaN -> 0. c in 1..4. */
dit_status img_from_chw(image *out, const float *chw, int c, int h, int w, dit_err *e);
/* 8-bit interleaved image -> planar float [im->c, im->h, im->w]:
 *     x = byte / 127.5 - 1   (float32; bit-identical to diffusers' 2 * (byte / 255) - 1)
 * so 0 -> -1, 255 -> 1. img_from_chw(img_to_chw(im)) gives im back exactly. */
void img_to_chw(const image *im, float *chw);

#endif
