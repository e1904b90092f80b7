/* text/cond.h — prompt conditioning per model family, from token ids (golden README
 * "tokenizers/t5", last bullets): what the diffusion model receives as context and pooled vector.
 *
 *   text_encoders te = { .clip_l = l, .clip_l_state = ls, .clip_g = g, .clip_g_state = gs,
 *                        .t5 = t5, .t5_state = ts };            // t5 may be NULL for SD3
 *   int n_ctx = text_sd3_context_len(&te, n_t5);                // 77 + n_t5 (77 + 77 without T5)
 *   float *ctx = malloc(sizeof(float) * n_ctx * text_sd3_context_dim(&te)), pooled[2048];
 *   text_cond_info info;
 *   text_sd3_condition(&te, ids_l, ids_g, ids_t5, n_t5, NULL, ctx, pooled, &info, &e);
 *   if (info.t5_missing) fprintf(stderr, "warning: no T5: its part of the context is zeros\n");
 *
 * SD3 / SD3.5 (sd3.5 sd3_infer.py get_cond): context = [pad_to_4096(CLIP-L penultimate (768) ++
 * CLIP-G penultimate (1280)) ; T5 last_hidden_state] along the sequence, [77 + n_t5, 4096];
 * pooled = CLIP-L pooled (768, unprojected) ++ CLIP-G projected pooled (1280) = [2048].
 * Without a T5 model the T5 part is 77 rows of zeros (diffusers StableDiffusion3Pipeline
 * _get_t5_prompt_embeds without text_encoder_3: zeros [77, joint_attention_dim]); the result
 * says so (info.t5_missing) and the caller warns: the library never prints.
 * FLUX.1 (flux/util.py + conditioner.py): context = T5 last_hidden_state [n_t5, 4096] (256
 * tokens for schnell, 512 for dev); pooled = CLIP-L pooled [768] (unprojected).
 * The negative (unconditional) branch is the same call with the ids of the empty prompt.
 *
 * Ids: CLIP rows of 77 (the tokenizer pads: CLIP-L with 49407, CLIP-G with 0 for SD3); T5 ids of
 * any length up to the state's size. hooks (may be NULL) reach every encoder's attention sites;
 * site.model ("clip" / "t5") tells them apart, and the CLIP-L layers come before CLIP-G's.
 */
#ifndef DIT_TEXT_COND_H
#define DIT_TEXT_COND_H

#include <stdint.h>

#include "text/clip.h"
#include "text/t5.h"

#define TEXT_SD3_CTX_DIM 4096   /* SD3 context width (joint_attention_dim) */
#define TEXT_CLIP_TOKENS 77
#define TEXT_SD3_T5_ZEROS 77    /* rows of zeros standing in for T5 */

/* Borrowed models with their states (any may be NULL where the family does not need it). */
typedef struct {
    const clip_model *clip_l;
    clip_state *clip_l_state;
    const clip_model *clip_g;
    clip_state *clip_g_state;
    const t5_model *t5;
    t5_state *t5_state;
    int ctx_dim;          /* SD3 context width; 0 = TEXT_SD3_CTX_DIM (tiny test models use less) */
} text_encoders;

typedef struct {
    int n_ctx, ctx_dim, pooled_dim; /* what was written */
    int t5_missing;                 /* SD3 without a T5 model: its rows are zeros (warn the user) */
} text_cond_info;

/* SD3 sizes for n_t5 T5 tokens: context rows and width, pooled width. */
int text_sd3_context_len(const text_encoders *te, int n_t5);
int text_sd3_context_dim(const text_encoders *te);
int text_sd3_pooled_dim(const text_encoders *te);

/* ids_l, ids_g: [77]; ids_t5: [n_t5] (ignored without T5). context: [text_sd3_context_len,
 * text_sd3_context_dim]; pooled: [text_sd3_pooled_dim]. info may be NULL. */
dit_status text_sd3_condition(const text_encoders *te, const int32_t *ids_l, const int32_t *ids_g, const int32_t *ids_t5,
                              int n_t5, const hook_list *hooks, float *context, float *pooled, text_cond_info *info,
                              dit_err *e);

/* ids_l: [77]; ids_t5: [n_t5]. context: [n_t5, t5 d_model]; pooled: [CLIP-L width]. */
dit_status text_flux_condition(const text_encoders *te, const int32_t *ids_l, const int32_t *ids_t5, int n_t5,
                               const hook_list *hooks, float *context, float *pooled, text_cond_info *info, dit_err *e);

/* The embedded default model (weights/, text/word.h): one CLIP with a word vocabulary. ids: [n]
 * (n = the model's positions). context: [n, width] = final_layer_norm(last layer), all rows;
 * pooled: [width] = that row at the first <eos> (argmax of ids). */
dit_status text_words_condition(const clip_model *clip, clip_state *state, const int32_t *ids, int n, float *context,
                                float *pooled, dit_err *e);

#endif
