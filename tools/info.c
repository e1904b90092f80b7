/* tools/info.c — `dit info`: version, build, CPU features, threads, oneDNN and the matmul path. */
#include <stdio.h>
#include <string.h>

#include "core/cpu.h"
#include "core/ops.h"
#include "tools/cli.h"

int cmd_info(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: dit info\n\nPrints the version, build options, CPU features used, threads, the oneDNN\n"
               "version and which implementation runs the f32 and bf16 matrix products.\n"
               "Threads follow OMP_NUM_THREADS (default: all cores).\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "dit info: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    cpu_info c;
    cpu_detect(&c);
    char backend[1024];
    ops_backend_info(backend, sizeof backend);
    printf("dit:           %s\n", DIT_VERSION);
    printf("build:         %s\n", cpu_build_info());
    printf("cpu:           %s\n", c.brand);
    printf("cpu features:  AVX2 %s, FMA %s, AVX-512F %s, AVX-512 BF16 %s, AMX-TILE %s, AMX-BF16 %s\n",
           c.avx2 ? "yes" : "no", c.fma ? "yes" : "no", c.avx512f ? "yes" : "no", c.avx512_bf16 ? "yes" : "no",
           c.amx_tile ? "yes" : "no", c.amx_bf16 ? "yes" : "no");
    printf("threads:       %d\n", cpu_threads());
    fputs(backend, stdout);
    const int amx = strstr(backend, "amx") != NULL;
    printf("fast path:     bf16 matmul/conv through oneDNN%s, f32 accumulation; reference path: f32 naive kernels\n",
           amx ? " on AMX tiles" : c.avx512_bf16 ? " (AVX-512 BF16)" : " (no bf16 hardware: emulated)");
    return 0;
}
