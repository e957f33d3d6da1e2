/*
 * gru_seq: a whole GRU layer's recurrence as one op, and its fused backward gru_seq_grad.
 *
 *   gru_seq(xw [B,T,3H], w_hh [3H,H] [, b_ih [3H]] [, b_hh [3H]] [, h0 [B,H]]) -> y [B,T,5H]
 *
 * xw holds the input projection of every step (x W_ih^T, one GEMM over all steps, made by the
 * caller); the biases are added here, in cache. Per step t, with h_{-1} = h0 (zeros when
 * absent) and PyTorch's gate order r, z, n (torch.nn.GRU's equations):
 *
 *   hw = h_{t-1} W_hh^T + b_hh                         (the recurrent side, bias included)
 *   r = sigmoid(xw_r + b_ir + hw_r),  z = sigmoid(xw_z + b_iz + hw_z)
 *   n = tanh(xw_n + b_in + r * hw_n)
 *   h_t = (1 - z) n + z h_{t-1}                       (computed as n + z (h_{t-1} - n))
 *
 * The output packs, per (b, t), the row [h_t | r | z | n | hn] (5H floats, hn = hw_n = the
 * reset gate's operand h_{t-1} W_hn^T + b_hn): the layer's h sequence is the slice [0, H) of
 * the last axis, the final state the slice at t = T-1. As lstm_seq (lstm.c), what the backward
 * pass needs travels inside the one output instead of being recomputed (recomputing would run
 * the whole recurrence, GEMMs included, a second time).
 *
 *   gru_seq_grad(gy [B,T,5H], y [B,T,5H], w_hh [3H,H] [, h0 [B,H]]) -> [B,T(+1),4H]
 *
 * gy may also be [B,T,H]: the gradient of the h part alone, the others zero (the usual case,
 * as lstm_seq_grad's: gru_seq's rule hands dh over instead of its zero pad to [B,T,5H]).
 *
 * Rows t < T hold [d a_r | d a_z | d a_n | d hn]: the gradients of the three input-side
 * pre-activations (d xw_t = the first 3H) and of hn. The recurrent side's gradient is
 * d hw_t = [d a_r | d a_z | d hn]. With the attribute with_state, an extra row T holds
 * [dh0 | 0 | 0 | 0]. Backwards over t, with dh carried from step t+1:
 *
 *   dh = gy_h + dh_carry
 *   dn = dh (1 - z) + gy_n,  dz = dh (h_{t-1} - n) + gy_z
 *   d a_n = dn (1 - n^2),  dr = d a_n hn + gy_r,  d hn = d a_n r + gy_hn
 *   d a_r = dr r (1 - r),  d a_z = dz z (1 - z)
 *   dh_carry(t-1) = dh z + d hw_t W_hh           (one [B,3H] x [3H,H] GEMM per step)
 *
 * (the gate parts of gy are usually zero but honoured, so the op is exactly the derivative of
 * gru_seq's packed output). It is a formula in y's entries (and h0's), so it is defined for
 * any y. dW_hh = sum_t d hw_t^T h_{t-1} and the bias gradients are left to gru_seq's backward
 * rule: ONE GEMM over all B*T rows (and dW_ih, dx through the caller's input projection).
 *
 * The per-step GEMMs multiply by the same W_hh at every step: each op packs it once per run
 * (into its workspace) and runs the steps through dg__sgemm_packed_b (gemm_prepacked.c),
 * which packs only the step's few rows of h (or d hw).
 *
 * Threads: as lstm_seq: batch rows never interact, so where each thread's block of rows is
 * large enough to pay, each thread runs the whole recurrence on its rows (no barrier per
 * step); otherwise each step's GEMM is split along its columns and the gates by rows. Every
 * element is computed by the same code whatever the split (the prepacked GEMM's value of an
 * element does not depend on the rows or columns around it, nor on the thread count), so
 * results are identical at any thread count. Second derivatives: gru_seq_grad's own backward
 * rule (gru_grad2.c) builds this formula from ordinary ops and differentiates that.
 */
#include "gru.h"
#include "recurrent_seq.h"
#include "simd/vmath.h"

#include <stdio.h>
#include <string.h>

struct gru_attrs {
    int32_t has_b_ih, has_b_hh; /* gru_seq: which biases follow w_hh */
    int32_t has_h0;             /* gru_seq and gru_seq_grad: h0 is the last input */
    int32_t with_state;         /* gru_seq_grad: append row T = [dh0 | 0 | 0 | 0] */
};

static inline const struct gru_attrs *gru_attrs(const void *attrs) { return attrs; }

/* gru_seq's inputs: xw, w_hh, then b_ih, b_hh, h0 where present, in that order. */
static int b_hh_index(const struct gru_attrs *a) { return 2 + a->has_b_ih; }
static int h0_index(const struct gru_attrs *a) { return 2 + a->has_b_ih + a->has_b_hh; }

/* ---- gru_seq -------------------------------------------------------------------------------- */

static dg_status gru_seq_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                               const struct dg_shape *in, struct dg_shape *out, char *msg,
                               size_t len)
{
    const struct gru_attrs *a = gru_attrs(attrs);
    char s0[96], s1[96], s2[96];
    if (n_inputs != 2 + a->has_b_ih + a->has_b_hh + a->has_h0)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "gru_seq: takes xw, w_hh, then "
                               "b_ih, b_hh and h0 when given; got %d inputs", n_inputs);
    if (!dg__seq_is_f32(&in[0], 3) || in[0].dim[2] % 3 != 0 || in[0].dim[2] == 0 ||
        !dg__seq_is_f32(&in[1], 2) || in[1].dim[0] != in[0].dim[2] ||
        in[1].dim[1] * 3 != in[1].dim[0])
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "gru_seq: xw must be float32 [B,T,3H] "
                               "and w_hh [3H,H], got %s and %s",
                               dg__shape_str(&in[0], s0, sizeof s0),
                               dg__shape_str(&in[1], s1, sizeof s1));
    int64_t batch = in[0].dim[0], hidden = in[1].dim[1];
    for (int i = 2; i < h0_index(a); i++)
        if (!(dg__seq_is_f32(&in[i], 1) && in[i].dim[0] == 3 * hidden))
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "gru_seq: %s must be float32 "
                                   "[3H] = [%lld] for w_hh %s, got %s",
                                   i == 2 && a->has_b_ih ? "b_ih" : "b_hh",
                                   (long long)(3 * hidden),
                                   dg__shape_str(&in[1], s1, sizeof s1),
                                   dg__shape_str(&in[i], s2, sizeof s2));
    if (a->has_h0 && !dg__seq_is_state(&in[h0_index(a)], batch, hidden))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "gru_seq: h0 must be float32 [B,H] = "
                               "[%lld,%lld] for xw %s, got %s", (long long)batch,
                               (long long)hidden, dg__shape_str(&in[0], s0, sizeof s0),
                               dg__shape_str(&in[h0_index(a)], s2, sizeof s2));
    *out = in[0];
    out->dim[2] = 5 * hidden;
    return DG_OK;
}

static size_t gru_seq_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                const struct dg_shape *in, const struct dg_shape *out,
                                int n_threads)
{
    /* h W_hh^T [B,3H], then W_hh^T packed and the rows' scratch */
    const int64_t B = in[0].dim[0], H = in[1].dim[1];
    return (size_t)(dg__seq_round16(3 * B * H) + dg__seq_packed_weight_floats(B, H, 3 * H,
                                                                              n_threads)) *
           sizeof(float);
}

/* One step of the forward pointwise part for rows [b0, b1): the gates from xw_t + hw (hw NULL:
 * no recurrent product), then h, written into y's rows at t. */
struct forward_step {
    const float *xw, *hw, *b_ih, *b_hh, *h0; /* hw, b_ih, b_hh, h0: NULL when absent */
    float *y;
    int64_t T, H, t;
};

static void forward_rows(const void *step, int64_t b0, int64_t b1)
{
    const struct forward_step *s = step;
    const struct dg_vmath *vm = dg__vmath();
    const int64_t H = s->H, P = 5 * H, T = s->T, t = s->t;
    for (int64_t b = b0; b < b1; b++) {
        float *row = s->y + (b * T + t) * P;
        float *h = row, *rz = row + H, *n = row + 3 * H, *hn = row + 4 * H;
        const float *r = rz, *z = rz + H;
        const float *x = s->xw + (b * T + t) * 3 * H;
        const float *hw = s->hw != NULL ? s->hw + b * 3 * H : NULL;
        /* r, z: input side + recurrent side (biases included) */
        if (hw != NULL)
            vm->add(x, hw, rz, 2 * H);
        else
            memcpy(rz, x, (size_t)(2 * H) * sizeof *rz);
        if (s->b_ih != NULL)
            vm->add(rz, s->b_ih, rz, 2 * H);
        if (s->b_hh != NULL)
            vm->add(rz, s->b_hh, rz, 2 * H);
        vm->sigmoid(rz, rz, 2 * H);
        /* hn = h W_hn^T + b_hn (zeros without either) */
        if (hw != NULL && s->b_hh != NULL)
            vm->add(hw + 2 * H, s->b_hh + 2 * H, hn, H);
        else if (hw != NULL)
            memcpy(hn, hw + 2 * H, (size_t)H * sizeof *hn);
        else if (s->b_hh != NULL)
            memcpy(hn, s->b_hh + 2 * H, (size_t)H * sizeof *hn);
        else
            memset(hn, 0, (size_t)H * sizeof *hn);
        /* n = tanh(xw_n + b_in + r hn) */
        const float *b_in = s->b_ih != NULL ? s->b_ih + 2 * H : NULL;
        if (b_in != NULL) {
#pragma omp simd
            for (int64_t j = 0; j < H; j++)
                n[j] = (x[2 * H + j] + b_in[j]) + r[j] * hn[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < H; j++)
                n[j] = x[2 * H + j] + r[j] * hn[j];
        }
        vm->tanh(n, n, H);
        const float *h_prev = t > 0 ? row - P : s->h0 != NULL ? s->h0 + b * H : NULL;
        if (h_prev != NULL) {
#pragma omp simd
            for (int64_t j = 0; j < H; j++)
                h[j] = n[j] + z[j] * (h_prev[j] - n[j]);
        } else {
#pragma omp simd
            for (int64_t j = 0; j < H; j++)
                h[j] = n[j] - z[j] * n[j];
        }
    }
}

struct forward_job {
    const float *xw, *b_ih, *b_hh, *h0;
    const struct dg__seq_packed_weight *w_hh; /* W_hh^T packed */
    float *y, *hw;
    int64_t B, T, H;
};

/* The recurrence over rows [b0, b1), GEMMs on gemm_threads threads (packing rows into
 * a_scratch), gates on point_threads. */
static void forward_range(const void *job_arg, int64_t b0, int64_t b1, int gemm_threads,
                          int point_threads, float *a_scratch)
{
    const struct forward_job *job = job_arg;
    const int64_t T = job->T, H = job->H;
    for (int64_t t = 0; t < T; t++) {
        const float *h_prev = t > 0 ? job->y + (b0 * T + t - 1) * 5 * H
                              : job->h0 != NULL ? job->h0 + b0 * H : NULL;
        if (h_prev != NULL)
            dg__sgemm_packed_b(false, b1 - b0, 1.0f, h_prev, t > 0 ? T * 5 * H : H,
                               &job->w_hh->b, 0.0f, job->hw + b0 * 3 * H, 3 * H, a_scratch,
                               gemm_threads);
        struct forward_step step = {job->xw, h_prev != NULL ? job->hw : NULL, job->b_ih,
                                    job->b_hh, job->h0, job->y, T, H, t};
        dg__seq_split_rows(forward_rows, &step, b0, b1, point_threads);
    }
}

static void gru_seq_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_tensor *in, struct dg_tensor *out,
                            const struct dg_exec_ctx *ctx)
{
    const struct gru_attrs *a = gru_attrs(attrs);
    const int64_t B = in[0].shape.dim[0], T = in[0].shape.dim[1], H = in[1].shape.dim[1];
    float *ws = ctx->workspace;
    const struct dg__seq_packed_weight w_hh =
        dg__seq_pack_weight(ws, 3 * B * H, true, B, H, 3 * H, in[1].data, H);
    const struct forward_job job = {
        in[0].data, a->has_b_ih ? in[2].data : NULL,
        a->has_b_hh ? in[b_hh_index(a)].data : NULL, a->has_h0 ? in[h0_index(a)].data : NULL,
        &w_hh, out->data, ws, B, T, H,
    };
    /* transcendentals make a gate element worth several elements of plain elementwise work */
    dg__seq_run(ctx, B, H, 3, 12, forward_range, &job, &w_hh);
}

static dg_node *make_grad(dg_graph *g, dg_node *grad, dg_node *y, dg_node *w_hh, dg_node *h0,
                          bool with_state)
{
    struct gru_attrs attrs = {.has_h0 = h0 != NULL, .with_state = with_state};
    return dg__make_node(g, DG_OP_gru_seq_grad, h0 ? 4 : 3,
                         (dg_node *[]){grad, y, w_hh, h0}, &attrs);
}

/* The recurrent side's part of x [4H] or [4H, ...] along axis 0 ([a_r | a_z | . | hn]: blocks
 * 0, 1 and 3) */
static dg_node *recurrent_blocks(dg_graph *g, dg_node *x, int64_t H)
{
    return dg_concat(g, 2, (dg_node *[]){dg_slice(g, x, 0, 0, 2 * H),
                                         dg_slice(g, x, 0, 3 * H, 4 * H)}, 0);
}

/* d = gru_seq_grad [B,T(+1),4H]: d xw = its first 3H columns (rows [0,T)); d b_ih, d b_hh
 * from their sum over B and T; dh0 from row T; dW_hh = d hw^T h_prev as ONE GEMM over all B*T
 * rows (over the 4H columns, of which the rows of the three recurrent blocks are kept), with
 * h_prev = [h0 (or zeros), h_0 .. h_{T-2}] along time. */
static dg_status gru_seq_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                  dg_node *grad, dg_node **gin)
{
    const struct gru_attrs *a = gru_attrs(dg__attrs(node));
    dg_node *w_hh = dg__input(node, 1);
    dg_node *h0 = a->has_h0 ? dg__input(node, h0_index(a)) : NULL;
    const int64_t T = dg_node_dim(node, 1), H = dg_node_dim(w_hh, 1);
    const bool with_state = h0 && dg__grad_needed(ctx, h0_index(a));
    dg_node *d = make_grad(g, dg__seq_gradient_of_output(node, grad, H), node, w_hh, h0,
                           with_state);
    dg_node *d_pre = with_state ? dg_slice(g, d, 1, 0, T) : d;
    if (dg__grad_needed(ctx, 0))
        gin[0] = dg_slice(g, d_pre, 2, 0, 3 * H);
    const bool need_b_ih = a->has_b_ih && dg__grad_needed(ctx, 2);
    const bool need_b_hh = a->has_b_hh && dg__grad_needed(ctx, b_hh_index(a));
    if (need_b_ih || need_b_hh) {
        dg_node *sums = dg_sum(g, d_pre, 2, (int[]){0, 1}, false); /* [4H] */
        if (need_b_ih)
            gin[2] = dg_slice(g, sums, 0, 0, 3 * H);
        if (need_b_hh)
            gin[b_hh_index(a)] = recurrent_blocks(g, sums, H);
    }
    if (dg__grad_needed(ctx, 1)) {
        dg_node *h_seq = dg__seq_h_sequence(g, node, H);
        dg_node *h_prev = dg__seq_h_prev(g, h_seq, h0, T, H);
        /* over all 4H columns: gathering d hw's 3H first (two slices and a concat of
         * [B*T, .]) costs about what the GEMM saves (measured: 22.0 -> 16.4 ms GEMM, +4.7 ms
         * copies at B*T = 4096, H = 256) */
        gin[1] = h_prev ? recurrent_blocks(g, dg_matmul_ex(g, dg__seq_flat(g, d_pre, 4 * H),
                                                            dg__seq_flat(g, h_prev, H), true,
                                                            false),
                                           H)
                        : dg__filled_like(g, w_hh, 0.0f); /* exact zeros (not 0 * w_hh) */
    }
    if (with_state)
        gin[h0_index(a)] =
            dg_slice(g, dg__seq_flat(g, dg_slice(g, d, 1, T, T + 1), 4 * H), 1, 0, H);
    return dg_graph_status(g);
}

static void gru_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    const struct gru_attrs *a = gru_attrs(attrs);
    snprintf(buf, len, "b_ih=%d b_hh=%d h0=%d state=%d", a->has_b_ih, a->has_b_hh, a->has_h0,
             a->with_state);
}

const struct dg_op_def dg_op_gru_seq = {
    .name = "gru_seq", .n_inputs = -1, .attrs_size = sizeof(struct gru_attrs),
    .infer = gru_seq_infer, .forward = gru_seq_forward, .backward = gru_seq_backward,
    .label = gru_label, .workspace_bytes = gru_seq_workspace,
};

dg_node *dg_gru_seq(dg_graph *g, dg_node *xw, dg_node *w_hh, dg_node *b_ih, dg_node *b_hh,
                    dg_node *h0)
{
    struct gru_attrs attrs = {
        .has_b_ih = b_ih != NULL, .has_b_hh = b_hh != NULL, .has_h0 = h0 != NULL,
    };
    dg_node *in[5] = {xw, w_hh};
    int n = 2;
    if (b_ih != NULL)
        in[n++] = b_ih;
    if (b_hh != NULL)
        in[n++] = b_hh;
    if (h0 != NULL)
        in[n++] = h0;
    return dg__make_node(g, DG_OP_gru_seq, n, in, &attrs);
}

/* ---- gru_seq_grad --------------------------------------------------------------------------- */

static dg_status gru_seq_grad_infer(const struct dg_op_def *def, const void *attrs,
                                    int n_inputs, const struct dg_shape *in,
                                    struct dg_shape *out, char *msg, size_t len)
{
    char s0[96], s1[96], s2[96];
    if (n_inputs != 3 + gru_attrs(attrs)->has_h0)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "gru_seq_grad: takes gy, y, "
                               "w_hh, then h0 when given; got %d inputs", n_inputs);
    bool ok = dg__seq_is_f32(&in[0], 3) && dg__seq_is_f32(&in[1], 3) &&
              dg__seq_is_f32(&in[2], 2) && in[2].dim[1] > 0 &&
              in[2].dim[0] == 3 * in[2].dim[1] && in[1].dim[2] == 5 * in[2].dim[1] &&
              (in[0].dim[2] == in[1].dim[2] || in[0].dim[2] == in[2].dim[1]);
    for (int d = 0; ok && d < 2; d++)
        ok = in[0].dim[d] == in[1].dim[d];
    if (!ok)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "gru_seq_grad: gy must be float32 "
                               "[B,T,5H] (or [B,T,H]: h's part alone), y [B,T,5H] and w_hh "
                               "[3H,H], got %s, %s and %s",
                               dg__shape_str(&in[0], s0, sizeof s0),
                               dg__shape_str(&in[1], s1, sizeof s1),
                               dg__shape_str(&in[2], s2, sizeof s2));
    if (n_inputs == 4 && !dg__seq_is_state(&in[3], in[1].dim[0], in[2].dim[1]))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "gru_seq_grad: h0 must be float32 "
                               "[B,H] for y %s, got %s", dg__shape_str(&in[1], s1, sizeof s1),
                               dg__shape_str(&in[3], s2, sizeof s2));
    *out = in[1];
    out->dim[1] += gru_attrs(attrs)->with_state ? 1 : 0;
    out->dim[2] = 4 * in[2].dim[1];
    return DG_OK;
}

static size_t gru_seq_grad_workspace(const struct dg_op_def *def, const void *attrs,
                                     int n_inputs, const struct dg_shape *in,
                                     const struct dg_shape *out, int n_threads)
{
    /* dh carried between steps [B,H], d hw of the step [B,3H], a zero row standing for h0;
     * then W_hh packed and the rows' scratch */
    const int64_t B = in[1].dim[0], H = in[2].dim[1];
    return (size_t)(dg__seq_round16((4 * B + 1) * H) +
                    dg__seq_packed_weight_floats(B, 3 * H, H, n_threads)) *
           sizeof(float);
}

struct backward_step {
    const float *gy, *y, *h0;
    float *d, *dh, *dhw;     /* d: the output; dh (zeros at first), dhw: workspace */
    const float *zeros;      /* H zeros: h_{-1} without h0 */
    int64_t T, rows, H, t;   /* rows: d's rows per batch entry (T or T + 1) */
    int64_t gy_width;        /* 5H, or H: gy holds the h part only */
    const struct dg__seq_packed_weight *w_hh; /* W_hh packed */
};

/* Element j of a step's row of gru_seq_grad, [d a_r | d a_z | d a_n | d hn], and of the
 * recurrent side's gradient d hw = [d a_r | d a_z | d hn]. */
static inline void put_gradients(float *d, float *dhw, int64_t H, int64_t j, float da_r,
                                 float da_z, float da_n, float dhn)
{
    d[j] = da_r;
    d[H + j] = da_z;
    d[2 * H + j] = da_n;
    d[3 * H + j] = dhn;
    dhw[j] = da_r;
    dhw[H + j] = da_z;
    dhw[2 * H + j] = dhn;
}

/* backward_rows' formula where gy holds the h part only (its other parts zero). */
static void backward_row_h_only(const float *gy, const float *row, const float *h_prev,
                                float *d, float *dh, float *dhw, int64_t H)
{
    const float *r = row + H, *z = row + 2 * H, *n = row + 3 * H, *hn = row + 4 * H;
#pragma omp simd
    for (int64_t j = 0; j < H; j++) {
        float dh_j = gy[j] + dh[j];
        float da_n = dh_j * (1.0f - z[j]) * (1.0f - n[j] * n[j]);
        float dhn = da_n * r[j];
        float da_r = da_n * hn[j] * r[j] * (1.0f - r[j]);
        float da_z = dh_j * (h_prev[j] - n[j]) * z[j] * (1.0f - z[j]);
        put_gradients(d, dhw, H, j, da_r, da_z, da_n, dhn);
        dh[j] = dh_j * z[j];
    }
}

static void backward_rows(const void *step, int64_t b0, int64_t b1)
{
    const struct backward_step *s = step;
    const int64_t H = s->H, P = 5 * H, T = s->T, t = s->t;
    for (int64_t b = b0; b < b1; b++) {
        const float *row = s->y + (b * T + t) * P, *gy = s->gy + (b * T + t) * s->gy_width;
        const float *h_prev = t > 0 ? row - P : s->h0 != NULL ? s->h0 + b * H : s->zeros;
        const float *r = row + H, *z = row + 2 * H, *n = row + 3 * H, *hn = row + 4 * H;
        float *d = s->d + (b * s->rows + t) * 4 * H;
        float *dh = s->dh + b * H, *dhw = s->dhw + b * 3 * H;
        if (s->gy_width == H) {
            backward_row_h_only(gy, row, h_prev, d, dh, dhw, H);
            continue;
        }
#pragma omp simd
        for (int64_t j = 0; j < H; j++) {
            float dh_j = gy[j] + dh[j];
            float dn = dh_j * (1.0f - z[j]) + gy[3 * H + j];
            float dz = dh_j * (h_prev[j] - n[j]) + gy[2 * H + j];
            float da_n = dn * (1.0f - n[j] * n[j]);
            float dr = da_n * hn[j] + gy[H + j];
            float dhn = da_n * r[j] + gy[4 * H + j];
            float da_r = dr * r[j] * (1.0f - r[j]);
            float da_z = dz * z[j] * (1.0f - z[j]);
            put_gradients(d, dhw, H, j, da_r, da_z, da_n, dhn);
            dh[j] = dh_j * z[j];
        }
    }
}

/* The backward recurrence over rows [b0, b1) (see forward_range). */
static void backward_range(const void *proto, int64_t b0, int64_t b1, int gemm_threads,
                           int point_threads, float *a_scratch)
{
    struct backward_step step = *(const struct backward_step *)proto;
    const int64_t T = step.T, H = step.H, rows = step.rows;
    for (int64_t t = T - 1; t >= 0; t--) {
        step.t = t;
        dg__seq_split_rows(backward_rows, &step, b0, b1, point_threads);
        /* dh_{t-1} = dh z + d hw_t W_hh (at t = 0: dh0, wanted only with the state row) */
        if (t > 0 || rows > T)
            dg__sgemm_packed_b(false, b1 - b0, 1.0f, step.dhw + b0 * 3 * H, 3 * H,
                               &step.w_hh->b, 1.0f, step.dh + b0 * H, H, a_scratch,
                               gemm_threads);
    }
}

static void gru_seq_grad_forward(const struct dg_op_def *def, const void *attrs,
                                 int n_inputs, const struct dg_tensor *in,
                                 struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    const int64_t B = in[1].shape.dim[0], T = in[1].shape.dim[1], H = in[2].shape.dim[1];
    const int64_t rows = out->shape.dim[1]; /* T, or T + 1 with the state row */
    float *ws = ctx->workspace, *d = out->data;
    const struct dg__seq_packed_weight w_hh =
        dg__seq_pack_weight(ws, (4 * B + 1) * H, false, B, 3 * H, H, in[2].data, H);
    const struct backward_step step = {
        in[0].data, in[1].data, gru_attrs(attrs)->has_h0 ? in[3].data : NULL, d,
        ws, ws + B * H, ws + 4 * B * H, T, rows, H, 0, in[0].shape.dim[2], &w_hh,
    };
    memset(ws, 0, (size_t)(B * H) * sizeof *ws);
    memset(ws + 4 * B * H, 0, (size_t)H * sizeof *ws);
    dg__seq_run(ctx, B, H, 3, 12, backward_range, &step, &w_hh);
    for (int64_t b = 0; rows > T && b < B; b++) {
        float *row = d + (b * rows + T) * 4 * H;
        memcpy(row, step.dh + b * H, (size_t)H * sizeof *row);
        memset(row + H, 0, (size_t)(3 * H) * sizeof *row);
    }
}

const struct dg_op_def dg_op_gru_seq_grad = {
    .name = "gru_seq_grad", .n_inputs = -1, .attrs_size = sizeof(struct gru_attrs),
    .infer = gru_seq_grad_infer, .forward = gru_seq_grad_forward,
    .backward = dg__gru_seq_grad_backward, .label = gru_label,
    .workspace_bytes = gru_seq_grad_workspace,
};
