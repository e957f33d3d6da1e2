#!/usr/bin/python3
"""PyTorch peer of bench/bench_cnn.c: the parity CNN of examples/fashion_cnn.c, timed the same way.

    /usr/bin/python3 bench/torch_cnn.py [--threads 1,2] [--seconds 0.5] [--repetitions 5]

Model: Conv2d(1,16,3,padding=1) ReLU MaxPool2d(2) Conv2d(16,32,3,padding=1) ReLU MaxPool2d(2)
Flatten Linear(1568,128) ReLU Linear(128,10); CrossEntropyLoss, Adam lr 1e-3. Training steps at
batch 64 (zero_grad, forward, loss, backward, step); inference at batch 1 and 256 under
torch.no_grad(). Inputs uniform in [0, 1), 8 pre-made batches cycled; warm-up at least 0.2 s,
then `repetitions` repetitions of about `seconds`; the median is printed as
`cnn_train_b64_t1_torch N samples/s` etc.

Threads as bench/torch_mlp.py: OPENBLAS_CORETYPE=SkylakeX (the script re-executes itself with
it), OpenBLAS gets T threads, and torch.set_num_threads(T) and (1) are both timed at T > 1, the
faster reported (a `#` line says which). Run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import os
import statistics
import sys
import time

from torch_util import find_openblas, pin_openblas_core, set_blas_threads

pin_openblas_core()

import torch  # noqa: E402

N_BATCHES = 8


def make_model():
    torch.manual_seed(1)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10))


def time_config(step, batch, repetitions, seconds):
    steps = 0
    t0 = time.perf_counter()
    while True:
        step(steps)
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= 0.2 and steps >= 3:
            break
    n = max(1, int(seconds / (elapsed / steps)))
    rates = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        for i in range(n):
            step(i)
        rates.append(n * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench(batch, train, repetitions, seconds):
    model = make_model()
    gen = torch.Generator().manual_seed(2)
    xs = [torch.rand(batch, 1, 28, 28, generator=gen) for _ in range(N_BATCHES)]
    ys = [torch.randint(0, 10, (batch,), generator=gen) for _ in range(N_BATCHES)]
    if train:
        loss_fn = torch.nn.CrossEntropyLoss()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(i):
            opt.zero_grad()
            loss_fn(model(xs[i % N_BATCHES]), ys[i % N_BATCHES]).backward()
            opt.step()
    else:
        model.eval()

        def step(i):
            with torch.no_grad():
                model(xs[i % N_BATCHES])
    return time_config(step, batch, repetitions, seconds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--only", choices=["train", "infer1", "infer256"])
    args = parser.parse_args()
    openblas = find_openblas()
    print("# torch %s, OPENBLAS_CORETYPE=%s" % (torch.__version__, os.environ["OPENBLAS_CORETYPE"]))
    for threads in [int(t) for t in args.threads.split(",")]:
        for batch, train in ((64, True), (1, False), (256, False)):
            config = "train" if train else "infer%d" % batch
            if args.only is not None and args.only != config:
                continue
            best, best_intra = 0.0, threads
            for intra in ([threads, 1] if threads > 1 else [1]):
                torch.set_num_threads(intra)
                set_blas_threads(openblas, threads)
                rate = bench(batch, train, args.repetitions, args.seconds)
                if rate > best:
                    best, best_intra = rate, intra
            name = "cnn_%s_b%d_t%d_torch" % ("train" if train else "infer", batch, threads)
            print("# %s: torch.set_num_threads(%d) was faster" % (name, best_intra))
            print("%s %.0f samples/s" % (name, best))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
