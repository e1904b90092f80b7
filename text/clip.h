/* text/clip.h — the CLIP text transformer of SD3/SD3.5 and FLUX.1: CLIP-L (OpenAI ViT-L/14,
 * quick_gelu) and CLIP-G (OpenCLIP bigG, gelu, text_projection), identical to sd3.5
 * other_impls.py CLIPTextModel (golden README "clip_text/").
 *
 *   clip_model *m; dit_err e = {0};
 *   text_load_opts o = text_load_defaults();              // OPS_BF16 (fast) or OPS_F32
 *   if (clip_load(&m, "clip_g.safetensors", &o, &e)) { fprintf(stderr, "%s\n", e.msg); ... }
 *   clip_state *s = clip_state_new(m, &e);
 *   clip_input in = { .batch = 1, .n_tok = 77, .ids = ids };   // ids from the CLIP tokenizer
 *   clip_output out = { .penultimate = pen, .pooled = pooled, .projected = proj };
 *   clip_encode(m, s, &in, &out, &e);
 *   clip_state_free(s); clip_free(m);
 *
 * Math (pre-LN transformer): x = token_embedding[ids] + position_embedding[0..n-1]; per layer
 * x += out_proj(attn(LN1(x))), x += fc2(act(fc1(LN2(x)))); LayerNorm eps 1e-5; attention
 * softmax(q k^T / sqrt(head_dim)) with a causal mask always and no padding mask.
 * Outputs: penultimate = the output of layer L-2 (HF hidden_states[-2]) WITHOUT the final
 * LayerNorm (what SD3 uses for both CLIPs); last = final_layer_norm(output of the last layer);
 * pooled = last[argmax(ids)] (the first EOS 49407, or an earlier literal <|endoftext|>);
 * projected = pooled text_projection^T (CLIP-G's SD3 pooled vector).
 *
 * Configuration from the weights: width, layers, MLP width, vocabulary, positions, projection.
 * Heads are not in the weights: o.heads, else metadata "text.heads" / config.json
 * num_attention_heads, else width / 64 (CLIP-L 12, CLIP-G 20).
 *
 * Hooks (core/hooks.h): every attention goes through hooks_qkv / hooks_attention /
 * hooks_attn_out with a site { model "clip", kind HOOK_BLOCK_PLAIN, stream HOOK_TXT, n_txt = n_tok,
 * n_img 0, block = layer = layer index, n_blocks = layers, t 0 }; hooks_skip may skip a layer;
 * hooks_block_out sees each layer's output [n_tok, width]; taps (block -1): "embeddings"
 * [n_tok, width], and with any hook "penultimate_final_ln" (debugging) and "last" [n_tok, width].
 */
#ifndef DIT_TEXT_CLIP_H
#define DIT_TEXT_CLIP_H

#include <stdint.h>

#include "core/err.h"
#include "core/hooks.h"
#include "core/wtable.h"
#include "text/enc.h"

#define CLIP_EOS 49407 /* <|endoftext|> */
#define CLIP_MAX_LAYERS 128

typedef struct {
    char variant[16]; /* "clip-l" (768 wide), "clip-g" (1280 wide), "clip" (other sizes) */
    int hidden, heads, head_dim, mlp, layers;
    int vocab, n_pos;  /* token_embedding rows (49408), position_embedding rows (77) */
    int proj;          /* text_projection output width, 0 when absent */
    text_act act;
} clip_config;

typedef struct clip_model clip_model;

/* path: a .safetensors file (also an SD3 checkpoint: prefix auto or o->prefix), an index, or a
 * diffusers text_encoder/ or text_encoder_2/ folder. On failure *out is NULL and e names the file. */
dit_status clip_load(clip_model **out, const char *path, const text_load_opts *o, dit_err *e);
void clip_free(clip_model *m);
const clip_config *clip_model_config(const clip_model *m);
ops_prec clip_model_prec(const clip_model *m);
void clip_config_describe(const clip_config *c, char *buf, size_t cap);

/* The pooling row: the index of the largest id (the first one when several are equal). */
int clip_pool_index(const int32_t *ids, int n);

typedef struct clip_state clip_state;
/* Activations for sequences up to the model's n_pos tokens. */
clip_state *clip_state_new(const clip_model *m, dit_err *e);
void clip_state_free(clip_state *s);

typedef struct {
    int batch;            /* rows of ids; the forward runs them one after another */
    int n_tok;            /* tokens per row, 1..n_pos (77 for SD3 and FLUX) */
    const int32_t *ids;   /* [batch, n_tok] */
    hook_list hooks;
} clip_input;

/* Outputs the caller wants (NULL = not needed). */
typedef struct {
    float *penultimate;   /* [batch, n_tok, hidden] */
    float *last;          /* [batch, n_tok, hidden] */
    float *pooled;        /* [batch, hidden] */
    float *projected;     /* [batch, proj] (needs text_projection) */
} clip_output;

dit_status clip_encode(const clip_model *m, clip_state *s, const clip_input *in, const clip_output *out, dit_err *e);

#endif
