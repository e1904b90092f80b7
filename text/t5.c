/* text/t5.c — T5 v1.1 encoder: table-driven loading and the forward pass.
 * Mirrors sd3.5 other_impls.py T5Stack / T5Block / T5Attention / T5DenseGatedActDense (golden
 * README "t5/"); tensor names as t5xxl_fp16.safetensors and HF T5EncoderModel. */
#include "text/t5.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"

#define T5_EPS 1e-6f

typedef struct {
    float *ln0, *ln1; /* layer.0.layer_norm, layer.1.layer_norm [D] */
    wt_lin qkv;       /* SelfAttention.{q,k,v}: [3I, D], no bias */
    wt_lin o;         /* SelfAttention.o [D, I] */
    wt_lin wi;        /* DenseReluDense.{wi_0,wi_1}: [2F, D], gate rows first */
    wt_lin wo;        /* DenseReluDense.wo [D, F] */
} t5_block;

struct t5_model {
    t5_config cfg;
    ops_prec prec;
    st_set *set;
    wt_store store;
    tensor emb;      /* shared.weight [vocab, D], a view of the file */
    float *rel_bias; /* block 0 relative_attention_bias [buckets, heads] */
    float *lnf;      /* final_layer_norm [D] */
    t5_block *blocks;
};

enum { DM = 1, INNER, FF, VOCAB, BUCKETS, HEADS, N_SYMS };

#define VEC1(o, f, name, n) { { name, NULL }, offsetof(o, f), WT_VEC, 0, 1, { n } }
#define LIN(o, f, name, out, in) { { name, NULL }, offsetof(o, f), WT_LINEAR, WT_NOBIAS, 2, { out, in } }
#define EB "encoder.block.%d.layer."

static const wt_spec T5_TOP[] = {
    { { "shared.weight|encoder.embed_tokens.weight", NULL }, offsetof(t5_model, emb), WT_TENSOR, 0, 2, { WD(1, VOCAB), WD(1, DM) } },
    { { "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", NULL }, offsetof(t5_model, rel_bias), WT_VEC, 0, 2,
      { WD(1, BUCKETS), WD(1, HEADS) } },
    VEC1(t5_model, lnf, "encoder.final_layer_norm.weight", WD(1, DM)),
};
static const wt_spec T5_BLOCK[] = {
    VEC1(t5_block, ln0, EB "0.layer_norm.weight", WD(1, DM)),
    LIN(t5_block, qkv, EB "0.SelfAttention.{q,k,v}", WD(3, INNER), WD(1, DM)),
    LIN(t5_block, o, EB "0.SelfAttention.o", WD(1, DM), WD(1, INNER)),
    VEC1(t5_block, ln1, EB "1.layer_norm.weight", WD(1, DM)),
    LIN(t5_block, wi, EB "1.DenseReluDense.{wi_0,wi_1}", WD(2, FF), WD(1, DM)),
    LIN(t5_block, wo, EB "1.DenseReluDense.wo", WD(1, DM), WD(1, FF)),
};

static const char *const PREFIXES[] = { "", TEXT_PREFIX_T5XXL };

/* ---- configuration ---------------------------------------------------------------------------- */

static dit_status derive(const text__file *f, const text_load_opts *o, t5_config *c, dit_err *e)
{
    memset(c, 0, sizeof *c);
    const char *emb = text__find(f, "shared.weight", 0) ? "shared.weight" : "encoder.embed_tokens.weight";
    c->vocab = (int)text__dim(f, emb, 0, 0);
    c->d_model = (int)text__dim(f, emb, 0, 1);
    c->inner = (int)text__dim(f, EB "0.SelfAttention.q.weight", 0, 0);
    c->d_ff = (int)text__dim(f, EB "1.DenseReluDense.wi_0.weight", 0, 0);
    c->layers = text__count(f, EB "0.SelfAttention.q.weight", T5_MAX_BLOCKS);
    c->buckets = (int)text__dim(f, EB "0.SelfAttention.relative_attention_bias.weight", 0, 0);
    c->heads = (int)text__dim(f, EB "0.SelfAttention.relative_attention_bias.weight", 0, 1);
    const char *path = st_set_path(f->set);
    if (c->vocab <= 0 || c->d_model <= 0 || c->inner <= 0 || c->d_ff <= 0 || c->layers < 1 || c->buckets < 2 || c->heads <= 0)
        return err_set(e, DIT_E_FORMAT,
                       "%s: T5 encoder without shared.weight / block 0 (q, wi_0, relative_attention_bias) tensors of the expected rank",
                       path);
    if (c->layers > T5_MAX_BLOCKS) return err_set(e, DIT_E_FORMAT, "%s: T5 with more than %d blocks", path, T5_MAX_BLOCKS);
    /* heads are in the weights (the bias table); a stated count must agree */
    const int stated = o->heads > 0 ? o->heads : text__int(f, "text.heads", "num_heads", c->heads);
    if (stated != c->heads)
        return err_set(e, DIT_E_FORMAT, "%s: %d heads stated, but relative_attention_bias has %d", path, stated, c->heads);
    if (c->inner % c->heads || c->inner / c->heads > OPS_MAX_HEAD_DIM)
        return err_set(e, DIT_E_FORMAT, "%s: T5 inner width %d does not split into %d heads", path, c->inner, c->heads);
    c->d_kv = c->inner / c->heads;
    c->max_distance = o->max_distance > 0 ? o->max_distance : text__int(f, "text.max_distance", "relative_attention_max_distance", 128);
    /* t5_bucket needs an exact range (buckets / 4 >= 1) and a log range above it */
    if (c->buckets < 4 || c->buckets > 4096 || c->max_distance <= c->buckets / 4)
        return err_set(e, DIT_E_FORMAT, "%s: T5 relative attention with %d buckets and max_distance %d (need >= 4 buckets, "
                       "max_distance above buckets/4)", path, c->buckets, c->max_distance);
    snprintf(c->variant, sizeof c->variant, "%s", c->d_model == 4096 ? "t5-xxl" : "t5");
    return DIT_OK;
}

void t5_config_describe(const t5_config *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s: %d blocks, d_model %d, %d heads x %d, d_ff %d (gated gelu_tanh), %d buckets (max distance %d), vocab %d",
             c->variant, c->layers, c->d_model, c->heads, c->d_kv, c->d_ff, c->buckets, c->max_distance, c->vocab);
}

static void fill_dims(const t5_config *c, int *dims)
{
    memset(dims, 0, sizeof(int) * N_SYMS);
    dims[DM] = c->d_model, dims[INNER] = c->inner, dims[FF] = c->d_ff, dims[VOCAB] = c->vocab;
    dims[BUCKETS] = c->buckets, dims[HEADS] = c->heads;
}

/* ---- loading ---------------------------------------------------------------------------------- */

static dit_status load_weights(t5_model *m, const char *prefix, ops_ctx *ctx, dit_err *e)
{
    const t5_config *c = &m->cfg;
    int dims[N_SYMS];
    fill_dims(c, dims);
    wt_loader L;
    dit_status r = wt_loader_init(&L, m->set, prefix, 0, ctx, m->prec, &m->store, dims, e);
    if (r) return r;
    m->blocks = calloc((size_t)c->layers, sizeof *m->blocks);
    if (!m->blocks) r = err_set(e, DIT_E_OOM, "%s: out of memory", st_set_path(m->set));
    if (!r) r = wt_load(&L, m, T5_TOP, N_ELEMS(T5_TOP), 0, 0);
    for (int i = 0; !r && i < c->layers; i++) r = wt_load(&L, &m->blocks[i], T5_BLOCK, N_ELEMS(T5_BLOCK), i, 0);
    /* HF ties encoder.embed_tokens.weight to shared.weight: a file may hold both */
    const st_tensor *a = wt_find(&L, "shared.weight"), *b = wt_find(&L, "encoder.embed_tokens.weight");
    if (!r && a && b && a->nd == b->nd && a->numel == b->numel) text__ignore(&L, "encoder.embed_tokens.weight");
    if (!r) r = wt_loader_finish(&L);
    wt_loader_free(&L);
    return r;
}

dit_status t5_load(t5_model **out, const char *path, const text_load_opts *o, dit_err *e)
{
    *out = NULL;
    const text_load_opts d = text_load_defaults();
    if (!o) o = &d;
    if ((unsigned)o->prec >= OPS_PREC_COUNT) return err_set(e, DIT_E_ARG, "t5_load: bad precision %d", (int)o->prec);
    text__file f;
    dit_status r = text__open(&f, path, "encoder.block.0.layer.0.SelfAttention.q.weight", PREFIXES, N_ELEMS(PREFIXES), o, "T5 encoder", e);
    if (r) return r;
    t5_model *m = calloc(1, sizeof *m);
    if (!m) {
        text__close(&f);
        return err_set(e, DIT_E_OOM, "t5_load: out of memory");
    }
    m->prec = o->prec;
    r = derive(&f, o, &m->cfg, e);
    m->set = f.set, f.set = NULL;
    if (!r) {
        ops_ctx *ctx = ops_ctx_new(e);
        if (!ctx) r = e && e->code ? e->code : DIT_E_BACKEND;
        else {
            r = load_weights(m, f.prefix, ctx, e);
            ops_ctx_free(ctx);
        }
    }
    text__close(&f);
    if (r) {
        t5_free(m);
        return r;
    }
    *out = m;
    return DIT_OK;
}

void t5_free(t5_model *m)
{
    if (!m) return;
    wt_store_free(&m->store);
    free(m->blocks);
    st_set_close(m->set);
    free(m);
}

const t5_config *t5_model_config(const t5_model *m)
{
    return &m->cfg;
}

ops_prec t5_model_prec(const t5_model *m)
{
    return m->prec;
}

size_t t5_model_bytes(const t5_model *m)
{
    return m->store.bytes;
}

/* wt_enumerate gives "a.{x,y}.weight" for concatenated tensors: split them back into the file's
 * parts, equal rows each. */
typedef struct {
    wt_visit fn;
    void *user;
} split_ctx;

static void split_parts(void *user, const char *name, int nd, const int64_t *shape)
{
    const split_ctx *sc = user;
    const char *lb = strchr(name, '{'), *rb = lb ? strchr(lb, '}') : NULL;
    if (!rb) {
        sc->fn(sc->user, name, nd, shape);
        return;
    }
    int parts = 1;
    for (const char *p = lb; p < rb; p++) parts += *p == ',';
    int64_t sh[WT_MAX_DIMS] = { 0 };
    for (int d = 0; d < nd && d < WT_MAX_DIMS; d++) sh[d] = shape[d];
    sh[0] /= parts;
    const char *p = lb + 1;
    for (int k = 0; k < parts; k++) {
        const char *end = strchr(p, ',');
        if (!end || end > rb) end = rb;
        char full[600];
        snprintf(full, sizeof full, "%.*s%.*s%s", (int)(lb - name), name, (int)(end - p), p, rb + 1);
        sc->fn(sc->user, full, nd, sh);
        p = end + 1;
    }
}

void t5_enumerate(const t5_config *c, wt_visit fn, void *user)
{
    int dims[N_SYMS];
    fill_dims(c, dims);
    split_ctx sc = { fn, user };
    wt_enumerate(T5_TOP, N_ELEMS(T5_TOP), 0, 0, 0, dims, "", split_parts, &sc);
    for (int i = 0; i < c->layers; i++) wt_enumerate(T5_BLOCK, N_ELEMS(T5_BLOCK), i, 0, 0, dims, "", split_parts, &sc);
}

int t5_bucket(int rel, int buckets, int max_distance)
{
    const int half = buckets / 2, exact = half / 2;
    const int base = rel > 0 ? half : 0, n = rel < 0 ? -rel : rel;
    if (n < exact) return base + n;
    /* float32 as torch: log(n / exact) / log(max_distance / exact) * (half - exact), truncated */
    const float v = logf((float)n / (float)exact) / (float)log((double)max_distance / exact) * (float)(half - exact);
    int large = exact + (int)v;
    large = large < exact ? exact : large; /* only with max_distance <= exact, refused at load */
    return base + (large < half - 1 ? large : half - 1);
}

/* ---- state ------------------------------------------------------------------------------------ */

struct t5_state {
    const t5_model *m;
    ops_ctx *ctx;
    arena a;
    int max_tok;
    float *x;     /* [n, D] residual stream */
    float *xn;    /* [n, max(D, F)] linear input: RMSNorm output, gated activation */
    float *qkv;   /* [n, 3I] q | k | v */
    float *att;   /* [n, I] attention output, heads concatenated */
    float *y;     /* [n, D] linear output before the residual add */
    float *h;     /* [n, 2F] wi_0 | wi_1 outputs */
    float *bias;  /* [heads, n, n] position bias (additive attention mask) */
    t5_profile prof;
};

static void plan(t5_state *s, const t5_config *c)
{
    arena *a = &s->a;
    const size_t n = (size_t)s->max_tok, D = c->d_model, I = c->inner, F = c->d_ff, K = D > F ? D : F;
    s->x = arena_alloc(a, sizeof(float) * n * D);
    s->xn = arena_alloc(a, sizeof(float) * n * K);
    s->qkv = arena_alloc(a, sizeof(float) * n * 3 * I);
    s->att = arena_alloc(a, sizeof(float) * n * I);
    s->y = arena_alloc(a, sizeof(float) * n * D);
    s->h = arena_alloc(a, sizeof(float) * n * 2 * F);
    s->bias = arena_alloc(a, sizeof(float) * c->heads * n * n);
}

t5_state *t5_state_new(const t5_model *m, int max_tok, dit_err *e)
{
    if (max_tok < 1 || max_tok > (1 << 14)) {
        err_set(e, DIT_E_ARG, "t5: a state for %d tokens is not possible (1..16384)", max_tok);
        return NULL;
    }
    t5_state *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, DIT_E_OOM, "t5: out of memory");
        return NULL;
    }
    s->m = m, s->max_tok = max_tok;
    s->a = arena_measure();
    plan(s, &m->cfg);
    if (arena_init(&s->a, s->a.used, e) || !(s->ctx = ops_ctx_new(e))) {
        t5_state_free(s);
        return NULL;
    }
    plan(s, &m->cfg);
    return s;
}

void t5_state_free(t5_state *s)
{
    if (!s) return;
    ops_ctx_free(s->ctx);
    arena_free(&s->a);
    free(s);
}

size_t t5_state_bytes(const t5_state *s)
{
    return s->a.cap;
}

const t5_profile *t5_state_profile(const t5_state *s)
{
    return &s->prof;
}

/* ---- forward ---------------------------------------------------------------------------------- */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    const t5_model *m;
    const t5_config *c;
    t5_state *s;
    const t5_input *in;
    ops_prec p;
    int ref, n;
    hook_site site;
    dit_err *e;
} fw;

static dit_status lin(fw *f, float *y, const float *x, const wt_lin *l)
{
    const double t0 = now();
    const dit_status r = wt_linear(f->s->ctx, f->p, y, x, f->n, l);
    f->s->prof.matmul_s += now() - t0;
    f->s->prof.matmul_flop += 2.0 * f->n * l->in * l->out;
    if (!r) return DIT_OK;
    const dit_err *ce = ops_ctx_err(f->s->ctx);
    return err_set(f->e, ce->code ? ce->code : DIT_E_BACKEND, "t5: %s", ce->msg);
}

static void rmsnorm(fw *f, float *y, const float *x, const float *w)
{
    if (f->ref) ops_ref_rmsnorm(y, x, w, f->n, f->c->d_model, T5_EPS);
    else ops_rmsnorm(y, x, w, f->n, f->c->d_model, T5_EPS);
}

static void residual(fw *f, float *x, const float *y)
{
    if (f->ref) ops_ref_add_gated(x, y, NULL, f->n, f->c->d_model);
    else ops_add_gated(x, y, NULL, f->n, f->c->d_model);
}

/* xn[r] = gelu_tanh(h[r, :F]) * h[r, F:] (T5DenseGatedActDense, "gelu_new"); h is overwritten. */
static void gated_gelu(fw *f)
{
    const int F = f->c->d_ff, ref = f->ref;
    float *h = f->s->h, *xn = f->s->xn;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < f->n; r++) {
        float *a = h + (size_t)r * 2 * F, *o = xn + (size_t)r * F;
        if (ref) ops_ref_gelu_tanh(a, a, (size_t)F);
        else ops_gelu_tanh(a, a, (size_t)F);
        for (int j = 0; j < F; j++) o[j] = a[j] * a[F + j];
    }
}

/* bias[h, i, j] = rel_bias[bucket(j - i), h] for the current length (README "t5/"). */
static void position_bias(fw *f)
{
    const t5_config *c = f->c;
    const int n = f->n, H = c->heads;
    float *bias = f->s->bias;
    const float *table = f->m->rel_bias;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            const int b = t5_bucket(j - i, c->buckets, c->max_distance);
            for (int h = 0; h < H; h++) bias[((size_t)h * n + i) * n + j] = table[(size_t)b * H + h];
        }
}

static dit_status block(fw *f, int i)
{
    const t5_config *c = f->c;
    const t5_block *w = &f->m->blocks[i];
    t5_state *s = f->s;
    const int I = c->inner, n = f->n;
    hook_site site = f->site;
    site.block = site.layer = i;
    const hook_list *hl = &f->in->hooks;
    if (hooks_skip(hl, &site)) return DIT_OK;
    dit_status r;
    rmsnorm(f, s->xn, s->x, w->ln0);
    if ((r = lin(f, s->qkv, s->xn, &w->qkv))) return r;
    hook_attn at;
    memset(&at, 0, sizeof at);
    at.q = s->qkv, at.k = s->qkv + I, at.v = s->qkv + 2 * I, at.out = s->att;
    at.a.n_q = at.a.n_kv = n;
    at.a.n_heads = c->heads, at.a.head_dim = c->d_kv;
    at.a.q_stride = at.a.k_stride = at.a.v_stride = 3 * I;
    at.a.o_stride = I;
    at.a.scale = 1.0f;                /* T5: no 1/sqrt(d_kv) */
    at.a.mask = s->bias;              /* block 0's position bias, every block */
    at.a.mask_head_stride = (int64_t)n * n;
    at.ctx = s->ctx, at.prec = f->p;
    hooks_qkv(hl, &site, &at);
    const double t0 = now();
    r = hooks_attention(hl, &site, &at, f->e);
    s->prof.attn_s += now() - t0;
    s->prof.attn_flop += 4.0 * n * (double)n * I;
    if (r) return r;
    hooks_attn_out(hl, &site, &at);
    if ((r = lin(f, s->y, s->att, &w->o))) return r;
    residual(f, s->x, s->y);
    rmsnorm(f, s->xn, s->x, w->ln1);
    if ((r = lin(f, s->h, s->xn, &w->wi))) return r;
    gated_gelu(f);
    if ((r = lin(f, s->y, s->xn, &w->wo))) return r;
    residual(f, s->x, s->y);
    hooks_block_out(hl, &site, s->x, n, c->d_model);
    return DIT_OK;
}

static dit_status sample(fw *f, int b, float *out)
{
    const t5_config *c = f->c;
    t5_state *s = f->s;
    const int D = c->d_model, n = f->n;
    const int32_t *ids = f->in->ids + (size_t)b * n;
    const hook_list *hl = &f->in->hooks;
    f->site.batch = b;
    hook_site site = f->site;
    site.block = -1;
    for (int t = 0; t < n; t++) wt_rows_f32(s->x + (size_t)t * D, &f->m->emb, ids[t], 1);
    hooks_tap(hl, &site, "embeddings", s->x, n, D);
    hooks_tap(hl, &site, "position_bias", s->bias, (int64_t)c->heads * n, n);
    for (int i = 0; i < c->layers; i++) {
        const dit_status r = block(f, i);
        if (r) return r;
    }
    float *o = out + (size_t)b * n * D;
    rmsnorm(f, o, s->x, f->m->lnf);
    hooks_tap(hl, &site, "last", o, n, D);
    return DIT_OK;
}

dit_status t5_encode(const t5_model *m, t5_state *s, const t5_input *in, float *out, dit_err *e)
{
    const t5_config *c = &m->cfg;
    if (s->m != m) return err_set(e, DIT_E_ARG, "t5: the state was made for another model");
    if (in->batch < 1 || !in->ids || !out || in->n_tok < 1 || in->n_tok > s->max_tok)
        return err_set(e, DIT_E_ARG, "t5: encode needs batch >= 1, an output and ids of 1..%d tokens (got %d)", s->max_tok,
                       in->n_tok);
    for (size_t i = 0; i < (size_t)in->batch * in->n_tok; i++)
        if (in->ids[i] < 0 || in->ids[i] >= c->vocab)
            return err_set(e, DIT_E_ARG, "t5: token id %d at %zu outside 0..%d", (int)in->ids[i], i, c->vocab - 1);
    fw f;
    memset(&f, 0, sizeof f);
    f.m = m, f.c = c, f.s = s, f.in = in, f.p = m->prec, f.ref = m->prec == OPS_REF, f.n = in->n_tok, f.e = e;
    f.site.model = "t5";
    f.site.n_blocks = c->layers;
    f.site.kind = HOOK_BLOCK_PLAIN, f.site.stream = HOOK_TXT;
    f.site.n_txt = in->n_tok;
    f.site.n_heads = c->heads, f.site.head_dim = c->d_kv;
    memset(&s->prof, 0, sizeof s->prof);
    const double t0 = now();
    position_bias(&f);
    for (int b = 0; b < in->batch; b++) {
        const dit_status r = sample(&f, b, out);
        if (r) return r;
    }
    s->prof.seconds = now() - t0;
    return DIT_OK;
}
