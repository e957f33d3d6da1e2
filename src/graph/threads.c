/* A plan's thread policy (threads.h) and the public thread settings of plans. */
#include "threads.h"

#include <omp.h>
#include <stdlib.h>
#include <time.h>

#include "plan_internal.h"

int dg__env_threads(void)
{
    const char *env = getenv("DG_NUM_THREADS");
    if (env == NULL)
        return 0;
    char *end;
    long n = strtol(env, &end, 10);
    return end != env && *end == '\0' && n >= 1 && n <= 1024 ? (int)n : 0;
}

double dg__seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- The state machine ---------------------------------------------------------------------- */

void dg__thread_policy_init(struct dg__thread_policy *tp, int count, bool adaptive)
{
    *tp = (struct dg__thread_policy){
        .phase = adaptive && count > 1 ? DG__THREADS_WARMUP : DG__THREADS_FIXED,
        .max = count > 1 ? count : 1,
        .current = count > 1 ? count : 1,
        .interval = DG__THREADS_FIRST_INTERVAL,
    };
}

int dg__thread_policy_begin(struct dg__thread_policy *tp)
{
    tp->abandoned = false;
    return tp->phase == DG__THREADS_PROBE ? tp->candidate : tp->current;
}

/* The most the probe may have taken so far, with `runs` of its runs finished and one in
 * progress: no run may fall far behind the baseline, so that a count many times slower is
 * abandoned within about one run's time, with grace for one preemption. */
static double probe_limit(const struct dg__thread_policy *tp, int64_t runs)
{
    return (double)(runs + 1) * tp->baseline * DG__THREADS_PROBE_SLACK +
           DG__THREADS_STALL_SECONDS;
}

int dg__thread_policy_step(struct dg__thread_policy *tp, double elapsed)
{
    if (!dg__thread_policy_probing(tp))
        return tp->current;
    if (tp->window_seconds + elapsed > probe_limit(tp, tp->window_runs)) {
        tp->abandoned = true;
        return tp->current;
    }
    return tp->candidate;
}

/* Whether `runs` runs taking `seconds` in all make a full window. */
static bool window_full(int64_t runs, double seconds)
{
    return runs >= DG__THREADS_WINDOW && seconds >= DG__THREADS_WINDOW_SECONDS;
}

/* Steady runs at `current` from now on; the next periodic probe after `interval` of them. */
static void settle(struct dg__thread_policy *tp)
{
    tp->phase = DG__THREADS_STEADY;
    tp->n_recent = 0;
    tp->steady_seconds = 0.0;
    tp->next_probe = tp->runs + tp->interval;
}

/* The mean of the latest steady runs that make a window (or of all that are kept). */
static double recent_mean(const struct dg__thread_policy *tp)
{
    const int64_t kept = tp->n_recent < DG__THREADS_HISTORY ? tp->n_recent : DG__THREADS_HISTORY;
    double sum = 0.0;
    int64_t used = 0;
    while (used < kept && !window_full(used, sum)) {
        sum += tp->recent[(tp->n_recent - 1 - used) % DG__THREADS_HISTORY];
        used++;
    }
    return used > 0 ? sum / (double)used : 0.0;
}

static void start_probe(struct dg__thread_policy *tp, int candidate)
{
    tp->baseline = recent_mean(tp);
    tp->candidate = candidate;
    tp->window_runs = 0;
    tp->window_seconds = 0.0;
    tp->phase = DG__THREADS_PROBE;
    tp->n_probes++;
}

static int half(int count) { return count / 2 >= 1 ? count / 2 : 1; }

/* The count a periodic probe tries: every core the first time; then half or double the
 * current count (capped at max), alternating when both exist. */
static int periodic_candidate(struct dg__thread_policy *tp)
{
    if (!tp->probed)
        return tp->max;
    const bool can_down = tp->current > 1, can_up = tp->current < tp->max;
    const bool go_up = can_up && (!can_down || tp->probe_up);
    tp->probe_up = !go_up;
    if (!go_up)
        return half(tp->current);
    return tp->current * 2 <= tp->max ? tp->current * 2 : tp->max;
}

/* Ends the probe, won or lost (abandoned, or too slow over its window). */
static void end_probe(struct dg__thread_policy *tp, bool won)
{
    tp->probed = true;
    if (won) {
        /* Go on soon in the same direction while there is one (16 -> 8 -> 4 ...); where the
         * only way is back (2 -> 1 on two cores: a competitor arrived), keep the interval. */
        const bool went_up = tp->candidate > tp->current;
        tp->current = tp->candidate;
        tp->reference = tp->window_seconds / (double)tp->window_runs;
        tp->probe_cost = 0.0;
        tp->n_switches++;
        if (went_up ? tp->current < tp->max : tp->current > 1) {
            tp->interval = DG__THREADS_FIRST_INTERVAL;
            tp->probe_up = went_up;
        }
    } else {
        const double cost = tp->window_seconds - (double)tp->window_runs * tp->baseline;
        tp->reference = tp->baseline;
        tp->interval = tp->interval * 2 <= DG__THREADS_MAX_INTERVAL ? tp->interval * 2
                                                                     : DG__THREADS_MAX_INTERVAL;
        tp->probe_cost = cost > 0.0 ? cost : 0.0;
    }
    settle(tp);
}

static void steady_run(struct dg__thread_policy *tp, double seconds)
{
    tp->recent[tp->n_recent % DG__THREADS_HISTORY] = seconds;
    tp->n_recent++;
    tp->steady_seconds += seconds;
    const bool baseline_ready = window_full(tp->n_recent, tp->steady_seconds) ||
                                tp->n_recent >= DG__THREADS_HISTORY;
    if (!baseline_ready)
        return;
    /* Drift is measured on the mean of the latest window, not run by run: with a competitor,
     * a team's runs are mostly as fast as before and now and then stalled for a time slice,
     * which a count of slow runs misses. A drift probe does not wait for the cost of the
     * last probe: the current count just became twice as slow, and fewer threads are cheap
     * to try on a busy machine. */
    const bool drifted = tp->current > 1 && tp->reference > 0.0 &&
                         recent_mean(tp) > tp->reference * DG__THREADS_DRIFT;
    const bool due = tp->runs >= tp->next_probe ||
                     tp->steady_seconds >= DG__THREADS_MAX_WAIT_SECONDS;
    if (drifted)
        start_probe(tp, half(tp->current));
    else if (due && tp->steady_seconds >= DG__THREADS_COST_FACTOR * tp->probe_cost)
        start_probe(tp, periodic_candidate(tp));
}

void dg__thread_policy_end(struct dg__thread_policy *tp, double seconds)
{
    if (tp->phase == DG__THREADS_FIXED)
        return;
    tp->runs++;
    switch (tp->phase) {
    case DG__THREADS_WARMUP:
        tp->current = 1;
        settle(tp);
        tp->next_probe = tp->runs + DG__THREADS_WINDOW;
        break;
    case DG__THREADS_STEADY:
        steady_run(tp, seconds);
        break;
    case DG__THREADS_PROBE:
        tp->window_runs++;
        tp->window_seconds += seconds;
        if (tp->abandoned || tp->window_seconds > probe_limit(tp, tp->window_runs - 1))
            end_probe(tp, false);
        else if (window_full(tp->window_runs, tp->window_seconds) ||
                 tp->window_runs >= DG__THREADS_HISTORY)
            end_probe(tp, tp->window_seconds < (double)tp->window_runs * tp->baseline *
                                                   (1.0 - DG__THREADS_MARGIN));
        break;
    case DG__THREADS_FIXED:
        break;
    }
}

/* ---- Plans ------------------------------------------------------------------------------- */

void dg__plan_threads_init(dg_plan *p, int setting)
{
    const int env = dg__env_threads();
    if (setting > 0) {
        dg__thread_policy_init(&p->threads, setting, false);
    } else if (env > 0) {
        dg__thread_policy_init(&p->threads, env, false);
    } else {
        const int procs = omp_get_num_procs();
        dg__thread_policy_init(&p->threads, procs, true);
    }
}

dg_status dg_plan_set_threads(dg_plan *p, int n_threads)
{
    if (p == NULL)
        return DG_ERR_INVALID_ARG;
    if (n_threads < 0 || n_threads > 1024) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "plan_set_threads: %d threads is out of "
                           "range 0..1024", n_threads);
        return DG_ERR_INVALID_ARG;
    }
    /* More threads may need a larger workspace (per-thread scratch): size it before switching,
     * and keep the old count when it cannot be had. */
    struct dg__thread_policy old = p->threads;
    dg__plan_threads_init(p, n_threads);
    if (p->runnable && p->threads.max > old.max) {
        dg_status st = dg__plan_workspace(p);
        if (st != DG_OK) {
            p->threads = old;
            p->runnable = true;
            return st;
        }
    }
    return DG_OK;
}

int dg_plan_threads(const dg_plan *p) { return p ? p->threads.max : 0; }

int dg_plan_threads_used(const dg_plan *p)
{
    return p ? dg__thread_policy_current(&p->threads) : 0;
}

bool dg_plan_threads_adaptive(const dg_plan *p)
{
    return p != NULL && dg__thread_policy_timed(&p->threads);
}
