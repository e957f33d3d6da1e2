/*
 * slice(x; axis, start, end) and its backward, the internal pad_slice(grad, like; same attrs).
 *
 *   slice:     out = x[.., start:end, ..] along `axis` (step 1); out's axis has end - start.
 *   pad_slice: out has like's shape (like is read for its shape only): zeros, with grad
 *              written at [start, end) along axis.
 *   backward:  d slice = pad_slice(grad, x);  d pad_slice = slice(grad) (same attrs).
 *
 * Indices: a negative start or end counts from the end of the axis (-1 is the last element).
 * Unlike Python, nothing is clamped: after normalisation 0 <= start < end <= size must hold,
 * and an out-of-range or empty slice is an error naming the axis and the shape. Along axes
 * other than 0 the constructor normalises start/end once; along axis 0 (the batch axis, whose
 * size a plan may change) negative values are kept and normalised at infer time, so
 * slice(x, 0, -2, -1) means "the second-to-last row" whatever the batch.
 */
#include "layout_attrs.h"
#include "alloc.h"
#include "op.h"

#include <stdlib.h>

#include <stdio.h>
#include <string.h>

#include <omp.h>

/* Normalises [start, end) against an axis of `size`; false when out of range or empty. */
static bool normalise_range(int64_t start, int64_t end, int64_t size, int64_t *s, int64_t *e)
{
    *s = start < 0 ? start + size : start;
    *e = end < 0 ? end + size : end;
    return *s >= 0 && *s < *e && *e <= size;
}

/* Checks the attributes against x's shape; writes the normalised range. */
static dg_status check_range(const char *op, const void *attrs,
                             const struct dg_shape *x, int64_t *start, int64_t *end,
                             char *msg, size_t len)
{
    char sx[128];
    const struct dg_slice_attrs *range = slice_attrs(attrs);
    int axis = range->axis;
    if (axis < 0 || axis >= x->ndim)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: axis %d is out of range for %s", op,
                               axis, dg__shape_str(x, sx, sizeof sx));
    if (!normalise_range(range->start, range->end, x->dim[axis], start, end))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: range [%lld,%lld) is out of range "
                               "or empty along axis %d of %s", op,
                               (long long)range->start, (long long)range->end, axis,
                               dg__shape_str(x, sx, sizeof sx));
    return DG_OK;
}

/* Geometry of a slice along `axis` of `full`: `outer` blocks, each of `size` * inner elements
 * in full, of which [start*inner, end*inner) is the slice. */
struct geometry {
    int64_t outer, inner, size, start, end;
};

static struct geometry geometry_of(const struct dg_shape *full, int axis, int64_t start,
                                   int64_t end)
{
    struct geometry geo = {1, 1, full->dim[axis], start, end};
    for (int i = 0; i < axis; i++)
        geo.outer *= full->dim[i];
    for (int i = axis + 1; i < full->ndim; i++)
        geo.inner *= full->dim[i];
    return geo;
}

static dg_status slice_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                             const struct dg_shape *in, struct dg_shape *out, char *msg,
                             size_t len)
{
    int64_t start = 0, end = 0; /* set by check_range on success (GCC -O3 cannot tell) */
    dg_status st = check_range("slice", attrs, &in[0], &start, &end, msg, len);
    if (st != DG_OK)
        return st;
    *out = in[0];
    out->dim[slice_attrs(attrs)->axis] = end - start;
    return DG_OK;
}

/* Copies, for each outer block, `count` contiguous elements from src (block stride
 * src_block) to dst (block stride dst_block); in parallel over blocks, or over one block's
 * elements when there are few blocks. */
static void copy_blocks(uint32_t *dst, int64_t dst_block, const uint32_t *src,
                        int64_t src_block, int64_t outer, int64_t count,
                        const struct dg_exec_ctx *ctx)
{
    int threads = dg__threads_for(ctx, outer * count);
    if (outer >= threads) {
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst + o * dst_block, src + o * src_block, (size_t)count * 4);
        return;
    }
    for (int64_t o = 0; o < outer; o++)
        dg__layout_copy(dst + o * dst_block, src + o * src_block, count, ctx);
}

/* out = the [start, end) range along `axis` of x (shape `full`). */
static void slice_kernel(const uint32_t *x, const struct dg_shape *full, int axis,
                         int64_t start, int64_t end, uint32_t *out,
                         const struct dg_exec_ctx *ctx)
{
    struct geometry geo = geometry_of(full, axis, start, end);
    int64_t count = (end - start) * geo.inner;
    copy_blocks(out, count, x + start * geo.inner, geo.size * geo.inner, geo.outer, count,
                ctx);
}

/* out (shape `full`) = zeros with x written at [start, end) along `axis`. */
static void pad_kernel(const uint32_t *x, const struct dg_shape *full, int axis, int64_t start,
                       int64_t end, uint32_t *out, const struct dg_exec_ctx *ctx)
{
    struct geometry geo = geometry_of(full, axis, start, end);
    int64_t count = (end - start) * geo.inner, block = geo.size * geo.inner;
    int64_t before = start * geo.inner, after = block - before - count;
    int threads = dg__threads_for(ctx, geo.outer * block);
    /* Zero only what the slice does not cover: before and after it in each block. */
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t b = 0; b < geo.outer; b++) {
        memset(out + b * block, 0, (size_t)before * 4);
        memset(out + b * block + before + count, 0, (size_t)after * 4);
    }
    copy_blocks(out + before, block, x, count, geo.outer, count, ctx);
}

static void slice_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                          const struct dg_tensor *in, struct dg_tensor *out,
                          const struct dg_exec_ctx *ctx)
{
    int64_t start = 0, end = 0; /* set by check_range on success (GCC -O3 cannot tell) */
    const struct dg_slice_attrs *range = slice_attrs(attrs);
    normalise_range(range->start, range->end, in[0].shape.dim[range->axis],
                    &start, &end);
    slice_kernel(in[0].data, &in[0].shape, slice_attrs(attrs)->axis, start, end, out->data, ctx);
}

/* dx = pad_slice(grad, x): zeros outside the slice */
static dg_status slice_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                dg_node *grad, dg_node **gin)
{
    dg_node *x = dg__input(node, 0);
    if (dg_node_dtype(x) == DG_F32)
        gin[0] = dg__make_node(g, DG_OP_pad_slice, 2, (dg_node *[]){grad, x}, dg__attrs(node));
    return dg_graph_status(g);
}

static void slice_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d [%lld:%lld]", slice_attrs(attrs)->axis,
             (long long)slice_attrs(attrs)->start, (long long)slice_attrs(attrs)->end);
}

const struct dg_op_def dg_op_slice = {
    .name = "slice", .attrs_size = sizeof(struct dg_slice_attrs), .n_inputs = 1,
    .infer = slice_infer, .forward = slice_forward, .backward = slice_backward,
    .label = slice_label,
};

dg_node *dg_slice(dg_graph *g, dg_node *x, int axis, int64_t start, int64_t end)
{
    if (g == NULL)
        return NULL;
    if (x == NULL || dg_graph_status(g) != DG_OK)
        return dg__make_node(g, DG_OP_slice, 1, &x, NULL);
    const struct dg_shape *sx = dg__node_shape(x);
    char buf[128];
    int normal;
    if (!dg__normalize_axis(axis, sx->ndim, &normal))
        return dg__fail(g, DG_ERR_INVALID_ARG, "slice: axis %d is out of range for %s", axis,
                        dg__shape_str(sx, buf, sizeof buf));
    struct dg_slice_attrs attrs = {.axis = normal, .start = start, .end = end};
    int64_t s, e;
    if (normal != 0 && normalise_range(start, end, sx->dim[normal], &s, &e)) {
        attrs.start = s; /* axes other than the batch axis never change size */
        attrs.end = e;
    }
    return dg__make_node(g, DG_OP_slice, 1, &x, &attrs);
}

/* ---- pad_slice(grad, like): internal, the backward of slice ----------------------------- */

static dg_status pad_slice_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                 const struct dg_shape *in, struct dg_shape *out, char *msg,
                                 size_t len)
{
    char sg[128], sl[128];
    int64_t start = 0, end = 0; /* set by check_range on success (GCC -O3 cannot tell) */
    dg_status st = check_range("pad_slice", attrs, &in[1], &start, &end, msg, len);
    if (st != DG_OK)
        return st;
    struct dg_shape expected = in[1];
    expected.dim[slice_attrs(attrs)->axis] = end - start;
    bool ok = in[0].ndim == expected.ndim;
    for (int i = 0; ok && i < expected.ndim; i++)
        ok = in[0].dim[i] == expected.dim[i];
    if (!ok)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "pad_slice: %s is not the [%lld,%lld) "
                               "slice along axis %d of %s", dg__shape_str(&in[0], sg, sizeof sg),
                               (long long)start, (long long)end, slice_attrs(attrs)->axis,
                               dg__shape_str(&in[1], sl, sizeof sl));
    *out = in[1];
    out->dtype = in[0].dtype;
    return DG_OK;
}

static void pad_slice_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    int64_t start = 0, end = 0; /* set by check_range on success (GCC -O3 cannot tell) */
    const struct dg_slice_attrs *range = slice_attrs(attrs);
    normalise_range(range->start, range->end, out->shape.dim[range->axis],
                    &start, &end);
    pad_kernel(in[0].data, &out->shape, slice_attrs(attrs)->axis, start, end, out->data, ctx);
}

/* d grad = slice(upstream) with the same range; like gets no gradient (shape only). */
static dg_status pad_slice_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *grad, dg_node **gin)
{
    gin[0] = dg__make_node(g, DG_OP_slice, 1, &grad, dg__attrs(node));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_pad_slice = {
    .name = "pad_slice", .attrs_size = sizeof(struct dg_slice_attrs), .n_inputs = 2,
    .shape_only_inputs = 1u << 1,
    .infer = pad_slice_infer, .forward = pad_slice_forward, .backward = pad_slice_backward,
    .label = slice_label,
};

/* ---- concat's backward pieces ------------------------------------------------------------
 * concat_slice(grad, x_0, .., x_k; axis): the part of grad along `axis` that x_k occupies when
 *     x_0 .. x_k lead a concatenation: grad[offset : offset + size_k], offset = sum of x_0 ..
 *     x_{k-1}'s sizes along axis; out has x_k's shape. x_0 .. x_k are read for their shapes
 *     only, at run time, so the pieces follow a changing batch even along axis 0.
 * concat_pad(u, like, x_0, .., x_{k-1}; axis): its backward: like's shape, zeros, with u at
 *     [offset, offset + size(u)) along axis (like and the x's shape only).
 *   d concat_slice = concat_pad(upstream, grad, x_0 .. x_{k-1})
 *   d concat_pad   = concat_slice(upstream, x_0 .. x_{k-1}, u)
 * Both take k + 2 inputs, whatever k.
 */

/* The input array of a rebuilt piece, n entries (checked). */
static dg_node **piece_inputs(dg_graph *g, const char *op, int n)
{
    dg_node **inputs = dg__malloc((size_t)n * sizeof *inputs);
    if (inputs == NULL)
        dg__fail(g, DG_ERR_NOMEM, "%s: out of memory building a gradient of %d inputs", op, n);
    return inputs;
}

/* Checks that `piece` fits in `whole` at `offset` along axis (equal elsewhere). */
static dg_status check_piece(const char *op, int axis, const struct dg_shape *piece,
                             const struct dg_shape *whole, int64_t offset, char *msg,
                             size_t len)
{
    char sp[128], sw[128];
    bool ok = axis >= 0 && axis < whole->ndim && piece->ndim == whole->ndim &&
              offset + piece->dim[axis] <= whole->dim[axis];
    for (int i = 0; ok && i < whole->ndim; i++)
        ok = i == axis || piece->dim[i] == whole->dim[i];
    if (!ok)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: %s does not fit at offset %lld "
                               "along axis %d of %s", op, dg__shape_str(piece, sp, sizeof sp),
                               (long long)offset, axis, dg__shape_str(whole, sw, sizeof sw));
    return DG_OK;
}

/* Sum of the sizes along axis of shapes[0 .. n-1] (axis already checked by the caller's
 * shape test; out-of-range axes count as 0 here and fail there). */
static int64_t offset_of(int axis, int n, const struct dg_shape *shapes)
{
    int64_t offset = 0;
    for (int i = 0; i < n; i++)
        offset += axis < shapes[i].ndim ? shapes[i].dim[axis] : 0;
    return offset;
}

static dg_status concat_slice_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                    const struct dg_shape *in, struct dg_shape *out, char *msg,
                                    size_t len)
{
    if (n_inputs < 2)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "concat_slice: %d inputs (at "
                               "least 2 needed)", n_inputs);
    const struct dg_shape *piece = &in[n_inputs - 1];
    int64_t offset = offset_of(axis_attrs(attrs)->axis, n_inputs - 2, in + 1);
    dg_status st = check_piece("concat_slice", axis_attrs(attrs)->axis, piece, &in[0], offset, msg,
                               len);
    if (st != DG_OK)
        return st;
    *out = *piece;
    out->dtype = in[0].dtype;
    return DG_OK;
}

static void concat_slice_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                 const struct dg_tensor *in, struct dg_tensor *out,
                                 const struct dg_exec_ctx *ctx)
{
    int axis = axis_attrs(attrs)->axis;
    int64_t offset = 0;
    for (int i = 1; i < n_inputs - 1; i++)
        offset += in[i].shape.dim[axis];
    slice_kernel(in[0].data, &in[0].shape, axis, offset, offset + out->shape.dim[axis],
                 out->data, ctx);
}

/* d grad = concat_pad(upstream, grad, x_0 .. x_{k-1}) */
static dg_status concat_slice_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                       dg_node *grad, dg_node **gin)
{
    int n = dg__n_inputs(node);
    dg_node **inputs = piece_inputs(g, "concat_slice", n);
    if (inputs == NULL)
        return dg_graph_status(g);
    inputs[0] = grad;
    for (int i = 0; i < n - 1; i++)
        inputs[i + 1] = dg__input(node, i); /* grad's like, then x_0 .. x_{k-1} */
    gin[0] = dg__make_node(g, DG_OP_concat_pad, n, inputs, dg__attrs(node));
    dg__free(inputs);
    return dg_graph_status(g);
}

static void axis_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d", axis_attrs(attrs)->axis);
}

const struct dg_op_def dg_op_concat_slice = {
    .name = "concat_slice", .n_inputs = -1, .attrs_size = sizeof(struct dg_axis_attrs),
    .shape_only_inputs = ~1u,
    .infer = concat_slice_infer, .forward = concat_slice_forward,
    .backward = concat_slice_backward, .label = axis_label,
};

static dg_status concat_pad_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *in, struct dg_shape *out, char *msg,
                                  size_t len)
{
    if (n_inputs < 2)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "concat_pad: %d inputs (at least "
                               "2 needed)", n_inputs);
    int64_t offset = offset_of(axis_attrs(attrs)->axis, n_inputs - 2, in + 2);
    dg_status st = check_piece("concat_pad", axis_attrs(attrs)->axis, &in[0], &in[1], offset, msg,
                               len);
    if (st != DG_OK)
        return st;
    *out = in[1];
    out->dtype = in[0].dtype;
    return DG_OK;
}

static void concat_pad_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                               const struct dg_tensor *in, struct dg_tensor *out,
                               const struct dg_exec_ctx *ctx)
{
    int axis = axis_attrs(attrs)->axis;
    int64_t offset = 0;
    for (int i = 2; i < n_inputs; i++)
        offset += in[i].shape.dim[axis];
    pad_kernel(in[0].data, &out->shape, axis, offset, offset + in[0].shape.dim[axis],
               out->data, ctx);
}

/* d u = concat_slice(upstream, x_0 .. x_{k-1}, u) */
static dg_status concat_pad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *grad, dg_node **gin)
{
    int n = dg__n_inputs(node);
    dg_node **inputs = piece_inputs(g, "concat_pad", n);
    if (inputs == NULL)
        return dg_graph_status(g);
    inputs[0] = grad;
    for (int i = 2; i < n; i++)
        inputs[i - 1] = dg__input(node, i);
    inputs[n - 1] = dg__input(node, 0);
    gin[0] = dg__make_node(g, DG_OP_concat_slice, n, inputs, dg__attrs(node));
    dg__free(inputs);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_concat_pad = {
    .name = "concat_pad", .n_inputs = -1, .attrs_size = sizeof(struct dg_axis_attrs),
    .shape_only_inputs = ~1u,
    .infer = concat_pad_infer, .forward = concat_pad_forward,
    .backward = concat_pad_backward, .label = axis_label,
};
