/* Thread settings and bitwise reproducibility for a given thread count. */
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

START_TEST(thread_count_settings)
{
    dg_graph *g = dg_graph_new();
    ck_assert_int_ge(dg_graph_threads(g), 1);
    ck_assert_int_eq(dg_graph_set_threads(g, 3), DG_OK);
    ck_assert_int_eq(dg_graph_threads(g), 3);
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){4});
    dg_node *y = dg_add(g, x, x);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_plan_threads(p), 3);
    ck_assert_int_eq(dg_plan_set_threads(p, 1), DG_OK);
    ck_assert_int_eq(dg_plan_threads(p), 1);
    dg_plan_free(p);
    /* 0 means the default: DG_NUM_THREADS when set. */
    setenv("DG_NUM_THREADS", "2", 1);
    ck_assert_int_eq(dg_graph_set_threads(g, 0), DG_OK);
    ck_assert_int_eq(dg_graph_threads(g), 2);
    setenv("DG_NUM_THREADS", "garbage", 1);
    ck_assert_int_ge(dg_graph_threads(g), 1);
    unsetenv("DG_NUM_THREADS");
    dg_graph_free(g);
}
END_TEST

static void run_with_threads(int threads, const float *data, int64_t n, float *result)
{
    dg_graph *g = dg_graph_new();
    dg_graph_set_threads(g, threads);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){n / 1000, 1000});
    dg_node *b = dg_param(g, "b", 1, (int64_t[]){1000});
    for (int i = 0; i < 1000; i++)
        dg_param_data(b)[i] = (float)i / 1000.0f;
    dg_node *y = dg_div(g, dg_mul(g, dg_add(g, x, b), x), dg_add_scalar(g, b, 1.0f));
    ck_assert_ptr_nonnull(y);
    dg_plan *p = dg_compile(g, 1, &y);
    dg_feed(p, x, data);
    ck_assert_int_eq(dg_run(p), DG_OK);
    memcpy(result, dg_data(p, y), (size_t)n * sizeof *result);
    dg_plan_free(p);
    dg_graph_free(g);
}

START_TEST(same_threads_same_bits)
{
    int64_t n = 200 * 1000;
    float *data = malloc((size_t)n * sizeof *data);
    float *r1 = malloc((size_t)n * sizeof *r1), *r2 = malloc((size_t)n * sizeof *r2);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 3);
    dg_test_fill_uniform(&rng, data, n, -3.0f, 3.0f);
    for (int t = 1; t <= 2; t++) {
        run_with_threads(t, data, n, r1);
        run_with_threads(t, data, n, r2);
        ck_assert_mem_eq(r1, r2, (size_t)n * sizeof *r1);
    }
    /* Elementwise results do not depend on the thread count either. */
    run_with_threads(1, data, n, r1);
    run_with_threads(2, data, n, r2);
    ck_assert_mem_eq(r1, r2, (size_t)n * sizeof *r1);
    free(data);
    free(r1);
    free(r2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_add_test(tc, thread_count_settings);
    tcase_add_test(tc, same_threads_same_bits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
