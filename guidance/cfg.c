/* guidance/cfg.c — no guidance and classifier-free guidance (METHODS.md 2.1). */
#include <stdlib.h>

#include "guidance/guidance.h"

typedef struct {
    guidance base;
    float scale;
} cfg;

void guidance_free(guidance *g)
{
    if (g) g->ops->free(g);
}

static void plain_free(guidance *g)
{
    free(g);
}

static int cfg_passes(const guidance *g, const guidance_step *st)
{
    (void)st;
    return ((const cfg *)g)->scale == 1.0f ? 1 : 2;
}

static void cfg_setup(const guidance *g, const guidance_step *st, int pass, guidance_pass *p)
{
    (void)g, (void)st;
    p->cond = pass; /* 0 the prompt, 1 the negative prompt */
    p->hooks = (hook_list){ NULL, 0 };
}

/* v = v_u + scale (v_c - v_u), computed as the reference does on x0 (sd3_impls.CFGDenoiser:
 * uncond + (cond - uncond) * scale), which is the same affine rule on v. */
static void cfg_combine(const guidance *g, const guidance_step *st, const float *const *v, int n_pass, float *out,
                        size_t n)
{
    (void)st;
    const float s = ((const cfg *)g)->scale;
    if (n_pass == 1) {
        for (size_t i = 0; i < n; i++) out[i] = v[0][i];
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = v[1][i] + (v[0][i] - v[1][i]) * s;
}

static const guidance_ops CFG_OPS = { "cfg", cfg_passes, cfg_setup, cfg_combine, plain_free };

guidance *guidance_cfg_new(float scale, dit_err *e)
{
    if (!(scale >= 0) || scale > 1000) {
        err_set(e, DIT_E_ARG, "cfg: scale %g is outside [0, 1000]", scale);
        return NULL;
    }
    cfg *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, DIT_E_OOM, "cfg: out of memory");
        return NULL;
    }
    c->base.ops = &CFG_OPS;
    c->base.n_conds = scale == 1.0f ? 1 : 2;
    c->scale = scale;
    return &c->base;
}

guidance *guidance_none_new(dit_err *e)
{
    return guidance_cfg_new(1.0f, e);
}
