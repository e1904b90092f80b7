/* core/wtable.h — checkpoint tensors -> struct fields, described by static tables (STYLE.md G4).
 *
 * Each block type of a model has one table. A row names the checkpoint tensor (per naming: the
 * released files' names and the diffusers names), the struct field it fills and the shape it must
 * have, in symbols the model derives from its config. The loader formats the name, finds the
 * tensor, checks dtype and shape, prepares it for the compute path once, and marks it used; at
 * the end every tensor under the prefix must have been used.
 *
 *   enum { HID = 1, MLP, N_SYMS };                          // shape symbols of this model
 *   typedef struct { wt_lin qkv; float *q_norm; } block;
 *   static const wt_spec BLOCK[] = {
 *       { { "blocks.%d.attn.qkv", "blocks.%d.attn.{to_q,to_k,to_v}" }, offsetof(block, qkv),
 *         WT_LINEAR, 0, 2, { WD(3, HID), WD(1, HID) } },      // linear: [out, in] (+ bias [out])
 *       ...
 *   };
 *   wt_loader L;  wt_loader_init(&L, set, "model.diffusion_model.", naming, ctx, prec, store, dims, &e);
 *   for (int i = 0; i < depth; i++) wt_load(&L, &blocks[i], BLOCK, N_ELEMS(BLOCK), i, 0);
 *   wt_loader_finish(&L);                                   // extra tensors are an error
 *
 * Name syntax (after printf with the one or two block indices):
 *   "a|b"          alternatives: the first one present is used (e.g. T5 "shared.weight|encoder.embed_tokens.weight")
 *   "p{x,y,z}s"    concatenation along dim 0 of "pxs", "pys", "pzs" (diffusers' separate to_q/to_k/to_v)
 *   "name:swap"    the two halves of dim 0 exchanged (diffusers' norm_out stores (scale, shift))
 * For WT_LINEAR the name is the module's: ".weight" and ".bias" are appended.
 *
 * What a field receives:
 *   WT_LINEAR  wt_lin: weights packed to bf16 (OPS_BF16) or converted to f32 (OPS_F32/OPS_REF), bias
 *              as f32 (NULL with WT_NOBIAS).
 *   WT_VEC     float *: an f32 copy (norm scales, biases of non-linear modules, small tables).
 *   WT_TENSOR  tensor: a view of the file as stored (large tables read a few rows at a time), or with
 *              WT_AS_PREC converted once to the path's dtype (f32, or bf16 for OPS_BF16).
 * Everything converted is owned by the wt_store; views point into the st_set's map.
 */
#ifndef DIT_CORE_WTABLE_H
#define DIT_CORE_WTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ops.h"
#include "safetensors.h"
#include "tensor.h"

#define WT_NAMINGS 2    /* 0: released checkpoints, 1: diffusers */
#define WT_MAX_DIMS 4
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum { WT_LINEAR = 0, WT_VEC, WT_TENSOR };
/* WT_SQUEEZE: the file may store the tensor with extra trailing dims of size 1, which are dropped
 * (a 1x1 convolution [out, in, 1, 1] read as the linear [out, in] it is: LDM VAEs store their
 * attention projections that way, diffusers as Linear weights). */
enum { WT_NOBIAS = 1, WT_OPTIONAL = 2, WT_AS_PREC = 4, WT_SQUEEZE = 8 };

/* A dimension: mul * dims[sym], or the literal mul when sym is 0. */
typedef struct {
    int mul, sym;
} wt_dim;
#define WD(mul, sym) { (mul), (sym) }
#define WLIT(n) { (n), 0 }

typedef struct {
    const char *name[WT_NAMINGS]; /* printf formats; NULL = the same as name[0] */
    size_t off;                   /* offsetof the field in the struct being filled */
    unsigned char kind, flags;
    unsigned char nd;
    wt_dim dim[WT_MAX_DIMS];      /* WT_LINEAR: { out, in } */
} wt_spec;

/* A linear layer prepared for one compute path: y[M, out] = x[M, in] W^T + b. */
typedef struct {
    ops_weight *packed; /* OPS_BF16 */
    const float *w;     /* OPS_F32 / OPS_REF: f32 [out, in] */
    const float *b;     /* f32 [out] or NULL */
    int in, out;
} wt_lin;

/* Owns every converted copy and packed weight of a model. */
typedef struct {
    void **bufs;
    ops_weight **packed;
    int n_bufs, cap_bufs, n_packed, cap_packed;
    size_t bytes; /* total owned */
} wt_store;
void wt_store_free(wt_store *s);

typedef struct {
    const st_set *set;
    const char *prefix; /* prepended to every name; "" for none */
    int naming;
    ops_ctx *ctx;
    ops_prec prec;
    wt_store *store;
    const int *dims;    /* symbol values, indexed by wt_dim.sym */
    unsigned char *used; /* per tensor of set */
    dit_err *e;
} wt_loader;

dit_status wt_loader_init(wt_loader *L, const st_set *set, const char *prefix, int naming, ops_ctx *ctx,
                          ops_prec prec, wt_store *store, const int *dims, dit_err *e);
/* Fill the fields of obj from the n rows of spec; i0, i1 are the printf arguments of the names. */
dit_status wt_load(wt_loader *L, void *obj, const wt_spec *spec, int n, int i0, int i1);
/* An error naming the first tensor under the prefix that no table used (and how many there are). */
dit_status wt_loader_finish(wt_loader *L);
void wt_loader_free(wt_loader *L);

/* The tensor a formatted name (without the syntax above) refers to under the loader's prefix,
 * or NULL. Does not mark it used. */
const st_tensor *wt_find(const wt_loader *L, const char *name);

/* y[M, out] = x[M, in] W^T + b on the path the weight was prepared for (p must be that path:
 * OPS_BF16 for a packed weight). y must not alias x. */
dit_status wt_linear(ops_ctx *c, ops_prec p, float *y, const float *x, int64_t M, const wt_lin *l);
/* The same with a bf16 input [M, in] (OPS_BF16 only; e.g. from ops_layernorm_bf16). */
dit_status wt_linear_bf16(ops_ctx *c, float *y, const uint16_t *xb, int64_t M, const wt_lin *l);

/* Rows [r0, r0 + n) of a 2-D F32/F16/BF16 tensor as f32 (an embedding lookup): dst [n, cols]. */
void wt_rows_f32(float *dst, const tensor *t, int64_t r0, int64_t n);

#endif
