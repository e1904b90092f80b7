/* tools/bench.c — `dit bench`: throughput of the kernels at transformer shapes, each also as a
 * fraction of the bf16 matmul peak measured in the same run (so the ratios hold on any machine).
 * Timings are the best of several runs after a warm-up. Not part of `make test`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu.h"
#include "core/ops.h"
#include "dit/dit.h"
#include "tools/cli.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *rand_floats(size_t n, unsigned seed)
{
    float *p = aligned_alloc(64, (n * sizeof *p + 63) / 64 * 64); /* run state is 64-byte aligned (arena) */
    if (!p) return NULL;
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = ((s >> 8) * (1.0f / 16777216.0f)) * 2.0f - 1.0f;
    }
    return p;
}

typedef struct {
    ops_ctx *ctx;
    int reps;
} bench;

/* Best seconds of one y = x W^T linear, M x N x K; packed = bf16 with an ops_weight. */
static double time_linear(bench *b, ops_prec p, int packed, int M, int N, int K)
{
    float *x = rand_floats((size_t)M * K, 1), *w = rand_floats((size_t)N * K, 2);
    float *y = aligned_alloc(64, (sizeof(float) * M * N + 63) / 64 * 64); /* as run state is (arena) */
    uint16_t *wb = malloc(sizeof(uint16_t) * N * K);
    double best = INFINITY;
    if (x && w && y && wb) {
        cvt_f32_to_bf16(wb, w, (size_t)N * K);
        tensor W = p == OPS_BF16 ? tensor_make(DT_BF16, wb, 2, (int64_t[]){ N, K })
                                 : tensor_make(DT_F32, w, 2, (int64_t[]){ N, K });
        ops_weight *pw = NULL;
        if (packed && ops_weight_pack(b->ctx, &W, &pw)) return INFINITY;
        for (int r = 0; r <= b->reps; r++) { /* run 0 is the warm-up that creates the primitive */
            double t0 = now();
            if (pw ? ops_linear_packed(b->ctx, y, x, M, pw, NULL) : ops_linear(b->ctx, p, y, x, M, K, &W, NULL, N)) break;
            double dt = now() - t0;
            if (r > 0 && dt < best) best = dt;
        }
        ops_weight_free(pw);
    }
    free(x), free(w), free(y), free(wb);
    return best;
}

/* Best seconds of one 3x3 convolution, C -> C channels, padding 1, on an H x W image. */
static double time_conv(bench *b, ops_prec p, int C, int H, int W)
{
    float *x = rand_floats((size_t)C * H * W, 4), *w = rand_floats((size_t)C * C * 9, 5), *y = rand_floats((size_t)C * H * W, 6);
    uint16_t *wb = malloc(sizeof(uint16_t) * C * C * 9);
    double best = INFINITY;
    if (x && w && y && wb) {
        cvt_f32_to_bf16(wb, w, (size_t)C * C * 9);
        tensor Wt = p == OPS_BF16 ? tensor_make(DT_BF16, wb, 4, (int64_t[]){ C, C, 3, 3 })
                                  : tensor_make(DT_F32, w, 4, (int64_t[]){ C, C, 3, 3 });
        ops_conv cv = { .stride = 1, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1 };
        for (int r = 0; r <= b->reps; r++) {
            double t0 = now();
            if (ops_conv2d(b->ctx, p, y, x, 1, C, H, W, &Wt, NULL, &cv)) break;
            double dt = now() - t0;
            if (r > 0 && dt < best) best = dt;
        }
    }
    free(x), free(w), free(y), free(wb);
    return best;
}

static double time_attention(bench *b, ops_prec p, int n, int H, int D)
{
    const int HD = H * D;
    float *qkv = rand_floats((size_t)n * 3 * HD, 3), *o = rand_floats((size_t)n * HD, 7);
    double best = INFINITY;
    if (qkv && o) {
        ops_attn a = { .n_q = n, .n_kv = n, .n_heads = H, .head_dim = D, .q_stride = 3 * HD, .k_stride = 3 * HD,
                       .v_stride = 3 * HD, .o_stride = HD, .scale = 1.0f / sqrtf((float)D) };
        for (int r = 0; r <= b->reps; r++) {
            double t0 = now();
            if (ops_attention(b->ctx, p, o, qkv, qkv + HD, qkv + 2 * HD, &a)) break;
            double dt = now() - t0;
            if (r > 0 && dt < best) best = dt;
        }
    }
    free(qkv), free(o);
    return best;
}

/* Peak: the best bf16 product rate, inputs already bf16 and the weights in oneDNN's blocked
 * layout, over transformer shapes and a few larger ones. */
static const int LIN[][3] = { { 4096, 1536, 1536 }, { 4096, 6144, 1536 }, { 1024, 1536, 1536 } };
static double measure_peak(bench *b)
{
    static const int big[][3] = { { 4096, 4096, 4096 }, { 8192, 2048, 2048 } };
    double peak = 0;
    ops_bench_matmul_bf16(b->ctx, 4096, 4096, 4096, 3); /* warm-up: clocks up, pages touched */
    for (int i = 0; i < 5; i++) {
        const int *sh = i < 3 ? LIN[i] : big[i - 3];
        double g = 2.0 * sh[0] * sh[1] * sh[2] / ops_bench_matmul_bf16(b->ctx, sh[0], sh[1], sh[2], 2 * b->reps + 5) / 1e9;
        if (g > peak) peak = g;
    }
    return peak;
}

/* One forward of a model file at each image size (pixels; latent = pixels / 8) on the bf16 path,
 * with random inputs and n_ctx text tokens: seconds, FLOPs and utilisation = FLOPs / (time x peak),
 * split into matmul, attention and the rest (dit_state_profile). */
static int bench_model(bench *b, const char *path, const int *sizes, int n_sizes, int n_ctx, int reps)
{
    const double peak = measure_peak(b);
    printf("bf16 matmul peak: %.0f GFLOP/s (measured in this run)\n", peak);
    dit_err e = { 0 };
    dit_model *m = NULL;
    double t0 = now();
    if (dit_load(&m, path, NULL, &e)) {
        fprintf(stderr, "dit bench: %s\n", e.msg);
        return 1;
    }
    const dit_config *c = dit_model_config(m);
    char desc[1024];
    dit_config_describe(c, desc, sizeof desc);
    printf("model: %s\nloaded in %.1f s (%.2f GB of packed bf16 weights)\n\n", desc, now() - t0, dit_model_bytes(m) / 1e9);
    int max_px = 0;
    for (int i = 0; i < n_sizes; i++) max_px = sizes[i] > max_px ? sizes[i] : max_px;
    const int dit = c->family == DIT_DIT || c->family == DIT_SIT;
    if (dit) { /* DiT/SiT run only at the size their pos_embed fixes */
        sizes = &max_px;
        n_sizes = 1;
        max_px = c->pos_max * c->patch * 8;
    }
    const int ml = max_px / 8, text = dit ? 0 : n_ctx;
    dit_state *s = dit_state_new(m, ml, ml, text, &e);
    float *x = rand_floats((size_t)c->in_ch * ml * ml, 11), *v = rand_floats((size_t)c->out_ch * ml * ml, 12);
    float *ctx = text ? rand_floats((size_t)text * c->ctx_dim, 13) : NULL, *pooled = c->vec_dim ? rand_floats((size_t)c->vec_dim, 14) : NULL;
    int rc = 0;
    if (!s || !x || !v || (text && !ctx) || (c->vec_dim && !pooled)) {
        fprintf(stderr, "dit bench: %s\n", s ? "out of memory" : e.msg);
        rc = 1;
    }
    if (!rc) printf("state: %.2f GB for %dx%d and %d text tokens\n", dit_state_bytes(s) / 1e9, max_px, max_px, text);
    const float t = c->family == DIT_FLUX ? 0.5f : c->family == DIT_SD3 ? 500.0f : c->family == DIT_SIT ? 0.5f : 500.0f;
    const float g = 3.5f;
    int label = 0;
    for (int i = 0; i < n_sizes && !rc; i++) {
        const int l = sizes[i] / 8;
        dit_input in = { .batch = 1, .H = l, .W = l, .x = x, .t = &t, .context = ctx, .n_ctx = text, .pooled = pooled,
                         .guidance = &g, .labels = &label };
        dit_profile best = { .seconds = INFINITY };
        for (int r = 0; r <= reps; r++) { /* run 0 warms up (primitives, pages) */
            if (dit_forward(m, s, &in, v, &e)) {
                fprintf(stderr, "dit bench: %s\n", e.msg);
                rc = 1;
                break;
            }
            const dit_profile *p = dit_state_profile(s);
            if (r > 0 && p->seconds < best.seconds) best = *p;
        }
        if (rc) break;
        const int n_img = (l / c->patch) * (l / c->patch);
        const double flop = best.matmul_flop + best.attn_flop, rest = best.seconds - best.matmul_s - best.attn_s;
        printf("%dx%d (%d image + %d text tokens): %.2f s per forward, %.2f TFLOP, %.0f GFLOP/s = %.1f%% of peak\n",
               sizes[i], sizes[i], n_img, text, best.seconds, flop / 1e12, flop / best.seconds / 1e9,
               100 * flop / best.seconds / 1e9 / peak);
        printf("  matmul     %6.2f s  %5.1f%% of time  %.2f TFLOP  %5.1f%% of peak\n", best.matmul_s,
               100 * best.matmul_s / best.seconds, best.matmul_flop / 1e12, 100 * best.matmul_flop / best.matmul_s / 1e9 / peak);
        printf("  attention  %6.2f s  %5.1f%% of time  %.2f TFLOP  %5.1f%% of peak\n", best.attn_s,
               100 * best.attn_s / best.seconds, best.attn_flop / 1e12, 100 * best.attn_flop / best.attn_s / 1e9 / peak);
        printf("  rest       %6.2f s  %5.1f%% of time  (norms, activations, residuals, RoPE, layouts)\n", rest,
               100 * rest / best.seconds);
    }
    free(x), free(v), free(ctx), free(pooled);
    dit_state_free(s);
    dit_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    int reps = 5, model_reps = 2, vae = 0, n_ctx = 154, sizes[8] = { 512, 1024 }, n_sizes = 2;
    const char *model = NULL, *text = NULL;
    int n_tok = 256;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: dit bench [--reps N]\n       dit bench --vae [--reps N]\n       dit bench --model FILE [--sizes 512,1024] [--ctx N] [--reps N]\n"
                   "       dit bench --text T5_FILE [--tokens N] [--reps N]\n\n"
                   "Without --model: GFLOP/s of the f32 and bf16 linear at transformer shapes, of attention\n"
                   "(4096 tokens, 24 heads x 64) and of VAE-stage 3x3 convolutions, each also as a fraction of\n"
                   "the bf16 matmul peak measured in the same run.\n"
                   "With --model: one forward of the model (bf16 path, random inputs) per image size: seconds,\n"
                   "FLOPs and utilisation = FLOPs / (time x peak), split into matmul, attention and the rest.\n"
                   "Random-weight models at released geometries: dit synth (e.g. dit synth sd3.5-medium -o F).\n"
                   "Threads follow OMP_NUM_THREADS.\n\n"
                   "  --reps N      runs per measurement, best kept [%d; %d with --model]\n"
                   "  --model FILE  a model file or folder (anything dit_load reads)\n"
                   "  --sizes LIST  image sizes in pixels, comma-separated [512,1024]\n"
                   "  --ctx N       text tokens [154 = SD3's 77 CLIP + 77 T5]\n"
                   "  --text FILE   one T5 encode (bf16) of --tokens N tokens [256]; dit synth t5xxl -o F writes one\n"
                   "  --vae         seconds of 1024x1024 decodes by the AutoencoderKL decoder at FLUX/SD3 geometry\n"
                   "                (f32, bf16) and by TAEF2's decoder, random weights (vae_synth)\n",
                   reps, model_reps);
            return 0;
        } else if (!strcmp(argv[i], "--vae")) {
            vae = 1;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = model_reps = atoi(argv[++i]);
            if (reps < 1) {
                fprintf(stderr, "dit bench: --reps must be a positive integer\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--text") && i + 1 < argc) {
            text = argv[++i];
        } else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) {
            n_tok = atoi(argv[++i]);
            if (n_tok < 1 || n_tok > 4096) {
                fprintf(stderr, "dit bench: --tokens must be 1..4096\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) {
            n_ctx = atoi(argv[++i]);
            if (n_ctx < 1 || n_ctx > 4096) {
                fprintf(stderr, "dit bench: --ctx must be 1..4096\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            char *p = argv[++i];
            for (n_sizes = 0;; n_sizes++) {
                char *end;
                long v = strtol(p, &end, 10);
                if (n_sizes == 8 || end == p || v < 16 || v > 4096 || v % 16 || (*end && *end != ',')) {
                    fprintf(stderr, "dit bench: --sizes takes up to 8 multiples of 16 up to 4096, comma-separated\n");
                    return 2;
                }
                sizes[n_sizes] = (int)v;
                if (!*end) {
                    n_sizes++;
                    break;
                }
                p = end + 1;
            }
        } else {
            fprintf(stderr, "dit bench: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (vae) return bench_vae(model_reps);
    dit_err e = { 0 };
    bench b = { ops_ctx_new(&e), reps };
    if (!b.ctx) {
        fprintf(stderr, "dit bench: %s\n", e.msg);
        return 1;
    }
    printf("threads %d, best of %d runs\n", cpu_threads(), model ? model_reps : reps);
    if (text) {
        ops_ctx_free(b.ctx);
        return bench_text(text, n_tok, model_reps);
    }
    if (model) {
        const int rc = bench_model(&b, model, sizes, n_sizes, n_ctx, model_reps);
        ops_ctx_free(b.ctx);
        return rc;
    }
    const double peak = measure_peak(&b);
    printf("bf16 matmul peak: %.0f GFLOP/s (bf16 x blocked bf16 -> f32, best of the shapes below, 4096^3, 8192x2048^2)\n\n",
           peak);

    printf("%-38s %10s %10s %8s\n", "kernel", "ms", "GFLOP/s", "of peak");
    for (int i = 0; i < 3; i++)
        for (int v = 0; v < 3; v++) { /* f32, bf16 with plain weights, bf16 with packed weights */
            const int M = LIN[i][0], N = LIN[i][1], K = LIN[i][2];
            const ops_prec p = v == 0 ? OPS_F32 : OPS_BF16;
            double t = time_linear(&b, p, v == 2, M, N, K), g = 2.0 * M * N * K / t / 1e9;
            char name[64];
            snprintf(name, sizeof name, "linear %s %dx%dx%d", v == 0 ? "f32" : v == 1 ? "bf16" : "bf16 packed", M, N, K);
            printf("%-38s %10.2f %10.0f %7.1f%%\n", name, t * 1e3, g, 100 * g / peak);
        }
    for (int p = OPS_F32; p <= OPS_BF16; p++) {
        const int n = 4096, H = 24, D = 64;
        double t = time_attention(&b, (ops_prec)p, n, H, D), g = 4.0 * n * (double)n * H * D / t / 1e9;
        char name[64];
        snprintf(name, sizeof name, "attention %s %d tok %dx%d", ops_prec_name(p), n, H, D);
        printf("%-38s %10.2f %10.0f %7.1f%%\n", name, t * 1e3, g, 100 * g / peak);
    }
    static const int convs[][3] = { { 128, 512, 512 }, { 512, 128, 128 } }; /* VAE decoder stages */
    for (int i = 0; i < 2; i++)
        for (int p = OPS_F32; p <= OPS_BF16; p++) {
            const int C = convs[i][0], H = convs[i][1], W = convs[i][2];
            double t = time_conv(&b, (ops_prec)p, C, H, W), g = 2.0 * C * C * 9 * H * W / t / 1e9;
            char name[64];
            snprintf(name, sizeof name, "conv3x3 %s %dch %dx%d", ops_prec_name(p), C, H, W);
            printf("%-38s %10.2f %10.0f %7.1f%%\n", name, t * 1e3, g, 100 * g / peak);
        }
    printf("\nlinear M x N x K: y[M,N] = x[M,K] W[N,K]^T, f32 activations in and out (bf16 includes the\n"
           "conversion of x; packed: weights reordered once by ops_weight_pack); attention FLOPs =\n"
           "4 n^2 heads head_dim; conv: f32 NCHW in and out, reorders to oneDNN's blocked layouts included.\n");
    ops_ctx_free(b.ctx);
    return 0;
}
