/*
 * What batch_norm (batchnorm.c) and its fused gradients (batchnorm_grad.c) share: the
 * attributes, the per-channel statistics of a training run (synchronised across processes
 * when the plan has a collective, dg_plan_set_collective), and the composed formulas that the
 * fused gradients fall back to for their own gradients (second derivatives).
 */
#ifndef DG_BATCHNORM_H
#define DG_BATCHNORM_H

#include "op.h"

struct bn_attrs {
    float momentum, eps;
};

static inline const struct bn_attrs *bn_attrs(const void *attrs) { return attrs; }

/* x [batch, channels, spatial...] seen as three extents. */
struct bn_dims {
    int64_t batch, channels, spatial;
};

struct bn_dims dg__bn_dims(const struct dg_shape *x);

/* Workspace of every batch-norm kernel: (4 channels + 1) doubles. */
size_t dg__bn_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                        const struct dg_shape *inputs, const struct dg_shape *out,
                        int n_threads);

/* The batch statistics of a training run, in the kernel's workspace (valid until the kernel
 * returns). count: elements per channel over every process; mean, var: biased, per channel;
 * with dy: sum_dy[c] = sum of dy and sum_dy_xc[c] = sum of dy (x - mean_c) over channel c of
 * every process. */
struct bn_stats {
    double count;
    const double *mean, *var, *sum_dy, *sum_dy_xc;
};

/* Computes the statistics of x (and dy, when not NULL) over channel c in two rounds, each
 * summed across processes by ctx->collective when there is one: (per-channel sums, count),
 * then (per-channel centred sums of squares [, sums of dy and dy (x - mean)]) about the
 * global mean, which is numerically sound however large the mean. Each channel is summed by
 * one thread in a fixed order (bitwise identical at any thread count). Returns false after
 * reporting a failed collective through dg__exec_fault (op names the kernel). */
bool dg__bn_batch_stats(const struct dg_exec_ctx *ctx, const char *op, struct bn_dims d,
                        const float *x, const float *dy, struct bn_stats *stats);

/* Whether the run key (int32 {seed, step, training}) says training. */
static inline bool dg__bn_training(const struct dg_tensor *key)
{
    return ((const int32_t *)key->data)[2] != 0;
}

/* The gradient of batch_norm with respect to x and the normalised input x^ (both modes
 * blended by the run key), composed from ordinary ops: what the fused batch_norm_grad and
 * batch_norm_gamma_grad compute, used for their own gradients. gamma may be NULL. */
dg_node *dg__bn_composed_dx(dg_graph *g, dg_node *x, dg_node *running_mean,
                            dg_node *running_var, dg_node *key, dg_node *grad, dg_node *gamma,
                            float eps);
dg_node *dg__bn_composed_xhat(dg_graph *g, dg_node *x, dg_node *running_mean,
                              dg_node *running_var, dg_node *key, float eps);

#endif /* DG_BATCHNORM_H */
