/*
 * The graph of one op case (op_cases.h) on its fixture's data: shared by test_fixtures.c and
 * test_gradcheck.c, defined in op_cases.c.
 */
#ifndef DG_CASE_GRAPH_H
#define DG_CASE_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include "op_cases.h"
#include "test_util.h"

/* A case has at most this many inputs. */
#define DG_CASE_MAX_INPUTS 8

struct dg_case_graph {
    dg_graph *g;
    int n_inputs;
    dg_node *inputs[DG_CASE_MAX_INPUTS];              /* "in0", "in1", ... */
    const void *input_data[DG_CASE_MAX_INPUTS];       /* the fixture's values */
    const dg_fixture_tensor *input_ref[DG_CASE_MAX_INPUTS];
    int n_float;                                      /* float32 inputs: the wrt of the case */
    int float_index[DG_CASE_MAX_INPUTS];              /* their positions among the inputs */
    dg_node *out;                                     /* case->build's result */
    dg_node *loss;                                    /* sum(out * upstream) */
    const dg_fixture_tensor *out_ref, *upstream_ref;
};

/* Builds the case's graph in a new graph: inputs with the fixture's shapes and dtypes, the op,
 * and the loss. On failure writes why into err (naming the case) and returns false; the graph
 * (if any) is still freed by dg_case_graph_free. */
bool dg_case_graph_build(struct dg_case_graph *cg, const struct dg_op_case *c,
                         const dg_fixture *fx, char *err, size_t err_len);
void dg_case_graph_free(struct dg_case_graph *cg);

/* The registry name of op node kinds found in cg's graph: true when some node runs `op`. */
bool dg_case_graph_has_op(const struct dg_case_graph *cg, const char *op);

/* Feeds every input of the case into p (inputs the plan does not read are skipped). */
dg_status dg_case_graph_feed(const struct dg_case_graph *cg, dg_plan *p);

#endif
