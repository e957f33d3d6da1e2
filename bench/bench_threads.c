/*
 * Threads on a shared machine: the default (adaptive) thread count against 1 thread and an
 * explicit 2 threads, on an idle machine and with a busy-loop competitor process beside it.
 *
 *   ./build/bench/bench_threads [--seconds S] [--repetitions R] [--only NAME_PREFIX]
 *                               [--no-competitor] [--unpinned] [--fifo-idle]
 *
 * Workloads (each a plan of the public API, as a user would write it):
 *   mlp_train_b128   training step of bench_mlp's model (784-256-128-10, ReLU, softmax
 *                    cross-entropy, Adam; feed x and y, dg_run, dg_optim_step), samples/s
 *   gemm_<shape>     one dg_matmul (dg_matmul_ex for the transposed one) of bench_gemm's MLP
 *                    shapes (layer 1 forward and weight gradient, layer 2 forward, batch-1
 *                    layer 1), named m x k x n as there, GFLOP/s
 * Modes: t1 (dg_graph_set_threads 1, and the optimizer 1), t2 (2 and 2), default (nothing set:
 * the plan's adaptive count, which the optimizer follows), t1_again (a second t1 plan: its
 * ratio to t1 shows how far two identical configurations differ in the same run, i.e. the
 * noise of the figures on a shared machine). DG_NUM_THREADS must be unset for
 * `default` to mean the default; the program refuses to run otherwise.
 *
 * Method: per workload the four plans are built and warmed up (mlp: 1000 steps unless that
 * takes 3 s, for Adam's steady state, see bench_mlp.c; gemm: 0.2 s), then R rounds (default
 * 5), each timing every mode for about S seconds (default 0.1) in turn (starting with another
 * mode each round, after a 30 ms pause each), so that a change of the machine's background
 * load hits the four alike. Medians over rounds. Then a busy-loop child process is forked
 * (pinned to the last CPU unless --unpinned; killed at the end of the workload), the same
 * plans (the default one having settled on the idle machine) run 0.3 s more (mlp: 1 s) to
 * meet it, and the rounds are repeated.
 *
 * --fifo-idle (needs root or CAP_SYS_NICE) runs the idle phase (its warm-up included) under
 * SCHED_FIFO priority 10 and puts every thread of the process back to SCHED_OTHER before the
 * busy phase: on a machine shared with other users' jobs it approximates an idle machine for
 * those few seconds (and holds the others back for as long). The busy phase always runs
 * under the normal scheduler.
 *
 * Output: `name value unit` lines, for each workload W, phase P (idle, busy) and mode M:
 *   threads_W_P_M            samples/s or GFLOP/s (median)
 *   threads_W_P_M_ratio      x (over threads_W_P_t1 of the same run)
 *   threads_W_P_default_used threads (dg_plan_threads_used after the last round)
 * Exit status 1 on any dagrad error (message on stderr), 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dagrad.h"

#include "bench_util.h"

enum { N_IN = 784, N_HIDDEN1 = 256, N_HIDDEN2 = 128, N_CLASSES = 10, N_BATCHES = 8 };
/* t1_again is a second 1-thread plan: its ratio to t1 is the noise of the measurement. */
enum { MODES = 4, DEFAULT_MODE = 2, MAX_REPETITIONS = 64, PAUSE_MICROSECONDS = 30000 };
static const char *const mode_names[MODES] = {"t1", "t2", "default", "t1_again"};
static const int mode_threads[MODES] = {1, 2, 0, 1};

struct options {
    double seconds;
    int repetitions;
    const char *only;
    bool competitor, pinned, fifo_idle;
};

struct shape {
    const char *name;
    bool transpose_a, transpose_b;
    int64_t m, n, k;
};

/* bench_gemm's names: m x k x n. */
static const struct shape gemm_shapes[] = {
    {"mlp1_fwd_128x784x256", false, false, 128, 256, 784},
    {"mlp1_dW_784x128x256_TN", true, false, 784, 256, 128},
    {"mlp2_fwd_128x256x128", false, false, 128, 128, 256},
    {"mlp1_fwd_1x784x256", false, false, 1, 256, 784},
};

/* One plan of a workload at one mode. */
struct job {
    dg_graph *graph;
    dg_plan *plan;
    dg_optim *opt;           /* mlp only */
    dg_node *x, *y;          /* mlp: inputs; gemm: the operands */
    float *x_data;
    int32_t *y_data;
    int64_t batch;
    double work;             /* samples or GFLOP per step */
    int64_t steps_per_round; /* from the warm-up */
    int64_t step;
};

static void job_free(struct job *j)
{
    dg_optim_free(j->opt);
    dg_plan_free(j->plan);
    dg_graph_free(j->graph);
    free(j->x_data);
    free(j->y_data);
    memset(j, 0, sizeof *j);
}

static bool fail(const char *what, dg_graph *g)
{
    fprintf(stderr, "bench_threads: %s: %s\n", what, g ? dg_graph_error(g) : "out of memory");
    return false;
}

static void fill_uniform(dg_rng *rng, float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = dg_rng_uniform(rng);
}

/* bench_mlp's training step at batch 128; threads 0 leaves every setting at its default. */
static bool build_mlp(struct job *j, int threads)
{
    const int64_t batch = 128;
    dg_graph *g = j->graph = dg_graph_new();
    if (g == NULL)
        return fail("mlp", NULL);
    if (threads > 0)
        dg_graph_set_threads(g, threads);
    dg_rng rng;
    dg_rng_seed(&rng, 1);
    j->batch = batch;
    j->work = (double)batch;
    j->x = dg_input(g, "x", 2, (int64_t[]){batch, N_IN});
    dg_node *h = dg_dense(g, j->x, N_HIDDEN1, DG_ACT_RELU, "fc1", &rng);
    h = dg_dense(g, h, N_HIDDEN2, DG_ACT_RELU, "fc2", &rng);
    dg_node *logits = dg_dense(g, h, N_CLASSES, DG_ACT_NONE, "fc3", &rng);
    j->y = dg_input_typed(g, "y", DG_I32, 1, (int64_t[]){batch});
    dg_node *loss = dg_softmax_cross_entropy(g, logits, j->y);
    dg_node *outputs[7] = {loss}, *params[6];
    if (dg_graph_status(g) != DG_OK || dg_graph_params(g, 6, params) != 6 ||
        dg_grad(g, loss, 6, params, outputs + 1) != DG_OK)
        return fail("mlp", g);
    j->plan = dg_compile(g, 7, outputs);
    if (j->plan == NULL)
        return fail("mlp compile", g);
    dg_adam_config cfg = DG_ADAM_DEFAULTS;
    j->opt = dg_optim_new_adam(6, params, outputs + 1, &cfg);
    if (j->opt == NULL || dg_optim_status(j->opt) != DG_OK ||
        (threads > 0 && dg_optim_set_threads(j->opt, threads) != DG_OK)) {
        fprintf(stderr, "bench_threads: adam: %s\n", dg_optim_error(j->opt));
        return false;
    }
    j->x_data = malloc(sizeof(float) * (size_t)(N_BATCHES * batch * N_IN));
    j->y_data = malloc(sizeof(int32_t) * (size_t)(N_BATCHES * batch));
    if (j->x_data == NULL || j->y_data == NULL)
        return fail("mlp", NULL);
    dg_rng data_rng;
    dg_rng_seed(&data_rng, 2);
    fill_uniform(&data_rng, j->x_data, N_BATCHES * batch * N_IN);
    for (int64_t i = 0; i < N_BATCHES * batch; i++)
        j->y_data[i] = (int32_t)dg_rng_below(&data_rng, N_CLASSES);
    return true;
}

/* One product of `shape`, its operands fed once. */
static bool build_gemm(struct job *j, const struct shape *s, int threads)
{
    dg_graph *g = j->graph = dg_graph_new();
    if (g == NULL)
        return fail("gemm", NULL);
    if (threads > 0)
        dg_graph_set_threads(g, threads);
    const int64_t a_rows = s->transpose_a ? s->k : s->m, a_cols = s->transpose_a ? s->m : s->k;
    const int64_t b_rows = s->transpose_b ? s->n : s->k, b_cols = s->transpose_b ? s->k : s->n;
    j->x = dg_input(g, "a", 2, (int64_t[]){a_rows, a_cols});
    j->y = dg_input(g, "b", 2, (int64_t[]){b_rows, b_cols});
    dg_node *c = dg_matmul_ex(g, j->x, j->y, s->transpose_a, s->transpose_b);
    j->plan = c != NULL ? dg_compile(g, 1, &c) : NULL;
    if (j->plan == NULL)
        return fail(s->name, g);
    j->work = 2e-9 * (double)(s->m * s->n * s->k);
    float *a = malloc(sizeof(float) * (size_t)(a_rows * a_cols));
    float *b = malloc(sizeof(float) * (size_t)(b_rows * b_cols));
    bool ok = a != NULL && b != NULL;
    if (ok) {
        dg_rng rng;
        dg_rng_seed(&rng, 3);
        fill_uniform(&rng, a, a_rows * a_cols);
        fill_uniform(&rng, b, b_rows * b_cols);
        ok = dg_feed(j->plan, j->x, a) == DG_OK && dg_feed(j->plan, j->y, b) == DG_OK;
    }
    free(a);
    free(b);
    return ok ? true : fail(s->name, g);
}

static bool job_step(struct job *j)
{
    dg_status st = DG_OK;
    if (j->opt != NULL) {
        int64_t b = j->step % N_BATCHES;
        st = dg_feed(j->plan, j->x, j->x_data + b * j->batch * N_IN);
        if (st == DG_OK)
            st = dg_feed(j->plan, j->y, j->y_data + b * j->batch);
    }
    if (st == DG_OK)
        st = dg_run(j->plan);
    if (st != DG_OK)
        return fail("run", j->graph);
    if (j->opt != NULL && dg_optim_step(j->opt, j->plan) != DG_OK) {
        fprintf(stderr, "bench_threads: adam: %s\n", dg_optim_error(j->opt));
        return false;
    }
    j->step++;
    return true;
}

/* Runs steps for at least `seconds` (and `min_steps` unless that takes max_seconds), then sets
 * steps_per_round for rounds of about round_seconds. */
static bool warm_up(struct job *j, double seconds, int64_t min_steps, double max_seconds,
                    double round_seconds)
{
    int64_t steps = 0;
    double t0 = dg_bench_seconds(), elapsed;
    do {
        if (!job_step(j))
            return false;
        steps++;
        elapsed = dg_bench_seconds() - t0;
    } while (elapsed < seconds || steps < 3 || (steps < min_steps && elapsed < max_seconds));
    j->steps_per_round = (int64_t)(round_seconds / (elapsed / (double)steps));
    if (j->steps_per_round < 1)
        j->steps_per_round = 1;
    return true;
}

/* R rounds over the modes; rates[m] gets each mode's median work per second. */
static bool measure(struct job *jobs, const struct options *opt, double *rates)
{
    double samples[MODES][MAX_REPETITIONS];
    for (int r = 0; r < opt->repetitions; r++) {
        for (int k = 0; k < MODES; k++) {
            /* Each round starts with another mode, and a pause before each lets OpenMP's
             * threads of the mode before stop spinning (libgomp spins ~10 ms after a region
             * before it sleeps), so that no mode always follows the same one. */
            const int m = (r + k) % MODES;
            usleep(PAUSE_MICROSECONDS);
            double t0 = dg_bench_seconds();
            for (int64_t i = 0; i < jobs[m].steps_per_round; i++)
                if (!job_step(&jobs[m]))
                    return false;
            double t = dg_bench_seconds() - t0;
            samples[m][r] = jobs[m].work * (double)jobs[m].steps_per_round / t;
        }
    }
    for (int m = 0; m < MODES; m++)
        rates[m] = dg_bench_median(samples[m], opt->repetitions);
    return true;
}

static void report(const char *name, const char *phase, const char *unit, const double *rates,
                   const struct job *jobs)
{
    for (int m = 0; m < MODES; m++) {
        printf("threads_%s_%s_%s %.*f %s\n", name, phase, mode_names[m],
               rates[m] >= 1000 ? 0 : 2, rates[m], unit);
        if (m > 0)
            printf("threads_%s_%s_%s_ratio %.2f x\n", name, phase, mode_names[m],
                   rates[m] / rates[0]);
    }
    printf("threads_%s_%s_default_used %d threads\n", name, phase,
           dg_plan_threads_used(jobs[DEFAULT_MODE].plan));
    fflush(stdout);
}

/* A child that spins until killed (and dies with its parent), pinned to the last CPU when
 * `pinned`. Returns its pid, or -1. */
static pid_t start_competitor(bool pinned)
{
    fflush(stdout);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    if (pinned) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpus > 1 ? (int)cpus - 1 : 0, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    volatile uint64_t spin = 0;
    for (;;)
        spin++;
}

static void stop_competitor(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Every thread of the process (OpenMP's too) to SCHED_FIFO priority 10 (fifo) or back to
 * SCHED_OTHER; false when refused. */
static bool set_fifo(bool fifo)
{
    struct sched_param param = {.sched_priority = fifo ? 10 : 0};
    DIR *tasks = opendir("/proc/self/task");
    if (tasks == NULL)
        return false;
    bool ok = true;
    for (struct dirent *e; (e = readdir(tasks)) != NULL;)
        if (e->d_name[0] != '.' &&
            sched_setscheduler(atoi(e->d_name), fifo ? SCHED_FIFO : SCHED_OTHER, &param) != 0)
            ok = false;
    closedir(tasks);
    return ok;
}

/* Builds, warms and measures one workload (shape NULL: the MLP), idle and busy. */
static bool run_workload(const struct options *opt, const char *name, const struct shape *shape)
{
    if (opt->only != NULL && strncmp(name, opt->only, strlen(opt->only)) != 0)
        return true;
    const bool mlp = shape == NULL;
    const char *unit = mlp ? "samples/s" : "GFLOP/s";
    struct job jobs[MODES];
    memset(jobs, 0, sizeof jobs);
    bool ok = true;
    if (opt->fifo_idle && !set_fifo(true)) {
        fprintf(stderr, "bench_threads: --fifo-idle: SCHED_FIFO refused\n");
        ok = false;
    }
    for (int m = 0; m < MODES && ok; m++)
        ok = mlp ? build_mlp(&jobs[m], mode_threads[m])
                 : build_gemm(&jobs[m], shape, mode_threads[m]);
    for (int m = 0; m < MODES && ok; m++)
        ok = mlp ? warm_up(&jobs[m], 0.2, 1000, 3.0, opt->seconds)
                 : warm_up(&jobs[m], 0.2, 0, 0.2, opt->seconds);
    double rates[MODES];
    if (ok && (ok = measure(jobs, opt, rates)))
        report(name, "idle", unit, rates, jobs);
    if (opt->fifo_idle && !set_fifo(false)) {
        fprintf(stderr, "bench_threads: --fifo-idle: SCHED_OTHER refused\n");
        ok = false;
    }
    if (ok && opt->competitor) {
        pid_t child = start_competitor(opt->pinned);
        if (child < 0) {
            fprintf(stderr, "bench_threads: fork failed\n");
            ok = false;
        }
        for (int m = 0; m < MODES && ok; m++)
            ok = warm_up(&jobs[m], mlp ? 1.0 : 0.3, 0, 0.0, opt->seconds);
        if (ok && (ok = measure(jobs, opt, rates)))
            report(name, "busy", unit, rates, jobs);
        stop_competitor(child);
    }
    for (int m = 0; m < MODES; m++)
        job_free(&jobs[m]);
    return ok;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_threads [--seconds S] [--repetitions R] [--only PREFIX] "
                    "[--no-competitor] [--unpinned] [--fifo-idle]\n");
}

int main(int argc, char **argv)
{
    struct options opt = {.seconds = 0.1, .repetitions = 5, .competitor = true, .pinned = true};
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(argv[i], "--no-competitor") == 0) {
            opt.competitor = false;
        } else if (strcmp(argv[i], "--unpinned") == 0) {
            opt.pinned = false;
        } else if (strcmp(argv[i], "--fifo-idle") == 0) {
            opt.fifo_idle = true;
        } else if (strcmp(argv[i], "--seconds") == 0 && value != NULL) {
            opt.seconds = atof(value);
            ok = opt.seconds > 0;
            i++;
        } else if (strcmp(argv[i], "--repetitions") == 0 && value != NULL) {
            opt.repetitions = atoi(value);
            ok = opt.repetitions > 0 && opt.repetitions <= MAX_REPETITIONS;
            i++;
        } else if (strcmp(argv[i], "--only") == 0 && value != NULL) {
            opt.only = value;
            i++;
        } else {
            ok = false;
        }
        if (!ok) {
            usage();
            return 2;
        }
    }
    if (getenv("DG_NUM_THREADS") != NULL) {
        fprintf(stderr, "bench_threads: unset DG_NUM_THREADS (it would fix the default count)\n");
        return 2;
    }
    printf("# cpus %ld, competitor %s, idle phase under %s\n", sysconf(_SC_NPROCESSORS_ONLN),
           !opt.competitor ? "off" : opt.pinned ? "pinned to the last cpu" : "unpinned",
           opt.fifo_idle ? "SCHED_FIFO" : "the normal scheduler");
    if (!run_workload(&opt, "mlp_train_b128", NULL))
        return 1;
    for (size_t s = 0; s < sizeof gemm_shapes / sizeof gemm_shapes[0]; s++) {
        char name[64];
        snprintf(name, sizeof name, "gemm_%s", gemm_shapes[s].name);
        if (!run_workload(&opt, name, &gemm_shapes[s]))
            return 1;
    }
    return 0;
}
