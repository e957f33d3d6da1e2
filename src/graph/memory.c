/*
 * Memory planning: liveness of every intermediate value and its place in one arena.
 *
 * Views first: an op flagged `view` (reshape, stop_gradient, ...) gets no memory of its own in a
 * shared plan; it aliases its input's storage, followed through chains of views to the root
 * value that owns memory (an arena buffer, an input buffer or a leaf's storage). Each value's
 * last reader is found (shape-only inputs do not read data); a root then stays alive until the
 * last reader of any of its views has run.
 *
 * Then lifetimes: walking the steps in order, a value gets a buffer when produced, which ends
 * after its last reader (through any view). An op flagged can_inplace takes over its first
 * input's buffer when that storage dies at this step (no later reader of it or of any view of
 * it), is not pinned or held, has the same number of elements (not merely the same rounded
 * byte size: a broadcast [3,1] input must not be overwritten), and no other input of the step
 * is another view of it. Outputs are pinned: their buffers never end, and the root of a pinned
 * view is held the same way.
 *
 * Then placement of the buffers in the arena: offline "greedy by size" for plans of up to
 * GREEDY_MAX_BUFFERS buffers (near the lower bound, max over steps of the live bytes), online
 * best fit with merging of free neighbours (ggml-alloc's way, linear) above.
 *
 * The optional gradient block (dg_plan_set_grad_block) sits at the arena's start: its entries
 * are laid out densely in the order given, and an op value listed there is computed in place
 * in the block (a view listed there is materialised: copied into the block).
 *
 * Replanned whenever input shapes change; deterministic for a given graph and shapes.
 */
#include "plan_internal.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#define DG_ARENA_ALIGN 64

/* The arena allocator: byte ranges of one growing arena, as ggml-alloc does it. Free ranges
 * are kept sorted by offset and merged with their neighbours when given back, so that two
 * dead neighbours can hold one larger value later (fixed-size slots could not). A value takes
 * the smallest free range that fits (best fit; the lowest offset among equals); when none
 * does, the free range that ends at the arena's end grows, else the arena grows. Taking and
 * giving back cost O(log F) plus a move of the list tail, F the number of free ranges: a
 * handful in practice, as neighbours merge (a 100k-node backward pass keeps F small). */
struct free_range {
    int64_t offset, bytes;
};

struct arena_alloc {
    struct free_range *free; /* sorted by offset, never adjacent (merged) */
    int n_free, cap;
    int64_t end;             /* bytes the arena needs: the high-water mark */
};

static int64_t value_bytes(const struct dg_plan_value *v)
{
    int64_t n = dg__numel(&v->shape) * 4; /* float32 and int32 alike */
    return (n + DG_ARENA_ALIGN - 1) / DG_ARENA_ALIGN * DG_ARENA_ALIGN;
}

static void range_remove(struct arena_alloc *a, int i)
{
    memmove(a->free + i, a->free + i + 1, (size_t)(a->n_free - i - 1) * sizeof *a->free);
    a->n_free--;
}

/* The offset of `bytes` new bytes (a multiple of DG_ARENA_ALIGN). */
static int64_t arena_take(struct arena_alloc *a, int64_t bytes)
{
    int best = -1;
    for (int i = 0; i < a->n_free; i++)
        if (a->free[i].bytes >= bytes && (best < 0 || a->free[i].bytes < a->free[best].bytes))
            best = i;
    if (best >= 0) {
        int64_t offset = a->free[best].offset;
        a->free[best].offset += bytes;
        a->free[best].bytes -= bytes;
        if (a->free[best].bytes == 0)
            range_remove(a, best);
        return offset;
    }
    int last = a->n_free - 1;
    if (last >= 0 && a->free[last].offset + a->free[last].bytes == a->end) {
        int64_t offset = a->free[last].offset; /* grow the free tail */
        range_remove(a, last);
        a->end = offset + bytes;
        return offset;
    }
    int64_t offset = a->end;
    a->end += bytes;
    return offset;
}

/* Gives [offset, offset + bytes) back, merged with free neighbours. False when out of memory
 * (the list could not grow). */
static bool arena_give(struct arena_alloc *a, int64_t offset, int64_t bytes)
{
    int lo = 0, hi = a->n_free;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (a->free[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    bool joins_prev = lo > 0 && a->free[lo - 1].offset + a->free[lo - 1].bytes == offset;
    bool joins_next = lo < a->n_free && offset + bytes == a->free[lo].offset;
    if (joins_prev && joins_next) {
        a->free[lo - 1].bytes += bytes + a->free[lo].bytes;
        range_remove(a, lo);
    } else if (joins_prev) {
        a->free[lo - 1].bytes += bytes;
    } else if (joins_next) {
        a->free[lo].offset = offset;
        a->free[lo].bytes += bytes;
    } else {
        if (a->n_free == a->cap) {
            int cap = a->cap ? a->cap * 2 : 16;
            struct free_range *grown = dg__realloc(a->free, (size_t)cap * sizeof *grown);
            if (grown == NULL)
                return false;
            a->free = grown;
            a->cap = cap;
        }
        memmove(a->free + lo + 1, a->free + lo, (size_t)(a->n_free - lo) * sizeof *a->free);
        a->free[lo] = (struct free_range){offset, bytes};
        a->n_free++;
    }
    return true;
}

/* Which values are views and whose storage each value uses. A view op in a shared plan
 * aliases input 0 (followed through chains of views to the root that owns memory), unless it
 * is placed in the gradient block: then it is materialised there (run.c copies). */
static void resolve_views(dg_plan *p)
{
    for (int s = 0; s < p->n_steps; s++) {
        const struct dg_plan_step *st = &p->step_info[s];
        struct dg_plan_value *v = &p->values[st->node];
        v->is_view = p->share_memory && st->def->view && v->block_entry < 0;
        v->root = v->is_view ? p->values[p->step_input_nodes[st->first_input]].root : st->node;
    }
    for (int s = 0; s < p->n_steps; s++) {
        const struct dg_plan_value *v = &p->values[p->steps[s]];
        if (v->is_view && v->pinned)
            p->values[v->root].held = true;
    }
}

/* Each value's last reader, from -1 (shape-only inputs do not read data; a view reads nothing
 * itself). A root then lives as long as its longest-lived view is read: the count of live views that
 * ggml-alloc keeps, in the form of one last step per root. */
static void compute_last_use(dg_plan *p)
{
    for (int s = 0; s < p->n_steps; s++) {
        const struct dg_plan_step *st = &p->step_info[s];
        if (p->values[st->node].is_view)
            continue;
        const int *in = p->step_input_nodes + st->first_input;
        for (int i = 0; i < st->n_inputs; i++)
            if (!dg__input_shape_only(st->def, i))
                p->values[in[i]].last_use = s;
    }
    for (int s = 0; s < p->n_steps; s++) {
        const struct dg_plan_value *v = &p->values[p->steps[s]];
        struct dg_plan_value *root = &p->values[v->root];
        if (v->is_view && v->last_use > root->last_use)
            root->last_use = v->last_use;
    }
}

dg_status dg__plan_size_inputs(dg_plan *p)
{
    for (int k = 0; k < p->n_input_nodes; k++) {
        int i = p->input_nodes[k];
        struct dg_plan_value *v = &p->values[i];
        int64_t numel = dg__numel(&v->shape);
        if (numel <= v->input_capacity)
            continue;
        void *buf = dg__realloc(v->input_buffer, (size_t)numel * 4);
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

/* Places the gradient block's entries (in list order, densely) and marks which are filled by
 * a copy: an op value listed for the first time lives in the block; a repeat, a leaf or an
 * input cannot, so its entry is copied after the run. */
static void place_block(dg_plan *p)
{
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
 * an unpinned arena buffer (not the gradient block) that nothing reads after this step, through
 * any view either, the sizes and dtypes agree, and no other input of the step is another
 * view of the same storage. */
static bool can_write_over_first(const dg_plan *p, int s)
{
    const struct dg_plan_step *st = &p->step_info[s];
    const struct dg_plan_value *v = &p->values[st->node];
    if (!p->share_memory || !st->def->can_inplace || st->n_inputs == 0 || v->block_entry >= 0)
        return false;
    const int *in = p->step_input_nodes + st->first_input;
    int root_index = p->values[in[0]].root;
    const struct dg_plan_value *root = &p->values[root_index];
    if (root->home != DG_HOME_ARENA || !root->owns_range || root->pinned || root->held ||
        root->last_use != s || dg__numel(&root->shape) != dg__numel(&v->shape) ||
        root->shape.dtype != v->shape.dtype)
        return false;
    for (int i = 1; i < st->n_inputs; i++)
        if (!dg__input_shape_only(st->def, i) && in[i] != in[0] &&
            p->values[in[i]].root == root_index)
            return false;
    return true;
}

/* A buffer: one range of the arena, held by a value from the step that makes it to the step
 * that reads it (or any view of it) last, and by the values that run in place over it. */
struct buffer {
    int64_t bytes, offset;
    int first, last;  /* steps, inclusive; last == n_steps: never given back */
};

struct buffers {
    struct buffer *b;
    int n;
};

/* Offline placement of every buffer, knowing all lifetimes (TFLite's "greedy by size"):
 * largest first, each at the lowest offset of the smallest gap that fits between the buffers
 * already placed whose lifetimes overlap its own. A long-lived large gradient then lands where
 * dead forward values were, which an online allocator cannot foresee (the demo MLP's training
 * step: 0.49 of the naive bytes against 0.68 online). Quadratic in the number of buffers, so
 * used only up to GREEDY_MAX_BUFFERS (about a millisecond there). Returns the arena bytes, or
 * -1 when out of memory. */
#define GREEDY_MAX_BUFFERS 1024

struct size_key {
    int64_t bytes;
    int first, id;
};

static int by_size_desc(const void *pa, const void *pb)
{
    const struct size_key *a = pa, *b = pb;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int64_t place_greedy(struct buffers *bufs)
{
    int n = bufs->n;
    struct size_key *order = dg__malloc((size_t)(n ? n : 1) * sizeof *order);
    int *placed = dg__malloc((size_t)(n ? n : 1) * sizeof *placed); /* ids, by offset */
    if (order == NULL || placed == NULL) {
        dg__free(order);
        dg__free(placed);
        return -1;
    }
    for (int i = 0; i < n; i++)
        order[i] = (struct size_key){bufs->b[i].bytes, bufs->b[i].first, i};
    qsort(order, (size_t)n, sizeof *order, by_size_desc);
    int64_t end = 0;
    for (int k = 0; k < n; k++) {
        struct buffer *b = &bufs->b[order[k].id];
        int64_t at = -1, best_gap = INT64_MAX, prev_end = 0;
        for (int j = 0; j < k; j++) {
            const struct buffer *o = &bufs->b[placed[j]];
            if (o->first > b->last || b->first > o->last)
                continue; /* not alive at the same time */
            int64_t gap = o->offset - prev_end;
            if (gap >= b->bytes && gap < best_gap) {
                best_gap = gap;
                at = prev_end;
            }
            if (o->offset + o->bytes > prev_end)
                prev_end = o->offset + o->bytes;
        }
        b->offset = at >= 0 ? at : prev_end;
        if (b->offset + b->bytes > end)
            end = b->offset + b->bytes;
        int lo = 0, hi = k; /* insert by offset */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (bufs->b[placed[mid]].offset <= b->offset)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(placed + lo + 1, placed + lo, (size_t)(k - lo) * sizeof *placed);
        placed[lo] = order[k].id;
    }
    dg__free(order);
    dg__free(placed);
    return end;
}

/* Online placement in step order (ggml-alloc's way): linear in the steps, for large plans.
 * Returns the arena bytes, or -1 when out of memory. */
static int64_t place_online(struct buffers *bufs, int n_steps)
{
    /* buffers ending at each step, as a counting sort (n_steps + 1 buckets) */
    int *start = dg__calloc((size_t)n_steps + 2, sizeof *start);
    int *ending = dg__malloc((size_t)(bufs->n ? bufs->n : 1) * sizeof *ending);
    struct arena_alloc alloc = {0};
    int64_t result = -1;
    if (start == NULL || ending == NULL)
        goto done;
    for (int i = 0; i < bufs->n; i++)
        start[bufs->b[i].last + 1]++;
    for (int s = 0; s <= n_steps; s++)
        start[s + 1] += start[s];
    for (int i = 0; i < bufs->n; i++)
        ending[start[bufs->b[i].last]++] = i;
    for (int s = n_steps; s > 0; s--)
        start[s] = start[s - 1];
    start[0] = 0;
    /* Buffers are numbered in the order their first steps come, at most one per step. */
    int next = 0;
    for (int s = 0; s < n_steps; s++) {
        while (next < bufs->n && bufs->b[next].first == s) {
            bufs->b[next].offset = arena_take(&alloc, bufs->b[next].bytes);
            next++;
        }
        for (int k = start[s]; k < start[s + 1]; k++) {
            const struct buffer *b = &bufs->b[ending[k]];
            if (!arena_give(&alloc, b->offset, b->bytes))
                goto done;
        }
    }
    result = alloc.end;
done:
    dg__free(start);
    dg__free(ending);
    dg__free(alloc.free);
    return result;
}

dg_status dg__plan_memory(dg_plan *p)
{
    dg_graph *g = p->graph;
    dg_status status = dg__plan_size_inputs(p);
    if (status != DG_OK)
        return status;
    /* One pass resets what the passes below derive (the values array is large: one walk). */
    for (int i = 0; i < p->n_values; i++) {
        struct dg_plan_value *v = &p->values[i];
        v->last_use = -1;
        v->block_entry = -1;
        v->owns_range = false;
        v->held = false;
    }
    place_block(p);
    resolve_views(p);
    compute_last_use(p);
    size_t unshared = 0;
    struct buffers bufs = {.b = dg__malloc((size_t)(p->n_steps > 0 ? p->n_steps : 1) * sizeof *bufs.b)};
    if (bufs.b == NULL)
        goto nomem;
    /* Lifetimes: which buffer each value uses, from when to when. */
    for (int s = 0; s < p->n_steps; s++) {
        const struct dg_plan_step *st = &p->step_info[s];
        const int *in = p->step_input_nodes + st->first_input;
        struct dg_plan_value *v = &p->values[st->node];
        int64_t need = value_bytes(v);
        unshared += (size_t)need; /* a view too: without sharing it is a copy */
        if (v->is_view || v->block_entry >= 0)
            continue; /* a view has no memory; a block entry lives in the block */
        if (can_write_over_first(p, s)) {
            struct dg_plan_value *root = &p->values[p->values[in[0]].root];
            v->buffer = root->buffer; /* the buffer passes to the output */
            root->owns_range = false;
        } else {
            v->buffer = bufs.n++;
            bufs.b[v->buffer] = (struct buffer){.bytes = need, .first = s, .last = p->n_steps};
        }
        v->owns_range = true;
        if (!p->share_memory)
            continue; /* the reference plan: every value keeps its own buffer */
        /* The buffers of inputs (or of the roots of input views) read for the last time here
         * end here. */
        for (int i = 0; i < st->n_inputs; i++) {
            struct dg_plan_value *root = &p->values[p->values[in[i]].root];
            if (root->owns_range && !root->pinned && !root->held && root->last_use == s) {
                root->owns_range = false;
                bufs.b[root->buffer].last = s;
            }
        }
        /* A value nobody reads (only outputs, which are pinned, or a root read by no view)
         * ends at once. */
        if (v->last_use < 0 && !v->pinned && !v->held) {
            v->owns_range = false;
            bufs.b[v->buffer].last = s;
        }
    }
    int64_t needed = p->share_memory && bufs.n <= GREEDY_MAX_BUFFERS
                         ? place_greedy(&bufs)
                         : place_online(&bufs, p->n_steps);
    if (needed < 0)
        goto nomem;
    /* The gradient block comes first, then the buffers. Allocate everything new before giving
     * anything old back: on failure the plan keeps its previous memory, and is marked
     * unrunnable for its new shapes. */
    int64_t block_bytes = p->block_offset ? p->block_offset[p->n_block] * 4 : 0;
    int64_t base = (block_bytes + DG_ARENA_ALIGN - 1) / DG_ARENA_ALIGN * DG_ARENA_ALIGN;
    size_t total = (size_t)(base + needed);
    if (total > p->arena_capacity || p->arena == NULL) {
        char *arena = dg__aligned_alloc(DG_ARENA_ALIGN, total ? total : DG_ARENA_ALIGN);
        if (arena == NULL)
            goto nomem;
        dg__free(p->arena);
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
            v->offset = base + bufs.b[v->buffer].offset;
    }
    dg__free(bufs.b);
    p->arena_bytes = total;
    p->unshared_bytes = unshared;
    return dg__plan_workspace(p);
nomem:
    dg__free(bufs.b);
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
    int *nodes = dg__malloc((size_t)(n ? n : 1) * sizeof *nodes);
    int64_t *offsets = dg__malloc((size_t)(n + 1) * sizeof *offsets);
    bool *copy = dg__malloc((size_t)(n ? n : 1) * sizeof *copy);
    if (nodes == NULL || offsets == NULL || copy == NULL) {
        dg__free(nodes);
        dg__free(offsets);
        dg__free(copy);
        dg_graph_set_error(p->graph, DG_ERR_NOMEM, "set_grad_block: out of memory (%d entries)",
                           n);
        return DG_ERR_NOMEM;
    }
    for (int k = 0; k < n; k++)
        nodes[k] = grads[k]->index;
    dg__free(p->block_nodes);
    dg__free(p->block_offset);
    dg__free(p->block_copy);
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

dg_status dg_plan_set_block_ready(dg_plan *p, dg_block_ready_fn fn, void *user)
{
    if (p == NULL)
        return DG_ERR_INVALID_ARG;
    p->block_ready = fn;
    p->block_ready_user = fn ? user : NULL;
    return DG_OK;
}

void dg__plan_block_ready(const dg_plan *p, int node_index)
{
    int entry = p->values[node_index].block_entry;
    if (p->block_ready != NULL && entry >= 0)
        p->block_ready(p->block_ready_user, entry);
}

void dg__plan_block_copied(const dg_plan *p)
{
    for (int k = 0; p->block_ready != NULL && k < p->n_block; k++)
        if (p->block_copy[k])
            p->block_ready(p->block_ready_user, k);
}
