/*
 * Data-parallel training over MPI: the dg_fit_parallel hooks (dagrad_train.h) over the
 * training plan's gradient block.
 *
 * The block (dg_plan_set_grad_block, entries in the optimizer's parameter order) is cut into
 * buckets of whole entries. As dg_run reports an entry final (dg_plan_set_block_ready), the
 * bucket holding it counts down; a bucket whose entries are all final starts its reduction
 * while the backward pass goes on. A reduction is two non-blocking collectives, so that the
 * sum has one fixed order whatever MPI's own algorithms do:
 *   1. exchange (MPI_Ialltoallv on comm_exchange): the bucket is cut into `size` chunks;
 *      rank r receives chunk r of every rank;
 *   2. rank r sums its chunk over ranks 0, 1, ..., size-1 in that order, scales it to the
 *      average, and writes it into its own block;
 *   3. gather (MPI_Iallgatherv, in place, on comm_gather): every rank receives every averaged
 *      chunk.
 * Each chunk is summed by exactly one rank in a fixed order, so all ranks hold the same bits,
 * and the same bits run after run for a fixed number of ranks. Traffic per rank is
 * 2 (size-1)/size of the bucket, as a ring allreduce (docs/distributed.md).
 * Collectives on a communicator must start in the same order on every rank: exchanges start
 * in the order buckets become ready (the plan's step order, the same on every rank), and
 * gathers in the order exchanges started (only the oldest exchange is tested), each kind on its
 * own communicator.
 * Open MPI and MPICH move a non-blocking collective on only inside MPI calls. Between two
 * ready entries the backward pass makes none, so a progress thread tests the requests in
 * flight while dg_run runs (every MPI call of this file is made under d->lock: MPI at
 * MPI_THREAD_SERIALIZED suffices; without it there is no thread and progress is made from
 * the hook alone).
 *
 * Synchronised batch norm (opts.sync_batch_norm): the training plan gets a collective
 * (dg_plan_set_collective) that batch_norm calls, on dg_run's thread, to sum its per-channel
 * statistics over the ranks: the same fixed-order sum as the loss sums (gathered, added in rank
 * order: the same bits on every rank, run after run), on a communicator of its own (comm_bn),
 * since these blocking collectives interleave with the buckets' non-blocking ones in an order
 * that differs between ranks.
 */
#include "dagrad.h"
#include "dagrad_dist.h"
#include "alloc.h"

#include <mpi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEFAULT_BUCKET_BYTES ((size_t)256 << 10)

enum bucket_state { IDLE, EXCHANGING, GATHERING, DONE };

struct bucket {
    int64_t begin, end;        /* element range in the block */
    int n_entries, pending;    /* entries, and entries not yet final this step */
    enum bucket_state state;
    bool early;                /* started from the block-ready hook */
    MPI_Request request;
    int *counts, *displs;      /* chunk j: counts[j] elements at displs[j] (bucket-relative) */
    int *recv_counts, *recv_displs; /* exchange: chunk `rank` of rank i at i * counts[rank] */
    float *scratch;            /* size * counts[rank] values received in the exchange */
};

struct dg_dist {
    dg_status status;
    char error[256];
    MPI_Comm comm_exchange, comm_gather, comm_bn;
    int rank, size;
    bool finalize;             /* dg_dist_init called MPI_Init */
    dg_dist_options opts;
    dg_fit_parallel hooks;
    dg_dist_stats stats;

    /* the attached plan */
    dg_plan *plan;
    dg_optim *opt;
    int n_entries, n_buckets;
    int *entry_bucket;
    struct bucket *buckets;
    int *ready_order;          /* bucket indices in the order they became ready last step */
    int n_ready, n_started;
    bool order_known;          /* ready_order comes from a run */
    int *start_order;          /* this step's start order (the queue gathers follow) */
    int next_gather;           /* start_order index of the oldest bucket still exchanging */
    const float **grads;
    float *block;              /* this step's block (re-read every step: re-plans move it) */
    int64_t batch;             /* this step's global batch */
    double run_started;

    /* the progress thread (see the top of the file) */
    bool threaded;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool in_run, stop;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static dg_status fail(dg_dist *d, dg_status st, const char *fmt, ...)
{
    if (d->status == DG_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->error, sizeof d->error, fmt, ap);
        va_end(ap);
        d->status = st;
    }
    return st;
}

/* An MPI call failed in the middle of a step: the other ranks would wait for this one
 * forever, so the whole job ends here, with the reason. */
static void fatal(const dg_dist *d, const char *what, int code)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (code != MPI_SUCCESS)
        MPI_Error_string(code, text, &len);
    fprintf(stderr, "dagrad dist: rank %d of %d: %s%s%s; ending every rank\n", d->rank,
            d->size, what, len ? ": " : "", text);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

#define CHECK_MPI(d, call, what)                                                             \
    do {                                                                                     \
        int code_ = (call);                                                                  \
        if (code_ != MPI_SUCCESS)                                                            \
            fatal((d), (what), code_);                                                       \
    } while (0)

/* ---- Buckets ----------------------------------------------------------------------------- */

static void free_buckets(dg_dist *d)
{
    for (int b = 0; b < d->n_buckets; b++) {
        struct bucket *k = &d->buckets[b];
        dg__free(k->counts);
        dg__free(k->displs);
        dg__free(k->recv_counts);
        dg__free(k->recv_displs);
        dg__free(k->scratch);
    }
    dg__free(d->buckets);
    dg__free(d->entry_bucket);
    dg__free(d->ready_order);
    dg__free(d->start_order);
    dg__free(d->grads);
    d->buckets = NULL;
    d->entry_bucket = d->ready_order = d->start_order = NULL;
    d->grads = NULL;
    d->n_buckets = d->n_entries = 0;
}

/* The first entry of the bucket that ends before entry `end`: entries are taken from the
 * end backwards until the bucket holds at least min_values values. */
static int bucket_first(const int64_t *offsets, int end, int64_t min_values)
{
    int first = end - 1;
    while (first > 0 && offsets[end] - offsets[first] < min_values)
        first--;
    return first;
}

/* Cuts the block's entries into buckets of at least opts.bucket_bytes, from the last entry
 * backwards: the backward pass finishes the last layers' gradients first, so bucket 0 (the
 * last entries) is ready first. */
static dg_status make_buckets(dg_dist *d, const int64_t *offsets, int n_entries)
{
    size_t target = d->opts.bucket_bytes ? d->opts.bucket_bytes : DEFAULT_BUCKET_BYTES;
    int64_t min_values = (int64_t)(target / sizeof(float));
    int n_buckets = 0;
    for (int end = n_entries; end > 0; end = bucket_first(offsets, end, min_values))
        n_buckets++;
    d->n_entries = n_entries;
    d->buckets = dg__calloc((size_t)(n_buckets ? n_buckets : 1), sizeof *d->buckets);
    d->entry_bucket = dg__malloc((size_t)(n_entries ? n_entries : 1) * sizeof(int));
    d->ready_order = dg__malloc((size_t)(n_buckets ? n_buckets : 1) * sizeof(int));
    d->start_order = dg__malloc((size_t)(n_buckets ? n_buckets : 1) * sizeof(int));
    d->grads = dg__calloc((size_t)(n_entries ? n_entries : 1), sizeof *d->grads);
    if (!d->buckets || !d->entry_bucket || !d->ready_order || !d->start_order || !d->grads)
        return DG_ERR_NOMEM;
    d->n_buckets = n_buckets;
    int b = 0;
    for (int end = n_entries; end > 0; b++) {
        struct bucket *k = &d->buckets[b];
        int first = bucket_first(offsets, end, min_values);
        for (int e = first; e < end; e++)
            d->entry_bucket[e] = b;
        k->begin = offsets[first];
        k->end = offsets[end];
        k->n_entries = end - first;
        end = first;
        if (k->end - k->begin > INT32_MAX)
            return fail(d, DG_ERR_INVALID_ARG, "dist: gradient entry %d has %lld values, more "
                        "than one MPI message holds", first, (long long)(k->end - k->begin));
        int64_t n = k->end - k->begin;
        k->counts = dg__malloc((size_t)d->size * sizeof(int));
        k->displs = dg__malloc((size_t)d->size * sizeof(int));
        k->recv_counts = dg__malloc((size_t)d->size * sizeof(int));
        k->recv_displs = dg__malloc((size_t)d->size * sizeof(int));
        if (!k->counts || !k->displs || !k->recv_counts || !k->recv_displs)
            return DG_ERR_NOMEM;
        for (int j = 0; j < d->size; j++) {
            k->displs[j] = (int)(n * j / d->size);
            k->counts[j] = (int)(n * (j + 1) / d->size) - k->displs[j];
        }
        int mine = k->counts[d->rank];
        for (int i = 0; i < d->size; i++) {
            k->recv_counts[i] = mine;
            k->recv_displs[i] = i * mine;
        }
        k->scratch = dg__malloc((size_t)(mine ? mine : 1) * (size_t)d->size * sizeof(float));
        if (k->scratch == NULL)
            return DG_ERR_NOMEM;
    }
    for (int i = 0; i < n_buckets; i++)
        d->ready_order[i] = i; /* until a run shows the real order */
    return DG_OK;
}

static void start_exchange(dg_dist *d, int b, bool early)
{
    struct bucket *k = &d->buckets[b];
    k->state = EXCHANGING;
    k->early = early;
    d->start_order[d->n_started++] = b;
    CHECK_MPI(d, MPI_Ialltoallv(d->block + k->begin, k->counts, k->displs, MPI_FLOAT,
                                k->scratch, k->recv_counts, k->recv_displs, MPI_FLOAT,
                                d->comm_exchange, &k->request), "MPI_Ialltoallv");
}

/* The average of this rank's chunk over the ranks, summed in rank order, weighted by each
 * rank's share of the batch when the shares differ (the last batch of an epoch). */
static void reduce_chunk(dg_dist *d, struct bucket *k)
{
    int n = k->counts[d->rank];
    float *out = d->block + k->begin + k->displs[d->rank];
    const float *rows = k->scratch;
    bool equal = d->batch % d->size == 0;
    if (equal) {
        float scale = (float)d->size;
        for (int j = 0; j < n; j++) {
            float sum = rows[j];
            for (int i = 1; i < d->size; i++)
                sum += rows[(size_t)i * (size_t)n + (size_t)j];
            out[j] = sum / scale;
        }
        return;
    }
    /* Rank i's loss is the mean over its share c_i: the batch mean is sum_i c_i g_i / batch;
     * a rank with an empty share (c_i = 0) sent stale values, skipped. */
    float total = (float)d->batch;
    for (int j = 0; j < n; j++)
        out[j] = 0.0f;
    for (int i = 0; i < d->size; i++) {
        int64_t lo = d->batch * i / d->size;
        int64_t hi = d->batch * (i + 1) / d->size;
        if (hi == lo)
            continue;
        float weight = (float)(hi - lo);
        const float *row = rows + (size_t)i * (size_t)n;
        for (int j = 0; j < n; j++)
            out[j] += row[j] * weight;
    }
    for (int j = 0; j < n; j++)
        out[j] /= total;
}

static void start_gather(dg_dist *d, struct bucket *k)
{
    reduce_chunk(d, k);
    k->state = GATHERING;
    CHECK_MPI(d, MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, d->block + k->begin, k->counts,
                                 k->displs, MPI_FLOAT, d->comm_gather, &k->request),
              "MPI_Iallgatherv");
}

/* Moves the oldest exchanges on to their gathers; `wait`: until every exchange has. Testing
 * also gives MPI the chance to progress the other requests. */
static void progress(dg_dist *d, bool wait)
{
    while (d->next_gather < d->n_started) {
        struct bucket *k = &d->buckets[d->start_order[d->next_gather]];
        int done = 0;
        if (wait)
            CHECK_MPI(d, MPI_Wait(&k->request, MPI_STATUS_IGNORE), "MPI_Wait (exchange)");
        else
            CHECK_MPI(d, MPI_Test(&k->request, &done, MPI_STATUS_IGNORE),
                      "MPI_Test (exchange)");
        if (!wait && !done)
            return;
        start_gather(d, k);
        d->next_gather++;
    }
    for (int i = 0; !wait && i < d->next_gather; i++) {
        struct bucket *k = &d->buckets[d->start_order[i]];
        int done = 0;
        if (k->state == GATHERING)
            CHECK_MPI(d, MPI_Test(&k->request, &done, MPI_STATUS_IGNORE), "MPI_Test (gather)");
        if (done)
            k->state = DONE;
    }
}

/* Tests the requests in flight every 50 us while dg_run runs; sleeps otherwise. */
static void *progress_main(void *arg)
{
    dg_dist *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        if (!d->in_run || d->n_started == 0) {
            pthread_cond_wait(&d->wake, &d->lock);
            continue;
        }
        progress(d, false);
        pthread_mutex_unlock(&d->lock);
        nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL);
        pthread_mutex_lock(&d->lock);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static void lock(dg_dist *d)
{
    if (d->threaded)
        pthread_mutex_lock(&d->lock);
}

static void unlock(dg_dist *d)
{
    if (d->threaded)
        pthread_mutex_unlock(&d->lock);
}

/* dg_run's block-ready hook: counts the bucket down and starts it when complete. */
static void on_ready(void *user, int entry)
{
    dg_dist *d = user;
    struct bucket *k = &d->buckets[d->entry_bucket[entry]];
    if (--k->pending > 0)
        return;
    d->ready_order[d->n_ready++] = d->entry_bucket[entry];
    d->order_known |= d->n_ready == d->n_buckets;
    if (!d->opts.no_overlap) {
        lock(d);
        start_exchange(d, d->entry_bucket[entry], true);
        progress(d, false);
        if (d->threaded)
            pthread_cond_signal(&d->wake);
        unlock(d);
    }
}

/* ---- The dg_fit hooks --------------------------------------------------------------------- */

static int bn_collective(void *user, double *values, int64_t n);

static dg_status hook_attach(void *user, dg_plan *plan, dg_optim *opt)
{
    dg_dist *d = user;
    free_buckets(d);
    d->order_known = false;
    int n = dg_optim_param_count(opt);
    dg_node **grads = dg__malloc((size_t)(n ? n : 1) * sizeof *grads);
    int64_t *offsets = dg__malloc((size_t)(n + 1) * sizeof *offsets);
    dg_status st = grads && offsets ? DG_OK : DG_ERR_NOMEM;
    for (int i = 0; st == DG_OK && i < n; i++)
        grads[i] = dg_optim_grad_node(opt, i);
    if (st == DG_OK)
        st = dg_plan_set_grad_block(plan, n, grads);
    int64_t numel = 0;
    if (st == DG_OK) {
        dg_plan_grad_block(plan, &numel);
        for (int i = 0; i < n; i++)
            offsets[i] = dg_plan_grad_block_offset(plan, i);
        offsets[n] = numel;
        st = make_buckets(d, offsets, n);
    }
    dg__free(grads);
    dg__free(offsets);
    if (st == DG_ERR_NOMEM)
        dg_graph_set_error(dg_plan_graph(plan), st, "dist: out of memory for the buckets");
    else if (st != DG_OK && d->status != DG_OK)
        dg_graph_set_error(dg_plan_graph(plan), st, "%s", d->error);
    /* Every rank must hold the same model: compare the block sizes. */
    long long mine[2] = {st == DG_OK ? numel : -1, n}, lowest[2], highest[2];
    CHECK_MPI(d, MPI_Allreduce(mine, lowest, 2, MPI_LONG_LONG, MPI_MIN, d->comm_exchange),
              "MPI_Allreduce");
    CHECK_MPI(d, MPI_Allreduce(mine, highest, 2, MPI_LONG_LONG, MPI_MAX, d->comm_exchange),
              "MPI_Allreduce");
    if (st == DG_OK && (lowest[0] != highest[0] || lowest[1] != highest[1])) {
        dg_graph_set_error(dg_plan_graph(plan), DG_ERR_SHAPE, "dist: the ranks hold different "
                           "models (%lld to %lld gradient values in %lld to %lld entries)",
                           lowest[0], highest[0], lowest[1], highest[1]);
        st = DG_ERR_SHAPE;
    }
    if (st != DG_OK || lowest[0] < 0)
        return st != DG_OK ? st : DG_OK; /* a failing rank reports; dg_fit agrees */
    /* Rank 0's parameters for everyone (the same seed should already give them). */
    for (int i = 0; i < n; i++) {
        dg_node *param = dg_optim_param_node(opt, i);
        int64_t count = dg_node_numel(param);
        CHECK_MPI(d, MPI_Bcast(dg_param_data(param), (int)count, MPI_FLOAT, 0,
                               d->comm_exchange), "MPI_Bcast (parameters)");
    }
    d->plan = plan;
    d->opt = opt;
    dg_plan_set_block_ready(plan, on_ready, d);
    if (d->opts.sync_batch_norm)
        dg_plan_set_collective(plan, bn_collective, d);
    return DG_OK;
}

static dg_status hook_step_begin(void *user, dg_plan *plan, int64_t batch)
{
    dg_dist *d = user;
    if (batch < 1 || (!d->order_known && batch < d->size)) {
        /* A rank that never ran would not know the order the buckets start in. */
        dg_graph_set_error(dg_plan_graph(plan), DG_ERR_INVALID_ARG, "dist: the first batch "
                           "has %lld examples for %d ranks (at least one each is needed)",
                           (long long)batch, d->size);
        return DG_ERR_INVALID_ARG;
    }
    if (d->opts.sync_batch_norm && batch < d->size) {
        /* A rank without examples does not run, and batch norm's collectives would wait
         * for it forever. */
        dg_graph_set_error(dg_plan_graph(plan), DG_ERR_INVALID_ARG, "dist: a batch of %lld "
                           "examples for %d ranks: synchronised batch norm needs at least one "
                           "example on every rank in every batch (the last batch of an epoch "
                           "included)", (long long)batch, d->size);
        return DG_ERR_INVALID_ARG;
    }
    d->block = dg_plan_grad_block(plan, NULL);
    d->batch = batch;
    d->n_ready = d->n_started = d->next_gather = 0;
    for (int b = 0; b < d->n_buckets; b++) {
        d->buckets[b].pending = d->buckets[b].n_entries;
        d->buckets[b].state = IDLE;
    }
    d->run_started = now();
    lock(d);
    d->in_run = true;
    unlock(d);
    return DG_OK;
}

static dg_status hook_step_end(void *user, dg_plan *plan, dg_status local,
                               const float *const **grads)
{
    dg_dist *d = user;
    if (local != DG_OK) {
        char what[400];
        snprintf(what, sizeof what, "training step failed (%s: %s)", dg_status_str(local),
                 dg_graph_error(dg_plan_graph(plan)));
        fatal(d, what, MPI_SUCCESS);
    }
    lock(d);
    d->in_run = false; /* the progress thread keeps out of MPI until the next run */
    unlock(d);
    double ran = now();
    /* Whatever did not start from the hook (no overlap, or no run on this rank: its share
     * of the batch was empty) starts now, in the order the buckets became ready. */
    for (int i = 0; i < d->n_buckets; i++) {
        int b = d->ready_order[i];
        if (d->buckets[b].state == IDLE)
            start_exchange(d, b, false);
    }
    progress(d, true);
    for (int b = 0; b < d->n_buckets; b++) {
        struct bucket *k = &d->buckets[b];
        if (k->state != DONE)
            CHECK_MPI(d, MPI_Wait(&k->request, MPI_STATUS_IGNORE), "MPI_Wait (gather)");
        k->state = DONE;
        d->stats.buckets++;
        d->stats.buckets_early += k->early;
        d->stats.bytes += (k->end - k->begin) * (int64_t)sizeof(float);
    }
    double end = now();
    d->stats.steps++;
    d->stats.run_s += ran - d->run_started;
    d->stats.wait_s += end - ran;
    for (int e = 0; e < d->n_entries; e++)
        d->grads[e] = d->block + dg_plan_grad_block_offset(plan, e);
    *grads = d->grads;
    return DG_OK;
}

/* values[0..n) summed over the ranks of `comm` in rank order: gathered everywhere, added
 * alike. `what` names the sum in the message that ends the job when MPI fails. */
static dg_status sum_in_order(dg_dist *d, MPI_Comm comm, double *values, int n,
                              const char *what)
{
    if (n <= 0)
        return n == 0 ? DG_OK : DG_ERR_INVALID_ARG;
    double *all = dg__malloc((size_t)n * (size_t)d->size * sizeof *all);
    if (all == NULL) {
        fatal(d, "out of memory for a sum over the ranks", MPI_SUCCESS);
        return DG_ERR_NOMEM;
    }
    CHECK_MPI(d, MPI_Allgather(values, n, MPI_DOUBLE, all, n, MPI_DOUBLE, comm), what);
    for (int j = 0; j < n; j++) {
        double sum = all[j];
        for (int i = 1; i < d->size; i++)
            sum += all[(size_t)i * (size_t)n + (size_t)j];
        values[j] = sum;
    }
    dg__free(all);
    return DG_OK;
}

static dg_status hook_sum(void *user, double *values, int n)
{
    dg_dist *d = user;
    return sum_in_order(d, d->comm_gather, values, n, "MPI_Allgather");
}

/* The training plan's collective (dg_sum_fn) for synchronised batch norm: called by the
 * batch_norm kernels inside dg_run, on its thread, while the progress thread may be testing
 * bucket requests: under the lock (MPI_THREAD_SERIALIZED). An MPI failure ends every rank
 * (the others wait in the same collective); nonzero only for a count no MPI message holds. */
static int bn_collective(void *user, double *values, int64_t n)
{
    dg_dist *d = user;
    if (n < 0 || n > INT32_MAX / (d->size > 0 ? d->size : 1))
        return 1;
    lock(d);
    dg_status st = sum_in_order(d, d->comm_bn, values, (int)n,
                                "MPI_Allgather (synchronised batch norm)");
    unlock(d);
    return st == DG_OK ? 0 : 1;
}

static dg_status hook_agree(void *user, dg_status local)
{
    dg_dist *d = user;
    /* The lowest failing rank's status: minimise rank * STATUS_COUNT + status over the
     * failing ranks (integers: exact in any order). */
    int mine = local == DG_OK ? INT32_MAX : d->rank * (int)DG_STATUS_COUNT + (int)local;
    int lowest = INT32_MAX;
    CHECK_MPI(d, MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, d->comm_exchange),
              "MPI_Allreduce (status)");
    return lowest == INT32_MAX ? DG_OK : (dg_status)(lowest % (int)DG_STATUS_COUNT);
}

static void hook_detach(void *user, dg_plan *plan)
{
    dg_dist *d = user;
    if (plan == d->plan) {
        dg_plan_set_block_ready(plan, NULL, NULL);
        dg_plan_set_collective(plan, NULL, NULL);
    }
    d->plan = NULL;
    d->opt = NULL;
}

/* ---- Setup ---------------------------------------------------------------------------------- */

dg_dist *dg_dist_init(int *argc, char ***argv, const dg_dist_options *opts)
{
    dg_dist *d = dg__calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->opts = opts ? *opts : DG_DIST_DEFAULTS;
    d->comm_exchange = d->comm_gather = d->comm_bn = MPI_COMM_NULL;
    d->size = 1;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
            fail(d, DG_ERR_STATE, "dist: MPI_Init_thread failed");
            return d;
        }
        d->finalize = true;
    }
    if (MPI_Comm_dup(MPI_COMM_WORLD, &d->comm_exchange) != MPI_SUCCESS ||
        MPI_Comm_dup(MPI_COMM_WORLD, &d->comm_gather) != MPI_SUCCESS ||
        MPI_Comm_dup(MPI_COMM_WORLD, &d->comm_bn) != MPI_SUCCESS) {
        fail(d, DG_ERR_STATE, "dist: MPI_Comm_dup failed");
        return d;
    }
    MPI_Comm_set_errhandler(d->comm_exchange, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(d->comm_gather, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(d->comm_bn, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm_exchange, &d->rank);
    MPI_Comm_size(d->comm_exchange, &d->size);
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (d->size > 1 && !d->opts.no_overlap && !d->opts.no_progress_thread &&
        level >= MPI_THREAD_SERIALIZED && pthread_mutex_init(&d->lock, NULL) == 0) {
        if (pthread_cond_init(&d->wake, NULL) != 0) {
            pthread_mutex_destroy(&d->lock);
        } else if (pthread_create(&d->thread, NULL, progress_main, d) != 0) {
            pthread_cond_destroy(&d->wake);
            pthread_mutex_destroy(&d->lock);
        } else {
            d->threaded = true;
        }
    }
    d->hooks = (dg_fit_parallel){
        .rank = d->rank, .size = d->size, .user = d,
        .attach = hook_attach, .step_begin = hook_step_begin, .step_end = hook_step_end,
        .sum = hook_sum, .agree = hook_agree, .detach = hook_detach,
    };
    return d;
}

dg_status dg_dist_status(const dg_dist *d)
{
    return d ? d->status : DG_ERR_INVALID_ARG;
}

const char *dg_dist_error(const dg_dist *d)
{
    return d ? d->error : "dist: NULL";
}

int dg_dist_rank(const dg_dist *d)
{
    return d && d->status == DG_OK ? d->rank : 0;
}

int dg_dist_size(const dg_dist *d)
{
    return d && d->status == DG_OK ? d->size : 1;
}

const dg_fit_parallel *dg_dist_fit(dg_dist *d)
{
    return d && d->status == DG_OK ? &d->hooks : NULL;
}

dg_dist_stats dg_dist_get_stats(const dg_dist *d)
{
    return d ? d->stats : (dg_dist_stats){0};
}

void dg_dist_reset_stats(dg_dist *d)
{
    if (d)
        d->stats = (dg_dist_stats){0};
}

dg_status dg_dist_sum(dg_dist *d, double *values, int n)
{
    if (d == NULL || d->status != DG_OK || (n > 0 && values == NULL))
        return DG_ERR_INVALID_ARG;
    return sum_in_order(d, d->comm_gather, values, n, "MPI_Allgather");
}

void dg_dist_free(dg_dist *d)
{
    if (d == NULL)
        return;
    if (d->plan != NULL) {
        dg_plan_set_block_ready(d->plan, NULL, NULL);
        dg_plan_set_collective(d->plan, NULL, NULL);
    }
    if (d->threaded) {
        pthread_mutex_lock(&d->lock);
        d->stop = true;
        pthread_cond_signal(&d->wake);
        pthread_mutex_unlock(&d->lock);
        pthread_join(d->thread, NULL);
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
    }
    free_buckets(d);
    if (d->comm_exchange != MPI_COMM_NULL)
        MPI_Comm_free(&d->comm_exchange);
    if (d->comm_gather != MPI_COMM_NULL)
        MPI_Comm_free(&d->comm_gather);
    if (d->comm_bn != MPI_COMM_NULL)
        MPI_Comm_free(&d->comm_bn);
    if (d->finalize)
        MPI_Finalize();
    dg__free(d);
}
