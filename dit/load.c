/* dit/load.c — find the model in a file or folder, detect family and configuration from tensor
 * names and shapes, and fill dit_model from one table per block type (core/wtable.h).
 *
 * Names: column 0 is the released checkpoints' (flux/model.py, sd3.5 mmditx.py, DiT models.py),
 * column 1 diffusers' (FluxTransformer2DModel, SD3Transformer2DModel), whose q/k/v are separate
 * tensors ({to_q,to_k,to_v} concatenates them) and whose final (and SD3 last-context) AdaLN stores
 * (scale, shift) instead of (shift, scale) (":swap"), as diffusers' conversion scripts
 * convert_flux_to_diffusers.py / convert_sd3_to_diffusers.py do.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "core/json.h"

#include "dit/model.h"

/* Shape symbols of the tables. */
enum { HID = 1, MLP, HD, CTX, VEC, IN, FINAL, MODX, LIN1, LIN2, POS, NCLS, N_SYMS };

/* names: N2(released, diffusers) or one of the per-block helpers below, each { name0, name1 } */
#define N2(n0, n1) { n0, n1 }
#define LIN(o, d, names, out, in) { names, offsetof(o, d), WT_LINEAR, 0, 2, { out, in } }
#define LINF(o, d, names, out, in, fl) { names, offsetof(o, d), WT_LINEAR, fl, 2, { out, in } }
#define VEC1(o, d, names, n) { names, offsetof(o, d), WT_VEC, 0, 1, { n } }

/* ---- FLUX (flux/model.py Flux) --------------------------------------------------------------- */

static const wt_spec FLUX_TOP[] = {
    LIN(dit_model, img_in, N2("img_in", "x_embedder"), WD(1, HID), WD(1, IN)),
    LIN(dit_model, txt_in, N2("txt_in", "context_embedder"), WD(1, HID), WD(1, CTX)),
    LIN(dit_model, time_in.l1, N2("time_in.in_layer", "time_text_embed.timestep_embedder.linear_1"), WD(1, HID), WLIT(256)),
    LIN(dit_model, time_in.l2, N2("time_in.out_layer", "time_text_embed.timestep_embedder.linear_2"), WD(1, HID), WD(1, HID)),
    LIN(dit_model, vec_in.l1, N2("vector_in.in_layer", "time_text_embed.text_embedder.linear_1"), WD(1, HID), WD(1, VEC)),
    LIN(dit_model, vec_in.l2, N2("vector_in.out_layer", "time_text_embed.text_embedder.linear_2"), WD(1, HID), WD(1, HID)),
    LIN(dit_model, final_mod, N2("final_layer.adaLN_modulation.1", "norm_out.linear:swap"), WD(2, HID), WD(1, HID)),
    LIN(dit_model, final_lin, N2("final_layer.linear", "proj_out"), WD(1, FINAL), WD(1, HID)),
};
static const wt_spec FLUX_GUIDANCE[] = {
    LIN(dit_model, guid_in.l1, N2("guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1"), WD(1, HID), WLIT(256)),
    LIN(dit_model, guid_in.l2, N2("guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2"), WD(1, HID), WD(1, HID)),
};
#define FD(s, f) { "double_blocks.%d." s, "transformer_blocks.%d." f }
static const wt_spec FLUX_DOUBLE[] = {
    LIN(dit_double, img.mod, FD("img_mod.lin", "norm1.linear"), WD(6, HID), WD(1, HID)),
    LIN(dit_double, txt.mod, FD("txt_mod.lin", "norm1_context.linear"), WD(6, HID), WD(1, HID)),
    LINF(dit_double, img.qkv, FD("img_attn.qkv", "attn.{to_q,to_k,to_v}"), WD(3, HID), WD(1, HID), WT_OPT_BIAS),
    LINF(dit_double, txt.qkv, FD("txt_attn.qkv", "attn.{add_q_proj,add_k_proj,add_v_proj}"), WD(3, HID), WD(1, HID), WT_OPT_BIAS),
    VEC1(dit_double, img.qn, FD("img_attn.norm.query_norm.scale", "attn.norm_q.weight"), WD(1, HD)),
    VEC1(dit_double, img.kn, FD("img_attn.norm.key_norm.scale", "attn.norm_k.weight"), WD(1, HD)),
    VEC1(dit_double, txt.qn, FD("txt_attn.norm.query_norm.scale", "attn.norm_added_q.weight"), WD(1, HD)),
    VEC1(dit_double, txt.kn, FD("txt_attn.norm.key_norm.scale", "attn.norm_added_k.weight"), WD(1, HD)),
    LIN(dit_double, img.proj, FD("img_attn.proj", "attn.to_out.0"), WD(1, HID), WD(1, HID)),
    LIN(dit_double, txt.proj, FD("txt_attn.proj", "attn.to_add_out"), WD(1, HID), WD(1, HID)),
    LIN(dit_double, img.fc1, FD("img_mlp.0", "ff.net.0.proj"), WD(1, MLP), WD(1, HID)),
    LIN(dit_double, img.fc2, FD("img_mlp.2", "ff.net.2"), WD(1, HID), WD(1, MLP)),
    LIN(dit_double, txt.fc1, FD("txt_mlp.0", "ff_context.net.0.proj"), WD(1, MLP), WD(1, HID)),
    LIN(dit_double, txt.fc2, FD("txt_mlp.2", "ff_context.net.2"), WD(1, HID), WD(1, MLP)),
};
#define FS(s, f) { "single_blocks.%d." s, "single_transformer_blocks.%d." f }
/* FluxParams.qkv_bias may be off: then qkv (and linear1) have no bias. */
static const wt_spec FLUX_SINGLE[] = {
    LIN(dit_single, mod, FS("modulation.lin", "norm.linear"), WD(3, HID), WD(1, HID)),
    LINF(dit_single, linear1, FS("linear1", "{attn.to_q,attn.to_k,attn.to_v,proj_mlp}"), WD(1, LIN1), WD(1, HID), WT_OPT_BIAS),
    LIN(dit_single, linear2, FS("linear2", "proj_out"), WD(1, HID), WD(1, LIN2)),
    VEC1(dit_single, qn, FS("norm.query_norm.scale", "attn.norm_q.weight"), WD(1, HD)),
    VEC1(dit_single, kn, FS("norm.key_norm.scale", "attn.norm_k.weight"), WD(1, HD)),
};

/* ---- SD3 / SD3.5 (sd3.5 mmditx.py MMDiTX) ---------------------------------------------------- */

static const wt_spec SD3_TOP[] = {
    LINF(dit_model, img_in, N2("x_embedder.proj", "pos_embed.proj"), WD(1, HID), WD(1, IN), WT_FLAT),
    { { "pos_embed", "pos_embed.pos_embed" }, offsetof(dit_model, pos_embed), WT_TENSOR, 0, 3, { WLIT(1), WD(1, POS), WD(1, HID) } },
    LIN(dit_model, txt_in, N2("context_embedder", NULL), WD(1, HID), WD(1, CTX)),
    LIN(dit_model, time_in.l1, N2("t_embedder.mlp.0", "time_text_embed.timestep_embedder.linear_1"), WD(1, HID), WLIT(256)),
    LIN(dit_model, time_in.l2, N2("t_embedder.mlp.2", "time_text_embed.timestep_embedder.linear_2"), WD(1, HID), WD(1, HID)),
    LIN(dit_model, vec_in.l1, N2("y_embedder.mlp.0", "time_text_embed.text_embedder.linear_1"), WD(1, HID), WD(1, VEC)),
    LIN(dit_model, vec_in.l2, N2("y_embedder.mlp.2", "time_text_embed.text_embedder.linear_2"), WD(1, HID), WD(1, HID)),
    LIN(dit_model, final_mod, N2("final_layer.adaLN_modulation.1", "norm_out.linear:swap"), WD(2, HID), WD(1, HID)),
    LIN(dit_model, final_lin, N2("final_layer.linear", "proj_out"), WD(1, FINAL), WD(1, HID)),
};
#define SX(s, f) { "joint_blocks.%d.x_block." s, "transformer_blocks.%d." f }
#define SC(s, f) { "joint_blocks.%d.context_block." s, "transformer_blocks.%d." f }
static const wt_spec SD3_X[] = { /* x_block; MODX = 6H, or 9H with attn2 */
    LIN(dit_double, img.mod, SX("adaLN_modulation.1", "norm1.linear"), WD(1, MODX), WD(1, HID)),
    LIN(dit_double, img.qkv, SX("attn.qkv", "attn.{to_q,to_k,to_v}"), WD(3, HID), WD(1, HID)),
    LIN(dit_double, img.proj, SX("attn.proj", "attn.to_out.0"), WD(1, HID), WD(1, HID)),
    LIN(dit_double, img.fc1, SX("mlp.fc1", "ff.net.0.proj"), WD(1, MLP), WD(1, HID)),
    LIN(dit_double, img.fc2, SX("mlp.fc2", "ff.net.2"), WD(1, HID), WD(1, MLP)),
};
static const wt_spec SD3_X_QK[] = {
    VEC1(dit_double, img.qn, SX("attn.ln_q.weight", "attn.norm_q.weight"), WD(1, HD)),
    VEC1(dit_double, img.kn, SX("attn.ln_k.weight", "attn.norm_k.weight"), WD(1, HD)),
};
static const wt_spec SD3_CTX[] = {
    LIN(dit_double, txt.mod, SC("adaLN_modulation.1", "norm1_context.linear"), WD(6, HID), WD(1, HID)),
    LIN(dit_double, txt.qkv, SC("attn.qkv", "attn.{add_q_proj,add_k_proj,add_v_proj}"), WD(3, HID), WD(1, HID)),
    LIN(dit_double, txt.proj, SC("attn.proj", "attn.to_add_out"), WD(1, HID), WD(1, HID)),
    LIN(dit_double, txt.fc1, SC("mlp.fc1", "ff_context.net.0.proj"), WD(1, MLP), WD(1, HID)),
    LIN(dit_double, txt.fc2, SC("mlp.fc2", "ff_context.net.2"), WD(1, HID), WD(1, MLP)),
};
static const wt_spec SD3_CTX_PRE_ONLY[] = { /* the last block: (shift, scale) only */
    LIN(dit_double, txt.mod, SC("adaLN_modulation.1", "norm1_context.linear:swap"), WD(2, HID), WD(1, HID)),
    LIN(dit_double, txt.qkv, SC("attn.qkv", "attn.{add_q_proj,add_k_proj,add_v_proj}"), WD(3, HID), WD(1, HID)),
};
static const wt_spec SD3_CTX_QK[] = {
    VEC1(dit_double, txt.qn, SC("attn.ln_q.weight", "attn.norm_added_q.weight"), WD(1, HD)),
    VEC1(dit_double, txt.kn, SC("attn.ln_k.weight", "attn.norm_added_k.weight"), WD(1, HD)),
};
static const wt_spec SD3_ATTN2[] = {
    LIN(dit_double, qkv2, SX("attn2.qkv", "attn2.{to_q,to_k,to_v}"), WD(3, HID), WD(1, HID)),
    LIN(dit_double, proj2, SX("attn2.proj", "attn2.to_out.0"), WD(1, HID), WD(1, HID)),
};
static const wt_spec SD3_ATTN2_QK[] = {
    VEC1(dit_double, qn2, SX("attn2.ln_q.weight", "attn2.norm_q.weight"), WD(1, HD)),
    VEC1(dit_double, kn2, SX("attn2.ln_k.weight", "attn2.norm_k.weight"), WD(1, HD)),
};

/* ---- DiT / SiT (DiT models.py, SiT models.py: the same state dict) ---------------------------- */

static const wt_spec DIT_TOP[] = {
    LINF(dit_model, img_in, N2("x_embedder.proj", NULL), WD(1, HID), WD(1, IN), WT_FLAT),
    { { "pos_embed", NULL }, offsetof(dit_model, pos_embed), WT_TENSOR, 0, 3, { WLIT(1), WD(1, POS), WD(1, HID) } },
    { { "y_embedder.embedding_table.weight", NULL }, offsetof(dit_model, labels), WT_TENSOR, 0, 2, { WD(1, NCLS), WD(1, HID) } },
    LIN(dit_model, time_in.l1, N2("t_embedder.mlp.0", NULL), WD(1, HID), WLIT(256)),
    LIN(dit_model, time_in.l2, N2("t_embedder.mlp.2", NULL), WD(1, HID), WD(1, HID)),
    LIN(dit_model, final_mod, N2("final_layer.adaLN_modulation.1", NULL), WD(2, HID), WD(1, HID)),
    LIN(dit_model, final_lin, N2("final_layer.linear", NULL), WD(1, FINAL), WD(1, HID)),
};
static const wt_spec DIT_BLOCK[] = {
    LIN(dit_double, img.mod, N2("blocks.%d.adaLN_modulation.1", NULL), WD(6, HID), WD(1, HID)),
    LIN(dit_double, img.qkv, N2("blocks.%d.attn.qkv", NULL), WD(3, HID), WD(1, HID)),
    LIN(dit_double, img.proj, N2("blocks.%d.attn.proj", NULL), WD(1, HID), WD(1, HID)),
    LIN(dit_double, img.fc1, N2("blocks.%d.mlp.fc1", NULL), WD(1, MLP), WD(1, HID)),
    LIN(dit_double, img.fc2, N2("blocks.%d.mlp.fc2", NULL), WD(1, HID), WD(1, MLP)),
};

/* ---- detection -------------------------------------------------------------------------------- */

/* A key that identifies each family in each naming (first block's tensors). */
static const struct {
    dit_family family;
    int naming;
    const char *key;
} PROBES[] = {
    { DIT_FLUX, 0, "double_blocks.0.img_attn.qkv.weight" },
    { DIT_FLUX, 1, "single_transformer_blocks.0.norm.linear.weight" },
    { DIT_SD3, 0, "joint_blocks.0.x_block.attn.qkv.weight" },
    { DIT_SD3, 1, "pos_embed.pos_embed" },
    { DIT_DIT, 0, "y_embedder.embedding_table.weight" },
};
/* Where single files keep the diffusion model: as is (FLUX, DiT, diffusers), under
 * model.diffusion_model. (SD3 single files, ComfyUI saves), or diffusion_model. */
static const char *const PREFIXES[] = { "", "model.diffusion_model.", "diffusion_model." };

const char *dit_family_name(dit_family f)
{
    static const char *const names[DIT_FAMILY_COUNT] = { "flux", "sd3", "dit", "sit" };
    return (unsigned)f < DIT_FAMILY_COUNT ? names[f] : "?";
}

dit_load_opts dit_load_defaults(void)
{
    dit_load_opts o;
    memset(&o, 0, sizeof o);
    o.prec = OPS_BF16;
    o.family = -1;
    return o;
}

typedef struct {
    const st_set *set;
    const char *prefix;
    cJSON *config_json; /* diffusers config.json next to the weights, or NULL */
} probe_ctx;

static const st_tensor *find(const probe_ctx *p, const char *fmt, int i)
{
    char name[512];
    char full[600];
    snprintf(name, sizeof name, fmt, i);
    snprintf(full, sizeof full, "%s%s", p->prefix, name);
    return st_set_find(p->set, full);
}

/* Dimension d of a tensor (formatted name), or -1 when absent or of fewer dims. */
static int64_t dim_of(const probe_ctx *p, const char *fmt, int i, int d)
{
    const st_tensor *t = find(p, fmt, i);
    return t && d < t->nd ? t->shape[d] : -1;
}

static int count_blocks(const probe_ctx *p, const char *fmt)
{
    int n = 0;
    while (n <= DIT_MAX_BLOCKS && find(p, fmt, n)) n++;
    return n;
}

/* An int from metadata (safetensors __metadata__ key) or config.json key, or dflt. */
static int meta_int(const probe_ctx *p, const char *meta_key, const char *json_key, int dflt)
{
    const char *v = st_set_meta_get(p->set, meta_key);
    if (v && *v) {
        char *end;
        long x = strtol(v, &end, 10);
        if (!*end && x > 0 && x < 1 << 20) return (int)x;
    }
    const cJSON *j = json_key ? cJSON_GetObjectItemCaseSensitive(p->config_json, json_key) : NULL;
    if (cJSON_IsNumber(j) && j->valuedouble > 0 && j->valuedouble < 1 << 20) return (int)j->valuedouble;
    return dflt;
}

/* FLUX axes_dim from metadata "dit.axes_dim" ("16,56,56") or config.json "axes_dims_rope". */
static int meta_axes(const probe_ctx *p, int *axes)
{
    const char *v = st_set_meta_get(p->set, "dit.axes_dim");
    if (v && sscanf(v, "%d,%d,%d", &axes[0], &axes[1], &axes[2]) == 3) return 1;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(p->config_json, "axes_dims_rope");
    if (cJSON_GetArraySize(j) == 3) {
        for (int i = 0; i < 3; i++) {
            const cJSON *a = cJSON_GetArrayItem(j, i);
            if (!cJSON_IsNumber(a)) return 0;
            axes[i] = (int)a->valuedouble;
        }
        return 1;
    }
    return 0;
}

static dit_status bad(dit_err *e, const probe_ctx *p, const char *what)
{
    return err_set(e, DIT_E_FORMAT, "%s: %s", st_set_path(p->set), what);
}

static dit_status derive_flux(const probe_ctx *p, const dit_load_opts *o, int naming, dit_config *c, dit_err *e)
{
    const int n0 = naming == 0;
    c->hidden = (int)dim_of(p, n0 ? "img_in.weight" : "x_embedder.weight", 0, 0);
    const int64_t in = dim_of(p, n0 ? "img_in.weight" : "x_embedder.weight", 0, 1);
    c->ctx_dim = (int)dim_of(p, n0 ? "txt_in.weight" : "context_embedder.weight", 0, 1);
    c->vec_dim = (int)dim_of(p, n0 ? "vector_in.in_layer.weight" : "time_text_embed.text_embedder.linear_1.weight", 0, 1);
    c->head_dim = (int)dim_of(p, n0 ? "double_blocks.%d.img_attn.norm.query_norm.scale" : "transformer_blocks.%d.attn.norm_q.weight", 0, 0);
    c->mlp = (int)dim_of(p, n0 ? "double_blocks.%d.img_mlp.0.weight" : "transformer_blocks.%d.ff.net.0.proj.weight", 0, 0);
    c->depth = count_blocks(p, n0 ? "double_blocks.%d.img_mod.lin.weight" : "transformer_blocks.%d.norm1.linear.weight");
    c->depth_single = count_blocks(p, n0 ? "single_blocks.%d.modulation.lin.weight" : "single_transformer_blocks.%d.norm.linear.weight");
    c->guidance_embed = find(p, n0 ? "guidance_in.in_layer.weight" : "time_text_embed.guidance_embedder.linear_1.weight", 0) != NULL;
    if (c->hidden <= 0 || c->ctx_dim <= 0 || c->vec_dim <= 0 || c->head_dim <= 0 || c->mlp <= 0 || in <= 0)
        return bad(e, p, "FLUX model without img_in/txt_in/vector_in/q-norm/mlp tensors of the expected rank");
    if (in % 4) return bad(e, p, "FLUX img_in input width is not 4 x latent channels (2x2 packing)");
    c->patch = 2;
    c->in_ch = (int)(in / 4);
    c->out_ch = c->final_ch = c->in_ch;
    c->heads = c->hidden / c->head_dim;
    c->qk_norm = 1;
    c->theta = 10000.0f;
    if (o->axes_dim[0] || o->axes_dim[1] || o->axes_dim[2]) memcpy(c->axes_dim, o->axes_dim, sizeof c->axes_dim);
    else if (!meta_axes(p, c->axes_dim)) {
        if (c->head_dim != 128)
            return err_set(e, DIT_E_FORMAT,
                           "%s: FLUX head_dim %d: the RoPE axes split is not in the file (metadata dit.axes_dim or "
                           "config.json axes_dims_rope); only head_dim 128 has a default [16, 56, 56]",
                           st_set_path(p->set), c->head_dim);
        c->axes_dim[0] = 16, c->axes_dim[1] = 56, c->axes_dim[2] = 56;
    }
    snprintf(c->variant, sizeof c->variant, "%s", c->guidance_embed ? "flux-dev" : "flux-schnell");
    return DIT_OK;
}

static dit_status derive_sd3(const probe_ctx *p, const dit_load_opts *o, int naming, dit_config *c, dit_err *e)
{
    const int n0 = naming == 0;
    const char *pe = n0 ? "x_embedder.proj.weight" : "pos_embed.proj.weight";
    c->hidden = (int)dim_of(p, pe, 0, 0);
    c->in_ch = (int)dim_of(p, pe, 0, 1);
    c->patch = (int)dim_of(p, pe, 0, 2);
    const int64_t pos = dim_of(p, n0 ? "pos_embed" : "pos_embed.pos_embed", 0, 1);
    c->ctx_dim = (int)dim_of(p, "context_embedder.weight", 0, 1);
    c->vec_dim = (int)dim_of(p, n0 ? "y_embedder.mlp.0.weight" : "time_text_embed.text_embedder.linear_1.weight", 0, 1);
    c->mlp = (int)dim_of(p, n0 ? "joint_blocks.%d.x_block.mlp.fc1.weight" : "transformer_blocks.%d.ff.net.0.proj.weight", 0, 0);
    c->depth = count_blocks(p, n0 ? "joint_blocks.%d.x_block.adaLN_modulation.1.weight" : "transformer_blocks.%d.norm1.linear.weight");
    const int64_t fin = dim_of(p, n0 ? "final_layer.linear.weight" : "proj_out.weight", 0, 0);
    if (c->hidden <= 0 || c->in_ch <= 0 || c->patch <= 0 || pos <= 0 || c->ctx_dim <= 0 || c->vec_dim <= 0 ||
        c->mlp <= 0 || c->depth <= 0 || fin <= 0 || dim_of(p, pe, 0, 3) != c->patch)
        return bad(e, p, "SD3 model without x_embedder/pos_embed/context_embedder/y_embedder/mlp tensors of the expected rank");
    c->pos_max = (int)llround(sqrt((double)pos));
    if ((int64_t)c->pos_max * c->pos_max != pos) return bad(e, p, "SD3 pos_embed is not a square grid");
    if (fin % ((int64_t)c->patch * c->patch)) return bad(e, p, "SD3 final_layer.linear rows are not p*p*channels");
    c->final_ch = c->out_ch = (int)(fin / ((int64_t)c->patch * c->patch));
    /* sd3_impls.BaseModel: hidden = 64 * depth, heads = depth, i.e. head_dim 64 */
    c->heads = o->heads > 0 ? o->heads : meta_int(p, "dit.heads", "num_attention_heads", c->hidden / 64);
    c->qk_norm = find(p, n0 ? "joint_blocks.%d.context_block.attn.ln_k.weight" : "transformer_blocks.%d.attn.norm_added_k.weight", 0) != NULL;
    for (int i = 0; i < c->depth && i < DIT_MAX_BLOCKS; i++)
        if (find(p, n0 ? "joint_blocks.%d.x_block.attn2.qkv.weight" : "transformer_blocks.%d.attn2.to_q.weight", i))
            c->attn2[i] = 1, c->n_attn2++;
    snprintf(c->variant, sizeof c->variant, "%s",
             c->n_attn2 ? "sd3.5-medium" : c->qk_norm ? "sd3.5-large" : "sd3-medium");
    return DIT_OK;
}

static dit_status derive_dit(const probe_ctx *p, const dit_load_opts *o, dit_config *c, dit_err *e)
{
    c->hidden = (int)dim_of(p, "x_embedder.proj.weight", 0, 0);
    c->in_ch = (int)dim_of(p, "x_embedder.proj.weight", 0, 1);
    c->patch = (int)dim_of(p, "x_embedder.proj.weight", 0, 2);
    const int64_t pos = dim_of(p, "pos_embed", 0, 1);
    const int64_t rows = dim_of(p, "y_embedder.embedding_table.weight", 0, 0);
    c->mlp = (int)dim_of(p, "blocks.%d.mlp.fc1.weight", 0, 0);
    c->depth = count_blocks(p, "blocks.%d.adaLN_modulation.1.weight");
    const int64_t fin = dim_of(p, "final_layer.linear.weight", 0, 0);
    if (c->hidden <= 0 || c->in_ch <= 0 || c->patch <= 0 || pos <= 0 || rows < 2 || c->mlp <= 0 || c->depth <= 0 ||
        fin <= 0 || dim_of(p, "x_embedder.proj.weight", 0, 3) != c->patch)
        return bad(e, p, "DiT model without x_embedder/pos_embed/y_embedder/blocks tensors of the expected rank");
    c->pos_max = (int)llround(sqrt((double)pos));
    if ((int64_t)c->pos_max * c->pos_max != pos) return bad(e, p, "DiT pos_embed is not a square grid");
    if (fin % ((int64_t)c->patch * c->patch)) return bad(e, p, "DiT final_layer.linear rows are not p*p*channels");
    c->final_ch = (int)(fin / ((int64_t)c->patch * c->patch));
    c->num_classes = (int)rows - 1;
    /* heads are not in the weights: the DiT/SiT configs by width (S 384/6, B 768/12, L 1024/16,
     * XL 1152/16), else metadata or the option must say */
    const int by_width = c->hidden == 384 ? 6 : c->hidden == 768 ? 12 : c->hidden == 1024 || c->hidden == 1152 ? 16 : 0;
    c->heads = o->heads > 0 ? o->heads : meta_int(p, "dit.heads", NULL, by_width);
    if (c->heads <= 0)
        return err_set(e, DIT_E_FORMAT,
                       "%s: DiT hidden %d is not a released width: the head count must come from metadata dit.heads "
                       "(or the heads load option)",
                       st_set_path(p->set), c->hidden);
    const char *fam = st_set_meta_get(p->set, "dit.family");
    const int sit = o->family == DIT_SIT || (o->family < 0 && fam && !strcmp(fam, "sit"));
    c->family = sit ? DIT_SIT : DIT_DIT;
    /* learn_sigma: the final layer gives 2C; DiT returns all of it, SiT the first C */
    c->out_ch = sit && c->final_ch == 2 * c->in_ch ? c->in_ch : c->final_ch;
    snprintf(c->variant, sizeof c->variant, "%s", sit ? "sit" : "dit");
    return DIT_OK;
}

/* Final checks shared by the families: sizes that the forward relies on. */
static dit_status validate(const probe_ctx *p, dit_config *c, dit_err *e)
{
    char msg[256];
    msg[0] = 0;
    if (c->heads <= 0 || c->hidden % c->heads) snprintf(msg, sizeof msg, "hidden %d is not divisible into %d heads", c->hidden, c->heads);
    else if ((c->head_dim = c->hidden / c->heads) > OPS_MAX_HEAD_DIM) snprintf(msg, sizeof msg, "head_dim %d too large", c->head_dim);
    else if (c->depth > DIT_MAX_BLOCKS || c->depth_single > DIT_MAX_BLOCKS) snprintf(msg, sizeof msg, "more than %d blocks", DIT_MAX_BLOCKS);
    else if (c->hidden > (1 << 16) || c->mlp > (1 << 18) || c->ctx_dim > (1 << 16) || c->vec_dim > (1 << 16) || c->patch > 16 ||
             c->in_ch > 1024 || c->final_ch > 1024 || c->pos_max > 4096 || c->num_classes > (1 << 20))
        snprintf(msg, sizeof msg,
                 "implausible sizes (hidden %d, mlp %d, context %d, pooled %d, patch %d, channels %d/%d, pos_embed %d, "
                 "classes %d)",
                 c->hidden, c->mlp, c->ctx_dim, c->vec_dim, c->patch, c->in_ch, c->final_ch, c->pos_max, c->num_classes);
    else if (c->family == DIT_FLUX) {
        if (c->head_dim % 2 || c->axes_dim[0] + c->axes_dim[1] + c->axes_dim[2] != c->head_dim || c->axes_dim[0] % 2 ||
            c->axes_dim[1] % 2 || c->axes_dim[2] % 2 || c->axes_dim[0] < 0 || c->axes_dim[1] < 0 || c->axes_dim[2] < 0)
            snprintf(msg, sizeof msg, "RoPE axes [%d, %d, %d] must be even and sum to head_dim %d", c->axes_dim[0], c->axes_dim[1],
                     c->axes_dim[2], c->head_dim);
    }
    if (!msg[0] && c->family == DIT_SD3 && c->depth < 1) snprintf(msg, sizeof msg, "no joint blocks");
    if (msg[0]) return err_set(e, DIT_E_FORMAT, "%s: %s model: %s", st_set_path(p->set), dit_family_name(c->family), msg);
    return DIT_OK;
}

static int is_dir(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

/* A diffusers folder (or its transformer/ subfolder) -> the weights file or index, and the
 * folder holding config.json. Anything else is returned as it is. */
static dit_status resolve_path(const char *path, char *file, size_t cap, char *dir, size_t dcap, dit_err *e)
{
    dir[0] = 0;
    if (!is_dir(path)) {
        snprintf(file, cap, "%s", path);
        return DIT_OK;
    }
    static const char *const SUB[] = { "transformer/", "" };
    static const char *const NAMES[] = { "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors" };
    for (int s = 0; s < 2; s++)
        for (int n = 0; n < 2; n++) {
            snprintf(file, cap, "%s/%s%s", path, SUB[s], NAMES[n]);
            if (is_file(file)) {
                snprintf(dir, dcap, "%s/%s", path, SUB[s]);
                return DIT_OK;
            }
        }
    return err_set(e, DIT_E_IO, "%s: a folder without transformer/diffusion_pytorch_model.safetensors (or its .index.json)", path);
}

dit_status dit_resolve_path(const char *path, char *file, size_t cap, dit_err *e)
{
    char dir[4096];
    return resolve_path(path, file, cap, dir, sizeof dir, e);
}

/* config.json beside diffusers weights: absent is fine, present but broken is an error. */
static dit_status read_config_json(const char *dir, cJSON **out, dit_err *e)
{
    *out = NULL;
    if (!dir[0]) return DIT_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    return json_read_file(path, JSON_MAX_CONFIG, out, e) < 0 ? (e ? e->code : DIT_E_FORMAT) : DIT_OK;
}

/* Open and detect: fills *set (owned by the caller), the prefix and the config. */
static dit_status open_and_detect(const char *path, const dit_load_opts *o, st_set **set, const char **prefix,
                                  dit_config *c, dit_err *e)
{
    char file[4096], dir[4096];
    *set = NULL;
    dit_status r = resolve_path(path, file, sizeof file, dir, sizeof dir, e);
    if (r) return r;
    if ((r = st_set_open(set, file, e))) return r;
    probe_ctx p = { .set = *set };
    if ((r = read_config_json(dir, &p.config_json, e))) {
        st_set_close(*set);
        *set = NULL;
        return r;
    }
    memset(c, 0, sizeof *c);
    int found = 0;
    for (size_t i = 0; i < N_ELEMS(PREFIXES) && !found; i++)
        for (size_t k = 0; k < N_ELEMS(PROBES) && !found; k++) {
            p.prefix = PREFIXES[i];
            if (find(&p, PROBES[k].key, 0)) {
                found = 1;
                c->family = PROBES[k].family;
                c->naming = PROBES[k].naming;
            }
        }
    if (!found) {
        r = err_set(e, DIT_E_FORMAT,
                    "%s: not a FLUX, SD3/SD3.5 or DiT/SiT diffusion model (no double_blocks, joint_blocks, "
                    "transformer_blocks or blocks tensors)",
                    file);
    } else if (c->family == DIT_FLUX) r = derive_flux(&p, o, c->naming, c, e);
    else if (c->family == DIT_SD3) r = derive_sd3(&p, o, c->naming, c, e);
    else r = derive_dit(&p, o, c, e);
    if (!r) r = validate(&p, c, e);
    cJSON_Delete(p.config_json);
    *prefix = p.prefix;
    if (r) {
        st_set_close(*set);
        *set = NULL;
    }
    return r;
}

dit_status dit_probe(const char *path, const dit_load_opts *o, dit_config *out, dit_err *e)
{
    const dit_load_opts d = dit_load_defaults();
    st_set *set;
    const char *prefix;
    const dit_status r = open_and_detect(path, o ? o : &d, &set, &prefix, out, e);
    st_set_close(set);
    return r;
}

void dit_config_describe(const dit_config *c, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s (%s names): ", c->variant, c->naming ? "diffusers" : "released");
    if (n < 0 || (size_t)n >= cap) return;
    if (c->family == DIT_FLUX)
        n += snprintf(buf + n, cap - n,
                      "%d double + %d single blocks, hidden %d, %d heads x %d, mlp %d, context %d, pooled %d, "
                      "latent %d ch, RoPE axes [%d, %d, %d]%s",
                      c->depth, c->depth_single, c->hidden, c->heads, c->head_dim, c->mlp, c->ctx_dim, c->vec_dim,
                      c->in_ch, c->axes_dim[0], c->axes_dim[1], c->axes_dim[2], c->guidance_embed ? ", guidance embedding" : "");
    else if (c->family == DIT_SD3) {
        n += snprintf(buf + n, cap - n,
                      "%d joint blocks, hidden %d, %d heads x %d, mlp %d, patch %d, pos_embed %dx%d, context %d, "
                      "pooled %d, latent %d ch, qk-norm %s",
                      c->depth, c->hidden, c->heads, c->head_dim, c->mlp, c->patch, c->pos_max, c->pos_max, c->ctx_dim,
                      c->vec_dim, c->in_ch, c->qk_norm ? "rms" : "none");
        if (c->n_attn2 && n > 0 && (size_t)n < cap) {
            n += snprintf(buf + n, cap - n, ", attn2 in blocks");
            for (int i = 0; i < c->depth && n > 0 && (size_t)n < cap; i++)
                if (c->attn2[i]) n += snprintf(buf + n, cap - n, " %d", i);
        }
    } else
        n += snprintf(buf + n, cap - n,
                      "%d blocks, hidden %d, %d heads x %d, mlp %d, patch %d, %dx%d tokens, %d classes (+ null), "
                      "latent %d ch, returns %d ch",
                      c->depth, c->hidden, c->heads, c->head_dim, c->mlp, c->patch, c->pos_max, c->pos_max, c->num_classes,
                      c->in_ch, c->out_ch);
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* Walk every table the configuration needs, in load order, calling fn for each (table, struct,
 * block index): the loader fills the model this way, and dit_enumerate lists the tensors. */
typedef dit_status (*table_fn)(void *user, void *obj, const wt_spec *spec, int n, int i);

static void fill_dims(const dit_config *c, int *dims)
{
    memset(dims, 0, sizeof(int) * N_SYMS);
    dims[HID] = c->hidden, dims[MLP] = c->mlp, dims[HD] = c->head_dim, dims[CTX] = c->ctx_dim, dims[VEC] = c->vec_dim;
    dims[FINAL] = c->patch * c->patch * c->final_ch;
    dims[IN] = c->family == DIT_FLUX ? 4 * c->in_ch : c->in_ch * c->patch * c->patch;
    dims[LIN1] = 3 * c->hidden + c->mlp, dims[LIN2] = c->hidden + c->mlp;
    dims[POS] = c->pos_max * c->pos_max, dims[NCLS] = c->num_classes + 1;
}

static dit_status walk(const dit_config *c, dit_model *m, int *dims, table_fn fn, void *user)
{
    dit_status r = DIT_OK;
#define T(obj, spec, i) fn(user, (obj), (spec), N_ELEMS(spec), (i))
    if (c->family == DIT_FLUX) {
        r = T(m, FLUX_TOP, 0);
        if (!r && c->guidance_embed) r = T(m, FLUX_GUIDANCE, 0);
        for (int i = 0; !r && i < c->depth; i++) r = T(m ? &m->dbl[i] : NULL, FLUX_DOUBLE, i);
        for (int i = 0; !r && i < c->depth_single; i++) r = T(m ? &m->sgl[i] : NULL, FLUX_SINGLE, i);
    } else if (c->family == DIT_SD3) {
        r = T(m, SD3_TOP, 0);
        for (int i = 0; !r && i < c->depth; i++) {
            dit_double *b = m ? &m->dbl[i] : NULL;
            const int attn2 = c->attn2[i], pre_only = i == c->depth - 1;
            if (m) b->has_attn2 = attn2, b->txt_pre_only = pre_only;
            dims[MODX] = (attn2 ? 9 : 6) * c->hidden;
            r = T(b, SD3_X, i);
            if (!r) r = pre_only ? T(b, SD3_CTX_PRE_ONLY, i) : T(b, SD3_CTX, i);
            if (!r && c->qk_norm) r = T(b, SD3_X_QK, i);
            if (!r && c->qk_norm) r = T(b, SD3_CTX_QK, i);
            if (!r && attn2) r = T(b, SD3_ATTN2, i);
            if (!r && attn2 && c->qk_norm) r = T(b, SD3_ATTN2_QK, i);
        }
    } else {
        r = T(m, DIT_TOP, 0);
        for (int i = 0; !r && i < c->depth; i++) r = T(m ? &m->dbl[i] : NULL, DIT_BLOCK, i);
    }
#undef T
    return r;
}

static dit_status load_table(void *user, void *obj, const wt_spec *spec, int n, int i)
{
    return wt_load(user, obj, spec, n, i, 0);
}

static dit_status load_weights(dit_model *m, const char *prefix, ops_ctx *ctx, dit_err *e)
{
    const dit_config *c = &m->cfg;
    int dims[N_SYMS];
    fill_dims(c, dims);
    wt_loader L;
    dit_status r = wt_loader_init(&L, m->set, prefix, c->naming, ctx, m->prec, &m->store, dims, e);
    if (r) return r;
    m->dbl = calloc(c->depth > 0 ? (size_t)c->depth : 1, sizeof *m->dbl);
    m->sgl = calloc(c->depth_single > 0 ? (size_t)c->depth_single : 1, sizeof *m->sgl);
    if (!m->dbl || !m->sgl) r = err_set(e, DIT_E_OOM, "%s: out of memory", st_set_path(m->set));
    if (!r) r = walk(c, m, dims, load_table, &L);
    if (!r) r = wt_loader_finish(&L);
    wt_loader_free(&L);
    return r;
}

typedef struct {
    const int *dims;
    const char *prefix;
    int naming;
    wt_visit fn;
    void *user;
} enum_ctx;

static dit_status enum_table(void *user, void *obj, const wt_spec *spec, int n, int i)
{
    const enum_ctx *ec = user;
    (void)obj;
    wt_enumerate(spec, n, i, 0, ec->naming, ec->dims, ec->prefix, ec->fn, ec->user);
    return DIT_OK;
}

void dit_enumerate(const dit_config *c, wt_visit fn, void *user)
{
    int dims[N_SYMS];
    fill_dims(c, dims);
    const enum_ctx ec = { dims, c->family == DIT_SD3 ? "model.diffusion_model." : "", 0, fn, user };
    walk(c, NULL, dims, enum_table, (void *)&ec);
}

dit_status dit_load(dit_model **out, const char *path, const dit_load_opts *o, dit_err *e)
{
    *out = NULL;
    const dit_load_opts d = dit_load_defaults();
    if (!o) o = &d;
    if ((unsigned)o->prec >= OPS_PREC_COUNT) return err_set(e, DIT_E_ARG, "dit_load: bad precision %d", (int)o->prec);
    dit_model *m = calloc(1, sizeof *m);
    if (!m) return err_set(e, DIT_E_OOM, "dit_load: out of memory");
    m->prec = o->prec;
    const char *prefix;
    dit_status r = open_and_detect(path, o, &m->set, &prefix, &m->cfg, e);
    if (!r) {
        ops_ctx *ctx = ops_ctx_new(e);
        if (!ctx) r = e->code ? e->code : DIT_E_BACKEND;
        else {
            r = load_weights(m, prefix, ctx, e);
            ops_ctx_free(ctx);
        }
    }
    if (r) {
        dit_free(m);
        return r;
    }
    *out = m;
    return DIT_OK;
}

void dit_free(dit_model *m)
{
    if (!m) return;
    wt_store_free(&m->store);
    free(m->dbl);
    free(m->sgl);
    st_set_close(m->set);
    free(m);
}

const dit_config *dit_model_config(const dit_model *m)
{
    return &m->cfg;
}

ops_prec dit_model_prec(const dit_model *m)
{
    return m->prec;
}

size_t dit_model_bytes(const dit_model *m)
{
    return m->store.bytes;
}
