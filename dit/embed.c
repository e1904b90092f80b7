/* dit/embed.c — see embed.h. Mirrors flux/modules/layers.py timestep_embedding, flux/sampling.py
 * prepare/unpack, sd3 mmditx.py PatchEmbed / cropped_pos_embed / unpatchify, DiT models.py. */
#include "embed.h"

#include <math.h>
#include <string.h>

void dit_timestep_freq(float *out, const float *t, int n, float scale)
{
    const int half = DIT_FREQ_DIM / 2;
    for (int k = 0; k < n; k++) {
        const double T = (double)scale * t[k];
        for (int i = 0; i < half; i++) {
            const double a = T * exp(-log(10000.0) * i / half);
            out[(size_t)k * DIT_FREQ_DIM + i] = (float)cos(a);
            out[(size_t)k * DIT_FREQ_DIM + half + i] = (float)sin(a);
        }
    }
}

/* One loop for both directions: element (ch, 2r+ph, 2c+pw) of x <-> token r*(W/2)+c, feature
 * ch*4 + ph*2 + pw. */
static void flux_permute(float *tok, float *x, int C, int H, int W, int to_tokens)
{
    const int w2 = W / 2;
    for (int r = 0; r < H / 2; r++)
        for (int c = 0; c < w2; c++)
            for (int ch = 0; ch < C; ch++)
                for (int ph = 0; ph < 2; ph++)
                    for (int pw = 0; pw < 2; pw++) {
                        float *t = &tok[((size_t)r * w2 + c) * 4 * C + ch * 4 + ph * 2 + pw];
                        float *l = &x[((size_t)ch * H + 2 * r + ph) * W + 2 * c + pw];
                        if (to_tokens) *t = *l;
                        else *l = *t;
                    }
}

void dit_flux_pack(float *tok, const float *x, int C, int H, int W)
{
    flux_permute(tok, (float *)x, C, H, W, 1); /* x is only read */
}

void dit_flux_unpack(float *x, const float *tok, int C, int H, int W)
{
    flux_permute((float *)tok, x, C, H, W, 0); /* tok is only read */
}

void dit_patchify(float *cols, const float *x, int C, int H, int W, int p)
{
    const int h = H / p, w = W / p, f = C * p * p;
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++)
            for (int ch = 0; ch < C; ch++)
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < p; j++)
                        cols[((size_t)r * w + c) * f + (ch * p + i) * p + j] = x[((size_t)ch * H + r * p + i) * W + c * p + j];
}

void dit_unpatchify(float *x, const float *tok, int C, int H, int W, int p)
{
    const int h = H / p, w = W / p, f = C * p * p;
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++)
            for (int i = 0; i < p; i++)
                for (int j = 0; j < p; j++)
                    for (int ch = 0; ch < C; ch++)
                        x[((size_t)ch * H + r * p + i) * W + c * p + j] = tok[((size_t)r * w + c) * f + (i * p + j) * C + ch];
}

int dit_pos_crop(float *dst, const float *pos, int M, int h, int w, int hidden)
{
    if (h > M || w > M || h < 0 || w < 0) return -1;
    const int top = (M - h) / 2, left = (M - w) / 2;
    for (int r = 0; r < h; r++)
        memcpy(dst + (size_t)r * w * hidden, pos + ((size_t)(top + r) * M + left) * hidden, sizeof(float) * w * hidden);
    return 0;
}
