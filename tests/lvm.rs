//! The LVM provider end to end, in one boot of the guest lab (the host kernel
//! has no device-mapper): `tests/guest/lvm.sh` runs snaprsync on thick ext4,
//! thick XFS and thin XFS volumes under the consistency writer, with
//! `--relative` and through real rsnapshot, a volume nested below a source, a
//! bind mount of a directory inside a volume (only that directory, one instant), an overflowing thick
//! snapshot (its sentence said once), too little space, a full thin pool, a
//! kill -9 followed by a sweep and one during `lvremove` (no mount-point
//! directory left); the removal is done in the background from the guest's
//! chroot; plain rsync under the same writer is shown torn, so the consistency
//! check can fail. One instant across the three volumes (`lvm_freeze =
//! "all"`): a counter chain across them is read whole, while `"none"` and
//! plain rsync are caught torn; kill -9 ten times inside the frozen window
//! leaves nothing frozen, suspended, made or mounted after the sweep; past
//! `lvm_freeze_timeout` the run thaws and ends with 81 naming the slow step.
//! A second boot (`tests/guest/lvmroot.sh`) makes a logical
//! volume the root of a private namespace and runs `snaprsync exec /` there.

use crate::support::guest::{scenario, Guest, Report};

/// Every check the scenario makes, in order.
const CHECKS: &[&str] = &[
    "setup",
    "consistent-ext",
    "relative-names-ext",
    "no-lv-left-ext",
    "consistent-xfs",
    "relative-names-xfs",
    "no-lv-left-xfs",
    "consistent-thin",
    "relative-names-thin",
    "no-lv-left-thin",
    "provider-lvm",
    "background-removal",
    "rsnapshot",
    "nested-lv",
    "control-torn",
    "overflow",
    "overflow-once",
    "overflow-no-lv-left",
    "no-space",
    "no-space-no-lv-left",
    "thin-pool-full",
    "lvs-of-its-vg",
    "kill-then-sweep",
    "kill-in-lvremove",
    "restricted-pull",
    "bind-mount",
    "bind-mount-no-lv-left",
    "instant-across-lvs",
    "freeze-ms-logged",
    "freeze-none-torn",
    "control-torn-across",
    "writer-stall",
    "kill-in-freeze-window",
    "freeze-timeout",
    "freeze-timeout-in-lvm",
    "freeze-undone-on-panic",
    "freeze-undone-on-signal",
    "freeze-undone-on-failed-lvcreate",
];

#[test]
fn lvm_snapshots_in_the_guest() {
    let script = scenario("lvm.sh");
    let out = Guest::default().disk("pv", 2048).disk("pv2", 64).mem_mb(1024).timeout_secs(1200).exec(&script);
    // What the checks saw, for --nocapture.
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("VALUE ")) {
        eprintln!("{line}");
    }
    let report = Report::parse(&out);
    report.assert_all_ok(CHECKS, &out);
    assert_eq!(out.code(), Some(0), "{}", out.report());
    assert!(report.value("overflow", &out).contains("filled up"), "the overflow names its cause\n{}", out.report());
    assert!(report.value("no-space", &out).contains("free"), "{}", out.report());
}

/// Every check of `tests/guest/lvmroot.sh`, in order.
const ROOT_CHECKS: &[&str] =
    &["setup", "root-frozen", "root-one-instant", "live-and-read-only", "root-is-the-snapshot", "no-lv-left", "control-live-moves"];

/// `snaprsync exec / -- sh -c ...` with an LVM logical volume as `/` (pivoted
/// into in a private namespace): the command's root is the snapshot, frozen
/// and one instant under a writer, read-only, with `/proc` and `/tmp` live;
/// the same command without snaprsync sees the pair move; no snapshot LV is left.
#[test]
fn exec_of_an_lvm_root_in_the_guest() {
    let out = Guest::default().disk("pv", 512).mem_mb(1024).timeout_secs(300).exec(&scenario("lvmroot.sh"));
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("VALUE ")) {
        eprintln!("{line}");
    }
    Report::parse(&out).assert_all_ok(ROOT_CHECKS, &out);
    assert_eq!(out.code(), Some(0), "{}", out.report());
}
