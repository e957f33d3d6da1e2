/*
 * Op cases for the binary elementwise family (src/ops/binary.c) and the comparison masks
 * (src/ops/compare.c). The PyTorch side of each row, with the same name, is in
 * tests/gen/cases_binary.py; see op_cases.h for how rows are checked. Every arithmetic op runs
 * on the same broadcast patterns: equal shapes, a row vector, a column, a scalar, both sides
 * stretched, a missing leading axis, size-1 axes, and a broadcast first operand.
 */
#include "op.h"
#include "op_cases.h"

static dg_node *build_add(dg_graph *g, dg_node *const *in) { return dg_add(g, in[0], in[1]); }
static dg_node *build_sub(dg_graph *g, dg_node *const *in) { return dg_sub(g, in[0], in[1]); }
static dg_node *build_mul(dg_graph *g, dg_node *const *in) { return dg_mul(g, in[0], in[1]); }
static dg_node *build_div(dg_graph *g, dg_node *const *in) { return dg_div(g, in[0], in[1]); }
static dg_node *build_maximum(dg_graph *g, dg_node *const *in) { return dg_maximum(g, in[0], in[1]); }
static dg_node *build_minimum(dg_graph *g, dg_node *const *in) { return dg_minimum(g, in[0], in[1]); }

static dg_node *build_add_n3(dg_graph *g, dg_node *const *in) { return dg_add_n(g, 3, in); }
static dg_node *build_add_n1(dg_graph *g, dg_node *const *in) { return dg_add_n(g, 1, in); }
static dg_node *build_add_n5(dg_graph *g, dg_node *const *in) { return dg_add_n(g, 5, in); }

/* equal and greater are internal (the backward of maximum, minimum and max). */
static dg_node *build_equal(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_equal, 2, in, NULL);
}

static dg_node *build_greater(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_greater, 2, in, NULL);
}

const struct dg_op_case dg_cases_binary[] = {
    {.name = "add_same", .op = "add", .build = build_add},
    {.name = "add_row", .op = "add", .build = build_add},
    {.name = "add_col", .op = "add", .build = build_add},
    {.name = "add_scalar", .op = "add", .build = build_add},
    {.name = "add_both", .op = "add", .build = build_add},
    {.name = "add_leading", .op = "add", .build = build_add},
    {.name = "add_size1", .op = "add", .build = build_add},
    {.name = "add_lhs_bcast", .op = "add", .build = build_add},
    {.name = "sub_same", .op = "sub", .build = build_sub},
    {.name = "sub_row", .op = "sub", .build = build_sub},
    {.name = "sub_col", .op = "sub", .build = build_sub},
    {.name = "sub_scalar", .op = "sub", .build = build_sub},
    {.name = "sub_both", .op = "sub", .build = build_sub},
    {.name = "sub_leading", .op = "sub", .build = build_sub},
    {.name = "sub_size1", .op = "sub", .build = build_sub},
    {.name = "sub_lhs_bcast", .op = "sub", .build = build_sub},
    {.name = "mul_same", .op = "mul", .build = build_mul},
    {.name = "mul_row", .op = "mul", .build = build_mul},
    {.name = "mul_col", .op = "mul", .build = build_mul},
    {.name = "mul_scalar", .op = "mul", .build = build_mul},
    {.name = "mul_both", .op = "mul", .build = build_mul},
    {.name = "mul_leading", .op = "mul", .build = build_mul},
    {.name = "mul_size1", .op = "mul", .build = build_mul},
    {.name = "mul_lhs_bcast", .op = "mul", .build = build_mul},
    {.name = "div_same", .op = "div", .build = build_div},
    {.name = "div_row", .op = "div", .build = build_div},
    {.name = "div_col", .op = "div", .build = build_div},
    {.name = "div_scalar", .op = "div", .build = build_div},
    {.name = "div_both", .op = "div", .build = build_div},
    {.name = "div_leading", .op = "div", .build = build_div},
    {.name = "div_size1", .op = "div", .build = build_div},
    {.name = "div_lhs_bcast", .op = "div", .build = build_div},
    {.name = "maximum_same", .op = "maximum", .build = build_maximum},
    {.name = "maximum_row", .op = "maximum", .build = build_maximum},
    {.name = "maximum_col", .op = "maximum", .build = build_maximum},
    {.name = "maximum_scalar", .op = "maximum", .build = build_maximum},
    {.name = "maximum_both", .op = "maximum", .build = build_maximum},
    {.name = "maximum_leading", .op = "maximum", .build = build_maximum},
    {.name = "maximum_size1", .op = "maximum", .build = build_maximum},
    {.name = "maximum_lhs_bcast", .op = "maximum", .build = build_maximum},
    {.name = "minimum_same", .op = "minimum", .build = build_minimum},
    {.name = "minimum_row", .op = "minimum", .build = build_minimum},
    {.name = "minimum_col", .op = "minimum", .build = build_minimum},
    {.name = "minimum_scalar", .op = "minimum", .build = build_minimum},
    {.name = "minimum_both", .op = "minimum", .build = build_minimum},
    {.name = "minimum_leading", .op = "minimum", .build = build_minimum},
    {.name = "minimum_size1", .op = "minimum", .build = build_minimum},
    {.name = "minimum_lhs_bcast", .op = "minimum", .build = build_minimum},
    {.name = "mul_large", .op = "mul", .build = build_mul},
    {.name = "div_small_quotient", .op = "div", .build = build_div},
    {.name = "add_n_three", .op = "add_n", .build = build_add_n3},
    {.name = "add_n_one", .op = "add_n", .build = build_add_n1},
    {.name = "add_n_five", .op = "add_n", .build = build_add_n5},
    {.name = "equal_ties", .op = "equal", .build = build_equal, .forward_only = true},
    {.name = "equal_random", .op = "equal", .build = build_equal, .forward_only = true},
    {.name = "greater_bcast", .op = "greater", .build = build_greater, .forward_only = true},
    {.name = "greater_ties", .op = "greater", .build = build_greater, .forward_only = true},
    {0},
};
