/*
 * Sequence ops beyond the op table (tests/cases_seq.c covers forward and gradients against
 * PyTorch): embedding's run-time index check and the thread-count determinism of its
 * scatter-add gradient.
 */
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

/* A lookup of [n] indices in a [v, d] table, with the table's gradient as a second output. */
struct emb_graph {
    dg_graph *g;
    dg_node *table, *indices, *out, *grad;
    dg_plan *plan;
};

static void emb_build(struct emb_graph *e, int64_t v, int64_t d, int64_t n, int threads)
{
    e->g = dg_graph_new();
    dg_graph_set_threads(e->g, threads);
    e->table = dg_param(e->g, "table", 2, (int64_t[]){v, d});
    e->indices = dg_input_typed(e->g, "idx", DG_I32, 1, (int64_t[]){n});
    e->out = dg_embedding(e->g, e->table, e->indices);
    ck_assert_ptr_nonnull(e->out);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    dg_test_fill_uniform(&rng, dg_param_data(e->table), v * d, -1, 1);
    /* loss = sum(tanh(out)^2): a different upstream gradient for every element */
    dg_node *loss = dg_sum(e->g, dg_square(e->g, dg_tanh(e->g, e->out)), 0, NULL, false);
    ck_assert_int_eq(dg_grad(e->g, loss, 1, &e->table, &e->grad), DG_OK);
    e->plan = dg_compile(e->g, 2, (dg_node *[]){e->out, e->grad});
    ck_assert_ptr_nonnull(e->plan);
}

static void emb_free(struct emb_graph *e)
{
    dg_plan_free(e->plan);
    dg_graph_free(e->g);
}

START_TEST(embedding_index_out_of_range_is_a_run_error)
{
    struct emb_graph e;
    emb_build(&e, 10, 4, 6, 1);
    int32_t good[6] = {0, 9, 3, 3, 1, 2};
    ck_assert_int_eq(dg_feed(e.plan, e.indices, good), DG_OK);
    ck_assert_int_eq(dg_run(e.plan), DG_OK);
    int32_t bad[6] = {0, 9, 3, 12, 1, -1};
    ck_assert_int_eq(dg_feed(e.plan, e.indices, bad), DG_OK);
    ck_assert_int_eq(dg_run(e.plan), DG_ERR_INVALID_ARG);
    const char *msg = dg_graph_error(e.g);
    ck_assert_msg(strstr(msg, "embedding: index 12 at position 3 is outside [0, 10)") != NULL,
                  "message: %s", msg);
    ck_assert_msg(strstr(msg, "(embedding)") != NULL, "the node is named: %s", msg);
    /* Fixed data runs again. */
    dg_graph_clear_error(e.g);
    ck_assert_int_eq(dg_feed(e.plan, e.indices, good), DG_OK);
    ck_assert_int_eq(dg_run(e.plan), DG_OK);
    ck_assert_float_eq_tol(dg_data(e.plan, e.out)[4], dg_param_data(e.table)[36], 1e-7f);
    emb_free(&e);
}
END_TEST

/* The gradient step alone (the forward pruned away) also checks its indices. */
START_TEST(embedding_grad_checks_indices)
{
    dg_graph *g = dg_graph_new();
    dg_node *table = dg_param(g, "table", 2, (int64_t[]){3, 2});
    dg_node *idx = dg_input_typed(g, "idx", DG_I32, 1, (int64_t[]){2});
    dg_node *loss = dg_sum(g, dg_embedding(g, table, idx), 0, NULL, false), *grad;
    ck_assert_int_eq(dg_grad(g, loss, 1, &table, &grad), DG_OK);
    dg_plan *p = dg_compile(g, 1, &grad);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(dg_feed(p, idx, (int32_t[]){1, 3}), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_ERR_INVALID_ARG);
    ck_assert_msg(strstr(dg_graph_error(g), "index 3 at position 1 is outside [0, 3)") != NULL,
                  "message: %s", dg_graph_error(g));
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(embedding_shape_errors)
{
    dg_graph *g = dg_graph_new();
    dg_node *table = dg_param(g, "table", 2, (int64_t[]){3, 2});
    dg_node *fidx = dg_input(g, "f", 1, (int64_t[]){2});
    ck_assert_ptr_null(dg_embedding(g, table, fidx));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_DTYPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "embedding: indices must be int32"));
    dg_graph_clear_error(g);
    dg_node *idx = dg_input_typed(g, "i", DG_I32, 1, (int64_t[]){2});
    dg_node *flat = dg_param(g, "flat", 1, (int64_t[]){3});
    ck_assert_ptr_null(dg_embedding(g, flat, idx));
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "embedding: table must be float32 [V,D]"));
    dg_graph_free(g);
}
END_TEST

/* Many repeats of few rows, large enough to split between threads: the table's gradient has
 * the same bits at 1, 2, 3 and 4 threads. */
START_TEST(embedding_grad_same_bits_any_threads)
{
    const int64_t v = 97, d = 96, n = 4096;
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 3);
    for (int64_t i = 0; i < n; i++)
        idx[i] = (int32_t)(dg_test_rng_next(&rng) % 13 * 7 % v);
    float *first = malloc((size_t)(v * d) * sizeof *first);
    for (int threads = 1; threads <= 4; threads++) {
        struct emb_graph e;
        emb_build(&e, v, d, n, threads);
        ck_assert_int_eq(dg_plan_threads(e.plan), threads);
        ck_assert_int_eq(dg_feed(e.plan, e.indices, idx), DG_OK);
        ck_assert_int_eq(dg_run(e.plan), DG_OK);
        const float *grad = dg_data(e.plan, e.grad);
        if (threads == 1)
            memcpy(first, grad, (size_t)(v * d) * sizeof *first);
        else
            ck_assert_msg(memcmp(first, grad, (size_t)(v * d) * sizeof *first) == 0,
                          "embedding gradient differs at %d threads", threads);
        emb_free(&e);
    }
    /* and it is not trivially zero */
    double total = 0;
    for (int64_t i = 0; i < v * d; i++)
        total += first[i] * first[i];
    ck_assert_double_gt(total, 1.0);
    free(first);
    free(idx);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("seq");
    TCase *tc = tcase_create("embedding");
    tcase_add_test(tc, embedding_index_out_of_range_is_a_run_error);
    tcase_add_test(tc, embedding_grad_checks_indices);
    tcase_add_test(tc, embedding_shape_errors);
    tcase_add_test(tc, embedding_grad_same_bits_any_threads);
    suite_add_tcase(suite, tc);
    return dg_test_run(suite);
}
