/*
 * Vectorised elementwise kernels over contiguous float arrays, one table per ISA, chosen at run
 * time (cpu.h). Transcendentals use SLEEF vector functions (the accuracy of each is documented
 * in docs/kernels.md and tested in tests/test_vmath.c against double-precision libm).
 *
 * Every function processes n elements on the calling thread; op kernels split large arrays
 * into chunks across OpenMP threads and call these per chunk. `out` may equal an input
 * (in place); otherwise arrays do not overlap. n may be 0. No alignment is required.
 */
#ifndef DG_VMATH_H
#define DG_VMATH_H

#include <stdint.h>

#include "../cpu.h"

typedef void (*dg_vmath_unary_fn)(const float *x, float *out, int64_t n);
/* Backward kernels: out = grad * f'(...) where the first operand is what the derivative is
 * expressed in (x, or the forward output y, as named below). */
typedef void (*dg_vmath_binary_fn)(const float *a, const float *b, float *out, int64_t n);
/* Dropout over elements [start, start + n) of the stream `base` (dropout_hash.h):
 * out[i] = kept ? x[i] * scale : 0, or with x NULL the factor itself (scale or 0). */
typedef void (*dg_vmath_dropout_fn)(uint64_t base, int64_t start, uint32_t threshold,
                                    float scale, const float *x, float *out, int64_t n);

struct dg_vmath {
    const char *isa_name;
    /* forward */
    dg_vmath_unary_fn exp, log, sqrt, tanh, sigmoid, gelu, softplus, relu;
    /* backward: out = grad * f'. Arguments (first, grad). */
    dg_vmath_binary_fn relu_grad;     /* (x, grad):  grad * (x > 0) */
    dg_vmath_binary_fn sigmoid_grad;  /* (y, grad):  grad * y * (1 - y), y = sigmoid(x) */
    dg_vmath_binary_fn tanh_grad;     /* (y, grad):  grad * (1 - y*y),   y = tanh(x) */
    dg_vmath_binary_fn gelu_grad;     /* (x, grad):  grad * (Phi(x) + x*phi(x)) */
    dg_vmath_binary_fn softplus_grad; /* (x, grad):  grad * sigmoid(x) */
    /* plain binary arithmetic on equal-length arrays: out = a op b */
    dg_vmath_binary_fn add, sub, mul, div;
    dg_vmath_dropout_fn dropout;
};

/* The table for dg__isa(). Never NULL. */
const struct dg_vmath *dg__vmath(void);
/* The table for a given path (must be supported by this CPU); for tests and benchmarks. */
const struct dg_vmath *dg__vmath_isa(enum dg_isa isa);

#endif
