#!/usr/bin/python3
"""PyTorch peer of bench/bench_mlp.c: the same MLP trained the same way, for the ratio.

    /usr/bin/python3 bench/torch_mlp.py [--threads 1,2] [--seconds 0.25] [--repetitions 7]

Model: 784-256-128-10, ReLU, nn.CrossEntropyLoss on int64 labels, Adam lr 1e-3 (PyTorch
defaults otherwise). Inputs uniform in [0, 1), labels uniform in [0, 10). A training step is
zero_grad + forward + loss + backward + optimizer.step(); forward-only is model(x) under
torch.no_grad() at batch 1 (logits). Configurations: train at batch 32, 128, 1024 and
forward-only at batch 1, each at every thread count.

Method (the same as bench_mlp.c): per configuration a fresh model (same seed), warm-up steps
(at least 0.2 s and 1000 steps, or 3 s), then `repetitions` timed repetitions of N steps each, N chosen from the
warm-up so that one repetition lasts about `seconds`; the median repetition is reported. The
steps cycle through 8 pre-made batches, so no data is created inside the timed loop.

Output: `name value unit` lines, e.g. `mlp_train_b128_t1_torch 60000 samples/s`, plus lines
starting with `#` that say how the peer was set up (OpenBLAS core and threads, an sgemm probe).

OpenBLAS: Debian's OpenBLAS 0.3.21 (what python3-torch uses for float GEMM here) detects this
CPU as "Prescott" and runs an SSE kernel unless OPENBLAS_CORETYPE=SkylakeX is set; it reads
the variable when the library loads, so the script re-executes itself with it set when it is
absent (an explicit value in the environment is kept).

Threads: Debian's OpenBLAS is the pthread build, whose own threads (one per core by default)
are apart from torch's OpenMP intra-op threads (torch.set_num_threads). At T threads the
script gives OpenBLAS T threads (openblas_set_num_threads through ctypes, so that "t1" really
is one thread) and times two intra-op settings, torch.set_num_threads(T) and (1), reporting
the faster per configuration (only one setting when T == 1): on 2 cores, 2 OpenMP threads
next to 2 spinning OpenBLAS threads oversubscribe the machine and are several times slower
than 1 + 2, which is also PyTorch's default here. A `#` line says which setting won.
Must run with Debian's /usr/bin/python3 (python3-torch); another python3 may lack torch.
"""
import argparse
import os
import statistics
import sys
import time

from torch_util import find_openblas, pin_openblas_core, set_blas_threads

pin_openblas_core()

import torch  # noqa: E402  (imported after the environment is settled on purpose)

N_BATCHES = 8
# Warm-up as bench_mlp.c: at least 0.2 s, and 1000 steps unless that takes over 3 s, so that
# Adam's state of dead ReLU units has decayed into float subnormals (the steady state) before
# timing starts; see WARMUP_STEPS there.
WARMUP_SECONDS = 0.2
WARMUP_STEPS = 1000
WARMUP_MAX_SECONDS = 3.0


def set_threads(openblas, intra_op, blas):
    torch.set_num_threads(intra_op)
    set_blas_threads(openblas, blas)


def sgemm_probe(n=1024):
    """GFLOP/s of torch.mm on n x n floats (median of 5): ~150 at 1 thread with the
    SkylakeX kernel on this CPU, ~32 with Prescott."""
    a = torch.rand(n, n)
    b = torch.rand(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        times.append((time.perf_counter() - t0) / 4)
    return 2.0 * n * n * n / statistics.median(times) / 1e9


def make_model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))


def make_batches(batch, seed):
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.rand(batch, 784, generator=gen) for _ in range(N_BATCHES)]
    ys = [torch.randint(0, 10, (batch,), generator=gen) for _ in range(N_BATCHES)]
    return xs, ys


def time_config(step, repetitions, seconds):
    """Median seconds per step: warm-up, then `repetitions` repetitions of N steps."""
    steps = 0
    t0 = time.perf_counter()
    while True:
        step(steps)
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= WARMUP_SECONDS and steps >= 3 and (
                steps >= WARMUP_STEPS or elapsed >= WARMUP_MAX_SECONDS):
            break
    per_step = elapsed / steps
    n = max(1, int(seconds / per_step))
    results = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        for i in range(n):
            step(i)
        results.append((time.perf_counter() - t0) / n)
    return statistics.median(results)


def bench_train(batch, repetitions, seconds):
    model = make_model(1)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs, ys = make_batches(batch, 2)
    last = [None]

    def step(i):
        x, y = xs[i % N_BATCHES], ys[i % N_BATCHES]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        last[0] = loss

    t = time_config(step, repetitions, seconds)
    if not torch.isfinite(last[0]).item():
        sys.exit("torch_mlp: loss is not finite")
    return batch / t


def bench_forward(batch, repetitions, seconds):
    model = make_model(1)
    model.eval()
    xs, _ = make_batches(batch, 2)

    def step(i):
        with torch.no_grad():
            model(xs[i % N_BATCHES])

    return batch / time_config(step, repetitions, seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--seconds", type=float, default=0.25, help="seconds per repetition")
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",") if t]

    openblas = find_openblas()
    corename = openblas.openblas_get_corename().decode() if openblas is not None else "?"
    print(f"# torch {torch.__version__}, OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}, "
          f"OpenBLAS core {corename}, default threads: torch {torch.get_num_threads()}, "
          f"OpenBLAS {openblas.openblas_get_num_threads() if openblas is not None else '?'}",
          flush=True)
    for t in threads:
        set_threads(openblas, 1, t)
        print(f"# torch.mm 1024^3 with {t} OpenBLAS thread(s): {sgemm_probe():.1f} GFLOP/s",
              flush=True)

    configs = [(f"train_b{b}", lambda b=b: bench_train(b, args.repetitions, args.seconds))
               for b in (32, 128, 1024)]
    configs.append(("forward_b1", lambda: bench_forward(1, args.repetitions, args.seconds)))
    for t in threads:
        for name, run in configs:
            best = 0.0
            for intra_op in sorted({t, 1}, reverse=True):
                set_threads(openblas, intra_op, t)
                value = run()
                if t > 1:
                    print(f"# mlp_{name}_t{t}: intra-op {intra_op}, OpenBLAS {t}: "
                          f"{value:.0f} samples/s", flush=True)
                if value > best:
                    best = value
            print(f"mlp_{name}_t{t}_torch {best:.0f} samples/s", flush=True)


if __name__ == "__main__":
    main()
