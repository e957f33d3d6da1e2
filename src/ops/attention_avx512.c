/*
 * The fused attention's whole-head kernels on AVX-512: attention_whole.h compiled with the
 * ISA's flags (src/ops/meson.build), on this file's small GEMM (the att_gemm contract in
 * attention_kernels.h). Called only where the CPU runs AVX-512 (attention_kernels.c picks
 * these at run time).
 *
 * The register tile is up to 8 rows x 32 columns (16 accumulators of 16 floats): per step p
 * two loads of B's row p and one broadcast of A(r, p) per row, 16 FMAs. A is read through its
 * two strides, so the score tiles (A = q rows, B = k^T), the outputs (A = P rows, B = v rows)
 * and the transposed products d k, d v (A = columns of dS or P, stride S per step) all run
 * through the one kernel without copies. Columns past n are masked (never read or written).
 */
#include <immintrin.h>
#include <math.h>

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

static void att_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     int64_t a_rs, int64_t a_ks, const float *b, int64_t ldb, bool accumulate,
                     float *c, int64_t ldc)
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

/* The row reductions (attention_whole.h): 16 lanes, the tail under a mask, then one tree
 * reduction across the lanes (GCC's `omp simd` epilogue adds them one by one through memory). */
static float att_row_max(const float *row, int64_t n)
{
    __m512 top = _mm512_set1_ps(-INFINITY);
    int64_t c = 0;
    for (; c + 16 <= n; c += 16)
        top = _mm512_max_ps(_mm512_loadu_ps(row + c), top);
    if (c < n)
        top = _mm512_mask_max_ps(top, lanes(n - c), _mm512_maskz_loadu_ps(lanes(n - c), row + c),
                                 top);
    return _mm512_reduce_max_ps(top);
}

static float att_row_sum(const float *row, int64_t n)
{
    __m512 sum = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= n; c += 16)
        sum = _mm512_add_ps(_mm512_loadu_ps(row + c), sum);
    if (c < n)
        sum = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes(n - c), row + c), sum);
    return _mm512_reduce_add_ps(sum);
}

static float att_row_dot(const float *a, const float *b, int64_t n)
{
    __m512 sum = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= n; c += 16)
        sum = _mm512_fmadd_ps(_mm512_loadu_ps(a + c), _mm512_loadu_ps(b + c), sum);
    if (c < n)
        sum = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(lanes(n - c), a + c),
                              _mm512_maskz_loadu_ps(lanes(n - c), b + c), sum);
    return _mm512_reduce_add_ps(sum);
}

/* r[0..16) (16 rows of 16) becomes its transpose: r[c] = column c. Four stages of lane
 * shuffles: pairs of rows interleaved, then groups of 4 rows within each 128-bit lane, then
 * the 128-bit lanes across groups of 8 and 16 rows. */
TILE_INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) { /* t[2i] lane L: a(4L) b(4L) a(4L+1) b(4L+1), a = r[2i] */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* r[4i + k] lane L: column 4L + k of rows 4i .. 4i + 3 */
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) { /* t[k]: columns k and 8 + k of rows 0-7, t[8 + k] rows 8-15 */
        t[k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
        t[4 + k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
        t[8 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xDD);
        r[4 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0x88);
        r[12 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0xDD);
    }
}

/* dst (cols x rows, row stride rows) = src^T, src rows x cols with row stride ld: 16 x 16
 * blocks in registers, the ragged edges one element at a time. */
static void att_transpose(const float *src, int64_t ld, int64_t rows, int64_t cols, float *dst)
{
    const int64_t full_r = rows / 16 * 16, full_c = cols / 16 * 16;
    for (int64_t r0 = 0; r0 < full_r; r0 += 16)
        for (int64_t c0 = 0; c0 < full_c; c0 += 16) {
            __m512 v[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                v[i] = _mm512_loadu_ps(src + (r0 + i) * ld + c0);
            transpose16(v);
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                _mm512_storeu_ps(dst + (c0 + i) * rows + r0, v[i]);
        }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = r < full_r ? full_c : 0; c < cols; c++)
            dst[c * rows + r] = src[r * ld + c];
}

#include "attention_whole.h"

void dg__att_whole_forward_avx512(const struct att_head *hd, const struct att_dims *d,
                                  const struct attention_attrs *a, const struct att_mask *mask,
                                  int64_t h, float *out, int64_t lo, float *scratch,
                                  const struct att_next *next, const struct dg_vmath *vm)
{
    whole_forward(hd, d, a, mask, h, out, lo, scratch, next, vm);
}

void dg__att_whole_grad_avx512(const struct att_head *hd, const struct att_dims *d,
                               const struct attention_attrs *a, const struct att_mask *mask,
                               int64_t h, float *dst_q, float *dst_k, float *dst_v,
                               int64_t width, float *scratch, const struct att_next *next,
                               const struct dg_vmath *vm)
{
    whole_grad(hd, d, a, mask, h, dst_q, dst_k, dst_v, width, scratch, next, vm);
}
