/* dit/dit.h — diffusion-transformer forward passes: FLUX.1 (schnell, dev), SD3 / SD3.5 MM-DiT
 * (medium, MMDiT-X medium, large) and class-conditional DiT / SiT, identical to the reference code
 * (golden README sections 4-7).
 *
 *   dit_model *m; dit_err e = {0};
 *   dit_load_opts o = dit_load_defaults();               // o.prec = OPS_BF16 (fast) or OPS_F32
 *   if (dit_load(&m, "flux1-dev.safetensors", &o, &e)) { fprintf(stderr, "%s\n", e.msg); ... }
 *   dit_state *s = dit_state_new(m, 128, 128, 512, &e);  // largest latent H x W and text length
 *   dit_input in = { .batch = 1, .H = 128, .W = 128, .x = latent, .t = &sigma,
 *                    .context = txt, .n_ctx = 512, .pooled = vec, .guidance = &g };
 *   dit_forward(m, s, &in, v, &e);                       // v: [batch, out_ch, H, W]
 *   dit_state_free(s); dit_free(m);
 *
 * The model is immutable after loading (weights mmapped; linears packed to bf16 or converted to
 * f32 once) and may be shared by several states. A state owns every activation of one forward,
 * sized once. dit_forward allocates none of its own; the first forward at a given size (token
 * count) makes oneDNN primitives and grows the kernels' conversion scratch on the state's ops
 * context, later ones at that size allocate nothing. Token order inside joint attention is
 * [TEXT | IMAGE].
 * Guidance reaches inside through in->hooks (core/hooks.h); the model never names a method.
 */
#ifndef DIT_DIT_DIT_H
#define DIT_DIT_DIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/hooks.h"
#include "core/ops.h"
#include "core/wtable.h"

typedef enum { DIT_FLUX = 0, DIT_SD3, DIT_DIT, DIT_SIT, DIT_FAMILY_COUNT } dit_family;
const char *dit_family_name(dit_family f);

#define DIT_MAX_BLOCKS 128

/* Everything the forward needs to know about a model; derived from tensor names and shapes,
 * completed by metadata / config.json / load options where the weights cannot tell. */
typedef struct {
    dit_family family;
    char variant[32];      /* "flux-schnell", "flux-dev", "sd3-medium", "sd3.5-medium", "sd3.5-large",
                              "sd3" (other geometry), "dit", "sit" */
    int naming;            /* 0 released checkpoint names, 1 diffusers */
    int hidden, heads, head_dim, mlp;
    int depth;             /* FLUX double blocks, SD3 joint blocks, DiT blocks */
    int depth_single;      /* FLUX single blocks */
    int in_ch;             /* latent channels C */
    int patch;             /* p: FLUX packs 2x2 (feature ch*4 + ph*2 + pw), SD3/DiT a p x p conv */
    int out_ch;            /* channels the forward returns (DiT learn_sigma: 2C; SiT: C) */
    int final_ch;          /* channels of the final linear per patch pixel (DiT/SiT learn_sigma: 2C) */
    int ctx_dim, vec_dim;  /* text token width, pooled width (SD3 adm, FLUX vec_in) */
    int guidance_embed;    /* FLUX-dev */
    int axes_dim[3];       /* FLUX RoPE dims per axis (sum = head_dim) */
    float theta;           /* FLUX RoPE base */
    int pos_max;           /* SD3 pos_embed grid side M; DiT/SiT: the fixed token grid side */
    int qk_norm;           /* SD3: RMSNorm on q and k (SD3.5); always on in FLUX */
    unsigned char attn2[DIT_MAX_BLOCKS]; /* SD3.5 MMDiT-X: block has x_block.attn2 */
    int n_attn2;
    int num_classes;       /* DiT/SiT; label num_classes is the null class */
} dit_config;

/* How to load. Fields the weights cannot tell default to the released models' values. */
typedef struct {
    ops_prec prec;         /* OPS_BF16 (default: packed bf16 weights, AMX), OPS_F32, OPS_REF */
    int heads;             /* DiT/SiT heads (not in the weights; default 16 = XL/2); SD3 default hidden/64 */
    int axes_dim[3];       /* FLUX RoPE split of head_dim (default [16,56,56] for head_dim 128,
                              else from metadata/config.json, else an error) */
    int family;            /* -1 auto; DIT_SIT to read a DiT-layout file as SiT */
} dit_load_opts;
dit_load_opts dit_load_defaults(void);

typedef struct dit_model dit_model;

/* path: a .safetensors file (released single file; SD3 single files may also hold VAE and text
 * encoders under other prefixes), a *.safetensors.index.json, or a diffusers folder (the model
 * folder or its transformer/ subfolder). On failure *out is NULL and e names the file and problem. */
dit_status dit_load(dit_model **out, const char *path, const dit_load_opts *o, dit_err *e);
void dit_free(dit_model *m);
const dit_config *dit_model_config(const dit_model *m);
ops_prec dit_model_prec(const dit_model *m);
size_t dit_model_bytes(const dit_model *m); /* converted/packed weights held (not the map) */
/* One line describing the model ("sd3.5-medium: 24 joint blocks, hidden 1536, ..."). */
void dit_config_describe(const dit_config *c, char *buf, size_t cap);
/* The weights file a path names: path itself, or for a diffusers folder its
 * transformer/diffusion_pytorch_model.safetensors (or .index.json). */
dit_status dit_resolve_path(const char *path, char *file, size_t cap, dit_err *e);
/* Detect family and configuration of a file without preparing weights (for `dit inspect`). */
dit_status dit_probe(const char *path, const dit_load_opts *o, dit_config *out, dit_err *e);

/* Every tensor a model of configuration c holds in the released single-file layout (SD3 under
 * the model.diffusion_model. prefix), with its shape, from the same tables the loader reads:
 * fn(user, name, nd, shape). For writing files the loader accepts (tools/synth.c). */
void dit_enumerate(const dit_config *c, wt_visit fn, void *user);

typedef struct dit_state dit_state;

/* Run state for latents up to max_h x max_w (latent pixels) and up to max_ctx text tokens. */
dit_state *dit_state_new(const dit_model *m, int max_h, int max_w, int max_ctx, dit_err *e);
void dit_state_free(dit_state *s);
size_t dit_state_bytes(const dit_state *s);

/* Bytes a model of configuration c takes at precision p (its prepared weights: bf16 packed or f32;
 * the mapped file's pages are not counted, they stay clean and reclaimable) plus one state for a
 * max_h x max_w latent and max_ctx text tokens, without loading anything: for memory budgets
 * decided before the heavy work (dit generate --max-memory). */
size_t dit_memory_estimate(const dit_config *c, ops_prec p, int max_h, int max_w, int max_ctx);

typedef struct {
    int batch;             /* samples; the forward runs them one after another */
    int H, W;              /* latent size (multiples of the patch size) */
    const float *x;        /* [batch, in_ch, H, W] */
    const float *t;        /* [batch]: FLUX sigma in [0,1]; SD3 1000 sigma; DiT step 0..999; SiT t (1 = data) */
    const float *context;  /* [batch, n_ctx, ctx_dim] (FLUX, SD3) */
    int n_ctx;
    const float *pooled;   /* [batch, vec_dim] (FLUX, SD3) */
    const float *guidance; /* [batch] (FLUX-dev) */
    const int *labels;     /* [batch] (DiT/SiT; num_classes = unconditional) */
    hook_list hooks;       /* empty = plain forward */
} dit_input;

/* Where the last dit_forward spent its time (wall seconds) and the work it did. matmul: every
 * linear (embeddings, modulations, qkv, projections, MLPs); attention: the attention kernels (and
 * whatever hooks do at that site); the rest: norms, activations, residuals, RoPE, layouts. */
typedef struct {
    double seconds, matmul_s, attn_s;
    double matmul_flop, attn_flop; /* 2 M K N per linear; 4 n_q n_kv head_dim heads per attention */
} dit_profile;
const dit_profile *dit_state_profile(const dit_state *s);

/* v: [batch, out_ch, H, W], the model's prediction (FLUX/SD3 velocity, DiT eps ++ variance,
 * SiT velocity toward data). */
dit_status dit_forward(const dit_model *m, dit_state *s, const dit_input *in, float *v, dit_err *e);

#endif
