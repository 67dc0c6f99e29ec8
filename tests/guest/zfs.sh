#!/bin/bash
# ZFS end to end, run inside the test guest (scripts/guest.sh run --zfs) as
# root, with a blank disk (the first of GUEST_DISKS) for the pool. Needs
# SNAPRSYNC (the binary under test), TESTBED (its `torture` writes and checks)
# and LOCAL_RSH (a remote shell that runs the command here). Prints one
# "CHECK <name> ok" or "CHECK <name> FAIL <detail>" line per check, and
# "VALUE <name> <text>" for what a passing check saw; tests/zfs.rs judges them.
#
# The pool tank holds tank/data and its child tank/data/zchild (mounted below
# it; named to sort after the series, so rsync reads it last). In each, the
# torture writer rewrites a series; a counter pair is written to
# data/counter, then to data/zchild/counter, over and over. At any instant
# the child's counter is the parent's or one less: a copy that shows anything
# else was not read from one instant across the two datasets.
set -u
work=/tmp/lab
mkdir -p "$work/state"
. "$(dirname "$0")/lib.sh"
ours() { zfs list -H -t snapshot -o name 2>/dev/null | grep -c '@snaprsync-' || true; }
A=$work/tank/data
B=$A/zchild
# The counter pair, for $1 seconds.
pair() {
  local n=0 end=$((SECONDS + $1))
  while [ $SECONDS -lt $end ]; do
    n=$((n + 1))
    echo $n > "$A/.counter" && mv "$A/.counter" "$A/counter"
    echo $n > "$B/.counter" && mv "$B/.counter" "$B/counter"
  done
}
# Whether a copy of tank/data holds the counter pair of one instant.
across() {
  local a b
  a=$(cat "$1/counter" 2>/dev/null) b=$(cat "$1/zchild/counter" 2>/dev/null)
  if [ -z "$a" ] || [ -z "$b" ] || [ "$b" -gt "$a" ] || [ "$a" -gt $((b + 1)) ]; then
    echo "counters parent=$a child=$b: not one instant across the datasets"
    return 1
  fi
  echo "counters $a/$b"
}
# Judges a copy of tank/data: both series whole and one instant, and the counters.
judge() {
  local copy=$1 v1 v2 c
  v1=$(torture check "$copy/series" 2>&1) || { echo "parent: $v1"; return 1; }
  v2=$(torture check "$copy/zchild/series" 2>&1) || { echo "child: $v2"; return 1; }
  c=$(across "$copy") || { echo "$c"; return 2; }
  echo "parent $v1; child $v2; $c"
}
writers() {
  torture write "$A/series" --seconds "$1" & w1=$!
  torture write "$B/series" --seconds "$1" & w2=$!
  pair "$1" & w3=$!
  started "$A/series" "$B/series"
  sleep 0.5
}
wait_writers() { wait $w1 $w2 $w3; }

disk=${GUEST_DISKS%% *}
# One partition, made here: given a whole disk, zpool would wait for udev
# (which the guest lacks) to announce the partition it makes.
printf 'label: gpt\n,,\n' | sfdisk -q "$disk" >"$work/setup.log" 2>&1
for _ in $(seq 50); do [ -b "${disk}1" ] && break; sleep 0.1; done
zpool create -f -o cachefile=none -O mountpoint="$work/tank" tank "${disk}1" >>"$work/setup.log" 2>&1 \
  && zfs create tank/data >>"$work/setup.log" 2>&1 && zfs create tank/data/zchild >>"$work/setup.log" 2>&1 \
  || { result setup fail "$(tr '\n' ' ' < "$work/setup.log")"; exit 1; }
mkdir -p "$A/series" "$B/series"
echo 0 > "$A/counter"; echo 0 > "$B/counter"
result setup ok "$(zfs version 2>/dev/null | head -n1): pool tank, tank/data, tank/data/zchild"

# Consistency under the writers, plain and --relative.
config
writers 8
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$A/" "$work/out/" 2>"$work/out.err"; rc=$?
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -aR "$work/tank/./data/" "$work/rel/" 2>>"$work/out.err"; rrc=$?
wait_writers
v=$(torture check "$work/out/series" 2>&1) && [ "$rc" = 0 ] && result consistent ok "$v" || result consistent fail "status $rc: $v $(cat "$work/out.err")"
v=$(torture check "$work/out/zchild/series" 2>&1) && result consistent-child ok "$v" || result consistent-child fail "$v"
v=$(judge "$work/out") && result across-datasets ok "$v" || result across-datasets fail "$v"
# One `zfs snapshot` command named both datasets.
line=$(grep 'running: zfs snapshot' "$work/snaprsync.log" | head -n1)
[[ $line == *"tank/data@snaprsync-"*"tank/data/zchild@snaprsync-"* ]] && result one-command ok "$line" || result one-command fail "$line"
v=$(judge "$work/rel/data") && [ "$rrc" = 0 ] && result relative-names ok "$v" || result relative-names fail "status $rrc: $v"
[ "$(ours)" = 0 ] && result no-snapshot-left ok || result no-snapshot-left fail "$(zfs list -t snapshot)"
grep -q "provider=zfs" "$work/snaprsync.log" && result provider-zfs ok || result provider-zfs fail "$(tail -3 "$work/snaprsync.log")"

# A bind mount of a directory inside a dataset (mount --bind tank/data/series
# srv-series): read from the dataset's snapshot under the writers, plain and
# --relative, and nothing of the dataset beside that directory.
mkdir -p "$work/srv-series"
if mount --bind "$A/series" "$work/srv-series"; then
  : > "$work/snaprsync.log"
  writers 6
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$work/srv-series/" "$work/out-bind/" 2>"$work/bind.err"; rc=$?
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -aR "$work/srv-series/" "$work/rel-bind/" 2>>"$work/bind.err"; rrc=$?
  wait_writers
  v=$(torture check "$work/out-bind" 2>&1) && ok=ok || ok=fail
  torture check "$work/rel-bind$work/srv-series" >/dev/null 2>&1 || ok=fail
  outside=$(find "$work/out-bind" "$work/rel-bind" -name counter -o -name zchild | wc -l)
  [ "$rc" = 0 ] && [ "$rrc" = 0 ] && [ "$outside" = 0 ] && grep -q "is a bind mount of" "$work/snaprsync.log" || ok=fail
  result bind-mount "$ok" "status $rc/$rrc, $outside names from outside the bind mount: $v $(tr '\n' ' ' < "$work/bind.err")"
  umount "$work/srv-series"
  [ "$(ours)" = 0 ] && result bind-mount-no-snapshot-left ok || result bind-mount-no-snapshot-left fail "$(zfs list -t snapshot)"
else
  result bind-mount fail "mount --bind"
fi

# snapdir=visible: the snapshot mount has no .zfs, the copy is the same.
zfs set snapdir=visible tank/data
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$A/" "$work/visible/"; rc=$?
zfs set snapdir=hidden tank/data
v=$(judge "$work/visible") && [ "$rc" = 0 ] && [ ! -e "$work/visible/.zfs" ] && result snapdir-visible ok "$v" \
  || result snapdir-visible fail "status $rc: $v; $(ls -a "$work/visible" | tr '\n' ' ')"

# rsnapshot (its default --relative) through snaprsync, over a local remote
# shell (LOCAL_RSH: no sshd in the guest), while the writers run.
rsnapshot_conf "$A/"
: > "$work/snaprsync.log"
writers 7
rsnapshot -c "$work/rsnapshot.conf" alpha >"$work/rsnapshot.out" 2>&1; rc=$?
wait_writers
v=$(judge "$work/rsnap/alpha.0/host$A"); jv=$?
[ "$rc" = 0 ] && [ "$jv" = 0 ] && grep -q "provider=zfs" "$work/snaprsync.log" \
  && result rsnapshot ok "$v" || result rsnapshot fail "status $rc: $v: $(tr '\n' ' ' < "$work/rsnapshot.out")"

# The check can fail: plain rsync of the live datasets under the same writers.
writers 8
rsync -a --bwlimit=4000 "$A/" "$work/plain/"
wait_writers
# The counters alone: the child's is read seconds after the parent's.
v=$(across "$work/plain") && result control-torn-across fail "plain rsync looked one instant across the datasets: $v" || result control-torn-across ok "$v"

# Sources in two pools: one command per pool, and the log says the pools are
# not one instant.
disk2=${GUEST_DISKS#* }
printf 'label: gpt\n,,\n' | sfdisk -q "$disk2" >"$work/setup2.log" 2>&1
for _ in $(seq 50); do [ -b "${disk2}1" ] && break; sleep 0.1; done
if zpool create -f -o cachefile=none -O mountpoint="$work/other" other "${disk2}1" >>"$work/setup2.log" 2>&1; then
  echo other > "$work/other/o"
  : > "$work/snaprsync.log"
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -aR "$work/other/o" "$A/counter" "$work/two-pools/"; rc=$?
  said=$(grep -o 'zfs: 2 pools.*' "$work/snaprsync.log" | head -n1)
  n=$(grep -c 'running: zfs snapshot' "$work/snaprsync.log")
  [ "$rc" = 0 ] && [ -n "$said" ] && [ "$n" = 2 ] && [ -f "$work/two-pools$work/other/o" ] && [ "$(ours)" = 0 ] \
    && result two-pools ok "$said" || result two-pools fail "status $rc, $n snapshot commands, log: $said"
  zpool destroy other
else
  result two-pools fail "second pool: $(tr '\n' ' ' < "$work/setup2.log")"
fi

# A full pool: the backup either succeeds from a whole snapshot, or fails
# with 81 naming the full pool; either way nothing is left.
zfs create -o compression=off tank/fill
dd if=/dev/zero of="$work/tank/fill/x" bs=1M 2>/dev/null
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$A/" "$work/full/" 2>"$work/full.err"; rc=$?
if [ "$rc" = 0 ]; then
  v=$(judge "$work/full") && result pool-full ok "snapshot made in the pool's reserve: $v" || result pool-full fail "$v"
elif [ "$rc" = 81 ] && grep -q "pool is full" "$work/full.err"; then
  result pool-full ok "$(cat "$work/full.err")"
else
  result pool-full fail "status $rc: $(cat "$work/full.err")"
fi
[ "$(ours)" = 0 ] && result pool-full-no-snapshot-left ok || result pool-full-no-snapshot-left fail "$(zfs list -t snapshot)"
zfs destroy tank/fill

# A delegated user without mount rights: refused before any snapshot, 81.
zfs allow -u nobody snapshot,hold,release,destroy,userprop tank/data
mkdir -p "$work/nobody-state" && chown nobody "$work/nobody-state"
sed "s|$work/state|$work/nobody-state|; s|^log_file.*|log_file = \"$work/nobody-state/log\"|" "$work/cfg.toml" > "$work/nobody.toml"
chmod 644 "$work/nobody.toml"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$SNAPRSYNC" --snap-config="$work/nobody.toml" -a "$A/" /tmp/nobody-out/ 2>"$work/nobody.err"; rc=$?
said=$(grep '^snaprsync:' "$work/nobody.err" | tail -n1)
[ "$rc" = 81 ] && [[ $said == *"permission denied"* ]] && result permission-denied ok "$said" || result permission-denied fail "status $rc: $(cat "$work/nobody.err")"
[ "$(ours)" = 0 ] && result permission-no-snapshot-left ok || result permission-no-snapshot-left fail "$(zfs list -t snapshot)"
zfs unallow -u nobody tank/data

# Another tool's snapshots, and one named like snaprsync's but not marked as
# one of its runs: never touched.
zfs snapshot tank/data@autosnap_2026-11-29_daily && zfs snapshot tank/data@snaprsync-20200101T000000Z-p1-0

# A clone made of the run's snapshot while rsync reads it: removal fails,
# naming the clone; once the clone is gone, the next run leaves nothing.
head -c 8M /dev/urandom > "$A/big"
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a --bwlimit=2000 "$A/" "$work/cloned/" 2>"$work/clone.err" & run=$!
snap=
for _ in $(seq 100); do
  snap=$(zfs list -H -t snapshot -o name,snaprsync:run | awk -F'\t' '$1 ~ /^tank\/data@snaprsync-/ && $2 != "-" { print $1; exit }')
  [ -n "$snap" ] && break
  sleep 0.1
done
if [ -n "$snap" ] && zfs destroy "$snap" 2>"$work/other-destroy.err"; then
  result held-against-destroy fail "another tool destroyed $snap while rsync read it"
else
  result held-against-destroy ok "$(cat "$work/other-destroy.err")"
fi
[ -n "$snap" ] && zfs clone "$snap" tank/clone
wait $run; rc=$?
said=$(grep '^snaprsync:' "$work/clone.err" | tail -n1)
[ -n "$snap" ] && [[ $said == *"clone"* ]] && result busy-clone ok "status $rc: $said" || result busy-clone fail "snap=$snap status $rc: $(cat "$work/clone.err")"
zfs destroy tank/clone
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$A/counter" "$work/after-clone/"; rc=$?
left=$(zfs list -H -t snapshot -o name,snaprsync:run | awk -F'\t' '$2 != "-"' | wc -l)
[ "$rc" = 0 ] && [ "$left" = 0 ] && result busy-swept-after-clone-gone ok || result busy-swept-after-clone-gone fail "status $rc, $left of its snapshots left"
others=$(zfs list -H -t snapshot -o name | grep -c -e '@autosnap_2026-11-29_daily' -e '@snaprsync-20200101T000000Z-p1-0')
[ "$others" = 2 ] && result others-untouched ok || result others-untouched fail "$(zfs list -t snapshot)"
zfs destroy tank/data@autosnap_2026-11-29_daily; zfs destroy tank/data@snaprsync-20200101T000000Z-p1-0

# Restricted mode on ZFS: a key allowed the dataset and one allowed a
# directory inside it pull through the confinement (a stand-in for sshd sets
# SSH_ORIGINAL_COMMAND); the snapshot's copy of each allowed directory is
# accepted by its inode number, and the child dataset is shown below it.
forced dataset "$A"
forced subdir "$A/series"
rsync -a -e "$work/forced-dataset" "localhost:$A/" "$work/restricted/" 2>"$work/restricted.err"; rc=$?
rsync -a -e "$work/forced-subdir" "localhost:$A/series/" "$work/restricted-sub/" 2>>"$work/restricted.err"; src=$?
v=$(torture check "$work/restricted/series" 2>&1) && v2=$(torture check "$work/restricted-sub" 2>&1) \
  && [ "$rc" = 0 ] && [ "$src" = 0 ] && [ -e "$work/restricted/zchild/counter" ] && grep -q 'method=confined' "$work/snaprsync.log" \
  && [ "$(ours)" = 0 ] && result restricted-pull ok "$v; $v2" \
  || result restricted-pull fail "status $rc/$src, $(ours) left: $(cat "$work/restricted.err")"

# kill -9 during a run, then the next run's sweep leaves nothing.
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a --bwlimit=2000 "$A/" "$work/killed/" & victim=$!
for _ in $(seq 100); do [ "$(ours)" != 0 ] && break; sleep 0.1; done
sleep 0.5
kill -9 $victim; wait $victim 2>/dev/null
before=$(ours)
listed=$("$SNAPRSYNC" --snap-config="$work/cfg.toml" list 2>&1)
[[ $listed == *"zfs "*"tank/data@snaprsync-"* ]] && result list-shows-leftover ok || result list-shows-leftover fail "$listed"
: > "$work/snaprsync.log"
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$A/counter" "$work/after-kill/"; rc=$?
[ "$before" != 0 ] && [ "$(ours)" = 0 ] && [ "$rc" = 0 ] && result kill-then-sweep ok "$before left by the kill, swept" \
  || result kill-then-sweep fail "before=$before after=$(ours) status=$rc"
# That sweep listed only the dead run's datasets, never every snapshot of the
# machine (the pool holds another tool's snapshots); a run with no dead run
# to sweep lists none at all.
full='running: zfs list -H -t snapshot -o name,snaprsync:run$'
narrow='running: zfs list -H -t snapshot -o name,snaprsync:run -d 1 tank/data'
swept=$(grep -c "$narrow" "$work/snaprsync.log")
all=$(grep -c "$full" "$work/snaprsync.log")
: > "$work/snaprsync.log"
"$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$A/counter" "$work/after-sweep/"; rc=$?
listed=$(grep -c 'running: zfs list' "$work/snaprsync.log")
[ "$swept" -ge 1 ] && [ "$all" = 0 ] && [ "$listed" = 0 ] && [ "$rc" = 0 ] \
  && result sweep-lists-the-dead-runs-datasets ok "$swept listing(s) of the dead run's datasets, none of the machine; then none" \
  || result sweep-lists-the-dead-runs-datasets fail "narrow=$swept full=$all next=$listed status=$rc: $(grep 'zfs list' "$work/snaprsync.log")"

# kill -9 at random points of a run (creation, hold, mount, rsync, removal),
# ten times; after each, the next run's sweep. Judged by what is on the pool
# and in the mount table, not by statuses.
landed=0 bad=
for t in $(seq 10); do
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a --bwlimit=4000 "$A/" "$work/killed-$t/" 2>/dev/null & victim=$!
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", r % 250 / 100 }')"
  [ "$(ours)" != 0 ] && landed=$((landed + 1))
  kill -9 $victim; wait $victim 2>/dev/null
  "$SNAPRSYNC" --snap-config="$work/cfg.toml" -a "$A/counter" "$work/swept-$t/" 2>/dev/null
  mounted=$(grep -c '@snaprsync-' /proc/self/mounts)
  [ "$(ours)" = 0 ] && [ "$mounted" = 0 ] || bad="$bad trial $t: $(ours) snapshots, $mounted mounts;"
done
[ -z "$bad" ] && result kill-random-x10 ok "10 kills, $landed while a snapshot existed, nothing left after each sweep" \
  || result kill-random-x10 fail "$bad"

zpool destroy tank
