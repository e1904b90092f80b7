/* core/cpu.c — see cpu.h. CPUID leaves per the Intel SDM vol. 2A, CPUID. */
#include "cpu.h"

#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

void cpu_detect(cpu_info *c)
{
    memset(c, 0, sizeof *c);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, d, e;
    if (__get_cpuid(1, &a, &b, &d, &e)) c->fma = (d >> 12) & 1;
    if (__get_cpuid_count(7, 0, &a, &b, &d, &e)) {
        c->avx2 = (b >> 5) & 1;
        c->avx512f = (b >> 16) & 1;
        c->avx512bw = (b >> 30) & 1;
        c->avx512_fp16 = (e >> 23) & 1;
        c->amx_bf16 = (e >> 22) & 1;
        c->amx_tile = (e >> 24) & 1;
        c->amx_int8 = (e >> 25) & 1;
    }
    if (__get_cpuid_count(7, 1, &a, &b, &d, &e)) c->avx512_bf16 = (a >> 5) & 1;
    unsigned max_ext = __get_cpuid_max(0x80000000u, NULL);
    if (max_ext >= 0x80000004u) {
        unsigned *w = (unsigned *)c->brand;
        for (unsigned leaf = 0; leaf < 3; leaf++)
            __get_cpuid(0x80000002u + leaf, &w[leaf * 4], &w[leaf * 4 + 1], &w[leaf * 4 + 2], &w[leaf * 4 + 3]);
        c->brand[48] = 0;
    }
#endif
    if (!c->brand[0]) strcpy(c->brand, "unknown");
}

int cpu_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void cpu_set_threads(int n)
{
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

#define STR_(x) #x
#define STR(x) STR_(x)

const char *cpu_build_info(void)
{
    return "compiler " __VERSION__
#ifdef __OPTIMIZE__
           ", optimised"
#else
           ", -O0"
#endif
#ifdef __AVX512F__
           ", AVX-512 code"
#elif defined(__AVX2__)
           ", AVX2 code"
#else
           ", generic x86-64 code"
#endif
#ifdef _OPENMP
           ", OpenMP " STR(_OPENMP)
#else
           ", no OpenMP"
#endif
#if defined(__SANITIZE_ADDRESS__)
           ", AddressSanitizer"
#endif
        ;
}
