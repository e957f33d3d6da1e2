/*
 * Spatial padding and nearest upsampling of NCHW tensors (the last two axes of any tensor
 * with at least 2 dimensions).
 *
 *   pad2d(x; top, bottom, left, right, mode, value)
 *       constant: out = value outside x;  reflect: out[i] = x[reflect(i - top)] with
 *       reflect(-k) = k and reflect(H - 1 + k) = H - 1 - k (the edge is not repeated, as
 *       PyTorch's 'reflect'; every pad < the size of its axis)
 *   pad2d_grad(g, like): the adjoint: g cropped to like's shape, plus (reflect) the border
 *       values added onto the elements they were copied from; its gradient is pad2d again
 *   upsample_nearest2d(x [N, C, H, W]; scale_h, scale_w): out[i, j] = x[i / scale_h, j / scale_w]
 *       (integer scales); gradient: the sum over each scale_h x scale_w block, built as
 *       avg_pool2d(g, block) * (scale_h * scale_w)
 * Each output plane is written by one thread in a fixed order.
 */
#include "pad.h"

#include <stdio.h>
#include <string.h>

enum pad_variant { PAD_FORWARD, PAD_GRAD, UPSAMPLE_NEAREST };

static inline const struct dg__pad_attrs *pad_attrs(const void *attrs) { return attrs; }

static dg_status pad_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                           const struct dg_shape *in, struct dg_shape *out, char *msg,
                           size_t len)
{
    const struct dg__pad_attrs *a = pad_attrs(attrs);
    char sx[128], sl[128];
    dg__shape_str(&in[0], sx, sizeof sx);
    if (in[0].dtype != DG_F32 || in[0].ndim < 2)
        return dg__shape_error(msg, len, in[0].dtype != DG_F32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                               "%s: input must be float32 with at least 2 dimensions, got %s",
                               def->name, sx);
    const int h = in[0].ndim - 2, w = in[0].ndim - 1;
    *out = in[0];
    switch ((enum pad_variant)def->variant) {
    case UPSAMPLE_NEAREST:
        if (in[0].ndim != 4)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: input must be [N, C, H, W], got "
                                   "%s", def->name, sx);
        if (a->scale[0] < 1 || a->scale[1] < 1)
            return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: scale %lldx%lld must be "
                                   "positive (input %s)", def->name, (long long)a->scale[0],
                                   (long long)a->scale[1], sx);
        out->dim[h] *= a->scale[0];
        out->dim[w] *= a->scale[1];
        return DG_OK;
    case PAD_FORWARD:
    case PAD_GRAD: {
        /* the unpadded shape: x (pad2d) or like (pad2d_grad) */
        const struct dg_shape *small = def->variant == PAD_FORWARD ? &in[0] : &in[1];
        if (a->top < 0 || a->bottom < 0 || a->left < 0 || a->right < 0)
            return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: padding [%lld,%lld,%lld,"
                                   "%lld] must not be negative (input %s)", def->name,
                                   (long long)a->top, (long long)a->bottom, (long long)a->left,
                                   (long long)a->right, sx);
        if (a->reflect && (a->top >= small->dim[h] || a->bottom >= small->dim[h] ||
                           a->left >= small->dim[w] || a->right >= small->dim[w]))
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: reflect padding [%lld,%lld,"
                                   "%lld,%lld] must be smaller than the input's %lldx%lld (%s)",
                                   def->name, (long long)a->top, (long long)a->bottom,
                                   (long long)a->left, (long long)a->right,
                                   (long long)small->dim[h], (long long)small->dim[w],
                                   dg__shape_str(small, sl, sizeof sl));
        if (def->variant == PAD_FORWARD) {
            out->dim[h] += a->top + a->bottom;
            out->dim[w] += a->left + a->right;
            return DG_OK;
        }
        bool fits = in[1].ndim == in[0].ndim && in[1].dtype == DG_F32 &&
                    in[0].dim[h] == in[1].dim[h] + a->top + a->bottom &&
                    in[0].dim[w] == in[1].dim[w] + a->left + a->right;
        for (int i = 0; fits && i < h; i++)
            fits = in[0].dim[i] == in[1].dim[i];
        if (!fits)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: gradient %s is not the padded "
                                   "shape of %s", def->name, sx,
                                   dg__shape_str(&in[1], sl, sizeof sl));
        *out = in[1];
        return DG_OK;
    }
    }
    return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: unknown variant", def->name);
}

/* reflect(i) for i in [-(n-1), 2n-2]: the index of the element an out-of-range i mirrors. */
static inline int64_t reflect(int64_t i, int64_t n)
{
    if (i < 0)
        return -i;
    if (i >= n)
        return 2 * (n - 1) - i;
    return i;
}

static void pad_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                        const struct dg_tensor *in, struct dg_tensor *out,
                        const struct dg_exec_ctx *ctx)
{
    const struct dg__pad_attrs *a = pad_attrs(attrs);
    const struct dg_shape *big = def->variant == PAD_GRAD ? &in[0].shape : &out->shape;
    const struct dg_shape *small = def->variant == PAD_GRAD ? &out->shape : &in[0].shape;
    const int nd = big->ndim;
    const int64_t bh = big->dim[nd - 2], bw = big->dim[nd - 1];
    const int64_t sh = small->dim[nd - 2], sw = small->dim[nd - 1];
    const int64_t planes = bh * bw > 0 ? dg__numel(big) / (bh * bw) : 0;
    const float *src = in[0].data;
    float *dst = out->data;
    const int threads = dg__threads_for(ctx, planes * bh * bw);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        switch ((enum pad_variant)def->variant) {
        case PAD_FORWARD: {
            const float *x = src + p * sh * sw;
            float *y = dst + p * bh * bw;
            for (int64_t i = 0; i < bh; i++)
                for (int64_t j = 0; j < bw; j++) {
                    int64_t si = i - a->top, sj = j - a->left;
                    bool inside = si >= 0 && si < sh && sj >= 0 && sj < sw;
                    if (inside)
                        y[i * bw + j] = x[si * sw + sj];
                    else if (a->reflect)
                        y[i * bw + j] = x[reflect(si, sh) * sw + reflect(sj, sw)];
                    else
                        y[i * bw + j] = a->value;
                }
            break;
        }
        case PAD_GRAD: {
            const float *g = src + p * bh * bw;
            float *dx = dst + p * sh * sw;
            for (int64_t i = 0; i < sh; i++)
                memcpy(dx + i * sw, g + (i + a->top) * bw + a->left, (size_t)sw * sizeof *dx);
            if (!a->reflect)
                break;
            for (int64_t i = 0; i < bh; i++)
                for (int64_t j = 0; j < bw; j++) {
                    int64_t si = i - a->top, sj = j - a->left;
                    if (si >= 0 && si < sh && sj >= 0 && sj < sw)
                        continue;
                    dx[reflect(si, sh) * sw + reflect(sj, sw)] += g[i * bw + j];
                }
            break;
        }
        case UPSAMPLE_NEAREST: {
            const int64_t oh = out->shape.dim[nd - 2], ow = out->shape.dim[nd - 1];
            const int64_t ih = in[0].shape.dim[nd - 2], iw = in[0].shape.dim[nd - 1];
            const float *x = src + p * ih * iw;
            float *y = dst + p * oh * ow;
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++)
                    y[i * ow + j] = x[(i / a->scale[0]) * iw + j / a->scale[1]];
            break;
        }
        }
    }
}

static dg_status pad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    const struct dg__pad_attrs *a = pad_attrs(dg__attrs(node));
    dg_node *in0 = dg__input(node, 0);
    switch ((enum pad_variant)ctx->def->variant) {
    case PAD_FORWARD:
        if (dg__grad_needed(ctx, 0))
            gin[0] = dg__make_node(g, DG_OP_pad2d_grad, 2, (dg_node *[]){grad, in0}, a);
        break;
    case PAD_GRAD: /* in1 (like) is read for its shape only */
        if (dg__grad_needed(ctx, 0))
            gin[0] = dg__make_node(g, DG_OP_pad2d, 1, (dg_node *[]){grad}, a);
        break;
    case UPSAMPLE_NEAREST:
        if (dg__grad_needed(ctx, 0)) {
            dg_pool2d_params block = {.kernel = {a->scale[0], a->scale[1]}};
            gin[0] = dg_scale(g, dg_avg_pool2d(g, grad, &block),
                              (float)(a->scale[0] * a->scale[1]));
        }
        break;
    }
    return dg_graph_status(g);
}

static void pad_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    const struct dg__pad_attrs *a = pad_attrs(attrs);
    if (def->variant == UPSAMPLE_NEAREST)
        snprintf(buf, len, "scale=%lldx%lld", (long long)a->scale[0], (long long)a->scale[1]);
    else
        snprintf(buf, len, "pad=%lld,%lld,%lld,%lld %s", (long long)a->top, (long long)a->bottom,
                 (long long)a->left, (long long)a->right, a->reflect ? "reflect" : "constant");
}

const struct dg_op_def dg_op_pad2d = {
    .name = "pad2d", .n_inputs = 1, .variant = PAD_FORWARD, .attrs_size = sizeof(struct dg__pad_attrs),
    .infer = pad_infer, .forward = pad_forward, .backward = pad_backward, .label = pad_label,
};
const struct dg_op_def dg_op_pad2d_grad = {
    .name = "pad2d_grad", .n_inputs = 2, .variant = PAD_GRAD,
    .attrs_size = sizeof(struct dg__pad_attrs), .shape_only_inputs = 1u << 1,
    .infer = pad_infer, .forward = pad_forward, .backward = pad_backward, .label = pad_label,
};
const struct dg_op_def dg_op_upsample_nearest2d = {
    .name = "upsample_nearest2d", .n_inputs = 1, .variant = UPSAMPLE_NEAREST,
    .attrs_size = sizeof(struct dg__pad_attrs),
    .infer = pad_infer, .forward = pad_forward, .backward = pad_backward, .label = pad_label,
};

dg_node *dg_pad2d(dg_graph *g, dg_node *x, int64_t top, int64_t bottom, int64_t left,
                  int64_t right, dg_pad_mode mode, float value)
{
    if (mode != DG_PAD_CONSTANT && mode != DG_PAD_REFLECT) {
        if (g != NULL && dg_graph_status(g) == DG_OK)
            dg__fail(g, DG_ERR_INVALID_ARG, "pad2d: unknown mode %d", (int)mode);
        return NULL;
    }
    struct dg__pad_attrs a;
    memset(&a, 0, sizeof a);
    a.top = top;
    a.bottom = bottom;
    a.left = left;
    a.right = right;
    a.reflect = mode == DG_PAD_REFLECT;
    a.value = mode == DG_PAD_REFLECT ? 0.0f : value;
    return dg__make_node(g, DG_OP_pad2d, 1, (dg_node *[]){x}, &a);
}

dg_node *dg_upsample_nearest2d(dg_graph *g, dg_node *x, int64_t scale_h, int64_t scale_w)
{
    struct dg__pad_attrs a;
    memset(&a, 0, sizeof a);
    a.scale[0] = scale_h;
    a.scale[1] = scale_w;
    return dg__make_node(g, DG_OP_upsample_nearest2d, 1, (dg_node *[]){x}, &a);
}
