/* sampler/schedule.c — see schedule.h. */
#include "schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* sd3_impls.ModelSamplingDiscreteFlow.time_snr_shift on a timestep in [0, 1000] */
static double sd3_sigma(double ts, double shift)
{
    const double s = ts / 1000.0;
    return shift == 1.0 ? s : shift * s / (1.0 + (shift - 1.0) * s);
}

/* torch.linspace(start, end, steps): the first half counts up from start, the second half down
 * from end (aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp), which keeps both ends exact. */
static double linspace_at(double start, double end, int steps, int i)
{
    if (steps == 1) return start;
    const double step = (end - start) / (steps - 1);
    return i < steps / 2 ? start + step * i : end - step * (steps - 1 - i);
}

int sched_sd3(float *sigmas, int n, float shift)
{
    if (n < 1 || !(shift > 0)) return -1;
    const double hi = 1000.0 * sd3_sigma(1000.0, shift), lo = 1000.0 * sd3_sigma(1.0, shift);
    for (int i = 0; i < n; i++) sigmas[i] = (float)sd3_sigma(linspace_at(hi, lo, n, i), shift);
    sigmas[n] = 0.0f;
    return 0;
}

double sched_flux_mu(int image_tokens, double base_shift, double max_shift)
{
    const double m = (max_shift - base_shift) / (4096.0 - 256.0), b = base_shift - m * 256.0;
    return m * image_tokens + b;
}

int sched_flux(float *ts, int n, int image_tokens, int shift, double base_shift, double max_shift)
{
    if (n < 1 || image_tokens < 1) return -1;
    const double mu = sched_flux_mu(image_tokens, base_shift, max_shift), em = exp(mu);
    for (int i = 0; i <= n; i++) {
        const double t = linspace_at(1.0, 0.0, n + 1, i);
        ts[i] = (float)(!shift || t <= 0 ? t : em / (em + (1.0 / t - 1.0)));
    }
    ts[n] = 0.0f;
    return 0;
}

int sched_linear(float *sigmas, int n, float shift)
{
    if (n < 1 || !(shift > 0)) return -1;
    for (int i = 0; i <= n; i++) sigmas[i] = (float)sd3_sigma(1000.0 * linspace_at(1.0, 0.0, n + 1, i), shift);
    sigmas[n] = 0.0f;
    return 0;
}

int sched_parse(float *sigmas, int cap, const char *list, char *err, int err_len)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        char *end;
        const double v = strtod(p, &end);
        if (end == p || (*end && *end != ',')) {
            snprintf(err, err_len, "'%s' is not a comma-separated list of numbers", list);
            return -1;
        }
        if (n == cap) {
            snprintf(err, err_len, "more than %d values", cap);
            return -1;
        }
        if (!(v >= 0 && v <= 1) || (n && !(v < sigmas[n - 1]))) {
            snprintf(err, err_len, "values must decrease strictly within [0, 1] (value %d is %g)", n + 1, v);
            return -1;
        }
        sigmas[n++] = (float)v;
        p = *end ? end + 1 : end;
    }
    if (n < 2 || sigmas[n - 1] != 0.0f) {
        snprintf(err, err_len, "need at least two values, the last one 0");
        return -1;
    }
    return n;
}
