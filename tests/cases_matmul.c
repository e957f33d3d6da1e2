/*
 * Op cases for matmul (src/ops/matmul.c). The PyTorch side of each row, with the same name, is
 * in tests/gen/cases_matmul.py; see op_cases.h for how rows are checked. Every transpose
 * combination is covered plain, batched and batch-broadcast, so each of the four backward
 * rules is checked against PyTorch and by finite differences.
 */
#include "op_cases.h"

static dg_node *build_nn(dg_graph *g, dg_node *const *in)
{
    return dg_matmul(g, in[0], in[1]);
}

static dg_node *build_tn(dg_graph *g, dg_node *const *in)
{
    return dg_matmul_ex(g, in[0], in[1], true, false);
}

static dg_node *build_nt(dg_graph *g, dg_node *const *in)
{
    return dg_matmul_ex(g, in[0], in[1], false, true);
}

static dg_node *build_tt(dg_graph *g, dg_node *const *in)
{
    return dg_matmul_ex(g, in[0], in[1], true, true);
}

const struct dg_op_case dg_cases_matmul[] = {
    {.name = "matmul_nn", .op = "matmul", .build = build_nn},
    {.name = "matmul_tn", .op = "matmul", .build = build_tn},
    {.name = "matmul_nt", .op = "matmul", .build = build_nt},
    {.name = "matmul_tt", .op = "matmul", .build = build_tt},
    {.name = "matmul_odd", .op = "matmul", .build = build_nn},
    {.name = "matmul_odd_tt", .op = "matmul", .build = build_tt},
    {.name = "matmul_outer", .op = "matmul", .build = build_nn},
    {.name = "matmul_dot", .op = "matmul", .build = build_nn},
    {.name = "matmul_batched", .op = "matmul", .build = build_nn},
    {.name = "matmul_batched_tn", .op = "matmul", .build = build_tn},
    {.name = "matmul_batched_nt", .op = "matmul", .build = build_nt},
    {.name = "matmul_batched_tt", .op = "matmul", .build = build_tt},
    {.name = "matmul_bcast_rhs", .op = "matmul", .build = build_nn},
    {.name = "matmul_bcast_rhs_tb", .op = "matmul", .build = build_nt},
    {.name = "matmul_bcast_rhs_ta", .op = "matmul", .build = build_tn},
    {.name = "matmul_bcast_rhs_4d", .op = "matmul", .build = build_nn},
    {.name = "matmul_bcast_rhs_4d_tb", .op = "matmul", .build = build_nt},
    {.name = "matmul_bcast_lhs", .op = "matmul", .build = build_nn},
    {.name = "matmul_bcast_size1", .op = "matmul", .build = build_nn},
    {.name = "matmul_bcast_general", .op = "matmul", .build = build_nn},
    {.name = "matmul_bcast_general_tt", .op = "matmul", .build = build_tt},
    {.name = "matmul_large", .op = "matmul", .build = build_nn, .fixture_tol = 1e-4},
    {0},
};
