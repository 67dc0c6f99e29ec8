#!/usr/bin/env bash
# Runs every test: unit and property tests, the end-to-end suite (real sshd,
# rsync, dirvish, rsnapshot on loop-mounted btrfs; needs root), and the Windows
# build with its tests under wine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --locked --all-targets
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --locked --all-targets -- -D warnings
fi
cargo test --locked -- --test-threads=2
if [ -x scripts/windows.sh ]; then
  scripts/windows.sh setup
  scripts/windows.sh test
fi
