/* sampler/sampler.h — the step loop of sampling, written once (STYLE.md G9): for each step, the
 * guidance method's passes through dit_forward, their combination, and the update from one noise
 * level to the next: the ODE steps of rectified flow from sigma_i to sigma_{i+1} (METHODS.md 1.1,
 * 8.1), or the reverse steps of an eps-prediction DDPM model such as DiT (sampler/ddpm.h).
 *
 *   float sig[29]; sched_sd3(sig, 28, 3.0f);
 *   dit_input conds[2] = { positive, negative };      // context, pooled (x, t set by the sampler)
 *   sampler_opts o = { .kind = SAMPLER_EULER, .sigmas = sig, .n_steps = 28, .t_scale = 1000,
 *                      .g = cfg, .conds = conds, .n_conds = 2 };
 *   for (i...) x[i] = sig[0] * noise[i];               // x at sigma_0 (txt2img)
 *   sampler_run(model, state, &o, x, H, W, &e);        // x: [C, H, W], denoised in place
 *
 * DiT (class labels, DDPM): see sampler/ddpm.h for the schedule; conds[0].labels -> the class,
 * conds[1].labels -> the null class num_classes; x starts as plain noise (x_T = randn).
 */
#ifndef DIT_SAMPLER_SAMPLER_H
#define DIT_SAMPLER_SAMPLER_H

#include "core/err.h"
#include "core/rng.h"
#include "dit/dit.h"
#include "guidance/guidance.h"
#include "sampler/ddpm.h"

/* Flow steppers (METHODS.md 8.1, 7.4): Euler (1 evaluation per step); Heun (2, the last step Euler:
 * 2N - 1); RF-Solver = explicit midpoint x + dt v(x + dt/2 v, sigma + dt/2) (2 per step).
 * DDPM samplers of eps-prediction models (DiT; sampler/ddpm.h), 1 evaluation per step: DDIM with
 * eta = 0 (deterministic) and DDPM ancestral sampling with the model's learned-range variance (DiT
 * sample.py's p_sample_loop). DPM-Solver++(2M) (dpm++2m; 1 evaluation per step), the sd3.5
 * reference's default: k-diffusion's sample_dpmpp_2m on the denoised x0 = x - sigma v with
 * t = -log sigma, the first step and the step to sigma 0 first order (METHODS.md 8.1). */
typedef enum {
    SAMPLER_EULER = 0, SAMPLER_HEUN, SAMPLER_RF_SOLVER, SAMPLER_DDIM, SAMPLER_DDPM, SAMPLER_DPMPP_2M, SAMPLER_COUNT
} sampler_kind;
const char *sampler_kind_name(sampler_kind k);
/* "euler", "heun", "rf-solver", "ddim", "ddpm", "dpm++2m"; SAMPLER_COUNT when unknown. */
sampler_kind sampler_kind_parse(const char *name);
/* 1 for the samplers of eps-prediction models (ddim, ddpm: DiT), 0 for the flow ODE steppers (every
 * other family, SiT included). */
int sampler_kind_is_ddpm(sampler_kind k);

typedef struct {
    sampler_kind kind;
    const float *sigmas;     /* flow: n_steps + 1 values, decreasing, the last 0 */
    int n_steps;             /* flow: steps (DDPM: taken from ddpm) */
    float t_scale;           /* the model's timestep = t_scale * sigma: SD3 1000, FLUX 1 */
    int data_at_one;         /* SiT (METHODS.md 1.1): the model takes t = 1 - sigma (t = 1 is data) and
                                predicts the velocity toward data, so v = -prediction; t_scale unused */
    /* DDPM samplers (SAMPLER_DDIM, SAMPLER_DDPM) of eps-prediction models: */
    const ddpm_schedule *ddpm; /* the steps (ddpm_schedule_linear); the model gets ddpm->t[i] */
    rng *noise;              /* SAMPLER_DDPM: fresh noise for every step but the last (DiT's p_sample also
                                draws one at the last step and multiplies it by 0; not drawn here) */
    int noise_batch;         /* SAMPLER_DDPM: noise is drawn for this many samples per step and the first
                                used: DiT's sample.py with CFG runs a doubled batch, so 2 reproduces it
                                (it matters for the cpu generator; cuda's first half is the same); 0 = 1 */
    guidance *g;
    const dit_input *conds;  /* [n_conds] conditionings (batch 1); their x, t, H, W are ignored */
    int n_conds;
    /* Channels the guidance combines, from the first; the others, and the variance half of a
     * learned-sigma DiT, come from the pass on conditioning 0 (the prompt / class). 0 = every
     * predicted latent channel (eps or v; so is >= in_ch). 3 = the DiT/SiT reference's forward_with_cfg, which
     * guides only the first 3 channels (METHODS.md 2.3: needed to reproduce their FID). */
    int guide_channels;
    /* optional: after the passes of a step's first evaluation are combined, before the update.
     * x: the sample entering the step; v[p]: pass p's prediction and v_out the combination, each
     * the model's out_ch channels (DiT: eps then variance). DDPM steps report the flow-equivalent
     * sigma (ddpm_flow_sigma) in st. */
    void (*on_step)(void *user, const guidance_step *st, const float *x, const float *const *v, int n_pass,
                    const float *v_out);
    void *user;
    /* optional stand-in for dit_forward with the same contract (tests with a known ODE, other
     * models); NULL = dit_forward(m, s, in, v, e) */
    dit_status (*forward)(void *fuser, const dit_input *in, float *v, dit_err *e);
    void *fuser;
} sampler_opts;

/* x: [in_ch, H, W] at sigmas[0] (DDPM: x_T, standard normal); on return the sample at
 * sigmas[n_steps] (DDPM: x_0). Allocates its working buffers once per call (one prediction per
 * pass, two for the second-order steppers, the noise for DDPM), never per step. */
dit_status sampler_run(const dit_model *m, dit_state *s, const sampler_opts *o, float *x, int H, int W, dit_err *e);

#endif
