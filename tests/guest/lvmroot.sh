#!/bin/bash
# exec of / on an LVM root, run inside the test guest (scripts/guest.sh) as
# root, with a blank disk (the first of GUEST_DISKS): the logical volume
# vg/root (ext4) is made the root of a private mount namespace (pivot_root;
# the guest's /usr bound in read-only, /proc, /sys, /dev and /run bound in, a
# few files of /etc copied), and `snaprsync exec / -- sh -c ...` runs there
# while a writer outside keeps changing a counter pair in /etc/pair (kill -9
# and the sweep are the LVM provider's, shown by lvm.sh, and those of exec of
# / by tests/rootexec.rs, on btrfs). Needs
# SNAPRSYNC in the environment. Prints one "CHECK <name> ok" or
# "CHECK <name> FAIL <detail>" line per check (tests/lvm.rs judges them).
set -u
SECONDS=0
export LVM_SYSTEM_DIR=${LVM_SYSTEM_DIR:-/etc/lvm}
work=/tmp/lab
mkdir -p "$work"
. "$(dirname "$0")/lib.sh"

disk=${GUEST_DISKS%% *}
R=$work/lv
{ pvcreate -y "$disk" && vgcreate vg "$disk" && lvcreate -y -L 300M -n root vg && mkfs.ext4 -q /dev/vg/root; } >"$work/pv.log" 2>&1 \
  && mkdir -p "$R" && mount /dev/vg/root "$R" \
  || { result setup fail "no root volume on $disk: $(tr '\n' ' ' < "$work/pv.log")"; exit 1; }
mkdir -p "$R"/{usr,proc,sys,dev,run,tmp,var/tmp,etc/pair,work/state,root,home}
for l in bin lib lib64 sbin; do ln -s "$(readlink /$l)" "$R/$l"; done
for f in passwd group nsswitch.conf ld.so.cache; do cp /etc/$f "$R/etc/" 2>/dev/null; done
: > "$R/work/snaprsync"
cat > "$R/work/cfg.toml" <<CFG
state_dir = "/work/state"
log_file = "/work/snaprsync.log"
log_level = "debug"
lvm_snapshot_size = "25%"
CFG
echo 0 > "$R/etc/pair/a"; echo 0 > "$R/etc/pair/b"
result setup ok "vg/root ext4 as / after ${SECONDS}s"

# The counter pair, a then b, over and over: at any instant b is a or one less.
pair_writer() {
  local n=0
  while [ ! -e "$work/stop" ]; do
    n=$((n + 1))
    echo $n > "$R/etc/pair/.a" && mv "$R/etc/pair/.a" "$R/etc/pair/a"
    echo $n > "$R/etc/pair/.b" && mv "$R/etc/pair/.b" "$R/etc/pair/b"
    sleep 0.02
  done
}
pair_writer & writer=$!

# COMMAND... run with vg/root as / in a namespace of its own.
inside() {
  N=$work/newroot
  mkdir -p "$N"
  unshare -m --propagation private /bin/bash -c '
    set -e
    n=$1; shift
    mount /dev/vg/root "$n"
    mount --bind /usr "$n/usr"; mount -o remount,bind,ro "$n/usr"
    mount -t proc proc "$n/proc"
    mount --rbind /dev "$n/dev"
    mount --rbind /sys "$n/sys"
    mount --rbind /run "$n/run"
    mount --bind "$SNAPRSYNC" "$n/work/snaprsync"
    cd "$n"; mkdir -p old; pivot_root . old; umount -l /old; rmdir /old
    cd /
    exec "$@"' inside "$N" "$@"
}
LOOK='pair() { a=$(cat $1/a); sleep 0.2; b=$(cat $1/b); echo "$a $b"; }
echo "one $(pair /etc/pair)"; sleep 1; echo "two $(pair /etc/pair)"
test -r /proc/self/status && echo proc-live
touch /etc/pair/new 2>/dev/null || echo root-read-only
touch /tmp/from-command && echo tmp-writable
grep " / / " /proc/self/mountinfo'

sleep 0.5
t0=$SECONDS
out=$(inside /work/snaprsync --snap-config=/work/cfg.toml exec / -- /bin/sh -c "$LOOK" 2>"$work/exec.err"); rc=$?
one=$(echo "$out" | sed -n 's/^one //p'); two=$(echo "$out" | sed -n 's/^two //p')
detail="status $rc: one=$one two=$two $(tr '\n' ' ' < "$work/exec.err") $(grep -m3 -i 'error\|fail' "$R/work/snaprsync.log" | tr '\n' ' ')"
[ "$rc" = 0 ] && [ -n "$one" ] && [ "$one" = "$two" ] && result root-frozen ok "$one" || result root-frozen fail "$detail"
read -r a b <<< "$one"
[ -n "$a" ] && { [ "$a" = "$b" ] || [ "$a" = $((b + 1)) ]; } && result root-one-instant ok "$one" || result root-one-instant fail "$detail"
echo "$out" | grep -qx proc-live && echo "$out" | grep -qx root-read-only && echo "$out" | grep -qx tmp-writable && [ -e "$R/tmp/from-command" ] \
  && result live-and-read-only ok || result live-and-read-only fail "$out"
echo "$out" | grep ' / / ' | grep -q 'snaprsync-' && grep -q 'provider=lvm' "$R/work/snaprsync.log" && grep -q 'shown live: ' "$R/work/snaprsync.log" \
  && result root-is-the-snapshot ok "$(echo "$out" | grep ' / / ')" || result root-is-the-snapshot fail "$out $(tail -5 "$R/work/snaprsync.log")"
left=$(settled_lvs)
[ "$left" = 0 ] && result no-lv-left ok "exec $((SECONDS - t0))s" || result no-lv-left fail "$left snapshot LVs"

# The same command without snaprsync reads the live pair: it moves.
out=$(inside /bin/sh -c "$LOOK" 2>&1)
one=$(echo "$out" | sed -n 's/^one //p'); two=$(echo "$out" | sed -n 's/^two //p')
[ -n "$one" ] && [ "$one" != "$two" ] && result control-live-moves ok "$one / $two" || result control-live-moves fail "$out"

touch "$work/stop"; wait $writer
echo "VALUE elapsed ${SECONDS}s"
exit 0
