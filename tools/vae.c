/* tools/vae.c — `dit vae`: images <-> latent safetensors through any VAE, its facts, and random
 * VAE files for benchmarks.
 *
 *   dit vae encode photo.png -o z.safetensors --vae ae.safetensors
 *   dit vae decode z.safetensors -o out.png --vae taesd:taef2_decoder.safetensors
 *   dit vae info ae.safetensors
 *   dit vae synth -o ae_random.safetensors                 (FLUX geometry, random weights)
 *
 * A latent file holds one F32 tensor "latent" [1, C, h, w] in the model's latent space (what the
 * sampler works on, vae.h), with the VAE's description in its metadata. Outputs appear complete or
 * not at all (written to a temporary file, then renamed). Errors are one line naming the file or
 * flag; exit 2 for usage, 1 for everything else.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/image.h"
#include "core/safetensors.h"
#include "tools/cli.h"
#include "vae/vae.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dit vae encode IMAGE -o LATENT.safetensors --vae SPEC [options]\n"
            "       dit vae decode LATENT.safetensors -o IMAGE.png --vae SPEC [options]\n"
            "       dit vae info SPEC [options]\n"
            "       dit vae synth -o FILE.safetensors [synth options]\n"
            "\n"
            "Encode an image (PNG, JPEG, BMP, TGA) into a latent file, decode a latent file into a PNG,\n"
            "describe a VAE, or write a VAE with random weights (benchmarks, tests).\n"
            "\n"
            "SPEC: kl:PATH (AutoencoderKL: FLUX ae.safetensors, an SD3/SD3.5 checkpoint, a diffusers vae/\n"
            "folder), taesd:PATH (TAESD, TAESD3, TAEF1, TAEF2: the decoder or encoder file, or ENC,DEC),\n"
            "pixel[:P] (pixel space in PxP patches), or a PATH whose tensor names tell the kind.\n"
            "\n"
            "options:\n"
            "  -o FILE            output file (required for encode, decode, synth)\n"
            "  --vae SPEC         the VAE (required for encode, decode)\n"
            "  --family NAME      KL latent normalisation: flux, sd3, sd or none [from the file]\n"
            "  --tensor NAME      decode: the latent tensor of the file [latent, or its only tensor]\n"
            "  --vae-tile N       tile side in pixels; 0 = only when over --max-memory, -1 = never [0]\n"
            "  --max-memory SIZE  memory budget of one run, e.g. 4G, 512M [half the RAM]\n"
            "  --f32              the f32 path (oneDNN f32) instead of bf16\n"
            "  -h, --help         show this help\n"
            "\n"
            "synth options:\n"
            "  --kind kl|taesd    [kl]\n"
            "  --ch N             kl: base channels [128]\n"
            "  --ch-mult A,B,..   kl: channel multiplier per level [1,2,4,4]\n"
            "  --res-blocks N     kl: res blocks per level [2]\n"
            "  --z N              latent channels [16 kl, 32 taesd]\n"
            "  --no-pool          taesd: without TAEF2's GroupNorm pool blocks\n"
            "  --decoder-only, --encoder-only\n"
            "  --dtype f32|f16|bf16 [f32]\n"
            "  --seed N           [1]\n"
            "\n"
            "exit status: 0 ok, 1 bad input or failed run, 2 usage error\n");
}

/* "4G", "512M", "64K", "1000" (binary units; a trailing B or iB is allowed) -> bytes; 0 on error. */
static size_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (errno || end == s || v <= 0) return 0;
    double mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1024.0, end++; break;
    case 'm': case 'M': mul = 1024.0 * 1024, end++; break;
    case 'g': case 'G': mul = 1024.0 * 1024 * 1024, end++; break;
    case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024, end++; break;
    default: break;
    }
    if (*end == 'i' && mul > 1) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end || v * mul >= 1.8e19) return 0;
    return (size_t)(v * mul);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

typedef struct {
    const char *cmd, *input, *output, *spec, *tensor;
    vae_opts opts;
    vae_synth_cfg synth;
    const char *kind;
} args;

/* Parse argv (after "vae"); returns 0 ok, 2 usage error (printed), -1 help shown. */
static int parse(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->opts = vae_opts_default();
    a->kind = "kl";
    int z = -1, ch = -1, nres = -1, nmult = 0, mult[8], no_pool = 0, dec_only = 0, enc_only = 0, seed = 1;
    const char *dt_name = "f32";
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VAL                                                                  \
    if (!val) {                                                                   \
        fprintf(stderr, "dit vae: %s needs a value (try --help)\n", s);           \
        return 2;                                                                 \
    }                                                                             \
    i++
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(s, "-o")) {
            NEED_VAL;
            a->output = val;
        } else if (!strcmp(s, "--vae")) {
            NEED_VAL;
            a->spec = val;
        } else if (!strcmp(s, "--family")) {
            NEED_VAL;
            if (strcmp(val, "flux") && strcmp(val, "sd3") && strcmp(val, "sd") && strcmp(val, "none")) {
                fprintf(stderr, "dit vae: --family %s: must be flux, sd3, sd or none\n", val);
                return 2;
            }
            a->opts.family = val;
        } else if (!strcmp(s, "--tensor")) {
            NEED_VAL;
            a->tensor = val;
        } else if (!strcmp(s, "--vae-tile")) {
            NEED_VAL;
            if (!parse_int(val, -1, 1 << 20, &a->opts.tile)) {
                fprintf(stderr, "dit vae: --vae-tile %s: must be a pixel count, 0 (automatic) or -1 (never)\n", val);
                return 2;
            }
        } else if (!strcmp(s, "--max-memory")) {
            NEED_VAL;
            if (!(a->opts.max_memory = parse_size(val))) {
                fprintf(stderr, "dit vae: --max-memory %s: must be a size such as 4G, 512M or 1000000\n", val);
                return 2;
            }
        } else if (!strcmp(s, "--f32")) {
            a->opts.prec = OPS_F32;
        } else if (!strcmp(s, "--kind")) {
            NEED_VAL;
            if (strcmp(val, "kl") && strcmp(val, "taesd")) {
                fprintf(stderr, "dit vae: --kind %s: must be kl or taesd\n", val);
                return 2;
            }
            a->kind = val;
        } else if (!strcmp(s, "--ch") || !strcmp(s, "--z") || !strcmp(s, "--res-blocks") || !strcmp(s, "--seed")) {
            NEED_VAL;
            int *dst = !strcmp(s, "--ch") ? &ch : !strcmp(s, "--z") ? &z : !strcmp(s, "--seed") ? &seed : &nres;
            if (!parse_int(val, dst == &seed ? 0 : 1, 65536, dst)) {
                fprintf(stderr, "dit vae: %s %s: must be a positive integer\n", s, val);
                return 2;
            }
        } else if (!strcmp(s, "--ch-mult")) {
            NEED_VAL;
            char buf[128];
            snprintf(buf, sizeof buf, "%s", val);
            nmult = 0;
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                if (nmult == 8 || !parse_int(t, 1, 64, &mult[nmult])) {
                    fprintf(stderr, "dit vae: --ch-mult %s: must be 1 to 8 comma-separated integers\n", val);
                    return 2;
                }
                nmult++;
            }
        } else if (!strcmp(s, "--no-pool")) {
            no_pool = 1;
        } else if (!strcmp(s, "--decoder-only")) {
            dec_only = 1;
        } else if (!strcmp(s, "--encoder-only")) {
            enc_only = 1;
        } else if (!strcmp(s, "--dtype")) {
            NEED_VAL;
            if (strcmp(val, "f32") && strcmp(val, "f16") && strcmp(val, "bf16")) {
                fprintf(stderr, "dit vae: --dtype %s: must be f32, f16 or bf16\n", val);
                return 2;
            }
            dt_name = val;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "dit vae: unknown option '%s' (try --help)\n", s);
            return 2;
        } else if (!a->cmd) {
            a->cmd = s;
        } else if (!a->input) {
            a->input = s;
        } else {
            fprintf(stderr, "dit vae: unexpected argument '%s' (try --help)\n", s);
            return 2;
        }
#undef NEED_VAL
    }
    if (dec_only && enc_only) {
        fprintf(stderr, "dit vae: --decoder-only and --encoder-only exclude each other\n");
        return 2;
    }
    vae_synth_cfg *c = &a->synth;
    *c = vae_synth_default(a->kind);
    if (ch > 0) c->ch = ch;
    if (z > 0) c->z = z;
    if (nres > 0) c->n_res = nres;
    if (nmult) {
        c->n_levels = nmult;
        memcpy(c->ch_mult, mult, sizeof(int) * (size_t)nmult);
    }
    c->pool = c->pool && !no_pool;
    c->encoder = !dec_only, c->decoder = !enc_only;
    c->dtype = !strcmp(dt_name, "f16") ? ST_F16 : !strcmp(dt_name, "bf16") ? ST_BF16 : ST_F32;
    c->seed = (uint64_t)seed;
    return 0;
}

static int need(const args *a, int input, int output, int spec)
{
    const char *miss = input && !a->input ? (strcmp(a->cmd, "info") ? "an input file" : "a VAE spec")
                     : output && !a->output ? "-o FILE"
                     : spec && !a->spec ? "--vae SPEC"
                                        : NULL;
    if (!miss) return 0;
    fprintf(stderr, "dit vae %s: needs %s (try --help)\n", a->cmd, miss);
    return 2;
}

static vae *open_or_report(const args *a, const char *spec)
{
    vae *v = NULL;
    dit_err e = { 0 };
    if (vae_open(&v, spec, &a->opts, &e)) fprintf(stderr, "dit vae: %s\n", e.msg);
    return v;
}

static int run_encode(const args *a)
{
    int rc = need(a, 1, 1, 1);
    if (rc) return rc;
    dit_err e = { 0 };
    image im = { 0 };
    if (img_load(&im, a->input, 3, &e)) {
        fprintf(stderr, "dit vae: %s\n", e.msg);
        return 1;
    }
    vae *v = open_or_report(a, a->spec);
    float *px = NULL, *z = NULL;
    rc = 1;
    if (v) {
        const int h = im.h, w = im.w, s = v->scale;
        const size_t nz = (size_t)v->z_channels * (h / s) * (w / s);
        px = malloc(sizeof(float) * 3 * (size_t)h * w), z = malloc(sizeof(float) * (nz ? nz : 1));
        if (!px || !z) fprintf(stderr, "dit vae: %s: out of memory\n", a->input);
        else {
            vae_from_image(&im, px);
            if (vae_encode(v, px, h, w, z, NULL, &e)) fprintf(stderr, "dit vae: %s: %s\n", a->input, e.msg);
            else {
                st_writer *wr = st_writer_new();
                char sh[32], sc[32];
                snprintf(sh, sizeof sh, "%.9g", v->shift);
                snprintf(sc, sizeof sc, "%.9g", v->scaling);
                const int64_t shape[4] = { 1, v->z_channels, h / s, w / s };
                if (wr && !st_writer_add(wr, "latent", ST_F32, 4, shape, z, &e) && !st_writer_meta(wr, "vae", v->desc, &e) &&
                    !st_writer_meta(wr, "latent_space", "model: (raw - shift) * scaling", &e) &&
                    !st_writer_meta(wr, "shift", sh, &e) && !st_writer_meta(wr, "scaling", sc, &e) &&
                    !st_writer_meta(wr, "source", a->input, &e) && !st_writer_save(wr, a->output, &e)) {
                    printf("%s: latent [1, %d, %d, %d] from %s (%dx%d) by %s\n", a->output, v->z_channels, h / s, w / s,
                           a->input, w, h, v->desc);
                    rc = 0;
                } else {
                    fprintf(stderr, "dit vae: %s\n", wr ? e.msg : "out of memory");
                }
                st_writer_free(wr);
            }
        }
    }
    free(px), free(z);
    img_free(&im);
    vae_free(v);
    return rc;
}

/* The latent of a file: --tensor, else "latent", else its only tensor; [1, C, h, w] or [C, h, w]. */
static const st_tensor *pick_latent(const args *a, const st_file *f)
{
    const st_tensor *t = a->tensor ? st_find(f, a->tensor) : st_find(f, "latent");
    if (!t && !a->tensor && st_count(f) == 1) t = st_at(f, 0);
    if (!t) {
        if (a->tensor) fprintf(stderr, "dit vae: %s: no tensor '%s'\n", a->input, a->tensor);
        else fprintf(stderr, "dit vae: %s: no tensor 'latent' and %d tensors to choose from (use --tensor NAME)\n", a->input,
                     st_count(f));
        return NULL;
    }
    const int ok = (t->nd == 4 && t->shape[0] == 1) || t->nd == 3;
    if (!ok || t->shape[t->nd - 1] < 1 || t->shape[t->nd - 2] < 1 || t->shape[t->nd - 1] > 65536 ||
        t->shape[t->nd - 2] > 65536) {
        fprintf(stderr, "dit vae: %s: tensor '%s' is not a latent [1, C, h, w] or [C, h, w]\n", a->input, t->name);
        return NULL;
    }
    return t;
}

static int run_decode(const args *a)
{
    int rc = need(a, 1, 1, 1);
    if (rc) return rc;
    dit_err e = { 0 };
    st_file *f = NULL;
    if (st_open(&f, a->input, &e)) {
        fprintf(stderr, "dit vae: %s\n", e.msg);
        return 1;
    }
    const st_tensor *t = pick_latent(a, f);
    tensor view;
    if (t && st_tensor_view(t, &view, &e)) {
        fprintf(stderr, "dit vae: %s\n", e.msg);
        t = NULL;
    }
    vae *v = t ? open_or_report(a, a->spec) : NULL;
    float *z = NULL, *px = NULL;
    rc = 1;
    if (v) {
        const int C = (int)t->shape[t->nd - 3], zh = (int)t->shape[t->nd - 2], zw = (int)t->shape[t->nd - 1];
        const int h = zh * v->scale, w = zw * v->scale;
        if (C != v->z_channels) {
            fprintf(stderr, "dit vae: %s: tensor '%s' has %d channels, the VAE takes %d (%s)\n", a->input, t->name, C,
                    v->z_channels, v->desc);
        } else if (h > IMG_MAX_SIDE || w > IMG_MAX_SIDE) {
            fprintf(stderr, "dit vae: %s: a %dx%d image is larger than %d pixels a side\n", a->input, w, h, IMG_MAX_SIDE);
        } else if (!(z = malloc(sizeof(float) * (size_t)t->numel)) || !(px = malloc(sizeof(float) * 3 * (size_t)h * w))) {
            fprintf(stderr, "dit vae: %s: out of memory\n", a->input);
        } else {
            cvt_to_f32(z, view.data, view.type, (size_t)t->numel);
            image im = { 0 };
            const img_text meta[] = { { "vae", v->desc }, { "latent", a->input } };
            if (vae_decode(v, z, zh, zw, px, NULL, &e) || vae_to_image(&im, px, h, w, &e) ||
                img_save_png(&im, a->output, meta, 2, &e)) {
                fprintf(stderr, "dit vae: %s\n", e.msg);
            } else {
                printf("%s: %dx%d from %s by %s\n", a->output, w, h, a->input, v->desc);
                rc = 0;
            }
            img_free(&im);
        }
    }
    free(z), free(px);
    vae_free(v);
    st_close(f);
    return rc;
}

static int run_info(const args *a)
{
    int rc = need(a, 1, 0, 0);
    if (rc) return rc;
    vae *v = open_or_report(a, a->input);
    if (!v) return 1;
    printf("vae:          %s\n", v->desc);
    printf("kind:         %s\n", v->ops->name);
    printf("latent:       %d channels, %d pixels per cell; model latent = (raw - %g) * %g\n", v->z_channels, v->scale,
           v->shift, v->scaling);
    printf("image range:  [%g, %g] native (img01 = native * %g + %g)\n", (0 - v->img_offset) / v->img_scale,
           (1 - v->img_offset) / v->img_scale, v->img_scale, v->img_offset);
    printf("directions:   %s%s%s\n", v->can_encode ? "encode" : "", v->can_encode && v->can_decode ? ", " : "",
           v->can_decode ? "decode" : "");
    printf("path:         %s; memory budget %zu MiB\n", ops_prec_name(v->prec), v->max_memory >> 20);
    static const int sides[] = { 512, 1024, 2048 };
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++)
        for (int dir = VAE_DECODE; dir <= VAE_ENCODE; dir++) {
            if (!(dir == VAE_DECODE ? v->can_decode : v->can_encode)) continue;
            const int zs = sides[i] / v->scale;
            vae_tiling t;
            dit_err e = { 0 };
            if (vae_plan(v, dir, zs, zs, &t, &e)) printf("%-6s %4d^2: %s\n", dir ? "encode" : "decode", sides[i], e.msg);
            else if (t.ny * t.nx == 1) printf("%-6s %4d^2: untiled, %zu MiB\n", dir ? "encode" : "decode", sides[i], t.bytes >> 20);
            else printf("%-6s %4d^2: %dx%d tiles of %d px (overlap %d px), %zu MiB\n", dir ? "encode" : "decode", sides[i],
                        t.ny, t.nx, t.tile_h * v->scale, t.overlap * v->scale, t.bytes >> 20);
        }
    vae_free(v);
    return 0;
}

static int run_synth(const args *a)
{
    int rc = need(a, 0, 1, 0);
    if (rc) return rc;
    dit_err e = { 0 };
    if (vae_synth(&a->synth, a->output, &e)) {
        fprintf(stderr, "dit vae: %s\n", e.msg);
        return 1;
    }
    printf("%s: random %s VAE written\n", a->output, a->synth.kind);
    return 0;
}

int cmd_vae(int argc, char **argv)
{
    args a;
    const int p = parse(argc, argv, &a);
    if (p) return p < 0 ? 0 : p;
    if (!a.cmd) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(a.cmd, "encode")) return run_encode(&a);
    if (!strcmp(a.cmd, "decode")) return run_decode(&a);
    if (!strcmp(a.cmd, "info")) return run_info(&a);
    if (!strcmp(a.cmd, "synth")) return run_synth(&a);
    fprintf(stderr, "dit vae: unknown subcommand '%s' (encode, decode, info or synth)\n", a.cmd);
    return 2;
}
