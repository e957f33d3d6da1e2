/*
 * Comparison masks: equal, not_equal, greater, greater_equal, less and less_equal of (a, b)
 * give 1.0 where the relation holds, else 0.0 (float32), over the broadcast shape. IEEE
 * semantics: a NaN operand makes every relation false except not_equal, which is true (as
 * PyTorch). Piecewise constant, so their gradient is zero by definition (dg__zero_grad:
 * dg_grad treats them as constants). Public (dagrad_seq.h); equal and greater also serve the
 * backward rules of maximum, minimum and max.
 */
#include "elementwise.h"

#include <omp.h>

enum compare_op { CMP_EQUAL, CMP_GREATER, CMP_NOT_EQUAL, CMP_GREATER_EQUAL, CMP_LESS,
                  CMP_LESS_EQUAL };

static dg_status compare_infer(const char *name, const struct dg_shape *in,
                               struct dg_shape *out, char *msg, size_t len)
{
    char sa[128], sb[128];
    if (in[0].dtype != DG_F32 || in[1].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: operands must be float32", name);
    if (!dg__broadcast_shapes(&in[0], &in[1], out))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: shapes %s and %s do not broadcast",
                               name, dg__shape_str(&in[0], sa, sizeof sa),
                               dg__shape_str(&in[1], sb, sizeof sb));
    return DG_OK;
}

static inline __attribute__((always_inline)) bool relation(enum compare_op op, float x, float y)
{
    switch (op) {
    case CMP_EQUAL: return x == y;
    case CMP_GREATER: return x > y;
    case CMP_NOT_EQUAL: return x != y;
    case CMP_GREATER_EQUAL: return x >= y;
    case CMP_LESS: return x < y;
    default: return x <= y;
    }
}

static inline __attribute__((always_inline)) void compare_forward(
    enum compare_op op, const struct dg_tensor *in, struct dg_tensor *out,
    const struct dg_exec_ctx *ctx)
{
    const struct dg_shape *shapes[2] = {&in[0].shape, &in[1].shape};
    struct dg_bcast it;
    dg__bcast_init(&it, &out->shape, 2, shapes);
    const float *a = in[0].data, *b = in[1].data;
    float *o = out->data;
    int64_t sa = it.stride[0][it.ndim - 1], sb = it.stride[1][it.ndim - 1];
    int threads = dg__threads_for(ctx, it.rows * it.row_len);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < it.rows; r++) {
        int64_t off[2];
        dg__bcast_row(&it, r, off);
        const float *ra = a + off[0], *rb = b + off[1];
        float *ro = o + r * it.row_len;
        for (int64_t j = 0; j < it.row_len; j++) {
            float x = ra[j * sa], y = rb[j * sb];
            ro[j] = relation(op, x, y) ? 1.0f : 0.0f;
        }
    }
}

static dg_status compare_infer_op(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *in, struct dg_shape *out, char *msg,
                                  size_t len)
{
    return compare_infer(def->name, in, out, msg, len);
}

static void compare_kernel(const struct dg_op_def *def, const void *attrs, int n_inputs,
                           const struct dg_tensor *in, struct dg_tensor *out,
                           const struct dg_exec_ctx *ctx)
{
    /* one specialised loop per relation */
    switch ((enum compare_op)def->variant) {
    case CMP_EQUAL: compare_forward(CMP_EQUAL, in, out, ctx); break;
    case CMP_GREATER: compare_forward(CMP_GREATER, in, out, ctx); break;
    case CMP_NOT_EQUAL: compare_forward(CMP_NOT_EQUAL, in, out, ctx); break;
    case CMP_GREATER_EQUAL: compare_forward(CMP_GREATER_EQUAL, in, out, ctx); break;
    case CMP_LESS: compare_forward(CMP_LESS, in, out, ctx); break;
    case CMP_LESS_EQUAL: compare_forward(CMP_LESS_EQUAL, in, out, ctx); break;
    }
}

const struct dg_op_def dg_op_equal = {
    .name = "equal", .variant = CMP_EQUAL, .n_inputs = 2, .can_inplace = true,
    .infer = compare_infer_op, .forward = compare_kernel, .backward = dg__zero_grad,
    .dynamic_axes = dg__dynamic_elementwise,
};

const struct dg_op_def dg_op_greater = {
    .name = "greater", .variant = CMP_GREATER, .n_inputs = 2, .can_inplace = true,
    .infer = compare_infer_op, .forward = compare_kernel, .backward = dg__zero_grad,
    .dynamic_axes = dg__dynamic_elementwise,
};

const struct dg_op_def dg_op_not_equal = {
    .name = "not_equal", .variant = CMP_NOT_EQUAL, .n_inputs = 2, .can_inplace = true,
    .infer = compare_infer_op, .forward = compare_kernel, .backward = dg__zero_grad,
    .dynamic_axes = dg__dynamic_elementwise,
};

const struct dg_op_def dg_op_greater_equal = {
    .name = "greater_equal", .variant = CMP_GREATER_EQUAL, .n_inputs = 2, .can_inplace = true,
    .infer = compare_infer_op, .forward = compare_kernel, .backward = dg__zero_grad,
    .dynamic_axes = dg__dynamic_elementwise,
};

const struct dg_op_def dg_op_less = {
    .name = "less", .variant = CMP_LESS, .n_inputs = 2, .can_inplace = true,
    .infer = compare_infer_op, .forward = compare_kernel, .backward = dg__zero_grad,
    .dynamic_axes = dg__dynamic_elementwise,
};

const struct dg_op_def dg_op_less_equal = {
    .name = "less_equal", .variant = CMP_LESS_EQUAL, .n_inputs = 2, .can_inplace = true,
    .infer = compare_infer_op, .forward = compare_kernel, .backward = dg__zero_grad,
    .dynamic_axes = dg__dynamic_elementwise,
};

dg_node *dg_equal(dg_graph *g, dg_node *a, dg_node *b)
{
    return dg__make_node(g, DG_OP_equal, 2, (dg_node *[]){a, b}, NULL);
}

dg_node *dg_not_equal(dg_graph *g, dg_node *a, dg_node *b)
{
    return dg__make_node(g, DG_OP_not_equal, 2, (dg_node *[]){a, b}, NULL);
}

dg_node *dg_greater(dg_graph *g, dg_node *a, dg_node *b)
{
    return dg__make_node(g, DG_OP_greater, 2, (dg_node *[]){a, b}, NULL);
}

dg_node *dg_greater_equal(dg_graph *g, dg_node *a, dg_node *b)
{
    return dg__make_node(g, DG_OP_greater_equal, 2, (dg_node *[]){a, b}, NULL);
}

dg_node *dg_less(dg_graph *g, dg_node *a, dg_node *b)
{
    return dg__make_node(g, DG_OP_less, 2, (dg_node *[]){a, b}, NULL);
}

dg_node *dg_less_equal(dg_graph *g, dg_node *a, dg_node *b)
{
    return dg__make_node(g, DG_OP_less_equal, 2, (dg_node *[]){a, b}, NULL);
}
