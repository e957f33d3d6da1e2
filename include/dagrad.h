/*
 * dagrad — reverse-mode automatic differentiation over static computational graphs.
 *
 * The whole public surface. A program builds a graph of tensor ops, optionally appends the
 * backward pass with dg_grad(), compiles the nodes it wants into a plan, and runs that plan many
 * times. Everything a user touches is an opaque handle plus accessors.
 *
 * Error model (see docs/errors.md):
 *   - Builders return a node, or NULL on error. The first error sticks to the graph until
 *     dg_graph_clear_error(), so a chain of builder calls can be checked once at the end.
 *     A NULL input to a builder is passed through silently when the graph already holds an
 *     error, and is reported ("add: input 1 is NULL") when it does not.
 *   - Calls that do work return a dg_status; dg_graph_error() gives the message, which names
 *     the op and the shapes involved.
 *   - Nothing in the library aborts or exits on user input or on allocation failure.
 */
#ifndef DAGRAD_H
#define DAGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DG_BUILDING_LIBRARY) && defined(__GNUC__)
#define DG_API __attribute__((visibility("default")))
#else
#define DG_API
#endif

#define DG_VERSION_MAJOR 0
#define DG_VERSION_MINOR 1
#define DG_VERSION_PATCH 0

/* Tensors have at most this many dimensions. */
#define DG_MAX_DIMS 8

typedef struct dg_graph dg_graph; /* owns nodes, shapes, parameter storage */
typedef struct dg_node dg_node;   /* one value in the graph; owned by its graph */
typedef struct dg_plan dg_plan;   /* a compiled schedule plus its memory arena */

typedef enum dg_status {
    DG_OK = 0,
    DG_ERR_INVALID_ARG,     /* NULL pointer, bad count, bad name, bad axis, value out of range */
    DG_ERR_SHAPE,           /* shapes that do not fit the op */
    DG_ERR_DTYPE,           /* int32 where float32 is needed, or the reverse */
    DG_ERR_NOMEM,           /* an allocation failed */
    DG_ERR_STATE,           /* call out of order: running before every input is fed, running a
                               plan whose shapes failed to re-infer */
    DG_ERR_FOREIGN_NODE,    /* a node of another graph */
    DG_ERR_NOT_DIFFERENTIABLE, /* dg_grad through an op without a gradient rule */
    DG_ERR_IO,              /* a file could not be opened, read or written */
    DG_ERR_FORMAT,          /* a file's content is not what its format requires */
    DG_ERR_NOT_FOUND,       /* an unknown name */
    DG_STATUS_COUNT
} dg_status;

/* A fixed, human-readable name for a status ("shape error"); never NULL. */
DG_API const char *dg_status_str(dg_status status);

/* Where the library's memory comes from (like SQLite's SQLITE_CONFIG_MALLOC). The functions
 * behave like the C library's malloc, realloc (ptr is never NULL) and free (ptr is never
 * NULL), return memory aligned at least as malloc's, may return NULL (the library then
 * reports DG_ERR_NOMEM), must be safe to call from several threads, and get `user` back. */
typedef struct dg_allocator {
    void *(*malloc)(size_t size, void *user);
    void *(*realloc)(void *ptr, size_t size, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} dg_allocator;

/* Makes every later allocation of the library go through `allocator` (copied); NULL restores
 * the C library's. Process-wide: call it before making any dagrad object, or after freeing
 * them all. DG_ERR_STATE while memory from the current allocator is still held (a graph,
 * plan, optimizer or data set not yet freed); DG_ERR_INVALID_ARG for a NULL function. Not
 * safe to call while another thread uses dagrad. Memory that dagrad's dependencies allocate
 * themselves (OpenMP, zlib, stdio) does not go through it. */
DG_API dg_status dg_set_allocator(const dg_allocator *allocator);

typedef enum dg_dtype {
    DG_F32 = 0, /* float32: every differentiable value */
    DG_I32 = 1, /* int32: labels and indices; never differentiable */
} dg_dtype;

/* ----------------------------------------------------------------------------------------- */
/* Graph                                                                                      */
/* ----------------------------------------------------------------------------------------- */

/* A new, empty graph, or NULL when memory is exhausted. Free it with dg_graph_free(). */
DG_API dg_graph *dg_graph_new(void);

/* Frees the graph, its nodes and its parameter storage. Plans compiled from it must be freed
 * first. NULL is a no-op. */
DG_API void dg_graph_free(dg_graph *g);

/* The sticky status of the graph: DG_OK, or the first error since the last clear. */
DG_API dg_status dg_graph_status(const dg_graph *g);

/* The message of the first error ("matmul: inner dimensions differ: [128,784] x [256,128]"),
 * or "" when there is none. Valid until the next clear or the graph is freed. */
DG_API const char *dg_graph_error(const dg_graph *g);

/* Sticks an error to the graph unless one is already there (first error wins), as the
 * library's own calls do: for helpers built on the public API. printf-style message; a NULL
 * `fmt` stores dg_status_str(status). status DG_OK is not an error: the call does nothing. */
DG_API void dg_graph_set_error(dg_graph *g, dg_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Forgets the sticky error, so that building can go on. */
DG_API void dg_graph_clear_error(dg_graph *g);

/* Number of nodes in the graph (forward and backward). */
DG_API int dg_graph_node_count(const dg_graph *g);

/* The node with index `index` (0 .. count-1), or NULL. Indices are stable and are the ids used
 * in DOT dumps. */
DG_API dg_node *dg_graph_node(const dg_graph *g, int index);

/* The input or parameter named `name`, or NULL (and DG_ERR_NOT_FOUND on the graph). */
DG_API dg_node *dg_graph_find(dg_graph *g, const char *name);

/* Thread count used by plans compiled from this graph afterwards. 0 means the default: the
 * DG_NUM_THREADS environment variable when set, else an adaptive count of at most every core
 * (see dg_plan_set_threads). dg_graph_threads gives the setting resolved to a number (the
 * number of cores for the adaptive default). */
DG_API dg_status dg_graph_set_threads(dg_graph *g, int n_threads);
DG_API int dg_graph_threads(const dg_graph *g);

/* Writes the graph as Graphviz DOT. Node ids are node indices, so two dumps of the same graph
 * are byte-identical. Inputs, parameters and constants have their own shapes and colours; op
 * nodes read "#index name = op attrs" and their shape; each name scope (dg_scope_push, one
 * per layer) is a cluster; backward nodes are drawn in a "backward" cluster, split per scope,
 * and labelled by what they are the gradient of. */
DG_API dg_status dg_graph_dump_dot(dg_graph *g, FILE *out);
DG_API dg_status dg_graph_dump_dot_file(dg_graph *g, const char *path);

/* What a dump leaves out. Zero-initialised (DG_DOT_DEFAULTS): everything, as dg_graph_dump_dot. */
typedef struct dg_dot_options {
    bool forward_only;      /* leave the backward nodes out */
    bool collapse_backward; /* draw each scope's backward nodes as one box ("backward of
                               dense1, 9 nodes"), with the edges between boxes and forward
                               nodes: a training graph stays readable */
} dg_dot_options;
#define DG_DOT_DEFAULTS ((dg_dot_options){.forward_only = false, .collapse_backward = false})
/* options may be NULL (the defaults). */
DG_API dg_status dg_graph_dump_dot_ex(dg_graph *g, FILE *out, const dg_dot_options *options);
DG_API dg_status dg_graph_dump_dot_file_ex(dg_graph *g, const char *path,
                                           const dg_dot_options *options);

/* ----------------------------------------------------------------------------------------- */
/* Leaves                                                                                     */
/* ----------------------------------------------------------------------------------------- */

/* A float32 input fed before each run. `name` must be unique in the graph; shape entries > 0. */
DG_API dg_node *dg_input(dg_graph *g, const char *name, int ndim, const int64_t *shape);

/* An input of any dtype (int32 for labels). */
DG_API dg_node *dg_input_typed(dg_graph *g, const char *name, dg_dtype dtype, int ndim,
                               const int64_t *shape);

/* An input whose shape dg_plan_set_batch leaves alone (a key, a lookup table): its leading
 * axis is not a batch axis. dg_plan_set_input_shape still changes it. */
DG_API dg_node *dg_input_static(dg_graph *g, const char *name, dg_dtype dtype, int ndim,
                                const int64_t *shape);

/* A trainable float32 parameter, zero-initialised, stored in (and owned by) the graph. */
DG_API dg_node *dg_param(dg_graph *g, const char *name, int ndim, const int64_t *shape);

/* A scalar constant (shape []). */
DG_API dg_node *dg_scalar(dg_graph *g, float value);

/* A constant tensor; the data (product of shape floats) is copied. */
DG_API dg_node *dg_constant(dg_graph *g, int ndim, const int64_t *shape, const float *data);

/* ----------------------------------------------------------------------------------------- */
/* Node accessors                                                                             */
/* ----------------------------------------------------------------------------------------- */

typedef enum dg_node_kind {
    DG_NODE_INPUT,
    DG_NODE_PARAM,
    DG_NODE_CONSTANT,
    DG_NODE_OP,
} dg_node_kind;

/* Gives an op or constant node a display name (copied), shown in DOT dumps and error
 * messages ("node 7 'q' (matmul)"), and returns the node, so that a builder call can be
 * wrapped: dg_name(dg_matmul(g, x, wq), "q"). A NULL node passes through. Inputs and
 * parameters keep the unique name they were made with (DG_ERR_INVALID_ARG); display names
 * need not be unique and are not found by dg_graph_find. */
DG_API dg_node *dg_name(dg_node *n, const char *name);

/* Name scopes: nodes built between dg_scope_push(g, "dense1") and the matching
 * dg_scope_pop(g) belong to scope "dense1" (nested: "encoder/dense1"); DOT dumps draw each
 * scope as a cluster. The layers of dagrad_nn.h open one scope per layer, named after the
 * layer. A name must be non-empty (DG_ERR_INVALID_ARG); popping with no scope open is
 * DG_ERR_STATE. Backward nodes that dg_grad appends belong to the scope of the forward node
 * whose gradient they compute. Both stick their error to the graph. */
DG_API dg_status dg_scope_push(dg_graph *g, const char *name);
DG_API dg_status dg_scope_pop(dg_graph *g);
/* The scope path a node was built in ("encoder/dense1"), "" for none; never NULL. */
DG_API const char *dg_node_scope(const dg_node *n);

DG_API int dg_node_index(const dg_node *n);
DG_API dg_node_kind dg_node_kind_of(const dg_node *n);
DG_API const char *dg_node_name(const dg_node *n); /* NULL for op nodes without dg_name */
DG_API const char *dg_node_op_name(const dg_node *n); /* "matmul", "input", ... */
DG_API dg_dtype dg_node_dtype(const dg_node *n);
DG_API int dg_node_ndim(const dg_node *n);
/* The shape as inferred when the node was built (plans may re-infer with another batch). */
DG_API int64_t dg_node_dim(const dg_node *n, int axis);
DG_API int64_t dg_node_numel(const dg_node *n);
DG_API dg_graph *dg_node_graph(const dg_node *n);
/* An op node's inputs, in the op's order (docs/op-reference.md): how many (0 for inputs,
 * parameters and constants, and for NULL), and input `i` (NULL when out of range). */
DG_API int dg_node_input_count(const dg_node *n);
DG_API dg_node *dg_node_input(const dg_node *n, int i);

/* Storage of a parameter or constant (numel floats), owned by the graph; NULL for other
 * kinds. Parameters may be written freely between runs. */
DG_API float *dg_param_data(dg_node *param);

/* ----------------------------------------------------------------------------------------- */
/* Ops. Each returns a new node, or NULL with the error stuck to the graph.                   */
/* Binary elementwise ops broadcast like numpy: shapes are aligned on the right and a size-1   */
/* axis stretches. See docs/op-reference.md for the forward and backward maths of each op.    */
/* ----------------------------------------------------------------------------------------- */

DG_API dg_node *dg_add(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_sub(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_mul(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_div(dg_graph *g, dg_node *a, dg_node *b);
/* xs[0] + xs[1] + ... + xs[n-1] (added in that order) for n >= 1 float32 inputs of one shape
 * (no broadcasting); any n, e.g. the 1,000 terms of an unrolled sequence. Each input's
 * gradient is the output's gradient. xs is copied; a NULL entry fails as for dg_add. */
DG_API dg_node *dg_add_n(dg_graph *g, int n, dg_node *const *xs);
DG_API dg_node *dg_maximum(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_minimum(dg_graph *g, dg_node *a, dg_node *b);

DG_API dg_node *dg_neg(dg_graph *g, dg_node *x);
DG_API dg_node *dg_abs(dg_graph *g, dg_node *x);
DG_API dg_node *dg_exp(dg_graph *g, dg_node *x);
DG_API dg_node *dg_log(dg_graph *g, dg_node *x);
DG_API dg_node *dg_sqrt(dg_graph *g, dg_node *x);
DG_API dg_node *dg_square(dg_graph *g, dg_node *x);
DG_API dg_node *dg_pow_scalar(dg_graph *g, dg_node *x, float exponent);
DG_API dg_node *dg_relu(dg_graph *g, dg_node *x);
DG_API dg_node *dg_leaky_relu(dg_graph *g, dg_node *x, float negative_slope);
DG_API dg_node *dg_sigmoid(dg_graph *g, dg_node *x);
DG_API dg_node *dg_tanh(dg_graph *g, dg_node *x);
DG_API dg_node *dg_gelu(dg_graph *g, dg_node *x); /* exact (erf) form, as PyTorch's default */
DG_API dg_node *dg_softplus(dg_graph *g, dg_node *x);

/* x * s and x + s for a scalar s (no constant node needed). */
DG_API dg_node *dg_scale(dg_graph *g, dg_node *x, float s);
DG_API dg_node *dg_add_scalar(dg_graph *g, dg_node *x, float s);

/* Matrix product of the last two axes, leading axes broadcast (batched matmul). A 1-D operand
 * is not promoted: both operands need at least 2 dimensions. transpose_a/b use the operand's
 * last two axes swapped, without materialising the transpose. */
DG_API dg_node *dg_matmul(dg_graph *g, dg_node *a, dg_node *b);
DG_API dg_node *dg_matmul_ex(dg_graph *g, dg_node *a, dg_node *b, bool transpose_a,
                             bool transpose_b);

/* Reductions over `n_axes` axes (negative axes count from the end; n_axes == 0 with axes ==
 * NULL reduces over all axes). keepdims keeps reduced axes with size 1. */
DG_API dg_node *dg_sum(dg_graph *g, dg_node *x, int n_axes, const int *axes, bool keepdims);
DG_API dg_node *dg_mean(dg_graph *g, dg_node *x, int n_axes, const int *axes, bool keepdims);
DG_API dg_node *dg_max(dg_graph *g, dg_node *x, int n_axes, const int *axes, bool keepdims);

/* Same data, new shape. One entry may be -1 (inferred), so a reshape can follow a changing
 * batch size. */
DG_API dg_node *dg_reshape(dg_graph *g, dg_node *x, int ndim, const int64_t *shape);
/* Views through reshape (no copy, see dg_reshape): squeeze removes axis `axis` of size 1,
 * unsqueeze inserts an axis of size 1 before position `axis` (0..ndim; negative counts from
 * the end, -1 appends). Axis 0 keeps following the batch where x's axis 0 did. */
DG_API dg_node *dg_squeeze(dg_graph *g, dg_node *x, int axis);
DG_API dg_node *dg_unsqueeze(dg_graph *g, dg_node *x, int axis);
/* Output axis i is input axis perm[i]. */
DG_API dg_node *dg_permute(dg_graph *g, dg_node *x, int ndim, const int *perm);
/* Swaps the last two axes. */
DG_API dg_node *dg_transpose(dg_graph *g, dg_node *x);
DG_API dg_node *dg_broadcast_to(dg_graph *g, dg_node *x, int ndim, const int64_t *shape);
/* Elements start <= i < end (step 1) along `axis`; negative start/end count from the end. */
DG_API dg_node *dg_slice(dg_graph *g, dg_node *x, int axis, int64_t start, int64_t end);
DG_API dg_node *dg_concat(dg_graph *g, int n, dg_node *const *xs, int axis);

/* Numerically stable softmax / log-softmax along `axis`. */
DG_API dg_node *dg_softmax(dg_graph *g, dg_node *x, int axis);
DG_API dg_node *dg_log_softmax(dg_graph *g, dg_node *x, int axis);

/* The value, with no gradient flowing through it. */
DG_API dg_node *dg_stop_gradient(dg_graph *g, dg_node *x);

/* ----------------------------------------------------------------------------------------- */
/* Compile and run                                                                            */
/* ----------------------------------------------------------------------------------------- */

/* Plans the computation of `outputs`: topological order, pruned to what they need, liveness
 * and a memory arena in which intermediates share storage. Inputs, parameters, constants and
 * the outputs are pinned: never overwritten by another value. NULL on error (the message is
 * on the graph). The plan stays valid while the graph lives; nodes added later are not in it. */
DG_API dg_plan *dg_compile(dg_graph *g, int n_outputs, dg_node *const *outputs);
DG_API void dg_plan_free(dg_plan *p);

/* Copies numel(input) values (float or int32 per the input's dtype) into the plan, numel at
 * the plan's current shape of the input. */
DG_API dg_status dg_feed(dg_plan *p, dg_node *input, const void *data);
/* The same, checking that the caller's buffer holds exactly `count` values: a count that is
 * not the input's current numel is DG_ERR_SHAPE, naming the input and both sizes. */
DG_API dg_status dg_feed_n(dg_plan *p, dg_node *input, const void *data, int64_t count);

/* Changes an input's shape (same rank) for the following runs and re-infers every shape in the
 * plan; the arena grows when needed. The input must be fed again before the next run. Shape
 * errors are reported here, naming the op; the plan then refuses to run until a valid shape
 * is set. */
DG_API dg_status dg_plan_set_input_shape(dg_plan *p, dg_node *input, int ndim,
                                         const int64_t *shape);
/* Sets the leading (batch) axis of every input of the plan to `batch`, except inputs made
 * with dg_input_static and 0-d inputs. */
DG_API dg_status dg_plan_set_batch(dg_plan *p, int64_t batch);

/* Runs the plan once. Every input must have been fed since the plan was built. */
DG_API dg_status dg_run(dg_plan *p);

/* Per-step profile: with on, every following dg_run adds each step's wall time to a counter
 * of that step (counters reset; off frees them; when off a run pays one branch per step).
 * dg_plan_profile_report prints the mean time per run grouped by op and pass (fwd/bwd), then
 * the `top` largest groups by op, pass and shapes (top <= 0: all), largest first. */
DG_API dg_status dg_plan_set_profile(dg_plan *p, bool on);
DG_API dg_status dg_plan_profile_report(const dg_plan *p, FILE *f, int top);

/* The value of an output, input, parameter or constant of the plan after the last run; NULL
 * for a node the plan does not keep (DG_ERR_INVALID_ARG on the graph), and for a value of the
 * other dtype (DG_ERR_DTYPE: dg_data reads float32, dg_data_i32 int32).
 * How long the pointer stays valid:
 *  - parameters and constants: the graph's storage (dg_param_data), valid until
 *    dg_graph_free; it shows the current values (an optimizer's writes included).
 *  - inputs, outputs and the gradient block: plan memory. The address does not change from
 *    one dg_run to the next (each run rewrites the contents in place, so copy what must
 *    outlive the next run); it is invalidated by dg_plan_set_batch, dg_plan_set_input_shape,
 *    dg_plan_set_grad_block (they may move the arena or an input buffer: call dg_data again)
 *    and dg_plan_free. An output's contents before the first run are unspecified; an input
 *    shows what was last fed.
 *  - an output that is a view (reshape, stop_gradient) of an input, parameter or another
 *    output shares that value's storage and pointer, and so its validity. */
DG_API const float *dg_data(dg_plan *p, dg_node *node);
DG_API const int32_t *dg_data_i32(dg_plan *p, dg_node *node);
/* The shape of a node in this plan (it can differ from the build-time shape after
 * dg_plan_set_batch); 0 for a node that is not part of the plan. */
DG_API int dg_plan_ndim(const dg_plan *p, const dg_node *node);
DG_API int64_t dg_plan_dim(const dg_plan *p, const dg_node *node, int axis);
DG_API int64_t dg_plan_numel(const dg_plan *p, const dg_node *node);

/* Threads of the plan's runs. n_threads > 0 (like dg_graph_set_threads with n > 0, and the
 * DG_NUM_THREADS environment variable) fixes the count: every run uses exactly that many
 * (kernels too small to split use fewer). 0 restores the default, which is adaptive unless
 * DG_NUM_THREADS is set: runs start with every core, and every so often (after 8 runs at
 * first, then at most every 1024, and as soon as a run's time changes by 1.5x for several
 * runs) a few runs are timed at half or twice the count in use; the faster count stays. So a
 * plan keeps both cores on an idle machine and drops to one when another busy process shares
 * the cores, where a team of two waits at every barrier for its descheduled thread and runs
 * several times slower than one thread. Results are bitwise identical at every count, so the
 * switch never changes values. Costs: a clock read per run (per step while probing) and, on
 * average, well under 1 % of run time spent probing a worse count.
 * dg_plan_threads: the fixed count, or the largest count the adaptive policy tries.
 * dg_plan_threads_used: the count runs use now (equal to dg_plan_threads when fixed; what the
 * adaptive policy has settled on, otherwise; dg_optim_step follows it by default).
 * dg_plan_threads_adaptive: whether the plan's count is adaptive. */
DG_API dg_status dg_plan_set_threads(dg_plan *p, int n_threads);
DG_API int dg_plan_threads(const dg_plan *p);
DG_API int dg_plan_threads_used(const dg_plan *p);
DG_API bool dg_plan_threads_adaptive(const dg_plan *p);
DG_API dg_graph *dg_plan_graph(const dg_plan *p);

/* Planning statistics: how many nodes run, and bytes of the arena versus the bytes the same
 * values would need without sharing. */
DG_API int dg_plan_node_count(const dg_plan *p);
DG_API size_t dg_plan_arena_bytes(const dg_plan *p);
DG_API size_t dg_plan_unshared_bytes(const dg_plan *p);

/* The gradient block: lays the values of `grads` (outputs of the plan, float32, typically the
 * gradients dg_grad_params returned) out in one contiguous float array, entry k at element
 * offset dg_plan_grad_block_offset(p, k) = sum of the element counts of entries 0..k-1 (no
 * padding), in the order given, so that clipping, an optimizer or an allreduce can touch one
 * array. The block's length is the sum of the entries' element counts at the plan's current
 * shapes. Each op value listed is computed straight into the block (dg_data of it then points
 * into the block); an entry that cannot live there (a node listed twice, a leaf or an input)
 * is copied into its place at the end of every dg_run. Re-plans memory (the arena may move);
 * n == 0 removes the block. Errors: DG_ERR_INVALID_ARG (n < 0, NULL array, a node that is not
 * an output or not in the plan), DG_ERR_DTYPE (int32), DG_ERR_STATE (the plan's last shape
 * change failed), DG_ERR_NOMEM. */
DG_API dg_status dg_plan_set_grad_block(dg_plan *p, int n, dg_node *const *grads);
/* The block and its length in floats (*numel, when not NULL); NULL and 0 without a block.
 * Writable (clipping, an allreduce): entries computed in the block are what dg_data shows for
 * those nodes until the next run. Valid as long as dg_data's plan pointers (see dg_data). */
DG_API float *dg_plan_grad_block(dg_plan *p, int64_t *numel);
/* The element offset of entry `entry` in the block; -1 when out of range or no block. */
DG_API int64_t dg_plan_grad_block_offset(const dg_plan *p, int entry);
/* A function dg_run calls, on the calling thread between two steps, as soon as gradient-block
 * entry `entry` holds its final value for this run: an entry computed in the block right after
 * the step that computes it, a copied entry after the last step. Each entry is reported exactly
 * once per successful run, in the order the values become final (the backward pass reaches the
 * last layers first). It lets a caller start work on a finished part of the block while the
 * rest of the backward pass runs (src/dist starts an allreduce per bucket); it must not call
 * back into the plan. fn == NULL removes it; it survives re-planning. DG_ERR_INVALID_ARG for a
 * NULL plan. */
typedef void (*dg_block_ready_fn)(void *user, int entry);
DG_API dg_status dg_plan_set_block_ready(dg_plan *p, dg_block_ready_fn fn, void *user);
/* A profiling hook: dg_run calls fn on the calling thread after each step it computes, with
 * the step's node and its wall time in seconds (views that alias their root are not steps).
 * Without one (fn == NULL, the default) dg_run reads no clock per step. It must not call back
 * into the plan. It shares its one clock reading per step with dg_plan_set_profile.
 * bench/bench_cnn.c --profile sums it per op. DG_ERR_INVALID_ARG for a NULL plan. */
typedef void (*dg_step_timer_fn)(void *user, const dg_node *node, double seconds);
DG_API dg_status dg_plan_set_step_timer(dg_plan *p, dg_step_timer_fn fn, void *user);
/* A collective for data-parallel runs: sums `n` doubles element-wise across the processes of a
 * data-parallel job, in place (every process passes its own values and gets the totals back;
 * an MPI_Allreduce with MPI_SUM, say), and returns 0 on success, nonzero on failure. Every
 * process must make the same calls in the same order with the same n (the plans are the same).
 * With a collective set, every batch_norm node of the plan synchronises in training runs
 * (synchronised batch norm): its forward sums the per-channel statistics across the processes
 * before normalising and updating the running statistics, so each process normalises with the
 * mean and variance of the global batch (the union of every process's batch), and the fused
 * batch-norm backward sums the per-channel sums of dy and dy * x^ the same way. Each batch-norm
 * step calls `sum` twice per run (forward: the count and the per-channel sums, then the
 * per-channel centred sums of squares; backward: the same two, the dy sums riding with the
 * second), on the
 * thread that called dg_run, outside any parallel region. Evaluation runs do not call it. A
 * failure stops the run with DG_ERR_INVALID_ARG naming the node. Second derivatives through
 * batch norm (the gradient of a gradient) are not synchronised (docs/images.md). sum == NULL
 * clears it (per-process statistics, the default); it survives re-planning. DG_ERR_INVALID_ARG
 * for a NULL plan. */
typedef int (*dg_sum_fn)(void *user, double *values, int64_t n);
DG_API dg_status dg_plan_set_collective(dg_plan *plan, dg_sum_fn sum, void *user);

#ifdef __cplusplus
}
#endif

/* The rest of the public surface, one header per concern. */
#include "dagrad_autodiff.h" /* dg_grad, gradient checker, losses */
#include "dagrad_nn.h"       /* RNG, initialisers, layers */
#include "dagrad_optim.h"    /* optimizers, schedules, clipping */
#include "dagrad_io.h"       /* IDX (MNIST) loader */
#include "dagrad_train.h"    /* the training loop helper */
#include "dagrad_checkpoint.h" /* safetensors checkpoints: save, load, inspect */
#include "dagrad_image.h"    /* convolution, pooling, image layers */
#include "dagrad_seq.h"      /* sequence ops: embedding, selection, masks, attention */

#endif /* DAGRAD_H */
