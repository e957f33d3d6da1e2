/*
 * The fused gradients of layer_norm (norm.c), internal ops its backward rule builds:
 *
 *   layer_norm_grad(x, g [, gamma]; n_axes, eps) = dx   [like x]
 *       dx = rstd (d - mean(d) - x^ mean(d x^)) over each row (the last n_axes axes),
 *       d = g gamma, x^ = (x - mean) rstd, rstd = (var + eps)^-1/2 (the row statistics of the
 *       forward, recomputed by the same code: dg__norm_rows()->stats)
 *   layer_norm_gamma_grad(x, g; n_axes, eps) = dgamma   [like the last n_axes axes of x]
 *       dgamma = sum of g x^ over the rows
 *
 * dx: one pass per row (by the thread that owns it; simd/norm_rows.h, portable or AVX-512,
 * the same bits): the statistics, then the sums of d and d (x - m) in 16 float lanes (added
 * in double in a fixed order), then dx = a d + b (x - m) + k
 * with per-row a, b, k computed in double. dgamma: the rows in fixed blocks (their number and
 * size depend on the shape only), each block summed in float by one thread into its own
 * slice of the workspace, then the blocks added in double in block order. Both give the same
 * bits at any thread count.
 *
 * Their own gradients (second derivatives through layer norm) come from the composed formula
 * (dg__norm_composed_dx / dg__norm_composed_xhat, ordinary ops): the rule builds it and asks
 * dg_grad for the vector-Jacobian product sum(formula * upstream) with respect to fresh
 * proxies (x 1) of the inputs that need one, so that it gets partial derivatives even where
 * g or the upstream gradient depend on x (as batch_norm_grad, batchnorm_grad.c).
 */
#include "dagrad_autodiff.h"
#include "cpu.h"
#include "dg_config.h"
#include "norm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { LN_GRAD_DX, LN_GRAD_GAMMA };

static bool same_shape(const struct dg_shape *a, const struct dg_shape *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i])
            return false;
    return true;
}

static dg_status grad_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_shape *in, struct dg_shape *out, char *msg,
                            size_t len)
{
    const struct norm_attrs *a = norm_attrs(attrs);
    char sx[128], sg[128];
    dg__shape_str(&in[0], sx, sizeof sx);
    const bool dx = def->variant == LN_GRAD_DX;
    if (n_inputs != 2 && !(dx && n_inputs == 3))
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: %d inputs", def->name,
                               n_inputs);
    if (in[0].dtype != DG_F32 || !same_shape(&in[0], &in[1]))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: x %s and the gradient %s must be "
                               "float32 of one shape", def->name, sx,
                               dg__shape_str(&in[1], sg, sizeof sg));
    if (a->n_axes < 1 || a->n_axes > in[0].ndim || !(a->eps >= 0.0f) || !isfinite(a->eps))
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: cannot normalise the last "
                               "%lld axes of %s with eps %g", def->name, (long long)a->n_axes,
                               sx, (double)a->eps);
    struct dg_shape affine = {.dtype = DG_F32, .ndim = (int)a->n_axes};
    for (int i = 0; i < affine.ndim; i++)
        affine.dim[i] = in[0].dim[in[0].ndim - affine.ndim + i];
    if (n_inputs == 3 && !same_shape(&in[2], &affine))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: gamma %s must be float32 shaped "
                               "like the normalised axes of %s", def->name,
                               dg__shape_str(&in[2], sg, sizeof sg), sx);
    *out = dx ? in[0] : affine;
    return DG_OK;
}

/* Rows per block of layer_norm_gamma_grad: at most 64 blocks, at least 64 rows a block (so
 * each float lane adds at most a few hundred terms before the double sum). */
static int64_t gamma_block_rows(int64_t rows)
{
    int64_t per = (rows + 63) / 64;
    return per < 64 ? 64 : per;
}

static size_t grad_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                             const struct dg_shape *inputs, const struct dg_shape *out,
                             int n_threads)
{
    if (def->variant != LN_GRAD_GAMMA)
        return 0;
    int64_t rows, length;
    dg__layer_norm_rows(&inputs[0], norm_attrs(attrs)->n_axes, &rows, &length);
    const int64_t per = gamma_block_rows(rows);
    const int64_t blocks = rows > 0 ? (rows + per - 1) / per : 0;
    return (size_t)(blocks * length) * sizeof(float);
}

/* sum of d[j] and of d[j] (x[j] - m), d = g gamma (g when gamma is NULL): out[0], out[1];
 * 16 float lanes each (four norm_v4 accumulators), the rest and the lanes in double. */
static inline norm_v4 d_at(const float *g, const float *gamma, int64_t j)
{
    return gamma != NULL ? norm_load4(g + j) * norm_load4(gamma + j) : norm_load4(g + j);
}

static void row_sums(const float *x, const float *g, const float *gamma, float m, int64_t n,
                     double out[2])
{
    norm_v4 sa = {0}, sb = {0}, sc = {0}, sd = {0}, xa = {0}, xb = {0}, xc = {0}, xd = {0};
    int64_t j = 0;
    for (; j + NORM_DX_STEP <= n; j += NORM_DX_STEP) {
        norm_v4 da = d_at(g, gamma, j), db = d_at(g, gamma, j + 4);
        norm_v4 dc = d_at(g, gamma, j + 8), dd = d_at(g, gamma, j + 12);
        sa += da;
        sb += db;
        sc += dc;
        sd += dd;
        xa += da * (norm_load4(x + j) - m);
        xb += db * (norm_load4(x + j + 4) - m);
        xc += dc * (norm_load4(x + j + 8) - m);
        xd += dd * (norm_load4(x + j + 12) - m);
    }
    double total_d = 0.0, total_dx = 0.0;
    for (; j < n; j++) {
        double dj = gamma != NULL ? (double)(g[j] * gamma[j]) : (double)g[j];
        total_d += dj;
        total_dx += dj * (double)(x[j] - m);
    }
    out[0] = total_d + norm_total4(sa, sb, sc, sd);
    out[1] = total_dx + norm_total4(xa, xb, xc, xd);
}

/* One row of layer_norm_grad, portably (simd/norm_rows.h). */
static void dx_row_generic(const float *xr, const float *gr, const float *gamma, int64_t n,
                           float eps, float *out)
{
    double mean, rstd, sums[2];
    dg__norm_stats_generic(xr, n, eps, &mean, &rstd);
    const float m = (float)mean;
    row_sums(xr, gr, gamma, m, n, sums);
    float fa, fb, fk;
    norm_dx_coefficients(mean, rstd, sums[0], sums[1], n, &fa, &fb, &fk);
    if (gamma != NULL)
        for (int64_t j = 0; j < n; j++)
            out[j] = fa * (gr[j] * gamma[j]) + fb * (xr[j] - m) + fk;
    else
        for (int64_t j = 0; j < n; j++)
            out[j] = fa * gr[j] + fb * (xr[j] - m) + fk;
}

static void gamma_row_generic(const float *x, const float *g, int64_t n, float eps, float *acc)
{
    double mean, rstd;
    dg__norm_stats_generic(x, n, eps, &mean, &rstd);
    const float m = (float)mean, s = (float)rstd;
    for (int64_t j = 0; j < n; j++)
        acc[j] += g[j] * ((x[j] - m) * s);
}

const struct dg_norm_rows dg__norm_rows_generic = {
    .stats = dg__norm_stats_generic, .dx_row = dx_row_generic,
    .forward_row = dg__norm_forward_row_generic, .gamma_row = gamma_row_generic,
};

const struct dg_norm_rows *dg__norm_rows(void)
{
#if DG_X86_64
    if (dg__isa() >= DG_ISA_AVX512)
        return &dg__norm_rows_avx512;
#endif
    return &dg__norm_rows_generic;
}

static void dx_forward(const struct norm_attrs *a, int n_inputs, const struct dg_tensor *in,
                       float *dx, const struct dg_exec_ctx *ctx)
{
    int64_t rows, length;
    dg__layer_norm_rows(&in[0].shape, a->n_axes, &rows, &length);
    const float *x = in[0].data, *g = in[1].data;
    const float *gamma = n_inputs == 3 ? in[2].data : NULL;
    const struct dg_norm_rows *kernels = dg__norm_rows();
    const int threads = dg__threads_for(ctx, rows * length);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        kernels->dx_row(x + r * length, g + r * length, gamma, length, a->eps,
                        dx + r * length);
}

static void gamma_forward(const struct norm_attrs *a, const struct dg_tensor *in,
                          float *dgamma, const struct dg_exec_ctx *ctx)
{
    int64_t rows, length;
    dg__layer_norm_rows(&in[0].shape, a->n_axes, &rows, &length);
    const float *x = in[0].data, *g = in[1].data;
    const int64_t per = gamma_block_rows(rows);
    const int64_t blocks = rows > 0 ? (rows + per - 1) / per : 0;
    float *partial = ctx->workspace; /* [blocks, length] */
    const struct dg_norm_rows *kernels = dg__norm_rows();
    const int threads = dg__threads_for(ctx, rows * length);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t blk = 0; blk < blocks; blk++) {
        float *acc = partial + blk * length;
        memset(acc, 0, (size_t)length * sizeof *acc);
        const int64_t end = (blk + 1) * per < rows ? (blk + 1) * per : rows;
        for (int64_t r = blk * per; r < end; r++)
            kernels->gamma_row(x + r * length, g + r * length, length, a->eps, acc);
    }
    const int col_threads = dg__threads_for(ctx, blocks * length);
#pragma omp parallel for num_threads(col_threads) if (col_threads > 1) schedule(static)
    for (int64_t j = 0; j < length; j++) {
        double sum = 0.0;
        for (int64_t blk = 0; blk < blocks; blk++)
            sum += partial[blk * length + j];
        dgamma[j] = (float)sum;
    }
}

static void grad_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                         const struct dg_tensor *in, struct dg_tensor *out,
                         const struct dg_exec_ctx *ctx)
{
    if (def->variant == LN_GRAD_DX)
        dx_forward(norm_attrs(attrs), n_inputs, in, out->data, ctx);
    else
        gamma_forward(norm_attrs(attrs), in, out->data, ctx);
}

/* The composed fallback (dg__composed_backward): the formula of dx or dgamma from ordinary ops,
 * differentiated for x, g and gamma (where needed). */
static dg_node *grad_formula(dg_graph *g, dg_node *node, dg_node *const *in, void *user)
{
    const struct dg_op_def *def = user;
    const struct norm_attrs *a = norm_attrs(dg__attrs(node));
    dg_node *x = in[0], *grad = in[1], *gamma = dg__n_inputs(node) == 3 ? in[2] : NULL;
    const struct dg_shape *xs = dg__node_shape(dg__input(node, 0));
    int64_t rows, length;
    dg__layer_norm_rows(xs, a->n_axes, &rows, &length);
    if (def->variant == LN_GRAD_DX)
        return dg__norm_composed_dx(g, x, grad, gamma, length, a->eps);
    int axes[DG_MAX_DIMS], k = 0;
    for (int i = 0; i < xs->ndim - (int)a->n_axes; i++)
        axes[k++] = i;
    dg_node *gx = dg_mul(g, grad, dg__norm_composed_xhat(g, x, length, a->eps));
    return k > 0 ? dg_sum(g, gx, k, axes, false) : gx;
}

static dg_status grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *upstream, dg_node **gin)
{
    return dg__composed_backward(ctx, g, node, upstream, gin, 0, grad_formula,
                                 (void *)ctx->def);
}

static void grad_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "axes=%lld eps=%g", (long long)norm_attrs(attrs)->n_axes,
             (double)norm_attrs(attrs)->eps);
}

const struct dg_op_def dg_op_layer_norm_grad = {
    .name = "layer_norm_grad", .n_inputs = -1, .variant = LN_GRAD_DX,
    .attrs_size = sizeof(struct norm_attrs), .infer = grad_infer, .forward = grad_forward,
    .backward = grad_backward, .label = grad_label,
};

const struct dg_op_def dg_op_layer_norm_gamma_grad = {
    .name = "layer_norm_gamma_grad", .n_inputs = 2, .variant = LN_GRAD_GAMMA,
    .attrs_size = sizeof(struct norm_attrs), .infer = grad_infer, .forward = grad_forward,
    .backward = grad_backward, .label = grad_label, .workspace_bytes = grad_workspace,
};
