/* vae/synth.c — random-weight VAE files written from the same weight tables the loaders read, so
 * a synthesized file has exactly the names and shapes a real one has (vae_synth in vae.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vae/vae_impl.h"

/* splitmix64, uniform in [-1, 1) */
static float uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((z >> 40) * (2.0 / 16777216.0) - 1.0);
}

dit_status vae__synth_begin(vae__synth *s, st_dtype dt, uint64_t seed, dit_err *e)
{
    memset(s, 0, sizeof *s);
    s->rng = seed, s->dtype = dt, s->e = e;
    if (dt != ST_F32 && dt != ST_F16 && dt != ST_BF16)
        return s->err = err_set(e, DIT_E_ARG, "vae: synth: dtype %s (F32, F16 or BF16)", st_dtype_name(dt));
    if (!(s->w = st_writer_new())) return s->err = err_set(e, DIT_E_OOM, "vae: out of memory");
    return DIT_OK;
}

/* One tensor of numel values: uniform(-amp, amp) around center, stored in the file's dtype. */
static void add(vae__synth *s, const char *name, int nd, const int64_t *shape, float center, float amp)
{
    if (s->err) return;
    size_t numel = 1;
    for (int d = 0; d < nd; d++) numel *= (size_t)shape[d];
    const size_t es = s->dtype == ST_F32 ? 4 : 2;
    void *buf = malloc(numel * es + 1);
    void **bufs = s->n_bufs == s->cap_bufs ? realloc(s->bufs, sizeof *bufs * (s->cap_bufs = s->cap_bufs ? 2 * s->cap_bufs : 256))
                                           : s->bufs;
    if (!buf || !bufs) {
        free(buf);
        if (bufs) s->bufs = bufs;
        s->err = err_set(s->e, DIT_E_OOM, "vae: synth: out of memory at '%s'", name);
        return;
    }
    s->bufs = bufs;
    s->bufs[s->n_bufs++] = buf;
    for (size_t i = 0; i < numel; i++) {
        const float v = center + amp * uniform(&s->rng);
        if (s->dtype == ST_F32) ((float *)buf)[i] = v;
        else ((uint16_t *)buf)[i] = s->dtype == ST_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
    }
    s->err = st_writer_add(s->w, name, s->dtype, nd, shape, buf, s->e);
}

void vae__synth_spec(vae__synth *s, const char *prefix, const wt_spec *spec, int n, const int *dims, int naming, int i0)
{
    for (int r = 0; r < n && !s->err; r++) {
        const wt_spec *w = &spec[r];
        const char *fmt = w->name[naming] ? w->name[naming] : w->name[0];
        char first[256], name[512], mod[256];
        snprintf(first, sizeof first, "%s", fmt);
        char *bar = strchr(first, '|'); /* the first alternative */
        if (bar) *bar = 0;
        snprintf(mod, sizeof mod, first, i0);
        int64_t shape[WT_MAX_DIMS + 2];
        for (int d = 0; d < w->nd; d++) shape[d] = (int64_t)w->dim[d].mul * (w->dim[d].sym ? dims[w->dim[d].sym] : 1);
        if (w->kind == WT_LINEAR) { /* [out, in] (+ 1x1 for a squeezed name in the released layout), bias [out] */
            int nd = 2;
            if ((w->flags & WT_FLAT) && naming == 0) shape[2] = shape[3] = 1, nd = 4;
            snprintf(name, sizeof name, "%s%s.weight", prefix, mod);
            add(s, name, nd, shape, 0, sqrtf(3.0f / (float)shape[1]));
            if (!(w->flags & WT_NOBIAS)) {
                snprintf(name, sizeof name, "%s%s.bias", prefix, mod);
                add(s, name, 1, shape, 0, 0.05f);
            }
            continue;
        }
        snprintf(name, sizeof name, "%s%s", prefix, mod);
        if (w->nd >= 2) { /* a weight with fan-in shape[1] * kh * kw: variance 1 / fan_in */
            int64_t fan_in = 1;
            for (int d = 1; d < w->nd; d++) fan_in *= shape[d];
            add(s, name, w->nd, shape, 0, sqrtf(3.0f / (float)fan_in));
        } else { /* vectors: norm scales near 1, biases near 0 */
            const size_t len = strlen(name);
            const int scale = len >= 6 && !strcmp(name + len - 6, "weight");
            add(s, name, w->nd, shape, scale ? 1.0f : 0.0f, scale ? 0.1f : 0.05f);
        }
    }
}

dit_status vae__synth_end(vae__synth *s, const char *path, const char *desc)
{
    if (!s->err) s->err = st_writer_meta(s->w, "note", desc, s->e);
    if (!s->err) s->err = st_writer_save(s->w, path, s->e);
    st_writer_free(s->w);
    for (int i = 0; i < s->n_bufs; i++) free(s->bufs[i]);
    free(s->bufs);
    const dit_status r = s->err;
    memset(s, 0, sizeof *s);
    return r;
}

vae_synth_cfg vae_synth_default(const char *kind)
{
    vae_synth_cfg c = { .kind = kind, .encoder = 1, .decoder = 1, .dtype = ST_F32, .seed = 1 };
    if (kind && !strcmp(kind, "taesd")) {
        c.z = 32, c.pool = 1; /* TAEF2 */
    } else { /* FLUX.1 / SD3 ae: ch 128, ch_mult [1, 2, 4, 4], 2 res blocks, z 16 */
        c.ch = 128, c.n_levels = 4, c.n_res = 2, c.z = 16;
        c.ch_mult[0] = 1, c.ch_mult[1] = 2, c.ch_mult[2] = 4, c.ch_mult[3] = 4;
    }
    return c;
}
