/*
 * Memory planning: liveness of every intermediate value and its place in one arena.
 *
 * Views first: an op flagged `view` (reshape, stop_gradient, ...) gets no memory of its own in a
 * shared plan; it aliases its input's storage, followed through chains of views to the root
 * value that owns memory (an arena slot, an input buffer or a leaf's storage). Each value's
 * last reader is found (shape-only inputs do not read data); a root then stays alive until the
 * last reader of any of its views has run. Walking the steps in order, a value takes a slot
 * when produced and gives it back after its last reader ran (through any view); a later value
 * reuses a free slot (the smallest that fits, else the largest free one, grown). Outputs are
 * pinned: their slots are never given back, and the root of a pinned view is held the same way.
 * An op flagged can_inplace writes over its first input's storage when that storage dies at
 * this step (no later reader of it or of any view of it), is not pinned or held, has the same
 * number of elements (not merely the same rounded byte size: a broadcast [3,1] input must not
 * be overwritten), and no other input of the step is another view of it.
 *
 * The optional gradient block (dg_plan_set_grad_block) sits at the arena's start: its entries
 * are laid out densely in the order given, and an op value listed there is computed in place
 * in the block (a view listed there is materialised: copied into the block).
 *
 * Replanned whenever input shapes change; deterministic for a given graph and shapes.
 */
#include "plan_internal.h"

#include <stdlib.h>
#include <string.h>

#define DG_ARENA_ALIGN 64

/* Arena slots. Free slots are kept sorted by (bytes, slot index), so taking the smallest that
 * fits is a binary search: planning stays O(steps log slots) on graphs with thousands of live
 * values (a backward pass keeps forward values alive until their gradients are made). */
struct slot_pool {
    int n, cap;
    int64_t *bytes;  /* per slot */
    bool *busy;      /* per slot */
    int *free;       /* free slot indices, sorted; n_free of them */
    int n_free;
};

static int64_t value_bytes(const struct dg_plan_value *v)
{
    int64_t n = dg__numel(&v->shape) * 4; /* float32 and int32 alike */
    return (n + DG_ARENA_ALIGN - 1) / DG_ARENA_ALIGN * DG_ARENA_ALIGN;
}

static bool slot_before(const struct slot_pool *pool, int a, int b)
{
    return pool->bytes[a] < pool->bytes[b] || (pool->bytes[a] == pool->bytes[b] && a < b);
}

/* Position in the free list of the first slot with at least `need` bytes. */
static int first_fitting(const struct slot_pool *pool, int64_t need)
{
    int lo = 0, hi = pool->n_free;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (pool->bytes[pool->free[mid]] < need)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void pool_release(struct slot_pool *pool, int slot)
{
    if (!pool->busy[slot])
        return; /* an input read twice by its last reader is given back once */
    pool->busy[slot] = false;
    int lo = 0, hi = pool->n_free;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (slot_before(pool, pool->free[mid], slot))
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(pool->free + lo + 1, pool->free + lo, (size_t)(pool->n_free - lo) * sizeof(int));
    pool->free[lo] = slot;
    pool->n_free++;
}

static bool pool_grow(struct slot_pool *pool)
{
    int cap = pool->cap ? pool->cap * 2 : 16;
    int64_t *bytes = realloc(pool->bytes, (size_t)cap * sizeof *bytes);
    if (bytes == NULL)
        return false;
    pool->bytes = bytes;
    bool *busy = realloc(pool->busy, (size_t)cap * sizeof *busy);
    if (busy == NULL)
        return false;
    pool->busy = busy;
    int *free_list = realloc(pool->free, (size_t)cap * sizeof *free_list);
    if (free_list == NULL)
        return false;
    pool->free = free_list;
    pool->cap = cap;
    return true;
}

/* The smallest free slot that fits, else the largest free one grown to fit, else a new slot.
 * Without reuse (the unshared reference plan) always a new slot. -1 when out of memory. */
static int pool_take(struct slot_pool *pool, int64_t need, bool reuse)
{
    int slot;
    if (reuse && pool->n_free > 0) {
        int pos = first_fitting(pool, need);
        if (pos == pool->n_free)
            pos = pool->n_free - 1; /* none fits: grow the largest */
        slot = pool->free[pos];
        memmove(pool->free + pos, pool->free + pos + 1,
                (size_t)(pool->n_free - pos - 1) * sizeof(int));
        pool->n_free--;
        if (pool->bytes[slot] < need)
            pool->bytes[slot] = need;
    } else {
        if (pool->n == pool->cap && !pool_grow(pool))
            return -1;
        slot = pool->n++;
        pool->bytes[slot] = need;
    }
    pool->busy[slot] = true;
    return slot;
}

/* Which values are views and whose storage each value uses. A view op in a shared plan
 * aliases input 0 (followed through chains of views to the root that owns memory), unless it
 * is placed in the gradient block: then it is materialised there (run.c copies). */
static void resolve_views(dg_plan *p)
{
    dg_graph *g = p->graph;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        struct dg_plan_value *v = &p->values[n->index];
        v->is_view = p->share_memory && dg__op_def(n->op)->view && v->block_entry < 0;
        v->root = v->is_view ? p->values[n->inputs[0]->index].root : n->index;
        v->held = false;
    }
    for (int s = 0; s < p->n_steps; s++) {
        const struct dg_plan_value *v = &p->values[p->steps[s]];
        if (v->is_view && v->pinned)
            p->values[v->root].held = true;
    }
}

/* Each value's last reader (shape-only inputs do not read data; a view reads nothing itself).
 * A root then lives as long as its longest-lived view is read: the count of live views that
 * ggml-alloc keeps, in the form of one last step per root. */
static void compute_last_use(dg_plan *p)
{
    dg_graph *g = p->graph;
    for (int i = 0; i < p->n_values; i++)
        p->values[i].last_use = -1;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        if (p->values[n->index].is_view)
            continue;
        uint32_t shape_only = dg__op_def(n->op)->shape_only_inputs;
        for (int i = 0; i < n->n_inputs; i++)
            if (!(shape_only & (1u << i)))
                p->values[n->inputs[i]->index].last_use = s;
    }
    for (int s = 0; s < p->n_steps; s++) {
        const struct dg_plan_value *v = &p->values[p->steps[s]];
        struct dg_plan_value *root = &p->values[v->root];
        if (v->is_view && v->last_use > root->last_use)
            root->last_use = v->last_use;
    }
}

/* Places the gradient block's entries (in list order, densely) and marks which are filled by
 * a copy: an op value listed for the first time lives in the block; a repeat, a leaf or an
 * input cannot, so its entry is copied after the run. */
static void place_block(dg_plan *p)
{
    for (int i = 0; i < p->n_values; i++)
        p->values[i].block_entry = -1;
    if (p->block_offset == NULL)
        return; /* compile allocates it; nothing to place before */
    int64_t offset = 0;
    for (int k = 0; k < p->n_block; k++) {
        struct dg_plan_value *v = &p->values[p->block_nodes[k]];
        p->block_offset[k] = offset;
        offset += dg__numel(&v->shape);
        p->block_copy[k] = !(v->home == DG_HOME_ARENA && v->block_entry < 0);
        if (!p->block_copy[k])
            v->block_entry = k;
    }
    p->block_offset[p->n_block] = offset;
}

/* Whether step s may write over its first input's storage: the op allows it, that storage is
 * an unpinned arena slot (not the gradient block) that nothing reads after this step, through
 * any view either, the sizes and dtypes agree, and no other input of the step is another
 * view of the same storage. */
static bool can_write_over_first(const dg_plan *p, const dg_node *n, int s)
{
    const struct dg_plan_value *v = &p->values[n->index];
    if (!p->share_memory || !dg__op_def(n->op)->can_inplace || n->n_inputs == 0 ||
        v->block_entry >= 0)
        return false;
    const dg_node *first = n->inputs[0];
    int root_index = p->values[first->index].root;
    const struct dg_plan_value *root = &p->values[root_index];
    if (root->home != DG_HOME_ARENA || root->slot < 0 || root->pinned || root->held ||
        root->last_use != s || dg__numel(&root->shape) != dg__numel(&v->shape) ||
        root->shape.dtype != v->shape.dtype)
        return false;
    uint32_t shape_only = dg__op_def(n->op)->shape_only_inputs;
    for (int i = 1; i < n->n_inputs; i++)
        if (!(shape_only & (1u << i)) && n->inputs[i] != first &&
            p->values[n->inputs[i]->index].root == root_index)
            return false;
    return true;
}

dg_status dg__plan_size_inputs(dg_plan *p)
{
    for (int i = 0; i < p->n_values; i++) {
        struct dg_plan_value *v = &p->values[i];
        if (v->home != DG_HOME_INPUT)
            continue;
        int64_t numel = dg__numel(&v->shape);
        if (numel <= v->input_capacity)
            continue;
        void *buf = realloc(v->input_buffer, (size_t)numel * 4);
        if (buf == NULL) {
            p->runnable = false;
            dg_graph_set_error(p->graph, DG_ERR_NOMEM, "plan: out of memory for input '%s' "
                               "(%lld values)", p->graph->nodes[i]->name, (long long)numel);
            return DG_ERR_NOMEM;
        }
        v->input_buffer = buf;
        v->input_capacity = numel;
        v->fed = false;
    }
    return DG_OK;
}

dg_status dg__plan_memory(dg_plan *p)
{
    dg_graph *g = p->graph;
    dg_status st = dg__plan_size_inputs(p);
    if (st != DG_OK)
        return st;
    place_block(p);
    resolve_views(p);
    compute_last_use(p);
    struct slot_pool pool = {0};
    size_t unshared = 0;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        struct dg_plan_value *v = &p->values[n->index];
        int64_t need = value_bytes(v);
        unshared += (size_t)need; /* a view too: without sharing it is a copy */
        v->slot = -1;
        if (v->is_view)
            continue; /* no memory, no kernel: it reads its root's storage */
        if (v->block_entry >= 0) {
            /* lives in the gradient block */
        } else if (can_write_over_first(p, n, s)) {
            v->slot = p->values[p->values[n->inputs[0]->index].root].slot;
        } else {
            v->slot = pool_take(&pool, need, p->share_memory);
            if (v->slot < 0)
                goto nomem;
        }
        /* Give back the storage of inputs (or of the roots of input views) read for the last
         * time here. */
        for (int i = 0; i < n->n_inputs; i++) {
            const struct dg_plan_value *root = &p->values[p->values[n->inputs[i]->index].root];
            if (root->home == DG_HOME_ARENA && root->slot >= 0 && !root->pinned && !root->held &&
                root->last_use == s && root->slot != v->slot)
                pool_release(&pool, root->slot);
        }
        /* A value nobody reads (only outputs, which are pinned, or a root read by no view)
         * gives its slot back at once. */
        if (v->last_use < 0 && !v->pinned && !v->held && v->slot >= 0)
            pool_release(&pool, v->slot);
    }
    /* Allocate everything new before giving anything old back: on failure the plan keeps
     * its previous memory, and is marked unrunnable for its new shapes. The gradient block
     * comes first, then the slots. */
    int64_t *offsets = malloc((size_t)(pool.n ? pool.n : 1) * sizeof *offsets);
    if (offsets == NULL)
        goto nomem;
    int64_t block_bytes = p->block_offset ? p->block_offset[p->n_block] * 4 : 0;
    size_t total = (size_t)((block_bytes + DG_ARENA_ALIGN - 1) / DG_ARENA_ALIGN * DG_ARENA_ALIGN);
    for (int s = 0; s < pool.n; s++) {
        offsets[s] = (int64_t)total;
        total += (size_t)pool.bytes[s];
    }
    if (total > p->arena_capacity || p->arena == NULL) {
        char *arena = aligned_alloc(DG_ARENA_ALIGN, total ? total : DG_ARENA_ALIGN);
        if (arena == NULL) {
            free(offsets);
            goto nomem;
        }
        free(p->arena);
        p->arena = arena;
        p->arena_capacity = total;
    }
    for (int s = 0; s < p->n_steps; s++) {
        struct dg_plan_value *v = &p->values[p->steps[s]];
        if (v->is_view)
            v->offset = 0;
        else if (v->block_entry >= 0)
            v->offset = p->block_offset[v->block_entry] * 4;
        else
            v->offset = offsets[v->slot];
    }
    free(p->slot_offset);
    p->slot_offset = offsets;
    p->arena_bytes = total;
    free(p->slot_bytes);
    p->slot_bytes = pool.bytes;
    free(pool.busy);
    free(pool.free);
    p->n_slots = pool.n;
    p->unshared_bytes = unshared;
    return DG_OK;
nomem:
    free(pool.bytes);
    free(pool.busy);
    free(pool.free);
    p->runnable = false;
    dg_graph_set_error(g, DG_ERR_NOMEM, "plan: out of memory for the values of %d steps (%zu bytes "
                       "without sharing)", p->n_steps, unshared);
    return DG_ERR_NOMEM;
}

void *dg__plan_value_data(const dg_plan *p, int node_index)
{
    node_index = p->values[node_index].root;
    const struct dg_plan_value *v = &p->values[node_index];
    switch (v->home) {
    case DG_HOME_LEAF: return p->graph->nodes[node_index]->storage;
    case DG_HOME_INPUT: return v->input_buffer;
    case DG_HOME_ARENA: return p->arena + v->offset;
    case DG_HOME_NONE: break;
    }
    return NULL;
}

/* ---- The gradient block ------------------------------------------------------------------ */

dg_status dg_plan_set_grad_block(dg_plan *p, int n, dg_node *const *grads)
{
    if (p == NULL)
        return DG_ERR_INVALID_ARG;
    if (n < 0 || (n > 0 && grads == NULL)) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "set_grad_block: %d entries%s", n,
                           n < 0 ? " (at least 0 needed)" : " but grads is NULL");
        return DG_ERR_INVALID_ARG;
    }
    if (!p->runnable) {
        dg_graph_set_error(p->graph, DG_ERR_STATE, "set_grad_block: the plan cannot run since "
                           "its last shape change failed; set a valid shape first");
        return DG_ERR_STATE;
    }
    for (int k = 0; k < n; k++) {
        dg_status st = dg__plan_check(p, grads[k], "set_grad_block");
        if (st != DG_OK)
            return st;
        const struct dg_plan_value *v = &p->values[grads[k]->index];
        if (!v->pinned && v->home == DG_HOME_ARENA) {
            dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "set_grad_block: entry %d, node %d "
                               "(%s), is not an output of this plan; list it among the outputs "
                               "of dg_compile", k, grads[k]->index, dg_node_op_name(grads[k]));
            return DG_ERR_INVALID_ARG;
        }
        if (v->shape.dtype != DG_F32) {
            dg_graph_set_error(p->graph, DG_ERR_DTYPE, "set_grad_block: entry %d, node %d (%s), "
                               "holds int32 values", k, grads[k]->index,
                               dg_node_op_name(grads[k]));
            return DG_ERR_DTYPE;
        }
    }
    int *nodes = malloc((size_t)(n ? n : 1) * sizeof *nodes);
    int64_t *offsets = malloc((size_t)(n + 1) * sizeof *offsets);
    bool *copy = malloc((size_t)(n ? n : 1) * sizeof *copy);
    if (nodes == NULL || offsets == NULL || copy == NULL) {
        free(nodes);
        free(offsets);
        free(copy);
        dg_graph_set_error(p->graph, DG_ERR_NOMEM, "set_grad_block: out of memory (%d entries)",
                           n);
        return DG_ERR_NOMEM;
    }
    for (int k = 0; k < n; k++)
        nodes[k] = grads[k]->index;
    free(p->block_nodes);
    free(p->block_offset);
    free(p->block_copy);
    p->block_nodes = nodes;
    p->block_offset = offsets;
    p->block_copy = copy;
    p->n_block = n;
    return dg__plan_memory(p);
}

float *dg_plan_grad_block(dg_plan *p, int64_t *numel)
{
    bool has = p != NULL && p->n_block > 0 && p->runnable;
    if (numel != NULL)
        *numel = has ? p->block_offset[p->n_block] : 0;
    return has ? (float *)p->arena : NULL;
}

int64_t dg_plan_grad_block_offset(const dg_plan *p, int entry)
{
    if (p == NULL || entry < 0 || entry >= p->n_block)
        return -1;
    return p->block_offset[entry];
}
