#!/usr/bin/env python3
"""The scaling model of docs/distributed.md: predicted step time and efficiency of the demo
MLP's data-parallel training on 2 to 256 machines over 10, 25 and 100 Gb/s links.

    bench/dist_model.py [compute_ms_per_step]      (default 6.3: 1 rank x 1 thread, measured)

Per bucket of S bytes on N ranks, allreduce cost (alpha: per-message latency, B: usable
link bandwidth, 80 % of the line rate):
    ring (and dagrad's exchange + gather):  2 (N-1) alpha + 2 (N-1)/N * S / B
    tree (binomial reduce + broadcast):     2 log2(N) (alpha + S / B)
The demo MLP (784-512-256-10) has two buckets at the default 256 KiB: fc2+fc3 (535,592 B),
final when fc1's backward starts, hidden behind it (a third of a step's FLOPs) as far as it
fits; and fc1 (1,607,680 B), final at the end of the backward pass, never hidden.
Weak scaling: 128 examples per rank (global batch 128 N), compute per step constant.
Strong scaling: global batch 128, compute per step divided by N (needs N <= 128).
"""
import math
import sys

compute = float(sys.argv[1]) if len(sys.argv) > 1 else 6.3  # ms per step of batch 128
buckets = [535592, 1607680]  # bytes: ready first (hideable), ready last
window_share = 0.33          # fc1's backward (dW1 only) / whole step, in FLOPs
links = [("10 Gb/s", 10e9, 10e-6), ("25 Gb/s", 25e9, 10e-6), ("100 Gb/s", 100e9, 2e-6)]


def ring(n, size, bw, alpha):
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * size / bw


def tree(n, size, bw, alpha):
    return 2 * math.log2(n) * (alpha + size / bw)


def exposed(n, bw, alpha, algo, step):
    hideable, last = (algo(n, s, bw, alpha) for s in buckets)
    return max(0.0, hideable - window_share * step) + last


print(f"compute per step (batch 128, 1 rank x 1 thread): {compute} ms")
for name, rate, alpha in links:
    bw = rate / 8 * 0.8
    print(f"\n{name}: alpha {alpha * 1e6:.0f} us, usable {bw / 1e9:.2f} GB/s")
    print("| N | ring ms | tree ms | weak: step ms | weak: efficiency | strong: step ms "
          "| strong: speed-up |")
    print("|---|---|---|---|---|---|---|")
    for n in [2, 4, 8, 16, 32, 64, 128, 256]:
        total_ring = sum(ring(n, s, bw, alpha) for s in buckets) * 1e3
        total_tree = sum(tree(n, s, bw, alpha) for s in buckets) * 1e3
        weak = compute + exposed(n, bw, alpha, ring, compute / 1e3) * 1e3
        if n <= 128:
            c = compute / n
            strong = c + exposed(n, bw, alpha, ring, c / 1e3) * 1e3
            strong_cells = f"{strong:.2f} | {compute / strong:.1f}x"
        else:
            strong_cells = "- | - (batch < ranks)"
        print(f"| {n} | {total_ring:.2f} | {total_tree:.2f} | {weak:.2f} | "
              f"{compute / weak:.2f} | {strong_cells} |")
