/* Run-time choice of the elementwise kernel table (vmath.h). */
#include "vmath.h"

#include <stddef.h>

#include "dg_config.h"
#include "vmath_bare.h"
#include "vmath_impl.h"

/* The table for a path the CPU is known to run. */
static const struct dg_vmath *table_for(enum dg_isa isa)
{
#if DG_X86_64
    switch (isa) {
    case DG_ISA_AVX512:
        return &dg__vmath_avx512_table;
    case DG_ISA_AVX2:
        return &dg__vmath_avx2_table;
    default:
        break;
    }
#else
    (void)isa;
#endif
    return &dg__vmath_generic_table;
}

const struct dg_vmath *dg__vmath_isa(enum dg_isa isa)
{
    /* A request above what the CPU runs falls back to the best it does run, so a caller can
     * never land on an illegal instruction. */
    enum dg_isa supported = dg__isa_supported();
    return table_for(isa > supported ? supported : isa);
}

/* dg__isa() is itself resolved once and cached, so this keeps no state of its own. */
const struct dg_vmath *dg__vmath(void)
{
    return table_for(dg__isa()); /* already capped to the CPU */
}

const struct dg_vmath_bare *dg__vmath_bare(enum dg_isa isa)
{
#if DG_X86_64
    if (isa > dg__isa_supported())
        return NULL;
    if (isa == DG_ISA_AVX512)
        return &dg__vmath_avx512_bare;
    if (isa == DG_ISA_AVX2)
        return &dg__vmath_avx2_bare;
#else
    (void)isa;
#endif
    return NULL;
}
