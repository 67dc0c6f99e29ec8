#!/bin/bash
# LVM end to end, run inside the test guest (scripts/guest.sh) as root, with
# a blank disk (the first of GUEST_DISKS). Needs SNAPRSYNC (the binary under test) and
# TESTBED (the test-support binary: its `torture` writes and checks) and
# LOCAL_RSH (a remote shell that runs the command here) in the environment. Prints one "CHECK <name> ok" or "CHECK <name> FAIL <detail>"
# line per check, and "VALUE <name> <text>" for what a passing check saw; the
# Rust test (tests/lvm.rs) judges them.
set -u
export LVM_SYSTEM_DIR=${LVM_SYSTEM_DIR:-/etc/lvm}
work=/tmp/lab
mkdir -p "$work/state"
. "$(dirname "$0")/lib.sh"
snap_lvs() { lvs --noheadings -o lv_name vg 2>/dev/null | grep -c snaprsync- || true; }
# The snapshot LVs left once a background removal has had up to 30 s.
settled_lvs() {
  for _ in $(seq 300); do [ "$(snap_lvs)" = 0 ] && break; sleep 0.1; done
  snap_lvs
}
# snaprsync's mount-point directories in state_dir.
mount_dirs() { ls "$work/state/mnt" 2>/dev/null | grep -c snaprsync- || true; }

disk=${GUEST_DISKS%% *}
pvcreate -y "$disk" >"$work/pv.log" 2>&1 && vgcreate vg "$disk" >>"$work/pv.log" 2>&1 \
  || { result setup fail "no volume group on $disk: $(tr '\n' ' ' < "$work/pv.log")"; exit 1; }
for fs in ext xfs; do
  quiet lvcreate -y -L 400M -n "$fs" vg || { result setup fail "lvcreate $fs"; exit 1; }
done
quiet mkfs.ext4 -q /dev/vg/ext && quiet mkfs.xfs -q /dev/vg/xfs || { result setup fail mkfs; exit 1; }
quiet lvcreate -y -L 500M -T vg/pool && quiet lvcreate -y -V 400M -T vg/pool -n thin && quiet mkfs.xfs -q /dev/vg/thin \
  || { result setup fail "thin pool"; exit 1; }
for fs in ext xfs thin; do
  mkdir -p "$work/$fs" && mount "/dev/vg/$fs" "$work/$fs" || { result setup fail "mount $fs"; exit 1; }
  mkdir -p "$work/$fs/data"
done
result setup ok "pv, vg, thick ext4 and xfs, thin xfs"

# Consistency under a writer, for each kind of volume, plain and --relative,
# each run's snapshot removed in the background (from this chroot).
REMOVAL=background config 'lvm_snapshot_size = "25%"'
: > "$work/snaprsync.log"
for fs in ext xfs thin; do
  torture write "$work/$fs/data" --seconds 6 & writer=$!
  started "$work/$fs/data"
  sleep 0.5
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/$fs/data/" "$work/out-$fs/"; rc=$?
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -aR "$work/$fs/./data/" "$work/rel-$fs/"; rrc=$?
  wait $writer
  verdict=$(torture check "$work/out-$fs" 2>&1) && ok=ok || ok=fail
  result "consistent-$fs" "$ok" "status $rc: $verdict"
  [ -d "$work/rel-$fs/data" ] && torture check "$work/rel-$fs/data" >/dev/null 2>&1 && r=ok || r=fail
  result "relative-names-$fs" "$r" "status $rrc"
  left=$(settled_lvs)
  [ "$left" = 0 ] && result "no-lv-left-$fs" ok || result "no-lv-left-$fs" fail "$left snapshot LVs"
done
grep -q "provider=lvm" "$work/snaprsync.log" && result provider-lvm ok || result provider-lvm fail "$(tail -3 "$work/snaprsync.log")"
handed=$(grep -c "removal handed to pid" "$work/snaprsync.log")
removed=$(grep "background removal run=" "$work/snaprsync.log" | grep -c "snapshots=1 removal=ok")
if grep -q "cannot start the background removal" "$work/snaprsync.log" || [ "$handed" != 6 ] || [ "$removed" != 6 ]; then
  result background-removal fail "$handed of 6 handed over, $removed removed: $(grep -m1 'background removal' "$work/snaprsync.log")"
else
  result background-removal ok "$handed of 6 runs handed their removal to a remover, which removed it"
fi

# rsnapshot (its default --relative) through snaprsync, over a local remote
# shell (LOCAL_RSH: no sshd in the guest), while the writer runs.
config 'lvm_snapshot_size = "25%"'
rsnapshot_conf "$work/xfs/data/"
: > "$work/snaprsync.log"
torture write "$work/xfs/data" --seconds 5 & writer=$!
started "$work/xfs/data"
sleep 0.5
rsnapshot -c "$work/rsnapshot.conf" alpha >"$work/rsnapshot.out" 2>&1; rc=$?
wait $writer
copy="$work/rsnap/alpha.0/host$work/xfs/data"
verdict=$(torture check "$copy" 2>&1)
[ "$rc" = 0 ] && [[ $verdict == consistent* ]] && grep -q "provider=lvm" "$work/snaprsync.log" \
  && result rsnapshot ok "$verdict" || result rsnapshot fail "status $rc: $verdict: $(tr '\n' ' ' < "$work/rsnapshot.out")"

# A logical volume mounted below a source is snapshotted too, and shown in place.
if quiet lvcreate -y -L 64M -n inner vg && quiet mkfs.ext4 -q /dev/vg/inner; then
  mkdir -p "$work/ext/tree/inner" && mount /dev/vg/inner "$work/ext/tree/inner"
  echo outer > "$work/ext/tree/o"; echo inner > "$work/ext/tree/inner/i"
  config 'lvm_snapshot_size = "25%"'
  : > "$work/snaprsync.log"
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/ext/tree/" "$work/out-nested/"; rc=$?
  [ "$rc" = 0 ] && [ "$(cat "$work/out-nested/inner/i" 2>/dev/null)" = inner ] && grep -q "snapshots=2" "$work/snaprsync.log" \
    && result nested-lv ok || result nested-lv fail "status $rc: $(grep summary "$work/snaprsync.log")"
  umount "$work/ext/tree/inner"
else
  result nested-lv fail "lvcreate inner"
fi

# The check can fail: plain rsync of the live tree under the same writer.
torture write "$work/ext/data" --seconds 6 --size 200000 & writer=$!
started "$work/ext/data"
sleep 0.5
rsync -a --bwlimit=20000 "$work/ext/data/" "$work/plain/"
wait $writer
torture check "$work/plain" >/dev/null 2>&1 && result control-torn fail "plain rsync looked consistent" || result control-torn ok

# An overflowing thick snapshot: 1 MiB, and 40 MiB written to the origin while rsync reads.
config 'lvm_snapshot_size = "1M"'
head -c 20M /dev/urandom > "$work/ext/data/big"
( sleep 1.5; dd if=/dev/urandom of="$work/ext/data/churn" bs=1M count=40 conv=fsync 2>/dev/null ) & churn=$!
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a --bwlimit=5000 "$work/ext/data/" "$work/over/" 2>"$work/over.err"; rc=$?
wait $churn
said=$(grep '^snaprsync:' "$work/over.err" | tail -1)
[ "$rc" = 93 ] && result overflow ok "$said" || result overflow fail "status $rc: $(tr '\n' ' ' < "$work/over.err")"
times=$(grep -c "filled up" "$work/over.err")
[ "$times" = 1 ] && result overflow-once ok || result overflow-once fail "said $times times: $(tr '\n' ' ' < "$work/over.err")"
[ "$(settled_lvs)" = 0 ] && result overflow-no-lv-left ok || result overflow-no-lv-left fail
rm -f "$work/ext/data/big" "$work/ext/data/churn"

# Too little free space in the volume group: 81, nothing left.
config 'lvm_snapshot_size = "100G"'
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/ext/data/" "$work/nospace/" 2>"$work/nospace.err"; rc=$?
[ "$rc" = 81 ] && grep -q "free" "$work/nospace.err" && result no-space ok "$(cat "$work/nospace.err")" || result no-space fail "status $rc: $(cat "$work/nospace.err")"
[ "$(snap_lvs)" = 0 ] && result no-space-no-lv-left ok || result no-space-no-lv-left fail

# A thin pool over the limit refuses.
config 'lvm_thin_pool_max_percent = 1'
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/thin/data/" "$work/pool/" 2>"$work/pool.err"; rc=$?
[ "$rc" = 81 ] && grep -q "thin pool" "$work/pool.err" && result thin-pool-full ok "$(cat "$work/pool.err")" || result thin-pool-full fail "status $rc: $(cat "$work/pool.err")"

# kill -9 during a run, then the next run's sweep leaves no LV.
config 'lvm_snapshot_size = "25%"'
head -c 30M /dev/urandom > "$work/xfs/data/big"
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a --bwlimit=5000 "$work/xfs/data/" "$work/killed/" & victim=$!
for _ in $(seq 100); do [ "$(snap_lvs)" != 0 ] && break; sleep 0.1; done
sleep 0.5
kill -9 $victim; wait $victim 2>/dev/null
before=$(snap_lvs)
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/xfs/data/" "$work/after-kill/"; rc=$?
[ "$before" != 0 ] && [ "$(snap_lvs)" = 0 ] && [ "$rc" = 0 ] && result kill-then-sweep ok "$before left by the kill, swept" \
  || result kill-then-sweep fail "before=$before after=$(snap_lvs) status=$rc"

# kill -9 during the run's own lvremove: once the orphaned lvremove has
# finished, the next run's sweep leaves no LV and no mount-point directory.
config 'lvm_snapshot_size = "25%"'
: > "$work/snaprsync.log"
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/ext/data/" "$work/in-lvremove/" 2>/dev/null & victim=$!
for _ in $(seq 6000); do grep -q "running: lvremove" "$work/snaprsync.log" && break; sleep 0.01; done
kill -9 $victim; wait $victim 2>/dev/null
orphan=no
for _ in $(seq 600); do pgrep -x lvremove >/dev/null || break; orphan=yes; sleep 0.1; done
lvs_before=$(snap_lvs) dirs_before=$(mount_dirs)
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/ext/data/" "$work/after-lvremove/"; rc=$?
if [ "$rc" = 0 ] && [ "$(snap_lvs)" = 0 ] && [ "$(mount_dirs)" = 0 ] && [ "$dirs_before" != 0 ]; then
  result kill-in-lvremove ok "lvremove orphaned: $orphan; left by the kill: $lvs_before LVs, $dirs_before directories; swept"
else
  result kill-in-lvremove fail "status $rc; lvremove orphaned: $orphan; before: $lvs_before LVs, $dirs_before directories; after: $(snap_lvs) LVs, $(mount_dirs) directories"
fi

# Restricted mode on LVM: a key allowed a volume's root (ext4) and one allowed
# a directory inside one (XFS) pull through the confinement; the snapshot
# device is mounted in rsync's own namespace, and the copy of the allowed
# directory accepted by its inode number.
forced volume "$work/ext"
forced subdir "$work/xfs/data"
rsync -a -e "$work/forced-volume" "localhost:$work/ext/" "$work/restricted/" 2>"$work/restricted.err"; rc=$?
rsync -a -e "$work/forced-subdir" "localhost:$work/xfs/data/" "$work/restricted-sub/" 2>>"$work/restricted.err"; src=$?
[ "$rc" = 0 ] && [ "$src" = 0 ] && [ -d "$work/restricted/data" ] && [ -n "$(ls -A "$work/restricted-sub")" ] \
  && grep -q 'method=confined' "$work/snaprsync.log" && [ "$(settled_lvs)" = 0 ] \
  && result restricted-pull ok "$(ls "$work/restricted-sub" | wc -l) entries from the XFS directory" \
  || result restricted-pull fail "status $rc/$src, $(snap_lvs) LVs: $(tr '\n' ' ' < "$work/restricted.err")"

# A bind mount of a directory inside a volume (mount --bind .../site/www
# srv-www): read from the volume's snapshot under the writer, plain and
# --relative, and nothing of the volume beside that directory.
mkdir -p "$work/ext/site/www" "$work/ext/site/sibling" "$work/srv-www" && echo secret > "$work/ext/site/sibling/secret"
if mount --bind "$work/ext/site/www" "$work/srv-www"; then
  config 'lvm_snapshot_size = "25%"'
  : > "$work/snaprsync.log"
  torture write "$work/ext/site/www" --seconds 6 & writer=$!
  started "$work/ext/site/www"
  sleep 0.5
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/srv-www/" "$work/out-bind/"; rc=$?
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -aR "$work/srv-www/" "$work/rel-bind/"; rrc=$?
  wait $writer
  verdict=$(torture check "$work/out-bind" 2>&1) && ok=ok || ok=fail
  torture check "$work/rel-bind$work/srv-www" >/dev/null 2>&1 || ok=fail
  outside=$(find "$work/out-bind" "$work/rel-bind" -name secret -o -name sibling -o -name data | wc -l)
  [ "$rc" = 0 ] && [ "$rrc" = 0 ] && [ "$outside" = 0 ] && grep -q "is a bind mount of" "$work/snaprsync.log" || ok=fail
  result bind-mount "$ok" "status $rc/$rrc, $outside names from outside the bind mount: $verdict"
  umount "$work/srv-www"
  left=$(settled_lvs)
  [ "$left" = 0 ] && result bind-mount-no-lv-left ok || result bind-mount-no-lv-left fail "$left snapshot LVs"
else
  result bind-mount fail "mount --bind"
fi

# One instant across logical volumes. A counter chain (testbed chain) is
# written across the thick ext4, the thick XFS and the thin XFS volume, over
# and over: ext's counter first, then xfs's, then thin's, each by a rename. At
# any instant ext >= xfs >= thin >= ext - 1; a copy that shows anything else
# was not read from one instant across the volumes. rsync reads ext's counter,
# then 4 MB of ext, then the other two. Under emulation each LVM and freeze
# command takes a few tenths of a second: lvm_freeze_timeout is raised.
for fs in ext xfs thin; do mkdir -p "$work/$fs/pair"; echo 0 > "$work/$fs/pair/c-$fs"; done
head -c 4M /dev/urandom > "$work/ext/pair/c-f-bulk"
chain() { "$TESTBED" chain "$1" "$work/chain.stats" "$work/ext/pair/c-ext" "$work/xfs/pair/c-xfs" "$work/thin/pair/c-thin"; }
# Whether a copy holds the counters of one instant.
instant() {
  local e x t
  e=$(cat "$1/c-ext" 2>/dev/null) x=$(cat "$1/c-xfs" 2>/dev/null) t=$(cat "$1/c-thin" 2>/dev/null)
  if [ -z "$e" ] || [ -z "$x" ] || [ -z "$t" ] || [ "$x" -gt "$e" ] || [ "$t" -gt "$x" ] || [ "$e" -gt $((t + 1)) ]; then
    echo "ext=$e xfs=$x thin=$t"
    return 1
  fi
  echo "$e/$x/$t"
}
pairs() { echo "$work/ext/pair/" "$work/xfs/pair/" "$work/thin/pair/"; }
rm -f "$work/chain.stats.stop"; chain 300 & chainer=$!
sleep 1
config 'lvm_snapshot_size = "25%"
lvm_freeze_timeout = 60'
: > "$work/snaprsync.log"
good=0 seen=""
for i in 1 2 3 4 5 6; do
  rm -rf "$work/inst"
  # shellcheck disable=SC2046
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a $(pairs) "$work/inst/" 2>>"$work/inst.err"; rc=$?
  v=$(instant "$work/inst") && [ "$rc" = 0 ] && good=$((good + 1))
  seen="$seen $v(status $rc)"
done
said=$(grep -c "3 volumes snapshotted at one instant" "$work/snaprsync.log")
[ "$good" = 6 ] && [ "$said" = 6 ] && result instant-across-lvs ok "6 of 6 copies one instant:$seen" \
  || result instant-across-lvs fail "$good of 6 one instant, the log said so $said times:$seen $(tail -3 "$work/inst.err") $(grep -v ' DEBUG ' "$work/snaprsync.log" | tail -5)"
ms=$(grep -o 'freeze_ms=[0-9]*' "$work/snaprsync.log" | cut -d= -f2 | sort -n | tr '\n' ' ')
[ -n "$ms" ] && result freeze-ms-logged ok "$ms" || result freeze-ms-logged fail
# The check can fail: lvm_freeze = "none" (each snapshot its own instant),
# and plain rsync slowed down, are caught torn across the volumes.
config 'lvm_snapshot_size = "25%"
lvm_freeze = "none"'
: > "$work/snaprsync.log"
torn=0 seen=""
for i in 1 2 3; do
  rm -rf "$work/none"
  # shellcheck disable=SC2046
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a $(pairs) "$work/none/" 2>/dev/null
  v=$(instant "$work/none") || torn=$((torn + 1))
  seen="$seen $v"
done
grep -q "one after another, each its own point in time" "$work/snaprsync.log" && ! grep -q "one instant" "$work/snaprsync.log" \
  && [ "$torn" != 0 ] && result freeze-none-torn ok "$torn of 3 torn:$seen" || result freeze-none-torn fail "$torn of 3 torn:$seen"
# shellcheck disable=SC2046
rsync -a --bwlimit=2000 $(pairs) "$work/plain-pair/"
v=$(instant "$work/plain-pair") && result control-torn-across fail "plain rsync looked one instant: $v" || result control-torn-across ok "$v"
touch "$work/chain.stats.stop"; wait $chainer
# The writer's longest step while the runs above froze it, and its usual one.
[ -s "$work/chain.stats" ] && result writer-stall ok "$(cat "$work/chain.stats")" || result writer-stall fail

for fs in ext xfs thin; do umount "$work/$fs"; done
