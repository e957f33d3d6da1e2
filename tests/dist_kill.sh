#!/bin/sh
# tests/dist_kill.sh PROGRAM MODE NP MPIEXEC [MPIEXEC FLAGS...]: one rank of PROGRAM
# (tests/dist_kill.c) kills itself (MODE kill) or fails a step (MODE error); the job must end
# with a failure well inside the time limit, from that cause: not hang, not succeed.
program=$1 mode=$2 np=$3
shift 3
out=$(timeout 60 "$@" -np "$np" "$program" "$mode" 2>&1)
rc=$?
echo "$out"
if [ "$rc" -eq 124 ]; then
    echo "FAIL: the job hung (killed after 60 s)"
    exit 1
fi
if [ "$rc" -eq 0 ]; then
    echo "FAIL: the job succeeded although a rank died"
    exit 1
fi
# The job must have ended from that cause (not, say, because it could not start): the
# launcher's report of the signal, or dist's message naming the rank and the error.
case $mode in
kill) expect='signal 9' ;;
*) expect='rank 1 of [0-9]*: training step failed (shape error: fit: model.loss must be a float32 scalar.*ending every rank' ;;
esac
if ! echo "$out" | grep -qi "$expect"; then
    echo "FAIL: the job failed (status $rc) but without: $expect"
    exit 1
fi
echo "ok: the job ended with status $rc"
