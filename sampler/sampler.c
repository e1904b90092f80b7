/* sampler/sampler.c — see sampler.h. */
#include "sampler/sampler.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PASSES 8

const char *sampler_kind_name(sampler_kind k)
{
    static const char *const names[SAMPLER_COUNT] = { "euler", "heun", "rf-solver" };
    return (unsigned)k < SAMPLER_COUNT ? names[k] : "?";
}

sampler_kind sampler_kind_parse(const char *name)
{
    for (int k = 0; k < SAMPLER_COUNT; k++)
        if (!strcmp(name, sampler_kind_name((sampler_kind)k))) return (sampler_kind)k;
    return SAMPLER_COUNT;
}

typedef struct {
    const dit_model *m;
    dit_state *s;
    const sampler_opts *o;
    int H, W;
    size_t n;
    float *v[MAX_PASSES];
    dit_err *e;
} run;

/* The guided prediction at (x, sigma): the guidance method's passes for this step, combined
 * into out. first: report to on_step (the step's first evaluation). */
static dit_status predict(run *R, const guidance_step *st, const float *x, float sigma, float *out, int first)
{
    const sampler_opts *o = R->o;
    const int np = o->g->ops->n_passes(o->g, st);
    if (np < 1 || np > MAX_PASSES)
        return err_set(R->e, DIT_E_ARG, "sampler: guidance '%s' asked for %d passes", o->g->ops->name, np);
    const float t = o->data_at_one ? 1.0f - sigma : o->t_scale * sigma;
    for (int p = 0; p < np; p++) {
        guidance_pass gp = { 0, { NULL, 0 } };
        o->g->ops->setup(o->g, st, p, &gp);
        if (gp.cond < 0 || gp.cond >= o->n_conds)
            return err_set(R->e, DIT_E_ARG, "sampler: pass %d wants conditioning %d of %d", p, gp.cond, o->n_conds);
        dit_input in = o->conds[gp.cond];
        in.batch = 1, in.H = R->H, in.W = R->W, in.x = x, in.t = &t, in.hooks = gp.hooks;
        dit_status r = o->forward ? o->forward(o->fuser, &in, R->v[p], R->e) : dit_forward(R->m, R->s, &in, R->v[p], R->e);
        if (r) return r;
        if (o->data_at_one) /* SiT's v = x_data - noise: the sampler's sigma runs the other way */
            for (size_t k = 0; k < R->n; k++) R->v[p][k] = -R->v[p][k];
    }
    o->g->ops->combine(o->g, st, (const float *const *)R->v, np, out, R->n);
    if (first && o->on_step) o->on_step(o->user, st, x, (const float *const *)R->v, np, out);
    return DIT_OK;
}

static void axpy(float *y, const float *x, float a, const float *d, size_t n) /* y = x + a d */
{
    for (size_t k = 0; k < n; k++) y[k] = x[k] + a * d[k];
}

dit_status sampler_run(const dit_model *m, dit_state *s, const sampler_opts *o, float *x, int H, int W, dit_err *e)
{
    const dit_config *c = dit_model_config(m);
    if ((unsigned)o->kind >= SAMPLER_COUNT || !o->g || !o->sigmas || o->n_steps < 1 || o->n_conds < o->g->n_conds)
        return err_set(e, DIT_E_ARG, "sampler: needs a known stepper, sigmas, and the %d conditionings the guidance uses",
                       o->g ? o->g->n_conds : 1);
    for (int i = 0; i < o->n_steps; i++)
        if (!(o->sigmas[i] > o->sigmas[i + 1]) || !(o->sigmas[i + 1] >= 0))
            return err_set(e, DIT_E_ARG, "sampler: sigmas must decrease to >= 0 (step %d: %g -> %g)", i, o->sigmas[i],
                           o->sigmas[i + 1]);
    if (c->out_ch != c->in_ch)
        return err_set(e, DIT_E_UNSUPPORTED, "sampler: %s predicts %d channels for %d latent channels (not a flow model)",
                       c->variant, c->out_ch, c->in_ch);
    run R = { m, s, o, H, W, (size_t)c->in_ch * H * W, { NULL }, e };
    const size_t n = R.n;
    float *buf = malloc(sizeof(float) * n * (MAX_PASSES + 3));
    if (!buf) return err_set(e, DIT_E_OOM, "sampler: out of memory for %dx%d", H, W);
    for (int p = 0; p < MAX_PASSES; p++) R.v[p] = buf + n * p;
    float *d1 = buf + n * MAX_PASSES, *d2 = d1 + n, *xm = d2 + n;
    dit_status r = DIT_OK;
    for (int i = 0; i < o->n_steps && !r; i++) {
        const guidance_step st = { i, o->n_steps, o->sigmas[i], o->sigmas[i + 1] };
        const float dt = st.sigma_next - st.sigma;
        if ((r = predict(&R, &st, x, st.sigma, d1, 1))) break;
        if (o->kind == SAMPLER_EULER || (o->kind == SAMPLER_HEUN && st.sigma_next == 0)) {
            axpy(x, x, dt, d1, n); /* x + (sigma_{i+1} - sigma_i) v (flux sampling.denoise) */
        } else if (o->kind == SAMPLER_HEUN) { /* d2 at the Euler guess, then the average slope */
            axpy(xm, x, dt, d1, n);
            if ((r = predict(&R, &st, xm, st.sigma_next, d2, 0))) break;
            for (size_t k = 0; k < n; k++) x[k] += dt * 0.5f * (d1[k] + d2[k]);
        } else { /* RF-Solver: slope at the midpoint (RF-Solver-Edit sampling.denoise) */
            axpy(xm, x, 0.5f * dt, d1, n);
            if ((r = predict(&R, &st, xm, st.sigma + 0.5f * dt, d2, 0))) break;
            axpy(x, x, dt, d2, n);
        }
    }
    free(buf);
    return r;
}
