/* tools/bench_vae.c — `dit bench --vae`: seconds of a 1024x1024 decode by the AutoencoderKL decoder
 * at the real FLUX.1 / SD3 geometry (ch 128, ch_mult 1,2,4,4, 2 res blocks, z 16; random weights
 * written by vae_synth, nothing downloaded) on the f32 and bf16 paths, and by TAEF2's decoder (same
 * geometry as the released weights, random too). Untiled; best of --reps runs after a warm-up run,
 * which also creates oneDNN's primitives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cpu.h"
#include "tools/cli.h"
#include "vae/vae.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Best seconds of decoding a zs x zs latent with the VAE in path on prec; -1 on failure. */
static double time_decode(const char *path, ops_prec prec, int zs, int reps, size_t *mem, char *desc, size_t cap)
{
    vae_opts o = vae_opts_default();
    o.prec = prec, o.tile = -1;
    vae *v = NULL;
    dit_err e = { 0 };
    if (vae_open(&v, path, &o, &e)) {
        fprintf(stderr, "dit bench: %s\n", e.msg);
        return -1;
    }
    snprintf(desc, cap, "%s", v->desc);
    const size_t nz = (size_t)v->z_channels * zs * zs, ni = (size_t)3 * zs * v->scale * zs * v->scale;
    float *z = malloc(sizeof(float) * nz), *img = malloc(sizeof(float) * ni);
    double best = -1;
    if (z && img) {
        uint32_t s = 12345;
        for (size_t i = 0; i < nz; i++) { /* roughly N(0,1): sum of 4 uniforms */
            float acc = 0;
            for (int k = 0; k < 4; k++) s = s * 1664525u + 1013904223u, acc += (s >> 8) * (1.0f / 16777216.0f) - 0.5f;
            z[i] = acc * 1.732f;
        }
        for (int r = 0; r <= reps; r++) { /* run 0: warm-up */
            const double t0 = now();
            if (vae_decode(v, z, zs, zs, img, NULL, &e)) {
                fprintf(stderr, "dit bench: %s\n", e.msg);
                best = -1;
                break;
            }
            const double dt = now() - t0;
            if (r > 0 && (best < 0 || dt < best)) best = dt;
        }
        size_t scratch = 0;
        v->ops->run_bytes(v, VAE_DECODE, zs, zs, &scratch);
        *mem = v->run.cap + v->tiles.cap + scratch;
    }
    free(z), free(img);
    vae_free(v);
    return best;
}

int bench_vae(int reps)
{
    char kl[64], ta[64];
    snprintf(kl, sizeof kl, "/tmp/dit_bench_kl_%d.safetensors", (int)getpid());
    snprintf(ta, sizeof ta, "/tmp/dit_bench_taef2_%d.safetensors", (int)getpid());
    vae_synth_cfg ck = vae_synth_default("kl"), ct = vae_synth_default("taesd");
    ck.encoder = ct.encoder = 0;
    ck.dtype = ct.dtype = ST_BF16; /* converted once at load, like a released file's weights */
    dit_err e = { 0 };
    if (vae_synth(&ck, kl, &e) || vae_synth(&ct, ta, &e)) {
        fprintf(stderr, "dit bench: %s\n", e.msg);
        unlink(kl), unlink(ta);
        return 1;
    }
    printf("threads %d, best of %d runs after a warm-up; 1024x1024 decode, untiled, random weights\n\n", cpu_threads(), reps);
    printf("%-46s %9s %11s\n", "decoder", "seconds", "memory MiB");
    static const struct {
        const char *name;
        int taesd;
        ops_prec prec;
    } runs[] = { { "AutoencoderKL (FLUX/SD3 geometry) f32", 0, OPS_F32 },
                 { "AutoencoderKL (FLUX/SD3 geometry) bf16", 0, OPS_BF16 },
                 { "TAEF2 f32", 1, OPS_F32 },
                 { "TAEF2 bf16", 1, OPS_BF16 } };
    int rc = 0;
    char desc[2][256] = { "", "" };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        size_t mem = 0;
        const double t = time_decode(runs[i].taesd ? ta : kl, runs[i].prec, 128, reps, &mem, desc[runs[i].taesd], sizeof desc[0]);
        if (t < 0) {
            rc = 1;
            break;
        }
        printf("%-46s %9.2f %11zu\n", runs[i].name, t, mem >> 20);
        fflush(stdout);
    }
    printf("\nKL:    %s\nTAEF2: %s\nmemory: run arenas + the kernels' scratch estimate.\n", desc[0], desc[1]);
    unlink(kl), unlink(ta);
    return rc;
}
