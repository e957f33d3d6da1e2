#!/usr/bin/python3
"""Writes tests/fixtures/optim.dgfx: torch.optim trajectories that tests/test_optim.c replays.

Run from the repository root with Debian's python (torch 1.13, numpy):
    /usr/bin/python3 tests/gen/gen_optim.py

Three parameters (shapes [7,5], [5], [3,4,2]) start from fixed values; 20 fixed gradient sets
(seeded numpy, scaled from 0.01 to 2 over the steps so that norm clipping is active in some steps
only) are applied by each configuration below. Stored, all float32:
    param_init_<i>              initial value of parameter i
    grad_<i>                    [20, *shape]: the gradient of parameter i at each step
    <config>/param_<i>          parameter i after the 20 steps
    <config>/<slot>_<i>         optimizer state slot of parameter i after 20 steps
    <config>/lr                 [20]: the lr each step used
    <config>/norm               [20]: clip_grad_norm_'s total norm at each step (clipping configs)
The configurations are mirrored, row by row, by the parity table in tests/test_optim.c.
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

SHAPES = [(7, 5), (5,), (3, 4, 2)]
STEPS = 20


def cosine_warmup(warmup, total, min_lr, base_lr):
    """The lr multiplier of dagrad's DG_SCHEDULE_COSINE (see include/dagrad_optim.h)."""
    def factor(t):
        if t < warmup:
            lr = base_lr * (t + 1) / warmup
        elif t >= total:
            lr = min_lr
        else:
            progress = (t - warmup) / (total - warmup)
            lr = min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return lr / base_lr
    return factor


# name -> (optimizer factory, scheduler factory or None, clipping: None | ("norm", max, p) |
# ("value", v)). Keep in step with the table in tests/test_optim.c.
CONFIGS = [
    ("sgd", lambda p: torch.optim.SGD(p, lr=0.1), None, None),
    ("sgd_nesterov", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                               weight_decay=0.01), None, None),
    ("sgd_dampening_max", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3,
                                                    maximize=True), None, None),
    ("adam", lambda p: torch.optim.Adam(p, lr=0.01), None, None),
    ("adam_amsgrad_wd", lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99),
                                                   weight_decay=0.05, amsgrad=True), None, None),
    ("adamw", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1), None, None),
    ("adamw_amsgrad", lambda p: torch.optim.AdamW(p, lr=0.02, amsgrad=True, eps=1e-6),
     None, None),
    ("rmsprop", lambda p: torch.optim.RMSprop(p, lr=0.01), None, None),
    ("rmsprop_centered_mom", lambda p: torch.optim.RMSprop(p, lr=0.005, alpha=0.9, momentum=0.9,
                                                           centered=True, weight_decay=0.01),
     None, None),
    ("adagrad", lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                              initial_accumulator_value=0.1), None, None),
    ("adam_clipnorm_cosine", lambda p: torch.optim.Adam(p, lr=0.02),
     lambda o: torch.optim.lr_scheduler.LambdaLR(o, cosine_warmup(5, 15, 1e-3, 0.02)),
     ("norm", 1.0, 2.0)),
    ("sgd_clipvalue_step", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5),
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=6, gamma=0.5), ("value", 0.5)),
    ("adamw_clipinf_exp", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05),
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
     ("norm", 0.5, math.inf)),
    ("rmsprop_clipnorm1", lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5),
     None, ("norm", 2.0, 1.0)),
]


def main():
    torch.set_num_threads(1)
    rng = np.random.default_rng(20240601)
    init = [rng.uniform(-1.0, 1.0, size=s).astype(np.float32) for s in SHAPES]
    scales = [10.0 ** (-2.0 + 2.3 * k / (STEPS - 1)) for k in range(STEPS)]
    grads = [np.stack([(rng.standard_normal(size=s) * scales[k]).astype(np.float32)
                       for k in range(STEPS)]) for s in SHAPES]

    tensors = [("param_init_%d" % i, a) for i, a in enumerate(init)]
    tensors += [("grad_%d" % i, g) for i, g in enumerate(grads)]
    for name, make_opt, make_sched, clip in CONFIGS:
        params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
        opt = make_opt(params)
        sched = make_sched(opt) if make_sched else None
        lrs, norms, clipped = [], [], 0
        for k in range(STEPS):
            for p, g in zip(params, grads):
                p.grad = torch.from_numpy(g[k].copy())
            if clip and clip[0] == "value":
                torch.nn.utils.clip_grad_value_(params, clip[1])
            elif clip:
                norm = torch.nn.utils.clip_grad_norm_(params, clip[1], norm_type=clip[2])
                norms.append(float(norm))
                clipped += float(norm) > clip[1]
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched:
                sched.step()
        if clip and clip[0] == "norm":
            print("%s: norm clipping active in %d of %d steps" % (name, clipped, STEPS))
            tensors.append((name + "/norm", np.array(norms, dtype=np.float32)))
        tensors.append((name + "/lr", np.array(lrs, dtype=np.float32)))
        for i, p in enumerate(params):
            tensors.append(("%s/param_%d" % (name, i), p.detach().numpy()))
            for slot, value in opt.state[p].items():
                if slot != "step" and torch.is_tensor(value):
                    tensors.append(("%s/%s_%d" % (name, slot, i), value.numpy()))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                       "optim.dgfx")
    write_fixture(out, tensors)
    print("wrote %s (%d tensors)" % (os.path.normpath(out), len(tensors)))


if __name__ == "__main__":
    main()
