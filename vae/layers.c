/* vae/layers.c — small layers the kinds share: convolution on the object's path with a message
 * naming the module, residual add, ReLU, transpose, taps. See vae_impl.h. */
#include "vae/vae_impl.h"

dit_status vae__conv(vae *v, const char *module, float *y, const float *x, int C, int H, int W, const tensor *w,
                     const float *b, int stride, int pt, int pl, int pb, int pr, dit_err *e)
{
    const ops_conv cv = { .stride = stride, .pad_t = pt, .pad_l = pl, .pad_b = pb, .pad_r = pr };
    const dit_status r = ops_conv2d(v->ctx, v->prec, y, x, 1, C, H, W, w, b, &cv);
    if (r) return err_set(e, r, "vae: %s: %s", module, ops_ctx_err(v->ctx)->msg);
    return DIT_OK;
}

dit_status vae__conv_same(vae *v, const char *module, float *y, const float *x, int C, int H, int W,
                          const tensor *w, const float *b, dit_err *e)
{
    const int p = (int)w->shape[2] / 2;
    return vae__conv(v, module, y, x, C, H, W, w, b, 1, p, p, p, p, e);
}

void vae__add(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void vae__relu(float *y, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = y[i] < 0 ? 0 : y[i]; /* NaN stays NaN, as torch.relu */
}

void vae__transpose(float *y, const float *x, int64_t rows, int64_t cols)
{
    enum { B = 32 }; /* blocks of B x B keep both sides in cache */
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t r0 = 0; r0 < rows; r0 += B)
        for (int64_t c0 = 0; c0 < cols; c0 += B)
            for (int64_t r = r0; r < r0 + B && r < rows; r++)
                for (int64_t c = c0; c < c0 + B && c < cols; c++) y[c * rows + r] = x[r * cols + c];
}

void vae__tap(const hook_list *taps, const char *name, const float *x, int c, int h, int w)
{
    if (!taps || !taps->n) return;
    const hook_site s = { .model = "vae", .block = -1, .grid_h = h, .grid_w = w };
    hooks_tap(taps, &s, name, x, c, (int)((int64_t)h * w));
}
