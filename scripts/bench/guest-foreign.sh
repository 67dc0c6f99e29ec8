#!/bin/bash
# Inside the QEMU guest (scripts/bench.sh, BENCH_ONLY="foreign-zfs" or
# "foreign-lvm", through scripts/guest.sh run): the create time of a run
# against the other tools' volumes the machine holds.
#
#   guest-foreign.sh zfs ROUNDS "0 1000 10000" [MEASURED [BASE_MAX]]
#   guest-foreign.sh lvm ROUNDS "0 200" [MEASURED [BASE_MAX]]
#
# MEASURED (default: all the counts) says at which counts runs are timed;
# the others are only made. The base build runs only up to BASE_MAX (default:
# at every count): main's ZFS sweep lists every snapshot, about 22 ms each
# under this emulation, twice a run (the sweep and the remover).
#
# OUT, the directory shared with the host (GUEST_SHARE), holds bin/snaprsync
# (and bin/snaprsync-base, the build to compare, if there); results go to
# OUT/guest-KIND.csv as
# "kind,build,count,round,create_ms,wall_s,cpu_s", one line per timed run.
#
# zfs: GUEST_DISKS is the source pool's disk (blank), then one disk per
# step of the counts, each a pool "foreignK" holding that step's snapshots:
# 100 datasets (foreignK/set and 99 children), snapshotted together by one
# `zfs snapshot -r` (100 snapshots a command). Those disks are kept by the
# caller, so a second run imports them instead of making them again. The
# counts are measured one after another, each step's pool imported on top of
# the ones before (`zfs list -t snapshot` of every pool is what a run used
# to pay); within a count, the builds alternate round by round.
#
# lvm: GUEST_DISKS is one blank disk per count: on each, a VG of its own
# ("benchN") with a thin pool, the source a thin LV (ext4) mounted, and N thin
# LVs more, as a virtualisation host holds (thin LVs are cheap). All the
# counts exist at once, so their runs interleave: every round runs each count
# and build once, in an order that turns round by round; "lvcreate" is the
# run's one lvcreate alone, timed the same way (LVM's own floor).
set -u
kind=$1 rounds=$2 counts=$3 measured=${4:-$3} base_max=${5:-} out=$GUEST_SHARE
work=/tmp/bench
mkdir -p "$work/state" "$work/dst"
builds=(snaprsync)
[ -x "$out/bin/snaprsync-base" ] && builds+=(base)
csv=$out/guest-$kind.csv
: >"$csv"
say() { echo "guest-foreign: $(date +%T) $*" >&2; }
printf 'state_dir = "%s"\non_snapshot_failure = "fail"\nlog_level = "info"\n' "$work/state" >"$work/cfg.toml"

# One timed run of build $1 at count $2, round $3, copying $SRC (lvm: the
# source of that count's VG).
declare -A SRC_OF=()
run() {
  local SRC=${SRC_OF[$2]:-$SRC}
  # LVM's floor: the one `lvcreate` of a thin snapshot that a run makes, alone
  # (as snaprsync runs it, tagged; removed after, untimed).
  if [ "$1" = lvcreate ]; then
    local ms
    t0=$(date +%s%N)
    lvcreate -q -s -kn -n "floor$3" --addtag floor "bench$2/src" >/dev/null || { say "lvcreate in bench$2 failed"; return 1; }
    t1=$(date +%s%N)
    lvremove -q -y "bench$2/floor$3" >/dev/null
    ms=$(( (t1 - t0) / 1000000 ))
    [ "$3" = 0 ] || echo "$kind,lvcreate,$2,$3,$ms,$(echo "scale=3; $ms / 1000" | bc),0" >>"$csv"
    return 0
  fi
  local bin=$out/bin/snaprsync t0 t1 cpu line
  [ "$1" = snaprsync ] || bin=$out/bin/snaprsync-base
  rm -rf "$work/dst"; mkdir "$work/dst"
  : >"$work/run.log"
  t0=$(date +%s.%N)
  /usr/bin/time -o "$work/cpu" -f %U,%S "$bin" --snap-config="$work/cfg.toml" --snap-log-file="$work/run.log" -a "$SRC/" "$work/dst/" ||
    { say "run $1 $2 $3 failed: $(tail -3 "$work/run.log")"; return 1; }
  t1=$(date +%s.%N)
  # The background remover, before the next run (it would overlap it).
  for _ in $(seq 600); do pgrep -f -- '__remove-run' >/dev/null || break; sleep 0.05; done
  line=$(grep -o 'create_ms=[0-9]*' "$work/run.log" | tail -1)
  cpu=$(awk -F, '{print $1 + $2}' "$work/cpu")
  [ "$3" = 0 ] || echo "$kind,$1,$2,$3,${line#create_ms=},$(echo "$t1 - $t0" | bc),$cpu" >>"$csv"
}

# Every build, ROUNDS rounds (and an untimed warm-up, round 0) at count $1,
# if it is one of MEASURED.
measure() {
  local r b builds=("${builds[@]}")
  [[ " $measured " == *" $1 "* ]] || return 0
  [ -z "$base_max" ] || [ "$1" -le "$base_max" ] || builds=(snaprsync)
  for r in $(seq 0 "$rounds"); do
    if [ $((r % 2)) = 0 ]; then order=("${builds[@]}"); else order=($(printf '%s\n' "${builds[@]}" | tac)); fi
    for b in "${order[@]}"; do run "$b" "$1" "$r" || exit 1; done
  done
  say "$kind at $1: $rounds rounds done"
}

# A partition on disk $1 (given a whole disk, zpool would wait for udev).
part() {
  [ -b "${1}1" ] || printf 'label: gpt\n,,\n' | sfdisk -q "$1" >/dev/null
  for _ in $(seq 50); do [ -b "${1}1" ] && break; sleep 0.1; done
}

if [ "$kind" = zfs ]; then
  disks=($GUEST_DISKS)
  part "${disks[0]}"
  zpool create -f -o cachefile=none -O mountpoint="$work/src" src "${disks[0]}1" && zfs create src/data || exit 1
  SRC=$work/src/data
  for f in 1 2 3 4 5; do head -c 4096 /dev/urandom >"$SRC/f$f"; done
  prev=0 k=0
  for n in $counts; do
    if [ "$n" -gt 0 ]; then
      k=$((k + 1)) pool=foreign$k want=$((n - prev)) disk=${disks[$k]}
      part "$disk"
      if ! zpool import -f -o cachefile=none -N -d "${disk}1" "$pool" 2>/dev/null; then
        say "making pool $pool"
        zpool create -f -o cachefile=none -O mountpoint=none -O canmount=off "$pool" "${disk}1" || exit 1
        zfs create "$pool/set" || exit 1
        for j in $(seq 99); do zfs create "$pool/set/d$j" || exit 1; done
      fi
      have=$(zfs list -H -t snapshot -o name -r "$pool" | wc -l)
      say "$pool holds $have snapshots, making $((want - have)) more"
      s=$((have / 100))
      while [ "$have" -lt "$want" ]; do
        s=$((s + 1))
        zfs snapshot -r "$pool/set@autosnap_$s" || exit 1
        have=$((have + 100))
      done
      prev=$n
    fi
    echo "zfs_$n=$(zfs list -H -t snapshot -o name | wc -l) snapshots on the machine" >>"$out/guest-meta.env"
    measure "$n"
  done
  for p in $(zpool list -H -o name | grep '^foreign'); do zpool export "$p"; done
  zpool destroy src
elif [ "$kind" = lvm ]; then
  disks=($GUEST_DISKS) k=0
  for n in $counts; do
    vg=bench$n disk=${disks[$k]} k=$((k + 1))
    pvcreate -q "$disk" && vgcreate -q "$vg" "$disk" && lvcreate -q -L 1G -T "$vg/pool" && lvcreate -q -V 256M -T "$vg/pool" -n src || exit 1
    mkfs.ext4 -q "/dev/$vg/src" && mkdir -p "$work/src-$n" && mount "/dev/$vg/src" "$work/src-$n" || exit 1
    SRC_OF[$n]=$work/src-$n
    for f in 1 2 3 4 5; do head -c 4096 /dev/urandom >"$work/src-$n/f$f"; done
    for j in $(seq "$n"); do lvcreate -q -an -kn -V 64M -T "$vg/pool" -n "vm$j" >/dev/null || exit 1; done
    echo "lvm_$n=$(lvs --noheadings "$vg" | wc -l) LVs in the VG $vg" >>"$out/guest-meta.env"
  done
  say "volume groups made: $(vgs --noheadings -o vg_name,lv_count | tr -s ' ' | tr '\n' ';')"
  # Interleaved: each round every count and build once, the order turned each round.
  builds+=(lvcreate)
  cells=()
  for n in $measured; do
    for b in "${builds[@]}"; do
      [ "$b" = snaprsync ] || [ -z "$base_max" ] || [ "$n" -le "$base_max" ] || continue
      cells+=("$b $n")
    done
  done
  for r in $(seq 0 "$rounds"); do
    m=${#cells[@]} order=()
    for i in $(seq 0 $((m - 1))); do
      j=$(( (i + r) % m ))
      [ $((r % 2)) = 0 ] || j=$(( (m - 1 - i + r) % m ))
      order+=("${cells[$j]}")
    done
    for c in "${order[@]}"; do
      read -r b n <<<"$c"
      run "$b" "$n" "$r" || exit 1
    done
    say "lvm: round $r of $rounds done"
  done
  for n in $counts; do umount "$work/src-$n"; done
fi
