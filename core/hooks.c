/* core/hooks.c — see hooks.h. */
#include "hooks.h"

#include <string.h>

void hooks_qkv(const hook_list *l, const hook_site *s, hook_attn *at)
{
    for (int i = 0; l && i < l->n; i++)
        if (l->h[i].qkv) l->h[i].qkv(l->h[i].user, s, at);
}

dit_status hooks_attention(const hook_list *l, const hook_site *s, hook_attn *at, dit_err *e)
{
    for (int i = 0; l && i < l->n; i++) {
        if (!l->h[i].attn) continue;
        const int r = l->h[i].attn(l->h[i].user, s, at);
        if (r < 0)
            return err_set(e, DIT_E_ARG, "%s: attention hook %d failed at block %d", s->model ? s->model : "model", i,
                           s->block);
        if (r > 0) return DIT_OK;
    }
    const dit_status r = hook_attn_run(at);
    if (r) return err_set(e, r, "%s", ops_ctx_err(at->ctx)->msg);
    return DIT_OK;
}

void hooks_attn_out(const hook_list *l, const hook_site *s, hook_attn *at)
{
    for (int i = 0; l && i < l->n; i++)
        if (l->h[i].attn_out) l->h[i].attn_out(l->h[i].user, s, at);
}

int hooks_skip(const hook_list *l, const hook_site *s)
{
    for (int i = 0; l && i < l->n; i++)
        if (l->h[i].skip && l->h[i].skip(l->h[i].user, s)) return 1;
    return 0;
}

void hooks_block_out(const hook_list *l, const hook_site *s, float *x, int64_t rows, int dim)
{
    for (int i = 0; l && i < l->n; i++)
        if (l->h[i].block_out) l->h[i].block_out(l->h[i].user, s, x, rows, dim);
}

void hooks_tap(const hook_list *l, const hook_site *s, const char *name, const float *x, int64_t rows, int cols)
{
    for (int i = 0; l && i < l->n; i++)
        if (l->h[i].tap) l->h[i].tap(l->h[i].user, s, name, x, rows, cols);
}

dit_status hook_attn_run(hook_attn *at)
{
    return ops_attention(at->ctx, at->prec, at->out, at->q, at->k, at->v, &at->a);
}

void hook_attn_identity(hook_attn *at)
{
    const int64_t w = (int64_t)at->a.n_heads * at->a.head_dim;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < at->a.n_q; i++)
        memcpy(at->out + i * at->a.o_stride, at->v + i * at->a.v_stride, sizeof(float) * w);
}

const char *hook_stream_name(hook_stream s)
{
    static const char *const names[HOOK_STREAM_COUNT] = { "txt", "img", "joint" };
    return (unsigned)s < HOOK_STREAM_COUNT ? names[s] : "?";
}

const char *hook_block_kind_name(hook_block_kind k)
{
    static const char *const names[HOOK_BLOCK_KIND_COUNT] = { "plain", "double", "single" };
    return (unsigned)k < HOOK_BLOCK_KIND_COUNT ? names[k] : "?";
}
