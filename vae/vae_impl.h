/* vae/vae_impl.h — what the kinds share inside vae/ (not for callers; they use vae.h).
 *
 * A kind is a struct whose first member is the vae base (SQLite-style subclassing), a static
 * vae_ops table, a constructor and (for file kinds) a detector:
 *
 *   typedef struct { vae base; ...weights... } vae_kl;           // base must be first
 *   static const vae_ops KL_OPS = { "kl", kl_decode, kl_encode, kl_run_bytes, kl_free };
 *   dit_status vae__kl_open(vae **out, const char *path, const vae_opts *o, dit_err *e);
 *
 * A run plans its buffers twice with the same calls: once on arena_measure() (run_bytes), once on
 * the object's run arena after vae__reserve.
 */
#ifndef DIT_VAE_VAE_IMPL_H
#define DIT_VAE_VAE_IMPL_H

#include <stdint.h>

#include "core/safetensors.h"
#include "core/wtable.h"
#include "vae/vae.h"

/* ---- the kinds (registry in vae.c) ---------------------------------------------------------- */

/* path: file or diffusers folder. */
dit_status vae__kl_open(vae **out, const char *path, const vae_opts *o, dit_err *e);
/* 1 when the set holds AutoencoderKL tensors (any prefix and naming vae__kl_open knows). */
int vae__kl_detect(const st_set *s);
dit_status vae__taesd_open(vae **out, const char *path, const vae_opts *o, dit_err *e);
int vae__taesd_detect(const st_set *s);
/* arg: "" or the patch size. */
dit_status vae__pixel_open(vae **out, const char *arg, const vae_opts *o, dit_err *e);
/* vae_synth for each file kind. */
dit_status vae__kl_synth(const vae_synth_cfg *c, const char *path, dit_err *e);
dit_status vae__taesd_synth(const vae_synth_cfg *c, const char *path, dit_err *e);

/* ---- random-weight files from the weight tables (synth.c) ------------------------------------ */

typedef struct {
    st_writer *w;
    void **bufs;            /* tensor data, alive until the file is written */
    int n_bufs, cap_bufs;
    uint64_t rng;
    st_dtype dtype;         /* F32, F16 or BF16 */
    dit_status err;         /* the first failure; later calls do nothing */
    dit_err *e;
} vae__synth;

dit_status vae__synth_begin(vae__synth *s, st_dtype dt, uint64_t seed, dit_err *e);
/* Every tensor of the n rows of spec under prefix, in the naming's names (first alternative), shapes
 * from dims, the printf argument i0: conv/linear weights uniform with variance 1/fan_in, 1-D
 * "weight"s (norm scales) 1 +- 0.1, other vectors +- 0.05. A WT_FLAT linear is written as the 1x1
 * convolution the released layout (naming 0) stores. */
void vae__synth_spec(vae__synth *s, const char *prefix, const wt_spec *spec, int n, const int *dims, int naming, int i0);
/* Write the file (metadata "note" = desc) unless something failed, and free everything. */
dit_status vae__synth_end(vae__synth *s, const char *path, const char *desc);

/* ---- base ------------------------------------------------------------------------------------ */

/* Settings from o (NULL = defaults) and a fresh ops_ctx. */
dit_status vae__init(vae *v, const vae_ops *ops, const vae_opts *o, dit_err *e);
/* Frees what vae__init and the runs made (not v itself). */
void vae__release(vae *v);
/* The run arena, at least bytes long (grown when smaller; contents are not kept), reset to empty. */
dit_status vae__reserve(arena *a, size_t bytes, dit_err *e);

/* ---- layers shared by the kinds (OpenMP over elements; y may equal x) ----------------------- */

/* 2-D convolution of one image x [C, H, W] -> y [OC, OH, OW] on the object's path; a failure
 * message names the module. pads: top, left, bottom, right. */
dit_status vae__conv(vae *v, const char *module, float *y, const float *x, int C, int H, int W, const tensor *w,
                     const float *b, int stride, int pt, int pl, int pb, int pr, dit_err *e);
/* Same padding on every side: k / 2 (3x3 -> 1, 1x1 -> 0). */
dit_status vae__conv_same(vae *v, const char *module, float *y, const float *x, int C, int H, int W,
                          const tensor *w, const float *b, dit_err *e);
/* GroupNorm of x [C, H, W] under the object's tile synchronisation (vae.h): with its own statistics,
 * recording those of the tile's own region, or with the whole image's from the last pass. */
void vae__groupnorm(vae *v, float *y, const float *x, const float *w, const float *b, int C, int H, int W, int groups,
                    float eps);
void vae__add(float *y, const float *x, size_t n);      /* y += x */
void vae__relu(float *y, size_t n);                     /* in place */
/* x [rows, cols] -> y [cols, rows]. y must not alias x. */
void vae__transpose(float *y, const float *x, int64_t rows, int64_t cols);
/* Tap a [c, h, w] activation under name (no-op for NULL or empty lists). */
void vae__tap(const hook_list *taps, const char *name, const float *x, int c, int h, int w);

#endif
