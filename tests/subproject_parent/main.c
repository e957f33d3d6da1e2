/* Builds y = sum((w * x)^2), differentiates it and checks the gradient: dagrad used from a
 * parent project through dependency('dagrad'). */
#include <math.h>
#include <stdio.h>

#include <dagrad.h>

int main(void)
{
    dg_graph *g = dg_graph_new();
    dg_node *x = dg_input(g, "x", 1, (int64_t[]){3});
    dg_node *w = dg_param(g, "w", 1, (int64_t[]){3});
    dg_node *y = dg_sum(g, dg_square(g, dg_mul(g, w, x)), 0, NULL, false);
    dg_node *grad = NULL;
    if (y == NULL || dg_grad(g, y, 1, &w, &grad) != DG_OK) {
        fprintf(stderr, "parent: %s\n", dg_graph_error(g));
        return 1;
    }
    float *wd = dg_param_data(w);
    wd[0] = 1, wd[1] = 2, wd[2] = 3;
    dg_node *outs[2] = {y, grad};
    dg_plan *p = dg_compile(g, 2, outs);
    if (p == NULL || dg_feed(p, x, (float[]){1, 1, 2}) != DG_OK || dg_run(p) != DG_OK) {
        fprintf(stderr, "parent: %s\n", dg_graph_error(g));
        return 1;
    }
    /* y = 1 + 4 + 36 = 41; dy/dw = 2 w x^2 = [2, 4, 24]. */
    double value = dg_data(p, y)[0], norm = 0;
    for (int i = 0; i < 3; i++)
        norm += (double)dg_data(p, grad)[i] * dg_data(p, grad)[i];
    int ok = fabs(value - 41.0) < 1e-4 && fabs(sqrt(norm) - sqrt(4.0 + 16 + 576)) < 1e-3;
    printf("parent: y = %g, |dy/dw| = %g: %s\n", value, sqrt(norm), ok ? "ok" : "WRONG");
    dg_plan_free(p);
    dg_graph_free(g);
    return ok ? 0 : 1;
}
