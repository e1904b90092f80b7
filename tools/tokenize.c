/* tools/tokenize.c — `dit tokenize`: the token ids a prompt becomes, for a user to see.
 *
 *   dit tokenize --tokenizer models/sd3/tokenizer "a photo of a cat"          320 1125 539 320 2368
 *   dit tokenize --tokenizer spiece.model --mode flux --max-length 256 "a cat"
 *
 * The tokenizer kind (CLIP BPE or T5 SentencePiece) comes from the file or folder (tok_detect).
 * Output: one line of ids per row; --pieces adds the piece strings, --weights the SD3 emphasis
 * weights. Pieces come from untrusted files: control bytes are printed as \xNN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/clip_tok.h"
#include "text/t5_tok.h"
#include "tools/cli.h"

typedef enum { MODE_RAW, MODE_SD3, MODE_FLUX } mode;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dit tokenize --tokenizer PATH [--mode raw|sd3|flux] [options] TEXT\n"
            "\n"
            "Print the token ids of TEXT (\"-\": read it from standard input) for a CLIP BPE or a\n"
            "T5 SentencePiece tokenizer, detected from PATH: bpe_simple_vocab_16e6.txt.gz, a folder\n"
            "with vocab.json + merges.txt, spiece.model, tokenizer.json, or a diffusers folder\n"
            "(tokenizer/, tokenizer_2/, tokenizer_3/) holding one of them.\n"
            "\n"
            "options:\n"
            "  --tokenizer PATH   tokenizer file or folder (required)\n"
            "  --mode MODE        raw   the tokenizer's ids, no BOS/EOS/padding                [raw]\n"
            "                     sd3   SD3/SD3.5 rows: CLIP rows of 77 (emphasis parsed, words\n"
            "                           chunked), T5 one row of text[:226] + EOS, >= 77 ids\n"
            "                     flux  FLUX.1 row: [BOS] ids [EOS] padded (CLIP), ids + EOS (T5)\n"
            "  --pad ID           pad id of CLIP sd3 rows: EOS for CLIP-L, 0 for CLIP-G        [EOS]\n"
            "  --max-length N     length of the flux row: CLIP 77; T5 512 (dev) or 256 (schnell)\n"
            "                                                                    [77 CLIP, 512 T5]\n"
            "  --pieces           print each id with its piece string, one per line\n"
            "  --weights          also print the SD3 emphasis weight of every token (sd3 mode)\n"
            "  -h, --help         show this help\n"
            "\n"
            "exit status: 0 ok, 1 unreadable tokenizer or text that is not UTF-8, 2 usage error\n");
}

static void put_piece(const char *s)
{
    for (; s && *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

/* ids in rows of `row` (0: one row), optionally with pieces or weights. */
static void print_ids(const tok_ids *ids, size_t row, int pieces, int weights, const char *(*piece)(const void *, int32_t),
                      const void *tok)
{
    if (row == 0) row = ids->n ? ids->n : 1;
    for (size_t r = 0; r * row < ids->n || (r == 0 && ids->n == 0); r++) {
        const size_t a = r * row, b = a + row < ids->n ? a + row : ids->n;
        if (pieces) {
            for (size_t i = a; i < b; i++) {
                printf("%d\t", ids->id[i]);
                put_piece(piece(tok, ids->id[i]));
                putchar('\n');
            }
            if (b < ids->n) putchar('\n');
            continue;
        }
        for (size_t i = a; i < b; i++) printf(i > a ? " %d" : "%d", ids->id[i]);
        putchar('\n');
        if (weights) {
            for (size_t i = a; i < b; i++) printf(i > a ? " %.6g" : "%.6g", ids->weight[i]);
            putchar('\n');
        }
    }
}

static const char *clip_piece(const void *tok, int32_t id)
{
    return clip_tok_piece(tok, id);
}

static const char *t5_piece(const void *tok, int32_t id)
{
    return t5_tok_piece(tok, id);
}

/* All of standard input (any bytes), NUL-terminated; NULL when out of memory. */
static char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, stdin);
        if (n < cap - 1) break;
        char *p = realloc(buf, cap *= 2);
        if (!p) free(buf);
        buf = p;
    }
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL, *text = NULL;
    mode m = MODE_RAW;
    long pad = -1, max_len = 0;
    int pieces = 0, weights = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_value = i + 1 < argc;
        char *end;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tokenizer") && has_value) path = argv[++i];
        else if (!strcmp(a, "--mode") && has_value) {
            const char *v = argv[++i];
            if (!strcmp(v, "raw")) m = MODE_RAW;
            else if (!strcmp(v, "sd3")) m = MODE_SD3;
            else if (!strcmp(v, "flux")) m = MODE_FLUX;
            else {
                fprintf(stderr, "dit tokenize: --mode '%s' (raw, sd3 or flux)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--pad") && has_value) {
            pad = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || pad < 0 || pad > INT32_MAX) {
                fprintf(stderr, "dit tokenize: --pad '%s' is not a token id\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--max-length") && has_value) {
            max_len = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || max_len < 2 || max_len > 1000000) {
                fprintf(stderr, "dit tokenize: --max-length '%s' (an integer in [2, 1000000])\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--pieces")) pieces = 1;
        else if (!strcmp(a, "--weights")) weights = 1;
        else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "dit tokenize: unknown option or missing value '%s' (try --help)\n", a);
            return 2;
        } else if (text) {
            fprintf(stderr, "dit tokenize: more than one text ('%s', '%s'); quote the prompt\n", text, a);
            return 2;
        } else text = a;
    }
    if (!path || !text) {
        usage(stderr);
        return 2;
    }
    size_t len = strlen(text);
    char *owned = NULL;
    if (!strcmp(text, "-") && !(text = owned = read_stdin(&len))) {
        fprintf(stderr, "dit tokenize: out of memory reading standard input\n");
        return 1;
    }
    dit_err e = { 0 };
    const tok_kind kind = tok_detect(path, &e);
    tok_ids ids = { 0 };
    dit_status rc = kind == TOK_UNKNOWN ? e.code : DIT_OK;
    if (kind == TOK_CLIP) {
        clip_tok *t;
        if ((rc = clip_tok_open(&t, path, &e)) == DIT_OK) {
            const size_t row = max_len ? (size_t)max_len : CLIP_TOK_ROW;
            if (m == MODE_RAW) rc = clip_tok_encode(t, text, len, &ids, &e);
            else if (m == MODE_SD3) rc = clip_tok_sd3(t, text, len, pad >= 0 ? (int32_t)pad : clip_tok_eos(t), &ids, &e);
            else rc = clip_tok_flux(t, text, len, row, &ids, &e);
            if (rc == DIT_OK) print_ids(&ids, m == MODE_RAW ? 0 : m == MODE_SD3 ? CLIP_TOK_ROW : row, pieces, weights, clip_piece, t);
            clip_tok_close(t);
        }
    } else if (kind == TOK_T5) {
        t5_tok *t;
        if ((rc = t5_tok_open(&t, path, &e)) == DIT_OK) {
            if (m == MODE_RAW) rc = t5_tok_encode(t, text, len, &ids, &e);
            else if (m == MODE_SD3) rc = t5_tok_sd3(t, text, len, &ids, &e);
            else rc = t5_tok_flux(t, text, len, max_len ? (size_t)max_len : 512, &ids, &e);
            if (rc == DIT_OK) print_ids(&ids, 0, pieces, weights, t5_piece, t);
            t5_tok_close(t);
        }
    }
    tok_ids_free(&ids);
    free(owned);
    if (rc != DIT_OK) {
        fprintf(stderr, "dit tokenize: %s\n", e.msg);
        return 1;
    }
    return 0;
}
