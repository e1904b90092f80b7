/* sampler/sampler.c — see sampler.h. */
#include "sampler/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PASSES 8

const char *sampler_kind_name(sampler_kind k)
{
    static const char *const names[SAMPLER_COUNT] = { "euler", "heun", "rf-solver", "ddim", "ddpm", "dpm++2m" };
    return (unsigned)k < SAMPLER_COUNT ? names[k] : "?";
}

sampler_kind sampler_kind_parse(const char *name)
{
    for (int k = 0; k < SAMPLER_COUNT; k++)
        if (!strcmp(name, sampler_kind_name((sampler_kind)k))) return (sampler_kind)k;
    return SAMPLER_COUNT;
}

int sampler_kind_is_ddpm(sampler_kind k)
{
    return k == SAMPLER_DDIM || k == SAMPLER_DDPM;
}

typedef struct {
    const dit_model *m;
    dit_state *s;
    const sampler_opts *o;
    int H, W;
    size_t n;      /* latent values: in_ch H W */
    size_t n_out;  /* predicted values: out_ch H W (DiT learn_sigma: 2 n) */
    size_t n_gd;   /* values the guidance combines: the first guide_channels (or in_ch) channels */
    float *v[MAX_PASSES];
    dit_err *e;
} run;

/* The guided prediction at x for model time t: the guidance method's passes for this step,
 * combined into out (the first n_gd values; the rest from the pass on conditioning 0). first:
 * report to on_step (the step's first evaluation). */
static dit_status predict(run *R, const guidance_step *st, const float *x, float t, float *out, int first)
{
    const sampler_opts *o = R->o;
    const int np = o->g->ops->n_passes(o->g, st);
    if (np < 1 || np > MAX_PASSES)
        return err_set(R->e, DIT_E_ARG, "sampler: guidance '%s' asked for %d passes", o->g->ops->name, np);
    int cond_pass = -1;
    for (int p = 0; p < np; p++) {
        guidance_pass gp = { 0, { NULL, 0 } };
        o->g->ops->setup(o->g, st, p, &gp);
        if (gp.cond < 0 || gp.cond >= o->n_conds)
            return err_set(R->e, DIT_E_ARG, "sampler: pass %d wants conditioning %d of %d", p, gp.cond, o->n_conds);
        if (gp.cond == 0 && cond_pass < 0) cond_pass = p;
        dit_input in = o->conds[gp.cond];
        in.batch = 1, in.H = R->H, in.W = R->W, in.x = x, in.t = &t, in.hooks = gp.hooks;
        dit_status r = o->forward ? o->forward(o->fuser, &in, R->v[p], R->e) : dit_forward(R->m, R->s, &in, R->v[p], R->e);
        if (r) return r;
        if (o->data_at_one) /* SiT's v = x_data - noise: the sampler's sigma runs the other way */
            for (size_t k = 0; k < R->n_out; k++) R->v[p][k] = -R->v[p][k];
    }
    o->g->ops->combine(o->g, st, (const float *const *)R->v, np, out, R->n_gd);
    memcpy(out + R->n_gd, R->v[cond_pass < 0 ? 0 : cond_pass] + R->n_gd, sizeof(float) * (R->n_out - R->n_gd));
    if (first && o->on_step) o->on_step(o->user, st, x, (const float *const *)R->v, np, out);
    return DIT_OK;
}

/* the flow model's time at noise level sigma */
static float flow_t(const sampler_opts *o, float sigma)
{
    return o->data_at_one ? 1.0f - sigma : o->t_scale * sigma;
}

static void axpy(float *y, const float *x, float a, const float *d, size_t n) /* y = x + a d */
{
    for (size_t k = 0; k < n; k++) y[k] = x[k] + a * d[k];
}

/* The arguments' consistency with the model: a flow stepper needs sigmas and a flow model (as many
 * channels out as in), a DDPM sampler a schedule and DiT (eps, and for DDPM the variance half). */
static dit_status check_opts(const dit_config *c, const sampler_opts *o, dit_err *e)
{
    if ((unsigned)o->kind >= SAMPLER_COUNT || !o->g || o->n_conds < o->g->n_conds)
        return err_set(e, DIT_E_ARG, "sampler: needs a known sampler and the %d conditionings the guidance uses",
                       o->g ? o->g->n_conds : 1);
    if (o->guide_channels < 0)
        return err_set(e, DIT_E_ARG, "sampler: guide_channels %d is negative", o->guide_channels);
    if (sampler_kind_is_ddpm(o->kind)) {
        if (!o->ddpm || o->ddpm->n_steps < 1 || o->ddpm->n_steps > DDPM_MAX_STEPS)
            return err_set(e, DIT_E_ARG, "sampler: %s needs a DDPM schedule (ddpm_schedule_linear)", sampler_kind_name(o->kind));
        if (c->family != DIT_DIT)
            return err_set(e, DIT_E_UNSUPPORTED,
                           "sampler: %s samples eps-prediction models (DiT), not %s (a flow model: euler, heun, rf-solver)",
                           sampler_kind_name(o->kind), c->variant);
        if (o->kind == SAMPLER_DDPM && c->out_ch != 2 * c->in_ch)
            return err_set(e, DIT_E_UNSUPPORTED, "sampler: ddpm needs the learned variance (%d channels out for %d in, not %d)",
                           2 * c->in_ch, c->in_ch, c->out_ch);
        if (c->out_ch != c->in_ch && c->out_ch != 2 * c->in_ch)
            return err_set(e, DIT_E_UNSUPPORTED, "sampler: %s predicts %d channels for %d latent channels", c->variant, c->out_ch,
                           c->in_ch);
        if (o->kind == SAMPLER_DDPM && !o->noise)
            return err_set(e, DIT_E_ARG, "sampler: ddpm needs a generator for its noise");
        if (o->noise_batch < 0 || o->noise_batch > 64)
            return err_set(e, DIT_E_ARG, "sampler: noise_batch %d is outside 0..64", o->noise_batch);
        return DIT_OK;
    }
    if (!o->sigmas || o->n_steps < 1)
        return err_set(e, DIT_E_ARG, "sampler: %s needs sigmas and at least one step", sampler_kind_name(o->kind));
    for (int i = 0; i < o->n_steps; i++)
        if (!(o->sigmas[i] > o->sigmas[i + 1]) || !(o->sigmas[i + 1] >= 0))
            return err_set(e, DIT_E_ARG, "sampler: sigmas must decrease to >= 0 (step %d: %g -> %g)", i, o->sigmas[i],
                           o->sigmas[i + 1]);
    if (c->out_ch != c->in_ch)
        return err_set(e, DIT_E_UNSUPPORTED,
                       "sampler: %s predicts %d channels for %d latent channels (not a flow model: ddim, ddpm)", c->variant,
                       c->out_ch, c->in_ch);
    return DIT_OK;
}

dit_status sampler_run(const dit_model *m, dit_state *s, const sampler_opts *o, float *x, int H, int W, dit_err *e)
{
    const dit_config *c = dit_model_config(m);
    dit_status r = check_opts(c, o, e);
    if (r) return r;
    const int ddpm = sampler_kind_is_ddpm(o->kind), n_steps = ddpm ? o->ddpm->n_steps : o->n_steps;
    const int gc = o->guide_channels > 0 && o->guide_channels < c->in_ch ? o->guide_channels : c->in_ch;
    const size_t hw = (size_t)H * W;
    run R = { m, s, o, H, W, c->in_ch * hw, c->out_ch * hw, gc * hw, { NULL }, e };
    const size_t n = R.n, no = R.n_out;
    const size_t n_noise = o->kind == SAMPLER_DDPM ? n * (o->noise_batch > 1 ? (size_t)o->noise_batch : 1) : 0;
    float *buf = malloc(sizeof(float) * (no * (MAX_PASSES + 3) + n_noise));
    if (!buf) return err_set(e, DIT_E_OOM, "sampler: out of memory for %dx%d", H, W);
    for (int p = 0; p < MAX_PASSES; p++) R.v[p] = buf + no * p;
    float *d1 = buf + no * MAX_PASSES, *d2 = d1 + no, *xm = d2 + no, *noise = xm + no;
    for (int i = 0; i < n_steps && !r; i++) {
        if (ddpm) { /* one model evaluation at the kept training step, then the reverse step */
            const ddpm_schedule *ds = o->ddpm;
            const double ab1 = ddpm_ab_next(ds, i);
            const guidance_step st = { i, n_steps, ddpm_flow_sigma(ds->ab[i]), ddpm_flow_sigma(ab1) };
            if ((r = predict(&R, &st, x, (float)ds->t[i], d1, 1))) break;
            const int fresh = o->kind == SAMPLER_DDPM && i + 1 < n_steps;
            if (fresh) rng_randn(o->noise, noise, n_noise); /* th.randn_like(x) of the (doubled) batch */
            ddpm_update(ds, i, o->kind == SAMPLER_DDPM, x, d1, no > n ? d1 + n : NULL, fresh ? noise : NULL, n);
            continue;
        }
        const guidance_step st = { i, n_steps, o->sigmas[i], o->sigmas[i + 1] };
        const float dt = st.sigma_next - st.sigma;
        if ((r = predict(&R, &st, x, flow_t(o, st.sigma), d1, 1))) break;
        if (o->kind == SAMPLER_EULER || (o->kind == SAMPLER_HEUN && st.sigma_next == 0)) {
            axpy(x, x, dt, d1, n); /* x + (sigma_{i+1} - sigma_i) v (flux sampling.denoise) */
        } else if (o->kind == SAMPLER_HEUN) { /* d2 at the Euler guess, then the average slope */
            axpy(xm, x, dt, d1, n);
            if ((r = predict(&R, &st, xm, flow_t(o, st.sigma_next), d2, 0))) break;
            for (size_t k = 0; k < n; k++) x[k] += dt * 0.5f * (d1[k] + d2[k]);
        } else if (o->kind == SAMPLER_DPMPP_2M) {
            /* k-diffusion sample_dpmpp_2m (sd3.5 sd3_impls.py L353-372) on D = x - sigma v:
             * x' = (sigma'/sigma) x - expm1(-h) D~, h = log(sigma/sigma'), D~ = (1 + 1/2r) D - 1/2r D_prev,
             * r = h_prev / h; first order on the first step and into sigma' = 0 (x' = D). */
            float *D = (i & 1) ? d2 : xm, *Dp = (i & 1) ? xm : d2;
            for (size_t k = 0; k < n; k++) D[k] = x[k] - st.sigma * d1[k];
            if (st.sigma_next == 0) {
                memcpy(x, D, sizeof(float) * n);
            } else {
                const double h = log((double)st.sigma / st.sigma_next), ratio = (double)st.sigma_next / st.sigma;
                const double em = -expm1(-h);
                if (i == 0) {
                    for (size_t k = 0; k < n; k++) x[k] = (float)(ratio * x[k] + em * D[k]);
                } else {
                    const double r2 = 2 * log((double)o->sigmas[i - 1] / st.sigma) / h; /* 2r */
                    const double a = 1 + 1 / r2, b = 1 / r2;
                    for (size_t k = 0; k < n; k++) x[k] = (float)(ratio * x[k] + em * (a * D[k] - b * Dp[k]));
                }
            }
        } else { /* RF-Solver: slope at the midpoint (RF-Solver-Edit sampling.denoise) */
            axpy(xm, x, 0.5f * dt, d1, n);
            if ((r = predict(&R, &st, xm, flow_t(o, st.sigma + 0.5f * dt), d2, 0))) break;
            axpy(x, x, dt, d2, n);
        }
    }
    free(buf);
    return r;
}
