/*
 * The fused attention's kernels (attention_kernels.c), shared with the op's rules
 * (attention.c): the attribute struct, the problem sizes, and the entry points the op's
 * forward functions call. Internal to src/ops/.
 */
#ifndef DG_ATTENTION_KERNELS_H
#define DG_ATTENTION_KERNELS_H

#include "op.h"
#include "simd/vmath.h"

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

/* The whole-head kernels' small GEMM, which each file that includes attention_whole.h defines
 * as `static void att_gemm(m, n, k, alpha, a, a_rs, a_ks, b, ldb, accumulate, c, ldc)`:
 *   C (m x n, row stride ldc) = alpha * A B (+ C when accumulate),
 *   A(r, p) = a[r * a_rs + p * a_ks] (m x k; a_rs or a_ks is 1), B k x n with row stride ldb.
 * On the calling thread. Every element of C is one sum whose order depends only on k (the
 * AVX-512 kernel: p = 0, 1, ..., k - 1, then the scaling by alpha), so a result depends on
 * neither the thread count nor where the operands sit in memory. k == 0 gives 0 (+ C).
 * Columns past n and rows past m are never read or written. */

/* The dropout mask of a node's run (attention_kernels.c: att_mask_init). */
struct att_mask {
    bool on;
    uint64_t base;
    uint32_t threshold;
    float inv_keep; /* 1 / (1 - p) */
};

/* The tensors of one problem (one entry of the leading axes). */
struct att_head {
    const float *q, *k, *v, *out, *grad_out;
    int64_t lq, lk, lv, lo; /* row strides of q, k, v and of out / grad_out (whole-head
                               kernels; the streaming ones assume Dh, Dh, Dv, Dv) */
};

/* Asks for rows [r0, r1) of a packed head (q, k, v, and out, grad_out when present; and its
 * output rows, `dst_width` floats at each of `n_dst` places `dst_step` apart in rows of
 * `ld_dst`, for writing) to be brought into the caches while the current head computes: a
 * head's rows sit 3C apart in tensors larger than the caches, and fetched on first touch they
 * stall the gather. The whole-head kernels ask for one band of the next head per band of
 * their own, so that the requests spread over the head's work. */
struct att_next {
    struct att_head src;
    float *dst;
    int64_t ld_dst, dst_width, dst_step;
    int n_dst;
};

/* Keys [0, limit) are visible to query i. */
static inline int64_t att_limit(bool causal, int64_t i, const struct att_dims *d)
{
    if (!causal)
        return d->s;
    int64_t lim = i + (d->s - d->t) + 1;
    return lim < 0 ? 0 : lim > d->s ? d->s : lim;
}

/* a . b over n floats */
static inline float att_dot(const float *a, const float *b, int64_t n)
{
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; i++)
        acc += a[i] * b[i];
    return acc;
}

/* row[c] = exp(row[c] - shift) for c < n; returns their sum (in the vectorised order both
 * softmax kernels use). */
static inline float att_exp_shifted_sum(float *row, int64_t n, float shift,
                                        const struct dg_vmath *vm)
{
#pragma omp simd
    for (int64_t c = 0; c < n; c++)
        row[c] -= shift;
    vm->exp(row, row, n);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < n; c++)
        sum += row[c];
    return sum;
}

/* The whole-head kernels (attention_whole.h), compiled once per path: the portable one in
 * attention_kernels.c and these in attention_avx512.c (call only where dg__isa() >=
 * DG_ISA_AVX512). Forward of head h: out (T x Dv, row stride lo) = P~ v. Backward: the
 * gradients into dst_q (T rows), dst_k and dst_v (S rows), each NULL when not wanted, rows
 * `width` floats apart. scratch: att_whole_floats; next: the head to prefetch, or NULL. */
void dg__att_whole_forward_avx512(const struct att_head *hd, const struct att_dims *d,
                                  const struct attention_attrs *a, const struct att_mask *mask,
                                  int64_t h, float *out, int64_t lo, float *scratch,
                                  const struct att_next *next, const struct dg_vmath *vm);
void dg__att_whole_grad_avx512(const struct att_head *hd, const struct att_dims *d,
                               const struct attention_attrs *a, const struct att_mask *mask,
                               int64_t h, float *dst_q, float *dst_k, float *dst_v,
                               int64_t width, float *scratch, const struct att_next *next,
                               const struct dg_vmath *vm);

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
