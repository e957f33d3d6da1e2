/*
 * The cost of autodiff itself: building the backward graph (dg_grad) and planning it
 * (dg_compile of loss + gradients), for two shapes of graph:
 *
 *   chain10k  a 10,000-node elementwise chain on [256] floats, repeating
 *             h = tanh(h); h = h * p_k (p_k a scalar parameter, broadcast); h = h + 0.5,
 *             loss = sum(h); gradients for every p_k and the input.
 *   mlp50     50 layers of width 256, h = relu(h W_l + b_l), batch 64, loss = mean(h^2);
 *             gradients for all 100 parameters.
 *
 * Each repetition rebuilds the graph from scratch and times, separately: the forward build,
 * dg_grad, dg_compile, and one dg_run. Figures are medians of REPS repetitions. Node counts,
 * plan steps and arena bytes (shared vs unshared) come from the last repetition.
 * A scaling sweep of the chain (2.5k .. 20k nodes) shows whether grad or compile time grows
 * faster than the graph. Output: `name value unit` lines.
 *
 *   build/bench/bench_autodiff            (DG_NUM_THREADS sets the thread count)
 */
#include <dagrad.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

enum { REPS = 5, CHAIN_WIDTH = 256, MLP_LAYERS = 50, MLP_WIDTH = 256, MLP_BATCH = 64 };

static void die(dg_graph *g, const char *what)
{
    fprintf(stderr, "bench_autodiff: %s: %s\n", what, g ? dg_graph_error(g) : "out of memory");
    exit(1);
}

/* A built model: its loss, the nodes to differentiate, and the inputs to feed. */
struct model {
    dg_graph *g;
    dg_node *loss;
    int n_wrt;
    dg_node **wrt;
    dg_node *input;
    int64_t input_numel;
};

/* The elementwise chain with at least `n_nodes` forward nodes. */
static struct model build_chain(int n_nodes)
{
    struct model m = {dg_graph_new(), NULL, 0, NULL, NULL, CHAIN_WIDTH};
    if (m.g == NULL)
        die(NULL, "graph");
    m.wrt = malloc((size_t)(n_nodes / 3 + 2) * sizeof *m.wrt);
    if (m.wrt == NULL)
        die(NULL, "wrt");
    m.input = dg_input(m.g, "x", 1, (int64_t[]){CHAIN_WIDTH});
    m.wrt[m.n_wrt++] = m.input;
    dg_node *h = m.input;
    char name[32];
    while (dg_graph_node_count(m.g) < n_nodes - 2) {
        snprintf(name, sizeof name, "p%d", m.n_wrt);
        dg_node *p = dg_param(m.g, name, 0, NULL);
        if (p != NULL)
            dg_param_data(p)[0] = 0.9f;
        m.wrt[m.n_wrt++] = p;
        h = dg_add_scalar(m.g, dg_mul(m.g, dg_tanh(m.g, h), p), 0.5f);
    }
    m.loss = dg_sum(m.g, h, 0, NULL, false);
    if (m.loss == NULL)
        die(m.g, "building the chain");
    return m;
}

static struct model build_mlp(void)
{
    struct model m = {dg_graph_new(), NULL, 0, NULL, NULL, (int64_t)MLP_BATCH * MLP_WIDTH};
    if (m.g == NULL)
        die(NULL, "graph");
    m.wrt = malloc(2 * MLP_LAYERS * sizeof *m.wrt);
    if (m.wrt == NULL)
        die(NULL, "wrt");
    m.input = dg_input(m.g, "x", 2, (int64_t[]){MLP_BATCH, MLP_WIDTH});
    dg_node *h = m.input;
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    char name[32];
    for (int l = 0; l < MLP_LAYERS; l++) {
        snprintf(name, sizeof name, "W%d", l);
        dg_node *w = dg_param(m.g, name, 2, (int64_t[]){MLP_WIDTH, MLP_WIDTH});
        snprintf(name, sizeof name, "b%d", l);
        dg_node *b = dg_param(m.g, name, 1, (int64_t[]){MLP_WIDTH});
        if (w != NULL)
            dg_init_kaiming_uniform(w, &rng, 0.0f, DG_FAN_IN, DG_NONLIN_RELU);
        m.wrt[m.n_wrt++] = w;
        m.wrt[m.n_wrt++] = b;
        h = dg_relu(m.g, dg_add(m.g, dg_matmul(m.g, h, w), b));
    }
    m.loss = dg_mean(m.g, dg_square(m.g, h), 0, NULL, false);
    if (m.loss == NULL)
        die(m.g, "building the MLP");
    return m;
}

static void model_free(struct model *m)
{
    dg_graph_free(m->g);
    free(m->wrt);
}

struct figures {
    double build_ms[REPS], grad_ms[REPS], compile_ms[REPS], run_ms[REPS];
    int forward_nodes, total_nodes, plan_steps, threads;
    size_t arena_bytes, unshared_bytes;
};

/* One repetition: build, grad, compile (loss + gradients), one run; `chain_nodes` 0 builds
 * the MLP. run == false skips the run (the scaling sweep). */
static void measure_once(int chain_nodes, int rep, bool run, struct figures *f)
{
    double t0 = 1e3 * dg_bench_seconds();
    struct model m = chain_nodes > 0 ? build_chain(chain_nodes) : build_mlp();
    double t1 = 1e3 * dg_bench_seconds();
    f->forward_nodes = dg_graph_node_count(m.g);
    dg_node **outputs = malloc((size_t)(m.n_wrt + 1) * sizeof *outputs);
    if (outputs == NULL)
        die(NULL, "outputs");
    outputs[0] = m.loss;
    double t2 = 1e3 * dg_bench_seconds();
    if (dg_grad(m.g, m.loss, m.n_wrt, m.wrt, outputs + 1) != DG_OK)
        die(m.g, "dg_grad");
    double t3 = 1e3 * dg_bench_seconds();
    dg_plan *plan = dg_compile(m.g, m.n_wrt + 1, outputs);
    double t4 = 1e3 * dg_bench_seconds();
    if (plan == NULL)
        die(m.g, "dg_compile");
    f->build_ms[rep] = t1 - t0;
    f->grad_ms[rep] = t3 - t2;
    f->compile_ms[rep] = t4 - t3;
    f->total_nodes = dg_graph_node_count(m.g);
    f->plan_steps = dg_plan_node_count(plan);
    f->arena_bytes = dg_plan_arena_bytes(plan);
    f->unshared_bytes = dg_plan_unshared_bytes(plan);
    f->threads = dg_plan_threads(plan);
    if (run) {
        float *x = malloc((size_t)m.input_numel * sizeof *x);
        if (x == NULL)
            die(NULL, "input");
        for (int64_t i = 0; i < m.input_numel; i++)
            x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        dg_feed(plan, m.input, x);
        double t5 = 1e3 * dg_bench_seconds();
        if (dg_run(plan) != DG_OK)
            die(m.g, "dg_run");
        f->run_ms[rep] = 1e3 * dg_bench_seconds() - t5;
        free(x);
    }
    dg_plan_free(plan);
    free(outputs);
    model_free(&m);
}

static void report(const char *name, int chain_nodes)
{
    struct figures f;
    memset(&f, 0, sizeof f);
    for (int rep = 0; rep < REPS; rep++)
        measure_once(chain_nodes, rep, true, &f);
    printf("autodiff_%s_forward_nodes %d nodes\n", name, f.forward_nodes);
    printf("autodiff_%s_nodes_after_grad %d nodes\n", name, f.total_nodes);
    printf("autodiff_%s_backward_nodes %d nodes\n", name, f.total_nodes - f.forward_nodes);
    printf("autodiff_%s_plan_steps %d steps\n", name, f.plan_steps);
    printf("autodiff_%s_build_ms %.3f ms\n", name, dg_bench_median(f.build_ms, REPS));
    printf("autodiff_%s_grad_ms %.3f ms\n", name, dg_bench_median(f.grad_ms, REPS));
    printf("autodiff_%s_compile_ms %.3f ms\n", name, dg_bench_median(f.compile_ms, REPS));
    printf("autodiff_%s_arena_bytes %zu bytes\n", name, f.arena_bytes);
    printf("autodiff_%s_unshared_bytes %zu bytes\n", name, f.unshared_bytes);
    printf("autodiff_%s_arena_ratio %.4f ratio\n", name,
           f.unshared_bytes ? (double)f.arena_bytes / (double)f.unshared_bytes : 0.0);
    printf("autodiff_%s_run_ms %.3f ms\n", name, dg_bench_median(f.run_ms, REPS));
}

/* grad and compile time per 1,000 forward nodes at growing chain lengths: flat when linear. */
static void scaling(void)
{
    static const int sizes[] = {2500, 5000, 10000, 20000, 40000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        struct figures f;
        memset(&f, 0, sizeof f);
        for (int rep = 0; rep < REPS; rep++)
            measure_once(sizes[s], rep, false, &f);
        double k = sizes[s] / 1000.0;
        printf("autodiff_chain%d_build_ms_per_1k_nodes %.4f ms\n", sizes[s],
               dg_bench_median(f.build_ms, REPS) / k);
        printf("autodiff_chain%d_grad_ms_per_1k_nodes %.4f ms\n", sizes[s],
               dg_bench_median(f.grad_ms, REPS) / k);
        printf("autodiff_chain%d_compile_ms_per_1k_nodes %.4f ms\n", sizes[s],
               dg_bench_median(f.compile_ms, REPS) / k);
    }
}

int main(void)
{
    dg_graph *probe = dg_graph_new();
    printf("autodiff_threads %d threads\n", probe ? dg_graph_threads(probe) : 0);
    dg_graph_free(probe);
    report("chain10k", 10000);
    report("mlp50", 0);
    scaling();
    return 0;
}
