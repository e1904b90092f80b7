/* tests/test_word.c — the embedded model's word tokenizer (text/word.h): the normalisation and row
 * rule, worked out by hand for each case; vocabulary validation; and the conditioning's context and
 * pooled rows (text/cond.h text_words_condition) on the tiny golden CLIP-L. */
#include "tests/test.h"
#include "text/cond.h"
#include "text/word.h"

static const char *VOCAB = "[\"<unk>\", \"a\", \"blue\", \"circle\", \"left\", \"of\", \"red\", \"square\", \"x2\", \"<bos>\", \"<eos>\"]";

static void t_encode(tctx *t)
{
    word_tok *w = NULL;
    dit_err e = { 0 };
    CHECK(t, word_tok_from_json(&w, VOCAB, "test", &e) == DIT_OK, "%s", e.msg);
    if (!w) return;
    CHECK(t, word_tok_size(w) == 11 && word_tok_id(w, "red") == 6 && word_tok_id(w, "Red") == -1 && word_tok_id(w, "<bos>") == -1 &&
                 !strcmp(word_tok_word(w, 3), "circle") && !word_tok_word(w, 11),
          "lookups");
    static const struct {
        const char *text;
        int n, unknown;
        int32_t ids[10];
        const char *first_unknown;
    } cases[] = {
        /* punctuation and case: "A red circle, left-of a BLUE square!" -> a red circle left of a blue square */
        { "A red circle, left-of a BLUE square!", 10, 0, { 9, 1, 6, 3, 4, 5, 1, 2, 7, 10 }, "" },
        { "", 4, 0, { 9, 10, 10, 10 }, "" },                           /* the unconditional row */
        { "  ,,  ", 3, 0, { 9, 10, 10 }, "" },
        { "a green circle", 6, 1, { 9, 1, 0, 3, 10, 10 }, "green" },   /* <unk> = 0 */
        { "red red red red red", 4, 0, { 9, 6, 6, 10 }, "" },          /* cut to n - 2 words */
        { "x2 circles\tX2", 6, 1, { 9, 8, 0, 8, 10, 10 }, "circles" }, /* digits are word characters */
        { "caf\xc3\xa9 red", 5, 1, { 9, 0, 6, 10, 10 }, "caf" },       /* non-ASCII characters split words */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t ids[10];
        int unk = -1;
        char first[16];
        CHECK(t, word_tok_encode(w, cases[c].text, ids, cases[c].n, &unk, first, sizeof first, &e) == DIT_OK, "%s", e.msg);
        int same = unk == cases[c].unknown && !strcmp(first, cases[c].first_unknown);
        for (int i = 0; i < cases[c].n; i++) same &= ids[i] == cases[c].ids[i];
        CHECK(t, same, "'%s': unknown %d '%s', ids %d %d %d %d ...", cases[c].text, unk, first, ids[0], ids[1], ids[2], ids[3]);
    }
    int32_t two[2];
    CHECK(t, word_tok_encode(w, "red", two, 1, NULL, NULL, 0, &e) == DIT_E_ARG, "n = 1 refused");
    word_tok_close(w);
}

static void t_vocab_errors(tctx *t)
{
    static const char *const bad[] = {
        "{}", "[\"<unk>\", \"<bos>\", \"<eos>\"]",                              /* too small */
        "[\"<unk>\", \"red\", \"<eos>\", \"<bos>\"]",                            /* <eos> not last */
        "[\"<unk>\", \"Red\", \"<bos>\", \"<eos>\"]",                            /* not lowercase */
        "[\"<unk>\", \"red\", \"red\", \"<bos>\", \"<eos>\"]",                   /* twice */
        "[\"<unk>\", \"red\", 5, \"<bos>\", \"<eos>\"]",                         /* not a string */
        "[\"red\", \"blue\", \"<bos>\", \"<eos>\"]",                             /* no <unk> */
        "[\"<unk>\", \"\", \"<bos>\", \"<eos>\"]",                               /* empty */
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        word_tok *w = NULL;
        dit_err e = { 0 };
        CHECK(t, word_tok_from_json(&w, bad[i], "f.safetensors", &e) == DIT_E_FORMAT && !w && strstr(e.msg, "f.safetensors"),
              "%s: %s", bad[i], e.msg);
    }
}

/* context = the last layer after final_layer_norm, pooled = its row at the first <eos>: on the tiny CLIP-L
 * (vocabulary 49408: <eos> is its largest id 49407, as the word vocabularies have it) */
static void t_condition(tctx *t)
{
    if (!test_golden_present(t)) return;
    char p[1100];
    snprintf(p, sizeof p, "%s/clip_text/clip_l_tiny/model.safetensors", test_golden_dir());
    dit_err e = { 0 };
    clip_model *m = NULL;
    text_load_opts o = text_load_defaults();
    o.prec = OPS_F32, o.heads = 2;
    CHECK(t, clip_load(&m, p, &o, &e) == DIT_OK, "%s", e.msg);
    if (!m) return;
    clip_state *s = clip_state_new(m, &e);
    const int n = 12, D = clip_model_config(m)->hidden;
    const int32_t ids[12] = { 49406, 320, 1929, 49407, 49407, 49407, 49407, 49407, 49407, 49407, 49407, 49407 };
    float *ctx = malloc(sizeof(float) * n * D), *pooled = malloc(sizeof(float) * D), *last = malloc(sizeof(float) * n * D);
    clip_input in = { .batch = 1, .n_tok = n, .ids = ids };
    clip_output out = { .last = last };
    CHECK(t, s && ctx && pooled && last && text_words_condition(m, s, ids, n, ctx, pooled, &e) == DIT_OK &&
                 clip_encode(m, s, &in, &out, &e) == DIT_OK,
          "%s", e.msg);
    if (s && ctx && pooled && last) {
        CHECK(t, !memcmp(ctx, last, sizeof(float) * n * D), "context = last");
        CHECK(t, !memcmp(pooled, last + 3 * D, sizeof(float) * D), "pooled = row 3 (the first <eos>)");
    }
    const int32_t bad[2] = { 49406, 49408 };
    CHECK(t, text_words_condition(m, s, bad, 2, ctx, pooled, &e) == DIT_E_ARG, "id past the vocabulary refused");
    CHECK(t, text_words_condition(m, s, ids, 78, ctx, pooled, &e) == DIT_E_ARG, "more ids than positions refused");
    free(ctx), free(pooled), free(last);
    clip_state_free(s);
    clip_free(m);
}

int main(void)
{
    tctx t = test_begin("word");
    RUN(&t, t_encode);
    RUN(&t, t_vocab_errors);
    RUN(&t, t_condition);
    return test_end(&t);
}
