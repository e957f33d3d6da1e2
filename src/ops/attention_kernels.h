/*
 * The fused attention's kernels (attention_kernels.c), shared with the op's rules
 * (attention.c): the attribute struct, the problem sizes, and the entry points the op's
 * forward functions call. Internal to src/ops/.
 */
#ifndef DG_ATTENTION_KERNELS_H
#define DG_ATTENTION_KERNELS_H

#include "op.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATT_BLOCK 64 /* query rows per task, keys per tile of the online softmax */

/* Which gradient an attention_grad node computes; ATT_KV: d k and d v side by side,
 * [..,S,Dh+Dv], which the rule slices apart (one pass over the scores for both); ATT_QKV
 * (self-attention, T == S): d q, d k and d v side by side, [..,T,2Dh+Dv]. */
enum att_which { ATT_Q = 0, ATT_K = 1, ATT_V = 2, ATT_KV = 3, ATT_QKV = 4 };

struct attention_attrs {
    float scale;
    float p;        /* dropout probability on the attention weights, [0, 1) */
    int32_t causal;
    int32_t which;  /* attention_grad: the input whose gradient it computes */
    int32_t heads;  /* > 0: packed mode, one input qkv [B,T,3C] split into this many heads */
    uint64_t salt;  /* per-node dropout stream */
};

static inline const struct attention_attrs *att_attrs(const void *attrs) { return attrs; }

/* The problem sizes: `heads` independent problems (the product of the leading axes, or B*H in
 * packed mode), T queries, S keys, head widths Dh (q, k) and Dv (v). */
struct att_dims {
    int64_t heads; /* product of the leading axes */
    int64_t t, s, dh, dv;
};

static inline void att_dims(const struct dg_shape *q, const struct dg_shape *k,
                            const struct dg_shape *v, struct att_dims *d)
{
    int nd = q->ndim;
    d->heads = 1;
    for (int i = 0; i < nd - 2; i++)
        d->heads *= q->dim[i];
    d->t = q->dim[nd - 2];
    d->dh = q->dim[nd - 1];
    d->s = k->dim[nd - 2];
    d->dv = v->dim[nd - 1];
}

/* The problem sizes of packed mode: B*H heads, T = S, Dh = Dv = C / H. */
static inline void att_dims_packed(const struct dg_shape *qkv, int heads, struct att_dims *d)
{
    d->heads = qkv->dim[0] * heads;
    d->t = d->s = qkv->dim[1];
    d->dh = d->dv = qkv->dim[2] / 3 / heads;
}

#define ATT_WHOLE 256 /* largest T and S for the whole-head kernels */

static inline bool att_whole(const struct att_dims *d)
{
    return d->t <= ATT_WHOLE && d->s <= ATT_WHOLE;
}

/* The whole-head kernels' small GEMM:
 *   C (m x n, row stride ldc) = alpha * A B (+ C when accumulate),
 *   A(r, p) = a[r * a_rs + p * a_ks] (m x k; a_rs or a_ks is 1), B k x n with row stride ldb.
 * On the calling thread. Every element of C is one sum in the order p = 0, 1, ..., k - 1
 * (then scaled by alpha), so a result depends on neither the thread count nor where the
 * operands sit in memory (packed rows 3C apart or contiguous). k == 0 gives alpha * 0 (+ C).
 * Columns past n and rows past m are never read or written. */
typedef void (*dg_att_gemm_fn)(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                               int64_t a_rs, int64_t a_ks, const float *b, int64_t ldb,
                               bool accumulate, float *c, int64_t ldc);
/* AVX-512 (attention_avx512.c, built alone with the ISA's flags); call only where
 * dg__isa() >= DG_ISA_AVX512. */
void dg__att_gemm_avx512(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                         int64_t a_rs, int64_t a_ks, const float *b, int64_t ldb,
                         bool accumulate, float *c, int64_t ldc);

/* The forward of an attention node (variant 0) and of an attention_grad node (variant 1):
 * the op's forward functions, with the node's attributes. */
void dg__attention_run(const struct attention_attrs *a, int n_inputs,
                       const struct dg_tensor *in, struct dg_tensor *out,
                       const struct dg_exec_ctx *ctx);
void dg__attention_grad_run(const struct attention_attrs *a, int n_inputs,
                            const struct dg_tensor *in, struct dg_tensor *out,
                            const struct dg_exec_ctx *ctx);

/* The workspace bytes those kernels need at these sizes with n_threads threads (grad: an
 * attention_grad node). */
size_t dg__attention_workspace(const struct attention_attrs *a, bool grad,
                               const struct att_dims *d, int n_threads);

#endif
