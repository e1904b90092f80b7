/* vae/vae.c — the registry, the latent normalisation and image range (each in one place), and
 * tiled runs with blending. See vae.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vae/vae_impl.h"

/* ---- registry --------------------------------------------------------------------------------- */

typedef dit_status (*open_fn)(vae **out, const char *arg, const vae_opts *o, dit_err *e);
typedef dit_status (*synth_fn)(const vae_synth_cfg *c, const char *path, dit_err *e);

static const struct {
    const char *name;
    open_fn open;
    int (*detect)(const st_set *s); /* NULL: not a file kind */
    synth_fn synth;                 /* NULL: no weights to synthesize */
} KINDS[] = {
    { "kl", vae__kl_open, vae__kl_detect, vae__kl_synth },
    { "taesd", vae__taesd_open, vae__taesd_detect, vae__taesd_synth },
    { "pixel", vae__pixel_open, NULL, NULL },
};
#define N_KINDS ((int)(sizeof KINDS / sizeof KINDS[0]))

const char *vae_kind_name(int i)
{
    return i >= 0 && i < N_KINDS ? KINDS[i].name : NULL;
}

vae_opts vae_opts_default(void)
{
    return (vae_opts){ .prec = OPS_BF16, .family = NULL, .tile = 0, .overlap = 0, .tile_sync = 1, .max_memory = 0 };
}

/* "NAME:ARG" or "NAME" for a registered name -> its index and *arg; -1 otherwise (a path). */
static int kind_of_spec(const char *spec, const char **arg)
{
    for (int i = 0; i < N_KINDS; i++) {
        const size_t n = strlen(KINDS[i].name);
        if (!strncmp(spec, KINDS[i].name, n) && (spec[n] == ':' || spec[n] == 0)) {
            *arg = spec[n] ? spec + n + 1 : "";
            return i;
        }
    }
    return -1;
}

dit_status vae_open(vae **out, const char *spec, const vae_opts *o, dit_err *e)
{
    *out = NULL;
    if (!spec || !*spec) return err_set(e, DIT_E_ARG, "vae: empty VAE name or path");
    const char *arg;
    const int k = kind_of_spec(spec, &arg);
    if (k >= 0) return KINDS[k].open(out, arg, o, e);
    /* a path: a folder is a diffusers AutoencoderKL; a file is recognised by its tensor names */
    struct stat st;
    if (stat(spec, &st)) return err_set(e, DIT_E_IO, "%s: no such file or folder", spec);
    if (S_ISDIR(st.st_mode)) return vae__kl_open(out, spec, o, e);
    st_set *s;
    dit_status r = st_set_open(&s, spec, e);
    if (r) return r;
    int found = -1;
    for (int i = 0; i < N_KINDS && found < 0; i++)
        if (KINDS[i].detect && KINDS[i].detect(s)) found = i;
    st_set_close(s);
    if (found < 0)
        return err_set(e, DIT_E_FORMAT, "%s: not a VAE (no AutoencoderKL or TAESD tensor names); name the kind as kl:, taesd: or pixel",
                       spec);
    return KINDS[found].open(out, spec, o, e);
}

dit_status vae_synth(const vae_synth_cfg *c, const char *path, dit_err *e)
{
    for (int i = 0; i < N_KINDS; i++)
        if (c->kind && KINDS[i].synth && !strcmp(c->kind, KINDS[i].name)) return KINDS[i].synth(c, path, e);
    return err_set(e, DIT_E_ARG, "vae: cannot synthesize kind '%s' (kl or taesd)", c->kind ? c->kind : "");
}

void vae_free(vae *v)
{
    if (v) v->ops->free(v);
}

/* ---- base ------------------------------------------------------------------------------------- */

dit_status vae__init(vae *v, const vae_ops *ops, const vae_opts *o, dit_err *e)
{
    const vae_opts d = vae_opts_default();
    if (!o) o = &d;
    if ((unsigned)o->prec >= OPS_PREC_COUNT) return err_set(e, DIT_E_ARG, "vae: unknown compute path %d", (int)o->prec);
    v->ops = ops;
    v->shift = 0, v->scaling = 1, v->img_scale = 1, v->img_offset = 0;
    v->prec = o->prec, v->tile = o->tile, v->overlap = o->overlap, v->max_memory = o->max_memory;
    v->tile_sync = o->tile_sync;
    if (!v->max_memory) {
        const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        v->max_memory = pages > 0 && page > 0 ? (size_t)pages * (size_t)page / 2 : (size_t)4 << 30;
    }
    v->ctx = ops_ctx_new(e);
    return v->ctx ? DIT_OK : e->code;
}

void vae__release(vae *v)
{
    ops_ctx_free(v->ctx);
    arena_free(&v->run);
    arena_free(&v->tiles);
    v->ctx = NULL;
}

dit_status vae__reserve(arena *a, size_t bytes, dit_err *e)
{
    if (a->base && a->cap >= bytes) {
        arena_reset(a);
        return DIT_OK;
    }
    arena_free(a);
    if (bytes == SIZE_MAX) return err_set(e, DIT_E_OOM, "vae: run state size overflows");
    return arena_init(a, bytes, e);
}

/* ---- normalisation: the only places latents and images change space ------------------------ */

/* model-space latent -> the decoder's own: raw = z / scaling + shift (FLUX, SD3 decode). */
static inline float latent_to_raw(const vae *v, float z)
{
    return z / v->scaling + v->shift;
}
/* encoder's latent -> model space: z = (raw - shift) * scaling (FLUX, SD3 encode). */
static inline float latent_to_model(const vae *v, float raw)
{
    return (raw - v->shift) * v->scaling;
}
/* [0,1] image <-> the kind's native range. */
static inline float image_to_native(const vae *v, float x)
{
    return (x - v->img_offset) / v->img_scale;
}
static inline float image_from_native(const vae *v, float y)
{
    return y * v->img_scale + v->img_offset;
}

/* ---- tiles ------------------------------------------------------------------------------------ */

/* Tiles along one axis of n cells: count and start of tile i (evenly spread, the last one ending at
 * n, neighbours overlapping by at least `overlap` cells). */
static int axis_count(int n, int tile, int overlap)
{
    if (n <= tile) return 1;
    return (n - overlap + (tile - overlap) - 1) / (tile - overlap);
}
static int axis_start(int n, int tile, int count, int i)
{
    if (count == 1) return 0;
    return (int)(((int64_t)i * (n - tile) + (count - 1) / 2) / (count - 1));
}

/* Weight of a position d output units into an overlap of length ov, counted from the tile's border:
 * 0 in the outer quarter (where zero padding at the tile's border still shows), a linear ramp across
 * the middle half, 1 beyond. The neighbour's weight at the same place is ramp_in(ov - 1 - d, ov), so
 * the two sum to 1. (Measured on the 512x512 photo, TAEF2: max |difference| 0.029 with a ramp over
 * the whole overlap, 0.015 with this one.) */
static float ramp_in(int d, int ov)
{
    const float q = ((float)d + 0.5f - ov / 4.0f) / (ov / 2.0f);
    return q < 1e-6f ? 1e-6f : q > 1 ? 1 : q; /* never 0: every pixel keeps a positive total weight */
}

/* Blend weight of position u (output units) of tile i of count (each tile len long, starting at
 * start(i) * unit): ramp_in across the overlap with each neighbour, 1 elsewhere. */
static float ramp(int n, int tile, int count, int i, int unit, int u)
{
    const int len = tile * unit, s = axis_start(n, tile, count, i) * unit;
    float w = 1;
    if (i > 0) {
        const int ov = axis_start(n, tile, count, i - 1) * unit + len - s; /* overlap with the previous tile */
        if (u < ov) w *= ramp_in(u, ov);
    }
    if (i < count - 1) {
        const int ov = s + len - axis_start(n, tile, count, i + 1) * unit;
        if (len - u <= ov) w *= ramp_in(len - 1 - u, ov);
    }
    return w;
}

#define SYNC_STATS ((size_t)VAE_SYNC_CALLS * VAE_SYNC_GROUPS)

/* Bytes of the tile buffers for tiles of th x tw cells over a zh x zw latent, and of the GroupNorm
 * statistics when tiled. */
static size_t tile_buf_bytes(const vae *v, int th, int tw, int zh, int zw)
{
    const size_t s2 = (size_t)v->scale * v->scale, cells = (size_t)th * tw;
    const size_t io = cells * v->z_channels + cells * s2 * 3; /* latent tile + image tile */
    const size_t ramps = (size_t)(th + tw + zh + zw) * v->scale * 2;
    const size_t sync = th < zh || tw < zw ? SYNC_STATS * (4 * sizeof(double) + sizeof(float)) + VAE_SYNC_CALLS * sizeof(float) : 0;
    return sizeof(float) * (io + ramps) + sync + 12 * ARENA_ALIGN;
}

static size_t plan_bytes(const vae *v, int dir, int th, int tw, int zh, int zw)
{
    size_t scratch = 0;
    const size_t run = v->ops->run_bytes(v, dir, th, tw, &scratch);
    return run + scratch + tile_buf_bytes(v, th, tw, zh, zw);
}

dit_status vae_plan(const vae *v, int dir, int zh, int zw, vae_tiling *t, dit_err *e)
{
    memset(t, 0, sizeof *t);
    if (zh < 1 || zw < 1) return err_set(e, DIT_E_ARG, "vae: empty latent %dx%d", zh, zw);
    const int big = zh > zw ? zh : zw;
    int tile = big, overlap = 0;
    const size_t whole = plan_bytes(v, dir, zh, zw, zh, zw);
    if (v->tile > 0) {
        tile = v->tile / v->scale;
        if (tile < 1) tile = 1;
    } else if (v->tile == 0 && whole > v->max_memory) {
        /* among the tiles (multiples of 8 cells, overlap a quarter) whose run fits the budget, the one
         * with the least work: cells of all tiles together, evenly spread tiles overlapping more
         * than asked when the image is not a whole number of steps */
        tile = 0;
        double best = 0;
        for (int T = (big - 1) / 8 * 8; T >= 8; T -= 8) {
            const int th = T < zh ? T : zh, tw = T < zw ? T : zw, ov = T / 4;
            if (plan_bytes(v, dir, th, tw, zh, zw) > v->max_memory) continue;
            const double work = (double)axis_count(zh, th, ov) * axis_count(zw, tw, ov) * th * tw;
            if (!tile || work < best) tile = T, best = work;
        }
        if (!tile)
            return err_set(e, DIT_E_OOM,
                           "vae: a %dx%d-pixel run needs %zu MiB, more than the memory budget of %zu MiB even in %d-pixel tiles",
                           zh * v->scale, zw * v->scale, whole >> 20, v->max_memory >> 20, 8 * v->scale);
    }
    if (tile >= zh && tile >= zw) { /* one tile: the plain run */
        *t = (vae_tiling){ 1, 1, zh, zw, 0, whole };
        return DIT_OK;
    }
    overlap = v->overlap > 0 ? v->overlap / v->scale : tile / 4;
    if (overlap >= tile) overlap = tile - 1;
    if (overlap < 0) overlap = 0;
    t->tile_h = tile < zh ? tile : zh, t->tile_w = tile < zw ? tile : zw, t->overlap = overlap;
    t->ny = axis_count(zh, t->tile_h, overlap), t->nx = axis_count(zw, t->tile_w, overlap);
    t->bytes = plan_bytes(v, dir, t->tile_h, t->tile_w, zh, zw);
    return DIT_OK;
}

/* The tile buffers of a plan, carved from v->tiles. */
typedef struct {
    float *in, *out;     /* tile input and output */
    float *ry, *rx;      /* blend weights of one tile, rows and columns (output units) */
    float *wy, *wx;      /* their sums over all tiles (the normaliser is wy[y] * wx[x]) */
} tile_bufs;

/* The cells [*own0, *own1) of tile i (of count, each tile cells long over n) that it owns: up to
 * the middle of each overlap. In the tile's own coordinates. */
static void axis_own(int n, int tile, int count, int i, int *own0, int *own1)
{
    const int s = axis_start(n, tile, count, i);
    *own0 = i > 0 ? (s + axis_start(n, tile, count, i - 1) + tile) / 2 - s : 0;
    *own1 = i < count - 1 ? (axis_start(n, tile, count, i + 1) + s + tile) / 2 - s : tile;
}

static dit_status tiles_reserve(vae *v, const vae_tiling *t, int dir, int zh, int zw, tile_bufs *b, dit_err *e)
{
    const size_t s2 = (size_t)v->scale * v->scale, cells = (size_t)t->tile_h * t->tile_w;
    const int unit = dir == VAE_DECODE ? v->scale : 1; /* output units per latent cell */
    dit_status r = vae__reserve(&v->tiles, tile_buf_bytes(v, t->tile_h, t->tile_w, zh, zw), e);
    if (r) return r;
    arena *a = &v->tiles;
    const size_t zsz = cells * v->z_channels, isz = cells * s2 * 3;
    b->in = arena_alloc(a, sizeof(float) * (dir == VAE_DECODE ? zsz : isz));
    b->out = arena_alloc(a, sizeof(float) * (dir == VAE_DECODE ? isz : zsz));
    b->ry = arena_alloc(a, sizeof(float) * t->tile_h * unit);
    b->rx = arena_alloc(a, sizeof(float) * t->tile_w * unit);
    b->wy = arena_alloc(a, sizeof(float) * zh * unit);
    b->wx = arena_alloc(a, sizeof(float) * zw * unit);
    if (!b->in || !b->out || !b->ry || !b->rx || !b->wy || !b->wx)
        return err_set(e, DIT_E_OOM, "vae: tile buffers do not fit their arena");
    vae_sync *sy = &v->sync;
    memset(sy, 0, sizeof *sy);
    if (t->ny * t->nx > 1) {
        sy->acc = arena_alloc(a, sizeof(double) * 3 * SYNC_STATS);
        sy->mean = arena_alloc(a, sizeof(double) * SYNC_STATS);
        sy->rstd = arena_alloc(a, sizeof(float) * SYNC_STATS);
        sy->eps = arena_alloc(a, sizeof(float) * VAE_SYNC_CALLS);
        if (!sy->acc || !sy->mean || !sy->rstd || !sy->eps)
            return err_set(e, DIT_E_OOM, "vae: tile statistics do not fit their arena");
    }
    /* normalisers: the sum of the ramps of all tiles along each axis (zeroed by arena_alloc) */
    for (int i = 0; i < t->ny; i++) {
        const int s = axis_start(zh, t->tile_h, t->ny, i) * unit;
        for (int u = 0; u < t->tile_h * unit; u++) b->wy[s + u] += ramp(zh, t->tile_h, t->ny, i, unit, u);
    }
    for (int i = 0; i < t->nx; i++) {
        const int s = axis_start(zw, t->tile_w, t->nx, i) * unit;
        for (int u = 0; u < t->tile_w * unit; u++) b->wx[s + u] += ramp(zw, t->tile_w, t->nx, i, unit, u);
    }
    return DIT_OK;
}

/* One tile through the kind's run, reserving its run state first. */
static dit_status run_tile(vae *v, int dir, const float *in, int th, int tw, float *out, const hook_list *taps,
                           dit_err *e)
{
    size_t scratch = 0;
    dit_status r = vae__reserve(&v->run, v->ops->run_bytes(v, dir, th, tw, &scratch), e);
    if (r) return r;
    return dir == VAE_DECODE ? v->ops->decode(v, in, th, tw, out, taps, e)
                             : v->ops->encode(v, in, th * v->scale, tw * v->scale, out, taps, e);
}

/* The tiled (or single-tile) run. Decode: src = model latent [zc, zh, zw], dst = [0,1] image;
 * encode: src = [0,1] image, dst = model latent. Every tile's output is added into dst with its
 * ramp weights; dst is then divided by the summed weights and mapped to its space. */
static dit_status run(vae *v, int dir, const float *src, int zh, int zw, float *dst, const hook_list *taps, dit_err *e)
{
    vae_tiling t;
    dit_status r = vae_plan(v, dir, zh, zw, &t, e);
    if (r) return r;
    tile_bufs b;
    if ((r = tiles_reserve(v, &t, dir, zh, zw, &b, e))) return r;
    const int s = v->scale, dec = dir == VAE_DECODE;
    const int unit = dec ? s : 1, in_unit = dec ? 1 : s;             /* output / input units per cell */
    const int c_in = dec ? v->z_channels : 3, c_out = dec ? 3 : v->z_channels;
    const int64_t H = (int64_t)zh * unit, W = (int64_t)zw * unit;    /* dst plane */
    const int64_t IH = (int64_t)zh * in_unit, IW = (int64_t)zw * in_unit;
    const int th = t.tile_h, tw = t.tile_w, oth = th * unit, otw = tw * unit, ith = th * in_unit, itw = tw * in_unit;
    memset(dst, 0, sizeof(float) * (size_t)(c_out * H * W));
    vae_sync *sy = &v->sync;
    const int passes = t.ny * t.nx > 1 && v->tile_sync > 0 ? 1 + v->tile_sync : 1;
    for (int pass = 0; pass < passes; pass++) {
        const int last = pass == passes - 1;
        sy->record = !last, sy->apply = pass > 0;
        if (sy->record) memset(sy->acc, 0, sizeof(double) * 3 * SYNC_STATS);
        for (int ty = 0; ty < t.ny && !r; ty++)
            for (int tx = 0; tx < t.nx && !r; tx++) {
                const int y0 = axis_start(zh, th, t.ny, ty), x0 = axis_start(zw, tw, t.nx, tx);
                /* the tile's input, in the kind's own space */
#pragma omp parallel for schedule(static)
                for (int c = 0; c < c_in; c++)
                    for (int i = 0; i < ith; i++) {
                        const float *row = src + ((int64_t)c * IH + (int64_t)y0 * in_unit + i) * IW + (int64_t)x0 * in_unit;
                        float *o = b.in + ((int64_t)c * ith + i) * itw;
                        for (int j = 0; j < itw; j++) o[j] = dec ? latent_to_raw(v, row[j]) : image_to_native(v, row[j]);
                    }
                axis_own(zh, th, t.ny, ty, &sy->own_y0, &sy->own_y1);
                axis_own(zw, tw, t.nx, tx, &sy->own_x0, &sy->own_x1);
                sy->cells_h = th, sy->cells_w = tw, sy->call = 0;
                r = run_tile(v, dir, b.in, th, tw, b.out, t.ny * t.nx == 1 ? taps : NULL, e);
                if (r || !last) continue;
                for (int u = 0; u < oth; u++) b.ry[u] = ramp(zh, th, t.ny, ty, unit, u);
                for (int u = 0; u < otw; u++) b.rx[u] = ramp(zw, tw, t.nx, tx, unit, u);
#pragma omp parallel for schedule(static)
                for (int c = 0; c < c_out; c++)
                    for (int i = 0; i < oth; i++) {
                        float *row = dst + ((int64_t)c * H + (int64_t)y0 * unit + i) * W + (int64_t)x0 * unit;
                        const float *o = b.out + ((int64_t)c * oth + i) * otw;
                        for (int j = 0; j < otw; j++) row[j] += b.ry[i] * b.rx[j] * o[j];
                    }
            }
        if (r) break;
        if (sy->record) /* the whole image's statistics for the next pass */
            for (size_t k = 0; k < SYNC_STATS; k++) {
                const double *a = sy->acc + 3 * k;
                sy->mean[k] = a[1];
                sy->rstd[k] = a[0] > 0 ? (float)(1.0 / sqrt(a[2] / a[0] + (double)sy->eps[k / VAE_SYNC_GROUPS])) : 1.0f;
            }
    }
    memset(sy, 0, sizeof *sy); /* the next run starts unsynchronised */
    if (r) return r;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < c_out; c++)
        for (int64_t y = 0; y < H; y++) {
            float *row = dst + ((int64_t)c * H + y) * W;
            for (int64_t x = 0; x < W; x++) {
                const float blended = row[x] / (b.wy[y] * b.wx[x]);
                row[x] = dec ? image_from_native(v, blended) : latent_to_model(v, blended);
            }
        }
    return DIT_OK;
}

dit_status vae_decode(vae *v, const float *z, int zh, int zw, float *img, const hook_list *taps, dit_err *e)
{
    if (!v->can_decode) return err_set(e, DIT_E_UNSUPPORTED, "vae: %s has no decoder weights", v->desc);
    if (!z || !img || zh < 1 || zw < 1 || (int64_t)zh * v->scale > VAE_MAX_SIDE || (int64_t)zw * v->scale > VAE_MAX_SIDE)
        return err_set(e, DIT_E_ARG, "vae_decode: bad arguments (latent %dx%d; images up to %d pixels a side)", zh, zw,
                       VAE_MAX_SIDE);
    return run(v, VAE_DECODE, z, zh, zw, img, taps, e);
}

dit_status vae_encode(vae *v, const float *img, int h, int w, float *z, const hook_list *taps, dit_err *e)
{
    if (!v->can_encode) return err_set(e, DIT_E_UNSUPPORTED, "vae: %s has no encoder weights", v->desc);
    if (!img || !z || h < 1 || w < 1 || h > VAE_MAX_SIDE || w > VAE_MAX_SIDE)
        return err_set(e, DIT_E_ARG, "vae_encode: bad arguments (image %dx%d; up to %d pixels a side)", w, h, VAE_MAX_SIDE);
    if (h % v->scale || w % v->scale)
        return err_set(e, DIT_E_ARG, "vae: image %dx%d is not a multiple of %d pixels (the VAE's scale); crop or resize it",
                       w, h, v->scale);
    return run(v, VAE_ENCODE, img, h / v->scale, w / v->scale, z, taps, e);
}

/* ---- 8-bit images ----------------------------------------------------------------------------- */

dit_status vae_to_image(image *out, const float *img, int h, int w, dit_err *e)
{
    dit_status r = img_alloc(out, w, h, 3, e);
    if (r) return r;
    const size_t plane = (size_t)w * h;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            float x = img[c * plane + i];
            x = x > 0 ? (x < 1 ? x : 1) : 0; /* NaN -> 0 */
            out->px[i * 3 + c] = (unsigned char)(x * 255.0f);
        }
    return DIT_OK;
}

void vae_from_image(const image *im, float *img)
{
    const size_t plane = (size_t)im->w * im->h;
    const int color = im->c >= 3;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) img[c * plane + i] = im->px[i * im->c + (color ? c : 0)] / 255.0f;
}
