/*
 * The whole-head attention kernels, written once and compiled once per path: included by
 * attention_kernels.c (portable flags, att_gemm = dg__sgemm) and by attention_avx512.c
 * (AVX-512 flags, att_gemm = its register-tiled kernel), each of which defines
 *   static void att_gemm(...)   the contract in attention_kernels.h
 *   static float att_row_max(const float *row, int64_t n)   max of row[0..n), n >= 1
 *   static float att_row_sum(const float *row, int64_t n)   sum of row[0..n) (its own order)
 *   static float att_row_dot(const float *a, const float *b, int64_t n)   a . b (its own order)
 *   static void att_transpose(const float *src, int64_t ld, int64_t rows, int64_t cols,
 *                             float *dst)   dst (cols x rows, row stride rows) = src^T, src
 *                                           rows x cols with row stride ld
 * before including this file and wraps whole_forward / whole_grad under its own names (the
 * reductions are written out per path: GCC's `omp simd` reduction epilogue adds the lanes
 * one by one through memory, which costs more than the 128-key rows themselves). The
 * row loops (transposes, softmax rows, dropout factors, dS) are plain C that each path's
 * compiler vectorises at its own width; exp and the dropout hash come from vmath.
 *
 * With T, S <= ATT_WHOLE one task owns a whole head and keeps its T x S probabilities (and,
 * backward, their gradients) in per-thread scratch: one pass computes the softmax exactly (no
 * running rescale), and the backward gets d q, d k and d v from the same tiles. The scores are
 * computed in bands of ATT_BAND query rows, each only up to the last key its rows see, so a
 * causal head does about half the GEMM work of a dense one. k and v are transposed once per
 * head so that every product is "rows of A broadcast against rows of B".
 *
 * Scratch layout (att_whole_floats in attention_kernels.c): P (T x S), dS (T x S), dropout
 * factors (S + 16), k^T (Dh x S), v^T (Dv x S).
 */
#ifndef DG_ATTENTION_WHOLE_H
#define DG_ATTENTION_WHOLE_H

#include "attention_kernels.h"

#include <math.h>
#include <string.h>

#define ATT_BAND 16 /* query rows per band of the causal score GEMMs */

/* A function of nothing but prefetches has no effect the optimiser can see, and GCC 12
 * deletes its calls as those of a pure function unless it is kept out of inter-procedural
 * analysis (noipa, which clang does not know; clang keeps the calls). */
#if defined(__GNUC__) && !defined(__clang__)
#define ATT_KEEP_CALLS __attribute__((noipa))
#else
#define ATT_KEEP_CALLS __attribute__((noinline))
#endif

ATT_KEEP_CALLS static void att_prefetch_rows(const struct att_next *next,
                                             const struct att_dims *d, int64_t r0, int64_t r1)
{
    if (next == NULL)
        return;
    const struct att_head *src = &next->src;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t c = 0; c < d->dh; c += 16) {
            __builtin_prefetch(src->q + r * src->lq + c, 0, 2);
            __builtin_prefetch(src->k + r * src->lk + c, 0, 2);
        }
        for (int64_t c = 0; c < d->dv; c += 16) {
            __builtin_prefetch(src->v + r * src->lv + c, 0, 2);
            if (src->out != NULL) {
                __builtin_prefetch(src->out + r * src->lo + c, 0, 2);
                __builtin_prefetch(src->grad_out + r * src->lo + c, 0, 2);
            }
        }
        for (int k = 0; k < next->n_dst; k++)
            for (int64_t c = 0; c < next->dst_width; c += 16)
                __builtin_prefetch(next->dst + r * next->ld_dst + k * next->dst_step + c, 1, 2);
    }
}

/* The dropout factors of row i, keys [0, n): 0 or 1/(1-p) (the vector hash of vmath), into f
 * (room for n + 15): n is rounded up to whole vectors, as the vector hash does its tail one
 * element at a time; the factors past n are computed and never used. */
static void att_keep_row(const struct att_mask *mask, int64_t h, int64_t i,
                         const struct att_dims *d, int64_t n, float *f,
                         const struct dg_vmath *vm)
{
    vm->dropout(mask->base, (h * d->t + i) * d->s, mask->threshold, mask->inv_keep, NULL, f,
                (n + 15) / 16 * 16);
}

/* Rows [i0, i0 + br) of P into band (row i at band + (i - i0) * S) = softmax of scale q k^T over
 * the visible keys, 0 from there up to `zero_to` (at least the band's last visible key); kt = k^T
 * (Dh x S). */
static void att_band_probs(const struct att_head *hd, const struct att_dims *d,
                           const struct attention_attrs *a, int64_t i0, int64_t br,
                           const float *kt, float *band, int64_t zero_to,
                           const struct dg_vmath *vm)
{
    int64_t cols = att_limit(a->causal, i0 + br - 1, d);
    if (cols > 0)
        att_gemm(br, cols, d->dh, a->scale, hd->q + i0 * hd->lq, hd->lq, 1, kt, d->s, false,
                 band, d->s);
    for (int64_t r = i0; r < i0 + br; r++) {
        float *row = band + (r - i0) * d->s;
        int64_t lim = att_limit(a->causal, r, d);
        if (lim > 0) {
            const float top = att_row_max(row, lim);
#pragma omp simd
            for (int64_t c = 0; c < lim; c++)
                row[c] -= top;
            vm->exp(row, row, lim);
            const float inv = 1.0f / att_row_sum(row, lim);
#pragma omp simd
            for (int64_t c = 0; c < lim; c++)
                row[c] *= inv;
        }
        int64_t from = lim > 0 ? lim : 0;
        if (from < zero_to)
            memset(row + from, 0, (size_t)(zero_to - from) * sizeof *row);
    }
}

/* Forward of head h: out (T x dv, row stride lo) = P~ v, one band of P at a time (it stays in
 * the first-level cache). */
static void whole_forward(const struct att_head *hd, const struct att_dims *d,
                          const struct attention_attrs *a, const struct att_mask *mask,
                          int64_t h, float *out, int64_t lo, float *scratch,
                          const struct att_next *next, const struct dg_vmath *vm)
{
    float *p = scratch, *keep = p + 2 * d->t * d->s, *kt = keep + d->s + 16;
    att_transpose(hd->k, hd->lk, d->s, d->dh, kt);
    for (int64_t i0 = 0; i0 < d->t; i0 += ATT_BAND) {
        int64_t br = d->t - i0 < ATT_BAND ? d->t - i0 : ATT_BAND;
        int64_t cols = att_limit(a->causal, i0 + br - 1, d);
        att_prefetch_rows(next, d, i0, i0 + br);
        att_band_probs(hd, d, a, i0, br, kt, p, cols, vm);
        if (mask->on)
            for (int64_t r = i0; r < i0 + br; r++) {
                int64_t lim = att_limit(a->causal, r, d);
                float *row = p + (r - i0) * d->s;
                att_keep_row(mask, h, r, d, lim, keep, vm);
#pragma omp simd
                for (int64_t c = 0; c < lim; c++)
                    row[c] *= keep[c];
            }
        /* cols == 0: K = 0 and the rows come out 0 */
        att_gemm(br, d->dv, cols, 1.0f, p, d->s, 1, hd->v, hd->lv, false, out + i0 * lo, lo);
    }
}

/* Gradients of head h into dst_q (T rows), dst_k and dst_v (S rows), each NULL when not
 * wanted; rows `width` floats apart. */
static void whole_grad(const struct att_head *hd, const struct att_dims *d,
                       const struct attention_attrs *a, const struct att_mask *mask, int64_t h,
                       float *dst_q, float *dst_k, float *dst_v, int64_t width, float *scratch,
                       const struct att_next *next, const struct dg_vmath *vm)
{
    const bool want_q = dst_q != NULL, want_k = dst_k != NULL, want_v = dst_v != NULL;
    float *p = scratch, *ds = p + d->t * d->s, *keep = ds + d->t * d->s;
    float *kt = keep + d->s + 16, *vt = kt + d->dh * d->s;
    att_transpose(hd->k, hd->lk, d->s, d->dh, kt);
    if (want_q || want_k)
        att_transpose(hd->v, hd->lv, d->s, d->dv, vt);
    /* p becomes P~ (for d v), ds becomes dS = P (dP~ keep - D) (for d q, d k); both are 0
     * past each row's last visible key, as d k and d v read whole columns */
    for (int64_t i0 = 0; i0 < d->t; i0 += ATT_BAND) {
        int64_t br = d->t - i0 < ATT_BAND ? d->t - i0 : ATT_BAND;
        int64_t cols = att_limit(a->causal, i0 + br - 1, d);
        att_prefetch_rows(next, d, i0, i0 + br);
        att_band_probs(hd, d, a, i0, br, kt, p + i0 * d->s, d->s, vm);
        if (cols > 0 && (want_q || want_k))
            att_gemm(br, cols, d->dv, 1.0f, hd->grad_out + i0 * hd->lo, hd->lo, 1, vt, d->s,
                     false, ds + i0 * d->s, d->s);
        for (int64_t r = i0; r < i0 + br; r++) {
            int64_t lim = att_limit(a->causal, r, d);
            float *prow = p + r * d->s, *dsrow = ds + r * d->s;
            if (mask->on)
                att_keep_row(mask, h, r, d, lim, keep, vm);
            if (want_q || want_k) {
                const float delta =
                    att_row_dot(hd->grad_out + r * hd->lo, hd->out + r * hd->lo, d->dv);
                if (mask->on) {
#pragma omp simd
                    for (int64_t c = 0; c < lim; c++)
                        dsrow[c] = prow[c] * (dsrow[c] * keep[c] - delta);
                } else {
#pragma omp simd
                    for (int64_t c = 0; c < lim; c++)
                        dsrow[c] = prow[c] * (dsrow[c] - delta);
                }
                int64_t from = lim > 0 ? lim : 0;
                if (from < d->s)
                    memset(dsrow + from, 0, (size_t)(d->s - from) * sizeof *dsrow);
            }
            if (mask->on && want_v) {
#pragma omp simd
                for (int64_t c = 0; c < lim; c++)
                    prow[c] *= keep[c];
            }
        }
        if (want_q) /* d q rows of this band = scale dS k (0 when the band sees no key) */
            att_gemm(br, d->dh, cols, a->scale, ds + i0 * d->s, d->s, 1, hd->k, hd->lk, false,
                     dst_q + i0 * width, width);
    }
    /* d k = scale dS^T q, d v = P~^T grad_out, in bands of keys: rows before the first query
     * that sees a band's first key are 0 and skipped */
    for (int64_t j0 = 0; j0 < d->s; j0 += ATT_BAND) {
        int64_t bc = d->s - j0 < ATT_BAND ? d->s - j0 : ATT_BAND;
        int64_t first = a->causal ? j0 - (d->s - d->t) : 0;
        first = first < 0 ? 0 : first;
        int64_t rows = d->t - first > 0 ? d->t - first : 0; /* 0: K = 0, the rows come out 0 */
        if (want_k)
            att_gemm(bc, d->dh, rows, a->scale, ds + first * d->s + j0, 1, d->s,
                     hd->q + first * hd->lq, hd->lq, false, dst_k + j0 * width, width);
        if (want_v)
            att_gemm(bc, d->dv, rows, 1.0f, p + first * d->s + j0, 1, d->s,
                     hd->grad_out + first * hd->lo, hd->lo, false, dst_v + j0 * width, width);
    }
}

#endif
