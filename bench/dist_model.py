#!/usr/bin/env python3
"""The scaling model of docs/distributed.md: predicted step time and efficiency of the demo
models' data-parallel training on 2 to 256 machines over 10, 25 and 100 Gb/s links.

    bench/dist_model.py                       both models, compute times measured here
    bench/dist_model.py mlp|cnn [compute_ms]  one model, optionally another compute time
    bench/dist_model.py compute_ms            the MLP (the script's first form)

compute_ms is the training step's wall time at the model's global batch, 1 rank x 1 thread
(`dist_step_ms` / `dist_cnn_step_ms` of bench/dist_bench.sh).

Per bucket of S bytes on N ranks, allreduce cost (alpha: per-message latency, B: usable
link bandwidth, 80 % of the line rate):
    ring (and dagrad's exchange + gather):  2 (N-1) alpha + 2 (N-1)/N * S / B
    tree (binomial reduce + broadcast):     2 log2(N) (alpha + S / B)
Buckets (256 KiB default, cut from the last parameter backwards) are listed in the order they
become final, each with the share of the step's compute still to run after it is final (the
window it can hide behind); one link carries them one after the other:
    finish_b = max(ready_b, finish_(b-1)) + T_b,  ready_b = -window_b * step,
    exposed  = max(0, finish_last)               (time relative to the end of dg_run)
  MLP (784-512-256-10): fc2+fc3 (535,592 B), final when fc1's backward starts, window a third
      of the step (fc1's weight gradient, in FLOPs); fc1 (1,607,680 B), final last.
  CNN (parity net): fc1+fc2 (808,488 B), final after fc1's backward, window 0.595 of the step
      (both convolutions' backward, the pools', ReLUs' and bias sums: 4,743 of 7,967 us in
      `bench_cnn --profile --cpu-time --threads 1`); conv1+conv2 (19,200 B), final last.
Weak scaling: the model's batch per rank (global batch batch * N), compute per step constant.
Strong scaling: the global batch fixed, compute per step divided by N (needs N <= batch).
"""
import math
import sys

MODELS = {
    # name: (description, global batch, default compute ms per step, [(bytes, window share)])
    "mlp": ("demo MLP 784-512-256-10", 128, 6.3, [(535592, 0.33), (1607680, 0.0)]),
    "cnn": ("parity CNN conv16-conv32-fc128-fc10", 64, 8.0, [(808488, 0.595), (19200, 0.0)]),
}
links = [("10 Gb/s", 10e9, 10e-6), ("25 Gb/s", 25e9, 10e-6), ("100 Gb/s", 100e9, 2e-6)]


def ring(n, size, bw, alpha):
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * size / bw


def tree(n, size, bw, alpha):
    return 2 * math.log2(n) * (alpha + size / bw)


def exposed(buckets, n, bw, alpha, algo, step):
    """Seconds of communication left after dg_run ends, for a step of `step` seconds."""
    finish = -math.inf
    for size, window in buckets:
        finish = max(-window * step, finish) + algo(n, size, bw, alpha)
    return max(0.0, finish)


def table(name, compute):
    what, batch, _, buckets = MODELS[name]
    grad = sum(s for s, _ in buckets)
    print(f"== {name}: {what}, gradient {grad:,} bytes in {len(buckets)} buckets, "
          f"compute per step (batch {batch}, 1 rank x 1 thread): {compute} ms")
    for link, rate, alpha in links:
        bw = rate / 8 * 0.8
        print(f"\n{link}: alpha {alpha * 1e6:.0f} us, usable {bw / 1e9:.2f} GB/s")
        print("| N | ring ms | tree ms | weak: step ms | weak: efficiency | strong: step ms "
              "| strong: speed-up |")
        print("|---|---|---|---|---|---|---|")
        for n in [2, 4, 8, 16, 32, 64, 128, 256]:
            total_ring = sum(ring(n, s, bw, alpha) for s, _ in buckets) * 1e3
            total_tree = sum(tree(n, s, bw, alpha) for s, _ in buckets) * 1e3
            weak = compute + exposed(buckets, n, bw, alpha, ring, compute / 1e3) * 1e3
            if n <= batch:
                c = compute / n
                strong = c + exposed(buckets, n, bw, alpha, ring, c / 1e3) * 1e3
                strong_cells = f"{strong:.2f} | {compute / strong:.1f}x"
            else:
                strong_cells = "- | - (batch < ranks)"
            print(f"| {n} | {total_ring:.2f} | {total_tree:.2f} | {weak:.2f} | "
                  f"{compute / weak:.2f} | {strong_cells} |")
    print()


def main(argv):
    if not argv:
        for name, (_, _, compute, _) in MODELS.items():
            table(name, compute)
    elif argv[0] in MODELS:
        table(argv[0], float(argv[1]) if len(argv) > 1 else MODELS[argv[0]][2])
    else:
        table("mlp", float(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
