/* tools/text_tools.c — the text-encoder parts of `dit synth` and `dit bench`:
 *   dit synth t5xxl -o FILE [--depth N]   a T5-XXL-geometry encoder with random weights (24 blocks,
 *                                         d_model 4096, 64 heads, d_ff 10240; f16, released names)
 *   dit bench --text FILE [--tokens N]    one T5 encode on the bf16 path: seconds, FLOPs, split
 * Values as in tools/synth.c: windows of one shared random pool (timing only). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/safetensors.h"
#include "text/t5.h"
#include "tools/cli.h"

typedef struct {
    st_writer *w;
    uint16_t *pool;
    size_t pool_n, biggest;
    int count;
    dit_err e;
} synth;

static void measure(void *user, const char *name, int nd, const int64_t *shape)
{
    synth *s = user;
    (void)name;
    size_t n = 1;
    for (int d = 0; d < nd; d++) n *= (size_t)shape[d];
    if (n > s->biggest) s->biggest = n;
}

static void add(void *user, const char *name, int nd, const int64_t *shape)
{
    synth *s = user;
    size_t n = 1;
    for (int d = 0; d < nd; d++) n *= (size_t)shape[d];
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the name picks the window */
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    const size_t off = s->pool_n > n ? (size_t)(h % (s->pool_n - n)) : 0;
    if (!s->e.code) st_writer_add(s->w, name, ST_F16, nd, shape, s->pool + off, &s->e);
    s->count++;
}

int synth_t5(const char *out, int depth, unsigned long seed)
{
    t5_config c = { .d_model = 4096, .heads = 64, .d_kv = 64, .inner = 4096, .d_ff = 10240, .layers = depth ? depth : 24,
                    .vocab = 32128, .buckets = 32, .max_distance = 128 };
    snprintf(c.variant, sizeof c.variant, "t5-xxl");
    if (c.layers < 1 || c.layers > T5_MAX_BLOCKS) {
        fprintf(stderr, "dit synth: --depth must be 1..%d for t5xxl\n", T5_MAX_BLOCKS);
        return 2;
    }
    synth s = { .w = st_writer_new() };
    t5_enumerate(&c, measure, &s);
    s.pool_n = s.biggest + 4096;
    s.pool = malloc(sizeof(uint16_t) * s.pool_n);
    if (!s.w || !s.pool) {
        fprintf(stderr, "dit synth: out of memory\n");
        st_writer_free(s.w);
        free(s.pool);
        return 1;
    }
    uint64_t r = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < s.pool_n; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        s.pool[i] = f32_to_f16(0.02f * ((float)(r >> 40) * (2.0f / 16777216.0f) - 1.0f));
    }
    t5_enumerate(&c, add, &s);
    if (!s.e.code) st_writer_meta(s.w, "dit.synthetic", "random weights written by dit synth (timing only)", &s.e);
    if (!s.e.code) st_writer_save(s.w, out, &s.e);
    st_writer_free(s.w);
    free(s.pool);
    if (s.e.code) {
        fprintf(stderr, "dit synth: %s\n", s.e.msg);
        return 1;
    }
    char desc[512];
    t5_config_describe(&c, desc, sizeof desc);
    printf("%s: %d tensors, %s\n", out, s.count, desc);
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int bench_text(const char *path, int n_tok, int reps)
{
    dit_err e = { 0 };
    t5_model *m = NULL;
    const double t0 = now();
    if (t5_load(&m, path, NULL, &e)) {
        fprintf(stderr, "dit bench: %s\n", e.msg);
        return 1;
    }
    const t5_config *c = t5_model_config(m);
    char desc[512];
    t5_config_describe(c, desc, sizeof desc);
    printf("model: %s\nloaded in %.1f s (%.2f GB of packed bf16 weights)\n", desc, now() - t0, t5_model_bytes(m) / 1e9);
    t5_state *s = t5_state_new(m, n_tok, &e);
    int32_t *ids = malloc(sizeof(int32_t) * n_tok);
    float *out = malloc(sizeof(float) * n_tok * c->d_model);
    int rc = 0;
    if (!s || !ids || !out) {
        fprintf(stderr, "dit bench: %s\n", s ? "out of memory" : e.msg);
        rc = 1;
    }
    for (int i = 0; !rc && i < n_tok; i++) ids[i] = (int32_t)((i * 7919 + 3) % (c->vocab - 100)); /* no padding */
    t5_profile best = { .seconds = INFINITY };
    for (int r = 0; !rc && r <= reps; r++) { /* run 0 warms up */
        t5_input in = { .batch = 1, .n_tok = n_tok, .ids = ids };
        if (t5_encode(m, s, &in, out, &e)) {
            fprintf(stderr, "dit bench: %s\n", e.msg);
            rc = 1;
            break;
        }
        const t5_profile *p = t5_state_profile(s);
        if (r > 0 && p->seconds < best.seconds) best = *p;
    }
    if (!rc) {
        const double flop = best.matmul_flop + best.attn_flop;
        printf("T5 encode, %d tokens, bf16: %.2f s (best of %d), %.2f TFLOP, %.0f GFLOP/s\n", n_tok, best.seconds, reps, flop / 1e12,
               flop / best.seconds / 1e9);
        printf("  matmul     %6.2f s  %5.1f%% of time\n  attention  %6.2f s  %5.1f%% of time\n  rest       %6.2f s\n", best.matmul_s,
               100 * best.matmul_s / best.seconds, best.attn_s, 100 * best.attn_s / best.seconds,
               best.seconds - best.matmul_s - best.attn_s);
    }
    free(ids), free(out);
    t5_state_free(s);
    t5_free(m);
    return rc;
}
