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

int cmd_bench(int argc, char **argv)
{
    int reps = 5, vae = 0, reps_set = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: dit bench [--reps N] [--vae]\n\nGFLOP/s of the f32 and bf16 linear at transformer shapes, of\n"
                   "attention (4096 tokens, 24 heads x 64) and of VAE-stage 3x3 convolutions, each also as a\nfraction of the bf16 matmul peak "
                   "measured in the same run. Threads follow OMP_NUM_THREADS.\n  --reps N   runs per "
                   "measurement, best kept [%d; 2 with --vae]\n"
                   "  --vae      instead: seconds of 1024x1024 decodes by the AutoencoderKL decoder at FLUX/SD3\n"
                   "             geometry (f32, bf16) and by TAEF2's decoder, random weights (vae_synth)\n",
                   reps);
            return 0;
        } else if (!strcmp(argv[i], "--vae")) {
            vae = 1;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]), reps_set = 1;
            if (reps < 1) {
                fprintf(stderr, "dit bench: --reps must be a positive integer\n");
                return 2;
            }
        } else {
            fprintf(stderr, "dit bench: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (vae) return bench_vae(reps_set ? reps : 2);
    dit_err e = { 0 };
    bench b = { ops_ctx_new(&e), reps };
    if (!b.ctx) {
        fprintf(stderr, "dit bench: %s\n", e.msg);
        return 1;
    }
    printf("threads %d, best of %d runs\n", cpu_threads(), reps);

    /* Peak: the best bf16 product rate, inputs already bf16 and the weights in oneDNN's blocked
     * layout, over the transformer shapes below and a few larger ones. */
    static const int lin[][3] = { { 4096, 1536, 1536 }, { 4096, 6144, 1536 }, { 1024, 1536, 1536 } };
    static const int big[][3] = { { 4096, 4096, 4096 }, { 8192, 2048, 2048 } };
    double peak = 0;
    ops_bench_matmul_bf16(b.ctx, 4096, 4096, 4096, 3); /* warm-up: clocks up, pages touched */
    for (int i = 0; i < 5; i++) {
        const int *sh = i < 3 ? lin[i] : big[i - 3];
        double g = 2.0 * sh[0] * sh[1] * sh[2] / ops_bench_matmul_bf16(b.ctx, sh[0], sh[1], sh[2], 2 * reps + 5) / 1e9;
        if (g > peak) peak = g;
    }
    printf("bf16 matmul peak: %.0f GFLOP/s (bf16 x blocked bf16 -> f32, best of the shapes below, 4096^3, 8192x2048^2)\n\n",
           peak);

    printf("%-38s %10s %10s %8s\n", "kernel", "ms", "GFLOP/s", "of peak");
    for (int i = 0; i < 3; i++)
        for (int v = 0; v < 3; v++) { /* f32, bf16 with plain weights, bf16 with packed weights */
            const int M = lin[i][0], N = lin[i][1], K = lin[i][2];
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
