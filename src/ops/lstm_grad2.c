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
 * The first-order path is the fused kernel; only its own gradient comes from here. The rule
 * builds that same formula from ordinary ops (per-step slices of y and gy, tanh, mul, add,
 * concat, one [B,4H] x [4H,H] matmul per step: T steps unrolled), contracts it with the
 * upstream gradient, sum(formula * upstream), and asks dg_grad for that scalar's gradient with
 * respect to fresh proxies (x 1) of the inputs that need one: partial derivatives, not total
 * ones (gy is usually itself a function of y, and the upstream gradient may depend on any
 * input), while the proxies still depend on the originals, so third and higher orders work
 * the same way. As batch_norm_grad's rule (batchnorm_grad.c on the branches that have it).
 *
 * Cost: O(T) nodes, and the gradient of each per-step slice reaches y and gy through a pad to
 * [B,T,6H] and an add (O(T^2 B H) work): what the unrolled LSTM cost at first order. Second
 * derivatives of an LSTM are rare (gradient penalties, meta-learning); the first-order path
 * pays nothing for them.
 */
#include "lstm.h"
#include "dagrad_autodiff.h"

/* Step t of x [B, T', W] as [B, W]. */
static dg_node *step_of(dg_graph *g, dg_node *x, int64_t t, int64_t width)
{
    return dg_reshape(g, dg_slice(g, x, 1, t, t + 1), 2, (int64_t[]){-1, width});
}

/* Block k (width H) of the last axis of x [B, n H]. */
static dg_node *block(dg_graph *g, dg_node *x, int k, int64_t H)
{
    return dg_slice(g, x, 1, k * H, (k + 1) * H);
}

static dg_node *one_minus(dg_graph *g, dg_node *x)
{
    return dg_add_scalar(g, dg_neg(g, x), 1.0f);
}

/* a + b where b may be NULL (an absent term) */
static dg_node *plus(dg_graph *g, dg_node *a, dg_node *b)
{
    return b != NULL ? dg_add(g, a, b) : a;
}

/* sum(a * b), added to acc (NULL: none yet) */
static dg_node *add_dot(dg_graph *g, dg_node *acc, dg_node *a, dg_node *b)
{
    dg_node *dot = dg_sum(g, dg_mul(g, a, b), 0, NULL, false);
    return acc != NULL ? dg_add(g, acc, dot) : dot;
}

/* sum(lstm_seq_grad(gy, y, w_hh[, c0]) * upstream) built from ordinary ops; c0 may be NULL
 * (zeros), with_state: the formula has row T. NULL with the graph's error on failure. */
static dg_node *composed_vjp(dg_graph *g, dg_node *gy, dg_node *y, dg_node *w_hh, dg_node *c0,
                             dg_node *upstream, bool with_state)
{
    const int64_t T = dg_node_dim(y, 1), H = dg_node_dim(w_hh, 1);
    dg_node *loss = NULL, *dh_carry = NULL, *dc_carry = NULL, *d_t = NULL;
    dg_node *y_t = step_of(g, y, T - 1, 6 * H);
    for (int64_t t = T - 1; t >= 0; t--) {
        dg_node *y_prev = t > 0 ? step_of(g, y, t - 1, 6 * H) : NULL;
        dg_node *gy_t = step_of(g, gy, t, 6 * H);
        dg_node *c = block(g, y_t, 1, H), *i = block(g, y_t, 2, H);
        dg_node *f = block(g, y_t, 3, H), *gg = block(g, y_t, 4, H);
        dg_node *o = block(g, y_t, 5, H);
        dg_node *c_prev = y_prev != NULL ? block(g, y_prev, 1, H) : c0; /* NULL: zeros */
        dg_node *tc = dg_tanh(g, c);
        dg_node *dh = plus(g, block(g, gy_t, 0, H), dh_carry);
        dg_node *dc = dg_add(g, plus(g, block(g, gy_t, 1, H), dc_carry),
                             dg_mul(g, dg_mul(g, dh, o), one_minus(g, dg_square(g, tc))));
        dg_node *di = dg_add(g, dg_mul(g, dc, gg), block(g, gy_t, 2, H));
        dg_node *df = c_prev != NULL ? dg_add(g, dg_mul(g, dc, c_prev), block(g, gy_t, 3, H))
                                     : block(g, gy_t, 3, H);
        dg_node *dgg = dg_add(g, dg_mul(g, dc, i), block(g, gy_t, 4, H));
        dg_node *d_o = dg_add(g, dg_mul(g, dh, tc), block(g, gy_t, 5, H));
        dg_node *parts[4] = {
            dg_mul(g, di, dg_mul(g, i, one_minus(g, i))),
            dg_mul(g, df, dg_mul(g, f, one_minus(g, f))),
            dg_mul(g, dgg, one_minus(g, dg_square(g, gg))),
            dg_mul(g, d_o, dg_mul(g, o, one_minus(g, o))),
        };
        d_t = dg_concat(g, 4, parts, 1);
        loss = add_dot(g, loss, d_t, step_of(g, upstream, t, 4 * H));
        if (t > 0 || with_state)
            dh_carry = dg_matmul(g, d_t, w_hh); /* [B,4H] x [4H,H] */
        dc_carry = dg_mul(g, dc, f);
        y_t = y_prev;
        if (dg_graph_status(g) != DG_OK)
            return NULL;
    }
    if (with_state) {
        dg_node *u_state = step_of(g, upstream, T, 4 * H);
        loss = add_dot(g, loss, dh_carry, block(g, u_state, 0, H));
        loss = add_dot(g, loss, dc_carry, block(g, u_state, 1, H));
    }
    return dg_graph_status(g) == DG_OK ? loss : NULL;
}

dg_status dg__lstm_seq_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *upstream, dg_node **gin)
{
    const int n = dg__n_inputs(node); /* gy, y, w_hh[, c0] */
    dg_node *in[4] = {NULL}, *wrt[4];
    int slot[4], n_wrt = 0;
    for (int k = 0; k < n; k++) {
        in[k] = dg__input(node, k);
        if (dg__grad_needed(ctx, k)) {
            in[k] = dg_scale(g, in[k], 1.0f); /* a fresh proxy: the partial derivative */
            wrt[n_wrt] = in[k];
            slot[n_wrt++] = k;
        }
    }
    if (n_wrt == 0)
        return dg_graph_status(g);
    const bool with_state = dg_node_dim(node, 1) > dg_node_dim(in[1], 1);
    dg_node *loss = composed_vjp(g, in[0], in[1], in[2], in[3], upstream, with_state);
    if (loss == NULL)
        return dg_graph_status(g);
    dg_node *grads[4];
    dg_status st = dg_grad(g, loss, n_wrt, wrt, grads);
    if (st != DG_OK)
        return st;
    for (int k = 0; k < n_wrt; k++)
        gin[slot[k]] = grads[k];
    return dg_graph_status(g);
}
