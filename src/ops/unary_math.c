/*
 * Elementwise unary math: neg, abs, sign, exp, log, sqrt, square, pow_scalar, scale, add_scalar.
 *
 * Forward: out[i] = f(x[i]) over a contiguous float32 array of any shape. exp, log and sqrt go
 * through the SIMD table (vmath.h); the others are plain loops the compiler vectorises. Large
 * arrays are split by dg__parallel_chunks (one split rule, chunk boundaries on multiples of
 * DG_CHUNK_ALIGN), so results are bitwise identical for any thread count. One shape rule and
 * one kernel serve the whole family; the def's variant picks the function.
 * Backward: the rules build nodes from public constructors (mul, div, scale, ...); none of
 * them needs a broadcast undone, since input and output shapes are equal.
 * All ops may run in place (out[i] is written after x[i] is read).
 */
#include "op.h"
#include "scalar_attrs.h"
#include "simd/vmath.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The family's variants: plain loops first, then the SIMD table's functions. */
enum unop { UN_NEG, UN_ABS, UN_SIGN, UN_SQUARE, UN_POW, UN_SCALE, UN_ADD_SCALAR,
            UN_EXP, UN_LOG, UN_SQRT };

/* out[i] = op(x[i]) for n elements on the calling thread; s is the op's scalar attribute. */
static inline __attribute__((always_inline)) void plain_chunk(enum unop op, float s,
                                                              const float *x, float *out,
                                                              int64_t n)
{
    switch (op) {
    case UN_NEG:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            out[i] = -x[i];
        break;
    case UN_ABS:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            out[i] = fabsf(x[i]);
        break;
    case UN_SIGN:
        /* NaN stays NaN (x > 0 and x < 0 are both false: x - x is NaN); +-0 give 0. */
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            out[i] = v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : v - v;
        }
        break;
    case UN_SQUARE:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            out[i] = x[i] * x[i];
        break;
    case UN_POW:
        /* C99 powf has torch.pow's special cases: NaN for x < 0 with a non-integer exponent,
         * inf for 0^p with p < 0, 1 for x^0 (even 0^0 and NaN^0). p == 2 is x*x (exact). */
        if (s == 2.0f) {
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                out[i] = x[i] * x[i];
        } else {
            for (int64_t i = 0; i < n; i++)
                out[i] = powf(x[i], s);
        }
        break;
    case UN_SCALE:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            out[i] = x[i] * s;
        break;
    case UN_ADD_SCALAR:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            out[i] = x[i] + s;
        break;
    case UN_EXP: case UN_LOG: case UN_SQRT:
        break; /* SIMD table functions (unary_chunk) */
    }
}

/* One call of the family's kernel, split by dg__parallel_chunks. */
struct unary_job {
    enum unop op;
    float s;
    dg_vmath_unary_fn fn; /* UN_EXP, UN_LOG, UN_SQRT */
    const float *x;
    float *out;
};

static void unary_chunk(void *arg, int64_t lo, int64_t hi)
{
    const struct unary_job *job = arg;
    if (job->fn != NULL)
        job->fn(job->x + lo, job->out + lo, hi - lo);
    else
        plain_chunk(job->op, job->s, job->x + lo, job->out + lo, hi - lo);
}

/* The forward of every op here: out = f(x), f chosen by the def's variant. */
static void unary_kernel(const struct dg_op_def *def, const void *attrs, int n_inputs,
                         const struct dg_tensor *in, struct dg_tensor *out,
                         const struct dg_exec_ctx *ctx)
{
    const struct dg_vmath *vm = dg__vmath();
    struct unary_job job = {.op = (enum unop)def->variant, .x = in[0].data, .out = out->data};
    if (attrs != NULL)
        job.s = scalar_attrs(attrs)->value;
    job.fn = job.op == UN_EXP ? vm->exp : job.op == UN_LOG ? vm->log
           : job.op == UN_SQRT ? vm->sqrt : NULL;
    dg__parallel_chunks(ctx, dg__numel(&out->shape), unary_chunk, &job);
}

/* Shape rule shared by every op here: one float32 input, output of the same shape. */
static dg_status unary_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
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

/* "p=2" for pow_scalar, "s=0.5" for scale and add_scalar. */
static void scalar_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "%s=%g", def->variant == UN_POW ? "p" : "s",
             (double)scalar_attrs(attrs)->value);
}

/* A node with one float attribute. */
static dg_node *make_unary(dg_graph *g, dg_op_id op, dg_node *x, float value)
{
    struct dg_scalar_attrs attrs = {.value = value};
    return dg__make_node(g, op, 1, (dg_node *[]){x}, &attrs);
}

/* ---- neg: out = -x; dx = -g -------------------------------------------------------------- */

static dg_status neg_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    gin[0] = dg_neg(g, grad);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_neg = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "neg", .n_inputs = 1, .can_inplace = true,
    .variant = UN_NEG,
    .infer = unary_infer, .forward = unary_kernel, .backward = neg_backward,
};

dg_node *dg_neg(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_neg, 1, (dg_node *[]){x}, NULL);
}

/* ---- abs: out = |x|; dx = g * sign(x), so abs'(0) = 0 (as PyTorch) ----------------------- */

static dg_status abs_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    dg_node *sign = dg__make_node(g, DG_OP_sign, 1, (dg_node *[]){dg__input(node, 0)}, NULL);
    gin[0] = dg_mul(g, grad, sign);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_abs = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "abs", .n_inputs = 1, .can_inplace = true,
    .variant = UN_ABS,
    .infer = unary_infer, .forward = unary_kernel, .backward = abs_backward,
};

dg_node *dg_abs(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_abs, 1, (dg_node *[]){x}, NULL);
}

/* ---- sign (internal, for abs's backward): 1 for x > 0, -1 for x < 0, 0 at +-0, NaN for NaN.
 * Piecewise constant: its gradient is zero wherever it exists, so its rule is the explicit
 * zero rule (dg__zero_grad) rather than none, and abs stays twice differentiable. -------- */

const struct dg_op_def dg_op_sign = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "sign", .n_inputs = 1, .can_inplace = true,
    .variant = UN_SIGN,
    .infer = unary_infer, .forward = unary_kernel, .backward = dg__zero_grad,
};

/* ---- exp: out = e^x; dx = g * out ------------------------------------------------------- */

static dg_status exp_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    gin[0] = dg_mul(g, grad, node);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_exp = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "exp", .n_inputs = 1, .can_inplace = true,
    .variant = UN_EXP,
    .infer = unary_infer, .forward = unary_kernel, .backward = exp_backward,
};

dg_node *dg_exp(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_exp, 1, (dg_node *[]){x}, NULL);
}

/* ---- log: out = ln x (log 0 = -inf, log of x < 0 = NaN); dx = g / x (inf at x = 0) ------ */

static dg_status log_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    gin[0] = dg_div(g, grad, dg__input(node, 0));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_log = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "log", .n_inputs = 1, .can_inplace = true,
    .variant = UN_LOG,
    .infer = unary_infer, .forward = unary_kernel, .backward = log_backward,
};

dg_node *dg_log(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_log, 1, (dg_node *[]){x}, NULL);
}

/* ---- sqrt: out = sqrt x (NaN for x < 0); dx = g / (2 out), so sqrt'(0) = inf (as PyTorch) -- */

static dg_status sqrt_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *grad, dg_node **gin)
{
    gin[0] = dg_div(g, grad, dg_scale(g, node, 2.0f));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_sqrt = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "sqrt", .n_inputs = 1, .can_inplace = true,
    .variant = UN_SQRT,
    .infer = unary_infer, .forward = unary_kernel, .backward = sqrt_backward,
};

dg_node *dg_sqrt(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_sqrt, 1, (dg_node *[]){x}, NULL);
}

/* ---- square: out = x^2; dx = g * 2x ------------------------------------------------------ */

static dg_status square_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                 dg_node *grad, dg_node **gin)
{
    gin[0] = dg_mul(g, grad, dg_scale(g, dg__input(node, 0), 2.0f));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_square = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "square", .n_inputs = 1, .can_inplace = true,
    .variant = UN_SQUARE,
    .infer = unary_infer, .forward = unary_kernel, .backward = square_backward,
};

dg_node *dg_square(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_square, 1, (dg_node *[]){x}, NULL);
}

/* ---- pow_scalar: out = x^p (attr scalar.value = p), with torch.pow's special values:
 * x < 0 and non-integer p gives NaN, 0^p = inf for p < 0, x^0 = 1.
 * dx = g * p * x^(p-1); for p == 0 no gradient (zero, as PyTorch, even at x = 0). At x = 0
 * with p < 1 the rule gives +-inf (or NaN where g = 0), as PyTorch. ------------------------ */

static dg_status pow_scalar_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *grad, dg_node **gin)
{
    float p = scalar_attrs(dg__attrs(node))->value;
    if (p == 0.0f) {
        gin[0] = NULL; /* x^0 is constant */
        return DG_OK;
    }
    if (p == 1.0f) {
        gin[0] = grad;
        return DG_OK;
    }
    dg_node *x = dg__input(node, 0);
    gin[0] = dg_mul(g, grad, dg_scale(g, dg_pow_scalar(g, x, p - 1.0f), p));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_pow_scalar = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "pow_scalar", .n_inputs = 1, .can_inplace = true,
    .variant = UN_POW,
    .infer = unary_infer, .forward = unary_kernel, .backward = pow_scalar_backward,
    .attrs_size = sizeof(struct dg_scalar_attrs), .label = scalar_label,
};

dg_node *dg_pow_scalar(dg_graph *g, dg_node *x, float exponent)
{
    return make_unary(g, DG_OP_pow_scalar, x, exponent);
}

/* ---- scale: out = x * s (attr scalar.value = s); dx = g * s ----------------------------- */

static dg_status scale_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                dg_node *grad, dg_node **gin)
{
    gin[0] = dg_scale(g, grad, scalar_attrs(dg__attrs(node))->value);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_scale = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "scale", .n_inputs = 1, .can_inplace = true,
    .variant = UN_SCALE,
    .infer = unary_infer, .forward = unary_kernel, .backward = scale_backward,
    .attrs_size = sizeof(struct dg_scalar_attrs), .label = scalar_label,
};

dg_node *dg_scale(dg_graph *g, dg_node *x, float s)
{
    return make_unary(g, DG_OP_scale, x, s);
}

/* ---- add_scalar: out = x + s (attr scalar.value = s); dx = g ---------------------------- */

static dg_status add_scalar_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *grad, dg_node **gin)
{
    gin[0] = grad;
    return DG_OK;
}

const struct dg_op_def dg_op_add_scalar = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "add_scalar", .n_inputs = 1, .can_inplace = true,
    .variant = UN_ADD_SCALAR,
    .infer = unary_infer, .forward = unary_kernel, .backward = add_scalar_backward,
    .attrs_size = sizeof(struct dg_scalar_attrs), .label = scalar_label,
};

dg_node *dg_add_scalar(dg_graph *g, dg_node *x, float s)
{
    return make_unary(g, DG_OP_add_scalar, x, s);
}
