/*
 * reshape(x; shape) and the internal reshape_as(x, like): the same elements in the same
 * (row-major) order under a new shape.
 *
 *   reshape:    out has `shape`; one entry may be -1, inferred from numel(x) at infer time, so
 *               a reshape [-1, 784] follows a changing batch.
 *   reshape_as: out has like's shape (like is read for its shape only).
 *   backward of both: dx = reshape_as(grad, x) (x's plan-time shape, so it follows the batch).
 *
 * Both are views: the planner aliases x's storage (element i of out is element i of x), so
 * they have no kernel. Layout ops move 4-byte elements whatever their type, so int32 values
 * reshape too (without gradient).
 */
#include "op.h"

#include <stdio.h>
#include <string.h>

/* reshape's target shape; may hold one -1. */
struct reshape_attrs {
    int ndim;
    int64_t dim[DG_MAX_DIMS];
};

static inline const struct reshape_attrs *reshape_attrs(const void *attrs) { return attrs; }

struct copy_job {
    char *dst;
    const char *src;
};

static void copy_chunk(void *arg, int64_t lo, int64_t hi)
{
    const struct copy_job *job = arg;
    memcpy(job->dst + lo * 4, job->src + lo * 4, (size_t)(hi - lo) * 4);
}

/* Copies n 4-byte elements, in contiguous chunks across threads for large tensors; nothing
 * when dst == src (the op ran in place). Shared by the layout ops. */
void dg__layout_copy(void *dst, const void *src, int64_t n, const struct dg_exec_ctx *ctx)
{
    if (dst == src || n <= 0)
        return;
    struct copy_job job = {dst, src};
    dg__parallel_chunks(ctx, n, copy_chunk, &job);
}

static dg_status reshape_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                               const struct dg_shape *in, struct dg_shape *out, char *msg,
                               size_t len)
{
    char sx[128], st[128];
    struct dg_shape target = {.dtype = in[0].dtype, .ndim = reshape_attrs(attrs)->ndim};
    int64_t known = 1, numel = dg__numel(&in[0]);
    int infer_axis = -1;
    bool too_large = false; /* the product of the given entries overflows or passes the limit */
    for (int i = 0; i < target.ndim; i++) {
        target.dim[i] = reshape_attrs(attrs)->dim[i];
        if (target.dim[i] == -1)
            infer_axis = i;
        else if (__builtin_mul_overflow(known, target.dim[i], &known) || known > DG_MAX_NUMEL)
            too_large = true;
    }
    if (too_large)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "reshape: cannot reshape %s (%lld "
                               "elements) to %s: more than 2^40 elements",
                               dg__shape_str(&in[0], sx, sizeof sx), (long long)numel,
                               dg__shape_str(&target, st, sizeof st));
    if (infer_axis >= 0 && known > 0 && numel % known == 0)
        target.dim[infer_axis] = numel / known;
    if (infer_axis >= 0 ? (known <= 0 || numel % known != 0) : known != numel)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "reshape: cannot reshape %s (%lld "
                               "elements) to %s", dg__shape_str(&in[0], sx, sizeof sx),
                               (long long)numel, dg__shape_str(&target, st, sizeof st));
    *out = target;
    return DG_OK;
}

/* dx = reshape_as(grad, x) */
static dg_status reshape_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                  dg_node *grad, dg_node **gin)
{
    dg_node *x = dg__input(node, 0);
    if (dg_node_dtype(x) == DG_F32)
        gin[0] = dg__make_node(g, DG_OP_reshape_as, 2, (dg_node *[]){grad, x}, NULL);
    return dg_graph_status(g);
}

static void reshape_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    struct dg_shape s = {.ndim = reshape_attrs(attrs)->ndim};
    for (int i = 0; i < s.ndim; i++)
        s.dim[i] = reshape_attrs(attrs)->dim[i];
    char shape[128];
    snprintf(buf, len, "shape=%s", dg__shape_str(&s, shape, sizeof shape));
}

const struct dg_op_def dg_op_reshape = {
    .name = "reshape", .attrs_size = sizeof(struct reshape_attrs), .n_inputs = 1,
    .view = true,
    .infer = reshape_infer, .backward = reshape_backward,
    .label = reshape_label,
};

dg_node *dg_reshape(dg_graph *g, dg_node *x, int ndim, const int64_t *shape)
{
    if (g == NULL)
        return NULL;
    if (x == NULL || dg_graph_status(g) != DG_OK)
        return dg__make_node(g, DG_OP_reshape, 1, &x, NULL);
    if (ndim < 0 || ndim > DG_MAX_DIMS)
        return dg__fail(g, DG_ERR_INVALID_ARG, "reshape: %d dimensions (0..%d allowed)", ndim,
                        DG_MAX_DIMS);
    if (ndim > 0 && shape == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "reshape: shape is NULL");
    struct reshape_attrs attrs = {.ndim = ndim};
    int n_inferred = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            n_inferred++;
        } else if (shape[i] <= 0) {
            return dg__fail(g, DG_ERR_INVALID_ARG, "reshape: dimension %d of the new shape is "
                            "%lld (must be > 0, or -1 once)", i, (long long)shape[i]);
        }
        attrs.dim[i] = shape[i];
    }
    if (n_inferred > 1)
        return dg__fail(g, DG_ERR_INVALID_ARG, "reshape: %d entries of the new shape are -1 "
                        "(at most one may be)", n_inferred);
    return dg__make_node(g, DG_OP_reshape, 1, &x, &attrs);
}

/* squeeze / unsqueeze: reshapes (so views) whose new shape keeps -1 where x's first axis
 * lands, so that they follow a batch change like the rest of the graph. */
dg_node *dg_squeeze(dg_graph *g, dg_node *x, int axis)
{
    if (g == NULL || x == NULL || dg_graph_status(g) != DG_OK)
        return dg_reshape(g, x, 0, NULL);
    int ndim = dg_node_ndim(x), a;
    if (!dg__normalize_axis(axis, ndim, &a))
        return dg__fail(g, DG_ERR_INVALID_ARG, "squeeze: axis %d is out of range for %d "
                        "dimensions", axis, ndim);
    if (dg_node_dim(x, a) != 1)
        return dg__fail(g, DG_ERR_SHAPE, "squeeze: axis %d of %s has size %lld, not 1", axis,
                        dg__shape_str(dg__node_shape(x), (char[96]){0}, 96),
                        (long long)dg_node_dim(x, a));
    int64_t shape[DG_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < ndim; i++)
        if (i != a)
            shape[k++] = i == 0 ? -1 : dg_node_dim(x, i);
    return dg_reshape(g, x, k, shape);
}

dg_node *dg_unsqueeze(dg_graph *g, dg_node *x, int axis)
{
    if (g == NULL || x == NULL || dg_graph_status(g) != DG_OK)
        return dg_reshape(g, x, 0, NULL);
    int ndim = dg_node_ndim(x);
    int a = axis < 0 ? axis + ndim + 1 : axis;
    if (a < 0 || a > ndim || ndim >= DG_MAX_DIMS)
        return dg__fail(g, DG_ERR_INVALID_ARG, "unsqueeze: axis %d is out of range for %d "
                        "dimensions (at most %d after it)", axis, ndim, DG_MAX_DIMS);
    int64_t shape[DG_MAX_DIMS];
    int k = 0;
    for (int i = 0; i <= ndim; i++) {
        if (i == a)
            shape[k++] = 1;
        if (i < ndim)
            shape[k++] = i == 0 ? -1 : dg_node_dim(x, i);
    }
    return dg_reshape(g, x, k, shape);
}

/* ---- reshape_as(x, like): internal, the backward of reshape ------------------------------ */

static dg_status reshape_as_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *in, struct dg_shape *out, char *msg,
                                  size_t len)
{
    char sx[128], sl[128];
    if (dg__numel(&in[0]) != dg__numel(&in[1]))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "reshape_as: cannot reshape %s (%lld "
                               "elements) to %s", dg__shape_str(&in[0], sx, sizeof sx),
                               (long long)dg__numel(&in[0]),
                               dg__shape_str(&in[1], sl, sizeof sl));
    *out = in[1];
    out->dtype = in[0].dtype;
    return DG_OK;
}

/* dx = reshape_as(grad, x); like gets no gradient (shape only). */
static dg_status reshape_as_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *grad, dg_node **gin)
{
    gin[0] = dg__make_node(g, DG_OP_reshape_as, 2, (dg_node *[]){grad, dg__input(node, 0)},
                           NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_reshape_as = {
    .name = "reshape_as", .n_inputs = 2, .view = true, .shape_only_inputs = 1u << 1,
    .infer = reshape_as_infer, .backward = reshape_as_backward,
};
