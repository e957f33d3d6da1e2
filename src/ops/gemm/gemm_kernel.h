/*
 * The contract between the portable GEMM framework (gemm.c, gemm_pack.c) and the per-ISA
 * kernels (kernel_generic.c, kernel_avx2.c, kernel_avx512.c). Only the kernel files are built
 * with ISA flags; everything here is plain C.
 *
 * Two or three kernels per ISA:
 *
 * 1. The micro-kernel computes one MR x NR tile of C from packed panels:
 *
 *        C[i][j] = alpha * sum_p A[i][p] * B[p][j] + beta * C[i][j]
 *                  for i < m_valid, j < n_valid
 *
 *    - a_packed: k groups of MR floats, group p = column p of the tile's rows of op(A)
 *      (A[0][p], A[1][p], ..., A[MR-1][p]); rows >= m_valid are zero padding.
 *    - b_packed: k groups of NR floats, group p = row p of the tile's columns of op(B);
 *      columns >= n_valid are zero padding.
 *    - Both panels start on a 64-byte boundary (the kernel still uses unaligned loads, which
 *      cost nothing extra when aligned, so a misaligned caller is slow but never wrong).
 *    - The sum runs over p = 0, 1, ..., k-1 in that order, one fused multiply-add per term into
 *      an accumulator that starts at 0; then C = alpha*acc + beta*C as fma(beta, C, alpha*acc)
 *      (or alpha*acc when beta == 0, in which case C is never read: it may hold NaNs).
 *      This fixed order is what makes results independent of tiling position and thread count:
 *      an element computed in a full tile and in an edge tile takes the same operations.
 *    - k may be 0 (then C = beta*C, or 0 when beta == 0). Only elements i < m_valid,
 *      j < n_valid of C are read or written (1 <= m_valid <= MR, 1 <= n_valid <= NR).
 *
 * 2. The direct kernel computes a whole (small) product with no packing, reading op(A) through
 *    two strides and op(B) row by row:
 *
 *        C[i][j] = alpha * sum_p a[i*a_row_stride + p*a_col_stride] * b[p*ldb + j] + beta*C[i][j]
 *
 *    for i < m, j < n, with the same summation order and write-back rule as above. op(B) must
 *    have unit column stride (the framework transposes a transposed B into a scratch block
 *    first). It serves small shapes, where packing costs more than it saves, and is the
 *    fallback when packing buffers cannot be allocated. m, n >= 1; k >= 0.
 *    Any m is valid, but the framework sends every product with m <= DG__GEMM_SMALL_M rows
 *    here whatever its size (packing a whole B to use one of its MR rows is pure loss), so
 *    kernels give m <= 4 its own register blocking: many columns per row, several independent
 *    accumulator chains, B streamed row by row. The element order above still holds there, so
 *    an element's bits never depend on which column block (full or masked tail) holds it.
 *
 * 3. The dot kernel (optional: NULL sends a transposed B through the direct kernel's copy)
 *    serves op(B) transposed with m <= DG__GEMM_SMALL_M, where both operands run along k:
 *
 *        C[i][j] = alpha * dot(a + i*lda, b + j*ldb, k) + beta * C[i][j]
 *
 *    a: m rows of op(A), each contiguous along k; b: n rows of the stored B (= columns of
 *    op(B)), each contiguous along k. The summation order is the kernel's own but fixed for a
 *    given k and documented in its file (the vector kernels keep one partial sum per lane,
 *    lane l taking p = l, l + L, l + 2L, ..., then add the lanes in a fixed tree); it must be
 *    the same for every (i, j), so that an element computed with its neighbours or alone, by
 *    any thread, has the same bits. Write-back as above (beta == 0: C is not read).
 *    m in [1, DG__GEMM_SMALL_M], n >= 1, k >= 0.
 *
 * 1b. micro_prefetch (optional: NULL means the framework prefetches nothing) is the micro-kernel
 *    with a hint: it also requests the n_lines cache lines lines[0..n_lines), spread over its
 *    k loop, and otherwise computes exactly what the micro-kernel computes. The framework
 *    passes the source of the block it packs next (gemm.c).
 *
 * Blocking sizes (kc, mc, nc) travel with the kernel because they depend on the tile shape:
 * a KC x NR panel of B stays in L1 across the ir loop; an MC x KC block of A stays in L2;
 * a KC x NC block of B is reused from L2/L3 across the ic loop.
 */
#ifndef DG_GEMM_KERNEL_H
#define DG_GEMM_KERNEL_H

#include <stdint.h>

#include "../cpu.h"
#include "dg_config.h"

typedef void (*dg__gemm_micro_fn)(int64_t k, const float *a_packed, const float *b_packed,
                                  float alpha, float beta, float *c, int64_t ldc, int m_valid,
                                  int n_valid);

/* The micro-kernel with a hint: while it runs, it requests the n_lines cache lines at
 * lines[0..n_lines) (the source of the block the framework packs next), spread over its k
 * loop. The lines are only prefetched, never read; the tile's values are exactly those of
 * the plain micro-kernel. */
typedef void (*dg__gemm_micro_prefetch_fn)(int64_t k, const float *a_packed,
                                           const float *b_packed, float alpha, float beta,
                                           float *c, int64_t ldc, int m_valid, int n_valid,
                                           const char *const *lines, int n_lines);

typedef void (*dg__gemm_direct_fn)(int64_t m, int64_t n, int64_t k, float alpha,
                                   const float *a, int64_t a_row_stride, int64_t a_col_stride,
                                   const float *b, int64_t ldb, float beta, float *c,
                                   int64_t ldc);

typedef void (*dg__gemm_dot_fn)(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                                int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                                int64_t ldc);

/* Products with at most this many rows always take the direct (or dot) kernel. */
enum { DG__GEMM_SMALL_M = 4 };

/* Packing functions with the signatures of dg__gemm_pack_a / dg__gemm_pack_b below; a kernel
 * may supply its own (vectorised transposes) or point at the portable ones. */
typedef void (*dg__gemm_pack_a_fn)(int mr, int64_t mc, int64_t kc, const float *a,
                                   int64_t row_stride, int64_t col_stride, float *packed);
typedef void (*dg__gemm_pack_b_fn)(int nr, int64_t kc, int64_t nc, const float *b,
                                   int64_t row_stride, int64_t col_stride, float *packed);

struct dg__gemm_kernel {
    enum dg_isa isa;
    int mr, nr;       /* micro-tile shape */
    int kc, mc, nc;   /* cache blocking; mc is a multiple of mr, nc of nr */
    dg__gemm_micro_fn micro;
    dg__gemm_micro_prefetch_fn micro_prefetch; /* NULL: none (the framework then prefetches
                                                  nothing) */
    dg__gemm_direct_fn direct;
    dg__gemm_dot_fn dot; /* NULL: none */
    dg__gemm_pack_a_fn pack_a;
    dg__gemm_pack_b_fn pack_b;
};

extern const struct dg__gemm_kernel dg__gemm_kernel_generic;
#if DG_X86_64
extern const struct dg__gemm_kernel dg__gemm_kernel_avx2;
extern const struct dg__gemm_kernel dg__gemm_kernel_avx512;
#endif

/* The kernel for isa, capped at what the CPU supports (gemm.c). */
const struct dg__gemm_kernel *dg__gemm_kernel_for(enum dg_isa isa);

/* Packing (gemm_pack.c). Both write whole panels, zero-padding the last one to mr (nr).
 *
 * dg__gemm_pack_a: rows [0, mc) and columns [0, kc) of op(A), whose element (i, p) is
 * a[i*row_stride + p*col_stride], into ceil(mc/mr) panels of kc*mr floats each.
 * dg__gemm_pack_b: rows [0, kc) and columns [0, nc) of op(B), element (p, j) at
 * b[p*row_stride + j*col_stride], into ceil(nc/nr) panels of kc*nr floats each. */
void dg__gemm_pack_a(int mr, int64_t mc, int64_t kc, const float *a, int64_t row_stride,
                     int64_t col_stride, float *packed);
void dg__gemm_pack_b(int nr, int64_t kc, int64_t nc, const float *b, int64_t row_stride,
                     int64_t col_stride, float *packed);

#endif
