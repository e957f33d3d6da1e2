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
/* Largest instantiation (the small-m direct path uses up to 8 vectors per row). */
enum { MAX_MR = 8, MAX_NV = 8 };

/* Lane mask for _mm256_maskload_ps / _mm256_maskstore_ps: the first `count` lanes set. */
static inline __m256i lane_mask(int count)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* As in kernel_avx512.c: an mr x (8*nv) register tile, mr and nv constant after inlining.
 * n_count[v] is the number of valid lanes of vector v (0..8); when mask_tail_b, vector v of
 * each B row is loaded under that many lanes (zeros past column n, never stored), which
 * changes no element's operations. */
static inline __attribute__((always_inline)) void
tile(const int mr, const int nv, const bool mask_tail_b, int64_t k, const float *a,
     int64_t a_row, int64_t a_step, const float *b, int64_t b_step, const int *n_count,
     float alpha, float beta, float *c, int64_t ldc, int m_valid)
{
    __m256 acc[MAX_MR][MAX_NV];
    __m256i b_mask[MAX_NV];
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++)
        b_mask[v] = lane_mask(mask_tail_b ? n_count[v] : 8);
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[i][v] = _mm256_setzero_ps();

#pragma GCC unroll 2
    for (int64_t p = 0; p < k; p++) {
        __m256 bv[MAX_NV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            bv[v] = mask_tail_b ? _mm256_maskload_ps(b + 8 * v, b_mask[v])
                                : _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i * a_row);
#pragma GCC unroll 8
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
#pragma GCC unroll 8
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

/*
 * Small m (1..4 rows), as in kernel_avx512.c: each row holds nv vectors of C across the whole
 * k loop, B streamed row by row, so that enough independent FMA chains are in flight (two
 * FMAs a cycle x 4-5 cycles of latency: 8-10). m = 1 takes 8 vectors (64 columns), m = 2 four
 * (8 chains), m = 3, 4 two (6, 8 chains; more would not fit the 16 ymm registers). Leftover
 * columns take the narrowest power-of-two vector count covering them, each vector under its
 * lane mask; every element sums p = 0..k-1 with one FMA per term wherever its column falls.
 */
static inline __attribute__((always_inline)) void
direct_small_m(const int mr, const int nv, int64_t n, int64_t k, float alpha, const float *a,
               int64_t a_row_stride, int64_t a_col_stride, const float *b, int64_t ldb,
               float beta, float *c, int64_t ldc)
{
    int n_count[MAX_NV];
    for (int v = 0; v < MAX_NV; v++)
        n_count[v] = 8;
    const int64_t width = 8 * nv;
    int64_t j = 0;
    for (; j + width <= n; j += width)
        tile(mr, nv, false, k, a, a_row_stride, a_col_stride, b + j, ldb, n_count, alpha, beta,
             c + j, ldc, mr);
    const int64_t rest = n - j;
    if (rest == 0)
        return;
    for (int v = 0; v < MAX_NV; v++) {
        int64_t count = rest - 8 * v;
        n_count[v] = count < 0 ? 0 : count > 8 ? 8 : (int)count;
    }
    if (rest <= 8)
        tile(mr, 1, true, k, a, a_row_stride, a_col_stride, b + j, ldb, n_count, alpha, beta,
             c + j, ldc, mr);
    else if (rest <= 16 || nv <= 2)
        tile(mr, 2, true, k, a, a_row_stride, a_col_stride, b + j, ldb, n_count, alpha, beta,
             c + j, ldc, mr);
    else if (rest <= 32 || nv <= 4)
        tile(mr, 4, true, k, a, a_row_stride, a_col_stride, b + j, ldb, n_count, alpha, beta,
             c + j, ldc, mr);
    else
        tile(mr, 8, true, k, a, a_row_stride, a_col_stride, b + j, ldb, n_count, alpha, beta,
             c + j, ldc, mr);
}

/* Rows in groups of 6, then 4, 2, 1 (4 x 16 keeps 8 accumulators: plenty for small k);
 * m <= 4 on its own path above. */
static void direct(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t a_row_stride, int64_t a_col_stride, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc)
{
    switch (m) {
    case 1:
        direct_small_m(1, 8, n, k, alpha, a, a_row_stride, a_col_stride, b, ldb, beta, c, ldc);
        return;
    case 2:
        direct_small_m(2, 4, n, k, alpha, a, a_row_stride, a_col_stride, b, ldb, beta, c, ldc);
        return;
    case 3:
        direct_small_m(3, 2, n, k, alpha, a, a_row_stride, a_col_stride, b, ldb, beta, c, ldc);
        return;
    case 4:
        direct_small_m(4, 2, n, k, alpha, a, a_row_stride, a_col_stride, b, ldb, beta, c, ldc);
        return;
    default:
        break;
    }
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

/* ---- Dot kernel (op(B) transposed, m <= 4) ------------------------------------------------
 * As in kernel_avx512.c with 8 lanes: one ymm accumulator per element, lane l summing
 * p = l, l + 8, l + 16, ... in increasing p (one FMA per term from 0; the partial last group
 * loads zeros past k), then the lanes added in a fixed tree: l + (l + 4), + 2, + 1 (reduce8).
 * Up to 4 columns together; a column done alone takes the same operations. */

enum { DOT_COLUMNS = 4 };

static inline float reduce8(__m256 x)
{
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
    return _mm_cvtss_f32(s1);
}

/* C = fma(beta, C, alpha*sum), or alpha*sum when beta == 0 (C not read). */
static inline void write_one(float sum, float alpha, float beta, float *c)
{
    __m128 r = _mm_mul_ss(_mm_set_ss(alpha), _mm_set_ss(sum));
    if (beta != 0.0f)
        r = _mm_fmadd_ss(_mm_set_ss(beta), _mm_set_ss(*c), r);
    *c = _mm_cvtss_f32(r);
}

/* One group of 8 steps for mr rows x nc columns; loads under `mask` when `masked`. */
static inline __attribute__((always_inline)) void
dot_step(const int mr, const int nc, const bool masked, __m256i mask, const float *a,
         int64_t lda, const float *b, int64_t ldb, __m256 acc[][DOT_COLUMNS])
{
    __m256 av[DG__GEMM_SMALL_M];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
        av[i] = masked ? _mm256_maskload_ps(a + i * lda, mask) : _mm256_loadu_ps(a + i * lda);
#pragma GCC unroll 4
    for (int col = 0; col < nc; col++) {
        __m256 bv = masked ? _mm256_maskload_ps(b + col * ldb, mask)
                           : _mm256_loadu_ps(b + col * ldb);
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++)
            acc[i][col] = _mm256_fmadd_ps(av[i], bv, acc[i][col]);
    }
}

static inline __attribute__((always_inline)) void
dot_block(const int mr, const int nc, int64_t k, float alpha, const float *a, int64_t lda,
          const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    __m256 acc[DG__GEMM_SMALL_M][DOT_COLUMNS];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int col = 0; col < nc; col++)
            acc[i][col] = _mm256_setzero_ps();
    int64_t p = 0;
    for (; p + 8 <= k; p += 8)
        dot_step(mr, nc, false, _mm256_setzero_si256(), a + p, lda, b + p, ldb, acc);
    if (p < k)
        dot_step(mr, nc, true, lane_mask((int)(k - p)), a + p, lda, b + p, ldb, acc);
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int col = 0; col < nc; col++)
            write_one(reduce8(acc[i][col]), alpha, beta, c + i * ldc + col);
}

static inline __attribute__((always_inline)) void
dot_rows(const int mr, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
         const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    int64_t j = 0;
    for (; j + DOT_COLUMNS <= n; j += DOT_COLUMNS)
        dot_block(mr, DOT_COLUMNS, k, alpha, a, lda, b + j * ldb, ldb, beta, c + j, ldc);
    for (; j < n; j++)
        dot_block(mr, 1, k, alpha, a, lda, b + j * ldb, ldb, beta, c + j, ldc);
}

/* Rows in groups of 4 (the framework sends at most 4), then the 1-4 left. */
static void dot(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    for (; m > 4; m -= 4, a += 4 * lda, c += 4 * ldc)
        dot_rows(4, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    switch (m) {
    case 1:
        dot_rows(1, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
    case 2:
        dot_rows(2, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
    case 3:
        dot_rows(3, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
    default:
        dot_rows(4, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        break;
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
    .dot = dot,
    .pack_a = dg__gemm_pack_a,
    .pack_b = dg__gemm_pack_b,
};
