#!/usr/bin/python3
"""CPU time per training step of examples/charlm (one or more builds) against
bench/torch_charlm.py, for comparisons on a shared, loaded machine where wall-clock tokens/s
mostly measure the other processes.

    /usr/bin/python3 bench/charlm_cpu_compare.py [--rounds N] BUILD [BUILD ...] \\
        [-- --model lstm --data /work/kjv.txt --threads 1]

Each program runs twice per round, for SHORT and LONG steps (--eval-every past both, so the
one final evaluation and the start-up cancel in the difference); its CPU time (user + system,
all its threads) over the LONG - SHORT extra steps gives ms per step. Prints one line per
program and round, then the medians and each build's ratio to PyTorch in tokens per
CPU-second. The load is printed: the other processes still share caches and memory
bandwidth, so quote it. OPENBLAS_CORETYPE=SkylakeX as in run_charlm_compare.sh.
"""
import os
import resource
import statistics
import subprocess
import sys

SHORT, LONG = 10, 50
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
rounds = 2
if args[:1] == ["--rounds"]:
    rounds, args = int(args[1]), args[2:]
builds, options = (args[:args.index("--")], args[args.index("--") + 1:]) if "--" in args \
    else (args, [])
if not builds:
    sys.exit(__doc__)
if not options:
    options = ["--model", "lstm", "--data", "/work/kjv.txt", "--threads", "1"]
options = options + ["--eval-every", "100000"]
env = dict(os.environ, OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE", "SkylakeX"))
programs = [("torch", ["/usr/bin/python3", os.path.join(here, "torch_charlm.py")])]
programs += [(b, [os.path.join(b, "examples", "charlm"), "--sample-len", "0"]) for b in builds]


def cpu_seconds(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


print("# load average before:", open("/proc/loadavg").read().split()[:3])
per_step = {name: [] for name, _ in programs}
for r in range(rounds):
    for name, cmd in programs:
        extra = cpu_seconds(cmd + options + ["--steps", str(LONG)]) - \
            cpu_seconds(cmd + options + ["--steps", str(SHORT)])
        ms = extra / (LONG - SHORT) * 1000
        per_step[name].append(ms)
        print(f"round {r} {name}: {ms:.1f} ms CPU per step", flush=True)
torch_ms = statistics.median(per_step["torch"])
for name, _ in programs:
    ms = statistics.median(per_step[name])
    print(f"{name}: median {ms:.1f} ms CPU per step, {torch_ms / ms:.2f}x PyTorch")
print("# load average after:", open("/proc/loadavg").read().split()[:3])
