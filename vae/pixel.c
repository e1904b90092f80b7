/* vae/pixel.c — pixel space as a "VAE": the latent is the image itself in P x P patches, for models
 * that denoise pixels. encode = torch.nn.functional.pixel_unshuffle(x, P), decode = pixel_shuffle:
 * z[c*P*P + i*P + j][y][x] = img[c][y*P + i][x*P + j]. Images in [-1, 1] as the KL VAEs; no weights,
 * no normalisation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vae/vae_impl.h"

#define PIXEL_MAX_PATCH 64

static void pixel_free(vae *v)
{
    vae__release(v);
    free(v);
}

/* to_latent: src = img [3, zh*P, zw*P] -> dst = z [3*P*P, zh, zw]; else the other way. */
static void shuffle(const vae *v, const float *src, float *dst, int zh, int zw, int to_latent)
{
    const int P = v->scale;
    const int64_t W = (int64_t)zw * P, H = (int64_t)zh * P;
#pragma omp parallel for collapse(2) schedule(static)
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < zh; y++)
            for (int i = 0; i < P; i++)
                for (int x = 0; x < zw; x++)
                    for (int j = 0; j < P; j++) {
                        const int64_t iz = (((int64_t)(c * P + i) * P + j) * zh + y) * zw + x;
                        const int64_t ii = ((int64_t)c * H + (int64_t)y * P + i) * W + (int64_t)x * P + j;
                        dst[to_latent ? iz : ii] = src[to_latent ? ii : iz];
                    }
}

static dit_status pixel_decode(vae *v, const float *z, int zh, int zw, float *img, const hook_list *taps, dit_err *e)
{
    (void)taps, (void)e;
    shuffle(v, z, img, zh, zw, 0);
    return DIT_OK;
}

static dit_status pixel_encode(vae *v, const float *img, int h, int w, float *z, const hook_list *taps, dit_err *e)
{
    (void)taps, (void)e;
    shuffle(v, img, z, h / v->scale, w / v->scale, 1);
    return DIT_OK;
}

static size_t pixel_run_bytes(const vae *v, int dir, int zh, int zw, size_t *scratch)
{
    (void)v, (void)dir, (void)zh, (void)zw;
    *scratch = 0;
    return 0;
}

static const vae_ops PIXEL_OPS = { "pixel", pixel_decode, pixel_encode, pixel_run_bytes, pixel_free };

dit_status vae__pixel_open(vae **out, const char *arg, const vae_opts *o, dit_err *e)
{
    *out = NULL;
    int p = 1;
    if (arg && *arg) {
        char *end;
        const long n = strtol(arg, &end, 10);
        if (*end || n < 1 || n > PIXEL_MAX_PATCH)
            return err_set(e, DIT_E_ARG, "vae: pixel:%s: the patch size must be an integer from 1 to %d", arg, PIXEL_MAX_PATCH);
        p = (int)n;
    }
    vae *v = calloc(1, sizeof *v);
    if (!v) return err_set(e, DIT_E_OOM, "vae: out of memory");
    dit_status r = vae__init(v, &PIXEL_OPS, o, e);
    if (r) {
        pixel_free(v);
        return r;
    }
    v->z_channels = 3 * p * p, v->scale = p;
    v->img_scale = 0.5f, v->img_offset = 0.5f; /* [-1, 1], as the KL VAEs */
    v->can_encode = v->can_decode = 1;
    snprintf(v->desc, sizeof v->desc, "pixel space, %dx%d patches, %d channels; image [-1, 1]", p, p, v->z_channels);
    *out = v;
    return DIT_OK;
}
