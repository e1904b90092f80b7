/* tests/test_text_encoders.c — the text encoders through the library (text/clip.h, text/t5.h,
 * text/cond.h) on every golden case folder under clip_text/ and t5/ of $DIT_GOLDEN:
 *   - every output the io file holds, on the f32 path within the case's suggested tolerance and on
 *     the bf16 path within 2e-2 (intermediates caught through the hook sites);
 *   - hooks: do-nothing hooks give bit-identical outputs; the sites carry the documented shapes; an
 *     attention hook that changes the logit scale changes the output; a failing hook stops it;
 *   - loading: the SD3.5 single-file prefixes (text_encoders.clip_l/clip_g/t5xxl.transformer.) and
 *     diffusers folders (config.json, sharded index) give bit-identical outputs; missing, extra and
 *     mis-shaped tensors are errors naming the tensor and both shapes;
 *   - SD3 / FLUX conditioning assembly (shapes, placement, zero T5 fallback); the T5 bucket rule.
 * Under CI=true a missing golden folder is a failure; elsewhere the tests skip. */
#include <cJSON.h>
#include <dirent.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "text/cond.h"
#include "tests/test.h"

/* ---- golden cases ---------------------------------------------------------------------------- */

typedef struct {
    char dir[1024], model[1100], name[64];
    int t5;
    cJSON *json;
    st_file *io;
    text_load_opts o; /* heads / activation from case.json, as `dit check` does */
    double tol;       /* suggested_tolerance.f32_impl */
} gcase;

static int case_open(gcase *g, const char *family, const char *name)
{
    memset(g, 0, sizeof *g);
    snprintf(g->dir, sizeof g->dir, "%s/%s/%s", test_golden_dir(), family, name);
    snprintf(g->name, sizeof g->name, "%s/%s", family, name);
    snprintf(g->model, sizeof g->model, "%s/model.safetensors", g->dir);
    g->t5 = !strcmp(family, "t5");
    char p[1200];
    snprintf(p, sizeof p, "%s/case.json", g->dir);
    char *text = test_read_file(p, NULL);
    g->json = text ? cJSON_Parse(text) : NULL;
    free(text);
    snprintf(p, sizeof p, "%s/io.safetensors", g->dir);
    dit_err e = { 0 };
    if (!g->json || st_open(&g->io, p, &e)) return 0;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(g->json, "config");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(cfg, g->t5 ? "num_heads" : "num_attention_heads");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(cfg, "hidden_act");
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g->json, "suggested_tolerance"), "f32_impl");
    g->o = text_load_defaults();
    g->o.heads = cJSON_IsNumber(h) ? (int)h->valuedouble : 0;
    if (cJSON_IsString(act)) g->o.act = !strcmp(act->valuestring, "gelu") ? TEXT_ACT_GELU : TEXT_ACT_QUICK_GELU;
    g->tol = cJSON_IsNumber(tol) ? tol->valuedouble : 1e-4;
    return 1;
}

static void case_close(gcase *g)
{
    cJSON_Delete(g->json);
    st_close(g->io);
}

typedef void (*case_fn)(tctx *t, gcase *g);

static int each_case(tctx *t, case_fn fn)
{
    static const char *const families[] = { "clip_text", "t5" };
    int n = 0;
    if (!test_golden_present(t)) return 0;
    for (size_t f = 0; f < 2; f++) {
        char d[1024];
        snprintf(d, sizeof d, "%s/%s", test_golden_dir(), families[f]);
        DIR *dir = opendir(d);
        if (!dir) {
            CHECK(t, 0, "no %s folder", d);
            continue;
        }
        struct dirent *de;
        while ((de = readdir(dir))) {
            if (de->d_name[0] == '.') continue;
            gcase g;
            if (case_open(&g, families[f], de->d_name)) {
                fn(t, &g);
                n++;
            } else CHECK(t, 0, "%s: unreadable case", g.dir);
            case_close(&g);
        }
        closedir(dir);
    }
    CHECK(t, n >= 3, "only %d golden encoder cases found", n);
    return n;
}

/* max|a - b| / max|b| */
static double rel_err(const float *a, const float *b, size_t n)
{
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d == d)) d = INFINITY;
        e = d > e ? d : e;
        m = fabs(b[i]) > m ? fabs(b[i]) : m;
    }
    return m > 0 ? e / m : e;
}

/* ---- running a case: every out.* tensor caught by name ------------------------------------------ */

#define MAX_OUT 64
typedef struct {
    const char *set;        /* T5 input set, NULL for CLIP */
    int batch, n;
    struct {
        char name[96];
        const float *ref;
        float *got;
        size_t numel;
        int filled;
    } s[MAX_OUT];
    int n_slots;
} capture;

static float *slot_of(capture *c, const char *name, size_t numel)
{
    for (int i = 0; i < c->n_slots; i++)
        if (!strcmp(c->s[i].name, name) && c->s[i].numel == numel) return c->s[i].got;
    return NULL;
}

static void keep(capture *c, const char *name, int b, const float *x, size_t per)
{
    for (int i = 0; i < c->n_slots; i++) {
        if (strcmp(c->s[i].name, name)) continue;
        const int whole = per == c->s[i].numel; /* batch-independent (position bias) */
        if (!whole && per * c->batch != c->s[i].numel) return;
        memcpy(c->s[i].got + (whole ? 0 : per * b), x, sizeof(float) * per);
        c->s[i].filled |= whole ? (1 << c->batch) - 1 : 1 << b;
    }
}

static void cap_tap(void *u, const hook_site *s, const char *name, const float *x, int64_t rows, int cols)
{
    capture *c = u;
    char full[128];
    if (!strcmp(name, "position_bias")) snprintf(full, sizeof full, "out.position_bias_%d", s->n_txt);
    else if (c->set) snprintf(full, sizeof full, "out.%s.%s", c->set, name);
    else snprintf(full, sizeof full, "out.%s", name);
    keep(c, full, s->batch, x, (size_t)rows * cols);
}

static void cap_block(void *u, const hook_site *s, float *x, int64_t rows, int dim)
{
    capture *c = u;
    char full[128];
    if (c->set) snprintf(full, sizeof full, "out.%s.block%d", c->set, s->layer);
    else snprintf(full, sizeof full, "out.layer%d", s->layer);
    keep(c, full, s->batch, x, (size_t)rows * dim);
}

static void cap_init(capture *c, const st_file *io, const char *set, int n)
{
    memset(c, 0, sizeof *c);
    c->set = set;
    char pre[96], pb[64];
    snprintf(pre, sizeof pre, set ? "out.%s." : "out.", set);
    snprintf(pb, sizeof pb, "out.position_bias_%d", n);
    for (int i = 0; i < st_count(io) && c->n_slots < MAX_OUT; i++) {
        const st_tensor *t = st_at(io, i);
        if (t->dtype != ST_F32 || (strncmp(t->name, pre, strlen(pre)) && strcmp(t->name, pb))) continue;
        snprintf(c->s[c->n_slots].name, sizeof c->s[0].name, "%s", t->name);
        c->s[c->n_slots].ref = t->data, c->s[c->n_slots].numel = (size_t)t->numel;
        c->s[c->n_slots].got = calloc((size_t)t->numel, sizeof(float));
        c->n_slots++;
    }
}

static void cap_free(capture *c)
{
    for (int i = 0; i < c->n_slots; i++) free(c->s[i].got);
    c->n_slots = 0;
}

/* Every slot filled and within bound. */
static void cap_check(tctx *t, capture *c, const char *what, double bound)
{
    for (int i = 0; i < c->n_slots; i++) {
        const int exact = strstr(c->s[i].name, "position_bias") != NULL;
        CHECK(t, c->s[i].filled == (1 << c->batch) - 1, "%s: %s not produced", what, c->s[i].name);
        const double err = rel_err(c->s[i].got, c->s[i].ref, c->s[i].numel);
        CHECK(t, err <= (exact ? 0 : bound), "%s: %s rel err %.2e > %.2e", what, c->s[i].name, err, exact ? 0 : bound);
    }
}

static const int32_t *io_ids(const st_file *io, const char *name, int *batch, int *n)
{
    const st_tensor *t = st_find(io, name);
    if (!t || t->dtype != ST_I32 || t->nd != 2 || t->shape[0] > 8) return NULL;
    *batch = (int)t->shape[0], *n = (int)t->shape[1];
    return t->data;
}

/* CLIP: run the case's ids with hooks (may be NULL) into c (slots of the io file). */
static dit_status run_clip(const gcase *g, const char *path, const text_load_opts *o, const hook *extra, capture *c, dit_err *e)
{
    int batch, n;
    const int32_t *ids = io_ids(g->io, "in.input_ids", &batch, &n);
    if (!ids) return err_set(e, DIT_E_FORMAT, "no in.input_ids");
    cap_init(c, g->io, NULL, n);
    c->batch = batch, c->n = n;
    clip_model *m = NULL;
    dit_status r = clip_load(&m, path, o, e);
    if (r) return r;
    const clip_config *cc = clip_model_config(m);
    clip_state *s = clip_state_new(m, e);
    hook h[2] = { { .user = c, .tap = cap_tap, .block_out = cap_block } };
    if (extra) h[1] = *extra;
    clip_input in = { .batch = batch, .n_tok = n, .ids = ids, .hooks = { h, extra ? 2 : 1 } };
    const size_t nd = (size_t)batch * n * cc->hidden;
    clip_output out = { .penultimate = slot_of(c, "out.penultimate", nd), .last = slot_of(c, "out.last_hidden_state", nd),
                        .pooled = slot_of(c, "out.pooled", (size_t)batch * cc->hidden),
                        .projected = cc->proj ? slot_of(c, "out.pooled_projected", (size_t)batch * cc->proj) : NULL };
    r = s ? clip_encode(m, s, &in, &out, e) : DIT_E_OOM;
    for (int i = 0; i < c->n_slots; i++) /* written directly by clip_encode */
        if (c->s[i].got == out.penultimate || c->s[i].got == out.last || c->s[i].got == out.pooled || c->s[i].got == out.projected)
            c->s[i].filled = (1 << batch) - 1;
    /* the pooling rows */
    const st_tensor *eos = st_find(g->io, "out.eos_index");
    for (int b = 0; !r && eos && b < batch; b++)
        if (clip_pool_index(ids + (size_t)b * n, n) != ((const int32_t *)eos->data)[b]) r = err_set(e, DIT_E_SHAPE, "eos_index %d", b);
    clip_state_free(s);
    clip_free(m);
    return r;
}

/* T5: run input set `set` into c. */
static dit_status run_t5(const gcase *g, const char *path, const text_load_opts *o, const char *set, const hook *extra, capture *c,
                         dit_err *e)
{
    char in_name[96];
    snprintf(in_name, sizeof in_name, "in.%s.input_ids", set);
    int batch, n;
    const int32_t *ids = io_ids(g->io, in_name, &batch, &n);
    if (!ids) return err_set(e, DIT_E_FORMAT, "no %s", in_name);
    cap_init(c, g->io, set, n);
    c->batch = batch, c->n = n;
    t5_model *m = NULL;
    dit_status r = t5_load(&m, path, o, e);
    if (r) return r;
    const int D = t5_model_config(m)->d_model;
    t5_state *s = t5_state_new(m, n, e);
    float *hidden = malloc(sizeof(float) * batch * n * D);
    hook h[2] = { { .user = c, .tap = cap_tap, .block_out = cap_block } };
    if (extra) h[1] = *extra;
    t5_input in = { .batch = batch, .n_tok = n, .ids = ids, .hooks = { h, extra ? 2 : 1 } };
    r = s && hidden ? t5_encode(m, s, &in, hidden, e) : DIT_E_OOM;
    char last[128];
    snprintf(last, sizeof last, "out.%s.last_hidden_state", set);
    for (int b = 0; !r && b < batch; b++) keep(c, last, b, hidden + (size_t)b * n * D, (size_t)n * D);
    free(hidden);
    t5_state_free(s);
    t5_free(m);
    return r;
}

/* The T5 input sets of a case ("sd3_77", ...). */
static int t5_sets(const gcase *g, char sets[][48], int max)
{
    int k = 0;
    for (int i = 0; i < st_count(g->io) && k < max; i++) {
        const char *nm = st_at(g->io, i)->name;
        const size_t len = strlen(nm);
        if (!strncmp(nm, "in.", 3) && len > 13 && len - 13 < 48 && !strcmp(nm + len - 10, ".input_ids"))
            snprintf(sets[k++], 48, "%.*s", (int)(len - 13), nm + 3);
    }
    return k;
}

/* Run a whole case (every T5 set) on one path and check every output against the io file. */
static void golden_path(tctx *t, gcase *g, const char *path, const text_load_opts *o, double bound, const hook *extra)
{
    char what[160];
    snprintf(what, sizeof what, "%s %s", g->name, ops_prec_name(o->prec));
    capture *c = calloc(1, sizeof *c);
    dit_err e = { 0 };
    if (!g->t5) {
        CHECK(t, run_clip(g, path, o, extra, c, &e) == DIT_OK, "%s: %s", what, e.msg);
        cap_check(t, c, what, bound);
        cap_free(c);
    } else {
        char sets[8][48];
        const int ns = t5_sets(g, sets, 8);
        CHECK(t, ns > 0, "%s: no input sets", what);
        for (int k = 0; k < ns; k++) {
            CHECK(t, run_t5(g, path, o, sets[k], extra, c, &e) == DIT_OK, "%s %s: %s", what, sets[k], e.msg);
            cap_check(t, c, what, bound);
            cap_free(c);
        }
    }
    free(c);
}

static void golden(tctx *t, gcase *g)
{
    for (int pi = 0; pi < 2; pi++) {
        text_load_opts o = g->o;
        o.prec = pi ? OPS_BF16 : OPS_F32;
        golden_path(t, g, g->model, &o, pi ? 2e-2 : g->tol, NULL);
    }
    printf("  %-22s f32 within %.1e, bf16 within 2e-2 (every output)\n", g->name, g->tol);
}

static void t_golden(tctx *t)
{
    each_case(t, golden);
}

/* The T5 bucket rule: README examples and the stored table. */
static void t_bucket(tctx *t)
{
    static const int ex[][2] = { { -1, 1 }, { 0, 0 }, { 1, 17 }, { -8, 8 }, { -11, 8 }, { 8, 24 }, { 11, 24 }, { 16, 26 },
                                 { 20, 26 }, { -128, 15 }, { -1000, 15 }, { 128, 31 }, { 5000, 31 } };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        CHECK(t, t5_bucket(ex[i][0], 32, 128) == ex[i][1], "bucket(%d) = %d, expected %d", ex[i][0], t5_bucket(ex[i][0], 32, 128),
              ex[i][1]);
    if (!test_golden_present(t)) return;
    gcase g;
    if (case_open(&g, "t5", "t5_tiny")) {
        const st_tensor *tab = st_find(g.io, "out.rel_bucket_table");
        CHECK(t, tab && tab->dtype == ST_I32 && tab->numel % 2, "no rel_bucket_table");
        int bad = 0;
        const int half = tab ? (int)(tab->numel / 2) : 0;
        for (int k = 0; tab && k <= 2 * half; k++) bad += t5_bucket(k - half, 32, 128) != ((const int32_t *)tab->data)[k];
        CHECK(t, bad == 0, "%d of the stored buckets differ", bad);
    } else CHECK(t, 0, "t5/t5_tiny unreadable");
    case_close(&g);
}

/* ---- comparing two runs ----------------------------------------------------------------------- */

/* Run the case's CLIP ids, or T5 set "sd3_77", from path; every caught output concatenated
 * (caller frees), NULL on failure with e filled. */
static float *outputs(const gcase *g, const char *path, const text_load_opts *o, const hook *extra, size_t *n, dit_err *e)
{
    capture *c = calloc(1, sizeof *c);
    const dit_status r = g->t5 ? run_t5(g, path, o, "sd3_77", extra, c, e) : run_clip(g, path, o, extra, c, e);
    size_t total = 0;
    for (int i = 0; i < c->n_slots; i++) total += c->s[i].numel;
    float *all = r ? NULL : malloc(sizeof(float) * (total ? total : 1));
    *n = total;
    for (int i = 0, k = 0; all && i < c->n_slots; k += (int)c->s[i].numel, i++)
        memcpy(all + k, c->s[i].got, sizeof(float) * c->s[i].numel);
    cap_free(c);
    free(c);
    return all;
}

static int same_outputs(const gcase *g, const char *p1, const text_load_opts *o1, const hook *h1, const char *p2,
                        const text_load_opts *o2, const hook *h2, dit_err *e)
{
    size_t n1, n2;
    dit_err e2 = { 0 };
    float *a = outputs(g, p1, o1, h1, &n1, e), *b = outputs(g, p2, o2, h2, &n2, &e2);
    if (!e->code && e2.code) *e = e2;
    const int same = a && b && n1 == n2 && n1 > 0 && !memcmp(a, b, sizeof(float) * n1);
    free(a), free(b);
    return same;
}

/* ---- hooks ------------------------------------------------------------------------------------- */

static void noop_qkv(void *u, const hook_site *s, hook_attn *at) { (void)u, (void)s, (void)at; }
static int noop_attn(void *u, const hook_site *s, hook_attn *at) { return (void)u, (void)s, (void)at, 0; }
static int noop_skip(void *u, const hook_site *s) { return (void)u, (void)s, 0; }
static void noop_block(void *u, const hook_site *s, float *x, int64_t r, int d) { (void)u, (void)s, (void)x, (void)r, (void)d; }

static void hooks_noop(tctx *t, gcase *g)
{
    const hook h = { .qkv = noop_qkv, .attn = noop_attn, .attn_out = noop_qkv, .skip = noop_skip, .block_out = noop_block };
    for (int pi = 0; pi < 2; pi++) {
        text_load_opts o = g->o;
        o.prec = pi ? OPS_BF16 : OPS_F32;
        dit_err e = { 0 };
        CHECK(t, same_outputs(g, g->model, &o, NULL, g->model, &o, &h, &e), "%s %s: do-nothing hooks change the output (%s)",
              g->name, ops_prec_name(o.prec), e.msg);
    }
}

static void t_hooks_noop(tctx *t)
{
    each_case(t, hooks_noop);
}

/* Records what the sites see and checks the documented layout. */
typedef struct {
    tctx *t;
    const gcase *g;
    int attn_calls, block_calls, bad;
} recorder;

static void rec_attn(recorder *r, const hook_site *s, const hook_attn *at)
{
    const int t5 = r->g->t5, n = s->n_txt, w = s->n_heads * s->head_dim;
    const int ok = !strcmp(s->model, t5 ? "t5" : "clip") && s->kind == HOOK_BLOCK_PLAIN && s->stream == HOOK_TXT && s->n_img == 0 &&
                   s->grid_h == 0 && s->grid_w == 0 && s->block == s->layer && s->block >= 0 && s->block < s->n_blocks &&
                   s->attn == 0 && s->t == 0 && at->a.n_q == n && at->a.n_kv == n && at->a.n_heads == s->n_heads &&
                   at->a.head_dim == s->head_dim && at->a.q_stride == 3 * w && at->k == at->q + w && at->v == at->q + 2 * w &&
                   at->a.o_stride == w && at->a.causal == !t5 &&
                   (t5 ? at->a.scale == 1.0f && at->a.mask && at->a.mask_head_stride == (int64_t)n * n
                       : fabsf(at->a.scale - 1.0f / sqrtf((float)s->head_dim)) < 1e-7f && !at->a.mask);
    if (!ok && !r->bad++)
        CHECK(r->t, 0, "%s: site model %s kind %d stream %d block %d/%d n_txt %d n_img %d heads %d x %d scale %g causal %d mask %p",
              r->g->name, s->model, s->kind, s->stream, s->block, s->n_blocks, s->n_txt, s->n_img, s->n_heads, s->head_dim,
              at->a.scale, at->a.causal, (const void *)at->a.mask);
}

static int rec_attn_cb(void *u, const hook_site *s, hook_attn *at)
{
    recorder *r = u;
    rec_attn(r, s, at);
    r->attn_calls++;
    return 0;
}

static void rec_block(void *u, const hook_site *s, float *x, int64_t rows, int dim)
{
    recorder *r = u;
    (void)x;
    r->block_calls++;
    if ((rows != s->n_txt || dim <= 0 || s->stream != HOOK_TXT) && !r->bad++)
        CHECK(r->t, 0, "%s: block_out rows %lld (n_txt %d) dim %d", r->g->name, (long long)rows, s->n_txt, dim);
}

static void hook_sites(tctx *t, gcase *g)
{
    recorder r = { .t = t, .g = g };
    const hook h = { .user = &r, .attn = rec_attn_cb, .block_out = rec_block };
    size_t n;
    dit_err e = { 0 };
    text_load_opts o = g->o;
    o.prec = OPS_F32;
    float *out = outputs(g, g->model, &o, &h, &n, &e);
    CHECK(t, out != NULL, "%s: %s", g->name, e.msg);
    free(out);
    const int layers = (int)cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g->json, "config"),
                                                              g->t5 ? "num_layers" : "num_hidden_layers")->valuedouble;
    const int batch = (int)st_find(g->io, g->t5 ? "in.sd3_77.input_ids" : "in.input_ids")->shape[0];
    CHECK(t, r.attn_calls == layers * batch && r.block_calls == layers * batch, "%s: %d attention and %d block calls, expected %d",
          g->name, r.attn_calls, r.block_calls, layers * batch);
    CHECK(t, r.bad == 0, "%s: %d bad sites", g->name, r.bad);
}

static void t_hook_sites(tctx *t)
{
    each_case(t, hook_sites);
}

/* ERG-style: halve the logit scale in layer 1; and a failing hook stops the forward. */
static int half_scale(void *u, const hook_site *s, hook_attn *at)
{
    (void)u;
    if (s->block == 1) at->a.scale *= 0.5f;
    return 0;
}
static int fail_attn(void *u, const hook_site *s, hook_attn *at) { return (void)u, (void)s, (void)at, -1; }

static void hook_effects(tctx *t, gcase *g)
{
    text_load_opts o = g->o;
    o.prec = OPS_F32;
    const hook half = { .attn = half_scale }, fail = { .attn = fail_attn };
    dit_err e = { 0 };
    CHECK(t, !same_outputs(g, g->model, &o, NULL, g->model, &o, &half, &e) && !e.code, "%s: scaling the logits changed nothing (%s)",
          g->name, e.msg);
    size_t n;
    memset(&e, 0, sizeof e);
    float *out = outputs(g, g->model, &o, &fail, &n, &e);
    CHECK(t, !out && e.code == DIT_E_ARG && strstr(e.msg, "hook"), "%s: failing hook: %s", g->name, e.msg);
    free(out);
}

static void t_hook_effects(tctx *t)
{
    each_case(t, hook_effects);
}

/* ---- loading: SD3.5 single file, diffusers folders, bad files ---------------------------------- */

/* Copy every tensor of src into w under prefix (dropping `drop`, reshaping `reshape` by swapping
 * its two dims); also under name `alias` a second copy of tensor `dup`. */
static void copy_into(st_writer *w, const st_file *src, const char *prefix, const char *drop, const char *reshape, dit_err *e)
{
    for (int i = 0; i < st_count(src); i++) {
        const st_tensor *t = st_at(src, i);
        if (drop && !strcmp(t->name, drop)) continue;
        int64_t shape[8];
        for (int d = 0; d < t->nd; d++) shape[d] = t->shape[d];
        if (reshape && !strcmp(t->name, reshape) && t->nd == 2) shape[0] = t->shape[1], shape[1] = t->shape[0];
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        st_writer_add(w, name, t->dtype, t->nd, shape, t->data, e);
    }
}

static int golden_model(st_file **f, const char *rel)
{
    char p[1200];
    dit_err e = { 0 };
    snprintf(p, sizeof p, "%s/%s/model.safetensors", test_golden_dir(), rel);
    return st_open(f, p, &e) == DIT_OK;
}

static void t_single_file(tctx *t)
{
    if (!test_golden_present(t)) return;
    gcase gl, gg, gt;
    st_file *fl = NULL, *fg = NULL, *ft = NULL;
    const int ok = case_open(&gl, "clip_text", "clip_l_tiny") && case_open(&gg, "clip_text", "clip_g_tiny") &&
                   case_open(&gt, "t5", "t5_tiny") && golden_model(&fl, "clip_text/clip_l_tiny") &&
                   golden_model(&fg, "clip_text/clip_g_tiny") && golden_model(&ft, "t5/t5_tiny");
    CHECK(t, ok, "golden cases unreadable");
    char path[256];
    snprintf(path, sizeof path, "/tmp/dit_test_sd35_%d.safetensors", (int)getpid());
    dit_err e = { 0 };
    if (ok) { /* an SD3.5 checkpoint with its text encoders (and a diffusion-model tensor) */
        st_writer *w = st_writer_new();
        copy_into(w, fl, TEXT_PREFIX_CLIP_L, NULL, NULL, &e);
        copy_into(w, fg, TEXT_PREFIX_CLIP_G, NULL, NULL, &e);
        copy_into(w, ft, TEXT_PREFIX_T5XXL, NULL, NULL, &e);
        const st_tensor *sh = st_find(ft, "shared.weight"); /* tied copy under the other name */
        st_writer_add(w, TEXT_PREFIX_T5XXL "encoder.embed_tokens.weight", sh->dtype, 2, sh->shape, sh->data, &e);
        static const float one = 1;
        st_writer_add(w, "model.diffusion_model.x_embedder.proj.bias", ST_F32, 1, (int64_t[]){ 1 }, &one, &e);
        CHECK(t, st_writer_save(w, path, &e) == DIT_OK, "%s", e.msg);
        st_writer_free(w);
        text_load_opts o = gl.o;
        o.prefix = TEXT_PREFIX_CLIP_L;
        CHECK(t, same_outputs(&gl, gl.model, &gl.o, NULL, path, &o, NULL, &e), "clip_l under its prefix differs: %s", e.msg);
        o = gg.o;
        o.prefix = TEXT_PREFIX_CLIP_G;
        CHECK(t, same_outputs(&gg, gg.model, &gg.o, NULL, path, &o, NULL, &e), "clip_g under its prefix differs: %s", e.msg);
        CHECK(t, same_outputs(&gt, gt.model, &gt.o, NULL, path, &gt.o, NULL, &e), "t5 (prefix found) differs: %s", e.msg);
        clip_model *m = NULL;
        memset(&e, 0, sizeof e);
        CHECK(t, clip_load(&m, path, &gl.o, &e) == DIT_E_ARG && !m && strstr(e.msg, "several"), "two CLIPs, no prefix: %s", e.msg);
        o = gl.o;
        o.prefix = "text_encoders.clip_x.";
        CHECK(t, clip_load(&m, path, &o, &e) == DIT_E_FORMAT && strstr(e.msg, "clip_x"), "bad prefix: %s", e.msg);
    }
    unlink(path);
    st_close(fl), st_close(fg), st_close(ft);
    case_close(&gl), case_close(&gg), case_close(&gt);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static void t_diffusers(tctx *t)
{
    if (!test_golden_present(t)) return;
    gcase gg, gt;
    st_file *fg = NULL, *ft = NULL;
    const int ok = case_open(&gg, "clip_text", "clip_g_tiny") && case_open(&gt, "t5", "t5_tiny") &&
                   golden_model(&fg, "clip_text/clip_g_tiny") && golden_model(&ft, "t5/t5_tiny");
    CHECK(t, ok, "golden cases unreadable");
    char root[256], d2[300], d3[300], p[400];
    snprintf(root, sizeof root, "/tmp/dit_test_text_diffusers_%d", (int)getpid());
    snprintf(d2, sizeof d2, "%s/text_encoder_2", root);
    snprintf(d3, sizeof d3, "%s/text_encoder_3", root);
    mkdir(root, 0700), mkdir(d2, 0700), mkdir(d3, 0700);
    dit_err e = { 0 };
    if (ok) {
        /* text_encoder_2: CLIPTextModelWithProjection, heads and activation only in config.json */
        st_writer *w = st_writer_new();
        copy_into(w, fg, "", NULL, NULL, &e);
        snprintf(p, sizeof p, "%s/model.safetensors", d2);
        CHECK(t, st_writer_save(w, p, &e) == DIT_OK, "%s", e.msg);
        st_writer_free(w);
        snprintf(p, sizeof p, "%s/config.json", d2);
        write_text(p, "{\"architectures\": [\"CLIPTextModelWithProjection\"], \"hidden_act\": \"gelu\", \"num_attention_heads\": 4}\n");
        text_load_opts o = text_load_defaults();
        o.prec = OPS_F32;
        gg.o.prec = OPS_F32;
        CHECK(t, same_outputs(&gg, gg.model, &gg.o, NULL, d2, &o, NULL, &e), "text_encoder_2 folder differs: %s", e.msg);
        /* text_encoder_3: T5EncoderModel in two shards with an index */
        st_writer *ws[2] = { st_writer_new(), st_writer_new() };
        FILE *idx;
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", d3);
        idx = fopen(p, "w");
        fprintf(idx, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
        for (int i = 0; i < st_count(ft); i++) {
            const st_tensor *tt = st_at(ft, i);
            st_writer_add(ws[i % 2], tt->name, tt->dtype, tt->nd, tt->shape, tt->data, &e);
            fprintf(idx, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", tt->name, i % 2 + 1);
        }
        fprintf(idx, "}}\n");
        fclose(idx);
        for (int k = 0; k < 2; k++) {
            snprintf(p, sizeof p, "%s/model-0000%d-of-00002.safetensors", d3, k + 1);
            CHECK(t, st_writer_save(ws[k], p, &e) == DIT_OK, "%s", e.msg);
            st_writer_free(ws[k]);
        }
        snprintf(p, sizeof p, "%s/config.json", d3);
        write_text(p, "{\"architectures\": [\"T5EncoderModel\"], \"num_heads\": 2, \"relative_attention_max_distance\": 128}\n");
        gt.o.prec = OPS_F32;
        CHECK(t, same_outputs(&gt, gt.model, &gt.o, NULL, d3, &o, NULL, &e), "text_encoder_3 folder differs: %s", e.msg);
        /* a stated head count that contradicts the weights is an error */
        write_text(p, "{\"num_heads\": 4}\n");
        t5_model *m = NULL;
        CHECK(t, t5_load(&m, d3, &o, &e) == DIT_E_FORMAT && strstr(e.msg, "4 heads stated"), "wrong heads: %s", e.msg);
        clip_model *cm = NULL;
        CHECK(t, clip_load(&cm, root, &o, &e) == DIT_E_IO && strstr(e.msg, "model.safetensors"), "root folder: %s", e.msg);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(t, system(cmd) == 0, "rm");
    st_close(fg), st_close(ft);
    case_close(&gg), case_close(&gt);
}

static void t_bad_files(tctx *t)
{
    if (!test_golden_present(t)) return;
    char dst[256];
    snprintf(dst, sizeof dst, "/tmp/dit_test_text_bad_%d.safetensors", (int)getpid());
    static const struct {
        const char *rel, *drop, *extra, *reshape, *want1, *want2;
    } cases[] = {
        { "clip_text/clip_l_tiny", "text_model.encoder.layers.1.mlp.fc2.weight", NULL, NULL,
          "missing tensor 'text_model.encoder.layers.1.mlp.fc2.weight'", "[32, 128]" },
        { "clip_text/clip_l_tiny", NULL, "text_model.encoder.layers.0.lora.weight", NULL,
          "unexpected tensor 'text_model.encoder.layers.0.lora.weight'", "[1]" },
        { "clip_text/clip_g_tiny", NULL, NULL, "text_model.encoder.layers.2.mlp.fc1.weight",
          "'text_model.encoder.layers.2.mlp.fc1.weight' has shape [32, 96]", "expected [96, 32]" },
        { "clip_text/clip_g_tiny", NULL, NULL, "text_model.embeddings.position_embedding.weight",
          "'text_model.embeddings.position_embedding.weight' has shape [32, 77]", "expected [32, 32]" },
        { "t5/t5_tiny", "encoder.block.2.layer.1.DenseReluDense.wi_1.weight", NULL, NULL,
          "missing tensor 'encoder.block.2.layer.1.DenseReluDense.wi_1.weight'", "[160, 32]" },
        { "t5/t5_tiny", NULL, NULL, "encoder.block.1.layer.1.DenseReluDense.wo.weight",
          "'encoder.block.1.layer.1.DenseReluDense.wo.weight' has shape [80, 32]", "expected [32, 80]" },
        { "t5/t5_tiny", "encoder.final_layer_norm.weight", NULL, NULL, "missing tensor 'encoder.final_layer_norm.weight'", "[32]" },
        { "t5/t5_tiny", NULL, "encoder.block.0.layer.1.extra", NULL, "unexpected tensor 'encoder.block.0.layer.1.extra'", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_file *f = NULL;
        dit_err e = { 0 };
        CHECK(t, golden_model(&f, cases[i].rel), "%s", cases[i].rel);
        if (!f) continue;
        st_writer *w = st_writer_new();
        copy_into(w, f, "", cases[i].drop, cases[i].reshape, &e);
        static const float one = 1;
        if (cases[i].extra) st_writer_add(w, cases[i].extra, ST_F32, 1, (int64_t[]){ 1 }, &one, &e);
        CHECK(t, st_writer_save(w, dst, &e) == DIT_OK, "%s", e.msg);
        st_writer_free(w);
        st_close(f);
        text_load_opts o = text_load_defaults();
        o.heads = 2;
        memset(&e, 0, sizeof e);
        dit_status r;
        if (!strncmp(cases[i].rel, "t5", 2)) {
            t5_model *m = NULL;
            r = t5_load(&m, dst, &o, &e);
            CHECK(t, !m, "loaded");
            t5_free(m);
        } else {
            clip_model *m = NULL;
            r = clip_load(&m, dst, &o, &e);
            CHECK(t, !m, "loaded");
            clip_free(m);
        }
        CHECK(t, r != DIT_OK && strstr(e.msg, dst) && strstr(e.msg, cases[i].want1) && strstr(e.msg, cases[i].want2), "case %zu: %s", i,
              e.msg);
    }
    /* not an encoder; a missing file; bad ids */
    clip_model *m = NULL;
    dit_err e = { 0 };
    char src[1200];
    snprintf(src, sizeof src, "%s/t5/t5_tiny/model.safetensors", test_golden_dir());
    CHECK(t, clip_load(&m, src, NULL, &e) == DIT_E_FORMAT && strstr(e.msg, "not a CLIP"), "t5 as clip: %s", e.msg);
    CHECK(t, clip_load(&m, "/nonexistent/clip_l.safetensors", NULL, &e) == DIT_E_IO, "missing: %s", e.msg);
    snprintf(src, sizeof src, "%s/clip_text/clip_l_tiny/model.safetensors", test_golden_dir());
    text_load_opts o = text_load_defaults();
    o.heads = 2;
    CHECK(t, clip_load(&m, src, &o, &e) == DIT_OK, "%s", e.msg);
    clip_state *s = m ? clip_state_new(m, &e) : NULL;
    if (s) {
        int32_t ids[77] = { 49406, 49408 };
        float pooled[32];
        clip_input in = { .batch = 1, .n_tok = 77, .ids = ids };
        clip_output out = { .pooled = pooled };
        CHECK(t, clip_encode(m, s, &in, &out, &e) == DIT_E_ARG && strstr(e.msg, "49408"), "bad id: %s", e.msg);
        ids[1] = 1, in.n_tok = 78;
        CHECK(t, clip_encode(m, s, &in, &out, &e) == DIT_E_ARG, "78 tokens: %s", e.msg);
        clip_output proj = { .projected = pooled };
        in.n_tok = 77;
        CHECK(t, clip_encode(m, s, &in, &proj, &e) == DIT_E_ARG && strstr(e.msg, "projection"), "no projection: %s", e.msg);
    }
    clip_state_free(s);
    clip_free(m);
    unlink(dst);
}

/* ---- conditioning assembly -------------------------------------------------------------------- */

static void t_condition(tctx *t)
{
    if (!test_golden_present(t)) return;
    gcase gl, gg, gt;
    const int ok = case_open(&gl, "clip_text", "clip_l_tiny") && case_open(&gg, "clip_text", "clip_g_tiny") &&
                   case_open(&gt, "t5", "t5_tiny");
    CHECK(t, ok, "golden cases unreadable");
    clip_model *l = NULL, *g = NULL;
    t5_model *t5 = NULL;
    dit_err e = { 0 };
    gl.o.prec = gg.o.prec = gt.o.prec = OPS_F32;
    if (ok && !clip_load(&l, gl.model, &gl.o, &e) && !clip_load(&g, gg.model, &gg.o, &e) && !t5_load(&t5, gt.model, &gt.o, &e)) {
        text_encoders te = { .clip_l = l, .clip_l_state = clip_state_new(l, &e), .clip_g = g, .clip_g_state = clip_state_new(g, &e),
                             .t5 = t5, .t5_state = t5_state_new(t5, 512, &e), .ctx_dim = 64 };
        /* the golden rows 0 of each case: CLIP ids [77], T5 sd3_77 row 0 */
        const int32_t *ids_l = st_find(gl.io, "in.input_ids")->data, *ids_g = st_find(gg.io, "in.input_ids")->data;
        const int32_t *ids_t = st_find(gt.io, "in.sd3_77.input_ids")->data;
        const float *pen_l = st_find(gl.io, "out.penultimate")->data, *pen_g = st_find(gg.io, "out.penultimate")->data;
        const float *pool_l = st_find(gl.io, "out.pooled")->data, *proj_g = st_find(gg.io, "out.pooled_projected")->data;
        const float *t5_ref = st_find(gt.io, "out.sd3_77.last_hidden_state")->data;
        const int n_ctx = text_sd3_context_len(&te, 77), W = text_sd3_context_dim(&te), P = text_sd3_pooled_dim(&te);
        CHECK(t, n_ctx == 154 && W == 64 && P == 64, "sizes %d x %d, pooled %d", n_ctx, W, P);
        float *ctx = malloc(sizeof(float) * 154 * 64), pooled[64], pooled_flux[32];
        text_cond_info info;
        CHECK(t, text_sd3_condition(&te, ids_l, ids_g, ids_t, 77, NULL, ctx, pooled, &info, &e) == DIT_OK, "%s", e.msg);
        CHECK(t, info.n_ctx == 154 && info.ctx_dim == 64 && info.pooled_dim == 64 && !info.t5_missing, "info");
        /* rows 0..76: [L pen | G pen]; 77..: T5 (32) | zeros; pooled = L pooled | G projected */
        double el = 0, eg = 0, et = 0, ez = 0;
        for (int r = 0; r < 77; r++)
            for (int c = 0; c < 32; c++) {
                el = fmax(el, fabs(ctx[r * 64 + c] - pen_l[r * 32 + c]));
                eg = fmax(eg, fabs(ctx[r * 64 + 32 + c] - pen_g[r * 32 + c]));
                et = fmax(et, fabs(ctx[(77 + r) * 64 + c] - t5_ref[r * 32 + c]));
                ez = fmax(ez, fabs(ctx[(77 + r) * 64 + 32 + c]));
            }
        const double ep = fmax(rel_err(pooled, pool_l, 32), rel_err(pooled + 32, proj_g, 32));
        CHECK(t, el < 1e-4 && eg < 1e-4 && et < 1e-4 && ez == 0 && ep < 1e-4, "SD3 context: L %.1e G %.1e T5 %.1e pad %.1e pooled %.1e",
              el, eg, et, ez, ep);
        /* no T5: 77 zero rows and the flag */
        te.t5 = NULL;
        CHECK(t, text_sd3_context_len(&te, 300) == 154, "zero T5 rows: %d", text_sd3_context_len(&te, 300));
        for (int i = 0; i < 154 * 64; i++) ctx[i] = NAN;
        CHECK(t, text_sd3_condition(&te, ids_l, ids_g, NULL, 0, NULL, ctx, pooled, &info, &e) == DIT_OK && info.t5_missing, "%s",
              e.msg);
        int zeros = 1;
        for (int i = 77 * 64; i < 154 * 64; i++) zeros &= ctx[i] == 0;
        CHECK(t, zeros && ctx[0] == ctx[0] && fabs(ctx[0] - pen_l[0]) < 1e-4, "zero T5 part");
        te.ctx_dim = 48;
        CHECK(t, text_sd3_condition(&te, ids_l, ids_g, NULL, 0, NULL, ctx, pooled, &info, &e) == DIT_E_ARG, "too narrow: %s", e.msg);
        /* FLUX: T5 sequence and CLIP-L pooled (the flux_256 row 0) */
        te.t5 = t5, te.ctx_dim = 0;
        const int32_t *ids_f = st_find(gt.io, "in.flux_256.input_ids")->data;
        const float *flux_ref = st_find(gt.io, "out.flux_256.last_hidden_state")->data;
        float *fctx = malloc(sizeof(float) * 256 * 32);
        CHECK(t, text_flux_condition(&te, ids_l, ids_f, 256, NULL, fctx, pooled_flux, &info, &e) == DIT_OK, "%s", e.msg);
        CHECK(t, info.n_ctx == 256 && info.ctx_dim == 32 && info.pooled_dim == 32, "FLUX info %d %d %d", info.n_ctx, info.ctx_dim,
              info.pooled_dim);
        CHECK(t, rel_err(fctx, flux_ref, 256 * 32) < 1e-4 && rel_err(pooled_flux, pool_l, 32) < 1e-4, "FLUX values");
        te.t5 = NULL;
        CHECK(t, text_flux_condition(&te, ids_l, ids_f, 256, NULL, fctx, pooled_flux, &info, &e) == DIT_E_ARG, "FLUX without T5");
        free(ctx), free(fctx);
        clip_state_free(te.clip_l_state), clip_state_free(te.clip_g_state), t5_state_free(te.t5_state);
    } else CHECK(t, 0, "load: %s", e.msg);
    clip_free(l), clip_free(g), t5_free(t5);
    case_close(&gl), case_close(&gg), case_close(&gt);
}

int main(void)
{
    tctx t = test_begin("text_encoders");
    RUN(&t, t_golden);
    RUN(&t, t_bucket);
    RUN(&t, t_hooks_noop);
    RUN(&t, t_hook_sites);
    RUN(&t, t_hook_effects);
    RUN(&t, t_single_file);
    RUN(&t, t_diffusers);
    RUN(&t, t_bad_files);
    RUN(&t, t_condition);
    return test_end(&t);
}
