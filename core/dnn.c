/* core/dnn.c — the oneDNN-backed kernels: linear (matmul), conv2d, and tiled attention, with
 * their naive twins (ops_ref_linear, ops_ref_conv2d, ops_ref_attention).
 *
 * oneDNN primitives are created once per shape and kept in a small cache on the ops_ctx, with
 * memory objects whose data handles are set on every call. Conversion scratch (bf16 copies of
 * activations) also lives on the context and only grows, so a steady loop allocates nothing.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops.h"
#include "ops_vec.h"

#define CACHE_SIZE 128
#define MAX_ARGS 4

/* A matmul over a batch: C[b] = A[b] B[b] (+ bias), A: [Bt, M, K], B: [Bt, K, N], C: [Bt, M, N] f32.
 * Strides are in elements, so transposed and head-interleaved operands need no copy. */
typedef struct {
    int64_t batch, M, K, N;
    int64_t sa[3], sb[3], sc[3];
    int ta, tb; /* dnnl_data_type_t of A and B */
    int bias;
    int sum;    /* C += A B (oneDNN sum post-op) instead of C = A B; also keeps the memcmp'd key free of padding */
} mm_spec;

typedef struct {
    int64_t N, C, H, W, OC, kh, kw, stride, pt, pl, pb, pr, groups;
    int tw; /* weights dtype (src is converted to the same) */
    int bias;
} conv_spec;
_Static_assert(sizeof(mm_spec) == 15 * 8 && sizeof(conv_spec) == 14 * 8, "cache keys must have no padding");

/* y[M,N] = x[M,K] W^T with W packed (ops_weight): 2-D, bf16, W in oneDNN's blocked layout. */
typedef struct {
    int64_t M, N, K;
    int bias;
    int pad_; /* explicit, so the memcmp'd key has no padding bytes */
} packed_spec;

enum { PRIM_MM = 1, PRIM_CONV, PRIM_PACKED };

typedef struct {
    int kind, threads;
    union { mm_spec mm; conv_spec conv; packed_spec packed; } key;
    dnnl_primitive_t prim;
    dnnl_memory_t mem[MAX_ARGS];
    int arg[MAX_ARGS], n_mem;
    uint64_t last_use;
    /* conv only: layout changes around the primitive, which runs on oneDNN's blocked layouts
     * (its AMX kernels need them): 0 src in, 1 weights in, 2 dst out. prim NULL = same layout. */
    struct {
        dnnl_primitive_t prim;
        dnnl_memory_t from, to;
        size_t bytes; /* of the blocked side */
    } re[3];
} prim_entry;

typedef struct {
    void *p;
    size_t bytes;
} scratch;

enum { SCR_A, SCR_B, SCR_C, SCR_D, SCR_E, SCR_F, SCR_G, SCR_COUNT };

struct ops_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    prim_entry cache[CACHE_SIZE];
    uint64_t tick;
    scratch scr[SCR_COUNT];
    int amx; /* oneDNN runs bf16 products on AMX tiles (attention picks its block sizes by it) */
    dit_err err;
};

const char *ops_prec_name(ops_prec p)
{
    static const char *const names[OPS_PREC_COUNT] = { "ref", "f32", "bf16" };
    return (unsigned)p < OPS_PREC_COUNT ? names[p] : "?";
}

static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

ops_ctx *ops_ctx_new(dit_err *e)
{
    ops_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, DIT_E_OOM, "ops: cannot allocate context");
        return NULL;
    }
    if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags) != dnnl_success) {
        err_set(e, DIT_E_BACKEND, "ops: oneDNN CPU engine could not be created");
        ops_ctx_free(c);
        return NULL;
    }
    c->amx = (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx;
    return c;
}

static void entry_clear(prim_entry *en)
{
    for (int i = 0; i < en->n_mem; i++) dnnl_memory_destroy(en->mem[i]);
    if (en->prim) dnnl_primitive_destroy(en->prim);
    for (int i = 0; i < 3; i++) {
        if (en->re[i].prim) dnnl_primitive_destroy(en->re[i].prim);
        if (en->re[i].from) dnnl_memory_destroy(en->re[i].from);
        if (en->re[i].to) dnnl_memory_destroy(en->re[i].to);
    }
    memset(en, 0, sizeof *en);
}

void ops_ctx_free(ops_ctx *c)
{
    if (!c) return;
    for (int i = 0; i < CACHE_SIZE; i++) entry_clear(&c->cache[i]);
    for (int i = 0; i < SCR_COUNT; i++) free(c->scr[i].p);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    free(c);
}

const dit_err *ops_ctx_err(const ops_ctx *c)
{
    return &c->err;
}

/* Scratch buffer `slot` of at least `bytes`, 64-byte aligned; grows, never shrinks. */
static void *scratch_get(ops_ctx *c, int slot, size_t bytes)
{
    scratch *s = &c->scr[slot];
    if (s->bytes >= bytes) return s->p;
    free(s->p);
    size_t cap = (bytes + 63) / 64 * 64;
    s->p = aligned_alloc(64, cap);
    s->bytes = s->p ? cap : 0;
    if (!s->p) err_set(&c->err, DIT_E_OOM, "ops: cannot allocate %zu bytes of scratch", bytes);
    return s->p;
}

/* ------------------------------------------------------------------ conversions */

static void to_bf16(uint16_t *dst, const float *src, int64_t rows, int64_t cols, int64_t src_stride)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) cvt_f32_to_bf16(dst + r * cols, src + r * src_stride, (size_t)cols);
}

/* Head-interleaved rows (row r at src + r*stride, head h at lanes [h*D, (h+1)*D)) to a copy in
 * blocks of blk tokens, each block a dense [H, rows of the block, D] array (f32 or bf16): block b
 * starts at element b*blk*H*D. */
static void to_head_blocks(void *dst, const float *src, int n, int H, int D, int64_t stride, int blk, int bf)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int h = 0; h < H; h++)
        for (int r = 0; r < n; r++) {
            const int b0 = r / blk * blk, rows = n - b0 < blk ? n - b0 : blk;
            const size_t o = (size_t)b0 * H * D + ((size_t)h * rows + (r - b0)) * D;
            const float *s = src + r * stride + h * D;
            if (bf) cvt_f32_to_bf16((uint16_t *)dst + o, s, (size_t)D);
            else memcpy((float *)dst + o, s, sizeof(float) * D);
        }
}

/* W (any dtype, contiguous n elements) as dtype `want` (F32 or BF16), converting into scratch
 * slot when it is stored otherwise. */
static const void *weights_as(ops_ctx *c, int slot, const tensor *W, dtype want, size_t n)
{
    if (W->type == want) return W->data;
    void *dst = scratch_get(c, slot, n * dtype_size(want));
    if (!dst) return NULL;
    const int64_t chunk = 1 << 16;
    const int64_t n_chunks = ((int64_t)n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (int64_t ci = 0; ci < n_chunks; ci++) {
        size_t lo = (size_t)(ci * chunk), m = (size_t)(ci == n_chunks - 1 ? (int64_t)n - ci * chunk : chunk);
        if (want == DT_F32) {
            cvt_to_f32((float *)dst + lo, (const char *)W->data + lo * dtype_size(W->type), W->type, m);
        } else { /* BF16 from F32 or F16 */
            for (size_t i = lo; i < lo + m; i++) {
                float f = W->type == DT_F32 ? ((const float *)W->data)[i] : f16_to_f32(((const uint16_t *)W->data)[i]);
                ((uint16_t *)dst)[i] = f32_to_bf16(f);
            }
        }
    }
    return dst;
}

/* ------------------------------------------------------------------ primitive cache */

static prim_entry *cache_lookup(ops_ctx *c, int kind, const void *key, size_t key_len)
{
    int threads = max_threads();
    prim_entry *victim = &c->cache[0];
    for (int i = 0; i < CACHE_SIZE; i++) {
        prim_entry *en = &c->cache[i];
        if (en->kind == kind && en->threads == threads && !memcmp(&en->key, key, key_len)) {
            en->last_use = ++c->tick;
            return en;
        }
        if (en->last_use < victim->last_use) victim = en;
    }
    entry_clear(victim);
    return victim; /* caller fills it */
}

static dit_status dnnl_fail(ops_ctx *c, const char *what, dnnl_status_t st)
{
    return err_set(&c->err, DIT_E_BACKEND, "ops: oneDNN %s failed (status %d)", what, (int)st);
}

/* Create a primitive from op_desc and fill entry en with it and with one memory object per
 * argument (data handles set at execution). */
static dit_status entry_make_attr(ops_ctx *c, prim_entry *en, const void *op_desc, const dnnl_memory_desc_t *const *mds,
                                  const int *args, int n, const_dnnl_primitive_attr_t attr)
{
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, op_desc, attr, c->engine, NULL);
    if (st != dnnl_success) return dnnl_fail(c, "primitive descriptor", st);
    st = dnnl_primitive_create(&en->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        en->prim = NULL;
        return dnnl_fail(c, "primitive", st);
    }
    for (int i = 0; i < n; i++) {
        st = dnnl_memory_create(&en->mem[i], mds[i], c->engine, DNNL_MEMORY_NONE);
        if (st != dnnl_success) {
            entry_clear(en);
            return dnnl_fail(c, "memory", st);
        }
        en->arg[i] = args[i];
        en->n_mem = i + 1;
    }
    return DIT_OK;
}

static dit_status entry_make(ops_ctx *c, prim_entry *en, const void *op_desc, const dnnl_memory_desc_t *const *mds,
                             const int *args, int n)
{
    return entry_make_attr(c, en, op_desc, mds, args, n, NULL);
}

static dit_status entry_run(ops_ctx *c, prim_entry *en, void *const *ptrs)
{
    dnnl_exec_arg_t a[MAX_ARGS];
    for (int i = 0; i < en->n_mem; i++) {
        dnnl_memory_set_data_handle(en->mem[i], ptrs[i]);
        a[i] = (dnnl_exec_arg_t){ en->arg[i], en->mem[i] };
    }
    dnnl_status_t st = dnnl_primitive_execute(en->prim, c->stream, en->n_mem, a);
    if (st == dnnl_success) st = dnnl_stream_wait(c->stream);
    return st == dnnl_success ? DIT_OK : dnnl_fail(c, "execute", st);
}

/* C = A B (+ bias) for the batched, strided matmul described by s. */
static dit_status mm_run(ops_ctx *c, const mm_spec *s, const void *A, const void *B, const float *bias, float *C)
{
    prim_entry *en = cache_lookup(c, PRIM_MM, s, sizeof *s);
    if (!en->prim) {
        dnnl_memory_desc_t ma, mb, mc, mbias;
        dnnl_dims_t da = { s->batch, s->M, s->K }, db = { s->batch, s->K, s->N }, dc = { s->batch, s->M, s->N };
        dnnl_dims_t dbias = { 1, 1, s->N }, sbias = { s->N, s->N, 1 };
        dnnl_dims_t sa = { s->sa[0], s->sa[1], s->sa[2] }, sb = { s->sb[0], s->sb[1], s->sb[2] };
        dnnl_dims_t sc = { s->sc[0], s->sc[1], s->sc[2] };
        dnnl_status_t st = dnnl_memory_desc_init_by_strides(&ma, 3, da, (dnnl_data_type_t)s->ta, sa);
        if (st == dnnl_success) st = dnnl_memory_desc_init_by_strides(&mb, 3, db, (dnnl_data_type_t)s->tb, sb);
        if (st == dnnl_success) st = dnnl_memory_desc_init_by_strides(&mc, 3, dc, dnnl_f32, sc);
        if (st == dnnl_success) st = dnnl_memory_desc_init_by_strides(&mbias, 3, dbias, dnnl_f32, sbias);
        if (st != dnnl_success) return dnnl_fail(c, "matmul memory descriptor", st);
        dnnl_matmul_desc_t md;
        st = dnnl_matmul_desc_init(&md, &ma, &mb, s->bias ? &mbias : NULL, &mc);
        if (st != dnnl_success) return dnnl_fail(c, "matmul descriptor", st);
        const dnnl_memory_desc_t *mds[4] = { &ma, &mb, &mc, &mbias };
        const int args[4] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS };
        dnnl_primitive_attr_t attr = NULL;
        dnnl_post_ops_t po = NULL;
        if (s->sum) {
            st = dnnl_primitive_attr_create(&attr);
            if (st == dnnl_success) st = dnnl_post_ops_create(&po);
            if (st == dnnl_success) st = dnnl_post_ops_append_sum(po, 1.0f);
            if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
            if (po) dnnl_post_ops_destroy(po);
            if (st != dnnl_success) {
                if (attr) dnnl_primitive_attr_destroy(attr);
                return dnnl_fail(c, "matmul sum post-op", st);
            }
        }
        dit_status r = entry_make_attr(c, en, &md, mds, args, s->bias ? 4 : 3, attr);
        if (attr) dnnl_primitive_attr_destroy(attr);
        if (r) return r;
        en->kind = PRIM_MM;
        en->threads = max_threads();
        en->key.mm = *s;
        en->last_use = ++c->tick;
    }
    void *ptrs[4] = { (void *)A, (void *)B, C, (void *)bias };
    return entry_run(c, en, ptrs);
}

/* ------------------------------------------------------------------ linear */

void ops_ref_linear(float *y, const float *x, int64_t M, int K, const tensor *W, const float *b, int N)
{
    /* y[m][n] = sum_k x[m][k] W[n][k] + b[n], accumulated in double in k order. Rows are
     * independent, so the result does not depend on the thread count. */
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * K;
        for (int n = 0; n < N; n++) {
            double acc = b ? b[n] : 0.0;
            const size_t off = (size_t)n * K;
            switch (W->type) {
            case DT_F32: {
                const float *w = (const float *)W->data + off;
                for (int k = 0; k < K; k++) acc += (double)xr[k] * w[k];
                break;
            }
            case DT_BF16: {
                const uint16_t *w = (const uint16_t *)W->data + off;
                for (int k = 0; k < K; k++) acc += (double)xr[k] * bf16_to_f32(w[k]);
                break;
            }
            default: {
                const uint16_t *w = (const uint16_t *)W->data + off;
                for (int k = 0; k < K; k++) acc += (double)xr[k] * f16_to_f32(w[k]);
                break;
            }
            }
            y[m * N + n] = (float)acc;
        }
    }
}

static dit_status check_weight(ops_ctx *c, const tensor *W, int64_t rows, int64_t cols, const char *what)
{
    if ((unsigned)W->type >= DT_COUNT || W->nd != 2 || W->shape[0] != rows || W->shape[1] != cols ||
        !tensor_is_contiguous(W))
        return err_set(&c->err, DIT_E_SHAPE, "ops: %s weight is %dD [%lld, %lld], expected contiguous [%lld, %lld]",
                       what, W->nd, (long long)W->shape[0], (long long)(W->nd > 1 ? W->shape[1] : 0),
                       (long long)rows, (long long)cols);
    return DIT_OK;
}

dit_status ops_linear(ops_ctx *c, ops_prec p, float *y, const float *x, int64_t M, int K, const tensor *W,
                      const float *b, int N)
{
    dit_status r = check_weight(c, W, N, K, "linear");
    if (r) return r;
    if (M <= 0 || K <= 0 || N <= 0) return M == 0 ? DIT_OK : err_set(&c->err, DIT_E_ARG, "ops: linear of size %lldx%dx%d", (long long)M, K, N);
    if (p == OPS_REF) {
        ops_ref_linear(y, x, M, K, W, b, N);
        return DIT_OK;
    }
    const int bf = p == OPS_BF16;
    const void *A = x;
    if (bf) {
        uint16_t *xa = scratch_get(c, SCR_A, (size_t)M * K * 2);
        if (!xa) return c->err.code;
        to_bf16(xa, x, M, K, K);
        A = xa;
    }
    const void *B = weights_as(c, SCR_B, W, bf ? DT_BF16 : DT_F32, (size_t)N * K);
    if (!B) return c->err.code;
    mm_spec s;
    memset(&s, 0, sizeof s); /* the key is compared with memcmp: no stray padding bytes */
    s.batch = 1, s.M = M, s.K = K, s.N = N;
    s.sa[0] = M * K, s.sa[1] = K, s.sa[2] = 1;
    s.sb[0] = (int64_t)K * N, s.sb[1] = 1, s.sb[2] = K; /* W[n][k] read as B[k][n] */
    s.sc[0] = M * N, s.sc[1] = N, s.sc[2] = 1;
    s.ta = s.tb = bf ? dnnl_bf16 : dnnl_f32;
    s.bias = b != NULL;
    return mm_run(c, &s, A, B, b, y);
}

/* ------------------------------------------------------------------ packed linear */

struct ops_weight {
    int N, K;
    dnnl_memory_desc_t md; /* oneDNN's blocked bf16 layout of W^T [K, N] */
    void *data;            /* owned, 64-byte aligned */
    size_t bytes;
};

/* The weights layout oneDNN's bf16 matmul prefers for [*, K] x [K, N]; it does not depend on M
 * (checked for M from 1 to 4250 at transformer widths), so one packing serves every M. */
static dit_status preferred_layout(ops_ctx *c, int N, int K, dnnl_memory_desc_t *out)
{
    dnnl_memory_desc_t ma, mb, mc;
    dnnl_dims_t da = { 256, K }, db = { K, N }, dc = { 256, N };
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&ma, 2, da, dnnl_bf16, dnnl_ab);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&mb, 2, db, dnnl_bf16, dnnl_format_tag_any);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&mc, 2, dc, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    if (st == dnnl_success) st = dnnl_matmul_desc_init(&md, &ma, &mb, NULL, &mc);
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &md, NULL, c->engine, NULL);
    if (st != dnnl_success) return dnnl_fail(c, "matmul layout query", st);
    *out = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    return DIT_OK;
}

dit_status ops_weight_pack(ops_ctx *c, const tensor *W, ops_weight **out)
{
    *out = NULL;
    if (W->nd != 2) return err_set(&c->err, DIT_E_SHAPE, "ops: packed weight must be 2-D, got %dD", W->nd);
    const int N = (int)W->shape[0], K = (int)W->shape[1];
    dit_status r = check_weight(c, W, N, K, "packed");
    if (r) return r;
    const void *plain = weights_as(c, SCR_B, W, DT_BF16, (size_t)N * K);
    if (!plain) return c->err.code;
    ops_weight *w = calloc(1, sizeof *w);
    if (!w) return err_set(&c->err, DIT_E_OOM, "ops: cannot allocate a packed weight");
    w->N = N, w->K = K;
    r = preferred_layout(c, N, K, &w->md);
    if (r) {
        free(w);
        return r;
    }
    w->bytes = dnnl_memory_desc_get_size(&w->md);
    w->data = aligned_alloc(64, (w->bytes + 63) / 64 * 64);
    if (!w->data) {
        const size_t bytes = w->bytes;
        free(w);
        return err_set(&c->err, DIT_E_OOM, "ops: cannot allocate %zu bytes for a packed weight", bytes);
    }
    /* reorder the plain [N, K] (= W^T [K, N] in "ba" order) into the blocked layout */
    dnnl_memory_desc_t src_md;
    dnnl_dims_t d = { K, N };
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t rp = NULL;
    dnnl_memory_t ms = NULL, md = NULL;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&src_md, 2, d, dnnl_bf16, dnnl_ba);
    if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&rpd, &src_md, c->engine, &w->md, c->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&rp, rpd);
    if (st == dnnl_success) st = dnnl_memory_create(&ms, &src_md, c->engine, (void *)plain);
    if (st == dnnl_success) st = dnnl_memory_create(&md, &w->md, c->engine, w->data);
    if (st == dnnl_success) {
        dnnl_exec_arg_t a[2] = { { DNNL_ARG_FROM, ms }, { DNNL_ARG_TO, md } };
        st = dnnl_primitive_execute(rp, c->stream, 2, a);
        if (st == dnnl_success) st = dnnl_stream_wait(c->stream);
    }
    if (ms) dnnl_memory_destroy(ms);
    if (md) dnnl_memory_destroy(md);
    if (rp) dnnl_primitive_destroy(rp);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (st != dnnl_success) {
        ops_weight_free(w);
        return dnnl_fail(c, "weight reorder", st);
    }
    *out = w;
    return DIT_OK;
}

void ops_weight_free(ops_weight *w)
{
    if (!w) return;
    free(w->data);
    free(w);
}

size_t ops_weight_bytes(const ops_weight *w)
{
    return w->bytes;
}

static dit_status packed_run(ops_ctx *c, float *y, const uint16_t *xa, int64_t M, const ops_weight *W, const float *b);

dit_status ops_linear_packed(ops_ctx *c, float *y, const float *x, int64_t M, const ops_weight *W, const float *b)
{
    if (M <= 0) return M == 0 ? DIT_OK : err_set(&c->err, DIT_E_ARG, "ops: packed linear with %lld rows", (long long)M);
    uint16_t *xa = scratch_get(c, SCR_A, (size_t)M * W->K * 2);
    if (!xa) return c->err.code;
    to_bf16(xa, x, M, W->K, W->K);
    return packed_run(c, y, xa, M, W, b);
}

dit_status ops_linear_packed_bf16(ops_ctx *c, float *y, const uint16_t *xb, int64_t M, const ops_weight *W,
                                  const float *b)
{
    if (M <= 0) return M == 0 ? DIT_OK : err_set(&c->err, DIT_E_ARG, "ops: packed linear with %lld rows", (long long)M);
    return packed_run(c, y, xb, M, W, b);
}

/* y = xa W^T + b with xa already bf16 [M, K]. */
static dit_status packed_run(ops_ctx *c, float *y, const uint16_t *xa, int64_t M, const ops_weight *W, const float *b)
{
    const int N = W->N, K = W->K;
    packed_spec s;
    memset(&s, 0, sizeof s);
    s.M = M, s.N = N, s.K = K, s.bias = b != NULL;
    prim_entry *en = cache_lookup(c, PRIM_PACKED, &s, sizeof s);
    if (en->prim) { /* same shape, but the layout must be this weight's too */
        const dnnl_memory_desc_t *have = NULL;
        dnnl_memory_get_memory_desc(en->mem[1], &have);
        if (!have || !dnnl_memory_desc_equal(have, &W->md)) entry_clear(en);
    }
    if (!en->prim) {
        dnnl_memory_desc_t ma, mc, mbias;
        dnnl_dims_t da = { M, K }, dc = { M, N }, dbias = { 1, N };
        dnnl_status_t st = dnnl_memory_desc_init_by_tag(&ma, 2, da, dnnl_bf16, dnnl_ab);
        if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&mc, 2, dc, dnnl_f32, dnnl_ab);
        if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&mbias, 2, dbias, dnnl_f32, dnnl_ab);
        if (st != dnnl_success) return dnnl_fail(c, "packed matmul memory descriptor", st);
        dnnl_matmul_desc_t md;
        st = dnnl_matmul_desc_init(&md, &ma, &W->md, b ? &mbias : NULL, &mc);
        if (st != dnnl_success) return dnnl_fail(c, "packed matmul descriptor", st);
        const dnnl_memory_desc_t *mds[4] = { &ma, &W->md, &mc, &mbias };
        const int args[4] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS };
        dit_status r = entry_make(c, en, &md, mds, args, b ? 4 : 3);
        if (r) return r;
        en->kind = PRIM_PACKED;
        en->threads = max_threads();
        en->key.packed = s;
        en->last_use = ++c->tick;
    }
    void *ptrs[4] = { (void *)xa, W->data, y, (void *)b };
    return entry_run(c, en, ptrs);
}

/* ------------------------------------------------------------------ conv2d */

int ops_conv_out(int in, int k, int stride, int pad0, int pad1)
{
    return (in + pad0 + pad1 - k) / stride + 1;
}

void ops_ref_conv2d(float *y, const float *x, int N, int C, int H, int W, const tensor *w, const float *b,
                    const ops_conv *cv)
{
    const int OC = (int)w->shape[0], kh = (int)w->shape[2], kw = (int)w->shape[3];
    const int G = cv->groups > 1 ? cv->groups : 1, icg = C / G, ocg = OC / G, s = cv->stride;
    const int OH = ops_conv_out(H, kh, s, cv->pad_t, cv->pad_b), OW = ops_conv_out(W, kw, s, cv->pad_l, cv->pad_r);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++) {
            const int g = oc / ocg;
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double acc = b ? b[oc] : 0.0;
                    for (int ic = 0; ic < icg; ic++)
                        for (int ky = 0; ky < kh; ky++) {
                            const int iy = oy * s - cv->pad_t + ky;
                            if (iy < 0 || iy >= H) continue;
                            for (int kx = 0; kx < kw; kx++) {
                                const int ix = ox * s - cv->pad_l + kx;
                                if (ix < 0 || ix >= W) continue;
                                const int64_t wi = (((int64_t)oc * icg + ic) * kh + ky) * kw + kx;
                                const float wv = w->type == DT_F32 ? ((const float *)w->data)[wi]
                                               : w->type == DT_BF16 ? bf16_to_f32(((const uint16_t *)w->data)[wi])
                                                                    : f16_to_f32(((const uint16_t *)w->data)[wi]);
                                acc += (double)x[(((int64_t)n * C + g * icg + ic) * H + iy) * W + ix] * wv;
                            }
                        }
                    y[(((int64_t)n * OC + oc) * OH + oy) * OW + ox] = (float)acc;
                }
        }
}

/* Stage i of en: reorder from -> to (in: from = user buffer; out: to = user buffer). */
static dnnl_status_t reorder_run(ops_ctx *c, prim_entry *en, int i, void *from, void *to)
{
    dnnl_memory_set_data_handle(en->re[i].from, from);
    dnnl_memory_set_data_handle(en->re[i].to, to);
    dnnl_exec_arg_t a[2] = { { DNNL_ARG_FROM, en->re[i].from }, { DNNL_ARG_TO, en->re[i].to } };
    dnnl_status_t st = dnnl_primitive_execute(en->re[i].prim, c->stream, 2, a);
    return st == dnnl_success ? dnnl_stream_wait(c->stream) : st;
}

/* A reorder between user layout u and the primitive's layout k (stage i; out = k to u), or
 * none when they are the same. */
static dit_status reorder_make(ops_ctx *c, prim_entry *en, int i, const dnnl_memory_desc_t *u,
                               const dnnl_memory_desc_t *k, int out)
{
    if (dnnl_memory_desc_equal(u, k)) return DIT_OK;
    const dnnl_memory_desc_t *from = out ? k : u, *to = out ? u : k;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, c->engine, to, c->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&en->re[i].prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st == dnnl_success) st = dnnl_memory_create(&en->re[i].from, from, c->engine, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&en->re[i].to, to, c->engine, DNNL_MEMORY_NONE);
    if (st != dnnl_success) return dnnl_fail(c, "reorder", st);
    en->re[i].bytes = dnnl_memory_desc_get_size(k);
    return DIT_OK;
}

/* The convolution of s on the layouts oneDNN prefers (format "any"), with reorders from and to
 * the user's plain NCHW / OIHW (GOIHW) layouts. */
static dit_status conv_make(ops_ctx *c, prim_entry *en, const conv_spec *s)
{
    const dnnl_data_type_t dt = (dnnl_data_type_t)s->tw;
    const int64_t OH = ops_conv_out((int)s->H, (int)s->kh, (int)s->stride, (int)s->pt, (int)s->pb);
    const int64_t OW = ops_conv_out((int)s->W, (int)s->kw, (int)s->stride, (int)s->pl, (int)s->pr);
    const int64_t G = s->groups;
    dnnl_dims_t dsrc = { s->N, s->C, s->H, s->W }, ddst = { s->N, s->OC, OH, OW }, dbias = { s->OC };
    dnnl_dims_t dw4 = { s->OC, s->C, s->kh, s->kw }, dw5 = { G, s->OC / G, s->C / G, s->kh, s->kw };
    dnnl_memory_desc_t usrc, uw, udst, mb, asrc, aw, adst;
    const int nw = G > 1 ? 5 : 4;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&usrc, 4, dsrc, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&udst, 4, ddst, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&mb, 1, dbias, dnnl_f32, dnnl_a);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&uw, nw, G > 1 ? dw5 : dw4, dt, G > 1 ? dnnl_goihw : dnnl_oihw);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&asrc, 4, dsrc, dt, dnnl_format_tag_any);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&adst, 4, ddst, dnnl_f32, dnnl_format_tag_any);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&aw, nw, G > 1 ? dw5 : dw4, dt, dnnl_format_tag_any);
    if (st != dnnl_success) return dnnl_fail(c, "conv memory descriptor", st);
    dnnl_convolution_desc_t cd;
    dnnl_dims_t strides = { s->stride, s->stride }, pl = { s->pt, s->pl }, pr = { s->pb, s->pr };
    st = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &asrc, &aw,
                                            s->bias ? &mb : NULL, &adst, strides, pl, pr);
    if (st != dnnl_success) return dnnl_fail(c, "convolution descriptor", st);
    dnnl_primitive_desc_t pd = NULL;
    st = dnnl_primitive_desc_create(&pd, &cd, NULL, c->engine, NULL);
    if (st != dnnl_success) return dnnl_fail(c, "convolution primitive descriptor", st);
    const dnnl_memory_desc_t ksrc = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t kw = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t kdst = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    st = dnnl_primitive_create(&en->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        en->prim = NULL;
        return dnnl_fail(c, "convolution primitive", st);
    }
    const dnnl_memory_desc_t *mds[4] = { &ksrc, &kw, &kdst, &mb };
    const int args[4] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS };
    for (int i = 0; i < (s->bias ? 4 : 3); i++) {
        if ((st = dnnl_memory_create(&en->mem[i], mds[i], c->engine, DNNL_MEMORY_NONE)) != dnnl_success)
            return dnnl_fail(c, "memory", st);
        en->arg[i] = args[i];
        en->n_mem = i + 1;
    }
    dit_status r = reorder_make(c, en, 0, &usrc, &ksrc, 0);
    if (!r) r = reorder_make(c, en, 1, &uw, &kw, 0);
    if (!r) r = reorder_make(c, en, 2, &udst, &kdst, 1);
    return r;
}

dit_status ops_conv2d(ops_ctx *c, ops_prec p, float *y, const float *x, int N, int C, int H, int W, const tensor *w,
                      const float *b, const ops_conv *cv)
{
    const int G = cv->groups > 1 ? cv->groups : 1;
    if (w->nd != 4 || C % G || w->shape[0] % G || w->shape[1] != C / G || !tensor_is_contiguous(w) ||
        (unsigned)w->type >= DT_COUNT)
        return err_set(&c->err, DIT_E_SHAPE, "ops: conv2d weight [%lld, %lld, %lld, %lld] does not fit %d input channels in %d groups",
                       (long long)w->shape[0], (long long)w->shape[1], (long long)w->shape[2], (long long)w->shape[3], C, G);
    const int OC = (int)w->shape[0], kh = (int)w->shape[2], kw = (int)w->shape[3];
    if (cv->stride < 1 || cv->pad_t < 0 || cv->pad_l < 0 || cv->pad_b < 0 || cv->pad_r < 0 ||
        ops_conv_out(H, kh, cv->stride, cv->pad_t, cv->pad_b) < 1 || ops_conv_out(W, kw, cv->stride, cv->pad_l, cv->pad_r) < 1)
        return err_set(&c->err, DIT_E_ARG, "ops: conv2d %dx%d kernel, stride %d does not fit a %dx%d input", kh, kw,
                       cv->stride, H, W);
    if (p == OPS_REF) {
        ops_ref_conv2d(y, x, N, C, H, W, w, b, cv);
        return DIT_OK;
    }
    const int bf = p == OPS_BF16;
    const void *wt = weights_as(c, SCR_B, w, bf ? DT_BF16 : DT_F32, (size_t)tensor_numel(w));
    if (!wt) return c->err.code;

    const conv_spec s = { N, C, H, W, OC, kh, kw, cv->stride, cv->pad_t, cv->pad_l, cv->pad_b, cv->pad_r, G,
                          bf ? dnnl_bf16 : dnnl_f32, b != NULL }; /* no padding: 13 int64 + 2 int */
    prim_entry *en = cache_lookup(c, PRIM_CONV, &s, sizeof s);
    if (!en->prim) {
        dit_status r = conv_make(c, en, &s);
        if (r) {
            entry_clear(en);
            return r;
        }
        en->kind = PRIM_CONV;
        en->threads = max_threads();
        en->key.conv = s;
        en->last_use = ++c->tick;
    }
    /* x (NCHW f32) -> blocked compute dtype; plain weights -> blocked; conv; blocked f32 -> y */
    void *blk[3] = { NULL, NULL, NULL };
    static const int slot[3] = { SCR_A, SCR_C, SCR_D };
    for (int i = 0; i < 3; i++)
        if (en->re[i].prim && !(blk[i] = scratch_get(c, slot[i], en->re[i].bytes))) return c->err.code;
    const void *user[3] = { x, wt, y };
    dnnl_status_t st = dnnl_success;
    for (int i = 0; i < 2 && st == dnnl_success; i++)
        if (en->re[i].prim) st = reorder_run(c, en, i, (void *)user[i], blk[i]);
    if (st != dnnl_success) return dnnl_fail(c, "conv input reorder", st);
    void *ptrs[4] = { blk[0] ? blk[0] : (void *)x, blk[1] ? blk[1] : (void *)wt, blk[2] ? blk[2] : y, (void *)b };
    dit_status r = entry_run(c, en, ptrs);
    if (r) return r;
    if (en->re[2].prim && (st = reorder_run(c, en, 2, blk[2], y)) != dnnl_success)
        return dnnl_fail(c, "conv output reorder", st);
    return DIT_OK;
}

/* ------------------------------------------------------------------ attention */

static int masked(const ops_attn *a, int i, int j)
{
    return a->causal && j > i;
}

void ops_ref_attention(float *out, const float *q, const float *k, const float *v, const ops_attn *a)
{
    /* Two passes per (head, query): the row maximum, then the exponentials, their sum and the
     * weighted sum of v, all in double. Scores are recomputed rather than stored, so the twin
     * needs no buffer; head_dim <= OPS_MAX_HEAD_DIM. */
    const int H = a->n_heads, D = a->head_dim, NK = a->n_kv;
    if (D > OPS_MAX_HEAD_DIM) return;
#pragma omp parallel for collapse(2) schedule(static)
    for (int h = 0; h < H; h++)
        for (int i = 0; i < a->n_q; i++) {
            const float *qi = q + i * a->q_stride + h * D;
            float *oi = out + i * a->o_stride + h * D;
            const float *mrow = a->mask ? a->mask + h * a->mask_head_stride + (int64_t)i * NK : NULL;
            double mx = -INFINITY, acc[OPS_MAX_HEAD_DIM], sum = 0;
            for (int d = 0; d < D; d++) acc[d] = 0;
            for (int pass = 0; pass < 2; pass++)
                for (int j = 0; j < NK; j++) {
                    if (masked(a, i, j)) continue;
                    const float *kj = k + j * a->k_stride + h * D;
                    double dot = 0;
                    for (int d = 0; d < D; d++) dot += (double)qi[d] * kj[d];
                    const double sc = (double)a->scale * dot + (mrow ? mrow[j] : 0.0);
                    if (pass == 0) {
                        if (sc > mx) mx = sc;
                        continue;
                    }
                    const double p = exp(sc - mx);
                    if (p == 0) continue;
                    sum += p;
                    const float *vj = v + j * a->v_stride + h * D;
                    for (int d = 0; d < D; d++) acc[d] += p * vj[d];
                }
            for (int d = 0; d < D; d++) oi[d] = sum > 0 ? (float)(acc[d] / sum) : 0.0f; /* all masked: zeros */
        }
}

#ifdef __AVX512F__
/* The first min(r, 16) lanes. */
static inline __mmask16 lanes(int r)
{
    return r >= 16 ? (__mmask16)0xffff : ops__tail_mask((size_t)r);
}
#endif

/* 2^x for the online softmax, where x <= 0 or -inf: n = round(x), f = x - n in [-1/2, 1/2],
 * 2^f = 1 + f P(f) with Cephes exp2f's degree-5 P (relative error 1.2e-8 on that interval),
 * then times 2^n (x is clamped at -151 first, so 2^n underflows to 0 and -inf gives 0).
 * Working in base 2 saves the multiply by log2 e of a natural exp: it is folded into the scale. */
#define ATT_LOG2E 1.44269504088896341f
#define ATT_E2_P0 1.535336188319500e-4f
#define ATT_E2_P1 1.339887440266574e-3f
#define ATT_E2_P2 9.618437357674640e-3f
#define ATT_E2_P3 5.550332471162809e-2f
#define ATT_E2_P4 2.402264791363012e-1f
#define ATT_E2_P5 6.931472028550421e-1f

static inline float att_exp2(float x)
{
    x = x > -151.0f ? x : -151.0f;
    const float n = nearbyintf(x), f = x - n;
    float p = fmaf(ATT_E2_P0, f, ATT_E2_P1);
    p = fmaf(p, f, ATT_E2_P2);
    p = fmaf(p, f, ATT_E2_P3);
    p = fmaf(p, f, ATT_E2_P4);
    p = fmaf(p, f, ATT_E2_P5);
    return scalbnf(fmaf(p, f, 1.0f), (int)n);
}

#ifdef __AVX512F__
static inline __m512 att_exp2_x16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-151.0f));
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(ATT_E2_P0), f, _mm512_set1_ps(ATT_E2_P1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(ATT_E2_P2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(ATT_E2_P3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(ATT_E2_P4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(ATT_E2_P5));
    return _mm512_scalef_ps(_mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f)), n);
}

/* Round 16 floats to bf16 (nearest even; P is never NaN) and store the first lanes of mask k. */
static inline void att_store_bf16(uint16_t *dst, __mmask16 k, __m512 p)
{
#ifdef __AVX512BF16__
    _mm256_mask_storeu_epi16(dst, k, (__m256i)_mm512_cvtneps_pbh(p));
#else
    __m512i u = _mm512_castps_si512(p);
    u = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                             _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
    _mm256_mask_storeu_epi16(dst, k, _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
#endif
}
#endif

/* One row of the online softmax (see ops_attention), in base 2: with c = scale log2 e, the
 * row's logits are y = c s + log2(e) mask, and P = 2^(y - m') = exp(scale s + mask - m'/log2 e).
 * sr holds the raw scores s = q.k of bk keys, of which the first nv are visible. On return the row
 * of P is in sr (f32) or in pb (bf16, when pb != NULL), zeros past nv; *l is updated to
 * l 2^(m - m') + sum P and *alpha = 2^(m - m') rescales the accumulator; returns m' (base-2
 * units). Each row is reduced in one fixed order, so results do not depend on the thread count. */
static float att_row_update(float *sr, uint16_t *pb, int nv, int bk, float scale, const float *mrow, float m, float *l,
                            float *alpha)
{
    const float c = scale * ATT_LOG2E;
    float mx = m, total = 0.0f;
#ifdef __AVX512F__
    const __m512 vc = _mm512_set1_ps(c), vl2e = _mm512_set1_ps(ATT_LOG2E);
    /* Row maximum. Without a mask and for c > 0, max(c s) = c max(s) exactly (rounding is
     * monotonic), which saves a multiply per score. */
    const int plain = !mrow && c > 0;
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < nv; j += 16) {
        const __mmask16 k = lanes(nv - j);
        __m512 x = _mm512_maskz_loadu_ps(k, sr + j);
        if (!plain) x = mrow ? _mm512_fmadd_ps(x, vc, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, mrow + j), vl2e))
                             : _mm512_mul_ps(x, vc);
        vmax = _mm512_mask_max_ps(vmax, k, vmax, x);
    }
    const float bmax = plain ? c * _mm512_reduce_max_ps(vmax) : _mm512_reduce_max_ps(vmax);
    mx = bmax > mx ? bmax : mx;
    if (mx != -INFINITY) {
        const __m512 vneg = _mm512_set1_ps(-mx);
        __m512 vsum = _mm512_setzero_ps();
        for (int j = 0; j < bk; j += 16) {
            const __mmask16 kb = lanes(bk - j);
            const __mmask16 kv = j < nv ? lanes(nv - j) : 0;
            const __m512 s = _mm512_maskz_loadu_ps(kv, sr + j);
            const __m512 off = mrow ? _mm512_fmadd_ps(_mm512_maskz_loadu_ps(kv, mrow + j), vl2e, vneg) : vneg;
            const __m512 p = _mm512_maskz_mov_ps(kv, att_exp2_x16(_mm512_fmadd_ps(s, vc, off))); /* invisible: 0 */
            vsum = _mm512_add_ps(vsum, p);
            if (pb) att_store_bf16(pb + j, kb, p);
            else _mm512_mask_storeu_ps(sr + j, kb, p);
        }
        total = _mm512_reduce_add_ps(vsum);
    }
#else
    for (int j = 0; j < nv; j++) {
        const float y = mrow ? fmaf(sr[j], c, mrow[j] * ATT_LOG2E) : sr[j] * c;
        mx = y > mx ? y : mx;
    }
    if (mx != -INFINITY) {
        for (int j = 0; j < bk; j++) {
            const float p = j < nv ? att_exp2(fmaf(sr[j], c, mrow ? fmaf(mrow[j], ATT_LOG2E, -mx) : -mx)) : 0.0f;
            total += p;
            if (pb) pb[j] = f32_to_bf16(p);
            else sr[j] = p;
        }
    }
#endif
    if (mx == -INFINITY) { /* nothing visible yet */
        if (pb) memset(pb, 0, sizeof(uint16_t) * bk);
        else memset(sr, 0, sizeof(float) * bk);
        *alpha = 0.0f;
        return mx;
    }
    *alpha = m == -INFINITY ? 0.0f : att_exp2(m - mx);
    *l = *l * *alpha + total;
    return mx;
}

/* Block sizes of the tiled kernel: queries per block (all heads at once) and keys per block.
 * bf16 on AMX: 64 x 256 keeps the f32 scores of 24 heads (1.5 MiB) in L2, measured fastest of
 * 32..256 x 128..512 (4096 tokens, 24 x 64, Sapphire Rapids). bf16 without AMX (AVX-512 BF16,
 * AMD Zen 4): the two matmuls dominate and oneDNN's per-call cost with them, so larger blocks
 * win: 256 x 512 took 203 ms against 260-284 ms for 64 x 256 (4250 tokens, 24 x 64, 2 threads,
 * 32..512 x 128..1024 swept). f32, whose matmuls are the larger cost, prefers 128 x 512. */
#define ATT_BQ_AMX 64
#define ATT_BK_AMX 256
#define ATT_BQ_BF16 256
#define ATT_BK_BF16 512
#define ATT_BQ_F32 128
#define ATT_BK_F32 512

/* Fast attention: for each block of queries, loop over key blocks with an online softmax
 * (Milakov & Gimelshein 2018; FlashAttention, Dao et al. 2022, Alg. 1):
 *   S = scale q k^T + mask;  m' = max(m, rowmax S);  P = exp(S - m');
 *   l = l e^(m - m') + rowsum P;  O = O e^(m - m') + P v;   and finally out = O / l.
 * Both products run through oneDNN as matmuls batched over heads, on copies of q, k, v blocked
 * so that each block is a dense [heads, rows, head_dim] array. Memory: [heads, BQ, BK] scores. */
dit_status ops_attention(ops_ctx *c, ops_prec p, float *out, const float *q, const float *k, const float *v,
                         const ops_attn *a)
{
    if (a->n_q <= 0 || a->n_heads <= 0 || a->head_dim <= 0) return DIT_OK;
    if (a->head_dim > OPS_MAX_HEAD_DIM)
        return err_set(&c->err, DIT_E_ARG, "ops: attention head_dim %d is above %d", a->head_dim, OPS_MAX_HEAD_DIM);
    if (p == OPS_REF || a->n_kv <= 0) {
        ops_ref_attention(out, q, k, v, a);
        return DIT_OK;
    }
    const int bf = p == OPS_BF16, H = a->n_heads, D = a->head_dim, HD = H * D;
    const int NQ = a->n_q, NK = a->n_kv;
    const size_t es = bf ? 2 : 4;
    const int qblk = !bf ? ATT_BQ_F32 : c->amx ? ATT_BQ_AMX : ATT_BQ_BF16;
    const int kblk = !bf ? ATT_BK_F32 : c->amx ? ATT_BK_AMX : ATT_BK_BF16;

    /* Operands as copies in the matmul dtype, blocked so that each query or key block is a dense
     * [H, rows, D] array: oneDNN runs its AMX/brgemm kernels only on dense batches (strided,
     * head-interleaved operands fall back to a gemm about 3x slower). */
    void *Q = scratch_get(c, SCR_A, (size_t)NQ * HD * es), *K = scratch_get(c, SCR_B, (size_t)NK * HD * es),
         *V = scratch_get(c, SCR_C, (size_t)NK * HD * es);
    if (!Q || !K || !V) return c->err.code;
    to_head_blocks(Q, q, NQ, H, D, a->q_stride, qblk, bf);
    to_head_blocks(K, k, NK, H, D, a->k_stride, kblk, bf);
    to_head_blocks(V, v, NK, H, D, a->v_stride, kblk, bf);
    const int bq_max = NQ < qblk ? NQ : qblk, bk_max = NK < kblk ? NK : kblk;
    float *S = scratch_get(c, SCR_D, sizeof(float) * H * bq_max * bk_max);
    void *P = scratch_get(c, SCR_E, es * H * bq_max * bk_max);
    float *O = scratch_get(c, SCR_F, sizeof(float) * H * bq_max * D); /* the accumulator */
    float *ml = scratch_get(c, SCR_G, sizeof(float) * H * bq_max * 3);    /* m, l, rescale per row */
    if (!S || !P || !O || !ml) return c->err.code;
    const dnnl_data_type_t dt = bf ? dnnl_bf16 : dnnl_f32;

    for (int i0 = 0; i0 < NQ; i0 += qblk) {
        const int bq = NQ - i0 < qblk ? NQ - i0 : qblk;
        for (int r = 0; r < H * bq; r++) ml[r] = -INFINITY, ml[H * bq + r] = 0;
        memset(O, 0, sizeof(float) * H * bq * D);
        for (int j0 = 0; j0 < NK; j0 += kblk) {
            if (a->causal && j0 > i0 + bq - 1) break; /* every key of this and later blocks masked */
            const int bk = NK - j0 < kblk ? NK - j0 : kblk;
            /* S[h] = Q[h] K[h]^T : A = Q rows [i0, i0+bq) of head h; B[d][j] = K[j0+j][h*D+d]. */
            mm_spec s1;
            memset(&s1, 0, sizeof s1); /* the key is compared with memcmp: no stray padding bytes */
            s1.batch = H, s1.M = bq, s1.K = D, s1.N = bk;
            s1.sa[0] = (int64_t)bq * D, s1.sa[1] = D, s1.sa[2] = 1;
            s1.sb[0] = (int64_t)bk * D, s1.sb[1] = 1, s1.sb[2] = D;
            s1.sc[0] = (int64_t)bq * bk, s1.sc[1] = bk, s1.sc[2] = 1;
            s1.ta = s1.tb = dt;
            dit_status r = mm_run(c, &s1, (const char *)Q + (size_t)i0 * HD * es, (const char *)K + (size_t)j0 * HD * es,
                                  NULL, S);
            if (r) return r;
            /* Online softmax update, one row (head h, query i) at a time. */
#pragma omp parallel for schedule(static)
            for (int row = 0; row < H * bq; row++) {
                const int h = row / bq, i = i0 + row % bq;
                const float *mrow = a->mask ? a->mask + h * a->mask_head_stride + (int64_t)i * NK + j0 : NULL;
                /* causal: keys j0 + j > i are masked, i.e. only the first nv of this block count */
                const int nv = a->causal ? (i - j0 + 1 < 0 ? 0 : i - j0 + 1 > bk ? bk : i - j0 + 1) : bk;
                float *sr = S + (size_t)row * bk, *st = ml + row;
                uint16_t *pb = bf ? (uint16_t *)P + (size_t)row * bk : NULL;
                st[0] = att_row_update(sr, pb, nv, bk, a->scale, mrow, st[0], &st[H * bq], &st[2 * H * bq]);
                /* O = O e^(m - m') here, so that the P V product below can add into O directly */
                float *o = O + (size_t)row * D;
                const float alpha = st[2 * H * bq];
                for (int d = 0; d < D; d++) o[d] *= alpha;
            }
            /* O[h] += P[h] V[h] : B[j][d] = V[j0+j][h*D+d] (a sum post-op: no product buffer, no extra pass). */
            mm_spec s2;
            memset(&s2, 0, sizeof s2); /* the key is compared with memcmp: no stray padding bytes */
            s2.batch = H, s2.M = bq, s2.K = bk, s2.N = D;
            s2.sa[0] = (int64_t)bq * bk, s2.sa[1] = bk, s2.sa[2] = 1;
            s2.sb[0] = (int64_t)bk * D, s2.sb[1] = D, s2.sb[2] = 1;
            s2.sc[0] = (int64_t)bq * D, s2.sc[1] = D, s2.sc[2] = 1;
            s2.ta = s2.tb = dt;
            s2.sum = 1; /* O += P V */
            r = mm_run(c, &s2, bf ? P : (void *)S, (const char *)V + (size_t)j0 * HD * es, NULL, O);
            if (r) return r;
        }
        /* out = O / l, back into the head-interleaved layout. */
#pragma omp parallel for schedule(static)
        for (int row = 0; row < H * bq; row++) {
            const int h = row / bq, i = i0 + row % bq;
            const float l = ml[H * bq + row], inv = l > 0 ? 1.0f / l : 0.0f;
            float *dst = out + (int64_t)i * a->o_stride + h * D;
            const float *o = O + (size_t)row * D;
            for (int d = 0; d < D; d++) dst[d] = o[d] * inv;
        }
    }
    return DIT_OK;
}

/* ------------------------------------------------------------------ bench support */

double ops_bench_matmul_bf16(ops_ctx *c, int M, int N, int K, int reps)
{
    /* 64-byte aligned like the context scratch that ops_linear_packed reads from */
    uint16_t *a = aligned_alloc(64, ((size_t)M * K * 2 + 63) / 64 * 64), *w = malloc((size_t)N * K * 2);
    float *y = aligned_alloc(64, (sizeof(float) * M * N + 63) / 64 * 64);
    ops_weight *pw = NULL;
    double best = INFINITY;
    if (a && w && y) {
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = f32_to_bf16((float)(i * 2654435761u % 1999) / 1000.0f - 1.0f);
        for (size_t i = 0; i < (size_t)N * K; i++) w[i] = f32_to_bf16((float)(i * 40503u % 1999) / 1000.0f - 1.0f);
        tensor W = tensor_make(DT_BF16, w, 2, (int64_t[]){ N, K });
        if (!ops_weight_pack(c, &W, &pw)) {
            for (int r = 0; r <= reps; r++) { /* the first run creates the primitive */
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                if (packed_run(c, y, a, M, pw, NULL)) break;
                clock_gettime(CLOCK_MONOTONIC, &t1);
                double dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
                if (r > 0 && dt < best) best = dt;
            }
        }
    }
    ops_weight_free(pw);
    free(a), free(w), free(y);
    return best;
}

/* ------------------------------------------------------------------ info */

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx (AMX tiles, bf16)";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "other";
    }
}

/* Name of the implementation oneDNN picks for a 256^3 matmul of type dt. */
static void matmul_impl(dnnl_engine_t eng, dnnl_data_type_t dt, char *buf, size_t len)
{
    dnnl_memory_desc_t ma, mb, mc;
    dnnl_dims_t d = { 256, 256 };
    dnnl_memory_desc_init_by_tag(&ma, 2, d, dt, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&mb, 2, d, dt, dnnl_ba);
    dnnl_memory_desc_init_by_tag(&mc, 2, d, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    const char *impl = "unavailable";
    if (dnnl_matmul_desc_init(&md, &ma, &mb, NULL, &mc) == dnnl_success &&
        dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) == dnnl_success) {
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(buf, len, "%s", impl);
        dnnl_primitive_desc_destroy(pd);
    } else {
        snprintf(buf, len, "%s", impl);
    }
}

void ops_backend_info(char *buf, size_t len)
{
    const dnnl_version_t *v = dnnl_version();
    char bf[64] = "unavailable", f32[64] = "unavailable";
    dnnl_engine_t eng;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) == dnnl_success) {
        matmul_impl(eng, dnnl_bf16, bf, sizeof bf);
        matmul_impl(eng, dnnl_f32, f32, sizeof f32);
        dnnl_engine_destroy(eng);
    }
    snprintf(buf, len,
             "oneDNN:        %d.%d.%d (%s threading)\n"
             "oneDNN ISA:    %s\n"
             "matmul bf16:   %s\n"
             "matmul f32:    %s\n",
             v->major, v->minor, v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other",
             isa_name(dnnl_get_effective_cpu_isa()), bf, f32);
}
