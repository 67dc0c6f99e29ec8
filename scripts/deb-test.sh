#!/usr/bin/env bash
# The Debian package, end to end (as root on Debian 12; scripts/test.sh runs
# it): builds it (scripts/deb.sh), installs it with dpkg -i, backs up a
# loop-mounted btrfs through the installed /usr/bin/snaprsync (a pull over
# rsync's remote-shell protocol) and runs its doctor, renders both man pages
# with man -l and no warning, completes `snaprsync cl` to `cleanup` in bash
# (and in fish; zsh reads its file), crashes a run (SIGKILL mid-transfer)
# so that a stale snapshot is left, then removes the package, which must
# clean that snapshot up and remove the empty snapshot directory, purges it
# and checks that nothing is left (the boot-time cleanup unit is installed,
# enabled, verified and its command run, then disabled). A second install shows that purging keeps a
# state directory that still holds a run record.
#
# A /var/lib/snaprsync that exists beforehand is moved aside for the test and
# put back afterwards; a snaprsync package that is already installed stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
passed=0
ok() { passed=$((passed + 1)); echo "deb: ok: $*"; }
fail() { echo "deb: FAILED: $*" >&2; exit 1; }

state=/var/lib/snaprsync
if dpkg-query -W -f='${Status}' snaprsync 2>/dev/null | grep -q 'install ok'; then
  fail "a snaprsync package is installed here already; remove it first (this test installs and purges its own)"
fi
work=$(mktemp -d /tmp/srs-deb.XXXXXX)
aside=
cleanup() {
  mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
  if dpkg-query -W -f='${Status}' snaprsync 2>/dev/null | grep -q 'install ok'; then dpkg -P snaprsync >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  if [ -n "$aside" ]; then rm -rf "$state" && mv "$aside" "$state"; fi
}
trap cleanup EXIT
if [ -e "$state" ]; then
  aside=$state.before-deb-test
  rm -rf "$aside"
  mv "$state" "$aside"
fi

deb=$(scripts/deb.sh | tail -n 1)
[ -f "$deb" ] || fail "scripts/deb.sh made no package"
built=$((SECONDS - started))
ok "built $(basename "$deb") in ${built}s"

# Some images tell dpkg to skip man pages and docs: this package's must land.
install_deb() {
  dpkg -i --path-include='/usr/share/man/*' --path-include='/usr/share/doc/snaprsync/*' "$deb" >/dev/null
}
install_deb
files=$(dpkg -L snaprsync | while read -r f; do if [ -f "$f" ]; then echo "$f"; fi; done)
for f in /usr/bin/snaprsync /usr/share/man/man1/snaprsync.1.gz /usr/share/man/man5/snaprsync.toml.5.gz \
  /usr/share/bash-completion/completions/snaprsync /usr/share/zsh/vendor-completions/_snaprsync \
  /usr/share/fish/vendor_completions.d/snaprsync.fish /usr/share/doc/snaprsync/config.sample.toml \
  /etc/logrotate.d/snaprsync; do
  grep -qx "$f" <<<"$files" || fail "$f is not installed"
done
# log = "auto" falls back to /var/log/snaprsync.log where there is no system log: rotated.
if command -v logrotate >/dev/null; then
  logrotate -d /etc/logrotate.d/snaprsync >/dev/null 2>&1 || fail "logrotate does not accept /etc/logrotate.d/snaprsync"
fi
[ "$(stat -c '%a %U' "$state")" = "700 root" ] || fail "$state is $(stat -c '%a %U' "$state"), not 700 root"
ok "installed: $(wc -l <<<"$files") files, $state 0700"

# The boot-time cleanup unit: installed, enabled, valid, and its command runs.
unit=/lib/systemd/system/snaprsync-cleanup.service
wants=/etc/systemd/system/multi-user.target.wants/snaprsync-cleanup.service
grep -qx "$unit" <<<"$files" || fail "$unit is not installed"
[ "$(readlink "$wants")" = "$unit" ] || fail "the package did not enable snaprsync-cleanup.service ($wants: $(readlink "$wants"))"
systemd-analyze verify "$unit" >"$work/verify.txt" 2>&1 || fail "systemd-analyze verify $unit: $(cat "$work/verify.txt")"
[ ! -s "$work/verify.txt" ] || fail "systemd-analyze verify $unit warned: $(cat "$work/verify.txt")"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
$exec_start >"$work/boot-cleanup.txt" 2>&1 || fail "the unit's command $exec_start failed: $(cat "$work/boot-cleanup.txt")"
ok "snaprsync-cleanup.service installed, enabled, verified; $exec_start ran"

version=$(/usr/bin/snaprsync version)
grep -q '^snaprsync ' <<<"$version" && grep -q '^rsync  *version' <<<"$version" || fail "snaprsync version printed: $version"
ok "snaprsync version: $(tr '\n' ' ' <<<"$version")"

# Both man pages render without a warning, and man finds them by name.
for page in /usr/share/man/man1/snaprsync.1.gz /usr/share/man/man5/snaprsync.toml.5.gz; do
  LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" >"$work/page.txt" 2>"$work/warnings.txt"
  [ ! -s "$work/warnings.txt" ] || fail "man -l $page warned: $(cat "$work/warnings.txt")"
  [ "$(wc -l <"$work/page.txt")" -gt 20 ] || fail "man -l $page rendered almost nothing"
done
[ "$(man -w snaprsync)" = /usr/share/man/man1/snaprsync.1.gz ] || fail "man -w snaprsync: $(man -w snaprsync 2>&1)"
[ "$(man -w 5 snaprsync.toml)" = /usr/share/man/man5/snaprsync.toml.5.gz ] || fail "man -w 5 snaprsync.toml"
ok "man pages render without warnings"

# Completions, from an empty directory so that no file name matches too.
mkdir "$work/empty"
got=$(cd "$work/empty" && bash -c '
  source /usr/share/bash-completion/bash_completion
  __load_completion snaprsync || exit 1
  COMP_LINE="snaprsync cl"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(snaprsync cl); COMP_CWORD=1
  _snaprsync snaprsync cl snaprsync
  echo "${COMPREPLY[*]}"')
[ "$got" = cleanup ] || fail "bash completed \"snaprsync cl\" to \"$got\", not cleanup"
ok "bash completes snaprsync cl to cleanup"
# exec: PATHs are files, the word after `--` is a command, then files again.
touch "$work/empty/afile"
got=$(cd "$work/empty" && bash -c '
  source /usr/share/bash-completion/bash_completion
  __load_completion snaprsync || exit 1
  t() { COMP_LINE=$1; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<<"$1"; COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=(); _snaprsync snaprsync "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"; echo "${COMPREPLY[*]}"; }
  t "snaprsync exec af"; t "snaprsync exec /srv -- bas"; t "snaprsync exec /srv -- bash af"')
[ "$(sed -n 1p <<<"$got")" = afile ] || fail "bash completed \"snaprsync exec af\" to: $got"
grep -qw bash <<<"$(sed -n 2p <<<"$got")" || fail "bash completed \"snaprsync exec /srv -- bas\" to: $got"
[ "$(sed -n 3p <<<"$got")" = afile ] || fail "bash completed \"snaprsync exec /srv -- bash af\" to: $got"
ok "bash completes exec's PATHs, the command after --, and its arguments"
got=$(cd "$work/empty" && fish -c 'complete -C"snaprsync cl"' | cut -f1)
grep -qx cleanup <<<"$got" || fail "fish completed \"snaprsync cl\" to: $got"
ok "fish completes snaprsync cl to cleanup"
got=$(cd "$work/empty" && fish -c 'for l in "snaprsync exec af" "snaprsync exec /srv -- bas" "snaprsync exec /srv -- bash af"
  echo (complete -C"$l" | cut -f1)
end')
grep -qw afile <<<"$(sed -n 1p <<<"$got")" || fail "fish completed \"snaprsync exec af\" to: $got"
grep -qw bash <<<"$(sed -n 2p <<<"$got")" || fail "fish completed \"snaprsync exec /srv -- bas\" to: $got"
grep -qw afile <<<"$(sed -n 3p <<<"$got")" || fail "fish completed \"snaprsync exec /srv -- bash af\" to: $got"
ok "fish completes exec's PATHs, the command after --, and its arguments"
zsh -n /usr/share/zsh/vendor-completions/_snaprsync || fail "zsh cannot read its completion"
ok "zsh reads its completion"

# A pull through the installed snaprsync from a loop-mounted btrfs.
truncate -s 300M "$work/btrfs.img"
mkfs.btrfs -q "$work/btrfs.img"
mkdir "$work/mnt"
mount -o loop "$work/btrfs.img" "$work/mnt"
mkdir -p "$work/mnt/data/sub"
for i in 1 2 3; do echo "file $i" >"$work/mnt/data/f$i"; done
head -c 1000000 /dev/urandom >"$work/mnt/data/sub/big"
ln -s f1 "$work/mnt/data/link"
printf 'state_dir = "%s"\nlog = "%s"\nlog_level = "info"\n' "$work/state" "$work/snaprsync.log" >"$work/config.toml"
printf '#!/bin/sh\nshift\nexec sh -c "$*"\n' >"$work/local-rsh"
chmod +x "$work/local-rsh"
rsync -a -e "$work/local-rsh" --rsync-path="/usr/bin/snaprsync --snap-config=$work/config.toml" \
  "localhost:$work/mnt/data/" "$work/dst/"
diff -r --no-dereference "$work/mnt/data" "$work/dst" || fail "the copy differs from the source"
grep -q 'summary run=snaprsync-.* provider=btrfs .*rsync_status=0' "$work/snaprsync.log" || fail "no snapshot summary: $(cat "$work/snaprsync.log")"
for _ in $(seq 100); do
  left=$(btrfs subvolume list "$work/mnt" | grep -c 'snaprsync-' || true)
  [ "$left" -eq 0 ] && break
  sleep 0.1
done
[ "$left" -eq 0 ] || fail "$left snapshot(s) left on $work/mnt"
ok "pull through /usr/bin/snaprsync from a btrfs snapshot, nothing left"
/usr/bin/snaprsync --snap-config="$work/config.toml" doctor "$work/mnt/data" >"$work/doctor.txt" || fail "doctor: $(cat "$work/doctor.txt")"
grep -q "^OK    $work/mnt/data: snapshot: made (btrfs)" "$work/doctor.txt" || fail "doctor: $(cat "$work/doctor.txt")"
ok "snaprsync doctor passes on the btrfs source"

# A crashed run (snaprsync killed with SIGKILL mid-transfer) leaves a stale
# snapshot and its record in the default state_dir.
head -c 20000000 /dev/urandom >"$work/mnt/data/slow"
printf 'log = "%s"\nlog_level = "info"\n' "$work/crash.log" >"$work/crash.toml"
rsync -a --bwlimit=500 -e "$work/local-rsh" --rsync-path="/usr/bin/snaprsync --snap-config=$work/crash.toml" \
  "localhost:$work/mnt/data/" "$work/crash-dst/" >/dev/null 2>&1 &
client=$!
for _ in $(seq 200); do
  btrfs subvolume list "$work/mnt" | grep -q 'snaprsync-' && break
  sleep 0.1
done
victim=$(pgrep -f -- "^/usr/bin/snaprsync --snap-config=$work/crash.toml --server" || true)
[ -n "$victim" ] || fail "no snaprsync run to crash"
kill -9 $victim
wait "$client" || true
stale=$(btrfs subvolume list "$work/mnt" | grep -c 'snaprsync-' || true)
[ "$stale" -ge 1 ] || fail "the crashed run left no snapshot to clean up"
ok "a crashed run left $stale stale snapshot(s)"

# Remove runs cleanup first, then removes the empty snapshot directory it
# made and says so; it keeps the state directory; purge takes it, and nothing is left.
dpkg -r snaprsync >/dev/null 2>"$work/remove.txt"
[ ! -e /usr/bin/snaprsync ] || fail "dpkg -r left /usr/bin/snaprsync"
[ -d "$state" ] || fail "dpkg -r removed $state; only a purge may"
left=$(btrfs subvolume list "$work/mnt" | grep -c 'snaprsync-' || true)
[ "$left" -eq 0 ] || fail "dpkg -r left $left stale snapshot(s): $(cat "$work/remove.txt")"
[ ! -e "$work/mnt/.snaprsync" ] || fail "dpkg -r left the empty $work/mnt/.snaprsync: $(cat "$work/remove.txt")"
grep -q "removed the empty snapshot directory $work/mnt/.snaprsync" "$work/remove.txt" || fail "dpkg -r did not say what it removed: $(cat "$work/remove.txt")"
ok "remove cleaned up the crashed run's snapshot and the empty $work/mnt/.snaprsync"
umount "$work/mnt"
printf '{"stamp":"snaprsync-x"}\n' >"$state/history.jsonl"
dpkg -P snaprsync >/dev/null
[ ! -e "$wants" ] || fail "purge left $wants"
! dpkg-query -W -f='${Status}' snaprsync 2>/dev/null | grep -q 'ok' || fail "dpkg still knows snaprsync"
while read -r f; do
  [ ! -e "$f" ] || fail "purge left $f"
done <<<"$files"
[ ! -e "$state" ] || fail "purge left $state"
[ ! -e /usr/share/doc/snaprsync ] || fail "purge left /usr/share/doc/snaprsync"
ok "removed and purged: nothing left"

# Purging keeps a state directory that holds a run record.
install_deb
echo 'stamp = "snaprsync-20260101T000000Z-p1"' >"$state/snaprsync-20260101T000000Z-p1.toml"
dpkg -P snaprsync >/dev/null 2>"$work/purge.txt"
# (cleanup sets a record it cannot read aside as .corrupt: kept as well)
ls "$state"/snaprsync-20260101T000000Z-p1.* >/dev/null 2>&1 || fail "purge removed a state directory that held a record"
grep -q "kept $state" "$work/purge.txt" || fail "purge did not say it kept $state: $(cat "$work/purge.txt")"
rm -rf "$state"
ok "purge keeps a state directory with a record in it, and says so"

echo "deb: built in ${built}s, installed, tested and purged in $((SECONDS - started - built))s"
echo "test result: ok. $passed passed; 0 failed; (Debian package)"
