#!/bin/sh
# tests/dist_kill.sh PROGRAM NP MPIEXEC [MPIEXEC FLAGS...]: one rank of PROGRAM
# (tests/dist_kill.c) kills itself; the job must end with a failure well inside the time
# limit: not hang, not succeed.
program=$1 np=$2
shift 2
out=$(timeout 60 "$@" -np "$np" "$program" 2>&1)
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
# The rank must really have died of its signal (not, say, a job that could not start).
if ! echo "$out" | grep -qi 'signal 9'; then
    echo "FAIL: the job failed (status $rc) but not from the killed rank"
    exit 1
fi
echo "ok: the job ended with status $rc"
