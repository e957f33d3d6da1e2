/*
 * Op cases for the pooling family (src/ops/pool.c). The PyTorch side of each row, with the same
 * name, is in tests/gen/cases_pool.py; see op_cases.h for how rows are checked. Kernel, stride,
 * padding (-inf for max, zeros counted or not for average), dilation, ceil_mode and uneven
 * adaptive bins are covered, and each internal gradient op has its own row.
 */
#include "pool.h"
#include "op_cases.h"

#include <string.h>

static dg_pool2d_params pool(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                             int64_t pw)
{
    return (dg_pool2d_params){.kernel = {kh, kw}, .stride = {sh, sw}, .padding = {ph, pw},
                              .count_include_pad = true};
}

static dg_node *build_max_basic(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = {.kernel = {2, 2}}; /* stride defaults to the kernel */
    return dg_max_pool2d(g, in[0], &p);
}
static dg_node *build_max_pad(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(3, 3, 2, 2, 1, 1);
    return dg_max_pool2d(g, in[0], &p);
}
static dg_node *build_max_pad1(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(3, 3, 1, 1, 1, 1);
    return dg_max_pool2d(g, in[0], &p);
}
static dg_node *build_max_ceil(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(3, 3, 2, 2, 0, 0);
    p.ceil_mode = true;
    return dg_max_pool2d(g, in[0], &p);
}
static dg_node *build_max_ceil_pad(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(2, 2, 2, 2, 1, 1);
    p.ceil_mode = true;
    return dg_max_pool2d(g, in[0], &p);
}
static dg_node *build_max_dilation(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(2, 2, 1, 2, 0, 0);
    p.dilation[0] = p.dilation[1] = 2;
    return dg_max_pool2d(g, in[0], &p);
}
static dg_node *build_max_asym(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(3, 2, 2, 1, 1, 0);
    return dg_max_pool2d(g, in[0], &p);
}

static dg_node *build_max_2x2(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(2, 2, 2, 2, 0, 0);
    return dg_max_pool2d(g, in[0], &p);
}
static dg_node *build_max_2x2_ceil(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(2, 2, 2, 2, 0, 0);
    p.ceil_mode = true;
    return dg_max_pool2d(g, in[0], &p);
}

static struct dg__pool_attrs attrs(int64_t k, int64_t s, int64_t p, int64_t include_pad)
{
    struct dg__pool_attrs a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < 2; i++) {
        a.kernel[i] = k;
        a.stride[i] = s;
        a.padding[i] = p;
        a.dilation[i] = 1;
    }
    a.count_include_pad = (int32_t)include_pad;
    return a;
}
static dg_node *build_max_grad(dg_graph *g, dg_node *const *in)
{
    struct dg__pool_attrs a = attrs(3, 2, 1, 0);
    return dg__make_node(g, DG_OP_max_pool2d_grad, 2, in, &a);
}
static dg_node *build_max_gather(dg_graph *g, dg_node *const *in)
{
    struct dg__pool_attrs a = attrs(3, 2, 1, 0);
    return dg__make_node(g, DG_OP_max_pool2d_gather, 2, in, &a);
}

static dg_node *build_max_grad_2x2(dg_graph *g, dg_node *const *in)
{
    struct dg__pool_attrs a = attrs(2, 2, 0, 0);
    return dg__make_node(g, DG_OP_max_pool2d_grad, 2, in, &a);
}
static dg_node *build_max_gather_2x2(dg_graph *g, dg_node *const *in)
{
    struct dg__pool_attrs a = attrs(2, 2, 0, 0);
    return dg__make_node(g, DG_OP_max_pool2d_gather, 2, in, &a);
}

static dg_node *build_avg_basic(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = {.kernel = {2, 2}, .count_include_pad = true};
    return dg_avg_pool2d(g, in[0], &p);
}
static dg_node *build_avg_pad(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(3, 3, 2, 2, 1, 1);
    return dg_avg_pool2d(g, in[0], &p);
}
static dg_node *build_avg_exclude(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(3, 3, 2, 2, 1, 1);
    p.count_include_pad = false;
    return dg_avg_pool2d(g, in[0], &p);
}
static dg_node *build_avg_ceil(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(3, 3, 2, 2, 1, 1);
    p.ceil_mode = true;
    return dg_avg_pool2d(g, in[0], &p);
}
static dg_node *build_avg_ceil_exclude(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(2, 2, 2, 2, 1, 1);
    p.ceil_mode = true;
    p.count_include_pad = false;
    return dg_avg_pool2d(g, in[0], &p);
}
static dg_node *build_avg_asym(dg_graph *g, dg_node *const *in)
{
    dg_pool2d_params p = pool(3, 2, 1, 2, 0, 0);
    return dg_avg_pool2d(g, in[0], &p);
}
static dg_node *build_avg_grad(dg_graph *g, dg_node *const *in)
{
    struct dg__pool_attrs a = attrs(3, 2, 1, 1);
    return dg__make_node(g, DG_OP_avg_pool2d_grad, 2, in, &a);
}

static dg_node *build_global(dg_graph *g, dg_node *const *in)
{
    return dg_adaptive_avg_pool2d(g, in[0], 1, 1);
}
static dg_node *build_adaptive_uneven(dg_graph *g, dg_node *const *in)
{
    return dg_adaptive_avg_pool2d(g, in[0], 3, 2);
}
static dg_node *build_adaptive_larger(dg_graph *g, dg_node *const *in)
{
    return dg_adaptive_avg_pool2d(g, in[0], 4, 5);
}
static dg_node *build_adaptive_grad(dg_graph *g, dg_node *const *in)
{
    struct dg__pool_attrs a;
    memset(&a, 0, sizeof a);
    a.out_size[0] = 3;
    a.out_size[1] = 2;
    return dg__make_node(g, DG_OP_adaptive_avg_pool2d_grad, 2, in, &a);
}

const struct dg_op_case dg_cases_pool[] = {
    {.name = "max_pool2d_basic", .op = "max_pool2d", .build = build_max_basic},
    {.name = "max_pool2d_pad", .op = "max_pool2d", .build = build_max_pad},
    {.name = "max_pool2d_pad_negative", .op = "max_pool2d", .build = build_max_pad1},
    {.name = "max_pool2d_ceil", .op = "max_pool2d", .build = build_max_ceil},
    {.name = "max_pool2d_ceil_pad", .op = "max_pool2d", .build = build_max_ceil_pad},
    {.name = "max_pool2d_dilation", .op = "max_pool2d", .build = build_max_dilation},
    {.name = "max_pool2d_asym", .op = "max_pool2d", .build = build_max_asym},
    {.name = "max_pool2d_grad_basic", .op = "max_pool2d_grad", .build = build_max_grad},
    {.name = "max_pool2d_gather_basic", .op = "max_pool2d_gather", .build = build_max_gather},
    {.name = "max_pool2d_2x2_odd", .op = "max_pool2d", .build = build_max_2x2},
    {.name = "max_pool2d_2x2_wide", .op = "max_pool2d", .build = build_max_2x2},
    {.name = "max_pool2d_2x2_ceil_even", .op = "max_pool2d", .build = build_max_2x2_ceil},
    {.name = "max_pool2d_2x2_ceil_odd", .op = "max_pool2d", .build = build_max_2x2_ceil},
    {.name = "max_pool2d_grad_2x2", .op = "max_pool2d_grad", .build = build_max_grad_2x2},
    {.name = "max_pool2d_gather_2x2", .op = "max_pool2d_gather", .build = build_max_gather_2x2},
    {.name = "avg_pool2d_basic", .op = "avg_pool2d", .build = build_avg_basic},
    {.name = "avg_pool2d_pad", .op = "avg_pool2d", .build = build_avg_pad},
    {.name = "avg_pool2d_exclude_pad", .op = "avg_pool2d", .build = build_avg_exclude},
    {.name = "avg_pool2d_ceil", .op = "avg_pool2d", .build = build_avg_ceil},
    {.name = "avg_pool2d_ceil_exclude", .op = "avg_pool2d", .build = build_avg_ceil_exclude},
    {.name = "avg_pool2d_asym", .op = "avg_pool2d", .build = build_avg_asym},
    {.name = "avg_pool2d_grad_basic", .op = "avg_pool2d_grad", .build = build_avg_grad},
    {.name = "adaptive_avg_pool2d_global", .op = "adaptive_avg_pool2d", .build = build_global},
    {.name = "adaptive_avg_pool2d_uneven", .op = "adaptive_avg_pool2d",
     .build = build_adaptive_uneven},
    {.name = "adaptive_avg_pool2d_larger", .op = "adaptive_avg_pool2d",
     .build = build_adaptive_larger},
    {.name = "adaptive_avg_pool2d_grad_basic", .op = "adaptive_avg_pool2d_grad",
     .build = build_adaptive_grad},
    {0},
};
