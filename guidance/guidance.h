/* guidance/guidance.h — how a sampling step turns several model passes into one prediction
 * (STYLE.md G9). A method says how many passes it needs at a step, sets each one up (which
 * conditioning, which hooks), and combines the predictions. The sampler loop is the same for
 * every method: for each pass, setup then dit_forward; then combine; then the ODE update.
 *
 *   guidance *g = guidance_cfg_new(4.5f, &e);           // classifier-free guidance, scale 4.5
 *   ... sampler_run(..., g, ...);
 *   guidance_free(g);
 *
 * Predictions are velocities (rectified flow, METHODS.md 1.1). Linear rules such as CFG give the
 * same result on velocities as on denoised samples (METHODS.md 1.2), so the sd3.5 reference's
 * CFG on x0 is reproduced here on v. For DiT's DDPM they are eps: combine sees the eps channels
 * (sampler_opts.guide_channels of them), the sampler takes the variance from the conditional pass. */
#ifndef DIT_GUIDANCE_GUIDANCE_H
#define DIT_GUIDANCE_GUIDANCE_H

#include <stddef.h>

#include "core/err.h"
#include "core/hooks.h"

/* Where the sampler is. */
typedef struct {
    int step, n_steps;        /* 0-based step, number of steps */
    float sigma, sigma_next;  /* noise level now and after this step (1 = noise, 0 = data) */
} guidance_step;

/* One model pass: which conditioning (index into the sampler's list: 0 = the prompt, 1 = the
 * negative / unconditional one) and the hooks it carries. */
typedef struct {
    int cond;
    hook_list hooks;
} guidance_pass;

typedef struct guidance guidance;
typedef struct {
    const char *name;
    int (*n_passes)(const guidance *g, const guidance_step *st);
    void (*setup)(const guidance *g, const guidance_step *st, int pass, guidance_pass *p);
    /* out[n] = the combination of v[0..n_pass-1][n]; out may not alias any v */
    void (*combine)(const guidance *g, const guidance_step *st, const float *const *v, int n_pass, float *out, size_t n);
    void (*free)(guidance *g);
} guidance_ops;

/* Implementations start with this struct and append their fields (SQLite style). */
struct guidance {
    const guidance_ops *ops;
    int n_conds; /* conditionings the method needs (1 or 2) */
};

void guidance_free(guidance *g); /* NULL is fine */

/* No guidance: one pass on the prompt (FLUX-dev's distilled guidance goes in as a model input). */
guidance *guidance_none_new(dit_err *e);
/* Classifier-free guidance on velocity: v = v_u + scale (v_c - v_u) (METHODS.md 2.1); scale 1
 * needs one pass. */
guidance *guidance_cfg_new(float scale, dit_err *e);

#endif
