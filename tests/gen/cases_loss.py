"""Op cases for the losses (src/ops/loss.c); the C rows with the same names are in
tests/cases_loss.c. torch.nn.functional computes the elementwise losses; softmax cross-entropy
is written out because dagrad ignores every label outside [0, C) (PyTorch ignores one
ignore_index and raises for labels >= C) and gives 0, not NaN, for an all-ignored batch."""
import torch
import torch.nn.functional as F

from op_case import Case, Spec


def valid_weights(labels, c):
    """1/N_valid for rows with a label in [0, C), else 0 (all 0 when none is valid)."""
    valid = ((labels >= 0) & (labels < c)).to(torch.float64)
    n_valid = valid.sum()
    return valid / n_valid if n_valid > 0 else valid * 0.0


def sce(logits, labels):
    c = logits.shape[1]
    w = valid_weights(labels, c)
    picked = logits.gather(1, labels.clamp(0, c - 1)[:, None])[:, 0]
    return ((torch.logsumexp(logits, 1) - picked) * w).sum()


def sce_grad(logits, labels, s):
    c = logits.shape[1]
    w = valid_weights(labels, c)
    onehot = F.one_hot(labels.clamp(0, c - 1), c).to(torch.float64)
    return s * w[:, None] * (torch.softmax(logits, 1) - onehot)


def ce_row_weights(labels, logits):
    return valid_weights(labels, logits.shape[1])[:, None]


# [B,T,V] logits with [B,T] labels: every position is a row (the same maths, flattened)
def sce_seq(logits, labels):
    return sce(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def sce_grad_seq(logits, labels, s):
    c = logits.shape[-1]
    return sce_grad(logits.reshape(-1, c), labels.reshape(-1), s).reshape(logits.shape)


def ce_row_weights_seq(labels, logits):
    c = logits.shape[-1]
    return valid_weights(labels.reshape(-1), c).reshape(labels.shape + (1,))


# huber inputs: a - b kept at least 0.06 from +-delta (the kink of the second derivative)
HUBER1_A = [-2.5, -1.3, -0.7, -0.2, 0.1, 0.6, 0.9, 1.4, 2.2, 2.9, -0.4, 1.8]
HUBER2_A = [-4.5, -2.6, -1.7, -0.3, 0.5, 1.2, 1.85, 2.3, 3.1, 4.8, -1.1, 0.0]

CASES = [
    Case("sce_basic", "softmax_cross_entropy",
         [Spec([4, 5]), Spec([4], lo=0, hi=5, dtype="i32")], sce),
    # -100 (PyTorch's ignore_index) and 7 >= C are both ignored
    Case("sce_ignore", "softmax_cross_entropy",
         [Spec([4, 5]), Spec([4], dtype="i32", values=[1, -100, 3, 7])], sce),
    Case("sce_extreme", "softmax_cross_entropy",
         [Spec([3, 4], lo=-1000.0, hi=1000.0), Spec([3], lo=0, hi=4, dtype="i32")], sce),
    Case("sce_all_ignored", "softmax_cross_entropy",
         [Spec([2, 3]), Spec([2], dtype="i32", values=[-1, 3])], sce),
    Case("sce_one_class", "softmax_cross_entropy",
         [Spec([3, 1]), Spec([3], dtype="i32", values=[0, 0, 0])], sce),
    Case("sce_wide", "softmax_cross_entropy",
         [Spec([2, 300]), Spec([2], lo=0, hi=300, dtype="i32")], sce),
    Case("sce_seq", "softmax_cross_entropy",
         [Spec([2, 3, 5]), Spec([2, 3], dtype="i32", values=[0, 4, -100, 2, 5, 1])], sce_seq),
    Case("sce_seq4", "softmax_cross_entropy",
         [Spec([2, 2, 3, 4]), Spec([2, 2, 3], lo=0, hi=4, dtype="i32")], sce_seq),
    Case("sce_grad_seq", "softmax_cross_entropy_grad",
         [Spec([2, 3, 4]), Spec([2, 3], dtype="i32", values=[3, 0, -1, 1, 2, 2]), Spec([])],
         sce_grad_seq),
    Case("sce_grad_basic", "softmax_cross_entropy_grad",
         [Spec([3, 4]), Spec([3], lo=0, hi=4, dtype="i32"), Spec([])], sce_grad),
    Case("sce_grad_ignore", "softmax_cross_entropy_grad",
         [Spec([4, 3]), Spec([4], dtype="i32", values=[2, -100, 0, 3]), Spec([])], sce_grad),
    Case("ce_row_weights_basic", "ce_row_weights",
         [Spec([5], dtype="i32", values=[0, -1, 2, 3, 1]), Spec([5, 3])], ce_row_weights,
         grad=False),
    Case("ce_row_weights_seq", "ce_row_weights",
         [Spec([2, 3], dtype="i32", values=[0, -1, 2, 3, 1, 9]), Spec([2, 3, 4])],
         ce_row_weights_seq, grad=False),
    Case("bce_soft", "bce", [Spec([3, 4], lo=0.05, hi=0.95), Spec([3, 4], lo=0.0, hi=1.0)],
         F.binary_cross_entropy),
    Case("bce_hard", "bce",
         [Spec([6], lo=0.05, hi=0.95), Spec([6], values=[0, 1, 1, 0, 1, 0])],
         F.binary_cross_entropy),
    Case("bce_with_logits_basic", "bce_with_logits",
         [Spec([3, 4], lo=-5.0, hi=5.0), Spec([3, 4], lo=0.0, hi=1.0)],
         F.binary_cross_entropy_with_logits),
    Case("bce_with_logits_large", "bce_with_logits",
         [Spec([2, 5], lo=-100.0, hi=100.0), Spec([2, 5], lo=0.0, hi=1.0)],
         F.binary_cross_entropy_with_logits),
    Case("mse_basic", "mse_loss", [Spec([3, 4]), Spec([3, 4])], F.mse_loss),
    Case("mse_1d", "mse_loss", [Spec([7], lo=-10.0, hi=10.0), Spec([7])], F.mse_loss),
    # b = 0 and a away from 0: a - b never at l1's kink
    Case("l1_basic", "l1_loss", [Spec([3, 4], away_from=0.0), Spec([3, 4], values=[0.0] * 12)],
         F.l1_loss),
    Case("l1_3d", "l1_loss", [Spec([2, 2, 3], lo=0.5, hi=2.0), Spec([2, 2, 3], lo=-2.0, hi=0.4)],
         F.l1_loss),
    Case("huber_delta1", "huber_loss", [Spec([3, 4], values=HUBER1_A), Spec([3, 4], lo=-0.04,
                                                                            hi=0.04)],
         lambda a, b: F.huber_loss(a, b, delta=1.0)),
    Case("huber_delta2", "huber_loss", [Spec([12], values=HUBER2_A), Spec([12], lo=-0.04,
                                                                          hi=0.04)],
         lambda a, b: F.huber_loss(a, b, delta=2.0)),
]
