/* core/rng.h — random numbers that match PyTorch's, so a seed gives the same initial noise as the
 * reference pipelines.
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

#endif
