/* text/cond.c — SD3 and FLUX conditioning from token ids (see cond.h). */
#include "text/cond.h"

#include <stdlib.h>
#include <string.h>

int text_sd3_context_dim(const text_encoders *te)
{
    return te->ctx_dim > 0 ? te->ctx_dim : TEXT_SD3_CTX_DIM;
}

int text_sd3_context_len(const text_encoders *te, int n_t5)
{
    return TEXT_CLIP_TOKENS + (te->t5 ? n_t5 : TEXT_SD3_T5_ZEROS);
}

int text_sd3_pooled_dim(const text_encoders *te)
{
    return (te->clip_l ? clip_model_config(te->clip_l)->hidden : 0) + (te->clip_g ? clip_model_config(te->clip_g)->proj : 0);
}

static hook_list hooks_or_none(const hook_list *h)
{
    hook_list none = { NULL, 0 };
    return h ? *h : none;
}

dit_status text_sd3_condition(const text_encoders *te, const int32_t *ids_l, const int32_t *ids_g, const int32_t *ids_t5,
                              int n_t5, const hook_list *hooks, float *context, float *pooled, text_cond_info *info,
                              dit_err *e)
{
    if (!te->clip_l || !te->clip_l_state || !te->clip_g || !te->clip_g_state || !ids_l || !ids_g || !context || !pooled)
        return err_set(e, DIT_E_ARG, "text: SD3 conditioning needs CLIP-L and CLIP-G (models and states), their ids and outputs");
    const clip_config *cl = clip_model_config(te->clip_l), *cg = clip_model_config(te->clip_g);
    const int W = text_sd3_context_dim(te), Dl = cl->hidden, Dg = cg->hidden, N = TEXT_CLIP_TOKENS;
    if (!cg->proj) return err_set(e, DIT_E_ARG, "text: the CLIP-G model has no text_projection (SD3 pools through it)");
    if (Dl + Dg > W) return err_set(e, DIT_E_ARG, "text: CLIP-L %d + CLIP-G %d channels exceed the context width %d", Dl, Dg, W);
    if (cl->n_pos < N || cg->n_pos < N) return err_set(e, DIT_E_ARG, "text: CLIP models with fewer than 77 positions");
    if (te->t5) {
        const t5_config *ct = t5_model_config(te->t5);
        if (!te->t5_state || !ids_t5 || n_t5 < 1) return err_set(e, DIT_E_ARG, "text: T5 needs its state and 1 or more ids");
        if (ct->d_model > W) return err_set(e, DIT_E_ARG, "text: T5 width %d exceeds the context width %d", ct->d_model, W);
    }
    const int n_ctx = text_sd3_context_len(te, n_t5);
    const hook_list hl = hooks_or_none(hooks);
    /* the CLIP rows: [L penultimate | G penultimate | zeros] (sd3_infer.py: cat(-1), pad to 4096) */
    float *pl = malloc(sizeof(float) * N * Dl), *pg = malloc(sizeof(float) * N * Dg);
    dit_status r = pl && pg ? DIT_OK : err_set(e, DIT_E_OOM, "text: out of memory");
    if (!r) {
        clip_input in = { .batch = 1, .n_tok = N, .ids = ids_l, .hooks = hl };
        clip_output out = { .penultimate = pl, .pooled = pooled };
        r = clip_encode(te->clip_l, te->clip_l_state, &in, &out, e);
    }
    if (!r) {
        clip_input in = { .batch = 1, .n_tok = N, .ids = ids_g, .hooks = hl };
        clip_output out = { .penultimate = pg, .projected = pooled + Dl };
        r = clip_encode(te->clip_g, te->clip_g_state, &in, &out, e);
    }
    if (!r) {
        memset(context, 0, sizeof(float) * (size_t)n_ctx * W);
        for (int t = 0; t < N; t++) {
            memcpy(context + (size_t)t * W, pl + (size_t)t * Dl, sizeof(float) * Dl);
            memcpy(context + (size_t)t * W + Dl, pg + (size_t)t * Dg, sizeof(float) * Dg);
        }
    }
    free(pl), free(pg);
    /* the T5 rows after them (narrower T5 rows zero-padded); without T5 they stay zeros */
    if (!r && te->t5) {
        const int Dt = t5_model_config(te->t5)->d_model;
        float *t5o = context + (size_t)N * W;
        t5_input in = { .batch = 1, .n_tok = n_t5, .ids = ids_t5, .hooks = hl };
        if (Dt == W) r = t5_encode(te->t5, te->t5_state, &in, t5o, e);
        else {
            float *tmp = malloc(sizeof(float) * n_t5 * Dt);
            r = tmp ? t5_encode(te->t5, te->t5_state, &in, tmp, e) : err_set(e, DIT_E_OOM, "text: out of memory");
            for (int t = 0; !r && t < n_t5; t++) memcpy(t5o + (size_t)t * W, tmp + (size_t)t * Dt, sizeof(float) * Dt);
            free(tmp);
        }
    }
    if (!r && info) {
        info->n_ctx = n_ctx, info->ctx_dim = W, info->pooled_dim = Dl + cg->proj;
        info->t5_missing = te->t5 == NULL;
    }
    return r;
}

dit_status text_flux_condition(const text_encoders *te, const int32_t *ids_l, const int32_t *ids_t5, int n_t5,
                               const hook_list *hooks, float *context, float *pooled, text_cond_info *info, dit_err *e)
{
    if (!te->clip_l || !te->clip_l_state || !te->t5 || !te->t5_state || !ids_l || !ids_t5 || n_t5 < 1 || !context || !pooled)
        return err_set(e, DIT_E_ARG, "text: FLUX conditioning needs CLIP-L and T5 (models and states), their ids and outputs");
    const hook_list hl = hooks_or_none(hooks);
    clip_input ci = { .batch = 1, .n_tok = TEXT_CLIP_TOKENS, .ids = ids_l, .hooks = hl };
    clip_output co = { .pooled = pooled };
    dit_status r = clip_encode(te->clip_l, te->clip_l_state, &ci, &co, e);
    if (r) return r;
    t5_input ti = { .batch = 1, .n_tok = n_t5, .ids = ids_t5, .hooks = hl };
    if ((r = t5_encode(te->t5, te->t5_state, &ti, context, e))) return r;
    if (info) {
        info->n_ctx = n_t5, info->ctx_dim = t5_model_config(te->t5)->d_model;
        info->pooled_dim = clip_model_config(te->clip_l)->hidden;
        info->t5_missing = 0;
    }
    return DIT_OK;
}

dit_status text_words_condition(const clip_model *clip, clip_state *state, const int32_t *ids, int n, float *context,
                                float *pooled, dit_err *e)
{
    if (!clip || !state || !ids || !context || !pooled) return err_set(e, DIT_E_ARG, "text: word conditioning needs a CLIP and its state");
    const clip_config *c = clip_model_config(clip);
    if (n < 2 || n > c->n_pos) return err_set(e, DIT_E_ARG, "text: %d ids for a CLIP of %d positions", n, c->n_pos);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab) return err_set(e, DIT_E_ARG, "text: id %d outside the %d-word vocabulary", ids[i], c->vocab);
    clip_input in = { .batch = 1, .n_tok = n, .ids = ids };
    clip_output out = { .last = context, .pooled = pooled };
    return clip_encode(clip, state, &in, &out, e);
}
