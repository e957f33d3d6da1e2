"""Declarations shared by tests/gen/cases_<family>.py and the fixture driver gen_ops.py.

A case names its inputs (shape, value range, dtype) and the PyTorch function that computes the
op. The driver draws inputs with a generator seeded from the case name, evaluates the function
and its gradients in float64, and stores float32 results under "<name>/..." records.
"""
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence


@dataclass
class Spec:
    shape: Sequence[int]
    lo: float = -2.0
    hi: float = 2.0
    dtype: str = "f32"            # "f32" or "i32" (ints drawn in [lo, hi) as integers)
    away_from: Optional[float] = None  # keep values at least 0.05 from this point (kinks)
    values: Optional[list] = None      # explicit values (flattened), instead of random


@dataclass
class Case:
    name: str
    op: str
    inputs: List[Spec]
    fn: Callable                   # torch function of the input tensors
    grad: bool = True              # False for ops with no gradient (masks)
    extra: dict = field(default_factory=dict)
