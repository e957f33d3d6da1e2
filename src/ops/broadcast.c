/*
 * broadcast_to(x; shape): x stretched to `shape` by numpy's rules (shapes aligned on the
 * right; an axis of x of size 1, or missing on the left, repeats). An entry of -1 in `shape`
 * keeps x's size on that (aligned) axis, so broadcast_to(x, [-1, 5, 4]) follows the batch.
 *   out[i] = x[i with the broadcast axes' indices set to 0]
 * Backward: dx = dg__unbroadcast(grad, x): grad summed over the axes x was stretched along
 * (missing leading axes, and size-1 axes), reshaped to x's shape (sum_to).
 */
#include "elementwise.h"

#include <stdio.h>
#include <string.h>

/* broadcast_to's target shape. */
struct broadcast_attrs {
    int ndim;
    int64_t dim[DG_MAX_DIMS];
};

static inline const struct broadcast_attrs *broadcast_attrs(const void *attrs) { return attrs; }

static dg_status broadcast_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                 const struct dg_shape *in, struct dg_shape *out, char *msg,
                                 size_t len)
{
    char sx[128], st[128];
    const struct dg_shape *x = &in[0];
    struct dg_shape target = {.dtype = x->dtype, .ndim = broadcast_attrs(attrs)->ndim};
    for (int i = 0; i < target.ndim; i++)
        target.dim[i] = broadcast_attrs(attrs)->dim[i];
    bool ok = target.ndim >= x->ndim;
    for (int i = 0; ok && i < target.ndim; i++) {
        int j = i - (target.ndim - x->ndim);
        int64_t xd = j >= 0 ? x->dim[j] : 1;
        if (target.dim[i] == -1) {
            if (j < 0)
                ok = false; /* -1 needs an axis of x to copy */
            else
                target.dim[i] = xd;
        } else if (xd != 1 && xd != target.dim[i]) {
            ok = false;
        }
    }
    if (!ok)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "broadcast_to: cannot broadcast %s to "
                               "%s", dg__shape_str(x, sx, sizeof sx),
                               dg__shape_str(&target, st, sizeof st));
    *out = target;
    return DG_OK;
}

static void broadcast_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    const struct dg_shape *shapes[1] = {&in[0].shape};
    struct dg_bcast it;
    dg__bcast_init(&it, &out->shape, 1, shapes);
    const uint32_t *x = in[0].data;
    uint32_t *o = out->data;
    int64_t stride = it.stride[0][it.ndim - 1], n = it.row_len;
    int threads = dg__threads_for(ctx, it.rows * it.row_len);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < it.rows; r++) {
        int64_t off[2];
        dg__bcast_row(&it, r, off);
        const uint32_t *src = x + off[0];
        uint32_t *dst = o + r * n;
        if (stride == 1) {
            memcpy(dst, src, (size_t)n * 4);
        } else {
            uint32_t v = src[0];
            for (int64_t j = 0; j < n; j++)
                dst[j] = v;
        }
    }
}

/* dx = sum of grad over the broadcast axes (sum_to x's shape) */
static dg_status broadcast_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *grad, dg_node **gin)
{
    dg_node *x = dg__input(node, 0);
    if (dg_node_dtype(x) == DG_F32)
        gin[0] = dg__unbroadcast(g, grad, x);
    return dg_graph_status(g);
}

static void broadcast_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    struct dg_shape s = {.ndim = broadcast_attrs(attrs)->ndim};
    for (int i = 0; i < s.ndim; i++)
        s.dim[i] = broadcast_attrs(attrs)->dim[i];
    char shape[128];
    snprintf(buf, len, "shape=%s", dg__shape_str(&s, shape, sizeof shape));
}

const struct dg_op_def dg_op_broadcast_to = {
    .name = "broadcast_to", .attrs_size = sizeof(struct broadcast_attrs), .n_inputs = 1,
    .infer = broadcast_infer, .forward = broadcast_forward, .backward = broadcast_backward,
    .label = broadcast_label,
};

dg_node *dg_broadcast_to(dg_graph *g, dg_node *x, int ndim, const int64_t *shape)
{
    if (g == NULL)
        return NULL;
    if (x == NULL || dg_graph_status(g) != DG_OK)
        return dg__make_node(g, DG_OP_broadcast_to, 1, &x, NULL);
    if (ndim < 0 || ndim > DG_MAX_DIMS)
        return dg__fail(g, DG_ERR_INVALID_ARG, "broadcast_to: %d dimensions (0..%d allowed)",
                        ndim, DG_MAX_DIMS);
    if (ndim > 0 && shape == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "broadcast_to: shape is NULL");
    struct broadcast_attrs attrs = {.ndim = ndim};
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 && shape[i] != -1)
            return dg__fail(g, DG_ERR_INVALID_ARG, "broadcast_to: dimension %d of the target "
                            "shape is %lld (must be > 0, or -1 to keep the input's)", i,
                            (long long)shape[i]);
        attrs.dim[i] = shape[i];
    }
    return dg__make_node(g, DG_OP_broadcast_to, 1, &x, &attrs);
}
