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
 *
 * The small graph helpers below repeat lstm_grad2.c's (static there).
 */
#include "gru.h"
#include "alloc.h"
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
        dg_node *y = y_t[t], *gy = gy_t[t];
        dg_node *r = block(g, y, 1, H), *z = block(g, y, 2, H);
        dg_node *n = block(g, y, 3, H), *hn = block(g, y, 4, H);
        dg_node *h_prev = t > 0 ? block(g, y_t[t - 1], 0, H) : h0; /* NULL: zeros */
        dg_node *dh = plus(g, block(g, gy, 0, H), dh_carry);
        dg_node *dn = dg_add(g, dg_mul(g, dh, one_minus(g, z)), block(g, gy, 3, H));
        dg_node *dz = dg_add(g, dg_mul(g, dh, h_prev != NULL ? dg_sub(g, h_prev, n)
                                                            : dg_neg(g, n)),
                             block(g, gy, 2, H));
        dg_node *da_n = dg_mul(g, dn, one_minus(g, dg_square(g, n)));
        dg_node *dr = dg_add(g, dg_mul(g, da_n, hn), block(g, gy, 1, H));
        dg_node *dhn = dg_add(g, dg_mul(g, da_n, r), block(g, gy, 4, H));
        dg_node *da_r = dg_mul(g, dr, dg_mul(g, r, one_minus(g, r)));
        dg_node *da_z = dg_mul(g, dz, dg_mul(g, z, one_minus(g, z)));
        dg_node *d_t = dg_concat(g, 4, (dg_node *[]){da_r, da_z, da_n, dhn}, 1);
        loss = add_dot(g, loss, d_t, step_of(g, upstream, t, 4 * H));
        if (t > 0 || with_state) {
            dg_node *d_hw = dg_concat(g, 3, (dg_node *[]){da_r, da_z, dhn}, 1);
            dh_carry = dg_add(g, dg_mul(g, dh, z), dg_matmul(g, d_hw, w_hh)); /* [B,3H]x[3H,H] */
        }
        if (dg_graph_status(g) != DG_OK)
            return NULL;
    }
    if (with_state)
        loss = add_dot(g, loss, dh_carry, block(g, step_of(g, upstream, T, 4 * H), 0, H));
    return dg_graph_status(g) == DG_OK ? loss : NULL;
}

/* The steps of x [B,T,5H] as [B,5H] nodes; with proxy, each a fresh proxy appended to wrt. */
static void split_steps(dg_graph *g, dg_node *x, int64_t T, bool proxy, dg_node **steps,
                        dg_node **wrt, int *n_wrt)
{
    const int64_t width = dg_node_dim(x, 2);
    for (int64_t t = 0; t < T; t++) {
        steps[t] = step_of(g, x, t, width);
        if (proxy) {
            steps[t] = dg_scale(g, steps[t], 1.0f);
            wrt[(*n_wrt)++] = steps[t];
        }
    }
}

/* The gradient of x [B,T,W] from its steps' gradients [B,W]: one concat along time. */
static dg_node *join_steps(dg_graph *g, dg_node *const *grads, int64_t T, int64_t width,
                           dg_node **rows)
{
    for (int64_t t = 0; t < T; t++)
        rows[t] = dg_reshape(g, grads[t], 3, (int64_t[]){-1, 1, width});
    return T == 1 ? rows[0] : dg_concat(g, (int)T, rows, 1);
}

dg_status dg__gru_seq_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *upstream, dg_node **gin)
{
    const int n = dg__n_inputs(node); /* gy, y, w_hh[, h0] */
    dg_node *gy = dg__input(node, 0), *y = dg__input(node, 1);
    dg_node *w_hh = dg__input(node, 2), *h0 = n == 4 ? dg__input(node, 3) : NULL;
    const int64_t T = dg_node_dim(y, 1), P = dg_node_dim(y, 2);
    const bool with_state = dg_node_dim(node, 1) > T;
    const bool need[4] = {dg__grad_needed(ctx, 0), dg__grad_needed(ctx, 1),
                          dg__grad_needed(ctx, 2), n == 4 && dg__grad_needed(ctx, 3)};
    if (!need[0] && !need[1] && !need[2] && !need[3])
        return dg_graph_status(g);
    dg_node **buf = dg__calloc((size_t)(6 * T + 4), sizeof *buf);
    if (buf == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "gru_seq_grad: node %d: out of memory building "
                           "its second derivative", dg_node_index(node));
        return DG_ERR_NOMEM;
    }
    dg_node **gy_t = buf, **y_t = buf + T, **wrt = buf + 2 * T, **grads = buf + 4 * T + 2;
    int n_wrt = 0;
    split_steps(g, gy, T, need[0], gy_t, wrt, &n_wrt);
    split_steps(g, y, T, need[1], y_t, wrt, &n_wrt);
    if (need[2])
        wrt[n_wrt++] = w_hh = dg_scale(g, w_hh, 1.0f);
    if (need[3])
        wrt[n_wrt++] = h0 = dg_scale(g, h0, 1.0f);
    dg_node *loss = dg_graph_status(g) == DG_OK
                        ? composed_vjp(g, gy_t, y_t, w_hh, h0, upstream, T, with_state)
                        : NULL;
    dg_status st = loss != NULL ? dg_grad(g, loss, n_wrt, wrt, grads) : dg_graph_status(g);
    if (st == DG_OK) {
        dg_node **at = grads;
        if (need[0]) {
            gin[0] = join_steps(g, at, T, P, gy_t); /* gy_t reused as scratch */
            at += T;
        }
        if (need[1]) {
            gin[1] = join_steps(g, at, T, P, y_t);
            at += T;
        }
        if (need[2])
            gin[2] = *at++;
        if (need[3])
            gin[3] = *at;
        st = dg_graph_status(g);
    }
    dg__free(buf);
    return st;
}
