/*
 * The composed second-order rules' shared pieces (recurrent_seq.h): lstm_grad2.c and
 * gru_grad2.c each write their fused gradient's formula from ordinary ops (a
 * dg__seq_composed_vjp); the driver here contracts it with the upstream gradient and asks
 * dg_grad for that scalar's gradient with respect to fresh proxies (x 1) of the inputs that
 * need one: partial derivatives, not total ones (gy is usually itself a function of y, and
 * the upstream gradient may depend on any input), while the proxies still depend on the
 * originals, so third and higher orders work the same way. As batch_norm_grad's rule
 * (batchnorm_grad.c).
 *
 * gy and y get one proxy per step (a [B,W] slice x 1), so their gradients are one concat of
 * the steps' gradients along time: O(T) nodes and O(T B H) work besides the per-step matmuls
 * (a proxy of the whole tensor, sliced per step, would pad each step's gradient to [B,T,W]
 * and add them: O(T^2 B H)).
 */
#include "recurrent_seq.h"
#include "alloc.h"
#include "dagrad_autodiff.h"

dg_node *dg__seq_step_of(dg_graph *g, dg_node *x, int64_t t, int64_t width)
{
    return dg_reshape(g, dg_slice(g, x, 1, t, t + 1), 2, (int64_t[]){-1, width});
}

dg_node *dg__seq_block(dg_graph *g, dg_node *x, int k, int64_t H)
{
    return dg_slice(g, x, 1, k * H, (k + 1) * H);
}

dg_node *dg__seq_one_minus(dg_graph *g, dg_node *x)
{
    return dg_add_scalar(g, dg_neg(g, x), 1.0f);
}

dg_node *dg__seq_plus(dg_graph *g, dg_node *a, dg_node *b)
{
    return a == NULL ? b : b != NULL ? dg_add(g, a, b) : a;
}

dg_node *dg__seq_gy_part(dg_graph *g, dg_node *gy, int k, int64_t H)
{
    if (dg_node_dim(gy, 1) == H)
        return k == 0 ? gy : NULL;
    return dg__seq_block(g, gy, k, H);
}

dg_node *dg__seq_add_dot(dg_graph *g, dg_node *acc, dg_node *a, dg_node *b)
{
    dg_node *dot = dg_sum(g, dg_mul(g, a, b), 0, NULL, false);
    return acc != NULL ? dg_add(g, acc, dot) : dot;
}

/* The steps of x [B,T,W] as [B,W] nodes; with proxy, each a fresh proxy appended to wrt. */
static void split_steps(dg_graph *g, dg_node *x, int64_t T, bool proxy, dg_node **steps,
                        dg_node **wrt, int *n_wrt)
{
    const int64_t width = dg_node_dim(x, 2);
    for (int64_t t = 0; t < T; t++) {
        steps[t] = dg__seq_step_of(g, x, t, width);
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

dg_status dg__seq_grad_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                dg_node *upstream, dg_node **gin, const char *op_name,
                                dg__seq_composed_vjp vjp)
{
    const int n = dg__n_inputs(node); /* gy, y, w_hh[, state0] */
    dg_node *gy = dg__input(node, 0), *y = dg__input(node, 1);
    dg_node *w_hh = dg__input(node, 2), *state0 = n == 4 ? dg__input(node, 3) : NULL;
    const int64_t T = dg_node_dim(y, 1), P = dg_node_dim(y, 2), W = dg_node_dim(gy, 2);
    const bool with_state = dg_node_dim(node, 1) > T;
    const bool need[4] = {dg__grad_needed(ctx, 0), dg__grad_needed(ctx, 1),
                          dg__grad_needed(ctx, 2), n == 4 && dg__grad_needed(ctx, 3)};
    if (!need[0] && !need[1] && !need[2] && !need[3])
        return dg_graph_status(g);
    dg_node **buf = dg__calloc((size_t)(6 * T + 4), sizeof *buf);
    if (buf == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "%s: node %d: out of memory building its second "
                           "derivative", op_name, dg_node_index(node));
        return DG_ERR_NOMEM;
    }
    dg_node **gy_t = buf, **y_t = buf + T, **wrt = buf + 2 * T, **grads = buf + 4 * T + 2;
    int n_wrt = 0;
    split_steps(g, gy, T, need[0], gy_t, wrt, &n_wrt);
    split_steps(g, y, T, need[1], y_t, wrt, &n_wrt);
    if (need[2])
        wrt[n_wrt++] = w_hh = dg_scale(g, w_hh, 1.0f);
    if (need[3])
        wrt[n_wrt++] = state0 = dg_scale(g, state0, 1.0f);
    dg_node *loss = dg_graph_status(g) == DG_OK
                        ? vjp(g, gy_t, y_t, w_hh, state0, upstream, T, with_state)
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
