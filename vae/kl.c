/* vae/kl.c — AutoencoderKL, the VAE of FLUX.1 and SD3/SD3.5 (golden README vae/).
 * Mirrors black-forest-labs/flux src/flux/modules/autoencoder.py Encoder/Decoder (sd3.5 sd3_impls.py
 * VAEEncoder/VAEDecoder compute the same): no quant_conv, the posterior mean as the latent.
 *
 *   ResnetBlock  h = conv1(silu(norm1(x))); h = conv2(silu(norm2(h))); out = shortcut(x) + h
 *                (shortcut: 1x1 conv when channels change, else identity)
 *   AttnBlock    single head over C channels, tokens = H*W pixels row-major:
 *                x + proj_out(softmax(q k^T / sqrt(C)) v), q, k, v from norm(x)
 *   Encoder      conv_in, levels 0..n-1 (num_res blocks, then a Downsample but on the last level),
 *                mid (block_1, attn_1, block_2), silu(norm_out), conv_out -> moments (mean ++ logvar)
 *   Downsample   zero pad right and bottom by 1, conv 3x3 stride 2 pad 0
 *   Decoder      conv_in, mid, levels n-1..0 (num_res + 1 blocks, then nearest x2 + conv 3x3 but on
 *                level 0), silu(norm_out), conv_out. decoder.up.0 is the full resolution, run last.
 *   GroupNorm    32 groups, eps 1e-6, affine.
 *
 * The configuration (channels per level, levels, res blocks, z channels) comes from the tensor
 * shapes; every name, in both namings, is in the tables below.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "core/json.h"
#include "core/wtable.h"
#include "vae/vae_impl.h"

#define KL_MAX_LEVELS 8
#define KL_MAX_BLOCKS 8
#define KL_GROUPS 32
#define KL_EPS 1e-6f

/* ---- weights ---------------------------------------------------------------------------------- */

typedef struct {
    tensor w; /* [out, in, k, k], in the path's dtype */
    float *b; /* [out] */
} kl_conv;

typedef struct {
    float *w, *b; /* [C] */
} kl_norm;

typedef struct {
    int cin, cout;
    kl_norm norm1, norm2;            /* [cin], [cout] */
    kl_conv conv1, conv2, shortcut;  /* 3x3 cout <- cin, 3x3 cout <- cout, 1x1 cout <- cin (w.data NULL
                                        when cin == cout) */
} kl_resnet;

typedef struct {
    kl_norm norm;            /* [C] */
    wt_lin q, k, v, proj;    /* [C, C] each */
} kl_attn;

typedef struct {
    kl_resnet block[KL_MAX_BLOCKS];
    kl_conv resample;        /* encoder: downsample conv (levels 0..n-2); decoder: upsample conv (levels 1..n-1) */
} kl_level;

typedef struct {
    kl_conv conv_in, conv_out;
    kl_level level[KL_MAX_LEVELS];
    kl_resnet mid1, mid2;
    kl_attn attn;
    kl_norm norm_out;
} kl_half;

/* The configuration, derived from the tensor shapes. */
typedef struct {
    int n_levels, n_res;     /* levels (ch_mult entries); res blocks per encoder level (decoder: + 1) */
    int ch[KL_MAX_LEVELS];   /* channels of each level (ch * ch_mult[l]) */
    int z;                   /* latent channels */
} kl_cfg;

typedef struct {
    vae base; /* must be first */
    st_set *set;
    wt_store store;
    int n_levels, n_res, ch[KL_MAX_LEVELS]; /* as kl_cfg */
    int ch_in; /* encoder.conv_in's output: the base ch; level 0 then goes to ch * ch_mult[0] */
    kl_half enc, dec;
} vae_kl;

/* ---- names: the two namings of every module -------------------------------------------------- */

enum { NAMING_LDM = 0, NAMING_DIFFUSERS = 1 };

/* Module paths, printf formats with (level, block). LDM = FLUX ae.safetensors and SD3's
 * first_stage_model.; diffusers = AutoencoderKL (convert_vae_pt_to_diffusers). Diffusers numbers
 * the decoder's levels from the lowest resolution: up_blocks.i is LDM up.{n-1-i} (REVERSED). */
enum {
    P_ENC_CONV_IN, P_ENC_BLOCK, P_ENC_DOWN, P_ENC_MID1, P_ENC_ATTN, P_ENC_MID2, P_ENC_NORM_OUT, P_ENC_CONV_OUT,
    P_DEC_CONV_IN, P_DEC_MID1, P_DEC_ATTN, P_DEC_MID2, P_DEC_BLOCK, P_DEC_UP, P_DEC_NORM_OUT, P_DEC_CONV_OUT,
    P_COUNT
};
static const char *const PATHS[P_COUNT][WT_NAMINGS] = {
    [P_ENC_CONV_IN] = { "encoder.conv_in", "encoder.conv_in" },
    [P_ENC_BLOCK] = { "encoder.down.%d.block.%d", "encoder.down_blocks.%d.resnets.%d" },
    [P_ENC_DOWN] = { "encoder.down.%d.downsample.conv", "encoder.down_blocks.%d.downsamplers.0.conv" },
    [P_ENC_MID1] = { "encoder.mid.block_1", "encoder.mid_block.resnets.0" },
    [P_ENC_ATTN] = { "encoder.mid.attn_1", "encoder.mid_block.attentions.0" },
    [P_ENC_MID2] = { "encoder.mid.block_2", "encoder.mid_block.resnets.1" },
    [P_ENC_NORM_OUT] = { "encoder.norm_out", "encoder.conv_norm_out" },
    [P_ENC_CONV_OUT] = { "encoder.conv_out", "encoder.conv_out" },
    [P_DEC_CONV_IN] = { "decoder.conv_in", "decoder.conv_in" },
    [P_DEC_MID1] = { "decoder.mid.block_1", "decoder.mid_block.resnets.0" },
    [P_DEC_ATTN] = { "decoder.mid.attn_1", "decoder.mid_block.attentions.0" },
    [P_DEC_MID2] = { "decoder.mid.block_2", "decoder.mid_block.resnets.1" },
    [P_DEC_BLOCK] = { "decoder.up.%d.block.%d", "decoder.up_blocks.%d.resnets.%d" },
    [P_DEC_UP] = { "decoder.up.%d.upsample.conv", "decoder.up_blocks.%d.upsamplers.0.conv" },
    [P_DEC_NORM_OUT] = { "decoder.norm_out", "decoder.conv_norm_out" },
    [P_DEC_CONV_OUT] = { "decoder.conv_out", "decoder.conv_out" },
};
static const unsigned char REVERSED[P_COUNT][WT_NAMINGS] = {
    [P_DEC_BLOCK] = { 0, 1 },
    [P_DEC_UP] = { 0, 1 },
};

/* Prefixes a file may put before the names: FLUX ae.safetensors and diffusers none, SD3/SD3.5
 * single-file checkpoints first_stage_model. */
static const char *const PREFIXES[] = { "", "first_stage_model.", "vae." };

/* Shape symbols: the module being loaded sets them. */
enum { CIN = 1, COUT, N_SYMS };

static const wt_spec CONV[] = { /* 3x3 convolution COUT <- CIN */
    { { "weight", NULL }, offsetof(kl_conv, w), WT_TENSOR, WT_AS_PREC, 4, { WD(1, COUT), WD(1, CIN), WLIT(3), WLIT(3) } },
    { { "bias", NULL }, offsetof(kl_conv, b), WT_VEC, 0, 1, { WD(1, COUT) } },
};
static const wt_spec NORM[] = {
    { { "weight", NULL }, offsetof(kl_norm, w), WT_VEC, 0, 1, { WD(1, CIN) } },
    { { "bias", NULL }, offsetof(kl_norm, b), WT_VEC, 0, 1, { WD(1, CIN) } },
};
static const wt_spec RESNET[] = {
    { { "norm1.weight", NULL }, offsetof(kl_resnet, norm1.w), WT_VEC, 0, 1, { WD(1, CIN) } },
    { { "norm1.bias", NULL }, offsetof(kl_resnet, norm1.b), WT_VEC, 0, 1, { WD(1, CIN) } },
    { { "conv1.weight", NULL }, offsetof(kl_resnet, conv1.w), WT_TENSOR, WT_AS_PREC, 4,
      { WD(1, COUT), WD(1, CIN), WLIT(3), WLIT(3) } },
    { { "conv1.bias", NULL }, offsetof(kl_resnet, conv1.b), WT_VEC, 0, 1, { WD(1, COUT) } },
    { { "norm2.weight", NULL }, offsetof(kl_resnet, norm2.w), WT_VEC, 0, 1, { WD(1, COUT) } },
    { { "norm2.bias", NULL }, offsetof(kl_resnet, norm2.b), WT_VEC, 0, 1, { WD(1, COUT) } },
    { { "conv2.weight", NULL }, offsetof(kl_resnet, conv2.w), WT_TENSOR, WT_AS_PREC, 4,
      { WD(1, COUT), WD(1, COUT), WLIT(3), WLIT(3) } },
    { { "conv2.bias", NULL }, offsetof(kl_resnet, conv2.b), WT_VEC, 0, 1, { WD(1, COUT) } },
};
/* Only when the block changes channels (a file with one elsewhere fails as "unexpected tensor"). */
static const wt_spec SHORTCUT[] = {
    { { "nin_shortcut.weight", "conv_shortcut.weight" }, offsetof(kl_resnet, shortcut.w), WT_TENSOR, WT_AS_PREC, 4,
      { WD(1, COUT), WD(1, CIN), WLIT(1), WLIT(1) } },
    { { "nin_shortcut.bias", "conv_shortcut.bias" }, offsetof(kl_resnet, shortcut.b), WT_VEC, 0, 1, { WD(1, COUT) } },
};
/* q, k, v, proj_out: 1x1 convs [C, C, 1, 1] in LDM files, Linear [C, C] in diffusers (older
 * diffusers: query/key/value/proj_attn); read as linears either way (WT_FLAT). */
static const wt_spec ATTN[] = {
    { { "norm.weight", "group_norm.weight" }, offsetof(kl_attn, norm.w), WT_VEC, 0, 1, { WD(1, CIN) } },
    { { "norm.bias", "group_norm.bias" }, offsetof(kl_attn, norm.b), WT_VEC, 0, 1, { WD(1, CIN) } },
    { { "q", "to_q|query" }, offsetof(kl_attn, q), WT_LINEAR, WT_FLAT, 2, { WD(1, CIN), WD(1, CIN) } },
    { { "k", "to_k|key" }, offsetof(kl_attn, k), WT_LINEAR, WT_FLAT, 2, { WD(1, CIN), WD(1, CIN) } },
    { { "v", "to_v|value" }, offsetof(kl_attn, v), WT_LINEAR, WT_FLAT, 2, { WD(1, CIN), WD(1, CIN) } },
    { { "proj_out", "to_out.0|proj_attn" }, offsetof(kl_attn, proj), WT_LINEAR, WT_FLAT, 2, { WD(1, CIN), WD(1, CIN) } },
};

/* Latent normalisation per family (golden README vae/). */
static const struct {
    const char *name;
    float shift, scaling;
} FAMILIES[] = { { "flux", 0.1159f, 0.3611f },
                { "sd3", 0.0609f, 1.5305f },
                { "sd", 0.0f, 0.18215f }, /* SD 1.x / sd-vae-ft-ema (DiT, SiT: sample.py's 0.18215) */
                { "none", 0.0f, 1.0f } };

/* ---- finding modules -------------------------------------------------------------------------- */

typedef struct {
    const st_set *set;
    const char *prefix;
    int naming, n_levels;
} kl_names;

/* The name of module path p (level l of n_levels, block j) followed by suffix. */
static const char *module_name(char *buf, size_t cap, const kl_names *k, int p, int l, int j, const char *suffix)
{
    const int level = REVERSED[p][k->naming] ? k->n_levels - 1 - l : l;
    char mod[256];
    snprintf(mod, sizeof mod, PATHS[p][k->naming], level, j);
    snprintf(buf, cap, "%s%s%s", k->prefix, mod, suffix);
    return buf;
}

static const st_tensor *find(const kl_names *k, int p, int l, int j, const char *suffix)
{
    char name[512];
    return st_set_find(k->set, module_name(name, sizeof name, k, p, l, j, suffix));
}

/* Prefix and naming of an AutoencoderKL in s: 1 when found. */
static int locate(const st_set *s, kl_names *k)
{
    for (size_t i = 0; i < sizeof PREFIXES / sizeof PREFIXES[0]; i++)
        for (int naming = 0; naming < WT_NAMINGS; naming++) {
            *k = (kl_names){ s, PREFIXES[i], naming, 0 };
            if ((find(k, P_DEC_CONV_IN, 0, 0, ".weight") && find(k, P_DEC_MID1, 0, 0, ".conv1.weight")) ||
                (find(k, P_ENC_CONV_IN, 0, 0, ".weight") && find(k, P_ENC_MID1, 0, 0, ".conv1.weight")))
                return 1;
        }
    return 0;
}

int vae__kl_detect(const st_set *s)
{
    kl_names k;
    return locate(s, &k);
}

/* ---- loading ---------------------------------------------------------------------------------- */

typedef struct {
    wt_loader L;
    kl_names k;
    int dims[N_SYMS];
    char prefix[512];
} kl_load;

/* Every module of one half in forward order with its table and channels: the one description of
 * the architecture, walked to load a file (load_visit) and to write a random one (synth_visit). */
typedef dit_status (*kl_visit)(void *ctx, int p, int l, int j, void *obj, const wt_spec *spec, int n, int cin,
                               int cout);

static dit_status walk_resnet(kl_visit f, void *ctx, int p, int l, int j, kl_resnet *r, int cin, int cout)
{
    r->cin = cin, r->cout = cout;
    dit_status st = f(ctx, p, l, j, r, RESNET, N_ELEMS(RESNET), cin, cout);
    if (!st && cin != cout) st = f(ctx, p, l, j, r, SHORTCUT, N_ELEMS(SHORTCUT), cin, cout);
    return st;
}

static dit_status walk_mid(kl_visit f, void *ctx, kl_half *h, int enc, int C)
{
    dit_status r = walk_resnet(f, ctx, enc ? P_ENC_MID1 : P_DEC_MID1, 0, 0, &h->mid1, C, C);
    if (!r) r = f(ctx, enc ? P_ENC_ATTN : P_DEC_ATTN, 0, 0, &h->attn, ATTN, N_ELEMS(ATTN), C, C);
    if (!r) r = walk_resnet(f, ctx, enc ? P_ENC_MID2 : P_DEC_MID2, 0, 0, &h->mid2, C, C);
    return r;
}

static dit_status walk_encoder(vae_kl *m, kl_visit f, void *ctx)
{
    kl_half *h = &m->enc;
    const int n = m->n_levels, z2 = 2 * m->base.z_channels;
    dit_status r = f(ctx, P_ENC_CONV_IN, 0, 0, &h->conv_in, CONV, N_ELEMS(CONV), 3, m->ch_in);
    for (int l = 0; l < n && !r; l++) {
        for (int j = 0; j < m->n_res && !r; j++)
            r = walk_resnet(f, ctx, P_ENC_BLOCK, l, j, &h->level[l].block[j], j ? m->ch[l] : l ? m->ch[l - 1] : m->ch_in,
                            m->ch[l]);
        if (!r && l < n - 1)
            r = f(ctx, P_ENC_DOWN, l, 0, &h->level[l].resample, CONV, N_ELEMS(CONV), m->ch[l], m->ch[l]);
    }
    if (!r) r = walk_mid(f, ctx, h, 1, m->ch[n - 1]);
    if (!r) r = f(ctx, P_ENC_NORM_OUT, 0, 0, &h->norm_out, NORM, N_ELEMS(NORM), m->ch[n - 1], 0);
    if (!r) r = f(ctx, P_ENC_CONV_OUT, 0, 0, &h->conv_out, CONV, N_ELEMS(CONV), m->ch[n - 1], z2);
    return r;
}

static dit_status walk_decoder(vae_kl *m, kl_visit f, void *ctx)
{
    kl_half *h = &m->dec;
    const int n = m->n_levels, top = m->ch[n - 1];
    dit_status r = f(ctx, P_DEC_CONV_IN, 0, 0, &h->conv_in, CONV, N_ELEMS(CONV), m->base.z_channels, top);
    if (!r) r = walk_mid(f, ctx, h, 0, top);
    for (int l = n - 1; l >= 0 && !r; l--) {
        for (int j = 0; j < m->n_res + 1 && !r; j++)
            r = walk_resnet(f, ctx, P_DEC_BLOCK, l, j, &h->level[l].block[j], j ? m->ch[l] : l == n - 1 ? top : m->ch[l + 1],
                            m->ch[l]);
        if (!r && l > 0) r = f(ctx, P_DEC_UP, l, 0, &h->level[l].resample, CONV, N_ELEMS(CONV), m->ch[l], m->ch[l]);
    }
    if (!r) r = f(ctx, P_DEC_NORM_OUT, 0, 0, &h->norm_out, NORM, N_ELEMS(NORM), m->ch[0], 0);
    if (!r) r = f(ctx, P_DEC_CONV_OUT, 0, 0, &h->conv_out, CONV, N_ELEMS(CONV), m->ch[0], 3);
    return r;
}

/* Load one module (path p, level l, block j) into obj with spec, CIN = cin, COUT = cout. */
static dit_status load_visit(void *ctx, int p, int l, int j, void *obj, const wt_spec *spec, int n, int cin, int cout)
{
    kl_load *ld = ctx;
    ld->dims[CIN] = cin, ld->dims[COUT] = cout;
    module_name(ld->prefix, sizeof ld->prefix, &ld->k, p, l, j, ".");
    ld->L.prefix = ld->prefix;
    const dit_status r = wt_load(&ld->L, obj, spec, n, 0, 0);
    ld->L.prefix = ld->k.prefix;
    return r;
}

/* ---- random weights (vae_synth) ---------------------------------------------------------------- */

typedef struct {
    vae__synth syn;
    kl_names k;
    int dims[N_SYMS];
} kl_synth;

static dit_status synth_visit(void *ctx, int p, int l, int j, void *obj, const wt_spec *spec, int n, int cin, int cout)
{
    (void)obj;
    kl_synth *s = ctx;
    char prefix[512];
    s->dims[CIN] = cin, s->dims[COUT] = cout;
    vae__synth_spec(&s->syn, module_name(prefix, sizeof prefix, &s->k, p, l, j, "."), spec, n, s->dims, s->k.naming, 0);
    return s->syn.err;
}

dit_status vae__kl_synth(const vae_synth_cfg *c, const char *path, dit_err *e)
{
    if (c->n_levels < 1 || c->n_levels > KL_MAX_LEVELS || c->n_res < 1 || c->n_res > KL_MAX_BLOCKS || c->z < 1 ||
        c->z > 4096 || (!c->encoder && !c->decoder))
        return err_set(e, DIT_E_ARG, "vae: synth kl: %d levels, %d res blocks, z %d (1-%d levels, 1-%d blocks, a half)",
                       c->n_levels, c->n_res, c->z, KL_MAX_LEVELS, KL_MAX_BLOCKS);
    for (int l = 0; l < c->n_levels; l++)
        if (c->ch * c->ch_mult[l] < KL_GROUPS || c->ch * c->ch_mult[l] % KL_GROUPS || c->ch * c->ch_mult[l] > 65536)
            return err_set(e, DIT_E_ARG, "vae: synth kl: level %d has %d channels (a positive multiple of %d)", l,
                           c->ch * c->ch_mult[l], KL_GROUPS);
    vae_kl *m = calloc(1, sizeof *m);
    if (!m) return err_set(e, DIT_E_OOM, "vae: out of memory");
    m->n_levels = c->n_levels, m->n_res = c->n_res, m->base.z_channels = c->z;
    for (int l = 0; l < c->n_levels; l++) m->ch[l] = c->ch * c->ch_mult[l];
    m->ch_in = c->ch;
    kl_synth s = { .k = { NULL, "", NAMING_LDM, c->n_levels } };
    dit_status r = vae__synth_begin(&s.syn, c->dtype, c->seed, e);
    if (!r && c->encoder) r = walk_encoder(m, synth_visit, &s);
    if (!r && c->decoder) r = walk_decoder(m, synth_visit, &s);
    char desc[128];
    snprintf(desc, sizeof desc, "random AutoencoderKL (dit vae synth): ch %d, %d levels, %d res blocks, z %d, seed %llu",
             c->ch, c->n_levels, c->n_res, c->z, (unsigned long long)c->seed);
    free(m);
    const dit_status w = vae__synth_end(&s.syn, path, desc);
    return r ? r : w;
}

/* The configuration from the tensor shapes: levels, res blocks, channels per level, z channels. */
static dit_status derive_config(kl_cfg *m, kl_names *k, int enc, dit_err *e)
{
    const char *path = st_set_path(k->set);
    char name[512];
    int n = 0, nres = 0;
    const int blk = enc ? P_ENC_BLOCK : P_DEC_BLOCK;
    /* levels: the level indices present in the file (the same count in either numbering) */
    for (n = 0; n <= KL_MAX_LEVELS; n++) {
        char mod[256];
        snprintf(mod, sizeof mod, PATHS[blk][k->naming], n, 0);
        snprintf(name, sizeof name, "%s%s.conv1.weight", k->prefix, mod);
        if (!st_set_find(k->set, name)) break;
    }
    if (n == 0 || n > KL_MAX_LEVELS)
        return err_set(e, DIT_E_SHAPE, "%s: %s levels under '%s%s' (1 to %d supported)", path, n ? "too many" : "no",
                       k->prefix, enc ? "encoder" : "decoder", KL_MAX_LEVELS);
    k->n_levels = m->n_levels = n;
    for (nres = 0; nres < KL_MAX_BLOCKS + 2 && find(k, blk, 0, nres, ".conv1.weight"); nres++) {}
    if (!enc) nres--; /* the decoder has num_res_blocks + 1 per level */
    if (nres < 1 || nres > KL_MAX_BLOCKS)
        return err_set(e, DIT_E_SHAPE, "%s: %d res blocks per level under '%s%s' (1 to %d supported)", path, nres,
                       k->prefix, enc ? "encoder" : "decoder", KL_MAX_BLOCKS);
    m->n_res = nres;
    for (int l = 0; l < n; l++) {
        const st_tensor *t = find(k, blk, l, 0, ".conv1.weight");
        if (!t || t->nd != 4 || t->shape[0] < 1 || t->shape[0] > 65536)
            return err_set(e, DIT_E_SHAPE, "%s: tensor '%s' is missing or not a convolution weight", path,
                           module_name(name, sizeof name, k, blk, l, 0, ".conv1.weight"));
        m->ch[l] = (int)t->shape[0];
        if (m->ch[l] % KL_GROUPS)
            return err_set(e, DIT_E_SHAPE, "%s: tensor '%s' has %d output channels, not a multiple of the %d GroupNorm groups",
                           path, name, m->ch[l], KL_GROUPS);
    }
    const st_tensor *zt = enc ? find(k, P_ENC_CONV_OUT, 0, 0, ".weight") : find(k, P_DEC_CONV_IN, 0, 0, ".weight");
    if (!zt || zt->nd != 4)
        return err_set(e, DIT_E_SHAPE, "%s: tensor '%s' is missing or not a convolution weight", path,
                       module_name(name, sizeof name, k, enc ? P_ENC_CONV_OUT : P_DEC_CONV_IN, 0, 0, ".weight"));
    const int64_t z = enc ? zt->shape[0] / 2 : zt->shape[1];
    if (z < 1 || z > 4096)
        return err_set(e, DIT_E_SHAPE, "%s: tensor '%s' gives %lld latent channels", path, zt->name, (long long)z);
    m->z = (int)z;
    return DIT_OK;
}

/* Diffusers' vae/config.json next to the weights: scaling_factor and shift_factor (absent or null
 * shift = 0). Returns 1 when read, 0 when absent or without a scaling_factor, -1 when present but
 * broken (e filled). */
static int read_diffusers_config(const char *weights_path, float *shift, float *scaling, dit_err *e)
{
    char path[4096];
    const char *slash = strrchr(weights_path, '/');
    const int dir_len = slash ? (int)(slash - weights_path) : 1;
    snprintf(path, sizeof path, "%.*s/config.json", dir_len, slash ? weights_path : ".");
    cJSON *j = NULL;
    const int got = json_read_file(path, JSON_MAX_CONFIG, &j, e);
    if (got <= 0) return got;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "scaling_factor");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shift_factor");
    const int ok = cJSON_IsNumber(sc) && sc->valuedouble != 0;
    if (ok) *scaling = (float)sc->valuedouble, *shift = cJSON_IsNumber(sh) ? (float)sh->valuedouble : 0.0f;
    cJSON_Delete(j);
    return ok;
}

static void kl_free(vae *v);
static dit_status kl_decode(vae *v, const float *z, int zh, int zw, float *img, const hook_list *taps, dit_err *e);
static dit_status kl_encode(vae *v, const float *img, int h, int w, float *z, const hook_list *taps, dit_err *e);
static size_t kl_run_bytes(const vae *v, int dir, int zh, int zw, size_t *scratch);

static const vae_ops KL_OPS = { "kl", kl_decode, kl_encode, kl_run_bytes, kl_free };

/* A folder: diffusers' diffusion_pytorch_model.safetensors in it or in its vae/. */
static const char *weights_file(const char *path, char *buf, size_t cap)
{
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) return path;
    static const char *const cands[] = { "diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors" };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        snprintf(buf, cap, "%s/%s", path, cands[i]);
        if (!stat(buf, &st)) return buf;
    }
    snprintf(buf, cap, "%s/%s", path, cands[0]);
    return buf;
}

dit_status vae__kl_open(vae **out, const char *path, const vae_opts *o, dit_err *e)
{
    *out = NULL;
    vae_kl *m = calloc(1, sizeof *m);
    if (!m) return err_set(e, DIT_E_OOM, "vae: out of memory");
    vae *v = &m->base;
    dit_status r = vae__init(v, &KL_OPS, o, e);
    char buf[4096];
    const char *file = weights_file(path, buf, sizeof buf);
    if (!r) r = st_set_open(&m->set, file, e);
    kl_load ld = { 0 };
    if (!r && !locate(m->set, &ld.k))
        r = err_set(e, DIT_E_FORMAT, "%s: no AutoencoderKL tensors (looked for encoder.conv_in / decoder.conv_in with mid "
                                     "blocks, as in FLUX ae.safetensors, first_stage_model., diffusers)", file);
    const int enc = !r && find(&ld.k, P_ENC_CONV_IN, 0, 0, ".weight") != NULL;
    const int dec = !r && find(&ld.k, P_DEC_CONV_IN, 0, 0, ".weight") != NULL;
    /* the configuration from either half; with both, they must agree */
    kl_cfg ce = { 0 }, cd = { 0 };
    kl_names kd = ld.k;
    if (!r && enc) r = derive_config(&ce, &ld.k, 1, e);
    if (!r && dec) r = derive_config(&cd, &kd, 0, e);
    if (!r && enc && dec && memcmp(&ce, &cd, sizeof ce))
        r = err_set(e, DIT_E_SHAPE, "%s: the decoder's configuration (%d levels, %d res blocks, z %d) does not match the "
                                    "encoder's (%d levels, %d res blocks, z %d)",
                    file, cd.n_levels, cd.n_res, cd.z, ce.n_levels, ce.n_res, ce.z);
    if (!r) {
        const kl_cfg *c = enc ? &ce : &cd;
        m->n_levels = c->n_levels, m->n_res = c->n_res, v->z_channels = c->z;
        memcpy(m->ch, c->ch, sizeof m->ch);
        ld.k.n_levels = m->n_levels;
        /* the encoder's conv_in gives the base ch, which level 0 widens to ch * ch_mult[0] */
        m->ch_in = m->ch[0];
        const st_tensor *ci = enc ? find(&ld.k, P_ENC_CONV_IN, 0, 0, ".weight") : NULL;
        if (ci && (ci->nd != 4 || ci->shape[0] < KL_GROUPS || ci->shape[0] > 65536 || ci->shape[0] % KL_GROUPS))
            r = err_set(e, DIT_E_SHAPE, "%s: tensor '%s' is not a convolution to a multiple of %d channels", file, ci->name,
                        KL_GROUPS);
        else if (ci) m->ch_in = (int)ci->shape[0];
    }
    /* A KL VAE of at most 64 channels (the embedded model's, tiny test ones) runs its fast path in
     * f32, as TAESD does: such layers gain little from bf16, and the embedded VAE's bf16 decode came
     * within 1.8e-2 of its float64 reference, too near the 2e-2 bound. FLUX/SD3's (128-512) keep bf16. */
    if (!r && v->prec == OPS_BF16) {
        int widest = 0;
        for (int l = 0; l < m->n_levels; l++) widest = m->ch[l] > widest ? m->ch[l] : widest;
        if (widest <= 64) v->prec = OPS_F32;
    }
    if (!r) r = wt_loader_init(&ld.L, m->set, ld.k.prefix, ld.k.naming, v->ctx, v->prec, &m->store, ld.dims, e);
    if (!r && enc) r = walk_encoder(m, load_visit, &ld);
    if (!r && dec) r = walk_decoder(m, load_visit, &ld);
    if (!r) r = wt_loader_finish(&ld.L);
    wt_loader_free(&ld.L);
    if (!r && m->ch[m->n_levels - 1] > OPS_MAX_HEAD_DIM)
        r = err_set(e, DIT_E_UNSUPPORTED, "%s: mid-block attention over %d channels (at most %d supported)", file,
                    m->ch[m->n_levels - 1], OPS_MAX_HEAD_DIM);
    if (r) {
        kl_free(v);
        return r;
    }
    v->can_encode = enc, v->can_decode = dec;
    v->scale = 1 << (m->n_levels - 1);
    v->img_scale = 0.5f, v->img_offset = 0.5f; /* images in [-1, 1] */
    /* latent normalisation: asked for, else diffusers' config.json, else by where the weights are */
    const char *fam = o && o->family ? o->family : NULL;
    const char *source = "";
    int fi = -1, from_config = 0;
    if (!fam && ld.k.naming == NAMING_DIFFUSERS &&
        (from_config = read_diffusers_config(file, &v->shift, &v->scaling, e)) < 0) {
        kl_free(v);
        return e ? e->code : DIT_E_FORMAT;
    }
    /* the file's own metadata (the embedded model, weights/): vae.scaling_factor [, vae.shift_factor] */
    const char *ms = st_set_meta_get(m->set, "vae.scaling_factor"), *mh = st_set_meta_get(m->set, "vae.shift_factor");
    int from_meta = 0;
    if (!fam && !from_config && ms) {
        char *end1, *end2 = NULL;
        const double sc = strtod(ms, &end1), sh = mh ? strtod(mh, &end2) : 0.0;
        if (end1 == ms || *end1 || !(sc > 0 && sc < 1e6) || (mh && (end2 == mh || *end2 || !(fabs(sh) < 1e6)))) {
            kl_free(v);
            return err_set(e, DIT_E_FORMAT, "%s: metadata vae.scaling_factor '%s' / vae.shift_factor '%s' are not numbers",
                           file, ms, mh ? mh : "");
        }
        v->scaling = (float)sc, v->shift = (float)sh, from_meta = 1;
    }
    if (fam) {
        for (int i = 0; i < (int)(sizeof FAMILIES / sizeof FAMILIES[0]); i++)
            if (!strcmp(fam, FAMILIES[i].name)) fi = i;
        if (fi < 0) {
            kl_free(v);
            return err_set(e, DIT_E_ARG, "vae: unknown latent family '%s' (flux, sd3, sd or none)", fam);
        }
    } else if (from_config) {
        source = "from diffusers config.json";
    } else if (from_meta) {
        source = "from the file's metadata";
    } else {
        fi = !strcmp(ld.k.prefix, "first_stage_model.") ? 1 : 0;
        source = fi ? "sd3: first_stage_model. prefix" : "flux: the default without a prefix";
    }
    if (fi >= 0) v->shift = FAMILIES[fi].shift, v->scaling = FAMILIES[fi].scaling;
    char mult[64] = "";
    for (int l = 0; l < m->n_levels; l++)
        snprintf(mult + strlen(mult), sizeof mult - strlen(mult), "%s%g", l ? "," : "", (double)m->ch[l] / m->ch_in);
    snprintf(v->desc, sizeof v->desc, "AutoencoderKL ch %d x [%s], %d res blocks, z %d, %s%s; latent (z - %g) * %g (%s)",
             m->ch_in, mult, m->n_res, v->z_channels, enc ? "encoder" : "", enc && dec ? "+decoder" : dec ? "decoder" : "",
             v->shift, v->scaling, fam ? FAMILIES[fi].name : source);
    *out = v;
    return DIT_OK;
}

static void kl_free(vae *v)
{
    vae_kl *m = (vae_kl *)v;
    wt_store_free(&m->store);
    st_set_close(m->set);
    vae__release(v);
    free(m);
}

/* ---- run state -------------------------------------------------------------------------------- */

typedef struct {
    float *x, *t, *h;        /* [max activation]: current, scratch, scratch */
    float *q, *k, *v, *o;    /* mid attention: [H*W, C] each */
} kl_bufs;

/* Elements of the largest activation of one run over a zh x zw latent (see the header: encoder
 * levels run at full >> l, decoder levels at latent << (n-1-l), each on max(in, out) channels). */
static size_t largest(const vae_kl *m, int dir, int zh, int zw)
{
    const int n = m->n_levels;
    size_t big = (size_t)2 * m->base.z_channels * zh * zw;
    for (int l = 0; l < n; l++) {
        const int cin = dir == VAE_ENCODE ? (l ? m->ch[l - 1] : m->ch_in) : (l == n - 1 ? m->ch[n - 1] : m->ch[l + 1]);
        const int c = cin > m->ch[l] ? cin : m->ch[l];
        const size_t cells = ((size_t)zh << (n - 1 - l)) * ((size_t)zw << (n - 1 - l));
        if ((size_t)c * cells > big) big = (size_t)c * cells;
    }
    return big;
}

static void kl_plan(arena *a, const vae_kl *m, int dir, int zh, int zw, kl_bufs *b)
{
    const size_t big = largest(m, dir, zh, zw), mid = (size_t)m->ch[m->n_levels - 1] * zh * zw;
    b->x = arena_alloc(a, sizeof(float) * big);
    b->t = arena_alloc(a, sizeof(float) * big);
    b->h = arena_alloc(a, sizeof(float) * big);
    b->q = arena_alloc(a, sizeof(float) * mid);
    b->k = arena_alloc(a, sizeof(float) * mid);
    b->v = arena_alloc(a, sizeof(float) * mid);
    b->o = arena_alloc(a, sizeof(float) * mid);
}

static size_t kl_run_bytes(const vae *v, int dir, int zh, int zw, size_t *scratch)
{
    const vae_kl *m = (const vae_kl *)v;
    arena a = arena_measure();
    kl_bufs b;
    kl_plan(&a, m, dir, zh, zw, &b);
    /* oneDNN convolutions reorder input (path dtype) and output (f32) into blocked scratch; the
     * attention keeps bf16 or f32 copies of q, k, v */
    const size_t es = v->prec == OPS_BF16 ? 2 : 4, big = largest(m, dir, zh, zw);
    const size_t mid = (size_t)m->ch[m->n_levels - 1] * zh * zw;
    *scratch = v->prec == OPS_REF ? 0 : big * (es + 4) + 3 * mid * es;
    return a.used;
}

/* ---- forward ---------------------------------------------------------------------------------- */

#define TRY(x)                                                                                                 \
    do {                                                                                                       \
        const dit_status r_ = (x);                                                                             \
        if (r_) return r_;                                                                                     \
    } while (0)

/* silu(GroupNorm(x)); taps the GroupNorm's output under tap (NULL: none). */
static void norm_silu(vae *v, float *y, const float *x, const kl_norm *n, int C, int H, int W, const hook_list *taps,
                      const char *tap)
{
    vae__groupnorm(v, y, x, n->w, n->b, C, H, W, KL_GROUPS, KL_EPS);
    if (tap) vae__tap(taps, tap, y, C, H, W);
    ops_silu(y, y, (size_t)C * H * W);
}

/* x [cin, H, W] -> [cout, H, W]; the result is in *x afterwards (*x and *t exchanged). */
static dit_status resnet(vae *v, const char *name, const kl_resnet *r, float **x, float **t, float *h, int H, int W,
                         dit_err *e)
{
    const int64_t n = (int64_t)H * W;
    norm_silu(v, *t, *x, &r->norm1, r->cin, H, W, NULL, NULL);
    TRY(vae__conv_same(v, name, h, *t, r->cin, H, W, &r->conv1.w, r->conv1.b, e));
    norm_silu(v, h, h, &r->norm2, r->cout, H, W, NULL, NULL);
    TRY(vae__conv_same(v, name, *t, h, r->cout, H, W, &r->conv2.w, r->conv2.b, e));
    if (r->shortcut.w.data) {
        TRY(vae__conv_same(v, name, h, *x, r->cin, H, W, &r->shortcut.w, r->shortcut.b, e));
        vae__add(*t, h, (size_t)(r->cout * n));
    } else {
        vae__add(*t, *x, (size_t)(r->cout * n));
    }
    float *s = *x;
    *x = *t, *t = s;
    return DIT_OK;
}

/* x [C, H, W] += proj_out(attention(q, k, v)) with q, k, v from norm(x), tokens = pixels. */
static dit_status attention(vae *v, const kl_attn *at, float *x, float *t, float *h, const kl_bufs *b, int C, int H,
                            int W, dit_err *e)
{
    const int64_t n = (int64_t)H * W;
    vae__groupnorm(v, t, x, at->norm.w, at->norm.b, C, H, W, KL_GROUPS, KL_EPS);
    vae__transpose(h, t, C, n); /* [n, C]: one row per pixel */
    const wt_lin *lin[3] = { &at->q, &at->k, &at->v };
    float *qkv[3] = { b->q, b->k, b->v };
    for (int i = 0; i < 3; i++)
        if (wt_linear(v->ctx, v->prec, qkv[i], h, n, lin[i])) return err_set(e, ops_ctx_err(v->ctx)->code, "vae: mid attention: %s", ops_ctx_err(v->ctx)->msg);
    const ops_attn a = { .n_q = (int)n, .n_kv = (int)n, .n_heads = 1, .head_dim = C, .q_stride = C, .k_stride = C,
                         .v_stride = C, .o_stride = C, .scale = (float)(1.0 / sqrt((double)C)) };
    if (ops_attention(v->ctx, v->prec, b->o, b->q, b->k, b->v, &a) ||
        wt_linear(v->ctx, v->prec, b->q, b->o, n, &at->proj))
        return err_set(e, ops_ctx_err(v->ctx)->code, "vae: mid attention: %s", ops_ctx_err(v->ctx)->msg);
    vae__transpose(t, b->q, n, C);
    vae__add(x, t, (size_t)(C * n));
    return DIT_OK;
}

/* mid: block_1, attn_1, block_2 on [C, H, W]; taps "<side>.mid.*". */
static dit_status mid(vae *v, const kl_half *hf, const char *side, const kl_bufs *b, float **x, float **t, int C,
                      int H, int W, const hook_list *taps, dit_err *e)
{
    char name[64];
    snprintf(name, sizeof name, "%s.mid.block_1", side);
    TRY(resnet(v, name, &hf->mid1, x, t, b->h, H, W, e));
    vae__tap(taps, name, *x, C, H, W);
    TRY(attention(v, &hf->attn, *x, *t, b->h, b, C, H, W, e));
    snprintf(name, sizeof name, "%s.mid.attn_1", side);
    vae__tap(taps, name, *x, C, H, W);
    snprintf(name, sizeof name, "%s.mid.block_2", side);
    TRY(resnet(v, name, &hf->mid2, x, t, b->h, H, W, e));
    vae__tap(taps, name, *x, C, H, W);
    return DIT_OK;
}

static dit_status run_state(vae *v, int dir, int zh, int zw, kl_bufs *b, dit_err *e)
{
    kl_plan(&v->run, (const vae_kl *)v, dir, zh, zw, b);
    if (!b->o) return err_set(e, DIT_E_OOM, "vae: run state was not reserved for a %dx%d latent", zh, zw);
    return DIT_OK;
}

/* z [z_channels, zh, zw] raw -> img [3, zh*scale, zw*scale] in [-1, 1]. flux Decoder.forward. */
static dit_status kl_decode(vae *v, const float *z, int zh, int zw, float *img, const hook_list *taps, dit_err *e)
{
    const vae_kl *m = (const vae_kl *)v;
    const kl_half *d = &m->dec;
    kl_bufs b;
    TRY(run_state(v, VAE_DECODE, zh, zw, &b, e));
    float *x = b.x, *t = b.t;
    int C = m->ch[m->n_levels - 1], H = zh, W = zw;
    char name[64];
    TRY(vae__conv_same(v, "decoder.conv_in", x, z, v->z_channels, H, W, &d->conv_in.w, d->conv_in.b, e));
    vae__tap(taps, "dec.conv_in", x, C, H, W);
    TRY(mid(v, d, "dec", &b, &x, &t, C, H, W, taps, e));
    for (int l = m->n_levels - 1; l >= 0; l--) {
        for (int j = 0; j < m->n_res + 1; j++) {
            snprintf(name, sizeof name, "dec.up.%d.block.%d", l, j);
            TRY(resnet(v, name, &d->level[l].block[j], &x, &t, b.h, H, W, e));
            C = d->level[l].block[j].cout;
            vae__tap(taps, name, x, C, H, W);
        }
        if (l > 0) { /* nearest x2, then conv 3x3 */
            snprintf(name, sizeof name, "dec.up.%d.upsample", l);
            ops_upsample_nearest(t, x, C, H, W, 2);
            H *= 2, W *= 2;
            TRY(vae__conv_same(v, name, x, t, C, H, W, &d->level[l].resample.w, d->level[l].resample.b, e));
            vae__tap(taps, name, x, C, H, W);
        }
    }
    norm_silu(v, t, x, &d->norm_out, C, H, W, taps, "dec.norm_out");
    TRY(vae__conv_same(v, "decoder.conv_out", img, t, C, H, W, &d->conv_out.w, d->conv_out.b, e));
    vae__tap(taps, "dec.conv_out", img, 3, H, W);
    return DIT_OK;
}

/* img [3, h, w] in [-1, 1] -> z [z_channels, h/scale, w/scale] raw: the posterior mean (flux
 * AutoEncoder.encode with sample_z=False). Taps "moments" [2 z, ...] = mean ++ logvar. */
static dit_status kl_encode(vae *v, const float *img, int h, int w, float *z, const hook_list *taps, dit_err *e)
{
    const vae_kl *m = (const vae_kl *)v;
    const kl_half *d = &m->enc;
    const int n = m->n_levels;
    kl_bufs b;
    TRY(run_state(v, VAE_ENCODE, h / v->scale, w / v->scale, &b, e));
    float *x = b.x, *t = b.t;
    int C = m->ch_in, H = h, W = w;
    char name[64];
    TRY(vae__conv_same(v, "encoder.conv_in", x, img, 3, H, W, &d->conv_in.w, d->conv_in.b, e));
    vae__tap(taps, "enc.conv_in", x, C, H, W);
    for (int l = 0; l < n; l++) {
        for (int j = 0; j < m->n_res; j++) {
            snprintf(name, sizeof name, "enc.down.%d.block.%d", l, j);
            TRY(resnet(v, name, &d->level[l].block[j], &x, &t, b.h, H, W, e));
            C = d->level[l].block[j].cout;
            vae__tap(taps, name, x, C, H, W);
        }
        if (l < n - 1) { /* pad right and bottom by 1, conv 3x3 stride 2 pad 0 */
            snprintf(name, sizeof name, "enc.down.%d.downsample", l);
            TRY(vae__conv(v, name, t, x, C, H, W, &d->level[l].resample.w, d->level[l].resample.b, 2, 0, 0, 1, 1, e));
            H /= 2, W /= 2;
            float *s = x;
            x = t, t = s;
            vae__tap(taps, name, x, C, H, W);
        }
    }
    TRY(mid(v, d, "enc", &b, &x, &t, C, H, W, taps, e));
    norm_silu(v, t, x, &d->norm_out, C, H, W, taps, "enc.norm_out");
    TRY(vae__conv_same(v, "encoder.conv_out", b.h, t, C, H, W, &d->conv_out.w, d->conv_out.b, e));
    vae__tap(taps, "moments", b.h, 2 * v->z_channels, H, W);
    vae__tap(taps, "enc.conv_out", b.h, 2 * v->z_channels, H, W);
    memcpy(z, b.h, sizeof(float) * (size_t)v->z_channels * H * W); /* the mean: channels [0, z) */
    return DIT_OK;
}
