/* core/ops.c — elementwise kernels, norms, softmax, RoPE, upsample, adaLN modulate.
 *
 * Mirrors: flux/math.py (rope, apply_rope), flux/modules/layers.py (RMSNorm, modulation),
 * torch.nn.functional (layer_norm, group_norm, gelu, silu, softmax, interpolate 'nearest').
 *
 * Each kernel comes twice (core/ops.h):
 *   ops_ref_*  the reference: plain loops straight from the definition, in double where that
 *              buys accuracy, no OpenMP. Tests compare against it.
 *   ops_*      the fast path: OpenMP over rows / channels / groups / blocks of elements
 *              (never inside a reduction), AVX-512 inner loops with masked tails, and a scalar
 *              fallback (core/ops_vec.h) that computes the same formula per element.
 * Reductions (mean, variance, softmax sum) run in double, in a fixed order inside one row or
 * group, so the fast kernels give the same bits for any thread count.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* the scalar formulas must round like the vector lanes */
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops.h"
#include "ops_vec.h"

#ifdef _OPENMP
#define OMP_FOR _Pragma("omp parallel for schedule(static)")
#else
#define OMP_FOR
#endif

static int in_parallel(void)
{
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

/* ================================================================ naive twins */

/* The references: one loop per formula, double arithmetic, results rounded to f32 once.
 * They are written from the definitions (torch / flux), not from the fast code. */

/* x, y: [rows, dim]; w, b: [dim] or NULL. y = (x - mean) / sqrt(var + eps) * w + b, var biased. */
void ops_ref_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows, int dim, float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double mean = 0, var = 0;
        for (int j = 0; j < dim; j++) mean += xr[j];
        mean /= dim;
        for (int j = 0; j < dim; j++) var += ((double)xr[j] - mean) * ((double)xr[j] - mean);
        var /= dim; /* biased, like torch */
        const double rstd = 1.0 / sqrt(var + (double)eps);
        for (int j = 0; j < dim; j++) {
            const double v = ((double)xr[j] - mean) * rstd;
            yr[j] = (float)(v * (w ? w[j] : 1.0) + (b ? b[j] : 0.0));
        }
    }
}

void ops_ref_layernorm_bf16(uint16_t *y, const float *x, const float *w, const float *b, int64_t rows, int dim,
                            float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        double mean = 0, var = 0;
        for (int j = 0; j < dim; j++) mean += xr[j];
        mean /= dim;
        for (int j = 0; j < dim; j++) var += ((double)xr[j] - mean) * ((double)xr[j] - mean);
        var /= dim;
        const double rstd = 1.0 / sqrt(var + (double)eps);
        for (int j = 0; j < dim; j++) {
            const double v = ((double)xr[j] - mean) * rstd;
            y[r * dim + j] = f32_to_bf16((float)(v * (w ? w[j] : 1.0) + (b ? b[j] : 0.0)));
        }
    }
}

/* x, y: [rows, dim]; w: [dim] or NULL. y = x / sqrt(mean(x^2) + eps) * w. */
void ops_ref_rmsnorm(float *y, const float *x, const float *w, int64_t rows, int dim, float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double ms = 0;
        for (int j = 0; j < dim; j++) ms += (double)xr[j] * xr[j];
        ms /= dim;
        const double rrms = 1.0 / sqrt(ms + (double)eps);
        for (int j = 0; j < dim; j++) yr[j] = (float)(xr[j] * rrms * (w ? w[j] : 1.0));
    }
}

/* 0.5 x (1 + erf(x/sqrt2)), written with erfc so x < 0 keeps its relative accuracy. */
void ops_ref_gelu(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double v = x[i];
        y[i] = (float)(0.5 * v * erfc(-v * 0.70710678118654752440));
    }
}

/* 0.5 x (1 + tanh u) = x / (1 + exp(-2u)): the same number without the cancellation of
 * 1 + tanh u for u << 0 (which loses all digits below x ~ -5.5 even in double). */
void ops_ref_gelu_tanh(float *y, const float *x, size_t n)
{
    const double c = sqrt(2.0 / 3.14159265358979323846);
    for (size_t i = 0; i < n; i++) {
        const double v = x[i], u = c * (v + 0.044715 * v * v * v);
        y[i] = (float)(v / (1.0 + exp(-2.0 * u)));
    }
}

void ops_ref_gelu_tanh_bf16(uint16_t *y, const float *x, size_t n)
{
    const double c = sqrt(2.0 / 3.14159265358979323846);
    for (size_t i = 0; i < n; i++) {
        const double v = x[i], u = c * (v + 0.044715 * v * v * v);
        y[i] = f32_to_bf16((float)(v / (1.0 + exp(-2.0 * u))));
    }
}

/* x sigmoid(1.702 x) = x / (1 + exp(-1.702 x)). */
void ops_ref_quick_gelu(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double v = x[i];
        y[i] = (float)(v / (1.0 + exp(-1.702 * v)));
    }
}

/* x sigmoid(x) = x / (1 + exp(-x)). */
void ops_ref_silu(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double v = x[i];
        y[i] = (float)(v / (1.0 + exp(-v)));
    }
}

/* x, y: [rows, dim]. y = exp(x - max) / sum exp(x - max), per row. */
void ops_ref_softmax(float *y, const float *x, int64_t rows, int dim)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double m = -INFINITY;
        int nan = 0;
        for (int j = 0; j < dim; j++) {
            if (isnan(xr[j])) nan = 1;
            if (xr[j] > m) m = xr[j];
        }
        if (nan || m == -INFINITY) { /* a NaN poisons the row (like torch); all -inf gives zeros */
            for (int j = 0; j < dim; j++) yr[j] = nan ? NAN : 0.0f;
            continue;
        }
        double sum = 0;
        for (int j = 0; j < dim; j++) sum += exp(xr[j] - m);
        for (int j = 0; j < dim; j++) yr[j] = (float)(exp(xr[j] - m) / sum);
    }
}

/* x: n_tok rows at row_stride of n_heads x head_dim; cosv, sinv: [n_tok, head_dim/2].
 * Pair (2i, 2i+1) of every head turns by angle i of its token (flux/math.py apply_rope). */
void ops_ref_rope(float *x, int64_t n_tok, int n_heads, int head_dim, int64_t row_stride, const float *cosv,
                  const float *sinv)
{
    const int half = head_dim / 2;
    for (int64_t t = 0; t < n_tok; t++)
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + t * row_stride + (int64_t)h * head_dim;
            for (int i = 0; i < half; i++) {
                const double c = cosv[t * half + i], s = sinv[t * half + i];
                const double x0 = xh[2 * i], x1 = xh[2 * i + 1];
                xh[2 * i] = (float)(c * x0 - s * x1);
                xh[2 * i + 1] = (float)(s * x0 + c * x1);
            }
        }
}

/* x, y: [C, hw]; w, b: [C] or NULL. Group g = channels [g*C/groups, (g+1)*C/groups), normalised
 * over all its C/groups * hw values (biased variance), then the per-channel affine. */
void ops_ref_groupnorm(float *y, const float *x, const float *w, const float *b, int C, int64_t hw, int groups,
                       float eps)
{
    const int cpg = C / groups;
    const int64_t cnt = (int64_t)cpg * hw; /* one group: cpg contiguous channels */
    for (int g = 0; g < groups; g++) {
        const float *xg = x + g * cnt;
        float *yg = y + g * cnt;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < cnt; i++) mean += xg[i];
        mean /= (double)cnt;
        for (int64_t i = 0; i < cnt; i++) var += ((double)xg[i] - mean) * ((double)xg[i] - mean);
        var /= (double)cnt;
        const double rstd = 1.0 / sqrt(var + (double)eps);
        for (int64_t i = 0; i < cnt; i++) {
            const int c = g * cpg + (int)(i / hw);
            const double v = ((double)xg[i] - mean) * rstd;
            yg[i] = (float)(v * (w ? w[c] : 1.0) + (b ? b[c] : 0.0));
        }
    }
}

/* x, y: [C, hw]; y = (x - mean[g]) * rstd[g] * w[c] + b[c], in double. */
void ops_ref_groupnorm_apply(float *y, const float *x, const float *w, const float *b, int C, int64_t hw, int groups,
                             const double *mean, const float *rstd)
{
    const int cpg = C / groups;
    for (int c = 0; c < C; c++) {
        const int g = c / cpg;
        for (int64_t i = 0; i < hw; i++) {
            const double v = ((double)x[(int64_t)c * hw + i] - mean[g]) * rstd[g];
            y[(int64_t)c * hw + i] = (float)(v * (w ? w[c] : 1.0) + (b ? b[c] : 0.0));
        }
    }
}

/* x: [C, H, W]; y: [C, H*f, W*f], y[c][oh][ow] = x[c][oh/f][ow/f]. */
void ops_ref_upsample_nearest(float *y, const float *x, int C, int H, int W, int factor)
{
    const int64_t OH = (int64_t)H * factor, OW = (int64_t)W * factor;
    for (int c = 0; c < C; c++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++)
                y[((int64_t)c * OH + oh) * OW + ow] = x[((int64_t)c * H + oh / factor) * W + ow / factor];
}

/* x, y: [rows, dim]; shift, scale: [dim]. y = (1 + scale) * x + shift (flux layers.py). */
void ops_ref_modulate(float *y, const float *x, const float *shift, const float *scale, int64_t rows, int dim)
{
    for (int64_t r = 0; r < rows; r++)
        for (int j = 0; j < dim; j++)
            y[r * dim + j] = (float)((1.0 + scale[j]) * x[r * dim + j] + shift[j]);
}

void ops_ref_add_gated(float *x, const float *y, const float *gate, int64_t rows, int dim)
{
    for (int64_t r = 0; r < rows; r++)
        for (int j = 0; j < dim; j++)
            x[r * dim + j] = (float)(x[r * dim + j] + (gate ? (double)gate[j] : 1.0) * y[r * dim + j]);
}

/* ================================================================ elementwise, fast */

/* The formulas live in core/ops_vec.h (vector and scalar side by side). A span is processed in
 * 16-lane steps and the last partial step with masked loads/stores, so every element goes
 * through the same vector code wherever the span starts; without AVX-512 the scalar
 * formula runs and gives the same bits. */

/* One span of an elementwise op: AVX-512 body and masked tail, or the scalar formula. */
#ifdef __AVX512F__
#define EW_SPAN(name, f16, f1)                                                                                   \
    static void name(float *y, const float *x, size_t n)                                                         \
    {                                                                                                            \
        size_t i = 0;                                                                                            \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f16(_mm512_loadu_ps(x + i)));                       \
        if (i < n) {                                                                                             \
            const __mmask16 m = ops__tail_mask(n - i);                                                           \
            _mm512_mask_storeu_ps(y + i, m, f16(_mm512_maskz_loadu_ps(m, x + i)));                               \
        }                                                                                                        \
    }
#else
#define EW_SPAN(name, f16, f1)                                                                                   \
    static void name(float *y, const float *x, size_t n)                                                         \
    {                                                                                                            \
        for (size_t i = 0; i < n; i++) y[i] = f1(x[i]);                                                          \
    }
#endif

EW_SPAN(span_exp, ops__exp_f32x16, ops__exp_f32)
EW_SPAN(span_gelu, ops__gelu_f32x16, ops__gelu_f32)
EW_SPAN(span_gelu_tanh, ops__gelu_tanh_f32x16, ops__gelu_tanh_f32)
EW_SPAN(span_quick_gelu, ops__quick_gelu_f32x16, ops__quick_gelu_f32)
EW_SPAN(span_silu, ops__silu_f32x16, ops__silu_f32)

/* Elements per OpenMP work item (a multiple of 16, so only the last block has a tail).
 * Inside an enclosing parallel region (attention calls ops_exp per row) it runs serially. */
#define EW_BLOCK ((size_t)16384)

static void ew_run(void (*span)(float *, const float *, size_t), float *y, const float *x, size_t n)
{
    const size_t nb = (n + EW_BLOCK - 1) / EW_BLOCK;
    if (nb < 2 || in_parallel()) {
        span(y, x, n);
        return;
    }
    OMP_FOR
    for (size_t bi = 0; bi < nb; bi++) {
        const size_t i0 = bi * EW_BLOCK, len = n - i0 < EW_BLOCK ? n - i0 : EW_BLOCK;
        span(y + i0, x + i0, len);
    }
}

void ops_exp(float *y, const float *x, size_t n) { ew_run(span_exp, y, x, n); }
void ops_gelu(float *y, const float *x, size_t n) { ew_run(span_gelu, y, x, n); }
void ops_gelu_tanh(float *y, const float *x, size_t n) { ew_run(span_gelu_tanh, y, x, n); }

/* gelu_tanh rounded to bf16 as it is written (the input of the MLP's second, packed linear):
 * 256-float chunks on the stack, so no f32 copy goes through memory. */
static void span_gelu_tanh_bf16(uint16_t *y, const float *x, size_t n)
{
    float chunk[256];
    for (size_t i = 0; i < n; i += 256) {
        const size_t len = n - i < 256 ? n - i : 256;
        span_gelu_tanh(chunk, x + i, len);
        cvt_f32_to_bf16(y + i, chunk, len);
    }
}

void ops_gelu_tanh_bf16(uint16_t *y, const float *x, size_t n)
{
    const size_t nb = (n + EW_BLOCK - 1) / EW_BLOCK;
    if (nb < 2 || in_parallel()) {
        span_gelu_tanh_bf16(y, x, n);
        return;
    }
    OMP_FOR
    for (size_t bi = 0; bi < nb; bi++) {
        const size_t i0 = bi * EW_BLOCK;
        span_gelu_tanh_bf16(y + i0, x + i0, n - i0 < EW_BLOCK ? n - i0 : EW_BLOCK);
    }
}
void ops_quick_gelu(float *y, const float *x, size_t n) { ew_run(span_quick_gelu, y, x, n); }
void ops_silu(float *y, const float *x, size_t n) { ew_run(span_silu, y, x, n); }

/* ================================================================ reductions (double) */

#ifdef __AVX512F__
/* Low and high 8 floats of v, widened to double. */
static inline __m512d lo_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
static inline __m512d hi_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xee))); }
#endif

/* sum x[i] over [0, n): two 8-lane double accumulators, then the scalar tail. */
static double sum_f64(const float *x, size_t n)
{
    size_t i = 0;
    double s = 0;
#ifdef __AVX512F__
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        a0 = _mm512_add_pd(a0, lo_pd(v));
        a1 = _mm512_add_pd(a1, hi_pd(v));
    }
    s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
#endif
    for (; i < n; i++) s += x[i];
    return s;
}

/* sum (x[i] - mean)^2 over [0, n); with mean = 0 it is the plain sum of squares. */
static double sumsq_f64(const float *x, size_t n, double mean)
{
    size_t i = 0;
    double s = 0;
#ifdef __AVX512F__
    const __m512d m = _mm512_set1_pd(mean);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512d d0 = _mm512_sub_pd(lo_pd(v), m), d1 = _mm512_sub_pd(hi_pd(v), m);
        a0 = _mm512_fmadd_pd(d0, d0, a0);
        a1 = _mm512_fmadd_pd(d1, d1, a1);
    }
    s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
#endif
    for (; i < n; i++) {
        const double d = x[i] - mean;
        s = fma(d, d, s);
    }
    return s;
}

/* Normalise one span: y = ((x - mh) - ml) * rs * wv + bv, where mean ~ mh + ml (so a large mean
 * cancels exactly) and wv, bv are w[i], b[i] (per element) or the scalars ws, bs. */
static void norm_apply(float *y, const float *x, size_t n, float mh, float ml, float rs, const float *w,
                       const float *b, float ws, float bs)
{
    size_t i = 0;
#ifdef __AVX512F__
    const __m512 vmh = _mm512_set1_ps(mh), vml = _mm512_set1_ps(ml), vrs = _mm512_set1_ps(rs);
    const __m512 vws = _mm512_set1_ps(ws), vbs = _mm512_set1_ps(bs);
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : ops__tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(v, vmh), vml), vrs);
        const __m512 wv = w ? _mm512_maskz_loadu_ps(m, w + i) : vws;
        const __m512 bv = b ? _mm512_maskz_loadu_ps(m, b + i) : vbs;
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(d, wv, bv));
    }
#endif
    for (; i < n; i++) {
        const float d = ((x[i] - mh) - ml) * rs;
        y[i] = fmaf(d, w ? w[i] : ws, b ? b[i] : bs);
    }
}

/* LayerNorm statistics of one row: the mean as mh + ml (high and low parts, see norm_apply) and
 * rs = 1 / sqrt(var + eps), biased variance; two passes in double. */
static void row_stats(const float *xr, int dim, float eps, float *mh, float *ml, float *rs)
{
    const double mean = sum_f64(xr, (size_t)dim) / dim;
    const double var = sumsq_f64(xr, (size_t)dim, mean) / dim;
    *mh = (float)mean;
    *ml = (float)(mean - *mh);
    *rs = (float)(1.0 / sqrt(var + (double)eps));
}

/* x, y: [rows, dim]; w, b: [dim] or NULL. One row per work item: mean, then the centred sum
 * of squares (two passes, double), then y = (x - mean) * rstd * w + b in f32. */
void ops_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows, int dim, float eps)
{
    if (dim <= 0) return;
    OMP_FOR
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float mh, ml, rs;
        row_stats(xr, dim, eps, &mh, &ml, &rs);
        norm_apply(y + r * dim, xr, (size_t)dim, mh, ml, rs, w, b, 1.0f, 0.0f);
    }
}

/* ops_layernorm, rounded to bf16 as it is written: the input of a packed bf16 linear, without
 * an f32 round trip through memory. Each row is normalised in 256-float chunks on the stack. */
void ops_layernorm_bf16(uint16_t *y, const float *x, const float *w, const float *b, int64_t rows, int dim, float eps)
{
    if (dim <= 0) return;
    OMP_FOR
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float mh, ml, rs, chunk[256];
        row_stats(xr, dim, eps, &mh, &ml, &rs);
        for (int j = 0; j < dim; j += 256) {
            const int n = dim - j < 256 ? dim - j : 256;
            norm_apply(chunk, xr + j, (size_t)n, mh, ml, rs, w ? w + j : NULL, b ? b + j : NULL, 1.0f, 0.0f);
            cvt_f32_to_bf16(y + r * dim + j, chunk, (size_t)n);
        }
    }
}

/* x, y: [rows, dim]; w: [dim] or NULL. y = (x * rrms) * w, rrms = 1/sqrt(mean(x^2) + eps):
 * the order of flux/modules/layers.py RMSNorm. Sum of squares in double. */
void ops_rmsnorm(float *y, const float *x, const float *w, int64_t rows, int dim, float eps)
{
    if (dim <= 0) return;
    OMP_FOR
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        const float rs = (float)(1.0 / sqrt(sumsq_f64(xr, (size_t)dim, 0.0) / dim + (double)eps));
        int j = 0;
#ifdef __AVX512F__
        const __m512 vrs = _mm512_set1_ps(rs);
        for (; j < dim; j += 16) {
            const __mmask16 m = dim - j >= 16 ? (__mmask16)0xffff : ops__tail_mask((size_t)(dim - j));
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + j), vrs);
            if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + j));
            _mm512_mask_storeu_ps(yr + j, m, v);
        }
#endif
        for (; j < dim; j++) {
            const float v = xr[j] * rs;
            yr[j] = w ? v * w[j] : v;
        }
    }
}

/* x, y: [C, hw]; w, b: [C] or NULL. One group (cpg contiguous channels of hw) per work item:
 * mean and variance over the whole group in double, then per channel y = d * (rstd w[c]) + b[c].
 * The VAE has 32 groups, so this splits well; groups = 1 would run on one thread. */
void ops_groupnorm(float *y, const float *x, const float *w, const float *b, int C, int64_t hw, int groups,
                   float eps)
{
    if (groups <= 0 || C <= 0 || hw <= 0) return;
    const int cpg = C / groups;
    const size_t cnt = (size_t)cpg * (size_t)hw;
    OMP_FOR
    for (int g = 0; g < groups; g++) {
        const float *xg = x + (size_t)g * cnt;
        float *yg = y + (size_t)g * cnt;
        const double mean = sum_f64(xg, cnt) / (double)cnt;
        const double var = sumsq_f64(xg, cnt, mean) / (double)cnt;
        const float mh = (float)mean, ml = (float)(mean - mh), rs = (float)(1.0 / sqrt(var + (double)eps));
        for (int k = 0; k < cpg; k++) {
            const int c = g * cpg + k;
            /* per channel: y = d * (rs * w[c]) + b[c] */
            norm_apply(yg + (size_t)k * (size_t)hw, xg + (size_t)k * (size_t)hw, (size_t)hw, mh, ml, 1.0f, NULL, NULL,
                       w ? rs * w[c] : rs, b ? b[c] : 0.0f);
        }
    }
}

void ops_groupnorm_apply(float *y, const float *x, const float *w, const float *b, int C, int64_t hw, int groups,
                         const double *mean, const float *rstd)
{
    if (groups <= 0 || C <= 0 || hw <= 0) return;
    const int cpg = C / groups;
    OMP_FOR
    for (int c = 0; c < C; c++) { /* the per-channel step of ops_groupnorm, with the given statistics */
        const int g = c / cpg;
        const float mh = (float)mean[g], ml = (float)(mean[g] - mh), rs = rstd[g];
        norm_apply(y + (size_t)c * (size_t)hw, x + (size_t)c * (size_t)hw, (size_t)hw, mh, ml, 1.0f, NULL, NULL,
                   w ? rs * w[c] : rs, b ? b[c] : 0.0f);
    }
}

/* ================================================================ softmax */

/* x, y: [rows, dim]. Per row: m = max, e = exp(x - m) stored in y, sum of e in double, then
 * y *= 1/sum. A row of all -inf gives zeros; a row containing NaN gives NaN (like torch). */
void ops_softmax(float *y, const float *x, int64_t rows, int dim)
{
    if (dim <= 0) return;
    OMP_FOR
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        int j = 0, nan = 0;
        float m = -INFINITY;
#ifdef __AVX512F__
        __m512 vm = _mm512_set1_ps(-INFINITY);
        __mmask16 vnan = 0;
        for (; j + 16 <= dim; j += 16) {
            const __m512 v = _mm512_loadu_ps(xr + j);
            vnan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            vm = _mm512_max_ps(v, vm); /* a NaN in v returns vm: the max ignores NaN */
        }
        m = _mm512_reduce_max_ps(vm);
        nan = vnan != 0;
#endif
        for (; j < dim; j++) {
            if (isnan(xr[j])) nan = 1;
            if (xr[j] > m) m = xr[j];
        }
        if (nan || m == -INFINITY) {
            for (j = 0; j < dim; j++) yr[j] = nan ? NAN : 0.0f;
            continue;
        }
        double sum = 0;
        j = 0;
#ifdef __AVX512F__
        const __m512 vmax = _mm512_set1_ps(m);
        __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
        for (; j + 16 <= dim; j += 16) {
            const __m512 e = ops__exp_f32x16(_mm512_sub_ps(_mm512_loadu_ps(xr + j), vmax));
            _mm512_storeu_ps(yr + j, e);
            a0 = _mm512_add_pd(a0, lo_pd(e));
            a1 = _mm512_add_pd(a1, hi_pd(e));
        }
        sum = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
#endif
        for (; j < dim; j++) {
            const float e = ops__exp_f32(xr[j] - m);
            yr[j] = e;
            sum += e;
        }
        const float inv = (float)(1.0 / sum);
        j = 0;
#ifdef __AVX512F__
        const __m512 vinv = _mm512_set1_ps(inv);
        for (; j + 16 <= dim; j += 16) _mm512_storeu_ps(yr + j, _mm512_mul_ps(_mm512_loadu_ps(yr + j), vinv));
#endif
        for (; j < dim; j++) yr[j] *= inv;
    }
}

/* ================================================================ RoPE */

/* Pairs (2i, 2i+1): out = c * x + s' * swap(x), s' = (-s, +s), i.e.
 *   out[2i] = fma(c, x[2i], -s x[2i+1]),  out[2i+1] = fma(c, x[2i+1], s x[2i]). */
void ops_rope(float *x, int64_t n_tok, int n_heads, int head_dim, int64_t row_stride, const float *cosv,
              const float *sinv)
{
    const int half = head_dim / 2;
    OMP_FOR
    for (int64_t t = 0; t < n_tok; t++) {
        const float *ct = cosv + t * half, *st = sinv + t * half;
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + t * row_stride + (int64_t)h * head_dim;
            int i = 0; /* pair index */
#ifdef __AVX512F__
            const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
            const __m512i sgn = _mm512_set_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0,
                                                 INT32_MIN, 0, INT32_MIN, 0, INT32_MIN); /* even lanes */
            for (; i < half; i += 8) {
                const int np = half - i >= 8 ? 8 : half - i; /* pairs in this chunk */
                const __mmask16 m = np == 8 ? (__mmask16)0xffff : ops__tail_mask((size_t)(2 * np));
                const __mmask16 mh = (__mmask16)((1u << np) - 1u);
                const __m512 v = _mm512_maskz_loadu_ps(m, xh + 2 * i);
                const __m512 c = _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(mh, ct + i));
                const __m512 s = _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(mh, st + i));
                const __m512 s2 = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(s), sgn)); /* (-s, s) */
                const __m512 sw = _mm512_permute_ps(v, 0xb1); /* (x1, x0) per pair */
                _mm512_mask_storeu_ps(xh + 2 * i, m, _mm512_fmadd_ps(c, v, _mm512_mul_ps(s2, sw)));
            }
#endif
            for (; i < half; i++) {
                const float c = ct[i], s = st[i], x0 = xh[2 * i], x1 = xh[2 * i + 1];
                xh[2 * i] = fmaf(c, x0, -s * x1);
                xh[2 * i + 1] = fmaf(c, x1, s * x0);
            }
        }
    }
}

/* flux/math.py rope(): omega_j = 1 / theta^(2j/dim), angle = pos * omega_j, float64, then
 * cos/sin stored as f32; EmbedND concatenates the axes. Tokens go in blocks so each omega
 * (a pow) is computed once per block. */
#define ROPE_TOK_BLOCK 64
void ops_rope_table(float *cosv, float *sinv, const float *pos, int64_t n_tok, int n_axes, const int *axes_dim,
                    double theta)
{
    int half = 0;
    for (int a = 0; a < n_axes; a++) half += axes_dim[a] / 2;
    const int64_t nblk = (n_tok + ROPE_TOK_BLOCK - 1) / ROPE_TOK_BLOCK;
    OMP_FOR
    for (int64_t bk = 0; bk < nblk; bk++) {
        const int64_t t0 = bk * ROPE_TOK_BLOCK, t1 = t0 + ROPE_TOK_BLOCK < n_tok ? t0 + ROPE_TOK_BLOCK : n_tok;
        int col = 0;
        for (int a = 0; a < n_axes; a++) {
            const int dim = axes_dim[a];
            for (int j = 0; j < dim / 2; j++, col++) {
                const double omega = 1.0 / pow(theta, (double)(2 * j) / dim);
                for (int64_t t = t0; t < t1; t++) {
                    const double ang = (double)pos[t * n_axes + a] * omega;
                    cosv[t * half + col] = (float)cos(ang);
                    sinv[t * half + col] = (float)sin(ang);
                }
            }
        }
    }
}

/* ================================================================ upsample, modulate */

/* x: [C, H, W]; y: [C, H*f, W*f]. One input row (c, h) per work item: its first output row is
 * built (each value repeated f times; a permute for f = 2), then copied f-1 times below. */
void ops_upsample_nearest(float *y, const float *x, int C, int H, int W, int factor)
{
    const int64_t OW = (int64_t)W * factor, nrows = (int64_t)C * H;
    OMP_FOR
    for (int64_t r = 0; r < nrows; r++) {
        const float *xr = x + r * W;
        float *yr = y + r * factor * OW; /* row (c, h) -> output rows (c, h*f .. h*f+f-1) */
        int w = 0;
#ifdef __AVX512F__
        if (factor == 2) {
            const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
            for (; w + 8 <= W; w += 8)
                _mm512_storeu_ps(yr + 2 * w, _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(xr + w))));
        }
#endif
        for (; w < W; w++)
            for (int k = 0; k < factor; k++) yr[(int64_t)w * factor + k] = xr[w];
        for (int k = 1; k < factor; k++) memcpy(yr + k * OW, yr, sizeof(float) * (size_t)OW);
    }
}

/* x, y: [rows, dim]; shift, scale: [dim]. y = fma(1 + scale, x, shift), rows in parallel. */
void ops_modulate(float *y, const float *x, const float *shift, const float *scale, int64_t rows, int dim)
{
    OMP_FOR
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        int j = 0;
#ifdef __AVX512F__
        const __m512 one = _mm512_set1_ps(1.0f);
        for (; j < dim; j += 16) {
            const __mmask16 m = dim - j >= 16 ? (__mmask16)0xffff : ops__tail_mask((size_t)(dim - j));
            const __m512 s1 = _mm512_add_ps(one, _mm512_maskz_loadu_ps(m, scale + j));
            _mm512_mask_storeu_ps(yr + j, m,
                                  _mm512_fmadd_ps(s1, _mm512_maskz_loadu_ps(m, xr + j), _mm512_maskz_loadu_ps(m, shift + j)));
        }
#endif
        for (; j < dim; j++) {
            const float s1 = 1.0f + scale[j];
            yr[j] = fmaf(s1, xr[j], shift[j]);
        }
    }
}

void ops_add_gated(float *x, const float *y, const float *gate, int64_t rows, int dim)
{
    OMP_FOR
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim;
        const float *yr = y + r * dim;
        int j = 0;
#ifdef __AVX512F__
        for (; j < dim; j += 16) {
            const __mmask16 m = dim - j >= 16 ? (__mmask16)0xffff : ops__tail_mask((size_t)(dim - j));
            const __m512 g = gate ? _mm512_maskz_loadu_ps(m, gate + j) : _mm512_set1_ps(1.0f);
            _mm512_mask_storeu_ps(xr + j, m,
                                  _mm512_fmadd_ps(g, _mm512_maskz_loadu_ps(m, yr + j), _mm512_maskz_loadu_ps(m, xr + j)));
        }
#endif
        for (; j < dim; j++) xr[j] = fmaf(gate ? gate[j] : 1.0f, yr[j], xr[j]);
    }
}
