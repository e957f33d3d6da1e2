/*
 * Comparison masks: equal(a, b) and greater(a, b) give 1.0 where the relation holds, else 0.0,
 * over the broadcast shape. Piecewise constant, so their gradient is zero by definition
 * (dg__zero_grad: dg_grad treats them as constants). Used by the backward rules of
 * maximum, minimum and max.
 */
#include "elementwise.h"

#include <omp.h>

enum compare_op { CMP_EQUAL, CMP_GREATER };

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

static inline __attribute__((always_inline)) void compare_forward(
    bool greater, const struct dg_tensor *in, struct dg_tensor *out,
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
            ro[j] = (greater ? x > y : x == y) ? 1.0f : 0.0f;
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
    if (def->variant == CMP_GREATER)
        compare_forward(true, in, out, ctx);
    else
        compare_forward(false, in, out, ctx);
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
