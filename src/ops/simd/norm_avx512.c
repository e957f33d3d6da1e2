/*
 * Layer norm's row kernels with AVX-512 (simd/norm_rows.h): the very operations of the
 * portable ones in src/ops/norm.c and norm_grad.c, in the same order, sixteen lanes a
 * register instead of four (built with -mavx512f/dq and -ffp-contract=off: every multiply and
 * add stays separate, as in the portable code). Tails go through the same scalar double code.
 */
#include <immintrin.h>
#include <string.h>

#include "norm_rows.h"

/* [a | b | c | d] to one double, as norm_tree: (lo 256 + hi 256), then (lo 128 + hi 128). */
static inline double tree(__m512 z)
{
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(z), _mm512_extractf32x8_ps(z, 1));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    float s[4];
    _mm_storeu_ps(s, s4);
    return ((double)s[0] + s[1]) + ((double)s[2] + s[3]);
}

/* As row_sum in norm.c: lanes 0..15 of each 32-element step in lo, 16..31 in hi. */
static double row_sum(const float *x, int64_t n, float shift, int square)
{
    const __m512 vs = _mm512_set1_ps(shift);
    double total = 0.0;
    for (int64_t start = 0; start < n; start += NORM_BLOCK) {
        const int64_t len = n - start < NORM_BLOCK ? n - start : NORM_BLOCK;
        const float *p = x + start;
        __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
        int64_t j = 0;
        if (square) {
            for (; j + NORM_STEP <= len; j += NORM_STEP) {
                __m512 a = _mm512_sub_ps(_mm512_loadu_ps(p + j), vs);
                __m512 b = _mm512_sub_ps(_mm512_loadu_ps(p + j + 16), vs);
                lo = _mm512_add_ps(lo, _mm512_mul_ps(a, a));
                hi = _mm512_add_ps(hi, _mm512_mul_ps(b, b));
            }
        } else {
            for (; j + NORM_STEP <= len; j += NORM_STEP) {
                lo = _mm512_add_ps(lo, _mm512_sub_ps(_mm512_loadu_ps(p + j), vs));
                hi = _mm512_add_ps(hi, _mm512_sub_ps(_mm512_loadu_ps(p + j + 16), vs));
            }
        }
        double block = 0.0;
        for (; j < len; j++) {
            double v = (double)(p[j] - shift);
            block += square ? v * v : v;
        }
        total += block + tree(_mm512_add_ps(lo, hi));
    }
    return total;
}

static void stats(const float *row, int64_t n, float eps, double *mean, double *rstd)
{
    *mean = norm_mean(row_sum(row, n, 0.0f, 0), n);
    *rstd = norm_rstd(*mean, row_sum(row, n, (float)*mean, 1), n, eps);
}

static void dx_row(const float *x, const float *g, const float *gamma, int64_t n, float eps,
                   float *out)
{
    double mean, rstd;
    stats(x, n, eps, &mean, &rstd);
    const float m = (float)mean;
    const __m512 vm = _mm512_set1_ps(m);
    __m512 sum_d = _mm512_setzero_ps(), sum_dx = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + NORM_DX_STEP <= n; j += NORM_DX_STEP) {
        __m512 d = _mm512_loadu_ps(g + j);
        if (gamma != NULL)
            d = _mm512_mul_ps(d, _mm512_loadu_ps(gamma + j));
        sum_d = _mm512_add_ps(sum_d, d);
        sum_dx = _mm512_add_ps(sum_dx, _mm512_mul_ps(d, _mm512_sub_ps(_mm512_loadu_ps(x + j), vm)));
    }
    double total_d = 0.0, total_dx = 0.0;
    for (; j < n; j++) {
        double dj = gamma != NULL ? (double)(g[j] * gamma[j]) : (double)g[j];
        total_d += dj;
        total_dx += dj * (double)(x[j] - m);
    }
    float fa, fb, fk;
    norm_dx_coefficients(mean, rstd, total_d + tree(sum_d), total_dx + tree(sum_dx), n, &fa,
                         &fb, &fk);
    const __m512 va = _mm512_set1_ps(fa), vb = _mm512_set1_ps(fb), vk = _mm512_set1_ps(fk);
    j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 d = _mm512_loadu_ps(g + j);
        if (gamma != NULL)
            d = _mm512_mul_ps(d, _mm512_loadu_ps(gamma + j));
        __m512 r = _mm512_add_ps(_mm512_mul_ps(va, d),
                                 _mm512_mul_ps(vb, _mm512_sub_ps(_mm512_loadu_ps(x + j), vm)));
        _mm512_storeu_ps(out + j, _mm512_add_ps(r, vk));
    }
    for (; j < n; j++) {
        float d = gamma != NULL ? g[j] * gamma[j] : g[j];
        out[j] = fa * d + fb * (x[j] - m) + fk;
    }
}

static void forward_row(const float *x, const float *gamma, const float *beta, int64_t n,
                        float eps, float *y)
{
    double mean, rstd;
    stats(x, n, eps, &mean, &rstd);
    const float m = (float)mean, s = (float)rstd;
    const __m512 vm = _mm512_set1_ps(m), vs = _mm512_set1_ps(s);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm), vs);
        if (gamma != NULL)
            v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_loadu_ps(gamma + j)),
                              _mm512_loadu_ps(beta + j));
        _mm512_storeu_ps(y + j, v);
    }
    for (; j < n; j++)
        y[j] = gamma != NULL ? (x[j] - m) * s * gamma[j] + beta[j] : (x[j] - m) * s;
}

static void gamma_row(const float *x, const float *g, int64_t n, float eps, float *acc)
{
    double mean, rstd;
    stats(x, n, eps, &mean, &rstd);
    const float m = (float)mean, s = (float)rstd;
    const __m512 vm = _mm512_set1_ps(m), vs = _mm512_set1_ps(s);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm), vs);
        v = _mm512_add_ps(_mm512_loadu_ps(acc + j), _mm512_mul_ps(_mm512_loadu_ps(g + j), v));
        _mm512_storeu_ps(acc + j, v);
    }
    for (; j < n; j++)
        acc[j] += g[j] * ((x[j] - m) * s);
}

const struct dg_norm_rows dg__norm_rows_avx512 = {
    .stats = stats, .dx_row = dx_row, .forward_row = forward_row, .gamma_row = gamma_row,
};
