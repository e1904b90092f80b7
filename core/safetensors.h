/* core/safetensors.h — safetensors reader (mmap, zero copy), sharded index, and writer.
 *
 *   st_file *f; dit_err e = {0};
 *   if (st_open(&f, "model.safetensors", &e) != DIT_OK) { fprintf(stderr, "%s\n", e.msg); return 1; }
 *   const st_tensor *w = st_find(f, "final_layer.linear.weight");   // NULL when absent
 *   tensor v;
 *   if (w && st_tensor_view(w, &v, &e) == DIT_OK) { ... }            // v.data points into the map
 *   st_close(f);                                                      // every st_tensor dies with f
 *
 * Format (huggingface/safetensors, docs "Format"): u64 little-endian N, N bytes of UTF-8 JSON
 * (padded with spaces), then the data. The JSON maps each tensor name to
 * {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, offsets relative to the
 * start of the data; an optional "__metadata__" object maps strings to strings.
 *
 * Files are untrusted. st_open checks everything before it returns a tensor: header length
 * (<= ST_MAX_HEADER, the safetensors limit), UTF-8 and JSON syntax, every entry's dtype, shape
 * (<= 8 dims, integers in [0, 2^53], no overflow of numel * element size) and data_offsets,
 * that the tensors tile the data exactly (sorted by offset: first at 0, no overlap, no hole, no
 * trailing bytes), duplicate names, and __metadata__. A failure returns DIT_E_FORMAT (DIT_E_IO
 * for open/stat/mmap, DIT_E_OOM) with a one-line message that starts with the file path:
 *   "model.safetensors: tensor 'a.weight': data_offsets [16, 8] reversed"
 *
 * Alignment: the map is page aligned, so a tensor is aligned when its absolute file offset
 * (8 + N + begin) is a multiple of its element size, which safetensors' own writer guarantees
 * (header padded to 8, larger dtypes first). Some old writers did not pad the header; such
 * misaligned tensors are copied once, at open, into an aligned buffer the st_file owns. Either
 * way st_tensor.data is aligned for its dtype, read-only (PROT_READ: writing through it
 * faults), and valid until st_close.
 *
 * Threads: no global state of ours, and an open st_file / st_set is immutable, so any number
 * of threads may read it. Opening is not reentrant: cJSON (1.7.15) records parse errors in a
 * global, so call st_open / st_set_open from one thread at a time.
 */
#ifndef DIT_CORE_SAFETENSORS_H
#define DIT_CORE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tensor.h"

#define ST_MAX_DIMS 8                  /* same as TENSOR_MAX_DIMS */
#define ST_MAX_HEADER 100000000ull     /* bytes; safetensors' MAX_HEADER_SIZE */
#define ST_MAX_DIM_VALUE (1ull << 53)  /* largest shape entry / offset a JSON double holds exactly */

/* Every dtype the safetensors spec defines (safetensors/src/tensor.rs `Dtype`, same order:
 * increasing alignment). F4 and F6 are packed sub-byte types: a tensor of them must fill whole
 * bytes (numel * bits % 8 == 0). */
typedef enum {
    ST_BOOL,
    ST_F4,       /* 4-bit float (e2m1), two per byte */
    ST_F6_E2M3,  /* 6-bit floats, packed */
    ST_F6_E3M2,
    ST_U8,
    ST_I8,
    ST_F8_E5M2,
    ST_F8_E4M3,
    ST_F8_E8M0,  /* power-of-two scale (MX formats) */
    ST_I16,
    ST_U16,
    ST_F16,
    ST_BF16,
    ST_I32,
    ST_U32,
    ST_F32,
    ST_C64,      /* complex: two F32 */
    ST_F64,
    ST_I64,
    ST_U64,
    ST_DTYPE_COUNT
} st_dtype;

const char *st_dtype_name(st_dtype t);      /* "F32", "BF16", ...; "?" when out of range */
st_dtype st_dtype_parse(const char *name);  /* exact, case-sensitive; ST_DTYPE_COUNT if unknown */
int st_dtype_bits(st_dtype t);              /* 4, 6, 8, 16, 32 or 64; 0 when out of range */
size_t st_dtype_size(st_dtype t);           /* bytes per element; 0 for sub-byte F4/F6 */
/* The core compute dtype for F32/F16/BF16; returns 0 (and leaves *out alone) for the rest. */
int st_dtype_to_core(st_dtype t, dtype *out);

typedef struct {
    const char *name;                 /* owned by the st_file */
    st_dtype dtype;
    int nd;                           /* 0 = scalar */
    int64_t shape[ST_MAX_DIMS];       /* each in [0, 2^53] */
    uint64_t numel;                   /* product of shape (1 for a scalar, 0 if any dim is 0) */
    uint64_t begin, end;              /* data_offsets as in the header; nbytes = end - begin */
    const void *data;                 /* aligned, read-only, valid until st_close */
} st_tensor;

/* ---- one .safetensors file ---------------------------------------------------------------- */

typedef struct st_file st_file;

/* Open, map and validate path. On success *out owns the map; free with st_close.
 * On failure *out is NULL and e holds the message. */
dit_status st_open(st_file **out, const char *path, dit_err *e);
void st_close(st_file *f);                                  /* NULL is fine */

const char *st_path(const st_file *f);
int st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, int i);            /* 0 <= i < count, by data offset */
const st_tensor *st_find(const st_file *f, const char *name); /* hash lookup; NULL if absent */
uint64_t st_data_size(const st_file *f);                    /* bytes after the header */

/* __metadata__, in file order. Strings are owned by f. */
int st_meta_count(const st_file *f);
void st_meta_at(const st_file *f, int i, const char **key, const char **val);
const char *st_meta_get(const st_file *f, const char *key); /* NULL if absent */

/* A core tensor view (contiguous, row-major) of an F32/F16/BF16 tensor. data is the read-only
 * map: do not write through it. Other dtypes: DIT_E_UNSUPPORTED naming the tensor and dtype. */
dit_status st_tensor_view(const st_tensor *t, tensor *out, dit_err *e);

/* ---- a model: one file, or a sharded *.safetensors.index.json ------------------------------ */

/* An index is {"metadata": {...}, "weight_map": {tensor name: shard file name}}; shards sit in
 * the index's folder (names with '/' or that are "." / ".." are rejected). Each shard is opened
 * once with st_open. It is an error for a weight_map name to be missing from its shard, for a
 * tensor to be in two shards, or for a shard to hold a tensor the weight_map does not list.
 * Errors about the index start with its path; errors inside a shard with the shard's path. */
typedef struct st_set st_set;

/* A path ending in ".json" is read as an index, anything else as a single safetensors file. */
dit_status st_set_open(st_set **out, const char *path, dit_err *e);
void st_set_close(st_set *s);                               /* NULL is fine */

const char *st_set_path(const st_set *s);
int st_set_count(const st_set *s);
/* All tensors: shards in name order, each shard by data offset. */
const st_tensor *st_set_at(const st_set *s, int i);
const st_tensor *st_set_find(const st_set *s, const char *name); /* NULL if absent */
int st_set_index_of(const st_set *s, const char *name);          /* its i for st_set_at, or -1 */
int st_set_file_count(const st_set *s);                     /* 1 for a single file */
const st_file *st_set_file(const st_set *s, int i);         /* shard i, in name order */
const st_file *st_set_file_of(const st_set *s, int i);      /* the shard holding st_set_at(s, i) */
int st_set_is_index(const st_set *s);

/* Single file: its __metadata__. Index: its "metadata" object, where values that are not
 * strings (e.g. "total_size": 16324284416) are given as compact JSON text ("16324284416"). */
int st_set_meta_count(const st_set *s);
void st_set_meta_at(const st_set *s, int i, const char **key, const char **val);
const char *st_set_meta_get(const st_set *s, const char *key);

/* ---- writer --------------------------------------------------------------------------------- */

/* Writes standard safetensors that Python's safetensors reads. Header: "__metadata__" first
 * (if any), then the tensors in data order; the order is the one safetensors' own writer uses,
 * larger elements first, then by name, so every tensor lands aligned. The header is padded with
 * spaces to a multiple of 8 and the data is contiguous. Deterministic: the same tensors give
 * the same bytes whatever order they were added in.
 *
 *   st_writer *w = st_writer_new();
 *   st_writer_add(w, "x", ST_F32, 2, (int64_t[]){2, 3}, xs, &e);   // xs must live until save
 *   st_writer_meta(w, "format", "pt", &e);
 *   st_writer_save(w, "out.safetensors", &e);
 *   st_writer_free(w);
 */
typedef struct st_writer st_writer;

st_writer *st_writer_new(void);                             /* NULL when out of memory */
void st_writer_free(st_writer *w);                          /* NULL is fine */
/* Name and shape are copied; data is REFERENCED (numel * size bytes, may be NULL when that is
 * 0) and must stay valid until st_writer_save returns. Checks dtype, nd <= 8, dims in
 * [0, 2^53], no overflow, whole bytes for F4/F6, valid UTF-8 name, not "__metadata__":
 * DIT_E_ARG otherwise. A name added twice is a DIT_E_ARG from st_writer_save. */
dit_status st_writer_add(st_writer *w, const char *name, st_dtype dt, int nd, const int64_t *shape,
                         const void *data, dit_err *e);
/* Key and value are copied (valid UTF-8); setting a key again replaces its value. */
dit_status st_writer_meta(st_writer *w, const char *key, const char *value, dit_err *e);
/* Write to "path.tmp", then rename to path; on failure the .tmp file is removed and path is
 * left as it was. */
dit_status st_writer_save(const st_writer *w, const char *path, dit_err *e);

#endif
