/*
 * The optimizer object: validation, state allocation, inspection, and the fused step driver
 * (optional global-norm pass, then one parallel update pass over the flattened parameters).
 * Nothing here touches the graph core; optim_graph.c binds dg_node parameters and dg_plan
 * gradients onto these raw arrays.
 */
#include "optim_internal.h"
#include "alloc.h"

#if defined(__x86_64__) || defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    dg__update_fn update;
} kind_table[DG_OPTIM_KIND_COUNT] = {
    [DG_OPTIM_SGD] = {"sgd", dg__sgd_update},
    [DG_OPTIM_ADAM] = {"adam", dg__adam_update},
    [DG_OPTIM_ADAMW] = {"adamw", dg__adam_update},
    [DG_OPTIM_RMSPROP] = {"rmsprop", dg__rmsprop_update},
    [DG_OPTIM_ADAGRAD] = {"adagrad", dg__adagrad_update},
};

dg_status dg__optim_fail(dg_optim *opt, dg_status status, const char *fmt, ...)
{
    int used = snprintf(opt->error, sizeof opt->error, "%s: ", kind_table[opt->kind].name);
    va_list args;
    va_start(args, fmt);
    vsnprintf(opt->error + used, sizeof opt->error - (size_t)used, fmt, args);
    va_end(args);
    return status;
}

/* A failed optimizer refuses work; the message of its construction error stays. */
static dg_status check_usable(dg_optim *opt)
{
    if (opt == NULL)
        return DG_ERR_INVALID_ARG;
    return opt->status;
}

static bool nonneg(double x) { return x >= 0.0 && isfinite(x); }

/* Why `cfg` of `kind` is invalid, written into `why`; false when it is valid. */
static bool config_invalid(dg_optim_kind kind, const void *cfg, char *why, size_t len)
{
#define BAD(...) return snprintf(why, len, __VA_ARGS__), true
    switch (kind) {
    case DG_OPTIM_SGD: {
        const dg_sgd_config *c = cfg;
        if (!nonneg(c->lr)) BAD("lr = %g must be finite and >= 0", c->lr);
        if (!nonneg(c->momentum)) BAD("momentum = %g must be finite and >= 0", c->momentum);
        if (!isfinite(c->dampening)) BAD("dampening = %g must be finite", c->dampening);
        if (!nonneg(c->weight_decay))
            BAD("weight_decay = %g must be finite and >= 0", c->weight_decay);
        if (c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0))
            BAD("nesterov needs momentum > 0 and dampening 0 (momentum = %g, dampening = %g)",
                c->momentum, c->dampening);
        return false;
    }
    case DG_OPTIM_ADAM:
    case DG_OPTIM_ADAMW: {
        const dg_adam_config *c = cfg;
        if (!nonneg(c->lr)) BAD("lr = %g must be finite and >= 0", c->lr);
        if (!(c->beta1 >= 0.0 && c->beta1 < 1.0)) BAD("beta1 = %g is outside [0, 1)", c->beta1);
        if (!(c->beta2 >= 0.0 && c->beta2 < 1.0)) BAD("beta2 = %g is outside [0, 1)", c->beta2);
        if (!nonneg(c->eps)) BAD("eps = %g must be finite and >= 0", c->eps);
        if (!nonneg(c->weight_decay))
            BAD("weight_decay = %g must be finite and >= 0", c->weight_decay);
        return false;
    }
    case DG_OPTIM_RMSPROP: {
        const dg_rmsprop_config *c = cfg;
        if (!nonneg(c->lr)) BAD("lr = %g must be finite and >= 0", c->lr);
        if (!(c->alpha >= 0.0 && c->alpha <= 1.0)) BAD("alpha = %g is outside [0, 1]", c->alpha);
        if (!nonneg(c->eps)) BAD("eps = %g must be finite and >= 0", c->eps);
        if (!nonneg(c->weight_decay))
            BAD("weight_decay = %g must be finite and >= 0", c->weight_decay);
        if (!nonneg(c->momentum)) BAD("momentum = %g must be finite and >= 0", c->momentum);
        return false;
    }
    case DG_OPTIM_ADAGRAD: {
        const dg_adagrad_config *c = cfg;
        if (!nonneg(c->lr)) BAD("lr = %g must be finite and >= 0", c->lr);
        if (!nonneg(c->lr_decay)) BAD("lr_decay = %g must be finite and >= 0", c->lr_decay);
        if (!nonneg(c->weight_decay))
            BAD("weight_decay = %g must be finite and >= 0", c->weight_decay);
        if (!nonneg(c->initial_accumulator_value))
            BAD("initial_accumulator_value = %g must be finite and >= 0",
                c->initial_accumulator_value);
        if (!nonneg(c->eps)) BAD("eps = %g must be finite and >= 0", c->eps);
        return false;
    }
    default:
        BAD("unknown optimizer kind %d", (int)kind);
    }
#undef BAD
}

/* DG_NUM_THREADS when it holds a usable count, else 0. */
static int env_threads(void)
{
    const char *env = getenv("DG_NUM_THREADS");
    if (env != NULL) {
        long n = strtol(env, NULL, 10);
        if (n > 0 && n < 4096)
            return (int)n;
    }
    return 0;
}

static int resolve_threads(int setting)
{
    if (setting > 0)
        return setting;
    if (env_threads() > 0)
        return env_threads();
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
}

bool dg__optim_threads_default(const dg_optim *opt)
{
    return opt->n_threads_setting == 0 && env_threads() == 0;
}

static float *alloc_floats(int64_t count)
{
    size_t bytes = (size_t)(count > 0 ? count : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    return dg__aligned_alloc(64, bytes);
}

dg_optim *dg__optim_alloc(dg_optim_kind kind, const void *cfg)
{
    dg_optim *opt = dg__calloc(1, sizeof *opt);
    if (opt == NULL)
        return NULL;
    opt->kind = (unsigned)kind < DG_OPTIM_KIND_COUNT ? kind : DG_OPTIM_SGD;
    opt->status = DG_OK;
    opt->schedule = dg_schedule_constant();
    opt->clip_norm = INFINITY;
    opt->norm_type = 2.0;
    opt->clip_value = INFINITY;
    opt->last_grad_norm = NAN;
    opt->n_threads = resolve_threads(0);
    if ((unsigned)kind >= DG_OPTIM_KIND_COUNT) {
        opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG, "unknown optimizer kind %d",
                                     (int)kind);
        return opt;
    }
    if (cfg == NULL) {
        opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG, "config is NULL");
        return opt;
    }
    char why[160];
    if (config_invalid(kind, cfg, why, sizeof why)) {
        opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG, "%s", why);
        return opt;
    }
    switch (kind) {
    case DG_OPTIM_SGD:
        opt->cfg.sgd = *(const dg_sgd_config *)cfg;
        opt->base_lr = opt->cfg.sgd.lr;
        if (opt->cfg.sgd.momentum != 0.0)
            opt->slot_names[0] = "momentum_buffer";
        break;
    case DG_OPTIM_ADAM:
    case DG_OPTIM_ADAMW:
        opt->cfg.adam = *(const dg_adam_config *)cfg;
        opt->base_lr = opt->cfg.adam.lr;
        opt->slot_names[0] = "exp_avg";
        opt->slot_names[1] = "exp_avg_sq";
        if (opt->cfg.adam.amsgrad)
            opt->slot_names[2] = "max_exp_avg_sq";
        break;
    case DG_OPTIM_RMSPROP:
        opt->cfg.rmsprop = *(const dg_rmsprop_config *)cfg;
        opt->base_lr = opt->cfg.rmsprop.lr;
        opt->slot_names[0] = "square_avg";
        if (opt->cfg.rmsprop.momentum > 0.0)
            opt->slot_names[1] = "momentum_buffer";
        if (opt->cfg.rmsprop.centered)
            opt->slot_names[2] = "grad_avg";
        break;
    case DG_OPTIM_ADAGRAD:
        opt->cfg.adagrad = *(const dg_adagrad_config *)cfg;
        opt->base_lr = opt->cfg.adagrad.lr;
        opt->slot_names[0] = "sum";
        break;
    default:
        break;
    }
    for (int s = 0; s < DG__OPTIM_MAX_SLOTS; s++)
        opt->n_slots += opt->slot_names[s] != NULL;
    return opt;
}

static int compare_pointers(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (float *const *)a, y = (uintptr_t) * (float *const *)b;
    return (x > y) - (x < y);
}

dg_status dg__optim_bind(dg_optim *opt, int n_params, float *const *param_data,
                         const int64_t *numel)
{
    if (opt->status != DG_OK)
        return opt->status;
    if (n_params <= 0)
        return opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG,
                                            "no parameters (n_params = %d)", n_params);
    if (param_data == NULL || numel == NULL)
        return opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG, "%s is NULL",
                                            param_data == NULL ? "params" : "numel");
    int64_t total = 0;
    for (int i = 0; i < n_params; i++) {
        if (numel[i] < 0 || numel[i] > ((int64_t)1 << 40))
            return opt->status = dg__optim_fail(
                       opt, DG_ERR_INVALID_ARG, "numel[%d] = %lld is out of range", i,
                       (long long)numel[i]);
        if (param_data[i] == NULL && numel[i] > 0)
            return opt->status =
                       dg__optim_fail(opt, DG_ERR_INVALID_ARG, "params[%d] is NULL", i);
        total += numel[i];
    }
    float **sorted = dg__malloc((size_t)n_params * sizeof *sorted);
    if (sorted == NULL)
        return opt->status = dg__optim_fail(opt, DG_ERR_NOMEM, "out of memory");
    int n_sorted = 0;
    for (int i = 0; i < n_params; i++)
        if (numel[i] > 0)
            sorted[n_sorted++] = param_data[i];
    qsort(sorted, (size_t)n_sorted, sizeof *sorted, compare_pointers);
    for (int i = 1; i < n_sorted; i++) {
        if (sorted[i] == sorted[i - 1]) {
            dg__free(sorted);
            return opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG,
                                                "a parameter appears more than once");
        }
    }
    dg__free(sorted);

    opt->n_params = n_params;
    opt->param_data = dg__malloc((size_t)n_params * sizeof *opt->param_data);
    opt->grad_ptrs = dg__malloc((size_t)n_params * sizeof *opt->grad_ptrs);
    opt->offset = dg__malloc((size_t)(n_params + 1) * sizeof *opt->offset);
    opt->n_blocks = (total + DG__OPTIM_NORM_BLOCK - 1) / DG__OPTIM_NORM_BLOCK;
    opt->block_sums = dg__malloc((size_t)(opt->n_blocks > 0 ? opt->n_blocks : 1) * sizeof(double));
    bool ok = opt->param_data && opt->grad_ptrs && opt->offset && opt->block_sums;
    for (int s = 0; ok && s < DG__OPTIM_MAX_SLOTS; s++) {
        if (opt->slot_names[s] != NULL) {
            opt->slot[s] = alloc_floats(total);
            ok = opt->slot[s] != NULL;
        }
    }
    if (!ok)
        return opt->status = dg__optim_fail(opt, DG_ERR_NOMEM, "out of memory");
    opt->offset[0] = 0;
    for (int i = 0; i < n_params; i++) {
        opt->param_data[i] = param_data[i];
        opt->offset[i + 1] = opt->offset[i] + numel[i];
    }
    const float initial = opt->kind == DG_OPTIM_ADAGRAD
                              ? (float)opt->cfg.adagrad.initial_accumulator_value
                              : 0.0f;
    for (int s = 0; s < DG__OPTIM_MAX_SLOTS; s++)
        for (int64_t i = 0; opt->slot[s] != NULL && i < total; i++)
            opt->slot[s][i] = s == 0 ? initial : 0.0f;
    return DG_OK;
}

dg_optim *dg__optim_create(dg_optim_kind kind, const void *cfg, int n_params,
                           float *const *param_data, const int64_t *numel)
{
    dg_optim *opt = dg__optim_alloc(kind, cfg);
    if (opt != NULL)
        dg__optim_bind(opt, n_params, param_data, numel);
    return opt;
}

dg_optim *dg_optim_new_sgd_raw(int n_params, float *const *params, const int64_t *numel,
                               const dg_sgd_config *cfg)
{
    return dg__optim_create(DG_OPTIM_SGD, cfg, n_params, params, numel);
}

dg_optim *dg_optim_new_adam_raw(int n_params, float *const *params, const int64_t *numel,
                                const dg_adam_config *cfg)
{
    return dg__optim_create(DG_OPTIM_ADAM, cfg, n_params, params, numel);
}

dg_optim *dg_optim_new_adamw_raw(int n_params, float *const *params, const int64_t *numel,
                                 const dg_adam_config *cfg)
{
    return dg__optim_create(DG_OPTIM_ADAMW, cfg, n_params, params, numel);
}

dg_optim *dg_optim_new_rmsprop_raw(int n_params, float *const *params, const int64_t *numel,
                                   const dg_rmsprop_config *cfg)
{
    return dg__optim_create(DG_OPTIM_RMSPROP, cfg, n_params, params, numel);
}

dg_optim *dg_optim_new_adagrad_raw(int n_params, float *const *params, const int64_t *numel,
                                   const dg_adagrad_config *cfg)
{
    return dg__optim_create(DG_OPTIM_ADAGRAD, cfg, n_params, params, numel);
}

void dg_optim_free(dg_optim *opt)
{
    if (opt == NULL)
        return;
    for (int s = 0; s < DG__OPTIM_MAX_SLOTS; s++)
        dg__free(opt->slot[s]);
    dg__free(opt->param_data);
    dg__free(opt->param_nodes);
    dg__free(opt->grad_nodes);
    dg__free(opt->grad_ptrs);
    dg__free(opt->offset);
    dg__free(opt->block_sums);
    dg__free(opt);
}

dg_status dg_optim_status(const dg_optim *opt) { return opt ? opt->status : DG_ERR_NOMEM; }

const char *dg_optim_error(const dg_optim *opt) { return opt ? opt->error : "out of memory"; }

/* ---- inspection and settings ------------------------------------------------------------ */

dg_optim_kind dg_optim_kind_of(const dg_optim *opt) { return opt ? opt->kind : DG_OPTIM_SGD; }

const char *dg_optim_name(const dg_optim *opt) { return opt ? kind_table[opt->kind].name : ""; }

int dg_optim_param_count(const dg_optim *opt)
{
    return opt && opt->status == DG_OK ? opt->n_params : 0;
}

int dg_optim_state_count(const dg_optim *opt)
{
    return opt && opt->status == DG_OK ? opt->n_slots : 0;
}

const char *dg_optim_state_name(const dg_optim *opt, int slot)
{
    if (opt == NULL || opt->status != DG_OK || slot < 0)
        return NULL;
    for (int s = 0; s < DG__OPTIM_MAX_SLOTS; s++)
        if (opt->slot_names[s] != NULL && slot-- == 0)
            return opt->slot_names[s];
    return NULL;
}

float *dg_optim_state(dg_optim *opt, int param_index, const char *slot_name, int64_t *numel)
{
    if (check_usable(opt) != DG_OK)
        return NULL;
    if (param_index < 0 || param_index >= opt->n_params) {
        dg__optim_fail(opt, DG_ERR_INVALID_ARG, "state: parameter index %d is outside [0, %d)",
                       param_index, opt->n_params);
        return NULL;
    }
    if (slot_name == NULL) {
        dg__optim_fail(opt, DG_ERR_INVALID_ARG, "state: slot name is NULL");
        return NULL;
    }
    for (int s = 0; s < DG__OPTIM_MAX_SLOTS; s++) {
        if (opt->slot_names[s] != NULL && strcmp(opt->slot_names[s], slot_name) == 0) {
            if (numel != NULL)
                *numel = opt->offset[param_index + 1] - opt->offset[param_index];
            return opt->slot[s] + opt->offset[param_index];
        }
    }
    dg__optim_fail(opt, DG_ERR_NOT_FOUND, "state: no slot \"%s\" in this configuration",
                   slot_name);
    return NULL;
}

int64_t dg_optim_step_count(const dg_optim *opt) { return opt ? opt->steps : 0; }

dg_status dg_optim_set_step_count(dg_optim *opt, int64_t steps)
{
    dg_status status = check_usable(opt);
    if (status != DG_OK)
        return status;
    if (steps < 0)
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "step count %lld is negative",
                              (long long)steps);
    opt->steps = steps;
    return DG_OK;
}

dg_status dg_optim_set_threads(dg_optim *opt, int n_threads)
{
    dg_status status = check_usable(opt);
    if (status != DG_OK)
        return status;
    if (n_threads < 0 || n_threads > 1024)
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "thread count %d is out of range "
                              "0..1024 (as dg_graph_set_threads)", n_threads);
    opt->n_threads_setting = n_threads;
    opt->n_threads = resolve_threads(n_threads);
    return DG_OK;
}

int dg_optim_threads(const dg_optim *opt) { return opt ? opt->n_threads : 0; }

dg_status dg_optim_set_schedule(dg_optim *opt, const dg_schedule *s)
{
    dg_status status = check_usable(opt);
    if (status != DG_OK)
        return status;
    dg_schedule schedule = s ? *s : dg_schedule_constant();
    const char *why = dg__schedule_problem(&schedule, opt->base_lr);
    if (why != NULL)
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "schedule: %s", why);
    opt->schedule = schedule;
    return DG_OK;
}

double dg_optim_base_lr(const dg_optim *opt) { return opt ? opt->base_lr : NAN; }

dg_status dg_optim_set_base_lr(dg_optim *opt, double lr)
{
    dg_status status = check_usable(opt);
    if (status != DG_OK)
        return status;
    if (!nonneg(lr))
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "lr = %g must be finite and >= 0", lr);
    const char *why = dg__schedule_problem(&opt->schedule, lr);
    if (why != NULL)
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "lr = %g does not fit the schedule: %s",
                              lr, why);
    opt->base_lr = lr;
    return DG_OK;
}

double dg_optim_lr(const dg_optim *opt)
{
    return opt ? dg_schedule_lr(&opt->schedule, opt->base_lr, opt->steps) : NAN;
}

dg_status dg_optim_set_clip_norm(dg_optim *opt, double max_norm, double norm_type)
{
    dg_status status = check_usable(opt);
    if (status != DG_OK)
        return status;
    if (!(max_norm >= 0.0))
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "clip_norm: max_norm = %g must be >= 0",
                              max_norm);
    if (!(norm_type > 0.0))
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG,
                              "clip_norm: norm_type = %g must be > 0 or INFINITY", norm_type);
    opt->clip_norm = max_norm;
    opt->norm_type = norm_type;
    return DG_OK;
}

dg_status dg_optim_set_clip_value(dg_optim *opt, double clip_value)
{
    dg_status status = check_usable(opt);
    if (status != DG_OK)
        return status;
    if (!(clip_value >= 0.0))
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "clip_value = %g must be >= 0",
                              clip_value);
    opt->clip_value = clip_value;
    return DG_OK;
}

double dg_optim_last_grad_norm(const dg_optim *opt) { return opt ? opt->last_grad_norm : NAN; }

/* ---- the step ---------------------------------------------------------------------------- */

/* The parameter whose segment holds flattened index `index` (< total): the last i with
 * offset[i] <= index, skipping empty parameters. */
static int find_segment(const dg_optim *opt, int64_t index)
{
    int lo = 0, hi = opt->n_params; /* offset[lo] <= index < offset[hi] */
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (opt->offset[mid] <= index)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Walks the range [lo, hi) of the flattened space one parameter at a time: after each
 * walk_next() returning true, [begin, end) is the non-empty part of parameter `param`. */
typedef struct {
    const dg_optim *opt;
    int64_t lo, hi;
    int param;
    int64_t begin, end;
} piece_walk;

static piece_walk walk_start(const dg_optim *opt, int64_t lo, int64_t hi)
{
    return (piece_walk){.opt = opt, .lo = lo, .hi = hi,
                        .param = lo < hi ? find_segment(opt, lo) - 1 : opt->n_params};
}

static bool walk_next(piece_walk *w)
{
    const int64_t *offset = w->opt->offset;
    while (++w->param < w->opt->n_params && offset[w->param] < w->hi) {
        w->begin = offset[w->param] > w->lo ? offset[w->param] : w->lo;
        w->end = offset[w->param + 1] < w->hi ? offset[w->param + 1] : w->hi;
        if (w->begin < w->end)
            return true;
    }
    return false;
}

/* Subnormal optimizer state (Adam's second moments of weights whose gradient stopped, e.g.
 * behind dead ReLUs) makes every arithmetic instruction on it ~100x slower on x86; a whole
 * update then runs several times slower than the same step with normal numbers. During an
 * update each thread flushes subnormal inputs and results to zero (MXCSR FTZ + DAZ), and
 * restores its mode afterwards. This departs from PyTorch only for state below FLT_MIN. */
static unsigned flush_subnormals_begin(void)
{
#if defined(__x86_64__) || defined(__SSE2__)
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
    return saved;
#else
    return 0;
#endif
}

static void flush_subnormals_end(unsigned saved)
{
#if defined(__x86_64__) || defined(__SSE2__)
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

static void update_range(const dg_optim *opt, const struct dg__step_scalars *s,
                         const float *const *grads, int64_t lo, int64_t hi)
{
    const dg__update_fn update = kind_table[opt->kind].update;
    for (piece_walk w = walk_start(opt, lo, hi); walk_next(&w);) {
        const int64_t local = w.begin - opt->offset[w.param];
        float *state[DG__OPTIM_MAX_SLOTS];
        for (int k = 0; k < DG__OPTIM_MAX_SLOTS; k++)
            state[k] = opt->slot[k] != NULL ? opt->slot[k] + w.begin : NULL;
        update(s, w.end - w.begin, opt->param_data[w.param] + local, grads[w.param] + local,
               state);
    }
}

/* max that lets a NaN win */
static double nan_max(double a, double b) { return isnan(a) || a >= b ? a : b; }

/* The global norm; the block partition and every sum's order are fixed, so the result does
 * not depend on `threads`. */
static double global_norm(dg_optim *opt, const float *const *grads, float clip_value,
                          int threads)
{
    const int64_t total = opt->offset[opt->n_params], n_blocks = opt->n_blocks;
    const double p = opt->norm_type;
    const bool is_max = isinf(p);
    double *block_sums = opt->block_sums;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t b = 0; b < n_blocks; b++) {
        const int64_t lo = b * DG__OPTIM_NORM_BLOCK;
        const int64_t hi = lo + DG__OPTIM_NORM_BLOCK < total ? lo + DG__OPTIM_NORM_BLOCK : total;
        double acc[4] = {0.0, 0.0, 0.0, 0.0};
        for (piece_walk w = walk_start(opt, lo, hi); walk_next(&w);)
            dg__norm_accumulate(acc, w.begin, grads[w.param] + (w.begin - opt->offset[w.param]),
                                w.end - w.begin, clip_value, p);
        block_sums[b] = is_max ? nan_max(nan_max(acc[0], acc[1]), nan_max(acc[2], acc[3]))
                               : (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
    double sum = 0.0;
    for (int64_t b = 0; b < n_blocks; b++)
        sum = is_max ? nan_max(sum, block_sums[b]) : sum + block_sums[b];
    if (is_max || p == 1.0)
        return sum;
    return p == 2.0 ? sqrt(sum) : pow(sum, 1.0 / p);
}

static bool maximize_of(const dg_optim *opt)
{
    switch (opt->kind) {
    case DG_OPTIM_SGD: return opt->cfg.sgd.maximize;
    case DG_OPTIM_ADAM:
    case DG_OPTIM_ADAMW: return opt->cfg.adam.maximize;
    case DG_OPTIM_RMSPROP: return opt->cfg.rmsprop.maximize;
    case DG_OPTIM_ADAGRAD: return opt->cfg.adagrad.maximize;
    default: return false;
    }
}

/* The per-step scalars for learning rate `lr` at step count opt->steps (before the step). */
static void fill_scalars(const dg_optim *opt, double lr, struct dg__step_scalars *s)
{
    const double t = (double)opt->steps;
    s->neg_lr = (float)-lr;
    switch (opt->kind) {
    case DG_OPTIM_SGD: {
        const dg_sgd_config *c = &opt->cfg.sgd;
        s->weight_decay = (float)c->weight_decay;
        s->u.sgd.momentum = (float)c->momentum;
        s->u.sgd.one_minus_dampening = (float)(1.0 - c->dampening);
        s->u.sgd.nesterov = c->nesterov;
        s->u.sgd.first_step = opt->steps == 0;
        break;
    }
    case DG_OPTIM_ADAM:
    case DG_OPTIM_ADAMW: {
        const dg_adam_config *c = &opt->cfg.adam;
        const double bias_correction1 = 1.0 - pow(c->beta1, t + 1.0);
        const double bias_correction2 = 1.0 - pow(c->beta2, t + 1.0);
        s->weight_decay = (float)c->weight_decay;
        s->u.adam.beta1 = (float)c->beta1;
        s->u.adam.one_minus_beta1 = (float)(1.0 - c->beta1);
        s->u.adam.beta2 = (float)c->beta2;
        s->u.adam.one_minus_beta2 = (float)(1.0 - c->beta2);
        s->u.adam.neg_step_size = (float)-(lr / bias_correction1);
        s->u.adam.bias_correction2_sqrt = (float)sqrt(bias_correction2);
        s->u.adam.eps = (float)c->eps;
        s->u.adam.decay_factor = (float)(1.0 - lr * c->weight_decay);
        s->u.adam.amsgrad = c->amsgrad;
        s->u.adam.decoupled = opt->kind == DG_OPTIM_ADAMW;
        break;
    }
    case DG_OPTIM_RMSPROP: {
        const dg_rmsprop_config *c = &opt->cfg.rmsprop;
        s->weight_decay = (float)c->weight_decay;
        s->u.rmsprop.alpha = (float)c->alpha;
        s->u.rmsprop.one_minus_alpha = (float)(1.0 - c->alpha);
        s->u.rmsprop.eps = (float)c->eps;
        s->u.rmsprop.momentum = (float)c->momentum;
        s->u.rmsprop.centered = c->centered;
        break;
    }
    case DG_OPTIM_ADAGRAD: {
        const dg_adagrad_config *c = &opt->cfg.adagrad;
        s->weight_decay = (float)c->weight_decay;
        s->neg_lr = (float)-(lr / (1.0 + t * c->lr_decay));
        s->u.adagrad.eps = (float)c->eps;
        break;
    }
    default:
        break;
    }
}

dg_status dg__optim_apply(dg_optim *opt, const float *const *grads, int n_threads)
{
    const int64_t total = opt->offset[opt->n_params];
    const int threads = total < DG_OPTIM_SERIAL_ELEMENTS || n_threads < 1 ? 1 : n_threads;
    struct dg__step_scalars s;
    memset(&s, 0, sizeof s);
    s.clip_value = isinf(opt->clip_value) ? INFINITY : (float)opt->clip_value;

    double scale = 1.0;
    opt->last_grad_norm = NAN;
    if (!isinf(opt->clip_norm)) {
        const double norm = global_norm(opt, grads, s.clip_value, threads);
        const double coef = opt->clip_norm / (norm + 1e-6);
        opt->last_grad_norm = norm;
        if (coef < 1.0 || isnan(coef))
            scale = coef;
    }
    s.grad_scale = (float)(maximize_of(opt) ? -scale : scale);
    fill_scalars(opt, dg_schedule_lr(&opt->schedule, opt->base_lr, opt->steps), &s);

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int64_t n_team = omp_get_num_threads(), rank = omp_get_thread_num();
        const unsigned saved_fp_mode = flush_subnormals_begin();
        update_range(opt, &s, grads, total * rank / n_team, total * (rank + 1) / n_team);
        flush_subnormals_end(saved_fp_mode);
    }
    opt->steps++;
    return DG_OK;
}

dg_status dg_optim_step_raw(dg_optim *opt, const float *const *grads)
{
    dg_status status = check_usable(opt);
    if (status != DG_OK)
        return status;
    if (grads == NULL)
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "step: grads is NULL");
    for (int i = 0; i < opt->n_params; i++)
        if (grads[i] == NULL && opt->offset[i + 1] > opt->offset[i])
            return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "step: grads[%d] is NULL", i);
    return dg__optim_apply(opt, grads, opt->n_threads);
}
