/* tests/test_prompt.c — a prompt goes in, conditioning comes out: the real CLIP BPE and T5
 * SentencePiece files of $DIT_GOLDEN/tokenizers with the tiny random encoders of clip_text/ and
 * t5/. For "a photo of a cat" (the "plain_cat" row of those cases) the SD3 context and pooled
 * vector must equal the golden encoder outputs placed as SD3 assembles them, and FLUX's likewise;
 * the empty prompt and a missing T5 give what text/cond.h documents. */
#include <math.h>

#include "core/safetensors.h"
#include "tests/test.h"
#include "text/prompt.h"

typedef struct {
    clip_model *l, *g;
    t5_model *t5;
    clip_state *ls, *gs;
    t5_state *ts;
    clip_tok *ct;
    t5_tok *tt;
    st_file *io_l, *io_g, *io_t5;
} fixture;

static const float *out_f32(const st_file *f, const char *name)
{
    const st_tensor *t = f ? st_find(f, name) : NULL;
    return t && t->dtype == ST_F32 ? t->data : NULL;
}

static int fixture_open(tctx *t, fixture *x)
{
    memset(x, 0, sizeof *x);
    char p[1200];
    dit_err e = { 0 };
    text_load_opts o = text_load_defaults();
    o.prec = OPS_F32, o.heads = 2;
    const char *g = test_golden_dir();
    int ok = 1;
#define OPEN(expr) ok = ok && (expr) == DIT_OK
    snprintf(p, sizeof p, "%s/clip_text/clip_l_tiny/model.safetensors", g), OPEN(clip_load(&x->l, p, &o, &e));
    o.heads = 4;
    snprintf(p, sizeof p, "%s/clip_text/clip_g_tiny/model.safetensors", g), OPEN(clip_load(&x->g, p, &o, &e));
    o.heads = 0;
    snprintf(p, sizeof p, "%s/t5/t5_tiny/model.safetensors", g), OPEN(t5_load(&x->t5, p, &o, &e));
    snprintf(p, sizeof p, "%s/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz", g), OPEN(clip_tok_open(&x->ct, p, &e));
    snprintf(p, sizeof p, "%s/tokenizers/t5/spiece.model", g), OPEN(t5_tok_open(&x->tt, p, &e));
    snprintf(p, sizeof p, "%s/clip_text/clip_l_tiny/io.safetensors", g), OPEN(st_open(&x->io_l, p, &e));
    snprintf(p, sizeof p, "%s/clip_text/clip_g_tiny/io.safetensors", g), OPEN(st_open(&x->io_g, p, &e));
    snprintf(p, sizeof p, "%s/t5/t5_tiny/io.safetensors", g), OPEN(st_open(&x->io_t5, p, &e));
#undef OPEN
    if (ok) {
        x->ls = clip_state_new(x->l, &e), x->gs = clip_state_new(x->g, &e), x->ts = t5_state_new(x->t5, 512, &e);
        ok = x->ls && x->gs && x->ts;
    }
    CHECK(t, ok, "fixture: %s", e.msg);
    return ok;
}

static void fixture_close(fixture *x)
{
    clip_state_free(x->ls), clip_state_free(x->gs), t5_state_free(x->ts);
    clip_free(x->l), clip_free(x->g), t5_free(x->t5);
    clip_tok_close(x->ct), t5_tok_close(x->tt);
    st_close(x->io_l), st_close(x->io_g), st_close(x->io_t5);
}

/* max |got - want| over rows x cols of got (row stride gs) vs want (row stride ws) */
static double diff(const float *got, int gs, const float *want, int ws, int rows, int cols)
{
    double m = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) m = fmax(m, fabs((double)got[(size_t)r * gs + c] - want[(size_t)r * ws + c]));
    return m;
}

static void t_sd3(tctx *t)
{
    if (!test_golden_present(t)) return;
    fixture x;
    if (!fixture_open(t, &x)) {
        fixture_close(&x);
        return;
    }
    const int W = 96; /* context width of the tiny models: L 32 + G 32, padded with zeros */
    text_encoders te = { x.l, x.ls, x.g, x.gs, x.t5, x.ts, W };
    text_tokenizers tk = { x.ct, x.tt };
    static float ctx[300 * 96], pooled[64];
    text_cond_info info;
    dit_err e = { 0 };
    CHECK(t, text_sd3_prompt(&te, &tk, "a photo of a cat", NULL, ctx, 300, pooled, &info, &e) == DIT_OK, "%s", e.msg);
    CHECK(t, info.n_ctx == 77 + 77 && info.ctx_dim == W && info.pooled_dim == 64 && !info.t5_missing, "rows %d width %d", info.n_ctx,
          info.ctx_dim);
    /* row 0 of each golden case is "plain_cat" */
    const float *pl = out_f32(x.io_l, "out.penultimate"), *pg = out_f32(x.io_g, "out.penultimate");
    const float *ol = out_f32(x.io_l, "out.pooled"), *og = out_f32(x.io_g, "out.pooled_projected");
    const float *t5o = out_f32(x.io_t5, "out.sd3_77.last_hidden_state");
    CHECK(t, pl && pg && ol && og && t5o, "golden outputs");
    if (pl && pg && ol && og && t5o) {
        const double eL = diff(ctx, W, pl, 32, 77, 32), eG = diff(ctx + 32, W, pg, 32, 77, 32);
        const double eT = diff(ctx + 77 * W, W, t5o, 32, 77, 32), eP = diff(pooled, 64, ol, 32, 1, 32), eQ = diff(pooled + 32, 64, og, 32, 1, 32);
        double pad = 0;
        for (int r = 0; r < 154; r++)
            for (int c = r < 77 ? 64 : 32; c < W; c++) pad = fmax(pad, fabs(ctx[r * W + c]));
        printf("  SD3 \"a photo of a cat\": CLIP-L %.1e, CLIP-G %.1e, T5 %.1e, pooled %.1e / %.1e off the golden outputs\n", eL, eG, eT, eP, eQ);
        CHECK(t, eL < 1e-5 && eG < 1e-5 && eT < 1e-5 && eP < 1e-5 && eQ < 1e-5, "L %g G %g T5 %g pooled %g %g", eL, eG, eT, eP, eQ);
        CHECK(t, pad == 0, "padding not zero: %g", pad);
    }
    /* without T5: 77 rows of zeros in its place */
    te.t5 = NULL;
    CHECK(t, text_sd3_prompt(&te, &tk, "", NULL, ctx, 300, pooled, &info, &e) == DIT_OK && info.t5_missing && info.n_ctx == 154,
          "no T5: %s", e.msg);
    double z = 0;
    for (int i = 77 * W; i < 154 * W; i++) z = fmax(z, fabs(ctx[i]));
    CHECK(t, z == 0, "T5 rows not zero without T5");
    /* a long prompt needs more rows than given */
    te.t5 = x.t5;
    CHECK(t, text_sd3_prompt(&te, &tk, "a photo of a cat", NULL, ctx, 100, pooled, &info, &e) == DIT_E_ARG && strstr(e.msg, "154"),
          "too few rows: %s", e.msg);
    fixture_close(&x);
}

static void t_flux(tctx *t)
{
    if (!test_golden_present(t)) return;
    fixture x;
    if (!fixture_open(t, &x)) {
        fixture_close(&x);
        return;
    }
    text_encoders te = { x.l, x.ls, NULL, NULL, x.t5, x.ts, 0 };
    text_tokenizers tk = { x.ct, x.tt };
    static float ctx[256 * 32], pooled[32];
    text_cond_info info;
    dit_err e = { 0 };
    CHECK(t, text_flux_prompt(&te, &tk, "a photo of a cat", 256, NULL, ctx, pooled, &info, &e) == DIT_OK, "%s", e.msg);
    const float *t5o = out_f32(x.io_t5, "out.flux_256.last_hidden_state"), *ol = out_f32(x.io_l, "out.pooled");
    if (t5o && ol) {
        const double eT = diff(ctx, 32, t5o, 32, 256, 32), eP = diff(pooled, 32, ol, 32, 1, 32);
        printf("  FLUX \"a photo of a cat\": T5 %.1e, pooled %.1e off the golden outputs\n", eT, eP);
        CHECK(t, eT < 1e-5 && eP < 1e-5 && info.n_ctx == 256, "T5 %g pooled %g rows %d", eT, eP, info.n_ctx);
    } else CHECK(t, 0, "golden outputs");
    fixture_close(&x);
}

/* Limits that keep hostile input from hanging or reading out of bounds: T5 bucket parameters
 * the bucket function cannot use, over-long prompts, deep emphasis nesting as sd3.5 takes it. */
static void t_guards(tctx *t)
{
    if (!test_golden_present(t)) return;
    char p[1200];
    dit_err e = { 0 };
    text_load_opts o = text_load_defaults();
    o.max_distance = 8; /* 32 buckets: the exact range is 8, so the log range would be empty */
    t5_model *m = NULL;
    snprintf(p, sizeof p, "%s/t5/t5_tiny/model.safetensors", test_golden_dir());
    CHECK(t, t5_load(&m, p, &o, &e) == DIT_E_FORMAT && strstr(e.msg, "max_distance"), "max_distance 8: %s", e.msg);
    t5_free(m);
    CHECK(t, t5_bucket(-1000, 32, 128) == 15 && t5_bucket(1000, 32, 128) == 31 && t5_bucket(0, 32, 128) == 0, "bucket ends");
    clip_tok *ct = NULL;
    snprintf(p, sizeof p, "%s/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz", test_golden_dir());
    CHECK(t, clip_tok_open(&ct, p, &e) == DIT_OK, "%s", e.msg);
    if (ct) {
        const size_t n = TOK_MAX_TEXT + 1;
        char *big = malloc(n + 1);
        memset(big, 'a', n), big[n] = 0;
        tok_ids ids = { 0 };
        CHECK(t, clip_tok_encode(ct, big, n, &ids, &e) == DIT_E_ARG && strstr(e.msg, "bytes of text"), "long prompt: %s", e.msg);
        tok_ids_free(&ids);
        /* 500 nested groups: sd3.5 accepts it (Python's recursion limit is ~1000) */
        size_t k = 0;
        for (int i = 0; i < 500; i++) big[k++] = '(';
        big[k++] = 'c', big[k++] = 'a', big[k++] = 't';
        for (int i = 0; i < 500; i++) big[k++] = ')';
        CHECK(t, clip_tok_sd3(ct, big, k, clip_tok_eos(ct), &ids, &e) == DIT_OK && ids.n == 77 && ids.weight[1] > 1e20,
              "nesting 500: %s", e.msg);
        tok_ids_free(&ids);
        free(big);
    }
    clip_tok_close(ct);
}

int main(void)
{
    tctx t = test_begin("prompt");
    RUN(&t, t_sd3);
    RUN(&t, t_flux);
    RUN(&t, t_guards);
    return test_end(&t);
}
