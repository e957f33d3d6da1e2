/*
 * The quickstart: a two-layer network's forward pass, run at batch 128 and again at batch 1
 * without rebuilding, and its graph written as Graphviz DOT.
 *
 *   build/examples/forward_demo [out.dot]
 */
#include <dagrad.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(dg_graph *g, const char *what)
{
    fprintf(stderr, "forward_demo: %s: %s\n", what, dg_graph_error(g));
    dg_graph_free(g);
    return 1;
}

int main(int argc, char **argv)
{
    const char *dot_path = argc > 1 ? argv[1] : "forward_demo.dot";
    dg_graph *g = dg_graph_new();
    if (g == NULL)
        return 1;
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){128, 784});
    dg_node *w1 = dg_param(g, "w1", 2, (int64_t[]){784, 256});
    dg_node *b1 = dg_param(g, "b1", 1, (int64_t[]){256});
    dg_node *w2 = dg_param(g, "w2", 2, (int64_t[]){256, 10});
    dg_node *b2 = dg_param(g, "b2", 1, (int64_t[]){10});
    dg_node *h = dg_relu(g, dg_add(g, dg_matmul(g, x, w1), b1)); /* b1 broadcasts */
    dg_node *probs = dg_softmax(g, dg_add(g, dg_matmul(g, h, w2), b2), -1);
    if (probs == NULL)
        return fail(g, "building the graph");

    /* Seeded initialisation: the same numbers on every machine. */
    dg_rng rng;
    dg_rng_seed(&rng, 42);
    dg_init_kaiming_uniform(w1, &rng, 0.0f, DG_FAN_IN, DG_NONLIN_RELU);
    dg_init_xavier_uniform(w2, &rng, 1.0f);

    dg_plan *plan = dg_compile(g, 1, &probs);
    if (plan == NULL)
        return fail(g, "compiling");
    float *batch = malloc(128 * 784 * sizeof *batch);
    if (batch == NULL)
        return 1;
    for (int i = 0; i < 128 * 784; i++)
        batch[i] = dg_rng_uniform(&rng);
    if (dg_feed(plan, x, batch) != DG_OK || dg_run(plan) != DG_OK)
        return fail(g, "running at batch 128");
    const float *out = dg_data(plan, probs);
    double row_sum = 0;
    for (int k = 0; k < 10; k++)
        row_sum += out[k];
    printf("batch 128: row 0 class probabilities sum to %.6f\n", row_sum);

    /* Infer on one example with the same plan. */
    if (dg_plan_set_batch(plan, 1) != DG_OK || dg_feed(plan, x, batch) != DG_OK ||
        dg_run(plan) != DG_OK)
        return fail(g, "running at batch 1");
    out = dg_data(plan, probs);
    int best = 0;
    for (int k = 1; k < 10; k++)
        if (out[k] > out[best])
            best = k;
    printf("batch 1: predicted class %d (p = %.4f)\n", best, out[best]);
    printf("plan: %d ops, arena %zu bytes (%zu without sharing)\n", dg_plan_node_count(plan),
           dg_plan_arena_bytes(plan), dg_plan_unshared_bytes(plan));

    if (dg_graph_dump_dot_file(g, dot_path) != DG_OK)
        return fail(g, "writing the DOT dump");
    printf("graph written to %s (render: dot -Tsvg %s -o graph.svg)\n", dot_path, dot_path);
    free(batch);
    dg_plan_free(plan);
    dg_graph_free(g);
    return 0;
}
