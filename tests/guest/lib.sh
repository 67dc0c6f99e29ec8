# What the guest scenarios (tests/guest/*.sh) share; sourced, not run. Needs
# TESTBED, SNAPRSYNC and LOCAL_RSH in the environment and $work set.

# One "CHECK <name> ok" or "CHECK <name> FAIL <detail>" line; a passing
# check's detail becomes "VALUE <name> <detail>".
result() {
  if [ "$2" = ok ]; then
    echo "CHECK $1 ok"
    [ -z "${3:-}" ] || echo "VALUE $1 $3"
  else
    echo "CHECK $1 FAIL ${3:-}"
  fi
}
torture() { "$TESTBED" torture "$@"; }
quiet() { "$@" >/dev/null 2>&1; }

# LVM: snaprsync's snapshot LVs in the volume group vg, and those left once a
# background removal has had up to 30 s.
snap_lvs() { lvs --noheadings -o lv_name vg 2>/dev/null | grep -c snaprsync- || true; }
settled_lvs() {
  for _ in $(seq 300); do [ "$(snap_lvs)" = 0 ] && break; sleep 0.1; done
  snap_lvs
}

# $work/rsnapshot.conf: rsnapshot (its default --relative) backing up SOURCE
# of localhost through snaprsync with $work/cfg.toml, over a local remote
# shell (LOCAL_RSH: no sshd in the guest), into $work/rsnap/alpha.0/host/.
rsnapshot_conf() {
  local T
  T=$(printf '\t')
  cat > "$work/rsnapshot.conf" <<CONF
config_version${T}1.2
snapshot_root${T}$work/rsnap/
no_create_root${T}0
cmd_cp${T}/bin/cp
cmd_rm${T}/bin/rm
cmd_rsync${T}/usr/bin/rsync
cmd_ssh${T}$LOCAL_RSH
lockfile${T}$work/rsnapshot.pid
rsync_long_args${T}--delete --numeric-ids --relative --delete-excluded --rsync-path="$SNAPRSYNC --snap-config=$work/cfg.toml"
retain${T}alpha${T}2
backup${T}localhost:$1${T}host/
CONF
}

# $work/cfg.toml: snaprsync's config for a scenario (removal waited for, or
# as REMOVAL says; a debug log in $work/snaprsync.log), with the lines given added.
config() {
  cat > "$work/cfg.toml" <<CFG
rsync_path = "/usr/bin/rsync"
state_dir = "$work/state"
log_file = "$work/snaprsync.log"
log_level = "debug"
snapshot_removal = "${REMOVAL:-wait}"
${1:-}
CFG
  chmod 644 "$work/cfg.toml"
}

# Waits until each torture directory holds its first whole generation (the
# default 200 files), up to 30 s: under emulation a writer can take longer
# than a second to get there, and a snapshot of an empty series proves nothing.
started() {
  local d
  for d in "$@"; do
    for _ in $(seq 300); do [ -e "$d/f0199" ] && break; sleep 0.1; done
  done
}

# $work/forced-NAME: a remote shell for `rsync -e` that stands in for sshd's
# forced command: snaprsync in restricted mode, allowed DIR, with the
# client's command in SSH_ORIGINAL_COMMAND.
forced() {
  cat > "$work/forced-$1" <<RSH
#!/bin/sh
shift
SSH_ORIGINAL_COMMAND="\$*" exec "$SNAPRSYNC" --snap-config="$work/cfg.toml" --snap-restrict --snap-allow="$2"
RSH
  chmod 755 "$work/forced-$1"
}
