/*
 * Batch norm's fused kernels and synchronised batch norm (dg_plan_set_collective).
 *
 *  - sync_equals_full_batch: two "ranks" (two threads, each with its own graph and plan, fed
 *    one half of a batch) joined by an in-process collective (a barrier and a shared buffer,
 *    summing in rank order) give the same outputs, input gradients and running statistics
 *    as one plan over the whole batch, and their gamma/beta gradients add up to its ones.
 *    Tolerance 2e-5 relative (float32 kernels; the two runs add the same terms in another
 *    order: per rank, then across ranks).
 *  - collective calls: how many per training step, none in evaluation, cleared by NULL;
 *    a failing collective stops the run with an error naming batch_norm.
 *  - thread counts: forward and fused backward bitwise identical at 1 and 2 threads.
 */
#include "dagrad.h"
#include "test_util.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { FULL = 6, HALF = FULL / 2, C = 3, H = 3, W = 7, S = H * W };

struct bn_net {
    dg_graph *g;
    dg_plan *p;
    dg_node *x, *w, *y, *rm, *rv, *gamma, *beta, *loss, *grads[3];
};

/* y = batch_norm(x) with gamma and beta, loss = sum(y * w); gradients of x, gamma, beta. */
static void build(struct bn_net *n, int64_t batch, const float *gamma, const float *beta)
{
    float zeros[C] = {0}, ones[C] = {1, 1, 1};
    n->g = dg_graph_new();
    dg_graph *g = n->g;
    n->x = dg_input(g, "x", 4, (int64_t[]){batch, C, H, W});
    n->w = dg_input(g, "w", 4, (int64_t[]){batch, C, H, W});
    n->gamma = dg_param(g, "gamma", 1, (int64_t[]){C});
    n->beta = dg_param(g, "beta", 1, (int64_t[]){C});
    ck_assert_ptr_nonnull(n->beta);
    memcpy(dg_param_data(n->gamma), gamma, sizeof(float) * C);
    memcpy(dg_param_data(n->beta), beta, sizeof(float) * C);
    n->rm = dg_constant(g, 1, (int64_t[]){C}, zeros);
    n->rv = dg_constant(g, 1, (int64_t[]){C}, ones);
    n->y = dg_batch_norm(g, n->x, n->gamma, n->beta, n->rm, n->rv, dg_dropout_key(g), 0.1f,
                         1e-5f);
    n->loss = dg_sum(g, dg_mul(g, n->y, n->w), 0, NULL, false);
    ck_assert_msg(n->loss != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_grad(g, n->loss, 3, (dg_node *[]){n->x, n->gamma, n->beta}, n->grads),
                     DG_OK);
    dg_node *outs[5] = {n->y, n->loss, n->grads[0], n->grads[1], n->grads[2]};
    n->p = dg_compile(g, 5, outs);
    ck_assert_msg(n->p != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_plan_set_threads(n->p, 1), DG_OK);
}

static void destroy(struct bn_net *n)
{
    dg_plan_free(n->p);
    dg_graph_free(n->g);
}

/* The in-process collective of two ranks: each rank copies its values into its slot, waits
 * for the other, and both add slot 0 + slot 1 (the same order on both ranks). */
enum { MAX_VALUES = 64 };
struct fake_world {
    pthread_barrier_t barrier;
    double slot[2][MAX_VALUES];
    int calls[2];
    int64_t sizes[2][16];
};

struct fake_rank {
    struct fake_world *world;
    int rank;
    struct bn_net *net;
    const float *x, *w;
    dg_status status;
};

static int fake_sum(void *user, double *values, int64_t n)
{
    struct fake_rank *r = user;
    struct fake_world *world = r->world;
    if (n > MAX_VALUES)
        return 1;
    int call = world->calls[r->rank]++;
    if (call < 16)
        world->sizes[r->rank][call] = n;
    memcpy(world->slot[r->rank], values, (size_t)n * sizeof *values);
    pthread_barrier_wait(&world->barrier);
    for (int64_t i = 0; i < n; i++)
        values[i] = world->slot[0][i] + world->slot[1][i];
    pthread_barrier_wait(&world->barrier); /* nobody overwrites a slot still being read */
    return 0;
}

static void *rank_main(void *arg)
{
    struct fake_rank *r = arg;
    dg_plan *p = r->net->p;
    r->status = dg_plan_set_collective(p, fake_sum, r);
    if (r->status == DG_OK)
        r->status = dg_feed(p, r->net->x, r->x);
    if (r->status == DG_OK)
        r->status = dg_feed(p, r->net->w, r->w);
    if (r->status == DG_OK)
        r->status = dg_dropout_feed_key(p, 1, 0, true);
    if (r->status == DG_OK)
        r->status = dg_run(p);
    return NULL;
}

static void check_close(const float *got, const float *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 2e-5f * fmaxf(1.0f, fabsf(want[i])),
                      "%s[%lld]: got %.8g, want %.8g", what, (long long)i, (double)got[i],
                      (double)want[i]);
}

START_TEST(sync_equals_full_batch)
{
    static float x[FULL * C * S], w[FULL * C * S];
    const float gamma[C] = {1.5f, -0.5f, 0.75f}, beta[C] = {0.1f, 0.2f, -0.3f};
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    dg_test_fill_uniform(&rng, x, FULL * C * S, 3.0f, 6.0f); /* an offset mean */
    dg_test_fill_uniform(&rng, w, FULL * C * S, -1.0f, 1.0f);
    /* one process, the whole batch */
    struct bn_net full;
    build(&full, FULL, gamma, beta);
    ck_assert_int_eq(dg_feed(full.p, full.x, x), DG_OK);
    ck_assert_int_eq(dg_feed(full.p, full.w, w), DG_OK);
    ck_assert_int_eq(dg_dropout_feed_key(full.p, 1, 0, true), DG_OK);
    ck_assert_msg(dg_run(full.p) == DG_OK, "%s", dg_graph_error(full.g));
    /* two ranks, half each, synchronised */
    struct fake_world world = {0};
    pthread_barrier_init(&world.barrier, NULL, 2);
    struct bn_net nets[2];
    struct fake_rank ranks[2];
    pthread_t threads[2];
    const int64_t half = HALF * C * S;
    for (int r = 0; r < 2; r++) {
        build(&nets[r], HALF, gamma, beta);
        ranks[r] = (struct fake_rank){.world = &world, .rank = r, .net = &nets[r],
                                      .x = x + r * half, .w = w + r * half};
    }
    for (int r = 0; r < 2; r++)
        ck_assert_int_eq(pthread_create(&threads[r], NULL, rank_main, &ranks[r]), 0);
    for (int r = 0; r < 2; r++)
        pthread_join(threads[r], NULL);
    pthread_barrier_destroy(&world.barrier);
    for (int r = 0; r < 2; r++) {
        ck_assert_msg(ranks[r].status == DG_OK, "rank %d: %s", r, dg_graph_error(nets[r].g));
        /* forward (2 calls) + batch_norm_grad (2) + batch_norm_gamma_grad (2) */
        ck_assert_int_eq(world.calls[r], 6);
        ck_assert_int_eq(world.sizes[r][0], C + 1);
        ck_assert_int_eq(world.sizes[r][1], C);
        check_close(dg_data(nets[r].p, nets[r].y), dg_data(full.p, full.y) + r * half, half,
                    "y");
        check_close(dg_data(nets[r].p, nets[r].grads[0]),
                    dg_data(full.p, full.grads[0]) + r * half, half, "dx");
        check_close(dg_data(nets[r].p, nets[r].rm), dg_data(full.p, full.rm), C,
                    "running_mean");
        check_close(dg_data(nets[r].p, nets[r].rv), dg_data(full.p, full.rv), C,
                    "running_var");
    }
    /* parameter gradients: each rank's part; their sum is the whole batch's */
    for (int k = 1; k < 3; k++) {
        float sum[C];
        for (int c = 0; c < C; c++)
            sum[c] = dg_data(nets[0].p, nets[0].grads[k])[c] +
                     dg_data(nets[1].p, nets[1].grads[k])[c];
        check_close(sum, dg_data(full.p, full.grads[k]), C, k == 1 ? "dgamma" : "dbeta");
    }
    /* and the halves alone (no collective) differ: the test can fail */
    float loss_sum = dg_data(nets[0].p, nets[0].loss)[0] + dg_data(nets[1].p, nets[1].loss)[0];
    ck_assert_float_eq_tol(loss_sum, dg_data(full.p, full.loss)[0], 1e-4f);
    for (int r = 0; r < 2; r++)
        destroy(&nets[r]);
    destroy(&full);
}
END_TEST

/* A collective that counts its calls, fails when told to, and otherwise adds nothing (one
 * process). */
struct counting {
    int calls, fail_with;
};

static int counting_sum(void *user, double *values, int64_t n)
{
    struct counting *c = user;
    c->calls++;
    return c->fail_with;
}

START_TEST(collective_calls_and_failure)
{
    static float x[HALF * C * S], w[HALF * C * S];
    const float gamma[C] = {1, 1, 1}, beta[C] = {0, 0, 0};
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 8);
    dg_test_fill_uniform(&rng, x, HALF * C * S, -1.0f, 1.0f);
    dg_test_fill_uniform(&rng, w, HALF * C * S, -1.0f, 1.0f);
    struct bn_net n;
    build(&n, HALF, gamma, beta);
    ck_assert_int_eq(dg_plan_set_collective(NULL, counting_sum, NULL), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_feed(n.p, n.x, x), DG_OK);
    ck_assert_int_eq(dg_feed(n.p, n.w, w), DG_OK);
    /* reference: no collective */
    ck_assert_int_eq(dg_dropout_feed_key(n.p, 1, 0, false), DG_OK);
    ck_assert_int_eq(dg_run(n.p), DG_OK);
    float eval_dx[HALF * C * S];
    memcpy(eval_dx, dg_data(n.p, n.grads[0]), sizeof eval_dx);
    struct counting count = {0};
    ck_assert_int_eq(dg_plan_set_collective(n.p, counting_sum, &count), DG_OK);
    /* evaluation: no call */
    ck_assert_int_eq(dg_run(n.p), DG_OK);
    ck_assert_int_eq(count.calls, 0);
    check_close(dg_data(n.p, n.grads[0]), eval_dx, HALF * C * S, "eval dx");
    /* training: six calls a step */
    ck_assert_int_eq(dg_dropout_feed_key(n.p, 1, 1, true), DG_OK);
    ck_assert_int_eq(dg_run(n.p), DG_OK);
    ck_assert_int_eq(count.calls, 6);
    /* a failure stops the run, naming the node and the op */
    count.fail_with = 5;
    dg_status st = dg_run(n.p);
    ck_assert_int_eq(st, DG_ERR_INVALID_ARG);
    const char *msg = dg_graph_error(n.g);
    ck_assert_msg(strstr(msg, "batch_norm") != NULL && strstr(msg, "collective") != NULL &&
                  strstr(msg, "returned 5") != NULL, "message: %s", msg);
    ck_assert_int_eq(count.calls, 7);
    /* cleared: no more calls, runs succeed again */
    ck_assert_int_eq(dg_plan_set_collective(n.p, NULL, &count), DG_OK);
    ck_assert_int_eq(dg_run(n.p), DG_OK);
    ck_assert_int_eq(count.calls, 7);
    destroy(&n);
}
END_TEST

/* Large enough to split across threads: forward and fused backward bitwise equal. */
START_TEST(bitwise_at_any_thread_count)
{
    enum { B = 8, CH = 16, HW = 32 * 32, N = B * CH * HW };
    float *x = malloc(sizeof(float) * N), *w = malloc(sizeof(float) * N);
    float *first[3] = {malloc(sizeof(float) * N), malloc(sizeof(float) * N),
                       malloc(sizeof(float) * CH)};
    ck_assert(x && w && first[0] && first[1] && first[2]);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 9);
    dg_test_fill_uniform(&rng, x, N, -3.0f, 5.0f);
    dg_test_fill_uniform(&rng, w, N, -1.0f, 1.0f);
    dg_graph *g = dg_graph_new();
    dg_node *xi = dg_input(g, "x", 4, (int64_t[]){B, CH, 32, 32});
    dg_node *wi = dg_input(g, "w", 4, (int64_t[]){B, CH, 32, 32});
    dg_node *y = dg_batch_norm_layer(g, xi, 0.1f, 1e-5f, "bn", NULL, NULL);
    dg_node *loss = dg_sum(g, dg_mul(g, y, wi), 0, NULL, false);
    dg_node *params[2], *grads[3];
    int n_params = 0;
    ck_assert_int_eq(dg_grad_params(g, loss, 2, params, grads + 1, &n_params), DG_OK);
    ck_assert_int_eq(dg_grad(g, loss, 1, &xi, grads), DG_OK);
    dg_node *outs[3] = {y, grads[0], grads[1]};
    for (int threads = 1; threads <= 2; threads++) {
        dg_plan *p = dg_compile(g, 3, outs);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(dg_plan_set_threads(p, threads), DG_OK);
        ck_assert_int_eq(dg_feed(p, xi, x), DG_OK);
        ck_assert_int_eq(dg_feed(p, wi, w), DG_OK);
        ck_assert_int_eq(dg_dropout_feed_key(p, 1, 0, true), DG_OK);
        ck_assert_int_eq(dg_run(p), DG_OK);
        int64_t sizes[3] = {N, N, CH};
        for (int k = 0; k < 3; k++) {
            if (threads == 1)
                memcpy(first[k], dg_data(p, outs[k]), sizeof(float) * sizes[k]);
            else
                ck_assert_msg(memcmp(first[k], dg_data(p, outs[k]),
                                     sizeof(float) * sizes[k]) == 0, "output %d differs", k);
        }
        dg_plan_free(p);
    }
    dg_graph_free(g);
    free(x);
    free(w);
    for (int k = 0; k < 3; k++)
        free(first[k]);
}
END_TEST

/* In evaluation the input gradient is g * gamma / sqrt(running_var + eps) (PyTorch's): x is not
 * read, so an infinite input leaves every gradient finite. */
START_TEST(eval_gradient_does_not_read_x)
{
    enum { B = 2, CH = 3, HW = 4, N = B * CH * HW };
    float x[N], w[N];
    for (int i = 0; i < N; i++) {
        x[i] = 0.25f * (float)(i % 7) - 0.5f;
        w[i] = 1.0f - 0.125f * (float)(i % 5);
    }
    x[0] = INFINITY;
    x[N - 1] = -INFINITY;
    dg_graph *g = dg_graph_new();
    dg_node *xi = dg_input(g, "x", 4, (int64_t[]){B, CH, 2, 2});
    dg_node *wi = dg_input(g, "w", 4, (int64_t[]){B, CH, 2, 2});
    dg_node *y = dg_batch_norm_layer(g, xi, 0.1f, 1e-5f, "bn", NULL, NULL);
    dg_node *loss = dg_sum(g, dg_mul(g, y, wi), 0, NULL, false);
    dg_node *dx = NULL;
    ck_assert_int_eq(dg_grad(g, loss, 1, &xi, &dx), DG_OK);
    dg_plan *p = dg_compile(g, 1, &dx);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_feed(p, xi, x), DG_OK);
    ck_assert_int_eq(dg_feed(p, wi, w), DG_OK);
    ck_assert_int_eq(dg_dropout_feed_key(p, 1, 0, false), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    const float *got = dg_data(p, dx);
    /* fresh layer: gamma 1, running variance 1 */
    const float scale = (float)(1.0 / sqrt(1.0 + 1e-5));
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabsf(got[i] - w[i] * scale) <= 1e-6f, "dx[%d] = %g, want %g", i,
                      (double)got[i], (double)(w[i] * scale));
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batchnorm");
    TCase *tc = tcase_create("batchnorm");
    tcase_add_test(tc, sync_equals_full_batch);
    tcase_add_test(tc, collective_calls_and_failure);
    tcase_add_test(tc, bitwise_at_any_thread_count);
    tcase_add_test(tc, eval_gradient_does_not_read_x);
    suite_add_tcase(s, tc);
    return dg_test_run(s);
}
