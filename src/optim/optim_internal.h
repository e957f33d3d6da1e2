/*
 * Optimizer internals shared by the files of src/optim/.
 *
 * Layout. The parameters are segments of one flattened index space: parameter i covers
 * [offset[i], offset[i+1]). Each state slot is one array over that whole space, so the state
 * of parameter i in slot s starts at slot[s] + offset[i]. A step splits the space into one
 * contiguous range per thread; a thread walks the segments its range meets and calls the
 * kind's update kernel on each piece (update_*.c). Kernels are elementwise, so the result of
 * an element does not depend on where the ranges are cut.
 */
#ifndef DG_OPTIM_INTERNAL_H
#define DG_OPTIM_INTERNAL_H

#include "dagrad.h"

#include <stdint.h>

/* Below this many parameter elements in all, a step runs on one thread. */
#define DG_OPTIM_SERIAL_ELEMENTS 32768
#define DG__OPTIM_MAX_SLOTS 3
/* Elements per block of the gradient-norm reduction: fixed, so the sum's order is fixed. */
#define DG__OPTIM_NORM_BLOCK 4096
#define DG__OPTIM_ERROR_LEN 256

/* Per-step scalars handed to the kernels, already rounded to float where PyTorch applies them
 * as float scalars. Every kernel first forms the gradient it sees:
 *   g = clamp(grad, -clip_value, clip_value) * grad_scale
 * where grad_scale folds the norm-clipping coefficient and the sign of `maximize`. */
struct dg__step_scalars {
    float clip_value; /* +inf when value clipping is off */
    float grad_scale; /* clip coefficient (1 when not clipping), negated for maximize */
    float neg_lr;     /* -lr (SGD, RMSProp), -lr / (1 + t * lr_decay) (Adagrad) */
    float weight_decay;
    union {
        struct {
            float momentum, one_minus_dampening;
            int nesterov, first_step; /* first_step: buffer := gradient */
        } sgd;
        struct {
            float beta1, one_minus_beta1, beta2, one_minus_beta2;
            float neg_step_size;       /* -lr / (1 - beta1^t) */
            float bias_correction2_sqrt; /* sqrt(1 - beta2^t) */
            float eps;
            float decay_factor;        /* AdamW: 1 - lr * weight_decay; Adam: unused */
            int amsgrad, decoupled;
        } adam;
        struct {
            float alpha, one_minus_alpha, eps, momentum;
            int centered;
        } rmsprop;
        struct {
            float eps;
        } adagrad;
    } u;
};

/* An update kernel: n elements of one parameter. state[s] points at slot s of the same
 * elements (NULL for slots the configuration lacks). The pointers do not alias. */
typedef void (*dg__update_fn)(const struct dg__step_scalars *s, int64_t n, float *param,
                              const float *grad, float *const *state);

/* The update kernels are plain C loops; on x86-64 each is also compiled for AVX2 and
 * AVX-512 (GCC/Clang target_clones: the loader picks the widest the CPU runs), since the
 * default build targets baseline x86-64, whose 4-wide SSE made Adam the largest cost of a
 * small-batch training step. */
/* Not with clang before 16: clang 14 emits only the resolver ("f.ifunc"), no symbol "f". */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DG__WIDE_KERNEL __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define DG__WIDE_KERNEL
#endif

void dg__sgd_update(const struct dg__step_scalars *s, int64_t n, float *param,
                    const float *grad, float *const *state);
void dg__adam_update(const struct dg__step_scalars *s, int64_t n, float *param,
                     const float *grad, float *const *state);
void dg__rmsprop_update(const struct dg__step_scalars *s, int64_t n, float *param,
                        const float *grad, float *const *state);
void dg__adagrad_update(const struct dg__step_scalars *s, int64_t n, float *param,
                        const float *grad, float *const *state);

/* Clamps like clip_grad_value_; NaN passes through. */
static inline float dg__clamp_grad(float g, float limit)
{
    return g < -limit ? -limit : (g > limit ? limit : g);
}

/* Sum over n elements of |clamp(g)|^p (p == 2, 1 or general), or max |clamp(g)| for p ==
 * INFINITY, in double, in index order with 4 interleaved partial sums (lane = index % 4
 * counted from `first_index`, the element's position in the flattened space), so that the
 * result depends only on the elements and their global positions. `acc` holds the 4 partials
 * and is updated. */
void dg__norm_accumulate(double acc[4], int64_t first_index, const float *grad, int64_t n,
                         float clip_value, double norm_type);

/* Why schedule `s` cannot scale `base_lr` ("gamma must be ..."), or NULL when it can. */
const char *dg__schedule_problem(const dg_schedule *s, double base_lr);

struct dg_optim {
    dg_optim_kind kind;
    dg_status status; /* construction status: DG_OK or permanent failure */
    char error[DG__OPTIM_ERROR_LEN];

    union {
        dg_sgd_config sgd;
        dg_adam_config adam;
        dg_rmsprop_config rmsprop;
        dg_adagrad_config adagrad;
    } cfg;
    double base_lr;

    int n_params;
    float **param_data;       /* [n_params] */
    dg_node **param_nodes;    /* [n_params], NULL for a raw optimizer */
    dg_node **grad_nodes;     /* [n_params], NULL for a raw optimizer */
    const float **grad_ptrs;  /* [n_params] scratch filled by dg_optim_step */
    int64_t *offset;          /* [n_params + 1] prefix sums of element counts */

    int n_slots;
    const char *slot_names[DG__OPTIM_MAX_SLOTS];
    float *slot[DG__OPTIM_MAX_SLOTS]; /* each offset[n_params] floats */

    int64_t steps;
    dg_schedule schedule;
    double clip_norm;  /* INFINITY: off */
    double norm_type;
    double clip_value; /* INFINITY: off */
    double last_grad_norm;
    double *block_sums; /* [n_blocks] scratch of the norm reduction */
    int64_t n_blocks;

    int n_threads_setting; /* 0 = default */
    int n_threads;         /* resolved */
};

/* Records a message on opt (printf-style, prefixed with the optimizer's name) and returns
 * status. */
dg_status dg__optim_fail(dg_optim *opt, dg_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new optimizer of `kind` with configuration `cfg` (a pointer to the kind's config struct),
 * no parameters yet. NULL only on out-of-memory; a bad kind or config leaves it failed. */
dg_optim *dg__optim_alloc(dg_optim_kind kind, const void *cfg);

/* Registers the parameters (param_data[i]: numel[i] floats) and allocates all state. On a bad
 * argument the optimizer becomes failed; returns its status. */
dg_status dg__optim_bind(dg_optim *opt, int n_params, float *const *param_data,
                         const int64_t *numel);

/* alloc + bind: what the _raw constructors do. */
dg_optim *dg__optim_create(dg_optim_kind kind, const void *cfg, int n_params,
                           float *const *param_data, const int64_t *numel);

/* The update of every parameter with the gradients grads[i] (already checked) on `threads`
 * threads (fewer for small models); the core of dg_optim_step and dg_optim_step_raw. */
dg_status dg__optim_apply(dg_optim *opt, const float *const *grads, int threads);

/* Whether the optimizer's thread count is the default (no dg_optim_set_threads count and no
 * DG_NUM_THREADS), which dg_optim_step replaces by the plan's count in use. */
bool dg__optim_threads_default(const dg_optim *opt);

#endif
