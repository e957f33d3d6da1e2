/*
 * The public gradient checker: dg_grad's gradients against fourth-order central finite
 * differences of the loss (the policy and its reasoning are in dagrad_autodiff.h and
 * docs/testing.md).
 *
 * Built on the public API only (build, grad, compile, feed, run, dg_param_data); the graph's
 * internals are used for one thing, sticking an error message to the graph.
 */
#include "dagrad.h"
#include "alloc.h"
#include "dagrad_autodiff.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dg_gradcheck_options dg_gradcheck_defaults(void)
{
    return (dg_gradcheck_options){
        .step = 1e-2,
        .rtol = 1e-2,
        .atol = 1e-3,
        .max_elements_per_node = 64,
        .seed = 0x5eed,
    };
}

/* ---- element choice ------------------------------------------------------------------- */

/* splitmix64: a small generator local to one check (no global RNG state). */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Chooses `want` of the `numel` flat indices uniformly without replacement, in increasing
 * order (Knuth's selection sampling: O(numel) time, no memory beyond the result). */
static void choose_elements(int64_t numel, int64_t want, uint64_t seed, int64_t *chosen)
{
    if (want >= numel) {
        for (int64_t i = 0; i < numel; i++)
            chosen[i] = i;
        return;
    }
    uint64_t state = seed;
    int64_t taken = 0;
    for (int64_t i = 0; i < numel && taken < want; i++) {
        double u = (double)(next_random(&state) >> 11) * (1.0 / 9007199254740992.0);
        if ((double)(numel - i) * u < (double)(want - taken))
            chosen[taken++] = i;
    }
}

/* ---- the finite-difference stencil ---------------------------------------------------- */

/* Derivative at offset 0 of the polynomial through (t[j], f[j]), j = 0..4, with t[0] = 0
 * (Lagrange differentiation). For t = {0, -2h, -h, h, 2h} this is exactly the classic
 * [f(-2h) - 8f(-h) + 8f(h) - f(2h)] / 12h; with the float32-rounded offsets it keeps the
 * stencil's fourth order. */
static double stencil_derivative(const double t[5], const double f[5])
{
    double d = 0.0;
    for (int j = 0; j < 5; j++) {
        double w;
        if (j == 0) {
            w = 0.0;
            for (int m = 1; m < 5; m++)
                w -= 1.0 / t[m];
        } else {
            double num = 1.0, den = 1.0;
            for (int m = 1; m < 5; m++) {
                if (m == j)
                    continue;
                num *= -t[m];
            }
            for (int m = 0; m < 5; m++)
                if (m != j)
                    den *= t[j] - t[m];
            w = num / den;
        }
        d += w * f[j];
    }
    return d;
}

/* ---- argument checks ------------------------------------------------------------------ */

static dg_status fail(dg_graph *g, dg_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sticks "gradcheck: <message>" to the graph and returns status. */
static dg_status fail(dg_graph *g, dg_status status, const char *fmt, ...)
{
    char msg[512]; /* the graph keeps at most this much of a message */
    va_list args;
    va_start(args, fmt);
    vsnprintf(msg, sizeof msg, fmt, args);
    va_end(args);
    dg_graph_set_error(g, status, "gradcheck: %s", msg);
    return status;
}

static int find_feed(int n_feeds, dg_node *const *feed_nodes, const dg_node *node)
{
    for (int k = 0; k < n_feeds; k++)
        if (feed_nodes[k] == node)
            return k;
    return -1;
}

static dg_status check_args(dg_graph *g, dg_node *loss, int n_wrt, dg_node *const *wrt,
                            int n_feeds, dg_node *const *feed_nodes,
                            const void *const *feed_data, const dg_gradcheck_options *o)
{
    if (loss == NULL)
        return fail(g, DG_ERR_INVALID_ARG, "loss is NULL");
    if (dg_node_graph(loss) != g)
        return fail(g, DG_ERR_FOREIGN_NODE, "the loss belongs to another graph");
    if (n_wrt < 1 || wrt == NULL)
        return fail(g, DG_ERR_INVALID_ARG, "no wrt nodes given (n_wrt %d)", n_wrt);
    if (n_feeds < 0 || (n_feeds > 0 && (feed_nodes == NULL || feed_data == NULL)))
        return fail(g, DG_ERR_INVALID_ARG, "feed arrays are NULL or n_feeds %d < 0", n_feeds);
    if (!(o->step >= 1e-6 && o->step <= 0.25))
        return fail(g, DG_ERR_INVALID_ARG, "step %g is outside [1e-6, 0.25]", o->step);
    if (!(o->rtol >= 0.0 && o->atol >= 0.0 && isfinite(o->rtol) && isfinite(o->atol)))
        return fail(g, DG_ERR_INVALID_ARG, "rtol %g and atol %g must be finite and >= 0",
                        o->rtol, o->atol);
    for (int k = 0; k < n_feeds; k++) {
        if (feed_nodes[k] == NULL || feed_data[k] == NULL)
            return fail(g, DG_ERR_INVALID_ARG, "feed %d: node or data is NULL", k);
        if (dg_node_graph(feed_nodes[k]) != g)
            return fail(g, DG_ERR_FOREIGN_NODE, "feed %d belongs to another graph", k);
        if (dg_node_kind_of(feed_nodes[k]) != DG_NODE_INPUT)
            return fail(g, DG_ERR_INVALID_ARG, "feed %d is a %s node, not an input", k,
                        dg_node_op_name(feed_nodes[k]));
    }
    for (int i = 0; i < n_wrt; i++) {
        dg_node *w = wrt[i];
        if (w == NULL)
            return fail(g, DG_ERR_INVALID_ARG, "wrt[%d] is NULL", i);
        if (dg_node_graph(w) != g)
            return fail(g, DG_ERR_FOREIGN_NODE, "wrt[%d] belongs to another graph", i);
        dg_node_kind kind = dg_node_kind_of(w);
        if (kind != DG_NODE_INPUT && kind != DG_NODE_PARAM)
            return fail(g, DG_ERR_INVALID_ARG, "wrt[%d] (node %d) is a %s node; only inputs "
                        "and parameters can be perturbed", i, dg_node_index(w),
                        dg_node_op_name(w));
        if (dg_node_dtype(w) != DG_F32)
            return fail(g, DG_ERR_DTYPE, "wrt[%d] ('%s') is int32, which is not differentiable",
                        i, dg_node_name(w));
        if (kind == DG_NODE_INPUT && find_feed(n_feeds, feed_nodes, w) < 0)
            return fail(g, DG_ERR_INVALID_ARG, "wrt[%d] is input '%s', which is not among the "
                        "feeds", i, dg_node_name(w));
    }
    return DG_OK;
}

/* ---- the check ------------------------------------------------------------------------ */

struct check_state {
    dg_graph *g;
    dg_node *loss;
    dg_plan *loss_plan;
    int n_feeds;
    dg_node *const *feed_nodes;
    const void *const *feed_data;
};

/* Feeds every feed the plan holds, except `skip` (fed by the caller). */
static dg_status feed_plan(dg_plan *p, int n_feeds, dg_node *const *nodes,
                           const void *const *data)
{
    for (int k = 0; k < n_feeds; k++) {
        if (dg_plan_numel(p, nodes[k]) == 0)
            continue; /* the plan does not read this input */
        dg_status st = dg_feed(p, nodes[k], data[k]);
        if (st != DG_OK)
            return st;
    }
    return DG_OK;
}

/* Runs the loss plan; *value is the loss. */
static dg_status eval_loss(struct check_state *s, double *value)
{
    dg_status st = dg_run(s->loss_plan);
    if (st != DG_OK)
        return st;
    const float *l = dg_data(s->loss_plan, s->loss);
    if (l == NULL)
        return dg_graph_status(s->g);
    *value = (double)l[0];
    return DG_OK;
}

/* The numeric derivative of the loss with respect to element e of wrt node w. `values` is
 * the node's current storage: the parameter's own, or a private copy of the fed input that is
 * re-fed after each change. The element is restored bit for bit. */
static dg_status numeric_derivative(struct check_state *s, dg_node *w, float *values, int64_t e,
                                    double h, double base, double *out)
{
    static const int offsets[4] = {-2, -1, 1, 2};
    bool is_input = dg_node_kind_of(w) == DG_NODE_INPUT;
    float x = values[e];
    double t[5] = {0.0}, f[5] = {base};
    dg_status st = DG_OK;
    for (int j = 0; j < 4 && st == DG_OK; j++) {
        float moved = (float)((double)x + offsets[j] * h);
        t[j + 1] = (double)moved - (double)x; /* exact: both are floats of similar size */
        values[e] = moved;
        if (is_input)
            st = dg_feed(s->loss_plan, w, values);
        if (st == DG_OK)
            st = eval_loss(s, &f[j + 1]);
    }
    values[e] = x;
    if (is_input) {
        dg_status restore = dg_feed(s->loss_plan, w, values);
        if (st == DG_OK)
            st = restore;
    }
    if (st == DG_OK)
        *out = stencil_derivative(t, f);
    return st;
}

/* What one element is judged against: the node's gradient scale (the largest |numeric| over
 * its checked elements) and the float32 noise floor of the numeric derivative at this
 * element's step. */
struct judge {
    const dg_gradcheck_options *o;
    double scale;
    double floor;
};

/* Rounding noise of a float32 loss, in loss units per unit of its magnitude, as the stencil
 * sees it: a few ulps (2^-24 relative) of the loss's terms, each evaluation, times the
 * stencil's weights (about 1/h in all). Terms are taken at max(1, |loss|): a loss near 0 can
 * still be a sum of O(1) terms. */
#define LOSS_NOISE_ULPS 16.0

static double noise_floor(double loss, double h)
{
    return LOSS_NOISE_ULPS * 0x1p-24 * fmax(1.0, fabs(loss)) / h;
}

/* The policy, element by element (docs/testing.md, dagrad_autodiff.h):
 *   |analytic - numeric| <= atol * scale + rtol * max(|analytic|, |numeric|) + floor,
 * both finite. */
static double tolerance(const struct judge *j, double analytic, double numeric)
{
    return j->o->atol * j->scale + j->o->rtol * fmax(fabs(analytic), fabs(numeric)) + j->floor;
}

static bool within(const struct judge *j, double analytic, double numeric)
{
    return isfinite(analytic) && isfinite(numeric) &&
           fabs(analytic - numeric) <= tolerance(j, analytic, numeric);
}

static void record(dg_gradcheck_report *r, const struct judge *j, int i, const dg_node *w,
                   int64_t e, double analytic, double numeric, double *worst_score)
{
    double diff = fabs(analytic - numeric);
    double scale = fmax(fabs(analytic), fabs(numeric));
    double tol = tolerance(j, analytic, numeric);
    bool ok = within(j, analytic, numeric);
    double rel = scale > 0.0 ? diff / scale : 0.0;
    if (!isfinite(diff))
        diff = rel = INFINITY;
    r->n_checked++;
    if (!ok)
        r->n_failed++;
    if (diff > r->max_abs_error)
        r->max_abs_error = diff;
    if (rel > r->max_rel_error)
        r->max_rel_error = rel;
    double score = ok ? (tol > 0.0 ? diff / tol : 0.0) : (isfinite(diff / tol) ? 1.0 + diff / tol
                                                                               : INFINITY);
    if (r->worst_wrt < 0 || score > *worst_score) {
        *worst_score = score;
        r->worst_wrt = i;
        r->worst_node = dg_node_index(w);
        r->worst_element = e;
        r->worst_analytic = analytic;
        r->worst_numeric = numeric;
        r->worst_tolerance = tol;
    }
}

static void summarise(dg_gradcheck_report *r, dg_node *const *wrt)
{
    r->passed = r->n_failed == 0;
    if (r->worst_wrt < 0) {
        snprintf(r->summary, sizeof r->summary, "gradcheck passed: no elements checked");
        return;
    }
    const dg_node *w = wrt[r->worst_wrt];
    const char *name = dg_node_name(w);
    snprintf(r->summary, sizeof r->summary,
             "gradcheck %s: %lld of %lld elements out of tolerance; worst wrt[%d] ('%s', node %d) "
             "element %lld: analytic %.7g, numeric %.7g, |diff| %.3g vs tol %.3g",
             r->passed ? "passed" : "FAILED", (long long)r->n_failed, (long long)r->n_checked,
             r->worst_wrt, name ? name : "", r->worst_node, (long long)r->worst_element,
             r->worst_analytic, r->worst_numeric, fabs(r->worst_analytic - r->worst_numeric),
             r->worst_tolerance);
}

/* Checks every chosen element of wrt[i]; analytic holds the node's gradient. First the
 * numeric derivative of every chosen element (which fixes the node's gradient scale), then
 * the verdicts, with a second opinion at a tenth of the step for each element that
 * disagrees. */
static dg_status check_node(struct check_state *s, const dg_gradcheck_options *o, int i,
                            dg_node *w, const float *analytic, dg_gradcheck_report *r,
                            double *worst_score)
{
    int64_t numel = dg_node_numel(w);
    int64_t want = o->max_elements_per_node > 0 && o->max_elements_per_node < numel
                       ? o->max_elements_per_node : numel;
    bool in_plan = dg_plan_numel(s->loss_plan, w) > 0;
    float *values = NULL;
    int64_t *chosen = dg__malloc((size_t)want * sizeof *chosen);
    double *numeric = dg__calloc((size_t)want, sizeof *numeric);
    if (dg_node_kind_of(w) == DG_NODE_PARAM) {
        values = dg_param_data(w);
    } else if (in_plan) {
        int k = find_feed(s->n_feeds, s->feed_nodes, w);
        values = dg__malloc((size_t)numel * sizeof *values);
        if (values != NULL)
            memcpy(values, s->feed_data[k], (size_t)numel * sizeof *values);
    }
    if (chosen == NULL || numeric == NULL || (in_plan && values == NULL)) {
        dg__free(chosen);
        dg__free(numeric);
        if (dg_node_kind_of(w) == DG_NODE_INPUT)
            dg__free(values);
        dg_graph_set_error(s->g, DG_ERR_NOMEM, "gradcheck: out of memory for %lld elements",
                           (long long)numel);
        return DG_ERR_NOMEM;
    }
    /* One seed per wrt position, so adding a node does not reshuffle the others. */
    choose_elements(numel, want, o->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)), chosen);
    dg_status st = DG_OK;
    struct judge judge = {.o = o, .scale = 0.0};
    /* numeric stays 0 where the loss does not read w at all: its derivative is 0 */
    for (int64_t c = 0; c < want && st == DG_OK && in_plan; c++) {
        int64_t e = chosen[c];
        double h = o->step * fmax(1.0, fabs((double)values[e]));
        st = numeric_derivative(s, w, values, e, h, r->loss, &numeric[c]);
        if (st == DG_OK && isfinite(numeric[c]))
            judge.scale = fmax(judge.scale, fabs(numeric[c]));
    }
    for (int64_t c = 0; c < want && st == DG_OK; c++) {
        int64_t e = chosen[c];
        double a = (double)analytic[e];
        double h = in_plan ? o->step * fmax(1.0, fabs((double)values[e])) : o->step;
        judge.floor = noise_floor(r->loss, h);
        /* A second opinion at a tenth of the step when the first disagrees: it resolves
         * functions that vary on a scale below h (log or 1/x near 0.05), where the first
         * estimate carries truncation error. A wrong gradient disagrees with both. */
        if (in_plan && !within(&judge, a, numeric[c])) {
            double fine = 0.0;
            st = numeric_derivative(s, w, values, e, h / 10, r->loss, &fine);
            if (st == DG_OK && fabs(a - fine) < fabs(a - numeric[c])) {
                numeric[c] = fine;
                judge.floor = noise_floor(r->loss, h / 10);
            }
        }
        if (st == DG_OK)
            record(r, &judge, i, w, e, a, numeric[c], worst_score);
    }
    if (dg_node_kind_of(w) == DG_NODE_INPUT)
        dg__free(values);
    dg__free(numeric);
    dg__free(chosen);
    return st;
}

dg_status dg_gradcheck(dg_graph *g, dg_node *loss, int n_wrt, dg_node *const *wrt,
                       int n_feeds, dg_node *const *feed_nodes, const void *const *feed_data,
                       const dg_gradcheck_options *opts, dg_gradcheck_report *report)
{
    if (report != NULL) {
        memset(report, 0, sizeof *report);
        report->worst_wrt = -1;
        report->worst_node = -1;
        report->worst_element = -1;
        snprintf(report->summary, sizeof report->summary, "gradcheck did not run");
    }
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (dg_graph_status(g) != DG_OK)
        return dg_graph_status(g);
    if (report == NULL)
        return fail(g, DG_ERR_INVALID_ARG, "report is NULL");
    dg_gradcheck_options o = opts ? *opts : dg_gradcheck_defaults();
    dg_status st = check_args(g, loss, n_wrt, wrt, n_feeds, feed_nodes, feed_data, &o);
    if (st != DG_OK)
        return st;

    dg_node **outputs = dg__calloc((size_t)n_wrt + 1, sizeof *outputs);
    const float **analytic = dg__calloc((size_t)n_wrt, sizeof *analytic);
    float **copies = dg__calloc((size_t)n_wrt, sizeof *copies);
    if (outputs == NULL || analytic == NULL || copies == NULL) {
        dg__free(outputs);
        dg__free(analytic);
        dg__free(copies);
        dg_graph_set_error(g, DG_ERR_NOMEM, "gradcheck: out of memory");
        return DG_ERR_NOMEM;
    }
    struct check_state s = {.g = g, .loss = loss, .n_feeds = n_feeds,
                            .feed_nodes = feed_nodes, .feed_data = feed_data};
    dg_plan *grad_plan = NULL;
    outputs[0] = loss;
    st = dg_grad(g, loss, n_wrt, wrt, outputs + 1);
    if (st == DG_OK && (grad_plan = dg_compile(g, n_wrt + 1, outputs)) == NULL)
        st = dg_graph_status(g);
    if (st == DG_OK && (s.loss_plan = dg_compile(g, 1, &loss)) == NULL)
        st = dg_graph_status(g);
    if (st == DG_OK)
        st = feed_plan(grad_plan, n_feeds, feed_nodes, feed_data);
    if (st == DG_OK)
        st = dg_run(grad_plan);
    /* Copy the analytic gradients: the plans are freed before returning. */
    for (int i = 0; i < n_wrt && st == DG_OK; i++) {
        const float *data = dg_data(grad_plan, outputs[i + 1]);
        int64_t numel = dg_node_numel(wrt[i]);
        copies[i] = data ? dg__malloc((size_t)numel * sizeof(float)) : NULL;
        if (data == NULL) {
            st = dg_graph_status(g);
        } else if (copies[i] == NULL) {
            dg_graph_set_error(g, DG_ERR_NOMEM, "gradcheck: out of memory");
            st = DG_ERR_NOMEM;
        } else {
            memcpy(copies[i], data, (size_t)numel * sizeof(float));
            analytic[i] = copies[i];
        }
    }
    dg_plan_free(grad_plan);
    if (st == DG_OK)
        st = feed_plan(s.loss_plan, n_feeds, feed_nodes, feed_data);
    if (st == DG_OK)
        st = eval_loss(&s, &report->loss);
    double worst_score = 0.0;
    for (int i = 0; i < n_wrt && st == DG_OK; i++)
        st = check_node(&s, &o, i, wrt[i], analytic[i], report, &worst_score);
    dg_plan_free(s.loss_plan);
    for (int i = 0; i < n_wrt; i++)
        dg__free(copies[i]);
    dg__free(copies);
    dg__free(analytic);
    dg__free(outputs);
    if (st != DG_OK) {
        if (dg_graph_status(g) == DG_OK)
            dg_graph_set_error(g, st, "gradcheck: %s", dg_status_str(st));
        report->passed = false;
        snprintf(report->summary, sizeof report->summary, "gradcheck did not run: %s",
                 dg_graph_error(g));
        return st;
    }
    summarise(report, wrt);
    return DG_OK;
}
