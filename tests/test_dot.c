/* Graphviz dumps: content, stable ids, backward cluster, and that dot renders them. */
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

static char *dump_to_string(dg_graph *g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(dg_graph_dump_dot(g, f), DG_OK);
    fclose(f);
    return buf;
}

static dg_graph *small_model(dg_node **loss, dg_node **w)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 0, NULL);
    *w = dg_param(g, "w", 0, NULL);
    dg_node *b = dg_param(g, "b", 0, NULL);
    dg_node *y = dg_add(g, dg_mul(g, x, *w), b);
    *loss = dg_mul(g, y, y);
    return g;
}

START_TEST(forward_dump_has_every_node)
{
    dg_node *loss, *w;
    dg_graph *g = small_model(&loss, &w);
    char *dot = dump_to_string(g);
    ck_assert_ptr_nonnull(strstr(dot, "digraph dagrad {"));
    ck_assert_ptr_nonnull(strstr(dot, "n0 [label=\"input x\\n[]\""));
    ck_assert_ptr_nonnull(strstr(dot, "n1 [label=\"param w\\n[]\""));
    ck_assert_ptr_nonnull(strstr(dot, "n3 [label=\"mul\\n[]\""));
    ck_assert_ptr_nonnull(strstr(dot, "n0 -> n3;"));
    ck_assert_ptr_nonnull(strstr(dot, "n1 -> n3;"));
    ck_assert_ptr_null(strstr(dot, "cluster_backward"));
    /* Stable ids: a second dump is byte-identical. */
    char *again = dump_to_string(g);
    ck_assert_str_eq(dot, again);
    free(again);
    free(dot);
    dg_graph_free(g);
}
END_TEST

START_TEST(backward_nodes_are_clustered_and_labelled)
{
    dg_node *loss, *w;
    dg_graph *g = small_model(&loss, &w);
    dg_node *grad_w;
    ck_assert_int_eq(dg_grad(g, loss, 1, &w, &grad_w), DG_OK);
    char *dot = dump_to_string(g);
    ck_assert_ptr_nonnull(strstr(dot, "subgraph cluster_backward"));
    char want[64];
    snprintf(want, sizeof want, "n%d [label=\"", dg_node_index(grad_w));
    char *line = strstr(dot, want);
    ck_assert_ptr_nonnull(line);
    ck_assert_ptr_nonnull(strstr(line, "grad of w"));
    free(dot);
    dg_graph_free(g);
}
END_TEST

START_TEST(dot_renders)
{
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        printf("dot not installed: render check skipped\n");
        return;
    }
    dg_node *loss, *w;
    dg_graph *g = small_model(&loss, &w);
    dg_node *grad_w;
    ck_assert_int_eq(dg_grad(g, loss, 1, &w, &grad_w), DG_OK);
    const char *dir = getenv("DG_TEST_BUILD_DIR");
    char path[1024], cmd[2200];
    snprintf(path, sizeof path, "%s/test_dot_render.dot", dir ? dir : ".");
    ck_assert_int_eq(dg_graph_dump_dot_file(g, path), DG_OK);
    snprintf(cmd, sizeof cmd, "dot -Tsvg '%s' -o '%s.svg'", path, path);
    ck_assert_int_eq(system(cmd), 0);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("dot");
    TCase *tc = tcase_create("dot");
    tcase_add_test(tc, forward_dump_has_every_node);
    tcase_add_test(tc, backward_nodes_are_clustered_and_labelled);
    tcase_add_test(tc, dot_renders);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
