/* Every misuse gives a status and a message naming the op and shapes; nothing aborts. */
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

#define ck_assert_error(g, status, text)                                                   \
    do {                                                                                    \
        ck_assert_int_eq(dg_graph_status(g), (status));                                     \
        ck_assert_msg(strstr(dg_graph_error(g), (text)) != NULL,                            \
                      "message '%s' lacks '%s'", dg_graph_error(g), (text));               \
    } while (0)

START_TEST(null_graph_is_harmless)
{
    ck_assert_ptr_null(dg_input(NULL, "x", 1, (int64_t[]){1}));
    ck_assert_ptr_null(dg_param(NULL, "x", 1, (int64_t[]){1}));
    ck_assert_ptr_null(dg_scalar(NULL, 1.0f));
    ck_assert_ptr_null(dg_add(NULL, NULL, NULL));
    ck_assert_ptr_null(dg_compile(NULL, 0, NULL));
    ck_assert_int_eq(dg_graph_status(NULL), DG_ERR_INVALID_ARG);
    ck_assert_str_eq(dg_graph_error(NULL), "graph is NULL");
    ck_assert_int_eq(dg_run(NULL), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_feed(NULL, NULL, NULL), DG_ERR_INVALID_ARG);
    ck_assert_ptr_null(dg_data(NULL, NULL));
    ck_assert_int_eq(dg_graph_dump_dot(NULL, stdout), DG_ERR_INVALID_ARG);
    dg_graph_free(NULL);
    dg_plan_free(NULL);
    dg_graph_clear_error(NULL);
}
END_TEST

START_TEST(bad_leaves)
{
    dg_graph *g = dg_graph_new();
    ck_assert_ptr_null(dg_input(g, NULL, 1, (int64_t[]){3}));
    ck_assert_error(g, DG_ERR_INVALID_ARG, "input: name is NULL");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_input(g, "x", 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}));
    ck_assert_error(g, DG_ERR_INVALID_ARG, "9 dimensions");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_param(g, "w", 2, (int64_t[]){3, 0}));
    ck_assert_error(g, DG_ERR_SHAPE, "param 'w': dimension 1 is 0");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_param(g, "w", 2, (int64_t[]){3, -4}));
    ck_assert_error(g, DG_ERR_SHAPE, "dimension 1 is -4");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_input(g, "x", 2, NULL));
    ck_assert_error(g, DG_ERR_INVALID_ARG, "shape is NULL");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_input_typed(g, "x", (dg_dtype)7, 1, (int64_t[]){2}));
    ck_assert_error(g, DG_ERR_DTYPE, "unknown dtype");
    dg_graph_clear_error(g);
    ck_assert_ptr_nonnull(dg_input(g, "x", 1, (int64_t[]){2}));
    ck_assert_ptr_null(dg_param(g, "x", 1, (int64_t[]){2}));
    ck_assert_error(g, DG_ERR_INVALID_ARG, "name 'x' is already used");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_constant(g, 1, (int64_t[]){2}, NULL));
    ck_assert_error(g, DG_ERR_INVALID_ARG, "constant: data is NULL");
    dg_graph_free(g);
}
END_TEST

START_TEST(allocation_failure_is_reported)
{
    dg_graph *g = dg_graph_new();
    /* 2^39 floats (2 TiB): under the shape limit, far over any machine's memory. */
    ck_assert_ptr_null(dg_param(g, "huge", 2, (int64_t[]){(int64_t)1 << 20, (int64_t)1 << 19}));
    ck_assert_error(g, DG_ERR_NOMEM, "param 'huge': out of memory");
    dg_graph_clear_error(g);
    /* A plan whose arena cannot be allocated fails to compile, cleanly. */
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){(int64_t)1 << 20, (int64_t)1 << 19});
    dg_node *y = dg_add(g, x, x);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_null(dg_compile(g, 1, &y));
    ck_assert_error(g, DG_ERR_NOMEM, "out of memory");
    dg_graph_free(g);
}
END_TEST

START_TEST(shape_errors_name_op_and_shapes)
{
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 2, (int64_t[]){128, 784});
    dg_node *b = dg_input(g, "b", 2, (int64_t[]){256, 128});
    ck_assert_ptr_null(dg_add(g, a, b));
    ck_assert_error(g, DG_ERR_SHAPE, "add: shapes [128,784] and [256,128] do not broadcast");
    dg_graph_clear_error(g);
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 1, (int64_t[]){784});
    ck_assert_ptr_null(dg_mul(g, a, labels));
    ck_assert_error(g, DG_ERR_DTYPE, "mul: operands must be float32");
    dg_graph_free(g);
}
END_TEST

START_TEST(first_error_sticks_and_null_passes_through)
{
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 1, (int64_t[]){3});
    dg_node *b = dg_input(g, "b", 1, (int64_t[]){4});
    /* The chain fails at the first add; later builders pass NULL through silently. */
    dg_node *out = dg_mul(g, dg_add(g, a, b), dg_sub(g, a, a));
    ck_assert_ptr_null(out);
    ck_assert_error(g, DG_ERR_SHAPE, "add: shapes [3] and [4]");
    ck_assert_ptr_null(dg_sub(g, a, a)); /* nothing is built while an error is pending */
    ck_assert_ptr_null(dg_compile(g, 1, &a));
    ck_assert_error(g, DG_ERR_SHAPE, "add: shapes [3] and [4]");
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    ck_assert_str_eq(dg_graph_error(g), "");
    /* Without a pending error, a NULL input is reported. */
    ck_assert_ptr_null(dg_add(g, a, NULL));
    ck_assert_error(g, DG_ERR_INVALID_ARG, "add: input 2 is NULL");
    dg_graph_free(g);
}
END_TEST

START_TEST(nodes_of_another_graph)
{
    dg_graph *g1 = dg_graph_new(), *g2 = dg_graph_new();
    dg_node *x1 = dg_input(g1, "x", 1, (int64_t[]){3});
    dg_node *x2 = dg_input(g2, "x", 1, (int64_t[]){3});
    ck_assert_ptr_null(dg_add(g1, x1, x2));
    ck_assert_error(g1, DG_ERR_FOREIGN_NODE, "add: input 2, node 0 'x' (input), belongs to another graph");
    dg_graph_clear_error(g1);
    ck_assert_ptr_null(dg_compile(g1, 1, &x2));
    ck_assert_error(g1, DG_ERR_FOREIGN_NODE, "compile: output 1 belongs to another graph");
    dg_graph_clear_error(g1);
    dg_node *y1 = dg_add(g1, x1, x1);
    dg_plan *p = dg_compile(g1, 1, &y1);
    ck_assert_int_eq(dg_feed(p, x2, (float[]){1, 2, 3}), DG_ERR_FOREIGN_NODE);
    ck_assert_ptr_null(dg_data(p, x2));
    dg_plan_free(p);
    dg_graph_free(g1);
    dg_graph_free(g2);
}
END_TEST

START_TEST(compile_and_run_misuse)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){3});
    dg_node *y = dg_mul(g, x, x);
    ck_assert_ptr_null(dg_compile(g, 0, &y));
    ck_assert_error(g, DG_ERR_INVALID_ARG, "compile: 0 outputs");
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_compile(g, 1, (dg_node *[]){NULL}));
    ck_assert_error(g, DG_ERR_INVALID_ARG, "compile: output 1 is NULL");
    dg_graph_clear_error(g);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_run(p), DG_ERR_STATE);
    ck_assert_error(g, DG_ERR_STATE, "run: input 'x' was not fed");
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_feed(p, x, NULL), DG_ERR_INVALID_ARG);
    ck_assert_error(g, DG_ERR_INVALID_ARG, "feed: data for input 'x' is NULL");
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_feed(p, y, (float[]){1, 2, 3}), DG_ERR_INVALID_ARG);
    ck_assert_error(g, DG_ERR_INVALID_ARG, "not an input");
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_feed_n(p, x, (float[]){1, 2}, 2), DG_ERR_SHAPE);
    ck_assert_error(g, DG_ERR_SHAPE, "feed: input 'x' [3] takes 3 values, 2 given");
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_feed_n(p, x, (float[]){1, 2, 3}, 3), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(dg_plan_set_threads(p, -1), DG_ERR_INVALID_ARG);
    ck_assert_error(g, DG_ERR_INVALID_ARG, "-1 threads");
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_graph_set_threads(g, 5000), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_graph_dump_dot(g, NULL), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_graph_dump_dot_file(g, "/nonexistent-dir/g.dot"), DG_ERR_IO);
    ck_assert_error(g, DG_ERR_IO, "/nonexistent-dir/g.dot");
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, null_graph_is_harmless);
    tcase_add_test(tc, bad_leaves);
    tcase_add_test(tc, allocation_failure_is_reported);
    tcase_add_test(tc, shape_errors_name_op_and_shapes);
    tcase_add_test(tc, first_error_sticks_and_null_passes_through);
    tcase_add_test(tc, nodes_of_another_graph);
    tcase_add_test(tc, compile_and_run_misuse);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
