"""Op cases for the convolution family (src/ops/conv.c); the C rows with the same names are in
tests/cases_conv.c. conv2d_input_grad and conv2d_weight_grad are computed here the way their
definition reads: the input and weight gradients of torch's conv2d, taken with create_graph so
that their own gradients are exact too."""
import torch
import torch.nn.functional as F

from op_case import Case, Spec


def conv(stride=1, padding=0, dilation=1, groups=1):
    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation,
                        groups=groups)
    return fn


def convt(stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    def fn(x, w, b=None):
        return F.conv_transpose2d(x, w, b, stride=stride, padding=padding,
                                  output_padding=output_padding, groups=groups,
                                  dilation=dilation)
    return fn


def input_grad(stride=1, padding=0, dilation=1, groups=1):
    def fn(dy, w, like):
        x = torch.zeros(like.shape, dtype=torch.float64, requires_grad=True)
        y = F.conv2d(x, w, None, stride=stride, padding=padding, dilation=dilation,
                     groups=groups)
        return torch.autograd.grad(y, x, dy, create_graph=True)[0]
    return fn


def weight_grad(kernel, stride=1, padding=0, dilation=1, groups=1):
    def fn(x, dy):
        shape = (dy.shape[1], x.shape[1] // groups, kernel[0], kernel[1])
        w = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        y = F.conv2d(x, w, None, stride=stride, padding=padding, dilation=dilation,
                     groups=groups)
        return torch.autograd.grad(y, w, dy, create_graph=True)[0]
    return fn


CASES = [
    # conv2d: every parameter alone, then together, with and without bias
    Case("conv2d_basic", "conv2d", [Spec([2, 3, 5, 5]), Spec([4, 3, 3, 3]), Spec([4])], conv()),
    Case("conv2d_nobias", "conv2d", [Spec([1, 2, 4, 5]), Spec([3, 2, 2, 3])], conv()),
    Case("conv2d_stride_pad", "conv2d", [Spec([2, 2, 7, 6]), Spec([3, 2, 3, 3]), Spec([3])],
         conv(stride=2, padding=1)),
    Case("conv2d_stride_asym", "conv2d", [Spec([1, 2, 6, 5]), Spec([2, 2, 3, 2])],
         conv(stride=(2, 1), padding=(1, 0))),
    Case("conv2d_dilation", "conv2d", [Spec([1, 2, 7, 7]), Spec([2, 2, 3, 3]), Spec([2])],
         conv(padding=2, dilation=2)),
    Case("conv2d_groups", "conv2d", [Spec([2, 4, 5, 5]), Spec([6, 2, 3, 3]), Spec([6])],
         conv(groups=2)),
    Case("conv2d_depthwise", "conv2d", [Spec([2, 3, 5, 5]), Spec([3, 1, 3, 3])],
         conv(padding=1, groups=3)),
    Case("conv2d_same_odd", "conv2d", [Spec([1, 2, 5, 5]), Spec([3, 2, 3, 3]), Spec([3])],
         conv(padding="same")),
    # an even kernel: PyTorch pads one more row/column at the end
    Case("conv2d_same_even", "conv2d", [Spec([1, 2, 5, 6]), Spec([2, 2, 4, 2])],
         conv(padding="same", dilation=(1, 2))),
    Case("conv2d_pointwise", "conv2d", [Spec([2, 3, 4, 4]), Spec([5, 3, 1, 1]), Spec([5])],
         conv()),
    Case("conv2d_1x1_stride2", "conv2d", [Spec([1, 3, 5, 5]), Spec([2, 3, 1, 1])],
         conv(stride=2)),
    # odd sizes: the last input rows and columns are read by no window (their gradient is 0)
    Case("conv2d_odd", "conv2d", [Spec([3, 3, 9, 7]), Spec([5, 3, 4, 2]), Spec([5])],
         conv(stride=(3, 2), padding=(2, 1), dilation=(1, 2))),
    Case("conv2d_all", "conv2d", [Spec([2, 4, 8, 7]), Spec([4, 2, 3, 2]), Spec([4])],
         conv(stride=2, padding=(1, 1), dilation=(2, 1), groups=2)),
    # conv_transpose2d
    Case("conv_transpose2d_basic", "conv_transpose2d",
         [Spec([2, 3, 4, 4]), Spec([3, 2, 3, 3]), Spec([2])], convt()),
    Case("conv_transpose2d_stride_outpad", "conv_transpose2d",
         [Spec([1, 2, 3, 4]), Spec([2, 3, 3, 3])], convt(stride=2, padding=1, output_padding=1)),
    Case("conv_transpose2d_groups_dil", "conv_transpose2d",
         [Spec([1, 4, 3, 3]), Spec([4, 1, 2, 2]), Spec([2])], convt(dilation=2, groups=2)),
    Case("conv_transpose2d_asym", "conv_transpose2d",
         [Spec([2, 2, 3, 3]), Spec([2, 2, 2, 3])], convt(stride=(2, 1), padding=(0, 1))),
    # output_padding below the dilation (not the stride)
    Case("conv_transpose2d_outpad_dil", "conv_transpose2d",
         [Spec([1, 2, 3, 3]), Spec([2, 2, 2, 2]), Spec([2])],
         convt(output_padding=1, dilation=2)),
    # the internal gradient ops
    Case("conv2d_input_grad_basic", "conv2d_input_grad",
         [Spec([2, 4, 3, 3]), Spec([4, 3, 3, 3]), Spec([2, 3, 5, 5])], input_grad()),
    Case("conv2d_input_grad_stride", "conv2d_input_grad",
         [Spec([1, 3, 4, 4]), Spec([3, 2, 3, 3]), Spec([1, 2, 8, 7])],
         input_grad(stride=2, padding=1)),
    Case("conv2d_input_grad_groups", "conv2d_input_grad",
         [Spec([1, 4, 3, 3]), Spec([4, 1, 2, 2]), Spec([1, 2, 5, 5])],
         input_grad(dilation=2, groups=2)),
    Case("conv2d_weight_grad_basic", "conv2d_weight_grad",
         [Spec([2, 3, 5, 5]), Spec([2, 4, 3, 3])], weight_grad((3, 3))),
    Case("conv2d_weight_grad_groups", "conv2d_weight_grad",
         [Spec([2, 4, 6, 6]), Spec([2, 6, 3, 3])], weight_grad((3, 3), stride=2, padding=1,
                                                              groups=2)),
    Case("conv2d_weight_grad_depthwise", "conv2d_weight_grad",
         [Spec([1, 3, 5, 6]), Spec([1, 3, 3, 2])], weight_grad((3, 3), dilation=(1, 2),
                                                              groups=3)),
]
