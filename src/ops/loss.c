/*
 * Losses: scalar (shape []) means over a batch, with fused forward kernels.
 *
 *   softmax_cross_entropy(logits [..,C], labels [..] int32)   ([N,C] and [N], [B,T,V] and
 *       [B,T], ...: every position of the leading axes is a row)
 *       = (1/N_valid) sum over valid rows i of (logsumexp(logits_i) - logits[i, label_i])
 *   bce(p, y)             = mean(-(y * max(log p, -100) + (1-y) * max(log(1-p), -100)))
 *   bce_with_logits(z, y) = mean(max(z,0) - z*y + log1p(exp(-|z|)))
 *   mse_loss(a, b)        = mean((a-b)^2)
 *   l1_loss(a, b)         = mean(|a-b|)
 *   huber_loss(a, b; d)   = mean(0.5 r^2 if |r| < d else d (|r| - 0.5 d)),  r = a - b
 *
 * Every mean divides by a count taken from the run-time shapes (the batch may change after
 * the graph is built), and the backward rules get theirs from size_ratio(loss, a). Sums are
 * formed in double in fixed blocks whose layout depends on the shape only, so the result does
 * not depend on the thread count.
 *
 * Labels: a label outside [0, C) (negative, e.g. PyTorch's ignore_index -100, or >= C) marks
 * its row as ignored: it adds nothing to the loss, is left out of N_valid and gets a zero
 * gradient. With no valid row at all the loss and its gradient are 0 (PyTorch gives NaN for
 * an all-ignored batch, and raises for labels >= C).
 */
#include "op.h"
#include "simd/vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* huber_loss's threshold. */
struct huber_attrs {
    float delta;
};

static inline const struct huber_attrs *huber_attrs(const void *attrs) { return attrs; }

#define LOSS_MAX_BLOCKS 256
#define LOSS_BLOCK 1024 /* elements per block, at least (rows: LOSS_BLOCK / C, at least 1) */

/* Number of blocks of `n` units of which each holds at least `min_per_block`. */
static int64_t loss_blocks(int64_t n, int64_t min_per_block)
{
    int64_t nb = n / (min_per_block > 0 ? min_per_block : 1);
    if (nb > LOSS_MAX_BLOCKS)
        nb = LOSS_MAX_BLOCKS;
    return nb < 1 ? 1 : nb;
}

/* The partial sums of a loss over n units in blocks of at least min_per_block: the kernels
 * keep them in the plan's workspace (one double per block). */
static size_t partials_bytes(int64_t n, int64_t min_per_block)
{
    return (size_t)loss_blocks(n, min_per_block) * sizeof(double);
}

/* ---- shape rules ------------------------------------------------------------------------ */

static dg_status pair_infer(const char *name, const struct dg_shape *in, struct dg_shape *out,
                            char *msg, size_t len)
{
    char sa[128], sb[128];
    if (in[0].dtype != DG_F32 || in[1].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: inputs must be float32", name);
    bool same = in[0].ndim == in[1].ndim;
    for (int i = 0; same && i < in[0].ndim; i++)
        same = in[0].dim[i] == in[1].dim[i];
    if (!same)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: shapes %s and %s differ", name,
                               dg__shape_str(&in[0], sa, sizeof sa),
                               dg__shape_str(&in[1], sb, sizeof sb));
    out->dtype = DG_F32;
    out->ndim = 0;
    return DG_OK;
}

/* logits [..,C] float32 (at least 2 axes: [N,C], [B,T,C], ...) and labels [..] int32, the
 * logits' shape without the class axis. Every position of the leading axes is one row. */
static dg_status logits_labels_check(const char *name, const struct dg_shape *logits,
                                     const struct dg_shape *labels, char *msg, size_t len)
{
    char sa[128], sb[128];
    if (logits->dtype != DG_F32 || logits->ndim < 2)
        return dg__shape_error(msg, len, logits->dtype != DG_F32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                               "%s: logits must be float32 [..,C] with at least 2 axes ([N,C], "
                               "[B,T,C]), got %s%s", name,
                               logits->dtype != DG_F32 ? "int32 " : "",
                               dg__shape_str(logits, sa, sizeof sa));
    bool fits = labels->ndim == logits->ndim - 1;
    for (int i = 0; fits && i < labels->ndim; i++)
        fits = labels->dim[i] == logits->dim[i];
    if (labels->dtype != DG_I32 || !fits)
        return dg__shape_error(msg, len, labels->dtype != DG_I32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                               "%s: labels must be int32 shaped like the logits %s without "
                               "their last (class) axis, got %s%s", name,
                               dg__shape_str(logits, sa, sizeof sa),
                               labels->dtype != DG_I32 ? "float32 " : "",
                               dg__shape_str(labels, sb, sizeof sb));
    return DG_OK;
}

/* Rows (positions) of logits [..,C]: the product of the leading axes. */
static int64_t logit_rows(const struct dg_shape *logits)
{
    return dg__numel(logits) / (logits->dim[logits->ndim - 1] > 0 ? logits->dim[logits->ndim - 1] : 1);
}

static int64_t count_valid(const int32_t *labels, int64_t n, int64_t c)
{
    int64_t valid = 0;
    for (int64_t i = 0; i < n; i++)
        valid += labels[i] >= 0 && labels[i] < c;
    return valid;
}

/* ---- softmax_cross_entropy ------------------------------------------------------------- */

/* log(sum(exp(x))) of one row, stable: the max is subtracted first. */
static double row_logsumexp(const float *x, int64_t c, const struct dg_vmath *vm)
{
    float m = -INFINITY;
    for (int64_t j = 0; j < c; j++)
        m = (x[j] > m || x[j] != x[j]) ? x[j] : m;
    float tmp[256];
    double sum = 0.0;
    for (int64_t j0 = 0; j0 < c; j0 += 256) {
        int64_t w = c - j0 < 256 ? c - j0 : 256;
        for (int64_t j = 0; j < w; j++)
            tmp[j] = x[j0 + j] - m;
        vm->exp(tmp, tmp, w);
        for (int64_t j = 0; j < w; j++)
            sum += tmp[j];
    }
    return (double)m + log(sum);
}

static dg_status sce_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                           const struct dg_shape *in, struct dg_shape *out, char *msg, size_t len)
{
    dg_status st = logits_labels_check("softmax_cross_entropy", &in[0], &in[1], msg, len);
    out->dtype = DG_F32;
    out->ndim = 0;
    return st;
}

static void sce_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                        const struct dg_tensor *in, struct dg_tensor *out,
                        const struct dg_exec_ctx *ctx)
{
    const float *x = in[0].data;
    const int32_t *labels = in[1].data;
    int64_t n = logit_rows(&in[0].shape), c = in[0].shape.dim[in[0].shape.ndim - 1];
    int64_t nb = loss_blocks(n, LOSS_BLOCK / c > 0 ? LOSS_BLOCK / c : 1);
    int64_t rows_per_block = (n + nb - 1) / nb;
    double *partial = ctx->workspace; /* nb doubles: sce_workspace */
    const struct dg_vmath *vm = dg__vmath();
    int threads = dg__threads_for(ctx, n * c);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * rows_per_block, hi = lo + rows_per_block < n ? lo + rows_per_block : n;
        double acc = 0.0;
        for (int64_t i = lo; i < hi; i++) {
            int32_t label = labels[i];
            if (label < 0 || label >= c)
                continue; /* ignored row */
            acc += row_logsumexp(x + i * c, c, vm) - (double)x[i * c + label];
        }
        partial[b] = acc;
    }
    double total = 0.0;
    for (int64_t b = 0; b < nb; b++)
        total += partial[b];
    int64_t valid = count_valid(labels, n, c);
    *(float *)out->data = valid > 0 ? (float)(total / (double)valid) : 0.0f;
}

static size_t sce_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_shape *in, const struct dg_shape *out, int n_threads)
{
    int64_t n = logit_rows(&in[0]), c = in[0].dim[in[0].ndim - 1];
    return partials_bytes(n, LOSS_BLOCK / c > 0 ? LOSS_BLOCK / c : 1);
}

/* d/dlogits = softmax_cross_entropy_grad(logits, labels, g); labels get none (int32). */
static dg_status sce_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    dg_node *logits = dg__input(node, 0), *labels = dg__input(node, 1);
    gin[0] = dg__make_node(g, DG_OP_softmax_cross_entropy_grad, 3,
                           (dg_node *[]){logits, labels, grad}, NULL);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_softmax_cross_entropy = {
    .name = "softmax_cross_entropy", .n_inputs = 2,
    .infer = sce_infer, .forward = sce_forward, .backward = sce_backward,
    .workspace_bytes = sce_workspace,
};

dg_node *dg_softmax_cross_entropy(dg_graph *g, dg_node *logits, dg_node *labels)
{
    return dg__make_node(g, DG_OP_softmax_cross_entropy, 2, (dg_node *[]){logits, labels},
                         NULL);
}

/* ---- softmax_cross_entropy_grad ---------------------------------------------------------
 * softmax_cross_entropy_grad(logits, labels, s)[i] = s * w_i * (softmax(logits_i) - onehot_i)
 * with w_i = 1/N_valid for a valid label, 0 for an ignored row (ce_row_weights).
 * Backward (it is linear in s):
 *   d/ds      = sum(G * softmax_cross_entropy_grad(logits, labels, 1))
 *   d/dlogits = s * w * p * (G - sum(G * p; axis 1, keepdims)),  p = softmax(logits)
 * so second derivatives through the cross-entropy work. */

static dg_status sce_grad_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                const struct dg_shape *in, struct dg_shape *out, char *msg,
                                size_t len)
{
    char sa[128];
    dg_status st = logits_labels_check("softmax_cross_entropy_grad", &in[0], &in[1], msg, len);
    if (st != DG_OK)
        return st;
    if (in[2].dtype != DG_F32 || in[2].ndim != 0)
        return dg__shape_error(msg, len, DG_ERR_SHAPE,
                               "softmax_cross_entropy_grad: the upstream gradient must be a "
                               "float32 scalar [], got %s", dg__shape_str(&in[2], sa, sizeof sa));
    *out = in[0];
    return DG_OK;
}

static void sce_grad_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                             const struct dg_tensor *in, struct dg_tensor *out,
                             const struct dg_exec_ctx *ctx)
{
    const float *x = in[0].data;
    const int32_t *labels = in[1].data;
    float s = *(const float *)in[2].data;
    float *o = out->data;
    int64_t n = logit_rows(&in[0].shape), c = in[0].shape.dim[in[0].shape.ndim - 1];
    int64_t valid = count_valid(labels, n, c);
    double weight = valid > 0 ? (double)s / (double)valid : 0.0;
    const struct dg_vmath *vm = dg__vmath();
    int threads = dg__threads_for(ctx, n * c);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + i * c;
        float *orow = o + i * c;
        int32_t label = labels[i];
        if (label < 0 || label >= c) {
            memset(orow, 0, (size_t)c * sizeof *orow);
            continue;
        }
        float m = -INFINITY;
        for (int64_t j = 0; j < c; j++)
            m = (row[j] > m || row[j] != row[j]) ? row[j] : m;
        for (int64_t j = 0; j < c; j++)
            orow[j] = row[j] - m;
        vm->exp(orow, orow, c);
        double sum = 0.0;
        for (int64_t j = 0; j < c; j++)
            sum += orow[j];
        float scale = (float)(weight / sum);
        for (int64_t j = 0; j < c; j++)
            orow[j] *= scale;
        orow[label] -= (float)weight;
    }
}

static dg_status sce_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                   dg_node *grad, dg_node **gin)
{
    dg_node *logits = dg__input(node, 0), *labels = dg__input(node, 1);
    dg_node *s = dg__input(node, 2);
    dg_node *unit = dg__make_node(g, DG_OP_softmax_cross_entropy_grad, 3,
                                  (dg_node *[]){logits, labels, dg_scalar(g, 1.0f)}, NULL);
    gin[2] = dg_sum(g, dg_mul(g, grad, unit), 0, NULL, false);
    dg_node *p = dg_softmax(g, logits, -1);
    dg_node *weights = dg__make_node(g, DG_OP_ce_row_weights, 2, (dg_node *[]){labels, logits},
                                     NULL);
    int axis = -1;
    dg_node *centred = dg_sub(g, grad, dg_sum(g, dg_mul(g, grad, p), 1, &axis, true));
    gin[0] = dg_mul(g, dg_mul(g, p, dg_mul(g, weights, s)), centred);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_softmax_cross_entropy_grad = {
    .name = "softmax_cross_entropy_grad", .n_inputs = 3,
    .infer = sce_grad_infer, .forward = sce_grad_forward, .backward = sce_grad_backward,
};

/* ---- ce_row_weights ---------------------------------------------------------------------
 * ce_row_weights(labels [N] int32, logits [N,C] shape-only) -> [N,1]: 1/N_valid for a row
 * whose label is in [0, C), else 0 (all 0 when no row is valid). Piecewise constant in
 * nothing differentiable (labels are int32, logits shape-only): no gradient. */

static dg_status ce_row_weights_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                      const struct dg_shape *in, struct dg_shape *out,
                                      char *msg, size_t len)
{
    dg_status st = logits_labels_check("ce_row_weights", &in[1], &in[0], msg, len);
    if (st != DG_OK)
        return st;
    *out = in[0]; /* the labels' shape plus a unit class axis: broadcasts against logits */
    out->dtype = DG_F32;
    out->dim[out->ndim++] = 1;
    return DG_OK;
}

static void ce_row_weights_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                   const struct dg_tensor *in, struct dg_tensor *out,
                                   const struct dg_exec_ctx *ctx)
{
    const int32_t *labels = in[0].data;
    int64_t n = logit_rows(&in[1].shape), c = in[1].shape.dim[in[1].shape.ndim - 1];
    int64_t valid = count_valid(labels, n, c);
    float w = valid > 0 ? (float)(1.0 / (double)valid) : 0.0f;
    float *o = out->data;
    for (int64_t i = 0; i < n; i++)
        o[i] = (labels[i] >= 0 && labels[i] < c) ? w : 0.0f;
}

const struct dg_op_def dg_op_ce_row_weights = {
    .name = "ce_row_weights", .n_inputs = 2, .shape_only_inputs = 1u << 1,
    /* a function of int32 labels only (logits: shape only): zero gradient by definition */
    .infer = ce_row_weights_infer, .forward = ce_row_weights_forward,
    .backward = dg__zero_grad,
};

/* ---- elementwise losses ----------------------------------------------------------------- */

enum lkind { L_BCE, L_BCE_LOGITS, L_MSE, L_L1, L_HUBER };

static inline __attribute__((always_inline)) double loss_term(enum lkind kind, double a,
                                                              double b, double delta)
{
    switch (kind) {
    case L_BCE: {
        /* PyTorch clamps each log at -100, so p = 0 or 1 gives a finite loss. */
        double log_p = fmax(log(a), -100.0), log_q = fmax(log1p(-a), -100.0);
        return -(b * log_p + (1.0 - b) * log_q);
    }
    case L_BCE_LOGITS:
        return fmax(a, 0.0) - a * b + log1p(exp(-fabs(a)));
    case L_MSE:
        return (a - b) * (a - b);
    case L_L1:
        return fabs(a - b);
    case L_HUBER: {
        double r = fabs(a - b);
        return r < delta ? 0.5 * r * r : delta * (r - 0.5 * delta);
    }
    }
    return 0.0;
}

static inline __attribute__((always_inline)) void elementwise_loss(
    enum lkind kind, const struct dg_tensor *in, struct dg_tensor *out, double delta,
    const struct dg_exec_ctx *ctx)
{
    const float *a = in[0].data, *b = in[1].data;
    int64_t n = dg__numel(&in[0].shape);
    int64_t nb = loss_blocks(n, LOSS_BLOCK);
    int64_t per_block = (n + nb - 1) / nb;
    double *partial = ctx->workspace; /* nb doubles: elementwise_loss_workspace */
    int threads = dg__threads_for(ctx, n);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
        int64_t lo = blk * per_block, hi = lo + per_block < n ? lo + per_block : n;
        double acc = 0.0;
        for (int64_t i = lo; i < hi; i++)
            acc += loss_term(kind, a[i], b[i], delta);
        partial[blk] = acc;
    }
    double total = 0.0;
    for (int64_t blk = 0; blk < nb; blk++)
        total += partial[blk];
    *(float *)out->data = (float)(total / (double)n);
}

/* The shape rule and the kernel of every elementwise loss; the def's variant is its lkind. */
static dg_status elementwise_loss_infer(const struct dg_op_def *def, const void *attrs,
                                        int n_inputs, const struct dg_shape *in,
                                        struct dg_shape *out, char *msg, size_t len)
{
    return pair_infer(def->name, in, out, msg, len);
}

static void elementwise_loss_forward(const struct dg_op_def *def, const void *attrs,
                                     int n_inputs, const struct dg_tensor *in,
                                     struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    switch ((enum lkind)def->variant) {
    case L_BCE: elementwise_loss(L_BCE, in, out, 0.0, ctx); break;
    case L_BCE_LOGITS: elementwise_loss(L_BCE_LOGITS, in, out, 0.0, ctx); break;
    case L_MSE: elementwise_loss(L_MSE, in, out, 0.0, ctx); break;
    case L_L1: elementwise_loss(L_L1, in, out, 0.0, ctx); break;
    case L_HUBER: elementwise_loss(L_HUBER, in, out, huber_attrs(attrs)->delta, ctx); break;
    }
}

static size_t elementwise_loss_workspace(const struct dg_op_def *def, const void *attrs,
                                         int n_inputs, const struct dg_shape *in,
                                         const struct dg_shape *out, int n_threads)
{
    return partials_bytes(dg__numel(&in[0]), LOSS_BLOCK);
}

/* g / numel(a) as a [] node, from the plan-time shapes. The backward rules below multiply
 * it in as the SECOND operand, so the full-size operand comes first (see the report on the
 * planner's in-place check, which compares rounded byte sizes). */
static dg_node *mean_scale(dg_graph *g, dg_node *node, dg_node *grad, dg_node *a)
{
    dg_node *ratio = dg__make_node(g, DG_OP_size_ratio, 2, (dg_node *[]){node, a}, NULL);
    return dg_mul(g, grad, ratio);
}

/* The node of a two-input loss; dg__make_node reports NULL inputs and shape mismatches. */
static dg_node *pair_build(dg_graph *g, dg_op_id op, dg_node *a, dg_node *b,
                           const void *attrs)
{
    return dg__make_node(g, op, 2, (dg_node *[]){a, b}, attrs);
}

/* ---- bce ---------------------------------------------------------------------------------
 * d/dp = s/n * (p - y) / max(p (1-p), 1e-12)    (PyTorch's formula, finite at p = 0, 1)
 * d/dy = s/n * (max(log(1-p), -100) - max(log p, -100))
 *   (the derivative of the clamped forward; PyTorch's -logit(p) is unclamped, equal for
 *   p away from 0 and 1) */

static dg_status bce_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                              dg_node *grad, dg_node **gin)
{
    dg_node *p = dg__input(node, 0), *y = dg__input(node, 1);
    dg_node *scale = mean_scale(g, node, grad, p);
    dg_node *q = dg_add_scalar(g, dg_neg(g, p), 1.0f); /* 1 - p */
    dg_node *denom = dg_maximum(g, dg_mul(g, p, q), dg_scalar(g, 1e-12f));
    gin[0] = dg_mul(g, dg_div(g, dg_sub(g, p, y), denom), scale);
    dg_node *floor = dg_scalar(g, -100.0f);
    dg_node *log_p = dg_maximum(g, dg_log(g, p), floor);
    dg_node *log_q = dg_maximum(g, dg_log(g, q), floor);
    gin[1] = dg_mul(g, dg_sub(g, log_q, log_p), scale);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_bce = {
    .name = "bce", .n_inputs = 2,
    .variant = L_BCE,
    .infer = elementwise_loss_infer, .forward = elementwise_loss_forward,
    .workspace_bytes = elementwise_loss_workspace,
    .backward = bce_backward,
};

dg_node *dg_bce(dg_graph *g, dg_node *p, dg_node *y)
{
    return pair_build(g, DG_OP_bce, p, y, NULL);
}

/* ---- bce_with_logits ------------------------------------------------------------------------
 * d/dz = s/n * (sigmoid(z) - y);  d/dy = -s/n * z */

static dg_status bce_with_logits_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                          dg_node *grad, dg_node **gin)
{
    dg_node *z = dg__input(node, 0), *y = dg__input(node, 1);
    dg_node *scale = mean_scale(g, node, grad, z);
    gin[0] = dg_mul(g, dg_sub(g, dg_sigmoid(g, z), y), scale);
    gin[1] = dg_mul(g, z, dg_neg(g, scale));
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_bce_with_logits = {
    .name = "bce_with_logits", .n_inputs = 2,
    .variant = L_BCE_LOGITS,
    .infer = elementwise_loss_infer, .forward = elementwise_loss_forward,
    .workspace_bytes = elementwise_loss_workspace,
    .backward = bce_with_logits_backward,
};

dg_node *dg_bce_with_logits(dg_graph *g, dg_node *z, dg_node *y)
{
    return pair_build(g, DG_OP_bce_with_logits, z, y, NULL);
}

/* ---- mse_loss --------------------------------------------------------------------------------
 * d/da = 2 s/n * (a - b);  d/db = -d/da */

static dg_status mse_loss_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                   dg_node *grad, dg_node **gin)
{
    dg_node *a = dg__input(node, 0), *b = dg__input(node, 1);
    dg_node *scale = dg_scale(g, mean_scale(g, node, grad, a), 2.0f);
    gin[0] = dg_mul(g, dg_sub(g, a, b), scale);
    gin[1] = dg_neg(g, gin[0]);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_mse_loss = {
    .name = "mse_loss", .n_inputs = 2,
    .variant = L_MSE,
    .infer = elementwise_loss_infer, .forward = elementwise_loss_forward,
    .workspace_bytes = elementwise_loss_workspace,
    .backward = mse_loss_backward,
};

dg_node *dg_mse_loss(dg_graph *g, dg_node *a, dg_node *b)
{
    return pair_build(g, DG_OP_mse_loss, a, b, NULL);
}

/* ---- l1_loss ---------------------------------------------------------------------------------
 * d/da = s/n * sign(a - b) (0 where a == b, as PyTorch);  d/db = -d/da */

static dg_status l1_loss_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                  dg_node *grad, dg_node **gin)
{
    dg_node *a = dg__input(node, 0), *b = dg__input(node, 1);
    dg_node *diff = dg_sub(g, a, b);
    dg_node *sign = dg__make_node(g, DG_OP_sign, 1, &diff, NULL);
    gin[0] = dg_mul(g, sign, mean_scale(g, node, grad, a));
    gin[1] = dg_neg(g, gin[0]);
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_l1_loss = {
    .name = "l1_loss", .n_inputs = 2,
    .variant = L_L1,
    .infer = elementwise_loss_infer, .forward = elementwise_loss_forward,
    .workspace_bytes = elementwise_loss_workspace,
    .backward = l1_loss_backward,
};

dg_node *dg_l1_loss(dg_graph *g, dg_node *a, dg_node *b)
{
    return pair_build(g, DG_OP_l1_loss, a, b, NULL);
}

/* ---- huber_loss ------------------------------------------------------------------------------
 * d/da = s/n * clamp(a - b, -delta, delta);  d/db = -d/da
 * (continuous at |a-b| = delta, where both branches give +-delta, as PyTorch) */

static dg_status huber_loss_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *grad, dg_node **gin)
{
    dg_node *a = dg__input(node, 0), *b = dg__input(node, 1);
    float delta = huber_attrs(dg__attrs(node))->delta;
    dg_node *clamped = dg_minimum(g, dg_maximum(g, dg_sub(g, a, b), dg_scalar(g, -delta)),
                                  dg_scalar(g, delta));
    gin[0] = dg_mul(g, clamped, mean_scale(g, node, grad, a));
    gin[1] = dg_neg(g, gin[0]);
    return dg_graph_status(g);
}

static void huber_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "delta=%g", (double)huber_attrs(attrs)->delta);
}

const struct dg_op_def dg_op_huber_loss = {
    .name = "huber_loss", .attrs_size = sizeof(struct huber_attrs), .n_inputs = 2,
    .variant = L_HUBER,
    .infer = elementwise_loss_infer, .forward = elementwise_loss_forward,
    .workspace_bytes = elementwise_loss_workspace,
    .backward = huber_loss_backward, .label = huber_label,
};

dg_node *dg_huber_loss(dg_graph *g, dg_node *a, dg_node *b, float delta)
{
    struct huber_attrs attrs = {.delta = delta};
    if (g == NULL)
        return NULL;
    if (a == NULL || b == NULL || dg_graph_status(g) != DG_OK)
        return pair_build(g, DG_OP_huber_loss, a, b, &attrs); /* reports or passes through */
    if (!(delta > 0.0f) || isinf(delta))
        return dg__fail(g, DG_ERR_INVALID_ARG, "huber_loss: delta must be finite and > 0, got %g",
                        (double)delta);
    return pair_build(g, DG_OP_huber_loss, a, b, &attrs);
}
