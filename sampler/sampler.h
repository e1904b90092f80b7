/* sampler/sampler.h — the step loop of rectified-flow sampling, written once (STYLE.md G9):
 * for each step, the guidance method's passes through dit_forward, their combination, and the
 * ODE update from sigma_i to sigma_{i+1} (METHODS.md 1.1, 8.1).
 *
 *   float sig[29]; sched_sd3(sig, 28, 3.0f);
 *   dit_input conds[2] = { positive, negative };      // context, pooled (x, t set by the sampler)
 *   sampler_opts o = { .kind = SAMPLER_EULER, .sigmas = sig, .n_steps = 28, .t_scale = 1000,
 *                      .g = cfg, .conds = conds, .n_conds = 2 };
 *   for (i...) x[i] = sig[0] * noise[i];               // x at sigma_0 (txt2img)
 *   sampler_run(model, state, &o, x, H, W, &e);        // x: [C, H, W], denoised in place
 */
#ifndef DIT_SAMPLER_SAMPLER_H
#define DIT_SAMPLER_SAMPLER_H

#include "core/err.h"
#include "dit/dit.h"
#include "guidance/guidance.h"

/* Steppers (METHODS.md 8.1, 7.4): Euler (1 evaluation per step); Heun (2, the last step Euler:
 * 2N - 1); RF-Solver = explicit midpoint x + dt v(x + dt/2 v, sigma + dt/2) (2 per step). */
typedef enum { SAMPLER_EULER = 0, SAMPLER_HEUN, SAMPLER_RF_SOLVER, SAMPLER_COUNT } sampler_kind;
const char *sampler_kind_name(sampler_kind k);
/* "euler", "heun", "rf-solver"; SAMPLER_COUNT when unknown. */
sampler_kind sampler_kind_parse(const char *name);

typedef struct {
    sampler_kind kind;
    const float *sigmas;     /* n_steps + 1 values, decreasing, the last 0 */
    int n_steps;
    float t_scale;           /* the model's timestep = t_scale * sigma: SD3 1000, FLUX 1 */
    int data_at_one;         /* SiT (METHODS.md 1.1): the model takes t = 1 - sigma (t = 1 is data) and
                                predicts the velocity toward data, so v = -prediction; t_scale unused */
    guidance *g;
    const dit_input *conds;  /* [n_conds] conditionings (batch 1); their x, t, H, W are ignored */
    int n_conds;
    /* optional: after the passes of a step's first evaluation are combined, before the update.
     * x: the sample entering the step; v[p]: pass p's prediction; v_out: the combination. */
    void (*on_step)(void *user, const guidance_step *st, const float *x, const float *const *v, int n_pass,
                    const float *v_out);
    void *user;
    /* optional stand-in for dit_forward with the same contract (tests with a known ODE, other
     * models); NULL = dit_forward(m, s, in, v, e) */
    dit_status (*forward)(void *fuser, const dit_input *in, float *v, dit_err *e);
    void *fuser;
} sampler_opts;

/* x: [in_ch, H, W] at sigmas[0]; on return the sample at sigmas[n_steps]. Allocates its working
 * buffers once per call (one prediction per pass, two for the second-order steppers), never per
 * step. */
dit_status sampler_run(const dit_model *m, dit_state *s, const sampler_opts *o, float *x, int H, int W, dit_err *e);

#endif
