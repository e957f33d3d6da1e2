/*
 * Reverse-mode differentiation that builds graph nodes (not a tape).
 *
 * Nodes are visited from the loss down in index order, which is a reverse topological order:
 * by the time a node is reached, every consumer has added its contribution to the node's
 * gradient. Each op's backward rule (in its file in src/ops/) appends the nodes that compute
 * its inputs' gradients; contributions to one node are summed with add.
 */
#include "graph_internal.h"
#include "graph/alloc.h"

#include <stdlib.h>
#include <string.h>

/* A float32 node of zeros (or a fill value) with x's shape, following x's plan-time shape. */
static dg_node *filled_like(dg_graph *g, dg_node *x, float value)
{
    union dg_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    attrs.reduce.axes = (x->shape.ndim == 0) ? 0 : (uint32_t)((1u << x->shape.ndim) - 1);
    attrs.reduce.keepdims = false;
    dg_node *fill = dg_scalar(g, value);
    if (x->shape.ndim == 0)
        return fill;
    return dg__make_node(g, DG_OP_expand_reduced, 2, (dg_node *[]){fill, x}, &attrs);
}

/* needed[i]: node i lies on a path from some wrt node to the loss. */
static bool *relevant_nodes(dg_graph *g, const dg_node *loss, int n_wrt, dg_node *const *wrt)
{
    int n = loss->index + 1;
    bool *depends = dg__calloc((size_t)n, sizeof *depends);   /* depends on a wrt node */
    bool *ancestor = dg__calloc((size_t)n, sizeof *ancestor); /* the loss depends on it */
    if (depends == NULL || ancestor == NULL) {
        dg__free(depends);
        dg__free(ancestor);
        return NULL;
    }
    for (int i = 0; i < n_wrt; i++)
        if (wrt[i]->index < n)
            depends[wrt[i]->index] = true;
    for (int i = 0; i < n; i++) {
        const dg_node *node = g->nodes[i];
        if (node->kind != DG_NODE_OP || depends[i])
            continue;
        uint32_t shape_only = dg__op_def(node->op)->shape_only_inputs;
        for (int k = 0; k < node->n_inputs && !depends[i]; k++)
            if (!(shape_only & (1u << k)) && depends[node->inputs[k]->index])
                depends[i] = true;
    }
    ancestor[loss->index] = true;
    for (int i = n - 1; i >= 0; i--) {
        if (!ancestor[i])
            continue;
        const dg_node *node = g->nodes[i];
        for (int k = 0; k < node->n_inputs; k++)
            ancestor[node->inputs[k]->index] = true;
    }
    for (int i = 0; i < n; i++)
        depends[i] = depends[i] && ancestor[i];
    dg__free(ancestor);
    return depends;
}

static dg_status check_args(dg_graph *g, dg_node *loss, int n_wrt, dg_node *const *wrt,
                            dg_node **grads)
{
    if (loss == NULL || (n_wrt > 0 && (wrt == NULL || grads == NULL)) || n_wrt < 0) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "grad: %s", loss == NULL ? "loss is NULL"
                           : n_wrt < 0 ? "negative count" : "wrt or grads array is NULL");
        return DG_ERR_INVALID_ARG;
    }
    if (loss->graph != g) {
        dg_graph_set_error(g, DG_ERR_FOREIGN_NODE, "grad: the loss belongs to another graph");
        return DG_ERR_FOREIGN_NODE;
    }
    char buf[128];
    if (loss->shape.dtype != DG_F32 || dg__numel(&loss->shape) != 1) {
        dg_graph_set_error(g, loss->shape.dtype != DG_F32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                           "grad: the loss must be a float32 scalar, got %s%s",
                           loss->shape.dtype != DG_F32 ? "int32 " : "",
                           dg__shape_str(&loss->shape, buf, sizeof buf));
        return dg_graph_status(g);
    }
    for (int i = 0; i < n_wrt; i++) {
        if (wrt[i] == NULL) {
            dg_graph_set_error(g, DG_ERR_INVALID_ARG, "grad: wrt[%d] is NULL", i);
            return DG_ERR_INVALID_ARG;
        }
        if (wrt[i]->graph != g) {
            dg_graph_set_error(g, DG_ERR_FOREIGN_NODE, "grad: wrt[%d] belongs to another graph", i);
            return DG_ERR_FOREIGN_NODE;
        }
        if (wrt[i]->shape.dtype != DG_F32) {
            dg_graph_set_error(g, DG_ERR_DTYPE, "grad: wrt[%d] (node %d, %s) is int32, which "
                               "is not differentiable", i, wrt[i]->index,
                               dg_node_op_name(wrt[i]));
            return DG_ERR_DTYPE;
        }
    }
    return DG_OK;
}

/* Walks the relevant nodes from the loss down, calling each op's backward rule. */
static dg_status backpropagate(dg_graph *g, dg_node *loss, const bool *relevant,
                               dg_node **grad)
{
    for (int i = loss->index; i >= 0; i--) {
        dg_node *node = g->nodes[i];
        if (!relevant[i] || grad[i] == NULL || node->kind != DG_NODE_OP)
            continue;
        const struct dg_op_def *def = dg__op_def(node->op);
        if (def->not_differentiable)
            continue; /* piecewise constant (masks): no gradient flows to the inputs */
        if (def->backward == NULL) {
            dg_graph_set_error(g, DG_ERR_NOT_DIFFERENTIABLE, "grad: op '%s' (node %d) has no "
                               "gradient rule", def->name, node->index);
            return DG_ERR_NOT_DIFFERENTIABLE;
        }
        dg_node *grad_inputs[DG_MAX_INPUTS] = {0};
        g->backward_of = node;
        dg_status st = def->backward(g, node, grad[i], grad_inputs);
        if (st == DG_OK)
            st = dg_graph_status(g);
        if (st != DG_OK)
            return st;
        for (int k = 0; k < node->n_inputs; k++) {
            dg_node *in = node->inputs[k];
            if (grad_inputs[k] == NULL || !relevant[in->index])
                continue;
            g->backward_of = in;
            dg_node *sum = grad[in->index] == NULL
                               ? grad_inputs[k]
                               : dg_add(g, grad[in->index], grad_inputs[k]);
            if (sum == NULL)
                return dg_graph_status(g);
            grad[in->index] = sum;
        }
    }
    return DG_OK;
}

dg_status dg_grad(dg_graph *g, dg_node *loss, int n_wrt, dg_node *const *wrt, dg_node **grads)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (g->status != DG_OK)
        return g->status;
    dg_status st = check_args(g, loss, n_wrt, wrt, grads);
    if (st != DG_OK)
        return st;
    int first_new = g->n_nodes;
    bool *relevant = relevant_nodes(g, loss, n_wrt, wrt);
    dg_node **grad = dg__calloc((size_t)loss->index + 1, sizeof *grad);
    if (relevant == NULL || grad == NULL) {
        dg__free(relevant);
        dg__free(grad);
        dg_graph_set_error(g, DG_ERR_NOMEM, "grad: out of memory");
        return DG_ERR_NOMEM;
    }
    g->building_backward = true;
    g->backward_of = loss;
    g->relevant = relevant;
    g->n_relevant = loss->index + 1;
    grad[loss->index] = filled_like(g, loss, 1.0f);
    st = grad[loss->index] ? backpropagate(g, loss, relevant, grad) : dg_graph_status(g);
    /* Results go to a scratch array first: on error the caller's grads stay untouched. */
    dg_node **found = st == DG_OK ? dg__malloc((size_t)(n_wrt > 0 ? n_wrt : 1) * sizeof *found)
                                  : NULL;
    if (st == DG_OK && found == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "grad: out of memory");
        st = DG_ERR_NOMEM;
    }
    for (int i = 0; i < n_wrt && st == DG_OK; i++) {
        dg_node *gi = wrt[i]->index <= loss->index ? grad[wrt[i]->index] : NULL;
        g->backward_of = wrt[i];
        if (gi == NULL)
            gi = filled_like(g, wrt[i], 0.0f); /* the loss does not depend on wrt[i] */
        if (gi == NULL) {
            st = dg_graph_status(g);
            break;
        }
        /* Label the final gradient by what it is the gradient of (for the DOT dump). */
        if (gi->index >= first_new)
            gi->grad_of = wrt[i];
        found[i] = gi;
    }
    if (st == DG_OK && n_wrt > 0)
        memcpy(grads, found, (size_t)n_wrt * sizeof *grads);
    dg__free(found);
    g->building_backward = false;
    g->backward_of = NULL;
    g->relevant = NULL;
    g->n_relevant = 0;
    dg__free(relevant);
    dg__free(grad);
    return st;
}

bool dg__grad_needed(const dg_node *node, int i)
{
    const dg_graph *g = node->graph;
    const dg_node *in = dg__input(node, i);
    if (in == NULL || g->relevant == NULL || in->index >= g->n_relevant)
        return true;
    return g->relevant[in->index];
}

dg_status dg_grad_params(dg_graph *g, dg_node *loss, int max, dg_node **params,
                         dg_node **grads, int *n_params)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (g->status != DG_OK)
        return g->status;
    if (params == NULL || grads == NULL || n_params == NULL || max < 0) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "grad_params: NULL output array or count");
        return DG_ERR_INVALID_ARG;
    }
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i]->kind != DG_NODE_PARAM)
            continue;
        if (n == max) {
            dg_graph_set_error(g, DG_ERR_INVALID_ARG, "grad_params: the graph has more than %d "
                               "parameters", max);
            return DG_ERR_INVALID_ARG;
        }
        params[n++] = g->nodes[i];
    }
    dg_status st = dg_grad(g, loss, n, params, grads);
    if (st == DG_OK)
        *n_params = n;
    return st;
}
