/*
 * The gradient checker (dg_gradcheck): every differentiable op case (op_cases.h) passes it on
 * its fixture's inputs with loss = sum(out * upstream); and the checker itself is tested — it
 * must pass correct gradients, FAIL wrong ones and say where, restore what it perturbs, choose
 * elements deterministically, and report bad arguments without aborting.
 *
 * Tolerance for the op cases: rtol = case->gradcheck_tol (default 1e-2, the library default)
 * and atol = rtol / 10 (the library's default ratio), scaled by the node's gradient scale as
 * the policy in dagrad_autodiff.h says.
 */
#include "case_graph.h"
#include "op.h"
/* test_util.h comes through case_graph.h (its fixture half has no include guard) */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CASE_MAX_ELEMENTS 128

/* ---- every op case -------------------------------------------------------------------- */

START_TEST(test_family_cases)
{
    const struct dg_op_case_family *fam = &dg_op_case_families[_i];
    if (fam->cases == NULL)
        return; /* not linked yet: test_fixtures' registry walk reports the ops */
    dg_fixture *fx = dg_fixture_load(fam->fixture);
    ck_assert_msg(fx != NULL, "%s: fixture missing; run /usr/bin/python3 tests/gen/gen_ops.py",
                  fam->fixture);
    int failed = 0, checked = 0;
    int64_t elements = 0;
    char text[8192] = "";
    size_t len = 0;
    for (const struct dg_op_case *c = fam->cases; c->name != NULL; c++) {
        if (c->forward_only)
            continue;
        struct dg_case_graph cg;
        char err[1024] = "";
        dg_gradcheck_report report;
        bool ok = dg_case_graph_build(&cg, c, fx, err, sizeof err);
        if (ok && cg.n_float > 0) {
            dg_node *wrt[DG_CASE_MAX_INPUTS];
            for (int k = 0; k < cg.n_float; k++)
                wrt[k] = cg.inputs[cg.float_index[k]];
            dg_gradcheck_options opts = dg_gradcheck_defaults();
            opts.rtol = c->gradcheck_tol > 0 ? c->gradcheck_tol : opts.rtol;
            opts.atol = opts.rtol / 10;
            opts.max_elements_per_node = CASE_MAX_ELEMENTS;
            dg_status st = dg_gradcheck(cg.g, cg.loss, cg.n_float, wrt, cg.n_inputs, cg.inputs,
                                        cg.input_data, &opts, &report);
            checked++;
            elements += report.n_checked;
            if (st != DG_OK)
                snprintf(err, sizeof err, "%s: gradcheck did not run: %s", c->name,
                         dg_graph_error(cg.g));
            else if (!report.passed)
                snprintf(err, sizeof err, "%s (input %d): %s", c->name,
                         cg.float_index[report.worst_wrt], report.summary);
            ok = st == DG_OK && report.passed;
        }
        dg_case_graph_free(&cg);
        if (!ok) {
            failed++;
            int n = snprintf(text + len, sizeof text - len, "%s\n", err);
            if (n > 0 && (size_t)n < sizeof text - len)
                len += (size_t)n;
        }
    }
    dg_fixture_free(fx);
    fprintf(stderr, "%s: %d cases, %lld gradient elements checked\n", fam->fixture, checked,
            (long long)elements);
    if (failed)
        fprintf(stderr, "%s: %d of %d cases failed the gradient check:\n%s", fam->fixture,
                failed, checked, text);
    ck_assert_msg(failed == 0, "%s: %d case(s) failed the gradient check:\n%s", fam->fixture,
                  failed, text);
}
END_TEST

/* ---- the checker on known functions --------------------------------------------------- */

static dg_node *scalar_input(dg_graph *g, const char *name)
{
    return dg_input(g, name, 0, NULL);
}

START_TEST(test_defaults)
{
    dg_gradcheck_options o = dg_gradcheck_defaults();
    ck_assert_double_eq_tol(o.step, 1e-2, 1e-12);
    ck_assert_double_eq_tol(o.rtol, 1e-2, 1e-12);
    ck_assert_double_eq_tol(o.atol, 1e-3, 1e-12);
    ck_assert_int_gt(o.max_elements_per_node, 0);
}
END_TEST

/* f = x*y + x: df/dx = y + 1, df/dy = x. */
START_TEST(test_passes_correct_gradient)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = scalar_input(g, "x"), *y = scalar_input(g, "y");
    dg_node *f = dg_add(g, dg_mul(g, x, y), x);
    float xv = 1.5f, yv = -0.75f;
    dg_node *wrt[] = {x, y};
    const void *data[] = {&xv, &yv};
    dg_gradcheck_report r;
    ck_assert_int_eq(dg_gradcheck(g, f, 2, wrt, 2, wrt, data, NULL, &r), DG_OK);
    ck_assert_msg(r.passed, "%s", r.summary);
    ck_assert_int_eq(r.n_checked, 2);
    ck_assert_int_eq(r.n_failed, 0);
    ck_assert_double_eq_tol(r.loss, 1.5 * -0.75 + 1.5, 1e-6);
    ck_assert_double_le(r.max_abs_error, 1e-4);
    ck_assert_ptr_nonnull(strstr(r.summary, "passed"));
    /* dg_gradcheck appended the backward pass to the graph. */
    ck_assert_int_gt(dg_graph_node_count(g), 5);
    dg_graph_free(g);
}
END_TEST

/* A smooth non-polynomial function at large |x|, where h scales with |x|: f = x / (x*x + 1)
 * around x = 40 (f' = (1 - x^2) / (x^2 + 1)^2 ~ -6e-4). */
START_TEST(test_passes_large_values)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = scalar_input(g, "x");
    dg_node *f = dg_div(g, x, dg_add(g, dg_mul(g, x, x), dg_scalar(g, 1.0f)));
    float xv = 40.0f;
    const void *data[] = {&xv};
    dg_gradcheck_report r;
    ck_assert_int_eq(dg_gradcheck(g, f, 1, &x, 1, &x, data, NULL, &r), DG_OK);
    ck_assert_msg(r.passed, "%s", r.summary);
    ck_assert_double_eq_tol(r.worst_numeric, (1.0 - 1600.0) / (1601.0 * 1601.0), 1e-6);
    dg_graph_free(g);
}
END_TEST

/* Parameters are perturbed in place and restored bit for bit; fed data is never written.
 * loss = sum(w * x + w * w) over [3,4]. */
START_TEST(test_param_restored)
{
    dg_graph *g = dg_graph_new();
    int64_t shape[] = {3, 4};
    dg_node *x = dg_input(g, "x", 2, shape);
    dg_node *w = dg_param(g, "w", 2, shape);
    dg_node *loss = dg_sum(g, dg_add(g, dg_mul(g, w, x), dg_mul(g, w, w)), 0, NULL, false);
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    float xv[12], xcopy[12], wcopy[12];
    dg_test_fill_uniform(&rng, xv, 12, -2, 2);
    dg_test_fill_uniform(&rng, dg_param_data(w), 12, -2, 2);
    memcpy(xcopy, xv, sizeof xv);
    memcpy(wcopy, dg_param_data(w), sizeof wcopy);
    dg_node *wrt[] = {w, x};
    const void *data[] = {xv};
    dg_gradcheck_report r;
    ck_assert_int_eq(dg_gradcheck(g, loss, 2, wrt, 1, &x, data, NULL, &r), DG_OK);
    ck_assert_msg(r.passed, "%s", r.summary);
    ck_assert_int_eq(r.n_checked, 24);
    ck_assert_int_eq(memcmp(wcopy, dg_param_data(w), sizeof wcopy), 0);
    ck_assert_int_eq(memcmp(xcopy, xv, sizeof xv), 0);
    dg_graph_free(g);
}
END_TEST

/* A wrt the loss does not read: analytic zeros (dg_grad's documented zero), numeric zeros. */
START_TEST(test_unused_wrt)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = scalar_input(g, "x"), *unused = scalar_input(g, "unused");
    dg_node *f = dg_mul(g, x, x);
    float xv = 0.5f, uv = 3.0f;
    dg_node *wrt[] = {x, unused};
    const void *data[] = {&xv, &uv};
    dg_gradcheck_report r;
    ck_assert_int_eq(dg_gradcheck(g, f, 2, wrt, 2, wrt, data, NULL, &r), DG_OK);
    ck_assert_msg(r.passed, "%s", r.summary);
    ck_assert_int_eq(r.n_checked, 2);
    dg_graph_free(g);
}
END_TEST

/* ---- the checker must catch wrong gradients ------------------------------------------- */

/* f = x * stop_gradient(x): the value is x^2 (derivative 2x) but the gradient graph sees
 * x * const (derivative x) — the classic bug of a rule that forgets one factor's
 * dependence. The checker must fail and report analytic x against numeric 2x. */
START_TEST(test_fails_wrong_gradient)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = scalar_input(g, "x");
    dg_node *f = dg_mul(g, x, dg_stop_gradient(g, x));
    float xv = 1.25f;
    const void *data[] = {&xv};
    dg_gradcheck_report r;
    ck_assert_int_eq(dg_gradcheck(g, f, 1, &x, 1, &x, data, NULL, &r), DG_OK);
    ck_assert_msg(!r.passed, "a wrong gradient passed: %s", r.summary);
    ck_assert_int_eq(r.n_failed, 1);
    ck_assert_int_eq(r.worst_wrt, 0);
    ck_assert_int_eq(r.worst_node, dg_node_index(x));
    ck_assert_double_eq_tol(r.worst_analytic, 1.25, 1e-6);
    ck_assert_double_eq_tol(r.worst_numeric, 2.5, 1e-4);
    ck_assert_double_eq_tol(r.max_rel_error, 0.5, 1e-4);
    ck_assert_ptr_nonnull(strstr(r.summary, "FAILED"));
    dg_graph_free(g);
}
END_TEST

/* Only element 3 of six has a wrong gradient: the report must point at it.
 * loss = sum(x * x * (1 - m)) + sum(x * stop_gradient(x) * m), m one-hot at 3. */
START_TEST(test_fails_at_the_wrong_element)
{
    dg_graph *g = dg_graph_new();
    int64_t shape[] = {6};
    float mask[6] = {0, 0, 0, 1, 0, 0}, keep[6] = {1, 1, 1, 0, 1, 1};
    dg_node *x = dg_input(g, "x", 1, shape);
    dg_node *m = dg_constant(g, 1, shape, mask), *k = dg_constant(g, 1, shape, keep);
    dg_node *good = dg_mul(g, dg_mul(g, x, x), k);
    dg_node *bad = dg_mul(g, dg_mul(g, x, dg_stop_gradient(g, x)), m);
    dg_node *loss = dg_sum(g, dg_add(g, good, bad), 0, NULL, false);
    float xv[6] = {0.5f, -1.0f, 1.5f, 1.75f, -0.25f, 0.8f};
    const void *data[] = {xv};
    dg_gradcheck_report r;
    ck_assert_int_eq(dg_gradcheck(g, loss, 1, &x, 1, &x, data, NULL, &r), DG_OK);
    ck_assert_msg(!r.passed, "%s", r.summary);
    ck_assert_int_eq(r.n_checked, 6);
    ck_assert_int_eq(r.n_failed, 1);
    ck_assert_int_eq(r.worst_element, 3);
    ck_assert_double_eq_tol(r.worst_analytic, 1.75, 1e-5);
    ck_assert_double_eq_tol(r.worst_numeric, 3.5, 1e-3);
    dg_graph_free(g);
}
END_TEST

/* ---- deliberately wrong gradients on a mean-reduced loss over a [64, 32] batch ------------ */

/* A test-only op: out = x, with a backward rule that is right (variant WRONG_NONE) or wrong in
 * one of the ways real rules go wrong. Built with dg__make_node_def, never registered. */
enum wrong_kind { WRONG_NONE, WRONG_FACTOR2, WRONG_SIGN, WRONG_TRANSPOSED, WRONG_SHIFTED };

static dg_status identity_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                const struct dg_shape *in, struct dg_shape *out, char *msg,
                                size_t len)
{
    *out = in[0];
    return DG_OK;
}

static void identity_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                             const struct dg_tensor *in, struct dg_tensor *out,
                             const struct dg_exec_ctx *ctx)
{
    memcpy(out->data, in[0].data, (size_t)dg__numel(&out->shape) * sizeof(float));
}

/* dx = g, or a wrong version of it: 2g; -g; g^T read back as [64, 32] (a rule that forgot a
 * transpose of a square-looking block); g shifted by one element (an off-by-one index). */
static dg_status identity_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                   dg_node *grad, dg_node **gin)
{
    const int64_t shape[2] = {dg_node_dim(grad, 0), dg_node_dim(grad, 1)};
    const int64_t flat = shape[0] * shape[1];
    switch ((enum wrong_kind)ctx->def->variant) {
    case WRONG_NONE:
        gin[0] = grad;
        break;
    case WRONG_FACTOR2:
        gin[0] = dg_scale(g, grad, 2.0f);
        break;
    case WRONG_SIGN:
        gin[0] = dg_neg(g, grad);
        break;
    case WRONG_TRANSPOSED:
        gin[0] = dg_reshape(g, dg_transpose(g, grad), 2, shape);
        break;
    case WRONG_SHIFTED: {
        dg_node *line = dg_reshape(g, grad, 1, &flat);
        dg_node *parts[2] = {dg_slice(g, line, 0, 1, flat), dg_slice(g, line, 0, 0, 1)};
        gin[0] = dg_reshape(g, dg_concat(g, 2, parts, 0), 2, shape);
        break;
    }
    }
    return dg_graph_status(g);
}

#define IDENTITY_DEF(kind, label)                                                             \
    {.name = label, .n_inputs = 1, .variant = kind, .infer = identity_infer,                 \
     .forward = identity_forward, .backward = identity_backward}

static const struct dg_op_def identity_defs[] = {
    IDENTITY_DEF(WRONG_NONE, "identity_right"),
    IDENTITY_DEF(WRONG_FACTOR2, "identity_factor2"),
    IDENTITY_DEF(WRONG_SIGN, "identity_sign"),
    IDENTITY_DEF(WRONG_TRANSPOSED, "identity_transposed"),
    IDENTITY_DEF(WRONG_SHIFTED, "identity_shifted"),
};

/* loss = mse_loss(identity(x), y) = mean((x - y)^2) over [64, 32], x and y in [-0.5, 0.5):
 * d loss / dx = 2 (x - y) / 2048, every element under 1e-3, against a loss near 0.17. With
 * the DEFAULT options the right rule passes and each wrong one fails on many elements. (The
 * old loss-scaled tolerance, 1e-3 * max(1, |loss|) = 1e-3, passed the factor-2 error: no
 * element's error exceeds 1e-3.) */
START_TEST(test_wrong_gradients_fail_by_default)
{
    enum { ROWS = 64, COLS = 32 };
    static float xv[ROWS * COLS], yv[ROWS * COLS];
    uint64_t state = 12345;
    for (int i = 0; i < ROWS * COLS; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        xv[i] = (float)((state >> 40) & 0xffff) / 65536.0f - 0.5f;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        yv[i] = (float)((state >> 40) & 0xffff) / 65536.0f - 0.5f;
    }
    const struct dg_op_def *def = &identity_defs[_i];
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (const int64_t[]){ROWS, COLS});
    dg_node *y = dg_input(g, "y", 2, (const int64_t[]){ROWS, COLS});
    dg_node *loss = dg_mse_loss(g, dg__make_node_def(g, def, 1, &x, NULL), y);
    ck_assert_msg(loss != NULL, "%s", dg_graph_error(g));
    dg_node *feeds[] = {x, y};
    const void *data[] = {xv, yv};
    dg_gradcheck_report r;
    ck_assert_int_eq(dg_gradcheck(g, loss, 1, &x, 2, feeds, data, NULL, &r), DG_OK);
    if (def->variant == WRONG_NONE) {
        ck_assert_msg(r.passed, "%s: the right gradient failed: %s", def->name, r.summary);
    } else {
        ck_assert_msg(!r.passed, "%s: a wrong gradient passed: %s", def->name, r.summary);
        ck_assert_int_gt(r.n_failed, r.n_checked / 4); /* not a near miss */
    }
    dg_graph_free(g);
}
END_TEST

/* A discontinuity inside both stencils (2h = 0.02 and 0.002): f = x * [x > 0] at
 * x = 0.0004 has analytic derivative 1 (the mask is piecewise constant) but the function jumps
 * within reach; the checker must report it, not pass it silently. Uses the internal comparison
 * op (no public constructor). */
START_TEST(test_fails_across_a_jump)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = scalar_input(g, "x");
    dg_node *mask = dg__make_node(g, DG_OP_greater, 2, (dg_node *[]){x, dg_scalar(g, 0.0f)},
                                  NULL);
    dg_node *f = dg_add(g, dg_mul(g, x, mask), dg_scalar(g, 1.0f));
    float xv = 0.0004f;
    const void *data[] = {&xv};
    dg_gradcheck_report r;
    ck_assert_int_eq(dg_gradcheck(g, f, 1, &x, 1, &x, data, NULL, &r), DG_OK);
    ck_assert_msg(!r.passed, "%s", r.summary);
    ck_assert_double_eq_tol(r.worst_analytic, 1.0, 1e-6);
    dg_graph_free(g);
}
END_TEST

/* ---- element choice ------------------------------------------------------------------- */

static dg_status check_big(uint64_t seed, int max_elements, dg_gradcheck_report *r)
{
    dg_graph *g = dg_graph_new();
    int64_t shape[] = {25, 40};
    dg_node *w = dg_param(g, "w", 2, shape);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 11);
    dg_test_fill_uniform(&rng, dg_param_data(w), 1000, -1, 1);
    dg_node *loss = dg_sum(g, dg_mul(g, dg_mul(g, w, w), w), 0, NULL, false);
    dg_gradcheck_options o = dg_gradcheck_defaults();
    o.seed = seed;
    o.max_elements_per_node = max_elements;
    dg_status st = dg_gradcheck(g, loss, 1, &w, 0, NULL, NULL, &o, r);
    dg_graph_free(g);
    return st;
}

START_TEST(test_sampling_deterministic)
{
    dg_gradcheck_report a, b, all;
    ck_assert_int_eq(check_big(42, 10, &a), DG_OK);
    ck_assert_int_eq(check_big(42, 10, &b), DG_OK);
    ck_assert_msg(a.passed, "%s", a.summary);
    ck_assert_int_eq(a.n_checked, 10);
    ck_assert_int_eq(a.worst_element, b.worst_element);
    /* Same seed, same elements, same arithmetic: bitwise the same report. */
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
    ck_assert_int_eq(check_big(42, 0, &all), DG_OK); /* <= 0: every element */
    ck_assert_int_eq(all.n_checked, 1000);
    ck_assert_msg(all.passed, "%s", all.summary);
}
END_TEST

/* ---- bad arguments: a status and a message, never an abort ---------------------------- */

static void expect_error(dg_graph *g, dg_status got, dg_status want, const char *needle,
                         const dg_gradcheck_report *r)
{
    ck_assert_int_eq(got, want);
    ck_assert_int_eq(dg_graph_status(g), want);
    ck_assert_msg(strstr(dg_graph_error(g), needle) != NULL, "message '%s' lacks '%s'",
                  dg_graph_error(g), needle);
    ck_assert(!r->passed);
    dg_graph_clear_error(g);
}

START_TEST(test_error_paths)
{
    dg_graph *g = dg_graph_new(), *other = dg_graph_new();
    int64_t shape[] = {3};
    dg_node *x = dg_input(g, "x", 0, NULL);
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 1, shape);
    dg_node *w = dg_param(g, "w", 0, NULL);
    dg_node *xw = dg_mul(g, x, w);
    dg_node *loss = dg_mul(g, xw, dg_scalar(g, 2.0f));
    dg_node *vector = dg_mul(g, xw, dg_constant(g, 1, shape, (float[]){1, 2, 3}));
    dg_node *foreign = dg_input(other, "x", 0, NULL);
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    float xv[1] = {1.5f};
    int32_t lv[3] = {0, 1, 2};
    dg_node *feeds[] = {x, labels};
    const void *data[] = {xv, lv};
    dg_gradcheck_report r;
    dg_gradcheck_options bad = dg_gradcheck_defaults();

    ck_assert_int_eq(dg_gradcheck(NULL, loss, 1, &w, 1, feeds, data, NULL, &r),
                     DG_ERR_INVALID_ARG);
    ck_assert(!r.passed);
    expect_error(g, dg_gradcheck(g, loss, 1, &w, 1, feeds, data, NULL, NULL),
                 DG_ERR_INVALID_ARG, "report is NULL", &r);
    expect_error(g, dg_gradcheck(g, NULL, 1, &w, 1, feeds, data, NULL, &r), DG_ERR_INVALID_ARG,
                 "loss is NULL", &r);
    expect_error(g, dg_gradcheck(g, loss, 0, &w, 1, feeds, data, NULL, &r), DG_ERR_INVALID_ARG,
                 "no wrt", &r);
    expect_error(g, dg_gradcheck(g, loss, 1, (dg_node *[]){NULL}, 1, feeds, data, NULL, &r),
                 DG_ERR_INVALID_ARG, "wrt[0] is NULL", &r);
    expect_error(g, dg_gradcheck(g, loss, 1, &xw, 1, feeds, data, NULL, &r), DG_ERR_INVALID_ARG,
                 "only inputs and parameters", &r);
    expect_error(g, dg_gradcheck(g, loss, 1, &labels, 2, feeds, data, NULL, &r), DG_ERR_DTYPE,
                 "int32", &r);
    expect_error(g, dg_gradcheck(g, loss, 1, &x, 0, NULL, NULL, NULL, &r), DG_ERR_INVALID_ARG,
                 "not among the feeds", &r);
    expect_error(g, dg_gradcheck(g, loss, 1, &foreign, 1, feeds, data, NULL, &r),
                 DG_ERR_FOREIGN_NODE, "another graph", &r);
    expect_error(g, dg_gradcheck(g, loss, 1, &w, 1, (dg_node *[]){xw}, data, NULL, &r),
                 DG_ERR_INVALID_ARG, "not an input", &r);
    expect_error(g, dg_gradcheck(g, loss, 1, &w, 1, feeds, (const void *[]){NULL}, NULL, &r),
                 DG_ERR_INVALID_ARG, "feed 0", &r);
    bad.step = 0.0;
    expect_error(g, dg_gradcheck(g, loss, 1, &w, 1, feeds, data, &bad, &r), DG_ERR_INVALID_ARG,
                 "step", &r);
    bad = dg_gradcheck_defaults();
    bad.rtol = NAN;
    expect_error(g, dg_gradcheck(g, loss, 1, &w, 1, feeds, data, &bad, &r), DG_ERR_INVALID_ARG,
                 "rtol", &r);
    /* A non-scalar loss: dg_grad's error comes through. */
    expect_error(g, dg_gradcheck(g, vector, 1, &w, 1, feeds, data, NULL, &r), DG_ERR_SHAPE,
                 "scalar", &r);
    /* An input the loss needs but that was not fed: the run's error comes through. */
    expect_error(g, dg_gradcheck(g, loss, 1, &w, 0, NULL, NULL, NULL, &r), DG_ERR_STATE,
                 "not fed", &r);
    /* A graph with a pending error: that error is returned, untouched. */
    dg_add(g, x, NULL);
    ck_assert_int_eq(dg_gradcheck(g, loss, 1, &w, 1, feeds, data, NULL, &r), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "add"));
    dg_graph_free(g);
    dg_graph_free(other);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gradcheck");
    TCase *self = tcase_create("checker");
    tcase_add_test(self, test_defaults);
    tcase_add_test(self, test_passes_correct_gradient);
    tcase_add_test(self, test_passes_large_values);
    tcase_add_test(self, test_param_restored);
    tcase_add_test(self, test_unused_wrt);
    tcase_add_test(self, test_fails_wrong_gradient);
    tcase_add_test(self, test_fails_at_the_wrong_element);
    tcase_add_test(self, test_fails_across_a_jump);
    tcase_add_loop_test(self, test_wrong_gradients_fail_by_default, 0,
                        (int)(sizeof identity_defs / sizeof identity_defs[0]));
    tcase_add_test(self, test_sampling_deterministic);
    tcase_add_test(self, test_error_paths);
    suite_add_tcase(s, self);
    TCase *cases = tcase_create("op_cases");
    tcase_set_timeout(cases, 600);
    tcase_add_loop_test(cases, test_family_cases, 0, dg_op_case_family_count);
    suite_add_tcase(s, cases);
    return s;
}

int main(void) { return dg_test_run(suite()); }
