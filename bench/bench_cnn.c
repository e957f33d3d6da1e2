/*
 * The parity CNN of examples/fashion_cnn.c, timed: training steps (forward, backward, Adam) at
 * batch 64 and inference (forward only) at batch 1 and 256, at 1 and 2 threads.
 *
 *   build/bench/bench_cnn [--seconds S] [--repetitions R] [--threads 1,2]
 *
 * Model: conv(1->16, 3x3, pad 1) + ReLU + maxpool 2 -> conv(16->32, 3x3, pad 1) + ReLU +
 * maxpool 2 -> dense(1568->128) + ReLU -> dense(128->10), softmax cross-entropy, Adam lr 1e-3.
 * Inputs uniform in [0, 1), labels uniform in [0, 10), 8 pre-made batches cycled. Per
 * configuration: warm-up (at least 0.2 s), then `repetitions` repetitions of N steps lasting
 * about `seconds` each; the median is printed as `name value samples/s`
 * (cnn_train_b64_t1_dagrad, cnn_infer_b1_t2_dagrad, ...). bench/torch_cnn.py is the PyTorch
 * peer; bench/run_cnn_compare.sh runs both and prints the ratios.
 */
#include <dagrad.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

enum { N_BATCHES = 8, SIDE = 28, MAX_REPETITIONS = 31 };

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
    double start = dg_bench_seconds(), now = start;
    while (now - start < 0.2 || done < 3) {
        dg_feed(p, x, xs[done % N_BATCHES]);
        if (y != NULL)
            dg_feed(p, y, ys[done % N_BATCHES]);
        dg_run(p);
        if (opt != NULL)
            dg_optim_step(opt, p);
        done++;
        now = dg_bench_seconds();
    }
    int64_t steps = (int64_t)(seconds / ((now - start) / (double)done)) + 1;
    double rates[MAX_REPETITIONS];
    for (int r = 0; r < repetitions; r++) {
        double t0 = dg_bench_seconds();
        for (int64_t s = 0; s < steps; s++) {
            dg_feed(p, x, xs[s % N_BATCHES]);
            if (y != NULL)
                dg_feed(p, y, ys[s % N_BATCHES]);
            dg_run(p);
            if (opt != NULL)
                dg_optim_step(opt, p);
        }
        rates[r] = (double)(steps * batch) / (dg_bench_seconds() - t0);
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

int main(int argc, char **argv)
{
    double seconds = 0.5;
    int repetitions = 5, threads[8] = {1, 2}, n_threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0) {
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
            fprintf(stderr, "usage: %s [--seconds S] [--repetitions R] [--threads 1,2]\n",
                    argv[0]);
            return 2;
        }
    }
    if (repetitions < 1 || repetitions > MAX_REPETITIONS || seconds <= 0)
        return 2;
    for (int t = 0; t < n_threads; t++) {
        if (run(64, true, threads[t], seconds, repetitions) != 0 ||
            run(1, false, threads[t], seconds, repetitions) != 0 ||
            run(256, false, threads[t], seconds, repetitions) != 0)
            return 1;
    }
    return 0;
}
