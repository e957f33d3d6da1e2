/* Data-parallel training over MPI (docs/distributed.md). Separate from dagrad.h: include it
 * where you train on several processes. The functions exist in every build; a library built
 * without MPI (-Dmpi=disabled, or no MPI found) returns a dg_dist whose status is DG_ERR_STATE
 * ("built without MPI"). */
#ifndef DAGRAD_DIST_H
#define DAGRAD_DIST_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One process's place in a data-parallel job: its MPI communicators, the gradient buckets of
 * the attached training plan, and figures about the communication. */
typedef struct dg_dist dg_dist;

typedef struct dg_dist_options {
    size_t bucket_bytes; /* gradients are averaged in buckets of consecutive gradient-block
                            entries of at least this many bytes, grouped from the last entry
                            (the first the backward pass finishes); an entry is never split
                            across buckets; 0: 256 KiB */
    bool no_overlap;     /* start every bucket after the backward pass instead of as soon as
                            its gradients are final (to measure what the overlap gains) */
    bool no_progress_thread; /* MPI moves a non-blocking collective on only inside MPI
                            calls: by default a thread tests the requests in flight every
                            50 us while the backward pass runs (needs MPI_THREAD_SERIALIZED;
                            other threads of the program must not call MPI while dg_fit
                            runs); true: progress only when a bucket becomes ready */
    bool sync_batch_norm; /* synchronised batch norm: in training steps every batch_norm
                            node normalises with the statistics of the global batch (every
                            rank's share) and its backward pass sums over the ranks too, by
                            installing a collective on the training plan
                            (dg_plan_set_collective): a fixed-order sum over the ranks, the
                            same bits on every rank, so the running statistics stay identical
                            on every rank. Every batch then needs at least one example per
                            rank (DG_ERR_INVALID_ARG otherwise, on every rank). false (the
                            default): each rank normalises with its own share's statistics
                            and keeps its own running statistics; checkpoints hold rank 0's */
} dg_dist_options;
#define DG_DIST_DEFAULTS ((dg_dist_options){.bucket_bytes = 0})

/* Joins the job of MPI_COMM_WORLD: calls MPI_Init_thread (SERIALIZED) with argc/argv (both may
 * be NULL) unless MPI is already initialised, in which case the caller's MPI is used and
 * left running by dg_dist_free. Every rank must call it. Errors on the communicator return
 * (MPI_ERRORS_RETURN); an MPI error during training ends every rank with a message on stderr
 * (MPI_Abort), since waiting ranks would otherwise hang. Returns NULL only when out of memory;
 * check dg_dist_status. opts may be NULL (DG_DIST_DEFAULTS). */
DG_API dg_dist *dg_dist_init(int *argc, char ***argv, const dg_dist_options *opts);

/* DG_OK, or why the job could not be joined (message: dg_dist_error). */
DG_API dg_status dg_dist_status(const dg_dist *d);
DG_API const char *dg_dist_error(const dg_dist *d);

/* This process's rank in [0, size) and the number of processes (0 and 1 when unusable). */
DG_API int dg_dist_rank(const dg_dist *d);
DG_API int dg_dist_size(const dg_dist *d);

/* The hooks that make dg_fit data-parallel: set cfg.parallel = dg_dist_fit(d) on every rank
 * (same model built with the same seed, same data, same config). On attach, rank 0's
 * parameters are broadcast, so every rank starts from them. The gradients of each step are
 * averaged, weighted by each rank's share of the batch, with a fixed-order sum: bitwise the
 * same on every rank and from run to run for a fixed number of ranks. NULL when d is unusable
 * (dg_fit then trains alone). Valid until dg_dist_free. */
DG_API const dg_fit_parallel *dg_dist_fit(dg_dist *d);

/* Communication figures, summed over the steps since the last reset. */
typedef struct dg_dist_stats {
    int64_t steps;
    int64_t buckets;            /* bucket reductions completed */
    int64_t buckets_early;      /* ... of which started while the backward pass still ran */
    int64_t bytes;              /* gradient bytes reduced (per rank, before any splitting) */
    double run_s;               /* time inside dg_run (forward + backward, with the MPI
                                   progress made from the block-ready hook) */
    double wait_s;              /* time after dg_run until every bucket was averaged: the
                                   communication not hidden behind the backward pass */
} dg_dist_stats;
DG_API dg_dist_stats dg_dist_get_stats(const dg_dist *d);
DG_API void dg_dist_reset_stats(dg_dist *d);

/* Sums `n` doubles over the ranks in rank order (the same result on every rank); a collective:
 * every rank must call it. For checks and user metrics. */
DG_API dg_status dg_dist_sum(dg_dist *d, double *values, int n);

/* Leaves the job: frees d and calls MPI_Finalize when dg_dist_init called MPI_Init. NULL is
 * ignored. A collective in MPI's sense: every rank calls it. */
DG_API void dg_dist_free(dg_dist *d);

#ifdef __cplusplus
}
#endif

#endif
