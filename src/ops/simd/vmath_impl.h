/*
 * Internal to src/ops/simd: the per-ISA tables that vmath.c chooses between. Each table lives
 * in a file compiled with that ISA's flags alone (see meson.build); the AVX tables exist only
 * on x86-64 builds.
 */
#ifndef DG_VMATH_IMPL_H
#define DG_VMATH_IMPL_H

#include "vmath.h"

extern const struct dg_vmath dg__vmath_generic_table;
extern const struct dg_vmath dg__vmath_avx2_table;
extern const struct dg_vmath dg__vmath_avx512_table;
struct dg_vmath_bare;
extern const struct dg_vmath_bare dg__vmath_avx2_bare;
extern const struct dg_vmath_bare dg__vmath_avx512_bare;

/* Constants shared by every path, so that all of them agree on the cut-offs. */
#define DG_VMATH_SOFTPLUS_THRESHOLD 20.0f /* softplus(x) = x above this (PyTorch's default) */
#define DG_VMATH_GELU_CLAMP 20.0f         /* |x| beyond this: Phi(x) and phi(x) are 0 or 1 in float */

#endif
