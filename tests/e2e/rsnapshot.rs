//! Real rsnapshot with its default `--relative`, naming snaprsync in
//! `rsync_long_args --rsync-path=...` and reaching the client through `ssh -F`.

use crate::support::rig::{Remote, Rig};
use crate::support::tree;
use std::path::{Path, PathBuf};
use testbed::cmd::cmd;
use testbed::sshd::HOST;

/// Writes an rsnapshot config (fields are tab-separated) backing up the rig's
/// source as `host/`, and returns its path.
fn config(rig: &Rig, name: &str, remote: Remote) -> (PathBuf, PathBuf) {
    let dir = rig.dest(name);
    std::fs::create_dir(&dir).unwrap();
    let root = dir.join("snapshots");
    let conf = dir.join("rsnapshot.conf");
    let lines = [
        ("config_version", "1.2".to_owned()),
        ("snapshot_root", format!("{}/", root.display())),
        ("no_create_root", "0".to_owned()),
        ("cmd_cp", "/bin/cp".to_owned()),
        ("cmd_rm", "/bin/rm".to_owned()),
        ("cmd_rsync", "/usr/bin/rsync".to_owned()),
        ("cmd_ssh", "/usr/bin/ssh".to_owned()),
        ("ssh_args", format!("-F {}", rig.sshd().ssh_config().display())),
        ("verbose", "2".to_owned()),
        ("loglevel", "3".to_owned()),
        ("lockfile", dir.join("rsnapshot.pid").display().to_string()),
        // rsnapshot's default long args plus the remote rsync, quoted because it holds a space.
        ("rsync_long_args", format!("--delete --numeric-ids --relative --delete-excluded --rsync-path=\"{}\"", rig.rsync_path(remote))),
        ("retain", "alpha\t3".to_owned()),
        ("backup", format!("root@{HOST}:{}/\thost/", rig.src().display())),
    ];
    let text: String = lines.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    std::fs::write(&conf, text).unwrap();
    (conf, root)
}

fn backup(rig: &Rig, conf: &Path, remote: Remote) {
    let run = || {
        let out = cmd("rsnapshot").arg("-c").arg(conf).arg("alpha").run();
        assert!(out.status.success(), "rsnapshot failed\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
    };
    match remote {
        Remote::Snaprsync => rig.assert_snapshotted("rsnapshot", run),
        Remote::Plain => run(),
    }
    rig.fs.assert_no_snapshot_left();
}

/// rsnapshot through snaprsync stores the same names (full source path under
/// `host/`, from `--relative`) and the same files as rsnapshot without it, on
/// a first run and on a rotating second run.
#[test]
fn rsnapshot_relative_backup_matches_plain() {
    let rig = Rig::new("rsnapshot");
    tree::make_sample(&rig.src());
    let (snap_conf, snap_root) = config(&rig, "with", Remote::Snaprsync);
    let (live_conf, live_root) = config(&rig, "without", Remote::Plain);
    backup(&rig, &snap_conf, Remote::Snaprsync);
    backup(&rig, &live_conf, Remote::Plain);

    let with = snap_root.join("alpha.0/host");
    let without = live_root.join("alpha.0/host");
    let rel = rig.src().display().to_string().trim_start_matches('/').to_owned();
    let names = tree::names(&with);
    assert!(names.contains(&format!("{rel}/a/b/c/three")), "--relative must keep the full path {rel}: {names:?}");
    tree::assert_same("rsnapshot through snaprsync vs without", &tree::describe(&with), &tree::describe(&without));
    tree::assert_same("rsnapshot backup vs source", &tree::describe(&rig.src()), &tree::describe(&with.join(&rel)));

    // A second run rotates alpha.0 to alpha.1 and links unchanged files.
    std::fs::write(rig.src().join("top.txt"), "changed\n").unwrap();
    backup(&rig, &snap_conf, Remote::Snaprsync);
    tree::assert_same("second rsnapshot run vs source", &tree::describe(&rig.src()), &tree::describe(&with.join(&rel)));
    let old = snap_root.join("alpha.1/host").join(&rel);
    assert_eq!(tree::inode(&old.join("a/b/c/three")), tree::inode(&with.join(&rel).join("a/b/c/three")), "unchanged file must be linked");
}
