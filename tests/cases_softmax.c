/*
 * Op cases for softmax and log_softmax (src/ops/softmax.c): the last axis (contiguous rows),
 * a leading and a middle axis (strided columns), negative axes, a 1-D input, a row of one,
 * wide rows (more than one column tile), and logits offset by 1000 (the max subtraction).
 * The PyTorch side of each row, with the same name, is in tests/gen/cases_softmax.py.
 */
#include "op_cases.h"

static dg_node *build_softmax_last(dg_graph *g, dg_node *const *in) { return dg_softmax(g, in[0], 1); }
static dg_node *build_softmax_neg1(dg_graph *g, dg_node *const *in) { return dg_softmax(g, in[0], -1); }
static dg_node *build_softmax_axis0(dg_graph *g, dg_node *const *in) { return dg_softmax(g, in[0], 0); }
static dg_node *build_softmax_mid(dg_graph *g, dg_node *const *in) { return dg_softmax(g, in[0], -2); }
static dg_node *build_log_softmax_last(dg_graph *g, dg_node *const *in) { return dg_log_softmax(g, in[0], 1); }
static dg_node *build_log_softmax_neg1(dg_graph *g, dg_node *const *in) { return dg_log_softmax(g, in[0], -1); }
static dg_node *build_log_softmax_axis0(dg_graph *g, dg_node *const *in) { return dg_log_softmax(g, in[0], 0); }
static dg_node *build_log_softmax_mid(dg_graph *g, dg_node *const *in) { return dg_log_softmax(g, in[0], 1); }

const struct dg_op_case dg_cases_softmax[] = {
    {.name = "softmax_last", .op = "softmax", .build = build_softmax_last},
    {.name = "softmax_1d", .op = "softmax", .build = build_softmax_neg1},
    {.name = "softmax_axis0", .op = "softmax", .build = build_softmax_axis0},
    {.name = "softmax_mid", .op = "softmax", .build = build_softmax_mid},
    {.name = "softmax_single", .op = "softmax", .build = build_softmax_neg1},
    {.name = "softmax_wide", .op = "softmax", .build = build_softmax_neg1},
    {.name = "softmax_wide_axis0", .op = "softmax", .build = build_softmax_axis0},
    /* Inputs near 1000 are float32 with a 6e-5 spacing, so the checker's perturbed inputs
     * (step 1e-2) are off by up to 0.6% of the step: the numeric side is that rough. The
     * analytic gradient matches PyTorch to the fixture tolerance. */
    {.name = "softmax_offset", .op = "softmax", .build = build_softmax_last,
     .gradcheck_tol = 3e-2},
    {.name = "softmax_spread", .op = "softmax", .build = build_softmax_last},
    {.name = "log_softmax_last", .op = "log_softmax", .build = build_log_softmax_last},
    {.name = "log_softmax_1d", .op = "log_softmax", .build = build_log_softmax_neg1},
    {.name = "log_softmax_axis0", .op = "log_softmax", .build = build_log_softmax_axis0},
    {.name = "log_softmax_mid", .op = "log_softmax", .build = build_log_softmax_mid},
    {.name = "log_softmax_wide", .op = "log_softmax", .build = build_log_softmax_neg1},
    /* x near 1000: the checker's relative step (h = 1e-2 * |x| = 10, then 1) is far beyond
     * log_softmax's curvature scale (~1), so the stencil's truncation error reaches ~10%;
     * the loss-scaled tolerance of old hid that, the gradient-scaled one does not */
    {.name = "log_softmax_offset", .op = "log_softmax", .build = build_log_softmax_last,
     .gradcheck_tol = 0.2},
    {.name = "log_softmax_spread", .op = "log_softmax", .build = build_log_softmax_last},
    {0},
};
