/* dit/model.h — the loaded model, shared by dit/load.c and dit/forward.c (not public).
 * Field comments give the checkpoint names (released / diffusers); shapes use H = hidden,
 * M = mlp hidden, hd = head_dim. */
#ifndef DIT_DIT_MODEL_H
#define DIT_DIT_MODEL_H

#include "core/safetensors.h"
#include "core/wtable.h"
#include "dit/dit.h"

/* Linear, SiLU, Linear: FLUX time_in / vector_in / guidance_in, SD3 and DiT t_embedder / y_embedder. */
typedef struct {
    wt_lin l1, l2;
} dit_mlp2;

/* One stream of a block: FLUX double-block img_* / txt_*, SD3 x_block / context_block, DiT block. */
typedef struct {
    wt_lin mod;        /* adaLN_modulation.1 / *_mod.lin: [k H, H], k = 6 (9 with attn2, 2 pre_only) */
    wt_lin qkv;        /* [3H, H], rows (3, heads, hd) */
    float *qn, *kn;    /* q/k RMSNorm weights [hd], NULL without qk-norm */
    wt_lin proj;       /* [H, H]; absent in SD3's pre_only context block */
    wt_lin fc1, fc2;   /* [M, H], [H, M]; absent when pre_only */
} dit_stream;

typedef struct {
    dit_stream img, txt;  /* DiT blocks use img only */
    int txt_pre_only;     /* SD3 last block: context gives only k, v (2 chunks, no proj, no mlp) */
    int has_attn2;        /* SD3.5 MMDiT-X: x_block.attn2 */
    wt_lin qkv2, proj2;   /* attn2: [3H, H], [H, H] */
    float *qn2, *kn2;
} dit_double;

/* FLUX single block. */
typedef struct {
    wt_lin mod;           /* modulation.lin: [3H, H] */
    wt_lin linear1;       /* [3H + M, H]: q | k | v | mlp */
    wt_lin linear2;       /* [H, H + M]: takes attn | gelu(mlp) */
    float *qn, *kn;       /* [hd] */
} dit_single;

struct dit_model {
    dit_config cfg;
    ops_prec prec;
    st_set *set;
    wt_store store;
    wt_lin img_in;        /* FLUX img_in [H, 64]; SD3/DiT x_embedder.proj [H, C p p] (conv as linear) */
    wt_lin txt_in;        /* FLUX txt_in, SD3 context_embedder: [H, ctx] */
    dit_mlp2 time_in;     /* [H, 256], [H, H] */
    dit_mlp2 vec_in;      /* FLUX vector_in, SD3 y_embedder: [H, vec], [H, H] */
    dit_mlp2 guid_in;     /* FLUX-dev guidance_in */
    tensor pos_embed;     /* SD3 [1, M*M, H], DiT [1, T, H], as stored */
    tensor labels;        /* DiT/SiT y_embedder.embedding_table [classes + 1, H], as stored */
    wt_lin final_mod;     /* final_layer.adaLN_modulation.1: [2H, H], (shift, scale) */
    wt_lin final_lin;     /* final_layer.linear: [p p final_ch, H] (FLUX [64, H]) */
    dit_double *dbl;      /* [depth] */
    dit_single *sgl;      /* [depth_single] */
};

#endif
