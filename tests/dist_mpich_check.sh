#!/bin/sh
# tests/dist_mpich_check.sh [BUILD]: the data-parallel code against MPICH, beside Debian's
# default Open MPI (docs/distributed.md, "MPICH"). Meson's dependency('mpi') finds Open MPI
# here, so this builds the MPI parts by hand with MPICH's wrapper (mpicc.mpich, from
# libmpich-dev) -- src/dist/dist.c, tests/test_dist.c, tests/dist_kill.c, -Wall -Wextra
# -Werror -- links them against BUILD's libdagrad.a, a library configured without MPI
# (default build-nompi: `meson setup build-nompi -Dmpi=disabled -Dtests=false`; its
# dist_none.o is left out of the link because dist.o defines every dg_dist_* symbol), and runs
# the dist suite under MPICH's mpiexec with 1, 2 and 3 ranks, then the dead-rank and
# failed-step checks (tests/dist_kill.sh).
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-nompi}
cc=${MPICC_MPICH:-mpicc.mpich}
run=${MPIEXEC_MPICH:-mpiexec.mpich}
ninja -C "$build" libdagrad.a >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== $($cc -v 2>&1 | head -n 1)"
flags="-std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
       -ffp-contract=off -Iinclude -Isrc -Isrc/base -Isrc/ops -I$build -fopenmp -pthread"
$cc $flags -DDG_BUILDING_LIBRARY -fvisibility=hidden -c src/dist/dist.c -o "$out/dist.o"
$cc $flags -c tests/test_dist.c -o "$out/test_dist.o"
$cc $flags -c tests/test_util.c -o "$out/test_util.o"
$cc $flags -c tests/dist_kill.c -o "$out/dist_kill.o"
libs="$build/libdagrad.a $(pkg-config --libs check) -lsleef -lcjson -lz -lm -fopenmp -pthread"
if grep -q -- -lmvec "$build/meson-private/dagrad.pc"; then
    libs="$libs -lmvec"
fi
$cc -o "$out/test_dist" "$out/test_dist.o" "$out/test_util.o" "$out/dist.o" $libs
$cc -o "$out/dist_kill" "$out/dist_kill.o" "$out/dist.o" $libs
if strings "$out/test_dist" | grep -q 'built without MPI'; then
    echo "FAIL: the stub (dist_none.c) was linked" >&2
    exit 1
fi
for np in 1 2 3; do
    echo "== $run -np $np test_dist"
    CK_FORK=no OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE "$run" -np "$np" "$out/test_dist"
done
for mode in kill error; do
    echo "== dist_kill.sh $mode"
    sh tests/dist_kill.sh "$out/dist_kill" "$mode" 3 "$run"
done
echo "MPICH check passed"
