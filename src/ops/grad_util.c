/* Helpers shared by the backward rules. */
#include "op.h"

/* Whether grad and like have equal shapes now, with no size-1 axis in like that a larger
 * operand could stretch. */
static bool same_shape_now(const struct dg_shape *grad, const struct dg_shape *like)
{
    if (grad->ndim != like->ndim)
        return false;
    for (int i = 0; i < like->ndim; i++)
        if (grad->dim[i] != like->dim[i] || like->dim[i] == 1)
            return false;
    return true;
}

static dg_node *sum_to(dg_graph *g, dg_node *grad, dg_node *like)
{
    return dg__make_node(g, DG_OP_sum_to, 2, (dg_node *[]){grad, like}, NULL);
}

dg_node *dg__unbroadcast(dg_graph *g, dg_node *grad, dg_node *like)
{
    if (grad == NULL || like == NULL)
        return sum_to(g, grad, like);
    if (same_shape_now(dg__node_shape(grad), dg__node_shape(like)) &&
        dg__node_dynamic_axes(like) == 0)
        return grad;
    return sum_to(g, grad, like);
}

dg_node *dg__unbroadcast_operand(dg_graph *g, dg_node *grad, dg_node *node, int k)
{
    dg_node *like = dg__input(node, k);
    if (grad == NULL || like == NULL)
        return sum_to(g, grad, like);
    const struct dg_shape *ls = dg__node_shape(like), *out = dg__node_shape(node);
    if (!same_shape_now(dg__node_shape(grad), ls) || ls->ndim != out->ndim)
        return sum_to(g, grad, like);
    /* like's shape can come apart from the output's only along an axis where like changes
     * with the batch while another operand, of size > 1 there, does not follow it (one that
     * changes along the same axis has like's size there in every plan: two sizes > 1
     * broadcast only when equal). So the residual add of two batch-shaped operands needs no
     * sum_to (a copy of the whole gradient, 17 of them per GPT step). */
    uint32_t changing = dg__node_dynamic_axes(like);
    for (int j = 0; j < out->ndim; j++) {
        if (!(changing & (1u << j)))
            continue;
        for (int o = 0; dg__input(node, o) != NULL; o++) {
            dg_node *other = dg__input(node, o);
            const struct dg_shape *os = dg__node_shape(other);
            int axis = j - (out->ndim - os->ndim);
            if (o != k && axis >= 0 && os->dim[axis] != 1 &&
                !(dg__node_dynamic_axes(other) & (1u << axis)))
                return sum_to(g, grad, like);
        }
    }
    return grad;
}

uint32_t dg__dynamic_elementwise(const struct dg_op_def *def, const void *attrs, int n_inputs,
                                 const struct dg_shape *inputs, const uint32_t *input_axes,
                                 const struct dg_shape *out)
{
    uint32_t axes = 0;
    for (int i = 0; i < n_inputs; i++) {
        int shift = out->ndim - inputs[i].ndim;
        for (int a = 0; a < inputs[i].ndim; a++)
            if ((input_axes[i] & (1u << a)) && a + shift >= 0)
                axes |= 1u << (a + shift);
    }
    return axes;
}

dg_status dg__zero_grad(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                        dg_node *grad_output, dg_node **grad_inputs)
{
    (void)ctx, (void)node, (void)grad_output, (void)grad_inputs;
    return dg_graph_status(g);
}

dg_status dg__composed_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                                dg_node *upstream, dg_node **gin, uint32_t skip,
                                dg__formula_fn formula, void *user)
{
    const int n = dg__n_inputs(node);
    if (n > DG__COMPOSED_MAX_INPUTS) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "%s: a composed backward takes at most %d "
                           "inputs, got %d", ctx->def->name, DG__COMPOSED_MAX_INPUTS, n);
        return dg_graph_status(g);
    }
    dg_node *in[DG__COMPOSED_MAX_INPUTS] = {NULL}, *wrt[DG__COMPOSED_MAX_INPUTS];
    int slot[DG__COMPOSED_MAX_INPUTS], n_wrt = 0;
    for (int i = 0; i < n; i++) {
        in[i] = dg__input(node, i);
        if (!((skip >> i) & 1u) && dg__grad_needed(ctx, i)) {
            in[i] = dg_scale(g, in[i], 1.0f);
            wrt[n_wrt] = in[i];
            slot[n_wrt++] = i;
        }
    }
    dg_node *f = formula(g, node, in, user);
    dg_node *vjp_loss = dg_sum(g, dg_mul(g, f, upstream), 0, NULL, false);
    if (vjp_loss == NULL || n_wrt == 0)
        return dg_graph_status(g);
    dg_node *grads[DG__COMPOSED_MAX_INPUTS];
    dg_status st = dg_grad(g, vjp_loss, n_wrt, wrt, grads);
    if (st != DG_OK)
        return st;
    for (int i = 0; i < n_wrt; i++)
        gin[slot[i]] = grads[i];
    return dg_graph_status(g);
}
