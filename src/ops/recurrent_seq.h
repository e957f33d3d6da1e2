/*
 * What the fused recurrent layers (lstm.c, gru.c) and their composed second-order rules
 * (lstm_grad2.c, gru_grad2.c) share: shape checks, the recurrent weight packed once per run,
 * the thread plan (batch blocks or per-step splits), the first-order rule's graph pieces
 * (recurrent_seq.c) and the composed rule's graph pieces and driver (recurrent_grad2.c).
 *
 * A layer's op has one packed output y [B,T,P] whose slice [0, H) of the last axis is the h
 * sequence; its fused gradient op takes gy (y's shape, or [B,T,H]: h's part alone), y, w_hh
 * and the layer's initial state(s).
 */
#ifndef DG_RECURRENT_SEQ_H
#define DG_RECURRENT_SEQ_H

#include "op.h"
#include "gemm/gemm.h"

/* ---- kernel side (recurrent_seq.c) ---------------------------------------------------------- */

bool dg__seq_is_f32(const struct dg_shape *s, int ndim);
/* float32 [batch, hidden] */
bool dg__seq_is_state(const struct dg_shape *s, int64_t batch, int64_t hidden);

/* floats rounded up to a multiple of 16 (64 bytes) */
int64_t dg__seq_round16(int64_t floats);

/* The recurrent weight packed once per run for the per-step GEMMs (gemm_prepacked.c), then
 * the scratch those GEMMs pack their rows of A into: in a workspace's tail, after `head`
 * floats of the op's own. op(B) is k x n. */
struct dg__seq_packed_weight {
    struct dg__gemm_packed_b b;
    float *a_scratch;
    int64_t a_floats; /* scratch floats of one single-threaded part */
};

/* Floats of the packed weight plus its scratch for up to `batch` rows on n_threads. */
int64_t dg__seq_packed_weight_floats(int64_t batch, int64_t k, int64_t n, int n_threads);
/* Packs op(W) (k x n; W stored n x k with row stride ldw when transpose) at ws + head (head
 * rounded up to 16 floats). */
struct dg__seq_packed_weight dg__seq_pack_weight(float *ws, int64_t head, bool transpose,
                                                 int64_t batch, int64_t k, int64_t n,
                                                 const float *w, int64_t ldw);

/* Threads for the pointwise part of one step over [batch, hidden] (cost: plain elementwise
 * operations an element is worth), at most one per row. */
int dg__seq_rows_threads(const struct dg_exec_ctx *ctx, int64_t batch, int64_t hidden,
                         int64_t cost);

/* Blocks of contiguous batch rows that each run the whole recurrence alone (no barrier per
 * step), where every block is large enough to pay (its per-step GEMM is gates x hidden^2
 * multiply-adds a row); 1 (split each step instead) otherwise. */
int dg__seq_batch_parts(const struct dg_exec_ctx *ctx, int64_t batch, int64_t hidden,
                        int64_t gates);

/* The recurrence over batch rows [b0, b1): its GEMMs on gemm_threads threads (packing rows
 * into a_scratch), the pointwise part on point_threads. */
typedef void (*dg__seq_range_fn)(const void *job, int64_t b0, int64_t b1, int gemm_threads,
                                 int point_threads, float *a_scratch);
/* Runs range over all `batch` rows: dg__seq_batch_parts blocks in parallel, each with its own
 * a_floats of scratch, or one range with the threads split per step (point_threads from
 * dg__seq_rows_threads with `cost`). Every element is computed by the same code either way. */
void dg__seq_run(const struct dg_exec_ctx *ctx, int64_t batch, int64_t hidden, int64_t gates,
                 int64_t cost, dg__seq_range_fn range, const void *job,
                 const struct dg__seq_packed_weight *w);

/* rows(step, lo, hi) over [b0, b1) split in point_threads contiguous parts (one: a call). */
typedef void (*dg__seq_rows_fn)(const void *step, int64_t b0, int64_t b1);
void dg__seq_split_rows(dg__seq_rows_fn rows, const void *step, int64_t b0, int64_t b1,
                        int point_threads);

/* ---- first-order rule's graph pieces (recurrent_seq.c) -------------------------------------- */

/* x as [rows, width] */
dg_node *dg__seq_flat(dg_graph *g, dg_node *x, int64_t width);
/* What the fused gradient op needs of the gradient of y (node): dh [B,T,H] where grad is
 * exactly dh padded with zeros to y's shape (the backward of the slice [0, H) of the last
 * axis of y, when that slice is y's only consumer on the way to the loss: the pad node is
 * then left unused and dg_compile prunes it), else grad itself. */
dg_node *dg__seq_gradient_of_output(dg_node *node, dg_node *grad, int64_t H);
/* The h sequence of y, slice [0, H) of its last axis: the layer's own output slice where the
 * graph has one already (a copy of [B,T,H] saved), else a new one. */
dg_node *dg__seq_h_sequence(dg_graph *g, dg_node *node, int64_t H);
/* h_prev [B,T,H] = [h0 (or zeros), h_0 .. h_{T-2}] along time from h_seq [B,T,H]; NULL (all
 * zeros) when T == 1 and h0 is NULL. */
dg_node *dg__seq_h_prev(dg_graph *g, dg_node *h_seq, dg_node *h0, int64_t T, int64_t H);

/* ---- composed second-order rule (recurrent_grad2.c) ----------------------------------------- */

/* Step t of x [B, T', W] as [B, W]. */
dg_node *dg__seq_step_of(dg_graph *g, dg_node *x, int64_t t, int64_t width);
/* Block k (width H) of the last axis of x [B, n H]. */
dg_node *dg__seq_block(dg_graph *g, dg_node *x, int k, int64_t H);
/* 1 - x */
dg_node *dg__seq_one_minus(dg_graph *g, dg_node *x);
/* a + b where either may be NULL (an absent term; both absent: NULL) */
dg_node *dg__seq_plus(dg_graph *g, dg_node *a, dg_node *b);
/* Part k of gy_t (width P), or with a gy of width H (h's part alone) that part for k == 0 and
 * NULL (zero) for the others. */
dg_node *dg__seq_gy_part(dg_graph *g, dg_node *gy, int k, int64_t H);
/* sum(a * b), added to acc (NULL: none yet) */
dg_node *dg__seq_add_dot(dg_graph *g, dg_node *acc, dg_node *a, dg_node *b);

/* sum(fused_grad(gy, y, w_hh[, state0]) * upstream) built from ordinary ops, reading gy and y
 * through their steps gy_t, y_t [B,W]; state0 may be NULL (zeros), with_state: the formula
 * has row T. NULL with the graph's error on failure. */
typedef dg_node *(*dg__seq_composed_vjp)(dg_graph *g, dg_node *const *gy_t,
                                         dg_node *const *y_t, dg_node *w_hh, dg_node *state0,
                                         dg_node *upstream, int64_t T, bool with_state);
/* The backward rule of a fused gradient op (gy, y, w_hh[, state0]) named op_name: vjp's scalar
 * differentiated by dg_grad with respect to fresh proxies (x 1) of the inputs that need a
 * gradient, gy and y one proxy per step. */
dg_status dg__seq_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                dg_node *upstream, dg_node **gin, const char *op_name,
                                dg__seq_composed_vjp vjp);

#endif
