/*
 * Op cases for the activation family (src/ops/activation.c), including the fused backward ops.
 * The PyTorch side of each row, with the same name, is in tests/gen/cases_activation.py; see
 * op_cases.h for how rows are checked.
 */
#include "op.h"
#include "scalar_attrs.h"
#include "op_cases.h"

/* Loosened finite-difference tolerance for cases whose outputs span a wide range, where
 * float32 differences of the summed loss lose digits. */
#define WIDE_GRADCHECK_TOL 2e-2

static dg_node *build_relu(dg_graph *g, dg_node *const *in) { return dg_relu(g, in[0]); }
static dg_node *build_sigmoid(dg_graph *g, dg_node *const *in) { return dg_sigmoid(g, in[0]); }
static dg_node *build_tanh(dg_graph *g, dg_node *const *in) { return dg_tanh(g, in[0]); }
static dg_node *build_gelu(dg_graph *g, dg_node *const *in) { return dg_gelu(g, in[0]); }
static dg_node *build_softplus(dg_graph *g, dg_node *const *in) { return dg_softplus(g, in[0]); }
static dg_node *build_leaky_basic(dg_graph *g, dg_node *const *in) { return dg_leaky_relu(g, in[0], 0.1f); }
static dg_node *build_leaky_steep(dg_graph *g, dg_node *const *in) { return dg_leaky_relu(g, in[0], 1.5f); }

/* The fused backward ops are internal: built as their activations' backward rules build them,
 * (first, grad) with first = x or y. */
static dg_node *build_fused(dg_graph *g, dg_op_id op, dg_node *const *in, float slope)
{
    struct dg_scalar_attrs attrs = {.value = slope};
    return dg__make_node(g, op, 2, in, &attrs);
}

static dg_node *build_relu_grad(dg_graph *g, dg_node *const *in)
{
    return build_fused(g, DG_OP_relu_grad, in, 0.0f);
}

static dg_node *build_leaky_relu_grad(dg_graph *g, dg_node *const *in)
{
    return build_fused(g, DG_OP_leaky_relu_grad, in, 0.1f);
}

static dg_node *build_sigmoid_grad(dg_graph *g, dg_node *const *in)
{
    return build_fused(g, DG_OP_sigmoid_grad, in, 0.0f);
}

static dg_node *build_tanh_grad(dg_graph *g, dg_node *const *in)
{
    return build_fused(g, DG_OP_tanh_grad, in, 0.0f);
}

static dg_node *build_gelu_grad(dg_graph *g, dg_node *const *in)
{
    return build_fused(g, DG_OP_gelu_grad, in, 0.0f);
}

const struct dg_op_case dg_cases_activation[] = {
    {.name = "relu_basic", .op = "relu", .build = build_relu},
    {.name = "relu_batched", .op = "relu", .build = build_relu},
    {.name = "relu_grad_basic", .op = "relu_grad", .build = build_relu_grad},
    {.name = "leaky_relu_basic", .op = "leaky_relu", .build = build_leaky_basic},
    {.name = "leaky_relu_steep", .op = "leaky_relu", .build = build_leaky_steep},
    {.name = "leaky_relu_grad_basic", .op = "leaky_relu_grad", .build = build_leaky_relu_grad},
    {.name = "sigmoid_basic", .op = "sigmoid", .build = build_sigmoid},
    {.name = "sigmoid_wide", .op = "sigmoid", .build = build_sigmoid,
     .gradcheck_tol = WIDE_GRADCHECK_TOL},
    {.name = "sigmoid_extreme", .op = "sigmoid", .build = build_sigmoid},
    {.name = "sigmoid_grad_basic", .op = "sigmoid_grad", .build = build_sigmoid_grad},
    {.name = "tanh_basic", .op = "tanh", .build = build_tanh},
    {.name = "tanh_wide", .op = "tanh", .build = build_tanh, .gradcheck_tol = WIDE_GRADCHECK_TOL},
    {.name = "tanh_grad_basic", .op = "tanh_grad", .build = build_tanh_grad},
    {.name = "gelu_basic", .op = "gelu", .build = build_gelu},
    {.name = "gelu_tails", .op = "gelu", .build = build_gelu},
    {.name = "gelu_grad_basic", .op = "gelu_grad", .build = build_gelu_grad},
    {.name = "softplus_basic", .op = "softplus", .build = build_softplus},
    {.name = "softplus_wide", .op = "softplus", .build = build_softplus,
     .gradcheck_tol = WIDE_GRADCHECK_TOL},
    {0},
};
