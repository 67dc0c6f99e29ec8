#!/usr/bin/env bash
# Installs the Debian packages snaprsync needs (run as root on Debian 12):
#   scripts/deps.sh           what the demo needs
#   scripts/deps.sh --tests   plus the real servers the test suites drive,
#                             rustfmt and clippy, and what the Debian
#                             package's test needs (dpkg-dev for cargo-deb,
#                             man-db, the shells it completes in), systemd
#                             and prometheus for their checkers,
#                             systemd-container (systemd-nspawn)
set -euo pipefail
# libclang-dev: the btrfs ioctl crate generates its kernel bindings at build time.
pkgs=(rsync btrfs-progs util-linux procps libclang-dev)
if [ "${1:-}" = --tests ]; then
  pkgs+=(openssh-server openssh-client dirvish rsnapshot backuppc g++ tar restic borgbackup sqlite3)
  pkgs+=(dpkg-dev man-db bash-completion zsh fish)
  # systemd-analyze checks the boot-time cleanup unit; promtool (in Debian's
  # prometheus) checks the metrics file.
  pkgs+=(systemd prometheus)
  # systemd-nspawn: a real container runtime bind-mounting a subvolume's directory (tests/bind.rs).
  pkgs+=(systemd-container)
  # rpm: scripts/rpm-test.sh lists, verifies and installs the RPM into a
  # scratch root (a busybox shell); jq: scripts/rpm.sh reads cargo's metadata.
  pkgs+=(rpm jq busybox-static)
  # rustfmt and clippy of the toolchain in use: rustup's components, or the
  # Debian packages that go with cargo-web.
  if command -v rustup >/dev/null; then
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
      rustup component add rustfmt clippy
    fi
  else
    pkgs+=(rustfmt-web rust-web-clippy)
  fi
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Rust toolchain: rustup's if present, else Debian 12's current one.
command -v cargo >/dev/null || missing+=(cargo-web rustc-web)
[ ${#missing[@]} -gt 0 ] || exit 0

export DEBIAN_FRONTEND=noninteractive
# The tests run the servers they need themselves: keep the packages'
# services (sshd, apache2, backuppc) from starting on install.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
fi
trap '[ -z "$made_policy" ] || rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
