/* Part of the dagrad public API; include dagrad.h rather than this file. */
#ifndef DAGRAD_AUTODIFF_H
#define DAGRAD_AUTODIFF_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Appends the backward pass of `loss` to the graph as ordinary op nodes and stores in
 * grads[i] the node computing d loss / d wrt[i] (same shape as wrt[i]).
 *
 *  - loss must be a float32 node with exactly one element (shape [], [1], [1,1], ...).
 *  - wrt[i] may be any float32 node: parameter, input or intermediate. An int32 node is an
 *    error (DG_ERR_DTYPE).
 *  - When the loss does not depend on wrt[i], grads[i] is a node of zeros of wrt[i]'s shape:
 *    a documented zero, not an error.
 *  - Only nodes on a path from a wrt node to the loss get backward nodes. A node read several
 *    times accumulates its gradient contributions with add.
 *  - An op on such a path without a gradient rule gives DG_ERR_NOT_DIFFERENTIABLE naming it.
 *    Ops whose gradient is zero by definition (comparison masks, sign, stop_gradient) have an
 *    explicit zero rule: constants, not errors.
 *  - The new nodes are differentiable where their ops are, so dg_grad may be applied to a
 *    gradient again (second derivatives, Hessian-vector products).
 * Returns DG_OK, or the graph's sticky error status (grads untouched on error).
 */
DG_API dg_status dg_grad(dg_graph *g, dg_node *loss, int n_wrt, dg_node *const *wrt,
                         dg_node **grads);

/* The gradient of `loss` with respect to every parameter of the graph (in creation order):
 * params[i] and grads[i] for i < *n_params. max is the capacity of both arrays; a graph with
 * more parameters is DG_ERR_INVALID_ARG (nothing appended). The usual start of training:
 *     dg_node *params[64], *grads[64]; int n;
 *     dg_grad_params(g, loss, 64, params, grads, &n);
 *     dg_optim *adam = dg_optim_new_adam(n, params, grads, &DG_ADAM_DEFAULTS); */
DG_API dg_status dg_grad_params(dg_graph *g, dg_node *loss, int max, dg_node **params,
                                dg_node **grads, int *n_params);

/* ---- Losses (src/ops/loss.c) ------------------------------------------------------------ */
/*
 * Each loss returns a float32 scalar node (shape []), the mean over all elements (or rows),
 * or NULL with the error stuck to the graph. The divisor is taken from the shapes at run time,
 * so a plan whose batch changes (dg_plan_set_batch) still gets the right mean. Sums are
 * formed in double in an order that does not depend on the thread count. Gradients flow to
 * both float inputs (targets included). See docs/op-reference.md, "Losses".
 */

/* mean over rows i of logsumexp(logits[i,:]) - logits[i, labels[i]], computed stably (the
 * row max is subtracted; logits of +-1000 give finite values).
 * logits: float32 [N,C]; labels: int32 [N] (DG_ERR_DTYPE / DG_ERR_SHAPE otherwise, naming
 * both shapes). Any leading axes work the same way, with no reshape: logits [B,T,V] and
 * labels [B,T] take every position as a row and the mean is over all valid positions. A label outside [0, C) — negative, e.g. -100 as PyTorch's ignore_index, or
 * >= C — ignores its row: no loss, no gradient, and the row is left out of the mean's
 * divisor. With every row ignored the loss and gradients are 0 (PyTorch: NaN, and it raises
 * for labels >= C). Gradient w.r.t. logits: (softmax(logits) - onehot(labels)) / N_valid;
 * differentiable twice. */
DG_API dg_node *dg_softmax_cross_entropy(dg_graph *g, dg_node *logits, dg_node *labels);

/* Binary cross-entropy of probabilities p against targets y (same shape, float32):
 * mean(-(y * log p + (1-y) * log(1-p))), each log clamped at -100 as PyTorch, so p = 0 or 1
 * gives a finite loss. d/dp = (p - y) / max(p (1-p), 1e-12) / n as PyTorch. */
DG_API dg_node *dg_bce(dg_graph *g, dg_node *p, dg_node *y);

/* Binary cross-entropy on logits, stable for any z: mean(max(z,0) - z*y + log1p(exp(-|z|))).
 * z and y same shape, float32. d/dz = (sigmoid(z) - y) / n, d/dy = -z / n. */
DG_API dg_node *dg_bce_with_logits(dg_graph *g, dg_node *z, dg_node *y);

/* mean((a - b)^2); a and b of equal shapes (no broadcasting), float32. */
DG_API dg_node *dg_mse_loss(dg_graph *g, dg_node *a, dg_node *b);

/* mean(|a - b|); gradient sign(a - b) / n, 0 where a == b (as PyTorch). */
DG_API dg_node *dg_l1_loss(dg_graph *g, dg_node *a, dg_node *b);

/* mean(0.5 r^2 if |r| < delta else delta (|r| - 0.5 delta)), r = a - b, as
 * torch.nn.functional.huber_loss. delta must be finite and > 0 (DG_ERR_INVALID_ARG). */
DG_API dg_node *dg_huber_loss(dg_graph *g, dg_node *a, dg_node *b, float delta);
/* (end of losses) */

/* ---- Gradient checker (src/autodiff/gradcheck.c) ----------------------------------------- */
/*
 * Compares the gradients dg_grad builds with central finite differences of the loss, the way
 * a user checks a model (and the test suite checks every op).
 *
 * Numeric derivative: the five-point (fourth-order) central stencil
 *     f'(x) ~ [f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)] / 12h,   h = step * max(1, |x|),
 * evaluated with the float32 values actually stored (x +- h rounded to float32; the weights
 * are those of Lagrange differentiation at the exact offsets, so rounding of x +- h costs no
 * accuracy). Truncation error is h^4 |f^(5)| / 30; rounding error of a float32 loss is about
 * 1.5 * delta / h for a loss noise delta ~ 6e-8 * (size of the terms the perturbation
 * changes). For smooth functions the two balance near h = 0.03 .. 0.06; the default step 1e-2
 * is a little smaller so that the stencil (reaching 2h = 0.02 * max(1, |x|)) stays within
 * 0.05 of x, the margin the op tests keep from kinks, at the price of a rounding error
 * around 1e-5 * term size, far below the tolerance. When that estimate disagrees with the
 * analytic value, a second one at h/10 is taken and the closer of the two is judged: it
 * resolves functions that vary on a scale below h (log x or 1/x at x = 0.05, where the first
 * estimate is off by 20%), while a wrong gradient disagrees with both.
 *
 * Tolerance policy (float32), element by element, for wrt node i:
 *     pass  <=>  |analytic - numeric| <= atol * scale_i + rtol * max(|analytic|, |numeric|)
 *                                        + floor,                         both finite,
 *     scale_i = the largest |numeric| over node i's checked elements (the gradient's scale),
 *     floor   = 16 * 2^-24 * max(1, |loss|) / h (the float32 loss's rounding noise as the
 *               stencil sees it: a few ulps of the loss's terms per evaluation, over h).
 * Defaults rtol = 1e-2, atol = 1e-3. The tolerance follows the GRADIENT, not the loss: a mean
 * over a [64, 32] batch has gradient elements near 1/2048 of the loss's, and a rule wrong by a
 * factor 2, a sign, a transpose or an off-by-one index errs by O(1) relative to scale_i, so it
 * fails with the defaults (the former atol * max(1, |loss|) let a factor 2 pass there). Float32
 * kernels carry relative errors near 1e-6 .. 1e-5 and the stencil adds the rounding noise
 * bounded by floor, so a correct gradient stays well inside the bound. atol covers elements
 * near zero next to large ones, where a relative test alone is meaningless.
 */
typedef struct dg_gradcheck_options {
    double step;               /* relative step, h = step * max(1, |x|); 1e-6 <= step <= 0.25 */
    double rtol;               /* >= 0 */
    double atol;               /* >= 0; multiplied by the node's gradient scale (above) */
    int max_elements_per_node; /* elements checked per wrt node; <= 0 checks all */
    uint64_t seed;             /* picks which elements when a node has more than the maximum */
} dg_gradcheck_options;

/* step 1e-2, rtol 1e-2, atol 1e-3, 64 elements per node, seed 0x5eed. */
DG_API dg_gradcheck_options dg_gradcheck_defaults(void);

typedef struct dg_gradcheck_report {
    bool passed;              /* every checked element within tolerance */
    int64_t n_checked;        /* elements compared, over all wrt nodes */
    int64_t n_failed;         /* elements out of tolerance */
    double loss;              /* the loss at the unperturbed point */
    double max_abs_error;     /* largest |analytic - numeric| */
    double max_rel_error;     /* largest |analytic - numeric| / max(|analytic|, |numeric|) */
    /* The element whose error is largest relative to its tolerance (the first failure to
     * look at); worst_wrt is -1 when nothing was checked. */
    int worst_wrt;            /* index into wrt[] */
    int worst_node;           /* its node index */
    int64_t worst_element;    /* flat (row-major) element index */
    double worst_analytic, worst_numeric, worst_tolerance;
    char summary[256];        /* one line: "gradcheck passed: ..." / "gradcheck FAILED: ..." */
} dg_gradcheck_report;

/*
 * Checks d loss / d wrt[i] for each i on the loss's float32 value at the given feeds.
 *
 *  - wrt[i] must be float32 inputs or parameters of g (not op nodes). A wrt input must be
 *    among the feeds; its perturbed values are fed, the caller's feed_data is never written.
 *    A parameter is perturbed in place in dg_param_data() and restored bit for bit.
 *  - feed_nodes[k] / feed_data[k] give every input the loss needs (as dg_feed takes them);
 *    feeds the loss does not need are ignored. Inputs keep their build-time shapes.
 *  - Calls dg_grad itself: the backward nodes are APPENDED to g (use a throw-away graph, or
 *    one you are done building). Compiles two plans (loss and gradients; loss alone) and frees
 *    them before returning. Costs 4 loss evaluations per checked element.
 *  - opts NULL means dg_gradcheck_defaults(). At most max_elements_per_node elements of each
 *    wrt node are checked, chosen deterministically from the seed (all when fewer).
 * Returns DG_OK when the check ran, whatever its verdict (read report->passed); otherwise the
 * error status with the message on the graph (bad arguments, dg_grad or compile errors), and
 * the report says passed = false. Never aborts.
 */
DG_API dg_status dg_gradcheck(dg_graph *g, dg_node *loss, int n_wrt, dg_node *const *wrt,
                              int n_feeds, dg_node *const *feed_nodes,
                              const void *const *feed_data, const dg_gradcheck_options *opts,
                              dg_gradcheck_report *report);
/* (end of gradient checker) */

#ifdef __cplusplus
}
#endif

#endif
