/* Resuming training: a second dg_fit call, and a new process loading a checkpoint, continue
 * bit for bit where the first run stopped (dropout, AdamW, a cosine schedule and clipping);
 * checkpoints every N epochs, the best one, early stopping; and an atomic save survives being
 * killed at random points. The new-process test runs this same binary again with "--child". */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dagrad.h"
#include "test_util.h"

enum { N = 103, VAL = 37, FEATURES = 6, CLASSES = 3, HIDDEN = 16, BATCH = 16, THREADS = 2 };

static const char *tmp_path(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("DG_TEST_BUILD_DIR");
    snprintf(buf, len, "%s/resume_%d_%s", dir ? dir : "/tmp", (int)getpid(), name);
    return buf;
}

/* Set in a "--child" process, where Check's asserts cannot report. */
static bool in_child = false;
#define NEED(cond)                                                                           \
    do {                                                                                     \
        if (in_child && !(cond)) {                                                           \
            fprintf(stderr, "child: %s failed\n", #cond);                                     \
            exit(3);                                                                         \
        } else if (!in_child) {                                                              \
            ck_assert(cond);                                                                 \
        }                                                                                    \
    } while (0)

struct run {
    dg_graph *g;
    dg_model model;
    dg_optim *opt;
    dg_node *params[8];
    int n_params;
    float x[N * FEATURES], vx[VAL * FEATURES];
    int32_t y[N], vy[VAL];
};

/* An MLP with dropout, AdamW with a cosine schedule and both clippings. `init_seed` draws the
 * initial weights (a resumed run starts from other weights: the checkpoint must replace them). */
static struct run *make_run(uint64_t init_seed)
{
    struct run *r = calloc(1, sizeof *r);
    dg_test_rng t;
    dg_test_rng_seed(&t, 7);
    dg_test_fill_uniform(&t, r->x, N * FEATURES, -1, 1);
    dg_test_fill_uniform(&t, r->vx, VAL * FEATURES, -1, 1);
    for (int i = 0; i < N + VAL; i++) {
        const float *row = i < N ? r->x + i * FEATURES : r->vx + (i - N) * FEATURES;
        int label = row[0] + row[1] > 0 ? (row[2] > 0 ? 0 : 1) : 2;
        if (i < N)
            r->y[i] = label;
        else
            r->vy[i - N] = label;
    }
    dg_rng rng;
    dg_rng_seed(&rng, init_seed);
    dg_graph *g = r->g = dg_graph_new();
    dg_graph_set_threads(g, THREADS);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){BATCH, FEATURES});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){BATCH});
    dg_node *h = dg_dense(g, x, HIDDEN, DG_ACT_RELU, "fc1", &rng);
    h = dg_dropout(g, h, dg_dropout_key(g), 0.3f);
    dg_node *logits = dg_dense(g, h, CLASSES, DG_ACT_NONE, "fc2", &rng);
    dg_node *loss = dg_softmax_cross_entropy(g, logits, y);
    dg_node *grads[8];
    NEED(dg_grad_params(g, loss, 8, r->params, grads, &r->n_params) == DG_OK);
    dg_adam_config cfg = DG_ADAMW_DEFAULTS;
    cfg.lr = 0.02;
    r->opt = dg_optim_new_adamw(r->n_params, r->params, grads, &cfg);
    dg_schedule cosine = dg_schedule_cosine(3, 30, 0.001);
    NEED(dg_optim_set_schedule(r->opt, &cosine) == DG_OK);
    NEED(dg_optim_set_clip_norm(r->opt, 0.5, 2.0) == DG_OK);
    NEED(dg_optim_set_clip_value(r->opt, 0.2) == DG_OK);
    NEED(dg_optim_set_threads(r->opt, THREADS) == DG_OK);
    r->model = (dg_model){.graph = g, .x = x, .y = y, .loss = loss, .output = logits};
    NEED(dg_graph_status(g) == DG_OK);
    return r;
}

static void free_run(struct run *r)
{
    dg_optim_free(r->opt);
    dg_graph_free(r->g);
    free(r);
}

static dg_fit_config base_config(void)
{
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.batch_size = BATCH; /* 103 = 6 * 16 + 7: a partial last batch */
    cfg.seed = 99;
    cfg.verbose = 0;
    return cfg;
}

static dg_status fit(struct run *r, dg_fit_config *cfg, dg_epoch_stats *history)
{
    dg_fit_data train = {.x = r->x, .y = r->y, .n = N};
    dg_fit_data val = {.x = r->vx, .y = r->vy, .n = VAL};
    dg_status st = dg_fit(&r->model, r->opt, &train, &val, cfg, history);
    if (st != DG_OK)
        fprintf(stderr, "fit: %s\n", dg_graph_error(r->g));
    return st;
}

static bool same_params(const struct run *a, const struct run *b)
{
    for (int i = 0; i < a->n_params; i++)
        if (memcmp(dg_param_data(a->params[i]), dg_param_data(b->params[i]),
                   (size_t)dg_node_numel(a->params[i]) * sizeof(float)) != 0)
            return false;
    return true;
}

/* Three uninterrupted epochs: the reference. */
static struct run *reference(dg_epoch_stats history[3])
{
    struct run *r = make_run(1);
    dg_fit_config cfg = base_config();
    cfg.epochs = 3;
    ck_assert_int_eq(fit(r, &cfg, history), DG_OK);
    return r;
}

START_TEST(second_call_continues)
{
    dg_epoch_stats ref_hist[3], hist[2];
    struct run *ref = reference(ref_hist);
    struct run *r = make_run(1);
    dg_fit_state state = {0};
    dg_fit_config cfg = base_config();
    cfg.state = &state;
    cfg.epochs = 2;
    ck_assert_int_eq(fit(r, &cfg, hist), DG_OK);
    ck_assert_int_eq(state.epoch, 2);
    ck_assert_int_eq(state.step, 14);
    ck_assert_int_eq(hist[1].epoch, 2);
    cfg.epochs = 1;
    ck_assert_int_eq(fit(r, &cfg, hist), DG_OK);
    ck_assert_int_eq(state.epoch, 3);
    ck_assert_int_eq(hist[0].epoch, 3);
    ck_assert(hist[0].loss == ref_hist[2].loss);       /* bitwise: same computation */
    ck_assert(hist[0].val_loss == ref_hist[2].val_loss);
    ck_assert(same_params(r, ref));
    ck_assert_int_eq(dg_optim_step_count(r->opt), dg_optim_step_count(ref->opt));

    /* Without a state a second call starts over (epoch 1's shuffle): different results. */
    struct run *again = make_run(1);
    dg_fit_config plain = base_config();
    plain.epochs = 2;
    ck_assert_int_eq(fit(again, &plain, hist), DG_OK);
    plain.epochs = 1;
    ck_assert_int_eq(fit(again, &plain, hist), DG_OK);
    ck_assert_int_eq(hist[0].epoch, 1);
    ck_assert(!same_params(again, ref));
    free_run(again);
    free_run(r);
    free_run(ref);
}
END_TEST

/* Runs this binary with `args` and waits; returns its exit status. */
static int run_child(char *const args[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(new_process_resumes_exactly)
{
    dg_epoch_stats ref_hist[3];
    struct run *ref = reference(ref_hist);
    char ckpt[512], out[512];
    tmp_path("two_epochs.safetensors", ckpt, sizeof ckpt);
    tmp_path("resumed.safetensors", out, sizeof out);
    ck_assert_int_eq(run_child((char *[]){"test_checkpoint_resume", "--child", "train2", ckpt,
                                          NULL}),
                     0);
    ck_assert_int_eq(run_child((char *[]){"test_checkpoint_resume", "--child", "resume1", ckpt,
                                          out, NULL}),
                     0);
    /* The resumed process wrote its parameters and losses: compare bitwise. */
    struct run *r = make_run(2);
    dg_load_options lo = DG_LOAD_DEFAULTS;
    lo.partial = true; /* the losses are stored as tensors too */
    ck_assert_int_eq(dg_load_checkpoint(r->g, out, &lo), DG_OK);
    ck_assert(same_params(r, ref));
    dg_checkpoint *ck = dg_checkpoint_open(out);
    float losses[2];
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, dg_checkpoint_find(ck, "losses"), losses, 2),
                     DG_OK);
    ck_assert(losses[0] == (float)ref_hist[2].loss);
    ck_assert(losses[1] == (float)ref_hist[2].val_loss);
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "epoch"), "3");
    char exact[64];
    snprintf(exact, sizeof exact, "%a", ref_hist[2].loss);
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "loss"), exact);
    dg_checkpoint_free(ck);
    /* The two-epoch checkpoint says where it stands. */
    ck = dg_checkpoint_open(ckpt);
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "fit.epoch"), "2");
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "fit.step"), "14");
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "optimizer.step"), "14");
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "fit.seed"), "99");
    dg_checkpoint_free(ck);
    unlink(ckpt);
    unlink(out);
    free_run(r);
    free_run(ref);
}
END_TEST

/* Child modes: "train2 CKPT" trains two epochs and checkpoints; "resume1 CKPT OUT" starts from
 * other weights, resumes from CKPT for one epoch and writes parameters and losses to OUT. */
static int child_main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[2], "train2") == 0) {
        struct run *r = make_run(1);
        dg_fit_config cfg = base_config();
        cfg.epochs = 2;
        cfg.checkpoint_path = argv[3];
        int rc = fit(r, &cfg, NULL) == DG_OK ? 0 : 1;
        free_run(r);
        return rc;
    }
    if (argc >= 5 && strcmp(argv[2], "resume1") == 0) {
        struct run *r = make_run(2);
        dg_fit_config cfg = base_config();
        cfg.epochs = 1;
        cfg.resume_path = argv[3];
        dg_epoch_stats hist[1];
        if (fit(r, &cfg, hist) != DG_OK)
            return 1;
        dg_checkpoint *ck = dg_checkpoint_new();
        for (int i = 0; i < r->n_params; i++) {
            int64_t shape[DG_MAX_DIMS];
            for (int d = 0; d < dg_node_ndim(r->params[i]); d++)
                shape[d] = dg_node_dim(r->params[i], d);
            dg_checkpoint_add_f32(ck, dg_node_name(r->params[i]), dg_node_ndim(r->params[i]),
                                  shape, dg_param_data(r->params[i]), false);
        }
        float losses[2] = {(float)hist[0].loss, (float)hist[0].val_loss};
        dg_checkpoint_add_f32(ck, "losses", 1, (int64_t[]){2}, losses, false);
        char buf[64];
        snprintf(buf, sizeof buf, "%d", hist[0].epoch);
        dg_checkpoint_set_metadata(ck, "epoch", buf);
        snprintf(buf, sizeof buf, "%a", hist[0].loss);
        dg_checkpoint_set_metadata(ck, "loss", buf);
        int rc = dg_checkpoint_save(ck, argv[4]) == DG_OK ? 0 : 1;
        if (rc)
            fprintf(stderr, "%s\n", dg_checkpoint_error(ck));
        dg_checkpoint_free(ck);
        free_run(r);
        return rc;
    }
    fprintf(stderr, "unknown child mode\n");
    return 2;
}

/* A metric that watches the checkpoint file during training: it records each new value of the
 * file's fit.epoch (-1 while there is no file). */
struct watch {
    const char *path;
    int seen[8];
    int n_seen;
};

static double watch_checkpoint(const float *output, const void *targets, int64_t batch,
                               int64_t per_example, void *user)
{
    struct watch *w = user;
    dg_checkpoint *ck = dg_checkpoint_open(w->path);
    const char *epoch = dg_checkpoint_metadata(ck, "fit.epoch");
    int value = epoch ? atoi(epoch) : -1;
    if ((w->n_seen == 0 || w->seen[w->n_seen - 1] != value) && w->n_seen < 8)
        w->seen[w->n_seen++] = value;
    dg_checkpoint_free(ck);
    return 0;
}

START_TEST(checkpoints_best_and_early_stopping)
{
    char latest[512], best[512];
    tmp_path("latest.safetensors", latest, sizeof latest);
    tmp_path("best.safetensors", best, sizeof best);
    struct run *r = make_run(1);
    dg_fit_state state = {0};
    dg_fit_config cfg = base_config();
    cfg.epochs = 5;
    cfg.state = &state;
    cfg.checkpoint_path = latest;
    cfg.checkpoint_every = 2;
    cfg.best_path = best;
    struct watch w = {.path = latest};
    cfg.metric = watch_checkpoint;
    cfg.metric_user = &w;
    dg_epoch_stats hist[5];
    ck_assert_int_eq(fit(r, &cfg, hist), DG_OK);
    /* Written after epochs 2 and 4 (seen while training the next), and at the end. */
    ck_assert_int_eq(w.n_seen, 3);
    ck_assert_int_eq(w.seen[0], -1);
    ck_assert_int_eq(w.seen[1], 2);
    ck_assert_int_eq(w.seen[2], 4);
    /* Latest = epoch 5 (the end); best = the epoch of the lowest validation loss. */
    int best_epoch = 1;
    for (int e = 1; e < 5; e++)
        if (hist[e].val_loss < hist[best_epoch - 1].val_loss)
            best_epoch = e + 1;
    ck_assert_int_eq(state.best_epoch, best_epoch);
    ck_assert(state.best_loss == hist[best_epoch - 1].val_loss);
    dg_checkpoint *ck = dg_checkpoint_open(latest);
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "fit.epoch"), "5");
    dg_checkpoint_free(ck);
    ck = dg_checkpoint_open(best);
    char buf[16];
    snprintf(buf, sizeof buf, "%d", best_epoch);
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "fit.epoch"), buf);
    dg_checkpoint_free(ck);

    /* Early stopping: an impossible min_delta means no epoch after the first improves, so
     * patience 2 stops after epoch 3 of 10; history entries of epochs not run are empty. */
    struct run *s = make_run(1);
    dg_fit_state st2 = {0};
    dg_fit_config es = base_config();
    es.epochs = 10;
    es.state = &st2;
    es.patience = 2;
    es.min_delta = 1e9;
    dg_epoch_stats h2[10];
    ck_assert_int_eq(fit(s, &es, h2), DG_OK);
    ck_assert(st2.stopped_early);
    ck_assert_int_eq(st2.epoch, 3);
    ck_assert_int_eq(st2.best_epoch, 1);
    ck_assert_int_eq(h2[2].epoch, 3);
    ck_assert_int_eq(h2[3].epoch, 0);
    ck_assert(isnan(h2[3].loss));

    /* Resuming with another seed is refused. */
    dg_fit_config other = base_config();
    other.seed = 100;
    other.resume_path = latest;
    ck_assert_int_eq(fit(s, &other, NULL), DG_ERR_INVALID_ARG);
    ck_assert_str_eq(dg_graph_error(s->g), "fit: resuming a run made with seed 99, but "
                                           "cfg.seed is 100 (the shuffle and dropout streams "
                                           "would differ)");
    unlink(latest);
    unlink(best);
    free_run(s);
    free_run(r);
}
END_TEST

/* ---- Atomic save under SIGKILL ------------------------------------------------------------ */

enum { KILL_TENSORS = 4, KILL_VALUES = 1 << 15, KILL_ROUNDS = 40 };

static dg_status save_version(const char *path, int version, float *buf)
{
    for (int i = 0; i < KILL_TENSORS * KILL_VALUES; i++)
        buf[i] = (float)version;
    dg_checkpoint *ck = dg_checkpoint_new();
    char name[32];
    for (int t = 0; t < KILL_TENSORS; t++) {
        snprintf(name, sizeof name, "t%d", t);
        dg_checkpoint_add_f32(ck, name, 1, (int64_t[]){KILL_VALUES}, buf + t * KILL_VALUES,
                              false);
    }
    snprintf(name, sizeof name, "%d", version);
    dg_checkpoint_set_metadata(ck, "version", name);
    dg_status st = dg_checkpoint_save(ck, path);
    dg_checkpoint_free(ck);
    return st;
}

/* The file loads, and every value equals its metadata version; returns the version. */
static int verify_version(const char *path, float *buf)
{
    dg_checkpoint *ck = dg_checkpoint_open(path);
    ck_assert_msg(dg_checkpoint_status(ck) == DG_OK, "%s", dg_checkpoint_error(ck));
    ck_assert_int_eq(dg_checkpoint_tensor_count(ck), KILL_TENSORS);
    int version = atoi(dg_checkpoint_metadata(ck, "version"));
    for (int t = 0; t < KILL_TENSORS; t++) {
        ck_assert_int_eq(dg_checkpoint_read_f32(ck, t, buf, KILL_VALUES), DG_OK);
        for (int i = 0; i < KILL_VALUES; i++)
            ck_assert(buf[i] == (float)version);
    }
    dg_checkpoint_free(ck);
    return version;
}

START_TEST(killed_saves_leave_a_valid_file)
{
    char path[512];
    tmp_path("killed.safetensors", path, sizeof path);
    float *buf = malloc(sizeof(float) * KILL_TENSORS * KILL_VALUES);
    ck_assert_int_eq(save_version(path, 0, buf), DG_OK);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 3);
    int last = 0, changed = 0;
    for (int round = 1; round <= KILL_ROUNDS; round++) {
        int first = round * 1000;
        pid_t pid = fork();
        if (pid == 0) {
            for (int v = first;; v++)
                save_version(path, v, buf);
        }
        usleep((useconds_t)(dg_test_rng_next(&rng) % 20000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        int version = verify_version(path, buf);
        ck_assert(version == last || version >= first);
        changed += version != last;
        last = version;
    }
    /* Stray temporary files of killed saves: removed here (a user may do the same). */
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s'.tmp.*", path, path);
    ck_assert_int_eq(system(cmd), 0);
    fprintf(stderr, "killed_saves: %d rounds, the file changed in %d\n", KILL_ROUNDS, changed);
    free(buf);
}
END_TEST

/* ---- Batch-norm running statistics ------------------------------------------------------- */

enum { BN_C = 2, BN_SIDE = 3, BN_X = BN_C * BN_SIDE * BN_SIDE };

struct bn_net {
    dg_graph *g;
    dg_model model;
    dg_optim *opt;
    dg_node *mean, *var; /* bn1's running statistics */
};

/* bn1 (batch norm over 2 channels) -> relu -> flatten -> fc; init_seed draws fc's weights. */
static void make_bn_net(struct bn_net *b, uint64_t init_seed)
{
    dg_rng rng;
    dg_rng_seed(&rng, init_seed);
    b->g = dg_graph_new();
    dg_node *x = dg_input(b->g, "x", 4, (int64_t[]){BATCH, BN_C, BN_SIDE, BN_SIDE});
    dg_node *y = dg_input_typed(b->g, "y", DG_I32, 1, (int64_t[]){BATCH});
    dg_node *h = dg_batch_norm_layer(b->g, x, 0.1f, 1e-5f, "bn1", &b->mean, &b->var);
    dg_node *logits = dg_dense(b->g, dg_flatten(b->g, dg_relu(b->g, h)), CLASSES, DG_ACT_NONE,
                               "fc", &rng);
    dg_node *loss = dg_softmax_cross_entropy(b->g, logits, y);
    dg_node *params[8], *grads[8];
    int n = 0;
    ck_assert_msg(dg_grad_params(b->g, loss, 8, params, grads, &n) == DG_OK, "%s",
                  dg_graph_error(b->g));
    dg_adam_config cfg = DG_ADAM_DEFAULTS;
    cfg.lr = 0.02;
    b->opt = dg_optim_new_adam(n, params, grads, &cfg);
    b->model = (dg_model){.graph = b->g, .x = x, .y = y, .loss = loss, .output = logits};
}

static void free_bn_net(struct bn_net *b)
{
    dg_optim_free(b->opt);
    dg_graph_free(b->g);
}

/* Inputs with a channel mean and spread far from the initial running statistics (0, 1). */
static void bn_data(float *x, int32_t *y, int n)
{
    dg_test_rng t;
    dg_test_rng_seed(&t, 5);
    dg_test_fill_uniform(&t, x, n * BN_X, -1, 3);
    for (int i = 0; i < n; i++)
        y[i] = x[i * BN_X] + x[i * BN_X + BN_X - 1] > 2 ? 0 : (x[i * BN_X + 1] > 1 ? 1 : 2);
}

/* The model's outputs on `x` (BATCH examples) in evaluation mode: the running statistics. */
static void bn_eval(struct bn_net *b, const float *x, float *out)
{
    dg_plan *plan = dg_compile(b->g, 1, &b->model.output);
    ck_assert_ptr_nonnull(plan);
    ck_assert_int_eq(dg_dropout_feed_key(plan, 0, 0, false), DG_OK);
    ck_assert_int_eq(dg_feed(plan, b->model.x, x), DG_OK);
    ck_assert_int_eq(dg_run(plan), DG_OK);
    memcpy(out, dg_data(plan, b->model.output), BATCH * CLASSES * sizeof *out);
    dg_plan_free(plan);
}

static bool same_floats(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* A BN net trained two epochs and checkpointed; a fresh graph that loads the file evaluates
 * bitwise alike, and one that resumes for a third epoch ends bitwise where an uninterrupted
 * three-epoch run ends (running statistics included). */
START_TEST(batch_norm_statistics_are_saved_and_resumed)
{
    static float x[N * BN_X];
    static int32_t y[N];
    bn_data(x, y, N);
    dg_fit_data train = {.x = x, .y = y, .n = N};
    char path[512];
    tmp_path("bn.safetensors", path, sizeof path);

    struct bn_net first, loaded, straight, resumed;
    make_bn_net(&first, 1);
    dg_fit_config cfg = base_config();
    cfg.epochs = 2;
    cfg.checkpoint_path = path;
    ck_assert_msg(dg_fit(&first.model, first.opt, &train, NULL, &cfg, NULL) == DG_OK, "%s",
                  dg_graph_error(first.g));
    const float *mean = dg_param_data(first.mean), *var = dg_param_data(first.var);
    ck_assert_msg(fabsf(mean[0]) > 0.1f && fabsf(var[0] - 1.0f) > 0.1f, "the statistics did "
                  "not move from (0, 1): %g %g", mean[0], var[0]);

    /* the file holds them under PyTorch's names */
    dg_checkpoint *ck = dg_checkpoint_open(path);
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_OK);
    int k_mean = dg_checkpoint_find(ck, "bn1.running_mean");
    int k_var = dg_checkpoint_find(ck, "bn1.running_var");
    ck_assert_int_ge(k_mean, 0);
    ck_assert_int_ge(k_var, 0);
    float saved[BN_C];
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, k_var, saved, BN_C), DG_OK);
    ck_assert(same_floats(saved, var, BN_C));
    dg_checkpoint_free(ck);

    /* a fresh graph (other weights, statistics (0, 1)) loads them: bitwise the same outputs */
    make_bn_net(&loaded, 9);
    float out_first[BATCH * CLASSES], out_loaded[BATCH * CLASSES];
    bn_eval(&first, x, out_first);
    bn_eval(&loaded, x, out_loaded);
    ck_assert(!same_floats(out_first, out_loaded, BATCH * CLASSES));
    ck_assert_msg(dg_load_checkpoint(loaded.g, path, NULL) == DG_OK, "%s",
                  dg_graph_error(loaded.g));
    ck_assert(same_floats(dg_param_data(loaded.mean), mean, BN_C));
    ck_assert(same_floats(dg_param_data(loaded.var), var, BN_C));
    bn_eval(&loaded, x, out_loaded);
    ck_assert(same_floats(out_first, out_loaded, BATCH * CLASSES));

    /* resumed by dg_fit: epoch 3 ends where three uninterrupted epochs end */
    make_bn_net(&straight, 1);
    cfg.epochs = 3;
    cfg.checkpoint_path = NULL;
    ck_assert_int_eq(dg_fit(&straight.model, straight.opt, &train, NULL, &cfg, NULL), DG_OK);
    make_bn_net(&resumed, 9);
    cfg.epochs = 1;
    cfg.resume_path = path;
    ck_assert_msg(dg_fit(&resumed.model, resumed.opt, &train, NULL, &cfg, NULL) == DG_OK, "%s",
                  dg_graph_error(resumed.g));
    ck_assert(same_floats(dg_param_data(resumed.mean), dg_param_data(straight.mean), BN_C));
    ck_assert(same_floats(dg_param_data(resumed.var), dg_param_data(straight.var), BN_C));
    float out_straight[BATCH * CLASSES], out_resumed[BATCH * CLASSES];
    bn_eval(&straight, x, out_straight);
    bn_eval(&resumed, x, out_resumed);
    ck_assert(same_floats(out_straight, out_resumed, BATCH * CLASSES));

    free_bn_net(&first);
    free_bn_net(&loaded);
    free_bn_net(&straight);
    free_bn_net(&resumed);
    remove(path);
}
END_TEST

/* A file without the statistics (parameters only, as written before they were saved): a
 * strict load names the missing state and changes nothing; no_state and partial load it. */
START_TEST(batch_norm_state_missing_from_a_file)
{
    char path[512];
    tmp_path("bn_old.safetensors", path, sizeof path);
    struct bn_net a, b;
    make_bn_net(&a, 1);
    make_bn_net(&b, 9);
    dg_checkpoint *ck = dg_checkpoint_new();
    int n = dg_graph_params(a.g, 0, NULL);
    dg_node *params[8];
    ck_assert_int_le(n, 8);
    dg_graph_params(a.g, n, params);
    for (int i = 0; i < n; i++) {
        int64_t shape[DG_MAX_DIMS];
        for (int d = 0; d < dg_node_ndim(params[i]); d++)
            shape[d] = dg_node_dim(params[i], d);
        dg_checkpoint_add_f32(ck, dg_node_name(params[i]), dg_node_ndim(params[i]), shape,
                              dg_param_data(params[i]), false);
    }
    /* PyTorch's counter is skipped beside bn1's statistics */
    float count = 7;
    dg_checkpoint_add_f32(ck, "bn1.num_batches_tracked", 0, (int64_t[]){1}, &count, false);
    ck_assert_int_eq(dg_checkpoint_save(ck, path), DG_OK);
    dg_checkpoint_free(ck);

    dg_node *fc_b = dg_graph_find(b.g, "fc.bias");
    float before = dg_param_data(dg_graph_find(b.g, "fc.weight"))[0];
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, NULL), DG_ERR_NOT_FOUND);
    ck_assert_msg(strstr(dg_graph_error(b.g), "state 'bn1.running_mean'") != NULL, "%s",
                  dg_graph_error(b.g));
    ck_assert(dg_param_data(dg_graph_find(b.g, "fc.weight"))[0] == before);
    dg_graph_clear_error(b.g);
    dg_load_options lo = DG_LOAD_DEFAULTS;
    lo.no_state = true;
    ck_assert_msg(dg_load_checkpoint(b.g, path, &lo) == DG_OK, "%s", dg_graph_error(b.g));
    ck_assert(same_floats(dg_param_data(fc_b), dg_param_data(dg_graph_find(a.g, "fc.bias")),
                          CLASSES));
    lo = (dg_load_options)DG_LOAD_DEFAULTS;
    lo.partial = true;
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, &lo), DG_OK);
    free_bn_net(&a);
    free_bn_net(&b);
    remove(path);
}
END_TEST

static Suite *resume_suite(void)
{
    Suite *s = suite_create("checkpoint_resume");
    TCase *tc = tcase_create("resume");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, second_call_continues);
    tcase_add_test(tc, new_process_resumes_exactly);
    tcase_add_test(tc, checkpoints_best_and_early_stopping);
    tcase_add_test(tc, killed_saves_leave_a_valid_file);
    tcase_add_test(tc, batch_norm_statistics_are_saved_and_resumed);
    tcase_add_test(tc, batch_norm_state_missing_from_a_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--child") == 0) {
        in_child = true;
        return child_main(argc, argv);
    }
    return dg_test_run(resume_suite());
}
