/*
 * Every op case (op_cases.h) against PyTorch: forward values and input gradients from
 * tests/fixtures/ops_<family>.dgfx (written by tests/gen/gen_ops.py in float64 from the same
 * float32 inputs). Plus the table's invariants:
 *   - every registered op has at least one case (the registry is walked);
 *   - every case has its fixture records and names a registered op that its graph really runs,
 *     and every fixture case has a C case (the two tables list the same names);
 *   - a plan without memory sharing gives bitwise the same results as the planned one, and
 *     running a plan twice gives bitwise the same results;
 *   - a forward-only case's gradient is zero, or dg_grad says NOT_DIFFERENTIABLE naming the op.
 * Failures are collected per family and reported together, each with the case name and its
 * worst element, so one run shows every broken case.
 */
#include "case_graph.h"
#include "graph/plan_internal.h"
/* test_util.h comes through case_graph.h (its fixture half has no include guard) */

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TOL 1e-5

/* Failure messages of one test, appended as they come. */
struct failures {
    int count;
    size_t len;
    char text[16384];
};

static void add_failure(struct failures *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_failure(struct failures *f, const char *fmt, ...)
{
    f->count++;
    if (f->len + 2 >= sizeof f->text)
        return;
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(f->text + f->len, sizeof f->text - f->len - 1, fmt, args);
    va_end(args);
    if (n > 0)
        f->len += (size_t)n < sizeof f->text - f->len - 1 ? (size_t)n
                                                            : sizeof f->text - f->len - 2;
    f->text[f->len++] = '\n';
    f->text[f->len] = '\0';
}

static void assert_no_failures(const struct failures *f, const char *what)
{
    if (f->count > 0)
        fprintf(stderr, "%s: %d failure(s):\n%s", what, f->count, f->text);
    ck_assert_msg(f->count == 0, "%s: %d failure(s):\n%s", what, f->count, f->text);
}

static const struct dg_op_def *op_by_name(const char *name)
{
    for (int i = 0; i < DG_OP_COUNT; i++)
        if (strcmp(dg__op_def((dg_op_id)i)->name, name) == 0)
            return dg__op_def((dg_op_id)i);
    return NULL;
}

/* Compares n values with |got - ref| <= tol * max(|ref|, 1); on failure records the worst. */
static void compare_values(struct failures *f, const char *case_name, const char *what,
                           const float *got, const float *ref, int64_t n, double tol)
{
    double worst = -1.0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - (double)ref[i]) / fmax(fabs((double)ref[i]), 1.0);
        if (isnan(err))
            err = INFINITY;
        if (err > worst) {
            worst = err;
            at = i;
        }
    }
    if (at >= 0 && worst > tol)
        add_failure(f, "%s: %s differs from PyTorch at element %lld: %.9g vs %.9g "
                    "(error %.3g > tol %.3g)", case_name, what, (long long)at, got[at], ref[at],
                    worst, tol);
}

/* ---- forward and backward against the fixture, planned vs unplanned ------------------ */

/* Runs one case; appends failures. */
static void check_case(struct failures *f, const struct dg_op_case *c, const dg_fixture *fx)
{
    struct dg_case_graph cg;
    char err[1024];
    if (!dg_case_graph_build(&cg, c, fx, err, sizeof err)) {
        add_failure(f, "%s", err);
        dg_case_graph_free(&cg);
        return;
    }
    if (!dg_case_graph_has_op(&cg, c->op))
        add_failure(f, "%s: the case's graph has no '%s' node", c->name, c->op);

    int n_grads = c->forward_only ? 0 : cg.n_float;
    dg_node *outputs[1 + DG_CASE_MAX_INPUTS] = {cg.out};
    dg_node *wrt[DG_CASE_MAX_INPUTS];
    for (int k = 0; k < n_grads; k++)
        wrt[k] = cg.inputs[cg.float_index[k]];
    if (n_grads > 0 && dg_grad(cg.g, cg.loss, n_grads, wrt, outputs + 1) != DG_OK) {
        add_failure(f, "%s: dg_grad failed: %s", c->name, dg_graph_error(cg.g));
        dg_case_graph_free(&cg);
        return;
    }
    int n_out = 1 + n_grads;
    dg_plan *planned = dg_compile(cg.g, n_out, outputs);
    dg_plan *unplanned = planned ? dg__compile_ex(cg.g, n_out, outputs, false) : NULL;
    if (planned == NULL || unplanned == NULL || dg_case_graph_feed(&cg, planned) != DG_OK ||
        dg_case_graph_feed(&cg, unplanned) != DG_OK || dg_run(planned) != DG_OK) {
        add_failure(f, "%s: compile/feed/run failed: %s", c->name, dg_graph_error(cg.g));
        goto done;
    }
    /* Keep the first run's results, then run both plans. */
    float *first[1 + DG_CASE_MAX_INPUTS] = {0};
    for (int o = 0; o < n_out; o++) {
        int64_t n = dg_node_numel(outputs[o]);
        first[o] = malloc((size_t)n * sizeof(float));
        ck_assert_ptr_nonnull(first[o]);
        memcpy(first[o], dg_data(planned, outputs[o]), (size_t)n * sizeof(float));
    }
    if (dg_run(planned) != DG_OK || dg_run(unplanned) != DG_OK) {
        add_failure(f, "%s: second run failed: %s", c->name, dg_graph_error(cg.g));
    } else {
        for (int o = 0; o < n_out; o++) {
            int64_t n = dg_node_numel(outputs[o]);
            const float *again = dg_data(planned, outputs[o]);
            const float *reference = dg_data(unplanned, outputs[o]);
            char what[32];
            snprintf(what, sizeof what, o == 0 ? "out" : "grad of input %d",
                     o == 0 ? 0 : cg.float_index[o - 1]);
            if (memcmp(first[o], again, (size_t)n * sizeof(float)) != 0)
                add_failure(f, "%s: %s differs between two runs of the same plan", c->name,
                            what);
            if (memcmp(first[o], reference, (size_t)n * sizeof(float)) != 0)
                add_failure(f, "%s: %s of the planned run is not bitwise equal to the run "
                            "without memory sharing", c->name, what);
        }
    }
    double tol = c->fixture_tol > 0 ? c->fixture_tol : DEFAULT_TOL;
    compare_values(f, c->name, "out", first[0], cg.out_ref->data, cg.out_ref->numel, tol);
    for (int k = 0; k < n_grads; k++) {
        char key[160], what[32];
        int position = cg.float_index[k];
        snprintf(key, sizeof key, "%s/grad%d", c->name, position);
        snprintf(what, sizeof what, "grad%d", position);
        const dg_fixture_tensor *ref = dg_fixture_get(fx, key);
        if (ref == NULL)
            add_failure(f, "%s: fixture record %s missing (is the Python case grad=False?)",
                        c->name, key);
        else if (ref->numel != dg_node_numel(wrt[k]))
            add_failure(f, "%s: %s has %lld elements, the input %lld", c->name, key,
                        (long long)ref->numel, (long long)dg_node_numel(wrt[k]));
        else
            compare_values(f, c->name, what, first[1 + k], ref->data, ref->numel, tol);
    }
    for (int o = 0; o < n_out; o++)
        free(first[o]);
done:
    dg_plan_free(planned);
    dg_plan_free(unplanned);
    dg_case_graph_free(&cg);
}

/* A forward-only case: dg_grad gives zeros, or a NOT_DIFFERENTIABLE error naming the op. */
static void check_forward_only_grad(struct failures *f, const struct dg_op_case *c,
                                    const dg_fixture *fx)
{
    struct dg_case_graph cg;
    char err[1024];
    if (!dg_case_graph_build(&cg, c, fx, err, sizeof err) || cg.n_float == 0) {
        dg_case_graph_free(&cg); /* build errors are reported by check_case */
        return;
    }
    dg_node *wrt[DG_CASE_MAX_INPUTS], *grads[DG_CASE_MAX_INPUTS];
    for (int k = 0; k < cg.n_float; k++)
        wrt[k] = cg.inputs[cg.float_index[k]];
    dg_status st = dg_grad(cg.g, cg.loss, cg.n_float, wrt, grads);
    if (st == DG_ERR_NOT_DIFFERENTIABLE) {
        if (strstr(dg_graph_error(cg.g), c->op) == NULL)
            add_failure(f, "%s: NOT_DIFFERENTIABLE message does not name '%s': %s", c->name,
                        c->op, dg_graph_error(cg.g));
    } else if (st != DG_OK) {
        add_failure(f, "%s: dg_grad of a forward-only case failed: %s", c->name,
                    dg_graph_error(cg.g));
    } else {
        dg_plan *p = dg_compile(cg.g, cg.n_float, grads);
        if (p == NULL || dg_case_graph_feed(&cg, p) != DG_OK || dg_run(p) != DG_OK) {
            add_failure(f, "%s: running the zero gradient failed: %s", c->name,
                        dg_graph_error(cg.g));
        } else {
            for (int k = 0; k < cg.n_float; k++) {
                const float *d = dg_data(p, grads[k]);
                for (int64_t i = 0; d != NULL && i < dg_node_numel(wrt[k]); i++) {
                    if (d[i] != 0.0f) { /* exact: a documented zero gradient */
                        add_failure(f, "%s: forward-only op has a nonzero gradient %g at "
                                    "element %lld of input %d", c->name, d[i], (long long)i,
                                    cg.float_index[k]);
                        break;
                    }
                }
            }
        }
        dg_plan_free(p);
    }
    dg_case_graph_free(&cg);
}

/* An op without a backward rule (not even the zero rule) must make dg_grad fail naming it. */
static void check_missing_rule(struct failures *f, const struct dg_op_case *c)
{
    const struct dg_op_def *def = op_by_name(c->op);
    if (def == NULL || def->backward != NULL || c->forward_only)
        return;
    add_failure(f, "%s: op '%s' has no backward rule (not even dg__zero_grad), yet the case "
                "expects gradients", c->name, c->op);
}

/* The Python and C tables have the same case names: every "<name>/out" of the fixture has a
 * C case (the reverse is check_case's "no fixture records"). */
static void check_names_match(struct failures *f, const struct dg_op_case_family *fam,
                              const dg_fixture *fx)
{
    for (int i = 0; i < fx->count; i++) {
        const char *record = fx->tensors[i].name;
        const char *slash = strrchr(record, '/');
        if (slash == NULL || strcmp(slash, "/out") != 0)
            continue;
        size_t len = (size_t)(slash - record);
        bool found = false;
        for (const struct dg_op_case *c = fam->cases; c->name != NULL && !found; c++)
            found = strlen(c->name) == len && strncmp(c->name, record, len) == 0;
        if (!found)
            add_failure(f, "%.*s: in %s (tests/gen/cases_*.py) but not in the C case table",
                        (int)len, record, fam->fixture);
    }
}

START_TEST(test_family)
{
    const struct dg_op_case_family *fam = &dg_op_case_families[_i];
    if (fam->cases == NULL) {
        fprintf(stderr, "note: %s: no case table linked (tests/cases_*.c missing); "
                "test_registry_covered fails for its ops\n", fam->fixture);
        return;
    }
    struct failures *f = calloc(1, sizeof *f);
    ck_assert_ptr_nonnull(f);
    dg_fixture *fx = dg_fixture_load(fam->fixture);
    if (fx == NULL) {
        add_failure(f, "%s: fixture file missing or corrupt; run /usr/bin/python3 "
                    "tests/gen/gen_ops.py", fam->fixture);
    } else {
        check_names_match(f, fam, fx);
        for (const struct dg_op_case *c = fam->cases; c->name != NULL; c++) {
            check_case(f, c, fx);
            check_missing_rule(f, c);
            if (c->forward_only)
                check_forward_only_grad(f, c, fx);
        }
    }
    dg_fixture_free(fx);
    char what[128];
    snprintf(what, sizeof what, "family %s", fam->fixture);
    struct failures copy = *f;
    free(f);
    assert_no_failures(&copy, what);
}
END_TEST

/* The invariant: every registered op has a case (and so a fixture and a gradient check). */
START_TEST(test_registry_covered)
{
    struct failures f = {0};
    for (int i = 0; i < DG_OP_COUNT; i++) {
        const char *name = dg__op_def((dg_op_id)i)->name;
        bool found = false;
        for (int k = 0; k < dg_op_case_family_count && !found; k++)
            for (const struct dg_op_case *c = dg_op_case_families[k].cases; c && c->name; c++)
                if (strcmp(c->op, name) == 0) {
                    found = true;
                    break;
                }
        if (!found)
            add_failure(&f, "op '%s' has no case in tests/cases_*.c", name);
    }
    assert_no_failures(&f, "registered ops without a test case");
}
END_TEST

/* Case names are unique over all families, name registered ops, and have a build function. */
START_TEST(test_cases_well_formed)
{
    struct failures f = {0};
    for (int k = 0; k < dg_op_case_family_count; k++) {
        for (const struct dg_op_case *c = dg_op_case_families[k].cases; c && c->name; c++) {
            if (c->op == NULL || op_by_name(c->op) == NULL)
                add_failure(&f, "%s: op '%s' is not in the registry", c->name,
                            c->op ? c->op : "(null)");
            if (c->build == NULL)
                add_failure(&f, "%s: no build function", c->name);
            for (int k2 = 0; k2 <= k; k2++)
                for (const struct dg_op_case *d = dg_op_case_families[k2].cases;
                     d && d->name && d != c; d++)
                    if (strcmp(c->name, d->name) == 0)
                        add_failure(&f, "%s: case name used twice", c->name);
        }
    }
    assert_no_failures(&f, "case table");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fixtures");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_registry_covered);
    tcase_add_test(tc, test_cases_well_formed);
    tcase_add_loop_test(tc, test_family, 0, dg_op_case_family_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return dg_test_run(suite()); }
