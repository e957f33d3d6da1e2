/*
 * The parity CNN of examples/fashion_cnn.c, timed: training steps (forward, backward, Adam) at
 * batch 64 and inference (forward only) at batch 1 and 256, at 1 and 2 threads.
 *
 *   build/bench/bench_cnn [--seconds S] [--repetitions R] [--threads 1,2] [--only C]
 *   build/bench/bench_cnn --profile [--seconds S] [--threads 1,2] [--cpu-time]
 *
 * Model: conv(1->16, 3x3, pad 1) + ReLU + maxpool 2 -> conv(16->32, 3x3, pad 1) + ReLU +
 * maxpool 2 -> dense(1568->128) + ReLU -> dense(128->10), softmax cross-entropy, Adam lr 1e-3.
 * Inputs uniform in [0, 1), labels uniform in [0, 10), 8 pre-made batches cycled. Per
 * configuration: warm-up (at least 0.2 s), then `repetitions` repetitions of N steps lasting
 * about `seconds` each; the median is printed as `name value samples/s`
 * (cnn_train_b64_t1_dagrad, cnn_infer_b1_t2_dagrad, ...). bench/torch_cnn.py is the PyTorch
 * peer; bench/run_cnn_compare.sh runs both and prints the ratios. --only train|infer1|infer256
 * runs one configuration.
 *
 * --profile: where the time goes. For training at batch 64 and inference at batch 256, at each
 * thread count, the plan's step timer (dg_plan_set_step_timer) sums each step's wall time over
 * about `seconds` of runs after a warm-up; printed per step (`profile <config> <op> <shape>
 * <us/run> <share>`), per op (`profile_op ...`), and, for the convolution steps, their GFLOP/s
 * and fraction of `threads x` the one-core FMA peak measured at the start of the same run
 * (`fma_peak_1core`). The optimizer step (Adam) is outside the plan and timed on its own.
 */
#include <dagrad.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_fma.h"
#include "bench_util.h"

enum { N_BATCHES = 8, SIDE = 28, MAX_REPETITIONS = 31 };

/* --cpu-time: time with the process's CPU time instead of the wall clock. With one thread on a
 * machine shared with other work this leaves out the time the process waits for a core (not
 * the cache and memory contention); with several threads it counts every thread's time (spin
 * waits included), so it is for comparing one-thread runs, not for reporting throughput. */
static bool cpu_clock;

static double bench_clock(void)
{
    if (!cpu_clock)
        return dg_bench_seconds();
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

struct net {
    dg_graph *g;
    dg_node *x, *y, *loss, *logits, *params[8], *grads[8];
    int n_params;
};

static int build(struct net *m, int64_t batch)
{
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    m->g = dg_graph_new();
    m->x = dg_input(m->g, "x", 4, (int64_t[]){batch, 1, SIDE, SIDE});
    m->y = dg_input_typed(m->g, "y", DG_I32, 1, (int64_t[]){batch});
    dg_conv2d_params pad1 = DG_CONV2D_DEFAULTS;
    pad1.padding[0] = pad1.padding[1] = 1;
    dg_node *h = dg_conv2d_layer(m->g, m->x, 16, 3, 3, &pad1, true, DG_ACT_RELU, "conv1", &rng);
    h = dg_max_pool2d_layer(m->g, h, 2);
    h = dg_conv2d_layer(m->g, h, 32, 3, 3, &pad1, true, DG_ACT_RELU, "conv2", &rng);
    h = dg_max_pool2d_layer(m->g, h, 2);
    h = dg_dense(m->g, dg_flatten(m->g, h), 128, DG_ACT_RELU, "fc1", &rng);
    m->logits = dg_dense(m->g, h, 10, DG_ACT_NONE, "fc2", &rng);
    m->loss = dg_softmax_cross_entropy(m->g, m->logits, m->y);
    if (dg_grad_params(m->g, m->loss, 8, m->params, m->grads, &m->n_params) != DG_OK) {
        fprintf(stderr, "bench_cnn: %s\n", dg_graph_error(m->g));
        return 1;
    }
    return 0;
}

/* Median samples/s of `step` over repetitions lasting about `seconds` each. */
static double time_steps(dg_plan *p, dg_optim *opt, dg_node *x, dg_node *y, float *const *xs,
                         int32_t *const *ys, int64_t batch, double seconds, int repetitions)
{
    int64_t done = 0;
    double start = bench_clock(), now = start;
    while (now - start < 0.2 || done < 3) {
        dg_feed(p, x, xs[done % N_BATCHES]);
        if (y != NULL)
            dg_feed(p, y, ys[done % N_BATCHES]);
        dg_run(p);
        if (opt != NULL)
            dg_optim_step(opt, p);
        done++;
        now = bench_clock();
    }
    int64_t steps = (int64_t)(seconds / ((now - start) / (double)done)) + 1;
    double rates[MAX_REPETITIONS];
    for (int r = 0; r < repetitions; r++) {
        double t0 = bench_clock();
        for (int64_t s = 0; s < steps; s++) {
            dg_feed(p, x, xs[s % N_BATCHES]);
            if (y != NULL)
                dg_feed(p, y, ys[s % N_BATCHES]);
            dg_run(p);
            if (opt != NULL)
                dg_optim_step(opt, p);
        }
        rates[r] = (double)(steps * batch) / (bench_clock() - t0);
    }
    return dg_bench_median(rates, repetitions);
}

static int run(int64_t batch, bool train, int threads, double seconds, int repetitions)
{
    struct net m;
    if (build(&m, batch) != 0)
        return 1;
    float *xs[N_BATCHES];
    int32_t *ys[N_BATCHES];
    dg_rng rng;
    dg_rng_seed(&rng, 7);
    for (int b = 0; b < N_BATCHES; b++) {
        xs[b] = malloc((size_t)(batch * SIDE * SIDE) * sizeof(float));
        ys[b] = malloc((size_t)batch * sizeof(int32_t));
        for (int64_t i = 0; i < batch * SIDE * SIDE; i++)
            xs[b][i] = dg_rng_uniform(&rng);
        for (int64_t i = 0; i < batch; i++)
            ys[b][i] = (int32_t)dg_rng_below(&rng, 10);
    }
    dg_optim *opt = NULL;
    dg_plan *p;
    if (train) {
        dg_node *outs[9] = {m.loss};
        memcpy(outs + 1, m.grads, (size_t)m.n_params * sizeof *outs);
        p = dg_compile(m.g, 1 + m.n_params, outs);
        opt = dg_optim_new_adam(m.n_params, m.params, m.grads, &DG_ADAM_DEFAULTS);
        dg_optim_set_threads(opt, threads);
    } else {
        p = dg_compile(m.g, 1, &m.logits);
    }
    if (p == NULL) {
        fprintf(stderr, "bench_cnn: %s\n", dg_graph_error(m.g));
        return 1;
    }
    dg_plan_set_threads(p, threads);
    double rate = time_steps(p, opt, m.x, train ? m.y : NULL, xs, ys, batch, seconds,
                             repetitions);
    printf("cnn_%s_b%lld_t%d_dagrad %.0f samples/s\n", train ? "train" : "infer",
           (long long)batch, threads, rate);
    fflush(stdout);
    dg_optim_free(opt);
    dg_plan_free(p);
    dg_graph_free(m.g);
    for (int b = 0; b < N_BATCHES; b++) {
        free(xs[b]);
        free(ys[b]);
    }
    return 0;
}


/* ---- --profile ---------------------------------------------------------------------------- */


enum { MAX_STEPS = 256 };

struct profile {
    dg_plan *plan;
    int n;                          /* distinct nodes seen */
    const dg_node *node[MAX_STEPS];
    double seconds[MAX_STEPS];
    double last;                    /* --cpu-time: the clock at the end of the previous step */
};

static void on_step(void *user, const dg_node *node, double seconds)
{
    struct profile *pr = user;
    if (cpu_clock) { /* the CPU time since the previous step ended (or the run began) */
        double now = bench_clock();
        seconds = now - pr->last;
        pr->last = now;
    }
    int i = 0;
    while (i < pr->n && pr->node[i] != node)
        i++;
    if (i == pr->n) {
        if (pr->n == MAX_STEPS)
            return;
        pr->node[pr->n] = node;
        pr->seconds[pr->n++] = 0.0;
    }
    pr->seconds[i] += seconds;
}

/* Floating-point operations of a convolution step of this network (0 for other ops): 2 x
 * batch x out_c x out pixels x in_c x 9 for conv2d and both of its gradient ops. */
static double conv_flops(dg_plan *p, const dg_node *n)
{
    const char *op = dg_node_op_name(n);
    int64_t d[4];
    for (int a = 0; a < 4; a++)
        d[a] = dg_plan_ndim(p, n) == 4 ? dg_plan_dim(p, n, a) : 0;
    if (strcmp(op, "conv2d") == 0) /* [N, Co, H, W]; in_c = 1 for conv1 (Co 16), 16 for conv2 */
        return 2.0 * (double)(d[0] * d[1] * d[2] * d[3]) * (d[1] == 16 ? 1 : 16) * 9;
    if (strcmp(op, "conv2d_input_grad") == 0) /* [N, 16, 14, 14] of conv2 (out_c 32) */
        return 2.0 * (double)(d[0] * d[1] * d[2] * d[3]) * 32 * 9;
    if (strcmp(op, "conv2d_weight_grad") == 0) /* [Co, Ci, 3, 3] over the batch's pixels */
        return 2.0 * (double)(d[0] * d[1] * 9) * (d[0] == 16 ? 784 : 196) * 64;
    return 0.0;
}

static int profile_config(int64_t batch, bool train, int threads, double seconds, double peak)
{
    struct net m;
    if (build(&m, batch) != 0)
        return 1;
    float *x = malloc((size_t)(batch * SIDE * SIDE) * sizeof(float));
    int32_t *y = malloc((size_t)batch * sizeof(int32_t));
    dg_rng rng;
    dg_rng_seed(&rng, 7);
    for (int64_t i = 0; i < batch * SIDE * SIDE; i++)
        x[i] = dg_rng_uniform(&rng);
    for (int64_t i = 0; i < batch; i++)
        y[i] = (int32_t)dg_rng_below(&rng, 10);
    dg_node *outs[9] = {train ? m.loss : m.logits};
    memcpy(outs + 1, m.grads, (size_t)m.n_params * sizeof *outs);
    dg_plan *p = dg_compile(m.g, train ? 1 + m.n_params : 1, outs);
    if (p == NULL) {
        fprintf(stderr, "bench_cnn: %s\n", dg_graph_error(m.g));
        return 1;
    }
    dg_optim *opt = NULL;
    if (train) {
        opt = dg_optim_new_adam(m.n_params, m.params, m.grads, &DG_ADAM_DEFAULTS);
        dg_optim_set_threads(opt, threads);
    }
    dg_plan_set_threads(p, threads);
    dg_feed(p, m.x, x);
    if (train)
        dg_feed(p, m.y, y);
    static struct profile pr;
    memset(&pr, 0, sizeof pr);
    pr.plan = p;
    int64_t runs = 0;
    double optim_seconds = 0.0, total = 0.0;
    for (int phase = 0; phase < 2; phase++) { /* warm-up, then timed */
        dg_plan_set_step_timer(p, phase == 1 ? on_step : NULL, &pr);
        double start = bench_clock();
        while (bench_clock() - start < (phase == 0 ? 0.2 : seconds)) {
            double t0 = bench_clock();
            pr.last = t0;
            dg_run(p);
            double t1 = bench_clock();
            if (opt != NULL)
                dg_optim_step(opt, p);
            if (phase == 1) {
                double t2 = bench_clock();
                runs++;
                optim_seconds += t2 - t1;
                total += t2 - t0;
            }
        }
    }
    char config[32];
    snprintf(config, sizeof config, "%s_b%lld_t%d", train ? "train" : "infer", (long long)batch,
             threads);
    printf("# %s: %lld runs, %.1f us a step (plan + optimizer), %.0f samples/s\n", config,
           (long long)runs, 1e6 * total / (double)runs, (double)(runs * batch) / total);
    /* per step, in plan order */
    const char *ops[MAX_STEPS];
    double op_seconds[MAX_STEPS];
    int n_ops = 0;
    for (int i = 0; i < pr.n; i++) {
        const dg_node *n = pr.node[i];
        const char *op = dg_node_op_name(n);
        char shape[64] = "";
        int at = 0;
        for (int a = 0; a < dg_plan_ndim(p, n) && at < 50; a++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, "%s%lld", a ? "x" : "",
                           (long long)dg_plan_dim(p, n, a));
        double us = 1e6 * pr.seconds[i] / (double)runs, flops = conv_flops(p, n);
        printf("profile %s %-22s %-14s %9.1f us %5.1f %%", config, op, shape, us,
               100.0 * pr.seconds[i] / total);
        if (flops > 0.0) {
            double gflops = flops / (us * 1e-6) / 1e9;
            printf("  %.1f GFLOP/s", gflops);
            if (peak > 0.0)
                printf(" = %.2f of peak", gflops / (peak * threads));
        }
        printf("\n");
        int k = 0;
        while (k < n_ops && strcmp(ops[k], op) != 0)
            k++;
        if (k == n_ops) {
            ops[n_ops] = op;
            op_seconds[n_ops++] = 0.0;
        }
        op_seconds[k] += pr.seconds[i];
    }
    if (opt != NULL) {
        ops[n_ops] = "(adam step)";
        op_seconds[n_ops++] = optim_seconds;
    }
    for (int k = 0; k < n_ops; k++)
        printf("profile_op %s %-22s %9.1f us %5.1f %%\n", config, ops[k],
               1e6 * op_seconds[k] / (double)runs, 100.0 * op_seconds[k] / total);
    fflush(stdout);
    dg_optim_free(opt);
    dg_plan_free(p);
    dg_graph_free(m.g);
    free(x);
    free(y);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 0.5;
    int repetitions = 5, threads[8] = {1, 2}, n_threads = 2;
    const char *only = NULL;
    bool profile = false;
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--profile") == 0 || strcmp(argv[i], "--cpu-time") == 0) {
            if (argv[i][2] == 'p')
                profile = true;
            else
                cpu_clock = true;
            i--;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
            return 2;
        } else if (strcmp(argv[i], "--only") == 0) {
            only = argv[i + 1];
        } else if (strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--repetitions") == 0) {
            repetitions = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--threads") == 0) {
            n_threads = 0;
            for (char *s = argv[i + 1]; *s != '\0' && n_threads < 8;) {
                threads[n_threads++] = (int)strtol(s, &s, 10);
                if (*s == ',')
                    s++;
                else
                    break;
            }
        } else {
            fprintf(stderr, "usage: %s [--seconds S] [--repetitions R] [--threads 1,2] "
                    "[--only train|infer1|infer256] [--profile] [--cpu-time]\n", argv[0]);
            return 2;
        }
    }
    if (repetitions < 1 || repetitions > MAX_REPETITIONS || seconds <= 0)
        return 2;
    if (profile) {
        double peak = dg_bench_fma_peak();
        printf("fma_peak_1core %.1f GFLOP/s\n", peak);
        for (int t = 0; t < n_threads; t++)
            if (profile_config(64, true, threads[t], seconds, peak) != 0 ||
                profile_config(256, false, threads[t], seconds, peak) != 0)
                return 1;
        return 0;
    }
    bool all = only == NULL;
    for (int t = 0; t < n_threads; t++) {
        if (((all || strcmp(only, "train") == 0) &&
             run(64, true, threads[t], seconds, repetitions) != 0) ||
            ((all || strcmp(only, "infer1") == 0) &&
             run(1, false, threads[t], seconds, repetitions) != 0) ||
            ((all || strcmp(only, "infer256") == 0) &&
             run(256, false, threads[t], seconds, repetitions) != 0))
            return 1;
    }
    return 0;
}
