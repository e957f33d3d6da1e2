/*
 * The reductions' attributes (reduce.c): sum, mean, max and their backward helper
 * expand_reduced share them.
 */
#ifndef DG_REDUCE_H
#define DG_REDUCE_H

#include <stdbool.h>
#include <stdint.h>

struct dg_reduce_attrs {
    uint32_t axes;  /* bit i set: axis i reduced (after normalisation) */
    bool keepdims;
};

static inline const struct dg_reduce_attrs *reduce_attrs(const void *attrs) { return attrs; }

#endif
