/* sampler/schedule.h — noise schedules of rectified-flow models (golden README section 8,
 * METHODS.md 8.2): the sigmas a sampler steps through, from 1 (noise) down to 0 (data).
 *
 *   float s[29];
 *   sched_sd3(s, 28, 3.0f);                     // SD3/SD3.5: shift 3, 28 steps -> 29 sigmas
 *   sched_flux(s, 28, 4096, 1, 0.5, 1.15);      // FLUX-dev at 1024^2 (4096 packed tokens)
 *
 * Every function writes n + 1 values (the last is 0) and returns 0, or -1 for n < 1 or a bad
 * parameter. Values are computed in double and rounded once; the references compute in float32,
 * which they match within 2e-6 (the golden tolerance; checked against schedules.safetensors). */
#ifndef DIT_SAMPLER_SCHEDULE_H
#define DIT_SAMPLER_SCHEDULE_H

/* SD3 (sd3_impls.ModelSamplingDiscreteFlow + sd3_infer.get_sigmas):
 * sigma(ts) = shift s / (1 + (shift - 1) s), s = ts / 1000; ts = linspace(1000 sigma(1000),
 * 1000 sigma(1), n); sigmas = [sigma(ts_i)] + [0]. The shift is applied again to the end point,
 * so the last non-zero sigma is sigma(1000 sigma(1)). The model receives 1000 sigma. */
int sched_sd3(float *sigmas, int n, float shift);

/* FLUX (flux.sampling.get_schedule): ts = linspace(1, 0, n + 1); with shift (dev),
 * mu = base + (max - base) (L - 256) / (4096 - 256) and ts = e^mu / (e^mu + 1/ts - 1)
 * (0 stays 0). L = packed image tokens = ceil(H/16) ceil(W/16). schnell: shift = 0. */
int sched_flux(float *ts, int n, int image_tokens, int shift, double base_shift, double max_shift);
double sched_flux_mu(int image_tokens, double base_shift, double max_shift);

/* Plain linspace(1, 0, n + 1) (no shift) and a shift applied to it as SD3 does to a timestep
 * (shift s / (1 + (shift - 1) s)), for models without a family rule. */
int sched_linear(float *sigmas, int n, float shift);

/* A user's list ("1,0.75,0.5,0.25,0"): strictly decreasing values in [0, 1] ending in 0, at
 * most cap values. Returns the count (n + 1), or -1 with a reason in err. */
int sched_parse(float *sigmas, int cap, const char *list, char *err, int err_len);

#endif
