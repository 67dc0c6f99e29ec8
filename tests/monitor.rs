//! Operable unattended: the run history (`snaprsync history`, its JSON lines
//! read field by field), the Nagios check (`snaprsync check`) after good,
//! failed and live runs, a kill -9 recorded as `killed` by the next run, the
//! Prometheus textfile checked by `promtool check metrics`, and the boot-time
//! cleanup unit checked by `systemd-analyze verify` in a scratch root, with
//! its command run after a killed backup. Real btrfs, rsync and snaprsync;
//! needs root, promtool (Debian's prometheus) and systemd's tools.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::support::rig::Rig;
use crate::support::{snaprsync, tree};
use testbed::cmd::{cmd, Output};

/// A btrfs `data/` with a few files (and `slow_mb` MiB more for a run to be
/// killed in), a plain directory on the work dir's filesystem (no provider:
/// a live run there), and a config that adds `extra`.
fn world(extra: &str, slow_mb: usize) -> Rig {
    let rig = Rig::build("monitor")
        .size(300)
        .without_sshd()
        .config(extra)
        .data(move |data| {
            fs::create_dir_all(data.join("sub")).unwrap();
            for i in 0..4 {
                fs::write(data.join(format!("sub/f{i}")), format!("file {i}\n")).unwrap();
            }
            for i in 0..slow_mb {
                fs::write(data.join(format!("chunk{i:02}")), tree::pattern(1 << 20, i as u8)).unwrap();
            }
        })
        .start();
    fs::create_dir_all(plain(&rig)).unwrap();
    fs::write(plain(&rig).join("p"), "plain\n").unwrap();
    rig
}

/// A directory on the work dir's filesystem (ext4 here), which no provider snapshots.
fn plain(rig: &Rig) -> PathBuf {
    rig.work.path().join("plain")
}

fn snap(rig: &Rig) -> testbed::cmd::Cmd {
    cmd(snaprsync()).arg(format!("--snap-config={}", rig.config.display()))
}

/// `snaprsync -a SRC/ DEST`, a local backup of SRC (it is snapshotted).
fn backup(rig: &Rig, src: &Path, dest: &Path) -> Output {
    snap(rig).arg("-a").arg(format!("{}/", src.display())).arg(dest).run()
}

/// The history as JSON values, one per line of `history --json ARGS`.
fn history_json(rig: &Rig, args: &[&str]) -> Vec<Value> {
    let out = snap(rig).arg("history").arg("--json").args(args).run();
    assert_eq!(out.code(), Some(0), "{}", out.report());
    out.stdout_str().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// `snaprsync check ARGS`: its status and its one line.
fn check(rig: &Rig, args: &[&str]) -> (i32, String) {
    let out = snap(rig).arg("check").args(args).run();
    let text = out.stdout_str();
    assert_eq!(text.lines().count(), 1, "check prints one line\n{}", out.report());
    (out.code().unwrap(), text.trim_end().to_owned())
}

fn time(v: &Value) -> SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

/// The keys every record has, in the order it writes them.
const FIELDS: &[&str] = &[
    "stamp",
    "role",
    "start",
    "end",
    "sources",
    "provider",
    "exposure",
    "live_reason",
    "snapshots",
    "create_ms",
    "program_ms",
    "remove_ms",
    "program_status",
    "status",
    "removal",
    "outcome",
    "warnings",
    "error",
];

fn assert_fields(r: &Value) {
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = FIELDS.to_vec();
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want, "{r}");
}

/// A stamp as snaprsync makes it for process `pid`.
fn is_stamp_of(stamp: &Value, pid: Option<u32>) -> bool {
    let s = stamp.as_str().unwrap_or("");
    s.starts_with("snaprsync-") && pid.is_none_or(|p| s.ends_with(&format!("-p{p}")))
}

#[test]
fn history_json_holds_every_field_of_a_consistent_a_failed_and_a_live_run() {
    let rig = world("on_snapshot_failure = \"live\"\nsnapshot_removal = \"wait\"\n", 0);
    let before = SystemTime::now() - Duration::from_secs(1);
    let good = backup(&rig, &rig.src(), &rig.dest("good"));
    assert_eq!(good.code(), Some(0), "{}", good.report());
    // rsync cannot make the destination's parents: it fails, after the snapshot was read.
    let failed = backup(&rig, &rig.src(), &rig.dest("no/such/dir"));
    let failed_status = failed.code().unwrap();
    assert!(failed_status != 0 && failed_status < 80, "{}", failed.report());
    let live = backup(&rig, &plain(&rig), &rig.dest("live"));
    assert_eq!(live.code(), Some(0), "{}", live.report());
    let after = SystemTime::now() + Duration::from_secs(1);
    rig.fs.assert_no_snapshot_left();

    let rs = history_json(&rig, &[]);
    assert_eq!(rs.len(), 3, "{rs:?}");
    let src = rig.src().display().to_string();
    for r in &rs {
        assert_fields(r);
        assert!(is_stamp_of(&r["stamp"], None), "{r}");
        assert_eq!(r["role"], "rsync");
        let (start, end) = (time(&r["start"]), time(&r["end"]));
        assert!(before <= start && start <= end && end <= after, "{r}");
        if let Some(ms) = r["program_ms"].as_u64() {
            assert!(ms <= end.duration_since(start).unwrap().as_millis() as u64 + 1, "{r}");
        }
    }
    let stamps: Vec<&str> = rs.iter().map(|r| r["stamp"].as_str().unwrap()).collect();
    assert!(stamps[0] != stamps[1] && stamps[1] != stamps[2], "{stamps:?}");

    let (g, f, l) = (&rs[0], &rs[1], &rs[2]);
    assert_eq!(g["sources"], serde_json::json!([src]));
    assert_eq!((&g["provider"], &g["exposure"], &g["live_reason"]), (&Value::from("btrfs"), &Value::from("namespace"), &Value::Null));
    assert_eq!((&g["snapshots"], &g["program_status"], &g["status"]), (&Value::from(1), &Value::from(0), &Value::from(0)));
    assert!(g["create_ms"].is_u64() && g["remove_ms"].is_u64(), "{g}");
    assert_eq!(
        (&g["removal"], &g["outcome"], &g["warnings"], &g["error"]),
        (&Value::from("ok"), &Value::from("consistent"), &serde_json::json!([]), &Value::Null)
    );

    assert_eq!(f["sources"], serde_json::json!([src]));
    assert_eq!((&f["provider"], &f["exposure"], &f["snapshots"]), (&Value::from("btrfs"), &Value::from("namespace"), &Value::from(1)));
    assert_eq!((&f["program_status"], &f["status"]), (&Value::from(failed_status), &Value::from(failed_status)));
    assert_eq!((&f["removal"], &f["outcome"], &f["error"]), (&Value::from("ok"), &Value::from("failed"), &Value::Null));
    assert!(f["create_ms"].is_u64() && f["remove_ms"].is_u64(), "{f}");

    assert_eq!(l["sources"], serde_json::json!([plain(&rig).display().to_string()]));
    assert_eq!((&l["provider"], &l["exposure"], &l["snapshots"]), (&Value::Null, &Value::from("live"), &Value::from(0)));
    let reason = l["live_reason"].as_str().unwrap();
    assert!(reason.contains(&plain(&rig).display().to_string()) && reason.contains("ext4"), "{l}");
    // snaprsync became rsync (exec) for the live run: its status is the backup server's to see.
    assert_eq!(
        (&l["program_status"], &l["status"], &l["removal"], &l["outcome"]),
        (&Value::Null, &Value::Null, &Value::from("none"), &Value::from("live"))
    );
    assert_eq!((&l["create_ms"], &l["program_ms"], &l["remove_ms"], &l["error"]), (&Value::Null, &Value::Null, &Value::Null, &Value::Null));
    let warned = l["warnings"].as_array().unwrap();
    assert!(warned.len() == 1 && warned[0].as_str().unwrap().contains("backing up the LIVE files"), "{l}");

    // The line for people, and the filters.
    let out = snap(&rig).arg("history").run();
    let lines: Vec<String> = out.stdout_str().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{}", out.report());
    assert!(lines[0].contains("  consistent status 0   rsync 0") && lines[0].contains("btrfs/namespace  removal ok"), "{}", lines[0]);
    assert!(lines[1].contains("  failed ") && lines[2].contains("  live ") && lines[2].contains("live because: "), "{lines:?}");
    assert_eq!(history_json(&rig, &[&format!("{src}/sub")]).len(), 2, "a source that holds PATH counts");
    assert_eq!(history_json(&rig, &[&plain(&rig).display().to_string()]).len(), 1);
    assert_eq!(history_json(&rig, &["--since=1h"]).len(), 3);
    assert_eq!(history_json(&rig, &["--since=2099-01-01"]).len(), 0);
    let bad = snap(&rig).arg("history").arg("--since=someday").run();
    assert_eq!(bad.code(), Some(80), "{}", bad.report());
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.report());
}

#[test]
fn check_is_ok_after_a_good_run_and_critical_after_a_failed_or_live_one() {
    let rig = world("on_snapshot_failure = \"live\"\n", 0);
    let src = rig.src().display().to_string();
    let (s, line) = check(&rig, &[]);
    assert_eq!(s, 3, "nothing recorded, nothing named: {line}");
    assert!(line.starts_with("SNAPRSYNC UNKNOWN - "), "{line}");
    let (s, line) = check(&rig, &[&src]);
    assert_eq!(s, 2, "{line}");

    assert_eq!(backup(&rig, &rig.src(), &rig.dest("a")).code(), Some(0));
    let (s, line) = check(&rig, &[&src]);
    assert_eq!(s, 0, "{line}");
    assert!(line.starts_with(&format!("SNAPRSYNC OK - {src}: consistent ")), "{line}");
    let perf = line.split_once(" | ").map(|(_, p)| p).unwrap_or_else(|| panic!("no perfdata: {line}"));
    assert!(perf.starts_with(&format!("'{src} age'=")) && perf.contains(";;90000;0 ") && perf.ends_with("leftovers=0;0;;0"), "{line}");

    let failed = backup(&rig, &rig.src(), &rig.dest("no/such/dir"));
    let (s, line) = check(&rig, &[&src]);
    assert_eq!(s, 2, "{line}");
    assert!(line.starts_with(&format!("SNAPRSYNC CRITICAL - {src}: last run failed with status {} at ", failed.code().unwrap())), "{line}");

    assert_eq!(backup(&rig, &rig.src(), &rig.dest("b")).code(), Some(0));
    assert_eq!(check(&rig, &[&src]).0, 0);

    // A path that only ever had live runs.
    let p = plain(&rig).display().to_string();
    assert_eq!(backup(&rig, &plain(&rig), &rig.dest("live")).code(), Some(0));
    let (s, line) = check(&rig, &[&p]);
    assert_eq!(s, 2, "{line}");
    assert!(line.contains(&format!("{p}: no consistent run within 1day 1h; last consistent run never, last run live")), "{line}");
    // With no PATH, every source recorded: the worst wins.
    assert_eq!(check(&rig, &[]).0, 2);
    // A fresh consistent run, then a live one: a warning.
    let none = rig.work.path().join("none.toml");
    fs::write(&none, fs::read_to_string(&rig.config).unwrap() + "provider = \"none\"\n").unwrap();
    let out = cmd(snaprsync()).arg(format!("--snap-config={}", none.display())).arg("-a").arg(format!("{src}/")).arg(rig.dest("c")).run();
    assert_eq!(out.code(), Some(0), "{}", out.report());
    let (s, line) = check(&rig, &[&src]);
    assert_eq!(s, 1, "{line}");
    assert!(line.contains("last run read the LIVE files (provider = \"none\")"), "{line}");
    // An age limit the consistent run is past.
    std::thread::sleep(Duration::from_millis(1100));
    let (s, line) = check(&rig, &["--max-age=1s", &src]);
    assert_eq!(s, 2, "{line}");
    let (s, line) = check(&rig, &["--max-age=soon"]);
    assert_eq!(s, 3, "{line}");
}

/// Starts a backup slow enough to be killed while its snapshot exists.
fn slow_backup(rig: &Rig, dest: &str) -> Child {
    snap(rig).arg("-a").arg("--bwlimit=1000").arg(format!("{}/", rig.src().display())).arg(rig.dest(dest)).spawn()
}

/// Kills a slow backup with SIGKILL once its snapshot exists; returns its pid.
fn kill_a_backup(rig: &Rig) -> u32 {
    let mut child = slow_backup(rig, "killed");
    rig.wait_for_snapshot();
    let pid = child.id();
    cmd("kill").arg("-KILL").arg(pid.to_string()).ok();
    child.wait().unwrap();
    assert!(!rig.fs.leftover_snapshots().is_empty(), "the killed run left no snapshot to find");
    pid
}

#[test]
fn a_kill_9_shows_as_killed_after_the_next_run() {
    let rig = world("", 8);
    let started = SystemTime::now() - Duration::from_secs(1);
    let pid = kill_a_backup(&rig);
    assert!(history_json(&rig, &[]).is_empty(), "a killed run writes nothing");
    let (s, line) = check(&rig, &[]);
    assert_eq!(s, 3, "nothing recorded, nothing named: {line}");
    let src = rig.src().display().to_string();
    let (s, line) = check(&rig, &[&src]);
    assert_eq!(s, 2, "{line}");
    assert!(line.contains("1 dead run(s) left snapshots or records behind"), "{line}");

    let next = backup(&rig, &rig.src(), &rig.dest("next"));
    assert_eq!(next.code(), Some(0), "{}", next.report());
    rig.fs.assert_no_snapshot_left();
    let rs = history_json(&rig, &[]);
    assert_eq!(rs.len(), 2, "{rs:?}");
    let k = &rs[0];
    assert_fields(k);
    assert!(is_stamp_of(&k["stamp"], Some(pid)), "{k}");
    assert_eq!(
        (&k["outcome"], &k["removal"], &k["status"], &k["end"]),
        (&Value::from("killed"), &Value::from("swept"), &Value::Null, &Value::Null)
    );
    assert_eq!((&k["sources"], &k["provider"]), (&serde_json::json!([src]), &Value::from("btrfs")));
    assert!(time(&k["start"]) >= started - Duration::from_secs(1), "{k}");
    assert_eq!(rs[1]["outcome"], "consistent");
    // The next sweep finds nothing more to record.
    assert_eq!(backup(&rig, &rig.src(), &rig.dest("again")).code(), Some(0));
    let rs = history_json(&rig, &[]);
    assert_eq!(rs.iter().filter(|r| r["outcome"] == "killed").count(), 1, "{rs:?}");
}

#[test]
fn the_history_keeps_the_last_history_size_records() {
    let rig = world("history_size = 3\n", 0);
    for i in 0..5 {
        assert_eq!(backup(&rig, &rig.src(), &rig.dest(&format!("d{i}"))).code(), Some(0));
    }
    let rs = history_json(&rig, &[]);
    assert_eq!(rs.len(), 3);
    // The file is rewritten with the last 3 once it outgrows 3 KiB: it holds
    // at most what fits below that and one more record.
    let text = fs::read_to_string(rig.work.path().join("state/history.jsonl")).unwrap();
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(text.len() <= 3 * 1024 + longest + 1, "{} bytes:\n{text}", text.len());
    assert!(!rig.work.path().join("state/.history.jsonl.tmp").exists());
}

#[test]
fn metrics_file_passes_promtool_after_each_run() {
    let node = testbed::tempdir("monitor-node");
    let prom = node.path().join("snaprsync.prom");
    let rig = world(&format!("metrics_file = \"{}\"\non_snapshot_failure = \"live\"\n", prom.display()), 0);
    let src = rig.src().display().to_string();
    assert_eq!(backup(&rig, &rig.src(), &rig.dest("a")).code(), Some(0));
    let promtool = |text: &str| cmd("promtool").args(["check", "metrics"]).stdin(text.as_bytes().to_vec()).run();
    let text = fs::read_to_string(&prom).unwrap();
    let out = promtool(&text);
    assert_eq!(out.code(), Some(0), "promtool: {}\n{text}", out.report());
    assert!(out.stdout.is_empty() && out.stderr.trim().is_empty(), "promtool complained: {}\n{text}", out.report());
    let sample = |name: &str, source: &str| -> f64 {
        let head = format!("{name}{{source=\"{source}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&head)).unwrap_or_else(|| panic!("no {head}\n{text}")).parse().unwrap()
    };
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    let last_ok = sample("snaprsync_last_success_timestamp_seconds", &src);
    assert!((now - last_ok).abs() < 60.0, "{text}");
    assert_eq!(sample("snaprsync_last_run_consistent", &src), 1.0);
    assert_eq!(sample("snaprsync_last_run_exit_status", &src), 0.0);
    assert!(text.contains("\nsnaprsync_leftovers 0\n"), "{text}");

    // A live run of another source, then a failed one of the first: each source its own.
    assert_eq!(backup(&rig, &plain(&rig), &rig.dest("live")).code(), Some(0));
    let failed = backup(&rig, &rig.src(), &rig.dest("no/such/dir"));
    let text = fs::read_to_string(&prom).unwrap();
    assert_eq!(promtool(&text).code(), Some(0), "{text}");
    let p = plain(&rig).display().to_string();
    let sample = |name: &str, source: &str| -> f64 {
        let head = format!("{name}{{source=\"{source}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&head)).unwrap_or_else(|| panic!("no {head}\n{text}")).parse().unwrap()
    };
    assert_eq!(sample("snaprsync_last_run_live", &p), 1.0);
    assert_eq!(sample("snaprsync_last_run_consistent", &src), 0.0);
    assert_eq!(sample("snaprsync_last_run_exit_status", &src), f64::from(failed.code().unwrap()));
    assert_eq!(sample("snaprsync_last_success_timestamp_seconds", &src), last_ok, "the last consistent run stays");
    assert!(!text.contains(&format!("snaprsync_last_success_timestamp_seconds{{source=\"{p}\"}}")), "never consistent: {text}");
    let names: Vec<String> = fs::read_dir(node.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["snaprsync.prom"], "no temporary file is left");
}

/// The unit as the package ships it.
fn unit_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/systemd/snaprsync-cleanup.service")
}

#[test]
fn boot_cleanup_unit_verifies_and_enables_in_a_scratch_root() {
    // systemd's own units, this unit, and the binary where the unit names it.
    let root = testbed::tempdir("monitor-root");
    let r = root.path();
    fs::create_dir_all(r.join("usr/bin")).unwrap();
    fs::create_dir_all(r.join("lib/systemd")).unwrap();
    cmd("cp").arg("-a").arg("/lib/systemd/system").arg(r.join("lib/systemd/")).ok();
    let text = fs::read_to_string(unit_file()).unwrap();
    fs::write(r.join("lib/systemd/system/snaprsync-cleanup.service"), &text).unwrap();
    fs::copy(snaprsync(), r.join("usr/bin/snaprsync")).unwrap();
    let verify = |unit: &str| cmd("systemd-analyze").args(["verify", "--man=no"]).arg(format!("--root={}", r.display())).arg(unit).run();
    let out = verify("snaprsync-cleanup.service");
    assert_eq!(out.code(), Some(0), "{}", out.report());
    assert!(out.stdout.is_empty() && out.stderr.trim().is_empty(), "systemd-analyze verify warned: {}", out.report());
    // It runs after the local filesystems, once.
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("After=") && l.split_whitespace().any(|u| u.ends_with("local-fs.target"))), "{text}");
    assert!(lines.contains(&"Type=oneshot") && lines.contains(&"WantedBy=multi-user.target"), "{text}");
    let out = cmd("systemctl").arg(format!("--root={}", r.display())).args(["enable", "snaprsync-cleanup.service"]).run();
    assert_eq!(out.code(), Some(0), "{}", out.report());
    let wants = r.join("etc/systemd/system/multi-user.target.wants/snaprsync-cleanup.service");
    assert_eq!(fs::read_link(&wants).unwrap(), Path::new("/lib/systemd/system/snaprsync-cleanup.service"));
    // The checker can fail: a unit with a typo in it.
    fs::write(r.join("lib/systemd/system/snaprsync-cleanup.service"), text.replace("Type=oneshot", "Type=oneshoot")).unwrap();
    assert!(!verify("snaprsync-cleanup.service").stderr.trim().is_empty(), "a broken unit passed");
}

#[test]
fn the_boot_units_command_removes_what_a_killed_backup_left_and_records_it() {
    let rig = world("", 8);
    let pid = kill_a_backup(&rig);
    let text = fs::read_to_string(unit_file()).unwrap();
    let exec: Vec<&str> = text.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap().split_whitespace().collect();
    assert_eq!(exec[0], "/usr/bin/snaprsync");
    // The unit's command, with the binary under test and this test's config.
    let out = snap(&rig).args(&exec[1..]).run();
    assert_eq!(out.code(), Some(0), "{}", out.report());
    assert!(out.stdout_str().contains("removed journal entry"), "{}", out.report());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rig.fs.leftover_snapshots().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    rig.fs.assert_no_snapshot_left();
    let rs = history_json(&rig, &[]);
    assert_eq!(rs.len(), 1, "{rs:?}");
    assert!(is_stamp_of(&rs[0]["stamp"], Some(pid)) && rs[0]["outcome"] == "killed", "{rs:?}");
    let (s, line) = check(&rig, &[]);
    assert_eq!(s, 2, "the last run was killed: {line}");
    assert!(line.contains("last run was killed at "), "{line}");
}

#[test]
fn a_run_killed_while_it_writes_the_history_leaves_the_history_whole() {
    let rig = world("snapshot_removal = \"wait\"\n", 0);
    for i in 0..3 {
        assert_eq!(backup(&rig, &rig.src(), &rig.dest(&format!("d{i}"))).code(), Some(0));
    }
    let history = rig.work.path().join("state/history.jsonl");
    // A line that is no record (a disk error, a hand edit), long enough that
    // the next run's append passes the bound and rewrites the file.
    let mut f = fs::OpenOptions::new().append(true).open(&history).unwrap();
    std::io::Write::write_all(&mut f, format!("{}\n", "x".repeat(1024 * 1024)).as_bytes()).unwrap();
    drop(f);
    let before = fs::read(&history).unwrap();
    // The next run stops with the rewritten history in the temporary file,
    // just before the rename, and is killed there.
    let gate = rig.work.path().join("gate");
    let mut child = snap(&rig)
        .env("SNAPRSYNC_FAULT", format!("history-before-rename:hold={}", gate.display()))
        .arg("-a")
        .arg(format!("{}/", rig.src().display()))
        .arg(rig.dest("killed"))
        .spawn();
    let held = rig.work.path().join("gate.held");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !held.exists() {
        assert!(Instant::now() < deadline, "the run never reached the rename\n{}", rig.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    let tmp = rig.work.path().join("state/.history.jsonl.tmp");
    assert_eq!(fs::read_to_string(&tmp).unwrap().lines().count(), 4, "the rewritten history is in the temporary file");
    cmd("kill").arg("-KILL").arg(child.id().to_string()).ok();
    child.wait().unwrap();
    // The run's own record was appended (and fsynced) before the rewrite began.
    let after = fs::read(&history).unwrap();
    assert!(after.starts_with(&before) && after.len() > before.len(), "the old history stays whole, with the run's record after it");
    assert_eq!(history_json(&rig, &[]).len(), 4);
    // The next run rewrites over the stale temporary file.
    assert_eq!(backup(&rig, &rig.src(), &rig.dest("after")).code(), Some(0));
    let rs = history_json(&rig, &[]);
    assert_eq!(rs.len(), 5, "{rs:?}");
    assert!(rs.iter().all(|r| r["outcome"] == "consistent"), "{rs:?}");
    assert!(!tmp.exists());
}

#[test]
fn exec_runs_are_recorded_with_commands_status_and_warnings() {
    let rig = world("snapshot_removal = \"wait\"\npre_snapshot = [\"/bin/false\"]\nhook_failure = \"warn\"\n", 0);
    let src = rig.src().display().to_string();
    for (command, want) in [("true", 0), ("false", 1)] {
        let out = snap(&rig).args(["exec", &src, "--", command]).run();
        assert_eq!(out.code(), Some(want), "{}", out.report());
    }
    let rs = history_json(&rig, &[]);
    assert_eq!(rs.len(), 2, "{rs:?}");
    for (r, (status, outcome)) in rs.iter().zip([(0, "consistent"), (1, "failed")]) {
        assert_fields(r);
        assert_eq!(
            (&r["role"], &r["sources"], &r["exposure"]),
            (&Value::from("exec"), &serde_json::json!([src]), &Value::from("namespace")),
            "{r}"
        );
        assert_eq!(
            (&r["program_status"], &r["status"], &r["outcome"], &r["removal"]),
            (&Value::from(status), &Value::from(status), &Value::from(outcome), &Value::from("ok")),
            "{r}"
        );
        let w = r["warnings"].as_array().unwrap();
        assert!(w.len() == 1 && w[0].as_str().unwrap().contains("pre_snapshot"), "the failed hook is the run's warning: {r}");
    }
    // The good exec run warned (its hook failed): a warning, not OK.
    let out = snap(&rig).args(["exec", &src, "--", "true"]).run();
    assert_eq!(out.code(), Some(0));
    let (s, line) = check(&rig, &[&src]);
    assert_eq!(s, 1, "{line}");
    assert!(line.contains(&format!("{src}: last run warned: pre_snapshot")), "{line}");
}

/// kill -9 at random points of many runs: the history stays whole (every line
/// a record), each run appears at most once, and every run that left its
/// journal entry (and so its snapshot) behind is recorded as `killed` once a
/// later run has swept it.
#[test]
fn kill_9_at_random_points_never_tears_the_history() {
    let rig = world("", 2);
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    eprintln!("seed {seed}");
    let mut rng = seed;
    let mut below = |n: u64| {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    let mut left_entry = Vec::new();
    let mut pids = Vec::new();
    for t in 0..12 {
        let mut child = slow_backup(&rig, &format!("k{t}"));
        std::thread::sleep(Duration::from_millis(below(1500)));
        cmd("kill").arg("-KILL").arg(child.id().to_string()).run();
        child.wait().unwrap();
        pids.push(child.id());
        // Its journal entry: what the next sweep turns into a `killed` record.
        let entry = rig
            .work
            .path()
            .join("state")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(&format!("-p{}.toml", child.id())));
        if entry {
            left_entry.push(child.id());
        }
        // Every other trial, a run in between sweeps (and records) what the last left.
        if t % 2 == 1 {
            assert_eq!(backup(&rig, &rig.src(), &rig.dest(&format!("g{t}"))).code(), Some(0));
        }
    }
    assert_eq!(backup(&rig, &rig.src(), &rig.dest("last")).code(), Some(0));
    rig.fs.assert_no_snapshot_left();
    let text = fs::read_to_string(rig.work.path().join("state/history.jsonl")).unwrap();
    let rs: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a torn line ({e}): {l}"))).collect();
    for pid in &pids {
        let mine: Vec<&Value> = rs.iter().filter(|r| is_stamp_of(&r["stamp"], Some(*pid))).collect();
        assert!(mine.len() <= 1, "pid {pid} recorded twice: {mine:?}");
        if left_entry.contains(pid) {
            assert!(mine.len() == 1 && mine[0]["outcome"] == "killed", "pid {pid} left its journal entry: {mine:?}");
        }
    }
    let killed = rs.iter().filter(|r| r["outcome"] == "killed").count();
    eprintln!("{} kills, {} left their journal entry, {killed} recorded killed, {} records", pids.len(), left_entry.len(), rs.len());
    assert!(left_entry.len() >= 5, "too few kills landed while a journal entry existed to prove anything: {}", left_entry.len());
}
