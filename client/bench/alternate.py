#!/usr/bin/env python3
"""Start-up of example tools, started in turn: alternate.py ROUNDS TOOL...

Each round starts every TOOL once (`TOOL alice`, stdout to /dev/null, with os.posix_spawn) and
times it until it exits. Starting them in turn keeps caches and the TLB from favouring one binary,
as back-to-back runs of one command do. Prints the minimum, p10 and median of each tool and their
difference to the first tool. See docs/perf/client.md.
"""
import os
import sys
import time


def main():
    rounds, tools = int(sys.argv[1]), sys.argv[2:]
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 1)]
    times = {t: [] for t in tools}
    for _ in range(rounds):
        for t in tools:
            start = time.perf_counter_ns()
            pid = os.posix_spawn(t, [t, "alice"], os.environ, file_actions=actions)
            _, status = os.waitpid(pid, 0)
            times[t].append((time.perf_counter_ns() - start) / 1000)
            if status != 0:
                sys.exit(f"{t} failed: status {status}")
    base = None
    for t in tools:
        v = sorted(times[t])
        row = (v[0], v[len(v) // 10], v[len(v) // 2])
        base = base or row
        diff = " ".join(f"+{a - b:.0f}" for a, b in zip(row, base))
        print(f"{t:24s} min {row[0]:6.0f} p10 {row[1]:6.0f} median {row[2]:6.0f} µs   {diff}")


if __name__ == "__main__":
    main()
