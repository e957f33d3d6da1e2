/*
 * For benchmarks only (bench/bench_vmath.c): "bare" loops that call one ISA's vector math
 * functions and nothing else, compiled with that ISA's flags beside the real kernels. They are
 * the yardstick for the kernels' overhead (masking, clamps, blends, stable formulas). They
 * process only the first n - n % width elements (no tail) and are not for op code.
 */
#ifndef DG_VMATH_BARE_H
#define DG_VMATH_BARE_H

#include "vmath.h"

struct dg_vmath_bare {
    dg_vmath_unary_fn exp, log, sqrt, tanh, erfc;
    dg_vmath_unary_fn exp_log1p;   /* log1p(exp(x)): the two calls softplus needs */
    dg_vmath_binary_fn erfc_exp;   /* erfc(a) + exp(b): the library calls an erfc-based gelu' would need */
    dg_vmath_binary_fn mul;        /* a * b: two streams in, one out */
};

/* The bare loops of an AVX path, or NULL for the generic path (or one the CPU lacks). */
const struct dg_vmath_bare *dg__vmath_bare(enum dg_isa isa);

#endif
