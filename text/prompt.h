/* text/prompt.h — a prompt string to what a model family is conditioned on: the tokenizers' id
 * rows (text/clip_tok.h, text/t5_tok.h) fed to the encoders (text/cond.h).
 *
 *   text_tokenizers tk = { clip_tok, t5_tok };          // t5_tok may be NULL for SD3
 *   text_cond_info info;
 *   text_sd3_prompt(&te, &tk, "a photo of a cat", NULL, ctx, max_rows, pooled, &info, &e);
 *   text_flux_prompt(&te, &tk, "a photo of a cat", 512, NULL, ctx, pooled, &info, &e);   // dev: 512
 *
 * SD3/SD3.5: CLIP-L and CLIP-G get the first 77-token row of the SD3 rules (emphasis parsed, word
 * by word; pad 49407 for L, 0 for G: sd3.5 encodes only row 0), T5 its SD3 row (the first 226
 * code points, at least 77 ids, never truncated): the context has 77 + that many rows. FLUX: the
 * whole prompt at once, CLIP-L truncated to 77, T5 to t5_len (256 schnell, 512 dev). The negative
 * branch is the same call with "". */
#ifndef DIT_TEXT_PROMPT_H
#define DIT_TEXT_PROMPT_H

#include "text/clip_tok.h"
#include "text/cond.h"
#include "text/t5_tok.h"

typedef struct {
    const clip_tok *clip; /* CLIP-L and CLIP-G share it */
    const t5_tok *t5;     /* NULL without T5 */
} text_tokenizers;

/* context: room for max_rows rows of text_sd3_context_dim(te); the rows used go to info->n_ctx
 * (a prompt whose T5 row would not fit is an error that says how many rows it needs). */
dit_status text_sd3_prompt(const text_encoders *te, const text_tokenizers *tk, const char *prompt, const hook_list *hooks,
                           float *context, int max_rows, float *pooled, text_cond_info *info, dit_err *e);

/* context: [t5_len, T5 width]; pooled: [CLIP-L width]. */
dit_status text_flux_prompt(const text_encoders *te, const text_tokenizers *tk, const char *prompt, int t5_len,
                            const hook_list *hooks, float *context, float *pooled, text_cond_info *info, dit_err *e);

#endif
