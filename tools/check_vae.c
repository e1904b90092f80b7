/* tools/check_vae.c — `dit check` for the vae/ (AutoencoderKL) and taef2/ (real TAEF2) golden case
 * folders: every output and intermediate of the case through the library (vae_open, vae_encode,
 * vae_decode), on the f32 path against the case's f32 tolerance (suggested_tolerance.f32_impl, or a
 * per-tensor bound) and on the bf16 path against CHECK_FAST_BOUND; taef2 also prints the round-trip
 * PSNR next to the reference's.
 *
 * Intermediates arrive through taps (vae.h): a tap named N is compared with io tensor "out.N" when
 * the case has it (e.g. out.enc.down.0.downsample, out.dec.mid.attn_1, out.moments, out.dec.3_block).
 * The fast path's bound is CHECK_FAST_BOUND (2e-2), the project's bound for every fast path.
 * Runs are untiled (tile -1), as the reference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/check.h"
#include "vae/vae.h"

/* PSNR may fall below the reference's by at most this much (dB): f32 path, bf16 path. */
#define PSNR_SLACK_F32 0.01
#define PSNR_SLACK_FAST 0.1

#define MAX_SEEN 256

typedef struct {
    check_run *r;
    const st_file *io;
    const char *seen[MAX_SEEN]; /* io tensors compared on some path (names owned by io) */
    int n_seen;
    const char *path; /* "f32" or "bf16" */
    double dflt;      /* the path's bound for tensors without their own */
    float *moments;   /* copy of the "moments" tap (KL), owned */
    size_t n_moments;
} tap_ctx;

static double bound_for(const tap_ctx *c, const char *name)
{
    if (strcmp(c->path, "f32")) return c->dflt;
    return check_tolerance(c->r, name, c->dflt, NULL);
}

static void compare(tap_ctx *c, const char *name, const float *got, size_t n)
{
    const float *ref = check_io_f32(c->r, c->io, name, n);
    if (ref) check_report(c->r, c->path, name, got, ref, n, bound_for(c, name));
    const st_tensor *t = st_find(c->io, name);
    if (t && c->n_seen < MAX_SEEN) c->seen[c->n_seen++] = t->name;
}

/* A note for every out.* tensor of the case that no run compared (a module this code does not tap). */
static void report_unseen(check_run *r, const st_file *io, const tap_ctx *c)
{
    for (int i = 0; i < st_count(io); i++) {
        const char *name = st_at(io, i)->name;
        int seen = strncmp(name, "out.", 4) != 0;
        for (int k = 0; k < c->n_seen && !seen; k++) seen = !strcmp(c->seen[k], name);
        if (!seen) fprintf(r->out, "note: %s not compared (no such output or tap here)\n", name);
    }
}

static void on_tap(void *user, const hook_site *s, const char *name, const float *x, int64_t rows, int cols)
{
    (void)s;
    tap_ctx *c = user;
    const size_t n = (size_t)rows * (size_t)cols;
    char key[128];
    snprintf(key, sizeof key, "out.%s", name);
    if (!strcmp(name, "moments")) {
        free(c->moments);
        c->moments = malloc(sizeof(float) * n);
        if (c->moments) memcpy(c->moments, x, sizeof(float) * n), c->n_moments = n;
    }
    if (st_find(c->io, key)) compare(c, key, x, n);
}

/* Elements of io tensor name ([1, C, H, W]) and its C, H, W; 0 when absent or not 4-D. */
static size_t io_dims(check_run *r, const st_file *io, const char *name, int *C, int *H, int *W)
{
    int64_t sh[4];
    if (check_io_shape(io, name, 4, sh) || sh[0] != 1) {
        check_error(r, "%s: tensor '%s' missing or not [1, C, H, W]", st_path(io), name);
        return 0;
    }
    *C = (int)sh[1], *H = (int)sh[2], *W = (int)sh[3];
    return (size_t)(sh[1] * sh[2] * sh[3]);
}

/* case.json suggested_tolerance.<key> (max|err| / max|ref|), or dflt. */
static double suggested(const check_run *r, const char *key, double dflt)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r->json, "suggested_tolerance");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(st, key);
    return cJSON_IsNumber(f) && f->valuedouble > 0 ? f->valuedouble : dflt;
}
/* f32 path: the case's f32_impl. Fast path: CHECK_FAST_BOUND (2e-2), the project's bound for every
 * fast path (TAESD computes in f32 there, see vae/taesd.c). */
static double path_bound(const check_run *r, ops_prec p)
{
    return p != OPS_BF16 ? suggested(r, "f32_impl", 1e-4) : CHECK_FAST_BOUND;
}

static const char *json_str(const check_run *r, const char *obj, const char *key)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(r->json, obj);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static vae *open_vae(check_run *r, const char *spec, ops_prec p, const char *family)
{
    vae_opts o = vae_opts_default();
    o.prec = p, o.family = family, o.tile = -1;
    vae *v = NULL;
    dit_err e = { 0 };
    if (vae_open(&v, spec, &o, &e)) check_error(r, "%s", e.msg);
    return v;
}

/* [0,1] image <-> the VAE's native range (KL [-1,1], TAESD [0,1]), from the object's data. */
static void to_unit(const vae *v, float *dst, const float *native, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = native[i] * v->img_scale + v->img_offset;
}
static void to_native(const vae *v, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = (x[i] - v->img_offset) / v->img_scale;
}

/* ---- vae/: tiny AutoencoderKL ----------------------------------------------------------------- */

static void check_kl_path(check_run *r, const st_file *io, const char *spec, ops_prec p, tap_ctx *tc_out)
{
    tap_ctx tc = { r, io, { NULL }, 0, p == OPS_BF16 ? "bf16" : "f32", path_bound(r, p), NULL, 0 };
    const hook h = { .user = &tc, .tap = on_tap };
    const hook_list taps = { &h, 1 };
    int C = 0, H = 0, W = 0, zc = 0, zh = 0, zw = 0;
    const size_t n_img = io_dims(r, io, "in.image", &C, &H, &W), n_lat = io_dims(r, io, "in.latent", &zc, &zh, &zw);
    const float *pixels = n_img ? check_io_f32(r, io, "in.image", n_img) : NULL;
    const float *latent = n_lat ? check_io_f32(r, io, "in.latent", n_lat) : NULL;
    if (!pixels || !latent || C != 3) return;
    /* the three interpretations of the latent: raw, FLUX, SD3 (golden README vae/) */
    static const struct {
        const char *family, *latent, *decoded;
    } runs[] = { { "none", "out.mean", "out.decoded_raw" },
                 { "flux", "out.latent_flux", "out.decoded_flux" },
                 { "sd3", "out.latent_sd3", "out.decoded_sd3" } };
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        vae *v = open_vae(r, spec, p, runs[k].family);
        if (!v) break;
        const int first = k == 0;
        const int s = v->scale, oh = zh * s, ow = zw * s;
        const size_t n_z = (size_t)v->z_channels * (H / s) * (W / s), n_dec = (size_t)3 * oh * ow;
        float *unit = malloc(sizeof(float) * n_img), *z = malloc(sizeof(float) * n_z), *dec = malloc(sizeof(float) * n_dec);
        dit_err e = { 0 };
        if (!unit || !z || !dec) check_error(r, "out of memory");
        else {
            to_unit(v, unit, pixels, n_img);
            if (vae_encode(v, unit, H, W, z, first ? &taps : NULL, &e)) check_error(r, "%s", e.msg);
            else compare(&tc, runs[k].latent, z, n_z);
            if (zc != v->z_channels) check_error(r, "in.latent has %d channels, the VAE %d", zc, v->z_channels);
            else if (vae_decode(v, latent, zh, zw, dec, first ? &taps : NULL, &e)) check_error(r, "%s", e.msg);
            else {
                to_native(v, dec, n_dec);
                compare(&tc, runs[k].decoded, dec, n_dec);
            }
        }
        if (first && !e.code && tc.moments && tc.n_moments == 2 * n_z) { /* logvar = the second half of the moments */
            compare(&tc, "out.logvar", tc.moments + n_z, n_z);
            for (size_t i = 0; i < n_z; i++) {
                float *lv = tc.moments + n_z + i;
                *lv = *lv < -30 ? -30 : *lv > 20 ? 20 : *lv; /* sd3.5 SDVAE.encode clamps to [-30, 20] */
            }
            compare(&tc, "out.logvar_clamped", tc.moments + n_z, n_z);
        }
        if (first && !e.code) { /* reconstruction = decoder(reference mean) */
            const float *mean = check_io_f32(r, io, "out.mean", n_z);
            float *rec = malloc(sizeof(float) * n_img);
            if (mean && rec) {
                if (vae_decode(v, mean, H / s, W / s, rec, NULL, &e)) check_error(r, "%s", e.msg);
                else {
                    to_native(v, rec, n_img);
                    compare(&tc, "out.reconstruction", rec, n_img);
                }
            }
            free(rec);
        }
        free(unit), free(z), free(dec);
        vae_free(v);
    }
    free(tc.moments);
    *tc_out = tc;
}

/* ---- taef2/: the real TAEF2 ------------------------------------------------------------------- */

static double psnr(const float *decoded, const float *ref, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        const double x = decoded[i] < 0 ? 0 : decoded[i] > 1 ? 1 : decoded[i], d = x - ref[i];
        se += d * d;
    }
    return se > 0 ? 10 * log10(1.0 / (se / (double)n)) : INFINITY;
}

static void check_taesd_path(check_run *r, const st_file *io, const char *spec, ops_prec p, tap_ctx *tc_out)
{
    tap_ctx tc = { r, io, { NULL }, 0, p == OPS_BF16 ? "bf16" : "f32", path_bound(r, p), NULL, 0 };
    const hook h = { .user = &tc, .tap = on_tap };
    const hook_list taps = { &h, 1 };
    int C = 0, H = 0, W = 0, zc = 0, zh = 0, zw = 0;
    const size_t n_img = io_dims(r, io, "in.image", &C, &H, &W), n_lat = io_dims(r, io, "out.latent", &zc, &zh, &zw);
    const float *pixels = n_img ? check_io_f32(r, io, "in.image", n_img) : NULL;
    const float *latent = n_lat ? check_io_f32(r, io, "out.latent", n_lat) : NULL;
    if (!pixels || !latent || C != 3) return;
    vae *v = open_vae(r, spec, p, NULL);
    if (!v) return;
    float *unit = malloc(sizeof(float) * n_img), *z = malloc(sizeof(float) * n_lat), *dec = malloc(sizeof(float) * n_img);
    dit_err e = { 0 };
    if (!unit || !z || !dec) check_error(r, "out of memory");
    else if (zc != v->z_channels || zh * v->scale != H || zw * v->scale != W)
        check_error(r, "out.latent [1, %d, %d, %d] does not fit the VAE (%d channels, scale %d) and in.image", zc, zh, zw,
                    v->z_channels, v->scale);
    else {
        to_unit(v, unit, pixels, n_img);
        if (vae_encode(v, unit, H, W, z, &taps, &e)) check_error(r, "%s", e.msg);
        else compare(&tc, "out.latent", z, n_lat);
        if (!e.code && vae_decode(v, latent, zh, zw, dec, &taps, &e)) check_error(r, "%s", e.msg);
        else if (!e.code) {
            to_native(v, dec, n_img);
            compare(&tc, "out.decoded", dec, n_img);
        }
        /* round trip through our encoder and decoder, as the reference's PSNR (case.json psnr_definition) */
        if (!e.code && vae_decode(v, z, zh, zw, dec, NULL, &e)) check_error(r, "%s", e.msg);
        else if (!e.code) {
            const cJSON *ref = cJSON_GetObjectItemCaseSensitive(r->json, "roundtrip_psnr_db");
            const double got = psnr(dec, unit, n_img), slack = p == OPS_BF16 ? PSNR_SLACK_FAST : PSNR_SLACK_F32;
            if (cJSON_IsNumber(ref)) {
                const int ok = got >= ref->valuedouble - slack;
                r->compared++;
                if (!ok) r->failed++;
                fprintf(r->out, "%-5s %-22s %.2f dB  reference %.2f dB  (at most %.2f dB lower)  %s\n", tc.path,
                        "round-trip PSNR", got, ref->valuedouble, slack, ok ? "ok" : "FAIL");
            } else {
                fprintf(r->out, "%-5s %-22s %.2f dB\n", tc.path, "round-trip PSNR", got);
            }
        }
    }
    free(unit), free(z), free(dec);
    vae_free(v);
    *tc_out = tc;
}

int check_vae(check_run *r)
{
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(r->json, "family");
    const int taef2 = cJSON_IsString(fam) && !strcmp(fam->valuestring, "taef2");
    char path[4096], spec[8192];
    st_file *io = NULL;
    dit_err e = { 0 };
    if (st_open(&io, check_path(path, sizeof path, r->dir, "io.safetensors"), &e)) {
        fprintf(r->out, "error: %s\n", e.msg);
        return 1;
    }
    if (taef2) {
        const char *enc = json_str(r, "weights", "encoder"), *dec = json_str(r, "weights", "decoder");
        snprintf(spec, sizeof spec, "taesd:%s/%s,%s/%s", r->dir, enc ? enc : "../taef2_encoder.safetensors", r->dir,
                 dec ? dec : "../taef2_decoder.safetensors");
    } else {
        const char *file = json_str(r, "weights", "file");
        snprintf(spec, sizeof spec, "kl:%s/%s", r->dir, file ? file : "model.safetensors");
    }
    tap_ctx tc = { 0 };
    for (int p = OPS_F32; p <= OPS_BF16; p++) {
        if ((p == OPS_F32 && r->fast_only) || (p == OPS_BF16 && r->ref_only)) continue;
        if (taef2) check_taesd_path(r, io, spec, (ops_prec)p, &tc);
        else check_kl_path(r, io, spec, (ops_prec)p, &tc);
    }
    report_unseen(r, io, &tc);
    st_close(io);
    return 0;
}
