/*
 * Per-step timing of a plan, the one place dg_run's clock is read per step: the built-in
 * profile (dg_plan_set_profile) and the user's step timer (dg_plan_set_step_timer) share it.
 * Both are off by default; then dg_run pays one branch per step. With the profile on, dg_run
 * adds each step's time to a counter of that step; dg_plan_profile_report groups the steps by
 * op, shapes and pass (forward or backward) and prints the groups by total time. The clock is wall time, or with DG_PROFILE_CLOCK=cpu the
 * calling thread's CPU time (steady on a shared machine, but blind to other threads' work:
 * for one-thread runs).
 */
#include "plan_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"

double dg__profile_clock(const dg_plan *p)
{
    if (!p->profile_cpu)
        return dg__seconds();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

dg_status dg_plan_set_step_timer(dg_plan *p, dg_step_timer_fn fn, void *user)
{
    if (p == NULL)
        return DG_ERR_INVALID_ARG;
    p->step_timer = fn;
    p->step_timer_user = fn ? user : NULL;
    return DG_OK;
}

double dg__plan_step_timed(dg_plan *p, int s, double since)
{
    double now = dg__profile_clock(p);
    if (p->profile_seconds != NULL)
        p->profile_seconds[s] += now - since;
    if (p->step_timer != NULL)
        p->step_timer(p->step_timer_user, p->graph->nodes[p->steps[s]], now - since);
    return now;
}

dg_status dg_plan_set_profile(dg_plan *p, bool on)
{
    if (p == NULL)
        return DG_ERR_INVALID_ARG;
    if (!on) {
        dg__free(p->profile_seconds);
        p->profile_seconds = NULL;
        p->profile_runs = 0;
        return DG_OK;
    }
    double *t = dg__calloc((size_t)(p->n_steps > 0 ? p->n_steps : 1), sizeof *t);
    if (t == NULL) {
        dg_graph_set_error(p->graph, DG_ERR_NOMEM, "plan_set_profile: out of memory for %d "
                           "step counters", p->n_steps);
        return DG_ERR_NOMEM;
    }
    dg__free(p->profile_seconds);
    p->profile_seconds = t;
    p->profile_runs = 0;
    const char *clock = getenv("DG_PROFILE_CLOCK");
    p->profile_cpu = clock != NULL && !strcmp(clock, "cpu");
    return DG_OK;
}

struct group {
    char key[200];
    double seconds;
    int steps;
};

static int by_time(const void *a, const void *b)
{
    double x = ((const struct group *)a)->seconds, y = ((const struct group *)b)->seconds;
    return (x < y) - (x > y);
}

/* Adds t to the group named key (linear search: plans have a few thousand steps at most). */
static void add(struct group *gr, int *n, const char *key, double t)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(gr[i].key, key)) {
            gr[i].seconds += t;
            gr[i].steps++;
            return;
        }
    snprintf(gr[*n].key, sizeof gr[*n].key, "%s", key);
    gr[*n].seconds = t;
    gr[*n].steps = 1;
    (*n)++;
}

static void print_groups(FILE *f, struct group *gr, int n, int top, double total, int runs,
                         const char *title)
{
    qsort(gr, (size_t)n, sizeof *gr, by_time);
    fprintf(f, "%s (ms per run, %% of the plan's step time)\n", title);
    for (int i = 0; i < n && (top <= 0 || i < top); i++)
        fprintf(f, "  %9.3f ms %5.1f%%  x%-3d %s\n", 1e3 * gr[i].seconds / runs,
                total > 0 ? 100.0 * gr[i].seconds / total : 0.0, gr[i].steps, gr[i].key);
}

dg_status dg_plan_profile_report(const dg_plan *p, FILE *f, int top)
{
    if (p == NULL || f == NULL)
        return DG_ERR_INVALID_ARG;
    if (p->profile_seconds == NULL || p->profile_runs == 0) {
        fprintf(f, "profile: no profiled run (dg_plan_set_profile, then dg_run)\n");
        return DG_OK;
    }
    size_t cap = (size_t)(p->n_steps > 0 ? p->n_steps : 1);
    struct group *ops = dg__calloc(cap, sizeof *ops);
    struct group *shaped = dg__calloc(cap, sizeof *shaped);
    if (ops == NULL || shaped == NULL) {
        dg__free(ops);
        dg__free(shaped);
        return DG_ERR_NOMEM;
    }
    int n_ops = 0, n_shaped = 0;
    double total = 0;
    const dg_graph *g = p->graph;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        double t = p->profile_seconds[s];
        total += t;
        char key[200], buf[64];
        snprintf(key, sizeof key, "%s %s", dg_node_op_name(n), n->is_backward ? "bwd" : "fwd");
        add(ops, &n_ops, key, t);
        int len = snprintf(key, sizeof key, "%s %s", dg_node_op_name(n),
                           n->is_backward ? "bwd" : "fwd");
        for (int i = 0; i < n->n_inputs && len < (int)sizeof key; i++)
            len += snprintf(key + len, sizeof key - (size_t)len, "%s%s", i ? " " : " ",
                            dg__shape_str(&p->values[n->inputs[i]->index].shape, buf,
                                          sizeof buf));
        if (len < (int)sizeof key)
            snprintf(key + len, sizeof key - (size_t)len, " -> %s",
                     dg__shape_str(&p->values[n->index].shape, buf, sizeof buf));
        add(shaped, &n_shaped, key, t);
    }
    fprintf(f, "profile: %d runs, %.3f ms of steps per run, %d steps (%s time)\n",
            p->profile_runs, 1e3 * total / p->profile_runs, p->n_steps,
            p->profile_cpu ? "the calling thread's CPU" : "wall");
    print_groups(f, ops, n_ops, 0, total, p->profile_runs, "by op and pass");
    print_groups(f, shaped, n_shaped, top, total, p->profile_runs, "by op, pass and shapes");
    dg__free(ops);
    dg__free(shaped);
    return DG_OK;
}
