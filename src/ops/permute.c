/*
 * permute(x; perm): out axis i is x axis perm[i]; out[i_0, .., i_n-1] = x[j] with
 * j[perm[i]] = i_i. dg_transpose swaps the last two axes (a permute).
 * Backward: dx = permute(grad, inverse(perm)), inverse[perm[i]] = i.
 *
 * Kernel: the permutation is first simplified (size-1 axes dropped, input axes that stay
 * adjacent and in order merged), then
 *   - identity: one contiguous copy;
 *   - last axis kept: rows of contiguous elements copied with memcpy;
 *   - the last two (merged) axes swapped: a cache-tiled 32x32 transpose per matrix;
 *   - otherwise: a strided gather along each output row.
 * Every output element is written by exactly one thread, so results never depend on the
 * thread count.
 */
#include "op.h"

#include <stdio.h>
#include <string.h>

struct permute_attrs {
    int ndim;
    int perm[DG_MAX_DIMS];
};

static inline const struct permute_attrs *permute_attrs(const void *attrs) { return attrs; }

enum { TILE = 32 };

/* Whether perm[0..ndim-1] holds each of 0..ndim-1 once. */
static bool is_permutation(int ndim, const int *perm)
{
    bool seen[DG_MAX_DIMS] = {false};
    if (ndim < 0 || ndim > DG_MAX_DIMS)
        return false;
    for (int i = 0; i < ndim; i++) {
        if (perm[i] < 0 || perm[i] >= ndim || seen[perm[i]])
            return false;
        seen[perm[i]] = true;
    }
    return true;
}

/* "[0,0,1]" into buf. */
static const char *perm_str(int ndim, const int *perm, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ",%d" : "%d", perm[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

static dg_status permute_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                               const struct dg_shape *in, struct dg_shape *out, char *msg,
                               size_t len)
{
    char sx[128], sp[128];
    int ndim = permute_attrs(attrs)->ndim;
    const int *perm = permute_attrs(attrs)->perm;
    if (ndim != in[0].ndim || !is_permutation(ndim, perm))
        return dg__shape_error(msg, len, DG_ERR_SHAPE, "permute: %s is not a permutation of "
                               "the %d axes of %s", perm_str(ndim, perm, sp, sizeof sp),
                               in[0].ndim, dg__shape_str(&in[0], sx, sizeof sx));
    *out = in[0];
    for (int i = 0; i < ndim; i++)
        out->dim[i] = in[0].dim[perm[i]];
    return DG_OK;
}

/* A permutation reduced to its essentials: out axis i has size dim[i] and stride
 * in_stride[i] in the input. */
struct plan {
    int ndim;
    int64_t dim[DG_MAX_DIMS];
    int64_t in_stride[DG_MAX_DIMS];
};

static void simplify(const struct dg_shape *in, const int *perm, struct plan *p)
{
    int64_t strides[DG_MAX_DIMS];
    dg__strides(in, strides);
    p->ndim = 0;
    for (int i = 0; i < in->ndim; i++) {
        int axis = perm[i];
        if (in->dim[axis] == 1)
            continue;
        int last = p->ndim - 1;
        /* Merge with the previous output axis when it is the input axis just before this one
         * (its stride is this axis's extent times this stride). */
        if (last >= 0 && p->in_stride[last] == strides[axis] * in->dim[axis]) {
            p->dim[last] *= in->dim[axis];
            p->in_stride[last] = strides[axis];
            continue;
        }
        p->dim[p->ndim] = in->dim[axis];
        p->in_stride[p->ndim] = strides[axis];
        p->ndim++;
    }
}

/* Transposes `count` row-major [rows, cols] matrices into [cols, rows], tile by tile. */
static void transpose_tiled(const uint32_t *x, uint32_t *out, int64_t count, int64_t rows,
                            int64_t cols, const struct dg_exec_ctx *ctx)
{
    int64_t tiles_r = (rows + TILE - 1) / TILE, tiles_c = (cols + TILE - 1) / TILE;
    int64_t n_tiles = count * tiles_r * tiles_c;
    int threads = dg__threads_for(ctx, count * rows * cols);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t t = 0; t < n_tiles; t++) {
        int64_t mat = t / (tiles_r * tiles_c), rem = t % (tiles_r * tiles_c);
        int64_t r0 = (rem / tiles_c) * TILE, c0 = (rem % tiles_c) * TILE;
        int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
        int64_t c1 = c0 + TILE < cols ? c0 + TILE : cols;
        const uint32_t *src = x + mat * rows * cols;
        uint32_t *dst = out + mat * rows * cols;
        for (int64_t c = c0; c < c1; c++)
            for (int64_t r = r0; r < r1; r++)
                dst[c * rows + r] = src[r * cols + c];
    }
}

/* out = x permuted; 4-byte elements of any type. */
static void permute_copy(const struct plan *p, const uint32_t *x, uint32_t *out,
                         const struct dg_exec_ctx *ctx)
{
    int n = p->ndim;
    int64_t row_len = p->dim[n - 1], row_stride = p->in_stride[n - 1], rows = 1;
    for (int i = 0; i < n - 1; i++)
        rows *= p->dim[i];
    int threads = dg__threads_for(ctx, rows * row_len);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t offset = 0, index = r;
        for (int i = n - 2; i >= 0; i--) {
            offset += (index % p->dim[i]) * p->in_stride[i];
            index /= p->dim[i];
        }
        const uint32_t *src = x + offset;
        uint32_t *dst = out + r * row_len;
        if (row_stride == 1)
            memcpy(dst, src, (size_t)row_len * 4);
        else
            for (int64_t j = 0; j < row_len; j++)
                dst[j] = src[j * row_stride];
    }
}

static void permute_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_tensor *in, struct dg_tensor *out,
                            const struct dg_exec_ctx *ctx)
{
    struct plan p;
    simplify(&in[0].shape, permute_attrs(attrs)->perm, &p);
    int n = p.ndim;
    if (n <= 1) { /* at most one axis of size > 1: the order is unchanged */
        dg__layout_copy(out->data, in[0].data, dg__numel(&out->shape), ctx);
        return;
    }
    /* [R, C] -> [C, R], or [B, R, C] -> [B, C, R] with the batch outermost in the input too:
     * the input matrices are [dim[n-1], dim[n-2]], contiguous one after the other. */
    bool swaps_last_two = p.in_stride[n - 2] == 1 && p.in_stride[n - 1] == p.dim[n - 2];
    bool batch_outer = n == 2 || (n == 3 && p.in_stride[0] == p.dim[1] * p.dim[2]);
    if (swaps_last_two && batch_outer) {
        transpose_tiled(in[0].data, out->data, n == 3 ? p.dim[0] : 1, p.dim[n - 1],
                        p.dim[n - 2], ctx);
        return;
    }
    permute_copy(&p, in[0].data, out->data, ctx);
}

/* dx = permute(grad, inverse(perm)) */
static dg_status permute_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                  dg_node *grad, dg_node **gin)
{
    const void *attrs = dg__attrs(node);
    if (dg_node_dtype(dg__input(node, 0)) != DG_F32)
        return DG_OK;
    int inverse[DG_MAX_DIMS];
    for (int i = 0; i < permute_attrs(attrs)->ndim; i++)
        inverse[permute_attrs(attrs)->perm[i]] = i;
    gin[0] = dg_permute(g, grad, permute_attrs(attrs)->ndim, inverse);
    return dg_graph_status(g);
}

static void permute_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    char sp[64];
    const struct permute_attrs *a = permute_attrs(attrs);
    snprintf(buf, len, "perm=%s", perm_str(a->ndim, a->perm, sp, sizeof sp));
}

const struct dg_op_def dg_op_permute = {
    .name = "permute", .attrs_size = sizeof(struct permute_attrs), .n_inputs = 1,
    .infer = permute_infer, .forward = permute_forward, .backward = permute_backward,
    .label = permute_label,
};

dg_node *dg_permute(dg_graph *g, dg_node *x, int ndim, const int *perm)
{
    if (g == NULL)
        return NULL;
    if (x == NULL || dg_graph_status(g) != DG_OK)
        return dg__make_node(g, DG_OP_permute, 1, &x, NULL);
    char sp[64];
    if (ndim < 0 || ndim > DG_MAX_DIMS)
        return dg__fail(g, DG_ERR_INVALID_ARG, "permute: %d axes (0..%d allowed)", ndim,
                        DG_MAX_DIMS);
    if (ndim > 0 && perm == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "permute: perm is NULL");
    if (!is_permutation(ndim, perm))
        return dg__fail(g, DG_ERR_INVALID_ARG, "permute: %s is not a permutation of %d axes",
                        perm_str(ndim, perm, sp, sizeof sp), ndim);
    struct permute_attrs attrs = {.ndim = ndim};
    for (int i = 0; i < ndim; i++)
        attrs.perm[i] = perm[i];
    return dg__make_node(g, DG_OP_permute, 1, &x, &attrs);
}

dg_node *dg_transpose(dg_graph *g, dg_node *x)
{
    if (g == NULL)
        return NULL;
    if (x == NULL || dg_graph_status(g) != DG_OK)
        return dg__make_node(g, DG_OP_permute, 1, &x, NULL);
    int ndim = dg_node_ndim(x);
    if (ndim < 2) {
        char sx[128];
        return dg__fail(g, DG_ERR_SHAPE, "transpose: input %s needs at least 2 dimensions",
                        dg__shape_str(dg__node_shape(x), sx, sizeof sx));
    }
    int perm[DG_MAX_DIMS];
    for (int i = 0; i < ndim; i++)
        perm[i] = i;
    perm[ndim - 2] = ndim - 1;
    perm[ndim - 1] = ndim - 2;
    return dg_permute(g, x, ndim, perm);
}
