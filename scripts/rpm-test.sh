#!/usr/bin/env bash
# The RPM, with Debian's rpm (as root on Debian 12; scripts/test.sh runs it):
# builds it (scripts/rpm.sh), checks its digests (rpm -K) and its header,
# checks that it holds exactly the files of the .deb (scripts/deb.sh; the
# one difference is the systemd unit's directory, /usr/lib/systemd/system
# on RPM distributions), and installs it with `rpm --root --nodeps -i` into a
# scratch root that has only a shell (busybox), systemctl and the libraries
# they and snaprsync need. There its scriptlets run as on Fedora: the state
# directory is made 0700 and the boot-time cleanup unit is enabled; rpm -V
# verifies every file; the installed binary runs; `rpm -e` runs
# `snaprsync cleanup`, disables the unit and removes every file.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
passed=0
ok() { passed=$((passed + 1)); echo "rpm: ok: $*"; }
fail() { echo "rpm: FAILED: $*" >&2; exit 1; }
command -v rpm >/dev/null || fail "rpm is missing (scripts/deps.sh --tests installs it)"

work=$(mktemp -d /tmp/srs-rpm.XXXXXX)
root=$work/root
cleanup() {
  mountpoint -q "$root/proc" 2>/dev/null && umount "$root/proc"
  rm -rf "$work"
}
trap cleanup EXIT

pkg=$(scripts/rpm.sh | tail -n 1)
[ -f "$pkg" ] || fail "scripts/rpm.sh made no package"
deb=$(scripts/deb.sh 2>/dev/null | tail -n 1)
[ -f "$deb" ] || fail "scripts/deb.sh made no package"
ok "built $(basename "$pkg") (and $(basename "$deb")) in $((SECONDS - started))s"

# Digests and header.
rpm -Kv "$pkg" >"$work/k.txt" 2>&1 || fail "rpm -K: $(cat "$work/k.txt")"
for d in "Header SHA256 digest: OK" "Payload SHA256 digest: OK"; do
  grep -qF "$d" "$work/k.txt" || fail "rpm -K: no \"$d\": $(cat "$work/k.txt")"
done
version=$(rpm -qp --qf '%{NAME} %{VERSION} %{ARCH} %{LICENSE}' "$pkg")
[ "$version" = "snaprsync $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1) x86_64 MIT OR Apache-2.0" ] ||
  fail "header: $version"
rpm -qp --requires "$pkg" | grep -qx rsync || fail "the RPM does not require rsync"
rpm -qp --scripts "$pkg" | grep -q '/usr/bin/snaprsync cleanup' || fail "%preun does not run snaprsync cleanup"
[ "$(rpm -qp --configfiles "$pkg")" = /etc/logrotate.d/snaprsync ] || fail "config files: $(rpm -qp --configfiles "$pkg")"
ok "rpm -K: digests OK; header $version; requires rsync; /etc/logrotate.d/snaprsync is its config file"

# The same files as the .deb (cargo-deb adds Debian's copyright file, which
# the RPM's License tag stands for).
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' |
  sed 's|^/lib/systemd/system/|/usr/lib/systemd/system/|' | grep -vx /usr/share/doc/snaprsync/copyright | sort >"$work/deb.list"
rpm -qlp "$pkg" | sort >"$work/rpm.list"
diff "$work/deb.list" "$work/rpm.list" >"$work/diff.txt" || fail "the .deb and the .rpm hold different files (< deb, > rpm): $(cat "$work/diff.txt")"
grep -qx /usr/lib/systemd/system/snaprsync-cleanup.service "$work/rpm.list" || fail "no systemd unit in the RPM"
ok "the RPM holds the .deb's $(wc -l <"$work/rpm.list") files"

# A scratch root: a shell, systemctl, and the libraries they and snaprsync link.
mkdir -p "$root/bin" "$root/proc" "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
cp /usr/bin/busybox "$root/bin/busybox"
for a in sh chown chmod awk sort ls wc rmdir mkdir cat; do ln -s busybox "$root/bin/$a"; done
# The libraries, where ldd finds them (the binaries are the host's).
for f in $(ldd /usr/bin/systemctl target/release/snaprsync | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u); do
  mkdir -p "$root$(dirname "$f")" && cp -L "$f" "$root$f"
done
mkdir -p "$root/usr/bin" && cp /usr/bin/systemctl "$root/usr/bin/systemctl"
mount -t proc proc "$root/proc"

rpm --root "$root" --initdb
# Debian's rpm says twice that Debian installs with dpkg: that is all it may say.
debian_note() { grep -v -e 'RPM should not be used directly' -e 'assuming you know what you are doing' "$1" || true; }
rpm --root "$root" --nodeps -i "$pkg" >"$work/install.txt" 2>&1 || fail "rpm -i: $(cat "$work/install.txt")"
[ -z "$(debian_note "$work/install.txt")" ] || fail "rpm -i said: $(cat "$work/install.txt")"
while read -r f; do [ -f "$root$f" ] || fail "$f is not installed"; done <"$work/rpm.list"
rpm --root "$root" -V --nodeps snaprsync >"$work/verify.txt" 2>&1 || fail "rpm -V: $(cat "$work/verify.txt")"
[ "$(stat -c '%a %U' "$root/var/lib/snaprsync")" = "700 root" ] || fail "/var/lib/snaprsync is $(stat -c '%a %U' "$root/var/lib/snaprsync")"
wants=$root/etc/systemd/system/multi-user.target.wants/snaprsync-cleanup.service
[ "$(readlink "$wants")" = /usr/lib/systemd/system/snaprsync-cleanup.service ] || fail "%post did not enable the unit ($wants: $(readlink "$wants"))"
ok "rpm --root -i: $(wc -l <"$work/rpm.list") files, rpm -V clean, /var/lib/snaprsync 0700, snaprsync-cleanup.service enabled"

got=$("$root/usr/bin/snaprsync" version)
grep -q '^snaprsync ' <<<"$got" || fail "the installed snaprsync version printed: $got"
# Whole, then its first line: a pipe into head could end rsync by SIGPIPE.
got=$("$root/usr/bin/snaprsync" --version)
got=${got%%$'\n'*}
grep -q '^rsync  *version' <<<"$got" || fail "the installed snaprsync --version printed: $got"
ok "the installed binary runs: $(head -n 1 <<<"$("$root/usr/bin/snaprsync" version)"); --version is rsync's"

rpm --root "$root" -e snaprsync >"$work/erase.txt" 2>&1 || fail "rpm -e: $(cat "$work/erase.txt")"
[ -z "$(debian_note "$work/erase.txt")" ] || fail "rpm -e said: $(cat "$work/erase.txt")"
while read -r f; do [ ! -e "$root$f" ] || fail "rpm -e left $f"; done <"$work/rpm.list"
[ ! -e "$wants" ] && [ ! -L "$wants" ] || fail "rpm -e left $wants"
[ -d "$root/var/lib/snaprsync" ] || fail "rpm -e removed /var/lib/snaprsync (it may hold run records)"
! rpm --root "$root" -q snaprsync >/dev/null 2>&1 || fail "rpm still knows snaprsync"
ok "rpm -e: %preun ran without a word, the unit is disabled, every file is gone, the state directory stays"

echo "rpm: done in $((SECONDS - started))s"
echo "test result: ok. $passed passed; 0 failed; (RPM package)"
