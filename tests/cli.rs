//! The snaprsync binary run directly (no ssh): its own failures, exit-status
//! passthrough, signals, and that nothing ever reaches stdout in the rsync role.
//! Needs root and btrfs-progs, like the end-to-end suite.
#![cfg(target_os = "linux")]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::btrfs::Btrfs;
use support::cmd::{cmd, Cmd};

/// A btrfs filesystem with `data/` holding a few files, and a work dir.
struct World {
    fs: Btrfs,
    work: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let fs = Btrfs::new(300);
        let data = fs.mnt().join("data");
        fs::create_dir_all(data.join("sub")).unwrap();
        for i in 0..5 {
            fs::write(data.join(format!("f{i}")), format!("file {i}\n")).unwrap();
        }
        fs::write(data.join("sub/deep"), "deep\n").unwrap();
        World { fs, work: support::tempdir("cli") }
    }

    fn data(&self) -> PathBuf {
        self.fs.mnt().join("data")
    }

    fn config(&self, text: &str) -> PathBuf {
        let p = self.work.path().join("config.toml");
        fs::write(&p, text).unwrap();
        p
    }

    /// snaprsync as a server sender of `sources`, the way a backup server runs it.
    fn sender(&self, config: &Path, sources: &[&Path]) -> Cmd {
        cmd(support::snaprsync())
            .arg(format!("--snap-config={}", config.display()))
            .args(["--server", "--sender", "-logDtpre.iLsfxCIvu", "."])
            .args(sources)
    }
}

/// An rsh for `rsync -e` that runs the remote command here, the way sshd does
/// (through a shell), so the client/server protocol is real without ssh.
fn local_rsh(dir: &Path) -> String {
    let p = dir.join("local-rsh");
    if !p.exists() {
        fs::write(&p, "#!/bin/sh\nshift\nexec sh -c \"$*\"\n").unwrap();
        cmd("chmod").arg("+x").arg(&p).ok();
    }
    p.display().to_string()
}

/// Exactly one line on stderr, naming `what`.
fn one_line_naming(stderr: &str, what: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one stderr line, got: {stderr:?}");
    assert!(lines[0].starts_with("snaprsync: "), "{stderr:?}");
    assert!(lines[0].contains(what), "stderr {stderr:?} should name {what:?}");
}

#[test]
fn missing_config_file_is_status_80_with_nothing_on_stdout() {
    let w = World::new();
    let out = w.sender(&w.work.path().join("nope.toml"), &[&w.data()]).run();
    out.expect_code(80).expect_stdout_empty();
    one_line_naming(&out.stderr, "nope.toml");
    w.fs.assert_no_snapshot_left();
}

#[test]
fn bad_config_value_and_unknown_key_are_named() {
    let w = World::new();
    for (text, name) in [("on_snapshot_failure = \"maybe\"\n", "maybe"), ("rsync_pth = \"/x\"\n", "rsync_pth")] {
        let out = w.sender(&w.config(text), &[&w.data()]).run();
        out.expect_code(80).expect_stdout_empty();
        one_line_naming(&out.stderr, name);
    }
}

#[test]
fn unknown_own_option_is_a_usage_error() {
    let out = cmd(support::snaprsync()).args(["--snap-bogus=1", "--server", "--sender", "-e.", ".", "/"]).run();
    out.expect_code(80).expect_stdout_empty();
    one_line_naming(&out.stderr, "--snap-bogus");
}

#[test]
fn rsync_missing_is_status_82_and_leaves_no_snapshot() {
    let w = World::new();
    let cfg = w.config("rsync_path = \"/nonexistent/rsync\"\n");
    let out = w.sender(&cfg, &[&w.data()]).run();
    out.expect_code(82).expect_stdout_empty();
    one_line_naming(&out.stderr, "/nonexistent/rsync");
    w.fs.assert_no_snapshot_left();
}

#[test]
fn source_on_a_filesystem_without_provider() {
    // The work dir is not on btrfs.
    let w = World::new();
    let live = w.work.path().join("live");
    fs::create_dir(&live).unwrap();
    fs::write(live.join("x"), "x").unwrap();

    let out = w.sender(&w.config(""), &[&live]).run();
    out.expect_code(83).expect_stdout_empty();
    one_line_naming(&out.stderr, "cannot snapshot");

    // `live` runs rsync on the live files and says so.
    let cfg = w.config("on_snapshot_failure = \"live\"\n");
    let dst = w.work.path().join("dst");
    let out = cmd("rsync")
        .args(["-a", "-e", &local_rsh(w.work.path())])
        .arg(format!("--rsync-path={} --snap-config={}", support::snaprsync(), cfg.display()))
        .arg(format!("x:{}/", live.display()))
        .arg(&dst)
        .run();
    out.expect_code(0);
    assert!(out.stderr.contains("LIVE"), "{}", out.report());
    assert_eq!(fs::read_to_string(dst.join("x")).unwrap(), "x");
}

#[test]
fn rsync_status_passes_through_from_a_snapshot_run() {
    let w = World::new();
    let cfg = w.config(&format!("log_file = \"{}/log\"\nlog_level = \"info\"\n", w.work.path().display()));
    let dst = w.work.path().join("dst");
    let missing = w.data().join("missing");
    let out = cmd("rsync")
        .args(["-a", "-e", &local_rsh(w.work.path())])
        .arg(format!("--rsync-path={} --snap-config={}", support::snaprsync(), cfg.display()))
        .arg(format!("x:{}/", w.data().display()))
        .arg(format!(":{}", missing.display()))
        .arg(&dst)
        .run();
    out.expect_code(23);
    assert_eq!(fs::read_to_string(dst.join("f3")).unwrap(), "file 3\n");
    let log = fs::read_to_string(w.work.path().join("log")).unwrap();
    assert!(log.contains("method=namespace") && log.contains("rsync_status=23"), "{log}");
    w.fs.assert_no_snapshot_left();
}

#[test]
fn rsync_killed_by_a_signal_becomes_128_plus_n() {
    let w = World::new();
    // A stand-in for rsync that dies by SIGTERM, to show the status mapping.
    let fake = w.work.path().join("dies-by-sigterm");
    fs::write(&fake, "#!/bin/sh\nkill -TERM $$\n").unwrap();
    cmd("chmod").arg("+x").arg(&fake).ok();
    let cfg = w.config(&format!("rsync_path = \"{}\"\n", fake.display()));
    let out = w.sender(&cfg, &[&w.data()]).run();
    out.expect_code(128 + 15).expect_stdout_empty();
    w.fs.assert_no_snapshot_left();
}

#[test]
fn int_term_and_hup_reach_rsync_and_the_snapshot_is_removed() {
    let w = World::new();
    // Enough data that rsync is still sending when the signal comes.
    fs::write(w.data().join("big"), vec![7u8; 64 << 20]).unwrap();
    let log = w.work.path().join("log");
    let cfg = w.config(&format!("log_file = \"{}\"\nlog_level = \"debug\"\n", log.display()));
    for sig in ["INT", "TERM", "HUP"] {
        let mut child = std::process::Command::new(support::snaprsync())
            .arg(format!("--snap-config={}", cfg.display()))
            .args(["-a", "--bwlimit=1000"])
            .arg(format!("{}/", w.data().display()))
            .arg(w.work.path().join(format!("dst-{sig}")))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until rsync runs on the snapshot, then signal snaprsync alone.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !fs::read_to_string(&log).unwrap_or_default().contains(&format!("[{}] running /", child.id())) {
            assert!(Instant::now() < deadline, "rsync never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(w.fs.leftover_snapshots().len(), 1, "the snapshot should exist while rsync runs");
        std::thread::sleep(Duration::from_millis(200));
        cmd("kill").args([&format!("-{sig}"), &child.id().to_string()]).ok();
        let status = child.wait().unwrap();
        // rsync ends on these signals with its own status 20; snaprsync passes it on.
        assert_eq!(status.code(), Some(20), "SIG{sig}: status {status:?}");
        let text = fs::read_to_string(&log).unwrap();
        assert!(text.contains(&format!("forwarding SIG{sig}")), "{text}");
        w.fs.assert_no_snapshot_left();
    }
}

#[test]
fn never_recurses_into_itself_when_installed_as_rsync() {
    let w = World::new();
    let bin = w.work.path().join("bin");
    fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(support::snaprsync(), bin.join("rsync")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let dst = w.work.path().join("dst");
    // No config: the default lookup must skip the snaprsync that is named rsync.
    let out = cmd(bin.join("rsync")).env("PATH", &path).args(["-a"]).arg(format!("{}/", w.data().display())).arg(&dst).run();
    out.expect_code(0).expect_stdout_empty();
    assert_eq!(fs::read_to_string(dst.join("sub/deep")).unwrap(), "deep\n");
    w.fs.assert_no_snapshot_left();
}

#[test]
fn passthrough_runs_rsync_unchanged() {
    let out = cmd(support::snaprsync()).arg("--version").run();
    out.expect_code(0);
    assert!(out.stdout_str().starts_with("rsync  version"), "{}", out.report());
}

#[test]
fn subcommand_word_with_arguments_explains_dot_slash() {
    let out = cmd(support::snaprsync()).args(["list", "/backup/"]).run();
    out.expect_code(80).expect_stdout_empty();
    one_line_naming(&out.stderr, "./list");
}

#[test]
fn a_hung_rsync_is_ended_when_the_server_connection_drops() {
    let w = World::new();
    // A stand-in for an rsync that hangs after losing its peer and ignores SIGTERM.
    let fake = w.work.path().join("hangs");
    fs::write(&fake, "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.1; done\n").unwrap();
    cmd("chmod").arg("+x").arg(&fake).ok();
    let cfg = w.config(&format!("rsync_path = \"{}\"\n", fake.display()));
    let mut child = std::process::Command::new(support::snaprsync())
        .arg(format!("--snap-config={}", cfg.display()))
        .args(["--server", "--sender", "-logDtpre.iLsfxCIvu", "."])
        .arg(w.data())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.fs.leftover_snapshots().is_empty() {
        assert!(Instant::now() < deadline, "no snapshot appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The backup server goes away: both ends of its connection close.
    let dropped = Instant::now();
    drop(child.stdout.take());
    drop(child.stdin.take());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if dropped.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("snaprsync still runs 10 s after its connection dropped");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = dropped.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?} to end");
    // Killed by SIGKILL after ignoring SIGTERM: 128 + 9.
    assert_eq!(status.code(), Some(137), "{status:?}");
    w.fs.assert_no_snapshot_left();
}

#[test]
fn not_root_gives_a_clear_snapshot_error_and_leaves_nothing() {
    let w = World::new();
    let state = w.work.path().join("state");
    let cfg = w.config(&format!("state_dir = \"{}\"\n", state.display()));
    // Let nobody read the config and the tree: only the privilege is missing.
    cmd("chmod").args(["-R", "a+rX"]).arg(w.work.path()).arg(w.fs.mnt()).ok();
    let out = cmd("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(support::snaprsync())
        .arg(format!("--snap-config={}", cfg.display()))
        .args(["--server", "--sender", "-logDtpre.iLsfxCIvu", "."])
        .arg(w.data())
        .run();
    out.expect_code(81).expect_stdout_empty();
    one_line_naming(&out.stderr, "root");
    w.fs.assert_no_snapshot_left();
    assert!(!state.exists() || fs::read_dir(&state).unwrap().next().is_none(), "journal left behind");
}

#[test]
fn read_only_snapshot_location_gives_a_clear_error_and_leaves_nothing() {
    let w = World::new();
    let state = w.work.path().join("state");
    let cfg = w.config(&format!("state_dir = \"{}\"\n", state.display()));
    let dir = w.fs.mnt().join(".snaprsync");
    cmd("btrfs").args(["subvolume", "create"]).arg(&dir).ok();
    cmd("btrfs").args(["property", "set"]).arg(&dir).args(["ro", "true"]).ok();
    let out = w.sender(&cfg, &[&w.data()]).run();
    out.expect_code(81).expect_stdout_empty();
    one_line_naming(&out.stderr, ".snaprsync");
    w.fs.assert_no_snapshot_left();
    assert_eq!(fs::read_dir(&state).unwrap().count(), 0, "journal left behind");
    cmd("btrfs").args(["property", "set"]).arg(&dir).args(["ro", "false"]).ok();
}

#[test]
fn failed_removal_keeps_rsyncs_status_and_the_next_run_sweeps_it() {
    let w = World::new();
    let state = w.work.path().join("state");
    let log = w.work.path().join("log");
    // A wrapper around the real rsync that makes the snapshot location
    // read-only while rsync runs, so that removing the snapshot fails. (rsync
    // runs in snaprsync's mount namespace, where the snapshot covers the
    // mount; this test's /proc/PID/root shows the filesystem as everyone else sees it.)
    let wrapper = w.work.path().join("rsync-then-lock");
    let dir = w.fs.mnt().join(".snaprsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n/usr/bin/rsync \"$@\"\nrc=$?\nbtrfs property set '/proc/{}/root{}' ro true\nexit $rc\n",
            std::process::id(),
            dir.display()
        ),
    )
    .unwrap();
    cmd("chmod").arg("+x").arg(&wrapper).ok();
    let locked = w.config(&format!(
        "rsync_path = \"{}\"\nstate_dir = \"{}\"\nlog_file = \"{}\"\nsnapshot_removal = \"wait\"\n",
        wrapper.display(),
        state.display(),
        log.display()
    ));
    let dst = w.work.path().join("dst");
    let out = cmd(support::snaprsync())
        .arg(format!("--snap-config={}", locked.display()))
        .arg("-a")
        .arg(format!("{}/", w.data().display()))
        .arg(&dst)
        .run();
    // The backup itself succeeded: rsync's 0 stands.
    out.expect_code(0).expect_stdout_empty();
    assert!(out.stderr.contains("could not remove snapshot"), "{}", out.report());
    assert_eq!(w.fs.leftover_snapshots().len(), 1);
    assert_eq!(fs::read_dir(&state).unwrap().count(), 1, "the leftover stays in the journal");

    // `list` shows it with a dead owner; the next run sweeps it.
    cmd("btrfs").args(["property", "set"]).arg(&dir).args(["ro", "false"]).ok();
    let plain = w.config(&format!("state_dir = \"{}\"\nlog_file = \"{}\"\n", state.display(), log.display()));
    let listed = cmd(support::snaprsync()).arg(format!("--snap-config={}", plain.display())).arg("list").ok();
    let text = listed.stdout_str();
    assert!(text.lines().any(|l| l.starts_with("btrfs") && l.contains(" dead ") && l.contains("snaprsync-")), "{text}");
    cmd(support::snaprsync())
        .arg(format!("--snap-config={}", plain.display()))
        .arg("-a")
        .arg(format!("{}/", w.data().display()))
        .arg(&dst)
        .ok();
    w.fs.assert_no_snapshot_left();
    // The background removal drops the run's own record right after its snapshot.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read_dir(&state).unwrap().count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs::read_dir(&state).unwrap().count(), 0);
    assert!(fs::read_to_string(&log).unwrap().contains("sweep: removed"));
}
