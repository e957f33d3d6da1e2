/*
 * Higher-order differentiation: the nodes dg_grad appends are ordinary nodes, differentiable
 * where their ops are, so dg_grad can be applied to a gradient again.
 *
 *  - elementwise second derivatives of every smooth unary op against closed forms
 *    (tanh'' = -2t(1-t^2), sigmoid'' = s(1-s)(1-2s), exp'' = exp, log'' = -1/x^2, ...), for a
 *    scalar input (the gradient itself is the new loss) and a vector input (loss2 = sum(g1));
 *  - mixed partials (d/dy of dL/dx) of x*y, x*x*y and exp(x*y);
 *  - third and fourth derivatives (x^4 -> 24x -> 24, exp, tanh''');
 *  - matmul compositions: Hessian-vector products of sum((A x)^2) (H = 2 A^T A, also the whole
 *    Hessian column by column from one plan) and of sum(tanh(W x)), including the mixed
 *    derivative with respect to W, all against values computed by hand in double;
 *  - a table of compositions (softmax, log_softmax, mean, max, broadcasting add/mul/div,
 *    layout ops, losses, dropout, batch norm, ...) whose double backward is checked by dg_gradcheck on
 *    loss2 = sum(g1 * C): the analytic side is the double-backward graph, the numeric side
 *    central differences of the compiled first gradient;
 *  - the fused LSTM (lstm_seq, whose fused gradient lstm_seq_grad has a composed rule):
 *    second derivatives equal to the same layer unrolled from ordinary ops and to central
 *    differences of the compiled first gradient, without and with initial states; the fused
 *    GRU (gru_seq / gru_seq_grad) the same way;
 *  - what is not a second-order feature: a gradient that is not a scalar is refused as a loss.
 */
#include "dagrad.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Relative tolerance for float32 kernels against closed forms computed in double. */
#define REL_TOL 2e-4

static void check_close(double got, double want, double rel, const char *what, int i)
{
    double tol = rel * fmax(1.0, fabs(want));
    ck_assert_msg(isfinite(got) && fabs(got - want) <= tol,
                  "%s[%d]: got %.9g, want %.9g (tolerance %.3g)", what, i, got, want, tol);
}

/* Compiles `n` nodes, feeds the (nodes, data) pairs the plan reads, runs; fails the test on
 * error. The caller frees the plan. */
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

static dg_node *grad1(dg_graph *g, dg_node *loss, dg_node *wrt)
{
    dg_node *out = NULL;
    ck_assert_msg(dg_grad(g, loss, 1, &wrt, &out) == DG_OK, "grad: %s", dg_graph_error(g));
    ck_assert_ptr_nonnull(out);
    return out;
}

static dg_node *sum_all(dg_graph *g, dg_node *x) { return dg_sum(g, x, 0, NULL, false); }

/* ---- Elementwise second derivatives against closed forms ------------------------------ */

static double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }
static double normal_pdf(double x) { return exp(-0.5 * x * x) / 2.5066282746310002 /* sqrt(2 pi) */; }
static double normal_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static dg_node *b_tanh(dg_graph *g, dg_node *x) { return dg_tanh(g, x); }
static double d1_tanh(double x) { double t = tanh(x); return 1 - t * t; }
static double d2_tanh(double x) { double t = tanh(x); return -2 * t * (1 - t * t); }

static dg_node *b_sigmoid(dg_graph *g, dg_node *x) { return dg_sigmoid(g, x); }
static double d1_sigmoid(double x) { double s = sigmoid_d(x); return s * (1 - s); }
static double d2_sigmoid(double x) { double s = sigmoid_d(x); return s * (1 - s) * (1 - 2 * s); }

static dg_node *b_exp(dg_graph *g, dg_node *x) { return dg_exp(g, x); }
static double d1_exp(double x) { return exp(x); }

static dg_node *b_log(dg_graph *g, dg_node *x) { return dg_log(g, x); }
static double d1_log(double x) { return 1 / x; }
static double d2_log(double x) { return -1 / (x * x); }

static dg_node *b_gelu(dg_graph *g, dg_node *x) { return dg_gelu(g, x); }
static double d1_gelu(double x) { return normal_cdf(x) + x * normal_pdf(x); }
static double d2_gelu(double x) { return normal_pdf(x) * (2 - x * x); }

static dg_node *b_softplus(dg_graph *g, dg_node *x) { return dg_softplus(g, x); }
static double d1_softplus(double x) { return sigmoid_d(x); }
/* softplus'' = s(1-s) = sigmoid', computed like d1_sigmoid. */

static dg_node *b_sqrt(dg_graph *g, dg_node *x) { return dg_sqrt(g, x); }
static double d1_sqrt(double x) { return 0.5 / sqrt(x); }
static double d2_sqrt(double x) { return -0.25 / (x * sqrt(x)); }

static dg_node *b_square(dg_graph *g, dg_node *x) { return dg_square(g, x); }
static double d1_square(double x) { return 2 * x; }
static double d2_square(double x) { (void)x; return 2; }

static dg_node *b_cube_mul(dg_graph *g, dg_node *x) { return dg_mul(g, dg_mul(g, x, x), x); }
static dg_node *b_cube_pow(dg_graph *g, dg_node *x) { return dg_pow_scalar(g, x, 3.0f); }
static double d1_cube(double x) { return 3 * x * x; }
static double d2_cube(double x) { return 6 * x; }

static dg_node *b_pow_2_5(dg_graph *g, dg_node *x) { return dg_pow_scalar(g, x, 2.5f); }
static double d1_pow_2_5(double x) { return 2.5 * pow(x, 1.5); }
static double d2_pow_2_5(double x) { return 3.75 * sqrt(x); }

static dg_node *b_reciprocal(dg_graph *g, dg_node *x) { return dg_div(g, dg_scalar(g, 1.0f), x); }
static double d1_reciprocal(double x) { return -1 / (x * x); }
static double d2_reciprocal(double x) { return 2 / (x * x * x); }

/* Piecewise linear ops: second derivative 0 away from the kink. */
static dg_node *b_relu(dg_graph *g, dg_node *x) { return dg_relu(g, x); }
static double d1_relu(double x) { return x > 0 ? 1 : 0; }
static dg_node *b_leaky(dg_graph *g, dg_node *x) { return dg_leaky_relu(g, x, 0.1f); }
static double d1_leaky(double x) { return x > 0 ? 1 : 0.1; }
static dg_node *b_abs(dg_graph *g, dg_node *x) { return dg_abs(g, x); }
static double d1_abs(double x) { return x > 0 ? 1 : -1; }
static double d2_zero(double x) { (void)x; return 0; }

/* (0.25 - 1.5 x)^2 through neg, scale and add_scalar: 2 (0.25 - 1.5 x)(-1.5) and 4.5. */
static dg_node *b_affine_sq(dg_graph *g, dg_node *x)
{
    return dg_square(g, dg_add_scalar(g, dg_scale(g, dg_neg(g, x), 1.5f), 0.25f));
}
static double d1_affine_sq(double x) { return 2 * (-1.5 * x + 0.25) * -1.5; }
static double d2_affine_sq(double x) { (void)x; return 4.5; }

struct unary_case {
    const char *name;
    dg_node *(*build)(dg_graph *, dg_node *);
    double (*d1)(double);
    double (*d2)(double);
    float lo, hi; /* sample range: away from kinks and poles */
};

static const struct unary_case unary_cases[] = {
    {"tanh", b_tanh, d1_tanh, d2_tanh, -2.0f, 2.0f},
    {"sigmoid", b_sigmoid, d1_sigmoid, d2_sigmoid, -3.0f, 3.0f},
    {"exp", b_exp, d1_exp, d1_exp, -2.0f, 2.0f},
    {"log", b_log, d1_log, d2_log, 0.3f, 3.0f},
    {"gelu", b_gelu, d1_gelu, d2_gelu, -3.0f, 3.0f},
    {"softplus", b_softplus, d1_softplus, d1_sigmoid, -3.0f, 3.0f},
    {"sqrt", b_sqrt, d1_sqrt, d2_sqrt, 0.3f, 3.0f},
    {"square", b_square, d1_square, d2_square, -2.0f, 2.0f},
    {"x*x*x", b_cube_mul, d1_cube, d2_cube, -2.0f, 2.0f},
    {"pow_scalar 3", b_cube_pow, d1_cube, d2_cube, -2.0f, 2.0f},
    {"pow_scalar 2.5", b_pow_2_5, d1_pow_2_5, d2_pow_2_5, 0.2f, 2.0f},
    {"1/x", b_reciprocal, d1_reciprocal, d2_reciprocal, 0.5f, 2.0f},
    {"relu", b_relu, d1_relu, d2_zero, -2.0f, 2.0f},
    {"leaky_relu", b_leaky, d1_leaky, d2_zero, -2.0f, 2.0f},
    {"abs", b_abs, d1_abs, d2_zero, -2.0f, 2.0f},
    {"square(0.25 - 1.5 x)", b_affine_sq, d1_affine_sq, d2_affine_sq, -2.0f, 2.0f},
};
#define N_UNARY ((int)(sizeof unary_cases / sizeof unary_cases[0]))

/* Values in [lo, hi], none within 0.05 of 0 (the kink of relu, abs). */
static void sample_points(const struct unary_case *c, float *x, int n, uint64_t seed)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        do
            x[i] = dg_test_uniform(&rng, c->lo, c->hi);
        while (fabsf(x[i]) < 0.05f);
    }
}

/* Scalar input: f = op(x), g1 = f'(x) is itself a scalar loss, g2 = dg_grad(g1, x). */
START_TEST(test_unary_second_derivative_scalar)
{
    const struct unary_case *c = &unary_cases[_i];
    float xs[4];
    sample_points(c, xs, 4, 100 + (uint64_t)_i);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL);
    dg_node *f = c->build(g, x);
    dg_node *g1 = grad1(g, f, x);
    dg_node *g2 = grad1(g, g1, x);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){g1, g2});
    ck_assert_msg(p != NULL, "%s: %s", c->name, dg_graph_error(g));
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(dg_feed(p, x, &xs[k]), DG_OK);
        ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
        check_close(dg_data(p, g1)[0], c->d1(xs[k]), REL_TOL, c->name, k);
        check_close(dg_data(p, g2)[0], c->d2(xs[k]), REL_TOL, c->name, k);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Vector input [2,5]: f = sum(op(x)), g1 = op'(x) elementwise, loss2 = sum(g1), and
 * g2 = d loss2 / dx = op''(x) elementwise (the Hessian is diagonal). */
START_TEST(test_unary_second_derivative_vector)
{
    const struct unary_case *c = &unary_cases[_i];
    enum { N = 10 };
    float xs[N];
    sample_points(c, xs, N, 200 + (uint64_t)_i);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 5});
    dg_node *g1 = grad1(g, sum_all(g, c->build(g, x)), x);
    dg_node *g2 = grad1(g, sum_all(g, g1), x);
    ck_assert_int_eq(dg_node_numel(g2), N);
    dg_plan *p = compile_run(g, 2, (dg_node *[]){g1, g2}, 1, &x, (const void *[]){xs});
    const float *v1 = dg_data(p, g1), *v2 = dg_data(p, g2);
    for (int i = 0; i < N; i++) {
        check_close(v1[i], c->d1(xs[i]), REL_TOL, c->name, i);
        check_close(v2[i], c->d2(xs[i]), REL_TOL, c->name, i);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- Mixed partials --------------------------------------------------------------------- */

/* f = sum(x*y): dL/dx = y, so d/dy sum(dL/dx) = 1 and d/dx sum(dL/dx) = 0 (a documented zero:
 * the loss2 graph does not depend on x). */
START_TEST(test_mixed_xy)
{
    dg_graph *g = dg_graph_new();
    int64_t shape[] = {5};
    dg_node *x = dg_input(g, "x", 1, shape), *y = dg_input(g, "y", 1, shape);
    dg_node *gx = grad1(g, sum_all(g, dg_mul(g, x, y)), x);
    dg_node *wrt[] = {x, y}, *g2[2];
    ck_assert_int_eq(dg_grad(g, sum_all(g, gx), 2, wrt, g2), DG_OK);
    float xv[5] = {1, -2, 3, 0.5f, -0.25f}, yv[5] = {0.5f, 2, -1, 4, 1.5f};
    dg_plan *p = compile_run(g, 3, (dg_node *[]){gx, g2[0], g2[1]}, 2, wrt,
                             (const void *[]){xv, yv});
    for (int i = 0; i < 5; i++) {
        check_close(dg_data(p, gx)[i], yv[i], 1e-6, "dL/dx", i);
        check_close(dg_data(p, g2[0])[i], 0.0, 1e-6, "d2L/dx2", i);
        check_close(dg_data(p, g2[1])[i], 1.0, 1e-6, "d2L/dxdy", i);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* f = sum(x*x*y): dL/dx = 2xy; d/dx sum = 2y, d/dy sum = 2x. Also scalar x, y with the
 * gradient itself as loss2. */
START_TEST(test_mixed_x2y)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL), *y = dg_input(g, "y", 0, NULL);
    dg_node *gx = grad1(g, dg_mul(g, dg_mul(g, x, x), y), x);
    dg_node *wrt[] = {x, y}, *g2[2];
    ck_assert_int_eq(dg_grad(g, gx, 2, wrt, g2), DG_OK);
    float xv = 1.25f, yv = -0.75f;
    dg_plan *p = compile_run(g, 3, (dg_node *[]){gx, g2[0], g2[1]}, 2, wrt,
                             (const void *[]){&xv, &yv});
    check_close(dg_data(p, gx)[0], 2.0 * xv * yv, 1e-6, "dL/dx", 0);
    check_close(dg_data(p, g2[0])[0], 2.0 * yv, 1e-6, "d2L/dx2", 0);
    check_close(dg_data(p, g2[1])[0], 2.0 * xv, 1e-6, "d2L/dxdy", 0);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* f = sum(exp(x*y)) with y [3] broadcast over x [2,3]:
 *   dL/dx = y e^{xy};  d/dx sum(dL/dx) = y^2 e^{xy};  d/dy sum(dL/dx) = sum_rows e^{xy}(1+xy).
 * The mixed partial crosses a broadcast (sum_to) twice. */
START_TEST(test_mixed_exp_broadcast)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 3}), *y = dg_input(g, "y", 1, (int64_t[]){3});
    dg_node *gx = grad1(g, sum_all(g, dg_exp(g, dg_mul(g, x, y))), x);
    dg_node *wrt[] = {x, y}, *g2[2];
    ck_assert_int_eq(dg_grad(g, sum_all(g, gx), 2, wrt, g2), DG_OK);
    float xv[6] = {0.5f, -1, 0.25f, 1.5f, 0.75f, -0.5f}, yv[3] = {0.8f, -0.6f, 1.2f};
    dg_plan *p = compile_run(g, 3, (dg_node *[]){gx, g2[0], g2[1]}, 2, wrt,
                             (const void *[]){xv, yv});
    double want_y[3] = {0};
    for (int i = 0; i < 6; i++) {
        double xy = (double)xv[i] * yv[i % 3], e = exp(xy);
        check_close(dg_data(p, gx)[i], yv[i % 3] * e, REL_TOL, "dL/dx", i);
        check_close(dg_data(p, g2[0])[i], (double)yv[i % 3] * yv[i % 3] * e, REL_TOL,
                    "d2L/dx2", i);
        want_y[i % 3] += e * (1 + xy);
    }
    for (int j = 0; j < 3; j++)
        check_close(dg_data(p, g2[1])[j], want_y[j], REL_TOL, "d2L/dxdy", j);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- Third and fourth order ------------------------------------------------------------- */

/* x^4 built two ways (pow_scalar and a mul chain): 4x^3, 12x^2, 24x, 24. */
START_TEST(test_fourth_power_to_fourth_order)
{
    for (int way = 0; way < 2; way++) {
        dg_graph *g = dg_graph_new();
        dg_node *x = dg_input(g, "x", 0, NULL);
        dg_node *xx = dg_mul(g, x, x);
        dg_node *f = way == 0 ? dg_pow_scalar(g, x, 4.0f) : dg_mul(g, xx, xx);
        dg_node *d[4];
        dg_node *prev = f;
        for (int k = 0; k < 4; k++)
            prev = d[k] = grad1(g, prev, x);
        const float xs[] = {-1.5f, 0.75f, 2.0f};
        dg_plan *p = dg_compile(g, 4, d);
        ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
        for (int t = 0; t < 3; t++) {
            double v = xs[t];
            ck_assert_int_eq(dg_feed(p, x, &xs[t]), DG_OK);
            ck_assert_int_eq(dg_run(p), DG_OK);
            check_close(dg_data(p, d[0])[0], 4 * v * v * v, 1e-5, "d1 x^4", t);
            check_close(dg_data(p, d[1])[0], 12 * v * v, 1e-5, "d2 x^4", t);
            check_close(dg_data(p, d[2])[0], 24 * v, 1e-5, "d3 x^4", t);
            check_close(dg_data(p, d[3])[0], 24, 1e-5, "d4 x^4", t);
        }
        dg_plan_free(p);
        dg_graph_free(g);
    }
}
END_TEST

/* exp: every derivative is exp; tanh''' = -2 (1 - t^2)(1 - 3 t^2). Vector input, each order
 * summed before differentiating again. */
START_TEST(test_third_order_exp_tanh)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){6});
    dg_node *e[3], *t[3];
    dg_node *fe = dg_exp(g, x), *ft = dg_tanh(g, x);
    for (int k = 0; k < 3; k++) {
        e[k] = grad1(g, sum_all(g, k == 0 ? fe : e[k - 1]), x);
        t[k] = grad1(g, sum_all(g, k == 0 ? ft : t[k - 1]), x);
    }
    float xv[6] = {-1.5f, -0.5f, 0.1f, 0.6f, 1.1f, 1.9f};
    dg_plan *p = compile_run(g, 6, (dg_node *[]){e[0], e[1], e[2], t[0], t[1], t[2]}, 1, &x,
                             (const void *[]){xv});
    for (int i = 0; i < 6; i++) {
        double v = xv[i], th = tanh(v), sech2 = 1 - th * th;
        for (int k = 0; k < 3; k++)
            check_close(dg_data(p, e[k])[i], exp(v), REL_TOL, "exp derivative", 3 * i + k);
        check_close(dg_data(p, t[0])[i], sech2, REL_TOL, "tanh'", i);
        check_close(dg_data(p, t[1])[i], -2 * th * sech2, REL_TOL, "tanh''", i);
        check_close(dg_data(p, t[2])[i], -2 * sech2 * (1 - 3 * th * th), REL_TOL, "tanh'''", i);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- Matmul compositions: Hessian-vector products by hand ------------------------------ */

enum { M = 4, N = 3 };

/* out[N] = 2 A^T A v for A [M,N], in double. */
static void two_ata_times(const float *a, const double *v, double *out)
{
    for (int j = 0; j < N; j++) {
        double acc = 0;
        for (int i = 0; i < M; i++) {
            double av = 0;
            for (int k = 0; k < N; k++)
                av += (double)a[i * N + k] * v[k];
            acc += a[i * N + j] * av;
        }
        out[j] = 2 * acc;
    }
}

/* f = sum((A x)^2) with A a constant [4,3] and x [3,1] (or x [1,3] with x A^T through
 * matmul_ex): g = 2 A^T A x, Hv = 2 A^T A v. Then the whole Hessian, one column per run of the
 * same plan with v = e_k, equals 2 A^T A and is symmetric. */
START_TEST(test_hvp_quadratic_matmul)
{
    float a[M * N];
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    dg_test_fill_uniform(&rng, a, M * N, -1, 1);
    for (int row_form = 0; row_form < 2; row_form++) {
        dg_graph *g = dg_graph_new();
        int64_t vs[2] = {row_form ? 1 : N, row_form ? N : 1};
        dg_node *A = dg_constant(g, 2, (int64_t[]){M, N}, a);
        dg_node *x = dg_input(g, "x", 2, vs), *v = dg_input(g, "v", 2, vs);
        dg_node *ax = row_form ? dg_matmul_ex(g, x, A, false, true) : dg_matmul(g, A, x);
        dg_node *gx = grad1(g, sum_all(g, dg_square(g, ax)), x);
        dg_node *hv = grad1(g, sum_all(g, dg_mul(g, gx, v)), x);
        float xv[N] = {0.5f, -1.0f, 2.0f}, vv[N] = {-0.3f, 0.8f, 0.1f};
        dg_node *feeds[] = {x, v};
        dg_plan *p = compile_run(g, 2, (dg_node *[]){gx, hv}, 2, feeds, (const void *[]){xv, vv});
        double xd[N], vd[N], want_g[N], want_hv[N];
        for (int j = 0; j < N; j++) {
            xd[j] = xv[j];
            vd[j] = vv[j];
        }
        two_ata_times(a, xd, want_g);
        two_ata_times(a, vd, want_hv);
        for (int j = 0; j < N; j++) {
            check_close(dg_data(p, gx)[j], want_g[j], REL_TOL, "2 A^T A x", j);
            check_close(dg_data(p, hv)[j], want_hv[j], REL_TOL, "2 A^T A v", j);
        }
        /* The full Hessian, column by column. */
        float hess[N][N];
        for (int k = 0; k < N; k++) {
            float e[N] = {0};
            e[k] = 1;
            double ed[N] = {0}, col[N];
            ed[k] = 1;
            ck_assert_int_eq(dg_feed(p, v, e), DG_OK);
            ck_assert_int_eq(dg_run(p), DG_OK);
            two_ata_times(a, ed, col);
            for (int j = 0; j < N; j++) {
                hess[j][k] = dg_data(p, hv)[j];
                check_close(hess[j][k], col[j], REL_TOL, "Hessian column", j * N + k);
            }
        }
        for (int j = 0; j < N; j++)
            for (int k = 0; k < j; k++)
                check_close(hess[j][k], hess[k][j], 1e-5, "Hessian symmetry", j * N + k);
        dg_plan_free(p);
        dg_graph_free(g);
    }
}
END_TEST

/* f = sum(tanh(W x)), W a parameter [4,3], x [3,1], t = tanh(W x):
 *   g  = W^T (1 - t^2)
 *   Hv = W^T diag(-2 t (1 - t^2)) W v
 *   d/dW_jk sum(g * v) = (1 - t_j^2) v_k - 2 t_j (1 - t_j^2) (W v)_j x_k   (mixed, wrt W) */
START_TEST(test_hvp_tanh_layer)
{
    dg_graph *g = dg_graph_new();
    dg_node *W = dg_param(g, "W", 2, (int64_t[]){M, N});
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){N, 1}), *v = dg_input(g, "v", 2, (int64_t[]){N, 1});
    float *w = dg_param_data(W);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 11);
    dg_test_fill_uniform(&rng, w, M * N, -1, 1);
    dg_node *gx = grad1(g, sum_all(g, dg_tanh(g, dg_matmul(g, W, x))), x);
    dg_node *loss2 = sum_all(g, dg_mul(g, gx, v));
    dg_node *wrt[] = {x, W}, *second[2];
    ck_assert_int_eq(dg_grad(g, loss2, 2, wrt, second), DG_OK);
    float xv[N] = {0.4f, -0.7f, 1.1f}, vv[N] = {1.0f, 0.5f, -2.0f};
    dg_node *feeds[] = {x, v};
    dg_plan *p = compile_run(g, 3, (dg_node *[]){gx, second[0], second[1]}, 2, feeds,
                             (const void *[]){xv, vv});
    double t[M], wv[M], want_g[N] = {0}, want_hv[N] = {0};
    for (int j = 0; j < M; j++) {
        double wx = 0;
        wv[j] = 0;
        for (int k = 0; k < N; k++) {
            wx += (double)w[j * N + k] * xv[k];
            wv[j] += (double)w[j * N + k] * vv[k];
        }
        t[j] = tanh(wx);
    }
    for (int k = 0; k < N; k++)
        for (int j = 0; j < M; j++) {
            double sech2 = 1 - t[j] * t[j];
            want_g[k] += w[j * N + k] * sech2;
            want_hv[k] += w[j * N + k] * -2 * t[j] * sech2 * wv[j];
        }
    for (int k = 0; k < N; k++) {
        check_close(dg_data(p, gx)[k], want_g[k], REL_TOL, "W^T (1 - t^2)", k);
        check_close(dg_data(p, second[0])[k], want_hv[k], REL_TOL, "Hv", k);
    }
    for (int j = 0; j < M; j++)
        for (int k = 0; k < N; k++) {
            double sech2 = 1 - t[j] * t[j];
            double want = sech2 * vv[k] - 2 * t[j] * sech2 * wv[j] * xv[k];
            check_close(dg_data(p, second[1])[j * N + k], want, REL_TOL, "d/dW sum(g v)",
                        j * N + k);
        }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* The double-backward graph follows a plan's batch change like the first one does (mean's
 * divisor and the broadcast sums are run-time): an HVP plan built at batch 4 and set to batch 7
 * gives what a graph built at batch 7 gives, and the same bits on a second run.
 * loss = mean(tanh(X W + b)^2), Hv = d/dW sum(dL/dW * V), V a constant (dg_plan_set_batch
 * resizes every input's leading axis, so the direction is not an input here). */
static dg_node *batch_hvp_graph(dg_graph *g, int64_t batch, const float *vv, dg_node **x)
{
    *x = dg_input(g, "x", 2, (int64_t[]){batch, 3});
    dg_node *v = dg_constant(g, 2, (int64_t[]){3, 2}, vv);
    dg_node *W = dg_param(g, "W", 2, (int64_t[]){3, 2});
    dg_node *b = dg_param(g, "b", 1, (int64_t[]){2});
    float *w = dg_param_data(W), *bias = dg_param_data(b);
    for (int i = 0; i < 6; i++)
        w[i] = 0.3f * (float)(i % 4) - 0.4f;
    bias[0] = 0.1f;
    bias[1] = -0.2f;
    dg_node *h = dg_tanh(g, dg_add(g, dg_matmul(g, *x, W), b));
    dg_node *gw = grad1(g, dg_mean(g, dg_square(g, h), 0, NULL, false), W);
    return grad1(g, sum_all(g, dg_mul(g, gw, v)), W);
}

START_TEST(test_hvp_follows_batch_change)
{
    float xv[7 * 3], vv[6];
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 21);
    dg_test_fill_uniform(&rng, xv, 21, -1.5f, 1.5f);
    dg_test_fill_uniform(&rng, vv, 6, -1, 1);
    dg_node *x4, *x7;
    dg_graph *g4 = dg_graph_new(), *g7 = dg_graph_new();
    dg_node *hv4 = batch_hvp_graph(g4, 4, vv, &x4);
    dg_node *hv7 = batch_hvp_graph(g7, 7, vv, &x7);
    dg_plan *p7 = compile_run(g7, 1, &hv7, 1, &x7, (const void *[]){xv});
    dg_plan *p4 = dg_compile(g4, 1, &hv4);
    ck_assert_msg(p4 != NULL, "%s", dg_graph_error(g4));
    ck_assert_msg(dg_plan_set_batch(p4, 7) == DG_OK, "%s", dg_graph_error(g4));
    ck_assert_int_eq(dg_feed(p4, x4, xv), DG_OK);
    float first[6];
    for (int run = 0; run < 2; run++) {
        ck_assert_msg(dg_run(p4) == DG_OK, "%s", dg_graph_error(g4));
        const float *got = dg_data(p4, hv4);
        for (int i = 0; i < 6; i++) {
            check_close(got[i], dg_data(p7, hv7)[i], 1e-5, "Hv after set_batch", i);
            if (run == 0)
                first[i] = got[i];
            else
                ck_assert_msg(memcmp(&first[i], &got[i], sizeof(float)) == 0,
                              "second run differs at %d", i);
        }
    }
    dg_plan_free(p4);
    dg_plan_free(p7);
    dg_graph_free(g4);
    dg_graph_free(g7);
}
END_TEST

/* ---- Double backward against finite differences of the first gradient --------------------
 * Each case builds f from inputs x0 (and x1); the test forms g_i = df/dx_i, then
 * loss2 = sum_i sum(g_i * C_i) with fixed random constants C_i, and dg_gradcheck(loss2, x)
 * compares the double-backward graph with central differences of the compiled first
 * gradient. The inputs are random in [lo, hi], away from kinks where the case has them. */

struct dbl_inputs {
    dg_node *x[2];
    dg_node *labels; /* int32, or NULL */
    dg_node *key;    /* dropout key, or NULL */
};

struct dbl_case {
    const char *name;
    int n_inputs;
    int64_t shape[2][2]; /* each input 2-D */
    float lo, hi;
    dg_node *(*build)(dg_graph *, struct dbl_inputs *);
};

static dg_node *weighted_sum(dg_graph *g, dg_node *x, uint64_t seed)
{
    int64_t n = dg_node_numel(x);
    float *c = malloc((size_t)n * sizeof *c);
    ck_assert_ptr_nonnull(c);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, seed);
    dg_test_fill_uniform(&rng, c, n, -1, 1);
    int64_t shape[DG_MAX_DIMS];
    for (int i = 0; i < dg_node_ndim(x); i++)
        shape[i] = dg_node_dim(x, i);
    dg_node *out = sum_all(g, dg_mul(g, x, dg_constant(g, dg_node_ndim(x), shape, c)));
    free(c);
    return out;
}

static dg_node *c_softmax(dg_graph *g, struct dbl_inputs *in)
{
    return weighted_sum(g, dg_softmax(g, in->x[0], 1), 1);
}
static dg_node *c_softmax_axis0(dg_graph *g, struct dbl_inputs *in)
{
    return weighted_sum(g, dg_softmax(g, in->x[0], 0), 2);
}
static dg_node *c_log_softmax(dg_graph *g, struct dbl_inputs *in)
{
    return weighted_sum(g, dg_log_softmax(g, in->x[0], 1), 3);
}
static dg_node *c_mean_axis(dg_graph *g, struct dbl_inputs *in)
{
    int axis = 1;
    return sum_all(g, dg_square(g, dg_mean(g, dg_tanh(g, in->x[0]), 1, &axis, true)));
}
static dg_node *c_mean_all(dg_graph *g, struct dbl_inputs *in)
{
    return dg_mul(g, dg_mean(g, dg_exp(g, in->x[0]), 0, NULL, false),
                  dg_mean(g, dg_sigmoid(g, in->x[0]), 0, NULL, false));
}
static dg_node *c_add_broadcast(dg_graph *g, struct dbl_inputs *in)
{
    return weighted_sum(g, dg_tanh(g, dg_add(g, in->x[0], in->x[1])), 4);
}
static dg_node *c_mul_broadcast(dg_graph *g, struct dbl_inputs *in)
{
    return weighted_sum(g, dg_sigmoid(g, dg_mul(g, in->x[0], in->x[1])), 5);
}
static dg_node *c_sub_div(dg_graph *g, struct dbl_inputs *in)
{
    dg_node *den = dg_add_scalar(g, dg_square(g, in->x[1]), 1.0f);
    return weighted_sum(g, dg_div(g, dg_sub(g, dg_square(g, in->x[0]), in->x[1]), den), 6);
}
static dg_node *c_maximum(dg_graph *g, struct dbl_inputs *in)
{
    dg_node *m = dg_maximum(g, in->x[0], in->x[1]), *n = dg_minimum(g, in->x[0], in->x[1]);
    return weighted_sum(g, dg_mul(g, dg_square(g, m), n), 7);
}
static dg_node *c_max_reduce(dg_graph *g, struct dbl_inputs *in)
{
    int axis = 1;
    return weighted_sum(g, dg_square(g, dg_max(g, dg_tanh(g, in->x[0]), 1, &axis, false)), 8);
}
static dg_node *c_sqrt_abs_log(dg_graph *g, struct dbl_inputs *in)
{
    dg_node *x = in->x[0];
    return weighted_sum(g, dg_add(g, dg_sqrt(g, dg_abs(g, x)), dg_log(g, dg_square(g, x))), 9);
}
static dg_node *c_layout(dg_graph *g, struct dbl_inputs *in)
{
    /* x [3,4]: slice columns 1..3, concat with x along axis 1, transpose, reshape. */
    dg_node *x = dg_tanh(g, in->x[0]);
    dg_node *parts[] = {dg_slice(g, x, 1, 1, 3), x};
    dg_node *cat = dg_concat(g, 2, parts, 1);
    dg_node *r = dg_reshape(g, dg_transpose(g, cat), 2, (int64_t[]){2, 9});
    dg_node *perm = dg_permute(g, r, 2, (int[]){1, 0});
    return weighted_sum(g, dg_mul(g, perm, perm), 10);
}
static dg_node *c_broadcast_to(dg_graph *g, struct dbl_inputs *in)
{
    /* x1 [1,4] broadcast to [3,4] */
    dg_node *b = dg_broadcast_to(g, in->x[1], 2, (int64_t[]){3, 4});
    return weighted_sum(g, dg_exp(g, dg_mul(g, in->x[0], b)), 11);
}
static dg_node *c_matmul_tanh(dg_graph *g, struct dbl_inputs *in)
{
    return weighted_sum(g, dg_tanh(g, dg_matmul(g, in->x[0], in->x[1])), 12);
}
static dg_node *c_matmul_transposed(dg_graph *g, struct dbl_inputs *in)
{
    /* x0 [3,4], x1 [5,4]: x0 x1^T, then (.)^T (.) with both transposes */
    dg_node *h = dg_sigmoid(g, dg_matmul_ex(g, in->x[0], in->x[1], false, true));
    return weighted_sum(g, dg_matmul_ex(g, h, h, true, false), 13);
}
static dg_node *c_gelu_softplus(dg_graph *g, struct dbl_inputs *in)
{
    return weighted_sum(g, dg_mul(g, dg_gelu(g, in->x[0]), dg_softplus(g, in->x[1])), 14);
}
static dg_node *c_relu_leaky_pow(dg_graph *g, struct dbl_inputs *in)
{
    dg_node *a = dg_relu(g, in->x[0]), *b = dg_leaky_relu(g, in->x[1], 0.2f);
    return weighted_sum(g, dg_pow_scalar(g, dg_add(g, dg_mul(g, a, b), dg_scalar(g, 3.0f)), 1.5f),
                        15);
}
static dg_node *c_mse(dg_graph *g, struct dbl_inputs *in)
{
    return dg_mse_loss(g, dg_tanh(g, in->x[0]), in->x[1]);
}
static dg_node *c_bce_logits(dg_graph *g, struct dbl_inputs *in)
{
    return dg_bce_with_logits(g, dg_scale(g, in->x[0], 2.0f), dg_sigmoid(g, in->x[1]));
}
static dg_node *c_bce(dg_graph *g, struct dbl_inputs *in)
{
    return dg_bce(g, dg_sigmoid(g, in->x[0]), dg_sigmoid(g, in->x[1]));
}
static dg_node *c_huber(dg_graph *g, struct dbl_inputs *in)
{
    /* |a - b| stays away from delta = 0.75 only in distribution; the quadratic and linear
     * branches are both smooth, so a kink needs |a-b| within the stencil of 0.75. */
    return dg_huber_loss(g, dg_square(g, in->x[0]), in->x[1], 0.75f);
}
static dg_node *c_l1(dg_graph *g, struct dbl_inputs *in)
{
    return dg_l1_loss(g, dg_exp(g, in->x[0]), in->x[1]);
}
static dg_node *c_cross_entropy(dg_graph *g, struct dbl_inputs *in)
{
    /* logits = tanh(x0) * 3 with x0 [4,5]; labels {1, 4, -100 (ignored), 0} */
    in->labels = dg_input_typed(g, "labels", DG_I32, 1, (int64_t[]){4});
    return dg_softmax_cross_entropy(g, dg_scale(g, dg_tanh(g, in->x[0]), 3.0f), in->labels);
}
static dg_node *c_cross_entropy_linear(dg_graph *g, struct dbl_inputs *in)
{
    /* logits = x0 [4,3] . x1 [3,5] */
    in->labels = dg_input_typed(g, "labels", DG_I32, 1, (int64_t[]){4});
    return dg_softmax_cross_entropy(g, dg_matmul(g, in->x[0], in->x[1]), in->labels);
}
static dg_node *c_dropout(dg_graph *g, struct dbl_inputs *in)
{
    in->key = dg_dropout_key(g);
    return weighted_sum(g, dg_square(g, dg_dropout(g, dg_tanh(g, in->x[0]), in->key, 0.5f)), 16);
}

static dg_node *c_batch_norm(dg_graph *g, struct dbl_inputs *in)
{
    /* x0 [5,3] normalised per column in training, gamma = x1 [1,3] as [3], beta = gamma / 2:
     * second derivatives through the fused batch_norm_grad / batch_norm_gamma_grad (their
     * composed fallback) */
    in->key = dg_dropout_key(g);
    const float zeros[3] = {0, 0, 0}, ones[3] = {1, 1, 1};
    dg_node *gamma = dg_reshape(g, in->x[1], 1, (int64_t[]){3});
    dg_node *y = dg_batch_norm(g, dg_tanh(g, in->x[0]), gamma, dg_scale(g, gamma, 0.5f),
                               dg_constant(g, 1, (int64_t[]){3}, zeros),
                               dg_constant(g, 1, (int64_t[]){3}, ones), in->key, 0.1f, 1e-5f);
    return weighted_sum(g, dg_tanh(g, y), 17);
}

static dg_node *c_layer_norm(dg_graph *g, struct dbl_inputs *in)
{
    /* x0 [4,5] normalised per row, gamma = x1 [1,5] as [5], beta = gamma / 2: second
     * derivatives through the fused layer_norm_grad / layer_norm_gamma_grad (their composed
     * fallback) */
    dg_node *gamma = dg_reshape(g, in->x[1], 1, (int64_t[]){5});
    dg_node *y = dg_layer_norm(g, dg_tanh(g, in->x[0]), gamma, dg_scale(g, gamma, 0.5f), 1,
                               1e-5f);
    return weighted_sum(g, dg_tanh(g, y), 18);
}

static const struct dbl_case dbl_cases[] = {
    {"softmax axis 1", 1, {{3, 5}}, -2, 2, c_softmax},
    {"softmax axis 0", 1, {{4, 3}}, -2, 2, c_softmax_axis0},
    {"log_softmax", 1, {{3, 5}}, -2, 2, c_log_softmax},
    {"mean axis", 1, {{3, 4}}, -2, 2, c_mean_axis},
    {"mean all", 1, {{3, 4}}, -1, 1, c_mean_all},
    {"add broadcast [3,4]+[4]", 2, {{3, 4}, {1, 4}}, -1.5f, 1.5f, c_add_broadcast},
    {"mul broadcast [3,4]*[3,1]", 2, {{3, 4}, {3, 1}}, -1.5f, 1.5f, c_mul_broadcast},
    {"sub, div broadcast", 2, {{3, 4}, {1, 4}}, -1.5f, 1.5f, c_sub_div},
    {"maximum, minimum", 2, {{3, 4}, {3, 4}}, -2, 2, c_maximum},
    {"max reduction", 1, {{3, 4}}, -2, 2, c_max_reduce},
    {"sqrt, abs, log", 1, {{3, 4}}, 0.3f, 2, c_sqrt_abs_log},
    {"slice, concat, transpose, reshape, permute", 1, {{3, 4}}, -2, 2, c_layout},
    {"broadcast_to", 2, {{3, 4}, {1, 4}}, -1, 1, c_broadcast_to},
    {"matmul, tanh", 2, {{3, 4}, {4, 2}}, -1, 1, c_matmul_tanh},
    {"matmul transposed", 2, {{3, 4}, {5, 4}}, -1, 1, c_matmul_transposed},
    {"gelu * softplus", 2, {{3, 4}, {3, 4}}, -2, 2, c_gelu_softplus},
    {"relu, leaky_relu, pow_scalar", 2, {{3, 4}, {3, 4}}, -2, 2, c_relu_leaky_pow},
    {"mse_loss", 2, {{3, 4}, {3, 4}}, -1.5f, 1.5f, c_mse},
    {"bce_with_logits", 2, {{3, 4}, {3, 4}}, -1.5f, 1.5f, c_bce_logits},
    {"bce", 2, {{3, 4}, {3, 4}}, -1.5f, 1.5f, c_bce},
    {"huber_loss", 2, {{3, 4}, {3, 4}}, -1.5f, 1.5f, c_huber},
    {"l1_loss", 2, {{3, 4}, {3, 4}}, -1, 1, c_l1},
    {"softmax_cross_entropy", 1, {{4, 5}}, -1.5f, 1.5f, c_cross_entropy},
    {"softmax_cross_entropy of a matmul", 2, {{4, 3}, {3, 5}}, -1.5f, 1.5f,
     c_cross_entropy_linear},
    {"dropout", 1, {{3, 4}}, -2, 2, c_dropout},
    {"batch_norm (training) with gamma and beta", 2, {{5, 3}, {1, 3}}, -1.5f, 1.5f,
     c_batch_norm},
    {"layer_norm with gamma and beta", 2, {{4, 5}, {1, 5}}, -1.5f, 1.5f, c_layer_norm},
};
#define N_DBL ((int)(sizeof dbl_cases / sizeof dbl_cases[0]))

/* Random values in [lo, hi] at least 0.1 away from 0 and from each other in the same slot of
 * the two inputs (kinks of relu/abs/max/min); huber's |x0^2 - x1| kept off delta. */
static void fill_case_data(const struct dbl_case *c, float *data[2], uint64_t seed)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, seed);
    for (int k = 0; k < c->n_inputs; k++) {
        int64_t n = c->shape[k][0] * c->shape[k][1];
        for (int64_t i = 0; i < n; i++) {
            float v;
            bool ok;
            do {
                v = dg_test_uniform(&rng, c->lo, c->hi);
                ok = fabsf(v) >= 0.1f;
                if (k == 1 && c->shape[1][0] == c->shape[0][0] && c->shape[1][1] == c->shape[0][1]) {
                    float other = data[0][i];
                    ok = ok && fabsf(v - other) >= 0.1f &&
                         fabsf(fabsf(other * other - v) - 0.75f) >= 0.1f;
                }
            } while (!ok);
            data[k][i] = v;
        }
    }
}

START_TEST(test_double_backward_gradcheck)
{
    const struct dbl_case *c = &dbl_cases[_i];
    dg_graph *g = dg_graph_new();
    struct dbl_inputs in = {{NULL, NULL}, NULL, NULL};
    float *data[2] = {NULL, NULL};
    for (int k = 0; k < c->n_inputs; k++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", k);
        in.x[k] = dg_input(g, name, 2, c->shape[k]);
        data[k] = malloc((size_t)(c->shape[k][0] * c->shape[k][1]) * sizeof(float));
        ck_assert_ptr_nonnull(data[k]);
    }
    fill_case_data(c, data, 300 + (uint64_t)_i);
    dg_node *f = c->build(g, &in);
    ck_assert_msg(f != NULL, "%s: %s", c->name, dg_graph_error(g));

    /* First gradients, then loss2 = sum_i sum(g_i * C_i). */
    dg_node *g1[2];
    ck_assert_msg(dg_grad(g, f, c->n_inputs, in.x, g1) == DG_OK, "%s: %s", c->name,
                  dg_graph_error(g));
    dg_node *loss2 = weighted_sum(g, g1[0], 1000);
    if (c->n_inputs == 2)
        loss2 = dg_add(g, loss2, weighted_sum(g, g1[1], 1001));
    ck_assert_msg(loss2 != NULL, "%s: %s", c->name, dg_graph_error(g));

    dg_node *feeds[4];
    const void *feed_data[4];
    int n_feeds = 0;
    for (int k = 0; k < c->n_inputs; k++) {
        feeds[n_feeds] = in.x[k];
        feed_data[n_feeds++] = data[k];
    }
    const int32_t labels[4] = {1, 4, -100, 0}; /* the third row is ignored */
    const int32_t key[3] = {12345, 7, 1}; /* seed, step, training */
    if (in.labels != NULL) {
        feeds[n_feeds] = in.labels;
        feed_data[n_feeds++] = labels;
    }
    if (in.key != NULL) {
        feeds[n_feeds] = in.key;
        feed_data[n_feeds++] = key;
    }
    dg_gradcheck_options opts = dg_gradcheck_defaults();
    opts.max_elements_per_node = 0; /* every element: the inputs are small */
    dg_gradcheck_report report;
    dg_status st = dg_gradcheck(g, loss2, c->n_inputs, in.x, n_feeds, feeds, feed_data, &opts,
                                &report);
    ck_assert_msg(st == DG_OK, "%s: gradcheck did not run: %s", c->name, dg_graph_error(g));
    ck_assert_msg(report.passed, "%s: %s", c->name, report.summary);
    ck_assert_int_gt(report.n_checked, 0);
    for (int k = 0; k < 2; k++)
        free(data[k]);
    dg_graph_free(g);
}
END_TEST

/* ---- Structure of the double-backward graph ---------------------------------------------- */

/* A gradient with more than one element is not a loss: dg_grad refuses it (DG_ERR_SHAPE,
 * naming the shape) and the caller reduces it first (sum, or sum(g * v) for an HVP). */
START_TEST(test_vector_gradient_is_not_a_loss)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){3});
    dg_node *gx = grad1(g, sum_all(g, dg_exp(g, x)), x);
    dg_node *out = NULL;
    ck_assert_int_eq(dg_grad(g, gx, 1, &x, &out), DG_ERR_SHAPE);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "[3]"));
    dg_graph_free(g);
}
END_TEST

/* The second pass builds on the first: it appends nodes after the existing ones (so ascending
 * index stays a topological order), they are backward nodes drawn in the DOT dump's backward
 * cluster, and the gradients are labelled by their wrt node ("grad of x"). */
START_TEST(test_double_backward_graph_and_dot)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){4});
    dg_node *f = sum_all(g, dg_tanh(g, x));
    int forward_nodes = dg_graph_node_count(g);
    dg_node *g1 = grad1(g, f, x);
    int after_first = dg_graph_node_count(g);
    dg_node *g2 = grad1(g, sum_all(g, g1), x);
    int after_second = dg_graph_node_count(g);
    ck_assert_int_gt(after_first, forward_nodes);
    ck_assert_int_gt(after_second, after_first + 1);
    ck_assert_int_gt(dg_node_index(g2), dg_node_index(g1));
    FILE *file = tmpfile();
    ck_assert_ptr_nonnull(file);
    ck_assert_int_eq(dg_graph_dump_dot(g, file), DG_OK);
    long len = ftell(file);
    ck_assert_int_gt(len, 0);
    char *text = calloc((size_t)len + 1, 1);
    ck_assert_ptr_nonnull(text);
    rewind(file);
    ck_assert_int_eq(fread(text, 1, (size_t)len, file), len);
    fclose(file);
    ck_assert_ptr_nonnull(strstr(text, "cluster_backward"));
    ck_assert_ptr_nonnull(strstr(text, "tanh_grad"));
    ck_assert_ptr_nonnull(strstr(text, "grad of x"));
    free(text);
    dg_graph_free(g);
}
END_TEST

/* Piecewise-constant pieces of a backward rule (relu's mask) contribute a zero second
 * derivative, not an error: relu(x)^2 has first derivative 2 relu(x) and second 2 [x > 0]. */
START_TEST(test_relu_square_second_derivative)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){4});
    dg_node *g1 = grad1(g, sum_all(g, dg_square(g, dg_relu(g, x))), x);
    dg_node *g2 = grad1(g, sum_all(g, g1), x);
    float xv[4] = {-1.5f, -0.2f, 0.3f, 2.0f};
    dg_plan *p = compile_run(g, 2, (dg_node *[]){g1, g2}, 1, &x, (const void *[]){xv});
    for (int i = 0; i < 4; i++) {
        check_close(dg_data(p, g1)[i], xv[i] > 0 ? 2.0 * xv[i] : 0.0, 1e-6, "d relu^2", i);
        check_close(dg_data(p, g2)[i], xv[i] > 0 ? 2.0 : 0.0, 1e-6, "d2 relu^2", i);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* stop_gradient is a constant to every order: f = sum(x^2 * stop(e^x)) has
 * df/dx = 2x e^x (the stopped factor is not differentiated) and d/dx sum(df/dx) = 2 e^x.
 * (Finite differences cannot check this: they see the stopped value move.) */
START_TEST(test_stop_gradient_every_order)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){3});
    dg_node *f = sum_all(g, dg_mul(g, dg_square(g, x), dg_stop_gradient(g, dg_exp(g, x))));
    dg_node *g1 = grad1(g, f, x);
    dg_node *g2 = grad1(g, sum_all(g, g1), x);
    float xv[3] = {-0.5f, 0.25f, 1.0f};
    dg_plan *p = compile_run(g, 2, (dg_node *[]){g1, g2}, 1, &x, (const void *[]){xv});
    for (int i = 0; i < 3; i++) {
        check_close(dg_data(p, g1)[i], 2.0 * xv[i] * exp(xv[i]), REL_TOL, "d1", i);
        check_close(dg_data(p, g2)[i], 2.0 * exp(xv[i]), REL_TOL, "d2", i);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* There was a refusal here once: concat's backward slices the gradient with a node that
 * reads the gradient plus x_0 .. x_k, and nodes had at most 16 inputs, so a concat of exactly
 * 16 inputs had no gradient. Nodes now take any number of inputs: 15, 16 and 17 inputs all
 * differentiate to second order: f = sum(exp(concat(x_0 .. x_{n-1}))) has
 * d2f/dx_i2 = exp(x_i) through concat_slice's and concat_pad's rules. */
START_TEST(test_concat_inputs_limit)
{
    for (int n = 15; n <= 17; n++) {
        dg_graph *g = dg_graph_new();
        dg_node *xs[17], *g1[17], *g2[17];
        for (int i = 0; i < n; i++) {
            char name[8];
            snprintf(name, sizeof name, "x%d", i);
            xs[i] = dg_input(g, name, 1, (int64_t[]){2});
        }
        dg_node *f = sum_all(g, dg_exp(g, dg_concat(g, n, xs, 0)));
        ck_assert_ptr_nonnull(f);
        dg_status st = dg_grad(g, f, n, xs, g1);
        ck_assert_msg(st == DG_OK, "%d inputs: %s", n, dg_graph_error(g));
        dg_node *loss2 = sum_all(g, g1[0]);
        for (int i = 1; i < n; i++)
            loss2 = dg_add(g, loss2, sum_all(g, g1[i]));
        ck_assert_msg(dg_grad(g, loss2, n, xs, g2) == DG_OK, "%s", dg_graph_error(g));
        dg_plan *p = dg_compile(g, n, g2);
        ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
        float data[17][2];
        for (int i = 0; i < n; i++) {
            data[i][0] = 0.1f * (float)i - 0.7f;
            data[i][1] = 0.05f * (float)i;
            ck_assert_int_eq(dg_feed(p, xs[i], data[i]), DG_OK);
        }
        ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < 2; j++)
                check_close(dg_data(p, g2[i])[j], exp(data[i][j]), REL_TOL, "d2 concat",
                            2 * i + j);
        dg_plan_free(p);
        dg_graph_free(g);
    }
}
END_TEST

/* ---- Second derivatives through the fused LSTM -------------------------------------------
 * dg_lstm is one fused op (lstm_seq) with a fused gradient op (lstm_seq_grad), whose own
 * backward rule builds the gradient formula from ordinary ops (src/ops/lstm_grad2.c). These
 * tests compare the double backward with the same model unrolled from sigmoid, tanh, mul and
 * matmul nodes (every step ordinary ops) and check it by central differences of the compiled
 * first gradient. */
enum { LB = 2, LT_MAX = 3, LF = 4, LH = 5 };

static dg_node *lstm_param(dg_graph *g, const char *what)
{
    char name[64];
    snprintf(name, sizeof name, "lstm.%s_l0", what);
    dg_node *p = dg_graph_find(g, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    return p;
}

/* The layer dg_lstm built (its parameters, PyTorch's equations) unrolled from ordinary ops;
 * h0, c0 may be NULL (zeros). Returns every step's h [B,T,H], the final h and c in *hn, *cn. */
static dg_node *reference_lstm(dg_graph *g, dg_node *x, dg_node *h0, dg_node *c0, dg_node **hn,
                               dg_node **cn)
{
    const int steps = (int)dg_node_dim(x, 1);
    dg_node *w_ih = lstm_param(g, "weight_ih"), *w_hh = lstm_param(g, "weight_hh");
    dg_node *bias = dg_add(g, lstm_param(g, "bias_ih"), lstm_param(g, "bias_hh"));
    dg_node *h = h0, *c = c0, *hs[LT_MAX];
    for (int t = 0; t < steps; t++) {
        dg_node *xt = dg_reshape(g, dg_slice(g, x, 1, t, t + 1), 2, (int64_t[]){LB, LF});
        dg_node *a = dg_add(g, dg_matmul_ex(g, xt, w_ih, false, true), bias);
        if (h != NULL)
            a = dg_add(g, a, dg_matmul_ex(g, h, w_hh, false, true));
        dg_node *i = dg_sigmoid(g, dg_slice(g, a, 1, 0, LH));
        dg_node *f = dg_sigmoid(g, dg_slice(g, a, 1, LH, 2 * LH));
        dg_node *gg = dg_tanh(g, dg_slice(g, a, 1, 2 * LH, 3 * LH));
        dg_node *o = dg_sigmoid(g, dg_slice(g, a, 1, 3 * LH, 4 * LH));
        c = c != NULL ? dg_add(g, dg_mul(g, f, c), dg_mul(g, i, gg)) : dg_mul(g, i, gg);
        h = dg_mul(g, o, dg_tanh(g, c));
        hs[t] = dg_reshape(g, h, 3, (int64_t[]){LB, 1, LH});
    }
    *hn = h;
    *cn = c;
    return steps == 1 ? hs[0] : dg_concat(g, steps, hs, 1);
}

static dg_node *lstm_state_param(dg_graph *g, const char *name, int ndim, const int64_t *shape,
                                 uint64_t seed)
{
    dg_node *p = dg_param(g, name, ndim, shape);
    ck_assert_ptr_nonnull(p);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, seed);
    dg_test_fill_uniform(&rng, dg_param_data(p), dg_node_numel(p), -1, 1);
    return p;
}

/* loss2 = sum over the first gradients of their squares, its gradients with respect to wrt2.
 * `first` are the nodes differentiated first (x, then h0 and c0 where given). */
static dg_node *lstm_loss2(dg_graph *g, dg_node *loss, int n_first, dg_node *const *first,
                           int n_wrt2, dg_node *const *wrt2, dg_node **d2)
{
    dg_node *g1[3];
    ck_assert_msg(dg_grad(g, loss, n_first, first, g1) == DG_OK, "grad: %s", dg_graph_error(g));
    dg_node *loss2 = NULL;
    for (int k = 0; k < n_first; k++) {
        dg_node *sq = sum_all(g, dg_mul(g, g1[k], g1[k]));
        loss2 = loss2 != NULL ? dg_add(g, loss2, sq) : sq;
    }
    dg_status st = dg_grad(g, loss2, n_wrt2, wrt2, d2);
    ck_assert_msg(st == DG_OK, "second grad: %s", dg_graph_error(g));
    return loss2;
}

static void lstm_double_backward(int steps, bool with_state)
{
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 21);
    dg_node *x = lstm_state_param(g, "x", 3, (int64_t[]){LB, steps, LF}, 31);
    dg_node *h0 = NULL, *c0 = NULL;
    if (with_state) {
        h0 = lstm_state_param(g, "h0", 2, (int64_t[]){LB, LH}, 32);
        c0 = lstm_state_param(g, "c0", 2, (int64_t[]){LB, LH}, 33);
    }
    dg_node *hn, *cn, *hn_r, *cn_r;
    dg_node *y = dg_lstm(g, x, LH, h0, c0, "lstm", &rng, &hn, &cn);
    ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
    dg_node *y_r = reference_lstm(g, x, h0, c0, &hn_r, &cn_r);
    ck_assert_msg(y_r != NULL, "%s", dg_graph_error(g));
    /* Without states: the reviewer's case, loss = sum(y). With them: weighted y^2, h_n and c_n
     * (c_n is the packed output's c slice: gradients in lstm_seq_grad's gy beyond h; y^2 makes
     * gy itself a function of y, so the rule must take partial derivatives). */
    dg_node *loss = sum_all(g, y), *loss_r = sum_all(g, y_r);
    if (with_state) {
        loss = dg_add(g, dg_add(g, weighted_sum(g, dg_square(g, y), 41), weighted_sum(g, hn, 42)),
                      weighted_sum(g, cn, 43));
        loss_r = dg_add(g, dg_add(g, weighted_sum(g, dg_square(g, y_r), 41),
                                  weighted_sum(g, hn_r, 42)),
                        weighted_sum(g, cn_r, 43));
    }
    dg_node *first[3] = {x, h0, c0};
    const int n_first = with_state ? 3 : 1;
    dg_node *wrt2[5] = {lstm_param(g, "weight_hh"), lstm_param(g, "weight_ih"), x, h0, c0};
    const int n_wrt2 = 2 + n_first;
    dg_node *d2[5], *d2_r[5];
    dg_node *loss2 = lstm_loss2(g, loss, n_first, first, n_wrt2, wrt2, d2);
    dg_node *loss2_r = lstm_loss2(g, loss_r, n_first, first, n_wrt2, wrt2, d2_r);
    /* The double backward really goes through the fused ops (the reviewer's failure). */
    bool fused_grad = false;
    for (int i = 0; i < dg_graph_node_count(g); i++)
        fused_grad = fused_grad || strcmp(dg_node_op_name(dg_graph_node(g, i)),
                                          "lstm_seq_grad") == 0;
    ck_assert(fused_grad);

    dg_node *outs[12] = {loss2, loss2_r};
    for (int k = 0; k < n_wrt2; k++) {
        outs[2 + k] = d2[k];
        outs[2 + n_wrt2 + k] = d2_r[k];
    }
    dg_plan *p = compile_run(g, 2 + 2 * n_wrt2, outs, 0, NULL, NULL);
    check_close(dg_data(p, loss2)[0], dg_data(p, loss2_r)[0], 1e-5, "loss2", 0);
    for (int k = 0; k < n_wrt2; k++) {
        int64_t n = dg_node_numel(wrt2[k]);
        double err = dg_test_max_rel_err(dg_data(p, d2[k]), dg_data(p, d2_r[k]), n, 1e-2);
        ck_assert_msg(err < 2e-5, "d2 loss2 / d %s: max relative error %g against the "
                      "unrolled LSTM", dg_node_name(wrt2[k]), err);
    }
    dg_plan_free(p);

    /* Central differences of the compiled first gradient (the fused path). */
    dg_gradcheck_options opts = dg_gradcheck_defaults();
    opts.max_elements_per_node = 0;
    dg_gradcheck_report report;
    dg_status st = dg_gradcheck(g, loss2, n_wrt2, wrt2, 0, NULL, NULL, &opts, &report);
    ck_assert_msg(st == DG_OK, "gradcheck did not run: %s", dg_graph_error(g));
    ck_assert_msg(report.passed, "%s", report.summary);
    ck_assert_int_gt(report.n_checked, 0);

    /* A third order is built too (the composed rule's nodes are ordinary ones). */
    dg_node *d3 = NULL;
    ck_assert_msg(dg_grad(g, sum_all(g, dg_mul(g, d2[2], d2[2])), 1, &x, &d3) == DG_OK, "%s",
                  dg_graph_error(g));
    p = compile_run(g, 1, &d3, 0, NULL, NULL);
    for (int64_t i = 0; i < dg_node_numel(x); i++)
        ck_assert(isfinite(dg_data(p, d3)[i]));
    dg_plan_free(p);
    dg_graph_free(g);
}

START_TEST(test_lstm_double_backward) { lstm_double_backward(LT_MAX, false); }
END_TEST

START_TEST(test_lstm_double_backward_states) { lstm_double_backward(LT_MAX, true); }
END_TEST

/* One step: the gradients of y and gy are a single step's (no concat along time). */
START_TEST(test_lstm_double_backward_one_step) { lstm_double_backward(1, true); }
END_TEST

/* ---- Second derivatives through the fused GRU --------------------------------------------
 * dg_gru is one fused op (gru_seq) with a fused gradient op (gru_seq_grad) whose own backward
 * rule is composed from ordinary ops (src/ops/gru_grad2.c): the same checks as the LSTM's,
 * against the layer unrolled from sigmoid, tanh, mul and matmul nodes. */
static dg_node *gru_param(dg_graph *g, const char *what)
{
    char name[64];
    snprintf(name, sizeof name, "gru.%s_l0", what);
    dg_node *p = dg_graph_find(g, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    return p;
}

/* The layer dg_gru built (its parameters, torch.nn.GRU's equations) unrolled from ordinary
 * ops; h0 may be NULL (zeros). Returns every step's h [B,T,H], the final h in *hn. */
static dg_node *reference_gru(dg_graph *g, dg_node *x, dg_node *h0, dg_node **hn)
{
    const int steps = (int)dg_node_dim(x, 1);
    dg_node *w_ih = gru_param(g, "weight_ih"), *w_hh = gru_param(g, "weight_hh");
    dg_node *b_ih = gru_param(g, "bias_ih"), *b_hh = gru_param(g, "bias_hh");
    dg_node *h = h0, *hs[LT_MAX];
    for (int t = 0; t < steps; t++) {
        dg_node *xt = dg_reshape(g, dg_slice(g, x, 1, t, t + 1), 2, (int64_t[]){LB, LF});
        dg_node *a = dg_add(g, dg_matmul_ex(g, xt, w_ih, false, true), b_ih);
        dg_node *hw = h != NULL ? dg_add(g, dg_matmul_ex(g, h, w_hh, false, true), b_hh)
                                : dg_reshape(g, b_hh, 2, (int64_t[]){1, 3 * LH});
        dg_node *r = dg_sigmoid(g, dg_add(g, dg_slice(g, a, 1, 0, LH),
                                          dg_slice(g, hw, 1, 0, LH)));
        dg_node *z = dg_sigmoid(g, dg_add(g, dg_slice(g, a, 1, LH, 2 * LH),
                                          dg_slice(g, hw, 1, LH, 2 * LH)));
        dg_node *n = dg_tanh(g, dg_add(g, dg_slice(g, a, 1, 2 * LH, 3 * LH),
                                       dg_mul(g, r, dg_slice(g, hw, 1, 2 * LH, 3 * LH))));
        dg_node *one_minus_z = dg_add_scalar(g, dg_neg(g, z), 1.0f);
        h = h != NULL ? dg_add(g, dg_mul(g, one_minus_z, n), dg_mul(g, z, h))
                      : dg_mul(g, one_minus_z, n);
        hs[t] = dg_reshape(g, h, 3, (int64_t[]){LB, 1, LH});
    }
    *hn = h;
    return steps == 1 ? hs[0] : dg_concat(g, steps, hs, 1);
}

static void gru_double_backward(int steps, bool with_state)
{
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 22);
    dg_node *x = lstm_state_param(g, "x", 3, (int64_t[]){LB, steps, LF}, 34);
    dg_node *h0 = with_state ? lstm_state_param(g, "h0", 2, (int64_t[]){LB, LH}, 35) : NULL;
    dg_node *hn, *hn_r;
    dg_node *y = dg_gru(g, x, LH, h0, "gru", &rng, &hn);
    ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
    dg_node *y_r = reference_gru(g, x, h0, &hn_r);
    ck_assert_msg(y_r != NULL, "%s", dg_graph_error(g));
    /* With states: weighted y^2 (gy a function of y: partial derivatives) and h_n. */
    dg_node *loss = sum_all(g, y), *loss_r = sum_all(g, y_r);
    if (with_state) {
        loss = dg_add(g, weighted_sum(g, dg_square(g, y), 44), weighted_sum(g, hn, 45));
        loss_r = dg_add(g, weighted_sum(g, dg_square(g, y_r), 44), weighted_sum(g, hn_r, 45));
    }
    dg_node *first[2] = {x, h0};
    const int n_first = with_state ? 2 : 1;
    dg_node *wrt2[6] = {gru_param(g, "weight_hh"), gru_param(g, "weight_ih"),
                        gru_param(g, "bias_hh"), gru_param(g, "bias_ih"), x, h0};
    const int n_wrt2 = 4 + n_first;
    dg_node *d2[6], *d2_r[6];
    dg_node *loss2 = lstm_loss2(g, loss, n_first, first, n_wrt2, wrt2, d2);
    dg_node *loss2_r = lstm_loss2(g, loss_r, n_first, first, n_wrt2, wrt2, d2_r);
    bool fused_grad = false;
    for (int i = 0; i < dg_graph_node_count(g); i++)
        fused_grad = fused_grad || strcmp(dg_node_op_name(dg_graph_node(g, i)),
                                          "gru_seq_grad") == 0;
    ck_assert(fused_grad);

    dg_node *outs[14] = {loss2, loss2_r};
    for (int k = 0; k < n_wrt2; k++) {
        outs[2 + k] = d2[k];
        outs[2 + n_wrt2 + k] = d2_r[k];
    }
    dg_plan *p = compile_run(g, 2 + 2 * n_wrt2, outs, 0, NULL, NULL);
    check_close(dg_data(p, loss2)[0], dg_data(p, loss2_r)[0], 1e-5, "loss2", 0);
    for (int k = 0; k < n_wrt2; k++) {
        int64_t n = dg_node_numel(wrt2[k]);
        double err = dg_test_max_rel_err(dg_data(p, d2[k]), dg_data(p, d2_r[k]), n, 1e-2);
        ck_assert_msg(err < 2e-5, "d2 loss2 / d %s: max relative error %g against the "
                      "unrolled GRU", dg_node_name(wrt2[k]), err);
    }
    dg_plan_free(p);

    /* Central differences of the compiled first gradient (the fused path). */
    dg_gradcheck_options opts = dg_gradcheck_defaults();
    opts.max_elements_per_node = 0;
    dg_gradcheck_report report;
    dg_status st = dg_gradcheck(g, loss2, n_wrt2, wrt2, 0, NULL, NULL, &opts, &report);
    ck_assert_msg(st == DG_OK, "gradcheck did not run: %s", dg_graph_error(g));
    ck_assert_msg(report.passed, "%s", report.summary);
    ck_assert_int_gt(report.n_checked, 0);

    /* A third order is built too. */
    dg_node *d3 = NULL;
    ck_assert_msg(dg_grad(g, sum_all(g, dg_mul(g, d2[4], d2[4])), 1, &x, &d3) == DG_OK, "%s",
                  dg_graph_error(g));
    p = compile_run(g, 1, &d3, 0, NULL, NULL);
    for (int64_t i = 0; i < dg_node_numel(x); i++)
        ck_assert(isfinite(dg_data(p, d3)[i]));
    dg_plan_free(p);
    dg_graph_free(g);
}

START_TEST(test_gru_double_backward) { gru_double_backward(LT_MAX, false); }
END_TEST

START_TEST(test_gru_double_backward_states) { gru_double_backward(LT_MAX, true); }
END_TEST

START_TEST(test_gru_double_backward_one_step) { gru_double_backward(1, true); }
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("higher_order");
    TCase *closed = tcase_create("closed_form");
    tcase_add_loop_test(closed, test_unary_second_derivative_scalar, 0, N_UNARY);
    tcase_add_loop_test(closed, test_unary_second_derivative_vector, 0, N_UNARY);
    tcase_add_test(closed, test_mixed_xy);
    tcase_add_test(closed, test_mixed_x2y);
    tcase_add_test(closed, test_mixed_exp_broadcast);
    tcase_add_test(closed, test_fourth_power_to_fourth_order);
    tcase_add_test(closed, test_third_order_exp_tanh);
    tcase_add_test(closed, test_relu_square_second_derivative);
    tcase_add_test(closed, test_stop_gradient_every_order);
    suite_add_tcase(s, closed);
    TCase *matmul = tcase_create("hvp");
    tcase_add_test(matmul, test_hvp_quadratic_matmul);
    tcase_add_test(matmul, test_hvp_tanh_layer);
    tcase_add_test(matmul, test_hvp_follows_batch_change);
    suite_add_tcase(s, matmul);
    TCase *numeric = tcase_create("double_backward_gradcheck");
    tcase_add_loop_test(numeric, test_double_backward_gradcheck, 0, N_DBL);
    suite_add_tcase(s, numeric);
    TCase *graph = tcase_create("graph");
    tcase_add_test(graph, test_vector_gradient_is_not_a_loss);
    tcase_add_test(graph, test_double_backward_graph_and_dot);
    tcase_add_test(graph, test_concat_inputs_limit);
    suite_add_tcase(s, graph);
    TCase *lstm = tcase_create("lstm");
    tcase_add_test(lstm, test_lstm_double_backward);
    tcase_add_test(lstm, test_lstm_double_backward_states);
    tcase_add_test(lstm, test_lstm_double_backward_one_step);
    suite_add_tcase(s, lstm);
    TCase *gru = tcase_create("gru");
    tcase_add_test(gru, test_gru_double_backward);
    tcase_add_test(gru, test_gru_double_backward_states);
    tcase_add_test(gru, test_gru_double_backward_one_step);
    suite_add_tcase(s, gru);
    return s;
}

int main(void) { return dg_test_run(suite()); }
