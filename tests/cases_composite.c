/*
 * Composite networks checked end to end against PyTorch (tests/gen/cases_composite.py): the
 * op rows test each op alone; these test how the backward rules compose — gradient
 * accumulation under heavy fan-out, broadcasting inside a network, a fused loss at the end.
 */
#include <math.h>

#include "op_cases.h"

/* MLP with softmax cross-entropy: in0 x [8,12], in1 w1 [12,16], in2 b1 [16], in3 w2 [16,5],
 * in4 b2 [5], in5 labels int32 [8]. */
static dg_node *build_mlp_xent(dg_graph *g, dg_node *const *in)
{
    dg_node *h = dg_relu(g, dg_add(g, dg_matmul(g, in[0], in[1]), in[2]));
    dg_node *logits = dg_add(g, dg_matmul(g, h, in[3]), in[4]);
    return dg_softmax_cross_entropy(g, logits, in[5]);
}

/* Heavy fan-out: x [4,5] and y [5] are each read many times.
 * f = (x*y + x) * tanh(x) - sum(x*x, axis 1, keepdims) + exp(y) * x / (1 + x*x) */
static dg_node *build_fanout(dg_graph *g, dg_node *const *in)
{
    dg_node *x = in[0], *y = in[1];
    dg_node *a = dg_mul(g, dg_add(g, dg_mul(g, x, y), x), dg_tanh(g, x));
    dg_node *b = dg_sum(g, dg_mul(g, x, x), 1, (int[]){1}, true);
    dg_node *c = dg_div(g, dg_mul(g, dg_exp(g, y), x), dg_add_scalar(g, dg_square(g, x), 1.0f));
    return dg_add(g, dg_sub(g, a, b), c);
}

/* Scaled dot-product attention: q [2,3,4], k [2,5,4], v [2,5,6]. */
static dg_node *build_attention(dg_graph *g, dg_node *const *in)
{
    dg_node *scores = dg_scale(g, dg_matmul_ex(g, in[0], in[1], false, true), 0.5f);
    return dg_matmul(g, dg_softmax(g, scores, -1), in[2]);
}

/* A residual block with a gelu MLP and a mean-squared loss against a target:
 * in0 x [6,8], in1 w [8,8], in2 b [8], in3 target [6,8]. */
static dg_node *build_residual_mse(dg_graph *g, dg_node *const *in)
{
    dg_node *h = dg_gelu(g, dg_add(g, dg_matmul(g, in[0], in[1]), in[2]));
    return dg_mse_loss(g, dg_add(g, in[0], h), in[3]);
}

const struct dg_op_case dg_cases_composite[] = {
    /* A finite-difference step on w1 can move a hidden unit across relu's kink (the step
     * scales with |w|, the pre-activation with |x|): a looser finite-difference tolerance
     * here; the PyTorch fixture still checks every gradient at 1e-5. */
    {.name = "composite_mlp_xent", .op = "softmax_cross_entropy", .build = build_mlp_xent,
     .gradcheck_tol = 3e-2},
    {.name = "composite_fanout", .op = "mul", .build = build_fanout},
    {.name = "composite_attention", .op = "softmax", .build = build_attention},
    {.name = "composite_residual_mse", .op = "mse_loss", .build = build_residual_mse},
    {0},
};
