/* Regressions of issue 9 ("what a hostile caller ran into"): each test failed before its fix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

#define ck_assert_error(g, status, text)                                                   \
    do {                                                                                    \
        ck_assert_int_eq(dg_graph_status(g), (status));                                     \
        ck_assert_msg(strstr(dg_graph_error(g), (text)) != NULL,                            \
                      "message '%s' lacks '%s'", dg_graph_error(g), (text));               \
    } while (0)

/* A user's own int32 input called "dropout_key" of another shape: dg_dropout_key refuses it
 * and dg_dropout_feed_key never feeds it 3 values (it read past a 3-int stack buffer). */
START_TEST(dropout_key_name_taken_by_another_input)
{
    dg_graph *g = dg_graph_new();
    dg_node *key = dg_input_typed(g, DG_DROPOUT_KEY_NAME, DG_I32, 1, (int64_t[]){64});
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){4});
    ck_assert_ptr_null(dg_dropout_key(g));
    ck_assert_error(g, DG_ERR_SHAPE, "not an int32 [3] input");
    dg_graph_clear_error(g);

    /* A plan holding the user's [64] input: feeding the key is refused, nothing is read. */
    dg_node *y = dg_add(g, x, x);
    dg_node *outs[2] = {y, key};
    dg_plan *p = dg_compile(g, 2, outs);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(dg_dropout_feed_key(p, 1, 2, true), DG_ERR_SHAPE);
    ck_assert_error(g, DG_ERR_SHAPE, "'dropout_key'");
    dg_plan_free(p);
    dg_graph_free(g);

    /* A float32 key is a dtype error, as docs/api.md says. */
    g = dg_graph_new();
    ck_assert_ptr_nonnull(dg_input(g, DG_DROPOUT_KEY_NAME, 1, (int64_t[]){3}));
    ck_assert_ptr_null(dg_dropout_key(g));
    ck_assert_error(g, DG_ERR_DTYPE, "not an int32 [3] input");
    dg_graph_clear_error(g);
    x = dg_input(g, "x", 1, (int64_t[]){4});
    dg_node *fkey = dg_input(g, "fkey", 1, (int64_t[]){3});
    ck_assert_ptr_null(dg_dropout(g, x, fkey, 0.5f));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_DTYPE);
    dg_graph_free(g);
}
END_TEST

/* dg_fit through the same path: labels that happen to be called "dropout_key". */
START_TEST(fit_with_labels_named_dropout_key)
{
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, 2});
    dg_node *y = dg_input_typed(g, DG_DROPOUT_KEY_NAME, DG_I32, 1, (int64_t[]){4});
    dg_node *logits = dg_dense(g, x, 3, DG_ACT_NONE, "fc", &rng);
    dg_node *loss = dg_softmax_cross_entropy(g, logits, y);
    dg_node *params[2], *grads[2];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(g, loss, 2, params, grads, &n), DG_OK);
    dg_sgd_config sgd = DG_SGD_DEFAULTS;
    dg_optim *opt = dg_optim_new_sgd(n, params, grads, &sgd);
    float xs[8 * 2] = {0};
    int32_t ys[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    dg_fit_data data = {.x = xs, .y = ys, .n = 8};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.verbose = 0;
    cfg.batch_size = 4;
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = logits};
    ck_assert_int_eq(dg_fit(&model, opt, &data, NULL, &cfg, NULL), DG_ERR_SHAPE);
    ck_assert_error(g, DG_ERR_SHAPE, "is not an int32 [3] input");
    dg_optim_free(opt);
    dg_graph_free(g);
}
END_TEST

/* [2^32, 2^32, -1] overflowed a signed product (UBSan) before the error. */
START_TEST(reshape_product_overflow)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){16});
    const int64_t big = (int64_t)1 << 32;
    ck_assert_ptr_null(dg_reshape(g, x, 3, (int64_t[]){big, big, -1}));
    ck_assert_error(g, DG_ERR_SHAPE, "more than 2^40 elements");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_reshape(g, x, 4, (int64_t[]){big, big, big, big}));
    ck_assert_error(g, DG_ERR_SHAPE, "reshape: cannot reshape [16]");
    dg_graph_clear_error(g);
    ck_assert_ptr_nonnull(dg_reshape(g, x, 2, (int64_t[]){4, -1}));
    dg_graph_free(g);
}
END_TEST

/* The element limit is "at most 2^40" in code, messages and docs alike. */
START_TEST(element_limit_is_at_most_2_pow_40)
{
    dg_graph *g = dg_graph_new();
    const int64_t half = (int64_t)1 << 20;
    ck_assert_ptr_nonnull(dg_input(g, "x", 2, (int64_t[]){half, half}));
    ck_assert_ptr_null(dg_input(g, "y", 3, (int64_t[]){half, half, 2}));
    ck_assert_error(g, DG_ERR_SHAPE, "at most 2^40 elements");
    dg_graph_free(g);
}
END_TEST

/* A NULL path zeroes *out as the header promises (dg_dataset_free after it freed garbage). */
START_TEST(idx_null_path_zeroes_output)
{
    dg_dataset data;
    memset(&data, 0x5a, sizeof data);
    ck_assert_int_eq(dg_idx_load_images(NULL, 1.0f, &data), DG_ERR_INVALID_ARG);
    ck_assert_ptr_null(data.images);
    ck_assert_ptr_null(data.labels);
    ck_assert_int_eq(data.count, 0);
    dg_dataset_free(&data);
    memset(&data, 0x5a, sizeof data);
    ck_assert_int_eq(dg_fashion_mnist_load("/nonexistent-dagrad-dir", 1.0f, &data, NULL),
                     DG_ERR_IO);
    ck_assert_ptr_null(data.images);
    ck_assert_ptr_nonnull(strstr(dg_dataset_error(&data), "/nonexistent-dagrad-dir"));
    dg_dataset_free(&data);
}
END_TEST

struct tiny_model {
    dg_graph *g;
    dg_model model;
    dg_optim *opt;
};

/* x [B,2] -> dense 1 -> loss; `scalar_loss` false gives a per-example loss [B] (or [B,1]). */
static void tiny_model(struct tiny_model *t, int64_t batch, bool scalar_loss)
{
    dg_rng rng;
    dg_rng_seed(&rng, 3);
    t->g = dg_graph_new();
    dg_node *x = dg_input(t->g, "x", 2, (int64_t[]){batch, 2});
    dg_node *y = dg_input(t->g, "y", 2, (int64_t[]){batch, 1});
    dg_node *out = dg_dense(t->g, x, 1, DG_ACT_NONE, "fc", &rng);
    dg_node *err = dg_square(t->g, dg_sub(t->g, out, y));
    dg_node *loss = scalar_loss ? dg_mean(t->g, err, 0, NULL, false) : err;
    dg_node *params[2], *grads[2];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(t->g, dg_mean(t->g, err, 0, NULL, false), 2, params, grads,
                                    &n),
                     DG_OK);
    dg_sgd_config cfg = DG_SGD_DEFAULTS;
    t->opt = dg_optim_new_sgd(n, params, grads, &cfg);
    t->model = (dg_model){.graph = t->g, .x = x, .y = y, .loss = loss};
}

/* dg_fit and dg_evaluate both give the loss-shape error for a non-scalar loss. */
START_TEST(fit_rejects_non_scalar_loss)
{
    float xs[8 * 2] = {0}, ys[8] = {0};
    dg_fit_data data = {.x = xs, .y = ys, .n = 8};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.verbose = 0;
    cfg.batch_size = 4;
    struct tiny_model t;
    tiny_model(&t, 4, false);
    ck_assert_int_eq(dg_fit(&t.model, t.opt, &data, NULL, &cfg, NULL), DG_ERR_SHAPE);
    ck_assert_error(t.g, DG_ERR_SHAPE, "fit: model.loss must be a float32 scalar");
    dg_graph_clear_error(t.g);
    dg_epoch_stats stats;
    ck_assert_int_eq(dg_evaluate(&t.model, &data, &cfg, &stats), DG_ERR_SHAPE);
    ck_assert_error(t.g, DG_ERR_SHAPE, "evaluate: model.loss must be a float32 scalar");
    dg_optim_free(t.opt);
    dg_graph_free(t.g);

    /* Built at batch 1, a per-example loss looks scalar; the run at batch 4 catches it. */
    tiny_model(&t, 1, false);
    ck_assert_int_eq(dg_fit(&t.model, t.opt, &data, NULL, &cfg, NULL), DG_ERR_SHAPE);
    ck_assert_error(t.g, DG_ERR_SHAPE, "4 values at batch 4");
    dg_graph_clear_error(t.g);
    ck_assert_int_eq(dg_evaluate(&t.model, &data, &cfg, NULL), DG_ERR_SHAPE);
    dg_optim_free(t.opt);
    dg_graph_free(t.g);

    tiny_model(&t, 4, true);
    ck_assert_int_eq(dg_fit(&t.model, t.opt, &data, NULL, &cfg, NULL), DG_OK);
    ck_assert_int_eq(dg_evaluate(&t.model, &data, &cfg, NULL), DG_OK);
    dg_optim_free(t.opt);
    dg_graph_free(t.g);
}
END_TEST

START_TEST(set_error_corner_cases)
{
    dg_graph *g = dg_graph_new();
    const char *no_format = NULL;
    dg_graph_set_error(g, DG_ERR_IO, no_format, 0); /* crashed */
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_IO);
    ck_assert_str_eq(dg_graph_error(g), dg_status_str(DG_ERR_IO));
    dg_graph_clear_error(g);
    dg_graph_set_error(g, DG_OK, "all is well"); /* left a message with an OK status */
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    ck_assert_str_eq(dg_graph_error(g), "");
    dg_graph_free(g);
}
END_TEST

START_TEST(optim_threads_capped_like_the_graph)
{
    dg_graph *g = dg_graph_new();
    dg_node *w = dg_param(g, "w", 1, (int64_t[]){4});
    dg_node *loss = dg_sum(g, dg_square(g, w), 0, NULL, false);
    dg_node *grad = NULL;
    ck_assert_int_eq(dg_grad(g, loss, 1, &w, &grad), DG_OK);
    dg_sgd_config cfg = DG_SGD_DEFAULTS;
    dg_optim *opt = dg_optim_new_sgd(1, &w, &grad, &cfg);
    ck_assert_int_eq(dg_optim_set_threads(opt, 10000), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_optim_error(opt), "0..1024"));
    ck_assert_int_eq(dg_graph_set_threads(g, 10000), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_optim_set_threads(opt, 1024), DG_OK);
    dg_optim_free(opt);
    dg_graph_free(g);
}
END_TEST

/* Plan-shape errors say what docs/api.md says. */
START_TEST(plan_shape_errors_match_docs)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){3, 4});
    dg_node *y = dg_relu(g, x);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_ptr_nonnull(p);
    /* Too large a batch is a shape error naming the input (it was an invalid argument). */
    ck_assert_int_eq(dg_plan_set_batch(p, ((int64_t)1 << 40) + 1), DG_ERR_SHAPE);
    ck_assert_error(g, DG_ERR_SHAPE, "set_batch: input 'x'");
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_plan_set_batch(p, 0), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    /* A NULL shape is an invalid argument, not "has 2 dimensions, 2 given". */
    ck_assert_int_eq(dg_plan_set_input_shape(p, x, 2, NULL), DG_ERR_INVALID_ARG);
    ck_assert_error(g, DG_ERR_INVALID_ARG, "set_input_shape: input 'x': shape is NULL");
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_plan_set_input_shape(p, x, 1, (int64_t[]){3}), DG_ERR_SHAPE);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Messages name nodes by name as well as index. */
START_TEST(messages_name_nodes)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){3});
    dg_node *unused = dg_input(g, "unused", 1, (int64_t[]){3});
    dg_node *y = dg_relu(g, x);
    dg_node *h = dg_exp(g, x);
    dg_name(h, "hidden");
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_feed(p, unused, (float[]){1, 2, 3}), DG_ERR_INVALID_ARG);
    ck_assert_error(g, DG_ERR_INVALID_ARG, "feed: node 1 'unused' (input) is not part of this "
                                           "plan");
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_feed(p, y, (float[]){1, 2, 3}), DG_ERR_INVALID_ARG);
    ck_assert_error(g, DG_ERR_INVALID_ARG, "node 2 (relu) is not an input");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_data(p, h));
    ck_assert_error(g, DG_ERR_INVALID_ARG, "node 3 'hidden' (exp)");
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

static Suite *hardening_suite(void)
{
    Suite *s = suite_create("hardening");
    TCase *tc = tcase_create("bugs");
    tcase_add_test(tc, dropout_key_name_taken_by_another_input);
    tcase_add_test(tc, fit_with_labels_named_dropout_key);
    tcase_add_test(tc, reshape_product_overflow);
    tcase_add_test(tc, element_limit_is_at_most_2_pow_40);
    tcase_add_test(tc, idx_null_path_zeroes_output);
    tcase_add_test(tc, fit_rejects_non_scalar_loss);
    tcase_add_test(tc, set_error_corner_cases);
    tcase_add_test(tc, optim_threads_capped_like_the_graph);
    tcase_add_test(tc, plan_shape_errors_match_docs);
    tcase_add_test(tc, messages_name_nodes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(hardening_suite());
}
