/*
 * Op cases for the reductions and their backward helpers (src/ops/reduce.c): sum, mean, max
 * over every axis pattern of a [2,3,4] (single axes, pairs, negative axes, all axes, keepdims),
 * the kernel paths (rows, columns, middle axis, general odometer, size-1 axes, a 0-d input),
 * and the internal ops sum_to, broadcast_like, expand_reduced and size_ratio. The PyTorch side
 * of each row, with the same name, is in tests/gen/cases_reduce.py; see op_cases.h.
 */
#include "op.h"
#include "reduce.h"
#include "op_cases.h"

#include <string.h>

static dg_node *build_sum_all(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 0, NULL, false);
}

static dg_node *build_sum_axis0(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 1, (const int[]){0}, false);
}

static dg_node *build_sum_axis1(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 1, (const int[]){1}, false);
}

static dg_node *build_sum_axis2(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 1, (const int[]){2}, false);
}

static dg_node *build_sum_axes01_keep(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 2, (const int[]){0, 1}, true);
}

static dg_node *build_sum_axes02(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 2, (const int[]){0, 2}, false);
}

static dg_node *build_sum_axes12_keep(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 2, (const int[]){1, 2}, true);
}

static dg_node *build_sum_neg_keep(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 1, (const int[]){-1}, true);
}

static dg_node *build_sum_neg_pair(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 2, (const int[]){-3, -1}, false);
}

static dg_node *build_sum_rows(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 1, (const int[]){1}, false);
}

static dg_node *build_sum_cols(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 1, (const int[]){0}, false);
}

static dg_node *build_sum_size1(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 1, (const int[]){1}, false);
}

static dg_node *build_sum_general(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 2, (const int[]){0, 2}, true);
}

static dg_node *build_sum_scalar(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 0, NULL, false);
}

static dg_node *build_sum_large(dg_graph *g, dg_node *const *in)
{
    return dg_sum(g, in[0], 1, (const int[]){1}, false);
}

static dg_node *build_mean_all(dg_graph *g, dg_node *const *in)
{
    return dg_mean(g, in[0], 0, NULL, false);
}

static dg_node *build_mean_axis0(dg_graph *g, dg_node *const *in)
{
    return dg_mean(g, in[0], 1, (const int[]){0}, false);
}

static dg_node *build_mean_axis1_keep(dg_graph *g, dg_node *const *in)
{
    return dg_mean(g, in[0], 1, (const int[]){1}, true);
}

static dg_node *build_mean_neg(dg_graph *g, dg_node *const *in)
{
    return dg_mean(g, in[0], 1, (const int[]){-1}, false);
}

static dg_node *build_mean_axes02_keep(dg_graph *g, dg_node *const *in)
{
    return dg_mean(g, in[0], 2, (const int[]){0, 2}, true);
}

static dg_node *build_mean_cols(dg_graph *g, dg_node *const *in)
{
    return dg_mean(g, in[0], 1, (const int[]){0}, false);
}

static dg_node *build_max_all(dg_graph *g, dg_node *const *in)
{
    return dg_max(g, in[0], 0, NULL, false);
}

static dg_node *build_max_axis0(dg_graph *g, dg_node *const *in)
{
    return dg_max(g, in[0], 1, (const int[]){0}, false);
}

static dg_node *build_max_axis1_keep(dg_graph *g, dg_node *const *in)
{
    return dg_max(g, in[0], 1, (const int[]){1}, true);
}

static dg_node *build_max_neg(dg_graph *g, dg_node *const *in)
{
    return dg_max(g, in[0], 1, (const int[]){-1}, false);
}

static dg_node *build_max_axes02(dg_graph *g, dg_node *const *in)
{
    return dg_max(g, in[0], 2, (const int[]){0, 2}, false);
}

static dg_node *build_max_rows(dg_graph *g, dg_node *const *in)
{
    return dg_max(g, in[0], 1, (const int[]){1}, false);
}

static dg_node *build_max_large(dg_graph *g, dg_node *const *in)
{
    return dg_max(g, in[0], 1, (const int[]){0}, true);
}

/* ---- internal ops ---------------------------------------------------------------------- */

static dg_node *build_sum_to(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_sum_to, 2, in, NULL);
}

static dg_node *build_broadcast_like(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_broadcast_like, 2, in, NULL);
}

static dg_node *build_size_ratio(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_size_ratio, 2, in, NULL);
}

static dg_node *expand_reduced(dg_graph *g, dg_node *const *in, uint32_t axes, bool keepdims)
{
    struct dg_reduce_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    attrs.axes = axes;
    attrs.keepdims = keepdims;
    return dg__make_node(g, DG_OP_expand_reduced, 2, in, &attrs);
}

/* [3] -> [2,3,4] over axes 0 and 2 */
static dg_node *build_expand_reduced_02(dg_graph *g, dg_node *const *in)
{
    return expand_reduced(g, in, (1u << 0) | (1u << 2), false);
}

/* [2,1,4] -> [2,3,4] over axis 1, keepdims */
static dg_node *build_expand_reduced_keep(dg_graph *g, dg_node *const *in)
{
    return expand_reduced(g, in, 1u << 1, true);
}

/* [] -> [2,3] over every axis (dg_grad's fill pattern) */
static dg_node *build_expand_reduced_all(dg_graph *g, dg_node *const *in)
{
    return expand_reduced(g, in, 3u, false);
}

/* [2,4] -> [2,3,4] over the middle axis */
static dg_node *build_expand_reduced_mid(dg_graph *g, dg_node *const *in)
{
    return expand_reduced(g, in, 1u << 1, false);
}

const struct dg_op_case dg_cases_reduce[] = {
    {.name = "sum_all", .op = "sum", .build = build_sum_all},
    {.name = "sum_axis0", .op = "sum", .build = build_sum_axis0},
    {.name = "sum_axis1", .op = "sum", .build = build_sum_axis1},
    {.name = "sum_axis2", .op = "sum", .build = build_sum_axis2},
    {.name = "sum_axes01_keep", .op = "sum", .build = build_sum_axes01_keep},
    {.name = "sum_axes02", .op = "sum", .build = build_sum_axes02},
    {.name = "sum_axes12_keep", .op = "sum", .build = build_sum_axes12_keep},
    {.name = "sum_neg_keep", .op = "sum", .build = build_sum_neg_keep},
    {.name = "sum_neg_pair", .op = "sum", .build = build_sum_neg_pair},
    {.name = "sum_rows", .op = "sum", .build = build_sum_rows},
    {.name = "sum_cols", .op = "sum", .build = build_sum_cols},
    {.name = "sum_size1", .op = "sum", .build = build_sum_size1},
    {.name = "sum_general", .op = "sum", .build = build_sum_general},
    {.name = "sum_scalar", .op = "sum", .build = build_sum_scalar},
    {.name = "sum_large", .op = "sum", .build = build_sum_large},
    {.name = "mean_all", .op = "mean", .build = build_mean_all},
    {.name = "mean_axis0", .op = "mean", .build = build_mean_axis0},
    {.name = "mean_axis1_keep", .op = "mean", .build = build_mean_axis1_keep},
    {.name = "mean_neg", .op = "mean", .build = build_mean_neg},
    {.name = "mean_axes02_keep", .op = "mean", .build = build_mean_axes02_keep},
    {.name = "mean_cols", .op = "mean", .build = build_mean_cols},
    {.name = "max_all", .op = "max", .build = build_max_all},
    {.name = "max_axis0", .op = "max", .build = build_max_axis0},
    {.name = "max_axis1_keep", .op = "max", .build = build_max_axis1_keep},
    {.name = "max_neg", .op = "max", .build = build_max_neg},
    {.name = "max_axes02", .op = "max", .build = build_max_axes02},
    {.name = "max_rows", .op = "max", .build = build_max_rows},
    {.name = "max_large", .op = "max", .build = build_max_large},
    {.name = "sum_to_leading", .op = "sum_to", .build = build_sum_to},
    {.name = "sum_to_size1", .op = "sum_to", .build = build_sum_to},
    {.name = "sum_to_mixed", .op = "sum_to", .build = build_sum_to},
    {.name = "sum_to_scalar", .op = "sum_to", .build = build_sum_to},
    {.name = "sum_to_same", .op = "sum_to", .build = build_sum_to},
    {.name = "broadcast_like_row", .op = "broadcast_like", .build = build_broadcast_like},
    {.name = "broadcast_like_col", .op = "broadcast_like", .build = build_broadcast_like},
    {.name = "broadcast_like_scalar", .op = "broadcast_like", .build = build_broadcast_like},
    {.name = "expand_reduced_02", .op = "expand_reduced", .build = build_expand_reduced_02},
    {.name = "expand_reduced_keep", .op = "expand_reduced", .build = build_expand_reduced_keep},
    {.name = "expand_reduced_all", .op = "expand_reduced", .build = build_expand_reduced_all},
    {.name = "expand_reduced_mid", .op = "expand_reduced", .build = build_expand_reduced_mid},
    {.name = "size_ratio_basic", .op = "size_ratio", .build = build_size_ratio,
     .forward_only = true},
    {.name = "size_ratio_scalar", .op = "size_ratio", .build = build_size_ratio,
     .forward_only = true},
    {0},
};
