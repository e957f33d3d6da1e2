"""Op cases for layer and group normalisation (src/ops/norm.c); the C rows with the same names
are in tests/cases_norm.c. eps = 1e-5 (PyTorch's default)."""
import torch.nn.functional as F

from op_case import Case, Spec


def layer(n_axes):
    def fn(x, gamma=None, beta=None):
        return F.layer_norm(x, x.shape[x.dim() - n_axes:], gamma, beta, 1e-5)
    return fn


def group(groups):
    def fn(x, gamma=None, beta=None):
        return F.group_norm(x, groups, gamma, beta, 1e-5)
    return fn


CASES = [
    Case("layer_norm_last", "layer_norm", [Spec([3, 5]), Spec([5]), Spec([5])], layer(1)),
    Case("layer_norm_two_axes", "layer_norm", [Spec([2, 3, 4]), Spec([3, 4]), Spec([3, 4])],
         layer(2)),
    Case("layer_norm_plain", "layer_norm", [Spec([4, 6])], layer(1)),
    # a row with a large offset: the mean is subtracted before the variance is taken
    Case("layer_norm_offset", "layer_norm", [Spec([2, 7], lo=90.0, hi=94.0), Spec([7]),
                                             Spec([7])], layer(1)),
    Case("group_norm_basic", "group_norm", [Spec([2, 4, 3, 3]), Spec([4]), Spec([4])],
         group(2)),
    Case("group_norm_one_group", "group_norm", [Spec([2, 3, 2, 3]), Spec([3]), Spec([3])],
         group(1)),
    Case("group_norm_instance", "group_norm", [Spec([2, 3, 2, 2]), Spec([3]), Spec([3])],
         group(3)),
    Case("group_norm_plain", "group_norm", [Spec([3, 4, 5])], group(2)),
]
