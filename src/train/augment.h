/* Image augmentation for dg_fit's training batches (see dg_augment in dagrad_train.h). */
#ifndef DG_TRAIN_AUGMENT_H
#define DG_TRAIN_AUGMENT_H

#include "dagrad.h"

/* DG_OK when cfg->augment is off or fits a model input of `x_row` values per example; else
 * sets the graph's error ("fit: augment ...") and returns DG_ERR_INVALID_ARG or
 * DG_ERR_SHAPE. */
dg_status dg__augment_check(dg_graph *g, const dg_augment *aug, int64_t x_row);

/* Augments a gathered training batch in place when aug->enable: row i of `x` is example
 * order[first + i] (first + i when order is NULL) of the training data. Allocates nothing. */
void dg__augment_batch(const dg_augment *aug, uint64_t seed, int64_t epoch, float *x,
                       int64_t x_row, const int64_t *order, int64_t first, int64_t batch);

#endif
