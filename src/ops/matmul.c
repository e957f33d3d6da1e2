/*
 * matmul(A, B; transpose_a, transpose_b): batched matrix product of the last two axes.
 *
 *   op(A) = A or A^T (last two axes swapped), [.., M, K]
 *   op(B) = B or B^T,                         [.., K, N]
 *   out[b] = op(A)[b] · op(B)[b]               [batch.., M, N]
 *
 * Both operands have at least 2 dimensions (a 1-D operand is not promoted); the leading
 * (batch) axes broadcast like numpy. Transposes are never materialised: the flags go to the
 * GEMM (src/ops/gemm/gemm.h), which reads the operand with swapped strides.
 *
 * Backward, with G = grad of out (the rules use matmul itself, so transposes stay flags):
 *   d op(A) = G · op(B)^T,   d op(B) = op(A)^T · G
 *   !ta: dA = matmul_ex(G, B, false, !tb)      ta: dA = (G · op(B)^T)^T = matmul_ex(B, G, tb, true)
 *   !tb: dB = matmul_ex(A, G, !ta, false)      tb: dB = (op(A)^T · G)^T = matmul_ex(G, A, true, ta)
 * then each is summed over the batch axes its operand was broadcast along (dg__unbroadcast).
 * A 2-D right operand shared by a batched left one ([batch.., M, K] x [K, N], !ta: a weight
 * applied to every row, as a linear layer or an input projection over [B, T, F]) is the
 * forward's one tall product, and so is its weight gradient: summed over the batch,
 * sum_b A_b^T G_b = A'^T G' with A', G' the operands' rows flattened ([batch*M, K],
 * [batch*M, N]): ONE GEMM over all rows rather than a batched product and a sum_to (whose
 * intermediate is batch times the weight's size). Its input gradient G op(B)^T is the tall
 * product again, and has exactly A's shape.
 */
#include "op.h"
#include "gemm/gemm.h"

#include <stdio.h>

struct matmul_attrs {
    bool transpose_a, transpose_b;
};

static inline const struct matmul_attrs *matmul_attrs(const void *attrs) { return attrs; }

/* " (transpose_a)", " (transpose_b)", " (transpose_a, transpose_b)" or "". */
static const char *flags_str(bool ta, bool tb)
{
    return ta && tb ? " (transpose_a, transpose_b)" : ta ? " (transpose_a)"
                                                   : tb ? " (transpose_b)" : "";
}

/* Splits a shape into its batch part (all but the last two axes). */
static struct dg_shape batch_part(const struct dg_shape *s)
{
    struct dg_shape b = *s;
    b.ndim = s->ndim - 2;
    return b;
}

static dg_status matmul_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_shape *in, struct dg_shape *out, char *msg,
                              size_t len)
{
    char sa[128], sb[128];
    bool ta = matmul_attrs(attrs)->transpose_a, tb = matmul_attrs(attrs)->transpose_b;
    dg__shape_str(&in[0], sa, sizeof sa);
    dg__shape_str(&in[1], sb, sizeof sb);
    if (in[0].dtype != DG_F32 || in[1].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "matmul: operands must be float32 "
                               "(%s %s x %s %s)", in[0].dtype == DG_F32 ? "float32" : "int32",
                               sa, in[1].dtype == DG_F32 ? "float32" : "int32", sb);
    if (in[0].ndim < 2 || in[1].ndim < 2)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "matmul: operands need at least 2 "
                               "dimensions: %s x %s", sa, sb);
    const int na = in[0].ndim, nb = in[1].ndim;
    int64_t m = ta ? in[0].dim[na - 1] : in[0].dim[na - 2];
    int64_t ka = ta ? in[0].dim[na - 2] : in[0].dim[na - 1];
    int64_t kb = tb ? in[1].dim[nb - 1] : in[1].dim[nb - 2];
    int64_t n = tb ? in[1].dim[nb - 2] : in[1].dim[nb - 1];
    if (ka != kb)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "matmul: inner dimensions differ: %s x "
                               "%s%s", sa, sb, flags_str(ta, tb));
    struct dg_shape ba = batch_part(&in[0]), bb = batch_part(&in[1]);
    if (!dg__broadcast_shapes(&ba, &bb, out))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "matmul: batch dimensions of %s and %s "
                               "do not broadcast", sa, sb);
    if (out->ndim + 2 > DG_MAX_DIMS)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "matmul: result of %s x %s has more "
                               "than %d dimensions", sa, sb, DG_MAX_DIMS);
    out->dtype = DG_F32;
    out->dim[out->ndim] = m;
    out->dim[out->ndim + 1] = n;
    out->ndim += 2;
    return DG_OK;
}

/* Element offset of batch index `index` (row-major over `batch`) in an operand whose batch
 * shape `own` is right-aligned to `batch` and broadcast along its size-1 axes. */
static int64_t batch_offset(const struct dg_shape *batch, const struct dg_shape *own,
                            int64_t matrix_size, int64_t index)
{
    int64_t offset = 0, own_stride = matrix_size;
    for (int i = batch->ndim - 1, j = own->ndim - 1; i >= 0; i--, j--) {
        int64_t coord = index % batch->dim[i];
        index /= batch->dim[i];
        if (j >= 0) {
            if (own->dim[j] != 1)
                offset += coord * own_stride;
            own_stride *= own->dim[j];
        }
    }
    return offset;
}

/* Whether an operand's batch shape is `batch` itself (up to leading 1s): its matrices are the
 * batch's matrices in order. */
static bool batch_is_full(const struct dg_shape *batch, const struct dg_shape *own)
{
    return dg__numel(own) == dg__numel(batch);
}

static void matmul_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                           const struct dg_tensor *in, struct dg_tensor *out,
                           const struct dg_exec_ctx *ctx)
{
    bool ta = matmul_attrs(attrs)->transpose_a, tb = matmul_attrs(attrs)->transpose_b;
    const struct dg_shape *sa = &in[0].shape, *sb = &in[1].shape, *so = &out->shape;
    const int na = sa->ndim, nb = sb->ndim;
    int64_t m = so->dim[so->ndim - 2], n = so->dim[so->ndim - 1];
    int64_t k = ta ? sa->dim[na - 2] : sa->dim[na - 1];
    int64_t lda = sa->dim[na - 1], ldb = sb->dim[nb - 1];
    const float *a = in[0].data, *b = in[1].data;
    float *c = out->data;
    struct dg_shape batch = batch_part(so), ba = batch_part(sa), bb = batch_part(sb);
    int64_t n_batch = dg__numel(&batch), size_a = m * k, size_b = k * n, size_c = m * n;
    int64_t numel_a = dg__numel(&ba), numel_b = dg__numel(&bb);

    if (n_batch == 1) {
        dg__sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n, ctx->n_threads);
        return;
    }
    if (numel_b == 1 && !ta && batch_is_full(&batch, &ba)) {
        /* [batch.., M, K] x [K, N]: one tall product with M' = batch * M. */
        dg__sgemm(false, tb, n_batch * m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n,
                  ctx->n_threads);
        return;
    }
    bool simple_a = numel_a == 1 || batch_is_full(&batch, &ba);
    bool simple_b = numel_b == 1 || batch_is_full(&batch, &bb);
    if (simple_a && simple_b) {
        dg__sgemm_batched(ta, tb, m, n, k, 1.0f, a, lda, numel_a == 1 ? 0 : size_a, b, ldb,
                          numel_b == 1 ? 0 : size_b, 0.0f, c, n, size_c, n_batch,
                          ctx->n_threads);
        return;
    }
    /* General broadcasting of the batch axes ([1,3,4] x [2,1,4,5] and the like). */
    for (int64_t i = 0; i < n_batch; i++)
        dg__sgemm(ta, tb, m, n, k, 1.0f, a + batch_offset(&batch, &ba, size_a, i), lda,
                  b + batch_offset(&batch, &bb, size_b, i), ldb, 0.0f, c + i * size_c, n,
                  ctx->n_threads);
}

/* x [.., W] as [rows, W] (a view). */
static dg_node *rows_of(dg_graph *g, dg_node *x)
{
    const int nd = dg__node_shape(x)->ndim;
    return dg_reshape(g, x, 2, (int64_t[]){-1, dg__node_shape(x)->dim[nd - 1]});
}

static dg_status matmul_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                 dg_node *grad, dg_node **gin)
{
    const void *attrs = dg__attrs(node);
    bool ta = matmul_attrs(attrs)->transpose_a, tb = matmul_attrs(attrs)->transpose_b;
    dg_node *a = dg__input(node, 0), *b = dg__input(node, 1);
    const int na = dg__node_shape(a)->ndim, nb = dg__node_shape(b)->ndim;
    /* Each product is a GEMM as large as the forward one: build only those dg_grad needs
     * (a network's first layer needs no gradient for its input). An operand's gradient has
     * exactly its shape at any batch (nothing to unbroadcast) when the other operand is 2-D:
     * the output's batch axes are then this operand's own. */
    if (dg__grad_needed(ctx, 0)) {
        dg_node *grad_a = ta ? dg_matmul_ex(g, b, grad, tb, true)
                             : dg_matmul_ex(g, grad, b, false, !tb);
        gin[0] = nb == 2 ? grad_a : dg__unbroadcast(g, grad_a, a);
    }
    if (dg__grad_needed(ctx, 1)) {
        /* A shared 2-D weight under batched rows: one GEMM over the flattened rows. The
         * reshapes fix the last axes (K of A, N of G), which are B's own: only where B's
         * shape cannot change with the plan's shapes. */
        if (nb == 2 && na > 2 && !ta && dg__node_dynamic_axes(b) == 0) {
            dg_node *rows_a = rows_of(g, a), *rows_g = rows_of(g, grad);
            gin[1] = tb ? dg_matmul_ex(g, rows_g, rows_a, true, false)
                        : dg_matmul_ex(g, rows_a, rows_g, true, false);
        } else {
            dg_node *grad_b = tb ? dg_matmul_ex(g, grad, a, true, ta)
                                 : dg_matmul_ex(g, a, grad, !ta, false);
            gin[1] = na == 2 ? grad_b : dg__unbroadcast(g, grad_b, b);
        }
    }
    return dg_graph_status(g);
}

/* Rows come from A, columns from B; batch axes from either (counted as changing together). */
static uint32_t matmul_dynamic_axes(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                    const struct dg_shape *in, const uint32_t *input_axes,
                                    const struct dg_shape *out)
{
    int nd = out->ndim, na = in[0].ndim, nb = in[1].ndim;
    int a_rows = matmul_attrs(attrs)->transpose_a ? na - 1 : na - 2;
    int b_cols = matmul_attrs(attrs)->transpose_b ? nb - 2 : nb - 1;
    uint32_t axes = 0;
    if (input_axes[0] & (1u << a_rows))
        axes |= 1u << (nd - 2);
    if (input_axes[1] & (1u << b_cols))
        axes |= 1u << (nd - 1);
    uint32_t batch_a = input_axes[0] & ((1u << (na - 2)) - 1);
    uint32_t batch_b = input_axes[1] & ((1u << (nb - 2)) - 1);
    if (batch_a | batch_b)
        axes |= (1u << (nd - 2)) - 1;
    return axes;
}

static void matmul_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    if (matmul_attrs(attrs)->transpose_a || matmul_attrs(attrs)->transpose_b)
        snprintf(buf, len, "%s%s", matmul_attrs(attrs)->transpose_a ? "A^T" : "A",
                 matmul_attrs(attrs)->transpose_b ? " B^T" : " B");
    else if (len > 0)
        buf[0] = '\0';
}

const struct dg_op_def dg_op_matmul = {
    .name = "matmul", .attrs_size = sizeof(struct matmul_attrs), .n_inputs = 2,
    .infer = matmul_infer, .forward = matmul_forward, .backward = matmul_backward,
    .dynamic_axes = matmul_dynamic_axes,
    .label = matmul_label,
};

dg_node *dg_matmul_ex(dg_graph *g, dg_node *a, dg_node *b, bool transpose_a, bool transpose_b)
{
    struct matmul_attrs attrs = {.transpose_a = transpose_a, .transpose_b = transpose_b};
    return dg__make_node(g, DG_OP_matmul, 2, (dg_node *[]){a, b}, &attrs);
}

dg_node *dg_matmul(dg_graph *g, dg_node *a, dg_node *b)
{
    return dg_matmul_ex(g, a, b, false, false);
}
