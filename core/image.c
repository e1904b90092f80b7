/* core/image.c — see image.h.
 *
 * Writing and text reading go through libpng's full API (the simplified png_image API cannot
 * write text chunks). libpng reports errors by longjmp; the one setjmp lives in png_protected(),
 * and everything the guarded code allocates is kept in a job struct, so no local needs to be
 * volatile and nothing leaks when libpng bails out.
 *
 * Decoding goes through stb_image, instantiated here only (static, so its symbols stay private).
 * We read the file ourselves and recognise the format from its magic bytes first, so the common
 * failures get specific messages; for PNG we also walk the chunks and check the CRCs of the
 * critical ones, which stb_image skips.
 */
/* stb_image first, so its parameter names cannot shadow our typedefs. STB_IMAGE_STATIC keeps
 * its API private to this file. STBI_NO_GIF is also implied by STBI_ONLY_*, but only after the
 * GIF prototype, which would then be "declared static but never defined"; the same goes for
 * stbi_set_unpremultiply_on_load_thread, defined under another name in v2.27, hence the alias
 * (harmless where the names agree). */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_TGA
#define STBI_NO_GIF
#define STBI_NO_STDIO  /* files are read by read_file() */
#define STBI_NO_LINEAR /* no float API */
#define STBI_NO_HDR
#define stbi_set_unpremultiply_on_load_thread stbi__unpremultiply_on_load_thread
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image.h>
#pragma GCC diagnostic pop
#undef stbi_set_unpremultiply_on_load_thread

#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <png.h>
#include <zlib.h>

#if !defined(PNG_WRITE_iTXt_SUPPORTED) || !defined(PNG_READ_iTXt_SUPPORTED) || \
    !defined(PNG_TEXT_SUPPORTED)
#error "libpng without text chunk (iTXt) support"
#endif

#define TEXT_COMPRESS_OVER 1024          /* values longer than this are compressed */
#define IMG_MAX_FILE (1024u * 1024u * 1024u) /* stb_image takes an int length */

/* ---------------------------------------------------------------- images */

dit_status img_alloc(image *im, int w, int h, int c, dit_err *e)
{
    if (!im) return err_set(e, DIT_E_ARG, "img_alloc: NULL image");
    *im = (image){0};
    if (w < 1 || h < 1 || c < 1 || c > 4)
        return err_set(e, DIT_E_ARG, "img_alloc: bad image size %dx%d with %d channels", w, h, c);
    if ((size_t)w > SIZE_MAX / (size_t)h / (size_t)c)
        return err_set(e, DIT_E_OOM, "img_alloc: %dx%dx%d image does not fit in memory", w, h, c);
    im->px = calloc((size_t)w * (size_t)h * (size_t)c, 1);
    if (!im->px)
        return err_set(e, DIT_E_OOM, "img_alloc: out of memory for a %dx%dx%d image", w, h, c);
    im->w = w;
    im->h = h;
    im->c = c;
    return DIT_OK;
}

void img_free(image *im)
{
    if (!im) return;
    free(im->px);
    *im = (image){0};
}

/* ---------------------------------------------------------------- text helpers */

/* Decode one UTF-8 sequence at *p (advancing it); -1 when malformed (overlong, surrogate,
 * beyond U+10FFFF, truncated). */
static long utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    long cp;
    int n;
    if (s[0] < 0x80) { *p = s + 1; return s[0]; }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) { cp = s[0] & 0x1F; n = 1; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { cp = s[0] & 0x0F; n = 2; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { cp = s[0] & 0x07; n = 3; }
    else return -1;
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1; /* also stops at the terminating NUL */
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const long min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *p = s + 1 + n;
    return cp;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p)
        if (utf8_next(&p) < 0) return 0;
    return 1;
}

/* tEXt-safe: printable ASCII and '\n' only, so Latin-1 and UTF-8 readers agree. */
static int text_is_plain_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 || *p > 0x7E) && *p != '\n') return 0;
    return 1;
}

/* Check a UTF-8 key against the PNG keyword rules and write its Latin-1 form (NUL-terminated)
 * into out[80]. Returns NULL when valid, else the reason. */
static const char *key_to_latin1(const char *key, char out[80])
{
    const unsigned char *p = (const unsigned char *)key;
    int n = 0;
    long prev = -1;
    if (!*p) return "is empty";
    while (*p) {
        long cp = utf8_next(&p);
        if (cp < 0) return "is not valid UTF-8";
        if (!((cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xFF)))
            return "has a character that is not printable Latin-1";
        if (cp == ' ' && (n == 0 || prev == ' ')) return n ? "has consecutive spaces" : "starts with a space";
        if (n == 79) return "is longer than 79 characters";
        out[n++] = (char)(unsigned char)cp;
        prev = cp;
    }
    if (prev == ' ') return "ends with a space";
    out[n] = '\0';
    return NULL;
}

static char *latin1_to_utf8(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += *p < 0x80 ? 1 : 2;
    char *out = malloc(n + 1), *q = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x80) {
            *q++ = (char)*p;
        } else {
            *q++ = (char)(0xC0 | (*p >> 6));
            *q++ = (char)(0x80 | (*p & 0x3F));
        }
    }
    *q = '\0';
    return out;
}

/* ---------------------------------------------------------------- libpng glue */

typedef struct {
    char msg[200];  /* libpng's error message */
    char warn[120]; /* its first warning, reported only if an error follows */
    int err_no;     /* errno of a failed read/write, 0 otherwise */
    int oom, eof;   /* out of memory; input ended early */
} png_diag;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_diag *d = png_get_error_ptr(png);
    snprintf(d->msg, sizeof d->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    png_diag *d = png_get_error_ptr(png);
    if (!d->warn[0]) snprintf(d->warn, sizeof d->warn, "%s", msg);
}

/* The only setjmp in dit: run(png, job), returning 0, or -1 when libpng raised an error.
 * run() keeps whatever it allocates in *job, and none of this function's locals changes after
 * setjmp, so nothing needs to be volatile. */
static int png_protected(png_structp png, void (*run)(png_structp, void *), void *job)
{
    if (setjmp(png_jmpbuf(png))) return -1;
    run(png, job);
    return 0;
}

/* "path: <what>: <libpng message> (after warning: ...)". code is the status for libpng's own
 * errors: DIT_E_FORMAT when reading, DIT_E_BACKEND when writing (bad state, libpng's OOM). */
static dit_status png_fail(dit_err *e, dit_status code, const char *path, const char *what,
                           const png_diag *d)
{
    if (d->oom) return err_set(e, DIT_E_OOM, "%s: out of memory", path);
    if (d->err_no) return err_set(e, DIT_E_IO, "%s: %s: %s", path, what, strerror(d->err_no));
    if (d->eof) return err_set(e, DIT_E_FORMAT, "%s: truncated PNG: unexpected end of file", path);
    if (d->warn[0])
        return err_set(e, code, "%s: %s: %s (after warning: %s)", path, what, d->msg, d->warn);
    return err_set(e, code, "%s: %s: %s", path, what, d->msg);
}

/* ---------------------------------------------------------------- PNG writing */

typedef struct {
    png_diag diag; /* first: the error pointer */
    FILE *f;
    png_infop info;
    const image *im;
    png_text *text;
    int n_text;
} png_write_job;

static void png_write_cb(png_structp png, png_bytep data, size_t len)
{
    png_write_job *j = png_get_io_ptr(png);
    errno = 0;
    if (fwrite(data, 1, len, j->f) != len) {
        j->diag.err_no = errno ? errno : EIO;
        png_error(png, "write failed");
    }
}

static void png_flush_cb(png_structp png)
{
    (void)png; /* flushed once, at the end, in img_save_png */
}

static void png_write_run(png_structp png, void *arg)
{
    static const int color_type[5] = { 0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA };
    png_write_job *j = arg;
    const image *im = j->im;
    png_set_write_fn(png, j, png_write_cb, png_flush_cb);
    png_set_IHDR(png, j->info, (png_uint_32)im->w, (png_uint_32)im->h, 8, color_type[im->c],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (j->n_text) png_set_text(png, j->info, j->text, j->n_text);
    png_write_info(png, j->info); /* IHDR, then the text chunks in order */
    size_t stride = (size_t)im->w * (size_t)im->c;
    for (int y = 0; y < im->h; y++) png_write_row(png, im->px + (size_t)y * stride);
    png_write_end(png, NULL);
}

/* Create path + ".tmp-XXXXXX" exclusively with mode 0666 (the umask applies, as for a plain
 * fopen; mkstemp would give 0600). Returns the fd, or -1 with errno set. */
static int open_temp(const char *path, char *tmp)
{
    size_t n = strlen(path);
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16) ^
                 (uint64_t)(uintptr_t)tmp;
    int fd = -1;
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull); /* splitmix64 */
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        memcpy(tmp, path, n);
        memcpy(tmp + n, ".tmp-", 5);
        for (int i = 0; i < 6; i++, z /= 36) tmp[n + 5 + i] = digits[z % 36];
        tmp[n + 11] = '\0';
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) break;
    }
    return fd;
}

dit_status img_save_png(const image *im, const char *path, const img_text *text, int n_text,
                        dit_err *e)
{
    if (!path || !*path) return err_set(e, DIT_E_ARG, "img_save_png: no path");
    if (!im || !im->px || im->w < 1 || im->h < 1 || im->c < 1 || im->c > 4)
        return err_set(e, DIT_E_ARG, "%s: cannot write an image of %dx%d with %d channels%s", path,
                       im ? im->w : 0, im ? im->h : 0, im ? im->c : 0,
                       im && !im->px ? " and no pixels" : "");
    if (n_text < 0 || (n_text > 0 && !text))
        return err_set(e, DIT_E_ARG, "%s: bad text chunk list (%d entries)", path, n_text);

    /* Validate and convert every chunk before touching the file system. */
    png_text *pt = n_text ? calloc((size_t)n_text, sizeof *pt) : NULL;
    char *keys = n_text ? malloc((size_t)n_text * 80) : NULL;
    char *tmp = malloc(strlen(path) + 12);
    dit_status st = DIT_OK;
    if ((n_text && (!pt || !keys)) || !tmp) {
        st = err_set(e, DIT_E_OOM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n_text; i++) {
        const char *k = text[i].key, *v = text[i].value;
        if (!k || !v) {
            st = err_set(e, DIT_E_ARG, "%s: text chunk %d has no %s", path, i, k ? "value" : "key");
            goto done;
        }
        const char *why = key_to_latin1(k, keys + (size_t)i * 80);
        if (why) {
            st = err_set(e, DIT_E_ARG, "%s: text key \"%.80s\" %s (PNG keys are 1-79 printable "
                         "Latin-1 characters without leading, trailing or double spaces)", path, k, why);
            goto done;
        }
        if (!utf8_valid(v)) {
            st = err_set(e, DIT_E_ARG, "%s: text value for key \"%s\" is not valid UTF-8", path, k);
            goto done;
        }
        int big = strlen(v) > TEXT_COMPRESS_OVER;
        pt[i].key = keys + (size_t)i * 80;
        pt[i].text = (char *)v; /* libpng copies it and never writes through it */
        pt[i].text_length = strlen(v);
        if (text_is_plain_ascii(v))
            pt[i].compression = big ? PNG_TEXT_COMPRESSION_zTXt : PNG_TEXT_COMPRESSION_NONE;
        else
            pt[i].compression = big ? PNG_ITXT_COMPRESSION_zTXt : PNG_ITXT_COMPRESSION_NONE;
    }

    int fd = open_temp(path, tmp);
    if (fd < 0) {
        st = err_set(e, DIT_E_IO, "%s: cannot create file: %s", path, strerror(errno));
        goto done;
    }
    png_write_job job = { .im = im, .text = pt, .n_text = n_text };
    job.f = fdopen(fd, "wb");
    if (!job.f) {
        st = err_set(e, DIT_E_IO, "%s: cannot create file: %s", path, strerror(errno));
        close(fd);
        goto fail_unlink;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job.diag, png_on_error,
                                              png_on_warning);
    job.info = png ? png_create_info_struct(png) : NULL;
    if (!job.info) {
        png_destroy_write_struct(&png, NULL);
        fclose(job.f);
        st = err_set(e, DIT_E_OOM, "%s: out of memory", path);
        goto fail_unlink;
    }
    int bad = png_protected(png, png_write_run, &job);
    png_destroy_write_struct(&png, &job.info);
    if (bad) {
        fclose(job.f);
        st = png_fail(e, DIT_E_BACKEND, path, "cannot write PNG", &job.diag);
        goto fail_unlink;
    }
    /* Flush, sync and close; report the first failure. */
    int err_no = 0;
    if (fflush(job.f) != 0) err_no = errno;
    if (!err_no && fsync(fileno(job.f)) != 0 && errno != EINVAL && errno != EROFS) err_no = errno;
    if (fclose(job.f) != 0 && !err_no) err_no = errno;
    if (err_no) {
        st = err_set(e, DIT_E_IO, "%s: cannot write: %s", path, strerror(err_no));
        goto fail_unlink;
    }
    if (rename(tmp, path) != 0) {
        st = err_set(e, DIT_E_IO, "%s: cannot replace file: %s", path, strerror(errno));
        goto fail_unlink;
    }
    goto done;

fail_unlink:
    unlink(tmp);
done:
    free(tmp);
    free(keys);
    free(pt);
    return st;
}

/* ---------------------------------------------------------------- PNG text reading */

typedef struct {
    png_diag diag; /* first: the error pointer */
    FILE *f;
    png_infop info;
    unsigned char *row; /* one decoded row, freed by the caller */
} png_read_job;

static void png_read_cb(png_structp png, png_bytep data, size_t len)
{
    png_read_job *j = png_get_io_ptr(png);
    errno = 0;
    if (fread(data, 1, len, j->f) != len) {
        if (ferror(j->f)) {
            j->diag.err_no = errno ? errno : EIO;
            png_error(png, "read failed");
        }
        j->diag.eof = 1;
        png_error(png, "unexpected end of file");
    }
}

/* Read the whole file so the text chunks after the image data are seen too; the rows are
 * decoded into one reused buffer. */
static void png_read_run(png_structp png, void *arg)
{
    png_read_job *j = arg;
    png_set_read_fn(png, j, png_read_cb);
    png_set_sig_bytes(png, 8);
    png_read_info(png, j->info);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, j->info);
    png_uint_32 h = png_get_image_height(png, j->info);
    j->row = malloc(png_get_rowbytes(png, j->info));
    if (!j->row) {
        j->diag.oom = 1;
        png_error(png, "out of memory");
    }
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < h; y++) png_read_row(png, j->row, NULL);
    png_read_end(png, j->info);
}

void img_free_text(img_text *text, int n)
{
    if (!text) return;
    for (int i = 0; i < n; i++) {
        free((char *)text[i].key);
        free((char *)text[i].value);
    }
    free(text);
}

dit_status img_read_png_text(const char *path, img_text **text, int *n, dit_err *e)
{
    if (!path || !text || !n) return err_set(e, DIT_E_ARG, "img_read_png_text: NULL argument");
    *text = NULL;
    *n = 0;
    png_read_job job = {0};
    job.f = fopen(path, "rb");
    if (!job.f) return err_set(e, DIT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8];
    size_t got = fread(sig, 1, 8, job.f);
    if (got == 0 && ferror(job.f)) {
        int err_no = errno;
        fclose(job.f);
        return err_set(e, DIT_E_IO, "%s: cannot read: %s", path, strerror(err_no));
    }
    if (got == 0 || png_sig_cmp(sig, 0, got) != 0) {
        fclose(job.f);
        return err_set(e, DIT_E_FORMAT, "%s: %s", path, got ? "not a PNG file" : "empty file");
    }
    if (got < 8) {
        fclose(job.f);
        return err_set(e, DIT_E_FORMAT, "%s: truncated PNG: the file is only %zu bytes", path, got);
    }

    dit_status st = DIT_OK;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job.diag, png_on_error,
                                             png_on_warning);
    job.info = png ? png_create_info_struct(png) : NULL;
    if (!job.info) {
        st = err_set(e, DIT_E_OOM, "%s: out of memory", path);
        goto done;
    }
    if (png_protected(png, png_read_run, &job)) {
        st = png_fail(e, DIT_E_FORMAT, path, "corrupt PNG", &job.diag);
        goto done;
    }
    png_textp pt = NULL;
    int count = png_get_text(png, job.info, &pt, NULL);
    if (count > 0) {
        img_text *out = calloc((size_t)count, sizeof *out);
        if (!out) {
            st = err_set(e, DIT_E_OOM, "%s: out of memory", path);
            goto done;
        }
        for (int i = 0; i < count; i++) {
            int itxt = pt[i].compression >= PNG_ITXT_COMPRESSION_NONE;
            out[i].key = latin1_to_utf8(pt[i].key);
            out[i].value = itxt ? strdup(pt[i].text ? pt[i].text : "")
                                : latin1_to_utf8(pt[i].text ? pt[i].text : "");
            if (!out[i].key || !out[i].value) {
                img_free_text(out, i + 1);
                st = err_set(e, DIT_E_OOM, "%s: out of memory", path);
                goto done;
            }
        }
        *text = out;
        *n = count;
    }
done:
    png_destroy_read_struct(&png, &job.info, NULL);
    free(job.row);
    fclose(job.f);
    return st;
}

/* ---------------------------------------------------------------- decoding */

static dit_status read_file(const char *path, unsigned char **buf, size_t *len, dit_err *e)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(e, DIT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err_no = errno;
        close(fd);
        return err_set(e, DIT_E_IO, "%s: cannot read: %s", path, strerror(err_no));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return err_set(e, DIT_E_IO, "%s: cannot read: %s", path, strerror(EISDIR));
    }
    size_t cap = S_ISREG(sb.st_mode) && sb.st_size > 0 ? (size_t)sb.st_size + 1 : 65536;
    if (cap > IMG_MAX_FILE + 1) cap = IMG_MAX_FILE + 1;
    unsigned char *b = malloc(cap);
    size_t n = 0;
    dit_status st = DIT_OK;
    if (!b) {
        st = err_set(e, DIT_E_OOM, "%s: out of memory reading the file", path);
        goto out;
    }
    for (;;) {
        if (n == cap) {
            if (cap > IMG_MAX_FILE) {
                st = err_set(e, DIT_E_UNSUPPORTED, "%s: file is larger than %u MiB", path,
                             IMG_MAX_FILE >> 20);
                goto out;
            }
            size_t ncap = cap * 2 > IMG_MAX_FILE + 1 ? IMG_MAX_FILE + 1 : cap * 2;
            unsigned char *nb = realloc(b, ncap);
            if (!nb) {
                st = err_set(e, DIT_E_OOM, "%s: out of memory reading the file", path);
                goto out;
            }
            b = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = err_set(e, DIT_E_IO, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (n > IMG_MAX_FILE) {
        st = err_set(e, DIT_E_UNSUPPORTED, "%s: file is larger than %u MiB", path, IMG_MAX_FILE >> 20);
        goto out;
    }
out:
    close(fd);
    if (st != DIT_OK) {
        free(b);
        return st;
    }
    *buf = b;
    *len = n;
    return DIT_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const unsigned char PNG_SIG[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n' };

/* Chunk type as text for messages: the 4 letters, or hex when they are not letters. */
static void chunk_name(const unsigned char *t, char out[12])
{
    int letters = 1;
    for (int i = 0; i < 4; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z'))) letters = 0;
    if (letters) snprintf(out, 12, "%c%c%c%c", t[0], t[1], t[2], t[3]);
    else snprintf(out, 12, "0x%08x", (unsigned)be32(t));
}

/* Walk the chunks of a PNG in memory: IHDR first with 13 bytes, every chunk inside the file,
 * CRCs of critical chunks right, IEND present. Fills the IHDR size. */
static dit_status png_check(const unsigned char *b, size_t n, const char *path, uint32_t *w,
                            uint32_t *h, dit_err *e)
{
    size_t off = 8;
    char name[12];
    for (int first = 1;; first = 0) {
        if (off == n)
            return err_set(e, DIT_E_FORMAT, "%s: truncated PNG: ends at byte %zu without an IEND chunk",
                           path, n);
        if (n - off < 12)
            return err_set(e, DIT_E_FORMAT, "%s: truncated PNG: chunk header at byte %zu cut off (file "
                           "is %zu bytes)", path, off, n);
        uint32_t len = be32(b + off);
        const unsigned char *type = b + off + 4;
        chunk_name(type, name);
        if (len > 0x7FFFFFFFu)
            return err_set(e, DIT_E_FORMAT, "%s: corrupt PNG: chunk %s at byte %zu has length %u",
                           path, name, off, (unsigned)len);
        if (len > n - off - 12)
            return err_set(e, DIT_E_FORMAT, "%s: truncated PNG: chunk %s at byte %zu needs %u bytes, "
                           "the file ends %zu bytes later", path, name, off, (unsigned)len + 12, n - off);
        if (name[0] == '0')
            return err_set(e, DIT_E_FORMAT, "%s: corrupt PNG: bad chunk type %s at byte %zu", path,
                           name, off);
        if (first && (memcmp(type, "IHDR", 4) != 0 || len != 13))
            return err_set(e, DIT_E_FORMAT, "%s: corrupt PNG: first chunk is %s (%u bytes), not a "
                           "13-byte IHDR", path, name, (unsigned)len);
        int critical = !(type[0] & 0x20);
        if (critical && crc32(0, type, len + 4) != be32(type + 4 + len))
            return err_set(e, DIT_E_FORMAT, "%s: corrupt PNG: CRC error in chunk %s at byte %zu", path,
                           name, off);
        if (first) {
            *w = be32(type + 4);
            *h = be32(type + 8);
        }
        if (memcmp(type, "IEND", 4) == 0) return DIT_OK;
        off += 12 + (size_t)len;
    }
}

/* stb_image 2.27 trusts the symbol counts of a JPEG Huffman table (DHT) and writes past its
 * tables when they add up to more than 256 (fixed upstream in 2.28). Walk the markers the way
 * stb does (garbage before a marker skipped, fill bytes skipped, entropy-coded data after SOS
 * skipped up to the next marker that is not a stuffed 0 or RSTn) and check every DHT before stb
 * sees the file. Other structural errors are left to stb, which reports them. */
static dit_status jpeg_check(const unsigned char *b, size_t n, const char *path, dit_err *e)
{
    size_t i = 2; /* after SOI */
    while (i < n) {
        if (b[i] != 0xFF) { i++; continue; }
        while (i < n && b[i] == 0xFF) i++;
        if (i >= n) break;
        int m = b[i++];
        if (m == 0xD9) break;                          /* EOI */
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue; /* no length */
        if (n - i < 2) break;
        size_t len = (size_t)b[i] << 8 | b[i + 1], seg = i;
        if (m == 0xC4) { /* DHT: read as stb does, bytes past the end count as 0 */
            long left = (long)len - 2;
            size_t p = seg + 2;
            while (left > 0) {
                int q = p < n ? b[p] : 0;
                p++;
                if ((q >> 4) > 1 || (q & 15) > 3) break; /* stb reports it */
                int count = 0;
                for (int k = 0; k < 16; k++, p++) count += p < n ? b[p] : 0;
                if (count > 256)
                    return err_set(e, DIT_E_FORMAT, "%s: corrupt JPEG: Huffman table at byte %zu has "
                                   "%d symbols (at most 256)", path, seg - 2, count);
                p += (size_t)count;
                left -= 17 + count;
            }
        }
        i = seg + len;
        if (m == 0xDA) /* SOS: skip the entropy-coded data */
            while (i + 1 < n) {
                if (b[i] != 0xFF) { i++; continue; }
                size_t j = i + 1;
                while (j < n && b[j] == 0xFF) j++;
                if (j < n && b[j] != 0x00 && !(b[j] >= 0xD0 && b[j] <= 0xD7)) break; /* marker at i */
                i = j + 1;
            }
    }
    return DIT_OK;
}

typedef enum { FMT_UNKNOWN, FMT_PNG, FMT_JPEG, FMT_BMP, FMT_TGA } img_format;
static const char *const FMT_NAME[] = { "unknown", "PNG", "JPEG", "BMP", "TGA" };

static int has_prefix(const unsigned char *b, size_t n, const void *magic, size_t m)
{
    return n >= m && memcmp(b, magic, m) == 0;
}

/* Name of a recognised format we do not read, or NULL. */
static const char *other_format(const unsigned char *b, size_t n)
{
    if (has_prefix(b, n, "GIF87a", 6) || has_prefix(b, n, "GIF89a", 6)) return "GIF";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "WebP";
    if (has_prefix(b, n, "II*\0", 4) || has_prefix(b, n, "MM\0*", 4)) return "TIFF";
    if (has_prefix(b, n, "8BPS", 4)) return "PSD";
    if (has_prefix(b, n, "qoif", 4)) return "QOI";
    if (has_prefix(b, n, "#?RADIANCE", 10) || has_prefix(b, n, "#?RGBE", 6)) return "Radiance HDR";
    if (has_prefix(b, n, "\xFF\x0A", 2) || has_prefix(b, n, "\0\0\0\x0CJXL \r\n\x87\n", 12))
        return "JPEG XL";
    if (has_prefix(b, n, "\0\0\0\x0CjP  \r\n\x87\n", 12)) return "JPEG 2000";
    if (n >= 12 && !memcmp(b + 4, "ftyp", 4) &&
        (!memcmp(b + 8, "avif", 4) || !memcmp(b + 8, "avis", 4) || !memcmp(b + 8, "heic", 4) ||
         !memcmp(b + 8, "heix", 4) || !memcmp(b + 8, "mif1", 4)))
        return "AVIF/HEIF";
    if (n >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' &&
        (b[2] == ' ' || b[2] == '\n' || b[2] == '\r' || b[2] == '\t'))
        return "PNM";
    return NULL;
}

static int looks_like_text(const unsigned char *b, size_t n)
{
    size_t m = n < 512 ? n : 512;
    for (size_t i = 0; i < m; i++)
        if (b[i] < 0x20 && b[i] != '\n' && b[i] != '\r' && b[i] != '\t') return 0;
    return 1; /* printable ASCII or UTF-8 */
}

/* Header of a JPEG, BMP or TGA through stb's per-format info functions (stbi_info_from_memory
 * would try every format and always report "unknown image type"). The failure reason is
 * cleared first, so a stale one is never reported. */
static int stb_header(img_format fmt, const unsigned char *b, size_t n, int *x, int *y, int *c)
{
    stbi__context s;
    stbi__start_mem(&s, b, (int)n);
    stbi__g_failure_reason = NULL;
    switch (fmt) {
    case FMT_JPEG: return stbi__jpeg_info(&s, x, y, c);
    case FMT_BMP: return stbi__bmp_info(&s, x, y, c);
    case FMT_TGA: return stbi__tga_info(&s, x, y, c);
    default: return 0;
    }
}

static const char *stb_reason(void)
{
    const char *r = stbi_failure_reason();
    return r ? r : "bad header";
}

dit_status img_load(image *out, const char *path, int want_c, dit_err *e)
{
    if (!out || !path) return err_set(e, DIT_E_ARG, "img_load: NULL argument");
    *out = (image){0};
    if (want_c < 0 || want_c > 4)
        return err_set(e, DIT_E_ARG, "%s: cannot load with %d channels (0 to 4)", path, want_c);
    unsigned char *b;
    size_t n;
    dit_status st = read_file(path, &b, &n, e);
    if (st) return st;

    img_format fmt = FMT_UNKNOWN;
    const char *other = NULL;
    uint32_t w = 0, h = 0;
    int x, y, c;
    if (n == 0) {
        st = err_set(e, DIT_E_FORMAT, "%s: empty file", path);
        goto done;
    }
    if (n < 8 && memcmp(b, PNG_SIG, n) == 0) {
        st = err_set(e, DIT_E_FORMAT, "%s: truncated PNG: the file is only %zu bytes", path, n);
        goto done;
    }
    if (has_prefix(b, n, PNG_SIG, 8)) fmt = FMT_PNG;
    else if (has_prefix(b, n, "\xFF\xD8\xFF", 3)) fmt = FMT_JPEG;
    else if (has_prefix(b, n, "BM", 2)) fmt = FMT_BMP;
    else if ((other = other_format(b, n)) != NULL) {
        st = err_set(e, DIT_E_UNSUPPORTED, "%s: not a PNG, JPEG, BMP or TGA image (%s is not "
                     "supported)", path, other);
        goto done;
    } else if (stb_header(FMT_TGA, b, n, &x, &y, &c)) {
        fmt = FMT_TGA; /* TGA has no magic bytes: only its header test can tell */
    } else {
        st = err_set(e, DIT_E_FORMAT, "%s: not a PNG, JPEG, BMP or TGA image%s", path,
                     looks_like_text(b, n) ? " (looks like text)" : "");
        goto done;
    }

    /* Size from the header, before decoding anything. */
    if (fmt == FMT_JPEG && (st = jpeg_check(b, n, path, e))) goto done;
    if (fmt == FMT_PNG) {
        if ((st = png_check(b, n, path, &w, &h, e))) goto done;
        if (w == 0 || h == 0 || w > 0x7FFFFFFFu || h > 0x7FFFFFFFu) {
            st = err_set(e, DIT_E_FORMAT, "%s: corrupt PNG: IHDR size %ux%u", path, (unsigned)w,
                         (unsigned)h);
            goto done;
        }
    } else {
        if (!stb_header(fmt, b, n, &x, &y, &c)) {
            st = err_set(e, DIT_E_FORMAT, "%s: corrupt %s header: %s", path, FMT_NAME[fmt],
                         stb_reason());
            goto done;
        }
        w = (uint32_t)x;
        h = (uint32_t)y;
    }
    if (w > IMG_MAX_SIDE || h > IMG_MAX_SIDE) {
        st = err_set(e, DIT_E_UNSUPPORTED, "%s: %s image is %ux%u pixels; at most %d per side is "
                     "supported", path, FMT_NAME[fmt], (unsigned)w, (unsigned)h, IMG_MAX_SIDE);
        goto done;
    }

    stbi__g_failure_reason = NULL;
    unsigned char *px = stbi_load_from_memory(b, (int)n, &x, &y, &c, want_c);
    if (!px) {
        const char *why = stb_reason();
        if (!strcmp(why, "outofmem"))
            st = err_set(e, DIT_E_OOM, "%s: out of memory decoding a %ux%u %s image", path,
                         (unsigned)w, (unsigned)h, FMT_NAME[fmt]);
        else
            st = err_set(e, DIT_E_FORMAT, "%s: corrupt %s data: %s", path, FMT_NAME[fmt], why);
        goto done;
    }
    /* stb allocates with malloc (STBI_MALLOC is not overridden), so the image can own it. */
    out->w = x;
    out->h = y;
    out->c = want_c ? want_c : c;
    out->px = px;
done:
    free(b);
    return st;
}

/* ---------------------------------------------------------------- float conversions */

dit_status img_from_chw(image *out, const float *chw, int c, int h, int w, dit_err *e)
{
    if (!out) return err_set(e, DIT_E_ARG, "img_from_chw: NULL image");
    *out = (image){0};
    if (!chw) return err_set(e, DIT_E_ARG, "img_from_chw: NULL input");
    dit_status st = img_alloc(out, w, h, c, e);
    if (st) return st;
    size_t plane = (size_t)w * (size_t)h;
    for (size_t i = 0; i < plane; i++) {
        for (int ch = 0; ch < c; ch++) {
            float v = chw[(size_t)ch * plane + i] * 0.5f + 0.5f;
            v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* NaN -> 0 */
            out->px[i * (size_t)c + (size_t)ch] = (unsigned char)nearbyintf(v * 255.0f);
        }
    }
    return DIT_OK;
}

void img_to_chw(const image *im, float *chw)
{
    size_t plane = (size_t)im->w * (size_t)im->h;
    for (size_t i = 0; i < plane; i++)
        for (int ch = 0; ch < im->c; ch++)
            chw[(size_t)ch * plane + i] = (float)im->px[i * (size_t)im->c + (size_t)ch] / 127.5f - 1.0f;
}
