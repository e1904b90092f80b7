/* core/ops_vec.h — private to core/: the elementwise math of core/ops.c (exp, sigmoid, silu,
 * quick_gelu, gelu_tanh, exact gelu), inline so other core/ kernels (attention's online
 * softmax in core/dnn.c) can fuse it into their own loops.
 *
 *   #ifdef __AVX512F__
 *   __m512 e = ops__exp_f32x16(v);   // 16 lanes
 *   #endif
 *   float e1 = ops__exp_f32(x);      // the same formula on one float: the same bits as a lane
 *
 * Every function comes twice: a 16-lane AVX-512 version and a scalar one that performs the
 * same IEEE operations in the same order (fmaf where the vector uses fma), so a scalar tail
 * or a build without AVX-512 gives bit-identical results (tests/test_ops.c checks this).
 * Scalar code here never writes a*b + c in one expression, so FP contraction (clang's
 * default) cannot change it; gcc does not contract under -std=c11. No -ffast-math: the
 * error-free transformations below (TwoSum, fma residuals) rely on IEEE rounding.
 */
#ifndef DIT_CORE_OPS_VEC_H
#define DIT_CORE_OPS_VEC_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

/* exp(x) = 2^n e^r, x = n ln2 + r, |r| <= ln2/2.
 *   n:   round(x log2e) by the 1.5*2^23 trick: the fma rounds x*log2e + MAGIC to an integer,
 *        and the low mantissa bits of the sum hold n (no float->int conversion, so NaN is safe).
 *   r:   Cody-Waite with ln2 = C1 + C2, C1 = 0.693359375 has 9 bits, so n*C1 is exact.
 *   e^r: degree-7 polynomial 1 + r + r^2/2 + ... (cephes expf coefficients), Horner with fma.
 *   2^n: two power-of-two factors 2^n1 * 2^n2 built from exponent bits (n1 = floor(n/2)), so
 *        n in [-150, 128] needs no special case: the first product is exact, the second rounds
 *        once (into a subnormal, 0 or inf where the result does).
 * x is clamped to [-104, 88.8] first (exp(-104) rounds to 0, exp(88.8) overflows), with the
 * NaN-preserving operand order: max(lo, x) and min(hi, x) return x when x is NaN.
 * Error: <= 1 ulp from glibc expf over every float in [-88, 88] (checked exhaustively);
 * exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN. */
#define OPS__EXP_LO -104.0f
#define OPS__EXP_HI 88.8f
#define OPS__EXP_MAGIC 12582912.0f /* 1.5 * 2^23 */
#define OPS__EXP_MAGIC_BITS 0x4b400000u
#define OPS__LOG2E 1.44269504088896341f
#define OPS__LN2_C1 0.693359375f
#define OPS__LN2_C2 -2.12194440e-4f
#define OPS__EXP_P7 1.9875691500e-4f
#define OPS__EXP_P6 1.3981999507e-3f
#define OPS__EXP_P5 8.3334519073e-3f
#define OPS__EXP_P4 4.1665795894e-2f
#define OPS__EXP_P3 1.6666665459e-1f
#define OPS__EXP_P2 5.0000001201e-1f

static inline uint32_t ops__f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float ops__u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float ops__exp_f32(float x)
{
    x = (OPS__EXP_LO > x) ? OPS__EXP_LO : x;
    x = (OPS__EXP_HI < x) ? OPS__EXP_HI : x;
    const float t = fmaf(x, OPS__LOG2E, OPS__EXP_MAGIC);
    const float n = t - OPS__EXP_MAGIC;
    float r = fmaf(-n, OPS__LN2_C1, x);
    r = fmaf(-n, OPS__LN2_C2, r);
    float p = fmaf(OPS__EXP_P7, r, OPS__EXP_P6);
    p = fmaf(p, r, OPS__EXP_P5);
    p = fmaf(p, r, OPS__EXP_P4);
    p = fmaf(p, r, OPS__EXP_P3);
    p = fmaf(p, r, OPS__EXP_P2);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    /* ub = n + 256 (unsigned, so NaN garbage wraps instead of overflowing);
     * biased exponents: n1 + 127 = ub/2 - 1, n2 + 127 = ub - ub/2 - 1. */
    const uint32_t ub = ops__f2u(t) - OPS__EXP_MAGIC_BITS + 256u;
    const float s1 = ops__u2f(((ub >> 1) - 1u) << 23);
    const float s2 = ops__u2f((ub - (ub >> 1) - 1u) << 23);
    const float y = p * s1;
    return y * s2;
}

#ifdef __AVX512F__
static inline __m512 ops__exp_f32x16(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(OPS__EXP_LO), x);
    x = _mm512_min_ps(_mm512_set1_ps(OPS__EXP_HI), x);
    const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(OPS__LOG2E), _mm512_set1_ps(OPS__EXP_MAGIC));
    const __m512 n = _mm512_sub_ps(t, _mm512_set1_ps(OPS__EXP_MAGIC));
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(OPS__LN2_C1), x); /* -(n*C1) + x, exact as fmaf(-n, C1, x) */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(OPS__LN2_C2), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(OPS__EXP_P7), r, _mm512_set1_ps(OPS__EXP_P6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(OPS__EXP_P5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(OPS__EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(OPS__EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(OPS__EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i ub = _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32((int)OPS__EXP_MAGIC_BITS)),
                                        _mm512_set1_epi32(256));
    const __m512i h = _mm512_srli_epi32(ub, 1), one = _mm512_set1_epi32(1);
    const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(h, one), 23));
    const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(_mm512_sub_epi32(ub, h), one), 23));
    return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

/* Lanes [0, r) set, for a tail of r < 16 elements. */
static inline __mmask16 ops__tail_mask(size_t r)
{
    return (__mmask16)((1u << r) - 1u);
}
#endif

/* ---------------------------------------------------------------- sigmoid-based activations */

/* sigmoid(v) = num / (1 + e), e = exp(-|v|), num = 1 for v >= 0 and e for v < 0: the exp never
 * overflows and both tails keep their relative accuracy. NaN gives NaN. */
static inline float ops__sigmoid_f32(float v)
{
    const float e = ops__exp_f32(-fabsf(v));
    const float num = v < 0.0f ? e : 1.0f;
    return num / (1.0f + e);
}

/* sigmoid(v + dv) for a small correction dv (the rounding error of v, computed exactly by the
 * callers): sigmoid(v) (1 + (1 - sigmoid(v)) dv). Without it the f32 rounding of v, |v| 2^-24
 * relative, shows up as up to 13 ulp of gelu_tanh on [-3, 3]. A dv that is not small (|v| > ~1e7,
 * or inf/NaN from an infinite x) is dropped: there sigmoid is 0 or 1 anyway. */
static inline float ops__sigmoid_corr_f32(float v, float dv)
{
    dv = fabsf(dv) < 1.0f ? dv : 0.0f;
    const float s = ops__sigmoid_f32(v), om = 1.0f - s;
    return fmaf(s, om * dv, s);
}

/* gelu_tanh: 0.5 x (1 + tanh(u)) = x sigmoid(2u), 2u = x (G1 + G2 x^2), G1 = 2 sqrt(2/pi),
 * G2 = 0.044715 G1; GxL are the f32 rounding errors of the constants. v = x * k is computed
 * with its error dv: x^2 = x2 + x2e (exact), k's rounding error from fma(G2, x2, G1 - k)
 * (G1 - k is exact while G2 x^2 <= G1, i.e. wherever it matters), and x k = v + fma(x, k, -v). */
#define OPS__GT_G1 1.59576916694641113f
#define OPS__GT_G1L -4.534068054e-08f
#define OPS__GT_G2 0.0713548138737678528f
#define OPS__GT_G2L 2.398832466e-09f
static inline float ops__gelu_tanh_f32(float x)
{
    const float x2 = x * x, x2e = fmaf(x, x, -x2);
    const float k = fmaf(OPS__GT_G2, x2, OPS__GT_G1);
    float ke = fmaf(OPS__GT_G2, x2, OPS__GT_G1 - k);
    ke = fmaf(OPS__GT_G2, x2e, ke);
    ke = fmaf(OPS__GT_G2L, x2, ke + OPS__GT_G1L);
    const float v = x * k;
    const float dv = fmaf(x, ke, fmaf(x, k, -v));
    return x * ops__sigmoid_corr_f32(v, dv);
}
static inline float ops__silu_f32(float x)
{
    return x * ops__sigmoid_f32(x);
}
/* x sigmoid(1.702 x), with 1.702 = QH + QL and the rounding of QH x corrected as above. */
#define OPS__QG_H 1.70200002193450928f
#define OPS__QG_L -2.193450932e-08f
static inline float ops__quick_gelu_f32(float x)
{
    const float v = OPS__QG_H * x;
    const float dv = fmaf(OPS__QG_L, x, fmaf(OPS__QG_H, x, -v));
    return x * ops__sigmoid_corr_f32(v, dv);
}

/* ---------------------------------------------------------------- exact GELU */

/* Phi(-a) for a >= 0 (the normal lower tail; gelu(x) = x Phi(x), Phi(x) = 1 - Phi(-x)):
 *   Phi(-a) = t exp(P(t) - a^2/2),  t = 1 / (1 + K a),  t in (0, 1],
 * where P(t) = ln(Phi(-a) e^{a^2/2} / t) is smooth on [0, 1] (t -> 0 is the Mills-ratio
 * limit) and is fitted by a degree-12 Chebyshev interpolant in t - 1/2 (fit error 2.2e-9;
 * Numerical Recipes' erfcc uses the same form with degree 9). Rounding corrections:
 *   - a^2 = h + l exactly (fma), and P - h/2 = s + e exactly (TwoSum), so exp sees s and the
 *     factor (1 + e - l/2) restores the rest;
 *   - t = 1/(1 + K a) is off by a relative dt (recovered with two fmas); the result moves by
 *     S(t) dt with S = dln(output)/dln(t) (up to 2.66 at t = 1), fitted by a quadratic.
 * Relative error of Phi(-a) <= 5 * 2^-24 for a in [0, 13] (vs long double erfcl); gelu <= 4 ulp.
 * a is clamped to 20, so Phi(-inf) = 0 rather than NaN. */
#define OPS__PHI_K 0.3f
#define OPS__PHI_AMAX 20.0f
static const float ops__phi_p[13] = {
    -1.505210276e+00f, 1.482894344e+00f,  4.601714153e-01f,  -2.253543198e-01f, -3.481355529e-01f,
    5.144772887e-02f,  3.109118713e-01f,  3.381782884e-03f,  -3.070050567e-01f, -1.804174358e-02f,
    2.851578178e-01f,  1.079875347e-02f,  -1.663013574e-01f,
};
#define OPS__PHI_S0 1.741447f
#define OPS__PHI_S1 1.720874f
#define OPS__PHI_S2 0.3976846f

static inline float ops__phi_neg_f32(float a)
{
    a = (OPS__PHI_AMAX < a) ? OPS__PHI_AMAX : a;
    const float d = fmaf(OPS__PHI_K, a, 1.0f);
    const float dd = fmaf(OPS__PHI_K, a, 1.0f - d); /* 1 + K a = d + dd; 1 - d is exact */
    const float t = 1.0f / d;
    const float dt = fmaf(-dd, t, fmaf(-t, d, 1.0f)); /* 1/(d + dd) ~ t (1 + dt) */
    const float v = t - 0.5f;
    float p = fmaf(ops__phi_p[12], v, ops__phi_p[11]);
    for (int i = 10; i >= 0; i--) p = fmaf(p, v, ops__phi_p[i]);
    const float S = fmaf(fmaf(OPS__PHI_S2, v, OPS__PHI_S1), v, OPS__PHI_S0);
    const float h = a * a, l = fmaf(a, a, -h);
    const float hh = 0.5f * h, ll = 0.5f * l;
    const float s = p - hh, bb = s - p;
    const float e = (p - (s - bb)) - (hh + bb);
    const float q = t * ops__exp_f32(s);
    const float corr = fmaf(S, dt, e - ll);
    return fmaf(q, corr, q);
}

/* gelu(x) = 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x). */
static inline float ops__gelu_f32(float x)
{
    const float q = ops__phi_neg_f32(fabsf(x));
    const float ph = x < 0.0f ? q : 1.0f - q;
    return x * ph;
}

#ifdef __AVX512F__
static inline __m512 ops__sigmoid_f32x16(__m512 v)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 nabs = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN)));
    const __m512 e = ops__exp_f32x16(nabs);
    const __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 num = _mm512_mask_blend_ps(neg, one, e);
    return _mm512_div_ps(num, _mm512_add_ps(one, e));
}
static inline __m512 ops__sigmoid_corr_f32x16(__m512 v, __m512 dv)
{
    const __mmask16 small = _mm512_cmp_ps_mask(_mm512_abs_ps(dv), _mm512_set1_ps(1.0f), _CMP_LT_OQ);
    dv = _mm512_maskz_mov_ps(small, dv);
    const __m512 s = ops__sigmoid_f32x16(v), om = _mm512_sub_ps(_mm512_set1_ps(1.0f), s);
    return _mm512_fmadd_ps(s, _mm512_mul_ps(om, dv), s);
}
static inline __m512 ops__gelu_tanh_f32x16(__m512 x)
{
    const __m512 g1 = _mm512_set1_ps(OPS__GT_G1), g2 = _mm512_set1_ps(OPS__GT_G2);
    const __m512 x2 = _mm512_mul_ps(x, x), x2e = _mm512_fmsub_ps(x, x, x2);
    const __m512 k = _mm512_fmadd_ps(g2, x2, g1);
    __m512 ke = _mm512_fmadd_ps(g2, x2, _mm512_sub_ps(g1, k));
    ke = _mm512_fmadd_ps(g2, x2e, ke);
    ke = _mm512_fmadd_ps(_mm512_set1_ps(OPS__GT_G2L), x2, _mm512_add_ps(ke, _mm512_set1_ps(OPS__GT_G1L)));
    const __m512 v = _mm512_mul_ps(x, k);
    const __m512 dv = _mm512_fmadd_ps(x, ke, _mm512_fmsub_ps(x, k, v));
    return _mm512_mul_ps(x, ops__sigmoid_corr_f32x16(v, dv));
}
static inline __m512 ops__silu_f32x16(__m512 x)
{
    return _mm512_mul_ps(x, ops__sigmoid_f32x16(x));
}
static inline __m512 ops__quick_gelu_f32x16(__m512 x)
{
    const __m512 qh = _mm512_set1_ps(OPS__QG_H);
    const __m512 v = _mm512_mul_ps(qh, x);
    const __m512 dv = _mm512_fmadd_ps(_mm512_set1_ps(OPS__QG_L), x, _mm512_fmsub_ps(qh, x, v));
    return _mm512_mul_ps(x, ops__sigmoid_corr_f32x16(v, dv));
}
static inline __m512 ops__phi_neg_f32x16(__m512 a)
{
    const __m512 one = _mm512_set1_ps(1.0f), k = _mm512_set1_ps(OPS__PHI_K), half = _mm512_set1_ps(0.5f);
    a = _mm512_min_ps(_mm512_set1_ps(OPS__PHI_AMAX), a);
    const __m512 d = _mm512_fmadd_ps(k, a, one);
    const __m512 dd = _mm512_fmadd_ps(k, a, _mm512_sub_ps(one, d));
    const __m512 t = _mm512_div_ps(one, d);
    const __m512 dt = _mm512_fnmadd_ps(dd, t, _mm512_fnmadd_ps(t, d, one));
    const __m512 v = _mm512_sub_ps(t, half);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(ops__phi_p[12]), v, _mm512_set1_ps(ops__phi_p[11]));
    for (int i = 10; i >= 0; i--) p = _mm512_fmadd_ps(p, v, _mm512_set1_ps(ops__phi_p[i]));
    const __m512 S = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(OPS__PHI_S2), v, _mm512_set1_ps(OPS__PHI_S1)), v,
                                     _mm512_set1_ps(OPS__PHI_S0));
    const __m512 h = _mm512_mul_ps(a, a), l = _mm512_fmsub_ps(a, a, h);
    const __m512 hh = _mm512_mul_ps(half, h), ll = _mm512_mul_ps(half, l);
    const __m512 s = _mm512_sub_ps(p, hh), bb = _mm512_sub_ps(s, p);
    const __m512 e = _mm512_sub_ps(_mm512_sub_ps(p, _mm512_sub_ps(s, bb)), _mm512_add_ps(hh, bb));
    const __m512 q = _mm512_mul_ps(t, ops__exp_f32x16(s));
    const __m512 corr = _mm512_fmadd_ps(S, dt, _mm512_sub_ps(e, ll));
    return _mm512_fmadd_ps(q, corr, q);
}
static inline __m512 ops__gelu_f32x16(__m512 x)
{
    const __m512 q = ops__phi_neg_f32x16(_mm512_abs_ps(x));
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 ph = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), q), q);
    return _mm512_mul_ps(x, ph);
}
#endif

#endif
