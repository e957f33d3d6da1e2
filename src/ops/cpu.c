/* Run-time CPU dispatch: which ISA path the kernels take (see cpu.h). */
#include "cpu.h"

#include <stdlib.h>
#include <string.h>

#include "dg_config.h"

static const char *const isa_names[DG_ISA_COUNT] = {
    [DG_ISA_GENERIC] = "generic",
    [DG_ISA_AVX2] = "avx2",
    [DG_ISA_AVX512] = "avx512",
};

const char *dg__isa_name(enum dg_isa isa)
{
    return (isa >= 0 && isa < DG_ISA_COUNT) ? isa_names[isa] : "unknown";
}

enum dg_isa dg__isa_supported(void)
{
#if DG_X86_64 && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return DG_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return DG_ISA_AVX2;
#endif
    return DG_ISA_GENERIC;
}

enum dg_isa dg__isa_choose(const char *request, enum dg_isa supported)
{
    if (request == NULL || *request == '\0')
        return supported;
    for (int i = 0; i < DG_ISA_COUNT; i++)
        if (strcmp(request, isa_names[i]) == 0)
            return (enum dg_isa)i < supported ? (enum dg_isa)i : supported;
    return supported; /* an unknown name keeps the best path */
}

enum dg_isa dg__isa(void)
{
    /* Computed once; racing first calls compute the same value, so a relaxed store is fine. */
    static int cached = -1;
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = (int)dg__isa_choose(getenv("DG_ISA"), dg__isa_supported());
        __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    }
    return (enum dg_isa)isa;
}
