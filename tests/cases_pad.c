/*
 * Op cases for padding and nearest upsampling (src/ops/pad.c). The PyTorch side of each row,
 * with the same name, is in tests/gen/cases_pad.py; see op_cases.h for how rows are checked.
 */
#include "pad.h"
#include "op_cases.h"

#include <string.h>

static dg_node *build_constant(dg_graph *g, dg_node *const *in)
{
    return dg_pad2d(g, in[0], 1, 2, 0, 3, DG_PAD_CONSTANT, 0.5f);
}
static dg_node *build_zero(dg_graph *g, dg_node *const *in)
{
    return dg_pad2d(g, in[0], 2, 0, 1, 1, DG_PAD_CONSTANT, 0.0f);
}
static dg_node *build_reflect(dg_graph *g, dg_node *const *in)
{
    return dg_pad2d(g, in[0], 2, 1, 3, 4, DG_PAD_REFLECT, 0.0f);
}
static dg_node *build_reflect_3d(dg_graph *g, dg_node *const *in)
{
    return dg_pad2d(g, in[0], 1, 2, 2, 1, DG_PAD_REFLECT, 0.0f);
}
static dg_node *pad_grad(dg_graph *g, dg_node *const *in, int64_t top, int64_t bottom,
                         int64_t left, int64_t right, bool reflect)
{
    struct dg__pad_attrs a;
    memset(&a, 0, sizeof a);
    a.top = top;
    a.bottom = bottom;
    a.left = left;
    a.right = right;
    a.reflect = reflect;
    return dg__make_node(g, DG_OP_pad2d_grad, 2, in, &a);
}
static dg_node *build_grad_constant(dg_graph *g, dg_node *const *in)
{
    return pad_grad(g, in, 1, 2, 0, 3, false);
}
static dg_node *build_grad_reflect(dg_graph *g, dg_node *const *in)
{
    return pad_grad(g, in, 2, 1, 3, 4, true);
}
static dg_node *build_up2(dg_graph *g, dg_node *const *in)
{
    return dg_upsample_nearest2d(g, in[0], 2, 2);
}
static dg_node *build_up31(dg_graph *g, dg_node *const *in)
{
    return dg_upsample_nearest2d(g, in[0], 3, 1);
}

const struct dg_op_case dg_cases_pad[] = {
    {.name = "pad2d_constant", .op = "pad2d", .build = build_constant},
    {.name = "pad2d_zero_2d", .op = "pad2d", .build = build_zero},
    {.name = "pad2d_reflect", .op = "pad2d", .build = build_reflect},
    {.name = "pad2d_reflect_3d", .op = "pad2d", .build = build_reflect_3d},
    {.name = "pad2d_grad_constant", .op = "pad2d_grad", .build = build_grad_constant},
    {.name = "pad2d_grad_reflect", .op = "pad2d_grad", .build = build_grad_reflect},
    {.name = "upsample_nearest2d_2x", .op = "upsample_nearest2d", .build = build_up2},
    {.name = "upsample_nearest2d_3x1", .op = "upsample_nearest2d", .build = build_up31},
    {0},
};
