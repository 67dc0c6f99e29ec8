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
# The churn starts once the snapshot exists (under load lvcreate can take
# longer than any fixed delay).
( for _ in $(seq 600); do [ "$(snap_lvs)" != 0 ] && break; sleep 0.05; done
  dd if=/dev/urandom of="$work/ext/data/churn" bs=1M count=40 conv=fsync 2>/dev/null ) & churn=$!
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

# Another volume group (a virtualisation host's, its own disk): a run asks
# LVM only about the VG it snapshots, and with no dead run in the journal its
# sweep asks nothing; `snaprsync list` (every VG) shows the check can fail.
other_disk=$(echo "$GUEST_DISKS" | cut -d' ' -f2)
: > "$work/snaprsync.log"
config 'lvm_snapshot_size = "25%"'
if quiet pvcreate -y "$other_disk" && quiet vgcreate vg2 "$other_disk" && quiet lvcreate -y -an -kn -L 8M -n guest vg2; then
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/ext/data/" "$work/scoped/"; rc=$?
  calls=$(grep -c 'running: lvs ' "$work/snaprsync.log")
  unscoped=$(grep 'running: lvs ' "$work/snaprsync.log" | grep -v -c -E ' vg(/[^ ]*)?$')
  : > "$work/snaprsync.log"
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" list >/dev/null 2>&1
  control=$(grep 'running: lvs ' "$work/snaprsync.log" | grep -v -c -E ' vg(/[^ ]*)?$')
  [ "$rc" = 0 ] && [ "$calls" -ge 1 ] && [ "$unscoped" = 0 ] && [ "$control" -ge 1 ] \
    && result lvs-of-its-vg ok "$calls lvs call(s), each of vg alone; list: $control of every VG" \
    || result lvs-of-its-vg fail "status $rc, $calls lvs calls, $unscoped not of vg alone, list's unscoped $control: $(grep 'running: lvs ' "$work/snaprsync.log" | head -3)"
  quiet vgremove -y vg2
else
  result lvs-of-its-vg fail "no second volume group on $other_disk"
fi
rm -rf "$work/scoped"

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
# was not read from one instant across the volumes. Under emulation each LVM
# and freeze command takes a few tenths of a second: lvm_freeze_timeout is
# raised. Every step that could wait on a frozen filesystem runs under a
# timeout, and nothing here reads or writes a volume while it may be frozen
# but through `writable`, which never waits for its probe.
# The copies of the checks above go: /tmp is a tmpfs of half the guest's memory.
rm -rf "$work"/out-* "$work"/rel-* "$work"/rsnap "$work"/plain "$work"/over "$work"/nospace "$work"/pool "$work"/killed \
  "$work"/after-kill "$work"/in-lvremove "$work"/after-lvremove "$work"/restricted "$work"/restricted-sub
for fs in ext xfs thin; do mkdir -p "$work/$fs/pair"; echo 0 > "$work/$fs/pair/c-$fs"; done
head -c 4M /dev/urandom > "$work/ext/pair/c-f-bulk"
# chain NAME: the writer, in the background, its numbers in $work/chain-NAME.stats
# once $work/chain-NAME.stats.stop exists; chain_end NAME stops it (at most 60 s).
chain() {
  rm -f "$work/chain-$1.stats" "$work/chain-$1.stats.stop"
  timeout -k 5 600 "$TESTBED" chain 590 "$work/chain-$1.stats" "$work/ext/pair/c-ext" "$work/xfs/pair/c-xfs" "$work/thin/pair/c-thin" &
  sleep 1
}
chain_end() {
  touch "$work/chain-$1.stats.stop"
  for _ in $(seq 600); do [ -s "$work/chain-$1.stats" ] && break; sleep 0.1; done
}
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
# snap ARGS: snaprsync with this scenario's config, at most 120 s.
snap() { timeout -k 5 120 "$SNAPRSYNC" --snap-config="$work/cfg.toml" "$@"; }
# writable [SECONDS]: the volumes among ext, xfs and thin where a write did
# not end within 10 s, or SECONDS (frozen, or on a suspended device). Each
# probe runs in the background and is never waited for, nor holds an output
# of this script's: one held by a frozen filesystem cannot hold this script;
# it ends once that is thawed.
writable() {
  local fs blocked="" n
  n=$(date +%s%N)
  for fs in ext xfs thin; do
    # Its own stdout: one held open by a waiting probe would hold $(writable).
    ( echo x > "$work/$fs/.probe-$n" && touch "$work/probe-$n-$fs" ) </dev/null >/dev/null 2>&1 &
  done
  for _ in $(seq $((${1:-10} * 10))); do
    [ -e "$work/probe-$n-ext" ] && [ -e "$work/probe-$n-xfs" ] && [ -e "$work/probe-$n-thin" ] && break
    sleep 0.1
  done
  for fs in ext xfs thin; do [ -e "$work/probe-$n-$fs" ] || blocked="$blocked $fs"; done
  echo "${blocked# }"
}
# Device-mapper devices suspended now, and snaprsync's mounts.
suspended() { timeout -k 2 20 dmsetup info -c --noheadings -o name,suspended 2>&1 | grep -c -v Active || true; }
snap_mounts() { grep -c snaprsync- /proc/self/mountinfo || true; }

chain all
config 'lvm_snapshot_size = "25%"
lvm_freeze_timeout = 60'
: > "$work/snaprsync.log"
good=0 seen=""
for i in 1 2 3 4 5 6; do
  rm -rf "$work/inst"
  # shellcheck disable=SC2046
  snap -a $(pairs) "$work/inst/" 2>>"$work/inst.err"; rc=$?
  v=$(instant "$work/inst") && [ "$rc" = 0 ] && good=$((good + 1))
  seen="$seen $v(status $rc)"
done
chain_end all
said=$(grep -c "3 volumes snapshotted at one instant" "$work/snaprsync.log")
[ "$good" = 6 ] && [ "$said" = 6 ] && result instant-across-lvs ok "6 of 6 copies one instant:$seen" \
  || result instant-across-lvs fail "$good of 6 one instant, the log said so $said times:$seen $(tail -3 "$work/inst.err") $(grep -v ' DEBUG ' "$work/snaprsync.log" | tail -5)"
ms=$(grep -o 'freeze_ms=[0-9]*' "$work/snaprsync.log" | cut -d= -f2 | sort -n | tr '\n' ' ')
[ -n "$ms" ] && result freeze-ms-logged ok "$ms" || result freeze-ms-logged fail
# The check can fail: lvm_freeze = "none" (each snapshot its own instant),
# and plain rsync slowed down, are caught torn across the volumes.
chain none
config 'lvm_snapshot_size = "25%"
lvm_freeze = "none"'
: > "$work/snaprsync.log"
torn=0 seen=""
for i in 1 2 3; do
  rm -rf "$work/none"
  # shellcheck disable=SC2046
  snap -a $(pairs) "$work/none/" 2>/dev/null
  v=$(instant "$work/none") || torn=$((torn + 1))
  seen="$seen $v"
done
grep -q "one after another, each its own point in time" "$work/snaprsync.log" && ! grep -q "one instant" "$work/snaprsync.log" \
  && [ "$torn" != 0 ] && result freeze-none-torn ok "$torn of 3 torn:$seen" || result freeze-none-torn fail "$torn of 3 torn:$seen"
# shellcheck disable=SC2046
timeout -k 5 120 rsync -a --bwlimit=2000 $(pairs) "$work/plain-pair/"
v=$(instant "$work/plain-pair") && result control-torn-across fail "plain rsync looked one instant: $v" || result control-torn-across ok "$v"
chain_end none
# The writer's longest step while the runs above froze it (all), or LVM
# alone suspended each volume (none), and its usual step.
[ -s "$work/chain-all.stats" ] && [ -s "$work/chain-none.stats" ] \
  && result writer-stall ok "all: $(cat "$work/chain-all.stats"); none: $(cat "$work/chain-none.stats")" || result writer-stall fail

# kill -9 inside the frozen window, 10 times, at every step of it: once the
# filesystems are frozen, with the first device suspended, between the thick
# snapshots, after the last (a fault point holds the run there each time),
# and while each lvcreate runs. Each kill leaves a filesystem frozen (shown by
# a write that does not end); after the sweep (`cleanup`, and a snapshot run
# for the last kill) nothing is frozen, no device suspended, no snapshot LV,
# no mount, no mount-point directory. An orphaned lvcreate is let finish first.
config 'lvm_snapshot_size = "25%"
lvm_freeze_timeout = 60'
killed=0 clean=0 seen="" round=0
for at in lvm-frozen lvm-suspended lvcreate:1 lvm-between lvcreate:2 lvcreate:3 lvm-snapped lvm-frozen lvcreate:1 lvm-suspended; do
  : > "$work/snaprsync.log"
  rm -rf "$work/gate" "$work/gate.held" "$work/in-window"
  case $at in
    lvcreate:*) fault="" n=${at#lvcreate:} ;;
    *) fault="$at:hold=$work/gate" n="" ;;
  esac
  round=$((round + 1))
  # shellcheck disable=SC2046
  SNAPRSYNC_FAULT=$fault "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a $(pairs) "$work/in-window/" 2>/dev/null & victim=$!
  for _ in $(seq 3000); do
    kill -0 $victim 2>/dev/null || break
    if [ -n "$n" ]; then [ "$(grep -c 'running: lvcreate' "$work/snaprsync.log")" -ge "$n" ] && break
    else [ -e "$work/gate.held" ] && break; fi
    sleep 0.02
  done
  kill -9 $victim 2>/dev/null; wait $victim 2>/dev/null
  for _ in $(seq 600); do pgrep -x lvcreate >/dev/null || break; sleep 0.1; done
  left=$(writable 2) susp=$(suspended)
  [ -n "$left" ] && killed=$((killed + 1))
  if [ $round = 10 ]; then
    # shellcheck disable=SC2046
    snap -a $(pairs) "$work/after-window/" 2>/dev/null; rc=$?
  else
    snap cleanup >/dev/null 2>&1; rc=$?
  fi
  after=$(writable) asusp=$(suspended)
  [ "$rc" = 0 ] && [ -z "$after" ] && [ "$asusp" = 0 ] && [ "$(snap_lvs)" = 0 ] && [ "$(snap_mounts)" = 0 ] && [ "$(mount_dirs)" = 0 ] \
    && clean=$((clean + 1))
  seen="$seen $at(frozen: ${left:-none}, suspended $susp; after: status $rc, frozen ${after:-none}, suspended $asusp, $(snap_lvs) LVs, $(snap_mounts) mounts, $(mount_dirs) dirs)"
done
[ "$killed" = 10 ] && [ "$clean" = 10 ] && result kill-in-freeze-window ok "10 kills, each left a filesystem frozen, all thawed by the sweep:$seen" \
  || result kill-in-freeze-window fail "$killed of 10 kills left a filesystem frozen, $clean of 10 clean after the sweep:$seen"

# Past lvm_freeze_timeout the run thaws, and fails with 81 naming the slow
# step: an lvcreate of the ext4 volume held 12 s (a wrapper first in PATH)
# against a limit of 4 s. The filesystems are writable again while that step
# still runs; nothing is left.
mkdir -p "$work/slow"
cat > "$work/slow/lvcreate" <<SLOW
#!/bin/sh
case " \$* " in *" vg/ext "*) touch "$work/slow.started"; sleep 12; touch "$work/slow.slept" ;; esac
exec $(command -v lvcreate) "\$@"
SLOW
chmod 755 "$work/slow/lvcreate"
rm -f "$work/slow.started" "$work/slow.slept"
config 'lvm_snapshot_size = "25%"
lvm_freeze_timeout = 4'
: > "$work/snaprsync.log"
# shellcheck disable=SC2046
PATH="$work/slow:$PATH" snap -a $(pairs) "$work/slow-out/" 2>"$work/slow.err" & victim=$!
for _ in $(seq 600); do [ -e "$work/slow.started" ] || ! kill -0 $victim 2>/dev/null && break; sleep 0.1; done
sleep 5
still=no
[ -e "$work/slow.slept" ] || still=yes
during=$(writable 2)
wait $victim; rc=$?
said=$(grep '^snaprsync:' "$work/slow.err" | tail -1)
if [ "$rc" = 81 ] && [[ $said == *"lvcreate -s vg/ext"*"lvm_freeze_timeout = 4"* ]] && [ "$still" = yes ] && [ -z "$during" ] \
  && [ -z "$(writable)" ] && [ "$(suspended)" = 0 ] && [ "$(snap_lvs)" = 0 ] && ! grep -q "one instant" "$work/snaprsync.log"; then
  result freeze-timeout ok "$said"
else
  result freeze-timeout fail "status $rc, frozen while the step ran: ${during:-none} (step still running: $still), $(suspended) suspended, $(snap_lvs) LVs: $said"
fi
# What the log says of removals that failed, and which LVs are there, for a
# failing check's message.
removal_said() {
  { grep -E 'could not remove|lvremove .*failed|sweep:' "$work/snaprsync.log" | tail -4; lvs --noheadings -o lv_name,lv_attr,lv_tags vg 2>&1 | grep snaprsync; } | tr '\n' ' '
}
# The limit striking inside LVM's own steps (1 s, shorter than any window
# under emulation): 81, and nothing left frozen, suspended or made.
config 'lvm_snapshot_size = "25%"
lvm_freeze_timeout = 1'
# shellcheck disable=SC2046
snap -a $(pairs) "$work/slow-out/" 2>"$work/slow.err"; rc=$?
for _ in $(seq 600); do pgrep -x lvcreate >/dev/null || break; sleep 0.1; done
said=$(grep '^snaprsync:' "$work/slow.err" | tail -1)
[ "$rc" = 81 ] && [ -z "$(writable)" ] && [ "$(suspended)" = 0 ] && [ "$(snap_lvs)" = 0 ] && [ "$(snap_mounts)" = 0 ] \
  && result freeze-timeout-in-lvm ok "$said" \
  || result freeze-timeout-in-lvm fail "status $rc, frozen: $(writable), $(suspended) suspended, $(snap_lvs) LVs: $said; log: $(removal_said)"

# The run's own ways out of the window, with no sweep after them: each leaves
# nothing frozen, suspended, made or mounted by the time it has ended.
# nothing_left WHAT: a line for the check's detail, empty when all is clean.
nothing_left() {
  for _ in $(seq 300); do [ "$(snap_lvs)" = 0 ] && break; sleep 0.1; done
  local w s l m
  w=$(writable) s=$(suspended) l=$(snap_lvs) m=$(snap_mounts)
  [ -z "$w" ] && [ "$s" = 0 ] && [ "$l" = 0 ] && [ "$m" = 0 ] || echo "frozen: ${w:-none}, $s suspended, $l LVs, $m mounts"
}
config 'lvm_snapshot_size = "25%"
lvm_freeze_timeout = 60'
# A panic between the thick snapshots (the debug fault point panics): Drop
# thaws and resumes, the made snapshot is removed.
# shellcheck disable=SC2046
SNAPRSYNC_FAULT=lvm-between snap -a $(pairs) "$work/panic-out/" 2>"$work/panic.err"; rc=$?
left=$(nothing_left)
[ "$rc" != 0 ] && grep -q "fault injected" "$work/panic.err" && [ -z "$left" ] \
  && result freeze-undone-on-panic ok "status $rc" \
  || result freeze-undone-on-panic fail "status $rc, $left: $(tr '\n' ' ' < "$work/panic.err"); log: $(removal_said)"
# SIGTERM while the run is held inside the window (filesystems frozen, the
# first device suspended): the signal waits for the step, then the run thaws,
# removes what it made and ends 143.
rm -rf "$work/gate" "$work/gate.held"
# shellcheck disable=SC2046
SNAPRSYNC_FAULT="lvm-suspended:hold=$work/gate" "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a $(pairs) "$work/term-out/" 2>"$work/term.err" & victim=$!
for _ in $(seq 3000); do [ -e "$work/gate.held" ] || ! kill -0 $victim 2>/dev/null && break; sleep 0.02; done
held=$([ -e "$work/gate.held" ] && echo yes || echo no)
inwin=$(writable 2)
kill -TERM $victim; sleep 0.5; touch "$work/gate"
wait $victim; rc=$?
left=$(nothing_left)
[ "$held" = yes ] && [ -n "$inwin" ] && [ "$rc" = 143 ] && [ -z "$left" ] \
  && result freeze-undone-on-signal ok "frozen when signalled: $inwin; status $rc" \
  || result freeze-undone-on-signal fail "held $held, frozen when signalled: ${inwin:-none}, status $rc, $left: $(tr '\n' ' ' < "$work/term.err")"
# A failed lvcreate inside the window (the XFS volume's, a wrapper first in
# PATH): 81 naming it, the ext4 snapshot made before it removed, all thawed.
cat > "$work/slow/lvcreate" <<FAIL
#!/bin/sh
case " \$* " in *" vg/xfs "*) echo "  Insufficient free space (injected)" >&2; exit 5 ;; esac
exec $(command -v lvcreate) "\$@"
FAIL
# shellcheck disable=SC2046
PATH="$work/slow:$PATH" snap -a $(pairs) "$work/fail-out/" 2>"$work/fail.err"; rc=$?
said=$(grep '^snaprsync:' "$work/fail.err" | tail -1)
left=$(nothing_left)
[ "$rc" = 81 ] && [[ $said == *"vg/xfs"* ]] && [ -z "$left" ] \
  && result freeze-undone-on-failed-lvcreate ok "$said" \
  || result freeze-undone-on-failed-lvcreate fail "status $rc, $left: $said"

for fs in ext xfs thin; do timeout -k 2 60 umount "$work/$fs"; done
