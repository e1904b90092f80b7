/* text/word.h — the word-level tokenizer of the embedded default model (weights/, issue 7): its
 * vocabulary is stored in the model file (safetensors metadata "text.vocab", a JSON array; the id of
 * a word is its index), next to a small CLIP-architecture encoder (text/clip.h).
 *
 *   word_tok *t;  word_tok_open(&t, "weights/default.safetensors", &e);
 *   int32_t ids[32];  int unknown;
 *   word_tok_encode(t, "A red circle, left of a blue square", ids, 32, &unknown, &e);
 *   text_words_condition(clip, state, ids, 32, context, pooled, &e);      // text/cond.h
 *
 * Rule (the training code's, tools/train/): ASCII letters are lowercased and every character
 * that is not [a-z0-9] becomes a space; the text is split on spaces; each word is its id, or
 * <unk>'s when the vocabulary lacks it. The row is [<bos>] + the first n - 2 word ids + [<eos>],
 * padded with <eos> to n: the empty prompt is [<bos>, <eos>, <eos>, ...]. <eos> is the largest id,
 * so CLIP's pooling at argmax(ids) picks the first <eos>. Vocabulary entries other than <unk>,
 * <bos>, <eos> must be non-empty [a-z0-9] words. Immutable after open; any number of threads may
 * encode with one tokenizer.
 */
#ifndef DIT_TEXT_WORD_H
#define DIT_TEXT_WORD_H

#include <stdint.h>

#include "core/err.h"

#define WORD_TOK_MAX_VOCAB 65536
#define WORD_TOK_MAX_WORD 64

typedef struct word_tok word_tok;

/* json: the vocabulary array; what names its source in errors. */
dit_status word_tok_from_json(word_tok **out, const char *json, const char *what, dit_err *e);
/* The vocabulary of a safetensors file's metadata "text.vocab". DIT_E_FORMAT without it. */
dit_status word_tok_open(word_tok **out, const char *path, dit_err *e);
void word_tok_close(word_tok *t); /* NULL is fine */
int word_tok_size(const word_tok *t);
int32_t word_tok_id(const word_tok *t, const char *word); /* -1 when absent */
const char *word_tok_word(const word_tok *t, int32_t id); /* NULL out of range */
/* ids: [n] (n >= 2). *unknown (may be NULL): how many words were not in the vocabulary; first_unknown
 * (may be NULL, cap bytes): the first of them. */
dit_status word_tok_encode(const word_tok *t, const char *text, int32_t *ids, int n, int *unknown, char *first_unknown,
                           int cap, dit_err *e);

#endif
