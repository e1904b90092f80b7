/* tests/test_sampler.c — guidance and the step loop: CFG's rule and pass count, and the sampler's
 * argument checks. (The full Euler trajectories, with and without CFG, are reproduced against the
 * golden schedules/flux_euler and schedules/sd3_euler_cfg cases by tests/test_dit_check.sh.)
 * DiT's DDPM: the schedule and respacing, and full DDIM / DDPM trajectories of a stand-in eps
 * model against tests/ref/ddpm_ref.py (numpy float64, DiT's gaussian_diffusion formulas); the
 * real tiny DiT sampled through dit_forward. */
#include "guidance/guidance.h"
#include "sampler/ddpm.h"
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
/* A golden tiny DiT/SiT on the f32 path (the stand-in forwards borrow its sizes). */
static dit_model *load_tiny(tctx *t, const char *name, int family)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/dit/%s/model.safetensors", test_golden_dir(), name);
    dit_err e = { 0 };
    dit_model *m = NULL;
    dit_load_opts o = dit_load_defaults();
    o.prec = OPS_F32, o.heads = family == DIT_SIT ? 2 : 4, o.family = family;
    CHECK(t, dit_load(&m, path, &o, &e) == DIT_OK, "%s", e.msg);
    return m;
}

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
    dit_err e = { 0 };
    dit_model *m = load_tiny(t, "sit_xl2_like", DIT_SIT);
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

/* the stand-in of tests/ref/dpmpp_ref.py: v = x (0.5 + sigma) + 0.2 sin(3x) - 0.3 (t_scale 1: t = sigma) */
static dit_status dpm_model(void *u, const dit_input *in, float *v, dit_err *e)
{
    (void)u, (void)e;
    for (int i = 0; i < 4; i++) v[i] = (float)(in->x[i] * (0.5 + in->t[0]) + 0.2 * sin(3.0 * in->x[i]) - 0.3);
    return DIT_OK;
}

/* DPM-Solver++(2M) against k-diffusion's sample_dpmpp_2m (numbers from tests/ref/dpmpp_ref.py, float64),
 * into sigma 0 (the last step first order) and stopping at 0.005 (every step after the first second order) */
static void t_dpmpp_reference(tctx *t)
{
    if (!test_golden_present(t)) return;
    dit_err e = { 0 };
    dit_model *m = load_tiny(t, "sit_xl2_like", DIT_SIT);
    if (!m) return;
    static const double want[2][4] = { { 0.602370207, -0.884430154, 0.359432075, 1.94847267 },
                                       { 0.619517577, -0.918815931, 0.368234199, 2.00521285 } };
    for (int c = 0; c < 2; c++) {
        float sig[8] = { 1, 0.9f, 0.75f, 0.5f, 0.3f, 0.1f, 0.02f, c ? 0.005f : 0 }, x[4] = { 1, -2, 0.5f, 3 };
        dit_input cond = { 0 };
        guidance *g = guidance_none_new(&e);
        sampler_opts so = { .kind = SAMPLER_DPMPP_2M, .sigmas = sig, .n_steps = 7, .t_scale = 1, .g = g, .conds = &cond,
                            .n_conds = 1, .forward = dpm_model };
        CHECK(t, g && sampler_run(m, NULL, &so, x, 1, 1, &e) == DIT_OK, "%s", e.msg);
        double err = 0;
        for (int i = 0; i < 4; i++) err = fmax(err, fabs(x[i] - want[c][i]));
        printf("  dpm++2m vs k-diffusion (%s): max error %.2e\n", c ? "to 0.005" : "to 0", err);
        CHECK(t, err < 2e-6, "dpm++2m %s: max error %g", c ? "to 0.005" : "to 0", err);
        guidance_free(g);
    }
    dit_free(m);
}

static void t_order(tctx *t)
{
    if (!test_golden_present(t)) return;
    dit_model *m = load_tiny(t, "sit_xl2_like", DIT_SIT);
    if (!m) return;
    for (int k = 0; k < SAMPLER_COUNT; k++) {
        if (sampler_kind_is_ddpm((sampler_kind)k)) continue;
        const double e8 = ode_err(m, (sampler_kind)k, 8), e16 = ode_err(m, (sampler_kind)k, 16), e32 = ode_err(m, (sampler_kind)k, 32);
        const double want = k == SAMPLER_EULER ? 2 : 4;
        printf("  %-9s error at 8/16/32 steps: %.2e %.2e %.2e (ratios %.2f %.2f)\n", sampler_kind_name((sampler_kind)k), e8, e16, e32,
               e8 / e16, e16 / e32);
        CHECK(t, fabs(e16 / e32 - want) < 0.35 * want && e8 > e16 && e16 > e32, "%s: order ratio %g, expected %g",
              sampler_kind_name((sampler_kind)k), e16 / e32, want);
    }
    CHECK(t, sampler_kind_parse("heun") == SAMPLER_HEUN && sampler_kind_parse("rf-solver") == SAMPLER_RF_SOLVER &&
                 sampler_kind_parse("ddim") == SAMPLER_DDIM && sampler_kind_parse("ddpm") == SAMPLER_DDPM &&
                 sampler_kind_parse("dpm") == SAMPLER_COUNT && sampler_kind_parse("dpm++2m") == SAMPLER_DPMPP_2M && sampler_kind_is_ddpm(SAMPLER_DDPM) &&
                 !sampler_kind_is_ddpm(SAMPLER_HEUN),
          "names");
    dit_free(m);
}

/* DiT's create_diffusion("N"): space_timesteps(1000, N) and the linear schedule's alpha_bar
 * (numbers from tests/ref/ddpm_ref.py) */
static void t_ddpm_schedule(tctx *t)
{
    static ddpm_schedule s; /* 12 kB */
    dit_err e = { 0 };
    static const struct {
        int T, n;
        long long sum, sumsq;
        int list[13]; /* increasing (the first 13 when longer) */
    } cases[] = {
        { 1000, 1, 0, 0, { 0 } },
        { 1000, 7, 3496, 2522226, { 0, 166, 333, 500, 666, 832, 999 } },
        { 1000, 12, -1, -1, { 0, 91, 182, 272, 363, 454, 545, 636, 727, 817, 908, 999 } },
        { 4000, 13, -1, -1, { 0, 333, 666, 1000, 1333, 1666, 2000, 2333, 2666, 2999, 3332, 3666, 3999 } },
        { 1000, 50, 24975, 16803653, { 0, 20, 41, 61 } },
        { 1000, 250, 124875, 83340681, { 0, 4, 8, 12 } },
        { 1000, 999, 499000, 332583500, { 0, 1, 2, 3 } },
        { 1000, 1000, 499500, 332833500, { 0, 1, 2, 3 } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CHECK(t, ddpm_schedule_linear(&s, cases[c].T, cases[c].n, &e) == DIT_OK && s.n_steps == cases[c].n, "%s", e.msg);
        long long sum = 0, sq = 0;
        int dec = 1, list = 1;
        for (int i = 0; i < s.n_steps; i++) {
            sum += s.t[i], sq += (long long)s.t[i] * s.t[i];
            if (i) dec &= s.t[i] < s.t[i - 1] && s.ab[i] > s.ab[i - 1];
            const int k = s.n_steps - 1 - i; /* increasing index */
            if (k < 13 && (k < 4 || cases[c].sum < 0)) list &= s.t[i] == cases[c].list[k];
        }
        CHECK(t, dec && list && (cases[c].sum < 0 || (sum == cases[c].sum && sq == cases[c].sumsq)),
              "space_timesteps(%d, %d): sum %lld sumsq %lld, first %d", cases[c].T, cases[c].n, sum, sq, s.t[s.n_steps - 1]);
    }
    /* alphas_cumprod of the 1000-step linear schedule (np.cumprod in double) */
    ddpm_schedule_linear(&s, 1000, 1000, &e);
    CHECK(t, s.ab[999] == 0.99990000000000001 && s.ab[998] == 0.99978009207207208 && s.ab[500] == 0.078587242881778235 &&
                 s.ab[0] == 4.0358297653756761e-05,
          "alpha_bar %.17g %.17g %.17g %.17g", s.ab[999], s.ab[998], s.ab[500], s.ab[0]);
    CHECK(t, ddpm_ab_next(&s, 999) == 1.0 && ddpm_ab_next(&s, 0) == s.ab[1], "the next alpha_bar");
    CHECK(t, ddpm_flow_sigma(1.0) == 0.0f && fabsf(ddpm_flow_sigma(0.5) - 0.5f) < 1e-7f && ddpm_flow_sigma(s.ab[0]) > 0.99f,
          "flow sigma");
    CHECK(t, ddpm_schedule_linear(&s, 1000, 1001, &e) == DIT_E_ARG && ddpm_schedule_linear(&s, 1000, 0, &e) == DIT_E_ARG,
          "bad step counts: %s", e.msg);
}

/* The stand-in eps model of tests/ref/ddpm_ref.py on a [4, 2, 2] latent (about the exact eps of
 * data ~ N(mu, 0.5^2); L(t) about log alpha_bar(t)):
 * a = exp(L/2), s = sqrt(1 - exp(L)), mu[c] = 0.5 (c - 1.5) (label + 1) / 11 + 0.2 tanh(x),
 * eps[c] = s (x - a mu) / (0.25 a^2 + s^2), var[c] = 0.9 cos(0.7 x + 0.003 t + 0.5 c + 0.1 label) */
typedef struct {
    int calls;
    float last_t;
    int t_ok; /* every call's t is an integer in 0..999 */
} standin;

static dit_status eps_standin(void *u, const dit_input *in, float *v, dit_err *e)
{
    standin *st = u;
    (void)e;
    const double t = in->t[0];
    st->calls++;
    st->t_ok &= t == floor(t) && t >= 0 && t <= 999 && (st->calls == 1 || t < st->last_t || t == st->last_t);
    st->last_t = in->t[0];
    const int label = in->labels[0];
    const double L = -(1e-4 * (t + 1) + 0.5 * (0.02 - 1e-4) / 999 * t * (t + 1)), a = exp(L / 2), s = sqrt(1 - exp(L));
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 4; k++) {
            const double x = in->x[c * 4 + k], mu = 0.5 * (c - 1.5) * (label + 1) / 11 + 0.2 * tanh(x);
            v[c * 4 + k] = (float)(s * (x - a * mu) / (0.25 * a * a + s * s));
            v[16 + c * 4 + k] = (float)(0.9 * cos(0.7 * x + 0.003 * t + 0.5 * c + 0.1 * label));
        }
    return DIT_OK;
}


/* A whole trajectory from x_T against the reference's x_0: max |diff| / max |ref| */
static double ddpm_traj(const dit_model *m, sampler_kind kind, int steps, int label, float scale, int gch, rng *g, int batch,
                        const float *xT, const float *want, standin *sd)
{
    static ddpm_schedule ds;
    dit_err e = { 0 };
    float x[16];
    memcpy(x, xT, sizeof x);
    const int labs[2] = { label, 10 };
    dit_input c[2] = { { .labels = &labs[0] }, { .labels = &labs[1] } };
    guidance *gd = guidance_cfg_new(scale, &e);
    memset(sd, 0, sizeof *sd);
    sd->t_ok = 1;
    sampler_opts so = { .kind = kind, .ddpm = &ds, .noise = g, .noise_batch = batch, .g = gd, .conds = c, .n_conds = 2,
                        .guide_channels = gch, .forward = eps_standin, .fuser = sd };
    const int ok = gd && ddpm_schedule_linear(&ds, 1000, steps, &e) == DIT_OK && sampler_run(m, NULL, &so, x, 2, 2, &e) == DIT_OK;
    guidance_free(gd);
    if (!ok) {
        fprintf(stderr, "  %s\n", e.msg);
        return INFINITY;
    }
    double d = 0, mx = 0;
    for (int i = 0; i < 16; i++) d = fmax(d, fabs(x[i] - (double)want[i])), mx = fmax(mx, fabs(want[i]));
    if (!(d == d)) d = INFINITY;
    return d / mx;
}

static void t_ddpm_reference(tctx *t)
{
    if (!test_golden_present(t)) return;
    dit_model *m = load_tiny(t, "dit_xl2_like", -1); /* for its channel counts (4 in, 8 out) */
    if (!m) return;
    /* x_T = the philox generator's seed-11 randn(16) (checked below) */
    static const float xT[16] = { -0.119975343f, -0.712549388f, -0.603836119f, 0.0694889426f, 0.980400383f, 0.396769345f,
                                  0.706389189f,  1.41857231f,   -0.606066823f, -1.16011405f,  0.558047831f, -0.000411688554f,
                                  0.0479953364f, 0.658330202f,  -1.50005198f,  1.28517783f };
    static const float ddim_all[16] = { 1.21301335f, 0.843976051f, 0.912885422f, 1.32564922f, 1.03071919f, 0.692524697f,
                                        0.87646099f, 1.26565897f, -0.818088763f, -1.1285069f, -0.0707343721f, -0.440543608f,
                                        -1.25618951f, -0.878371928f, -2.09168141f, -0.483020562f };
    static const float ddim_ch3[16] = { 1.21301335f, 0.843976051f, 0.912885422f, 1.32564922f, 1.03071919f, 0.692524697f,
                                        0.87646099f, 1.26565897f, -0.818088763f, -1.1285069f, -0.0707343721f, -0.440543608f,
                                        0.343344881f, 0.726435774f, -0.621665562f, 1.07767733f };
    static const float ddpm_none[16] = { -0.174650129f, -1.01079016f, 0.0403096241f, -1.24966595f, 0.473572634f, -0.0478259314f,
                                        -0.401213875f, 0.0843150967f, 0.161986076f, 0.263456453f, 0.742211214f, 0.799313136f,
                                        0.769755696f, 0.952261389f, 1.16380893f, -0.0386253465f };
    static const float ddpm_cpu[16] = { 1.28062822f, 1.49920097f, 0.858003529f, 2.55105205f, 0.112222638f, 1.00248662f,
                                        0.838915619f, 1.33405569f, -0.446718197f, 0.675578923f, -0.71388106f, 0.39850999f,
                                        0.557228788f, -0.0026183723f, -0.732354505f, 0.425849026f };
    rng g;
    float x[16];
    dit_err e = { 0 };
    rng_init(&g, RNG_CUDA, 11, &e);
    rng_randn(&g, x, 16);
    CHECK(t, !memcmp(x, xT, sizeof x), "x_T: %.9g", x[0]);
    standin sd;
    /* DDIM, 250 steps, CFG 4 on every eps channel / on the first 3 (forward_with_cfg) */
    double d = ddpm_traj(m, SAMPLER_DDIM, 250, 3, 4.0f, 0, NULL, 0, xT, ddim_all, &sd);
    printf("  ddim 250 steps, cfg 4 (all eps channels): max error / max |x| %.2e\n", d);
    CHECK(t, d < 1e-5 && sd.calls == 500 && sd.t_ok && sd.last_t == 0, "ddim all: %g, %d calls, t ok %d", d, sd.calls, sd.t_ok);
    d = ddpm_traj(m, SAMPLER_DDIM, 250, 3, 4.0f, 3, NULL, 0, xT, ddim_ch3, &sd);
    printf("  ddim 250 steps, cfg 4 (first 3 channels): %.2e\n", d);
    CHECK(t, d < 1e-5, "ddim 3 channels: %g", d);
    /* DDPM, 50 steps, one pass, philox seed 5: x_T then one randn(16) per step but the last */
    rng_init(&g, RNG_CUDA, 5, &e);
    rng_randn(&g, x, 16);
    d = ddpm_traj(m, SAMPLER_DDPM, 50, 7, 1.0f, 0, &g, 0, x, ddpm_none, &sd);
    printf("  ddpm 50 steps, no guidance, cuda generator: %.2e\n", d);
    CHECK(t, d < 1e-5 && sd.calls == 50 && g.u.cuda.offset == 50, "ddpm: %g, %d calls, offset %llu", d, sd.calls,
          (unsigned long long)g.u.cuda.offset);
    /* DiT sample.py on the CPU: DDPM 25 steps, CFG 4 on 3 channels, torch CPU seed 3, each step's
     * noise the first half of randn(32) */
    rng_init(&g, RNG_CPU, 3, &e);
    rng_randn(&g, x, 16);
    d = ddpm_traj(m, SAMPLER_DDPM, 25, 2, 4.0f, 3, &g, 2, x, ddpm_cpu, &sd);
    printf("  ddpm 25 steps, cfg 4 (3 channels), cpu generator, doubled noise: %.2e\n", d);
    CHECK(t, d < 1e-5 && sd.calls == 50, "ddpm cpu: %g", d);
    dit_free(m);
}

/* The tiny golden DiT through dit_forward: DDPM and DDIM with CFG run, are deterministic and
 * finite; the flow steppers refuse DiT and the DDPM samplers refuse SiT. */
static void t_ddpm_dit(tctx *t)
{
    if (!test_golden_present(t)) return;
    dit_model *m = load_tiny(t, "dit_xl2_like", -1);
    if (!m) return;
    dit_err e = { 0 };
    dit_state *s = dit_state_new(m, 8, 8, 0, &e);
    guidance *gd = guidance_cfg_new(4.0f, &e);
    static ddpm_schedule ds;
    CHECK(t, s && gd && ddpm_schedule_linear(&ds, 1000, 12, &e) == DIT_OK, "%s", e.msg);
    const int labs[2] = { 3, 10 };
    dit_input c[2] = { { .labels = &labs[0] }, { .labels = &labs[1] } };
    float x[2][256];
    for (int k = 0; s && gd && k < 2 * SAMPLER_COUNT; k++) {
        const sampler_kind kind = k % 2 ? SAMPLER_DDPM : SAMPLER_DDIM;
        if (k >= 4) break;
        rng g;
        rng_init(&g, k < 2 ? RNG_CUDA : RNG_CPU, 42, &e);
        float *xk = x[k / 2 % 2];
        rng_randn(&g, xk, 256);
        sampler_opts so = { .kind = kind, .ddpm = &ds, .noise = &g, .g = gd, .conds = c, .n_conds = 2 };
        CHECK(t, sampler_run(m, s, &so, xk, 8, 8, &e) == DIT_OK, "%s: %s", sampler_kind_name(kind), e.msg);
        int finite = 1;
        double mx = 0;
        for (int i = 0; i < 256; i++) finite &= isfinite(xk[i]), mx = fmax(mx, fabs(xk[i]));
        CHECK(t, finite && mx > 0, "%s: finite (max |x| %g)", sampler_kind_name(kind), mx);
        if (k % 2 == 0) continue;
        /* again from the same seed: the same bits (DDIM's result in x[0] is overwritten by then) */
        float y[256];
        rng_init(&g, k < 2 ? RNG_CUDA : RNG_CPU, 42, &e);
        rng_randn(&g, y, 256);
        CHECK(t, sampler_run(m, s, &so, y, 8, 8, &e) == DIT_OK && !memcmp(y, xk, sizeof y), "%s: deterministic",
              sampler_kind_name(kind));
    }
    float sig[3] = { 1.0f, 0.5f, 0.0f }, xx[256] = { 0 };
    sampler_opts fo = { .kind = SAMPLER_EULER, .sigmas = sig, .n_steps = 2, .t_scale = 1000, .g = gd, .conds = c, .n_conds = 2 };
    CHECK(t, s && sampler_run(m, s, &fo, xx, 8, 8, &e) == DIT_E_UNSUPPORTED && strstr(e.msg, "ddim"), "euler on DiT: %s", e.msg);
    sampler_opts no = { .kind = SAMPLER_DDPM, .ddpm = &ds, .g = gd, .conds = c, .n_conds = 2 };
    CHECK(t, s && sampler_run(m, s, &no, xx, 8, 8, &e) == DIT_E_ARG && strstr(e.msg, "generator"), "ddpm without rng: %s", e.msg);
    guidance_free(gd);
    dit_state_free(s);
    dit_free(m);
    m = load_tiny(t, "sit_xl2_like", DIT_SIT);
    sampler_opts so = { .kind = SAMPLER_DDIM, .ddpm = &ds, .g = gd, .conds = c, .n_conds = 1 };
    gd = guidance_none_new(&e);
    so.g = gd;
    CHECK(t, m && sampler_run(m, NULL, &so, xx, 8, 8, &e) == DIT_E_UNSUPPORTED && strstr(e.msg, "eps-prediction"), "ddim on SiT: %s",
          e.msg);
    guidance_free(gd);
    dit_free(m);
}

int main(void)
{
    tctx t = test_begin("sampler");
    RUN(&t, t_cfg);
    RUN(&t, t_sampler_args);
    RUN(&t, t_order);
    RUN(&t, t_sit_time);
    RUN(&t, t_dpmpp_reference);
    RUN(&t, t_ddpm_schedule);
    RUN(&t, t_ddpm_reference);
    RUN(&t, t_ddpm_dit);
    return test_end(&t);
}
