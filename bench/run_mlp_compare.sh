#!/bin/sh
# dagrad against PyTorch on the MLP benchmark, in one run:
#
#   bench/run_mlp_compare.sh [build-dir] [bench_mlp options...]     (build-dir default: build)
#
# Runs bench/torch_mlp.py (Debian's /usr/bin/python3 with python3-torch; OpenBLAS forced to its
# SkylakeX kernel) and then <build-dir>/bench/bench_mlp with the PyTorch results, which prints
# for every configuration `mlp_..._dagrad`, `mlp_..._torch` (samples/s) and `mlp_..._ratio`
# (dagrad / PyTorch). Options after the build dir go to both programs (--threads 1,2,
# --seconds S, --repetitions R). PYTHON overrides the interpreter.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
python=${PYTHON:-/usr/bin/python3}
bench="$build/bench/bench_mlp"
if [ ! -x "$bench" ]; then
    echo "run_mlp_compare: $bench not found; build first (ninja -C $build)" >&2
    exit 1
fi

# OpenBLAS reads this when it loads; torch_mlp.py would also set it itself.
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
export OPENBLAS_CORETYPE

torch_out=$(mktemp "${TMPDIR:-/tmp}/torch_mlp.XXXXXX")
trap 'rm -f "$torch_out"' EXIT INT TERM

echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$here/torch_mlp.py" "$@" > "$torch_out"
grep '^#' "$torch_out" || true
"$bench" --torch "$torch_out" "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
