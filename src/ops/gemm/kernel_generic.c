/*
 * Plain-C GEMM kernels: any CPU, no ISA flags. Contract: gemm_kernel.h.
 *
 * The micro-tile is 4 x 8 accumulators in a local array the compiler keeps in registers (and
 * vectorises with whatever the baseline ISA offers: SSE2 on x86-64, NEON on AArch64). Every
 * tile, full or edge, runs the same compiled loop, so whatever the compiler decides about
 * contracting a*b+c into an FMA is decided once for all elements: results stay independent
 * of the tile position and of the thread count.
 */
#include "gemm_kernel.h"

enum { MR = 4, NR = 8 };

static void micro(int64_t k, const float *a_packed, const float *b_packed, float alpha,
                  float beta, float *c, int64_t ldc, int m_valid, int n_valid)
{
    float acc[MR][NR] = {{0}};
    for (int64_t p = 0; p < k; p++) {
        const float *a = a_packed + p * MR;
        const float *b = b_packed + p * NR;
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] += a[i] * b[j];
    }
    for (int i = 0; i < m_valid; i++) {
        float *c_row = c + i * ldc;
        for (int j = 0; j < n_valid; j++) {
            float r = alpha * acc[i][j];
            c_row[j] = beta != 0.0f ? beta * c_row[j] + r : r;
        }
    }
}

/* One row of C at a time, NR columns per pass: the row of op(A) is read once per pass and
 * the NR-wide strip of op(B) rows is contiguous. */
static void direct(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t a_row_stride, int64_t a_col_stride, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++) {
        const float *a_row = a + i * a_row_stride;
        float *c_row = c + i * ldc;
        for (int64_t j = 0; j < n; j += NR) {
            int width = n - j < NR ? (int)(n - j) : NR;
            float acc[NR] = {0};
            for (int64_t p = 0; p < k; p++) {
                float a_ip = a_row[p * a_col_stride];
                const float *b_row = b + p * ldb + j;
                for (int jj = 0; jj < width; jj++)
                    acc[jj] += a_ip * b_row[jj];
            }
            for (int jj = 0; jj < width; jj++) {
                float r = alpha * acc[jj];
                c_row[j + jj] = beta != 0.0f ? beta * c_row[j + jj] + r : r;
            }
        }
    }
}

/* op(B) transposed, m <= 4: each element one running sum over p = 0..k-1 in order (the
 * same order as `direct`), both rows read contiguously. */
static void dot(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++) {
        const float *a_row = a + i * lda;
        float *c_row = c + i * ldc;
        for (int64_t j = 0; j < n; j++) {
            const float *b_row = b + j * ldb;
            float acc = 0.0f;
            for (int64_t p = 0; p < k; p++)
                acc += a_row[p] * b_row[p];
            float r = alpha * acc;
            c_row[j] = beta != 0.0f ? beta * c_row[j] + r : r;
        }
    }
}

const struct dg__gemm_kernel dg__gemm_kernel_generic = {
    .isa = DG_ISA_GENERIC,
    .mr = MR,
    .nr = NR,
    .kc = 256,
    .mc = 64,
    .nc = 512,
    .micro = micro,
    .direct = direct,
    .dot = dot,
    .pack_a = dg__gemm_pack_a,
    .pack_b = dg__gemm_pack_b,
};
