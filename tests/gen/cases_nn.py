"""Op cases for the layer-support ops (src/ops/dropout.c); C rows in tests/cases_nn.c.

Dropout in evaluation mode (key = {seed, step, training = 0}) is the identity: the key input
is int32 and gets no gradient."""
from op_case import Case, Spec

CASES = [
    Case("dropout_eval", "dropout",
         [Spec([4, 5]), Spec([3], dtype="i32", values=[7, 3, 0])],
         lambda x, key: x * 1.0),
    Case("dropout_eval_batched", "dropout",
         [Spec([2, 3, 4]), Spec([3], dtype="i32", values=[11, 0, 0])],
         lambda x, key: x * 1.0),
]
