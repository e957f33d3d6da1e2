/*
 * Layer and group normalisation: one kernel normalising rows of M contiguous elements.
 *
 *   layer_norm(x [..., d1..dk], gamma [d1..dk], beta [d1..dk]; eps), k = gamma's rank:
 *       rows = the last k axes (M = d1*...*dk), affine per position in the row
 *   group_norm(x [N, C, ...], gamma [C], beta [C]; groups G, eps):
 *       rows = (n, group) (M = C/G * spatial), affine per channel
 *   mu = mean(row), var = mean((row - mu)^2) (biased, as PyTorch), rstd = 1 / sqrt(var + eps)
 *   y = (x - mu) * rstd * gamma + beta          (gamma and beta may both be absent)
 *
 * Forward: one fused pass per row by the one thread that owns it (mean and variance in 32
 * float lanes added in double in a fixed order, simd/norm_rows.h: the same bits for any
 * thread count, and on the portable and AVX-512 paths).
 * Backward, with xhat = (x - mu) * rstd recomputed and d = g * gamma:
 *   dx = rstd * (d - mean(d) - xhat * mean(d * xhat))   (means over the row)
 *   dgamma = sum of g * xhat over everything but gamma's axes;  dbeta = the same of g.
 * layer_norm: dx and dgamma are the fused ops layer_norm_grad and layer_norm_gamma_grad
 * (norm_grad.c, one kernel each); dbeta is a sum. group_norm: built from ordinary ops on the
 * rows as a [-1, M] reshape (dg__norm_composed_dx), which is also the formula the fused ops
 * differentiate for second derivatives.
 */
#include "norm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool same_dims(const struct dg_shape *a, const int64_t *dims, int n)
{
    if (a->dtype != DG_F32 || a->ndim != n)
        return false;
    for (int i = 0; i < n; i++)
        if (a->dim[i] != dims[i])
            return false;
    return true;
}

static dg_status norm_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_shape *in, struct dg_shape *out, char *msg,
                            size_t len)
{
    const struct norm_attrs *a = norm_attrs(attrs);
    char sx[128], sg[128], sb[128];
    dg__shape_str(&in[0], sx, sizeof sx);
    if (n_inputs != 1 && n_inputs != 3)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: %d inputs (x, or x, gamma "
                               "and beta)", def->name, n_inputs);
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: input must be float32, got int32 %s",
                               def->name, sx);
    if (!(a->eps >= 0.0f) || !isfinite(a->eps))
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: eps %g must be finite and "
                               ">= 0 (input %s)", def->name, (double)a->eps, sx);
    const int64_t *affine_dims;
    int affine_ndim;
    int64_t channel[1];
    if (def->variant == NORM_LAYER) {
        if (a->n_axes < 1 || a->n_axes > in[0].ndim)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: cannot normalise the last %lld "
                                   "axes of %s", def->name, (long long)a->n_axes, sx);
        affine_ndim = (int)a->n_axes;
        affine_dims = in[0].dim + in[0].ndim - a->n_axes;
    } else {
        if (in[0].ndim < 2)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: input must be [N, C, ...], got "
                                   "%s", def->name, sx);
        if (a->groups < 1 || in[0].dim[1] % a->groups != 0)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: %lld channels of %s are not "
                                   "divisible into %lld groups", def->name,
                                   (long long)in[0].dim[1], sx, (long long)a->groups);
        channel[0] = in[0].dim[1];
        affine_ndim = 1;
        affine_dims = channel;
    }
    if (n_inputs == 3 && (!same_dims(&in[1], affine_dims, affine_ndim) ||
                          !same_dims(&in[2], affine_dims, affine_ndim)))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: gamma %s and beta %s must be "
                               "float32 shaped like the %s of %s", def->name,
                               dg__shape_str(&in[1], sg, sizeof sg),
                               dg__shape_str(&in[2], sb, sizeof sb),
                               def->variant == NORM_LAYER ? "normalised axes" : "channels", sx);
    *out = in[0];
    return DG_OK;
}

/* Rows, row length, and the spatial size per channel (group_norm) of a shape. */
static void rows_of(const struct dg_op_def *def, const struct norm_attrs *a,
                    const struct dg_shape *x, int64_t *rows, int64_t *length, int64_t *spatial)
{
    int64_t numel = dg__numel(x);
    if (def->variant == NORM_LAYER) {
        dg__layer_norm_rows(x, a->n_axes, rows, length);
        *spatial = 1;
        return;
    } else {
        *spatial = 1;
        for (int i = 2; i < x->ndim; i++)
            *spatial *= x->dim[i];
        *length = x->dim[1] / a->groups * *spatial;
    }
    *rows = *length > 0 ? numel / *length : 0;
}

void dg__layer_norm_rows(const struct dg_shape *x, int64_t n_axes, int64_t *rows,
                         int64_t *length)
{
    *length = 1;
    for (int64_t i = x->ndim - n_axes; i < x->ndim; i++)
        *length *= x->dim[i];
    *rows = *length > 0 ? dg__numel(x) / *length : 0;
}

/* sum of x[j] - shift (square: of (x[j] - shift)^2) as simd/norm_rows.h describes: 32 float
 * lanes as eight norm_v4 accumulators (four-deep chains on a row of 128) within blocks of
 * NORM_BLOCK elements (at most 32 terms a lane), the rest of a block and the lanes in double;
 * the same operations, in the same order, as the AVX-512 kernel (simd/norm_avx512.c). */
static double row_sum(const float *x, int64_t n, float shift, bool square)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += NORM_BLOCK) {
        const int64_t len = n - start < NORM_BLOCK ? n - start : NORM_BLOCK;
        const float *p = x + start;
        norm_v4 a = {0}, b = {0}, c = {0}, d = {0}, e = {0}, f = {0}, g = {0}, h = {0};
        int64_t j = 0;
        if (square) {
            for (; j + NORM_STEP <= len; j += NORM_STEP) {
                norm_v4 va = norm_load4(p + j) - shift, vb = norm_load4(p + j + 4) - shift;
                norm_v4 vc = norm_load4(p + j + 8) - shift, vd = norm_load4(p + j + 12) - shift;
                norm_v4 ve = norm_load4(p + j + 16) - shift, vf = norm_load4(p + j + 20) - shift;
                norm_v4 vg = norm_load4(p + j + 24) - shift, vh = norm_load4(p + j + 28) - shift;
                a += va * va;
                b += vb * vb;
                c += vc * vc;
                d += vd * vd;
                e += ve * ve;
                f += vf * vf;
                g += vg * vg;
                h += vh * vh;
            }
        } else {
            for (; j + NORM_STEP <= len; j += NORM_STEP) {
                a += norm_load4(p + j) - shift;
                b += norm_load4(p + j + 4) - shift;
                c += norm_load4(p + j + 8) - shift;
                d += norm_load4(p + j + 12) - shift;
                e += norm_load4(p + j + 16) - shift;
                f += norm_load4(p + j + 20) - shift;
                g += norm_load4(p + j + 24) - shift;
                h += norm_load4(p + j + 28) - shift;
            }
        }
        double block = 0.0;
        for (; j < len; j++) {
            double v = (double)(p[j] - shift);
            block += square ? v * v : v;
        }
        total += block + norm_total4(a + e, b + f, c + g, d + h);
    }
    return total;
}

void dg__norm_stats_generic(const float *row, int64_t n, float eps, double *mean, double *rstd)
{
    *mean = norm_mean(row_sum(row, n, 0.0f, false), n);
    *rstd = norm_rstd(*mean, row_sum(row, n, (float)*mean, true), n, eps);
}

void dg__norm_forward_row_generic(const float *x, const float *gamma, const float *beta,
                                  int64_t n, float eps, float *y)
{
    double mean, rstd;
    dg__norm_stats_generic(x, n, eps, &mean, &rstd);
    const float m = (float)mean, s = (float)rstd;
    if (gamma == NULL)
        for (int64_t j = 0; j < n; j++)
            y[j] = (x[j] - m) * s;
    else
        for (int64_t j = 0; j < n; j++)
            y[j] = (x[j] - m) * s * gamma[j] + beta[j];
}

static void norm_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                         const struct dg_tensor *in, struct dg_tensor *out,
                         const struct dg_exec_ctx *ctx)
{
    const struct norm_attrs *a = norm_attrs(attrs);
    int64_t rows, length, spatial;
    rows_of(def, a, &in[0].shape, &rows, &length, &spatial);
    const float *x = in[0].data;
    const float *gamma = n_inputs == 3 ? in[1].data : NULL;
    const float *beta = n_inputs == 3 ? in[2].data : NULL;
    float *y = out->data;
    const bool group = def->variant == NORM_GROUP;
    const int64_t channels_per_group = group ? length / spatial : 0;
    const struct dg_norm_rows *kernels = dg__norm_rows();
    const int threads = dg__threads_for(ctx, rows * length);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * length;
        float *dst = y + r * length;
        if (!group || gamma == NULL) {
            kernels->forward_row(row, gamma, beta, length, a->eps, dst);
        } else {
            double mean, rstd;
            kernels->stats(row, length, a->eps, &mean, &rstd);
            const float m = (float)mean, s = (float)rstd;
            int64_t first = (r % a->groups) * channels_per_group;
            for (int64_t c = 0; c < channels_per_group; c++) {
                float gc = gamma[first + c], bc = beta[first + c];
                const float *src = row + c * spatial;
                float *d = dst + c * spatial;
                for (int64_t j = 0; j < spatial; j++)
                    d[j] = (src[j] - m) * s * gc + bc;
            }
        }
    }
}

/* The axes of x other than axis 1 (group_norm's per-channel sums). */
static dg_node *sum_but_channels(dg_graph *g, dg_node *v, int ndim)
{
    int axes[DG_MAX_DIMS], n = 0;
    for (int i = 0; i < ndim; i++)
        if (i != 1)
            axes[n++] = i;
    return dg_sum(g, v, n, axes, false);
}

/* x^ and rstd on the rows of x as [-1, length]; x2 the reshaped x. */
static dg_node *composed_rows(dg_graph *g, dg_node *x, int64_t length, float eps,
                              dg_node **rstd)
{
    dg_node *x2 = dg_reshape(g, x, 2, (int64_t[]){-1, length});
    const int row_axis[1] = {1};
    dg_node *centred = dg_sub(g, x2, dg_mean(g, x2, 1, row_axis, true));
    dg_node *var = dg_mean(g, dg_square(g, centred), 1, row_axis, true);
    *rstd = dg_pow_scalar(g, dg_add_scalar(g, var, eps), -0.5f);
    return dg_mul(g, centred, *rstd);
}

dg_node *dg__norm_composed_xhat(dg_graph *g, dg_node *x, int64_t length, float eps)
{
    dg_node *rstd;
    dg_node *xhat2 = composed_rows(g, x, length, eps, &rstd);
    return dg__make_node(g, DG_OP_reshape_as, 2, (dg_node *[]){xhat2, x}, NULL);
}

dg_node *dg__norm_composed_dx(dg_graph *g, dg_node *x, dg_node *grad, dg_node *gamma_b,
                              int64_t length, float eps)
{
    dg_node *rstd;
    dg_node *xhat2 = composed_rows(g, x, length, eps, &rstd);
    const int row_axis[1] = {1};
    dg_node *d = gamma_b != NULL ? dg_mul(g, grad, gamma_b) : grad;
    dg_node *d2 = dg_reshape(g, d, 2, (int64_t[]){-1, length});
    dg_node *mean_d = dg_mean(g, d2, 1, row_axis, true);
    dg_node *mean_dx = dg_mean(g, dg_mul(g, d2, xhat2), 1, row_axis, true);
    dg_node *dx2 = dg_mul(g, rstd, dg_sub(g, dg_sub(g, d2, mean_d), dg_mul(g, xhat2, mean_dx)));
    return dg__make_node(g, DG_OP_reshape_as, 2, (dg_node *[]){dx2, x}, NULL);
}

static dg_status norm_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *grad, dg_node **gin)
{
    const struct norm_attrs *a = norm_attrs(dg__attrs(node));
    dg_node *x = dg__input(node, 0);
    const int n = dg__n_inputs(node);
    dg_node *gamma = n == 3 ? dg__input(node, 1) : NULL, *beta = n == 3 ? dg__input(node, 2) : NULL;
    const struct dg_shape *xs = dg__node_shape(x);
    if (ctx->def->variant == NORM_LAYER) {
        struct norm_attrs attrs = {.n_axes = a->n_axes, .eps = a->eps};
        if (dg__grad_needed(ctx, 0))
            gin[0] = dg__make_node(g, DG_OP_layer_norm_grad, gamma != NULL ? 3 : 2,
                                   (dg_node *[]){x, grad, gamma}, &attrs);
        if (gamma != NULL && dg__grad_needed(ctx, 1))
            gin[1] = dg__make_node(g, DG_OP_layer_norm_gamma_grad, 2, (dg_node *[]){x, grad},
                                   &attrs);
        if (beta != NULL && dg__grad_needed(ctx, 2))
            gin[2] = dg__unbroadcast(g, grad, beta);
        return dg_graph_status(g);
    }
    int64_t rows, length, spatial;
    rows_of(ctx->def, a, xs, &rows, &length, &spatial);
    dg_node *gamma_b = NULL; /* gamma [C] as [C, 1, ...], broadcastable against x */
    if (gamma != NULL) {
        int64_t shape[DG_MAX_DIMS];
        shape[0] = xs->dim[1];
        for (int i = 2; i < xs->ndim; i++)
            shape[i - 1] = 1;
        gamma_b = dg_reshape(g, gamma, xs->ndim - 1, shape);
    }
    if (dg__grad_needed(ctx, 0))
        gin[0] = dg__norm_composed_dx(g, x, grad, gamma_b, length, a->eps);
    if (gamma != NULL && dg__grad_needed(ctx, 1))
        gin[1] = sum_but_channels(g, dg_mul(g, grad, dg__norm_composed_xhat(g, x, length, a->eps)),
                                  xs->ndim);
    if (beta != NULL && dg__grad_needed(ctx, 2))
        gin[2] = sum_but_channels(g, grad, xs->ndim);
    return dg_graph_status(g);
}

static void norm_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    const struct norm_attrs *a = norm_attrs(attrs);
    if (def->variant == NORM_LAYER)
        snprintf(buf, len, "axes=%lld eps=%g", (long long)a->n_axes, (double)a->eps);
    else
        snprintf(buf, len, "groups=%lld eps=%g", (long long)a->groups, (double)a->eps);
}

const struct dg_op_def dg_op_layer_norm = {
    .name = "layer_norm", .n_inputs = -1, .variant = NORM_LAYER,
    .attrs_size = sizeof(struct norm_attrs),
    .infer = norm_infer, .forward = norm_forward, .backward = norm_backward, .label = norm_label,
};
const struct dg_op_def dg_op_group_norm = {
    .name = "group_norm", .n_inputs = -1, .variant = NORM_GROUP,
    .attrs_size = sizeof(struct norm_attrs),
    .infer = norm_infer, .forward = norm_forward, .backward = norm_backward, .label = norm_label,
};

static dg_node *make_norm(dg_graph *g, dg_op_id op, const char *name, dg_node *x,
                          dg_node *gamma, dg_node *beta, const struct norm_attrs *attrs)
{
    if ((gamma == NULL) != (beta == NULL)) {
        if (g != NULL && dg_graph_status(g) == DG_OK)
            dg__fail(g, DG_ERR_INVALID_ARG, "%s: gamma and beta must be given together", name);
        return NULL;
    }
    return dg__make_node(g, op, gamma != NULL ? 3 : 1, (dg_node *[]){x, gamma, beta}, attrs);
}

dg_node *dg_layer_norm(dg_graph *g, dg_node *x, dg_node *gamma, dg_node *beta, int n_axes,
                       float eps)
{
    struct norm_attrs a;
    memset(&a, 0, sizeof a);
    a.n_axes = n_axes;
    a.eps = eps;
    return make_norm(g, DG_OP_layer_norm, "layer_norm", x, gamma, beta, &a);
}

dg_node *dg_group_norm(dg_graph *g, dg_node *x, int64_t groups, dg_node *gamma, dg_node *beta,
                       float eps)
{
    struct norm_attrs a;
    memset(&a, 0, sizeof a);
    a.groups = groups;
    a.eps = eps;
    return make_norm(g, DG_OP_group_norm, "group_norm", x, gamma, beta, &a);
}
