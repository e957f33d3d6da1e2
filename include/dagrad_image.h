/* Part of the dagrad public API; include dagrad.h rather than this file.
 *
 * Images: 2-D convolution, transposed convolution and pooling over NCHW tensors
 * ([batch, channels, height, width], float32), and the layer helpers built on them.
 * See docs/op-reference.md ("Images") for the maths of each op and its backward rule. */
#ifndef DAGRAD_IMAGE_H
#define DAGRAD_IMAGE_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Convolution (src/ops/conv.c) -------------------------------------------------------
 *
 * Parameters of conv2d and conv_transpose2d, as torch.nn.functional's: [0] is the height
 * (rows), [1] the width (columns). Start from DG_CONV2D_DEFAULTS (stride 1, no padding,
 * dilation 1, one group); a NULL params pointer means the defaults. A stride or dilation
 * below 1, a negative padding, or groups below 1 is an error naming the op. */
typedef struct dg_conv2d_params {
    int64_t stride[2];
    int64_t padding[2];        /* zeros added on both sides of each axis */
    int64_t dilation[2];
    int64_t groups;            /* in and out channels are split into this many groups;
                                  groups == in_channels (== out_channels) is depthwise */
    bool same;                 /* conv2d only: padding 'same' (output size = input size; stride
                                  must be 1): total d*(k-1) per axis, the odd one at the end,
                                  as PyTorch; `padding` is then ignored */
    int64_t output_padding[2]; /* conv_transpose2d only: rows/columns added at the end of the
                                  output; < stride or < dilation, as PyTorch */
} dg_conv2d_params;

#define DG_CONV2D_DEFAULTS                                                                 \
    ((dg_conv2d_params){.stride = {1, 1}, .padding = {0, 0}, .dilation = {1, 1},          \
                        .groups = 1, .same = false, .output_padding = {0, 0}})

/* Cross-correlation (PyTorch's conv2d):
 *   x [N, C, H, W], weight [Co, C/groups, kh, kw], bias [Co] or NULL
 *   y[n, o, i, j] = b[o] + sum_{c in o's group, a, b}
 *                   w[o, c, a, b] * x[n, c, i*sh - ph + a*dh, j*sw - pw + b*dw]   (0 outside)
 *   y [N, Co, Ho, Wo], Ho = floor((H + 2ph - dh*(kh-1) - 1) / sh) + 1.
 * Gradients for x, weight and bias (and of those again: the backward rules are conv ops). */
DG_API dg_node *dg_conv2d(dg_graph *g, dg_node *x, dg_node *weight, dg_node *bias,
                          const dg_conv2d_params *params);

/* Transposed convolution (PyTorch's conv_transpose2d): the adjoint of conv2d in its input,
 * i.e. the input gradient of a conv2d with the same parameters and weight.
 *   x [N, Cin, H, W], weight [Cin, Cout/groups, kh, kw], bias [Cout] or NULL
 *   y [N, Cout, Ho, Wo], Ho = (H - 1)*sh - 2ph + dh*(kh - 1) + output_padding[0] + 1. */
DG_API dg_node *dg_conv_transpose2d(dg_graph *g, dg_node *x, dg_node *weight, dg_node *bias,
                                    const dg_conv2d_params *params);

/* ---- Pooling (src/ops/pool.c) -------------------------------------------------------------
 *
 * Parameters of max_pool2d and avg_pool2d (torch.nn.functional's). stride {0, 0} means
 * stride = kernel (PyTorch's default). Padding must be at most half the kernel. */
typedef struct dg_pool2d_params {
    int64_t kernel[2];
    int64_t stride[2];         /* {0, 0}: the kernel size */
    int64_t padding[2];        /* max: -inf padding; avg: zeros (see count_include_pad) */
    int64_t dilation[2];       /* max_pool2d only; {0, 0} means 1 */
    bool ceil_mode;            /* ceil instead of floor in the output size; a window that
                                  would start in the right/bottom padding is dropped */
    bool count_include_pad;    /* avg_pool2d: divide by the window size including padding */
} dg_pool2d_params;

/* Max over each window; ties go to the first maximum in row-major window order, a NaN
 * wins (as PyTorch). The gradient goes to that one element. */
DG_API dg_node *dg_max_pool2d(dg_graph *g, dg_node *x, const dg_pool2d_params *params);
/* Mean over each window (zeros in the padding); the divisor is the window clipped to the
 * padded input when count_include_pad (PyTorch's default), else the window clipped to the
 * input. */
DG_API dg_node *dg_avg_pool2d(dg_graph *g, dg_node *x, const dg_pool2d_params *params);
/* Adaptive average pooling to [N, C, out_h, out_w] (PyTorch's bins: rows
 * floor(i*H/out_h) .. ceil((i+1)*H/out_h)); out 1x1 is global average pooling. */
DG_API dg_node *dg_adaptive_avg_pool2d(dg_graph *g, dg_node *x, int64_t out_h, int64_t out_w);

/* ---- Padding and resizing (src/ops/pad.c) -------------------------------------------------- */

typedef enum dg_pad_mode {
    DG_PAD_CONSTANT = 0, /* `value` outside the input */
    DG_PAD_REFLECT = 1,  /* mirrored without repeating the edge (PyTorch's 'reflect'); each pad
                            must be smaller than its axis */
} dg_pad_mode;

/* Pads the last two axes of x (at least 2-D): top/bottom rows, left/right columns
 * (torch.nn.functional.pad(x, (left, right, top, bottom), mode, value)). */
DG_API dg_node *dg_pad2d(dg_graph *g, dg_node *x, int64_t top, int64_t bottom, int64_t left,
                         int64_t right, dg_pad_mode mode, float value);
/* Nearest-neighbour upsampling of x [N, C, H, W] by integer factors:
 * out[n, c, i, j] = x[n, c, i / scale_h, j / scale_w]. */
DG_API dg_node *dg_upsample_nearest2d(dg_graph *g, dg_node *x, int64_t scale_h, int64_t scale_w);

/* ---- Normalisation (src/ops/norm.c) -----------------------------------------------------
 *
 * Fused forward (statistics in double), backward built from ordinary ops. gamma and beta are
 * both given or both NULL (no affine). The variance is the biased one, as PyTorch. */

/* Normalises over the last n_axes axes of x: y = (x - mean) / sqrt(var + eps) * gamma + beta,
 * gamma and beta shaped like those axes (torch.nn.functional.layer_norm). */
DG_API dg_node *dg_layer_norm(dg_graph *g, dg_node *x, dg_node *gamma, dg_node *beta, int n_axes,
                              float eps);
/* x [N, C, ...]: normalises each group of C/groups channels of each example; gamma and beta
 * [C] per channel (torch.nn.functional.group_norm). groups == C is instance norm. */
DG_API dg_node *dg_group_norm(dg_graph *g, dg_node *x, int64_t groups, dg_node *gamma,
                              dg_node *beta, float eps);

/* Batch normalisation over the channels of x [N, C, ...] (torch.nn.functional.batch_norm).
 * Training or evaluation is a property of the run, read from `key` (the graph's run key,
 * dg_dropout_key: dg_fit feeds training, dg_evaluate evaluation): training normalises with the
 * batch's statistics (biased variance) and updates running_mean / running_var in place
 * ((1 - momentum) old + momentum new, with the unbiased batch variance, as PyTorch); evaluation
 * normalises with the running statistics. running_mean and running_var must be dg_constant
 * nodes [C] (state owned by the graph and shared by every plan); gamma, beta [C] or both NULL.
 * The running statistics are not parameters; checkpoints save and restore them with the
 * parameters (dagrad_checkpoint.h). */
DG_API dg_node *dg_batch_norm(dg_graph *g, dg_node *x, dg_node *gamma, dg_node *beta,
                              dg_node *running_mean, dg_node *running_var, dg_node *key,
                              float momentum, float eps);

/* ---- Layer helpers (src/nn/conv_layers.c) ------------------------------------------------ */

/* A conv2d layer: weight [out_channels, C/groups, kh, kw] "<name>.weight", bias
 * [out_channels] "<name>.bias" (when `bias`), y = act(conv2d(x, weight, bias)). Both are drawn
 * as torch.nn.Conv2d's defaults: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
 * fan_in = C/groups * kh * kw (kaiming_uniform with a = sqrt(5)); rng NULL leaves them zero.
 * x must be 4-D [N, C, H, W]; `name` must be unique. */
DG_API dg_node *dg_conv2d_layer(dg_graph *g, dg_node *x, int64_t out_channels, int64_t kernel_h,
                                int64_t kernel_w, const dg_conv2d_params *params, bool bias,
                                dg_activation act, const char *name, dg_rng *rng);

/* A batch-norm layer (torch.nn.BatchNorm2d's defaults: gamma 1, beta 0, running mean 0,
 * running variance 1): parameters "<name>.weight", "<name>.bias" [C], running statistics as
 * constants returned through running_mean / running_var when not NULL (read them with dg_data
 * on a plan that contains them), the graph's run key (dg_dropout_key). momentum 0.1 and eps
 * 1e-5 are PyTorch's defaults. */
DG_API dg_node *dg_batch_norm_layer(dg_graph *g, dg_node *x, float momentum, float eps,
                                    const char *name, dg_node **running_mean,
                                    dg_node **running_var);

/* Square max / average pooling with stride = kernel and no padding (the common layer). */
DG_API dg_node *dg_max_pool2d_layer(dg_graph *g, dg_node *x, int64_t kernel);
DG_API dg_node *dg_avg_pool2d_layer(dg_graph *g, dg_node *x, int64_t kernel);
/* Global average pooling [N, C, H, W] -> [N, C]. */
DG_API dg_node *dg_global_avg_pool2d(dg_graph *g, dg_node *x);
/* [N, d1, d2, ...] -> [N, d1*d2*...] (a reshape with -1 batch, so it follows the batch). */
DG_API dg_node *dg_flatten(dg_graph *g, dg_node *x);

#ifdef __cplusplus
}
#endif

#endif
