/* tests/test_sampler.c — guidance and the step loop: CFG's rule and pass count, and the sampler's
 * argument checks. (The full Euler trajectories, with and without CFG, are reproduced against the
 * golden schedules/flux_euler and schedules/sd3_euler_cfg cases by tests/test_dit_check.sh.) */
#include "guidance/guidance.h"
#include "sampler/sampler.h"
#include "sampler/schedule.h"
#include "tests/test.h"

static void t_cfg(tctx *t)
{
    dit_err e = { 0 };
    guidance *g = guidance_cfg_new(4.0f, &e);
    CHECK(t, g && g->n_conds == 2, "cfg: %s", e.msg);
    if (!g) return;
    const guidance_step st = { 0, 1, 1.0f, 0.0f };
    CHECK(t, g->ops->n_passes(g, &st) == 2, "two passes");
    guidance_pass p0, p1;
    g->ops->setup(g, &st, 0, &p0);
    g->ops->setup(g, &st, 1, &p1);
    CHECK(t, p0.cond == 0 && p1.cond == 1 && p0.hooks.n == 0, "pass 0 on the prompt, pass 1 on the negative");
    const float vc[3] = { 1, 2, -1 }, vu[3] = { 0.5f, 2, 1 };
    const float *v[2] = { vc, vu };
    float out[3];
    g->ops->combine(g, &st, v, 2, out, 3);
    /* v_u + 4 (v_c - v_u): 0.5 + 4 * 0.5 = 2.5; 2; 1 + 4 * -2 = -7 */
    CHECK(t, out[0] == 2.5f && out[1] == 2 && out[2] == -7, "combine %g %g %g", out[0], out[1], out[2]);
    guidance_free(g);
    g = guidance_none_new(&e);
    CHECK(t, g && g->n_conds == 1 && g->ops->n_passes(g, &st) == 1, "none: one pass");
    if (g) {
        g->ops->combine(g, &st, v, 1, out, 3);
        CHECK(t, out[0] == 1 && out[2] == -1, "none passes v through");
    }
    guidance_free(g);
    CHECK(t, guidance_cfg_new(-1.0f, &e) == NULL && e.code == DIT_E_ARG, "negative scale: %s", e.msg);
}

static void t_sampler_args(tctx *t)
{
    if (!test_golden_present(t)) return;
    char path[1100];
    snprintf(path, sizeof path, "%s/sd3/sd3.5_medium/model.safetensors", test_golden_dir());
    dit_err e = { 0 };
    dit_model *m = NULL;
    dit_load_opts o = dit_load_defaults();
    o.prec = OPS_F32;
    CHECK(t, dit_load(&m, path, &o, &e) == DIT_OK, "%s", e.msg);
    if (!m) return;
    dit_state *s = dit_state_new(m, 4, 4, 3, &e);
    guidance *g = guidance_cfg_new(2.0f, &e);
    float x[16 * 4 * 4] = { 0 }, ctx[3 * 40] = { 0 }, y[32] = { 0 };
    dit_input c = { .context = ctx, .n_ctx = 3, .pooled = y };
    const float bad[3] = { 1.0f, 0.5f, 0.5f }, good[3] = { 1.0f, 0.5f, 0.0f };
    sampler_opts so = { .kind = SAMPLER_EULER, .sigmas = bad, .n_steps = 2, .t_scale = 1000, .g = g, .conds = &c, .n_conds = 2 };
    CHECK(t, s && g && sampler_run(m, s, &so, x, 4, 4, &e) == DIT_E_ARG && strstr(e.msg, "decrease"), "flat sigmas: %s", e.msg);
    so.sigmas = good, so.n_conds = 1;
    CHECK(t, sampler_run(m, s, &so, x, 4, 4, &e) == DIT_E_ARG && strstr(e.msg, "conditionings"), "CFG without a negative: %s", e.msg);
    dit_input cs[2] = { c, c };
    so.conds = cs, so.n_conds = 2;
    CHECK(t, sampler_run(m, s, &so, x, 4, 4, &e) == DIT_OK, "runs: %s", e.msg);
    int finite = 1;
    for (int i = 0; i < 16 * 16; i++) finite &= isfinite(x[i]);
    CHECK(t, finite, "finite output");
    guidance_free(g);
    dit_state_free(s);
    dit_free(m);
}

/* The steppers' order on a known ODE: dx/dsigma = x, so x(0) = x(1) / e. Euler's error halves
 * when the steps double (first order); Heun's and RF-Solver's quarter (second order). */
static dit_status exp_ode(void *u, const dit_input *in, float *v, dit_err *e)
{
    (void)u, (void)e;
    for (int i = 0; i < 4; i++) v[i] = in->x[i]; /* v(x, sigma) = x */
    return DIT_OK;
}

static double ode_err(const dit_model *m, sampler_kind k, int steps)
{
    float sig[65], x[4] = { 1, -2, 0.5f, 3 };
    sched_linear(sig, steps, 1.0f);
    dit_input c = { 0 };
    dit_err e = { 0 };
    guidance *g = guidance_none_new(&e);
    sampler_opts so = { .kind = k, .sigmas = sig, .n_steps = steps, .t_scale = 1, .g = g, .conds = &c, .n_conds = 1,
                        .forward = exp_ode };
    const int ok = g && sampler_run(m, NULL, &so, x, 1, 1, &e) == DIT_OK;
    guidance_free(g);
    if (!ok) return INFINITY;
    const double want[4] = { 1, -2, 0.5, 3 };
    double err = 0;
    for (int i = 0; i < 4; i++) err = fmax(err, fabs(x[i] - want[i] * exp(-1.0)));
    return err;
}

/* SiT's convention: the model sees t = 1 - sigma and predicts toward data. A stand-in that predicts
 * -x (toward data) is the flow dx/dsigma = x, so the same solution as above; t is checked per call. */
static double max_t_off;
static dit_status sit_ode(void *u, const dit_input *in, float *v, dit_err *e)
{
    const float *sig = u;
    (void)e;
    double best = 1e9; /* the call's t must be 1 - sigma for one of the schedule's sigmas or midpoints */
    for (int i = 0; i <= 16; i++) best = fmin(best, fabs(in->t[0] - (1.0 - sig[i])));
    max_t_off = fmax(max_t_off, best);
    for (int i = 0; i < 4; i++) v[i] = -in->x[i];
    return DIT_OK;
}

static void t_sit_time(tctx *t)
{
    if (!test_golden_present(t)) return;
    char path[1100];
    snprintf(path, sizeof path, "%s/dit/sit_xl2_like/model.safetensors", test_golden_dir());
    dit_err e = { 0 };
    dit_model *m = NULL;
    dit_load_opts o = dit_load_defaults();
    o.prec = OPS_F32, o.heads = 2, o.family = DIT_SIT;
    CHECK(t, dit_load(&m, path, &o, &e) == DIT_OK, "%s", e.msg);
    if (!m) return;
    float sig[17], x[4] = { 1, -2, 0.5f, 3 };
    sched_linear(sig, 16, 1.0f);
    dit_input c = { 0 };
    guidance *g = guidance_none_new(&e);
    max_t_off = 0;
    sampler_opts so = { .kind = SAMPLER_EULER, .sigmas = sig, .n_steps = 16, .data_at_one = 1, .g = g, .conds = &c,
                        .n_conds = 1, .forward = sit_ode, .fuser = sig };
    CHECK(t, g && sampler_run(m, NULL, &so, x, 1, 1, &e) == DIT_OK, "%s", e.msg);
    /* Euler on dx/dsigma = x from 1 to 0 in 16 steps: x (1 - 1/16)^16 */
    const double f = pow(1.0 - 1.0 / 16, 16);
    CHECK(t, fabs(x[0] - f) < 1e-5 && fabs(x[1] + 2 * f) < 1e-5 && max_t_off < 1e-6, "x %g (want %g), t off by %g", x[0], f, max_t_off);
    guidance_free(g);
    dit_free(m);
}

static void t_order(tctx *t)
{
    if (!test_golden_present(t)) return;
    char path[1100]; /* any model with 4 latent channels... the sampler needs one for its sizes: DiT has 4 */
    snprintf(path, sizeof path, "%s/dit/sit_xl2_like/model.safetensors", test_golden_dir());
    dit_err e = { 0 };
    dit_model *m = NULL;
    dit_load_opts o = dit_load_defaults();
    o.prec = OPS_F32, o.heads = 2, o.family = DIT_SIT;
    CHECK(t, dit_load(&m, path, &o, &e) == DIT_OK, "%s", e.msg);
    if (!m) return;
    for (int k = 0; k < SAMPLER_COUNT; k++) {
        const double e8 = ode_err(m, (sampler_kind)k, 8), e16 = ode_err(m, (sampler_kind)k, 16), e32 = ode_err(m, (sampler_kind)k, 32);
        const double want = k == SAMPLER_EULER ? 2 : 4;
        printf("  %-9s error at 8/16/32 steps: %.2e %.2e %.2e (ratios %.2f %.2f)\n", sampler_kind_name((sampler_kind)k), e8, e16, e32,
               e8 / e16, e16 / e32);
        CHECK(t, fabs(e16 / e32 - want) < 0.35 * want && e8 > e16 && e16 > e32, "%s: order ratio %g, expected %g",
              sampler_kind_name((sampler_kind)k), e16 / e32, want);
    }
    CHECK(t, sampler_kind_parse("heun") == SAMPLER_HEUN && sampler_kind_parse("rf-solver") == SAMPLER_RF_SOLVER &&
                 sampler_kind_parse("dpm") == SAMPLER_COUNT,
          "names");
    dit_free(m);
}

int main(void)
{
    tctx t = test_begin("sampler");
    RUN(&t, t_cfg);
    RUN(&t, t_sampler_args);
    RUN(&t, t_order);
    RUN(&t, t_sit_time);
    return test_end(&t);
}
