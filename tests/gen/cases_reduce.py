"""Op cases for the reductions and their backward helpers (src/ops/reduce.c); the C rows with
the same names are in tests/cases_reduce.c. Each fn computes the op's maths in float64
PyTorch. max is torch.amax (the gradient split evenly among ties); the random draws have no
ties, which are tested by hand in tests/test_ops_reduce.c."""
import torch

from op_case import Case, Spec


def red(op, dims, keep):
    """sum/mean/amax over dims (None: every axis) with keepdim."""
    def fn(x):
        d = list(range(x.dim())) if dims is None else dims
        if x.dim() == 0:
            return x.clone()
        if op == "sum":
            return x.sum(dim=d, keepdim=keep)
        if op == "mean":
            return x.mean(dim=d, keepdim=keep)
        return torch.amax(x, dim=d, keepdim=keep)
    return fn


def sum_to(x, like):
    """numpy unbroadcast: sum over x's leading extra axes and where like has size 1."""
    lead = x.dim() - like.dim()
    dims = [i for i in range(x.dim())
            if i < lead or (like.shape[i - lead] == 1 and x.shape[i] != 1)]
    out = x.sum(dim=dims, keepdim=True) if dims else x
    return out.reshape(like.shape)


def broadcast_like(x, like):
    return x.expand(like.shape)


def expand_reduced(axes, keep):
    """grad (like reduced over axes) copied back along those axes to like's shape."""
    def fn(grad, like):
        shape = [1 if i in axes else like.shape[i] for i in range(like.dim())]
        return grad.reshape(shape).expand(like.shape)
    return fn


def size_ratio(a, b):
    return torch.tensor(float(a.numel()) / float(b.numel()), dtype=torch.float64)


CASES = [
    Case("sum_all", "sum", [Spec([2, 3, 4])], red("sum", None, False)),
    Case("sum_axis0", "sum", [Spec([2, 3, 4])], red("sum", [0], False)),
    Case("sum_axis1", "sum", [Spec([2, 3, 4])], red("sum", [1], False)),
    Case("sum_axis2", "sum", [Spec([2, 3, 4])], red("sum", [2], False)),
    Case("sum_axes01_keep", "sum", [Spec([2, 3, 4])], red("sum", [0, 1], True)),
    Case("sum_axes02", "sum", [Spec([2, 3, 4])], red("sum", [0, 2], False)),
    Case("sum_axes12_keep", "sum", [Spec([2, 3, 4])], red("sum", [1, 2], True)),
    Case("sum_neg_keep", "sum", [Spec([2, 3, 4])], red("sum", [-1], True)),
    Case("sum_neg_pair", "sum", [Spec([2, 3, 4])], red("sum", [-3, -1], False)),
    Case("sum_rows", "sum", [Spec([6, 17])], red("sum", [1], False)),
    Case("sum_cols", "sum", [Spec([19, 6])], red("sum", [0], False)),
    Case("sum_size1", "sum", [Spec([3, 1, 4])], red("sum", [1], False)),
    Case("sum_general", "sum", [Spec([2, 3, 2, 5])], red("sum", [0, 2], True)),
    Case("sum_scalar", "sum", [Spec([])], red("sum", None, False)),
    Case("sum_large", "sum", [Spec([3, 8], lo=-100.0, hi=100.0)], red("sum", [1], False)),
    Case("mean_all", "mean", [Spec([2, 3, 4])], red("mean", None, False)),
    Case("mean_axis0", "mean", [Spec([2, 3, 4])], red("mean", [0], False)),
    Case("mean_axis1_keep", "mean", [Spec([2, 3, 4])], red("mean", [1], True)),
    Case("mean_neg", "mean", [Spec([2, 3, 4])], red("mean", [-1], False)),
    Case("mean_axes02_keep", "mean", [Spec([2, 3, 4])], red("mean", [0, 2], True)),
    Case("mean_cols", "mean", [Spec([10, 3])], red("mean", [0], False)),
    Case("max_all", "max", [Spec([2, 3, 4])], red("max", None, False)),
    Case("max_axis0", "max", [Spec([2, 3, 4])], red("max", [0], False)),
    Case("max_axis1_keep", "max", [Spec([2, 3, 4])], red("max", [1], True)),
    Case("max_neg", "max", [Spec([2, 3, 4])], red("max", [-1], False)),
    Case("max_axes02", "max", [Spec([2, 3, 4])], red("max", [0, 2], False)),
    Case("max_rows", "max", [Spec([5, 9])], red("max", [1], False)),
    Case("max_large", "max", [Spec([4, 3], lo=-1000.0, hi=1000.0)], red("max", [0], True)),

    # internal: sum_to(grad, like), like shape-only
    Case("sum_to_leading", "sum_to", [Spec([2, 3, 4]), Spec([3, 4])], sum_to),
    Case("sum_to_size1", "sum_to", [Spec([2, 3, 4]), Spec([2, 1, 4])], sum_to),
    Case("sum_to_mixed", "sum_to", [Spec([2, 3, 4]), Spec([1, 4])], sum_to),
    Case("sum_to_scalar", "sum_to", [Spec([2, 3]), Spec([])], sum_to),
    Case("sum_to_same", "sum_to", [Spec([3, 4]), Spec([3, 4])], sum_to),
    # internal: broadcast_like(x, like), like shape-only
    Case("broadcast_like_row", "broadcast_like", [Spec([4]), Spec([2, 3, 4])], broadcast_like),
    Case("broadcast_like_col", "broadcast_like", [Spec([3, 1]), Spec([3, 4])], broadcast_like),
    Case("broadcast_like_scalar", "broadcast_like", [Spec([]), Spec([2, 2])], broadcast_like),
    # internal: expand_reduced(grad, like; axes, keepdims), like shape-only
    Case("expand_reduced_02", "expand_reduced", [Spec([3]), Spec([2, 3, 4])],
         expand_reduced([0, 2], False)),
    Case("expand_reduced_keep", "expand_reduced", [Spec([2, 1, 4]), Spec([2, 3, 4])],
         expand_reduced([1], True)),
    Case("expand_reduced_all", "expand_reduced", [Spec([]), Spec([2, 3])],
         expand_reduced([0, 1], False)),
    Case("expand_reduced_mid", "expand_reduced", [Spec([2, 4]), Spec([2, 3, 4])],
         expand_reduced([1], False)),
    # internal: size_ratio(a, b) = numel(a)/numel(b), shapes only: no gradient
    Case("size_ratio_basic", "size_ratio", [Spec([2, 3, 4]), Spec([4])], size_ratio,
         grad=False),
    Case("size_ratio_scalar", "size_ratio", [Spec([]), Spec([2, 5])], size_ratio, grad=False),
]
