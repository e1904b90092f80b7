/* text/tok.h — what the tokenizers share: the id lists they fill, the SD3/SD3.5 prompt rules
 * (emphasis parsing and word-by-word rows), file reading and a string -> id table.
 *
 *   tok_ids ids = {0};                                    // caller-owned, grows as needed
 *   clip_tok_sd3(clip, text, len, CLIP_TOK_PAD_G, &ids, &e);   // any tokenizer fills one
 *   for (size_t i = 0; i < ids.n; i++) printf("%d ", ids.id[i]);
 *   tok_ids_free(&ids);
 *
 *   tok_kind k = tok_detect("models/sd3/tokenizer_3", &e);    // TOK_T5: spiece.model inside
 *
 * SD3 rules (golden README, tokenizers/clip "SD3/SD3.5 sequences"; sd3.5 other_impls.py
 * SDTokenizer.tokenize_with_weights and token_weights):
 *   1. Emphasis: `\(` `\)` are literal; a balanced `( ... )` multiplies the weight by 1.1 (nested
 *      groups multiply); `(text:1.5)` sets it when the text after the last `:` is a Python float;
 *      the parentheses and `:w` leave the text. A `)` at depth 0 stays literal and drives the
 *      depth negative; an unclosed `(` group stays literal.
 *   2. Per segment: `\n` -> space, split on ' ' only, drop empty words, tokenize each word alone.
 *   3. Rows: [BOS] words [EOS] pad; a word that does not fit moves whole to the next row unless it
 *      has >= 8 tokens, then it is split to fill the row.
 */
#ifndef DIT_TEXT_TOK_H
#define DIT_TEXT_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Token ids with one emphasis weight each (1 outside SD3 emphasis). Start from {0}; every
 * tokenizer call appends; free with tok_ids_free. */
typedef struct {
    int32_t *id;     /* [n] */
    double *weight;  /* [n] as Python computes them (1.1 * 1.1 in doubles, ...) */
    size_t n, cap;
} tok_ids;

void tok_ids_free(tok_ids *t);
dit_status tok_ids_push(tok_ids *t, int32_t id, double weight, dit_err *e);

/* ---- SD3 prompts ------------------------------------------------------------------------- */

/* One emphasis segment: bytes text[0..len) of its own allocation, with its weight. */
typedef struct {
    char *text;
    size_t len;
    double weight;
} tok_segment;

/* SD3 emphasis parsing of text[0..len) (rule 1; escapes restored in the segments). *segs is
 * allocated (tok_segments_free); DIT_E_ARG for groups nested deeper than TOK_MAX_NESTING. */
#define TOK_MAX_NESTING 990 /* sd3.5's recursion works up to Python's limit (~1000) */
dit_status tok_emphasis(const char *text, size_t len, tok_segment **segs, size_t *n, dit_err *e);
void tok_segments_free(tok_segment *segs, size_t n);

/* Python float(s) for s[0..len) (UTF-8): surrounding whitespace, sign, inf/nan, underscores
 * between digits, any Unicode decimal digit. Returns 1 and sets *v when Python would accept it. */
int tok_py_float(const char *s, size_t len, double *v);

/* The ids of one word (no BOS/EOS), appended to out: a tokenizer's raw encode. */
typedef dit_status (*tok_word_fn)(const void *tok, const char *word, size_t len, tok_ids *out, dit_err *e);

/* SDTokenizer's parameters: CLIP {BOS, EOS, pad, 77, pad_to_row 1, min 0};
 * T5 {-1, EOS, 0, 0 (one row, never split), pad_to_row 0, min 77}. */
typedef struct {
    int32_t bos;      /* -1: no start token */
    int32_t eos, pad;
    size_t row;       /* max_length; 0 = unlimited */
    int pad_to_row;   /* pad every row to `row` */
    size_t min_len;   /* pad the last row to at least this many */
} tok_sd3_rule;

/* Rules 1-3 on text[0..len): rows appended to out back to back (CLIP: out->n = rows * row). */
dit_status tok_sd3_rows(const tok_sd3_rule *rule, const char *text, size_t len, tok_word_fn word,
                        const void *tok, tok_ids *out, dit_err *e);

/* ---- files ------------------------------------------------------------------------------- */

#define TOK_MAX_FILE (64u << 20) /* bytes: larger tokenizer files (or gzip contents) are refused */
/* Bytes of text one encode takes: BPE and Viterbi cost grows faster than linearly with a word's
 * length (a 64 KiB word takes about a second), so longer text is refused rather than hanging. */
#define TOK_MAX_TEXT (64u << 10)

/* The whole file (gunzipped when it starts with the gzip magic), NUL-terminated, *buf owned by
 * the caller (free). max_lines > 0: gzip contents may end after that many lines (the rest is
 * not needed: the openai merges file holds 262145 lines, CLIP uses 48895). DIT_E_IO /
 * DIT_E_FORMAT naming path. */
dit_status tok_read_file(const char *path, size_t max_lines, char **buf, size_t *len, dit_err *e);

typedef enum { TOK_UNKNOWN = 0, TOK_CLIP, TOK_T5 } tok_kind;

/* Which tokenizer a file or folder holds: bpe_simple_vocab*.txt.gz, vocab.json + merges.txt or a
 * tokenizer.json with a BPE model -> TOK_CLIP; spiece.model (or *.model) or a tokenizer.json with
 * a Unigram model -> TOK_T5. TOK_UNKNOWN with a message in e otherwise. */
tok_kind tok_detect(const char *path, dit_err *e);
/* For a folder: dir/name into buf when that file exists (returns 1), else 0. */
int tok_find_in(const char *dir, const char *name, char *buf, size_t cap);

/* ---- string -> id table (open addressing, FNV-1a) ----------------------------------------- */

typedef struct {
    int32_t *slot;          /* [mask + 1] ids, -1 = empty */
    size_t mask;
    const char *const *str; /* the owner's strings by id */
    const uint32_t *len;    /* and their byte lengths */
} tok_map;

/* Table for n ids whose strings are str[id] / len[id] (not copied: they must outlive the map). */
dit_status tok_map_init(tok_map *m, size_t n, const char *const *str, const uint32_t *len, dit_err *e);
/* Insert id; a string already present then maps to id (the later one wins, as in a Python dict
 * built from a list). Returns the id it held before, or -1 when the string is new. */
int32_t tok_map_add(tok_map *m, int32_t id);
int32_t tok_map_get(const tok_map *m, const char *s, size_t len); /* -1 when absent */
void tok_map_free(tok_map *m);

#endif
