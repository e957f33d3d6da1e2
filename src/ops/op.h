/*
 * The op interface: what every op file in src/ops/ provides, and the helpers they share.
 *
 * An op is one `const struct dg_op_def dg_op_<name>` in one file, listed once in op_list.h.
 * It holds the op's shape rule, its forward kernel, its backward rule (built from public op
 * constructors — it makes graph nodes, never numbers) and its dump label, together.
 */
#ifndef DG_OP_H
#define DG_OP_H

#include "dagrad.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ops with a variable number of inputs (concat) take at most this many. */
#define DG_MAX_INPUTS 16

/* No tensor has more elements than this (4 TiB of floats): every element count, and every
 * byte count derived from one, then fits int64_t and size_t with room to spare. */
#define DG_MAX_NUMEL ((int64_t)1 << 40)

/* The registry: enum dg_op_id { DG_OP_add, ... } generated from op_list.h. */
typedef enum dg_op_id {
#define DG_OP(name) DG_OP_##name,
#include "op_list.h"
#undef DG_OP
    DG_OP_COUNT
} dg_op_id;

/* dtype and shape of one value. */
struct dg_shape {
    dg_dtype dtype;
    int ndim;
    int64_t dim[DG_MAX_DIMS];
};

/* Per-op attributes: each op reads only its own member (named after the op family). */
union dg_attrs {
    struct { float value; } scalar;          /* pow_scalar exponent, leaky slope, scale, add_scalar */
    struct {                                 /* sum, mean, max, expand_reduced */
        uint32_t axes;                        /* bit i set: axis i reduced (after normalisation) */
        bool keepdims;
    } reduce;
    struct { bool transpose_a, transpose_b; } matmul;
    struct { int ndim; int64_t dim[DG_MAX_DIMS]; } reshape;   /* may hold one -1 */
    struct { int ndim; int perm[DG_MAX_DIMS]; } permute;
    struct { int ndim; int64_t dim[DG_MAX_DIMS]; } broadcast;
    /* slice, pad_slice: start/end normalised at build time, except negative values on axis 0
     * (which follows the batch): infer normalises those; 0 <= start < end afterwards. */
    struct { int axis; int64_t start, end; } slice;
    struct { int axis; } axis;               /* concat, concat_slice, concat_pad, softmax,
                                                log_softmax */
    struct { float delta; } huber;
    struct { float p; uint64_t salt; } dropout;   /* salt: per-node mask stream */
};

/* A value as a kernel sees it: storage plus its (plan-time) shape. */
struct dg_tensor {
    void *data;
    struct dg_shape shape;
};

/* What a kernel may know about the run. */
struct dg_exec_ctx {
    int n_threads; /* >= 1; pass to OpenMP's num_threads clause */
};

/* Infers the output type from the input types and the node's attributes. Pure: called when
 * the node is built and again whenever a plan's input shapes change. On error returns a status
 * and writes a message naming the op and the shapes into msg (see dg__shape_str). */
typedef dg_status (*dg_infer_fn)(const union dg_attrs *attrs, int n_inputs,
                                 const struct dg_shape *inputs, struct dg_shape *out,
                                 char *msg, size_t msg_len);

/* Computes out from inputs. Never fails: shapes were checked by infer and memory was planned.
 * When the op is flagged can_inplace, out->data may equal inputs[0].data. */
typedef void (*dg_forward_fn)(const union dg_attrs *attrs, int n_inputs,
                              const struct dg_tensor *inputs, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx);

/* Appends nodes computing the gradient of each input from grad_output (same shape as node) to
 * the graph; stores them in grad_inputs[i], or NULL where input i gets no gradient (int32
 * inputs, shape-only inputs). Returns NULL-safe: any failure sticks to the graph and returns
 * its status. Use node inputs through dg__input(node, i) and the node's own value through
 * `node` itself (e.g. sigmoid's backward uses its output). */
typedef dg_status (*dg_backward_fn)(dg_graph *g, dg_node *node, dg_node *grad_output,
                                    dg_node **grad_inputs);

/* Which axes of the output may change when a plan changes its input shapes (bit i: axis i),
 * given the same for each input. Lets backward rules prove that an operand's gradient needs
 * no unbroadcasting whatever the batch (dg__unbroadcast_operand). Optional: without it every
 * output axis counts as changing as soon as any input axis does (always safe). */
typedef uint32_t (*dg_dynamic_axes_fn)(const union dg_attrs *attrs, int n_inputs,
                                       const struct dg_shape *inputs,
                                       const uint32_t *input_axes,
                                       const struct dg_shape *out);

/* Writes extra text for the DOT label (axes, exponent, ...), e.g. "axes=[1]". Optional. */
typedef void (*dg_label_fn)(const union dg_attrs *attrs, char *buf, size_t len);

struct dg_op_def {
    const char *name;
    int n_inputs;               /* -1: variadic (1 .. DG_MAX_INPUTS) */
    bool can_inplace;           /* output may overwrite input 0 when its last use is this op */
    bool view;                  /* output is input 0's elements in the same order under another
                                   shape: the planner aliases input 0's storage and runs no
                                   kernel (forward is NULL); see docs/architecture.md */
    uint32_t shape_only_inputs; /* bit i: input i is read for its shape only, never its data */
    bool not_differentiable;    /* explicit: backward is NULL on purpose (comparison masks) */
    dg_infer_fn infer;
    dg_forward_fn forward;
    dg_backward_fn backward;
    dg_label_fn label;
    dg_dynamic_axes_fn dynamic_axes;
};

/* The table, indexed by dg_op_id. */
const struct dg_op_def *dg__op_def(dg_op_id id);

#define DG_OP(name) extern const struct dg_op_def dg_op_##name;
#include "op_list.h"
#undef DG_OP

/* ---- Building nodes (implemented in src/graph/) ----------------------------------------- */

/* Creates an op node after checking inputs (NULL, graph, dtype) and inferring its shape.
 * The common entry for every public op constructor. */
dg_node *dg__make_node(dg_graph *g, dg_op_id op, int n_inputs, dg_node *const *inputs,
                       const union dg_attrs *attrs);
/* Sticks a formatted error to the graph (first error wins); returns NULL for chaining. */
dg_node *dg__fail(dg_graph *g, dg_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
dg_node *dg__input(const dg_node *node, int i);
/* The input or parameter named `name`, or NULL; unlike dg_graph_find, a miss is no error. */
dg_node *dg__find_name(const dg_graph *g, const char *name);
/* Inside a backward rule: whether dg_grad uses the gradient of input i (the input lies on a
 * path from a requested node). A rule may skip building gradients nobody asked for — the
 * compiled plan would prune them anyway, but the graph and its DOT dump stay smaller. True
 * outside dg_grad. */
bool dg__grad_needed(const dg_node *node, int i);
const union dg_attrs *dg__attrs(const dg_node *node);
const struct dg_shape *dg__node_shape(const dg_node *node);

/* ---- Shape helpers (src/ops/shape_util.c) ---------------------------------------------- */

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

/* ---- Layout helpers (src/ops/reshape.c) ----------------------------------------------- */

/* memcpy of n 4-byte elements, split across threads for large tensors; no-op when dst == src. */
void dg__layout_copy(void *dst, const void *src, int64_t n, const struct dg_exec_ctx *ctx);

/* ---- Gradient helpers for backward rules (src/ops/grad_util.c) ------------------------ */

/* Sums grad over the axes along which `like` was broadcast to produce grad's shape, so that
 * the result has like's shape (the backward of broadcasting): a sum_to node, which follows
 * plan-time shapes. Returns grad itself only when the shapes are equal and stay equal at any
 * batch: no size-1 axis in like, and no axis of like that changes with the plan's shapes. */
dg_node *dg__unbroadcast(dg_graph *g, dg_node *grad, dg_node *like);
/* The same for operand k of a broadcasting elementwise op `node` (grad has node's shape), with
 * a sharper proof: like's changing axes are harmless where every other operand has size 1
 * (a bias [N] added to activations [B,N] needs no sum_to for the activations' gradient). */
dg_node *dg__unbroadcast_operand(dg_graph *g, dg_node *grad, dg_node *node, int k);
/* Axes of a node that may change with the plan's shapes (dg_dynamic_axes_fn). */
uint32_t dg__node_dynamic_axes(const dg_node *node);
/* dynamic_axes for ops whose output axes align on the right with every input's axes
 * (elementwise ops, with or without broadcasting, and same-shape ops like softmax). */
uint32_t dg__dynamic_elementwise(const union dg_attrs *attrs, int n_inputs,
                                 const struct dg_shape *inputs, const uint32_t *input_axes,
                                 const struct dg_shape *out);

/* ---- Parallel helpers ----------------------------------------------------------------- */

/* Below this many elements of elementwise work a kernel runs on the calling thread only, so
 * tiny tensors never pay for waking a team. */
#define DG_PARALLEL_MIN_ELEMS 32768

/* The number of threads worth using for `work` units of elementwise work. */
static inline int dg__threads_for(const struct dg_exec_ctx *ctx, int64_t work)
{
    if (work < DG_PARALLEL_MIN_ELEMS || ctx->n_threads <= 1)
        return 1;
    int64_t useful = work / (DG_PARALLEL_MIN_ELEMS / 2);
    return useful < ctx->n_threads ? (int)useful : ctx->n_threads;
}

#endif /* DG_OP_H */
