/*
 * A small CNN on Fashion-MNIST (Debian's dataset-fashion-mnist): the fixed parity recipe that
 * is compared with PyTorch, and a strong recipe (`--recipe strong`).
 *
 *   build/examples/fashion_cnn [--recipe parity|strong] [--epochs N] [--threads N] [--seed N]
 *                              [--data DIR] [--limit N | --train-limit N] [--val N]
 *                              [--augment 0|1]
 *
 * Parity recipe (the default):
 *   conv(1->16, 3x3, pad 1) + ReLU + maxpool 2   [N, 16, 14, 14]
 *   conv(16->32, 3x3, pad 1) + ReLU + maxpool 2  [N, 32, 7, 7]
 *   flatten -> dense(1568->128) + ReLU -> dense(128->10), softmax cross-entropy
 *   Adam lr 1e-3, batch 64, 3 epochs, inputs scaled to [0, 1].
 *
 * Strong recipe (conv layers without bias: the batch norm after each has one):
 *   conv(1->32) + BN + ReLU + maxpool 2     [N, 32, 14, 14]
 *   conv(32->64) + BN + ReLU + maxpool 2    [N, 64, 7, 7]
 *   conv(64->128) + BN + ReLU + maxpool 2   [N, 128, 3, 3]
 *   flatten -> dropout 0.1 -> dense(1152->512) + ReLU -> dropout 0.25 -> dense(512->10)
 *   (every conv 3x3, pad 1); cross-entropy with label smoothing 0.1; AdamW lr 2e-3, weight
 *   decay 0.05, batch 128, 12 epochs (STRONG_EPOCHS; --epochs changes it): one epoch of
 *   linear warm-up, then cosine annealing to 0 at the end of the last epoch; training batches
 *   augmented (random crop with 1 pixel of zero padding, horizontal flip with probability 0.5;
 *   dg_augment; --augment 0 turns it off). The knobs (--dropout-conv, --dropout-fc,
 *   --smoothing, --lr, --weight-decay, --crop, --flip, --fc) change these defaults. The
 *   earlier recipe (dropout 0.25/0.5, no smoothing, crop 2, fc 256, 10 epochs) under-fitted:
 *   test 0.9125; this one reached val 0.9394 / test 0.9319 (docs/performance.md).
 *
 * The last --val (5000) training images are held out for validation (reported each epoch);
 * the model trains on the rest (--limit N: only the first N of those, for a quick run). The
 * test set is evaluated once, at the end. Ends with the lines `test_accuracy 0.XXXX` and
 * `train_samples_per_s N` (training examples per second of training, validation excluded).
 * With label smoothing the printed losses are the smoothed loss (its floor is above 0).
 */
#include <dagrad.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The strong recipe's defaults; its length is sized to ~8 minutes of training at 2 threads on
 * a quiet reference machine (docs/performance.md), inside the 10-minute budget. */
enum { STRONG_EPOCHS = 12, STRONG_CROP = 1, STRONG_FC = 512 };
#define STRONG_DROPOUT_CONV 0.1
#define STRONG_DROPOUT_FC 0.25
#define STRONG_SMOOTHING 0.1
#define STRONG_LR 2e-3
#define STRONG_WEIGHT_DECAY 0.05
#define STRONG_FLIP 0.5

struct options {
    const char *data_dir;
    bool strong, augment;
    int epochs, threads;
    int64_t limit, val;
    uint64_t seed;
    /* strong-recipe knobs (defaults in parse) */
    double dropout_conv, dropout_fc, smoothing, lr, weight_decay, flip;
    int crop, fc_width;
};

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--recipe parity|strong] [--epochs N] [--threads N] [--seed N] "
            "[--data DIR] [--limit N | --train-limit N] [--val N] [--augment 0|1]\n"
            "  strong recipe: [--dropout-conv P] [--dropout-fc P] [--smoothing E] [--lr LR]\n"
            "                 [--weight-decay WD] [--crop PIXELS] [--flip P] [--fc N]\n", prog);
    return 2;
}

static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.data_dir = NULL, .epochs = 0, .seed = 42,
                          .val = 5000, .augment = true, .dropout_conv = STRONG_DROPOUT_CONV,
                          .dropout_fc = STRONG_DROPOUT_FC, .smoothing = STRONG_SMOOTHING,
                          .lr = STRONG_LR, .weight_decay = STRONG_WEIGHT_DECAY,
                          .flip = STRONG_FLIP, .crop = STRONG_CROP, .fc_width = STRONG_FC};
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
        else if (strcmp(arg, "--recipe") == 0 && (strcmp(value, "parity") == 0 ||
                                                   strcmp(value, "strong") == 0))
            o->strong = strcmp(value, "strong") == 0;
        else if (strcmp(arg, "--augment") == 0)
            o->augment = atoi(value) != 0;
        else if (strcmp(arg, "--limit") == 0 || strcmp(arg, "--train-limit") == 0)
            o->limit = atoll(value);
        else if (strcmp(arg, "--val") == 0)
            o->val = atoll(value);
        else if (strcmp(arg, "--dropout-conv") == 0)
            o->dropout_conv = atof(value);
        else if (strcmp(arg, "--dropout-fc") == 0)
            o->dropout_fc = atof(value);
        else if (strcmp(arg, "--smoothing") == 0)
            o->smoothing = atof(value);
        else if (strcmp(arg, "--lr") == 0)
            o->lr = atof(value);
        else if (strcmp(arg, "--weight-decay") == 0)
            o->weight_decay = atof(value);
        else if (strcmp(arg, "--flip") == 0)
            o->flip = atof(value);
        else if (strcmp(arg, "--crop") == 0)
            o->crop = atoi(value);
        else if (strcmp(arg, "--fc") == 0)
            o->fc_width = atoi(value);
        else
            return usage(argv[0]);
    }
    if (o->epochs == 0)
        o->epochs = o->strong ? STRONG_EPOCHS : 3;
    bool ok = o->epochs > 0 && o->val >= 0 && o->dropout_conv >= 0 && o->dropout_conv < 1 &&
              o->dropout_fc >= 0 && o->dropout_fc < 1 && o->smoothing >= 0 &&
              o->smoothing < 1 && o->lr > 0 && o->weight_decay >= 0 && o->flip >= 0 &&
              o->flip <= 1 && o->crop >= 0 && o->fc_width > 0;
    return ok ? 0 : usage(argv[0]);
}

/* conv + ReLU + maxpool, twice; dense + ReLU; dense: the network compared with PyTorch. */
static dg_node *parity_model(dg_graph *g, dg_node *x, dg_rng *rng)
{
    dg_conv2d_params pad1 = DG_CONV2D_DEFAULTS;
    pad1.padding[0] = pad1.padding[1] = 1;
    dg_node *h = dg_conv2d_layer(g, x, 16, 3, 3, &pad1, true, DG_ACT_RELU, "conv1", rng);
    h = dg_max_pool2d_layer(g, h, 2);
    h = dg_conv2d_layer(g, h, 32, 3, 3, &pad1, true, DG_ACT_RELU, "conv2", rng);
    h = dg_max_pool2d_layer(g, h, 2);
    h = dg_dense(g, dg_flatten(g, h), 128, DG_ACT_RELU, "fc1", rng);
    return dg_dense(g, h, 10, DG_ACT_NONE, "fc2", rng);
}

/* conv 3x3 (no bias) + batch norm + ReLU. */
static dg_node *conv_bn_relu(dg_graph *g, dg_node *x, int64_t channels, const char *name,
                             dg_rng *rng)
{
    dg_conv2d_params pad1 = DG_CONV2D_DEFAULTS;
    pad1.padding[0] = pad1.padding[1] = 1;
    char bn_name[32];
    snprintf(bn_name, sizeof bn_name, "%s.bn", name);
    dg_node *h = dg_conv2d_layer(g, x, channels, 3, 3, &pad1, false, DG_ACT_NONE, name, rng);
    h = dg_batch_norm_layer(g, h, 0.1f, 1e-5f, bn_name, NULL, NULL);
    return dg_relu(g, h);
}

static dg_node *strong_model(dg_graph *g, dg_node *x, const struct options *o, dg_rng *rng)
{
    dg_node *key = dg_dropout_key(g);
    dg_node *h = dg_max_pool2d_layer(g, conv_bn_relu(g, x, 32, "conv1", rng), 2);
    h = dg_max_pool2d_layer(g, conv_bn_relu(g, h, 64, "conv2", rng), 2);
    h = dg_max_pool2d_layer(g, conv_bn_relu(g, h, 128, "conv3", rng), 2);
    h = dg_flatten(g, h);
    if (o->dropout_conv > 0)
        h = dg_dropout(g, h, key, (float)o->dropout_conv);
    h = dg_dense(g, h, o->fc_width, DG_ACT_RELU, "fc1", rng);
    if (o->dropout_fc > 0)
        h = dg_dropout(g, h, key, (float)o->dropout_fc);
    return dg_dense(g, h, 10, DG_ACT_NONE, "fc2", rng);
}

/* Cross-entropy against labels smoothed by e: (1 - e) CE(logits, y) + e mean over classes of
 * -log_softmax(logits), averaged over the batch (e = 0: plain cross-entropy). */
static dg_node *smoothed_cross_entropy(dg_graph *g, dg_node *logits, dg_node *y, double e)
{
    dg_node *ce = dg_softmax_cross_entropy(g, logits, y);
    if (e <= 0)
        return ce;
    dg_node *uniform = dg_neg(g, dg_mean(g, dg_log_softmax(g, logits, 1), 0, NULL, false));
    return dg_add(g, dg_scale(g, ce, (float)(1.0 - e)), dg_scale(g, uniform, (float)e));
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
    const int batch = o.strong ? 128 : 64;
    dg_rng rng;
    dg_rng_seed(&rng, o.seed);
    dg_graph *g = dg_graph_new();
    if (g == NULL)
        return fail(g, "graph");
    if (o.threads > 0)
        dg_graph_set_threads(g, o.threads);
    dg_node *x = dg_input(g, "x", 4, (int64_t[]){batch, 1, train.rows, train.cols});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){batch});
    dg_node *logits = o.strong ? strong_model(g, x, &o, &rng) : parity_model(g, x, &rng);
    dg_node *loss = o.strong ? smoothed_cross_entropy(g, logits, y, o.smoothing)
                             : dg_softmax_cross_entropy(g, logits, y);
    enum { MAX_PARAMS = 32 };
    dg_node *params[MAX_PARAMS], *grads[MAX_PARAMS];
    int n_params = 0;
    if (dg_grad_params(g, loss, MAX_PARAMS, params, grads, &n_params) != DG_OK)
        return fail(g, "building the model");

    int64_t steps_per_epoch = (n_train + batch - 1) / batch;
    dg_optim *opt;
    if (o.strong) {
        dg_adam_config adamw = DG_ADAMW_DEFAULTS;
        adamw.lr = o.lr;
        adamw.weight_decay = o.weight_decay;
        opt = dg_optim_new_adamw(n_params, params, grads, &adamw);
        dg_schedule cosine = dg_schedule_cosine(steps_per_epoch,
                                                steps_per_epoch * o.epochs + 1, 0.0);
        if (dg_optim_status(opt) == DG_OK)
            dg_optim_set_schedule(opt, &cosine);
    } else {
        opt = dg_optim_new_adam(n_params, params, grads, &DG_ADAM_DEFAULTS);
    }
    printf("fashion_cnn: %s recipe, %d epochs, %lld training / %lld validation / %lld "
           "test images, %d threads\n", o.strong ? "strong" : "parity", o.epochs,
           (long long)n_train, (long long)o.val, (long long)test.count, dg_graph_threads(g));
    if (o.strong)
        printf("strong: dropout %g/%g, smoothing %g, lr %g, weight decay %g, crop %d, flip %g, "
               "fc %d\n", o.dropout_conv, o.dropout_fc, o.smoothing, o.lr, o.weight_decay,
               o.crop, o.flip, o.fc_width);
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = logits};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = o.epochs;
    cfg.batch_size = batch;
    if (o.strong)
        cfg.augment = (dg_augment){.enable = o.augment, .channels = 1, .height = train.rows,
                                   .width = train.cols, .crop_padding = o.crop,
                                   .flip_probability = o.flip};
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
