/*
 * The fused attention's small GEMM on AVX-512 (the contract: dg_att_gemm_fn in
 * attention_kernels.h). Built alone with -mavx512f ... (src/ops/meson.build) and called only
 * where the CPU runs AVX-512 (attention_kernels.c picks it at run time).
 *
 * The register tile is up to 8 rows x 32 columns (16 accumulators of 16 floats): per step p
 * two loads of B's row p and one broadcast of A(r, p) per row, 16 FMAs. A is read through its
 * two strides, so the score tiles (A = q rows, B = k^T), the outputs (A = P rows, B = v rows)
 * and the transposed products d k, d v (A = columns of dS or P, stride S per step) all run
 * through the one kernel without copies. Columns past n are masked (never read or written).
 */
#include <immintrin.h>

#include "attention_kernels.h"

#define TILE_INLINE static inline __attribute__((always_inline))

static inline __mmask16 lanes(int64_t k)
{
    return k >= 16 ? (__mmask16)0xffff : k <= 0 ? (__mmask16)0 : (__mmask16)((1u << k) - 1u);
}

/* rows x (16 * vecs) tile at c from k steps, columns masked by m0, m1 */
TILE_INLINE void tile(int rows, int vecs, int64_t k, float alpha, const float *a, int64_t a_rs,
                      int64_t a_ks, const float *b, int64_t ldb, bool accumulate, float *c,
                      int64_t ldc, __mmask16 m0, __mmask16 m1)
{
    __m512 acc0[8], acc1[8];
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++) {
        acc0[r] = _mm512_setzero_ps();
        acc1[r] = _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < k; p++) {
        const float *brow = b + p * ldb, *ap = a + p * a_ks;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, brow);
        __m512 b1 = vecs > 1 ? _mm512_maskz_loadu_ps(m1, brow + 16) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(ap[r * a_rs]);
            acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
            if (vecs > 1)
                acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++) {
        float *crow = c + r * ldc;
        __m512 v0 = _mm512_mul_ps(acc0[r], va);
        if (accumulate)
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, crow));
        _mm512_mask_storeu_ps(crow, m0, v0);
        if (vecs > 1) {
            __m512 v1 = _mm512_mul_ps(acc1[r], va);
            if (accumulate)
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, crow + 16));
            _mm512_mask_storeu_ps(crow + 16, m1, v1);
        }
    }
}

/* One tile with the row count and vector count as constants. */
#define TILE_CASE(R)                                                                         \
    case R:                                                                                  \
        if (vecs == 2)                                                                       \
            tile(R, 2, k, alpha, a, a_rs, a_ks, b, ldb, accumulate, c, ldc, m0, m1);         \
        else                                                                                 \
            tile(R, 1, k, alpha, a, a_rs, a_ks, b, ldb, accumulate, c, ldc, m0, m1);         \
        break

static void tile_any(int rows, int vecs, int64_t k, float alpha, const float *a, int64_t a_rs,
                     int64_t a_ks, const float *b, int64_t ldb, bool accumulate, float *c,
                     int64_t ldc, __mmask16 m0, __mmask16 m1)
{
    switch (rows) {
        TILE_CASE(1);
        TILE_CASE(2);
        TILE_CASE(3);
        TILE_CASE(4);
        TILE_CASE(5);
        TILE_CASE(6);
        TILE_CASE(7);
        TILE_CASE(8);
    default:
        break;
    }
}

void dg__att_gemm_avx512(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                         int64_t a_rs, int64_t a_ks, const float *b, int64_t ldb,
                         bool accumulate, float *c, int64_t ldc)
{
    for (int64_t j = 0; j < n; j += 32) {
        int64_t w = n - j < 32 ? n - j : 32;
        int vecs = w > 16 ? 2 : 1;
        __mmask16 m0 = lanes(w), m1 = lanes(w - 16);
        for (int64_t i = 0; i < m; i += 8) {
            int rows = m - i < 8 ? (int)(m - i) : 8;
            tile_any(rows, vecs, k, alpha, a + i * a_rs, a_rs, a_ks, b + j, ldb, accumulate,
                     c + i * ldc + j, ldc, m0, m1);
        }
    }
}
