/*
 * Reductions (sum, mean, max) and softmax / log_softmax by hand: every axis combination of a
 * [2,3,4] with and without keepdims against a direct loop, negative axes, all axes, max ties
 * (the gradient split evenly), mean's divisor after a batch change, large reductions on every
 * kernel path against a double reference and bitwise equal for 1 and several threads, softmax
 * rows with extreme and infinite values, and every error path of the constructors.
 */
#include "dagrad.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Compiles `out`, feeds x, runs; the plan is returned for reading (caller frees). */
static dg_plan *run_one(dg_graph *g, dg_node *x, const float *xv, int n_out, dg_node **outs)
{
    ck_assert_msg(dg_graph_status(g) == DG_OK, "%s", dg_graph_error(g));
    dg_plan *p = dg_compile(g, n_out, outs);
    ck_assert_msg(p != NULL, "%s", dg_graph_error(g));
    ck_assert_int_eq(dg_feed(p, x, xv), DG_OK);
    ck_assert_msg(dg_run(p) == DG_OK, "%s", dg_graph_error(g));
    return p;
}

/* Reference reduction of a [2,3,4] over `mask` (bit i: axis i), row-major over kept axes. */
static void reference(int op, const float *x, uint32_t mask, double *out, int *n_out)
{
    const int dim[3] = {2, 3, 4};
    int kept_size[3], n = 1;
    for (int a = 0; a < 3; a++) {
        kept_size[a] = (mask >> a) & 1u ? 1 : dim[a];
        n *= kept_size[a];
    }
    int count = 24 / n;
    for (int o = 0; o < n; o++)
        out[o] = op == 2 ? -INFINITY : 0.0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                int idx[3] = {i, j, k}, o = 0;
                for (int a = 0; a < 3; a++)
                    o = o * kept_size[a] + ((mask >> a) & 1u ? 0 : idx[a]);
                double v = x[(i * 3 + j) * 4 + k];
                if (op == 2)
                    out[o] = v > out[o] ? v : out[o];
                else
                    out[o] += v;
            }
    if (op == 1)
        for (int o = 0; o < n; o++)
            out[o] /= count;
    *n_out = n;
}

typedef dg_node *(*reduce_fn)(dg_graph *, dg_node *, int, const int *, bool);

START_TEST(test_every_axis_combination)
{
    static const reduce_fn fns[3] = {dg_sum, dg_mean, dg_max};
    static const char *const names[3] = {"sum", "mean", "max"};
    const int64_t shape[3] = {2, 3, 4};
    float xv[24];
    for (int i = 0; i < 24; i++)
        xv[i] = (float)((i * 7) % 24) - 11.5f; /* a permutation: max is not always last */
    for (int op = 0; op < 3; op++)
        for (uint32_t mask = 0; mask < 8; mask++)
            for (int keep = 0; keep < 2; keep++)
                for (int negative = 0; negative < 2; negative++) {
                    dg_graph *g = dg_graph_new();
                    dg_node *x = dg_input(g, "x", 3, shape);
                    int axes[3], n_axes = 0;
                    /* listed from the last axis down, to show order does not matter */
                    for (int a = 2; a >= 0; a--)
                        if ((mask >> a) & 1u)
                            axes[n_axes++] = negative ? a - 3 : a;
                    dg_node *y = fns[op](g, x, n_axes, axes, keep);
                    ck_assert_msg(y != NULL, "%s: %s", names[op], dg_graph_error(g));
                    ck_assert_int_eq(dg_node_ndim(y), keep ? 3 : 3 - __builtin_popcount(mask));
                    for (int a = 0, d = 0; a < 3; a++) {
                        if ((mask >> a) & 1u) {
                            if (keep)
                                ck_assert_int_eq(dg_node_dim(y, d++), 1);
                        } else {
                            ck_assert_int_eq(dg_node_dim(y, d++), shape[a]);
                        }
                    }
                    dg_plan *p = run_one(g, x, xv, 1, &y);
                    double expect[24];
                    int n;
                    reference(op, xv, mask, expect, &n);
                    ck_assert_int_eq(dg_plan_numel(p, y), n);
                    const float *got = dg_data(p, y);
                    for (int o = 0; o < n; o++)
                        ck_assert_msg(fabs(got[o] - expect[o]) <= 1e-5 * fmax(1.0, fabs(expect[o])),
                                      "%s mask %u keep %d: [%d] %g vs %g", names[op], mask,
                                      keep, o, got[o], expect[o]);
                    dg_plan_free(p);
                    dg_graph_free(g);
                }
}
END_TEST

START_TEST(test_all_axes_and_scalar)
{
    const int64_t shape[3] = {2, 3, 4};
    float xv[24];
    for (int i = 0; i < 24; i++)
        xv[i] = (float)i;
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, shape);
    dg_node *outs[4] = {
        dg_sum(g, x, 0, NULL, false), dg_mean(g, x, 0, NULL, true), dg_max(g, x, 0, NULL, false),
        dg_sum(g, x, 0, (const int[]){0}, false), /* an empty axis list: nothing reduced */
    };
    ck_assert_int_eq(dg_node_ndim(outs[0]), 0);
    ck_assert_int_eq(dg_node_ndim(outs[1]), 3);
    ck_assert_int_eq(dg_node_numel(outs[1]), 1);
    ck_assert_int_eq(dg_node_ndim(outs[3]), 3);
    dg_plan *p = run_one(g, x, xv, 4, outs);
    ck_assert_float_eq_tol(dg_data(p, outs[0])[0], 276.0f, 1e-4f);
    ck_assert_float_eq_tol(dg_data(p, outs[1])[0], 11.5f, 1e-5f);
    ck_assert_float_eq_tol(dg_data(p, outs[2])[0], 23.0f, 1e-6f);
    for (int i = 0; i < 24; i++)
        ck_assert_float_eq_tol(dg_data(p, outs[3])[i], (float)i, 1e-6f);
    dg_plan_free(p);
    dg_graph_free(g);

    /* a 0-d input: every reduction is the value itself */
    g = dg_graph_new();
    x = dg_input(g, "x", 0, NULL);
    dg_node *s[3] = {dg_sum(g, x, 0, NULL, false), dg_mean(g, x, 0, NULL, true),
                     dg_max(g, x, 0, NULL, false)};
    float v = -2.5f;
    p = run_one(g, x, &v, 3, s);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(dg_node_ndim(s[i]), 0);
        ck_assert_float_eq_tol(dg_data(p, s[i])[0], -2.5f, 1e-6f);
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* max ties: the gradient is split evenly among the tied elements (amax). */
START_TEST(test_max_ties)
{
    const int64_t shape[2] = {2, 3};
    const float xv[6] = {1, 3, 3, 2, 2, 2};
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, shape);
    dg_node *m = dg_max(g, x, 1, (const int[]){1}, false);
    dg_node *all = dg_max(g, x, 0, NULL, false);
    dg_node *loss = dg_add(g, dg_sum(g, dg_mul(g, m, dg_constant(g, 1, (const int64_t[]){2},
                                                                   (const float[]){1, 10})),
                                     0, NULL, false),
                           dg_scale(g, all, 100.0f));
    dg_node *grad;
    ck_assert_int_eq(dg_grad(g, loss, 1, &x, &grad), DG_OK);
    dg_node *outs[2] = {m, grad};
    dg_plan *p = run_one(g, x, xv, 2, outs);
    ck_assert_float_eq_tol(dg_data(p, m)[0], 3.0f, 1e-6f);
    ck_assert_float_eq_tol(dg_data(p, m)[1], 2.0f, 1e-6f);
    /* row 0: 1 split over two 3s, plus the full max (3 twice) 100 split in halves;
     * row 1: 10 split three ways */
    const float expect[6] = {0, 50.5f, 50.5f, 10.0f / 3, 10.0f / 3, 10.0f / 3};
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(dg_data(p, grad)[i], expect[i], 1e-5f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* mean's divisor (forward and backward) follows a changed batch. */
START_TEST(test_mean_batch_change)
{
    const int64_t shape[2] = {2, 3};
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, shape);
    dg_node *m = dg_mean(g, x, 0, NULL, false);
    dg_node *col = dg_mean(g, x, 1, (const int[]){0}, false);
    dg_node *grad;
    ck_assert_int_eq(dg_grad(g, m, 1, &x, &grad), DG_OK);
    dg_node *outs[3] = {m, col, grad};
    float xv[12];
    for (int i = 0; i < 12; i++)
        xv[i] = (float)i;
    dg_plan *p = run_one(g, x, xv, 3, outs);
    ck_assert_float_eq_tol(dg_data(p, m)[0], 2.5f, 1e-6f);
    ck_assert_float_eq_tol(dg_data(p, grad)[0], 1.0f / 6, 1e-7f);
    ck_assert_int_eq(dg_plan_set_batch(p, 4), DG_OK);
    ck_assert_int_eq(dg_feed(p, x, xv), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(dg_plan_numel(p, grad), 12);
    ck_assert_float_eq_tol(dg_data(p, m)[0], 5.5f, 1e-6f);
    ck_assert_float_eq_tol(dg_data(p, col)[0], 4.5f, 1e-6f); /* (0+3+6+9)/4 */
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq_tol(dg_data(p, grad)[i], 1.0f / 12, 1e-7f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Large reductions on every kernel path: close to a double reference, and the same bits for 1
 * and 5 threads. */
START_TEST(test_large_paths_deterministic)
{
    struct {
        int ndim;
        int64_t shape[3];
        int n_axes;
        int axes[2];
    } cases[] = {
        {1, {1 << 21}, 0, {0}},          /* full reduction: blocks */
        {2, {3, 300000}, 1, {1}},       /* few long rows: blocks of a row in parallel */
        {2, {4000, 70}, 1, {1}},        /* many short rows */
        {2, {100000, 7}, 1, {0}},       /* column sums, few columns: row blocks */
        {2, {3000, 700}, 1, {0}},       /* column sums, several tiles */
        {3, {20, 5000, 3}, 1, {1}},     /* middle axis */
        {3, {40, 300, 30}, 2, {0, 2}},  /* general */
    };
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dg_graph *g = dg_graph_new();
        dg_node *x = dg_input(g, "x", cases[c].ndim, cases[c].shape);
        int64_t n = dg_node_numel(x);
        float *xv = malloc((size_t)n * sizeof *xv);
        dg_test_fill_uniform(&rng, xv, n, -1.0f, 1.0f);
        dg_node *outs[2] = {
            dg_sum(g, x, cases[c].n_axes, cases[c].n_axes ? cases[c].axes : NULL, false),
            dg_max(g, x, cases[c].n_axes, cases[c].n_axes ? cases[c].axes : NULL, false),
        };
        dg_plan *p = run_one(g, x, xv, 2, outs);
        int64_t m = dg_plan_numel(p, outs[0]);
        float *first = malloc((size_t)m * 2 * sizeof *first);
        memcpy(first, dg_data(p, outs[0]), (size_t)m * sizeof *first);
        memcpy(first + m, dg_data(p, outs[1]), (size_t)m * sizeof *first);
        ck_assert_int_eq(dg_plan_set_threads(p, 1), DG_OK);
        ck_assert_int_eq(dg_run(p), DG_OK);
        ck_assert_int_eq(memcmp(first, dg_data(p, outs[0]), (size_t)m * sizeof *first), 0);
        ck_assert_int_eq(memcmp(first + m, dg_data(p, outs[1]), (size_t)m * sizeof *first), 0);
        ck_assert_int_eq(dg_plan_set_threads(p, 5), DG_OK);
        ck_assert_int_eq(dg_run(p), DG_OK);
        ck_assert_int_eq(memcmp(first, dg_data(p, outs[0]), (size_t)m * sizeof *first), 0);
        /* against a direct double loop */
        double *ref = calloc((size_t)m, sizeof *ref), *mx = malloc((size_t)m * sizeof *mx);
        for (int64_t o = 0; o < m; o++)
            mx[o] = -INFINITY;
        int nd = cases[c].ndim;
        uint32_t mask = 0;
        for (int a = 0; a < cases[c].n_axes; a++)
            mask |= 1u << cases[c].axes[a];
        if (cases[c].n_axes == 0)
            mask = (1u << nd) - 1;
        for (int64_t i = 0; i < n; i++) {
            int64_t rem = i, o = 0, mul = 1;
            for (int a = nd - 1; a >= 0; a--) {
                int64_t idx = rem % cases[c].shape[a];
                rem /= cases[c].shape[a];
                if (!((mask >> a) & 1u)) {
                    o += idx * mul;
                    mul *= cases[c].shape[a];
                }
            }
            ref[o] += xv[i];
            mx[o] = xv[i] > mx[o] ? xv[i] : mx[o];
        }
        for (int64_t o = 0; o < m; o++) {
            ck_assert_msg(fabs(first[o] - ref[o]) <= 1e-6 * fmax(1.0, fabs(ref[o])),
                          "case %zu: sum[%lld] %g vs %g", c, (long long)o, first[o], ref[o]);
            ck_assert_float_eq_tol(first[m + o], (float)mx[o], 1e-6f);
        }
        free(ref);
        free(mx);
        free(first);
        free(xv);
        dg_plan_free(p);
        dg_graph_free(g);
    }
}
END_TEST

/* NaN propagates through max, as in PyTorch. */
START_TEST(test_max_nan)
{
    const int64_t shape[2] = {2, 3};
    const float xv[6] = {1, NAN, 3, 4, 5, 6};
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, shape);
    dg_node *m = dg_max(g, x, 1, (const int[]){-1}, true);
    dg_plan *p = run_one(g, x, xv, 1, &m);
    ck_assert(isnan(dg_data(p, m)[0]));
    ck_assert_float_eq_tol(dg_data(p, m)[1], 6.0f, 1e-6f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* The message names the op, the axis and the shape. */
static void expect_error(dg_graph *g, dg_node *node, dg_status status, const char *const *parts)
{
    ck_assert_ptr_null(node);
    ck_assert_int_eq(dg_graph_status(g), status);
    for (int i = 0; parts[i] != NULL; i++)
        ck_assert_msg(strstr(dg_graph_error(g), parts[i]) != NULL, "'%s' not in '%s'", parts[i],
                      dg_graph_error(g));
    dg_graph_clear_error(g);
}

START_TEST(test_reduce_errors)
{
    static const reduce_fn fns[3] = {dg_sum, dg_mean, dg_max};
    static const char *const names[3] = {"sum", "mean", "max"};
    const int64_t shape[3] = {2, 3, 4};
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, shape);
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 1, (const int64_t[]){2});
    for (int op = 0; op < 3; op++) {
        const char *n = names[op];
        expect_error(g, fns[op](g, x, 1, (const int[]){3}, false), DG_ERR_INVALID_ARG,
                     (const char *[]){n, "axis 3", "[2,3,4]", NULL});
        expect_error(g, fns[op](g, x, 1, (const int[]){-4}, false), DG_ERR_INVALID_ARG,
                     (const char *[]){n, "axis -4", "[2,3,4]", NULL});
        expect_error(g, fns[op](g, x, 2, (const int[]){1, -2}, true), DG_ERR_INVALID_ARG,
                     (const char *[]){n, "axis -2", "repeated", "[2,3,4]", NULL});
        expect_error(g, fns[op](g, x, 2, NULL, false), DG_ERR_INVALID_ARG,
                     (const char *[]){n, "NULL", "[2,3,4]", NULL});
        expect_error(g, fns[op](g, x, -1, (const int[]){0}, false), DG_ERR_INVALID_ARG,
                     (const char *[]){n, "negative", NULL});
        expect_error(g, fns[op](g, NULL, 0, NULL, false), DG_ERR_INVALID_ARG,
                     (const char *[]){n, "NULL", NULL});
        expect_error(g, fns[op](g, labels, 0, NULL, false), DG_ERR_DTYPE,
                     (const char *[]){n, "float32", NULL});
        /* a pending error: NULL passes through, the first message stays */
        dg_sum(g, x, 1, (const int[]){7}, false);
        ck_assert_ptr_null(fns[op](g, NULL, 1, (const int[]){0}, false));
        ck_assert_ptr_null(fns[op](g, x, 1, (const int[]){0}, false));
        ck_assert_msg(strstr(dg_graph_error(g), "axis 7") != NULL, "%s", dg_graph_error(g));
        dg_graph_clear_error(g);
    }
    ck_assert_ptr_null(dg_sum(NULL, x, 0, NULL, false));
    dg_graph_free(g);
}
END_TEST

/* ---- softmax / log_softmax ------------------------------------------------------------- */

START_TEST(test_softmax_values)
{
    const int64_t shape[2] = {3, 3};
    const float xv[9] = {0, 0, 0, 1000, -1000, 0, 1, 2, 3};
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, shape);
    dg_node *outs[4] = {dg_softmax(g, x, -1), dg_log_softmax(g, x, 1), dg_softmax(g, x, 0),
                        dg_log_softmax(g, x, -2)};
    dg_plan *p = run_one(g, x, xv, 4, outs);
    const float *s = dg_data(p, outs[0]), *ls = dg_data(p, outs[1]);
    for (int j = 0; j < 3; j++) {
        ck_assert_float_eq_tol(s[j], 1.0f / 3, 1e-6f);
        ck_assert_float_eq_tol(ls[j], -logf(3.0f), 1e-6f);
    }
    ck_assert_float_eq_tol(s[3], 1.0f, 1e-6f);
    ck_assert_float_eq_tol(s[4], 0.0f, 1e-6f);
    ck_assert_float_eq_tol(ls[3], 0.0f, 1e-6f);
    ck_assert_float_eq_tol(ls[4], -2000.0f, 1e-2f); /* finite, not -inf */
    ck_assert_float_eq_tol(ls[5], -1000.0f, 1e-2f);
    double z = exp(1.0) + exp(2.0) + exp(3.0);
    for (int j = 0; j < 3; j++)
        ck_assert_float_eq_tol(s[6 + j], (float)(exp(1.0 + j) / z), 1e-6f);
    /* along axis 0: column 0 is (0, 1000, 1) */
    const float *c = dg_data(p, outs[2]), *lc = dg_data(p, outs[3]);
    ck_assert_float_eq_tol(c[3], 1.0f, 1e-6f);
    ck_assert_float_eq_tol(c[0], 0.0f, 1e-6f);
    ck_assert_float_eq_tol(lc[0], -1000.0f, 1e-2f);
    double col2 = log(exp(0.0) + exp(0.0) + exp(3.0));
    ck_assert_float_eq_tol(lc[8], (float)(3.0 - col2), 1e-6f);
    for (int i = 0; i < 9; i++) {
        ck_assert(isfinite(s[i]) && isfinite(ls[i]) && isfinite(c[i]) && isfinite(lc[i]));
    }
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Documented behaviour with infinities (as PyTorch): -inf entries get probability 0, a row of
 * only -inf is NaN. */
START_TEST(test_softmax_infinities)
{
    const int64_t shape[2] = {2, 3};
    const float xv[6] = {-INFINITY, 0, 0, -INFINITY, -INFINITY, -INFINITY};
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, shape);
    dg_node *outs[2] = {dg_softmax(g, x, 1), dg_log_softmax(g, x, 1)};
    dg_plan *p = run_one(g, x, xv, 2, outs);
    const float *s = dg_data(p, outs[0]), *ls = dg_data(p, outs[1]);
    ck_assert_float_eq_tol(s[0], 0.0f, 1e-6f);
    ck_assert_float_eq_tol(s[1], 0.5f, 1e-7f);
    ck_assert(isinf(ls[0]) && ls[0] < 0);
    ck_assert_float_eq_tol(ls[2], -logf(2.0f), 1e-6f);
    for (int j = 3; j < 6; j++)
        ck_assert(isnan(s[j]) && isnan(ls[j]));
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Wide and strided softmax: rows sum to 1, same bits for 1 and 4 threads. */
START_TEST(test_softmax_large)
{
    const int64_t shape[3] = {64, 700, 9};
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 3, shape);
    int64_t n = dg_node_numel(x);
    float *xv = malloc((size_t)n * sizeof *xv);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 3);
    dg_test_fill_uniform(&rng, xv, n, -20.0f, 20.0f);
    dg_node *outs[2] = {dg_softmax(g, x, 1), dg_softmax(g, x, 2)};
    dg_plan *p = run_one(g, x, xv, 2, outs);
    float *first = malloc((size_t)n * sizeof *first);
    memcpy(first, dg_data(p, outs[0]), (size_t)n * sizeof *first);
    const float *s = dg_data(p, outs[0]);
    for (int o = 0; o < 64; o++)
        for (int k = 0; k < 9; k++) {
            double total = 0;
            for (int i = 0; i < 700; i++)
                total += s[(o * 700 + i) * 9 + k];
            ck_assert_double_le(fabs(total - 1.0), 1e-5);
        }
    ck_assert_int_eq(dg_plan_set_threads(p, 1), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(memcmp(first, dg_data(p, outs[0]), (size_t)n * sizeof *first), 0);
    free(first);
    free(xv);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(test_softmax_errors)
{
    const int64_t shape[2] = {2, 3};
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, shape);
    dg_node *scalar = dg_input(g, "s", 0, NULL);
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 1, (const int64_t[]){2});
    expect_error(g, dg_softmax(g, x, 2), DG_ERR_INVALID_ARG,
                 (const char *[]){"softmax", "axis 2", "[2,3]", NULL});
    expect_error(g, dg_log_softmax(g, x, -3), DG_ERR_INVALID_ARG,
                 (const char *[]){"log_softmax", "axis -3", "[2,3]", NULL});
    expect_error(g, dg_softmax(g, scalar, 0), DG_ERR_INVALID_ARG,
                 (const char *[]){"softmax", "[]", NULL});
    expect_error(g, dg_softmax(g, NULL, 0), DG_ERR_INVALID_ARG,
                 (const char *[]){"softmax", "NULL", NULL});
    expect_error(g, dg_log_softmax(g, labels, 0), DG_ERR_DTYPE,
                 (const char *[]){"log_softmax", "float32", NULL});
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_reduce");
    TCase *t = tcase_create("reduce");
    tcase_add_test(t, test_every_axis_combination);
    tcase_add_test(t, test_all_axes_and_scalar);
    tcase_add_test(t, test_max_ties);
    tcase_add_test(t, test_mean_batch_change);
    tcase_add_test(t, test_large_paths_deterministic);
    tcase_add_test(t, test_max_nan);
    tcase_add_test(t, test_reduce_errors);
    suite_add_tcase(s, t);
    t = tcase_create("softmax");
    tcase_add_test(t, test_softmax_values);
    tcase_add_test(t, test_softmax_infinities);
    tcase_add_test(t, test_softmax_large);
    tcase_add_test(t, test_softmax_errors);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
