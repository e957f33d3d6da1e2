/*
 * The Keras tutorial model in C:
 *
 *   class SimpleNet(tf.keras.Model):   # Dense(10, relu) -> Dense(10, relu) -> Dense(1, sigmoid)
 *   model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
 *   model.fit(x_train, y_train, epochs=10, batch_size=32)      # x: 1000x10, y: 1000x1
 *
 * On a synthetic task: y = 1 when x·w_true > 0 for a fixed random w_true.
 *   build/examples/simplenet [epochs] [seed]
 */
#include <dagrad.h>
#include <stdio.h>
#include <stdlib.h>

enum { N = 1000, FEATURES = 10 };

/* x uniform in [-1, 1); y = [x·w_true > 0]. */
static void make_data(dg_rng *rng, float *x, float *y)
{
    float w_true[FEATURES];
    for (int j = 0; j < FEATURES; j++)
        w_true[j] = 2.0f * dg_rng_uniform(rng) - 1.0f;
    for (int i = 0; i < N; i++) {
        float dot = 0.0f;
        for (int j = 0; j < FEATURES; j++) {
            x[i * FEATURES + j] = 2.0f * dg_rng_uniform(rng) - 1.0f;
            dot += x[i * FEATURES + j] * w_true[j];
        }
        y[i] = dot > 0.0f ? 1.0f : 0.0f;
    }
}

int main(int argc, char **argv)
{
    int epochs = argc > 1 ? atoi(argv[1]) : 10;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 42;
    static float x_train[N * FEATURES], y_train[N];
    dg_rng rng;
    dg_rng_seed(&rng, seed);
    make_data(&rng, x_train, y_train);

    /* The model: three dense layers, binary cross-entropy. */
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){32, FEATURES});
    dg_node *y = dg_input(g, "y", 2, (int64_t[]){32, 1});
    dg_node *h = dg_dense(g, x, 10, DG_ACT_RELU, "dense1", &rng);
    h = dg_dense(g, h, 10, DG_ACT_RELU, "dense2", &rng);
    dg_node *p = dg_dense(g, h, 1, DG_ACT_SIGMOID, "out", &rng);
    dg_node *loss = dg_bce(g, p, y);

    /* compile(optimizer='adam'): gradients of every parameter, and Adam over them. */
    dg_node *params[8], *grads[8];
    int n_params = 0;
    dg_grad_params(g, loss, 8, params, grads, &n_params);
    if (dg_graph_status(g) != DG_OK) {
        fprintf(stderr, "simplenet: %s\n", dg_graph_error(g));
        return 1;
    }
    dg_optim *adam = dg_optim_new_adam(n_params, params, grads, &DG_ADAM_DEFAULTS);

    /* fit(x_train, y_train, epochs=10, batch_size=32) */
    dg_model model = {.graph = g, .x = x, .y = y, .loss = loss, .output = p};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = epochs;
    cfg.batch_size = 32;
    cfg.seed = seed;
    dg_fit_data train = {.x = x_train, .y = y_train, .n = N};
    dg_status st = dg_fit(&model, adam, &train, NULL, &cfg, NULL);
    if (st != DG_OK) {
        fprintf(stderr, "simplenet: %s\n", dg_graph_error(g));
        return 1;
    }

    dg_epoch_stats final;
    if (dg_evaluate(&model, &train, NULL, &final) != DG_OK) {
        fprintf(stderr, "simplenet: %s\n", dg_graph_error(g));
        return 1;
    }
    printf("final loss %.4f accuracy %.4f\n", final.loss, final.accuracy);
    dg_optim_free(adam);
    dg_graph_free(g);
    return 0;
}
