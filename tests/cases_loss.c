/*
 * Op cases for the losses (src/ops/loss.c): softmax cross-entropy with ignored labels (negative
 * and >= C), extreme logits, an all-ignored batch and a single class; its fused gradient and
 * the row weights that gradient's own backward uses; bce with soft and hard targets;
 * bce_with_logits with large |z|; mse, l1 (away from its kink at a == b) and huber (away from
 * |a-b| == delta) with two deltas. The PyTorch side of each row, with the same name, is in
 * tests/gen/cases_loss.py.
 */
#include "op.h"
#include "op_cases.h"

static dg_node *build_sce(dg_graph *g, dg_node *const *in)
{
    return dg_softmax_cross_entropy(g, in[0], in[1]);
}

static dg_node *build_sce_grad(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_softmax_cross_entropy_grad, 3, in, NULL);
}

static dg_node *build_ce_row_weights(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_ce_row_weights, 2, in, NULL);
}

static dg_node *build_bce(dg_graph *g, dg_node *const *in) { return dg_bce(g, in[0], in[1]); }

static dg_node *build_bce_with_logits(dg_graph *g, dg_node *const *in)
{
    return dg_bce_with_logits(g, in[0], in[1]);
}

static dg_node *build_mse(dg_graph *g, dg_node *const *in) { return dg_mse_loss(g, in[0], in[1]); }
static dg_node *build_l1(dg_graph *g, dg_node *const *in) { return dg_l1_loss(g, in[0], in[1]); }

static dg_node *build_huber1(dg_graph *g, dg_node *const *in)
{
    return dg_huber_loss(g, in[0], in[1], 1.0f);
}

static dg_node *build_huber2(dg_graph *g, dg_node *const *in)
{
    return dg_huber_loss(g, in[0], in[1], 2.0f);
}

const struct dg_op_case dg_cases_loss[] = {
    {.name = "sce_basic", .op = "softmax_cross_entropy", .build = build_sce},
    {.name = "sce_ignore", .op = "softmax_cross_entropy", .build = build_sce},
    {.name = "sce_extreme", .op = "softmax_cross_entropy", .build = build_sce},
    {.name = "sce_all_ignored", .op = "softmax_cross_entropy", .build = build_sce},
    {.name = "sce_one_class", .op = "softmax_cross_entropy", .build = build_sce},
    {.name = "sce_wide", .op = "softmax_cross_entropy", .build = build_sce},
    {.name = "sce_seq", .op = "softmax_cross_entropy", .build = build_sce},
    {.name = "sce_seq4", .op = "softmax_cross_entropy", .build = build_sce},
    {.name = "sce_grad_seq", .op = "softmax_cross_entropy_grad", .build = build_sce_grad},
    {.name = "sce_grad_basic", .op = "softmax_cross_entropy_grad", .build = build_sce_grad},
    {.name = "sce_grad_ignore", .op = "softmax_cross_entropy_grad", .build = build_sce_grad},
    {.name = "ce_row_weights_basic", .op = "ce_row_weights", .build = build_ce_row_weights,
     .forward_only = true},
    {.name = "ce_row_weights_seq", .op = "ce_row_weights", .build = build_ce_row_weights,
     .forward_only = true},
    {.name = "bce_soft", .op = "bce", .build = build_bce},
    {.name = "bce_hard", .op = "bce", .build = build_bce},
    {.name = "bce_with_logits_basic", .op = "bce_with_logits", .build = build_bce_with_logits},
    {.name = "bce_with_logits_large", .op = "bce_with_logits", .build = build_bce_with_logits},
    {.name = "mse_basic", .op = "mse_loss", .build = build_mse},
    {.name = "mse_1d", .op = "mse_loss", .build = build_mse},
    {.name = "l1_basic", .op = "l1_loss", .build = build_l1},
    {.name = "l1_3d", .op = "l1_loss", .build = build_l1},
    {.name = "huber_delta1", .op = "huber_loss", .build = build_huber1},
    {.name = "huber_delta2", .op = "huber_loss", .build = build_huber2},
    {0},
};
