"""Op cases for the pooling family (src/ops/pool.c); the C rows with the same names are in
tests/cases_pool.c. Max-pooling inputs are distinct values at least 4/n apart (a shuffled grid),
so no window holds a tie and no finite-difference step flips an argmax; ties and -inf padding
are pinned by tests/test_conv.c. The internal gradient ops are computed here by their
definition, from torch's own pooling with create_graph."""
import numpy as np
import torch
import torch.nn.functional as F

from op_case import Case, Spec


def distinct(shape, seed, lo=-2.0, hi=2.0):
    n = int(np.prod(shape))
    grid = np.linspace(lo, hi, n)
    return Spec(shape, values=list(np.random.default_rng(seed).permutation(grid)))


def maxp(kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    def fn(x):
        return F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    return fn


def avgp(kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    def fn(x):
        return F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad)
    return fn


def adaptive(size):
    def fn(x):
        return F.adaptive_avg_pool2d(x, size)
    return fn


def grad_of(pool):
    """(dy, like) -> the gradient of pool at like's shape (pool is linear)."""
    def fn(dy, like):
        x = torch.zeros(like.shape, dtype=torch.float64, requires_grad=True)
        return torch.autograd.grad(pool(x), x, dy, create_graph=True)[0]
    return fn


def max_grad(kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    def fn(x, dy):
        xx = x.detach().requires_grad_(True)
        y = F.max_pool2d(xx, kernel, stride, padding, dilation, ceil_mode)
        return torch.autograd.grad(y, xx, dy, create_graph=True)[0]
    return fn


def max_gather(kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    def fn(x, g):
        _, idx = F.max_pool2d(x.detach(), kernel, stride, padding, dilation, ceil_mode,
                              return_indices=True)
        n, c = idx.shape[0], idx.shape[1]
        return g.reshape(n, c, -1).gather(2, idx.reshape(n, c, -1)).reshape(idx.shape)
    return fn


CASES = [
    Case("max_pool2d_basic", "max_pool2d", [distinct([2, 3, 4, 4], 1)], maxp(2)),
    Case("max_pool2d_pad", "max_pool2d", [distinct([1, 2, 7, 6], 2)], maxp(3, 2, 1)),
    # all inputs negative: -inf padding, not zero padding, decides the border windows
    Case("max_pool2d_pad_negative", "max_pool2d", [distinct([1, 2, 5, 5], 3, -3.0, -1.0)],
         maxp(3, 1, 1)),
    Case("max_pool2d_ceil", "max_pool2d", [distinct([1, 2, 6, 6], 4)], maxp(3, 2, 0, 1, True)),
    # ceil_mode where the last window would start in the padding and is dropped
    Case("max_pool2d_ceil_pad", "max_pool2d", [distinct([1, 1, 5, 5], 5)],
         maxp(2, 2, 1, 1, True)),
    Case("max_pool2d_dilation", "max_pool2d", [distinct([1, 2, 6, 5], 6)],
         maxp((2, 2), (1, 2), 0, 2)),
    Case("max_pool2d_asym", "max_pool2d", [distinct([2, 1, 7, 5], 7)],
         maxp((3, 2), (2, 1), (1, 0))),
    Case("max_pool2d_grad_basic", "max_pool2d_grad", [distinct([1, 2, 5, 5], 8),
                                                      Spec([1, 2, 3, 3])],
         max_grad(3, 2, 1)),
    Case("max_pool2d_gather_basic", "max_pool2d_gather", [distinct([1, 2, 5, 5], 9),
                                                          Spec([1, 2, 5, 5])],
         max_gather(3, 2, 1)),
    # 2x2 stride-2 windows (the tiled fast path of src/ops/pool.c): odd sizes leave a last row
    # and column that no window covers (their gradient is 0); a row wide enough for the
    # vectorised loop and its tail; ceil_mode on even sizes (still tiled) and on odd sizes
    # (partial windows: the generic path); the two internal gradient ops on odd sizes
    Case("max_pool2d_2x2_odd", "max_pool2d", [distinct([2, 3, 5, 7], 21)], maxp(2)),
    Case("max_pool2d_2x2_wide", "max_pool2d", [distinct([1, 2, 4, 46], 22)], maxp(2, 2)),
    Case("max_pool2d_2x2_ceil_even", "max_pool2d", [distinct([1, 2, 6, 8], 23)],
         maxp(2, 2, 0, 1, True)),
    Case("max_pool2d_2x2_ceil_odd", "max_pool2d", [distinct([1, 2, 5, 7], 24)],
         maxp(2, 2, 0, 1, True)),
    Case("max_pool2d_grad_2x2", "max_pool2d_grad", [distinct([1, 2, 5, 7], 25),
                                                    Spec([1, 2, 2, 3])],
         max_grad(2, 2)),
    Case("max_pool2d_gather_2x2", "max_pool2d_gather", [distinct([1, 2, 5, 7], 26),
                                                        Spec([1, 2, 5, 7])],
         max_gather(2, 2)),
    Case("avg_pool2d_basic", "avg_pool2d", [Spec([2, 3, 4, 4])], avgp(2)),
    Case("avg_pool2d_pad", "avg_pool2d", [Spec([1, 2, 7, 6])], avgp(3, 2, 1)),
    Case("avg_pool2d_exclude_pad", "avg_pool2d", [Spec([1, 2, 7, 6])],
         avgp(3, 2, 1, count_include_pad=False)),
    Case("avg_pool2d_ceil", "avg_pool2d", [Spec([1, 2, 6, 6])], avgp(3, 2, 1, True)),
    Case("avg_pool2d_ceil_exclude", "avg_pool2d", [Spec([1, 1, 5, 6])],
         avgp(2, 2, 1, True, False)),
    Case("avg_pool2d_asym", "avg_pool2d", [Spec([2, 2, 5, 6])], avgp((3, 2), (1, 2))),
    Case("avg_pool2d_grad_basic", "avg_pool2d_grad", [Spec([1, 2, 4, 3]), Spec([1, 2, 7, 6])],
         grad_of(avgp(3, 2, 1))),
    Case("adaptive_avg_pool2d_global", "adaptive_avg_pool2d", [Spec([2, 3, 5, 4])],
         adaptive((1, 1))),
    Case("adaptive_avg_pool2d_uneven", "adaptive_avg_pool2d", [Spec([1, 2, 7, 5])],
         adaptive((3, 2))),
    Case("adaptive_avg_pool2d_larger", "adaptive_avg_pool2d", [Spec([1, 2, 3, 3])],
         adaptive((4, 5))),
    Case("adaptive_avg_pool2d_grad_basic", "adaptive_avg_pool2d_grad",
         [Spec([1, 2, 3, 2]), Spec([1, 2, 7, 5])], grad_of(adaptive((3, 2)))),
]
