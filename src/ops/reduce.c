/*
 * Reductions and their backward helpers: sum, mean, max over a set of axes, and the internal
 * ops that undo or redo a reduction or a broadcast with shapes known only at plan time:
 * sum_to, broadcast_like, expand_reduced, size_ratio.
 *
 * Kernels. The input is first collapsed into alternating groups of kept and reduced axes
 * (size-1 axes dropped, neighbours of the same kind merged). Three patterns get dedicated
 * loops, everything else takes a general odometer loop:
 *   [K, R]     per-row reductions of contiguous rows (also the full reduction, K = 1);
 *   [R, K]     column reductions: rows added into an accumulator row (the bias gradient);
 *   [K1, R, K2] the same per outer index.
 * Sums accumulate in double. The summation order is a function of the shape only, never of
 * the thread count: each output element is reduced by one thread in a fixed order, and long
 * reductions are cut into fixed blocks (sizes derived from the shape) whose partial sums are
 * added in block order. So results are bitwise reproducible for any number of threads.
 */
#include "elementwise.h"
#include "alloc.h"
#include "reduce.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum rmode { R_SUM, R_MAX };

/* ---- collapsing ------------------------------------------------------------------------ */

struct rgroups {
    int n;                        /* number of groups; 0 when every axis has size 1 */
    int64_t size[DG_MAX_DIMS];
    bool reduced[DG_MAX_DIMS];
};

static void collapse(const struct dg_shape *s, uint32_t axes, struct rgroups *gr)
{
    gr->n = 0;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dim[i] == 1)
            continue;
        bool red = (axes >> i) & 1u;
        if (gr->n > 0 && gr->reduced[gr->n - 1] == red) {
            gr->size[gr->n - 1] *= s->dim[i];
        } else {
            gr->size[gr->n] = s->dim[i];
            gr->reduced[gr->n] = red;
            gr->n++;
        }
    }
}

/* ---- accumulation primitives ------------------------------------------------------------ */

static inline __attribute__((always_inline)) double r_init(enum rmode mode)
{
    return mode == R_SUM ? 0.0 : -INFINITY;
}

/* NaN propagates through max, as in PyTorch. */
static inline __attribute__((always_inline)) double r_step(enum rmode mode, double acc, double v)
{
    if (mode == R_SUM)
        return acc + v;
    return (v > acc || v != v) ? v : acc;
}

/* n contiguous floats, in 8 interleaved lanes combined in lane order (vectorisable, and a
 * fixed order for a given n). */
static inline __attribute__((always_inline)) double r_contig(enum rmode mode, const float *x,
                                                             int64_t n)
{
    double lane[8];
    for (int k = 0; k < 8; k++)
        lane[k] = r_init(mode);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
#pragma omp simd
        for (int k = 0; k < 8; k++)
            lane[k] = r_step(mode, lane[k], x[j + k]);
    double acc = r_init(mode);
    for (; j < n; j++)
        acc = r_step(mode, acc, x[j]);
    for (int k = 0; k < 8; k++)
        acc = r_step(mode, acc, lane[k]);
    return acc;
}

/* n floats with a stride. */
static inline __attribute__((always_inline)) double r_strided(enum rmode mode, const float *x,
                                                              int64_t n, int64_t stride)
{
    if (stride == 1)
        return r_contig(mode, x, n);
    double acc = r_init(mode);
    for (int64_t j = 0; j < n; j++)
        acc = r_step(mode, acc, x[j * stride]);
    return acc;
}

/* ---- [M, N]: per-row reductions (and the full reduction) ------------------------------- */

/* Long rows are cut into at most ROW_MAX_BLOCKS blocks of at least ROW_BLOCK elements. */
#define ROW_BLOCK 4096
#define ROW_MAX_BLOCKS 1024

static inline __attribute__((always_inline)) void row_blocks(int64_t n, int64_t *n_blocks,
                                                             int64_t *block_len)
{
    int64_t nb = (n + ROW_BLOCK - 1) / ROW_BLOCK;
    if (nb > ROW_MAX_BLOCKS)
        nb = ROW_MAX_BLOCKS;
    if (nb < 1)
        nb = 1;
    *n_blocks = nb;
    *block_len = (n + nb - 1) / nb;
}

static inline __attribute__((always_inline)) double row_reduce_serial(enum rmode mode,
                                                                      const float *x, int64_t n)
{
    int64_t nb, bl;
    row_blocks(n, &nb, &bl);
    if (nb == 1)
        return r_contig(mode, x, n);
    double acc = r_init(mode);
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * bl, hi = lo + bl < n ? lo + bl : n;
        acc = r_step(mode, acc, lo < hi ? r_contig(mode, x + lo, hi - lo) : r_init(mode));
    }
    return acc;
}

static inline __attribute__((always_inline)) void reduce_rows(enum rmode mode, const float *x,
                                                              float *out, int64_t m, int64_t n,
                                                              double scale, int threads)
{
    int64_t nb, bl;
    row_blocks(n, &nb, &bl);
    if (nb == 1 || m >= threads) {
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
        for (int64_t r = 0; r < m; r++)
            out[r] = (float)(row_reduce_serial(mode, x + r * n, n) * scale);
        return;
    }
    /* Few long rows: the blocks of one row in parallel, then added in block order. */
    for (int64_t r = 0; r < m; r++) {
        double partial[ROW_MAX_BLOCKS];
        const float *row = x + r * n;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
        for (int64_t b = 0; b < nb; b++) {
            int64_t lo = b * bl, hi = lo + bl < n ? lo + bl : n;
            partial[b] = lo < hi ? r_contig(mode, row + lo, hi - lo) : r_init(mode);
        }
        double acc = r_init(mode);
        for (int64_t b = 0; b < nb; b++)
            acc = r_step(mode, acc, partial[b]);
        out[r] = (float)(acc * scale);
    }
}

/* ---- [outer, R, K]: column reductions ----------------------------------------------------
 * Rows are grouped into fixed blocks (count from R only); a block's column sums are formed in
 * row order, and the blocks are added in order. Columns go in tiles of COL_TILE doubles. */
#define COL_TILE 1024
#define COL_MAX_BLOCKS 64
#define COL_MIN_BLOCK_ROWS 256

static inline __attribute__((always_inline)) void col_blocks(int64_t r, int64_t *n_blocks,
                                                             int64_t *block_rows)
{
    int64_t nb = r / COL_MIN_BLOCK_ROWS;
    if (nb > COL_MAX_BLOCKS)
        nb = COL_MAX_BLOCKS;
    if (nb < 1)
        nb = 1;
    *n_blocks = nb;
    *block_rows = (r + nb - 1) / nb;
}

/* Rows lo..hi-1 of x (row length k) over columns [j0, j0+w) into acc. */
static inline __attribute__((always_inline)) void col_block(enum rmode mode, const float *x,
                                                            int64_t k, int64_t lo, int64_t hi,
                                                            int64_t j0, int64_t w, double *acc)
{
    for (int64_t j = 0; j < w; j++)
        acc[j] = r_init(mode);
    for (int64_t i = lo; i < hi; i++) {
        const float *row = x + i * k + j0;
#pragma omp simd
        for (int64_t j = 0; j < w; j++)
            acc[j] = r_step(mode, acc[j], row[j]);
    }
}

/* One tile of columns of one outer index, every block in order. */
static inline __attribute__((always_inline)) void col_tile(enum rmode mode, const float *x,
                                                           float *out, int64_t r, int64_t k,
                                                           int64_t j0, int64_t w, double scale)
{
    int64_t nb, br;
    col_blocks(r, &nb, &br);
    double total[COL_TILE], block[COL_TILE];
    if (nb == 1) {
        col_block(mode, x, k, 0, r, j0, w, total);
    } else {
        for (int64_t j = 0; j < w; j++)
            total[j] = r_init(mode);
        for (int64_t b = 0; b < nb; b++) {
            int64_t lo = b * br, hi = lo + br < r ? lo + br : r;
            col_block(mode, x, k, lo, hi > lo ? hi : lo, j0, w, block);
            for (int64_t j = 0; j < w; j++)
                total[j] = r_step(mode, total[j], block[j]);
        }
    }
    for (int64_t j = 0; j < w; j++)
        out[j0 + j] = (float)(total[j] * scale);
}

static inline __attribute__((always_inline)) void reduce_cols(enum rmode mode, const float *x,
                                                              float *out, int64_t outer,
                                                              int64_t r, int64_t k,
                                                              double scale, int threads)
{
    int64_t n_tiles = (k + COL_TILE - 1) / COL_TILE;
    int64_t nb, br;
    col_blocks(r, &nb, &br);
    if (outer == 1 && n_tiles < threads && nb > 1) {
        /* Few columns, many rows: the row blocks in parallel into a partial array, added in
         * block order afterwards: the same order as col_tile, so the same bits. */
        double *partial = dg__malloc((size_t)(nb * k) * sizeof *partial);
        if (partial != NULL) {
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
            for (int64_t b = 0; b < nb; b++) {
                int64_t lo = b * br, hi = lo + br < r ? lo + br : r;
                for (int64_t t = 0; t < n_tiles; t++) {
                    int64_t j0 = t * COL_TILE, w = k - j0 < COL_TILE ? k - j0 : COL_TILE;
                    col_block(mode, x, k, lo, hi > lo ? hi : lo, j0, w, partial + b * k + j0);
                }
            }
            for (int64_t j = 0; j < k; j++) {
                double acc = r_init(mode);
                for (int64_t b = 0; b < nb; b++)
                    acc = r_step(mode, acc, partial[b * k + j]);
                out[j] = (float)(acc * scale);
            }
            dg__free(partial);
            return;
        }
        /* Out of memory: fall through to the tile loop, which gives the same result. */
    }
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t item = 0; item < outer * n_tiles; item++) {
        int64_t o = item / n_tiles, t = item % n_tiles;
        int64_t j0 = t * COL_TILE, w = k - j0 < COL_TILE ? k - j0 : COL_TILE;
        col_tile(mode, x + o * r * k, out + o * k, r, k, j0, w, scale);
    }
}

/* ---- anything else: one output element at a time ---------------------------------------- */

static inline __attribute__((always_inline)) void reduce_general(
    enum rmode mode, const float *x, float *out, const struct rgroups *gr, double scale,
    int threads)
{
    int64_t stride[DG_MAX_DIMS], s = 1;
    for (int i = gr->n - 1; i >= 0; i--) {
        stride[i] = s;
        s *= gr->size[i];
    }
    int kept[DG_MAX_DIMS], red[DG_MAX_DIMS], n_kept = 0, n_red = 0;
    int64_t n_out = 1, n_red_total = 1;
    for (int i = 0; i < gr->n; i++) {
        if (gr->reduced[i]) {
            red[n_red++] = i;
            n_red_total *= gr->size[i];
        } else {
            kept[n_kept++] = i;
            n_out *= gr->size[i];
        }
    }
    int inner = red[n_red - 1];
    int64_t inner_len = gr->size[inner], inner_stride = stride[inner];
    int64_t n_outer_red = n_red_total / inner_len;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t o = 0; o < n_out; o++) {
        int64_t base = 0, rem = o;
        for (int q = n_kept - 1; q >= 0; q--) {
            base += (rem % gr->size[kept[q]]) * stride[kept[q]];
            rem /= gr->size[kept[q]];
        }
        double acc = r_init(mode);
        for (int64_t t = 0; t < n_outer_red; t++) {
            int64_t off = base;
            rem = t;
            for (int q = n_red - 2; q >= 0; q--) {
                off += (rem % gr->size[red[q]]) * stride[red[q]];
                rem /= gr->size[red[q]];
            }
            acc = r_step(mode, acc, r_strided(mode, x + off, inner_len, inner_stride));
        }
        out[o] = (float)(acc * scale);
    }
}

/* Reduces x (shape s) over the axes in `axes` into out (row-major over the kept axes),
 * multiplying each result by `scale` (1/count for mean). */
static inline __attribute__((always_inline)) void reduce_kernel(
    enum rmode mode, const float *x, const struct dg_shape *s, uint32_t axes, float *out,
    double scale, const struct dg_exec_ctx *ctx)
{
    struct rgroups gr;
    collapse(s, axes, &gr);
    int64_t numel = dg__numel(s);
    int threads = dg__threads_for(ctx, numel);
    bool any_reduced = false;
    for (int i = 0; i < gr.n; i++)
        any_reduced = any_reduced || gr.reduced[i];
    if (!any_reduced) {
        /* Only size-1 axes reduced: a copy (times the scale, which is 1). */
        if (out != x)
            memcpy(out, x, (size_t)numel * sizeof *out);
        return;
    }
    if (gr.n == 1)
        reduce_rows(mode, x, out, 1, gr.size[0], scale, threads);
    else if (gr.n == 2 && gr.reduced[1])
        reduce_rows(mode, x, out, gr.size[0], gr.size[1], scale, threads);
    else if (gr.n == 2)
        reduce_cols(mode, x, out, 1, gr.size[0], gr.size[1], scale, threads);
    else if (gr.n == 3 && gr.reduced[1])
        reduce_cols(mode, x, out, gr.size[0], gr.size[1], gr.size[2], scale, threads);
    else
        reduce_general(mode, x, out, &gr, scale, threads);
}

/* ---- shape rules ------------------------------------------------------------------------ */

static const char *axes_str(uint32_t axes, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    bool first = true;
    for (int i = 0; i < DG_MAX_DIMS && used < len; i++)
        if ((axes >> i) & 1u) {
            used += (size_t)snprintf(buf + used, len - used, first ? "%d" : ",%d", i);
            first = false;
        }
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

/* The shape of `s` reduced over `axes`. */
static void reduced_shape(const struct dg_shape *s, uint32_t axes, bool keepdims,
                          struct dg_shape *out)
{
    out->dtype = DG_F32;
    out->ndim = 0;
    for (int i = 0; i < s->ndim; i++) {
        if (!((axes >> i) & 1u))
            out->dim[out->ndim++] = s->dim[i];
        else if (keepdims)
            out->dim[out->ndim++] = 1;
    }
}

static bool axes_fit(uint32_t axes, int ndim)
{
    return ndim >= 32 || (axes >> ndim) == 0;
}

/* The reductions sum, mean and max share one shape rule and one kernel (the def's variant). */
enum reduce_op { REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX };

static dg_status reduce_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_shape *in, struct dg_shape *out, char *msg,
                              size_t len)
{
    const char *name = def->name;
    char sa[128], sb[64];
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: input must be float32", name);
    if (!axes_fit(reduce_attrs(attrs)->axes, in[0].ndim))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: axes %s out of range for shape %s",
                               name, axes_str(reduce_attrs(attrs)->axes, sb, sizeof sb),
                               dg__shape_str(&in[0], sa, sizeof sa));
    reduced_shape(&in[0], reduce_attrs(attrs)->axes, reduce_attrs(attrs)->keepdims, out);
    return DG_OK;
}

static void reduce_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    char axes[64];
    snprintf(buf, len, "axes=%s%s", axes_str(reduce_attrs(attrs)->axes, axes, sizeof axes),
             reduce_attrs(attrs)->keepdims ? " keepdims" : "");
}

/* Validates and normalises the public axes list into attrs; reports errors naming the op,
 * the axis and the shape. */
static bool parse_axes(dg_graph *g, const char *name, const dg_node *x, int n_axes,
                       const int *axes, bool keepdims, struct dg_reduce_attrs *attrs)
{
    const struct dg_shape *s = dg__node_shape(x);
    char sa[128];
    memset(attrs, 0, sizeof *attrs);
    attrs->keepdims = keepdims;
    if (n_axes < 0 || (n_axes > 0 && axes == NULL)) {
        dg__fail(g, DG_ERR_INVALID_ARG, "%s: %s (n_axes %d) for shape %s", name,
                 n_axes < 0 ? "negative axis count" : "axes is NULL", n_axes,
                 dg__shape_str(s, sa, sizeof sa));
        return false;
    }
    if (n_axes == 0 && axes == NULL) {
        attrs->axes = s->ndim == 0 ? 0u : (uint32_t)((1u << s->ndim) - 1u);
        return true;
    }
    for (int i = 0; i < n_axes; i++) {
        int axis;
        if (!dg__normalize_axis(axes[i], s->ndim, &axis)) {
            dg__fail(g, DG_ERR_INVALID_ARG, "%s: axis %d is out of range for shape %s", name,
                     axes[i], dg__shape_str(s, sa, sizeof sa));
            return false;
        }
        if ((attrs->axes >> axis) & 1u) {
            dg__fail(g, DG_ERR_INVALID_ARG, "%s: axis %d is repeated (as axis %d) for shape %s",
                     name, axes[i], axis, dg__shape_str(s, sa, sizeof sa));
            return false;
        }
        attrs->axes |= 1u << axis;
    }
    return true;
}

static dg_node *reduce_build(dg_graph *g, dg_op_id op, const char *name, dg_node *x,
                             int n_axes, const int *axes, bool keepdims)
{
    struct dg_reduce_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    if (g == NULL)
        return NULL;
    if (x == NULL || dg_graph_status(g) != DG_OK)
        return dg__make_node(g, op, 1, &x, &attrs); /* reports or passes the NULL through */
    if (!parse_axes(g, name, x, n_axes, axes, keepdims, &attrs))
        return NULL;
    return dg__make_node(g, op, 1, &x, &attrs);
}

/* out = sum, mean or max of x over the reduced axes. */
static void reduce_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                           const struct dg_tensor *in, struct dg_tensor *out,
                           const struct dg_exec_ctx *ctx)
{
    uint32_t axes = reduce_attrs(attrs)->axes;
    if (def->variant == REDUCE_MAX) {
        reduce_kernel(R_MAX, in[0].data, &in[0].shape, axes, out->data, 1.0, ctx);
    } else if (def->variant == REDUCE_MEAN) {
        double count = (double)dg__numel(&in[0].shape) / (double)dg__numel(&out->shape);
        reduce_kernel(R_SUM, in[0].data, &in[0].shape, axes, out->data, 1.0 / count, ctx);
    } else {
        reduce_kernel(R_SUM, in[0].data, &in[0].shape, axes, out->data, 1.0, ctx);
    }
}

/* ---- sum -------------------------------------------------------------------------------
 * sum(x; axes, keepdims)[k] = sum of x over the reduced axes.
 * d/dx = expand_reduced(grad, x): the gradient copied along the reduced axes. */

static dg_status sum_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    gin[0] = dg__make_node(g, DG_OP_expand_reduced, 2,
                           (dg_node *[]){grad, dg__input(node, 0)}, dg__attrs(node));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_sum = {
    .name = "sum", .n_inputs = 1, .variant = REDUCE_SUM,
    .attrs_size = sizeof(struct dg_reduce_attrs),
    .infer = reduce_infer, .forward = reduce_forward, .backward = sum_backward,
    .label = reduce_label,
};

dg_node *dg_sum(dg_graph *g, dg_node *x, int n_axes, const int *axes, bool keepdims)
{
    return reduce_build(g, DG_OP_sum, "sum", x, n_axes, axes, keepdims);
}

/* ---- mean ------------------------------------------------------------------------------
 * mean = sum / count, count = numel(x) / numel(out), taken from the plan-time shapes.
 * d/dx = expand_reduced(grad, x) * size_ratio(out, x): the divisor follows the batch. */

static dg_status mean_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *grad, dg_node **gin)
{
    dg_node *x = dg__input(node, 0);
    dg_node *spread = dg__make_node(g, DG_OP_expand_reduced, 2, (dg_node *[]){grad, x},
                                    dg__attrs(node));
    dg_node *ratio = dg__make_node(g, DG_OP_size_ratio, 2, (dg_node *[]){node, x}, NULL);
    gin[0] = dg_mul(g, spread, ratio);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_mean = {
    .name = "mean", .n_inputs = 1, .variant = REDUCE_MEAN,
    .attrs_size = sizeof(struct dg_reduce_attrs),
    .infer = reduce_infer, .forward = reduce_forward, .backward = mean_backward,
    .label = reduce_label,
};

dg_node *dg_mean(dg_graph *g, dg_node *x, int n_axes, const int *axes, bool keepdims)
{
    return reduce_build(g, DG_OP_mean, "mean", x, n_axes, axes, keepdims);
}

/* ---- max -------------------------------------------------------------------------------
 * max(x; axes)[k] = largest x over the reduced axes; NaN propagates.
 * d/dx: amax semantics, the gradient split evenly among ties:
 *   mask = equal(x, expand_reduced(out, x)); count = sum(mask; axes)
 *   dx   = mask * expand_reduced(grad / count, x).
 * A reduced slice holding a NaN has no element equal to its max, count 0, and gets a NaN
 * gradient. */

static dg_status max_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    dg_node *x = dg__input(node, 0);
    const void *attrs = dg__attrs(node);
    dg_node *spread_max = dg__make_node(g, DG_OP_expand_reduced, 2, (dg_node *[]){node, x},
                                        attrs);
    dg_node *mask = dg__make_node(g, DG_OP_equal, 2, (dg_node *[]){x, spread_max}, NULL);
    dg_node *count = dg__make_node(g, DG_OP_sum, 1, &mask, attrs);
    dg_node *share = dg__make_node(g, DG_OP_expand_reduced, 2,
                                   (dg_node *[]){dg_div(g, grad, count), x}, attrs);
    gin[0] = dg_mul(g, mask, share);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_max = {
    .name = "max", .n_inputs = 1, .variant = REDUCE_MAX,
    .attrs_size = sizeof(struct dg_reduce_attrs),
    .infer = reduce_infer, .forward = reduce_forward, .backward = max_backward,
    .label = reduce_label,
};

dg_node *dg_max(dg_graph *g, dg_node *x, int n_axes, const int *axes, bool keepdims)
{
    return reduce_build(g, DG_OP_max, "max", x, n_axes, axes, keepdims);
}

/* ---- sum_to ----------------------------------------------------------------------------
 * sum_to(grad, like) sums grad down to like's shape (shape-only): over grad's leading extra
 * axes and over the axes where like has size 1 — numpy's "unbroadcast", the backward of
 * broadcasting. d/dgrad = broadcast_like(g, grad). */

/* Whether `small` broadcasts to exactly `big`. */
static bool broadcasts_to(const struct dg_shape *small, const struct dg_shape *big)
{
    if (small->ndim > big->ndim)
        return false;
    int lead = big->ndim - small->ndim;
    for (int i = 0; i < small->ndim; i++)
        if (small->dim[i] != big->dim[lead + i] && small->dim[i] != 1)
            return false;
    return true;
}

static dg_status sum_to_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_shape *in, struct dg_shape *out, char *msg,
                              size_t len)
{
    char sa[128], sb[128];
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "sum_to: input must be float32");
    if (!broadcasts_to(&in[1], &in[0]))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "sum_to: shape %s cannot be summed to %s",
                               dg__shape_str(&in[0], sa, sizeof sa),
                               dg__shape_str(&in[1], sb, sizeof sb));
    *out = in[1];
    out->dtype = DG_F32;
    return DG_OK;
}

static void sum_to_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                           const struct dg_tensor *in, struct dg_tensor *out,
                           const struct dg_exec_ctx *ctx)
{
    const struct dg_shape *big = &in[0].shape, *like = &in[1].shape;
    int lead = big->ndim - like->ndim;
    uint32_t axes = 0;
    for (int i = 0; i < big->ndim; i++)
        if (i < lead || like->dim[i - lead] == 1)
            axes |= 1u << i;
    reduce_kernel(R_SUM, in[0].data, big, axes, out->data, 1.0, ctx);
}

static dg_status sum_to_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                 dg_node *grad, dg_node **gin)
{
    gin[0] = dg__make_node(g, DG_OP_broadcast_like, 2, (dg_node *[]){grad, dg__input(node, 0)},
                           NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_sum_to = {
    .name = "sum_to", .n_inputs = 2, .shape_only_inputs = 1u << 1,
    .infer = sum_to_infer, .forward = sum_to_forward, .backward = sum_to_backward,
};

/* ---- broadcast_like --------------------------------------------------------------------
 * broadcast_like(x, like): x broadcast (numpy rules) to like's shape (shape-only); the
 * backward of sum_to. d/dx = sum_to(g, x). */

/* Copies x broadcast to out's shape. */
static void broadcast_copy(const float *x, const struct dg_shape *xs, float *out,
                           const struct dg_shape *os, const struct dg_exec_ctx *ctx)
{
    const struct dg_shape *shapes[1] = {xs};
    struct dg_bcast it;
    dg__bcast_init(&it, os, 1, shapes);
    int64_t stride = it.stride[0][it.ndim - 1];
    int threads = dg__threads_for(ctx, it.rows * it.row_len);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < it.rows; r++) {
        int64_t off[2];
        dg__bcast_row(&it, r, off);
        const float *src = x + off[0];
        float *dst = out + r * it.row_len;
        if (stride == 1) {
            memcpy(dst, src, (size_t)it.row_len * sizeof *dst);
        } else {
            float v = src[0];
            for (int64_t j = 0; j < it.row_len; j++)
                dst[j] = v;
        }
    }
}

static dg_status broadcast_like_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                      const struct dg_shape *in, struct dg_shape *out,
                                      char *msg, size_t len)
{
    char sa[128], sb[128];
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "broadcast_like: input must be float32");
    if (!broadcasts_to(&in[0], &in[1]))
        return dg__shape_error(msg, len, DG_ERR_SHAPE,
                               "broadcast_like: shape %s does not broadcast to %s",
                               dg__shape_str(&in[0], sa, sizeof sa),
                               dg__shape_str(&in[1], sb, sizeof sb));
    *out = in[1];
    out->dtype = DG_F32;
    return DG_OK;
}

static void broadcast_like_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                   const struct dg_tensor *in, struct dg_tensor *out,
                                   const struct dg_exec_ctx *ctx)
{
    broadcast_copy(in[0].data, &in[0].shape, out->data, &out->shape, ctx);
}

static dg_status broadcast_like_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                         dg_node *grad, dg_node **gin)
{
    gin[0] = dg__unbroadcast(g, grad, dg__input(node, 0));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_broadcast_like = {
    .name = "broadcast_like", .n_inputs = 2, .shape_only_inputs = 1u << 1,
    .infer = broadcast_like_infer, .forward = broadcast_like_forward,
    .backward = broadcast_like_backward,
};

/* ---- expand_reduced --------------------------------------------------------------------
 * expand_reduced(grad, like; axes, keepdims): the inverse of a reduction's shape change.
 * grad has like's shape reduced over `axes` (with or without kept size-1 axes); the output
 * has like's shape (like is shape-only), grad copied along the reduced axes.
 * d/dgrad = sum(g; the same axes and keepdims). */

static dg_status expand_reduced_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                      const struct dg_shape *in, struct dg_shape *out,
                                      char *msg, size_t len)
{
    char sa[128], sb[128], sc[64];
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "expand_reduced: input must be float32");
    if (!axes_fit(reduce_attrs(attrs)->axes, in[1].ndim))
        return dg__shape_error(msg, len, DG_ERR_SHAPE,
                               "expand_reduced: axes %s out of range for shape %s",
                               axes_str(reduce_attrs(attrs)->axes, sc, sizeof sc),
                               dg__shape_str(&in[1], sb, sizeof sb));
    struct dg_shape expect;
    reduced_shape(&in[1], reduce_attrs(attrs)->axes, reduce_attrs(attrs)->keepdims, &expect);
    bool same = expect.ndim == in[0].ndim;
    for (int i = 0; same && i < expect.ndim; i++)
        same = expect.dim[i] == in[0].dim[i];
    if (!same)
        return dg__shape_error(msg, len, DG_ERR_SHAPE,
                               "expand_reduced: shape %s is not %s reduced over axes %s",
                               dg__shape_str(&in[0], sa, sizeof sa),
                               dg__shape_str(&in[1], sb, sizeof sb),
                               axes_str(reduce_attrs(attrs)->axes, sc, sizeof sc));
    *out = in[1];
    out->dtype = DG_F32;
    return DG_OK;
}

static void expand_reduced_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                   const struct dg_tensor *in, struct dg_tensor *out,
                                   const struct dg_exec_ctx *ctx)
{
    /* grad seen with keepdims: like's shape with 1 on the reduced axes. */
    struct dg_shape kept;
    reduced_shape(&out->shape, reduce_attrs(attrs)->axes, true, &kept);
    broadcast_copy(in[0].data, &kept, out->data, &out->shape, ctx);
}

static dg_status expand_reduced_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                         dg_node *grad, dg_node **gin)
{
    gin[0] = dg__make_node(g, DG_OP_sum, 1, &grad, dg__attrs(node));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_expand_reduced = {
    .name = "expand_reduced", .n_inputs = 2, .attrs_size = sizeof(struct dg_reduce_attrs),
    .shape_only_inputs = 1u << 1,
    .infer = expand_reduced_infer, .forward = expand_reduced_forward,
    .backward = expand_reduced_backward, .label = reduce_label,
};

/* ---- size_ratio ------------------------------------------------------------------------
 * size_ratio(a, b) = numel(a) / numel(b) as a float32 scalar [], from the plan-time shapes
 * (both inputs shape-only): the divisor of mean and of the losses, correct after a batch
 * change. Its value does not depend on the inputs' values: zero gradient (a backward that
 * leaves both input gradients empty). */

static dg_status size_ratio_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *in, struct dg_shape *out, char *msg,
                                  size_t len)
{
    out->dtype = DG_F32;
    out->ndim = 0;
    return DG_OK;
}

static void size_ratio_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                               const struct dg_tensor *in, struct dg_tensor *out,
                               const struct dg_exec_ctx *ctx)
{
    *(float *)out->data =
        (float)((double)dg__numel(&in[0].shape) / (double)dg__numel(&in[1].shape));
}

const struct dg_op_def dg_op_size_ratio = {
    .name = "size_ratio", .n_inputs = 2, .shape_only_inputs = (1u << 0) | (1u << 1),
    .infer = size_ratio_infer, .forward = size_ratio_forward,
    .backward = dg__zero_grad, /* constant in the inputs' values (shapes only) */
};

dg_node *dg__filled_like(dg_graph *g, dg_node *x, float value)
{
    dg_node *fill = dg_scalar(g, value);
    int ndim = dg_node_ndim(x);
    if (x == NULL || ndim == 0)
        return x == NULL ? NULL : fill;
    struct dg_reduce_attrs attrs = {.axes = (uint32_t)((1u << ndim) - 1), .keepdims = false};
    return dg__make_node(g, DG_OP_expand_reduced, 2, (dg_node *[]){fill, x}, &attrs);
}
