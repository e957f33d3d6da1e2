/*
 * Iteration helpers for elementwise kernels with numpy broadcasting.
 *
 * The output is seen as rows of its last (collapsed) axis; for each row the iterator gives
 * the offset of the row's first element in each input, and each input's element stride along
 * the row (1, or 0 when that input is broadcast along it). Adjacent axes that broadcast the
 * same way are merged first, so e.g. [64,128,10] + [64,128,10] is one row of 81920.
 */
#ifndef DG_ELEMENTWISE_H
#define DG_ELEMENTWISE_H

#include "op.h"

struct dg_bcast {
    int ndim;                       /* collapsed axes, >= 1 */
    int64_t dim[DG_MAX_DIMS];
    int64_t stride[2][DG_MAX_DIMS]; /* per input, elements; 0 where broadcast */
    int64_t rows;                   /* product of dim[0 .. ndim-2] */
    int64_t row_len;                /* dim[ndim-1] */
};

/* n_inputs is 1 or 2; inputs broadcast to out. */
void dg__bcast_init(struct dg_bcast *it, const struct dg_shape *out, int n_inputs,
                    const struct dg_shape *const *inputs);
/* Offsets (in elements) of row `row`'s first element in each input. */
void dg__bcast_row(const struct dg_bcast *it, int64_t row, int64_t offset[2]);

#endif
