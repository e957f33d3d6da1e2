#!/bin/sh
# dagrad against PyTorch on the MLP benchmark, in one command:
#
#   bench/run_mlp_compare.sh [build-dir] [options...]          (build-dir default: build)
#
# Runs bench/torch_mlp.py (Debian's /usr/bin/python3 with python3-torch; OpenBLAS forced to
# its SkylakeX kernel) and then <build-dir>/bench/bench_mlp --torch <its output>, which prints
# per configuration `mlp_..._dagrad`, `mlp_..._torch` (samples/s) and `mlp_..._ratio`
# (dagrad / PyTorch). This is one round; ROUNDS=n (default 3) repeats the pair n times,
# alternating, and ends with a summary: the median over rounds of each throughput and the
# median of the per-round ratios (each ratio pairs two runs a few seconds apart, which
# matters on a machine shared with other work). Rounds are printed as `#` lines.
# Options after the build dir go to both programs (--threads 1,2, --seconds S,
# --repetitions R). PYTHON overrides the interpreter (default /usr/bin/python3).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
python=${PYTHON:-/usr/bin/python3}
rounds=${ROUNDS:-3}
bench="$build/bench/bench_mlp"
if [ ! -x "$bench" ]; then
    echo "run_mlp_compare: $bench not found; build first (ninja -C $build)" >&2
    exit 1
fi

# OpenBLAS reads this when it loads; torch_mlp.py would also set it itself.
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
export OPENBLAS_CORETYPE

work=$(mktemp -d "${TMPDIR:-/tmp}/mlp_compare.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
r=1
while [ "$r" -le "$rounds" ]; do
    "$python" "$here/torch_mlp.py" "$@" > "$work/torch"
    "$bench" --torch "$work/torch" "$@" > "$work/round$r"
    grep '^#' "$work/torch" | sed "s/^# /# round $r: /"
    sed "s/^/# round $r: /" "$work/round$r"
    echo "# round $r: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    r=$((r + 1))
done

# Medians over rounds, in the order of the first round.
cat "$work"/round* | awk '
    { if (!($1 in n)) { order[++count] = $1; unit[$1] = $3 } v[$1, ++n[$1]] = $2 }
    END {
        for (i = 1; i <= count; i++) {
            name = order[i]; k = n[name]
            for (a = 1; a <= k; a++) x[a] = v[name, a]
            for (a = 2; a <= k; a++)            # insertion sort, k is small
                for (b = a; b > 1 && x[b - 1] > x[b]; b--) { t = x[b]; x[b] = x[b - 1]; x[b - 1] = t }
            m = (k % 2) ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
            if (name ~ /_ratio$/) printf "%s %.2f %s\n", name, m, unit[name]
            else printf "%s %.0f %s\n", name, m, unit[name]
        }
    }'
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
