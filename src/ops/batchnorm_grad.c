/*
 * The fused gradients of batch_norm (batchnorm.c), internal ops its backward rule builds:
 *
 *   batch_norm_grad(x, running_mean, running_var, key, g [, gamma]; eps) = dx   [like x]
 *     training:   dx = rstd (d - mean(d) - x^ mean(d x^)), d = g gamma,
 *                 x^ = (x - mean(x)) rstd, rstd = (var(x) + eps)^-1/2 (batch statistics)
 *     evaluation: dx = d (running_var + eps)^-1/2
 *   batch_norm_gamma_grad(x, running_mean, running_var, key, g; eps) = dgamma   [C]
 *     dgamma = sum of g x^ over every axis but 1 (x^ of the run's mode)
 *
 * One kernel each, in three passes over x (and g): the per-channel statistics recomputed
 * (dg__bn_batch_stats, with the sums of g and g (x - mean) riding along for dx), then one
 * elementwise pass dx = a g + b (x - mean) + c with per-channel a, b, c in double. Under a
 * plan collective (synchronised batch norm) the statistics and the dx sums are those of the
 * global batch, so dx is the gradient of the sum of every process's loss; dgamma stays the
 * local sum (the data-parallel gradient average adds the processes' parts).
 *
 * Their own gradients (second derivatives through batch norm) come from the composed formula
 * (dg__bn_composed_dx / dg__bn_composed_xhat, ordinary ops): the rule builds it and asks
 * dg_grad for the vector-Jacobian product sum(formula * upstream) with respect to fresh
 * proxies (x 1) of the inputs that need one, so that it gets partial derivatives even where
 * g or the upstream gradient depend on x. That part uses per-process statistics (it is not
 * synchronised).
 */
#include "batchnorm.h"
#include "dagrad_autodiff.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { BN_GRAD_DX, BN_GRAD_GAMMA };

static bool same_shape(const struct dg_shape *a, const struct dg_shape *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i])
            return false;
    return true;
}

/* Sum of g (x - m) over n elements: float lanes (vectorisable), double at the end; the order
 * depends on n only. */
static double row_dot_centred(const float *x, const float *g, float m, int64_t n)
{
    enum { LANES = 16 };
    float acc[LANES] = {0};
    double total = 0.0;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int j = 0; j < LANES; j++)
            acc[j] += g[i + j] * (x[i + j] - m);
        if ((i / LANES) % 64 == 63) { /* flush every 1024 elements */
            for (int j = 0; j < LANES; j++) {
                total += acc[j];
                acc[j] = 0.0f;
            }
        }
    }
    for (; i < n; i++)
        total += (double)g[i] * (double)(x[i] - m);
    for (int j = 0; j < LANES; j++)
        total += acc[j];
    return total;
}

static dg_status grad_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_shape *in, struct dg_shape *out, char *msg,
                            size_t len)
{
    char sx[128], sg[128], s1[128];
    dg__shape_str(&in[0], sx, sizeof sx);
    const int want = def->variant == BN_GRAD_DX ? (n_inputs == 6 ? 6 : 5) : 5;
    if (n_inputs != want)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: %d inputs", def->name,
                               n_inputs);
    if (in[0].dtype != DG_F32 || in[0].ndim < 2 || !same_shape(&in[0], &in[4]))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: x %s and the gradient %s must be "
                               "float32 [N, C, ...] of one shape", def->name, sx,
                               dg__shape_str(&in[4], sg, sizeof sg));
    const int64_t c = in[0].dim[1];
    for (int i = 1; i < n_inputs; i++) {
        if (i == 3 || i == 4)
            continue;
        if (in[i].dtype != DG_F32 || in[i].ndim != 1 || in[i].dim[0] != c)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: input %d %s must be float32 "
                                   "[%lld] for x %s", def->name, i,
                                   dg__shape_str(&in[i], s1, sizeof s1), (long long)c, sx);
    }
    if (in[3].dtype != DG_I32 || in[3].ndim != 1 || in[3].dim[0] != 3)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: the run key must be int32 [3], "
                               "got %s", def->name, dg__shape_str(&in[3], s1, sizeof s1));
    if (def->variant == BN_GRAD_DX)
        *out = in[0];
    else
        *out = (struct dg_shape){.dtype = DG_F32, .ndim = 1, .dim = {c}};
    return DG_OK;
}

/* dx = a g + b (x - m) + k per channel (a, b, k, m from the statistics). */
static void dx_forward(const struct bn_attrs *attrs, const struct dg_tensor *in, int n_inputs,
                       float *dx, const struct dg_exec_ctx *ctx)
{
    const struct bn_dims d = dg__bn_dims(&in[0].shape);
    const int64_t batch = d.batch, channels = d.channels, spatial = d.spatial;
    const float *x = in[0].data, *dy = in[4].data;
    const float *running_var = in[2].data;
    const float *gamma = n_inputs == 6 ? in[5].data : NULL;
    const bool training = dg__bn_training(&in[3]);
    struct bn_stats st = {0};
    if (training && !dg__bn_batch_stats(ctx, "batch_norm_grad", d, x, dy, &st)) {
        memset(dx, 0, (size_t)(batch * channels * spatial) * sizeof *dx);
        return;
    }
    const int threads = dg__threads_for(ctx, batch * channels * spatial);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t c = 0; c < channels; c++) {
        const double gc = gamma != NULL ? gamma[c] : 1.0;
        double a, b = 0.0, k = 0.0, mean = 0.0;
        if (training) {
            const double n = st.count > 0 ? st.count : 1.0;
            const double rstd = 1.0 / sqrt(st.var[c] + (double)attrs->eps);
            const double mean_d = gc * st.sum_dy[c] / n;
            const double mean_d_xhat = gc * rstd * st.sum_dy_xc[c] / n;
            a = rstd * gc;
            b = -rstd * rstd * mean_d_xhat;
            k = -rstd * mean_d;
            mean = st.mean[c];
        } else {
            a = gc / sqrt((double)running_var[c] + (double)attrs->eps);
        }
        const float fa = (float)a, fb = (float)b, fk = (float)k, fm = (float)mean;
        for (int64_t i = 0; i < batch; i++) {
            const int64_t at = (i * channels + c) * spatial;
            const float *p = x + at, *q = dy + at;
            float *r = dx + at;
            if (training)
                for (int64_t j = 0; j < spatial; j++)
                    r[j] = fa * q[j] + fb * (p[j] - fm) + fk;
            else /* g * gamma / sqrt(var + eps): x is not read (an infinite x gives no NaN) */
                for (int64_t j = 0; j < spatial; j++)
                    r[j] = fa * q[j];
        }
    }
}

/* dgamma[c] = rstd sum of g (x - mean) over channel c (this process's part). */
static void gamma_forward(const struct bn_attrs *attrs, const struct dg_tensor *in,
                          float *dgamma, const struct dg_exec_ctx *ctx)
{
    const struct bn_dims d = dg__bn_dims(&in[0].shape);
    const int64_t batch = d.batch, channels = d.channels, spatial = d.spatial;
    const float *x = in[0].data, *dy = in[4].data;
    const float *running_mean = in[1].data, *running_var = in[2].data;
    const bool training = dg__bn_training(&in[3]);
    struct bn_stats st = {0};
    if (training && !dg__bn_batch_stats(ctx, "batch_norm_gamma_grad", d, x, NULL, &st)) {
        memset(dgamma, 0, (size_t)channels * sizeof *dgamma);
        return;
    }
    const int threads = dg__threads_for(ctx, batch * channels * spatial);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t c = 0; c < channels; c++) {
        const double mean = training ? st.mean[c] : running_mean[c];
        const double var = training ? st.var[c] : running_var[c];
        const float m = (float)mean;
        double sum = 0.0;
        for (int64_t i = 0; i < batch; i++) {
            const int64_t at = (i * channels + c) * spatial;
            const float *p = x + at, *q = dy + at;
            sum += row_dot_centred(p, q, m, spatial);
        }
        dgamma[c] = (float)(sum / sqrt(var + (double)attrs->eps));
    }
}

static void grad_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                         const struct dg_tensor *in, struct dg_tensor *out,
                         const struct dg_exec_ctx *ctx)
{
    if (def->variant == BN_GRAD_DX)
        dx_forward(bn_attrs(attrs), in, n_inputs, out->data, ctx);
    else
        gamma_forward(bn_attrs(attrs), in, out->data, ctx);
}

/* The composed fallback (dg__composed_backward): the formula of dx or dgamma from ordinary ops,
 * differentiated for x, the running statistics, g and gamma (where needed; never the dropout
 * key, input 3). */
static dg_node *grad_formula(dg_graph *g, dg_node *node, dg_node *const *in, void *user)
{
    const struct dg_op_def *def = user;
    const struct bn_attrs *a = bn_attrs(dg__attrs(node));
    dg_node *x = in[0], *rm = in[1], *rv = in[2], *key = in[3], *grad = in[4];
    dg_node *gamma = dg__n_inputs(node) == 6 ? in[5] : NULL;
    if (def->variant == BN_GRAD_DX)
        return dg__bn_composed_dx(g, x, rm, rv, key, grad, gamma, a->eps);
    dg_node *xhat = dg__bn_composed_xhat(g, x, rm, rv, key, a->eps);
    const int nd = dg__node_shape(x)->ndim;
    int axes[DG_MAX_DIMS], k = 0;
    for (int i = 0; i < nd; i++)
        if (i != 1)
            axes[k++] = i;
    return dg_sum(g, dg_mul(g, grad, xhat), k, axes, false);
}

static dg_status grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *upstream, dg_node **gin)
{
    return dg__composed_backward(ctx, g, node, upstream, gin, 1u << 3, grad_formula,
                                 (void *)ctx->def);
}

static void grad_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "eps=%g", (double)bn_attrs(attrs)->eps);
}

const struct dg_op_def dg_op_batch_norm_grad = {
    .name = "batch_norm_grad", .n_inputs = -1, .variant = BN_GRAD_DX,
    .attrs_size = sizeof(struct bn_attrs), .infer = grad_infer, .forward = grad_forward,
    .backward = grad_backward, .label = grad_label, .workspace_bytes = dg__bn_workspace,
};

const struct dg_op_def dg_op_batch_norm_gamma_grad = {
    .name = "batch_norm_gamma_grad", .n_inputs = 5, .variant = BN_GRAD_GAMMA,
    .attrs_size = sizeof(struct bn_attrs), .infer = grad_infer, .forward = grad_forward,
    .backward = grad_backward, .label = grad_label, .workspace_bytes = dg__bn_workspace,
};
