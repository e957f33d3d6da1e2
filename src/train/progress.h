/* Progress output of the training loop: a live bar on a terminal, plain lines otherwise, an
 * optional CSV of per-epoch metrics and an optional SVG plot of them (plot.c). */
#ifndef DG_TRAIN_PROGRESS_H
#define DG_TRAIN_PROGRESS_H

#include "dagrad.h"

struct dg__progress {
    const dg_fit_config *cfg;
    FILE *out;
    FILE *csv;
    bool live;                /* a terminal: redraw one line in place */
    int64_t total;            /* examples per epoch */
    int epoch;
    double last_draw;         /* seconds since epoch start of the last redraw */
    double base_lr;           /* the optimizer's configured lr */
    bool show_lr;             /* a schedule moved the lr away from base_lr */
    dg_epoch_stats *history;  /* cfg->epochs entries when a plot is written */
    int n_history;
    char error[320];          /* why open or close failed */
};

double dg__now_seconds(void);
/* DG_ERR_IO when the CSV file cannot be created, DG_ERR_NOMEM; the reason in p->error. */
dg_status dg__progress_open(struct dg__progress *p, const dg_fit_config *cfg, int64_t total,
                            double base_lr);
void dg__progress_epoch_start(struct dg__progress *p, int epoch);
/* accuracy and metric are NaN when not measured. */
void dg__progress_batch(struct dg__progress *p, int64_t seen, double loss, double accuracy,
                        double metric, double elapsed);
void dg__progress_epoch_end(struct dg__progress *p, const dg_epoch_stats *stats);
/* DG_ERR_IO when writing the CSV file or the plot failed; the reason in p->error. Safe to
 * call after a failed open. */
dg_status dg__progress_close(struct dg__progress *p);

#endif
