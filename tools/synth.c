/* tools/synth.c — `dit synth PRESET -o FILE`: a model file with random weights at a released
 * model's geometry (for benchmarks: no download). The tensor list comes from the loader's own
 * tables (dit_enumerate), so whatever synth writes, dit_load reads, in the released single-file
 * layout (SD3 under model.diffusion_model.).
 *
 * Values: uniform in [-0.02, 0.02], f16 (or bf16). To keep generation fast, every tensor is a
 * window of one shared random buffer (at a tensor-dependent offset); fine for timing, meaningless
 * as a model. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "dit/dit.h"
#include "tools/cli.h"

typedef struct {
    const char *name, *about;
    dit_family family;
    int depth, depth_single, hidden, head_dim, in_ch, patch, pos_max, ctx, vec, qk, attn2_upto, guidance, classes;
} preset;

static const preset PRESETS[] = {
    { "sd3-medium", "SD3-medium: 24 joint blocks, hidden 1536", DIT_SD3, 24, 0, 1536, 64, 16, 2, 192, 4096, 2048, 0, 0, 0, 0 },
    { "sd3.5-medium", "SD3.5-medium (MMDiT-X): 24 joint blocks, hidden 1536, attn2 in blocks 0-12, pos_embed 384x384",
      DIT_SD3, 24, 0, 1536, 64, 16, 2, 384, 4096, 2048, 1, 13, 0, 0 },
    { "sd3.5-large", "SD3.5-large: 38 joint blocks, hidden 2432", DIT_SD3, 38, 0, 2432, 64, 16, 2, 192, 4096, 2048, 1, 0, 0, 0 },
    { "flux-dev", "FLUX.1-dev: 19 double + 38 single blocks, hidden 3072", DIT_FLUX, 19, 38, 3072, 128, 16, 2, 0, 4096, 768, 1, 0, 1, 0 },
    { "flux-schnell", "FLUX.1-schnell: 19 double + 38 single blocks, hidden 3072", DIT_FLUX, 19, 38, 3072, 128, 16, 2, 0, 4096, 768, 1, 0, 0, 0 },
    { "dit-xl2", "DiT-XL/2 256x256: 28 blocks, hidden 1152, 16 heads", DIT_DIT, 28, 0, 1152, 72, 4, 2, 16, 0, 0, 0, 0, 0, 1000 },
};

typedef struct {
    st_writer *w;
    uint16_t *pool;
    size_t pool_n, biggest;
    st_dtype dt;
    const dit_config *c;
    int count;
    dit_err e;
} synth;

static void measure(void *user, const char *name, int nd, const int64_t *shape)
{
    synth *s = user;
    (void)name;
    size_t n = 1;
    for (int d = 0; d < nd; d++) n *= (size_t)shape[d];
    if (n > s->biggest) s->biggest = n;
}

static void add(void *user, const char *name, int nd, const int64_t *shape)
{
    synth *s = user;
    int64_t sh[8];
    size_t n = 1;
    for (int d = 0; d < nd; d++) sh[d] = shape[d], n *= (size_t)shape[d];
    /* the patch embedding is a Conv2d [H, C, p, p] in the released files (the table reads it flat) */
    if (strstr(name, "x_embedder.proj.weight") && nd == 2) {
        nd = 4;
        sh[1] = s->c->in_ch, sh[2] = sh[3] = s->c->patch;
    }
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the name picks the window */
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    const size_t off = s->pool_n > n ? (size_t)(h % (s->pool_n - n)) : 0;
    if (!s->e.code) st_writer_add(s->w, name, s->dt, nd, sh, s->pool + off, &s->e);
    s->count++;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dit synth PRESET -o FILE [--depth N] [--hidden H] [--ctx N] [--vec N] [--pos N] [--dtype f16|bf16]\n"
               "                [--seed S]\n\n"
               "Write a model with random weights at a released model's geometry (for `dit bench --model`).\n"
               "The file has the released single-file tensor names and loads like the real one.\n\npresets:\n");
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++) fprintf(f, "  %-13s %s\n", PRESETS[i].name, PRESETS[i].about);
    fprintf(f, "  %-13s %s\n", "t5xxl", "T5-XXL encoder: 24 blocks, d_model 4096, 64 heads, d_ff 10240 (for dit bench --text)");
    fprintf(f, "\noptions:\n"
               "  -o FILE        output .safetensors (written to FILE.tmp, then renamed)\n"
               "  --depth N      blocks (FLUX: double blocks; single blocks scale with it) [preset]\n"
               "  --hidden H     hidden size (SD3: a multiple of 64, heads = H/64; FLUX: of 128) [preset]\n"
               "  --dtype T      f16 or bf16 [f16 for SD3/DiT, bf16 for FLUX]\n"
               "  --ctx N        text token width (context_in_dim) [preset]\n"
               "  --vec N        pooled text width (adm / vec_in) [preset]\n"
               "  --pos N        SD3/DiT position grid side (pos_embed_max_size) [preset]\n"
               "  --seed S       random seed [1]\n");
}

int cmd_synth(int argc, char **argv)
{
    const char *out = NULL, *pname = NULL, *dtype_arg = NULL;
    int depth = 0, hidden = 0, ctx = 0, vec = 0, pos = 0;
    unsigned long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(a, "--depth") && i + 1 < argc) depth = atoi(argv[++i]);
        else if (!strcmp(a, "--hidden") && i + 1 < argc) hidden = atoi(argv[++i]);
        else if (!strcmp(a, "--dtype") && i + 1 < argc) dtype_arg = argv[++i];
        else if (!strcmp(a, "--ctx") && i + 1 < argc) ctx = atoi(argv[++i]);
        else if (!strcmp(a, "--vec") && i + 1 < argc) vec = atoi(argv[++i]);
        else if (!strcmp(a, "--pos") && i + 1 < argc) pos = atoi(argv[++i]);
        else if (!strcmp(a, "--seed") && i + 1 < argc) seed = strtoul(argv[++i], NULL, 10);
        else if (a[0] == '-') {
            fprintf(stderr, "dit synth: unknown or incomplete option '%s' (try --help)\n", a);
            return 2;
        } else if (pname) {
            fprintf(stderr, "dit synth: one PRESET expected, got '%s' and '%s'\n", pname, a);
            return 2;
        } else pname = a;
    }
    if (pname && out && !strcmp(pname, "t5xxl")) return synth_t5(out, depth, seed);
    const preset *p = NULL;
    for (size_t i = 0; pname && i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (!strcmp(pname, PRESETS[i].name)) p = &PRESETS[i];
    if (!pname || !out) {
        usage(stderr);
        return 2;
    }
    if (!p) {
        fprintf(stderr, "dit synth: unknown preset '%s' (try --help)\n", pname);
        return 2;
    }
    if (depth < 0 || depth > DIT_MAX_BLOCKS / 2 || hidden < 0 || hidden > 8192 || (hidden && hidden % p->head_dim)) {
        fprintf(stderr, "dit synth: --depth must be 1..%d and --hidden a multiple of %d up to 8192\n", DIT_MAX_BLOCKS / 2,
                p->head_dim);
        return 2;
    }
    if (ctx < 0 || ctx > 65536 || vec < 0 || vec > 65536 || pos < 0 || pos > 4096) {
        fprintf(stderr, "dit synth: --ctx and --vec must be 1..65536, --pos 1..4096\n");
        return 2;
    }
    if (dtype_arg && strcmp(dtype_arg, "f16") && strcmp(dtype_arg, "bf16")) {
        fprintf(stderr, "dit synth: --dtype must be f16 or bf16, not '%s'\n", dtype_arg);
        return 2;
    }
    dit_config c;
    memset(&c, 0, sizeof c);
    c.family = p->family;
    c.depth = depth ? depth : p->depth;
    c.depth_single = depth && p->depth_single ? 2 * depth : p->depth_single;
    c.hidden = hidden ? hidden : p->hidden;
    c.mlp = 4 * c.hidden;
    c.head_dim = p->head_dim;
    c.heads = c.hidden / c.head_dim;
    c.in_ch = p->in_ch, c.patch = p->patch, c.pos_max = pos && p->pos_max ? pos : p->pos_max;
    c.ctx_dim = ctx && p->ctx ? ctx : p->ctx, c.vec_dim = vec && p->vec ? vec : p->vec, c.qk_norm = p->qk, c.guidance_embed = p->guidance;
    c.num_classes = p->classes;
    c.final_ch = c.family == DIT_DIT ? 2 * c.in_ch : c.in_ch;
    c.out_ch = c.final_ch;
    for (int i = 0; i < c.depth && i < p->attn2_upto; i++) c.attn2[i] = 1, c.n_attn2++;

    synth s = { .w = st_writer_new(), .c = &c };
    s.dt = dtype_arg ? (strcmp(dtype_arg, "bf16") ? ST_F16 : ST_BF16) : (c.family == DIT_FLUX ? ST_BF16 : ST_F16);
    dit_enumerate(&c, measure, &s);
    s.pool_n = s.biggest + 4096;
    s.pool = malloc(sizeof(uint16_t) * s.pool_n);
    if (!s.w || !s.pool) {
        fprintf(stderr, "dit synth: out of memory (%zu values)\n", s.pool_n);
        return 1;
    }
    uint64_t r = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < s.pool_n; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        const float v = 0.02f * ((float)(r >> 40) * (2.0f / 16777216.0f) - 1.0f);
        s.pool[i] = s.dt == ST_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
    }
    dit_enumerate(&c, add, &s);
    char heads[16];
    snprintf(heads, sizeof heads, "%d", c.heads);
    if (!s.e.code) st_writer_meta(s.w, "dit.synthetic", "random weights written by dit synth (timing only)", &s.e);
    if (!s.e.code && c.family == DIT_DIT) st_writer_meta(s.w, "dit.heads", heads, &s.e);
    if (!s.e.code) st_writer_save(s.w, out, &s.e);
    st_writer_free(s.w);
    free(s.pool);
    if (s.e.code) {
        fprintf(stderr, "dit synth: %s\n", s.e.msg);
        return 1;
    }
    char desc[1024];
    c.naming = 0;
    snprintf(c.variant, sizeof c.variant, "%s", p->name);
    dit_config_describe(&c, desc, sizeof desc);
    printf("%s: %d tensors, %s\n", out, s.count, desc);
    return 0;
}
