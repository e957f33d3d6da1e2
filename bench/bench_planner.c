/*
 * The planner's figures, as `name value unit` lines (medians where timed):
 *
 *   planner_<model>_arena_bytes / _naive_bytes / _ratio
 *       bytes of the planned arena for one training step (forward + backward: the loss and
 *       every parameter's gradient as outputs) against the naive sum, every op value its own
 *       buffer (dg_plan_unshared_bytes). Target: ratio <= 0.5. Models: the demo MLP
 *       (784-512-256-10, ReLU, dropout 0.2, batch 128, as examples/fashion_mnist.c), a
 *       20-layer MLP (784-256x19-10, batch 128) and a recurrent cell unrolled over 64 steps
 *       (h = tanh(x_t W + h W_h + b), batch 32, 32 inputs, 128 units, loss on the last state).
 *   planner_dispatch_ns_per_node
 *       time of one dg_run of a 10,000-node chain of scalar adds, divided by the nodes.
 *       Target: <= 1000 ns.
 *   planner_compile_10k_ms / _100k_ms / _200k_ms / _ratio / _ratio_200k_100k
 *       dg_compile of a chain with its backward pass (every forward value alive until its
 *       gradient is made) of about 10,000, 100,000 and 200,000 nodes; linear scaling gives
 *       ratios of ~10 and ~2. The 10k plan's data (graph nodes, plan values: ~3 MB) stays in
 *       the caches from one compile to the next, the 100k plan's (~30 MB) does not, so the
 *       10k -> 100k ratio also measures the memory hierarchy; 100k -> 200k shows the slope.
 *   planner_compile_cold_10k_ms / _100k_ms / _ratio
 *       the same with the caches evicted before each compile (both sizes start cold).
 *
 * Usage: bench_planner [--quick]   (--quick: fewer repetitions, for a smoke run)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "dagrad.h"

static void die(dg_graph *g, const char *what)
{
    fprintf(stderr, "bench_planner: %s: %s\n", what, g ? dg_graph_error(g) : "out of memory");
    exit(1);
}

/* Compiles loss + every parameter's gradient (a training step) and prints the ratio. */
static void report_training_step(dg_graph *g, dg_node *loss, const char *model)
{
    dg_node *params[64], *outputs[65];
    int n = 0;
    if (dg_grad_params(g, loss, 64, params, outputs + 1, &n) != DG_OK)
        die(g, model);
    outputs[0] = loss;
    dg_plan *p = dg_compile(g, n + 1, outputs);
    if (p == NULL)
        die(g, model);
    double arena = (double)dg_plan_arena_bytes(p), naive = (double)dg_plan_unshared_bytes(p);
    printf("planner_%s_arena_bytes %.0f bytes\n", model, arena);
    printf("planner_%s_naive_bytes %.0f bytes\n", model, naive);
    printf("planner_%s_ratio %.3f ratio\n", model, arena / naive);
    printf("planner_%s_steps %d nodes\n", model, dg_plan_node_count(p));
    dg_plan_free(p);
}

static void demo_mlp(void)
{
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){128, 784});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){128});
    dg_node *key = dg_dropout_key(g);
    dg_node *h = dg_dropout(g, dg_dense(g, x, 512, DG_ACT_RELU, "fc1", &rng), key, 0.2f);
    h = dg_dropout(g, dg_dense(g, h, 256, DG_ACT_RELU, "fc2", &rng), key, 0.2f);
    dg_node *logits = dg_dense(g, h, 10, DG_ACT_NONE, "fc3", &rng);
    report_training_step(g, dg_softmax_cross_entropy(g, logits, y), "mlp_demo");
    dg_graph_free(g);
}

static void deep_mlp(void)
{
    dg_rng rng;
    dg_rng_seed(&rng, 2);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){128, 784});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){128});
    dg_node *h = x;
    for (int layer = 0; layer < 19; layer++) {
        char name[16];
        snprintf(name, sizeof name, "fc%d", layer + 1);
        h = dg_dense(g, h, 256, DG_ACT_RELU, name, &rng);
    }
    dg_node *logits = dg_dense(g, h, 10, DG_ACT_NONE, "fc20", &rng);
    report_training_step(g, dg_softmax_cross_entropy(g, logits, y), "mlp_20_layers");
    dg_graph_free(g);
}

static void recurrent_cell(void)
{
    enum { STEPS = 64, BATCH = 32, INPUTS = 32, UNITS = 128 };
    dg_graph *g = dg_graph_new();
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){INPUTS, UNITS});
    dg_node *w_h = dg_param(g, "w_h", 2, (int64_t[]){UNITS, UNITS});
    dg_node *b = dg_param(g, "b", 1, (int64_t[]){UNITS});
    dg_node *h = dg_input(g, "h0", 2, (int64_t[]){BATCH, UNITS});
    for (int t = 0; t < STEPS; t++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", t);
        dg_node *x = dg_input(g, name, 2, (int64_t[]){BATCH, INPUTS});
        h = dg_tanh(g, dg_add(g, dg_add(g, dg_matmul(g, x, w), dg_matmul(g, h, w_h)), b));
    }
    dg_node *loss = dg_mean(g, dg_square(g, h), 0, NULL, false);
    report_training_step(g, loss, "rnn_64_steps");
    dg_graph_free(g);
}

static void dispatch(int reps)
{
    enum { NODES = 10000 };
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){1});
    dg_node *one = dg_scalar(g, 1.0f);
    dg_node *y = x;
    for (int i = 0; i < NODES; i++)
        y = dg_add(g, y, one);
    dg_plan *p = dg_compile(g, 1, &y);
    if (p == NULL)
        die(g, "dispatch");
    dg_feed(p, x, (float[]){0.0f});
    dg_run(p); /* warm up */
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = 0; r < reps; r++) {
        double t0 = dg_bench_seconds();
        dg_run(p);
        t[r] = dg_bench_seconds() - t0;
    }
    if (dg_data(p, y)[0] != (float)NODES)
        die(g, "dispatch: wrong result");
    printf("planner_dispatch_ns_per_node %.1f ns\n",
           1e9 * dg_bench_median(t, reps) / dg_plan_node_count(p));
    printf("planner_dispatch_threads %d threads\n", dg_plan_threads(p));
    free(t);
    dg_plan_free(p);
    dg_graph_free(g);
}

/* Evicts the caches (writes and reads 64 MB, twice the last-level cache of the machine
 * the figures were taken on), so that a compile starts cold whatever the graph's size. */
static void evict_caches(void)
{
    static unsigned char *junk;
    enum { JUNK = 64 << 20 };
    if (junk == NULL && (junk = malloc(JUNK)) == NULL)
        return;
    unsigned sum = 0;
    for (size_t i = 0; i < JUNK; i += 64) {
        junk[i] = (unsigned char)(i + sum);
        sum += junk[i];
    }
    if (sum == 1) /* keeps the loop from being optimised away */
        fputs("", stderr);
}

/* A chain of about `nodes` nodes, forward and backward: y = tanh(y) + x repeated, then the
 * gradient with respect to x (the backward pass keeps every forward value alive). Returns
 * the median dg_compile time in seconds and the plan's step count in *steps; `cold`: the
 * caches are evicted before each compile. */
static double compile_time(int nodes, int reps, bool cold, int *steps)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, 8});
    dg_node *y = x;
    /* each forward link (tanh, add) brings about 4 backward nodes: tanh_grad, adds */
    for (int i = 0; i < nodes / 6; i++)
        y = dg_add(g, dg_tanh(g, y), x);
    dg_node *loss = dg_sum(g, y, 0, NULL, false), *grad;
    if (dg_grad(g, loss, 1, &x, &grad) != DG_OK)
        die(g, "compile graph");
    dg_node *outs[2] = {loss, grad};
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = 0; r < reps; r++) {
        if (cold)
            evict_caches();
        double t0 = dg_bench_seconds();
        dg_plan *p = dg_compile(g, 2, outs);
        t[r] = dg_bench_seconds() - t0;
        if (p == NULL)
            die(g, "compile");
        *steps = dg_plan_node_count(p);
        dg_plan_free(p);
    }
    double median = dg_bench_median(t, reps);
    free(t);
    dg_graph_free(g);
    return median;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    demo_mlp();
    deep_mlp();
    recurrent_cell();
    dispatch(quick ? 5 : 51);
    int steps_10k = 0, steps_100k = 0, steps_200k = 0;
    double t10 = compile_time(10000, quick ? 3 : 11, false, &steps_10k);
    double t100 = compile_time(100000, quick ? 1 : 5, false, &steps_100k);
    double t200 = compile_time(200000, quick ? 1 : 3, false, &steps_200k);
    printf("planner_compile_10k_nodes %d nodes\n", steps_10k);
    printf("planner_compile_10k_ms %.2f ms\n", 1e3 * t10);
    printf("planner_compile_100k_nodes %d nodes\n", steps_100k);
    printf("planner_compile_100k_ms %.2f ms\n", 1e3 * t100);
    printf("planner_compile_200k_nodes %d nodes\n", steps_200k);
    printf("planner_compile_200k_ms %.2f ms\n", 1e3 * t200);
    printf("planner_compile_ratio %.2f ratio\n", t100 / t10);
    printf("planner_compile_ratio_200k_100k %.2f ratio\n", t200 / t100);
    /* The same from cold caches: what scaling costs when neither graph is cached. */
    double c10 = compile_time(10000, quick ? 3 : 11, true, &steps_10k);
    double c100 = compile_time(100000, quick ? 1 : 5, true, &steps_100k);
    printf("planner_compile_cold_10k_ms %.2f ms\n", 1e3 * c10);
    printf("planner_compile_cold_100k_ms %.2f ms\n", 1e3 * c100);
    printf("planner_compile_cold_ratio %.2f ratio\n", c100 / c10);
    return 0;
}
