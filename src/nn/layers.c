/* Layer helpers: dense layers and activations by name, dropout keys, parameter lists. */
#include "dagrad.h"

#include <stdio.h>
#include <string.h>

#include "op.h"

static const char *const activation_names[DG_ACT_COUNT] = {
    [DG_ACT_NONE] = "none",       [DG_ACT_RELU] = "relu", [DG_ACT_SIGMOID] = "sigmoid",
    [DG_ACT_TANH] = "tanh",       [DG_ACT_GELU] = "gelu", [DG_ACT_SOFTMAX] = "softmax",
};

const char *dg_activation_name(dg_activation act)
{
    return (act >= 0 && act < DG_ACT_COUNT) ? activation_names[act] : "unknown";
}

dg_status dg_activation_from_name(const char *name, dg_activation *out)
{
    if (name == NULL || out == NULL)
        return DG_ERR_NOT_FOUND;
    if (strcmp(name, "linear") == 0) {
        *out = DG_ACT_NONE;
        return DG_OK;
    }
    for (int i = 0; i < DG_ACT_COUNT; i++) {
        if (strcmp(name, activation_names[i]) == 0) {
            *out = (dg_activation)i;
            return DG_OK;
        }
    }
    return DG_ERR_NOT_FOUND;
}

dg_node *dg_activate(dg_graph *g, dg_node *x, dg_activation act)
{
    if (x == NULL) { /* reported, or passed through silently after an earlier error */
        if (dg_graph_status(g) == DG_OK)
            dg__fail(g, DG_ERR_INVALID_ARG, "activate: input is NULL");
        return NULL;
    }
    switch (act) {
    case DG_ACT_NONE: return x;
    case DG_ACT_RELU: return dg_relu(g, x);
    case DG_ACT_SIGMOID: return dg_sigmoid(g, x);
    case DG_ACT_TANH: return dg_tanh(g, x);
    case DG_ACT_GELU: return dg_gelu(g, x);
    case DG_ACT_SOFTMAX: return dg_softmax(g, x, -1);
    case DG_ACT_COUNT: break;
    }
    if (dg_graph_status(g) == DG_OK)
        dg__fail(g, DG_ERR_INVALID_ARG, "activate: unknown activation %d", (int)act);
    return NULL;
}

static dg_node *dense_in_scope(dg_graph *g, dg_node *x, int64_t units, dg_activation act,
                               const char *name, dg_rng *rng);

/* The layer's nodes go into a name scope called after the layer (DOT draws it as a box). */
dg_node *dg_dense(dg_graph *g, dg_node *x, int64_t units, dg_activation act, const char *name,
                  dg_rng *rng)
{
    if (g == NULL || dg_graph_status(g) != DG_OK)
        return NULL;
    if (name == NULL || *name == '\0')
        return dg__fail(g, DG_ERR_INVALID_ARG, "dense: name is NULL or empty");
    if (dg_scope_push(g, name) != DG_OK)
        return NULL;
    dg_node *out = dense_in_scope(g, x, units, act, name, rng);
    dg_scope_pop(g);
    return out;
}

static dg_node *dense_in_scope(dg_graph *g, dg_node *x, int64_t units, dg_activation act,
                               const char *name, dg_rng *rng)
{
    if (x == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "dense: input is NULL");
    if (name == NULL || *name == '\0')
        return dg__fail(g, DG_ERR_INVALID_ARG, "dense: name is NULL or empty");
    if (units <= 0)
        return dg__fail(g, DG_ERR_INVALID_ARG, "dense '%s': %lld units (must be > 0)", name,
                        (long long)units);
    if (act < 0 || act >= DG_ACT_COUNT)
        return dg__fail(g, DG_ERR_INVALID_ARG, "dense '%s': unknown activation %d", name,
                        (int)act);
    if (dg_node_graph(x) != g)
        return dg__fail(g, DG_ERR_FOREIGN_NODE, "dense '%s': input belongs to another graph",
                        name);
    if (dg_node_ndim(x) < 2)
        return dg__fail(g, DG_ERR_SHAPE, "dense '%s': input has %d dimensions, at least 2 "
                        "([batch, features]) needed", name, dg_node_ndim(x));
    char weight_name[256], bias_name[256];
    snprintf(weight_name, sizeof weight_name, "%s.weight", name);
    snprintf(bias_name, sizeof bias_name, "%s.bias", name);
    int64_t in = dg_node_dim(x, -1);
    dg_node *weight = dg_param(g, weight_name, 2, (int64_t[]){in, units});
    dg_node *bias = dg_param(g, bias_name, 1, (int64_t[]){units});
    if (weight == NULL || bias == NULL)
        return NULL;
    if (rng != NULL) {
        dg_status st = (act == DG_ACT_RELU || act == DG_ACT_GELU)
                           ? dg_init_kaiming_uniform(weight, rng, 0.0f, DG_FAN_IN,
                                                     DG_NONLIN_RELU)
                           : dg_init_xavier_uniform(weight, rng, 1.0f);
        if (st != DG_OK)
            return NULL;
    }
    return dg_activate(g, dg_add(g, dg_matmul(g, x, weight), bias), act);
}

dg_node *dg_dense_named(dg_graph *g, dg_node *x, int64_t units, const char *activation,
                        const char *name, dg_rng *rng)
{
    dg_activation act;
    if (dg_activation_from_name(activation, &act) != DG_OK) {
        if (dg_graph_status(g) == DG_OK)
            dg__fail(g, DG_ERR_NOT_FOUND, "dense '%s': unknown activation '%s' (none, linear, "
                     "relu, sigmoid, tanh, gelu, softmax)", name ? name : "",
                     activation ? activation : "(null)");
        return NULL;
    }
    return dg_dense(g, x, units, act, name, rng);
}

dg_status dg_dropout_feed_key(dg_plan *plan, uint64_t seed, int64_t step, bool training)
{
    if (plan == NULL)
        return DG_ERR_INVALID_ARG;
    /* Looked up by name on every step: a hash lookup, not a walk over the graph. */
    dg_node *n = dg__find_name(dg_plan_graph(plan), DG_DROPOUT_KEY_NAME);
    if (n == NULL || dg_plan_numel(plan, n) == 0)
        return DG_OK; /* the graph or the plan does not use dropout */
    /* Another node may carry the name (a user's input of another shape): never feed it 3
     * values it does not hold. */
    if (dg_node_kind_of(n) != DG_NODE_INPUT || dg_node_dtype(n) != DG_I32 ||
        dg_plan_ndim(plan, n) != 1 || dg_plan_numel(plan, n) != 3) {
        dg_status st = dg_node_dtype(n) != DG_I32 ? DG_ERR_DTYPE : DG_ERR_SHAPE;
        dg_graph_set_error(dg_plan_graph(plan), st, "dropout_feed_key: the node named '%s' "
                           "(node %d) is not an int32 [3] input", DG_DROPOUT_KEY_NAME,
                           dg_node_index(n));
        return st;
    }
    /* The seed folds into 32 bits; the step wraps, which only repeats masks after 2^32. */
    int32_t key[3] = {(int32_t)(uint32_t)(seed ^ (seed >> 32)), (int32_t)(uint32_t)step,
                      training ? 1 : 0};
    return dg_feed(plan, n, key);
}

int dg_graph_params(dg_graph *g, int max, dg_node **out)
{
    int found = 0, count = dg_graph_node_count(g);
    for (int i = 0; i < count; i++) {
        dg_node *n = dg_graph_node(g, i);
        if (dg_node_kind_of(n) != DG_NODE_PARAM)
            continue;
        if (found < max && out != NULL)
            out[found] = n;
        found++;
    }
    return found;
}
