"""Op cases for matmul (src/ops/matmul.c); the C rows with the same names are in
tests/cases_matmul.c. op(X) is X with its last two axes swapped when the flag is set; the
leading (batch) axes broadcast like numpy (torch.matmul does the same)."""
import torch

from op_case import Case, Spec


def mm(ta, tb):
    def fn(a, b):
        if ta:
            a = a.transpose(-1, -2)
        if tb:
            b = b.transpose(-1, -2)
        return torch.matmul(a, b)
    return fn


CASES = [
    # the four transpose combinations, [3,4] x [4,5] in every storage layout
    Case("matmul_nn", "matmul", [Spec([3, 4]), Spec([4, 5])], mm(False, False)),
    Case("matmul_tn", "matmul", [Spec([4, 3]), Spec([4, 5])], mm(True, False)),
    Case("matmul_nt", "matmul", [Spec([3, 4]), Spec([5, 4])], mm(False, True)),
    Case("matmul_tt", "matmul", [Spec([4, 3]), Spec([5, 4])], mm(True, True)),
    # odd sizes (not multiples of any micro-kernel tile)
    Case("matmul_odd", "matmul", [Spec([7, 13]), Spec([13, 11])], mm(False, False)),
    Case("matmul_odd_tt", "matmul", [Spec([13, 7]), Spec([11, 13])], mm(True, True)),
    # K = 1 (an outer product) and M = N = 1 (a dot product)
    Case("matmul_outer", "matmul", [Spec([3, 1]), Spec([1, 4])], mm(False, False)),
    Case("matmul_dot", "matmul", [Spec([1, 6]), Spec([6, 1])], mm(False, False)),
    # batched, same batch
    Case("matmul_batched", "matmul", [Spec([2, 3, 4]), Spec([2, 4, 5])], mm(False, False)),
    Case("matmul_batched_tn", "matmul", [Spec([2, 4, 3]), Spec([2, 4, 5])], mm(True, False)),
    Case("matmul_batched_nt", "matmul", [Spec([2, 3, 4]), Spec([2, 5, 4])], mm(False, True)),
    Case("matmul_batched_tt", "matmul", [Spec([2, 4, 3]), Spec([2, 5, 4])], mm(True, True)),
    # batch broadcast: a shared right operand (one tall product), a shared left operand
    Case("matmul_bcast_rhs", "matmul", [Spec([2, 3, 4]), Spec([4, 5])], mm(False, False)),
    Case("matmul_bcast_rhs_tb", "matmul", [Spec([2, 3, 4]), Spec([5, 4])], mm(False, True)),
    Case("matmul_bcast_rhs_ta", "matmul", [Spec([2, 4, 3]), Spec([4, 5])], mm(True, False)),
    # two batch axes over a shared 2-D weight: the weight gradient is one GEMM over all rows
    Case("matmul_bcast_rhs_4d", "matmul", [Spec([2, 3, 4, 5]), Spec([5, 6])], mm(False, False)),
    Case("matmul_bcast_rhs_4d_tb", "matmul", [Spec([2, 3, 4, 5]), Spec([6, 5])],
         mm(False, True)),
    Case("matmul_bcast_lhs", "matmul", [Spec([3, 4]), Spec([2, 4, 5])], mm(False, False)),
    Case("matmul_bcast_size1", "matmul", [Spec([1, 3, 4]), Spec([2, 4, 5])], mm(False, False)),
    # general broadcasting of the batch axes: [2,1] with [3] -> [2,3]
    Case("matmul_bcast_general", "matmul", [Spec([2, 1, 3, 4]), Spec([3, 4, 2])],
         mm(False, False)),
    Case("matmul_bcast_general_tt", "matmul", [Spec([2, 1, 4, 3]), Spec([1, 3, 2, 4])],
         mm(True, True)),
    # larger values
    Case("matmul_large", "matmul", [Spec([4, 6], lo=-10.0, hi=10.0),
                                    Spec([6, 3], lo=-10.0, hi=10.0)], mm(False, False)),
]
