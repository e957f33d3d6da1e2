/*
 * Shapes: the lowest layer, beside the graph. The graph, the planner, the executor and the op
 * families all use these; nothing here knows about ops.
 */
#ifndef DG_SHAPE_H
#define DG_SHAPE_H

#include "dagrad.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No tensor has more elements than this (4 TiB of floats): every element count, and every
 * byte count derived from one, then fits int64_t and size_t with room to spare. */
#define DG_MAX_NUMEL ((int64_t)1 << 40)

/* dtype and shape of one value. */
struct dg_shape {
    dg_dtype dtype;
    int ndim;
    int64_t dim[DG_MAX_DIMS];
};

/* "[128,784]" into buf; returns buf. */
const char *dg__shape_str(const struct dg_shape *s, char *buf, size_t len);
int64_t dg__numel(const struct dg_shape *s);
/* Whether s has no negative dimension and at most DG_MAX_NUMEL elements (checked without
 * overflow). Shape rules compute shapes from user numbers (broadcast_to targets, batch sizes),
 * so every inferred shape goes through this before it is used. */
bool dg__shape_fits(const struct dg_shape *s);
/* Numpy broadcast of a and b into out; false when they do not broadcast. */
bool dg__broadcast_shapes(const struct dg_shape *a, const struct dg_shape *b,
                          struct dg_shape *out);
/* Normalises an axis (negative counts from the end); false when out of range. */
bool dg__normalize_axis(int axis, int ndim, int *out);
/* Writes a message "op: ..." into msg; returns status. */
dg_status dg__shape_error(char *msg, size_t len, dg_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Row-major strides of a shape (in elements). */
void dg__strides(const struct dg_shape *s, int64_t *strides);
/* The elements before and after `axis` (0 <= axis < ndim): s viewed as [outer, dim[axis],
 * inner], the layout of every op that works along one axis (softmax, argmax, ...). */
void dg__axis_split(const struct dg_shape *s, int axis, int64_t *outer, int64_t *inner);

#endif /* DG_SHAPE_H */
