/*
 * Single-precision GEMM, BLIS/GotoBLAS style: packed panels, cache blocking, a register-blocked
 * micro-kernel per ISA (AVX-512, AVX2+FMA, plain C), OpenMP across cores.
 *
 *   C = alpha * op(A) * op(B) + beta * C       (row-major)
 *
 * op(A) is M x K: A is stored M x K (row stride lda) when !transpose_a, K x M when transpose_a.
 * op(B) is K x N: B is stored K x N (row stride ldb) when !transpose_b, N x K when transpose_b.
 * C is M x N with row stride ldc. beta == 0 means C is write-only (NaNs in C are not read).
 * M, N or K == 0 is valid (K == 0: C = beta * C).
 *
 * Deterministic: each element of C is computed by one thread with the same K order whatever
 * the thread count, so results are bitwise identical for any n_threads.
 */
#ifndef DG_GEMM_H
#define DG_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "../cpu.h"

void dg__sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc, int n_threads);

/* The same on `batch` independent problems; operand i starts at a + i*stride_a, etc. A stride
 * of 0 broadcasts that operand over the batch. */
void dg__sgemm_batched(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda, int64_t stride_a,
                       const float *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                       int64_t ldc, int64_t stride_c, int64_t batch, int n_threads);

/* dg__sgemm through one given path (for tests and benchmarks); the path must be supported
 * by this CPU (dg__isa_supported() >= isa). */
void dg__sgemm_isa(enum dg_isa isa, bool transpose_a, bool transpose_b, int64_t m, int64_t n,
                   int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                   int64_t ldb, float beta, float *c, int64_t ldc, int n_threads);

#endif
