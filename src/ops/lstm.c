/*
 * lstm_seq: a whole LSTM layer's recurrence as one op, and its fused backward lstm_seq_grad.
 *
 *   lstm_seq(xw [B,T,4H], w_hh [4H,H] [, bias [4H]] [, h0 [B,H]] [, c0 [B,H]]) -> y [B,T,6H]
 *
 * xw holds the input projection of every step (x W_ih^T, one GEMM over all steps, made by the
 * caller), bias the sum b_ih + b_hh (added here, in cache, rather than in a pass over
 * [B,T,4H]). Per step t, with h_{-1} = h0, c_{-1} = c0 (zeros when absent) and PyTorch's gate
 * order:
 *
 *   [a_i a_f a_g a_o] = xw_t + bias + h_{t-1} W_hh^T
 *   i, f, o = sigmoid(a_i, a_f, a_o), g = tanh(a_g)
 *   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
 *
 * The output packs, per (b, t), the row [h_t | c_t | i | f | g | o] (6H floats): the layer's
 * h sequence is the slice [0, H) of the last axis, the final states the slices at t = T-1.
 * The op has one output (docs/architecture.md): what the backward pass needs (c and the gate
 * activations) travels inside it instead of being recomputed, because recomputing would mean
 * running the whole recurrence, GEMMs included, a second time.
 *
 *   lstm_seq_grad(gy [B,T,6H], y [B,T,6H], w_hh [4H,H] [, c0 [B,H]]) -> [B,T(+1),4H]
 *
 * gy may also be [B,T,H]: the gradient of the h part alone, the others zero. That is the
 * usual case (a layer's output is the slice [0, H) of y, whose backward pads dh with zeros
 * to [B,T,6H]); lstm_seq's rule then hands dh over directly, so that neither the padded
 * copy is made nor its zeros read.
 *
 * Rows t < T hold d a_t (the gradient of xw_t: the pre-activations); with the attribute
 * with_state, an extra row T holds [dh0 | dc0 | 0 | 0] (only built when a gradient of h0 or c0
 * is wanted, so that the usual case needs no slice copy of d xw). It walks the steps backwards
 * with dh, dc carried from step t+1 (dh_{t} += d a_{t+1} W_hh, one [B,4H] x [4H,H] GEMM per
 * step; dc_t += dc_{t+1} * f_{t+1}):
 *
 *   dh = gy_h + dh_carry;  tc = tanh(c_t)
 *   dc = gy_c + dc_carry + dh * o * (1 - tc^2)
 *   d a_i = (dc g + gy_i) i (1-i),  d a_f = (dc c_{t-1} + gy_f) f (1-f),
 *   d a_g = (dc i + gy_g) (1-g^2),  d a_o = (dh tc + gy_o) o (1-o)
 *
 * (the gate parts of gy are usually zero but honoured, so the op is exactly the derivative of
 * lstm_seq's packed output). It is a formula in y's entries, so it is defined for any y.
 * dW_hh = sum_t d a_t^T h_{t-1} is left to lstm_seq's backward rule: ONE GEMM over all B*T
 * rows, as is dW_ih through the caller's input projection.
 *
 * The per-step GEMMs multiply by the same W_hh at every step: each op packs it once per run
 * (into its workspace) and runs the steps through dg__sgemm_packed_b (gemm_prepacked.c),
 * which packs only the step's few rows of h (or d a).
 *
 * Threads: batch rows never interact, so where each thread's block of rows is large enough
 * to pay, each thread runs the whole recurrence on its rows (no barrier per step); otherwise
 * each step's GEMM is split along its columns and the gates by rows. Every element is
 * computed by the same code whatever the split (the prepacked GEMM's value of an element
 * does not depend on the rows or columns around it, nor on the thread count), so results
 * are identical at any thread count.
 * Second derivatives: lstm_seq_grad's own backward rule (lstm_grad2.c) builds this formula
 * from ordinary ops on fresh proxies of its inputs and differentiates that (first order
 * stays on these kernels).
 */
#include "lstm.h"
#include "recurrent_seq.h"
#include "simd/vmath.h"

#include <stdio.h>
#include <string.h>

struct lstm_attrs {
    int32_t has_h0, has_c0; /* lstm_seq: which optional inputs follow; lstm_seq_grad: has_c0 */
    int32_t with_state;     /* lstm_seq_grad: append row T = [dh0 | dc0 | 0 | 0] */
    int32_t has_bias;       /* lstm_seq: a bias [4H] follows w_hh */
};

static inline const struct lstm_attrs *lstm_attrs(const void *attrs) { return attrs; }

/* lstm_seq's inputs: xw, w_hh, then bias, h0, c0 where present, in that order. */
static int h0_index(const struct lstm_attrs *a) { return 2 + a->has_bias; }
static int c0_index(const struct lstm_attrs *a) { return 2 + a->has_bias + a->has_h0; }

/* ---- lstm_seq ------------------------------------------------------------------------------- */

static dg_status lstm_seq_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                const struct dg_shape *in, struct dg_shape *out, char *msg,
                                size_t len)
{
    const struct lstm_attrs *a = lstm_attrs(attrs);
    char s0[96], s1[96], s2[96];
    if (n_inputs != 2 + a->has_bias + a->has_h0 + a->has_c0)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "lstm_seq: takes xw, w_hh, then "
                               "bias, h0 and c0 when given; got %d inputs", n_inputs);
    if (!dg__seq_is_f32(&in[0], 3) || in[0].dim[2] % 4 != 0 || in[0].dim[2] == 0 ||
        !dg__seq_is_f32(&in[1], 2) || in[1].dim[0] != in[0].dim[2] ||
        in[1].dim[1] * 4 != in[1].dim[0])
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "lstm_seq: xw must be float32 [B,T,4H] "
                               "and w_hh [4H,H], got %s and %s",
                               dg__shape_str(&in[0], s0, sizeof s0),
                               dg__shape_str(&in[1], s1, sizeof s1));
    int64_t batch = in[0].dim[0], hidden = in[1].dim[1];
    if (a->has_bias && !(dg__seq_is_f32(&in[2], 1) && in[2].dim[0] == 4 * hidden))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "lstm_seq: bias must be float32 [4H] = "
                               "[%lld] for w_hh %s, got %s", (long long)(4 * hidden),
                               dg__shape_str(&in[1], s1, sizeof s1),
                               dg__shape_str(&in[2], s2, sizeof s2));
    for (int i = h0_index(a); i < n_inputs; i++)
        if (!dg__seq_is_state(&in[i], batch, hidden))
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "lstm_seq: %s must be float32 "
                                   "[B,H] = [%lld,%lld] for xw %s, got %s",
                                   i == h0_index(a) && a->has_h0 ? "h0" : "c0", (long long)batch,
                                   (long long)hidden, dg__shape_str(&in[0], s0, sizeof s0),
                                   dg__shape_str(&in[i], s2, sizeof s2));
    *out = in[0];
    out->dim[2] = 6 * hidden;
    return DG_OK;
}

static size_t lstm_seq_workspace(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                 const struct dg_shape *in, const struct dg_shape *out,
                                 int n_threads)
{
    const int64_t B = in[0].dim[0], H = in[1].dim[1];
    /* W_hh^T packed and the rows' scratch (the step's GEMM adds straight into y's gates) */
    return (size_t)dg__seq_packed_weight_floats(B, H, 4 * H, n_threads) * sizeof(float);
}

/* The forward pointwise part of step t for rows [b0, b1): y's gate slots at t hold the
 * pre-activations (xw_t + bias, plus h_{t-1} W_hh^T added by the step's GEMM); the gates,
 * then c and h, are written over and into y's rows at t, and the gate slots at t + 1 get
 * xw_{t+1} + bias, ready for the next step's GEMM. */
struct forward_step {
    const float *xw, *bias, *c0; /* bias, c0: NULL when absent */
    float *y;
    int64_t T, H, t;
};

/* y's gate slots at step t = xw_t + bias for rows [b0, b1). */
static void preactivation_rows(const struct forward_step *s, int64_t t, int64_t b0,
                               int64_t b1)
{
    const struct dg_vmath *vm = dg__vmath();
    const int64_t H = s->H, T = s->T;
    for (int64_t b = b0; b < b1; b++) {
        float *gates = s->y + (b * T + t) * 6 * H + 2 * H;
        const float *x = s->xw + (b * T + t) * 4 * H;
        if (s->bias != NULL)
            vm->add(x, s->bias, gates, 4 * H);
        else
            memcpy(gates, x, (size_t)(4 * H) * sizeof *gates);
    }
}

static void forward_rows(const void *step, int64_t b0, int64_t b1)
{
    const struct forward_step *s = step;
    const struct dg_vmath *vm = dg__vmath();
    const int64_t H = s->H, P = 6 * H, T = s->T, t = s->t;
    for (int64_t b = b0; b < b1; b++) {
        float *row = s->y + (b * T + t) * P;
        float *gates = row + 2 * H;
        vm->sigmoid(gates, gates, 2 * H);         /* i, f */
        vm->tanh(gates + 2 * H, gates + 2 * H, H); /* g */
        vm->sigmoid(gates + 3 * H, gates + 3 * H, H); /* o */
        const float *c_prev = t > 0 ? row - P + H : s->c0 != NULL ? s->c0 + b * H : NULL;
        const float *i = gates, *f = gates + H, *g = gates + 2 * H, *o = gates + 3 * H;
        float *h = row, *c = row + H;
        if (c_prev != NULL) {
#pragma omp simd
            for (int64_t j = 0; j < H; j++)
                c[j] = f[j] * c_prev[j] + i[j] * g[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < H; j++)
                c[j] = i[j] * g[j];
        }
        vm->tanh(c, h, H);
        vm->mul(o, h, h, H);
    }
    if (t + 1 < T)
        preactivation_rows(s, t + 1, b0, b1);
}

struct forward_job {
    const float *xw, *bias, *h0, *c0;
    const struct dg__seq_packed_weight *w_hh; /* W_hh^T packed */
    float *y;
    int64_t B, T, H;
};

/* The recurrence over rows [b0, b1), GEMMs on gemm_threads threads (packing rows into
 * a_scratch), gates on point_threads. */
static void forward_range(const void *job_arg, int64_t b0, int64_t b1, int gemm_threads,
                          int point_threads, float *a_scratch)
{
    const struct forward_job *job = job_arg;
    const int64_t T = job->T, H = job->H;
    struct forward_step step = {job->xw, job->bias, job->c0, job->y, T, H, 0};
    preactivation_rows(&step, 0, b0, b1);
    for (int64_t t = 0; t < T; t++) {
        const float *h_prev = t > 0 ? job->y + (b0 * T + t - 1) * 6 * H
                              : job->h0 != NULL ? job->h0 + b0 * H : NULL;
        if (h_prev != NULL) /* gates += h_{t-1} W_hh^T */
            dg__sgemm_packed_b(false, b1 - b0, 1.0f, h_prev, t > 0 ? T * 6 * H : H,
                               &job->w_hh->b, 1.0f, job->y + (b0 * T + t) * 6 * H + 2 * H,
                               T * 6 * H, a_scratch, gemm_threads);
        step.t = t;
        dg__seq_split_rows(forward_rows, &step, b0, b1, point_threads);
    }
}

static void lstm_seq_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                             const struct dg_tensor *in, struct dg_tensor *out,
                             const struct dg_exec_ctx *ctx)
{
    const struct lstm_attrs *a = lstm_attrs(attrs);
    const int64_t B = in[0].shape.dim[0], T = in[0].shape.dim[1], H = in[1].shape.dim[1];
    float *ws = ctx->workspace;
    const struct dg__seq_packed_weight w_hh =
        dg__seq_pack_weight(ws, 0, true, B, H, 4 * H, in[1].data, H);
    const struct forward_job job = {
        in[0].data, a->has_bias ? in[2].data : NULL,
        a->has_h0 ? in[h0_index(a)].data : NULL, a->has_c0 ? in[c0_index(a)].data : NULL,
        &w_hh, out->data, B, T, H,
    };
    /* transcendentals make a gate element worth several elements of plain elementwise work */
    dg__seq_run(ctx, B, H, 4, 16, forward_range, &job, &w_hh);
}

static dg_node *make_grad(dg_graph *g, dg_node *grad, dg_node *y, dg_node *w_hh, dg_node *c0,
                          bool with_state)
{
    struct lstm_attrs attrs = {.has_c0 = c0 != NULL, .with_state = with_state};
    return dg__make_node(g, DG_OP_lstm_seq_grad, c0 ? 4 : 3,
                         (dg_node *[]){grad, y, w_hh, c0}, &attrs);
}

/* d xw = rows [0,T) of lstm_seq_grad, d bias their sum over B and T; dh0, dc0 from its row T;
 * dW_hh = d a^T h_prev as one GEMM over all B*T rows (h_prev: dg__seq_h_prev). */
static dg_status lstm_seq_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                   dg_node *grad, dg_node **gin)
{
    const struct lstm_attrs *a = lstm_attrs(dg__attrs(node));
    dg_node *w_hh = dg__input(node, 1);
    dg_node *h0 = a->has_h0 ? dg__input(node, h0_index(a)) : NULL;
    dg_node *c0 = a->has_c0 ? dg__input(node, c0_index(a)) : NULL;
    const int64_t T = dg_node_dim(node, 1), H = dg_node_dim(w_hh, 1);
    const bool with_state = (h0 && dg__grad_needed(ctx, h0_index(a))) ||
                            (c0 && dg__grad_needed(ctx, c0_index(a)));
    dg_node *d = make_grad(g, dg__seq_gradient_of_output(node, grad, H), node, w_hh, c0,
                           with_state);
    dg_node *d_pre = with_state ? dg_slice(g, d, 1, 0, T) : d;
    gin[0] = d_pre;
    if (a->has_bias && dg__grad_needed(ctx, 2))
        gin[2] = dg_sum(g, d_pre, 2, (int[]){0, 1}, false);
    if (dg__grad_needed(ctx, 1)) {
        dg_node *h_seq = dg__seq_h_sequence(g, node, H);
        dg_node *h_prev = dg__seq_h_prev(g, h_seq, h0, T, H);
        gin[1] = h_prev ? dg_matmul_ex(g, dg__seq_flat(g, d_pre, 4 * H),
                                       dg__seq_flat(g, h_prev, H), true, false)
                        : dg__filled_like(g, w_hh, 0.0f); /* exact zeros (not 0 * w_hh) */
    }
    if (with_state) {
        dg_node *state = dg__seq_flat(g, dg_slice(g, d, 1, T, T + 1), 4 * H);
        if (h0)
            gin[h0_index(a)] = dg_slice(g, state, 1, 0, H);
        if (c0)
            gin[c0_index(a)] = dg_slice(g, state, 1, H, 2 * H);
    }
    return dg_graph_status(g);
}

static void lstm_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    const struct lstm_attrs *a = lstm_attrs(attrs);
    snprintf(buf, len, "bias=%d h0=%d c0=%d state=%d", a->has_bias, a->has_h0, a->has_c0,
             a->with_state);
}

const struct dg_op_def dg_op_lstm_seq = {
    .name = "lstm_seq", .n_inputs = -1, .attrs_size = sizeof(struct lstm_attrs),
    .infer = lstm_seq_infer, .forward = lstm_seq_forward, .backward = lstm_seq_backward,
    .label = lstm_label, .workspace_bytes = lstm_seq_workspace,
};

dg_node *dg_lstm_seq(dg_graph *g, dg_node *xw, dg_node *w_hh, dg_node *bias, dg_node *h0,
                     dg_node *c0)
{
    struct lstm_attrs attrs = {
        .has_h0 = h0 != NULL, .has_c0 = c0 != NULL, .has_bias = bias != NULL,
    };
    dg_node *in[5] = {xw, w_hh};
    int n = 2;
    if (bias != NULL)
        in[n++] = bias;
    if (h0 != NULL)
        in[n++] = h0;
    if (c0 != NULL)
        in[n++] = c0;
    return dg__make_node(g, DG_OP_lstm_seq, n, in, &attrs);
}

/* ---- lstm_seq_grad -------------------------------------------------------------------------- */

static dg_status lstm_seq_grad_infer(const struct dg_op_def *def, const void *attrs,
                                     int n_inputs, const struct dg_shape *in,
                                     struct dg_shape *out, char *msg, size_t len)
{
    char s0[96], s1[96], s2[96];
    if (n_inputs != 3 + lstm_attrs(attrs)->has_c0)
        return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "lstm_seq_grad: takes gy, y, "
                               "w_hh, then c0 when given; got %d inputs", n_inputs);
    bool ok = dg__seq_is_f32(&in[0], 3) && dg__seq_is_f32(&in[1], 3) && dg__seq_is_f32(&in[2], 2) &&
              in[2].dim[1] > 0 && in[2].dim[0] == 4 * in[2].dim[1] &&
              in[1].dim[2] == 6 * in[2].dim[1] &&
              (in[0].dim[2] == in[1].dim[2] || in[0].dim[2] == in[2].dim[1]);
    for (int d = 0; ok && d < 2; d++)
        ok = in[0].dim[d] == in[1].dim[d];
    if (!ok)
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "lstm_seq_grad: gy must be float32 "
                               "[B,T,6H] (or [B,T,H]: h's part alone), y [B,T,6H] and w_hh "
                               "[4H,H], got %s, %s and %s",
                               dg__shape_str(&in[0], s0, sizeof s0),
                               dg__shape_str(&in[1], s1, sizeof s1),
                               dg__shape_str(&in[2], s2, sizeof s2));
    if (n_inputs == 4 && !dg__seq_is_state(&in[3], in[1].dim[0], in[2].dim[1]))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "lstm_seq_grad: c0 must be float32 "
                               "[B,H] for y %s, got %s", dg__shape_str(&in[1], s1, sizeof s1),
                               dg__shape_str(&in[3], s2, sizeof s2));
    *out = in[1];
    out->dim[1] += lstm_attrs(attrs)->with_state ? 1 : 0;
    out->dim[2] = 4 * in[2].dim[1];
    return DG_OK;
}

static size_t lstm_seq_grad_workspace(const struct dg_op_def *def, const void *attrs,
                                      int n_inputs, const struct dg_shape *in,
                                      const struct dg_shape *out, int n_threads)
{
    /* dh and dc carried between steps, tanh(c_t): [B,H] each; a zero row standing for c0;
     * then W_hh packed and the rows' scratch */
    const int64_t B = in[1].dim[0], H = in[2].dim[1];
    return (size_t)(dg__seq_round16((3 * B + 1) * H) +
                    dg__seq_packed_weight_floats(B, 4 * H, H, n_threads)) *
           sizeof(float);
}

struct backward_step {
    const float *gy, *y, *c0;
    float *d, *dh, *dc, *tc; /* d: the output; dh, dc (zeros at first), tc: [B,H] workspace */
    const float *zeros;      /* H zeros: c_{-1} without c0 */
    int64_t T, rows, H, t;  /* rows: d's rows per batch entry (T or T + 1) */
    int64_t gy_width;       /* 6H, or H: gy holds the h part only */
    const struct dg__seq_packed_weight *w_hh; /* W_hh packed */
};

/* backward_rows' formula where gy holds the h part only (its other parts zero). */
static void backward_row_h_only(const float *gy, const float *row, const float *c_prev,
                                const float *tc, float *d, float *dh, float *dc, int64_t H)
{
    const float *i = row + 2 * H, *f = row + 3 * H, *g = row + 4 * H, *o = row + 5 * H;
#pragma omp simd
    for (int64_t j = 0; j < H; j++) {
        float dh_j = gy[j] + dh[j];
        float dc_j = dc[j] + dh_j * o[j] * (1.0f - tc[j] * tc[j]);
        d[j] = dc_j * g[j] * i[j] * (1.0f - i[j]);
        d[H + j] = dc_j * c_prev[j] * f[j] * (1.0f - f[j]);
        d[2 * H + j] = dc_j * i[j] * (1.0f - g[j] * g[j]);
        d[3 * H + j] = dh_j * tc[j] * o[j] * (1.0f - o[j]);
        dc[j] = dc_j * f[j];
    }
}

static void backward_rows(const void *step, int64_t b0, int64_t b1)
{
    const struct backward_step *s = step;
    const struct dg_vmath *vm = dg__vmath();
    const int64_t H = s->H, P = 6 * H, T = s->T, t = s->t;
    for (int64_t b = b0; b < b1; b++) {
        const float *row = s->y + (b * T + t) * P, *gy = s->gy + (b * T + t) * s->gy_width;
        const float *c_prev = t > 0 ? row - P + H : s->c0 != NULL ? s->c0 + b * H : s->zeros;
        const float *i = row + 2 * H, *f = row + 3 * H, *g = row + 4 * H, *o = row + 5 * H;
        float *d = s->d + (b * s->rows + t) * 4 * H;
        float *dh = s->dh + b * H, *dc = s->dc + b * H, *tc = s->tc + b * H;
        vm->tanh(row + H, tc, H);
        if (s->gy_width == H) {
            backward_row_h_only(gy, row, c_prev, tc, d, dh, dc, H);
            continue;
        }
#pragma omp simd
        for (int64_t j = 0; j < H; j++) {
            float dh_j = gy[j] + dh[j];
            float dc_j = gy[H + j] + dc[j] +
                         dh_j * o[j] * (1.0f - tc[j] * tc[j]);
            float di = dc_j * g[j] + gy[2 * H + j];
            float df = dc_j * c_prev[j] + gy[3 * H + j];
            float dg = dc_j * i[j] + gy[4 * H + j];
            float d_o = dh_j * tc[j] + gy[5 * H + j];
            d[j] = di * i[j] * (1.0f - i[j]);
            d[H + j] = df * f[j] * (1.0f - f[j]);
            d[2 * H + j] = dg * (1.0f - g[j] * g[j]);
            d[3 * H + j] = d_o * o[j] * (1.0f - o[j]);
            dc[j] = dc_j * f[j];
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
        /* dh_{t-1} = d a_t W_hh (at t = 0: dh0, wanted only with the state row) */
        if (t > 0 || rows > T)
            dg__sgemm_packed_b(false, b1 - b0, 1.0f, step.d + (b0 * rows + t) * 4 * H,
                               rows * 4 * H, &step.w_hh->b, 0.0f, step.dh + b0 * H, H, a_scratch,
                               gemm_threads);
    }
}

static void lstm_seq_grad_forward(const struct dg_op_def *def, const void *attrs,
                                  int n_inputs, const struct dg_tensor *in,
                                  struct dg_tensor *out, const struct dg_exec_ctx *ctx)
{
    const int64_t B = in[1].shape.dim[0], T = in[1].shape.dim[1], H = in[2].shape.dim[1];
    const int64_t rows = out->shape.dim[1]; /* T, or T + 1 with the state row */
    float *ws = ctx->workspace, *d = out->data;
    const struct dg__seq_packed_weight w_hh =
        dg__seq_pack_weight(ws, (3 * B + 1) * H, false, B, 4 * H, H, in[2].data, H);
    const struct backward_step step = {
        in[0].data, in[1].data, lstm_attrs(attrs)->has_c0 ? in[3].data : NULL, d,
        ws, ws + B * H, ws + 2 * B * H, ws + 3 * B * H, T, rows, H, 0, in[0].shape.dim[2], &w_hh,
    };
    memset(ws, 0, (size_t)(2 * B * H) * sizeof *ws);
    memset(ws + 3 * B * H, 0, (size_t)H * sizeof *ws);
    dg__seq_run(ctx, B, H, 4, 16, backward_range, &step, &w_hh);
    for (int64_t b = 0; rows > T && b < B; b++) {
        float *row = d + (b * rows + T) * 4 * H;
        memcpy(row, step.dh + b * H, (size_t)H * sizeof *row);
        memcpy(row + H, step.dc + b * H, (size_t)H * sizeof *row);
        memset(row + 2 * H, 0, (size_t)(2 * H) * sizeof *row);
    }
}

const struct dg_op_def dg_op_lstm_seq_grad = {
    .name = "lstm_seq_grad", .n_inputs = -1, .attrs_size = sizeof(struct lstm_attrs),
    .infer = lstm_seq_grad_infer, .forward = lstm_seq_grad_forward,
    .backward = dg__lstm_seq_grad_backward, .label = lstm_label,
    .workspace_bytes = lstm_seq_grad_workspace,
};
