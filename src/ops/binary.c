/*
 * Elementwise binary ops with numpy broadcasting: add, sub, mul, div, maximum, minimum.
 *
 * Forward: out[i] = a[i] op b[i] over the broadcast shape. Rows of equal-length contiguous
 * operands go through the SIMD table (vmath.h); broadcast rows (a row vector, a column, a
 * scalar) take stride-0 loops the compiler vectorises.
 * Backward: each input's gradient is summed back over the axes it was broadcast along
 * (dg__unbroadcast).
 */
#include "elementwise.h"
#include "simd/vmath.h"

#include <omp.h>

enum binop { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_MAX, BIN_MIN };

static dg_status infer_binary(const char *name, int n_inputs, const struct dg_shape *in,
                              struct dg_shape *out, char *msg, size_t len)
{
    char sa[128], sb[128];
    if (in[0].dtype != DG_F32 || in[1].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: operands must be float32", name);
    if (!dg__broadcast_shapes(&in[0], &in[1], out))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: shapes %s and %s do not broadcast",
                               name, dg__shape_str(&in[0], sa, sizeof sa),
                               dg__shape_str(&in[1], sb, sizeof sb));
    return DG_OK;
}

static inline __attribute__((always_inline)) float apply(enum binop op, float a, float b)
{
    switch (op) {
    case BIN_ADD: return a + b;
    case BIN_SUB: return a - b;
    case BIN_MUL: return a * b;
    case BIN_DIV: return a / b;
    /* NaN propagates, as in PyTorch's maximum/minimum. */
    case BIN_MAX: return (a != a || a > b) ? a : b;
    case BIN_MIN: return (a != a || a < b) ? a : b;
    }
    return 0.0f;
}

/* One row: out[j] = a[j*sa] op b[j*sb] with strides 0 or 1. */
static inline __attribute__((always_inline)) void row_kernel(enum binop op, const float *a,
                                                             int64_t sa, const float *b,
                                                             int64_t sb, float *out, int64_t n)
{
    if (sa == 1 && sb == 1 && op <= BIN_DIV) {
        const struct dg_vmath *vm = dg__vmath();
        dg_vmath_binary_fn fn = op == BIN_ADD ? vm->add : op == BIN_SUB ? vm->sub
                              : op == BIN_MUL ? vm->mul : vm->div;
        fn(a, b, out, n);
    } else if (sa == 1 && sb == 1) {
        for (int64_t j = 0; j < n; j++)
            out[j] = apply(op, a[j], b[j]);
    } else if (sa == 1) {
        float bv = b[0];
        for (int64_t j = 0; j < n; j++)
            out[j] = apply(op, a[j], bv);
    } else if (sb == 1) {
        float av = a[0];
        for (int64_t j = 0; j < n; j++)
            out[j] = apply(op, av, b[j]);
    } else {
        float v = apply(op, a[0], b[0]);
        for (int64_t j = 0; j < n; j++)
            out[j] = v;
    }
}

/* row_kernel with op known at run time: one switch per row, each case specialised. */
static void row_dispatch(enum binop op, const float *a, int64_t sa, const float *b, int64_t sb,
                         float *out, int64_t n)
{
    switch (op) {
    case BIN_ADD: row_kernel(BIN_ADD, a, sa, b, sb, out, n); break;
    case BIN_SUB: row_kernel(BIN_SUB, a, sa, b, sb, out, n); break;
    case BIN_MUL: row_kernel(BIN_MUL, a, sa, b, sb, out, n); break;
    case BIN_DIV: row_kernel(BIN_DIV, a, sa, b, sb, out, n); break;
    case BIN_MAX: row_kernel(BIN_MAX, a, sa, b, sb, out, n); break;
    case BIN_MIN: row_kernel(BIN_MIN, a, sa, b, sb, out, n); break;
    }
}

/* One long row, split by dg__parallel_chunks. */
struct flat_row {
    enum binop op;
    const float *a, *b;
    int64_t sa, sb;
    float *out;
};

static void flat_chunk(void *arg, int64_t lo, int64_t hi)
{
    const struct flat_row *r = arg;
    row_dispatch(r->op, r->a + lo * r->sa, r->sa, r->b + lo * r->sb, r->sb, r->out + lo, hi - lo);
}

static void binary_forward(enum binop op, const struct dg_tensor *in, struct dg_tensor *out,
                           const struct dg_exec_ctx *ctx)
{
    const struct dg_shape *shapes[2] = {&in[0].shape, &in[1].shape};
    struct dg_bcast it;
    dg__bcast_init(&it, &out->shape, 2, shapes);
    const float *a = in[0].data, *b = in[1].data;
    float *o = out->data;
    if (it.rows == 1) {
        struct flat_row row = {op, a, b, it.stride[0][0], it.stride[1][0], o};
        dg__parallel_chunks(ctx, it.row_len, flat_chunk, &row);
        return;
    }
    int threads = dg__threads_for(ctx, it.rows * it.row_len);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < it.rows; r++) {
        int64_t off[2];
        dg__bcast_row(&it, r, off);
        row_dispatch(op, a + off[0], it.stride[0][it.ndim - 1], b + off[1],
                     it.stride[1][it.ndim - 1], o + r * it.row_len, it.row_len);
    }
}

/* ---- backward rules -------------------------------------------------------------------- */

/* d(a+b) = g, g */
static dg_status add_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    gin[0] = dg__unbroadcast_operand(g, grad, node, 0);
    gin[1] = dg__unbroadcast_operand(g, grad, node, 1);
    return dg_graph_status(g);
}

/* d(a-b) = g, -g */
static dg_status sub_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    gin[0] = dg__unbroadcast_operand(g, grad, node, 0);
    gin[1] = dg__unbroadcast_operand(g, dg_neg(g, grad), node, 1);
    return dg_graph_status(g);
}

/* d(a*b) = g*b, g*a */
static dg_status mul_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    dg_node *a = dg__input(node, 0), *b = dg__input(node, 1);
    if (dg__grad_needed(ctx, 0))
        gin[0] = dg__unbroadcast_operand(g, dg_mul(g, grad, b), node, 0);
    if (dg__grad_needed(ctx, 1))
        gin[1] = dg__unbroadcast_operand(g, dg_mul(g, grad, a), node, 1);
    return dg_graph_status(g);
}

/* d(a/b) = g/b, -g*a/b^2 = -(g/b)*out */
static dg_status div_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    dg_node *grad_over_b = dg_div(g, grad, dg__input(node, 1));
    if (dg__grad_needed(ctx, 0))
        gin[0] = dg__unbroadcast_operand(g, grad_over_b, node, 0);
    if (dg__grad_needed(ctx, 1))
        gin[1] = dg__unbroadcast_operand(g, dg_neg(g, dg_mul(g, grad_over_b, node)), node, 1);
    return dg_graph_status(g);
}

/* The gradient goes to the larger (smaller) operand; at ties it is split in halves, as in
 * PyTorch. weight = [a wins] + 0.5*[a == b]; da = g*weight, db = g*(1-weight) = g - da. */
static dg_status extremum_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                   dg_node *grad, dg_node **gin)
{
    bool is_max = ctx->def->variant == BIN_MAX;
    dg_node *a = dg__input(node, 0), *b = dg__input(node, 1);
    dg_node *wins = is_max ? dg__make_node(g, DG_OP_greater, 2, (dg_node *[]){a, b}, NULL)
                           : dg__make_node(g, DG_OP_greater, 2, (dg_node *[]){b, a}, NULL);
    dg_node *ties = dg__make_node(g, DG_OP_equal, 2, (dg_node *[]){a, b}, NULL);
    dg_node *weight = dg_add(g, wins, dg_scale(g, ties, 0.5f));
    dg_node *grad_a = dg_mul(g, grad, weight);
    gin[0] = dg__unbroadcast_operand(g, grad_a, node, 0);
    gin[1] = dg__unbroadcast_operand(g, dg_sub(g, grad, grad_a), node, 1);
    return dg_graph_status(g);
}

/* ---- one entry per op: one shape rule and one kernel, the def's variant picks the maths -- */

static dg_status binary_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_shape *in, struct dg_shape *out, char *msg,
                              size_t len)
{
    return infer_binary(def->name, n_inputs, in, out, msg, len);
}

static void binary_kernel(const struct dg_op_def *def, const void *attrs, int n_inputs,
                          const struct dg_tensor *in, struct dg_tensor *out,
                          const struct dg_exec_ctx *ctx)
{
    binary_forward((enum binop)def->variant, in, out, ctx);
}

const struct dg_op_def dg_op_add = {
    .name = "add", .variant = BIN_ADD, .backward = add_backward,
    .n_inputs = 2, .can_inplace = true, .infer = binary_infer, .forward = binary_kernel,
    .dynamic_axes = dg__dynamic_elementwise,
};
const struct dg_op_def dg_op_sub = {
    .name = "sub", .variant = BIN_SUB, .backward = sub_backward,
    .n_inputs = 2, .can_inplace = true, .infer = binary_infer, .forward = binary_kernel,
    .dynamic_axes = dg__dynamic_elementwise,
};
const struct dg_op_def dg_op_mul = {
    .name = "mul", .variant = BIN_MUL, .backward = mul_backward,
    .n_inputs = 2, .can_inplace = true, .infer = binary_infer, .forward = binary_kernel,
    .dynamic_axes = dg__dynamic_elementwise,
};
const struct dg_op_def dg_op_div = {
    .name = "div", .variant = BIN_DIV, .backward = div_backward,
    .n_inputs = 2, .can_inplace = true, .infer = binary_infer, .forward = binary_kernel,
    .dynamic_axes = dg__dynamic_elementwise,
};
const struct dg_op_def dg_op_maximum = {
    .name = "maximum", .variant = BIN_MAX, .backward = extremum_backward,
    .n_inputs = 2, .can_inplace = true, .infer = binary_infer, .forward = binary_kernel,
    .dynamic_axes = dg__dynamic_elementwise,
};
const struct dg_op_def dg_op_minimum = {
    .name = "minimum", .variant = BIN_MIN, .backward = extremum_backward,
    .n_inputs = 2, .can_inplace = true, .infer = binary_infer, .forward = binary_kernel,
    .dynamic_axes = dg__dynamic_elementwise,
};

static dg_node *binary(dg_graph *g, dg_op_id op, dg_node *a, dg_node *b)
{
    return dg__make_node(g, op, 2, (dg_node *[]){a, b}, NULL);
}

dg_node *dg_add(dg_graph *g, dg_node *a, dg_node *b) { return binary(g, DG_OP_add, a, b); }
dg_node *dg_sub(dg_graph *g, dg_node *a, dg_node *b) { return binary(g, DG_OP_sub, a, b); }
dg_node *dg_mul(dg_graph *g, dg_node *a, dg_node *b) { return binary(g, DG_OP_mul, a, b); }
dg_node *dg_div(dg_graph *g, dg_node *a, dg_node *b) { return binary(g, DG_OP_div, a, b); }
dg_node *dg_maximum(dg_graph *g, dg_node *a, dg_node *b) { return binary(g, DG_OP_maximum, a, b); }
dg_node *dg_minimum(dg_graph *g, dg_node *a, dg_node *b) { return binary(g, DG_OP_minimum, a, b); }
