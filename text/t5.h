/* text/t5.h — the T5 v1.1 encoder of SD3/SD3.5 and FLUX.1 (T5-XXL), identical to sd3.5
 * other_impls.py T5 / T5Stack (golden README "t5/").
 *
 *   t5_model *m; dit_err e = {0};
 *   text_load_opts o = text_load_defaults();         // OPS_BF16 (fast) or OPS_F32
 *   if (t5_load(&m, "t5xxl_fp16.safetensors", &o, &e)) { fprintf(stderr, "%s\n", e.msg); ... }
 *   t5_state *s = t5_state_new(m, 512, &e);           // longest sequence
 *   t5_input in = { .batch = 1, .n_tok = n, .ids = ids };   // ids from the T5 tokenizer
 *   t5_encode(m, s, &in, hidden, &e);                 // hidden: [1, n, d_model]
 *   t5_state_free(s); t5_free(m);
 *
 * Math: x = shared[ids] (no scaling); per block x += o(attn(RMS0(x))),
 * x += wo(gelu_tanh(wi_0(h)) * wi_1(h)) with h = RMS1(x); output final_layer_norm(x).
 * RMSNorm: w x / sqrt(mean(x^2) + 1e-6). Attention: softmax(q k^T + position_bias) v, NO
 * 1/sqrt(d_kv) scaling, no padding mask. position_bias[h, i, j] = rel_bias[bucket(j - i), h]
 * from block 0's table, reused by every block. Computed in f32 (fp16 T5-XXL overflows) or with
 * bf16 matmul inputs and f32 accumulation.
 *
 * Configuration from the weights: d_model, inner width (q rows), d_ff, blocks, vocabulary,
 * buckets and heads (relative_attention_bias [buckets, heads]). max_distance: metadata
 * "text.max_distance" / config.json relative_attention_max_distance, else 128.
 *
 * Hooks (core/hooks.h): every attention goes through hooks_qkv / hooks_attention /
 * hooks_attn_out with a site { model "t5", kind HOOK_BLOCK_PLAIN, stream HOOK_TXT, n_txt = n_tok,
 * n_img 0, block = layer = block index, t 0 }; the kernel parameters carry scale 1 and the bias
 * as mask (head stride n_tok^2) — scale at->a.scale to scale the logits (not the bias);
 * hooks_skip may skip a block; hooks_block_out sees each block's output [n_tok, d_model]; taps
 * (block -1): "embeddings" [n_tok, d_model], "position_bias" [heads * n_tok, n_tok], "last".
 */
#ifndef DIT_TEXT_T5_H
#define DIT_TEXT_T5_H

#include <stdint.h>

#include "core/err.h"
#include "core/hooks.h"
#include "core/wtable.h"
#include "text/enc.h"

#define T5_MAX_BLOCKS 128

typedef struct {
    char variant[16];   /* "t5-xxl" (d_model 4096), "t5" */
    int d_model, heads, d_kv, inner, d_ff, layers, vocab;
    int buckets, max_distance;
} t5_config;

typedef struct t5_model t5_model;

/* path: a .safetensors file (also an SD3 checkpoint under text_encoders.t5xxl.transformer.), an
 * index, or a diffusers text_encoder_3/ folder. The embedding may be named shared.weight or
 * encoder.embed_tokens.weight (or both, tied). */
dit_status t5_load(t5_model **out, const char *path, const text_load_opts *o, dit_err *e);
void t5_free(t5_model *m);
const t5_config *t5_model_config(const t5_model *m);
ops_prec t5_model_prec(const t5_model *m);
size_t t5_model_bytes(const t5_model *m); /* converted/packed weights held (not the map) */
void t5_config_describe(const t5_config *c, char *buf, size_t cap);

/* Bucket of a relative position rel = key - query (HF T5Attention._relative_position_bucket,
 * bidirectional): half the buckets per direction, exact below half of that, then logarithmic up
 * to max_distance; the log is evaluated in float32 as the reference does. */
int t5_bucket(int rel, int buckets, int max_distance);

/* Every tensor of a model of configuration c in the released file layout (no prefix), with its
 * shape, from the loader's tables: fn(user, name, nd, shape). For tools/synth_text.c. */
void t5_enumerate(const t5_config *c, wt_visit fn, void *user);

typedef struct t5_state t5_state;
t5_state *t5_state_new(const t5_model *m, int max_tok, dit_err *e);
void t5_state_free(t5_state *s);
size_t t5_state_bytes(const t5_state *s);

typedef struct {
    int batch, n_tok;     /* the forward runs the rows one after another */
    const int32_t *ids;   /* [batch, n_tok] */
    hook_list hooks;
} t5_input;

/* Where the last t5_encode spent its time (wall seconds) and the work it did (2 M K N per linear,
 * 4 n^2 inner per attention). */
typedef struct {
    double seconds, matmul_s, attn_s;
    double matmul_flop, attn_flop;
} t5_profile;
const t5_profile *t5_state_profile(const t5_state *s);

/* out: [batch, n_tok, d_model], final_layer_norm(x) (SD3's and FLUX's T5 context). */
dit_status t5_encode(const t5_model *m, t5_state *s, const t5_input *in, float *out, dit_err *e);

#endif
