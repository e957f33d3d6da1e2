/*
 * Parameter initialisers: constant, uniform, normal, Xavier/Glorot, Kaiming/He.
 *
 * The formulas follow torch.nn.init, with one deliberate difference: the fan computation reads
 * dagrad's dense-weight layout [in_features, out_features] (see dagrad_nn.h), so that
 * "fan_in" means the same thing for a dagrad weight as for the transposed PyTorch weight.
 */
#include "dagrad.h"

#include "op.h" /* dg__fail: the core's way to stick a message to a graph */

#include <math.h>

/* Checks that `param` is a parameter with storage and, when `rng_needed`, that rng is set.
 * Sticks the message to the graph when there is one. */
static dg_status check_param(const char *who, dg_node *param, const dg_rng *rng, bool rng_needed)
{
    if (param == NULL)
        return DG_ERR_INVALID_ARG; /* no graph to report to */
    dg_graph *g = dg_node_graph(param);
    if (dg_node_kind_of(param) != DG_NODE_PARAM || dg_param_data(param) == NULL) {
        const char *name = dg_node_name(param);
        dg__fail(g, DG_ERR_INVALID_ARG, "%s: node %d ('%s', %s) is not a parameter", who,
                 dg_node_index(param), name ? name : "", dg_node_op_name(param));
        return DG_ERR_INVALID_ARG;
    }
    if (rng_needed && rng == NULL) {
        dg__fail(g, DG_ERR_INVALID_ARG, "%s: rng is NULL (parameter '%s')", who,
                 dg_node_name(param));
        return DG_ERR_INVALID_ARG;
    }
    return DG_OK;
}

static dg_status fail_arg(const char *who, dg_node *param, const char *what, double value)
{
    dg__fail(dg_node_graph(param), DG_ERR_INVALID_ARG, "%s: %s (%g) for parameter '%s'", who,
             what, value, dg_node_name(param));
    return DG_ERR_INVALID_ARG;
}

/* Fills with lo + (hi - lo) * u. The caller has checked lo <= hi, both finite. */
static void fill_uniform(float *data, int64_t n, dg_rng *rng, double lo, double hi)
{
    float hi_f = (float)hi;
    /* Rounding to float can land on hi when hi - lo is large relative to lo; the largest
     * float below hi keeps the interval half-open as documented. */
    float below_hi = nextafterf(hi_f, -INFINITY);
    for (int64_t i = 0; i < n; i++) {
        float value = (float)(lo + (hi - lo) * (double)dg_rng_uniform(rng));
        data[i] = (value >= hi_f && lo < hi) ? below_hi : value;
    }
}

static void fill_normal(float *data, int64_t n, dg_rng *rng, double mean, double std)
{
    for (int64_t i = 0; i < n; i++)
        data[i] = (float)(mean + std * dg_rng_normal(rng));
}

float dg_init_gain(dg_nonlinearity nonlinearity, float param)
{
    switch (nonlinearity) {
    case DG_NONLIN_LINEAR:
    case DG_NONLIN_SIGMOID:
        return 1.0f;
    case DG_NONLIN_TANH:
        return 5.0f / 3.0f;
    case DG_NONLIN_RELU:
        return (float)sqrt(2.0);
    case DG_NONLIN_LEAKY_RELU:
        return (float)sqrt(2.0 / (1.0 + (double)param * param));
    case DG_NONLIN_SELU:
        return 0.75f;
    }
    return NAN;
}

dg_status dg_init_fans(const dg_node *param, int64_t *fan_in, int64_t *fan_out)
{
    if (param == NULL || fan_in == NULL || fan_out == NULL)
        return DG_ERR_INVALID_ARG;
    int ndim = dg_node_ndim(param);
    if (ndim < 2)
        return DG_ERR_SHAPE;
    int64_t receptive = 1;
    for (int axis = 2; axis < ndim; axis++)
        receptive *= dg_node_dim(param, axis);
    *fan_in = dg_node_dim(param, 0) * receptive;
    *fan_out = dg_node_dim(param, 1) * receptive;
    return DG_OK;
}

/* dg_init_fans for an initialiser: reports a shape error to the graph. */
static dg_status fans_for(const char *who, dg_node *param, int64_t *fan_in, int64_t *fan_out)
{
    dg_status status = dg_init_fans(param, fan_in, fan_out);
    if (status != DG_OK)
        dg__fail(dg_node_graph(param), status,
                 "%s: parameter '%s' has %d dimension(s); fans need at least 2 "
                 "([in_features, out_features, ...])",
                 who, dg_node_name(param), dg_node_ndim(param));
    return status;
}

dg_status dg_init_constant(dg_node *param, float value)
{
    dg_status status = check_param("init_constant", param, NULL, false);
    if (status != DG_OK)
        return status;
    float *data = dg_param_data(param);
    int64_t n = dg_node_numel(param);
    for (int64_t i = 0; i < n; i++)
        data[i] = value;
    return DG_OK;
}

dg_status dg_init_uniform(dg_node *param, dg_rng *rng, float lo, float hi)
{
    dg_status status = check_param("init_uniform", param, rng, true);
    if (status != DG_OK)
        return status;
    if (!isfinite(lo))
        return fail_arg("init_uniform", param, "lo is not finite", lo);
    if (!isfinite(hi))
        return fail_arg("init_uniform", param, "hi is not finite", hi);
    if (lo > hi)
        return fail_arg("init_uniform", param, "lo > hi; lo", lo);
    fill_uniform(dg_param_data(param), dg_node_numel(param), rng, lo, hi);
    return DG_OK;
}

dg_status dg_init_normal(dg_node *param, dg_rng *rng, float mean, float std)
{
    dg_status status = check_param("init_normal", param, rng, true);
    if (status != DG_OK)
        return status;
    if (!isfinite(mean))
        return fail_arg("init_normal", param, "mean is not finite", mean);
    if (!isfinite(std) || std < 0.0f)
        return fail_arg("init_normal", param, "std must be finite and >= 0", std);
    fill_normal(dg_param_data(param), dg_node_numel(param), rng, mean, std);
    return DG_OK;
}

/* Shared by the four fan-based initialisers once std is known. */
static dg_status fill_scaled(const char *who, dg_node *param, dg_rng *rng, double std,
                             bool uniform)
{
    if (!isfinite(std) || std < 0.0)
        return fail_arg(who, param, "computed std is not finite and >= 0 (check the gain)", std);
    if (uniform) {
        double bound = sqrt(3.0) * std;
        fill_uniform(dg_param_data(param), dg_node_numel(param), rng, -bound, bound);
    } else {
        fill_normal(dg_param_data(param), dg_node_numel(param), rng, 0.0, std);
    }
    return DG_OK;
}

static dg_status xavier(const char *who, dg_node *param, dg_rng *rng, float gain, bool uniform)
{
    dg_status status = check_param(who, param, rng, true);
    int64_t fan_in = 0, fan_out = 0;
    if (status == DG_OK)
        status = fans_for(who, param, &fan_in, &fan_out);
    if (status != DG_OK)
        return status;
    double std = (double)gain * sqrt(2.0 / (double)(fan_in + fan_out));
    return fill_scaled(who, param, rng, std, uniform);
}

dg_status dg_init_xavier_uniform(dg_node *param, dg_rng *rng, float gain)
{
    return xavier("init_xavier_uniform", param, rng, gain, true);
}

dg_status dg_init_xavier_normal(dg_node *param, dg_rng *rng, float gain)
{
    return xavier("init_xavier_normal", param, rng, gain, false);
}

static dg_status kaiming(const char *who, dg_node *param, dg_rng *rng, float a, dg_fan_mode mode,
                         dg_nonlinearity nonlinearity, bool uniform)
{
    dg_status status = check_param(who, param, rng, true);
    int64_t fan_in = 0, fan_out = 0;
    if (status == DG_OK)
        status = fans_for(who, param, &fan_in, &fan_out);
    if (status != DG_OK)
        return status;
    if (mode != DG_FAN_IN && mode != DG_FAN_OUT)
        return fail_arg(who, param, "unknown fan mode", (double)mode);
    double gain = dg_init_gain(nonlinearity, a);
    if (isnan(gain))
        return fail_arg(who, param, "unknown nonlinearity", (double)nonlinearity);
    double fan = (double)(mode == DG_FAN_IN ? fan_in : fan_out);
    return fill_scaled(who, param, rng, gain / sqrt(fan), uniform);
}

dg_status dg_init_kaiming_uniform(dg_node *param, dg_rng *rng, float a, dg_fan_mode mode,
                                  dg_nonlinearity nonlinearity)
{
    return kaiming("init_kaiming_uniform", param, rng, a, mode, nonlinearity, true);
}

dg_status dg_init_kaiming_normal(dg_node *param, dg_rng *rng, float a, dg_fan_mode mode,
                                 dg_nonlinearity nonlinearity)
{
    return kaiming("init_kaiming_normal", param, rng, a, mode, nonlinearity, false);
}
