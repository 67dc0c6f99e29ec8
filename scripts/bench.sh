#!/usr/bin/env bash
# Benchmarks snaprsync against plain rsync (see BENCHMARKS.md for results).
#
#   sudo scripts/bench.sh            # everything, defaults as below
#   BENCH_ONLY="latency startup" scripts/bench.sh
#
# Builds a loop-mounted btrfs filesystem and a private sshd on 127.0.0.1 in a
# temp dir, runs the variants of each benchmark interleaved round by round
# (in a balanced order: each variant in every position and after every other
# equally often), and prints Markdown tables. Raw results stay in $BENCH_OUT
# (default: a new temp dir, printed at the end). Needs root.
#
# Benchmarks (BENCH_ONLY selects):
#   core     full backup of a tree over ssh: plain rsync, snaprsync, the
#            naive snapshot wrapper (scripts/bench/naive-rsync.sh) and plain
#            rsync reading an older snapshot (snapread); fresh destination,
#            page cache dropped before every run. BENCH_CORE_VARIANTS also
#            takes the diagnostic variants fresh and freshns (see below)
#   latency  the same over ssh for a tiny tree: added time per run
#   latency-local  the same over a local remote shell (no ssh login cost)
#   rss      snaprsync's own peak RSS (VmHWM of its process), also with -s
#   protect  a large transfer with -s (--protect-args) over a local remote
#            shell (no ssh cipher cost), page cache dropped before every run
#   startup  `--version` (snaprsync execs rsync) against rsync's own
#   coldread no rsync: a cold read (tar) of the core tree, live against a
#            snapshot, and how long deleting the snapshot takes after that
#            read and without it (the cause of most of snaprsync's fixed cost)
#   incr     the nightly incremental: a tree of BENCH_INCR_FILES small files
#            (1-4 KiB, 100 per directory) already copied, 0.1% of them changed
#            before each run; plain rsync, snaprsync with prefetch (the
#            default) and with prefetch = "off", over a local remote shell,
#            warm caches (and cold: BENCH_INCR_CACHE="warm cold"), under each
#            CPU set of BENCH_INCR_CPUS (taskset -c; "0" is one core)
#   concurrency  N snaprsync runs started at once on one filesystem (each N of
#            BENCH_CONC, e.g. "1 8 16"), each pulling the tiny tree over a local
#            remote shell; each run's snapshot creation time from its log
#   foreign  other tools' snapshots on the filesystem (each N of BENCH_FOREIGN,
#            e.g. "0 1000 10000"): a filesystem of its own per N holds N
#            read-only snapshots Snapper-style (.snapshots/K/snapshot) outside
#            the source ("outside"), and N inside another source, which the
#            pull excludes (--exclude=/.snapshots/, "inside"; and "skip", the
#            same with btrfs_skip_nested = [".snapshots"]); snapshot
#            creation time from the log, wall time, and the CPU time of the
#            sending side (snaprsync and its rsync), and the kernel's snapshot
#            ioctl alone (bench/snap_ioctl.py, "kernel"); with BENCH_BASE_REV that
#            build side by side (up to BENCH_FOREIGN_BASE_MAX snapshots)
#   sources  one run with each N of BENCH_SOURCES sources (e.g. "1 10 100")
#            on one subvolume, and BENCH_SERIES runs in a row of one source
#            each (rsnapshot's backup points): creation time per run and per
#            source, wall and CPU time
#   foreign-zfs  the same on ZFS in the QEMU guest lab (scripts/guest.sh,
#            GUEST_CACHE): a run's create time with each N of
#            BENCH_FOREIGN_ZFS other tools' snapshots on the machine (made
#            once, 100 per `zfs snapshot -r`, kept in BENCH_GUEST_IMAGES), with
#            BENCH_BASE_REV's build alternating (scripts/bench/guest-foreign.sh)
#   foreign-lvm  the same on LVM: N of BENCH_FOREIGN_LVM other thin LVs in the
#            source's VG, each count a VG (and disk) of its own, all there at
#            once, the counts and builds interleaved round by round
#   nested   a pull of a tree holding N nested subvolumes (each N of
#            BENCH_NESTED, e.g. "0 10 100 500"), over a local remote shell:
#            snapshot creation time from snaprsync's log, and each run's wall
#            time; with BENCH_BASE_REV, the build of that commit runs side by
#            side ("base"), interleaved
#
# BENCH_IMAGE_DIR puts the btrfs image elsewhere: on /dev/shm the loop device
# reads RAM, which takes the disk's run-to-run noise out of the cold runs.
# BENCH_TRACE=1 records every exec and exit during core (perf) and splits each
# core run into the time before the server's rsync starts, rsync's own run,
# and the time after it ends.
set -euo pipefail

: "${BENCH_ONLY:=core latency latency-local rss protect startup coldread}"
: "${BENCH_FILES:=20000}"        # core tree: number of files
: "${BENCH_TREE_MB:=500}"        # core tree: total MiB
: "${BENCH_RUNS:=20}"            # core, coldread: timed runs per variant
: "${BENCH_CORE_VARIANTS:=plain snaprsync naive snapread}" # core: which variants
: "${BENCH_LAT_FILES:=5}"        # latency tree: number of files
: "${BENCH_LAT_RUNS:=30}"        # latency: timed runs per variant
: "${BENCH_RSS_RUNS:=3}"         # rss: runs per measurement
: "${BENCH_BIG_MB:=2048}"        # protect: total MiB
: "${BENCH_BIG_FILES:=8}"        # protect: number of (equal) files
: "${BENCH_BIG_RUNS:=10}"        # protect: timed runs per variant
: "${BENCH_STARTUP_RUNS:=50}"    # startup: runs per variant
: "${BENCH_INCR_FILES:=200000}"  # incr tree: number of files
: "${BENCH_INCR_RUNS:=12}"       # incr: timed runs per variant
: "${BENCH_INCR_CACHE:=warm}"    # incr: warm and/or cold
: "${BENCH_INCR_CPUS:=0-1 0}"    # incr: CPU sets (taskset -c), one series each
: "${BENCH_CONC:=1 8 16}"        # concurrency: how many runs at once, one series each
: "${BENCH_CONC_RUNS:=5}"        # concurrency: rounds of each series
: "${BENCH_NESTED:=0 10 100 500}" # nested: subvolumes below the source, one series each
: "${BENCH_NESTED_RUNS:=7}"      # nested: timed runs per series and variant
: "${BENCH_BASE_REV:=}"          # nested: also measure the build of this commit
: "${BENCH_FOREIGN:=0 1000 10000}" # foreign: foreign snapshots on the filesystem, one series each
: "${BENCH_FOREIGN_RUNS:=9}"     # foreign: timed runs per series and place
: "${BENCH_FOREIGN_BASE_MAX:=1000}" # foreign: the base build runs up to this many
: "${BENCH_FOREIGN_INSIDE_MAX:=}" # foreign: "inside" made and timed only up to this many (default: every count)
: "${BENCH_FOREIGN_ZFS:=0 1000 10000}" # foreign-zfs: foreign snapshots in the guest, one step each
: "${BENCH_FOREIGN_LVM:=0 200}"   # foreign-lvm: other LVs in the VG, one step each
: "${BENCH_GUEST_RUNS:=5}"        # foreign-zfs, foreign-lvm: timed rounds per count
: "${BENCH_GUEST_TIMEOUT:=3600}"  # foreign-zfs, foreign-lvm: seconds before the guest is killed
: "${BENCH_GUEST_MEASURED:=}"     # foreign-zfs, foreign-lvm: the counts timed (default: all; the others only made)
: "${BENCH_GUEST_BASE_MAX:=}"     # foreign-zfs, foreign-lvm: the base build runs up to this count (default: all)
: "${BENCH_GUEST_IMAGES:=}"       # where the ZFS pools of foreign snapshots are kept (default: target/bench-guest)
: "${BENCH_SOURCES:=1 10 100}"   # sources: sources in one run, one series each
: "${BENCH_SOURCES_RUNS:=9}"     # sources: timed runs per series
: "${BENCH_SERIES:=50}"          # sources: runs in a row, one source each
: "${BENCH_OUT:=}"               # where raw results go
: "${SNAPRSYNC:=}"               # binary to measure (default: cargo build --release)
: "${SNAPRSYNC_REV:=}"           # or build this commit (git archive, own target dir)
: "${BENCH_RUN_TIMEOUT:=600}"    # seconds before one run is called hung and ended
: "${BENCH_IMAGE_DIR:=}"         # directory of the btrfs image (default: the scratch dir)
: "${BENCH_TRACE:=0}"            # 1: trace the phases of every core run (needs perf)

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $(date +%T) $*" >&2; }
want() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }

[ "$(id -u)" = 0 ] || die "run as root (btrfs snapshots, mounts, drop_caches)"
for t in rsync ssh ssh-keygen /usr/sbin/sshd btrfs mkfs.btrfs losetup python3 /usr/bin/time; do
  command -v "$t" >/dev/null || die "$t not found"
done
[ "$BENCH_TRACE" = 0 ] || command -v perf >/dev/null || die "BENCH_TRACE needs perf (apt install linux-perf)"

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
version="built from the working tree"
if [ -n "$SNAPRSYNC" ]; then
  version="given binary"
elif [ -n "$SNAPRSYNC_REV" ]; then
  rev=$(cd "$repo" && git rev-parse --short "$SNAPRSYNC_REV")
  log "cargo build --release of $rev"
  mkdir "$W/src"
  (cd "$repo" && git archive "$rev") | tar -x -C "$W/src"
  (cd "$W/src" && CARGO_TARGET_DIR=$W/target cargo build --release --locked --quiet)
  SNAPRSYNC=$W/target/release/snaprsync
  version="commit $rev"
fi
BASE=
if [ -n "$BENCH_BASE_REV" ]; then
  base_rev=$(cd "$repo" && git rev-parse --short "$BENCH_BASE_REV")
  log "cargo build --release of $base_rev (base)"
  mkdir "$W/base-src"
  (cd "$repo" && git archive "$base_rev") | tar -x -C "$W/base-src"
  (cd "$W/base-src" && CARGO_TARGET_DIR=$W/base-target cargo build --release --locked --quiet --bin snaprsync)
  BASE=$W/base-target/release/snaprsync
fi
# testbed (the tests' btrfs image and sshd) always comes from the working tree.
pkgs=(-p testbed)
[ -n "$SNAPRSYNC" ] || pkgs+=(-p snaprsync)
log "cargo build --release ${pkgs[*]}"
(cd "$repo" && cargo build --release --quiet "${pkgs[@]}" --bins)
target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
[ -n "$BENCH_GUEST_IMAGES" ] || BENCH_GUEST_IMAGES=$target/bench-guest
if [ -z "$SNAPRSYNC" ]; then
  SNAPRSYNC=$target/release/snaprsync
  version="working tree $(cd "$repo" && git describe --always --dirty)"
fi
[ -x "$SNAPRSYNC" ] || die "no snaprsync binary at $SNAPRSYNC"

OUT=${BENCH_OUT:-$(mktemp -d)}
# Results are appended: an old run's files would mix into this run's tables.
[ -z "$(ls -A "$OUT" 2>/dev/null)" ] || die "BENCH_OUT=$OUT is not empty"
mkdir -p "$OUT"
MNT=
DST=$W/dst
BIN=$W/bin
TESTBED=$BIN/testbed
S=$W/ssh
IMGDIR=$W/btrfs
[ -z "$BENCH_IMAGE_DIR" ] || IMGDIR=$(mktemp -d -p "$BENCH_IMAGE_DIR" srs-bench.XXXXXX)
TRACER=

cleanup() {
  set +e
  # A run ended early (a hang, ^C): let its snaprsync remove what it made first.
  for _ in $(seq 50); do
    pgrep -f "^$BIN/snaprsync" >/dev/null || break
    sleep 0.2
  done
  if [ -f "$S/sshd.pid" ]; then
    kill "$(cat "$S/sshd.pid")" 2>/dev/null
  fi
  mountpoint -q "$DST" && umount "$DST"
  [ -n "$TRACER" ] && kill -INT "$TRACER" 2>/dev/null
  local keep=0 d
  for d in "$W"/foreign-*; do
    [ -d "$d" ] || continue
    "$TESTBED" btrfs-remove "$d" || keep=1
  done
  # Whatever is still mounted stays, rather than be deleted through the mount.
  if [ "$keep" = 0 ] && { [ ! -d "$IMGDIR" ] || "$TESTBED" btrfs-remove "$IMGDIR"; }; then
    [ -z "$BENCH_IMAGE_DIR" ] || rm -rf "$IMGDIR"
    rm -rf "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A private copy of everything executed, so a rebuild during the run changes nothing.
mkdir -p "$BIN" "$S" "$IMGDIR" "$DST"
cp "$SNAPRSYNC" "$BIN/snaprsync"
[ -z "$BASE" ] || cp "$BASE" "$BIN/snaprsync-base"
cp "$target/release/testbed" "$TESTBED"
cp "$here/bench/naive-rsync.sh" "$here/bench/local-rsh" "$BIN/"
SNAP=$BIN/snaprsync
NAIVE=$BIN/naive-rsync.sh
LRSH=$BIN/local-rsh

# ---------------------------------------------------------------- machine facts
{
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "machine=$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, kernel $(uname -r), btrfs-progs $(btrfs --version | awk '{print $2}')"
  echo "rsync=$(rsync --version | head -1 | sed 's/  */ /g')"
  echo "ssh=$(ssh -V 2>&1)"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "snaprsync=$version, sha256 $(sha256sum "$SNAP" | cut -c1-16)"
  [ -z "$BASE" ] || echo "base=commit $base_rev, sha256 $(sha256sum "$BIN/snaprsync-base" | cut -c1-16)"
  env_used=""
  for v in BENCH_ONLY BENCH_FILES BENCH_TREE_MB BENCH_RUNS BENCH_LAT_FILES BENCH_LAT_RUNS BENCH_RSS_RUNS BENCH_BIG_MB BENCH_BIG_FILES BENCH_BIG_RUNS BENCH_STARTUP_RUNS BENCH_INCR_FILES BENCH_INCR_RUNS BENCH_INCR_CACHE BENCH_INCR_CPUS BENCH_CONC BENCH_CONC_RUNS BENCH_NESTED BENCH_NESTED_RUNS BENCH_FOREIGN BENCH_FOREIGN_RUNS BENCH_FOREIGN_BASE_MAX BENCH_FOREIGN_INSIDE_MAX BENCH_FOREIGN_ZFS BENCH_FOREIGN_LVM BENCH_GUEST_RUNS BENCH_GUEST_MEASURED BENCH_GUEST_BASE_MAX BENCH_SOURCES BENCH_SOURCES_RUNS BENCH_SERIES; do
    env_used+="$v=\"${!v}\" "
  done
  [ "$BENCH_CORE_VARIANTS" = "plain snaprsync naive snapread" ] || env_used+="BENCH_CORE_VARIANTS=\"$BENCH_CORE_VARIANTS\" "
  [ -z "$BENCH_IMAGE_DIR" ] || env_used+="BENCH_IMAGE_DIR=$BENCH_IMAGE_DIR "
  [ "$BENCH_TRACE" = 0 ] || env_used+="BENCH_TRACE=$BENCH_TRACE "
  [ -n "$SNAPRSYNC_REV" ] && env_used+="SNAPRSYNC_REV=$rev "
  [ -n "$BENCH_BASE_REV" ] && env_used+="BENCH_BASE_REV=$base_rev "
  echo "reproduce=sudo ${env_used}scripts/bench.sh"
} >"$OUT/meta.env"
: >"$OUT/times.csv"
: >"$OUT/commands.txt"

# ---------------------------------------------------------------- btrfs source
need_big=0; want protect && need_big=1
incr_mb=0; want incr && incr_mb=$(( BENCH_INCR_FILES * 6 / 1024 ))
img_mb=$(( (BENCH_TREE_MB + need_big * BENCH_BIG_MB + incr_mb) * 13 / 10 + 1024 ))
log "btrfs image of $img_mb MiB"
MNT=$("$TESTBED" btrfs-image "$img_mb" "$IMGDIR")
# The destination is a tmpfs: only the sending side's cost is compared.
dst_mb=$(( need_big * BENCH_BIG_MB > BENCH_TREE_MB ? BENCH_BIG_MB : BENCH_TREE_MB ))
dst_mb=$(( incr_mb > dst_mb ? incr_mb : dst_mb ))
mount -t tmpfs -o size=$(( dst_mb + 512 ))m,nr_inodes=0 bench-dst "$DST"

if want core || want rss || want coldread; then
  log "tree: $BENCH_FILES files, $BENCH_TREE_MB MiB"
  python3 "$here/bench/mktree.py" "$MNT/data" "$BENCH_FILES" "$BENCH_TREE_MB" >&2
fi
if want latency || want latency-local || want concurrency; then
  mkdir -p "$MNT/tiny"
  for i in $(seq "$BENCH_LAT_FILES"); do head -c 4096 /dev/urandom >"$MNT/tiny/f$i"; done
fi
if want incr; then
  log "incr tree: $BENCH_INCR_FILES files"
  python3 "$here/bench/mktree.py" "$MNT/incr" "$BENCH_INCR_FILES" 0 small >&2
fi
if want nested; then
  for n in $BENCH_NESTED; do
    log "nested tree: $n subvolumes"
    mkdir -p "$MNT/nested-$n"
    echo top >"$MNT/nested-$n/top"
    for i in $(seq "$n"); do
      btrfs -q subvolume create "$MNT/nested-$n/s$i" >/dev/null
      echo "$i" >"$MNT/nested-$n/s$i/f"
    done
  done
fi
if want sources; then
  log "sources tree: $BENCH_SERIES directories of 5 files"
  n_dirs=$BENCH_SERIES
  for n in $BENCH_SOURCES; do [ "$n" -le "$n_dirs" ] || n_dirs=$n; done
  for i in $(seq "$n_dirs"); do
    mkdir -p "$MNT/many/d$i"
    for f in 1 2 3 4 5; do head -c 4096 /dev/urandom >"$MNT/many/d$i/f$f"; done
  done
fi
declare -A FOREIGN_MNT=()
if want foreign; then
  for n in $BENCH_FOREIGN; do
    log "foreign: a filesystem with 2 x $n read-only snapshots"
    mkdir -p "$W/foreign-$n"
    FOREIGN_MNT[$n]=$("$TESTBED" btrfs-image $(( 1024 + n / 8 )) "$W/foreign-$n")
    fm=${FOREIGN_MNT[$n]}
    for place in outside inside; do
      btrfs -q subvolume create "$fm/$place" >/dev/null
      for f in 1 2 3 4 5; do head -c 4096 /dev/urandom >"$fm/$place/f$f"; done
    done
    # Snapper's layout: a .snapshots subvolume of numbered holders, one
    # read-only snapshot in each; at the filesystem's top for "outside",
    # inside the source for "inside".
    btrfs -q subvolume create "$fm/.snapshots" >/dev/null
    btrfs -q subvolume create "$fm/inside/.snapshots" >/dev/null
    # Several at once: snapshots made in directories of their own share commits.
    inside=yes
    [ -z "$BENCH_FOREIGN_INSIDE_MAX" ] || [ "$n" -le "$BENCH_FOREIGN_INSIDE_MAX" ] || inside=no
    seq "$n" | xargs -r -P 8 -I{} sh -c 'mkdir "$1/.snapshots/$2" &&
      btrfs -q subvolume snapshot -r "$1/outside" "$1/.snapshots/$2/snapshot" >/dev/null &&
      if [ "$3" = yes ]; then mkdir "$1/inside/.snapshots/$2" &&
        btrfs -q subvolume snapshot -r "$1/inside" "$1/inside/.snapshots/$2/snapshot" >/dev/null; fi' sh "$fm" {} "$inside" ||
      die "foreign: making the $n snapshots failed"
    btrfs filesystem sync "$fm"
    echo "foreign_$n=$(btrfs subvolume list "$fm" | wc -l) subvolumes" >>"$OUT/meta.env"
  done
fi
if want protect; then
  log "big tree: $BENCH_BIG_FILES files, $BENCH_BIG_MB MiB"
  python3 "$here/bench/mktree.py" "$MNT/big" "$BENCH_BIG_FILES" "$BENCH_BIG_MB" big >&2
fi
sync
echo "core_tree=$BENCH_FILES files, $BENCH_TREE_MB MiB ($(du -s --apparent-size -B1M "$MNT/data" 2>/dev/null | cut -f1) MiB apparent), log-normal sizes" >>"$OUT/meta.env"
echo "lat_tree=$BENCH_LAT_FILES files of 4 KiB" >>"$OUT/meta.env"
echo "incr_tree=$BENCH_INCR_FILES" >>"$OUT/meta.env"
echo "protect_tree=$BENCH_BIG_FILES files, $BENCH_BIG_MB MiB" >>"$OUT/meta.env"
echo "protect_bytes=$((BENCH_BIG_MB * 1024 * 1024))" >>"$OUT/meta.env"
echo "image=$(df --output=fstype "$IMGDIR" | tail -1) ($([ -z "$BENCH_IMAGE_DIR" ] && echo "the scratch dir" || echo "$BENCH_IMAGE_DIR"))" >>"$OUT/meta.env"

# ---------------------------------------------------------------- sshd
SSH_CONFIG=
if want core || want latency || want rss; then
  SSH_CONFIG=$("$TESTBED" sshd "$S" bench)
  log "sshd on 127.0.0.1 up"
fi
RSH="ssh -F $SSH_CONFIG"

# ---------------------------------------------------------------- helpers
# The command as it can be pasted into a shell, with this run's temp paths
# named: $SSH_CONFIG, $SNAPRSYNC (the binary), $MNT (the btrfs mount), $DST,
# $OUT (results), $W (scratch).
show() {
  local a e out=()
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      e=$a
    else
      e=${a//\\/\\\\}; e=${e//\"/\\\"}; e=${e//\$/\\\$}; e=${e//\`/\\\`}
      e="\"$e\""
    fi
    out+=("$e")
  done
  local q="${out[*]}"
  q=${q//"$SSH_CONFIG"/'$SSH_CONFIG'}
  q=${q//"$BIN/snaprsync"/'$SNAPRSYNC'}
  q=${q//"$BIN/naive-rsync.sh"/scripts/bench/naive-rsync.sh}
  q=${q//"$BIN/local-rsh"/scripts/bench/local-rsh}
  q=${q//"$OUT"/'$OUT'}
  q=${q//"$MNT"/'$MNT'}
  q=${q//"$DST"/'$DST'}
  q=${q//"$W"/'$W'}
  echo "$q"
}
record_cmd() { # bench variant cmd...
  local b=$1 v=$2; shift 2
  printf '# %s / %s\n%s\n' "$b" "$v" "$(show "$@")" >>"$OUT/commands.txt"
}
fresh_dst() { find "$DST" -mindepth 1 -delete; }
# snaprsync hands the removal of its snapshots to a detached process after
# rsync's status has gone back (snapshot_removal = "background"); on a real
# machine that work overlaps nothing of the backup. Here the next run would
# start while it still runs (it takes ~160 ms after a 500 MiB read): wait for
# it, so that it lands in no variant's time.
wait_removers() {
  local n=0
  while pgrep -f "^$BIN/snaprsync .*__remove-run" >/dev/null; do
    n=$((n + 1))
    [ "$n" -lt 600 ] || die "a snaprsync __remove-run still runs after 30 s"
    sleep 0.05
  done
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# The kernel cleans up deleted subvolumes after the delete has returned; that
# work would land in the next run's commits. A commit wakes the cleaner, and
# `subvolume sync` waits for it (without the commit, up to 30 s).
settle_fs() { btrfs filesystem sync "$MNT"; btrfs subvolume sync "$MNT" >/dev/null; }
# "commits,total ms" of the bench filesystem's transaction commits so far
# (/sys/fs/btrfs/<fsid>/commit_stats, Linux 6.0 and later; else "0,0").
commit_stats() {
  local f
  f=/sys/fs/btrfs/$(btrfs filesystem show "$MNT" | sed -n 's/.*uuid: \([0-9a-f-]*\).*/\1/p')/commit_stats
  if [ -r "$f" ]; then
    awk '$1 == "commits" {c = $2} $1 == "total_commit_ms" {t = $2} END {print c "," t}' "$f"
  else
    echo "0,0"
  fi
}
# Latency runs: warm caches, but nothing pending on the filesystem from the previous run.
prep_latency() { wait_removers; fresh_dst; sync; }

# timed BENCH VARIANT RUN CMD...: one run, appended to times.csv.
timed() {
  local b=$1 v=$2 r=$3 t0 t1 rc=0; shift 3
  echo "== $b $v run $r" >>"$OUT/stderr.log"
  t0=$EPOCHREALTIME
  timeout "$BENCH_RUN_TIMEOUT" "$@" </dev/null >>"$OUT/stdout.log" 2>>"$OUT/stderr.log" || rc=$?
  t1=$EPOCHREALTIME
  echo "$b,$v,$r,$t0,$t1,$rc" >>"$OUT/times.csv"
  [ "$rc" = 0 ] || log "WARNING: $b $v run $r exited $rc (see $OUT/stderr.log)"
}

# rounds BENCH RUNS PREP VARIANT...: every round runs each variant once, in
# the order of the round's row of a balanced Latin square (bench/order.py);
# PREP runs before every run. The command of variant V is the array cmd_V.
rounds() {
  local b=$1 n=$2 prep=$3; shift 3
  local vs=("$@") k=${#@} r i v
  for v in "${vs[@]}"; do
    local -n c="cmd_$v"
    record_cmd "$b" "$v" "${c[@]}"
    unset -n c
  done
  for r in $(seq 0 "$n"); do
    # A balanced Latin square: each variant in every position and after every
    # other equally often, so that an after-effect of one run on the next
    # lands on no variant more than on another.
    local order=()
    mapfile -t order < <(python3 "$here/bench/order.py" "$r" "${vs[@]}")
    for i in $(seq 0 $((k - 1))); do
      v=${order[$i]}
      local -n c="cmd_$v"
      $prep
      if [ "$r" = 0 ]; then
        echo "== $b $v warm-up" >>"$OUT/stderr.log"
        timeout "$BENCH_RUN_TIMEOUT" "${c[@]}" </dev/null >>"$OUT/stdout.log" 2>>"$OUT/stderr.log" || die "$b $v warm-up failed (see $OUT/stderr.log)"
        check_"$b" "$v"
      else
        timed "$b" "$v" "$r" "${c[@]}"
      fi
      unset -n c
    done
    [ "$r" = 0 ] && log "$b: warm-up done" || log "$b: round $r of $n done"
  done
}

# What the warm-up run must have copied.
check_tree() { # dir files
  local got
  got=$(find "$DST" -type f | wc -l)
  [ "$got" = "$2" ] || die "$1: $got files arrived, expected $2"
}
check_core() { check_tree "core $1" "$BENCH_FILES"; }
check_latency() { check_tree "latency $1" "$BENCH_LAT_FILES"; }
check_protect() { check_tree "protect $1" "$BENCH_BIG_FILES"; }

# ---------------------------------------------------------------- core
if want core; then
  cmd_plain=(rsync -a -e "$RSH" --rsync-path=rsync "bench:$MNT/data/" "$DST/")
  cmd_snaprsync=(rsync -a -e "$RSH" --rsync-path="$SNAP --snap-log-file=$OUT/core-snaprsync.log" "bench:$MNT/data/" "$DST/")
  cmd_naive=(rsync -a -e "$RSH" --rsync-path="$NAIVE $MNT" "bench:$MNT/data/" "$DST/")
  # Plain rsync reading a snapshot made (untimed) before the run: the cost of
  # reading through a snapshot, without anything of snaprsync's.
  cmd_snapread=(rsync -a -e "$RSH" --rsync-path=rsync "bench:$MNT/.bench-read/data/" "$DST/")
  # Diagnostic variants, not run by default: plain rsync reading a snapshot
  # made at the start of the timed run, by the snapshot's path (fresh), and
  # under the original path through a private namespace and a bind mount, as
  # snaprsync shows it (freshns); the snapshot is deleted in the next prep.
  cmd_fresh=(rsync -a -e "$RSH" --rsync-path="btrfs subvolume snapshot -r $MNT $MNT/.bench-fresh >/dev/null && rsync" "bench:$MNT/.bench-fresh/data/" "$DST/")
  cmd_freshns=(rsync -a -e "$RSH" --rsync-path="unshare -m --propagation private sh -c 'btrfs subvolume snapshot -r $MNT $MNT/.bench-fresh >/dev/null && mount --bind $MNT/.bench-fresh/data $MNT/data && exec rsync \"\$@\"' sh" "bench:$MNT/data/" "$DST/")
  prep_core() {
    wait_removers
    fresh_dst
    # Every variant's prep makes the same fresh snapshot, so the deletion of
    # the last one (and btrfs's cleaner) weighs on every variant alike.
    if [ -d "$MNT/.bench-fresh" ]; then btrfs subvolume delete "$MNT/.bench-fresh" >/dev/null; fi
    if [ -d "$MNT/.bench-read" ]; then btrfs subvolume delete "$MNT/.bench-read" >/dev/null; fi
    btrfs subvolume snapshot -r "$MNT" "$MNT/.bench-read" >/dev/null
    # Wait for btrfs to finish dropping deleted snapshots (the last run's, the
    # naive wrapper's, .bench-read's): that background work is woken by the
    # next transaction commit, which is the next snapshot creation, and would
    # otherwise land inside whichever run snapshots next.
    # (A commit wakes the cleaner now rather than at the next 30 s commit.)
    btrfs filesystem sync "$MNT" >/dev/null
    btrfs subvolume sync "$MNT" >/dev/null
    drop_caches
  }
  log "core: $BENCH_RUNS rounds of $BENCH_CORE_VARIANTS (+1 warm-up)"
  if [ "$BENCH_TRACE" != 0 ]; then
    # Exec and exit of every process, on CLOCK_MONOTONIC; the offset to the
    # wall clock of times.csv is taken once (the two do not drift apart in minutes).
    perf record -q -k mono -a -o "$W/core.perf" -e sched:sched_process_exec,sched:sched_process_exit >/dev/null 2>"$W/perf.err" &
    TRACER=$!
    python3 -c 'import time; print(time.time() - time.monotonic())' >"$OUT/core-clock-offset"
    sleep 1
  fi
  # shellcheck disable=SC2086 # a list of words
  rounds core "$BENCH_RUNS" prep_core $BENCH_CORE_VARIANTS
  if [ -n "$TRACER" ]; then
    kill -INT "$TRACER"; wait "$TRACER" || true; TRACER=
    perf script -i "$W/core.perf" -F comm,pid,time,event,trace >"$OUT/core-trace.txt" 2>/dev/null || die "perf script failed ($(cat "$W/perf.err"))"
  fi
  btrfs subvolume delete "$MNT/.bench-read" >/dev/null
fi

# ---------------------------------------------------------------- latency
if want latency; then
  cmd_plain=(rsync -a -e "$RSH" --rsync-path=rsync "bench:$MNT/tiny/" "$DST/")
  cmd_snaprsync=(rsync -a -e "$RSH" --rsync-path="$SNAP --snap-log-file=$OUT/latency-snaprsync.log" "bench:$MNT/tiny/" "$DST/")
  cmd_naive=(rsync -a -e "$RSH" --rsync-path="$NAIVE $MNT" "bench:$MNT/tiny/" "$DST/")
  log "latency: $BENCH_LAT_RUNS rounds of plain, snaprsync, naive (+1 warm-up)"
  rounds latency "$BENCH_LAT_RUNS" prep_latency plain snaprsync naive
  ssh_ms=()
  for _ in $(seq 10); do
    t0=$EPOCHREALTIME; ssh -F "$SSH_CONFIG" bench true; t1=$EPOCHREALTIME
    ssh_ms+=("$(python3 -c "print(round(($t1 - $t0) * 1000, 1))")")
  done
  echo "ssh_true_ms=${ssh_ms[*]}" >>"$OUT/meta.env"
fi

if want latency-local; then
  cmd_plain=(rsync -a -e "$LRSH" --rsync-path=rsync "bench:$MNT/tiny/" "$DST/")
  cmd_snaprsync=(rsync -a -e "$LRSH" --rsync-path="$SNAP --snap-log-file=$OUT/latency-local-snaprsync.log" "bench:$MNT/tiny/" "$DST/")
  cmd_naive=(rsync -a -e "$LRSH" --rsync-path="$NAIVE $MNT" "bench:$MNT/tiny/" "$DST/")
  check_latency-local() { check_latency "$@"; }
  log "latency-local: $BENCH_LAT_RUNS rounds of plain, snaprsync, naive (+1 warm-up)"
  rounds latency-local "$BENCH_LAT_RUNS" prep_latency plain snaprsync naive
fi

# ---------------------------------------------------------------- rss
if want rss; then
  : >"$OUT/rss.csv"
  pidf=$W/snaprsync.pid
  tf=$W/time.out
  log "rss: $BENCH_RSS_RUNS runs per measurement"
  for r in $(seq "$BENCH_RSS_RUNS"); do
    for s in "" "-s"; do
      # snaprsync's own VmHWM, read from /proc while it runs: the remote
      # shell writes its pid, then execs snaprsync under the same pid.
      rm -f "$pidf"; fresh_dst
      python3 "$here/bench/pollrss.py" "$pidf" snaprsync >"$W/poll.out" &
      poller=$!
      c=(rsync -a $s -e "$RSH" --rsync-path="echo \$\$ >$pidf; exec $SNAP" "bench:$MNT/data/" "$DST/")
      [ "$r" = 1 ] && record_cmd rss "snaprsync VmHWM ${s:-no -s}" "${c[@]}"
      timeout "$BENCH_RUN_TIMEOUT" "${c[@]}" </dev/null 2>>"$OUT/stderr.log" || die "rss run failed"
      wait "$poller" || die "pollrss failed"
      echo "snaprsync VmHWM${s:+ with -s},$r,$(cut -d' ' -f1 "$W/poll.out")" >>"$OUT/rss.csv"
    done
    # What GNU time reports around snaprsync (its children's peak included)
    # and around plain rsync.
    for v in snaprsync rsync; do
      fresh_dst; rm -f "$tf"
      prog=$SNAP; [ "$v" = rsync ] && prog=rsync
      c=(rsync -a -e "$RSH" --rsync-path="/usr/bin/time -f %M -o $tf $prog" "bench:$MNT/data/" "$DST/")
      [ "$r" = 1 ] && record_cmd rss "GNU time %M around $v" "${c[@]}"
      timeout "$BENCH_RUN_TIMEOUT" "${c[@]}" </dev/null 2>>"$OUT/stderr.log" || die "rss (time) run failed"
      echo "GNU time %M around $v,$r,$(tail -1 "$tf")" >>"$OUT/rss.csv"
    done
  done
fi

# ---------------------------------------------------------------- protect
if want protect; then
  cmd_plain=(rsync -a -s -e "$LRSH" --rsync-path=rsync "bench:$MNT/big/" "$DST/")
  cmd_snaprsync=(rsync -a -s -e "$LRSH" --rsync-path="$SNAP --snap-log-file=$OUT/protect-snaprsync.log" "bench:$MNT/big/" "$DST/")
  prep_protect() { wait_removers; fresh_dst; drop_caches; }
  log "protect: $BENCH_BIG_RUNS rounds of plain, snaprsync (+1 warm-up)"
  rounds protect "$BENCH_BIG_RUNS" prep_protect plain snaprsync
fi

# ---------------------------------------------------------------- startup
if want startup; then
  cmd_rsync=(rsync --version)
  cmd_snaprsync=("$SNAP" --version)
  check_startup() { :; }
  log "startup: $BENCH_STARTUP_RUNS rounds"
  rounds startup "$BENCH_STARTUP_RUNS" : rsync snaprsync
fi

# ---------------------------------------------------------------- coldread
if want coldread; then
  snapdir=$MNT/.bench-snap
  readcmd=(sh -c "tar -C \"\$1\" -cf - . | cat >/dev/null" sh)
  record_cmd coldread "live (after sync; drop_caches)" "${readcmd[@]}" "$MNT/data"
  record_cmd coldread "snapshot (after btrfs subvolume snapshot -r \$MNT \$MNT/.bench-snap; sync; drop_caches)" "${readcmd[@]}" "$snapdir/data"
  record_cmd coldread-delete "after-read (right after the snapshot read above) / unread (after snapshot; sync)" btrfs subvolume delete "$snapdir"
  log "coldread: $BENCH_RUNS rounds"
  for r in $(seq "$BENCH_RUNS"); do
    for i in 0 1; do
      if [ $(( (r + i) % 2 )) = 0 ]; then
        drop_caches
        timed coldread live "$r" "${readcmd[@]}" "$MNT/data"
      else
        btrfs subvolume snapshot -r "$MNT" "$snapdir" >/dev/null
        drop_caches
        timed coldread snapshot "$r" "${readcmd[@]}" "$snapdir/data"
        timed coldread-delete after-read "$r" btrfs subvolume delete "$snapdir"
      fi
    done
    btrfs subvolume snapshot -r "$MNT" "$snapdir" >/dev/null
    sync
    timed coldread-delete unread "$r" btrfs subvolume delete "$snapdir"
  done
fi

# ---------------------------------------------------------------- incr
if want incr; then
  printf 'prefetch = "off"\n' >"$W/prefetch-off.toml"
  incr_dst=$DST/incr
  # The destination holds only this tree (after protect, it would not fit).
  fresh_dst
  mkdir -p "$incr_dst"
  record_cmd incr "initial copy (untimed)" rsync -a "$MNT/incr/" "$incr_dst/"
  rsync -a "$MNT/incr/" "$incr_dst/"
  incr_round=0
  # 0.1% of the files get new contents before every run, so that each run
  # has the same small amount to send.
  change_incr() {
    incr_round=$((incr_round + 1))
    python3 "$here/bench/mktree.py" "$MNT/incr" "$BENCH_INCR_FILES" 0 change "$incr_round" >&2
  }
  for cpus in $BENCH_INCR_CPUS; do
    for cache in $BENCH_INCR_CACHE; do
      b="incr-$cache-cpus$cpus"
      cmd_plain=(taskset -c "$cpus" rsync -a -e "$LRSH" --rsync-path=rsync "bench:$MNT/incr/" "$incr_dst/")
      cmd_snaprsync=(taskset -c "$cpus" rsync -a -e "$LRSH" --rsync-path="$SNAP --snap-log-file=$OUT/$b-snaprsync.log" "bench:$MNT/incr/" "$incr_dst/")
      cmd_nopf=(taskset -c "$cpus" rsync -a -e "$LRSH" --rsync-path="$SNAP --snap-config=$W/prefetch-off.toml --snap-log-file=$OUT/$b-nopf.log" "bench:$MNT/incr/" "$incr_dst/")
      if [ "$cache" = cold ]; then
        prep_incr() { wait_removers; change_incr; sync; drop_caches; }
      else
        prep_incr() { wait_removers; change_incr; sync; }
      fi
      eval "check_$b() { :; }"
      log "$b: $BENCH_INCR_RUNS rounds of plain, snaprsync, nopf (+1 warm-up)"
      rounds "$b" "$BENCH_INCR_RUNS" prep_incr plain snaprsync nopf
    done
  done
fi

# ---------------------------------------------------------------- concurrency
if want concurrency; then
  for r in $(seq "$BENCH_CONC_RUNS"); do
    for n in $BENCH_CONC; do
      wait_removers; settle_fs; fresh_dst; sync
      stats0=$(commit_stats)
      pids=()
      for k in $(seq "$n"); do
        c=(rsync -a -e "$LRSH" --rsync-path="$SNAP --snap-log-file=$OUT/concurrency-$n.log" "bench:$MNT/tiny/" "$DST/c$k/")
        [ "$r$k" = 11 ] && record_cmd concurrency "$n at once (each)" "${c[@]}"
        timeout "$BENCH_RUN_TIMEOUT" "${c[@]}" </dev/null >>"$OUT/stdout.log" 2>>"$OUT/stderr.log" &
        pids+=($!)
      done
      for p in "${pids[@]}"; do wait "$p" || die "a concurrency run failed (see $OUT/stderr.log)"; done
      # The filesystem's transaction commits during the round (each snapshot
      # ioctl waits for one): how many, and how long they took in all.
      echo "$n,$r,$stats0,$(commit_stats)" >>"$OUT/commits.csv"
    done
    log "concurrency: round $r of $BENCH_CONC_RUNS done"
  done
fi

# ---------------------------------------------------------------- nested
if want nested; then
  nvariants=(snaprsync)
  [ -z "$BASE" ] || nvariants+=(base)
  for r in $(seq 0 "$BENCH_NESTED_RUNS"); do
    for n in $BENCH_NESTED; do
      mapfile -t order < <(python3 "$here/bench/order.py" "$r" "${nvariants[@]}")
      for v in "${order[@]}"; do
        bin=$SNAP
        [ "$v" = snaprsync ] || bin=$BIN/snaprsync-base
        log_file=$OUT/nested-$v-$n.log
        [ "$r" != 0 ] || log_file=$W/nested-warmup.log
        c=(rsync -a -e "$LRSH" --rsync-path="$bin --snap-log-file=$log_file" "bench:$MNT/nested-$n/" "$DST/")
        [ "$r" != 1 ] || record_cmd nested "$v $n" "${c[@]}"
        wait_removers; settle_fs; fresh_dst; sync
        if [ "$r" = 0 ]; then
          timeout "$BENCH_RUN_TIMEOUT" "${c[@]}" </dev/null >>"$OUT/stdout.log" 2>>"$OUT/stderr.log" || die "nested $v $n warm-up failed (see $OUT/stderr.log)"
        else
          timed nested "$v $n" "$r" "${c[@]}"
        fi
        [ "$(find "$DST" -name f | wc -l)" = "$n" ] || die "nested $v $n: the copy lacks the nested subvolumes' files"
      done
    done
    log "nested: round $r of $BENCH_NESTED_RUNS done"
  done
fi

# ---------------------------------------------------------------- foreign
# The sending side (snaprsync and the rsync it runs) is timed by /usr/bin/time:
# user and system seconds, one line per run, in foreign-cpu-VARIANT.txt. With
# BENCH_BASE_REV, that build runs too ("base-..."), interleaved, up to
# BENCH_FOREIGN_BASE_MAX foreign snapshots (an older build may snapshot every
# one inside the source on every run).
if want foreign; then
  printf 'btrfs_skip_nested = [".snapshots"]\n' >"$W/skip-nested.toml"
  impls=(snaprsync kernel)
  [ -z "$BASE" ] || impls+=(base)
  for r in $(seq 0 "$BENCH_FOREIGN_RUNS"); do
    vs=()
    for i in "${impls[@]}"; do
      for n in $BENCH_FOREIGN; do
        # The kernel's snapshot ioctl alone, of the "outside" source: the floor.
        [ "$i" != kernel ] || { vs+=("kernel-outside-$n"); continue; }
        [ "$i" = snaprsync ] || [ "$n" -le "$BENCH_FOREIGN_BASE_MAX" ] || continue
        vs+=("$i-outside-$n")
        [ -n "$BENCH_FOREIGN_INSIDE_MAX" ] && [ "$n" -gt "$BENCH_FOREIGN_INSIDE_MAX" ] || vs+=("$i-inside-$n")
        # The same source with btrfs_skip_nested = [".snapshots"] (this build only).
        [ "$i" != snaprsync ] || { [ -n "$BENCH_FOREIGN_INSIDE_MAX" ] && [ "$n" -gt "$BENCH_FOREIGN_INSIDE_MAX" ]; } || vs+=("$i-skip-$n")
      done
    done
    mapfile -t order < <(python3 "$here/bench/order.py" "$r" "${vs[@]}")
    for v in "${order[@]}"; do
      IFS=- read -r impl place n <<<"$v"
      fm=${FOREIGN_MNT[$n]}
      if [ "$impl" = kernel ]; then
        wait_removers; btrfs filesystem sync "$fm"; btrfs subvolume sync "$fm" >/dev/null; sync
        mkdir -p "$fm/.bench-floor"
        ms=$(python3 "$here/bench/snap_ioctl.py" "$fm/outside" "$fm/.bench-floor" "r$r") || die "foreign: the snapshot ioctl failed on $fm"
        [ "$r" = 0 ] || echo "$r,$ms" >>"$OUT/foreign-kernel-$n.csv"
        btrfs -q subvolume delete "$fm/.bench-floor/r$r" >/dev/null
        continue
      fi
      bin=$SNAP
      [ "$impl" = snaprsync ] || bin=$BIN/snaprsync-base
      log_file=$OUT/foreign-$v.log
      [ "$r" != 0 ] || log_file=$W/foreign-warmup.log
      cpu=$OUT/foreign-cpu-$v.txt
      [ "$r" != 0 ] || cpu=$W/foreign-warmup-cpu.txt
      excl=() conf= dir=$place
      [ "$place" = outside ] || excl=(--exclude=/.snapshots/)
      [ "$place" != skip ] || { conf=" --snap-config=$W/skip-nested.toml" dir=inside; }
      c=(rsync -a "${excl[@]}" -e "$LRSH" --rsync-path="/usr/bin/time -a -o $cpu -f %U,%S $bin$conf --snap-log-file=$log_file" "bench:$fm/$dir/" "$DST/")
      [ "$r" != 1 ] || record_cmd foreign "$v" "${c[@]}"
      wait_removers; btrfs filesystem sync "$fm"; btrfs subvolume sync "$fm" >/dev/null; fresh_dst; sync
      if [ "$r" = 0 ]; then
        timeout "$BENCH_RUN_TIMEOUT" "${c[@]}" </dev/null >>"$OUT/stdout.log" 2>>"$OUT/stderr.log" || die "foreign $v warm-up failed (see $OUT/stderr.log)"
        [ "$(find "$DST" -type f | wc -l)" = 5 ] || die "foreign $v: the copy is not the source's 5 files"
      else
        timed foreign "$v" "$r" "${c[@]}"
      fi
    done
    log "foreign: round $r of $BENCH_FOREIGN_RUNS done"
  done
fi

# ---------------------------------------------------------------- foreign in the guest
# ZFS and LVM need the QEMU guest lab (scripts/guest.sh; GUEST_CACHE names its
# kernel and modules): scripts/bench/guest-foreign.sh runs there, one guest
# per kind, the builds alternating round by round at each count. The ZFS
# pools of other tools' snapshots are made once and kept in BENCH_GUEST_IMAGES.
for kind in zfs lvm; do
  want "foreign-$kind" || continue
  mkdir -p "$OUT/bin" "$BENCH_GUEST_IMAGES"
  cp "$SNAP" "$OUT/bin/snaprsync"
  [ -z "$BASE" ] || cp "$BASE" "$OUT/bin/snaprsync-base"
  # LVM: one disk per count, each a VG with a thin pool of 1 GiB and its metadata.
  disks=()
  [ "$kind" = lvm ] || disks=(--disk "$W/guest-src.img:1G")
  if [ "$kind" = zfs ]; then
    counts=$BENCH_FOREIGN_ZFS prev=0
    for n in $counts; do
      [ "$n" -gt 0 ] || continue
      disks+=(--disk "$BENCH_GUEST_IMAGES/zfs-foreign-$prev-$n.img:4G")
      prev=$n
    done
  else
    counts=$BENCH_FOREIGN_LVM
    for n in $counts; do
      rm -f "$W/guest-lvm-$n.img"
      disks+=(--disk "$W/guest-lvm-$n.img:2G")
    done
  fi
  rm -f "$W/guest-src.img"
  log "foreign-$kind: the guest, counts $counts, $BENCH_GUEST_RUNS rounds (timeout $BENCH_GUEST_TIMEOUT s)"
  zfs_flag=()
  [ "$kind" = lvm ] || zfs_flag=(--zfs)
  "$here/guest.sh" run "${disks[@]}" "${zfs_flag[@]}" --mem 1536 --share "$OUT" --timeout "$BENCH_GUEST_TIMEOUT" \
    -- "$here/bench/guest-foreign.sh" "$kind" "$BENCH_GUEST_RUNS" "$counts" "${BENCH_GUEST_MEASURED:-$counts}" "$BENCH_GUEST_BASE_MAX" >>"$OUT/guest-$kind.log" 2>&1 ||
    die "foreign-$kind: the guest run failed (see $OUT/guest-$kind.log)"
done

# ---------------------------------------------------------------- sources
if want sources; then
  for r in $(seq 0 "$BENCH_SOURCES_RUNS"); do
    mapfile -t order < <(python3 "$here/bench/order.py" "$r" $BENCH_SOURCES)
    for n in "${order[@]}"; do
      log_file=$OUT/sources-$n.log
      [ "$r" != 0 ] || log_file=$W/sources-warmup.log
      cpu=$OUT/sources-cpu-$n.txt
      [ "$r" != 0 ] || cpu=$W/sources-warmup-cpu.txt
      srcs=("bench:$MNT/many/d1")
      for i in $(seq 2 "$n"); do srcs+=(":$MNT/many/d$i"); done
      c=(rsync -a -e "$LRSH" --rsync-path="/usr/bin/time -a -o $cpu -f %U,%S $SNAP --snap-log-file=$log_file" "${srcs[@]}" "$DST/")
      [ "$r" != 1 ] || record_cmd sources "$n sources" "${c[@]}"
      wait_removers; settle_fs; fresh_dst; sync
      if [ "$r" = 0 ]; then
        timeout "$BENCH_RUN_TIMEOUT" "${c[@]}" </dev/null >>"$OUT/stdout.log" 2>>"$OUT/stderr.log" || die "sources $n warm-up failed (see $OUT/stderr.log)"
        [ "$(find "$DST" -type f | wc -l)" = $(( 5 * n )) ] || die "sources $n: the copy lacks files"
      else
        timed sources "$n" "$r" "${c[@]}"
      fi
    done
    log "sources: round $r of $BENCH_SOURCES_RUNS done"
  done
  # rsnapshot's way: one run per backup point, one after another, as one
  # night does them (the detached removers are not waited for in between).
  wait_removers; settle_fs; fresh_dst; sync
  for i in $(seq "$BENCH_SERIES"); do
    c=(rsync -a -e "$LRSH" --rsync-path="/usr/bin/time -a -o $OUT/series-cpu.txt -f %U,%S $SNAP --snap-log-file=$OUT/series.log" "bench:$MNT/many/d$i/" "$DST/d$i/")
    [ "$i" != 1 ] || record_cmd series "run 1 of $BENCH_SERIES" "${c[@]}"
    timed series "run" "$i" "${c[@]}"
  done
fi

# ---------------------------------------------------------------- checks, summary
wait_removers
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.env"
left=$(btrfs subvolume list "$MNT" | grep -E 'snaprsync-|naive-snap|bench-snap|bench-fresh' || true)
for fm in "${FOREIGN_MNT[@]}"; do
  left+=$(btrfs subvolume list "$fm" | grep -E 'snaprsync-' || true)
done
[ -z "$left" ] || log "WARNING: snapshots left behind: $left"
echo "leftover_snapshots=${left:-none}" >>"$OUT/meta.env"
python3 "$here/bench/stats.py" "$OUT" | tee "$OUT/summary.md"
log "raw results in $OUT"
