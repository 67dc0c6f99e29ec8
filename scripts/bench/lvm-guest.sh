#!/bin/bash
# LVM costs, measured inside the test guest (run through scripts/bench.sh lvm,
# or: scripts/guest.sh run --disk IMG:2G -- scripts/bench/lvm-guest.sh with
# SNAPRSYNC set). Prints medians of ROUNDS interleaved rounds:
#   - the time a pull of a small tree takes with and without snaprsync, on a
#     thick and on a thin volume (the snapshot's own cost per run);
#   - how fast the origin takes writes with and without a thick snapshot
#     (copy-on-write).
set -euo pipefail
ROUNDS=${ROUNDS:-7}
work=/tmp/bench
mkdir -p "$work/state"
disk=${GUEST_DISKS%% *}
q() { "$@" >/dev/null 2>&1; }
q pvcreate -y "$disk"; q vgcreate vg "$disk"
q lvcreate -y -L 400M -n thick vg; q mkfs.ext4 -q /dev/vg/thick
q lvcreate -y -L 600M -T vg/pool; q lvcreate -y -V 400M -T vg/pool -n thin; q mkfs.ext4 -q /dev/vg/thin
for v in thick thin; do
  mkdir -p "$work/$v"; mount "/dev/vg/$v" "$work/$v"; mkdir -p "$work/$v/data"
  for d in $(seq 20); do mkdir -p "$work/$v/data/d$d"; for f in $(seq 50); do echo "$v $d $f" > "$work/$v/data/d$d/f$f"; done; done
done
cat > "$work/cfg.toml" <<CFG
rsync_path = "/usr/bin/rsync"
state_dir = "$work/state"
snapshot_removal = "wait"
lvm_snapshot_size = "25%"
CFG
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for v in thick thin; do
  : > "$work/plain-$v"; : > "$work/snap-$v"
  for r in $(seq "$ROUNDS"); do
    rm -rf "$work/out"; ms rsync -a "$work/$v/data/" "$work/out/" >> "$work/plain-$v"
    rm -rf "$work/out"; ms "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/$v/data/" "$work/out/" >> "$work/snap-$v"
  done
  p=$(median < "$work/plain-$v"); s=$(median < "$work/snap-$v")
  echo "pull of 1000 files, $v volume: plain rsync ${p} ms, through snaprsync ${s} ms, added $((s - p)) ms (median of $ROUNDS)"
done
# LVM's own cost, for comparison: a bare snapshot made and removed.
for v in thick thin; do
  : > "$work/raw-$v"
  for r in $(seq "$ROUNDS"); do
    if [ "$v" = thick ]; then
      ms sh -c "lvcreate -q -y -s -L 100M -n raw vg/thick && lvremove -q -y vg/raw" >> "$work/raw-$v"
    else
      ms sh -c "lvcreate -q -y -s -kn -n raw vg/thin && lvremove -q -y vg/raw" >> "$work/raw-$v"
    fi
  done
  echo "lvcreate -s + lvremove alone, $v: $(median < "$work/raw-$v") ms (median of $ROUNDS)"
done
# Writes to the origin: 64 MiB with fsync, without and with a thick snapshot.
: > "$work/w-none"; : > "$work/w-snap"
for r in $(seq "$ROUNDS"); do
  ms dd if=/dev/zero of="$work/thick/w" bs=1M count=64 conv=fsync >> "$work/w-none"; rm -f "$work/thick/w"
  q lvcreate -y -s -L 100M -n cow vg/thick
  ms dd if=/dev/zero of="$work/thick/w" bs=1M count=64 conv=fsync >> "$work/w-snap"; rm -f "$work/thick/w"
  q lvremove -y vg/cow
done
a=$(median < "$work/w-none"); b=$(median < "$work/w-snap")
echo "64 MiB written to a thick origin: ${a} ms alone, ${b} ms while a thick snapshot exists (ratio $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}'), median of $ROUNDS)"
for v in thick thin; do umount "$work/$v"; done
