/*
 * Data-parallel training throughput of the two demo models on synthetic data of
 * Fashion-MNIST's shape (inputs uniform in [0, 1), labels cycling 0..9):
 *   --model mlp (default): examples/fashion_mnist.c's default recipe, 784-512-256-10, ReLU,
 *       dropout 0.2, AdamW (lr 1e-3, weight decay 1e-4), global batch 128;
 *   --model cnn: examples/fashion_cnn.c's parity net, conv(1->16, 3x3, pad 1) + ReLU + maxpool
 *       2 -> conv(16->32) + ReLU + maxpool 2 -> dense(1568->128) + ReLU -> dense(128->10),
 *       Adam (defaults), global batch 64 (32 per rank on 2 ranks, 21/21/22 on 3).
 * bench/dist_bench.sh runs each as 1 rank x 1 thread, 1 rank x 2 threads, 2 ranks x 1 thread
 * (with and without overlap) and 3 ranks x 1 thread.
 *
 *   build/bench/bench_dist [--model mlp|cnn] [--threads T] [--steps S] [--distributed]
 *                          [--no-overlap] [--no-progress-thread] [--bucket-kb K]
 *   mpirun -np N build/bench/bench_dist --distributed ...
 *
 * One untimed epoch of 8 steps warms up; then one epoch of S steps (default 60) is timed.
 * Rank 0 prints a `# model: configuration` header and `name value unit` lines, named
 * dist_<what> for the MLP and dist_cnn_<what> for the CNN:
 *   dist_samples_per_s       global training examples per second
 *   dist_grad_bytes          bytes of gradients averaged per step
 *   dist_step_ms             wall time per step (dg_fit's epoch time / steps)
 *   dist_run_ms_per_step     time in dg_run (forward + backward) per step, rank 0
 *   dist_wait_ms_per_step    time after dg_run until the gradients were averaged, rank 0
 *   dist_buckets_early       share of buckets started while dg_run still ran
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "dagrad_dist.h"

enum { SIDE = 28, PIXELS = SIDE * SIDE, CLASSES = 10, MAX_PARAMS = 8 };

struct net {
    dg_node *x, *y, *loss, *logits;
};

/* The demo MLP at global batch `batch`. */
static struct net build_mlp(dg_graph *g, int64_t batch, dg_rng *rng)
{
    struct net m;
    m.x = dg_input(g, "x", 2, (int64_t[]){batch, PIXELS});
    m.y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){batch});
    dg_node *key = dg_dropout_key(g);
    dg_node *h = dg_dropout(g, dg_dense(g, m.x, 512, DG_ACT_RELU, "fc1", rng), key, 0.2f);
    h = dg_dropout(g, dg_dense(g, h, 256, DG_ACT_RELU, "fc2", rng), key, 0.2f);
    m.logits = dg_dense(g, h, CLASSES, DG_ACT_NONE, "fc3", rng);
    m.loss = dg_softmax_cross_entropy(g, m.logits, m.y);
    return m;
}

/* The parity CNN of examples/fashion_cnn.c (and bench/bench_cnn.c) at global batch `batch`. */
static struct net build_cnn(dg_graph *g, int64_t batch, dg_rng *rng)
{
    struct net m;
    m.x = dg_input(g, "x", 4, (int64_t[]){batch, 1, SIDE, SIDE});
    m.y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){batch});
    dg_conv2d_params pad1 = DG_CONV2D_DEFAULTS;
    pad1.padding[0] = pad1.padding[1] = 1;
    dg_node *h = dg_conv2d_layer(g, m.x, 16, 3, 3, &pad1, true, DG_ACT_RELU, "conv1", rng);
    h = dg_max_pool2d_layer(g, h, 2);
    h = dg_conv2d_layer(g, h, 32, 3, 3, &pad1, true, DG_ACT_RELU, "conv2", rng);
    h = dg_max_pool2d_layer(g, h, 2);
    h = dg_dense(g, dg_flatten(g, h), 128, DG_ACT_RELU, "fc1", rng);
    m.logits = dg_dense(g, h, CLASSES, DG_ACT_NONE, "fc2", rng);
    m.loss = dg_softmax_cross_entropy(g, m.logits, m.y);
    return m;
}

static int fail(dg_graph *g, const char *what)
{
    fprintf(stderr, "bench_dist: %s: %s\n", what, g ? dg_graph_error(g) : "out of memory");
    return 1;
}

int main(int argc, char **argv)
{
    int threads = 1, steps = 60, bucket_kb = 0;
    bool distributed = false, no_overlap = false, no_thread = false, cnn = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc &&
            (strcmp(argv[i + 1], "mlp") == 0 || strcmp(argv[i + 1], "cnn") == 0))
            cnn = strcmp(argv[++i], "cnn") == 0;
        else if (strcmp(argv[i], "--distributed") == 0)
            distributed = true;
        else if (strcmp(argv[i], "--no-overlap") == 0)
            no_overlap = true;
        else if (strcmp(argv[i], "--no-progress-thread") == 0)
            no_thread = true;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--bucket-kb") == 0 && i + 1 < argc)
            bucket_kb = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--model mlp|cnn] [--threads T] [--steps S] "
                    "[--distributed] [--no-overlap] [--no-progress-thread] [--bucket-kb K]\n",
                    argv[0]);
            return 2;
        }
    }
    dg_dist *dist = NULL;
    if (distributed) {
        dg_dist_options opts = DG_DIST_DEFAULTS;
        opts.no_overlap = no_overlap;
        opts.no_progress_thread = no_thread;
        opts.bucket_bytes = (size_t)bucket_kb << 10;
        dist = dg_dist_init(&argc, &argv, &opts);
        if (dist == NULL || dg_dist_status(dist) != DG_OK) {
            fprintf(stderr, "bench_dist: %s\n", dist ? dg_dist_error(dist) : "out of memory");
            return 1;
        }
    }
    if (steps < 1 || threads < 1) {
        fprintf(stderr, "bench_dist: --steps and --threads must be at least 1\n");
        return 2;
    }
    const int64_t batch = cnn ? 64 : 128;
    const char *prefix = cnn ? "dist_cnn_" : "dist_";
    int64_t n = (int64_t)steps * batch;
    float *x = malloc((size_t)n * PIXELS * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (x == NULL || y == NULL)
        return fail(NULL, "data");
    uint64_t state = 12345;
    for (int64_t i = 0; i < n * PIXELS; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        x[i] = (float)(state >> 40) / (float)(1u << 24);
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = (int32_t)(i % CLASSES);

    dg_rng rng;
    dg_rng_seed(&rng, 42);
    dg_graph *g = dg_graph_new();
    dg_graph_set_threads(g, threads);
    struct net m = cnn ? build_cnn(g, batch, &rng) : build_mlp(g, batch, &rng);
    dg_node *params[MAX_PARAMS], *grads[MAX_PARAMS];
    int n_params = 0;
    if (dg_grad_params(g, m.loss, MAX_PARAMS, params, grads, &n_params) != DG_OK)
        return fail(g, "model");
    dg_optim *opt;
    if (cnn) {
        opt = dg_optim_new_adam(n_params, params, grads, &DG_ADAM_DEFAULTS);
    } else {
        dg_adam_config adam = DG_ADAMW_DEFAULTS;
        adam.lr = 1e-3;
        adam.weight_decay = 1e-4;
        opt = dg_optim_new_adamw(n_params, params, grads, &adam);
    }
    if (opt == NULL || dg_optim_status(opt) != DG_OK) {
        fprintf(stderr, "bench_dist: optimizer: %s\n",
                opt ? dg_optim_error(opt) : "out of memory");
        return 1;
    }
    dg_optim_set_threads(opt, threads);
    int64_t grad_values = 0;
    for (int i = 0; i < n_params; i++)
        grad_values += dg_node_numel(params[i]);

    dg_model model = {.graph = g, .x = m.x, .y = m.y, .loss = m.loss, .output = m.logits};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.batch_size = (int)batch;
    cfg.verbose = 0;
    cfg.seed = 1;
    cfg.parallel = dg_dist_fit(dist);
    dg_fit_data warm = {.x = x, .y = y, .n = 8 * batch < n ? 8 * batch : n};
    dg_fit_data all = {.x = x, .y = y, .n = n};
    dg_epoch_stats es;
    if (dg_fit(&model, opt, &warm, NULL, &cfg, &es) != DG_OK)
        return fail(g, "warm-up");
    dg_dist_reset_stats(dist);
    if (dg_fit(&model, opt, &all, NULL, &cfg, &es) != DG_OK)
        return fail(g, "training");
    if (dg_dist_rank(dist) == 0) {
        int ranks = dg_dist_size(dist);
        printf("# %s: %d rank%s x %d thread%s%s, %d steps of batch %lld\n",
               cnn ? "cnn" : "mlp", ranks, ranks > 1 ? "s" : "", threads,
               threads > 1 ? "s" : "",
               dist ? (no_overlap ? ", no overlap"
                             : no_thread ? ", overlap without progress thread" : ", overlap")
                    : "", steps, (long long)batch);
        printf("%ssamples_per_s %.0f samples/s\n", prefix, es.samples_per_s);
        printf("%sgrad_bytes %lld bytes\n", prefix, (long long)grad_values * 4);
        printf("%sstep_ms %.3f ms\n", prefix, 1e3 * es.seconds / steps);
        if (dist != NULL) {
            dg_dist_stats ds = dg_dist_get_stats(dist);
            printf("%srun_ms_per_step %.3f ms\n", prefix, 1e3 * ds.run_s / (double)ds.steps);
            printf("%swait_ms_per_step %.3f ms\n", prefix,
                   1e3 * ds.wait_s / (double)ds.steps);
            printf("%sbuckets_early %lld/%lld\n", prefix, (long long)ds.buckets_early,
                   (long long)ds.buckets);
        }
    }
    dg_optim_free(opt);
    dg_graph_free(g);
    free(x);
    free(y);
    dg_dist_free(dist);
    return 0;
}
