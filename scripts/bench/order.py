#!/usr/bin/env python3
"""The order of the variants in one round of scripts/bench.sh.

    order.py ROUND VARIANT...

Prints the variants, one per line, in row ROUND (0, 1, 2, ...) of a balanced
Latin square (Williams design): over every n rounds (2n for an odd number of
variants) each variant runs once in every position and right after every
other variant equally often, so that neither a position in the round nor an
after-effect of the previous run can favour one variant.
"""
import sys


def williams(n):
    first = [0]
    lo, hi = 1, n - 1
    while len(first) < n:
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    rows = [[(x + i) % n for x in first] for i in range(n)]
    if n % 2:
        rows += [row[::-1] for row in rows]
    return rows


if __name__ == "__main__":
    rnd, variants = int(sys.argv[1]), sys.argv[2:]
    rows = williams(len(variants))
    print("\n".join(variants[i] for i in rows[rnd % len(rows)]))
