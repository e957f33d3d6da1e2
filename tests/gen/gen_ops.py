#!/usr/bin/python3
"""Writes tests/fixtures/ops_<family>.dgfx from tests/gen/cases_<family>.py (PyTorch reference).

Run with Debian's system python, which has torch 1.13 and numpy (the python3 first on PATH may
not):

    /usr/bin/python3 tests/gen/gen_ops.py            # every family whose cases file exists
    /usr/bin/python3 tests/gen/gen_ops.py unary loss # only these families

For each case (tests/gen/op_case.py) the driver:
  * draws the inputs from numpy's Generator seeded with zlib.crc32(case name): float inputs
    uniform in [lo, hi), int inputs integers in [lo, hi), values closer than 0.05 to
    Spec.away_from redrawn, Spec.values used as given; then rounds them to float32 (int32);
  * evaluates case.fn in float64 on those float32-rounded values (int inputs as int64 tensors,
    torch's index type), so the reference is exact maths on exactly the inputs the C test feeds;
  * draws "upstream" uniform in [-1, 1) with out's shape from the same generator, and takes the
    input gradients of loss = sum(out * upstream) with torch.autograd.grad (an input the output
    does not depend on gets zeros);
  * writes "<name>/in0", "<name>/in1", ..., "<name>/out", "<name>/upstream" and, for float
    inputs of cases with grad=True only, "<name>/grad<k>" (k is the input's position).
The output is deterministic: the same bytes on every run (single-threaded float64 torch).
"""
import importlib
import os
import sys
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fixture_io import write_fixture  # noqa: E402

# The families of tests/op_cases.h, in its order.
FAMILIES = ["binary", "unary", "activation", "matmul", "reduce", "layout", "softmax", "loss", "nn",
            "composite", "conv", "pool", "norm", "pad", "seq"]
FIXTURE_DIR = os.path.normpath(os.path.join(HERE, "..", "fixtures"))
AWAY_MARGIN = 0.05


def draw_input(rng, spec, case_name, k):
    shape = tuple(int(d) for d in spec.shape)
    if spec.values is not None:
        values = np.asarray(spec.values, dtype=np.float64)
        if values.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError("%s: input %d has %d explicit values for shape %s"
                             % (case_name, k, values.size, shape))
        values = values.reshape(shape)
        return values.astype(np.int32) if spec.dtype == "i32" else values.astype(np.float32)
    if spec.dtype == "i32":
        return rng.integers(int(spec.lo), int(spec.hi), size=shape).astype(np.int32)
    if spec.dtype != "f32":
        raise ValueError("%s: input %d has unknown dtype %r" % (case_name, k, spec.dtype))
    values = rng.uniform(spec.lo, spec.hi, size=shape).astype(np.float32)
    if spec.away_from is not None:
        point = np.float64(spec.away_from)
        for _ in range(1000):
            close = np.abs(values.astype(np.float64) - point) < AWAY_MARGIN
            if not close.any():
                break
            redrawn = rng.uniform(spec.lo, spec.hi, size=int(close.sum())).astype(np.float32)
            values[close] = redrawn
        else:
            raise ValueError("%s: input %d: cannot keep values %g away from %g in [%g, %g)"
                             % (case_name, k, AWAY_MARGIN, point, spec.lo, spec.hi))
    return values


def run_case(case):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    arrays = [draw_input(rng, spec, case.name, k) for k, spec in enumerate(case.inputs)]
    tensors = []
    for spec, arr in zip(case.inputs, arrays):
        if spec.dtype == "i32":
            tensors.append(torch.from_numpy(arr.astype(np.int64)))
        else:
            tensors.append(torch.from_numpy(arr.astype(np.float64)).requires_grad_(case.grad))
    out = case.fn(*tensors)
    if not torch.is_tensor(out):
        raise TypeError("%s: fn returned %r, not a tensor" % (case.name, type(out)))
    if not out.is_floating_point():
        out = out.to(torch.float64)
    upstream = torch.from_numpy(rng.uniform(-1.0, 1.0, size=tuple(out.shape)))
    records = [("%s/in%d" % (case.name, k), arr) for k, arr in enumerate(arrays)]
    records.append(("%s/out" % case.name, out.detach().numpy().astype(np.float32)))
    records.append(("%s/upstream" % case.name, upstream.numpy().astype(np.float32)))
    if not np.all(np.isfinite(records[-2][1])):
        raise ValueError("%s: output is not finite" % case.name)
    if case.grad:
        float_positions = [k for k, spec in enumerate(case.inputs) if spec.dtype != "i32"]
        wrt = [tensors[k] for k in float_positions]
        if wrt:
            if out.requires_grad:
                # The loss of the C test: sum(out * upstream), upstream rounded to float32 as
                # stored, so both sides differentiate the same loss.
                upstream32 = torch.from_numpy(records[-1][1].astype(np.float64))
                loss = (out * upstream32).sum()
                grads = torch.autograd.grad(loss, wrt, allow_unused=True)
            else:
                grads = [None] * len(wrt)
            for k, x, grad in zip(float_positions, wrt, grads):
                value = torch.zeros_like(x) if grad is None else grad
                value = value.detach().numpy().astype(np.float32)
                if not np.all(np.isfinite(value)):
                    raise ValueError("%s: gradient of input %d is not finite" % (case.name, k))
                records.append(("%s/grad%d" % (case.name, k), value))
    return records


def generate(family):
    module = importlib.import_module("cases_" + family)
    records, seen = [], set()
    for case in module.CASES:
        if case.name in seen:
            raise ValueError("cases_%s.py: case name %r is used twice" % (family, case.name))
        seen.add(case.name)
        records.extend(run_case(case))
    path = os.path.join(FIXTURE_DIR, "ops_%s.dgfx" % family)
    write_fixture(path, records)
    print("%s: %d cases, %d records" % (os.path.relpath(path), len(module.CASES), len(records)))


def main(argv):
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    unknown = [f for f in argv if f not in FAMILIES]
    if unknown:
        sys.exit("unknown families: %s (known: %s)" % (", ".join(unknown), ", ".join(FAMILIES)))
    wanted = argv or FAMILIES
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    missing = []
    for family in wanted:
        if not os.path.exists(os.path.join(HERE, "cases_%s.py" % family)):
            missing.append(family)
            continue
        generate(family)
    if missing:
        print("no cases file yet for: %s" % ", ".join(missing))
        if argv:
            sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
