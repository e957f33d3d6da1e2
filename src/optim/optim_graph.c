/*
 * The thin glue between optimizers and the graph core: parameters given as dg_node (kind
 * DG_NODE_PARAM, storage from dg_param_data) and gradients read from a plan with dg_data().
 * The maths is in the raw-array core (optim.c, update_*.c).
 */
#include "optim_internal.h"
#include "alloc.h"

#include <stdlib.h>

static const char *label(dg_node *node)
{
    const char *name = dg_node_name(node);
    return name != NULL ? name : "(unnamed)";
}

/* Checks params/grads, then binds the parameters' storage. Leaves opt failed on error. */
static void bind_nodes(dg_optim *opt, int n_params, dg_node *const *params,
                       dg_node *const *grads)
{
    if (n_params <= 0 || params == NULL || grads == NULL) {
        if (n_params <= 0)
            opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG,
                                         "no parameters (n_params = %d)", n_params);
        else
            opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG, "%s is NULL",
                                         params == NULL ? "params" : "grads");
        return;
    }
    dg_graph *graph = NULL;
    for (int i = 0; i < n_params; i++) {
        dg_node *param = params[i], *grad = grads[i];
        if (param == NULL) {
            opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG, "params[%d] is NULL", i);
            return;
        }
        if (graph == NULL)
            graph = dg_node_graph(param);
        if (dg_node_kind_of(param) != DG_NODE_PARAM || dg_node_dtype(param) != DG_F32) {
            opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG,
                                         "params[%d] (\"%s\") is not a float32 parameter", i,
                                         label(param));
            return;
        }
        if (grad == NULL) {
            opt->status = dg__optim_fail(opt, DG_ERR_INVALID_ARG,
                                         "grads[%d] (gradient of \"%s\") is NULL", i,
                                         label(param));
            return;
        }
        if (dg_node_graph(param) != graph || dg_node_graph(grad) != graph) {
            opt->status = dg__optim_fail(opt, DG_ERR_FOREIGN_NODE,
                                         "params[%d] or grads[%d] belongs to another graph", i,
                                         i);
            return;
        }
        if (dg_node_dtype(grad) != DG_F32 || dg_node_numel(grad) != dg_node_numel(param)) {
            opt->status = dg__optim_fail(
                opt, DG_ERR_SHAPE, "grads[%d] has %lld elements, params[%d] (\"%s\") has %lld",
                i, (long long)dg_node_numel(grad), i, label(param),
                (long long)dg_node_numel(param));
            return;
        }
    }
    float **data = dg__malloc((size_t)n_params * sizeof *data);
    int64_t *numel = dg__malloc((size_t)n_params * sizeof *numel);
    opt->param_nodes = dg__malloc((size_t)n_params * sizeof *opt->param_nodes);
    opt->grad_nodes = dg__malloc((size_t)n_params * sizeof *opt->grad_nodes);
    if (data == NULL || numel == NULL || opt->param_nodes == NULL || opt->grad_nodes == NULL) {
        opt->status = dg__optim_fail(opt, DG_ERR_NOMEM, "out of memory");
    } else {
        for (int i = 0; i < n_params; i++) {
            data[i] = dg_param_data(params[i]);
            numel[i] = dg_node_numel(params[i]);
            opt->param_nodes[i] = params[i];
            opt->grad_nodes[i] = grads[i];
        }
        dg__optim_bind(opt, n_params, data, numel);
    }
    dg__free(data);
    dg__free(numel);
}

static dg_optim *new_from_nodes(dg_optim_kind kind, const void *cfg, int n_params,
                                dg_node *const *params, dg_node *const *grads)
{
    dg_optim *opt = dg__optim_alloc(kind, cfg);
    if (opt != NULL && opt->status == DG_OK)
        bind_nodes(opt, n_params, params, grads);
    return opt;
}

dg_optim *dg_optim_new_sgd(int n_params, dg_node *const *params, dg_node *const *grads,
                           const dg_sgd_config *cfg)
{
    return new_from_nodes(DG_OPTIM_SGD, cfg, n_params, params, grads);
}

dg_optim *dg_optim_new_adam(int n_params, dg_node *const *params, dg_node *const *grads,
                            const dg_adam_config *cfg)
{
    return new_from_nodes(DG_OPTIM_ADAM, cfg, n_params, params, grads);
}

dg_optim *dg_optim_new_adamw(int n_params, dg_node *const *params, dg_node *const *grads,
                             const dg_adam_config *cfg)
{
    return new_from_nodes(DG_OPTIM_ADAMW, cfg, n_params, params, grads);
}

dg_optim *dg_optim_new_rmsprop(int n_params, dg_node *const *params, dg_node *const *grads,
                               const dg_rmsprop_config *cfg)
{
    return new_from_nodes(DG_OPTIM_RMSPROP, cfg, n_params, params, grads);
}

dg_optim *dg_optim_new_adagrad(int n_params, dg_node *const *params, dg_node *const *grads,
                               const dg_adagrad_config *cfg)
{
    return new_from_nodes(DG_OPTIM_ADAGRAD, cfg, n_params, params, grads);
}

dg_node *dg_optim_param_node(const dg_optim *opt, int param_index)
{
    if (opt == NULL || opt->status != DG_OK || opt->param_nodes == NULL || param_index < 0 ||
        param_index >= opt->n_params)
        return NULL;
    return opt->param_nodes[param_index];
}

dg_node *dg_optim_grad_node(const dg_optim *opt, int param_index)
{
    if (opt == NULL || opt->status != DG_OK || opt->grad_nodes == NULL || param_index < 0 ||
        param_index >= opt->n_params)
        return NULL;
    return opt->grad_nodes[param_index];
}

dg_status dg_optim_step(dg_optim *opt, dg_plan *plan)
{
    if (opt == NULL)
        return DG_ERR_INVALID_ARG;
    if (opt->status != DG_OK)
        return opt->status;
    if (plan == NULL)
        return dg__optim_fail(opt, DG_ERR_INVALID_ARG, "step: plan is NULL");
    if (opt->grad_nodes == NULL)
        return dg__optim_fail(opt, DG_ERR_STATE,
                              "step: made from raw arrays, it has no gradient nodes "
                              "(use dg_optim_step_raw)");
    if (dg_plan_graph(plan) != dg_node_graph(opt->param_nodes[0]))
        return dg__optim_fail(opt, DG_ERR_FOREIGN_NODE,
                              "step: the plan belongs to another graph");
    for (int i = 0; i < opt->n_params; i++) {
        dg_node *grad = opt->grad_nodes[i];
        const int64_t numel = opt->offset[i + 1] - opt->offset[i];
        const float *data = dg_data(plan, grad);
        if (data == NULL)
            return dg__optim_fail(opt, DG_ERR_INVALID_ARG,
                                  "step: the plan does not hold grads[%d] (gradient of "
                                  "\"%s\"); compile it among the plan's outputs",
                                  i, label(opt->param_nodes[i]));
        if (dg_plan_numel(plan, grad) != numel)
            return dg__optim_fail(opt, DG_ERR_SHAPE,
                                  "step: grads[%d] has %lld elements in the plan, "
                                  "parameter \"%s\" has %lld",
                                  i, (long long)dg_plan_numel(plan, grad),
                                  label(opt->param_nodes[i]), (long long)numel);
        opt->grad_ptrs[i] = data;
    }
    for (int i = 0; i < opt->n_params; i++)
        opt->param_data[i] = dg_param_data(opt->param_nodes[i]);
    /* By default the update runs on the threads the plan's runs use now, so that it follows
     * the plan's adaptive count (dg_plan_set_threads) instead of keeping a team of every core
     * on a machine where that team is slow. */
    const int threads = dg__optim_threads_default(opt) ? dg_plan_threads_used(plan)
                                                       : opt->n_threads;
    return dg__optim_apply(opt, opt->grad_ptrs, threads);
}
