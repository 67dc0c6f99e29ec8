#!/bin/bash
# ZFS costs, measured inside the test guest: scripts/guest.sh run --zfs
# --disk IMG:1G -- WRAPPER, where WRAPPER exports SNAPRSYNC (a release build)
# and runs this script. Prints medians of ROUNDS interleaved rounds:
#   - a pull of a small tree with and without snaprsync, from a dataset alone
#     and from a dataset with a child dataset below it (one atomic command for
#     both), with `snapshot_removal = "wait"` so that removal is counted;
#   - ZFS's own `zfs snapshot` + `zfs destroy` of one dataset, for comparison.
set -euo pipefail
ROUNDS=${ROUNDS:-7}
work=/tmp/bench
mkdir -p "$work/state"
disk=${GUEST_DISKS%% *}
printf 'label: gpt\n,,\n' | sfdisk -q "$disk"
for _ in $(seq 50); do [ -b "${disk}1" ] && break; sleep 0.1; done
zpool create -f -o cachefile=none -O mountpoint="$work/tank" tank "${disk}1"
zfs create tank/one
zfs create tank/two
zfs create tank/two/child
fill() { for d in $(seq "$2"); do mkdir -p "$1/d$d"; for f in $(seq 50); do echo "$1 $d $f" > "$1/d$d/f$f"; done; done; }
fill "$work/tank/one" 20
fill "$work/tank/two" 10
fill "$work/tank/two/child" 10
cat > "$work/cfg.toml" <<CFG
rsync_path = "/usr/bin/rsync"
state_dir = "$work/state"
snapshot_removal = "wait"
CFG
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for v in one two; do
  : > "$work/plain-$v"; : > "$work/snap-$v"
  for r in $(seq "$ROUNDS"); do
    rm -rf "$work/out"; ms rsync -a "$work/tank/$v/" "$work/out/" >> "$work/plain-$v"
    rm -rf "$work/out"; ms "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/tank/$v/" "$work/out/" >> "$work/snap-$v"
  done
  p=$(median < "$work/plain-$v"); s=$(median < "$work/snap-$v")
  what="a dataset"; [ "$v" = two ] && what="a dataset and its child"
  echo "pull of 1000 files from $what: plain rsync ${p} ms, through snaprsync ${s} ms, added $((s - p)) ms (median of $ROUNDS)"
done
: > "$work/raw"
for r in $(seq "$ROUNDS"); do
  ms sh -c "zfs snapshot tank/one@raw && zfs destroy tank/one@raw" >> "$work/raw"
done
echo "zfs snapshot + zfs destroy alone, one dataset: $(median < "$work/raw") ms (median of $ROUNDS)"
left=$(zfs list -H -t snapshot -o name | wc -l)
echo "snapshots left: $left"
zpool destroy tank
