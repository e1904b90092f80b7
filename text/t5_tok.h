/* text/t5_tok.h — the T5 SentencePiece unigram tokenizer (T5 v1.1 / T5-XXL), with the id rows
 * SD3/SD3.5 and FLUX.1 feed their T5 encoder.
 *
 *   t5_tok *t; dit_err e = {0};
 *   if (t5_tok_open(&t, "models/sd3/tokenizer_3", &e) != DIT_OK) { fprintf(stderr, "%s\n", e.msg); return 1; }
 *   tok_ids sd3 = {0}, flux = {0};
 *   t5_tok_sd3(t, prompt, strlen(prompt), &sd3, &e);        // >= 77 ids, never truncated
 *   t5_tok_flux(t, prompt, strlen(prompt), 512, &flux, &e); // FLUX dev 512, schnell 256
 *   tok_ids_free(&sd3); tok_ids_free(&flux);
 *   t5_tok_close(t);
 *
 * Files (untrusted, bounds-checked; errors name the file): spiece.model (protobuf ModelProto of
 * sentencepiece) or a transformers tokenizer.json with a Unigram model (vocab with scores, the
 * precompiled charsmap base64 in its normalizer), or a folder holding either (spiece.model first).
 *
 * Encoding (golden README, tokenizers/t5; sentencepiece normalizer.cc and unigram_model.cc
 * EncodeOptimized): the normalization rules of the file (nmt_nfkc for T5: its precompiled
 * charsmap, a double-array trie of longest-match rewrites), extra whitespace removed, a dummy "▁"
 * prefix, spaces as "▁"; then Viterbi over the pieces by score (ties: the first candidate, i.e.
 * the one starting earlier, wins), a character no piece covers is <unk> with score
 * min_score - 10, and a run of consecutive <unk> becomes one. Ids: pad 0, EOS 1, unk 2, no BOS.
 * Special-token strings typed in a prompt ("</s>", "<extra_id_0>") are ordinary text here, as in
 * sentencepiece and the golden data; transformers' T5Tokenizer (FLUX's) would map them to their ids.
 * A tokenizer is immutable after open: any number of threads may encode with it.
 */
#ifndef DIT_TEXT_T5_TOK_H
#define DIT_TEXT_T5_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tok.h"

#define T5_TOK_SD3_CHARS 226 /* sd3.5 cuts the prompt to text[:226] (code points) for T5 */
#define T5_TOK_SD3_MIN 77    /* and pads its one row to at least 77 ids */

typedef struct t5_tok t5_tok;

dit_status t5_tok_open(t5_tok **out, const char *path, dit_err *e);
void t5_tok_close(t5_tok *t);

int32_t t5_tok_eos(const t5_tok *t);        /* </s>: 1 */
int32_t t5_tok_pad(const t5_tok *t);        /* <pad>: 0 */
int32_t t5_tok_unk(const t5_tok *t);        /* <unk>: 2 */
int32_t t5_tok_vocab_size(const t5_tok *t); /* pieces in the file: 32000 (T5-XXL's embedding has 32128 rows) */
/* The piece string of id (UTF-8, "▁" for a space); NULL when out of range. */
const char *t5_tok_piece(const t5_tok *t, int32_t id);
/* Its score (log probability; 0 for control pieces and out of range). */
float t5_tok_score(const t5_tok *t, int32_t id);

/* sentencepiece encode of text[0..len) (UTF-8; NUL allowed): ids without EOS, appended to out.
 * DIT_E_ARG for malformed UTF-8. */
dit_status t5_tok_encode(const t5_tok *t, const char *text, size_t len, tok_ids *out, dit_err *e);

/* SD3/SD3.5 (sd3.5 T5XXLTokenizer): text[:226] code points, emphasis parsed, words encoded one by
 * one (tok.h rules 1-2), then EOS, padded with 0 to at least 77; never truncated. */
dit_status t5_tok_sd3(const t5_tok *t, const char *text, size_t len, tok_ids *out, dit_err *e);

/* FLUX.1 (transformers T5Tokenizer, truncation=True, padding="max_length"): the whole text,
 * ids[:max_len - 1] + [EOS], padded with <pad> to max_len (256 schnell, 512 dev). */
dit_status t5_tok_flux(const t5_tok *t, const char *text, size_t len, size_t max_len, tok_ids *out, dit_err *e);

#endif
