/* Part of the dagrad public API; include dagrad.h rather than this file. */
#ifndef DAGRAD_TRAIN_H
#define DAGRAD_TRAIN_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A training loop for the common case: epochs of shuffled mini-batches over in-memory arrays,
 * an optimizer step per batch, metrics, evaluation on held-out data, progress output and an
 * optional CSV of per-epoch metrics. Users who want their own loop call dg_compile, dg_feed,
 * dg_run and dg_optim_step directly; this helper uses nothing else.
 */

/* The graph of a model, as the loop needs to see it. */
typedef struct dg_model {
    dg_graph *graph;
    dg_node *x;      /* float32 input whose leading axis is the batch */
    dg_node *y;      /* target input, leading axis the batch: int32 class labels [B], or
                        float32 targets [B, ...] */
    dg_node *loss;   /* float32 scalar: the mean loss of the batch */
    dg_node *output; /* predictions for accuracy and the metric, or NULL: with int32
                        labels [B], scores [B, C] (accuracy = argmax == label); with int32
                        sequence labels [B, T..], scores [B, T.., V] (token accuracy =
                        the fraction of tokens whose argmax is the label, labels outside
                        0..V-1 left out as the cross-entropy ignores them; and, unless
                        cfg.metric is set, the metric is the perplexity exp(mean loss),
                        shown as "ppl": meaningful when the loss is the mean token
                        cross-entropy in nats); int32 labels of other shapes get no
                        accuracy (it would mean nothing); with float32
                        targets, probabilities [B] or [B, 1] (accuracy = (p > 0.5) ==
                        (target > 0.5)), computed only when every training target is 0 or 1
                        (binary classification; a regression target gets no accuracy) */
} dg_model;

/* Examples: row i of x is x + i * (numel(x input) / batch); row i of y likewise. */
typedef struct dg_fit_data {
    const void *x; /* float or int32_t per the model's x input (token ids for a text model) */
    const void *y; /* int32_t or float per the model's y input */
    int64_t n;     /* number of examples */
} dg_fit_data;

/* A user metric over one batch: returns the SUM over the batch's examples (the loop divides
 * by the number of examples of the epoch). output: the model's output for the batch. */
typedef double (*dg_metric_fn)(const float *output, const void *targets, int64_t batch,
                               int64_t output_per_example, void *user);

/* Where a training run stands: what dg_fit needs to continue exactly where it stopped, and
 * what a checkpoint records of it. A zeroed struct is a fresh start.
 * The shuffle of epoch e is a permutation drawn from dg_rng_split(seed, e), the dropout
 * masks of a batch are a function of (seed, step) and the augmentation of example i in epoch e
 * of (seed, e, i), so (epoch, step, seed) is the whole position of every random stream. */
typedef struct dg_fit_state {
    int epoch;                  /* epochs completed */
    int64_t step;               /* batches trained so far (the dropout stream position) */
    uint64_t seed;              /* the seed the run was started with */
    double best_loss;           /* best monitored loss so far; meaningful when best_epoch > 0 */
    int best_epoch;             /* epoch of best_loss, 0 before the first evaluation */
    int epochs_without_improvement;
    bool stopped_early;         /* the last dg_fit call ended by early stopping */
} dg_fit_state;

/* Data augmentation of image batches in dg_fit (training batches only: validation and
 * dg_evaluate always see the data as given). Each example x (float32, channels * height *
 * width values, NCHW order) is, independently:
 *  - shifted by (dy, dx), each drawn uniformly from [-crop_padding, crop_padding], with zeros
 *    shifted in: the same as zero-padding it by crop_padding on every side and cropping a
 *    random height x width window back out (out[c][y][x] = in[c][y + dy][x + dx], 0 outside);
 *  - then mirrored left-right with probability flip_probability.
 * The random choices of example i in epoch e come from a generator derived from (fit seed,
 * e, i) alone (i: the example's index in the training data), so they do not depend on the
 * batch size, the shuffle or the thread count, and a resumed run (cfg.state or resume_path)
 * continues the same stream. Augmentation allocates nothing. A zeroed struct is off. */
typedef struct dg_augment {
    bool enable;
    int64_t channels, height, width;   /* must multiply to the model input's values per
                                          example, or dg_fit fails with DG_ERR_SHAPE */
    int crop_padding;                  /* >= 0; 0: no crop */
    double flip_probability;           /* in [0, 1]; 0: no flip */
} dg_augment;

/* Applies `aug` (its enable flag is ignored) to one image in place, as dg_fit does to
 * example `example` of epoch `epoch` (1-based) of a run with seed `seed`. DG_ERR_INVALID_ARG
 * for NULL arguments or bad settings (negative sizes or padding, a probability outside
 * [0, 1]). Exposed so that a hand-written loop can augment exactly like dg_fit. */
DG_API dg_status dg_augment_image(const dg_augment *aug, uint64_t seed, int64_t epoch,
                                  int64_t example, float *image);

/* Hooks that make dg_fit data-parallel: filled by dg_dist_fit() (dagrad_dist.h,
 * docs/distributed.md), rarely written by hand. Every rank runs dg_fit with the same model,
 * data and config; batch_size stays the GLOBAL batch: of each batch of examples [first,
 * first + b) of the epoch's shuffled order, rank r trains on [first + b*r/size, first +
 * b*(r+1)/size). Only rank 0 writes progress, CSV, plot and checkpoints; every rank resumes
 * from resume_path. Dropout keys are seeded per rank (rank 0 keeps cfg.seed). Each function
 * returns DG_OK or an error that ends the call on every rank. */
typedef struct dg_fit_parallel {
    int rank, size;
    void *user;
    /* once, after the training plan is compiled (before any run) */
    dg_status (*attach)(void *user, dg_plan *plan, dg_optim *opt);
    /* every step, after the plan's batch is set to this rank's share, before the run;
     * batch: the global number of examples in the step */
    dg_status (*step_begin)(void *user, dg_plan *plan, int64_t batch);
    /* after the run (no run when this rank's share is empty); local: the run's status. On
     * DG_OK, *grads receives the averaged gradients, one per optimizer parameter, for
     * dg_optim_step_raw */
    dg_status (*step_end)(void *user, dg_plan *plan, dg_status local,
                          const float *const **grads);
    /* sums values[0..n) over the ranks in rank order: the same result on every rank */
    dg_status (*sum)(void *user, double *values, int n);
    /* the status of the lowest rank whose `local` is not DG_OK, else DG_OK, on every rank */
    dg_status (*agree)(void *user, dg_status local);
    /* once, before the plan is freed */
    void (*detach)(void *user, dg_plan *plan);
} dg_fit_parallel;

typedef struct dg_fit_config {
    int epochs;              /* 1 */
    int64_t batch_size;      /* 32; the last partial batch of an epoch is trained on, too */
    uint64_t seed;           /* per-epoch shuffle and dropout masks */
    bool shuffle;            /* true */
    int verbose;             /* 1: progress (a live bar on a terminal, one line per epoch
                                otherwise); 0: silent */
    FILE *log;               /* where progress goes; stdout when NULL */
    const char *csv_path;    /* per-epoch metrics as CSV, or NULL; a file that cannot be
                                written makes dg_fit fail with DG_ERR_IO */
    const char *plot_path;   /* the training curves as an SVG picture (dg_plot_history),
                                rewritten after every epoch, or NULL; DG_ERR_IO as csv_path */
    bool no_accuracy;        /* never compute or show accuracy (a custom metric still runs);
                                see dg_model.output for when it is computed otherwise */
    dg_metric_fn metric;     /* optional user metric, reported as metric_name */
    void *metric_user;
    const char *metric_name;
    int64_t eval_batch_size; /* 0: batch_size */

    /* Resuming, checkpoints and early stopping (docs/checkpoints.md). The monitored loss is
     * the validation loss, or the training loss when there is no validation data. */
    dg_fit_state *state;     /* NULL: every call starts at epoch 1, step 0. Else in/out: the
                                call trains epochs state->epoch + 1 .. state->epoch + epochs,
                                continuing the shuffle and dropout streams, and leaves the
                                new position here; a second call with the same state goes on
                                where the first stopped */
    const char *resume_path; /* a checkpoint written by dg_fit (or with params, optimizer and
                                fit state): loaded into the model, the optimizer and the
                                position before training; the seed must be cfg.seed */
    const char *checkpoint_path; /* written (atomically) at the end, and every
                                checkpoint_every epochs when that is > 0: parameters,
                                optimizer state and position, enough to resume */
    int checkpoint_every;
    const char *best_path;   /* written when the monitored loss improves: the same content */
    int patience;            /* > 0: stop after this many epochs without improvement */
    double min_delta;        /* an improvement is a loss below best - min_delta (>= 0) */

    dg_augment augment;      /* image augmentation of training batches; off when zeroed */

    const dg_fit_parallel *parallel; /* NULL: one process; dg_dist_fit(): data-parallel */
} dg_fit_config;
#define DG_FIT_DEFAULTS ((dg_fit_config){.epochs = 1, .batch_size = 32, .shuffle = true, \
                                         .verbose = 1})

/* One epoch's figures. Values not measured are NaN (val_* without validation data,
 * accuracy without an output node, metric without a metric function). */
typedef struct dg_epoch_stats {
    int epoch;                 /* 1-based */
    double loss, accuracy, metric;
    double val_loss, val_accuracy, val_metric;
    double seconds;            /* training time of the epoch (evaluation excluded) */
    double samples_per_s;      /* training examples per second */
    double lr;                 /* the optimizer's lr for the next step (dg_optim_lr) at the
                                  end of the epoch; NaN from dg_evaluate */
} dg_epoch_stats;

/* Writes `n_epochs` epochs of `history` as an SVG picture at `path`: loss (train and
 * validation) beside accuracy, or beside the metric called `metric_name` (may be NULL) when
 * no accuracy was measured; NaN values are left out. DG_ERR_INVALID_ARG for NULL arguments or
 * n_epochs <= 0, DG_ERR_IO when the file cannot be written. dg_fit calls it for
 * cfg->plot_path; a hand-written loop can call it with its own history. */
DG_API dg_status dg_plot_history(const dg_epoch_stats *history, int n_epochs,
                                 const char *metric_name, const char *path);

/* Trains `model` with `opt` (made over the model's parameters and the gradient nodes from
 * dg_grad) for cfg->epochs epochs over `train`, evaluating on `val` (may be NULL) after each
 * epoch in evaluation mode (dropout off). history, when not NULL, receives cfg->epochs entries
 * (with early stopping, the entries of epochs not run have epoch == 0; with cfg->state or
 * resume_path, `epoch` is the run's epoch number, not the index in history). Resuming from a
 * state or a checkpoint gives bitwise the results of an uninterrupted run with the same seed
 * and thread count.
 * The same seed and thread count give bitwise-identical results. Returns DG_OK or the first
 * error (message on the graph, or from the optimizer). */
DG_API dg_status dg_fit(const dg_model *model, dg_optim *opt, const dg_fit_data *train,
                        const dg_fit_data *val, const dg_fit_config *cfg,
                        dg_epoch_stats *history);

/* Loss, accuracy and metric of `model` over `data` in evaluation mode. cfg may be NULL (batch
 * 256, no metric). */
DG_API dg_status dg_evaluate(const dg_model *model, const dg_fit_data *data,
                             const dg_fit_config *cfg, dg_epoch_stats *out);

#ifdef __cplusplus
}
#endif

#endif
