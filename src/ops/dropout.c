/*
 * dropout(x, key; p, salt): inverted dropout with a counter-based random mask.
 *
 *   training (key[2] != 0): out[i] = keep(i) ? x[i] / (1 - p) : 0,
 *                           keep(i) = u(key[0], key[1], salt, i) >= p
 *   evaluation (key[2] == 0): out = x
 *
 * key is an int32 [3] input: {seed, step, training}. The mask is a pure function of the seed,
 * the step, the layer's salt and the element index (a splitmix64-style hash), so it needs no
 * RNG state, is the same whatever the thread count, and the backward pass regenerates it:
 * d/dx = dropout(grad, key) with the same attributes. The key gets no gradient.
 */
#include "op.h"
#include "simd/dropout_hash.h"
#include "simd/vmath.h"

#include <stdio.h>
#include <string.h>

struct dropout_attrs {
    float p;
    uint64_t salt; /* per-node mask stream */
};

static inline const struct dropout_attrs *dropout_attrs(const void *attrs) { return attrs; }

#define DROPOUT_CHUNK 8192 /* elements per task; the mask does not depend on it */

static dg_status dropout_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                               const struct dg_shape *in, struct dg_shape *out, char *msg,
                               size_t len)
{
    char buf[128];
    if (in[0].dtype != DG_F32)
        return dg__shape_error(msg, len, DG_ERR_DTYPE, "dropout: input must be float32");
    if (in[1].dtype != DG_I32 || in[1].ndim != 1 || in[1].dim[0] != 3)
        return dg__shape_error(msg, len, in[1].dtype != DG_I32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                               "dropout: key must be int32 [3] "
                               "{seed, step, training}, got %s%s",
                               in[1].dtype == DG_I32 ? "int32 " : "float32 ",
                               dg__shape_str(&in[1], buf, sizeof buf));
    *out = in[0];
    return DG_OK;
}

static void dropout_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_tensor *in, struct dg_tensor *out,
                            const struct dg_exec_ctx *ctx)
{
    const float *x = in[0].data;
    const int32_t *key = in[1].data;
    float *o = out->data;
    int64_t n = dg__numel(&out->shape);
    float p = dropout_attrs(attrs)->p;
    if (key[2] == 0 || p == 0.0f) {
        if (o != x)
            memcpy(o, x, (size_t)n * sizeof *o);
        return;
    }
    uint64_t base = dg__dropout_mix64(((uint64_t)(uint32_t)key[0] << 32 | (uint32_t)key[1]) ^
                                      dg__dropout_mix64(dropout_attrs(attrs)->salt +
                                                        DG_DROPOUT_GOLDEN));
    /* Compare 24-bit integers: keep when u >= p, u uniform on [0, 1) in steps of 2^-24. */
    uint32_t threshold = (uint32_t)((double)p * 16777216.0);
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    int threads = dg__threads_for(ctx, n);
    const struct dg_vmath *vm = dg__vmath();
    int64_t chunks = (n + DROPOUT_CHUNK - 1) / DROPOUT_CHUNK;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i = c * DROPOUT_CHUNK, len = n - i < DROPOUT_CHUNK ? n - i : DROPOUT_CHUNK;
        vm->dropout(base, i, threshold, scale, x + i, o + i, len);
    }
}

/* The output follows x alone; the [3] key is not aligned with x's axes. */
static uint32_t dropout_dynamic_axes(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                     const struct dg_shape *in, const uint32_t *input_axes,
                                     const struct dg_shape *out)
{
    return input_axes[0];
}

/* The mask is regenerated from the same key: d/dx = mask * g / (1 - p). */
static dg_status dropout_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                  dg_node *grad, dg_node **gin)
{
    gin[0] = dg__make_node(g, DG_OP_dropout, 2, (dg_node *[]){grad, dg__input(node, 1)},
                           dg__attrs(node));
    return dg_graph_status(g);
}

static void dropout_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    snprintf(buf, len, "p=%g", dropout_attrs(attrs)->p);
}

const struct dg_op_def dg_op_dropout = {
    .dynamic_axes = dropout_dynamic_axes,
    .name = "dropout", .attrs_size = sizeof(struct dropout_attrs), .n_inputs = 2,
    .can_inplace = true,
    .infer = dropout_infer, .forward = dropout_forward, .backward = dropout_backward,
    .label = dropout_label,
};

dg_node *dg_dropout(dg_graph *g, dg_node *x, dg_node *key, float p)
{
    if (dg_graph_status(g) == DG_OK && !(p >= 0.0f && p <= 1.0f))
        return dg__fail(g, DG_ERR_INVALID_ARG, "dropout: p = %g is outside [0, 1]", (double)p);
    struct dropout_attrs attrs;
    memset(&attrs, 0, sizeof attrs); /* padding too: equal attributes, equal bytes */
    attrs.p = p;
    /* Each dropout node draws its own stream: salt it with the index it will get. */
    attrs.salt = (uint64_t)dg_graph_node_count(g);
    return dg__make_node(g, DG_OP_dropout, 2, (dg_node *[]){x, key}, &attrs);
}

dg_node *dg_dropout_key(dg_graph *g)
{
    dg_node *key = dg__find_name(g, DG_DROPOUT_KEY_NAME);
    if (key != NULL) {
        /* A user's own node may carry the name: only an int32 [3] input is a key. */
        if (dg_node_kind_of(key) != DG_NODE_INPUT || dg_node_dtype(key) != DG_I32 ||
            dg_node_ndim(key) != 1 || dg_node_dim(key, 0) != 3)
            return dg__fail(g, dg_node_dtype(key) != DG_I32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                            "dropout_key: the graph's node named '%s' (node %d, a %s %s) is "
                            "not an int32 [3] input", DG_DROPOUT_KEY_NAME, dg_node_index(key),
                            dg_node_dtype(key) == DG_I32 ? "int32" : "float32",
                            dg_node_op_name(key));
        return key;
    }
    return dg_input_static(g, DG_DROPOUT_KEY_NAME, DG_I32, 1, (int64_t[]){3});
}
