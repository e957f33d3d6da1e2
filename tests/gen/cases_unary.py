"""Op cases for the unary math family (src/ops/unary_math.c); the C rows with the same names
are in tests/cases_unary.c. Each fn computes the op's maths in float64 PyTorch."""
import torch

from op_case import Case, Spec

CASES = [
    # neg: out = -x
    Case("neg_basic", "neg", [Spec([3, 4])], lambda x: -x),
    Case("neg_batched", "neg", [Spec([2, 1, 5], lo=-50.0, hi=50.0)], lambda x: -x),

    # abs: |x|, gradient sign(x); kept away from the kink at 0
    Case("abs_basic", "abs", [Spec([4, 5], away_from=0.0)], torch.abs),
    Case("abs_values", "abs", [Spec([6], values=[-3.0, -0.5, 0.25, 1.0, -1e3, 7.5])], torch.abs),

    # sign (internal, abs's backward): piecewise constant, zero gradient
    Case("sign_basic", "sign", [Spec([3, 5], away_from=0.0)], torch.sign),

    # exp: e^x, gradient g * out; large (e^16 ~ 9e6) and tiny (e^-40 ~ 4e-18) outputs, each
    # in a narrow band so float32 finite differences of the summed loss stay meaningful
    Case("exp_basic", "exp", [Spec([4, 6])], torch.exp),
    Case("exp_large", "exp", [Spec([2, 3], lo=14.0, hi=16.0)], torch.exp),
    Case("exp_tiny", "exp", [Spec([2, 1, 3], lo=-40.0, hi=-30.0)], torch.exp),

    # log: ln x on positive inputs, gradient g / x (large near 0)
    Case("log_basic", "log", [Spec([5, 4], lo=0.1, hi=4.0)], torch.log),
    Case("log_small", "log", [Spec([8], lo=0.1, hi=0.3)], torch.log),
    Case("log_large", "log", [Spec([2, 4], lo=50.0, hi=500.0)], torch.log),

    # sqrt: gradient g / (2 sqrt x)
    Case("sqrt_basic", "sqrt", [Spec([3, 1, 4], lo=0.1, hi=9.0)], torch.sqrt),

    # square: x^2, gradient 2 x g
    Case("square_basic", "square", [Spec([4, 5], lo=-3.0, hi=3.0)], torch.square),

    # pow_scalar: x^p for several exponents (non-integer ones on positive x only)
    Case("pow_scalar_int3", "pow_scalar", [Spec([3, 4])], lambda x: torch.pow(x, 3.0)),
    Case("pow_scalar_two", "pow_scalar", [Spec([2, 5])], lambda x: torch.pow(x, 2.0)),
    Case("pow_scalar_half", "pow_scalar", [Spec([4, 3], lo=0.2, hi=4.0)],
         lambda x: torch.pow(x, 0.5)),
    Case("pow_scalar_frac", "pow_scalar", [Spec([2, 3, 2], lo=0.3, hi=3.0)],
         lambda x: torch.pow(x, 2.5)),
    Case("pow_scalar_neg", "pow_scalar", [Spec([5], lo=0.5, hi=3.0)],
         lambda x: torch.pow(x, -1.5)),
    Case("pow_scalar_one", "pow_scalar", [Spec([3, 3])], lambda x: torch.pow(x, 1.0)),
    Case("pow_scalar_zero", "pow_scalar", [Spec([2, 4])], lambda x: torch.pow(x, 0.0)),

    # scale: x * s, gradient g * s
    Case("scale_basic", "scale", [Spec([3, 4])], lambda x: x * -2.5),
    Case("scale_batched", "scale", [Spec([2, 1, 3, 2])], lambda x: x * 0.125),

    # add_scalar: x + s, gradient g
    Case("add_scalar_basic", "add_scalar", [Spec([4, 3])], lambda x: x + 0.75),
    Case("add_scalar_neg", "add_scalar", [Spec([1, 6])], lambda x: x + -3.0),
]
