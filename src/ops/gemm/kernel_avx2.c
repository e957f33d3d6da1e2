/*
 * AVX2 + FMA GEMM kernels (built with -mavx2 -mfma). Contract: gemm_kernel.h.
 *
 * Micro-tile 6 x 16: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm
 * registers, the classic Haswell-era shape: 2 loads and 6 broadcasts per 12 FMAs, and 12
 * independent chains cover the 4-5 cycle FMA latency at two FMAs per cycle.
 */
#include <immintrin.h>
#include <stdbool.h>

#include "gemm_kernel.h"

enum { MR = 6, NV = 2, NR = 8 * NV };
enum { MAX_MR = 8, MAX_NV = 2 };

/* Lane mask for _mm256_maskload_ps / _mm256_maskstore_ps: the first `count` lanes set. */
static inline __m256i lane_mask(int count)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* As in kernel_avx512.c: an mr x (8*nv) register tile, mr and nv constant after inlining.
 * n_count[v] is the number of valid lanes of vector v (0..8). */
static inline __attribute__((always_inline)) void
tile(const int mr, const int nv, const bool mask_tail_b, int64_t k, const float *a,
     int64_t a_row, int64_t a_step, const float *b, int64_t b_step, const int *n_count,
     float alpha, float beta, float *c, int64_t ldc, int m_valid)
{
    __m256 acc[MAX_MR][MAX_NV];
    __m256i tail = lane_mask(n_count[nv - 1]);
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            acc[i][v] = _mm256_setzero_ps();

#pragma GCC unroll 2
    for (int64_t p = 0; p < k; p++) {
        __m256 bv[MAX_NV];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            bv[v] = (mask_tail_b && v == nv - 1) ? _mm256_maskload_ps(b + 8 * v, tail)
                                                 : _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i * a_row);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += a_step;
        b += b_step;
    }

    const __m256 alpha_v = _mm256_set1_ps(alpha);
    const __m256 beta_v = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        if (i >= m_valid)
            break;
        float *c_row = c + i * ldc;
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            if (n_count[v] <= 0)
                continue;
            __m256 r = _mm256_mul_ps(alpha_v, acc[i][v]);
            if (n_count[v] >= 8) {
                if (beta != 0.0f)
                    r = _mm256_fmadd_ps(beta_v, _mm256_loadu_ps(c_row + 8 * v), r);
                _mm256_storeu_ps(c_row + 8 * v, r);
            } else {
                __m256i mask = lane_mask(n_count[v]);
                if (beta != 0.0f)
                    r = _mm256_fmadd_ps(beta_v, _mm256_maskload_ps(c_row + 8 * v, mask), r);
                _mm256_maskstore_ps(c_row + 8 * v, mask, r);
            }
        }
    }
}

static void micro(int64_t k, const float *a_packed, const float *b_packed, float alpha,
                  float beta, float *c, int64_t ldc, int m_valid, int n_valid)
{
    int n_count[MAX_NV];
    for (int v = 0; v < NV; v++)
        n_count[v] = n_valid - 8 * v < 8 ? n_valid - 8 * v : 8;
    for (int i = 0; i < m_valid; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    }
    tile(MR, NV, false, k, a_packed, 1, MR, b_packed, NR, n_count, alpha, beta, c, ldc,
         m_valid);
}

static inline __attribute__((always_inline)) void
direct_rows(const int mr, int64_t width, int64_t k, float alpha, const float *a,
            int64_t a_row_stride, int64_t a_col_stride, const float *b, int64_t ldb,
            float beta, float *c, int64_t ldc)
{
    int n_count[MAX_NV];
    if (width == 16) {
        n_count[0] = n_count[1] = 8;
        tile(mr, 2, false, k, a, a_row_stride, a_col_stride, b, ldb, n_count, alpha, beta, c,
             ldc, mr);
    } else if (width > 8) {
        n_count[0] = 8;
        n_count[1] = (int)width - 8;
        tile(mr, 2, true, k, a, a_row_stride, a_col_stride, b, ldb, n_count, alpha, beta, c,
             ldc, mr);
    } else {
        n_count[0] = (int)width;
        tile(mr, 1, true, k, a, a_row_stride, a_col_stride, b, ldb, n_count, alpha, beta, c,
             ldc, mr);
    }
}

/* Rows in groups of 4, then 2, then 1 (4 x 16 keeps 8 accumulators: plenty for small k). */
static void direct(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t a_row_stride, int64_t a_col_stride, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc)
{
    for (int64_t j = 0; j < n; j += 16) {
        int64_t width = n - j < 16 ? n - j : 16;
        int64_t i = 0;
        for (; i + 6 <= m; i += 6)
            direct_rows(6, width, k, alpha, a + i * a_row_stride, a_row_stride, a_col_stride,
                        b + j, ldb, beta, c + i * ldc + j, ldc);
        if (m - i >= 4) {
            direct_rows(4, width, k, alpha, a + i * a_row_stride, a_row_stride, a_col_stride,
                        b + j, ldb, beta, c + i * ldc + j, ldc);
            i += 4;
        }
        if (m - i >= 2) {
            direct_rows(2, width, k, alpha, a + i * a_row_stride, a_row_stride, a_col_stride,
                        b + j, ldb, beta, c + i * ldc + j, ldc);
            i += 2;
        }
        if (m - i >= 1)
            direct_rows(1, width, k, alpha, a + i * a_row_stride, a_row_stride, a_col_stride,
                        b + j, ldb, beta, c + i * ldc + j, ldc);
    }
}

const struct dg__gemm_kernel dg__gemm_kernel_avx2 = {
    .isa = DG_ISA_AVX2,
    .mr = MR,
    .nr = NR,
    .kc = 256,
    .mc = 16 * MR,
    .nc = 1024,
    .micro = micro,
    .direct = direct,
    .pack_a = dg__gemm_pack_a,
    .pack_b = dg__gemm_pack_b,
};
