/*
 * Graph and node storage, shared by the files of src/graph/. The graph layer sees ops only
 * through op_def.h (each node's def); ops see nodes only through the accessors in op.h.
 */
#ifndef DG_GRAPH_INTERNAL_H
#define DG_GRAPH_INTERNAL_H

#include "op_def.h"

#define DG_ERROR_LEN 512

struct dg_node {
    dg_graph *graph;
    int index;                /* position in graph->nodes; the node's stable id */
    dg_node_kind kind;
    const struct dg_op_def *def; /* DG_NODE_OP: the op (a registry entry, or a test's own);
                                    the graph, planner and executor reach ops only through it */
    int n_inputs;
    dg_node **inputs;         /* n_inputs entries, owned */
    void *attrs;              /* the op family's attribute struct (def->attrs_size bytes),
                                 owned; NULL when the op has none */
    struct dg_shape shape;    /* as inferred at build time */
    uint32_t dynamic_axes;    /* axes that may change with a plan's input shapes */
    char *name;               /* inputs and params: unique name; others: dg_name's or NULL */
    int scope;                /* name scope the node was built in: index into graph->scopes,
                                 0 = the root (no scope) */
    float *storage;           /* params and constants: numel floats, owned */
    bool static_shape;        /* inputs: dg_plan_set_batch leaves the shape alone */
    /* Set by dg_grad after each backward rule: this node belongs to the backward pass of
     * `grad_of` (the forward node whose gradient it computes, or helps to compute). */
    bool is_backward;
    const dg_node *grad_of;
};

struct dg_graph {
    dg_node **nodes;
    int n_nodes, cap_nodes;
    int *names;               /* open-addressing table of named nodes: index + 1, 0 = empty */
    int name_cap, n_named;    /* name_cap is 0 or a power of two */
    int n_threads;            /* 0: default */
    /* Name scopes (dg_scope_push): scope_paths[i] is "outer/inner" (entry 0 is "", the root),
     * scope_parent[i] its enclosing scope; `scope` is the one new nodes get. */
    char **scope_paths;
    int *scope_parent;
    int n_scopes, cap_scopes, scope;
    dg_status status;
    char error[DG_ERROR_LEN];
};

/* Sticks a formatted error to the graph (first error wins); returns NULL for chaining. Also
 * declared in op.h for the op files. */
dg_node *dg__fail(dg_graph *g, dg_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The sticky error (first wins) from a va_list; dg_graph_set_error is the variadic form. */
void dg__set_error_v(dg_graph *g, dg_status status, const char *fmt, va_list args);

/* Frees the graph's scope table (names.c). */
void dg__scopes_free(dg_graph *g);
/* The scope a node is drawn in: its own, or for a backward node that of its forward node. */
int dg__node_scope_id(const dg_node *node);

/* How messages name a node: "node 5 'x' (input)", "node 7 'q' (matmul)" for a node named with
 * dg_name, "node 7 (matmul)" otherwise. Writes into buf (64 bytes or more) and returns it. */
const char *dg__node_str(const dg_node *n, char *buf, size_t len);

/* The thread count a plan should use when the graph says 0 (DG_NUM_THREADS or all cores). */
int dg__default_threads(void);

#endif
