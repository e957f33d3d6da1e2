/*
 * concat(x_0, .., x_{n-1}; axis): the inputs joined along `axis` (any number of inputs, same
 * dtype and rank, equal sizes on every other axis).
 *   out[.., o_i + j, ..] = x_i[.., j, ..],  o_i = sum of the sizes of x_0 .. x_{i-1} along axis
 * Backward: dx_i = concat_slice(grad, x_0, .., x_i) (slice.c): grad's [o_i, o_i + size_i)
 * range, with the offsets taken from the inputs' shapes at run time, so the gradient stays
 * right when a plan changes the batch, even for a concat along the batch axis 0. That op takes
 * i + 2 inputs, so the backward of an n-input concat holds n(n+3)/2 input references
 * (500,000 for n = 1,000: a few megabytes, shape-only, nothing kept alive by them).
 */
#include "layout_attrs.h"
#include "alloc.h"
#include "op.h"

#include <stdlib.h>

#include <stdio.h>
#include <string.h>

static dg_status concat_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_shape *in, struct dg_shape *out, char *msg,
                              size_t len)
{
    char s0[128], si[128];
    int axis = axis_attrs(attrs)->axis;
    dg__shape_str(&in[0], s0, sizeof s0);
    if (axis < 0 || axis >= in[0].ndim)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "concat: axis %d is out of range for "
                               "%s", axis, s0);
    for (int i = 1; i < n_inputs; i++)
        if (in[i].dtype != in[0].dtype)
            return dg__shape_error(msg, len, DG_ERR_DTYPE, "concat: input %d is %s but input 1 "
                                   "is %s", i + 1, in[i].dtype == DG_F32 ? "float32" : "int32",
                                   in[0].dtype == DG_F32 ? "float32" : "int32");
    /* Every shape that differs from the first outside the axis is named. */
    size_t used = 0;
    int bad = 0;
    for (int i = 1; i < n_inputs; i++) {
        bool ok = in[i].ndim == in[0].ndim;
        for (int d = 0; ok && d < in[0].ndim; d++)
            ok = d == axis || in[i].dim[d] == in[0].dim[d];
        if (ok)
            continue;
        if (bad++ == 0)
            used = (size_t)snprintf(msg, len, "concat: inputs must match %s except along axis "
                                    "%d; mismatching:", s0, axis);
        if (used < len)
            used += (size_t)snprintf(msg + used, len - used, " input %d %s", i + 1,
                                     dg__shape_str(&in[i], si, sizeof si));
    }
    if (bad > 0)
        return DG_ERR_SHAPE;
    *out = in[0];
    for (int i = 1; i < n_inputs; i++)
        out->dim[axis] += in[i].dim[axis];
    return DG_OK;
}

static void concat_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                           const struct dg_tensor *in, struct dg_tensor *out,
                           const struct dg_exec_ctx *ctx)
{
    int axis = axis_attrs(attrs)->axis;
    const struct dg_shape *so = &out->shape;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= so->dim[d];
    for (int d = axis + 1; d < so->ndim; d++)
        inner *= so->dim[d];
    int64_t out_block = so->dim[axis] * inner;
    uint32_t *o = out->data;
    if (outer == 1) { /* each input is one contiguous range of out */
        int64_t offset = 0;
        for (int i = 0; i < n_inputs; i++) {
            int64_t count = in[i].shape.dim[axis] * inner;
            dg__layout_copy(o + offset, in[i].data, count, ctx);
            offset += count;
        }
        return;
    }
    int threads = dg__threads_for(ctx, outer * out_block);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t b = 0; b < outer; b++) {
        uint32_t *dst = o + b * out_block;
        for (int i = 0; i < n_inputs; i++) {
            int64_t count = in[i].shape.dim[axis] * inner;
            memcpy(dst, (const uint32_t *)in[i].data + b * count, (size_t)count * 4);
            dst += count;
        }
    }
}

/* dx_i = concat_slice(grad, x_0 .. x_i) */
static dg_status concat_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                 dg_node *grad, dg_node **gin)
{
    int n = dg__n_inputs(node);
    if (dg_node_dtype(dg__input(node, 0)) != DG_F32)
        return DG_OK;
    dg_node **inputs = dg__malloc(((size_t)n + 1) * sizeof *inputs);
    if (inputs == NULL) {
        dg__fail(g, DG_ERR_NOMEM, "concat: out of memory building the gradient of %d inputs", n);
        return DG_ERR_NOMEM;
    }
    inputs[0] = grad;
    for (int i = 0; i < n; i++) {
        inputs[i + 1] = dg__input(node, i);
        if (dg__grad_needed(ctx, i))
            gin[i] = dg__make_node(g, DG_OP_concat_slice, i + 2, inputs, dg__attrs(node));
    }
    dg__free(inputs);
    return dg_graph_status(g);
}

static void concat_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d", axis_attrs(attrs)->axis);
}

const struct dg_op_def dg_op_concat = {
    .name = "concat", .n_inputs = -1, .attrs_size = sizeof(struct dg_axis_attrs),
    .infer = concat_infer, .forward = concat_forward, .backward = concat_backward,
    .label = concat_label,
};

dg_node *dg_concat(dg_graph *g, int n, dg_node *const *xs, int axis)
{
    if (g == NULL)
        return NULL;
    if (dg_graph_status(g) != DG_OK)
        return NULL;
    if (n < 1)
        return dg__fail(g, DG_ERR_INVALID_ARG, "concat: %d inputs (at least 1 needed)", n);
    if (n > DG_MAX_NODE_INPUTS)
        return dg__fail(g, DG_ERR_INVALID_ARG, "concat: %d inputs (at most %d)", n,
                        DG_MAX_NODE_INPUTS);
    if (xs == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "concat: the input array is NULL");
    struct dg_axis_attrs attrs = {.axis = axis};
    if (xs[0] != NULL) {
        char buf[128];
        const struct dg_shape *s0 = dg__node_shape(xs[0]);
        if (!dg__normalize_axis(axis, s0->ndim, &attrs.axis))
            return dg__fail(g, DG_ERR_INVALID_ARG, "concat: axis %d is out of range for %s",
                            axis, dg__shape_str(s0, buf, sizeof buf));
    }
    return dg__make_node(g, DG_OP_concat, n, xs, &attrs);
}
