/*
 * Public helpers of dagrad_seq.h built from other ops (no kernels of their own, so no registry
 * rows): clamp, min, logsumexp, variance, causal_mask, masked_softmax. Their gradients come
 * from the ops they are made of; the choices at kinks are those ops' and are documented in
 * docs/op-reference.md ("Sequence ops"). Each passes a pending error or NULL input through.
 */
#include "alloc.h"
#include "op.h"

#include <math.h>
#include <string.h>

/* clamp(x, lo, hi) = where(x < lo, lo, where(x > hi, hi, x)): the gradient passes where
 * lo <= x <= hi (boundaries included, as PyTorch) and is 0 outside; NaN stays NaN. */
dg_node *dg_clamp(dg_graph *g, dg_node *x, float lo, float hi)
{
    if (x != NULL && dg_graph_status(g) == DG_OK && !(lo <= hi))
        return dg__fail(g, DG_ERR_INVALID_ARG, "clamp: lo = %g must not exceed hi = %g",
                        (double)lo, (double)hi);
    if (x == NULL)
        return dg_graph_status(g) == DG_OK
                   ? dg__fail(g, DG_ERR_INVALID_ARG, "clamp: input 0 is NULL") : NULL;
    dg_node *low = dg_scalar(g, lo), *high = dg_scalar(g, hi);
    dg_node *upper = dg_where(g, dg_greater(g, x, high), high, x);
    return dg_where(g, dg_less(g, x, low), low, upper);
}

/* min = -max(-x): NaN propagates; the gradient is split evenly among ties (amin semantics),
 * as max's. */
dg_node *dg_min(dg_graph *g, dg_node *x, int n_axes, const int *axes, bool keepdims)
{
    return dg_neg(g, dg_max(g, dg_neg(g, x), n_axes, axes, keepdims));
}

/* m where |m| is finite, else 0: the shift of logsumexp, so that a slice of -inf gives -inf
 * (not NaN from -inf - -inf) and one holding +inf gives +inf, as PyTorch. */
static dg_node *finite_or_zero(dg_graph *g, dg_node *m)
{
    dg_node *infinite = dg_equal(g, dg_abs(g, m), dg_scalar(g, INFINITY));
    return dg_stop_gradient(g, dg_where(g, infinite, dg_scalar(g, 0.0f), m));
}

/* logsumexp(x; axis) = m + log(sum(exp(x - m))), m the slice's max (a constant for dg_grad:
 * the derivative, softmax(x), does not depend on it). */
dg_node *dg_logsumexp(dg_graph *g, dg_node *x, int axis, bool keepdims)
{
    dg_node *shift = finite_or_zero(g, dg_max(g, x, 1, &axis, true));
    dg_node *total = dg_sum(g, dg_exp(g, dg_sub(g, x, shift)), 1, &axis, keepdims);
    dg_node *m = keepdims ? shift : finite_or_zero(g, dg_max(g, x, 1, &axis, false));
    return dg_add(g, dg_log(g, total), m);
}

/* variance = sum((x - mean)^2) / (n - 1 if unbiased else n), n = the count of reduced
 * elements at run time (size_ratio, so it follows a batch change). n = 1 with unbiased gives
 * 0/0 = NaN, as PyTorch. */
dg_node *dg_variance(dg_graph *g, dg_node *x, int n_axes, const int *axes, bool unbiased,
                     bool keepdims)
{
    dg_node *centred = dg_sub(g, x, dg_mean(g, x, n_axes, axes, true));
    dg_node *squares = dg_sum(g, dg_square(g, centred), n_axes, axes, keepdims);
    if (squares == NULL)
        return NULL;
    dg_node *count = dg__make_node(g, DG_OP_size_ratio, 2, (dg_node *[]){x, squares}, NULL);
    if (unbiased)
        count = dg_add_scalar(g, count, -1.0f);
    return dg_div(g, squares, count);
}

dg_node *dg_causal_mask(dg_graph *g, int64_t t)
{
    if (dg_graph_status(g) != DG_OK)
        return NULL;
    if (t < 1 || t > (1 << 15))
        return dg__fail(g, DG_ERR_INVALID_ARG, "causal_mask: T = %lld is outside [1, 32768]",
                        (long long)t);
    float *mask = dg__malloc((size_t)(t * t) * sizeof *mask);
    if (mask == NULL)
        return dg__fail(g, DG_ERR_NOMEM, "causal_mask: out of memory for [%lld,%lld]",
                        (long long)t, (long long)t);
    for (int64_t i = 0; i < t; i++)
        for (int64_t j = 0; j < t; j++)
            mask[i * t + j] = j <= i ? 1.0f : 0.0f;
    dg_node *node = dg_constant(g, 2, (int64_t[]){t, t}, mask);
    dg__free(mask);
    return node;
}

/* softmax(where(mask, x, -inf)) along axis: masked positions get probability 0 and no
 * gradient; a slice with every position masked gives NaN (as PyTorch's masked_fill(-inf) +
 * softmax). */
dg_node *dg_masked_softmax(dg_graph *g, dg_node *x, dg_node *mask, int axis)
{
    return dg_softmax(g, dg_where(g, mask, x, dg_scalar(g, -INFINITY)), axis);
}
