/* dit/embed.h — the pieces every family shares around its transformer blocks: the timestep
 * sinusoid, latent <-> token layouts and the SD3 pos_embed crop (golden README sections 4-7).
 * Pure data movement and elementwise math on one sample; no allocation.
 *
 *   dit_timestep_freq(freq, &t, 1, 1000.0f);      // FLUX: the model scales t in [0,1] by 1000
 *   dit_flux_pack(tokens, latent, 16, H, W);        // [16,H,W] -> [(H/2)(W/2), 64]
 */
#ifndef DIT_DIT_EMBED_H
#define DIT_DIT_EMBED_H

#define DIT_FREQ_DIM 256 /* timestep sinusoid width of every family */

/* out: [n, 256]. For T = scale * t[k]: freqs[i] = exp(-ln(10000) i / 128), i < 128, and
 * out[k] = [cos(T freqs) | sin(T freqs)] — cos half first (README section 4). Computed in double,
 * rounded once. scale: 1000 for FLUX's t and guidance, 1 for SD3 (t = 1000 sigma given), DiT, SiT. */
void dit_timestep_freq(float *out, const float *t, int n, float scale);

/* FLUX packing: x [C, H, W] (H, W even) -> tok [(H/2)(W/2), 4C]; token r*(W/2)+c holds the 2x2
 * patch at rows 2r.., columns 2c.., feature ch*4 + ph*2 + pw (channel-major). */
void dit_flux_pack(float *tok, const float *x, int C, int H, int W);
void dit_flux_unpack(float *x, const float *tok, int C, int H, int W);

/* Patch embedding as a matrix product: x [C, H, W] -> cols [(H/p)(W/p), C p p] with feature
 * ch*p*p + i*p + j, the order of a Conv2d weight [hidden, C, p, p], so that
 * tokens = cols W^T + b with W viewed as [hidden, C p p] (SD3 x_embedder, DiT/SiT). */
void dit_patchify(float *cols, const float *x, int C, int H, int W, int p);
/* SD3/DiT/SiT final tokens -> latent: tok [(H/p)(W/p), p p C] with feature (i*p + j)*C + ch
 * (channel-minor, the opposite of FLUX) -> x [C, H, W]. */
void dit_unpatchify(float *x, const float *tok, int C, int H, int W, int p);

/* SD3 pos_embed: pos is an M x M row-major grid of hidden-wide rows; for an h x w patch grid the
 * centre crop starts at top = (M - h) / 2, left = (M - w) / 2 (floor). dst: [h*w, hidden].
 * Returns 0, or -1 when the grid is larger than M x M. */
int dit_pos_crop(float *dst, const float *pos, int M, int h, int w, int hidden);

#endif
