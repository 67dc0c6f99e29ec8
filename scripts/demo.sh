#!/usr/bin/env bash
# snaprsync's main job as a self-contained demo (run as root on Debian 12):
# a loop-mounted btrfs image, a writer that keeps rewriting files while the
# backup runs, a backup through plain rsync and one through snaprsync, a
# verdict on each, and a check that no snapshot is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# snaprsync, and testbed: the tests' btrfs image and torture writer/checker.
cargo build --release --quiet -p snaprsync -p testbed --bins
target=${CARGO_TARGET_DIR:-target}/release
bin=$target/snaprsync
testbed=$target/testbed

work=$(mktemp -d /tmp/snaprsync-demo.XXXXXX)
cleanup() {
  [ -n "${writer:-}" ] && kill "$writer" 2>/dev/null && wait "$writer" 2>/dev/null
  "$testbed" btrfs-remove "$work"
  rm -rf "$work"
}
trap cleanup EXIT

mnt=$("$testbed" btrfs-image 1024 "$work")
mkdir "$mnt/data"
echo "btrfs image mounted at $mnt; a writer now rewrites 400 files of 256 KiB, in order, generation after generation"

"$testbed" torture write "$mnt/data" --seconds 30 --files 400 --size 262144 &
writer=$!
sleep 2

backup() { # $1 = label, $2 = program acting as the source side
  rm -rf "$work/$1"
  rc=0
  "$2" -a --bwlimit=40000 "$mnt/data/" "$work/$1/" >"$work/$1.log" 2>&1 || rc=$?
  printf '%-10s exit %-3s ' "$1:" "$rc"
  "$testbed" torture check "$work/$1" || true
}
echo "backing up while the writer runs (each copy is slowed to ~40 MB/s so that it spans many generations)"
backup rsync rsync
backup snaprsync "$bin"

kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null || true; writer=

# snaprsync removes its snapshot in the background right after rsync ends.
for _ in $(seq 50); do
  left=$(btrfs subvolume list "$mnt" | grep -c 'snaprsync-' || true)
  [ "$left" -eq 0 ] && break
  sleep 0.1
done
if "$testbed" torture check "$work/snaprsync" >/dev/null && [ "$left" -eq 0 ]; then
  echo "VERDICT: the snaprsync backup is one point in time, and no snapshot remains ($left left)."
else
  echo "VERDICT: FAILED: snaprsync backup consistent? see above; snapshots left: $left"
  exit 1
fi
