"""Op cases for the layout ops (src/ops/reshape.c, permute.c, broadcast.c, slice.c, concat.c)
and stop_gradient (src/ops/stop_gradient.c); the C rows with the same names are in
tests/cases_layout.c. Internal ops are written out in PyTorch explicitly. Inputs read for
their shape only ("like") get zero gradients (torch leaves them unused)."""
import torch

from op_case import Case, Spec


def pad_along(u, axis, before, after):
    """zeros, u, zeros joined along axis (pad_slice / concat_pad)."""
    parts = []
    for n in (before, after):
        shape = list(u.shape)
        shape[axis] = n
        parts.append(torch.zeros(shape, dtype=u.dtype))
    return torch.cat([parts[0], u, parts[1]], dim=axis)


CASES = [
    # reshape: same elements, new shape; -1 inferred
    Case("reshape_basic", "reshape", [Spec([2, 3, 4])], lambda x: x.reshape(6, 4)),
    Case("reshape_infer", "reshape", [Spec([2, 3, 4])], lambda x: x.reshape(-1, 12)),
    Case("reshape_expand_dims", "reshape", [Spec([6])], lambda x: x.reshape(2, 1, 3, 1)),
    Case("reshape_to_scalar", "reshape", [Spec([1, 1])], lambda x: x.reshape(())),
    # reshape_as (internal): x in like's shape; like is shape only
    Case("reshape_as_basic", "reshape_as", [Spec([2, 6]), Spec([3, 4])],
         lambda x, like: x.reshape(like.shape)),

    # permute: out axis i = in axis perm[i]
    Case("permute_cycle", "permute", [Spec([2, 3, 4])], lambda x: x.permute(2, 0, 1)),
    Case("permute_last_two", "permute", [Spec([2, 3, 4])], lambda x: x.permute(0, 2, 1)),
    Case("permute_keep_last", "permute", [Spec([2, 3, 4])], lambda x: x.permute(1, 0, 2)),
    Case("permute_4d_size1", "permute", [Spec([2, 3, 1, 4])], lambda x: x.permute(3, 1, 0, 2)),
    Case("permute_tiled", "permute", [Spec([2, 40, 33])], lambda x: x.permute(0, 2, 1)),
    Case("permute_2d", "permute", [Spec([3, 5])], lambda x: x.permute(1, 0)),
    Case("transpose_2d", "permute", [Spec([5, 7])], lambda x: x.transpose(-1, -2)),
    Case("transpose_batched", "permute", [Spec([3, 2, 5])], lambda x: x.transpose(-1, -2)),

    # broadcast_to: numpy rules; -1 keeps the input's size
    Case("broadcast_row", "broadcast_to", [Spec([4])], lambda x: x.expand(3, 4)),
    Case("broadcast_col", "broadcast_to", [Spec([3, 1])], lambda x: x.expand(2, 3, 5)),
    Case("broadcast_scalar", "broadcast_to", [Spec([])], lambda x: x.expand(2, 3)),
    Case("broadcast_keep", "broadcast_to", [Spec([3, 1])], lambda x: x.expand(-1, 4)),
    Case("broadcast_same", "broadcast_to", [Spec([2, 3])], lambda x: x.expand(2, 3)),

    # slice: [start, end) along axis, negative counts from the end
    Case("slice_basic", "slice", [Spec([4, 5])], lambda x: x[:, 1:4]),
    Case("slice_negative", "slice", [Spec([4, 5])], lambda x: x[:, -3:-1]),
    Case("slice_axis0", "slice", [Spec([5, 3])], lambda x: x[-3:-1]),
    Case("slice_middle", "slice", [Spec([2, 6, 3])], lambda x: x[:, 2:5, :]),
    Case("slice_whole", "slice", [Spec([3, 2])], lambda x: x[0:3]),
    # pad_slice (internal, slice's backward): zeros of like's shape, grad at [1, 4) of axis 1
    Case("pad_slice_basic", "pad_slice", [Spec([4, 3]), Spec([4, 5])],
         lambda u, like: pad_along(u, 1, 1, 1)),
    Case("pad_slice_axis0", "pad_slice", [Spec([2, 3]), Spec([5, 3])],
         lambda u, like: pad_along(u, 0, 2, 1)),

    # concat: joined along axis
    Case("concat_axis0", "concat", [Spec([2, 3]), Spec([4, 3])], lambda a, b: torch.cat([a, b], 0)),
    Case("concat_three_last", "concat", [Spec([2, 3]), Spec([2, 1]), Spec([2, 4])],
         lambda a, b, c: torch.cat([a, b, c], -1)),
    Case("concat_middle", "concat", [Spec([2, 1, 3]), Spec([2, 2, 3])],
         lambda a, b: torch.cat([a, b], 1)),
    Case("concat_single", "concat", [Spec([3, 2])], lambda a: torch.cat([a], 0)),
    # concat_slice (internal, concat's backward): the piece of grad the last input occupies
    Case("concat_slice_basic", "concat_slice", [Spec([2, 6]), Spec([2, 2]), Spec([2, 3])],
         lambda g, x0, x1: g[:, 2:5]),
    Case("concat_slice_first", "concat_slice", [Spec([5, 2]), Spec([3, 2])],
         lambda g, x0: g[0:3]),
    # concat_pad (internal, concat_slice's backward): zeros of like's shape, u after x0
    Case("concat_pad_basic", "concat_pad", [Spec([2, 3]), Spec([2, 6]), Spec([2, 2])],
         lambda u, like, x0: pad_along(u, 1, 2, 1)),
    Case("concat_pad_first", "concat_pad", [Spec([3, 2]), Spec([5, 2])],
         lambda u, like: pad_along(u, 0, 0, 2)),

    # stop_gradient: the value, no gradient (forward-only: dg_grad must give exact zeros)
    Case("stop_gradient_basic", "stop_gradient", [Spec([3, 4])], lambda x: x.detach(),
         grad=False),
]
