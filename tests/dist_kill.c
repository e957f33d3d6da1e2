/*
 * A rank that dies or fails mid-training must end the whole job, not leave the others waiting
 * in a collective. `dist_kill kill`: rank 1 kills itself (SIGKILL) on its third training
 * batch. `dist_kill error`: rank 1's step fails (its model.loss is per example, which dg_fit
 * refuses at the first run with more than one example), so dist ends every rank with a
 * message (MPI_Abort). Run by tests/dist_kill.sh under mpirun with a time limit; the job must
 * fail, and fast.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "dagrad.h"
#include "dagrad_dist.h"

static double die_on_third_batch(const float *output, const void *targets, int64_t batch,
                                 int64_t per_example, void *user)
{
    int *calls = user;
    if (++*calls == 3)
        raise(SIGKILL);
    return 0.0;
}

int main(int argc, char **argv)
{
    bool error_mode = argc > 1 && strcmp(argv[1], "error") == 0;
    dg_dist *dist = dg_dist_init(&argc, &argv, NULL);
    if (dist == NULL || dg_dist_status(dist) != DG_OK)
        return 2;
    enum { N = 256, FEATURES = 8 };
    static float x[N * FEATURES];
    static int32_t y[N];
    for (int i = 0; i < N * FEATURES; i++)
        x[i] = (float)((i * 37) % 11) / 11.0f;
    for (int i = 0; i < N; i++)
        y[i] = i % 2;
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    dg_graph *g = dg_graph_new();
    dg_node *xin = dg_input(g, "x", 2, (int64_t[]){1, FEATURES});
    dg_node *yin = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){1});
    dg_node *logits = dg_dense(g, xin, 2, DG_ACT_NONE, "fc", &rng);
    dg_node *loss = dg_softmax_cross_entropy(g, logits, yin);
    dg_node *params[2], *grads[2];
    int n = 0;
    if (dg_grad_params(g, loss, 2, params, grads, &n) != DG_OK)
        return 2;
    dg_sgd_config sgd = DG_SGD_DEFAULTS;
    dg_optim *opt = dg_optim_new_sgd(n, params, grads, &sgd);
    dg_model model = {.graph = g, .x = xin, .y = yin, .loss = loss, .output = logits};
    if (error_mode && dg_dist_rank(dist) == 1) /* [B]: one value at build time, 4 at run time */
        model.loss = dg_sum(g, logits, 1, (int[]){1}, false);
    int calls = 0;
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.batch_size = 8;
    cfg.epochs = 1000; /* far longer than the test's time limit, were nobody to end it */
    cfg.verbose = 0;
    cfg.parallel = dg_dist_fit(dist);
    if (!error_mode && dg_dist_rank(dist) == 1) {
        cfg.metric = die_on_third_batch;
        cfg.metric_user = &calls;
    }
    dg_fit_data data = {.x = x, .y = y, .n = N};
    dg_status st = dg_fit(&model, opt, &data, NULL, &cfg, NULL);
    fprintf(stderr, "rank %d: dg_fit returned %s\n", dg_dist_rank(dist), dg_status_str(st));
    dg_optim_free(opt);
    dg_graph_free(g);
    dg_dist_free(dist);
    return 0; /* reaching here at all is the failure the script detects */
}
