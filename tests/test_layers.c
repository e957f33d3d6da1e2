/* Layer helpers: dense layers, activations by name, dropout, parameter lists. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

START_TEST(dense_creates_named_parameters)
{
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, 6});
    dg_node *y = dg_dense(g, x, 3, DG_ACT_RELU, "fc", &rng);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(dg_node_dim(y, 0), 4);
    ck_assert_int_eq(dg_node_dim(y, 1), 3);
    dg_node *w = dg_graph_find(g, "fc.weight"), *b = dg_graph_find(g, "fc.bias");
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(dg_node_dim(w, 0), 6);
    ck_assert_int_eq(dg_node_dim(w, 1), 3);
    /* He-uniform bound sqrt(6 / fan_in) = 1; bias starts at zero. */
    bool any_nonzero = false;
    for (int i = 0; i < 18; i++) {
        ck_assert_float_le(fabsf(dg_param_data(w)[i]), 1.0f);
        any_nonzero = any_nonzero || dg_param_data(w)[i] != 0.0f;
    }
    ck_assert(any_nonzero);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq_tol(dg_param_data(b)[i], 0.0f, 1e-12f);
    dg_node *params[4];
    ck_assert_int_eq(dg_graph_params(g, 4, params), 2);
    ck_assert_ptr_eq(params[0], w);
    ck_assert_int_eq(dg_graph_params(g, 0, NULL), 2);
    /* The output is relu(x @ w + b). */
    dg_plan *p = dg_compile(g, 1, &y);
    float xs[24];
    for (int i = 0; i < 24; i++)
        xs[i] = (float)(i % 5) - 2.0f;
    dg_feed(p, x, xs);
    ck_assert_int_eq(dg_run(p), DG_OK);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3; c++) {
            float acc = 0;
            for (int k = 0; k < 6; k++)
                acc += xs[r * 6 + k] * dg_param_data(w)[k * 3 + c];
            ck_assert_float_eq_tol(dg_data(p, y)[r * 3 + c], acc > 0 ? acc : 0, 1e-5f);
        }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(activations_by_name)
{
    dg_activation act;
    ck_assert_int_eq(dg_activation_from_name("gelu", &act), DG_OK);
    ck_assert_int_eq(act, DG_ACT_GELU);
    ck_assert_int_eq(dg_activation_from_name("linear", &act), DG_OK);
    ck_assert_int_eq(act, DG_ACT_NONE);
    ck_assert_int_eq(dg_activation_from_name("swish", &act), DG_ERR_NOT_FOUND);
    ck_assert_int_eq(dg_activation_from_name(NULL, &act), DG_ERR_NOT_FOUND);
    for (int i = 0; i < DG_ACT_COUNT; i++) {
        ck_assert_int_eq(dg_activation_from_name(dg_activation_name((dg_activation)i), &act),
                         DG_OK);
        ck_assert_int_eq(act, i);
    }
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 3});
    ck_assert_ptr_null(dg_dense_named(g, x, 4, "swish", "fc", NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "unknown activation 'swish'"));
    dg_graph_clear_error(g);
    ck_assert_ptr_nonnull(dg_dense_named(g, x, 4, "softmax", "fc", NULL));
    ck_assert_ptr_null(dg_dense(g, x, 0, DG_ACT_NONE, "fc0", NULL));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "dense 'fc0': 0 units"));
    dg_graph_clear_error(g);
    dg_node *v = dg_input(g, "v", 1, (int64_t[]){3});
    ck_assert_ptr_null(dg_dense(g, v, 2, DG_ACT_NONE, "fc1", NULL));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_dense(g, x, 2, DG_ACT_NONE, "fc", NULL)); /* name taken */
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    dg_graph_free(g);
}
END_TEST

enum { DN = 20000 };

/* Runs dropout(x) and its gradient for sum(dropout(x) * 1) at the given key. */
static void run_dropout(float p_drop, int threads, int32_t step, bool training, float *out,
                        float *grad)
{
    dg_graph *g = dg_graph_new();
    dg_graph_set_threads(g, threads);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){DN / 100, 100});
    dg_node *key = dg_dropout_key(g);
    ck_assert_ptr_eq(dg_dropout_key(g), key); /* found, not created twice */
    dg_node *y = dg_dropout(g, x, key, p_drop);
    dg_node *loss = dg_sum(g, y, 0, NULL, false);
    dg_node *gx;
    ck_assert_int_eq(dg_grad(g, loss, 1, &x, &gx), DG_OK);
    dg_plan *p = dg_compile(g, 2, (dg_node *[]){y, gx});
    float *xs = malloc(DN * sizeof *xs);
    for (int i = 0; i < DN; i++)
        xs[i] = 1.0f + (float)(i % 7);
    dg_feed(p, x, xs);
    ck_assert_int_eq(dg_dropout_feed_key(p, 1234, step, training), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    memcpy(out, dg_data(p, y), DN * sizeof *out);
    memcpy(grad, dg_data(p, gx), DN * sizeof *grad);
    free(xs);
    dg_plan_free(p);
    dg_graph_free(g);
}

START_TEST(dropout_masks_scale_and_backward)
{
    float *out = malloc(DN * sizeof *out), *grad = malloc(DN * sizeof *grad);
    float *out2 = malloc(DN * sizeof *out2), *grad2 = malloc(DN * sizeof *grad2);
    run_dropout(0.25f, 1, 0, true, out, grad);
    int zeros = 0;
    for (int i = 0; i < DN; i++) {
        float x = 1.0f + (float)(i % 7);
        if (out[i] == 0.0f) {
            zeros++;
            ck_assert_float_eq_tol(grad[i], 0.0f, 1e-12f); /* the same mask in backward */
        } else {
            ck_assert_float_eq_tol(out[i], x / 0.75f, 1e-5f);
            ck_assert_float_eq_tol(grad[i], 1.0f / 0.75f, 1e-6f);
        }
    }
    /* 25% +- 5 sigma of a binomial(20000, 0.25). */
    ck_assert_int_gt(zeros, 5000 - 306);
    ck_assert_int_lt(zeros, 5000 + 306);
    /* The mask is a function of the key, not of the thread count. */
    run_dropout(0.25f, 2, 0, true, out2, grad2);
    ck_assert_mem_eq(out, out2, DN * sizeof *out);
    /* Another step draws another mask. */
    run_dropout(0.25f, 1, 1, true, out2, grad2);
    ck_assert(memcmp(out, out2, DN * sizeof *out) != 0);
    /* Evaluation mode is the identity. */
    run_dropout(0.25f, 1, 0, false, out2, grad2);
    for (int i = 0; i < DN; i++) {
        ck_assert_float_eq_tol(out2[i], 1.0f + (float)(i % 7), 1e-6f);
        ck_assert_float_eq_tol(grad2[i], 1.0f, 1e-6f);
    }
    /* p = 1 drops everything; p = 0 nothing. */
    run_dropout(1.0f, 1, 0, true, out2, grad2);
    for (int i = 0; i < DN; i++)
        ck_assert_float_eq_tol(out2[i], 0.0f, 1e-12f);
    run_dropout(0.0f, 1, 0, true, out2, grad2);
    ck_assert_float_eq_tol(out2[DN - 1], 1.0f + (float)((DN - 1) % 7), 1e-6f);
    free(out);
    free(grad);
    free(out2);
    free(grad2);
}
END_TEST

START_TEST(dropout_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){4});
    dg_node *key = dg_dropout_key(g);
    ck_assert_ptr_null(dg_dropout(g, x, key, 1.5f));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "dropout: p = 1.5 is outside [0, 1]"));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_dropout(g, x, x, 0.5f));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "dropout: key must be int32 [3]"));
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_dropout(g, NULL, key, 0.5f));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "dropout: input 1 is NULL"));
    dg_graph_clear_error(g);
    /* A plan without dropout accepts the key call as a no-op. */
    dg_node *y = dg_add(g, x, x);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_dropout_feed_key(p, 1, 2, true), DG_OK);
    ck_assert_int_eq(dg_dropout_feed_key(NULL, 1, 2, true), DG_ERR_INVALID_ARG);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* The dropout key is a static input: changing the batch leaves it alone. */
START_TEST(dropout_follows_batch_changes)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){64, 8});
    dg_node *key = dg_dropout_key(g);
    dg_node *y = dg_dropout(g, x, key, 0.5f);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_plan_set_batch(p, 3), DG_OK);
    ck_assert_int_eq(dg_plan_dim(p, key, 0), 3); /* unchanged: [3] is {seed, step, mode} */
    ck_assert_int_eq(dg_plan_dim(p, x, 0), 3);
    float xs[24];
    for (int i = 0; i < 24; i++)
        xs[i] = 1.0f;
    dg_feed(p, x, xs);
    ck_assert_int_eq(dg_dropout_feed_key(p, 9, 1, true), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    for (int i = 0; i < 24; i++)
        ck_assert(dg_data(p, y)[i] == 0.0f || fabsf(dg_data(p, y)[i] - 2.0f) < 1e-6f);
    ck_assert_int_eq(dg_plan_set_batch(p, 100), DG_OK);
    ck_assert_int_eq(dg_plan_dim(p, key, 0), 3);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("layers");
    tcase_add_test(tc, dense_creates_named_parameters);
    tcase_add_test(tc, activations_by_name);
    tcase_add_test(tc, dropout_masks_scale_and_backward);
    tcase_add_test(tc, dropout_errors);
    tcase_add_test(tc, dropout_follows_batch_changes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
