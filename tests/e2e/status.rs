//! Exit statuses pass through unchanged, snaprsync's own failures use its own
//! statuses with one line on stderr, and nothing of snaprsync's reaches stdout
//! (which belongs to rsync's protocol).

use crate::support::rig::{Remote, Rig};
use crate::support::{snaprsync, tree};
use testbed::cmd::cmd;

/// rsync's "partial transfer" (23) for a missing source path reaches the
/// client unchanged through ssh and snaprsync, and the existing path is still
/// copied.
#[test]
fn missing_source_path_gives_rsyncs_23() {
    let rig = Rig::new("status23");
    tree::make_sample(&rig.src());
    let dest = rig.dest("dst");
    std::fs::create_dir(&dest).unwrap();
    let missing = rig.src().join("no-such-file");
    for remote in [Remote::Plain, Remote::Snaprsync] {
        let out = rig.rsync(remote).arg("-a").arg(rig.remote_path(&missing)).arg(&dest).run();
        assert_eq!(out.code(), Some(23), "{remote:?}: missing source\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
        assert!(out.stderr.contains("no-such-file"), "rsync must name the missing path\n{}", out.report());
        rig.fs.assert_no_snapshot_left();
    }
    // One existing and one missing path in a single pull.
    let out = rig
        .rsync(Remote::Snaprsync)
        .arg("-a")
        .arg(rig.remote_path(&rig.src().join("a")))
        .arg(format!(":{}", missing.display()))
        .arg(&dest)
        .run();
    assert_eq!(out.code(), Some(23), "existing + missing source\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
    tree::assert_same("the existing path is still copied", &tree::describe(&rig.src().join("a")), &tree::describe(&dest.join("a")));
    rig.fs.assert_no_snapshot_left();
}

/// The server-side argv rsync sends for a pull.
pub fn sender_args(path: &std::path::Path) -> Vec<String> {
    ["--server", "--sender", "-logDtpre.iLsfxCIvu", "."].iter().map(|s| s.to_string()).chain([format!("{}/", path.display())]).collect()
}

pub fn assert_one_line(what: &str, stderr: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: snaprsync must explain itself in exactly one stderr line, got:\n{stderr}");
}

/// A missing `--snap-config` file: snaprsync exits 80 before rsync starts,
/// with one line on stderr. Through ssh the 80 arrives unchanged; a client
/// rsync is told the line and the 80 in-band (see `wire`), shows the line
/// once and exits with 80.
#[test]
fn missing_config_gives_80_with_one_line() {
    let rig = Rig::new("status80");
    tree::make_sample(&rig.src());
    let missing_conf = rig.work.path().join("no-such-config.toml");

    // Directly, as sshd would run it.
    let out = cmd(snaprsync()).arg(format!("--snap-config={}", missing_conf.display())).args(sender_args(&rig.src())).run();
    out.expect_code(80).expect_stdout_empty();
    assert_one_line("direct run", &out.stderr);
    assert!(out.stderr.contains("no-such-config.toml"), "the line must name the config file\n{}", out.report());

    // Through ssh: the remote status arrives unchanged.
    let remote_cmd = format!("{} --snap-config={} {}", snaprsync(), missing_conf.display(), sender_args(&rig.src()).join(" "));
    let out = rig.ssh(&remote_cmd);
    out.expect_code(80).expect_stdout_empty();
    assert_one_line("through ssh", &out.stderr);

    // Through a client rsync.
    let dest = rig.dest("dst");
    let out = rig
        .rsync(Remote::Plain)
        .arg(format!("--rsync-path={} --snap-config={}", snaprsync(), missing_conf.display()))
        .arg("-a")
        .arg(rig.remote_dir(&rig.src()))
        .arg(&dest)
        .run();
    // In-band (see `wire`): the client's own status is snaprsync's.
    assert_eq!(out.code(), Some(80), "client rsync status\n{}", out.report());
    let ours: Vec<&str> = out.stderr.lines().filter(|l| l.contains("no-such-config.toml")).collect();
    assert_eq!(ours.len(), 1, "snaprsync's line must reach the client once\n{}", out.report());
    eprintln!("client rsync with a missing snaprsync config exits {:?}:\n{}", out.code(), out.stderr);
    rig.fs.assert_no_snapshot_left();
}

/// Whatever goes wrong before rsync runs, stdout stays empty: a missing
/// config, a config that is not TOML, a config naming a missing rsync.
#[test]
fn nothing_reaches_stdout_from_snaprsync() {
    let rig = Rig::new("stdout");
    tree::make_sample(&rig.src());
    let dir = rig.work.path();
    let bad_toml = dir.join("bad.toml");
    std::fs::write(&bad_toml, "this is = = not toml [\n").unwrap();
    let no_rsync = dir.join("no-rsync.toml");
    std::fs::write(&no_rsync, format!("rsync_path = \"{}\"\n", dir.join("no-such-rsync").display())).unwrap();

    let cases = [
        ("missing config", dir.join("missing.toml"), 80),
        ("config that is not TOML", bad_toml, 80),
        ("config naming a missing rsync", no_rsync, 82),
    ];
    for (what, conf, code) in cases {
        let out = cmd(snaprsync()).arg(format!("--snap-config={}", conf.display())).args(sender_args(&rig.src())).run();
        out.expect_stdout_empty();
        assert_eq!(out.code(), Some(code), "{what}: exit status\n{}", out.report());
        assert_one_line(what, &out.stderr);
        rig.fs.assert_no_snapshot_left();
    }
}

/// A backup interrupted from the server side (the client rsync is killed
/// mid-transfer, so ssh drops the session): snaprsync still removes its
/// snapshot.
#[test]
fn interrupted_backup_leaves_no_snapshot() {
    use std::time::{Duration, Instant};

    let rig = Rig::new("interrupt");
    tree::make_sample(&rig.src());
    for i in 0..4 {
        std::fs::write(rig.src().join(format!("big{i}")), tree::pattern(2_000_000, i)).unwrap();
    }
    let dest = rig.dest("dst");
    let mut child = rig.rsync(Remote::Snaprsync).args(["-a", "--bwlimit=1000"]).arg(rig.remote_dir(&rig.src())).arg(&dest).spawn();
    // Wait until the snapshot exists, i.e. the transfer is under way.
    let deadline = Instant::now() + Duration::from_secs(20);
    while rig.fs.leftover_snapshots().is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "rsync ended before a snapshot was seen\n--- snaprsync log ---\n{}", rig.log());
        assert!(Instant::now() < deadline, "no snapshot appeared\n--- snaprsync log ---\n{}", rig.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("kill rsync");
    child.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = rig.fs.leftover_snapshots();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "snapshot still there 20 s after the client died: {left:?}\n--- snaprsync log ---\n{}",
            rig.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A panic (a bug) after the snapshot exists, before and after rsync ran:
/// unwinding removes the snapshot, and snaprsync exits 89 with one stderr
/// line and nothing on stdout. The panic is injected with `SNAPRSYNC_FAULT`,
/// which only debug builds obey (`cargo test` builds those).
#[test]
fn a_panic_still_removes_the_snapshot() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: fault injection needs a debug build (cargo test without --release)");
        return;
    }
    let rig = Rig::new("panic");
    tree::make_sample(&rig.src());
    let conf = format!("--snap-config={}", rig.config.display());

    // As sshd would run it; rsync is never reached.
    let before = rig.snapshots_taken();
    let out = cmd(snaprsync()).env("SNAPRSYNC_FAULT", "after-create").arg(&conf).args(sender_args(&rig.src())).run();
    out.expect_code(89).expect_stdout_empty();
    assert_one_line("panic after create", &out.stderr);
    assert!(out.stderr.contains("internal error") && out.stderr.contains("after-create"), "{}", out.report());
    assert!(rig.snapshots_taken() > before, "the panic must come after the snapshot\n{}", rig.log());
    rig.fs.assert_no_snapshot_left();

    // Through a real client, once before and once after rsync's transfer.
    for point in ["after-create", "after-rsync"] {
        let before = rig.snapshots_taken();
        let dest = rig.dest(point);
        let out = rig
            .rsync(Remote::Plain)
            .arg(format!("--rsync-path=SNAPRSYNC_FAULT={point} {}", rig.rsync_path(Remote::Snaprsync)))
            .arg("-a")
            .arg(rig.remote_dir(&rig.src()))
            .arg(&dest)
            .run();
        // Before rsync started the status goes in-band (see `wire`); after, ssh carries it.
        let want: &[i32] = if point == "after-create" { &[89] } else { &[89, 12] };
        assert!(out.code().is_some_and(|c| want.contains(&c)), "{point}: client rsync status\n{}", out.report());
        assert_eq!(out.stderr.matches("internal error").count(), 1, "{point}: one line from snaprsync\n{}", out.report());
        assert!(rig.snapshots_taken() > before, "{point}: the panic must come after the snapshot\n{}", rig.log());
        rig.fs.assert_no_snapshot_left();
        if point == "after-rsync" {
            tree::assert_same("the transfer before the panic", &tree::describe(&rig.src()), &tree::describe(&dest));
        }
    }
}

/// A tmpfs mounted at a temp dir, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new() -> Tmpfs {
        let dir = testbed::tempdir("inband-tmpfs");
        cmd("mount").args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"]).arg(dir.path()).ok();
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = cmd("umount").arg(self.0.path()).run();
    }
}

/// How many of `n` pulls through sshd and the real rsync ended with `want`
/// at the backup server, and with snaprsync's line (`line`) once on its
/// stderr; the statuses seen, for the record.
fn pulls(rig: &Rig, n: usize, rsync_path: &str, extra: &[&str], src: &str, want: i32, line: &str) -> (usize, usize, Vec<i32>) {
    let (mut right, mut told, mut seen) = (0, 0, Vec::new());
    for i in 0..n {
        let dest = rig.dest(&format!("inband-{i}"));
        let out = rig.rsync(Remote::Plain).arg(format!("--rsync-path={rsync_path}")).arg("-a").args(extra).arg(src).arg(&dest).run();
        let code = out.code().unwrap_or(-1);
        right += usize::from(code == want);
        told += usize::from(out.stderr.matches(line).count() == 1);
        seen.push(code);
        assert!(!dest.exists() || std::fs::read_dir(&dest).unwrap().next().is_none(), "nothing may be copied\n{}", out.report());
    }
    seen.sort();
    seen.dedup();
    (right, told, seen)
}

/// Snaprsync's failure before rsync starts reaches the backup server's rsync
/// in-band (MSG_ERROR, MSG_ERROR_EXIT; see `wire`), 20 pulls out of 20: a
/// source no provider can snapshot (83), a config error (80) and a snapshot
/// that cannot be made (81), at the installed rsync's protocol and at
/// `--protocol=30`, with `-s` and `-z` too. At `--protocol=29`, which has no
/// such message, nothing is said in-band: the line still arrives (through
/// ssh's stderr) and the status is ssh's or rsync's own 12, as before.
#[test]
fn the_server_sees_snaprsyncs_status_every_time() {
    const N: usize = 20;
    let rig = Rig::new("inband");
    tree::make_sample(&rig.src());
    let tmpfs = Tmpfs::new();
    std::fs::write(tmpfs.0.path().join("f"), b"x").unwrap();
    let missing = rig.work.path().join("no-such-config.toml");
    // The snapshot directory at the mount root is a file: no snapshot can be made there.
    let blocked_conf = rig.work.path().join("blocked.toml");
    std::fs::write(&blocked_conf, std::fs::read_to_string(&rig.config).unwrap() + "btrfs_snapshot_dir = \"blocked\"\n").unwrap();
    std::fs::write(rig.fs.mnt().join("blocked"), b"not a directory").unwrap();
    let cases = [
        ("tmpfs source", rig.rsync_path(Remote::Snaprsync), rig.remote_dir(tmpfs.0.path()), 83, "which snaprsync cannot snapshot"),
        ("config error", crate::support::snaprsync_path(&missing), rig.remote_dir(&rig.src()), 80, "no-such-config.toml"),
        ("failed snapshot", crate::support::snaprsync_path(&blocked_conf), rig.remote_dir(&rig.src()), 81, "cannot snapshot"),
    ];
    let mut table = Vec::new();
    for (what, path, src, want, line) in &cases {
        for (extra, n) in [(&[][..], N), (&["--protocol=30"], N), (&["-s", "-z"], 5), (&["--protocol=29"], N)] {
            let (right, told, seen) = pulls(&rig, n, path, extra, src, *want, line);
            table.push(format!("{what} {extra:?}: status {want} {right}/{n}, line once {told}/{n}, statuses seen {seen:?}"));
            assert_eq!(told, n, "{what} {extra:?}: snaprsync's line must reach the server once, every time\n{}", table.join("\n"));
            if extra != ["--protocol=29"] {
                assert_eq!(right, n, "{what} {extra:?}: the server's rsync must end with {want}\n{}", table.join("\n"));
            } else {
                assert!(seen.iter().all(|c| [*want, 12].contains(c)), "{what}: protocol 29 keeps the old statuses\n{}", table.join("\n"));
            }
        }
    }
    eprintln!("{}", table.join("\n"));
    rig.fs.assert_no_snapshot_left();
}
