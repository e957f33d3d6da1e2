/*
 * AVX-512 GEMM kernels (built with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma -mavx2).
 * Contract: gemm_kernel.h.
 *
 * Micro-tile: MR rows x NR = 16*NV columns, the accumulators held in MR*NV zmm registers.
 * C is row-major, so a row of the tile is NV vectors of op(B) scaled by one broadcast element
 * of op(A): per k step NV vector loads + MR broadcasts feed MR*NV FMAs. 12 x 32 (24
 * accumulators) won on Zen 4 against 14x32, 8x48 and 6x64 (see docs/performance.md): enough
 * independent chains to cover FMA latency at full throughput, few loads per FMA, and the
 * 32 KiB B panel (KC 256 x 32 floats) sits in L1 across the MC loop.
 */
#include <immintrin.h>
#include <stdbool.h>

#include "gemm_kernel.h"

/* Tile and blocking; overridable with -D only for tuning experiments (docs/performance.md). */
#ifndef DG_GEMM_AVX512_MR
#define DG_GEMM_AVX512_MR 12
#endif
#ifndef DG_GEMM_AVX512_NV
#define DG_GEMM_AVX512_NV 2
#endif
#ifndef DG_GEMM_AVX512_KC
#define DG_GEMM_AVX512_KC 256
#endif
#ifndef DG_GEMM_AVX512_MC
#define DG_GEMM_AVX512_MC (10 * DG_GEMM_AVX512_MR)
#endif
#ifndef DG_GEMM_AVX512_NC
#define DG_GEMM_AVX512_NC 1024
#endif

enum { MR = DG_GEMM_AVX512_MR, NV = DG_GEMM_AVX512_NV, NR = 16 * NV };
/* Largest tile any instantiation below uses (the arrays are fully unrolled into registers;
 * the small-m direct path uses up to 8 vectors per row). */
enum { MAX_MR = 16, MAX_NV = 8 };

/* Mask selecting the first `count` lanes (count clamped to [0, 16]). */
static inline __mmask16 lane_mask(int count)
{
    if (count <= 0)
        return 0;
    if (count >= 16)
        return (__mmask16)0xffff;
    return (__mmask16)((1u << count) - 1u);
}

/*
 * One register tile: mr x (16*nv), mr and nv compile-time constants after inlining. op(A)
 * element (i, p) is a[i*a_row + p*a_step]; op(B) row p starts at b + p*b_step. When
 * mask_tail_b, vector v of each B row is loaded under n_mask[v] (the direct kernel must not
 * read past column n; a vector wholly past it loads zeros and is never stored); packed panels
 * are padded and load whole vectors. Masking changes no element's operations: every lane
 * takes the same FMA sequence, so a column has the same bits in a full or a masked vector.
 * Write-back touches rows < m_valid and the lanes in n_mask.
 */
static inline __attribute__((always_inline)) void
tile_prefetch(const int mr, const int nv, const bool mask_tail_b, int64_t k, const float *a,
              int64_t a_row, int64_t a_step, const float *b, int64_t b_step,
              const __mmask16 *n_mask, float alpha, float beta, float *c, int64_t ldc,
              int m_valid, const char *const *lines, int n_lines)
{
    __m512 acc[MAX_MR][MAX_NV];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[i][v] = _mm512_setzero_ps();

    /* The k loop in n_lines + 1 stretches, one prefetch before each but the last, so that
     * the requests are spread over the whole loop rather than queued at once. */
    const int64_t every = n_lines > 0 ? (k + n_lines) / (n_lines + 1) : k;
    int64_t p = 0;
    for (int line = 0; line <= n_lines; line++) {
        if (line < n_lines)
            _mm_prefetch(lines[line], _MM_HINT_T0);
        const int64_t end = line == n_lines || p + every > k ? k : p + every;
#pragma GCC unroll 2
        for (; p < end; p++) {
            __m512 bv[MAX_NV];
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++)
                bv[v] = mask_tail_b ? _mm512_maskz_loadu_ps(n_mask[v], b + 16 * v)
                                    : _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 16
            for (int i = 0; i < mr; i++) {
                __m512 ai = _mm512_set1_ps(a[i * a_row]);
#pragma GCC unroll 8
                for (int v = 0; v < nv; v++)
                    acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
            }
            a += a_step;
            b += b_step;
        }
    }

    const __m512 alpha_v = _mm512_set1_ps(alpha);
    const __m512 beta_v = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) {
        if (i >= m_valid)
            break;
        float *c_row = c + i * ldc;
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            if (n_mask[v] == 0)
                continue;
            __m512 r = _mm512_mul_ps(alpha_v, acc[i][v]);
            if (beta != 0.0f)
                r = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(n_mask[v], c_row + 16 * v), r);
            _mm512_mask_storeu_ps(c_row + 16 * v, n_mask[v], r);
        }
    }
}

static inline __attribute__((always_inline)) void
tile(const int mr, const int nv, const bool mask_tail_b, int64_t k, const float *a,
     int64_t a_row, int64_t a_step, const float *b, int64_t b_step, const __mmask16 *n_mask,
     float alpha, float beta, float *c, int64_t ldc, int m_valid)
{
    tile_prefetch(mr, nv, mask_tail_b, k, a, a_row, a_step, b, b_step, n_mask, alpha, beta, c,
                  ldc, m_valid, NULL, 0);
}

static void micro_prefetch(int64_t k, const float *a_packed, const float *b_packed,
                           float alpha, float beta, float *c, int64_t ldc, int m_valid,
                           int n_valid, const char *const *lines, int n_lines)
{
    __mmask16 n_mask[MAX_NV];
    for (int v = 0; v < NV; v++)
        n_mask[v] = lane_mask(n_valid - 16 * v);
    /* The tile of C is needed only after the k loop; start fetching it now. */
    for (int i = 0; i < m_valid; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    }
    /* A right-edge tile whose columns fit one vector (n = 65: 64 + 1) takes a one-vector
     * tile: the padding vectors would cost a full tile's FMAs for nothing. Every lane still
     * sums p = 0..k-1 with one FMA per term, so its bits are those of the full tile. */
    if (NV > 1 && n_valid <= 16) {
        tile_prefetch(MR, 1, false, k, a_packed, 1, MR, b_packed, NR, n_mask, alpha, beta, c,
                      ldc, m_valid, lines, n_lines);
        return;
    }
    /* Likewise a bottom-edge tile of at most 8 (or 4) rows takes an 8-row (4-row) tile over
     * the same panel: M = 128 is 10 full tiles and one of 8 rows, whose 4 padding rows cost
     * 3% of the product; the rows kept take the same operations. */
    if (MR > 8 && m_valid <= 4) {
        tile_prefetch(4, NV, false, k, a_packed, 1, MR, b_packed, NR, n_mask, alpha, beta, c,
                      ldc, m_valid, lines, n_lines);
        return;
    }
    if (MR > 8 && m_valid <= 8) {
        tile_prefetch(8, NV, false, k, a_packed, 1, MR, b_packed, NR, n_mask, alpha, beta, c,
                      ldc, m_valid, lines, n_lines);
        return;
    }
    tile_prefetch(MR, NV, false, k, a_packed, 1, MR, b_packed, NR, n_mask, alpha, beta, c, ldc,
                  m_valid, lines, n_lines);
}

static void micro(int64_t k, const float *a_packed, const float *b_packed, float alpha,
                  float beta, float *c, int64_t ldc, int m_valid, int n_valid)
{
    micro_prefetch(k, a_packed, b_packed, alpha, beta, c, ldc, m_valid, n_valid, NULL, 0);
}

/* Direct kernel tile height; rows left over are done in groups of 4, then 2, then 1 (each an
 * exact tile, so no row is computed twice). */
#ifndef DG_GEMM_AVX512_DIRECT_MR
#define DG_GEMM_AVX512_DIRECT_MR 8
#endif
enum { DIRECT_MR = DG_GEMM_AVX512_DIRECT_MR };

/* Columns [j, j+width) of rows [i0, i0+rows) for a given constant row count. */
static inline __attribute__((always_inline)) void
direct_rows(const int mr, int64_t width, int64_t k, float alpha, const float *a,
            int64_t a_row_stride, int64_t a_col_stride, const float *b, int64_t ldb,
            float beta, float *c, int64_t ldc)
{
    __mmask16 n_mask[MAX_NV];
    if (width == 32) {
        n_mask[0] = n_mask[1] = (__mmask16)0xffff;
        tile(mr, 2, false, k, a, a_row_stride, a_col_stride, b, ldb, n_mask, alpha, beta, c,
             ldc, mr);
    } else if (width > 16) {
        n_mask[0] = (__mmask16)0xffff;
        n_mask[1] = lane_mask((int)width - 16);
        tile(mr, 2, true, k, a, a_row_stride, a_col_stride, b, ldb, n_mask, alpha, beta, c,
             ldc, mr);
    } else {
        n_mask[0] = lane_mask((int)width);
        tile(mr, 1, true, k, a, a_row_stride, a_col_stride, b, ldb, n_mask, alpha, beta, c,
             ldc, mr);
    }
}

/*
 * Small m (1..4 rows: batch-1 inference, the tail of a batch). Above, a row of C gets 2
 * accumulators (32 columns), which for m = 1 leaves 2 dependent FMA chains: the loop runs at
 * one FMA per 2 cycles of latency, not at the one-per-cycle the core can issue. Here each row
 * holds nv vectors (16*nv columns) of C across the whole k loop, streaming op(B) row by row:
 * m = 1, 2 take 8 vectors (128 columns: 8 or 16 chains, 8 B loads per step), m = 3, 4 take 4
 * (64 columns: 12 or 16 chains); mr*nv accumulators + nv B vectors + a broadcast stay within
 * the 32 zmm registers. The columns left over (n mod 16*nv) take the narrowest power-of-two
 * vector count that covers them, every vector loaded under its lane mask; each element still
 * sums p = 0..k-1 with one FMA per term, so its bits do not depend on where its column falls.
 */
static inline __attribute__((always_inline)) void
direct_small_m(const int mr, const int nv, int64_t n, int64_t k, float alpha, const float *a,
               int64_t a_row_stride, int64_t a_col_stride, const float *b, int64_t ldb,
               float beta, float *c, int64_t ldc)
{
    __mmask16 n_mask[MAX_NV];
    for (int v = 0; v < MAX_NV; v++)
        n_mask[v] = (__mmask16)0xffff;
    const int64_t width = 16 * nv;
    int64_t j = 0;
    for (; j + width <= n; j += width)
        tile(mr, nv, false, k, a, a_row_stride, a_col_stride, b + j, ldb, n_mask, alpha, beta,
             c + j, ldc, mr);
    const int64_t rest = n - j;
    if (rest == 0)
        return;
    for (int v = 0; v < MAX_NV; v++)
        n_mask[v] = lane_mask((int)rest - 16 * v);
    if (rest <= 16)
        tile(mr, 1, true, k, a, a_row_stride, a_col_stride, b + j, ldb, n_mask, alpha, beta,
             c + j, ldc, mr);
    else if (rest <= 32 || nv <= 2)
        tile(mr, 2, true, k, a, a_row_stride, a_col_stride, b + j, ldb, n_mask, alpha, beta,
             c + j, ldc, mr);
    else if (rest <= 64 || nv <= 4)
        tile(mr, 4, true, k, a, a_row_stride, a_col_stride, b + j, ldb, n_mask, alpha, beta,
             c + j, ldc, mr);
    else
        tile(mr, 8, true, k, a, a_row_stride, a_col_stride, b + j, ldb, n_mask, alpha, beta,
             c + j, ldc, mr);
}

static void direct(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t a_row_stride, int64_t a_col_stride, const float *b, int64_t ldb,
                   float beta, float *c, int64_t ldc)
{
    switch (m) {
    case 1:
        direct_small_m(1, 8, n, k, alpha, a, a_row_stride, a_col_stride, b, ldb, beta, c, ldc);
        return;
    case 2:
        direct_small_m(2, 8, n, k, alpha, a, a_row_stride, a_col_stride, b, ldb, beta, c, ldc);
        return;
    case 3:
        direct_small_m(3, 4, n, k, alpha, a, a_row_stride, a_col_stride, b, ldb, beta, c, ldc);
        return;
    case 4:
        direct_small_m(4, 4, n, k, alpha, a, a_row_stride, a_col_stride, b, ldb, beta, c, ldc);
        return;
    default:
        break;
    }
    for (int64_t j = 0; j < n; j += 32) {
        int64_t width = n - j < 32 ? n - j : 32;
        int64_t i = 0;
        for (; i + DIRECT_MR <= m; i += DIRECT_MR)
            direct_rows(DIRECT_MR, width, k, alpha, a + i * a_row_stride, a_row_stride,
                        a_col_stride, b + j, ldb, beta, c + i * ldc + j, ldc);
        while (m - i >= 4) {
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
 * Element (i, j) is a dot product of two rows contiguous along k. Summation order, fixed for
 * a given k: one zmm accumulator per element, lane l summing p = l, l + 16, l + 32, ... in
 * increasing p, one FMA per term, starting from 0 (the last, partial group of 16 loads zeros
 * past k, which add exact zeros); then the lanes are added in a fixed tree: l + (l + 8), then
 * + 4, + 2, + 1 (reduce16). Up to 4 columns are done together (m x 4 independent chains, the
 * row of A loaded once for 4 columns); a column done alone takes the same operations. */

enum { DOT_COLUMNS = 4 };

/* The sum of the 16 lanes in the fixed order above. */
static inline float reduce16(__m512 x)
{
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
    return _mm_cvtss_f32(s1);
}

/* C = fma(beta, C, alpha*sum), or alpha*sum when beta == 0 (C not read): the write-back of
 * the contract, on one element. */
static inline void write_one(float sum, float alpha, float beta, float *c)
{
    __m128 r = _mm_mul_ss(_mm_set_ss(alpha), _mm_set_ss(sum));
    if (beta != 0.0f)
        r = _mm_fmadd_ss(_mm_set_ss(beta), _mm_set_ss(*c), r);
    *c = _mm_cvtss_f32(r);
}

/* mr rows x nc columns (both constant after inlining) of the dot kernel. */
static inline __attribute__((always_inline)) void
dot_block(const int mr, const int nc, int64_t k, float alpha, const float *a, int64_t lda,
          const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    __m512 acc[DG__GEMM_SMALL_M][DOT_COLUMNS];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int col = 0; col < nc; col++)
            acc[i][col] = _mm512_setzero_ps();
    /* Whole groups of 16 steps, then the partial one under a mask (the same FMA per lane). */
    int64_t p = 0;
    for (; p + 16 <= k; p += 16) {
        __m512 av[DG__GEMM_SMALL_M];
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++)
            av[i] = _mm512_loadu_ps(a + i * lda + p);
#pragma GCC unroll 4
        for (int col = 0; col < nc; col++) {
            __m512 bv = _mm512_loadu_ps(b + col * ldb + p);
#pragma GCC unroll 4
            for (int i = 0; i < mr; i++)
                acc[i][col] = _mm512_fmadd_ps(av[i], bv, acc[i][col]);
        }
    }
    if (p < k) {
        const __mmask16 k_mask = lane_mask((int)(k - p));
        __m512 av[DG__GEMM_SMALL_M];
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++)
            av[i] = _mm512_maskz_loadu_ps(k_mask, a + i * lda + p);
#pragma GCC unroll 4
        for (int col = 0; col < nc; col++) {
            __m512 bv = _mm512_maskz_loadu_ps(k_mask, b + col * ldb + p);
#pragma GCC unroll 4
            for (int i = 0; i < mr; i++)
                acc[i][col] = _mm512_fmadd_ps(av[i], bv, acc[i][col]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int col = 0; col < nc; col++)
            write_one(reduce16(acc[i][col]), alpha, beta, c + i * ldc + col);
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

/* ---- Packing -------------------------------------------------------------------------------
 * The portable packers (gemm_pack.c) move one float at a time when a panel's lanes are not
 * contiguous, which on the MLP shapes (m = 128) cost as much as a fifth of the run. Here the
 * two contiguous-along-k cases are 16 x 16 register transposes, and the contiguous-lane cases
 * whole-vector copies; anything else falls back to the portable code. */

/* In-register transpose: on return r[j] holds what was column j of rows r[0..15]. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* Per row group g of four rows: u[4g + j] holds, in 128-bit lane L, column 4L + j. */
    for (int g = 0; g < 4; g++) {
        __m512 lo01 = t[4 * g], hi01 = t[4 * g + 1], lo23 = t[4 * g + 2], hi23 = t[4 * g + 3];
        u[4 * g + 0] = _mm512_shuffle_ps(lo01, lo23, _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * g + 1] = _mm512_shuffle_ps(lo01, lo23, _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * g + 2] = _mm512_shuffle_ps(hi01, hi23, _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * g + 3] = _mm512_shuffle_ps(hi01, hi23, _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; j++) {
        __m512 w0 = _mm512_shuffle_f32x4(u[j], u[4 + j], _MM_SHUFFLE(1, 0, 1, 0));
        __m512 w1 = _mm512_shuffle_f32x4(u[j], u[4 + j], _MM_SHUFFLE(3, 2, 3, 2));
        __m512 w2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(1, 0, 1, 0));
        __m512 w3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(3, 2, 3, 2));
        r[j] = _mm512_shuffle_f32x4(w0, w2, _MM_SHUFFLE(2, 0, 2, 0));
        r[4 + j] = _mm512_shuffle_f32x4(w0, w2, _MM_SHUFFLE(3, 1, 3, 1));
        r[8 + j] = _mm512_shuffle_f32x4(w1, w3, _MM_SHUFFLE(2, 0, 2, 0));
        r[12 + j] = _mm512_shuffle_f32x4(w1, w3, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

/* Lanes [0, lanes) (lanes <= 16) whose runs along k are contiguous (element (lane, p) at
 * src[lane*lane_stride + p]) into dst[p*width + lane_offset + lane] for p < kc, lanes
 * [lanes, 16) of the 16-wide group written as zeros only up to `store_lanes`. */
static void transpose_pack(int64_t lanes, int store_lanes, int64_t kc, const float *src,
                           int64_t lane_stride, float *dst, int width)
{
    const __mmask16 store_mask = lane_mask(store_lanes);
    for (int64_t p = 0; p < kc; p += 16) {
        const int steps = kc - p < 16 ? (int)(kc - p) : 16;
        const __mmask16 k_mask = lane_mask(steps);
        __m512 r[16];
#pragma GCC unroll 16
        for (int lane = 0; lane < 16; lane++)
            r[lane] = lane < lanes ? _mm512_maskz_loadu_ps(k_mask, src + lane * lane_stride + p)
                                   : _mm512_setzero_ps();
        transpose16(r);
        for (int q = 0; q < steps; q++)
            _mm512_mask_storeu_ps(dst + (p + q) * width, store_mask, r[q]);
    }
}

/* Steps of k whose source rows a contiguous-lane pack reads before moving on: the rows are
 * read once for every panel, and a few of them (STEPS x lanes floats) stay in L1 while the
 * panels take their parts. Walking one panel down all kc steps instead reads each row's cache
 * line once per panel, and with a power-of-two row stride (a 4096 x 512 operand: 2 KiB) the
 * rows share a couple of L1 sets, so every panel went back to L2 or memory for them. */
enum { PACK_STEPS = 16 };

/* Lanes [0, lanes) x steps [0, kc) of an operand whose step p is the contiguous run
 * src[p*k_stride + lane], into width-wide panels (width = MR or NR, a multiple of 4 up to
 * 64), zero-padding the last panel: the contiguous-lane layouts (A transposed, B not). */
static inline __attribute__((always_inline)) void
pack_rows(const int width, int64_t lanes, int64_t kc, const float *src, int64_t k_stride,
          float *packed)
{
    const int vectors = (width + 15) / 16;
    const __mmask16 last_store = lane_mask(width - 16 * (vectors - 1));
    for (int64_t p0 = 0; p0 < kc; p0 += PACK_STEPS) {
        const int64_t steps = kc - p0 < PACK_STEPS ? kc - p0 : PACK_STEPS;
        for (int64_t first = 0; first < lanes; first += width) {
            const int64_t valid = lanes - first < width ? lanes - first : width;
            __mmask16 load[4];
#pragma GCC unroll 4
            for (int v = 0; v < vectors; v++)
                load[v] = lane_mask((int)valid - 16 * v) & (v == vectors - 1 ? last_store
                                                                              : 0xffff);
            float *dst = packed + first * kc + p0 * width;
            const float *row = src + p0 * k_stride + first;
            for (int64_t p = 0; p < steps; p++) {
#pragma GCC unroll 4
                for (int v = 0; v < vectors; v++) {
                    const __mmask16 store = v == vectors - 1 ? last_store : (__mmask16)0xffff;
                    _mm512_mask_storeu_ps(dst + p * width + 16 * v, store,
                                          _mm512_maskz_loadu_ps(load[v], row + p * k_stride +
                                                                             16 * v));
                }
            }
        }
    }
}

static void pack_a(int mr, int64_t mc, int64_t kc, const float *a, int64_t row_stride,
                   int64_t col_stride, float *packed)
{
    if (mr != MR || mr > 16 || (col_stride != 1 && row_stride != 1)) {
        dg__gemm_pack_a(mr, mc, kc, a, row_stride, col_stride, packed);
        return;
    }
    if (col_stride != 1) {
        /* Transposed A: the panel's MR values for step p are contiguous. */
        pack_rows(MR, mc, kc, a, col_stride, packed);
        return;
    }
    for (int64_t first = 0; first < mc; first += MR) {
        const int64_t valid = mc - first < MR ? mc - first : MR;
        transpose_pack(valid, MR, kc, a + first * row_stride, row_stride, packed + first * kc,
                       MR);
    }
}

static void pack_b(int nr, int64_t kc, int64_t nc, const float *b, int64_t row_stride,
                   int64_t col_stride, float *packed)
{
    if (nr != NR || (col_stride != 1 && row_stride != 1)) {
        dg__gemm_pack_b(nr, kc, nc, b, row_stride, col_stride, packed);
        return;
    }
    if (col_stride == 1) {
        /* B not transposed: each step's NR values are contiguous. */
        pack_rows(NR, nc, kc, b, row_stride, packed);
        return;
    }
    /* B transposed: each lane (column of op(B)) is contiguous along k. */
    for (int64_t first = 0; first < nc; first += NR) {
        const int64_t valid = nc - first < NR ? nc - first : NR;
        float *dst = packed + first * kc;
        const float *src = b + first * col_stride;
        for (int v = 0; v < NV; v++) {
            int64_t lanes = valid - 16 * v;
            lanes = lanes < 0 ? 0 : lanes > 16 ? 16 : lanes;
            if (lanes == 0) {
                for (int64_t p = 0; p < kc; p++)
                    _mm512_storeu_ps(dst + p * NR + 16 * v, _mm512_setzero_ps());
                continue;
            }
            transpose_pack(lanes, 16, kc, src + 16 * v * col_stride, col_stride, dst + 16 * v,
                           NR);
        }
    }
}

const struct dg__gemm_kernel dg__gemm_kernel_avx512 = {
    .isa = DG_ISA_AVX512,
    .mr = MR,
    .nr = NR,
    .kc = DG_GEMM_AVX512_KC,
    .mc = DG_GEMM_AVX512_MC,
    .nc = DG_GEMM_AVX512_NC,
    .micro = micro,
    .micro_prefetch = micro_prefetch,
    .direct = direct,
    .dot = dot,
    .pack_a = pack_a,
    .pack_b = pack_b,
};
