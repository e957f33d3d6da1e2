/* Graph building: leaves, node accessors, shape inference, lookup by name. */
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

START_TEST(leaves_have_their_shapes_and_kinds)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){128, 784});
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){784, 256});
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 1, (int64_t[]){128});
    dg_node *c = dg_scalar(g, 2.5f);
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    ck_assert_int_eq(dg_node_kind_of(x), DG_NODE_INPUT);
    ck_assert_int_eq(dg_node_kind_of(w), DG_NODE_PARAM);
    ck_assert_int_eq(dg_node_kind_of(c), DG_NODE_CONSTANT);
    ck_assert_int_eq(dg_node_dtype(labels), DG_I32);
    ck_assert_int_eq(dg_node_ndim(x), 2);
    ck_assert_int_eq(dg_node_dim(x, 0), 128);
    ck_assert_int_eq(dg_node_dim(x, -1), 784);
    ck_assert_int_eq(dg_node_numel(w), 784 * 256);
    ck_assert_int_eq(dg_node_ndim(c), 0);
    ck_assert_int_eq(dg_node_numel(c), 1);
    ck_assert_str_eq(dg_node_name(w), "w");
    ck_assert_str_eq(dg_node_op_name(w), "param");
    ck_assert_ptr_null(dg_node_name(c));
    ck_assert_int_eq(dg_graph_node_count(g), 4);
    ck_assert_ptr_eq(dg_graph_node(g, 1), w);
    ck_assert_int_eq(dg_node_index(w), 1);
    ck_assert_ptr_eq(dg_node_graph(w), g);
    /* Parameters start at zero and are writable. */
    float *wd = dg_param_data(w);
    ck_assert_ptr_nonnull(wd);
    ck_assert_float_eq_tol(wd[0], 0.0f, 1e-6f);
    wd[5] = 3.0f;
    ck_assert_float_eq_tol(dg_param_data(w)[5], 3.0f, 1e-6f);
    ck_assert_ptr_null(dg_param_data(x));
    ck_assert_float_eq_tol(dg_param_data(c)[0], 2.5f, 1e-6f);
    dg_graph_free(g);
}
END_TEST

START_TEST(find_by_name)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){3});
    dg_node *b = dg_param(g, "bias", 1, (int64_t[]){3});
    ck_assert_ptr_eq(dg_graph_find(g, "x"), x);
    ck_assert_ptr_eq(dg_graph_find(g, "bias"), b);
    ck_assert_ptr_null(dg_graph_find(g, "nope"));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "nope"));
    dg_graph_free(g);
}
END_TEST

START_TEST(broadcast_shapes_are_inferred)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, 3});
    dg_node *row = dg_param(g, "row", 1, (int64_t[]){3});
    dg_node *col = dg_param(g, "col", 2, (int64_t[]){4, 1});
    dg_node *both = dg_add(g, dg_mul(g, x, row), col);
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    ck_assert_int_eq(dg_node_ndim(both), 2);
    ck_assert_int_eq(dg_node_dim(both, 0), 4);
    ck_assert_int_eq(dg_node_dim(both, 1), 3);
    dg_node *outer = dg_mul(g, col, dg_param(g, "r1", 2, (int64_t[]){1, 5}));
    ck_assert_int_eq(dg_node_dim(outer, 0), 4);
    ck_assert_int_eq(dg_node_dim(outer, 1), 5);
    dg_node *s = dg_add(g, x, dg_scalar(g, 1.0f));
    ck_assert_int_eq(dg_node_dim(s, 1), 3);
    dg_graph_free(g);
}
END_TEST

START_TEST(status_strings_are_distinct)
{
    for (int i = 0; i < DG_STATUS_COUNT; i++) {
        ck_assert_ptr_nonnull(dg_status_str((dg_status)i));
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(dg_status_str((dg_status)i), dg_status_str((dg_status)j));
    }
    ck_assert_str_eq(dg_status_str((dg_status)999), "unknown status");
}
END_TEST

START_TEST(many_nodes_grow_the_graph)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){2});
    dg_node *acc = x;
    for (int i = 0; i < 5000; i++)
        acc = dg_add(g, acc, x);
    ck_assert_int_eq(dg_graph_status(g), DG_OK);
    ck_assert_int_eq(dg_graph_node_count(g), 5001);
    dg_plan *p = dg_compile(g, 1, &acc);
    ck_assert_ptr_nonnull(p);
    dg_feed(p, x, (float[]){1.0f, -0.5f});
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_float_eq_tol(dg_data(p, acc)[0], 5001.0f, 1e-3f);
    ck_assert_float_eq_tol(dg_data(p, acc)[1], -2500.5f, 1e-3f);
    /* A chain reuses two buffers at most, whatever its length. */
    ck_assert_uint_le(dg_plan_arena_bytes(p), 2 * 64);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("build");
    tcase_add_test(tc, leaves_have_their_shapes_and_kinds);
    tcase_add_test(tc, find_by_name);
    tcase_add_test(tc, broadcast_shapes_are_inferred);
    tcase_add_test(tc, status_strings_are_distinct);
    tcase_add_test(tc, many_nodes_grow_the_graph);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
