/*
 * stop_gradient(x): the value of x, through which no gradient flows.
 *   forward: out = x, a view (the planner aliases x's storage; no kernel)
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

const struct dg_op_def dg_op_stop_gradient = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "stop_gradient", .n_inputs = 1, .view = true,
    .infer = stop_gradient_infer,
    .backward = dg__zero_grad,
};

dg_node *dg_stop_gradient(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_stop_gradient, 1, &x, NULL);
}
