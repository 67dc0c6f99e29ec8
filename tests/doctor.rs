//! `snaprsync doctor` on a real client: a healthy one (btrfs source, real
//! rsync, writable state_dir, a well-formed forced command), and each failing
//! check brought about on purpose (not root, no rsync, a tmpfs source, a full
//! filesystem, a corrupt journal, a config that does not parse), each giving
//! its FAIL line and status 95. Linux only; needs root, btrfs-progs, rsync
//! and setpriv (util-linux).

use std::fs;
use std::path::{Path, PathBuf};

use testbed::btrfs::Btrfs;
use testbed::cmd::{cmd, Cmd, Output};

/// `snaprsync doctor`'s status when a check fails.
const CHECK_FAILED: i32 = 95;

/// A client: a btrfs filesystem with `data/`, and a config whose state and
/// log live in a work dir of their own.
struct Client {
    fs: Btrfs,
    work: tempfile::TempDir,
    config: PathBuf,
}

impl Client {
    fn new(size_mb: u64) -> Client {
        let fs = Btrfs::new(size_mb);
        fs::create_dir_all(fs.mnt().join("data/sub")).unwrap();
        fs::write(fs.mnt().join("data/sub/f"), "f\n").unwrap();
        let work = testbed::tempdir("doctor");
        let config = work.path().join("config.toml");
        let client = Client { fs, work, config };
        client.set_config("");
        client
    }

    fn set_config(&self, extra: &str) {
        let text = format!(
            "rsync_path = \"/usr/bin/rsync\"\nstate_dir = \"{}\"\nlog = \"{}\"\n{extra}",
            self.state().display(),
            self.work.path().join("snaprsync.log").display()
        );
        fs::write(&self.config, text).unwrap();
    }

    fn state(&self) -> PathBuf {
        self.work.path().join("state")
    }

    fn data(&self) -> PathBuf {
        self.fs.mnt().join("data")
    }

    fn doctor(&self) -> Cmd {
        cmd(crate::support::snaprsync()).arg(format!("--snap-config={}", self.config.display())).arg("doctor")
    }
}

/// The one line of `out` for `check` (`privileges`, `/x: free space`).
fn line<'a>(out: &'a str, check: &str) -> &'a str {
    out.lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(&format!("{check}: "))))
        .unwrap_or_else(|| panic!("no line for {check:?} in:\n{out}"))
}

/// Asserts `check`'s line says `level` and `words`.
fn says(out: &Output, check: &str, level: &str, words: &str) {
    let text = out.stdout_str();
    let l = line(&text, check);
    assert!(l.starts_with(&format!("{level:<4}  ")), "{check} should be {level}: {l}\n{}", out.report());
    assert!(l.contains(words), "{check} should say {words:?}: {l}\n{}", out.report());
}

/// A failing check ends doctor with 95, after every other line and the tally.
fn failed(out: &Output) {
    out.expect_code(CHECK_FAILED);
    let text = out.stdout_str();
    assert!(text.lines().last().is_some_and(|l| l.starts_with("doctor: ") && !l.starts_with("doctor: 0 FAIL")), "{}", out.report());
}

#[test]
fn a_healthy_client_passes_every_check_and_keeps_no_snapshot() {
    let c = Client::new(300);
    let key = format!(
        "command=\"{} --snap-restrict --snap-allow={}\",restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHealthyKeyForDoctor backup@server",
        crate::support::snaprsync(),
        c.data().display()
    );
    let out = c.doctor().arg(c.data()).arg("--authorized-keys-line").arg(&key).run();
    out.expect_code(0);
    let data = c.data().display().to_string();
    says(&out, "privileges", "OK", "running as root");
    says(&out, "config", "OK", "parses");
    says(&out, "rsync", "OK", "rsync version");
    // Made by the snapshot check below, like any run; the probe file is gone.
    says(&out, "log", "OK", "snaprsync.log is writable");
    says(&out, "journal", "OK", "");
    says(&out, &format!("{data}: filesystem"), "OK", "btrfs on /dev/loop");
    says(&out, &format!("{data}: provider"), "OK", "btrfs");
    says(&out, &format!("{data}: free space"), "OK", "free");
    says(&out, &format!("{data}: snapshot"), "OK", "made (btrfs), shown to rsync (namespace");
    says(&out, "authorized_keys line", "OK", "restricted mode");
    assert!(out.stdout_str().contains("doctor: 0 FAIL"), "{}", out.report());
    assert!(out.stderr.is_empty(), "a healthy doctor says nothing on stderr\n{}", out.report());
    c.fs.assert_no_snapshot_left();
    let records: Vec<_> = fs::read_dir(c.state()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(records.is_empty(), "doctor's run left records: {records:?}");
    // state_dir existed by the time of its own check only if an earlier run made it.
    let again = c.doctor().run();
    again.expect_code(0);
    says(&again, "state_dir", "OK", "is writable");
}

#[test]
fn not_root_fails_the_privilege_check() {
    // A copy that user nobody may run, wherever the build lives.
    let dir = testbed::tempdir("doctor-nobody");
    let exe = dir.path().join("snaprsync");
    fs::copy(crate::support::snaprsync(), &exe).unwrap();
    cmd("chmod").args(["755"]).arg(dir.path()).arg(&exe).ok();
    let out = cmd("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&exe).arg("doctor").run();
    failed(&out);
    says(&out, "privileges", "FAIL", "running as uid 65534 without CAP_SYS_ADMIN");
    says(&out, "privileges", "FAIL", "fix: run snaprsync as root");
}

#[test]
fn no_rsync_fails_the_rsync_check() {
    let c = Client::new(300);
    c.set_config("");
    // No rsync_path, and a PATH with no rsync on it.
    let text = fs::read_to_string(&c.config).unwrap().replace("rsync_path = \"/usr/bin/rsync\"\n", "");
    fs::write(&c.config, text).unwrap();
    let empty = testbed::tempdir("doctor-path");
    let out = c.doctor().env("PATH", empty.path()).run();
    failed(&out);
    says(&out, "rsync", "FAIL", "no rsync on PATH other than snaprsync");
    says(&out, "rsync", "FAIL", "fix: install rsync");
    // A named one that is missing fails the same check.
    c.set_config("");
    fs::write(&c.config, fs::read_to_string(&c.config).unwrap().replace("/usr/bin/rsync", "/nonexistent/rsync")).unwrap();
    let out = c.doctor().run();
    failed(&out);
    says(&out, "rsync", "FAIL", "/nonexistent/rsync");
}

/// A tmpfs mounted at a temp dir, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new() -> Tmpfs {
        let dir = testbed::tempdir("doctor-tmpfs");
        cmd("mount").args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"]).arg(dir.path()).ok();
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = cmd("umount").arg(self.0.path()).run();
    }
}

#[test]
fn a_tmpfs_source_fails_the_provider_check() {
    let c = Client::new(300);
    let t = Tmpfs::new();
    fs::write(t.path().join("f"), "f").unwrap();
    let out = c.doctor().arg(t.path()).run();
    failed(&out);
    let p = t.path().display().to_string();
    says(&out, &format!("{p}: filesystem"), "OK", "tmpfs");
    says(&out, &format!("{p}: provider"), "FAIL", "tmpfs, which no provider can snapshot: a backup of it ends with status 83");
    assert!(!out.stdout_str().contains(&format!("{p}: snapshot")), "no snapshot is tried without a provider\n{}", out.report());
    // With on_snapshot_failure = "live" it is a warning: the backup runs, live.
    c.set_config("on_snapshot_failure = \"live\"\n");
    let out = c.doctor().arg(t.path()).run();
    out.expect_code(0);
    says(&out, &format!("{p}: provider"), "WARN", "read the live files");
}

#[test]
fn a_full_filesystem_fails_the_free_space_check() {
    let c = Client::new(200);
    // Filled to ENOSPC: data, then small files for what metadata is left.
    let fill = c.fs.mnt().join("fill");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M"])
        .arg(format!("of={}", fill.display()))
        .stderr(std::process::Stdio::null())
        .status();
    for i in 0..4000 {
        if fs::write(c.fs.mnt().join(format!("meta{i}")), [0u8; 2048]).is_err() {
            break;
        }
    }
    let out = c.doctor().arg(c.data()).run();
    failed(&out);
    says(&out, &format!("{}: free space", c.data().display()), "FAIL", "the filesystem is full; fix: free some space");
    c.fs.assert_no_snapshot_left();
}

#[test]
fn a_corrupt_journal_fails_the_journal_check() {
    let c = Client::new(300);
    fs::create_dir_all(c.state()).unwrap();
    let torn = c.state().join("snaprsync-20260101T000000Z-p1.toml");
    fs::write(&torn, "stamp = \"snaprsync-2026").unwrap();
    let out = c.doctor().run();
    failed(&out);
    says(&out, "journal", "FAIL", &format!("{} is not a run record", torn.display()));
    says(&out, "journal", "FAIL", "snaprsync cleanup sets it aside");
    assert!(torn.exists(), "doctor reports, it does not move the file");
}

#[test]
fn a_config_that_does_not_parse_fails_and_the_rest_still_runs() {
    let c = Client::new(300);
    c.set_config("provider = \"xfs\"\n");
    let out = c.doctor().run();
    failed(&out);
    says(&out, "config", "FAIL", "provider = \"xfs\"");
    says(&out, "rsync", "OK", "rsync version");
}

#[test]
fn a_forced_command_without_restriction_fails() {
    let c = Client::new(300);
    let key = format!(
        "command=\"{} --server --sender . /\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnrestrictedKey x@y",
        crate::support::snaprsync()
    );
    let out = c.doctor().arg(format!("--authorized-keys-line={key}")).run();
    failed(&out);
    says(&out, "authorized_keys line", "FAIL", "lacks --snap-restrict");
}

/// `doctor --json`: one JSON object a line, each finding with the fields of
/// its text line (level, check, detail, fix) and the tally last, parsed and
/// held field by field to what the text run printed for the same client.
#[test]
fn json_lines_hold_every_field_of_the_text_lines() {
    let c = Client::new(300);
    let key = format!(
        "command=\"{} --server --sender . /\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnrestrictedKey x@y",
        crate::support::snaprsync()
    );
    let run = |json: bool| {
        let mut d = c.doctor();
        if json {
            d = d.arg("--json");
        }
        let out = d.arg(c.data()).arg(format!("--authorized-keys-line={key}")).run();
        out.expect_code(CHECK_FAILED);
        out
    };
    // The first run makes state_dir (and the log): both runs then see the same machine.
    run(false);
    let text = run(false);
    let json = run(true);
    assert!(json.stderr.is_empty(), "{}", json.report());
    let text_lines: Vec<String> = text.stdout_str().lines().map(str::to_owned).collect();
    let objects: Vec<serde_json::Value> = json
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", json.report())))
        .collect();
    assert_eq!(objects.len(), text_lines.len(), "a JSON line for every text line\n{}\n{}", text.report(), json.report());
    let (tally, findings) = objects.split_last().unwrap();
    for (o, line) in findings.iter().zip(&text_lines) {
        let field = |name: &str| o[name].as_str().unwrap_or_else(|| panic!("{name} is not a string in {o}")).to_owned();
        let (level, check, detail, fix) = (field("level"), field("check"), field("detail"), field("fix"));
        assert_eq!(o.as_object().unwrap().len(), 4, "exactly level, check, detail, fix: {o}");
        assert!(["OK", "WARN", "FAIL"].contains(&level.as_str()), "{o}");
        let mut rebuilt = format!("{level:<4}  {check}: {detail}");
        if !fix.is_empty() {
            rebuilt.push_str(&format!("; fix: {fix}"));
        }
        if check.ends_with(": snapshot") || check.ends_with(": free space") || check == "log" {
            // Times and free bytes differ between two runs: the rest holds.
            assert!(line.starts_with(&format!("{level:<4}  {check}: ")), "{line}\nvs {o}");
            assert_eq!(line.contains("; fix: "), !fix.is_empty(), "{line}\nvs {o}");
        } else {
            assert_eq!(&rebuilt, line, "the JSON line rebuilds the text line");
        }
    }
    let count = |level: &str| findings.iter().filter(|o| o["level"] == level).count();
    let want = format!("doctor: {} FAIL, {} WARN, {} OK", count("FAIL"), count("WARN"), count("OK"));
    assert_eq!(text_lines.last(), Some(&want), "{}", text.report());
    for (name, level) in [("fail", "FAIL"), ("warn", "WARN"), ("ok", "OK")] {
        assert_eq!(tally[name].as_u64(), Some(count(level) as u64), "tally {tally}");
    }
    assert_eq!(tally.as_object().unwrap().len(), 3, "{tally}");
    let key_check = findings.iter().find(|o| o["check"] == "authorized_keys line").expect("the key line's check");
    assert_eq!(key_check["level"], "FAIL");
    assert!(key_check["detail"].as_str().unwrap().contains("lacks --snap-restrict"), "{key_check}");
    assert!(!key_check["fix"].as_str().unwrap().is_empty(), "{key_check}");
    let data = c.data().display().to_string();
    let checks: Vec<&str> = findings.iter().map(|o| o["check"].as_str().unwrap()).collect();
    for want in ["privileges", "config", "rsync", "state_dir", "log", "journal", "leftovers"] {
        assert!(checks.contains(&want), "{want} missing from {checks:?}");
    }
    for want in ["filesystem", "provider", "free space", "snapshot"] {
        assert!(checks.contains(&format!("{data}: {want}").as_str()), "{data}: {want} missing from {checks:?}");
    }
    c.fs.assert_no_snapshot_left();
}
