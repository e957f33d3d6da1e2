/*
 * Op cases for the sequence ops (issue 12): embedding and its scatter-add gradient. The
 * PyTorch side of each row, with the same name, is in tests/gen/cases_seq.py.
 */
#include "op.h"
#include "op_cases.h"

#include <string.h>

static dg_node *build_embedding(dg_graph *g, dg_node *const *in)
{
    return dg_embedding(g, in[0], in[1]);
}

static dg_node *build_embedding_grad(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_embedding_grad, 3, in, NULL);
}

static dg_node *build_equal(dg_graph *g, dg_node *const *in) { return dg_equal(g, in[0], in[1]); }
static dg_node *build_not_equal(dg_graph *g, dg_node *const *in)
{
    return dg_not_equal(g, in[0], in[1]);
}
static dg_node *build_greater_equal(dg_graph *g, dg_node *const *in)
{
    return dg_greater_equal(g, in[0], in[1]);
}
static dg_node *build_less(dg_graph *g, dg_node *const *in) { return dg_less(g, in[0], in[1]); }
static dg_node *build_less_equal(dg_graph *g, dg_node *const *in)
{
    return dg_less_equal(g, in[0], in[1]);
}
static dg_node *build_greater(dg_graph *g, dg_node *const *in)
{
    return dg_greater(g, in[0], in[1]);
}

static dg_node *build_where(dg_graph *g, dg_node *const *in)
{
    return dg_where(g, in[0], in[1], in[2]);
}

/* where with the condition a comparison of the operands: a ReLU-like select */
static dg_node *build_where_compare(dg_graph *g, dg_node *const *in)
{
    return dg_where(g, dg_greater(g, in[0], in[1]), in[0], dg_scale(g, in[1], 0.5f));
}

/* int32 outputs are checked through a cast back to float32 (covering cast too) */
static dg_node *build_argmax1(dg_graph *g, dg_node *const *in)
{
    return dg_cast(g, dg_argmax(g, in[0], 1), DG_F32);
}
static dg_node *build_argmax_last(dg_graph *g, dg_node *const *in)
{
    return dg_cast(g, dg_argmax(g, in[0], -1), DG_F32);
}
static dg_node *build_argmin0(dg_graph *g, dg_node *const *in)
{
    return dg_cast(g, dg_argmin(g, in[0], 0), DG_F32);
}
static dg_node *build_cast_round_trip(dg_graph *g, dg_node *const *in)
{
    return dg_cast(g, dg_cast(g, in[0], DG_I32), DG_F32);
}
static dg_node *build_cast_i32(dg_graph *g, dg_node *const *in)
{
    return dg_cast(g, in[0], DG_F32);
}

static dg_node *build_clamp(dg_graph *g, dg_node *const *in)
{
    return dg_clamp(g, in[0], -0.5f, 0.75f);
}
static dg_node *build_min1(dg_graph *g, dg_node *const *in)
{
    return dg_min(g, in[0], 1, (int[]){1}, false);
}
static dg_node *build_min_all(dg_graph *g, dg_node *const *in)
{
    return dg_min(g, in[0], 0, NULL, true);
}
static dg_node *build_logsumexp(dg_graph *g, dg_node *const *in)
{
    return dg_logsumexp(g, in[0], -1, false);
}
static dg_node *build_logsumexp_keep(dg_graph *g, dg_node *const *in)
{
    return dg_logsumexp(g, in[0], 0, true);
}
static dg_node *build_variance_unbiased(dg_graph *g, dg_node *const *in)
{
    return dg_variance(g, in[0], 1, (int[]){-1}, true, false);
}
static dg_node *build_variance_biased(dg_graph *g, dg_node *const *in)
{
    return dg_variance(g, in[0], 2, (int[]){0, 2}, false, true);
}
/* scores [2,4,4] under a causal mask */
static dg_node *build_masked_softmax_causal(dg_graph *g, dg_node *const *in)
{
    return dg_masked_softmax(g, in[0], dg_causal_mask(g, 4), -1);
}
/* scores [3,5] under a mask input [3,5] of 0/1 (every row keeps one position at least) */
static dg_node *build_masked_softmax(dg_graph *g, dg_node *const *in)
{
    return dg_masked_softmax(g, in[0], in[1], 1);
}

static dg_node *build_attention(dg_graph *g, dg_node *const *in)
{
    return dg_attention(g, in[0], in[1], in[2], NULL, false, 0.0f);
}
static dg_node *build_attention_packed_causal(dg_graph *g, dg_node *const *in)
{
    return dg_attention_packed(g, in[0], 2, NULL, true, 0.0f);
}
static dg_node *build_attention_packed(dg_graph *g, dg_node *const *in)
{
    return dg_attention_packed(g, in[0], 4, NULL, false, 0.0f);
}
static dg_node *build_attention_causal(dg_graph *g, dg_node *const *in)
{
    return dg_attention(g, in[0], in[1], in[2], NULL, true, 0.0f);
}
/* dropout 0.2 with the key in evaluation mode ({seed, step, 0}): no dropout */
static dg_node *build_attention_eval(dg_graph *g, dg_node *const *in)
{
    return dg_attention(g, in[0], in[1], in[2], in[3], true, 0.2f);
}
/* the fused gradients on their own: in0..in4 = q, k, v, out, grad_out (out is arbitrary: the
 * op is defined by its formula, D_i = grad_out_i . out_i). dg_grad of a fused attention with
 * respect to the inputs in `wrt` builds the attention_grad node wanted (q; k alone; v alone;
 * k and v together); the case rebuilds it on the fixture's out and grad_out. */
static dg_node *build_attention_grad(dg_graph *g, dg_node *const *in, int n_wrt,
                                     const int *wrt_index, bool causal)
{
    dg_node *att = dg_attention(g, in[0], in[1], in[2], NULL, causal, 0.0f);
    dg_node *loss = dg_sum(g, dg_mul(g, att, in[4]), 0, NULL, false);
    dg_node *wrt[3], *grads[3];
    for (int i = 0; i < n_wrt; i++)
        wrt[i] = in[wrt_index[i]];
    if (loss == NULL || dg_grad(g, loss, n_wrt, wrt, grads) != DG_OK)
        return NULL;
    for (int i = dg_graph_node_count(g) - 1; i >= 0; i--) {
        dg_node *n = dg_graph_node(g, i);
        if (strcmp(dg_node_op_name(n), "attention_grad") == 0)
            return dg__make_node(g, DG_OP_attention_grad, 5,
                                 (dg_node *[]){in[0], in[1], in[2], in[3], in[4]},
                                 dg__attrs(n));
    }
    return NULL;
}
static dg_node *build_attention_grad_q(dg_graph *g, dg_node *const *in)
{
    return build_attention_grad(g, in, 1, (int[]){0}, false);
}
static dg_node *build_attention_grad_k(dg_graph *g, dg_node *const *in)
{
    return build_attention_grad(g, in, 1, (int[]){1}, true);
}
static dg_node *build_attention_grad_v(dg_graph *g, dg_node *const *in)
{
    return build_attention_grad(g, in, 1, (int[]){2}, true);
}
static dg_node *build_attention_grad_kv(dg_graph *g, dg_node *const *in)
{
    return build_attention_grad(g, in, 2, (int[]){1, 2}, true);
}
static dg_node *build_attention_grad_q_causal(dg_graph *g, dg_node *const *in)
{
    return build_attention_grad(g, in, 1, (int[]){0}, true);
}
static dg_node *build_attention_grad_qkv(dg_graph *g, dg_node *const *in)
{
    return build_attention_grad(g, in, 3, (int[]){0, 1, 2}, true);
}

/* The fused LSTM recurrence: in0 = xw [B,T,4H], in1 = w_hh [4H,H], then bias [4H], h0, c0
 * [B,H] as the row says. */
static dg_node *build_lstm_seq(dg_graph *g, dg_node *const *in)
{
    return dg_lstm_seq(g, in[0], in[1], NULL, NULL, NULL);
}
static dg_node *build_lstm_seq_h0(dg_graph *g, dg_node *const *in)
{
    return dg_lstm_seq(g, in[0], in[1], NULL, in[2], NULL);
}
static dg_node *build_lstm_seq_c0(dg_graph *g, dg_node *const *in)
{
    return dg_lstm_seq(g, in[0], in[1], NULL, NULL, in[2]);
}
static dg_node *build_lstm_seq_bias(dg_graph *g, dg_node *const *in)
{
    return dg_lstm_seq(g, in[0], in[1], in[2], NULL, NULL);
}
static dg_node *build_lstm_seq_states(dg_graph *g, dg_node *const *in)
{
    return dg_lstm_seq(g, in[0], in[1], in[2], in[3], in[4]);
}
/* The fused backward on its own: in0 = gy [B,T,6H] (or [B,T,H]: the h part alone), in1 = y [B,T,6H] (arbitrary: the op is a
 * formula in y's entries), in2 = w_hh [4H,H], in3 = c0 when given. dg_grad of an lstm_seq
 * (built on the first 4H columns of y) builds the lstm_seq_grad node, with the state row when
 * c0's gradient is wanted; the case rebuilds it on the fixture's inputs with the same
 * attributes. */
static dg_node *build_lstm_seq_grad_any(dg_graph *g, dg_node *const *in, bool with_c0)
{
    int64_t H = dg_node_dim(in[2], 1);
    dg_node *y = dg_lstm_seq(g, dg_slice(g, in[1], 2, 0, 4 * H), in[2], NULL, NULL,
                             with_c0 ? in[3] : NULL);
    if (dg_node_dim(in[0], 2) == H) /* gy [B,T,H]: a loss on h alone */
        y = dg_slice(g, y, 2, 0, H);
    dg_node *loss = dg_sum(g, dg_mul(g, y, in[0]), 0, NULL, false);
    dg_node *grads[2];
    if (loss == NULL ||
        dg_grad(g, loss, with_c0 ? 2 : 1, (dg_node *[]){in[2], in[3]}, grads) != DG_OK)
        return NULL;
    for (int i = dg_graph_node_count(g) - 1; i >= 0; i--) {
        dg_node *n = dg_graph_node(g, i);
        if (strcmp(dg_node_op_name(n), "lstm_seq_grad") == 0 &&
            dg_node_dim(dg_node_input(n, 0), 2) == dg_node_dim(in[0], 2))
            return dg__make_node(g, DG_OP_lstm_seq_grad, with_c0 ? 4 : 3, in, dg__attrs(n));
    }
    return NULL;
}
static dg_node *build_lstm_seq_grad(dg_graph *g, dg_node *const *in)
{
    return build_lstm_seq_grad_any(g, in, false);
}
static dg_node *build_lstm_seq_grad_c0(dg_graph *g, dg_node *const *in)
{
    return build_lstm_seq_grad_any(g, in, true);
}

/* The fused GRU recurrence: in0 = xw [B,T,3H], in1 = w_hh [3H,H], then b_ih, b_hh [3H], h0
 * [B,H] as the row says. */
static dg_node *build_gru_seq(dg_graph *g, dg_node *const *in)
{
    return dg_gru_seq(g, in[0], in[1], NULL, NULL, NULL);
}
static dg_node *build_gru_seq_h0(dg_graph *g, dg_node *const *in)
{
    return dg_gru_seq(g, in[0], in[1], NULL, NULL, in[2]);
}
static dg_node *build_gru_seq_bias(dg_graph *g, dg_node *const *in)
{
    return dg_gru_seq(g, in[0], in[1], in[2], in[3], NULL);
}
static dg_node *build_gru_seq_states(dg_graph *g, dg_node *const *in)
{
    return dg_gru_seq(g, in[0], in[1], in[2], in[3], in[4]);
}
/* The fused backward on its own: in0 = gy [B,T,5H] (or [B,T,H]: the h part alone), in1 = y
 * [B,T,5H] (arbitrary: the op is a formula in y's entries), in2 = w_hh [3H,H], in3 = h0 when given. dg_grad of a gru_seq
 * (built on the first 3H columns of y) builds the gru_seq_grad node, with the state row when
 * h0's gradient is wanted; the case rebuilds it on the fixture's inputs with the same
 * attributes. */
static dg_node *build_gru_seq_grad_any(dg_graph *g, dg_node *const *in, bool with_h0)
{
    int64_t H = dg_node_dim(in[2], 1);
    dg_node *y = dg_gru_seq(g, dg_slice(g, in[1], 2, 0, 3 * H), in[2], NULL, NULL,
                            with_h0 ? in[3] : NULL);
    if (dg_node_dim(in[0], 2) == H) /* gy [B,T,H]: a loss on h alone */
        y = dg_slice(g, y, 2, 0, H);
    dg_node *loss = dg_sum(g, dg_mul(g, y, in[0]), 0, NULL, false);
    dg_node *grads[2];
    if (loss == NULL ||
        dg_grad(g, loss, with_h0 ? 2 : 1, (dg_node *[]){in[2], in[3]}, grads) != DG_OK)
        return NULL;
    for (int i = dg_graph_node_count(g) - 1; i >= 0; i--) {
        dg_node *n = dg_graph_node(g, i);
        if (strcmp(dg_node_op_name(n), "gru_seq_grad") == 0 &&
            dg_node_dim(dg_node_input(n, 0), 2) == dg_node_dim(in[0], 2))
            return dg__make_node(g, DG_OP_gru_seq_grad, with_h0 ? 4 : 3, in, dg__attrs(n));
    }
    return NULL;
}
static dg_node *build_gru_seq_grad(dg_graph *g, dg_node *const *in)
{
    return build_gru_seq_grad_any(g, in, false);
}
static dg_node *build_gru_seq_grad_h0(dg_graph *g, dg_node *const *in)
{
    return build_gru_seq_grad_any(g, in, true);
}

const struct dg_op_case dg_cases_seq[] = {
    {.name = "embedding_basic", .op = "embedding", .build = build_embedding},
    {.name = "embedding_repeat", .op = "embedding", .build = build_embedding},
    {.name = "embedding_flat", .op = "embedding", .build = build_embedding},
    {.name = "embedding_grad_basic", .op = "embedding_grad", .build = build_embedding_grad},
    {.name = "equal_public", .op = "equal", .build = build_equal, .forward_only = true},
    {.name = "not_equal_ties", .op = "not_equal", .build = build_not_equal, .forward_only = true},
    {.name = "greater_public", .op = "greater", .build = build_greater, .forward_only = true},
    {.name = "greater_equal_ties", .op = "greater_equal", .build = build_greater_equal,
     .forward_only = true},
    {.name = "less_bcast", .op = "less", .build = build_less, .forward_only = true},
    {.name = "less_equal_ties", .op = "less_equal", .build = build_less_equal,
     .forward_only = true},
    {.name = "where_basic", .op = "where", .build = build_where},
    {.name = "where_bcast", .op = "where", .build = build_where},
    {.name = "where_compare", .op = "where", .build = build_where_compare},
    {.name = "argmax_axis1", .op = "argmax", .build = build_argmax1, .forward_only = true},
    {.name = "argmax_ties", .op = "argmax", .build = build_argmax_last, .forward_only = true},
    {.name = "argmin_axis0", .op = "argmin", .build = build_argmin0, .forward_only = true},
    {.name = "cast_round_trip", .op = "cast", .build = build_cast_round_trip,
     .forward_only = true},
    {.name = "cast_from_i32", .op = "cast", .build = build_cast_i32, .forward_only = true},
    {.name = "clamp_basic", .op = "where", .build = build_clamp},
    {.name = "min_axis1", .op = "max", .build = build_min1},
    {.name = "min_all", .op = "max", .build = build_min_all},
    {.name = "logsumexp_last", .op = "max", .build = build_logsumexp},
    {.name = "logsumexp_large", .op = "max", .build = build_logsumexp},
    {.name = "logsumexp_keep", .op = "max", .build = build_logsumexp_keep},
    {.name = "variance_unbiased", .op = "size_ratio", .build = build_variance_unbiased},
    {.name = "variance_biased", .op = "size_ratio", .build = build_variance_biased},
    {.name = "masked_softmax_causal", .op = "softmax", .build = build_masked_softmax_causal},
    {.name = "masked_softmax_mask", .op = "where", .build = build_masked_softmax},
    {.name = "attention_basic", .op = "attention", .build = build_attention},
    {.name = "attention_2d", .op = "attention", .build = build_attention},
    {.name = "attention_causal", .op = "attention", .build = build_attention_causal},
    {.name = "attention_causal_cache", .op = "attention", .build = build_attention_causal},
    {.name = "attention_causal_empty_rows", .op = "attention", .build = build_attention_causal},
    {.name = "attention_long", .op = "attention", .build = build_attention_causal},
    {.name = "attention_eval_key", .op = "attention", .build = build_attention_eval},
    {.name = "attention_grad_q", .op = "attention_grad", .build = build_attention_grad_q,
     .forward_only = true},
    {.name = "attention_grad_k", .op = "attention_grad", .build = build_attention_grad_k,
     .forward_only = true},
    {.name = "attention_grad_v", .op = "attention_grad", .build = build_attention_grad_v,
     .forward_only = true},
    {.name = "attention_grad_kv", .op = "attention_grad", .build = build_attention_grad_kv,
     .forward_only = true},
    {.name = "lstm_seq_basic", .op = "lstm_seq", .build = build_lstm_seq},
    {.name = "lstm_seq_h0", .op = "lstm_seq", .build = build_lstm_seq_h0},
    {.name = "lstm_seq_c0", .op = "lstm_seq", .build = build_lstm_seq_c0},
    {.name = "lstm_seq_bias", .op = "lstm_seq", .build = build_lstm_seq_bias},
    {.name = "lstm_seq_states", .op = "lstm_seq", .build = build_lstm_seq_states},
    {.name = "lstm_seq_one_step", .op = "lstm_seq", .build = build_lstm_seq_states},
    {.name = "lstm_seq_wide", .op = "lstm_seq", .build = build_lstm_seq_states},
    /* Its gradients (second derivatives of lstm_seq, by the composed rule of lstm_grad2.c)
     * reach ~100 in magnitude here (c0's) and come from float32 sums of such terms: a fixture
     * tolerance of 1e-4 rather than 1e-5 (measured errors up to 2e-5 relative). */
    {.name = "lstm_seq_grad_basic", .op = "lstm_seq_grad", .build = build_lstm_seq_grad,
     .fixture_tol = 1e-4},
    {.name = "lstm_seq_grad_h", .op = "lstm_seq_grad", .build = build_lstm_seq_grad_c0,
     .fixture_tol = 1e-4},
    {.name = "lstm_seq_grad_c0", .op = "lstm_seq_grad", .build = build_lstm_seq_grad_c0,
     .fixture_tol = 1e-4},
    {.name = "gru_seq_basic", .op = "gru_seq", .build = build_gru_seq},
    {.name = "gru_seq_h0", .op = "gru_seq", .build = build_gru_seq_h0},
    {.name = "gru_seq_bias", .op = "gru_seq", .build = build_gru_seq_bias},
    {.name = "gru_seq_states", .op = "gru_seq", .build = build_gru_seq_states},
    {.name = "gru_seq_one_step", .op = "gru_seq", .build = build_gru_seq_states},
    {.name = "gru_seq_wide", .op = "gru_seq", .build = build_gru_seq_states},
    /* Its gradients: second derivatives of gru_seq, by the composed rule of gru_grad2.c (the
     * same fixture tolerance as lstm_seq_grad's, for the same reason). */
    {.name = "gru_seq_grad_basic", .op = "gru_seq_grad", .build = build_gru_seq_grad,
     .fixture_tol = 1e-4},
    {.name = "gru_seq_grad_h0", .op = "gru_seq_grad", .build = build_gru_seq_grad_h0,
     .fixture_tol = 1e-4},
    {.name = "gru_seq_grad_h", .op = "gru_seq_grad", .build = build_gru_seq_grad_h0,
     .fixture_tol = 1e-4},
    {.name = "attention_grad_qkv", .op = "attention_grad", .build = build_attention_grad_qkv,
     .forward_only = true},
    {.name = "attention_packed_causal", .op = "attention",
     .build = build_attention_packed_causal},
    {.name = "attention_packed", .op = "attention", .build = build_attention_packed},
    {.name = "attention_tiled", .op = "attention", .build = build_attention_causal},
    {.name = "attention_grad_kv_tiled", .op = "attention_grad", .build = build_attention_grad_kv,
     .forward_only = true},
    {.name = "attention_grad_q_tiled", .op = "attention_grad",
     .build = build_attention_grad_q_causal, .forward_only = true},
    {0},
};
