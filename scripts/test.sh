#!/usr/bin/env bash
# Runs every test: the Windows build with its tests under wine, then the unit
# and property tests and the end-to-end, fault-injection, protect-args and
# restricted-mode suites (real sshd, rsync, dirvish, rsnapshot, BackupPC on
# loop-mounted btrfs; needs root), and the Debian package built, installed,
# used and purged (scripts/deb-test.sh). Ends with one line: "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --tests
log=$(mktemp)
trap 'rm -f "$log"' EXIT

scripts/windows.sh setup
scripts/windows.sh test 2>&1 | tee -a "$log"

cargo build --locked --all-targets
# The fuzz targets are built, not run, so that they keep compiling.
cargo build --locked --manifest-path fuzz/Cargo.toml --bins
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --check
fi
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --locked --all-targets -- -D warnings
fi
rm -f target/tmp/faults-table.md
cargo test --locked --all-targets -- --test-threads=2 2>&1 | tee -a "$log"
# The fault-injection table (README "Faults"), as this run measured it.
if [ -f target/tmp/faults-table.md ]; then
  cat target/tmp/faults-table.md
fi

scripts/deb-test.sh 2>&1 | tee -a "$log"

awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log"
