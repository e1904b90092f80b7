/* text/clip_tok.h — the CLIP BPE tokenizer (CLIP-L and CLIP-G share it), with the token rows
 * SD3/SD3.5 and FLUX.1 feed their CLIP encoders.
 *
 *   clip_tok *t; dit_err e = {0};
 *   if (clip_tok_open(&t, "models/sd3/tokenizer", &e) != DIT_OK) { fprintf(stderr, "%s\n", e.msg); return 1; }
 *   tok_ids l = {0}, g = {0}, fx = {0};
 *   clip_tok_sd3(t, prompt, strlen(prompt), clip_tok_eos(t), &l, &e);   // CLIP-L rows of 77, pad 49407
 *   clip_tok_sd3(t, prompt, strlen(prompt), CLIP_TOK_PAD_G, &g, &e);    // CLIP-G rows, pad 0
 *   clip_tok_flux(t, prompt, strlen(prompt), CLIP_TOK_ROW, &fx, &e);    // FLUX: one row, truncated
 *   tok_ids_free(&l); tok_ids_free(&g); tok_ids_free(&fx);
 *   clip_tok_close(t);
 *
 * Files (untrusted, bounds-checked; errors name the file): the openai form
 * bpe_simple_vocab_16e6.txt.gz (line 0 a header, then merges "a b"), a diffusers folder
 * `tokenizer/` or `tokenizer_2/` with vocab.json + merges.txt ("#version" header), or a
 * tokenizer.json with a BPE model; a folder is searched for them in that order of preference.
 * Only the first CLIP_TOK_MERGES merges count, as in both reference implementations.
 *
 * Encoding (golden README, tokenizers/clip; transformers CLIPTokenizer without ftfy = `hf_noftfy`,
 * the primary variant): literal "<|startoftext|>" / "<|endoftext|>" split out; the rest cleaned
 * (drop NUL, U+FFFD and categories C* but \t\n\r; those and Zs -> space; spaces around CJK
 * ideographs; NFC; split on whitespace; Python str.lower() per word); the CLIP regex
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * (IGNORECASE); each piece's UTF-8 bytes as byte symbols, "</w>" on the last; BPE by merge rank.
 * A tokenizer is immutable after open: any number of threads may encode with it.
 */
#ifndef DIT_TEXT_CLIP_TOK_H
#define DIT_TEXT_CLIP_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tok.h"

#define CLIP_TOK_ROW 77        /* tokens per CLIP row: BOS + 75 + EOS */
#define CLIP_TOK_PAD_G 0       /* SD3 pads CLIP-G rows with id 0 ("!"); CLIP-L pads with EOS */
#define CLIP_TOK_MERGES 48894  /* 49152 - 256 - 2: merges the vocabulary is built from */

typedef struct clip_tok clip_tok;

/* path: a file of one of the forms above, or a folder holding one. */
dit_status clip_tok_open(clip_tok **out, const char *path, dit_err *e);
void clip_tok_close(clip_tok *t);

int32_t clip_tok_bos(const clip_tok *t);        /* <|startoftext|>: 49406 */
int32_t clip_tok_eos(const clip_tok *t);        /* <|endoftext|>: 49407, also CLIP-L's pad */
int32_t clip_tok_vocab_size(const clip_tok *t); /* 49408 */
/* The vocabulary string of id (byte symbols, "</w>" ending a word); NULL when out of range. */
const char *clip_tok_piece(const clip_tok *t, int32_t id);

/* Raw BPE ids of text[0..len) (UTF-8; NUL allowed), no BOS/EOS, no truncation, appended to out.
 * DIT_E_ARG for malformed UTF-8. */
dit_status clip_tok_encode(const clip_tok *t, const char *text, size_t len, tok_ids *out, dit_err *e);

/* SD3/SD3.5 rows (tok.h rules 1-3): rows of CLIP_TOK_ROW = [BOS] tokens [EOS] pad, appended to out
 * (out->n grows by rows * 77), with the emphasis weight of every token. sd3.5 encodes row 0 only.
 * pad: clip_tok_eos(t) for CLIP-L, CLIP_TOK_PAD_G for CLIP-G. */
dit_status clip_tok_sd3(const clip_tok *t, const char *text, size_t len, int32_t pad, tok_ids *out, dit_err *e);

/* FLUX.1 (transformers truncation=True, padding="max_length"): the whole text at once,
 * [BOS] ids[:max_len - 2] [EOS], padded with EOS to max_len (CLIP_TOK_ROW). */
dit_status clip_tok_flux(const clip_tok *t, const char *text, size_t len, size_t max_len, tok_ids *out, dit_err *e);

#endif
