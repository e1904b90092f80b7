/* tools/check_dit.c — `dit check` for the flux/, sd3/ and dit/ golden case folders: load
 * model.safetensors with the loader users get, run io.safetensors' inputs on the f32 path and the
 * fast bf16 path, and compare out.v and every intermediate the case stores (golden README
 * section 3: per-block dumps in forward order find the first tensor that diverges). Intermediates
 * are caught through the model's hook sites: taps for the embeddings, block_out for the blocks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dit/dit.h"
#include "dit/embed.h"
#include "guidance/guidance.h"
#include "sampler/sampler.h"
#include "tools/check.h"

#define MAX_SLOTS 128

/* An expected out.* tensor and the buffer the hooks fill for it: [batch, rows, cols]. */
typedef struct {
    char name[64];
    const float *ref;
    float *got;
    size_t numel;
    int filled;   /* samples produced */
    int bad_size; /* the forward gave it another size */
    int order;    /* when the forward first produced it (0 = never) */
} slot;

typedef struct {
    slot s[MAX_SLOTS];
    int n;
    int batch;
    int produced; /* counter for slot.order */
    int rope;  /* out.pe expected: assembled from the rope_cos / rope_sin taps */
    float *cos, *sin, *pe;
    int64_t rope_n;
} capture;

static slot *find_slot(capture *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->s[i].name, name)) return &c->s[i];
    return NULL;
}

/* Copy rows x cols of sample b into the slot named name (when the case stores it). */
static void keep(capture *c, const char *name, int b, const float *x, int64_t rows, int cols)
{
    slot *sl = find_slot(c, name);
    const size_t per = (size_t)rows * cols;
    if (!sl) return;
    if (per * c->batch != sl->numel) {
        sl->bad_size = 1;
        return;
    }
    memcpy(sl->got + per * b, x, sizeof(float) * per);
    sl->filled++;
    if (!sl->order) sl->order = ++c->produced;
}

static void on_tap(void *user, const hook_site *s, const char *name, const float *x, int64_t rows, int cols)
{
    capture *c = user;
    char full[80];
    if (!strcmp(name, "rope_cos") || !strcmp(name, "rope_sin")) {
        if (!c->rope || rows * cols > c->rope_n) return;
        memcpy(name[5] == 'c' ? c->cos : c->sin, x, sizeof(float) * rows * cols);
        /* out.pe [B, 1, L, hd/2, 2, 2] = [[cos, -sin], [sin, cos]] per pair */
        if (name[5] == 's') {
            float *pe = c->pe;
            for (int64_t i = 0; i < rows * cols; i++)
                pe[4 * i] = c->cos[i], pe[4 * i + 1] = -c->sin[i], pe[4 * i + 2] = c->sin[i], pe[4 * i + 3] = c->cos[i];
            keep(c, "out.pe", s->batch, pe, rows, 4 * cols);
        }
        return;
    }
    snprintf(full, sizeof full, "out.%s", name);
    keep(c, full, s->batch, x, rows, cols);
}

static void on_block_out(void *user, const hook_site *s, float *x, int64_t rows, int dim)
{
    capture *c = user;
    char img[80], txt[80];
    const char *kind = !strcmp(s->model, "flux") ? (s->kind == HOOK_BLOCK_SINGLE ? "single" : "double") : "block";
    snprintf(img, sizeof img, "out.%s%d.img", kind, s->layer);
    snprintf(txt, sizeof txt, "out.%s%d.txt", kind, s->layer);
    (void)rows;
    keep(c, img, s->batch, x + (size_t)s->n_txt * dim, s->n_img, dim);
    if (s->n_txt) keep(c, txt, s->batch, x, s->n_txt, dim);
}

static int json_int(const cJSON *o, const char *key, int dflt)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(j) ? (int)j->valuedouble : dflt;
}

/* Is the detected configuration the one case.json states? */
static void check_config(check_run *r, const dit_config *c, const cJSON *cfg)
{
    const int hidden = json_int(cfg, "hidden_size", -1), heads = json_int(cfg, "num_heads", -1);
    const int depth = json_int(cfg, "depth", -1), single = json_int(cfg, "depth_single_blocks", 0);
    int ok = hidden == c->hidden && heads == c->heads && depth == c->depth && single == c->depth_single;
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(cfg, "x_block_self_attn_layers");
    if (cJSON_IsArray(l)) {
        int n = 0;
        for (const cJSON *it = l->child; it; it = it->next, n++)
            ok &= cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble < c->depth && c->attn2[(int)it->valuedouble];
        ok &= n == c->n_attn2;
    }
    char desc[512];
    dit_config_describe(c, desc, sizeof desc);
    fprintf(r->out, "model: %s\n", desc);
    if (!ok)
        check_error(r, "detected configuration differs from case.json (hidden %d/%d, heads %d/%d, depth %d/%d, single %d/%d)",
                    c->hidden, hidden, c->heads, heads, c->depth, depth, c->depth_single, single);
}

typedef struct {
    int batch, C, H, W, n_ctx;
    const float *x, *t, *context, *pooled, *guidance, *sigma;
    int *labels;
} inputs;

/* The forward builds FLUX's position ids itself, text (0,0,0) and image token (r,c) (0,r,c)
 * (flux.sampling.prepare); a case with other ids would need them as an input. */
static int check_flux_ids(check_run *r, const st_file *io, int B, int n_txt, int h, int w)
{
    const float *img = st_find(io, "in.img_ids") ? check_io_f32(r, io, "in.img_ids", (size_t)B * h * w * 3) : NULL;
    const float *txt = st_find(io, "in.txt_ids") ? check_io_f32(r, io, "in.txt_ids", (size_t)B * n_txt * 3) : NULL;
    for (int b = 0; img && b < B; b++)
        for (int i = 0; i < h * w; i++) {
            const float *id = img + ((size_t)b * h * w + i) * 3;
            if (id[0] != 0 || id[1] != i / w || id[2] != i % w) {
                check_error(r, "in.img_ids[%d][%d] = (%g, %g, %g): only (0, row, col) ids are supported", b, i, id[0], id[1], id[2]);
                return -1;
            }
        }
    for (size_t i = 0; txt && i < (size_t)B * n_txt * 3; i++)
        if (txt[i] != 0) {
            check_error(r, "in.txt_ids are not all zero: only (0, 0, 0) text ids are supported");
            return -1;
        }
    return 0;
}

static int read_inputs(check_run *r, const st_file *io, const dit_config *c, inputs *in)
{
    int64_t xs[4], cs[3];
    memset(in, 0, sizeof *in);
    if (check_io_shape(io, "in.x", 4, xs)) {
        check_error(r, "%s: no 4-D in.x", st_path(io));
        return -1;
    }
    in->batch = (int)xs[0], in->C = (int)xs[1], in->H = (int)xs[2], in->W = (int)xs[3];
    const size_t B = (size_t)in->batch;
    in->x = check_io_f32(r, io, "in.x", B * in->C * in->H * in->W);
    in->t = check_io_f32(r, io, "in.t", B);
    if (!in->x || !in->t) return -1;
    if (c->family == DIT_FLUX || c->family == DIT_SD3) {
        if (check_io_shape(io, "in.context", 3, cs)) {
            check_error(r, "%s: no 3-D in.context", st_path(io));
            return -1;
        }
        in->n_ctx = (int)cs[1];
        in->context = check_io_f32(r, io, "in.context", B * in->n_ctx * c->ctx_dim);
        in->pooled = check_io_f32(r, io, "in.y", B * c->vec_dim);
        if (!in->context || !in->pooled) return -1;
        if (c->guidance_embed && !(in->guidance = check_io_f32(r, io, "in.guidance", B))) return -1;
        if (c->family == DIT_FLUX && check_flux_ids(r, io, in->batch, in->n_ctx, in->H / 2, in->W / 2)) return -1;
        if (c->family == DIT_SD3) in->sigma = st_find(io, "in.sigma") ? check_io_f32(r, io, "in.sigma", B) : NULL;
    } else {
        const float *y = check_io_f32(r, io, "in.y", B);
        if (!y) return -1;
        in->labels = malloc(sizeof(int) * B);
        if (!in->labels) return -1;
        for (size_t b = 0; b < B; b++) in->labels[b] = (int)y[b];
    }
    if (in->C != c->in_ch) {
        check_error(r, "in.x has %d channels, the model %d", in->C, c->in_ch);
        return -1;
    }
    return 0;
}

/* Compare every slot: the outputs (named in is_output) one line each, the intermediates in the
 * order the run produced them, summarised by the first that diverges (all of them with -v). */
static int is_output(const char *name)
{
    return !strcmp(name, "out.v") || !strcmp(name, "out.v_tokens") || !strcmp(name, "out.denoised") ||
           !strncmp(name, "out.final.", 10);
}

static void report(check_run *r, capture *cap, const char *tag, int fast, const char *what)
{
    const char *first_bad = NULL;
    double first_rel = 0, first_bound = 0;
    int n_inter = 0, n_inter_ok = 0;
    int by_order[MAX_SLOTS]; /* forward order; never produced last */
    for (int i = 0; i < cap->n; i++) by_order[i] = i;
    for (int i = 1; i < cap->n; i++)
        for (int j = i; j > 0; j--) {
            const int a = cap->s[by_order[j - 1]].order, b = cap->s[by_order[j]].order;
            if ((a ? a : 1 << 30) <= (b ? b : 1 << 30)) break;
            const int tmp = by_order[j];
            by_order[j] = by_order[j - 1], by_order[j - 1] = tmp;
        }
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < cap->n; k++) {
            slot *sl = &cap->s[by_order[k]];
            const int is_out = is_output(sl->name);
            if (is_out != (pass == 0)) continue;
            if (sl->bad_size || sl->filled != cap->batch) {
                check_error(r, "%s: %s was %s", tag, sl->name,
                            sl->bad_size ? "produced with another size than the case stores" : "not produced");
                continue;
            }
            int is_abs = 0;
            double bound = fast ? CHECK_FAST_BOUND : check_tolerance(r, sl->name, 1e-5, &is_abs);
            if (fast && strstr(sl->name, "_freq")) bound = check_tolerance(r, sl->name, 1e-5, &is_abs);
            if (is_out || r->verbose) {
                const int ok = is_abs ? check_report_abs(r, tag, sl->name + 4, sl->got, sl->ref, sl->numel, bound)
                                      : check_report(r, tag, sl->name + 4, sl->got, sl->ref, sl->numel, bound);
                if (!is_out) n_inter++, n_inter_ok += ok;
                continue;
            }
            double mabs, rel = check_rel_to_max(sl->got, sl->ref, sl->numel, &mabs);
            const int ok = (is_abs ? mabs : rel) <= bound;
            r->compared++;
            n_inter++;
            if (ok) n_inter_ok++;
            else {
                r->failed++;
                if (!first_bad) first_bad = sl->name, first_rel = is_abs ? mabs : rel, first_bound = bound;
            }
        }
    if (!r->verbose) {
        if (first_bad)
            fprintf(r->out, "%-5s intermediates: %d/%d within bounds; first to diverge: %s (%.1e > %.1e)\n", tag, n_inter_ok,
                    n_inter, first_bad + 4, first_rel, first_bound);
        else fprintf(r->out, "%-5s intermediates: %d/%d within bounds (%s)\n", tag, n_inter_ok, n_inter, what);
    }
}

/* A slot for every expected out.* tensor of io (F32). Returns 0, or -1 out of memory. */
static int make_slots(capture *cap, const st_file *io, int batch)
{
    cap->batch = batch;
    for (int i = 0; i < st_count(io) && cap->n < MAX_SLOTS; i++) {
        const st_tensor *t = st_at(io, i);
        if (strncmp(t->name, "out.", 4) || t->dtype != ST_F32 || strlen(t->name) >= sizeof cap->s[0].name) continue;
        slot *sl = &cap->s[cap->n++];
        snprintf(sl->name, sizeof sl->name, "%s", t->name);
        sl->ref = t->data, sl->numel = t->numel;
        sl->got = calloc(t->numel ? t->numel : 1, sizeof(float));
        if (!sl->got) return -1;
        if (!strcmp(t->name, "out.pe")) {
            cap->rope = 1, cap->rope_n = (int64_t)(t->numel / batch / 4);
            cap->cos = malloc(sizeof(float) * cap->rope_n), cap->sin = malloc(sizeof(float) * cap->rope_n);
            cap->pe = malloc(sizeof(float) * 4 * cap->rope_n);
            if (!cap->cos || !cap->sin || !cap->pe) return -1;
        }
    }
    return 0;
}

static void free_slots(capture *cap)
{
    if (!cap) return;
    for (int i = 0; i < cap->n; i++) free(cap->s[i].got);
    free(cap->cos);
    free(cap->sin);
    free(cap->pe);
    free(cap);
}

/* Run one path and compare. Returns 0 when it ran. */
static int run_path(check_run *r, const char *model_path, const st_file *io, const dit_load_opts *o, const char *tag)
{
    dit_err e = { 0 };
    dit_model *m = NULL;
    if (dit_load(&m, model_path, o, &e)) {
        check_error(r, "%s", e.msg);
        return 1;
    }
    const dit_config *c = dit_model_config(m);
    if (o->prec != OPS_BF16 || r->fast_only) check_config(r, c, cJSON_GetObjectItemCaseSensitive(r->json, "config"));
    inputs in;
    memset(&in, 0, sizeof in);
    int rc = 1;
    capture *cap = calloc(1, sizeof *cap);
    float *v = NULL;
    dit_state *s = NULL;
    if (!cap || read_inputs(r, io, c, &in)) goto done;
    if (make_slots(cap, io, in.batch)) goto done;
    const size_t nv = (size_t)in.batch * c->out_ch * in.H * in.W;
    v = malloc(sizeof(float) * nv);
    s = dit_state_new(m, in.H, in.W, in.n_ctx, &e);
    if (!v || !s) {
        check_error(r, "%s", s ? "out of memory" : e.msg);
        goto done;
    }
    hook h = { .user = cap, .tap = on_tap, .block_out = on_block_out };
    dit_input di = { .batch = in.batch, .H = in.H, .W = in.W, .x = in.x, .t = in.t, .context = in.context,
                     .n_ctx = in.n_ctx, .pooled = in.pooled, .guidance = in.guidance, .labels = in.labels,
                     .hooks = { &h, 1 } };
    if (dit_forward(m, s, &di, v, &e)) {
        check_error(r, "forward: %s", e.msg);
        goto done;
    }
    for (int b = 0; b < in.batch; b++) keep(cap, "out.v", b, v + nv / in.batch * b, 1, (int)(nv / in.batch));
    slot *sd = find_slot(cap, "out.denoised");
    if (sd && in.sigma && sd->numel == nv) { /* SD3 BaseModel.apply_model: x - v sigma */
        const size_t per = nv / in.batch;
        for (size_t i = 0; i < nv; i++) sd->got[i] = in.x[i] - v[i] * in.sigma[i / per];
        sd->filled = in.batch;
    }
    report(r, cap, tag, o->prec == OPS_BF16, "embeddings and every block");
    rc = 0;
done:
    free_slots(cap);
    free(in.labels);
    free(v);
    dit_state_free(s);
    dit_free(m);
    return rc;
}

/* ---- sampling trajectories (schedules/flux_euler, schedules/sd3_euler_cfg) ----------------------- */

typedef struct {
    capture *cap;
    int b, flux, C, H, W;
    float *tmp; /* [C, H, W] */
} traj;

static void keep_step(traj *t, const char *fmt, int step, const float *x, size_t n)
{
    char name[64];
    snprintf(name, sizeof name, fmt, step);
    keep(t->cap, name, t->b, x, 1, (int)n);
}

/* What the references store per step: FLUX the packed and unpacked sample, the prediction
 * (packed) and t; SD3 the sample, x - v sigma per pass (BaseModel.apply_model) and 1000 sigma. */
static void on_step(void *user, const guidance_step *st, const float *x, const float *const *v, int n_pass, const float *vg)
{
    traj *t = user;
    const size_t n = (size_t)t->C * t->H * t->W;
    if (t->flux) {
        keep_step(t, "out.step%d.latent", st->step, x, n);
        dit_flux_pack(t->tmp, x, t->C, t->H, t->W);
        keep_step(t, "out.step%d.img", st->step, t->tmp, n);
        dit_flux_pack(t->tmp, vg, t->C, t->H, t->W);
        keep_step(t, "out.step%d.pred", st->step, t->tmp, n);
        keep_step(t, "out.step%d.t", st->step, &st->sigma, 1);
        return;
    }
    keep_step(t, "out.step%d.x", st->step, x, n);
    for (int p = 0; p < n_pass && p < 2; p++) {
        for (size_t i = 0; i < n; i++) t->tmp[i] = x[i] - v[p][i] * st->sigma;
        keep_step(t, p ? "out.step%d.denoised_uncond" : "out.step%d.denoised_cond", st->step, t->tmp, n);
    }
    const float ts = 1000.0f * st->sigma;
    keep_step(t, "out.step%d.timestep", st->step, &ts, 1);
}

static int run_trajectory(check_run *r, const char *model_path, const st_file *io, const dit_load_opts *o, const char *tag)
{
    dit_err e = { 0 };
    dit_model *m = NULL;
    if (dit_load(&m, model_path, o, &e)) {
        check_error(r, "%s", e.msg);
        return 1;
    }
    const dit_config *c = dit_model_config(m);
    const int flux = c->family == DIT_FLUX;
    int64_t xs[4], cs[3];
    int rc = 1;
    capture *cap = calloc(1, sizeof *cap);
    dit_state *s = NULL;
    guidance *g = NULL;
    float *x = NULL, *tmp = NULL;
    if (!cap || check_io_shape(io, "in.noise", 4, xs) || check_io_shape(io, "in.context", 3, cs)) {
        check_error(r, "%s: no 4-D in.noise / 3-D in.context", st_path(io));
        goto done;
    }
    const int B = (int)xs[0], C = (int)xs[1], H = (int)xs[2], W = (int)xs[3], L = (int)cs[1];
    const size_t n = (size_t)C * H * W;
    const char *sig_name = flux ? "in.timesteps" : "in.sigmas";
    const st_tensor *st = st_find(io, sig_name);
    const int steps = st && st->nd == 1 && st->numel >= 2 ? (int)st->numel - 1 : 0;
    const float *noise = check_io_f32(r, io, "in.noise", B * n), *sig = steps ? check_io_f32(r, io, sig_name, steps + 1) : NULL;
    const float *ctx = check_io_f32(r, io, "in.context", (size_t)B * L * c->ctx_dim), *y = check_io_f32(r, io, "in.y", (size_t)B * c->vec_dim);
    const float *gd = flux && c->guidance_embed ? check_io_f32(r, io, "in.guidance", B) : NULL;
    const float *ctx_neg = flux ? NULL : check_io_f32(r, io, "in.context_neg", (size_t)B * L * c->ctx_dim);
    const float *y_neg = flux ? NULL : check_io_f32(r, io, "in.y_neg", (size_t)B * c->vec_dim);
    const float *scale = flux ? NULL : check_io_f32(r, io, "in.cfg_scale", 1);
    if (!noise || !sig || !ctx || !y || (flux && c->guidance_embed && !gd) || (!flux && (!ctx_neg || !y_neg || !scale)) || C != c->in_ch) {
        check_error(r, "%s: trajectory inputs missing or of the wrong size", st_path(io));
        goto done;
    }
    g = flux ? guidance_none_new(&e) : guidance_cfg_new(scale[0], &e);
    s = dit_state_new(m, H, W, L, &e);
    x = malloc(sizeof(float) * n), tmp = malloc(sizeof(float) * n);
    if (!g || !s || !x || !tmp || make_slots(cap, io, B)) {
        check_error(r, "%s", e.msg[0] ? e.msg : "out of memory");
        goto done;
    }
    for (int b = 0; b < B; b++) {
        dit_input conds[2] = {
            { .context = ctx + (size_t)b * L * c->ctx_dim, .n_ctx = L, .pooled = y + (size_t)b * c->vec_dim, .guidance = gd ? gd + b : NULL },
            { .context = ctx_neg ? ctx_neg + (size_t)b * L * c->ctx_dim : NULL, .n_ctx = L,
              .pooled = y_neg ? y_neg + (size_t)b * c->vec_dim : NULL },
        };
        traj t = { cap, b, flux, C, H, W, tmp };
        sampler_opts so = { .kind = SAMPLER_EULER, .sigmas = sig, .n_steps = steps, .t_scale = flux ? 1.0f : 1000.0f, .g = g,
                            .conds = conds, .n_conds = flux ? 1 : 2, .on_step = on_step, .user = &t };
        /* x at sigma_0: FLUX starts from the noise (t = 1), SD3 scales it (empty latent, sigma_0 = 1) */
        for (size_t i = 0; i < n; i++) x[i] = flux ? noise[b * n + i] : sig[0] * noise[b * n + i];
        if (sampler_run(m, s, &so, x, H, W, &e)) {
            check_error(r, "sampler: %s", e.msg);
            goto done;
        }
        if (flux) {
            keep(cap, "out.final.latent", b, x, 1, (int)n);
            dit_flux_pack(tmp, x, C, H, W);
            keep(cap, "out.final.img", b, tmp, 1, (int)n);
        } else {
            keep(cap, "out.final.x", b, x, 1, (int)n);
            for (size_t i = 0; i < n; i++) tmp[i] = x[i] / 1.5305f + 0.0609f; /* SD3LatentFormat.process_out */
            keep(cap, "out.final.latent_for_vae", b, tmp, 1, (int)n);
        }
    }
    char what[64];
    snprintf(what, sizeof what, "every step of %d", steps);
    report(r, cap, tag, o->prec == OPS_BF16, what);
    rc = 0;
done:
    free_slots(cap);
    free(x), free(tmp);
    guidance_free(g);
    dit_state_free(s);
    dit_free(m);
    return rc;
}

int check_dit(check_run *r)
{
    char model[4096], io_path[4096];
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(r->json, "weights");
    const cJSON *wf = cJSON_GetObjectItemCaseSensitive(w, "file");
    if (!cJSON_IsString(wf)) {
        check_error(r, "%s: case.json names no weights file", r->dir);
        return 1;
    }
    check_path(model, sizeof model, r->dir, wf->valuestring);
    check_path(io_path, sizeof io_path, r->dir, "io.safetensors");
    dit_err e = { 0 };
    st_file *io = NULL;
    if (st_open(&io, io_path, &e)) {
        check_error(r, "%s", e.msg);
        return 1;
    }
    /* sampling trajectories (schedules/) start from in.noise; single forwards have in.x. Both may
     * name a model file in another folder (../../flux/dev/model.safetensors, the embedded
     * ../../../../weights/default.safetensors). */
    const int trajectory = st_find(io, "in.noise") != NULL;
    /* what the weights cannot tell: DiT/SiT heads and model, FLUX RoPE axes */
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r->json, "config");
    dit_load_opts o = dit_load_defaults();
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(r->json, "family");
    if (cJSON_IsString(fam) && !strcmp(fam->valuestring, "dit")) {
        o.heads = json_int(cfg, "num_heads", 0);
        const cJSON *mdl = cJSON_GetObjectItemCaseSensitive(cfg, "model");
        o.family = cJSON_IsString(mdl) && !strcmp(mdl->valuestring, "SiT") ? DIT_SIT : DIT_DIT;
    }
    const cJSON *ax = cJSON_GetObjectItemCaseSensitive(cfg, "axes_dim");
    if (cJSON_GetArraySize(ax) == 3)
        for (int i = 0; i < 3; i++) o.axes_dim[i] = (int)cJSON_GetArrayItem(ax, i)->valuedouble;
    int rc = 0;
    for (int fast = 0; fast < 2; fast++) {
        if ((fast && r->ref_only) || (!fast && r->fast_only)) continue;
        o.prec = fast ? OPS_BF16 : OPS_F32;
        rc |= trajectory ? run_trajectory(r, model, io, &o, fast ? "bf16" : "f32") : run_path(r, model, io, &o, fast ? "bf16" : "f32");
    }
    st_close(io);
    return rc;
}
