/*
 * A plan's thread policy: how many threads each run of the plan hands its kernels.
 *
 * Explicit settings (dg_graph_set_threads, dg_plan_set_threads with n > 0, DG_NUM_THREADS) give
 * a fixed count. Without one the policy is adaptive: now and then it times a few runs at
 * another count and keeps whichever is faster. On an idle machine that is every core; with
 * another busy process beside it, where a team waits at each region's barrier for a
 * descheduled thread and runs several times slower, it is fewer. Kernels give
 * bitwise-identical results at any thread count, so the choice only changes speed.
 *
 * The state machine never reads a clock itself: the executor passes it elapsed seconds, so
 * tests drive it with made-up times (tests/test_threads.c).
 *
 *   warm-up  the plan's first run, on every core (so that a single run of a big plan gets
 *            them all; also starts the threads and their packing buffers): not timed
 *   steady   runs at `current` (1 after the warm-up); the latest of them, at least
 *            DG__THREADS_WINDOW runs and DG__THREADS_WINDOW_SECONDS, are the baseline a probe
 *            has to beat
 *   probe    runs at `candidate` (the first probe: every core; then half or double `current`,
 *            alternating) until they too span DG__THREADS_WINDOW runs and
 *            DG__THREADS_WINDOW_SECONDS; if their mean beats the baseline's by
 *            DG__THREADS_MARGIN, `current` becomes `candidate`. Abandoned, even in the middle
 *            of a run (dg__thread_policy_step), once it falls DG__THREADS_PROBE_SLACK behind
 *            the baseline (plus DG__THREADS_STALL_SECONDS of grace for one preemption).
 * Windows span a few scheduler time slices, not just a few runs: on a loaded machine a run of
 * a millisecond is now and then stalled for several by a preempted team thread, and a window
 * of four such runs is a coin toss. Starting at 1 and probing upwards makes the first probe on
 * a busy machine cheap: a team slowed down by a competitor is given up within about one run
 * instead of being the baseline for several.
 *
 * A probe starts after `interval` steady runs or DG__THREADS_MAX_WAIT_SECONDS of them, whichever
 * is first (the interval doubling, up to DG__THREADS_MAX_INTERVAL, while probes fail; back to
 * DG__THREADS_FIRST_INTERVAL after a switch that can go on in the same direction, 16 -> 8 -> 4,
 * and unchanged after one that cannot), or early, towards fewer threads, when the latest
 * window of steady runs becomes DG__THREADS_DRIFT times slower than the count's reference (a
 * competitor arrived). A periodic probe also waits until the steady time since the last
 * failed probe is DG__THREADS_COST_FACTOR times what that probe cost: a probe on a busy
 * machine can stall for a scheduler time slice (milliseconds) however short the run, and
 * this bounds probing to a few percent of the time. A drift probe does not wait.
 */
#ifndef DG_THREADS_H
#define DG_THREADS_H

#include <stdbool.h>
#include <stdint.h>

/* A baseline or probe window: at least this many runs and this many seconds. */
#define DG__THREADS_WINDOW 4
#define DG__THREADS_WINDOW_SECONDS 0.03
/* Steady run times kept for the baseline (a ring); a baseline of shorter runs than
 * DG__THREADS_WINDOW_SECONDS / DG__THREADS_HISTORY spans less time. */
#define DG__THREADS_HISTORY 64
/* A probe must be this much faster than the baseline (fraction) to win. */
#define DG__THREADS_MARGIN 0.05
/* A probe is abandoned as soon as it has taken this factor more than the baseline's time for
 * the runs it has started, plus the grace. */
#define DG__THREADS_PROBE_SLACK 1.5
#define DG__THREADS_STALL_SECONDS 0.004
/* Steady runs before the next probe: the first interval, and its cap. */
#define DG__THREADS_FIRST_INTERVAL 8
#define DG__THREADS_MAX_INTERVAL 1024
/* ... or after this much steady time, whichever comes first (runs that became much slower
 * would otherwise make the interval minutes long). */
#define DG__THREADS_MAX_WAIT_SECONDS 1.0
/* Steady runs whose latest window is this factor slower than the reference start a probe of
 * fewer threads early. */
#define DG__THREADS_DRIFT 2.0
/* Steady time before another probe, in multiples of what the last failed probe cost beyond
 * its baseline. On a loaded machine the runs just after a probe are slower too (the team's
 * threads spin for a while before they sleep), about as much again, which the factor covers:
 * probing then costs about 2 / DG__THREADS_COST_FACTOR of the time. */
#define DG__THREADS_COST_FACTOR 128.0

enum dg__thread_phase {
    DG__THREADS_FIXED = 0,   /* explicit count: nothing is timed */
    DG__THREADS_WARMUP,
    DG__THREADS_STEADY,
    DG__THREADS_PROBE,
};

struct dg__thread_policy {
    enum dg__thread_phase phase;
    int max;               /* the explicit count, or the largest count the policy tries */
    int current;           /* count of steady runs (== max when fixed) */
    int candidate;         /* the count being probed */
    bool probed;           /* a probe has ended (the first one tries max) */
    bool probe_up;         /* direction of the next periodic probe when both exist */
    bool abandoned;        /* the probe run in progress went back to `current` */
    double recent[DG__THREADS_HISTORY]; /* steady run times, a ring */
    int64_t n_recent;      /* steady runs recorded since the last probe (recent holds the last
                              DG__THREADS_HISTORY of them) */
    int64_t window_runs;   /* finished runs of the probe */
    double window_seconds; /* their total */
    double baseline;       /* mean seconds of a steady run when the probe started */
    double reference;      /* run time of `current` that drift is measured against; 0 none */
    int64_t runs;          /* finished runs */
    int64_t next_probe;    /* a periodic probe starts once `runs` reaches this */
    int64_t interval;      /* steady runs between periodic probes */
    double steady_seconds; /* steady time since the last probe */
    double probe_cost;     /* seconds the last failed probe cost beyond its baseline */
    int64_t n_probes;      /* probes started (for tests and diagnostics) */
    int64_t n_switches;    /* probes won */
};

/* A fixed policy of `count` threads (adaptive false), or an adaptive one between 1 and `count`
 * starting at `count`. count < 1 counts as 1; an adaptive policy with count 1 stays fixed. */
void dg__thread_policy_init(struct dg__thread_policy *tp, int count, bool adaptive);

/* Whether the executor must time runs (and call step/end): the policy is adaptive. */
static inline bool dg__thread_policy_timed(const struct dg__thread_policy *tp)
{
    return tp->phase != DG__THREADS_FIXED;
}

/* The thread count for the run about to start. */
int dg__thread_policy_begin(struct dg__thread_policy *tp);

/* Whether the run in progress is a probe, whose steps the executor reports through
 * dg__thread_policy_step. */
static inline bool dg__thread_policy_probing(const struct dg__thread_policy *tp)
{
    return tp->phase == DG__THREADS_PROBE && !tp->abandoned;
}

/* During a probe run: `elapsed` seconds of the run have passed; returns the count for the rest
 * of it (the current count once the probe cannot win any more). */
int dg__thread_policy_step(struct dg__thread_policy *tp, double elapsed);

/* Records a finished run of `seconds` and moves the state machine on. */
void dg__thread_policy_end(struct dg__thread_policy *tp, double seconds);

/* The count ordinary runs use now. */
static inline int dg__thread_policy_current(const struct dg__thread_policy *tp)
{
    return tp->current;
}

/* DG_NUM_THREADS when it holds a count in 1..1024, else 0. */
int dg__env_threads(void);

/* Seconds on a monotonic clock. */
double dg__seconds(void);

#endif
