//! Plain rsync clients pulling from and pushing to the btrfs side.

use crate::support::rig::{Remote, Rig};
use crate::support::{snaprsync_log, snaprsync_path, tree, write_config};

/// A pull through snaprsync copies the tree exactly and leaves no snapshot.
#[test]
fn pull_copies_the_tree() {
    let rig = Rig::new("pull");
    tree::make_sample(&rig.src());
    let dest = rig.dest("dst");
    rig.pull(Remote::Snaprsync, &["-H"], &dest);
    tree::assert_same("pull through snaprsync vs source", &tree::describe(&rig.src()), &tree::describe(&dest));
    assert_eq!(tree::inode(&dest.join("top.txt")), tree::inode(&dest.join("hardlink-to-top")), "-H must keep the hard link");
}

/// A push to the btrfs side goes through snaprsync as a receiver: the data
/// arrives and no snapshot is made.
#[test]
fn push_to_btrfs_makes_no_snapshot() {
    let rig = Rig::new("push");
    let local = rig.dest("local");
    tree::make_sample(&local);
    let target = rig.fs.mnt().join("pushed");
    let out = rig.rsync(Remote::Snaprsync).arg("-a").arg(format!("{}/", local.display())).arg(rig.remote_dir(&target)).run();
    assert!(out.status.success(), "push through snaprsync failed\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
    tree::assert_same("push through snaprsync vs local tree", &tree::describe(&local), &tree::describe(&target));
    let snaps = rig.fs.leftover_snapshots();
    assert!(snaps.is_empty(), "a receiver must not snapshot: {snaps:?}");
    assert_eq!(rig.snapshots_taken(), 0, "a receiver must not snapshot\n--- snaprsync log ---\n{}", rig.log());
    let logged = std::fs::metadata(rig.log_path()).map(|m| m.len()).unwrap_or(0);
    assert!(logged > 0, "the push must have run snaprsync (it logged nothing)");
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

/// `--protect-args` (`-s`, as BackupPC sends it) leaves no path in argv:
/// snaprsync must read the arguments from stdin, snapshot the right
/// filesystem and hand them on. Also a source directory with spaces in its name.
#[test]
fn protect_args_and_spaces() {
    let rig = Rig::new("protect");
    let src = rig.fs.mnt().join("my data");
    tree::make_sample(&src);
    let args = ["-s", "--numeric-ids", "-H", "--delete"];
    let with = rig.dest("snap");
    let without = rig.dest("live");
    for (remote, dest) in [(Remote::Snaprsync, &with), (Remote::Plain, &without)] {
        let run = || {
            let out = rig.rsync(remote).arg("-a").args(args).arg(rig.remote_dir(&src)).arg(dest).run();
            assert!(out.status.success(), "-s pull through {remote:?} failed\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
        };
        match remote {
            Remote::Snaprsync => rig.assert_snapshotted("-s pull", run),
            Remote::Plain => run(),
        }
    }
    tree::assert_same("-s pull through snaprsync vs source", &tree::describe(&src), &tree::describe(&with));
    tree::assert_same("-s pull: snaprsync vs plain rsync", &tree::describe(&without), &tree::describe(&with));
}

/// A source that is not on btrfs: with the default `on_snapshot_failure =
/// "fail"` snaprsync refuses with its own status 83 and one line; with
/// `"live"` the backup runs on the live files and succeeds.
#[test]
fn source_not_on_btrfs() {
    let rig = Rig::new("nobtrfs");
    let src = rig.dest("ext-src");
    tree::make_sample(&src);

    // As sshd runs it: exactly 83, one line, nothing on stdout.
    let args = super::status::sender_args(&src).join(" ");
    let out = rig.ssh(&format!("{} {args}", rig.rsync_path(Remote::Snaprsync)));
    out.expect_code(83).expect_stdout_empty();
    super::status::assert_one_line("non-btrfs source", &out.stderr);
    rig.fs.assert_no_snapshot_left();

    // Through a client rsync (which reports 83, or 12 if it saw the pipe close first).
    let out = rig.rsync(Remote::Snaprsync).arg("-a").arg(rig.remote_dir(&src)).arg(rig.dest("refused")).run();
    assert!(matches!(out.code(), Some(83 | 12)), "a non-btrfs source must be refused\n{}", out.report());
    assert!(out.stderr.contains(&src.display().to_string()), "the refusal must name the source\n{}", out.report());
    assert!(!rig.dest("refused").join("top.txt").exists(), "nothing may be copied when refused");

    let live_dir = rig.work.path().join("live-config");
    std::fs::create_dir(&live_dir).unwrap();
    let live_conf = write_config(&live_dir, "on_snapshot_failure = \"live\"\n");
    let dest = rig.dest("live");
    let out = rig
        .rsync(Remote::Plain)
        .arg(format!("--rsync-path={}", snaprsync_path(&live_conf)))
        .arg("-a")
        .arg(rig.remote_dir(&src))
        .arg(&dest)
        .run();
    assert!(
        out.status.success(),
        "on_snapshot_failure = live must copy the live files\n{}\n--- snaprsync log ---\n{}",
        out.report(),
        snaprsync_log(&live_conf)
    );
    tree::assert_same("live fallback vs source", &tree::describe(&src), &tree::describe(&dest));
}

/// A nested subvolume inside the source (a btrfs snapshot does not descend
/// into one: it shows up empty) still arrives whole, as with plain rsync:
/// also one nested in another below a plain directory, and one whose name is
/// not UTF-8 (which the listing by ioctl cannot name; btrfs-progs can).
#[test]
fn nested_subvolume_is_copied() {
    use std::os::unix::ffi::OsStrExt;
    let rig = Rig::new("nested");
    tree::make_sample(&rig.src());
    let sub = rig.src().join("nested-subvol");
    let deeper = sub.join("a dir").join("inner subvol");
    let odd = rig.src().join(std::ffi::OsStr::from_bytes(b"odd-\xff-subvol"));
    for (dir, parent) in [(&sub, None), (&deeper, deeper.parent()), (&odd, None)] {
        if let Some(parent) = parent {
            std::fs::create_dir_all(parent).unwrap();
        }
        testbed::cmd::cmd("btrfs").args(["subvolume", "create"]).arg(dir).ok();
        std::fs::write(dir.join("inside.txt"), "inside a nested subvolume\n").unwrap();
    }
    let with = rig.dest("snap");
    let without = rig.dest("live");
    rig.pull(Remote::Snaprsync, &[], &with);
    rig.pull(Remote::Plain, &[], &without);
    tree::assert_same("nested subvolume: snaprsync vs plain rsync", &tree::describe(&without), &tree::describe(&with));
}

/// Read-only subvolumes below the source (other tools' snapshots, as Snapper
/// lays them out, `.snapshots/N/snapshot`, and one right in the source) are
/// frozen already: they are shown as they are, not snapshotted again, and
/// the copy is plain rsync's, byte for byte. A writable subvolume beside them,
/// the `.snapshots` subvolume itself, and a writable one nested in a
/// read-only one are still snapshotted. Read-only subvolumes outside the
/// source (Timeshift's layout: many in one plain directory) cost the walk
/// one lookup, not one each.
#[test]
fn read_only_nested_subvolumes_are_shown_as_they_are_not_snapshotted() {
    use testbed::btrfs::{create_subvolume, snapshot_ro};
    let rig = Rig::new("frozen");
    let src = rig.src();
    tree::make_sample(&src);
    let work = src.join("work");
    create_subvolume(&work);
    std::fs::write(work.join("file"), "v0\n").unwrap();
    let snaps = src.join(".snapshots");
    create_subvolume(&snaps);
    for k in 1..=3 {
        std::fs::create_dir(snaps.join(k.to_string())).unwrap();
        std::fs::write(snaps.join(format!("{k}/info.xml")), format!("<snapshot>{k}</snapshot>\n")).unwrap();
        snapshot_ro(&work, &snaps.join(format!("{k}/snapshot")));
        std::fs::write(work.join("file"), format!("v{k}\n")).unwrap();
    }
    snapshot_ro(&work, &src.join("work.frozen"));
    // Made read-only after a writable subvolume was nested in it.
    let sealed = src.join("sealed");
    create_subvolume(&sealed);
    create_subvolume(&sealed.join("inner"));
    std::fs::write(sealed.join("inner/live"), "inner\n").unwrap();
    testbed::cmd::cmd("btrfs").args(["property", "set"]).arg(&sealed).args(["ro", "true"]).ok();
    let outside = rig.fs.mnt().join("timeshift");
    std::fs::create_dir(&outside).unwrap();
    for k in 0..40 {
        snapshot_ro(&work, &outside.join(k.to_string()));
    }

    let with = rig.dest("snap");
    let without = rig.dest("live");
    let log_from = rig.log().len();
    rig.pull(Remote::Snaprsync, &[], &with);
    rig.pull(Remote::Plain, &[], &without);
    tree::assert_same("read-only nested subvolumes: snaprsync vs plain rsync", &tree::describe(&without), &tree::describe(&with));
    for (k, want) in [(1, "v0"), (2, "v1"), (3, "v2")] {
        assert_eq!(std::fs::read_to_string(with.join(format!(".snapshots/{k}/snapshot/file"))).unwrap(), format!("{want}\n"));
    }
    let log = rig.log()[log_from..].to_owned();
    let snapshotted = snapshotted_origins(&rig, &log);
    assert_eq!(snapshotted, ["", "/data/.snapshots", "/data/sealed/inner", "/data/work"], "what was snapshotted\n{log}");
    assert!(log.contains(&format!("40 subvolume(s) in {}: passed over", outside.display())), "{log}");
}

/// The origins `log` says were snapshotted, below the rig's mount, sorted.
fn snapshotted_origins(rig: &Rig, log: &str) -> Vec<String> {
    let mut snapshotted: Vec<String> = log
        .lines()
        .filter_map(|l| l.split("BTRFS_IOC_SNAP_CREATE_V2 read-only ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .map(|origin| origin.strip_prefix(&*rig.fs.mnt().to_string_lossy()).unwrap_or(origin).to_owned())
        .collect();
    snapshotted.sort();
    snapshotted
}

/// `btrfs_skip_nested = [".snapshots"]`: the walk stops at every directory
/// of that name below the source (Snapper's, and one in a plain directory),
/// so the subvolumes there are neither snapshotted nor shown; a pull that
/// excludes them, as a Snapper user's does, gets what plain rsync gets, and
/// nothing else changes (a nested subvolume elsewhere is still snapshotted, and
/// the name above a source does not count).
#[test]
fn nested_subvolumes_in_a_skipped_directory_are_neither_snapshotted_nor_shown() {
    use testbed::btrfs::{create_subvolume, snapshot_ro};
    let rig = Rig::new("skip");
    std::fs::write(&rig.config, std::fs::read_to_string(&rig.config).unwrap() + "btrfs_skip_nested = [\".snapshots\"]\n").unwrap();
    let src = rig.src();
    tree::make_sample(&src);
    let work = src.join("work");
    create_subvolume(&work);
    std::fs::write(work.join("file"), "work\n").unwrap();
    let snaps = src.join(".snapshots");
    create_subvolume(&snaps);
    let home_snaps = src.join("home/.snapshots");
    std::fs::create_dir_all(&home_snaps).unwrap();
    for k in 1..=3 {
        for dir in [&snaps, &home_snaps] {
            std::fs::create_dir(dir.join(k.to_string())).unwrap();
            snapshot_ro(&work, &dir.join(format!("{k}/snapshot")));
        }
    }
    // A writable one in there is passed over as well.
    create_subvolume(&home_snaps.join("scratch"));
    std::fs::write(home_snaps.join("scratch/f"), "scratch\n").unwrap();

    let log_from = rig.log().len();
    let excluded = ["--exclude=.snapshots/"];
    let (with, without) = (rig.dest("snap"), rig.dest("live"));
    rig.pull(Remote::Snaprsync, &excluded, &with);
    rig.pull(Remote::Plain, &excluded, &without);
    tree::assert_same("skipped .snapshots, excluded: snaprsync vs plain rsync", &tree::describe(&without), &tree::describe(&with));
    assert_eq!(std::fs::read_to_string(with.join("work/file")).unwrap(), "work\n");
    let log = rig.log()[log_from..].to_owned();
    let snapshotted = snapshotted_origins(&rig, &log);
    assert_eq!(snapshotted, ["", "/data/work"], "what was snapshotted\n{log}");
    assert!(!log.contains("shown as they are"), "nothing below .snapshots is shown\n{log}");

    // Not excluded: the directories are there, and empty where a subvolume was.
    let all = rig.dest("all");
    rig.pull(Remote::Snaprsync, &[], &all);
    assert_eq!(std::fs::read_dir(all.join(".snapshots")).unwrap().count(), 0, "the skipped subvolume shows as an empty directory");
    for k in 1..=3 {
        assert_eq!(std::fs::read_dir(all.join(format!("home/.snapshots/{k}/snapshot"))).unwrap().count(), 0);
    }
    assert_eq!(std::fs::read_dir(all.join("home/.snapshots/scratch")).unwrap().count(), 0);

    // A source inside a skipped directory is a source: its own name, and those above it, do not count.
    let one = rig.dest("one");
    let out = rig.rsync(Remote::Snaprsync).arg("-a").arg(rig.remote_dir(&home_snaps.join("scratch"))).arg(&one).run();
    assert!(out.status.success(), "{}\n{}", out.report(), rig.log());
    assert_eq!(std::fs::read_to_string(one.join("f")).unwrap(), "scratch\n");
}

/// More read-only subvolumes below a source than sshd's usual soft limit of
/// 1024 open files (each is a place held open while all are shown), pulled
/// over a key in restricted mode, whose confined rsync opens every place
/// itself before its new root hides them: all reach the copy.
#[test]
fn restricted_mode_shows_more_read_only_subvolumes_than_the_soft_limit_on_open_files() {
    use testbed::btrfs::{create_subvolume, snapshot_ro};
    const SNAPSHOTS: usize = 1100;
    let rig = Rig::new("nofile");
    let src = rig.src();
    let base = src.join("base");
    create_subvolume(&base);
    std::fs::write(base.join("f"), "in every snapshot\n").unwrap();
    let snaps = src.join(".snapshots");
    std::fs::create_dir(&snaps).unwrap();
    for k in 1..=SNAPSHOTS {
        std::fs::create_dir(snaps.join(k.to_string())).unwrap();
        snapshot_ro(&base, &snaps.join(format!("{k}/snapshot")));
    }
    let command = format!(
        "ulimit -S -n 1024 && exec {} --snap-config={} --snap-restrict --snap-allow={}",
        crate::support::snaprsync(),
        rig.config.display(),
        src.display()
    );
    let key = crate::support::forced::ForcedKey::new(rig.sshd(), "nofile", &command);
    let dest = rig.dest("restricted");
    let out = key.rsync(&["-a", &format!("{}/", key.remote(&src)), &dest.display().to_string()]);
    assert!(out.status.success(), "{}\n{}", out.report(), rig.log());
    assert!(rig.log().contains("method=confined"), "{}", rig.log());
    assert_eq!(std::fs::read_dir(dest.join(".snapshots")).unwrap().count(), SNAPSHOTS);
    // That many: the log names the key that would spare the run them.
    assert!(rig.log().contains(&format!("{SNAPSHOTS} read-only subvolumes below the sources shown")), "{}", rig.log());
    assert!(rig.log().contains("btrfs_skip_nested"), "{}", rig.log());
    assert_eq!(std::fs::read_to_string(dest.join(format!(".snapshots/{SNAPSHOTS}/snapshot/f"))).unwrap(), "in every snapshot\n");
    rig.fs.assert_no_snapshot_left();
}
