/* text/prompt.c — see prompt.h. */
#include "text/prompt.h"

#include <string.h>

dit_status text_sd3_prompt(const text_encoders *te, const text_tokenizers *tk, const char *prompt, const hook_list *hooks,
                           float *context, int max_rows, float *pooled, text_cond_info *info, dit_err *e)
{
    if (!tk->clip) return err_set(e, DIT_E_ARG, "text: SD3 prompts need the CLIP tokenizer");
    const size_t len = strlen(prompt);
    tok_ids l = { 0 }, g = { 0 }, t = { 0 };
    dit_status r = clip_tok_sd3(tk->clip, prompt, len, clip_tok_eos(tk->clip), &l, e);
    if (!r) r = clip_tok_sd3(tk->clip, prompt, len, CLIP_TOK_PAD_G, &g, e);
    if (!r && te->t5) {
        if (!tk->t5) r = err_set(e, DIT_E_ARG, "text: a T5 encoder without its tokenizer");
        else r = t5_tok_sd3(tk->t5, prompt, len, &t, e);
    }
    if (!r && (l.n < CLIP_TOK_ROW || g.n < CLIP_TOK_ROW))
        r = err_set(e, DIT_E_ARG, "text: the CLIP tokenizer gave no 77-token row");
    const int rows = text_sd3_context_len(te, (int)t.n);
    if (!r && rows > max_rows)
        r = err_set(e, DIT_E_ARG, "text: the prompt needs %d context rows (77 CLIP + %zu T5), more than the %d given", rows,
                    t.n, max_rows);
    if (!r) r = text_sd3_condition(te, l.id, g.id, t.id, (int)t.n, hooks, context, pooled, info, e);
    tok_ids_free(&l), tok_ids_free(&g), tok_ids_free(&t);
    return r;
}

dit_status text_flux_prompt(const text_encoders *te, const text_tokenizers *tk, const char *prompt, int t5_len,
                            const hook_list *hooks, float *context, float *pooled, text_cond_info *info, dit_err *e)
{
    if (!tk->clip || !tk->t5) return err_set(e, DIT_E_ARG, "text: FLUX prompts need the CLIP and T5 tokenizers");
    if (t5_len < 2) return err_set(e, DIT_E_ARG, "text: T5 length %d (FLUX uses 256 or 512)", t5_len);
    const size_t len = strlen(prompt);
    tok_ids l = { 0 }, t = { 0 };
    dit_status r = clip_tok_flux(tk->clip, prompt, len, CLIP_TOK_ROW, &l, e);
    if (!r) r = t5_tok_flux(tk->t5, prompt, len, (size_t)t5_len, &t, e);
    if (!r && (l.n != CLIP_TOK_ROW || t.n != (size_t)t5_len)) r = err_set(e, DIT_E_ARG, "text: tokenizer rows of the wrong length");
    if (!r) r = text_flux_condition(te, l.id, t.id, t5_len, hooks, context, pooled, info, e);
    tok_ids_free(&l), tok_ids_free(&t);
    return r;
}
