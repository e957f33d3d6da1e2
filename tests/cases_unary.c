/*
 * Op cases for the unary math family (src/ops/unary_math.c). The PyTorch side of each row, with
 * the same name, is in tests/gen/cases_unary.py; see op_cases.h for how rows are checked.
 */
#include "op.h"
#include "op_cases.h"

/* Loosened finite-difference tolerance for cases whose outputs span a wide range, where
 * float32 differences of the summed loss lose digits. */
#define WIDE_GRADCHECK_TOL 2e-2

static dg_node *build_neg(dg_graph *g, dg_node *const *in) { return dg_neg(g, in[0]); }
static dg_node *build_abs(dg_graph *g, dg_node *const *in) { return dg_abs(g, in[0]); }
static dg_node *build_exp(dg_graph *g, dg_node *const *in) { return dg_exp(g, in[0]); }
static dg_node *build_log(dg_graph *g, dg_node *const *in) { return dg_log(g, in[0]); }
static dg_node *build_sqrt(dg_graph *g, dg_node *const *in) { return dg_sqrt(g, in[0]); }
static dg_node *build_square(dg_graph *g, dg_node *const *in) { return dg_square(g, in[0]); }

/* sign is internal (abs's backward): no public constructor. */
static dg_node *build_sign(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_sign, 1, in, NULL);
}

static dg_node *build_pow_int3(dg_graph *g, dg_node *const *in) { return dg_pow_scalar(g, in[0], 3.0f); }
static dg_node *build_pow_two(dg_graph *g, dg_node *const *in) { return dg_pow_scalar(g, in[0], 2.0f); }
static dg_node *build_pow_half(dg_graph *g, dg_node *const *in) { return dg_pow_scalar(g, in[0], 0.5f); }
static dg_node *build_pow_frac(dg_graph *g, dg_node *const *in) { return dg_pow_scalar(g, in[0], 2.5f); }
static dg_node *build_pow_neg(dg_graph *g, dg_node *const *in) { return dg_pow_scalar(g, in[0], -1.5f); }
static dg_node *build_pow_one(dg_graph *g, dg_node *const *in) { return dg_pow_scalar(g, in[0], 1.0f); }
static dg_node *build_pow_zero(dg_graph *g, dg_node *const *in) { return dg_pow_scalar(g, in[0], 0.0f); }

static dg_node *build_scale_basic(dg_graph *g, dg_node *const *in) { return dg_scale(g, in[0], -2.5f); }
static dg_node *build_scale_batched(dg_graph *g, dg_node *const *in) { return dg_scale(g, in[0], 0.125f); }
static dg_node *build_add_scalar_basic(dg_graph *g, dg_node *const *in) { return dg_add_scalar(g, in[0], 0.75f); }
static dg_node *build_add_scalar_neg(dg_graph *g, dg_node *const *in) { return dg_add_scalar(g, in[0], -3.0f); }

const struct dg_op_case dg_cases_unary[] = {
    {.name = "neg_basic", .op = "neg", .build = build_neg},
    {.name = "neg_batched", .op = "neg", .build = build_neg},
    {.name = "abs_basic", .op = "abs", .build = build_abs},
    {.name = "abs_values", .op = "abs", .build = build_abs},
    {.name = "sign_basic", .op = "sign", .build = build_sign},
    {.name = "exp_basic", .op = "exp", .build = build_exp},
    {.name = "exp_large", .op = "exp", .build = build_exp, .gradcheck_tol = WIDE_GRADCHECK_TOL},
    {.name = "exp_tiny", .op = "exp", .build = build_exp},
    {.name = "log_basic", .op = "log", .build = build_log},
    {.name = "log_small", .op = "log", .build = build_log},
    {.name = "log_large", .op = "log", .build = build_log, .gradcheck_tol = WIDE_GRADCHECK_TOL},
    {.name = "sqrt_basic", .op = "sqrt", .build = build_sqrt},
    {.name = "square_basic", .op = "square", .build = build_square},
    {.name = "pow_scalar_int3", .op = "pow_scalar", .build = build_pow_int3},
    {.name = "pow_scalar_two", .op = "pow_scalar", .build = build_pow_two},
    {.name = "pow_scalar_half", .op = "pow_scalar", .build = build_pow_half},
    {.name = "pow_scalar_frac", .op = "pow_scalar", .build = build_pow_frac},
    {.name = "pow_scalar_neg", .op = "pow_scalar", .build = build_pow_neg},
    {.name = "pow_scalar_one", .op = "pow_scalar", .build = build_pow_one},
    {.name = "pow_scalar_zero", .op = "pow_scalar", .build = build_pow_zero},
    {.name = "scale_basic", .op = "scale", .build = build_scale_basic},
    {.name = "scale_batched", .op = "scale", .build = build_scale_batched},
    {.name = "add_scalar_basic", .op = "add_scalar", .build = build_add_scalar_basic},
    {.name = "add_scalar_neg", .op = "add_scalar", .build = build_add_scalar_neg},
    {0},
};
