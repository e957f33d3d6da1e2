/*
 * Compiling a plan: which nodes the outputs need (pruning), the order they run in, and the
 * shapes they take at the plan's input shapes.
 *
 * Order: nodes are created after their inputs, so ascending node index is already a
 * topological order of the DAG. The plan keeps the reachable op nodes in that order; the
 * result is deterministic and needs no sort.
 */
#include "plan_internal.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

/* Marks every node the outputs depend on. Inputs have smaller indices than their readers, so
 * one sweep down from the last output sees every reader before its inputs: no stack, no
 * recursion, and the nodes are read in memory order. */
static void mark_reachable(dg_graph *g, int n_outputs, dg_node *const *outputs, bool *needed)
{
    int top = 0;
    for (int i = 0; i < n_outputs; i++) {
        needed[outputs[i]->index] = true;
        if (outputs[i]->index > top)
            top = outputs[i]->index;
    }
    for (int i = top; i >= 0; i--) {
        if (!needed[i])
            continue;
        const dg_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            needed[n->inputs[k]->index] = true;
    }
}

/* The flat step table (plan_internal.h). False when out of memory. */
static bool build_step_table(dg_plan *p)
{
    dg_graph *g = p->graph;
    int64_t total = 0;
    for (int s = 0; s < p->n_steps; s++)
        total += g->nodes[p->steps[s]]->n_inputs;
    if (total > INT32_MAX)
        return false;
    p->step_info = dg__malloc((size_t)(p->n_steps > 0 ? p->n_steps : 1) * sizeof *p->step_info);
    p->step_input_nodes = dg__malloc((size_t)(total > 0 ? total : 1) * sizeof(int));
    if (p->step_info == NULL || p->step_input_nodes == NULL)
        return false;
    int at = 0;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        p->step_info[s] = (struct dg_plan_step){
            .node = n->index, .n_inputs = n->n_inputs, .first_input = at,
            .def = n->def};
        for (int k = 0; k < n->n_inputs; k++)
            p->step_input_nodes[at++] = n->inputs[k]->index;
    }
    return true;
}

static dg_plan *fail_plan(dg_plan *p, dg_graph *g, dg_status status, const char *what)
{
    if (status == DG_ERR_NOMEM)
        dg_graph_set_error(g, DG_ERR_NOMEM, "compile: out of memory (%s)", what);
    dg_plan_free(p);
    return NULL;
}

dg_plan *dg__compile_ex(dg_graph *g, int n_outputs, dg_node *const *outputs, bool share_memory)
{
    if (g == NULL)
        return NULL;
    if (g->status != DG_OK)
        return NULL; /* the pending error explains why */
    if (n_outputs < 1 || outputs == NULL)
        {
            dg__fail(g, DG_ERR_INVALID_ARG, "compile: %d outputs given (at least 1 needed)",
                        n_outputs);
            return NULL;
        }
    for (int i = 0; i < n_outputs; i++) {
        if (outputs[i] == NULL)
            {
            dg__fail(g, DG_ERR_INVALID_ARG, "compile: output %d is NULL", i + 1);
            return NULL;
        }
        if (outputs[i]->graph != g)
            {
            dg__fail(g, DG_ERR_FOREIGN_NODE, "compile: output %d belongs to another "
                            "graph", i + 1);
            return NULL;
        }
    }

    dg_plan *p = dg__calloc(1, sizeof *p);
    if (p == NULL)
        return fail_plan(NULL, g, DG_ERR_NOMEM, "plan");
    p->graph = g;
    p->n_values = g->n_nodes;
    dg__plan_threads_init(p, g->n_threads);
    p->share_memory = share_memory;
    p->values = dg__calloc((size_t)p->n_values, sizeof *p->values);
    bool *needed = dg__calloc((size_t)p->n_values, sizeof *needed);
    p->steps = dg__malloc((size_t)p->n_values * sizeof *p->steps);
    p->input_nodes = dg__malloc((size_t)p->n_values * sizeof *p->input_nodes);
    p->outputs = dg__malloc((size_t)n_outputs * sizeof *p->outputs);
    p->block_offset = dg__calloc(1, sizeof *p->block_offset);
    if (p->values == NULL || p->block_offset == NULL || needed == NULL || p->steps == NULL ||
        p->input_nodes == NULL || p->outputs == NULL) {
        dg__free(needed);
        return fail_plan(p, g, DG_ERR_NOMEM, "order");
    }
    mark_reachable(g, n_outputs, outputs, needed);
    for (int i = 0; i < p->n_values; i++) {
        if (!needed[i])
            continue;
        const dg_node *n = g->nodes[i];
        struct dg_plan_value *v = &p->values[i];
        v->shape = n->shape;
        v->root = i;
        v->block_entry = -1;
        v->last_use = -1;
        switch (n->kind) {
        case DG_NODE_PARAM:
        case DG_NODE_CONSTANT:
            v->home = DG_HOME_LEAF;
            break;
        case DG_NODE_INPUT:
            v->home = DG_HOME_INPUT;
            p->input_nodes[p->n_input_nodes++] = i;
            break;
        case DG_NODE_OP:
            v->home = DG_HOME_ARENA;
            p->steps[p->n_steps++] = i;
            break;
        }
    }
    dg__free(needed);
    /* Scratch for one step's inputs, sized once here: the executor allocates nothing. */
    int max_inputs = 1;
    for (int s = 0; s < p->n_steps; s++)
        if (g->nodes[p->steps[s]]->n_inputs > max_inputs)
            max_inputs = g->nodes[p->steps[s]]->n_inputs;
    p->step_inputs = dg__malloc((size_t)max_inputs * sizeof *p->step_inputs);
    p->step_shapes = dg__malloc((size_t)max_inputs * sizeof *p->step_shapes);
    if (p->step_inputs == NULL || p->step_shapes == NULL)
        return fail_plan(p, g, DG_ERR_NOMEM, "order");
    if (!build_step_table(p))
        return fail_plan(p, g, DG_ERR_NOMEM, "steps");
    p->n_outputs = n_outputs;
    for (int i = 0; i < n_outputs; i++) {
        p->outputs[i] = outputs[i]->index;
        p->values[outputs[i]->index].pinned = true;
    }
    p->runnable = true;
    if (dg__plan_memory(p) != DG_OK) {
        dg_plan_free(p);
        return NULL;
    }
    return p;
}

dg_plan *dg_compile(dg_graph *g, int n_outputs, dg_node *const *outputs)
{
    return dg__compile_ex(g, n_outputs, outputs, true);
}

void dg_plan_free(dg_plan *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->n_values && p->values != NULL; i++)
        dg__free(p->values[i].input_buffer);
    dg__free(p->values);
    dg__free(p->steps);
    dg__free(p->step_inputs);
    dg__free(p->step_shapes);
    dg__free(p->input_nodes);
    dg__free(p->step_info);
    dg__free(p->step_input_nodes);
    dg__free(p->outputs);
    dg__free(p->block_nodes);
    dg__free(p->block_offset);
    dg__free(p->block_copy);
    dg__free(p->arena);
    dg__free(p->workspace);
    dg__free(p->profile_seconds);
    dg__free(p);
}

dg_status dg__plan_infer_shapes(dg_plan *p)
{
    dg_graph *g = p->graph;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        const struct dg_op_def *def = n->def;
        struct dg_shape *in_shapes = p->step_shapes;
        for (int i = 0; i < n->n_inputs; i++)
            in_shapes[i] = p->values[n->inputs[i]->index].shape;
        struct dg_shape out;
        memset(&out, 0, sizeof out);
        char msg[DG_ERROR_LEN] = "";
        dg_status st = def->infer(def, n->attrs, n->n_inputs, in_shapes, &out, msg, sizeof msg);
        if (st == DG_OK && !dg__shape_fits(&out))
            st = dg__shape_error(msg, sizeof msg, DG_ERR_SHAPE, "%s: the result would have "
                                 "more than 2^40 elements", def->name);
        if (st != DG_OK) {
            p->runnable = false;
            dg_graph_set_error(g, st, "%s (%s, after an input shape change)", msg,
                               dg__node_str(n, (char[160]){0}, 160));
            return st;
        }
        p->values[n->index].shape = out;
    }
    p->runnable = true;
    return DG_OK;
}

dg_status dg__plan_check(dg_plan *p, const dg_node *node, const char *what)
{
    if (p == NULL)
        return DG_ERR_INVALID_ARG;
    if (node == NULL) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "%s: node is NULL", what);
        return DG_ERR_INVALID_ARG;
    }
    if (node->graph != p->graph) {
        dg_graph_set_error(p->graph, DG_ERR_FOREIGN_NODE, "%s: %s belongs to another graph",
                           what, dg__node_str(node, (char[160]){0}, 160));
        return DG_ERR_FOREIGN_NODE;
    }
    if (node->index >= p->n_values || p->values[node->index].home == DG_HOME_NONE) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "%s: %s is not part of this plan",
                           what, dg__node_str(node, (char[160]){0}, 160));
        return DG_ERR_INVALID_ARG;
    }
    return DG_OK;
}

dg_status dg_plan_set_input_shape(dg_plan *p, dg_node *input, int ndim, const int64_t *shape)
{
    dg_status st = dg__plan_check(p, input, "set_input_shape");
    if (st != DG_OK)
        return st;
    char buf[64];
    if (input->kind != DG_NODE_INPUT) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "set_input_shape: %s is not an input",
                           dg__node_str(input, (char[160]){0}, 160));
        return DG_ERR_INVALID_ARG;
    }
    if (ndim > 0 && shape == NULL) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "set_input_shape: input '%s': shape is "
                           "NULL", input->name);
        return DG_ERR_INVALID_ARG;
    }
    if (ndim != input->shape.ndim) {
        dg_graph_set_error(p->graph, DG_ERR_SHAPE, "set_input_shape: input '%s' has %d dimensions "
                           "(%s), %d given", input->name, input->shape.ndim,
                           dg__shape_str(&input->shape, buf, sizeof buf), ndim);
        return DG_ERR_SHAPE;
    }
    struct dg_shape wanted = input->shape;
    for (int i = 0; i < ndim; i++)
        wanted.dim[i] = shape[i];
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || !dg__shape_fits(&wanted)) {
            dg_graph_set_error(p->graph, DG_ERR_SHAPE, "set_input_shape: input '%s': %s has a "
                               "dimension <= 0 or more than 2^40 elements", input->name,
                               dg__shape_str(&wanted, buf, sizeof buf));
            return DG_ERR_SHAPE;
        }
    }
    struct dg_plan_value *v = &p->values[input->index];
    bool same = true;
    for (int i = 0; i < ndim; i++)
        same = same && v->shape.dim[i] == shape[i];
    if (same && p->runnable)
        return DG_OK;
    for (int i = 0; i < ndim; i++)
        v->shape.dim[i] = shape[i];
    v->fed = false;
    st = dg__plan_size_inputs(p);
    if (st == DG_OK)
        st = dg__plan_infer_shapes(p);
    if (st != DG_OK)
        return st;
    return dg__plan_memory(p);
}

dg_status dg_plan_set_batch(dg_plan *p, int64_t batch)
{
    if (p == NULL)
        return DG_ERR_INVALID_ARG;
    /* A batch too large for an input is a shape error, reported below naming the input. */
    if (batch <= 0) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "set_batch: batch %lld is not "
                           "positive", (long long)batch);
        return DG_ERR_INVALID_ARG;
    }
    for (int i = 0; i < p->n_values; i++) {
        struct dg_shape wanted = p->values[i].shape;
        if (p->values[i].home != DG_HOME_INPUT || wanted.ndim == 0 ||
            p->graph->nodes[i]->static_shape)
            continue;
        wanted.dim[0] = batch;
        if (!dg__shape_fits(&wanted)) {
            char buf[128];
            dg_graph_set_error(p->graph, DG_ERR_SHAPE, "set_batch: input '%s' would be %s, more "
                               "than 2^40 elements", p->graph->nodes[i]->name,
                               dg__shape_str(&wanted, buf, sizeof buf));
            return DG_ERR_SHAPE;
        }
    }
    bool changed = false;
    for (int i = 0; i < p->n_values; i++) {
        struct dg_plan_value *v = &p->values[i];
        if (v->home == DG_HOME_INPUT && v->shape.ndim > 0 && v->shape.dim[0] != batch &&
            !p->graph->nodes[i]->static_shape) {
            v->shape.dim[0] = batch;
            v->fed = false;
            changed = true;
        }
    }
    if (!changed && p->runnable)
        return DG_OK;
    dg_status st = dg__plan_size_inputs(p);
    if (st == DG_OK)
        st = dg__plan_infer_shapes(p);
    if (st != DG_OK)
        return st;
    return dg__plan_memory(p);
}

int dg_plan_ndim(const dg_plan *p, const dg_node *node)
{
    if (p == NULL || node == NULL || node->graph != p->graph || node->index >= p->n_values)
        return 0;
    return p->values[node->index].shape.ndim;
}

int64_t dg_plan_dim(const dg_plan *p, const dg_node *node, int axis)
{
    if (p == NULL || node == NULL || node->graph != p->graph || node->index >= p->n_values)
        return 0;
    const struct dg_shape *s = &p->values[node->index].shape;
    if (axis < 0)
        axis += s->ndim;
    return (axis >= 0 && axis < s->ndim) ? s->dim[axis] : 0;
}

int64_t dg_plan_numel(const dg_plan *p, const dg_node *node)
{
    if (p == NULL || node == NULL || node->graph != p->graph || node->index >= p->n_values ||
        p->values[node->index].home == DG_HOME_NONE)
        return 0;
    return dg__numel(&p->values[node->index].shape);
}

dg_graph *dg_plan_graph(const dg_plan *p) { return p ? p->graph : NULL; }
int dg_plan_node_count(const dg_plan *p) { return p ? p->n_steps : 0; }
size_t dg_plan_arena_bytes(const dg_plan *p) { return p ? p->arena_bytes : 0; }
size_t dg_plan_unshared_bytes(const dg_plan *p) { return p ? p->unshared_bytes : 0; }
