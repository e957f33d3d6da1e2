#!/bin/sh
# examples/charlm against bench/torch_charlm.py (PyTorch 1.13), one command, same options:
#
#   bench/run_charlm_compare.sh [build-dir] --model lstm|gru|gpt [--data kjv.txt] [--steps N]
#                               [--threads T (1)] [--batch B] [--seq T] [--layers L] ...
#                               [--target-loss X] [--torch-threads T2]
#
# Runs PyTorch first, then dagrad (sampling off for the comparison), and prints both runs'
# `val_loss` and `train_tokens_per_s` side by side with the ratios (dagrad / PyTorch), plus
# the load average before and after (the machine may be shared). Make the corpus first with
# tools/kjv_text.sh. With --target-loss X both stop at their first evaluation with
# val_loss <= X, and the script also prints both wall times to it and their ratio (the
# schedule still spans --steps, 2000 by default). PYTHON overrides the interpreter (default /usr/bin/python3).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=build
case "${1:-}" in
    --*|"") ;;
    *) build=$1; shift ;;
esac
# Both get the same thread count: 1 unless given (charlm's own default is every core), unless
# --torch-threads T2 gives PyTorch another (e.g. each at its fastest setting: dagrad's every
# core against PyTorch's one thread, which is its fastest on a 2-core machine).
torch_threads=
n=$#
while [ "$n" -gt 0 ]; do
    a=$1; shift; n=$((n - 1))
    if [ "$a" = --torch-threads ] && [ "$n" -gt 0 ]; then
        torch_threads=$1; shift; n=$((n - 1))
    else
        set -- "$@" "$a"
    fi
done
case " $* " in
    *" --threads "*) ;;
    *) set -- "$@" --threads 1 ;;
esac
python=${PYTHON:-/usr/bin/python3}
charlm="$build/examples/charlm"
if [ ! -x "$charlm" ]; then
    echo "run_charlm_compare: $charlm not found; build first (ninja -C $build)" >&2
    exit 1
fi
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
export OPENBLAS_CORETYPE

work=$(mktemp -d "${TMPDIR:-/tmp}/charlm_compare.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$here/torch_charlm.py" "$@" ${torch_threads:+--threads "$torch_threads"} | tee "$work/torch" | sed 's/^/# torch: /'
"$charlm" "$@" --sample-len 0 | tee "$work/dagrad" | sed 's/^/# dagrad: /'
value() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$2"; }
tv=$(value val_loss "$work/torch"); dv=$(value val_loss "$work/dagrad")
tt=$(value train_tokens_per_s "$work/torch"); dt=$(value train_tokens_per_s "$work/dagrad")
echo "charlm_val_loss_torch $tv nats/char"
echo "charlm_val_loss_dagrad $dv nats/char"
awk -v d="$dv" -v t="$tv" 'BEGIN { printf "charlm_val_loss_ratio %.4f dagrad/torch\n", d / t }'
echo "charlm_train_tokens_per_s_torch $tt tokens/s"
echo "charlm_train_tokens_per_s_dagrad $dt tokens/s"
awk -v d="$dt" -v t="$tt" 'BEGIN { printf "charlm_train_tokens_ratio %.2f dagrad/torch\n", d / t }'
case " $* " in *" --target-loss "*)
    ts=$(value seconds_to_target "$work/torch"); ds=$(value seconds_to_target "$work/dagrad")
    for who in torch dagrad; do
        n=$(value steps_to_target "$work/$who")
        if [ -n "$n" ]; then
            echo "charlm_steps_to_target_$who $n steps"
            echo "charlm_seconds_to_target_$who $(value seconds_to_target "$work/$who") s"
        else
            echo "# $who did not reach the target within --steps"
        fi
    done
    if [ -n "$ts" ] && [ -n "$ds" ]; then
        awk -v d="$ds" -v t="$ts" 'BEGIN { printf "charlm_time_to_target_ratio %.2f dagrad/torch\n", d / t }'
    fi ;;
esac
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
