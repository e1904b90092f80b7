/* vae/vae.h — the VAE interface (STYLE.md G10): one struct of function pointers with three kinds
 * behind it, a registry by name and detection from tensor names.
 *
 *   vae_opts o = vae_opts_default();               // bf16 fast path, tiles only when memory asks
 *   vae *v;  dit_err e = {0};
 *   if (vae_open(&v, "ae.safetensors", &o, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
 *   float *img = malloc(sizeof(float) * 3 * (zh * v->scale) * (zw * v->scale));
 *   if (vae_decode(v, z, zh, zw, img, NULL, &e)) ...;  // z: [v->z_channels, zh, zw], as the sampler has it
 *   image im;  vae_to_image(&im, img, zh * v->scale, zw * v->scale, &e);   // 8-bit for img_save_png
 *   vae_free(v);
 *
 * Kinds ("spec" of vae_open):
 *   kl:PATH     AutoencoderKL (golden README vae/): FLUX ae.safetensors, the first_stage_model. part of an
 *               SD3/SD3.5 single-file checkpoint, or a diffusers vae/ folder (its config.json gives the
 *               latent normalisation). Config (channels, levels, res blocks, z) from the tensor shapes.
 *   taesd:PATH  tiny autoencoder (madebyollin/taesd taesd.py): TAESD/TAESDXL (4 latent channels),
 *               TAESD3/TAEF1 (16), TAEF2 (32, GroupNorm "pool" blocks). PATH is the decoder or the
 *               encoder file (the other one is found by swapping "decoder"/"encoder" in its name), both
 *               as "ENCODER,DECODER", or one file with "encoder." / "decoder." prefixes.
 *   pixel[:P]   pixel space: z = the image in P x P patches ([3*P*P, h/P, w/P], channel c*P*P + i*P + j,
 *               as torch pixel_unshuffle), P = 1 by default.
 *   PATH        the kind detected from the tensor names.
 *
 * What callers see never depends on the kind (all of it is data on the object):
 *   latents  are in the model's space, z = (raw - shift) * scaling: FLUX 0.3611 (z - 0.1159), SD3
 *            (z - 0.0609) 1.5305, TAESD and pixel raw (golden README vae/, taef2/). vae_encode and
 *            vae_decode apply it; nothing else does.
 *   images   are planar [3, h, w] floats in [0, 1], not clamped by decode; each kind's own range (KL and
 *            pixel [-1, 1], TAESD [0, 1]) maps as img = native * img_scale + img_offset.
 *   sizes    h = zh * scale, w = zw * scale; encode needs h and w divisible by scale.
 *
 * Memory and tiles. A run's activations live in one arena on the object, sized by a measuring pass
 * before the run and kept for the next (a steady loop allocates nothing). When one untiled run would
 * need more than max_memory, or when asked (tile > 0), the latent is cut into overlapping tiles of
 * one size, each run on its own and blended with linear ramps across the overlaps; memory is then
 * bounded by the tile. GroupNorm would see one tile's statistics, which shifts each tile's colours,
 * so a tiled run first makes tile_sync calibration passes that collect every GroupNorm's statistics
 * over the whole image (each tile contributing the region it owns), and the final pass normalises
 * every tile with them (compute x (1 + tile_sync), memory unchanged). KL's mid attention still sees
 * one tile; tests/test_vae.c measures what remains (README).
 *
 * Threads: one object per thread of control (it owns an ops_ctx and the run state).
 */
#ifndef DIT_VAE_VAE_H
#define DIT_VAE_VAE_H

#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/hooks.h"
#include "core/image.h"
#include "core/ops.h"
#include "core/safetensors.h"

typedef struct vae vae;

enum { VAE_DECODE = 0, VAE_ENCODE = 1 };

typedef struct {
    const char *name; /* registry name: "kl", "taesd", "pixel" */
    /* One untiled run in the kind's own spaces. decode: z raw [z_channels, zh, zw] -> img native
     * [3, zh*scale, zw*scale]; encode: img native [3, h, w] -> z raw [z_channels, h/scale, w/scale].
     * taps (may be NULL) see named intermediates (hook.tap: rows = channels, cols = h*w, site.grid_h/w
     * = h, w): module outputs named as the reference's modules ("enc.conv_in", "enc.down.0.downsample",
     * "dec.mid.attn_1", "dec.up.1.block.2", "dec.norm_out", "moments"; TAESD "dec.3_block",
     * "enc.2_conv2d": Sequential index and lowercased class). The run state must
     * have been reserved (vae__reserve with run_bytes). */
    dit_status (*decode)(vae *v, const float *z, int zh, int zw, float *img, const hook_list *taps, dit_err *e);
    dit_status (*encode)(vae *v, const float *img, int h, int w, float *z, const hook_list *taps, dit_err *e);
    /* Bytes of the run arena one untiled run over a zh x zw latent takes (dir VAE_DECODE or
     * VAE_ENCODE); *scratch gets an estimate of what the kernels add on the ops_ctx. */
    size_t (*run_bytes)(const vae *v, int dir, int zh, int zw, size_t *scratch);
    void (*free)(vae *v);
} vae_ops;

/* GroupNorm statistics shared by the tiles of a run (vae.c, layers.c vae__groupnorm). */
#define VAE_SYNC_CALLS 256   /* GroupNorm calls per run that can be synchronised */
#define VAE_MAX_SIDE 32768   /* pixels a side an image may have (bounds every size product) */
#define VAE_SYNC_GROUPS 64   /* groups per call */
typedef struct {
    int record, apply;        /* this pass: accumulate statistics / normalise with the last pass's */
    int call;                 /* GroupNorm calls so far in the current tile's run */
    int own_y0, own_y1, own_x0, own_x1, cells_h, cells_w; /* the region this tile owns, in its latent cells */
    double *acc;              /* [calls][groups][3]: count, mean, sum of squared deviations (Chan et al.) */
    double *mean;             /* [calls][groups] */
    float *rstd, *eps;        /* [calls][groups], [calls] */
} vae_sync;

struct vae {
    const vae_ops *ops;
    int z_channels, scale;        /* latent channels; image pixels per latent cell */
    float shift, scaling;         /* model latent = (raw - shift) * scaling */
    float img_scale, img_offset;  /* [0,1] image = native * img_scale + img_offset */
    int can_encode, can_decode;   /* which directions the weights allow */
    char desc[256];               /* one line: kind, config, normalisation */
    /* run settings, from vae_opts (prec is fixed at open: the weights are prepared for it) */
    ops_prec prec;
    int tile, overlap;            /* pixels; tile 0 = automatic, -1 = never */
    int tile_sync;                /* GroupNorm calibration passes of a tiled run */
    size_t max_memory;            /* bytes */
    vae_sync sync;                /* during tiled runs */
    /* owned run state */
    ops_ctx *ctx;
    arena run;                    /* activations of one (tile) run */
    arena tiles;                  /* tile input and output, blend ramps */
};

typedef struct {
    ops_prec prec;          /* OPS_BF16 (fast; TAESD runs f32 there), OPS_F32 (oneDNN f32) or OPS_REF (naive
                               convolutions and attention) */
    const char *family;     /* KL normalisation "flux", "sd3", "sd" (0.18215) or "none"; NULL = from the file (diffusers
                               config.json; first_stage_model. prefix -> sd3; otherwise flux) */
    int tile;               /* tile side in pixels, rounded down to a multiple of scale; 0 = automatic
                               (tiles only above max_memory), -1 = never tile */
    int overlap;            /* pixels between neighbouring tiles; 0 = a quarter of the tile */
    int tile_sync;          /* GroupNorm calibration passes of a tiled run (1); 0 = each tile its own */
    size_t max_memory;      /* budget of one run (bytes); 0 = half the physical memory */
} vae_opts;

/* bf16, automatic tiling with one calibration pass, half the physical memory. */
vae_opts vae_opts_default(void);

/* Open a VAE by spec (see above). o may be NULL (defaults). On failure *out is NULL and e says why
 * in one line naming the file (and the tensor for weight problems). */
dit_status vae_open(vae **out, const char *spec, const vae_opts *o, dit_err *e);
void vae_free(vae *v); /* NULL is fine */

/* z: [z_channels, zh, zw] model-space latent -> img: [3, zh*scale, zw*scale] in [0,1] (unclamped).
 * taps are called only when the run is not tiled. DIT_E_UNSUPPORTED without decoder weights. */
dit_status vae_decode(vae *v, const float *z, int zh, int zw, float *img, const hook_list *taps, dit_err *e);
/* img: [3, h, w] in [0,1], h and w divisible by scale -> z: [z_channels, h/scale, w/scale] model space
 * (KL: the posterior mean, no sampling). */
dit_status vae_encode(vae *v, const float *img, int h, int w, float *z, const hook_list *taps, dit_err *e);

/* How a run over a zh x zw latent will go: tile_h x tile_w latent cells per tile (the whole latent
 * when ny = nx = 1), overlap in cells, and the bytes it reserves (run state + scratch estimate +
 * tile buffers). DIT_E_OOM when even the smallest tile exceeds max_memory. */
typedef struct {
    int ny, nx, tile_h, tile_w, overlap;
    size_t bytes;
} vae_tiling;
dit_status vae_plan(const vae *v, int dir, int zh, int zw, vae_tiling *t, dit_err *e);

/* A random-weight VAE file (benchmarks, tests), written from the same tables the loaders read:
 * "kl" in the FLUX ae.safetensors layout, "taesd" as one file with encoder. / decoder. prefixes. */
typedef struct {
    const char *kind;       /* "kl" or "taesd" */
    int ch, n_levels, ch_mult[8], n_res; /* kl: base channels (each level's a multiple of 32), levels, res blocks */
    int z;                  /* latent channels */
    int pool;               /* taesd: TAEF2's GroupNorm pool blocks at the lowest resolution */
    int encoder, decoder;   /* which halves to write */
    st_dtype dtype;         /* ST_F32, ST_F16 or ST_BF16 */
    uint64_t seed;
} vae_synth_cfg;
/* kl: FLUX.1 / SD3 geometry (ch 128, ch_mult 1,2,4,4, 2 res blocks, z 16); taesd: TAEF2 (z 32, pool);
 * both halves, F32, seed 1. */
vae_synth_cfg vae_synth_default(const char *kind);
dit_status vae_synth(const vae_synth_cfg *c, const char *path, dit_err *e);

/* Registry names, for help texts: "kl", "taesd", "pixel". */
const char *vae_kind_name(int i); /* NULL past the end */

/* [0,1] planar floats -> new 8-bit RGB image: byte = (int)(clamp(x, 0, 1) * 255), truncated as the
 * sd3.5 and FLUX references do (golden README vae/); NaN -> 0. */
dit_status vae_to_image(image *out, const float *img, int h, int w, dit_err *e);
/* 8-bit image (1..4 channels; gray is repeated, alpha dropped) -> [3, h, w] floats, byte / 255. */
void vae_from_image(const image *im, float *img);

#endif
