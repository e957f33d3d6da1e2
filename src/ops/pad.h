/*
 * The padding family's attributes (pad.c); tests build its internal op with them.
 */
#ifndef DG_PAD_H
#define DG_PAD_H

#include "op.h"

struct dg__pad_attrs {
    int64_t top, bottom, left, right; /* pad2d, pad2d_grad */
    int64_t scale[2];                 /* upsample_nearest2d */
    int32_t reflect;                  /* 0: constant */
    float value;                      /* constant mode's value (0 for reflect) */
};

#endif
