/* dit/forward.c — the forward passes (golden README sections 4-7), one sample at a time.
 *
 * Mirrors flux/model.py Flux.forward (DoubleStreamBlock, SingleStreamBlock, LastLayer),
 * sd3.5 mmditx.py MMDiTX.forward (JointBlock, DismantledBlock incl. MMDiT-X attn2, FinalLayer)
 * and DiT/SiT models.py DiT.forward. FLUX double blocks, SD3 joint blocks and DiT blocks share
 * one function (double_block): a DiT block is an image stream without a text stream.
 *
 * Hidden state: x [L, H] with L = n_txt + n_img, TEXT ROWS FIRST (the order of both references);
 * the image rows are the patch grid row-major. Each linear's input is prepared in the path's
 * dtype: bf16 (fast path, from ops_layernorm_bf16 / ops_gelu_tanh_bf16 into packed weights) or
 * f32 (reference path). Norms, softmax, residuals and embeddings stay f32 on both paths.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "dit/embed.h"
#include "dit/model.h"

#define LN_EPS 1e-6f /* every LayerNorm of the three families (README section 4) */
#define QK_EPS 1e-6f /* q/k RMSNorm */

struct dit_state {
    const dit_model *m;
    ops_ctx *ctx;
    arena a;
    int max_h, max_w, max_img, max_txt, kin;
    float *x;      /* [L, H] hidden */
    float *qkv;    /* [L, 3H] (FLUX single: [L, 3H + M]) q | k | v (| mlp) */
    float *att;    /* [L, H] attention output, heads concatenated */
    float *att2;   /* [n_img, H] SD3.5 attn2 output */
    float *y;      /* [L, H] linear outputs before the gated residual */
    float *h;      /* [L, M] MLP hidden */
    uint16_t *xb;  /* [L, kin] linear input, bf16 path */
    float *xf;     /* [L, kin] linear input, f32 paths */
    float *tok;    /* [n_img, max(in features, final features)] tokens into img_in / out of the final layer */
    float *vout;   /* [final_ch, H, W] unpatchified output */
    float *cos, *sin; /* [L, hd/2] FLUX RoPE */
    float *ids;    /* [L, 3] FLUX position ids */
    float *freq;   /* [256] */
    float *vec, *svec, *tmp; /* [H]: conditioning c (FLUX vec), SiLU(c), scratch */
    float *mod;    /* [2, 9H] modulation chunks of the current block (img, txt) */
    float *onep;   /* [H] 1 + scale */
    dit_profile prof;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

const dit_profile *dit_state_profile(const dit_state *s)
{
    return &s->prof;
}

/* ---- state ------------------------------------------------------------------------------------ */

static void plan(dit_state *s, const dit_config *c, ops_prec p)
{
    arena *a = &s->a;
    const size_t L = (size_t)s->max_img + s->max_txt, H = c->hidden, M = c->mlp;
    const size_t qw = c->family == DIT_FLUX ? 3 * H + M : 3 * H;
    const size_t in_feat = c->family == DIT_FLUX ? 4 * (size_t)c->in_ch : (size_t)c->in_ch * c->patch * c->patch;
    const size_t fin_feat = (size_t)c->patch * c->patch * c->final_ch;
    s->kin = (int)(H + M);
    s->x = arena_alloc(a, sizeof(float) * L * H);
    s->qkv = arena_alloc(a, sizeof(float) * L * qw);
    s->att = arena_alloc(a, sizeof(float) * L * H);
    s->att2 = c->n_attn2 ? arena_alloc(a, sizeof(float) * s->max_img * H) : NULL;
    s->y = arena_alloc(a, sizeof(float) * L * H);
    s->h = arena_alloc(a, sizeof(float) * L * M);
    if (p == OPS_BF16) s->xb = arena_alloc(a, sizeof(uint16_t) * L * s->kin);
    else s->xf = arena_alloc(a, sizeof(float) * L * s->kin);
    s->tok = arena_alloc(a, sizeof(float) * s->max_img * (in_feat > fin_feat ? in_feat : fin_feat));
    s->vout = arena_alloc(a, sizeof(float) * c->final_ch * (size_t)s->max_h * s->max_w);
    if (c->family == DIT_FLUX) {
        s->cos = arena_alloc(a, sizeof(float) * L * (c->head_dim / 2));
        s->sin = arena_alloc(a, sizeof(float) * L * (c->head_dim / 2));
        s->ids = arena_alloc(a, sizeof(float) * L * 3);
    }
    s->freq = arena_alloc(a, sizeof(float) * DIT_FREQ_DIM);
    s->vec = arena_alloc(a, sizeof(float) * H);
    s->svec = arena_alloc(a, sizeof(float) * H);
    s->tmp = arena_alloc(a, sizeof(float) * H);
    s->mod = arena_alloc(a, sizeof(float) * 18 * H);
    s->onep = arena_alloc(a, sizeof(float) * H);
}

dit_state *dit_state_new(const dit_model *m, int max_h, int max_w, int max_ctx, dit_err *e)
{
    const dit_config *c = &m->cfg;
    const int p = c->patch;
    if (max_h <= 0 || max_w <= 0 || max_h % p || max_w % p || max_ctx < 0 || max_h > (1 << 15) || max_w > (1 << 15) ||
        max_ctx > (1 << 16)) {
        err_set(e, DIT_E_ARG, "dit: state for a %dx%d latent (multiples of %d) and %d text tokens is not possible", max_h,
                max_w, p, max_ctx);
        return NULL;
    }
    dit_state *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, DIT_E_OOM, "dit: out of memory");
        return NULL;
    }
    s->m = m;
    s->max_h = max_h, s->max_w = max_w;
    s->max_img = (max_h / p) * (max_w / p);
    s->max_txt = c->family == DIT_FLUX || c->family == DIT_SD3 ? max_ctx : 0;
    s->a = arena_measure();
    plan(s, c, m->prec);
    const size_t need = s->a.used;
    if (arena_init(&s->a, need, e) || !(s->ctx = ops_ctx_new(e))) {
        dit_state_free(s);
        return NULL;
    }
    plan(s, c, m->prec);
    return s;
}

void dit_state_free(dit_state *s)
{
    if (!s) return;
    ops_ctx_free(s->ctx);
    arena_free(&s->a);
    free(s);
}

size_t dit_state_bytes(const dit_state *s)
{
    return s->a.cap;
}

static void count_params(void *user, const char *name, int nd, const int64_t *shape)
{
    (void)name;
    size_t n = 1;
    for (int d = 0; d < nd; d++) n *= (size_t)shape[d];
    *(size_t *)user += n;
}

size_t dit_memory_estimate(const dit_config *c, ops_prec p, int max_h, int max_w, int max_ctx)
{
    if (c->patch < 1 || max_h < c->patch || max_w < c->patch || max_ctx < 0) return 0;
    size_t params = 0;
    dit_enumerate(c, count_params, &params);
    dit_state s = { 0 };
    s.max_h = max_h, s.max_w = max_w;
    s.max_img = (max_h / c->patch) * (max_w / c->patch);
    s.max_txt = c->family == DIT_FLUX || c->family == DIT_SD3 ? max_ctx : 0;
    s.a = arena_measure();
    plan(&s, c, p);
    return params * (p == OPS_BF16 ? 2 : 4) + s.a.used;
}

/* ---- one forward: the pieces ------------------------------------------------------------------ */

typedef struct {
    const dit_model *m;
    const dit_config *c;
    dit_state *s;
    const dit_input *in;
    ops_prec p;
    int bf, ref;        /* bf16 inputs into packed weights; naive twins for our own kernels */
    int n_txt, n_img, L, gh, gw;
    hook_site site;     /* filled per sample; blocks set block/layer/kind/stream */
    dit_err *e;
} fw;

static dit_status ops_fail(fw *f)
{
    const dit_err *ce = ops_ctx_err(f->s->ctx);
    return err_set(f->e, ce->code ? ce->code : DIT_E_BACKEND, "%s", ce->msg);
}

/* y[M, out] = x[M, in] W^T + b from an f32 input (embeddings, modulations, projections). */
static dit_status lin_f32(fw *f, float *y, const float *x, int64_t M, const wt_lin *l)
{
    const double t0 = now();
    const dit_status r = wt_linear(f->s->ctx, f->p, y, x, M, l);
    f->s->prof.matmul_s += now() - t0;
    f->s->prof.matmul_flop += 2.0 * M * l->in * l->out;
    return r ? ops_fail(f) : DIT_OK;
}

/* y = (linear input prepared in s->xb / s->xf, [M, l->in]) W^T + b. */
static dit_status lin_in(fw *f, float *y, int64_t M, const wt_lin *l)
{
    const double t0 = now();
    const dit_status r = f->bf ? wt_linear_bf16(f->s->ctx, y, f->s->xb, M, l) : wt_linear(f->s->ctx, f->p, y, f->s->xf, M, l);
    f->s->prof.matmul_s += now() - t0;
    f->s->prof.matmul_flop += 2.0 * M * l->in * l->out;
    return r ? ops_fail(f) : DIT_OK;
}

/* Linear input = LN(x) (1 + scale) + shift over rows of H (adaLN modulate, README section 4). */
static void mod_input(fw *f, const float *x, int64_t rows, const float *shift, const float *scale)
{
    const int H = f->c->hidden;
    float *w = f->s->onep;
    for (int j = 0; j < H; j++) w[j] = 1.0f + scale[j];
    if (f->bf) ops_layernorm_bf16(f->s->xb, x, w, shift, rows, H, LN_EPS);
    else if (f->ref) ops_ref_layernorm(f->s->xf, x, w, shift, rows, H, LN_EPS);
    else ops_layernorm(f->s->xf, x, w, shift, rows, H, LN_EPS);
}

/* Linear input = gelu_tanh(h), h: [rows, M]. */
static void gelu_input(fw *f, const float *h, int64_t rows)
{
    const size_t n = (size_t)rows * f->c->mlp;
    if (f->bf) ops_gelu_tanh_bf16(f->s->xb, h, n);
    else if (f->ref) ops_ref_gelu_tanh(f->s->xf, h, n);
    else ops_gelu_tanh(f->s->xf, h, n);
}

static void add_gated(fw *f, float *x, const float *y, const float *gate, int64_t rows)
{
    if (f->ref) ops_ref_add_gated(x, y, gate, rows, f->c->hidden);
    else ops_add_gated(x, y, gate, rows, f->c->hidden);
}

/* RMSNorm over head_dim of every head of q (or k) rows: rows at base + r * stride. */
static void qk_norm(fw *f, float *base, int64_t stride, int rows, const float *w)
{
    if (!w) return;
    const int heads = f->c->heads, hd = f->c->head_dim, ref = f->ref;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        float *row = base + r * stride;
        if (ref) ops_ref_rmsnorm(row, row, w, heads, hd, QK_EPS);
        else ops_rmsnorm(row, row, w, heads, hd, QK_EPS);
    }
}

/* FLUX RoPE on q and k of the L joint rows (after qk-norm). */
static void rope(fw *f, float *q, float *k, int64_t stride)
{
    if (f->c->family != DIT_FLUX) return;
    const int heads = f->c->heads, hd = f->c->head_dim;
    if (f->ref) {
        ops_ref_rope(q, f->L, heads, hd, stride, f->s->cos, f->s->sin);
        ops_ref_rope(k, f->L, heads, hd, stride, f->s->cos, f->s->sin);
    } else {
        ops_rope(q, f->L, heads, hd, stride, f->s->cos, f->s->sin);
        ops_rope(k, f->L, heads, hd, stride, f->s->cos, f->s->sin);
    }
}

/* softmax(q k^T / sqrt(hd)) v over n rows through the hook sites; out: [n, H]. */
static dit_status attend(fw *f, const hook_site *site, float *qkv, int64_t stride, int n, float *out)
{
    const dit_config *c = f->c;
    hook_attn at;
    memset(&at, 0, sizeof at);
    at.q = qkv, at.k = qkv + c->hidden, at.v = qkv + 2 * c->hidden, at.out = out;
    at.a.n_q = at.a.n_kv = n;
    at.a.n_heads = c->heads, at.a.head_dim = c->head_dim;
    at.a.q_stride = at.a.k_stride = at.a.v_stride = stride;
    at.a.o_stride = c->hidden;
    at.a.scale = (float)(1.0 / sqrt((double)c->head_dim));
    at.ctx = f->s->ctx, at.prec = f->p;
    const hook_list *hl = &f->in->hooks;
    hooks_qkv(hl, site, &at);
    const double t0 = now();
    const dit_status r = hooks_attention(hl, site, &at, f->e);
    f->s->prof.attn_s += now() - t0;
    f->s->prof.attn_flop += 4.0 * n * (double)n * c->hidden;
    if (r) return r;
    hooks_attn_out(hl, site, &at);
    return DIT_OK;
}

/* The MLP half of a stream: x += gate * fc2(gelu(fc1(LN(x)(1 + scale) + shift))). */
static dit_status mlp(fw *f, float *x, int64_t rows, const dit_stream *w, const float *shift, const float *scale,
                      const float *gate)
{
    dit_status r;
    mod_input(f, x, rows, shift, scale);
    if ((r = lin_in(f, f->s->h, rows, &w->fc1))) return r;
    gelu_input(f, f->s->h, rows);
    if ((r = lin_in(f, f->s->y, rows, &w->fc2))) return r;
    add_gated(f, x, f->s->y, gate, rows);
    return DIT_OK;
}

static hook_site block_site(fw *f, int block, int layer, hook_block_kind kind)
{
    hook_site s = f->site;
    s.block = block, s.layer = layer, s.kind = kind;
    s.stream = f->n_txt ? HOOK_JOINT : HOOK_IMG;
    return s;
}

/* FLUX double block, SD3 joint block (incl. pre_only context and MMDiT-X attn2), DiT block.
 * Modulation chunks: (shift, scale, gate) for attention, then for the MLP, then (SD3.5) attn2. */
static dit_status double_block(fw *f, int i, const dit_double *b)
{
    const dit_config *c = f->c;
    dit_state *s = f->s;
    const int H = c->hidden, nt = f->n_txt, ni = f->n_img;
    const int64_t qs = 3 * H;
    float *xt = s->x, *xi = s->x + (size_t)nt * H;
    float *mi = s->mod, *mt = s->mod + 9 * H; /* img, txt chunks */
    hook_site site = block_site(f, i, i, c->family == DIT_DIT || c->family == DIT_SIT ? HOOK_BLOCK_PLAIN : HOOK_BLOCK_DOUBLE);
    const hook_list *hl = &f->in->hooks;
    if (hooks_skip(hl, &site)) return DIT_OK;
    dit_status r;
    if ((r = lin_f32(f, mi, s->svec, 1, &b->img.mod))) return r;
    if (nt && (r = lin_f32(f, mt, s->svec, 1, &b->txt.mod))) return r;

    /* q, k, v of both streams into the joint rows [txt | img] */
    if (nt) {
        mod_input(f, xt, nt, mt, mt + H);
        if ((r = lin_in(f, s->qkv, nt, &b->txt.qkv))) return r;
        qk_norm(f, s->qkv, qs, nt, b->txt.qn);
        qk_norm(f, s->qkv + H, qs, nt, b->txt.kn);
    }
    mod_input(f, xi, ni, mi, mi + H);
    float *qi = s->qkv + (size_t)nt * qs;
    if ((r = lin_in(f, qi, ni, &b->img.qkv))) return r;
    qk_norm(f, qi, qs, ni, b->img.qn);
    qk_norm(f, qi + H, qs, ni, b->img.kn);
    rope(f, s->qkv, s->qkv + H, qs);
    if ((r = attend(f, &site, s->qkv, qs, nt + ni, s->att))) return r;

    /* MMDiT-X attn2: self-attention of the image tokens on LN(x) of the block's input with its
     * own chunks 6..8, before any residual update (mmditx.py DismantledBlock.pre_attention_x) */
    if (b->has_attn2) {
        mod_input(f, xi, ni, mi + 6 * H, mi + 7 * H);
        if ((r = lin_in(f, s->qkv, ni, &b->qkv2))) return r;
        qk_norm(f, s->qkv, qs, ni, b->qn2);
        qk_norm(f, s->qkv + H, qs, ni, b->kn2);
        hook_site s2 = site;
        s2.attn = 1, s2.stream = HOOK_IMG, s2.n_txt = 0;
        if ((r = attend(f, &s2, s->qkv, qs, ni, s->att2))) return r;
    }

    /* residuals: text stream (unless pre_only: its output is discarded), then image stream */
    if (nt && !b->txt_pre_only) {
        if ((r = lin_f32(f, s->y, s->att, nt, &b->txt.proj))) return r;
        add_gated(f, xt, s->y, mt + 2 * H, nt);
        if ((r = mlp(f, xt, nt, &b->txt, mt + 3 * H, mt + 4 * H, mt + 5 * H))) return r;
    }
    if ((r = lin_f32(f, s->y, s->att + (size_t)nt * H, ni, &b->img.proj))) return r;
    add_gated(f, xi, s->y, mi + 2 * H, ni);
    if (b->has_attn2) {
        if ((r = lin_f32(f, s->y, s->att2, ni, &b->proj2))) return r;
        add_gated(f, xi, s->y, mi + 8 * H, ni);
    }
    if ((r = mlp(f, xi, ni, &b->img, mi + 3 * H, mi + 4 * H, mi + 5 * H))) return r;
    hooks_block_out(hl, &site, s->x, nt + ni, H);
    return DIT_OK;
}

/* FLUX single block: x += gate * linear2([attn | gelu(mlp)]) with linear1 giving q | k | v | mlp. */
static dit_status single_block(fw *f, int i, const dit_single *b)
{
    const dit_config *c = f->c;
    dit_state *s = f->s;
    const int H = c->hidden, M = c->mlp, L = f->L;
    const int64_t qs = 3 * H + M;
    hook_site site = block_site(f, c->depth + i, i, HOOK_BLOCK_SINGLE);
    const hook_list *hl = &f->in->hooks;
    if (hooks_skip(hl, &site)) return DIT_OK;
    dit_status r;
    if ((r = lin_f32(f, s->mod, s->svec, 1, &b->mod))) return r;
    mod_input(f, s->x, L, s->mod, s->mod + H);
    if ((r = lin_in(f, s->qkv, L, &b->linear1))) return r;
    qk_norm(f, s->qkv, qs, L, b->qn);
    qk_norm(f, s->qkv + H, qs, L, b->kn);
    rope(f, s->qkv, s->qkv + H, qs);
    if ((r = attend(f, &site, s->qkv, qs, L, s->att))) return r;
    /* linear2 input [L, H + M] = attention output | gelu_tanh(mlp part of linear1) */
    const int K = H + M, bf = f->bf, ref = f->ref;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < L; t++) {
        const float *a = s->att + (size_t)t * H, *g = s->qkv + (size_t)t * qs + 3 * H;
        if (bf) {
            cvt_f32_to_bf16(s->xb + (size_t)t * K, a, (size_t)H);
            ops_gelu_tanh_bf16(s->xb + (size_t)t * K + H, g, (size_t)M);
        } else {
            memcpy(s->xf + (size_t)t * K, a, sizeof(float) * H);
            if (ref) ops_ref_gelu_tanh(s->xf + (size_t)t * K + H, g, (size_t)M);
            else ops_gelu_tanh(s->xf + (size_t)t * K + H, g, (size_t)M);
        }
    }
    if ((r = lin_in(f, s->y, L, &b->linear2))) return r;
    add_gated(f, s->x, s->y, s->mod + 2 * H, L);
    hooks_block_out(hl, &site, s->x, L, H);
    return DIT_OK;
}

/* Linear, SiLU, Linear on one vector (conditioning MLPs). */
static dit_status mlp2(fw *f, float *out, const float *in, const dit_mlp2 *w)
{
    dit_status r = lin_f32(f, f->s->tmp, in, 1, &w->l1);
    if (r) return r;
    if (f->ref) ops_ref_silu(f->s->tmp, f->s->tmp, (size_t)f->c->hidden);
    else ops_silu(f->s->tmp, f->s->tmp, (size_t)f->c->hidden);
    return lin_f32(f, out, f->s->tmp, 1, &w->l2);
}

/* Add the pos_embed rows of an h x w grid centred in the stored M x M grid (SD3 cropped_pos_embed;
 * DiT: the whole grid). */
static void add_pos(fw *f, float *xi)
{
    const dit_model *m = f->m;
    const int M = f->c->pos_max, H = f->c->hidden, top = (M - f->gh) / 2, left = (M - f->gw) / 2;
    for (int r = 0; r < f->gh; r++) wt_rows_f32(f->s->y + (size_t)r * f->gw * H, &m->pos_embed, (int64_t)(top + r) * M + left, f->gw);
    add_gated(f, xi, f->s->y, NULL, f->n_img);
}

/* Conditioning vector into s->vec (FLUX vec, SD3/DiT c), SiLU of it into s->svec. */
static dit_status conditioning(fw *f, int b)
{
    const dit_config *c = f->c;
    const dit_input *in = f->in;
    dit_state *s = f->s;
    const hook_list *hl = &in->hooks;
    hook_site site = f->site;
    site.block = -1;
    const int H = c->hidden, flux = c->family == DIT_FLUX;
    dit_status r;
    dit_timestep_freq(s->freq, &in->t[b], 1, flux ? 1000.0f : 1.0f); /* FLUX scales t inside */
    hooks_tap(hl, &site, "t_freq", s->freq, 1, DIT_FREQ_DIM);
    if ((r = mlp2(f, s->vec, s->freq, &f->m->time_in))) return r;
    hooks_tap(hl, &site, flux ? "time_in" : "t_emb", s->vec, 1, H);
    if (flux && c->guidance_embed) {
        dit_timestep_freq(s->freq, &in->guidance[b], 1, 1000.0f);
        hooks_tap(hl, &site, "g_freq", s->freq, 1, DIT_FREQ_DIM);
        if ((r = mlp2(f, s->y, s->freq, &f->m->guid_in))) return r;
        add_gated(f, s->vec, s->y, NULL, 1);
    }
    if (c->family == DIT_DIT || c->family == DIT_SIT) {
        wt_rows_f32(s->y, &f->m->labels, in->labels[b], 1);
    } else if ((r = mlp2(f, s->y, in->pooled + (size_t)b * c->vec_dim, &f->m->vec_in))) return r;
    if (!flux) hooks_tap(hl, &site, "y_emb", s->y, 1, H);
    add_gated(f, s->vec, s->y, NULL, 1);
    hooks_tap(hl, &site, flux ? "vec" : "c", s->vec, 1, H);
    if (f->ref) ops_ref_silu(s->svec, s->vec, (size_t)H);
    else ops_silu(s->svec, s->vec, (size_t)H);
    return DIT_OK;
}

/* FLUX RoPE table for [txt | img]: text ids (0,0,0), image token (r,c) ids (0, r, c). */
static void rope_table(fw *f)
{
    dit_state *s = f->s;
    memset(s->ids, 0, sizeof(float) * 3 * f->L);
    for (int r = 0; r < f->gh; r++)
        for (int c = 0; c < f->gw; c++) {
            float *id = s->ids + 3 * ((size_t)f->n_txt + (size_t)r * f->gw + c);
            id[1] = (float)r, id[2] = (float)c;
        }
    ops_rope_table(s->cos, s->sin, s->ids, f->L, 3, f->c->axes_dim, f->c->theta);
    hook_site site = f->site;
    site.block = -1;
    hooks_tap(&f->in->hooks, &site, "rope_cos", s->cos, f->L, f->c->head_dim / 2);
    hooks_tap(&f->in->hooks, &site, "rope_sin", s->sin, f->L, f->c->head_dim / 2);
}

static dit_status sample(fw *f, int b, float *v)
{
    const dit_config *c = f->c;
    const dit_input *in = f->in;
    dit_state *s = f->s;
    const dit_model *m = f->m;
    const hook_list *hl = &in->hooks;
    const int H = c->hidden, nt = f->n_txt, ni = f->n_img;
    const size_t plane = (size_t)in->H * in->W;
    const float *x = in->x + (size_t)b * c->in_ch * plane;
    float *xi = s->x + (size_t)nt * H;
    dit_status r;
    f->site.batch = b;
    f->site.t = in->t[b];
    hook_site site = f->site;
    site.block = -1;

    if ((r = conditioning(f, b))) return r;
    /* tokens */
    if (c->family == DIT_FLUX) dit_flux_pack(s->tok, x, c->in_ch, in->H, in->W);
    else dit_patchify(s->tok, x, c->in_ch, in->H, in->W, c->patch);
    if ((r = lin_f32(f, xi, s->tok, ni, &m->img_in))) return r;
    if (c->family != DIT_FLUX) add_pos(f, xi);
    hooks_tap(hl, &site, c->family == DIT_FLUX ? "img_in" : "embed.img", xi, ni, H);
    if (nt) {
        if ((r = lin_f32(f, s->x, in->context + (size_t)b * nt * c->ctx_dim, nt, &m->txt_in))) return r;
        hooks_tap(hl, &site, c->family == DIT_FLUX ? "txt_in" : "embed.txt", s->x, nt, H);
    }
    if (c->family == DIT_FLUX) rope_table(f);

    for (int i = 0; i < c->depth; i++)
        if ((r = double_block(f, i, &m->dbl[i]))) return r;
    for (int i = 0; i < c->depth_single; i++)
        if ((r = single_block(f, i, &m->sgl[i]))) return r;

    /* final layer on the image rows: (shift, scale), then the linear */
    if ((r = lin_f32(f, s->mod, s->svec, 1, &m->final_mod))) return r;
    mod_input(f, xi, ni, s->mod, s->mod + H);
    if ((r = lin_in(f, s->tok, ni, &m->final_lin))) return r;
    hooks_tap(hl, &site, "v_tokens", s->tok, ni, c->patch * c->patch * c->final_ch);
    float *vb = v + (size_t)b * c->out_ch * plane;
    if (c->family == DIT_FLUX) dit_flux_unpack(vb, s->tok, c->in_ch, in->H, in->W);
    else {
        dit_unpatchify(s->vout, s->tok, c->final_ch, in->H, in->W, c->patch);
        memcpy(vb, s->vout, sizeof(float) * c->out_ch * plane); /* SiT: the first C of 2C channels */
    }
    return DIT_OK;
}

static dit_status check_input(const dit_model *m, const dit_state *s, const dit_input *in, const float *v, dit_err *e)
{
    const dit_config *c = &m->cfg;
    const int p = c->patch;
    if (s->m != m) return err_set(e, DIT_E_ARG, "dit: the state was made for another model");
    if (in->batch < 1 || !in->x || !in->t || !v) return err_set(e, DIT_E_ARG, "dit: forward needs batch >= 1, x, t and an output");
    if (in->H <= 0 || in->W <= 0 || in->H % p || in->W % p)
        return err_set(e, DIT_E_ARG, "dit: latent %dx%d is not a multiple of the patch size %d", in->H, in->W, p);
    if ((int64_t)(in->H / p) * (in->W / p) > s->max_img || in->H > s->max_h || in->W > s->max_w)
        return err_set(e, DIT_E_ARG, "dit: latent %dx%d is larger than the state (%dx%d)", in->H, in->W, s->max_h, s->max_w);
    if (c->family == DIT_FLUX || c->family == DIT_SD3) {
        if (in->n_ctx < 1 || in->n_ctx > s->max_txt || !in->context || !in->pooled)
            return err_set(e, DIT_E_ARG, "dit: %s needs context (1..%d tokens, got %d) and a pooled vector",
                           dit_family_name(c->family), s->max_txt, in->n_ctx);
        if (c->guidance_embed && !in->guidance) return err_set(e, DIT_E_ARG, "dit: FLUX-dev needs a guidance value");
    }
    if (c->family == DIT_SD3 && (in->H / p > c->pos_max || in->W / p > c->pos_max))
        return err_set(e, DIT_E_ARG, "dit: a %dx%d patch grid is larger than pos_embed's %dx%d", in->H / p, in->W / p,
                       c->pos_max, c->pos_max);
    if (c->family == DIT_DIT || c->family == DIT_SIT) {
        if (in->H / p != c->pos_max || in->W / p != c->pos_max)
            return err_set(e, DIT_E_ARG, "dit: %s takes only %dx%d latents (pos_embed is fixed), got %dx%d",
                           dit_family_name(c->family), c->pos_max * p, c->pos_max * p, in->H, in->W);
        if (!in->labels) return err_set(e, DIT_E_ARG, "dit: %s needs class labels", dit_family_name(c->family));
        for (int b = 0; b < in->batch; b++)
            if (in->labels[b] < 0 || in->labels[b] > c->num_classes)
                return err_set(e, DIT_E_ARG, "dit: class label %d outside 0..%d (%d = unconditional)", in->labels[b],
                               c->num_classes, c->num_classes);
    }
    return DIT_OK;
}

dit_status dit_forward(const dit_model *m, dit_state *s, const dit_input *in, float *v, dit_err *e)
{
    dit_status r = check_input(m, s, in, v, e);
    if (r) return r;
    const dit_config *c = &m->cfg;
    fw f;
    memset(&f, 0, sizeof f);
    f.m = m, f.c = c, f.s = s, f.in = in, f.p = m->prec, f.e = e;
    f.bf = m->prec == OPS_BF16, f.ref = m->prec == OPS_REF;
    f.gh = in->H / c->patch, f.gw = in->W / c->patch;
    f.n_img = f.gh * f.gw;
    f.n_txt = c->family == DIT_FLUX || c->family == DIT_SD3 ? in->n_ctx : 0;
    f.L = f.n_txt + f.n_img;
    f.site.model = c->family == DIT_SIT ? "sit" : dit_family_name(c->family);
    f.site.n_blocks = c->depth + c->depth_single;
    f.site.n_txt = f.n_txt, f.site.n_img = f.n_img;
    f.site.grid_h = f.gh, f.site.grid_w = f.gw;
    f.site.n_heads = c->heads, f.site.head_dim = c->head_dim;
    memset(&s->prof, 0, sizeof s->prof);
    const double t0 = now();
    for (int b = 0; b < in->batch; b++)
        if ((r = sample(&f, b, v))) return r;
    s->prof.seconds = now() - t0;
    return DIT_OK;
}
