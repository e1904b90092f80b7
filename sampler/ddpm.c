/* sampler/ddpm.c — see ddpm.h. */
#include "sampler/ddpm.h"

#include <math.h>

dit_status ddpm_schedule_linear(ddpm_schedule *s, int n_train, int n_steps, dit_err *e)
{
    if (n_train < 2 || n_steps < 1 || n_steps > n_train || n_steps > DDPM_MAX_STEPS)
        return err_set(e, DIT_E_ARG, "ddpm: %d steps of %d training steps (1..min(%d, %d))", n_steps, n_train,
                       n_train, DDPM_MAX_STEPS);
    /* space_timesteps: cur_idx += frac_stride, taken = round(cur_idx); increasing, no repeats
     * (the stride is >= 1) */
    int keep[DDPM_MAX_STEPS];
    const double stride = n_steps <= 1 ? 1.0 : (double)(n_train - 1) / (n_steps - 1);
    double cur = 0;
    for (int k = 0; k < n_steps; k++, cur += stride) keep[k] = (int)nearbyint(cur); /* ties to even */
    /* np.linspace(start, stop, T): arange(T) * step + start, the last value stop exactly */
    const double scale = 1000.0 / n_train, b0 = scale * 0.0001, b1 = scale * 0.02, step = (b1 - b0) / (n_train - 1);
    double ab = 1.0;
    for (int i = 0, k = 0; i < n_train && k < n_steps; i++) {
        const double beta = i == n_train - 1 ? b1 : i * step + b0;
        ab *= 1.0 - beta; /* np.cumprod(1 - betas) */
        if (i == keep[k]) {
            const int j = n_steps - 1 - k; /* sampling order: the last kept step first */
            s->t[j] = i;
            s->ab[j] = ab;
            k++;
        }
    }
    s->n_steps = n_steps;
    return DIT_OK;
}

double ddpm_ab_next(const ddpm_schedule *s, int i)
{
    return i + 1 < s->n_steps ? s->ab[i + 1] : 1.0;
}

float ddpm_flow_sigma(double ab)
{
    const double a = sqrt(ab), b = sqrt(1.0 - ab);
    return (float)(b / (a + b));
}

void ddpm_update(const ddpm_schedule *s, int i, int ancestral, float *x, const float *eps, const float *var,
                 const float *noise, size_t n)
{
    const double ab = s->ab[i], ab1 = ddpm_ab_next(s, i);
    const double rx = sqrt(1.0 / ab), re = sqrt(1.0 / ab - 1.0);
    if (!ancestral) { /* DDIM eta = 0: x0 and eps carried to the next noise level */
        const double a1 = sqrt(ab1), s1 = sqrt(1.0 - ab1);
        for (size_t k = 0; k < n; k++) {
            const double x0 = rx * x[k] - re * eps[k];
            x[k] = (float)(a1 * x0 + s1 * eps[k]);
        }
        return;
    }
    /* the respaced step's beta and the posterior q(x_{t-1} | x_t, x_0) (Ho et al. 2020 eq. 7) */
    const double beta = 1.0 - ab / ab1;
    const double c0 = beta * sqrt(ab1) / (1.0 - ab), cx = (1.0 - ab1) * sqrt(1.0 - beta) / (1.0 - ab);
    const int last = i + 1 >= s->n_steps;
    /* improved DDPM (Nichol & Dhariwal 2021 eq. 15): the model interpolates the log variance
     * between the posterior's (clipped: used from the second step on) and beta's */
    const double lo = last ? 0.0 : log(beta * (1.0 - ab1) / (1.0 - ab)), hi = log(beta);
    for (size_t k = 0; k < n; k++) {
        const double x0 = rx * x[k] - re * eps[k];
        double y = c0 * x0 + cx * x[k];
        if (!last && noise) {
            const double f = 0.5 * (var[k] + 1.0);
            y += exp(0.5 * (f * hi + (1.0 - f) * lo)) * noise[k];
        }
        x[k] = (float)y;
    }
}
