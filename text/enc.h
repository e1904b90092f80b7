/* text/enc.h — what the text encoders (text/clip.h, text/t5.h) share: load options and the
 * private helpers that find an encoder in a file or folder.
 *
 *   text_load_opts o = text_load_defaults();     // o.prec = OPS_BF16 (fast) or OPS_F32
 *   o.prefix = TEXT_PREFIX_CLIP_G;               // only for files holding several encoders
 *   clip_model *g; clip_load(&g, "sd3.5_large.safetensors", &o, &e);
 *
 * Where encoders are found (checked against sd3.5 sd3_infer.py, ComfyUI and stable-diffusion.cpp
 * key names):
 *   single files   clip_l.safetensors, clip_g.safetensors, t5xxl_fp16.safetensors: no prefix;
 *                  SD3/SD3.5 checkpoints with text encoders: text_encoders.clip_l.transformer.,
 *                  text_encoders.clip_g.transformer., text_encoders.t5xxl.transformer.
 *   diffusers      the encoder's folder (text_encoder/, text_encoder_2/, text_encoder_3/) holding
 *                  model.safetensors or model.safetensors.index.json (shards), and config.json
 *                  (num_attention_heads / num_heads, hidden_act, relative_attention_max_distance).
 * Tensor names are the same in both layouts (HF CLIPTextModel / T5EncoderModel names).
 */
#ifndef DIT_TEXT_ENC_H
#define DIT_TEXT_ENC_H

#include <cJSON.h>

#include "core/err.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "core/wtable.h"

#define TEXT_PREFIX_CLIP_L "text_encoders.clip_l.transformer."
#define TEXT_PREFIX_CLIP_G "text_encoders.clip_g.transformer."
#define TEXT_PREFIX_T5XXL "text_encoders.t5xxl.transformer."

/* CLIP MLP activation: CLIP-L quick_gelu x sigmoid(1.702 x), CLIP-G (OpenCLIP bigG) exact gelu. */
typedef enum { TEXT_ACT_AUTO = -1, TEXT_ACT_QUICK_GELU = 0, TEXT_ACT_GELU, TEXT_ACT_COUNT } text_act;
const char *text_act_name(text_act a);

/* How to load. Fields the weights cannot tell default as documented in clip.h / t5.h. */
typedef struct {
    ops_prec prec;      /* OPS_BF16 (default: linears packed to bf16), OPS_F32, OPS_REF */
    int heads;          /* 0 = metadata "text.heads", config.json, else the default rule */
    text_act act;       /* CLIP only: TEXT_ACT_AUTO = metadata "text.hidden_act" / config.json hidden_act,
                           else gelu iff text_projection is present and the width is not 768 */
    int max_distance;   /* T5 only: 0 = metadata "text.max_distance" / config.json
                           relative_attention_max_distance, else 128 */
    const char *prefix; /* NULL = find it (an error when a file holds several encoders of the kind) */
} text_load_opts;
text_load_opts text_load_defaults(void);

/* ---- private to text/ ------------------------------------------------------------------------ */

typedef struct {
    st_set *set;        /* owned until moved into the model */
    const char *prefix; /* static string or the caller's */
    cJSON *config;      /* config.json beside the weights, or NULL */
} text__file;

/* Open path (file, index or encoder folder) and choose the prefix under which probe_key exists
 * (among prefixes[], or o->prefix when set). what names the model kind in messages. */
dit_status text__open(text__file *f, const char *path, const char *probe_key, const char *const *prefixes, int n_prefixes,
                      const text_load_opts *o, const char *what, dit_err *e);
void text__close(text__file *f); /* closes what is still owned */

/* The tensor fmt (printf with i) under the prefix, or NULL; dim d of it or -1. */
const st_tensor *text__find(const text__file *f, const char *fmt, int i);
int64_t text__dim(const text__file *f, const char *fmt, int i, int d);
int text__count(const text__file *f, const char *fmt, int max);
/* A positive int from metadata meta_key or config.json json_key, else dflt. */
int text__int(const text__file *f, const char *meta_key, const char *json_key, int dflt);
/* A string from metadata or config.json, or NULL. */
const char *text__str(const text__file *f, const char *meta_key, const char *json_key);
/* Mark tensors the model deliberately ignores (e.g. position_ids buffers) as used. */
void text__ignore(wt_loader *L, const char *name);

#endif
