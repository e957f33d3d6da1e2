/* Progress output of the training loop: a live bar on a terminal, plain lines otherwise, and
 * an optional CSV of per-epoch metrics. */
#ifndef DG_TRAIN_PROGRESS_H
#define DG_TRAIN_PROGRESS_H

#include "dagrad.h"

struct dg__progress {
    const dg_fit_config *cfg;
    FILE *out;
    FILE *csv;
    bool live;            /* a terminal: redraw one line in place */
    int64_t total;        /* examples per epoch */
    int epoch;
    double last_draw;     /* seconds since epoch start of the last redraw */
};

double dg__now_seconds(void);
/* DG_ERR_IO when the CSV file cannot be created. */
dg_status dg__progress_open(struct dg__progress *p, const dg_fit_config *cfg, int64_t total);
void dg__progress_epoch_start(struct dg__progress *p, int epoch);
void dg__progress_batch(struct dg__progress *p, int64_t seen, double loss, double accuracy,
                        double elapsed);
void dg__progress_epoch_end(struct dg__progress *p, const dg_epoch_stats *stats);
/* DG_ERR_IO when writing the CSV file failed. */
dg_status dg__progress_close(struct dg__progress *p);

#endif
