/*
 * Selection: where, argmax/argmin, cast.
 *
 *   where(cond, a, b) = a where cond != 0, else b, over the broadcast shape of all three
 *       (cond float32, usually a comparison mask). d/da = where(cond, g, 0), d/db =
 *       where(cond, 0, g), each summed back to its operand's shape; cond gets none (a mask is
 *       piecewise constant). A NaN in the branch not taken does not leak (no multiplication).
 *   argmax(x; axis), argmin(x; axis) -> int32, x's shape without `axis`: the index of the
 *       largest (smallest) element; ties give the first index, a NaN counts as larger (and
 *       smaller) than every number, so the first NaN's index is returned (as PyTorch).
 *       Gradient: zero by definition (an int32 output, piecewise constant).
 *   cast(x; dtype): float32 -> int32 truncates toward zero (as C and PyTorch's .to(int32)),
 *       saturating at INT32_MIN/INT32_MAX, NaN -> 0 (PyTorch leaves those undefined); int32 ->
 *       float32 rounds to nearest (exact below 2^24). Gradient: zero by definition (an int32
 *       on one side or the other).
 */
#include "op.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

/* ---- where ---------------------------------------------------------------------------- */

/* Element strides of each of 3 inputs over the output's axes (0 where broadcast). */
static void where_strides(const struct dg_shape *out, const struct dg_tensor *in,
                          int64_t stride[3][DG_MAX_DIMS])
{
    for (int k = 0; k < 3; k++) {
        const struct dg_shape *s = &in[k].shape;
        int64_t step = 1;
        for (int i = out->ndim - 1; i >= 0; i--) {
            int j = i - (out->ndim - s->ndim);
            int64_t d = j >= 0 ? s->dim[j] : 1;
            stride[k][i] = d == 1 ? 0 : step;
            step *= d;
        }
    }
}

static dg_status where_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                             const struct dg_shape *in, struct dg_shape *out, char *msg,
                             size_t len)
{
    char sa[128], sb[128], sc[128];
    if (in[0].dtype != DG_F32 || in[1].dtype != DG_F32 || in[2].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "where: cond, a and b must be float32 "
                               "(a comparison gives a float32 mask)");
    struct dg_shape ab;
    if (!dg__broadcast_shapes(&in[1], &in[2], &ab) || !dg__broadcast_shapes(&in[0], &ab, out))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "where: shapes %s (cond), %s (a) and "
                               "%s (b) do not broadcast",
                               dg__shape_str(&in[0], sa, sizeof sa),
                               dg__shape_str(&in[1], sb, sizeof sb),
                               dg__shape_str(&in[2], sc, sizeof sc));
    return DG_OK;
}

static void where_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                          const struct dg_tensor *in, struct dg_tensor *out,
                          const struct dg_exec_ctx *ctx)
{
    int64_t stride[3][DG_MAX_DIMS];
    where_strides(&out->shape, in, stride);
    int nd = out->shape.ndim;
    int64_t row_len = nd > 0 ? out->shape.dim[nd - 1] : 1;
    int64_t rows = row_len > 0 ? dg__numel(&out->shape) / row_len : 0;
    const float *c = in[0].data, *a = in[1].data, *b = in[2].data;
    float *o = out->data;
    int64_t sc = nd > 0 ? stride[0][nd - 1] : 0, sa = nd > 0 ? stride[1][nd - 1] : 0,
            sb = nd > 0 ? stride[2][nd - 1] : 0;
    int threads = dg__threads_for(ctx, rows * row_len);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off[3] = {0, 0, 0}, rest = r;
        for (int i = nd - 2; i >= 0; i--) {
            int64_t idx = rest % out->shape.dim[i];
            rest /= out->shape.dim[i];
            for (int k = 0; k < 3; k++)
                off[k] += idx * stride[k][i];
        }
        float *ro = o + r * row_len;
        for (int64_t j = 0; j < row_len; j++)
            ro[j] = c[off[0] + j * sc] != 0.0f ? a[off[1] + j * sa] : b[off[2] + j * sb];
    }
}

/* da = where(cond, g, 0), db = where(cond, 0, g), unbroadcast; cond: none (a mask). */
static dg_status where_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                dg_node *grad, dg_node **gin)
{
    dg_node *cond = dg__input(node, 0), *zero = dg_scalar(g, 0.0f);
    if (dg__grad_needed(ctx, 1))
        gin[1] = dg__unbroadcast_operand(g, dg_where(g, cond, grad, zero), node, 1);
    if (dg__grad_needed(ctx, 2))
        gin[2] = dg__unbroadcast_operand(g, dg_where(g, cond, zero, grad), node, 2);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_where = {
    .name = "where", .n_inputs = 3,
    .infer = where_infer, .forward = where_forward, .backward = where_backward,
    .dynamic_axes = dg__dynamic_elementwise,
};

dg_node *dg_where(dg_graph *g, dg_node *cond, dg_node *a, dg_node *b)
{
    return dg__make_node(g, DG_OP_where, 3, (dg_node *[]){cond, a, b}, NULL);
}

/* ---- argmax, argmin ------------------------------------------------------------------- */

enum arg_variant { ARG_MAX, ARG_MIN };

struct arg_attrs {
    int axis; /* normalised, 0 <= axis < ndim at build time */
};

static inline const struct arg_attrs *arg_attrs(const void *attrs) { return attrs; }

static dg_status arg_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                           const struct dg_shape *in, struct dg_shape *out, char *msg,
                           size_t len)
{
    char sa[128];
    int axis = arg_attrs(attrs)->axis;
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: input must be float32, got int32 "
                               "%s", def->name, dg__shape_str(&in[0], sa, sizeof sa));
    if (axis < 0 || axis >= in[0].ndim || in[0].dim[axis] < 1)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: axis %d is not a non-empty axis "
                               "of %s", def->name, axis, dg__shape_str(&in[0], sa, sizeof sa));
    out->dtype = DG_I32;
    out->ndim = 0;
    for (int i = 0; i < in[0].ndim; i++)
        if (i != axis)
            out->dim[out->ndim++] = in[0].dim[i];
    return DG_OK;
}

static void arg_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                        const struct dg_tensor *in, struct dg_tensor *out,
                        const struct dg_exec_ctx *ctx)
{
    const struct dg_shape *s = &in[0].shape;
    int axis = arg_attrs(attrs)->axis;
    int64_t outer, inner, n = s->dim[axis];
    dg__axis_split(s, axis, &outer, &inner);
    const float *x = in[0].data;
    int32_t *o = out->data;
    bool is_max = def->variant == ARG_MAX;
    int threads = dg__threads_for(ctx, outer * inner * n);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t q = 0; q < outer * inner; q++) {
        const float *base = x + (q / inner) * n * inner + q % inner;
        int64_t best = 0;
        float value = base[0];
        for (int64_t k = 1; k < n && value == value; k++) {
            float v = base[k * inner];
            if (v != v || (is_max ? v > value : v < value)) {
                best = k;
                value = v;
            }
        }
        o[q] = (int32_t)best;
    }
}

static void arg_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d", arg_attrs(attrs)->axis);
}

const struct dg_op_def dg_op_argmax = {
    .name = "argmax", .variant = ARG_MAX, .n_inputs = 1, .attrs_size = sizeof(struct arg_attrs),
    .infer = arg_infer, .forward = arg_forward, .backward = dg__zero_grad, .label = arg_label,
};

const struct dg_op_def dg_op_argmin = {
    .name = "argmin", .variant = ARG_MIN, .n_inputs = 1, .attrs_size = sizeof(struct arg_attrs),
    .infer = arg_infer, .forward = arg_forward, .backward = dg__zero_grad, .label = arg_label,
};

static dg_node *arg_build(dg_graph *g, dg_op_id op, const char *name, dg_node *x, int axis)
{
    if (x != NULL && dg_graph_status(g) == DG_OK) {
        int ndim = dg_node_ndim(x);
        if (axis < -ndim || axis >= ndim)
            return dg__fail(g, DG_ERR_INVALID_ARG, "%s: axis %d is out of range for %d "
                            "dimensions", name, axis, ndim);
        axis = axis < 0 ? axis + ndim : axis;
    }
    struct arg_attrs attrs = {.axis = axis};
    return dg__make_node(g, op, 1, (dg_node *[]){x}, &attrs);
}

dg_node *dg_argmax(dg_graph *g, dg_node *x, int axis)
{
    return arg_build(g, DG_OP_argmax, "argmax", x, axis);
}

dg_node *dg_argmin(dg_graph *g, dg_node *x, int axis)
{
    return arg_build(g, DG_OP_argmin, "argmin", x, axis);
}

/* ---- cast ----------------------------------------------------------------------------- */

struct cast_attrs {
    int dtype; /* the output's dg_dtype */
};

static inline const struct cast_attrs *cast_attrs(const void *attrs) { return attrs; }

static dg_status cast_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_shape *in, struct dg_shape *out, char *msg,
                            size_t len)
{
    *out = in[0];
    out->dtype = (dg_dtype)cast_attrs(attrs)->dtype;
    return DG_OK;
}

static inline int32_t float_to_i32(float x)
{
    if (x != x)
        return 0;
    if (x >= 2147483647.0f)
        return INT32_MAX;
    if (x <= -2147483648.0f)
        return INT32_MIN;
    return (int32_t)x; /* truncation toward zero */
}

static void cast_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                         const struct dg_tensor *in, struct dg_tensor *out,
                         const struct dg_exec_ctx *ctx)
{
    int64_t n = dg__numel(&out->shape);
    int threads = dg__threads_for(ctx, n);
    if (in[0].shape.dtype == out->shape.dtype) {
        dg__layout_copy(out->data, in[0].data, n, ctx);
    } else if (out->shape.dtype == DG_I32) {
        const float *x = in[0].data;
        int32_t *o = out->data;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
        for (int64_t i = 0; i < n; i++)
            o[i] = float_to_i32(x[i]);
    } else {
        const int32_t *x = in[0].data;
        float *o = out->data;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
        for (int64_t i = 0; i < n; i++)
            o[i] = (float)x[i];
    }
}

static void cast_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "to=%s", cast_attrs(attrs)->dtype == DG_I32 ? "int32" : "float32");
}

const struct dg_op_def dg_op_cast = {
    .name = "cast", .n_inputs = 1, .attrs_size = sizeof(struct cast_attrs),
    .can_inplace = true, /* element i from element i, 4 bytes each, read before written */
    .infer = cast_infer, .forward = cast_forward, .backward = dg__zero_grad,
    .label = cast_label, .dynamic_axes = dg__dynamic_elementwise,
};

dg_node *dg_cast(dg_graph *g, dg_node *x, dg_dtype dtype)
{
    if (x != NULL && dg_graph_status(g) == DG_OK) {
        if (dtype != DG_F32 && dtype != DG_I32)
            return dg__fail(g, DG_ERR_INVALID_ARG, "cast: unknown dtype %d", (int)dtype);
        if (dg_node_dtype(x) == dtype)
            return x; /* nothing to convert: the value itself, gradient included */
    }
    struct cast_attrs attrs = {.dtype = (int)dtype};
    return dg__make_node(g, DG_OP_cast, 1, (dg_node *[]){x}, &attrs);
}
