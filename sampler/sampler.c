/* sampler/sampler.c — see sampler.h. */
#include "sampler/sampler.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PASSES 8

const char *sampler_kind_name(sampler_kind k)
{
    static const char *const names[SAMPLER_COUNT] = { "euler" };
    return (unsigned)k < SAMPLER_COUNT ? names[k] : "?";
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
    const size_t n = (size_t)c->in_ch * H * W;
    if (c->out_ch != c->in_ch)
        return err_set(e, DIT_E_UNSUPPORTED, "sampler: %s predicts %d channels for %d latent channels (not a flow model)",
                       c->variant, c->out_ch, c->in_ch);
    float *buf = malloc(sizeof(float) * n * (MAX_PASSES + 1));
    if (!buf) return err_set(e, DIT_E_OOM, "sampler: out of memory for %dx%d", H, W);
    float *v[MAX_PASSES], *vg = buf + n * MAX_PASSES;
    for (int p = 0; p < MAX_PASSES; p++) v[p] = buf + n * p;
    dit_status r = DIT_OK;
    for (int i = 0; i < o->n_steps && !r; i++) {
        const guidance_step st = { i, o->n_steps, o->sigmas[i], o->sigmas[i + 1] };
        const int np = o->g->ops->n_passes(o->g, &st);
        if (np < 1 || np > MAX_PASSES) {
            r = err_set(e, DIT_E_ARG, "sampler: guidance '%s' asked for %d passes", o->g->ops->name, np);
            break;
        }
        const float t = o->t_scale * st.sigma;
        for (int p = 0; p < np && !r; p++) {
            guidance_pass gp = { 0, { NULL, 0 } };
            o->g->ops->setup(o->g, &st, p, &gp);
            if (gp.cond < 0 || gp.cond >= o->n_conds) {
                r = err_set(e, DIT_E_ARG, "sampler: pass %d wants conditioning %d of %d", p, gp.cond, o->n_conds);
                break;
            }
            dit_input in = o->conds[gp.cond];
            in.batch = 1, in.H = H, in.W = W, in.x = x, in.t = &t, in.hooks = gp.hooks;
            r = dit_forward(m, s, &in, v[p], e);
        }
        if (r) break;
        o->g->ops->combine(o->g, &st, (const float *const *)v, np, vg, n);
        if (o->on_step) o->on_step(o->user, &st, x, (const float *const *)v, np, vg);
        /* Euler: x <- x + (sigma_{i+1} - sigma_i) v (flux sampling.denoise) */
        const float dt = st.sigma_next - st.sigma;
        for (size_t k = 0; k < n; k++) x[k] += dt * vg[k];
    }
    free(buf);
    return r;
}
