/*
 * What every op file in src/ops/ uses: the op definition (op_def.h), node building and node
 * accessors (implemented in src/graph/), and the helpers the families share: layout copies,
 * gradient helpers, the parallel-chunks helper.
 */
#ifndef DG_OP_H
#define DG_OP_H

#include "op_def.h"

#include <stdarg.h>

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
/* A composed backward rule for a fused gradient op (batch_norm_grad, layer_norm_grad, ...):
 * replaces each input i whose gradient is wanted (and whose bit in `skip` is clear) by a fresh
 * proxy (x 1), so that what follows are partial derivatives, not total ones (an input may
 * also reach the upstream gradient elsewhere) while the proxies still depend on the originals
 * for higher orders; builds formula(g, node, in, user) from ordinary ops on the proxies,
 * contracts it with the upstream gradient and writes dg_grad of that scalar with respect to
 * the proxies into gin. At most DG__COMPOSED_MAX_INPUTS inputs. */
#define DG__COMPOSED_MAX_INPUTS 8
typedef dg_node *(*dg__formula_fn)(dg_graph *g, dg_node *node, dg_node *const *in, void *user);
dg_status dg__composed_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                dg_node *upstream, dg_node **gin, uint32_t skip,
                                dg__formula_fn formula, void *user);
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

/* ---- Run-time faults (src/ops/parallel.c) --------------------------------------------- */

/* Reports that the kernel's input data is invalid (see struct dg_exec_fault): the first report
 * of a run wins (safe from any thread), later ones are dropped. The message starts with the
 * op's name and says which value is wrong ("embedding: index 12 at position 3 is outside
 * [0, 10)"). The kernel then finishes with defined values; the run stops after its step. */
void dg__exec_fault(const struct dg_exec_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* DG_OP_H */
