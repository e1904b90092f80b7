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
    unsigned eax, ebx, ecx, edx;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) c->fma = (ecx >> 12) & 1;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        c->avx2 = (ebx >> 5) & 1;
        c->avx512f = (ebx >> 16) & 1;
        c->avx512bw = (ebx >> 30) & 1;
        c->avx512_fp16 = (edx >> 23) & 1;
        c->amx_bf16 = (edx >> 22) & 1;
        c->amx_tile = (edx >> 24) & 1;
        c->amx_int8 = (edx >> 25) & 1;
    }
    if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) c->avx512_bf16 = (eax >> 5) & 1;
    /* The OS must also save the wider registers (XCR0, read by XGETBV): AVX needs bits 1-2,
     * AVX-512 bits 5-7, AMX bits 17-18 (Linux also asks each process to request AMX, which
     * oneDNN does). */
    unsigned long long xcr0 = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && ((ecx >> 27) & 1)) { /* OSXSAVE */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    if ((xcr0 & 0x6) != 0x6) c->avx2 = c->fma = 0;
    if ((xcr0 & 0xe6) != 0xe6) c->avx512f = c->avx512bw = c->avx512_bf16 = c->avx512_fp16 = 0;
    if ((xcr0 & 0x60000) != 0x60000) c->amx_tile = c->amx_bf16 = c->amx_int8 = 0;
    unsigned max_ext = __get_cpuid_max(0x80000000u, NULL);
    if (max_ext >= 0x80000004u) {
        for (unsigned leaf = 0; leaf < 3; leaf++) {
            unsigned r[4];
            __get_cpuid(0x80000002u + leaf, &r[0], &r[1], &r[2], &r[3]);
            memcpy(c->brand + leaf * 16, r, 16);
        }
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
