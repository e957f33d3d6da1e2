/*
 * Binary elementwise ops (src/ops/binary.c) and the comparison masks (src/ops/compare.c):
 * - forward values derived by hand for every op on every broadcast pattern (equal shapes, a
 *   row vector, a column, a scalar, both sides stretched, a missing leading axis, size-1 axes,
 *   [1] + [3,1] -> [3,1], a broadcast first operand);
 * - gradients by hand, summed over the broadcast axes; maximum/minimum ties split the
 *   gradient in halves (as PyTorch); NaN propagates through maximum/minimum;
 * - every error path: shapes that do not broadcast (the message names the op and both
 *   shapes), an int32 operand, a NULL input (reported, or passed through silently when an
 *   error is pending), a node of another graph;
 * - a plan whose batch changes (dg_plan_set_batch), and bitwise-identical results for 1 and 4
 *   threads on arrays large enough to be split.
 * The PyTorch comparisons and finite-difference checks are driven by tests/cases_binary.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "op.h"
#include "test_util.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define TOL 1e-6f

typedef dg_node *(*binary_builder)(dg_graph *g, dg_node *a, dg_node *b);

static dg_node *b_add(dg_graph *g, dg_node *a, dg_node *b) { return dg_add(g, a, b); }
static dg_node *b_sub(dg_graph *g, dg_node *a, dg_node *b) { return dg_sub(g, a, b); }
static dg_node *b_mul(dg_graph *g, dg_node *a, dg_node *b) { return dg_mul(g, a, b); }
static dg_node *b_div(dg_graph *g, dg_node *a, dg_node *b) { return dg_div(g, a, b); }
static dg_node *b_max(dg_graph *g, dg_node *a, dg_node *b) { return dg_maximum(g, a, b); }
static dg_node *b_min(dg_graph *g, dg_node *a, dg_node *b) { return dg_minimum(g, a, b); }
static dg_node *b_equal(dg_graph *g, dg_node *a, dg_node *b)
{
    return dg__make_node(g, DG_OP_equal, 2, (dg_node *[]){a, b}, NULL);
}
static dg_node *b_greater(dg_graph *g, dg_node *a, dg_node *b)
{
    return dg__make_node(g, DG_OP_greater, 2, (dg_node *[]){a, b}, NULL);
}

static const struct {
    const char *name;
    binary_builder build;
} all_ops[] = {
    {"add", b_add}, {"sub", b_sub}, {"mul", b_mul}, {"div", b_div},
    {"maximum", b_max}, {"minimum", b_min}, {"equal", b_equal}, {"greater", b_greater},
};

/* An operand: shape and values. */
struct operand {
    int ndim;
    int64_t shape[4];
    const float *data;
};

/* The result of one evaluation: out (shape and values) and, when asked, the gradients of
 * sum(out) with respect to a and b. */
struct result {
    int ndim;
    int64_t shape[4];
    float out[256], grad_a[256], grad_b[256];
};

static void run_binary(binary_builder build, struct operand a, struct operand b, bool grads,
                       struct result *r)
{
    memset(r, 0, sizeof *r);
    dg_graph *g = dg_graph_new();
    ck_assert_ptr_nonnull(g);
    dg_node *x = dg_input(g, "a", a.ndim, a.shape);
    dg_node *y = dg_input(g, "b", b.ndim, b.shape);
    dg_node *out = build(g, x, y);
    ck_assert_msg(out != NULL, "%s", dg_graph_error(g));
    dg_node *outputs[3] = {out, NULL, NULL};
    int n_outputs = 1;
    if (grads) {
        dg_node *loss = dg_sum(g, out, 0, NULL, false);
        ck_assert_msg(dg_grad(g, loss, 2, (dg_node *[]){x, y}, outputs + 1) == DG_OK, "%s",
                      dg_graph_error(g));
        n_outputs = 3;
    }
    dg_plan *p = dg_compile(g, n_outputs, outputs);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_feed(p, x, a.data), DG_OK);
    ck_assert_int_eq(dg_feed(p, y, b.data), DG_OK);
    ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
    r->ndim = dg_plan_ndim(p, out);
    for (int i = 0; i < r->ndim; i++)
        r->shape[i] = dg_plan_dim(p, out, i);
    memcpy(r->out, dg_data(p, out), (size_t)dg_plan_numel(p, out) * sizeof(float));
    if (grads) {
        memcpy(r->grad_a, dg_data(p, outputs[1]), (size_t)dg_node_numel(x) * sizeof(float));
        memcpy(r->grad_b, dg_data(p, outputs[2]), (size_t)dg_node_numel(y) * sizeof(float));
    }
    dg_plan_free(p);
    dg_graph_free(g);
}

static void expect_values(const char *what, const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++) {
        if (isnan(want[i]))
            ck_assert_msg(isnan(got[i]), "%s[%d]: %g, expected NaN", what, i, got[i]);
        else
            ck_assert_msg(fabsf(got[i] - want[i]) <= TOL * fmaxf(1.0f, fabsf(want[i])),
                          "%s[%d]: %.9g, expected %.9g", what, i, got[i], want[i]);
    }
}

static void expect_shape(const struct result *r, int ndim, const int64_t *shape)
{
    ck_assert_int_eq(r->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_int_eq(r->shape[i], shape[i]);
}

/* ---- forward values -------------------------------------------------------------------- */

START_TEST(test_same_shape_all_ops)
{
    const float a[4] = {1, -2, 3, 4}, b[4] = {2, 5, -1, 0.5f};
    struct operand oa = {2, {2, 2}, a}, ob = {2, {2, 2}, b};
    const float want[8][4] = {
        {3, 3, 2, 4.5f},        /* add */
        {-1, -7, 4, 3.5f},      /* sub */
        {2, -10, -3, 2},        /* mul */
        {0.5f, -0.4f, -3, 8},   /* div */
        {2, 5, 3, 4},           /* maximum */
        {1, -2, -1, 0.5f},      /* minimum */
        {0, 0, 0, 0},           /* equal */
        {0, 0, 1, 1},           /* greater */
    };
    for (int k = 0; k < N_OF(all_ops); k++) {
        struct result r;
        run_binary(all_ops[k].build, oa, ob, false, &r);
        expect_shape(&r, 2, (const int64_t[]){2, 2});
        expect_values(all_ops[k].name, r.out, want[k], 4);
    }
}
END_TEST

START_TEST(test_broadcast_patterns)
{
    const float a6[6] = {1, 2, 3, 4, 5, 6};
    struct result r;

    /* row vector: [2,3] + [3] */
    run_binary(b_add, (struct operand){2, {2, 3}, a6},
               (struct operand){1, {3}, (const float[]){10, 20, 30}}, false, &r);
    expect_shape(&r, 2, (const int64_t[]){2, 3});
    expect_values("row", r.out, (const float[]){11, 22, 33, 14, 25, 36}, 6);

    /* column: [2,3] - [2,1] */
    run_binary(b_sub, (struct operand){2, {2, 3}, a6},
               (struct operand){2, {2, 1}, (const float[]){10, 20}}, false, &r);
    expect_values("column", r.out, (const float[]){-9, -8, -7, -16, -15, -14}, 6);

    /* scalar: [2,3] * [] */
    run_binary(b_mul, (struct operand){2, {2, 3}, a6},
               (struct operand){0, {0}, (const float[]){-0.5f}}, false, &r);
    expect_shape(&r, 2, (const int64_t[]){2, 3});
    expect_values("scalar", r.out, (const float[]){-0.5f, -1, -1.5f, -2, -2.5f, -3}, 6);

    /* both sides stretched: [3,1] * [1,4] is an outer product */
    run_binary(b_mul, (struct operand){2, {3, 1}, (const float[]){1, 2, 3}},
               (struct operand){2, {1, 4}, (const float[]){1, 10, 100, 1000}}, false, &r);
    expect_shape(&r, 2, (const int64_t[]){3, 4});
    expect_values("outer", r.out,
                  (const float[]){1, 10, 100, 1000, 2, 20, 200, 2000, 3, 30, 300, 3000}, 12);

    /* missing leading axis: [2,2,2] + [2,2] */
    run_binary(b_add, (struct operand){3, {2, 2, 2}, (const float[]){1, 2, 3, 4, 5, 6, 7, 8}},
               (struct operand){2, {2, 2}, (const float[]){10, 20, 30, 40}}, false, &r);
    expect_shape(&r, 3, (const int64_t[]){2, 2, 2});
    expect_values("leading", r.out, (const float[]){11, 22, 33, 44, 15, 26, 37, 48}, 8);

    /* [1] + [3,1] -> [3,1] */
    run_binary(b_add, (struct operand){1, {1}, (const float[]){0.5f}},
               (struct operand){2, {3, 1}, (const float[]){1, 2, 3}}, false, &r);
    expect_shape(&r, 2, (const int64_t[]){3, 1});
    expect_values("[1]+[3,1]", r.out, (const float[]){1.5f, 2.5f, 3.5f}, 3);

    /* size-1 axes on both sides: [1,2,1] - [2,1,3] -> [2,2,3] */
    run_binary(b_sub, (struct operand){3, {1, 2, 1}, (const float[]){100, 200}},
               (struct operand){3, {2, 1, 3}, a6}, false, &r);
    expect_shape(&r, 3, (const int64_t[]){2, 2, 3});
    expect_values("size1", r.out,
                  (const float[]){99, 98, 97, 199, 198, 197, 96, 95, 94, 196, 195, 194}, 12);

    /* a broadcast first operand: [] / [3] and [] - [3] */
    run_binary(b_div, (struct operand){0, {0}, (const float[]){6}},
               (struct operand){1, {3}, (const float[]){1, 2, -4}}, false, &r);
    expect_shape(&r, 1, (const int64_t[]){3});
    expect_values("scalar/vector", r.out, (const float[]){6, 3, -1.5f}, 3);

    /* maximum / minimum / greater with a broadcast row */
    const struct operand row = {1, {3}, (const float[]){2, 2, 2}};
    run_binary(b_max, (struct operand){2, {2, 3}, a6}, row, false, &r);
    expect_values("maximum row", r.out, (const float[]){2, 2, 3, 4, 5, 6}, 6);
    run_binary(b_min, (struct operand){2, {2, 3}, a6}, row, false, &r);
    expect_values("minimum row", r.out, (const float[]){1, 2, 2, 2, 2, 2}, 6);
    run_binary(b_greater, (struct operand){2, {2, 3}, a6}, row, false, &r);
    expect_values("greater row", r.out, (const float[]){0, 0, 1, 1, 1, 1}, 6);
    run_binary(b_equal, (struct operand){2, {2, 3}, a6}, row, false, &r);
    expect_values("equal row", r.out, (const float[]){0, 1, 0, 0, 0, 0}, 6);
}
END_TEST

START_TEST(test_nan_propagates)
{
    const float nan = NAN;
    const float a[3] = {nan, 1, nan}, b[3] = {1, nan, nan};
    struct operand oa = {1, {3}, a}, ob = {1, {3}, b};
    struct result r;
    run_binary(b_max, oa, ob, false, &r);
    expect_values("maximum", r.out, (const float[]){nan, nan, nan}, 3);
    run_binary(b_min, oa, ob, false, &r);
    expect_values("minimum", r.out, (const float[]){nan, nan, nan}, 3);
    run_binary(b_add, oa, ob, false, &r);
    expect_values("add", r.out, (const float[]){nan, nan, nan}, 3);
    /* comparisons with NaN are false */
    run_binary(b_equal, oa, ob, false, &r);
    expect_values("equal", r.out, (const float[]){0, 0, 0}, 3);
    run_binary(b_greater, oa, ob, false, &r);
    expect_values("greater", r.out, (const float[]){0, 0, 0}, 3);
}
END_TEST

START_TEST(test_division_special_values)
{
    struct result r;
    run_binary(b_div, (struct operand){1, {3}, (const float[]){1, -1, 0}},
               (struct operand){1, {3}, (const float[]){0, 0, 0}}, false, &r);
    ck_assert(isinf(r.out[0]) && r.out[0] > 0);
    ck_assert(isinf(r.out[1]) && r.out[1] < 0);
    ck_assert(isnan(r.out[2]));
}
END_TEST

/* ---- gradients (of sum(out)) --------------------------------------------------------------- */

START_TEST(test_gradients_broadcast)
{
    const float a6[6] = {1, 2, 3, 4, 5, 6};
    const struct operand a = {2, {2, 3}, a6}, row = {1, {3}, (const float[]){1, 2, 4}};
    struct result r;

    run_binary(b_add, a, row, true, &r);
    expect_values("add da", r.grad_a, (const float[]){1, 1, 1, 1, 1, 1}, 6);
    expect_values("add db", r.grad_b, (const float[]){2, 2, 2}, 3);

    run_binary(b_sub, a, row, true, &r);
    expect_values("sub da", r.grad_a, (const float[]){1, 1, 1, 1, 1, 1}, 6);
    expect_values("sub db", r.grad_b, (const float[]){-2, -2, -2}, 3);

    run_binary(b_mul, a, row, true, &r);
    expect_values("mul da", r.grad_a, (const float[]){1, 2, 4, 1, 2, 4}, 6);
    expect_values("mul db", r.grad_b, (const float[]){5, 7, 9}, 3);

    /* d(a/b)/da = 1/b; d/db = -a/b^2 summed over the rows */
    run_binary(b_div, a, row, true, &r);
    expect_values("div da", r.grad_a, (const float[]){1, 0.5f, 0.25f, 1, 0.5f, 0.25f}, 6);
    expect_values("div db", r.grad_b, (const float[]){-5, -7.0f / 4, -9.0f / 16}, 3);

    /* a column and a scalar: summed over the stretched axes */
    run_binary(b_mul, a, (struct operand){2, {2, 1}, (const float[]){3, -1}}, true, &r);
    expect_values("mul col da", r.grad_a, (const float[]){3, 3, 3, -1, -1, -1}, 6);
    expect_values("mul col db", r.grad_b, (const float[]){6, 15}, 2);
    run_binary(b_sub, (struct operand){0, {0}, (const float[]){2}}, a, true, &r);
    expect_values("scalar-matrix da", r.grad_a, (const float[]){6}, 1);
    expect_values("scalar-matrix db", r.grad_b, (const float[]){-1, -1, -1, -1, -1, -1}, 6);

    /* both sides stretched: [3,1] * [1,4] */
    run_binary(b_mul, (struct operand){2, {3, 1}, (const float[]){1, 2, 3}},
               (struct operand){2, {1, 4}, (const float[]){1, 10, 100, 1000}}, true, &r);
    expect_values("outer da", r.grad_a, (const float[]){1111, 1111, 1111}, 3);
    expect_values("outer db", r.grad_b, (const float[]){6, 6, 6, 6}, 4);

    /* [1] + [3,1] -> [3,1]: the [1] operand gets the sum */
    run_binary(b_add, (struct operand){1, {1}, (const float[]){0.5f}},
               (struct operand){2, {3, 1}, (const float[]){1, 2, 3}}, true, &r);
    expect_values("[1]+[3,1] da", r.grad_a, (const float[]){3}, 1);
    expect_values("[1]+[3,1] db", r.grad_b, (const float[]){1, 1, 1}, 3);
}
END_TEST

START_TEST(test_extremum_ties_split)
{
    const struct operand a = {1, {4}, (const float[]){1, 2, 3, -1}};
    const struct operand b = {1, {4}, (const float[]){1, 0, 5, -1}};
    struct result r;
    run_binary(b_max, a, b, true, &r);
    expect_values("maximum da", r.grad_a, (const float[]){0.5f, 1, 0, 0.5f}, 4);
    expect_values("maximum db", r.grad_b, (const float[]){0.5f, 0, 1, 0.5f}, 4);
    run_binary(b_min, a, b, true, &r);
    expect_values("minimum da", r.grad_a, (const float[]){0.5f, 0, 1, 0.5f}, 4);
    expect_values("minimum db", r.grad_b, (const float[]){0.5f, 1, 0, 0.5f}, 4);

    /* a broadcast scalar tied with every element: half of each element's gradient each */
    const struct operand row = {1, {3}, (const float[]){2, 2, 7}};
    const struct operand scalar = {0, {0}, (const float[]){2}};
    run_binary(b_max, row, scalar, true, &r);
    expect_values("maximum tie da", r.grad_a, (const float[]){0.5f, 0.5f, 1}, 3);
    expect_values("maximum tie db", r.grad_b, (const float[]){1}, 1);
    run_binary(b_min, row, scalar, true, &r);
    expect_values("minimum tie da", r.grad_a, (const float[]){0.5f, 0.5f, 0}, 3);
    expect_values("minimum tie db", r.grad_b, (const float[]){2}, 1);
}
END_TEST

/* The masks are piecewise constant: dg_grad through them gives zeros. */
START_TEST(test_compare_no_gradient)
{
    for (int k = 6; k < 8; k++) {
        struct result r;
        run_binary(all_ops[k].build, (struct operand){1, {2}, (const float[]){1, 2}},
                   (struct operand){1, {2}, (const float[]){2, 2}}, true, &r);
        expect_values("mask da", r.grad_a, (const float[]){0, 0}, 2);
        expect_values("mask db", r.grad_b, (const float[]){0, 0}, 2);
    }
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------ */

START_TEST(test_error_shapes)
{
    const char *name = all_ops[_i].name;
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 2, (const int64_t[]){2, 3});
    dg_node *b = dg_input(g, "b", 1, (const int64_t[]){4});
    ck_assert_ptr_null(all_ops[_i].build(g, a, b));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    const char *msg = dg_graph_error(g);
    ck_assert_msg(strstr(msg, name) == msg, "%s: %s", name, msg);
    ck_assert_msg(strstr(msg, "[2,3]") != NULL && strstr(msg, "[4]") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "do not broadcast") != NULL, "%s", msg);
    /* [2,3] vs [3,2] and [3] vs [2,1,2]: both named too */
    dg_graph_clear_error(g);
    dg_node *c = dg_input(g, "c", 3, (const int64_t[]){2, 1, 2});
    ck_assert_ptr_null(all_ops[_i].build(g, c, a));
    ck_assert_msg(strstr(dg_graph_error(g), "[2,1,2] and [2,3]") != NULL, "%s",
                  dg_graph_error(g));
    dg_graph_free(g);
}
END_TEST

START_TEST(test_error_int32_operand)
{
    const char *name = all_ops[_i].name;
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 1, (const int64_t[]){3});
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 1, (const int64_t[]){3});
    ck_assert_ptr_null(all_ops[_i].build(g, a, labels));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_DTYPE);
    ck_assert_msg(strstr(dg_graph_error(g), name) != NULL, "%s", dg_graph_error(g));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(all_ops[_i].build(g, labels, a));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_DTYPE);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_error_null_input)
{
    const char *name = all_ops[_i].name;
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 1, (const int64_t[]){3});
    ck_assert_ptr_null(all_ops[_i].build(g, a, NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    ck_assert_msg(strstr(dg_graph_error(g), name) != NULL &&
                  strstr(dg_graph_error(g), "input 2 is NULL") != NULL, "%s",
                  dg_graph_error(g));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(all_ops[_i].build(g, NULL, a));
    ck_assert_msg(strstr(dg_graph_error(g), "input 1 is NULL") != NULL, "%s",
                  dg_graph_error(g));
    /* with an error pending, a NULL passes through silently: the first message stays */
    char first[256];
    snprintf(first, sizeof first, "%s", dg_graph_error(g));
    ck_assert_ptr_null(all_ops[_i].build(g, all_ops[_i].build(g, NULL, a), a));
    ck_assert_str_eq(dg_graph_error(g), first);
    ck_assert_ptr_null(all_ops[_i].build(NULL, a, a));
    dg_graph_free(g);
}
END_TEST

START_TEST(test_error_foreign_node)
{
    dg_graph *g = dg_graph_new(), *other = dg_graph_new();
    dg_node *a = dg_input(g, "a", 1, (const int64_t[]){3});
    dg_node *b = dg_input(other, "b", 1, (const int64_t[]){3});
    ck_assert_ptr_null(all_ops[_i].build(g, a, b));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_FOREIGN_NODE);
    ck_assert_msg(strstr(dg_graph_error(g), all_ops[_i].name) != NULL, "%s",
                  dg_graph_error(g));
    ck_assert_int_eq(dg_graph_status(other), DG_OK);
    dg_graph_free(g);
    dg_graph_free(other);
}
END_TEST

/* ---- plans --------------------------------------------------------------------------------- */

/* [B,3] * [3] + its gradient, run at batch 2 and then 4. */
START_TEST(test_plan_changed_batch)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (const int64_t[]){2, 3});
    dg_node *w = dg_param(g, "w", 1, (const int64_t[]){3});
    float *wd = dg_param_data(w);
    wd[0] = 1, wd[1] = -2, wd[2] = 0.5f;
    dg_node *y = dg_mul(g, x, w);
    dg_node *gw = NULL;
    ck_assert_int_eq(dg_grad(g, dg_sum(g, y, 0, NULL, false), 1, &w, &gw), DG_OK);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){y, gw});
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    const float x2[6] = {1, 2, 3, 4, 5, 6};
    ck_assert_int_eq(dg_feed(p, x, x2), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    expect_values("batch 2 y", dg_data(p, y), (const float[]){1, -4, 1.5f, 4, -10, 3}, 6);
    expect_values("batch 2 dw", dg_data(p, gw), (const float[]){5, 7, 9}, 3);

    ck_assert_int_eq(dg_plan_set_batch(p, 4), DG_OK);
    ck_assert_int_eq(dg_plan_dim(p, y, 0), 4);
    const float x4[12] = {1, 2, 3, 4, 5, 6, 1, 1, 1, -1, -1, -1};
    ck_assert_int_eq(dg_feed(p, x, x4), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    expect_values("batch 4 y", dg_data(p, y),
                  (const float[]){1, -4, 1.5f, 4, -10, 3, 1, -2, 0.5f, -1, 2, -0.5f}, 12);
    expect_values("batch 4 dw", dg_data(p, gw), (const float[]){5, 7, 9}, 3);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* The same large broadcast products on 1 and 4 threads are bitwise identical. */
START_TEST(test_threads_bitwise_identical)
{
    enum { ROWS = 300, COLS = 257 };
    float *a = malloc(ROWS * COLS * sizeof *a), *b = malloc(COLS * sizeof *b);
    float *first = malloc(ROWS * COLS * sizeof *first);
    ck_assert(a && b && first);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    dg_test_fill_uniform(&rng, a, ROWS * COLS, -2, 2);
    dg_test_fill_uniform(&rng, b, COLS, 0.5f, 2);
    for (int k = 0; k < 6; k++) {
        for (int threads = 1; threads <= 4; threads += 3) {
            dg_graph *g = dg_graph_new();
            dg_graph_set_threads(g, threads);
            dg_node *x = dg_input(g, "a", 2, (const int64_t[]){ROWS, COLS});
            dg_node *y = dg_input(g, "b", 1, (const int64_t[]){COLS});
            dg_node *out = all_ops[k].build(g, x, y);
            dg_plan *p = dg_compile(g, 1, &out);
            ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
            dg_feed(p, x, a);
            dg_feed(p, y, b);
            ck_assert_int_eq(dg_run(p), DG_OK);
            if (threads == 1)
                memcpy(first, dg_data(p, out), ROWS * COLS * sizeof *first);
            else
                ck_assert_msg(memcmp(first, dg_data(p, out), ROWS * COLS * sizeof *first) == 0,
                              "%s differs between 1 and 4 threads", all_ops[k].name);
            dg_plan_free(p);
            dg_graph_free(g);
        }
    }
    free(a);
    free(b);
    free(first);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_binary");
    TCase *forward = tcase_create("forward");
    tcase_add_test(forward, test_same_shape_all_ops);
    tcase_add_test(forward, test_broadcast_patterns);
    tcase_add_test(forward, test_nan_propagates);
    tcase_add_test(forward, test_division_special_values);
    suite_add_tcase(s, forward);
    TCase *backward = tcase_create("backward");
    tcase_add_test(backward, test_gradients_broadcast);
    tcase_add_test(backward, test_extremum_ties_split);
    tcase_add_test(backward, test_compare_no_gradient);
    suite_add_tcase(s, backward);
    TCase *errors = tcase_create("errors");
    tcase_add_loop_test(errors, test_error_shapes, 0, N_OF(all_ops));
    tcase_add_loop_test(errors, test_error_int32_operand, 0, N_OF(all_ops));
    tcase_add_loop_test(errors, test_error_null_input, 0, N_OF(all_ops));
    tcase_add_loop_test(errors, test_error_foreign_node, 0, N_OF(all_ops));
    suite_add_tcase(s, errors);
    TCase *plans = tcase_create("plans");
    tcase_add_test(plans, test_plan_changed_batch);
    tcase_add_test(plans, test_threads_bitwise_identical);
    suite_add_tcase(s, plans);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
