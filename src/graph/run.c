/* The executor: feeding inputs, running the steps of a plan, reading values back. */
#include "plan_internal.h"

#include <string.h>

dg_status dg_feed(dg_plan *p, dg_node *input, const void *data)
{
    dg_status st = dg__plan_check(p, input, "feed");
    if (st != DG_OK)
        return st;
    if (input->kind != DG_NODE_INPUT) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "feed: %s is not an input",
                           dg__node_str(input, (char[160]){0}, 160));
        return DG_ERR_INVALID_ARG;
    }
    if (data == NULL) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "feed: data for input '%s' is NULL",
                           input->name);
        return DG_ERR_INVALID_ARG;
    }
    struct dg_plan_value *v = &p->values[input->index];
    if (!p->runnable || dg__numel(&v->shape) > v->input_capacity) {
        dg_graph_set_error(p->graph, DG_ERR_STATE, "feed: the plan cannot run since its last shape "
                           "change failed; set a valid shape first");
        return DG_ERR_STATE;
    }
    memcpy(v->input_buffer, data, (size_t)dg__numel(&v->shape) * 4);
    v->fed = true;
    return DG_OK;
}

dg_status dg_feed_n(dg_plan *p, dg_node *input, const void *data, int64_t count)
{
    dg_status st = dg__plan_check(p, input, "feed");
    if (st != DG_OK)
        return st;
    if (input->kind != DG_NODE_INPUT)
        return dg_feed(p, input, data); /* reports "not an input" */
    int64_t numel = dg__numel(&p->values[input->index].shape);
    if (count != numel) {
        char buf[128];
        dg_graph_set_error(p->graph, DG_ERR_SHAPE, "feed: input '%s' %s takes %lld values, "
                           "%lld given",
                           input->name ? input->name : dg_node_op_name(input),
                           dg__shape_str(&p->values[input->index].shape, buf, sizeof buf),
                           (long long)numel, (long long)count);
        return DG_ERR_SHAPE;
    }
    return dg_feed(p, input, data);
}

dg_status dg_run(dg_plan *p)
{
    if (p == NULL)
        return DG_ERR_INVALID_ARG;
    dg_graph *g = p->graph;
    if (!p->runnable) {
        dg_graph_set_error(g, DG_ERR_STATE, "run: the plan cannot run since its last shape change "
                           "failed (a shape error or out of memory); set a valid shape first");
        return DG_ERR_STATE;
    }
    for (int k = 0; k < p->n_input_nodes; k++) {
        int i = p->input_nodes[k];
        if (!p->values[i].fed) {
            dg_graph_set_error(g, DG_ERR_STATE, "run: input '%s' was not fed", g->nodes[i]->name);
            return DG_ERR_STATE;
        }
    }
    struct dg_exec_fault fault = {0};
    /* The thread policy (threads.c) picks the count of this run; an adaptive one is told how
     * long the run took, and during a probe how long it has taken so far after each step. */
    struct dg__thread_policy *policy = &p->threads;
    const bool timed = dg__thread_policy_timed(policy);
    const double start = timed ? dg__seconds() : 0.0;
    struct dg_exec_ctx ctx = {
        .n_threads = dg__thread_policy_begin(policy),
        .workspace = p->workspace_bytes > 0 ? p->workspace : NULL,
        .workspace_bytes = p->workspace_bytes,
        .fault = &fault,
        .collective = p->collective,
        .collective_user = p->collective_user,
    };
    const bool probing = dg__thread_policy_probing(policy);
    struct dg_tensor *in = p->step_inputs;
    /* One clock read per step, only when a step timer or the profile listens. */
    const bool timing = p->step_timer != NULL || p->profile_seconds != NULL;
    double t_step = timing ? dg__profile_clock(p) : 0.0;
    for (int s = 0; s < p->n_steps; s++) {
        const dg_node *n = g->nodes[p->steps[s]];
        const struct dg_plan_value *v = &p->values[n->index];
        if (v->is_view)
            continue; /* aliases its root's storage: nothing to compute */
        void *out_data = dg__plan_value_data(p, n->index);
        const struct dg_op_def *def = n->def;
        if (def->view) {
            /* A view given memory of its own (the unshared reference plan, the gradient
             * block): the same elements, copied. */
            memcpy(out_data, dg__plan_value_data(p, n->inputs[0]->index),
                   (size_t)dg__numel(&v->shape) * 4);
            dg__plan_block_ready(p, n->index);
            if (timing)
                t_step = dg__plan_step_timed(p, s, t_step);
            continue;
        }
        for (int i = 0; i < n->n_inputs; i++) {
            int idx = n->inputs[i]->index;
            in[i].data = dg__plan_value_data(p, idx);
            in[i].shape = p->values[idx].shape;
        }
        struct dg_tensor out = {.data = out_data, .shape = v->shape};
        def->forward(def, n->attrs, n->n_inputs, in, &out, &ctx);
        if (fault.raised) {
            /* Invalid input data (an index out of range): the kernel wrote defined values
             * and reported; the rest of the plan does not run (and the partial run is not
             * timed for the thread policy). */
            dg_graph_set_error(g, DG_ERR_INVALID_ARG, "run: %s: %s",
                               dg__node_str(n, (char[160]){0}, 160), fault.msg);
            return DG_ERR_INVALID_ARG;
        }
        dg__plan_block_ready(p, n->index);
        if (timing)
            t_step = dg__plan_step_timed(p, s, t_step);
        if (probing)
            ctx.n_threads = dg__thread_policy_step(policy, dg__seconds() - start);
    }
    /* Gradient-block entries that could not be computed in place there. */
    for (int k = 0; k < p->n_block; k++)
        if (p->block_copy[k])
            memcpy(p->arena + p->block_offset[k] * 4, dg__plan_value_data(p, p->block_nodes[k]),
                   (size_t)(p->block_offset[k + 1] - p->block_offset[k]) * 4);
    dg__plan_block_copied(p);
    if (p->profile_seconds != NULL)
        p->profile_runs++;
    if (timed)
        dg__thread_policy_end(policy, dg__seconds() - start);
    return DG_OK;
}

/* Values the plan keeps after a run: outputs, inputs, parameters and constants. */
static const void *kept_data(dg_plan *p, dg_node *node, dg_dtype dtype, const char *what)
{
    if (dg__plan_check(p, node, what) != DG_OK)
        return NULL;
    const struct dg_plan_value *v = &p->values[node->index];
    if (v->home == DG_HOME_ARENA && !v->pinned) {
        dg_graph_set_error(p->graph, DG_ERR_INVALID_ARG, "%s: %s is an intermediate whose "
                           "memory the plan reuses; list it among the outputs of dg_compile",
                           what, dg__node_str(node, (char[160]){0}, 160));
        return NULL;
    }
    if (v->shape.dtype != dtype) {
        dg_graph_set_error(p->graph, DG_ERR_DTYPE, "%s: %s holds %s values", what,
                           dg__node_str(node, (char[160]){0}, 160),
                           v->shape.dtype == DG_F32 ? "float32" : "int32");
        return NULL;
    }
    return dg__plan_value_data(p, node->index);
}

const float *dg_data(dg_plan *p, dg_node *node)
{
    return kept_data(p, node, DG_F32, "data");
}

const int32_t *dg_data_i32(dg_plan *p, dg_node *node)
{
    return kept_data(p, node, DG_I32, "data_i32");
}

dg_status dg_plan_set_collective(dg_plan *plan, dg_sum_fn sum, void *user)
{
    if (plan == NULL)
        return DG_ERR_INVALID_ARG;
    plan->collective = sum;
    plan->collective_user = sum != NULL ? user : NULL;
    return DG_OK;
}
