/*
 * MLP training throughput: dagrad against PyTorch (bench/torch_mlp.py) on the same model.
 *
 *   ./build/bench/bench_mlp [--threads 1,2] [--seconds S] [--repetitions R] [--torch FILE]
 *                           [--only NAME_PREFIX]
 *   bench/run_mlp_compare.sh [build-dir]      (runs torch_mlp.py, then this with --torch)
 *
 * Model: 784-256-128-10 (dg_dense: x @ W + b, ReLU, ReLU, linear), dg_softmax_cross_entropy
 * on int32 labels, Adam lr 1e-3 (PyTorch's defaults otherwise). Inputs uniform in [0, 1),
 * labels uniform in [0, 10), from a fixed seed. A training step is dg_feed(x), dg_feed(y),
 * dg_run of a plan holding the loss and the six gradients, dg_optim_step; forward-only is
 * dg_feed(x) + dg_run of a plan holding only the logits, at batch 1. Configurations: train at
 * batch 32, 128, 1024 and forward-only at batch 1, each at every thread count; the count is
 * given to the graph (so to its plans) and to the optimizer.
 *
 * Method (the same as torch_mlp.py): per configuration a fresh graph (same seed), warm-up
 * steps (at least 0.2 s), then R timed repetitions (default 7) of N steps each, N chosen from
 * the warm-up so that a repetition lasts about S seconds (default 0.25); the median
 * repetition is reported. Steps cycle through 8 pre-made batches.
 *
 * Output: `name value unit` lines:
 *   mlp_train_b<B>_t<T>_dagrad     samples/s
 *   mlp_forward_b1_t<T>_dagrad     samples/s
 * and with --torch FILE (or DG_BENCH_TORCH_RESULTS=FILE), a file of torch_mlp.py's output,
 * for each configuration found there also
 *   mlp_..._torch                  samples/s (copied from the file)
 *   mlp_..._ratio                  x (dagrad / PyTorch)
 * Exit status 1 on any dagrad error (message on stderr) or a non-finite loss.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dagrad.h"

#include "bench_util.h"

enum { N_IN = 784, N_HIDDEN1 = 256, N_HIDDEN2 = 128, N_CLASSES = 10 };
enum { N_BATCHES = 8, MAX_THREAD_COUNTS = 8, MAX_TORCH_LINES = 64 };
/* Warm-up: at least WARMUP_SECONDS, and WARMUP_STEPS steps unless that takes longer than
 * WARMUP_MAX_SECONDS. With random inputs in [0, 1) most first-layer ReLUs die within a few
 * hundred steps (PyTorch's model too), and Adam's first moment of the dead units then decays
 * by beta1 = 0.9 a step into float subnormals after ~750 steps, where every update of those
 * elements runs slower (measured: Adam step 2.5x slower). 1000 steps puts every timed
 * repetition in that steady state instead of straddling it; at batch 1024 (where Adam is ~2%
 * of a step) the cap keeps the warm-up short. */
#define WARMUP_SECONDS 0.2
#define WARMUP_STEPS 1000
#define WARMUP_MAX_SECONDS 3.0

struct options {
    int n_thread_counts;
    int thread_counts[MAX_THREAD_COUNTS];
    double seconds;
    int repetitions;
    const char *torch_path;
    const char *only;
};

/* One line of torch_mlp.py's output. */
struct torch_result {
    char name[96];
    double value;
};

static struct torch_result torch_results[MAX_TORCH_LINES];
static int n_torch_results;

/* The model and its plan for one configuration; everything is freed by model_free. */
struct model {
    dg_graph *graph;
    dg_node *x, *y, *logits, *loss;
    dg_node *params[6], *grads[6];
    dg_plan *plan;
    dg_optim *opt; /* NULL for forward-only */
    float *x_data;
    int32_t *y_data;
    int64_t batch;
};

static void model_free(struct model *m)
{
    dg_optim_free(m->opt);
    dg_plan_free(m->plan);
    dg_graph_free(m->graph);
    free(m->x_data);
    free(m->y_data);
    memset(m, 0, sizeof *m);
}

/* Builds the MLP at `batch` with `threads` threads; with `train`, appends the backward pass
 * and an Adam optimizer and plans loss + gradients, else plans the logits. False (with a
 * message on stderr) on error. */
static bool model_build(struct model *m, int64_t batch, int threads, bool train)
{
    memset(m, 0, sizeof *m);
    m->batch = batch;
    dg_graph *g = m->graph = dg_graph_new();
    if (g == NULL) {
        fprintf(stderr, "bench_mlp: out of memory\n");
        return false;
    }
    dg_graph_set_threads(g, threads);
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    const int64_t x_shape[2] = {batch, N_IN}, y_shape[1] = {batch};
    m->x = dg_input(g, "x", 2, x_shape);
    dg_node *h = dg_dense(g, m->x, N_HIDDEN1, DG_ACT_RELU, "fc1", &rng);
    h = dg_dense(g, h, N_HIDDEN2, DG_ACT_RELU, "fc2", &rng);
    m->logits = dg_dense(g, h, N_CLASSES, DG_ACT_NONE, "fc3", &rng);
    if (train) {
        m->y = dg_input_typed(g, "y", DG_I32, 1, y_shape);
        m->loss = dg_softmax_cross_entropy(g, m->logits, m->y);
    }
    if (dg_graph_status(g) != DG_OK) {
        fprintf(stderr, "bench_mlp: build: %s\n", dg_graph_error(g));
        return false;
    }
    if (train) {
        if (dg_graph_params(g, 6, m->params) != 6 ||
            dg_grad(g, m->loss, 6, m->params, m->grads) != DG_OK) {
            fprintf(stderr, "bench_mlp: grad: %s\n", dg_graph_error(g));
            return false;
        }
        dg_node *outputs[7] = {m->loss};
        memcpy(outputs + 1, m->grads, sizeof m->grads);
        m->plan = dg_compile(g, 7, outputs);
        dg_adam_config cfg = DG_ADAM_DEFAULTS;
        m->opt = dg_optim_new_adam(6, m->params, m->grads, &cfg);
        if (m->opt == NULL || dg_optim_status(m->opt) != DG_OK ||
            dg_optim_set_threads(m->opt, threads) != DG_OK) {
            fprintf(stderr, "bench_mlp: adam: %s\n", dg_optim_error(m->opt));
            return false;
        }
    } else {
        m->plan = dg_compile(g, 1, &m->logits);
    }
    if (m->plan == NULL || dg_plan_set_threads(m->plan, threads) != DG_OK) {
        fprintf(stderr, "bench_mlp: compile: %s\n", dg_graph_error(g));
        return false;
    }

    /* N_BATCHES batches of inputs in [0, 1) and labels in [0, 10). */
    m->x_data = malloc(sizeof(float) * (size_t)(N_BATCHES * batch * N_IN));
    m->y_data = malloc(sizeof(int32_t) * (size_t)(N_BATCHES * batch));
    if (m->x_data == NULL || m->y_data == NULL) {
        fprintf(stderr, "bench_mlp: out of memory\n");
        return false;
    }
    dg_rng data_rng;
    dg_rng_seed(&data_rng, 2);
    for (int64_t i = 0; i < N_BATCHES * batch * N_IN; i++)
        m->x_data[i] = dg_rng_uniform(&data_rng);
    for (int64_t i = 0; i < N_BATCHES * batch; i++)
        m->y_data[i] = (int32_t)dg_rng_below(&data_rng, N_CLASSES);
    return true;
}

/* One step on pre-made batch `i % N_BATCHES`. */
static bool model_step(struct model *m, int64_t i)
{
    int64_t b = i % N_BATCHES;
    dg_status st = dg_feed(m->plan, m->x, m->x_data + b * m->batch * N_IN);
    if (st == DG_OK && m->y != NULL)
        st = dg_feed(m->plan, m->y, m->y_data + b * m->batch);
    if (st == DG_OK)
        st = dg_run(m->plan);
    if (st != DG_OK) {
        fprintf(stderr, "bench_mlp: run: %s\n", dg_graph_error(m->graph));
        return false;
    }
    if (m->opt != NULL && dg_optim_step(m->opt, m->plan) != DG_OK) {
        fprintf(stderr, "bench_mlp: adam step: %s\n", dg_optim_error(m->opt));
        return false;
    }
    return true;
}

/* Median seconds per step (warm-up first), or a negative value on error. */
static double time_steps(struct model *m, const struct options *opt)
{
    int64_t steps = 0;
    double t0 = dg_bench_seconds(), elapsed;
    do {
        if (!model_step(m, steps++))
            return -1;
        elapsed = dg_bench_seconds() - t0;
    } while (elapsed < WARMUP_SECONDS || steps < 3 ||
             (steps < WARMUP_STEPS && elapsed < WARMUP_MAX_SECONDS));
    int64_t n = (int64_t)(opt->seconds / (elapsed / (double)steps));
    if (n < 1)
        n = 1;
    double *results = malloc(sizeof(double) * (size_t)opt->repetitions);
    if (results == NULL)
        return -1;
    for (int r = 0; r < opt->repetitions; r++) {
        t0 = dg_bench_seconds();
        for (int64_t i = 0; i < n; i++) {
            if (!model_step(m, i)) {
                free(results);
                return -1;
            }
        }
        results[r] = (dg_bench_seconds() - t0) / (double)n;
    }
    qsort(results, (size_t)opt->repetitions, sizeof(double), dg_bench_compare_double);
    double median = results[opt->repetitions / 2];
    free(results);
    return median;
}

static const struct torch_result *torch_find(const char *name)
{
    for (int i = 0; i < n_torch_results; i++)
        if (strcmp(torch_results[i].name, name) == 0)
            return &torch_results[i];
    return NULL;
}

/* Reads `name value unit` lines of torch_mlp.py (other lines are skipped). */
static bool torch_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "bench_mlp: cannot open PyTorch results '%s'\n", path);
        return false;
    }
    char line[256];
    while (fgets(line, sizeof line, f) != NULL && n_torch_results < MAX_TORCH_LINES) {
        struct torch_result *r = &torch_results[n_torch_results];
        char unit[32];
        if (line[0] != '#' && sscanf(line, "%95s %lf %31s", r->name, &r->value, unit) == 3)
            n_torch_results++;
    }
    fclose(f);
    return true;
}

/* Runs one configuration and prints its lines; false on error. */
static bool run_config(const struct options *opt, const char *kind, int64_t batch, int threads)
{
    char base[64];
    snprintf(base, sizeof base, "mlp_%s_b%lld_t%d", kind, (long long)batch, threads);
    if (opt->only != NULL && strncmp(base, opt->only, strlen(opt->only)) != 0)
        return true;
    struct model m;
    bool train = strcmp(kind, "train") == 0;
    if (!model_build(&m, batch, threads, train)) {
        model_free(&m);
        return false;
    }
    double seconds = time_steps(&m, opt);
    if (seconds > 0 && train) {
        const float *loss = dg_data(m.plan, m.loss);
        if (loss == NULL || !isfinite(*loss)) {
            fprintf(stderr, "bench_mlp: %s: loss is not finite\n", base);
            seconds = -1;
        }
    }
    model_free(&m);
    if (seconds <= 0)
        return false;
    double value = (double)batch / seconds;
    printf("%s_dagrad %.0f samples/s\n", base, value);
    char name[96];
    snprintf(name, sizeof name, "%s_torch", base);
    const struct torch_result *peer = torch_find(name);
    if (peer != NULL && peer->value > 0) {
        printf("%s %.0f samples/s\n", name, peer->value);
        printf("%s_ratio %.2f x\n", base, value / peer->value);
    }
    fflush(stdout);
    return true;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_mlp [--threads 1,2] [--seconds S] [--repetitions R] "
                    "[--torch FILE] [--only NAME_PREFIX]\n");
}

static bool parse_threads(const char *text, struct options *opt)
{
    opt->n_thread_counts = 0;
    const char *p = text;
    while (*p != '\0') {
        char *end;
        long t = strtol(p, &end, 10);
        if (end == p || t < 1 || t > 1024 || opt->n_thread_counts == MAX_THREAD_COUNTS)
            return false;
        opt->thread_counts[opt->n_thread_counts++] = (int)t;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return false;
    }
    return opt->n_thread_counts > 0;
}

int main(int argc, char **argv)
{
    struct options opt = {
        .n_thread_counts = 2, .thread_counts = {1, 2}, .seconds = 0.25, .repetitions = 7,
        .torch_path = getenv("DG_BENCH_TORCH_RESULTS"),
    };
    for (int i = 1; i < argc; i += 2) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = value != NULL;
        if (strcmp(argv[i], "--threads") == 0 && ok)
            ok = parse_threads(value, &opt);
        else if (strcmp(argv[i], "--seconds") == 0 && ok)
            ok = (opt.seconds = atof(value)) > 0;
        else if (strcmp(argv[i], "--repetitions") == 0 && ok)
            ok = (opt.repetitions = atoi(value)) > 0;
        else if (strcmp(argv[i], "--torch") == 0 && ok)
            opt.torch_path = value;
        else if (strcmp(argv[i], "--only") == 0 && ok)
            opt.only = value;
        else
            ok = false;
        if (!ok) {
            usage();
            return 2;
        }
    }
    if (opt.torch_path != NULL && opt.torch_path[0] != '\0' && !torch_load(opt.torch_path))
        return 1;

    static const int64_t train_batches[] = {32, 128, 1024};
    for (int t = 0; t < opt.n_thread_counts; t++) {
        int threads = opt.thread_counts[t];
        for (size_t b = 0; b < sizeof train_batches / sizeof train_batches[0]; b++)
            if (!run_config(&opt, "train", train_batches[b], threads))
                return 1;
        if (!run_config(&opt, "forward", 1, threads))
            return 1;
    }
    return 0;
}
