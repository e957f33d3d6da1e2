/*
 * Planned execution equals unplanned execution, bitwise, on random graphs.
 *
 * A seeded generator builds a few hundred small graphs from every public op (views and chains
 * of views, in-place activations, broadcasting, reductions, layout ops, losses, dropout, fan-out),
 * appends their gradients, and compiles the same outputs twice: the shared plan (views alias,
 * slots are reused, ops run in place) and the unshared reference (every value its own buffer,
 * views copied). Every output must agree bit for bit, after a second run, after a batch change,
 * and inside the gradient block. A last test fails when a registered op never appeared in a
 * plan, so the generator grows with the registry.
 */
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "graph/plan_internal.h"
#include "op.h"
#include "test_util.h"

#define POOL_MAX 96
#define MAX_OUTPUTS 96

struct gen {
    dg_graph *g;
    dg_test_rng *rng;
    dg_node *pool[POOL_MAX];  /* float32 values to draw operands from */
    int n_pool;
    dg_node *params[24];
    int n_params;
    dg_node *extras[8];       /* values to request as outputs besides loss and gradients */
    int n_extras;
    dg_node *labels;          /* int32 [B] input, created on first use */
    dg_node *key;             /* dropout key, created on first use */
    dg_node *tokens;          /* int32 [B] input with values in [0, 3), created on first use */
    int64_t batch;
};

static int below(struct gen *s, int n) { return (int)(dg_test_rng_next(s->rng) % (uint64_t)n); }

static void push(struct gen *s, dg_node *n)
{
    if (n == NULL) {
        dg_graph_clear_error(s->g); /* a shape the op cannot take: try something else */
        return;
    }
    if (s->n_pool < POOL_MAX)
        s->pool[s->n_pool++] = n;
}

/* Mostly one of the latest values (deep chains), sometimes any (fan-out). */
static dg_node *operand(struct gen *s)
{
    if (below(s, 3) > 0) {
        int recent = s->n_pool < 4 ? s->n_pool : 4;
        return s->pool[s->n_pool - 1 - below(s, recent)];
    }
    return s->pool[below(s, s->n_pool)];
}

static dg_node *new_param(struct gen *s, int ndim, const int64_t *shape)
{
    if (s->n_params == (int)(sizeof s->params / sizeof s->params[0]))
        return NULL;
    char name[16];
    snprintf(name, sizeof name, "p%d", s->n_params);
    dg_node *p = dg_param(s->g, name, ndim, shape);
    float *data = dg_param_data(p);
    dg_test_fill_uniform(s->rng, data, dg_node_numel(p), -1.0f, 1.0f);
    s->params[s->n_params++] = p;
    return p;
}

/* A second operand for a binary op with x: a pool value of a broadcastable shape, or a new
 * parameter shaped like x's last axis, [1], or x itself. */
static dg_node *partner(struct gen *s, dg_node *x)
{
    int ndim = dg_node_ndim(x);
    switch (below(s, 5)) {
    case 0:
        return x; /* the same value read twice */
    case 1:
        if (ndim > 0)
            return new_param(s, 1, (int64_t[]){dg_node_dim(x, -1)});
        return dg_scalar(s->g, 0.75f);
    case 2:
        return new_param(s, 1, (int64_t[]){1});
    default:
        for (int tries = 0; tries < 6; tries++) {
            dg_node *y = operand(s);
            if (dg_node_ndim(y) <= ndim) {
                bool fits = true;
                for (int i = 1; i <= dg_node_ndim(y); i++)
                    fits = fits && (dg_node_dim(y, -i) == dg_node_dim(x, -i) ||
                                    dg_node_dim(y, -i) == 1);
                if (fits)
                    return y;
            }
        }
        return x;
    }
}

/* A view of x: flatten, flatten after the leading axis, an added or removed unit axis,
 * stop_gradient. The leading axis is written -1 so that the view follows a batch change. */
static dg_node *view_of(struct gen *s, dg_node *x)
{
    int ndim = dg_node_ndim(x);
    int64_t shape[DG_MAX_DIMS];
    int64_t numel = dg_node_numel(x);
    switch (below(s, 5)) {
    case 0:
        return dg_stop_gradient(s->g, x);
    case 1:
        return dg_reshape(s->g, x, 1, (int64_t[]){-1});
    case 2: /* [-1, rest] */
        if (ndim < 1)
            return dg_reshape(s->g, x, 2, (int64_t[]){1, -1});
        return dg_reshape(s->g, x, 2, (int64_t[]){-1, numel / dg_node_dim(x, 0)});
    case 3: { /* unsqueeze at a random axis >= 1 */
        if (ndim >= DG_MAX_DIMS - 1 || ndim < 1)
            return dg_reshape(s->g, x, 1, (int64_t[]){-1});
        int at = 1 + below(s, ndim);
        int k = 0;
        for (int i = 0; i < ndim; i++) {
            if (i == at)
                shape[k++] = 1;
            shape[k++] = i == 0 ? -1 : dg_node_dim(x, i);
        }
        if (at == ndim)
            shape[k++] = 1;
        return dg_reshape(s->g, x, k, shape);
    }
    default: { /* squeeze every unit axis after the first */
        int k = 0;
        for (int i = 0; i < ndim; i++)
            if (i == 0 || dg_node_dim(x, i) != 1)
                shape[k++] = i == 0 ? -1 : dg_node_dim(x, i);
        return dg_reshape(s->g, x, k, shape);
    }
    }
}

static dg_node *positive(struct gen *s, dg_node *x)
{
    return dg_add_scalar(s->g, dg_square(s->g, x), 0.5f);
}

/* A conv2d or conv_transpose2d, one more image op, and a pooling, on x [B, 2, 4, 4]; returns
 * the result flattened to [B, -1]. */
static dg_node *image_chain(struct gen *s, dg_node *x)
{
    dg_graph *g = s->g;
    dg_conv2d_params p = DG_CONV2D_DEFAULTS;
    dg_node *h;
    if (below(s, 3) > 0) {
        p.padding[0] = p.padding[1] = below(s, 2);
        p.stride[1] = 1 + below(s, 2);
        p.groups = below(s, 2) ? 2 : 1;
        dg_node *w = new_param(s, 4, (int64_t[]){4, 2 / p.groups, 3, 3});
        dg_node *b = below(s, 2) ? new_param(s, 1, (int64_t[]){4}) : NULL;
        h = dg_conv2d(g, x, w, b, &p);
    } else {
        p.stride[0] = p.stride[1] = 2;
        p.output_padding[0] = 1;
        h = dg_conv_transpose2d(g, x, new_param(s, 4, (int64_t[]){2, 2, 2, 2}), NULL, &p);
    }
    switch (below(s, 6)) {
    case 0: {
        /* with or without gamma/beta (the fused layer_norm_grad, layer_norm_gamma_grad) */
        int64_t hw[2] = {h != NULL ? dg_node_dim(h, 2) : 1, h != NULL ? dg_node_dim(h, 3) : 1};
        bool affine = below(s, 2);
        h = dg_layer_norm(g, h, affine ? new_param(s, 2, hw) : NULL,
                          affine ? new_param(s, 2, hw) : NULL, 2, 1e-5f);
        break;
    }
    case 1: {
        int64_t c = h != NULL ? dg_node_dim(h, 1) : 1;
        h = dg_group_norm(g, h, 2, new_param(s, 1, (int64_t[]){c}),
                          new_param(s, 1, (int64_t[]){c}), 1e-5f);
        break;
    }
    case 2: {
        if (s->key == NULL)
            s->key = dg_dropout_key(g);
        int64_t c = h != NULL ? dg_node_dim(h, 1) : 1;
        float zeros[8] = {0}, ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        /* with or without gamma/beta (the fused batch_norm_grad, batch_norm_gamma_grad) */
        bool affine = below(s, 2);
        h = dg_batch_norm(g, h, affine ? new_param(s, 1, (int64_t[]){c}) : NULL,
                          affine ? new_param(s, 1, (int64_t[]){c}) : NULL,
                          dg_constant(g, 1, (int64_t[]){c}, zeros),
                          dg_constant(g, 1, (int64_t[]){c}, ones), s->key, 0.1f, 1e-5f);
        break;
    }
    case 3:
        h = dg_pad2d(g, h, 1, 0, 1, 1, below(s, 2) ? DG_PAD_REFLECT : DG_PAD_CONSTANT, 0.5f);
        break;
    case 4:
        h = dg_upsample_nearest2d(g, h, 2, 1);
        break;
    default:
        h = dg_relu(g, h);
        break;
    }
    dg_pool2d_params pool = {.kernel = {2, 2}, .stride = {1, 1}, .count_include_pad = true};
    switch (below(s, 3)) {
    case 0: h = dg_max_pool2d(g, h, &pool); break;
    case 1: h = dg_avg_pool2d(g, h, &pool); break;
    default: h = dg_adaptive_avg_pool2d(g, h, 2, 1); break;
    }
    return dg_flatten(g, h);
}

/* One random op on values of the pool. */
static void grow(struct gen *s)
{
    dg_graph *g = s->g;
    dg_node *x = operand(s);
    int ndim = dg_node_ndim(x);
    int axis = ndim > 0 ? below(s, ndim) - (below(s, 2) ? ndim : 0) : 0;
    switch (below(s, 23)) {
    case 0: {
        dg_node *y = partner(s, x);
        dg_node *(*ops[])(dg_graph *, dg_node *, dg_node *) = {dg_add, dg_sub, dg_mul,
                                                               dg_maximum, dg_minimum};
        dg_node *z = ops[below(s, 5)](g, x, y);
        push(s, below(s, 2) ? z : ops[below(s, 5)](g, y, x));
        break;
    }
    case 1:
        push(s, dg_div(g, x, positive(s, partner(s, x))));
        break;
    case 2: {
        dg_node *(*ops[])(dg_graph *, dg_node *) = {dg_neg, dg_abs, dg_exp, dg_square};
        push(s, ops[below(s, 4)](g, below(s, 2) ? x : dg_tanh(g, x)));
        break;
    }
    case 3:
        switch (below(s, 5)) {
        case 0: push(s, dg_log(g, positive(s, x))); break;
        case 1: push(s, dg_sqrt(g, positive(s, x))); break;
        case 2: push(s, dg_pow_scalar(g, x, below(s, 2) ? 2.0f : 3.0f)); break;
        case 3: push(s, dg_scale(g, x, -1.5f)); break;
        default: push(s, dg_add_scalar(g, x, 0.25f)); break;
        }
        break;
    case 4:
    case 5: { /* an activation, often straight after a view: the in-place case */
        dg_node *in = below(s, 2) ? view_of(s, x) : x;
        if (below(s, 3) == 0)
            push(s, in); /* the view itself stays readable later: in-place must not clobber */
        dg_node *(*ops[])(dg_graph *, dg_node *) = {dg_relu, dg_sigmoid, dg_tanh, dg_gelu,
                                                    dg_softplus};
        int k = below(s, 6);
        push(s, k == 5 ? dg_leaky_relu(g, in, 0.1f) : ops[k](g, in));
        break;
    }
    case 6:
    case 7: { /* views, and views of views */
        dg_node *v = view_of(s, x);
        if (below(s, 2))
            v = view_of(s, v);
        push(s, v);
        if (below(s, 4) == 0 && s->n_extras < 8 && v != NULL)
            s->extras[s->n_extras++] = v; /* a view as a requested output */
        break;
    }
    case 8: { /* matmul with a parameter, sometimes transposed */
        if (ndim < 2)
            break;
        int64_t k = 1 + below(s, 4), inner = dg_node_dim(x, -1);
        if (below(s, 2))
            push(s, dg_matmul(g, x, new_param(s, 2, (int64_t[]){inner, k})));
        else
            push(s, dg_matmul_ex(g, x, new_param(s, 2, (int64_t[]){k, inner}), false, true));
        break;
    }
    case 9: {
        dg_node *(*ops[])(dg_graph *, dg_node *, int, const int *, bool) = {dg_sum, dg_mean,
                                                                             dg_max};
        bool all = ndim == 0 || below(s, 4) == 0;
        push(s, ops[below(s, 3)](g, x, all ? 0 : 1, all ? NULL : &axis, below(s, 2)));
        break;
    }
    case 10:
        if (ndim >= 2) {
            if (below(s, 2)) {
                push(s, dg_transpose(g, x));
            } else {
                int perm[DG_MAX_DIMS];
                for (int i = 0; i < ndim; i++)
                    perm[i] = ndim - 1 - i;
                push(s, dg_permute(g, x, ndim, perm));
            }
        } else if (ndim == 1) { /* broadcast [F] up to [2, F] */
            push(s, dg_broadcast_to(g, x, 2, (int64_t[]){2, dg_node_dim(x, 0)}));
        }
        break;
    case 11:
        if (ndim >= 1 && dg_node_dim(x, axis) > 1) {
            int64_t n = dg_node_dim(x, axis);
            push(s, dg_slice(g, x, axis, below(s, (int)n - 1), n));
        }
        break;
    case 12:
        if (below(s, 3) == 0) { /* an n-ary sum, with a repeated operand */
            dg_node *terms[3] = {x, dg_tanh(g, x), x};
            push(s, dg_add_n(g, 2 + below(s, 2), terms));
        } else if (ndim >= 1) {
            dg_node *parts[3] = {x, below(s, 2) ? x : dg_tanh(g, x), operand(s)};
            push(s, dg_concat(g, 2 + below(s, 2), parts, ndim - 1));
        }
        break;
    case 13:
        if (ndim >= 1)
            push(s, below(s, 2) ? dg_softmax(g, x, axis) : dg_log_softmax(g, x, axis));
        break;
    case 14: { /* losses of two same-shaped values */
        dg_node *y = below(s, 2) ? dg_scale(g, x, 0.5f) : dg_tanh(g, operand(s));
        switch (below(s, 5)) {
        case 0: push(s, dg_mse_loss(g, x, y)); break;
        case 1: push(s, dg_l1_loss(g, x, y)); break;
        case 2: push(s, dg_huber_loss(g, x, y, 0.5f)); break;
        case 3: push(s, dg_bce(g, dg_sigmoid(g, x), dg_sigmoid(g, y))); break;
        default: push(s, dg_bce_with_logits(g, x, dg_sigmoid(g, y))); break;
        }
        break;
    }
    case 20: /* images: [B, F] -> [B, 2, 4, 4] -> a conv, an image op, a pooling -> [B, -1] */
        if (ndim == 2 && dg_node_dim(x, 0) == s->batch) {
            dg_node *w = new_param(s, 2, (int64_t[]){dg_node_dim(x, 1), 32});
            if (w == NULL)
                break;
            push(s, image_chain(s, dg_reshape(g, dg_matmul(g, x, w), 4,
                                              (int64_t[]){-1, 2, 4, 4})));
        }
        break;
    case 15: /* cross-entropy of [B, C] logits against the labels input */
        if (ndim == 2 && dg_node_dim(x, 0) == s->batch) {
            if (s->labels == NULL)
                s->labels = dg_input_typed(g, "labels", DG_I32, 1, (int64_t[]){s->batch});
            push(s, dg_softmax_cross_entropy(g, x, s->labels));
        }
        break;
    case 16: /* an embedding lookup of the tokens input in a [3, F] table */
        if (s->tokens == NULL)
            s->tokens = dg_input_typed(g, "tokens", DG_I32, 1, (int64_t[]){s->batch});
        push(s, dg_embedding(g, new_param(s, 2, (int64_t[]){3, 1 + below(s, 4)}), s->tokens));
        break;
    case 17: { /* a comparison mask, a selection by it, an index along an axis */
        dg_node *y = partner(s, x);
        dg_node *(*compare[])(dg_graph *, dg_node *, dg_node *) = {
            dg_equal, dg_not_equal, dg_greater, dg_greater_equal, dg_less, dg_less_equal};
        dg_node *mask = compare[below(s, 6)](g, x, y);
        if (below(s, 3) == 0)
            push(s, mask);
        push(s, dg_where(g, mask, x, below(s, 2) ? y : dg_scale(g, y, 0.5f)));
        if (ndim >= 1 && below(s, 2)) {
            dg_node *index = below(s, 2) ? dg_argmax(g, x, axis) : dg_argmin(g, x, axis);
            push(s, dg_cast(g, index, DG_F32));
        } else if (below(s, 2)) {
            push(s, dg_cast(g, dg_cast(g, dg_scale(g, x, 3.0f), DG_I32), DG_F32));
        }
        break;
    }
    case 18: /* self-attention of x over its leading axis (T = batch), sometimes causal, with
              * dropout on the weights */
        if (ndim == 2) {
            bool drop = below(s, 2);
            if (drop && s->key == NULL)
                s->key = dg_dropout_key(g);
            push(s, dg_attention(g, x, dg_tanh(g, x), partner(s, x), drop ? s->key : NULL,
                                 below(s, 2), drop ? 0.25f : 0.0f));
        }
        break;
    case 19: /* the fused LSTM recurrence over B = x's rows (the batch axis), T = 3, H = 2,
              * with or without initial states; the packed [B,3,12] output flattened.
              * Parameters first: a failed op makes later dg_param calls return NULL. */
        if (ndim == 2) {
            int64_t m = dg_node_dim(x, 1);
            dg_node *w_x = new_param(s, 2, (int64_t[]){m, 24});
            dg_node *w_hh = new_param(s, 2, (int64_t[]){8, 2});
            dg_node *w_s = new_param(s, 2, (int64_t[]){m, 4});
            dg_node *bias = below(s, 2) ? new_param(s, 1, (int64_t[]){8}) : NULL;
            if (w_x == NULL || w_hh == NULL || w_s == NULL)
                break;
            dg_node *xw = dg_reshape(g, dg_matmul(g, x, w_x), 3, (int64_t[]){-1, 3, 8});
            dg_node *states = dg_matmul(g, x, w_s);
            dg_node *h0 = below(s, 2) ? dg_slice(g, states, 1, 0, 2) : NULL;
            dg_node *c0 = below(s, 2) ? dg_tanh(g, dg_slice(g, states, 1, 2, 4)) : NULL;
            dg_node *y = dg_lstm_seq(g, xw, w_hh, bias, h0, c0);
            push(s, dg_reshape(g, y, 2, (int64_t[]){-1, 36}));
        }
        break;
    case 21: /* the fused GRU recurrence over B = x's rows, T = 3, H = 2, with or without
              * biases and h0; the packed [B,3,10] output flattened. */
        if (ndim == 2) {
            int64_t m = dg_node_dim(x, 1);
            dg_node *w_x = new_param(s, 2, (int64_t[]){m, 18});
            dg_node *w_hh = new_param(s, 2, (int64_t[]){6, 2});
            dg_node *w_s = new_param(s, 2, (int64_t[]){m, 2});
            dg_node *b_ih = below(s, 2) ? new_param(s, 1, (int64_t[]){6}) : NULL;
            dg_node *b_hh = below(s, 2) ? new_param(s, 1, (int64_t[]){6}) : NULL;
            if (w_x == NULL || w_hh == NULL || w_s == NULL)
                break;
            dg_node *xw = dg_reshape(g, dg_matmul(g, x, w_x), 3, (int64_t[]){-1, 3, 6});
            dg_node *h0 = below(s, 2) ? dg_tanh(g, dg_matmul(g, x, w_s)) : NULL;
            dg_node *y = dg_gru_seq(g, xw, w_hh, b_ih, b_hh, h0);
            push(s, dg_reshape(g, y, 2, (int64_t[]){-1, 30}));
        }
        break;
    default:
        if (s->key == NULL)
            s->key = dg_dropout_key(g);
        push(s, dg_dropout(g, x, s->key, 0.3f));
        break;
    }
}

/* Feeds the same data into a plan: inputs from a fixed seed at the plan's current shapes. */
static void feed_all(dg_plan *p, struct gen *s, dg_node *x, uint64_t seed)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, seed);
    int64_t n = dg_plan_numel(p, x);
    float *data = malloc((size_t)n * sizeof *data);
    dg_test_fill_uniform(&rng, data, n, -2.0f, 2.0f);
    ck_assert_int_eq(dg_feed(p, x, data), DG_OK);
    free(data);
    if (s->labels != NULL && dg_plan_numel(p, s->labels) > 0) {
        int64_t m = dg_plan_numel(p, s->labels);
        int32_t *labels = malloc((size_t)m * sizeof *labels);
        for (int64_t i = 0; i < m; i++)
            labels[i] = (int32_t)(dg_test_rng_next(&rng) % 4) - 1; /* -1 ignores the row */
        ck_assert_int_eq(dg_feed(p, s->labels, labels), DG_OK);
        free(labels);
    }
    if (s->tokens != NULL && dg_plan_numel(p, s->tokens) > 0) {
        int64_t m = dg_plan_numel(p, s->tokens);
        int32_t *tokens = malloc((size_t)m * sizeof *tokens);
        for (int64_t i = 0; i < m; i++)
            tokens[i] = (int32_t)(dg_test_rng_next(&rng) % 3);
        ck_assert_int_eq(dg_feed(p, s->tokens, tokens), DG_OK);
        free(tokens);
    }
    if (s->key != NULL && dg_plan_numel(p, s->key) > 0)
        ck_assert_int_eq(dg_dropout_feed_key(p, seed, 3, true), DG_OK);
}

static void expect_same(dg_plan *shared, dg_plan *unshared, int n, dg_node *const *outputs,
                        int graph, const char *when)
{
    for (int i = 0; i < n; i++) {
        int64_t numel = dg_plan_numel(unshared, outputs[i]);
        ck_assert_int_eq(dg_plan_numel(shared, outputs[i]), numel);
        const void *a = dg_node_dtype(outputs[i]) == DG_F32
                            ? (const void *)dg_data(shared, outputs[i])
                            : (const void *)dg_data_i32(shared, outputs[i]);
        const void *b = dg_node_dtype(outputs[i]) == DG_F32
                            ? (const void *)dg_data(unshared, outputs[i])
                            : (const void *)dg_data_i32(unshared, outputs[i]);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_msg(memcmp(a, b, (size_t)numel * 4) == 0,
                      "graph %d, %s: output %d (node %d, %s) differs between the shared and "
                      "the unshared plan", graph, when, i, dg_node_index(outputs[i]),
                      dg_node_op_name(outputs[i]));
    }
}

/* Every op name that ran in some shared plan of the random graphs. */
static bool op_seen[DG_OP_COUNT];
static int views_aliased; /* view steps given no memory, over all graphs */

static void note_ops(dg_plan *p)
{
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = p->graph->nodes[p->steps[s]];
        for (int id = 0; id < DG_OP_COUNT; id++)
            if (dg__op_def((dg_op_id)id) == n->def)
                op_seen[id] = true;
        views_aliased += p->values[n->index].is_view;
    }
}

static void check_block(dg_plan *shared, dg_plan *unshared, int n, dg_node *const *grads,
                        int graph)
{
    int64_t length = -1;
    const float *block = dg_plan_grad_block(shared, &length);
    ck_assert_ptr_nonnull(block);
    int64_t expect = 0;
    for (int k = 0; k < n; k++) {
        int64_t numel = dg_plan_numel(unshared, grads[k]);
        ck_assert_int_eq(dg_plan_grad_block_offset(shared, k), expect);
        ck_assert_msg(memcmp(block + expect, dg_data(unshared, grads[k]), (size_t)numel * 4) == 0,
                      "graph %d: gradient block entry %d differs from the gradient", graph, k);
        expect += numel;
    }
    ck_assert_int_eq(length, expect);
}

/* Builds, compiles twice, runs and compares random graph number `graph`. */
static void one_graph(int graph)
{
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 0x5eed0000u + (uint64_t)graph);
    struct gen s = {.g = dg_graph_new(), .rng = &rng};
    dg_graph_set_threads(s.g, 1 + graph % 2);
    s.batch = 2 + below(&s, 3);
    int64_t features = 1 + below(&s, 5);
    dg_node *x = dg_input(s.g, "x", 2, (int64_t[]){s.batch, features});
    push(&s, x);
    push(&s, new_param(&s, 2, (int64_t[]){s.batch, features}));
    if (below(&s, 2)) /* a view of an input and of a parameter, early */
        push(&s, view_of(&s, x));
    if (below(&s, 2))
        push(&s, view_of(&s, s.pool[1]));
    int n_ops = 6 + below(&s, 22);
    for (int i = 0; i < n_ops; i++)
        grow(&s);

    /* loss: the sum of a few values, the latest always among them */
    dg_node *loss = dg_sum(s.g, s.pool[s.n_pool - 1], 0, NULL, false);
    for (int k = 0; k < 2; k++)
        loss = dg_add(s.g, loss, dg_sum(s.g, operand(&s), 0, NULL, false));
    ck_assert_msg(loss != NULL, "graph %d: %s", graph, dg_graph_error(s.g));
    dg_node *wrt[32], *grads[32];
    int n_wrt = 0;
    for (int k = 0; k < s.n_params; k++)
        wrt[n_wrt++] = s.params[k];
    wrt[n_wrt++] = x;
    ck_assert_msg(dg_grad(s.g, loss, n_wrt, wrt, grads) == DG_OK, "graph %d: %s", graph,
                  dg_graph_error(s.g));

    dg_node *outputs[MAX_OUTPUTS];
    int n_out = 0;
    /* Some graphs differentiate again (the gradients' own backward ops: broadcast_like, ...):
     * d/dw of sum of squared first gradients. A path through an op with no second derivative
     * is skipped. */
    if (graph % 4 == 1) {
        dg_node *loss2 = NULL, *grads2[32];
        for (int k = 0; k < n_wrt; k++) {
            dg_node *term = dg_sum(s.g, dg_square(s.g, grads[k]), 0, NULL, false);
            loss2 = loss2 ? dg_add(s.g, loss2, term) : term;
        }
        if (dg_grad(s.g, loss2, n_wrt, wrt, grads2) == DG_OK) {
            for (int k = 0; k < n_wrt; k++)
                outputs[n_out++] = grads2[k];
        } else {
            dg_graph_clear_error(s.g);
        }
    }
    for (int k = 0; k < n_wrt; k++)
        outputs[n_out++] = grads[k];
    outputs[n_out++] = loss;
    for (int k = 0; k < s.n_extras; k++)
        outputs[n_out++] = s.extras[k];
    outputs[n_out++] = s.pool[below(&s, s.n_pool)];

    dg_plan *shared = dg_compile(s.g, n_out, outputs);
    dg_plan *unshared = dg__compile_ex(s.g, n_out, outputs, false);
    ck_assert_msg(shared != NULL && unshared != NULL, "graph %d: %s", graph, dg_graph_error(s.g));
    bool block = graph % 2 == 0;
    if (block) /* the parameters' gradients, then x's */
        ck_assert_int_eq(dg_plan_set_grad_block(shared, n_wrt, grads), DG_OK);
    feed_all(shared, &s, x, 100 + (uint64_t)graph);
    feed_all(unshared, &s, x, 100 + (uint64_t)graph);
    ck_assert_int_eq(dg_run(shared), DG_OK);
    ck_assert_int_eq(dg_run(unshared), DG_OK);
    expect_same(shared, unshared, n_out, outputs, graph, "first run");
    if (block)
        check_block(shared, unshared, n_wrt, grads, graph);
    ck_assert_int_eq(dg_run(shared), DG_OK); /* a second run gives the same bits */
    expect_same(shared, unshared, n_out, outputs, graph, "second run");
    note_ops(shared);

    /* Another batch: views and the block follow (where every op can take the new shapes). */
    int64_t batch = s.batch + (graph % 3 == 0 ? 3 : -1);
    dg_status a = dg_plan_set_batch(shared, batch);
    dg_status b = dg_plan_set_batch(unshared, batch);
    ck_assert_int_eq(a, b);
    if (a == DG_OK) {
        feed_all(shared, &s, x, 200 + (uint64_t)graph);
        feed_all(unshared, &s, x, 200 + (uint64_t)graph);
        ck_assert_int_eq(dg_run(shared), DG_OK);
        ck_assert_int_eq(dg_run(unshared), DG_OK);
        expect_same(shared, unshared, n_out, outputs, graph, "after set_batch");
        if (block)
            check_block(shared, unshared, n_wrt, grads, graph);
    }
    dg_plan_free(shared);
    dg_plan_free(unshared);
    dg_graph_free(s.g);
}

#define N_GRAPHS 400

START_TEST(random_graphs_planned_equal_unplanned)
{
    for (int graph = 0; graph < N_GRAPHS; graph++)
        one_graph(graph);
    ck_assert_int_gt(views_aliased, N_GRAPHS); /* the generator does make views */
    for (int i = 0; i < DG_OP_COUNT; i++)
        ck_assert_msg(op_seen[i], "op '%s' never ran in the random graphs: teach the "
                      "generator in tests/test_plan_random.c to build it",
                      dg__op_def((dg_op_id)i)->name);
}
END_TEST

/* A plan too large for the offline placement (over a thousand buffers: the online allocator
 * places them): a long chain with fan-out, views and in-place activations, and its gradient,
 * planned == unplanned bitwise, and planned in less memory. */
START_TEST(large_graph_online_placement)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){3, 5});
    dg_node *w = dg_param(g, "w", 1, (int64_t[]){5});
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 99);
    dg_test_fill_uniform(&rng, dg_param_data(w), 5, -1, 1);
    dg_node *y = x, *skip = x;
    for (int i = 0; i < 600; i++) {
        dg_node *v = dg_reshape(g, y, 3, (int64_t[]){-1, 5, 1});
        dg_node *a = i % 2 ? dg_tanh(g, v) : dg_relu(g, dg_add_scalar(g, v, -0.1f));
        y = dg_add(g, dg_mul(g, dg_reshape(g, a, 2, (int64_t[]){-1, 5}), w), skip);
        if (i % 7 == 0)
            skip = dg_scale(g, y, 0.5f);
    }
    dg_node *loss = dg_sum(g, dg_square(g, y), 0, NULL, false), *grads[2];
    ck_assert_int_eq(dg_grad(g, loss, 2, (dg_node *[]){w, x}, grads), DG_OK);
    dg_node *outs[3] = {loss, grads[0], grads[1]};
    dg_plan *shared = dg_compile(g, 3, outs);
    dg_plan *unshared = dg__compile_ex(g, 3, outs, false);
    ck_assert_int_gt(dg_plan_node_count(shared), 4000);
    ck_assert_uint_lt(dg_plan_arena_bytes(shared), dg_plan_arena_bytes(unshared) / 4);
    float data[15];
    dg_test_fill_uniform(&rng, data, 15, -1, 1);
    dg_feed(shared, x, data);
    dg_feed(unshared, x, data);
    ck_assert_int_eq(dg_run(shared), DG_OK);
    ck_assert_int_eq(dg_run(unshared), DG_OK);
    expect_same(shared, unshared, 3, outs, -1, "large graph");
    dg_plan_free(shared);
    dg_plan_free(unshared);
    dg_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("plan_random");
    TCase *tc = tcase_create("random");
    tcase_add_test(tc, random_graphs_planned_equal_unplanned);
    tcase_add_test(tc, large_graph_online_placement);
    suite_add_tcase(suite, tc);
    return dg_test_run(suite);
}
