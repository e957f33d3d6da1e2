"""Op cases for softmax and log_softmax (src/ops/softmax.c); the C rows with the same names are
in tests/cases_softmax.c. torch.softmax / torch.log_softmax compute the same maths."""
import torch

from op_case import Case, Spec


def softmax(dim):
    return lambda x: torch.softmax(x, dim)


def log_softmax(dim):
    return lambda x: torch.log_softmax(x, dim)


CASES = [
    Case("softmax_last", "softmax", [Spec([4, 5])], softmax(1)),
    Case("softmax_1d", "softmax", [Spec([7])], softmax(-1)),
    Case("softmax_axis0", "softmax", [Spec([5, 3])], softmax(0)),
    Case("softmax_mid", "softmax", [Spec([2, 4, 3])], softmax(-2)),
    Case("softmax_single", "softmax", [Spec([3, 1])], softmax(-1)),
    # 300 columns: more than one tile of the strided path (256) and of the row chunks
    Case("softmax_wide", "softmax", [Spec([2, 300])], softmax(-1)),
    Case("softmax_wide_axis0", "softmax", [Spec([2, 300])], softmax(0)),
    # logits around 1000: exp overflows unless the row max is subtracted
    Case("softmax_offset", "softmax", [Spec([3, 6], lo=995.0, hi=1005.0)], softmax(1)),
    # rows spanning -30..30: probabilities from ~1e-26 to ~1
    Case("softmax_spread", "softmax", [Spec([3, 5], lo=-30.0, hi=30.0)], softmax(1)),
    Case("log_softmax_last", "log_softmax", [Spec([4, 5])], log_softmax(1)),
    Case("log_softmax_1d", "log_softmax", [Spec([7])], log_softmax(-1)),
    Case("log_softmax_axis0", "log_softmax", [Spec([5, 3])], log_softmax(0)),
    Case("log_softmax_mid", "log_softmax", [Spec([2, 4, 3])], log_softmax(1)),
    Case("log_softmax_wide", "log_softmax", [Spec([2, 300])], log_softmax(-1)),
    Case("log_softmax_offset", "log_softmax", [Spec([3, 6], lo=995.0, hi=1005.0)],
         log_softmax(1)),
    Case("log_softmax_spread", "log_softmax", [Spec([3, 5], lo=-30.0, hi=30.0)],
         log_softmax(1)),
]
