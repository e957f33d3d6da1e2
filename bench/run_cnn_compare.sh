#!/bin/sh
# dagrad against PyTorch on the parity CNN, in one command:
#
#   bench/run_cnn_compare.sh [build-dir] [options...]          (build-dir default: build)
#
# Runs bench/torch_cnn.py (Debian's /usr/bin/python3 with python3-torch; OpenBLAS forced to its
# SkylakeX kernel) and <build-dir>/bench/bench_cnn with the same options (--threads 1,2,
# --seconds S, --repetitions R), then prints per configuration `..._dagrad`, `..._torch`
# (samples/s) and `..._ratio` (dagrad / PyTorch). PYTHON overrides the interpreter.
# ROUNDS=n (default 1) repeats the pair n times, alternating, printing each round as `#` lines,
# and ends with the median over rounds of each throughput and the median of the per-round
# ratios (each ratio pairs two runs seconds apart: what counts on a shared machine).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
python=${PYTHON:-/usr/bin/python3}
rounds=${ROUNDS:-1}
bench="$build/bench/bench_cnn"
if [ ! -x "$bench" ]; then
    echo "run_cnn_compare: $bench not found; build first (ninja -C $build)" >&2
    exit 1
fi
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
export OPENBLAS_CORETYPE
work=$(mktemp -d "${TMPDIR:-/tmp}/cnn_compare.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
r=1
while [ "$r" -le "$rounds" ]; do
    "$python" "$here/torch_cnn.py" "$@" > "$work/torch"
    "$bench" "$@" > "$work/dagrad"
    [ "$r" -eq 1 ] && grep '^#' "$work/torch" || true
    cat "$work/dagrad" "$work/torch" | grep -v '^#' | awk '
        { split($1, part, "_"); key = part[1] "_" part[2] "_" part[3] "_" part[4];
          if (!(key in seen)) { order[++count] = key; seen[key] = 1 }
          if (part[5] == "dagrad") d[key] = $2; else t[key] = $2 }
        END {
            for (i = 1; i <= count; i++) {
                k = order[i]
                printf "%s_dagrad %s samples/s\n%s_torch %s samples/s\n", k, d[k], k, t[k]
                if (t[k] > 0) printf "%s_ratio %.2f\n", k, d[k] / t[k]
            }
        }' > "$work/round$r"
    if [ "$rounds" -gt 1 ]; then
        sed "s/^/# round $r: /" "$work/round$r"
        echo "# round $r: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    fi
    r=$((r + 1))
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# Medians over rounds (the one round as it is when ROUNDS=1), in the first round's order.
cat "$work"/round* | awk '
    { if (!($1 in n)) { order[++count] = $1; unit[$1] = $3 } v[$1, ++n[$1]] = $2 }
    END {
        for (i = 1; i <= count; i++) {
            name = order[i]; k = n[name]
            for (a = 1; a <= k; a++) x[a] = v[name, a]
            for (a = 2; a <= k; a++)
                for (b = a; b > 1 && x[b - 1] > x[b]; b--) { t = x[b]; x[b] = x[b - 1]; x[b - 1] = t }
            m = (k % 2) ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
            if (name ~ /_ratio$/) printf "%s %.2f\n", name, m
            else printf "%s %.0f %s\n", name, m, unit[name]
        }
    }'
