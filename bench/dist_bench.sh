#!/bin/sh
# Data-parallel scaling of the two demo models, in one command (docs/distributed.md):
#
#   bench/dist_bench.sh [build-dir] [--steps S] [--models "mlp cnn"]   (build-dir default: build)
#
# For each model (the MLP of examples/fashion_mnist.c at global batch 128, then the parity
# CNN of examples/fashion_cnn.c at global batch 64; --models picks them), runs
# build/bench/bench_dist --model M as 1 rank x 1 thread, 1 rank x 2 threads, 2 ranks x 1
# thread (gradient averaging overlapped with the backward pass with a progress thread, without
# one, then not overlapped), and 3 ranks x 1 thread (oversubscribed when the machine has 2
# cores), each one timed epoch after a warm-up, and prints its `name value unit` lines under a
# `# model: configuration` header (the MLP's lines are named dist_*, the CNN's dist_cnn_*),
# then `uptime` (the figures mean little on a busy machine). Two ranks are bound to cores
# (three share two cores unbound); single-rank runs are started without mpirun so that their
# threads are not bound to one core. Other arguments go to every bench_dist run.
set -eu
build=build
case "${1:-}" in
    ""|-*) ;;
    *) build=$1; shift ;;
esac
models="mlp cnn"
bench="$build/bench/bench_dist"
mpirun=${MPIRUN:-mpirun}
# Root (containers, CI) needs Open MPI's consent; MPICH ignores these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
flags="" bind="" nobind=""
if "$mpirun" --version 2>/dev/null | grep -qi open; then
    flags="--oversubscribe" bind="--bind-to core" nobind="--bind-to none"
fi
# Split off --models; keep the rest for bench_dist.
rest=""
while [ $# -gt 0 ]; do
    case "$1" in
        --models) models=$2; shift 2 ;;
        *) rest="$rest $1"; shift ;;
    esac
done
for m in $models; do
    set -- --model "$m" $rest
    OMP_NUM_THREADS=1 "$bench" --threads 1 "$@"
    OMP_NUM_THREADS=2 "$bench" --threads 2 "$@"
    OMP_NUM_THREADS=1 "$mpirun" $flags $bind -np 2 "$bench" --distributed --threads 1 "$@"
    OMP_NUM_THREADS=1 "$mpirun" $flags $bind -np 2 "$bench" --distributed --no-progress-thread --threads 1 "$@"
    OMP_NUM_THREADS=1 "$mpirun" $flags $bind -np 2 "$bench" --distributed --no-overlap --threads 1 "$@"
    OMP_NUM_THREADS=1 "$mpirun" $flags $nobind -np 3 "$bench" --distributed --threads 1 "$@"
done
echo "# uptime: $(uptime)"
