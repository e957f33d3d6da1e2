/*
 * Batch normalisation over the channels of x [N, C, ...] (PyTorch's batch_norm), with the mode
 * a property of the run: the graph's run key (dg_dropout_key: int32 {seed, step, training},
 * fed by dg_fit / dg_evaluate / dg_dropout_feed_key) says training or evaluation, so one plan
 * serves both.
 *
 *   batch_norm(x, running_mean [C], running_var [C], key [, gamma [C], beta [C]]; momentum, eps)
 *   training: mean_c, var_c = the biased mean and variance of channel c over N and the spatial
 *             axes; y = (x - mean_c) / sqrt(var_c + eps) * gamma_c + beta_c; and, in place,
 *             running_mean = (1 - momentum) running_mean + momentum mean_c,
 *             running_var  = (1 - momentum) running_var + momentum var_c * n / (n - 1)
 *             (the unbiased variance, as PyTorch; n = elements per channel)
 *   evaluation: the same with running_mean / running_var, and nothing updated.
 *
 * The running statistics are state, not values: they must be constants (dg_constant), whose
 * storage the graph owns and every plan reads in place, so the training plan's update is what
 * the evaluation plan reads. The kernel writing them is the one exception to "a kernel writes
 * its output only"; it happens once per run of the op in training mode.
 *
 * batch_norm_mode(key) = 1.0 in training, 0.0 in evaluation (float32 scalar, zero gradient).
 *
 * Backward (from ordinary ops, so second derivatives work), with t = batch_norm_mode(key),
 * d = g * gamma, axes = all but 1:
 *   training:   x^ = (x - mean(x)) rstd, rstd = (var(x) + eps)^-1/2 (recomputed)
 *               dx_t = rstd (d - mean(d) - x^ mean(d x^))
 *   evaluation: x^ = (x - running_mean) rstd_r, dx_e = d rstd_r
 *   dx = t dx_t + (1 - t) dx_e;  dgamma = sum(g x^), dbeta = sum(g) over axes (x^ blended the
 *   same way). Both branches are built; the plan computes both (the price of one plan for both
 *   modes). The running statistics get the gradient of the evaluation formula times (1 - t)
 *   (zero in training, where the output does not read them); the key gets none.
 */
#include "op.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct bn_attrs {
    float momentum, eps;
};

static inline const struct bn_attrs *bn_attrs(const void *attrs) { return attrs; }

static bool is_channel_vector(const struct dg_shape *s, int64_t c)
{
    return s->dtype == DG_F32 && s->ndim == 1 && s->dim[0] == c;
}

static dg_status bn_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                          const struct dg_shape *in, struct dg_shape *out, char *msg, size_t len)
{
    char sx[128], s1[128], s2[128], s3[128];
    dg__shape_str(&in[0], sx, sizeof sx);
    if (n_inputs != 4 && n_inputs != 6)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "batch_norm: %d inputs", n_inputs);
    if (in[0].dtype != DG_F32 || in[0].ndim < 2)
        return dg__shape_error(msg, len, in[0].dtype != DG_F32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                               "batch_norm: input must be float32 [N, C, ...], got %s", sx);
    int64_t c = in[0].dim[1];
    bool ok = is_channel_vector(&in[1], c) && is_channel_vector(&in[2], c);
    if (n_inputs == 6)
        ok = ok && is_channel_vector(&in[4], c) && is_channel_vector(&in[5], c);
    if (!ok)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "batch_norm: running statistics %s, %s "
                               "(and gamma, beta) must be float32 [%lld] for input %s",
                               dg__shape_str(&in[1], s1, sizeof s1),
                               dg__shape_str(&in[2], s2, sizeof s2), (long long)c, sx);
    if (in[3].dtype != DG_I32 || in[3].ndim != 1 || in[3].dim[0] != 3)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "batch_norm: the run key must be int32 "
                               "[3] (dg_dropout_key), got %s", dg__shape_str(&in[3], s3, sizeof s3));
    const struct bn_attrs *a = bn_attrs(attrs);
    if (!(a->momentum >= 0.0f && a->momentum <= 1.0f) || !(a->eps >= 0.0f) || !isfinite(a->eps))
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "batch_norm: momentum %g must be in "
                               "[0, 1] and eps %g finite and >= 0 (input %s)",
                               (double)a->momentum, (double)a->eps, sx);
    *out = in[0];
    return DG_OK;
}

static void bn_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                       const struct dg_tensor *in, struct dg_tensor *out,
                       const struct dg_exec_ctx *ctx)
{
    const struct bn_attrs *a = bn_attrs(attrs);
    const struct dg_shape *xs = &in[0].shape;
    const int64_t batch = xs->dim[0], channels = xs->dim[1];
    int64_t spatial = 1;
    for (int i = 2; i < xs->ndim; i++)
        spatial *= xs->dim[i];
    const float *x = in[0].data;
    float *running_mean = in[1].data, *running_var = in[2].data; /* state: updated in place */
    const bool training = ((const int32_t *)in[3].data)[2] != 0;
    const float *gamma = n_inputs == 6 ? in[4].data : NULL;
    const float *beta = n_inputs == 6 ? in[5].data : NULL;
    float *y = out->data;
    const int64_t n = batch * spatial;
    const int threads = dg__threads_for(ctx, batch * channels * spatial);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t c = 0; c < channels; c++) {
        double mean, var;
        if (training) {
            double sum = 0.0, sq = 0.0;
            for (int64_t b = 0; b < batch; b++) {
                const float *p = x + (b * channels + c) * spatial;
                for (int64_t i = 0; i < spatial; i++)
                    sum += p[i];
            }
            mean = n > 0 ? sum / (double)n : 0.0;
            for (int64_t b = 0; b < batch; b++) {
                const float *p = x + (b * channels + c) * spatial;
                for (int64_t i = 0; i < spatial; i++) {
                    double d = p[i] - mean;
                    sq += d * d;
                }
            }
            var = n > 0 ? sq / (double)n : 0.0;
            double unbiased = n > 1 ? sq / (double)(n - 1) : var;
            running_mean[c] = (float)((1.0 - a->momentum) * running_mean[c] + a->momentum * mean);
            running_var[c] = (float)((1.0 - a->momentum) * running_var[c] + a->momentum * unbiased);
        } else {
            mean = running_mean[c];
            var = running_var[c];
        }
        float m = (float)mean, s = (float)(1.0 / sqrt(var + (double)a->eps));
        float scale = gamma != NULL ? s * gamma[c] : s, shift = beta != NULL ? beta[c] : 0.0f;
        for (int64_t b = 0; b < batch; b++) {
            const float *p = x + (b * channels + c) * spatial;
            float *q = y + (b * channels + c) * spatial;
            for (int64_t i = 0; i < spatial; i++)
                q[i] = (p[i] - m) * scale + shift;
        }
    }
}

static dg_node *channel_sum(dg_graph *g, dg_node *v, int ndim, bool keep)
{
    int axes[DG_MAX_DIMS], n = 0;
    for (int i = 0; i < ndim; i++)
        if (i != 1)
            axes[n++] = i;
    return dg_sum(g, v, n, axes, keep);
}

static dg_node *channel_mean(dg_graph *g, dg_node *v, int ndim)
{
    int axes[DG_MAX_DIMS], n = 0;
    for (int i = 0; i < ndim; i++)
        if (i != 1)
            axes[n++] = i;
    return dg_mean(g, v, n, axes, true);
}

/* A [C] vector as [C, 1, ...] (ndim - 1 axes), broadcastable against x [N, C, ...]. */
static dg_node *per_channel(dg_graph *g, dg_node *v, const struct dg_shape *xs)
{
    int64_t shape[DG_MAX_DIMS];
    shape[0] = xs->dim[1];
    for (int i = 2; i < xs->ndim; i++)
        shape[i - 1] = 1;
    return dg_reshape(g, v, xs->ndim - 1, shape);
}

static dg_status bn_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                             dg_node *grad, dg_node **gin)
{
    const struct bn_attrs *a = bn_attrs(dg__attrs(node));
    dg_node *x = dg__input(node, 0), *rm = dg__input(node, 1), *rv = dg__input(node, 2);
    dg_node *key = dg__input(node, 3);
    const int n = dg__n_inputs(node);
    dg_node *gamma = n == 6 ? dg__input(node, 4) : NULL;
    const struct dg_shape *xs = dg__node_shape(x);
    const int nd = xs->ndim;
    dg_node *t = dg__make_node(g, DG_OP_batch_norm_mode, 1, (dg_node *[]){key}, NULL);
    dg_node *one_minus_t = dg_add_scalar(g, dg_neg(g, t), 1.0f);
    /* training branch: batch statistics */
    dg_node *centred = dg_sub(g, x, channel_mean(g, x, nd));
    dg_node *rstd_b = dg_pow_scalar(g, dg_add_scalar(g, channel_mean(g, dg_square(g, centred), nd),
                                                     a->eps), -0.5f);
    dg_node *xhat_b = dg_mul(g, centred, rstd_b);
    /* evaluation branch: running statistics (constants: no gradient) */
    dg_node *rstd_r = dg_pow_scalar(g, dg_add_scalar(g, per_channel(g, rv, xs), a->eps), -0.5f);
    dg_node *xhat_r = dg_mul(g, dg_sub(g, x, per_channel(g, rm, xs)), rstd_r);
    dg_node *d = gamma != NULL ? dg_mul(g, grad, per_channel(g, gamma, xs)) : grad;
    if (dg__grad_needed(ctx, 0)) {
        dg_node *mean_d = channel_mean(g, d, nd);
        dg_node *mean_dx = channel_mean(g, dg_mul(g, d, xhat_b), nd);
        dg_node *dx_t = dg_mul(g, rstd_b, dg_sub(g, dg_sub(g, d, mean_d), dg_mul(g, xhat_b, mean_dx)));
        dg_node *dx_e = dg_mul(g, d, rstd_r);
        gin[0] = dg_add(g, dg_mul(g, t, dx_t), dg_mul(g, one_minus_t, dx_e));
    }
    /* evaluation reads the running statistics: their (smooth) gradient, zero in training */
    if (dg__grad_needed(ctx, 1))
        gin[1] = dg_mul(g, one_minus_t, dg_neg(g, channel_sum(g, dg_mul(g, d, rstd_r), nd, false)));
    if (dg__grad_needed(ctx, 2)) {
        dg_node *cube = dg_pow_scalar(g, dg_add_scalar(g, per_channel(g, rv, xs), a->eps), -1.5f);
        dg_node *centred_r = dg_sub(g, x, per_channel(g, rm, xs));
        gin[2] = dg_mul(g, one_minus_t,
                        dg_scale(g, channel_sum(g, dg_mul(g, dg_mul(g, d, centred_r), cube), nd,
                                                false), -0.5f));
    }
    if (gamma != NULL && dg__grad_needed(ctx, 4)) {
        dg_node *xhat = dg_add(g, dg_mul(g, t, xhat_b), dg_mul(g, one_minus_t, xhat_r));
        gin[4] = channel_sum(g, dg_mul(g, grad, xhat), nd, false);
    }
    if (gamma != NULL && dg__grad_needed(ctx, 5))
        gin[5] = channel_sum(g, grad, nd, false);
    return dg_graph_status(g);
}

static void bn_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "momentum=%g eps=%g", (double)bn_attrs(attrs)->momentum,
             (double)bn_attrs(attrs)->eps);
}

const struct dg_op_def dg_op_batch_norm = {
    .name = "batch_norm", .n_inputs = -1, .attrs_size = sizeof(struct bn_attrs),
    .infer = bn_infer, .forward = bn_forward, .backward = bn_backward, .label = bn_label,
};

static dg_status mode_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_shape *in, struct dg_shape *out, char *msg,
                            size_t len)
{
    char buf[128];
    if (in[0].dtype != DG_I32 || in[0].ndim != 1 || in[0].dim[0] != 3)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "batch_norm_mode: the run key must be "
                               "int32 [3], got %s", dg__shape_str(&in[0], buf, sizeof buf));
    *out = (struct dg_shape){.dtype = DG_F32, .ndim = 0};
    return DG_OK;
}

static void mode_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                         const struct dg_tensor *in, struct dg_tensor *out,
                         const struct dg_exec_ctx *ctx)
{
    *(float *)out->data = ((const int32_t *)in[0].data)[2] != 0 ? 1.0f : 0.0f;
}

/* 1.0 in a training run, 0.0 in evaluation: piecewise constant, zero gradient. */
const struct dg_op_def dg_op_batch_norm_mode = {
    .name = "batch_norm_mode", .n_inputs = 1,
    .infer = mode_infer, .forward = mode_forward, .backward = dg__zero_grad,
};

dg_node *dg_batch_norm(dg_graph *g, dg_node *x, dg_node *gamma, dg_node *beta,
                       dg_node *running_mean, dg_node *running_var, dg_node *key,
                       float momentum, float eps)
{
    if (g == NULL || dg_graph_status(g) != DG_OK)
        return NULL;
    if ((gamma == NULL) != (beta == NULL))
        return dg__fail(g, DG_ERR_INVALID_ARG, "batch_norm: gamma and beta must be given "
                        "together");
    if (running_mean == NULL || running_var == NULL || key == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "batch_norm: running statistics and the run key "
                        "are required");
    if (dg_node_kind_of(running_mean) != DG_NODE_CONSTANT ||
        dg_node_kind_of(running_var) != DG_NODE_CONSTANT)
        return dg__fail(g, DG_ERR_INVALID_ARG, "batch_norm: running statistics must be "
                        "constants (dg_constant: state the graph owns), got nodes %d and %d",
                        dg_node_index(running_mean), dg_node_index(running_var));
    struct bn_attrs a = {.momentum = momentum, .eps = eps};
    dg_node *in[6] = {x, running_mean, running_var, key, gamma, beta};
    return dg__make_node(g, DG_OP_batch_norm, gamma != NULL ? 6 : 4, in, &a);
}
