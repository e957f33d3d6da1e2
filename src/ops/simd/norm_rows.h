/*
 * Layer norm's per-row kernels (src/ops/norm.c, norm_grad.c), one table per path: the
 * portable one (norm.c, 4-lane vector extension: SSE on x86-64) and AVX-512
 * (norm_avx512.c). Both add in exactly the same order and round the same operations (no
 * fused multiply-adds, the same lane layout and reduction tree), so they give identical bits;
 * the AVX-512 one only does it in a quarter of the instructions.
 *
 *   stats(row, n, eps, &mean, &rstd): the row's mean and 1 / sqrt(var + eps), in double. The
 *       sums run over blocks of NORM_BLOCK elements, each in 32 float lanes (lane l takes the
 *       elements l, l + 32, ... of the block; the lanes are then added as
 *       norm_tree(lanes 0..15 + lanes 16..31)), the rest of the block in double; the
 *       variance from squares about the float mean, moved to the double mean.
 *   dx_row(x, g, gamma, n, eps, dx): one row of layer_norm_grad: the statistics, then
 *       sum d and sum d (x - m) (d = g gamma, or g when gamma is NULL) in 16 float lanes
 *       (norm_tree), the rest in double, then dx = a d + b (x - m) + k (norm_dx_coefficients).
 *   forward_row, gamma_row: the statistics, then one elementwise pass (below).
 */
#ifndef DG_NORM_ROWS_H
#define DG_NORM_ROWS_H

#include <stdint.h>

enum { NORM_BLOCK = 1024, NORM_STEP = 32, NORM_DX_STEP = 16 };

struct dg_norm_rows {
    void (*stats)(const float *row, int64_t n, float eps, double *mean, double *rstd);
    void (*dx_row)(const float *x, const float *g, const float *gamma, int64_t n, float eps,
                   float *dx);
    /* y = ((x - m) s) gamma + beta (gamma and beta both NULL: (x - m) s), m and s the float
     * mean and rstd */
    void (*forward_row)(const float *x, const float *gamma, const float *beta, int64_t n,
                        float eps, float *y);
    /* acc += g ((x - m) s): one row's part of layer_norm_gamma_grad */
    void (*gamma_row)(const float *x, const float *g, int64_t n, float eps, float *acc);
};

/* The table for dg__isa() (AVX-512 where it runs, else the portable one). Never NULL. */
const struct dg_norm_rows *dg__norm_rows(void);
/* Each path's table; the AVX-512 one exists on x86-64 builds only (call it only where the CPU
 * runs AVX-512). */
extern const struct dg_norm_rows dg__norm_rows_generic;
extern const struct dg_norm_rows dg__norm_rows_avx512;

/* 16 float lanes [a | b | c | d] (4 each) to one double: ((a + c) + (b + d)) lane by lane in
 * float, then ((l0 + l1) + (l2 + l3)) in double. */
static inline double norm_tree(const float lanes[16])
{
    float s[4];
    for (int l = 0; l < 4; l++)
        s[l] = (lanes[l] + lanes[8 + l]) + (lanes[4 + l] + lanes[12 + l]);
    return ((double)s[0] + s[1]) + ((double)s[2] + s[3]);
}

/* From the statistics and the row sums (sum d, sum d (x - m), m = (float)mean): the float
 * a, b, k of dx = a d + b (x - m) + k, i.e. rstd d - rstd mean(d) - rstd^3 (x - mean)
 * mean(d (x - mean)), with x - mean = (x - m) - shift. */
static inline void norm_dx_coefficients(double mean, double rstd, double sum_d, double sum_dx,
                                        int64_t n, float *a, float *b, float *k)
{
    const double shift = mean - (double)(float)mean;
    const double sum_dxc = sum_dx - sum_d * shift;
    const double bb = -rstd * rstd * rstd * sum_dxc / (double)n;
    *a = (float)rstd;
    *b = (float)bb;
    *k = (float)(-rstd * sum_d / (double)n - bb * shift);
}

/* The statistics from the two sums: mean = sum / n; var = (sum of (x - m)^2 - n shift^2) / n. */
static inline double norm_mean(double sum, int64_t n) { return sum / (double)n; }
static inline double norm_rstd(double mean, double sum_sq_m, int64_t n, float eps)
{
    const double shift = mean - (double)(float)mean;
    const double sq = sum_sq_m - (double)n * shift * shift;
    return 1.0 / __builtin_sqrt((sq > 0.0 ? sq : 0.0) / (double)n + (double)eps);
}

#endif /* DG_NORM_ROWS_H */
