/* sampler/ddpm.h — the discrete diffusion of eps-prediction models (DiT: facebookresearch/DiT
 * diffusion/, after OpenAI's improved-diffusion): the linear beta schedule, the respacing to fewer
 * steps, and one reverse step, DDIM (eta = 0) or DDPM ancestral with the learned-range variance.
 * sampler_run drives it (SAMPLER_DDIM, SAMPLER_DDPM); the model passes and guidance are shared with
 * the flow samplers.
 *
 *   ddpm_schedule ds;
 *   ddpm_schedule_linear(&ds, 1000, 250, &e);   // create_diffusion("250"): 250 of 1000 steps
 *   sampler_opts o = { .kind = SAMPLER_DDPM, .ddpm = &ds, .noise = &g, .g = cfg, .conds = labels, .n_conds = 2 };
 *   rng_randn(&g, x, 4 * 32 * 32);              // x_T (DiT sample.py: torch.randn(n, 4, 32, 32))
 *   sampler_run(model, state, &o, x, 32, 32, &e);
 *
 * Notation: alpha_bar(t) = prod_{s <= t} (1 - beta_s) over the training steps t = 0..T-1; the
 * model sees the training step t; x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps.
 */
#ifndef DIT_SAMPLER_DDPM_H
#define DIT_SAMPLER_DDPM_H

#include <stddef.h>

#include "core/err.h"

#define DDPM_MAX_STEPS 1000

/* The steps a sampler takes, in sampling order (noise first). */
typedef struct {
    int n_steps;
    int t[DDPM_MAX_STEPS];     /* the model's timestep at step i: decreasing, the last 0 */
    double ab[DDPM_MAX_STEPS]; /* alpha_bar(t[i]); after the last step alpha_bar is 1 (data) */
} ddpm_schedule;

/* DiT create_diffusion(str(n_steps), diffusion_steps=n_train): betas =
 * linspace(1e-4 s, 0.02 s, n_train) with s = 1000 / n_train (get_named_beta_schedule("linear"),
 * numpy's linspace and cumprod in double), and space_timesteps(n_train, str(n_steps)): one section,
 * steps round(k (n_train - 1) / (n_steps - 1)) with the stride added up in double and Python's
 * round (half to even). The respaced process's betas are 1 - alpha_bar(t_k) / alpha_bar(t_{k-1})
 * (respace.SpacedDiffusion), which keeps alpha_bar at the kept steps. 1 <= n_steps <= n_train,
 * n_steps <= DDPM_MAX_STEPS. */
dit_status ddpm_schedule_linear(ddpm_schedule *s, int n_train, int n_steps, dit_err *e);

/* alpha_bar after step i (1 after the last). */
double ddpm_ab_next(const ddpm_schedule *s, int i);

/* The rectified-flow sigma with the same signal-to-noise ratio as alpha_bar:
 * sqrt(1 - ab) / (sqrt(ab) + sqrt(1 - ab)); 1 = noise, 0 = data. What guidance methods see as
 * guidance_step.sigma on a DDPM model. */
float ddpm_flow_sigma(double ab);

/* x (n values, in place) from step i to the next (gaussian_diffusion.py, clip_denoised=False):
 *   x0 = sqrt(1/ab) x - sqrt(1/ab - 1) eps                              (_predict_xstart_from_eps)
 * DDIM, eta = 0 (ddim_sample, DDIM eq. 12):
 *   x <- sqrt(ab') x0 + sqrt(1 - ab') eps                 (ab' = the next step's alpha_bar)
 * DDPM (p_sample with LEARNED_RANGE), beta = 1 - ab/ab':
 *   mean = beta sqrt(ab') / (1 - ab) x0 + (1 - ab') sqrt(1 - beta) / (1 - ab) x
 *   log var = f log(beta) + (1 - f) log(beta (1 - ab') / (1 - ab)),  f = (var + 1) / 2
 *   x <- mean + exp(log var / 2) noise,  no noise at the last step (noise may be NULL there).
 * ancestral: 0 DDIM (var and noise unused), 1 DDPM. Computed in double per element. */
void ddpm_update(const ddpm_schedule *s, int i, int ancestral, float *x, const float *eps, const float *var,
                 const float *noise, size_t n);

#endif
