/*
 * Views, the gradient block and how long dg_data pointers stay valid: the targeted cases
 * beside the random graphs of test_plan_random.c.
 */
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "graph/plan_internal.h"
#include "test_util.h"

/* Whether node is computed as a view (no memory, no kernel) in plan p. */
static bool aliased(const dg_plan *p, const dg_node *node)
{
    return p->values[dg_node_index(node)].is_view;
}

/* relu runs in place over its input when that input dies; here the input is a reshape of a
 * value that is read again afterwards, so relu must not overwrite it. */
START_TEST(inplace_after_view_of_live_value)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 3});
    dg_node *a = dg_mul(g, x, dg_scalar(g, 1.0f));                 /* arena value */
    dg_node *v = dg_reshape(g, a, 1, (int64_t[]){-1});               /* view of a */
    dg_node *r = dg_relu(g, v);                                      /* could run in place */
    dg_node *out = dg_add(g, dg_reshape(g, r, 2, (int64_t[]){-1, 3}), a); /* a read later */
    dg_plan *p = dg_compile(g, 1, &out);
    ck_assert_ptr_nonnull(p);
    ck_assert(aliased(p, v));
    const float in[6] = {-1, 2, -3, 4, -5, 6};
    ck_assert_int_eq(dg_feed(p, x, in), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    const float *o = dg_data(p, out);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(o[i], (in[i] > 0 ? in[i] : 0) + in[i], 1e-6f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* A view of a view as an output: its root stays alive (held), even though nothing else reads
 * it, and a later in-place op does not take its storage. */
START_TEST(view_of_view_as_output)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 3});
    dg_node *a = dg_add_scalar(g, x, 1.0f);
    dg_node *vv = dg_stop_gradient(g, dg_reshape(g, a, 2, (int64_t[]){3, -1}));
    dg_node *later = dg_relu(g, dg_neg(g, a)); /* neg reads a last; relu may run in place */
    dg_node *outs[2] = {vv, later};
    dg_plan *p = dg_compile(g, 2, outs);
    ck_assert(aliased(p, vv));
    const float in[6] = {1, 2, 3, 4, 5, 6};
    dg_feed(p, x, in);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(dg_plan_dim(p, vv, 0), 3);
    const float *o = dg_data(p, vv);
    ck_assert_ptr_nonnull(o);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(o[i], in[i] + 1.0f, 1e-6f);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(dg_data(p, later)[i], 0.0f, 1e-6f);
    /* The intermediate between the two views is still not readable. */
    ck_assert_ptr_null(dg_data(p, dg_graph_node(g, dg_node_index(vv) - 1)));
    dg_graph_clear_error(g);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Views of an input and of a parameter: outputs that share the leaf's storage, readable
 * through dg_data, and never written by an in-place op. */
START_TEST(views_of_input_and_parameter)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 2});
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){2, 2});
    float *wd = dg_param_data(w);
    for (int i = 0; i < 4; i++)
        wd[i] = (float)i - 1.5f;
    dg_node *xv = dg_reshape(g, x, 1, (int64_t[]){4});
    dg_node *wv = dg_reshape(g, w, 1, (int64_t[]){4});
    dg_node *r = dg_relu(g, wv); /* wv's root is a parameter: relu must not run in place */
    dg_node *s = dg_relu(g, dg_stop_gradient(g, xv));
    dg_node *outs[4] = {xv, wv, r, s};
    dg_plan *p = dg_compile(g, 4, outs);
    const float in[4] = {-1, 1, -2, 2};
    dg_feed(p, x, in);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_ptr_eq(dg_data(p, xv), dg_data(p, x));
    ck_assert_ptr_eq(dg_data(p, wv), wd);
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq_tol(wd[i], (float)i - 1.5f, 1e-6f);
        ck_assert_float_eq_tol(dg_data(p, x)[i], in[i], 1e-6f);
        ck_assert_float_eq_tol(dg_data(p, r)[i], wd[i] > 0 ? wd[i] : 0, 1e-6f);
        ck_assert_float_eq_tol(dg_data(p, s)[i], in[i] > 0 ? in[i] : 0, 1e-6f);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* A view of an output read by an op that could run in place: the output is pinned, so its
 * storage is never overwritten through the view. */
START_TEST(view_of_output_is_not_overwritten)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 2});
    dg_node *out = dg_neg(g, x);
    dg_node *r = dg_sigmoid(g, dg_reshape(g, out, 1, (int64_t[]){-1}));
    dg_node *outs[2] = {out, r};
    dg_plan *p = dg_compile(g, 2, outs);
    const float in[4] = {1, -2, 3, -4};
    dg_feed(p, x, in);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_ptr_ne(dg_data(p, r), dg_data(p, out));
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(dg_data(p, out)[i], -in[i], 1e-6f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* A view costs no memory: reshape chains add nothing to the arena. */
START_TEST(views_take_no_arena_memory)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){64, 64});
    dg_node *a = dg_exp(g, x);
    dg_node *plain = dg_sum(g, a, 0, NULL, false);
    dg_plan *p1 = dg_compile(g, 1, &plain);
    dg_node *v = a;
    for (int i = 0; i < 5; i++)
        v = dg_reshape(g, v, 2, (int64_t[]){i % 2 ? 64 : 32, -1});
    dg_node *viewed = dg_sum(g, v, 0, NULL, false);
    dg_plan *p2 = dg_compile(g, 1, &viewed);
    ck_assert_uint_eq(dg_plan_arena_bytes(p1), dg_plan_arena_bytes(p2));
    dg_plan_free(p1);
    dg_plan_free(p2);
    dg_graph_free(g);
}
END_TEST

/* squeeze and unsqueeze are views (no kernel, no arena bytes), give the right shapes and
 * values, pass gradients back, follow a batch change, and refuse bad axes. */
START_TEST(squeeze_and_unsqueeze_are_views)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, (int64_t[]){4, 1, 3});
    dg_node *w = dg_param(g, "w", 1, (int64_t[]){3});
    dg_node *a = dg_mul(g, x, w);
    dg_node *s = dg_squeeze(g, a, 1);             /* [4,3] */
    dg_node *u = dg_unsqueeze(g, s, -1);          /* [4,3,1] */
    dg_node *u0 = dg_unsqueeze(g, s, 0);          /* [1,4,3] */
    ck_assert_int_eq(dg_node_ndim(s), 2);
    ck_assert_int_eq(dg_node_dim(u, 2), 1);
    ck_assert_int_eq(dg_node_dim(u0, 0), 1);
    ck_assert_int_eq(dg_node_dim(u0, 1), 4);
    dg_node *loss = dg_add(g, dg_sum(g, dg_square(g, u), 0, NULL, false),
                           dg_sum(g, u0, 0, NULL, false));
    dg_node *grad;
    ck_assert_int_eq(dg_grad(g, loss, 1, &w, &grad), DG_OK);
    dg_plan *p = dg_compile(g, 3, (dg_node *[]){loss, grad, u});
    ck_assert_ptr_nonnull(p);
    ck_assert(aliased(p, s) && aliased(p, u));
    float in[12], *wd = dg_param_data(w);
    for (int i = 0; i < 12; i++)
        in[i] = 0.25f * (float)(i - 5);
    for (int j = 0; j < 3; j++)
        wd[j] = 1.0f + 0.1f * (float)j;
    ck_assert_int_eq(dg_feed(p, x, in), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    double expect = 0, dw[3] = {0, 0, 0};
    for (int i = 0; i < 12; i++) {
        float v = in[i] * wd[i % 3];
        expect += (double)v * v + v;
        dw[i % 3] += (2.0 * v + 1.0) * in[i]; /* d/dw of v^2 + v = (2 v + 1) x */
        ck_assert_float_eq_tol(dg_data(p, u)[i], v, 1e-6f);
    }
    for (int j = 0; j < 3; j++)
        ck_assert_float_eq_tol(dg_data(p, grad)[j], (float)dw[j], 1e-5f);
    ck_assert_float_eq_tol(dg_data(p, loss)[0], (float)expect, 1e-4f);
    /* The batch axis follows dg_plan_set_batch through the views. */
    ck_assert_int_eq(dg_plan_set_batch(p, 2), DG_OK);
    ck_assert_int_eq(dg_feed(p, x, in), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(dg_data(p, u)[i], in[i] * wd[i % 3], 1e-6f);
    dg_plan_free(p);
    /* Errors: a size-3 axis, an axis out of range. */
    ck_assert_ptr_null(dg_squeeze(g, a, 2));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "squeeze: axis 2 of [4,1,3] has size 3"));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_unsqueeze(g, a, 5));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    dg_graph_free(g);
}
END_TEST

/* Views follow a batch change: a reshape with -1 over the batch. */
START_TEST(views_after_set_batch)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 3});
    dg_node *a = dg_scale(g, x, 2.0f);
    dg_node *v = dg_reshape(g, a, 1, (int64_t[]){-1});
    dg_node *r = dg_relu(g, dg_reshape(g, a, 3, (int64_t[]){-1, 3, 1}));
    dg_node *outs[2] = {v, r};
    dg_plan *p = dg_compile(g, 2, outs);
    ck_assert_int_eq(dg_plan_set_batch(p, 5), DG_OK);
    ck_assert_int_eq(dg_plan_numel(p, v), 15);
    ck_assert_int_eq(dg_plan_dim(p, r, 0), 5);
    float in[15];
    for (int i = 0; i < 15; i++)
        in[i] = (float)(i % 4) - 1.5f;
    dg_feed(p, x, in);
    ck_assert_int_eq(dg_run(p), DG_OK);
    for (int i = 0; i < 15; i++) {
        ck_assert_float_eq_tol(dg_data(p, v)[i], 2 * in[i], 1e-6f);
        ck_assert_float_eq_tol(dg_data(p, r)[i], in[i] > 0 ? 2 * in[i] : 0, 1e-6f);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* ---- The gradient block ------------------------------------------------------------------ */

struct mlp {
    dg_graph *g;
    dg_node *x, *loss, *params[4], *grads[4];
    int n;
};

static void build_mlp(struct mlp *m)
{
    m->g = dg_graph_new();
    dg_graph *g = m->g;
    m->x = dg_input(g, "x", 2, (int64_t[]){4, 3});
    dg_node *w1 = dg_param(g, "w1", 2, (int64_t[]){3, 5});
    dg_node *b1 = dg_param(g, "b1", 1, (int64_t[]){5});
    dg_node *w2 = dg_param(g, "w2", 2, (int64_t[]){5, 2});
    dg_node *b2 = dg_param(g, "b2", 1, (int64_t[]){2});
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 11);
    dg_node *ps[4] = {w1, b1, w2, b2};
    for (int i = 0; i < 4; i++)
        dg_test_fill_uniform(&rng, dg_param_data(ps[i]), dg_node_numel(ps[i]), -1, 1);
    dg_node *h = dg_tanh(g, dg_add(g, dg_matmul(g, m->x, w1), b1));
    dg_node *y = dg_add(g, dg_matmul(g, dg_reshape(g, h, 2, (int64_t[]){-1, 5}), w2), b2);
    m->loss = dg_mean(g, dg_square(g, y), 0, NULL, false);
    ck_assert_int_eq(dg_grad_params(g, m->loss, 4, m->params, m->grads, &m->n), DG_OK);
    ck_assert_int_eq(m->n, 4);
}

static void feed_x(dg_plan *p, dg_node *x, int seed)
{
    int64_t n = dg_plan_numel(p, x);
    float *data = malloc((size_t)n * sizeof *data);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, (uint64_t)seed);
    dg_test_fill_uniform(&rng, data, n, -1, 1);
    ck_assert_int_eq(dg_feed(p, x, data), DG_OK);
    free(data);
}

/* The block holds exactly the gradient outputs, densely, in the order given; those outputs
 * live in it; it survives a batch change; removing it works. */
START_TEST(grad_block_holds_the_gradients)
{
    struct mlp m;
    build_mlp(&m);
    dg_node *outs[5] = {m.loss, m.grads[0], m.grads[1], m.grads[2], m.grads[3]};
    dg_plan *p = dg_compile(m.g, 5, outs);
    dg_plan *ref = dg__compile_ex(m.g, 5, outs, false);
    int64_t len = -1;
    ck_assert_ptr_null(dg_plan_grad_block(p, &len));
    ck_assert_int_eq(len, 0);
    ck_assert_int_eq(dg_plan_set_grad_block(p, 4, m.grads), DG_OK);
    for (int batch = 4; batch <= 9; batch += 5) {
        if (batch != 4) {
            ck_assert_int_eq(dg_plan_set_batch(p, batch), DG_OK);
            ck_assert_int_eq(dg_plan_set_batch(ref, batch), DG_OK);
        }
        feed_x(p, m.x, batch);
        feed_x(ref, m.x, batch);
        ck_assert_int_eq(dg_run(p), DG_OK);
        ck_assert_int_eq(dg_run(ref), DG_OK);
        float *block = dg_plan_grad_block(p, &len);
        ck_assert_ptr_nonnull(block);
        ck_assert_int_eq(len, 15 + 5 + 10 + 2);
        int64_t expect[4] = {0, 15, 20, 30};
        for (int k = 0; k < 4; k++) {
            ck_assert_int_eq(dg_plan_grad_block_offset(p, k), expect[k]);
            ck_assert_ptr_eq(dg_data(p, m.grads[k]), block + expect[k]);
            ck_assert_mem_eq(block + expect[k], dg_data(ref, m.grads[k]),
                             (size_t)dg_plan_numel(p, m.params[k]) * sizeof(float));
        }
        ck_assert_int_eq(dg_plan_grad_block_offset(p, 4), -1);
        ck_assert_int_eq(dg_plan_grad_block_offset(p, -1), -1);
    }
    ck_assert_int_eq(dg_plan_set_grad_block(p, 0, NULL), DG_OK);
    ck_assert_ptr_null(dg_plan_grad_block(p, &len));
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_mem_eq(dg_data(p, m.grads[0]), dg_data(ref, m.grads[0]), 15 * sizeof(float));
    dg_plan_free(p);
    dg_plan_free(ref);
    dg_graph_free(m.g);
}
END_TEST

/* Entries that cannot be computed in the block (a node listed twice, a parameter) are copied
 * in after each run; errors name the entry. */
START_TEST(grad_block_copies_and_errors)
{
    struct mlp m;
    build_mlp(&m);
    dg_node *outs[3] = {m.loss, m.grads[1], m.grads[3]};
    dg_plan *p = dg_compile(m.g, 3, outs);
    dg_node *entries[4] = {m.grads[3], m.params[1], m.grads[3], m.grads[1]};
    ck_assert_int_eq(dg_plan_set_grad_block(p, 4, entries), DG_OK);
    feed_x(p, m.x, 3);
    ck_assert_int_eq(dg_run(p), DG_OK);
    int64_t len;
    const float *block = dg_plan_grad_block(p, &len);
    ck_assert_int_eq(len, 2 + 5 + 2 + 5);
    ck_assert_mem_eq(block + 0, dg_data(p, m.grads[3]), 2 * sizeof(float));
    ck_assert_mem_eq(block + 2, dg_param_data(m.params[1]), 5 * sizeof(float));
    ck_assert_mem_eq(block + 7, dg_data(p, m.grads[3]), 2 * sizeof(float));
    ck_assert_mem_eq(block + 9, dg_data(p, m.grads[1]), 5 * sizeof(float));
    /* An intermediate, a node not in the plan, NULL, a negative count. */
    dg_node *square = dg_graph_node(m.g, dg_node_index(m.loss) - 1);
    ck_assert_int_eq(dg_plan_set_grad_block(p, 1, &square), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(m.g), "entry 0, node"));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(m.g), "is not an output of this plan"));
    dg_graph_clear_error(m.g);
    ck_assert_int_eq(dg_plan_set_grad_block(p, 1, &m.grads[0]), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(m.g), "not part of this plan"));
    dg_graph_clear_error(m.g);
    ck_assert_int_eq(dg_plan_set_grad_block(p, 2, NULL), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(m.g);
    ck_assert_int_eq(dg_plan_set_grad_block(p, -1, entries), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(m.g);
    ck_assert_int_eq(dg_plan_set_grad_block(NULL, 0, NULL), DG_ERR_INVALID_ARG);
    /* The block set before the errors is still there. */
    ck_assert_ptr_eq(dg_plan_grad_block(p, &len), block);
    dg_plan_free(p);
    dg_graph_free(m.g);
}
END_TEST

/* A gradient that is a view (reshape_as of another gradient) is materialised in the block,
 * and dg_data of it points there. */
START_TEST(grad_block_materialises_a_view)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, 6});
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++)
        dg_param_data(w)[i] = 0.25f * (float)i - 0.5f;
    dg_node *y = dg_tanh(g, dg_mul(g, x, dg_reshape(g, w, 1, (int64_t[]){6})));
    dg_node *loss = dg_sum(g, y, 0, NULL, false), *grad;
    ck_assert_int_eq(dg_grad(g, loss, 1, &w, &grad), DG_OK);
    ck_assert_str_eq(dg_node_op_name(grad), "reshape_as");
    dg_node *outs[2] = {loss, grad};
    dg_plan *p = dg_compile(g, 2, outs);
    dg_plan *ref = dg__compile_ex(g, 2, outs, false);
    ck_assert(aliased(p, grad));
    ck_assert_int_eq(dg_plan_set_grad_block(p, 1, &grad), DG_OK);
    ck_assert(!aliased(p, grad));
    feed_x(p, x, 8);
    feed_x(ref, x, 8);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(dg_run(ref), DG_OK);
    ck_assert_ptr_eq(dg_data(p, grad), dg_plan_grad_block(p, NULL));
    ck_assert_mem_eq(dg_data(p, grad), dg_data(ref, grad), 6 * sizeof(float));
    dg_plan_free(p);
    dg_plan_free(ref);
    dg_graph_free(g);
}
END_TEST

/* The optimizer reads gradients through dg_data, which for block entries is the block: an
 * SGD step from a block plan equals one from a plan without block. */
START_TEST(optimizer_steps_from_the_block)
{
    float after[2][32];
    for (int use_block = 0; use_block < 2; use_block++) {
        struct mlp m;
        build_mlp(&m);
        dg_node *outs[5] = {m.loss, m.grads[0], m.grads[1], m.grads[2], m.grads[3]};
        dg_plan *p = dg_compile(m.g, 5, outs);
        if (use_block)
            ck_assert_int_eq(dg_plan_set_grad_block(p, 4, m.grads), DG_OK);
        dg_optim *opt = dg_optim_new_sgd(4, m.params, m.grads, &DG_SGD_DEFAULTS);
        ck_assert_int_eq(dg_optim_set_clip_norm(opt, 0.1, 2.0), DG_OK);
        feed_x(p, m.x, 5);
        ck_assert_int_eq(dg_run(p), DG_OK);
        ck_assert_int_eq(dg_optim_step(opt, p), DG_OK);
        int k = 0;
        for (int i = 0; i < 4; i++)
            for (int64_t j = 0; j < dg_node_numel(m.params[i]); j++)
                after[use_block][k++] = dg_param_data(m.params[i])[j];
        dg_optim_free(opt);
        dg_plan_free(p);
        dg_graph_free(m.g);
    }
    ck_assert_mem_eq(after[0], after[1], 32 * sizeof(float));
}
END_TEST

/* ---- dg_data pointer validity (what include/dagrad.h promises) ---------------------------- */

START_TEST(data_pointers_are_stable_across_runs)
{
    struct mlp m;
    build_mlp(&m);
    dg_node *outs[3] = {m.loss, m.grads[0], m.grads[3]};
    dg_plan *p = dg_compile(m.g, 3, outs);
    feed_x(p, m.x, 1);
    ck_assert_int_eq(dg_run(p), DG_OK);
    const float *loss = dg_data(p, m.loss), *g0 = dg_data(p, m.grads[0]);
    const float *xin = dg_data(p, m.x), *w = dg_data(p, m.params[0]);
    float first = loss[0];
    /* Another feed and run: same addresses, new contents. */
    feed_x(p, m.x, 2);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_ptr_eq(dg_data(p, m.loss), loss);
    ck_assert_ptr_eq(dg_data(p, m.grads[0]), g0);
    ck_assert_ptr_eq(dg_data(p, m.x), xin);
    ck_assert_ptr_eq(dg_data(p, m.params[0]), w);
    ck_assert_float_ne(loss[0], first);
    /* A batch change: parameters keep their address (the graph owns them); plan-owned values
     * are read again through dg_data and hold the new batch's results. */
    ck_assert_int_eq(dg_plan_set_batch(p, 64), DG_OK);
    ck_assert_ptr_eq(dg_data(p, m.params[0]), dg_param_data(m.params[0]));
    ck_assert_ptr_eq(dg_data(p, m.params[0]), w);
    feed_x(p, m.x, 2);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(dg_plan_numel(p, m.x), 64 * 3);
    const float *loss64 = dg_data(p, m.loss);
    ck_assert_ptr_nonnull(loss64);
    float value64 = loss64[0];
    /* ... and back to the first batch: the first run's loss again, from the same data. */
    ck_assert_int_eq(dg_plan_set_batch(p, 4), DG_OK);
    feed_x(p, m.x, 2);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_float_ne(dg_data(p, m.loss)[0], value64);
    dg_plan_free(p);
    dg_graph_free(m.g);
}
END_TEST

/* What dg_plan_set_block_ready reports: every entry once per run, the moment its value is
 * final (a snapshot taken then equals the block after the run), entries computed in the
 * block in backward order (the last layer first), copied entries after the steps. */
struct ready_log {
    int n, order[8];
    const float *block;
    float snapshot[64];
    int64_t offset[5];
};

static void record_ready(void *user, int entry)
{
    struct ready_log *log = user;
    ck_assert_int_lt(log->n, 8);
    log->order[log->n++] = entry;
    memcpy(log->snapshot + log->offset[entry], log->block + log->offset[entry],
           (size_t)(log->offset[entry + 1] - log->offset[entry]) * sizeof(float));
}

START_TEST(grad_block_ready_hook)
{
    struct mlp m;
    build_mlp(&m);
    dg_node *outs[3] = {m.loss, m.grads[1], m.grads[3]};
    dg_plan *p = dg_compile(m.g, 3, outs);
    dg_node *entries[4] = {m.grads[3], m.params[1], m.grads[3], m.grads[1]};
    ck_assert_int_eq(dg_plan_set_grad_block(p, 4, entries), DG_OK);
    struct ready_log log = {0};
    int64_t len;
    log.block = dg_plan_grad_block(p, &len);
    for (int k = 0; k < 4; k++)
        log.offset[k] = dg_plan_grad_block_offset(p, k);
    log.offset[4] = len;
    ck_assert_int_eq(dg_plan_set_block_ready(p, record_ready, &log), DG_OK);
    for (int run = 0; run < 2; run++) {
        log.n = 0;
        feed_x(p, m.x, 3 + run);
        ck_assert_int_eq(dg_run(p), DG_OK);
        ck_assert_int_eq(log.n, 4);
        int expect[4] = {0, 3, 1, 2}; /* grads[3] (last layer) before grads[1]; then copies */
        for (int k = 0; k < 4; k++)
            ck_assert_int_eq(log.order[k], expect[k]);
        ck_assert_mem_eq(log.snapshot, log.block, (size_t)len * sizeof(float));
    }
    ck_assert_int_eq(dg_plan_set_block_ready(p, NULL, NULL), DG_OK);
    log.n = 0;
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(log.n, 0);
    ck_assert_int_eq(dg_plan_set_block_ready(NULL, record_ready, &log), DG_ERR_INVALID_ARG);
    dg_plan_free(p);
    dg_graph_free(m.g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("views");
    TCase *tc = tcase_create("views");
    tcase_add_test(tc, inplace_after_view_of_live_value);
    tcase_add_test(tc, view_of_view_as_output);
    tcase_add_test(tc, views_of_input_and_parameter);
    tcase_add_test(tc, view_of_output_is_not_overwritten);
    tcase_add_test(tc, views_take_no_arena_memory);
    tcase_add_test(tc, views_after_set_batch);
    tcase_add_test(tc, squeeze_and_unsqueeze_are_views);
    tcase_add_test(tc, grad_block_holds_the_gradients);
    tcase_add_test(tc, grad_block_copies_and_errors);
    tcase_add_test(tc, grad_block_ready_hook);
    tcase_add_test(tc, grad_block_materialises_a_view);
    tcase_add_test(tc, optimizer_steps_from_the_block);
    tcase_add_test(tc, data_pointers_are_stable_across_runs);
    suite_add_tcase(s, tc);
    return dg_test_run(s);
}
