/*
 * softmax and log_softmax along one axis.
 *
 * Forward (numerically stable: the largest element along the axis is subtracted first):
 *   softmax(x)_i     = exp(x_i - m) / sum_j exp(x_j - m),        m = max_j x_j
 *   log_softmax(x)_i = x_i - m - log(sum_j exp(x_j - m))
 * The exponentials go through dg__vmath()->exp on contiguous runs: whole rows when the axis
 * is the last one, otherwise rows of the trailing (inner) axes, COLUMN_TILE columns at a time,
 * with per-column maxima and sums. Sums accumulate in double, in a fixed order.
 *
 * Rows with infinities, as in PyTorch: a row whose entries are all -inf (a fully masked row)
 * has max -inf and x - max = NaN, so it comes out NaN; a +inf entry likewise gives NaN over
 * its row; -inf entries in an otherwise finite row just get probability 0 (log: -inf).
 *
 * Backward, as graph nodes (y = the op's output, g = the upstream gradient):
 *   softmax:     dx = y * (g - sum(g * y; axis, keepdims))
 *   log_softmax: dx = g - exp(y) * sum(g; axis, keepdims)
 * Both are differentiable again (second derivatives).
 */
#include "op.h"
#include "simd/vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* softmax and log_softmax: the normalised axis. */
struct softmax_attrs {
    int axis;
};

static inline const struct softmax_attrs *softmax_attrs(const void *attrs) { return attrs; }

#define COLUMN_TILE 256

enum smode { SOFTMAX, LOG_SOFTMAX };

static inline float max_step(float acc, float v)
{
    return (v > acc || v != v) ? v : acc; /* NaN propagates */
}

/* Sum of n contiguous floats in double, 8 lanes combined in order. */
static double row_sum(const float *x, int64_t n)
{
    double lane[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
#pragma omp simd
        for (int k = 0; k < 8; k++)
            lane[k] += x[j + k];
    double acc = 0.0;
    for (; j < n; j++)
        acc += x[j];
    for (int k = 0; k < 8; k++)
        acc += lane[k];
    return acc;
}

/* The max of n contiguous floats in 8 lanes. A NaN need not win here: x - m is NaN for the
 * NaN element itself, which makes the row's sum, and so the whole row, NaN anyway. */
static float row_max(const float *x, int64_t n)
{
    float lane[8];
    for (int k = 0; k < 8; k++)
        lane[k] = -INFINITY;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
#pragma omp simd
        for (int k = 0; k < 8; k++)
            lane[k] = x[j + k] > lane[k] ? x[j + k] : lane[k];
    float m = -INFINITY;
    for (; j < n; j++)
        m = max_step(m, x[j]);
    for (int k = 0; k < 8; k++)
        m = max_step(m, lane[k]);
    return m;
}

/* One contiguous row of n (axis last). out may equal x. */
static void softmax_row(enum smode mode, const float *x, float *out, int64_t n,
                        const struct dg_vmath *vm)
{
    float m = row_max(x, n);
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        out[j] = x[j] - m;
    if (mode == SOFTMAX) {
        vm->exp(out, out, n);
        float inv = (float)(1.0 / row_sum(out, n));
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            out[j] *= inv;
        return;
    }
    float tmp[COLUMN_TILE];
    double sum = 0.0;
    for (int64_t j0 = 0; j0 < n; j0 += COLUMN_TILE) {
        int64_t w = n - j0 < COLUMN_TILE ? n - j0 : COLUMN_TILE;
        vm->exp(out + j0, tmp, w);
        sum += row_sum(tmp, w);
    }
    float lse = (float)log(sum);
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        out[j] -= lse;
}

/* Columns [j0, j0+w) of one [n, inner] slab (axis not last). out may equal x. */
static void softmax_tile(enum smode mode, const float *x, float *out, int64_t n, int64_t inner,
                         int64_t j0, int64_t w, const struct dg_vmath *vm)
{
    float m[COLUMN_TILE], tmp[COLUMN_TILE];
    double sum[COLUMN_TILE];
    for (int64_t j = 0; j < w; j++) {
        m[j] = -INFINITY;
        sum[j] = 0.0;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + i * inner + j0;
#pragma omp simd
        for (int64_t j = 0; j < w; j++)
            m[j] = max_step(m[j], row[j]);
    }
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + i * inner + j0;
        float *orow = out + i * inner + j0;
#pragma omp simd
        for (int64_t j = 0; j < w; j++)
            orow[j] = row[j] - m[j];
        if (mode == SOFTMAX) {
            vm->exp(orow, orow, w);
            for (int64_t j = 0; j < w; j++)
                sum[j] += orow[j];
        } else {
            vm->exp(orow, tmp, w);
            for (int64_t j = 0; j < w; j++)
                sum[j] += tmp[j];
        }
    }
    for (int64_t j = 0; j < w; j++)
        tmp[j] = mode == SOFTMAX ? (float)(1.0 / sum[j]) : (float)log(sum[j]);
    for (int64_t i = 0; i < n; i++) {
        float *orow = out + i * inner + j0;
        if (mode == SOFTMAX)
            for (int64_t j = 0; j < w; j++)
                orow[j] *= tmp[j];
        else
            for (int64_t j = 0; j < w; j++)
                orow[j] -= tmp[j];
    }
}

static void softmax_kernel(enum smode mode, const struct dg_tensor *in, struct dg_tensor *out,
                           int axis, const struct dg_exec_ctx *ctx)
{
    const struct dg_shape *s = &in[0].shape;
    int64_t outer, inner, n = s->dim[axis];
    dg__axis_split(s, axis, &outer, &inner);
    const float *x = in[0].data;
    float *o = out->data;
    const struct dg_vmath *vm = dg__vmath();
    int threads = dg__threads_for(ctx, outer * n * inner);
    if (inner == 1) {
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
        for (int64_t r = 0; r < outer; r++)
            softmax_row(mode, x + r * n, o + r * n, n, vm);
        return;
    }
    int64_t n_tiles = (inner + COLUMN_TILE - 1) / COLUMN_TILE;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t item = 0; item < outer * n_tiles; item++) {
        int64_t r = item / n_tiles, j0 = (item % n_tiles) * COLUMN_TILE;
        int64_t w = inner - j0 < COLUMN_TILE ? inner - j0 : COLUMN_TILE;
        softmax_tile(mode, x + r * n * inner, o + r * n * inner, n, inner, j0, w, vm);
    }
}

/* The shape rule and kernel of softmax and log_softmax (the def's variant is the mode). */
static dg_status softmax_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                               const struct dg_shape *in, struct dg_shape *out, char *msg,
                               size_t len)
{
    const char *name = def->name;
    char sa[128];
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: input must be float32", name);
    if (softmax_attrs(attrs)->axis < 0 || softmax_attrs(attrs)->axis >= in[0].ndim)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: axis %d is out of range for shape %s",
                               name, softmax_attrs(attrs)->axis,
                               dg__shape_str(&in[0], sa, sizeof sa));
    *out = in[0];
    return DG_OK;
}

static void softmax_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_tensor *in, struct dg_tensor *out,
                            const struct dg_exec_ctx *ctx)
{
    if (def->variant == LOG_SOFTMAX)
        softmax_kernel(LOG_SOFTMAX, in, out, softmax_attrs(attrs)->axis, ctx);
    else
        softmax_kernel(SOFTMAX, in, out, softmax_attrs(attrs)->axis, ctx);
}

static void softmax_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d", softmax_attrs(attrs)->axis);
}

/* Normalises the axis against x's shape and builds the node. */
static dg_node *softmax_build(dg_graph *g, dg_op_id op, const char *name, dg_node *x, int axis)
{
    struct softmax_attrs attrs = {0};
    if (g == NULL)
        return NULL;
    if (x == NULL || dg_graph_status(g) != DG_OK)
        return dg__make_node(g, op, 1, &x, &attrs); /* reports or passes the NULL through */
    const struct dg_shape *s = dg__node_shape(x);
    if (!dg__normalize_axis(axis, s->ndim, &attrs.axis)) {
        char sa[128];
        return dg__fail(g, DG_ERR_INVALID_ARG, "%s: axis %d is out of range for shape %s", name,
                        axis, dg__shape_str(s, sa, sizeof sa));
    }
    return dg__make_node(g, op, 1, &x, &attrs);
}

/* ---- softmax --------------------------------------------------------------------------- */

/* dx = y * (g - sum(g*y; axis, keepdims)) */
static dg_status softmax_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                  dg_node *grad, dg_node **gin)
{
    int axis = softmax_attrs(dg__attrs(node))->axis;
    dg_node *dot = dg_sum(g, dg_mul(g, grad, node), 1, &axis, true);
    gin[0] = dg_mul(g, node, dg_sub(g, grad, dot));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_softmax = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "softmax", .attrs_size = sizeof(struct softmax_attrs), .n_inputs = 1,
    .can_inplace = true,
    .variant = SOFTMAX,
    .infer = softmax_infer, .forward = softmax_forward, .backward = softmax_backward,
    .label = softmax_label,
};

dg_node *dg_softmax(dg_graph *g, dg_node *x, int axis)
{
    return softmax_build(g, DG_OP_softmax, "softmax", x, axis);
}

/* ---- log_softmax ----------------------------------------------------------------------- */

/* dx = g - exp(y) * sum(g; axis, keepdims) */
static dg_status log_softmax_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                      dg_node *grad, dg_node **gin)
{
    int axis = softmax_attrs(dg__attrs(node))->axis;
    dg_node *total = dg_sum(g, grad, 1, &axis, true);
    gin[0] = dg_sub(g, grad, dg_mul(g, dg_exp(g, node), total));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_log_softmax = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "log_softmax", .attrs_size = sizeof(struct softmax_attrs), .n_inputs = 1,
    .can_inplace = true,
    .variant = LOG_SOFTMAX,
    .infer = softmax_infer, .forward = softmax_forward,
    .backward = log_softmax_backward, .label = softmax_label,
};

dg_node *dg_log_softmax(dg_graph *g, dg_node *x, int axis)
{
    return softmax_build(g, DG_OP_log_softmax, "log_softmax", x, axis);
}
