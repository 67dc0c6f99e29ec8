#!/bin/sh
# The wrapper a user would write by hand, for comparison with snaprsync:
#
#     rsync -a --rsync-path="naive-rsync.sh /mnt" host:/mnt/data/ dst/
#
# It snapshots the btrfs filesystem mounted at $1, rewrites every argument
# under $1 to the same path in the snapshot, runs rsync, then deletes the
# snapshot. What it gets wrong, on purpose (this is the baseline):
#  - it snapshots on every call, also as the receiving side or for --version;
#  - with -R/--relative the backup's names include the snapshot directory;
#  - with -s/--protect-args the paths arrive on stdin, not in argv: nothing is
#    rewritten and rsync silently reads the live files;
#  - no cleanup on a signal or if the wrapper is killed: the snapshot stays;
#  - subvolumes nested below the source arrive as empty directories;
#  - one fixed filesystem, named by hand.
mnt=$1
shift
snap=$mnt/.naive-snap-$$
btrfs subvolume snapshot -r "$mnt" "$snap" >/dev/null || exit 1
n=$#
while [ "$n" -gt 0 ]; do
    a=$1
    shift
    case $a in
        "$mnt"/*) a=$snap/${a#"$mnt"/} ;;
    esac
    set -- "$@" "$a"
    n=$((n - 1))
done
rsync "$@"
rc=$?
btrfs subvolume delete "$snap" >/dev/null
exit $rc
