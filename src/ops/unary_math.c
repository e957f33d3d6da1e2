/*
 * Elementwise unary math: neg, abs, sign, exp, log, sqrt, square, pow_scalar, scale, add_scalar.
 *
 * Forward: out[i] = f(x[i]) over a contiguous float32 array of any shape. exp, log and sqrt go
 * through the SIMD table (vmath.h); the others are plain loops the compiler vectorises. Large
 * arrays are split into contiguous chunks, one per thread, whose boundaries fall on multiples
 * of CHUNK_ALIGN elements; every element is computed by the same lane code wherever it falls,
 * so results are bitwise identical for any thread count.
 * Backward: the rules build nodes from public constructors (mul, div, scale, ...); none of
 * them needs a broadcast undone, since input and output shapes are equal.
 * All ops may run in place (out[i] is written after x[i] is read).
 */
#include "op.h"
#include "simd/vmath.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Chunk boundaries between threads fall on multiples of this many floats (whole cache lines
 * and whole vectors for every ISA path). */
#define CHUNK_ALIGN 64

enum unop { UN_NEG, UN_ABS, UN_SIGN, UN_SQUARE, UN_POW, UN_SCALE, UN_ADD_SCALAR };

/* [lo, hi) of thread t out of nt for n elements: contiguous, CHUNK_ALIGN-aligned chunks. */
static inline void chunk_range(int64_t n, int t, int nt, int64_t *lo, int64_t *hi)
{
    int64_t per = (n + nt - 1) / nt;
    per = (per + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
    int64_t start = per * t;
    *lo = start < n ? start : n;
    *hi = start + per < n ? start + per : n;
}

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
    }
}

static inline __attribute__((always_inline)) void plain_forward(enum unop op, float s,
                                                                const struct dg_tensor *in,
                                                                struct dg_tensor *out,
                                                                const struct dg_exec_ctx *ctx)
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
        plain_chunk(op, s, x + lo, o + lo, hi - lo);
    }
}

/* out = fn(x) through a SIMD table function, chunked across threads. */
static void vmath_forward(dg_vmath_unary_fn fn, const struct dg_tensor *in,
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

/* Shape rule shared by every op here: one float32 input, output of the same shape. */
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

static void scalar_label(const char *key, const union dg_attrs *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "%s=%g", key, (double)attrs->scalar.value);
}

/* A node with attribute scalar.value; the rest of the union zeroed, so that nodes with equal
 * attributes compare equal byte for byte. */
static dg_node *make_unary(dg_graph *g, dg_op_id op, dg_node *x, float value)
{
    union dg_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    attrs.scalar.value = value;
    return dg__make_node(g, op, 1, (dg_node *[]){x}, &attrs);
}

/* ---- neg: out = -x; dx = -g -------------------------------------------------------------- */

static dg_status neg_infer(const union dg_attrs *attrs, int n_inputs, const struct dg_shape *in,
                           struct dg_shape *out, char *msg, size_t len)
{
    return infer_unary("neg", in, out, msg, len);
}

static void neg_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                        struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    plain_forward(UN_NEG, 0.0f, in, out, ctx);
}

static dg_status neg_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = dg_neg(g, grad);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_neg = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "neg", .n_inputs = 1, .can_inplace = true,
    .infer = neg_infer, .forward = neg_forward, .backward = neg_backward,
};

dg_node *dg_neg(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_neg, 1, (dg_node *[]){x}, NULL);
}

/* ---- abs: out = |x|; dx = g * sign(x), so abs'(0) = 0 (as PyTorch) ----------------------- */

static dg_status abs_infer(const union dg_attrs *attrs, int n_inputs, const struct dg_shape *in,
                           struct dg_shape *out, char *msg, size_t len)
{
    return infer_unary("abs", in, out, msg, len);
}

static void abs_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                        struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    plain_forward(UN_ABS, 0.0f, in, out, ctx);
}

static dg_status abs_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    dg_node *sign = dg__make_node(g, DG_OP_sign, 1, (dg_node *[]){dg__input(node, 0)}, NULL);
    gin[0] = dg_mul(g, grad, sign);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_abs = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "abs", .n_inputs = 1, .can_inplace = true,
    .infer = abs_infer, .forward = abs_forward, .backward = abs_backward,
};

dg_node *dg_abs(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_abs, 1, (dg_node *[]){x}, NULL);
}

/* ---- sign (internal, for abs's backward): 1 for x > 0, -1 for x < 0, 0 at +-0, NaN for NaN.
 * Piecewise constant: its gradient is zero wherever it exists, so the backward rule gives no
 * gradient (gin[0] = NULL) rather than refusing, and abs stays twice differentiable. -------- */

static dg_status sign_infer(const union dg_attrs *attrs, int n_inputs, const struct dg_shape *in,
                            struct dg_shape *out, char *msg, size_t len)
{
    return infer_unary("sign", in, out, msg, len);
}

static void sign_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                         struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    plain_forward(UN_SIGN, 0.0f, in, out, ctx);
}

static dg_status sign_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = NULL; /* zero gradient */
    return DG_OK;
}

const struct dg_op_def dg_op_sign = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "sign", .n_inputs = 1, .can_inplace = true,
    .infer = sign_infer, .forward = sign_forward, .backward = sign_backward,
};

/* ---- exp: out = e^x; dx = g * out ------------------------------------------------------- */

static dg_status exp_infer(const union dg_attrs *attrs, int n_inputs, const struct dg_shape *in,
                           struct dg_shape *out, char *msg, size_t len)
{
    return infer_unary("exp", in, out, msg, len);
}

static void exp_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                        struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    vmath_forward(dg__vmath()->exp, in, out, ctx);
}

static dg_status exp_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = dg_mul(g, grad, node);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_exp = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "exp", .n_inputs = 1, .can_inplace = true,
    .infer = exp_infer, .forward = exp_forward, .backward = exp_backward,
};

dg_node *dg_exp(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_exp, 1, (dg_node *[]){x}, NULL);
}

/* ---- log: out = ln x (log 0 = -inf, log of x < 0 = NaN); dx = g / x (inf at x = 0) ------ */

static dg_status log_infer(const union dg_attrs *attrs, int n_inputs, const struct dg_shape *in,
                           struct dg_shape *out, char *msg, size_t len)
{
    return infer_unary("log", in, out, msg, len);
}

static void log_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                        struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    vmath_forward(dg__vmath()->log, in, out, ctx);
}

static dg_status log_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = dg_div(g, grad, dg__input(node, 0));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_log = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "log", .n_inputs = 1, .can_inplace = true,
    .infer = log_infer, .forward = log_forward, .backward = log_backward,
};

dg_node *dg_log(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_log, 1, (dg_node *[]){x}, NULL);
}

/* ---- sqrt: out = sqrt x (NaN for x < 0); dx = g / (2 out), so sqrt'(0) = inf (as PyTorch) -- */

static dg_status sqrt_infer(const union dg_attrs *attrs, int n_inputs, const struct dg_shape *in,
                            struct dg_shape *out, char *msg, size_t len)
{
    return infer_unary("sqrt", in, out, msg, len);
}

static void sqrt_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                         struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    vmath_forward(dg__vmath()->sqrt, in, out, ctx);
}

static dg_status sqrt_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = dg_div(g, grad, dg_scale(g, node, 2.0f));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_sqrt = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "sqrt", .n_inputs = 1, .can_inplace = true,
    .infer = sqrt_infer, .forward = sqrt_forward, .backward = sqrt_backward,
};

dg_node *dg_sqrt(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_sqrt, 1, (dg_node *[]){x}, NULL);
}

/* ---- square: out = x^2; dx = g * 2x ------------------------------------------------------ */

static dg_status square_infer(const union dg_attrs *attrs, int n_inputs,
                              const struct dg_shape *in, struct dg_shape *out, char *msg,
                              size_t len)
{
    return infer_unary("square", in, out, msg, len);
}

static void square_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                           struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    plain_forward(UN_SQUARE, 0.0f, in, out, ctx);
}

static dg_status square_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = dg_mul(g, grad, dg_scale(g, dg__input(node, 0), 2.0f));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_square = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "square", .n_inputs = 1, .can_inplace = true,
    .infer = square_infer, .forward = square_forward, .backward = square_backward,
};

dg_node *dg_square(dg_graph *g, dg_node *x)
{
    return dg__make_node(g, DG_OP_square, 1, (dg_node *[]){x}, NULL);
}

/* ---- pow_scalar: out = x^p (attr scalar.value = p), with torch.pow's special values:
 * x < 0 and non-integer p gives NaN, 0^p = inf for p < 0, x^0 = 1.
 * dx = g * p * x^(p-1); for p == 0 no gradient (zero, as PyTorch, even at x = 0). At x = 0
 * with p < 1 the rule gives +-inf (or NaN where g = 0), as PyTorch. ------------------------ */

static dg_status pow_scalar_infer(const union dg_attrs *attrs, int n_inputs,
                                  const struct dg_shape *in, struct dg_shape *out, char *msg,
                                  size_t len)
{
    return infer_unary("pow_scalar", in, out, msg, len);
}

static void pow_scalar_forward(const union dg_attrs *attrs, int n_inputs,
                               const struct dg_tensor *in, struct dg_tensor *out,
                               const struct dg_exec_ctx *ctx)
{
    plain_forward(UN_POW, attrs->scalar.value, in, out, ctx);
}

static dg_status pow_scalar_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    float p = dg__attrs(node)->scalar.value;
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

static void pow_scalar_label(const union dg_attrs *attrs, char *buf, size_t len)
{
    scalar_label("p", attrs, buf, len);
}

const struct dg_op_def dg_op_pow_scalar = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "pow_scalar", .n_inputs = 1, .can_inplace = true,
    .infer = pow_scalar_infer, .forward = pow_scalar_forward, .backward = pow_scalar_backward,
    .label = pow_scalar_label,
};

dg_node *dg_pow_scalar(dg_graph *g, dg_node *x, float exponent)
{
    return make_unary(g, DG_OP_pow_scalar, x, exponent);
}

/* ---- scale: out = x * s (attr scalar.value = s); dx = g * s ----------------------------- */

static dg_status scale_infer(const union dg_attrs *attrs, int n_inputs,
                             const struct dg_shape *in, struct dg_shape *out, char *msg,
                             size_t len)
{
    return infer_unary("scale", in, out, msg, len);
}

static void scale_forward(const union dg_attrs *attrs, int n_inputs, const struct dg_tensor *in,
                          struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    plain_forward(UN_SCALE, attrs->scalar.value, in, out, ctx);
}

static dg_status scale_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = dg_scale(g, grad, dg__attrs(node)->scalar.value);
    return dg_graph_status(g);
}

static void scale_label(const union dg_attrs *attrs, char *buf, size_t len)
{
    scalar_label("s", attrs, buf, len);
}

const struct dg_op_def dg_op_scale = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "scale", .n_inputs = 1, .can_inplace = true,
    .infer = scale_infer, .forward = scale_forward, .backward = scale_backward,
    .label = scale_label,
};

dg_node *dg_scale(dg_graph *g, dg_node *x, float s)
{
    return make_unary(g, DG_OP_scale, x, s);
}

/* ---- add_scalar: out = x + s (attr scalar.value = s); dx = g ---------------------------- */

static dg_status add_scalar_infer(const union dg_attrs *attrs, int n_inputs,
                                  const struct dg_shape *in, struct dg_shape *out, char *msg,
                                  size_t len)
{
    return infer_unary("add_scalar", in, out, msg, len);
}

static void add_scalar_forward(const union dg_attrs *attrs, int n_inputs,
                               const struct dg_tensor *in, struct dg_tensor *out,
                               const struct dg_exec_ctx *ctx)
{
    plain_forward(UN_ADD_SCALAR, attrs->scalar.value, in, out, ctx);
}

static dg_status add_scalar_backward(dg_graph *g, dg_node *node, dg_node *grad, dg_node **gin)
{
    gin[0] = grad;
    return DG_OK;
}

static void add_scalar_label(const union dg_attrs *attrs, char *buf, size_t len)
{
    scalar_label("s", attrs, buf, len);
}

const struct dg_op_def dg_op_add_scalar = {
    .dynamic_axes = dg__dynamic_elementwise,
    .name = "add_scalar", .n_inputs = 1, .can_inplace = true,
    .infer = add_scalar_infer, .forward = add_scalar_forward, .backward = add_scalar_backward,
    .label = add_scalar_label,
};

dg_node *dg_add_scalar(dg_graph *g, dg_node *x, float s)
{
    return make_unary(g, DG_OP_add_scalar, x, s);
}
