/*
 * The autodiff core (src/autodiff/grad.c): gradients of small expressions against hand-derived
 * values, accumulation on fan-out, broadcasting, pruning of irrelevant nodes, documented zeros,
 * stop_gradient, errors, second order, and gradients that follow a changed batch.
 * Per-op gradients are covered by the op case table (test_fixtures, test_gradcheck).
 */
#include "op.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5f

/* Compiles `n` nodes, feeds the (nodes, data) pairs the plan reads, runs; fails the test on
 * error. */
static dg_plan *compile_run(dg_graph *g, int n, dg_node *const *outs, int n_feeds,
                            dg_node *const *feeds, const void *const *data)
{
    dg_plan *p = dg_compile(g, n, outs);
    ck_assert_msg(p != NULL, "compile: %s", dg_graph_error(g));
    for (int i = 0; i < n_feeds; i++)
        if (dg_plan_numel(p, feeds[i]) > 0) /* skip inputs the plan does not read */
            ck_assert_msg(dg_feed(p, feeds[i], data[i]) == DG_OK, "feed: %s",
                          dg_graph_error(g));
    ck_assert_msg(dg_run(p) == DG_OK, "run: %s", dg_graph_error(g));
    return p;
}

static float value_of(dg_plan *p, dg_node *n)
{
    const float *d = dg_data(p, n);
    ck_assert_ptr_nonnull(d);
    return d[0];
}

/* f = x*y + x: df/dx = y + 1, df/dy = x. */
START_TEST(test_product_plus)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL), *y = dg_input(g, "y", 0, NULL);
    dg_node *f = dg_add(g, dg_mul(g, x, y), x);
    dg_node *wrt[] = {x, y}, *grads[2];
    ck_assert_int_eq(dg_grad(g, f, 2, wrt, grads), DG_OK);
    float xv = 3.0f, yv = -2.0f;
    dg_plan *p = compile_run(g, 2, grads, 2, wrt, (const void *[]){&xv, &yv});
    ck_assert_float_eq_tol(value_of(p, grads[0]), -1.0f, TOL);
    ck_assert_float_eq_tol(value_of(p, grads[1]), 3.0f, TOL);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* f = x*x*x reads x three times: the contributions accumulate to 3x^2. */
START_TEST(test_fan_out_accumulates)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL);
    dg_node *f = dg_mul(g, dg_mul(g, x, x), x);
    dg_node *dx;
    ck_assert_int_eq(dg_grad(g, f, 1, &x, &dx), DG_OK);
    float xv = 1.5f;
    dg_plan *p = compile_run(g, 1, &dx, 1, &x, (const void *[]){&xv});
    ck_assert_float_eq_tol(value_of(p, dx), 3.0f * 1.5f * 1.5f, TOL);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* loss = sum((x + b) * u) with x [4,3], b [3] broadcast over rows: db[j] = sum_i u[i][j],
 * dx = u. */
START_TEST(test_broadcast_bias)
{
    dg_graph *g = dg_graph_new();
    int64_t xs[] = {4, 3}, bs[] = {3};
    float u[12];
    for (int i = 0; i < 12; i++)
        u[i] = 0.25f * (float)(i % 5) - 0.5f;
    dg_node *x = dg_input(g, "x", 2, xs);
    dg_node *b = dg_param(g, "b", 1, bs);
    dg_node *loss = dg_sum(g, dg_mul(g, dg_add(g, x, b), dg_constant(g, 2, xs, u)), 0, NULL,
                           false);
    dg_node *wrt[] = {x, b}, *grads[2];
    ck_assert_int_eq(dg_grad(g, loss, 2, wrt, grads), DG_OK);
    ck_assert_int_eq(dg_node_ndim(grads[1]), 1);
    ck_assert_int_eq(dg_node_dim(grads[1], 0), 3);
    float xv[12] = {0};
    dg_plan *p = compile_run(g, 2, grads, 1, &x, (const void *[]){xv});
    const float *dx = dg_data(p, grads[0]), *db = dg_data(p, grads[1]);
    for (int j = 0; j < 3; j++) {
        float want = 0.0f;
        for (int i = 0; i < 4; i++)
            want += u[i * 3 + j];
        ck_assert_float_eq_tol(db[j], want, TOL);
    }
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq_tol(dx[i], u[i], TOL);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Nodes added by dg_grad w.r.t. x for loss = x*a + branch, where `branch` does not depend on
 * x: only the x path gets backward nodes, however big the branch. */
static int backward_nodes_added(int branch_depth, dg_graph **out_graph)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL), *y = dg_input(g, "y", 0, NULL);
    dg_node *branch = y;
    for (int i = 0; i < branch_depth; i++)
        branch = dg_mul(g, branch, y);
    /* An unrelated node that does not even reach the loss. */
    dg_node *unrelated = dg_mul(g, dg_mul(g, x, y), y);
    ck_assert_ptr_nonnull(unrelated);
    dg_node *loss = dg_add(g, dg_mul(g, x, dg_scalar(g, 2.0f)), branch);
    int before = dg_graph_node_count(g);
    dg_node *dx;
    ck_assert_int_eq(dg_grad(g, loss, 1, &x, &dx), DG_OK);
    *out_graph = g;
    return dg_graph_node_count(g) - before;
}

START_TEST(test_pruning)
{
    dg_graph *small, *big;
    int added_small = backward_nodes_added(0, &small);
    int added_big = backward_nodes_added(6, &big);
    ck_assert_int_gt(added_small, 0);
    ck_assert_int_eq(added_small, added_big);
    /* The DOT dump draws the backward nodes in their own cluster, labelled by what they are
     * the gradient of; nothing is the gradient of y. */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(mem);
    ck_assert_int_eq(dg_graph_dump_dot(big, mem), DG_OK);
    fclose(mem);
    ck_assert_ptr_nonnull(strstr(text, "cluster_backward"));
    ck_assert_ptr_nonnull(strstr(text, "grad of x"));
    ck_assert_ptr_null(strstr(text, "grad of y"));
    free(text);
    dg_graph_free(small);
    dg_graph_free(big);
}
END_TEST

START_TEST(test_non_scalar_loss)
{
    dg_graph *g = dg_graph_new();
    int64_t s[] = {3};
    dg_node *x = dg_input(g, "x", 1, s);
    dg_node *f = dg_mul(g, x, x), *dx = NULL;
    ck_assert_int_eq(dg_grad(g, f, 1, &x, &dx), DG_ERR_SHAPE);
    ck_assert_ptr_null(dx);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "grad"));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "[3]"));
    dg_graph_free(g);
}
END_TEST

START_TEST(test_int32_wrt)
{
    dg_graph *g = dg_graph_new();
    int64_t s[] = {3};
    dg_node *x = dg_input(g, "x", 0, NULL);
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 1, s);
    dg_node *f = dg_mul(g, x, x), *d[2] = {NULL, NULL};
    ck_assert_int_eq(dg_grad(g, f, 2, (dg_node *[]){x, labels}, d), DG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "int32"));
    ck_assert_ptr_null(d[0]);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_bad_arguments)
{
    dg_graph *g = dg_graph_new(), *other = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL), *z = dg_input(other, "z", 0, NULL);
    dg_node *f = dg_mul(g, x, x), *d;
    ck_assert_int_eq(dg_grad(NULL, f, 1, &x, &d), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_grad(g, NULL, 1, &x, &d), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "loss is NULL"));
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_grad(g, f, 1, NULL, &d), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_grad(g, f, 1, (dg_node *[]){NULL}, &d), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_grad(g, f, 1, &z, &d), DG_ERR_FOREIGN_NODE);
    dg_graph_clear_error(g);
    /* A pending error is returned as is. */
    dg_add(g, x, NULL);
    ck_assert_int_eq(dg_grad(g, f, 1, &x, &d), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "add"));
    dg_graph_free(g);
    dg_graph_free(other);
}
END_TEST

/* wrt not on any path to the loss: a node of zeros of its shape, not an error. */
START_TEST(test_unreachable_wrt_is_zero)
{
    dg_graph *g = dg_graph_new();
    int64_t s[] = {2, 3};
    dg_node *x = dg_input(g, "x", 0, NULL);
    dg_node *w = dg_param(g, "w", 2, s);
    dg_node *v = dg_input(g, "v", 0, NULL);
    dg_node *f = dg_mul(g, x, x), *d[2];
    ck_assert_int_eq(dg_grad(g, f, 2, (dg_node *[]){w, v}, d), DG_OK);
    ck_assert_int_eq(dg_node_ndim(d[0]), 2);
    ck_assert_int_eq(dg_node_dim(d[0], 1), 3);
    for (int i = 0; i < 6; i++)
        dg_param_data(w)[i] = (float)i + 1.0f;
    dg_plan *p = compile_run(g, 2, d, 0, NULL, NULL);
    const float *dw = dg_data(p, d[0]);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(dw[i], 0.0f, 0.0f + 1e-30f);
    ck_assert_float_eq_tol(value_of(p, d[1]), 0.0f, 1e-30f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* f = x * stop_gradient(x): the value is x^2, the gradient x (the stopped factor is a
 * constant); f = stop_gradient(x) alone has gradient 0. */
START_TEST(test_stop_gradient)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL);
    dg_node *f = dg_mul(g, x, dg_stop_gradient(g, x));
    dg_node *h = dg_add(g, dg_stop_gradient(g, x), dg_scalar(g, 1.0f));
    dg_node *d[2];
    ck_assert_int_eq(dg_grad(g, f, 1, &x, &d[0]), DG_OK);
    ck_assert_int_eq(dg_grad(g, h, 1, &x, &d[1]), DG_OK);
    float xv = 2.5f;
    dg_plan *p = compile_run(g, 2, d, 1, &x, (const void *[]){&xv});
    ck_assert_float_eq_tol(value_of(p, d[0]), 2.5f, TOL);
    ck_assert_float_eq_tol(value_of(p, d[1]), 0.0f, TOL);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* An op whose rule is the explicit zero rule (a comparison mask) is a constant to dg_grad:
 * zero gradient, no error. d/dx (3 * [x > 0] + x) = 1. */
START_TEST(test_zero_grad_op_is_constant)
{
    ck_assert_ptr_eq(dg__op_def(DG_OP_greater)->backward, dg__zero_grad);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL);
    dg_node *mask = dg__make_node(g, DG_OP_greater, 2, (dg_node *[]){x, dg_scalar(g, 0.0f)},
                                  NULL);
    dg_node *f = dg_add(g, dg_mul(g, mask, dg_scalar(g, 3.0f)), x), *d;
    ck_assert_int_eq(dg_grad(g, f, 1, &x, &d), DG_OK);
    float xv = 0.5f;
    dg_plan *p = compile_run(g, 1, &d, 1, &x, (const void *[]){&xv});
    ck_assert_float_eq_tol(value_of(p, d), 1.0f, TOL);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* A test-only op with no gradient rule at all: out = x (a copy). */
static dg_status copy_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_shape *in, struct dg_shape *out, char *msg,
                            size_t len)
{
    *out = in[0];
    return DG_OK;
}

static void copy_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                         const struct dg_tensor *in, struct dg_tensor *out,
                         const struct dg_exec_ctx *ctx)
{
    memcpy(out->data, in[0].data, (size_t)dg__numel(&out->shape) * 4);
}

static const struct dg_op_def ruleless_copy = {
    .name = "ruleless_copy", .n_inputs = 1, .infer = copy_infer, .forward = copy_forward,
};

/* "No rule" is not "zero gradient": dg_grad through an op without a rule fails with
 * DG_ERR_NOT_DIFFERENTIABLE naming the op and its node, and leaves grads untouched. The
 * same op off the path to the wrt node is no error. */
START_TEST(test_op_without_rule_is_an_error)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL);
    dg_node *copy = dg__make_node_def(g, &ruleless_copy, 1, &x, NULL);
    ck_assert_ptr_nonnull(copy);
    dg_node *f = dg_mul(g, copy, x), *d = NULL;
    ck_assert_int_eq(dg_grad(g, f, 1, &x, &d), DG_ERR_NOT_DIFFERENTIABLE);
    ck_assert_ptr_null(d);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "ruleless_copy"));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "no gradient rule"));
    dg_graph_free(g);

    g = dg_graph_new();
    x = dg_input(g, "x", 0, NULL);
    dg_node *y = dg_input(g, "y", 0, NULL);
    copy = dg__make_node_def(g, &ruleless_copy, 1, &y, NULL);
    f = dg_add(g, dg_mul(g, x, x), copy);
    ck_assert_int_eq(dg_grad(g, f, 1, &x, &d), DG_OK); /* y is not asked for */
    dg_graph_free(g);
}
END_TEST

/* No cap on inputs: concat and add_n of 1,000 inputs build, differentiate and run, and match
 * a reference computed here. x_i = [a_i, b_i];
 *   c = concat(x_0 .. x_999) ([2000]), s = add_n(x_0 .. x_999) ([2]),
 *   loss = sum(c * w) + sum(s * s) with w[k] = k / 1000,
 *   d loss / d x_i[j] = w[2i + j] + 2 s[j]. */
START_TEST(test_thousand_inputs)
{
    enum { N = 1000 };
    dg_graph *g = dg_graph_new();
    dg_node **xs = malloc(N * sizeof *xs), **grads = malloc(N * sizeof *grads);
    float *data = malloc(2 * N * sizeof *data), *w = malloc(2 * N * sizeof *w);
    ck_assert(xs != NULL && grads != NULL && data != NULL && w != NULL);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        xs[i] = dg_input(g, name, 1, (const int64_t[]){2});
        data[2 * i] = (float)((i % 17) - 8) / 16.0f;
        data[2 * i + 1] = (float)((i % 5) - 2) / 8.0f;
    }
    for (int k = 0; k < 2 * N; k++)
        w[k] = (float)k / 1000.0f;
    dg_node *c = dg_concat(g, N, xs, 0), *s = dg_add_n(g, N, xs);
    ck_assert_msg(c != NULL && s != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_node_dim(c, 0), 2 * N);
    dg_node *weights = dg_constant(g, 1, (const int64_t[]){2 * N}, w);
    dg_node *loss = dg_add(g, dg_sum(g, dg_mul(g, c, weights), 0, NULL, false),
                           dg_sum(g, dg_mul(g, s, s), 0, NULL, false));
    ck_assert_msg(dg_grad(g, loss, N, xs, grads) == DG_OK, "%s", dg_graph_error(g));
    dg_node **outs = malloc((N + 2) * sizeof *outs);
    ck_assert_ptr_nonnull(outs);
    memcpy(outs, grads, N * sizeof *outs);
    outs[N] = c;
    outs[N + 1] = s;
    dg_plan *p = dg_compile(g, N + 2, outs);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(dg_feed(p, xs[i], data + 2 * i), DG_OK);
    ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
    double sum[2] = {0.0, 0.0};
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 2; j++)
            sum[j] += data[2 * i + j];
    const float *cv = dg_data(p, c), *sv = dg_data(p, s);
    for (int k = 0; k < 2 * N; k++)
        ck_assert_float_eq_tol(cv[k], data[k], 1e-7f); /* a copy: exact */
    for (int j = 0; j < 2; j++)
        ck_assert_float_eq_tol(sv[j], sum[j], 1e-3);
    for (int i = 0; i < N; i++) {
        const float *gv = dg_data(p, grads[i]);
        for (int j = 0; j < 2; j++)
            ck_assert_msg(fabs(gv[j] - (w[2 * i + j] + 2.0 * sum[j])) < 1e-3,
                          "d/dx%d[%d] = %g, want %g", i, j, gv[j], w[2 * i + j] + 2.0 * sum[j]);
    }
    dg_plan_free(p);
    free(outs);
    free(xs);
    free(grads);
    free(data);
    free(w);
    dg_graph_free(g);
}
END_TEST

/* Second order: d/dx (d/dx x^3) = 6x. */
START_TEST(test_second_order)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL);
    dg_node *f = dg_mul(g, dg_mul(g, x, x), x);
    dg_node *dx, *ddx;
    ck_assert_int_eq(dg_grad(g, f, 1, &x, &dx), DG_OK);
    ck_assert_int_eq(dg_grad(g, dx, 1, &x, &ddx), DG_OK);
    float xv = -1.25f;
    dg_plan *p = compile_run(g, 2, (dg_node *[]){dx, ddx}, 1, &x, (const void *[]){&xv});
    ck_assert_float_eq_tol(value_of(p, dx), 3.0f * 1.25f * 1.25f, TOL);
    ck_assert_float_eq_tol(value_of(p, ddx), 6.0f * -1.25f, TOL);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Gradients built at batch 4 stay right after dg_plan_set_batch: loss = sum(x * b) with x
 * [B,3], so db[j] = sum over the batch of x[:, j] for whatever B the plan runs. */
START_TEST(test_changed_batch)
{
    dg_graph *g = dg_graph_new();
    int64_t xs[] = {4, 3}, bs[] = {3};
    dg_node *x = dg_input(g, "x", 2, xs);
    dg_node *b = dg_param(g, "b", 1, bs);
    dg_node *loss = dg_sum(g, dg_mul(g, x, b), 0, NULL, false);
    dg_node *db;
    ck_assert_int_eq(dg_grad(g, loss, 1, &b, &db), DG_OK);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){loss, db});
    ck_assert_ptr_nonnull(p);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 3);
    dg_test_fill_uniform(&rng, dg_param_data(b), 3, -1, 1);
    const int64_t batches[] = {4, 7, 1};
    for (int t = 0; t < 3; t++) {
        int64_t batch = batches[t];
        ck_assert_int_eq(dg_plan_set_batch(p, batch), DG_OK);
        float xv[7 * 3];
        dg_test_fill_uniform(&rng, xv, batch * 3, -2, 2);
        ck_assert_int_eq(dg_feed(p, x, xv), DG_OK);
        ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
        ck_assert_int_eq(dg_plan_dim(p, db, 0), 3);
        const float *got = dg_data(p, db);
        double total = 0.0;
        for (int j = 0; j < 3; j++) {
            double want = 0.0;
            for (int64_t i = 0; i < batch; i++)
                want += xv[i * 3 + j];
            total += want * dg_param_data(b)[j];
            ck_assert_float_eq_tol(got[j], (float)want, 1e-5f);
        }
        ck_assert_float_eq_tol(value_of(p, loss), (float)total, 1e-5f);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* x [B,3] * p [2,3] built at B = 2: at batch 1, x broadcasts against p and its gradient
 * must be summed back to [1,3] (the backward rule cannot assume equal shapes). */
START_TEST(gradient_unbroadcasts_after_batch_shrinks)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 3});
    dg_node *p = dg_param(g, "p", 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++)
        dg_param_data(p)[i] = (float)(i + 1);
    dg_node *loss = dg_sum(g, dg_mul(g, x, p), 0, NULL, false);
    dg_node *gx;
    ck_assert_int_eq(dg_grad(g, loss, 1, &x, &gx), DG_OK);
    dg_plan *plan = dg_compile(g, 1, &gx);
    ck_assert_int_eq(dg_plan_set_batch(plan, 1), DG_OK);
    ck_assert_int_eq(dg_plan_dim(plan, gx, 0), 1);
    ck_assert_int_eq(dg_feed(plan, x, (float[]){1, 1, 1}), DG_OK);
    ck_assert_int_eq(dg_run(plan), DG_OK);
    for (int c = 0; c < 3; c++) /* d/dx of sum(x * p) over both rows of p */
        ck_assert_float_eq_tol(dg_data(plan, gx)[c], (float)(c + 1) + (float)(c + 4), 1e-6f);
    dg_plan_free(plan);
    dg_graph_free(g);
}
END_TEST

/* A bias added to a layer's output needs no unbroadcasting for the layer's gradient. */
START_TEST(no_sum_to_where_shapes_cannot_diverge)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){8, 4});
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){4, 5});
    dg_node *b = dg_param(g, "b", 1, (int64_t[]){5});
    dg_node *loss = dg_sum(g, dg_relu(g, dg_add(g, dg_matmul(g, x, w), b)), 0, NULL, false);
    dg_node *grads[2];
    ck_assert_int_eq(dg_grad(g, loss, 2, (dg_node *[]){w, b}, grads), DG_OK);
    int sum_tos = 0;
    for (int i = 0; i < dg_graph_node_count(g); i++)
        sum_tos += strcmp(dg_node_op_name(dg_graph_node(g, i)), "sum_to") == 0;
    ck_assert_int_eq(sum_tos, 1); /* the bias gradient only */
    dg_graph_free(g);
}
END_TEST

/* A 2-D weight shared by batched rows, x [B,T,F] x w^T: its gradient is one GEMM over the
 * B*T rows (no batched product, no sum_to), and stays right when the batch changes:
 * dw[n][f] = sum over b, t of dy[b,t,n] x[b,t,f], with loss = sum(y * c) so dy = c. */
START_TEST(shared_weight_gradient_is_one_gemm_at_any_batch)
{
    enum { T = 3, F = 4, N = 5 };
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){2, T, F});
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){N, F});
    dg_node *c = dg_param(g, "c", 1, (int64_t[]){N});
    dg_node *y = dg_matmul_ex(g, x, w, false, true);
    dg_node *loss = dg_sum(g, dg_mul(g, y, c), 0, NULL, false);
    dg_node *dw, *dx;
    ck_assert_int_eq(dg_grad(g, loss, 1, &w, &dw), DG_OK);
    ck_assert_int_eq(dg_grad(g, loss, 1, &x, &dx), DG_OK);
    ck_assert_int_eq(dg_node_ndim(dw), 2);
    for (int i = 0; i < dg_graph_node_count(g); i++) {
        const dg_node *n = dg_graph_node(g, i);
        ck_assert_str_ne(dg_node_op_name(n), "sum_to");
        if (strcmp(dg_node_op_name(n), "matmul") == 0 && n != y && n != dx)
            ck_assert_int_eq(dg_node_ndim(n), 2); /* dw: one [N,F] product */
    }
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){dw, dx});
    ck_assert_ptr_nonnull(p);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 5);
    dg_test_fill_uniform(&rng, dg_param_data(w), N * F, -1, 1);
    dg_test_fill_uniform(&rng, dg_param_data(c), N, -1, 1);
    const int64_t batches[] = {2, 7, 1};
    for (int r = 0; r < 3; r++) {
        int64_t batch = batches[r];
        ck_assert_int_eq(dg_plan_set_batch(p, batch), DG_OK);
        float xv[7 * T * F];
        dg_test_fill_uniform(&rng, xv, batch * T * F, -2, 2);
        ck_assert_int_eq(dg_feed(p, x, xv), DG_OK);
        ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
        const float *got = dg_data(p, dw), *cv = dg_param_data(c);
        for (int n = 0; n < N; n++)
            for (int f = 0; f < F; f++) {
                double want = 0.0;
                for (int64_t row = 0; row < batch * T; row++)
                    want += (double)cv[n] * xv[row * F + f];
                ck_assert_float_eq_tol(got[n * F + f], (float)want, 1e-4f);
            }
        ck_assert_int_eq(dg_plan_dim(p, dx, 0), batch);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Backward rules build only the gradients dg_grad needs: a first layer's input gets none. */
START_TEST(no_gradient_for_inputs_nobody_asked_for)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, 3});
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){3, 2});
    dg_node *loss = dg_sum(g, dg_mul(g, dg_matmul(g, x, w), dg_matmul(g, x, w)), 0, NULL, false);
    dg_node *gw;
    ck_assert_int_eq(dg_grad(g, loss, 1, &w, &gw), DG_OK);
    int matmuls = 0;
    for (int i = 0; i < dg_graph_node_count(g); i++)
        matmuls += strcmp(dg_node_op_name(dg_graph_node(g, i)), "matmul") == 0;
    ck_assert_int_eq(matmuls, 2 + 2); /* two forward products, two weight gradients, no dX */
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_product_plus);
    tcase_add_test(tc, no_gradient_for_inputs_nobody_asked_for);
    tcase_add_test(tc, gradient_unbroadcasts_after_batch_shrinks);
    tcase_add_test(tc, no_sum_to_where_shapes_cannot_diverge);
    tcase_add_test(tc, shared_weight_gradient_is_one_gemm_at_any_batch);
    tcase_add_test(tc, test_fan_out_accumulates);
    tcase_add_test(tc, test_broadcast_bias);
    tcase_add_test(tc, test_pruning);
    tcase_add_test(tc, test_non_scalar_loss);
    tcase_add_test(tc, test_int32_wrt);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_unreachable_wrt_is_zero);
    tcase_add_test(tc, test_stop_gradient);
    tcase_add_test(tc, test_zero_grad_op_is_constant);
    tcase_add_test(tc, test_op_without_rule_is_an_error);
    tcase_add_test(tc, test_thousand_inputs);
    tcase_add_test(tc, test_second_order);
    tcase_add_test(tc, test_changed_batch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return dg_test_run(suite()); }
