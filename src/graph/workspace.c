/*
 * The plan's workspace: one block of scratch memory for every kernel that asks for some (an
 * op's workspace_bytes rule), sized to the largest request over the plan's steps at the
 * current shapes and the most threads the plan's policy may use (threads.c), so that dg_run
 * never allocates. Like the arena it only grows: a plan that
 * shrinks its batch keeps the larger block.
 */
#include "plan_internal.h"
#include "alloc.h"

#include <stdlib.h>

#define DG_WORKSPACE_ALIGN 64

dg_status dg__plan_workspace(dg_plan *p)
{
    dg_graph *g = p->graph;
    size_t need = 0;
    int largest = -1;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        if (n->def->workspace_bytes == NULL)
            continue;
        for (int i = 0; i < n->n_inputs; i++)
            p->step_shapes[i] = p->values[n->inputs[i]->index].shape;
        size_t bytes = n->def->workspace_bytes(n->def, n->attrs, n->n_inputs, p->step_shapes,
                                               &p->values[n->index].shape,
                                               p->threads.max > 0 ? p->threads.max : 1);
        if (bytes > need) {
            need = bytes;
            largest = n->index;
        }
    }
    p->workspace_bytes = need;
    if (need <= p->workspace_capacity)
        return DG_OK;
    size_t rounded = (need + DG_WORKSPACE_ALIGN - 1) / DG_WORKSPACE_ALIGN * DG_WORKSPACE_ALIGN;
    char *block = rounded >= need ? dg__aligned_alloc(DG_WORKSPACE_ALIGN, rounded) : NULL;
    if (block == NULL) {
        p->runnable = false;
        p->workspace_bytes = p->workspace_capacity;
        dg_graph_set_error(g, DG_ERR_NOMEM, "plan: out of memory for a workspace of %zu bytes "
                           "(node %d, %s)", need, largest, dg_node_op_name(g->nodes[largest]));
        return DG_ERR_NOMEM;
    }
    dg__free(p->workspace);
    p->workspace = block;
    p->workspace_capacity = rounded;
    return DG_OK;
}
