/*
 * Plain-C elementwise kernels: the path for CPUs without AVX2 (and for DG_ISA=generic). Each
 * element is computed on its own, so results never depend on how an array is chunked.
 *
 * Accuracy over speed: the composite functions (tanh, sigmoid, gelu, softplus and the
 * backward kernels) are evaluated in double and rounded once, which keeps every one within
 * about half an ulp of the exact value; exp, log and sqrt use glibc's float functions, which
 * are already below one ulp. This file is built with -ffp-contract=off (meson.build) so that
 * no compiler fuses a multiply and an add differently in two copies of one loop.
 */
#include <math.h>

#include "vmath_impl.h"
#include "dropout_hash.h"

static void exp_k(const float *x, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = expf(x[i]);
}

static void log_k(const float *x, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = logf(x[i]);
}

static void sqrt_k(const float *x, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = sqrtf(x[i]);
}

static void tanh_k(const float *x, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)tanh((double)x[i]);
}

/* 1 / (1 + e^-x), written so that e^-|x| never overflows: for x < 0, e^x / (1 + e^x). */
static double sigmoid_d(double x)
{
    double e = exp(-fabs(x));
    return (x >= 0 ? 1.0 : e) / (1.0 + e);
}

static void sigmoid_k(const float *x, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)sigmoid_d(x[i]);
}

/* Phi(x) = P(N(0,1) < x) = erfc(-x / sqrt 2) / 2: erfc keeps full relative accuracy in the
 * left tail, where 1 + erf(x / sqrt 2) would cancel. */
static double normal_cdf(double x)
{
    return 0.5 * erfc(-x * M_SQRT1_2);
}

/* gelu(x) = x * Phi(x); below -DG_VMATH_GELU_CLAMP it is -0 (so gelu(-inf) = -0, not NaN). */
static void gelu_k(const float *x, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double v = x[i] < -DG_VMATH_GELU_CLAMP ? -0.0 : x[i];
        out[i] = (float)(v * normal_cdf(v));
    }
}

/* softplus(x) = log(1 + e^x), and x itself above the threshold (PyTorch, beta = 1). */
static void softplus_k(const float *x, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] > DG_VMATH_SOFTPLUS_THRESHOLD ? x[i] : (float)log1p(exp((double)x[i]));
}

/* max(x, 0); NaN stays NaN. */
static void relu_k(const float *x, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (x[i] > 0.0f || isnan(x[i])) ? x[i] : 0.0f;
}

/* grad where x > 0, else 0 (0 at the kink, as PyTorch; a select, so inf * 0 never arises). */
static void relu_grad_k(const float *x, const float *grad, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] > 0.0f ? grad[i] : 0.0f;
}

static void sigmoid_grad_k(const float *y, const float *grad, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)((double)grad[i] * ((double)y[i] * (1.0 - (double)y[i])));
}

static void tanh_grad_k(const float *y, const float *grad, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)((double)grad[i] * (1.0 - (double)y[i] * (double)y[i]));
}

/* gelu'(x) = Phi(x) + x * phi(x), phi the standard normal density; x is clamped to
 * [-20, 20], beyond which the derivative is exactly 0 or 1 in float (and inf * 0 never arises). */
static void gelu_grad_k(const float *x, const float *grad, float *out, int64_t n)
{
    const double inv_sqrt_2pi = 0.39894228040143267794;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        if (v < -DG_VMATH_GELU_CLAMP)
            v = -DG_VMATH_GELU_CLAMP;
        else if (v > DG_VMATH_GELU_CLAMP)
            v = DG_VMATH_GELU_CLAMP;
        double d = normal_cdf(v) + v * inv_sqrt_2pi * exp(-0.5 * v * v);
        out[i] = (float)((double)grad[i] * d);
    }
}

static void softplus_grad_k(const float *x, const float *grad, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)((double)grad[i] * sigmoid_d(x[i]));
}

static void add_k(const float *a, const float *b, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

static void sub_k(const float *a, const float *b, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] - b[i];
}

static void mul_k(const float *a, const float *b, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] * b[i];
}

static void div_k(const float *a, const float *b, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] / b[i];
}

static void dropout_k(uint64_t base, int64_t start, uint32_t threshold, float scale,
                      const float *x, float *out, int64_t n)
{
    dg__dropout_scalar(base, start, threshold, scale, x, out, n);
}

const struct dg_vmath dg__vmath_generic_table = {
    .isa_name = "generic",
    .exp = exp_k, .log = log_k, .sqrt = sqrt_k, .tanh = tanh_k, .sigmoid = sigmoid_k,
    .gelu = gelu_k, .softplus = softplus_k, .relu = relu_k,
    .relu_grad = relu_grad_k, .sigmoid_grad = sigmoid_grad_k, .tanh_grad = tanh_grad_k,
    .gelu_grad = gelu_grad_k, .softplus_grad = softplus_grad_k,
    .add = add_k, .sub = sub_k, .mul = mul_k, .div = div_k, .dropout = dropout_k,
};
