/* Image layer helpers (include/dagrad_image.h): conv2d with named, seeded parameters, square
 * pooling, global average pooling, flatten. */
#include "dagrad.h"

#include <math.h>
#include <stdio.h>

#include "alloc.h"
#include "op.h"

dg_node *dg_conv2d_layer(dg_graph *g, dg_node *x, int64_t out_channels, int64_t kernel_h,
                         int64_t kernel_w, const dg_conv2d_params *params, bool bias,
                         dg_activation act, const char *name, dg_rng *rng)
{
    if (g == NULL || dg_graph_status(g) != DG_OK)
        return NULL;
    if (x == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "conv2d_layer: input is NULL");
    if (name == NULL || *name == '\0')
        return dg__fail(g, DG_ERR_INVALID_ARG, "conv2d_layer: name is NULL or empty");
    if (dg_node_graph(x) != g)
        return dg__fail(g, DG_ERR_FOREIGN_NODE, "conv2d_layer '%s': input belongs to another "
                        "graph", name);
    if (dg_node_ndim(x) != 4)
        return dg__fail(g, DG_ERR_SHAPE, "conv2d_layer '%s': input has %d dimensions, 4 "
                        "([N, C, H, W]) needed", name, dg_node_ndim(x));
    int64_t groups = params != NULL ? params->groups : 1;
    if (out_channels <= 0 || kernel_h <= 0 || kernel_w <= 0 || groups <= 0 ||
        dg_node_dim(x, 1) % groups != 0)
        return dg__fail(g, DG_ERR_INVALID_ARG, "conv2d_layer '%s': %lld output channels, "
                        "kernel %lldx%lld and %lld groups for %lld input channels", name,
                        (long long)out_channels, (long long)kernel_h, (long long)kernel_w,
                        (long long)groups, (long long)dg_node_dim(x, 1));
    char weight_name[256], bias_name[256];
    snprintf(weight_name, sizeof weight_name, "%s.weight", name);
    snprintf(bias_name, sizeof bias_name, "%s.bias", name);
    int64_t group_in = dg_node_dim(x, 1) / groups;
    dg_node *weight = dg_param(g, weight_name, 4,
                               (int64_t[]){out_channels, group_in, kernel_h, kernel_w});
    dg_node *b = bias ? dg_param(g, bias_name, 1, (int64_t[]){out_channels}) : NULL;
    if (weight == NULL || (bias && b == NULL))
        return NULL;
    if (rng != NULL) {
        /* torch.nn.Conv2d.reset_parameters: kaiming_uniform(a = sqrt(5)) gives the bound
         * gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)), i.e. 1 / sqrt(fan_in); the
         * bias uses the same bound. */
        float bound = (float)(1.0 / sqrt((double)(group_in * kernel_h * kernel_w)));
        if (dg_init_uniform(weight, rng, -bound, bound) != DG_OK ||
            (b != NULL && dg_init_uniform(b, rng, -bound, bound) != DG_OK))
            return NULL;
    }
    return dg_activate(g, dg_conv2d(g, x, weight, b, params), act);
}

dg_node *dg_batch_norm_layer(dg_graph *g, dg_node *x, float momentum, float eps,
                             const char *name, dg_node **running_mean, dg_node **running_var)
{
    if (g == NULL || dg_graph_status(g) != DG_OK)
        return NULL;
    if (x == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "batch_norm_layer: input is NULL");
    if (name == NULL || *name == '\0')
        return dg__fail(g, DG_ERR_INVALID_ARG, "batch_norm_layer: name is NULL or empty");
    if (dg_node_ndim(x) < 2)
        return dg__fail(g, DG_ERR_SHAPE, "batch_norm_layer '%s': input has %d dimensions, "
                        "[N, C, ...] needed", name, dg_node_ndim(x));
    int64_t channels = dg_node_dim(x, 1);
    char weight_name[256], bias_name[256];
    snprintf(weight_name, sizeof weight_name, "%s.weight", name);
    snprintf(bias_name, sizeof bias_name, "%s.bias", name);
    dg_node *gamma = dg_param(g, weight_name, 1, (int64_t[]){channels});
    dg_node *beta = dg_param(g, bias_name, 1, (int64_t[]){channels});
    float *init = dg__malloc((size_t)channels * sizeof *init);
    if (init == NULL)
        return dg__fail(g, DG_ERR_NOMEM, "batch_norm_layer '%s': out of memory", name);
    for (int64_t c = 0; c < channels; c++)
        init[c] = 0.0f;
    dg_node *mean = dg_constant(g, 1, (int64_t[]){channels}, init);
    for (int64_t c = 0; c < channels; c++)
        init[c] = 1.0f;
    dg_node *var = dg_constant(g, 1, (int64_t[]){channels}, init);
    dg__free(init);
    if (gamma == NULL || beta == NULL || mean == NULL || var == NULL)
        return NULL;
    if (dg_init_constant(gamma, 1.0f) != DG_OK)
        return NULL;
    if (running_mean != NULL)
        *running_mean = mean;
    if (running_var != NULL)
        *running_var = var;
    return dg_batch_norm(g, x, gamma, beta, mean, var, dg_dropout_key(g), momentum, eps);
}

dg_node *dg_max_pool2d_layer(dg_graph *g, dg_node *x, int64_t kernel)
{
    dg_pool2d_params p = {.kernel = {kernel, kernel}};
    return dg_max_pool2d(g, x, &p);
}

dg_node *dg_avg_pool2d_layer(dg_graph *g, dg_node *x, int64_t kernel)
{
    dg_pool2d_params p = {.kernel = {kernel, kernel}, .count_include_pad = true};
    return dg_avg_pool2d(g, x, &p);
}

dg_node *dg_global_avg_pool2d(dg_graph *g, dg_node *x)
{
    dg_node *pooled = dg_adaptive_avg_pool2d(g, x, 1, 1);
    return dg_flatten(g, pooled);
}

dg_node *dg_flatten(dg_graph *g, dg_node *x)
{
    if (x == NULL || g == NULL || dg_graph_status(g) != DG_OK) {
        if (g != NULL && x == NULL && dg_graph_status(g) == DG_OK)
            dg__fail(g, DG_ERR_INVALID_ARG, "flatten: input is NULL");
        return NULL;
    }
    if (dg_node_ndim(x) < 1)
        return dg__fail(g, DG_ERR_SHAPE, "flatten: input is a scalar");
    int64_t features = 1;
    for (int i = 1; i < dg_node_ndim(x); i++)
        features *= dg_node_dim(x, i);
    return dg_reshape(g, x, 2, (int64_t[]){-1, features});
}
