/* Shape helpers (shape.h): the lowest layer, used by the graph, the planner and the ops. */
#include "shape.h"

#include <stdarg.h>
#include <stdio.h>

const char *dg__shape_str(const struct dg_shape *s, char *buf, size_t len)
{
    size_t used = 0;
    used += (size_t)snprintf(buf + used, len - used, "[");
    for (int i = 0; i < s->ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ",%lld" : "%lld",
                                 (long long)s->dim[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

int64_t dg__numel(const struct dg_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dim[i];
    return n;
}

bool dg__shape_fits(const struct dg_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dim[i] < 0 || __builtin_mul_overflow(n, s->dim[i], &n) || n > DG_MAX_NUMEL)
            return false;
    }
    return true;
}

bool dg__broadcast_shapes(const struct dg_shape *a, const struct dg_shape *b,
                          struct dg_shape *out)
{
    int ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    out->ndim = ndim;
    out->dtype = a->dtype;
    for (int i = 0; i < ndim; i++) {
        int ia = i - (ndim - a->ndim), ib = i - (ndim - b->ndim);
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return false;
        out->dim[i] = da == 1 ? db : da;
    }
    return true;
}

bool dg__normalize_axis(int axis, int ndim, int *out)
{
    if (axis < -ndim || axis >= ndim)
        return false;
    *out = axis < 0 ? axis + ndim : axis;
    return true;
}

dg_status dg__shape_error(char *msg, size_t len, dg_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(msg, len, fmt, args);
    va_end(args);
    return status;
}

void dg__strides(const struct dg_shape *s, int64_t *strides)
{
    int64_t stride = 1;
    for (int i = s->ndim - 1; i >= 0; i--) {
        strides[i] = stride;
        stride *= s->dim[i];
    }
}

void dg__axis_split(const struct dg_shape *s, int axis, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= s->dim[i];
    for (int i = axis + 1; i < s->ndim; i++)
        *inner *= s->dim[i];
}
