"""Op cases for the activation family (src/ops/activation.c); the C rows with the same names
are in tests/cases_activation.c. Each fn computes the op's maths in float64 PyTorch; the fused
backward ops (relu_grad, ...) are written out explicitly as functions of (first, grad)."""
import math

import torch
import torch.nn.functional as F

from op_case import Case, Spec


def normal_cdf(x):
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def normal_pdf(x):
    return torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


CASES = [
    # relu: kept away from the kink at 0
    Case("relu_basic", "relu", [Spec([4, 5], away_from=0.0)], F.relu),
    Case("relu_batched", "relu", [Spec([2, 1, 3, 4], lo=-10.0, hi=10.0, away_from=0.0)], F.relu),

    # relu_grad(x, g) = g * [x > 0]
    Case("relu_grad_basic", "relu_grad", [Spec([3, 4], away_from=0.0), Spec([3, 4])],
         lambda x, g: g * (x > 0).to(g.dtype)),

    # leaky_relu(x) = x for x > 0, slope * x otherwise
    Case("leaky_relu_basic", "leaky_relu", [Spec([4, 5], away_from=0.0)],
         lambda x: F.leaky_relu(x, 0.1)),
    Case("leaky_relu_steep", "leaky_relu", [Spec([2, 3, 2], lo=-5.0, hi=5.0, away_from=0.0)],
         lambda x: F.leaky_relu(x, 1.5)),

    # leaky_relu_grad(x, g) = g for x > 0, slope * g otherwise
    Case("leaky_relu_grad_basic", "leaky_relu_grad", [Spec([3, 4], away_from=0.0), Spec([3, 4])],
         lambda x, g: torch.where(x > 0, g, g * 0.1)),

    # sigmoid, including saturation far out (|x| up to 30, exact values up to 100)
    Case("sigmoid_basic", "sigmoid", [Spec([4, 5], lo=-4.0, hi=4.0)], torch.sigmoid),
    Case("sigmoid_wide", "sigmoid", [Spec([3, 8], lo=-30.0, hi=30.0)], torch.sigmoid),
    Case("sigmoid_extreme", "sigmoid",
         [Spec([6], values=[-100.0, -20.0, -1.0, 0.5, 20.0, 100.0])], torch.sigmoid),

    # sigmoid_grad(y, g) = g * y * (1 - y), y in (0, 1)
    Case("sigmoid_grad_basic", "sigmoid_grad", [Spec([3, 5], lo=0.02, hi=0.98), Spec([3, 5])],
         lambda y, g: g * y * (1.0 - y)),

    # tanh, including saturation
    Case("tanh_basic", "tanh", [Spec([4, 5], lo=-3.0, hi=3.0)], torch.tanh),
    Case("tanh_wide", "tanh", [Spec([2, 2, 6], lo=-20.0, hi=20.0)], torch.tanh),

    # tanh_grad(y, g) = g * (1 - y^2), y in (-1, 1)
    Case("tanh_grad_basic", "tanh_grad", [Spec([4, 3], lo=-0.98, hi=0.98), Spec([4, 3])],
         lambda y, g: g * (1.0 - y * y)),

    # gelu, exact erf form, including the tails
    Case("gelu_basic", "gelu", [Spec([4, 5], lo=-4.0, hi=4.0)], F.gelu),
    Case("gelu_tails", "gelu", [Spec([8], values=[-12.0, -6.0, -3.5, -0.75, 0.0, 0.4, 5.0, 12.0])],
         F.gelu),

    # gelu_grad(x, g) = g * (Phi(x) + x phi(x))
    Case("gelu_grad_basic", "gelu_grad", [Spec([3, 4], lo=-4.0, hi=4.0), Spec([3, 4])],
         lambda x, g: g * (normal_cdf(x) + x * normal_pdf(x))),

    # softplus = log1p(e^x), x above 20 (PyTorch's threshold); away from the threshold
    Case("softplus_basic", "softplus", [Spec([4, 5], lo=-5.0, hi=5.0)], F.softplus),
    Case("softplus_wide", "softplus", [Spec([2, 4], lo=-40.0, hi=40.0, away_from=20.0)],
         F.softplus),
]
