/* The Keras SimpleNet in C trains on a learnable synthetic task to >= 95% accuracy. */
#include <math.h>
#include <stdlib.h>

#include "dagrad.h"
#include "test_util.h"

enum { N = 1000, FEATURES = 10 };

static void make_data(uint64_t seed, float *x, float *y)
{
    dg_rng rng;
    dg_rng_seed(&rng, seed);
    float w_true[FEATURES];
    for (int j = 0; j < FEATURES; j++)
        w_true[j] = 2.0f * dg_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < N; i++) {
        float dot = 0.0f;
        for (int j = 0; j < FEATURES; j++) {
            x[i * FEATURES + j] = 2.0f * dg_rng_uniform(&rng) - 1.0f;
            dot += x[i * FEATURES + j] * w_true[j];
        }
        y[i] = dot > 0.0f ? 1.0f : 0.0f;
    }
}

START_TEST(simplenet_learns)
{
    static float x_train[N * FEATURES], y_train[N];
    make_data(7, x_train, y_train);
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){32, FEATURES});
    dg_node *y = dg_input(g, "y", 2, (int64_t[]){32, 1});
    dg_node *h = dg_dense(g, x, 10, DG_ACT_RELU, "dense1", &rng);
    h = dg_dense(g, h, 10, DG_ACT_RELU, "dense2", &rng);
    dg_node *p = dg_dense(g, h, 1, DG_ACT_SIGMOID, "out", &rng);
    dg_node *loss = dg_bce(g, p, y);
    dg_node *params[8], *grads[8];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(g, loss, 8, params, grads, &n), DG_OK);
    ck_assert_int_eq(n, 6);
    dg_optim *adam = dg_optim_new_adam(n, params, grads, &DG_ADAM_DEFAULTS);
    ck_assert_int_eq(dg_optim_status(adam), DG_OK);
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = p};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 40;
    cfg.verbose = 0;
    cfg.seed = 3;
    dg_fit_data train = {.x = x_train, .y = y_train, .n = N};
    dg_epoch_stats history[40];
    ck_assert_int_eq(dg_fit(&model, adam, &train, NULL, &cfg, history), DG_OK);
    ck_assert_double_lt(history[39].loss, history[0].loss);
    dg_epoch_stats final;
    ck_assert_int_eq(dg_evaluate(&model, &train, NULL, &final), DG_OK);
    ck_assert_double_ge(final.accuracy, 0.95);
    ck_assert_double_lt(final.loss, 0.2);
    dg_optim_free(adam);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("simplenet");
    TCase *tc = tcase_create("simplenet");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, simplenet_learns);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
