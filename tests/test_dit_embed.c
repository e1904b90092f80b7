/* tests/test_dit_embed.c — dit/embed.c against the golden cases (every folder under flux/, sd3/
 * and dit/ of $DIT_GOLDEN): the timestep sinusoid (out.t_freq, out.g_freq), FLUX packing
 * (in.img from in.x, out.v from out.v_tokens), SD3/DiT/SiT unpatchify (out.v from out.v_tokens)
 * and the patch embedding with its pos_embed (out.embed.img), each within the case's tolerance.
 * Under CI=true a missing golden folder is a failure; elsewhere the tests skip. */
#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#include "core/ops.h"
#include "core/safetensors.h"
#include "dit/embed.h"
#include "tests/test.h"

typedef struct {
    char dir[1024], family[16];
    cJSON *json;
    st_file *io, *model;
    const char *prefix;
} gcase;

static int case_open(gcase *g, const char *family, const char *name)
{
    memset(g, 0, sizeof *g);
    snprintf(g->dir, sizeof g->dir, "%s/%s/%s", test_golden_dir(), family, name);
    snprintf(g->family, sizeof g->family, "%s", family);
    char p[1200];
    snprintf(p, sizeof p, "%s/case.json", g->dir);
    char *text = test_read_file(p, NULL);
    g->json = text ? cJSON_Parse(text) : NULL;
    free(text);
    dit_err e = { 0 };
    snprintf(p, sizeof p, "%s/io.safetensors", g->dir);
    if (!g->json || st_open(&g->io, p, &e)) return 0;
    snprintf(p, sizeof p, "%s/model.safetensors", g->dir);
    if (st_open(&g->model, p, &e)) return 0;
    g->prefix = st_find(g->model, "model.diffusion_model.x_embedder.proj.weight") ? "model.diffusion_model." : "";
    return 1;
}

static void case_close(gcase *g)
{
    cJSON_Delete(g->json);
    st_close(g->io);
    st_close(g->model);
}

static const st_tensor *io_t(const gcase *g, const char *name)
{
    const st_tensor *t = st_find(g->io, name);
    return t && t->dtype == ST_F32 ? t : NULL;
}

/* The case's bound for tensor name: max|got - want| <= rel_to_max * max|want|, or <= max_abs. */
static int within(const gcase *g, const char *name, const float *got, const float *want, size_t n, double *err,
                  double *bound)
{
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g->json, "tolerance"), "per_tensor");
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive(tol, name);
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(entry, "rel_to_max"), *abs_ = cJSON_GetObjectItemCaseSensitive(entry, "max_abs");
    double m = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d == d)) d = INFINITY;
        e = d > e ? d : e;
        m = fabs(want[i]) > m ? fabs(want[i]) : m;
    }
    *bound = cJSON_IsNumber(abs_) ? abs_->valuedouble : (cJSON_IsNumber(rel) ? rel->valuedouble : 1e-5) * m;
    *err = e;
    return e <= *bound;
}

typedef void (*case_fn)(tctx *t, gcase *g);

/* Runs fn on every case folder of the three families; returns the number of cases. */
static int each_case(tctx *t, case_fn fn)
{
    static const char *const families[] = { "flux", "sd3", "dit" };
    int n = 0;
    for (int f = 0; f < 3; f++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", test_golden_dir(), families[f]);
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            gcase g;
            if (case_open(&g, families[f], de->d_name)) {
                fn(t, &g);
                n++;
            } else {
                CHECK(t, 0, "%s: case.json, io.safetensors or model.safetensors unreadable", g.dir);
            }
            case_close(&g);
        }
        closedir(d);
    }
    return n;
}


/* ------------------------------------------------------------------ timestep sinusoid */

static void freq_case(tctx *t, gcase *g)
{
    const int flux = !strcmp(g->family, "flux");
    static const char *const pairs[][2] = { { "in.t", "out.t_freq" }, { "in.guidance", "out.g_freq" } };
    for (int k = 0; k < 2; k++) {
        const st_tensor *in = io_t(g, pairs[k][0]), *want = io_t(g, pairs[k][1]);
        if (!want) continue;
        CHECK(t, in != NULL, "%s: %s missing", g->dir, pairs[k][0]);
        if (!in) continue;
        const int n = (int)in->numel;
        float *got = malloc(sizeof(float) * n * DIT_FREQ_DIM);
        dit_timestep_freq(got, in->data, n, flux ? 1000.0f : 1.0f); /* README section 4 table */
        double err = INFINITY, bound = 0;
        CHECK(t, want->numel == (uint64_t)n * DIT_FREQ_DIM && within(g, pairs[k][1], got, want->data, want->numel, &err, &bound),
              "%s %s: err %.3g > %.3g", g->dir, pairs[k][1], err, bound);
        printf("  %-28s %-11s err %.2e\n", g->dir + strlen(test_golden_dir()) + 1, pairs[k][1], err);
        free(got);
    }
}

static void t_timestep_freq(tctx *t)
{
    if (!test_golden_present(t)) return;
    CHECK(t, each_case(t, freq_case) >= 7, "too few golden cases");
    /* independent of the goldens: T = 0 gives cos 1, sin 0; i = 0 has frequency 1 */
    float z[DIT_FREQ_DIM], one = 1.0f, zero = 0.0f;
    dit_timestep_freq(z, &zero, 1, 1.0f);
    CHECK(t, z[0] == 1 && z[127] == 1 && z[128] == 0 && z[255] == 0, "freq(0): %g %g", z[0], z[128]);
    dit_timestep_freq(z, &one, 1, 1000.0f);
    CHECK(t, fabsf(z[0] - cosf(1000.0f)) < 1e-6f && fabsf(z[128] - sinf(1000.0f)) < 1e-6f, "freq(1000)[0]: %g", z[0]);
}

/* ------------------------------------------------------------------ layouts */

static void layout_case(tctx *t, gcase *g)
{
    const st_tensor *x = io_t(g, "in.x"), *vt = io_t(g, "out.v_tokens"), *v = io_t(g, "out.v");
    CHECK(t, x && vt && v && x->nd == 4 && v->nd == 4 && vt->nd == 3, "%s: in.x / out.v / out.v_tokens missing", g->dir);
    if (!(x && vt && v && x->nd == 4 && v->nd == 4 && vt->nd == 3)) return;
    const int B = (int)x->shape[0], C = (int)x->shape[1], H = (int)x->shape[2], W = (int)x->shape[3];
    const int L = (int)vt->shape[1], F = (int)vt->shape[2], Cv = (int)v->shape[1];
    const float *xs = x->data, *vts = vt->data, *vs = v->data;
    if (!strcmp(g->family, "flux")) {
        const st_tensor *img = io_t(g, "in.img");
        float *tok = malloc(sizeof(float) * L * F), *lat = malloc(sizeof(float) * C * H * W);
        int same = img && (int)img->shape[1] == L && (int)img->shape[2] == 4 * C;
        for (int b = 0; same && b < B; b++) {
            dit_flux_pack(tok, xs + (size_t)b * C * H * W, C, H, W);
            same = !memcmp(tok, (const float *)img->data + (size_t)b * L * F, sizeof(float) * L * F);
            dit_flux_unpack(lat, vts + (size_t)b * L * F, C, H, W);
            same = same && !memcmp(lat, vs + (size_t)b * C * H * W, sizeof(float) * C * H * W);
        }
        CHECK(t, same, "%s: pack(in.x) != in.img or unpack(out.v_tokens) != out.v", g->dir);
        free(tok), free(lat);
        return;
    }
    /* SD3 / DiT / SiT: feature (i*p + j)*Ct + ch; SiT's out.v keeps the first C of 2C channels */
    const int p = (int)lround(sqrt((double)H * W / L)), Ct = F / (p * p);
    float *lat = malloc(sizeof(float) * Ct * H * W);
    int same = p * p * Ct == F && Cv <= Ct;
    for (int b = 0; same && b < B; b++) {
        dit_unpatchify(lat, vts + (size_t)b * L * F, Ct, H, W, p);
        same = !memcmp(lat, vs + (size_t)b * Cv * H * W, sizeof(float) * Cv * H * W);
    }
    CHECK(t, same, "%s: unpatchify(out.v_tokens) != out.v (p %d, %d token channels)", g->dir, p, Ct);
    free(lat);
}

static void t_layouts(tctx *t)
{
    if (!test_golden_present(t)) return;
    CHECK(t, each_case(t, layout_case) >= 7, "too few golden cases");
    /* independent: a 2x2 FLUX patch of channel 1 lands at features 4..7 in (ph, pw) order */
    float x[2 * 2 * 2] = { 0, 1, 2, 3, 10, 11, 12, 13 }, tok[8], back[8];
    dit_flux_pack(tok, x, 2, 2, 2);
    CHECK(t, tok[0] == 0 && tok[3] == 3 && tok[4] == 10 && tok[7] == 13, "pack: %g %g %g %g", tok[0], tok[3], tok[4], tok[7]);
    dit_flux_unpack(back, tok, 2, 2, 2);
    CHECK(t, !memcmp(back, x, sizeof x), "unpack(pack(x)) != x");
    /* channel-minor: token features (i*p+j)*C + ch */
    dit_unpatchify(back, x, 2, 2, 2, 2);
    CHECK(t, back[0] == 0 && back[4] == 1 && back[1] == 2 && back[5] == 3, "unpatchify: %g %g %g %g", back[0], back[4],
          back[1], back[5]);
    float pos[4 * 4], crop[2];
    for (int i = 0; i < 16; i++) pos[i] = (float)i;
    CHECK(t, dit_pos_crop(crop, pos, 4, 1, 2, 1) == 0 && crop[0] == 5 && crop[1] == 6, "crop 1x2 of 4x4: %g %g", crop[0],
          crop[1]); /* top (4-1)/2 = 1, left (4-2)/2 = 1 */
    CHECK(t, dit_pos_crop(crop, pos, 4, 5, 1, 1) == -1, "crop larger than the grid accepted");
}

/* ------------------------------------------------------------------ patch embedding + pos_embed */

static void embed_case(tctx *t, gcase *g)
{
    if (!strcmp(g->family, "flux")) return; /* FLUX embeds packed tokens with img_in (a plain linear) */
    char name[256];
    snprintf(name, sizeof name, "%sx_embedder.proj.weight", g->prefix);
    const st_tensor *w = st_find(g->model, name);
    snprintf(name, sizeof name, "%sx_embedder.proj.bias", g->prefix);
    const st_tensor *bias = st_find(g->model, name);
    snprintf(name, sizeof name, "%spos_embed", g->prefix);
    const st_tensor *pos = st_find(g->model, name);
    const st_tensor *x = io_t(g, "in.x"), *want = io_t(g, "out.embed.img");
    CHECK(t, w && bias && pos && x && want && w->nd == 4, "%s: x_embedder, pos_embed or io tensors missing", g->dir);
    if (!(w && bias && pos && x && want && w->nd == 4)) return;
    const int B = (int)x->shape[0], C = (int)x->shape[1], H = (int)x->shape[2], Wd = (int)x->shape[3];
    const int hid = (int)w->shape[0], p = (int)w->shape[2], h = H / p, wp = Wd / p, L = h * wp, K = C * p * p;
    const int M = (int)lround(sqrt((double)pos->shape[1]));
    tensor wv, bv, pv;
    dit_err e = { 0 };
    CHECK(t, !st_tensor_view(w, &wv, &e) && !st_tensor_view(bias, &bv, &e) && !st_tensor_view(pos, &pv, &e), "%s", e.msg);
    wv = tensor_make(wv.type, wv.data, 2, (int64_t[]){ hid, K }); /* [hidden, C, p, p] as [hidden, C p p] */
    float *b32 = malloc(sizeof(float) * hid), *pos32 = malloc(sizeof(float) * pos->numel);
    float *cols = malloc(sizeof(float) * L * K), *got = malloc(sizeof(float) * B * L * hid), *crop = malloc(sizeof(float) * L * hid);
    cvt_to_f32(b32, bv.data, bv.type, hid);
    cvt_to_f32(pos32, pv.data, pv.type, pos->numel);
    /* SD3 crops its M x M grid around the centre; DiT/SiT add their (h w) table as is. */
    int ok = !strcmp(g->family, "sd3") ? dit_pos_crop(crop, pos32, M, h, wp, hid) == 0
                                       : (memcpy(crop, pos32, sizeof(float) * L * hid), (int)pos->shape[1] == L);
    for (int b = 0; ok && b < B; b++) {
        dit_patchify(cols, (const float *)x->data + (size_t)b * C * H * Wd, C, H, Wd, p);
        float *o = got + (size_t)b * L * hid;
        ops_ref_linear(o, cols, L, K, &wv, b32, hid);
        for (size_t i = 0; i < (size_t)L * hid; i++) o[i] += crop[i];
    }
    double err = INFINITY, bound = 0;
    CHECK(t, ok && want->numel == (uint64_t)B * L * hid && within(g, "out.embed.img", got, want->data, want->numel, &err, &bound),
          "%s out.embed.img: err %.3g > %.3g", g->dir, err, bound);
    printf("  %-28s out.embed.img err %.2e (bound %.2e)\n", g->dir + strlen(test_golden_dir()) + 1, err, bound);
    free(b32), free(pos32), free(cols), free(got), free(crop);
}

static void t_patch_embed(tctx *t)
{
    if (!test_golden_present(t)) return;
    CHECK(t, each_case(t, embed_case) >= 7, "too few golden cases");
}

int main(void)
{
    tctx t = test_begin("dit_embed");
    RUN(&t, t_timestep_freq);
    RUN(&t, t_layouts);
    RUN(&t, t_patch_embed);
    return test_end(&t);
}
