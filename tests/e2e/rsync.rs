//! Plain rsync clients pulling from and pushing to the btrfs side.

use crate::support::rig::{Remote, Rig};
use crate::support::tree;

/// A pull through snaprsync copies the tree exactly and leaves no snapshot.
#[test]
fn pull_copies_the_tree() {
    let rig = Rig::new("pull");
    tree::make_sample(&rig.src());
    let dest = rig.dest("dst");
    rig.pull(Remote::Snaprsync, &["-H"], &dest);
    tree::assert_same("pull through snaprsync vs source", &tree::describe(&rig.src()), &tree::describe(&dest));
    assert_eq!(
        tree::inode(&dest.join("top.txt")),
        tree::inode(&dest.join("hardlink-to-top")),
        "-H must keep the hard link"
    );
}

/// A push to the btrfs side goes through snaprsync as a receiver: the data
/// arrives and no snapshot is made.
#[test]
fn push_to_btrfs_makes_no_snapshot() {
    let rig = Rig::new("push");
    let local = rig.dest("local");
    tree::make_sample(&local);
    let target = rig.fs.mnt().join("pushed");
    let out = rig
        .rsync(Remote::Snaprsync)
        .arg("-a")
        .arg(format!("{}/", local.display()))
        .arg(rig.remote_dir(&target))
        .run();
    assert!(out.status.success(), "push through snaprsync failed\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
    tree::assert_same("push through snaprsync vs local tree", &tree::describe(&local), &tree::describe(&target));
    let snaps = rig.fs.leftover_snapshots();
    assert!(snaps.is_empty(), "a receiver must not snapshot: {snaps:?}");
}

/// Names, types, sizes, modes, mtimes and contents of a quiescent tree are
/// the same whether the remote runs snaprsync or rsync, with and without -R.
#[test]
fn names_match_plain_rsync() {
    let rig = Rig::new("names");
    tree::make_sample(&rig.src());
    for extra in [&[][..], &["-R"][..], &["-R", "-H", "--numeric-ids"][..]] {
        let tag = if extra.is_empty() { "plain".to_owned() } else { extra.join("") };
        let with = rig.dest(&format!("snap{tag}"));
        let without = rig.dest(&format!("live{tag}"));
        rig.pull(Remote::Snaprsync, extra, &with);
        rig.pull(Remote::Plain, extra, &without);
        let names = tree::names(&with);
        assert!(names.iter().any(|n| n.ends_with("a/b/c/three")), "copy is missing files: {names:?}");
        if extra.contains(&"-R") {
            let full = format!("{}/a/b/c/three", rig.src().display().to_string().trim_start_matches('/'));
            assert!(names.contains(&full), "-R must keep the full source path {full}: {names:?}");
        }
        tree::assert_same(&format!("rsync -a {extra:?}: snaprsync vs plain rsync"), &tree::describe(&with), &tree::describe(&without));
    }
}
