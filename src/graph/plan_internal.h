/*
 * A compiled plan: the order in which op nodes run, the shape of every value at the current
 * input shapes, and where each value lives. Shared by compile.c (order, pruning), memory.c
 * (liveness and arena), run.c (executor and data access).
 */
#ifndef DG_PLAN_INTERNAL_H
#define DG_PLAN_INTERNAL_H

#include "graph_internal.h"
#include "threads.h"

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
    bool is_view;            /* aliases the storage of `root` (a view op in a shared plan) */
    bool held;               /* a root read through a pinned view: kept like a pinned value */
    int root;                /* the node whose storage this value uses: itself unless a view */
    bool owns_range;         /* while planning: holds its buffer */
    int buffer;              /* while planning: the buffer (arena range) it lives in */
    int block_entry;         /* placed at this entry of the gradient block; -1 none */
    int64_t offset;          /* DG_HOME_ARENA, not a view: byte offset of the data in the arena */
    int last_use;            /* step index of the last reader of the data, through any view
                                of it when it is a root; -1 none */
    void *input_buffer;      /* DG_HOME_INPUT: owned */
    int64_t input_capacity;  /* elements allocated in input_buffer */
    bool fed;
};

/* One step as the planner walks it: flat copies of what it would otherwise chase through node
 * pointers pass after pass (large plans do not fit in the caches). */
struct dg_plan_step {
    int node;                       /* node index */
    int n_inputs;
    int first_input;                /* inputs: plan->step_input_nodes[first_input ...] */
    const struct dg_op_def *def;
};

struct dg_plan {
    dg_graph *graph;
    int n_values;                 /* graph->n_nodes when compiled; values is indexed by node */
    struct dg_plan_value *values;
    int n_steps;                  /* op nodes to run, in topological order */
    int *steps;                   /* node indices */
    struct dg_tensor *step_inputs; /* scratch for one step's inputs (the most any step has), */
    struct dg_shape *step_shapes;  /* so that neither run nor re-inference allocates */
    struct dg_plan_step *step_info; /* n_steps entries */
    int *step_input_nodes;        /* the steps' input node indices, one after the other */
    int n_input_nodes;
    int *input_nodes;             /* the plan's inputs (DG_HOME_INPUT), node indices */
    int n_outputs;
    int *outputs;                 /* node indices */
    struct dg__thread_policy threads; /* threads.c: fixed or adaptive count per run */
    bool share_memory;            /* false: every value its own slot (the unplanned reference) */
    bool runnable;                /* false after a failed re-inference or re-plan (bad shape,
                                     out of memory): feed and run refuse until a shape change
                                     succeeds */
    /* arena */
    char *arena;
    size_t arena_bytes;           /* what the current shapes need */
    size_t arena_capacity;        /* what is allocated (the arena only grows) */
    size_t unshared_bytes;
    /* workspace (workspace.c): one scratch block for every step's kernel */
    char *workspace;
    size_t workspace_bytes;       /* the largest any step asks for at the current shapes */
    size_t workspace_capacity;    /* what is allocated (grows only) */
    /* gradient block (dg_plan_set_grad_block): n_block entries laid out densely in the given
     * order from the arena's start. An op value that appears first in the list lives there;
     * other entries (repeats, leaves, inputs) are copied in at the end of each run. */
    int n_block;
    int *block_nodes;             /* node index per entry */
    int64_t *block_offset;        /* element offset per entry; n_block + 1 entries */
    bool *block_copy;             /* entry filled by a copy after the steps */
    /* dg_plan_set_block_ready: told as each block entry becomes final during dg_run */
    dg_block_ready_fn block_ready;
    void *block_ready_user;
    /* dg_plan_set_step_timer: told each step's wall time during dg_run (NULL: no clock read) */
    dg_step_timer_fn step_timer;
    void *step_timer_user;
    /* dg_plan_set_collective: the cross-process sum synchronised batch norm uses (run.c
     * hands it to the kernels through dg_exec_ctx); NULL: none */
    dg_sum_fn collective;
    void *collective_user;
    /* dg_plan_set_profile (profile.c): seconds per step summed over profile_runs runs; NULL
     * when off */
    double *profile_seconds;
    int profile_runs;
    bool profile_cpu;             /* DG_PROFILE_CLOCK=cpu: the thread's CPU time, not wall */
};

/* The profile's clock (profile.c): wall seconds, or the calling thread's CPU seconds. */
double dg__profile_clock(const dg_plan *p);
/* Step s has finished (profile.c): adds the time since `since` to the profile and tells the step
 * timer, when set; returns the clock's reading for the next step. */
double dg__plan_step_timed(dg_plan *p, int s, double since);

/* Tells the block_ready hook (when set) that the value of node_index is final, if it lives in
 * the gradient block; after the steps, tells it every copied entry. Called by dg_run. */
void dg__plan_block_ready(const dg_plan *p, int node_index);
void dg__plan_block_copied(const dg_plan *p);

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

/* Sets the plan's thread policy from a thread setting (0: the default, see threads.h). */
void dg__plan_threads_init(dg_plan *p, int setting);

/* Checks that node belongs to the plan; sets the graph's error (naming `what`) if not. */
dg_status dg__plan_check(dg_plan *p, const dg_node *node, const char *what);

#endif
