/*
 * The backward rule of lstm_seq_grad (lstm.c): second derivatives through the fused LSTM.
 *
 * lstm_seq_grad(gy, y, w_hh[, c0]) is an explicit formula in its inputs (lstm.c's header and
 * docs/op-reference.md): backwards over t, with dh, dc carried from step t+1,
 *
 *   dh = gy_h + d a_{t+1} W_hh;  tc = tanh(c_t)
 *   dc = gy_c + dc_{t+1} f_{t+1} + dh o (1 - tc^2)
 *   d a_t = [(dc g + gy_i) i(1-i), (dc c_{t-1} + gy_f) f(1-f), (dc i + gy_g)(1-g^2),
 *            (dh tc + gy_o) o(1-o)]
 *
 * and, with the state row, row T = [d a_0 W_hh | dc_0 f_0 | 0 | 0] (c_{-1} = c0, or zeros).
 * A gy of [B,T,H] is gy_h alone (the other parts zero): those terms are left out.
 * The first-order path is the fused kernel; only its own gradient comes from here. The rule
 * builds that same formula from ordinary ops (per-step slices of y and gy, tanh, mul, add,
 * concat, one [B,4H] x [4H,H] matmul per step: T steps unrolled), contracts it with the
 * upstream gradient, sum(formula * upstream), and asks dg_grad for that scalar's gradient with
 * respect to fresh proxies (x 1) of the inputs that need one: partial derivatives, not total
 * ones (gy is usually itself a function of y, and the upstream gradient may depend on any
 * input), while the proxies still depend on the originals, so third and higher orders work
 * the same way. As batch_norm_grad's rule (batchnorm_grad.c on the branches that have it).
 *
 * gy and y get one proxy per step (a [B,6H] slice x 1), so their gradients are one concat of
 * the steps' gradients along time: O(T) nodes and O(T B H) work besides the per-step matmuls
 * (a proxy of the whole tensor, sliced per step, would pad each step's gradient to [B,T,6H]
 * and add them: O(T^2 B H)). Second derivatives of an LSTM are rare (gradient penalties,
 * meta-learning); the first-order path pays nothing for them.
 */
#include "lstm.h"
#include "recurrent_seq.h"

/* sum(lstm_seq_grad(gy, y, w_hh[, c0]) * upstream) built from ordinary ops, reading gy and y
 * through their steps gy_t, y_t [B,6H]; c0 may be NULL (zeros), with_state: the formula has
 * row T. NULL with the graph's error on failure. */
static dg_node *composed_vjp(dg_graph *g, dg_node *const *gy_t, dg_node *const *y_t,
                             dg_node *w_hh, dg_node *c0, dg_node *upstream, int64_t T,
                             bool with_state)
{
    const int64_t H = dg_node_dim(w_hh, 1);
    dg_node *loss = NULL, *dh_carry = NULL, *dc_carry = NULL;
    for (int64_t t = T - 1; t >= 0; t--) {
        dg_node *y = y_t[t], *gy = gy_t[t];
        dg_node *c = dg__seq_block(g, y, 1, H), *i = dg__seq_block(g, y, 2, H);
        dg_node *f = dg__seq_block(g, y, 3, H), *gg = dg__seq_block(g, y, 4, H);
        dg_node *o = dg__seq_block(g, y, 5, H);
        dg_node *c_prev = t > 0 ? dg__seq_block(g, y_t[t - 1], 1, H) : c0; /* NULL: zeros */
        dg_node *tc = dg_tanh(g, c);
        dg_node *dh = dg__seq_plus(g, dg__seq_gy_part(g, gy, 0, H), dh_carry);
        dg_node *dc = dg__seq_plus(g, dg__seq_plus(g, dg__seq_gy_part(g, gy, 1, H), dc_carry),
                           dg_mul(g, dg_mul(g, dh, o), dg__seq_one_minus(g, dg_square(g, tc))));
        dg_node *di = dg__seq_plus(g, dg_mul(g, dc, gg), dg__seq_gy_part(g, gy, 2, H));
        dg_node *df = dg__seq_plus(g, c_prev != NULL ? dg_mul(g, dc, c_prev) : NULL,
                           dg__seq_gy_part(g, gy, 3, H));
        if (df == NULL) /* no c_{-1} and no gy_f: exact zeros (not 0 * something) */
            df = dg__filled_like(g, dc, 0.0f);
        dg_node *dgg = dg__seq_plus(g, dg_mul(g, dc, i), dg__seq_gy_part(g, gy, 4, H));
        dg_node *d_o = dg__seq_plus(g, dg_mul(g, dh, tc), dg__seq_gy_part(g, gy, 5, H));
        dg_node *parts[4] = {
            dg_mul(g, di, dg_mul(g, i, dg__seq_one_minus(g, i))),
            dg_mul(g, df, dg_mul(g, f, dg__seq_one_minus(g, f))),
            dg_mul(g, dgg, dg__seq_one_minus(g, dg_square(g, gg))),
            dg_mul(g, d_o, dg_mul(g, o, dg__seq_one_minus(g, o))),
        };
        dg_node *d_t = dg_concat(g, 4, parts, 1);
        loss = dg__seq_add_dot(g, loss, d_t, dg__seq_step_of(g, upstream, t, 4 * H));
        if (t > 0 || with_state)
            dh_carry = dg_matmul(g, d_t, w_hh); /* [B,4H] x [4H,H] */
        dc_carry = dg_mul(g, dc, f);
        if (dg_graph_status(g) != DG_OK)
            return NULL;
    }
    if (with_state) {
        dg_node *u_state = dg__seq_step_of(g, upstream, T, 4 * H);
        loss = dg__seq_add_dot(g, loss, dh_carry, dg__seq_block(g, u_state, 0, H));
        loss = dg__seq_add_dot(g, loss, dc_carry, dg__seq_block(g, u_state, 1, H));
    }
    return dg_graph_status(g) == DG_OK ? loss : NULL;
}

dg_status dg__lstm_seq_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *upstream, dg_node **gin)
{
    return dg__seq_grad_backward(ctx, g, node, upstream, gin, "lstm_seq_grad", composed_vjp);
}
