/*
 * A compiled plan: the order in which op nodes run, the shape of every value at the current
 * input shapes, and where each value lives. Shared by compile.c (order, pruning), memory.c
 * (liveness and arena), run.c (executor and data access).
 */
#ifndef DG_PLAN_INTERNAL_H
#define DG_PLAN_INTERNAL_H

#include "graph_internal.h"

/* Where one value of the plan lives. */
enum dg_value_home {
    DG_HOME_NONE = 0,  /* not part of the plan */
    DG_HOME_LEAF,      /* parameter or constant: the graph's storage */
    DG_HOME_INPUT,     /* plan-owned buffer filled by dg_feed */
    DG_HOME_ARENA,     /* a slot of the arena, possibly shared with other values */
};

struct dg_plan_value {
    enum dg_value_home home;
    struct dg_shape shape;   /* at the plan's current input shapes */
    bool pinned;             /* an output: its slot is never shared */
    int slot;                /* DG_HOME_ARENA: index into plan->slot_* */
    int last_use;            /* step index of the last reader of the data; -1 none */
    void *input_buffer;      /* DG_HOME_INPUT: owned */
    int64_t input_capacity;  /* elements allocated in input_buffer */
    bool fed;
};

struct dg_plan {
    dg_graph *graph;
    int n_values;                 /* graph->n_nodes when compiled; values is indexed by node */
    struct dg_plan_value *values;
    int n_steps;                  /* op nodes to run, in topological order */
    int *steps;                   /* node indices */
    struct dg_tensor *step_inputs; /* scratch for one step's inputs (the most any step has), */
    struct dg_shape *step_shapes;  /* so that neither run nor re-inference allocates */
    int n_outputs;
    int *outputs;                 /* node indices */
    int n_threads;
    bool share_memory;            /* false: every value its own slot (the unplanned reference) */
    bool runnable;                /* false after a failed re-inference or re-plan (bad shape,
                                     out of memory): feed and run refuse until a shape change
                                     succeeds */
    /* arena */
    int n_slots;
    int64_t *slot_bytes;
    int64_t *slot_offset;
    char *arena;
    size_t arena_bytes;           /* what the current shapes need */
    size_t arena_capacity;        /* what is allocated (the arena only grows) */
    size_t unshared_bytes;
    /* workspace (workspace.c): one scratch block for every step's kernel */
    char *workspace;
    size_t workspace_bytes;       /* the largest any step asks for at the current shapes */
    size_t workspace_capacity;    /* what is allocated (grows only) */
};

/* Builds a plan; share_memory false gives every value its own slot (tests compare both). */
dg_plan *dg__compile_ex(dg_graph *g, int n_outputs, dg_node *const *outputs, bool share_memory);

/* Liveness and slot assignment for the current shapes, then (re)allocation of the arena.
 * On failure sets the graph's error and returns its status. */
dg_status dg__plan_memory(dg_plan *p);

/* Sizes the plan's workspace for the current shapes (the largest workspace_bytes over the
 * steps) and grows its allocation when needed. Called at the end of dg__plan_memory. On
 * failure sets the graph's error, marks the plan unrunnable and returns the status. */
dg_status dg__plan_workspace(dg_plan *p);

/* Grows the input buffers to the inputs' current shapes (before anything may be fed). */
dg_status dg__plan_size_inputs(dg_plan *p);

/* Re-infers every op's shape from the plan's input shapes, in step order. */
dg_status dg__plan_infer_shapes(dg_plan *p);

/* The storage of a value in the plan, or NULL when it has none. */
void *dg__plan_value_data(const dg_plan *p, int node_index);

/* Checks that node belongs to the plan; sets the graph's error (naming `what`) if not. */
dg_status dg__plan_check(dg_plan *p, const dg_node *node, const char *what);

#endif
