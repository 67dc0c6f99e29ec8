//! The guest lab (`scripts/guest.sh`), tested on its own before LVM and ZFS
//! tests rely on it: one boot runs a whole LVM scenario (thick and thin volumes,
//! ext4 and XFS, classic and thin snapshots mounted read-only, an overflowing
//! snapshot turning invalid); another shows that a failing script's status,
//! stdout and stderr reach the test unchanged. Linux only; needs root and
//! `scripts/guest.sh setup`. A guest that cannot boot fails; nothing is skipped.

#![cfg(target_os = "linux")]

mod support;

use support::guest::{Guest, Report};

/// Reports on fd 3 (the real stdout) so LVM's chatter, sent to stderr, stays
/// out of the report.
const LVM_SCENARIO: &str = r#"#!/bin/bash
set -Eeuo pipefail
exec 3>&1 1>&2
trap 'echo "CHECK script FAIL line $LINENO: $BASH_COMMAND" >&3' ERR
ok() { echo "CHECK $1 ok" >&3; }
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else echo "CHECK $name FAIL $*" >&3; fi
}
value() { echo "VALUE $1 $2" >&3; }
# Every file under a tree with its content hash.
manifest() { (cd "$1" && find . -path ./lost+found -prune -o -type f -print0 | sort -z | xargs -0r sha256sum); }
lv_field() { lvs --noheadings -o "$2" "$vg/$1" | tr -d ' '; }

value boot_seconds "$(cut -d' ' -f1 /proc/uptime)"
value kernel "$(uname -r)"
disk=${GUEST_DISKS%% *}
vg=lab
mnt=/tmp/lab
origins="thick_ext4 thick_xfs thin_ext4"

pvcreate -q -y "$disk"
vgcreate -q $vg "$disk"
check vg_created vgs $vg

# Origins: thick ext4, thick XFS (XFS wants about 300 MB), thin ext4.
lvcreate -q -y -L 64M -n thick_ext4 $vg
lvcreate -q -y -L 320M -n thick_xfs $vg
lvcreate -q -y -L 128M -T $vg/pool
lvcreate -q -y -V 256M -T $vg/pool -n thin_ext4
mkfs.ext4 -q /dev/$vg/thick_ext4
mkfs.xfs -q /dev/$vg/thick_xfs
mkfs.ext4 -q /dev/$vg/thin_ext4
for lv in $origins; do
    mkdir -p $mnt/$lv
    mount /dev/$vg/$lv $mnt/$lv
    mkdir -p $mnt/$lv/dir/sub
    head -c 3M /dev/urandom >$mnt/$lv/dir/big
    echo "first version of $lv" >$mnt/$lv/dir/sub/note
    echo kept >$mnt/$lv/kept
done
check origins_mounted mountpoint -q $mnt/thin_ext4

# Snapshots of mounted, written origins: classic (sized) of the thick
# volumes, thin (no size, -kn: no activation skip) of the thin one.
for lv in $origins; do manifest $mnt/$lv >$mnt/$lv.before; done
lvcreate -q -y -s -L 32M -n thick_ext4_snap $vg/thick_ext4
lvcreate -q -y -s -L 64M -n thick_xfs_snap $vg/thick_xfs
lvcreate -q -y -s -kn -n thin_ext4_snap $vg/thin_ext4
for lv in $origins; do
    snap=${lv}_snap
    mkdir -p $mnt/$snap
    case $lv in
        *xfs) mount -o ro,norecovery,nouuid /dev/$vg/$snap $mnt/$snap ;;
        *) mount -o ro,noload /dev/$vg/$snap $mnt/$snap ;;
    esac
    check ${snap}_readonly grep -q " $mnt/$snap [a-z0-9]* ro," /proc/mounts
    check ${snap}_equal cmp -s $mnt/$lv.before <(manifest $mnt/$snap)
done

# Changes to the origins must not reach the snapshots.
for lv in $origins; do
    echo "second version" >$mnt/$lv/dir/sub/note
    rm $mnt/$lv/kept
    head -c 2M /dev/urandom >$mnt/$lv/added
done
sync
for lv in $origins; do
    check ${lv}_changed test "$(cat $mnt/$lv/dir/sub/note)" = "second version"
    check ${lv}_snap_unchanged cmp -s $mnt/$lv.before <(manifest $mnt/${lv}_snap)
done

# What an LVM provider reads before trusting a copy.
for snap in thick_ext4_snap thick_xfs_snap; do
    value ${snap}_attr "$(lv_field $snap lv_attr)"
    value ${snap}_snap_percent "$(lv_field $snap snap_percent)"
done
value thin_ext4_snap_attr "$(lv_field thin_ext4_snap lv_attr)"
value pool_data_percent "$(lv_field pool data_percent)"
value pool_metadata_percent "$(lv_field pool metadata_percent)"

# A classic snapshot smaller than the changes to its origin turns invalid.
lvcreate -q -y -L 16M -n small $vg
lvcreate -q -y -s -L 4M -n small_snap $vg/small
value small_snap_attr_before "$(lv_field small_snap lv_attr)"
dd if=/dev/urandom of=/dev/$vg/small bs=1M count=8 oflag=direct status=none
value small_snap_attr_after "$(lv_field small_snap lv_attr)"

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
value script_end_seconds "$(cut -d' ' -f1 /proc/uptime)"
"#;

const CHECKS: &[&str] = &[
    "vg_created",
    "origins_mounted",
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

#[test]
fn lvm_volumes_and_snapshots_work_in_the_guest() {
    let out = Guest::run(LVM_SCENARIO, &[("lab", 1024)]);
    let report = Report::parse(&out);
    report.assert_all_ok(CHECKS, &out);
    out.expect_code(0);

    // Classic snapshots: type s, state a (active), and partly filled by the changes.
    for snap in ["thick_ext4_snap", "thick_xfs_snap"] {
        let attr = report.value(&format!("{snap}_attr"), &out);
        assert_eq!((attr_char(attr, 1), attr_char(attr, 5)), ('s', 'a'), "{snap} lv_attr {attr}\n{}", out.report());
        let percent: f64 = report.value(&format!("{snap}_snap_percent"), &out).parse().expect("snap_percent is a number");
        assert!(percent > 0.0 && percent < 100.0, "{snap} snap_percent {percent}\n{}", out.report());
    }
    // The thin snapshot: a thin volume (V), active, without the activation skip flag.
    let attr = report.value("thin_ext4_snap_attr", &out);
    assert_eq!((attr_char(attr, 1), attr_char(attr, 5), attr_char(attr, 10)), ('V', 'a', '-'), "thin snapshot lv_attr {attr}");
    for field in ["pool_data_percent", "pool_metadata_percent"] {
        let percent: f64 = report.value(field, &out).parse().expect("a percentage");
        assert!(percent > 0.0 && percent < 100.0, "{field} {percent}\n{}", out.report());
    }
    // Overflowed: valid before, invalid (I) after.
    assert_eq!(attr_char(report.value("small_snap_attr_before", &out), 5), 'a', "{}", out.report());
    assert_eq!(attr_char(report.value("small_snap_attr_after", &out), 5), 'I', "{}", out.report());

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
