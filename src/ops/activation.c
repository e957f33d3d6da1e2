/*
 * Activations and their fused backward kernels: relu, leaky_relu, sigmoid, tanh, gelu, softplus,
 * and the internal ops relu_grad, leaky_relu_grad, sigmoid_grad, tanh_grad, gelu_grad.
 *
 * Forward: elementwise over contiguous float32 arrays, through the SIMD table (vmath.h) where it
 * has the function, plain vectorisable loops otherwise (leaky_relu). Large arrays are split into
 * contiguous chunks, one per thread, whose boundaries fall on multiples of CHUNK_ALIGN elements;
 * every element goes through the same lane code wherever it falls, so results are bitwise
 * identical for any thread count.
 *
 * Backward: each activation's rule is one fused node, f_grad(a, g) = g * f'(...), where a is the
 * activation's input x (relu, leaky_relu, gelu) or its output y (sigmoid, tanh: the derivative
 * is cheapest in y, and y is kept alive by the backward node reading it). The fused ops are
 * differentiable themselves (second derivatives, Hessian-vector products); their rules are built
 * from primitives and from the fused op again, as each op's comment says. softplus's backward
 * is composed: g * sigmoid(x).
 *
 * The *_grad ops take two inputs of equal shape (a, g), not broadcast; out may overwrite a.
 */
#include "op.h"
#include "simd/vmath.h"

#include <stdio.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Chunk boundaries between threads fall on multiples of this many floats (whole cache lines
 * and whole vectors for every ISA path). */
#define CHUNK_ALIGN 64

/* 1 / sqrt(2 pi), for the normal density in gelu_grad's backward. */
#define INV_SQRT_2PI 0.398942280401432678f

/* [lo, hi) of thread t out of nt for n elements: contiguous, CHUNK_ALIGN-aligned chunks. */
static inline void chunk_range(int64_t n, int t, int nt, int64_t *lo, int64_t *hi)
{
    int64_t per = (n + nt - 1) / nt;
    per = (per + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
    int64_t start = per * t;
    *lo = start < n ? start : n;
    *hi = start + per < n ? start + per : n;
}

/* out = fn(x) through a SIMD table function, chunked across threads. */
static void unary_vmath_forward(dg_vmath_unary_fn fn, const struct dg_tensor *in,
                                struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    const float *x = in[0].data;
    float *o = out->data;
    int64_t n = dg__numel(&out->shape);
    int threads = dg__threads_for(ctx, n);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int64_t lo, hi;
        chunk_range(n, t, nt, &lo, &hi);
        if (hi > lo)
            fn(x + lo, o + lo, hi - lo);
    }
}

/* out = fn(a, g) through a SIMD table backward kernel (a: x or y; g: the gradient). */
static void binary_vmath_forward(dg_vmath_binary_fn fn, const struct dg_tensor *in,
                                 struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    const float *a = in[0].data, *grad = in[1].data;
    float *o = out->data;
    int64_t n = dg__numel(&out->shape);
    int threads = dg__threads_for(ctx, n);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int64_t lo, hi;
        chunk_range(n, t, nt, &lo, &hi);
        if (hi > lo)
            fn(a + lo, grad + lo, o + lo, hi - lo);
    }
}

/* One float32 input, output of the same shape. */
static dg_status infer_unary(const char *name, const struct dg_shape *in, struct dg_shape *out,
                             char *msg, size_t len)
{
    char buf[128];
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: input must be float32, got int32 %s",
                               name, dg__shape_str(&in[0], buf, sizeof buf));
    *out = in[0];
    return DG_OK;
}

/* Two float32 inputs of one shape (no broadcasting), output of that shape. */
static dg_status infer_fused_grad(const char *name, const struct dg_shape *in,
                                  struct dg_shape *out, char *msg, size_t len)
{
    char sa[128], sb[128];
    if (in[0].dtype != DG_F32 || in[1].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: operands must be float32", name);
    bool same = in[0].ndim == in[1].ndim;
    for (int i = 0; same && i < in[0].ndim; i++)
        same = in[0].dim[i] == in[1].dim[i];
    if (!same)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: shapes %s and %s differ", name,
                               dg__shape_str(&in[0], sa, sizeof sa),
                               dg__shape_str(&in[1], sb, sizeof sb));
    *out = in[0];
    return DG_OK;
}

static dg_node *make_fused(dg_graph *g, dg_op_id op, dg_node *a, dg_node *grad,
                           const union dg_attrs *attrs)
{
    return dg__make_node(g, op, 2, (dg_node *[]){a, grad}, attrs);
}

static void slope_label(const union dg_attrs *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "slope=%g", (double)attrs->scalar.value);
}

/* ---- relu: out = max(x, 0) (NaN stays NaN); dx = relu_grad(out, g) = g * [out > 0], so
 * relu'(0) = 0, as PyTorch. The mask is read from the output (out > 0 exactly where x > 0,
 * NaN included), so the input dies at relu: the planner runs relu in place over it and the
 * backward pass keeps one buffer alive instead of two. ------------------------------------- */

static dg_status relu_infer(const union dg_attrs *attrs, int n_inputs, const struct dg_shape *in,
                            struct dg_shape *out, char *msg, size_t len)
{
    return infer_unary("relu", in, out, msg, len);
}

static void relu_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                         struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    unary_vmath_forward(dg__vmath()->relu, in, out, ctx);
}

static dg_status relu_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_relu_grad, node, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_relu = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "relu", .n_inputs = 1, .can_inplace = true,
    .infer = relu_infer, .forward = relu_forward, .backward = relu_backward,
};

dg_node *dg_relu(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_relu, 1, (dg_node *[]){x}, NULL);
}

/* ---- relu_grad(x, g) = g * [x > 0] (a select: g = inf at x <= 0 gives 0, not NaN).
 * Linear in g and piecewise constant in x: d/dg = relu_grad(x, gg), d/dx = 0. --------------- */

static dg_status relu_grad_infer(const union dg_attrs *attrs, int n_inputs,
                                 const struct dg_shape *in, struct dg_shape *out, char *msg,
                                 size_t len)
{
    return infer_fused_grad("relu_grad", in, out, msg, len);
}

static void relu_grad_forward(const union dg_attrs *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    binary_vmath_forward(dg__vmath()->relu_grad, in, out, ctx);
}

static dg_status relu_grad_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = NULL; /* piecewise constant in x */
    gin[1] = make_fused(g, DG_OP_relu_grad, dg__input(node, 0), grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_relu_grad = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "relu_grad", .n_inputs = 2, .can_inplace = true,
    .infer = relu_grad_infer, .forward = relu_grad_forward, .backward = relu_grad_backward,
};

/* ---- leaky_relu: out = x for x > 0, slope * x otherwise (attr scalar.value = slope);
 * dx = leaky_relu_grad(x, g) = g for x > 0, slope * g otherwise: the derivative at 0 is the
 * slope, as PyTorch. -------------------------------------------------------------------------- */

static void leaky_relu_chunk(float slope, const float *x, float *out, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

static void leaky_relu_grad_chunk(float slope, const float *x, const float *grad, float *out,
                                  int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] > 0.0f ? grad[i] : grad[i] * slope;
}

static dg_status leaky_relu_infer(const union dg_attrs *attrs, int n_inputs,
                                  const struct dg_shape *in, struct dg_shape *out, char *msg,
                                  size_t len)
{
    return infer_unary("leaky_relu", in, out, msg, len);
}

static void leaky_relu_forward(const union dg_attrs *attrs, int n_inputs,
                               const struct dg_tensor *in, struct dg_tensor *out,
                               const struct dg_exec_ctx *ctx)
{
    const float *x = in[0].data;
    float *o = out->data;
    float slope = attrs->scalar.value;
    int64_t n = dg__numel(&out->shape);
    int threads = dg__threads_for(ctx, n);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int64_t lo, hi;
        chunk_range(n, t, nt, &lo, &hi);
        leaky_relu_chunk(slope, x + lo, o + lo, hi - lo);
    }
}

static dg_status leaky_relu_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_leaky_relu_grad, dg__input(node, 0), grad, dg__attrs(node));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_leaky_relu = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "leaky_relu", .n_inputs = 1, .can_inplace = true,
    .infer = leaky_relu_infer, .forward = leaky_relu_forward, .backward = leaky_relu_backward,
    .label = slope_label,
};

dg_node *dg_leaky_relu(dg_graph *g, dg_node *x, float negative_slope)
{
    union dg_attrs attrs;
    memset(&attrs, 0, sizeof attrs); /* equal attributes compare equal byte for byte */
    attrs.scalar.value = negative_slope;
    return dg__make_node(g, DG_OP_leaky_relu, 1, (dg_node *[]){x}, &attrs);
}

/* ---- leaky_relu_grad(x, g) = g for x > 0, slope * g otherwise (attr scalar.value = slope).
 * Linear in g, piecewise constant in x: d/dg = leaky_relu_grad(x, gg), d/dx = 0. ------------ */

static dg_status leaky_relu_grad_infer(const union dg_attrs *attrs, int n_inputs,
                                       const struct dg_shape *in, struct dg_shape *out,
                                       char *msg, size_t len)
{
    return infer_fused_grad("leaky_relu_grad", in, out, msg, len);
}

static void leaky_relu_grad_forward(const union dg_attrs *attrs, int n_inputs,
                                    const struct dg_tensor *in, struct dg_tensor *out,
                                    const struct dg_exec_ctx *ctx)
{
    const float *x = in[0].data, *grad = in[1].data;
    float *o = out->data;
    float slope = attrs->scalar.value;
    int64_t n = dg__numel(&out->shape);
    int threads = dg__threads_for(ctx, n);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int64_t lo, hi;
        chunk_range(n, t, nt, &lo, &hi);
        leaky_relu_grad_chunk(slope, x + lo, grad + lo, o + lo, hi - lo);
    }
}

static dg_status leaky_relu_grad_backward(dg_graph *g, dg_node *node, dg_node *grad,
                                          dg_node **gin)
{
    gin[0] = NULL; /* piecewise constant in x */
    gin[1] = make_fused(g, DG_OP_leaky_relu_grad, dg__input(node, 0), grad, dg__attrs(node));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_leaky_relu_grad = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "leaky_relu_grad", .n_inputs = 2, .can_inplace = true,
    .infer = leaky_relu_grad_infer, .forward = leaky_relu_grad_forward,
    .backward = leaky_relu_grad_backward, .label = slope_label,
};

/* ---- sigmoid: y = 1 / (1 + e^-x) (no overflow at either end); dx = sigmoid_grad(y, g). ---- */

static dg_status sigmoid_infer(const union dg_attrs *attrs, int n_inputs,
                               const struct dg_shape *in, struct dg_shape *out, char *msg,
                               size_t len)
{
    return infer_unary("sigmoid", in, out, msg, len);
}

static void sigmoid_forward(const union dg_attrs *attrs, int n_inputs,
                            const struct dg_tensor *in, struct dg_tensor *out,
                            const struct dg_exec_ctx *ctx)
{
    unary_vmath_forward(dg__vmath()->sigmoid, in, out, ctx);
}

static dg_status sigmoid_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_sigmoid_grad, node, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_sigmoid = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "sigmoid", .n_inputs = 1, .can_inplace = true,
    .infer = sigmoid_infer, .forward = sigmoid_forward, .backward = sigmoid_backward,
};

dg_node *dg_sigmoid(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_sigmoid, 1, (dg_node *[]){x}, NULL);
}

/* ---- sigmoid_grad(y, g) = g * y * (1 - y).
 * d/dg = y (1 - y) gg = sigmoid_grad(y, gg); d/dy = g (1 - 2y) gg. ----------------------------- */

static dg_status sigmoid_grad_infer(const union dg_attrs *attrs, int n_inputs,
                                    const struct dg_shape *in, struct dg_shape *out, char *msg,
                                    size_t len)
{
    return infer_fused_grad("sigmoid_grad", in, out, msg, len);
}

static void sigmoid_grad_forward(const union dg_attrs *attrs, int n_inputs,
                                 const struct dg_tensor *in, struct dg_tensor *out,
                                 const struct dg_exec_ctx *ctx)
{
    binary_vmath_forward(dg__vmath()->sigmoid_grad, in, out, ctx);
}

static dg_status sigmoid_grad_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    dg_node *y = dg__input(node, 0), *upstream = dg__input(node, 1);
    dg_node *one_minus_2y = dg_add_scalar(g, dg_scale(g, y, -2.0f), 1.0f);
    gin[0] = dg_mul(g, dg_mul(g, upstream, grad), one_minus_2y);
    gin[1] = make_fused(g, DG_OP_sigmoid_grad, y, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_sigmoid_grad = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "sigmoid_grad", .n_inputs = 2, .can_inplace = true,
    .infer = sigmoid_grad_infer, .forward = sigmoid_grad_forward,
    .backward = sigmoid_grad_backward,
};

/* ---- tanh: y = tanh x; dx = tanh_grad(y, g). -------------------------------------------- */

static dg_status tanh_infer(const union dg_attrs *attrs, int n_inputs, const struct dg_shape *in,
                            struct dg_shape *out, char *msg, size_t len)
{
    return infer_unary("tanh", in, out, msg, len);
}

static void tanh_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                         struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    unary_vmath_forward(dg__vmath()->tanh, in, out, ctx);
}

static dg_status tanh_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_tanh_grad, node, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_tanh = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "tanh", .n_inputs = 1, .can_inplace = true,
    .infer = tanh_infer, .forward = tanh_forward, .backward = tanh_backward,
};

dg_node *dg_tanh(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_tanh, 1, (dg_node *[]){x}, NULL);
}

/* ---- tanh_grad(y, g) = g * (1 - y^2).
 * d/dg = (1 - y^2) gg = tanh_grad(y, gg); d/dy = -2 y g gg. ---------------------------------- */

static dg_status tanh_grad_infer(const union dg_attrs *attrs, int n_inputs,
                                 const struct dg_shape *in, struct dg_shape *out, char *msg,
                                 size_t len)
{
    return infer_fused_grad("tanh_grad", in, out, msg, len);
}

static void tanh_grad_forward(const union dg_attrs *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    binary_vmath_forward(dg__vmath()->tanh_grad, in, out, ctx);
}

static dg_status tanh_grad_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    dg_node *y = dg__input(node, 0), *upstream = dg__input(node, 1);
    gin[0] = dg_mul(g, dg_mul(g, upstream, grad), dg_scale(g, y, -2.0f));
    gin[1] = make_fused(g, DG_OP_tanh_grad, y, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_tanh_grad = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "tanh_grad", .n_inputs = 2, .can_inplace = true,
    .infer = tanh_grad_infer, .forward = tanh_grad_forward, .backward = tanh_grad_backward,
};

/* ---- gelu: out = x Phi(x), Phi the standard normal CDF (the exact erf form, PyTorch's
 * default approximate='none'); gelu(-inf) = -0. dx = gelu_grad(x, g). --------------------- */

static dg_status gelu_infer(const union dg_attrs *attrs, int n_inputs, const struct dg_shape *in,
                            struct dg_shape *out, char *msg, size_t len)
{
    return infer_unary("gelu", in, out, msg, len);
}

static void gelu_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                         struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    unary_vmath_forward(dg__vmath()->gelu, in, out, ctx);
}

static dg_status gelu_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_gelu_grad, dg__input(node, 0), grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_gelu = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "gelu", .n_inputs = 1, .can_inplace = true,
    .infer = gelu_infer, .forward = gelu_forward, .backward = gelu_backward,
};

dg_node *dg_gelu(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_gelu, 1, (dg_node *[]){x}, NULL);
}

/* ---- gelu_grad(x, g) = g * (Phi(x) + x phi(x)), phi(x) = e^(-x^2/2) / sqrt(2 pi).
 * d/dg = (Phi + x phi) gg = gelu_grad(x, gg); d/dx = g gg phi(x) (2 - x^2), since
 * (Phi + x phi)' = phi + phi + x (-x phi). Built from square, scale, exp, add_scalar, mul. ---- */

static dg_status gelu_grad_infer(const union dg_attrs *attrs, int n_inputs,
                                 const struct dg_shape *in, struct dg_shape *out, char *msg,
                                 size_t len)
{
    return infer_fused_grad("gelu_grad", in, out, msg, len);
}

static void gelu_grad_forward(const union dg_attrs *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    binary_vmath_forward(dg__vmath()->gelu_grad, in, out, ctx);
}

static dg_status gelu_grad_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    dg_node *x = dg__input(node, 0), *upstream = dg__input(node, 1);
    dg_node *x_sq = dg_square(g, x);
    dg_node *density = dg_scale(g, dg_exp(g, dg_scale(g, x_sq, -0.5f)), INV_SQRT_2PI);
    dg_node *factor = dg_mul(g, density, dg_add_scalar(g, dg_neg(g, x_sq), 2.0f));
    gin[0] = dg_mul(g, dg_mul(g, upstream, grad), factor);
    gin[1] = make_fused(g, DG_OP_gelu_grad, x, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_gelu_grad = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "gelu_grad", .n_inputs = 2, .can_inplace = true,
    .infer = gelu_grad_infer, .forward = gelu_grad_forward, .backward = gelu_grad_backward,
};

/* ---- softplus: out = log(1 + e^x), and x itself where x > 20 (PyTorch's default beta = 1,
 * threshold = 20: log1p(e^x) equals x in float there). dx = g * sigmoid(x), composed from
 * sigmoid and mul; above the threshold sigmoid(x) rounds to 1, so the gradient is g, as
 * PyTorch's. ----------------------------------------------------------------------------- */

static dg_status softplus_infer(const union dg_attrs *attrs, int n_inputs,
                                const struct dg_shape *in, struct dg_shape *out, char *msg,
                                size_t len)
{
    return infer_unary("softplus", in, out, msg, len);
}

static void softplus_forward(const union dg_attrs *attrs, int n_inputs,
                             const struct dg_tensor *in, struct dg_tensor *out,
                             const struct dg_exec_ctx *ctx)
{
    unary_vmath_forward(dg__vmath()->softplus, in, out, ctx);
}

static dg_status softplus_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = dg_mul(g, grad, dg_sigmoid(g, dg__input(node, 0)));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_softplus = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "softplus", .n_inputs = 1, .can_inplace = true,
    .infer = softplus_infer, .forward = softplus_forward, .backward = softplus_backward,
};

dg_node *dg_softplus(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_softplus, 1, (dg_node *[]){x}, NULL);
}
