/*
 * Checkpoints with dg_fit: train, checkpoint every epoch and keep the best by validation loss,
 * stop early; then, as a new process would, build the model again and resume from the file.
 *
 *   build/examples/checkpoint_resume [dir]     (files go to dir, default /tmp)
 *   build/tools/dagrad-inspect /tmp/latest.safetensors
 */
#include <dagrad.h>
#include <stdio.h>
#include <stdlib.h>

enum { N = 800, VAL = 200, FEATURES = 8 };

struct model {
    dg_graph *g;
    dg_model m;
    dg_optim *opt;
};

/* 8 -> 32 (relu, dropout 0.2) -> 1 (sigmoid), AdamW with a cosine schedule, clipped. */
static int build(struct model *md, uint64_t init_seed)
{
    dg_rng rng;
    dg_rng_seed(&rng, init_seed);
    dg_graph *g = md->g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){32, FEATURES});
    dg_node *y = dg_input(g, "y", 2, (int64_t[]){32, 1});
    dg_node *h = dg_dense(g, x, 32, DG_ACT_RELU, "hidden", &rng);
    h = dg_dropout(g, h, dg_dropout_key(g), 0.2f);
    dg_node *p = dg_dense(g, h, 1, DG_ACT_SIGMOID, "out", &rng);
    dg_node *loss = dg_bce(g, p, y);
    dg_node *params[4], *grads[4];
    int n = 0;
    if (dg_grad_params(g, loss, 4, params, grads, &n) != DG_OK) {
        fprintf(stderr, "%s\n", dg_graph_error(g));
        return 1;
    }
    dg_adam_config cfg = DG_ADAMW_DEFAULTS;
    cfg.lr = 0.01;
    md->opt = dg_optim_new_adamw(n, params, grads, &cfg);
    dg_schedule cosine = dg_schedule_cosine(25, 500, 1e-4);
    dg_optim_set_schedule(md->opt, &cosine);
    dg_optim_set_clip_norm(md->opt, 1.0, 2.0);
    md->m = (dg_model){.graph = g, .x = x, .y = y, .loss = loss, .output = p};
    return dg_optim_status(md->opt) != DG_OK;
}

static void release(struct model *md)
{
    dg_optim_free(md->opt);
    dg_graph_free(md->g);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char latest[512], best[512];
    snprintf(latest, sizeof latest, "%s/latest.safetensors", dir);
    snprintf(best, sizeof best, "%s/best.safetensors", dir);

    /* y = 1 when the first four features sum above the last four. */
    static float x[(N + VAL) * FEATURES], y[N + VAL];
    dg_rng data_rng;
    dg_rng_seed(&data_rng, 42);
    for (int i = 0; i < N + VAL; i++) {
        float s = 0;
        for (int j = 0; j < FEATURES; j++) {
            x[i * FEATURES + j] = 2.0f * dg_rng_uniform(&data_rng) - 1.0f;
            s += j < 4 ? x[i * FEATURES + j] : -x[i * FEATURES + j];
        }
        y[i] = s > 0;
    }
    dg_fit_data train = {.x = x, .y = y, .n = N};
    dg_fit_data val = {.x = x + N * FEATURES, .y = y + N, .n = VAL};

    struct model a;
    if (build(&a, 1))
        return 1;
    dg_fit_state state = {0};
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.epochs = 6;
    cfg.seed = 7;
    cfg.state = &state;
    cfg.checkpoint_path = latest;
    cfg.checkpoint_every = 1;
    cfg.best_path = best;
    cfg.patience = 3;
    printf("-- training 6 epochs, checkpointing to %s\n", latest);
    if (dg_fit(&a.m, a.opt, &train, &val, &cfg, NULL) != DG_OK) {
        fprintf(stderr, "%s\n", dg_graph_error(a.g));
        return 1;
    }
    printf("epoch %d, best val loss %.4f at epoch %d%s\n", state.epoch, state.best_loss,
           state.best_epoch, state.stopped_early ? " (stopped early)" : "");
    release(&a);

    /* As a new process would: same model and optimizer, other initial weights, resumed. */
    struct model b;
    if (build(&b, 999))
        return 1;
    dg_fit_config more = DG_FIT_DEFAULTS;
    more.epochs = 2;
    more.seed = 7;
    more.resume_path = latest;
    more.checkpoint_path = latest;
    printf("-- resuming from %s for 2 more epochs\n", latest);
    if (dg_fit(&b.m, b.opt, &train, &val, &more, NULL) != DG_OK) {
        fprintf(stderr, "%s\n", dg_graph_error(b.g));
        return 1;
    }
    dg_epoch_stats final;
    dg_evaluate(&b.m, &val, NULL, &final);
    printf("validation accuracy %.3f after %lld optimizer steps\n", final.accuracy,
           (long long)dg_optim_step_count(b.opt));
    release(&b);
    return 0;
}
