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
 * Synchronised batch norm: when the plan has a collective (dg_plan_set_collective), the
 * training statistics are those of the global batch, summed across the processes in two
 * rounds (dg__bn_batch_stats): the count and per-channel sums, then the centred sums of
 * squares about the global mean. n is then the global count.
 *
 * Statistics are accumulated per channel by one thread in a fixed order (float lanes within
 * blocks of 1024 elements, double across blocks): bitwise identical at any thread count.
 *
 * Backward, with d = g * gamma, axes = all but 1:
 *   training:   x^ = (x - mean(x)) rstd, rstd = (var(x) + eps)^-1/2 (recomputed)
 *               dx = rstd (d - mean(d) - x^ mean(d x^))
 *   evaluation: x^ = (x - running_mean) rstd_r, dx = d rstd_r
 *   dgamma = sum(g x^), dbeta = sum(g) over axes.
 * dx and dgamma are the fused ops batch_norm_grad and batch_norm_gamma_grad
 * (batchnorm_grad.c: one kernel each, reading the mode from the key, synchronised like the
 * forward); dbeta is a sum. The running statistics get the gradient of the evaluation formula
 * times (1 - t), t = batch_norm_mode(key) (zero in training, where the output does not read
 * them), composed from ordinary ops; the key gets none.
 */
#include "batchnorm.h"
#include "dagrad_autodiff.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

struct bn_dims dg__bn_dims(const struct dg_shape *x)
{
    struct bn_dims d = {.batch = x->dim[0], .channels = x->dim[1], .spatial = 1};
    for (int i = 2; i < x->ndim; i++)
        d.spatial *= x->dim[i];
    return d;
}

size_t dg__bn_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                        const struct dg_shape *inputs, const struct dg_shape *out,
                        int n_threads)
{
    return (size_t)(4 * inputs[0].dim[1] + 1) * sizeof(double);
}

/* Float lanes within blocks of BN_BLOCK elements (vectorisable, and exact enough: 64 terms a
 * lane), double across blocks. The order depends on n only. */
enum { BN_LANES = 16, BN_BLOCK = 1024 };

static double row_sum(const float *p, int64_t n)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += BN_BLOCK) {
        const int64_t len = n - start < BN_BLOCK ? n - start : BN_BLOCK;
        const float *q = p + start;
        float acc[BN_LANES] = {0};
        int64_t i = 0;
        for (; i + BN_LANES <= len; i += BN_LANES)
            for (int j = 0; j < BN_LANES; j++)
                acc[j] += q[i + j];
        double block = 0.0;
        for (; i < len; i++)
            block += q[i];
        for (int j = 0; j < BN_LANES; j++)
            block += acc[j];
        total += block;
    }
    return total;
}

/* Sums of (x - m)^2 and, with dy, of dy and dy (x - m), over n elements: out[0..2]. */
static void row_centred(const float *x, const float *dy, float m, int64_t n, double out[3])
{
    for (int64_t start = 0; start < n; start += BN_BLOCK) {
        const int64_t len = n - start < BN_BLOCK ? n - start : BN_BLOCK;
        const float *p = x + start;
        float sq[BN_LANES] = {0}, sd[BN_LANES] = {0}, sdx[BN_LANES] = {0};
        int64_t i = 0;
        if (dy == NULL) {
            for (; i + BN_LANES <= len; i += BN_LANES)
                for (int j = 0; j < BN_LANES; j++) {
                    float c = p[i + j] - m;
                    sq[j] += c * c;
                }
        } else {
            const float *q = dy + start;
            for (; i + BN_LANES <= len; i += BN_LANES)
                for (int j = 0; j < BN_LANES; j++) {
                    float c = p[i + j] - m;
                    sq[j] += c * c;
                    sd[j] += q[i + j];
                    sdx[j] += q[i + j] * c;
                }
        }
        double b_sq = 0.0, b_sd = 0.0, b_sdx = 0.0;
        for (; i < len; i++) {
            double c = (double)(p[i] - m);
            b_sq += c * c;
            if (dy != NULL) {
                b_sd += dy[start + i];
                b_sdx += dy[start + i] * c;
            }
        }
        for (int j = 0; j < BN_LANES; j++) {
            b_sq += sq[j];
            b_sd += sd[j];
            b_sdx += sdx[j];
        }
        out[0] += b_sq;
        out[1] += b_sd;
        out[2] += b_sdx;
    }
}

static bool sum_across(const struct dg_exec_ctx *ctx, const char *op, double *values,
                       int64_t n, const char *what)
{
    if (ctx->collective == NULL)
        return true;
    int rc = ctx->collective(ctx->collective_user, values, n);
    if (rc != 0) {
        dg__exec_fault(ctx, "%s: the plan's collective failed (returned %d) summing %lld "
                       "%s across processes", op, rc, (long long)n, what);
        return false;
    }
    return true;
}

bool dg__bn_batch_stats(const struct dg_exec_ctx *ctx, const char *op, struct bn_dims d,
                        const float *x, const float *dy, struct bn_stats *stats)
{
    const int64_t channels = d.channels, spatial = d.spatial, batch = d.batch;
    double *first = ctx->workspace;          /* [channels + 1]: sums then means, count */
    double *second = first + channels + 1;   /* [3 channels]: centred squares, dy, dy xc */
    const int threads = dg__threads_for(ctx, batch * channels * spatial);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t c = 0; c < channels; c++) {
        double sum = 0.0;
        for (int64_t b = 0; b < batch; b++)
            sum += row_sum(x + (b * channels + c) * spatial, spatial);
        first[c] = sum;
    }
    first[channels] = (double)(batch * spatial);
    if (!sum_across(ctx, op, first, channels + 1, "per-channel sums"))
        return false;
    const double count = first[channels];
    for (int64_t c = 0; c < channels; c++)
        first[c] = count > 0 ? first[c] / count : 0.0;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t c = 0; c < channels; c++) {
        double acc[3] = {0.0, 0.0, 0.0};
        const float m = (float)first[c];
        for (int64_t b = 0; b < batch; b++) {
            int64_t at = (b * channels + c) * spatial;
            row_centred(x + at, dy != NULL ? dy + at : NULL, m, spatial, acc);
        }
        /* the rows were centred on the float mean m: move the sums to the double mean */
        const double shift = first[c] - (double)m;
        second[c] = acc[0] - (double)(batch * spatial) * shift * shift;
        second[channels + c] = acc[1];
        second[2 * channels + c] = acc[2] - acc[1] * shift;
    }
    if (!sum_across(ctx, op, second, dy != NULL ? 3 * channels : channels,
                    dy != NULL ? "per-channel centred squares and gradient sums"
                               : "per-channel centred squares"))
        return false;
    for (int64_t c = 0; c < channels; c++)
        second[c] = count > 0 ? second[c] / count : 0.0;
    *stats = (struct bn_stats){
        .count = count, .mean = first, .var = second,
        .sum_dy = dy != NULL ? second + channels : NULL,
        .sum_dy_xc = dy != NULL ? second + 2 * channels : NULL,
    };
    return true;
}

static void bn_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                       const struct dg_tensor *in, struct dg_tensor *out,
                       const struct dg_exec_ctx *ctx)
{
    const struct bn_attrs *a = bn_attrs(attrs);
    const struct bn_dims d = dg__bn_dims(&in[0].shape);
    const int64_t batch = d.batch, channels = d.channels, spatial = d.spatial;
    const float *x = in[0].data;
    float *running_mean = in[1].data, *running_var = in[2].data; /* state: updated in place */
    const bool training = dg__bn_training(&in[3]);
    const float *gamma = n_inputs == 6 ? in[4].data : NULL;
    const float *beta = n_inputs == 6 ? in[5].data : NULL;
    float *y = out->data;
    struct bn_stats st = {0};
    if (training) {
        if (!dg__bn_batch_stats(ctx, "batch_norm", d, x, NULL, &st)) {
            memset(y, 0, (size_t)(batch * channels * spatial) * sizeof *y);
            return; /* the run stops; the running statistics stay as they were */
        }
        for (int64_t c = 0; c < channels; c++) {
            double unbiased = st.count > 1 ? st.var[c] * st.count / (st.count - 1) : st.var[c];
            running_mean[c] = (float)((1.0 - a->momentum) * running_mean[c] +
                                      a->momentum * st.mean[c]);
            running_var[c] = (float)((1.0 - a->momentum) * running_var[c] +
                                     a->momentum * unbiased);
        }
    }
    const int threads = dg__threads_for(ctx, batch * channels * spatial);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t c = 0; c < channels; c++) {
        /* training reads the batch statistics; evaluation the running ones (the update above
         * is not seen: it happens in training only) */
        double mean = training ? st.mean[c] : running_mean[c];
        double var = training ? st.var[c] : running_var[c];
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

/* The two branches' normalised inputs and inverse deviations, and the blend weight t. */
struct bn_composed {
    dg_node *t, *one_minus_t, *xhat_b, *rstd_b, *xhat_r, *rstd_r;
};

static struct bn_composed composed(dg_graph *g, dg_node *x, dg_node *rm, dg_node *rv,
                                   dg_node *key, float eps)
{
    const struct dg_shape *xs = dg__node_shape(x);
    const int nd = xs->ndim;
    struct bn_composed c;
    c.t = dg__make_node(g, DG_OP_batch_norm_mode, 1, (dg_node *[]){key}, NULL);
    c.one_minus_t = dg_add_scalar(g, dg_neg(g, c.t), 1.0f);
    dg_node *centred = dg_sub(g, x, channel_mean(g, x, nd));
    c.rstd_b = dg_pow_scalar(g, dg_add_scalar(g, channel_mean(g, dg_square(g, centred), nd), eps),
                             -0.5f);
    c.xhat_b = dg_mul(g, centred, c.rstd_b);
    c.rstd_r = dg_pow_scalar(g, dg_add_scalar(g, per_channel(g, rv, xs), eps), -0.5f);
    c.xhat_r = dg_mul(g, dg_sub(g, x, per_channel(g, rm, xs)), c.rstd_r);
    return c;
}

dg_node *dg__bn_composed_dx(dg_graph *g, dg_node *x, dg_node *rm, dg_node *rv, dg_node *key,
                            dg_node *grad, dg_node *gamma, float eps)
{
    if (dg_graph_status(g) != DG_OK)
        return NULL;
    const struct dg_shape *xs = dg__node_shape(x);
    const int nd = xs->ndim;
    struct bn_composed c = composed(g, x, rm, rv, key, eps);
    dg_node *d = gamma != NULL ? dg_mul(g, grad, per_channel(g, gamma, xs)) : grad;
    dg_node *mean_d = channel_mean(g, d, nd);
    dg_node *mean_dx = channel_mean(g, dg_mul(g, d, c.xhat_b), nd);
    dg_node *dx_t = dg_mul(g, c.rstd_b, dg_sub(g, dg_sub(g, d, mean_d), dg_mul(g, c.xhat_b, mean_dx)));
    dg_node *dx_e = dg_mul(g, d, c.rstd_r);
    return dg_add(g, dg_mul(g, c.t, dx_t), dg_mul(g, c.one_minus_t, dx_e));
}

dg_node *dg__bn_composed_xhat(dg_graph *g, dg_node *x, dg_node *rm, dg_node *rv, dg_node *key,
                              float eps)
{
    if (dg_graph_status(g) != DG_OK)
        return NULL;
    struct bn_composed c = composed(g, x, rm, rv, key, eps);
    return dg_add(g, dg_mul(g, c.t, c.xhat_b), dg_mul(g, c.one_minus_t, c.xhat_r));
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
    struct bn_attrs attrs = {.momentum = 0.0f, .eps = a->eps};
    if (dg__grad_needed(ctx, 0))
        gin[0] = dg__make_node(g, DG_OP_batch_norm_grad, gamma != NULL ? 6 : 5,
                               (dg_node *[]){x, rm, rv, key, grad, gamma}, &attrs);
    if (dg__grad_needed(ctx, 1) || dg__grad_needed(ctx, 2)) {
        /* evaluation reads the running statistics: their (smooth) gradient, zero in
         * training */
        dg_node *t = dg__make_node(g, DG_OP_batch_norm_mode, 1, (dg_node *[]){key}, NULL);
        dg_node *one_minus_t = dg_add_scalar(g, dg_neg(g, t), 1.0f);
        dg_node *d = gamma != NULL ? dg_mul(g, grad, per_channel(g, gamma, xs)) : grad;
        dg_node *var_eps = dg_add_scalar(g, per_channel(g, rv, xs), a->eps);
        if (dg__grad_needed(ctx, 1))
            gin[1] = dg_mul(g, one_minus_t,
                            dg_neg(g, channel_sum(g, dg_mul(g, d, dg_pow_scalar(g, var_eps, -0.5f)),
                                                  nd, false)));
        if (dg__grad_needed(ctx, 2)) {
            dg_node *centred_r = dg_sub(g, x, per_channel(g, rm, xs));
            dg_node *cube = dg_pow_scalar(g, var_eps, -1.5f);
            gin[2] = dg_mul(g, one_minus_t,
                            dg_scale(g, channel_sum(g, dg_mul(g, dg_mul(g, d, centred_r), cube),
                                                    nd, false), -0.5f));
        }
    }
    if (gamma != NULL && dg__grad_needed(ctx, 4))
        gin[4] = dg__make_node(g, DG_OP_batch_norm_gamma_grad, 5,
                               (dg_node *[]){x, rm, rv, key, grad}, &attrs);
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
    .workspace_bytes = dg__bn_workspace,
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
