/*
 * Unary math and activation ops (src/ops/unary_math.c, src/ops/activation.c):
 * - forward values derived by hand, special values included (exp(-inf) = 0, log(0) = -inf,
 *   sigmoid(+-100), tanh(+-20), gelu(0), softplus above its threshold, pow's NaN/inf cases);
 * - first derivatives at the kinks (relu'(0) = 0, abs'(0) = 0, leaky'(0) = slope, sqrt'(0) =
 *   inf, pow with p = 0) and second derivatives through the fused *_grad ops' own rules;
 * - every constructor's error paths (int32 input, NULL input, foreign node, pass-through),
 *   and the fused ops' shape check;
 * - runs through a compiled plan: a changed batch, in-place chains, and bitwise-identical
 *   results for 1 and 4 threads on arrays large enough to be split into chunks.
 * The PyTorch comparisons and finite-difference checks of every op are driven by the case
 * tables (cases_unary.c, cases_activation.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "op.h"
#include "test_util.h"

typedef dg_node *(*unary_builder)(dg_graph *g, dg_node *x);

static dg_node *b_neg(dg_graph *g, dg_node *x) { return dg_neg(g, x); }
static dg_node *b_abs(dg_graph *g, dg_node *x) { return dg_abs(g, x); }
static dg_node *b_sign(dg_graph *g, dg_node *x) { return dg__make_node(g, DG_OP_sign, 1, &x, NULL); }
static dg_node *b_exp(dg_graph *g, dg_node *x) { return dg_exp(g, x); }
static dg_node *b_log(dg_graph *g, dg_node *x) { return dg_log(g, x); }
static dg_node *b_sqrt(dg_graph *g, dg_node *x) { return dg_sqrt(g, x); }
static dg_node *b_square(dg_graph *g, dg_node *x) { return dg_square(g, x); }
static dg_node *b_pow_frac(dg_graph *g, dg_node *x) { return dg_pow_scalar(g, x, 2.5f); }
static dg_node *b_pow_third(dg_graph *g, dg_node *x) { return dg_pow_scalar(g, x, 1.0f / 3.0f); }
static dg_node *b_pow_inv(dg_graph *g, dg_node *x) { return dg_pow_scalar(g, x, -1.0f); }
static dg_node *b_pow_zero(dg_graph *g, dg_node *x) { return dg_pow_scalar(g, x, 0.0f); }
static dg_node *b_pow_cube(dg_graph *g, dg_node *x) { return dg_pow_scalar(g, x, 3.0f); }
static dg_node *b_scale(dg_graph *g, dg_node *x) { return dg_scale(g, x, -1.5f); }
static dg_node *b_add_scalar(dg_graph *g, dg_node *x) { return dg_add_scalar(g, x, 0.25f); }
static dg_node *b_relu(dg_graph *g, dg_node *x) { return dg_relu(g, x); }
static dg_node *b_leaky(dg_graph *g, dg_node *x) { return dg_leaky_relu(g, x, 0.1f); }
static dg_node *b_sigmoid(dg_graph *g, dg_node *x) { return dg_sigmoid(g, x); }
static dg_node *b_tanh(dg_graph *g, dg_node *x) { return dg_tanh(g, x); }
static dg_node *b_gelu(dg_graph *g, dg_node *x) { return dg_gelu(g, x); }
static dg_node *b_softplus(dg_graph *g, dg_node *x) { return dg_softplus(g, x); }

/* out = build(x) for x of shape [n], through a compiled plan. */
static void eval_unary(unary_builder build, const float *x, int n, float *out)
{
    dg_graph *g = dg_graph_new();
    ck_assert_ptr_nonnull(g);
    int64_t shape[1] = {n};
    dg_node *in = dg_input(g, "x", 1, shape);
    dg_node *y = build(g, in);
    ck_assert_msg(y != NULL, "%s", dg_graph_error(g));
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_feed(p, in, x), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    memcpy(out, dg_data(p, y), (size_t)n * sizeof *out);
    dg_plan_free(p);
    dg_graph_free(g);
}

/* First (order 1) or second (order 2) derivative of build at each x[i], from dg_grad applied
 * once or twice to a scalar input (so the fused backward ops' own rules are exercised). */
static void eval_derivative(unary_builder build, int order, const float *x, int n, float *out)
{
    for (int i = 0; i < n; i++) {
        dg_graph *g = dg_graph_new();
        dg_node *in = dg_input(g, "x", 0, NULL);
        dg_node *d = build(g, in);
        for (int k = 0; k < order; k++) {
            dg_node *next = NULL;
            ck_assert_msg(dg_grad(g, d, 1, &in, &next) == DG_OK, "%s", dg_graph_error(g));
            d = next;
        }
        /* x is an output too, so that the plan holds it even where the derivative is a
         * constant (the zero of a piecewise-constant op) */
        dg_plan *p = dg_compile(g, 2, (dg_node *[]){d, in});
        ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
        ck_assert_msg(dg_feed(p, in, &x[i]) == DG_OK, "%s", dg_graph_error(g));
        ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
        out[i] = dg_data(p, d)[0];
        dg_plan_free(p);
        dg_graph_free(g);
    }
}

static void assert_close(const float *got, const double *want, int n, double tol)
{
    for (int i = 0; i < n; i++) {
        if (isnan(want[i])) {
            ck_assert_msg(isnan(got[i]), "element %d: got %g, want NaN", i, (double)got[i]);
        } else if (isinf(want[i])) {
            ck_assert_msg(isinf(got[i]) && (got[i] > 0) == (want[i] > 0),
                          "element %d: got %g, want %g", i, (double)got[i], want[i]);
        } else {
            double err = fabs((double)got[i] - want[i]) / fmax(fabs(want[i]), 1.0);
            ck_assert_msg(err <= tol, "element %d: got %.9g, want %.9g", i, (double)got[i],
                          want[i]);
        }
    }
}

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void check_forward(unary_builder build, const float *x, const double *want, int n,
                          double tol)
{
    float out[16];
    ck_assert_int_le(n, 16);
    eval_unary(build, x, n, out);
    assert_close(out, want, n, tol);
}

static void check_derivative(unary_builder build, int order, const float *x, const double *want,
                             int n, double tol)
{
    float out[16];
    ck_assert_int_le(n, 16);
    eval_derivative(build, order, x, n, out);
    assert_close(out, want, n, tol);
}

/* ---- forward values -------------------------------------------------------------------- */

START_TEST(test_neg_abs_sign)
{
    const float x[] = {-2.5f, -0.0f, 0.0f, 3.0f, INFINITY, -INFINITY, NAN};
    check_forward(b_neg, x, (const double[]){2.5, 0, 0, -3, -INFINITY, INFINITY, NAN}, 7, 0);
    check_forward(b_abs, x, (const double[]){2.5, 0, 0, 3, INFINITY, INFINITY, NAN}, 7, 0);
    check_forward(b_sign, x, (const double[]){-1, 0, 0, 1, 1, -1, NAN}, 7, 0);
}
END_TEST

START_TEST(test_exp_log_sqrt)
{
    const float x[] = {-INFINITY, -1.0f, 0.0f, 1.0f, 10.0f, INFINITY, NAN};
    check_forward(b_exp, x,
                  (const double[]){0.0, 0.36787944117, 1, 2.718281828459, 22026.465794806718,
                                   INFINITY, NAN}, 7, 1e-6);
    const float xl[] = {0.0f, 1.0f, 2.718281828f, 0.5f, 1e30f, -1.0f, INFINITY};
    check_forward(b_log, xl,
                  (const double[]){-INFINITY, 0, 1, -0.69314718056, 69.07755278982137, NAN,
                                   INFINITY}, 7, 1e-6);
    const float xs[] = {0.0f, 4.0f, 2.0f, 1e-6f, -1.0f, INFINITY};
    check_forward(b_sqrt, xs, (const double[]){0, 2, 1.41421356237, 1e-3, NAN, INFINITY}, 6,
                  1e-6);
}
END_TEST

START_TEST(test_square_pow_scale)
{
    const float x[] = {-3.0f, 0.5f, 0.0f, 4.0f};
    check_forward(b_square, x, (const double[]){9, 0.25, 0, 16}, 4, 0);
    check_forward(b_scale, x, (const double[]){4.5, -0.75, 0, -6}, 4, 0);
    check_forward(b_add_scalar, x, (const double[]){-2.75, 0.75, 0.25, 4.25}, 4, 0);
    check_forward(b_pow_cube, x, (const double[]){-27, 0.125, 0, 64}, 4, 1e-7);
    /* torch.pow's special values: negative base with a non-integer exponent is NaN, 0^-1 is
     * inf, x^0 is 1 everywhere (0^0 and NaN^0 included). */
    const float xp[] = {4.0f, 0.0f, -8.0f, 1.0f};
    check_forward(b_pow_frac, xp, (const double[]){32, 0, NAN, 1}, 4, 1e-7);
    check_forward(b_pow_third, xp, (const double[]){1.587401052, 0, NAN, 1}, 4, 1e-6);
    check_forward(b_pow_inv, (const float[]){0.0f, -0.0f, 2.0f, -4.0f},
                  (const double[]){INFINITY, -INFINITY, 0.5, -0.25}, 4, 0);
    check_forward(b_pow_zero, (const float[]){0.0f, -3.0f, NAN, INFINITY},
                  (const double[]){1, 1, 1, 1}, 4, 0);
}
END_TEST

START_TEST(test_relu_leaky)
{
    const float x[] = {-2.0f, -0.0f, 0.0f, 1.5f, -INFINITY, INFINITY, NAN};
    check_forward(b_relu, x, (const double[]){0, 0, 0, 1.5, 0, INFINITY, NAN}, 7, 0);
    check_forward(b_leaky, x, (const double[]){-0.2, 0, 0, 1.5, -INFINITY, INFINITY, NAN}, 7,
                  1e-7);
}
END_TEST

START_TEST(test_sigmoid_tanh)
{
    const float x[] = {-100.0f, -20.0f, 0.0f, 2.0f, 20.0f, 100.0f, -INFINITY, INFINITY};
    float out[8];
    eval_unary(b_sigmoid, x, 8, out);
    assert_close(out, (const double[]){0, 2.0611536e-9, 0.5, 0.880797077978, 1, 1, 0, 1}, 8,
                 1e-6);
    /* far out the result keeps its relative accuracy (e^-100 ~ 3.7e-44, subnormal) */
    ck_assert(out[0] >= 0.0f && out[0] < 1e-40f);
    ck_assert_double_le(fabs(out[1] / 2.0611536224e-9 - 1.0), 1e-5);
    const float xt[] = {-20.0f, -1.0f, 0.0f, 0.5f, 20.0f, -INFINITY, INFINITY, NAN};
    check_forward(b_tanh, xt,
                  (const double[]){-1, -0.761594155956, 0, 0.462117157260, 1, -1, 1, NAN}, 8,
                  1e-6);
}
END_TEST

START_TEST(test_gelu_softplus)
{
    const float x[] = {0.0f, 1.0f, -1.0f, 3.0f, -10.0f, 30.0f, -INFINITY, INFINITY};
    check_forward(b_gelu, x,
                  (const double[]){0, 0.841344746069, -0.158655253931, 2.995950305905,
                                   -7.619853024160593e-23, 30, 0, INFINITY}, 8, 1e-6);
    /* Above the threshold (x > 20) softplus is x itself. */
    const float xs[] = {0.0f, 1.0f, -30.0f, 20.5f, 25.0f, 100.0f, 19.0f, INFINITY};
    float out[8];
    eval_unary(b_softplus, xs, 8, out);
    assert_close(out, (const double[]){0.69314718056, 1.313261687518, 9.357622968840e-14,
                                       20.5, 25, 100, 19.0000000056, INFINITY}, 8, 1e-6);
    ck_assert_double_le(fabs(out[2] / 9.357622968840e-14 - 1.0), 1e-5);
}
END_TEST

/* ---- derivatives ----------------------------------------------------------------------- */

START_TEST(test_first_derivatives_at_kinks)
{
    const float x[] = {-2.0f, 0.0f, 3.0f};
    check_derivative(b_relu, 1, x, (const double[]){0, 0, 1}, 3, 0);       /* relu'(0) = 0 */
    check_derivative(b_abs, 1, x, (const double[]){-1, 0, 1}, 3, 0);       /* abs'(0) = 0 */
    check_derivative(b_leaky, 1, x, (const double[]){0.1, 0.1, 1}, 3, 1e-7); /* slope at 0 */
    check_derivative(b_sign, 1, x, (const double[]){0, 0, 0}, 3, 0);
    check_derivative(b_sqrt, 1, (const float[]){0.0f, 4.0f}, (const double[]){INFINITY, 0.25},
                     2, 1e-7);
    /* p = 0: no gradient at all, even at x = 0 (as PyTorch) */
    check_derivative(b_pow_zero, 1, x, (const double[]){0, 0, 0}, 3, 0);
    check_derivative(b_pow_frac, 1, (const float[]){4.0f, 0.0f},
                     (const double[]){20, 0}, 2, 1e-6);
}
END_TEST

START_TEST(test_first_derivatives)
{
    const float x[] = {-1.5f, 0.0f, 0.7f, 2.0f};
    double want[4];
    for (int i = 0; i < 4; i++) {
        double v = x[i], s = 1.0 / (1.0 + exp(-v));
        want[i] = s * (1 - s);
    }
    check_derivative(b_sigmoid, 1, x, want, 4, 1e-6);
    for (int i = 0; i < 4; i++)
        want[i] = 1 - tanh(x[i]) * tanh(x[i]);
    check_derivative(b_tanh, 1, x, want, 4, 1e-6);
    for (int i = 0; i < 4; i++)
        want[i] = 0.5 * erfc(-x[i] / sqrt(2.0)) + x[i] * exp(-0.5 * x[i] * x[i]) / sqrt(2 * M_PI);
    check_derivative(b_gelu, 1, x, want, 4, 1e-6);
    for (int i = 0; i < 4; i++)
        want[i] = 1.0 / (1.0 + exp(-(double)x[i]));
    check_derivative(b_softplus, 1, x, want, 4, 1e-6);
    for (int i = 0; i < 4; i++)
        want[i] = exp(x[i]);
    check_derivative(b_exp, 1, x, want, 4, 1e-6);
    check_derivative(b_square, 1, x, (const double[]){-3, 0, 1.4, 4}, 4, 1e-6);
    check_derivative(b_pow_cube, 1, x, (const double[]){6.75, 0, 1.47, 12}, 4, 1e-6);
    check_derivative(b_scale, 1, x, (const double[]){-1.5, -1.5, -1.5, -1.5}, 4, 0);
    check_derivative(b_add_scalar, 1, x, (const double[]){1, 1, 1, 1}, 4, 0);
    check_derivative(b_neg, 1, x, (const double[]){-1, -1, -1, -1}, 4, 0);
    check_derivative(b_log, 1, (const float[]){0.5f, 4.0f, 0.0f},
                     (const double[]){2, 0.25, INFINITY}, 3, 1e-7);
    /* saturation: the gradients vanish without NaN; softplus above the threshold passes g */
    check_derivative(b_sigmoid, 1, (const float[]){-100.0f, 100.0f}, (const double[]){0, 0}, 2,
                     1e-7);
    check_derivative(b_tanh, 1, (const float[]){-20.0f, 20.0f}, (const double[]){0, 0}, 2, 1e-7);
    check_derivative(b_softplus, 1, (const float[]){30.0f, -100.0f}, (const double[]){1, 0}, 2,
                     1e-7);
    check_derivative(b_gelu, 1, (const float[]){-30.0f, 30.0f}, (const double[]){0, 1}, 2, 1e-7);
}
END_TEST

/* Second derivatives go through the fused backward ops' own rules. */
START_TEST(test_second_derivatives)
{
    const float x[] = {-1.5f, -0.3f, 0.4f, 2.0f};
    double want[4];
    for (int i = 0; i < 4; i++) {
        double s = 1.0 / (1.0 + exp(-(double)x[i]));
        want[i] = s * (1 - s) * (1 - 2 * s);
    }
    check_derivative(b_sigmoid, 2, x, want, 4, 1e-5);
    for (int i = 0; i < 4; i++) {
        double t = tanh(x[i]);
        want[i] = -2 * t * (1 - t * t);
    }
    check_derivative(b_tanh, 2, x, want, 4, 1e-5);
    for (int i = 0; i < 4; i++) {
        double v = x[i];
        want[i] = exp(-0.5 * v * v) / sqrt(2 * M_PI) * (2 - v * v);
    }
    check_derivative(b_gelu, 2, x, want, 4, 1e-5);
    for (int i = 0; i < 4; i++) {
        double s = 1.0 / (1.0 + exp(-(double)x[i]));
        want[i] = s * (1 - s);
    }
    check_derivative(b_softplus, 2, x, want, 4, 1e-5);
    check_derivative(b_relu, 2, x, (const double[]){0, 0, 0, 0}, 4, 0);
    check_derivative(b_leaky, 2, x, (const double[]){0, 0, 0, 0}, 4, 0);
    check_derivative(b_abs, 2, x, (const double[]){0, 0, 0, 0}, 4, 0);
    check_derivative(b_square, 2, x, (const double[]){2, 2, 2, 2}, 4, 0);
    check_derivative(b_pow_cube, 2, x, (const double[]){-9, -1.8, 2.4, 12}, 4, 1e-6);
    for (int i = 0; i < 4; i++)
        want[i] = exp(x[i]);
    check_derivative(b_exp, 2, x, want, 4, 1e-6);
    check_derivative(b_log, 2, (const float[]){0.5f, 2.0f}, (const double[]){-4, -0.25}, 2,
                     1e-6);
    check_derivative(b_sqrt, 2, (const float[]){4.0f, 0.25f}, (const double[]){-1.0 / 32, -2},
                     2, 1e-6);
}
END_TEST

/* The fused ops' gradient with respect to their second operand (the upstream gradient) and,
 * for relu_grad/leaky_relu_grad, the zero gradient with respect to x. */
START_TEST(test_fused_grad_ops)
{
    dg_graph *g = dg_graph_new();
    int64_t shape[1] = {3};
    dg_node *x = dg_input(g, "x", 1, shape), *up = dg_input(g, "g", 1, shape);
    dg_node *fused = dg__make_node(g, DG_OP_relu_grad, 2, (dg_node *[]){x, up}, NULL);
    dg_node *loss = dg_sum(g, dg_mul(g, fused, fused), 0, NULL, false);
    dg_node *grads[2];
    ck_assert_int_eq(dg_grad(g, loss, 2, (dg_node *[]){x, up}, grads), DG_OK);
    dg_plan *p = dg_compile(g, 3, (dg_node *[]){fused, grads[0], grads[1]});
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    dg_feed(p, x, (const float[]){-1.0f, 0.0f, 2.0f});
    dg_feed(p, up, (const float[]){3.0f, INFINITY, -0.5f});
    ck_assert_int_eq(dg_run(p), DG_OK);
    /* a select, not a product: an infinite gradient at x <= 0 gives 0, not NaN */
    assert_close(dg_data(p, fused), (const double[]){0, 0, -0.5}, 3, 0);
    assert_close(dg_data(p, grads[0]), (const double[]){0, 0, 0}, 3, 0);
    assert_close(dg_data(p, grads[1]), (const double[]){0, 0, -1}, 3, 0);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------- */

static const struct { const char *name; unary_builder build; } all_ops[] = {
    {"neg", b_neg}, {"abs", b_abs}, {"sign", b_sign}, {"exp", b_exp}, {"log", b_log},
    {"sqrt", b_sqrt}, {"square", b_square}, {"pow_scalar", b_pow_frac}, {"scale", b_scale},
    {"add_scalar", b_add_scalar}, {"relu", b_relu}, {"leaky_relu", b_leaky},
    {"sigmoid", b_sigmoid}, {"tanh", b_tanh}, {"gelu", b_gelu}, {"softplus", b_softplus},
};

START_TEST(test_error_int32_input)
{
    const char *name = all_ops[_i].name;
    dg_graph *g = dg_graph_new();
    int64_t shape[2] = {2, 3};
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 2, shape);
    ck_assert_ptr_null(all_ops[_i].build(g, labels));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_DTYPE);
    const char *msg = dg_graph_error(g);
    ck_assert_msg(strncmp(msg, name, strlen(name)) == 0 && msg[strlen(name)] == ':',
                  "message '%s' does not name %s", msg, name);
    ck_assert_msg(strstr(msg, "int32") && strstr(msg, "[2,3]"), "message '%s'", msg);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_error_null_input)
{
    const char *name = all_ops[_i].name;
    dg_graph *g = dg_graph_new();
    ck_assert_ptr_null(all_ops[_i].build(g, NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    ck_assert_msg(strstr(dg_graph_error(g), name) && strstr(dg_graph_error(g), "NULL"),
                  "message '%s'", dg_graph_error(g));
    /* a NULL after an earlier error passes through silently: the first message stays */
    char first[256];
    snprintf(first, sizeof first, "%s", dg_graph_error(g));
    ck_assert_ptr_null(all_ops[_i].build(g, NULL));
    ck_assert_str_eq(dg_graph_error(g), first);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_error_foreign_node)
{
    const char *name = all_ops[_i].name;
    dg_graph *g = dg_graph_new(), *other = dg_graph_new();
    int64_t shape[1] = {4};
    dg_node *x = dg_input(other, "x", 1, shape);
    ck_assert_ptr_null(all_ops[_i].build(g, x));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_FOREIGN_NODE);
    ck_assert_msg(strstr(dg_graph_error(g), name), "message '%s'", dg_graph_error(g));
    ck_assert_int_eq(dg_graph_status(other), DG_OK);
    dg_graph_free(g);
    dg_graph_free(other);
}
END_TEST

static const char *const fused_names[] = {"relu_grad", "leaky_relu_grad", "sigmoid_grad",
                                          "tanh_grad", "gelu_grad"};
static const dg_op_id fused_ids[] = {DG_OP_relu_grad, DG_OP_leaky_relu_grad,
                                     DG_OP_sigmoid_grad, DG_OP_tanh_grad, DG_OP_gelu_grad};

START_TEST(test_error_fused_shapes)
{
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 2, (const int64_t[]){2, 3});
    dg_node *b = dg_input(g, "b", 2, (const int64_t[]){3, 2});
    dg_node *row = dg_input(g, "row", 1, (const int64_t[]){3});
    /* no broadcasting: [2,3] and [3] differ too */
    ck_assert_ptr_null(dg__make_node(g, fused_ids[_i], 2, (dg_node *[]){a, row}, NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg__make_node(g, fused_ids[_i], 2, (dg_node *[]){a, b}, NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    char want[128];
    snprintf(want, sizeof want, "%s: shapes [2,3] and [3,2] differ", fused_names[_i]);
    ck_assert_str_eq(dg_graph_error(g), want);
    dg_graph_clear_error(g);
    dg_node *ints = dg_input_typed(g, "ints", DG_I32, 2, (const int64_t[]){2, 3});
    ck_assert_ptr_null(dg__make_node(g, fused_ids[_i], 2, (dg_node *[]){a, ints}, NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_DTYPE);
    ck_assert_msg(strstr(dg_graph_error(g), fused_names[_i]), "%s", dg_graph_error(g));
    dg_graph_free(g);
}
END_TEST

/* ---- plans ----------------------------------------------------------------------------- */

/* A chain whose intermediates the planner may compute in place, and its gradient, rerun after
 * the batch changes. */
START_TEST(test_plan_changed_batch)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (const int64_t[]){2, 3});
    dg_node *y = dg_tanh(g, dg_add_scalar(g, dg_scale(g, dg_sigmoid(g, dg_neg(g, x)), 2.0f),
                                          -1.0f));
    dg_node *loss = dg_sum(g, y, 0, NULL, false);
    dg_node *dx;
    ck_assert_int_eq(dg_grad(g, loss, 1, &x, &dx), DG_OK);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){y, dx});
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    for (int round = 0; round < 2; round++) {
        int64_t batch = round == 0 ? 2 : 5;
        if (round == 1)
            ck_assert_int_eq(dg_plan_set_batch(p, batch), DG_OK);
        float xs[15];
        for (int i = 0; i < batch * 3; i++)
            xs[i] = -2.0f + 0.3f * (float)i;
        ck_assert_int_eq(dg_feed(p, x, xs), DG_OK);
        ck_assert_int_eq(dg_run(p), DG_OK);
        ck_assert_int_eq(dg_plan_numel(p, y), batch * 3);
        ck_assert_int_eq(dg_plan_numel(p, dx), batch * 3);
        const float *out = dg_data(p, y), *grad = dg_data(p, dx);
        for (int i = 0; i < batch * 3; i++) {
            /* 2 sigmoid(-x) - 1 = tanh(-x/2), so y = tanh(tanh(-x/2)) */
            double inner = tanh(-0.5 * xs[i]), outer = tanh(inner);
            double want_grad = (1 - outer * outer) * (1 - inner * inner) * -0.5;
            ck_assert_double_le(fabs(out[i] - outer), 1e-6);
            ck_assert_double_le(fabs(grad[i] - want_grad), 1e-6);
        }
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

static dg_node *b_mixed_chain(dg_graph *g, dg_node *x)
{
    /* every kernel of both files on one long array */
    dg_node *a = dg_gelu(g, dg_leaky_relu(g, x, 0.05f));
    dg_node *b = dg_softplus(g, dg_sqrt(g, dg_abs(g, dg_tanh(g, x))));
    dg_node *c = dg_log(g, dg_add_scalar(g, dg_exp(g, dg_relu(g, dg_neg(g, x))), 1.0f));
    dg_node *d = dg_pow_scalar(g, dg_square(g, dg_sigmoid(g, x)), 1.5f);
    return dg_add(g, dg_add(g, a, dg_scale(g, b, 0.5f)), dg_add(g, c, d));
}

/* Large arrays are split into chunks across threads; the results, and the gradients, must be
 * bitwise identical for any thread count. */
START_TEST(test_threads_bitwise_identical)
{
    const int64_t n = 100003; /* above the parallel threshold, not a multiple of any vector */
    float *xs = malloc((size_t)n * sizeof *xs), *ref[2] = {NULL, NULL};
    ck_assert_ptr_nonnull(xs);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 42);
    dg_test_fill_uniform(&rng, xs, n, -6.0f, 6.0f);
    const int threads[] = {1, 4, 3};
    for (int t = 0; t < 3; t++) {
        dg_graph *g = dg_graph_new();
        dg_node *x = dg_input(g, "x", 1, &n);
        dg_node *y = b_mixed_chain(g, x);
        dg_node *dx;
        ck_assert_int_eq(dg_grad(g, dg_sum(g, y, 0, NULL, false), 1, &x, &dx), DG_OK);
        dg_plan *p = dg_compile(g, 2, (dg_node *[]){y, dx});
        ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
        ck_assert_int_eq(dg_plan_set_threads(p, threads[t]), DG_OK);
        dg_feed(p, x, xs);
        ck_assert_int_eq(dg_run(p), DG_OK);
        const float *outs[2] = {dg_data(p, y), dg_data(p, dx)};
        for (int k = 0; k < 2; k++) {
            if (t == 0) {
                ref[k] = malloc((size_t)n * sizeof *ref[k]);
                ck_assert_ptr_nonnull(ref[k]);
                memcpy(ref[k], outs[k], (size_t)n * sizeof *ref[k]);
            } else {
                ck_assert_msg(memcmp(ref[k], outs[k], (size_t)n * sizeof *ref[k]) == 0,
                              "%s differs with %d threads", k ? "gradient" : "output",
                              threads[t]);
            }
        }
        dg_plan_free(p);
        dg_graph_free(g);
    }
    /* spot-check the values against double precision */
    for (int64_t i = 0; i < n; i += 997) {
        double v = xs[i];
        double lr = v > 0 ? v : 0.05 * v;
        double a = 0.5 * lr * erfc(-lr / sqrt(2.0));
        double sq = sqrt(fabs(tanh(v)));
        double b = log1p(exp(sq));
        double c = log(exp(v < 0 ? -v : 0.0) + 1.0);
        double s = 1.0 / (1.0 + exp(-v));
        double d = pow(s * s, 1.5);
        double want = a + 0.5 * b + c + d;
        ck_assert_double_le(fabs(ref[0][i] - want), 1e-5 * fmax(fabs(want), 1.0));
    }
    free(ref[0]);
    free(ref[1]);
    free(xs);
}
END_TEST

START_TEST(test_dot_labels)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (const int64_t[]){2});
    dg_node *y = dg_leaky_relu(g, dg_add_scalar(g, dg_scale(g, dg_pow_scalar(g, x, 2.5f), 3.0f),
                                                -1.0f), 0.25f);
    ck_assert_ptr_nonnull(y);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ck_assert_int_eq(dg_graph_dump_dot(g, out), DG_OK);
    fclose(out);
    ck_assert_msg(strstr(buf, "p=2.5") && strstr(buf, "s=3") && strstr(buf, "s=-1") &&
                  strstr(buf, "slope=0.25"), "%s", buf);
    free(buf);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_unary");
    TCase *forward = tcase_create("forward");
    tcase_add_test(forward, test_neg_abs_sign);
    tcase_add_test(forward, test_exp_log_sqrt);
    tcase_add_test(forward, test_square_pow_scale);
    tcase_add_test(forward, test_relu_leaky);
    tcase_add_test(forward, test_sigmoid_tanh);
    tcase_add_test(forward, test_gelu_softplus);
    suite_add_tcase(s, forward);
    TCase *backward = tcase_create("backward");
    tcase_add_test(backward, test_first_derivatives_at_kinks);
    tcase_add_test(backward, test_first_derivatives);
    tcase_add_test(backward, test_second_derivatives);
    tcase_add_test(backward, test_fused_grad_ops);
    suite_add_tcase(s, backward);
    TCase *errors = tcase_create("errors");
    tcase_add_loop_test(errors, test_error_int32_input, 0, N_OF(all_ops));
    tcase_add_loop_test(errors, test_error_null_input, 0, N_OF(all_ops));
    tcase_add_loop_test(errors, test_error_foreign_node, 0, N_OF(all_ops));
    tcase_add_loop_test(errors, test_error_fused_shapes, 0, N_OF(fused_ids));
    suite_add_tcase(s, errors);
    TCase *plans = tcase_create("plans");
    tcase_add_test(plans, test_plan_changed_batch);
    tcase_add_test(plans, test_threads_bitwise_identical);
    tcase_add_test(plans, test_dot_labels);
    suite_add_tcase(s, plans);
    return s;
}

int main(void) { return dg_test_run(suite()); }
