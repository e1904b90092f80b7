/* tests/test_vae.c — vae/: every golden vae/ and taef2/ case through the library on both paths,
 * the same AutoencoderKL under diffusers and SD3 single-file names (renamed here, independently of
 * vae/kl.c's tables), tiled against untiled runs on a 512x512 photo (bounds measured, README), the
 * memory budget switching tiles on, the interface facts of every kind, and malformed or mismatched
 * weight files (one-line errors naming the tensor).
 *
 * Golden folders: $DIT_GOLDEN (default ../shared/golden); missing = skip, or failure under CI=true.
 * ONLY=t_tiled_kl (a test's name) runs that test alone.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "core/safetensors.h"
#include "tests/test.h"
#include "vae/vae.h"

/* fast path against the golden data: the project's bound, as tools/check_vae.c path_bound */
#define FAST_BOUND 2e-2

/* Tiled vs untiled on 512x512 (3x3 tiles of 256 px, one GroupNorm calibration pass), measured:
 *   TAEF2 (real weights, the photo): decode max |diff| 0.0154 of [0,1] (mean 8.6e-4), encode
 *   max|dz|/max|z| 0.039; tiny random KL: decode of an N(0,1) latent 0.077 (mean 8.5e-3), encode 0.58
 *   (bf16; its mid attention over the whole latent, computed per tile, dominates with random
 *   weights). Bounds: about 1.5x the measurements. */
#define TILE_BOUND_TAEF2_DECODE 0.025
#define TILE_BOUND_TAEF2_ENCODE 0.06
#define TILE_BOUND_KL_DECODE 0.12
#define TILE_BOUND_KL_ENCODE 0.8

static char tmpdir[256];

static const char *tmp(char *buf, const char *name)
{
    snprintf(buf, 512, "%s/%s", tmpdir, name);
    return buf;
}

static double rel_to_max(const float *got, const float *ref, size_t n)
{
    double mabs = 0, mref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d == d)) d = INFINITY;
        if (d > mabs) mabs = d;
        if (fabs((double)ref[i]) > mref) mref = fabs((double)ref[i]);
    }
    return mabs == 0 ? 0 : mref > 0 ? mabs / mref : INFINITY;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d == d)) d = INFINITY;
        if (d > m) m = d;
    }
    return m;
}

static float *fbuf(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "test_vae: out of memory\n");
        exit(2);
    }
    return p;
}

static vae *open_vae(tctx *t, const char *spec, ops_prec p, const char *family)
{
    vae_opts o = vae_opts_default();
    o.prec = p, o.family = family, o.tile = -1;
    vae *v = NULL;
    dit_err e = { 0 };
    CHECK(t, vae_open(&v, spec, &o, &e) == DIT_OK, "open %s: %s", spec, e.msg);
    return v;
}

static const float *io_get(tctx *t, const st_file *io, const char *name, size_t n)
{
    const st_tensor *x = st_find(io, name);
    CHECK(t, x && x->dtype == ST_F32 && x->numel == n, "%s: tensor %s missing or not %zu F32 values", st_path(io), name, n);
    return x && x->dtype == ST_F32 && x->numel == n ? x->data : NULL;
}

static void dims4(const st_file *io, const char *name, int *c, int *h, int *w)
{
    const st_tensor *x = st_find(io, name);
    *c = *h = *w = 0;
    if (x && x->nd == 4) *c = (int)x->shape[1], *h = (int)x->shape[2], *w = (int)x->shape[3];
}

/* [0,1] <-> native through the object's data */
static void to_unit(const vae *v, float *dst, const float *native, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = native[i] * v->img_scale + v->img_offset;
}
static void to_native(const vae *v, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = (x[i] - v->img_offset) / v->img_scale;
}

static double case_tol(const cJSON *j, const char *key, double dflt)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "suggested_tolerance");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, key);
    return cJSON_IsNumber(f) ? f->valuedouble : dflt;
}

static void expect(tctx *t, const char *what, const char *name, const float *got, const float *ref, size_t n, double bound)
{
    if (!ref) return;
    const double r = rel_to_max(got, ref, n);
    printf("  %-34s %-20s rel %.1e  bound %.0e\n", what, name, r, bound);
    CHECK(t, r <= bound, "%s %s: rel %.3g > %.3g", what, name, r, bound);
}

/* Calls fn for every case folder (with case.json) under $DIT_GOLDEN/family. Returns the count. */
static int each_case(tctx *t, const char *family, void (*fn)(tctx *, const char *dir, const cJSON *j))
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", test_golden_dir(), family);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char cdir[2048], cj[2100];
        snprintf(cdir, sizeof cdir, "%s/%s", dir, de->d_name);
        snprintf(cj, sizeof cj, "%s/case.json", cdir);
        char *text = test_read_file(cj, NULL);
        if (!text) continue;
        cJSON *j = cJSON_Parse(text);
        free(text);
        CHECK(t, j != NULL, "%s: not JSON", cj);
        if (j) fn(t, cdir, j), n++;
        cJSON_Delete(j);
    }
    closedir(d);
    return n;
}

/* ---- golden AutoencoderKL cases --------------------------------------------------------------- */

static void kl_case(tctx *t, const char *dir, const cJSON *j)
{
    char spec[2200], iop[2200];
    snprintf(spec, sizeof spec, "kl:%s/model.safetensors", dir);
    snprintf(iop, sizeof iop, "%s/io.safetensors", dir);
    st_file *io = NULL;
    dit_err e = { 0 };
    CHECK(t, st_open(&io, iop, &e) == DIT_OK, "%s", e.msg);
    if (!io) return;
    int C, H, W, zc, zh, zw;
    dims4(io, "in.image", &C, &H, &W);
    dims4(io, "in.latent", &zc, &zh, &zw);
    const size_t n_img = (size_t)3 * H * W;
    const float *pixels = io_get(t, io, "in.image", n_img), *latent = io_get(t, io, "in.latent", (size_t)zc * zh * zw);
    static const char *const fam[3][3] = { { "none", "out.mean", "out.decoded_raw" },
                                            { "flux", "out.latent_flux", "out.decoded_flux" },
                                            { "sd3", "out.latent_sd3", "out.decoded_sd3" } };
    for (int p = OPS_F32; p <= OPS_BF16 && pixels && latent; p++) {
        const double bound = p == OPS_BF16 ? FAST_BOUND : case_tol(j, "f32_impl", 1e-4);
        for (int k = 0; k < 3; k++) {
            vae *v = open_vae(t, spec, (ops_prec)p, fam[k][0]);
            if (!v) continue;
            const int s = v->scale;
            const size_t n_z = (size_t)v->z_channels * (H / s) * (W / s), n_dec = (size_t)3 * zh * s * zw * s;
            float *unit = fbuf(n_img), *z = fbuf(n_z), *dec = fbuf(n_dec);
            char what[256];
            snprintf(what, sizeof what, "%s %s %s", strrchr(dir, '/') + 1, ops_prec_name((ops_prec)p), fam[k][0]);
            to_unit(v, unit, pixels, n_img);
            CHECK(t, vae_encode(v, unit, H, W, z, NULL, &e) == DIT_OK, "%s", e.msg);
            expect(t, what, fam[k][1], z, io_get(t, io, fam[k][1], n_z), n_z, bound);
            CHECK(t, vae_decode(v, latent, zh, zw, dec, NULL, &e) == DIT_OK, "%s", e.msg);
            to_native(v, dec, n_dec);
            expect(t, what, fam[k][2], dec, io_get(t, io, fam[k][2], n_dec), n_dec, bound);
            if (k == 0) { /* reconstruction = decoder(reference mean) */
                const float *mean = io_get(t, io, "out.mean", n_z);
                float *rec = fbuf(n_img);
                if (mean) {
                    CHECK(t, vae_decode(v, mean, H / s, W / s, rec, NULL, &e) == DIT_OK, "%s", e.msg);
                    to_native(v, rec, n_img);
                    expect(t, what, "out.reconstruction", rec, io_get(t, io, "out.reconstruction", n_img), n_img, bound);
                }
                free(rec);
            }
            free(unit), free(z), free(dec);
            vae_free(v);
        }
    }
    st_close(io);
}

static void t_golden_kl(tctx *t)
{
    if (!test_golden_present(t)) return;
    const int n = each_case(t, "vae", kl_case);
    CHECK(t, n >= 1, "no vae/ case folders under %s", test_golden_dir());
}

/* ---- golden TAEF2 cases ----------------------------------------------------------------------- */

typedef struct {
    tctx *t;
    const st_file *io;
    const char *what;
    double bound;
    int seen;
} tap_state;

static void golden_tap(void *user, const hook_site *s, const char *name, const float *x, int64_t rows, int cols)
{
    (void)s;
    tap_state *ts = user;
    char key[128];
    snprintf(key, sizeof key, "out.%s", name);
    const st_tensor *ref = st_find(ts->io, key);
    if (!ref) return;
    ts->seen++;
    expect(ts->t, ts->what, key, x, io_get(ts->t, ts->io, key, (size_t)rows * cols), (size_t)rows * cols, ts->bound);
}

static double psnr(const float *dec, const float *ref, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        const double x = dec[i] < 0 ? 0 : dec[i] > 1 ? 1 : dec[i];
        se += (x - ref[i]) * (x - ref[i]);
    }
    return 10 * log10(1.0 / (se / (double)n));
}

static void taef2_case(tctx *t, const char *dir, const cJSON *j)
{
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "weights");
    const cJSON *we = cJSON_GetObjectItemCaseSensitive(w, "encoder"), *wd = cJSON_GetObjectItemCaseSensitive(w, "decoder");
    char spec[5000], iop[2200];
    snprintf(spec, sizeof spec, "taesd:%s/%s,%s/%s", dir, cJSON_IsString(we) ? we->valuestring : "../taef2_encoder.safetensors",
             dir, cJSON_IsString(wd) ? wd->valuestring : "../taef2_decoder.safetensors");
    snprintf(iop, sizeof iop, "%s/io.safetensors", dir);
    st_file *io = NULL;
    dit_err e = { 0 };
    CHECK(t, st_open(&io, iop, &e) == DIT_OK, "%s", e.msg);
    if (!io) return;
    int C, H, W, zc, zh, zw;
    dims4(io, "in.image", &C, &H, &W);
    dims4(io, "out.latent", &zc, &zh, &zw);
    const size_t n_img = (size_t)3 * H * W, n_z = (size_t)zc * zh * zw;
    const float *pixels = io_get(t, io, "in.image", n_img), *latent = io_get(t, io, "out.latent", n_z);
    const cJSON *ref_psnr = cJSON_GetObjectItemCaseSensitive(j, "roundtrip_psnr_db");
    for (int p = OPS_F32; p <= OPS_BF16 && pixels && latent; p++) {
        vae *v = open_vae(t, spec, (ops_prec)p, NULL);
        if (!v) continue;
        char what[256];
        snprintf(what, sizeof what, "%s %s", strrchr(dir, '/') + 1, ops_prec_name((ops_prec)p));
        tap_state ts = { t, io, what, p == OPS_BF16 ? FAST_BOUND : case_tol(j, "f32_impl", 1e-4), 0 };
        const hook h = { .user = &ts, .tap = golden_tap };
        const hook_list taps = { &h, 1 };
        float *z = fbuf(n_z), *dec = fbuf(n_img);
        CHECK(t, vae_encode(v, pixels, H, W, z, NULL, &e) == DIT_OK, "%s", e.msg); /* [0,1] is TAESD's own range */
        expect(t, what, "out.latent", z, latent, n_z, ts.bound);
        CHECK(t, vae_decode(v, latent, zh, zw, dec, &taps, &e) == DIT_OK, "%s", e.msg);
        expect(t, what, "out.decoded", dec, io_get(t, io, "out.decoded", n_img), n_img, ts.bound);
        CHECK(t, ts.seen >= 2, "%s: %d intermediates tapped (dec.0_clamp, dec.3_block expected)", what, ts.seen);
        CHECK(t, vae_decode(v, z, zh, zw, dec, NULL, &e) == DIT_OK, "%s", e.msg);
        const double got = psnr(dec, pixels, n_img), want = cJSON_IsNumber(ref_psnr) ? ref_psnr->valuedouble : 0;
        printf("  %-34s round-trip PSNR %.3f dB (reference %.3f dB)\n", what, got, want);
        CHECK(t, got >= want - (p == OPS_BF16 ? 0.1 : 0.01), "%s: PSNR %.3f below the reference's %.3f", what, got, want);
        free(z), free(dec);
        vae_free(v);
    }
    st_close(io);
}

static void t_golden_taef2(tctx *t)
{
    if (!test_golden_present(t)) return;
    const int n = each_case(t, "taef2", taef2_case);
    CHECK(t, n >= 1, "no taef2/ case folders under %s", test_golden_dir());
}

/* ---- other layouts of the same weights: diffusers folder, SD3 single file --------------------- */

/* Rename one LDM name to diffusers (convert_vae_pt_to_diffusers), written here from diffusers'
 * names, not from vae/kl.c. old = 1: the older attention names query/key/value/proj_attn. */
static void to_diffusers(char *out, size_t cap, const char *in, int n_levels, int old)
{
    char side[16], rest[200];
    int i, j, k;
    if (sscanf(in, "%15[^.].down.%d.block.%d.%199s", side, &i, &j, rest) == 4)
        snprintf(out, cap, "%s.down_blocks.%d.resnets.%d.%s", side, i, j, rest);
    else if (sscanf(in, "%15[^.].down.%d.downsample.%199s", side, &i, rest) == 3)
        snprintf(out, cap, "%s.down_blocks.%d.downsamplers.0.%s", side, i, rest);
    else if (sscanf(in, "decoder.up.%d.block.%d.%199s", &i, &j, rest) == 3)
        snprintf(out, cap, "decoder.up_blocks.%d.resnets.%d.%s", n_levels - 1 - i, j, rest);
    else if (sscanf(in, "decoder.up.%d.upsample.%199s", &i, rest) == 2)
        snprintf(out, cap, "decoder.up_blocks.%d.upsamplers.0.%s", n_levels - 1 - i, rest);
    else if (sscanf(in, "%15[^.].mid.block_%d.%199s", side, &k, rest) == 3)
        snprintf(out, cap, "%s.mid_block.resnets.%d.%s", side, k - 1, rest);
    else if (sscanf(in, "%15[^.].mid.attn_1.%199s", side, rest) == 2) {
        static const char *const from[] = { "norm.", "q.", "k.", "v.", "proj_out." };
        static const char *const to[2][5] = { { "group_norm.", "to_q.", "to_k.", "to_v.", "to_out.0." },
                                              { "group_norm.", "query.", "key.", "value.", "proj_attn." } };
        for (int m = 0; m < 5; m++)
            if (!strncmp(rest, from[m], strlen(from[m])))
                snprintf(out, cap, "%s.mid_block.attentions.0.%s%s", side, to[old][m], rest + strlen(from[m]));
    } else if (sscanf(in, "%15[^.].norm_out.%199s", side, rest) == 2)
        snprintf(out, cap, "%s.conv_norm_out.%s", side, rest);
    else snprintf(out, cap, "%s", in);
    char *ns = strstr(out, "nin_shortcut");
    if (ns) {
        char tail[200];
        snprintf(tail, sizeof tail, "%s", ns + strlen("nin_shortcut"));
        snprintf(ns, cap - (size_t)(ns - out), "conv_shortcut%s", tail);
    }
}

/* Copy src to dst with each name through rename (NULL = keep) under prefix; attention projection
 * weights [C, C, 1, 1] as [C, C] when flat. extra adds a tensor of another model part. */
static void rewrite_kl(const char *src, const char *dst, const char *prefix, int diffusers, int old, int flat, int extra)
{
    st_file *f = NULL;
    dit_err e = { 0 };
    if (st_open(&f, src, &e)) return;
    int n_levels = 0;
    for (int i = 0; i < st_count(f); i++) {
        int l;
        if (sscanf(st_at(f, i)->name, "encoder.down.%d.", &l) == 1 && l + 1 > n_levels) n_levels = l + 1;
    }
    st_writer *w = st_writer_new();
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *x = st_at(f, i);
        char renamed[512];
        if (diffusers) to_diffusers(renamed, sizeof renamed, x->name, n_levels, old);
        else snprintf(renamed, sizeof renamed, "%s", x->name);
        char name[600];
        snprintf(name, sizeof name, "%s%s", prefix, renamed);
        const int attn_w = flat && strstr(x->name, "attn_1.") && x->nd == 4;
        st_writer_add(w, name, x->dtype, attn_w ? 2 : x->nd, x->shape, x->data, &e);
    }
    static float one = 1;
    if (extra) st_writer_add(w, "model.diffusion_model.x_embedder.proj.bias", ST_F32, 1, (int64_t[]){ 1 }, &one, &e);
    st_writer_save(w, dst, &e);
    st_writer_free(w);
    st_close(f);
}

static void run_both(tctx *t, const char *spec, const char *family, const float *unit, int H, int W, float *z,
                     const float *latent, int zh, int zw, float *dec, vae **out)
{
    vae *v = open_vae(t, spec, OPS_F32, family);
    *out = v;
    if (!v) return;
    dit_err e = { 0 };
    CHECK(t, vae_encode(v, unit, H, W, z, NULL, &e) == DIT_OK, "%s", e.msg);
    CHECK(t, vae_decode(v, latent, zh, zw, dec, NULL, &e) == DIT_OK, "%s", e.msg);
}

static void t_other_layouts(tctx *t)
{
    if (!test_golden_present(t)) return;
    char model[1024], iop[1024], p[1024], cfg[1024];
    snprintf(model, sizeof model, "%s/vae/ae_tiny/model.safetensors", test_golden_dir());
    snprintf(iop, sizeof iop, "%s/vae/ae_tiny/io.safetensors", test_golden_dir());
    st_file *io = NULL;
    dit_err e = { 0 };
    CHECK(t, st_open(&io, iop, &e) == DIT_OK, "%s", e.msg);
    if (!io) return;
    int C, H, W, zc, zh, zw;
    dims4(io, "in.image", &C, &H, &W);
    dims4(io, "in.latent", &zc, &zh, &zw);
    const size_t n_img = (size_t)3 * H * W, n_lat = (size_t)zc * zh * zw;
    const float *pixels = io_get(t, io, "in.image", n_img), *latent = io_get(t, io, "in.latent", n_lat);
    vae *probe = open_vae(t, model, OPS_F32, NULL);
    if (!pixels || !latent || !probe) {
        vae_free(probe);
        st_close(io);
        return;
    }
    const size_t n_dec = (size_t)3 * zh * zw * probe->scale * probe->scale, n_zmax = (size_t)probe->z_channels * H * W;
    vae_free(probe);
    float *unit = fbuf(n_img), *z0 = fbuf(n_zmax), *d0 = fbuf(n_dec), *z1 = fbuf(n_zmax), *d1 = fbuf(n_dec);
    for (size_t i = 0; i < n_img; i++) unit[i] = pixels[i] * 0.5f + 0.5f;
    vae *ref;
    run_both(t, model, "flux", unit, H, W, z0, latent, zh, zw, d0, &ref);
    if (!ref) goto done;
    const size_t n_z = (size_t)ref->z_channels * (H / ref->scale) * (W / ref->scale);
    CHECK(t, !strcmp(ref->ops->name, "kl") && ref->shift == 0.1159f && ref->scaling == 0.3611f,
          "plain ae.safetensors: FLUX normalisation by default (%s)", ref->desc);
    /* diffusers folder: renamed tensors, attention as Linear [C, C], config.json with the factors */
    for (int old = 0; old < 2; old++) {
        char folder[512];
        snprintf(folder, sizeof folder, "%s/diffusers%d", tmpdir, old);
        mkdir(folder, 0777);
        snprintf(p, sizeof p, "%s/diffusion_pytorch_model.safetensors", folder);
        rewrite_kl(model, p, "", 1, old, 1, 0);
        snprintf(cfg, sizeof cfg, "%s/config.json", folder);
        FILE *f = fopen(cfg, "w");
        if (f) fputs("{\"_class_name\": \"AutoencoderKL\", \"scaling_factor\": 0.3611, \"shift_factor\": 0.1159}\n", f), fclose(f);
        vae *v;
        run_both(t, folder, NULL, unit, H, W, z1, latent, zh, zw, d1, &v);
        if (v) {
            CHECK(t, v->shift == 0.1159f && v->scaling == 0.3611f, "config.json factors: %s", v->desc);
            CHECK(t, !memcmp(z0, z1, sizeof(float) * n_z) && !memcmp(d0, d1, sizeof(float) * n_dec),
                  "diffusers names (%s attention names) give other numbers than the LDM names", old ? "old" : "new");
            printf("  diffusers folder (%s attention names): same bits as ae.safetensors\n", old ? "query/key/value" : "to_q/to_k/to_v");
        }
        vae_free(v);
        unlink(cfg), unlink(p), rmdir(folder);
    }
    /* SD3/SD3.5 single file: first_stage_model. prefix among other parts -> SD3 normalisation */
    rewrite_kl(model, tmp(p, "sd3.safetensors"), "first_stage_model.", 0, 0, 0, 1);
    vae *v;
    run_both(t, p, NULL, unit, H, W, z1, latent, zh, zw, d1, &v);
    if (v) {
        CHECK(t, v->shift == 0.0609f && v->scaling == 1.5305f, "first_stage_model.: SD3 normalisation (%s)", v->desc);
        vae_free(v);
        run_both(t, p, "flux", unit, H, W, z1, latent, zh, zw, d1, &v); /* the same numbers under the same family */
        CHECK(t, v && !memcmp(z0, z1, sizeof(float) * n_z) && !memcmp(d0, d1, sizeof(float) * n_dec),
              "first_stage_model. weights give other numbers");
        vae_free(v);
    }
    unlink(p);
    vae_free(ref);
done:
    free(unit), free(z0), free(d0), free(z1), free(d1);
    st_close(io);
}

/* ---- interface facts -------------------------------------------------------------------------- */

static void t_interface(tctx *t)
{
    CHECK(t, vae_kind_name(0) && !strcmp(vae_kind_name(0), "kl") && !strcmp(vae_kind_name(1), "taesd") &&
                 !strcmp(vae_kind_name(2), "pixel") && !vae_kind_name(3),
          "registry names");
    /* pixel space: P x P patches, exact round trip, pixel_unshuffle channel order */
    vae *v = open_vae(t, "pixel:2", OPS_F32, NULL);
    if (v) {
        CHECK(t, v->z_channels == 12 && v->scale == 2 && v->shift == 0 && v->scaling == 1 && v->img_scale == 0.5f &&
                     v->img_offset == 0.5f && v->can_encode && v->can_decode,
              "pixel:2 facts: %s", v->desc);
        float img[3 * 4 * 6], z[12 * 2 * 3], back[3 * 4 * 6];
        for (int i = 0; i < 72; i++) img[i] = (float)(i % 5) * 0.25f; /* [0,1], exact in [-1,1] too */
        dit_err e = { 0 };
        CHECK(t, vae_encode(v, img, 4, 6, z, NULL, &e) == DIT_OK && vae_decode(v, z, 2, 3, back, NULL, &e) == DIT_OK, "%s", e.msg);
        CHECK(t, !memcmp(img, back, sizeof img), "pixel space round trip is not the identity");
        /* z[c*4 + i*2 + j][y][x] = native img[c][2y + i][2x + j]: channel 5 = (c 1, i 0, j 1) at (1, 2) */
        CHECK(t, z[(5 * 2 + 1) * 3 + 2] == img[(1 * 4 + 2) * 6 + 5] * 2 - 1, "pixel_unshuffle channel order");
        vae_free(v);
    }
    dit_err e = { 0 };
    CHECK(t, vae_open(&v, "pixel:0", NULL, &e) == DIT_E_ARG && !v && strstr(e.msg, "patch size"), "pixel:0: %s", e.msg);
    /* 8-bit: clamp to [0, 1], x 255, truncated (sd3.5 / FLUX); back: byte / 255 */
    {
        const float px[6] = { 1.0f, 0.999f, 0.5f, -0.2f, NAN, 254.0f / 255.0f }; /* 3 channels x 1 x 2 */
        image im = { 0 };
        CHECK(t, vae_to_image(&im, px, 1, 2, &e) == DIT_OK && im.w == 2 && im.h == 1 && im.c == 3, "%s", e.msg);
        if (im.px) {
            const unsigned char want[6] = { 255, 127, 0, 254, 0, 254 }; /* pixels (1, 0.5, NaN), (0.999, -0.2, 254/255) */
            CHECK(t, !memcmp(im.px, want, 6), "vae_to_image bytes %d %d %d %d %d %d", im.px[0], im.px[1], im.px[2], im.px[3],
                  im.px[4], im.px[5]);
            float back[6];
            vae_from_image(&im, back);
            CHECK(t, back[0] == 1.0f && back[1] == 254.0f / 255.0f && back[2] == 127.0f / 255.0f && back[4] == 0,
                  "vae_from_image");
        }
        img_free(&im);
    }
    if (!test_golden_present(t)) return;
    char spec[1024];
    /* kinds detected from tensor names, facts as data */
    snprintf(spec, sizeof spec, "%s/taef2/taef2_decoder.safetensors", test_golden_dir());
    v = open_vae(t, spec, OPS_F32, NULL);
    if (v) {
        CHECK(t, !strcmp(v->ops->name, "taesd") && v->z_channels == 32 && v->scale == 8 && v->shift == 0 &&
                     v->scaling == 1 && v->img_scale == 1 && v->img_offset == 0 && v->can_encode && v->can_decode,
              "taef2 facts (encoder found next to the decoder): %s", v->desc);
        vae_free(v);
    }
    snprintf(spec, sizeof spec, "%s/vae/ae_tiny/model.safetensors", test_golden_dir());
    static const struct {
        const char *family;
        float shift, scaling;
    } fams[] = { { "flux", 0.1159f, 0.3611f }, { "sd3", 0.0609f, 1.5305f }, { "none", 0, 1 } };
    for (int i = 0; i < 3; i++) {
        v = open_vae(t, spec, OPS_F32, fams[i].family);
        if (!v) continue;
        CHECK(t, !strcmp(v->ops->name, "kl") && v->z_channels == 16 && v->scale == 2 && v->shift == fams[i].shift &&
                     v->scaling == fams[i].scaling && v->img_scale == 0.5f && v->img_offset == 0.5f,
              "ae_tiny facts as %s: %s", fams[i].family, v->desc);
        vae_free(v);
    }
}

/* ---- tiles ------------------------------------------------------------------------------------ */

/* The 512x512 photo: astronaut_256's in.image, each pixel repeated 2x2 (a real photo, [0,1]). */
static float *photo512(tctx *t)
{
    char iop[1024];
    snprintf(iop, sizeof iop, "%s/taef2/astronaut_256/io.safetensors", test_golden_dir());
    st_file *io = NULL;
    dit_err e = { 0 };
    CHECK(t, st_open(&io, iop, &e) == DIT_OK, "%s", e.msg);
    if (!io) return NULL;
    const float *src = io_get(t, io, "in.image", 3 * 256 * 256);
    float *img = NULL;
    if (src) {
        img = fbuf(3 * 512 * 512);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 512; y++)
                for (int x = 0; x < 512; x++) img[(c * 512 + y) * 512 + x] = src[(c * 256 + y / 2) * 256 + x / 2];
    }
    st_close(io);
    return img;
}

/* Tiled against untiled on 512x512: 3x3 tiles of 256 px (evenly spread: 128-px overlaps), one
 * GroupNorm calibration pass. Decode: max |difference| of [0,1] pixels; encode: max|dz| / max|z|.
 * photo: decode the photo's own latent (else an N(0,1) latent); enc_prec: the encode's path. */
static void tiled_vs_untiled(tctx *t, const char *spec, const char *what, int photo, ops_prec enc_prec,
                             double dec_bound, double enc_bound, double sync_gain)
{
    float *img = photo512(t);
    vae *v = open_vae(t, spec, OPS_F32, NULL), *ve = open_vae(t, spec, enc_prec, NULL);
    if (!img || !v || !ve) {
        free(img);
        vae_free(v), vae_free(ve);
        return;
    }
    const int zs = 512 / v->scale;
    const size_t n_z = (size_t)v->z_channels * zs * zs, n_img = (size_t)3 * 512 * 512;
    float *z0 = fbuf(n_z), *z1 = fbuf(n_z), *d0 = fbuf(n_img), *d1 = fbuf(n_img);
    dit_err e = { 0 };
    trng r = { test_seed(21) };
    for (size_t i = 0; i < n_z; i += 2) { /* N(0,1) by Box-Muller */
        const double u1 = (trng_u64(&r) >> 11) * 0x1p-53 + 0x1p-54, u2 = (trng_u64(&r) >> 11) * 0x1p-53;
        z0[i] = (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
        if (i + 1 < n_z) z0[i + 1] = (float)(sqrt(-2 * log(u1)) * sin(2 * M_PI * u2));
    }
    if (photo) CHECK(t, vae_encode(v, img, 512, 512, z0, NULL, &e) == DIT_OK, "%s", e.msg);
    CHECK(t, vae_decode(v, z0, zs, zs, d0, NULL, &e) == DIT_OK, "%s", e.msg);
    CHECK(t, vae_encode(ve, img, 512, 512, z1, NULL, &e) == DIT_OK, "%s", e.msg);
    v->tile = ve->tile = 256, v->overlap = ve->overlap = 64;
    vae_tiling tl;
    CHECK(t, vae_plan(v, VAE_DECODE, zs, zs, &tl, &e) == DIT_OK && tl.ny == 3 && tl.nx == 3 && tl.tile_h * v->scale == 256,
          "%s: plan %dx%d tiles of %d", what, tl.ny, tl.nx, tl.tile_h * v->scale);
    CHECK(t, vae_decode(v, z0, zs, zs, d1, NULL, &e) == DIT_OK, "%s", e.msg);
    const double dd = max_abs_diff(d0, d1, n_img);
    double mean = 0;
    for (size_t i = 0; i < n_img; i++) mean += fabs((double)d0[i] - d1[i]);
    /* without the calibration pass every tile normalises with its own statistics: much further off */
    v->tile_sync = 0;
    float *d2 = fbuf(n_img);
    CHECK(t, vae_decode(v, z0, zs, zs, d2, NULL, &e) == DIT_OK, "%s", e.msg);
    const double dd_own = max_abs_diff(d0, d2, n_img);
    free(d2);
    printf("  %-15s without the GroupNorm calibration pass: decode max|diff| %.4f\n", what, dd_own);
    CHECK(t, dd * sync_gain < dd_own, "%s: the calibration pass does not help enough (%.4f vs %.4f without)", what, dd,
          dd_own);
    float *z2 = d0; /* reuse: the tiled latent */
    CHECK(t, vae_encode(ve, img, 512, 512, z2, NULL, &e) == DIT_OK, "%s", e.msg);
    const double dz = rel_to_max(z2, z1, n_z);
    printf("  %-15s 512x512, 3x3 tiles of 256 px: decode (%s latent, f32) max|diff| %.4f (mean %.1e) of [0,1]; encode (%s) "
           "max|dz|/max|z| %.1e\n",
           what, photo ? "photo" : "N(0,1)", dd, mean / (double)n_img, ops_prec_name(enc_prec), dz);
    CHECK(t, dd < dec_bound, "%s: tiled decode differs by %.4f (bound %.3f)", what, dd, dec_bound);
    CHECK(t, dz < enc_bound, "%s: tiled encode differs by %.3g (bound %.3g)", what, dz, enc_bound);
    CHECK(t, dd > 0 && dz > 0, "%s: tiled and untiled runs are identical: tiles not used?", what);
    free(img), free(z0), free(z1), free(d0), free(d1);
    vae_free(v), vae_free(ve);
}

static void t_tiled_taef2(tctx *t)
{
    if (!test_golden_present(t)) return;
    char spec[1024];
    snprintf(spec, sizeof spec, "taesd:%s/taef2/taef2_decoder.safetensors", test_golden_dir());
    /* the photo's regions differ: without calibration 0.445 */
    tiled_vs_untiled(t, spec, "taef2", 1, OPS_F32, TILE_BOUND_TAEF2_DECODE, TILE_BOUND_TAEF2_ENCODE, 10);
}

/* A tiny random AutoencoderKL at full depth (4 levels: scale 8), 32 channels, 1 res block. */
static const char *tiny_kl(tctx *t, char *path)
{
    vae_synth_cfg c = vae_synth_default("kl");
    c.ch = 32, c.n_res = 1;
    c.ch_mult[0] = c.ch_mult[1] = c.ch_mult[2] = c.ch_mult[3] = 1;
    c.seed = 5;
    dit_err e = { 0 };
    CHECK(t, vae_synth(&c, tmp(path, "tiny_kl.safetensors"), &e) == DIT_OK, "%s", e.msg);
    return path;
}

static void t_tiled_kl(tctx *t)
{
    if (!test_golden_present(t)) return;
    char path[512], spec[600];
    snprintf(spec, sizeof spec, "kl:%s", tiny_kl(t, path));
    /* an N(0,1) latent is alike everywhere: without calibration 0.116 */
    tiled_vs_untiled(t, spec, "tiny random KL", 0, OPS_BF16, TILE_BOUND_KL_DECODE, TILE_BOUND_KL_ENCODE, 1.3);
    unlink(path);
}

/* Under a small budget the same call tiles by itself, its arenas stay within the budget, and the
 * result is the one of the same tiles asked for explicitly. */
static void t_auto_tiling(tctx *t)
{
    char path[512];
    tiny_kl(t, path);
    vae *v = open_vae(t, path, OPS_F32, NULL);
    if (!v) return;
    const int zs = 24; /* 192 x 192 pixels */
    const size_t n_z = (size_t)v->z_channels * zs * zs, n_img = (size_t)3 * zs * 8 * zs * 8;
    float *z = fbuf(n_z), *d0 = fbuf(n_img), *d1 = fbuf(n_img);
    trng r = { test_seed(11) };
    trng_fill(&r, z, n_z, -2, 2);
    vae_tiling whole, tl;
    dit_err e = { 0 };
    v->tile = 0, v->max_memory = (size_t)1 << 40;
    CHECK(t, vae_plan(v, VAE_DECODE, zs, zs, &whole, &e) == DIT_OK && whole.ny * whole.nx == 1, "untiled plan");
    v->max_memory = whole.bytes / 3;
    CHECK(t, vae_plan(v, VAE_DECODE, zs, zs, &tl, &e) == DIT_OK && tl.ny * tl.nx > 1 && tl.bytes <= v->max_memory,
          "budget %zu MiB: plan %dx%d tiles of %d cells, %zu bytes", v->max_memory >> 20, tl.ny, tl.nx, tl.tile_h, tl.bytes);
    CHECK(t, vae_decode(v, z, zs, zs, d0, NULL, &e) == DIT_OK, "%s", e.msg);
    const size_t held = v->run.cap + v->tiles.cap;
    printf("  budget %zu KiB (untiled run %zu KiB): %dx%d tiles of %d px, overlap %d px; arenas %zu KiB\n",
           v->max_memory >> 10, whole.bytes >> 10, tl.ny, tl.nx, tl.tile_h * 8, tl.overlap * 8, held >> 10);
    CHECK(t, held <= v->max_memory, "arenas %zu bytes exceed the budget %zu", held, v->max_memory);
    /* the same tiles asked for */
    vae_free(v);
    v = open_vae(t, path, OPS_F32, NULL);
    if (v) {
        v->tile = tl.tile_h * 8, v->overlap = tl.overlap * 8;
        CHECK(t, vae_decode(v, z, zs, zs, d1, NULL, &e) == DIT_OK, "%s", e.msg);
        CHECK(t, !memcmp(d0, d1, sizeof(float) * n_img), "automatic tiles differ from the same tiles asked for");
        /* a budget no tile fits */
        v->tile = 0, v->max_memory = 1 << 16;
        CHECK(t, vae_decode(v, z, zs, zs, d1, NULL, &e) == DIT_E_OOM && strstr(e.msg, "memory budget") && !strchr(e.msg, '\n'),
              "tiny budget: %s", e.msg);
    }
    free(z), free(d0), free(d1);
    vae_free(v);
    unlink(path);
}

/* ---- malformed and mismatched files ----------------------------------------------------------- */

typedef struct {
    const char *drop, *reshape, *retype, *extra; /* names */
} edit;

/* Copy src to dst applying e: drop a tensor, give one shape [numel] -> [a, b, c, d] permuted, I32, or
 * add a stray tensor. */
static void rewrite_edit(const char *src, const char *dst, const edit *ed)
{
    st_file *f = NULL;
    dit_err e = { 0 };
    if (st_open(&f, src, &e)) return;
    st_writer *w = st_writer_new();
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *x = st_at(f, i);
        if (ed->drop && !strcmp(x->name, ed->drop)) continue;
        int64_t shape[8];
        memcpy(shape, x->shape, sizeof shape);
        if (ed->reshape && !strcmp(x->name, ed->reshape) && x->nd == 4) /* [o, i, 3, 3] -> [o, i, 1, 9] */
            shape[2] = 1, shape[3] = x->shape[2] * x->shape[3];
        const st_dtype dt = ed->retype && !strcmp(x->name, ed->retype) ? ST_I32 : x->dtype;
        st_writer_add(w, x->name, dt, x->nd, shape, x->data, &e);
    }
    static float one[4];
    if (ed->extra) st_writer_add(w, ed->extra, ST_F32, 1, (int64_t[]){ 4 }, one, &e);
    st_writer_save(w, dst, &e);
    st_writer_free(w);
    st_close(f);
}

static void expect_open_error(tctx *t, const char *spec, dit_status code, const char *needle, const char *needle2)
{
    vae *v = NULL;
    dit_err e = { 0 };
    const dit_status r = vae_open(&v, spec, NULL, &e);
    printf("  %-28s -> %s\n", strrchr(spec, '/') ? strrchr(spec, '/') + 1 : spec, e.msg);
    CHECK(t, r == code && !v && strstr(e.msg, needle) && (!needle2 || strstr(e.msg, needle2)) && !strchr(e.msg, '\n'),
          "%s: status %s, message: %s (wanted '%s')", spec, err_status_name(r), e.msg, needle);
    vae_free(v);
}

static void t_bad_files(tctx *t)
{
    if (!test_golden_present(t)) return;
    char model[1024], p[512], taesd_dec[1024], taesd_enc[1024];
    snprintf(model, sizeof model, "%s/vae/ae_tiny/model.safetensors", test_golden_dir());
    snprintf(taesd_dec, sizeof taesd_dec, "%s/taef2/taef2_decoder.safetensors", test_golden_dir());
    snprintf(taesd_enc, sizeof taesd_enc, "%s/taef2/taef2_encoder.safetensors", test_golden_dir());
    rewrite_edit(model, tmp(p, "reshaped.safetensors"), &(edit){ .reshape = "decoder.up.0.block.1.conv1.weight" });
    expect_open_error(t, p, DIT_E_SHAPE, "'decoder.up.0.block.1.conv1.weight' has shape [32, 32, 1, 9]",
                      "expected [32, 32, 3, 3]");
    rewrite_edit(model, p, &(edit){ .drop = "encoder.mid.attn_1.q.weight" });
    expect_open_error(t, p, DIT_E_SHAPE, "missing tensor 'encoder.mid.attn_1.q.weight'", NULL);
    rewrite_edit(model, p, &(edit){ .extra = "decoder.up.0.block.0.stray" });
    expect_open_error(t, p, DIT_E_SHAPE, "unexpected tensor 'decoder.up.0.block.0.stray'", NULL);
    rewrite_edit(model, p, &(edit){ .retype = "decoder.norm_out.bias" });
    expect_open_error(t, p, DIT_E_SHAPE, "'decoder.norm_out.bias' has dtype I32", NULL);
    rewrite_edit(model, p, &(edit){ .drop = "decoder.up.0.block.0.nin_shortcut.weight" }); /* 64 -> 32 needs it */
    expect_open_error(t, p, DIT_E_SHAPE, "missing tensor 'decoder.up.0.block.0.nin_shortcut.weight'", "[32, 64, 1, 1]");
    /* not a VAE at all: auto-detection says so; kl: names the file */
    rewrite_edit(taesd_dec, p, &(edit){ .drop = "1.weight" });
    expect_open_error(t, p, DIT_E_FORMAT, "not a VAE", NULL);
    char spec[1600];
    snprintf(spec, sizeof spec, "kl:%s", taesd_dec);
    expect_open_error(t, spec, DIT_E_FORMAT, "no AutoencoderKL tensors", NULL);
    /* TAESD: a block conv of the wrong shape; encoder and decoder of different latent widths */
    rewrite_edit(taesd_dec, p, &(edit){ .reshape = "8.conv.2.weight" });
    expect_open_error(t, p, DIT_E_SHAPE, "'8.conv.2.weight' has shape [64, 64, 1, 9]", NULL);
    char small[512];
    vae_synth_cfg c = vae_synth_default("taesd");
    c.z = 16, c.encoder = 0;
    dit_err e = { 0 };
    CHECK(t, vae_synth(&c, tmp(small, "taesd16.safetensors"), &e) == DIT_OK, "%s", e.msg);
    snprintf(spec, sizeof spec, "taesd:%s,%s", taesd_enc, small);
    expect_open_error(t, spec, DIT_E_SHAPE, "the encoder gives 32 latent channels", "the decoder takes 16");
    /* decoder only: encode is unsupported, with a message */
    vae *v = open_vae(t, small, OPS_F32, NULL);
    if (v) {
        float img[3 * 8 * 8] = { 0 }, z[16];
        CHECK(t, !v->can_encode && v->can_decode, "decoder-only facts");
        CHECK(t, vae_encode(v, img, 8, 8, z, NULL, &e) == DIT_E_UNSUPPORTED && strstr(e.msg, "no encoder"), "%s", e.msg);
        vae_free(v);
    }
    /* encode needs multiples of the scale; unknown family; missing path */
    v = open_vae(t, model, OPS_F32, NULL);
    if (v) {
        float img[3 * 6 * 6] = { 0 }, z[16 * 9];
        CHECK(t, vae_encode(v, img, 5, 6, z, NULL, &e) == DIT_E_ARG && strstr(e.msg, "multiple of 2"), "%s", e.msg);
        vae_free(v);
    }
    vae_opts o = vae_opts_default();
    o.family = "sdxl";
    CHECK(t, vae_open(&v, model, &o, &e) == DIT_E_ARG && strstr(e.msg, "unknown latent family 'sdxl'"), "%s", e.msg);
    expect_open_error(t, "/nonexistent/ae.safetensors", DIT_E_IO, "/nonexistent/ae.safetensors", NULL);
    unlink(p), unlink(small);
}

int main(void)
{
    tctx t = test_begin("vae");
    test_print_seed();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dit_test_vae_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "test_vae: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    const char *only = getenv("ONLY");
#define RUN1(f) if (!only || !*only || !strcmp(only, #f)) RUN(&t, f)
    RUN1(t_interface);
    RUN1(t_golden_kl);
    RUN1(t_golden_taef2);
    RUN1(t_other_layouts);
    RUN1(t_bad_files);
    RUN1(t_auto_tiling);
    RUN1(t_tiled_kl);
    RUN1(t_tiled_taef2);
    rmdir(tmpdir);
    return test_end(&t);
}
