/*
 * Reverse-mode differentiation that builds graph nodes (not a tape).
 *
 * Nodes are visited from the loss down in index order, which is a reverse topological order:
 * by the time a node is reached, every consumer has added its contribution to the node's
 * gradient. Each op's backward rule (in its file in src/ops/) appends the nodes that compute
 * its inputs' gradients, told through a dg_grad_ctx which of them anybody needs; contributions
 * to one node are summed with add. An op whose rule is dg__zero_grad contributes nothing (its
 * gradient is zero by definition); an op with no rule stops dg_grad with
 * DG_ERR_NOT_DIFFERENTIABLE naming it.
 *
 * The layer above the op table: it reads the graph through op.h's accessors and the public
 * API only, and keeps its state (which nodes are relevant, the gradient of each) to itself.
 */
#include "op.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

/* needed[i]: node i lies on a path from some wrt node to the loss (shape-only edges carry no
 * dependence). */
static bool *relevant_nodes(dg_graph *g, const dg_node *loss, int n_wrt, dg_node *const *wrt)
{
    int n = dg_node_index(loss) + 1;
    bool *depends = dg__calloc((size_t)n, sizeof *depends);   /* depends on a wrt node */
    bool *ancestor = dg__calloc((size_t)n, sizeof *ancestor); /* the loss depends on it */
    if (depends == NULL || ancestor == NULL) {
        dg__free(depends);
        dg__free(ancestor);
        return NULL;
    }
    for (int i = 0; i < n_wrt; i++)
        if (dg_node_index(wrt[i]) < n)
            depends[dg_node_index(wrt[i])] = true;
    for (int i = 0; i < n; i++) {
        const dg_node *node = dg_graph_node(g, i);
        if (dg_node_kind_of(node) != DG_NODE_OP || depends[i])
            continue;
        const struct dg_op_def *def = dg__node_def(node);
        int n_in = dg__n_inputs(node);
        for (int k = 0; k < n_in && !depends[i]; k++)
            if (!dg__input_shape_only(def, k) && depends[dg_node_index(dg__input(node, k))])
                depends[i] = true;
    }
    ancestor[n - 1] = true;
    for (int i = n - 1; i >= 0; i--) {
        if (!ancestor[i])
            continue;
        const dg_node *node = dg_graph_node(g, i);
        int n_in = dg__n_inputs(node);
        for (int k = 0; k < n_in; k++)
            ancestor[dg_node_index(dg__input(node, k))] = true;
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
    if (dg_node_graph(loss) != g) {
        dg_graph_set_error(g, DG_ERR_FOREIGN_NODE, "grad: the loss belongs to another graph");
        return DG_ERR_FOREIGN_NODE;
    }
    char buf[128];
    const struct dg_shape *ls = dg__node_shape(loss);
    if (ls->dtype != DG_F32 || dg__numel(ls) != 1) {
        dg_graph_set_error(g, ls->dtype != DG_F32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                           "grad: the loss must be a float32 scalar, got %s%s",
                           ls->dtype != DG_F32 ? "int32 " : "",
                           dg__shape_str(ls, buf, sizeof buf));
        return dg_graph_status(g);
    }
    for (int i = 0; i < n_wrt; i++) {
        if (wrt[i] == NULL) {
            dg_graph_set_error(g, DG_ERR_INVALID_ARG, "grad: wrt[%d] is NULL", i);
            return DG_ERR_INVALID_ARG;
        }
        if (dg_node_graph(wrt[i]) != g) {
            dg_graph_set_error(g, DG_ERR_FOREIGN_NODE, "grad: wrt[%d] belongs to another graph", i);
            return DG_ERR_FOREIGN_NODE;
        }
        if (dg_node_dtype(wrt[i]) != DG_F32) {
            dg_graph_set_error(g, DG_ERR_DTYPE, "grad: wrt[%d] (node %d, %s) is int32, which "
                               "is not differentiable", i, dg_node_index(wrt[i]),
                               dg_node_op_name(wrt[i]));
            return DG_ERR_DTYPE;
        }
    }
    return DG_OK;
}

/* Scratch for one backward rule, sized for the node with the most inputs. */
struct rule_scratch {
    dg_node **grad_inputs;
    bool *needed;
};

/* Walks the relevant nodes from the loss down, calling each op's backward rule with a
 * context saying which input gradients are needed, and summing contributions with add. Nodes
 * created along the way are marked as the backward of the node (or input) they serve. */
static dg_status backpropagate(dg_graph *g, dg_node *loss, const bool *relevant,
                               dg_node **grad, struct rule_scratch *scratch)
{
    for (int i = dg_node_index(loss); i >= 0; i--) {
        dg_node *node = dg_graph_node(g, i);
        if (!relevant[i] || grad[i] == NULL || dg_node_kind_of(node) != DG_NODE_OP)
            continue;
        const struct dg_op_def *def = dg__node_def(node);
        if (def->backward == NULL) {
            dg_graph_set_error(g, DG_ERR_NOT_DIFFERENTIABLE, "grad: op '%s' (node %d) has no "
                               "gradient rule", def->name, i);
            return DG_ERR_NOT_DIFFERENTIABLE;
        }
        int n_in = dg__n_inputs(node);
        for (int k = 0; k < n_in; k++) {
            scratch->grad_inputs[k] = NULL;
            scratch->needed[k] = relevant[dg_node_index(dg__input(node, k))];
        }
        struct dg_grad_ctx ctx = {.def = def, .n_inputs = n_in, .needed = scratch->needed};
        int first = dg_graph_node_count(g);
        dg_status st = def->backward(&ctx, g, node, grad[i], scratch->grad_inputs);
        dg__mark_backward(g, first, node);
        if (st == DG_OK)
            st = dg_graph_status(g);
        if (st != DG_OK)
            return st;
        for (int k = 0; k < n_in; k++) {
            dg_node *in = dg__input(node, k);
            int at = dg_node_index(in);
            if (scratch->grad_inputs[k] == NULL || !relevant[at])
                continue;
            first = dg_graph_node_count(g);
            dg_node *sum = grad[at] == NULL ? scratch->grad_inputs[k]
                                            : dg_add(g, grad[at], scratch->grad_inputs[k]);
            dg__mark_backward(g, first, in);
            if (sum == NULL)
                return dg_graph_status(g);
            grad[at] = sum;
        }
    }
    return DG_OK;
}

dg_status dg_grad(dg_graph *g, dg_node *loss, int n_wrt, dg_node *const *wrt, dg_node **grads)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (dg_graph_status(g) != DG_OK)
        return dg_graph_status(g);
    dg_status st = check_args(g, loss, n_wrt, wrt, grads);
    if (st != DG_OK)
        return st;
    int first_new = dg_graph_node_count(g);
    int n = dg_node_index(loss) + 1;
    int max_inputs = 1;
    for (int i = 0; i < n; i++)
        if (dg__n_inputs(dg_graph_node(g, i)) > max_inputs)
            max_inputs = dg__n_inputs(dg_graph_node(g, i));
    bool *relevant = relevant_nodes(g, loss, n_wrt, wrt);
    dg_node **grad = dg__calloc((size_t)n, sizeof *grad);
    struct rule_scratch scratch = {
        .grad_inputs = dg__malloc((size_t)max_inputs * sizeof *scratch.grad_inputs),
        .needed = dg__malloc((size_t)max_inputs * sizeof *scratch.needed),
    };
    /* Results go to a scratch array first: on error the caller's grads stay untouched. */
    dg_node **found = dg__malloc((size_t)(n_wrt > 0 ? n_wrt : 1) * sizeof *found);
    if (relevant == NULL || grad == NULL || scratch.grad_inputs == NULL ||
        scratch.needed == NULL || found == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "grad: out of memory");
        st = DG_ERR_NOMEM;
    }
    if (st == DG_OK) {
        grad[n - 1] = dg__filled_like(g, loss, 1.0f);
        dg__mark_backward(g, first_new, loss);
        st = grad[n - 1] ? backpropagate(g, loss, relevant, grad, &scratch)
                         : dg_graph_status(g);
    }
    for (int i = 0; i < n_wrt && st == DG_OK; i++) {
        int at = dg_node_index(wrt[i]);
        dg_node *gi = at < n ? grad[at] : NULL;
        if (gi == NULL) {
            int first = dg_graph_node_count(g);
            gi = dg__filled_like(g, wrt[i], 0.0f); /* the loss does not depend on wrt[i] */
            dg__mark_backward(g, first, wrt[i]);
        }
        if (gi == NULL) {
            st = dg_graph_status(g);
            break;
        }
        /* Label the final gradient by what it is the gradient of (for the DOT dump). */
        if (dg_node_index(gi) >= first_new)
            dg__relabel_backward(gi, wrt[i]);
        found[i] = gi;
    }
    if (st == DG_OK && n_wrt > 0)
        memcpy(grads, found, (size_t)n_wrt * sizeof *grads);
    dg__free(found);
    dg__free(scratch.grad_inputs);
    dg__free(scratch.needed);
    dg__free(relevant);
    dg__free(grad);
    return st;
}

dg_status dg_grad_params(dg_graph *g, dg_node *loss, int max, dg_node **params,
                         dg_node **grads, int *n_params)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (dg_graph_status(g) != DG_OK)
        return dg_graph_status(g);
    if (params == NULL || grads == NULL || n_params == NULL || max < 0) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "grad_params: NULL output array or count");
        return DG_ERR_INVALID_ARG;
    }
    int n = 0;
    for (int i = 0; i < dg_graph_node_count(g); i++) {
        if (dg_node_kind_of(dg_graph_node(g, i)) != DG_NODE_PARAM)
            continue;
        if (n == max) {
            dg_graph_set_error(g, DG_ERR_INVALID_ARG, "grad_params: the graph has more than %d "
                               "parameters", max);
            return DG_ERR_INVALID_ARG;
        }
        params[n++] = dg_graph_node(g, i);
    }
    dg_status st = dg_grad(g, loss, n, params, grads);
    if (st == DG_OK)
        *n_params = n;
    return st;
}
