/* core/ops.h — compute kernels.
 *
 * Conventions: row-major, f32 activations. "rows x dim" means rows contiguous rows of dim floats.
 * Every kernel has a naive twin ops_ref_* (plain loops straight from the definition, libm, double
 * accumulation where it helps accuracy; kept in the build and tested) and a fast version ops_*
 * (OpenMP over outer loops, AVX-512 inner loops with a scalar path computing the same formula).
 * The naive twins and our own fast kernels (everything in this section) reduce in a fixed order,
 * so they give the same bits for 1 and N threads. Called inside an enclosing OpenMP parallel
 * region they run serially. Unless noted, y may equal x (in place).
 *
 * The oneDNN-backed kernels (linear, conv2d) and attention need a context: see ops_ctx below.
 */
#ifndef DIT_CORE_OPS_H
#define DIT_CORE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tensor.h"

/* ---------------------------------------------------------------- elementwise and norms */

/* LayerNorm over the last dim. x, y: [rows, dim]; w, b: [dim] or NULL (no affine). */
void ops_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows, int dim, float eps);
void ops_ref_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows, int dim, float eps);

/* ops_layernorm with the result rounded to bf16 (round to nearest even): the input of a packed
 * bf16 linear. With w = 1 + scale and b = shift it is adaLN's modulate(LN(x)) in one pass. */
void ops_layernorm_bf16(uint16_t *y, const float *x, const float *w, const float *b, int64_t rows, int dim, float eps);
void ops_ref_layernorm_bf16(uint16_t *y, const float *x, const float *w, const float *b, int64_t rows, int dim,
                            float eps);

/* RMSNorm: y = x / sqrt(mean(x^2) + eps) * w. x, y: [rows, dim]; w: [dim] or NULL. */
void ops_rmsnorm(float *y, const float *x, const float *w, int64_t rows, int dim, float eps);
void ops_ref_rmsnorm(float *y, const float *x, const float *w, int64_t rows, int dim, float eps);

/* GELU, exact: 0.5 x (1 + erf(x / sqrt 2)). */
void ops_gelu(float *y, const float *x, size_t n);
void ops_ref_gelu(float *y, const float *x, size_t n);
/* GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void ops_gelu_tanh(float *y, const float *x, size_t n);
void ops_ref_gelu_tanh(float *y, const float *x, size_t n);
/* gelu_tanh rounded to bf16 (nearest even): the input of a packed bf16 linear (MLP fc2). */
void ops_gelu_tanh_bf16(uint16_t *y, const float *x, size_t n);
void ops_ref_gelu_tanh_bf16(uint16_t *y, const float *x, size_t n);
/* quick_gelu (CLIP-L): x * sigmoid(1.702 x). */
void ops_quick_gelu(float *y, const float *x, size_t n);
void ops_ref_quick_gelu(float *y, const float *x, size_t n);
/* SiLU: x * sigmoid(x). */
void ops_silu(float *y, const float *x, size_t n);
void ops_ref_silu(float *y, const float *x, size_t n);

/* Softmax over the last dim. x, y: [rows, dim]. Rows of all -inf give zeros; a row holding NaN
 * or +inf gives NaN (as torch). */
void ops_softmax(float *y, const float *x, int64_t rows, int dim);
void ops_ref_softmax(float *y, const float *x, int64_t rows, int dim);

/* Rotary embedding, FLUX convention (flux/math.py apply_rope): pairs are adjacent lanes
 * (2i, 2i+1) of each head:
 *   out[2i]   = cos_i * x[2i] - sin_i * x[2i+1]
 *   out[2i+1] = sin_i * x[2i] + cos_i * x[2i+1]
 * x: n_tok rows, row r starts at x + r*row_stride and holds n_heads heads of head_dim floats
 * (in place). cos, sin: [n_tok, head_dim/2], the same for every head. */
void ops_rope(float *x, int64_t n_tok, int n_heads, int head_dim, int64_t row_stride,
              const float *cos, const float *sin);
void ops_ref_rope(float *x, int64_t n_tok, int n_heads, int head_dim, int64_t row_stride,
                  const float *cos, const float *sin);
/* FLUX's table (flux/math.py rope + EmbedND): for each token, axis a with dim axes_dim[a]
 * (even) contributes axes_dim[a]/2 angles pos[tok, a] * theta^(-2j/axes_dim[a]), axes
 * concatenated in order. Computed in double, stored as f32. pos: [n_tok, n_axes].
 * cos, sin: [n_tok, sum(axes_dim)/2]. */
void ops_rope_table(float *cos, float *sin, const float *pos, int64_t n_tok, int n_axes,
                    const int *axes_dim, double theta);

/* GroupNorm over one image. x, y: [C, hw] (NCHW without N); C % groups == 0; w, b: [C] or NULL.
 * Biased variance over (C/groups)*hw values, as torch.nn.GroupNorm. Parallel over groups. */
void ops_groupnorm(float *y, const float *x, const float *w, const float *b, int C, int64_t hw,
                   int groups, float eps);
void ops_ref_groupnorm(float *y, const float *x, const float *w, const float *b, int C, int64_t hw,
                       int groups, float eps);

/* GroupNorm with the statistics given instead of computed: y = (x - mean[g]) * rstd[g] * w[c] + b[c]
 * for channel c of group g (a tiled VAE run normalises every tile with the whole image's
 * statistics). mean: [groups] in double (a large mean cancels as in ops_groupnorm); rstd: [groups],
 * 1 / sqrt(var + eps). With a group's own statistics it computes what ops_groupnorm does. */
void ops_groupnorm_apply(float *y, const float *x, const float *w, const float *b, int C, int64_t hw, int groups,
                         const double *mean, const float *rstd);
void ops_ref_groupnorm_apply(float *y, const float *x, const float *w, const float *b, int C, int64_t hw, int groups,
                             const double *mean, const float *rstd);

/* Nearest upsample by an integer factor. x: [C, H, W], y: [C, H*f, W*f]. Not in place. */
void ops_upsample_nearest(float *y, const float *x, int C, int H, int W, int factor);
void ops_ref_upsample_nearest(float *y, const float *x, int C, int H, int W, int factor);

/* adaLN modulate: y = (1 + scale) * x + shift. x, y: [rows, dim]; shift, scale: [dim]. */
void ops_modulate(float *y, const float *x, const float *shift, const float *scale, int64_t rows, int dim);
void ops_ref_modulate(float *y, const float *x, const float *shift, const float *scale, int64_t rows, int dim);

/* Gated residual (adaLN-zero): x += gate * y, gate: [dim] per column, or NULL for x += y.
 * x, y: [rows, dim]; y must not alias x. */
void ops_add_gated(float *x, const float *y, const float *gate, int64_t rows, int dim);
void ops_ref_add_gated(float *x, const float *y, const float *gate, int64_t rows, int dim);

/* Vector math used by the kernels above and by attention. y may equal x.
 * ops_exp: <= 1 ulp from expf for every x in [-88, 88]; exp(-inf) = 0, overflow gives inf, NaN stays
 * NaN. The same formula is available inline (core/ops_vec.h) for kernels that fuse it. */
void ops_exp(float *y, const float *x, size_t n);

/* ---------------------------------------------------------------- oneDNN-backed kernels */

/* Activation buffers run fastest 64-byte aligned (as arena_alloc gives them): oneDNN's AMX
 * kernels measured ~25% slower on 16-byte aligned operands.
 *
 * Which arithmetic a kernel runs in:
 *   OPS_REF  — the naive twins: plain f32 loops, thread-count invariant (the reference path).
 *   OPS_F32  — oneDNN f32.
 *   OPS_BF16 — oneDNN bf16 inputs, f32 accumulation and output (AMX tiles where the CPU has them).
 * oneDNN is deterministic for a fixed thread count but changes its blocking with the count. */
typedef enum { OPS_REF = 0, OPS_F32, OPS_BF16, OPS_PREC_COUNT } ops_prec;
const char *ops_prec_name(ops_prec p);

/* Owns the oneDNN engine and stream, a primitive cache and conversion scratch.
 * One per thread of control; not shared between concurrent callers. */
typedef struct ops_ctx ops_ctx;
ops_ctx *ops_ctx_new(dit_err *e);
void ops_ctx_free(ops_ctx *c);
/* The last error on this context (message of the failing call). */
const dit_err *ops_ctx_err(const ops_ctx *c);

/* Linear: y[M,N] = x[M,K] W[N,K]^T + b[N]. W is F32, BF16 or F16 ([out, in], as stored in
 * checkpoints). b may be NULL. y must not alias x. Under OPS_BF16, x is rounded to bf16.
 * A W not already in the path's dtype (BF16 for OPS_BF16, F32 for OPS_F32) is converted on
 * every call into context scratch: correct but slow — models convert or pack (ops_weight) once
 * at load. */
dit_status ops_linear(ops_ctx *c, ops_prec p, float *y, const float *x, int64_t M, int K,
                      const tensor *W, const float *b, int N);
void ops_ref_linear(float *y, const float *x, int64_t M, int K, const tensor *W, const float *b, int N);

/* A linear weight packed once for the bf16 path: rounded to bf16 and reordered into the blocked
 * layout oneDNN's AMX kernels read, which makes the product 1.25-1.4x faster than from the plain
 * [N, K] layout (dit bench). Costs one bf16 copy of the weight; pack at load, not per step.
 * The packed weight owns its memory and may be used with any ops_ctx. */
typedef struct ops_weight ops_weight;
dit_status ops_weight_pack(ops_ctx *c, const tensor *W /* [N, K], F32/BF16/F16 */, ops_weight **out);
void ops_weight_free(ops_weight *w);
size_t ops_weight_bytes(const ops_weight *w);
/* y[M,N] = x[M,K] W^T + b in bf16 with f32 accumulation (same numbers as ops_linear under
 * OPS_BF16). y must not alias x. */
dit_status ops_linear_packed(ops_ctx *c, float *y, const float *x, int64_t M, const ops_weight *W, const float *b);
/* The same with the input already bf16 [M, K] (e.g. from ops_layernorm_bf16): no conversion pass,
 * which is 20-25% of a packed linear's time at transformer shapes. */
dit_status ops_linear_packed_bf16(ops_ctx *c, float *y, const uint16_t *xb, int64_t M, const ops_weight *W,
                                  const float *b);

/* 2-D convolution, NCHW. x: [N, C, H, W]; w: [OC, C/groups, kh, kw] (F32, BF16 or F16, converted
 * per call like linear's W when not in the path's dtype); b: [OC] or NULL. y must not alias x.
 * y: [N, OC, OH, OW] with OH = (H + pad_t + pad_b - kh) / stride + 1 (likewise OW).
 * The convolution runs on the blocked layouts oneDNN prefers (AMX kernels on bf16, 3x faster than
 * on plain NCHW), with the input, the weights and the output reordered around it on every call;
 * the blocked buffers are context scratch. */
typedef struct {
    int stride;
    int pad_t, pad_l, pad_b, pad_r; /* asymmetric padding (e.g. VAE downsample pads (0,1,0,1)) */
    int groups;                     /* 0 or 1 = dense */
} ops_conv;
dit_status ops_conv2d(ops_ctx *c, ops_prec p, float *y, const float *x, int N, int C, int H, int W,
                      const tensor *w, const float *b, const ops_conv *cv);
void ops_ref_conv2d(float *y, const float *x, int N, int C, int H, int W, const tensor *w,
                    const float *b, const ops_conv *cv);
/* Output size of one spatial dim. */
int ops_conv_out(int in, int k, int stride, int pad0, int pad1);

/* Scaled dot-product attention over one sequence, all heads.
 * q: n_q rows (row r at q + r*q_stride) of n_heads*head_dim floats, head h at lanes
 * [h*head_dim, (h+1)*head_dim). k, v likewise with n_kv rows; out: n_q rows at o_stride.
 *   out_h = softmax(scale * q_h k_h^T + mask_h [+ causal]) v_h
 * mask (optional, additive): [n_heads][n_q][n_kv] with head stride mask_head_stride (0 = one mask
 * for all heads) and row stride n_kv. causal: key j > query i is excluded (CLIP).
 * The fast path tiles queries and keys with an online softmax: no n_q x n_kv buffer. A row whose
 * keys are all masked (-inf) gives zeros. out must not alias q, k or v. head_dim <= OPS_MAX_HEAD_DIM.
 * Fast path: deterministic for a given thread count (oneDNN matmuls). */
#define OPS_MAX_HEAD_DIM 1024
typedef struct {
    int n_q, n_kv, n_heads, head_dim;
    int64_t q_stride, k_stride, v_stride, o_stride;
    float scale;
    const float *mask;
    int64_t mask_head_stride;
    int causal;
} ops_attn;
dit_status ops_attention(ops_ctx *c, ops_prec p, float *out, const float *q, const float *k,
                         const float *v, const ops_attn *a);
void ops_ref_attention(float *out, const float *q, const float *k, const float *v, const ops_attn *a);

/* Best seconds over reps runs of a bf16 x bf16 -> f32 product [M,K] x [K,N], the input already
 * bf16 and the weights packed (ops_weight): the peak that `dit bench` relates every kernel to. */
double ops_bench_matmul_bf16(ops_ctx *c, int M, int N, int K, int reps);

/* Facts for `dit info`: oneDNN version and the implementation a bf16/f32 matmul picks here. */
void ops_backend_info(char *buf, size_t len);

#endif
