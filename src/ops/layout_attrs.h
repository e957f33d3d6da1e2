/*
 * Attributes shared by the layout files: an axis (concat in concat.c; concat_slice and
 * concat_pad, its backward pieces, in slice.c) and a range along an axis (slice, pad_slice).
 */
#ifndef DG_LAYOUT_ATTRS_H
#define DG_LAYOUT_ATTRS_H

#include <stdint.h>

struct dg_axis_attrs {
    int axis; /* normalised at build time: 0 <= axis < ndim */
};

/* start/end normalised at build time, except negative values on axis 0 (which follows the
 * batch): infer normalises those; 0 <= start < end afterwards. */
struct dg_slice_attrs {
    int axis;
    int64_t start, end;
};

static inline const struct dg_axis_attrs *axis_attrs(const void *attrs) { return attrs; }
static inline const struct dg_slice_attrs *slice_attrs(const void *attrs) { return attrs; }

#endif
