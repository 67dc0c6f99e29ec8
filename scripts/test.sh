#!/usr/bin/env bash
# Runs every test: the Windows build with its tests under wine, then the unit
# and property tests and the integration tests (tests/main.rs: end-to-end,
# fault-injection, protect-args and restricted-mode suites with real sshd,
# rsync, dirvish, rsnapshot, BackupPC on loop-mounted btrfs; needs root).
# LVM and ZFS run in a QEMU guest (scripts/guest.sh); the Debian package is built,
# installed, used and purged (scripts/deb-test.sh), and the RPM built,
# verified, installed into a scratch root and erased (scripts/rpm-test.sh). rustfmt and clippy must
# pass too. Ends with one line: "N passed, N failed".
#
# FAULT_SEED=N replays the random points of the fault-injection suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --tests
scripts/guest.sh setup
log=$(mktemp)
trap 'rm -f "$log"' EXIT

scripts/windows.sh setup
scripts/windows.sh test 2>&1 | tee -a "$log"

cargo build --locked --workspace --all-targets --features integration
# The fuzz targets are built, not run, so that they keep compiling.
cargo build --locked --manifest-path fuzz/Cargo.toml --bins
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets --features integration -- -D warnings

# The seed is set here so that the table's header can name it.
: "${FAULT_SEED:=$(date +%s)}"
export FAULT_SEED
rows=${CARGO_TARGET_DIR:-target}/tmp/faults
rm -rf "$rows"
# A failure still gets the table and the closing line.
tests_rc=0
cargo test --locked --workspace --all-targets --features integration --no-fail-fast -- --test-threads=2 --skip guest_lab:: --skip lvm::lvm_snapshots_in_the_guest --skip lvm::exec_of_an_lvm_root_in_the_guest --skip zfs::zfs_snapshots_in_the_guest 2>&1 | tee -a "$log" || tests_rc=$?
# The guest lab's tests on their own: QEMU's software emulation takes both
# cores, which would distort the timing of the fault tests above.
guest_started=$(date +%s)
cargo test --locked --features integration --test main --no-fail-fast -- --test-threads=1 guest_lab:: lvm::lvm_snapshots_in_the_guest lvm::exec_of_an_lvm_root_in_the_guest zfs::zfs_snapshots_in_the_guest 2>&1 | tee -a "$log" || tests_rc=$?
echo "guest lab tests (LVM and ZFS in QEMU): $(( $(date +%s) - guest_started )) s"
# The fault-injection table (README "Faults"), as this run measured it: one
# row per fault test, in the table's order.
if [ -d "$rows" ]; then
  printf '\nfault injection (FAULT_SEED=%s)\n' "$FAULT_SEED"
  echo '| fault | trials | leftovers | snapshot removed after (median / max) | note |'
  echo '|---|---|---|---|---|'
  find "$rows" -name '*.md' | sort | xargs cat
fi

# The Debian package: built, installed, used and purged.
deb_rc=0
scripts/deb-test.sh 2>&1 | tee -a "$log" || deb_rc=$?
# The RPM: built from the same file list, verified, installed into a scratch root and erased.
scripts/rpm-test.sh 2>&1 | tee -a "$log" || deb_rc=$?

summary_rc=0
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$log" || summary_rc=$?
[ "$tests_rc" = 0 ] && [ "$deb_rc" = 0 ] && [ "$summary_rc" = 0 ]
