/*
 * add_n(x_0, .., x_{n-1}) = x_0 + x_1 + ... + x_{n-1}: any number n >= 1 of float32 inputs
 * of one shape (no broadcasting: a sum of many terms is a sequence's or an ensemble's, where
 * the shapes agree; broadcast first with dg_broadcast_to otherwise).
 *
 * Forward: element by element, the terms are added in input order in float32, the same order
 * whatever the thread count (dg__parallel_chunks), so results are bitwise reproducible. Each
 * chunk is summed in a small block on the stack and written once, after every input of that
 * block was read: out may be input 0's buffer (in place), even when input 0 appears again
 * among the later inputs.
 * Backward: d x_i = grad for every i (the same node, no copies); inputs nobody needs get none.
 */
#include "op.h"

#include <stdio.h>
#include <stdlib.h>

/* Elements summed at once per block: 1 KiB of floats on the stack. */
#define ADD_N_BLOCK 256

static dg_status add_n_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                             const struct dg_shape *in, struct dg_shape *out, char *msg,
                             size_t len)
{
    char s0[128], si[128];
    for (int i = 0; i < n_inputs; i++) {
        if (in[i].dtype != DG_F32)
            return dg__shape_error(msg, len, DG_ERR_DTYPE, "add_n: input %d must be float32, "
                                   "got int32 %s", i + 1, dg__shape_str(&in[i], si, sizeof si));
        bool same = in[i].ndim == in[0].ndim;
        for (int d = 0; same && d < in[0].ndim; d++)
            same = in[i].dim[d] == in[0].dim[d];
        if (!same)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "add_n: input %d is %s but input 1 "
                                   "is %s (add_n does not broadcast)", i + 1,
                                   dg__shape_str(&in[i], si, sizeof si),
                                   dg__shape_str(&in[0], s0, sizeof s0));
    }
    *out = in[0];
    return DG_OK;
}

struct add_n_job {
    int n;
    const struct dg_tensor *in;
    float *out;
};

static void add_n_chunk(void *arg, int64_t lo, int64_t hi)
{
    const struct add_n_job *job = arg;
    float acc[ADD_N_BLOCK];
    for (int64_t start = lo; start < hi; start += ADD_N_BLOCK) {
        int64_t count = hi - start < ADD_N_BLOCK ? hi - start : ADD_N_BLOCK;
        const float *x0 = (const float *)job->in[0].data + start;
        for (int64_t j = 0; j < count; j++)
            acc[j] = x0[j];
        for (int i = 1; i < job->n; i++) {
            const float *xi = (const float *)job->in[i].data + start;
#pragma omp simd
            for (int64_t j = 0; j < count; j++)
                acc[j] += xi[j];
        }
        for (int64_t j = 0; j < count; j++)
            job->out[start + j] = acc[j];
    }
}

static void add_n_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                          const struct dg_tensor *in, struct dg_tensor *out,
                          const struct dg_exec_ctx *ctx)
{
    struct add_n_job job = {n_inputs, in, out->data};
    dg__parallel_chunks(ctx, dg__numel(&out->shape), add_n_chunk, &job);
}

/* d x_i = grad */
static dg_status add_n_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                dg_node *grad, dg_node **gin)
{
    for (int i = 0; i < dg__n_inputs(node); i++)
        if (dg__grad_needed(ctx, i))
            gin[i] = grad;
    return dg_graph_status(g);
}

const struct dg_op_def dg_op_add_n = {
    .name = "add_n", .n_inputs = -1, .can_inplace = true,
    .infer = add_n_infer, .forward = add_n_forward, .backward = add_n_backward,
    .dynamic_axes = dg__dynamic_elementwise,
};

dg_node *dg_add_n(dg_graph *g, int n, dg_node *const *xs)
{
    if (g == NULL || dg_graph_status(g) != DG_OK)
        return NULL;
    if (n < 1)
        return dg__fail(g, DG_ERR_INVALID_ARG, "add_n: %d inputs (at least 1 needed)", n);
    if (xs == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "add_n: the input array is NULL");
    return dg__make_node(g, DG_OP_add_n, n, xs, NULL);
}
