/*
 * Sequence ops: embedding lookup, comparisons and selection, masks and scaled dot-product
 * attention (issue 12). Part of the public surface; included by dagrad.h. Each returns a new
 * node, or NULL with the error stuck to the graph. The maths, gradients and behaviour at
 * special points of each op are in docs/op-reference.md; docs/sequence-ops.md shows how they
 * fit together.
 */
#ifndef DAGRAD_SEQ_H
#define DAGRAD_SEQ_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Gathers rows of table [V,D] (float32, usually a parameter) by int32 indices of any shape
 * [..] (at most DG_MAX_DIMS-1 axes): out [.., D], out[n,:] = table[indices[n],:]. The table's
 * gradient is a scatter-add that gives the same bits at any thread count. An index outside
 * [0, V) is a run-time error: dg_run returns DG_ERR_INVALID_ARG with a message naming the node,
 * the index and its position; nothing is read out of bounds. */
DG_API dg_node *dg_embedding(dg_graph *g, dg_node *table, dg_node *indices);

/* ---- Comparisons and selection ------------------------------------------------------------ */

/* Float32 masks over the broadcast shape of a and b: 1.0 where the relation holds, else 0.0.
 * IEEE: a NaN operand makes every relation false but not_equal. No gradient flows (zero by
 * definition: dg_grad treats the mask as a constant). */
DG_API dg_node *dg_equal(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_not_equal(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_greater(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_greater_equal(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_less(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_less_equal(dg_graph *g, dg_node *a, dg_node *b);

/* a where cond != 0, else b; the three (float32) broadcast together. Gradients: a's where the
 * condition holds, b's elsewhere, cond none. */
DG_API dg_node *dg_where(dg_graph *g, dg_node *cond, dg_node *a, dg_node *b);

/* The int32 index of the largest (smallest) element along `axis` (negative counts from the
 * end); the output drops that axis. Ties: the first index; NaN counts as the extreme. */
DG_API dg_node *dg_argmax(dg_graph *g, dg_node *x, int axis);
DG_API dg_node *dg_argmin(dg_graph *g, dg_node *x, int axis);

/* x limited to [lo, hi] (lo <= hi, else DG_ERR_INVALID_ARG). Gradient 1 for lo <= x <= hi
 * (boundaries included, as PyTorch), 0 outside. */
DG_API dg_node *dg_clamp(dg_graph *g, dg_node *x, float lo, float hi);

/* The smallest element over the axes (as dg_max); the gradient is split among ties. */
DG_API dg_node *dg_min(dg_graph *g, dg_node *x, int n_axes, const int *axes, bool keepdims);

/* log(sum(exp(x))) along axis, stable (the max is subtracted); -inf for a slice of -inf. */
DG_API dg_node *dg_logsumexp(dg_graph *g, dg_node *x, int axis, bool keepdims);

/* Variance over the axes (n_axes == 0 with axes == NULL: all): the mean squared deviation,
 * divided by n - 1 when unbiased (Bessel), by n otherwise; n from the run-time shape. */
DG_API dg_node *dg_variance(dg_graph *g, dg_node *x, int n_axes, const int *axes,
                            bool unbiased, bool keepdims);

/* Converts between float32 and int32: float -> int truncates toward zero and saturates (NaN
 * gives 0); int -> float rounds to nearest. No gradient flows. The same dtype returns x. */
DG_API dg_node *dg_cast(dg_graph *g, dg_node *x, dg_dtype dtype);

/* ---- Masks ---------------------------------------------------------------------------------- */

/* A float32 constant [T,T] (1 <= T <= 32768): 1.0 where key j <= query i, else 0.0. */
DG_API dg_node *dg_causal_mask(dg_graph *g, int64_t t);

/* softmax along axis over the positions where mask != 0 (mask broadcasts against x); the
 * others get probability 0 and no gradient. A slice with no position left gives NaN. */
DG_API dg_node *dg_masked_softmax(dg_graph *g, dg_node *x, dg_node *mask, int axis);

/* ---- Attention ------------------------------------------------------------------------------ */

/* Scaled dot-product attention as one fused op with fused gradients:
 *   out = softmax(q k^T / sqrt(Dh) [causal]) v,   q [..,T,Dh], k [..,S,Dh], v [..,S,Dv] -> [..,T,Dv]
 * The leading axes (e.g. [B,H] for multi-head attention with heads split out) must be equal
 * for q, k and v; each entry is an independent problem. causal: key j is visible to query i
 * when j <= i + S - T (bottom-right aligned: j <= i for T == S; a single query against S
 * cached keys sees them all); a query with no visible key gives zeros. Dropout with
 * probability dropout_p in [0, 1) on the attention weights when `key` (dg_dropout_key: int32
 * [3] {seed, step, training}) says training; key may be NULL when dropout_p is 0. The kernel
 * streams keys through an online softmax: memory O((T + S) * D) per head, no T x S scores.
 * Gradients for q, k and v (first order only: a second dg_grad through it fails with
 * DG_ERR_NOT_DIFFERENTIABLE naming attention_grad). */
DG_API dg_node *dg_attention(dg_graph *g, dg_node *q, dg_node *k, dg_node *v, dg_node *key,
                             bool causal, float dropout_p);

/* The same attention over a packed projection: qkv [B,T,3C] holds q, k and v side by side
 * (columns [0,C), [C,2C), [2C,3C)), each split into `heads` heads of C/heads columns, and the
 * result is [B,T,C] with the heads side by side: exactly
 *   merge_heads(dg_attention(split(q), split(k), split(v), ...))
 * (the same dropout mask too) without the slices, permutes and copies, and with one gradient
 * [B,T,3C] for qkv. Self-attention only (T keys for T queries). Kernels: one task per head
 * keeps the head's T x T probabilities in scratch (memory O(T^2) per thread; the streaming
 * kernels of dg_attention are for long contexts). dg_transformer_block uses it up to T = 256. */
DG_API dg_node *dg_attention_packed(dg_graph *g, dg_node *qkv, int heads, dg_node *key,
                                    bool causal, float dropout_p);

/* ---- Recurrence ----------------------------------------------------------------------------- */

/* A whole LSTM layer's recurrence as one fused op (what dg_lstm/dg_recurrent build on):
 *   xw [B,T,4H] = x W_ih^T for every step (gate order i, f, g, o, PyTorch's), w_hh [4H,H],
 *   bias [4H] (b_ih + b_hh) or NULL, h0, c0 [B,H] or NULL (zeros). Per step: [a_i a_f a_g a_o]
 *   = xw_t + bias + h_{t-1} W_hh^T; i, f, o = sigmoid, g = tanh; c_t = f c_{t-1} + i g;
 *   h_t = o tanh(c_t).
 * Returns y [B,T,6H] packing per step [h_t | c_t | i | f | g | o]: the h sequence is
 * dg_slice(y, 2, 0, H), the final states the slices of step T-1. Gradients for every input
 * through a fused backward op; that op is differentiable again (second and higher orders:
 * its rule rebuilds the same formula from ordinary ops, T steps unrolled, and differentiates
 * it), so dg_grad of a gradient works as through an unrolled LSTM. */
DG_API dg_node *dg_lstm_seq(dg_graph *g, dg_node *xw, dg_node *w_hh, dg_node *bias,
                            dg_node *h0, dg_node *c0);

/* A whole GRU layer's recurrence as one fused op (what dg_gru/dg_recurrent build on):
 *   xw [B,T,3H] = x W_ih^T for every step (gate order r, z, n, PyTorch's), w_hh [3H,H],
 *   b_ih, b_hh [3H] or NULL (none), h0 [B,H] or NULL (zeros). Per step, torch.nn.GRU's
 *   equations: hw = h_{t-1} W_hh^T + b_hh; r, z = sigmoid(xw_{r,z} + b_i{r,z} + hw_{r,z});
 *   n = tanh(xw_n + b_in + r hw_n) (the reset gate multiplies h W_hn^T + b_hn);
 *   h_t = (1 - z) n + z h_{t-1}.
 * Returns y [B,T,5H] packing per step [h_t | r | z | n | hw_n]: the h sequence is
 * dg_slice(y, 2, 0, H), the final state the slice of step T-1. Gradients for every input
 * through a fused backward op, itself differentiable again (second and higher orders), as
 * dg_lstm_seq. */
DG_API dg_node *dg_gru_seq(dg_graph *g, dg_node *xw, dg_node *w_hh, dg_node *b_ih,
                           dg_node *b_hh, dg_node *h0);

#ifdef __cplusplus
}
#endif

#endif /* DAGRAD_SEQ_H */
