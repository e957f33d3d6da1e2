/*
 * The training loop: per-epoch seeded shuffle, mini-batches gathered into the plan's inputs,
 * a run and an optimizer step per batch, the last partial batch trained on with the plan's
 * batch set to its size, evaluation in evaluation mode, progress and CSV output.
 */
#include "dagrad.h"
#include "alloc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "augment.h"
#include "progress.h"

/* A batch buffer above this many values (4 TiB of floats) is refused before malloc. */
#define DG_MAX_BATCH_VALUES ((int64_t)1 << 40)

struct loop {
    const dg_model *model;
    const dg_fit_config *cfg;
    int64_t x_row, y_row;     /* values per example */
    size_t y_size;            /* bytes per target value */
    bool int_labels;
    bool accuracy;            /* accuracy is computed (see dg_model.output) */
    bool tokens;              /* sequence labels [B, T..] against scores [B, T.., V]: token
                                 accuracy, and perplexity as the metric */
    bool perplexity;          /* metric = exp(mean loss) (tokens without a user metric) */
    int64_t n_classes;        /* V, the scores per token (tokens only) */

    int64_t out_row;          /* output values per example (0 without output) */
    char *x_batch;            /* float32 or int32 values (4 bytes each) */
    void *y_batch;
};

double dg__now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t per_example(const dg_node *n)
{
    int64_t batch = dg_node_dim(n, 0);
    return batch > 0 ? dg_node_numel(n) / batch : 0;
}

/* Index of the largest of n scores (the first on ties). */
static int64_t argmax(const float *row, int64_t n)
{
    int64_t best = 0;
    for (int64_t k = 1; k < n; k++)
        if (row[k] > row[best])
            best = k;
    return best;
}

/* Correct predictions in a batch (see dg_model.output); *counted receives how many
 * predictions were judged (examples, or tokens whose label is in 0 .. V-1). */
static int64_t count_correct(const struct loop *lp, const float *out, const void *targets,
                             int64_t batch, int64_t *counted)
{
    int64_t correct = 0;
    if (lp->tokens) {
        const int32_t *labels = targets;
        int64_t judged = 0;
        for (int64_t i = 0; i < batch * lp->y_row; i++) {
            if (labels[i] < 0 || labels[i] >= lp->n_classes)
                continue; /* ignored, as the cross-entropy ignores it */
            correct += argmax(out + i * lp->n_classes, lp->n_classes) == labels[i];
            judged++;
        }
        *counted = judged;
        return correct;
    }
    *counted = batch;
    for (int64_t i = 0; i < batch; i++) {
        const float *row = out + i * lp->out_row;
        if (lp->int_labels) {
            int64_t best = 0;
            for (int64_t k = 1; k < lp->out_row; k++)
                if (row[k] > row[best])
                    best = k;
            correct += best == ((const int32_t *)targets)[i];
        } else {
            const float *t = (const float *)targets + i * lp->y_row;
            correct += (row[0] > 0.5f) == (t[0] > 0.5f);
        }
    }
    return correct;
}

static void gather(const struct loop *lp, const dg_fit_data *data, const int64_t *order,
                   int64_t start, int64_t batch)
{
    for (int64_t i = 0; i < batch; i++) {
        int64_t src = order ? order[start + i] : start + i;
        memcpy(lp->x_batch + (size_t)(i * lp->x_row) * 4,
               (const char *)data->x + (size_t)(src * lp->x_row) * 4, (size_t)lp->x_row * 4);
        memcpy((char *)lp->y_batch + (size_t)(i * lp->y_row) * lp->y_size,
               (const char *)data->y + (size_t)(src * lp->y_row) * lp->y_size,
               (size_t)lp->y_row * lp->y_size);
    }
}

/* Feeds one batch (resizing the plan when the batch size changes) and runs it. */
static dg_status run_batch(const struct loop *lp, dg_plan *plan, int64_t batch)
{
    dg_status st = DG_OK;
    if (dg_plan_dim(plan, lp->model->x, 0) != batch)
        st = dg_plan_set_batch(plan, batch);
    if (st == DG_OK)
        st = dg_feed(plan, lp->model->x, lp->x_batch);
    if (st == DG_OK)
        st = dg_feed(plan, lp->model->y, lp->y_batch);
    if (st == DG_OK)
        st = dg_run(plan);
    /* A loss that follows the batch (shape [B]) passes the build-time check at batch 1. */
    if (st == DG_OK && dg_plan_numel(plan, lp->model->loss) != 1) {
        dg_graph_set_error(lp->model->graph, DG_ERR_SHAPE, "fit: model.loss must be a float32 "
                           "scalar (the batch's mean loss), it has %lld values at batch %lld",
                           (long long)dg_plan_numel(plan, lp->model->loss), (long long)batch);
        st = DG_ERR_SHAPE;
    }
    return st;
}

struct sums {
    double loss, metric;
    int64_t correct, judged, seen;
};

static void add_batch(const struct loop *lp, dg_plan *plan, int64_t batch, struct sums *s)
{
    s->loss += (double)dg_data(plan, lp->model->loss)[0] * (double)batch;
    s->seen += batch;
    if (lp->model->output == NULL)
        return;
    const float *out = dg_data(plan, lp->model->output);
    if (lp->accuracy) {
        int64_t judged;
        s->correct += count_correct(lp, out, lp->y_batch, batch, &judged);
        s->judged += judged;
    }
    if (lp->cfg->metric)
        s->metric += lp->cfg->metric(out, lp->y_batch, batch, lp->out_row, lp->cfg->metric_user);
}

static void finish(const struct loop *lp, const struct sums *s, double *loss, double *accuracy,
                   double *metric)
{
    double n = s->seen > 0 ? (double)s->seen : NAN;
    *loss = s->loss / n;
    *accuracy = lp->accuracy && s->judged > 0 ? (double)s->correct / (double)s->judged : NAN;
    *metric = (lp->model->output && lp->cfg->metric) ? s->metric / n
              : lp->perplexity                       ? exp(*loss)
                                                     : NAN;
}

/* ---- Data-parallel hooks (cfg->parallel, filled by src/dist; docs/distributed.md) ---- */

/* Rank r's share of `n` items: [n*r/size, n*(r+1)/size). */
static int64_t share_begin(const dg_fit_parallel *par, int64_t n, int rank)
{
    return n * rank / par->size;
}

/* Sums the figures of every rank (in rank order: the same on every rank). */
static dg_status reduce_sums(const dg_fit_parallel *par, struct sums *s)
{
    if (par == NULL)
        return DG_OK;
    double v[4] = {s->loss, s->metric, (double)s->correct, (double)s->seen};
    dg_status st = par->sum(par->user, v, 4);
    *s = (struct sums){.loss = v[0], .metric = v[1], .correct = (int64_t)v[2],
                       .seen = (int64_t)v[3]};
    return st;
}

/* Every rank's status agreed (the lowest failing rank's); a rank that did not fail itself
 * gets a message naming the status. */
static dg_status agree(const dg_fit_parallel *par, dg_graph *g, dg_status local)
{
    if (par == NULL)
        return local;
    dg_status all = par->agree(par->user, local);
    if (all != DG_OK && local == DG_OK)
        dg_graph_set_error(g, all, "fit: another rank failed (%s)", dg_status_str(all));
    return all;
}

/* Evaluates `data`; with cfg->parallel each rank takes its share and the sums are reduced. */
static dg_status evaluate_with(const struct loop *lp, dg_plan *plan, const dg_fit_data *all,
                               int64_t batch_size, double *loss, double *accuracy,
                               double *metric)
{
    const dg_fit_parallel *par = lp->cfg->parallel;
    dg_fit_data shard = *all;
    const dg_fit_data *data = all;
    if (par != NULL) {
        int64_t lo = share_begin(par, all->n, par->rank);
        int64_t hi = share_begin(par, all->n, par->rank + 1);
        shard.x = all->x + lo * lp->x_row;
        shard.y = (const char *)all->y + (size_t)(lo * lp->y_row) * lp->y_size;
        shard.n = hi - lo;
        data = &shard;
    }
    struct sums s = {0};
    dg_status st = dg_dropout_feed_key(plan, lp->cfg->seed, 0, false);
    for (int64_t start = 0; st == DG_OK && start < data->n; start += batch_size) {
        int64_t batch = data->n - start < batch_size ? data->n - start : batch_size;
        gather(lp, data, NULL, start, batch);
        st = run_batch(lp, plan, batch);
        if (st == DG_OK)
            add_batch(lp, plan, batch, &s);
    }
    st = agree(par, dg_plan_graph(plan), st);
    if (st == DG_OK)
        st = reduce_sums(par, &s);
    finish(lp, &s, loss, accuracy, metric);
    return st;
}

/* "[3,4]": a node's build-time shape. */
static const char *shape_text(const dg_node *n, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < dg_node_ndim(n) && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
                                 (long long)dg_node_dim(n, i));
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

/* Checks the model and the data it will run on; `what` names the caller in messages. */
static dg_status check_model(const dg_model *m, const dg_fit_data *data, const char *what)
{
    if (m == NULL || m->graph == NULL)
        return DG_ERR_INVALID_ARG;
    dg_graph *g = m->graph;
    const char *missing = m->x == NULL ? "x" : m->y == NULL ? "y" : m->loss == NULL ? "loss"
                                                                                  : NULL;
    if (missing) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "%s: model.%s is NULL", what, missing);
        return DG_ERR_INVALID_ARG;
    }
    if (dg_node_kind_of(m->x) != DG_NODE_INPUT || dg_node_kind_of(m->y) != DG_NODE_INPUT ||
        dg_node_ndim(m->x) < 1 || dg_node_ndim(m->y) < 1) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "%s: model.x and model.y must be inputs "
                           "with a leading batch axis", what);
        return DG_ERR_INVALID_ARG;
    }
    if (dg_node_dtype(m->loss) != DG_F32 || dg_node_numel(m->loss) != 1) {
        dg_graph_set_error(g, DG_ERR_SHAPE, "%s: model.loss must be a float32 scalar (the "
                           "batch's mean loss), got %s %s", what,
                           dg_node_dtype(m->loss) == DG_F32 ? "float32" : "int32",
                           shape_text(m->loss, (char[96]){0}, 96));
        return DG_ERR_SHAPE;
    }
    if (data == NULL || data->x == NULL || data->y == NULL || data->n <= 0) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "%s: data is NULL or empty (n = %lld)", what,
                           data ? (long long)data->n : 0LL);
        return DG_ERR_INVALID_ARG;
    }
    return DG_OK;
}

static dg_status loop_init(struct loop *lp, const dg_model *m, const dg_fit_config *cfg,
                           int64_t max_batch)
{
    memset(lp, 0, sizeof *lp);
    lp->model = m;
    lp->cfg = cfg;
    lp->x_row = per_example(m->x);
    lp->y_row = per_example(m->y);
    lp->int_labels = dg_node_dtype(m->y) == DG_I32;
    lp->y_size = 4;
    lp->out_row = m->output ? per_example(m->output) : 0;
    int64_t x_values, y_values;
    bool fits = !__builtin_mul_overflow(max_batch, lp->x_row, &x_values) &&
                !__builtin_mul_overflow(max_batch, lp->y_row, &y_values) &&
                x_values <= DG_MAX_BATCH_VALUES && y_values <= DG_MAX_BATCH_VALUES;
    if (fits) {
        lp->x_batch = dg__malloc((size_t)x_values * 4);
        lp->y_batch = dg__malloc((size_t)y_values * lp->y_size);
    }
    if (!fits || lp->x_batch == NULL || lp->y_batch == NULL) {
        dg_graph_set_error(m->graph, DG_ERR_NOMEM, "fit: out of memory for a batch of %lld",
                           (long long)max_batch);
        return DG_ERR_NOMEM;
    }
    return DG_OK;
}

/* Sequence labels: int32 y [B, T..] (2 or more axes) and an output [B, T.., V] whose leading
 * axes are y's. Sets the token fields of the loop. */
static bool sequence_labels(struct loop *lp, const dg_model *m)
{
    int ny = dg_node_ndim(m->y);
    if (m->output == NULL || dg_node_dtype(m->y) != DG_I32 || ny < 2 ||
        dg_node_ndim(m->output) != ny + 1 || dg_node_dtype(m->output) != DG_F32)
        return false;
    for (int a = 1; a < ny; a++)
        if (dg_node_dim(m->output, a) != dg_node_dim(m->y, a))
            return false;
    lp->n_classes = dg_node_dim(m->output, ny);
    return lp->n_classes > 0;
}

static bool wants_accuracy(const struct loop *lp, const dg_model *m, const dg_fit_data *data,
                           const dg_fit_config *cfg)
{
    if (m->output == NULL || cfg->no_accuracy)
        return false;
    if (dg_node_dtype(m->y) == DG_I32)
        return lp->tokens || (dg_node_ndim(m->y) == 1 && dg_node_ndim(m->output) == 2);
    int64_t values = data->n * per_example(m->y);
    const float *t = data->y;
    for (int64_t i = 0; i < values; i++)
        if (t[i] != 0.0f && t[i] != 1.0f)
            return false;
    return true;
}

/* Which metrics mean something for this model (and are therefore shown): accuracy for class
 * labels [B] against scores [B, C]; token accuracy and perplexity for labels [B, T..] against
 * scores [B, T.., V]; for float targets, accuracy only when every one is 0 or 1 (binary
 * classification). Int32 labels of any other shape get no accuracy (it would be a wrong
 * number). Never accuracy with cfg->no_accuracy or without an output; perplexity only when no
 * user metric takes the metric's place. */
static void choose_metrics(struct loop *lp, const dg_model *m, const dg_fit_data *data,
                           const dg_fit_config *cfg)
{
    lp->tokens = sequence_labels(lp, m);
    lp->perplexity = lp->tokens && cfg->metric == NULL;
    lp->accuracy = wants_accuracy(lp, m, data, cfg);
}

static void loop_free(struct loop *lp)
{
    dg__free(lp->x_batch);
    dg__free(lp->y_batch);
}

dg_status dg_evaluate(const dg_model *model, const dg_fit_data *data, const dg_fit_config *cfg,
                      dg_epoch_stats *out)
{
    dg_status st = check_model(model, data, "evaluate");
    if (st != DG_OK)
        return st;
    dg_fit_config defaults = DG_FIT_DEFAULTS;
    defaults.batch_size = 256;
    if (cfg == NULL)
        cfg = &defaults;
    int64_t batch = cfg->eval_batch_size > 0 ? cfg->eval_batch_size : cfg->batch_size;
    if (batch > data->n)
        batch = data->n;
    if (batch <= 0) {
        dg_graph_set_error(model->graph, DG_ERR_INVALID_ARG, "evaluate: batch size %lld",
                           (long long)batch);
        return DG_ERR_INVALID_ARG;
    }
    dg_node *outs[2] = {model->loss, model->output};
    dg_plan *plan = dg_compile(model->graph, model->output ? 2 : 1, outs);
    if (plan == NULL)
        return dg_graph_status(model->graph);
    struct loop lp;
    st = loop_init(&lp, model, cfg, batch);
    dg_epoch_stats stats = {.epoch = 0, .val_loss = NAN, .val_accuracy = NAN,
                            .val_metric = NAN, .lr = NAN};
    if (st == DG_OK)
        choose_metrics(&lp, model, data, cfg);
    if (st == DG_OK)
        st = evaluate_with(&lp, plan, data, batch, &stats.loss, &stats.accuracy, &stats.metric);
    if (st == DG_OK && out != NULL)
        *out = stats;
    loop_free(&lp);
    dg_plan_free(plan);
    return st;
}

static dg_status check_config(dg_graph *g, const dg_fit_config *cfg)
{
    if (cfg->epochs < 0 || cfg->batch_size <= 0 || cfg->eval_batch_size < 0) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "fit: epochs %d must be >= 0 and batch "
                           "sizes %lld, %lld positive", cfg->epochs,
                           (long long)cfg->batch_size, (long long)cfg->eval_batch_size);
        return DG_ERR_INVALID_ARG;
    }
    if (cfg->checkpoint_every < 0 || cfg->patience < 0 || !(cfg->min_delta >= 0) ||
        !isfinite(cfg->min_delta)) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "fit: checkpoint_every %d and patience %d "
                           "must be >= 0, min_delta %g finite and >= 0", cfg->checkpoint_every,
                           cfg->patience, cfg->min_delta);
        return DG_ERR_INVALID_ARG;
    }
    return DG_OK;
}

/* The position to start from: cfg->state, else a fresh start; then resume_path when set.
 * A run continued with another seed would not be the same run: refused. */
static dg_status start_state(const dg_model *model, dg_optim *opt, const dg_fit_config *cfg,
                             dg_fit_state *run)
{
    if (cfg->state != NULL)
        *run = *cfg->state;
    else
        memset(run, 0, sizeof *run);
    if (cfg->resume_path != NULL) {
        dg_load_options lo = DG_LOAD_DEFAULTS;
        lo.optimizer = opt;
        lo.fit = run;
        dg_status st = dg_load_checkpoint(model->graph, cfg->resume_path, &lo);
        if (st != DG_OK)
            return st;
    }
    bool fresh = run->epoch == 0 && run->step == 0;
    if (fresh) {
        run->seed = cfg->seed;
    } else if (run->seed != cfg->seed) {
        dg_graph_set_error(model->graph, DG_ERR_INVALID_ARG, "fit: resuming a run made with "
                           "seed %llu, but cfg.seed is %llu (the shuffle and dropout streams "
                           "would differ)", (unsigned long long)run->seed,
                           (unsigned long long)cfg->seed);
        return DG_ERR_INVALID_ARG;
    }
    run->stopped_early = false;
    return DG_OK;
}

static dg_status save_checkpoint(const dg_model *model, dg_optim *opt, const dg_fit_state *run,
                                 const char *path)
{
    dg_save_options so = DG_SAVE_DEFAULTS;
    so.optimizer = opt;
    so.fit = run;
    return dg_save_checkpoint(model->graph, path, &so);
}

/* After an epoch: improvement bookkeeping, checkpoints; *stop when patience runs out. */
static dg_status after_epoch(const dg_model *model, dg_optim *opt, const dg_fit_config *cfg,
                             dg_fit_state *run, double monitored, bool last, bool *stop)
{
    dg_status st = DG_OK;
    bool improved = !isnan(monitored) &&
                    (run->best_epoch == 0 || monitored < run->best_loss - cfg->min_delta);
    if (improved) {
        run->best_loss = monitored;
        run->best_epoch = run->epoch;
        run->epochs_without_improvement = 0;
    } else {
        run->epochs_without_improvement++;
    }
    *stop = cfg->patience > 0 && run->epochs_without_improvement >= cfg->patience;
    run->stopped_early = *stop;
    bool writer = cfg->parallel == NULL || cfg->parallel->rank == 0;
    if (writer && improved && cfg->best_path != NULL)
        st = save_checkpoint(model, opt, run, cfg->best_path);
    bool due = last || *stop || (cfg->checkpoint_every > 0 &&
                                 run->epoch % cfg->checkpoint_every == 0);
    if (writer && st == DG_OK && due && cfg->checkpoint_path != NULL)
        st = save_checkpoint(model, opt, run, cfg->checkpoint_path);
    return agree(cfg->parallel, model->graph, st);
}

/* The training plan computes the loss, the output and every gradient the optimizer reads. */
static dg_plan *compile_training(const dg_model *model, dg_optim *opt)
{
    int n_params = dg_optim_param_count(opt);
    dg_node **outs = dg__malloc((size_t)(n_params + 2) * sizeof *outs);
    if (outs == NULL) {
        dg_graph_set_error(model->graph, DG_ERR_NOMEM, "fit: out of memory");
        return NULL;
    }
    int n = 0;
    outs[n++] = model->loss;
    if (model->output)
        outs[n++] = model->output;
    for (int i = 0; i < n_params; i++)
        outs[n++] = dg_optim_grad_node(opt, i);
    dg_plan *plan = dg_compile(model->graph, n, outs);
    dg__free(outs);
    return plan;
}

/* One data-parallel step: this rank's share of the batch [first, first + batch), the
 * gradients averaged over the ranks by the hooks, the optimizer step on the average. */
static dg_status parallel_step(const struct loop *lp, dg_plan *plan, dg_optim *opt,
                               const dg_fit_data *train, const int64_t *order, int epoch,
                               int64_t first, int64_t batch, int64_t step, struct sums *s)
{
    const dg_fit_config *cfg = lp->cfg;
    const dg_fit_parallel *par = cfg->parallel;
    int64_t lo = share_begin(par, batch, par->rank);
    int64_t local = share_begin(par, batch, par->rank + 1) - lo;
    /* Rank 0 keeps cfg.seed (one rank trains as one process); the others get their own. */
    uint64_t seed = cfg->seed ^ ((uint64_t)par->rank * 0x9E3779B97F4A7C15u);
    dg_status st = DG_OK;
    if (local > 0) {
        gather(lp, train, cfg->shuffle ? order : NULL, first + lo, local);
        /* keyed by cfg.seed and the example: the same images as in one process */
        dg__augment_batch(&cfg->augment, cfg->seed, epoch, (float *)lp->x_batch, lp->x_row,
                          cfg->shuffle ? order : NULL, first + lo, local);
        if (dg_plan_dim(plan, lp->model->x, 0) != local)
            st = dg_plan_set_batch(plan, local);
        if (st == DG_OK)
            st = dg_dropout_feed_key(plan, seed, step, true);
    }
    if (st == DG_OK) {
        st = par->step_begin(par->user, plan, batch);
        if (st != DG_OK)
            return st; /* decided alike on every rank (from the batch sizes) */
    }
    if (st == DG_OK && local > 0)
        st = run_batch(lp, plan, local);
    /* A local failure here would leave the other ranks waiting: step_end ends the job. */
    const float *const *grads = NULL;
    st = par->step_end(par->user, plan, st, &grads);
    if (st == DG_OK)
        st = dg_optim_step_raw(opt, grads);
    if (st == DG_OK && local > 0)
        add_batch(lp, plan, local, s);
    return st;
}

static dg_status train_epoch(const struct loop *lp, dg_plan *plan, dg_optim *opt,
                             const dg_fit_data *train, int64_t *order, int epoch,
                             int64_t *step, struct dg__progress *progress, dg_epoch_stats *st)
{
    const dg_fit_config *cfg = lp->cfg;
    if (cfg->shuffle) {
        dg_rng rng;
        dg_rng_seed(&rng, cfg->seed);
        rng = dg_rng_split(&rng, (uint64_t)epoch);
        dg_rng_permutation(&rng, order, train->n);
    }
    struct sums s = {0};
    double start = dg__now_seconds();
    dg_status status = DG_OK;
    for (int64_t first = 0; first < train->n && status == DG_OK; first += cfg->batch_size) {
        int64_t batch = train->n - first < cfg->batch_size ? train->n - first : cfg->batch_size;
        if (cfg->parallel != NULL) {
            status = parallel_step(lp, plan, opt, train, order, epoch, first, batch, *step,
                                   &s);
        } else {
            gather(lp, train, cfg->shuffle ? order : NULL, first, batch);
            dg__augment_batch(&cfg->augment, cfg->seed, epoch, (float *)lp->x_batch, lp->x_row,
                              cfg->shuffle ? order : NULL, first, batch);
            status = dg_dropout_feed_key(plan, cfg->seed, *step, true);
            if (status == DG_OK)
                status = run_batch(lp, plan, batch);
            if (status == DG_OK)
                status = dg_optim_step(opt, plan);
            if (status == DG_OK)
                add_batch(lp, plan, batch, &s);
        }
        if (status != DG_OK)
            break;
        (*step)++;
        double acc, metric, loss;
        finish(lp, &s, &loss, &acc, &metric);
        dg__progress_batch(progress, cfg->parallel ? first + batch : s.seen, loss, acc, metric,
                           dg__now_seconds() - start);
    }
    if (status == DG_OK)
        status = reduce_sums(cfg->parallel, &s);
    st->seconds = dg__now_seconds() - start;
    st->samples_per_s = st->seconds > 0 ? (double)s.seen / st->seconds : 0;
    finish(lp, &s, &st->loss, &st->accuracy, &st->metric);
    return status;
}

dg_status dg_fit(const dg_model *model, dg_optim *opt, const dg_fit_data *train,
                 const dg_fit_data *val, const dg_fit_config *cfg, dg_epoch_stats *history)
{
    dg_status st = check_model(model, train, "fit");
    if (st == DG_OK && val != NULL)
        st = check_model(model, val, "fit (validation)");
    if (st != DG_OK)
        return st;
    dg_fit_config defaults = DG_FIT_DEFAULTS;
    if (cfg == NULL)
        cfg = &defaults;
    if ((st = check_config(model->graph, cfg)) != DG_OK ||
        (st = dg__augment_check(model->graph, &cfg->augment, per_example(model->x))) != DG_OK)
        return st;
    if (cfg->augment.enable && model->x != NULL && dg_node_dtype(model->x) != DG_F32) {
        dg_graph_set_error(model->graph, DG_ERR_DTYPE, "fit: image augmentation needs float32 "
                           "inputs; '%s' is int32",
                           dg_node_name(model->x) ? dg_node_name(model->x) : "x");
        return DG_ERR_DTYPE;
    }
    if (opt == NULL || dg_optim_status(opt) != DG_OK) {
        dg_graph_set_error(model->graph, DG_ERR_INVALID_ARG,
                           "fit: the optimizer is NULL or unusable");
        return DG_ERR_INVALID_ARG;
    }
    /* Loaded before the plans are made, so that nothing sees the old parameters. */
    dg_fit_state start;
    st = start_state(model, opt, cfg, &start);
    if ((st = agree(cfg->parallel, model->graph, st)) != DG_OK) /* a rank may miss the file */
        return st;
    int64_t eval_batch = cfg->eval_batch_size > 0 ? cfg->eval_batch_size : cfg->batch_size;
    /* Batch buffers hold at most what the data can fill. */
    int64_t max_batch = cfg->batch_size < train->n ? cfg->batch_size : train->n;
    if (val != NULL) {
        int64_t val_batch = eval_batch < val->n ? eval_batch : val->n;
        max_batch = max_batch > val_batch ? max_batch : val_batch;
    }
    struct loop lp;
    int64_t *order = dg__malloc((size_t)train->n * sizeof *order);
    dg_plan *plan = compile_training(model, opt);
    dg_node *eval_outs[2] = {model->loss, model->output};
    dg_plan *eval_plan = (plan && val) ? dg_compile(model->graph, model->output ? 2 : 1,
                                                    eval_outs)
                                       : NULL;
    st = loop_init(&lp, model, cfg, max_batch);
    if (st == DG_OK && (order == NULL || plan == NULL || (val && eval_plan == NULL)))
        st = order == NULL ? DG_ERR_NOMEM : dg_graph_status(model->graph);
    if (st == DG_ERR_NOMEM && order == NULL)
        dg_graph_set_error(model->graph, DG_ERR_NOMEM, "fit: out of memory for %lld indices",
                           (long long)train->n);
    if (st == DG_OK)
        choose_metrics(&lp, model, train, cfg);
    struct dg__progress progress;
    /* Progress shows "epoch 3/3" for the one epoch of a run resumed after two. */
    dg_fit_config shown = *cfg;
    shown.epochs = start.epoch + cfg->epochs;
    if (cfg->parallel != NULL && cfg->parallel->rank != 0) {
        shown.verbose = 0; /* rank 0 alone reports */
        shown.csv_path = NULL;
        shown.plot_path = NULL;
    }
    if (lp.perplexity)
        shown.metric_name = "ppl";
    dg_status progress_st = dg__progress_open(&progress, &shown, train->n, dg_optim_base_lr(opt));
    if (progress_st != DG_OK && st == DG_OK) {
        dg_graph_set_error(model->graph, progress_st, "fit: %s", progress.error);
        st = progress_st;
    }
    for (int64_t i = 0; st == DG_OK && i < train->n; i++)
        order[i] = i;
    bool attached = false;
    if (cfg->parallel != NULL && plan != NULL) {
        dg_status local = st == DG_OK ? cfg->parallel->attach(cfg->parallel->user, plan, opt)
                                      : st;
        attached = true;
        st = agree(cfg->parallel, model->graph, local);
    }
    for (int k = 0; history != NULL && k < cfg->epochs; k++)
        history[k] = (dg_epoch_stats){.epoch = 0, .loss = NAN, .accuracy = NAN, .metric = NAN,
                                      .val_loss = NAN, .val_accuracy = NAN, .val_metric = NAN};
    dg_fit_state run = start;
    bool started = st == DG_OK;
    bool stop = false;
    for (int k = 0; st == DG_OK && !stop && k < cfg->epochs; k++) {
        int epoch = run.epoch + 1;
        dg_epoch_stats es = {.epoch = epoch, .val_loss = NAN, .val_accuracy = NAN,
                             .val_metric = NAN};
        dg__progress_epoch_start(&progress, epoch);
        st = train_epoch(&lp, plan, opt, train, order, epoch, &run.step, &progress, &es);
        es.lr = dg_optim_lr(opt);
        if (st == DG_OK && val != NULL)
            st = evaluate_with(&lp, eval_plan, val, eval_batch, &es.val_loss,
                               &es.val_accuracy, &es.val_metric);
        if (st == DG_OK && dg_optim_status(opt) != DG_OK)
            st = dg_optim_status(opt);
        if (st != DG_OK)
            break;
        run.epoch = epoch;
        dg__progress_epoch_end(&progress, &es);
        if (history)
            history[k] = es;
        st = after_epoch(model, opt, cfg, &run, val != NULL ? es.val_loss : es.loss,
                         k + 1 == cfg->epochs, &stop);
    }
    if (cfg->state != NULL && started)
        *cfg->state = run;
    if (st != DG_OK && dg_graph_status(model->graph) == DG_OK && dg_optim_error(opt)[0])
        dg_graph_set_error(model->graph, st, "fit: %s", dg_optim_error(opt));
    if (dg__progress_close(&progress) != DG_OK && st == DG_OK) {
        dg_graph_set_error(model->graph, DG_ERR_IO, "fit: %s", progress.error);
        st = DG_ERR_IO;
    }
    if (attached)
        cfg->parallel->detach(cfg->parallel->user, plan);
    loop_free(&lp);
    dg__free(order);
    dg_plan_free(plan);
    dg_plan_free(eval_plan);
    return st;
}
