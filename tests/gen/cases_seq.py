"""Op cases for the sequence ops (issue 12); the C rows with the same names are in
tests/cases_seq.c."""
import torch
import torch.nn.functional as F

from op_case import Case, Spec


def embedding(table, indices):
    return F.embedding(indices, table)


def embedding_grad(grad, indices, table):
    d = table.shape[1]
    out = torch.zeros(table.shape, dtype=grad.dtype)
    return out.index_add(0, indices.reshape(-1), grad.reshape(-1, d))


CASES = [
    Case("embedding_basic", "embedding",
         [Spec([7, 4]), Spec([2, 3], lo=0, hi=7, dtype="i32")], embedding),
    # repeated rows: the table's gradient adds them up
    Case("embedding_repeat", "embedding",
         [Spec([5, 3]), Spec([3, 4], dtype="i32", values=[0, 4, 4, 1, 0, 0, 2, 4, 1, 1, 3, 0])],
         embedding),
    Case("embedding_flat", "embedding",
         [Spec([11, 6]), Spec([9], lo=0, hi=11, dtype="i32")], embedding),
    Case("embedding_grad_basic", "embedding_grad",
         [Spec([2, 3, 4]), Spec([2, 3], dtype="i32", values=[1, 0, 5, 1, 1, 6]), Spec([7, 4])],
         embedding_grad),
]
