/* Same seed and thread count give bitwise-identical training: losses and parameters. */
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "test_util.h"

enum { N = 600, FEATURES = 64, CLASSES = 5, HIDDEN = 96 };

struct run {
    double losses[3];
    float *weights; /* first layer after training */
};

static void train_once(int threads, uint64_t seed, struct run *out)
{
    static float x_train[N * FEATURES];
    static int32_t y_train[N];
    dg_test_rng data_rng;
    dg_test_rng_seed(&data_rng, 99);
    dg_test_fill_uniform(&data_rng, x_train, N * FEATURES, 0.0f, 1.0f);
    for (int i = 0; i < N; i++)
        y_train[i] = (int32_t)(dg_test_rng_next(&data_rng) % CLASSES);

    dg_rng rng;
    dg_rng_seed(&rng, seed);
    dg_graph *g = dg_graph_new();
    dg_graph_set_threads(g, threads);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){50, FEATURES});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){50});
    dg_node *h = dg_dense(g, x, HIDDEN, DG_ACT_GELU, "fc1", &rng);
    h = dg_dropout(g, h, dg_dropout_key(g), 0.2f);
    h = dg_dense(g, h, HIDDEN, DG_ACT_TANH, "fc2", &rng);
    dg_node *logits = dg_dense(g, h, CLASSES, DG_ACT_NONE, "fc3", &rng);
    dg_node *loss = dg_softmax_cross_entropy(g, logits, y);
    dg_node *params[8], *grads[8];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(g, loss, 8, params, grads, &n), DG_OK);
    dg_optim *opt = dg_optim_new_adamw(n, params, grads, &DG_ADAMW_DEFAULTS);
    dg_optim_set_threads(opt, threads);
    dg_optim_set_clip_norm(opt, 1.0, 2.0);
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = logits};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 3;
    cfg.batch_size = 50;
    cfg.seed = seed;
    cfg.verbose = 0;
    dg_fit_data train = {.x = x_train, .y = y_train, .n = N};
    dg_epoch_stats history[3];
    ck_assert_int_eq(dg_fit(&model, opt, &train, NULL, &cfg, history), DG_OK);
    for (int e = 0; e < 3; e++)
        out->losses[e] = history[e].loss;
    dg_node *w = dg_graph_find(g, "fc1.weight");
    out->weights = malloc((size_t)dg_node_numel(w) * sizeof(float));
    memcpy(out->weights, dg_param_data(w), (size_t)dg_node_numel(w) * sizeof(float));
    dg_optim_free(opt);
    dg_graph_free(g);
}

START_TEST(same_seed_same_threads_same_bits)
{
    for (int threads = 1; threads <= 2; threads++) {
        struct run a, b;
        train_once(threads, 5, &a);
        train_once(threads, 5, &b);
        ck_assert_mem_eq(a.losses, b.losses, sizeof a.losses);
        ck_assert_mem_eq(a.weights, b.weights, FEATURES * HIDDEN * sizeof(float));
        free(a.weights);
        free(b.weights);
    }
}
END_TEST

START_TEST(another_seed_changes_the_run)
{
    struct run a, b;
    train_once(1, 5, &a);
    train_once(1, 6, &b);
    ck_assert(memcmp(a.weights, b.weights, FEATURES * HIDDEN * sizeof(float)) != 0);
    free(a.weights);
    free(b.weights);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("determinism");
    TCase *tc = tcase_create("determinism");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, same_seed_same_threads_same_bits);
    tcase_add_test(tc, another_seed_changes_the_run);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
