/*
 * Op cases for layer and group normalisation (src/ops/norm.c). The PyTorch side of each row,
 * with the same name, is in tests/gen/cases_norm.py; see op_cases.h for how rows are checked.
 */
#include "op.h"
#include "op_cases.h"

static dg_node *affine(dg_graph *g, dg_node *const *in, int i)
{
    return dg__find_name(g, "in1") != NULL ? in[i] : NULL;
}

static dg_node *build_layer1(dg_graph *g, dg_node *const *in)
{
    return dg_layer_norm(g, in[0], affine(g, in, 1), affine(g, in, 2), 1, 1e-5f);
}
static dg_node *build_layer2(dg_graph *g, dg_node *const *in)
{
    return dg_layer_norm(g, in[0], affine(g, in, 1), affine(g, in, 2), 2, 1e-5f);
}
static dg_node *build_group2(dg_graph *g, dg_node *const *in)
{
    return dg_group_norm(g, in[0], 2, affine(g, in, 1), affine(g, in, 2), 1e-5f);
}
static dg_node *build_group1(dg_graph *g, dg_node *const *in)
{
    return dg_group_norm(g, in[0], 1, affine(g, in, 1), affine(g, in, 2), 1e-5f);
}
static dg_node *build_group3(dg_graph *g, dg_node *const *in)
{
    return dg_group_norm(g, in[0], 3, affine(g, in, 1), affine(g, in, 2), 1e-5f);
}

/* layer norm's fused gradients: x, grad [, gamma] */
static dg_node *build_ln_grad(dg_graph *g, dg_node *const *in, int n_axes, int op)
{
    struct {
        int64_t n_axes, groups;
        float eps;
    } attrs = {n_axes, 0, 1e-5f};
    int n = dg__find_name(g, "in2") != NULL ? 3 : 2;
    return dg__make_node(g, op, n, in, &attrs);
}
static dg_node *build_ln_grad1(dg_graph *g, dg_node *const *in)
{
    return build_ln_grad(g, in, 1, DG_OP_layer_norm_grad);
}
static dg_node *build_ln_grad2(dg_graph *g, dg_node *const *in)
{
    return build_ln_grad(g, in, 2, DG_OP_layer_norm_grad);
}
static dg_node *build_ln_gamma_grad1(dg_graph *g, dg_node *const *in)
{
    return build_ln_grad(g, in, 1, DG_OP_layer_norm_gamma_grad);
}
static dg_node *build_ln_gamma_grad2(dg_graph *g, dg_node *const *in)
{
    return build_ln_grad(g, in, 2, DG_OP_layer_norm_gamma_grad);
}

/* batch_norm on fed inputs (the public constructor wants constants for the running
 * statistics; the op itself reads whatever it is given): x, mean, var, key [, gamma, beta] */
static dg_node *build_batch_norm(dg_graph *g, dg_node *const *in)
{
    struct {
        float momentum, eps;
    } attrs = {0.1f, 1e-5f};
    int n = dg__find_name(g, "in4") != NULL ? 6 : 4;
    return dg__make_node(g, DG_OP_batch_norm, n, in, &attrs);
}
/* the fused gradients: x, mean, var, key, grad [, gamma] */
static dg_node *build_bn_grad(dg_graph *g, dg_node *const *in)
{
    struct {
        float momentum, eps;
    } attrs = {0.0f, 1e-5f};
    int n = dg__find_name(g, "in5") != NULL ? 6 : 5;
    return dg__make_node(g, DG_OP_batch_norm_grad, n, in, &attrs);
}
static dg_node *build_bn_gamma_grad(dg_graph *g, dg_node *const *in)
{
    struct {
        float momentum, eps;
    } attrs = {0.0f, 1e-5f};
    return dg__make_node(g, DG_OP_batch_norm_gamma_grad, 5, in, &attrs);
}
static dg_node *build_mode(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_batch_norm_mode, 1, in, NULL);
}

const struct dg_op_case dg_cases_norm[] = {
    {.name = "batch_norm_train", .op = "batch_norm", .build = build_batch_norm},
    {.name = "batch_norm_train_plain", .op = "batch_norm", .build = build_batch_norm},
    {.name = "batch_norm_eval", .op = "batch_norm", .build = build_batch_norm},
    {.name = "bn_grad_train", .op = "batch_norm_grad", .build = build_bn_grad},
    {.name = "bn_grad_train_plain", .op = "batch_norm_grad", .build = build_bn_grad},
    {.name = "bn_grad_eval", .op = "batch_norm_grad", .build = build_bn_grad},
    /* values near 50 with a spread of 2: centred sums */
    {.name = "bn_grad_offset", .op = "batch_norm_grad", .build = build_bn_grad},
    {.name = "bn_gamma_grad_train", .op = "batch_norm_gamma_grad", .build = build_bn_gamma_grad},
    {.name = "bn_gamma_grad_eval", .op = "batch_norm_gamma_grad", .build = build_bn_gamma_grad},
    {.name = "batch_norm_mode_train", .op = "batch_norm_mode", .build = build_mode,
     .forward_only = true},
    {.name = "batch_norm_mode_eval", .op = "batch_norm_mode", .build = build_mode,
     .forward_only = true},
    {.name = "layer_norm_last", .op = "layer_norm", .build = build_layer1},
    {.name = "layer_norm_two_axes", .op = "layer_norm", .build = build_layer2},
    {.name = "layer_norm_plain", .op = "layer_norm", .build = build_layer1},
    /* values near 92 with a spread of 4: the default tolerance holds (mean subtracted first) */
    {.name = "layer_norm_offset", .op = "layer_norm", .build = build_layer1},
    {.name = "ln_grad_last", .op = "layer_norm_grad", .build = build_ln_grad1},
    {.name = "ln_grad_two_axes", .op = "layer_norm_grad", .build = build_ln_grad2},
    {.name = "ln_grad_plain", .op = "layer_norm_grad", .build = build_ln_grad1},
    {.name = "ln_grad_offset", .op = "layer_norm_grad", .build = build_ln_grad1},
    {.name = "ln_gamma_grad_last", .op = "layer_norm_gamma_grad", .build = build_ln_gamma_grad1},
    {.name = "ln_gamma_grad_two_axes", .op = "layer_norm_gamma_grad",
     .build = build_ln_gamma_grad2},
    /* every axis normalised: a single row */
    {.name = "ln_gamma_grad_all", .op = "layer_norm_gamma_grad", .build = build_ln_gamma_grad2},
    {.name = "group_norm_basic", .op = "group_norm", .build = build_group2},
    {.name = "group_norm_one_group", .op = "group_norm", .build = build_group1},
    {.name = "group_norm_instance", .op = "group_norm", .build = build_group3},
    {.name = "group_norm_plain", .op = "group_norm", .build = build_group2},
    {0},
};
