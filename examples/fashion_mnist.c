/*
 * The demo: an MLP trained on Fashion-MNIST (Debian's dataset-fashion-mnist).
 *
 *   build/examples/fashion_mnist [--recipe default|parity] [--epochs N] [--threads N]
 *                                [--seed N] [--data DIR] [--dot FILE] [--csv FILE]
 *                                [--plot FILE] [--distributed] [--no-overlap]
 *
 *   mpirun -np N build/examples/fashion_mnist --distributed
 *            data-parallel training on N processes (docs/distributed.md): each trains on its
 *            share of every batch of 128, the gradients averaged; rank 0 reports. Same
 *            results as one process up to float reassociation. --no-overlap starts the
 *            gradient averaging after the backward pass (to measure what the overlap gains).
 *
 * Trains on the first 55,000 training images, validates after each epoch on the last 5,000
 * (held out from training), and evaluates the test set once, at the end.
 *
 * Recipes:
 *   default  784-512-256-10, ReLU, dropout 0.2, inputs standardised, AdamW with a cosine
 *            schedule after a short linear warm-up, batch 128, 16 epochs (under a minute
 *            on two cores; test accuracy about 0.90).
 *   parity   the fixed recipe compared with PyTorch: 784-256-128-10, ReLU, softmax
 *            cross-entropy, Adam lr 1e-3, batch 128, inputs scaled to [0, 1], 5 epochs.
 *
 * Ends with the lines `test_accuracy 0.XXXX` and `train_samples_per_s N`; writes the training
 * graph as DOT, each layer a box and its backward pass collapsed into one (and as SVG when
 * Graphviz's dot is installed), and the training curves as an SVG plot next to it
 * (fashion_mnist_curves.svg beside fashion_mnist.dot; --plot FILE to choose).
 */
#include <dagrad.h>
#include <dagrad_dist.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
    const char *recipe, *data_dir, *dot_path, *csv_path, *plot_path;
    int epochs, threads;
    uint64_t seed;
    bool distributed, no_overlap;
};

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--recipe default|parity] [--epochs N] [--threads N] "
            "[--seed N] [--data DIR] [--dot FILE] [--csv FILE] [--plot FILE] [--distributed] "
            "[--no-overlap]\n", prog);
    return 2;
}

static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.recipe = "default", .data_dir = NULL,
                          .dot_path = "fashion_mnist.dot", .epochs = 0, .seed = 42};
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--help") == 0) {
            usage(argv[0]);
            return 1;
        }
        if (strcmp(arg, "--distributed") == 0 || strcmp(arg, "--no-overlap") == 0) {
            *(arg[2] == 'd' ? &o->distributed : &o->no_overlap) = true;
            i--; /* a flag: no value */
            continue;
        }
        if (value == NULL)
            return usage(argv[0]);
        if (strcmp(arg, "--recipe") == 0)
            o->recipe = value;
        else if (strcmp(arg, "--epochs") == 0)
            o->epochs = atoi(value);
        else if (strcmp(arg, "--threads") == 0)
            o->threads = atoi(value);
        else if (strcmp(arg, "--seed") == 0)
            o->seed = strtoull(value, NULL, 10);
        else if (strcmp(arg, "--data") == 0)
            o->data_dir = value;
        else if (strcmp(arg, "--dot") == 0)
            o->dot_path = value;
        else if (strcmp(arg, "--csv") == 0)
            o->csv_path = value;
        else if (strcmp(arg, "--plot") == 0)
            o->plot_path = value;
        else
            return usage(argv[0]);
    }
    if (strcmp(o->recipe, "default") != 0 && strcmp(o->recipe, "parity") != 0)
        return usage(argv[0]);
    return 0;
}

/* Standardises pixels (already in [0, 1]) with the mean and deviation of the first
 * `n_fit` training images (those trained on). */
static void standardise(dg_dataset *train, dg_dataset *test, int64_t n_fit)
{
    int64_t n = n_fit * train->rows * train->cols;
    double sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += train->images[i];
        sum_sq += (double)train->images[i] * train->images[i];
    }
    double mean = sum / (double)n, std = sqrt(sum_sq / (double)n - mean * mean);
    dg_dataset *sets[2] = {train, test};
    for (int s = 0; s < 2; s++) {
        int64_t m = sets[s]->count * sets[s]->rows * sets[s]->cols;
        for (int64_t i = 0; i < m; i++)
            sets[s]->images[i] = (float)((sets[s]->images[i] - mean) / std);
    }
}

static int fail(dg_graph *g, const char *what)
{
    fprintf(stderr, "fashion_mnist: %s: %s\n", what, g ? dg_graph_error(g) : "out of memory");
    return 1;
}

int main(int argc, char **argv)
{
    struct options o;
    int parsed = parse(argc, argv, &o);
    if (parsed != 0)
        return parsed == 1 ? 0 : 2; /* --help, or a usage error */
    dg_dist *dist = NULL;
    if (o.distributed) {
        dg_dist_options dist_opts = DG_DIST_DEFAULTS;
        dist_opts.no_overlap = o.no_overlap;
        dist = dg_dist_init(&argc, &argv, &dist_opts);
        if (dist == NULL || dg_dist_status(dist) != DG_OK) {
            fprintf(stderr, "fashion_mnist: %s\n", dist ? dg_dist_error(dist) : "out of memory");
            return 1;
        }
    }
    bool rank0 = dg_dist_rank(dist) == 0; /* reports and writes files */
    bool parity = strcmp(o.recipe, "parity") == 0;
    int epochs = o.epochs > 0 ? o.epochs : (parity ? 5 : 16);

    dg_dataset train, test;
    if (dg_fashion_mnist_load(o.data_dir, 1.0f / 255.0f, &train, &test) != DG_OK) {
        fprintf(stderr, "fashion_mnist: %s\n(install Debian's dataset-fashion-mnist, or pass "
                "--data DIR)\n", dg_dataset_error(&train));
        return 1;
    }
    /* The last 5,000 training images are held out for validation: the test set is looked
     * at once, at the end. */
    const int64_t n_val = train.count > 10000 ? 5000 : train.count / 10;
    const int64_t n_fit = train.count - n_val;
    if (!parity)
        standardise(&train, &test, n_fit);
    int64_t pixels = train.rows * train.cols;

    /* The model. */
    dg_rng rng;
    dg_rng_seed(&rng, o.seed);
    dg_graph *g = dg_graph_new();
    if (g == NULL)
        return fail(g, "graph");
    if (o.threads > 0)
        dg_graph_set_threads(g, o.threads);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){128, pixels});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){128});
    dg_node *h, *logits;
    if (parity) {
        h = dg_dense(g, x, 256, DG_ACT_RELU, "fc1", &rng);
        h = dg_dense(g, h, 128, DG_ACT_RELU, "fc2", &rng);
        logits = dg_dense(g, h, 10, DG_ACT_NONE, "fc3", &rng);
    } else {
        dg_node *key = dg_dropout_key(g);
        h = dg_dropout(g, dg_dense(g, x, 512, DG_ACT_RELU, "fc1", &rng), key, 0.2f);
        h = dg_dropout(g, dg_dense(g, h, 256, DG_ACT_RELU, "fc2", &rng), key, 0.2f);
        logits = dg_dense(g, h, 10, DG_ACT_NONE, "fc3", &rng);
    }
    dg_name(logits, "logits");
    dg_node *loss = dg_softmax_cross_entropy(g, logits, y);
    dg_node *params[8], *grads[8];
    int n_params = 0;
    if (dg_grad_params(g, loss, 8, params, grads, &n_params) != DG_OK)
        return fail(g, "building the model");

    /* The optimizer. */
    int64_t steps_per_epoch = (n_fit + 127) / 128;
    dg_optim *opt;
    if (parity) {
        opt = dg_optim_new_adam(n_params, params, grads, &DG_ADAM_DEFAULTS);
    } else {
        dg_adam_config cfg = DG_ADAMW_DEFAULTS;
        cfg.lr = 1e-3;
        cfg.weight_decay = 1e-4;
        opt = dg_optim_new_adamw(n_params, params, grads, &cfg);
        dg_schedule cosine = dg_schedule_cosine(steps_per_epoch / 2, steps_per_epoch * epochs,
                                                1e-5);
        dg_optim_set_schedule(opt, &cosine);
    }
    if (dg_optim_status(opt) != DG_OK) {
        fprintf(stderr, "fashion_mnist: optimizer: %s\n", dg_optim_error(opt));
        return 1;
    }
    if (o.threads > 0)
        dg_optim_set_threads(opt, o.threads);

    if (rank0)
        printf("fashion_mnist: recipe %s, %d epochs, %lld training / %lld validation / %lld "
               "test images, %d threads, %d process%s\n", o.recipe, epochs, (long long)n_fit,
               (long long)n_val, (long long)test.count, dg_graph_threads(g),
               dg_dist_size(dist), dg_dist_size(dist) > 1 ? "es" : "");
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = logits};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = epochs;
    cfg.batch_size = 128;
    cfg.eval_batch_size = 1000;
    cfg.seed = o.seed;
    cfg.csv_path = o.csv_path;
    /* The plot goes next to the DOT file: <dir>/fashion_mnist_curves.svg. */
    char plot_path[1100];
    if (o.plot_path == NULL) {
        const char *slash = strrchr(o.dot_path, '/');
        int dir_len = slash ? (int)(slash - o.dot_path + 1) : 0;
        snprintf(plot_path, sizeof plot_path, "%.*sfashion_mnist_curves.svg", dir_len,
                 o.dot_path);
        o.plot_path = plot_path;
    }
    cfg.plot_path = o.plot_path;
    cfg.parallel = dg_dist_fit(dist); /* NULL without --distributed: one process */
    dg_fit_data train_data = {.x = train.images, .y = train.labels, .n = n_fit};
    dg_fit_data val_data = {.x = train.images + n_fit * pixels, .y = train.labels + n_fit,
                            .n = n_val};
    dg_fit_data test_data = {.x = test.images, .y = test.labels, .n = test.count};
    dg_epoch_stats *history = calloc((size_t)epochs, sizeof *history);
    if (history == NULL)
        return fail(NULL, "training");
    if (dg_fit(&model, opt, &train_data, &val_data, &cfg, history) != DG_OK)
        return fail(g, "training");
    if (rank0)
        printf("training curves: %s\n", o.plot_path);
    dg_epoch_stats test_stats;
    if (dg_evaluate(&model, &test_data, &cfg, &test_stats) != DG_OK)
        return fail(g, "testing");

    /* Each layer a box, its backward pass one box: readable at a glance. */
    dg_dot_options dot = DG_DOT_DEFAULTS;
    dot.collapse_backward = true;
    if (rank0 && dg_graph_dump_dot_file_ex(g, o.dot_path, &dot) == DG_OK) {
        printf("training graph: %s", o.dot_path);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "command -v dot >/dev/null 2>&1 && dot -Tsvg '%s' -o '%s.svg'",
                 o.dot_path, o.dot_path);
        /* The path goes inside single quotes: one holding a quote is not handed to a shell. */
        if (strlen(o.dot_path) < 500 && strchr(o.dot_path, '\'') == NULL && system(cmd) == 0)
            printf(" and %s.svg", o.dot_path);
        printf("\n");
    }
    double seconds = 0, samples = 0;
    for (int e = 0; e < epochs; e++) {
        seconds += history[e].seconds;
        samples += (double)n_fit;
    }
    if (rank0) {
        printf("validation_accuracy %.4f\n", history[epochs - 1].val_accuracy);
        printf("test_loss %.4f\n", test_stats.loss);
        printf("test_accuracy %.4f\n", test_stats.accuracy);
        printf("train_samples_per_s %.0f\n", samples / seconds);
    }
    if (rank0 && dist != NULL) {
        dg_dist_stats ds = dg_dist_get_stats(dist);
        printf("dist_steps %lld\ndist_buckets_started_in_backward %lld/%lld\n"
               "dist_run_ms_per_step %.3f\ndist_wait_ms_per_step %.3f\n",
               (long long)ds.steps, (long long)ds.buckets_early, (long long)ds.buckets,
               1e3 * ds.run_s / (double)ds.steps, 1e3 * ds.wait_s / (double)ds.steps);
    }
    free(history);
    dg_optim_free(opt);
    dg_graph_free(g);
    dg_dataset_free(&train);
    dg_dataset_free(&test);
    dg_dist_free(dist);
    return 0;
}
