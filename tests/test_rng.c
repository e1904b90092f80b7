/* tests/test_rng.c — core/rng.c against numbers PyTorch 1.13.1 (Debian python3-torch, x86 AVX2
 * kernels) printed for torch.randn(shape, generator=torch.Generator().manual_seed(seed)): the
 * first three and last two values and an FNV-1a hash of all the float bits (computed by the
 * Python side), for latent-sized draws, a partial last block of 16 and the n < 16 path; and two
 * draws in a row from one generator. */
#include "core/rng.h"
#include "tests/test.h"

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

int main(void)
{
    tctx t = test_begin("rng");
    RUN(&t, t_torch_randn);
    RUN(&t, t_small_and_sequence);
    return test_end(&t);
}
