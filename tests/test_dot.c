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
    ck_assert_ptr_nonnull(strstr(dot, "n3 [label=\"#3 mul\\n[]\""));
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


/* An MLP's training graph: x -> dense h1 -> dropout -> dense h2 -> dense out -> loss. */
static dg_graph *mlp_training_graph(dg_node **logits)
{
    dg_graph *g = dg_graph_new();
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){32, 20});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){32});
    dg_node *h = dg_dense(g, x, 16, DG_ACT_RELU, "h1", &rng);
    h = dg_dropout(g, h, dg_dropout_key(g), 0.2f);
    h = dg_dense(g, h, 16, DG_ACT_GELU, "h2", &rng);
    *logits = dg_name(dg_dense(g, h, 4, DG_ACT_NONE, "out", &rng), "logits");
    dg_node *loss = dg_softmax_cross_entropy(g, *logits, y);
    dg_node *params[6], *grads[6];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(g, loss, 6, params, grads, &n), DG_OK);
    return g;
}

static char *dump_with(dg_graph *g, const dg_dot_options *opt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(dg_graph_dump_dot_ex(g, f, opt), DG_OK);
    fclose(f);
    return buf;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

START_TEST(names_scopes_and_options)
{
    dg_node *logits;
    dg_graph *g = mlp_training_graph(&logits);
    ck_assert_str_eq(dg_node_scope(logits), "out");
    ck_assert_str_eq(dg_node_name(logits), "logits");
    char *full = dump_with(g, NULL);
    /* A cluster per layer, forward and backward; the named node and its number. */
    ck_assert_ptr_nonnull(strstr(full, "label=\"h1\""));
    ck_assert_ptr_nonnull(strstr(full, "label=\"out\""));
    ck_assert_ptr_nonnull(strstr(full, "label=\"backward of h2\""));
    char want[64];
    snprintf(want, sizeof want, "n%d [label=\"#%d logits = add", dg_node_index(logits),
             dg_node_index(logits));
    ck_assert_ptr_nonnull(strstr(full, want));

    dg_dot_options forward = DG_DOT_DEFAULTS;
    forward.forward_only = true;
    char *fwd = dump_with(g, &forward);
    ck_assert_ptr_null(strstr(fwd, "backward"));
    ck_assert_ptr_null(strstr(fwd, "grad of"));

    dg_dot_options collapsed = DG_DOT_DEFAULTS;
    collapsed.collapse_backward = true;
    char *box = dump_with(g, &collapsed);
    ck_assert_ptr_null(strstr(box, "grad of"));
    ck_assert_ptr_nonnull(strstr(box, "[label=\"backward of h1\\n"));
    ck_assert_ptr_nonnull(strstr(box, "[label=\"backward of out\\n"));
    /* Fewer boxes than the full dump, and no edge twice. */
    ck_assert_int_lt(count_of(box, "[label="), count_of(full, "[label="));
    for (char *line = box; (line = strchr(line, '\n')) != NULL; line++) {
        char *end = strchr(line + 1, '\n');
        if (end == NULL || strstr(line + 1, " -> ") == NULL || strstr(line + 1, " -> ") > end)
            continue;
        size_t len = (size_t)(end - line);
        char edge[128];
        ck_assert_uint_lt(len, sizeof edge);
        memcpy(edge, line, len);
        edge[len] = '\0';
        ck_assert_int_eq(count_of(box, edge), 1);
        /* Both ends are declared nodes (a collapsed box or a drawn node). */
        char from[32], to[32], decl[48];
        ck_assert_int_eq(sscanf(edge + 1, " %31s -> %31[^ ;]", from, to), 2);
        snprintf(decl, sizeof decl, "%s [label=", from);
        ck_assert_msg(strstr(box, decl) != NULL, "edge from undeclared %s", from);
        snprintf(decl, sizeof decl, "%s [label=", to);
        ck_assert_msg(strstr(box, decl) != NULL, "edge to undeclared %s", to);
    }
    free(full);
    free(fwd);
    free(box);

    /* Misuse of names and scopes. */
    ck_assert_ptr_null(dg_name(dg_graph_find(g, "x"), "renamed"));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    ck_assert_ptr_null(dg_name(NULL, "q"));
    ck_assert_int_eq(dg_graph_status(g), DG_OK); /* NULL passes through */
    ck_assert_int_eq(dg_scope_pop(g), DG_ERR_STATE);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_scope_push(g, ""), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_scope_push(g, "enc"), DG_OK);
    ck_assert_int_eq(dg_scope_push(g, "block"), DG_OK);
    dg_node *inner = dg_scale(g, logits, 2.0f);
    ck_assert_int_eq(dg_scope_pop(g), DG_OK);
    ck_assert_int_eq(dg_scope_pop(g), DG_OK);
    ck_assert_str_eq(dg_node_scope(inner), "enc/block");
    ck_assert_str_eq(dg_node_scope(dg_scale(g, logits, 3.0f)), "");
    dg_graph_free(g);
}
END_TEST

/* Renders the collapsed training graph of an MLP to PNG when Graphviz is installed, and checks
 * that the picture stays a readable size. */
START_TEST(training_graph_renders_readably)
{
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        printf("dot not installed: render check skipped\n");
        return;
    }
    dg_node *logits;
    dg_graph *g = mlp_training_graph(&logits);
    const char *dir = getenv("DG_TEST_BUILD_DIR");
    char path[1024], cmd[2300];
    snprintf(path, sizeof path, "%s/test_dot_mlp.dot", dir ? dir : ".");
    dg_dot_options collapsed = DG_DOT_DEFAULTS;
    collapsed.collapse_backward = true;
    ck_assert_int_eq(dg_graph_dump_dot_file_ex(g, path, &collapsed), DG_OK);
    snprintf(cmd, sizeof cmd, "dot -Tpng '%s' -o '%s.png'", path, path);
    ck_assert_int_eq(system(cmd), 0);
    printf("%d nodes drawn to %s.png\n", dg_graph_node_count(g), path);
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
    tcase_add_test(tc, names_scopes_and_options);
    tcase_add_test(tc, training_graph_renders_readably);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
