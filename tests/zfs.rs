//! The ZFS provider end to end, in one boot of the guest lab (the host kernel
//! has no ZFS; `scripts/guest.sh setup` has dkms build the module for the
//! guest kernel): `tests/guest/zfs.sh` makes a pool on a raw disk with a
//! dataset and a child dataset, runs the consistency writer in both and a
//! counter pair across them, and backs them up through snaprsync (plain,
//! `--relative` and real rsnapshot). Plain rsync under the same writers is
//! shown torn across the datasets, so that check can fail.
//! A bind mount of a directory inside a dataset is read from its snapshot
//! (that directory alone). Then the failures:
//! sources in two pools, a full pool, a non-root user with a `zfs allow`
//! delegation, another tool's `zfs destroy` while rsync reads, a clone that
//! blocks removal, other tools' snapshots left alone, and kill -9 then `list`
//! and the sweep (once by hand, then ten times at random points).

use crate::support::guest::{scenario, Guest, Report};

/// Every check the scenario makes, in order.
const CHECKS: &[&str] = &[
    "setup",
    "consistent",
    "consistent-child",
    "across-datasets",
    "one-command",
    "relative-names",
    "no-snapshot-left",
    "provider-zfs",
    "bind-mount",
    "bind-mount-no-snapshot-left",
    "snapdir-visible",
    "rsnapshot",
    "control-torn-across",
    "two-pools",
    "pool-full",
    "pool-full-no-snapshot-left",
    "permission-denied",
    "permission-no-snapshot-left",
    "held-against-destroy",
    "busy-clone",
    "busy-swept-after-clone-gone",
    "others-untouched",
    "restricted-pull",
    "list-shows-leftover",
    "kill-then-sweep",
    "sweep-lists-the-dead-runs-datasets",
    "kill-random-x10",
];

#[test]
fn zfs_snapshots_in_the_guest() {
    let script = scenario("zfs.sh");
    let out = Guest::default().zfs().disk("pool", 1024).disk("other", 128).mem_mb(1536).timeout_secs(900).exec(&script);
    let report = Report::parse(&out);
    report.assert_all_ok(CHECKS, &out);
    assert_eq!(out.code(), Some(0), "{}", out.report());
    assert!(report.value("permission-denied", &out).contains("root"), "the refusal names the fix\n{}", out.report());
    assert!(report.value("busy-clone", &out).contains("clone"), "the failure names the clone\n{}", out.report());
    // For the record of a run (cargo test -- --nocapture).
    eprintln!("kill-random-x10: {}", report.value("kill-random-x10", &out));
}
