#!/usr/bin/env python3
"""Writes a deterministic test tree for the benchmarks.

    mktree.py DIR FILES TOTAL_MB [big]
    mktree.py DIR FILES 0 small
    mktree.py DIR FILES 0 change ROUND

Default: FILES files in a two-level directory layout (about 200 files per
directory), sizes drawn from a log-normal distribution (many small files, a
few large ones) and scaled so that they add up to TOTAL_MB MiB. With `big`:
FILES files of equal size in DIR itself. Contents are pseudo-random
(incompressible), from a fixed seed, so every run builds the same tree.
With `small`: FILES files of 1-4 KiB, 100 per directory, in directories of
100 directories each (the incremental benchmark's tree). With `change ROUND`:
new contents for 0.1% of that tree's files, a different choice each round.
"""
import os
import random
import sys


def small_path(root, i):
    return os.path.join(root, f"t{i // 10000:02d}", f"d{(i // 100) % 100:02d}", f"f{i:06d}")


def small(root, nfiles, change_round=None):
    rng = random.Random(20261129 if change_round is None else change_round)
    pool = rng.randbytes(8192)
    which = range(nfiles) if change_round is None else rng.sample(range(nfiles), max(1, nfiles // 1000))
    for i in which:
        path = small_path(root, i)
        if change_round is None and i % 100 == 0:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        size = rng.randrange(1024, 4097)
        off = rng.randrange(0, len(pool) - size)
        with open(path, "wb") as f:
            f.write(pool[off:off + size])
    print(f"{root}: {'changed' if change_round else 'wrote'} {len(which)} files")


def main():
    if len(sys.argv) > 4 and sys.argv[4] in ("small", "change"):
        small(sys.argv[1], int(sys.argv[2]), int(sys.argv[5]) if sys.argv[4] == "change" else None)
        return
    root, nfiles, total_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    big = len(sys.argv) > 4 and sys.argv[4] == "big"
    total = total_mb * 1024 * 1024
    rng = random.Random(20240601)
    if big:
        sizes = [total // nfiles] * nfiles
        sizes[-1] += total - sum(sizes)
    else:
        raw = [rng.lognormvariate(9.0, 1.6) for _ in range(nfiles)]
        scale = total / sum(raw)
        sizes = [max(1, int(r * scale)) for r in raw]
        sizes[sizes.index(max(sizes))] += total - sum(sizes)
    pool = memoryview(rng.randbytes(64 * 1024 * 1024))
    per_dir = 200
    os.makedirs(root, exist_ok=True)
    for i, size in enumerate(sizes):
        if big:
            path = os.path.join(root, f"big{i:03d}.bin")
        else:
            d = os.path.join(root, f"d{i // (per_dir * 10):02d}", f"s{(i // per_dir) % 10}")
            if i % per_dir == 0:
                os.makedirs(d, exist_ok=True)
            path = os.path.join(d, f"f{i:06d}.dat")
        with open(path, "wb") as f:
            left = size
            off = (i * 7919 * 4096) % len(pool)
            while left > 0:
                chunk = pool[off:off + min(left, 8 * 1024 * 1024)]
                f.write(chunk)
                left -= len(chunk)
                off = 0
    print(f"{root}: {nfiles} files, {sum(sizes)} bytes, largest {max(sizes)}, median {sorted(sizes)[len(sizes) // 2]}")


if __name__ == "__main__":
    main()
