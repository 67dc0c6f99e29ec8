#!/usr/bin/env python3
"""Peak RSS of one process, read from /proc while it runs.

    pollrss.py PIDFILE NAME

Waits for PIDFILE, then reads /proc/PID/status every millisecond while the
process named NAME runs there, and prints its last VmHWM (peak resident set
size, kB) — the process's own peak, children excluded — and the number of
samples. VmHWM only grows, so the last sample is the peak up to at most a
millisecond before the process ended.
"""
import os
import sys
import time


def main():
    pidfile, name = sys.argv[1], sys.argv[2]
    deadline = time.monotonic() + 60
    pid = None
    while pid is None:
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
        except (FileNotFoundError, ValueError):
            if time.monotonic() > deadline:
                sys.exit(f"pollrss: no pid in {pidfile}")
            time.sleep(0.001)
    hwm, samples = None, 0
    while True:
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except (FileNotFoundError, ProcessLookupError):
            break
        if "VmHWM" not in fields:  # a zombie: it has ended
            break
        if fields["Name"].strip() == name:
            hwm = int(fields["VmHWM"].split()[0])
            samples += 1
        time.sleep(0.001)
    if hwm is None:
        sys.exit(f"pollrss: never saw {name} as pid {pid}")
    print(f"{hwm} {samples}")


if __name__ == "__main__":
    main()
