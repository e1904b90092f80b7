/* core/hooks.h — the fixed sites where a pass can reach into a transformer's forward: the
 * attention of every block (q/k/v, the attention itself, its output), the block as a whole (skip,
 * output) and named taps for inspection. dit/ (DiT, SD3 MM-DiT, FLUX) and text/ (CLIP, T5) call
 * the hooks a pass carries; they never name a guidance method (ARCHITECTURE.md "Hooks, not
 * flags", STYLE.md G8). guidance/ builds hook lists; with none the cost is one branch per site.
 *
 *   static int pag_attn(void *u, const hook_site *s, hook_attn *at) {   // PAG: attention = V
 *       if (s->block != 13) return 0;
 *       hook_attn_identity(at);
 *       return 1;                                                       // "I wrote at->out"
 *   }
 *   hook h = { .user = NULL, .attn = pag_attn };
 *   hook_list hooks = { &h, 1 };                                        // in the forward's input
 *
 * Token layout. A sequence of rows = n_txt + n_img tokens is always [TEXT | IMAGE]: text rows
 * first (the order of the FLUX and SD3 references). Image tokens are a grid_h x grid_w grid,
 * row-major. Which rows a site's tensors hold is its stream: HOOK_TXT (text only: text-encoder
 * layers; n_img = 0), HOOK_IMG (image only: DiT blocks, SD3.5's attn2; n_txt = 0) or HOOK_JOINT
 * (both: SD3 joint blocks, FLUX double and single blocks).
 *
 * Every pointer a hook receives is valid only during the call; hooks change data in place, must
 * not allocate, and run on the forward's thread (they may use OpenMP inside). A forward over a
 * batch runs one sample after another, so each call sees one sample (site.batch).
 */
#ifndef DIT_CORE_HOOKS_H
#define DIT_CORE_HOOKS_H

#include <stdint.h>

#include "err.h"
#include "ops.h"

typedef enum { HOOK_TXT = 0, HOOK_IMG, HOOK_JOINT, HOOK_STREAM_COUNT } hook_stream;

/* What kind of block a site is in. */
typedef enum {
    HOOK_BLOCK_PLAIN = 0, /* one stream: DiT/SiT block, text-encoder layer */
    HOOK_BLOCK_DOUBLE,    /* two streams with their own weights, one joint attention: SD3 joint block,
                             FLUX double block */
    HOOK_BLOCK_SINGLE,    /* FLUX single block: one stream over [txt | img] */
    HOOK_BLOCK_KIND_COUNT
} hook_block_kind;

typedef struct {
    const char *model;    /* "flux", "sd3", "dit", "sit", "clip", "t5": for messages and taps */
    int block, n_blocks;  /* index over all blocks in forward order (FLUX: double blocks, then single) */
    int layer;            /* index among the blocks of its kind (FLUX single block N has layer N) */
    hook_block_kind kind;
    int attn;             /* which attention of the block: 0 the main one, 1 SD3.5 MMDiT-X attn2 */
    hook_stream stream;   /* the rows the tensors of this call hold (see the header comment) */
    int batch;            /* sample within the forward's batch */
    int n_txt, n_img;     /* rows = n_txt + n_img for HOOK_JOINT, n_txt for HOOK_TXT, n_img for HOOK_IMG */
    int grid_h, grid_w;   /* n_img = grid_h * grid_w (0 x 0 without image tokens) */
    int n_heads, head_dim;
    float t;              /* the timestep as the model received it: FLUX sigma in [0,1], SD3 1000 sigma,
                             DiT step, SiT t (1 = data); 0 in text encoders */
} hook_site;

/* One attention call. q, k, v: rows of n_heads*head_dim floats at the strides in a (q and k after
 * projection, q/k-norm and RoPE); out: the result rows, before the output projection, at
 * a.o_stride. a holds the kernel's parameters (n_q = n_kv = the site's rows, scale = 1/sqrt(hd)
 * in the diffusion models, 1 in T5, mask, causal) and ctx/prec run kernels as the model does. */
typedef struct {
    float *q, *k, *v, *out;
    ops_attn a;
    ops_ctx *ctx;
    ops_prec prec;
} hook_attn;

/* A hook: any subset of the callbacks (NULL = not interested). user is passed back unchanged.
 *   qkv       q, k, v in place before the attention (SEG blurs queries, ERG scales q by tau).
 *   attn      before the kernel: may change at->a (scale, mask) and return 0 so the kernel runs
 *             with them, or write at->out itself and return 1 (the kernel and later hooks' attn
 *             are then skipped); -1 = failure, which stops the forward.
 *   attn_out  the attention output in place (before the output projection), q/k/v readable:
 *             SoftPAG mixes heads toward V here.
 *   skip      1 = the block is the identity for this sample (skip-layer guidance).
 *   block_out the block's output rows in place: x has rows of dim floats (stream as the site
 *             says; for HOOK_JOINT the [txt | img] rows, for SD3's last block too).
 *   tap       read-only view of a named intermediate (site.block = -1 outside blocks), e.g.
 *             "t_freq", "vec", "img_in", "v_tokens"; used by `dit check` and for debugging.
 *
 * What the sites give the guidance methods (METHODS.md): ERG scales at->a.scale in attn; SoftPAG
 * mixes each selected head of out toward v in attn_out; PAG as identity over the whole sequence is
 * hook_attn_identity (METHODS.md 4.1 (B)), while the image-only identity of (A) and regional
 * prompts set at->a.mask to an [n_q, n_kv] additive mask the hook owns (allocated beforehand:
 * ~78 MB at 4.4k tokens); skip-layer guidance returns 1 from skip. The q site comes after RoPE,
 * so a blur of FLUX queries (SEG) mixes rotated positions: a pre-RoPE site would be needed for
 * SEG on FLUX. */
typedef struct {
    void *user;
    void (*qkv)(void *user, const hook_site *s, hook_attn *at);
    int (*attn)(void *user, const hook_site *s, hook_attn *at);
    void (*attn_out)(void *user, const hook_site *s, hook_attn *at);
    int (*skip)(void *user, const hook_site *s);
    void (*block_out)(void *user, const hook_site *s, float *x, int64_t rows, int dim);
    void (*tap)(void *user, const hook_site *s, const char *name, const float *x, int64_t rows, int cols);
} hook;

/* The hooks of one pass, called in list order at each site. Lives in the forward's input, never
 * in the model. */
typedef struct {
    const hook *h;
    int n;
} hook_list;

/* ---- what the models call (each a no-op for an empty list) ---------------------------------- */

void hooks_qkv(const hook_list *l, const hook_site *s, hook_attn *at);
/* Runs the attn hooks, then (unless one wrote the output) the kernel with at->a as the hooks left
 * it. Returns DIT_OK, the kernel's status, or DIT_E_ARG when a hook returned -1 (e filled). */
dit_status hooks_attention(const hook_list *l, const hook_site *s, hook_attn *at, dit_err *e);
void hooks_attn_out(const hook_list *l, const hook_site *s, hook_attn *at);
int hooks_skip(const hook_list *l, const hook_site *s);
void hooks_block_out(const hook_list *l, const hook_site *s, float *x, int64_t rows, int dim);
void hooks_tap(const hook_list *l, const hook_site *s, const char *name, const float *x, int64_t rows, int cols);

/* ---- helpers for hooks ----------------------------------------------------------------------- */

/* The attention as the model would compute it (ops_attention with at->a). */
dit_status hook_attn_run(hook_attn *at);
/* out = v for every head and row: the identity attention map (PAG, METHODS.md 4.1 (B)). */
void hook_attn_identity(hook_attn *at);

const char *hook_stream_name(hook_stream s);
const char *hook_block_kind_name(hook_block_kind k);

#endif
