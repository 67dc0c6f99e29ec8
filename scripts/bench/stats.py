#!/usr/bin/env python3
"""Turns the raw results of scripts/bench.sh into Markdown tables.

    stats.py OUTDIR

Reads OUTDIR/times.csv (bench,variant,run,start,end,status), OUTDIR/rss.csv
(measure,run,kB), OUTDIR/meta.env and the snaprsync log files
OUTDIR/<bench>-snaprsync.log, and prints the summary on stdout.
"""
import csv
import math
import os
import re
import statistics
import sys
from collections import defaultdict

out = sys.argv[1]


def meta():
    m = {}
    with open(os.path.join(out, "meta.env")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                m[k] = v
    return m


M = meta()


def load_times():
    t = defaultdict(lambda: defaultdict(dict))  # bench -> variant -> run -> seconds
    path = os.path.join(out, "times.csv")
    if not os.path.exists(path):
        return t
    with open(path) as f:
        for bench, variant, run, start, end, status in csv.reader(f):
            if status != "0":
                raise SystemExit(f"{bench} {variant} run {run} exited {status}: see stderr.log")
            t[bench][variant][int(run)] = float(end) - float(start)
    return t


def med(xs):
    return statistics.median(xs)


def summaries(path):
    """The key=value pairs of each summary line of snaprsync's log."""
    out_ = []
    with open(path) as f:
        for line in f:
            if " summary " in line and "rsync_ms=" in line:
                out_.append(dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line)))
    return out_


def log_costs(bench):
    """Median create+remove ms from snaprsync's own log."""
    path = os.path.join(out, f"{bench}-snaprsync.log")
    if not os.path.exists(path):
        return None
    xs = [int(f["create_ms"]) + int(f["remove_ms"]) for f in summaries(path)]
    return med(xs) if xs else None


def log_breakdown(bench):
    path = os.path.join(out, f"{bench}-snaprsync.log")
    if not os.path.exists(path):
        return None
    keys = ("method", "snapshots", "create_ms", "rsync_ms", "remove_ms", "rsync_status", "removal")
    rows = [tuple(f[k] for k in keys) for f in summaries(path)]
    if not rows:
        return None
    methods = sorted({r[0] for r in rows})
    snaps = sorted({r[1] for r in rows})
    bad = [r for r in rows if r[5] != "0" or r[6] not in ("ok", "background")]
    c, r_, d = ([int(r[i]) for r in rows] for i in (2, 3, 4))
    return (f"snaprsync's own log, {len(rows)} runs (warm-up included): method={','.join(methods)}, "
            f"snapshots={','.join(snaps)}; median create {med(c)} ms (max {max(c)}), "
            f"rsync {med(r_)} ms, remove {med(d)} ms (max {max(d)})"
            + (f"; {len(bad)} runs with a non-zero status or failed removal" if bad else ""))


def median_ci(xs, level=0.95):
    """A distribution-free confidence interval for the median of xs: the
    order statistics whose binomial tail probabilities bracket it."""
    xs = sorted(xs)
    n = len(xs)
    k = 0  # the largest k with P(Binomial(n, 1/2) < k) <= (1 - level) / 2
    while k < n and sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n <= (1 - level) / 2:
        k += 1
    if k == 0:
        return None
    return xs[k - 1], xs[n - k]


def paired(a, b, f):
    runs = sorted(set(a) & set(b))
    return [f(a[i], b[i]) for i in runs]


def table_seconds(bench, variants, base, unit="s", scale=1.0, fmt="{:.3f}"):
    t = TIMES[bench]
    lines = [f"| variant | runs | median {unit} | min {unit} | max {unit} | median ÷ {base} median | median of per-round ratios | its 95% CI |",
             "|---|---|---|---|---|---|---|---|"]
    for v in variants:
        xs = list(t[v].values())
        if not xs:
            continue
        ratio = med(xs) / med(t[base].values())
        rs = paired(t[v], t[base], lambda x, y: x / y)
        ci = median_ci(rs)
        ci = f"{ci[0]:.3f}–{ci[1]:.3f}" if ci and v != base else "—"
        lines.append(f"| {v} | {len(xs)} | {fmt.format(med(xs) * scale)} | {fmt.format(min(xs) * scale)} | "
                     f"{fmt.format(max(xs) * scale)} | {ratio:.3f} | {med(rs):.3f} | {ci} |")
    return "\n".join(lines)


def print_own_costs(bench, t):
    """snaprsync's own breakdown for BENCH, and create+remove against plain's median."""
    b = log_breakdown(bench)
    if b:
        print(f"{b}\n")
    c = log_costs(bench)
    if c is not None:
        print(f"Snapshot create + remove alone (median {c:.0f} ms) is {c / 10 / med(t['plain'].values()):.1f}% of plain's median.\n")


def phases(bench, t, variants):
    """With BENCH_TRACE: each run split at the exec and exit of the server's
    rsync (the second rsync started in the run; the first is the client)."""
    path = os.path.join(out, f"{bench}-trace.txt")
    if not os.path.exists(path):
        return None
    offset = float(open(os.path.join(out, f"{bench}-clock-offset")).read())
    execs, exits = [], defaultdict(list)
    for line in open(path):
        m = re.search(r"\s(\d+\.\d+):\s+sched:sched_process_(exec|exit):.*?(?:filename=(\S+) )?pid=(\d+)", line)
        if m:
            at = float(m.group(1)) + offset
            if m.group(2) == "exec":
                execs.append((at, m.group(3), int(m.group(4))))
            else:
                exits[int(m.group(4))].append(at)
    spans = defaultdict(dict)  # variant -> run -> (before, rsync, after)
    with open(os.path.join(out, "times.csv")) as f:
        for b, v, run, start, end, _ in csv.reader(f):
            if b != bench:
                continue
            t0, t1 = float(start), float(end)
            rs = [(at, pid) for at, name, pid in execs if name.endswith("/rsync") and t0 <= at <= t1]
            if len(rs) < 2:
                continue
            began, pid = rs[1]
            ended = next((at for at in exits[pid] if at >= began), None)
            if ended is not None and ended <= t1:
                spans[v][int(run)] = (began - t0, ended - began, t1 - ended)
    if not spans.get("plain"):
        return None
    lines = ["| variant | runs | before rsync, median s | server's rsync, median s | after rsync, median s | rsync ÷ plain's rsync | median of per-round ratios | its 95% CI |",
             "|---|---|---|---|---|---|---|---|"]
    base = {r: x[1] for r, x in spans["plain"].items()}
    for v in variants:
        xs = spans.get(v)
        if not xs:
            continue
        col = [[x[i] for x in xs.values()] for i in range(3)]
        rs = paired({r: x[1] for r, x in xs.items()}, base, lambda x, y: x / y)
        ci = median_ci(rs)
        ci = f"{ci[0]:.3f}–{ci[1]:.3f}" if ci and v != "plain" else "—"
        lines.append(f"| {v} | {len(xs)} | {med(col[0]):.3f} | {med(col[1]):.3f} | {med(col[2]):.3f} | "
                     f"{med(col[1]) / med(base.values()):.3f} | {med(rs):.3f} | {ci} |")
    return "\n".join(lines)


TIMES = load_times()
print(f"# snaprsync benchmark results\n")
print(f"- date: {M.get('date')}\n- machine: {M.get('machine')}\n- rsync: {M.get('rsync')}\n- ssh: {M.get('ssh')}\n"
      f"- snaprsync: {M.get('snaprsync')}\n- reproduce: `{M.get('reproduce')}`\n")

if "core" in TIMES:
    t = TIMES["core"]
    ratio = med(t["snaprsync"].values()) / med(t["plain"].values())
    print(f"## core: full backup over ssh, {M['core_tree']}\n")
    known = ["plain", "snaprsync", "naive", "snapread", "fresh", "freshns"]
    variants = [v for v in known if v in t] + sorted(v for v in t if v not in known)
    print(table_seconds("core", variants, "plain"))
    print(f"\nsnaprsync ÷ plain = {ratio:.3f} (target ≤ 1.03: {'met' if ratio <= 1.03 else 'NOT met'})\n")
    print_own_costs("core", t)
    p = phases("core", t, variants)
    if p:
        print("Where the time goes (BENCH_TRACE): from the start of the client to the exec of the server's "
              "rsync (ssh login, snaprsync's own work before rsync), the server's rsync from exec to exit, "
              "and from its exit to the client's end.\n")
        print(f"{p}\n")

for bench, how in (("latency", "over ssh"), ("latency-local", "over a local remote shell (no ssh)")):
    if bench not in TIMES:
        continue
    t = TIMES[bench]
    print(f"## {bench}: tiny tree {how}, {M['lat_tree']}\n")
    print(table_seconds(bench, ["plain", "snaprsync", "naive"], "plain", unit="ms", scale=1000, fmt="{:.1f}"))
    print()
    for v in ("snaprsync", "naive"):
        if t[v]:
            d = (med(t[v].values()) - med(t["plain"].values())) * 1000
            pd = med(paired(t[v], t["plain"], lambda x, y: x - y)) * 1000
            extra = f" (target ≤ 50 ms: {'met' if d <= 50 else 'NOT met'})" if v == "snaprsync" else ""
            print(f"- {v} − plain: difference of medians {d:.1f} ms, median of per-round differences {pd:.1f} ms{extra}")
    if bench == "latency" and M.get("ssh_true_ms"):
        xs = [float(x) for x in M["ssh_true_ms"].split()]
        print(f"- `ssh -F $SSH_CONFIG bench true` alone: median {med(xs):.0f} ms (min {min(xs):.0f}, max {max(xs):.0f}, {len(xs)} runs)")
    b = log_breakdown(bench)
    if b:
        print(f"- {b}")
    print()

if "protect" in TIMES:
    t = TIMES["protect"]
    nbytes = int(M["protect_bytes"])
    print(f"## protect-args: -s over a local remote shell (no ssh), {M['protect_tree']}\n")
    print("| variant | runs | median s | min s | max s | median MB/s | min MB/s | max MB/s |")
    print("|---|---|---|---|---|---|---|---|")
    for v in ("plain", "snaprsync"):
        xs = list(t[v].values())
        mbs = [nbytes / 1e6 / x for x in xs]
        print(f"| {v} | {len(xs)} | {med(xs):.2f} | {min(xs):.2f} | {max(xs):.2f} | {med(mbs):.0f} | {min(mbs):.0f} | {max(mbs):.0f} |")
    thr = med(t["plain"].values()) / med(t["snaprsync"].values())
    pr = med(paired(t["plain"], t["snaprsync"], lambda p, s: p / s))
    print(f"\nthroughput snaprsync ÷ plain = {thr:.3f} (median of per-round ratios {pr:.3f}; target ≥ 0.97: {'met' if thr >= 0.97 else 'NOT met'})\n")
    print_own_costs("protect", t)

for bench in sorted(b for b in TIMES if b.startswith("incr-")):
    _, cache, cpus = bench.split("-", 2)
    print(f"## {bench}: incremental of {M.get('incr_tree', 'the')} small files, 0.1% changed, {cache} caches, taskset -c {cpus[4:]}\n")
    print(table_seconds(bench, ["plain", "snaprsync", "nopf"], "plain"))
    t = TIMES[bench]
    pf = med(paired(t["nopf"], t["snaprsync"], lambda n, s: n / s))
    print(f"\nsnaprsync ÷ plain = {med(t['snaprsync'].values()) / med(t['plain'].values()):.3f} "
          f"(target ≤ 1.3: {'met' if med(t['snaprsync'].values()) / med(t['plain'].values()) <= 1.3 else 'NOT met'}); "
          f"prefetch off ÷ on, median of per-round ratios: {pf:.3f}\n")

conc = sorted((int(f[len("concurrency-"):-4]), f) for f in os.listdir(out) if re.fullmatch(r"concurrency-\d+\.log", f))
if conc:
    print("## concurrency: runs started at once on one filesystem, snapshot creation time per run\n")
    print("| runs at once | runs | median create ms | min | max | median ÷ one run's | median snapshot ms (the ioctls alone) | ÷ one run's |")
    print("|---|---|---|---|---|---|---|---|")
    alone = alone_snap = None
    for n, f in conc:
        rows = summaries(os.path.join(out, f))
        xs = [int(s["create_ms"]) for s in rows]
        if not xs:
            continue
        alone = alone or med(xs)
        snap = [int(s["snapshot_ms"]) for s in rows if "snapshot_ms" in s]
        snap_cols = "— | —"
        if snap:
            alone_snap = alone_snap or max(med(snap), 1)
            snap_cols = f"{med(snap):.0f} | {med(snap) / alone_snap:.2f}"
        print(f"| {n} | {len(xs)} | {med(xs):.0f} | {min(xs)} | {max(xs)} | {med(xs) / alone:.2f} | {snap_cols} |")
    print()
    commits_path = os.path.join(out, "commits.csv")
    if os.path.exists(commits_path):
        per = defaultdict(list)  # n -> (commits, commit ms) per round
        with open(commits_path) as f:
            for n, _, c0, t0, c1, t1 in csv.reader(f):
                per[int(n)].append((int(c1) - int(c0), int(t1) - int(t0)))
        print("The filesystem's transaction commits in each round (commit_stats), medians over the rounds:\n")
        print("| runs at once | commits per round | commit ms per round | ms per commit |")
        print("|---|---|---|---|")
        for n in sorted(per):
            cs, ts = [c for c, _ in per[n]], [t for _, t in per[n]]
            each = med([t / c for c, t in per[n] if c]) if any(cs) else 0
            print(f"| {n} | {med(cs):.0f} | {med(ts):.0f} | {each:.1f} |")
        print()

nested = defaultdict(dict)  # variant -> n -> (create ms by run, wall s by run)
for f in os.listdir(out):
    m = re.fullmatch(r"nested-(\w+)-(\d+)\.log", f)
    if m:
        creates = [int(s["create_ms"]) for s in summaries(os.path.join(out, f))]
        walls = TIMES["nested"].get(f"{m.group(1)} {m.group(2)}", {})
        nested[m.group(1)][int(m.group(2))] = (creates, walls)
if nested:
    print("## nested: a pull of a tree with N nested subvolumes, snapshot creation per run\n")
    print("| variant | nested subvolumes | runs | median create ms | min | max | median wall s | "
          "create ms added per nested subvolume (vs 0) | wall ms added per nested subvolume (vs 0) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v in sorted(nested, key=lambda v: v != "snaprsync"):
        ns = nested[v]
        for n in sorted(ns):
            creates, walls = ns[n]
            if not creates:
                continue
            per = per_wall = "—"
            if n and 0 in ns and ns[0][0]:
                per = f"{(med(creates) - med(ns[0][0])) / n:.2f}"
                if walls and ns[0][1]:
                    per_wall = f"{(med(walls.values()) - med(ns[0][1].values())) * 1000 / n:.2f}"
            wall = f"{med(walls.values()):.3f}" if walls else "—"
            print(f"| {v} | {n} | {len(creates)} | {med(creates):.0f} | {min(creates)} | {max(creates)} | {wall} | {per} | {per_wall} |")
    print()

def cpu_lines(name):
    """User + system seconds of each run's sending side (/usr/bin/time -f %U,%S)."""
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    xs = []
    for line in open(path):
        m = re.fullmatch(r"([\d.]+),([\d.]+)", line.strip())
        if m:
            xs.append(float(m.group(1)) + float(m.group(2)))
    return xs


def creates_of(name):
    path = os.path.join(out, name)
    return [int(s["create_ms"]) for s in summaries(path)] if os.path.exists(path) else []


def per_round(xs, base):
    """The median of the per-round ratios xs[i] / base[i] (rounds in order)."""
    rs = [x / b for x, b in zip(xs, base) if b]
    return f"{med(rs):.2f}" if rs else "—"


if "foreign" in TIMES:
    t = TIMES["foreign"]
    print("## foreign: other tools' read-only snapshots on the filesystem, a pull of a 5-file source\n")
    print("Ratios against the same build and place with 0 foreign snapshots: of the medians, and the median "
          "of the per-round ratios (run r against run r at 0).\n")
    print("| build | place | foreign snapshots | runs | median create ms | min | max | create ÷ at 0 (medians) | "
          "create ÷ at 0 (per round) | median wall ms | wall ÷ at 0 (per round) | median CPU ms (sending side) | "
          "CPU ÷ at 0 (per round) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for impl in ("snaprsync", "base"):
        for place in ("outside", "inside", "skip"):
            key = f"{impl}-{place}-"
            ns = sorted(int(v.rsplit("-", 1)[1]) for v in t if v.startswith(key))
            if not ns:
                continue
            b0 = key + "0"
            base, bcpu = creates_of(f"foreign-{b0}.log"), cpu_lines(f"foreign-cpu-{b0}.txt")
            bwall = [t[b0][r] for r in sorted(t[b0])] if b0 in t else []
            for n in ns:
                v = f"{key}{n}"
                cs, cpu = creates_of(f"foreign-{v}.log"), cpu_lines(f"foreign-cpu-{v}.txt")
                wall = [t[v][r] for r in sorted(t[v])]
                ratio = f"{med(cs) / med(base):.2f}" if base and cs and med(base) else "—"
                print(f"| {impl} | {place} | {n} | {len(cs)} | {med(cs):.0f} | {min(cs)} | {max(cs)} | {ratio} | "
                      f"{per_round(cs, base)} | {med(wall) * 1000:.0f} | {per_round(wall, bwall)} | "
                      f"{med(cpu) * 1000:.0f} | {per_round(cpu, bcpu)} |")
    print()
    floors = {}
    for name in os.listdir(out):
        if name.startswith("foreign-kernel-") and name.endswith(".csv"):
            with open(os.path.join(out, name)) as f:
                rows = dict(csv.reader(f))
            floors[int(name[len("foreign-kernel-"):-4])] = [float(rows[r]) for r in sorted(rows, key=int)]
    if floors:
        print("The kernel's read-only snapshot ioctl alone (bench/snap_ioctl.py), of the \"outside\" source, in the "
              "same rounds: what any tool pays for one snapshot on that filesystem.\n")
        print("| foreign snapshots | runs | median ioctl ms | min | max | ÷ at 0 (medians) | ÷ at 0 (per round) |")
        print("|---|---|---|---|---|---|---|")
        z = floors.get(0, [])
        for n in sorted(floors):
            xs = floors[n]
            ratio = f"{med(xs) / med(z):.2f}" if z and med(z) else "—"
            print(f"| {n} | {len(xs)} | {med(xs):.2f} | {min(xs):.2f} | {max(xs):.2f} | {ratio} | {per_round(xs, z)} |")
        print()
        print("snaprsync's own part of the create time: create ms (whole milliseconds, so ± 0.5) less the ioctl "
              "alone, round by round; the median.\n")
        print("| place | " + " | ".join(f"at {n}" for n in sorted(floors)) + " |")
        print("|---|" + "---|" * len(floors))
        for place in ("outside", "skip"):
            row = []
            for n in sorted(floors):
                cs = creates_of(f"foreign-snaprsync-{place}-{n}.log")
                diffs = [c - k for c, k in zip(cs, floors[n])]
                row.append(f"{med(diffs):.2f}" if diffs else "—")
            print(f"| {place} | " + " | ".join(row) + " |")
        print()

for kind in ("zfs", "lvm"):
    path = os.path.join(out, f"guest-{kind}.csv")
    if not os.path.exists(path):
        continue
    g = defaultdict(lambda: defaultdict(dict))  # build -> count -> round -> (create ms, wall s, cpu s)
    with open(path) as f:
        for _, build, n, r, c, w, cpu in csv.reader(f):
            g[build][int(n)][int(r)] = (int(c), float(w), float(cpu))
    what = "other tools' snapshots on the machine" if kind == "zfs" else "other LVs in the VG"
    print(f"## foreign-{kind}: {what}, in the QEMU guest (software emulation), a copy of 5 files\n")
    print("Ratios against the same build at 0: of the medians, and the median of the per-round ratios.\n")
    print("| build | count | runs | median create ms | min | max | create ÷ at 0 (medians) | create ÷ at 0 (per round) | "
          "median wall ms | wall ÷ at 0 (per round) | median CPU ms | CPU ÷ at 0 (per round) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for build in sorted(g, key=lambda b: b != "snaprsync"):
        zero = g[build].get(0, {})
        for n in sorted(g[build]):
            rs = g[build][n]
            col = lambda i, d: [d[r][i] for r in sorted(d)]
            pr = lambda i: per_round([rs[r][i] for r in sorted(rs) if r in zero], [zero[r][i] for r in sorted(rs) if r in zero])
            cs = col(0, rs)
            ratio = f"{med(cs) / med(col(0, zero)):.2f}" if zero and med(col(0, zero)) else "—"
            print(f"| {build} | {n} | {len(cs)} | {med(cs):.0f} | {min(cs)} | {max(cs)} | {ratio} | {pr(0)} | "
                  f"{med(col(1, rs)) * 1000:.0f} | {pr(1)} | {med(col(2, rs)) * 1000:.0f} | {pr(2)} |")
    print()
    if "lvcreate" in g:
        print("Each build's own part of the create time: its create ms less the `lvcreate` alone of the same count "
              "and round; the median.\n")
        print("| build | " + " | ".join(f"at {n}" for n in sorted(g["lvcreate"])) + " |")
        print("|---|" + "---|" * len(g["lvcreate"]))
        for build in sorted((b for b in g if b != "lvcreate"), key=lambda b: b != "snaprsync"):
            row = []
            for n in sorted(g["lvcreate"]):
                fl, rs = g["lvcreate"][n], g[build].get(n, {})
                diffs = [rs[r][0] - fl[r][0] for r in sorted(rs) if r in fl]
                row.append(f"{med(diffs):.0f}" if diffs else "—")
            print(f"| {build} | " + " | ".join(row) + " |")
        print()

if "sources" in TIMES:
    t = TIMES["sources"]
    print("## sources: one run with N sources on one subvolume (5 files each)\n")
    print("| sources | runs | median create ms | create ms per source | median wall ms | wall ms per source | median CPU ms | CPU ms per source |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sorted(int(v) for v in t):
        cs, cpu, wall = creates_of(f"sources-{n}.log"), cpu_lines(f"sources-cpu-{n}.txt"), list(t[str(n)].values())
        print(f"| {n} | {len(cs)} | {med(cs):.0f} | {med(cs) / n:.2f} | {med(wall) * 1000:.0f} | {med(wall) * 1000 / n:.2f} | "
              f"{med(cpu) * 1000:.0f} | {med(cpu) * 1000 / n:.2f} |")
    print()
if "series" in TIMES:
    walls = [TIMES["series"]["run"][i] for i in sorted(TIMES["series"]["run"])]
    cs, cpu = creates_of("series.log"), cpu_lines("series-cpu.txt")
    half = len(walls) // 2
    print(f"## series: {len(walls)} runs in a row, one source each (rsnapshot's backup points)\n")
    print("| runs | median create ms | first half | second half | median wall ms | first half | second half | median CPU ms |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {len(walls)} | {med(cs):.0f} | {med(cs[:half]):.0f} | {med(cs[half:]):.0f} | {med(walls) * 1000:.0f} | "
          f"{med(walls[:half]) * 1000:.0f} | {med(walls[half:]) * 1000:.0f} | {med(cpu) * 1000:.0f} |")
    print()

rss_path = os.path.join(out, "rss.csv")
if os.path.exists(rss_path):
    r = defaultdict(list)
    with open(rss_path) as f:
        for measure, run, kb in csv.reader(f):
            r[measure].append(int(kb))
    print("## peak RSS\n")
    print("| measurement | runs | median kB | min kB | max kB |")
    print("|---|---|---|---|---|")
    for k, xs in r.items():
        print(f"| {k} | {len(xs)} | {med(xs):.0f} | {min(xs)} | {max(xs)} |")
    own = [x for k, xs in r.items() if k.startswith("snaprsync VmHWM") for x in xs]
    if own:
        print(f"\nsnaprsync's own peak: max {max(own)} kB = {max(own) / 1024:.2f} MiB "
              f"(target ≤ 10 MB: {'met' if max(own) <= 10000 else 'NOT met'})\n")

if "startup" in TIMES:
    print("## startup: --version (snaprsync execs rsync)\n")
    print(table_seconds("startup", ["rsync", "snaprsync"], "rsync", unit="ms", scale=1000, fmt="{:.2f}"))
    t = TIMES["startup"]
    d = (med(t["snaprsync"].values()) - med(t["rsync"].values())) * 1000
    print(f"\nsnaprsync − rsync: {d:.2f} ms\n")

if "coldread" in TIMES:
    print("## coldread: cold read (tar | cat) of the core tree, no rsync\n")
    print(table_seconds("coldread", ["live", "snapshot"], "live"))
    d = TIMES["coldread-delete"]
    print("\n| btrfs subvolume delete | runs | median ms | min ms | max ms |\n|---|---|---|---|---|")
    for v in ("after-read", "unread"):
        xs = list(d[v].values())
        if xs:
            print(f"| {v} | {len(xs)} | {med(xs) * 1000:.0f} | {min(xs) * 1000:.0f} | {max(xs) * 1000:.0f} |")
    print()

errs = os.path.join(out, "stderr.log")
if os.path.exists(errs):
    lines = [l.rstrip("\n") for l in open(errs) if not l.startswith("== ")]
    if lines:
        print("## stderr of the runs (other than markers)\n\n```")
        for l in sorted(set(lines)):
            print(f"{lines.count(l):4d}x {l}")
        print("```\n")
sweeps = []
for f in sorted(os.listdir(out)):
    if f.endswith("-snaprsync.log"):
        sweeps += [l.rstrip("\n") for l in open(os.path.join(out, f)) if "sweep:" in l]
if sweeps:
    print("## sweeps done by the measured snaprsync runs\n\n```")
    print("\n".join(sweeps))
    print("```\n")
print(f"load average at start {M.get('load_start')}, at end {M.get('load_end')}\n")

cmds = os.path.join(out, "commands.txt")
if os.path.exists(cmds):
    print("## exact commands\n\n```sh")
    print(open(cmds).read().rstrip())
    print("```")
