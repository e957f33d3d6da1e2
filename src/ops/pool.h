/*
 * The pooling family's attributes (pool.c); tests build its internal ops with them.
 */
#ifndef DG_POOL_H
#define DG_POOL_H

#include "op.h"

/* kernel, stride, padding and dilation per axis ([0] rows, [1] columns); out_size for the
 * adaptive ops only; dilation is 1 and count_include_pad 0 for the ops it does not apply to. */
struct dg__pool_attrs {
    int64_t kernel[2], stride[2], padding[2], dilation[2];
    int64_t out_size[2];
    int32_t ceil_mode, count_include_pad;
};

#endif
