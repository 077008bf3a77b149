#!/usr/bin/env python3
"""How long fsync takes on this disk: writes 8 KB and fsyncs, in a loop, for SECONDS.

    python3 server/bench/fsync_probe.py [SECONDS] [DIRECTORY]

A durable upload waits for one WAL fsync, so this disk's fsync tail is the floor of the
server's p99 (docs/perf/server.md).
"""
import os
import sys
import tempfile
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
directory = sys.argv[2] if len(sys.argv) > 2 else "."
with tempfile.NamedTemporaryFile(dir=directory) as f:
    fd = f.fileno()
    block = b"x" * 8192
    times = []
    offset = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        os.pwrite(fd, block, offset)
        offset = (offset + len(block)) % (8 << 20)
        t = time.perf_counter()
        os.fsync(fd)
        times.append(time.perf_counter() - t)
times.sort()
n = len(times)
ms = lambda q: times[min(n - 1, int(n * q))] * 1e3
print(f"{n} fsyncs: p50 {ms(0.5):.2f} ms, p99 {ms(0.99):.2f} ms, p99.9 {ms(0.999):.2f} ms, "
      f"max {times[-1] * 1e3:.1f} ms; over 10 ms: {sum(t > 0.01 for t in times)}, "
      f"over 20 ms: {sum(t > 0.02 for t in times)}")
