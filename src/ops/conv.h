/*
 * The convolution family's attributes and kernels (conv.c, conv_kernels.c).
 */
#ifndef DG_CONV_H
#define DG_CONV_H

#include "op.h"

/* Attributes of every op in conv.c: a conv2d geometry. pad_end may be negative inside (the
 * conv2d that is the gradient of a conv_transpose2d with output_padding). kernel is set for
 * conv2d_weight_grad only (the others read it from their weight); output_padding for
 * conv_transpose2d only. */
struct dg__conv_attrs {
    int64_t stride[2], dilation[2], pad_begin[2], pad_end[2], output_padding[2], kernel[2];
    int64_t groups;
};

/* One conv2d: conv input x [batch, in_c, in_h, in_w], weight [out_c, in_c/groups, k_h, k_w],
 * conv output y [batch, out_c, out_h, out_w];
 *   y[n, o, i, j] = sum_{c, a, b} w[o, c, a, b] x[n, g*Cg + c, i*stride_h - pad_h + a*dil_h,
 *                                                  j*stride_w - pad_w + b*dil_w]
 * with g = o / (out_c/groups), Cg = in_c/groups, and x = 0 outside the image. */
struct dg__conv_geom {
    int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w, k_h, k_w, groups;
    int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};

/* The three kernels, for their scratch sizes. */
enum dg__conv_kernel { DG__CONV_FORWARD, DG__CONV_DATA, DG__CONV_WEIGHT };

/* Floats of workspace the kernel needs at this geometry and thread count (ctx->workspace;
 * with less, the kernel uses fewer threads or, below one thread's share, direct loops). */
size_t dg__conv_workspace_floats(const struct dg__conv_geom *geom, enum dg__conv_kernel kernel,
                                 int n_threads);

/* y = conv(x, w) (+ bias[o] on output channel o when bias != NULL). Scratch: ctx->workspace. */
void dg__conv_forward(const struct dg__conv_geom *geom, const float *x, const float *w,
                      const float *bias, float *y, const struct dg_exec_ctx *ctx);
/* x = conv^T(dy, w): the input gradient of a conv2d, i.e. conv_transpose2d's forward
 * (+ bias[c] on channel c of x when bias != NULL). x is overwritten. */
void dg__conv_backward_data(const struct dg__conv_geom *geom, const float *dy, const float *w,
                            const float *bias, float *x, const struct dg_exec_ctx *ctx);
/* dw = the weight gradient of a conv2d from x and dy. dw is overwritten. */
void dg__conv_backward_weight(const struct dg__conv_geom *geom, const float *x, const float *dy,
                              float *dw, const struct dg_exec_ctx *ctx);

/* The same three by direct loops, without scratch memory and single-threaded: the fallback
 * when scratch cannot be had, and the reference the kernel tests compare against. */
void dg__conv_forward_direct(const struct dg__conv_geom *geom, const float *x, const float *w,
                             const float *bias, float *y);
void dg__conv_backward_data_direct(const struct dg__conv_geom *geom, const float *dy,
                                   const float *w, const float *bias, float *x);
void dg__conv_backward_weight_direct(const struct dg__conv_geom *geom, const float *x,
                                     const float *dy, float *dw);

#endif
