//! The guest lab (`scripts/guest.sh`), tested on its own before LVM and ZFS
//! tests rely on it: one boot runs a whole LVM scenario (thick and thin volumes,
//! ext4 and XFS, classic and thin snapshots mounted read-only, an overflowing
//! snapshot turning invalid); another shows that a failing script's status,
//! stdout and stderr reach the test unchanged. Linux only; needs root and
//! `scripts/guest.sh setup`. A guest that cannot boot fails; nothing is skipped.

use crate::support::guest::{Guest, Report};

/// Reports on fd 3 (the real stdout) so LVM's chatter, sent to stderr, stays
/// out of the report. Few processes: each costs a few tenths of a second under
/// emulation.
const LVM_SCENARIO: &str = r#"#!/bin/bash
set -Eeuo pipefail
exec 3>&1 1>&2
trap 'echo "CHECK script FAIL line $LINENO: $BASH_COMMAND" >&3' ERR
check() {
    local name=$1
    shift
    if "$@"; then echo "CHECK $name ok" >&3; else echo "CHECK $name FAIL $*" >&3; fi
}
value() { echo "VALUE $1 $2" >&3; }
uptime() { read -r up _ </proc/uptime && echo "$up"; }
# lv_attr and fill of every volume, as VALUE <lv>.<field> lines.
report_lvs() {
    local lv attr snap data meta
    while read -r lv attr snap data meta; do
        value "$lv.lv_attr" "$attr"
        value "$lv.snap_percent" "${snap:--}"
        value "$lv.data_percent" "${data:--}"
        value "$lv.metadata_percent" "${meta:--}"
    done < <(lvs --noheadings --separator ' ' --unbuffered -o lv_name,lv_attr,snap_percent,data_percent,metadata_percent "$vg")
}

value boot_seconds "$(uptime)"
value kernel "$(uname -r)"
disk=${GUEST_DISKS%% *}
vg=lab
mnt=/tmp/lab
origins="thick_ext4 thick_xfs thin_ext4"

pvcreate -q -y "$disk"
vgcreate -q $vg "$disk"

# Origins: thick ext4, thick XFS (XFS wants about 300 MB), thin ext4.
lvcreate -q -y -L 64M -n thick_ext4 $vg
lvcreate -q -y -L 320M -n thick_xfs $vg
lvcreate -q -y -L 128M -T $vg/pool
lvcreate -q -y -V 256M -T $vg/pool -n thin_ext4
mkfs.ext4 -q /dev/$vg/thick_ext4
mkfs.xfs -q /dev/$vg/thick_xfs
mkfs.ext4 -q /dev/$vg/thin_ext4
for lv in $origins; do
    mkdir -p $mnt/$lv $mnt/${lv}_snap
    mount /dev/$vg/$lv $mnt/$lv
    mkdir -p $mnt/$lv/dir/sub
    head -c 3M /dev/urandom >$mnt/$lv/dir/big
    echo "first version of $lv" >$mnt/$lv/dir/sub/note
    echo kept >$mnt/$lv/kept
done

# Snapshots of mounted, written origins: classic (sized) of the thick
# volumes, thin (no size, -kn: no activation skip) of the thin one. The copies
# in /tmp are what the snapshots must hold from now on.
for lv in $origins; do cp -a $mnt/$lv $mnt/$lv.copy; done
lvcreate -q -y -s -L 32M -n thick_ext4_snap $vg/thick_ext4
lvcreate -q -y -s -L 64M -n thick_xfs_snap $vg/thick_xfs
lvcreate -q -y -s -kn -n thin_ext4_snap $vg/thin_ext4
mount -o ro,noload /dev/$vg/thick_ext4_snap $mnt/thick_ext4_snap
mount -o ro,norecovery,nouuid /dev/$vg/thick_xfs_snap $mnt/thick_xfs_snap
mount -o ro,noload /dev/$vg/thin_ext4_snap $mnt/thin_ext4_snap
mounts=$(</proc/mounts)
for lv in $origins; do
    check ${lv}_snap_readonly grep -q " $mnt/${lv}_snap [a-z0-9]* ro," <<<"$mounts"
    check ${lv}_snap_equal diff -r -x lost+found $mnt/$lv.copy $mnt/${lv}_snap
done

# Changes to the origins must not reach the snapshots.
for lv in $origins; do
    echo "second version" >$mnt/$lv/dir/sub/note
    rm $mnt/$lv/kept
    head -c 2M /dev/urandom >$mnt/$lv/added
done
sync
for lv in $origins; do
    check ${lv}_changed test "$(<$mnt/$lv/dir/sub/note)" = "second version"
    check ${lv}_snap_unchanged diff -r -x lost+found $mnt/$lv.copy $mnt/${lv}_snap
done

# A classic snapshot smaller than the changes to its origin turns invalid.
lvcreate -q -y -L 16M -n small $vg
lvcreate -q -y -s -L 4M -n small_snap $vg/small
read -r attr < <(lvs --noheadings -o lv_attr $vg/small_snap)
value small_snap.lv_attr_before "$attr"
dd if=/dev/urandom of=/dev/$vg/small bs=1M count=8 oflag=direct status=none
# What an LVM provider reads before trusting a copy.
report_lvs

# Remove everything; lvremove may find a volume busy just after umount.
for lv in $origins; do umount $mnt/${lv}_snap $mnt/$lv; done
removed=
for try in 1 2 3 4 5; do
    if lvremove -q -y $vg; then removed=$try; break; fi
    sleep 1
done
check lvs_removed test -n "$removed"
vgremove -q -y $vg
pvremove -q -y "$disk"
check no_device_mapper_left test -z "$(dmsetup ls | grep -v 'No devices found' || true)"
check no_pv_left test -z "$(pvs --noheadings)"
value script_end_seconds "$(uptime)"
"#;

const CHECKS: &[&str] = &[
    "thick_ext4_snap_readonly",
    "thick_ext4_snap_equal",
    "thick_xfs_snap_readonly",
    "thick_xfs_snap_equal",
    "thin_ext4_snap_readonly",
    "thin_ext4_snap_equal",
    "thick_ext4_changed",
    "thick_ext4_snap_unchanged",
    "thick_xfs_changed",
    "thick_xfs_snap_unchanged",
    "thin_ext4_changed",
    "thin_ext4_snap_unchanged",
    "lvs_removed",
    "no_device_mapper_left",
    "no_pv_left",
];

/// The `n`th (from 1) character of an `lv_attr` string.
fn attr_char(attr: &str, n: usize) -> char {
    attr.chars().nth(n - 1).unwrap_or('?')
}

fn percent(report: &Report, name: &str, out: &testbed::cmd::Output) -> f64 {
    let text = report.value(name, out);
    text.parse().unwrap_or_else(|_| panic!("{name} is {text:?}, not a percentage\n{}", out.report()))
}

#[test]
fn lvm_volumes_and_snapshots_work_in_the_guest() {
    let out = Guest::run(LVM_SCENARIO, &[("lab", 1024)]);
    let report = Report::parse(&out);
    report.assert_all_ok(CHECKS, &out);
    out.expect_code(0);

    // Classic snapshots: type s, state a (active), and partly filled by the changes.
    for snap in ["thick_ext4_snap", "thick_xfs_snap"] {
        let attr = report.value(&format!("{snap}.lv_attr"), &out);
        assert_eq!((attr_char(attr, 1), attr_char(attr, 5)), ('s', 'a'), "{snap} lv_attr {attr}\n{}", out.report());
        let percent = percent(&report, &format!("{snap}.snap_percent"), &out);
        assert!(percent > 0.0 && percent < 100.0, "{snap} snap_percent {percent}\n{}", out.report());
    }
    // The thin snapshot: a thin volume (V), active, without the activation skip flag.
    let attr = report.value("thin_ext4_snap.lv_attr", &out);
    assert_eq!((attr_char(attr, 1), attr_char(attr, 5), attr_char(attr, 10)), ('V', 'a', '-'), "thin snapshot lv_attr {attr}");
    for field in ["pool.data_percent", "pool.metadata_percent"] {
        let percent = percent(&report, field, &out);
        assert!(percent > 0.0 && percent < 100.0, "{field} {percent}\n{}", out.report());
    }
    // Overflowed: valid (a) before, invalid (I) after.
    assert_eq!(attr_char(report.value("small_snap.lv_attr_before", &out), 5), 'a', "{}", out.report());
    assert_eq!(attr_char(report.value("small_snap.lv_attr", &out), 5), 'I', "{}", out.report());

    assert!(report.value("kernel", &out).ends_with("-amd64"), "not the guest's kernel\n{}", out.report());
    eprintln!(
        "guest lab: script started {} s after boot, ended at {} s, whole run {:.1?}",
        report.value("boot_seconds", &out),
        report.value("script_end_seconds", &out),
        out.elapsed
    );
}

#[test]
fn a_failing_script_status_and_output_reach_the_test() {
    let out = Guest::run("echo \"out $(uname -r)\"\necho err >&2\nexit 7\n", &[]);
    out.expect_code(7);
    let kernel = out.stdout_str().strip_prefix("out ").unwrap_or("").trim_end().to_owned();
    assert!(kernel.ends_with("-amd64"), "stdout is not the guest script's alone\n{}", out.report());
    assert_eq!(out.stdout_str(), format!("out {kernel}\n"), "{}", out.report());
    // Only the script's stderr: no kernel or harness messages.
    assert_eq!(out.stderr, "err\n", "{}", out.report());
}
