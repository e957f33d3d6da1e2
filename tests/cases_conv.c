/*
 * Op cases for the convolution family (src/ops/conv.c). The PyTorch side of each row, with the
 * same name, is in tests/gen/cases_conv.py; see op_cases.h for how rows are checked. Stride,
 * padding (numbers and 'same', odd and even kernels), dilation, groups (depthwise too), bias
 * and odd sizes are each covered alone and together, for conv2d, conv_transpose2d and the two
 * internal gradient ops.
 */
#include "conv.h"
#include "op_cases.h"

#include <string.h>

static dg_conv2d_params params(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                               int64_t dw, int64_t groups)
{
    dg_conv2d_params p = DG_CONV2D_DEFAULTS;
    p.stride[0] = sh;
    p.stride[1] = sw;
    p.padding[0] = ph;
    p.padding[1] = pw;
    p.dilation[0] = dh;
    p.dilation[1] = dw;
    p.groups = groups;
    return p;
}

/* conv2d of in0 with weight in1 and bias in2 when the row has one (n == 3). */
static dg_node *conv_with(dg_graph *g, dg_node *const *in, dg_conv2d_params p)
{
    dg_node *bias = dg__find_name(g, "in2") != NULL ? in[2] : NULL;
    return dg_conv2d(g, in[0], in[1], bias, &p);
}

static dg_node *build_plain(dg_graph *g, dg_node *const *in)
{
    return conv_with(g, in, params(1, 1, 0, 0, 1, 1, 1));
}
static dg_node *build_stride_pad(dg_graph *g, dg_node *const *in)
{
    return conv_with(g, in, params(2, 2, 1, 1, 1, 1, 1));
}
static dg_node *build_stride_asym(dg_graph *g, dg_node *const *in)
{
    return conv_with(g, in, params(2, 1, 1, 0, 1, 1, 1));
}
static dg_node *build_dilation(dg_graph *g, dg_node *const *in)
{
    return conv_with(g, in, params(1, 1, 2, 2, 2, 2, 1));
}
static dg_node *build_groups(dg_graph *g, dg_node *const *in)
{
    return conv_with(g, in, params(1, 1, 0, 0, 1, 1, 2));
}
static dg_node *build_depthwise(dg_graph *g, dg_node *const *in)
{
    return conv_with(g, in, params(1, 1, 1, 1, 1, 1, 3));
}
static dg_node *build_same_odd(dg_graph *g, dg_node *const *in)
{
    dg_conv2d_params p = params(1, 1, 0, 0, 1, 1, 1);
    p.same = true;
    return conv_with(g, in, p);
}
static dg_node *build_same_even(dg_graph *g, dg_node *const *in)
{
    dg_conv2d_params p = params(1, 1, 0, 0, 1, 2, 1);
    p.same = true;
    return conv_with(g, in, p);
}
static dg_node *build_stride2(dg_graph *g, dg_node *const *in)
{
    return conv_with(g, in, params(2, 2, 0, 0, 1, 1, 1));
}
static dg_node *build_odd(dg_graph *g, dg_node *const *in)
{
    return conv_with(g, in, params(3, 2, 2, 1, 1, 2, 1));
}
static dg_node *build_all(dg_graph *g, dg_node *const *in)
{
    return conv_with(g, in, params(2, 2, 1, 1, 2, 1, 2));
}

static dg_node *convt_with(dg_graph *g, dg_node *const *in, dg_conv2d_params p, int64_t oph,
                           int64_t opw)
{
    p.output_padding[0] = oph;
    p.output_padding[1] = opw;
    dg_node *bias = dg__find_name(g, "in2") != NULL ? in[2] : NULL;
    return dg_conv_transpose2d(g, in[0], in[1], bias, &p);
}
static dg_node *build_t_plain(dg_graph *g, dg_node *const *in)
{
    return convt_with(g, in, params(1, 1, 0, 0, 1, 1, 1), 0, 0);
}
static dg_node *build_t_stride_outpad(dg_graph *g, dg_node *const *in)
{
    return convt_with(g, in, params(2, 2, 1, 1, 1, 1, 1), 1, 1);
}
static dg_node *build_t_groups_dil(dg_graph *g, dg_node *const *in)
{
    return convt_with(g, in, params(1, 1, 0, 0, 2, 2, 2), 0, 0);
}
static dg_node *build_t_asym(dg_graph *g, dg_node *const *in)
{
    return convt_with(g, in, params(2, 1, 0, 1, 1, 1, 1), 0, 0);
}
static dg_node *build_t_outpad_dil(dg_graph *g, dg_node *const *in)
{
    return convt_with(g, in, params(1, 1, 0, 0, 2, 2, 1), 1, 1);
}

/* The internal ops, with symmetric padding. */
static struct dg__conv_attrs geometry(int64_t s, int64_t p, int64_t d, int64_t groups, int64_t kh,
                                      int64_t kw)
{
    struct dg__conv_attrs a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < 2; i++) {
        a.stride[i] = s;
        a.pad_begin[i] = a.pad_end[i] = p;
        a.dilation[i] = i == 1 && d < 0 ? -d : (d < 0 ? 1 : d);
    }
    a.groups = groups;
    a.kernel[0] = kh;
    a.kernel[1] = kw;
    return a;
}
static dg_node *input_grad(dg_graph *g, dg_node *const *in, struct dg__conv_attrs a)
{
    return dg__make_node(g, DG_OP_conv2d_input_grad, 3, in, &a);
}
static dg_node *weight_grad(dg_graph *g, dg_node *const *in, struct dg__conv_attrs a)
{
    return dg__make_node(g, DG_OP_conv2d_weight_grad, 2, in, &a);
}
static dg_node *build_ig_basic(dg_graph *g, dg_node *const *in)
{
    return input_grad(g, in, geometry(1, 0, 1, 1, 0, 0));
}
static dg_node *build_ig_stride(dg_graph *g, dg_node *const *in)
{
    return input_grad(g, in, geometry(2, 1, 1, 1, 0, 0));
}
static dg_node *build_ig_groups(dg_graph *g, dg_node *const *in)
{
    return input_grad(g, in, geometry(1, 0, 2, 2, 0, 0));
}
static dg_node *build_wg_basic(dg_graph *g, dg_node *const *in)
{
    return weight_grad(g, in, geometry(1, 0, 1, 1, 3, 3));
}
static dg_node *build_wg_groups(dg_graph *g, dg_node *const *in)
{
    return weight_grad(g, in, geometry(2, 1, 1, 2, 3, 3));
}
/* dilation (1, 2): a negative d means "1 along rows, |d| along columns" */
static dg_node *build_wg_depthwise(dg_graph *g, dg_node *const *in)
{
    return weight_grad(g, in, geometry(1, 0, -2, 3, 3, 3));
}

const struct dg_op_case dg_cases_conv[] = {
    {.name = "conv2d_basic", .op = "conv2d", .build = build_plain},
    {.name = "conv2d_nobias", .op = "conv2d", .build = build_plain},
    {.name = "conv2d_stride_pad", .op = "conv2d", .build = build_stride_pad},
    {.name = "conv2d_stride_asym", .op = "conv2d", .build = build_stride_asym},
    {.name = "conv2d_dilation", .op = "conv2d", .build = build_dilation},
    {.name = "conv2d_groups", .op = "conv2d", .build = build_groups},
    {.name = "conv2d_depthwise", .op = "conv2d", .build = build_depthwise},
    {.name = "conv2d_same_odd", .op = "conv2d", .build = build_same_odd},
    {.name = "conv2d_same_even", .op = "conv2d", .build = build_same_even},
    {.name = "conv2d_pointwise", .op = "conv2d", .build = build_plain},
    {.name = "conv2d_1x1_stride2", .op = "conv2d", .build = build_stride2},
    {.name = "conv2d_odd", .op = "conv2d", .build = build_odd},
    {.name = "conv2d_all", .op = "conv2d", .build = build_all},
    {.name = "conv_transpose2d_basic", .op = "conv_transpose2d", .build = build_t_plain},
    {.name = "conv_transpose2d_stride_outpad", .op = "conv_transpose2d",
     .build = build_t_stride_outpad},
    {.name = "conv_transpose2d_groups_dil", .op = "conv_transpose2d",
     .build = build_t_groups_dil},
    {.name = "conv_transpose2d_asym", .op = "conv_transpose2d", .build = build_t_asym},
    {.name = "conv_transpose2d_outpad_dil", .op = "conv_transpose2d",
     .build = build_t_outpad_dil},
    {.name = "conv2d_input_grad_basic", .op = "conv2d_input_grad", .build = build_ig_basic},
    {.name = "conv2d_input_grad_stride", .op = "conv2d_input_grad", .build = build_ig_stride},
    {.name = "conv2d_input_grad_groups", .op = "conv2d_input_grad", .build = build_ig_groups},
    {.name = "conv2d_weight_grad_basic", .op = "conv2d_weight_grad", .build = build_wg_basic},
    {.name = "conv2d_weight_grad_groups", .op = "conv2d_weight_grad", .build = build_wg_groups},
    {.name = "conv2d_weight_grad_depthwise", .op = "conv2d_weight_grad",
     .build = build_wg_depthwise},
    {0},
};
