/*
 * The op definition: the one narrow interface through which the graph, the planner and the
 * executor (src/graph/) and autodiff (src/autodiff/) reach the ops. An op is one
 * `const struct dg_op_def dg_op_<name>` in one file of src/ops/, listed once in op_list.h: its
 * shape rule, forward kernel, backward rule (built from public op constructors — it makes
 * graph nodes, never numbers), optional workspace rule and dump label, together. Each op node
 * carries its def; the registry table (dg__op_def) is looked up only when a node is built.
 *
 * What op files use beyond this (node builders, gradient and parallel helpers) is in op.h.
 */
#ifndef DG_OP_DEF_H
#define DG_OP_DEF_H

#include "dagrad.h"
#include "shape.h"

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

/* A run-time fault: a kernel found its input DATA invalid (an index out of range), which no
 * shape rule can see. The kernel never reads or writes out of bounds: it writes a defined
 * value in place of the invalid element (zeros for a gathered row), reports the fault with
 * dg__exec_fault (op.h), and the executor stops the run after that step with
 * DG_ERR_INVALID_ARG and the message, prefixed with the node, on the graph. The executor owns
 * it (one per dg_run); kernels only report through the helper. */
struct dg_exec_fault {
    int raised;     /* 0 until the first report; set atomically (first report wins) */
    char msg[256];  /* the first report's message */
};

/* What a kernel may know about the run. */
struct dg_exec_ctx {
    int n_threads;          /* >= 1; pass to OpenMP's num_threads clause */
    /* The plan's one workspace: at least the bytes the op's workspace_bytes rule asked for
     * at the current shapes, 64-byte aligned, uninitialised, shared by every step (valid for
     * this call only). NULL with 0 bytes when no op of the plan asked for any. */
    void *workspace;
    size_t workspace_bytes;
    /* Where a kernel reports invalid input data (dg__exec_fault); NULL: nobody listens (the
     * report is dropped, the kernel's defined fallback values stand). */
    struct dg_exec_fault *fault;
    /* The plan's collective (dg_plan_set_collective): sums n doubles element-wise across the
     * processes of a data-parallel job, in place, returning 0 on success. NULL: a single
     * process. Kernels that synchronise (batch_norm in training) call it from the calling
     * thread, outside their parallel regions, the same number of times with the same n on
     * every process, and report a nonzero return through dg__exec_fault. */
    dg_sum_fn collective;
    void *collective_user;
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
    bool view;                  /* output is input 0's elements in the same order under another
                                   shape: the planner aliases input 0's storage and runs no
                                   kernel (forward is NULL); see docs/architecture.md */
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

#endif /* DG_OP_DEF_H */
