/*
 * stop_gradient(x): the value of x, through which no gradient flows.
 *   forward: out = x (a copy; skipped when the planner runs it in place)
 *   backward: zero by definition (dg__zero_grad): an input whose only path to the loss goes
 *   through stop_gradient gets zeros.
 */
#include "op.h"

static dg_status stop_gradient_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                     const struct dg_shape *in, struct dg_shape *out,
                                     char *msg, size_t len)
{
    *out = in[0];
    return DG_OK;
}

static void stop_gradient_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_tensor *in, struct dg_tensor *out,
                                  const struct dg_exec_ctx *ctx)
{
    dg__layout_copy(out->data, in[0].data, dg__numel(&out->shape), ctx);
}

const struct dg_op_def dg_op_stop_gradient = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "stop_gradient", .n_inputs = 1, .can_inplace = true,
    .infer = stop_gradient_infer, .forward = stop_gradient_forward,
    .backward = dg__zero_grad,
};

dg_node *dg_stop_gradient(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_stop_gradient, 1, &x, NULL);
}
