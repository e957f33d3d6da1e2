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
#include "graph/shape.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No node has more inputs than this: a guard against counts that overflow the input array's
 * byte size, not a design limit (a 1,000-input concat or add_n is ordinary). */
#define DG_MAX_NODE_INPUTS (1 << 24)

/* The registry: enum dg_op_id { DG_OP_add, ... } generated from op_list.h. */
typedef enum dg_op_id {
#define DG_OP(name) DG_OP_##name,
#include "op_list.h"
#undef DG_OP
    DG_OP_COUNT
} dg_op_id;

/* A value as a kernel sees it: storage plus its (plan-time) shape. */
struct dg_tensor {
    void *data;
    struct dg_shape shape;
};

/* What a kernel may know about the run. */
struct dg_exec_ctx {
    int n_threads;          /* >= 1; pass to OpenMP's num_threads clause */
    /* The plan's one workspace: at least the bytes the op's workspace_bytes rule asked for
     * at the current shapes, 64-byte aligned, uninitialised, shared by every step (valid for
     * this call only). NULL with 0 bytes when no op of the plan asked for any. */
    void *workspace;
    size_t workspace_bytes;
};

struct dg_op_def;

/* What a backward rule is told by dg_grad (src/autodiff/): its own op definition and which
 * input gradients anybody uses. Built fresh for each node; rules read it through the helpers
 * below and never keep it. */
struct dg_grad_ctx {
    const struct dg_op_def *def;  /* the op whose rule runs */
    int n_inputs;
    const bool *needed;           /* needed[i]: input i lies on a path to a requested node;
                                     NULL: every gradient is needed */
};

/* Attributes: each op family defines its own attribute struct in its own file (or a family
 * header), states its size in `attrs_size`, and casts the `const void *attrs` its rules get.
 * The node holds a private copy made when it is built (zeroed when the constructor passes
 * NULL), so nodes with equal attributes compare equal byte for byte when the struct was
 * zeroed before being filled. A def with attrs_size 0 gets attrs == NULL. */

/* Infers the output type from the input types and the node's attributes. Pure: called when
 * the node is built and again whenever a plan's input shapes change. On error returns a status
 * and writes a message naming the op and the shapes into msg (see dg__shape_str). */
typedef dg_status (*dg_infer_fn)(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                 const struct dg_shape *inputs, struct dg_shape *out,
                                 char *msg, size_t msg_len);

/* Computes out from inputs. Never fails: shapes were checked by infer and memory was planned.
 * When the op is flagged can_inplace, out->data may equal inputs[0].data. */
typedef void (*dg_forward_fn)(const struct dg_op_def *def, const void *attrs, int n_inputs,
                              const struct dg_tensor *inputs, struct dg_tensor *out,
                              const struct dg_exec_ctx *ctx);

/* Appends nodes computing the gradient of each input from grad_output (same shape as node) to
 * the graph; stores them in grad_inputs[i] (n_inputs entries, NULL on entry), or leaves NULL
 * where input i gets no gradient (int32 inputs, shape-only inputs, inputs nobody needs, see
 * dg__grad_needed). Any failure sticks to the graph and returns its status. Use node inputs
 * through dg__input(node, i) and the node's own value through `node` itself (e.g. sigmoid's
 * backward uses its output); ctx->def is the op's own definition. */
typedef dg_status (*dg_backward_fn)(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                    dg_node *grad_output, dg_node **grad_inputs);

/* Which axes of the output may change when a plan changes its input shapes (bit i: axis i),
 * given the same for each input. Lets backward rules prove that an operand's gradient needs
 * no unbroadcasting whatever the batch (dg__unbroadcast_operand). Optional: without it every
 * output axis counts as changing as soon as any input axis does (always safe). */
typedef uint32_t (*dg_dynamic_axes_fn)(const struct dg_op_def *def, const void *attrs,
                                       int n_inputs, const struct dg_shape *inputs,
                                       const uint32_t *input_axes,
                                       const struct dg_shape *out);

/* Scratch memory the forward kernel needs at these shapes and this thread count, in bytes
 * (per-thread space included: the kernel splits it by omp_get_thread_num()). Optional (NULL:
 * none). Pure, like infer; the planner calls it whenever shapes change and sizes one workspace
 * per plan, the largest over its steps, so dg_run allocates nothing. */
typedef size_t (*dg_workspace_fn)(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                  const struct dg_shape *inputs, const struct dg_shape *out,
                                  int n_threads);

/* Writes extra text for the DOT label (axes, exponent, ...), e.g. "axes=[1]". Optional. */
typedef void (*dg_label_fn)(const struct dg_op_def *def, const void *attrs, char *buf,
                            size_t len);

struct dg_op_def {
    const char *name;
    int n_inputs;               /* -1: variadic (1 .. DG_MAX_NODE_INPUTS) */
    int variant;                /* which member of a family: families share one infer and one
                                   forward function and switch on this (enum of the family's
                                   file, or an offset into the SIMD table) */
    size_t attrs_size;          /* bytes of the family's attribute struct; 0: none */
    bool can_inplace;           /* output may overwrite input 0 when its last use is this op */
    uint32_t shape_only_inputs; /* bit i: input i is read for its shape only, never its data;
                                   bit 31 also stands for every input past 31 (variadic ops);
                                   ask dg__input_shape_only */
    dg_infer_fn infer;
    dg_forward_fn forward;
    /* The gradient rule. dg__zero_grad says "the gradient is zero by definition" (masks,
     * sign, int32 outputs); NULL says "no rule", and dg_grad through the op fails with
     * DG_ERR_NOT_DIFFERENTIABLE naming it. */
    dg_backward_fn backward;
    dg_label_fn label;
    dg_dynamic_axes_fn dynamic_axes;
    dg_workspace_fn workspace_bytes;
};

/* Whether input i of an op with this def is read for its shape only. */
static inline bool dg__input_shape_only(const struct dg_op_def *def, int i)
{
    return (def->shape_only_inputs >> (i < 31 ? i : 31)) & 1u;
}

/* The table, indexed by dg_op_id. */
const struct dg_op_def *dg__op_def(dg_op_id id);

#define DG_OP(name) extern const struct dg_op_def dg_op_##name;
#include "op_list.h"
#undef DG_OP

/* ---- Building nodes (implemented in src/graph/) ----------------------------------------- */

/* Creates an op node after checking inputs (NULL, graph, dtype) and inferring its shape.
 * The common entry for every public op constructor. */
dg_node *dg__make_node(dg_graph *g, dg_op_id op, int n_inputs, dg_node *const *inputs,
                       const void *attrs);
/* Sticks a formatted error to the graph (first error wins); returns NULL for chaining. */
dg_node *dg__fail(dg_graph *g, dg_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
dg_node *dg__input(const dg_node *node, int i);
/* The input or parameter named `name`, or NULL; unlike dg_graph_find, a miss is no error. */
dg_node *dg__find_name(const dg_graph *g, const char *name);
/* The same for an op given by its definition: the registry's, or one a test defines for
 * itself (an op with a deliberately wrong or missing gradient rule). def must outlive g. */
dg_node *dg__make_node_def(dg_graph *g, const struct dg_op_def *def, int n_inputs,
                           dg_node *const *inputs, const void *attrs);
/* The definition of an op node's op. */
const struct dg_op_def *dg__node_def(const dg_node *node);
/* For dg_grad (DOT labels): marks nodes first .. last of the graph that are not yet marked as
 * belonging to the backward pass of `grad_of`; dg__relabel_backward re-points one node. */
void dg__mark_backward(dg_graph *g, int first, const dg_node *grad_of);
void dg__relabel_backward(dg_node *node, const dg_node *grad_of);
/* The number of inputs of a node (0 for leaves and NULL). */
int dg__n_inputs(const dg_node *node);
/* The node's attribute blob (the family's struct), or NULL when its op has none. */
const void *dg__attrs(const dg_node *node);
const struct dg_shape *dg__node_shape(const dg_node *node);

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
/* A float32 node holding `value` everywhere, with x's shape at plan time (it follows the
 * batch): an expand_reduced of a scalar (reduce.c). dg_grad seeds the loss's gradient with
 * ones and gives unreached wrt nodes zeros through it. */
dg_node *dg__filled_like(dg_graph *g, dg_node *x, float value);
/* Axes of a node that may change with the plan's shapes (dg_dynamic_axes_fn). */
uint32_t dg__node_dynamic_axes(const dg_node *node);
/* dynamic_axes for ops whose output axes align on the right with every input's axes
 * (elementwise ops, with or without broadcasting, and same-shape ops like softmax). */
uint32_t dg__dynamic_elementwise(const struct dg_op_def *def, const void *attrs,
                                 int n_inputs, const struct dg_shape *inputs,
                                 const uint32_t *input_axes, const struct dg_shape *out);
/* Whether the rule should build input i's gradient: false when no requested gradient depends
 * on it. A rule may skip gradients nobody asked for; the compiled plan would prune them anyway,
 * but the graph and its DOT dump stay smaller. */
static inline bool dg__grad_needed(const struct dg_grad_ctx *ctx, int i)
{
    if (ctx == NULL || ctx->needed == NULL)
        return true;
    return i >= 0 && i < ctx->n_inputs && ctx->needed[i];
}
/* The explicit rule "the gradient is zero by definition" (comparison masks, sign, an op whose
 * output is int32 or piecewise constant): contributes nothing to any input, so dg_grad treats
 * the op's inputs as constants along this path (a wrt node reached by no other path gets a
 * zeros node). Not the same as no rule (backward == NULL), which is an error. */
dg_status dg__zero_grad(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                        dg_node *grad_output, dg_node **grad_inputs);

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

/* Chunk boundaries between threads fall on multiples of this many elements (whole cache lines
 * and whole vectors on every ISA path), so each element is computed by the same lane code
 * whichever thread gets it: results are bitwise identical for any thread count. */
#define DG_CHUNK_ALIGN 64

/* Works on elements [lo, hi) of a flat range; arg is the kernel's own. */
typedef void (*dg_chunk_fn)(void *arg, int64_t lo, int64_t hi);

/* The one split rule for flat elementwise work: calls fn on contiguous chunks covering
 * [0, n), one per thread (dg__threads_for(ctx, n) of them), each starting at a multiple of
 * DG_CHUNK_ALIGN. Runs fn(arg, 0, n) on the calling thread for small n. Empty chunks are not
 * called. */
void dg__parallel_chunks(const struct dg_exec_ctx *ctx, int64_t n, dg_chunk_fn fn, void *arg);

#endif /* DG_OP_H */
