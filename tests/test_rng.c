/* tests/test_rng.c — core/rng.c against numbers PyTorch 1.13.1 (Debian python3-torch, x86 AVX2
 * kernels) printed for torch.randn(shape, generator=torch.Generator().manual_seed(seed)): the
 * first three and last two values and an FNV-1a hash of all the float bits (computed by the
 * Python side), for latent-sized draws, a partial last block of 16 and the n < 16 path; and two
 * draws in a row from one generator.
 * The Philox (torch CUDA) generator against tests/ref/philox_ref.py, a numpy rewrite of
 * AUTOMATIC1111's modules/rng_philox.py (checked bit for bit against that file's code on numpy
 * 1.24), and Random123's known-answer vectors for the Philox4x32-10 block itself. */
#include "core/rng.h"
#include "tests/test.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* FNV-1a of torch.cat([randn(40), randn(3), randn(20)]) with manual_seed(5) */
#define SEQ_HASH 0x3c93aa9ebbda0b89ull

static uint64_t fnv_bits(const float *x, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int k = 0; k < 4; k++) h = (h ^ ((u >> (8 * k)) & 0xff)) * 0x100000001b3ull;
    }
    return h;
}

static void t_torch_randn(tctx *t)
{
    static const struct {
        uint64_t seed;
        size_t n;
        uint64_t hash;
        float ends[5]; /* x[0], x[1], x[2], x[n-2], x[n-1] */
    } cases[] = {
        { 42, 262144, 0xb2f5a60dde6ecb89ull, { 1.92691529f, 1.48728406f, 0.900717199f, -1.76224577f, -2.32941723f } },
        { 0, 4096, 0x93ccede981ed51b7ull, { -1.12583983f, -1.1523602f, -0.250578582f, -1.72884715f, 0.601982117f } },
        { 2024, 196608, 0xe6bc7d4c086ad587ull, { -1.22623551f, -0.00931481924f, 1.54195797f, 1.03386986f, -0.530436099f } },
        { 1, 90000, 0x75f3f38b6a815d3aull, { -1.5255959f, -0.750231802f, -0.653980911f, -0.635299087f, -0.48662594f } },
    };
    float *x = malloc(sizeof(float) * 262144);
    for (size_t c = 0; x && c < sizeof cases / sizeof cases[0]; c++) {
        rng_torch g;
        rng_torch_seed(&g, cases[c].seed);
        rng_torch_randn(&g, x, cases[c].n);
        const size_t n = cases[c].n;
        const float got[5] = { x[0], x[1], x[2], x[n - 2], x[n - 1] };
        CHECK(t, !memcmp(got, cases[c].ends, sizeof got), "seed %llu n %zu: ends %.9g %.9g %.9g .. %.9g %.9g",
              (unsigned long long)cases[c].seed, n, got[0], got[1], got[2], got[3], got[4]);
        CHECK(t, fnv_bits(x, n) == cases[c].hash, "seed %llu n %zu: hash %016llx", (unsigned long long)cases[c].seed, n,
              (unsigned long long)fnv_bits(x, n));
    }
    free(x);
}

static void t_small_and_sequence(tctx *t)
{
    /* torch.randn(5) with seed 1234 (normal_distribution<double> path), torch.randn(20) with seed 0
     * (last block redrawn), and randn(40), randn(3), randn(20) in a row with seed 5 (hash) */
    static const float s1234[5] = { 0.0461304635f, 0.402402818f, -1.01152909f, 0.216738239f, -0.612273097f };
    static const float s0[20] = { -1.12583983f, -1.1523602f, -0.250578582f, -0.433878809f, 0.598839462f, -1.55509508f, -0.34136039f,
                                  1.85300612f,  0.468096405f, -0.157712445f, 1.44366014f, 0.266049415f, 1.38936615f, 1.58633423f,
                                  0.946298361f, -0.843676746f, 0.931826591f, 1.25900924f, 2.00498056f, 0.0537369028f };
    rng_torch g;
    float x[64];
    rng_torch_seed(&g, 1234);
    rng_torch_randn(&g, x, 5);
    CHECK(t, !memcmp(x, s1234, sizeof s1234), "n < 16: %.9g %.9g", x[0], x[4]);
    rng_torch_seed(&g, 0);
    rng_torch_randn(&g, x, 20);
    CHECK(t, !memcmp(x, s0, sizeof s0), "n = 20: %.9g .. %.9g", x[0], x[19]);
    rng_torch_seed(&g, 5);
    rng_torch_randn(&g, x, 40);
    rng_torch_randn(&g, x + 40, 3);
    rng_torch_randn(&g, x + 43, 20);
    CHECK(t, fnv_bits(x, 63) == SEQ_HASH, "sequence hash %016llx", (unsigned long long)fnv_bits(x, 63));
}

/* Random123 kat_vectors, philox4x32 10 rounds: counter, key -> output */
static void t_philox_block(tctx *t)
{
    static const uint32_t kat[3][10] = {
        { 0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 },
        { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
          0x6d5451fd },
        { 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
          0x24126ea1 },
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        rng_philox4x32(kat[k], kat[k] + 4, out);
        CHECK(t, !memcmp(out, kat[k] + 6, sizeof out), "KAT %d: %08x %08x %08x %08x", k, out[0], out[1], out[2], out[3]);
    }
}

static void t_philox_randn(tctx *t)
{
    /* torch.randn(5, device='cuda') after torch.manual_seed(0) is published as
     * [-0.9247, -0.4253, -2.6438, 0.1452, -0.1209]; the reference's own docstring shows
     * -0.92466259 -0.42534415 -2.6438457 0.14518388 -0.12086647 (within 3e-7 of its code's output,
     * which is what these are) */
    static const float s0[5] = { -0.924662411f, -0.425343961f, -2.6438458f, 0.145183876f, -0.120866507f };
    static const float pub[5] = { -0.9247f, -0.4253f, -2.6438f, 0.1452f, -0.1209f };
    static const struct {
        uint64_t seed;
        size_t n;
        uint64_t hash;
        float ends[5]; /* x[0], x[1], x[2], x[n-2], x[n-1] */
    } cases[] = {
        { 0, 16, 0x36d20d615352bbe4ull, { -0.924662411f, -0.425343961f, -2.6438458f, 1.28664255f, 1.1819526f } },
        { 42, 262144, 0x0ff9316c13b61a50ull, { 0.194018871f, 2.16137385f, -0.172050953f, 1.02713835f, 1.81745243f } },
        { 2024, 196608, 0x38c5ff40d240d36full, { 0.997857511f, -1.14492166f, 0.6295681f, 0.210965574f, 0.0807065368f } },
        { 0xfedcba9876543210ull, 4099, 0xb72f56c52a923493ull, { 0.104403511f, -1.75673044f, 1.0206902f, 0.742994428f, 0.362315267f } },
    };
    float *x = malloc(sizeof(float) * 262144);
    if (!x) {
        CHECK(t, 0, "out of memory");
        return;
    }
    rng_philox g;
    rng_philox_seed(&g, 0);
    rng_philox_randn(&g, x, 5);
    CHECK(t, !memcmp(x, s0, sizeof s0), "seed 0: %.9g %.9g %.9g %.9g %.9g", x[0], x[1], x[2], x[3], x[4]);
    double d = 0;
    for (int i = 0; i < 5; i++) d = fmax(d, fabs(x[i] - pub[i]));
    CHECK(t, d <= 0.5e-4, "published torch CUDA seed-0 values: off by %g", d);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const size_t n = cases[c].n;
        rng_philox_seed(&g, cases[c].seed);
        rng_philox_randn(&g, x, n);
        const float got[5] = { x[0], x[1], x[2], x[n - 2], x[n - 1] };
        CHECK(t, !memcmp(got, cases[c].ends, sizeof got), "seed %llu n %zu: ends %.9g %.9g %.9g .. %.9g %.9g",
              (unsigned long long)cases[c].seed, n, got[0], got[1], got[2], got[3], got[4]);
        CHECK(t, fnv_bits(x, n) == cases[c].hash, "seed %llu n %zu: hash %016llx", (unsigned long long)cases[c].seed, n,
              (unsigned long long)fnv_bits(x, n));
    }
    /* calls in a row: the offset (counter word 0) moves by one per call, whatever its size */
    static const float s7[3] = { -1.28701162f, -0.395832717f, 0.375573039f };
    rng_philox_seed(&g, 7);
    rng_philox_randn(&g, x, 40);
    rng_philox_randn(&g, x + 40, 3);
    rng_philox_randn(&g, x + 43, 20);
    CHECK(t, g.offset == 3 && !memcmp(x + 40, s7, sizeof s7) && fnv_bits(x, 63) == 0x0f38d597391b38eeull,
          "sequence: offset %llu, x[40] %.9g, hash %016llx", (unsigned long long)g.offset, x[40],
          (unsigned long long)fnv_bits(x, 63));
    free(x);
}

/* Every element is its own counter: 1 and 2 threads give the same bits (OpenMP builds). */
static void t_philox_threads(tctx *t)
{
    const size_t n = 3 * 65536 + 5;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    if (!a || !b) {
        CHECK(t, 0, "out of memory");
        free(a), free(b);
        return;
    }
    rng_philox g;
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    rng_philox_seed(&g, 31337);
    rng_philox_randn(&g, a, n);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    rng_philox_seed(&g, 31337);
    rng_philox_randn(&g, b, n);
#ifdef _OPENMP
    omp_set_num_threads(before);
#endif
    CHECK(t, !memcmp(a, b, sizeof(float) * n), "1 vs 2 threads differ");
    free(a);
    free(b);
}

static void t_kinds(tctx *t)
{
    CHECK(t, rng_kind_parse("cpu") == RNG_CPU && rng_kind_parse("torch") == RNG_CPU && rng_kind_parse("cuda") == RNG_CUDA &&
                 rng_kind_parse("philox") == RNG_CUDA && rng_kind_parse("std_default") == RNG_KIND_COUNT &&
                 rng_kind_parse("") == RNG_KIND_COUNT && rng_kind_parse(NULL) == RNG_KIND_COUNT,
          "names");
    CHECK(t, !strcmp(rng_kind_name(RNG_CPU), "cpu") && !strcmp(rng_kind_name(RNG_CUDA), "cuda"), "kind names");
    /* through the common interface: the same numbers as the generators themselves */
    float a[40], b[40];
    rng g;
    dit_err e = { 0 };
    for (int k = 0; k < RNG_KIND_COUNT; k++) {
        CHECK(t, rng_init(&g, (rng_kind)k, 99, &e) == DIT_OK, "%s", e.msg);
        rng_randn(&g, a, 20);
        rng_randn(&g, a + 20, 20);
        if (k == RNG_CPU) {
            rng_torch c;
            rng_torch_seed(&c, 99);
            rng_torch_randn(&c, b, 20);
            rng_torch_randn(&c, b + 20, 20);
        } else {
            rng_philox c;
            rng_philox_seed(&c, 99);
            rng_philox_randn(&c, b, 20);
            rng_philox_randn(&c, b + 20, 20);
        }
        CHECK(t, !memcmp(a, b, sizeof a), "%s through rng_randn", rng_kind_name((rng_kind)k));
    }
    CHECK(t, rng_init(&g, RNG_KIND_COUNT, 1, &e) == DIT_E_ARG && strstr(e.msg, "cpu or cuda"), "bad kind: %s", e.msg);
}

int main(void)
{
    tctx t = test_begin("rng");
    RUN(&t, t_torch_randn);
    RUN(&t, t_small_and_sequence);
    RUN(&t, t_philox_block);
    RUN(&t, t_philox_randn);
    RUN(&t, t_philox_threads);
    RUN(&t, t_kinds);
    return test_end(&t);
}
