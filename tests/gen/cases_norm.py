"""Op cases for layer and group normalisation (src/ops/norm.c); the C rows with the same names
are in tests/cases_norm.c. eps = 1e-5 (PyTorch's default)."""
import torch
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


def batch_norm(momentum=0.1):
    """(x, running_mean, running_var, key [, gamma, beta]); the mode is key[2]. In training the
    output does not read the running statistics (detached copies go to torch)."""
    def fn(x, rm, rv, key, gamma=None, beta=None):
        if key[2] != 0:
            return F.batch_norm(x, rm.detach().clone(), rv.detach().clone(), gamma, beta,
                                training=True, momentum=momentum, eps=1e-5)
        # evaluation, written out so that the running statistics get their gradient (torch's
        # batch_norm defines none for them)
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x - rm.reshape(shape)) / torch.sqrt(rv.reshape(shape) + 1e-5)
        return y * gamma.reshape(shape) + beta.reshape(shape) if gamma is not None else y
    return fn


def normalised(x, rm, rv, k, gamma):
    """batch_norm without beta in the mode of key k (the evaluation written out)."""
    if k[2] != 0:
        return F.batch_norm(x, rm.detach().clone(), rv.detach().clone(), gamma, None,
                            training=True, momentum=0.1, eps=1e-5)
    shape = [1, -1] + [1] * (x.dim() - 2)
    y = (x - rm.reshape(shape)) / torch.sqrt(rv.reshape(shape) + 1e-5)
    return y * gamma.reshape(shape) if gamma is not None else y


def bn_grad(x, rm, rv, k, g, gamma=None):
    """dx of batch_norm for upstream g, differentiable again (create_graph)."""
    y = normalised(x, rm, rv, k, gamma)
    return torch.autograd.grad(y, x, g, create_graph=True)[0]


def bn_gamma_grad(x, rm, rv, k, g):
    """dgamma = sum of g x^ over every axis but 1: the gradient at gamma = 1."""
    gamma = torch.ones(x.shape[1], dtype=x.dtype, requires_grad=True)
    y = normalised(x, rm, rv, k, gamma)
    return torch.autograd.grad(y, gamma, g, create_graph=True)[0]


def ln_grad(n_axes):
    """dx of layer_norm (without beta) for upstream g, differentiable again (create_graph)."""
    def fn(x, g, gamma=None):
        y = F.layer_norm(x, x.shape[x.dim() - n_axes:], gamma, None, 1e-5)
        return torch.autograd.grad(y, x, g, create_graph=True)[0]
    return fn


def ln_gamma_grad(n_axes):
    """dgamma of layer_norm = sum of g x^ over the rows: the gradient at gamma = 1."""
    def fn(x, g):
        shape = x.shape[x.dim() - n_axes:]
        gamma = torch.ones(shape, dtype=x.dtype, requires_grad=True)
        y = F.layer_norm(x, shape, gamma, None, 1e-5)
        return torch.autograd.grad(y, gamma, g, create_graph=True)[0]
    return fn


def key(training):
    return Spec([3], dtype="i32", values=[7, 3, 1 if training else 0])


def mode(k):
    return (k[2] != 0).to(torch.float64)


CASES = [
    Case("batch_norm_train", "batch_norm",
         [Spec([3, 2, 3, 2]), Spec([2]), Spec([2], lo=0.5, hi=2.0), key(True), Spec([2]),
          Spec([2])], batch_norm()),
    Case("batch_norm_train_plain", "batch_norm",
         [Spec([4, 3]), Spec([3]), Spec([3], lo=0.5, hi=2.0), key(True)], batch_norm()),
    Case("batch_norm_eval", "batch_norm",
         [Spec([2, 3, 2, 2]), Spec([3]), Spec([3], lo=0.5, hi=2.0), key(False), Spec([3]),
          Spec([3])], batch_norm()),
    Case("bn_grad_train", "batch_norm_grad",
         [Spec([3, 2, 3, 2]), Spec([2]), Spec([2], lo=0.5, hi=2.0), key(True),
          Spec([3, 2, 3, 2]), Spec([2])], bn_grad),
    Case("bn_grad_train_plain", "batch_norm_grad",
         [Spec([4, 3]), Spec([3]), Spec([3], lo=0.5, hi=2.0), key(True), Spec([4, 3])],
         bn_grad),
    Case("bn_grad_eval", "batch_norm_grad",
         [Spec([2, 3, 2, 2]), Spec([3]), Spec([3], lo=0.5, hi=2.0), key(False),
          Spec([2, 3, 2, 2]), Spec([3])], bn_grad),
    Case("bn_grad_offset", "batch_norm_grad",
         [Spec([4, 2, 5], lo=48.0, hi=52.0), Spec([2]), Spec([2], lo=0.5, hi=2.0), key(True),
          Spec([4, 2, 5]), Spec([2])], bn_grad),
    Case("bn_gamma_grad_train", "batch_norm_gamma_grad",
         [Spec([3, 2, 3, 2]), Spec([2]), Spec([2], lo=0.5, hi=2.0), key(True),
          Spec([3, 2, 3, 2])], bn_gamma_grad),
    Case("bn_gamma_grad_eval", "batch_norm_gamma_grad",
         [Spec([2, 3, 2, 2]), Spec([3]), Spec([3], lo=0.5, hi=2.0), key(False),
          Spec([2, 3, 2, 2])], bn_gamma_grad),
    Case("batch_norm_mode_train", "batch_norm_mode", [key(True)], mode, grad=False),
    Case("batch_norm_mode_eval", "batch_norm_mode", [key(False)], mode, grad=False),
    Case("layer_norm_last", "layer_norm", [Spec([3, 5]), Spec([5]), Spec([5])], layer(1)),
    Case("layer_norm_two_axes", "layer_norm", [Spec([2, 3, 4]), Spec([3, 4]), Spec([3, 4])],
         layer(2)),
    Case("layer_norm_plain", "layer_norm", [Spec([4, 6])], layer(1)),
    # a row with a large offset: the mean is subtracted before the variance is taken
    Case("layer_norm_offset", "layer_norm", [Spec([2, 7], lo=90.0, hi=94.0), Spec([7]),
                                             Spec([7])], layer(1)),
    Case("ln_grad_last", "layer_norm_grad", [Spec([3, 5]), Spec([3, 5]), Spec([5])],
         ln_grad(1)),
    # 20 elements a row: the 16 float lanes and a tail
    Case("ln_grad_two_axes", "layer_norm_grad",
         [Spec([3, 4, 5]), Spec([3, 4, 5]), Spec([4, 5])], ln_grad(2)),
    Case("ln_grad_plain", "layer_norm_grad", [Spec([4, 6]), Spec([4, 6])], ln_grad(1)),
    Case("ln_grad_offset", "layer_norm_grad",
         [Spec([2, 7], lo=90.0, hi=94.0), Spec([2, 7]), Spec([7])], ln_grad(1)),
    Case("ln_gamma_grad_last", "layer_norm_gamma_grad", [Spec([3, 5]), Spec([3, 5])],
         ln_gamma_grad(1)),
    Case("ln_gamma_grad_two_axes", "layer_norm_gamma_grad",
         [Spec([2, 3, 4, 5]), Spec([2, 3, 4, 5])], ln_gamma_grad(2)),
    Case("ln_gamma_grad_all", "layer_norm_gamma_grad", [Spec([3, 6]), Spec([3, 6])],
         ln_gamma_grad(2)),
    Case("group_norm_basic", "group_norm", [Spec([2, 4, 3, 3]), Spec([4]), Spec([4])],
         group(2)),
    Case("group_norm_one_group", "group_norm", [Spec([2, 3, 2, 3]), Spec([3]), Spec([3])],
         group(1)),
    Case("group_norm_instance", "group_norm", [Spec([2, 3, 2, 2]), Spec([3]), Spec([3])],
         group(3)),
    Case("group_norm_plain", "group_norm", [Spec([3, 4, 5])], group(2)),
]
