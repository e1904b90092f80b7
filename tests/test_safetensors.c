/* tests/test_safetensors.c — core/safetensors (reader, index, writer) and `dit inspect`.
 *
 * Every malformed file is written here, byte by byte, into a mkdtemp folder that is removed at
 * the end. Each must fail with the right status and a one-line message that starts with the
 * file's path and names the problem (the expected phrase is per case, so removing one check
 * makes its case fail even when a later check would still reject the file). The writer's
 * output is compared with the byte vectors of huggingface/safetensors' own unit tests
 * (tensor.rs test_serialization / test_empty), so it is the standard format, not just
 * something our reader accepts. Sizes of the dtypes come from a table written here from the
 * spec, not from the code under test. If DIT_BIN is set, the CLI is run on the same files.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "tests/test.h"

static char g_dir[256]; /* the temp folder of this run */

static void tpath(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g_dir, name);
}

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(len > 0 ? (size_t)len : 1);
    *n = p ? fread(p, 1, (size_t)len, f) : 0;
    fclose(f);
    return p;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++) p[k] = (unsigned char)(v >> (8 * k));
}

#define NOLEN 0 /* length field = the header's own length */

/* Data byte i of every hand-made file: a pattern, so copies and offsets can be checked. */
static unsigned char pat(size_t i) { return (unsigned char)(i * 7 + 1); }

/* u64 length (hlen_field, or the header's own length when NOLEN), header, data_len bytes. */
static int write_st(const char *path, const char *hdr, size_t hdr_len, uint64_t hlen_field, size_t data_len)
{
    size_t n = 8 + hdr_len + data_len;
    unsigned char *b = malloc(n);
    if (!b) return 0;
    put_le64(b, hlen_field == NOLEN ? hdr_len : hlen_field);
    memcpy(b + 8, hdr, hdr_len);
    for (size_t i = 0; i < data_len; i++) b[8 + hdr_len + i] = pat(i);
    int ok = write_bytes(path, b, n);
    free(b);
    return ok;
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* The message is one line, starts with "path: " and contains want. */
static void check_msg(tctx *t, const char *case_name, const dit_err *e, const char *path, const char *want)
{
    size_t pl = strlen(path);
    CHECK(t, !strncmp(e->msg, path, pl) && e->msg[pl] == ':', "%s: message does not start with the path: %s",
          case_name, e->msg);
    CHECK(t, !strchr(e->msg, '\n') && !strchr(e->msg, '\r'), "%s: message is not one line: %s", case_name, e->msg);
    CHECK(t, strstr(e->msg, want) != NULL, "%s: message lacks \"%s\": %s", case_name, want, e->msg);
}

/* ---- the malformed files ------------------------------------------------------------------- */

typedef struct {
    const char *name;   /* file name in the temp folder */
    const char *hdr;    /* header bytes */
    size_t hdr_len;     /* 0: strlen(hdr) */
    uint64_t hlen;      /* value of the length field; NOLEN: hdr_len */
    size_t data_len;    /* bytes after the header */
    dit_status code;
    const char *want;   /* phrase the message must contain */
} bad_case;

#define T1(dt, shape, off) "{\"a\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" off "}}"

static const bad_case BAD[] = {
    /* file and header length */
    { "empty.st", "", 0, NOLEN, 0, DIT_E_FORMAT, "too short" }, /* 8-byte file below: see make_bad */
    { "short7.st", "", 0, NOLEN, 0, DIT_E_FORMAT, "too short" },
    { "hlen_past_end.st", "{}", 0, 100, 0, DIT_E_FORMAT, "runs past the end of the file" },
    { "hlen_limit.st", "{}", 0, 100000000, 0, DIT_E_FORMAT, "runs past the end of the file" },
    { "hlen_absurd.st", "{}", 0, 100000001, 0, DIT_E_FORMAT, "beyond the safetensors limit" },
    { "hlen_max.st", "{}", 0, 0xffffffffffffffffull - 1, 0, DIT_E_FORMAT, "beyond the safetensors limit" },
    { "hlen_top.st", "{}", 0, 0xffffffffffffffffull, 0, DIT_E_FORMAT, "beyond the safetensors limit" },
    { "hdr_empty.st", "", 0, NOLEN, 4, DIT_E_FORMAT, "header is empty" },
    /* header text */
    { "not_json.st", "{\"a\":", 0, NOLEN, 0, DIT_E_FORMAT, "not valid JSON" },
    { "not_json2.st", "{'a': 1}", 0, NOLEN, 0, DIT_E_FORMAT, "not valid JSON" },
    { "deep.st", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
      0, NOLEN, 0, DIT_E_FORMAT, "not valid JSON" },
    { "array.st", "[]      ", 0, NOLEN, 0, DIT_E_FORMAT, "not a JSON object" },
    { "number.st", "42", 0, NOLEN, 0, DIT_E_FORMAT, "not a JSON object" },
    { "string.st", "\"{}\"", 0, NOLEN, 0, DIT_E_FORMAT, "not a JSON object" },
    { "trailing.st", "{} x", 0, NOLEN, 0, DIT_E_FORMAT, "data after the JSON" },
    { "trailing2.st", "{}{}", 0, NOLEN, 0, DIT_E_FORMAT, "data after the JSON" },
    { "nul.st", "{}\0     ", 8, NOLEN, 0, DIT_E_FORMAT, "NUL byte" },
    { "nul_in_key.st", "{\"a\0b\":1}", 9, NOLEN, 0, DIT_E_FORMAT, "NUL byte" },
    { "ctrl.st", "{\x01}", 0, NOLEN, 0, DIT_E_FORMAT, "control byte" },
    { "esc_nul.st", "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, NOLEN, 0,
      DIT_E_FORMAT, "escaped NUL" },
    { "utf8_bad.st", "{\"a\xff\":{}}", 0, NOLEN, 0, DIT_E_FORMAT, "not valid UTF-8" },
    { "utf8_overlong.st", "{\"a\xc0\xaf\":{}}", 0, NOLEN, 0, DIT_E_FORMAT, "not valid UTF-8" },
    { "utf8_surrogate.st", "{\"a\xed\xa0\x80\":{}}", 0, NOLEN, 0, DIT_E_FORMAT, "not valid UTF-8" },
    { "utf8_cut.st", "{\"a\":{}}\xe2\x82", 0, NOLEN, 0, DIT_E_FORMAT, "not valid UTF-8" },
    /* entry structure */
    { "entry_num.st", "{\"a\":5}", 0, NOLEN, 0, DIT_E_FORMAT, "entry is not a JSON object" },
    { "entry_arr.st", "{\"a\":[0,4]}", 0, NOLEN, 0, DIT_E_FORMAT, "entry is not a JSON object" },
    { "no_dtype.st", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NOLEN, 4, DIT_E_FORMAT, "missing \"dtype\"" },
    { "no_shape.st", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 0, NOLEN, 4, DIT_E_FORMAT, "missing \"shape\"" },
    { "no_offsets.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, NOLEN, 4, DIT_E_FORMAT,
      "missing \"data_offsets\"" },
    { "dup_field.st", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NOLEN,
      4, DIT_E_FORMAT, "duplicate \"dtype\"" },
    { "dtype_num.st", "{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NOLEN, 4, DIT_E_FORMAT,
      "\"dtype\" is not a string" },
    { "shape_str.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 0, NOLEN, 4, DIT_E_FORMAT,
      "\"shape\" is not an array" },
    { "shape_obj.st", T1("F32", "{}", "[0,4]"), 0, NOLEN, 4, DIT_E_FORMAT, "\"shape\" is not an array" },
    { "offsets_obj.st", T1("F32", "[1]", "{}"), 0, NOLEN, 4, DIT_E_FORMAT, "\"data_offsets\" is not an array" },
    { "offsets_str.st", T1("F32", "[1]", "\"0,4\""), 0, NOLEN, 4, DIT_E_FORMAT, "\"data_offsets\" is not an array" },
    /* dtype */
    { "dtype_unknown.st", T1("F31", "[1]", "[0,4]"), 0, NOLEN, 4, DIT_E_FORMAT, "unknown dtype \"F31\"" },
    { "dtype_lower.st", T1("f32", "[1]", "[0,4]"), 0, NOLEN, 4, DIT_E_FORMAT, "unknown dtype \"f32\"" },
    { "dtype_empty.st", T1("", "[1]", "[0,4]"), 0, NOLEN, 4, DIT_E_FORMAT, "unknown dtype" },
    /* shape */
    { "shape_frac.st", T1("F32", "[2.5]", "[0,10]"), 0, NOLEN, 10, DIT_E_FORMAT, "shape[0] = 2.5 is not an integer" },
    /* integral values written as non-integers: the format takes unsigned integers only */
    { "shape_2p0.st", T1("F32", "[2.0]", "[0,8]"), 0, NOLEN, 8, DIT_E_FORMAT, "header number '2.0' at offset" },
    { "offsets_exp.st", T1("F32", "[2]", "[0,8e0]"), 0, NOLEN, 8, DIT_E_FORMAT, "header number '8e0' at offset" },
    { "shape_minus0.st", T1("F32", "[-0]", "[0,0]"), 0, NOLEN, 0, DIT_E_FORMAT, "header number '-0' at offset" },
    { "shape_neg.st", T1("F32", "[2,-1]", "[0,0]"), 0, NOLEN, 0, DIT_E_FORMAT, "shape[1] = -1 is negative" },
    { "shape_2p53.st", T1("U8", "[9007199254740994]", "[0,0]"), 0, NOLEN, 0, DIT_E_FORMAT, "larger than 2^53" },
    { "shape_huge.st", T1("U8", "[1e300]", "[0,0]"), 0, NOLEN, 0, DIT_E_FORMAT, "larger than 2^53" },
    { "shape_inf.st", T1("U8", "[1e999]", "[0,0]"), 0, NOLEN, 0, DIT_E_FORMAT, "larger than 2^53" },
    { "shape_strel.st", T1("F32", "[\"2\"]", "[0,8]"), 0, NOLEN, 8, DIT_E_FORMAT, "shape[0] is not a number" },
    { "shape_bool.st", T1("F32", "[true]", "[0,4]"), 0, NOLEN, 4, DIT_E_FORMAT, "shape[0] is not a number" },
    { "shape_null.st", T1("F32", "[1,null]", "[0,4]"), 0, NOLEN, 4, DIT_E_FORMAT, "shape[1] is not a number" },
    { "shape_9d.st", T1("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 0, NOLEN, 4, DIT_E_FORMAT, "9 dims, more than 8" },
    { "overflow_numel.st", T1("F32", "[4294967296,4294967296,16]", "[0,0]"), 0, NOLEN, 0, DIT_E_FORMAT,
      "more than 2^64 elements" },
    { "overflow_zero_last.st", T1("F32", "[4294967296,4294967296,16,0]", "[0,0]"), 0, NOLEN, 0, DIT_E_FORMAT,
      "more than 2^64 elements" },
    { "overflow_bytes.st", T1("F32", "[2147483648,2147483648,2]", "[0,0]"), 0, NOLEN, 0, DIT_E_FORMAT,
      "byte size beyond 2^64" },
    { "overflow_bytes_exact.st", T1("U16", "[2147483648,4294967296]", "[0,0]"), 0, NOLEN, 0, DIT_E_FORMAT,
      "byte size beyond 2^64" },
    { "f4_odd.st", T1("F4", "[3]", "[0,2]"), 0, NOLEN, 2, DIT_E_FORMAT, "whole number of bytes" },
    /* data_offsets */
    { "offsets_one.st", T1("F32", "[1]", "[4]"), 0, NOLEN, 4, DIT_E_FORMAT, "not an array of two integers" },
    { "offsets_three.st", T1("F32", "[1]", "[0,4,4]"), 0, NOLEN, 4, DIT_E_FORMAT, "not an array of two integers" },
    { "offsets_neg.st", T1("F32", "[1]", "[-4,0]"), 0, NOLEN, 4, DIT_E_FORMAT, "data_offsets[0] is not a non-negative" },
    { "offsets_frac.st", T1("F32", "[1]", "[0,4.5]"), 0, NOLEN, 4, DIT_E_FORMAT, "data_offsets[1] is not a non-negative" },
    { "offsets_strel.st", T1("F32", "[1]", "[\"0\",4]"), 0, NOLEN, 4, DIT_E_FORMAT, "data_offsets[0] is not a non-negative" },
    { "offsets_huge.st", T1("F32", "[1]", "[0,1e20]"), 0, NOLEN, 4, DIT_E_FORMAT, "data_offsets[1] = 1e+20 is beyond the data" },
    { "reversed.st", T1("F32", "[2]", "[16,8]"), 0, NOLEN, 16, DIT_E_FORMAT, "data_offsets [16, 8] reversed" },
    { "truncated.st", T1("F32", "[256]", "[0,1024]"), 0, NOLEN, 100, DIT_E_FORMAT, "run past the data (100 bytes" },
    { "length_mismatch.st", T1("F32", "[2]", "[0,12]"), 0, NOLEN, 12, DIT_E_FORMAT,
      "hold 12 bytes, but F32 [2] needs 8" },
    { "length_scalar.st", T1("F64", "[]", "[0,4]"), 0, NOLEN, 4, DIT_E_FORMAT, "hold 4 bytes, but F64 [] needs 8" },
    /* tiling of the data */
    { "overlap.st",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
      0, NOLEN, 12, DIT_E_FORMAT, "'a' [0, 8] and 'b' [4, 12] overlap" },
    { "overlap_same.st",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
      0, NOLEN, 8, DIT_E_FORMAT, "overlap" },
    { "overlap_empty_inside.st",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
      0, NOLEN, 8, DIT_E_FORMAT, "overlap" },
    { "hole.st",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
      0, NOLEN, 20, DIT_E_FORMAT, "hole of 4 bytes between tensors 'a'" },
    { "hole_first.st", T1("F32", "[2]", "[4,12]"), 0, NOLEN, 12, DIT_E_FORMAT, "hole of 4 bytes before the first tensor" },
    { "trailing_bytes.st", T1("F32", "[2]", "[0,8]"), 0, NOLEN, 12, DIT_E_FORMAT, "4 trailing bytes" },
    { "trailing_no_tensor.st", "{}", 0, NOLEN, 3, DIT_E_FORMAT, "3 trailing bytes" },
    /* names and __metadata__ */
    { "dup_name.st",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
      0, NOLEN, 16, DIT_E_FORMAT, "duplicate tensor name 'a'" },
    { "dup_meta.st", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, NOLEN, 0, DIT_E_FORMAT,
      "duplicate \"__metadata__\"" },
    { "meta_str.st", "{\"__metadata__\":\"pt\"}", 0, NOLEN, 0, DIT_E_FORMAT, "\"__metadata__\" is not an object" },
    { "meta_arr.st", "{\"__metadata__\":[]}", 0, NOLEN, 0, DIT_E_FORMAT, "\"__metadata__\" is not an object" },
    { "meta_num.st", "{\"__metadata__\":{\"k\":1}}", 0, NOLEN, 0, DIT_E_FORMAT, "__metadata__ 'k' is not a string" },
    { "meta_null.st", "{\"__metadata__\":{\"a\":\"x\",\"k\":null}}", 0, NOLEN, 0, DIT_E_FORMAT,
      "__metadata__ 'k' is not a string" },
    { "meta_dupkey.st", "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, NOLEN, 0, DIT_E_FORMAT,
      "duplicate __metadata__ key 'k'" },
};
#define N_BAD (int)(sizeof BAD / sizeof BAD[0])

/* Write every BAD file into dir. The first two are raw: 0 and 7 bytes. */
static int make_bad(const char *dir)
{
    int ok = 1;
    for (int i = 0; i < N_BAD; i++) {
        const bad_case *c = &BAD[i];
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, c->name);
        if (!strcmp(c->name, "empty.st")) ok &= write_bytes(p, "", 0);
        else if (!strcmp(c->name, "short7.st")) ok &= write_bytes(p, "\x02\0\0\0\0\0\0", 7);
        else ok &= write_st(p, c->hdr, c->hdr_len ? c->hdr_len : strlen(c->hdr), c->hlen, c->data_len);
    }
    return ok;
}

static void t_malformed(tctx *t)
{
    CHECK(t, make_bad(g_dir), "cannot write the malformed files");
    for (int i = 0; i < N_BAD; i++) {
        const bad_case *c = &BAD[i];
        char p[512];
        tpath(p, sizeof p, c->name);
        st_file *f = (st_file *)1;
        dit_err e = { 0 };
        dit_status s = st_open(&f, p, &e);
        CHECK(t, s == c->code, "%s: status %s, expected %s (%s)", c->name, err_status_name(s),
              err_status_name(c->code), e.msg);
        CHECK(t, f == NULL, "%s: *out not NULL on failure", c->name);
        CHECK(t, e.code == s, "%s: e.code %d != status %d", c->name, (int)e.code, (int)s);
        if (s != DIT_OK) check_msg(t, c->name, &e, p, c->want);
        else st_close(f);
    }
    printf("  %d malformed files rejected\n", N_BAD);
}

static void t_io_errors(tctx *t)
{
    char p[512];
    st_file *f = (st_file *)1;
    dit_err e = { 0 };
    tpath(p, sizeof p, "does-not-exist.safetensors");
    CHECK(t, st_open(&f, p, &e) == DIT_E_IO && f == NULL, "missing file: %s", e.msg);
    check_msg(t, "missing", &e, p, "cannot open");
    tpath(p, sizeof p, "a_dir.safetensors");
    mkdir(p, 0755);
    CHECK(t, st_open(&f, p, &e) == DIT_E_IO && f == NULL, "directory: %s", e.msg);
    check_msg(t, "directory", &e, p, "not a regular file");
    st_set *s = (st_set *)1;
    CHECK(t, st_set_open(&s, p, &e) == DIT_E_IO && s == NULL, "set on a directory: %s", e.msg);
    /* A FIFO with no writer: open must not block, and it is not a regular file. */
    tpath(p, sizeof p, "fifo.safetensors");
    CHECK(t, mkfifo(p, 0600) == 0, "mkfifo: %s", strerror(errno));
    CHECK(t, st_open(&f, p, &e) == DIT_E_IO && f == NULL, "fifo: %s", e.msg);
    check_msg(t, "fifo", &e, p, "not a regular file");
    tpath(p, sizeof p, "fifo.index.json");
    CHECK(t, mkfifo(p, 0600) == 0, "mkfifo: %s", strerror(errno));
    CHECK(t, st_set_open(&s, p, &e) == DIT_E_IO && s == NULL, "fifo index: %s", e.msg);
    check_msg(t, "fifo index", &e, p, "not a regular file");
}

/* ---- valid files ---------------------------------------------------------------------------- */

/* Sizes in bits, from the safetensors spec (docs + tensor.rs), independent of the code. */
static const struct {
    const char *name;
    int bits;
} SPEC_DTYPES[] = {
    { "BOOL", 8 }, { "F4", 4 },   { "F6_E2M3", 6 }, { "F6_E3M2", 6 }, { "U8", 8 },   { "I8", 8 },   { "F8_E5M2", 8 },
    { "F8_E4M3", 8 }, { "F8_E8M0", 8 }, { "I16", 16 }, { "U16", 16 }, { "F16", 16 }, { "BF16", 16 }, { "I32", 32 },
    { "U32", 32 }, { "F32", 32 }, { "C64", 64 }, { "F64", 64 }, { "I64", 64 }, { "U64", 64 },
};
#define N_SPEC (int)(sizeof SPEC_DTYPES / sizeof SPEC_DTYPES[0])

static void t_dtypes(tctx *t)
{
    CHECK(t, N_SPEC == ST_DTYPE_COUNT, "%d spec dtypes, enum has %d", N_SPEC, (int)ST_DTYPE_COUNT);
    /* One file holding one tensor of each dtype, 8 elements each (whole bytes for F4/F6). */
    char hdr[4096];
    size_t hl = 0, off = 0;
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "{");
    for (int i = 0; i < N_SPEC; i++) {
        size_t nb = 8u * (size_t)SPEC_DTYPES[i].bits / 8;
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "%s\"t_%s\":{\"dtype\":\"%s\",\"shape\":[2,4],\"data_offsets\":[%zu,%zu]}",
                               i ? "," : "", SPEC_DTYPES[i].name, SPEC_DTYPES[i].name, off, off + nb);
        off += nb;
    }
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
    char p[512];
    tpath(p, sizeof p, "all_dtypes.safetensors");
    CHECK(t, write_st(p, hdr, hl, NOLEN, off), "write");
    st_file *f;
    dit_err e = { 0 };
    CHECK(t, st_open(&f, p, &e) == DIT_OK, "all dtypes: %s", e.msg);
    if (!f) return;
    CHECK(t, st_count(f) == N_SPEC, "count %d", st_count(f));
    for (int i = 0; i < N_SPEC; i++) {
        char name[32];
        snprintf(name, sizeof name, "t_%s", SPEC_DTYPES[i].name);
        const st_tensor *x = st_find(f, name);
        CHECK(t, x != NULL, "%s not found", name);
        if (!x) continue;
        CHECK(t, !strcmp(st_dtype_name(x->dtype), SPEC_DTYPES[i].name), "%s: dtype %s", name, st_dtype_name(x->dtype));
        CHECK(t, st_dtype_parse(SPEC_DTYPES[i].name) == x->dtype, "%s: parse", name);
        CHECK(t, st_dtype_bits(x->dtype) == SPEC_DTYPES[i].bits, "%s: bits %d", name, st_dtype_bits(x->dtype));
        CHECK(t, x->numel == 8 && x->nd == 2 && x->shape[0] == 2 && x->shape[1] == 4, "%s: shape", name);
        CHECK(t, x->end - x->begin == (uint64_t)SPEC_DTYPES[i].bits, "%s: %llu bytes", name,
              (unsigned long long)(x->end - x->begin));
        int align = SPEC_DTYPES[i].bits >= 8 ? SPEC_DTYPES[i].bits / 8 : 1;
        CHECK(t, (uintptr_t)x->data % (uintptr_t)align == 0, "%s: data misaligned", name);
        const unsigned char *d = x->data;
        int same = 1;
        for (uint64_t k = 0; k < x->end - x->begin; k++) same &= d[k] == pat((size_t)(x->begin + k));
        CHECK(t, same, "%s: data bytes differ", name);
    }
    CHECK(t, st_dtype_parse("f32") == ST_DTYPE_COUNT && st_dtype_parse("F8_E4M3FN") == ST_DTYPE_COUNT,
          "parse is exact");
    CHECK(t, st_dtype_size(ST_BF16) == 2 && st_dtype_size(ST_I64) == 8 && st_dtype_size(ST_F4) == 0, "sizes");
    st_close(f);
}

static void t_scalar_and_empty(tctx *t)
{
    char p[512];
    st_file *f;
    dit_err e = { 0 };
    /* scalar F32 3.5, zero-size [0, 3] in the middle (begin == end), and a [2] after it */
    const char *h = "{\"z\":{\"dtype\":\"BF16\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                    "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                    "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}  ";
    unsigned char b[8 + 256 + 12];
    size_t hl = strlen(h);
    put_le64(b, hl);
    memcpy(b + 8, h, hl);
    float vals[3] = { 3.5f, -1.0f, 2.0f };
    memcpy(b + 8 + hl, vals, 12);
    tpath(p, sizeof p, "scalar.safetensors");
    CHECK(t, write_bytes(p, b, 8 + hl + 12), "write");
    CHECK(t, st_open(&f, p, &e) == DIT_OK, "scalar + empty: %s", e.msg);
    if (f) {
        const st_tensor *s = st_find(f, "s"), *z = st_find(f, "z"), *v = st_find(f, "v");
        CHECK(t, s && s->nd == 0 && s->numel == 1, "scalar shape");
        CHECK(t, z && z->nd == 2 && z->numel == 0 && z->begin == z->end, "zero-size tensor");
        CHECK(t, st_count(f) == 3 && st_at(f, 0) == s && st_at(f, 1) == z && st_at(f, 2) == v,
              "file order is by offset");
        tensor tv;
        CHECK(t, s && st_tensor_view(s, &tv, &e) == DIT_OK && tv.nd == 0 && tensor_numel(&tv) == 1, "scalar view");
        if (s) CHECK(t, ((const float *)s->data)[0] == 3.5f, "scalar value");
        CHECK(t, v && st_tensor_view(v, &tv, &e) == DIT_OK && tv.type == DT_F32 && tv.shape[0] == 2, "view");
        if (v) CHECK(t, tensor_get_f32(&tv, (int64_t[]){ 1 }) == 2.0f, "view value");
        CHECK(t, st_find(f, "nope") == NULL && st_find(f, "") == NULL, "absent names");
        CHECK(t, st_meta_count(f) == 0 && st_meta_get(f, "x") == NULL, "no metadata");
        st_close(f);
    }
    /* no tensors at all: "{}" and a padded "{}" */
    tpath(p, sizeof p, "nothing.safetensors");
    CHECK(t, write_st(p, "{}      ", 8, NOLEN, 0), "write");
    CHECK(t, st_open(&f, p, &e) == DIT_OK, "{}: %s", e.msg);
    if (f) {
        CHECK(t, st_count(f) == 0 && st_data_size(f) == 0, "empty file");
        st_close(f);
    }
    /* an I64 tensor (position ids) is listed but has no compute view */
    tpath(p, sizeof p, "i64.safetensors");
    CHECK(t, write_st(p, T1("I64", "[3]", "[0,24]"), strlen(T1("I64", "[3]", "[0,24]")), NOLEN, 24), "write");
    CHECK(t, st_open(&f, p, &e) == DIT_OK, "i64: %s", e.msg);
    if (f) {
        tensor tv;
        dit_status s = st_tensor_view(st_find(f, "a"), &tv, &e);
        CHECK(t, s == DIT_E_UNSUPPORTED && strstr(e.msg, "'a'") && strstr(e.msg, "I64"), "I64 view: %s", e.msg);
        st_close(f);
    }
}

/* An old writer's file: header length not a multiple of 8, so tensors are misaligned. */
static void t_misaligned(tctx *t)
{
    const char *h = "{\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                    "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11]},"
                    "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[11,19]},"
                    "\"z\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[19,19]},"
                    "\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[19,23]}} ";
    size_t hl = strlen(h);
    char p[512];
    tpath(p, sizeof p, "misaligned.safetensors");
    CHECK(t, write_st(p, h, hl, NOLEN, 23), "write");
    /* Preconditions, so the test really covers misalignment. */
    CHECK(t, (8 + hl + 3) % 4 != 0 && (8 + hl + 11) % 8 != 0 && (8 + hl + 19) % 2 != 0,
          "test file is not misaligned (hl %zu)", hl);
    st_file *f;
    dit_err e = { 0 };
    CHECK(t, st_open(&f, p, &e) == DIT_OK, "misaligned: %s", e.msg);
    if (!f) return;
    static const struct { const char *n; size_t align; } W[] = { { "u", 1 }, { "f", 4 }, { "d", 8 }, { "z", 8 }, { "h", 2 } };
    for (int i = 0; i < 5; i++) {
        const st_tensor *x = st_find(f, W[i].n);
        CHECK(t, x != NULL, "%s missing", W[i].n);
        if (!x) continue;
        CHECK(t, (uintptr_t)x->data % W[i].align == 0, "%s: data %p not aligned to %zu", W[i].n, x->data, W[i].align);
        const unsigned char *d = x->data;
        int same = 1;
        for (uint64_t k = 0; k < x->end - x->begin; k++) same &= d[k] == pat((size_t)(x->begin + k));
        CHECK(t, same, "%s: copied bytes differ", W[i].n);
    }
    const st_tensor *x = st_find(f, "f");
    if (x) {
        float want[2], got[2];
        unsigned char raw[8];
        for (int k = 0; k < 8; k++) raw[k] = pat((size_t)(3 + k));
        memcpy(want, raw, 8);
        tensor tv;
        CHECK(t, st_tensor_view(x, &tv, &e) == DIT_OK, "view");
        got[0] = tensor_get_f32(&tv, (int64_t[]){ 0 });
        got[1] = tensor_get_f32(&tv, (int64_t[]){ 1 });
        CHECK(t, !memcmp(want, got, 8), "F32 values through the view");
    }
    st_close(f);
}

/* ---- writer --------------------------------------------------------------------------------- */

/* huggingface/safetensors tensor.rs test_serialization: {"attn.0": F32 [1,2,3] = 0..5}. */
static const unsigned char RUST_SERIALIZATION[] = {
    64,  0,   0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 46,  48,  34,  58,  123, 34,  100,
    116, 121, 112, 101, 34,  58,  34,  70,  51,  50,  34,  44,  34,  115, 104, 97,  112, 101, 34,  58,  91,
    49,  44,  50,  44,  51,  93,  44,  34,  100, 97,  116, 97,  95,  111, 102, 102, 115, 101, 116, 115, 34,
    58,  91,  48,  44,  50,  52,  93,  125, 125, 0,   0,   0,   0,   0,   0,   128, 63,  0,   0,   0,   64,
    0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64,
};
/* tensor.rs test_empty: no tensors, __metadata__ {"framework": "pt"}. */
static const unsigned char RUST_EMPTY_META[] = {
    40,  0,  0,   0,   0,   0,   0,   0,   123, 34,  95,  95,  109, 101, 116, 97, 100, 97,  116, 97, 95, 95, 34, 58,
    123, 34, 102, 114, 97,  109, 101, 119, 111, 114, 107, 34,  58,  34,  112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
};
static const unsigned char RUST_EMPTY[] = { 8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32 };

static int file_equals(const char *path, const unsigned char *want, size_t n, size_t *got_n)
{
    size_t len = 0;
    unsigned char *b = read_bytes(path, &len);
    int same = b && len == n && !memcmp(b, want, n);
    free(b);
    *got_n = len;
    return same;
}

static void t_writer_reference_bytes(tctx *t)
{
    char p[512];
    dit_err e = { 0 };
    size_t n;
    float x[6] = { 0, 1, 2, 3, 4, 5 };
    st_writer *w = st_writer_new();
    CHECK(t, w && st_writer_add(w, "attn.0", ST_F32, 3, (int64_t[]){ 1, 2, 3 }, x, &e) == DIT_OK, "add: %s", e.msg);
    tpath(p, sizeof p, "rust_serialization.safetensors");
    CHECK(t, st_writer_save(w, p, &e) == DIT_OK, "save: %s", e.msg);
    CHECK(t, file_equals(p, RUST_SERIALIZATION, sizeof RUST_SERIALIZATION, &n), "bytes differ from tensor.rs (%zu bytes)", n);
    st_writer_free(w);

    w = st_writer_new();
    CHECK(t, w && st_writer_meta(w, "framework", "pt", &e) == DIT_OK, "meta: %s", e.msg);
    tpath(p, sizeof p, "rust_empty_meta.safetensors");
    CHECK(t, st_writer_save(w, p, &e) == DIT_OK, "save: %s", e.msg);
    CHECK(t, file_equals(p, RUST_EMPTY_META, sizeof RUST_EMPTY_META, &n), "bytes differ from tensor.rs (%zu bytes)", n);
    st_writer_free(w);

    w = st_writer_new();
    tpath(p, sizeof p, "rust_empty.safetensors");
    CHECK(t, w && st_writer_save(w, p, &e) == DIT_OK, "save: %s", e.msg);
    CHECK(t, file_equals(p, RUST_EMPTY, sizeof RUST_EMPTY, &n), "bytes differ from tensor.rs (%zu bytes)", n);
    st_writer_free(w);
}

typedef struct {
    const char *name;
    st_dtype dt;
    int nd;
    int64_t shape[4];
    size_t nbytes; /* computed by hand */
} wcase;

static const wcase WT[] = {
    { "model.b.weight", ST_F32, 2, { 2, 3 }, 24 },
    { "model.a.bias", ST_BF16, 1, { 5 }, 10 },
    { "c_half", ST_F16, 2, { 3, 1 }, 6 },
    { "position_ids", ST_I64, 2, { 1, 4 }, 32 },
    { "odd_u8", ST_U8, 1, { 3 }, 3 },
    { "scalar", ST_F64, 0, { 0 }, 8 },
    { "empty", ST_F32, 2, { 0, 7 }, 0 },
    { "flags", ST_BOOL, 1, { 2 }, 2 },
    { "fp8", ST_F8_E4M3, 1, { 5 }, 5 },
    { "q\"uote\\d\n\x01 \xc3\xbc", ST_F32, 1, { 1 }, 4 },
    { "i16", ST_I16, 1, { 3 }, 6 },
};
#define N_WT (int)(sizeof WT / sizeof WT[0])

static void t_writer_roundtrip(tctx *t)
{
    unsigned char *buf[N_WT];
    trng r = { 42 };
    for (int i = 0; i < N_WT; i++) {
        buf[i] = malloc(WT[i].nbytes ? WT[i].nbytes : 1);
        for (size_t k = 0; k < WT[i].nbytes; k++) buf[i][k] = (unsigned char)trng_u64(&r);
    }
    dit_err e = { 0 };
    char p[512], p2[512];
    tpath(p, sizeof p, "roundtrip.safetensors");
    tpath(p2, sizeof p2, "roundtrip2.safetensors");
    /* The same tensors in two different add orders must give the same file. */
    for (int pass = 0; pass < 2; pass++) {
        st_writer *w = st_writer_new();
        CHECK(t, w != NULL, "writer");
        if (!w) break;
        for (int j = 0; j < N_WT; j++) {
            int i = pass ? N_WT - 1 - j : j;
            CHECK(t, st_writer_add(w, WT[i].name, WT[i].dt, WT[i].nd, WT[i].shape, buf[i], &e) == DIT_OK,
                  "add %s: %s", WT[i].name, e.msg);
        }
        CHECK(t, st_writer_meta(w, "format", "np", &e) == DIT_OK, "meta");
        CHECK(t, st_writer_meta(w, "note", "line1\nline2 \"q\" \\ \xc3\xbc", &e) == DIT_OK, "meta");
        CHECK(t, st_writer_meta(w, "empty", "", &e) == DIT_OK, "meta");
        CHECK(t, st_writer_meta(w, "format", "pt", &e) == DIT_OK, "meta replace");
        CHECK(t, st_writer_save(w, pass ? p2 : p, &e) == DIT_OK, "save: %s", e.msg);
        st_writer_free(w);
    }
    size_t n1 = 0, n2 = 0;
    unsigned char *b1 = read_bytes(p, &n1), *b2 = read_bytes(p2, &n2);
    CHECK(t, b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1), "add order changed the file");
    /* Raw layout: header length a multiple of 8, JSON object padded with spaces, data after. */
    size_t total = 0;
    uint64_t hl = 0;
    for (int i = 0; i < N_WT; i++) total += WT[i].nbytes;
    if (b1 && n1 >= 8) {
        for (int k = 7; k >= 0; k--) hl = hl << 8 | b1[k];
        CHECK(t, hl % 8 == 0 && 8 + hl + total == n1, "header %llu, file %zu, data %zu", (unsigned long long)hl, n1, total);
        CHECK(t, hl > 0 && b1[8] == '{', "header starts with {");
        size_t last = 8 + (size_t)hl;
        while (last > 8 && b1[last - 1] == ' ') last--;
        CHECK(t, last > 8 && b1[last - 1] == '}', "header is the object then spaces");
        const char *head = "{\"__metadata__\":{\"empty\":\"\",\"format\":\"pt\",\"note\":";
        CHECK(t, hl > strlen(head) && !memcmp(b1 + 8, head, strlen(head)), "metadata first, keys sorted");
    }
    free(b1);
    free(b2);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    CHECK(t, access(tmp, F_OK) != 0, "the .tmp file was left behind");

    st_file *f;
    CHECK(t, st_open(&f, p, &e) == DIT_OK, "reopen: %s", e.msg);
    if (!f) goto out;
    CHECK(t, st_count(f) == N_WT, "count %d", st_count(f));
    for (int i = 0; i < N_WT; i++) {
        const st_tensor *x = st_find(f, WT[i].name);
        CHECK(t, x != NULL, "tensor %d missing", i);
        if (!x) continue;
        CHECK(t, x->dtype == WT[i].dt && x->nd == WT[i].nd, "%s: dtype/nd", WT[i].name);
        int same = 1;
        for (int d = 0; d < WT[i].nd; d++) same &= x->shape[d] == WT[i].shape[d];
        CHECK(t, same, "%s: shape", WT[i].name);
        CHECK(t, x->end - x->begin == WT[i].nbytes, "%s: %llu bytes", WT[i].name, (unsigned long long)(x->end - x->begin));
        CHECK(t, !WT[i].nbytes || !memcmp(x->data, buf[i], WT[i].nbytes), "%s: data bytes differ", WT[i].name);
        size_t al = (size_t)st_dtype_bits(x->dtype) / 8;
        CHECK(t, (uintptr_t)x->data % (al ? al : 1) == 0, "%s: not aligned", WT[i].name);
        /* The writer itself must align every tensor in the file (the reader's copy would hide it). */
        CHECK(t, (8 + hl + x->begin) % (al ? al : 1) == 0, "%s: file offset %llu not aligned", WT[i].name,
              (unsigned long long)(8 + hl + x->begin));
    }
    uint64_t pos = 0;
    for (int i = 0; i < st_count(f); i++) {
        CHECK(t, st_at(f, i)->begin == pos, "st_at(%d) not in offset order", i);
        pos = st_at(f, i)->end;
    }
    CHECK(t, st_meta_count(f) == 3, "meta count %d", st_meta_count(f));
    const char *v = st_meta_get(f, "note");
    CHECK(t, v && !strcmp(v, "line1\nline2 \"q\" \\ \xc3\xbc"), "note = %s", v ? v : "(null)");
    v = st_meta_get(f, "format");
    CHECK(t, v && !strcmp(v, "pt"), "format replaced");
    v = st_meta_get(f, "empty");
    CHECK(t, v && !*v, "empty value");
    const char *k0, *v0;
    st_meta_at(f, 0, &k0, &v0);
    CHECK(t, k0 && !strcmp(k0, "empty"), "meta in file order");
    st_close(f);
out:
    for (int i = 0; i < N_WT; i++) free(buf[i]);
}

static void t_writer_errors(tctx *t)
{
    dit_err e = { 0 };
    float x[4] = { 0 };
    st_writer *w = st_writer_new();
    CHECK(t, w != NULL, "writer");
    if (!w) return;
    CHECK(t, st_writer_add(w, "a", ST_DTYPE_COUNT, 1, (int64_t[]){ 1 }, x, &e) == DIT_E_ARG, "bad dtype");
    CHECK(t, st_writer_add(w, "a", ST_F32, 9, (int64_t[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1 }, x, &e) == DIT_E_ARG, "9 dims");
    CHECK(t, st_writer_add(w, "a", ST_F32, 1, (int64_t[]){ -1 }, x, &e) == DIT_E_ARG, "negative dim");
    CHECK(t, st_writer_add(w, "__metadata__", ST_F32, 1, (int64_t[]){ 1 }, x, &e) == DIT_E_ARG, "reserved name");
    CHECK(t, st_writer_add(w, "a", ST_F32, 1, (int64_t[]){ 4 }, NULL, &e) == DIT_E_ARG, "NULL data");
    CHECK(t, st_writer_add(w, "a", ST_F4, 1, (int64_t[]){ 3 }, x, &e) == DIT_E_ARG, "F4 odd");
    CHECK(t, st_writer_add(w, "bad\xff", ST_F32, 1, (int64_t[]){ 1 }, x, &e) == DIT_E_ARG, "bad UTF-8");
    CHECK(t, st_writer_add(w, "a", ST_F32, 3, (int64_t[]){ 1ll << 40, 1ll << 40, 1 << 20 }, x, &e) == DIT_E_ARG,
          "overflow");
    CHECK(t, st_writer_add(w, "z", ST_F32, 1, (int64_t[]){ 0 }, NULL, &e) == DIT_OK, "zero-size with NULL: %s", e.msg);
    CHECK(t, st_writer_add(w, "a", ST_F32, 1, (int64_t[]){ 4 }, x, &e) == DIT_OK, "add: %s", e.msg);
    CHECK(t, st_writer_add(w, "a", ST_F16, 1, (int64_t[]){ 4 }, x, &e) == DIT_OK, "dup add accepted until save");
    char p[512], tmp[600];
    tpath(p, sizeof p, "dup_written.safetensors");
    CHECK(t, st_writer_save(w, p, &e) == DIT_E_ARG && strstr(e.msg, "'a' added twice"), "dup: %s", e.msg);
    CHECK(t, access(p, F_OK) != 0, "a failed save left a file");
    st_writer_free(w);

    w = st_writer_new();
    CHECK(t, w && st_writer_add(w, "a", ST_F32, 1, (int64_t[]){ 4 }, x, &e) == DIT_OK, "add");
    tpath(p, sizeof p, "no/such/dir/x.safetensors");
    CHECK(t, st_writer_save(w, p, &e) == DIT_E_IO && strstr(e.msg, "no/such/dir"), "bad dir: %s", e.msg);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    CHECK(t, access(tmp, F_OK) != 0 && access(p, F_OK) != 0, "files left");
    st_writer_free(w);
}

/* ---- sharded models ------------------------------------------------------------------------- */

/* Write a shard holding F32 [2] tensors with the given names, values base+i. */
static int write_shard(const char *dir, const char *file, const char *const *names, int n, float base)
{
    st_writer *w = st_writer_new();
    float *v = malloc(2 * (size_t)n * sizeof *v);
    dit_err e = { 0 };
    int ok = w && v;
    for (int i = 0; ok && i < n; i++) {
        v[2 * i] = base + (float)i;
        v[2 * i + 1] = -(base + (float)i);
        ok = st_writer_add(w, names[i], ST_F32, 1, (int64_t[]){ 2 }, v + 2 * i, &e) == DIT_OK;
    }
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    ok = ok && st_writer_save(w, p, &e) == DIT_OK;
    st_writer_free(w);
    free(v);
    return ok;
}

static int write_text(const char *dir, const char *file, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return write_bytes(p, text, strlen(text));
}

#define SH1 "model-00001-of-00002.safetensors"
#define SH2 "model-00002-of-00002.safetensors"

static int make_shards(const char *dir)
{
    static const char *const n1[] = { "blk.0.w", "blk.0.b" }, *const n2[] = { "blk.1.w" };
    static const char *const n3[] = { "blk.0.w", "extra" }, *const n4[] = { "blk.1.w", "stray" };
    mkdir(dir, 0755);
    return write_shard(dir, SH1, n1, 2, 10) && write_shard(dir, SH2, n2, 1, 20) &&
           write_shard(dir, "dup.safetensors", n3, 2, 30) && write_shard(dir, "stray.safetensors", n4, 2, 40) &&
           write_text(dir, "model.safetensors.index.json",
                      "{\"metadata\": {\"total_size\": 24, \"format\": \"pt\", \"nested\": {\"a\": [1, 2]}},\n"
                      " \"weight_map\": {\"blk.0.w\": \"" SH1 "\", \"blk.1.w\": \"" SH2 "\", \"blk.0.b\": \"" SH1 "\"}}\n");
}

typedef struct {
    const char *file, *json;
    dit_status code;
    int err_in_shard; /* the message starts with the shard's path, not the index's */
    const char *want;
} bad_index;

static const bad_index BAD_INDEX[] = {
    { "missing_shard.index.json", "{\"weight_map\":{\"a\":\"model-00003.safetensors\"}}", DIT_E_IO, 1, "cannot open" },
    { "not_in_shard.index.json", "{\"weight_map\":{\"blk.0.w\":\"" SH1 "\",\"blk.0.b\":\"" SH1 "\",\"nope\":\"" SH1 "\"}}",
      DIT_E_FORMAT, 0, "'nope' in " SH1 ", which does not have it" },
    { "wrong_shard.index.json", "{\"weight_map\":{\"blk.0.w\":\"" SH1 "\",\"blk.0.b\":\"" SH2 "\",\"blk.1.w\":\"" SH2 "\"}}",
      DIT_E_FORMAT, 0, "'blk.0.b' in " SH2 ", but it is in " SH1 },
    { "two_shards.index.json", "{\"weight_map\":{\"blk.0.w\":\"" SH1 "\",\"blk.0.b\":\"" SH1 "\",\"extra\":\"dup.safetensors\"}}",
      DIT_E_FORMAT, 0, "tensor 'blk.0.w' is in two shards" },
    { "unlisted.index.json", "{\"weight_map\":{\"blk.1.w\":\"stray.safetensors\"}}", DIT_E_FORMAT, 0,
      "holds tensor 'stray', which weight_map does not list" },
    { "escape_dotdot.index.json", "{\"weight_map\":{\"a\":\"../x.safetensors\"}}", DIT_E_FORMAT, 0,
      "not a file name in the index's folder" },
    { "escape_sub.index.json", "{\"weight_map\":{\"a\":\"sub/x.safetensors\"}}", DIT_E_FORMAT, 0,
      "not a file name in the index's folder" },
    { "escape_abs.index.json", "{\"weight_map\":{\"a\":\"/etc/passwd\"}}", DIT_E_FORMAT, 0, "not a file name" },
    { "escape_dots.index.json", "{\"weight_map\":{\"a\":\"..\"}}", DIT_E_FORMAT, 0, "not a file name" },
    { "escape_empty.index.json", "{\"weight_map\":{\"a\":\"\"}}", DIT_E_FORMAT, 0, "not a file name" },
    { "dup_name.index.json", "{\"weight_map\":{\"blk.0.w\":\"" SH1 "\",\"blk.0.w\":\"" SH1 "\"}}", DIT_E_FORMAT, 0,
      "lists tensor 'blk.0.w' twice" },
    { "no_map.index.json", "{\"metadata\":{}}", DIT_E_FORMAT, 0, "no \"weight_map\"" },
    { "map_arr.index.json", "{\"weight_map\":[]}", DIT_E_FORMAT, 0, "\"weight_map\" is not an object" },
    { "map_num.index.json", "{\"weight_map\":{\"a\":3}}", DIT_E_FORMAT, 0, "weight_map['a'] is not a string" },
    { "meta_arr.index.json", "{\"metadata\":[],\"weight_map\":{}}", DIT_E_FORMAT, 0, "\"metadata\" is not an object" },
    { "two_maps.index.json", "{\"weight_map\":{},\"weight_map\":{}}", DIT_E_FORMAT, 0, "duplicate \"weight_map\"" },
    { "not_json.index.json", "{\"weight_map\":{", DIT_E_FORMAT, 0, "not valid JSON" },
    { "array.index.json", "[]", DIT_E_FORMAT, 0, "not a JSON object" },
    { "empty.index.json", "", DIT_E_FORMAT, 0, "index is empty" },
    { "bad_shard.index.json", "{\"weight_map\":{\"a\":\"bad.safetensors\"}}", DIT_E_FORMAT, 1, "trailing bytes" },
};
#define N_BAD_INDEX (int)(sizeof BAD_INDEX / sizeof BAD_INDEX[0])

static int make_bad_index(const char *dir)
{
    int ok = 1;
    for (int i = 0; i < N_BAD_INDEX; i++) ok &= write_text(dir, BAD_INDEX[i].file, BAD_INDEX[i].json);
    char p[512];
    snprintf(p, sizeof p, "%s/bad.safetensors", dir);
    return ok && write_st(p, "{}", 2, NOLEN, 5);
}

static void t_sharded(tctx *t)
{
    char dir[320], p[1024];
    tpath(dir, sizeof dir, "sharded");
    CHECK(t, make_shards(dir) && make_bad_index(dir), "write shards");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    st_set *s;
    dit_err e = { 0 };
    CHECK(t, st_set_open(&s, p, &e) == DIT_OK, "index: %s", e.msg);
    if (s) {
        CHECK(t, st_set_is_index(s) && st_set_count(s) == 3 && st_set_file_count(s) == 2, "count %d files %d",
              st_set_count(s), st_set_file_count(s));
        static const struct { const char *n, *file; float v; } W[] = {
            { "blk.0.w", SH1, 10 }, { "blk.0.b", SH1, 11 }, { "blk.1.w", SH2, 20 } };
        for (int i = 0; i < 3; i++) {
            const st_tensor *x = st_set_find(s, W[i].n);
            CHECK(t, x != NULL, "%s missing", W[i].n);
            if (x) CHECK(t, ((const float *)x->data)[0] == W[i].v && ((const float *)x->data)[1] == -W[i].v,
                         "%s: values", W[i].n);
        }
        for (int i = 0; i < st_set_count(s); i++) {
            const char *fp = st_path(st_set_file_of(s, i));
            const char *want = NULL;
            for (int k = 0; k < 3; k++)
                if (!strcmp(st_set_at(s, i)->name, W[k].n)) want = W[k].file;
            CHECK(t, want && strlen(fp) > strlen(want) && !strcmp(fp + strlen(fp) - strlen(want), want),
                  "tensor %d in %s", i, fp);
        }
        CHECK(t, !strcmp(st_path(st_set_file(s, 0)) + strlen(dir) + 1, SH1), "shards in name order");
        CHECK(t, st_set_find(s, "extra") == NULL, "unlisted shard not opened");
        const char *v = st_set_meta_get(s, "total_size");
        CHECK(t, v && !strcmp(v, "24"), "total_size as text: %s", v ? v : "(null)");
        v = st_set_meta_get(s, "format");
        CHECK(t, v && !strcmp(v, "pt"), "format");
        v = st_set_meta_get(s, "nested");
        CHECK(t, v && !strcmp(v, "{\"a\":[1,2]}"), "nested as JSON: %s", v ? v : "(null)");
        CHECK(t, st_set_meta_count(s) == 3, "meta count");
        st_set_close(s);
    }
    /* A single file through st_set: its __metadata__. */
    tpath(p, sizeof p, "roundtrip.safetensors");
    CHECK(t, st_set_open(&s, p, &e) == DIT_OK, "single: %s", e.msg);
    if (s) {
        const char *v = st_set_meta_get(s, "format");
        CHECK(t, !st_set_is_index(s) && st_set_file_count(s) == 1 && st_set_count(s) == N_WT, "single counts");
        CHECK(t, v && !strcmp(v, "pt"), "single meta");
        CHECK(t, st_set_find(s, "position_ids") == st_find(st_set_file(s, 0), "position_ids"), "single find");
        st_set_close(s);
    }
    for (int i = 0; i < N_BAD_INDEX; i++) {
        const bad_index *c = &BAD_INDEX[i];
        snprintf(p, sizeof p, "%s/%s", dir, c->file);
        s = (st_set *)1;
        dit_status r = st_set_open(&s, p, &e);
        CHECK(t, r == c->code && s == NULL, "%s: status %s (%s)", c->file, err_status_name(r), e.msg);
        if (r == DIT_OK) {
            st_set_close(s);
            continue;
        }
        if (c->err_in_shard) {
            CHECK(t, !strncmp(e.msg, dir, strlen(dir)) && strstr(e.msg, ".safetensors: "), "%s: %s", c->file, e.msg);
            CHECK(t, !strchr(e.msg, '\n') && strstr(e.msg, c->want), "%s: %s", c->file, e.msg);
        } else {
            check_msg(t, c->file, &e, p, c->want);
        }
    }
}

/* ---- fuzz ----------------------------------------------------------------------------------- */

/* Every tensor of an accepted file must be sane; touching every byte lets ASan see overreads. */
static int check_open_file(const st_file *f, uint64_t file_size, char *why, size_t cap)
{
    uint64_t pos = 0, sum = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *x = st_at(f, i);
        int bits = st_dtype_bits(x->dtype);
        if (bits <= 0) return snprintf(why, cap, "bad dtype"), 0;
        uint64_t n = 1;
        for (int d = 0; d < x->nd; d++) n *= (uint64_t)x->shape[d];
        if (n != x->numel || x->numel * (uint64_t)bits / 8 != x->end - x->begin)
            return snprintf(why, cap, "'%s': size", x->name), 0;
        if (x->begin != pos || x->end > st_data_size(f) || st_data_size(f) > file_size)
            return snprintf(why, cap, "'%s': [%llu, %llu) not tiling", x->name, (unsigned long long)x->begin,
                            (unsigned long long)x->end), 0;
        pos = x->end;
        if (bits >= 8 && (uintptr_t)x->data % (uintptr_t)(bits / 8))
            return snprintf(why, cap, "'%s': misaligned", x->name), 0;
        const unsigned char *d = x->data;
        for (uint64_t k = 0; k < x->end - x->begin; k++) sum += d[k];
        if (st_find(f, x->name) != x) return snprintf(why, cap, "'%s': find", x->name), 0;
    }
    if (pos != st_data_size(f)) return snprintf(why, cap, "data not covered"), 0;
    volatile uint64_t sink = sum; /* keep the reads */
    (void)sink;
    return 1;
}

static void t_fuzz(tctx *t)
{
    /* The seed file: a few dtypes, a scalar, an empty tensor, metadata. */
    float a[6] = { 1, 2, 3, 4, 5, 6 };
    uint16_t h[3] = { 0x3f80, 0x4000, 0xc000 };
    int64_t ids[2] = { 7, 8 };
    unsigned char u[3] = { 1, 2, 3 };
    dit_err e = { 0 };
    char seed[512], p[512];
    tpath(seed, sizeof seed, "fuzz_seed.safetensors");
    tpath(p, sizeof p, "fuzz.safetensors");
    st_writer *w = st_writer_new();
    int ok = w && !st_writer_add(w, "w", ST_F32, 2, (int64_t[]){ 2, 3 }, a, &e) &&
             !st_writer_add(w, "h", ST_BF16, 1, (int64_t[]){ 3 }, h, &e) &&
             !st_writer_add(w, "ids", ST_I64, 1, (int64_t[]){ 2 }, ids, &e) &&
             !st_writer_add(w, "s", ST_F32, 0, NULL, a, &e) && !st_writer_add(w, "z", ST_F16, 1, (int64_t[]){ 0 }, NULL, &e) &&
             !st_writer_add(w, "u", ST_U8, 1, (int64_t[]){ 3 }, u, &e) && !st_writer_meta(w, "format", "pt", &e) &&
             !st_writer_save(w, seed, &e);
    st_writer_free(w);
    CHECK(t, ok, "seed: %s", e.msg);
    size_t n0 = 0;
    unsigned char *base = read_bytes(seed, &n0);
    if (!base || n0 < 8) {
        free(base);
        CHECK(t, 0, "cannot read seed");
        return;
    }
    size_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = hl << 8 | base[k];
    static const char ALPHA[] = "{}[],:\"0123456789-.eE \\u\x01\x7f\xff\xc3 adtypeshF";
    unsigned char *b = malloc(n0 + 64);
    trng r = { 20240601 };
    int n_ok = 0, n_fail = 0, bad_ok = 0, bad_fail = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(b, base, n0);
        size_t n = n0;
        int muts = 1 + (int)(trng_u64(&r) % 3);
        for (int m = 0; m < muts; m++) {
            uint64_t x = trng_u64(&r);
            size_t at = 8 + (size_t)((x >> 8) % (hl ? hl : 1));
            switch (x % 7) {
            case 0: b[at] ^= (unsigned char)(1u << ((x >> 40) % 8)); break;           /* bit flip in header */
            case 1: b[at] = (unsigned char)ALPHA[(x >> 40) % (sizeof ALPHA - 1)]; break; /* JSON-ish byte */
            case 2: b[(x >> 8) % 8] ^= (unsigned char)(1u << ((x >> 40) % 8)); break; /* length field bit */
            case 3: {                                                                   /* length field value */
                uint64_t v = (x >> 20) % 3 == 0 ? (x >> 8) : hl + ((x >> 8) % 33) - 16;
                put_le64(b, v);
                break;
            }
            case 4: n = n > 8 ? n - 1 - (size_t)((x >> 8) % (n > 40 ? 32 : 1)) : n; break; /* truncate */
            case 5: {                                                                    /* grow by a few bytes */
                size_t k = 1 + (size_t)((x >> 8) % 8);
                if (n + k <= n0 + 64) { memset(b + n, (int)(x >> 16), k); n += k; }
                break;
            }
            default: b[at] = (unsigned char)('0' + (x >> 40) % 10); break;            /* digit: offsets/shapes */
            }
        }
        if (!write_bytes(p, b, n)) { CHECK(t, 0, "write"); break; }
        st_file *f = (st_file *)1;
        dit_err fe = { 0 };
        dit_status s = st_open(&f, p, &fe);
        if (s == DIT_OK) {
            char why[200] = "";
            n_ok++;
            if (!check_open_file(f, n, why, sizeof why)) {
                bad_ok++;
                if (bad_ok <= 3) CHECK(t, 0, "iteration %d accepted a bad file: %s", it, why);
            }
            st_close(f);
        } else {
            n_fail++;
            size_t pl = strlen(p);
            int good = s == DIT_E_FORMAT && f == NULL && !strncmp(fe.msg, p, pl) && fe.msg[pl] == ':' &&
                       !strchr(fe.msg, '\n') && strlen(fe.msg) > pl + 2;
            if (!good) {
                bad_fail++;
                if (bad_fail <= 3) CHECK(t, 0, "iteration %d: status %s, message: %s", it, err_status_name(s), fe.msg);
            }
        }
    }
    CHECK(t, bad_ok == 0 && bad_fail == 0, "%d bad accepts, %d bad rejections", bad_ok, bad_fail);
    CHECK(t, n_ok > 0 && n_fail > 0, "fuzz reached both outcomes (%d ok, %d failed)", n_ok, n_fail);
    printf("  fuzz: 3000 mutants, %d accepted (all sane), %d rejected cleanly\n", n_ok, n_fail);
    free(b);
    free(base);
}

/* Random well-formed headers (1-4 tensors, random dtypes and shapes, offsets laid out in a
 * random order and sometimes perturbed, data sometimes too long or short). The oracle below is
 * the format's rule written independently: each tensor holds numel * bits / 8 bytes (whole
 * bytes), inside the data, and sorted by offset they tile the data exactly. st_open must agree
 * with it on every file. */
typedef struct {
    int dt, nd;
    uint64_t shape[3], begin, end;
} gen_tensor;

static int oracle_ok(const gen_tensor *g, int n, uint64_t data_len)
{
    int order[4];
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort by (begin, end) */
        for (int j = i; j > 0; j--) {
            const gen_tensor *a = &g[order[j - 1]], *b = &g[order[j]];
            if (a->begin > b->begin || (a->begin == b->begin && a->end > b->end)) {
                int tmp = order[j];
                order[j] = order[j - 1];
                order[j - 1] = tmp;
            }
        }
    uint64_t pos = 0;
    for (int k = 0; k < n; k++) {
        const gen_tensor *x = &g[order[k]];
        uint64_t numel = 1;
        for (int d = 0; d < x->nd; d++) numel *= x->shape[d];
        uint64_t bits = numel * (uint64_t)SPEC_DTYPES[x->dt].bits;
        if (bits % 8 || x->end < x->begin || x->end > data_len || x->end - x->begin != bits / 8) return 0;
        if (x->begin != pos) return 0;
        pos = x->end;
    }
    return pos == data_len;
}

static void t_fuzz_structured(tctx *t)
{
    char p[512];
    tpath(p, sizeof p, "gen.safetensors");
    trng r = { 7 };
    int agree = 0, n_ok = 0, n_bad = 0, shown = 0;
    for (int it = 0; it < 1500; it++) {
        gen_tensor g[4];
        int n = 1 + (int)(trng_u64(&r) % 4);
        uint64_t sizes[4];
        for (int i = 0; i < n; i++) {
            g[i].dt = (int)(trng_u64(&r) % N_SPEC);
            g[i].nd = (int)(trng_u64(&r) % 4);
            uint64_t numel = 1;
            for (int d = 0; d < g[i].nd; d++) numel *= (g[i].shape[d] = trng_u64(&r) % 5);
            if (SPEC_DTYPES[g[i].dt].bits % 8 && numel * (uint64_t)SPEC_DTYPES[g[i].dt].bits % 8 && trng_u64(&r) % 4) {
                g[i].nd = 1; /* mostly keep sub-byte tensors whole: 8 elements fill whole bytes */
                g[i].shape[0] = 8;
                numel = 8;
            }
            sizes[i] = numel * (uint64_t)SPEC_DTYPES[g[i].dt].bits / 8;
        }
        int perm[4] = { 0, 1, 2, 3 };
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(trng_u64(&r) % (uint64_t)(i + 1)), tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        uint64_t off = 0;
        for (int k = 0; k < n; k++) {
            gen_tensor *x = &g[perm[k]];
            x->begin = off;
            x->end = off + sizes[perm[k]];
            off = x->end;
        }
        uint64_t data_len = off;
        uint64_t c = trng_u64(&r) % 10;
        if (c < 3) { /* perturb one offset */
            gen_tensor *x = &g[trng_u64(&r) % (uint64_t)n];
            uint64_t *v = trng_u64(&r) % 2 ? &x->begin : &x->end;
            uint64_t dv = 1 + trng_u64(&r) % 8;
            *v = trng_u64(&r) % 2 ? *v + dv : (*v >= dv ? *v - dv : 0);
        } else if (c == 3) { /* swap two tensors' offsets */
            int a = (int)(trng_u64(&r) % (uint64_t)n), b = (int)(trng_u64(&r) % (uint64_t)n);
            uint64_t tb = g[a].begin, te = g[a].end;
            g[a].begin = g[b].begin, g[a].end = g[b].end;
            g[b].begin = tb, g[b].end = te;
        } else if (c == 4) { /* data length off by a little */
            uint64_t dv = 1 + trng_u64(&r) % 8;
            data_len = trng_u64(&r) % 2 ? data_len + dv : (data_len >= dv ? data_len - dv : 0);
        }
        char hdr[1024];
        size_t hl = (size_t)snprintf(hdr, sizeof hdr, "{");
        for (int i = 0; i < n; i++) {
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "%s\"t%d\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", i,
                                   SPEC_DTYPES[g[i].dt].name);
            for (int d = 0; d < g[i].nd; d++)
                hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "%s%llu", d ? "," : "", (unsigned long long)g[i].shape[d]);
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "],\"data_offsets\":[%llu,%llu]}",
                                   (unsigned long long)g[i].begin, (unsigned long long)g[i].end);
        }
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
        while (hl % 8 && trng_u64(&r) % 2) hdr[hl++] = ' ';
        if (!write_st(p, hdr, hl, NOLEN, (size_t)data_len)) {
            CHECK(t, 0, "write");
            break;
        }
        int want = oracle_ok(g, n, data_len);
        st_file *f = NULL;
        dit_err e = { 0 };
        dit_status st = st_open(&f, p, &e);
        int got = st == DIT_OK;
        if (got == want && (got || st == DIT_E_FORMAT)) agree++;
        else if (shown++ < 3)
            CHECK(t, 0, "iteration %d: oracle says %s, st_open: %s (%.300s) header %s data %llu", it, want ? "ok" : "bad",
                  err_status_name(st), e.msg, hdr, (unsigned long long)data_len);
        if (got) {
            char why[200] = "";
            CHECK(t, check_open_file(f, 8 + hl + data_len, why, sizeof why), "iteration %d: %s", it, why);
            n_ok++;
            st_close(f);
        } else {
            n_bad++;
        }
    }
    CHECK(t, agree == 1500, "st_open agreed with the oracle on %d of 1500 files", agree);
    CHECK(t, n_ok > 200 && n_bad > 200, "both outcomes well covered (%d ok, %d bad)", n_ok, n_bad);
    printf("  structured fuzz: 1500 files, %d valid, %d invalid, all decided as the oracle says\n", n_ok, n_bad);
}

/* ---- the CLI -------------------------------------------------------------------------------- */

/* Run `$DIT_BIN inspect ARGS`, stdout and stderr to files. Returns the exit code, -1 if it did
 * not exit normally (a crash). */
static int run_inspect(const char *bin, const char *args, char **out, char **err)
{
    char o[512], e2[512], cmd[2048];
    tpath(o, sizeof o, "cli.out");
    tpath(e2, sizeof e2, "cli.err");
    snprintf(cmd, sizeof cmd, "'%s' inspect %s >'%s' 2>'%s' </dev/null", bin, args, o, e2);
    int st = system(cmd);
    size_t n;
    unsigned char *b = read_bytes(o, &n);
    *out = b ? realloc(b, n + 1) : NULL;
    if (*out) (*out)[n] = 0;
    b = read_bytes(e2, &n);
    *err = b ? realloc(b, n + 1) : NULL;
    if (*err) (*err)[n] = 0;
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

static void t_cli(tctx *t)
{
    const char *bin = getenv("DIT_BIN");
    if (!bin || !*bin) {
        SKIP(t, "DIT_BIN not set");
        return;
    }
    if (access(bin, X_OK) != 0) {
        CHECK(t, 0, "DIT_BIN=%s is not executable", bin);
        return;
    }
    char dir[320], p[1024], args[1100];
    tpath(dir, sizeof dir, "cli");
    mkdir(dir, 0755);
    CHECK(t, make_bad(dir), "write malformed files");
    char *out, *err;
    for (int i = 0; i < N_BAD; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, BAD[i].name);
        snprintf(args, sizeof args, "'%s'", p);
        int rc = run_inspect(bin, args, &out, &err);
        char prefix[1200];
        snprintf(prefix, sizeof prefix, "dit inspect: %s: ", p);
        CHECK(t, rc == 1, "%s: exit %d", BAD[i].name, rc);
        CHECK(t, out && !*out, "%s: stdout not empty: %.200s", BAD[i].name, out ? out : "(unreadable)");
        CHECK(t, err && count_lines(err) == 1 && err[strlen(err) - 1] == '\n', "%s: stderr is not one line: %.400s",
              BAD[i].name, err ? err : "(unreadable)");
        CHECK(t, err && !strncmp(err, prefix, strlen(prefix)) && strstr(err, BAD[i].want), "%s: stderr: %.300s",
              BAD[i].name, err ? err : "");
        free(out);
        free(err);
    }
    /* bad index files: one line, exit 1 */
    char sdir[320];
    tpath(sdir, sizeof sdir, "sharded");
    for (int i = 0; i < N_BAD_INDEX; i++) {
        snprintf(args, sizeof args, "'%s/%s'", sdir, BAD_INDEX[i].file);
        int rc = run_inspect(bin, args, &out, &err);
        CHECK(t, rc == 1 && out && !*out && count_lines(err) == 1 && !strncmp(err, "dit inspect: ", 13),
              "%s: exit %d, stdout %zu bytes, stderr: %.300s", BAD_INDEX[i].file, rc, out ? strlen(out) : 0,
              err ? err : "");
        free(out);
        free(err);
    }
    /* good files */
    tpath(p, sizeof p, "roundtrip.safetensors");
    snprintf(args, sizeof args, "'%s'", p);
    int rc = run_inspect(bin, args, &out, &err);
    CHECK(t, rc == 0 && err && !*err, "good file: exit %d, stderr %.300s", rc, err ? err : "");
    for (int i = 0; out && i < N_WT; i++)
        if (!strchr(WT[i].name, '\n')) CHECK(t, strstr(out, WT[i].name) != NULL, "'%s' not listed", WT[i].name);
    CHECK(t, out && strstr(out, "q\"uote\\d\\x0a\\x01 \xc3\xbc") && !strchr(out, '\x01'),
          "control bytes in names are escaped");
    CHECK(t, out && strstr(out, "format = pt") && strstr(out, "line1 ... (") , "metadata shown, long value cut");
    CHECK(t, out && strstr(out, "11 tensors"), "summary: %.2000s", out ? out : "");
    if (out && getenv("VERBOSE")) fputs(out, stdout);
    free(out);
    free(err);

    snprintf(args, sizeof args, "'%s/model.safetensors.index.json'", sdir);
    rc = run_inspect(bin, args, &out, &err);
    CHECK(t, rc == 0 && out && strstr(out, "blk.0.w") && strstr(out, "blk.1.w") && strstr(out, SH2) &&
             strstr(out, "total_size = 24") && strstr(out, "3 tensors"),
          "index: exit %d, stdout %.1500s stderr %.300s", rc, out ? out : "", err ? err : "");
    const char *o1 = out ? strstr(out, "blk.0.b") : NULL, *o2 = out ? strstr(out, "blk.0.w") : NULL,
               *o3 = out ? strstr(out, "blk.1.w") : NULL;
    CHECK(t, o1 && o2 && o3 && o1 < o2 && o2 < o3, "index: tensors not in name order");
    free(out);
    free(err);

    rc = run_inspect(bin, "--help", &out, &err);
    CHECK(t, rc == 0 && out && strstr(out, "usage: dit inspect") && err && !*err, "--help: exit %d", rc);
    free(out);
    free(err);
    rc = run_inspect(bin, "", &out, &err);
    CHECK(t, rc == 2 && out && !*out && err && strstr(err, "usage"), "no argument: exit %d", rc);
    free(out);
    free(err);
    rc = run_inspect(bin, "--bogus", &out, &err);
    CHECK(t, rc == 2 && out && !*out && count_lines(err) == 1, "unknown option: exit %d", rc);
    free(out);
    free(err);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/dit_st_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    tctx t = test_begin("safetensors");
    RUN(&t, t_malformed);
    RUN(&t, t_io_errors);
    RUN(&t, t_dtypes);
    RUN(&t, t_scalar_and_empty);
    RUN(&t, t_misaligned);
    RUN(&t, t_writer_reference_bytes);
    RUN(&t, t_writer_roundtrip);
    RUN(&t, t_writer_errors);
    RUN(&t, t_sharded);
    RUN(&t, t_fuzz);
    RUN(&t, t_fuzz_structured);
    RUN(&t, t_cli);
    rm_tree(g_dir);
    return test_end(&t);
}
