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

/* ---- op(B) packed once, used by many products (gemm_prepacked.c) ---------------------------
 * For a matrix that multiplies many different A's (a recurrent weight, once per time step).
 * The packing follows the kernel of dg__isa(); every product through it sums each element in
 * the same order as dg__sgemm's packed path, whatever m, the rows around it or the thread
 * count (it never takes the small-m or direct kernels). */
struct dg__gemm_kernel;
struct dg__gemm_packed_b {
    const struct dg__gemm_kernel *kernel;
    int64_t k, n;      /* op(B) is k x n */
    const float *data; /* the caller's buffer given to dg__gemm_pack_b_once */
};

/* Floats of the buffer that holds op(B) (k x n) packed. */
int64_t dg__gemm_packed_b_floats(int64_t k, int64_t n);
/* Floats of scratch dg__sgemm_packed_b needs for op(A) with m rows and depth k on up to
 * n_threads threads (64-byte aligned scratch keeps every panel aligned). */
int64_t dg__gemm_packed_a_floats(int64_t m, int64_t k, int n_threads);
/* Packs op(B) (B stored k x n with row stride ldb, or n x k when transpose_b) into `packed`
 * (dg__gemm_packed_b_floats floats, 64-byte aligned for speed) and describes it in *out. */
void dg__gemm_pack_b_once(bool transpose_b, int64_t k, int64_t n, const float *b, int64_t ldb,
                          float *packed, struct dg__gemm_packed_b *out);
/* C = alpha * op(A) * B + beta * C for m rows, B packed by dg__gemm_pack_b_once (its k and
 * n); a_scratch holds dg__gemm_packed_a_floats(m, k, n_threads) floats. Columns are split
 * across at most n_threads threads where the size justifies it; results do not depend on
 * the split. beta == 0: C is write-only. */
void dg__sgemm_packed_b(bool transpose_a, int64_t m, float alpha, const float *a, int64_t lda,
                        const struct dg__gemm_packed_b *b, float beta, float *c, int64_t ldc,
                        float *a_scratch, int n_threads);

#endif
