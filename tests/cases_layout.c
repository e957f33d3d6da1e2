/*
 * Op cases for the layout ops (src/ops/reshape.c, permute.c, broadcast.c, slice.c, concat.c)
 * and stop_gradient. The PyTorch side of each row, with the same name, is in
 * tests/gen/cases_layout.py; see op_cases.h for how rows are checked. Internal ops
 * (reshape_as, pad_slice, concat_slice, concat_pad) are built with dg__make_node.
 *
 * stop_gradient is forward_only: its gradient is zero by definition while finite differences
 * see the identity, so the fixture test checks that dg_grad gives exact zeros instead.
 */
#include "layout_attrs.h"
#include "op.h"
#include "op_cases.h"

static dg_node *reshape_to(dg_graph *g, dg_node *x, int ndim, const int64_t *shape)
{
    return dg_reshape(g, x, ndim, shape);
}

static dg_node *build_reshape_basic(dg_graph *g, dg_node *const *in)
{
    return reshape_to(g, in[0], 2, (const int64_t[]){6, 4});
}

static dg_node *build_reshape_infer(dg_graph *g, dg_node *const *in)
{
    return reshape_to(g, in[0], 2, (const int64_t[]){-1, 12});
}

static dg_node *build_reshape_expand_dims(dg_graph *g, dg_node *const *in)
{
    return reshape_to(g, in[0], 4, (const int64_t[]){2, 1, 3, 1});
}

static dg_node *build_reshape_to_scalar(dg_graph *g, dg_node *const *in)
{
    return reshape_to(g, in[0], 0, NULL);
}

static dg_node *build_reshape_as(dg_graph *g, dg_node *const *in)
{
    return dg__make_node(g, DG_OP_reshape_as, 2, in, NULL);
}

static dg_node *build_permute_cycle(dg_graph *g, dg_node *const *in)
{
    return dg_permute(g, in[0], 3, (const int[]){2, 0, 1});
}

static dg_node *build_permute_last_two(dg_graph *g, dg_node *const *in)
{
    return dg_permute(g, in[0], 3, (const int[]){0, 2, 1});
}

static dg_node *build_permute_keep_last(dg_graph *g, dg_node *const *in)
{
    return dg_permute(g, in[0], 3, (const int[]){1, 0, 2});
}

static dg_node *build_permute_4d(dg_graph *g, dg_node *const *in)
{
    return dg_permute(g, in[0], 4, (const int[]){3, 1, 0, 2});
}

static dg_node *build_permute_2d(dg_graph *g, dg_node *const *in)
{
    return dg_permute(g, in[0], 2, (const int[]){1, 0});
}

static dg_node *build_transpose(dg_graph *g, dg_node *const *in)
{
    return dg_transpose(g, in[0]);
}

static dg_node *build_broadcast_row(dg_graph *g, dg_node *const *in)
{
    return dg_broadcast_to(g, in[0], 2, (const int64_t[]){3, 4});
}

static dg_node *build_broadcast_col(dg_graph *g, dg_node *const *in)
{
    return dg_broadcast_to(g, in[0], 3, (const int64_t[]){2, 3, 5});
}

static dg_node *build_broadcast_scalar(dg_graph *g, dg_node *const *in)
{
    return dg_broadcast_to(g, in[0], 2, (const int64_t[]){2, 3});
}

static dg_node *build_broadcast_keep(dg_graph *g, dg_node *const *in)
{
    return dg_broadcast_to(g, in[0], 2, (const int64_t[]){-1, 4});
}

static dg_node *build_slice_basic(dg_graph *g, dg_node *const *in)
{
    return dg_slice(g, in[0], 1, 1, 4);
}

static dg_node *build_slice_negative(dg_graph *g, dg_node *const *in)
{
    return dg_slice(g, in[0], -1, -3, -1);
}

static dg_node *build_slice_axis0(dg_graph *g, dg_node *const *in)
{
    return dg_slice(g, in[0], 0, -3, -1);
}

static dg_node *build_slice_middle(dg_graph *g, dg_node *const *in)
{
    return dg_slice(g, in[0], 1, 2, 5);
}

static dg_node *build_slice_whole(dg_graph *g, dg_node *const *in)
{
    return dg_slice(g, in[0], 0, 0, 3);
}

static dg_node *build_pad_slice_basic(dg_graph *g, dg_node *const *in)
{
    struct dg_slice_attrs attrs = {.axis = 1, .start = 1, .end = 4};
    return dg__make_node(g, DG_OP_pad_slice, 2, in, &attrs);
}

static dg_node *build_pad_slice_axis0(dg_graph *g, dg_node *const *in)
{
    struct dg_slice_attrs attrs = {.axis = 0, .start = -3, .end = -1};
    return dg__make_node(g, DG_OP_pad_slice, 2, in, &attrs);
}

static dg_node *build_concat2_axis0(dg_graph *g, dg_node *const *in)
{
    return dg_concat(g, 2, in, 0);
}

static dg_node *build_concat3_last(dg_graph *g, dg_node *const *in)
{
    return dg_concat(g, 3, in, -1);
}

static dg_node *build_concat2_axis1(dg_graph *g, dg_node *const *in)
{
    return dg_concat(g, 2, in, 1);
}

static dg_node *build_concat1(dg_graph *g, dg_node *const *in)
{
    return dg_concat(g, 1, in, 0);
}

static dg_node *build_concat_slice3_axis1(dg_graph *g, dg_node *const *in)
{
    struct dg_axis_attrs attrs = {.axis = 1};
    return dg__make_node(g, DG_OP_concat_slice, 3, in, &attrs);
}

static dg_node *build_concat_slice2_axis0(dg_graph *g, dg_node *const *in)
{
    struct dg_axis_attrs attrs = {.axis = 0};
    return dg__make_node(g, DG_OP_concat_slice, 2, in, &attrs);
}

static dg_node *build_concat_pad3_axis1(dg_graph *g, dg_node *const *in)
{
    struct dg_axis_attrs attrs = {.axis = 1};
    return dg__make_node(g, DG_OP_concat_pad, 3, in, &attrs);
}

static dg_node *build_concat_pad2_axis0(dg_graph *g, dg_node *const *in)
{
    struct dg_axis_attrs attrs = {.axis = 0};
    return dg__make_node(g, DG_OP_concat_pad, 2, in, &attrs);
}

static dg_node *build_stop_gradient(dg_graph *g, dg_node *const *in)
{
    return dg_stop_gradient(g, in[0]);
}

const struct dg_op_case dg_cases_layout[] = {
    {.name = "reshape_basic", .op = "reshape", .build = build_reshape_basic},
    {.name = "reshape_infer", .op = "reshape", .build = build_reshape_infer},
    {.name = "reshape_expand_dims", .op = "reshape", .build = build_reshape_expand_dims},
    {.name = "reshape_to_scalar", .op = "reshape", .build = build_reshape_to_scalar},
    {.name = "reshape_as_basic", .op = "reshape_as", .build = build_reshape_as},
    {.name = "permute_cycle", .op = "permute", .build = build_permute_cycle},
    {.name = "permute_last_two", .op = "permute", .build = build_permute_last_two},
    {.name = "permute_keep_last", .op = "permute", .build = build_permute_keep_last},
    {.name = "permute_4d_size1", .op = "permute", .build = build_permute_4d},
    {.name = "permute_tiled", .op = "permute", .build = build_permute_last_two},
    {.name = "permute_2d", .op = "permute", .build = build_permute_2d},
    {.name = "transpose_2d", .op = "permute", .build = build_transpose},
    {.name = "transpose_batched", .op = "permute", .build = build_transpose},
    {.name = "broadcast_row", .op = "broadcast_to", .build = build_broadcast_row},
    {.name = "broadcast_col", .op = "broadcast_to", .build = build_broadcast_col},
    {.name = "broadcast_scalar", .op = "broadcast_to", .build = build_broadcast_scalar},
    {.name = "broadcast_keep", .op = "broadcast_to", .build = build_broadcast_keep},
    {.name = "broadcast_same", .op = "broadcast_to", .build = build_broadcast_scalar},
    {.name = "slice_basic", .op = "slice", .build = build_slice_basic},
    {.name = "slice_negative", .op = "slice", .build = build_slice_negative},
    {.name = "slice_axis0", .op = "slice", .build = build_slice_axis0},
    {.name = "slice_middle", .op = "slice", .build = build_slice_middle},
    {.name = "slice_whole", .op = "slice", .build = build_slice_whole},
    {.name = "pad_slice_basic", .op = "pad_slice", .build = build_pad_slice_basic},
    {.name = "pad_slice_axis0", .op = "pad_slice", .build = build_pad_slice_axis0},
    {.name = "concat_axis0", .op = "concat", .build = build_concat2_axis0},
    {.name = "concat_three_last", .op = "concat", .build = build_concat3_last},
    {.name = "concat_middle", .op = "concat", .build = build_concat2_axis1},
    {.name = "concat_single", .op = "concat", .build = build_concat1},
    {.name = "concat_slice_basic", .op = "concat_slice", .build = build_concat_slice3_axis1},
    {.name = "concat_slice_first", .op = "concat_slice", .build = build_concat_slice2_axis0},
    {.name = "concat_pad_basic", .op = "concat_pad", .build = build_concat_pad3_axis1},
    {.name = "concat_pad_first", .op = "concat_pad", .build = build_concat_pad2_axis0},
    {.name = "stop_gradient_basic", .op = "stop_gradient", .build = build_stop_gradient,
     .forward_only = true},
    {0},
};
