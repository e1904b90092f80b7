/* tools/check_encoders.c — `dit check` for the clip_text/ and t5/ golden case folders: load
 * model.safetensors with the loader users get (text/clip.h, text/t5.h), run io.safetensors'
 * token ids on the f32 path and the fast bf16 path, and compare every output the io file holds:
 * CLIP embeddings, every layer, penultimate (+ final LN), last_hidden_state, pooled,
 * pooled_projected, eos_index; T5 per input set last_hidden_state and every block,
 * position_bias_<n>, rel_bucket_table. Intermediates come through the hook sites (taps for the
 * embeddings and the position bias, block_out for layers and blocks).
 * Bounds: f32 path case.json suggested_tolerance.f32_impl; bf16 path CHECK_FAST_BOUND; integer
 * tables and the position bias (copied from the stored table) exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/clip.h"
#include "text/t5.h"
#include "tools/check.h"

#define MAX_SLOTS 96

typedef struct {
    char name[80];
    const float *ref;
    float *got;
    size_t numel;
    unsigned filled; /* bit per batch row */
} slot;

typedef struct {
    slot s[MAX_SLOTS];
    int n;
    int batch;
    char set[48]; /* T5 input set ("sd3_77"), "" for CLIP */
} capture;

static slot *find_slot(capture *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->s[i].name, name)) return &c->s[i];
    return NULL;
}

/* Copy rows x cols of row b of the batch into the slot named name (when the case stores it). */
static void keep(capture *c, const char *name, int b, const float *x, int64_t rows, int cols)
{
    slot *sl = find_slot(c, name);
    const size_t per = (size_t)rows * cols;
    if (!sl) return;
    if (per == sl->numel) b = 0; /* batch-independent (the position bias) */
    else if (per * c->batch != sl->numel) return;
    memcpy(sl->got + per * b, x, sizeof(float) * per);
    sl->filled |= per == sl->numel ? (1u << c->batch) - 1 : 1u << b;
}

static void on_tap(void *user, const hook_site *s, const char *name, const float *x, int64_t rows, int cols)
{
    capture *c = user;
    char full[128];
    if (!strcmp(name, "position_bias")) snprintf(full, sizeof full, "out.position_bias_%d", s->n_txt);
    else if (c->set[0]) snprintf(full, sizeof full, "out.%s.%s", c->set, name);
    else snprintf(full, sizeof full, "out.%s", name);
    keep(c, full, s->batch, x, rows, cols);
}

static void on_block_out(void *user, const hook_site *s, float *x, int64_t rows, int dim)
{
    capture *c = user;
    char full[128];
    if (c->set[0]) snprintf(full, sizeof full, "out.%s.block%d", c->set, s->layer);
    else snprintf(full, sizeof full, "out.layer%d", s->layer);
    keep(c, full, s->batch, x, rows, dim);
}

/* A slot for every F32 out.* tensor of io whose name starts with pre. */
static int add_slots(check_run *r, capture *c, const st_file *io, const char *pre)
{
    for (int i = 0; i < st_count(io); i++) {
        const st_tensor *t = st_at(io, i);
        if (strncmp(t->name, pre, strlen(pre)) || t->dtype != ST_F32 || strlen(t->name) >= sizeof c->s[0].name) continue;
        if (c->n == MAX_SLOTS) {
            check_error(r, "%s: more than %d outputs", st_path(io), MAX_SLOTS);
            return -1;
        }
        slot *sl = &c->s[c->n++];
        memset(sl, 0, sizeof *sl);
        snprintf(sl->name, sizeof sl->name, "%s", t->name);
        sl->ref = t->data, sl->numel = (size_t)t->numel;
        sl->got = calloc(sl->numel ? sl->numel : 1, sizeof(float));
        if (!sl->got) return -1;
    }
    return 0;
}

static void free_slots(capture *c)
{
    for (int i = 0; i < c->n; i++) free(c->s[i].got);
    c->n = 0;
}

static int exact_tensor(const char *name)
{
    return strstr(name, "position_bias") != NULL;
}

static void report_slots(check_run *r, capture *c, const char *tag, double bound)
{
    for (int i = 0; i < c->n; i++) {
        slot *sl = &c->s[i];
        if (sl->filled != (1u << c->batch) - 1) {
            check_error(r, "%s: %s was not produced by the forward", tag, sl->name);
            continue;
        }
        check_report(r, tag, sl->name + 4, sl->got, sl->ref, sl->numel, exact_tensor(sl->name) ? 0 : bound);
    }
}

/* Integers compared exactly (as floats: exact below 2^24). */
static void report_ints(check_run *r, const char *tag, const char *name, const int32_t *got, const st_tensor *ref)
{
    const size_t n = (size_t)ref->numel;
    float *g = malloc(sizeof(float) * (n ? n : 1)), *w = malloc(sizeof(float) * (n ? n : 1));
    if (g && w) {
        for (size_t i = 0; i < n; i++) g[i] = (float)got[i], w[i] = (float)((const int32_t *)ref->data)[i];
        check_report(r, tag, name, g, w, n, 0);
    }
    free(g), free(w);
}

static int json_int(const cJSON *o, const char *key, int dflt)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(j) ? (int)j->valuedouble : dflt;
}

/* An I32 tensor [batch, n] of io, or NULL (error printed). */
static const int32_t *io_ids(check_run *r, const st_file *io, const char *name, int *batch, int *n)
{
    const st_tensor *t = st_find(io, name);
    if (!t || t->dtype != ST_I32 || t->nd != 2 || t->shape[0] < 1 || t->shape[0] > 16 || t->shape[1] < 1) {
        check_error(r, "%s: no I32 [batch <= 16, n] tensor '%s'", st_path(io), name);
        return NULL;
    }
    *batch = (int)t->shape[0], *n = (int)t->shape[1];
    return t->data;
}

/* ---- CLIP ------------------------------------------------------------------------------------- */

static int run_clip(check_run *r, const char *model, const st_file *io, const text_load_opts *o, const char *tag, double bound)
{
    dit_err e = { 0 };
    clip_model *m = NULL;
    if (clip_load(&m, model, o, &e)) {
        check_error(r, "%s", e.msg);
        return 1;
    }
    const clip_config *c = clip_model_config(m);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r->json, "config");
    if (o->prec == OPS_F32 || r->fast_only) {
        char desc[512];
        clip_config_describe(c, desc, sizeof desc);
        fprintf(r->out, "model: %s\n", desc);
        if (json_int(cfg, "hidden_size", -1) != c->hidden || json_int(cfg, "num_hidden_layers", -1) != c->layers ||
            json_int(cfg, "intermediate_size", -1) != c->mlp || json_int(cfg, "num_attention_heads", -1) != c->heads)
            check_error(r, "detected configuration differs from case.json");
    }
    int rc = 1, batch = 0, n = 0;
    capture *cap = calloc(1, sizeof *cap);
    clip_state *s = clip_state_new(m, &e);
    const int32_t *ids = io_ids(r, io, "in.input_ids", &batch, &n);
    if (!cap || !s || !ids) {
        if (!s) check_error(r, "%s", e.msg);
        goto done;
    }
    cap->batch = batch;
    if (add_slots(r, cap, io, "out.")) goto done;
    slot *pen = find_slot(cap, "out.penultimate"), *last = find_slot(cap, "out.last_hidden_state");
    slot *pooled = find_slot(cap, "out.pooled"), *proj = find_slot(cap, "out.pooled_projected");
    const size_t nd = (size_t)batch * n * c->hidden;
    if ((pen && pen->numel != nd) || (last && last->numel != nd) || (pooled && pooled->numel != (size_t)batch * c->hidden) ||
        (proj && proj->numel != (size_t)batch * c->proj)) {
        check_error(r, "%s: output shapes do not match the model", st_path(io));
        goto done;
    }
    hook h = { .user = cap, .tap = on_tap, .block_out = on_block_out };
    clip_input in = { .batch = batch, .n_tok = n, .ids = ids, .hooks = { &h, 1 } };
    clip_output out = { .penultimate = pen ? pen->got : NULL, .last = last ? last->got : NULL,
                        .pooled = pooled ? pooled->got : NULL, .projected = proj ? proj->got : NULL };
    if (clip_encode(m, s, &in, &out, &e)) {
        check_error(r, "forward: %s", e.msg);
        goto done;
    }
    slot *const direct[] = { pen, last, pooled, proj }; /* written by clip_encode itself */
    for (size_t i = 0; i < N_ELEMS(direct); i++)
        if (direct[i]) direct[i]->filled = (1u << batch) - 1;
    report_slots(r, cap, tag, bound);
    const st_tensor *eos = st_find(io, "out.eos_index");
    if (eos && eos->dtype == ST_I32 && eos->numel == (uint64_t)batch) {
        int32_t got[16];
        for (int b = 0; b < batch; b++) got[b] = clip_pool_index(ids + (size_t)b * n, n);
        report_ints(r, tag, "eos_index", got, eos);
    }
    rc = 0;
done:
    if (cap) free_slots(cap);
    free(cap);
    clip_state_free(s);
    clip_free(m);
    return rc;
}

/* ---- T5 --------------------------------------------------------------------------------------- */

static int run_t5(check_run *r, const char *model, const st_file *io, const text_load_opts *o, const char *tag, double bound)
{
    dit_err e = { 0 };
    t5_model *m = NULL;
    if (t5_load(&m, model, o, &e)) {
        check_error(r, "%s", e.msg);
        return 1;
    }
    const t5_config *c = t5_model_config(m);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r->json, "config");
    if (o->prec == OPS_F32 || r->fast_only) {
        char desc[512];
        t5_config_describe(c, desc, sizeof desc);
        fprintf(r->out, "model: %s\n", desc);
        if (json_int(cfg, "d_model", -1) != c->d_model || json_int(cfg, "num_layers", -1) != c->layers ||
            json_int(cfg, "d_ff", -1) != c->d_ff || json_int(cfg, "num_heads", -1) != c->heads ||
            json_int(cfg, "d_kv", c->d_kv) != c->d_kv || json_int(cfg, "relative_attention_num_buckets", c->buckets) != c->buckets)
            check_error(r, "detected configuration differs from case.json");
    }
    /* the longest input set sizes the state */
    int max_n = 1;
    for (int i = 0; i < st_count(io); i++) {
        const st_tensor *t = st_at(io, i);
        if (!strncmp(t->name, "in.", 3) && t->nd == 2 && t->shape[1] > max_n) max_n = (int)t->shape[1];
    }
    int rc = 1, n_sets = 0;
    capture *cap = calloc(1, sizeof *cap);
    t5_state *s = t5_state_new(m, max_n, &e);
    float *hidden = NULL;
    if (!cap || !s) {
        check_error(r, "%s", s ? "out of memory" : e.msg);
        goto done;
    }
    for (int i = 0; i < st_count(io); i++) {
        const char *name = st_at(io, i)->name;
        const size_t len = strlen(name);
        if (strncmp(name, "in.", 3) || len < 14 || strcmp(name + len - 10, ".input_ids") || len - 13 >= sizeof cap->set) continue;
        int batch, n;
        const int32_t *ids = io_ids(r, io, name, &batch, &n);
        if (!ids) goto done;
        free_slots(cap);
        snprintf(cap->set, sizeof cap->set, "%.*s", (int)(len - 13), name + 3);
        cap->batch = batch;
        char pre[80];
        snprintf(pre, sizeof pre, "out.%s.", cap->set);
        if (add_slots(r, cap, io, pre)) goto done;
        snprintf(pre, sizeof pre, "out.position_bias_%d", n);
        if (add_slots(r, cap, io, pre)) goto done;
        free(hidden);
        hidden = malloc(sizeof(float) * batch * n * c->d_model);
        if (!hidden) goto done;
        hook h = { .user = cap, .tap = on_tap, .block_out = on_block_out };
        t5_input in = { .batch = batch, .n_tok = n, .ids = ids, .hooks = { &h, 1 } };
        if (t5_encode(m, s, &in, hidden, &e)) {
            check_error(r, "forward (%s): %s", cap->set, e.msg);
            goto done;
        }
        char lname[128];
        snprintf(lname, sizeof lname, "out.%s.last_hidden_state", cap->set);
        for (int b = 0; b < batch; b++) keep(cap, lname, b, hidden + (size_t)b * n * c->d_model, n, c->d_model);
        report_slots(r, cap, tag, bound);
        n_sets++;
    }
    if (!n_sets) check_error(r, "%s: no in.<set>.input_ids", st_path(io));
    const st_tensor *tab = st_find(io, "out.rel_bucket_table");
    if (tab && tab->dtype == ST_I32 && tab->numel % 2 == 1 && tab->numel < 1u << 20) {
        const int half = (int)(tab->numel / 2);
        int32_t *got = malloc(sizeof(int32_t) * tab->numel);
        if (got) {
            for (int k = 0; k <= 2 * half; k++) got[k] = t5_bucket(k - half, c->buckets, c->max_distance);
            report_ints(r, tag, "rel_bucket_table", got, tab);
        }
        free(got);
    }
    rc = 0;
done:
    if (cap) free_slots(cap);
    free(cap);
    free(hidden);
    t5_state_free(s);
    t5_free(m);
    return rc;
}

int check_encoders(check_run *r)
{
    char model[4096], io_path[4096];
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(r->json, "weights");
    const cJSON *wf = cJSON_GetObjectItemCaseSensitive(w, "file");
    check_path(model, sizeof model, r->dir, cJSON_IsString(wf) ? wf->valuestring : "model.safetensors");
    check_path(io_path, sizeof io_path, r->dir, "io.safetensors");
    dit_err e = { 0 };
    st_file *io = NULL;
    if (st_open(&io, io_path, &e)) {
        check_error(r, "%s", e.msg);
        return 1;
    }
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(r->json, "family");
    const int t5 = cJSON_IsString(fam) && !strcmp(fam->valuestring, "t5");
    /* what the weights cannot tell, from case.json config (as check_dit does for DiT heads) */
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r->json, "config");
    text_load_opts o = text_load_defaults();
    o.heads = json_int(cfg, t5 ? "num_heads" : "num_attention_heads", 0);
    /* a file holding several models (the embedded default: text_encoders.clip.transformer.) */
    const cJSON *kp = cJSON_GetObjectItemCaseSensitive(w, "key_prefix");
    if (cJSON_IsString(kp) && kp->valuestring[0]) o.prefix = kp->valuestring;
    o.max_distance = json_int(cfg, "relative_attention_max_distance", 0);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(cfg, "hidden_act");
    if (cJSON_IsString(act)) o.act = !strcmp(act->valuestring, "gelu") ? TEXT_ACT_GELU : TEXT_ACT_QUICK_GELU;
    /* f32 bound: the case's suggested tolerance for an f32 implementation */
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r->json, "suggested_tolerance"), "f32_impl");
    const double f32_bound = cJSON_IsNumber(tol) && tol->valuedouble > 0 ? tol->valuedouble : 1e-4;
    int rc = 0;
    if (!r->fast_only) {
        o.prec = OPS_F32;
        rc |= t5 ? run_t5(r, model, io, &o, "f32", f32_bound) : run_clip(r, model, io, &o, "f32", f32_bound);
    }
    if (!r->ref_only) {
        o.prec = OPS_BF16;
        rc |= t5 ? run_t5(r, model, io, &o, "bf16", CHECK_FAST_BOUND) : run_clip(r, model, io, &o, "bf16", CHECK_FAST_BOUND);
    }
    st_close(io);
    return rc;
}
