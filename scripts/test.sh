#!/usr/bin/env bash
# Runs every test: the Windows build with its tests under wine, then the unit
# and property tests and the integration tests (tests/main.rs: end-to-end,
# fault-injection, protect-args and restricted-mode suites with real sshd,
# rsync, dirvish, rsnapshot, BackupPC on loop-mounted btrfs; needs root).
# Ends with one line: "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --tests
log=$(mktemp)
trap 'rm -f "$log"' EXIT

scripts/windows.sh setup
scripts/windows.sh test 2>&1 | tee -a "$log"

cargo build --locked --workspace --all-targets
# The fuzz targets are built, not run, so that they keep compiling.
cargo build --locked --manifest-path fuzz/Cargo.toml --bins
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all --check
fi
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --locked --workspace --all-targets -- -D warnings
fi
table=${CARGO_TARGET_DIR:-target}/tmp/faults-table.md
rm -f "$table"
cargo test --locked --workspace --all-targets -- --test-threads=2 2>&1 | tee -a "$log"
# The fault-injection table (README "Faults"), as this run measured it.
if [ -f "$table" ]; then
  cat "$table"
fi

awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log"
