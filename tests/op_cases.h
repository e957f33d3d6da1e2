/*
 * The op test table. Every registered op has at least one case; each case is checked
 *   - forward and backward against PyTorch (tests/test_fixtures.c): inputs, output and
 *     input gradients come from tests/fixtures/ops_<family>.dgfx, written by
 *     tests/gen/gen_ops.py from tests/gen/cases_<family>.py (same case names);
 *   - by central finite differences (tests/test_gradcheck.c) on the fixture's inputs.
 * test_fixtures.c fails when a registered op has no case, or a case has no fixture.
 *
 * A case's graph: the fixture's inputs become graph inputs named "in0", "in1", ... (float32
 * or int32 as stored), `build` applies the op, and the loss is sum(out * upstream) with the
 * fixture's "upstream" tensor, so the gradients are those of a generic upstream gradient.
 */
#ifndef DG_OP_CASES_H
#define DG_OP_CASES_H

#include <stdbool.h>

#include "dagrad.h"

struct dg_op_case {
    const char *name;   /* unique; fixture records are "<name>/in0", "<name>/out", ... */
    const char *op;     /* the registry name this case covers ("add", "sum_to", ...) */
    /* Builds the op under test from the inputs (n = number of fixture inputs). */
    dg_node *(*build)(dg_graph *g, dg_node *const *inputs);
    /* Tolerances versus PyTorch (float64 reference rounded to float32): relative error with
     * a floor, |dg - ref| <= tol * max(|ref|, 1). 0 means the default 1e-5. */
    double fixture_tol;
    /* Finite-difference tolerance: 0 means the default of test_gradcheck.c. */
    double gradcheck_tol;
    /* Ops whose gradient is zero almost everywhere or not defined (masks): forward only. */
    bool forward_only;
};

/* One table per family file (tests/cases_<family>.c), each ending with a {0} sentinel. */
extern const struct dg_op_case dg_cases_binary[];
extern const struct dg_op_case dg_cases_unary[];
extern const struct dg_op_case dg_cases_activation[];
extern const struct dg_op_case dg_cases_matmul[];
extern const struct dg_op_case dg_cases_reduce[];
extern const struct dg_op_case dg_cases_layout[];
extern const struct dg_op_case dg_cases_softmax[];
extern const struct dg_op_case dg_cases_loss[];
extern const struct dg_op_case dg_cases_nn[];
extern const struct dg_op_case dg_cases_composite[];
extern const struct dg_op_case dg_cases_conv[];
extern const struct dg_op_case dg_cases_pool[];
extern const struct dg_op_case dg_cases_norm[];
extern const struct dg_op_case dg_cases_pad[];
extern const struct dg_op_case dg_cases_seq[];

/* All families, with the fixture file each one's cases live in. */
struct dg_op_case_family {
    const char *fixture;            /* "ops_binary.dgfx" */
    const struct dg_op_case *cases;
};
extern const struct dg_op_case_family dg_op_case_families[];
extern const int dg_op_case_family_count;

#endif
