/* tests/test_dit.c — the forward passes through the library (dit/dit.h) on every golden case
 * folder under flux/, sd3/ and dit/ of $DIT_GOLDEN:
 *   - out.v on the f32 path within the case's tolerance, on the bf16 path within 2e-2;
 *   - hooks: a pass whose hooks do nothing is bit-identical to a pass without hooks; every site
 *     sees the documented shapes and layout; a hook that computes attention itself (or skips a
 *     block, or fails) does what it says;
 *   - loading: the same weights renamed to diffusers' layout (separate q/k/v, swapped
 *     norm_out, sharded with an index, config.json) give bit-identical output; missing, extra,
 *     mis-shaped tensors are errors that name the tensor and both shapes.
 * Under CI=true a missing golden folder is a failure; elsewhere the tests skip. */
#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "dit/dit.h"
#include "tests/test.h"

/* ---- golden cases ---------------------------------------------------------------------------- */

typedef struct {
    char dir[1024], model[1100], name[64];
    cJSON *json;
    st_file *io;
    dit_load_opts opts; /* heads / family / axes from case.json, as `dit check` does */
    int B, C, H, W, n_ctx;
    const float *x, *t, *ctx, *y, *g, *v;
    int *labels;
    double tol_v;
} gcase;

static int json_num(const cJSON *o, const char *k, double *out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(j)) return 0;
    *out = j->valuedouble;
    return 1;
}

static const float *io_f32(const gcase *g, const char *name)
{
    const st_tensor *t = st_find(g->io, name);
    return t && t->dtype == ST_F32 ? t->data : NULL;
}

static int case_open(gcase *g, const char *family, const char *name)
{
    memset(g, 0, sizeof *g);
    snprintf(g->dir, sizeof g->dir, "%s/%s/%s", test_golden_dir(), family, name);
    snprintf(g->name, sizeof g->name, "%s/%s", family, name);
    snprintf(g->model, sizeof g->model, "%s/model.safetensors", g->dir);
    char p[1200];
    snprintf(p, sizeof p, "%s/case.json", g->dir);
    char *text = test_read_file(p, NULL);
    g->json = text ? cJSON_Parse(text) : NULL;
    free(text);
    snprintf(p, sizeof p, "%s/io.safetensors", g->dir);
    dit_err e = { 0 };
    if (!g->json || st_open(&g->io, p, &e)) return 0;
    const st_tensor *x = st_find(g->io, "in.x"), *c = st_find(g->io, "in.context");
    if (!x || x->nd != 4 || x->shape[0] < 1 || x->shape[0] > 1024) return 0;
    g->B = (int)x->shape[0], g->C = (int)x->shape[1], g->H = (int)x->shape[2], g->W = (int)x->shape[3];
    g->n_ctx = c && c->nd == 3 ? (int)c->shape[1] : 0;
    g->x = io_f32(g, "in.x"), g->t = io_f32(g, "in.t"), g->v = io_f32(g, "out.v");
    g->ctx = io_f32(g, "in.context"), g->y = io_f32(g, "in.y"), g->g = io_f32(g, "in.guidance");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(g->json, "config");
    g->opts = dit_load_defaults();
    double d;
    if (!strcmp(family, "dit")) {
        if (json_num(cfg, "num_heads", &d)) g->opts.heads = (int)d;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cfg, "model");
        g->opts.family = cJSON_IsString(m) && !strcmp(m->valuestring, "SiT") ? DIT_SIT : DIT_DIT;
        g->labels = calloc((size_t)g->B, sizeof(int));
        for (int b = 0; b < g->B && g->y && g->labels; b++) g->labels[b] = (int)g->y[b];
    }
    const cJSON *ax = cJSON_GetObjectItemCaseSensitive(cfg, "axes_dim");
    for (int i = 0; i < 3 && cJSON_GetArraySize(ax) == 3; i++) g->opts.axes_dim[i] = (int)cJSON_GetArrayItem(ax, i)->valuedouble;
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g->json, "tolerance"), "per_tensor");
    g->tol_v = json_num(cJSON_GetObjectItemCaseSensitive(tol, "out.v"), "rel_to_max", &d) ? d : 1e-5;
    return g->x && g->t && g->v;
}

static void case_close(gcase *g)
{
    free(g->labels);
    cJSON_Delete(g->json);
    st_close(g->io);
}

static dit_input case_input(const gcase *g)
{
    dit_input in = { .batch = g->B, .H = g->H, .W = g->W, .x = g->x, .t = g->t, .context = g->ctx,
                     .n_ctx = g->n_ctx, .pooled = g->y, .guidance = g->g, .labels = g->labels };
    return in;
}

typedef void (*case_fn)(tctx *t, gcase *g);

static int each_case(tctx *t, case_fn fn)
{
    static const char *const families[] = { "flux", "sd3", "dit" };
    int n = 0;
    if (!test_golden_present(t)) return 0;
    for (size_t f = 0; f < 3; f++) {
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
    CHECK(t, n >= 7, "only %d golden model cases found", n);
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

/* Load, run, return the output (caller frees) or NULL with the error in e. */
static float *run(const char *path, const dit_load_opts *o, const gcase *g, const hook_list *hooks, size_t *nv,
                  dit_err *e)
{
    dit_model *m = NULL;
    if (dit_load(&m, path, o, e)) return NULL;
    const dit_config *c = dit_model_config(m);
    *nv = (size_t)g->B * c->out_ch * g->H * g->W;
    float *v = malloc(sizeof(float) * *nv);
    dit_state *s = dit_state_new(m, g->H, g->W, g->n_ctx, e);
    dit_input in = case_input(g);
    if (hooks) in.hooks = *hooks;
    if (!v || !s || dit_forward(m, s, &in, v, e)) {
        free(v);
        v = NULL;
    }
    dit_state_free(s);
    dit_free(m);
    return v;
}

/* ---- out.v on both paths ---------------------------------------------------------------------- */

static void golden_v(tctx *t, gcase *g)
{
    for (int pi = 0; pi < 2; pi++) {
        dit_load_opts o = g->opts;
        o.prec = pi ? OPS_BF16 : OPS_F32;
        dit_err e = { 0 };
        size_t n;
        float *v = run(g->model, &o, g, NULL, &n, &e);
        CHECK(t, v != NULL, "%s: %s", g->name, e.msg);
        if (!v) continue;
        const double err = rel_err(v, g->v, n), bound = pi ? 2e-2 : g->tol_v;
        CHECK(t, err <= bound, "%s %s: out.v rel err %.2e > %.2e", g->name, ops_prec_name(o.prec), err, bound);
        printf("  %-18s %-4s out.v rel err %.1e (bound %.0e)\n", g->name, ops_prec_name(o.prec), err, bound);
        free(v);
    }
}

static void t_golden(tctx *t)
{
    each_case(t, golden_v);
}

/* ---- hooks ------------------------------------------------------------------------------------- */

static void noop_qkv(void *u, const hook_site *s, hook_attn *at) { (void)u, (void)s, (void)at; }
static int noop_attn(void *u, const hook_site *s, hook_attn *at) { return (void)u, (void)s, (void)at, 0; }
static int noop_skip(void *u, const hook_site *s) { return (void)u, (void)s, 0; }
static void noop_block(void *u, const hook_site *s, float *x, int64_t r, int d) { (void)u, (void)s, (void)x, (void)r, (void)d; }
static void noop_tap(void *u, const hook_site *s, const char *n, const float *x, int64_t r, int c)
{
    (void)u, (void)s, (void)n, (void)x, (void)r, (void)c;
}

static void hooks_noop(tctx *t, gcase *g)
{
    hook h = { .qkv = noop_qkv, .attn = noop_attn, .attn_out = noop_qkv, .skip = noop_skip, .block_out = noop_block,
               .tap = noop_tap };
    hook_list l = { &h, 1 };
    for (int pi = 0; pi < 2; pi++) {
        dit_load_opts o = g->opts;
        o.prec = pi ? OPS_BF16 : OPS_F32;
        dit_err e = { 0 };
        size_t n1, n2;
        float *a = run(g->model, &o, g, NULL, &n1, &e), *b = run(g->model, &o, g, &l, &n2, &e);
        CHECK(t, a && b && n1 == n2 && !memcmp(a, b, sizeof(float) * n1), "%s %s: a do-nothing hook changed the output (%s)",
              g->name, ops_prec_name(o.prec), e.msg);
        free(a), free(b);
    }
}

static void t_hooks_noop(tctx *t)
{
    each_case(t, hooks_noop);
}

/* Records what each site saw and checks it against the documented layout. */
typedef struct {
    tctx *t;
    const gcase *g;
    dit_config c;
    int n_qkv, n_attn, n_attn_out, n_skip, n_block, n_tap, bad;
    int last_block;
    char why[256];
} recorder;

static void rec_bad(recorder *r, const char *fmt, const hook_site *s)
{
    if (!r->bad++) snprintf(r->why, sizeof r->why, "%s at block %d attn %d batch %d", fmt, s->block, s->attn, s->batch);
}

static void rec_common(recorder *r, const hook_site *s)
{
    const dit_config *c = &r->c;
    const int gh = r->g->H / c->patch, gw = r->g->W / c->patch;
    const int has_txt = c->family == DIT_FLUX || c->family == DIT_SD3;
    if (s->grid_h != gh || s->grid_w != gw || s->n_heads != c->heads || s->head_dim != c->head_dim) rec_bad(r, "grid/heads", s);
    if (s->batch < 0 || s->batch >= r->g->B || s->t != r->g->t[s->batch]) rec_bad(r, "batch/t", s);
    if (s->n_blocks != c->depth + c->depth_single) rec_bad(r, "n_blocks", s);
    if (s->block >= 0) {
        const int single = s->block >= c->depth;
        const hook_block_kind k = single ? HOOK_BLOCK_SINGLE : has_txt ? HOOK_BLOCK_DOUBLE : HOOK_BLOCK_PLAIN;
        if (s->kind != k || s->layer != (single ? s->block - c->depth : s->block)) rec_bad(r, "kind/layer", s);
        const int img_only = s->attn == 1 || !has_txt;
        if (s->stream != (img_only ? HOOK_IMG : HOOK_JOINT) || s->n_img != gh * gw ||
            s->n_txt != (img_only ? 0 : r->g->n_ctx))
            rec_bad(r, "stream/n_txt/n_img", s);
    }
}

static void rec_qkv(void *u, const hook_site *s, hook_attn *at)
{
    recorder *r = u;
    r->n_qkv++;
    rec_common(r, s);
    const int rows = s->n_txt + s->n_img;
    if (at->a.n_q != rows || at->a.n_kv != rows || at->a.n_heads != s->n_heads || at->a.head_dim != s->head_dim ||
        at->k != at->q + r->c.hidden || at->v != at->q + 2 * r->c.hidden || at->a.o_stride != r->c.hidden || at->a.mask ||
        at->a.causal || fabsf(at->a.scale - 1.0f / sqrtf((float)s->head_dim)) > 1e-6f)
        rec_bad(r, "attention layout", s);
}

static int rec_attn(void *u, const hook_site *s, hook_attn *at)
{
    recorder *r = u;
    r->n_attn++;
    (void)s, (void)at;
    return 0;
}

/* attn_out sees the kernel's result for the q, k, v it was given: recompute it with the naive twin. */
static void rec_attn_out(void *u, const hook_site *s, hook_attn *at)
{
    recorder *r = u;
    r->n_attn_out++;
    const size_t n = (size_t)at->a.n_q * r->c.hidden;
    float *ref = malloc(sizeof(float) * n);
    if (!ref) return;
    ops_attn a = at->a;
    a.o_stride = r->c.hidden;
    ops_ref_attention(ref, at->q, at->k, at->v, &a);
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)ref[i] - at->out[i]));
        m = fmax(m, fabs(ref[i]));
    }
    if (!(e <= 2e-2 * m + 1e-6)) rec_bad(r, "attention output is not softmax(q k^T / sqrt d) v of the site's q, k, v", s);
    free(ref);
}

static int rec_skip(void *u, const hook_site *s)
{
    recorder *r = u;
    r->n_skip++;
    if (s->block <= r->last_block) rec_bad(r, "blocks out of order", s);
    r->last_block = s->block;
    rec_common(r, s);
    return 0;
}

static void rec_block(void *u, const hook_site *s, float *x, int64_t rows, int dim)
{
    recorder *r = u;
    r->n_block++;
    rec_common(r, s);
    if (rows != s->n_txt + s->n_img || dim != r->c.hidden || !x) rec_bad(r, "block_out rows", s);
    if (s->block == r->c.depth + r->c.depth_single - 1) r->last_block = -1; /* next sample */
}

static void rec_tap(void *u, const hook_site *s, const char *name, const float *x, int64_t rows, int cols)
{
    recorder *r = u;
    r->n_tap++;
    if (s->block != -1 || !name || !x || rows < 1 || cols < 1) rec_bad(r, "tap", s);
}

static void hook_sites(tctx *t, gcase *g)
{
    dit_config c;
    dit_err e = { 0 };
    if (dit_probe(g->model, &g->opts, &c, &e)) {
        CHECK(t, 0, "%s: %s", g->name, e.msg);
        return;
    }
    recorder r = { .t = t, .g = g, .c = c, .last_block = -1 };
    hook h = { .user = &r, .qkv = rec_qkv, .attn = rec_attn, .attn_out = rec_attn_out, .skip = rec_skip,
               .block_out = rec_block, .tap = rec_tap };
    hook_list l = { &h, 1 };
    dit_load_opts o = g->opts;
    o.prec = OPS_BF16;
    size_t n;
    float *v = run(g->model, &o, g, &l, &n, &e);
    CHECK(t, v != NULL, "%s: %s", g->name, e.msg);
    free(v);
    const int blocks = c.depth + c.depth_single, attns = blocks + c.n_attn2;
    CHECK(t, !r.bad, "%s: %s", g->name, r.why);
    CHECK(t, r.n_qkv == g->B * attns && r.n_attn == r.n_qkv && r.n_attn_out == r.n_qkv,
          "%s: qkv/attn/attn_out called %d/%d/%d times, expected %d", g->name, r.n_qkv, r.n_attn, r.n_attn_out, g->B * attns);
    CHECK(t, r.n_skip == g->B * blocks && r.n_block == g->B * blocks, "%s: skip/block_out %d/%d, expected %d", g->name,
          r.n_skip, r.n_block, g->B * blocks);
    CHECK(t, r.n_tap >= 4 * g->B, "%s: only %d taps", g->name, r.n_tap);
}

static void t_hook_sites(tctx *t)
{
    each_case(t, hook_sites);
}

/* A hook that computes the attention itself through hook_attn_run gives the same bits; PAG's
 * identity attention and skipping a block change the output; a failing hook stops the forward. */
static int own_attn(void *u, const hook_site *s, hook_attn *at)
{
    (void)u, (void)s;
    return hook_attn_run(at) == DIT_OK ? 1 : -1;
}
static int identity_attn(void *u, const hook_site *s, hook_attn *at)
{
    (void)u;
    if (s->block != 0) return 0;
    hook_attn_identity(at);
    return 1;
}
static int skip_first(void *u, const hook_site *s)
{
    (void)u;
    return s->block == 0;
}
static int fail_attn(void *u, const hook_site *s, hook_attn *at)
{
    (void)u, (void)s, (void)at;
    return -1;
}
static void count_block(void *u, const hook_site *s, float *x, int64_t r, int d)
{
    (void)x, (void)r, (void)d;
    if (s->block == 0) ++*(int *)u;
}

static void hook_effects(tctx *t, gcase *g)
{
    dit_load_opts o = g->opts;
    o.prec = OPS_BF16;
    dit_err e = { 0 };
    size_t n, n2;
    float *plain = run(g->model, &o, g, NULL, &n, &e);
    hook own = { .attn = own_attn };
    hook_list l = { &own, 1 };
    float *v = run(g->model, &o, g, &l, &n2, &e);
    CHECK(t, plain && v && !memcmp(plain, v, sizeof(float) * n), "%s: hook_attn_run differs from the model's attention", g->name);
    free(v);
    hook pag = { .attn = identity_attn };
    l.h = &pag;
    v = run(g->model, &o, g, &l, &n2, &e);
    CHECK(t, plain && v && rel_err(v, plain, n) > 1e-3, "%s: identity attention in block 0 changed nothing", g->name);
    free(v);
    int seen = 0;
    hook skip = { .user = &seen, .skip = skip_first, .block_out = count_block };
    l.h = &skip;
    v = run(g->model, &o, g, &l, &n2, &e);
    CHECK(t, plain && v && rel_err(v, plain, n) > 1e-3 && seen == 0, "%s: skipping block 0 (block_out seen %d)", g->name, seen);
    free(v);
    hook fail = { .attn = fail_attn };
    l.h = &fail;
    v = run(g->model, &o, g, &l, &n2, &e);
    CHECK(t, !v && e.code == DIT_E_ARG && strstr(e.msg, "hook"), "%s: a failing hook: %s", g->name, e.msg);
    free(v);
    free(plain);
}

static void t_hook_effects(tctx *t)
{
    each_case(t, hook_effects);
}

/* ---- loading: diffusers layout ------------------------------------------------------------------ */

/* Write the golden file under diffusers' names (convert_flux_to_diffusers.py /
 * convert_sd3_to_diffusers.py mapping, written out here independently of dit/load.c's tables),
 * as two shards with an index and a config.json, into dir/transformer/. */
typedef struct {
    st_writer *w[2];
    int k;
    void *owned[512];
    int n_owned;
    dit_err e;
} dwriter;

static void dadd(dwriter *d, const char *name, const st_tensor *t, int64_t row0, int64_t rows, int swap)
{
    int64_t shape[8];
    for (int i = 0; i < t->nd; i++) shape[i] = t->shape[i];
    const int64_t per = (int64_t)(t->numel / (t->nd ? t->shape[0] : 1));
    const size_t es = st_dtype_size(t->dtype);
    const unsigned char *src = (const unsigned char *)t->data + (size_t)(row0 * per) * es;
    shape[0] = rows;
    const void *data = src;
    if (swap) { /* (shift, scale) -> (scale, shift) */
        unsigned char *b = malloc((size_t)(rows * per) * es);
        const size_t half = (size_t)(rows / 2 * per) * es;
        memcpy(b, src + half, half);
        memcpy(b + half, src, half);
        d->owned[d->n_owned++] = b;
        data = b;
    }
    st_writer_add(d->w[d->k++ % 2], name, t->dtype, t->nd, shape, data, &d->e);
}

/* orig "<o>.weight|bias" split into parts named new_{a,b,...}.weight|bias with the given row counts */
static void dsplit(dwriter *d, const st_file *f, const char *pre, const char *o, const char *const *parts,
                   const int64_t *rows, int n)
{
    static const char *const sfx[2] = { "weight", "bias" };
    for (int s = 0; s < 2; s++) {
        char on[256], nn[256];
        snprintf(on, sizeof on, "%s%s.%s", pre, o, sfx[s]);
        const st_tensor *t = st_find(f, on);
        if (!t) continue;
        int64_t r0 = 0;
        for (int i = 0; i < n; i++) {
            snprintf(nn, sizeof nn, "%s.%s", parts[i], sfx[s]);
            dadd(d, nn, t, r0, rows[i], 0);
            r0 += rows[i];
        }
    }
}

/* Rename a whole tensor (or both .weight/.bias of a module with swap). */
static void dren(dwriter *d, const st_file *f, const char *pre, const char *o, const char *n, int swap)
{
    char on[256], nn[256];
    snprintf(on, sizeof on, "%s%s", pre, o);
    const st_tensor *t = st_find(f, on);
    if (t) {
        dadd(d, n, t, 0, t->nd ? t->shape[0] : 1, swap);
        return;
    }
    for (int s = 0; s < 2; s++) {
        static const char *const sfx[2] = { "weight", "bias" };
        snprintf(on, sizeof on, "%s%s.%s", pre, o, sfx[s]);
        snprintf(nn, sizeof nn, "%s.%s", n, sfx[s]);
        if ((t = st_find(f, on))) dadd(d, nn, t, 0, t->shape[0], swap);
    }
}

static int write_diffusers(const char *src, const char *dir, int flux, const int *axes)
{
    dit_err e = { 0 };
    st_file *f;
    if (st_open(&f, src, &e)) return 0;
    const char *pre = flux ? "" : "model.diffusion_model.";
    dwriter d = { .w = { st_writer_new(), st_writer_new() } };
    char a[256], b[256], c3[3][256], c4[4][256];
    const char *p3[3] = { c3[0], c3[1], c3[2] }, *p4[4] = { c4[0], c4[1], c4[2], c4[3] };
    if (flux) {
        const st_tensor *q = st_find(f, "double_blocks.0.img_attn.qkv.weight");
        const st_tensor *l1 = st_find(f, "single_blocks.0.linear1.weight");
        const int64_t H = q->shape[1], M = l1 ? l1->shape[0] - 3 * H : 0, r3[3] = { H, H, H }, r4[4] = { H, H, H, M };
        dren(&d, f, pre, "img_in", "x_embedder", 0);
        dren(&d, f, pre, "txt_in", "context_embedder", 0);
        dren(&d, f, pre, "time_in.in_layer", "time_text_embed.timestep_embedder.linear_1", 0);
        dren(&d, f, pre, "time_in.out_layer", "time_text_embed.timestep_embedder.linear_2", 0);
        dren(&d, f, pre, "vector_in.in_layer", "time_text_embed.text_embedder.linear_1", 0);
        dren(&d, f, pre, "vector_in.out_layer", "time_text_embed.text_embedder.linear_2", 0);
        dren(&d, f, pre, "guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1", 0);
        dren(&d, f, pre, "guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2", 0);
        dren(&d, f, pre, "final_layer.adaLN_modulation.1", "norm_out.linear", 1);
        dren(&d, f, pre, "final_layer.linear", "proj_out", 0);
        for (int i = 0; snprintf(a, sizeof a, "double_blocks.%d.img_mod.lin.weight", i), st_find(f, a); i++) {
            static const char *const map[][2] = {
                { "img_mod.lin", "norm1.linear" }, { "txt_mod.lin", "norm1_context.linear" },
                { "img_attn.norm.query_norm.scale", "attn.norm_q.weight" }, { "img_attn.norm.key_norm.scale", "attn.norm_k.weight" },
                { "txt_attn.norm.query_norm.scale", "attn.norm_added_q.weight" },
                { "txt_attn.norm.key_norm.scale", "attn.norm_added_k.weight" }, { "img_attn.proj", "attn.to_out.0" },
                { "txt_attn.proj", "attn.to_add_out" }, { "img_mlp.0", "ff.net.0.proj" }, { "img_mlp.2", "ff.net.2" },
                { "txt_mlp.0", "ff_context.net.0.proj" }, { "txt_mlp.2", "ff_context.net.2" },
            };
            for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
                snprintf(a, sizeof a, "double_blocks.%d.%s", i, map[k][0]);
                snprintf(b, sizeof b, "transformer_blocks.%d.%s", i, map[k][1]);
                dren(&d, f, pre, a, b, 0);
            }
            snprintf(a, sizeof a, "double_blocks.%d.img_attn.qkv", i);
            for (int k = 0; k < 3; k++) snprintf(c3[k], 256, "transformer_blocks.%d.attn.to_%c", i, "qkv"[k]);
            dsplit(&d, f, pre, a, p3, r3, 3);
            snprintf(a, sizeof a, "double_blocks.%d.txt_attn.qkv", i);
            for (int k = 0; k < 3; k++) snprintf(c3[k], 256, "transformer_blocks.%d.attn.add_%c_proj", i, "qkv"[k]);
            dsplit(&d, f, pre, a, p3, r3, 3);
        }
        for (int i = 0; snprintf(a, sizeof a, "single_blocks.%d.linear1.weight", i), st_find(f, a); i++) {
            static const char *const map[][2] = { { "modulation.lin", "norm.linear" }, { "linear2", "proj_out" },
                                                  { "norm.query_norm.scale", "attn.norm_q.weight" },
                                                  { "norm.key_norm.scale", "attn.norm_k.weight" } };
            for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
                snprintf(a, sizeof a, "single_blocks.%d.%s", i, map[k][0]);
                snprintf(b, sizeof b, "single_transformer_blocks.%d.%s", i, map[k][1]);
                dren(&d, f, pre, a, b, 0);
            }
            snprintf(a, sizeof a, "single_blocks.%d.linear1", i);
            for (int k = 0; k < 3; k++) snprintf(c4[k], 256, "single_transformer_blocks.%d.attn.to_%c", i, "qkv"[k]);
            snprintf(c4[3], 256, "single_transformer_blocks.%d.proj_mlp", i);
            dsplit(&d, f, pre, a, p4, r4, 4);
        }
    } else {
        const st_tensor *q = st_find(f, "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight");
        const int64_t H = q->shape[1], r3[3] = { H, H, H };
        dren(&d, f, pre, "pos_embed", "pos_embed.pos_embed", 0);
        dren(&d, f, pre, "x_embedder.proj", "pos_embed.proj", 0);
        dren(&d, f, pre, "context_embedder", "context_embedder", 0);
        dren(&d, f, pre, "t_embedder.mlp.0", "time_text_embed.timestep_embedder.linear_1", 0);
        dren(&d, f, pre, "t_embedder.mlp.2", "time_text_embed.timestep_embedder.linear_2", 0);
        dren(&d, f, pre, "y_embedder.mlp.0", "time_text_embed.text_embedder.linear_1", 0);
        dren(&d, f, pre, "y_embedder.mlp.2", "time_text_embed.text_embedder.linear_2", 0);
        dren(&d, f, pre, "final_layer.adaLN_modulation.1", "norm_out.linear", 1);
        dren(&d, f, pre, "final_layer.linear", "proj_out", 0);
        int depth = 0;
        while (snprintf(a, sizeof a, "model.diffusion_model.joint_blocks.%d.x_block.attn.qkv.weight", depth), st_find(f, a)) depth++;
        for (int i = 0; i < depth; i++) {
            static const char *const map[][2] = {
                { "x_block.adaLN_modulation.1", "norm1.linear" }, { "x_block.attn.proj", "attn.to_out.0" },
                { "x_block.mlp.fc1", "ff.net.0.proj" }, { "x_block.mlp.fc2", "ff.net.2" },
                { "context_block.attn.proj", "attn.to_add_out" }, { "context_block.mlp.fc1", "ff_context.net.0.proj" },
                { "context_block.mlp.fc2", "ff_context.net.2" }, { "x_block.attn.ln_q.weight", "attn.norm_q.weight" },
                { "x_block.attn.ln_k.weight", "attn.norm_k.weight" }, { "context_block.attn.ln_q.weight", "attn.norm_added_q.weight" },
                { "context_block.attn.ln_k.weight", "attn.norm_added_k.weight" }, { "x_block.attn2.proj", "attn2.to_out.0" },
                { "x_block.attn2.ln_q.weight", "attn2.norm_q.weight" }, { "x_block.attn2.ln_k.weight", "attn2.norm_k.weight" },
            };
            for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
                snprintf(a, sizeof a, "joint_blocks.%d.%s", i, map[k][0]);
                snprintf(b, sizeof b, "transformer_blocks.%d.%s", i, map[k][1]);
                dren(&d, f, pre, a, b, 0);
            }
            snprintf(a, sizeof a, "joint_blocks.%d.context_block.adaLN_modulation.1", i);
            snprintf(b, sizeof b, "transformer_blocks.%d.norm1_context.linear", i);
            dren(&d, f, pre, a, b, i == depth - 1); /* the pre_only block's AdaLayerNormContinuous */
            static const char *const qkv[3][2] = { { "x_block.attn.qkv", "attn.to_%c" },
                                                   { "context_block.attn.qkv", "attn.add_%c_proj" },
                                                   { "x_block.attn2.qkv", "attn2.to_%c" } };
            for (int k = 0; k < 3; k++) {
                snprintf(a, sizeof a, "joint_blocks.%d.%s", i, qkv[k][0]);
                for (int j = 0; j < 3; j++) {
                    char part[64];
                    snprintf(part, sizeof part, qkv[k][1], "qkv"[j]);
                    snprintf(c3[j], 256, "transformer_blocks.%d.%s", i, part);
                }
                dsplit(&d, f, pre, a, p3, r3, 3);
            }
        }
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/transformer", dir);
    mkdir(dir, 0700);
    mkdir(path, 0700);
    int ok = 1;
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/transformer/diffusion_pytorch_model-0000%d-of-00002.safetensors", dir, s + 1);
        ok &= st_writer_save(d.w[s], path, &d.e) == DIT_OK;
    }
    /* index: every tensor of each shard */
    snprintf(path, sizeof path, "%s/transformer/diffusion_pytorch_model.safetensors.index.json", dir);
    FILE *out = fopen(path, "w");
    fprintf(out, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    int first = 1;
    for (int s = 0; s < 2; s++) {
        char shard[1200];
        snprintf(shard, sizeof shard, "%s/transformer/diffusion_pytorch_model-0000%d-of-00002.safetensors", dir, s + 1);
        st_file *sf;
        if (st_open(&sf, shard, &e)) {
            ok = 0;
            continue;
        }
        for (int i = 0; i < st_count(sf); i++) {
            fprintf(out, "%s\"%s\": \"diffusion_pytorch_model-0000%d-of-00002.safetensors\"", first ? "" : ", ", st_at(sf, i)->name, s + 1);
            first = 0;
        }
        st_close(sf);
    }
    fprintf(out, "}}\n");
    fclose(out);
    snprintf(path, sizeof path, "%s/transformer/config.json", dir);
    out = fopen(path, "w");
    if (flux) fprintf(out, "{\"_class_name\": \"FluxTransformer2DModel\", \"axes_dims_rope\": [%d, %d, %d]}\n", axes[0], axes[1], axes[2]);
    else fprintf(out, "{\"_class_name\": \"SD3Transformer2DModel\"}\n");
    fclose(out);
    for (int i = 0; i < d.n_owned; i++) free(d.owned[i]);
    st_writer_free(d.w[0]);
    st_writer_free(d.w[1]);
    st_close(f);
    return ok && !d.e.code;
}

static void rm_tree(const char *dir)
{
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return;
}

static void diffusers_same(tctx *t, gcase *g)
{
    const int flux = !strncmp(g->name, "flux/", 5);
    if (!flux && strncmp(g->name, "sd3/", 4)) return; /* DiT has no diffusers layout here */
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/dit_test_diffusers_%d", (int)getpid());
    rm_tree(dir);
    const int wrote = write_diffusers(g->model, dir, flux, g->opts.axes_dim);
    CHECK(t, wrote, "%s: could not write the diffusers copy", g->name);
    if (!wrote) return;
    dit_load_opts o = g->opts;
    o.axes_dim[0] = o.axes_dim[1] = o.axes_dim[2] = 0; /* from config.json this time */
    for (int pi = 0; pi < 2; pi++) {
        o.prec = pi ? OPS_BF16 : OPS_F32;
        g->opts.prec = o.prec;
        dit_err e = { 0 }, e2 = { 0 };
        size_t n1, n2;
        float *a = run(g->model, &g->opts, g, NULL, &n1, &e), *b = run(dir, &o, g, NULL, &n2, &e2);
        CHECK(t, a && b && n1 == n2 && !memcmp(a, b, sizeof(float) * n1), "%s %s: diffusers folder differs (%s | %s)", g->name,
              ops_prec_name(o.prec), e.msg, e2.msg);
        free(a), free(b);
    }
    dit_config c;
    dit_err e = { 0 };
    CHECK(t, dit_probe(dir, &o, &c, &e) == DIT_OK && c.naming == 1, "%s: probe of the folder: %s", g->name, e.msg);
    /* a config.json that is there but broken is an error naming it, not a silent default */
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s/transformer/config.json", dir);
    FILE *f = fopen(cfg, "w");
    if (f) fputs("{\"axes_dims_rope\": [16,", f), fclose(f);
    CHECK(t, dit_probe(dir, &o, &c, &e) == DIT_E_FORMAT && strstr(e.msg, "config.json") && strstr(e.msg, "not valid JSON"),
          "%s: broken config.json: %s", g->name, e.msg);
    rm_tree(dir);
}

static void t_diffusers(tctx *t)
{
    each_case(t, diffusers_same);
}

/* ---- loading: bad files -------------------------------------------------------------------------- */

/* Copy src without tensor `drop`, with `extra` added, or with tensor `reshape` given a wrong shape. */
static int write_variant(const char *src, const char *dst, const char *drop, const char *extra, const char *reshape)
{
    dit_err e = { 0 };
    st_file *f;
    if (st_open(&f, src, &e)) return 0;
    st_writer *w = st_writer_new();
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (drop && !strcmp(t->name, drop)) continue;
        int64_t shape[8];
        for (int d = 0; d < t->nd; d++) shape[d] = t->shape[d];
        if (reshape && !strcmp(t->name, reshape) && t->nd == 2) shape[0] = t->shape[1], shape[1] = t->shape[0];
        st_writer_add(w, t->name, t->dtype, t->nd, shape, t->data, &e);
    }
    if (extra) {
        static float one = 1;
        st_writer_add(w, extra, ST_F32, 1, (int64_t[]){ 1 }, &one, &e);
    }
    const int ok = st_writer_save(w, dst, &e) == DIT_OK;
    st_writer_free(w);
    st_close(f);
    return ok;
}

static void t_bad_files(tctx *t)
{
    if (!test_golden_present(t)) return;
    char src[1100], dst[256];
    snprintf(src, sizeof src, "%s/flux/dev/model.safetensors", test_golden_dir());
    snprintf(dst, sizeof dst, "/tmp/dit_test_bad_%d.safetensors", (int)getpid());
    dit_load_opts o = dit_load_defaults();
    o.axes_dim[0] = 4, o.axes_dim[1] = 6, o.axes_dim[2] = 6;
    dit_model *m = NULL;
    dit_err e = { 0 };
    static const struct {
        const char *drop, *extra, *reshape, *want1, *want2;
    } cases[] = {
        { "double_blocks.1.txt_mlp.2.weight", NULL, NULL, "missing tensor 'double_blocks.1.txt_mlp.2.weight'", "[64, 256]" },
        { NULL, "double_blocks.0.lora.weight", NULL, "unexpected tensor 'double_blocks.0.lora.weight'", "[1]" },
        { NULL, NULL, "single_blocks.2.linear2.weight", "'single_blocks.2.linear2.weight' has shape [320, 64]", "expected [64, 320]" },
        { "guidance_in.out_layer.bias", NULL, NULL, "missing tensor 'guidance_in.out_layer.bias'", "[64]" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(t, write_variant(src, dst, cases[i].drop, cases[i].extra, cases[i].reshape), "write %zu", i);
        memset(&e, 0, sizeof e);
        const dit_status r = dit_load(&m, dst, &o, &e);
        CHECK(t, r != DIT_OK && !m && strstr(e.msg, dst) && strstr(e.msg, cases[i].want1) && strstr(e.msg, cases[i].want2),
              "case %zu: %s", i, e.msg);
        dit_free(m);
        m = NULL;
    }
    /* not a diffusion model; FLUX without the RoPE split; a missing file */
    snprintf(src, sizeof src, "%s/flux/dev/io.safetensors", test_golden_dir());
    CHECK(t, dit_load(&m, src, NULL, &e) == DIT_E_FORMAT && strstr(e.msg, "not a FLUX"), "io file: %s", e.msg);
    snprintf(src, sizeof src, "%s/flux/dev/model.safetensors", test_golden_dir());
    CHECK(t, dit_load(&m, src, NULL, &e) == DIT_E_FORMAT && strstr(e.msg, "axes"), "no axes: %s", e.msg);
    CHECK(t, dit_load(&m, "/nonexistent/model.safetensors", NULL, &e) == DIT_E_IO, "missing file: %s", e.msg);
    unlink(dst);
}

/* An SD3 single file also holds the VAE and the text encoders under other prefixes: they are not
 * the model's, so they are neither used nor "unexpected"; the output is the same bits. */
static void t_single_file_with_others(tctx *t)
{
    if (!test_golden_present(t)) return;
    gcase g;
    if (!case_open(&g, "sd3", "sd3.5_medium")) {
        CHECK(t, 0, "sd3/sd3.5_medium unreadable");
        case_close(&g);
        return;
    }
    char dst[256];
    snprintf(dst, sizeof dst, "/tmp/dit_test_single_%d.safetensors", (int)getpid());
    int ok = write_variant(g.model, dst, NULL, "first_stage_model.decoder.conv_in.bias", NULL) &&
             write_variant(dst, dst, NULL, "text_encoders.clip_l.transformer.text_model.final_layer_norm.bias", NULL);
    CHECK(t, ok, "write");
    dit_load_opts o = g.opts;
    o.prec = OPS_F32;
    dit_err e = { 0 }, e2 = { 0 };
    size_t n1, n2;
    float *a = run(g.model, &o, &g, NULL, &n1, &e), *b = run(dst, &o, &g, NULL, &n2, &e2);
    CHECK(t, a && b && n1 == n2 && !memcmp(a, b, sizeof(float) * n1), "with VAE/text tensors beside it: %s | %s", e.msg, e2.msg);
    free(a), free(b);
    /* but a stray tensor under the model's own prefix is an error */
    ok = write_variant(g.model, dst, NULL, "model.diffusion_model.joint_blocks.0.extra.weight", NULL);
    dit_model *m = NULL;
    CHECK(t, ok && dit_load(&m, dst, &o, &e) == DIT_E_SHAPE && strstr(e.msg, "unexpected tensor 'model.diffusion_model.joint_blocks.0.extra.weight'"),
          "stray tensor under the prefix: %s", e.msg);
    dit_free(m);
    unlink(dst);
    case_close(&g);
}

/* What the weights cannot tell, and optional parts: RoPE axes given with a zero first axis are
 * taken as given; a DiT of a width no released config has needs its heads; FLUX with
 * qkv_bias = False (no qkv / linear1 biases) loads and runs. */
static void t_config_edges(tctx *t)
{
    if (!test_golden_present(t)) return;
    char src[1100], dst[256];
    dit_err e = { 0 };
    dit_config c;
    snprintf(src, sizeof src, "%s/flux/schnell/model.safetensors", test_golden_dir());
    dit_load_opts o = dit_load_defaults();
    o.axes_dim[0] = 0, o.axes_dim[1] = 16, o.axes_dim[2] = 16; /* head_dim 32 */
    CHECK(t, dit_probe(src, &o, &c, &e) == DIT_OK && c.axes_dim[0] == 0 && c.axes_dim[1] == 16, "axes [0,16,16]: %s", e.msg);
    o.axes_dim[1] = 14;
    CHECK(t, dit_probe(src, &o, &c, &e) == DIT_E_FORMAT && strstr(e.msg, "sum to head_dim 32"), "axes [0,14,16]: %s", e.msg);
    snprintf(src, sizeof src, "%s/dit/dit_xl2_like/model.safetensors", test_golden_dir());
    CHECK(t, dit_probe(src, NULL, &c, &e) == DIT_E_FORMAT && strstr(e.msg, "dit.heads"), "DiT width 64 without heads: %s", e.msg);
    /* FLUX without qkv biases: drop every qkv / linear1 bias */
    snprintf(src, sizeof src, "%s/flux/schnell/model.safetensors", test_golden_dir());
    snprintf(dst, sizeof dst, "/tmp/dit_test_nobias_%d.safetensors", (int)getpid());
    st_file *f;
    CHECK(t, st_open(&f, src, &e) == DIT_OK, "%s", e.msg);
    if (!f) return;
    st_writer *w = st_writer_new();
    int dropped = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *x = st_at(f, i);
        if ((strstr(x->name, "qkv.bias") || strstr(x->name, "linear1.bias")) && ++dropped) continue;
        st_writer_add(w, x->name, x->dtype, x->nd, x->shape, x->data, &e);
    }
    CHECK(t, st_writer_save(w, dst, &e) == DIT_OK && dropped == 6, "write (%d dropped): %s", dropped, e.msg);
    st_writer_free(w);
    st_close(f);
    gcase g;
    if (case_open(&g, "flux", "schnell")) {
        size_t n;
        g.opts.prec = OPS_F32;
        float *v = run(dst, &g.opts, &g, NULL, &n, &e);
        int finite = v != NULL;
        for (size_t i = 0; v && i < n; i++) finite &= isfinite(v[i]);
        CHECK(t, finite && rel_err(v, g.v, n) > 1e-4, "no-bias FLUX runs and differs: %s", e.msg);
        free(v);
    }
    case_close(&g);
    unlink(dst);
}

/* Bad forward inputs: one-line errors, nothing computed. */
static void t_bad_inputs(tctx *t)
{
    if (!test_golden_present(t)) return;
    gcase g;
    if (!case_open(&g, "dit", "dit_xl2_like")) {
        CHECK(t, 0, "dit/dit_xl2_like unreadable");
        case_close(&g);
        return;
    }
    dit_model *m = NULL;
    dit_err e = { 0 };
    CHECK(t, dit_load(&m, g.model, &g.opts, &e) == DIT_OK, "%s", e.msg);
    dit_state *s = m ? dit_state_new(m, 16, 16, 0, &e) : NULL;
    CHECK(t, s != NULL, "%s", e.msg);
    if (s) {
        float v[2 * 8 * 16 * 16];
        dit_input in = case_input(&g);
        in.H = in.W = 16; /* DiT's pos_embed fixes the size */
        CHECK(t, dit_forward(m, s, &in, v, &e) == DIT_E_ARG && strstr(e.msg, "takes only 8x8"), "size: %s", e.msg);
        in = case_input(&g);
        int bad[2] = { 0, 11 };
        in.labels = bad;
        CHECK(t, dit_forward(m, s, &in, v, &e) == DIT_E_ARG && strstr(e.msg, "label 11"), "label: %s", e.msg);
        in = case_input(&g);
        in.H = 7;
        CHECK(t, dit_forward(m, s, &in, v, &e) == DIT_E_ARG && strstr(e.msg, "multiple"), "odd: %s", e.msg);
    }
    CHECK(t, !m || dit_state_new(m, 15, 16, 0, &e) == NULL, "state of odd size");
    dit_state_free(s);
    dit_free(m);
    case_close(&g);
}

int main(void)
{
    tctx t = test_begin("dit");
    RUN(&t, t_golden);
    RUN(&t, t_hooks_noop);
    RUN(&t, t_hook_sites);
    RUN(&t, t_hook_effects);
    RUN(&t, t_diffusers);
    RUN(&t, t_bad_files);
    RUN(&t, t_single_file_with_others);
    RUN(&t, t_config_edges);
    RUN(&t, t_bad_inputs);
    return test_end(&t);
}
