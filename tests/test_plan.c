/* Compiling and running plans: pruning, memory sharing, pinned values, batch changes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"
#include "graph/plan_internal.h"
#include "test_util.h"

START_TEST(pruning_keeps_only_what_outputs_need)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){4});
    dg_node *y = dg_input(g, "y", 1, (int64_t[]){4});
    dg_node *used = dg_mul(g, x, x);
    dg_node *unused = dg_add(g, dg_mul(g, y, y), y);
    dg_plan *p = dg_compile(g, 1, &used);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(dg_plan_node_count(p), 1);
    /* y is not part of the plan: it needs no feed, and cannot be fed. */
    ck_assert_int_eq(dg_feed(p, y, (float[]){1, 2, 3, 4}), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "not part of this plan"));
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_feed(p, x, (float[]){1, 2, 3, 4}), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_float_eq_tol(dg_data(p, used)[3], 16.0f, 1e-6f);
    ck_assert_ptr_null(dg_data(p, unused));
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* The step timer: one call per computed step, with its node and a non-negative time; none
 * once removed. */
struct step_log {
    int calls;
    const dg_node *last;
    double seconds;
};

static void log_step(void *user, const dg_node *node, double seconds)
{
    struct step_log *log = user;
    log->calls++;
    log->last = node;
    log->seconds += seconds;
    ck_assert(seconds >= 0.0);
}

START_TEST(step_timer_sees_every_step)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){4});
    dg_node *y = dg_exp(g, dg_mul(g, x, x));
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_ptr_nonnull(p);
    struct step_log log = {0};
    ck_assert_int_eq(dg_plan_set_step_timer(NULL, log_step, &log), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_plan_set_step_timer(p, log_step, &log), DG_OK);
    ck_assert_int_eq(dg_feed(p, x, (float[]){1, 2, 3, 4}), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(log.calls, 2);
    ck_assert_ptr_eq(log.last, y);
    ck_assert_int_eq(dg_plan_set_step_timer(p, NULL, NULL), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(log.calls, 2);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* A diamond with a long side chain: shared and unshared plans agree bitwise. */
static dg_node *build_diamond(dg_graph *g, dg_node *x, dg_node **mid)
{
    dg_node *a = dg_mul(g, x, x);
    dg_node *b = dg_sub(g, x, dg_scalar(g, 0.25f));
    dg_node *c = a;
    for (int i = 0; i < 8; i++)
        c = dg_div(g, dg_add(g, c, b), dg_scalar(g, 1.5f));
    *mid = a;
    return dg_maximum(g, dg_mul(g, c, b), dg_minimum(g, a, b));
}

/* The workspace: the elementwise losses keep their per-block partial sums in the plan's one
 * workspace (workspace_bytes rule: one double per block of >= 1024 elements, at most 256).
 * Planned and unplanned plans agree bitwise, before and after dg_plan_set_batch grows the
 * workspace, and match a sum computed here. */
START_TEST(workspace_planned_unplanned_and_growth)
{
    enum { COLS = 1000, BIG = 512 };
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, COLS});
    dg_node *y = dg_input(g, "y", 2, (int64_t[]){4, COLS});
    dg_node *loss = dg_mse_loss(g, dg_tanh(g, x), y);
    dg_plan *planned = dg_compile(g, 1, &loss);
    dg_plan *unplanned = dg__compile_ex(g, 1, &loss, false);
    ck_assert_ptr_nonnull(planned);
    ck_assert_ptr_nonnull(unplanned);
    float *xv = malloc(BIG * COLS * sizeof *xv), *yv = malloc(BIG * COLS * sizeof *yv);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 11);
    dg_test_fill_uniform(&rng, xv, BIG * COLS, -2.0f, 2.0f);
    dg_test_fill_uniform(&rng, yv, BIG * COLS, -1.0f, 1.0f);
    for (int round = 0; round < 2; round++) {
        int64_t batch = round == 0 ? 4 : BIG;
        if (round == 1) {
            ck_assert_int_eq(dg_plan_set_batch(planned, batch), DG_OK);
            ck_assert_int_eq(dg_plan_set_batch(unplanned, batch), DG_OK);
        }
        /* 4000 elements: 3 blocks; 512000: 500 blocks, capped at 256 */
        size_t want = (round == 0 ? 3 : 256) * sizeof(double);
        ck_assert_uint_eq(planned->workspace_bytes, want);
        ck_assert_uint_eq(unplanned->workspace_bytes, want);
        ck_assert_uint_ge(planned->workspace_capacity, want);
        dg_plan *plans[2] = {planned, unplanned};
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(dg_feed(plans[k], x, xv), DG_OK);
            ck_assert_int_eq(dg_feed(plans[k], y, yv), DG_OK);
            ck_assert_int_eq(dg_run(plans[k]), DG_OK);
        }
        float got = dg_data(planned, loss)[0];
        ck_assert_mem_eq(&got, dg_data(unplanned, loss), sizeof got);
        double sum = 0.0;
        for (int64_t i = 0; i < batch * COLS; i++) {
            double d = tanh((double)xv[i]) - (double)yv[i];
            sum += d * d;
        }
        ck_assert_double_eq_tol(got, sum / (double)(batch * COLS), 1e-5);
    }
    free(xv);
    free(yv);
    dg_plan_free(planned);
    dg_plan_free(unplanned);
    dg_graph_free(g);
}
END_TEST

START_TEST(shared_memory_equals_unshared_bitwise)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){64, 300});
    dg_node *mid;
    dg_node *out = build_diamond(g, x, &mid);
    dg_node *outs[2] = {out, mid};
    dg_plan *shared = dg_compile(g, 2, outs);
    dg_plan *unshared = dg__compile_ex(g, 2, outs, false);
    ck_assert_ptr_nonnull(shared);
    ck_assert_ptr_nonnull(unshared);
    ck_assert_uint_lt(dg_plan_arena_bytes(shared), dg_plan_arena_bytes(unshared));
    ck_assert_uint_eq(dg_plan_unshared_bytes(shared), dg_plan_arena_bytes(unshared));
    float *data = malloc(64 * 300 * sizeof *data);
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    dg_test_fill_uniform(&rng, data, 64 * 300, -2.0f, 2.0f);
    ck_assert_int_eq(dg_feed(shared, x, data), DG_OK);
    ck_assert_int_eq(dg_feed(unshared, x, data), DG_OK);
    ck_assert_int_eq(dg_run(shared), DG_OK);
    ck_assert_int_eq(dg_run(unshared), DG_OK);
    ck_assert_mem_eq(dg_data(shared, out), dg_data(unshared, out), 64 * 300 * sizeof(float));
    ck_assert_mem_eq(dg_data(shared, mid), dg_data(unshared, mid), 64 * 300 * sizeof(float));
    /* Running again gives the same bits: no state leaks from one run to the next. */
    float *first = malloc(64 * 300 * sizeof *first);
    memcpy(first, dg_data(shared, out), 64 * 300 * sizeof *first);
    ck_assert_int_eq(dg_run(shared), DG_OK);
    ck_assert_mem_eq(first, dg_data(shared, out), 64 * 300 * sizeof(float));
    free(first);
    free(data);
    dg_plan_free(shared);
    dg_plan_free(unshared);
    dg_graph_free(g);
}
END_TEST

START_TEST(intermediates_are_not_readable)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){3});
    dg_node *a = dg_mul(g, x, x);
    dg_node *b = dg_add(g, a, x);
    dg_plan *p = dg_compile(g, 1, &b);
    dg_feed(p, x, (float[]){1, 2, 3});
    dg_run(p);
    ck_assert_ptr_null(dg_data(p, a));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "intermediate"));
    dg_graph_clear_error(g);
    /* Inputs stay readable. */
    ck_assert_float_eq_tol(dg_data(p, x)[2], 3.0f, 1e-6f);
    ck_assert_ptr_null(dg_data_i32(p, x));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_DTYPE);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(batch_changes_without_rebuilding)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){128, 3});
    dg_node *b = dg_param(g, "b", 1, (int64_t[]){3});
    float *bd = dg_param_data(b);
    bd[0] = 1, bd[1] = 2, bd[2] = 3;
    dg_node *y = dg_mul(g, dg_add(g, x, b), x);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_plan_dim(p, y, 0), 128);
    float *big = calloc(128 * 3, sizeof *big);
    ck_assert_int_eq(dg_feed(p, x, big), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    /* Infer at batch 1. */
    ck_assert_int_eq(dg_plan_set_batch(p, 1), DG_OK);
    ck_assert_int_eq(dg_plan_dim(p, y, 0), 1);
    ck_assert_int_eq(dg_plan_numel(p, y), 3);
    ck_assert_int_eq(dg_run(p), DG_ERR_STATE); /* the resized input must be fed again */
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "'x' was not fed"));
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_feed(p, x, (float[]){1, 1, 2}), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    const float *out = dg_data(p, y);
    ck_assert_float_eq_tol(out[0], 2.0f, 1e-6f);
    ck_assert_float_eq_tol(out[1], 3.0f, 1e-6f);
    ck_assert_float_eq_tol(out[2], 10.0f, 1e-6f);
    /* And grow past the compiled size. */
    ck_assert_int_eq(dg_plan_set_batch(p, 1000), DG_OK);
    float *huge = malloc(1000 * 3 * sizeof *huge);
    for (int i = 0; i < 3000; i++)
        huge[i] = (float)(i % 3);
    dg_feed(p, x, huge);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_float_eq_tol(dg_data(p, y)[2999], (2.0f + 3.0f) * 2.0f, 1e-6f);
    free(huge);
    free(big);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(bad_batch_change_is_reported_and_recoverable)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, 3});
    dg_node *y = dg_input(g, "y", 2, (int64_t[]){4, 3});
    dg_node *s = dg_add(g, x, y);
    dg_plan *p = dg_compile(g, 1, &s);
    ck_assert_int_eq(dg_plan_set_input_shape(p, x, 2, (int64_t[]){5, 3}), DG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "add: shapes [5,3] and [4,3]"));
    dg_graph_clear_error(g);
    float data[15] = {0};
    /* Until a valid shape is set, the plan refuses to be fed or run. */
    ck_assert_int_eq(dg_feed(p, y, data), DG_ERR_STATE);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_run(p), DG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "set a valid shape first"));
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_plan_set_input_shape(p, x, 2, (int64_t[]){4, 3}), DG_OK);
    ck_assert_int_eq(dg_feed(p, x, data), DG_OK);
    ck_assert_int_eq(dg_feed(p, y, data), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    /* set_batch moves every input together. */
    ck_assert_int_eq(dg_plan_set_batch(p, 9), DG_OK);
    ck_assert_int_eq(dg_plan_dim(p, s, 0), 9);
    ck_assert_int_eq(dg_plan_set_input_shape(p, x, 1, (int64_t[]){9}), DG_ERR_SHAPE);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_plan_set_input_shape(p, s, 2, (int64_t[]){9, 3}), DG_ERR_INVALID_ARG);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_plan_set_batch(p, 0), DG_ERR_INVALID_ARG);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(int32_inputs_round_trip)
{
    dg_graph *g = dg_graph_new();
    dg_node *labels = dg_input_typed(g, "labels", DG_I32, 1, (int64_t[]){3});
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){3});
    dg_node *y = dg_add(g, x, x);
    dg_node *outs[2] = {y, labels};
    dg_plan *p = dg_compile(g, 2, outs);
    ck_assert_int_eq(dg_feed(p, labels, (int32_t[]){7, -1, 3}), DG_OK);
    ck_assert_int_eq(dg_feed(p, x, (float[]){1, 2, 3}), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(dg_data_i32(p, labels)[0], 7);
    ck_assert_int_eq(dg_data_i32(p, labels)[1], -1);
    ck_assert_float_eq_tol(dg_data(p, y)[2], 6.0f, 1e-6f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

START_TEST(parameters_are_read_live)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){2});
    dg_node *w = dg_param(g, "w", 1, (int64_t[]){2});
    dg_node *y = dg_mul(g, x, w);
    dg_plan *p = dg_compile(g, 1, &y);
    dg_feed(p, x, (float[]){2, 3});
    dg_param_data(w)[0] = 1;
    dg_param_data(w)[1] = 1;
    dg_run(p);
    ck_assert_float_eq_tol(dg_data(p, y)[1], 3.0f, 1e-6f);
    dg_param_data(w)[1] = 10;
    dg_run(p);
    ck_assert_float_eq_tol(dg_data(p, y)[1], 30.0f, 1e-6f);
    ck_assert_ptr_eq(dg_data(p, w), dg_param_data(w));
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* mul(a[3,1], b[3,4]): a dies at the mul and rounds to the same 64-byte slot size as the
 * output, but is broadcast: the output must not be written over it. */
START_TEST(broadcast_input_is_not_overwritten_in_place)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){3, 1});
    dg_node *b = dg_input(g, "b", 2, (int64_t[]){3, 4});
    dg_node *a = dg_add(g, x, x);      /* an arena value that dies at the mul */
    dg_node *y = dg_mul(g, a, b);
    dg_plan *p = dg_compile(g, 1, &y);
    const float xs[3] = {1, 5, 7}, bs[12] = {3, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47};
    dg_feed(p, x, xs);
    dg_feed(p, b, bs);
    ck_assert_int_eq(dg_run(p), DG_OK);
    const float *out = dg_data(p, y);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            ck_assert_float_eq_tol(out[r * 4 + c], 2.0f * xs[r] * bs[r * 4 + c], 1e-6f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* Element counts that would overflow are shape errors, never wrapped-around buffers. */
START_TEST(huge_shapes_are_refused)
{
    dg_graph *g = dg_graph_new();
    dg_node *a = dg_input(g, "a", 2, (int64_t[]){(int64_t)1 << 30, 1});
    dg_node *b = dg_input(g, "b", 2, (int64_t[]){1, (int64_t)1 << 34});
    ck_assert_ptr_null(dg_add(g, a, b));
    ck_assert_int_eq(dg_graph_status(g), DG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "add: the result would have more than 2^40"));
    dg_graph_clear_error(g);
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, 3});
    dg_node *y = dg_mul(g, x, x);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_int_eq(dg_plan_set_batch(p, (int64_t)1 << 62), DG_ERR_SHAPE);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_plan_set_input_shape(p, x, 2, (int64_t[]){(int64_t)1 << 40, 1 << 24}),
                     DG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "more than 2^40 elements"));
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_plan_numel(p, y), 12); /* untouched */
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* A re-plan that runs out of memory leaves a plan that refuses to run, and recovers. */
START_TEST(out_of_memory_on_replan_is_recoverable)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){2, 1});
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){1, 1 << 20});
    dg_node *y = dg_add(g, x, w);
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_ptr_nonnull(p);
    /* [2^19, 2^20] floats: 2 TiB. */
    ck_assert_int_eq(dg_plan_set_batch(p, (int64_t)1 << 19), DG_ERR_NOMEM);
    ck_assert_ptr_nonnull(strstr(dg_graph_error(g), "out of memory"));
    dg_graph_clear_error(g);
    float xs[2] = {1, 2};
    ck_assert_int_eq(dg_run(p), DG_ERR_STATE);
    dg_graph_clear_error(g);
    ck_assert_int_eq(dg_plan_set_batch(p, 2), DG_OK);
    ck_assert_int_eq(dg_feed(p, x, xs), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_float_eq_tol(dg_data(p, y)[(1 << 20) + 5], 2.0f, 1e-6f);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

/* The per-step profile: off by default (the report says so), on it counts runs and names
 * the ops with their shapes; the values computed are the same as without it; off frees it. */
START_TEST(profile_counts_runs_and_names_ops)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){4, 3});
    dg_node *w = dg_param(g, "w", 2, (int64_t[]){3, 5});
    dg_init_constant(w, 0.5f);
    dg_node *y = dg_tanh(g, dg_matmul(g, x, w));
    dg_plan *p = dg_compile(g, 1, &y);
    ck_assert_ptr_nonnull(p);
    float data[12];
    for (int i = 0; i < 12; i++)
        data[i] = 0.1f * (float)i;
    ck_assert_int_eq(dg_feed(p, x, data), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    float plain[20];
    memcpy(plain, dg_data(p, y), sizeof plain);
    char buf[4096];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    ck_assert_int_eq(dg_plan_profile_report(p, f, 10), DG_OK);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "no profiled run"));
    ck_assert_int_eq(dg_plan_set_profile(p, true), DG_OK);
    for (int r = 0; r < 3; r++)
        ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_mem_eq(dg_data(p, y), plain, sizeof plain);
    f = fmemopen(buf, sizeof buf, "w");
    ck_assert_int_eq(dg_plan_profile_report(p, f, 10), DG_OK);
    fclose(f);
    ck_assert_msg(strstr(buf, "profile: 3 runs") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "matmul fwd [4,3] [3,5] -> [4,5]") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "tanh fwd [4,5] -> [4,5]") != NULL, "%s", buf);
    ck_assert_int_eq(dg_plan_set_profile(p, false), DG_OK);
    ck_assert_int_eq(dg_run(p), DG_OK);
    ck_assert_int_eq(dg_plan_set_profile(NULL, true), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_plan_profile_report(NULL, stdout, 1), DG_ERR_INVALID_ARG);
    dg_plan_free(p);
    dg_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, pruning_keeps_only_what_outputs_need);
    tcase_add_test(tc, step_timer_sees_every_step);
    tcase_add_test(tc, shared_memory_equals_unshared_bitwise);
    tcase_add_test(tc, workspace_planned_unplanned_and_growth);
    tcase_add_test(tc, intermediates_are_not_readable);
    tcase_add_test(tc, batch_changes_without_rebuilding);
    tcase_add_test(tc, bad_batch_change_is_reported_and_recoverable);
    tcase_add_test(tc, int32_inputs_round_trip);
    tcase_add_test(tc, parameters_are_read_live);
    tcase_add_test(tc, broadcast_input_is_not_overwritten_in_place);
    tcase_add_test(tc, huge_shapes_are_refused);
    tcase_add_test(tc, out_of_memory_on_replan_is_recoverable);
    tcase_add_test(tc, profile_counts_runs_and_names_ops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dg_test_run(suite());
}
