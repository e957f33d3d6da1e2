"""Op cases for the binary elementwise family (src/ops/binary.c) and the comparison masks
(src/ops/compare.c); the C rows with the same names are in tests/cases_binary.c. Each fn
computes the op's maths in float64 PyTorch (numpy broadcasting, as dagrad)."""
import torch

from op_case import Case, Spec

# The broadcast patterns every arithmetic op is checked on: (suffix, shape of a, shape of b).
PATTERNS = [
    ("same", [3, 4], [3, 4]),
    ("row", [3, 4], [4]),            # a row vector
    ("col", [3, 4], [3, 1]),         # a column
    ("scalar", [3, 4], []),          # a 0-d scalar
    ("both", [3, 1], [1, 4]),        # both operands stretched
    ("leading", [2, 3, 4], [3, 4]),  # a missing leading axis
    ("size1", [1, 3, 1], [2, 1, 4]), # size-1 axes on both sides
    ("lhs_bcast", [4], [2, 3, 4]),   # the first operand is the broadcast one
]

FNS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
}

CASES = []
for op in ["add", "sub", "mul", "div", "maximum", "minimum"]:
    for suffix, sa, sb in PATTERNS:
        if op == "div":
            # denominators away from 0 (the gradient -g a / b^2 grows fast near it); the
            # "col" and "both" cases take negative denominators
            negative = suffix in ("col", "both")
            b = Spec(sb, lo=-2.5, hi=-0.5) if negative else Spec(sb, lo=0.5, hi=2.5)
        elif op in ("maximum", "minimum"):
            # continuous draws never tie; this range for b was chosen (checked against the
            # drawn values) so that every compared pair is more than 1.7 times the gradient
            # check's widest stencil (2h, h = 1e-2 * max(1, |x|)) apart: finite differences
            # never cross the kink. Ties are tested by hand in tests/test_ops_binary.c.
            b = Spec(sb, lo=-2.5, hi=2.0)
        else:
            b = Spec(sb)
        CASES.append(Case("%s_%s" % (op, suffix), op, [Spec(sa), b], FNS[op]))

CASES += [
    # larger magnitudes
    Case("mul_large", "mul", [Spec([2, 5], lo=-100.0, hi=100.0), Spec([5], lo=-100.0, hi=100.0)],
         FNS["mul"]),
    Case("div_small_quotient", "div", [Spec([6], lo=-1e-3, hi=1e-3), Spec([6], lo=1.0, hi=3.0)],
         FNS["div"]),

    # add_n: the n-ary sum of equal shapes (src/ops/add_n.c); the same input twice counts twice
    Case("add_n_three", "add_n", [Spec([2, 3]), Spec([2, 3]), Spec([2, 3])],
         lambda a, b, c: a + b + c),
    Case("add_n_one", "add_n", [Spec([4])], lambda a: a * 1.0),
    Case("add_n_five", "add_n", [Spec([3, 1, 2]) for _ in range(5)],
         lambda a, b, c, d, e: a + b + c + d + e),

    # comparison masks (1.0 / 0.0), no gradient: explicit values with ties for equal
    Case("equal_ties", "equal",
         [Spec([2, 3], values=[1.0, 2.0, 3.0, -1.0, 2.0, 0.5]), Spec([3], values=[1.0, 2.0, 0.5])],
         lambda a, b: (a == b).to(torch.float64), grad=False),
    Case("equal_random", "equal", [Spec([3, 1]), Spec([1, 4])],
         lambda a, b: (a == b).to(torch.float64), grad=False),
    Case("greater_bcast", "greater", [Spec([3, 4]), Spec([4])],
         lambda a, b: (a > b).to(torch.float64), grad=False),
    Case("greater_ties", "greater",
         [Spec([4], values=[1.0, 2.0, -3.0, 0.0]), Spec([4], values=[1.0, 1.5, -2.0, 0.0])],
         lambda a, b: (a > b).to(torch.float64), grad=False),
]
