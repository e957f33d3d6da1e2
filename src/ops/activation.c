/*
 * Activations and their fused backward kernels: relu, leaky_relu, sigmoid, tanh, gelu, softplus,
 * and the internal ops relu_grad, leaky_relu_grad, sigmoid_grad, tanh_grad, gelu_grad.
 *
 * Forward: elementwise over contiguous float32 arrays, through the SIMD table (vmath.h) where it
 * has the function, plain vectorisable loops otherwise (leaky_relu). Large arrays are split into
 * contiguous chunks by dg__parallel_chunks (boundaries on multiples of DG_CHUNK_ALIGN elements);
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
#include "scalar_attrs.h"
#include "simd/vmath.h"

#include <stdio.h>
#include <string.h>

/* 1 / sqrt(2 pi), for the normal density in gelu_grad's backward. */
#define INV_SQRT_2PI 0.398942280401432678f

/* The family's variants; an activation and its fused gradient op share one. */
enum activation { ACT_RELU, ACT_LEAKY_RELU, ACT_SIGMOID, ACT_TANH, ACT_GELU, ACT_SOFTPLUS };

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

/* One call of a kernel of the family, split by dg__parallel_chunks. */
struct activation_job {
    dg_vmath_unary_fn unary;   /* activations, except leaky_relu */
    dg_vmath_binary_fn fused;  /* fused gradients, except leaky_relu_grad */
    float slope;               /* leaky_relu, leaky_relu_grad */
    const float *a, *grad;     /* a: x or y; grad: the fused ops' second input */
    float *out;
};

static void activation_chunk(void *arg, int64_t lo, int64_t hi)
{
    const struct activation_job *job = arg;
    if (job->unary != NULL)
        job->unary(job->a + lo, job->out + lo, hi - lo);
    else
        leaky_relu_chunk(job->slope, job->a + lo, job->out + lo, hi - lo);
}

static void fused_grad_chunk(void *arg, int64_t lo, int64_t hi)
{
    const struct activation_job *job = arg;
    if (job->fused != NULL)
        job->fused(job->a + lo, job->grad + lo, job->out + lo, hi - lo);
    else
        leaky_relu_grad_chunk(job->slope, job->a + lo, job->grad + lo, job->out + lo, hi - lo);
}

/* The forward of every activation: out = f(x), f chosen by the def's variant. */
static void activation_kernel(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    const struct dg_vmath *vm = dg__vmath();
    struct activation_job job = {.a = in[0].data, .out = out->data};
    switch ((enum activation)def->variant) {
    case ACT_RELU: job.unary = vm->relu; break;
    case ACT_LEAKY_RELU: job.slope = scalar_attrs(attrs)->value; break;
    case ACT_SIGMOID: job.unary = vm->sigmoid; break;
    case ACT_TANH: job.unary = vm->tanh; break;
    case ACT_GELU: job.unary = vm->gelu; break;
    case ACT_SOFTPLUS: job.unary = vm->softplus; break;
    }
    dg__parallel_chunks(ctx, dg__numel(&out->shape), activation_chunk, &job);
}

/* The forward of every fused gradient op: out = f_grad(a, g). */
static void fused_grad_kernel(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    const struct dg_vmath *vm = dg__vmath();
    struct activation_job job = {.a = in[0].data, .grad = in[1].data, .out = out->data};
    switch ((enum activation)def->variant) {
    case ACT_RELU: job.fused = vm->relu_grad; break;
    case ACT_LEAKY_RELU: job.slope = scalar_attrs(attrs)->value; break;
    case ACT_SIGMOID: job.fused = vm->sigmoid_grad; break;
    case ACT_TANH: job.fused = vm->tanh_grad; break;
    case ACT_GELU: job.fused = vm->gelu_grad; break;
    case ACT_SOFTPLUS: break; /* softplus's backward is composed, no fused op */
    }
    dg__parallel_chunks(ctx, dg__numel(&out->shape), fused_grad_chunk, &job);
}

/* One float32 input, output of the same shape. */
static dg_status activation_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *in, struct dg_shape *out, char *msg,
                                  size_t len)
{
    const char *name = def->name;
    char buf[128];
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: input must be float32, got int32 %s",
                               name, dg__shape_str(&in[0], buf, sizeof buf));
    *out = in[0];
    return DG_OK;
}

/* Two float32 inputs of one shape (no broadcasting), output of that shape. */
static dg_status fused_grad_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *in, struct dg_shape *out, char *msg,
                                  size_t len)
{
    const char *name = def->name;
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
                           const void *attrs)
{
    return dg__make_node(g, op, 2, (dg_node *[]){a, grad}, attrs);
}

static void slope_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "slope=%g", (double)scalar_attrs(attrs)->value);
}

/* ---- relu: out = max(x, 0) (NaN stays NaN); dx = relu_grad(out, g) = g * [out > 0], so
 * relu'(0) = 0, as PyTorch. The mask is read from the output (out > 0 exactly where x > 0,
 * NaN included), so the input dies at relu: the planner runs relu in place over it and the
 * backward pass keeps one buffer alive instead of two. ------------------------------------- */

static dg_status relu_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_relu_grad, node, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_relu = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "relu", .n_inputs = 1, .can_inplace = true,
    .variant = ACT_RELU,
    .infer = activation_infer, .forward = activation_kernel, .backward = relu_backward,
};

dg_node *dg_relu(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_relu, 1, (dg_node *[]){x}, NULL);
}

/* ---- relu_grad(x, g) = g * [x > 0] (a select: g = inf at x <= 0 gives 0, not NaN).
 * Linear in g and piecewise constant in x: d/dg = relu_grad(x, gg), d/dx = 0. --------------- */

static dg_status relu_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *grad, dg_node **gin)
{
    gin[0] = NULL; /* piecewise constant in x */
    gin[1] = make_fused(g, DG_OP_relu_grad, dg__input(node, 0), grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_relu_grad = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "relu_grad", .n_inputs = 2, .can_inplace = true,
    .variant = ACT_RELU,
    .infer = fused_grad_infer, .forward = fused_grad_kernel, .backward = relu_grad_backward,
};

/* ---- leaky_relu: out = x for x > 0, slope * x otherwise (attr scalar.value = slope);
 * dx = leaky_relu_grad(x, g) = g for x > 0, slope * g otherwise: the derivative at 0 is the
 * slope, as PyTorch. -------------------------------------------------------------------------- */

static dg_status leaky_relu_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_leaky_relu_grad, dg__input(node, 0), grad, dg__attrs(node));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_leaky_relu = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "leaky_relu", .n_inputs = 1, .can_inplace = true,
    .variant = ACT_LEAKY_RELU,
    .infer = activation_infer, .forward = activation_kernel, .backward = leaky_relu_backward,
    .attrs_size = sizeof(struct dg_scalar_attrs), .label = slope_label,
};

dg_node *dg_leaky_relu(dg_graph *g, dg_node *x, float negative_slope)
{
    struct dg_scalar_attrs attrs = {.value = negative_slope};
    return dg__make_node(g, DG_OP_leaky_relu, 1, (dg_node *[]){x}, &attrs);
}

/* ---- leaky_relu_grad(x, g) = g for x > 0, slope * g otherwise (attr scalar.value = slope).
 * Linear in g, piecewise constant in x: d/dg = leaky_relu_grad(x, gg), d/dx = 0. ------------ */

static dg_status leaky_relu_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                          dg_node *grad, dg_node **gin)
{
    gin[0] = NULL; /* piecewise constant in x */
    gin[1] = make_fused(g, DG_OP_leaky_relu_grad, dg__input(node, 0), grad, dg__attrs(node));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_leaky_relu_grad = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "leaky_relu_grad", .n_inputs = 2, .can_inplace = true,
    .variant = ACT_LEAKY_RELU,
    .infer = fused_grad_infer, .forward = fused_grad_kernel,
    .backward = leaky_relu_grad_backward,
    .attrs_size = sizeof(struct dg_scalar_attrs), .label = slope_label,
};

/* ---- sigmoid: y = 1 / (1 + e^-x) (no overflow at either end); dx = sigmoid_grad(y, g). ---- */

static dg_status sigmoid_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                  dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_sigmoid_grad, node, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_sigmoid = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "sigmoid", .n_inputs = 1, .can_inplace = true,
    .variant = ACT_SIGMOID,
    .infer = activation_infer, .forward = activation_kernel, .backward = sigmoid_backward,
};

dg_node *dg_sigmoid(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_sigmoid, 1, (dg_node *[]){x}, NULL);
}

/* ---- sigmoid_grad(y, g) = g * y * (1 - y).
 * d/dg = y (1 - y) gg = sigmoid_grad(y, gg); d/dy = g (1 - 2y) gg. ----------------------------- */

static dg_status sigmoid_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                       dg_node *grad, dg_node **gin)
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
    .variant = ACT_SIGMOID,
    .infer = fused_grad_infer, .forward = fused_grad_kernel,
    .backward = sigmoid_grad_backward,
};

/* ---- tanh: y = tanh x; dx = tanh_grad(y, g). -------------------------------------------- */

static dg_status tanh_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_tanh_grad, node, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_tanh = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "tanh", .n_inputs = 1, .can_inplace = true,
    .variant = ACT_TANH,
    .infer = activation_infer, .forward = activation_kernel, .backward = tanh_backward,
};

dg_node *dg_tanh(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_tanh, 1, (dg_node *[]){x}, NULL);
}

/* ---- tanh_grad(y, g) = g * (1 - y^2).
 * d/dg = (1 - y^2) gg = tanh_grad(y, gg); d/dy = -2 y g gg. ---------------------------------- */

static dg_status tanh_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *grad, dg_node **gin)
{
    dg_node *y = dg__input(node, 0), *upstream = dg__input(node, 1);
    gin[0] = dg_mul(g, dg_mul(g, upstream, grad), dg_scale(g, y, -2.0f));
    gin[1] = make_fused(g, DG_OP_tanh_grad, y, grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_tanh_grad = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "tanh_grad", .n_inputs = 2, .can_inplace = true,
    .variant = ACT_TANH,
    .infer = fused_grad_infer, .forward = fused_grad_kernel, .backward = tanh_grad_backward,
};

/* ---- gelu: out = x Phi(x), Phi the standard normal CDF (the exact erf form, PyTorch's
 * default approximate='none'); gelu(-inf) = -0. dx = gelu_grad(x, g). --------------------- */

static dg_status gelu_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *grad, dg_node **gin)
{
    gin[0] = make_fused(g, DG_OP_gelu_grad, dg__input(node, 0), grad, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_gelu = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "gelu", .n_inputs = 1, .can_inplace = true,
    .variant = ACT_GELU,
    .infer = activation_infer, .forward = activation_kernel, .backward = gelu_backward,
};

dg_node *dg_gelu(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_gelu, 1, (dg_node *[]){x}, NULL);
}

/* ---- gelu_grad(x, g) = g * (Phi(x) + x phi(x)), phi(x) = e^(-x^2/2) / sqrt(2 pi).
 * d/dg = (Phi + x phi) gg = gelu_grad(x, gg); d/dx = g gg phi(x) (2 - x^2), since
 * (Phi + x phi)' = phi + phi + x (-x phi). Built from square, scale, exp, add_scalar, mul. ---- */

static dg_status gelu_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *grad, dg_node **gin)
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
    .variant = ACT_GELU,
    .infer = fused_grad_infer, .forward = fused_grad_kernel, .backward = gelu_grad_backward,
};

/* ---- softplus: out = log(1 + e^x), and x itself where x > 20 (PyTorch's default beta = 1,
 * threshold = 20: log1p(e^x) equals x in float there). dx = g * sigmoid(x), composed from
 * sigmoid and mul; above the threshold sigmoid(x) rounds to 1, so the gradient is g, as
 * PyTorch's. ----------------------------------------------------------------------------- */

static dg_status softplus_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                   dg_node *grad, dg_node **gin)
{
    gin[0] = dg_mul(g, grad, dg_sigmoid(g, dg__input(node, 0)));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_softplus = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "softplus", .n_inputs = 1, .can_inplace = true,
    .variant = ACT_SOFTPLUS,
    .infer = activation_infer, .forward = activation_kernel, .backward = softplus_backward,
};

dg_node *dg_softplus(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_softplus, 1, (dg_node *[]){x}, NULL);
}
