#!/bin/sh
# Installs dagrad's build and test dependencies from Debian 12's packages (as root), or says
# what is missing. Used by tools/test, tools/demo and .ci/run.
#   tools/deps.sh            build + test dependencies
#   tools/deps.sh demo       ... plus the Fashion-MNIST data set and the KJV Bible (charlm)
#   tools/deps.sh bench      ... plus the PyTorch peer of the bench/ comparisons, and OpenBLAS
#                            (without it Debian's torch falls back to the reference BLAS)
set -eu
# openmpi-bin, libopenmpi-dev: data-parallel training (src/dist); meson test then runs the
# distributed suites under mpiexec (the library builds and tests without them too).
packages="meson ninja-build gcc pkg-config libsleef-dev check zlib1g-dev libcjson-dev graphviz"
packages="$packages openmpi-bin libopenmpi-dev"
if [ "${1:-}" = demo ]; then
    packages="$packages dataset-fashion-mnist bible-kjv"
fi
if [ "${1:-}" = bench ]; then
    packages="$packages python3-torch python3-numpy libopenblas0-pthread dataset-fashion-mnist bible-kjv"
fi
if [ "${1:-}" = ci ]; then
    # libclang-rt-14-dev holds the sanitizer runtimes and libFuzzer (tests/fuzz); MPICH beside
    # Open MPI (whose alternatives keep priority: mpicc, mpiexec stay Open MPI's) for
    # tests/dist_mpich_check.sh.
    packages="$packages clang libomp-dev libclang-rt-14-dev mpich libmpich-dev"
fi
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
