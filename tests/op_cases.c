/*
 * The list of op case families (op_cases.h). Each family's table lives in
 * tests/cases_<family>.c, written alongside the family's ops.
 *
 * The tables are weak references: while a family file does not exist yet (tests/meson.build
 * compiles only the files present) its table's address is NULL and the family is skipped, so
 * the rest of the suite still builds and runs. Nothing is lost by this: test_fixtures walks the
 * op registry and fails, naming every op, when a registered op has no case — a missing family
 * file fails the suite there, loudly, rather than breaking the link of every other test.
 */
#include "op_cases.h"

#include <stddef.h>

#pragma weak dg_cases_binary
#pragma weak dg_cases_unary
#pragma weak dg_cases_activation
#pragma weak dg_cases_matmul
#pragma weak dg_cases_reduce
#pragma weak dg_cases_layout
#pragma weak dg_cases_softmax
#pragma weak dg_cases_loss
#pragma weak dg_cases_nn
#pragma weak dg_cases_composite
#pragma weak dg_cases_conv
#pragma weak dg_cases_pool
#pragma weak dg_cases_norm
#pragma weak dg_cases_pad
#pragma weak dg_cases_seq

const struct dg_op_case_family dg_op_case_families[] = {
    {"ops_binary.dgfx", dg_cases_binary},
    {"ops_unary.dgfx", dg_cases_unary},
    {"ops_activation.dgfx", dg_cases_activation},
    {"ops_matmul.dgfx", dg_cases_matmul},
    {"ops_reduce.dgfx", dg_cases_reduce},
    {"ops_layout.dgfx", dg_cases_layout},
    {"ops_softmax.dgfx", dg_cases_softmax},
    {"ops_loss.dgfx", dg_cases_loss},
    {"ops_nn.dgfx", dg_cases_nn},
    {"ops_composite.dgfx", dg_cases_composite},
    {"ops_conv.dgfx", dg_cases_conv},
    {"ops_pool.dgfx", dg_cases_pool},
    {"ops_norm.dgfx", dg_cases_norm},
    {"ops_pad.dgfx", dg_cases_pad},
    {"ops_seq.dgfx", dg_cases_seq},
};

const int dg_op_case_family_count =
    (int)(sizeof dg_op_case_families / sizeof dg_op_case_families[0]);

/* ---- A case's graph from its fixture (shared by test_fixtures.c and test_gradcheck.c) ---- */

#include <stdio.h>
#include <string.h>

#include "case_graph.h"

bool dg_case_graph_build(struct dg_case_graph *cg, const struct dg_op_case *c,
                         const dg_fixture *fx, char *err, size_t err_len)
{
    memset(cg, 0, sizeof *cg);
    char key[160];
    for (int k = 0; k <= DG_CASE_MAX_INPUTS; k++) {
        snprintf(key, sizeof key, "%s/in%d", c->name, k);
        const dg_fixture_tensor *t = dg_fixture_get(fx, key);
        if (t == NULL)
            break;
        if (k == DG_CASE_MAX_INPUTS) {
            snprintf(err, err_len, "%s: more than %d inputs", c->name, DG_CASE_MAX_INPUTS);
            return false;
        }
        cg->input_ref[k] = t;
        cg->input_data[k] = t->data;
        cg->n_inputs = k + 1;
    }
    snprintf(key, sizeof key, "%s/out", c->name);
    cg->out_ref = dg_fixture_get(fx, key);
    snprintf(key, sizeof key, "%s/upstream", c->name);
    cg->upstream_ref = dg_fixture_get(fx, key);
    if (cg->n_inputs == 0 || cg->out_ref == NULL || cg->upstream_ref == NULL) {
        snprintf(err, err_len, "%s: no fixture records (%s%s%s); run /usr/bin/python3 "
                 "tests/gen/gen_ops.py", c->name, cg->n_inputs == 0 ? "in0 " : "",
                 cg->out_ref == NULL ? "out " : "", cg->upstream_ref == NULL ? "upstream" : "");
        return false;
    }
    cg->g = dg_graph_new();
    if (cg->g == NULL) {
        snprintf(err, err_len, "%s: out of memory", c->name);
        return false;
    }
    for (int k = 0; k < cg->n_inputs; k++) {
        const dg_fixture_tensor *t = cg->input_ref[k];
        char name[16];
        snprintf(name, sizeof name, "in%d", k);
        dg_dtype dtype = t->dtype == 1 ? DG_I32 : DG_F32;
        cg->inputs[k] = dg_input_typed(cg->g, name, dtype, t->ndim, t->dim);
        if (dtype == DG_F32)
            cg->float_index[cg->n_float++] = k;
    }
    if (dg_graph_status(cg->g) == DG_OK)
        cg->out = c->build(cg->g, cg->inputs);
    if (cg->out == NULL) {
        snprintf(err, err_len, "%s: building the op failed: %s", c->name,
                 dg_graph_error(cg->g));
        return false;
    }
    const dg_fixture_tensor *up = cg->upstream_ref;
    bool same = dg_node_ndim(cg->out) == cg->out_ref->ndim && up->ndim == cg->out_ref->ndim;
    for (int i = 0; same && i < up->ndim; i++)
        same = dg_node_dim(cg->out, i) == cg->out_ref->dim[i] && up->dim[i] == cg->out_ref->dim[i];
    if (!same || dg_node_dtype(cg->out) != DG_F32) {
        snprintf(err, err_len, "%s: the op's output (%d dims, numel %lld) does not have the "
                 "fixture's shape (%d dims, numel %lld) or is not float32", c->name,
                 dg_node_ndim(cg->out), (long long)dg_node_numel(cg->out), cg->out_ref->ndim,
                 (long long)cg->out_ref->numel);
        return false;
    }
    dg_node *upstream = dg_constant(cg->g, up->ndim, up->dim, up->data);
    cg->loss = dg_sum(cg->g, dg_mul(cg->g, cg->out, upstream), 0, NULL, false);
    if (cg->loss == NULL) {
        snprintf(err, err_len, "%s: building the loss sum(out * upstream) failed: %s", c->name,
                 dg_graph_error(cg->g));
        return false;
    }
    return true;
}

void dg_case_graph_free(struct dg_case_graph *cg)
{
    dg_graph_free(cg->g);
    cg->g = NULL;
}

bool dg_case_graph_has_op(const struct dg_case_graph *cg, const char *op)
{
    for (int i = 0; i < dg_graph_node_count(cg->g); i++)
        if (strcmp(dg_node_op_name(dg_graph_node(cg->g, i)), op) == 0)
            return true;
    return false;
}

dg_status dg_case_graph_feed(const struct dg_case_graph *cg, dg_plan *p)
{
    for (int k = 0; k < cg->n_inputs; k++) {
        if (dg_plan_numel(p, cg->inputs[k]) == 0)
            continue;
        dg_status st = dg_feed(p, cg->inputs[k], cg->input_data[k]);
        if (st != DG_OK)
            return st;
    }
    return DG_OK;
}
