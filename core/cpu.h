/* core/cpu.h — what this CPU and this build can do (for `dit info` and the metadata of images). */
#ifndef DIT_CORE_CPU_H
#define DIT_CORE_CPU_H

#include <stddef.h>

typedef struct {
    char brand[64];
    int avx2, fma, avx512f, avx512bw, avx512_bf16, avx512_fp16, amx_tile, amx_bf16, amx_int8;
} cpu_info;

void cpu_detect(cpu_info *c);
/* Threads OpenMP will use (1 without OpenMP). */
int cpu_threads(void);
/* Sets the thread count for OpenMP regions started by this thread (no-op without OpenMP). */
void cpu_set_threads(int n);
/* Compiler, flags and options this library was built with, one line. */
const char *cpu_build_info(void);

#endif
