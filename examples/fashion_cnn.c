/*
 * A small CNN on Fashion-MNIST (Debian's dataset-fashion-mnist): the fixed parity recipe that
 * is compared with PyTorch.
 *
 *   build/examples/fashion_cnn [--epochs N] [--threads N] [--seed N] [--data DIR]
 *                              [--limit N] [--val N]
 *
 *   conv(1->16, 3x3, pad 1) + ReLU + maxpool 2   [N, 16, 14, 14]
 *   conv(16->32, 3x3, pad 1) + ReLU + maxpool 2  [N, 32, 7, 7]
 *   flatten -> dense(1568->128) + ReLU -> dense(128->10), softmax cross-entropy
 *   Adam lr 1e-3, batch 64, 3 epochs, inputs scaled to [0, 1].
 *
 * The last --val (5000) training images are held out for validation (reported each epoch);
 * the model trains on the rest (--limit N: only the first N of those, for a quick run). The
 * test set is evaluated once, at the end. Ends with the lines `test_accuracy 0.XXXX` and
 * `train_samples_per_s N` (training examples per second of training, validation excluded).
 */
#include <dagrad.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
    const char *data_dir;
    int epochs, threads;
    int64_t limit, val;
    uint64_t seed;
};

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--epochs N] [--threads N] [--seed N] [--data DIR] [--limit N] "
            "[--val N]\n", prog);
    return 2;
}

static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.data_dir = NULL, .epochs = 3, .seed = 42,
                          .val = 5000};
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--help") == 0) {
            usage(argv[0]);
            return 1;
        }
        if (value == NULL)
            return usage(argv[0]);
        if (strcmp(arg, "--epochs") == 0)
            o->epochs = atoi(value);
        else if (strcmp(arg, "--threads") == 0)
            o->threads = atoi(value);
        else if (strcmp(arg, "--seed") == 0)
            o->seed = strtoull(value, NULL, 10);
        else if (strcmp(arg, "--data") == 0)
            o->data_dir = value;
        else if (strcmp(arg, "--limit") == 0)
            o->limit = atoll(value);
        else if (strcmp(arg, "--val") == 0)
            o->val = atoll(value);
        else
            return usage(argv[0]);
    }
    return o->epochs > 0 && o->val >= 0 ? 0 : usage(argv[0]);
}

static int fail(dg_graph *g, const char *what)
{
    fprintf(stderr, "fashion_cnn: %s: %s\n", what, g ? dg_graph_error(g) : "out of memory");
    return 1;
}

int main(int argc, char **argv)
{
    struct options o;
    int parsed = parse(argc, argv, &o);
    if (parsed != 0)
        return parsed == 1 ? 0 : 2;

    dg_dataset train, test;
    if (dg_fashion_mnist_load(o.data_dir, 1.0f / 255.0f, &train, &test) != DG_OK) {
        fprintf(stderr, "fashion_cnn: %s\n(install Debian's dataset-fashion-mnist, or pass "
                "--data DIR)\n", dg_dataset_error(&train));
        return 1;
    }
    const int64_t pixels = train.rows * train.cols;
    if (o.val >= train.count) {
        fprintf(stderr, "fashion_cnn: --val %lld leaves no training images\n",
                (long long)o.val);
        return 2;
    }
    int64_t n_train = train.count - o.val;
    if (o.limit > 0 && o.limit < n_train)
        n_train = o.limit;

    /* The model. */
    enum { BATCH = 64 };
    dg_rng rng;
    dg_rng_seed(&rng, o.seed);
    dg_graph *g = dg_graph_new();
    if (g == NULL)
        return fail(g, "graph");
    if (o.threads > 0)
        dg_graph_set_threads(g, o.threads);
    dg_node *x = dg_input(g, "x", 4, (int64_t[]){BATCH, 1, train.rows, train.cols});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){BATCH});
    dg_conv2d_params pad1 = DG_CONV2D_DEFAULTS;
    pad1.padding[0] = pad1.padding[1] = 1;
    dg_node *h = dg_conv2d_layer(g, x, 16, 3, 3, &pad1, true, DG_ACT_RELU, "conv1", &rng);
    h = dg_max_pool2d_layer(g, h, 2);
    h = dg_conv2d_layer(g, h, 32, 3, 3, &pad1, true, DG_ACT_RELU, "conv2", &rng);
    h = dg_max_pool2d_layer(g, h, 2);
    h = dg_dense(g, dg_flatten(g, h), 128, DG_ACT_RELU, "fc1", &rng);
    dg_node *logits = dg_dense(g, h, 10, DG_ACT_NONE, "fc2", &rng);
    dg_node *loss = dg_softmax_cross_entropy(g, logits, y);
    dg_node *params[8], *grads[8];
    int n_params = 0;
    if (dg_grad_params(g, loss, 8, params, grads, &n_params) != DG_OK)
        return fail(g, "building the model");

    dg_optim *opt = dg_optim_new_adam(n_params, params, grads, &DG_ADAM_DEFAULTS);
    if (dg_optim_status(opt) != DG_OK) {
        fprintf(stderr, "fashion_cnn: optimizer: %s\n", dg_optim_error(opt));
        return 1;
    }
    if (o.threads > 0)
        dg_optim_set_threads(opt, o.threads);

    printf("fashion_cnn: parity recipe, %d epochs, %lld training / %lld validation / %lld "
           "test images, %d threads\n", o.epochs, (long long)n_train, (long long)o.val,
           (long long)test.count, dg_graph_threads(g));
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = logits};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = o.epochs;
    cfg.batch_size = BATCH;
    cfg.eval_batch_size = 500;
    cfg.seed = o.seed;
    int64_t val_start = train.count - o.val;
    dg_fit_data train_data = {.x = train.images, .y = train.labels, .n = n_train};
    dg_fit_data val_data = {.x = train.images + val_start * pixels,
                            .y = train.labels + val_start, .n = o.val};
    dg_fit_data test_data = {.x = test.images, .y = test.labels, .n = test.count};
    dg_epoch_stats *history = calloc((size_t)o.epochs, sizeof *history);
    if (history == NULL)
        return fail(NULL, "training");
    if (dg_fit(&model, opt, &train_data, o.val > 0 ? &val_data : NULL, &cfg, history) != DG_OK)
        return fail(g, "training");
    dg_epoch_stats final;
    dg_fit_config eval_cfg = cfg;
    eval_cfg.batch_size = 500;
    if (dg_evaluate(&model, &test_data, &eval_cfg, &final) != DG_OK)
        return fail(g, "testing");

    double seconds = 0;
    for (int e = 0; e < o.epochs; e++)
        seconds += history[e].seconds;
    if (o.val > 0)
        printf("val_accuracy %.4f\n", history[o.epochs - 1].val_accuracy);
    printf("test_loss %.4f\n", final.loss);
    printf("test_accuracy %.4f\n", final.accuracy);
    printf("train_samples_per_s %.0f\n", (double)n_train * o.epochs / seconds);
    free(history);
    dg_optim_free(opt);
    dg_graph_free(g);
    dg_dataset_free(&train);
    dg_dataset_free(&test);
    return 0;
}
