/* Part of the dagrad public API; include dagrad.h rather than this file.
 *
 * Optimizers: SGD, Adam, AdamW, RMSProp, Adagrad with the semantics of torch.optim (PyTorch
 * 1.13), learning-rate schedules, and gradient clipping by global norm or by value. See
 * docs/optimizers.md for the update formula of each one.
 *
 * One step updates every parameter in one fused OpenMP pass over all of them; optimizer state
 * is allocated when the optimizer is created, never during a step.
 *
 * Errors. An optimizer carries its own message (the graph's sticky error is not touched):
 *   - Constructors return NULL only when memory is exhausted. On a bad argument (NULL pointer,
 *     size mismatch, hyper-parameter out of range) they return an optimizer in the failed
 *     state: dg_optim_status() gives the status, dg_optim_error() the message, and every call
 *     that would do work returns that status and changes nothing. Free it as usual. So one
 *     check covers both cases:
 *         dg_optim *opt = dg_optim_new_adam(n, params, grads, &cfg);
 *         if (dg_optim_status(opt) != DG_OK) { puts(dg_optim_error(opt)); dg_optim_free(opt); }
 *   - Other calls return a dg_status; on failure they change nothing and dg_optim_error()
 *     gives the message ("adam: step: grads[1] is NULL") until the next failing call.
 */
#ifndef DAGRAD_OPTIM_H
#define DAGRAD_OPTIM_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dg_optim dg_optim; /* an optimizer: hyper-parameters, state, schedule, clipping */

typedef enum dg_optim_kind {
    DG_OPTIM_SGD = 0,
    DG_OPTIM_ADAM,
    DG_OPTIM_ADAMW,
    DG_OPTIM_RMSPROP,
    DG_OPTIM_ADAGRAD,
    DG_OPTIM_KIND_COUNT
} dg_optim_kind;

/* ----------------------------------------------------------------------------------------- */
/* Hyper-parameters. Defaults are PyTorch's; start from the DG_..._DEFAULTS initialiser.      */
/* Every value must be finite; the ranges are checked by the constructors.                    */
/* `maximize` ascends the objective instead of descending it (torch's maximize=True).          */
/* ----------------------------------------------------------------------------------------- */

/* torch.optim.SGD. lr >= 0 (PyTorch has no default lr; ours is 0.01), momentum >= 0,
 * weight_decay >= 0 (L2 added to the gradient); nesterov needs momentum > 0 and dampening 0. */
typedef struct dg_sgd_config {
    double lr;           /* 0.01 */
    double momentum;     /* 0 */
    double dampening;    /* 0 */
    double weight_decay; /* 0 */
    bool nesterov;       /* false */
    bool maximize;       /* false */
} dg_sgd_config;
#define DG_SGD_DEFAULTS ((dg_sgd_config){.lr = 0.01})

/* torch.optim.Adam and torch.optim.AdamW. lr >= 0, 0 <= beta1, beta2 < 1, eps >= 0,
 * weight_decay >= 0: Adam adds weight_decay * param to the gradient (L2); AdamW multiplies the
 * parameter by (1 - lr * weight_decay) before the update (decoupled). */
typedef struct dg_adam_config {
    double lr;           /* 1e-3 */
    double beta1;        /* 0.9 */
    double beta2;        /* 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* Adam 0, AdamW 1e-2 */
    bool amsgrad;        /* false */
    bool maximize;       /* false */
} dg_adam_config;
#define DG_ADAM_DEFAULTS                                                                      \
    ((dg_adam_config){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8})
#define DG_ADAMW_DEFAULTS                                                                     \
    ((dg_adam_config){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,                 \
                      .weight_decay = 1e-2})

/* torch.optim.RMSprop. lr >= 0, 0 <= alpha <= 1, eps >= 0, weight_decay >= 0, momentum >= 0. */
typedef struct dg_rmsprop_config {
    double lr;           /* 0.01 */
    double alpha;        /* 0.99 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0 */
    double momentum;     /* 0 */
    bool centered;       /* false */
    bool maximize;       /* false */
} dg_rmsprop_config;
#define DG_RMSPROP_DEFAULTS ((dg_rmsprop_config){.lr = 0.01, .alpha = 0.99, .eps = 1e-8})

/* torch.optim.Adagrad. Every value >= 0. */
typedef struct dg_adagrad_config {
    double lr;                        /* 0.01 */
    double lr_decay;                  /* 0 */
    double weight_decay;              /* 0 */
    double initial_accumulator_value; /* 0 */
    double eps;                       /* 1e-10 */
    bool maximize;                    /* false */
} dg_adagrad_config;
#define DG_ADAGRAD_DEFAULTS ((dg_adagrad_config){.lr = 0.01, .eps = 1e-10})

/* ----------------------------------------------------------------------------------------- */
/* Construction                                                                               */
/* ----------------------------------------------------------------------------------------- */

/* An optimizer over `n_params` parameters (nodes of kind DG_NODE_PARAM, float32, distinct, of
 * one graph) whose gradients are the nodes grads[i] (as returned by dg_grad; same element
 * count as params[i]), read from a plan by dg_optim_step(). The arrays are copied; the nodes
 * must outlive the optimizer. See the error contract at the top of this file. */
DG_API dg_optim *dg_optim_new_sgd(int n_params, dg_node *const *params, dg_node *const *grads,
                                  const dg_sgd_config *cfg);
DG_API dg_optim *dg_optim_new_adam(int n_params, dg_node *const *params,
                                   dg_node *const *grads, const dg_adam_config *cfg);
DG_API dg_optim *dg_optim_new_adamw(int n_params, dg_node *const *params,
                                    dg_node *const *grads, const dg_adam_config *cfg);
DG_API dg_optim *dg_optim_new_rmsprop(int n_params, dg_node *const *params,
                                      dg_node *const *grads, const dg_rmsprop_config *cfg);
DG_API dg_optim *dg_optim_new_adagrad(int n_params, dg_node *const *params,
                                      dg_node *const *grads, const dg_adagrad_config *cfg);

/* The same over raw arrays, without a graph: params[i] points to numel[i] >= 0 floats owned by
 * the caller, updated in place by each step and kept alive while the optimizer lives. Such an
 * optimizer steps with dg_optim_step_raw() only. */
DG_API dg_optim *dg_optim_new_sgd_raw(int n_params, float *const *params,
                                      const int64_t *numel, const dg_sgd_config *cfg);
DG_API dg_optim *dg_optim_new_adam_raw(int n_params, float *const *params,
                                       const int64_t *numel, const dg_adam_config *cfg);
DG_API dg_optim *dg_optim_new_adamw_raw(int n_params, float *const *params,
                                        const int64_t *numel, const dg_adam_config *cfg);
DG_API dg_optim *dg_optim_new_rmsprop_raw(int n_params, float *const *params,
                                          const int64_t *numel, const dg_rmsprop_config *cfg);
DG_API dg_optim *dg_optim_new_adagrad_raw(int n_params, float *const *params,
                                          const int64_t *numel, const dg_adagrad_config *cfg);

/* Frees the optimizer and its state (not the parameters). NULL is a no-op. */
DG_API void dg_optim_free(dg_optim *opt);

/* DG_OK for a usable optimizer; the construction error of a failed one; DG_ERR_NOMEM for NULL
 * (what a constructor returns when memory is exhausted). */
DG_API dg_status dg_optim_status(const dg_optim *opt);

/* The message of the most recent failing call on `opt` ("" when none; "out of memory" for
 * NULL). Valid until the next call on `opt`. */
DG_API const char *dg_optim_error(const dg_optim *opt);

/* ----------------------------------------------------------------------------------------- */
/* Stepping                                                                                   */
/* ----------------------------------------------------------------------------------------- */

/* One update of every parameter, reading gradient i as dg_data(plan, grads[i]) after a
 * dg_run(). The plan's gradient buffers are read, never written. Order within the step:
 * clip by value, clip by global norm, learning rate from the schedule, update, step count + 1.
 * DG_ERR_STATE for an optimizer made from raw arrays; DG_ERR_INVALID_ARG when the plan lacks a
 * gradient or holds it with another element count. On error nothing is changed. */
DG_API dg_status dg_optim_step(dg_optim *opt, dg_plan *plan);

/* The same with gradients from caller arrays: grads[i] holds as many floats as parameter i.
 * The arrays are read, never written. Works for every optimizer. */
DG_API dg_status dg_optim_step_raw(dg_optim *opt, const float *const *grads);

/* Number of steps taken (PyTorch's state["step"]); it drives bias correction, Adagrad's lr
 * decay, SGD's momentum initialisation (the buffer is set to the gradient when the count is
 * 0) and the schedule. Settable (>= 0) to resume from a checkpoint. */
DG_API int64_t dg_optim_step_count(const dg_optim *opt);
DG_API dg_status dg_optim_set_step_count(dg_optim *opt, int64_t steps);

/* Threads of the update pass; 0 (the default) means the DG_NUM_THREADS environment variable
 * when set, else, in dg_optim_step, the count the plan's runs use now (dg_plan_threads_used:
 * it follows the plan's adaptive count) and, in dg_optim_step_raw, OpenMP's default. Below
 * 32768 parameter elements in all, a step runs on one thread whatever this says; more than
 * 1024 threads is DG_ERR_INVALID_ARG (the graph's cap). Results are bitwise identical for a
 * given count;
 * the gradient norm does not depend on the count at all. */
DG_API dg_status dg_optim_set_threads(dg_optim *opt, int n_threads);
DG_API int dg_optim_threads(const dg_optim *opt);

/* ----------------------------------------------------------------------------------------- */
/* Inspection: for checkpoints and tests                                                      */
/* ----------------------------------------------------------------------------------------- */

DG_API dg_optim_kind dg_optim_kind_of(const dg_optim *opt);
DG_API const char *dg_optim_name(const dg_optim *opt); /* "sgd", "adam", ...; "" for NULL */
DG_API int dg_optim_param_count(const dg_optim *opt);

/* The parameter node and gradient node `param_index` an optimizer was made with (so that a
 * training loop can compile the gradients into its plan); NULL for an optimizer made from raw
 * arrays, a failed one, or an index out of range. */
DG_API dg_node *dg_optim_param_node(const dg_optim *opt, int param_index);
DG_API dg_node *dg_optim_grad_node(const dg_optim *opt, int param_index);

/* State slots per parameter, named as in PyTorch's state_dict:
 *   sgd      "momentum_buffer" (only when momentum != 0)
 *   adam(w)  "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (only with amsgrad)
 *   rmsprop  "square_avg", "momentum_buffer" (momentum > 0), "grad_avg" (centered)
 *   adagrad  "sum"
 * dg_optim_state_name() returns NULL for a slot out of range. */
DG_API int dg_optim_state_count(const dg_optim *opt);
DG_API const char *dg_optim_state_name(const dg_optim *opt, int slot);

/* The state slot `slot_name` of parameter `param_index`: numel floats (stored in *numel when
 * numel is not NULL), owned by the optimizer, writable between steps (to restore a
 * checkpoint). NULL with a message for a bad index or name. */
DG_API float *dg_optim_state(dg_optim *opt, int param_index, const char *slot_name,
                             int64_t *numel);

/* ----------------------------------------------------------------------------------------- */
/* Learning rate and schedules                                                                */
/* ----------------------------------------------------------------------------------------- */

typedef enum dg_schedule_kind {
    DG_SCHEDULE_CONSTANT = 0, /* lr(t) = base_lr */
    DG_SCHEDULE_STEP,         /* lr(t) = base_lr * gamma^floor(t / step_size)   (StepLR) */
    DG_SCHEDULE_EXPONENTIAL,  /* lr(t) = base_lr * gamma^t                       (ExponentialLR) */
    DG_SCHEDULE_COSINE,       /* linear warm-up, then cosine annealing to min_lr, see below */
    DG_SCHEDULE_KIND_COUNT
} dg_schedule_kind;

/* A learning-rate schedule; t is the number of steps taken before the one that uses lr(t), so
 * the first step uses lr(0) (as PyTorch's "optimizer.step(); scheduler.step()" loop).
 * COSINE, with W = warmup_steps >= 0, T = total_steps > W, 0 <= min_lr <= base_lr:
 *   t <  W:      lr = base_lr * (t + 1) / W
 *   W <= t < T:  lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2
 *   t >= T:      lr = min_lr
 * STEP needs step_size > 0; STEP and EXPONENTIAL need gamma >= 0. Unused fields are ignored. */
typedef struct dg_schedule {
    dg_schedule_kind kind;
    int64_t step_size;
    double gamma;
    int64_t warmup_steps;
    int64_t total_steps;
    double min_lr;
} dg_schedule;

DG_API dg_schedule dg_schedule_constant(void);
DG_API dg_schedule dg_schedule_step(int64_t step_size, double gamma);
DG_API dg_schedule dg_schedule_exponential(double gamma);
DG_API dg_schedule dg_schedule_cosine(int64_t warmup_steps, int64_t total_steps, double min_lr);

/* lr(step) of schedule `s` for `base_lr`; NAN when s is NULL or invalid, base_lr is negative
 * or not finite, or step < 0. */
DG_API double dg_schedule_lr(const dg_schedule *s, double base_lr, int64_t step);

/* Makes the optimizer follow `s` (copied; NULL means constant) from its configured lr. */
DG_API dg_status dg_optim_set_schedule(dg_optim *opt, const dg_schedule *s);

/* The configured (base) lr, which the schedule scales; setting it keeps the schedule. */
DG_API double dg_optim_base_lr(const dg_optim *opt);
DG_API dg_status dg_optim_set_base_lr(dg_optim *opt, double lr);
/* The lr the next step will use: the schedule at the current step count (before Adagrad's
 * lr_decay). NAN for NULL. */
DG_API double dg_optim_lr(const dg_optim *opt);

/* ----------------------------------------------------------------------------------------- */
/* Gradient clipping, applied to the gradients the update sees (the buffers are not written)  */
/* ----------------------------------------------------------------------------------------- */

/* Like torch.nn.utils.clip_grad_norm_ before each step: total = (sum over every element of
 * every gradient of |g|^p)^(1/p) (max |g| for p = INFINITY); coef = max_norm / (total + 1e-6);
 * the gradients are multiplied by coef when coef < 1. max_norm >= 0 (INFINITY turns norm
 * clipping off, the default); norm_type p > 0 or INFINITY. The sum runs in double over fixed
 * blocks in a fixed order, so `total` does not depend on the thread count. A NaN or infinite
 * total is not an error (as PyTorch's default): the update then spreads it. */
DG_API dg_status dg_optim_set_clip_norm(dg_optim *opt, double max_norm, double norm_type);

/* Like torch.nn.utils.clip_grad_value_: each gradient element is clamped to
 * [-clip_value, clip_value] (NaN passes through). clip_value >= 0; INFINITY turns it off (the
 * default). With both clippings on, values are clamped first and the norm is of the clamped
 * gradients. */
DG_API dg_status dg_optim_set_clip_value(dg_optim *opt, double clip_value);

/* The total norm computed by the last step (after value clipping, before norm clipping: what
 * clip_grad_norm_ returns); NAN when norm clipping was off or no step has run. */
DG_API double dg_optim_last_grad_norm(const dg_optim *opt);

#ifdef __cplusplus
}
#endif

#endif
