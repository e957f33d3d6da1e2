/*
 * Run-time CPU dispatch. The default build runs on any x86-64 (and builds elsewhere with the
 * plain-C paths); AVX2 and AVX-512 kernels live in files compiled with those flags alone and are
 * picked here, once, from CPUID.
 */
#ifndef DG_CPU_H
#define DG_CPU_H

enum dg_isa {
    DG_ISA_GENERIC = 0, /* plain C, any machine */
    DG_ISA_AVX2 = 1,    /* AVX2 + FMA */
    DG_ISA_AVX512 = 2,  /* AVX-512 F (+DQ, BW, VL) */
    DG_ISA_COUNT
};

/* The best path this CPU runs, lowered by the DG_ISA environment variable ("generic", "avx2",
 * "avx512") when set; a request above what the CPU supports is capped to what it supports.
 * Read once; thread-safe. */
enum dg_isa dg__isa(void);
/* The path for a DG_ISA value: the named path capped to `supported`; NULL, "" or an unknown
 * name give `supported`. What dg__isa() applies to the environment, once. */
enum dg_isa dg__isa_choose(const char *request, enum dg_isa supported);
/* What the CPU itself supports, ignoring DG_ISA. */
enum dg_isa dg__isa_supported(void);
const char *dg__isa_name(enum dg_isa isa);

#endif
