#!/usr/bin/env bash
# Installs the Debian packages snaprsync's demo and tests use (run as root).
set -euo pipefail
pkgs=(rsync btrfs-progs openssh-server openssh-client dirvish rsnapshot util-linux procps backuppc)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A Rust toolchain: rustup's if present, else Debian 12's current one.
if ! command -v cargo >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends cargo-web rustc-web >/dev/null
fi
