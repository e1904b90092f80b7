/* vae/taesd.c — the TAESD family of tiny autoencoders (madebyollin/taesd taesd.py Encoder, Decoder;
 * golden README taef2/): TAESD/TAESDXL (4 latent channels), TAESD3/TAEF1 (16), TAEF2 (32, with
 * GroupNorm "pool" blocks, arch_variant "flux_2"). Images in [0, 1]; latents raw (the models are
 * trained on the diffusion model's latent space itself).
 *
 * Both halves are nn.Sequential, their weights named by index ("3.conv.0.weight"). What each index
 * is comes from the tables ENC_LAYERS / DEC_LAYERS; channels and the pool branch come from the
 * tensor shapes and names.
 *
 *   Block(x)  if pool: x = x + pool.3(relu(GroupNorm(4 groups, eps 1e-5)(pool.0(x))))  (1x1 convs, no bias)
 *             out = relu(conv.4(relu(conv.2(relu(conv.0(x))))) + skip(x))  (skip: 1x1 conv or identity)
 *   Clamp     tanh(x / 3) * 3
 *   convs     3x3, padding 1 on every side, also the stride-2 ones (unlike the LDM VAE)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/wtable.h"
#include "vae/vae_impl.h"

#define TA_MAX_LAYERS 32
#define TA_POOL_GROUPS 4
#define TA_POOL_EPS 1e-5f

/* One letter per nn.Sequential index:
 *   C conv 3x3 with bias   c conv 3x3 without bias   S conv 3x3 stride 2 without bias
 *   B Block                R ReLU                     U Upsample nearest x2    T Clamp tanh(x/3)*3 */
static const char ENC_LAYERS[] = "CBSBBBSBBBSBBBC";
static const char DEC_LAYERS[] = "TCRBBBUcBBBUcBBBUcBC";

typedef struct {
    char kind;
    int cin, cout, pool_c;          /* pool_c: channels of the pool branch, 0 = none */
    tensor w;                       /* conv: [cout, cin, 3, 3] */
    float *b;                       /* conv bias [cout] or NULL */
    tensor c0, c2, c4;              /* block: [cout, cin, 3, 3], [cout, cout, 3, 3] x 2 */
    float *b0, *b2, *b4;            /* [cout] */
    tensor skip;                    /* block: [cout, cin, 1, 1]; data NULL = identity */
    tensor p0, p3;                  /* pool: [pool_c, cin, 1, 1], [cin, pool_c, 1, 1] */
    float *gn_w, *gn_b;             /* pool GroupNorm [pool_c] */
} ta_layer;

typedef struct {
    int n;                          /* 0 = this half is absent */
    const char *kinds;              /* ENC_LAYERS or DEC_LAYERS */
    ta_layer layer[TA_MAX_LAYERS];
} ta_net;

typedef struct {
    vae base; /* must be first */
    st_set *set[2];                 /* encoder's and decoder's files (may be the same file, opened twice) */
    wt_store store;
    ta_net enc, dec;
} vae_taesd;

enum { CIN = 1, COUT, CPOOL, N_SYMS };

static const wt_spec CONV_W[] = {
    { { "%d.weight", NULL }, offsetof(ta_layer, w), WT_TENSOR, WT_AS_PREC, 4, { WD(1, COUT), WD(1, CIN), WLIT(3), WLIT(3) } },
};
static const wt_spec CONV_B[] = {
    { { "%d.bias", NULL }, offsetof(ta_layer, b), WT_VEC, 0, 1, { WD(1, COUT) } },
};
static const wt_spec BLOCK[] = {
    { { "%d.conv.0.weight", NULL }, offsetof(ta_layer, c0), WT_TENSOR, WT_AS_PREC, 4, { WD(1, COUT), WD(1, CIN), WLIT(3), WLIT(3) } },
    { { "%d.conv.0.bias", NULL }, offsetof(ta_layer, b0), WT_VEC, 0, 1, { WD(1, COUT) } },
    { { "%d.conv.2.weight", NULL }, offsetof(ta_layer, c2), WT_TENSOR, WT_AS_PREC, 4, { WD(1, COUT), WD(1, COUT), WLIT(3), WLIT(3) } },
    { { "%d.conv.2.bias", NULL }, offsetof(ta_layer, b2), WT_VEC, 0, 1, { WD(1, COUT) } },
    { { "%d.conv.4.weight", NULL }, offsetof(ta_layer, c4), WT_TENSOR, WT_AS_PREC, 4, { WD(1, COUT), WD(1, COUT), WLIT(3), WLIT(3) } },
    { { "%d.conv.4.bias", NULL }, offsetof(ta_layer, b4), WT_VEC, 0, 1, { WD(1, COUT) } },
};
/* only when the block changes channels */
static const wt_spec SKIP[] = {
    { { "%d.skip.weight", NULL }, offsetof(ta_layer, skip), WT_TENSOR, WT_AS_PREC, 4, { WD(1, COUT), WD(1, CIN), WLIT(1), WLIT(1) } },
};
/* only when the file has the block's pool branch (TAEF2 use_midblock_gn) */
static const wt_spec POOL[] = {
    { { "%d.pool.0.weight", NULL }, offsetof(ta_layer, p0), WT_TENSOR, WT_AS_PREC, 4, { WD(1, CPOOL), WD(1, CIN), WLIT(1), WLIT(1) } },
    { { "%d.pool.1.weight", NULL }, offsetof(ta_layer, gn_w), WT_VEC, 0, 1, { WD(1, CPOOL) } },
    { { "%d.pool.1.bias", NULL }, offsetof(ta_layer, gn_b), WT_VEC, 0, 1, { WD(1, CPOOL) } },
    { { "%d.pool.3.weight", NULL }, offsetof(ta_layer, p3), WT_TENSOR, WT_AS_PREC, 4, { WD(1, CIN), WD(1, CPOOL), WLIT(1), WLIT(1) } },
};

/* ---- finding the halves ----------------------------------------------------------------------- */

static const st_tensor *find_at(const st_set *s, const char *prefix, const char *fmt, int i)
{
    char name[256], mod[128];
    snprintf(mod, sizeof mod, fmt, i);
    snprintf(name, sizeof name, "%s%s", prefix, mod);
    return st_set_find(s, name);
}

/* The prefix under which s holds the encoder (enc = 1: "0.weight" is a conv from 3 channels and 1 is
 * a Block) or the decoder (index 0 is the weightless Clamp, 1 a conv, 3 a Block); NULL when absent. */
static const char *half_prefix(const st_set *s, int enc)
{
    static const char *const prefixes[2][2] = { { "", "decoder." }, { "", "encoder." } };
    for (int i = 0; i < 2; i++) {
        const char *p = prefixes[enc][i];
        if (enc ? find_at(s, p, "%d.weight", 0) && find_at(s, p, "%d.conv.0.weight", 1)
                : find_at(s, p, "%d.weight", 1) && find_at(s, p, "%d.conv.0.weight", 3) && !find_at(s, p, "%d.weight", 0))
            return p;
    }
    return NULL;
}

int vae__taesd_detect(const st_set *s)
{
    return half_prefix(s, 0) || half_prefix(s, 1);
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* Channels a conv or block at index i writes, from its weight's shape; -1 when malformed. */
static int out_channels(const st_set *s, const char *prefix, const char *fmt, int i)
{
    const st_tensor *t = find_at(s, prefix, fmt, i);
    return t && t->nd == 4 && t->shape[0] >= 1 && t->shape[0] <= 65536 ? (int)t->shape[0] : -1;
}

/* Fill net from the layer table, channels flowing from cin; every tensor checked by the tables. */
static dit_status load_net(wt_loader *L, ta_net *net, const char *kinds, int cin, int *dims, dit_err *e)
{
    const st_set *s = L->set;
    net->kinds = kinds;
    net->n = (int)strlen(kinds);
    int c = cin;
    for (int i = 0; i < net->n; i++) {
        ta_layer *ly = &net->layer[i];
        ly->kind = kinds[i], ly->cin = c;
        dit_status r = DIT_OK;
        const char k = ly->kind;
        if (k == 'C' || k == 'c' || k == 'S' || k == 'B') {
            const char *fmt = k == 'B' ? "%d.conv.0.weight" : "%d.weight";
            const int co = out_channels(s, L->prefix, fmt, i);
            if (co < 0) {
                char name[64];
                snprintf(name, sizeof name, fmt, i);
                return err_set(e, DIT_E_SHAPE, "%s: missing or malformed tensor '%s%s' (layer %d of %s: %s)", st_set_path(s),
                               L->prefix, name, i, kinds == ENC_LAYERS ? "the encoder" : "the decoder",
                               k == 'B' ? "a Block" : "a 3x3 convolution");
            }
            dims[CIN] = c, dims[COUT] = co;
            ly->cout = co;
            if (k == 'B') {
                r = wt_load(L, ly, BLOCK, N_ELEMS(BLOCK), i, 0);
                if (!r && c != co) r = wt_load(L, ly, SKIP, N_ELEMS(SKIP), i, 0);
                const st_tensor *p0 = find_at(s, L->prefix, "%d.pool.0.weight", i);
                if (!r && p0) {
                    ly->pool_c = p0->nd == 4 ? (int)p0->shape[0] : 0;
                    if (ly->pool_c < TA_POOL_GROUPS || ly->pool_c % TA_POOL_GROUPS)
                        return err_set(e, DIT_E_SHAPE, "%s: tensor '%s' must be [%d*k, %d, 1, 1] (GroupNorm of %d groups)",
                                       st_set_path(s), p0->name, TA_POOL_GROUPS, c, TA_POOL_GROUPS);
                    dims[CPOOL] = ly->pool_c;
                    r = wt_load(L, ly, POOL, N_ELEMS(POOL), i, 0);
                }
            } else {
                r = wt_load(L, ly, CONV_W, N_ELEMS(CONV_W), i, 0);
                if (!r && k == 'C') r = wt_load(L, ly, CONV_B, N_ELEMS(CONV_B), i, 0);
            }
            c = co;
        }
        ly->cout = c;
        if (r) return r;
    }
    return DIT_OK;
}

/* ---- random weights (vae_synth) ---------------------------------------------------------------- */

#define TA_WIDTH 64 /* channels of every layer in taesd.py */

dit_status vae__taesd_synth(const vae_synth_cfg *c, const char *path, dit_err *e)
{
    if (c->z < 1 || c->z > 4096 || (!c->encoder && !c->decoder))
        return err_set(e, DIT_E_ARG, "vae: synth taesd: z %d (1-4096) and at least one half", c->z);
    vae__synth s;
    int dims[N_SYMS] = { 0 };
    dit_status r = vae__synth_begin(&s, c->dtype, c->seed, e);
    for (int half = 0; half < 2 && !r; half++) {
        if (!(half ? c->decoder : c->encoder)) continue;
        const char *kinds = half ? DEC_LAYERS : ENC_LAYERS, *prefix = half ? "decoder." : "encoder.";
        const int n = (int)strlen(kinds);
        int ch = half ? c->z : 3, resampled = 0;
        for (int i = 0; i < n; i++) {
            const char k = kinds[i];
            resampled += k == 'S' || k == 'U';
            const int out = i == n - 1 ? (half ? 3 : c->z) : TA_WIDTH;
            dims[CIN] = ch, dims[COUT] = out;
            if (k == 'B') {
                vae__synth_spec(&s, prefix, BLOCK, N_ELEMS(BLOCK), dims, 0, i);
                /* TAEF2: pool branches in the blocks at the lowest resolution (encoder 11-13, decoder 3-5) */
                if (c->pool && resampled == (half ? 0 : 3)) {
                    dims[CPOOL] = 4 * ch;
                    vae__synth_spec(&s, prefix, POOL, N_ELEMS(POOL), dims, 0, i);
                }
            } else if (k == 'C' || k == 'c' || k == 'S') {
                vae__synth_spec(&s, prefix, CONV_W, N_ELEMS(CONV_W), dims, 0, i);
                if (k == 'C') vae__synth_spec(&s, prefix, CONV_B, N_ELEMS(CONV_B), dims, 0, i);
            }
            if (k == 'B' || k == 'C' || k == 'c' || k == 'S') ch = out;
        }
        r = s.err;
    }
    char desc[128];
    snprintf(desc, sizeof desc, "random TAESD (dit vae synth): z %d%s, seed %llu", c->z, c->pool ? ", pool blocks" : "",
             (unsigned long long)c->seed);
    const dit_status w = vae__synth_end(&s, path, desc);
    return r ? r : w;
}

static void taesd_free(vae *v);
static dit_status taesd_decode(vae *v, const float *z, int zh, int zw, float *img, const hook_list *taps, dit_err *e);
static dit_status taesd_encode(vae *v, const float *img, int h, int w, float *z, const hook_list *taps, dit_err *e);
static size_t taesd_run_bytes(const vae *v, int dir, int zh, int zw, size_t *scratch);

static const vae_ops TAESD_OPS = { "taesd", taesd_decode, taesd_encode, taesd_run_bytes, taesd_free };

/* The file holding the other half: "decoder" <-> "encoder" swapped (last occurrence in the file
 * name), when such a file exists. */
static int sibling(const char *path, int want_enc, char *buf, size_t cap)
{
    const char *from = want_enc ? "decoder" : "encoder", *to = want_enc ? "encoder" : "decoder";
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *hit = NULL;
    for (const char *p = strstr(base, from); p; p = strstr(p + 1, from)) hit = p;
    if (!hit) return 0;
    snprintf(buf, cap, "%.*s%s%s", (int)(hit - path), path, to, hit + strlen(from));
    struct stat st;
    return !stat(buf, &st) && S_ISREG(st.st_mode);
}

/* Open the file(s) of spec into m->set[0] (encoder) and m->set[1] (decoder). */
static dit_status open_files(vae_taesd *m, const char *spec, const char **prefix, dit_err *e)
{
    char first[4096], other[4096];
    const char *comma = strchr(spec, ',');
    if (comma) { /* ENCODER,DECODER */
        snprintf(first, sizeof first, "%.*s", (int)(comma - spec), spec);
        dit_status r = st_set_open(&m->set[0], first, e);
        if (!r) r = st_set_open(&m->set[1], comma + 1, e);
        if (r) return r;
        if (!(prefix[0] = half_prefix(m->set[0], 1)))
            return err_set(e, DIT_E_FORMAT, "%s: not a TAESD encoder (no 0.weight and 1.conv.0.weight)", first);
        if (!(prefix[1] = half_prefix(m->set[1], 0)))
            return err_set(e, DIT_E_FORMAT, "%s: not a TAESD decoder (no 1.weight and 3.conv.0.weight)", comma + 1);
        return DIT_OK;
    }
    st_set *s;
    dit_status r = st_set_open(&s, spec, e);
    if (r) return r;
    const char *pe = half_prefix(s, 1), *pd = half_prefix(s, 0);
    if (!pe && !pd) {
        st_set_close(s);
        return err_set(e, DIT_E_FORMAT, "%s: not a TAESD encoder or decoder (no 0.weight/1.conv.0.weight or 1.weight/3.conv.0.weight)",
                       spec);
    }
    if (pe && pd) { /* one file with both halves: open it twice (each set is read-only) */
        m->set[0] = s, prefix[0] = pe, prefix[1] = pd;
        return st_set_open(&m->set[1], spec, e);
    }
    const int have = pe ? 0 : 1; /* the half this file holds */
    m->set[have] = s, prefix[have] = have ? pd : pe;
    if (sibling(spec, have, other, sizeof other)) { /* have = 1 (a decoder): want the encoder */
        if ((r = st_set_open(&m->set[!have], other, e))) return r;
        if (!(prefix[!have] = half_prefix(m->set[!have], have)))
            return err_set(e, DIT_E_FORMAT, "%s: not a TAESD %s, though named like one", other, have ? "encoder" : "decoder");
    }
    return DIT_OK;
}

dit_status vae__taesd_open(vae **out, const char *path, const vae_opts *o, dit_err *e)
{
    *out = NULL;
    vae_taesd *m = calloc(1, sizeof *m);
    if (!m) return err_set(e, DIT_E_OOM, "vae: out of memory");
    vae *v = &m->base;
    const char *prefix[2] = { NULL, NULL };
    dit_status r = vae__init(v, &TAESD_OPS, o, e);
    /* The fast path runs TAESD's convolutions in f32: its 64-channel layers gain only ~1.3x from
     * bf16 (TAEF2 1024^2 decode 2.2 s vs 2.9 s) and lose three orders of accuracy (decoded image
     * 1.7-1.9e-2 of its maximum after 20 bf16 layers, against ~1e-6 in f32). */
    if (v->prec == OPS_BF16) v->prec = OPS_F32;
    if (!r) r = open_files(m, path, prefix, e);
    /* latent channels: the decoder's first conv input (checked against the encoder's output below) */
    int z = 0;
    if (!r && m->set[1]) {
        const st_tensor *t = find_at(m->set[1], prefix[1], "%d.weight", 1);
        z = t->nd == 4 && t->shape[1] >= 1 && t->shape[1] <= 4096 ? (int)t->shape[1] : 0;
        if (!z) r = err_set(e, DIT_E_SHAPE, "%s: tensor '%s' is not a convolution weight", st_set_path(m->set[1]), t->name);
    }
    int dims[N_SYMS] = { 0 };
    for (int half = 0; half < 2 && !r; half++) {
        if (!m->set[half]) continue;
        wt_loader L;
        r = wt_loader_init(&L, m->set[half], prefix[half], 0, v->ctx, v->prec, &m->store, dims, e);
        if (!r) r = load_net(&L, half ? &m->dec : &m->enc, half ? DEC_LAYERS : ENC_LAYERS, half ? z : 3, dims, e);
        if (!r) r = wt_loader_finish(&L);
        wt_loader_free(&L);
    }
    if (!r && m->enc.n) {
        const int ze = m->enc.layer[m->enc.n - 1].cout;
        if (z && ze != z)
            r = err_set(e, DIT_E_SHAPE, "%s: the encoder gives %d latent channels (tensor '%s%d.weight'), the decoder takes %d",
                        st_set_path(m->set[0]), ze, prefix[0], m->enc.n - 1, z);
        z = ze;
    }
    if (!r && m->dec.n && m->dec.layer[m->dec.n - 1].cout != 3)
        r = err_set(e, DIT_E_SHAPE, "%s: the decoder ends in %d channels, not 3", st_set_path(m->set[1]), m->dec.layer[m->dec.n - 1].cout);
    if (r) {
        taesd_free(v);
        return r;
    }
    v->z_channels = z;
    v->can_encode = m->enc.n > 0, v->can_decode = m->dec.n > 0;
    v->scale = 8; /* three stride-2 convs / three upsamples in the tables */
    v->img_scale = 1, v->img_offset = 0; /* images in [0, 1]; latents raw (shift 0, scaling 1) */
    int pool = 0;
    for (int i = 0; i < m->dec.n; i++) pool |= m->dec.layer[i].pool_c > 0;
    for (int i = 0; i < m->enc.n; i++) pool |= m->enc.layer[i].pool_c > 0;
    snprintf(v->desc, sizeof v->desc, "TAESD (%s), %d latent channels%s, %s%s; latent raw, image [0, 1]",
             z == 4 ? "taesd/taesdxl" : z == 16 ? "taesd3/taef1" : pool ? "taef2" : "tiny autoencoder", z,
             pool ? ", GroupNorm pool blocks" : "", v->can_encode ? "encoder" : "",
             v->can_encode && v->can_decode ? "+decoder" : v->can_decode ? "decoder" : "");
    *out = v;
    return DIT_OK;
}

static void taesd_free(vae *v)
{
    vae_taesd *m = (vae_taesd *)v;
    wt_store_free(&m->store);
    st_set_close(m->set[0]);
    st_set_close(m->set[1]);
    vae__release(v);
    free(m);
}

/* ---- run state -------------------------------------------------------------------------------- */

typedef struct {
    float *x, *t, *u; /* [largest activation] */
    float *p;         /* pool branch [largest pool activation] */
} ta_bufs;

/* Largest activation (and pool activation) of net run from an h x w input of c channels. */
static void largest(const ta_net *net, int c, int h, int w, size_t *big, size_t *pool)
{
    *big = (size_t)c * h * w, *pool = 0;
    for (int i = 0; i < net->n; i++) {
        const ta_layer *ly = &net->layer[i];
        if (ly->kind == 'S') h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1;
        if (ly->kind == 'U') h *= 2, w *= 2;
        const size_t cells = (size_t)h * w, c_max = (size_t)(ly->cin > ly->cout ? ly->cin : ly->cout);
        if (c_max * cells > *big) *big = c_max * cells;
        if ((size_t)ly->pool_c * cells > *pool) *pool = (size_t)ly->pool_c * cells;
    }
}

static void ta_plan(arena *a, const vae_taesd *m, int dir, int zh, int zw, ta_bufs *b, size_t *big_out)
{
    size_t big, pool;
    if (dir == VAE_DECODE) largest(&m->dec, m->base.z_channels, zh, zw, &big, &pool);
    else largest(&m->enc, 3, zh * m->base.scale, zw * m->base.scale, &big, &pool);
    b->x = arena_alloc(a, sizeof(float) * big);
    b->t = arena_alloc(a, sizeof(float) * big);
    b->u = arena_alloc(a, sizeof(float) * big);
    b->p = arena_alloc(a, sizeof(float) * (pool ? pool : 1));
    if (big_out) *big_out = big;
}

static size_t taesd_run_bytes(const vae *v, int dir, int zh, int zw, size_t *scratch)
{
    arena a = arena_measure();
    ta_bufs b;
    size_t big;
    ta_plan(&a, (const vae_taesd *)v, dir, zh, zw, &b, &big);
    *scratch = v->prec == OPS_REF ? 0 : big * ((v->prec == OPS_BF16 ? 2 : 4) + 4);
    return a.used;
}

/* ---- forward ---------------------------------------------------------------------------------- */

#define TRY(x)                                                                                                 \
    do {                                                                                                       \
        const dit_status r_ = (x);                                                                             \
        if (r_) return r_;                                                                                     \
    } while (0)

/* Block: x [cin, H, W] -> [cout, H, W] in *x (*x and *t exchanged). */
static dit_status block(vae *v, const char *name, const ta_layer *ly, const ta_bufs *b, float **x, float **t, int H,
                        int W, dit_err *e)
{
    const size_t n = (size_t)H * W;
    if (ly->pool_c) { /* x = x + pool.3(relu(GroupNorm(pool.0(x)))) */
        TRY(vae__conv_same(v, name, b->p, *x, ly->cin, H, W, &ly->p0, NULL, e));
        vae__groupnorm(v, b->p, b->p, ly->gn_w, ly->gn_b, ly->pool_c, H, W, TA_POOL_GROUPS, TA_POOL_EPS);
        vae__relu(b->p, ly->pool_c * n);
        TRY(vae__conv_same(v, name, *t, b->p, ly->pool_c, H, W, &ly->p3, NULL, e));
        vae__add(*x, *t, ly->cin * n);
    }
    TRY(vae__conv_same(v, name, *t, *x, ly->cin, H, W, &ly->c0, ly->b0, e));
    vae__relu(*t, ly->cout * n);
    TRY(vae__conv_same(v, name, b->u, *t, ly->cout, H, W, &ly->c2, ly->b2, e));
    vae__relu(b->u, ly->cout * n);
    TRY(vae__conv_same(v, name, *t, b->u, ly->cout, H, W, &ly->c4, ly->b4, e));
    if (ly->skip.data) {
        TRY(vae__conv_same(v, name, b->u, *x, ly->cin, H, W, &ly->skip, NULL, e));
        vae__add(*t, b->u, ly->cout * n);
    } else {
        vae__add(*t, *x, ly->cout * n);
    }
    vae__relu(*t, ly->cout * n);
    float *s = *x;
    *x = *t, *t = s;
    return DIT_OK;
}

/* in [c, H, W] through every layer of net -> out [cout, H', W']; taps "dec.<index>_<kind>" (or enc.). */
static dit_status forward(vae *v, const ta_net *net, int dir, const float *in, int c, int H, int W, float *out,
                          const hook_list *taps, dit_err *e)
{
    const int dec = dir == VAE_DECODE;
    const char *side = dec ? "dec" : "enc";
    ta_bufs b;
    ta_plan(&v->run, (const vae_taesd *)v, dir, dec ? H : H / v->scale, dec ? W : W / v->scale, &b, NULL);
    if (!b.p) return err_set(e, DIT_E_OOM, "vae: run state was not reserved for a %dx%d input", W, H);
    float *x = b.x, *t = b.t;
    memcpy(x, in, sizeof(float) * (size_t)c * H * W);
    for (int i = 0; i < net->n; i++) {
        const ta_layer *ly = &net->layer[i];
        const size_t n = (size_t)ly->cin * H * W;
        char name[64];
        const char *what = "conv2d"; /* tap names: index and the lowercased class name of taesd.py */
        switch (ly->kind) {
        case 'T': /* Clamp: tanh(x / 3) * 3 */
            what = "clamp";
#pragma omp parallel for schedule(static)
            for (size_t k = 0; k < n; k++) x[k] = tanhf(x[k] / 3.0f) * 3.0f;
            break;
        case 'R':
            what = "relu";
            vae__relu(x, n);
            break;
        case 'U':
            what = "upsample";
            ops_upsample_nearest(t, x, ly->cin, H, W, 2);
            H *= 2, W *= 2;
            break;
        case 'B':
            what = "block";
            snprintf(name, sizeof name, "%s.%d_block", side, i);
            TRY(block(v, name, ly, &b, &x, &t, H, W, e));
            break;
        default: { /* C, c, S */
            const int s = ly->kind == 'S' ? 2 : 1;
            snprintf(name, sizeof name, "%s.%d_conv", side, i);
            TRY(vae__conv(v, name, t, x, ly->cin, H, W, &ly->w, ly->b, s, 1, 1, 1, 1, e));
            H = (H - 1) / s + 1, W = (W - 1) / s + 1; /* (H + 2 - 3) / s + 1 */
        }
        }
        if (ly->kind == 'U' || ly->kind == 'C' || ly->kind == 'c' || ly->kind == 'S') {
            float *s = x;
            x = t, t = s;
        }
        snprintf(name, sizeof name, "%s.%d_%s", side, i, what);
        vae__tap(taps, name, x, ly->cout, H, W);
    }
    memcpy(out, x, sizeof(float) * (size_t)net->layer[net->n - 1].cout * H * W);
    return DIT_OK;
}

/* z [z_channels, zh, zw] -> img [3, 8 zh, 8 zw] in [0, 1] (unclamped). taesd.py Decoder. */
static dit_status taesd_decode(vae *v, const float *z, int zh, int zw, float *img, const hook_list *taps, dit_err *e)
{
    return forward(v, &((const vae_taesd *)v)->dec, VAE_DECODE, z, v->z_channels, zh, zw, img, taps, e);
}

/* img [3, h, w] in [0, 1] -> z [z_channels, h/8, w/8]. taesd.py Encoder. */
static dit_status taesd_encode(vae *v, const float *img, int h, int w, float *z, const hook_list *taps, dit_err *e)
{
    return forward(v, &((const vae_taesd *)v)->enc, VAE_ENCODE, img, 3, h, w, z, taps, e);
}
