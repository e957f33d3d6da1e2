/*
 * A Hessian-vector product by differentiating twice, checked against finite differences.
 *
 * For a loss L(w) with gradient g(w) = dL/dw, the product of the Hessian with a direction v is
 * the gradient of the scalar <g(w), v>:   H v = d/dw sum(g(w) * v).
 * dg_grad appends the backward pass as ordinary nodes, so it can differentiate its own output:
 * two calls build H v without ever forming H. The check: H v ~ (g(w + eps v) - g(w - eps v))
 * / (2 eps), from the first-gradient plan run at two perturbed weights.
 *
 *   build/examples/hvp [out.dot]      (writes the double-backward graph, default hvp.dot)
 */
#include <dagrad.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 8, IN = 3, HIDDEN = 5, N_PARAMS = 2 };

static int fail(dg_graph *g, const char *what)
{
    fprintf(stderr, "hvp: %s: %s\n", what, dg_graph_error(g));
    dg_graph_free(g);
    return 1;
}

int main(int argc, char **argv)
{
    const char *dot_path = argc > 1 ? argv[1] : "hvp.dot";
    dg_graph *g = dg_graph_new();
    if (g == NULL)
        return 1;

    /* The model: y = tanh(x W1) W2 on fixed data, loss = mean((y - t)^2). */
    dg_node *x = dg_input(g, "x", 2, (int64_t[]){BATCH, IN});
    dg_node *t = dg_input(g, "t", 2, (int64_t[]){BATCH, 1});
    dg_node *w[N_PARAMS] = {dg_param(g, "W1", 2, (int64_t[]){IN, HIDDEN}),
                            dg_param(g, "W2", 2, (int64_t[]){HIDDEN, 1})};
    dg_node *y = dg_matmul(g, dg_tanh(g, dg_matmul(g, x, w[0])), w[1]);
    dg_node *loss = dg_mse_loss(g, y, t);

    /* First derivatives: g_i = dL/dW_i. */
    dg_node *grad[N_PARAMS];
    if (dg_grad(g, loss, N_PARAMS, w, grad) != DG_OK)
        return fail(g, "first dg_grad");

    /* The direction v (one input per parameter) and <g, v> = sum_i sum(g_i * v_i). */
    dg_node *v[N_PARAMS] = {dg_input(g, "v1", 2, (int64_t[]){IN, HIDDEN}),
                            dg_input(g, "v2", 2, (int64_t[]){HIDDEN, 1})};
    dg_node *g_dot_v = dg_add(g, dg_sum(g, dg_mul(g, grad[0], v[0]), 0, NULL, false),
                              dg_sum(g, dg_mul(g, grad[1], v[1]), 0, NULL, false));

    /* Second derivatives: Hv_i = d<g, v>/dW_i. */
    dg_node *hv[N_PARAMS];
    if (dg_grad(g, g_dot_v, N_PARAMS, w, hv) != DG_OK)
        return fail(g, "second dg_grad");
    if (dg_graph_dump_dot_file(g, dot_path) != DG_OK)
        return fail(g, "writing the DOT file");

    /* Two plans from one graph: Hv itself, and the first gradient alone for the check. */
    dg_plan *hvp_plan = dg_compile(g, N_PARAMS, hv);
    dg_plan *grad_plan = dg_compile(g, N_PARAMS, grad);
    if (hvp_plan == NULL || grad_plan == NULL)
        return fail(g, "compiling");

    /* Seeded data, weights and direction. */
    dg_rng rng;
    dg_rng_seed(&rng, 2024);
    float xs[BATCH * IN], ts[BATCH], v1[IN * HIDDEN], v2[HIDDEN];
    float *data[] = {xs, ts, v1, v2, dg_param_data(w[0]), dg_param_data(w[1])};
    const int sizes[] = {BATCH * IN, BATCH, IN * HIDDEN, HIDDEN, IN * HIDDEN, HIDDEN};
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < sizes[k]; i++)
            data[k][i] = (float)dg_rng_normal(&rng) * (k == 1 ? 0.5f : 1.0f);
    const float *vs[N_PARAMS] = {v1, v2};

    /* Hv by double backward. */
    dg_feed(hvp_plan, x, xs);
    dg_feed(hvp_plan, t, ts);
    dg_feed(hvp_plan, v[0], v1);
    dg_feed(hvp_plan, v[1], v2);
    if (dg_run(hvp_plan) != DG_OK)
        return fail(g, "running the HVP plan");

    /* Hv by central differences of the gradient at w +- eps v (parameters are plain floats
     * owned by the graph: perturb them in place, restore them exactly afterwards). */
    const float eps = 3e-3f; /* truncation ~eps^2, float rounding ~1e-7/eps: both near 3e-5 */
    float saved[N_PARAMS][IN * HIDDEN], plus[N_PARAMS][IN * HIDDEN], minus[N_PARAMS][IN * HIDDEN];
    dg_feed(grad_plan, x, xs);
    dg_feed(grad_plan, t, ts);
    for (int side = 0; side < 2; side++) {
        for (int p = 0; p < N_PARAMS; p++)
            for (int i = 0; i < sizes[4 + p]; i++) {
                saved[p][i] = dg_param_data(w[p])[i];
                dg_param_data(w[p])[i] += (side == 0 ? eps : -eps) * vs[p][i];
            }
        if (dg_run(grad_plan) != DG_OK)
            return fail(g, "running the gradient plan");
        for (int p = 0; p < N_PARAMS; p++)
            for (int i = 0; i < sizes[4 + p]; i++) {
                (side == 0 ? plus : minus)[p][i] = dg_data(grad_plan, grad[p])[i];
                dg_param_data(w[p])[i] = saved[p][i];
            }
    }

    /* Print both and the relative error ||Hv - fd|| / ||fd||. */
    double diff2 = 0.0, norm2 = 0.0;
    printf("%-8s %14s %14s\n", "element", "Hv (autodiff)", "Hv (fin.diff)");
    for (int p = 0; p < N_PARAMS; p++)
        for (int i = 0; i < sizes[4 + p]; i++) {
            double exact = dg_data(hvp_plan, hv[p])[i];
            double numeric = ((double)plus[p][i] - minus[p][i]) / (2.0 * eps);
            printf("W%d[%2d]  %14.6f %14.6f\n", p + 1, i, exact, numeric);
            diff2 += (exact - numeric) * (exact - numeric);
            norm2 += numeric * numeric;
        }
    double rel = sqrt(diff2 / (norm2 > 0 ? norm2 : 1.0));
    printf("relative error %.3g; double-backward graph (%d nodes) written to %s\n", rel,
           dg_graph_node_count(g), dot_path);

    dg_plan_free(hvp_plan);
    dg_plan_free(grad_plan);
    dg_graph_free(g);
    return rel < 1e-3 ? 0 : 1;
}
