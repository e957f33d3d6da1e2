/*
 * Optimizers: parity with torch.optim (tests/fixtures/optim.dgfx from tests/gen/gen_optim.py),
 * schedules, clipping, state inspection, error paths, thread-count determinism, and the
 * dg_node / dg_plan glue.
 *
 * Parity comparison, after 20 steps, per element a (dagrad) and b (PyTorch 1.13, float32):
 *   parameters:  |a - b| <= 1e-6 * max(|b|, 0.1)      (1e-5 for centered RMSProp, see row_rtol)
 *   state:       |a - b| <= 5e-5 * max(|b|, 0.01 * max |b| over the tensor)
 *   grad norm:   |a - b| <= 1e-6 * |b| at every step; lr to float precision at every step.
 * Parameters start in [-1, 1]; a parameter that ends near zero got there by cancellation of
 * O(0.1..1) values, so its rounding error is set by them, not by its own size: hence the
 * floor (0.1 means 1e-7 absolute, under one float ulp at 1.0). PyTorch's vectorised kernels
 * use fused multiply-add in places and we do not, so the results differ in the last bits. The
 * worst errors (also with no floor, and absolute) are printed per configuration.
 */
#include "dagrad.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_PARAMS 3
#define STEPS 20
#define PARITY_RTOL 1e-6
#define PARITY_FLOOR 0.1
#define STATE_RTOL 5e-5

static dg_fixture *fixture;

/* ---- the parity table: one row per configuration of tests/gen/gen_optim.py -------------- */

static const char *const row_names[] = {
    "sgd", "sgd_nesterov", "sgd_dampening_max", "adam", "adam_amsgrad_wd", "adamw",
    "adamw_amsgrad", "rmsprop", "rmsprop_centered_mom", "adagrad", "adam_clipnorm_cosine",
    "sgd_clipvalue_step", "adamw_clipinf_exp", "rmsprop_clipnorm1",
};
#define N_ROWS ((int)(sizeof row_names / sizeof row_names[0]))

/* Parameter tolerance per row: PARITY_RTOL, except centered RMSProp, whose sqrt(sq - ga^2)
 * cancels: there torch's own float32 result is 4.5e-5 (same measure) from its float64 result,
 * so the last-bit differences between two float32 implementations are amplified too. */
static double row_rtol(int row)
{
    return strcmp(row_names[row], "rmsprop_centered_mom") == 0 ? 1e-5 : PARITY_RTOL;
}

/* The optimizer of row `row` over raw arrays, configured as gen_optim.py's CONFIGS[row]. */
static dg_optim *make_row(int row, float *const *params, const int64_t *numel, int *has_norm)
{
    dg_sgd_config sgd = DG_SGD_DEFAULTS;
    dg_adam_config adam = DG_ADAM_DEFAULTS, adamw = DG_ADAMW_DEFAULTS;
    dg_rmsprop_config rms = DG_RMSPROP_DEFAULTS;
    dg_adagrad_config ada = DG_ADAGRAD_DEFAULTS;
    dg_optim *opt = NULL;
    *has_norm = 0;
    switch (row) {
    case 0:
        sgd.lr = 0.1;
        return dg_optim_new_sgd_raw(N_PARAMS, params, numel, &sgd);
    case 1:
        sgd.lr = 0.05, sgd.momentum = 0.9, sgd.nesterov = true, sgd.weight_decay = 0.01;
        return dg_optim_new_sgd_raw(N_PARAMS, params, numel, &sgd);
    case 2:
        sgd.lr = 0.05, sgd.momentum = 0.8, sgd.dampening = 0.3, sgd.maximize = true;
        return dg_optim_new_sgd_raw(N_PARAMS, params, numel, &sgd);
    case 3:
        adam.lr = 0.01;
        return dg_optim_new_adam_raw(N_PARAMS, params, numel, &adam);
    case 4:
        adam.lr = 0.01, adam.beta1 = 0.8, adam.beta2 = 0.99, adam.weight_decay = 0.05;
        adam.amsgrad = true;
        return dg_optim_new_adam_raw(N_PARAMS, params, numel, &adam);
    case 5:
        adamw.lr = 0.01, adamw.weight_decay = 0.1;
        return dg_optim_new_adamw_raw(N_PARAMS, params, numel, &adamw);
    case 6:
        adamw.lr = 0.02, adamw.amsgrad = true, adamw.eps = 1e-6;
        return dg_optim_new_adamw_raw(N_PARAMS, params, numel, &adamw);
    case 7:
        return dg_optim_new_rmsprop_raw(N_PARAMS, params, numel, &rms);
    case 8:
        rms.lr = 0.005, rms.alpha = 0.9, rms.momentum = 0.9, rms.centered = true;
        rms.weight_decay = 0.01;
        return dg_optim_new_rmsprop_raw(N_PARAMS, params, numel, &rms);
    case 9:
        ada.lr = 0.1, ada.lr_decay = 0.01, ada.weight_decay = 0.01;
        ada.initial_accumulator_value = 0.1;
        return dg_optim_new_adagrad_raw(N_PARAMS, params, numel, &ada);
    case 10: {
        adam.lr = 0.02;
        opt = dg_optim_new_adam_raw(N_PARAMS, params, numel, &adam);
        dg_schedule cosine = dg_schedule_cosine(5, 15, 1e-3);
        ck_assert_int_eq(dg_optim_set_schedule(opt, &cosine), DG_OK);
        ck_assert_int_eq(dg_optim_set_clip_norm(opt, 1.0, 2.0), DG_OK);
        *has_norm = 1;
        return opt;
    }
    case 11: {
        sgd.lr = 0.1, sgd.momentum = 0.5;
        opt = dg_optim_new_sgd_raw(N_PARAMS, params, numel, &sgd);
        dg_schedule step = dg_schedule_step(6, 0.5);
        ck_assert_int_eq(dg_optim_set_schedule(opt, &step), DG_OK);
        ck_assert_int_eq(dg_optim_set_clip_value(opt, 0.5), DG_OK);
        return opt;
    }
    case 12: {
        adamw.lr = 0.01, adamw.weight_decay = 0.05;
        opt = dg_optim_new_adamw_raw(N_PARAMS, params, numel, &adamw);
        dg_schedule exponential = dg_schedule_exponential(0.9);
        ck_assert_int_eq(dg_optim_set_schedule(opt, &exponential), DG_OK);
        ck_assert_int_eq(dg_optim_set_clip_norm(opt, 0.5, INFINITY), DG_OK);
        *has_norm = 1;
        return opt;
    }
    case 13:
        rms.lr = 0.01, rms.momentum = 0.5;
        opt = dg_optim_new_rmsprop_raw(N_PARAMS, params, numel, &rms);
        ck_assert_int_eq(dg_optim_set_clip_norm(opt, 2.0, 1.0), DG_OK);
        *has_norm = 1;
        return opt;
    default:
        ck_abort_msg("no row %d", row);
        return NULL;
    }
}

static const dg_fixture_tensor *need(const char *fmt, const char *config, int index)
{
    char name[128];
    snprintf(name, sizeof name, fmt, config, index);
    return dg_fixture_need(fixture, name);
}

/* Largest |a - b| / max(|b|, floor) over n values. */
static double rel_err(const float *a, const float *b, int64_t n)
{
    return dg_test_max_rel_err(a, b, n, PARITY_FLOOR);
}

/* State tensors (moments ~ g, g^2) have their own scale: the floor is 1% of the largest
 * magnitude in the tensor. */
static double state_err(const float *a, const float *b, int64_t n)
{
    double largest = 0.0;
    for (int64_t i = 0; i < n; i++)
        largest = fabs(b[i]) > largest ? fabs(b[i]) : largest;
    return dg_test_max_rel_err(a, b, n, largest > 0 ? 1e-2 * largest : 1e-30);
}

START_TEST(test_parity_torch)
{
    const char *config = row_names[_i];
    ck_assert_msg(fixture != NULL, "tests/fixtures/optim.dgfx did not load");
    float *params[N_PARAMS];
    const float *grads[N_PARAMS];
    const float *grad_steps[N_PARAMS];
    int64_t numel[N_PARAMS];
    for (int i = 0; i < N_PARAMS; i++) {
        const dg_fixture_tensor *init = need("%s%d", "param_init_", i);
        numel[i] = init->numel;
        params[i] = malloc((size_t)numel[i] * sizeof(float));
        memcpy(params[i], init->data, (size_t)numel[i] * sizeof(float));
        const dg_fixture_tensor *g = need("%s%d", "grad_", i);
        ck_assert_int_eq(g->numel, STEPS * numel[i]);
        grad_steps[i] = g->data;
    }
    int has_norm;
    dg_optim *opt = make_row(_i, params, numel, &has_norm);
    ck_assert_msg(dg_optim_status(opt) == DG_OK, "%s", dg_optim_error(opt));
    const float *lrs = need("%s/lr", config, 0)->data;
    const float *norms = has_norm ? need("%s/norm", config, 0)->data : NULL;
    double worst_norm = 0.0;
    for (int k = 0; k < STEPS; k++) {
        /* the fixture stores torch's lr as float32: compare to float precision */
        ck_assert_double_eq_tol(dg_optim_lr(opt), lrs[k], 1e-7 * lrs[k] + 1e-12);
        for (int i = 0; i < N_PARAMS; i++)
            grads[i] = grad_steps[i] + k * numel[i];
        ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
        if (norms != NULL) {
            double err = fabs(dg_optim_last_grad_norm(opt) - norms[k]) / norms[k];
            worst_norm = err > worst_norm ? err : worst_norm;
        }
    }
    ck_assert_int_eq(dg_optim_step_count(opt), STEPS);
    double worst = 0.0, worst_state = 0.0, worst_pure = 0.0, worst_abs = 0.0;
    for (int i = 0; i < N_PARAMS; i++) {
        const dg_fixture_tensor *want = need("%s/param_%d", config, i);
        ck_assert_int_eq(want->numel, numel[i]);
        double err = rel_err(params[i], want->data, numel[i]);
        worst = err > worst ? err : worst;
        /* for the record: the plain relative and the absolute error */
        err = dg_test_max_rel_err(params[i], want->data, numel[i], 1e-30);
        worst_pure = err > worst_pure ? err : worst_pure;
        err = dg_test_max_rel_err(params[i], want->data, numel[i], 1.0);
        worst_abs = err > worst_abs ? err : worst_abs;
        for (int s = 0; s < dg_optim_state_count(opt); s++) {
            const char *slot = dg_optim_state_name(opt, s);
            char name[128];
            snprintf(name, sizeof name, "%s/%s_%d", config, slot, i);
            const dg_fixture_tensor *want_state = dg_fixture_need(fixture, name);
            int64_t n = -1;
            const float *state = dg_optim_state(opt, i, slot, &n);
            ck_assert_ptr_nonnull(state);
            ck_assert_int_eq(n, numel[i]);
            err = state_err(state, want_state->data, n);
            worst_state = err > worst_state ? err : worst_state;
        }
    }
    printf("optim parity %-22s params: rel %.2e (no floor %.2e, abs %.2e)  state %.2e  "
           "norm %.2e\n", config, worst, worst_pure, worst_abs, worst_state, worst_norm);
    ck_assert_msg(worst <= row_rtol(_i), "%s: params max rel err %g", config, worst);
    ck_assert_msg(worst_state <= STATE_RTOL, "%s: state max rel err %g", config, worst_state);
    ck_assert_msg(worst_norm <= 1e-6, "%s: grad norm rel err %g", config, worst_norm);
    dg_optim_free(opt);
    for (int i = 0; i < N_PARAMS; i++)
        free(params[i]);
}
END_TEST

/* Every state slot torch keeps is compared: the fixture must hold no slot we lack. */
START_TEST(test_parity_slots_complete)
{
    ck_assert_msg(fixture != NULL, "tests/fixtures/optim.dgfx did not load");
    float a[35], b[5], c[24];
    float *params[N_PARAMS] = {a, b, c};
    const int64_t numel[N_PARAMS] = {35, 5, 24};
    for (int row = 0; row < N_ROWS; row++) {
        int has_norm;
        dg_optim *opt = make_row(row, params, numel, &has_norm);
        size_t prefix = strlen(row_names[row]);
        int expected = 0;
        for (int t = 0; t < fixture->count; t++) {
            const char *name = fixture->tensors[t].name;
            if (strncmp(name, row_names[row], prefix) == 0 && name[prefix] == '/' &&
                strncmp(name + prefix + 1, "param_", 6) != 0 &&
                strcmp(name + prefix + 1, "lr") != 0 && strcmp(name + prefix + 1, "norm") != 0)
                expected++;
        }
        ck_assert_msg(expected == N_PARAMS * dg_optim_state_count(opt),
                      "%s: torch keeps %d state tensors, dagrad %d slots x %d", row_names[row],
                      expected, dg_optim_state_count(opt), N_PARAMS);
        dg_optim_free(opt);
    }
}
END_TEST

/* ---- schedules ---------------------------------------------------------------------------- */

START_TEST(test_schedule_values)
{
    const double tol = 1e-15;
    dg_schedule constant = dg_schedule_constant();
    ck_assert_double_eq_tol(dg_schedule_lr(&constant, 0.1, 0), 0.1, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&constant, 0.1, 1000), 0.1, tol);

    dg_schedule step = dg_schedule_step(3, 0.5);
    ck_assert_double_eq_tol(dg_schedule_lr(&step, 0.1, 0), 0.1, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&step, 0.1, 2), 0.1, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&step, 0.1, 3), 0.05, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&step, 0.1, 5), 0.05, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&step, 0.1, 6), 0.025, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&step, 0.1, 7), 0.025, tol);

    dg_schedule exponential = dg_schedule_exponential(0.9);
    ck_assert_double_eq_tol(dg_schedule_lr(&exponential, 0.1, 0), 0.1, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&exponential, 0.1, 2), 0.081, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&exponential, 0.1, 10), 0.1 * pow(0.9, 10), tol);

    /* warm-up 4 steps to 0.1, cosine to 0.01 at step 12 */
    dg_schedule cosine = dg_schedule_cosine(4, 12, 0.01);
    ck_assert_double_eq_tol(dg_schedule_lr(&cosine, 0.1, 0), 0.025, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&cosine, 0.1, 1), 0.05, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&cosine, 0.1, 3), 0.1, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&cosine, 0.1, 4), 0.1, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&cosine, 0.1, 6),
                            0.01 + 0.09 * 0.5 * (1 + cos(M_PI * 0.25)), tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&cosine, 0.1, 8), 0.055, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&cosine, 0.1, 12), 0.01, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&cosine, 0.1, 1000), 0.01, tol);
    /* no warm-up: starts at the base lr */
    dg_schedule no_warmup = dg_schedule_cosine(0, 10, 0.0);
    ck_assert_double_eq_tol(dg_schedule_lr(&no_warmup, 0.2, 0), 0.2, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&no_warmup, 0.2, 5), 0.1, tol);
    ck_assert_double_eq_tol(dg_schedule_lr(&no_warmup, 0.2, 10), 0.0, tol);
}
END_TEST

START_TEST(test_schedule_invalid)
{
    dg_schedule bad_step = dg_schedule_step(0, 0.5);
    dg_schedule bad_gamma = dg_schedule_exponential(-1.0);
    dg_schedule nan_gamma = dg_schedule_exponential(NAN);
    dg_schedule bad_total = dg_schedule_cosine(10, 10, 0.0);
    dg_schedule bad_warmup = dg_schedule_cosine(-1, 10, 0.0);
    dg_schedule bad_min = dg_schedule_cosine(0, 10, 0.5);
    dg_schedule bad_kind = {.kind = DG_SCHEDULE_KIND_COUNT};
    dg_schedule fine = dg_schedule_constant();
    ck_assert(isnan(dg_schedule_lr(NULL, 0.1, 0)));
    ck_assert(isnan(dg_schedule_lr(&bad_step, 0.1, 0)));
    ck_assert(isnan(dg_schedule_lr(&bad_gamma, 0.1, 0)));
    ck_assert(isnan(dg_schedule_lr(&nan_gamma, 0.1, 0)));
    ck_assert(isnan(dg_schedule_lr(&bad_total, 0.1, 0)));
    ck_assert(isnan(dg_schedule_lr(&bad_warmup, 0.1, 0)));
    ck_assert(isnan(dg_schedule_lr(&bad_min, 0.1, 0)));
    ck_assert(isnan(dg_schedule_lr(&bad_kind, 0.1, 0)));
    ck_assert(isnan(dg_schedule_lr(&fine, -0.1, 0)));
    ck_assert(isnan(dg_schedule_lr(&fine, INFINITY, 0)));
    ck_assert(isnan(dg_schedule_lr(&fine, 0.1, -1)));
}
END_TEST

/* The optimizer's lr follows its schedule step by step, and set_base_lr rescales it. */
START_TEST(test_optim_lr_follows_schedule)
{
    float p[4] = {1, 2, 3, 4}, g[4] = {0};
    float *params[1] = {p};
    const float *grads[1] = {g};
    const int64_t numel[1] = {4};
    dg_sgd_config cfg = DG_SGD_DEFAULTS;
    cfg.lr = 0.1;
    dg_optim *opt = dg_optim_new_sgd_raw(1, params, numel, &cfg);
    ck_assert_double_eq_tol(dg_optim_lr(opt), 0.1, 1e-15);
    dg_schedule cosine = dg_schedule_cosine(4, 12, 0.01);
    ck_assert_int_eq(dg_optim_set_schedule(opt, &cosine), DG_OK);
    for (int t = 0; t < 15; t++) {
        ck_assert_double_eq_tol(dg_optim_lr(opt), dg_schedule_lr(&cosine, 0.1, t), 1e-15);
        ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
    }
    ck_assert_int_eq(dg_optim_set_base_lr(opt, 0.2), DG_OK);
    ck_assert_double_eq_tol(dg_optim_base_lr(opt), 0.2, 1e-15);
    ck_assert_double_eq_tol(dg_optim_lr(opt), 0.01, 1e-15); /* past total: min_lr */
    ck_assert_int_eq(dg_optim_set_step_count(opt, 5), DG_OK);
    ck_assert_double_eq_tol(dg_optim_lr(opt), dg_schedule_lr(&cosine, 0.2, 5), 1e-15);
    ck_assert_int_eq(dg_optim_set_schedule(opt, NULL), DG_OK);
    ck_assert_double_eq_tol(dg_optim_lr(opt), 0.2, 1e-15);
    dg_optim_free(opt);
}
END_TEST

/* ---- clipping ----------------------------------------------------------------------------- */

/* With plain SGD and lr 1, the parameter change is exactly minus the gradient the update saw. */
START_TEST(test_clipping_semantics)
{
    float p[5] = {0}, g[5] = {3.0f, -4.0f, 0.25f, -0.5f, NAN};
    float *params[1] = {p};
    const float *grads[1] = {g};
    const int64_t numel[1] = {4}; /* the NaN stays out until the last case */
    dg_sgd_config cfg = DG_SGD_DEFAULTS;
    cfg.lr = 1.0;
    dg_optim *opt = dg_optim_new_sgd_raw(1, params, numel, &cfg);
    ck_assert(isnan(dg_optim_last_grad_norm(opt)));

    /* value clipping: clamp to [-1, 1]; the gradient array is not written */
    ck_assert_int_eq(dg_optim_set_clip_value(opt, 1.0), DG_OK);
    ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
    ck_assert_float_eq(p[0], -1.0f); /* exact: lr 1, clamp */
    ck_assert_float_eq(p[1], 1.0f);
    ck_assert_float_eq(p[2], -0.25f);
    ck_assert_float_eq(g[0], 3.0f);
    ck_assert(isnan(dg_optim_last_grad_norm(opt)));

    /* norm clipping of the value-clipped gradient: norm sqrt(1 + 1 + 1/16 + 1/4) */
    memset(p, 0, sizeof p);
    ck_assert_int_eq(dg_optim_set_clip_norm(opt, 0.5, 2.0), DG_OK);
    ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
    const double norm = sqrt(2.3125), coef = 0.5 / (norm + 1e-6);
    ck_assert_double_eq_tol(dg_optim_last_grad_norm(opt), norm, 1e-12);
    ck_assert_float_eq_tol(p[0], (float)-coef, 1e-7);
    ck_assert_float_eq_tol(p[2], (float)(-0.25 * coef), 1e-7);

    /* a norm below max_norm leaves the gradient as it is */
    memset(p, 0, sizeof p);
    ck_assert_int_eq(dg_optim_set_clip_value(opt, INFINITY), DG_OK);
    ck_assert_int_eq(dg_optim_set_clip_norm(opt, 100.0, 2.0), DG_OK);
    ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
    ck_assert_double_eq_tol(dg_optim_last_grad_norm(opt), sqrt(25.3125), 1e-12);
    ck_assert_float_eq(p[0], -3.0f);
    ck_assert_float_eq(p[1], 4.0f);

    /* infinity norm and 1-norm */
    ck_assert_int_eq(dg_optim_set_clip_norm(opt, 100.0, INFINITY), DG_OK);
    ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
    ck_assert_double_eq(dg_optim_last_grad_norm(opt), 4.0);
    ck_assert_int_eq(dg_optim_set_clip_norm(opt, 100.0, 1.0), DG_OK);
    ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
    ck_assert_double_eq_tol(dg_optim_last_grad_norm(opt), 7.75, 1e-12);
    ck_assert_int_eq(dg_optim_set_clip_norm(opt, 100.0, 3.0), DG_OK);
    ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
    ck_assert_double_eq_tol(dg_optim_last_grad_norm(opt), cbrt(27 + 64 + 0.015625 + 0.125), 1e-12);

    /* off again */
    ck_assert_int_eq(dg_optim_set_clip_norm(opt, INFINITY, 2.0), DG_OK);
    ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
    ck_assert(isnan(dg_optim_last_grad_norm(opt)));
    dg_optim_free(opt);

    /* a NaN gradient makes the norm NaN and spreads, as torch's default */
    const int64_t numel5[1] = {5};
    memset(p, 0, sizeof p);
    opt = dg_optim_new_sgd_raw(1, params, numel5, &cfg);
    ck_assert_int_eq(dg_optim_set_clip_norm(opt, 1.0, 2.0), DG_OK);
    ck_assert_int_eq(dg_optim_step_raw(opt, grads), DG_OK);
    ck_assert(isnan(dg_optim_last_grad_norm(opt)));
    ck_assert(isnan(p[0]));
    dg_optim_free(opt);
}
END_TEST

/* ---- state ------------------------------------------------------------------------------- */

START_TEST(test_state_slots)
{
    float a[6] = {0}, b[3] = {0};
    float *params[2] = {a, b};
    const int64_t numel[2] = {6, 3};
    dg_sgd_config sgd = DG_SGD_DEFAULTS;
    dg_optim *opt = dg_optim_new_sgd_raw(2, params, numel, &sgd);
    ck_assert_int_eq(dg_optim_state_count(opt), 0);
    ck_assert_ptr_null(dg_optim_state_name(opt, 0));
    ck_assert_str_eq(dg_optim_name(opt), "sgd");
    ck_assert_int_eq(dg_optim_kind_of(opt), DG_OPTIM_SGD);
    ck_assert_int_eq(dg_optim_param_count(opt), 2);
    dg_optim_free(opt);

    dg_adam_config adam = DG_ADAM_DEFAULTS;
    adam.amsgrad = true;
    opt = dg_optim_new_adam_raw(2, params, numel, &adam);
    ck_assert_int_eq(dg_optim_state_count(opt), 3);
    ck_assert_str_eq(dg_optim_state_name(opt, 0), "exp_avg");
    ck_assert_str_eq(dg_optim_state_name(opt, 1), "exp_avg_sq");
    ck_assert_str_eq(dg_optim_state_name(opt, 2), "max_exp_avg_sq");
    ck_assert_ptr_null(dg_optim_state_name(opt, 3));
    ck_assert_ptr_null(dg_optim_state_name(opt, -1));
    int64_t n = 0;
    float *m1 = dg_optim_state(opt, 1, "exp_avg", &n);
    ck_assert_ptr_nonnull(m1);
    ck_assert_int_eq(n, 3);
    ck_assert_ptr_eq(dg_optim_state(opt, 1, "exp_avg", NULL), m1);
    ck_assert_float_eq(m1[2], 0.0f);
    dg_optim_free(opt);

    dg_rmsprop_config rms = DG_RMSPROP_DEFAULTS;
    rms.centered = true;
    opt = dg_optim_new_rmsprop_raw(2, params, numel, &rms);
    ck_assert_int_eq(dg_optim_state_count(opt), 2);
    ck_assert_str_eq(dg_optim_state_name(opt, 0), "square_avg");
    ck_assert_str_eq(dg_optim_state_name(opt, 1), "grad_avg");
    dg_optim_free(opt);

    dg_adagrad_config ada = DG_ADAGRAD_DEFAULTS;
    ada.initial_accumulator_value = 0.25;
    opt = dg_optim_new_adagrad_raw(2, params, numel, &ada);
    ck_assert_int_eq(dg_optim_state_count(opt), 1);
    float *sum = dg_optim_state(opt, 0, "sum", &n);
    ck_assert_int_eq(n, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(sum[i], 0.25f);
    dg_optim_free(opt);
}
END_TEST

/* Copying parameters, state and step count into a fresh optimizer resumes the run exactly. */
START_TEST(test_state_checkpoint_resume)
{
    enum { N = 50, K = 12 };
    float a[N], b[N], grad[K][N];
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 7);
    dg_test_fill_uniform(&rng, a, N, -1, 1);
    for (int k = 0; k < K; k++)
        dg_test_fill_uniform(&rng, grad[k], N, -1, 1);
    float *pa[1] = {a}, *pb[1] = {b};
    const int64_t numel[1] = {N};
    dg_adam_config cfg = DG_ADAMW_DEFAULTS;
    cfg.amsgrad = true;
    cfg.lr = 0.05;
    dg_optim *first = dg_optim_new_adamw_raw(1, pa, numel, &cfg);
    dg_schedule schedule = dg_schedule_cosine(2, 10, 0.001);
    ck_assert_int_eq(dg_optim_set_schedule(first, &schedule), DG_OK);
    for (int k = 0; k < K / 2; k++) {
        const float *g[1] = {grad[k]};
        ck_assert_int_eq(dg_optim_step_raw(first, g), DG_OK);
    }
    memcpy(b, a, sizeof a);
    dg_optim *second = dg_optim_new_adamw_raw(1, pb, numel, &cfg);
    ck_assert_int_eq(dg_optim_set_schedule(second, &schedule), DG_OK);
    for (int s = 0; s < dg_optim_state_count(first); s++) {
        const char *slot = dg_optim_state_name(first, s);
        memcpy(dg_optim_state(second, 0, slot, NULL), dg_optim_state(first, 0, slot, NULL),
               sizeof a);
    }
    ck_assert_int_eq(dg_optim_set_step_count(second, dg_optim_step_count(first)), DG_OK);
    for (int k = K / 2; k < K; k++) {
        const float *g[1] = {grad[k]};
        ck_assert_int_eq(dg_optim_step_raw(first, g), DG_OK);
        ck_assert_int_eq(dg_optim_step_raw(second, g), DG_OK);
    }
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    ck_assert_int_eq(dg_optim_step_count(second), K);
    dg_optim_free(first);
    dg_optim_free(second);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */

/* `make` (a constructor call) yields a failed optimizer with that status and message. */
#define ASSERT_FAILED(make, want_status, fragment)                                          \
    do {                                                                                    \
        dg_optim *failed_ = (make);                                                         \
        ck_assert_ptr_nonnull(failed_);                                                     \
        ck_assert_int_eq(dg_optim_status(failed_), want_status);                            \
        ck_assert_msg(strstr(dg_optim_error(failed_), fragment) != NULL,                    \
                      "message \"%s\" lacks \"%s\"", dg_optim_error(failed_), fragment);    \
        dg_optim_free(failed_);                                                             \
    } while (0)

#define ASSERT_CALL_FAILS(call, opt, want_status, fragment)                                 \
    do {                                                                                    \
        ck_assert_int_eq((call), want_status);                                              \
        ck_assert_msg(strstr(dg_optim_error(opt), fragment) != NULL,                        \
                      "message \"%s\" lacks \"%s\"", dg_optim_error(opt), fragment);        \
    } while (0)

START_TEST(test_errors_construction)
{
    float a[4] = {0}, b[2] = {0};
    float *params[2] = {a, b}, *twice[2] = {a, a}, *null_param[2] = {a, NULL};
    const int64_t numel[2] = {4, 2}, bad_numel[2] = {4, -1}, empty_second[2] = {4, 0};
    dg_sgd_config sgd = DG_SGD_DEFAULTS;
    dg_adam_config adam = DG_ADAM_DEFAULTS;
    dg_rmsprop_config rms = DG_RMSPROP_DEFAULTS;
    dg_adagrad_config ada = DG_ADAGRAD_DEFAULTS;

    ck_assert_int_eq(dg_optim_status(NULL), DG_ERR_NOMEM);
    ck_assert_str_eq(dg_optim_error(NULL), "out of memory");

    ASSERT_FAILED(dg_optim_new_sgd_raw(2, params, numel, NULL), DG_ERR_INVALID_ARG,
                  "sgd: config is NULL");
    ASSERT_FAILED(dg_optim_new_sgd_raw(0, params, numel, &sgd), DG_ERR_INVALID_ARG,
                  "no parameters");
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, NULL, numel, &sgd), DG_ERR_INVALID_ARG,
                  "params is NULL");
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, params, NULL, &sgd), DG_ERR_INVALID_ARG,
                  "numel is NULL");
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, params, bad_numel, &sgd), DG_ERR_INVALID_ARG,
                  "numel[1] = -1");
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, null_param, numel, &sgd), DG_ERR_INVALID_ARG,
                  "params[1] is NULL");
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, twice, numel, &sgd), DG_ERR_INVALID_ARG,
                  "more than once");
    /* an empty parameter may be NULL */
    dg_optim *fine = dg_optim_new_sgd_raw(2, null_param, empty_second, &sgd);
    ck_assert_int_eq(dg_optim_status(fine), DG_OK);
    dg_optim_free(fine);

    sgd.lr = -0.1;
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, params, numel, &sgd), DG_ERR_INVALID_ARG,
                  "sgd: lr = -0.1 must be finite and >= 0");
    sgd = DG_SGD_DEFAULTS;
    sgd.lr = NAN;
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, params, numel, &sgd), DG_ERR_INVALID_ARG, "lr = nan");
    sgd = DG_SGD_DEFAULTS;
    sgd.nesterov = true;
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, params, numel, &sgd), DG_ERR_INVALID_ARG,
                  "nesterov needs momentum > 0 and dampening 0");
    sgd.momentum = 0.9, sgd.dampening = 0.1;
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, params, numel, &sgd), DG_ERR_INVALID_ARG,
                  "dampening = 0.1");
    sgd = DG_SGD_DEFAULTS;
    sgd.momentum = -0.5;
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, params, numel, &sgd), DG_ERR_INVALID_ARG,
                  "momentum = -0.5");
    sgd = DG_SGD_DEFAULTS;
    sgd.weight_decay = -1;
    ASSERT_FAILED(dg_optim_new_sgd_raw(2, params, numel, &sgd), DG_ERR_INVALID_ARG,
                  "weight_decay = -1");

    adam.beta1 = 1.0;
    ASSERT_FAILED(dg_optim_new_adam_raw(2, params, numel, &adam), DG_ERR_INVALID_ARG,
                  "adam: beta1 = 1 is outside [0, 1)");
    adam = DG_ADAM_DEFAULTS;
    adam.beta2 = -0.1;
    ASSERT_FAILED(dg_optim_new_adamw_raw(2, params, numel, &adam), DG_ERR_INVALID_ARG,
                  "adamw: beta2 = -0.1 is outside [0, 1)");
    adam = DG_ADAM_DEFAULTS;
    adam.eps = -1e-8;
    ASSERT_FAILED(dg_optim_new_adam_raw(2, params, numel, &adam), DG_ERR_INVALID_ARG,
                  "eps = -1e-08");
    adam = DG_ADAM_DEFAULTS;
    adam.lr = INFINITY;
    ASSERT_FAILED(dg_optim_new_adam_raw(2, params, numel, &adam), DG_ERR_INVALID_ARG,
                  "lr = inf");

    rms.alpha = 1.5;
    ASSERT_FAILED(dg_optim_new_rmsprop_raw(2, params, numel, &rms), DG_ERR_INVALID_ARG,
                  "rmsprop: alpha = 1.5 is outside [0, 1]");
    rms = DG_RMSPROP_DEFAULTS;
    rms.momentum = -1;
    ASSERT_FAILED(dg_optim_new_rmsprop_raw(2, params, numel, &rms), DG_ERR_INVALID_ARG,
                  "momentum = -1");

    ada.lr_decay = -0.5;
    ASSERT_FAILED(dg_optim_new_adagrad_raw(2, params, numel, &ada), DG_ERR_INVALID_ARG,
                  "adagrad: lr_decay = -0.5");
    ada = DG_ADAGRAD_DEFAULTS;
    ada.initial_accumulator_value = -1;
    ASSERT_FAILED(dg_optim_new_adagrad_raw(2, params, numel, &ada), DG_ERR_INVALID_ARG,
                  "initial_accumulator_value = -1");

    /* a failed optimizer refuses work and keeps its message */
    adam = DG_ADAM_DEFAULTS;
    adam.beta1 = 2;
    dg_optim *failed = dg_optim_new_adam_raw(2, params, numel, &adam);
    const float *grads[2] = {a, b};
    ck_assert_int_eq(dg_optim_step_raw(failed, grads), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_optim_set_clip_norm(failed, 1, 2), DG_ERR_INVALID_ARG);
    ck_assert_ptr_null(dg_optim_state(failed, 0, "exp_avg", NULL));
    ck_assert_int_eq(dg_optim_state_count(failed), 0);
    ck_assert_ptr_nonnull(strstr(dg_optim_error(failed), "beta1 = 2"));
    ck_assert_int_eq(dg_optim_step_count(failed), 0);
    dg_optim_free(failed);
}
END_TEST

START_TEST(test_errors_calls)
{
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6}, ga[4] = {1, 1, 1, 1};
    float *params[2] = {a, b};
    const int64_t numel[2] = {4, 2};
    dg_adam_config cfg = DG_ADAM_DEFAULTS;
    dg_optim *opt = dg_optim_new_adam_raw(2, params, numel, &cfg);
    ck_assert_int_eq(dg_optim_status(opt), DG_OK);
    ck_assert_str_eq(dg_optim_error(opt), "");

    const float *missing[2] = {ga, NULL};
    ASSERT_CALL_FAILS(dg_optim_step_raw(opt, NULL), opt, DG_ERR_INVALID_ARG,
                      "adam: step: grads is NULL");
    ASSERT_CALL_FAILS(dg_optim_step_raw(opt, missing), opt, DG_ERR_INVALID_ARG,
                      "step: grads[1] is NULL");
    /* nothing changed */
    ck_assert_int_eq(dg_optim_step_count(opt), 0);
    ck_assert_float_eq(a[0], 1.0f);
    ck_assert_int_eq(dg_optim_step_raw(NULL, missing), DG_ERR_INVALID_ARG);
    ASSERT_CALL_FAILS(dg_optim_step(opt, NULL), opt, DG_ERR_INVALID_ARG, "step: plan is NULL");

    ASSERT_CALL_FAILS(dg_optim_set_step_count(opt, -1), opt, DG_ERR_INVALID_ARG,
                      "step count -1 is negative");
    ASSERT_CALL_FAILS(dg_optim_set_threads(opt, -2), opt, DG_ERR_INVALID_ARG,
                      "thread count -2 is out of range 0..1024");
    ASSERT_CALL_FAILS(dg_optim_set_base_lr(opt, -1), opt, DG_ERR_INVALID_ARG,
                      "lr = -1 must be finite and >= 0");
    ASSERT_CALL_FAILS(dg_optim_set_clip_norm(opt, -1, 2), opt, DG_ERR_INVALID_ARG,
                      "max_norm = -1 must be >= 0");
    ASSERT_CALL_FAILS(dg_optim_set_clip_norm(opt, 1, 0), opt, DG_ERR_INVALID_ARG,
                      "norm_type = 0 must be > 0");
    ASSERT_CALL_FAILS(dg_optim_set_clip_norm(opt, NAN, 2), opt, DG_ERR_INVALID_ARG,
                      "max_norm = nan");
    ASSERT_CALL_FAILS(dg_optim_set_clip_value(opt, -0.5), opt, DG_ERR_INVALID_ARG,
                      "clip_value = -0.5 must be >= 0");
    ck_assert_ptr_null(dg_optim_state(opt, 2, "exp_avg", NULL));
    ck_assert_ptr_nonnull(strstr(dg_optim_error(opt), "parameter index 2 is outside [0, 2)"));
    ck_assert_ptr_null(dg_optim_state(opt, 0, "momentum_buffer", NULL));
    ck_assert_ptr_nonnull(strstr(dg_optim_error(opt), "no slot \"momentum_buffer\""));
    ck_assert_ptr_null(dg_optim_state(opt, 0, NULL, NULL));
    ck_assert_ptr_nonnull(strstr(dg_optim_error(opt), "slot name is NULL"));

    dg_schedule bad = dg_schedule_step(0, 0.5);
    ASSERT_CALL_FAILS(dg_optim_set_schedule(opt, &bad), opt, DG_ERR_INVALID_ARG,
                      "schedule: step schedule: step_size must be > 0");
    bad = dg_schedule_cosine(5, 3, 0);
    ASSERT_CALL_FAILS(dg_optim_set_schedule(opt, &bad), opt, DG_ERR_INVALID_ARG,
                      "total_steps must be > warmup_steps");
    /* min_lr above the base lr: refused now, and a later set_base_lr below it too */
    bad = dg_schedule_cosine(0, 10, 0.01);
    ASSERT_CALL_FAILS(dg_optim_set_schedule(opt, &bad), opt, DG_ERR_INVALID_ARG,
                      "min_lr must be in [0, base lr]");
    dg_schedule good = dg_schedule_cosine(0, 10, 1e-4);
    ck_assert_int_eq(dg_optim_set_schedule(opt, &good), DG_OK);
    ASSERT_CALL_FAILS(dg_optim_set_base_lr(opt, 1e-5), opt, DG_ERR_INVALID_ARG,
                      "does not fit the schedule");
    ck_assert_double_eq(dg_optim_base_lr(opt), 1e-3);

    /* a raw optimizer cannot read a plan (a non-NULL dummy: rejected before it is used) */
    ASSERT_CALL_FAILS(dg_optim_step(opt, (dg_plan *)opt), opt, DG_ERR_STATE,
                      "made from raw arrays");
    dg_optim_free(opt);
}
END_TEST

/* ---- determinism across thread counts ------------------------------------------------------ */

static void run_big(int threads, int kind, float **out_params, float **out_state,
                    double *out_norm)
{
    /* 3 parameters, 80 008 elements: above DG_OPTIM_SERIAL_ELEMENTS, ragged segment sizes */
    enum { A = 50000, B = 7, C = 30001, K = 3 };
    const int64_t numel[3] = {A, B, C};
    float *params[3];
    float *grads[3];
    dg_test_rng rng;
    dg_test_rng_seed(&rng, 99);
    for (int i = 0; i < 3; i++) {
        params[i] = malloc((size_t)numel[i] * sizeof(float));
        grads[i] = malloc((size_t)numel[i] * K * sizeof(float));
        dg_test_fill_uniform(&rng, params[i], numel[i], -1, 1);
        dg_test_fill_uniform(&rng, grads[i], numel[i] * K, -1, 1);
    }
    dg_optim *opt;
    if (kind == 0) {
        dg_adam_config cfg = DG_ADAM_DEFAULTS;
        cfg.amsgrad = true, cfg.weight_decay = 0.01;
        opt = dg_optim_new_adam_raw(3, params, numel, &cfg);
    } else {
        dg_rmsprop_config cfg = DG_RMSPROP_DEFAULTS;
        cfg.centered = true, cfg.momentum = 0.9;
        opt = dg_optim_new_rmsprop_raw(3, params, numel, &cfg);
    }
    ck_assert_int_eq(dg_optim_set_threads(opt, threads), DG_OK);
    ck_assert_int_eq(dg_optim_threads(opt), threads);
    ck_assert_int_eq(dg_optim_set_clip_norm(opt, 50.0, 2.0), DG_OK);
    for (int k = 0; k < K; k++) {
        const float *g[3] = {grads[0] + k * A, grads[1] + k * B, grads[2] + k * C};
        ck_assert_int_eq(dg_optim_step_raw(opt, g), DG_OK);
        out_norm[k] = dg_optim_last_grad_norm(opt);
    }
    for (int i = 0; i < 3; i++) {
        out_params[i] = params[i];
        int64_t n;
        const float *state = dg_optim_state(opt, i, dg_optim_state_name(opt, 1), &n);
        out_state[i] = malloc((size_t)n * sizeof(float));
        memcpy(out_state[i], state, (size_t)n * sizeof(float));
        free(grads[i]);
    }
    dg_optim_free(opt);
}

START_TEST(test_determinism_threads)
{
    const int64_t numel[3] = {50000, 7, 30001};
    for (int kind = 0; kind < 2; kind++) {
        float *p1[3], *s1[3];
        double n1[3];
        run_big(1, kind, p1, s1, n1);
        ck_assert(n1[0] > 50.0); /* clipping is active */
        for (int threads = 2; threads <= 3; threads++) {
            float *p2[3], *s2[3];
            double n2[3];
            run_big(threads, kind, p2, s2, n2);
            for (int k = 0; k < 3; k++)
                ck_assert_msg(memcmp(&n1[k], &n2[k], sizeof(double)) == 0,
                              "norm differs with %d threads: %.17g vs %.17g", threads, n1[k],
                              n2[k]);
            for (int i = 0; i < 3; i++) {
                size_t bytes = (size_t)numel[i] * sizeof(float);
                ck_assert_msg(memcmp(p1[i], p2[i], bytes) == 0,
                              "params[%d] differ with %d threads", i, threads);
                ck_assert_msg(memcmp(s1[i], s2[i], bytes) == 0,
                              "state of params[%d] differs with %d threads", i, threads);
                free(p2[i]);
                free(s2[i]);
            }
        }
        for (int i = 0; i < 3; i++) {
            free(p1[i]);
            free(s1[i]);
        }
    }
}
END_TEST

/* ---- the dg_node / dg_plan glue ------------------------------------------------------------ */

/* Parameters of a graph; their "gradients" are scale(input, 1) nodes of a plan, fed with known
 * values, so the node path can be compared with the raw path without dg_grad. */
START_TEST(test_nodes_and_plan)
{
    dg_graph *g = dg_graph_new();
    const int64_t shape_w[2] = {3, 2}, shape_b[1] = {2};
    dg_node *w = dg_param(g, "w", 2, shape_w), *b = dg_param(g, "b", 1, shape_b);
    dg_node *gw_in = dg_input(g, "gw", 2, shape_w), *gb_in = dg_input(g, "gb", 1, shape_b);
    dg_node *gw = dg_scale(g, gw_in, 1.0f), *gb = dg_scale(g, gb_in, 1.0f);
    ck_assert_msg(dg_graph_status(g) == DG_OK, "%s", dg_graph_error(g));
    dg_node *params[2] = {w, b}, *grads[2] = {gw, gb};
    dg_node *outputs[2] = {gw, gb};
    dg_plan *plan = dg_compile(g, 2, outputs);
    ck_assert_msg(plan != NULL, "%s", dg_graph_error(g));

    float w0[6] = {1, -2, 3, -4, 5, -6}, b0[2] = {0.5f, -0.5f};
    float gw_values[6] = {0.1f, 0.2f, -0.3f, 0.4f, -0.5f, 0.6f}, gb_values[2] = {1, -1};
    memcpy(dg_param_data(w), w0, sizeof w0);
    memcpy(dg_param_data(b), b0, sizeof b0);
    ck_assert_int_eq(dg_feed(plan, gw_in, gw_values), DG_OK);
    ck_assert_int_eq(dg_feed(plan, gb_in, gb_values), DG_OK);

    dg_adam_config cfg = DG_ADAMW_DEFAULTS;
    cfg.lr = 0.1;
    dg_optim *opt = dg_optim_new_adamw(2, params, grads, &cfg);
    ck_assert_msg(dg_optim_status(opt) == DG_OK, "%s", dg_optim_error(opt));
    ck_assert_ptr_eq(dg_optim_param_node(opt, 1), b);
    ck_assert_ptr_eq(dg_optim_grad_node(opt, 0), gw);
    ck_assert_ptr_null(dg_optim_grad_node(opt, 2));
    ck_assert_ptr_null(dg_optim_param_node(opt, -1));
    float *raw_params[2] = {w0, b0};
    const int64_t numel[2] = {6, 2};
    dg_optim *raw = dg_optim_new_adamw_raw(2, raw_params, numel, &cfg);
    const float *raw_grads[2] = {gw_values, gb_values};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(dg_run(plan), DG_OK);
        ck_assert_msg(dg_optim_step(opt, plan) == DG_OK, "%s", dg_optim_error(opt));
        ck_assert_int_eq(dg_optim_step_raw(raw, raw_grads), DG_OK);
    }
    ck_assert_int_eq(memcmp(dg_param_data(w), w0, sizeof w0), 0);
    ck_assert_int_eq(memcmp(dg_param_data(b), b0, sizeof b0), 0);
    ck_assert_float_eq(gw_values[0], 0.1f); /* gradients are not written */
    ck_assert_ptr_null(dg_optim_grad_node(raw, 0));
    dg_optim_free(raw);

    /* errors of the node path */
    dg_node *not_param[2] = {gw_in, b};
    ASSERT_FAILED(dg_optim_new_sgd(2, not_param, grads, &(dg_sgd_config){.lr = 0.1}),
                  DG_ERR_INVALID_ARG, "params[0] (\"gw\") is not a float32 parameter");
    dg_node *swapped[2] = {gb, gw};
    ASSERT_FAILED(dg_optim_new_adam(2, params, swapped, &cfg), DG_ERR_SHAPE,
                  "grads[0] has 2 elements, params[0] (\"w\") has 6");
    dg_node *null_grad[2] = {gw, NULL};
    ASSERT_FAILED(dg_optim_new_rmsprop(2, params, null_grad, &(dg_rmsprop_config){.lr = 0.1,
                                                                                  .alpha = 0.9}),
                  DG_ERR_INVALID_ARG, "grads[1] (gradient of \"b\") is NULL");
    ASSERT_FAILED(dg_optim_new_adagrad(2, params, NULL, &(dg_adagrad_config){.lr = 0.1}),
                  DG_ERR_INVALID_ARG, "grads is NULL");
    /* a plan without one of the gradients */
    dg_plan *partial = dg_compile(g, 1, outputs);
    ck_assert_ptr_nonnull(partial);
    ck_assert_int_eq(dg_feed(partial, gw_in, gw_values), DG_OK);
    ck_assert_int_eq(dg_run(partial), DG_OK);
    ASSERT_CALL_FAILS(dg_optim_step(opt, partial), opt, DG_ERR_INVALID_ARG,
                      "the plan does not hold grads[1]");
    dg_graph_clear_error(g);
    dg_plan_free(partial);

    dg_optim_free(opt);
    dg_plan_free(plan);
    dg_graph_free(g);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *suite = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_parity_torch, 0, N_ROWS);
    tcase_add_test(tc, test_parity_slots_complete);
    tcase_add_test(tc, test_schedule_values);
    tcase_add_test(tc, test_schedule_invalid);
    tcase_add_test(tc, test_optim_lr_follows_schedule);
    tcase_add_test(tc, test_clipping_semantics);
    tcase_add_test(tc, test_state_slots);
    tcase_add_test(tc, test_state_checkpoint_resume);
    tcase_add_test(tc, test_errors_construction);
    tcase_add_test(tc, test_errors_calls);
    tcase_add_test(tc, test_determinism_threads);
    tcase_add_test(tc, test_nodes_and_plan);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    fixture = dg_fixture_load("optim.dgfx");
    int rc = dg_test_run(optim_suite());
    dg_fixture_free(fixture);
    return rc;
}
