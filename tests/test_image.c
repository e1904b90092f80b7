/* tests/test_image.c — core/image: PNG write/read round trips, text chunks, the failure modes of
 * writing and loading, and the float conversions.
 *
 * BMP and TGA files come from stb_image_write (instantiated here only), the JPEG from the same
 * writer as embedded bytes (see GRADIENT_JPG); PNG structure is checked with a chunk walker and a
 * CRC-32 of our own, so the expectations do not depend on the code under test.
 */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#include "core/image.h"
#include "tests/test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[512]; /* scratch folder, made by main */

/* ---------------------------------------------------------------- helpers */

static const char *in_dir(char *buf, const char *name)
{
    snprintf(buf, 768, "%s/%s", g_dir, name);
    return buf;
}

static int write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(b, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    unsigned char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            else b = nb;
        }
    }
    fclose(f);
    *n = len;
    return b;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Names in the scratch folder containing ".tmp-" (left-over temporaries). */
static int count_leftovers(void)
{
    DIR *d = opendir(g_dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *de; (de = readdir(d));)
        if (strstr(de->d_name, ".tmp-")) n++;
    closedir(d);
    return n;
}

/* A failure message is good when it is one non-empty line that names the path. */
static int good_msg(const dit_err *e, const char *path)
{
    return e->msg[0] && !strchr(e->msg, '\n') && strstr(e->msg, path) != NULL;
}

static void random_image(image *im, int w, int h, int c, uint64_t seed)
{
    trng r = { seed };
    im->w = w;
    im->h = h;
    im->c = c;
    im->px = malloc((size_t)w * h * c);
    for (size_t i = 0; i < (size_t)w * h * c; i++) im->px[i] = (unsigned char)(trng_u64(&r) >> 56);
}

/* CRC-32 (ISO 3309, as in PNG), bit by bit. */
static uint32_t t_crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return c ^ 0xFFFFFFFFu;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Recompute the CRC of the chunk starting at byte off. */
static void fix_crc(unsigned char *b, size_t off)
{
    uint32_t len = rd32(b + off);
    wr32(b + off + 8 + len, t_crc32(b + off + 4, len + 4));
}

typedef struct {
    char type[5];
    size_t off;
    uint32_t len;
} tchunk;

/* Chunks of a well-formed PNG in memory; returns the count (or -1 when malformed). */
static int list_chunks(const unsigned char *b, size_t n, tchunk *out, int max)
{
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n' };
    if (n < 8 || memcmp(b, sig, 8)) return -1;
    int k = 0;
    for (size_t off = 8; off + 12 <= n && k < max;) {
        uint32_t len = rd32(b + off);
        if (len > n - off - 12) return -1;
        memcpy(out[k].type, b + off + 4, 4);
        out[k].type[4] = 0;
        out[k].off = off;
        out[k].len = len;
        k++;
        if (!memcmp(b + off + 4, "IEND", 4)) return k;
        off += 12 + len;
    }
    return -1;
}

static int find_chunk(const tchunk *ch, int n, const char *type, int from)
{
    for (int i = from; i < n; i++)
        if (!strcmp(ch[i].type, type)) return i;
    return -1;
}

/* ---------------------------------------------------------------- PNG pixels */

static void t_png_roundtrip(tctx *t)
{
    static const int color_type[5] = { -1, 0, 4, 2, 6 }; /* PNG spec 11.2.2 */
    char path[768];
    for (int c = 1; c <= 4; c++) {
        image im, back;
        random_image(&im, 37, 23, c, 100 + (uint64_t)c);
        char name[32];
        snprintf(name, sizeof name, "rt%d.png", c);
        in_dir(path, name);
        dit_err e = {0};
        dit_status st = img_save_png(&im, path, NULL, 0, &e);
        CHECK(t, st == DIT_OK, "c=%d save: %s", c, e.msg);
        size_t n;
        unsigned char *b = read_bytes(path, &n);
        CHECK(t, b && n > 33 && rd32(b + 16) == 37 && rd32(b + 20) == 23 && b[24] == 8 &&
                 b[25] == color_type[c],
              "c=%d IHDR: %u x %u depth %d type %d", c, b ? rd32(b + 16) : 0, b ? rd32(b + 20) : 0,
              b ? b[24] : -1, b ? b[25] : -1);
        free(b);
        st = img_load(&back, path, 0, &e);
        CHECK(t, st == DIT_OK, "c=%d load: %s", c, e.msg);
        if (st == DIT_OK) {
            CHECK(t, back.w == 37 && back.h == 23 && back.c == c, "c=%d got %dx%dx%d", c, back.w,
                  back.h, back.c);
            size_t diff = 0;
            for (size_t i = 0; i < (size_t)37 * 23 * c && back.c == c; i++) diff += back.px[i] != im.px[i];
            CHECK(t, diff == 0, "c=%d: %zu bytes differ", c, diff);
        }
        img_free(&back);

        /* Channel conversion on load: RGB -> RGBA adds opaque alpha, RGBA -> RGB drops it. */
        if (c == 3 || c == 4) {
            int want = c == 3 ? 4 : 3;
            st = img_load(&back, path, want, &e);
            CHECK(t, st == DIT_OK && back.c == want, "c=%d want %d: %s", c, want, e.msg);
            size_t bad = 0;
            for (size_t i = 0; st == DIT_OK && i < (size_t)37 * 23; i++) {
                for (int k = 0; k < 3; k++) bad += back.px[i * want + k] != im.px[i * c + k];
                if (want == 4) bad += back.px[i * 4 + 3] != 255;
            }
            CHECK(t, bad == 0, "c=%d want %d: %zu bytes wrong", c, want, bad);
            img_free(&back);
        }
        img_free(&im);
    }

    /* A 1x1 image and img_alloc'd (zeroed) pixels. */
    image one, back;
    dit_err e = {0};
    CHECK(t, img_alloc(&one, 1, 1, 3, &e) == DIT_OK, "alloc: %s", e.msg);
    CHECK(t, one.px && one.px[0] == 0 && one.px[2] == 0, "img_alloc does not zero");
    one.px[1] = 200;
    in_dir(path, "one.png");
    CHECK(t, img_save_png(&one, path, NULL, 0, &e) == DIT_OK, "1x1 save: %s", e.msg);
    CHECK(t, img_load(&back, path, 0, &e) == DIT_OK && back.w == 1 && back.h == 1 && back.c == 3 &&
                 back.px[0] == 0 && back.px[1] == 200 && back.px[2] == 0,
          "1x1 load: %s", e.msg);
    img_free(&back);
    img_free(&one);
    img_free(&one); /* twice is fine */
    CHECK(t, count_leftovers() == 0, "temporary files left behind");
}

static void t_png_replace_and_mode(tctx *t)
{
    char path[768];
    in_dir(path, "replace.png");
    image a, b, back;
    random_image(&a, 8, 8, 3, 1);
    random_image(&b, 5, 7, 1, 2);
    mode_t old = umask(022);
    dit_err e = {0};
    CHECK(t, img_save_png(&a, path, NULL, 0, &e) == DIT_OK, "%s", e.msg);
    CHECK(t, img_save_png(&b, path, NULL, 0, &e) == DIT_OK, "%s", e.msg);
    umask(old);
    struct stat sb;
    CHECK(t, stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644, "mode %o, want 644 (umask 022)",
          (unsigned)(sb.st_mode & 0777));
    CHECK(t, img_load(&back, path, 0, &e) == DIT_OK && back.w == 5 && back.h == 7 && back.c == 1 &&
                 !memcmp(back.px, b.px, 35),
          "the second image did not replace the first: %s", e.msg);
    CHECK(t, count_leftovers() == 0, "temporary files left behind");
    img_free(&back);
    img_free(&a);
    img_free(&b);
}

/* ---------------------------------------------------------------- PNG text */

static void t_text_roundtrip(tctx *t)
{
    char big[5200], bigu[3300], path[768];
    size_t k = 0;
    for (int i = 0; k + 40 < sizeof big; i++)
        k += (size_t)snprintf(big + k, sizeof big - k, "line %d: the quick brown fox\n", i);
    k = 0;
    while (k + 8 < sizeof bigu) k += (size_t)snprintf(bigu + k, sizeof bigu - k, "猫 cat ");
    const img_text in[] = {
        { "prompt", "a red circle left of a blue square" },
        { "parameters", "steps: 28\ncfg: 4.5\nseed: 42" },
        { "note", "café — 猫" },
        { "big", big },
        { "bigutf", bigu },
        { "Gr\xC3\xB6\xC3\x9F" "e", "Latin-1 key" }, /* "Größe" */
        { "empty", "" },
        { "tab", "a\tb" },
    };
    const char *types[] = { "tEXt", "tEXt", "iTXt", "zTXt", "iTXt", "tEXt", "tEXt", "iTXt" };
    enum { N = sizeof in / sizeof in[0] };
    CHECK(t, strlen(big) > 5000, "big is %zu bytes", strlen(big));

    image im;
    random_image(&im, 16, 9, 4, 3);
    in_dir(path, "text.png");
    dit_err e = {0};
    CHECK(t, img_save_png(&im, path, in, N, &e) == DIT_OK, "save: %s", e.msg);

    img_text *out = NULL;
    int n = -1;
    dit_status st = img_read_png_text(path, &out, &n, &e);
    CHECK(t, st == DIT_OK && n == N, "read: n=%d: %s", n, e.msg);
    for (int i = 0; st == DIT_OK && i < N && i < n; i++) {
        CHECK(t, !strcmp(out[i].key, in[i].key), "chunk %d key \"%s\", want \"%s\"", i, out[i].key,
              in[i].key);
        CHECK(t, !strcmp(out[i].value, in[i].value), "chunk %d (%s) value differs (%zu vs %zu bytes)",
              i, in[i].key, strlen(out[i].value), strlen(in[i].value));
    }
    img_free_text(out, n);

    /* Chunk types, placement before IDAT, compression. */
    size_t len;
    unsigned char *b = read_bytes(path, &len);
    tchunk ch[64];
    int nc = b ? list_chunks(b, len, ch, 64) : -1;
    CHECK(t, nc == N + 3, "%d chunks, want IHDR + %d text + IDAT + IEND", nc, N);
    for (int i = 0; nc == N + 3 && i < N; i++)
        CHECK(t, !strcmp(ch[1 + i].type, types[i]), "chunk %d is %s, want %s", 1 + i, ch[1 + i].type,
              types[i]);
    if (nc == N + 3) {
        CHECK(t, !strcmp(ch[0].type, "IHDR") && !strcmp(ch[N + 1].type, "IDAT"), "order %s ... %s",
              ch[0].type, ch[N + 1].type);
        CHECK(t, ch[4].len < 2000, "zTXt is %u bytes for a %zu byte value", ch[4].len, strlen(big));
        /* iTXt: keyword NUL, compression flag, method, ... ("bigutf" is 6 bytes). */
        const unsigned char *d = b + ch[5].off + 8;
        CHECK(t, !memcmp(d, "bigutf", 7) && d[7] == 1 && d[8] == 0, "bigutf iTXt not compressed");
        d = b + ch[3].off + 8;
        CHECK(t, !memcmp(d, "note", 5) && d[5] == 0, "short iTXt should not be compressed");
        /* The Latin-1 key is stored as Latin-1 bytes. */
        d = b + ch[6].off + 8;
        CHECK(t, !memcmp(d, "Gr\xF6\xDF" "e", 6), "Latin-1 key not stored as Latin-1");
    }
    free(b);

    /* The file still loads as an image. */
    image back;
    CHECK(t, img_load(&back, path, 0, &e) == DIT_OK && back.c == 4 && !memcmp(back.px, im.px, 16 * 9 * 4),
          "load: %s", e.msg);
    img_free(&back);

    /* No text: NULL and 0. */
    in_dir(path, "notext.png");
    CHECK(t, img_save_png(&im, path, NULL, 0, &e) == DIT_OK, "%s", e.msg);
    out = (img_text *)1;
    n = -1;
    CHECK(t, img_read_png_text(path, &out, &n, &e) == DIT_OK && out == NULL && n == 0, "n=%d: %s", n,
          e.msg);
    img_free(&im);
}

/* Text after IDAT and Latin-1 tEXt from other writers: splice chunks by hand. */
static void t_text_foreign(tctx *t)
{
    char path[768];
    image im;
    random_image(&im, 6, 4, 3, 4);
    in_dir(path, "late.png");
    dit_err e = {0};
    const img_text one = { "late", "after" };
    CHECK(t, img_save_png(&im, path, &one, 1, &e) == DIT_OK, "%s", e.msg);
    size_t len;
    unsigned char *b = read_bytes(path, &len);
    tchunk ch[16];
    int nc = b ? list_chunks(b, len, ch, 16) : -1;
    int it = find_chunk(ch, nc, "tEXt", 0), id = find_chunk(ch, nc, "IDAT", 0);
    CHECK(t, nc == 4 && it == 1 && id == 2, "unexpected layout (%d chunks)", nc);
    if (nc == 4 && it == 1 && id == 2) {
        /* sig IHDR IDAT tEXt(late) tEXt(Latin-1) IEND */
        unsigned char lat[12 + 9] = { 0, 0, 0, 9, 't', 'E', 'X', 't', 'k', 'e', 'y', 0, 'c', 'a', 'f', 0xE9, '!' };
        size_t tl = ch[1].len + 12, il = ch[2].len + 12;
        unsigned char *o = malloc(len + sizeof lat);
        size_t p = 0;
        memcpy(o, b, 8 + 25);
        p = 33;
        memcpy(o + p, b + ch[2].off, il), p += il;
        memcpy(o + p, b + ch[1].off, tl), p += tl;
        memcpy(o + p, lat, sizeof lat);
        fix_crc(o, p);
        p += sizeof lat;
        memcpy(o + p, b + ch[3].off, 12), p += 12;
        in_dir(path, "late2.png");
        CHECK(t, write_bytes(path, o, p) == 0, "write %s", path);
        free(o);
        img_text *out;
        int n;
        dit_status st = img_read_png_text(path, &out, &n, &e);
        CHECK(t, st == DIT_OK && n == 2, "n=%d: %s", n, e.msg);
        if (st == DIT_OK && n == 2) {
            CHECK(t, !strcmp(out[0].key, "late") && !strcmp(out[0].value, "after"), "late chunk: %s=%s",
                  out[0].key, out[0].value);
            CHECK(t, !strcmp(out[1].key, "key") && !strcmp(out[1].value, "caf\xC3\xA9!"),
                  "Latin-1 value not converted to UTF-8: %s", out[1].value);
        }
        if (st == DIT_OK) img_free_text(out, n);
        image back;
        CHECK(t, img_load(&back, path, 0, &e) == DIT_OK && !memcmp(back.px, im.px, 6 * 4 * 3), "load: %s",
              e.msg);
        img_free(&back);
    }
    free(b);
    img_free(&im);
}

static void t_text_bad(tctx *t)
{
    char k79[80], k80[81], path[768];
    memset(k79, 'k', 79), k79[79] = 0;
    memset(k80, 'k', 80), k80[80] = 0;
    const char *bad_keys[] = { "", " lead", "trail ", "two  spaces", "tab\tkey", "new\nline",
                               "ctl\x01", k80, "\xE7\x8C\xAB" /* 猫: not Latin-1 */,
                               "\xFF" "bad utf8", "nbsp\xC2\xA0" /* U+00A0 is not printable */ };
    image im;
    random_image(&im, 3, 3, 3, 5);
    in_dir(path, "badkey.png");
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        const img_text tx[2] = { { "ok", "fine" }, { bad_keys[i], "v" } };
        dit_err e = {0};
        dit_status st = img_save_png(&im, path, tx, 2, &e);
        CHECK(t, st == DIT_E_ARG, "bad key %zu accepted (status %d)", i, st);
        CHECK(t, good_msg(&e, path) && strstr(e.msg, "key"), "key %zu message: %s", i, e.msg);
        CHECK(t, !file_exists(path), "key %zu: file created", i);
    }
    /* Good edge cases. */
    const img_text good[] = { { k79, "79 characters" }, { "a b c", "single spaces" },
                              { "~!@#$%^&*()", "punctuation" } };
    dit_err e = {0};
    CHECK(t, img_save_png(&im, path, good, 3, &e) == DIT_OK, "edge keys rejected: %s", e.msg);
    img_text *out;
    int n;
    CHECK(t, img_read_png_text(path, &out, &n, &e) == DIT_OK && n == 3 && !strcmp(out[0].key, k79),
          "read: %s", e.msg);
    img_free_text(out, n);
    unlink(path);

    /* Value not UTF-8, missing key or value. */
    const img_text badv = { "k", "ab\xC3(" };
    CHECK(t, img_save_png(&im, path, &badv, 1, &e) == DIT_E_ARG && strstr(e.msg, "UTF-8"), "%s", e.msg);
    const img_text nullv = { "k", NULL };
    CHECK(t, img_save_png(&im, path, &nullv, 1, &e) == DIT_E_ARG && good_msg(&e, path), "%s", e.msg);
    CHECK(t, img_save_png(&im, path, NULL, 1, &e) == DIT_E_ARG, "%s", e.msg);
    CHECK(t, !file_exists(path) && count_leftovers() == 0, "file or temporary left behind");
    img_free(&im);
}

/* ---------------------------------------------------------------- write failures */

static void t_write_errors(tctx *t)
{
    char path[768], want[1024];
    image im;
    random_image(&im, 4, 4, 3, 6);
    dit_err e = {0};

    in_dir(path, "no/such/dir/x.png");
    dit_status st = img_save_png(&im, path, NULL, 0, &e);
    snprintf(want, sizeof want, "%s: cannot create file: %s", path, strerror(ENOENT));
    CHECK(t, st == DIT_E_IO && !strcmp(e.msg, want), "got %d \"%s\"", st, e.msg);
    CHECK(t, !file_exists(path), "file exists");

    /* The target is a directory: the rename fails after writing, the temporary goes away. */
    in_dir(path, "adir");
    CHECK(t, mkdir(path, 0755) == 0, "mkdir %s", path);
    st = img_save_png(&im, path, NULL, 0, &e);
    CHECK(t, st == DIT_E_IO && good_msg(&e, path), "got %d \"%s\"", st, e.msg);
    CHECK(t, count_leftovers() == 0, "temporary file left behind");
    rmdir(path);

    /* Writing fails half way (file size limit): error names the cause, nothing is left. */
    {
        image big;
        random_image(&big, 200, 200, 3, 9);
        struct rlimit old, lim;
        void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
        getrlimit(RLIMIT_FSIZE, &old);
        lim = old;
        lim.rlim_cur = 10000;
        CHECK(t, setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
        in_dir(path, "big.png");
        st = img_save_png(&big, path, NULL, 0, &e);
        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, old_sig);
        CHECK(t, st == DIT_E_IO && good_msg(&e, path) && strstr(e.msg, strerror(EFBIG)), "got %d \"%s\"",
              st, e.msg);
        CHECK(t, !file_exists(path) && count_leftovers() == 0, "partial output left behind");
        img_free(&big);
    }

    /* Bad images. */
    in_dir(path, "bad.png");
    image bad = im;
    bad.c = 5;
    CHECK(t, img_save_png(&bad, path, NULL, 0, &e) == DIT_E_ARG && good_msg(&e, path), "%s", e.msg);
    bad = im;
    bad.px = NULL;
    CHECK(t, img_save_png(&bad, path, NULL, 0, &e) == DIT_E_ARG && good_msg(&e, path), "%s", e.msg);
    bad = im;
    bad.w = 0;
    CHECK(t, img_save_png(&bad, path, NULL, 0, &e) == DIT_E_ARG && good_msg(&e, path), "%s", e.msg);
    CHECK(t, !file_exists(path) && count_leftovers() == 0, "file or temporary left behind");
    img_free(&im);

    /* img_alloc argument and overflow checks. */
    image a;
    CHECK(t, img_alloc(&a, 0, 5, 3, &e) == DIT_E_ARG && a.px == NULL, "w=0: %s", e.msg);
    CHECK(t, img_alloc(&a, 5, 5, 0, &e) == DIT_E_ARG, "c=0: %s", e.msg);
    CHECK(t, img_alloc(&a, 5, 5, 5, &e) == DIT_E_ARG, "c=5: %s", e.msg);
}

/* ---------------------------------------------------------------- other formats */

/* stbi_write_jpg(…, 32, 24, 3, g, 90) of the gradient in t_load_bmp_tga_jpeg, made once in a
 * build without UBSan: stb_image_write's JPEG bit writer shifts signed ints into the sign bit,
 * which aborts under -fsanitize=undefined. BMP and TGA are written at test time. */
static const unsigned char GRADIENT_JPG[] = {
    0xff,0xd8,0xff,0xe0,0x00,0x10,0x4a,0x46,0x49,0x46,0x00,0x01,0x01,0x00,0x00,0x01,0x00,0x01,0x00,
    0x00,0xff,0xdb,0x00,0x84,0x00,0x03,0x02,0x02,0x03,0x02,0x02,0x03,0x03,0x03,0x03,0x04,0x03,0x03,
    0x04,0x05,0x08,0x05,0x05,0x04,0x04,0x05,0x0a,0x07,0x07,0x06,0x08,0x0c,0x0a,0x0c,0x0c,0x0b,0x0a,
    0x0b,0x0b,0x0d,0x0e,0x12,0x10,0x0d,0x0e,0x11,0x0e,0x0b,0x0b,0x10,0x16,0x10,0x11,0x13,0x14,0x15,
    0x15,0x15,0x0c,0x0f,0x17,0x18,0x16,0x14,0x18,0x12,0x14,0x15,0x14,0x01,0x03,0x04,0x04,0x05,0x04,
    0x05,0x09,0x05,0x05,0x09,0x14,0x0d,0x0b,0x0d,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,
    0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,
    0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,0x14,
    0x14,0x14,0xff,0xc0,0x00,0x11,0x08,0x00,0x18,0x00,0x20,0x03,0x01,0x22,0x00,0x02,0x11,0x01,0x03,
    0x11,0x01,0xff,0xc4,0x01,0xa2,0x00,0x00,0x01,0x05,0x01,0x01,0x01,0x01,0x01,0x01,0x00,0x00,0x00,
    0x00,0x00,0x00,0x00,0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0x10,0x00,0x02,
    0x01,0x03,0x03,0x02,0x04,0x03,0x05,0x05,0x04,0x04,0x00,0x00,0x01,0x7d,0x01,0x02,0x03,0x00,0x04,
    0x11,0x05,0x12,0x21,0x31,0x41,0x06,0x13,0x51,0x61,0x07,0x22,0x71,0x14,0x32,0x81,0x91,0xa1,0x08,
    0x23,0x42,0xb1,0xc1,0x15,0x52,0xd1,0xf0,0x24,0x33,0x62,0x72,0x82,0x09,0x0a,0x16,0x17,0x18,0x19,
    0x1a,0x25,0x26,0x27,0x28,0x29,0x2a,0x34,0x35,0x36,0x37,0x38,0x39,0x3a,0x43,0x44,0x45,0x46,0x47,
    0x48,0x49,0x4a,0x53,0x54,0x55,0x56,0x57,0x58,0x59,0x5a,0x63,0x64,0x65,0x66,0x67,0x68,0x69,0x6a,
    0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7a,0x83,0x84,0x85,0x86,0x87,0x88,0x89,0x8a,0x92,0x93,0x94,
    0x95,0x96,0x97,0x98,0x99,0x9a,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xb2,0xb3,0xb4,0xb5,
    0xb6,0xb7,0xb8,0xb9,0xba,0xc2,0xc3,0xc4,0xc5,0xc6,0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,0xd6,
    0xd7,0xd8,0xd9,0xda,0xe1,0xe2,0xe3,0xe4,0xe5,0xe6,0xe7,0xe8,0xe9,0xea,0xf1,0xf2,0xf3,0xf4,0xf5,
    0xf6,0xf7,0xf8,0xf9,0xfa,0x01,0x00,0x03,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x00,0x00,
    0x00,0x00,0x00,0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0x11,0x00,0x02,0x01,
    0x02,0x04,0x04,0x03,0x04,0x07,0x05,0x04,0x04,0x00,0x01,0x02,0x77,0x00,0x01,0x02,0x03,0x11,0x04,
    0x05,0x21,0x31,0x06,0x12,0x41,0x51,0x07,0x61,0x71,0x13,0x22,0x32,0x81,0x08,0x14,0x42,0x91,0xa1,
    0xb1,0xc1,0x09,0x23,0x33,0x52,0xf0,0x15,0x62,0x72,0xd1,0x0a,0x16,0x24,0x34,0xe1,0x25,0xf1,0x17,
    0x18,0x19,0x1a,0x26,0x27,0x28,0x29,0x2a,0x35,0x36,0x37,0x38,0x39,0x3a,0x43,0x44,0x45,0x46,0x47,
    0x48,0x49,0x4a,0x53,0x54,0x55,0x56,0x57,0x58,0x59,0x5a,0x63,0x64,0x65,0x66,0x67,0x68,0x69,0x6a,
    0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7a,0x82,0x83,0x84,0x85,0x86,0x87,0x88,0x89,0x8a,0x92,0x93,
    0x94,0x95,0x96,0x97,0x98,0x99,0x9a,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xb2,0xb3,0xb4,
    0xb5,0xb6,0xb7,0xb8,0xb9,0xba,0xc2,0xc3,0xc4,0xc5,0xc6,0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,
    0xd6,0xd7,0xd8,0xd9,0xda,0xe2,0xe3,0xe4,0xe5,0xe6,0xe7,0xe8,0xe9,0xea,0xf2,0xf3,0xf4,0xf5,0xf6,
    0xf7,0xf8,0xf9,0xfa,0xff,0xda,0x00,0x0c,0x03,0x01,0x00,0x02,0x11,0x03,0x11,0x00,0x3f,0x00,0xfc,
    0xff,0x00,0xd1,0x7c,0x0b,0xf7,0x7f,0x77,0xfa,0x57,0x7b,0xa2,0xf8,0x17,0xee,0xfe,0xef,0xf4,0xaf,
    0x4a,0xd1,0x7c,0x0b,0xf7,0x7f,0x77,0xfa,0x57,0x7b,0xa2,0xf8,0x17,0xee,0xfe,0xef,0xf4,0xae,0x2a,
    0x38,0xcf,0x33,0xce,0xe1,0xee,0x29,0xf8,0x7d,0xe3,0xcd,0x74,0x5f,0x02,0xfd,0xdf,0xdd,0xfe,0x95,
    0xde,0xe8,0xbe,0x05,0xfb,0xbf,0xbb,0xfd,0x2b,0xd2,0xb4,0x5f,0x02,0xfd,0xdf,0xdd,0xfe,0x95,0xde,
    0xe8,0xbe,0x05,0xfb,0xbf,0xbb,0xfd,0x2b,0xdb,0xa3,0x8c,0xf3,0x3f,0xa7,0x78,0x7b,0x8a,0x7e,0x1f,
    0x78,0xe3,0xf4,0x5f,0x02,0xfd,0xdf,0xdd,0xfe,0x95,0xde,0xe8,0xbe,0x05,0xfb,0xbf,0xbb,0xfd,0x29,
    0xba,0x2f,0xf0,0xd7,0x7b,0xa2,0xff,0x00,0x0d,0x7e,0x69,0x46,0xac,0x8f,0xf2,0xf7,0x87,0xb3,0x3c,
    0x47,0xbb,0xa8,0xed,0x17,0xc0,0xbf,0x77,0xf7,0x7f,0xa5,0x77,0x9a,0x2f,0x81,0x7e,0xef,0xee,0xff,
    0x00,0x4a,0x4d,0x17,0xf8,0x6b,0xbd,0xd1,0x7f,0x86,0xbd,0xba,0x35,0x64,0x7f,0x4e,0xf0,0xf6,0x67,
    0x88,0xf7,0x75,0x3f,0xff,0xd9
};

static void t_load_bmp_tga_jpeg(tctx *t)
{
    char path[768];
    dit_err e = {0};
    image back;
    const int W = 29, H = 17;

    /* BMP: stb writes 24-bit for 1 and 3 channels (gray replicated), 32-bit with alpha for 4. */
    for (int c = 1; c <= 4; c++) {
        if (c == 2) continue;
        image im;
        random_image(&im, W, H, c, 20 + (uint64_t)c);
        in_dir(path, "x.bmp");
        CHECK(t, stbi_write_bmp(path, W, H, c, im.px), "stb BMP write c=%d", c);
        dit_status st = img_load(&back, path, 0, &e);
        int want_c = c == 4 ? 4 : 3;
        CHECK(t, st == DIT_OK && back.w == W && back.h == H && back.c == want_c, "BMP c=%d: %dx%dx%d %s",
              c, back.w, back.h, back.c, e.msg);
        size_t bad = 0;
        for (size_t i = 0; st == DIT_OK && back.c == want_c && i < (size_t)W * H; i++)
            for (int k = 0; k < want_c; k++) bad += back.px[i * want_c + k] != im.px[i * c + (c == 1 ? 0 : k)];
        CHECK(t, st == DIT_OK && bad == 0, "BMP c=%d: %zu bytes differ", c, bad);
        img_free(&back);
        img_free(&im);
    }

    /* TGA, with and without RLE. */
    for (int rle = 0; rle <= 1; rle++) {
        stbi_write_tga_with_rle = rle;
        for (int c = 1; c <= 4; c++) {
            if (c == 2) continue;
            image im;
            random_image(&im, W, H, c, 30 + (uint64_t)c);
            if (rle) /* runs, so RLE packets are really used */
                for (size_t i = 0; i < (size_t)W * H * c; i++) im.px[i] = (unsigned char)((i / (7 * c)) * 37);
            in_dir(path, "x.tga");
            CHECK(t, stbi_write_tga(path, W, H, c, im.px), "stb TGA write c=%d", c);
            dit_status st = img_load(&back, path, 0, &e);
            CHECK(t, st == DIT_OK && back.w == W && back.h == H && back.c == c, "TGA rle=%d c=%d: %s", rle,
                  c, e.msg);
            CHECK(t, st == DIT_OK && back.c == c && !memcmp(back.px, im.px, (size_t)W * H * c),
                  "TGA rle=%d c=%d: pixels differ", rle, c);
            img_free(&back);
            img_free(&im);
        }
    }

    /* JPEG of a smooth gradient: lossy, so within a tolerance. */
    const int JW = 32, JH = 24;
    unsigned char *g = malloc((size_t)JW * JH * 3);
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++) {
            unsigned char *p = g + ((size_t)y * JW + x) * 3;
            p[0] = (unsigned char)(x * 8);
            p[1] = (unsigned char)(y * 10);
            p[2] = (unsigned char)((x + y) * 4);
        }
    in_dir(path, "x.jpg");
    CHECK(t, write_bytes(path, GRADIENT_JPG, sizeof GRADIENT_JPG) == 0, "write %s", path);
    dit_status st = img_load(&back, path, 0, &e);
    CHECK(t, st == DIT_OK && back.w == JW && back.h == JH && back.c == 3, "JPEG: %dx%dx%d %s", back.w,
          back.h, back.c, e.msg);
    if (st == DIT_OK && back.c == 3) {
        double sum = 0;
        for (size_t i = 0; i < (size_t)JW * JH * 3; i++) sum += abs((int)back.px[i] - (int)g[i]);
        double mad = sum / (JW * JH * 3);
        CHECK(t, mad < 8, "JPEG mean abs diff %.2f", mad);
        CHECK(t, mad > 0, "JPEG decoded bit-exact: is this really the JPEG path?");
    }
    img_free(&back);
    st = img_load(&back, path, 1, &e);
    CHECK(t, st == DIT_OK && back.c == 1 && back.w == JW, "JPEG as gray: %s", e.msg);
    img_free(&back);

    /* A truncated JPEG must not crash; stb pads missing data, so either outcome is allowed,
     * but the size must be right on success and the message good on failure. */
    in_dir(path, "half.jpg");
    CHECK(t, write_bytes(path, GRADIENT_JPG, sizeof GRADIENT_JPG / 2) == 0, "write %s", path);
    st = img_load(&back, path, 0, &e);
    CHECK(t, st == DIT_OK ? back.w == JW && back.h == JH : good_msg(&e, path), "half JPEG: %d %s", st, e.msg);
    img_free(&back);
    in_dir(path, "head.jpg");
    CHECK(t, write_bytes(path, GRADIENT_JPG, 40) == 0, "write %s", path);
    st = img_load(&back, path, 0, &e);
    CHECK(t, st == DIT_E_FORMAT && good_msg(&e, path) && strstr(e.msg, "JPEG"), "40-byte JPEG: %d %s", st,
          e.msg);
    free(g);
}

/* ---------------------------------------------------------------- bad inputs */

/* Load must fail with `want` and a one-line message naming the path that contains `needle`. */
static void expect_load_fail(tctx *t, const char *path, dit_status want, const char *needle,
                             const char *what)
{
    image im = { 1, 1, 1, (unsigned char *)"x" };
    dit_err e = {0};
    dit_status st = img_load(&im, path, 0, &e);
    CHECK(t, st == want, "%s: status %d (%s), want %d: %s", what, st, err_status_name(st), want, e.msg);
    CHECK(t, good_msg(&e, path) && (!needle || strstr(e.msg, needle)), "%s: message \"%s\" (want \"%s\")",
          what, e.msg, needle ? needle : "");
    CHECK(t, im.px == NULL && im.w == 0, "%s: output not reset", what);
    if (st == DIT_OK) img_free(&im);
}

static void t_load_bad(tctx *t)
{
    char path[768];
    image im;
    dit_err e = {0};

    expect_load_fail(t, in_dir(path, "missing.png"), DIT_E_IO, strerror(ENOENT), "missing");
    write_bytes(in_dir(path, "empty.png"), "", 0);
    expect_load_fail(t, path, DIT_E_FORMAT, "empty", "empty");
    expect_load_fail(t, g_dir, DIT_E_IO, NULL, "directory");

    trng r = { 99 };
    unsigned char rnd[1000];
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)(trng_u64(&r) >> 56);
    write_bytes(in_dir(path, "random.bin"), rnd, sizeof rnd);
    expect_load_fail(t, path, DIT_E_FORMAT, "not a PNG, JPEG, BMP or TGA image", "random");

    static const unsigned char gif[] = "GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,"
                                       "\0\0\0\0\x01\0\x01\0\0\x02\x02\x44\x01\0;";
    write_bytes(in_dir(path, "x.gif"), gif, sizeof gif - 1);
    expect_load_fail(t, path, DIT_E_UNSUPPORTED, "GIF", "GIF");
    write_bytes(in_dir(path, "x.webp"), "RIFF\x24\0\0\0WEBPVP8 ", 16);
    expect_load_fail(t, path, DIT_E_UNSUPPORTED, "WebP", "WebP");
    const char *txt = "prompt: a red circle\nsteps: 28\n";
    write_bytes(in_dir(path, "notes.txt"), txt, strlen(txt));
    expect_load_fail(t, path, DIT_E_FORMAT, "looks like text", "text");

    /* A valid PNG to damage. */
    random_image(&im, 37, 23, 3, 7);
    in_dir(path, "good.png");
    const img_text meta = { "k", "v" };
    CHECK(t, img_save_png(&im, path, &meta, 1, &e) == DIT_OK, "%s", e.msg);
    img_free(&im);
    size_t n;
    unsigned char *b = read_bytes(path, &n);
    tchunk ch[16];
    int nc = b ? list_chunks(b, n, ch, 16) : -1;
    int id = find_chunk(ch, nc, "IDAT", 0);
    CHECK(t, nc >= 4 && id > 0, "layout");
    if (nc < 4 || id <= 0) {
        free(b);
        return;
    }

    size_t cuts[] = { 1, 4, 7, 8, 12, 20, 33, 40, ch[id].off + 10, ch[id].off + ch[id].len / 2, n - 12,
                      n - 5, n - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "PNG cut at %zu of %zu", cuts[i], n);
        write_bytes(in_dir(path, "cut.png"), b, cuts[i]);
        expect_load_fail(t, path, DIT_E_FORMAT, "truncated", what);
        img_text *tx;
        int nt;
        dit_status st = img_read_png_text(path, &tx, &nt, &e);
        CHECK(t, st == DIT_E_FORMAT && good_msg(&e, path) && strstr(e.msg, "truncated"),
              "%s: read text gave %d \"%s\"", what, st, e.msg);
        if (st == DIT_OK) img_free_text(tx, nt);
    }

    unsigned char *m = malloc(n);
    /* IHDR CRC flipped. */
    memcpy(m, b, n);
    m[29] ^= 0x01;
    write_bytes(in_dir(path, "crc.png"), m, n);
    expect_load_fail(t, path, DIT_E_FORMAT, "CRC", "IHDR CRC");
    img_text *tx;
    int nt;
    CHECK(t, img_read_png_text(path, &tx, &nt, &e) == DIT_E_FORMAT && good_msg(&e, path), "text: %s",
          e.msg);

    /* Absurd width with a correct CRC: refused before decoding. */
    memcpy(m, b, n);
    wr32(m + 16, 1000000);
    fix_crc(m, 8);
    write_bytes(in_dir(path, "wide.png"), m, n);
    expect_load_fail(t, path, DIT_E_UNSUPPORTED, "16384", "width 1000000");
    wr32(m + 16, 0x80000000u);
    fix_crc(m, 8);
    write_bytes(in_dir(path, "wide2.png"), m, n);
    expect_load_fail(t, path, DIT_E_FORMAT, "IHDR", "width 2^31");
    wr32(m + 16, 0);
    fix_crc(m, 8);
    write_bytes(in_dir(path, "zero.png"), m, n);
    expect_load_fail(t, path, DIT_E_FORMAT, "IHDR", "width 0");

    /* IDAT: damaged data with its CRC fixed (zlib stream broken), and a bad CRC. */
    memcpy(m, b, n);
    for (uint32_t i = 2; i < ch[id].len; i += 3) m[ch[id].off + 8 + i] ^= 0x5A;
    fix_crc(m, ch[id].off);
    write_bytes(in_dir(path, "data.png"), m, n);
    expect_load_fail(t, path, DIT_E_FORMAT, "corrupt PNG", "IDAT data");
    CHECK(t, img_read_png_text(path, &tx, &nt, &e) == DIT_E_FORMAT && good_msg(&e, path), "text: %s",
          e.msg);
    memcpy(m, b, n);
    m[ch[id].off + 8 + ch[id].len] ^= 0xFF;
    write_bytes(in_dir(path, "idatcrc.png"), m, n);
    expect_load_fail(t, path, DIT_E_FORMAT, "CRC error in chunk IDAT", "IDAT CRC");
    free(m);
    free(b);

    /* A JPEG Huffman table whose symbol counts add up to more than 256 (stb 2.27 writes past
     * its tables on this): refused before stb sees it. */
    unsigned char jpg[sizeof GRADIENT_JPG];
    memcpy(jpg, GRADIENT_JPG, sizeof jpg);
    size_t dht = 0;
    for (size_t i = 2; i + 1 < sizeof jpg && !dht; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC4) dht = i;
    CHECK(t, dht > 0, "no DHT in the sample JPEG");
    if (dht) {
        jpg[dht + 5 + 14] = 200; /* counts for code lengths 15 and 16 */
        jpg[dht + 5 + 15] = 200;
        write_bytes(in_dir(path, "dht.jpg"), jpg, sizeof jpg);
        expect_load_fail(t, path, DIT_E_FORMAT, "Huffman table", "DHT with 400+ symbols");
    }

    /* img_read_png_text on files that are not PNGs. */
    CHECK(t, img_read_png_text(in_dir(path, "missing.png"), &tx, &nt, &e) == DIT_E_IO &&
                 good_msg(&e, path) && strstr(e.msg, strerror(ENOENT)),
          "missing: %s", e.msg);
    CHECK(t, img_read_png_text(in_dir(path, "empty.png"), &tx, &nt, &e) == DIT_E_FORMAT &&
                 good_msg(&e, path),
          "empty: %s", e.msg);
    CHECK(t, img_read_png_text(in_dir(path, "x.gif"), &tx, &nt, &e) == DIT_E_FORMAT &&
                 good_msg(&e, path) && strstr(e.msg, "not a PNG"),
          "GIF: %s", e.msg);

    /* Bad arguments. */
    CHECK(t, img_load(&im, in_dir(path, "good.png"), 5, &e) == DIT_E_ARG && good_msg(&e, path), "%s", e.msg);
}

/* ---------------------------------------------------------------- float conversions */

static void t_chw(tctx *t)
{
    /* Expected bytes from numpy semantics (float32: x/2 + 0.5, clip, *255, round half to even),
     * computed outside this code. The first six hit v*255 = k + 0.5 exactly. */
    static const struct { float x; int b; } cases[] = {
        { -0x1.f9f9f6p-2f, 64 },  /* 64.5 -> 64 */
        { -0x1.f1f1eep-2f, 66 },  /* 65.5 -> 66 */
        { -0x1.0100cp-7f, 126 },  /* 126.5 -> 126 */
        { 0.0f, 128 },            /* 127.5 -> 128 */
        { 0x1.252524p-1f, 200 },  /* 200.5 -> 200 */
        { 0x1.f9f9f6p-1f, 254 },  /* 253.5 -> 254 */
        { -0x1.b0f2d8p-2f, 74 },  { -0x1.ad095ap-1f, 21 }, { 0x1.72efc2p-2f, 174 },
        { -0x1.06b1f6p+0f, 0 },   { 0x1.60bc06p-4f, 138 }, { -0x1.4a153ap-2f, 86 },
        { 0x1.24628ap-6f, 130 },  { -0x1.46250ep-3f, 107 }, { -0x1.f6ee8ep-1f, 2 },
        { -1.0f, 0 }, { 1.0f, 255 }, { -2.0f, 0 }, { 5.0f, 255 }, { 1e30f, 255 }, { -1e30f, 0 },
        { INFINITY, 255 }, { -INFINITY, 0 }, { NAN, 0 },
    };
    enum { N = sizeof cases / sizeof cases[0] };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = cases[i].x;
    image im;
    dit_err e = {0};
    CHECK(t, img_from_chw(&im, x, 1, 1, N, &e) == DIT_OK && im.w == N && im.h == 1 && im.c == 1, "%s", e.msg);
    for (int i = 0; im.px && i < N; i++)
        CHECK(t, im.px[i] == cases[i].b, "x=%a -> %d, want %d", (double)cases[i].x, im.px[i], cases[i].b);
    img_free(&im);

    /* Layout: planar [c, h, w] in, interleaved out. Values pick exact bytes: x = 2b/255 - 1. */
    const int C = 3, Hh = 2, Ww = 3;
    float chw[18];
    for (int c = 0; c < C; c++)
        for (int y = 0; y < Hh; y++)
            for (int xx = 0; xx < Ww; xx++) {
                int b = c * 100 + y * 10 + xx;
                chw[(c * Hh + y) * Ww + xx] = 2.0f * ((float)b / 255.0f) - 1.0f;
            }
    CHECK(t, img_from_chw(&im, chw, C, Hh, Ww, &e) == DIT_OK && im.w == Ww && im.h == Hh && im.c == C,
          "%s", e.msg);
    int bad = 0;
    for (int y = 0; im.px && y < Hh; y++)
        for (int xx = 0; xx < Ww; xx++)
            for (int c = 0; c < C; c++) bad += im.px[(y * Ww + xx) * C + c] != c * 100 + y * 10 + xx;
    CHECK(t, im.px && bad == 0, "%d bytes in the wrong place", bad);
    float back[18];
    if (im.px) img_to_chw(&im, back);
    CHECK(t, im.px && !memcmp(back, chw, sizeof back), "img_to_chw is not the inverse layout");
    img_free(&im);

    /* img_to_chw for every byte: bit-identical to diffusers' 2 * (b / 255) - 1. */
    CHECK(t, img_alloc(&im, 16, 16, 1, &e) == DIT_OK, "%s", e.msg);
    for (int i = 0; i < 256; i++) im.px[i] = (unsigned char)i;
    float all[256];
    img_to_chw(&im, all);
    int mism = 0;
    for (int i = 0; i < 256; i++) {
        float want = 2.0f * ((float)i / 255.0f) - 1.0f;
        if (memcmp(&all[i], &want, sizeof want)) mism++;
    }
    CHECK(t, mism == 0, "%d bytes differ from 2*(b/255)-1", mism);
    CHECK(t, all[0] == -1.0f && all[255] == 1.0f && fabsf(all[128] - 0.0039215686f) < 1e-7f,
          "0 -> %g, 255 -> %g, 128 -> %g", all[0], all[255], all[128]);
    /* Round trip of every byte value. */
    image rt;
    CHECK(t, img_from_chw(&rt, all, 1, 16, 16, &e) == DIT_OK && !memcmp(rt.px, im.px, 256),
          "round trip of 0..255 is not exact");
    img_free(&rt);
    img_free(&im);

    /* Random RGBA round trip, and errors. */
    random_image(&im, 13, 11, 4, 8);
    float *f = malloc(sizeof(float) * 13 * 11 * 4);
    img_to_chw(&im, f);
    CHECK(t, img_from_chw(&rt, f, 4, 11, 13, &e) == DIT_OK && !memcmp(rt.px, im.px, 13 * 11 * 4),
          "RGBA round trip: %s", e.msg);
    img_free(&rt);
    CHECK(t, img_from_chw(&rt, f, 5, 11, 13, &e) == DIT_E_ARG && rt.px == NULL, "c=5: %s", e.msg);
    CHECK(t, img_from_chw(&rt, NULL, 3, 11, 13, &e) == DIT_E_ARG, "NULL input: %s", e.msg);
    free(f);
    img_free(&im);
}

/* ---------------------------------------------------------------- main */

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char p[1024];
    for (struct dirent *de; (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(dir);
}

/* `dit inspect IMAGE.png` prints the size and every text chunk, values whole (newlines kept,
 * other control bytes escaped); a broken PNG is one error line and exit 1. Needs DIT_BIN. */
static void t_inspect_png(tctx *t)
{
    const char *bin = getenv("DIT_BIN");
    if (!bin || !*bin) {
        SKIP(t, "DIT_BIN not set");
        return;
    }
    image im = { 0 };
    dit_err e = { 0 };
    CHECK(t, img_alloc(&im, 5, 3, 3, &e) == DIT_OK, "%s", e.msg);
    char png[768], out[768], cmd[4096];
    in_dir(png, "meta.png");
    in_dir(out, "meta.txt");
    const img_text meta[2] = { { "parameters", "a red circle\nSteps: 4, Seed: 42" }, { "dit", "{\"seed\": 42, \"x\": \"\x01\"}" } };
    CHECK(t, img_save_png(&im, png, meta, 2, &e) == DIT_OK, "%s", e.msg);
    img_free(&im);
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s' >'%s' 2>&1", bin, png, out);
    int st = system(cmd);
    char *text = test_read_file(out, NULL);
    CHECK(t, st == 0 && text && strstr(text, "PNG 5x3, 3 channels, 2 text chunks") && strstr(text, "parameters:\n  a red circle\n  Steps: 4, Seed: 42\n") &&
                 strstr(text, "dit:\n  {\"seed\": 42, \"x\": \"\\x01\"}"),
          "inspect output (status %d):\n%s", st, text ? text : "(none)");
    free(text);
    /* a truncated PNG: one line, exit 1 */
    FILE *f = fopen(png, "r+b");
    if (f) {
        if (ftruncate(fileno(f), 40)) {}
        fclose(f);
    }
    st = system(cmd);
    text = test_read_file(out, NULL);
    CHECK(t, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1 && text && strstr(text, "dit inspect: ") && !strchr(strchr(text, '\n') + 1, '\n'),
          "broken PNG (status %d): %s", st, text ? text : "(none)");
    free(text);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/dit-test-image-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    tctx t = test_begin("image");
    RUN(&t, t_png_roundtrip);
    RUN(&t, t_png_replace_and_mode);
    RUN(&t, t_text_roundtrip);
    RUN(&t, t_text_foreign);
    RUN(&t, t_text_bad);
    RUN(&t, t_write_errors);
    RUN(&t, t_load_bmp_tga_jpeg);
    RUN(&t, t_load_bad);
    RUN(&t, t_chw);
    RUN(&t, t_inspect_png);
    remove_dir(g_dir);
    return test_end(&t);
}
