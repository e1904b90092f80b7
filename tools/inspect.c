/* tools/inspect.c — `dit inspect FILE`: what a file holds, as a table.
 *
 *   dit inspect model.safetensors                     one file
 *   dit inspect model.safetensors.index.json          a sharded model (all shards)
 *
 * Tensors are listed in natural name order (blocks.2 before blocks.10), not file order.
 * One function per file kind (inspect_weights today; model-family detection and PNG metadata
 * come later). Each kind opens and validates the whole file before it prints anything, so a bad
 * file gives exactly one line on stderr ("dit inspect: <message>"), nothing on stdout, exit 1.
 * Names and metadata come from untrusted files: control bytes are printed as \xNN, never raw.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/image.h"
#include "core/safetensors.h"
#include "dit/dit.h"
#include "tools/cli.h"

#define META_MAX_COLS 100 /* metadata values are cut to one line of this many characters */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dit inspect FILE\n"
            "\n"
            "List what FILE holds. FILE is a .safetensors file, a sharded model's\n"
            "*.safetensors.index.json (all shards are opened and checked), or a diffusers\n"
            "model folder (its transformer/ weights), or a PNG image.\n"
            "Prints every tensor (name, dtype, shape, bytes), the metadata, a summary, and\n"
            "the diffusion model it holds (family and configuration, as the loader detects them).\n"
            "For a PNG: its size and every text chunk (the settings an image was generated with).\n"
            "\n"
            "options:\n"
            "  -h, --help   show this help\n"
            "\n"
            "exit status: 0 ok, 1 unreadable or malformed file, 2 usage error\n");
}

/* ---- printing untrusted strings ------------------------------------------------------------ */

/* Terminal columns s takes when printed by put_safe: one per UTF-8 code point, four for an
 * escaped control byte. Stops after max_bytes bytes. */
static size_t safe_width(const char *s, size_t max_bytes)
{
    size_t w = 0;
    for (size_t i = 0; s[i] && i < max_bytes; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) w += 4;
        else if ((c & 0xc0) != 0x80) w++;
    }
    return w;
}

/* Print at most max_bytes bytes of s with control bytes as \xNN; then pad to width columns. */
static void put_safe(FILE *f, const char *s, size_t max_bytes, size_t width)
{
    size_t w = 0;
    for (size_t i = 0; s[i] && i < max_bytes; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\x%02x", c);
            w += 4;
        } else {
            fputc(c, f);
            if ((c & 0xc0) != 0x80) w++;
        }
    }
    for (; w < width; w++) fputc(' ', f);
}

/* 1234567 -> "1,234,567" */
static const char *commas(char *buf, size_t cap, uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t j = 0;
    for (int i = 0; i < n && j + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0) buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = 0;
    return buf;
}

static const char *human_bytes(char *buf, size_t cap, uint64_t v)
{
    static const char *const UNITS[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double x = (double)v;
    int u = 0;
    while (x >= 1024 && u < 6) {
        x /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, cap, "%llu B", (unsigned long long)v);
    else snprintf(buf, cap, "%.1f %s", x, UNITS[u]);
    return buf;
}

static void shape_str(char *buf, size_t cap, const st_tensor *t)
{
    size_t j = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->nd && j < cap; i++)
        j += (size_t)snprintf(buf + j, cap - j, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (j < cap) snprintf(buf + j, cap - j, "]");
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Natural order: digit runs compare as numbers, so "blocks.2." sorts before "blocks.10.". */
static int natcmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            while (*a == '0') a++;
            while (*b == '0') b++;
            size_t na = 0, nb = 0;
            while (a[na] >= '0' && a[na] <= '9') na++;
            while (b[nb] >= '0' && b[nb] <= '9') nb++;
            if (na != nb) return na < nb ? -1 : 1;
            int c = strncmp(a, b, na);
            if (c) return c;
            a += na;
            b += nb;
        } else {
            if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++;
            b++;
        }
    }
    return *a ? 1 : *b ? -1 : 0;
}

typedef struct {
    const st_tensor *t;
    const st_file *file;
} row;

static int row_cmp(const void *pa, const void *pb)
{
    const row *a = pa, *b = pb;
    int c = natcmp(a->t->name, b->t->name);
    return c ? c : strcmp(a->t->name, b->t->name);
}

/* ---- weights: .safetensors or *.safetensors.index.json -------------------------------------- */

/* "key = value" lines, keys padded to one column. A value is cut at its first newline or
 * after META_MAX_COLS columns (never inside a UTF-8 sequence) and the cut is announced with
 * the full length, so a JSON config stored as metadata does not flood the terminal. */
static void print_meta(const st_set *s)
{
    int n = st_set_meta_count(s);
    if (!n) {
        printf("\nmetadata: none\n");
        return;
    }
    size_t kw = 0;
    for (int i = 0; i < n; i++) {
        const char *k, *v;
        st_set_meta_at(s, i, &k, &v);
        size_t w = safe_width(k, 64);
        if (w > kw) kw = w;
    }
    printf("\nmetadata (%d):\n", n);
    for (int i = 0; i < n; i++) {
        const char *k, *v;
        st_set_meta_at(s, i, &k, &v);
        printf("  ");
        put_safe(stdout, k, 64, kw);
        printf(" = ");
        /* One line: stop at the first newline or after META_MAX_COLS columns. */
        size_t len = strlen(v), cut = 0, cols = 0;
        while (cut < len && v[cut] != '\n' && v[cut] != '\r') {
            unsigned char c = (unsigned char)v[cut];
            size_t step = 1;
            while (cut + step < len && ((unsigned char)v[cut + step] & 0xc0) == 0x80) step++;
            size_t w = (c < 0x20 || c == 0x7f) ? 4 : 1;
            if (cols + w > META_MAX_COLS) break;
            cols += w;
            cut += step;
        }
        put_safe(stdout, v, cut, 0);
        if (cut < len) printf(" ... (%zu bytes, cut)", len);
        printf("\n");
    }
}

/* The diffusion model a file holds, as dit_load would see it (nothing when it holds none). */
static void print_model(const char *path)
{
    dit_config c;
    dit_err e = { 0 };
    char desc[1024];
    if (dit_probe(path, NULL, &c, &e) == DIT_OK) {
        dit_config_describe(&c, desc, sizeof desc);
        printf("model: %s %s\n", dit_family_name(c.family), desc);
    } else if (!strstr(e.msg, "not a FLUX")) {
        printf("model: not loadable: ");
        put_safe(stdout, e.msg, SIZE_MAX, 0);
        printf("\n");
    }
}

/* A .safetensors file or an index: validate everything (st_set_open), then print the table
 * NAME DTYPE SHAPE BYTES [SHARD], the metadata, and one summary line. The table is built in
 * two passes: column widths first, then the rows. */
static int inspect_weights(const char *path)
{
    st_set *s;
    dit_err e = { 0 };
    if (st_set_open(&s, path, &e) != DIT_OK) {
        fprintf(stderr, "dit inspect: %s\n", e.msg);
        return 1;
    }
    int n = st_set_count(s), index = st_set_is_index(s);
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0; /* shard names without the folder */
    row *rows = malloc((n ? (size_t)n : 1) * sizeof *rows);
    if (!rows) {
        fprintf(stderr, "dit inspect: %s: out of memory\n", path);
        st_set_close(s);
        return 1;
    }
    for (int i = 0; i < n; i++) rows[i] = (row){ st_set_at(s, i), st_set_file_of(s, i) };
    qsort(rows, (size_t)n, sizeof *rows, row_cmp);

    /* Column widths. */
    char buf[256];
    size_t nw = 4, dw = 5, sw = 5, bw = 5;
    for (int i = 0; i < n; i++) {
        const st_tensor *t = rows[i].t;
        size_t w = safe_width(t->name, SIZE_MAX);
        if (w > nw) nw = w;
        if (strlen(st_dtype_name(t->dtype)) > dw) dw = strlen(st_dtype_name(t->dtype));
        shape_str(buf, sizeof buf, t);
        if (strlen(buf) > sw) sw = strlen(buf);
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)(t->end - t->begin));
        if (strlen(buf) > bw) bw = strlen(buf);
    }

    printf("%s: %s, %d tensor%s", path, index ? "sharded model" : "safetensors", n, n == 1 ? "" : "s");
    if (index) printf(" in %d shard%s", st_set_file_count(s), st_set_file_count(s) == 1 ? "" : "s");
    printf("\n\n");
    printf("%-*s  %-*s  %-*s  %*s", (int)nw, "NAME", (int)dw, "DTYPE", (int)sw, "SHAPE", (int)bw, "BYTES");
    if (index) printf("  SHARD");
    printf("\n");

    uint64_t params = 0, bytes = 0;
    int per_dtype[ST_DTYPE_COUNT] = { 0 };
    for (int i = 0; i < n; i++) {
        const st_tensor *t = rows[i].t;
        put_safe(stdout, t->name, SIZE_MAX, nw);
        shape_str(buf, sizeof buf, t);
        printf("  %-*s  %-*s  %*llu", (int)dw, st_dtype_name(t->dtype), (int)sw, buf, (int)bw,
               (unsigned long long)(t->end - t->begin));
        if (index) {
            printf("  ");
            put_safe(stdout, st_path(rows[i].file) + dir_len, SIZE_MAX, 0);
        }
        printf("\n");
        params = add_sat(params, t->numel);
        bytes = add_sat(bytes, t->end - t->begin);
        per_dtype[t->dtype]++;
    }

    print_meta(s);

    char pb[32], bb[32], hb[32];
    printf("\n%d tensor%s, %s parameters, %s bytes (%s); dtypes:", n, n == 1 ? "" : "s",
           commas(pb, sizeof pb, params), commas(bb, sizeof bb, bytes), human_bytes(hb, sizeof hb, bytes));
    int any = 0;
    for (int d = ST_DTYPE_COUNT - 1; d >= 0; d--)
        if (per_dtype[d]) {
            printf("%s %s x%d", any ? "," : "", st_dtype_name((st_dtype)d), per_dtype[d]);
            any = 1;
        }
    printf("%s\n", any ? "" : " none");
    free(rows);
    st_set_close(s);
    print_model(path);
    return 0;
}

/* ---- PNG images ------------------------------------------------------------------------------ */

static int is_png(const char *path)
{
    static const unsigned char SIG[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    unsigned char b[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    const int ok = fread(b, 1, 8, f) == 8 && !memcmp(b, SIG, 8);
    fclose(f);
    return ok;
}

/* A PNG: size and every text chunk (the generation settings dit writes there, or another tool's),
 * values printed whole with control bytes other than newlines escaped. */
static int inspect_png(const char *path)
{
    image im = { 0 };
    img_text *t = NULL;
    int n = 0;
    dit_err e = { 0 };
    if (img_load(&im, path, 0, &e) || img_read_png_text(path, &t, &n, &e)) {
        img_free(&im);
        fprintf(stderr, "dit inspect: %s\n", e.msg);
        return 1;
    }
    printf("%s: PNG %dx%d, %d channel%s, %d text chunk%s\n", path, im.w, im.h, im.c, im.c == 1 ? "" : "s", n,
           n == 1 ? "" : "s");
    for (int i = 0; i < n; i++) {
        printf("\n");
        put_safe(stdout, t[i].key, 80, 0);
        printf(":\n");
        for (const char *v = t[i].value; *v;) { /* line by line, so newlines stay newlines */
            const char *nl = strchr(v, '\n');
            const size_t len = nl ? (size_t)(nl - v) : strlen(v);
            printf("  ");
            put_safe(stdout, v, len, 0);
            printf("\n");
            v += len + (nl != NULL);
        }
    }
    img_free_text(t, n);
    img_free(&im);
    return 0;
}

/* ---- the command -------------------------------------------------------------------------- */

/* Options first ("--" ends them), then exactly one FILE. Usage problems exit 2, a bad file 1. */
int cmd_inspect(int argc, char **argv)
{
    const char *file = NULL;
    int n_files = 0, opts_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            usage(stdout);
            return 0;
        }
        if (!opts_done && !strcmp(a, "--")) {
            opts_done = 1;
            continue;
        }
        if (!opts_done && a[0] == '-' && a[1]) {
            fprintf(stderr, "dit inspect: unknown option '%s' (try 'dit inspect --help')\n", a);
            return 2;
        }
        file = a;
        n_files++;
    }
    if (n_files == 0) {
        usage(stderr);
        return 2;
    }
    if (n_files > 1) {
        fprintf(stderr, "dit inspect: expected one FILE, got %d (try 'dit inspect --help')\n", n_files);
        return 2;
    }
    if (is_png(file)) return inspect_png(file);
    char resolved[4096];
    dit_err e = { 0 };
    if (dit_resolve_path(file, resolved, sizeof resolved, &e)) { /* a folder without a model */
        fprintf(stderr, "dit inspect: %s\n", e.msg);
        return 1;
    }
    return inspect_weights(resolved);
}
