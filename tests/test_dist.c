/*
 * Data-parallel dg_fit (src/dist) under mpirun -np 2 and -np 3 (tests/meson.build): identical
 * parameters on every rank after every epoch, equality with one process at the same global
 * batch up to float reassociation, bitwise reproducibility, checkpoints across rank counts,
 * and a clean error when the ranks build different models.
 * Runs without fork (CK_FORK=no): MPI and fork do not mix.
 */
#include <check.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dagrad.h"
#include "dagrad_dist.h"
#include "test_util.h"

#define N 101       /* examples: the last batch of 16 is partial (5): shares differ */
#define FEATURES 6
#define CLASSES 3
#define BATCH 16
/* One process against N ranks: the same sums in another association, over 3 epochs.
 * Measured differences are ~1e-6; 1e-4 relative leaves room, and a wrong average (sum not
 * divided, a share missed) is off by far more. */
#define REL_TOL 1e-4

static dg_dist *dist;
static dg_dist *sync_dist; /* the same job with synchronised batch norm */
static float data_x[N * FEATURES];
static int32_t data_y[N];

struct model {
    dg_graph *g;
    dg_optim *opt;
    dg_model m;
    dg_node *params[6];
    int n_params;
};

static void make_data(void)
{
    dg_test_rng r;
    dg_test_rng_seed(&r, 11);
    dg_test_fill_uniform(&r, data_x, N * FEATURES, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) {
        const float *row = data_x + i * FEATURES;
        float s[CLASSES] = {row[0] + row[1], row[2] - row[0], row[3] - row[1]};
        data_y[i] = s[0] > s[1] ? (s[0] > s[2] ? 0 : 2) : (s[1] > s[2] ? 1 : 2);
    }
}

/* features: FEATURES, except in the different-models test; Adam or plain SGD. */
static void build(struct model *md, int features, bool adam)
{
    dg_rng rng;
    dg_rng_seed(&rng, 2);
    md->g = dg_graph_new();
    dg_node *x = dg_input(md->g, "x", 2, (int64_t[]){BATCH, features});
    dg_node *y = dg_input_typed(md->g, "y", DG_I32, 1, (int64_t[]){BATCH});
    dg_node *h = dg_dense(md->g, x, 16, DG_ACT_RELU, "fc1", &rng);
    dg_node *logits = dg_dense(md->g, h, CLASSES, DG_ACT_NONE, "fc2", &rng);
    dg_node *loss = dg_softmax_cross_entropy(md->g, logits, y);
    dg_node *grads[4];
    ck_assert_int_eq(dg_grad_params(md->g, loss, 4, md->params, grads, &md->n_params), DG_OK);
    if (adam) { /* state to checkpoint; nearly blind to a gradient's scale */
        dg_adam_config cfg = DG_ADAM_DEFAULTS;
        cfg.lr = 0.05;
        md->opt = dg_optim_new_adam(md->n_params, md->params, grads, &cfg);
    } else { /* sees a wrongly scaled average */
        dg_sgd_config cfg = DG_SGD_DEFAULTS;
        cfg.lr = 0.2;
        md->opt = dg_optim_new_sgd(md->n_params, md->params, grads, &cfg);
    }
    md->m = (dg_model){.graph = md->g, .x = x, .y = y, .loss = loss, .output = logits};
}

static void release(struct model *md)
{
    dg_optim_free(md->opt);
    dg_graph_free(md->g);
}

static dg_fit_config config(bool parallel)
{
    dg_fit_config cfg = DG_FIT_DEFAULTS;
    cfg.batch_size = BATCH;
    cfg.seed = 5;
    cfg.verbose = 0;
    cfg.parallel = parallel ? dg_dist_fit(dist) : NULL;
    return cfg;
}

static dg_fit_data train_data(void)
{
    return (dg_fit_data){.x = data_x, .y = data_y, .n = N};
}

/* FNV-1a over the parameters' bytes. */
static uint64_t checksum(const struct model *md)
{
    uint64_t h = 1469598103934665603u;
    for (int i = 0; i < md->n_params; i++) {
        const unsigned char *b = (const unsigned char *)dg_param_data(md->params[i]);
        size_t bytes = (size_t)dg_node_numel(md->params[i]) * sizeof(float);
        for (size_t k = 0; k < bytes; k++)
            h = (h ^ b[k]) * 1099511628211u;
    }
    return h;
}

static void assert_same_on_every_rank(uint64_t h)
{
    int size = dg_dist_size(dist);
    uint64_t all[16];
    ck_assert_int_le(size, 16);
    MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int r = 1; r < size; r++)
        ck_assert_msg(all[r] == all[0], "rank %d's parameters differ from rank 0's", r);
}

static void assert_close(const struct model *a, const struct model *b)
{
    for (int i = 0; i < a->n_params; i++) {
        const float *p = dg_param_data(a->params[i]), *q = dg_param_data(b->params[i]);
        for (int64_t k = 0; k < dg_node_numel(a->params[i]); k++)
            ck_assert_msg(fabsf(p[k] - q[k]) <= REL_TOL * (1.0f + fabsf(q[k])),
                          "param %d[%lld]: %.9g vs %.9g", i, (long long)k, p[k], q[k]);
    }
}

static void assert_bitwise(const struct model *a, const struct model *b)
{
    for (int i = 0; i < a->n_params; i++)
        ck_assert_msg(memcmp(dg_param_data(a->params[i]), dg_param_data(b->params[i]),
                             (size_t)dg_node_numel(a->params[i]) * sizeof(float)) == 0,
                      "param %d differs", i);
}

START_TEST(identical_on_every_rank_each_epoch)
{
    struct model md;
    build(&md, FEATURES, false);
    dg_fit_state state = {0};
    dg_fit_config cfg = config(true);
    cfg.state = &state;
    dg_dist_reset_stats(dist);
    dg_fit_data train = train_data();
    for (int epoch = 0; epoch < 3; epoch++) {
        dg_epoch_stats es;
        ck_assert_int_eq(dg_fit(&md.m, md.opt, &train, &train, &cfg, &es), DG_OK);
        ck_assert(isfinite(es.loss) && isfinite(es.val_loss));
        assert_same_on_every_rank(checksum(&md));
    }
    ck_assert_int_eq(state.step, 3 * ((N + BATCH - 1) / BATCH));
    dg_dist_stats ds = dg_dist_get_stats(dist);
    ck_assert_int_eq(ds.buckets, 3 * ds.steps);
    ck_assert_int_eq(ds.buckets_early, ds.buckets); /* every one started inside dg_run */
    release(&md);
}
END_TEST

/* Twice: 101 examples (last batch 5: shares 2+3, or 1+2+2) and 98 (last batch 2: on 3 ranks
 * rank 0's share is empty, it contributes nothing and still takes part). */
START_TEST(equals_one_process_at_the_global_batch)
{
    int64_t sizes[2] = {N, 98};
    for (int t = 0; t < 2; t++) {
        struct model alone, parallel;
        build(&alone, FEATURES, false);
        build(&parallel, FEATURES, false);
        dg_fit_data train = train_data();
        train.n = sizes[t];
        dg_fit_config one = config(false), many = config(true);
        one.epochs = many.epochs = 3;
        dg_epoch_stats h1[3], hn[3];
        ck_assert_int_eq(dg_fit(&alone.m, alone.opt, &train, NULL, &one, h1), DG_OK);
        ck_assert_int_eq(dg_fit(&parallel.m, parallel.opt, &train, NULL, &many, hn), DG_OK);
        assert_close(&parallel, &alone);
        for (int e = 0; e < 3; e++) /* the epoch loss is over every example of every rank */
            ck_assert_double_eq_tol(hn[e].loss, h1[e].loss, 1e-4 * (1 + fabs(h1[e].loss)));
        release(&alone);
        release(&parallel);
    }
}
END_TEST

START_TEST(bitwise_reproducible_for_a_fixed_rank_count)
{
    struct model a, b;
    build(&a, FEATURES, true);
    build(&b, FEATURES, true);
    dg_fit_data train = train_data();
    dg_fit_config cfg = config(true);
    cfg.epochs = 2;
    ck_assert_int_eq(dg_fit(&a.m, a.opt, &train, NULL, &cfg, NULL), DG_OK);
    ck_assert_int_eq(dg_fit(&b.m, b.opt, &train, NULL, &cfg, NULL), DG_OK);
    assert_bitwise(&a, &b);
    release(&a);
    release(&b);
}
END_TEST

/* A path every rank knows: rank 0's pid in /tmp. */
static void shared_path(char *path, size_t len, const char *what)
{
    int pid = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &pid);
    if (pid == 0)
        pid = (int)getpid();
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    snprintf(path, len, "/tmp/dagrad_test_dist_%d_%s.safetensors", pid, what);
}

/* Written with N ranks, resumed with N (bitwise the uninterrupted run) and with 1 process;
 * written by 1 process, resumed with N (both up to reassociation). */
START_TEST(checkpoint_resumes_with_another_rank_count)
{
    char path_n[256], path_1[256];
    shared_path(path_n, sizeof path_n, "n");
    shared_path(path_1, sizeof path_1, "1");
    int rank = dg_dist_rank(dist);
    dg_fit_data train = train_data();

    struct model straight, resumed_n, resumed_1, first, from_one;
    build(&straight, FEATURES, true);
    dg_fit_config cfg = config(true);
    cfg.epochs = 2;
    ck_assert_int_eq(dg_fit(&straight.m, straight.opt, &train, NULL, &cfg, NULL), DG_OK);

    build(&first, FEATURES, true); /* epoch 1 on N ranks, checkpointed by rank 0 */
    cfg.epochs = 1;
    cfg.checkpoint_path = path_n;
    ck_assert_int_eq(dg_fit(&first.m, first.opt, &train, NULL, &cfg, NULL), DG_OK);
    cfg.checkpoint_path = NULL;

    build(&resumed_n, FEATURES, true); /* epoch 2 on N ranks */
    cfg.resume_path = path_n;
    ck_assert_int_eq(dg_fit(&resumed_n.m, resumed_n.opt, &train, NULL, &cfg, NULL), DG_OK);
    assert_bitwise(&resumed_n, &straight);

    build(&resumed_1, FEATURES, true); /* epoch 2 in one process (every rank alone) */
    dg_fit_config alone = config(false);
    alone.resume_path = path_n;
    ck_assert_int_eq(dg_fit(&resumed_1.m, resumed_1.opt, &train, NULL, &alone, NULL), DG_OK);
    assert_close(&resumed_1, &straight);

    /* Epoch 1 in one process, written by rank 0 alone, then epoch 2 on N ranks. */
    struct model solo;
    build(&solo, FEATURES, true);
    dg_fit_config write_one = config(false);
    write_one.checkpoint_path = rank == 0 ? path_1 : NULL;
    ck_assert_int_eq(dg_fit(&solo.m, solo.opt, &train, NULL, &write_one, NULL), DG_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    build(&from_one, FEATURES, true);
    cfg.resume_path = path_1;
    ck_assert_int_eq(dg_fit(&from_one.m, from_one.opt, &train, NULL, &cfg, NULL), DG_OK);
    assert_close(&from_one, &straight);
    assert_same_on_every_rank(checksum(&from_one));

    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        remove(path_n);
        remove(path_1);
    }
    release(&straight);
    release(&first);
    release(&resumed_n);
    release(&resumed_1);
    release(&solo);
    release(&from_one);
}
END_TEST

/* ---- Dropout: masks per rank, parameters shared ---------------------------------------- */

/* The model's output of the first training batch of a dg_fit call, as the metric sees it. */
struct first_batch {
    int calls;
    int64_t rows;
    float out[BATCH * CLASSES];
};

static double record_first_batch(const float *output, const void *targets, int64_t batch,
                                 int64_t per_example, void *user)
{
    (void)targets;
    struct first_batch *fb = user;
    if (fb->calls++ == 0) {
        fb->rows = batch;
        memcpy(fb->out, output, (size_t)(batch * per_example) * sizeof *output);
    }
    return 0.0;
}

/* fc1 -> dropout(0.5) -> fc2; every example the same, so that on ranks holding the same
 * parameters the outputs differ only by their dropout masks. */
static void build_dropout(struct model *md)
{
    dg_rng rng;
    dg_rng_seed(&rng, 2);
    md->g = dg_graph_new();
    dg_node *x = dg_input(md->g, "x", 2, (int64_t[]){BATCH, FEATURES});
    dg_node *y = dg_input_typed(md->g, "y", DG_I32, 1, (int64_t[]){BATCH});
    dg_node *h = dg_dense(md->g, x, 16, DG_ACT_RELU, "fc1", &rng);
    h = dg_dropout(md->g, h, dg_dropout_key(md->g), 0.5f);
    dg_node *logits = dg_dense(md->g, h, CLASSES, DG_ACT_NONE, "fc2", &rng);
    dg_node *loss = dg_softmax_cross_entropy(md->g, logits, y);
    dg_node *grads[4];
    ck_assert_int_eq(dg_grad_params(md->g, loss, 4, md->params, grads, &md->n_params), DG_OK);
    dg_sgd_config cfg = DG_SGD_DEFAULTS;
    cfg.lr = 0.2;
    md->opt = dg_optim_new_sgd(md->n_params, md->params, grads, &cfg);
    md->m = (dg_model){.graph = md->g, .x = x, .y = y, .loss = loss, .output = logits};
}

static uint64_t hash_floats(const float *v, int64_t n)
{
    uint64_t h = 1469598103934665603u;
    const unsigned char *b = (const unsigned char *)v;
    for (size_t k = 0; k < (size_t)n * sizeof *v; k++)
        h = (h ^ b[k]) * 1099511628211u;
    return h;
}

/* Each rank's first batch: same parameters (broadcast on attach), same examples, so equal
 * outputs would mean equal masks. Rank 0 keeps cfg.seed: its rows are the first rows of one
 * process's batch. After training every rank still holds the same parameters. */
START_TEST(dropout_masks_differ_per_rank_parameters_do_not)
{
    static float same_x[N * FEATURES];
    static int32_t same_y[N];
    for (int i = 0; i < N; i++) {
        memcpy(same_x + i * FEATURES, data_x, FEATURES * sizeof *same_x);
        same_y[i] = data_y[0];
    }
    dg_fit_data train = {.x = same_x, .y = same_y, .n = N};
    int rank = dg_dist_rank(dist), size = dg_dist_size(dist);

    struct model alone, parallel;
    build_dropout(&alone);
    build_dropout(&parallel);
    struct first_batch fb_alone = {0}, fb_rank = {0};
    dg_fit_config one = config(false), many = config(true);
    one.metric = many.metric = record_first_batch;
    one.metric_user = &fb_alone;
    many.metric_user = &fb_rank;
    one.epochs = many.epochs = 2;
    ck_assert_int_eq(dg_fit(&alone.m, alone.opt, &train, NULL, &one, NULL), DG_OK);
    ck_assert_int_eq(dg_fit(&parallel.m, parallel.opt, &train, NULL, &many, NULL), DG_OK);
    ck_assert_int_eq(fb_alone.rows, BATCH);
    ck_assert_int_eq(fb_rank.rows, (int64_t)BATCH * (rank + 1) / size - (int64_t)BATCH * rank / size);

    /* dropout is on: within the first batch, rows (same input) differ */
    bool rows_differ = false;
    for (int i = 1; i < BATCH; i++)
        rows_differ |= memcmp(fb_alone.out, fb_alone.out + i * CLASSES,
                              CLASSES * sizeof(float)) != 0;
    ck_assert_msg(rows_differ, "every example got the same dropout mask");
    uint64_t mine = hash_floats(fb_rank.out, fb_rank.rows * CLASSES);
    uint64_t all[16];
    ck_assert_int_le(size, 16);
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
        for (int q = r + 1; q < size; q++)
            ck_assert_msg(all[r] != all[q], "ranks %d and %d drew the same dropout masks", r, q);
    if (rank == 0)
        ck_assert_msg(mine == hash_floats(fb_alone.out, fb_rank.rows * CLASSES),
                      "rank 0's masks are not one process's (it must keep cfg.seed)");
    assert_same_on_every_rank(checksum(&parallel));
    release(&alone);
    release(&parallel);
}
END_TEST

/* ---- Batch norm: statistics per rank; rank 0's are saved ------------------------------- */

struct bn_model {
    struct model md;
    dg_node *mean, *var;
};

#define BN_CH 8

/* fc0 -> bn (BatchNorm1d-like, over fc0's 8 outputs) -> relu -> fc1: fc0's gradient goes
 * through batch norm's input gradient. */
static void build_bn(struct bn_model *b)
{
    struct model *md = &b->md;
    dg_rng rng;
    dg_rng_seed(&rng, 2);
    md->g = dg_graph_new();
    dg_node *x = dg_input(md->g, "x", 2, (int64_t[]){BATCH, FEATURES});
    dg_node *y = dg_input_typed(md->g, "y", DG_I32, 1, (int64_t[]){BATCH});
    dg_node *h = dg_dense(md->g, x, BN_CH, DG_ACT_NONE, "fc0", &rng);
    h = dg_batch_norm_layer(md->g, h, 0.1f, 1e-5f, "bn", &b->mean, &b->var);
    dg_node *logits = dg_dense(md->g, dg_relu(md->g, h), CLASSES, DG_ACT_NONE, "fc1", &rng);
    dg_node *loss = dg_softmax_cross_entropy(md->g, logits, y);
    dg_node *grads[6];
    ck_assert_int_eq(dg_grad_params(md->g, loss, 6, md->params, grads, &md->n_params), DG_OK);
    ck_assert_int_eq(md->n_params, 6);
    dg_sgd_config cfg = DG_SGD_DEFAULTS;
    cfg.lr = 0.2;
    md->opt = dg_optim_new_sgd(md->n_params, md->params, grads, &cfg);
    md->m = (dg_model){.graph = md->g, .x = x, .y = y, .loss = loss, .output = logits};
}

static uint64_t stats_hash(const struct bn_model *b)
{
    return hash_floats(dg_param_data(b->mean), BN_CH) ^
           (hash_floats(dg_param_data(b->var), BN_CH) * 31u);
}

/* Without synchronised batch norm every rank's running statistics are its own shares'; the
 * checkpoint holds rank 0's, and every rank that resumes from it starts from rank 0's. */
START_TEST(batch_norm_statistics_per_rank_rank_0_saved)
{
    char path[256];
    shared_path(path, sizeof path, "bn");
    int rank = dg_dist_rank(dist);
    dg_fit_data train = train_data();
    struct bn_model trained, resumed;
    build_bn(&trained);
    dg_fit_config cfg = config(true);
    cfg.epochs = 2;
    cfg.checkpoint_path = path;
    ck_assert_msg(dg_fit(&trained.md.m, trained.md.opt, &train, NULL, &cfg, NULL) == DG_OK,
                  "%s", dg_graph_error(trained.md.g));
    assert_same_on_every_rank(checksum(&trained.md));
    float stats[2][BN_CH], rank0[2][BN_CH];
    memcpy(stats[0], dg_param_data(trained.mean), sizeof stats[0]);
    memcpy(stats[1], dg_param_data(trained.var), sizeof stats[1]);
    memcpy(rank0, stats, sizeof rank0);
    MPI_Bcast(rank0, 2 * BN_CH, MPI_FLOAT, 0, MPI_COMM_WORLD);
    if (rank > 0) /* other examples, other statistics */
        ck_assert_msg(memcmp(stats, rank0, sizeof stats) != 0,
                      "rank %d's statistics are rank 0's: are they synchronised?", rank);

    dg_checkpoint *ck = dg_checkpoint_open(path);
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_OK);
    float saved[2][BN_CH];
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, dg_checkpoint_find(ck, "bn.running_mean"),
                                            saved[0], BN_CH), DG_OK);
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, dg_checkpoint_find(ck, "bn.running_var"),
                                            saved[1], BN_CH), DG_OK);
    dg_checkpoint_free(ck);
    ck_assert_msg(memcmp(saved, rank0, sizeof saved) == 0, "the file holds not rank 0's "
                  "statistics");

    build_bn(&resumed);
    cfg.checkpoint_path = NULL;
    cfg.resume_path = path;
    cfg.epochs = 0;
    ck_assert_int_eq(dg_fit(&resumed.md.m, resumed.md.opt, &train, NULL, &cfg, NULL), DG_OK);
    ck_assert(memcmp(dg_param_data(resumed.mean), rank0[0], sizeof rank0[0]) == 0);
    ck_assert(memcmp(dg_param_data(resumed.var), rank0[1], sizeof rank0[1]) == 0);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        remove(path);
    release(&trained.md);
    release(&resumed.md);
}
END_TEST

/* Synchronised batch norm: N ranks at batch B (B/N each) train like one process at batch B,
 * up to float reassociation (the same REL_TOL as the plain MLP), running statistics included,
 * and hold bitwise the same statistics on every rank. 96 examples in batches of 12: every
 * share is equal on 1, 2 and 3 ranks (docs/distributed.md: unequal shares weight batch norm's
 * cross-rank gradient terms by the share ratio). Without the option the statistics differ. */
START_TEST(synchronised_batch_norm_equals_one_process)
{
    dg_fit_data train = train_data();
    train.n = 96;
    struct bn_model alone, synced, local;
    build_bn(&alone);
    build_bn(&synced);
    build_bn(&local);
    dg_fit_config one = config(false), many = config(true);
    many.parallel = dg_dist_fit(sync_dist);
    one.batch_size = many.batch_size = 12;
    one.epochs = many.epochs = 3;
    dg_epoch_stats h1[3], hn[3];
    ck_assert_int_eq(dg_fit(&alone.md.m, alone.md.opt, &train, NULL, &one, h1), DG_OK);
    ck_assert_msg(dg_fit(&synced.md.m, synced.md.opt, &train, NULL, &many, hn) == DG_OK, "%s",
                  dg_graph_error(synced.md.g));
    assert_close(&synced.md, &alone.md);
    for (int e = 0; e < 3; e++)
        ck_assert_double_eq_tol(hn[e].loss, h1[e].loss, 1e-4 * (1 + fabs(h1[e].loss)));
    const float *sm = dg_param_data(synced.mean), *sv = dg_param_data(synced.var);
    const float *am = dg_param_data(alone.mean), *av = dg_param_data(alone.var);
    for (int c = 0; c < BN_CH; c++) {
        ck_assert_msg(fabsf(sm[c] - am[c]) <= REL_TOL * (1 + fabsf(am[c])) &&
                      fabsf(sv[c] - av[c]) <= REL_TOL * (1 + fabsf(av[c])),
                      "channel %d: running mean %.9g vs %.9g, var %.9g vs %.9g", c, sm[c],
                      am[c], sv[c], av[c]);
    }
    assert_same_on_every_rank(checksum(&synced.md));
    assert_same_on_every_rank(stats_hash(&synced));

    /* per-rank statistics (the default): another rank's differ from one process's */
    many.parallel = dg_dist_fit(dist);
    ck_assert_int_eq(dg_fit(&local.md.m, local.md.opt, &train, NULL, &many, NULL), DG_OK);
    if (dg_dist_rank(dist) > 0)
        ck_assert_msg(fabsf(dg_param_data(local.mean)[0] - am[0]) > 1e-3f,
                      "per-rank statistics equal the global batch's");
    release(&alone.md);
    release(&synced.md);
    release(&local.md);
}
END_TEST

/* A batch with fewer examples than ranks (97 = 8 x 12 + 1) is refused alike on every rank
 * with synchronised batch norm: the rank without examples would not run. */
START_TEST(synchronised_batch_norm_needs_an_example_per_rank)
{
    dg_fit_data train = train_data();
    train.n = 97;
    struct bn_model md;
    build_bn(&md);
    dg_fit_config cfg = config(true);
    cfg.parallel = dg_dist_fit(sync_dist);
    cfg.batch_size = 12;
    ck_assert_int_eq(dg_fit(&md.md.m, md.md.opt, &train, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(md.md.g), "synchronised batch norm needs"));
    release(&md.md);
}
END_TEST

/* ---- A small conv net: conv2d + batch norm + pool through the layer helpers ------------- */

#define IMG 6        /* 1 x 6 x 6 images */
#define N_IMG 48     /* 4 batches of 12: equal shares on 1, 2 and 3 ranks */
#define CONV_CH 4

struct conv_model {
    struct model md;
    dg_node *mean, *var;
};

static float conv_x[N_IMG * IMG * IMG];
static int32_t conv_y[N_IMG];

/* The label: which of the top-left, top-right and bottom halves is brightest. */
static void make_conv_data(void)
{
    dg_test_rng r;
    dg_test_rng_seed(&r, 13);
    dg_test_fill_uniform(&r, conv_x, N_IMG * IMG * IMG, 0.0f, 1.0f);
    for (int i = 0; i < N_IMG; i++) {
        const float *im = conv_x + i * IMG * IMG;
        float s[CLASSES] = {0};
        for (int yy = 0; yy < IMG; yy++)
            for (int xx = 0; xx < IMG; xx++)
                s[yy >= IMG / 2 ? 2 : xx < IMG / 2 ? 0 : 1] +=
                    im[yy * IMG + xx] * (yy >= IMG / 2 ? 0.5f : 1.0f);
        conv_y[i] = s[0] > s[1] ? (s[0] > s[2] ? 0 : 2) : (s[1] > s[2] ? 1 : 2);
    }
}

/* conv(1->4, 3x3, pad 1, no bias) -> batch norm -> relu -> maxpool 2 -> flatten -> dense(36->3),
 * SGD: the layers of examples/fashion_cnn.c's strong recipe, small. */
static void build_conv(struct conv_model *c)
{
    struct model *md = &c->md;
    dg_rng rng;
    dg_rng_seed(&rng, 3);
    md->g = dg_graph_new();
    dg_node *x = dg_input(md->g, "x", 4, (int64_t[]){12, 1, IMG, IMG});
    dg_node *y = dg_input_typed(md->g, "y", DG_I32, 1, (int64_t[]){12});
    dg_conv2d_params pad1 = DG_CONV2D_DEFAULTS;
    pad1.padding[0] = pad1.padding[1] = 1;
    dg_node *h = dg_conv2d_layer(md->g, x, CONV_CH, 3, 3, &pad1, false, DG_ACT_NONE, "conv",
                                 &rng);
    h = dg_batch_norm_layer(md->g, h, 0.1f, 1e-5f, "bn", &c->mean, &c->var);
    h = dg_max_pool2d_layer(md->g, dg_relu(md->g, h), 2);
    dg_node *logits = dg_dense(md->g, dg_flatten(md->g, h), CLASSES, DG_ACT_NONE, "fc", &rng);
    dg_node *loss = dg_softmax_cross_entropy(md->g, logits, y);
    dg_node *grads[6];
    ck_assert_msg(dg_grad_params(md->g, loss, 6, md->params, grads, &md->n_params) == DG_OK,
                  "%s", dg_graph_error(md->g));
    ck_assert_int_eq(md->n_params, 5); /* conv.weight, bn.weight, bn.bias, fc.weight, fc.bias */
    dg_sgd_config cfg = DG_SGD_DEFAULTS;
    cfg.lr = 0.1;
    md->opt = dg_optim_new_sgd(md->n_params, md->params, grads, &cfg);
    md->m = (dg_model){.graph = md->g, .x = x, .y = y, .loss = loss, .output = logits};
}

static uint64_t conv_stats_hash(const struct conv_model *c)
{
    return hash_floats(dg_param_data(c->mean), CONV_CH) ^
           (hash_floats(dg_param_data(c->var), CONV_CH) * 31u);
}

/* The conv net trains data-parallel with bit-identical parameters on every rank after every
 * epoch, with per-rank batch-norm statistics (the default) and with synchronised ones (then
 * the statistics are bit-identical too, and the run equals one process at the global batch up
 * to float reassociation, REL_TOL as for the MLP). Its loss falls over the 3 epochs. */
START_TEST(conv_net_identical_on_every_rank_each_epoch)
{
    make_conv_data();
    dg_fit_data train = {.x = conv_x, .y = conv_y, .n = N_IMG};
    for (int sync = 0; sync < 2; sync++) {
        struct conv_model par, alone;
        build_conv(&par);
        build_conv(&alone);
        dg_fit_state state = {0}, alone_state = {0};
        dg_fit_config cfg = config(true), one = config(false);
        cfg.parallel = dg_dist_fit(sync ? sync_dist : dist);
        cfg.batch_size = one.batch_size = 12;
        cfg.state = &state;
        one.state = &alone_state;
        dg_dist_reset_stats(dist);
        double first = 0, last = 0;
        for (int epoch = 0; epoch < 3; epoch++) {
            dg_epoch_stats es, es1;
            ck_assert_msg(dg_fit(&par.md.m, par.md.opt, &train, NULL, &cfg, &es) == DG_OK,
                          "%s", dg_graph_error(par.md.g));
            ck_assert(isfinite(es.loss));
            assert_same_on_every_rank(checksum(&par.md));
            if (sync)
                assert_same_on_every_rank(conv_stats_hash(&par));
            ck_assert_int_eq(dg_fit(&alone.md.m, alone.md.opt, &train, NULL, &one, &es1), DG_OK);
            if (sync)
                ck_assert_double_eq_tol(es.loss, es1.loss, 1e-4 * (1 + fabs(es1.loss)));
            first = epoch == 0 ? es.loss : first;
            last = es.loss;
        }
        ck_assert_int_eq(state.step, 3 * N_IMG / 12);
        ck_assert_msg(last < first, "%s batch norm: loss %g after 3 epochs, %g after 1",
                      sync ? "synchronised" : "per-rank", last, first);
        if (sync) {
            assert_close(&par.md, &alone.md);
            const float *pm = dg_param_data(par.mean), *am = dg_param_data(alone.mean);
            for (int ch = 0; ch < CONV_CH; ch++)
                ck_assert_msg(fabsf(pm[ch] - am[ch]) <= REL_TOL * (1 + fabsf(am[ch])),
                              "channel %d: running mean %.9g vs %.9g", ch, pm[ch], am[ch]);
        } else {
            dg_dist_stats ds = dg_dist_get_stats(dist);
            ck_assert_int_eq(ds.steps, 3 * N_IMG / 12);
            ck_assert_int_eq(ds.buckets_early, ds.buckets); /* started inside dg_run */
        }
        release(&par.md);
        release(&alone.md);
    }
}
END_TEST

/* Rank 1 builds a wider input: every rank gets the error, nobody hangs. */
START_TEST(different_models_are_refused_on_every_rank)
{
    struct model md;
    int rank = dg_dist_rank(dist);
    build(&md, rank == 1 ? FEATURES + 1 : FEATURES, false);
    static float wide_x[N * (FEATURES + 1)];
    dg_fit_data train = {.x = rank == 1 ? wide_x : data_x, .y = data_y, .n = N};
    dg_fit_config cfg = config(true);
    ck_assert_int_eq(dg_fit(&md.m, md.opt, &train, NULL, &cfg, NULL), DG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(md.g), "different models"));
    release(&md);
}
END_TEST

/* A first batch with fewer examples than ranks is refused alike on every rank. */
START_TEST(first_batch_smaller_than_the_rank_count)
{
    struct model md;
    build(&md, FEATURES, false);
    dg_fit_data train = train_data();
    train.n = dg_dist_size(dist) - 1;
    dg_fit_config cfg = config(true);
    ck_assert_int_eq(dg_fit(&md.m, md.opt, &train, NULL, &cfg, NULL), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(md.g), "at least one each"));
    release(&md);
}
END_TEST

START_TEST(sum_is_in_rank_order_and_the_same_everywhere)
{
    int rank = dg_dist_rank(dist), size = dg_dist_size(dist);
    double v[2] = {1.0 + rank, rank == 0 ? 1e16 : 1.0};
    ck_assert_int_eq(dg_dist_sum(dist, v, 2), DG_OK);
    ck_assert_double_eq(v[0], size * (size + 1) / 2.0);
    double expect = 1e16;
    for (int r = 1; r < size; r++)
        expect += 1.0; /* rank order: each 1 is lost against 1e16 */
    ck_assert_double_eq(v[1], expect);
}
END_TEST

int main(int argc, char **argv)
{
    /* Buckets of 64 bytes: the model's four gradients go out in three reductions, started
     * from the backward pass in an order every rank must agree on. */
    dg_dist_options opts = DG_DIST_DEFAULTS;
    opts.bucket_bytes = 64;
    dist = dg_dist_init(&argc, &argv, &opts);
    if (dist == NULL || dg_dist_status(dist) != DG_OK) {
        fprintf(stderr, "%s\n", dist ? dg_dist_error(dist) : "out of memory");
        return 1;
    }
    dg_dist_options sync_opts = opts;
    sync_opts.sync_batch_norm = true;
    sync_dist = dg_dist_init(&argc, &argv, &sync_opts);
    if (sync_dist == NULL || dg_dist_status(sync_dist) != DG_OK) {
        fprintf(stderr, "%s\n", sync_dist ? dg_dist_error(sync_dist) : "out of memory");
        return 1;
    }
    make_data();
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, identical_on_every_rank_each_epoch);
    tcase_add_test(tc, equals_one_process_at_the_global_batch);
    tcase_add_test(tc, bitwise_reproducible_for_a_fixed_rank_count);
    tcase_add_test(tc, checkpoint_resumes_with_another_rank_count);
    tcase_add_test(tc, sum_is_in_rank_order_and_the_same_everywhere);
    tcase_add_test(tc, dropout_masks_differ_per_rank_parameters_do_not);
    tcase_add_test(tc, batch_norm_statistics_per_rank_rank_0_saved);
    if (dg_dist_size(dist) > 1)
        tcase_add_test(tc, different_models_are_refused_on_every_rank);
    if (dg_dist_size(dist) > 1)
        tcase_add_test(tc, first_batch_smaller_than_the_rank_count);
    tcase_add_test(tc, synchronised_batch_norm_equals_one_process);
    tcase_add_test(tc, conv_net_identical_on_every_rank_each_epoch);
    if (dg_dist_size(dist) > 1)
        tcase_add_test(tc, synchronised_batch_norm_needs_an_example_per_rank);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, dg_dist_rank(dist) == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* A rank that failed a check exits non-zero; mpirun then reports the job failed. */
    dg_dist_free(sync_dist); /* MPI stays up: dist called MPI_Init */
    dg_dist_free(dist);
    return failed == 0 ? 0 : 1;
}
