/* core/rng.c — see rng.h. */
#include "rng.h"

#include <math.h>
#include <string.h>

#define MT_N 624
#define MT_M 397

/* at::mt19937_engine(seed): init_with_uint32 on the low 32 bits (Matsumoto & Nishimura's init). */
void rng_torch_seed(rng_torch *g, uint64_t seed)
{
    g->mt[0] = (uint32_t)seed;
    for (int j = 1; j < MT_N; j++) g->mt[j] = 1812433253u * (g->mt[j - 1] ^ (g->mt[j - 1] >> 30)) + (uint32_t)j;
    g->i = MT_N;
    g->have_next = 0;
    g->next = 0;
}

uint32_t rng_torch_u32(rng_torch *g)
{
    if (g->i >= MT_N) {
        for (int k = 0; k < MT_N; k++) {
            const uint32_t y = (g->mt[k] & 0x80000000u) | (g->mt[(k + 1) % MT_N] & 0x7fffffffu);
            g->mt[k] = g->mt[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        g->i = 0;
    }
    uint32_t y = g->mt[g->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* uniform_real_distribution<float>(0, 1): the low 24 bits of one draw times 2^-24 */
static float uniform_f(rng_torch *g)
{
    return (float)(rng_torch_u32(g) & ((1u << 24) - 1)) * (1.0f / 16777216.0f);
}

/* uniform_real_distribution<double>(0, 1): 53 bits of random64() = (first << 32 | second) */
static double uniform_d(rng_torch *g)
{
    const uint64_t hi = rng_torch_u32(g), lo = rng_torch_u32(g);
    return (double)(((hi << 32) | lo) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* torch's x86 builds run normal_fill_16_AVX2, whose log and sin/cos are avx_mathfun.h's
 * log256_ps and sincos256_ps (Cephes polynomials, Julien Pommier's SSE/AVX port), compiled by GCC
 * with -mfma and its default -ffp-contract=fast: each multiply feeding an add became one fused
 * multiply-add. The scalar code below repeats those operations lane by lane, fmaf where GCC fused,
 * so the bits agree (checked against torch 1.13 on many seeds and sizes, tests/test_rng.c). */
static inline uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* log256_ps for x in (0, 1] (Box-Muller's 1 - u, never 0 or negative) */
static float mathfun_log(float x)
{
    x = x > float_of(0x00800000u) ? x : float_of(0x00800000u);
    const int32_t ex = (int32_t)(bits_of(x) >> 23) - 0x7f;
    x = float_of((bits_of(x) & ~0x7f800000u) | bits_of(0.5f));
    float e = (float)ex + 1.0f;
    const int below = x < 0.707106781186547524f; /* sqrt(1/2) */
    const float tmp = below ? x : 0.0f;
    x = x - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    x = x + tmp;
    const float z = x * x;
    static const float P[9] = { 7.0376836292E-2f,  -1.1514610310E-1f, 1.1676998740E-1f,
                                -1.2420140846E-1f, 1.4249322787E-1f,  -1.6668057665E-1f,
                                2.0000714765E-1f,  -2.4999993993E-1f, 3.3333331174E-1f };
    float y = P[0];
    for (int i = 1; i < 9; i++) y = fmaf(y, x, P[i]);
    y = y * x;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(-z, 0.5f, y);
    return fmaf(e, 0.693359375f, x + y);
}

/* sincos256_ps for x >= 0 */
static void mathfun_sincos(float x, float *s, float *c)
{
    const float ax = float_of(bits_of(x) & 0x7fffffffu);
    uint32_t sign_sin = bits_of(x) & 0x80000000u;
    int32_t j = (int32_t)(ax * 1.27323954473516f); /* 4 / pi, truncated */
    j = (j + 1) & ~1;
    const float y = (float)j;
    sign_sin ^= (uint32_t)(j & 4) << 29;
    const uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    const int poly_sin = (j & 2) == 0;
    float r = fmaf(y, -0.78515625f, ax); /* extended-precision reduction by pi/4 */
    r = fmaf(y, -2.4187564849853515625e-4f, r);
    r = fmaf(y, -3.77489497744594108e-8f, r);
    const float z = r * r;
    float yc = fmaf(2.443315711809948E-005f, z, -1.388731625493765E-003f);
    yc = fmaf(yc, z, 4.166664568298827E-002f);
    yc = fmaf(yc * z, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = fmaf(-1.9515295891E-4f, z, 8.3321608736E-3f);
    ys = fmaf(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf(ys, r, r);
    const float sn = poly_sin ? ys : yc, cs = poly_sin ? yc : ys;
    *s = float_of(bits_of(sn) ^ sign_sin);
    *c = float_of(bits_of(cs) ^ sign_cos);
}

/* normal_fill_16: x[0..16) uniforms in [0, 1) -> normals, pairs (j, j + 8) */
static void fill16(float *x)
{
    for (int j = 0; j < 8; j++) {
        const float u1 = 1.0f - x[j], u2 = x[j + 8];
        const float radius = sqrtf(-2.0f * mathfun_log(u1));
        float s, c;
        mathfun_sincos(6.28318530717958647692f * u2, &s, &c);
        x[j] = radius * c;
        x[j + 8] = radius * s;
    }
}

/* normal_distribution<double>(0, 1) (DistributionsHelper.h): Box-Muller on two 53-bit uniforms,
 * the sine half cached for the next call. */
static double normal_d(rng_torch *g)
{
    if (g->have_next) {
        g->have_next = 0;
        return g->next;
    }
    const double u1 = uniform_d(g), u2 = uniform_d(g);
    const double r = sqrt(-2.0 * log1p(-u2)), theta = 2.0 * 3.14159265358979323846 * u1;
    g->have_next = 1;
    g->next = r * sin(theta);
    return r * cos(theta);
}

void rng_torch_randn(rng_torch *g, float *out, size_t n)
{
    if (n < 16) {
        for (size_t i = 0; i < n; i++) out[i] = (float)normal_d(g);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = uniform_f(g);
    for (size_t i = 0; i + 16 <= n; i += 16) fill16(out + i);
    if (n % 16) { /* the last 16 values drawn again */
        float *last = out + n - 16;
        for (int i = 0; i < 16; i++) last[i] = uniform_f(g);
        fill16(last);
    }
}

/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11;
 * the constants of Random123 and curand): ten rounds of two 32x32->64 multiplies, the key bumped by
 * the Weyl constants between rounds. */
void rng_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1, c3 = (uint32_t)p0, c0 = n0, c2 = n2;
        k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void rng_philox_seed(rng_philox *g, uint64_t seed)
{
    g->seed = seed;
    g->offset = 0;
}

/* The reference's constants are float32 arrays: 2.3283064e-10 rounds to 2^-32 exactly, and
 * 2.3283064e-10 * 6.2831855 to 0x1.921fb6p-30 (not 2 pi 2^-32 = 0x1.921fb54442d18p-30). A uint32
 * array times a float32 array is float64 in numpy, so u, v, the log, sqrt and sin are double. */
#define PHILOX_U_SCALE 0x1p-32
#define PHILOX_V_SCALE 0x1.921fb6p-30

void rng_philox_randn(rng_philox *g, float *out, size_t n)
{
    const uint32_t key[2] = { (uint32_t)g->seed, (uint32_t)(g->seed >> 32) };
    const uint32_t off0 = (uint32_t)g->offset, off1 = (uint32_t)(g->offset >> 32);
    const long long nn = (long long)n;
#pragma omp parallel for schedule(static) if (nn >= 16384)
    for (long long i = 0; i < nn; i++) {
        /* element i: subsequence i (counter words 2, 3), the call count in words 0, 1 */
        const uint32_t ctr[4] = { off0, off1, (uint32_t)i, (uint32_t)((uint64_t)i >> 32) };
        uint32_t r[4];
        rng_philox4x32(ctr, key, r);
        const double u = (double)r[0] * PHILOX_U_SCALE + PHILOX_U_SCALE / 2;
        const double v = (double)r[1] * PHILOX_V_SCALE + PHILOX_V_SCALE / 2;
        out[i] = (float)(sqrt(-2.0 * log(u)) * sin(v));
    }
    g->offset++;
}

const char *rng_kind_name(rng_kind k)
{
    static const char *const names[RNG_KIND_COUNT] = { "cpu", "cuda" };
    return (unsigned)k < RNG_KIND_COUNT ? names[k] : "?";
}

rng_kind rng_kind_parse(const char *name)
{
    if (!name) return RNG_KIND_COUNT;
    if (!strcmp(name, "cpu") || !strcmp(name, "torch")) return RNG_CPU;
    if (!strcmp(name, "cuda") || !strcmp(name, "philox")) return RNG_CUDA;
    return RNG_KIND_COUNT;
}

dit_status rng_init(rng *g, rng_kind kind, uint64_t seed, dit_err *e)
{
    g->kind = kind;
    switch (kind) {
    case RNG_CPU: rng_torch_seed(&g->u.cpu, seed); return DIT_OK;
    case RNG_CUDA: rng_philox_seed(&g->u.cuda, seed); return DIT_OK;
    default: return err_set(e, DIT_E_ARG, "rng: unknown generator %d (cpu or cuda)", (int)kind);
    }
}

void rng_randn(rng *g, float *out, size_t n)
{
    if (g->kind == RNG_CUDA) rng_philox_randn(&g->u.cuda, out, n);
    else rng_torch_randn(&g->u.cpu, out, n);
}
