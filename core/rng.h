/* core/rng.h — random numbers that match PyTorch's, so a seed gives the same initial noise as the
 * reference pipelines.
 *
 *   rng g;
 *   rng_init(&g, rng_kind_parse("cuda"), 42, &e);  // or RNG_CPU; rng_kind_parse gives RNG_KIND_COUNT when unknown
 *   rng_randn(&g, noise, 16 * 128 * 128);          // torch.randn(1, 16, 128, 128) from that generator
 *
 *   rng_torch g;
 *   rng_torch_seed(&g, 42);                  // torch.Generator().manual_seed(42) on the CPU
 *   rng_torch_randn(&g, noise, 16 * 128 * 128);  // == torch.randn(1, 16, 128, 128, generator=g)
 *
 * rng_torch: mt19937 (the 32-bit Mersenne twister, torch's CPUGeneratorImpl) with torch's
 * normal_kernel for float tensors: for n >= 16, every value drawn as a 24-bit uniform, then
 * Box-Muller on blocks of 16 (u1 = 1 - x[j], u2 = x[j + 8], j < 8), the last partial block redrawn
 * (aten/src/ATen/native/cpu/DistributionTemplates.h normal_fill_AVX2, the path torch's x86 builds
 * take with their default AVX2 kernels); for n < 16, normal_distribution<double> one value at a
 * time. Serial by nature: the same numbers for any thread count.
 */
#ifndef DIT_CORE_RNG_H
#define DIT_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct {
    uint32_t mt[624];
    int i;
    int have_next;     /* normal_distribution<double>'s cached second value */
    double next;
} rng_torch;

void rng_torch_seed(rng_torch *g, uint64_t seed);
uint32_t rng_torch_u32(rng_torch *g);
/* torch.randn(n) as float32 from g (advances g like torch does). */
void rng_torch_randn(rng_torch *g, float *out, size_t n);

/* rng_philox: torch.randn(n, generator=torch.Generator('cuda').manual_seed(seed), device='cuda') as
 * the community CPU reimplementation computes it (AUTOMATIC1111 stable-diffusion-webui
 * modules/rng_philox.py; stable-diffusion.cpp rng_philox.hpp), bit for bit: element i of the k-th
 * call (k = 0, 1, ...) is Philox4x32-10 (Salmon et al., SC'11) with key = (seed low, seed high) and
 * counter = (k, 0, i, 0), then the sine half of Box-Muller on its first two words x, y:
 *     u = x 2^-32 + 2^-33,  v = y c + c/2  (c = float32(2^-32 * 6.2831855)),
 *     value = float32(sqrt(-2 ln u) sin v), computed in double as the reference does in numpy.
 * Why it matches CUDA: torch's CUDA normal kernel gives thread i the curand Philox stream
 * (subsequence i, offset 4k: counter (k, 0, i, 0)) and writes curand_normal4's first value,
 * sqrtf(-2 logf(u)) sinf(v), to element i, while every element has its own thread. torch computes
 * that in float, the reference in double, so the two agree to float rounding (about 1e-6), not
 * bitwise; and torch launches at most (SMs x threads per SM) threads, so for larger tensors the
 * GPU's numbers depend on the GPU (the unrolled loop uses the other three curand values). Each
 * element is independent: filled in parallel, the same numbers for any thread count. */
typedef struct {
    uint64_t seed;
    uint64_t offset; /* randn calls so far: the counter's first word(s) */
} rng_philox;

void rng_philox_seed(rng_philox *g, uint64_t seed);
/* The next torch.randn(n) of the CUDA generator; advances g by one call whatever n is. */
void rng_philox_randn(rng_philox *g, float *out, size_t n);
/* Philox4x32-10 of counter ctr with key: the four output words (for tests and other
 * distributions). */
void rng_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Picking a generator by name (dit generate --rng). "cpu" (alias "torch"): rng_torch, torch's CPU
 * generator, as stable-diffusion.cpp's --rng cpu. "cuda" (alias "philox"): rng_philox, as
 * stable-diffusion.cpp's --rng cuda and the webui's "NV" source. stable-diffusion.cpp's
 * "std_default" is a third generator (C++ std::default_random_engine with libstdc++'s
 * normal_distribution), not implemented here, so it is not accepted as a name. */
typedef enum { RNG_CPU = 0, RNG_CUDA, RNG_KIND_COUNT } rng_kind;
const char *rng_kind_name(rng_kind k);      /* "cpu", "cuda" */
rng_kind rng_kind_parse(const char *name);  /* RNG_KIND_COUNT when unknown (or NULL) */

typedef struct {
    rng_kind kind;
    union {
        rng_torch cpu;
        rng_philox cuda;
    } u;
} rng;

/* DIT_E_ARG for an unknown kind (g is then unusable). */
dit_status rng_init(rng *g, rng_kind kind, uint64_t seed, dit_err *e);
/* torch.randn(n) from the chosen generator (advances it). */
void rng_randn(rng *g, float *out, size_t n);

#endif
