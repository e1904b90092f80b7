/* core/safetensors.c — see safetensors.h.
 *
 * Mirrors huggingface/safetensors safetensors/src/tensor.rs: SafeTensors::read_metadata and
 * Metadata::validate (reader: header limits, offsets sorted and tiling the data exactly, checked
 * numel * size), prepare/serialize (writer: larger dtypes first then name, header padded with
 * spaces to 8). The index format is transformers' *.safetensors.index.json.
 *
 * Layout of an open file: one read-only MAP_PRIVATE map of the whole file; one block holding
 * every name, metadata key and value; the st_tensor array sorted by data offset; a hash index
 * (open addressing, FNV-1a) from name to position; and, only for files whose tensors are
 * misaligned, one buffer of aligned copies.
 */
#include "safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef unsigned long long ull; /* for %llu in messages */

_Static_assert(ST_MAX_DIMS == TENSOR_MAX_DIMS, "st_tensor and tensor share the dimension limit");

/* ---- dtypes ----------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int bits;
} ST_DTYPES[ST_DTYPE_COUNT] = {
    [ST_BOOL] = { "BOOL", 8 },       [ST_F4] = { "F4", 4 },         [ST_F6_E2M3] = { "F6_E2M3", 6 },
    [ST_F6_E3M2] = { "F6_E3M2", 6 }, [ST_U8] = { "U8", 8 },         [ST_I8] = { "I8", 8 },
    [ST_F8_E5M2] = { "F8_E5M2", 8 }, [ST_F8_E4M3] = { "F8_E4M3", 8 }, [ST_F8_E8M0] = { "F8_E8M0", 8 },
    [ST_I16] = { "I16", 16 },        [ST_U16] = { "U16", 16 },      [ST_F16] = { "F16", 16 },
    [ST_BF16] = { "BF16", 16 },      [ST_I32] = { "I32", 32 },      [ST_U32] = { "U32", 32 },
    [ST_F32] = { "F32", 32 },        [ST_C64] = { "C64", 64 },      [ST_F64] = { "F64", 64 },
    [ST_I64] = { "I64", 64 },        [ST_U64] = { "U64", 64 },
};

const char *st_dtype_name(st_dtype t)
{
    return (unsigned)t < ST_DTYPE_COUNT ? ST_DTYPES[t].name : "?";
}

st_dtype st_dtype_parse(const char *name)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (name && !strcmp(name, ST_DTYPES[i].name)) return (st_dtype)i;
    return ST_DTYPE_COUNT;
}

int st_dtype_bits(st_dtype t)
{
    return (unsigned)t < ST_DTYPE_COUNT ? ST_DTYPES[t].bits : 0;
}

size_t st_dtype_size(st_dtype t)
{
    int b = st_dtype_bits(t);
    return b % 8 ? 0 : (size_t)b / 8;
}

int st_dtype_to_core(st_dtype t, dtype *out)
{
    switch (t) {
    case ST_F32: *out = DT_F32; return 1;
    case ST_F16: *out = DT_F16; return 1;
    case ST_BF16: *out = DT_BF16; return 1;
    default: return 0;
    }
}

/* Alignment a tensor's data needs: its element size, 1 for sub-byte types. */
static uint64_t st__align(st_dtype t)
{
    int b = st_dtype_bits(t);
    return b >= 8 ? (uint64_t)b / 8 : 1;
}

/* Byte size of numel elements of t, checked: 0 on overflow or when sub-byte elements do not
 * fill whole bytes, with *why saying which. Shape entries are at most 2^53, so numel is the
 * product of the non-zero entries (order independent), 0 when any entry is 0. */
static int st__nbytes(st_dtype t, const int64_t *shape, int nd, uint64_t *numel, uint64_t *nbytes,
                      const char **why)
{
    uint64_t n = 1;
    int zero = 0;
    for (int i = 0; i < nd; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d == 0) { zero = 1; continue; }
        if (n > UINT64_MAX / d) { *why = "has more than 2^64 elements"; return 0; }
        n *= d;
    }
    if (zero) n = 0;
    uint64_t bits = (uint64_t)st_dtype_bits(t), bytes;
    if (bits % 8 == 0) {
        if (n > UINT64_MAX / (bits / 8)) { *why = "has a byte size beyond 2^64"; return 0; }
        bytes = n * (bits / 8);
    } else {
        if (n > UINT64_MAX / bits) { *why = "has a bit size beyond 2^64"; return 0; }
        if (n * bits % 8) { *why = "does not fill a whole number of bytes"; return 0; }
        bytes = n * bits / 8;
    }
    *numel = n;
    *nbytes = bytes;
    return 1;
}

/* ---- small helpers ------------------------------------------------------------------------ */

/* A name from the file, made safe for a one-line message: control bytes become '?', and long
 * names are cut with "...". */
static const char *st__clip(char *buf, size_t cap, const char *s)
{
    size_t i = 0, j = 0;
    for (; s[i] && j + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[i]) {
        while (j > 0 && ((unsigned char)buf[j - 1] & 0xc0) == 0x80) j--; /* no split UTF-8 */
        if (j > 0 && (unsigned char)buf[j - 1] >= 0xc0) j--;
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = 0;
    return buf;
}
#define CLIP_CAP 128
#define CLIP(buf, s) st__clip(buf, sizeof buf, s)

static char *st__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void st__fmt_shape(char *buf, size_t cap, const int64_t *shape, int nd)
{
    size_t j = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < nd && j < cap; i++)
        j += (size_t)snprintf(buf + j, cap - j, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (j < cap) snprintf(buf + j, cap - j, "]");
}

/* Index of the first invalid UTF-8 byte in s[0..n), or n when valid. Rejects overlong forms,
 * surrogates and code points beyond U+10FFFF (RFC 3629). */
static size_t st__utf8_bad(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else return i;
        if (n - i < len) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return i;
        i += len;
    }
    return n;
}

/* ---- name index: open addressing over (key, position) ----------------------------------- */

/* Used for tensor names (a checkpoint has ~2000 tensors and a loader looks each one up),
 * metadata keys, and duplicate detection while building either. The table is at least twice
 * the number of keys, so linear probing stays short; keys are borrowed, never copied. */

typedef struct {
    const char *key; /* NULL = empty; not owned */
    int idx;
} st__slot;

typedef struct {
    st__slot *slot;
    size_t mask;
} st__index;

static uint64_t st__hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int st__index_init(st__index *x, size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n) cap <<= 1;
    x->slot = calloc(cap, sizeof *x->slot);
    x->mask = cap - 1;
    return x->slot != NULL;
}

/* Store key -> idx. Returns -1 when stored, or the position already stored under key. */
static int st__index_put(st__index *x, const char *key, int idx)
{
    for (size_t i = st__hash(key) & x->mask;; i = (i + 1) & x->mask) {
        if (!x->slot[i].key) {
            x->slot[i].key = key;
            x->slot[i].idx = idx;
            return -1;
        }
        if (!strcmp(x->slot[i].key, key)) return x->slot[i].idx;
    }
}

static int st__index_get(const st__index *x, const char *key)
{
    if (!x->slot || !key) return -1;
    for (size_t i = st__hash(key) & x->mask;; i = (i + 1) & x->mask) {
        if (!x->slot[i].key) return -1;
        if (!strcmp(x->slot[i].key, key)) return x->slot[i].idx;
    }
}

/* ---- JSON text checks shared by headers and index files --------------------------------- */

/* Checks done on the raw bytes before cJSON sees them: no NUL or other control byte (JSON
 * allows none outside whitespace, and cJSON would skip any byte <= 32 as whitespace), valid
 * UTF-8, and no \u0000 escape (C strings cannot hold it: "a\u0000b" would become "a"). */
static dit_status st__check_text(const char *path, const char *what, const unsigned char *h, size_t n,
                                 dit_err *e)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = h[i];
        if (c == 0) return err_set(e, DIT_E_FORMAT, "%s: %s contains a NUL byte at offset %zu", path, what, i);
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return err_set(e, DIT_E_FORMAT, "%s: %s contains control byte 0x%02x at offset %zu", path, what,
                           c, i);
        if (c == '\\' && i + 1 < n) {
            if (h[i + 1] == 'u' && n - i >= 6 && !memcmp(h + i + 2, "0000", 4))
                return err_set(e, DIT_E_FORMAT, "%s: %s has an escaped NUL (\\u0000) at offset %zu", path,
                               what, i);
            if (h[i + 1] == '\\') i++; /* an escaped backslash: "\\\\u0000" is not an escape */
        }
    }
    size_t bad = st__utf8_bad(h, n);
    if (bad < n) return err_set(e, DIT_E_FORMAT, "%s: %s is not valid UTF-8 (offset %zu)", path, what, bad);
    return DIT_OK;
}

/* In a safetensors header every number is a shape entry or an offset, which the format defines
 * as unsigned integers (the reference reader deserialises them as usize). cJSON turns "2.0",
 * "2e0" and "-0" into the same double as "2" and "0", so the number tokens are checked here, on
 * the text: digits only. Runs on a header that parsed, so strings are well formed. */
static dit_status st__check_integers(const char *path, const unsigned char *h, size_t n, dit_err *e)
{
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = h[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < n && (h[j] == '-' || h[j] == '+' || h[j] == '.' || h[j] == 'e' || h[j] == 'E' ||
                             (h[j] >= '0' && h[j] <= '9')))
                j++;
            for (size_t k = i; k < j; k++)
                if (h[k] < '0' || h[k] > '9')
                    return err_set(e, DIT_E_FORMAT, "%s: header number '%.*s' at offset %zu is not a non-negative integer",
                                   path, (int)(j - i < 40 ? j - i : 40), (const char *)h + i, i);
            i = j - 1;
        }
    }
    return DIT_OK;
}

/* Parse n bytes (not NUL-terminated) as one JSON object followed only by whitespace. */
static dit_status st__parse_object(const char *path, const char *what, const unsigned char *h, size_t n,
                                   cJSON **out, dit_err *e)
{
    *out = NULL;
    if (n == 0) return err_set(e, DIT_E_FORMAT, "%s: %s is empty", path, what);
    dit_status s = st__check_text(path, what, h, n, e);
    if (s) return s;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)h, n, &end, 0);
    if (!root) {
        size_t at = end && end >= (const char *)h ? (size_t)(end - (const char *)h) : 0;
        return err_set(e, DIT_E_FORMAT, "%s: %s is not valid JSON (error near offset %zu)", path, what, at);
    }
    size_t at = (size_t)(end - (const char *)h);
    for (size_t i = at; i < n; i++) {
        if (h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && h[i] != '\r') {
            cJSON_Delete(root);
            return err_set(e, DIT_E_FORMAT, "%s: %s has data after the JSON value (offset %zu)", path, what,
                           at);
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(e, DIT_E_FORMAT, "%s: %s is not a JSON object", path, what);
    }
    *out = root;
    return DIT_OK;
}

/* A JSON number that is an integer in [0, 2^53]. */
static int st__json_uint(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= (double)ST_MAX_DIM_VALUE)) return 0; /* also rejects NaN */
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return 0;
    *v = u;
    return 1;
}

/* ---- st_file ------------------------------------------------------------------------------ */

struct st_file {
    char *path;
    unsigned char *map; /* whole file, PROT_READ, MAP_PRIVATE */
    size_t map_size;
    uint64_t header_len, data_size;
    int n;
    st_tensor *t;          /* [n], by (begin, end, name) */
    st__index idx;         /* name -> position in t */
    int n_meta;
    const char **meta;     /* [2 * n_meta]: key, value, in file order */
    st__index meta_idx;    /* key -> meta pair */
    char *strings;         /* every name, key and value */
    unsigned char *copies; /* aligned copies of misaligned tensors, or NULL */
};

void st_close(st_file *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    free(f->path);
    free(f->t);
    free(f->idx.slot);
    free(f->meta);
    free(f->meta_idx.slot);
    free(f->strings);
    free(f->copies);
    free(f);
}

const char *st_path(const st_file *f) { return f->path; }
int st_count(const st_file *f) { return f->n; }
uint64_t st_data_size(const st_file *f) { return f->data_size; }
int st_meta_count(const st_file *f) { return f->n_meta; }

const st_tensor *st_at(const st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    int i = st__index_get(&f->idx, name);
    return i < 0 ? NULL : &f->t[i];
}

void st_meta_at(const st_file *f, int i, const char **key, const char **val)
{
    int ok = i >= 0 && i < f->n_meta;
    if (key) *key = ok ? f->meta[2 * i] : NULL;
    if (val) *val = ok ? f->meta[2 * i + 1] : NULL;
}

const char *st_meta_get(const st_file *f, const char *key)
{
    int i = st__index_get(&f->meta_idx, key);
    return i < 0 ? NULL : f->meta[2 * i + 1];
}

dit_status st_tensor_view(const st_tensor *t, tensor *out, dit_err *e)
{
    dtype dt;
    if (!st_dtype_to_core(t->dtype, &dt)) {
        char nb[CLIP_CAP];
        return err_set(e, DIT_E_UNSUPPORTED, "tensor '%s': dtype %s has no compute type (F32, F16, BF16 only)",
                       CLIP(nb, t->name), st_dtype_name(t->dtype));
    }
    *out = tensor_make(dt, (void *)(uintptr_t)t->data, t->nd, t->shape);
    return DIT_OK;
}

/* One tensor entry of the header -> *t (name already set). data_size bounds the offsets.
 *
 * Checks run in the order a reader needs them: the entry's shape (object, each field once),
 * dtype, shape (dims, then each entry, then the checked byte size), data_offsets (two
 * integers, not reversed, inside the data, exactly the byte size). Numbers arrive as doubles
 * from cJSON, so every integer is checked for integrality and range on valuedouble before it
 * is converted (valueint saturates silently). Unknown fields are ignored, as safetensors'
 * serde reader does; repeated fields are an error (cJSON would keep both and we would read the
 * first). */
static dit_status st__parse_entry(const char *path, const cJSON *j, st_tensor *t, uint64_t data_size,
                                  dit_err *e)
{
    char nb[CLIP_CAP], sb[160];
    const char *nm = CLIP(nb, t->name);
    if (!cJSON_IsObject(j))
        return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, nm);
    static const char *const KEYS[3] = { "dtype", "shape", "data_offsets" };
    const cJSON *field[3] = { NULL, NULL, NULL };
    for (const cJSON *c = j->child; c; c = c->next)
        for (int k = 0; k < 3; k++)
            if (!strcmp(c->string, KEYS[k])) {
                if (field[k])
                    return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': duplicate \"%s\"", path, nm, KEYS[k]);
                field[k] = c;
            }
    for (int k = 0; k < 3; k++)
        if (!field[k]) return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': missing \"%s\"", path, nm, KEYS[k]);

    /* dtype: exact, case-sensitive spec name */
    if (!cJSON_IsString(field[0]))
        return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': \"dtype\" is not a string", path, nm);
    t->dtype = st_dtype_parse(field[0]->valuestring);
    if (t->dtype == ST_DTYPE_COUNT) {
        char db[CLIP_CAP];
        return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': unknown dtype \"%s\"", path, nm,
                       CLIP(db, field[0]->valuestring));
    }

    /* shape: at most 8 integers in [0, 2^53]; [] is a scalar, a 0 anywhere an empty tensor */
    const cJSON *sh = field[1];
    if (!cJSON_IsArray(sh)) return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': \"shape\" is not an array", path, nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS)
        return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': shape has %d dims, more than %d", path, nm, nd,
                       ST_MAX_DIMS);
    t->nd = nd;
    int d = 0;
    for (const cJSON *c = sh->child; c; c = c->next, d++) {
        uint64_t v;
        if (!st__json_uint(c, &v)) {
            if (!cJSON_IsNumber(c))
                return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': shape[%d] is not a number", path, nm, d);
            double x = c->valuedouble;
            const char *why = x < 0 ? "is negative" : x > (double)ST_MAX_DIM_VALUE ? "is larger than 2^53"
                                                                                    : "is not an integer";
            return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': shape[%d] = %g %s", path, nm, d, x, why);
        }
        t->shape[d] = (int64_t)v;
    }
    uint64_t nbytes;
    const char *why = "";
    if (!st__nbytes(t->dtype, t->shape, nd, &t->numel, &nbytes, &why)) {
        st__fmt_shape(sb, sizeof sb, t->shape, nd);
        return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': %s %s %s", path, nm, st_dtype_name(t->dtype), sb, why);
    }

    /* data_offsets: [begin, end) relative to the first byte after the header */
    const cJSON *off = field[2];
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': \"data_offsets\" is not an array of two integers",
                       path, nm);
    uint64_t be[2];
    for (int k = 0; k < 2; k++) {
        const cJSON *c = cJSON_GetArrayItem(off, k);
        if (!st__json_uint(c, &be[k])) {
            if (cJSON_IsNumber(c) && c->valuedouble > (double)ST_MAX_DIM_VALUE)
                return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': data_offsets[%d] = %g is beyond the data (%llu bytes)",
                               path, nm, k, c->valuedouble, (ull)data_size);
            return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': data_offsets[%d] is not a non-negative integer",
                           path, nm, k);
        }
    }
    t->begin = be[0];
    t->end = be[1];
    if (t->begin > t->end)
        return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] reversed", path, nm,
                       (ull)t->begin, (ull)t->end);
    if (t->end > data_size)
        return err_set(e, DIT_E_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] run past the data (%llu bytes; truncated file?)",
                       path, nm, (ull)t->begin, (ull)t->end, (ull)data_size);
    if (t->end - t->begin != nbytes) {
        st__fmt_shape(sb, sizeof sb, t->shape, nd);
        return err_set(e, DIT_E_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %s %s needs %llu",
                       path, nm, (ull)t->begin, (ull)t->end, (ull)(t->end - t->begin), st_dtype_name(t->dtype), sb,
                       (ull)nbytes);
    }
    return DIT_OK;
}

/* File order: by begin, then end (so a zero-size tensor sorts before the one starting at the
 * same offset), then name, so the order is total and st_at is deterministic. */
static int st__cmp_offset(const void *pa, const void *pb)
{
    const st_tensor *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Fill f from the parsed header. f->path, map, header_len, data_size are set.
 *
 * Two passes over the JSON: the first counts entries and string bytes so that every name, key
 * and value goes into one block (the cJSON tree is freed when st_open returns); the second
 * parses each entry. Whole-file rules come last: unique names, then tiling. On error f is left
 * half-filled and st_close frees whatever was allocated. */
static dit_status st__load_header(st_file *f, const cJSON *root, dit_err *e)
{
    const char *path = f->path;
    char nb[CLIP_CAP], nb2[CLIP_CAP];

    /* Pass 1: count, size the string block, find and check __metadata__. */
    const cJSON *meta = NULL;
    size_t str_bytes = 1;
    int n = 0, n_meta = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (!strcmp(c->string, "__metadata__")) {
            if (meta) return err_set(e, DIT_E_FORMAT, "%s: duplicate \"__metadata__\"", path);
            meta = c;
            continue;
        }
        n++;
        str_bytes += strlen(c->string) + 1;
    }
    if (meta) {
        if (!cJSON_IsObject(meta)) return err_set(e, DIT_E_FORMAT, "%s: \"__metadata__\" is not an object", path);
        for (const cJSON *c = meta->child; c; c = c->next) {
            if (!cJSON_IsString(c))
                return err_set(e, DIT_E_FORMAT, "%s: __metadata__ '%s' is not a string", path, CLIP(nb, c->string));
            n_meta++;
            str_bytes += strlen(c->string) + strlen(c->valuestring) + 2;
        }
    }

    f->t = calloc(n ? (size_t)n : 1, sizeof *f->t);
    f->meta = calloc(n_meta ? 2 * (size_t)n_meta : 1, sizeof *f->meta);
    f->strings = malloc(str_bytes);
    if (!f->t || !f->meta || !f->strings || !st__index_init(&f->idx, (size_t)n) ||
        !st__index_init(&f->meta_idx, (size_t)n_meta))
        return err_set(e, DIT_E_OOM, "%s: out of memory for %d tensors", path, n);
    char *sp = f->strings;
#define ST_COPY(dst, src)                      \
    do {                                       \
        size_t len_ = strlen(src) + 1;         \
        memcpy(sp, (src), len_);               \
        (dst) = sp;                            \
        sp += len_;                            \
    } while (0)

    /* Pass 2: metadata, then each tensor entry on its own. */
    int m = 0;
    if (meta) {
        for (const cJSON *c = meta->child; c; c = c->next, m++) {
            ST_COPY(f->meta[2 * m], c->string);
            ST_COPY(f->meta[2 * m + 1], c->valuestring);
            if (st__index_put(&f->meta_idx, f->meta[2 * m], m) >= 0)
                return err_set(e, DIT_E_FORMAT, "%s: duplicate __metadata__ key '%s'", path, CLIP(nb, c->string));
        }
    }
    f->n_meta = n_meta;
    int i = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == meta) continue;
        ST_COPY(f->t[i].name, c->string);
        dit_status s = st__parse_entry(path, c, &f->t[i], f->data_size, e);
        if (s) return s;
        i++;
    }
#undef ST_COPY
    f->n = n;

    /* Names must be unique (cJSON keeps repeated keys as separate items, so this is ours to
     * check); then the sorted tensors must tile [0, data_size) exactly, as in safetensors'
     * Metadata::validate. Overlap and hole are told apart so the message says which; both
     * also cover zero-size tensors, which must sit on a boundary, not inside another tensor. */
    qsort(f->t, (size_t)n, sizeof *f->t, st__cmp_offset);
    for (i = 0; i < n; i++)
        if (st__index_put(&f->idx, f->t[i].name, i) >= 0)
            return err_set(e, DIT_E_FORMAT, "%s: duplicate tensor name '%s'", path, CLIP(nb, f->t[i].name));
    uint64_t pos = 0;
    const st_tensor *prev = NULL;
    for (i = 0; i < n; i++) {
        const st_tensor *t = &f->t[i];
        if (t->begin < pos)
            return err_set(e, DIT_E_FORMAT, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap", path,
                           CLIP(nb, prev->name), (ull)prev->begin, (ull)prev->end, CLIP(nb2, t->name),
                           (ull)t->begin, (ull)t->end);
        if (t->begin > pos) {
            if (!prev)
                return err_set(e, DIT_E_FORMAT, "%s: hole of %llu bytes before the first tensor '%s' [%llu, %llu]",
                               path, (ull)t->begin, CLIP(nb, t->name), (ull)t->begin, (ull)t->end);
            return err_set(e, DIT_E_FORMAT, "%s: hole of %llu bytes between tensors '%s' (ends at %llu) and '%s' (begins at %llu)",
                           path, (ull)(t->begin - pos), CLIP(nb, prev->name), (ull)pos, CLIP(nb2, t->name),
                           (ull)t->begin);
        }
        prev = t; /* sorted and gap-free so far, so prev->end == pos */
        pos = t->end;
    }
    if (pos != f->data_size)
        return err_set(e, DIT_E_FORMAT, "%s: %llu trailing bytes after the last tensor (data is %llu bytes, tensors end at %llu)",
                       path, (ull)(f->data_size - pos), (ull)f->data_size, (ull)pos);

    /* Data pointers. A tensor whose absolute file offset is not a multiple of its element
     * size (an old writer that did not pad the header) gets an aligned copy; all copies share
     * one buffer, each piece rounded up to 8 bytes. */
    const unsigned char *data = f->map + 8 + f->header_len;
    size_t copy_bytes = 0;
    int n_copy = 0;
    for (i = 0; i < n; i++) {
        const st_tensor *t = &f->t[i];
        if ((8 + f->header_len + t->begin) % st__align(t->dtype)) {
            copy_bytes += (size_t)((t->end - t->begin + 7) & ~7ull);
            n_copy++;
        }
    }
    if (n_copy && !(f->copies = malloc(copy_bytes ? copy_bytes : 8)))
        return err_set(e, DIT_E_OOM, "%s: out of memory for %zu bytes of aligned copies", path, copy_bytes);
    size_t at = 0;
    for (i = 0; i < n; i++) {
        st_tensor *t = &f->t[i];
        const unsigned char *p = data + t->begin;
        if ((8 + f->header_len + t->begin) % st__align(t->dtype)) {
            memcpy(f->copies + at, p, (size_t)(t->end - t->begin));
            p = f->copies + at;
            at += (size_t)((t->end - t->begin + 7) & ~7ull);
        }
        t->data = p;
    }
    return DIT_OK;
}

/* open -> fstat (regular file, >= 8 bytes) -> mmap the whole file -> header length (limit,
 * inside the file) -> private copy of the header -> text checks + JSON parse -> entries. */
dit_status st_open(st_file **out, const char *path, dit_err *e)
{
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = st__strdup(path))) {
        free(f);
        return err_set(e, DIT_E_OOM, "%s: out of memory", path);
    }
    dit_status s = DIT_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* O_NONBLOCK: a FIFO must not block */
    struct stat sb;
    if (fd < 0) {
        s = err_set(e, DIT_E_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(fd, &sb) != 0) {
        s = err_set(e, DIT_E_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        s = err_set(e, DIT_E_IO, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        s = err_set(e, DIT_E_FORMAT, "%s: file is %llu bytes, too short for the 8-byte header length", path, (ull)size);
        goto fail;
    }
    if (size > SIZE_MAX) {
        s = err_set(e, DIT_E_IO, "%s: file of %llu bytes is too large to map", path, (ull)size);
        goto fail;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        s = err_set(e, DIT_E_IO, "%s: cannot mmap %llu bytes: %s", path, (ull)size, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    f->map = map;
    f->map_size = (size_t)size;

    uint64_t hl = 0; /* u64 little-endian, whatever the host's byte order */
    for (int k = 7; k >= 0; k--) hl = hl << 8 | f->map[k];
    if (hl > ST_MAX_HEADER) {
        s = err_set(e, DIT_E_FORMAT, "%s: header length %llu is beyond the safetensors limit of %llu bytes", path,
                    (ull)hl, (ull)ST_MAX_HEADER);
        goto fail;
    }
    if (hl > size - 8) {
        s = err_set(e, DIT_E_FORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)", path, (ull)hl,
                    (ull)size);
        goto fail;
    }
    f->header_len = hl;
    f->data_size = size - 8 - hl;

    /* cJSON reads a private copy of exactly hl bytes (no terminator), so a parser overread is
     * an ASan error in the tests rather than a silent read of tensor data. */
    unsigned char *hdr = malloc(hl ? (size_t)hl : 1);
    if (!hdr) {
        s = err_set(e, DIT_E_OOM, "%s: out of memory for a %llu-byte header", path, (ull)hl);
        goto fail;
    }
    memcpy(hdr, f->map + 8, (size_t)hl);
    cJSON *root = NULL;
    s = st__parse_object(path, "header", hdr, (size_t)hl, &root, e);
    if (!s) s = st__load_header(f, root, e);
    /* after the structural checks, whose messages are more specific */
    if (!s) s = st__check_integers(path, hdr, (size_t)hl, e);
    cJSON_Delete(root);
    free(hdr);
    if (s) goto fail;
    *out = f;
    return DIT_OK;
fail:
    if (fd >= 0) close(fd);
    st_close(f);
    return s;
}

/* ---- st_set ------------------------------------------------------------------------------- */

/* A set is a list of open files plus one name index over all of their tensors. A single file is
 * a set of one whose metadata points into the file; an index owns copies of its "metadata"
 * values (those that are not strings are printed back as JSON). */

struct st_set {
    char *path;
    int is_index;
    int n_files;
    st_file **files;       /* [n_files], shards in name order */
    int n;
    const st_tensor **t;   /* [n] */
    int *file_of;          /* [n] */
    st__index idx;         /* name -> position in t */
    int n_meta;
    const char **meta;     /* [2 * n_meta] */
    char **meta_own;       /* index only: the strings meta points to */
    st__index meta_idx;
};

void st_set_close(st_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) st_close(s->files[i]);
    if (s->meta_own)
        for (int i = 0; i < 2 * s->n_meta; i++) free(s->meta_own[i]);
    free(s->meta_own);
    free(s->meta);
    free(s->meta_idx.slot);
    free(s->files);
    free(s->t);
    free(s->file_of);
    free(s->idx.slot);
    free(s->path);
    free(s);
}

const char *st_set_path(const st_set *s) { return s->path; }
int st_set_count(const st_set *s) { return s->n; }
int st_set_file_count(const st_set *s) { return s->n_files; }
int st_set_is_index(const st_set *s) { return s->is_index; }
int st_set_meta_count(const st_set *s) { return s->n_meta; }

const st_tensor *st_set_at(const st_set *s, int i)
{
    return i >= 0 && i < s->n ? s->t[i] : NULL;
}

const st_file *st_set_file(const st_set *s, int i)
{
    return i >= 0 && i < s->n_files ? s->files[i] : NULL;
}

const st_file *st_set_file_of(const st_set *s, int i)
{
    return i >= 0 && i < s->n ? s->files[s->file_of[i]] : NULL;
}

const st_tensor *st_set_find(const st_set *s, const char *name)
{
    int i = st__index_get(&s->idx, name);
    return i < 0 ? NULL : s->t[i];
}

int st_set_index_of(const st_set *s, const char *name)
{
    return st__index_get(&s->idx, name);
}

void st_set_meta_at(const st_set *s, int i, const char **key, const char **val)
{
    int ok = i >= 0 && i < s->n_meta;
    if (key) *key = ok ? s->meta[2 * i] : NULL;
    if (val) *val = ok ? s->meta[2 * i + 1] : NULL;
}

const char *st_set_meta_get(const st_set *s, const char *key)
{
    int i = st__index_get(&s->meta_idx, key);
    return i < 0 ? NULL : s->meta[2 * i + 1];
}

/* The tensor list and name index over s->files (already open). Duplicates across files are
 * an error (files[] in order, so the message names the earlier one first). */
static dit_status st__set_collect(st_set *s, dit_err *e)
{
    int total = 0;
    for (int k = 0; k < s->n_files; k++) total += st_count(s->files[k]);
    s->t = calloc(total ? (size_t)total : 1, sizeof *s->t);
    s->file_of = calloc(total ? (size_t)total : 1, sizeof *s->file_of);
    if (!s->t || !s->file_of || !st__index_init(&s->idx, (size_t)total))
        return err_set(e, DIT_E_OOM, "%s: out of memory for %d tensors", s->path, total);
    for (int k = 0; k < s->n_files; k++)
        for (int i = 0; i < st_count(s->files[k]); i++) {
            const st_tensor *t = st_at(s->files[k], i);
            int prev = st__index_put(&s->idx, t->name, s->n);
            if (prev >= 0) {
                char nb[CLIP_CAP];
                return err_set(e, DIT_E_FORMAT, "%s: tensor '%s' is in two shards, %s and %s", s->path,
                               CLIP(nb, t->name), st_path(s->files[s->file_of[prev]]), st_path(s->files[k]));
            }
            s->t[s->n] = t;
            s->file_of[s->n] = k;
            s->n++;
        }
    return DIT_OK;
}

static dit_status st__set_single(st_set *s, dit_err *e)
{
    s->files = calloc(1, sizeof *s->files);
    if (!s->files) return err_set(e, DIT_E_OOM, "%s: out of memory", s->path);
    dit_status r = st_open(&s->files[0], s->path, e);
    if (r) return r;
    s->n_files = 1;
    r = st__set_collect(s, e);
    if (r) return r;
    const st_file *f = s->files[0];
    s->n_meta = f->n_meta;
    s->meta = calloc(f->n_meta ? 2 * (size_t)f->n_meta : 1, sizeof *s->meta);
    if (!s->meta || !st__index_init(&s->meta_idx, (size_t)f->n_meta))
        return err_set(e, DIT_E_OOM, "%s: out of memory", s->path);
    for (int i = 0; i < f->n_meta; i++) {
        s->meta[2 * i] = f->meta[2 * i];
        s->meta[2 * i + 1] = f->meta[2 * i + 1];
        st__index_put(&s->meta_idx, s->meta[2 * i], i);
    }
    return DIT_OK;
}

static int st__cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard name must name a file in the index's own folder. */
static int st__plain_name(const char *n)
{
    return *n && strcmp(n, ".") && strcmp(n, "..") && !strchr(n, '/') && !strchr(n, '\\');
}

/* The body of st_set_open for an index, with the parsed JSON in root.
 *
 * Order: find "weight_map" / "metadata" (each at most once); check every weight_map entry
 * (string value, plain file name, name listed once) while collecting the distinct shard names;
 * open each shard once; then cross-check both ways, so that weight_map and the shards describe
 * exactly the same tensors: every listed name is in its named shard, and no shard holds a
 * tensor the map does not list (a model loader walks st_set_at and must not meet strangers).
 * wm_idx and shards point into the cJSON tree and are freed here; the rest belongs to s. */
static dit_status st__set_index(st_set *s, const cJSON *root, dit_err *e)
{
    const char *path = s->path;
    char nb[CLIP_CAP], nb2[CLIP_CAP];
    const cJSON *wm = NULL, *meta = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        const cJSON **slot = !strcmp(c->string, "weight_map") ? &wm : !strcmp(c->string, "metadata") ? &meta : NULL;
        if (!slot) continue;
        if (*slot) return err_set(e, DIT_E_FORMAT, "%s: duplicate \"%s\"", path, c->string);
        *slot = c;
    }
    if (!wm) return err_set(e, DIT_E_FORMAT, "%s: no \"weight_map\"", path);
    if (!cJSON_IsObject(wm)) return err_set(e, DIT_E_FORMAT, "%s: \"weight_map\" is not an object", path);
    if (meta && !cJSON_IsObject(meta)) return err_set(e, DIT_E_FORMAT, "%s: \"metadata\" is not an object", path);

    /* weight_map: names unique, values plain file names; the distinct shards, sorted. */
    int n_wm = cJSON_GetArraySize(wm);
    st__index wm_idx = { 0 };
    const char **shards = calloc(n_wm ? (size_t)n_wm : 1, sizeof *shards);
    dit_status r = DIT_OK;
    if (!shards || !st__index_init(&wm_idx, (size_t)n_wm)) {
        r = err_set(e, DIT_E_OOM, "%s: out of memory", path);
        goto done;
    }
    int i = 0;
    for (const cJSON *c = wm->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c)) {
            r = err_set(e, DIT_E_FORMAT, "%s: weight_map['%s'] is not a string", path, CLIP(nb, c->string));
            goto done;
        }
        if (!st__plain_name(c->valuestring)) {
            r = err_set(e, DIT_E_FORMAT, "%s: weight_map['%s']: shard '%s' is not a file name in the index's folder",
                        path, CLIP(nb, c->string), CLIP(nb2, c->valuestring));
            goto done;
        }
        if (st__index_put(&wm_idx, c->string, i) >= 0) {
            r = err_set(e, DIT_E_FORMAT, "%s: weight_map lists tensor '%s' twice", path, CLIP(nb, c->string));
            goto done;
        }
        shards[i] = c->valuestring;
    }
    qsort(shards, (size_t)n_wm, sizeof *shards, st__cmp_str);
    int n_sh = 0;
    for (i = 0; i < n_wm; i++)
        if (!n_sh || strcmp(shards[n_sh - 1], shards[i])) shards[n_sh++] = shards[i];

    /* Open each shard once, from the index's folder. */
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    s->files = calloc(n_sh ? (size_t)n_sh : 1, sizeof *s->files);
    if (!s->files) {
        r = err_set(e, DIT_E_OOM, "%s: out of memory", path);
        goto done;
    }
    for (i = 0; i < n_sh; i++) {
        size_t len = strlen(shards[i]);
        char *sp = malloc(dir_len + len + 1);
        if (!sp) {
            r = err_set(e, DIT_E_OOM, "%s: out of memory", path);
            goto done;
        }
        memcpy(sp, path, dir_len);
        memcpy(sp + dir_len, shards[i], len + 1);
        r = st_open(&s->files[i], sp, e);
        free(sp);
        if (r) goto done;
        s->n_files++;
    }
    r = st__set_collect(s, e);
    if (r) goto done;

    /* weight_map and the shards must agree exactly. */
    for (const cJSON *c = wm->child; c; c = c->next) {
        int g = st__index_get(&s->idx, c->string);
        if (g < 0) {
            r = err_set(e, DIT_E_FORMAT, "%s: weight_map puts tensor '%s' in %s, which does not have it", path,
                        CLIP(nb, c->string), CLIP(nb2, c->valuestring));
            goto done;
        }
        const char *in = st_path(s->files[s->file_of[g]]) + dir_len;
        if (strcmp(in, c->valuestring)) {
            r = err_set(e, DIT_E_FORMAT, "%s: weight_map puts tensor '%s' in %s, but it is in %s", path,
                        CLIP(nb, c->string), CLIP(nb2, c->valuestring), in);
            goto done;
        }
    }
    for (i = 0; i < s->n; i++)
        if (st__index_get(&wm_idx, s->t[i]->name) < 0) {
            r = err_set(e, DIT_E_FORMAT, "%s: shard %s holds tensor '%s', which weight_map does not list", path,
                        st_path(s->files[s->file_of[i]]) + dir_len, CLIP(nb, s->t[i]->name));
            goto done;
        }

    /* metadata: strings as they are, anything else as compact JSON text. */
    int n_meta = meta ? cJSON_GetArraySize(meta) : 0;
    s->meta = calloc(n_meta ? 2 * (size_t)n_meta : 1, sizeof *s->meta);
    s->meta_own = calloc(n_meta ? 2 * (size_t)n_meta : 1, sizeof *s->meta_own);
    if (!s->meta || !s->meta_own || !st__index_init(&s->meta_idx, (size_t)n_meta)) {
        r = err_set(e, DIT_E_OOM, "%s: out of memory", path);
        goto done;
    }
    i = 0;
    for (const cJSON *c = meta ? meta->child : NULL; c; c = c->next, i++) {
        char *k = st__strdup(c->string);
        char *v = cJSON_IsString(c) ? st__strdup(c->valuestring) : cJSON_PrintUnformatted(c);
        s->meta_own[2 * i] = k;
        s->meta_own[2 * i + 1] = v;
        s->n_meta = i + 1; /* both strings are now owned, freed by st_set_close */
        if (!k || !v) {
            r = err_set(e, DIT_E_OOM, "%s: out of memory", path);
            goto done;
        }
        s->meta[2 * i] = k;
        s->meta[2 * i + 1] = v;
        if (st__index_put(&s->meta_idx, k, i) >= 0) {
            r = err_set(e, DIT_E_FORMAT, "%s: duplicate metadata key '%s'", path, CLIP(nb, k));
            goto done;
        }
    }
done:
    free(shards);
    free(wm_idx.slot);
    return r;
}

/* Read a whole (small) file: the index json. */
static dit_status st__read_small(const char *path, unsigned char **buf, size_t *len, dit_err *e)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return err_set(e, DIT_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    dit_status r = DIT_OK;
    if (fstat(fd, &sb) != 0) r = err_set(e, DIT_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode)) r = err_set(e, DIT_E_IO, "%s: not a regular file", path);
    else if ((uint64_t)sb.st_size > ST_MAX_HEADER)
        r = err_set(e, DIT_E_FORMAT, "%s: index is %llu bytes, beyond the limit of %llu", path, (ull)sb.st_size,
                    (ull)ST_MAX_HEADER);
    else if (!(*buf = malloc(sb.st_size ? (size_t)sb.st_size : 1))) r = err_set(e, DIT_E_OOM, "%s: out of memory", path);
    size_t got = 0;
    while (!r && got < (size_t)sb.st_size) {
        ssize_t k = read(fd, *buf + got, (size_t)sb.st_size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) r = err_set(e, DIT_E_IO, "%s: read failed: %s", path, strerror(errno));
        else if (k == 0) r = err_set(e, DIT_E_IO, "%s: file shrank while reading", path);
        else got += (size_t)k;
    }
    close(fd);
    if (r) {
        free(*buf);
        *buf = NULL;
    }
    *len = got;
    return r;
}

dit_status st_set_open(st_set **out, const char *path, dit_err *e)
{
    *out = NULL;
    st_set *s = calloc(1, sizeof *s);
    if (!s || !(s->path = st__strdup(path))) {
        free(s);
        return err_set(e, DIT_E_OOM, "%s: out of memory", path);
    }
    size_t len = strlen(path);
    s->is_index = len >= 5 && !strcmp(path + len - 5, ".json");
    dit_status r;
    if (!s->is_index) {
        r = st__set_single(s, e);
    } else {
        unsigned char *buf = NULL;
        size_t n = 0;
        cJSON *root = NULL;
        r = st__read_small(path, &buf, &n, e);
        if (!r) r = st__parse_object(path, "index", buf, n, &root, e);
        if (!r) r = st__set_index(s, root, e);
        cJSON_Delete(root);
        free(buf);
    }
    if (r) {
        st_set_close(s);
        return r;
    }
    *out = s;
    return DIT_OK;
}

/* ---- writer ------------------------------------------------------------------------------- */

/* The writer only collects (name, dtype, shape, data pointer) and metadata; all the work is in
 * st_writer_save, which sorts, renders the header and streams the data. */

typedef struct {
    char *name;
    st_dtype dt;
    int nd;
    int64_t shape[ST_MAX_DIMS];
    uint64_t nbytes;
    const void *data; /* not owned */
} st__wtensor;

struct st_writer {
    int n, cap;
    st__wtensor *t;
    int n_meta, cap_meta;
    char **meta; /* [2 * cap_meta]: key, value (owned) */
};

st_writer *st_writer_new(void)
{
    return calloc(1, sizeof(st_writer));
}

void st_writer_free(st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    for (int i = 0; i < 2 * w->n_meta; i++) free(w->meta[i]);
    free(w->t);
    free(w->meta);
    free(w);
}

dit_status st_writer_add(st_writer *w, const char *name, st_dtype dt, int nd, const int64_t *shape,
                         const void *data, dit_err *e)
{
    if (!name) return err_set(e, DIT_E_ARG, "st_writer_add: NULL name");
    char nb[CLIP_CAP];
    const char *nm = CLIP(nb, name);
    if (st__utf8_bad((const unsigned char *)name, strlen(name)) < strlen(name))
        return err_set(e, DIT_E_ARG, "st_writer_add: tensor name '%s' is not valid UTF-8", nm);
    if (!strcmp(name, "__metadata__")) return err_set(e, DIT_E_ARG, "st_writer_add: '__metadata__' is reserved");
    if ((unsigned)dt >= ST_DTYPE_COUNT) return err_set(e, DIT_E_ARG, "st_writer_add: tensor '%s': bad dtype %d", nm, (int)dt);
    if (nd < 0 || nd > ST_MAX_DIMS || (nd && !shape))
        return err_set(e, DIT_E_ARG, "st_writer_add: tensor '%s': %d dims (0..%d allowed)", nm, nd, ST_MAX_DIMS);
    for (int i = 0; i < nd; i++)
        if (shape[i] < 0 || (uint64_t)shape[i] > ST_MAX_DIM_VALUE)
            return err_set(e, DIT_E_ARG, "st_writer_add: tensor '%s': shape[%d] = %lld out of [0, 2^53]", nm, i,
                           (long long)shape[i]);
    uint64_t numel, nbytes;
    const char *why = "";
    if (!st__nbytes(dt, shape, nd, &numel, &nbytes, &why))
        return err_set(e, DIT_E_ARG, "st_writer_add: tensor '%s': %s shape %s", nm, st_dtype_name(dt), why);
    if (nbytes && !data) return err_set(e, DIT_E_ARG, "st_writer_add: tensor '%s': NULL data", nm);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st__wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return err_set(e, DIT_E_OOM, "st_writer_add: out of memory");
        w->t = t;
        w->cap = cap;
    }
    st__wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = st__strdup(name))) return err_set(e, DIT_E_OOM, "st_writer_add: out of memory");
    t->dt = dt;
    t->nd = nd;
    for (int i = 0; i < nd; i++) t->shape[i] = shape[i];
    t->nbytes = nbytes;
    t->data = data;
    w->n++;
    return DIT_OK;
}

dit_status st_writer_meta(st_writer *w, const char *key, const char *value, dit_err *e)
{
    if (!key || !value) return err_set(e, DIT_E_ARG, "st_writer_meta: NULL key or value");
    if (st__utf8_bad((const unsigned char *)key, strlen(key)) < strlen(key) ||
        st__utf8_bad((const unsigned char *)value, strlen(value)) < strlen(value))
        return err_set(e, DIT_E_ARG, "st_writer_meta: key or value is not valid UTF-8");
    char *v = st__strdup(value);
    if (!v) return err_set(e, DIT_E_OOM, "st_writer_meta: out of memory");
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[2 * i], key)) {
            free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return DIT_OK;
        }
    char *k = st__strdup(key);
    if (!k) {
        free(v);
        return err_set(e, DIT_E_OOM, "st_writer_meta: out of memory");
    }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **m = realloc(w->meta, 2 * (size_t)cap * sizeof *m);
        if (!m) {
            free(k);
            free(v);
            return err_set(e, DIT_E_OOM, "st_writer_meta: out of memory");
        }
        w->meta = m;
        w->cap_meta = cap;
    }
    w->meta[2 * w->n_meta] = k;
    w->meta[2 * w->n_meta + 1] = v;
    w->n_meta++;
    return DIT_OK;
}

/* A growable byte buffer; ok turns 0 on the first failed allocation. */
typedef struct {
    char *p;
    size_t len, cap;
    int ok;
} st__buf;

static void st__put(st__buf *b, const char *s, size_t n)
{
    if (!b->ok) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->ok = 0;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void st__puts(st__buf *b, const char *s) { st__put(b, s, strlen(s)); }

static void st__putu(st__buf *b, uint64_t v)
{
    char tmp[24];
    st__put(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (ull)v));
}

/* A JSON string literal: quote, backslash and control bytes escaped; UTF-8 passes through. */
static void st__put_json_str(st__buf *b, const char *s)
{
    st__put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            st__put(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            st__put(b, esc, 6);
        } else {
            st__put(b, s, 1);
        }
    }
    st__put(b, "\"", 1);
}

/* Data order: larger elements first, then by name (safetensors' prepare()). */
static int st__cmp_write(const void *pa, const void *pb)
{
    const st__wtensor *a = *(const st__wtensor *const *)pa, *b = *(const st__wtensor *const *)pb;
    int ba = st_dtype_bits(a->dt), bb = st_dtype_bits(b->dt);
    if (ba != bb) return ba > bb ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int st__cmp_wname(const void *pa, const void *pb)
{
    return strcmp((*(const st__wtensor *const *)pa)->name, (*(const st__wtensor *const *)pb)->name);
}

typedef struct {
    const char *key, *val;
} st__kv;

static int st__cmp_meta(const void *pa, const void *pb)
{
    return strcmp(((const st__kv *)pa)->key, ((const st__kv *)pb)->key);
}

static int st__write_all(int fd, const void *p, uint64_t n)
{
    const unsigned char *c = p;
    while (n) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t k = write(fd, c, chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        c += k;
        n -= (uint64_t)k;
    }
    return 1;
}

/* sort (duplicates checked by name first) -> header JSON -> pad to 8 -> path.tmp (u64 length,
 * header, data in header order) -> fsync -> rename over path. Any failure unlinks path.tmp. */
dit_status st_writer_save(const st_writer *w, const char *path, dit_err *e)
{
    const st__wtensor **order = calloc(w->n ? (size_t)w->n : 1, sizeof *order);
    st__kv *mord = calloc(w->n_meta ? (size_t)w->n_meta : 1, sizeof *mord);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    st__buf h = { .ok = 1 };
    dit_status r = DIT_OK;
    int fd = -1;
    if (!order || !mord || !tmp) {
        r = err_set(e, DIT_E_OOM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < w->n; i++) order[i] = &w->t[i];
    qsort(order, (size_t)w->n, sizeof *order, st__cmp_wname);
    for (int i = 1; i < w->n; i++)
        if (!strcmp(order[i - 1]->name, order[i]->name)) {
            char nb[CLIP_CAP];
            r = err_set(e, DIT_E_ARG, "%s: tensor '%s' added twice", path, CLIP(nb, order[i]->name));
            goto done;
        }
    qsort(order, (size_t)w->n, sizeof *order, st__cmp_write);
    for (int i = 0; i < w->n_meta; i++) mord[i] = (st__kv){ w->meta[2 * i], w->meta[2 * i + 1] };
    qsort(mord, (size_t)w->n_meta, sizeof *mord, st__cmp_meta);

    /* Header JSON, compact, as safetensors writes it. */
    st__puts(&h, "{");
    if (w->n_meta) {
        st__puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) st__puts(&h, ",");
            st__put_json_str(&h, mord[i].key);
            st__puts(&h, ":");
            st__put_json_str(&h, mord[i].val);
        }
        st__puts(&h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const st__wtensor *t = order[i];
        if (i || w->n_meta) st__puts(&h, ",");
        st__put_json_str(&h, t->name);
        st__puts(&h, ":{\"dtype\":\"");
        st__puts(&h, st_dtype_name(t->dt));
        st__puts(&h, "\",\"shape\":[");
        for (int d = 0; d < t->nd; d++) {
            if (d) st__puts(&h, ",");
            st__putu(&h, (uint64_t)t->shape[d]);
        }
        st__puts(&h, "],\"data_offsets\":[");
        st__putu(&h, off);
        st__puts(&h, ",");
        st__putu(&h, off + t->nbytes);
        st__puts(&h, "]}");
        off += t->nbytes;
    }
    st__puts(&h, "}");
    while (h.ok && h.len % 8) st__puts(&h, " ");
    if (!h.ok) {
        r = err_set(e, DIT_E_OOM, "%s: out of memory for the header", path);
        goto done;
    }
    if (h.len > ST_MAX_HEADER) {
        r = err_set(e, DIT_E_ARG, "%s: header of %zu bytes is beyond the safetensors limit", path, h.len);
        goto done;
    }

    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = err_set(e, DIT_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    unsigned char le[8];
    for (int k = 0; k < 8; k++) le[k] = (unsigned char)((uint64_t)h.len >> (8 * k));
    int ok = st__write_all(fd, le, 8) && st__write_all(fd, h.p, h.len);
    for (int i = 0; ok && i < w->n; i++) ok = st__write_all(fd, order[i]->data, order[i]->nbytes);
    if (ok) ok = fsync(fd) == 0;
    if (close(fd) != 0) ok = 0;
    fd = -1;
    if (!ok || rename(tmp, path) != 0) {
        r = err_set(e, DIT_E_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
    }
done:
    if (fd >= 0) close(fd);
    free(h.p);
    free(tmp);
    free(order);
    free(mord);
    return r;
}
