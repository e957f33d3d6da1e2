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

/* a + b where either may be NULL (an absent term; both absent: NULL) */
static dg_node *plus(dg_graph *g, dg_node *a, dg_node *b)
{
    return a == NULL ? b : b != NULL ? dg_add(g, a, b) : a;
}

/* Part k of gy_t (width 6H), or with a gy of width H (h's part alone) that part for k == 0
 * and NULL (zero) for the others. */
static dg_node *gy_part(dg_graph *g, dg_node *gy, int k, int64_t H)
{
    if (dg_node_dim(gy, 1) == H)
        return k == 0 ? gy : NULL;
    return block(g, gy, k, H);
}

/* sum(a * b), added to acc (NULL: none yet) */
static dg_node *add_dot(dg_graph *g, dg_node *acc, dg_node *a, dg_node *b)
{
    dg_node *dot = dg_sum(g, dg_mul(g, a, b), 0, NULL, false);
    return acc != NULL ? dg_add(g, acc, dot) : dot;
}

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
        dg_node *c = block(g, y, 1, H), *i = block(g, y, 2, H);
        dg_node *f = block(g, y, 3, H), *gg = block(g, y, 4, H);
        dg_node *o = block(g, y, 5, H);
        dg_node *c_prev = t > 0 ? block(g, y_t[t - 1], 1, H) : c0; /* NULL: zeros */
        dg_node *tc = dg_tanh(g, c);
        dg_node *dh = plus(g, gy_part(g, gy, 0, H), dh_carry);
        dg_node *dc = plus(g, plus(g, gy_part(g, gy, 1, H), dc_carry),
                           dg_mul(g, dg_mul(g, dh, o), one_minus(g, dg_square(g, tc))));
        dg_node *di = plus(g, dg_mul(g, dc, gg), gy_part(g, gy, 2, H));
        dg_node *df = plus(g, c_prev != NULL ? dg_mul(g, dc, c_prev) : NULL,
                           gy_part(g, gy, 3, H));
        if (df == NULL) /* no c_{-1} and no gy_f: exact zeros (not 0 * something) */
            df = dg__filled_like(g, dc, 0.0f);
        dg_node *dgg = plus(g, dg_mul(g, dc, i), gy_part(g, gy, 4, H));
        dg_node *d_o = plus(g, dg_mul(g, dh, tc), gy_part(g, gy, 5, H));
        dg_node *parts[4] = {
            dg_mul(g, di, dg_mul(g, i, one_minus(g, i))),
            dg_mul(g, df, dg_mul(g, f, one_minus(g, f))),
            dg_mul(g, dgg, one_minus(g, dg_square(g, gg))),
            dg_mul(g, d_o, dg_mul(g, o, one_minus(g, o))),
        };
        dg_node *d_t = dg_concat(g, 4, parts, 1);
        loss = add_dot(g, loss, d_t, step_of(g, upstream, t, 4 * H));
        if (t > 0 || with_state)
            dh_carry = dg_matmul(g, d_t, w_hh); /* [B,4H] x [4H,H] */
        dc_carry = dg_mul(g, dc, f);
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

/* The steps of x [B,T,6H] as [B,6H] nodes; with proxy, each a fresh proxy appended to wrt. */
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

dg_status dg__lstm_seq_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                     dg_node *upstream, dg_node **gin)
{
    const int n = dg__n_inputs(node); /* gy, y, w_hh[, c0] */
    dg_node *gy = dg__input(node, 0), *y = dg__input(node, 1);
    dg_node *w_hh = dg__input(node, 2), *c0 = n == 4 ? dg__input(node, 3) : NULL;
    const int64_t T = dg_node_dim(y, 1), P = dg_node_dim(y, 2), W = dg_node_dim(gy, 2);
    const bool with_state = dg_node_dim(node, 1) > T;
    const bool need[4] = {dg__grad_needed(ctx, 0), dg__grad_needed(ctx, 1),
                          dg__grad_needed(ctx, 2), n == 4 && dg__grad_needed(ctx, 3)};
    if (!need[0] && !need[1] && !need[2] && !need[3])
        return dg_graph_status(g);
    /* Fresh proxies (x 1): partial derivatives, not total ones. gy and y get one per step, so
     * that their gradients are one concat of the steps' (a proxy of the whole tensor, sliced
     * per step, would pad every step's gradient to [B,T,6H]: O(T^2) work). */
    dg_node **buf = dg__calloc((size_t)(6 * T + 4), sizeof *buf);
    if (buf == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "lstm_seq_grad: node %d: out of memory building "
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
        wrt[n_wrt++] = c0 = dg_scale(g, c0, 1.0f);
    dg_node *loss = dg_graph_status(g) == DG_OK
                        ? composed_vjp(g, gy_t, y_t, w_hh, c0, upstream, T, with_state)
                        : NULL;
    dg_status st = loss != NULL ? dg_grad(g, loss, n_wrt, wrt, grads) : dg_graph_status(g);
    if (st == DG_OK) {
        dg_node **at = grads;
        if (need[0]) {
            gin[0] = join_steps(g, at, T, W, gy_t); /* gy_t reused as scratch */
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
