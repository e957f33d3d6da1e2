/*
 * The backward rule of gru_seq_grad (gru.c): second derivatives through the fused GRU.
 *
 * gru_seq_grad(gy, y, w_hh[, h0]) is an explicit formula in its inputs (gru.c's header and
 * docs/op-reference.md): backwards over t, with dh carried from step t+1, y_t = [h|r|z|n|hn],
 *
 *   dh = gy_h + dh_carry
 *   dn = dh (1 - z) + gy_n,  dz = dh (h_{t-1} - n) + gy_z,  d a_n = dn (1 - n^2)
 *   d hn = d a_n r + gy_hn,  d a_r = (d a_n hn + gy_r) r (1 - r),  d a_z = dz z (1 - z)
 *   row t = [d a_r | d a_z | d a_n | d hn];  dh_carry = dh z + [d a_r | d a_z | d hn] W_hh
 *
 * and, with the state row, row T = [dh_carry after step 0 | 0 | 0 | 0] (h_{-1} = h0, or
 * zeros). The first-order path is the fused kernel; only its own gradient comes from here,
 * exactly as lstm_grad2.c does for the LSTM: the rule builds that formula from ordinary ops
 * (per-step slices of y and gy, mul, add, concat, one [B,3H] x [3H,H] matmul per step: T steps
 * unrolled), contracts it with the upstream gradient, sum(formula * upstream), and asks
 * dg_grad for that scalar's gradient with respect to fresh proxies (x 1) of the inputs that
 * need one: partial derivatives, not total ones, while the proxies still depend on the
 * originals, so third and higher orders work the same way. gy and y get one proxy per step,
 * so their gradients are one concat of the steps' gradients along time (O(T) nodes and work).
 */
#include "gru.h"
#include "recurrent_seq.h"

/* sum(gru_seq_grad(gy, y, w_hh[, h0]) * upstream) built from ordinary ops, reading gy and y
 * through their steps gy_t, y_t [B,5H]; h0 may be NULL (zeros), with_state: the formula has
 * row T. NULL with the graph's error on failure. */
static dg_node *composed_vjp(dg_graph *g, dg_node *const *gy_t, dg_node *const *y_t,
                             dg_node *w_hh, dg_node *h0, dg_node *upstream, int64_t T,
                             bool with_state)
{
    const int64_t H = dg_node_dim(w_hh, 1);
    dg_node *loss = NULL, *dh_carry = NULL;
    for (int64_t t = T - 1; t >= 0; t--) {
        dg_node *y = y_t[t], *gy = gy_t[t], *gy_parts[5];
        for (int k = 0; k < 5; k++)
            gy_parts[k] = dg__seq_gy_part(g, gy, k, H); /* [gy_h|gy_r|gy_z|gy_n|gy_hn] */
        dg_node *r = dg__seq_block(g, y, 1, H), *z = dg__seq_block(g, y, 2, H);
        dg_node *n = dg__seq_block(g, y, 3, H), *hn = dg__seq_block(g, y, 4, H);
        dg_node *h_prev = t > 0 ? dg__seq_block(g, y_t[t - 1], 0, H) : h0; /* NULL: zeros */
        dg_node *dh = dg__seq_plus(g, gy_parts[0], dh_carry);
        dg_node *dn = dg__seq_plus(g, dg_mul(g, dh, dg__seq_one_minus(g, z)), gy_parts[3]);
        dg_node *dz = dg__seq_plus(g, dg_mul(g, dh, h_prev != NULL ? dg_sub(g, h_prev, n)
                                                                  : dg_neg(g, n)),
                                   gy_parts[2]);
        dg_node *da_n = dg_mul(g, dn, dg__seq_one_minus(g, dg_square(g, n)));
        dg_node *dr = dg__seq_plus(g, dg_mul(g, da_n, hn), gy_parts[1]);
        dg_node *dhn = dg__seq_plus(g, dg_mul(g, da_n, r), gy_parts[4]);
        dg_node *da_r = dg_mul(g, dr, dg_mul(g, r, dg__seq_one_minus(g, r)));
        dg_node *da_z = dg_mul(g, dz, dg_mul(g, z, dg__seq_one_minus(g, z)));
        dg_node *d_t = dg_concat(g, 4, (dg_node *[]){da_r, da_z, da_n, dhn}, 1);
        loss = dg__seq_add_dot(g, loss, d_t, dg__seq_step_of(g, upstream, t, 4 * H));
        if (t > 0 || with_state) {
            dg_node *d_hw = dg_concat(g, 3, (dg_node *[]){da_r, da_z, dhn}, 1);
            dh_carry = dg_add(g, dg_mul(g, dh, z), dg_matmul(g, d_hw, w_hh)); /* [B,3H]x[3H,H] */
        }
        if (dg_graph_status(g) != DG_OK)
            return NULL;
    }
    if (with_state) {
        dg_node *u_state = dg__seq_step_of(g, upstream, T, 4 * H);
        loss = dg__seq_add_dot(g, loss, dh_carry, dg__seq_block(g, u_state, 0, H));
    }
    return dg_graph_status(g) == DG_OK ? loss : NULL;
}

dg_status dg__gru_seq_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *upstream, dg_node **gin)
{
    return dg__seq_grad_backward(ctx, g, node, upstream, gin, "gru_seq_grad", composed_vjp);
}
