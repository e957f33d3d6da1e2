/* Helpers shared by the backward rules. */
#include "op.h"

/* Whether grad and like are sure to keep equal shapes whatever the plan's batch: the same
 * shape at build time and no size-1 axis in like that a larger input could stretch. */
static bool surely_same_shape(const struct dg_shape *grad, const struct dg_shape *like)
{
    if (grad->ndim != like->ndim)
        return false;
    for (int i = 0; i < like->ndim; i++)
        if (grad->dim[i] != like->dim[i] || like->dim[i] == 1)
            return false;
    return true;
}

dg_node *dg__unbroadcast(dg_graph *g, dg_node *grad, dg_node *like)
{
    if (grad == NULL || like == NULL)
        return dg__make_node(g, DG_OP_sum_to, 2, (dg_node *[]){grad, like}, NULL);
    if (surely_same_shape(dg__node_shape(grad), dg__node_shape(like)))
        return grad;
    return dg__make_node(g, DG_OP_sum_to, 2, (dg_node *[]){grad, like}, NULL);
}
