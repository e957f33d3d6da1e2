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
 * library's own calls do: for helpers built on the public API. printf-style message. */
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
 * DG_NUM_THREADS environment variable when set, else every core. */
DG_API dg_status dg_graph_set_threads(dg_graph *g, int n_threads);
DG_API int dg_graph_threads(const dg_graph *g);

/* Writes the graph as Graphviz DOT. Node ids are node indices, so two dumps of the same graph
 * are byte-identical. Inputs, parameters and constants have their own shapes and colours;
 * backward nodes are drawn in a cluster of their own and labelled by what they are the
 * gradient of. */
DG_API dg_status dg_graph_dump_dot(dg_graph *g, FILE *out);
DG_API dg_status dg_graph_dump_dot_file(dg_graph *g, const char *path);

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

DG_API int dg_node_index(const dg_node *n);
DG_API dg_node_kind dg_node_kind_of(const dg_node *n);
DG_API const char *dg_node_name(const dg_node *n); /* NULL for unnamed op nodes */
DG_API const char *dg_node_op_name(const dg_node *n); /* "matmul", "input", ... */
DG_API dg_dtype dg_node_dtype(const dg_node *n);
DG_API int dg_node_ndim(const dg_node *n);
/* The shape as inferred when the node was built (plans may re-infer with another batch). */
DG_API int64_t dg_node_dim(const dg_node *n, int axis);
DG_API int64_t dg_node_numel(const dg_node *n);
DG_API dg_graph *dg_node_graph(const dg_node *n);

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

/* The value of an output, input, parameter or constant of the plan after the last run; NULL
 * for a node the plan does not keep (DG_ERR_INVALID_ARG on the graph), and for a value of the
 * other dtype (DG_ERR_DTYPE: dg_data reads float32, dg_data_i32 int32). */
DG_API const float *dg_data(dg_plan *p, dg_node *node);
DG_API const int32_t *dg_data_i32(dg_plan *p, dg_node *node);
/* The shape of a node in this plan (it can differ from the build-time shape after
 * dg_plan_set_batch); 0 for a node that is not part of the plan. */
DG_API int dg_plan_ndim(const dg_plan *p, const dg_node *node);
DG_API int64_t dg_plan_dim(const dg_plan *p, const dg_node *node, int axis);
DG_API int64_t dg_plan_numel(const dg_plan *p, const dg_node *node);

DG_API dg_status dg_plan_set_threads(dg_plan *p, int n_threads);
DG_API int dg_plan_threads(const dg_plan *p);
DG_API dg_graph *dg_plan_graph(const dg_plan *p);

/* Planning statistics: how many nodes run, and bytes of the arena versus the bytes the same
 * values would need without sharing. */
DG_API int dg_plan_node_count(const dg_plan *p);
DG_API size_t dg_plan_arena_bytes(const dg_plan *p);
DG_API size_t dg_plan_unshared_bytes(const dg_plan *p);

#ifdef __cplusplus
}
#endif

/* The rest of the public surface, one header per concern. */
#include "dagrad_autodiff.h" /* dg_grad, gradient checker, losses */
#include "dagrad_nn.h"       /* RNG, initialisers, layers */
#include "dagrad_optim.h"    /* optimizers, schedules, clipping */
#include "dagrad_io.h"       /* IDX (MNIST) loader */
#include "dagrad_train.h"    /* the training loop helper */
#include "dagrad_image.h"    /* convolution, pooling, image layers */

#endif /* DAGRAD_H */
