//! The snaprsync binary run directly (no ssh): its own failures, exit-status
//! passthrough, signals, and that nothing ever reaches stdout in the rsync role.
//! Needs btrfs-progs, like the end-to-end suite.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::rig::Rig;
use crate::support::snaprsync;
use testbed::btrfs::{create_subvolume, is_subvolume, snapshot_ro};
use testbed::cmd::{cmd, Cmd, Output};

/// A btrfs filesystem with `data/` holding a few files, and a work dir; no sshd.
fn world() -> Rig {
    Rig::build("cli")
        .size(300)
        .without_sshd()
        .data(|data| {
            fs::create_dir_all(data.join("sub")).unwrap();
            for i in 0..5 {
                fs::write(data.join(format!("f{i}")), format!("file {i}\n")).unwrap();
            }
            fs::write(data.join("sub/deep"), "deep\n").unwrap();
        })
        .start()
}

/// A config file holding just `text` (none of the rig's log and state settings).
fn config(w: &Rig, text: &str) -> PathBuf {
    let p = w.work.path().join("config.toml");
    fs::write(&p, text).unwrap();
    p
}

/// snaprsync as a server sender of `sources`, the way a backup server runs it.
fn sender(config: &Path, sources: &[&Path]) -> Cmd {
    cmd(snaprsync())
        .arg(format!("--snap-config={}", config.display()))
        .args(["--server", "--sender", "-logDtpre.iLsfxCIvu", "."])
        .args(sources)
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

/// `rsync -a` through [`local_rsh`] with snaprsync and `config` as the remote
/// rsync; add the sources and the destination.
fn local_pull(w: &Rig, config: &Path) -> Cmd {
    cmd("rsync").args(["-a", "-e", &local_rsh(w.work.path())]).arg(format!(
        "--rsync-path={} --snap-config={}",
        snaprsync(),
        config.display()
    ))
}

/// How many run records (journal entries) `state` holds; the run history beside them is no record.
fn journal_entries(state: &Path) -> usize {
    fs::read_dir(state).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".toml")).count()
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
    let w = world();
    let out = sender(&w.work.path().join("nope.toml"), &[&w.src()]).run();
    out.expect_code(80).expect_stdout_empty();
    one_line_naming(&out.stderr, "nope.toml");
    w.fs.assert_no_snapshot_left();
}

#[test]
fn bad_config_value_and_unknown_key_are_named() {
    let w = world();
    for (text, name) in [("on_snapshot_failure = \"maybe\"\n", "maybe"), ("rsync_pth = \"/x\"\n", "rsync_pth")] {
        let out = sender(&config(&w, text), &[&w.src()]).run();
        out.expect_code(80).expect_stdout_empty();
        one_line_naming(&out.stderr, name);
    }
}

#[test]
fn unknown_own_option_is_a_usage_error() {
    let out = cmd(snaprsync()).args(["--snap-bogus=1", "--server", "--sender", "-e.", ".", "/"]).run();
    out.expect_code(80).expect_stdout_empty();
    one_line_naming(&out.stderr, "--snap-bogus");
}

#[test]
fn rsync_missing_is_status_82_and_leaves_no_snapshot() {
    let w = world();
    let cfg = config(&w, "rsync_path = \"/nonexistent/rsync\"\n");
    let out = sender(&cfg, &[&w.src()]).run();
    out.expect_code(82).expect_stdout_empty();
    one_line_naming(&out.stderr, "/nonexistent/rsync");
    w.fs.assert_no_snapshot_left();
}

#[test]
fn source_on_a_filesystem_without_provider() {
    // The work dir is not on btrfs.
    let w = world();
    let live = w.work.path().join("live");
    fs::create_dir(&live).unwrap();
    fs::write(live.join("x"), "x").unwrap();

    let out = sender(&config(&w, ""), &[&live]).run();
    out.expect_code(83).expect_stdout_empty();
    one_line_naming(&out.stderr, "cannot snapshot");

    // `live` runs rsync on the live files and says so.
    let cfg = config(&w, "on_snapshot_failure = \"live\"\n");
    let dst = w.work.path().join("dst");
    let out = local_pull(&w, &cfg).arg(format!("x:{}/", live.display())).arg(&dst).run();
    out.expect_code(0);
    assert!(out.stderr.contains("LIVE"), "{}", out.report());
    assert_eq!(fs::read_to_string(dst.join("x")).unwrap(), "x");
}

#[test]
fn rsync_status_passes_through_from_a_snapshot_run() {
    let w = world();
    let cfg = config(&w, &format!("log_file = \"{}/log\"\nlog_level = \"info\"\n", w.work.path().display()));
    let dst = w.work.path().join("dst");
    let missing = w.src().join("missing");
    let out = local_pull(&w, &cfg).arg(format!("x:{}/", w.src().display())).arg(format!(":{}", missing.display())).arg(&dst).run();
    out.expect_code(23);
    assert_eq!(fs::read_to_string(dst.join("f3")).unwrap(), "file 3\n");
    let log = fs::read_to_string(w.work.path().join("log")).unwrap();
    assert!(log.contains("method=namespace") && log.contains("rsync_status=23"), "{log}");
    w.fs.assert_no_snapshot_left();
}

#[test]
fn rsync_killed_by_a_signal_becomes_128_plus_n() {
    let w = world();
    // A stand-in for rsync that dies by SIGTERM, to show the status mapping.
    let fake = w.work.path().join("dies-by-sigterm");
    fs::write(&fake, "#!/bin/sh\nkill -TERM $$\n").unwrap();
    cmd("chmod").arg("+x").arg(&fake).ok();
    let cfg = config(&w, &format!("rsync_path = \"{}\"\n", fake.display()));
    let out = sender(&cfg, &[&w.src()]).run();
    out.expect_code(128 + 15).expect_stdout_empty();
    w.fs.assert_no_snapshot_left();
}

#[test]
fn ending_signals_reach_rsync_and_the_snapshot_is_removed() {
    let w = world();
    // Enough data that rsync is still sending when the signal comes.
    fs::write(w.src().join("big"), vec![7u8; 64 << 20]).unwrap();
    let log = w.work.path().join("log");
    let cfg = config(&w, &format!("log_file = \"{}\"\nlog_level = \"debug\"\n", log.display()));
    // QUIT and XCPU reach rsync as TERM (see README "Signals").
    for (sig, passed) in [("INT", "INT"), ("TERM", "TERM"), ("HUP", "HUP"), ("QUIT", "TERM"), ("XCPU", "TERM")] {
        let mut child = std::process::Command::new(snaprsync())
            .arg(format!("--snap-config={}", cfg.display()))
            .args(["-a", "--bwlimit=1000"])
            .arg(format!("{}/", w.src().display()))
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
        assert!(text.contains(&format!("got SIG{sig}; passing SIG{passed} on to rsync")), "{text}");
        w.fs.assert_no_snapshot_left();
    }
}

#[test]
fn never_recurses_into_itself_when_installed_as_rsync() {
    let w = world();
    let bin = w.work.path().join("bin");
    fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(snaprsync(), bin.join("rsync")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let dst = w.work.path().join("dst");
    // No config: the default lookup must skip the snaprsync that is named rsync.
    let out = cmd(bin.join("rsync")).env("PATH", &path).args(["-a"]).arg(format!("{}/", w.src().display())).arg(&dst).run();
    out.expect_code(0).expect_stdout_empty();
    assert_eq!(fs::read_to_string(dst.join("sub/deep")).unwrap(), "deep\n");
    w.fs.assert_no_snapshot_left();
}

#[test]
fn passthrough_runs_rsync_unchanged() {
    let out = cmd(snaprsync()).arg("--version").run();
    out.expect_code(0);
    assert!(out.stdout_str().starts_with("rsync  version"), "{}", out.report());
}

#[test]
fn subcommand_word_with_arguments_explains_dot_slash() {
    let out = cmd(snaprsync()).args(["list", "/backup/"]).run();
    out.expect_code(80).expect_stdout_empty();
    one_line_naming(&out.stderr, "./list");
}

#[test]
fn a_hung_rsync_is_ended_when_the_server_connection_drops() {
    let w = world();
    // A stand-in for an rsync that hangs after losing its peer and ignores SIGTERM.
    let fake = w.work.path().join("hangs");
    fs::write(&fake, "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.1; done\n").unwrap();
    cmd("chmod").arg("+x").arg(&fake).ok();
    let cfg = config(&w, &format!("rsync_path = \"{}\"\n", fake.display()));
    let mut child = std::process::Command::new(snaprsync())
        .arg(format!("--snap-config={}", cfg.display()))
        .args(["--server", "--sender", "-logDtpre.iLsfxCIvu", "."])
        .arg(w.src())
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
    let w = world();
    let state = w.work.path().join("state");
    let cfg = config(&w, &format!("state_dir = \"{}\"\n", state.display()));
    // Let nobody read the config and the tree: only the privilege is missing.
    cmd("chmod").args(["-R", "a+rX"]).arg(w.work.path()).arg(w.fs.mnt()).ok();
    let out = cmd("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(snaprsync())
        .arg(format!("--snap-config={}", cfg.display()))
        .args(["--server", "--sender", "-logDtpre.iLsfxCIvu", "."])
        .arg(w.src())
        .run();
    out.expect_code(81).expect_stdout_empty();
    one_line_naming(&out.stderr, "root");
    w.fs.assert_no_snapshot_left();
    assert!(!state.exists() || journal_entries(&state) == 0, "journal left behind");
}

#[test]
fn read_only_snapshot_location_gives_a_clear_error_and_leaves_nothing() {
    let w = world();
    let state = w.work.path().join("state");
    let cfg = config(&w, &format!("state_dir = \"{}\"\n", state.display()));
    let dir = w.fs.mnt().join(".snaprsync");
    cmd("btrfs").args(["subvolume", "create"]).arg(&dir).ok();
    cmd("btrfs").args(["property", "set"]).arg(&dir).args(["ro", "true"]).ok();
    let out = sender(&cfg, &[&w.src()]).run();
    out.expect_code(81).expect_stdout_empty();
    one_line_naming(&out.stderr, ".snaprsync");
    w.fs.assert_no_snapshot_left();
    assert_eq!(journal_entries(&state), 0, "journal left behind");
    cmd("btrfs").args(["property", "set"]).arg(&dir).args(["ro", "false"]).ok();
}

#[test]
fn failed_removal_keeps_rsyncs_status_and_the_next_run_sweeps_it() {
    let w = world();
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
    let locked = config(
        &w,
        &format!(
            "rsync_path = \"{}\"\nstate_dir = \"{}\"\nlog_file = \"{}\"\nsnapshot_removal = \"wait\"\n",
            wrapper.display(),
            state.display(),
            log.display()
        ),
    );
    let dst = w.work.path().join("dst");
    let out = cmd(snaprsync())
        .arg(format!("--snap-config={}", locked.display()))
        .arg("-a")
        .arg(format!("{}/", w.src().display()))
        .arg(&dst)
        .run();
    // The backup itself succeeded: rsync's 0 stands.
    out.expect_code(0).expect_stdout_empty();
    assert!(out.stderr.contains("could not remove snapshot"), "{}", out.report());
    assert_eq!(w.fs.leftover_snapshots().len(), 1);
    assert_eq!(journal_entries(&state), 1, "the leftover stays in the journal");

    // `list` shows it with a dead owner; the next run sweeps it.
    cmd("btrfs").args(["property", "set"]).arg(&dir).args(["ro", "false"]).ok();
    let plain = config(&w, &format!("state_dir = \"{}\"\nlog_file = \"{}\"\n", state.display(), log.display()));
    let listed = cmd(snaprsync()).arg(format!("--snap-config={}", plain.display())).arg("list").ok();
    let text = listed.stdout_str();
    assert!(text.lines().any(|l| l.starts_with("btrfs") && l.contains(" dead ") && l.contains("snaprsync-")), "{text}");
    // `list --json`: the same rows, one object a line, every column a field
    // (only this test's filesystem: other tests' snapshots come and go).
    let mnt = format!("{}/", w.fs.mnt().display());
    let json = cmd(snaprsync()).arg(format!("--snap-config={}", plain.display())).args(["list", "--json"]).ok();
    let objects: Vec<serde_json::Value> = json
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|o| o["path"].as_str().is_some_and(|p| p.starts_with(&mnt)))
        .collect();
    let rows: Vec<&str> = text.lines().skip(1).filter(|l| l.contains(&format!(" {mnt}"))).collect();
    assert_eq!((objects.len(), rows.len()), (1, 1), "one row and one JSON line for the leftover\n{text}\n{}", json.stdout_str());
    let (o, row) = (&objects[0], rows[0]);
    let cols: Vec<&str> = row.split_whitespace().collect();
    let s = |k: &str| o[k].as_str().unwrap_or_else(|| panic!("{k} is not a string in {o}")).to_owned();
    assert_eq!((s("provider").as_str(), s("owner").as_str()), ("btrfs", "dead"), "{o}");
    assert_eq!(s("provider"), cols[0], "{o} vs {row}");
    assert_eq!(s("owner"), cols[1], "{o} vs {row}");
    assert_eq!(s("created"), cols[2], "{o} vs {row}");
    assert_eq!(o["pid"].as_u64().map(|p| p.to_string()).as_deref(), Some(cols[3]), "{o} vs {row}");
    assert!(row.ends_with(&format!(" {}", s("path"))), "{o} vs {row}");
    assert!(s("stamp").starts_with("snaprsync-") && s("path").contains(&s("stamp")), "{o}");
    assert_eq!(o.as_object().unwrap().len(), 6, "provider, owner, created, pid, path, stamp: {o}");
    cmd(snaprsync()).arg(format!("--snap-config={}", plain.display())).arg("-a").arg(format!("{}/", w.src().display())).arg(&dst).ok();
    w.fs.assert_no_snapshot_left();
    // The background removal drops the run's own record right after its snapshot.
    let deadline = Instant::now() + Duration::from_secs(5);
    while journal_entries(&state) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(journal_entries(&state), 0);
    assert!(fs::read_to_string(&log).unwrap().contains("sweep: removed"));
}

/// A config for `w` that keeps snapshots in `snapshot_dir` (at the root of the
/// mount) and logs at info level to `log`. Tests that plant things use a name
/// of their own: every sweep looks into every btrfs mount, and other tests
/// running at the same time must neither see nor sweep what they plant.
fn sweep_config(w: &Rig, name: &str, snapshot_dir: &str, log: &Path) -> PathBuf {
    let p = w.work.path().join(format!("{name}.toml"));
    let text = format!(
        "btrfs_snapshot_dir = \"{snapshot_dir}\"\nstate_dir = \"{}\"\nlog_file = \"{}\"\nlog_level = \"info\"\n",
        w.work.path().join("state").display(),
        log.display()
    );
    fs::write(&p, text).unwrap();
    p
}

/// `snaprsync cleanup`, with the log emptied first so it shows this run alone.
fn cleanup(config: &Path, log: &Path) -> (Output, String) {
    fs::write(log, "").unwrap();
    let out = cmd(snaprsync()).arg(format!("--snap-config={}", config.display())).arg("cleanup").run();
    (out, fs::read_to_string(log).unwrap())
}

/// An ordinary snapshot run (a local copy of `data/`), with the log emptied first.
fn backup(w: &Rig, config: &Path, log: &Path) -> (Output, String) {
    fs::write(log, "").unwrap();
    let out = cmd(snaprsync())
        .arg(format!("--snap-config={}", config.display()))
        .arg("-a")
        .arg(format!("{}/", w.src().display()))
        .arg(w.work.path().join("dst"))
        .run();
    (out, fs::read_to_string(log).unwrap())
}

fn lstat(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A victim subvolume is still there, as a subvolume, with its file.
fn assert_intact(victim: &Path) {
    assert!(is_subvolume(victim), "{} was deleted", victim.display());
    assert_eq!(fs::read_to_string(victim.join("keep")).unwrap(), "keep\n");
}

/// Waits for the background removal of the runs' own snapshots in `dir`.
fn settled_snapshots_in(dir: &Path) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| is_subvolume(p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The attack: names that look like snapshots of dead runs, planted as symlinks
/// to other subvolumes, as plain directories, and in snapshot directories that
/// others can write to, own, or that are symlinks. Round after round, neither
/// `cleanup` nor the sweep of an ordinary run deletes any of them, each is
/// reported, and a genuine stale snapshot next to them is still removed.
#[test]
fn sweep_deletes_only_real_snapshots_in_a_root_only_snapshot_dir() {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    let w = world();
    let mnt = w.fs.mnt().to_owned();
    let log = w.work.path().join("sweep.log");
    let good = sweep_config(&w, "good", ".snaps-attacked", &log);
    let victims = [mnt.join("victim-a"), mnt.join("victim-b")];
    for v in &victims {
        create_subvolume(v);
        fs::write(v.join("keep"), "keep\n").unwrap();
    }

    // An ordinary run makes the snapshot directory: root's subvolume, 0700.
    let (out, text) = backup(&w, &good, &log);
    out.expect_code(0).expect_stdout_empty();
    let snapdir = mnt.join(".snaps-attacked");
    let m = lstat(&snapdir);
    assert!(m.is_dir() && m.ino() == 256 && m.uid() == 0, "{m:?}");
    assert_eq!(m.mode() & 0o7777, 0o700, "{text}");

    // Snapshot directories not to be trusted, and why each is not.
    let wide = mnt.join(".wide");
    create_subvolume(&wide);
    fs::set_permissions(&wide, fs::Permissions::from_mode(0o777)).unwrap();
    let owned = mnt.join(".owned");
    create_subvolume(&owned);
    fs::set_permissions(&owned, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&owned, Some(65534), Some(65534)).unwrap();
    let plain = mnt.join(".plain");
    fs::create_dir(&plain).unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o700)).unwrap();
    let link = mnt.join(".link");
    symlink(".snaps-attacked", &link).unwrap();
    let untrusted = [
        (sweep_config(&w, "wide", ".wide", &log), &wide, "its mode is 0777"),
        (sweep_config(&w, "owned", ".owned", &log), &owned, "owned by uid 65534"),
        (sweep_config(&w, "plain", ".plain", &log), &plain, "plain directory"),
        (sweep_config(&w, "link", ".link", &log), &link, "symlink"),
    ];

    const DEAD: &str = "snaprsync-20200101T000000Z-p1";
    let mut kept = Vec::new();
    for round in 0..20 {
        // In the untrusted ones: a real read-only snapshot, a plain directory
        // and a symlink to a victim, all named like a dead run's snapshot.
        for dir in [&wide, &owned, &plain] {
            let (sub, dir_, sym) =
                (dir.join(format!("{DEAD}-{round}0")), dir.join(format!("{DEAD}-{round}1")), dir.join(format!("{DEAD}-{round}2")));
            snapshot_ro(w.fs.mnt(), &sub);
            fs::create_dir(&dir_).unwrap();
            symlink(&victims[round % 2], &sym).unwrap();
            kept.extend([sub, dir_, sym]);
        }
        // In the real one: symlinks to both victims, a plain directory, and a
        // genuine stale snapshot that must go.
        let links = [snapdir.join(format!("{DEAD}-{round}0")), snapdir.join(format!("{DEAD}-{round}1"))];
        for (l, v) in links.iter().zip(&victims) {
            symlink(v, l).unwrap();
        }
        let planted_dir = snapdir.join(format!("{DEAD}-{round}2"));
        fs::create_dir(&planted_dir).unwrap();
        fs::write(planted_dir.join("keep"), "keep\n").unwrap();
        // A directory laid out as runs lay out a snapshot of their own
        // (`<name>/<name>`), holding a symlink to a victim instead.
        let planted_holder = snapdir.join(format!("{DEAD}-{round}3"));
        let planted_inner = planted_holder.join(format!("{DEAD}-{round}3"));
        fs::create_dir(&planted_holder).unwrap();
        symlink(&victims[round % 2], &planted_inner).unwrap();
        kept.extend(links.iter().cloned().chain([planted_dir.clone(), planted_holder.clone(), planted_inner.clone()]));
        let stale = snapdir.join(format!("snaprsync-20200101T000000Z-p2-{round}"));
        snapshot_ro(w.fs.mnt(), &stale);
        // Genuine leftovers as runs lay them out now: a snapshot in a directory
        // of its own, and such a directory left empty (a run killed before its
        // snapshot was made).
        let stale_held = snapdir.join(format!("snaprsync-20200101T000000Z-p4-{round}"));
        fs::create_dir(&stale_held).unwrap();
        snapshot_ro(w.fs.mnt(), &stale_held.join(stale_held.file_name().unwrap()));
        let empty_held = snapdir.join(format!("snaprsync-20200101T000000Z-p5-{round}"));
        fs::create_dir(&empty_held).unwrap();

        for (config, dir, why) in &untrusted {
            let (out, text) = cleanup(config, &log);
            out.expect_code(0);
            assert!(!out.stdout_str().lines().any(|l| l.starts_with("removed /")), "{}", out.report());
            let warning = format!("snapshot directory {}: ", dir.display());
            assert!(
                text.lines().any(|l| l.contains(&warning) && l.contains(why)),
                "round {round}: no warning for {}:\n{text}",
                dir.display()
            );
            // Nor may a snapshot run use it.
            let (out, _) = backup(&w, config, &log);
            out.expect_code(81).expect_stdout_empty();
            assert!(out.stderr.contains(&warning) && out.stderr.contains(why), "{}", out.report());
        }
        assert!(is_subvolume(&stale), "round {round}: removed through the symlinked .link");

        let (out, text) = cleanup(&good, &log);
        out.expect_code(0);
        assert!(out.stdout_str().contains(&format!("removed {}\n", stale.display())), "{}\n{text}", out.report());
        assert!(fs::symlink_metadata(&stale).is_err(), "round {round}: genuine stale snapshot kept");
        for l in &links {
            let warning = format!("{}: not a snapshot snaprsync made (it is a symlink); left alone", l.display());
            assert!(text.contains(&warning), "round {round}: no warning for {}:\n{text}", l.display());
        }
        assert!(text.contains(&format!("{}: not a snapshot snaprsync made (it is a plain directory", planted_dir.display())), "{text}");
        let warning = format!(
            "{}: not a snapshot snaprsync made (it is a plain directory, and {} in it is not a snapshot: it is a symlink); left alone",
            planted_holder.display(),
            planted_inner.display()
        );
        assert!(text.contains(&warning), "round {round}: no warning for {}:\n{text}", planted_holder.display());
        for gone in [&stale_held, &empty_held] {
            assert!(fs::symlink_metadata(gone).is_err(), "round {round}: genuine leftover {} kept\n{text}", gone.display());
        }

        // The same sweep at the start of an ordinary run.
        let stale = snapdir.join(format!("snaprsync-20200101T000000Z-p3-{round}"));
        snapshot_ro(w.fs.mnt(), &stale);
        let (out, text) = backup(&w, &good, &log);
        out.expect_code(0).expect_stdout_empty();
        assert!(text.contains(&format!("sweep: removed {}", stale.display())), "{text}");
        assert!(fs::symlink_metadata(&stale).is_err(), "round {round}: genuine stale snapshot kept");
        assert!(text.contains(&format!("{}: not a snapshot snaprsync made (it is a symlink)", links[0].display())), "{text}");

        for v in &victims {
            assert_intact(v);
        }
        for k in &kept {
            assert!(fs::symlink_metadata(k).is_ok(), "round {round}: {} was removed", k.display());
        }
    }
    for v in &victims {
        assert_intact(v);
    }
    // The runs' own snapshots, and the directories they were made in, went;
    // everything planted is still there.
    assert_eq!(settled_snapshots_in(&snapdir), Vec::<PathBuf>::new());
    let mut planted: Vec<PathBuf> = kept.iter().filter(|k| k.parent() == Some(snapdir.as_path())).cloned().collect();
    planted.sort();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left: Vec<PathBuf> = fs::read_dir(&snapdir).unwrap().map(|e| e.unwrap().path()).collect();
        left.sort();
        if left == planted || Instant::now() > deadline {
            assert_eq!(left, planted);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    for k in &kept {
        let m = lstat(k);
        let sub = k.to_string_lossy().ends_with('0') && !k.starts_with(&snapdir);
        assert_eq!(is_subvolume(k), sub, "{}: {m:?}", k.display());
    }
}

/// A snapshot directory made before it had to be 0700 (`btrfs subvolume
/// create` gives 0755): a snapshot run closes it, and from then on it is swept.
#[test]
fn an_older_snapshot_dir_is_set_to_0700_and_then_swept() {
    use std::os::unix::fs::MetadataExt;
    let w = world();
    let log = w.work.path().join("sweep.log");
    let config = sweep_config(&w, "old", ".snaps-old", &log);
    let snapdir = w.fs.mnt().join(".snaps-old");
    create_subvolume(&snapdir);
    assert_eq!(lstat(&snapdir).mode() & 0o7777, 0o755);
    let stale = snapdir.join("snaprsync-20200101T000000Z-p1-0");
    snapshot_ro(w.fs.mnt(), &stale);

    let (out, text) = cleanup(&config, &log);
    out.expect_code(0);
    assert!(!out.stderr.contains(".snaps-old"), "no alarm for a directory snaprsync made itself: {}", out.report());
    assert!(is_subvolume(&stale), "swept before the directory was closed:\n{text}");

    let (out, text) = backup(&w, &config, &log);
    out.expect_code(0).expect_stdout_empty();
    assert_eq!(lstat(&snapdir).mode() & 0o7777, 0o700, "{text}");
    assert!(text.contains("mode 0755 set to 0700"), "{text}");

    let (out, _) = cleanup(&config, &log);
    out.expect_code(0);
    assert!(fs::symlink_metadata(&stale).is_err(), "{}", out.report());
    w.fs.assert_no_snapshot_left();
}

/// A snapshot directory below a directory that others than root can change
/// (so they could swap it for a symlink between check and delete) is not used
/// or swept; once that directory is closed again, it is.
#[test]
fn a_snapshot_dir_below_a_directory_others_can_change_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let w = world();
    let log = w.work.path().join("sweep.log");
    let config = sweep_config(&w, "below", ".snaps-below", &log);
    let (out, _) = backup(&w, &config, &log);
    out.expect_code(0);
    let stale = w.fs.mnt().join(".snaps-below/snaprsync-20200101T000000Z-p1-0");
    snapshot_ro(w.fs.mnt(), &stale);

    fs::set_permissions(w.fs.mnt(), fs::Permissions::from_mode(0o777)).unwrap();
    let why = format!("{} above it: its mode 0777 lets others than root change it", w.fs.mnt().display());
    let (out, text) = cleanup(&config, &log);
    out.expect_code(0);
    assert!(text.contains(&why), "{text}");
    assert!(is_subvolume(&stale));
    let (out, _) = backup(&w, &config, &log);
    out.expect_code(81).expect_stdout_empty();
    assert!(out.stderr.contains(&why), "{}", out.report());
    assert!(is_subvolume(&stale));

    fs::set_permissions(w.fs.mnt(), fs::Permissions::from_mode(0o755)).unwrap();
    let (out, _) = cleanup(&config, &log);
    out.expect_code(0);
    assert!(fs::symlink_metadata(&stale).is_err(), "{}", out.report());
    w.fs.assert_no_snapshot_left();
}
