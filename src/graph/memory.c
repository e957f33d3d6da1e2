/*
 * Memory planning: liveness of every intermediate value and its place in one arena.
 *
 * Each value's last reader is found (shape-only inputs do not read data). Walking the steps in
 * order, a value takes a slot when produced and gives it back after its last reader ran; a
 * later value reuses a free slot (the smallest that fits, else the largest free one, grown).
 * Outputs are pinned: their slots are never given back. An op flagged can_inplace writes over
 * its first input when that input dies at this step and has the same number of elements
 * (not merely the same rounded byte size: a broadcast [3,1] input must not be overwritten).
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

static void compute_last_use(dg_plan *p)
{
    dg_graph *g = p->graph;
    for (int i = 0; i < p->n_values; i++)
        p->values[i].last_use = -1;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        const struct dg_op_def *def = n->def;
        for (int i = 0; i < n->n_inputs; i++)
            if (!dg__input_shape_only(def, i))
                p->values[n->inputs[i]->index].last_use = s;
    }
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
    compute_last_use(p);
    struct slot_pool pool = {0};
    size_t unshared = 0;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        struct dg_plan_value *v = &p->values[n->index];
        int64_t need = value_bytes(v);
        unshared += (size_t)need;
        const dg_node *first = n->n_inputs > 0 ? n->inputs[0] : NULL;
        const struct dg_plan_value *fv = first ? &p->values[first->index] : NULL;
        if (p->share_memory && n->def->can_inplace && fv != NULL &&
            fv->home == DG_HOME_ARENA && !fv->pinned && fv->last_use == s &&
            dg__numel(&fv->shape) == dg__numel(&v->shape) &&
            fv->shape.dtype == v->shape.dtype) {
            v->slot = fv->slot; /* overwrite the dying first input */
        } else {
            v->slot = pool_take(&pool, need, p->share_memory);
            if (v->slot < 0)
                goto nomem;
        }
        /* Give back the slots of inputs read for the last time here. */
        for (int i = 0; i < n->n_inputs; i++) {
            const struct dg_plan_value *iv = &p->values[n->inputs[i]->index];
            if (iv->home == DG_HOME_ARENA && !iv->pinned && iv->last_use == s &&
                iv->slot != v->slot)
                pool_release(&pool, iv->slot);
        }
        /* A value nobody reads (possible only for outputs, which are pinned) keeps its slot. */
        if (v->last_use < 0 && !v->pinned)
            pool_release(&pool, v->slot);
    }
    /* Allocate everything new before giving anything old back: on failure the plan keeps
     * its previous memory, and is marked unrunnable for its new shapes. */
    int64_t *offsets = malloc((size_t)(pool.n ? pool.n : 1) * sizeof *offsets);
    if (offsets == NULL)
        goto nomem;
    size_t total = 0;
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
    free(p->slot_offset);
    p->slot_offset = offsets;
    p->arena_bytes = total;
    free(p->slot_bytes);
    p->slot_bytes = pool.bytes;
    free(pool.busy);
    free(pool.free);
    p->n_slots = pool.n;
    p->unshared_bytes = unshared;
    return dg__plan_workspace(p);
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
    const struct dg_plan_value *v = &p->values[node_index];
    switch (v->home) {
    case DG_HOME_LEAF: return p->graph->nodes[node_index]->storage;
    case DG_HOME_INPUT: return v->input_buffer;
    case DG_HOME_ARENA: return p->arena + p->slot_offset[v->slot];
    case DG_HOME_NONE: break;
    }
    return NULL;
}
