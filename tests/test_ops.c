/* tests/test_ops.c — core/ops.c: every fast kernel against its naive twin on random inputs
 * (odd sizes, wide ranges, special values), 1 vs 2 OpenMP threads bit for bit, in-place calls,
 * and known values computed independently of the code (hand or high-precision values).
 *
 * Tolerances (fast vs twin, |got - ref| <= atol + rtol |ref|) are stated per kernel below;
 * the twins themselves are pinned by the known values.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/cpu.h"
#include "core/ops.h"
#include "core/ops_vec.h"
#include "tests/test.h"

/* ---------------------------------------------------------------- helpers */

static float *fbuf(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (!p) {
        fprintf(stderr, "test_ops: out of memory\n");
        exit(2);
    }
    return p;
}

/* Order-preserving integer image of a float, for ulp distances. */
static int64_t f_ord(float f)
{
    int32_t i;
    memcpy(&i, &f, 4);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}

/* fast vs ref: NaN must meet NaN, inf the same inf, finite values |d| <= atol + rtol |ref|.
 * Prints max abs err, max rel err (over |ref| >= 1e-30) and the first mismatches. */
static int cmp_tol(tctx *t, const char *what, const float *got, const float *ref, size_t n, double atol, double rtol)
{
    double mabs = 0, mrel = 0, worst = 0;
    int shown = 0;
    for (size_t i = 0; i < n; i++) {
        const double g = got[i], r = ref[i];
        double ratio;
        if (isnan(r) || isnan(g)) ratio = isnan(r) && isnan(g) ? 0 : INFINITY;
        else if (isinf(r) || isinf(g)) ratio = g == r ? 0 : INFINITY;
        else {
            const double d = fabs(g - r);
            if (d > mabs) mabs = d;
            if (fabs(r) >= 1e-30 && d / fabs(r) > mrel) mrel = d / fabs(r);
            ratio = d / (atol + rtol * fabs(r));
        }
        if (ratio > worst) worst = ratio;
        if (ratio > 1 && shown < 5) {
            fprintf(stderr, "    %s [%zu]: got %.9g ref %.9g\n", what, i, g, r);
            shown++;
        }
    }
    printf("  %-44s n=%-8zu max abs %.3g  max rel %.3g  (tol %.0e + %.0e|ref|)\n", what, n, mabs, mrel, atol, rtol);
    CHECK(t, worst <= 1, "%s: worst err/tol %.3g", what, worst);
    return worst <= 1;
}

static int cmp_bits(tctx *t, const char *what, const float *a, const float *b, size_t n)
{
    size_t bad = 0, first = n;
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, 4) != 0 && !(isnan(a[i]) && isnan(b[i]))) {
            if (!bad) first = i;
            bad++;
        }
    if (bad) fprintf(stderr, "    %s: %zu of %zu differ, first [%zu] %.9g vs %.9g\n", what, bad, n, first, a[first], b[first]);
    CHECK(t, bad == 0, "%s: %zu elements differ", what, bad);
    return bad == 0;
}

static int near(double got, double want, double tol) { return fabs(got - want) <= tol; }

/* Realistic values plus a wide log-spread and the special values, for the exp-based kernels. */
static void fill_wide(trng *r, float *x, size_t n)
{
    static const float sp[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-30f, -1e-30f, 1e-40f, -1e-40f,
                                88.0f, -88.0f, 100.0f, -100.0f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX, 20.0f, -20.0f };
    const size_t ns = sizeof sp / sizeof sp[0];
    for (size_t i = 0; i < n; i++) {
        const uint64_t k = trng_u64(r) % 4;
        if (i < ns) x[i] = sp[i];
        else if (k == 0) x[i] = trng_uniform(r, -1, 1) * powf(10.0f, trng_uniform(r, -30, 4));
        else x[i] = trng_uniform(r, -12, 12);
    }
}

/* ---------------------------------------------------------------- ops_exp */

static void t_exp(tctx *t)
{
    /* Dense sweep of [-88, 88] against glibc expf (ops.h promises <= 2 ulp). */
    const size_t n = 1760001;
    float *x = fbuf(n), *y = fbuf(n), *z = fbuf(n);
    for (size_t i = 0; i < n; i++) x[i] = -88.0f + (float)(i * 1e-4);
    ops_exp(y, x, n);
    int64_t maxu = 0;
    float at = 0;
    size_t scalar_diff = 0;
    for (size_t i = 0; i < n; i++) {
        const int64_t u = llabs(f_ord(y[i]) - f_ord(expf(x[i])));
        if (u > maxu) maxu = u, at = x[i];
        const float s = ops__exp_f32(x[i]); /* the scalar twin of the vector lanes */
        if (memcmp(&s, y + i, 4)) scalar_diff++;
    }
    printf("  exp vs expf over %zu points in [-88, 88]: max %lld ulp (at %.7g); scalar formula differs at %zu\n", n,
           (long long)maxu, at, scalar_diff);
    CHECK(t, maxu <= 2, "max ulp %lld", (long long)maxu);
    CHECK(t, scalar_diff == 0, "scalar and vector exp differ at %zu points", scalar_diff);

    /* Special values. */
    const float sx[] = { -INFINITY, INFINITY, NAN, 0.0f, -0.0f, 89.0f, 88.8f, 88.72283f, -87.5f, -103.0f, -104.0f,
                         -1e30f, 1e30f, 1.0f };
    const size_t ns = sizeof sx / sizeof sx[0];
    float sy[sizeof sx / sizeof sx[0]];
    ops_exp(sy, sx, ns);
    CHECK(t, sy[0] == 0.0f && !signbit(sy[0]), "exp(-inf) = %g", sy[0]);
    CHECK(t, isinf(sy[1]) && sy[1] > 0, "exp(inf) = %g", sy[1]);
    CHECK(t, isnan(sy[2]), "exp(nan) = %g", sy[2]);
    CHECK(t, sy[3] == 1.0f && sy[4] == 1.0f, "exp(+-0) = %g %g", sy[3], sy[4]);
    CHECK(t, isinf(sy[5]) && isinf(sy[6]), "exp(89), exp(88.8) = %g %g", sy[5], sy[6]);
    CHECK(t, isfinite(sy[7]) && llabs(f_ord(sy[7]) - f_ord(expf(sx[7]))) <= 2, "exp(88.72283) = %g", sy[7]);
    CHECK(t, llabs(f_ord(sy[8]) - f_ord(expf(sx[8]))) <= 2, "exp(-87.5) = %g vs %g (subnormal)", sy[8], expf(sx[8]));
    CHECK(t, llabs(f_ord(sy[9]) - f_ord(expf(sx[9]))) <= 2, "exp(-103) = %g vs %g", sy[9], expf(sx[9]));
    CHECK(t, sy[10] == 0.0f && sy[11] == 0.0f && isinf(sy[12]), "exp(-104), exp(-1e30), exp(1e30) = %g %g %g", sy[10],
          sy[11], sy[12]);
    CHECK(t, near(sy[13], 2.718281828459045, 3e-7), "exp(1) = %.9g", sy[13]);

    /* Odd lengths (tails), in place, and 1 vs 2 threads. */
    trng r = { test_seed(11) };
    static const size_t lens[] = { 1, 7, 15, 16, 17, 31, 333, 100003 };
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        const size_t m = lens[k];
        trng_fill(&r, x, m, -90, 90);
        ops_exp(y, x, m);
        memcpy(z, x, sizeof(float) * m);
        ops_exp(z, z, m);
        int ok = 1;
        for (size_t i = 0; i < m; i++) ok &= llabs(f_ord(y[i]) - f_ord(expf(x[i]))) <= 2 || (x[i] < -87.3f && fabsf(y[i]) < 1e-37f);
        CHECK(t, ok, "n=%zu: exp off by > 2 ulp", m);
        CHECK(t, memcmp(y, z, sizeof(float) * m) == 0, "n=%zu: in place differs", m);
    }
    const size_t m = 100003;
    cpu_set_threads(1);
    ops_exp(y, x, m);
    cpu_set_threads(2);
    ops_exp(z, x, m);
    cmp_bits(t, "exp 1 vs 2 threads", y, z, m);
    free(x), free(y), free(z);
}

/* ---------------------------------------------------------------- activations */

typedef struct {
    const char *name;
    void (*fast)(float *, const float *, size_t);
    void (*ref)(float *, const float *, size_t);
    float (*scalar)(float);
    double atol, rtol;
} act_case;

static void t_activations(tctx *t)
{
    /* Tolerances: the fast paths are within 4 ulp (rel 3.6e-7) of the double-precision twins for
     * |x| <= 6 (measured on 16M points); rtol 5e-7 leaves a little room. atol only covers
     * subnormal results and, for gelu_tanh, x < -6 where |y| < 1e-15 (there the k = G1 + G2 x^2
     * rounding is not corrected). */
    const act_case cases[] = {
        { "gelu", ops_gelu, ops_ref_gelu, ops__gelu_f32, 1e-37, 5e-7 },
        { "gelu_tanh", ops_gelu_tanh, ops_ref_gelu_tanh, ops__gelu_tanh_f32, 1e-15, 5e-7 },
        { "quick_gelu", ops_quick_gelu, ops_ref_quick_gelu, ops__quick_gelu_f32, 1e-37, 5e-7 },
        { "silu", ops_silu, ops_ref_silu, ops__silu_f32, 1e-37, 5e-7 },
    };
    const size_t nmax = 100003;
    float *x = fbuf(nmax), *y = fbuf(nmax), *z = fbuf(nmax), *w = fbuf(nmax);
    trng r = { test_seed(7) };
    char what[96];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const act_case *a = &cases[c];
        static const size_t lens[] = { 1, 7, 31, 333, 100003 };
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            const size_t n = lens[k];
            trng_fill(&r, x, n, -6, 6);
            a->fast(y, x, n);
            a->ref(z, x, n);
            snprintf(what, sizeof what, "%s [-6,6]", a->name);
            cmp_tol(t, what, y, z, n, a->atol, a->rtol);
        }
        /* Wide range with +-0, +-inf, NaN, huge and tiny values. */
        fill_wide(&r, x, nmax);
        a->fast(y, x, nmax);
        a->ref(z, x, nmax);
        snprintf(what, sizeof what, "%s wide", a->name);
        cmp_tol(t, what, y, z, nmax, a->atol, a->rtol);
        /* Scalar fallback formula == vector lanes, bit for bit. */
        for (size_t i = 0; i < nmax; i++) w[i] = a->scalar(x[i]);
        snprintf(what, sizeof what, "%s scalar formula vs fast", a->name);
        cmp_bits(t, what, w, y, nmax);
        /* In place and threads. */
        memcpy(w, x, sizeof(float) * nmax);
        a->fast(w, w, nmax);
        snprintf(what, sizeof what, "%s in place", a->name);
        cmp_bits(t, what, w, y, nmax);
        cpu_set_threads(1);
        a->fast(y, x, nmax);
        cpu_set_threads(2);
        a->fast(z, x, nmax);
        snprintf(what, sizeof what, "%s 1 vs 2 threads", a->name);
        cmp_bits(t, what, y, z, nmax);
    }

    /* Known values (high-precision references) for fast and twin. */
    const float one = 1.0f, m3 = -3.0f;
    float f, g;
    ops_gelu(&f, &one, 1), ops_ref_gelu(&g, &one, 1);
    CHECK(t, near(f, 0.8413447460685429, 2e-7) && near(g, 0.8413447460685429, 1e-7), "gelu(1) = %.9g / %.9g", f, g);
    ops_gelu(&f, &m3, 1), ops_ref_gelu(&g, &m3, 1);
    CHECK(t, near(f, -0.004049694094890287, 2e-9) && near(g, -0.004049694094890287, 1e-9), "gelu(-3) = %.9g / %.9g",
          f, g);
    ops_gelu_tanh(&f, &one, 1), ops_ref_gelu_tanh(&g, &one, 1);
    CHECK(t, near(f, 0.8411919906082768, 2e-7) && near(g, 0.8411919906082768, 1e-7), "gelu_tanh(1) = %.9g / %.9g",
          f, g);
    ops_silu(&f, &one, 1), ops_ref_silu(&g, &one, 1);
    CHECK(t, near(f, 0.7310585786300049, 2e-7) && near(g, 0.7310585786300049, 1e-7), "silu(1) = %.9g / %.9g", f, g);
    ops_quick_gelu(&f, &one, 1), ops_ref_quick_gelu(&g, &one, 1);
    CHECK(t, near(f, 0.8457957659328212, 2e-7) && near(g, 0.8457957659328212, 1e-7), "quick_gelu(1) = %.9g / %.9g", f,
          g); /* 1 / (1 + e^-1.702) */
    printf("  known: gelu(1) %.9g, gelu_tanh(1) %.9g, silu(1) %.9g, quick_gelu(1) %.9g\n",
           ops__gelu_f32(1), ops__gelu_tanh_f32(1), ops__silu_f32(1), ops__quick_gelu_f32(1));
    free(x), free(y), free(z), free(w);
}

/* gelu_tanh to bf16: the fast value is within 4 ulp of the twin's before rounding, so the bf16
 * results differ by at most one bf16 step (2^-7 relative), and rarely. */
static void t_gelu_tanh_bf16(tctx *t)
{
    const size_t lens[] = { 1, 17, 256, 257, 16384 * 2 + 3 };
    const size_t nmax = 16384 * 2 + 3;
    float *x = malloc(sizeof(float) * nmax), *f = malloc(sizeof(float) * nmax);
    uint16_t *y = malloc(2 * nmax), *z = malloc(2 * nmax), *y1 = malloc(2 * nmax);
    trng r = { test_seed(29) };
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const size_t n = lens[li];
        trng_fill(&r, x, n, -6, 6);
        ops_gelu_tanh_bf16(y, x, n);
        ops_ref_gelu_tanh_bf16(z, x, n);
        ops_ref_gelu_tanh(f, x, n);
        int bad = 0, diff = 0, twin = 1;
        for (size_t i = 0; i < n; i++) {
            const float a = bf16_to_f32(y[i]), c = bf16_to_f32(z[i]);
            bad += fabsf(a - c) > fabsf(c) * (1.0f / 128) + 1e-30f;
            diff += y[i] != z[i];
            twin &= z[i] == f32_to_bf16(f[i]);
        }
        CHECK(t, bad == 0 && diff * 100 <= (int)n, "gelu_tanh_bf16 n %zu: %d off, %d differ", n, bad, diff);
        CHECK(t, twin, "ref gelu_tanh_bf16 is not bf16(ref gelu_tanh)");
        cpu_set_threads(1);
        ops_gelu_tanh_bf16(y1, x, n);
        cpu_set_threads(2);
        CHECK(t, !memcmp(y, y1, 2 * n), "gelu_tanh_bf16 n %zu differs between 1 and 2 threads", n);
    }
    free(x), free(f), free(y), free(z), free(y1);
}

/* ---------------------------------------------------------------- norms */

/* LayerNorm to bf16: the fast kernel rounds an f32 value within ~1e-6 of the twin's, so the two
 * bf16 results may differ only where that value sits at a rounding boundary: by one bf16 step
 * (up to 2^-7 relative), or by the f32 difference itself near zero, where bf16 steps are tiny. */
static void t_layernorm_bf16(tctx *t)
{
    static const int dims[] = { 1, 7, 255, 256, 257, 1536, 3072 };
    const int rows = 9;
    float *x = malloc(sizeof(float) * rows * 3072), *w = malloc(sizeof(float) * 3072), *b = malloc(sizeof(float) * 3072);
    uint16_t *y = malloc(2 * rows * 3072), *z = malloc(2 * rows * 3072), *y1 = malloc(2 * rows * 3072);
    trng r = { test_seed(23) };
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        const int dim = dims[di];
        const size_t n = (size_t)rows * dim;
        trng_fill(&r, x, n, -3, 5);
        trng_fill(&r, w, (size_t)dim, 0.5f, 1.5f); /* adaLN: w = 1 + scale, b = shift */
        trng_fill(&r, b, (size_t)dim, -1, 1);
        ops_layernorm_bf16(y, x, w, b, rows, dim, 1e-6f);
        ops_ref_layernorm_bf16(z, x, w, b, rows, dim, 1e-6f);
        int bad = 0, diff = 0;
        for (size_t i = 0; i < n; i++) {
            const float a = bf16_to_f32(y[i]), c = bf16_to_f32(z[i]);
            if (fabsf(a - c) > fabsf(c) * (1.0f / 128) + 2e-6f) {
                if (!bad) printf("  layernorm_bf16 dim %d [%zu]: %.9g vs twin %.9g\n", dim, i, a, c);
                bad++;
            }
            diff += y[i] != z[i];
        }
        CHECK(t, bad == 0, "layernorm_bf16 dim %d: %d values off by more than one bf16 step", dim, bad);
        CHECK(t, diff * 100 <= (int)n, "layernorm_bf16 dim %d: %d of %zu values differ", dim, diff, n);
        /* the twin really is LayerNorm then rounding: compare with ops_ref_layernorm */
        float *f = malloc(sizeof(float) * n);
        ops_ref_layernorm(f, x, w, b, rows, dim, 1e-6f);
        int same = 1;
        for (size_t i = 0; i < n; i++) same &= z[i] == f32_to_bf16(f[i]);
        CHECK(t, same, "ref layernorm_bf16 dim %d is not bf16(ref layernorm)", dim);
        free(f);
        cpu_set_threads(1);
        ops_layernorm_bf16(y1, x, w, b, rows, dim, 1e-6f);
        cpu_set_threads(2);
        CHECK(t, !memcmp(y, y1, 2 * n), "layernorm_bf16 dim %d differs between 1 and 2 threads", dim);
    }
    free(x), free(w), free(b), free(y), free(z), free(y1);
}

static void t_layernorm(tctx *t)
{
    static const int64_t rows_[] = { 1, 3, 17, 64 };
    static const int dims[] = { 1, 7, 31, 64, 333, 1536 };
    const size_t nmax = 64 * 1536;
    float *x = fbuf(nmax), *y = fbuf(nmax), *z = fbuf(nmax), *w = fbuf(1536), *b = fbuf(1536);
    trng r = { test_seed(3) };
    char what[96];
    for (size_t ri = 0; ri < 4; ri++)
        for (size_t di = 0; di < 6; di++) {
            const int64_t rows = rows_[ri];
            const int dim = dims[di];
            const size_t n = (size_t)rows * dim;
            for (int64_t i = 0; i < rows; i++) { /* per-row offset up to 1000x the spread: the mean must cancel */
                const float off = trng_uniform(&r, -20, 20), spread = trng_uniform(&r, 0.02f, 20);
                trng_fill(&r, x + i * dim, (size_t)dim, off, off + spread);
            }
            trng_fill(&r, w, (size_t)dim, 0.5f, 1.5f);
            trng_fill(&r, b, (size_t)dim, -1, 1);
            const int affine = (ri + di) % 3; /* 0: w and b, 1: none, 2: w only */
            const float *wp = affine != 1 ? w : NULL, *bp = affine == 0 ? b : NULL;
            const float eps = di % 2 ? 1e-6f : 1e-2f;
            ops_layernorm(y, x, wp, bp, rows, dim, eps);
            ops_ref_layernorm(z, x, wp, bp, rows, dim, eps);
            snprintf(what, sizeof what, "layernorm %lldx%d %s eps %g", (long long)rows, dim,
                     affine == 0 ? "w,b" : affine == 1 ? "plain" : "w", eps);
            cmp_tol(t, what, y, z, n, 1e-6, 1e-6);
        }
    /* In place and threads at 64 x 1536. */
    ops_layernorm(y, x, w, b, 64, 1536, 1e-6f);
    memcpy(z, x, sizeof(float) * nmax);
    ops_layernorm(z, z, w, b, 64, 1536, 1e-6f);
    cmp_bits(t, "layernorm in place", y, z, nmax);
    cpu_set_threads(1);
    ops_layernorm(y, x, w, b, 64, 1536, 1e-6f);
    cpu_set_threads(2);
    ops_layernorm(z, x, w, b, 64, 1536, 1e-6f);
    cmp_bits(t, "layernorm 1 vs 2 threads", y, z, nmax);

    /* Known: [1,2,3,4] -> +-1.3416, +-0.4472 (eps 0); eps 1 (inside the sqrt) -> [-1,-1/3,1/3,1]. */
    const float k[4] = { 1, 2, 3, 4 };
    const double want0[4] = { -1.3416407864998738, -0.4472135954999579, 0.4472135954999579, 1.3416407864998738 };
    const double want1[4] = { -1, -1.0 / 3, 1.0 / 3, 1 };
    float o[4], q[4];
    int ok = 1;
    ops_layernorm(o, k, NULL, NULL, 1, 4, 0.0f), ops_ref_layernorm(q, k, NULL, NULL, 1, 4, 0.0f);
    for (int i = 0; i < 4; i++) ok &= near(o[i], want0[i], 3e-7) && near(q[i], want0[i], 2e-7);
    printf("  known: layernorm([1,2,3,4], eps 0) = [%.7f %.7f %.7f %.7f]\n", o[0], o[1], o[2], o[3]);
    ops_layernorm(o, k, NULL, NULL, 1, 4, 1.0f), ops_ref_layernorm(q, k, NULL, NULL, 1, 4, 1.0f);
    for (int i = 0; i < 4; i++) ok &= near(o[i], want1[i], 3e-7) && near(q[i], want1[i], 2e-7);
    const float kw[4] = { 2, 2, 2, 2 }, kb[4] = { 1, 1, 1, 1 };
    ops_layernorm(o, k, kw, kb, 1, 4, 1.0f), ops_ref_layernorm(q, k, kw, kb, 1, 4, 1.0f);
    for (int i = 0; i < 4; i++) ok &= near(o[i], 2 * want1[i] + 1, 5e-7) && near(q[i], 2 * want1[i] + 1, 3e-7);
    CHECK(t, ok, "layernorm known values");
    free(x), free(y), free(z), free(w), free(b);
}

static void t_rmsnorm(tctx *t)
{
    static const int64_t rows_[] = { 1, 3, 17, 64 };
    static const int dims[] = { 1, 7, 31, 64, 128, 333, 1536 };
    const size_t nmax = 64 * 1536;
    float *x = fbuf(nmax), *y = fbuf(nmax), *z = fbuf(nmax), *w = fbuf(1536);
    trng r = { test_seed(5) };
    char what[96];
    for (size_t ri = 0; ri < 4; ri++)
        for (size_t di = 0; di < 7; di++) {
            const int64_t rows = rows_[ri];
            const int dim = dims[di];
            for (int64_t i = 0; i < rows; i++) trng_fill(&r, x + i * dim, (size_t)dim, -5, 5);
            trng_fill(&r, w, (size_t)dim, -2, 2);
            const float *wp = (ri + di) % 2 ? w : NULL;
            const float eps = di % 2 ? 1e-6f : 0.5f;
            ops_rmsnorm(y, x, wp, rows, dim, eps);
            ops_ref_rmsnorm(z, x, wp, rows, dim, eps);
            snprintf(what, sizeof what, "rmsnorm %lldx%d %s eps %g", (long long)rows, dim, wp ? "w" : "plain", eps);
            cmp_tol(t, what, y, z, (size_t)rows * dim, 1e-7, 1e-6);
        }
    ops_rmsnorm(y, x, w, 64, 1536, 1e-6f);
    memcpy(z, x, sizeof(float) * nmax);
    ops_rmsnorm(z, z, w, 64, 1536, 1e-6f);
    cmp_bits(t, "rmsnorm in place", y, z, nmax);
    cpu_set_threads(1);
    ops_rmsnorm(y, x, w, 64, 1536, 1e-6f);
    cpu_set_threads(2);
    ops_rmsnorm(z, x, w, 64, 1536, 1e-6f);
    cmp_bits(t, "rmsnorm 1 vs 2 threads", y, z, nmax);

    /* Known: [3,4]: mean square 12.5; eps 3.5 inside the sqrt -> [0.75, 1]; w = [2, 0.5]. */
    const float k[2] = { 3, 4 }, kw[2] = { 2, 0.5f };
    float o[2], q[2];
    int ok = 1;
    ops_rmsnorm(o, k, NULL, 1, 2, 0.0f), ops_ref_rmsnorm(q, k, NULL, 1, 2, 0.0f);
    ok &= near(o[0], 0.8485281374238570, 2e-7) && near(o[1], 1.1313708498984760, 2e-7) && near(q[0], 0.848528137, 1e-7);
    ops_rmsnorm(o, k, kw, 1, 2, 3.5f), ops_ref_rmsnorm(q, k, kw, 1, 2, 3.5f);
    ok &= o[0] == 1.5f && o[1] == 0.5f && q[0] == 1.5f && q[1] == 0.5f;
    CHECK(t, ok, "rmsnorm known values: %g %g / %g %g", o[0], o[1], q[0], q[1]);
    free(x), free(y), free(z), free(w);
}

static void t_groupnorm(tctx *t)
{
    static const int Cs[] = { 4, 32, 64 }, Gs[] = { 1, 2, 32 };
    static const int64_t hws[] = { 1, 7, 33, 100, 256 };
    const size_t nmax = 64 * 256;
    float *x = fbuf(nmax), *y = fbuf(nmax), *z = fbuf(nmax), *w = fbuf(64), *b = fbuf(64);
    trng r = { test_seed(9) };
    char what[96];
    int idx = 0;
    for (size_t ci = 0; ci < 3; ci++)
        for (size_t gi = 0; gi < 3; gi++)
            for (size_t hi = 0; hi < 5; hi++, idx++) {
                const int C = Cs[ci], G = Gs[gi];
                const int64_t hw = hws[hi];
                if (C % G) continue;
                const size_t n = (size_t)C * hw;
                const float goff = trng_uniform(&r, -20, 20), gspread = idx % 4 ? 10.0f : 0.05f;
                for (int c = 0; c < C; c++) { /* channels with their own offsets, around a group offset */
                    const float off = goff + trng_uniform(&r, -gspread, gspread);
                    trng_fill(&r, x + c * hw, (size_t)hw, off, off + gspread);
                }
                trng_fill(&r, w, (size_t)C, 0.5f, 1.5f);
                trng_fill(&r, b, (size_t)C, -1, 1);
                const int affine = idx % 3;
                const float *wp = affine != 1 ? w : NULL, *bp = affine == 0 ? b : NULL;
                const float eps = idx % 2 ? 1e-6f : 1e-2f;
                ops_groupnorm(y, x, wp, bp, C, hw, G, eps);
                ops_ref_groupnorm(z, x, wp, bp, C, hw, G, eps);
                snprintf(what, sizeof what, "groupnorm C%d hw%lld G%d %s eps %g", C, (long long)hw, G,
                         affine == 0 ? "w,b" : affine == 1 ? "plain" : "w", eps);
                cmp_tol(t, what, y, z, n, 1e-6, 1e-6);
            }
    ops_groupnorm(y, x, w, b, 64, 256, 32, 1e-6f);
    memcpy(z, x, sizeof(float) * nmax);
    ops_groupnorm(z, z, w, b, 64, 256, 32, 1e-6f);
    cmp_bits(t, "groupnorm in place", y, z, nmax);
    cpu_set_threads(1);
    ops_groupnorm(y, x, w, b, 64, 256, 32, 1e-6f);
    cpu_set_threads(2);
    ops_groupnorm(z, x, w, b, 64, 256, 32, 1e-6f);
    cmp_bits(t, "groupnorm 1 vs 2 threads", y, z, nmax);

    /* Known: x = [[1,2],[3,4]] (C 2, hw 2). One group = layernorm of [1,2,3,4] (eps 1 ->
     * [-1,-1/3,1/3,1]); two groups with w = [2,3], b = [1,-1], eps 0 -> [-1,3,-4,2]. */
    const float k[4] = { 1, 2, 3, 4 }, kw[2] = { 2, 3 }, kb[2] = { 1, -1 };
    float o[4], q[4];
    int ok = 1;
    ops_groupnorm(o, k, NULL, NULL, 2, 2, 1, 1.0f), ops_ref_groupnorm(q, k, NULL, NULL, 2, 2, 1, 1.0f);
    const double want1[4] = { -1, -1.0 / 3, 1.0 / 3, 1 }, want2[4] = { -1, 3, -4, 2 };
    for (int i = 0; i < 4; i++) ok &= near(o[i], want1[i], 3e-7) && near(q[i], want1[i], 2e-7);
    ops_groupnorm(o, k, kw, kb, 2, 2, 2, 0.0f), ops_ref_groupnorm(q, k, kw, kb, 2, 2, 2, 0.0f);
    for (int i = 0; i < 4; i++) ok &= near(o[i], want2[i], 1e-6) && near(q[i], want2[i], 1e-6);
    CHECK(t, ok, "groupnorm known values: [%g %g %g %g] / [%g %g %g %g]", o[0], o[1], o[2], o[3], q[0], q[1], q[2],
          q[3]);
    free(x), free(y), free(z), free(w), free(b);
}

/* ---------------------------------------------------------------- softmax */

/* Statistics given: against the twin, and with each group's own statistics against ops_groupnorm. */
static void t_groupnorm_apply(tctx *t)
{
    enum { C = 64, HW = 99, G = 32 };
    float *x = fbuf(C * HW), *y = fbuf(C * HW), *z = fbuf(C * HW), w[C], b[C], rstd[G];
    double mean[G];
    trng r = { test_seed(10) };
    for (int c = 0; c < C; c++) { /* offsets far larger than the spread, per group */
        const float off = (float)(c / 2) * 50.0f - 700.0f;
        trng_fill(&r, x + c * HW, HW, off - 1, off + 1);
    }
    trng_fill(&r, w, C, 0.5f, 1.5f);
    trng_fill(&r, b, C, -1, 1);
    for (int g = 0; g < G; g++) { /* each group's own statistics, two passes in double */
        double s = 0, ss = 0;
        for (int i = 0; i < 2 * HW; i++) s += x[g * 2 * HW + i];
        mean[g] = s / (2 * HW);
        for (int i = 0; i < 2 * HW; i++) ss += (x[g * 2 * HW + i] - mean[g]) * (x[g * 2 * HW + i] - mean[g]);
        rstd[g] = (float)(1.0 / sqrt(ss / (2 * HW) + 1e-6));
    }
    ops_groupnorm_apply(y, x, w, b, C, HW, G, mean, rstd);
    ops_ref_groupnorm_apply(z, x, w, b, C, HW, G, mean, rstd);
    cmp_tol(t, "groupnorm_apply vs twin", y, z, C * HW, 1e-6, 1e-6);
    ops_groupnorm(z, x, w, b, C, HW, G, 1e-6f);
    cmp_tol(t, "groupnorm_apply(own statistics) vs groupnorm", y, z, C * HW, 1e-6, 1e-6);
    /* other statistics: (x - 1) * 2 with w = 1, b = 0 (known) */
    for (int g = 0; g < G; g++) mean[g] = 1, rstd[g] = 2;
    ops_groupnorm_apply(y, x, NULL, NULL, C, HW, G, mean, rstd);
    int ok = 1;
    for (int i = 0; i < C * HW; i++) ok &= y[i] == (x[i] - 1.0f) * 2.0f;
    CHECK(t, ok, "groupnorm_apply with mean 1, rstd 2 is not (x - 1) * 2");
    memcpy(z, x, sizeof(float) * C * HW);
    ops_groupnorm_apply(z, z, NULL, NULL, C, HW, G, mean, rstd);
    cmp_bits(t, "groupnorm_apply in place", y, z, C * HW);
    free(x), free(y), free(z);
}

static void t_softmax(tctx *t)
{
    static const int64_t rows_[] = { 1, 3, 17, 64 };
    static const int dims[] = { 1, 7, 31, 64, 333, 1536, 4096 };
    const size_t nmax = 64 * 4096;
    float *x = fbuf(nmax), *y = fbuf(nmax), *z = fbuf(nmax);
    trng r = { test_seed(13) };
    char what[96];
    for (size_t ri = 0; ri < 4; ri++)
        for (size_t di = 0; di < 7; di++) {
            const int64_t rows = rows_[ri];
            const int dim = dims[di];
            const size_t n = (size_t)rows * dim;
            const float span = (ri + di) % 2 ? 10.0f : 60.0f; /* 60: many outputs underflow */
            trng_fill(&r, x, n, -span, span);
            for (size_t i = 0; i < n; i++) /* sprinkle -inf (masked logits) */
                if (trng_u64(&r) % 8 == 0) x[i] = -INFINITY;
            if (rows > 1)
                for (int j = 0; j < dim; j++) x[dim + j] = -INFINITY; /* row 1: fully masked */
            ops_softmax(y, x, rows, dim);
            ops_ref_softmax(z, x, rows, dim);
            snprintf(what, sizeof what, "softmax %lldx%d logits in +-%g", (long long)rows, dim, span);
            cmp_tol(t, what, y, z, n, 1e-9, 1e-6);
            if (rows > 1) {
                int zeros = 1;
                for (int j = 0; j < dim; j++) zeros &= y[dim + j] == 0.0f && z[dim + j] == 0.0f;
                CHECK(t, zeros, "softmax %lldx%d: all -inf row is not zeros", (long long)rows, dim);
            }
        }
    /* NaN poisons its row in both; +inf gives NaN in both (inf - inf). */
    trng_fill(&r, x, 3 * 333, -5, 5);
    x[100] = NAN, x[333 + 7] = INFINITY;
    ops_softmax(y, x, 3, 333);
    ops_ref_softmax(z, x, 3, 333);
    cmp_tol(t, "softmax rows with NaN / +inf", y, z, 3 * 333, 1e-9, 1e-6);
    CHECK(t, isnan(y[0]) && isnan(y[333]) && !isnan(y[666]), "softmax NaN rows: %g %g %g", y[0], y[333], y[666]);

    trng_fill(&r, x, nmax, -20, 20);
    ops_softmax(y, x, 64, 4096);
    memcpy(z, x, sizeof(float) * nmax);
    ops_softmax(z, z, 64, 4096);
    cmp_bits(t, "softmax in place", y, z, nmax);
    cpu_set_threads(1);
    ops_softmax(y, x, 64, 4096);
    cpu_set_threads(2);
    ops_softmax(z, x, 64, 4096);
    cmp_bits(t, "softmax 1 vs 2 threads", y, z, nmax);

    /* Known: softmax([0, ln 2]) = [1/3, 2/3]; [-inf, 0] = [0, 1]. */
    const float k[4] = { 0.0f, 0.69314718055994531f, -INFINITY, 0.0f };
    float o[4], q[4];
    ops_softmax(o, k, 2, 2), ops_ref_softmax(q, k, 2, 2);
    CHECK(t, near(o[0], 1.0 / 3, 1e-7) && near(o[1], 2.0 / 3, 1e-7) && near(q[0], 1.0 / 3, 1e-7) &&
             near(q[1], 2.0 / 3, 1e-7) && o[2] == 0 && o[3] == 1 && q[2] == 0 && q[3] == 1,
          "softmax known: %g %g %g %g", o[0], o[1], o[2], o[3]);
    free(x), free(y), free(z);
}

/* ---------------------------------------------------------------- RoPE */

static void t_rope(tctx *t)
{
    static const int64_t toks[] = { 1, 3, 17, 64 };
    static const int heads[] = { 1, 3 }, hds[] = { 2, 6, 16, 32, 34, 128 };
    const size_t nmax = 64 * (3 * 128 + 5), tmax = 64 * 64;
    float *x = fbuf(nmax), *y = fbuf(nmax), *z = fbuf(nmax), *c = fbuf(tmax), *s = fbuf(tmax);
    trng r = { test_seed(17) };
    char what[96];
    for (size_t ti = 0; ti < 4; ti++)
        for (size_t hi = 0; hi < 2; hi++)
            for (size_t di = 0; di < 6; di++) {
                const int64_t nt = toks[ti];
                const int nh = heads[hi], hd = hds[di];
                const int64_t stride = (int64_t)nh * hd + (di % 2 ? 5 : 0); /* padding must stay untouched */
                const size_t n = (size_t)(nt * stride);
                trng_fill(&r, x, n, -4, 4);
                for (int64_t i = 0; i < nt * hd / 2; i++) {
                    const double a = trng_uniform(&r, -100, 100);
                    c[i] = (float)cos(a), s[i] = (float)sin(a);
                }
                memcpy(y, x, sizeof(float) * n), memcpy(z, x, sizeof(float) * n);
                ops_rope(y, nt, nh, hd, stride, c, s);
                ops_ref_rope(z, nt, nh, hd, stride, c, s);
                snprintf(what, sizeof what, "rope tok %lld heads %d hd %d stride %lld", (long long)nt, nh, hd,
                         (long long)stride);
                cmp_tol(t, what, y, z, n, 1e-6, 1e-6);
                int pad_ok = 1;
                for (int64_t i = 0; i < nt; i++)
                    for (int64_t j = (int64_t)nh * hd; j < stride; j++) pad_ok &= y[i * stride + j] == x[i * stride + j];
                CHECK(t, pad_ok, "%s: wrote into the row padding", what);
            }
    /* Threads at 64 tokens x 3 heads x 128. */
    const int64_t stride = 3 * 128;
    trng_fill(&r, x, (size_t)(64 * stride), -4, 4);
    memcpy(y, x, sizeof(float) * 64 * stride), memcpy(z, x, sizeof(float) * 64 * stride);
    cpu_set_threads(1);
    ops_rope(y, 64, 3, 128, stride, c, s);
    cpu_set_threads(2);
    ops_rope(z, 64, 3, 128, stride, c, s);
    cmp_bits(t, "rope 1 vs 2 threads", y, z, (size_t)(64 * stride));

    /* Known: pair 0 turned by 90 degrees, pair 1 by 0: [1,2,3,4] -> [-2,1,3,4]. A swapped pair
     * convention (i, i + d/2) or the opposite sense (2,-1) would fail. */
    float k[4] = { 1, 2, 3, 4 }, kr[4] = { 1, 2, 3, 4 };
    const float kc[2] = { 0, 1 }, ks[2] = { 1, 0 };
    ops_rope(k, 1, 1, 4, 4, kc, ks), ops_ref_rope(kr, 1, 1, 4, 4, kc, ks);
    CHECK(t, k[0] == -2 && k[1] == 1 && k[2] == 3 && k[3] == 4 && !memcmp(k, kr, sizeof k),
          "rope 90 degrees: [%g %g %g %g]", k[0], k[1], k[2], k[3]);
    free(x), free(y), free(z), free(c), free(s);
}

static void t_rope_table(tctx *t)
{
    /* pos 3, dim 4, theta 1e4: omega = [1, 1/100] -> angles 3 and 0.03. A second axis (dim 2,
     * pos 5) appends angle 5. */
    const float pos[2] = { 3, 5 };
    const int axes[2] = { 4, 2 };
    float c[3], s[3];
    ops_rope_table(c, s, pos, 1, 2, axes, 10000.0);
    const double wc[3] = { -0.98999249660044542, 0.99955003374898754, 0.28366218546322625 };
    const double ws[3] = { 0.14112000805986721, 0.029995500202495660, -0.95892427466313845 };
    int ok = 1;
    for (int i = 0; i < 3; i++) ok &= c[i] == (float)wc[i] && s[i] == (float)ws[i];
    printf("  rope_table pos (3,5) dims (4,2): cos [%.8f %.8f %.8f] sin [%.8f %.8f %.8f]\n", c[0], c[1], c[2], s[0],
           s[1], s[2]);
    CHECK(t, ok, "rope_table known values");

    /* FLUX axes (16, 56, 56), theta 1e4, 300 tokens: against omega = exp(-(2j/dim) ln theta)
     * (a different formula for the same number), and 1 vs 2 threads. */
    const int fx[3] = { 16, 56, 56 };
    const int64_t nt = 300;
    float *p = fbuf(nt * 3), *c1 = fbuf(nt * 64), *s1 = fbuf(nt * 64), *c2 = fbuf(nt * 64), *s2 = fbuf(nt * 64);
    for (int64_t i = 0; i < nt; i++) p[i * 3] = 0, p[i * 3 + 1] = (float)(i / 20), p[i * 3 + 2] = (float)(i % 20);
    cpu_set_threads(1);
    ops_rope_table(c1, s1, p, nt, 3, fx, 10000.0);
    cpu_set_threads(2);
    ops_rope_table(c2, s2, p, nt, 3, fx, 10000.0);
    cmp_bits(t, "rope_table cos 1 vs 2 threads", c1, c2, (size_t)nt * 64);
    cmp_bits(t, "rope_table sin 1 vs 2 threads", s1, s2, (size_t)nt * 64);
    double maxd = 0;
    for (int64_t i = 0; i < nt; i++) {
        int col = 0;
        for (int a = 0; a < 3; a++)
            for (int j = 0; j < fx[a] / 2; j++, col++) {
                const double ang = p[i * 3 + a] * exp(-(2.0 * j / fx[a]) * log(10000.0));
                maxd = fmax(maxd, fabs(c1[i * 64 + col] - cos(ang)));
                maxd = fmax(maxd, fabs(s1[i * 64 + col] - sin(ang)));
            }
    }
    printf("  rope_table FLUX axes, %lld tokens: max |err| %.3g vs exp/log omega\n", (long long)nt, maxd);
    CHECK(t, maxd < 1e-7, "rope_table max err %g", maxd);
    free(p), free(c1), free(s1), free(c2), free(s2);
}

/* ---------------------------------------------------------------- upsample, modulate */

static void t_upsample(tctx *t)
{
    static const int Cs[] = { 1, 3 }, Hs[] = { 1, 5 }, Ws[] = { 1, 7, 8, 17, 33 }, fs[] = { 1, 2, 3 };
    float *x = fbuf(3 * 5 * 33), *y = fbuf(3 * 15 * 99), *z = fbuf(3 * 15 * 99);
    trng r = { test_seed(19) };
    int ok = 1;
    for (size_t a = 0; a < 2; a++)
        for (size_t b = 0; b < 2; b++)
            for (size_t c = 0; c < 5; c++)
                for (size_t d = 0; d < 3; d++) {
                    const int C = Cs[a], H = Hs[b], W = Ws[c], f = fs[d];
                    const size_t n = (size_t)C * H * f * W * f;
                    trng_fill(&r, x, (size_t)C * H * W, -1, 1);
                    ops_upsample_nearest(y, x, C, H, W, f);
                    ops_ref_upsample_nearest(z, x, C, H, W, f);
                    ok &= memcmp(y, z, sizeof(float) * n) == 0;
                }
    printf("  upsample: 60 shapes (C 1,3; H 1,5; W 1,7,8,17,33; factor 1,2,3) fast == twin: %s\n", ok ? "yes" : "NO");
    CHECK(t, ok, "upsample fast differs from twin");
    float *big = fbuf(64 * 64 * 33 * 4), *big2 = fbuf(64 * 64 * 33 * 4), *xb = fbuf(64 * 33 * 16);
    trng_fill(&r, xb, 64 * 33 * 16, -1, 1);
    cpu_set_threads(1);
    ops_upsample_nearest(big, xb, 16, 64, 33, 2);
    cpu_set_threads(2);
    ops_upsample_nearest(big2, xb, 16, 64, 33, 2);
    cmp_bits(t, "upsample 1 vs 2 threads", big, big2, 16 * 128 * 66);
    /* Known: [[1,2],[3,4]] x2. */
    const float k[4] = { 1, 2, 3, 4 };
    const float want[16] = { 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4 };
    float o[16];
    ops_upsample_nearest(o, k, 1, 2, 2, 2);
    CHECK(t, !memcmp(o, want, sizeof o), "upsample known 2x2 -> 4x4");
    free(x), free(y), free(z), free(big), free(big2), free(xb);
}

static void t_add_gated(tctx *t)
{
    static const int64_t rows_[] = { 1, 5, 64 };
    static const int dims[] = { 1, 15, 17, 1536 };
    const size_t nmax = 64 * 1536;
    float *x = fbuf(nmax), *y = fbuf(nmax), *z = fbuf(nmax), *w = fbuf(nmax), *g = fbuf(1536);
    trng r = { test_seed(29) };
    char what[96];
    for (size_t ri = 0; ri < 3; ri++)
        for (size_t di = 0; di < 4; di++)
            for (int gated = 0; gated < 2; gated++) {
                const int64_t rows = rows_[ri];
                const int dim = dims[di];
                const size_t n = (size_t)rows * dim;
                trng_fill(&r, x, n, -10, 10);
                trng_fill(&r, y, n, -10, 10);
                trng_fill(&r, g, (size_t)dim, -2, 2);
                memcpy(z, x, sizeof(float) * n);
                ops_add_gated(x, y, gated ? g : NULL, rows, dim);
                ops_ref_add_gated(z, y, gated ? g : NULL, rows, dim);
                snprintf(what, sizeof what, "add_gated %lldx%d gate %d", (long long)rows, dim, gated);
                cmp_tol(t, what, x, z, n, 1e-6, 1e-6);
            }
    trng_fill(&r, x, nmax, -10, 10);
    memcpy(w, x, sizeof(float) * nmax);
    cpu_set_threads(1);
    ops_add_gated(x, y, g, 64, 1536);
    cpu_set_threads(2);
    ops_add_gated(w, y, g, 64, 1536);
    cmp_bits(t, "add_gated 1 vs 2 threads", x, w, nmax);
    /* Known: 1 + 0.5 * 4 = 3; without a gate 1 + 4 = 5. */
    float a[2] = { 1, 1 }, b[2] = { 4, 4 }, gg[2] = { 0.5f, 0.5f };
    ops_add_gated(a, b, gg, 1, 2);
    CHECK(t, a[0] == 3 && a[1] == 3, "gated %g", a[0]);
    ops_add_gated(a, b, NULL, 1, 2);
    CHECK(t, a[0] == 7, "plain %g", a[0]);
    free(x), free(y), free(z), free(w), free(g);
}

static void t_modulate(tctx *t)
{
    static const int64_t rows_[] = { 1, 3, 17, 64 };
    static const int dims[] = { 1, 7, 31, 333, 1536 };
    const size_t nmax = 64 * 1536;
    float *x = fbuf(nmax), *y = fbuf(nmax), *z = fbuf(nmax), *sh = fbuf(1536), *sc = fbuf(1536);
    trng r = { test_seed(23) };
    char what[96];
    for (size_t ri = 0; ri < 4; ri++)
        for (size_t di = 0; di < 5; di++) {
            const int64_t rows = rows_[ri];
            const int dim = dims[di];
            const size_t n = (size_t)rows * dim;
            trng_fill(&r, x, n, -10, 10);
            trng_fill(&r, sh, (size_t)dim, -2, 2);
            trng_fill(&r, sc, (size_t)dim, -1.5f, 1.5f);
            ops_modulate(y, x, sh, sc, rows, dim);
            ops_ref_modulate(z, x, sh, sc, rows, dim);
            snprintf(what, sizeof what, "modulate %lldx%d", (long long)rows, dim);
            cmp_tol(t, what, y, z, n, 1e-6, 1e-6);
        }
    ops_modulate(y, x, sh, sc, 64, 1536);
    memcpy(z, x, sizeof(float) * nmax);
    ops_modulate(z, z, sh, sc, 64, 1536);
    cmp_bits(t, "modulate in place", y, z, nmax);
    cpu_set_threads(1);
    ops_modulate(y, x, sh, sc, 64, 1536);
    cpu_set_threads(2);
    ops_modulate(z, x, sh, sc, 64, 1536);
    cmp_bits(t, "modulate 1 vs 2 threads", y, z, nmax);
    /* Known: (1 + 0.5) * 2 + 1 = 4 (without the +1 it would be 2). */
    const float k = 2, ks = 0.5f, kh = 1;
    float o, q;
    ops_modulate(&o, &k, &kh, &ks, 1, 1), ops_ref_modulate(&q, &k, &kh, &ks, 1, 1);
    CHECK(t, o == 4 && q == 4, "modulate known: %g %g", o, q);
    free(x), free(y), free(z), free(sh), free(sc);
}

int main(void)
{
    tctx t = test_begin("ops");
    test_print_seed();
#ifdef _OPENMP
    const int nthr = omp_get_max_threads();
#endif
    RUN(&t, t_exp);
    RUN(&t, t_activations);
    RUN(&t, t_gelu_tanh_bf16);
    RUN(&t, t_layernorm);
    RUN(&t, t_layernorm_bf16);
    RUN(&t, t_rmsnorm);
    RUN(&t, t_groupnorm);
    RUN(&t, t_groupnorm_apply);
    RUN(&t, t_softmax);
    RUN(&t, t_rope);
    RUN(&t, t_rope_table);
    RUN(&t, t_upsample);
    RUN(&t, t_modulate);
    RUN(&t, t_add_gated);
#ifdef _OPENMP
    omp_set_num_threads(nthr);
#endif
    return test_end(&t);
}
