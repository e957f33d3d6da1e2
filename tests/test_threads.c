/* Thread settings, the adaptive thread policy, and bitwise reproducibility whatever the count. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "graph/plan_internal.h"
#include "graph/threads.h"
#include "test_util.h"

START_TEST(thread_count_settings)
{
    unsetenv("DG_NUM_THREADS");
    dg_graph *g = dg_graph_new();
    ck_assert_int_ge(dg_graph_threads(g), 1);
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){4});
    dg_node *y = dg_add(g, x, x);
    /* Nothing set: adaptive between 1 and every core (fixed at 1 on a one-core machine). */
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_plan_threads(p), omp_get_num_procs());
    ck_assert(dg_plan_threads_adaptive(p) == (omp_get_num_procs() > 1));
    dg_plan_free(p);
    /* An explicit count is exactly what every run uses. */
    ck_assert_int_eq(dg_graph_set_threads(g, 3), DG_OK);
    ck_assert_int_eq(dg_graph_threads(g), 3);
    p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_plan_threads(p), 3);
    ck_assert(!dg_plan_threads_adaptive(p));
    float data[4] = {1, 2, 3, 4};
    ck_assert_int_eq(dg_feed(p, x, data), DG_OK);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(dg_run(p), DG_OK);
        ck_assert_int_eq(dg_plan_threads_used(p), 3);
    }
    ck_assert_int_eq(dg_plan_set_threads(p, 1), DG_OK);
    ck_assert_int_eq(dg_plan_threads(p), 1);
    ck_assert_int_eq(dg_plan_threads_used(p), 1);
    ck_assert(!dg_plan_threads_adaptive(p));
    /* 0 on the plan: the default again, whatever the graph says. */
    ck_assert_int_eq(dg_plan_set_threads(p, 0), DG_OK);
    ck_assert(dg_plan_threads_adaptive(p) == (omp_get_num_procs() > 1));
    ck_assert_int_eq(dg_plan_set_threads(p, -1), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_plan_set_threads(p, 1025), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    /* DG_NUM_THREADS is an explicit setting too: fixed, for the graph and the plan. */
    setenv("DG_NUM_THREADS", "2", 1);
    ck_assert_int_eq(dg_plan_set_threads(p, 0), DG_OK);
    ck_assert(!dg_plan_threads_adaptive(p));
    ck_assert_int_eq(dg_plan_threads_used(p), 2);
    ck_assert_int_eq(dg_graph_set_threads(g, 0), DG_OK);
    ck_assert_int_eq(dg_graph_threads(g), 2);
    dg_plan *q = dg_compile(g, 1, &y);
    ck_assert(!dg_plan_threads_adaptive(q));
    ck_assert_int_eq(dg_plan_threads(q), 2);
    dg_plan_free(q);
    setenv("DG_NUM_THREADS", "garbage", 1);
    ck_assert_int_ge(dg_graph_threads(g), 1);
    q = dg_compile(g, 1, &y);
    ck_assert(dg_plan_threads_adaptive(q) == (omp_get_num_procs() > 1));
    dg_plan_free(q);
    unsetenv("DG_NUM_THREADS");
    dg_plan_free(p);
    dg_graph_free(g);
    ck_assert_int_eq(dg_plan_threads(NULL), 0);
    ck_assert_int_eq(dg_plan_threads_used(NULL), 0);
    ck_assert(!dg_plan_threads_adaptive(NULL));
}
END_TEST

/* ---- The policy against simulated machines ---------------------------------------------------
 * A machine gives the time of a run at each count; a run is STEPS equal steps, and during a
 * probe the policy is asked after each step (as the executor does), so an abandoned probe
 * finishes its run at the current count. */

enum { STEPS = 10, MAX_COUNT = 8 };
/* Simulated runs take milliseconds, like a training step (the policy's windows and waits are
 * set in seconds). */
#define UNIT 1e-3

struct machine {
    double time_at[MAX_COUNT + 1]; /* UNITs of a run at each count */
    double noise;                  /* each run's time times 1 + noise * uniform(-1, 1) */
    dg_test_rng rng;
    int stall_count, stall_every;  /* every stall_every-th run at stall_count threads... */
    double stall;                  /* ...takes this many UNITs more (a preempted thread) */
    int64_t runs_at_stall_count;
};

struct tally {
    double seconds;
    int64_t runs_at[MAX_COUNT + 1]; /* runs that began at each count */
};

static void simulate(struct dg__thread_policy *tp, struct machine *m, int runs,
                     struct tally *tally)
{
    for (int r = 0; r < runs; r++) {
        int count = dg__thread_policy_begin(tp);
        ck_assert_int_ge(count, 1);
        ck_assert_int_le(count, tp->max);
        tally->runs_at[count]++;
        const double scale = 1.0 + m->noise * (double)dg_test_uniform(&m->rng, -1.0f, 1.0f);
        double elapsed = 0.0;
        if (count == m->stall_count && m->stall_every > 0 &&
            ++m->runs_at_stall_count % m->stall_every == 0)
            elapsed += m->stall * UNIT; /* stalls at the start, the worst case for abandoning */
        const bool probing = dg__thread_policy_probing(tp);
        for (int s = 0; s < STEPS; s++) {
            elapsed += m->time_at[count] * UNIT * scale / STEPS;
            if (probing)
                count = dg__thread_policy_step(tp, elapsed);
        }
        dg__thread_policy_end(tp, elapsed);
        tally->seconds += elapsed;
    }
}

START_TEST(policy_fixed)
{
    struct dg__thread_policy tp;
    dg__thread_policy_init(&tp, 3, false);
    ck_assert(!dg__thread_policy_timed(&tp));
    struct machine m = {.time_at = {0, 1.0, 0.1, 10.0}};
    struct tally tally = {0};
    simulate(&tp, &m, 100, &tally);
    ck_assert_int_eq(tally.runs_at[3], 100);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 3);
    /* Adaptive over a single core is fixed too. */
    dg__thread_policy_init(&tp, 1, true);
    ck_assert(!dg__thread_policy_timed(&tp));
    ck_assert_int_eq(dg__thread_policy_begin(&tp), 1);
}
END_TEST

/* Idle machine: 2 threads 1.7x as fast as 1. The policy settles on 2 and everything it tries
 * costs under 2 % over 5000 runs of 1 ms (the first 30 ms at 1 thread included). */
START_TEST(policy_idle_keeps_every_core)
{
    struct dg__thread_policy tp;
    dg__thread_policy_init(&tp, 2, true);
    ck_assert(dg__thread_policy_timed(&tp));
    struct machine m = {.time_at = {0, 1.7, 1.0}};
    struct tally tally = {0};
    simulate(&tp, &m, 5000, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 2);
    ck_assert_double_le(tally.seconds, 5000 * 1.0 * UNIT * 1.02);
    ck_assert_int_ge(tp.n_probes, 5);
}
END_TEST

/* A competitor beside it: 2 threads 10x slower than 1. The first probe of 2 threads is given
 * up within its first run, and the total stays within 3 % of running on 1 thread throughout
 * (the untimed first run at 2 threads aside). */
START_TEST(policy_busy_drops_to_one)
{
    struct dg__thread_policy tp;
    dg__thread_policy_init(&tp, 2, true);
    struct machine m = {.time_at = {0, 1.0, 10.0}};
    struct tally tally = {0};
    simulate(&tp, &m, 5000, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 1);
    ck_assert_int_eq(tp.n_switches, 0);
    ck_assert_int_ge(tp.n_probes, 3);
    ck_assert_double_le(tally.seconds - 10.0 * UNIT, 4999 * 1.0 * UNIT * 1.03);
}
END_TEST

/* The machine changes under a long run: idle, then a competitor arrives (the policy leaves 2
 * threads within a few dozen runs: drift), then it leaves again (back to 2 within the longest
 * probe interval and its cost wait). */
START_TEST(policy_follows_the_machine)
{
    struct dg__thread_policy tp;
    dg__thread_policy_init(&tp, 2, true);
    struct machine m = {.time_at = {0, 1.7, 1.0}};
    struct tally tally = {0};
    simulate(&tp, &m, 3000, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 2);
    m.time_at[2] = 10.0;
    m.time_at[1] = 1.0;
    simulate(&tp, &m, 40, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 1);
    simulate(&tp, &m, 3000, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 1);
    m.time_at[2] = 0.6;
    simulate(&tp, &m, DG__THREADS_MAX_INTERVAL + 200, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 2);
}
END_TEST

/* A competitor that stalls only every third run of the team, by 30x a run: most runs look as
 * fast as before, the mean is 11x slower. The policy leaves 2 threads within a few dozen runs
 * and stays on 1. */
START_TEST(policy_sees_intermittent_stalls)
{
    struct dg__thread_policy tp;
    dg__thread_policy_init(&tp, 2, true);
    struct machine m = {.time_at = {0, 1.7, 1.0}};
    struct tally tally = {0};
    simulate(&tp, &m, 2000, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 2);
    m.stall_count = 2;
    m.stall_every = 3;
    m.stall = 30.0;
    simulate(&tp, &m, 60, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 1);
    struct tally later = {0};
    simulate(&tp, &m, 5000, &later);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 1);
    ck_assert_double_le(later.seconds, 5000 * 1.7 * UNIT * 1.05);
}
END_TEST

/* Four cores whose best count is 2 (say two busy neighbours): the policy tries 4 first, then
 * halves, and ends on 2. */
START_TEST(policy_climbs_to_the_best_count)
{
    struct dg__thread_policy tp;
    dg__thread_policy_init(&tp, 4, true);
    struct machine m = {.time_at = {0, 4.0, 2.2, 100.0, 2.6}};
    struct tally tally = {0};
    simulate(&tp, &m, 3000, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 2);
    ck_assert_int_eq(tally.runs_at[3], 0);
    ck_assert_int_ge(tally.runs_at[2], 2800);
}
END_TEST

/* 20 % noise on every run does not make the policy flap away from a 1.7x faster count. */
START_TEST(policy_ignores_noise)
{
    struct dg__thread_policy tp;
    dg__thread_policy_init(&tp, 2, true);
    struct machine m = {.time_at = {0, 1.7, 1.0}, .noise = 0.2};
    dg_test_rng_seed(&m.rng, 7);
    struct tally tally = {0};
    simulate(&tp, &m, 5000, &tally);
    ck_assert_int_eq(dg__thread_policy_current(&tp), 2);
    ck_assert_int_ge(tally.runs_at[2], 4900);
}
END_TEST

/* A probe run that falls behind is given up in the middle: the rest of the run goes back to
 * the current count, and the next runs are steady. */
START_TEST(policy_abandons_a_probe_mid_run)
{
    struct dg__thread_policy tp;
    dg__thread_policy_init(&tp, 2, true);
    ck_assert_int_eq(dg__thread_policy_begin(&tp), 2); /* the warm-up: every core */
    dg__thread_policy_end(&tp, 5.0);
    for (int i = 0; i < DG__THREADS_WINDOW; i++) {
        ck_assert_int_eq(dg__thread_policy_begin(&tp), 1);
        ck_assert(!dg__thread_policy_probing(&tp));
        dg__thread_policy_end(&tp, 1.0);
    }
    ck_assert_int_eq(dg__thread_policy_begin(&tp), 2);
    ck_assert(dg__thread_policy_probing(&tp));
    ck_assert_int_eq(dg__thread_policy_step(&tp, 0.5), 2);
    ck_assert_int_eq(dg__thread_policy_step(&tp, 1.6), 1); /* past 1.5x the baseline */
    ck_assert(!dg__thread_policy_probing(&tp));
    ck_assert_int_eq(dg__thread_policy_step(&tp, 1.7), 1);
    dg__thread_policy_end(&tp, 1.8);
    ck_assert_int_eq(tp.n_probes, 1);
    ck_assert_int_eq(tp.n_switches, 0);
    ck_assert_int_eq(dg__thread_policy_begin(&tp), 1);
    ck_assert(!dg__thread_policy_probing(&tp));
}
END_TEST

static void run_with_threads(int threads, const float *data, int64_t n, float *result)
{
    dg_graph *g = dg_graph_new();
    dg_graph_set_threads(g, threads);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){n / 1000, 1000});
    dg_node *b = dg_param(g, "b", 1, (int64_t[]){1000});
    for (int i = 0; i < 1000; i++)
        dg_param_data(b)[i] = (float)i / 1000.0f;
    dg_node *y = dg_div(g, dg_mul(g, dg_add(g, x, b), x), dg_add_scalar(g, b, 1.0f));
    ck_assert_ptr_nonnull(y);
    dg_plan *p = dg_compile(g, 1, &y);
    dg_feed(p, x, data);
    ck_assert_int_eq(dg_run(p), DG_OK);
    memcpy(result, dg_data(p, y), (size_t)n * sizeof *result);
    dg_plan_free(p);
    dg_graph_free(g);
}

START_TEST(same_threads_same_bits)
{
    int64_t n = 200 * 1000;
    float *data = malloc((size_t)n * sizeof *data);
    float *r1 = malloc((size_t)n * sizeof *r1), *r2 = malloc((size_t)n * sizeof *r2);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 3);
    dg_test_fill_uniform(&rng, data, n, -3.0f, 3.0f);
    for (int t = 1; t <= 2; t++) {
        run_with_threads(t, data, n, r1);
        run_with_threads(t, data, n, r2);
        ck_assert_mem_eq(r1, r2, (size_t)n * sizeof *r1);
    }
    /* Elementwise results do not depend on the thread count either. */
    run_with_threads(1, data, n, r1);
    run_with_threads(2, data, n, r2);
    ck_assert_mem_eq(r1, r2, (size_t)n * sizeof *r1);
    free(data);
    free(r1);
    free(r2);
}
END_TEST

/* ---- Plans: results do not depend on the count, so switching is safe --------------------- */

enum { TRAIN_STEPS = 30, BATCH = 64, IN = 300, HIDDEN = 512, OUT = 10 };
enum { MODE_FIXED_1, MODE_FIXED_2, MODE_DEFAULT, MODE_SCRAMBLED };

/* Trains a model big enough that its products and elementwise ops split across threads, with
 * the plan's and the optimizer's threads as `mode` says (scrambled: a different fixed count
 * before every run, through the internal policy). Writes the losses and the first layer. */
static void train_mode(int mode, float *losses, float *weights)
{
    unsetenv("DG_NUM_THREADS");
    dg_graph *g = dg_graph_new();
    if (mode == MODE_FIXED_1 || mode == MODE_FIXED_2)
        dg_graph_set_threads(g, mode == MODE_FIXED_1 ? 1 : 2);
    dg_rng rng;
    dg_rng_seed(&rng, 11);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){BATCH, IN});
    dg_node *y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){BATCH});
    dg_node *h = dg_dense(g, x, HIDDEN, DG_ACT_RELU, "fc1", &rng);
    h = dg_dense(g, h, HIDDEN, DG_ACT_TANH, "fc2", &rng);
    dg_node *logits = dg_dense(g, h, OUT, DG_ACT_NONE, "fc3", &rng);
    dg_node *loss = dg_softmax_cross_entropy(g, logits, y);
    dg_node *params[6], *grads[6];
    int n = 0;
    ck_assert_int_eq(dg_grad_params(g, loss, 6, params, grads, &n), DG_OK);
    dg_node *outputs[7] = {loss};
    memcpy(outputs + 1, grads, sizeof grads);
    dg_plan *p = dg_compile(g, 1 + n, outputs);
    ck_assert_ptr_nonnull(p);
    dg_optim *opt = dg_optim_new_adam(n, params, grads, &DG_ADAM_DEFAULTS);
    if (mode == MODE_FIXED_1 || mode == MODE_FIXED_2)
        dg_optim_set_threads(opt, mode == MODE_FIXED_1 ? 1 : 2);
    ck_assert(dg_plan_threads_adaptive(p) ==
              (mode >= MODE_DEFAULT && omp_get_num_procs() > 1));

    float *x_data = malloc(sizeof(float) * BATCH * IN);
    int32_t y_data[BATCH];
    dg_test_rng data_rng;
    dg_test_rng_seed(&data_rng, 5);
    dg_test_fill_uniform(&data_rng, x_data, BATCH * IN, -1.0f, 1.0f);
    for (int i = 0; i < BATCH; i++)
        y_data[i] = (int32_t)(dg_test_rng_next(&data_rng) % OUT);
    for (int step = 0; step < TRAIN_STEPS; step++) {
        if (mode == MODE_SCRAMBLED)
            dg__thread_policy_init(&p->threads, 1 + step % 3, false);
        ck_assert_int_eq(dg_feed(p, x, x_data), DG_OK);
        ck_assert_int_eq(dg_feed(p, y, y_data), DG_OK);
        ck_assert_int_eq(dg_run(p), DG_OK);
        ck_assert_int_eq(dg_optim_step(opt, p), DG_OK);
        losses[step] = dg_data(p, loss)[0];
    }
    memcpy(weights, dg_param_data(params[0]), sizeof(float) * IN * HIDDEN);
    free(x_data);
    dg_optim_free(opt);
    dg_plan_free(p);
    dg_graph_free(g);
}

START_TEST(any_thread_count_same_bits)
{
    float losses[4][TRAIN_STEPS];
    float *weights[4];
    for (int mode = 0; mode < 4; mode++) {
        weights[mode] = malloc(sizeof(float) * IN * HIDDEN);
        train_mode(mode, losses[mode], weights[mode]);
    }
    ck_assert(losses[0][TRAIN_STEPS - 1] < 0.5f * losses[0][0]); /* it learns the batch */
    for (int mode = 1; mode < 4; mode++) {
        ck_assert_mem_eq(losses[mode], losses[0], sizeof losses[0]);
        ck_assert_mem_eq(weights[mode], weights[0], sizeof(float) * IN * HIDDEN);
    }
    for (int mode = 0; mode < 4; mode++)
        free(weights[mode]);
}
END_TEST

/* layer_norm forward and its fused backward (layer_norm_grad, layer_norm_gamma_grad):
 * bitwise equal at 1 and 2 threads, on rows enough to split (gamma's blocks included). */
START_TEST(layer_norm_same_bits_any_thread_count)
{
    enum { ROWS = 1000, A = 3, B = 40, N = ROWS * A * B };
    float *x = malloc(sizeof(float) * N), *w = malloc(sizeof(float) * N);
    float *first[4] = {malloc(sizeof(float) * N), malloc(sizeof(float) * N),
                       malloc(sizeof(float) * A * B), malloc(sizeof(float) * A * B)};
    ck_assert(x && w && first[0] && first[1] && first[2] && first[3]);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 21);
    dg_test_fill_uniform(&rng, x, N, -3.0f, 5.0f);
    dg_test_fill_uniform(&rng, w, N, -1.0f, 1.0f);
    dg_graph *g = dg_graph_new();
    dg_node *xi = dg_input(g, "x", 3, (int64_t[]){ROWS, A, B});
    dg_node *wi = dg_input(g, "w", 3, (int64_t[]){ROWS, A, B});
    dg_node *gamma = dg_param(g, "gamma", 2, (int64_t[]){A, B});
    dg_node *beta = dg_param(g, "beta", 2, (int64_t[]){A, B});
    ck_assert(gamma && beta);
    dg_test_fill_uniform(&rng, dg_param_data(gamma), A * B, 0.5f, 1.5f);
    dg_test_fill_uniform(&rng, dg_param_data(beta), A * B, -0.5f, 0.5f);
    dg_node *y = dg_layer_norm(g, xi, gamma, beta, 2, 1e-5f);
    dg_node *loss = dg_sum(g, dg_mul(g, y, wi), 0, NULL, false);
    dg_node *wrt[3] = {xi, gamma, beta}, *grads[3];
    ck_assert_int_eq(dg_grad(g, loss, 3, wrt, grads), DG_OK);
    dg_node *outs[4] = {y, grads[0], grads[1], grads[2]};
    const int64_t sizes[4] = {N, N, A * B, A * B};
    for (int threads = 1; threads <= 2; threads++) {
        dg_plan *p = dg_compile(g, 4, outs);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(dg_plan_set_threads(p, threads), DG_OK);
        ck_assert_int_eq(dg_feed(p, xi, x), DG_OK);
        ck_assert_int_eq(dg_feed(p, wi, w), DG_OK);
        ck_assert_int_eq(dg_run(p), DG_OK);
        for (int k = 0; k < 4; k++) {
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
    for (int k = 0; k < 4; k++)
        free(first[k]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_add_test(tc, thread_count_settings);
    tcase_add_test(tc, same_threads_same_bits);
    tcase_add_test(tc, any_thread_count_same_bits);
    tcase_add_test(tc, layer_norm_same_bits_any_thread_count);
    suite_add_tcase(s, tc);
    TCase *policy = tcase_create("policy");
    tcase_add_test(policy, policy_fixed);
    tcase_add_test(policy, policy_idle_keeps_every_core);
    tcase_add_test(policy, policy_busy_drops_to_one);
    tcase_add_test(policy, policy_follows_the_machine);
    tcase_add_test(policy, policy_sees_intermittent_stalls);
    tcase_add_test(policy, policy_climbs_to_the_best_count);
    tcase_add_test(policy, policy_ignores_noise);
    tcase_add_test(policy, policy_abandons_a_probe_mid_run);
    suite_add_tcase(s, policy);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
