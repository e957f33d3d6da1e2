"""Op cases for padding and nearest upsampling (src/ops/pad.c); the C rows with the same names are
in tests/cases_pad.c. pad2d_grad is computed by its definition: torch's pad gradient with
create_graph."""
import torch
import torch.nn.functional as F

from op_case import Case, Spec


def pad(top, bottom, left, right, mode="constant", value=0.0):
    def fn(x):
        if mode == "constant":
            return F.pad(x, (left, right, top, bottom), mode, value)
        return F.pad(x, (left, right, top, bottom), mode)
    return fn


def pad_grad(top, bottom, left, right, mode):
    def fn(g, like):
        x = torch.zeros(like.shape, dtype=torch.float64, requires_grad=True)
        y = pad(top, bottom, left, right, mode)(x)
        return torch.autograd.grad(y, x, g, create_graph=True)[0]
    return fn


def upsample(sh, sw):
    def fn(x):
        return F.interpolate(x, scale_factor=(sh, sw), mode="nearest")
    return fn


CASES = [
    Case("pad2d_constant", "pad2d", [Spec([2, 3, 4, 5])], pad(1, 2, 0, 3, value=0.5)),
    Case("pad2d_zero_2d", "pad2d", [Spec([3, 4])], pad(2, 0, 1, 1)),
    Case("pad2d_reflect", "pad2d", [Spec([1, 2, 4, 5])], pad(2, 1, 3, 4, "reflect")),
    Case("pad2d_reflect_3d", "pad2d", [Spec([2, 3, 3])], pad(1, 2, 2, 1, "reflect")),
    Case("pad2d_grad_constant", "pad2d_grad", [Spec([2, 3, 7, 8]), Spec([2, 3, 4, 5])],
         pad_grad(1, 2, 0, 3, "constant")),
    Case("pad2d_grad_reflect", "pad2d_grad", [Spec([1, 2, 7, 12]), Spec([1, 2, 4, 5])],
         pad_grad(2, 1, 3, 4, "reflect")),
    Case("upsample_nearest2d_2x", "upsample_nearest2d", [Spec([2, 3, 3, 4])], upsample(2, 2)),
    Case("upsample_nearest2d_3x1", "upsample_nearest2d", [Spec([1, 2, 2, 3])], upsample(3, 1)),
]
