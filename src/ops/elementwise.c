#include "elementwise.h"

#include <string.h>

void dg__bcast_init(struct dg_bcast *it, const struct dg_shape *out, int n_inputs,
                    const struct dg_shape *const *inputs)
{
    memset(it, 0, sizeof *it);
    int64_t dim[DG_MAX_DIMS], stride[2][DG_MAX_DIMS];
    int nd = out->ndim;
    for (int k = 0; k < 2; k++) {
        const struct dg_shape *in = inputs[k < n_inputs ? k : 0];
        int64_t s = 1;
        for (int i = nd - 1; i >= 0; i--) {
            int j = i - (nd - in->ndim);
            int64_t d = j >= 0 ? in->dim[j] : 1;
            stride[k][i] = (d == 1 && out->dim[i] != 1) ? 0 : s;
            s *= d;
        }
    }
    for (int i = 0; i < nd; i++)
        dim[i] = out->dim[i];
    /* Merge axis i into the axis before it when every input steps through both alike. */
    int m = 0;
    for (int i = 0; i < nd; i++) {
        if (dim[i] == 1)
            continue; /* size-1 axes change no offset */
        bool merge = m > 0;
        for (int k = 0; k < 2 && merge; k++)
            merge = it->stride[k][m - 1] == stride[k][i] * dim[i];
        if (merge) {
            it->dim[m - 1] *= dim[i];
            for (int k = 0; k < 2; k++)
                it->stride[k][m - 1] = stride[k][i];
        } else {
            it->dim[m] = dim[i];
            for (int k = 0; k < 2; k++)
                it->stride[k][m] = stride[k][i];
            m++;
        }
    }
    if (m == 0) {
        it->dim[0] = 1;
        it->stride[0][0] = it->stride[1][0] = 1;
        m = 1;
    }
    it->ndim = m;
    it->row_len = it->dim[m - 1];
    it->rows = 1;
    for (int i = 0; i < m - 1; i++)
        it->rows *= it->dim[i];
}

void dg__bcast_row(const struct dg_bcast *it, int64_t row, int64_t offset[2])
{
    offset[0] = offset[1] = 0;
    for (int i = it->ndim - 2; i >= 0; i--) {
        int64_t idx = row % it->dim[i];
        row /= it->dim[i];
        offset[0] += idx * it->stride[0][i];
        offset[1] += idx * it->stride[1][i];
    }
}
