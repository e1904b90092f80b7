/* text/clip.c — CLIP text transformer: table-driven loading and the forward pass.
 * Mirrors sd3.5 other_impls.py CLIPTextModel_ / CLIPEncoder / CLIPLayer (golden README
 * "clip_text/"); tensor names as HF CLIPTextModel(WithProjection), which the released
 * clip_l.safetensors / clip_g.safetensors and diffusers' text_encoder(_2)/ folders share. */
#include "text/clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

#define CLIP_LN_EPS 1e-5f

typedef struct {
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* layer_norm1/2 [D] */
    wt_lin qkv;                           /* self_attn.{q_proj,k_proj,v_proj}: [3D, D], rows (3, heads, hd) */
    wt_lin out;                           /* self_attn.out_proj [D, D] */
    wt_lin fc1, fc2;                      /* mlp.fc1 [M, D], mlp.fc2 [D, M] */
} clip_layer;

struct clip_model {
    clip_config cfg;
    ops_prec prec;
    st_set *set;
    wt_store store;
    tensor tok_emb;          /* embeddings.token_embedding.weight [vocab, D], a view of the file */
    float *pos_emb;          /* embeddings.position_embedding.weight [n_pos, D] */
    float *lnf_w, *lnf_b;    /* final_layer_norm [D] */
    wt_lin proj;             /* text_projection [P, D], no bias; proj.out = 0 when absent */
    clip_layer *layers;
};

/* Shape symbols. */
enum { HID = 1, MLP, VOCAB, NPOS, PROJ, N_SYMS };

#define TM "text_model."
#define VEC1(o, f, name, n) { { name, NULL }, offsetof(o, f), WT_VEC, 0, 1, { n } }
#define LIN(o, f, name, out, in, fl) { { name, NULL }, offsetof(o, f), WT_LINEAR, fl, 2, { out, in } }

static const wt_spec CLIP_TOP[] = {
    { { TM "embeddings.token_embedding.weight", NULL }, offsetof(clip_model, tok_emb), WT_TENSOR, 0, 2, { WD(1, VOCAB), WD(1, HID) } },
    { { TM "embeddings.position_embedding.weight", NULL }, offsetof(clip_model, pos_emb), WT_VEC, 0, 2, { WD(1, NPOS), WD(1, HID) } },
    VEC1(clip_model, lnf_w, TM "final_layer_norm.weight", WD(1, HID)),
    VEC1(clip_model, lnf_b, TM "final_layer_norm.bias", WD(1, HID)),
};
static const wt_spec CLIP_PROJ[] = { /* HF Linear layout [out, in]: y = pooled W^T */
    LIN(clip_model, proj, "text_projection", WD(1, PROJ), WD(1, HID), WT_NOBIAS),
};
#define TL TM "encoder.layers.%d."
static const wt_spec CLIP_LAYER[] = {
    VEC1(clip_layer, ln1_w, TL "layer_norm1.weight", WD(1, HID)),
    VEC1(clip_layer, ln1_b, TL "layer_norm1.bias", WD(1, HID)),
    LIN(clip_layer, qkv, TL "self_attn.{q_proj,k_proj,v_proj}", WD(3, HID), WD(1, HID), 0),
    LIN(clip_layer, out, TL "self_attn.out_proj", WD(1, HID), WD(1, HID), 0),
    VEC1(clip_layer, ln2_w, TL "layer_norm2.weight", WD(1, HID)),
    VEC1(clip_layer, ln2_b, TL "layer_norm2.bias", WD(1, HID)),
    LIN(clip_layer, fc1, TL "mlp.fc1", WD(1, MLP), WD(1, HID), 0),
    LIN(clip_layer, fc2, TL "mlp.fc2", WD(1, HID), WD(1, MLP), 0),
};

static const char *const PREFIXES[] = { "", TEXT_PREFIX_CLIP_L, TEXT_PREFIX_CLIP_G };

/* ---- configuration ---------------------------------------------------------------------------- */

static dit_status derive(const text__file *f, const text_load_opts *o, clip_config *c, dit_err *e)
{
    memset(c, 0, sizeof *c);
    c->vocab = (int)text__dim(f, TM "embeddings.token_embedding.weight", 0, 0);
    c->hidden = (int)text__dim(f, TM "embeddings.token_embedding.weight", 0, 1);
    c->n_pos = (int)text__dim(f, TM "embeddings.position_embedding.weight", 0, 0);
    c->mlp = (int)text__dim(f, TL "mlp.fc1.weight", 0, 0);
    c->layers = text__count(f, TL "layer_norm1.weight", CLIP_MAX_LAYERS);
    const int64_t proj = text__dim(f, "text_projection.weight", 0, 0);
    c->proj = proj > 0 ? (int)proj : 0;
    const char *path = st_set_path(f->set);
    if (c->vocab <= 0 || c->hidden <= 0 || c->n_pos <= 0 || c->mlp <= 0 || c->layers < 1)
        return err_set(e, DIT_E_FORMAT, "%s: CLIP text model without embeddings / layers.0 tensors of the expected rank", path);
    if (c->layers > CLIP_MAX_LAYERS) return err_set(e, DIT_E_FORMAT, "%s: CLIP with more than %d layers", path, CLIP_MAX_LAYERS);
    c->heads = o->heads > 0 ? o->heads : text__int(f, "text.heads", "num_attention_heads", c->hidden / 64);
    if (c->heads <= 0 || c->hidden % c->heads || c->hidden / c->heads > OPS_MAX_HEAD_DIM)
        return err_set(e, DIT_E_FORMAT,
                       "%s: CLIP width %d does not split into %d heads (set the heads: metadata text.heads, config.json "
                       "num_attention_heads or the load option)",
                       path, c->hidden, c->heads);
    c->head_dim = c->hidden / c->heads;
    /* activation: option, then metadata / config.json, then CLIP-G = has a projection and is not 768 wide */
    c->act = o->act;
    const char *act = text__str(f, "text.hidden_act", "hidden_act");
    if (c->act == TEXT_ACT_AUTO && act) {
        if (!strcmp(act, "quick_gelu")) c->act = TEXT_ACT_QUICK_GELU;
        else if (!strcmp(act, "gelu")) c->act = TEXT_ACT_GELU;
        else return err_set(e, DIT_E_UNSUPPORTED, "%s: CLIP hidden_act '%s' (only quick_gelu and gelu)", path, act);
    }
    if (c->act == TEXT_ACT_AUTO) c->act = c->proj && c->hidden != 768 ? TEXT_ACT_GELU : TEXT_ACT_QUICK_GELU;
    if ((unsigned)c->act >= TEXT_ACT_COUNT) return err_set(e, DIT_E_ARG, "%s: bad CLIP activation %d", path, (int)c->act);
    snprintf(c->variant, sizeof c->variant, "%s", c->hidden == 768 ? "clip-l" : c->hidden == 1280 ? "clip-g" : "clip");
    return DIT_OK;
}

void clip_config_describe(const clip_config *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s: %d layers, width %d, %d heads x %d, mlp %d (%s), %d positions, vocab %d, %s", c->variant, c->layers,
             c->hidden, c->heads, c->head_dim, c->mlp, text_act_name(c->act), c->n_pos, c->vocab,
             c->proj ? "text_projection" : "no projection");
}

/* ---- loading ---------------------------------------------------------------------------------- */

static dit_status load_weights(clip_model *m, const char *prefix, ops_ctx *ctx, dit_err *e)
{
    const clip_config *c = &m->cfg;
    int dims[N_SYMS] = { 0 };
    dims[HID] = c->hidden, dims[MLP] = c->mlp, dims[VOCAB] = c->vocab, dims[NPOS] = c->n_pos, dims[PROJ] = c->proj;
    wt_loader L;
    dit_status r = wt_loader_init(&L, m->set, prefix, 0, ctx, m->prec, &m->store, dims, e);
    if (r) return r;
    m->layers = calloc((size_t)c->layers, sizeof *m->layers);
    if (!m->layers) r = err_set(e, DIT_E_OOM, "%s: out of memory", st_set_path(m->set));
    if (!r) r = wt_load(&L, m, CLIP_TOP, N_ELEMS(CLIP_TOP), 0, 0);
    if (!r && c->proj) r = wt_load(&L, m, CLIP_PROJ, N_ELEMS(CLIP_PROJ), 0, 0);
    for (int i = 0; !r && i < c->layers; i++) r = wt_load(&L, &m->layers[i], CLIP_LAYER, N_ELEMS(CLIP_LAYER), i, 0);
    /* buffers some exports keep, not weights: HF position_ids, OpenCLIP logit_scale */
    text__ignore(&L, TM "embeddings.position_ids");
    text__ignore(&L, "logit_scale");
    if (!r) r = wt_loader_finish(&L);
    wt_loader_free(&L);
    return r;
}

dit_status clip_load(clip_model **out, const char *path, const text_load_opts *o, dit_err *e)
{
    *out = NULL;
    const text_load_opts d = text_load_defaults();
    if (!o) o = &d;
    if ((unsigned)o->prec >= OPS_PREC_COUNT) return err_set(e, DIT_E_ARG, "clip_load: bad precision %d", (int)o->prec);
    text__file f;
    dit_status r = text__open(&f, path, TM "embeddings.token_embedding.weight", PREFIXES, N_ELEMS(PREFIXES), o, "CLIP text", e);
    if (r) return r;
    clip_model *m = calloc(1, sizeof *m);
    if (!m) {
        text__close(&f);
        return err_set(e, DIT_E_OOM, "clip_load: out of memory");
    }
    m->prec = o->prec;
    r = derive(&f, o, &m->cfg, e);
    m->set = f.set, f.set = NULL; /* the model owns the map now */
    const char *prefix = f.prefix;
    if (!r) {
        ops_ctx *ctx = ops_ctx_new(e);
        if (!ctx) r = e && e->code ? e->code : DIT_E_BACKEND;
        else {
            r = load_weights(m, prefix, ctx, e);
            ops_ctx_free(ctx);
        }
    }
    text__close(&f);
    if (r) {
        clip_free(m);
        return r;
    }
    *out = m;
    return DIT_OK;
}

void clip_free(clip_model *m)
{
    if (!m) return;
    wt_store_free(&m->store);
    free(m->layers);
    st_set_close(m->set);
    free(m);
}

const clip_config *clip_model_config(const clip_model *m)
{
    return &m->cfg;
}

ops_prec clip_model_prec(const clip_model *m)
{
    return m->prec;
}

int clip_pool_index(const int32_t *ids, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (ids[i] > ids[best]) best = i; /* torch.argmax: the first of equal maxima */
    return best;
}

/* ---- state ------------------------------------------------------------------------------------ */

struct clip_state {
    const clip_model *m;
    ops_ctx *ctx;
    arena a;
    float *x;    /* [n, D] residual stream */
    float *xn;   /* [n, max(D, M)] linear input (LN output, activation output) */
    float *qkv;  /* [n, 3D] q | k | v */
    float *att;  /* [n, D] attention output, heads concatenated */
    float *y;    /* [n, D] linear output before the residual add; final LN output */
    float *h;    /* [n, M] MLP hidden */
    float *dbg;  /* [n, D] penultimate with final LN (tap) */
};

static void plan(clip_state *s, const clip_config *c)
{
    arena *a = &s->a;
    const size_t n = (size_t)c->n_pos, D = c->hidden, M = c->mlp, K = D > M ? D : M;
    s->x = arena_alloc(a, sizeof(float) * n * D);
    s->xn = arena_alloc(a, sizeof(float) * n * K);
    s->qkv = arena_alloc(a, sizeof(float) * n * 3 * D);
    s->att = arena_alloc(a, sizeof(float) * n * D);
    s->y = arena_alloc(a, sizeof(float) * n * D);
    s->h = arena_alloc(a, sizeof(float) * n * M);
    s->dbg = arena_alloc(a, sizeof(float) * n * D);
}

clip_state *clip_state_new(const clip_model *m, dit_err *e)
{
    clip_state *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, DIT_E_OOM, "clip: out of memory");
        return NULL;
    }
    s->m = m;
    s->a = arena_measure();
    plan(s, &m->cfg);
    if (arena_init(&s->a, s->a.used, e) || !(s->ctx = ops_ctx_new(e))) {
        clip_state_free(s);
        return NULL;
    }
    plan(s, &m->cfg);
    return s;
}

void clip_state_free(clip_state *s)
{
    if (!s) return;
    ops_ctx_free(s->ctx);
    arena_free(&s->a);
    free(s);
}

/* ---- forward ---------------------------------------------------------------------------------- */

typedef struct {
    const clip_model *m;
    const clip_config *c;
    clip_state *s;
    const clip_input *in;
    ops_prec p;
    int ref, n;
    hook_site site;
    dit_err *e;
} fw;

static dit_status lin(fw *f, float *y, const float *x, const wt_lin *l)
{
    if (!wt_linear(f->s->ctx, f->p, y, x, f->n, l)) return DIT_OK;
    const dit_err *ce = ops_ctx_err(f->s->ctx);
    return err_set(f->e, ce->code ? ce->code : DIT_E_BACKEND, "clip: %s", ce->msg);
}

static void layernorm(fw *f, float *y, const float *x, const float *w, const float *b)
{
    if (f->ref) ops_ref_layernorm(y, x, w, b, f->n, f->c->hidden, CLIP_LN_EPS);
    else ops_layernorm(y, x, w, b, f->n, f->c->hidden, CLIP_LN_EPS);
}

static void residual(fw *f, float *x, const float *y)
{
    if (f->ref) ops_ref_add_gated(x, y, NULL, f->n, f->c->hidden);
    else ops_add_gated(x, y, NULL, f->n, f->c->hidden);
}

static void activation(fw *f, float *y, const float *x)
{
    const size_t n = (size_t)f->n * f->c->mlp;
    if (f->c->act == TEXT_ACT_GELU) f->ref ? ops_ref_gelu(y, x, n) : ops_gelu(y, x, n);
    else f->ref ? ops_ref_quick_gelu(y, x, n) : ops_quick_gelu(y, x, n);
}

/* One layer: x += out_proj(attn(LN1(x))); x += fc2(act(fc1(LN2(x)))). */
static dit_status layer(fw *f, int i)
{
    const clip_config *c = f->c;
    const clip_layer *w = &f->m->layers[i];
    clip_state *s = f->s;
    const int D = c->hidden;
    hook_site site = f->site;
    site.block = site.layer = i;
    const hook_list *hl = &f->in->hooks;
    if (hooks_skip(hl, &site)) return DIT_OK;
    dit_status r;
    layernorm(f, s->xn, s->x, w->ln1_w, w->ln1_b);
    if ((r = lin(f, s->qkv, s->xn, &w->qkv))) return r;
    hook_attn at;
    memset(&at, 0, sizeof at);
    at.q = s->qkv, at.k = s->qkv + D, at.v = s->qkv + 2 * D, at.out = s->att;
    at.a.n_q = at.a.n_kv = f->n;
    at.a.n_heads = c->heads, at.a.head_dim = c->head_dim;
    at.a.q_stride = at.a.k_stride = at.a.v_stride = 3 * D;
    at.a.o_stride = D;
    at.a.scale = (float)(1.0 / sqrt((double)c->head_dim));
    at.a.causal = 1; /* always; no padding mask (pads attend causally like any token) */
    at.ctx = s->ctx, at.prec = f->p;
    hooks_qkv(hl, &site, &at);
    if ((r = hooks_attention(hl, &site, &at, f->e))) return r;
    hooks_attn_out(hl, &site, &at);
    if ((r = lin(f, s->y, s->att, &w->out))) return r;
    residual(f, s->x, s->y);
    layernorm(f, s->xn, s->x, w->ln2_w, w->ln2_b);
    if ((r = lin(f, s->h, s->xn, &w->fc1))) return r;
    activation(f, s->xn, s->h);
    if ((r = lin(f, s->y, s->xn, &w->fc2))) return r;
    residual(f, s->x, s->y);
    hooks_block_out(hl, &site, s->x, f->n, D);
    return DIT_OK;
}

/* HF hidden_states[-2]: the output of layer L-2, or the embeddings for a one-layer model. */
static void penultimate(fw *f, int b, const clip_output *out)
{
    const size_t nd = (size_t)f->n * f->c->hidden;
    if (out->penultimate) memcpy(out->penultimate + b * nd, f->s->x, sizeof(float) * nd);
    if (f->in->hooks.n) {
        hook_site site = f->site;
        site.block = -1;
        layernorm(f, f->s->dbg, f->s->x, f->m->lnf_w, f->m->lnf_b);
        hooks_tap(&f->in->hooks, &site, "penultimate_final_ln", f->s->dbg, f->n, f->c->hidden);
    }
}

static dit_status sample(fw *f, int b, const clip_output *out)
{
    const clip_config *c = f->c;
    const clip_model *m = f->m;
    clip_state *s = f->s;
    const int D = c->hidden, n = f->n;
    const int32_t *ids = f->in->ids + (size_t)b * n;
    const hook_list *hl = &f->in->hooks;
    f->site.batch = b;
    hook_site site = f->site;
    site.block = -1;
    dit_status r;
    for (int t = 0; t < n; t++) wt_rows_f32(s->x + (size_t)t * D, &m->tok_emb, ids[t], 1);
    if (f->ref) ops_ref_add_gated(s->x, m->pos_emb, NULL, n, D);
    else ops_add_gated(s->x, m->pos_emb, NULL, n, D);
    hooks_tap(hl, &site, "embeddings", s->x, n, D);
    if (c->layers == 1) penultimate(f, b, out);
    for (int i = 0; i < c->layers; i++) {
        if ((r = layer(f, i))) return r;
        if (i == c->layers - 2) penultimate(f, b, out);
    }
    layernorm(f, s->y, s->x, m->lnf_w, m->lnf_b); /* last_hidden_state */
    hooks_tap(hl, &site, "last", s->y, n, D);
    if (out->last) memcpy(out->last + (size_t)b * n * D, s->y, sizeof(float) * n * D);
    const float *pooled = s->y + (size_t)clip_pool_index(ids, n) * D;
    if (out->pooled) memcpy(out->pooled + (size_t)b * D, pooled, sizeof(float) * D);
    if (out->projected) {
        const dit_status pr = wt_linear(s->ctx, f->p, out->projected + (size_t)b * c->proj, pooled, 1, &m->proj);
        if (pr) return err_set(f->e, pr, "clip: text_projection: %s", ops_ctx_err(s->ctx)->msg);
    }
    return DIT_OK;
}

dit_status clip_encode(const clip_model *m, clip_state *s, const clip_input *in, const clip_output *out, dit_err *e)
{
    const clip_config *c = &m->cfg;
    if (s->m != m) return err_set(e, DIT_E_ARG, "clip: the state was made for another model");
    if (in->batch < 1 || !in->ids || in->n_tok < 1 || in->n_tok > c->n_pos)
        return err_set(e, DIT_E_ARG, "clip: encode needs batch >= 1 and ids of 1..%d tokens (got %d)", c->n_pos, in->n_tok);
    if (out->projected && !c->proj) return err_set(e, DIT_E_ARG, "clip: projected output asked of a model without text_projection");
    for (size_t i = 0; i < (size_t)in->batch * in->n_tok; i++)
        if (in->ids[i] < 0 || in->ids[i] >= c->vocab)
            return err_set(e, DIT_E_ARG, "clip: token id %d at %zu outside 0..%d", (int)in->ids[i], i, c->vocab - 1);
    fw f;
    memset(&f, 0, sizeof f);
    f.m = m, f.c = c, f.s = s, f.in = in, f.p = m->prec, f.ref = m->prec == OPS_REF, f.n = in->n_tok, f.e = e;
    f.site.model = "clip";
    f.site.n_blocks = c->layers;
    f.site.kind = HOOK_BLOCK_PLAIN, f.site.stream = HOOK_TXT;
    f.site.n_txt = in->n_tok;
    f.site.n_heads = c->heads, f.site.head_dim = c->head_dim;
    for (int b = 0; b < in->batch; b++) {
        const dit_status r = sample(&f, b, out);
        if (r) return r;
    }
    return DIT_OK;
}
