"""Composite networks (tests/cases_composite.c): how backward rules compose."""
import torch
import torch.nn.functional as F

from op_case import Case, Spec


def mlp_xent(x, w1, b1, w2, b2, labels):
    h = torch.relu(x @ w1 + b1)
    return F.cross_entropy(h @ w2 + b2, labels)


def fanout(x, y):
    a = (x * y + x) * torch.tanh(x)
    b = (x * x).sum(dim=1, keepdim=True)
    c = torch.exp(y) * x / (x * x + 1.0)
    return a - b + c


def attention(q, k, v):
    scores = (q @ k.transpose(-1, -2)) * 0.5
    return torch.softmax(scores, dim=-1) @ v


def residual_mse(x, w, b, target):
    h = F.gelu(x @ w + b)
    return F.mse_loss(x + h, target)


CASES = [
    Case("composite_mlp_xent", "softmax_cross_entropy",
         [Spec([8, 12]), Spec([12, 16], lo=-0.5, hi=0.5), Spec([16], lo=-0.1, hi=0.1),
          Spec([16, 5], lo=-0.5, hi=0.5), Spec([5], lo=-0.1, hi=0.1),
          Spec([8], lo=0, hi=5, dtype="i32")],
         mlp_xent),
    Case("composite_fanout", "mul", [Spec([4, 5], lo=-1.5, hi=1.5), Spec([5], lo=-1.0, hi=1.0)],
         fanout),
    Case("composite_attention", "softmax",
         [Spec([2, 3, 4]), Spec([2, 5, 4]), Spec([2, 5, 6])], attention),
    Case("composite_residual_mse", "mse_loss",
         [Spec([6, 8]), Spec([8, 8], lo=-0.5, hi=0.5), Spec([8], lo=-0.2, hi=0.2),
          Spec([6, 8])],
         residual_mse),
]
