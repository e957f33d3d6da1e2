/*
 * 2-D convolution over NCHW tensors: conv2d, conv_transpose2d and the two internal ops their
 * gradients are made of. All four share one geometry (a conv2d from a "conv input" of
 * [N, C, H, W] to a "conv output" of [N, Co, Ho, Wo] with a weight [Co, C/G, kh, kw]) and
 * three kernels (conv_kernels.c):
 *
 *   op                       inputs            output             kernel
 *   conv2d                   x, w [, b]        y = C_w(x) + b     forward
 *   conv_transpose2d         x, w [, b]        C_w^T(x) + b       backward-data (x is "dy")
 *   conv2d_input_grad        dy, w, like       C_w^T(dy), like's  backward-data
 *   conv2d_weight_grad       x, dy             dW                 backward-weight
 *
 * C_w is linear in x and in w, and <C_w(x), dy> = <x, C_w^T(dy)> = <w, dW(x, dy)>. So every
 * gradient is again one of these ops, and second derivatives come for free:
 *   conv2d:             dx = input_grad(g, w, like x)   dw = weight_grad(x, g)
 *                       db = sum(g, axes 0, 2, 3)
 *   conv_transpose2d:   dx = conv2d(g, w)               dw = weight_grad(g, x)
 *   conv2d_input_grad:  ddy = conv2d(g, w)              dw = weight_grad(g, dy)
 *   conv2d_weight_grad: dx = input_grad(dy, g, like x)  ddy = conv2d(x, g)
 * For conv_transpose2d the conv2d geometry runs from its output back to its input; its
 * output_padding becomes a smaller pad_end of that conv2d (pad_end may be negative inside),
 * so that the conv2d's output has exactly the transposed conv's input size.
 *
 * Padding is stored per side (pad_begin, pad_end): 'same' padding with an even kernel pads
 * one more at the end, as PyTorch does.
 */
#include "conv.h"

#include <stdio.h>
#include <string.h>

enum conv_variant { CONV_FORWARD, CONV_TRANSPOSE, CONV_INPUT_GRAD, CONV_WEIGHT_GRAD };

static inline const struct dg__conv_attrs *conv_attrs(const void *attrs) { return attrs; }

/* Shapes of a conv2d: conv input, weight, conv output. */
static bool conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_begin,
                          int64_t pad_end, int64_t dilation, int64_t *out)
{
    int64_t span = in + pad_begin + pad_end - dilation * (k - 1) - 1;
    if (span < 0)
        return false;
    *out = span / stride + 1;
    return true;
}

static const char *conv_name(const struct dg_op_def *def) { return def->name; }

static dg_status check_4d(const struct dg_op_def *def, const char *what,
                          const struct dg_shape *s, char *msg, size_t len)
{
    char buf[128];
    if (s->dtype != DG_F32 || s->ndim != 4)
        return dg__shape_error(msg, len, s->dtype != DG_F32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                               "%s: %s must be float32 [N, C, H, W], got %s%s", conv_name(def),
                               what, s->dtype == DG_F32 ? "" : "int32 ",
                               dg__shape_str(s, buf, sizeof buf));
    return DG_OK;
}

/* Checks a conv2d geometry from the conv input `in`, the weight shape and the attributes, and
 * computes the conv output's spatial size. */
static dg_status check_geometry(const struct dg_op_def *def, const struct dg__conv_attrs *a,
                                const struct dg_shape *in, int64_t out_c, int64_t group_in_c,
                                int64_t kh, int64_t kw, int64_t *out_h, int64_t *out_w,
                                char *msg, size_t len)
{
    char si[128];
    dg__shape_str(in, si, sizeof si);
    if (a->groups < 1 || a->stride[0] < 1 || a->stride[1] < 1 || a->dilation[0] < 1 ||
        a->dilation[1] < 1)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: stride [%lld,%lld], dilation "
                               "[%lld,%lld] and groups %lld must be at least 1 (input %s)",
                               conv_name(def), (long long)a->stride[0], (long long)a->stride[1],
                               (long long)a->dilation[0], (long long)a->dilation[1],
                               (long long)a->groups, si);
    if (in->dim[1] % a->groups != 0)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: %lld input channels (input %s) are "
                               "not divisible into %lld groups", conv_name(def),
                               (long long)in->dim[1], si, (long long)a->groups);
    if (out_c % a->groups != 0)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: %lld output channels are not "
                               "divisible into %lld groups (input %s)", conv_name(def),
                               (long long)out_c, (long long)a->groups, si);
    if (in->dim[1] != group_in_c * a->groups)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: the weight has %lld input channels "
                               "per group; input %s with %lld groups needs %lld",
                               conv_name(def), (long long)group_in_c, si, (long long)a->groups,
                               (long long)(in->dim[1] / a->groups));
    if (kh < 1 || kw < 1 ||
        !conv_out_size(in->dim[2], kh, a->stride[0], a->pad_begin[0], a->pad_end[0],
                       a->dilation[0], out_h) ||
        !conv_out_size(in->dim[3], kw, a->stride[1], a->pad_begin[1], a->pad_end[1],
                       a->dilation[1], out_w))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: kernel %lldx%lld (dilation "
                               "[%lld,%lld]) is larger than the padded input %s (padding "
                               "[%lld,%lld] before, [%lld,%lld] after)", conv_name(def),
                               (long long)kh, (long long)kw, (long long)a->dilation[0],
                               (long long)a->dilation[1], si, (long long)a->pad_begin[0],
                               (long long)a->pad_begin[1], (long long)a->pad_end[0],
                               (long long)a->pad_end[1]);
    return DG_OK;
}

static dg_status check_bias(const struct dg_op_def *def, const struct dg_shape *b,
                            int64_t channels, char *msg, size_t len)
{
    char buf[128];
    if (b->dtype != DG_F32 || b->ndim != 1 || b->dim[0] != channels)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: bias must be float32 [%lld], got "
                               "%s%s", conv_name(def), (long long)channels,
                               b->dtype == DG_F32 ? "" : "int32 ",
                               dg__shape_str(b, buf, sizeof buf));
    return DG_OK;
}

static dg_status conv_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_shape *in, struct dg_shape *out, char *msg,
                            size_t len)
{
    const struct dg__conv_attrs *a = conv_attrs(attrs);
    char s0[128], s1[128], s2[128];
    dg_status st;
    int want = def->variant == CONV_WEIGHT_GRAD ? 2 : def->variant == CONV_INPUT_GRAD ? 3 : -1;
    if ((want > 0 && n_inputs != want) || (want < 0 && n_inputs != 2 && n_inputs != 3))
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: %d inputs", def->name,
                               n_inputs);
    for (int i = 0; i < 2; i++)
        if ((st = check_4d(def, i == 0 ? "input" : "weight", &in[i], msg, len)) != DG_OK)
            return st;
    dg__shape_str(&in[0], s0, sizeof s0);
    dg__shape_str(&in[1], s1, sizeof s1);
    int64_t oh, ow;
    switch ((enum conv_variant)def->variant) {
    case CONV_FORWARD: {
        /* in[0] = x (conv input), in[1] = weight [Co, C/G, kh, kw] */
        int64_t co = in[1].dim[0];
        if ((st = check_geometry(def, a, &in[0], co, in[1].dim[1], in[1].dim[2], in[1].dim[3],
                                 &oh, &ow, msg, len)) != DG_OK)
            return st;
        if (n_inputs == 3 && (st = check_bias(def, &in[2], co, msg, len)) != DG_OK)
            return st;
        *out = (struct dg_shape){.dtype = DG_F32, .ndim = 4,
                                 .dim = {in[0].dim[0], co, oh, ow}};
        return DG_OK;
    }
    case CONV_TRANSPOSE: {
        /* in[0] = x [N, Cin, H, W] is the conv output; weight [Cin, Cout/G, kh, kw]. */
        int64_t cin = in[0].dim[1], cout = in[1].dim[1] * a->groups;
        int64_t kh = in[1].dim[2], kw = in[1].dim[3];
        if (a->groups < 1 || a->stride[0] < 1 || a->stride[1] < 1 || a->dilation[0] < 1 ||
            a->dilation[1] < 1)
            return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: stride, dilation and "
                                   "groups must be at least 1 (input %s, weight %s)",
                                   def->name, s0, s1);
        if (in[1].dim[0] != cin || cin % a->groups != 0)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: input %s with %lld groups "
                                   "needs a weight [%lld, Cout/groups, kh, kw], got %s",
                                   def->name, s0, (long long)a->groups, (long long)cin, s1);
        int64_t h = (in[0].dim[2] - 1) * a->stride[0] - a->pad_begin[0] - a->pad_end[0] +
                    a->dilation[0] * (kh - 1) + 1 + a->output_padding[0];
        int64_t w = (in[0].dim[3] - 1) * a->stride[1] - a->pad_begin[1] - a->pad_end[1] +
                    a->dilation[1] * (kw - 1) + 1 + a->output_padding[1];
        if (h < 1 || w < 1)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: input %s and weight %s give "
                                   "an empty output (%lldx%lld): padding too large",
                                   def->name, s0, s1, (long long)h, (long long)w);
        if (n_inputs == 3 && (st = check_bias(def, &in[2], cout, msg, len)) != DG_OK)
            return st;
        *out = (struct dg_shape){.dtype = DG_F32, .ndim = 4, .dim = {in[0].dim[0], cout, h, w}};
        return DG_OK;
    }
    case CONV_INPUT_GRAD: {
        /* in[0] = dy (conv output), in[1] = weight, in[2] = like (conv input, shape only) */
        if ((st = check_4d(def, "like", &in[2], msg, len)) != DG_OK)
            return st;
        dg__shape_str(&in[2], s2, sizeof s2);
        if ((st = check_geometry(def, a, &in[2], in[1].dim[0], in[1].dim[1], in[1].dim[2],
                                 in[1].dim[3], &oh, &ow, msg, len)) != DG_OK)
            return st;
        if (in[0].dim[0] != in[2].dim[0] || in[0].dim[1] != in[1].dim[0] ||
            in[0].dim[2] != oh || in[0].dim[3] != ow)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: gradient %s does not match "
                                   "the conv2d of %s with weight %s", def->name, s0, s2, s1);
        *out = in[2];
        return DG_OK;
    }
    case CONV_WEIGHT_GRAD: {
        /* in[0] = x (conv input), in[1] = dy (conv output); kernel size from the attrs */
        int64_t co = in[1].dim[1];
        if (a->groups >= 1 && in[0].dim[1] % a->groups != 0)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: %lld input channels are not "
                                   "divisible by %lld groups (input %s)", def->name,
                                   (long long)in[0].dim[1], (long long)a->groups, s0);
        int64_t cg = a->groups >= 1 ? in[0].dim[1] / a->groups : 0;
        if ((st = check_geometry(def, a, &in[0], co, cg, a->kernel[0], a->kernel[1], &oh, &ow,
                                 msg, len)) != DG_OK)
            return st;
        if (in[1].dim[0] != in[0].dim[0] || in[1].dim[2] != oh || in[1].dim[3] != ow)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: gradient %s does not match "
                                   "the conv2d of %s with a %lldx%lld kernel", def->name, s1,
                                   s0, (long long)a->kernel[0], (long long)a->kernel[1]);
        *out = (struct dg_shape){.dtype = DG_F32, .ndim = 4,
                                 .dim = {co, cg, a->kernel[0], a->kernel[1]}};
        return DG_OK;
    }
    }
    return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: unknown variant", def->name);
}

/* The conv2d geometry of a node from its plan-time shapes. */
static struct dg__conv_geom geometry(const struct dg_op_def *def, const struct dg__conv_attrs *a,
                                     const struct dg_shape *in, const struct dg_shape *out)
{
    const struct dg_shape *conv_in, *conv_out;
    int64_t kh, kw;
    switch ((enum conv_variant)def->variant) {
    case CONV_FORWARD: conv_in = &in[0]; conv_out = out; break;
    case CONV_TRANSPOSE: conv_in = out; conv_out = &in[0]; break;
    case CONV_INPUT_GRAD: conv_in = out; conv_out = &in[0]; break;
    default: conv_in = &in[0]; conv_out = &in[1]; break;
    }
    if (def->variant == CONV_WEIGHT_GRAD) {
        kh = a->kernel[0];
        kw = a->kernel[1];
    } else {
        kh = in[1].dim[2];
        kw = in[1].dim[3];
    }
    return (struct dg__conv_geom){
        .batch = conv_in->dim[0], .in_c = conv_in->dim[1], .in_h = conv_in->dim[2],
        .in_w = conv_in->dim[3], .out_c = conv_out->dim[1], .out_h = conv_out->dim[2],
        .out_w = conv_out->dim[3], .k_h = kh, .k_w = kw, .groups = a->groups,
        .stride_h = a->stride[0], .stride_w = a->stride[1], .pad_h = a->pad_begin[0],
        .pad_w = a->pad_begin[1], .dil_h = a->dilation[0], .dil_w = a->dilation[1],
    };
}

static enum dg__conv_kernel kernel_of(int variant)
{
    return variant == CONV_FORWARD       ? DG__CONV_FORWARD
           : variant == CONV_WEIGHT_GRAD ? DG__CONV_WEIGHT
                                         : DG__CONV_DATA;
}

/* Column buffers (one per thread) and the weight gradient's partial sums. */
static size_t conv_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                             const struct dg_shape *in, const struct dg_shape *out,
                             int n_threads)
{
    struct dg__conv_geom geom = geometry(def, conv_attrs(attrs), in, out);
    return dg__conv_workspace_floats(&geom, kernel_of(def->variant), n_threads) * sizeof(float);
}

static void conv_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                         const struct dg_tensor *in, struct dg_tensor *out,
                         const struct dg_exec_ctx *ctx)
{
    struct dg_shape shapes[3];
    for (int i = 0; i < n_inputs && i < 3; i++)
        shapes[i] = in[i].shape;
    struct dg__conv_geom geom = geometry(def, conv_attrs(attrs), shapes, &out->shape);
    const float *bias = n_inputs == 3 && def->variant != CONV_INPUT_GRAD ? in[2].data : NULL;
    switch ((enum conv_variant)def->variant) {
    case CONV_FORWARD:
        dg__conv_forward(&geom, in[0].data, in[1].data, bias, out->data, ctx);
        break;
    case CONV_TRANSPOSE:
    case CONV_INPUT_GRAD:
        dg__conv_backward_data(&geom, in[0].data, in[1].data, bias, out->data, ctx);
        break;
    case CONV_WEIGHT_GRAD:
        dg__conv_backward_weight(&geom, in[0].data, in[1].data, out->data, ctx);
        break;
    }
}

/* ---- Building nodes --------------------------------------------------------------------- */

static dg_node *make_conv(dg_graph *g, dg_op_id op, dg_node *a, dg_node *b, dg_node *c,
                          const struct dg__conv_attrs *attrs)
{
    int n = c != NULL ? 3 : 2;
    return dg__make_node(g, op, n, (dg_node *[]){a, b, c}, attrs);
}

/* The same geometry with a weight gradient's kernel size filled in and everything else that
 * belongs to one op only cleared, so equal geometries give equal attributes. */
static struct dg__conv_attrs geometry_attrs(const struct dg__conv_attrs *a, int64_t kh,
                                            int64_t kw)
{
    struct dg__conv_attrs r;
    memset(&r, 0, sizeof r);
    memcpy(r.stride, a->stride, sizeof r.stride);
    memcpy(r.dilation, a->dilation, sizeof r.dilation);
    memcpy(r.pad_begin, a->pad_begin, sizeof r.pad_begin);
    memcpy(r.pad_end, a->pad_end, sizeof r.pad_end);
    r.groups = a->groups;
    r.kernel[0] = kh;
    r.kernel[1] = kw;
    return r;
}

static dg_node *weight_grad(dg_graph *g, dg_node *x, dg_node *dy, const struct dg__conv_attrs *a,
                            dg_node *weight_like)
{
    const struct dg_shape *w = dg__node_shape(weight_like);
    struct dg__conv_attrs attrs = geometry_attrs(a, w->dim[2], w->dim[3]);
    return make_conv(g, DG_OP_conv2d_weight_grad, x, dy, NULL, &attrs);
}

static dg_node *input_grad(dg_graph *g, dg_node *dy, dg_node *w, dg_node *like,
                           const struct dg__conv_attrs *a)
{
    struct dg__conv_attrs attrs = geometry_attrs(a, 0, 0);
    return make_conv(g, DG_OP_conv2d_input_grad, dy, w, like, &attrs);
}

static dg_node *plain_conv(dg_graph *g, dg_node *x, dg_node *w, const struct dg__conv_attrs *a)
{
    struct dg__conv_attrs attrs = geometry_attrs(a, 0, 0);
    return make_conv(g, DG_OP_conv2d, x, w, NULL, &attrs);
}

static dg_node *bias_grad(dg_graph *g, dg_node *grad)
{
    return dg_sum(g, grad, 3, (const int[]){0, 2, 3}, false);
}

/* The conv2d geometry of a conv_transpose2d: output_padding folded into pad_end. */
static struct dg__conv_attrs transpose_geometry(const struct dg__conv_attrs *a)
{
    struct dg__conv_attrs r = *a;
    for (int i = 0; i < 2; i++) {
        r.pad_end[i] -= a->output_padding[i];
        r.output_padding[i] = 0;
    }
    return r;
}

static dg_status conv_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *grad, dg_node **gin)
{
    const struct dg__conv_attrs *a = conv_attrs(dg__attrs(node));
    dg_node *in0 = dg__input(node, 0), *in1 = dg__input(node, 1);
    int n = dg__n_inputs(node);
    switch ((enum conv_variant)ctx->def->variant) {
    case CONV_FORWARD:
        if (dg__grad_needed(ctx, 0))
            gin[0] = input_grad(g, grad, in1, in0, a);
        if (dg__grad_needed(ctx, 1))
            gin[1] = weight_grad(g, in0, grad, a, in1);
        if (n == 3 && dg__grad_needed(ctx, 2))
            gin[2] = bias_grad(g, grad);
        break;
    case CONV_TRANSPOSE: {
        struct dg__conv_attrs t = transpose_geometry(a);
        if (dg__grad_needed(ctx, 0))
            gin[0] = plain_conv(g, grad, in1, &t);
        if (dg__grad_needed(ctx, 1))
            gin[1] = weight_grad(g, grad, in0, &t, in1);
        if (n == 3 && dg__grad_needed(ctx, 2))
            gin[2] = bias_grad(g, grad);
        break;
    }
    case CONV_INPUT_GRAD:
        /* in0 = dy, in1 = weight; like (in2) is read for its shape only */
        if (dg__grad_needed(ctx, 0))
            gin[0] = plain_conv(g, grad, in1, a);
        if (dg__grad_needed(ctx, 1))
            gin[1] = weight_grad(g, grad, in0, a, in1);
        break;
    case CONV_WEIGHT_GRAD:
        /* in0 = x, in1 = dy; grad has the weight's shape */
        if (dg__grad_needed(ctx, 0))
            gin[0] = input_grad(g, in1, grad, in0, a);
        if (dg__grad_needed(ctx, 1))
            gin[1] = plain_conv(g, in0, grad, a);
        break;
    }
    return dg_graph_status(g);
}

static void conv_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    const struct dg__conv_attrs *a = conv_attrs(attrs);
    int used = snprintf(buf, len, "stride=%lld,%lld pad=%lld,%lld/%lld,%lld",
                        (long long)a->stride[0], (long long)a->stride[1],
                        (long long)a->pad_begin[0], (long long)a->pad_begin[1],
                        (long long)a->pad_end[0], (long long)a->pad_end[1]);
    if (used < 0 || (size_t)used >= len)
        return;
    if (a->dilation[0] != 1 || a->dilation[1] != 1)
        used += snprintf(buf + used, len - (size_t)used, " dil=%lld,%lld",
                         (long long)a->dilation[0], (long long)a->dilation[1]);
    if (used >= 0 && (size_t)used < len && a->groups != 1)
        used += snprintf(buf + used, len - (size_t)used, " groups=%lld", (long long)a->groups);
    if (used >= 0 && (size_t)used < len &&
        (a->output_padding[0] != 0 || a->output_padding[1] != 0))
        snprintf(buf + used, len - (size_t)used, " out_pad=%lld,%lld",
                 (long long)a->output_padding[0], (long long)a->output_padding[1]);
}

const struct dg_op_def dg_op_conv2d = {
    .name = "conv2d", .n_inputs = -1, .variant = CONV_FORWARD,
    .attrs_size = sizeof(struct dg__conv_attrs),
    .infer = conv_infer, .forward = conv_forward, .backward = conv_backward, .label = conv_label,
    .workspace_bytes = conv_workspace,
};
const struct dg_op_def dg_op_conv_transpose2d = {
    .name = "conv_transpose2d", .n_inputs = -1, .variant = CONV_TRANSPOSE,
    .attrs_size = sizeof(struct dg__conv_attrs),
    .infer = conv_infer, .forward = conv_forward, .backward = conv_backward, .label = conv_label,
    .workspace_bytes = conv_workspace,
};
const struct dg_op_def dg_op_conv2d_input_grad = {
    .name = "conv2d_input_grad", .n_inputs = 3, .variant = CONV_INPUT_GRAD,
    .attrs_size = sizeof(struct dg__conv_attrs), .shape_only_inputs = 1u << 2,
    .infer = conv_infer, .forward = conv_forward, .backward = conv_backward, .label = conv_label,
    .workspace_bytes = conv_workspace,
};
const struct dg_op_def dg_op_conv2d_weight_grad = {
    .name = "conv2d_weight_grad", .n_inputs = 2, .variant = CONV_WEIGHT_GRAD,
    .attrs_size = sizeof(struct dg__conv_attrs),
    .infer = conv_infer, .forward = conv_forward, .backward = conv_backward, .label = conv_label,
    .workspace_bytes = conv_workspace,
};

/* ---- Public constructors ------------------------------------------------------------------ */

static bool check_params(dg_graph *g, const char *op, const dg_conv2d_params *p)
{
    if (dg_graph_status(g) != DG_OK)
        return false;
    for (int i = 0; i < 2; i++) {
        if (p->stride[i] < 1 || p->dilation[i] < 1 || p->padding[i] < 0 ||
            p->output_padding[i] < 0) {
            dg__fail(g, DG_ERR_INVALID_ARG, "%s: stride [%lld,%lld] and dilation [%lld,%lld] "
                     "must be at least 1, padding [%lld,%lld] and output_padding [%lld,%lld] "
                     "at least 0", op, (long long)p->stride[0], (long long)p->stride[1],
                     (long long)p->dilation[0], (long long)p->dilation[1],
                     (long long)p->padding[0], (long long)p->padding[1],
                     (long long)p->output_padding[0], (long long)p->output_padding[1]);
            return false;
        }
    }
    if (p->groups < 1) {
        dg__fail(g, DG_ERR_INVALID_ARG, "%s: groups must be at least 1, got %lld", op,
                 (long long)p->groups);
        return false;
    }
    return true;
}

/* The node attributes of checked parameters: symmetric padding (conv2d's 'same' adjusts it
 * afterwards); output_padding is 0 for conv2d, whose constructor refuses any other. */
static struct dg__conv_attrs attrs_from_params(const dg_conv2d_params *p)
{
    struct dg__conv_attrs a;
    memset(&a, 0, sizeof a);
    a.groups = p->groups;
    for (int i = 0; i < 2; i++) {
        a.stride[i] = p->stride[i];
        a.dilation[i] = p->dilation[i];
        a.pad_begin[i] = a.pad_end[i] = p->padding[i];
        a.output_padding[i] = p->output_padding[i];
    }
    return a;
}

dg_node *dg_conv2d(dg_graph *g, dg_node *x, dg_node *weight, dg_node *bias,
                   const dg_conv2d_params *params)
{
    dg_conv2d_params p = params != NULL ? *params : DG_CONV2D_DEFAULTS;
    if (g == NULL || x == NULL || weight == NULL || !check_params(g, "conv2d", &p))
        return make_conv(g, DG_OP_conv2d, x, weight, bias, NULL); /* reports NULLs */
    if (p.output_padding[0] != 0 || p.output_padding[1] != 0)
        return dg__fail(g, DG_ERR_INVALID_ARG, "conv2d: output_padding is for "
                        "conv_transpose2d only");
    struct dg__conv_attrs a = attrs_from_params(&p);
    if (p.same) {
        if (p.stride[0] != 1 || p.stride[1] != 1)
            return dg__fail(g, DG_ERR_INVALID_ARG, "conv2d: padding 'same' needs stride 1, "
                            "got [%lld,%lld]", (long long)p.stride[0], (long long)p.stride[1]);
        if (dg_node_ndim(weight) == 4) {
            for (int i = 0; i < 2; i++) {
                int64_t total = p.dilation[i] * (dg_node_dim(weight, 2 + i) - 1);
                a.pad_begin[i] = total / 2;
                a.pad_end[i] = total - total / 2;
            }
        }
    }
    return make_conv(g, DG_OP_conv2d, x, weight, bias, &a);
}

dg_node *dg_conv_transpose2d(dg_graph *g, dg_node *x, dg_node *weight, dg_node *bias,
                             const dg_conv2d_params *params)
{
    dg_conv2d_params p = params != NULL ? *params : DG_CONV2D_DEFAULTS;
    if (g == NULL || x == NULL || weight == NULL || !check_params(g, "conv_transpose2d", &p))
        return make_conv(g, DG_OP_conv_transpose2d, x, weight, bias, NULL);
    if (p.same)
        return dg__fail(g, DG_ERR_INVALID_ARG, "conv_transpose2d: padding 'same' is for "
                        "conv2d only");
    for (int i = 0; i < 2; i++)
        if (p.output_padding[i] >= p.stride[i] && p.output_padding[i] >= p.dilation[i])
            return dg__fail(g, DG_ERR_INVALID_ARG, "conv_transpose2d: output_padding "
                            "[%lld,%lld] must be smaller than the stride [%lld,%lld] or the "
                            "dilation [%lld,%lld]", (long long)p.output_padding[0],
                            (long long)p.output_padding[1], (long long)p.stride[0],
                            (long long)p.stride[1], (long long)p.dilation[0],
                            (long long)p.dilation[1]);
    struct dg__conv_attrs a = attrs_from_params(&p);
    return make_conv(g, DG_OP_conv_transpose2d, x, weight, bias, &a);
}
