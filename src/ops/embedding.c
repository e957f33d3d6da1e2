/*
 * Embedding lookup (gather rows) and its scatter-add gradient.
 *
 *   embedding(table [V,D], indices [..] int32) -> [.., D]:  out[n, :] = table[indices[n], :]
 *   embedding_grad(grad [.., D], indices [..], table [V,D] shape only) -> [V, D]:
 *       out[v, :] = sum over n with indices[n] == v of grad[n, :], in increasing n
 *
 * An index outside [0, V) is invalid data, which no shape rule can see: the kernels never read
 * or write out of bounds (the forward writes a zero row, the gradient skips the position),
 * report it through the run-time fault channel (dg__exec_fault), and dg_run returns
 * DG_ERR_INVALID_ARG with "run: node 7 (embedding): embedding: index 12 at position 3 is
 * outside [0, 10)". The first invalid position in index order is the one named, whatever the
 * thread count.
 *
 * Determinism: the gradient splits the TABLE ROWS between threads (never the positions), and
 * every row adds its contributions in increasing position order, so the result is bitwise the
 * same for any thread count; no atomics.
 *
 * Backward: d table = embedding_grad(grad, indices, table); the indices get none (int32).
 * embedding_grad is linear in grad: its own backward is embedding(grad_output, indices).
 */
#include "op.h"

#include <omp.h>
#include <string.h>

enum embedding_variant { EMB_GATHER, EMB_SCATTER };

static dg_status embedding_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                 const struct dg_shape *in, struct dg_shape *out, char *msg,
                                 size_t len)
{
    char sa[128], sb[128], sc[128];
    /* gather: table = in[0], indices = in[1]; scatter: grad = in[0], indices = in[1],
     * table = in[2] */
    const struct dg_shape *table = def->variant == EMB_GATHER ? &in[0] : &in[2];
    const struct dg_shape *idx = &in[1];
    if (table->dtype != DG_F32 || table->ndim != 2)
        return dg__shape_error(msg, len, table->dtype != DG_F32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                               "%s: table must be float32 [V,D], got %s %s", def->name,
                               table->dtype == DG_F32 ? "float32" : "int32",
                               dg__shape_str(table, sa, sizeof sa));
    if (idx->dtype != DG_I32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "%s: indices must be int32, got "
                               "float32 %s", def->name, dg__shape_str(idx, sb, sizeof sb));
    if (idx->ndim >= DG_MAX_DIMS)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: indices %s have too many axes "
                               "(at most %d, the output adds one)", def->name,
                               dg__shape_str(idx, sb, sizeof sb), DG_MAX_DIMS - 1);
    if (def->variant == EMB_GATHER) {
        *out = *idx;
        out->dtype = DG_F32;
        out->dim[out->ndim++] = table->dim[1];
        return DG_OK;
    }
    const struct dg_shape *grad = &in[0];
    bool fits = grad->dtype == DG_F32 && grad->ndim == idx->ndim + 1 &&
                grad->dim[idx->ndim] == table->dim[1];
    for (int i = 0; fits && i < idx->ndim; i++)
        fits = grad->dim[i] == idx->dim[i];
    if (!fits)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: gradient %s does not fit indices "
                               "%s and table %s (expected the indices' shape plus [D])",
                               def->name, dg__shape_str(grad, sa, sizeof sa),
                               dg__shape_str(idx, sb, sizeof sb),
                               dg__shape_str(table, sc, sizeof sc));
    *out = *table;
    return DG_OK;
}

/* The first position whose index is outside [0, V), or -1: reported once, in index order. */
static int64_t first_invalid(const struct dg_op_def *def, const int32_t *idx, int64_t n,
                             int64_t v, const struct dg_exec_ctx *ctx)
{
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= v) {
            dg__exec_fault(ctx, "%s: index %d at position %lld is outside [0, %lld)",
                           def->name, (int)idx[i], (long long)i, (long long)v);
            return i;
        }
    return -1;
}

static void embedding_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_tensor *in, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx)
{
    const int32_t *idx = in[1].data;
    int64_t n = dg__numel(&in[1].shape);
    if (def->variant == EMB_GATHER) {
        const float *table = in[0].data;
        int64_t v = in[0].shape.dim[0], d = in[0].shape.dim[1];
        float *o = out->data;
        first_invalid(def, idx, n, v, ctx);
        int threads = dg__threads_for(ctx, n * d);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            if (idx[i] >= 0 && idx[i] < v)
                memcpy(o + i * d, table + (int64_t)idx[i] * d, (size_t)d * sizeof *o);
            else
                memset(o + i * d, 0, (size_t)d * sizeof *o);
        }
        return;
    }
    const float *grad = in[0].data;
    int64_t v = in[2].shape.dim[0], d = in[2].shape.dim[1];
    float *o = out->data;
    first_invalid(def, idx, n, v, ctx);
    /* Threads own disjoint table rows [lo, hi) and scan every position in order. */
    int threads = dg__threads_for(ctx, n * d > v * d ? n * d : v * d);
    if (threads > v)
        threads = v > 0 ? (int)v : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int64_t lo = v * t / nt, hi = v * (t + 1) / nt;
        memset(o + lo * d, 0, (size_t)((hi - lo) * d) * sizeof *o);
        for (int64_t i = 0; i < n; i++) {
            int64_t row = idx[i];
            if (row < lo || row >= hi)
                continue;
            float *dst = o + row * d;
            const float *src = grad + i * d;
#pragma omp simd
            for (int64_t j = 0; j < d; j++)
                dst[j] += src[j];
        }
    }
}

static dg_status embedding_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *grad, dg_node **gin)
{
    dg_node *indices = dg__input(node, 1);
    if (ctx->def->variant == EMB_GATHER) {
        if (dg__grad_needed(ctx, 0))
            gin[0] = dg__make_node(g, DG_OP_embedding_grad, 3,
                                   (dg_node *[]){grad, indices, dg__input(node, 0)}, NULL);
    } else if (dg__grad_needed(ctx, 0)) {
        gin[0] = dg__make_node(g, DG_OP_embedding, 2, (dg_node *[]){grad, indices}, NULL);
    }
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_embedding = {
    .name = "embedding", .variant = EMB_GATHER, .n_inputs = 2,
    .infer = embedding_infer, .forward = embedding_forward, .backward = embedding_backward,
};

const struct dg_op_def dg_op_embedding_grad = {
    .name = "embedding_grad", .variant = EMB_SCATTER, .n_inputs = 3,
    .shape_only_inputs = 1u << 2,
    .infer = embedding_infer, .forward = embedding_forward, .backward = embedding_backward,
};

dg_node *dg_embedding(dg_graph *g, dg_node *table, dg_node *indices)
{
    return dg__make_node(g, DG_OP_embedding, 2, (dg_node *[]){table, indices}, NULL);
}
