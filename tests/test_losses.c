/*
 * Losses by hand: softmax cross-entropy with logits of +-1000 (finite loss and gradient),
 * ignored labels (negative and >= C) left out of the mean, an all-ignored batch, bce at p = 0
 * and 1 (clamped logs), bce_with_logits at |z| = 1000, l1's zero gradient at a == b, huber on
 * both branches, the mean's divisor after dg_plan_set_batch, second derivatives through the
 * cross-entropy, and every error path of the constructors.
 */
#include "dagrad.h"
#include "test_util.h"

#include <math.h>
#include <string.h>

static void expect_error(dg_graph *g, dg_node *node, dg_status status, const char *const *parts)
{
    ck_assert_ptr_null(node);
    ck_assert_int_eq(dg_graph_status(g), status);
    for (int i = 0; parts[i] != NULL; i++)
        ck_assert_msg(strstr(dg_graph_error(g), parts[i]) != NULL, "'%s' not in '%s'", parts[i],
                      dg_graph_error(g));
    dg_graph_clear_error(g);
}

static dg_plan *compile_ok(dg_graph *g, int n, dg_node **outs)
{
    ck_assert_msg(dg_graph_status(g) == DG_OK, "%s", dg_graph_error(g));
    dg_plan *p = dg_compile(g, n, outs);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    return p;
}

static void run_ok(dg_plan *p)
{
    ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(dg_plan_graph(p)));
}

/* Sets up logits [n,c] and labels [n] inputs with the cross-entropy and its gradient. */
struct ce {
    dg_graph *g;
    dg_node *logits, *labels, *loss, *grad;
    dg_plan *p;
};

static void ce_build(struct ce *t, int64_t n, int64_t c)
{
    t->g = dg_graph_new();
    t->logits = dg_input(t->g, "logits", 2, (const int64_t[]){n, c});
    t->labels = dg_input_typed(t->g, "labels", DG_I32, 1, (const int64_t[]){n});
    t->loss = dg_softmax_cross_entropy(t->g, t->logits, t->labels);
    ck_assert_int_eq(dg_node_ndim(t->loss), 0);
    ck_assert_int_eq(dg_grad(t->g, t->loss, 1, &t->logits, &t->grad), DG_OK);
    t->p = compile_ok(t->g, 2, (dg_node *[]){t->loss, t->grad});
}

static void ce_run(struct ce *t, const float *logits, const int32_t *labels)
{
    ck_assert_int_eq(dg_feed(t->p, t->logits, logits), DG_OK);
    ck_assert_int_eq(dg_feed(t->p, t->labels, labels), DG_OK);
    run_ok(t->p);
}

static void ce_free(struct ce *t)
{
    dg_plan_free(t->p);
    dg_graph_free(t->g);
}

START_TEST(test_ce_extreme_logits)
{
    struct ce t;
    ce_build(&t, 2, 3);
    const float logits[6] = {0, 0, 0, 1000, -1000, 0};
    const int32_t labels[2] = {0, 1};
    ce_run(&t, logits, labels);
    float loss = dg_data(t.p, t.loss)[0];
    ck_assert(isfinite(loss));
    ck_assert_float_eq_tol(loss, (float)((log(3.0) + 2000.0) / 2), 1e-3f);
    const float *grad = dg_data(t.p, t.grad);
    const float expect[6] = {(1.0f / 3 - 1) / 2, 1.0f / 6, 1.0f / 6, 0.5f, -0.5f, 0.0f};
    for (int i = 0; i < 6; i++) {
        ck_assert(isfinite(grad[i]));
        ck_assert_float_eq_tol(grad[i], expect[i], 1e-6f);
    }
    ce_free(&t);
}
END_TEST

/* Labels outside [0, C) are ignored: no loss, no gradient, not counted in the mean. */
START_TEST(test_ce_ignored_labels)
{
    struct ce t;
    ce_build(&t, 4, 3);
    const float logits[12] = {1, 2, 3, 5, 5, 5, 0, 1, 0, 9, 9, 9};
    const int32_t labels[4] = {2, -100, 1, 3};
    ce_run(&t, logits, labels);
    double row0 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0;
    double row2 = log(2.0 + exp(1.0)) - 1.0;
    ck_assert_float_eq_tol(dg_data(t.p, t.loss)[0], (float)((row0 + row2) / 2), 1e-6f);
    const float *grad = dg_data(t.p, t.grad);
    for (int j = 0; j < 3; j++) {
        ck_assert_float_eq_tol(grad[3 + j], 0.0f, 1e-12f);
        ck_assert_float_eq_tol(grad[9 + j], 0.0f, 1e-12f);
    }
    double z = exp(1.0) + exp(2.0) + exp(3.0);
    ck_assert_float_eq_tol(grad[2], (float)((exp(3.0) / z - 1) / 2), 1e-6f);
    ck_assert_float_eq_tol(grad[0], (float)(exp(1.0) / z / 2), 1e-6f);

    /* every row ignored: loss 0 and gradient 0 (PyTorch would give NaN) */
    const int32_t none[4] = {-1, 3, -100, 7};
    ce_run(&t, logits, none);
    ck_assert_float_eq_tol(dg_data(t.p, t.loss)[0], 0.0f, 1e-12f);
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq_tol(dg_data(t.p, t.grad)[i], 0.0f, 1e-12f);
    ce_free(&t);
}
END_TEST

/* A changed batch changes the divisor of every loss (forward and backward). */
START_TEST(test_batch_change_mean)
{
    struct ce t;
    ce_build(&t, 2, 2);
    const float logits[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int32_t labels[4] = {0, 1, 1, -5};
    ce_run(&t, logits, labels);
    ck_assert_float_eq_tol(dg_data(t.p, t.loss)[0], logf(2.0f), 1e-6f);
    ck_assert_float_eq_tol(dg_data(t.p, t.grad)[0], -0.25f, 1e-6f); /* (0.5-1)/2 */
    ck_assert_int_eq(dg_plan_set_batch(t.p, 4), DG_OK);
    ce_run(&t, logits, labels);
    ck_assert_float_eq_tol(dg_data(t.p, t.loss)[0], logf(2.0f), 1e-6f);
    ck_assert_float_eq_tol(dg_data(t.p, t.grad)[0], -0.5f / 3, 1e-6f); /* 3 valid rows */
    ck_assert_float_eq_tol(dg_data(t.p, t.grad)[6], 0.0f, 1e-12f);
    ce_free(&t);

    /* mse: mean((a-b)^2) over 2x3, then 4x3 */
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 2, (const int64_t[]){2, 3});
    dg_node *b = dg_input(g, "b", 2, (const int64_t[]){2, 3});
    dg_node *losses[4] = {dg_mse_loss(g, a, b), dg_l1_loss(g, a, b),
                          dg_huber_loss(g, a, b, 1.0f), dg_bce_with_logits(g, a, b)};
    dg_node *grads[4];
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(dg_grad(g, losses[k], 1, &a, &grads[k]), DG_OK);
    dg_node *outs[8] = {losses[0], losses[1], losses[2], losses[3],
                        grads[0], grads[1], grads[2], grads[3]};
    dg_plan *p = compile_ok(g, 8, outs);
    float av[12], bv[12];
    for (int i = 0; i < 12; i++) {
        av[i] = 1.0f;
        bv[i] = 0.0f;
    }
    for (int batch = 2; batch <= 4; batch += 2) {
        if (batch == 4)
            ck_assert_int_eq(dg_plan_set_batch(p, 4), DG_OK);
        ck_assert_int_eq(dg_feed(p, a, av), DG_OK);
        ck_assert_int_eq(dg_feed(p, b, bv), DG_OK);
        run_ok(p);
        float n = (float)(batch * 3);
        ck_assert_float_eq_tol(dg_data(p, losses[0])[0], 1.0f, 1e-6f);
        ck_assert_float_eq_tol(dg_data(p, losses[1])[0], 1.0f, 1e-6f);
        ck_assert_float_eq_tol(dg_data(p, losses[2])[0], 0.5f, 1e-6f); /* |d| = 1 = delta */
        ck_assert_float_eq_tol(dg_data(p, losses[3])[0], (float)log1p(exp(-1.0)) + 1.0f,
                               1e-6f);
        for (int i = 0; i < batch * 3; i++) {
            ck_assert_float_eq_tol(dg_data(p, grads[0])[i], 2.0f / n, 1e-7f);
            ck_assert_float_eq_tol(dg_data(p, grads[1])[i], 1.0f / n, 1e-7f);
            ck_assert_float_eq_tol(dg_data(p, grads[2])[i], 1.0f / n, 1e-7f);
            ck_assert_float_eq_tol(dg_data(p, grads[3])[i],
                                   (float)(1.0 / (1.0 + exp(-1.0))) / n, 1e-7f);
        }
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* bce clamps each log at -100 (PyTorch): p = 0 or 1 gives finite values. */
START_TEST(test_bce_clamped)
{
    dg_graph *g = dg_graph_new();
    dg_node *p_in = dg_input(g, "p", 1, (const int64_t[]){4});
    dg_node *y_in = dg_input(g, "y", 1, (const int64_t[]){4});
    dg_node *loss = dg_bce(g, p_in, y_in);
    dg_node *grads[2];
    ck_assert_int_eq(dg_grad(g, loss, 2, (dg_node *[]){p_in, y_in}, grads), DG_OK);
    dg_plan *p = compile_ok(g, 3, (dg_node *[]){loss, grads[0], grads[1]});
    const float pv[4] = {0, 1, 0.5f, 0}, yv[4] = {0, 1, 1, 1};
    ck_assert_int_eq(dg_feed(p, p_in, pv), DG_OK);
    ck_assert_int_eq(dg_feed(p, y_in, yv), DG_OK);
    run_ok(p);
    /* terms: 0, 0, log 2, 100 (the clamp) */
    ck_assert_float_eq_tol(dg_data(p, loss)[0], (float)((log(2.0) + 100.0) / 4), 1e-5f);
    const float *gp = dg_data(p, grads[0]), *gy = dg_data(p, grads[1]);
    for (int i = 0; i < 4; i++)
        ck_assert(isfinite(gp[i]) && isfinite(gy[i]));
    ck_assert_float_eq_tol(gp[0], 0.0f, 1e-12f);
    ck_assert_float_eq_tol(gp[2], -0.5f, 1e-6f); /* (0.5-1)/0.25/4 */
    ck_assert_float_eq_tol(gy[0], 25.0f, 1e-4f); /* (log 1 - (-100)) / 4 */
    ck_assert_float_eq_tol(gy[2], 0.0f, 1e-7f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_elementwise_values)
{
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 1, (const int64_t[]){3});
    dg_node *b = dg_input(g, "b", 1, (const int64_t[]){3});
    dg_node *losses[4] = {dg_bce_with_logits(g, a, b), dg_l1_loss(g, a, b),
                          dg_huber_loss(g, a, b, 1.0f), dg_mse_loss(g, a, b)};
    dg_node *gl1[2];
    ck_assert_int_eq(dg_grad(g, losses[1], 2, (dg_node *[]){a, b}, gl1), DG_OK);
    dg_node *outs[6] = {losses[0], losses[1], losses[2], losses[3], gl1[0], gl1[1]};
    dg_plan *p = compile_ok(g, 6, outs);

    /* bce_with_logits at z = +-1000: no overflow */
    const float z[3] = {1000, -1000, 0}, y[3] = {1, 0, 0.5f};
    dg_feed(p, a, z);
    dg_feed(p, b, y);
    run_ok(p);
    ck_assert_float_eq_tol(dg_data(p, losses[0])[0], (float)(log(2.0) / 3), 1e-6f);

    /* l1 and huber on both branches; l1's gradient is 0 where a == b */
    const float av[3] = {0.5f, 3.0f, 2.0f}, bv[3] = {0.0f, 0.0f, 2.0f};
    dg_feed(p, a, av);
    dg_feed(p, b, bv);
    run_ok(p);
    ck_assert_float_eq_tol(dg_data(p, losses[1])[0], 3.5f / 3, 1e-6f);
    ck_assert_float_eq_tol(dg_data(p, losses[2])[0], (0.125f + 2.5f) / 3, 1e-6f);
    ck_assert_float_eq_tol(dg_data(p, losses[3])[0], 9.25f / 3, 1e-6f);
    ck_assert_float_eq_tol(dg_data(p, gl1[0])[0], 1.0f / 3, 1e-7f);
    ck_assert_float_eq_tol(dg_data(p, gl1[0])[2], 0.0f, 1e-12f);
    ck_assert_float_eq_tol(dg_data(p, gl1[1])[1], -1.0f / 3, 1e-7f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Hessian-vector product through the cross-entropy (the backward of its fused gradient),
 * against central differences of the gradient. */
START_TEST(test_ce_second_derivative)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (const int64_t[]){2, 3});
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 1, (const int64_t[]){2});
    const float vv[6] = {0.3f, -0.2f, 0.5f, 1.0f, 0.1f, -0.7f};
    dg_node *v = dg_constant(g, 2, (const int64_t[]){2, 3}, vv);
    dg_node *loss = dg_softmax_cross_entropy(g, x, labels);
    dg_node *grad, *hvp;
    ck_assert_int_eq(dg_grad(g, loss, 1, &x, &grad), DG_OK);
    dg_node *dot = dg_sum(g, dg_mul(g, grad, v), 0, NULL, false);
    ck_assert_int_eq(dg_grad(g, dot, 1, &x, &hvp), DG_OK);
    dg_plan *p = compile_ok(g, 2, (dg_node *[]){grad, hvp});
    float xv[6] = {0.1f, 0.7f, -0.4f, 1.2f, 0.0f, 0.3f};
    const int32_t lv[2] = {2, 0};
    dg_feed(p, labels, lv);
    dg_feed(p, x, xv);
    run_ok(p);
    float h[6];
    memcpy(h, dg_data(p, hvp), sizeof h);
    /* (grad(x + eps v) - grad(x - eps v)) / 2 eps */
    const float eps = 1e-2f;
    float plus[6], minus[6], shifted[6];
    for (int s = -1; s <= 1; s += 2) {
        for (int i = 0; i < 6; i++)
            shifted[i] = xv[i] + (float)s * eps * vv[i];
        dg_feed(p, x, shifted);
        run_ok(p);
        memcpy(s > 0 ? plus : minus, dg_data(p, grad), sizeof plus);
    }
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(h[i], (plus[i] - minus[i]) / (2 * eps), 2e-3f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_loss_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 2, (const int64_t[]){2, 3});
    dg_node *b = dg_input(g, "b", 2, (const int64_t[]){3, 2});
    dg_node *v = dg_input(g, "v", 1, (const int64_t[]){2});
    dg_node *l2 = dg_input_typed(g, "l2", DG_I32, 1, (const int64_t[]){2});
    dg_node *l3 = dg_input_typed(g, "l3", DG_I32, 1, (const int64_t[]){3});
    dg_node *(*const pair[4])(dg_graph *, dg_node *, dg_node *) = {
        dg_bce, dg_bce_with_logits, dg_mse_loss, dg_l1_loss};
    static const char *const names[4] = {"bce", "bce_with_logits", "mse_loss", "l1_loss"};
    for (int k = 0; k < 4; k++) {
        expect_error(g, pair[k](g, a, b), DG_ERR_SHAPE,
                     (const char *[]){names[k], "[2,3]", "[3,2]", NULL});
        expect_error(g, pair[k](g, a, NULL), DG_ERR_INVALID_ARG,
                     (const char *[]){names[k], "NULL", NULL});
        expect_error(g, pair[k](g, l2, v), DG_ERR_DTYPE,
                     (const char *[]){names[k], "float32", NULL});
    }
    expect_error(g, dg_huber_loss(g, a, b, 1.0f), DG_ERR_SHAPE,
                 (const char *[]){"huber_loss", "[2,3]", "[3,2]", NULL});
    expect_error(g, dg_huber_loss(g, a, a, 0.0f), DG_ERR_INVALID_ARG,
                 (const char *[]){"huber_loss", "delta", NULL});
    expect_error(g, dg_huber_loss(g, a, a, NAN), DG_ERR_INVALID_ARG,
                 (const char *[]){"huber_loss", "delta", NULL});
    expect_error(g, dg_huber_loss(g, NULL, a, 1.0f), DG_ERR_INVALID_ARG,
                 (const char *[]){"huber_loss", "NULL", NULL});
    expect_error(g, dg_softmax_cross_entropy(g, a, l3), DG_ERR_SHAPE,
                 (const char *[]){"softmax_cross_entropy", "[2,3]", "[3]", NULL});
    expect_error(g, dg_softmax_cross_entropy(g, a, v), DG_ERR_DTYPE,
                 (const char *[]){"softmax_cross_entropy", "int32", "[2]", NULL});
    expect_error(g, dg_softmax_cross_entropy(g, v, l2), DG_ERR_SHAPE,
                 (const char *[]){"softmax_cross_entropy", "[N,C]", "[2]", NULL});
    expect_error(g, dg_softmax_cross_entropy(g, NULL, l2), DG_ERR_INVALID_ARG,
                 (const char *[]){"softmax_cross_entropy", "NULL", NULL});
    /* a pending error passes NULL through and keeps the first message */
    dg_mse_loss(g, a, b);
    ck_assert_ptr_null(dg_l1_loss(g, NULL, a));
    ck_assert_ptr_null(dg_huber_loss(g, a, a, -1.0f));
    ck_assert_msg(strstr(dg_graph_error(g), "mse_loss") != NULL, "%s", dg_graph_error(g));
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("losses");
    TCase *t = tcase_create("losses");
    tcase_add_test(t, test_ce_extreme_logits);
    tcase_add_test(t, test_ce_ignored_labels);
    tcase_add_test(t, test_batch_change_mean);
    tcase_add_test(t, test_bce_clamped);
    tcase_add_test(t, test_elementwise_values);
    tcase_add_test(t, test_ce_second_derivative);
    tcase_add_test(t, test_loss_errors);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
