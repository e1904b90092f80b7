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

/* Add the statistics of x's region [y0, y1) x [x0, x1) per group to acc (count, mean, M2): each
 * group's own two passes in double, merged by Chan et al.'s pairwise formula. */
static void region_stats(double *acc, const float *x, int C, int H, int W, int groups, int y0, int y1, int x0, int x1)
{
    const int cpg = C / groups;
#pragma omp parallel for schedule(static)
    for (int g = 0; g < groups; g++) {
        double s = 0, m2 = 0;
        const double n = (double)cpg * (y1 - y0) * (x1 - x0);
        for (int c = g * cpg; c < (g + 1) * cpg; c++)
            for (int y = y0; y < y1; y++)
                for (int i = x0; i < x1; i++) s += x[((int64_t)c * H + y) * W + i];
        const double mean = s / n;
        for (int c = g * cpg; c < (g + 1) * cpg; c++)
            for (int y = y0; y < y1; y++)
                for (int i = x0; i < x1; i++) {
                    const double d = x[((int64_t)c * H + y) * W + i] - mean;
                    m2 += d * d;
                }
        double *a = acc + 3 * g;
        const double na = a[0], nt = na + n, delta = mean - a[1];
        a[2] += m2 + delta * delta * na * n / nt;
        a[1] += delta * n / nt;
        a[0] = nt;
    }
}

void vae__groupnorm(vae *v, float *y, const float *x, const float *w, const float *b, int C, int H, int W, int groups,
                    float eps)
{
    vae_sync *s = &v->sync;
    const int k = s->call++;
    const int synced = (s->record || s->apply) && k < VAE_SYNC_CALLS && groups <= VAE_SYNC_GROUPS;
    if (synced && s->record) { /* the tile's own region at this layer's resolution */
        s->eps[k] = eps;
        region_stats(s->acc + (size_t)3 * VAE_SYNC_GROUPS * k, x, C, H, W, groups, s->own_y0 * H / s->cells_h,
                     s->own_y1 * H / s->cells_h, s->own_x0 * W / s->cells_w, s->own_x1 * W / s->cells_w);
    }
    if (synced && s->apply)
        ops_groupnorm_apply(y, x, w, b, C, (int64_t)H * W, groups, s->mean + (size_t)VAE_SYNC_GROUPS * k,
                            s->rstd + (size_t)VAE_SYNC_GROUPS * k);
    else ops_groupnorm(y, x, w, b, C, (int64_t)H * W, groups, eps);
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
