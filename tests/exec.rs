//! `snaprsync exec` and the hooks, end to end, with real programs on a
//! loop-mounted btrfs: tar, restic and borg copy a tree that the torture
//! writer keeps rewriting, and each restored copy is judged a single point in
//! time (the same check catches plain restic tearing the live tree); a SQLite
//! database in WAL mode takes commits during a backup with a `pre_snapshot`
//! checkpoint hook, and the restored copy is whole and gap-free; hooks that
//! fail or hang end the run with 94 and leave nothing behind; COMMAND's status
//! and stdout are its own; signals and a killed snaprsync behave as in the
//! rsync role. Needs root and the packages btrfs-progs, rsync, tar, restic,
//! borgbackup and sqlite3 (`scripts/deps.sh --tests`); nothing is skipped.

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use testbed::cmd::{cmd, Cmd, Output};
use testbed::torture::{self, Writer};

use crate::support::rig::Rig;

/// The common fixture without sshd, with what exec's tests ask of it.
struct World {
    rig: Rig,
}

impl std::ops::Deref for World {
    type Target = Rig;

    fn deref(&self) -> &Rig {
        &self.rig
    }
}

impl World {
    fn new(tag: &str, size_mb: u64, extra: &str) -> World {
        World { rig: Rig::build(tag).size(size_mb).without_sshd().config(extra).start() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `snaprsync --snap-config=... exec PATHS -- COMMAND...`
    fn exec(&self, paths: &[&Path], command: &[&str]) -> Cmd {
        cmd(crate::support::snaprsync())
            .arg(format!("--snap-config={}", self.config.display()))
            .arg("exec")
            .args(paths)
            .arg("--")
            .args(command)
    }

    /// Journal entries left in `state_dir` (waits for a background removal).
    fn journal_entries(&self) -> Vec<String> {
        let list = || -> Vec<String> {
            fs::read_dir(self.path("state"))
                .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".toml")).collect())
                .unwrap_or_default()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !list().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        list()
    }

    /// No snapshot and no journal entry is left.
    fn assert_nothing_left(&self, what: &str) {
        let snaps = self.fs.settled_leftovers();
        assert!(snaps.is_empty(), "{what}: snapshots left: {snaps:?}\n--- log ---\n{}", self.log());
        let entries = self.journal_entries();
        assert!(entries.is_empty(), "{what}: journal entries left: {entries:?}\n--- log ---\n{}", self.log());
    }

    fn snapshots_taken(&self) -> usize {
        self.log().lines().filter(|l| l.contains("BTRFS_IOC_SNAP_CREATE_V2")).count()
    }
}

/// Runs `c` in a process group of its own that is paused 80% of the time
/// (SIGSTOP/SIGCONT to the group every 10 ms of 50), as a backup program on a
/// slow disk would read: one copy then spans several of the writer's
/// generations. The same pacing is used for the copies through snaprsync and
/// for the live ones, so only the snapshot differs.
fn run_slowed(mut c: Command, tag: &str, dir: &Path) -> Output {
    let (out, err) = (dir.join(format!("{tag}.stdout")), dir.join(format!("{tag}.stderr")));
    c.stdin(Stdio::null()).stdout(fs::File::create(&out).unwrap()).stderr(fs::File::create(&err).unwrap()).process_group(0);
    let cmdline = format!("{c:?}");
    let start = Instant::now();
    let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot start {cmdline}: {e} (is the package installed?)"));
    let group = Pid::from_raw(child.id() as i32);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        let _ = killpg(group, Signal::SIGCONT);
        std::thread::sleep(Duration::from_millis(10));
        let _ = killpg(group, Signal::SIGSTOP);
        std::thread::sleep(Duration::from_millis(40));
        let _ = killpg(group, Signal::SIGCONT);
    };
    Output { cmdline, status, stdout: fs::read(&out).unwrap(), stderr: fs::read_to_string(&err).unwrap(), elapsed: start.elapsed() }
}

fn wait_for_generation(writer: &Writer, gen: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while writer.generation() < gen {
        assert!(Instant::now() < deadline, "torture writer stuck at generation {}", writer.generation());
        std::thread::sleep(Duration::from_millis(10));
    }
}

const RESTIC_PASSWORD: &str = "snaprsync-test";

fn restic(repo: &Path) -> Command {
    let mut c = Command::new("restic");
    c.env("RESTIC_PASSWORD", RESTIC_PASSWORD).env("RESTIC_CACHE_DIR", repo.with_extension("cache")).arg("-r").arg(repo).arg("-q");
    c
}

fn borg_env(c: Cmd, base: &Path) -> Cmd {
    c.env("BORG_BASE_DIR", base).env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes").env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes")
}

/// The copy judged; panics with the verdict if it is not one instant.
fn assert_consistent(what: &str, copy: &Path, w: &World) -> torture::Verdict {
    let verdict = torture::check(copy).unwrap_or_else(|e| panic!("{what}: cannot read the copy {}: {e}", copy.display()));
    assert!(verdict.consistent(), "{what}: the copy is not point-in-time: {verdict}\n--- snaprsync log ---\n{}", w.log());
    verdict
}

/// tar, restic and borg through `snaprsync exec` while the torture writer
/// runs: each restored copy is one instant and no snapshot is left. Plain
/// restic of the live tree, paced the same, is caught torn.
#[test]
fn tar_restic_and_borg_read_one_instant_and_live_restic_is_torn() {
    // The writer churns 12.8 MB a generation and each snapshot pins one: room for both.
    let w = World::new("exec-torture", 1536, "");
    let src = w.src();
    let writer = Writer::start(&src, torture::Config { files: 200, size: 64 * 1024 }).expect("start torture writer");
    wait_for_generation(&writer, 1);
    let exec = |command: Vec<std::ffi::OsString>, tag: &str| {
        let mut c = Command::new(crate::support::snaprsync());
        c.arg(format!("--snap-config={}", w.config.display())).arg("exec").arg(&src).arg("--").args(command);
        if tag.starts_with("restic") {
            c.env("RESTIC_PASSWORD", RESTIC_PASSWORD);
        }
        let before = (writer.generation(), w.snapshots_taken());
        let out = run_slowed(c, tag, w.work.path());
        let after = writer.generation();
        assert!(out.status.success(), "{tag} through snaprsync exec failed\n{}\n--- log ---\n{}", out.report(), w.log());
        assert_eq!(w.snapshots_taken(), before.1 + 1, "{tag}: one snapshot per run\n{}", w.log());
        assert!(
            after >= before.0 + 2,
            "{tag}: the copy overlapped only generations {}..{after}; it must span 2 to mean anything",
            before.0
        );
        w.assert_nothing_left(tag);
        (before.0, after)
    };
    let os = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();

    // tar, to a file, read back.
    let tarball = w.path("copy.tar");
    let span = exec(os(&["tar", "--sort=name", "-cf", tarball.to_str().unwrap(), "-C", src.to_str().unwrap(), "."]), "tar");
    let out_dir = w.path("tar-out");
    fs::create_dir(&out_dir).unwrap();
    cmd("tar").arg("-xf").arg(&tarball).arg("-C").arg(&out_dir).ok();
    let v = assert_consistent("tar", &out_dir, &w);
    eprintln!("tar through snaprsync exec: {v} (writer went {}..={} during the run)", span.0, span.1);

    // restic backup to a local repository, then restic restore.
    let repo = w.path("restic-repo");
    let out = {
        let mut c = restic(&repo);
        c.arg("init");
        c.output().unwrap()
    };
    assert!(out.status.success(), "restic init: {}", String::from_utf8_lossy(&out.stderr));
    let span = exec(
        os(&[
            "restic",
            "-r",
            repo.to_str().unwrap(),
            "--cache-dir",
            w.path("restic-cache").to_str().unwrap(),
            "-q",
            "backup",
            src.to_str().unwrap(),
        ]),
        "restic",
    );
    let restored = w.path("restic-restore");
    let out = {
        let mut c = restic(&repo);
        c.args(["restore", "latest", "--target"]).arg(&restored);
        c.output().unwrap()
    };
    assert!(out.status.success(), "restic restore: {}", String::from_utf8_lossy(&out.stderr));
    let v = assert_consistent("restic", &restored.join(src.strip_prefix("/").unwrap()), &w);
    eprintln!("restic through snaprsync exec: {v} (writer went {}..={} during the run)", span.0, span.1);

    // borg create, then borg extract.
    let borg_repo = w.path("borg-repo");
    let base = w.path("borg-base");
    borg_env(cmd("borg"), &base).args(["init", "-e", "none"]).arg(&borg_repo).ok();
    let archive = format!("{}::copy", borg_repo.display());
    let span = {
        let mut c = Command::new(crate::support::snaprsync());
        c.arg(format!("--snap-config={}", w.config.display())).arg("exec").arg(&src).arg("--").args(["borg", "create", &archive]).arg(&src);
        c.env("BORG_BASE_DIR", &base).env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes");
        let before = writer.generation();
        let out = run_slowed(c, "borg", w.work.path());
        assert!(out.status.success(), "borg through snaprsync exec failed\n{}\n--- log ---\n{}", out.report(), w.log());
        w.assert_nothing_left("borg");
        (before, writer.generation())
    };
    assert!(span.1 >= span.0 + 2, "borg: the copy overlapped only generations {}..{}", span.0, span.1);
    let extracted = w.path("borg-out");
    fs::create_dir(&extracted).unwrap();
    borg_env(cmd("borg"), &base).args(["extract", &archive]).current_dir(&extracted).ok();
    let v = assert_consistent("borg", &extracted.join(src.strip_prefix("/").unwrap()), &w);
    eprintln!("borg through snaprsync exec: {v} (writer went {}..={} during the run)", span.0, span.1);

    // Plain restic of the live tree, paced the same: the check must see it torn.
    let mut verdicts = Vec::new();
    for attempt in 0..5 {
        let mut c = restic(&repo);
        c.arg("backup").arg(&src);
        let out = run_slowed(c, &format!("live{attempt}"), w.work.path());
        // 3: the writer's temp files vanished while restic read the directory.
        assert!(matches!(out.status.code(), Some(0 | 3)), "plain restic failed\n{}", out.report());
        let restored = w.path(&format!("live-restore{attempt}"));
        let out = {
            let mut c = restic(&repo);
            c.args(["restore", "latest", "--target"]).arg(&restored);
            c.output().unwrap()
        };
        assert!(out.status.success(), "restic restore: {}", String::from_utf8_lossy(&out.stderr));
        let verdict = torture::check(&restored.join(src.strip_prefix("/").unwrap())).expect("read copy");
        eprintln!("plain restic of the live tree, attempt {attempt}: {verdict}");
        if !verdict.consistent() {
            writer.stop().expect("torture writer");
            return;
        }
        verdicts.push(verdict.to_string());
    }
    panic!("the checker never caught plain restic tearing the live tree, so it proves nothing: {verdicts:?}");
}

/// Rows 1..=n in `table`, without a gap; returns n.
fn gap_free(db: &Path, table: &str) -> u64 {
    let out =
        cmd("sqlite3").arg(db).arg(format!("SELECT count(*), coalesce(min(n), 0), coalesce(max(n), 0) FROM {table}")).ok().stdout_str();
    let v: Vec<u64> = out.trim().split('|').map(|x| x.parse().unwrap()).collect();
    let (count, min, max) = (v[0], v[1], v[2]);
    assert!(count > 0, "{table} is empty in {}", db.display());
    assert!(min == 1 && max == count, "{table} in {} has gaps: {count} rows from {min} to {max}", db.display());
    count
}

/// A SQLite database in WAL mode takes a transaction after another (each
/// writes row n into two tables) while restic backs it up through exec, with a
/// `pre_snapshot` hook that checkpoints it. The restored copy opens, passes
/// `PRAGMA integrity_check`, and holds rows 1..=n in both tables for one n.
///
/// What guarantees it: the snapshot holds the database, its `-wal` and `-shm`
/// at one instant, which is a crash image, and SQLite recovers a crash image
/// of a WAL database to its last commit. The hook checkpoints first, so that
/// the main file holds all that was committed before the snapshot and the WAL
/// is short; the copy no longer leans on a long WAL (a restore that lost the
/// `-wal` still has that much).
#[test]
fn a_pre_snapshot_checkpoint_gives_a_whole_sqlite_copy_during_writes() {
    let w0 = testbed::tempdir("exec-sqlite-cfg");
    // Room for the writer's database and WAL (3 KiB a row, as fast as sqlite3
    // commits): at 512 MiB it filled up, and sqlite3 died of SIGBUS on its
    // shared-memory file or failed with "database or disk is full".
    let fs = testbed::btrfs::Btrfs::new(4096);
    let dir = fs.mnt().join("db");
    fs::create_dir(&dir).unwrap();
    let db = dir.join("app.db");
    let marks = w0.path().join("hook-env");
    let extra = format!(
        "pre_snapshot = [\"/bin/sh\", \"-c\", \"env | grep ^SNAPRSYNC_ > '{}' && exec sqlite3 '{}' '.timeout 20000' 'PRAGMA wal_checkpoint(TRUNCATE)' >&2\"]\nhook_timeout = 30\n",
        marks.display(),
        db.display()
    );
    let config = crate::support::write_config(w0.path(), &extra);
    cmd("sqlite3")
        .arg(&db)
        .arg("PRAGMA journal_mode=WAL; CREATE TABLE t(n INTEGER PRIMARY KEY, pad BLOB); CREATE TABLE u(n INTEGER PRIMARY KEY);")
        .ok();
    // The writer: one transaction per row, as fast as sqlite3 commits them.
    let script = format!(
        "i=0; while :; do i=$((i+1)); echo \"BEGIN; INSERT INTO t VALUES($i, randomblob(3000)); INSERT INTO u VALUES($i); COMMIT;\"; done | sqlite3 -cmd '.timeout 20000' '{}'",
        db.display()
    );
    let mut writer = Command::new("sh").arg("-c").arg(&script).process_group(0).stdout(Stdio::null()).spawn().unwrap();
    let count = |db: &Path| {
        cmd("sqlite3").arg(db).arg(".timeout 20000").arg("SELECT count(*) FROM u").ok().stdout_str().trim().parse::<u64>().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&db) < 2000 {
        assert!(Instant::now() < deadline, "the sqlite writer does not commit");
        std::thread::sleep(Duration::from_millis(50));
    }
    let repo = w0.path().join("repo");
    let mut init = restic(&repo);
    assert!(init.arg("init").status().unwrap().success(), "restic init");
    let before = count(&db);
    let out = cmd(crate::support::snaprsync())
        .arg(format!("--snap-config={}", config.display()))
        .args(["exec"])
        .arg(&dir)
        .arg("--")
        .args(["restic", "-r", repo.to_str().unwrap(), "--cache-dir", w0.path().join("cache").to_str().unwrap(), "-q", "backup"])
        .arg(&dir)
        .env("RESTIC_PASSWORD", RESTIC_PASSWORD)
        .run();
    let after = count(&db);
    let _ = killpg(Pid::from_raw(writer.id() as i32), Signal::SIGKILL);
    let _ = writer.wait();
    let log = crate::support::snaprsync_log(&config);
    assert!(out.status.success(), "backup failed\n{}\n--- log ---\n{log}", out.report());
    // The hook ran, before the snapshot, and was told the run.
    let hook_at = log.find("pre_snapshot hook").unwrap_or_else(|| panic!("the hook did not run\n{log}"));
    let snap_at = log.find("BTRFS_IOC_SNAP_CREATE_V2").expect("a snapshot");
    assert!(hook_at < snap_at, "the hook must run before the snapshot\n{log}");
    let env = fs::read_to_string(&marks).unwrap();
    assert!(env.contains("SNAPRSYNC_STAMP=snaprsync-") && env.contains(&format!("SNAPRSYNC_SOURCES={}", dir.display())), "{env}");
    fs.assert_no_snapshot_left();

    let restored = w0.path().join("restore");
    let mut r = restic(&repo);
    assert!(r.args(["restore", "latest", "--target"]).arg(&restored).status().unwrap().success(), "restic restore");
    let copy = restored.join(db.strip_prefix("/").unwrap());
    let wal = copy.with_extension("db-wal");
    eprintln!("restored -wal: {} bytes", fs::metadata(&wal).map_or(0, |m| m.len()));
    let check = cmd("sqlite3").arg(&copy).arg("PRAGMA integrity_check").ok().stdout_str();
    assert_eq!(check.trim(), "ok", "integrity_check of the restored copy");
    let (t, u) = (gap_free(&copy, "t"), gap_free(&copy, "u"));
    assert_eq!(t, u, "a transaction was split: t has {t} rows, u {u}");
    assert!(before <= t && t <= after, "the copy holds {t} rows; the database had {before} before the backup and {after} after");
    assert!(after > before, "the writer must commit during the backup ({before} → {after})");
    eprintln!("sqlite copy: rows 1..={t}, whole (the writer went from {before} to {after} during the backup)");
}

/// A small tree for the hook and status tests.
fn small_world(tag: &str, extra: &str) -> World {
    let w = World::new(tag, 300, &format!("snapshot_removal = \"wait\"\n{extra}"));
    fs::write(w.src().join("file"), "frozen\n").unwrap();
    w
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
}

fn assert_one_line(out: &Output, needle: &str) {
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.iter().any(|l| l.contains(needle)), "stderr must name {needle:?}\n{}", out.report());
}

/// pre_snapshot fails: 94, COMMAND never runs, post_snapshot runs (told
/// `skipped`), nothing is left; with hook_failure = "warn" the run goes on.
#[test]
fn a_failing_pre_snapshot_hook_fails_the_run_or_warns() {
    let work = testbed::tempdir("exec-hookfail-marks");
    let post_mark = work.path().join("post");
    let hooks = format!(
        "pre_snapshot = [\"/bin/sh\", \"-c\", \"echo pre-says-this-on-stdout; exit 3\"]\npost_snapshot = [\"/bin/sh\", \"-c\", \"echo $SNAPRSYNC_SNAPSHOT >> '{}'\"]\n",
        post_mark.display()
    );
    let w = small_world("exec-hookfail", &hooks);
    let ran = w.path("command-ran");
    let out = w.exec(&[&w.src()], &["touch", ran.to_str().unwrap()]).run();
    out.expect_code(94).expect_stdout_empty();
    assert_one_line(&out, "pre_snapshot hook `/bin/sh -c 'echo pre-says-this-on-stdout; exit 3'` exited with status 3");
    assert!(out.stderr.contains("pre-says-this-on-stdout"), "a hook's stdout goes to stderr\n{}", out.report());
    assert!(!ran.exists(), "the command must not run when pre_snapshot fails");
    assert_eq!(fs::read_to_string(&post_mark).unwrap(), "skipped\n", "post_snapshot runs once pre_snapshot has run");
    assert_eq!(w.snapshots_taken(), 0, "{}", w.log());
    w.assert_nothing_left("pre_snapshot failed");

    // "warn": the run goes on, with a warning.
    fs::write(&w.config, fs::read_to_string(&w.config).unwrap() + "hook_failure = \"warn\"\n").unwrap();
    let out = w.exec(&[&w.src()], &["sh", "-c", "cat file; exit 5"]).current_dir(w.src()).run();
    out.expect_code(5);
    assert_eq!(out.stdout_str(), "frozen\n");
    assert!(out.stderr.contains("hook_failure = \"warn\": going on"), "{}", out.report());
    assert_eq!(fs::read_to_string(&post_mark).unwrap(), "skipped\ncreated\n");
    assert_eq!(w.snapshots_taken(), 1);
    w.assert_nothing_left("pre_snapshot warned");
}

/// A hook that outlasts hook_timeout is ended with every process it started
/// (its process group), the run fails with 94, and nothing is left.
#[test]
fn a_hanging_hook_is_ended_with_its_children_and_nothing_is_left() {
    let work = testbed::tempdir("exec-hookhang-marks");
    let pids = work.path().join("pids");
    let hooks = format!(
        "pre_snapshot = [\"/bin/sh\", \"-c\", \"sleep 300 & echo $! > '{p}'; echo $$ >> '{p}'; sleep 300\"]\nhook_timeout = 2\n",
        p = pids.display()
    );
    let w = small_world("exec-hookhang", &hooks);
    let ran = w.path("command-ran");
    let t = Instant::now();
    let out = w.exec(&[&w.src()], &["touch", ran.to_str().unwrap()]).run();
    out.expect_code(94).expect_stdout_empty();
    assert!(t.elapsed() < Duration::from_secs(15), "the hook was not ended in time: {:?}", t.elapsed());
    assert_one_line(&out, "outlasted hook_timeout = 2 s");
    assert!(!ran.exists());
    let started: Vec<u32> = fs::read_to_string(&pids).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(started.len(), 2, "{started:?}");
    for pid in started {
        assert!(!alive(pid), "hook process {pid} still runs");
    }
    w.assert_nothing_left("pre_snapshot timed out");

    // post_snapshot hanging after the snapshot was made: it is removed again.
    crate::support::write_config(
        w.work.path(),
        "snapshot_removal = \"wait\"\npost_snapshot = [\"/bin/sh\", \"-c\", \"sleep 300\"]\nhook_timeout = 1\n",
    );
    let out = w.exec(&[&w.src()], &["touch", ran.to_str().unwrap()]).run();
    out.expect_code(94);
    assert_one_line(&out, "post_snapshot hook");
    assert!(!ran.exists());
    assert_eq!(w.snapshots_taken(), 1, "the snapshot was made, then removed\n{}", w.log());
    w.assert_nothing_left("post_snapshot timed out");
}

/// Hooks work in the rsync role too: told the stamp and the sources; a failing
/// one stops rsync before it starts.
#[test]
fn hooks_run_in_the_rsync_role() {
    let work = testbed::tempdir("exec-rsync-hook-marks");
    let env_file = work.path().join("env");
    let hooks = format!("pre_snapshot = [\"/bin/sh\", \"-c\", \"env | grep ^SNAPRSYNC_ > '{}'\"]\n", env_file.display());
    let w = small_world("exec-rsync-hook", &hooks);
    let dest = w.path("dest");
    let rsync = |w: &World, dest: &Path| {
        cmd(crate::support::snaprsync())
            .arg(format!("--snap-config={}", w.config.display()))
            .arg("-a")
            .arg(format!("{}/", w.src().display()))
            .arg(dest)
            .run()
    };
    rsync(&w, &dest).success();
    assert_eq!(fs::read_to_string(dest.join("file")).unwrap(), "frozen\n");
    let env = fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("SNAPRSYNC_HOOK=pre_snapshot"), "{env}");
    assert!(env.contains("SNAPRSYNC_STAMP=snaprsync-"), "{env}");
    assert!(env.contains(&format!("SNAPRSYNC_SOURCE_0={}", w.src().display())), "{env}");
    assert!(env.contains("SNAPRSYNC_SOURCE_COUNT=1"), "{env}");
    w.assert_nothing_left("rsync with a hook");

    crate::support::write_config(w.work.path(), "snapshot_removal = \"wait\"\npre_snapshot = [\"/bin/false\"]\n");
    let dest2 = w.path("dest2");
    let out = rsync(&w, &dest2);
    out.expect_code(94).expect_stdout_empty();
    assert!(!dest2.exists(), "rsync must not run\n{}", out.report());
    w.assert_nothing_left("rsync with a failing hook");
}

/// COMMAND's status is exec's, 128+N for a signal; stdout carries COMMAND's
/// output alone; COMMAND reads the snapshot under the original names, with
/// the documented environment; snaprsync's own failures keep their statuses.
#[test]
fn the_commands_status_stdout_and_environment_pass_through() {
    let w = small_world("exec-status", "pre_snapshot = [\"/bin/sh\", \"-c\", \"echo hook-output\"]\n");
    let src = w.src();
    w.exec(&[&src], &["sh", "-c", "exit 7"]).status(7);
    w.exec(&[&src], &["sh", "-c", "kill -TERM $$"]).status(143);
    // The writes go to the live file; the command reads the snapshot.
    let out = w
        .exec(&[&src], &["sh", "-c", "cat \"$SNAPRSYNC_PATH_0/file\"; echo changed > file 2>/dev/null || echo read-only; cat file"])
        .current_dir(&src)
        .run()
        .success();
    assert_eq!(out.stdout_str(), "frozen\nread-only\nfrozen\n", "stdout is the command's alone\n{}", out.report());
    assert!(out.stderr.contains("hook-output"), "{}", out.report());
    let out = w.exec(&[&src, Path::new(".")], &["env"]).current_dir(&src).run().success();
    let env = out.stdout_str();
    for want in [
        "SNAPRSYNC_EXPOSE=namespace".to_owned(),
        "SNAPRSYNC_SNAPSHOT_COUNT=1".to_owned(),
        format!("SNAPRSYNC_SNAPSHOT_0_ORIGIN={}", w.fs.mnt().display()),
        format!("SNAPRSYNC_SNAPSHOT_0_PATH={}", w.fs.mnt().display()),
        "SNAPRSYNC_PATH_COUNT=1".to_owned(),
        format!("SNAPRSYNC_PATH_0={}", src.display()),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing from the command's environment:\n{env}");
    }
    assert!(env.contains("SNAPRSYNC_STAMP=snaprsync-"), "{env}");
    // Snapshots of several volumes: a nested subvolume is shown too.
    testbed::btrfs::create_subvolume(&src.join("nested"));
    fs::write(src.join("nested/inner"), "inner\n").unwrap();
    let out = w.exec(&[&src], &["sh", "-c", "cat nested/inner; echo $SNAPRSYNC_SNAPSHOT_COUNT"]).current_dir(&src).run().success();
    assert_eq!(out.stdout_str(), "inner\n2\n");
    w.assert_nothing_left("status runs");

    // snaprsync's own failures.
    let out = w.exec(&[&src], &["/nonexistent/program"]).run();
    out.expect_code(82).expect_stdout_empty();
    assert_one_line(&out, "/nonexistent/program");
    let out = w.exec(&[&src.join("missing")], &["true"]).run();
    out.expect_code(80).expect_stdout_empty();
    assert_one_line(&out, "does not exist");
    let out = cmd(crate::support::snaprsync()).arg(format!("--snap-config={}", w.config.display())).args(["exec", "/srv"]).run();
    out.expect_code(80);
    assert_one_line(&out, "--");
    // A PATH no provider can snapshot (the work dir is not on btrfs).
    let out = w.exec(&[w.work.path()], &["true"]).run();
    out.expect_code(83).expect_stdout_empty();
    w.assert_nothing_left("failures");
}

/// provider = "none" and the "live" fallback run the command on the live files, saying so.
#[test]
fn without_a_snapshot_the_command_reads_the_live_files_where_allowed() {
    let w = small_world("exec-live", "on_snapshot_failure = \"live\"\n");
    let out = w.exec(&[w.work.path()], &["sh", "-c", "echo $SNAPRSYNC_EXPOSE $SNAPRSYNC_SNAPSHOT_COUNT; exit 4"]).run();
    out.expect_code(4);
    assert_eq!(out.stdout_str(), "live 0\n");
    assert!(out.stderr.contains("LIVE files"), "{}", out.report());
    fs::write(&w.config, fs::read_to_string(&w.config).unwrap() + "provider = \"none\"\n").unwrap();
    let out = w.exec(&[&w.src()], &["sh", "-c", "echo $SNAPRSYNC_EXPOSE"]).run().success();
    assert_eq!(out.stdout_str(), "live\n");
    assert_eq!(w.snapshots_taken(), 0);
}

fn spawn_exec(w: &World, command: &[&str]) -> Child {
    Command::new(crate::support::snaprsync())
        .arg(format!("--snap-config={}", w.config.display()))
        .arg("exec")
        .arg(w.src())
        .arg("--")
        .args(command)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the command runs (snaprsync logs its command line).
fn wait_running(w: &World, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !w.log().contains(&format!("[{pid}] running sh")) {
        assert!(Instant::now() < deadline, "the command never started\n{}", w.log());
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
}

/// TERM to snaprsync reaches the command, whose status is passed on, and the
/// snapshot goes; a snaprsync killed with KILL takes the command with it, and
/// the next run's sweep removes the snapshot.
#[test]
fn signals_and_a_killed_snaprsync_behave_as_in_the_rsync_role() {
    let w = small_world("exec-signals", "");
    let mut child = spawn_exec(&w, &["sh", "-c", "sleep 60"]);
    wait_running(&w, child.id());
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "the command's death by TERM is passed on ({status:?})\n{}", w.log());
    assert!(w.log().contains("passing SIGTERM on to command"), "{}", w.log());
    w.assert_nothing_left("TERM");

    let pidfile = w.path("cmd-pid");
    let mut child = spawn_exec(&w, &["sh", "-c", &format!("echo $$ > '{}'; sleep 60", pidfile.display())]);
    wait_running(&w, child.id());
    let command_pid: u32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(alive(command_pid));
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(command_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(command_pid), "the command outlived a killed snaprsync");
    assert_eq!(w.fs.leftover_snapshots().len(), 1, "a killed run leaves its snapshot for the sweep");
    cmd(crate::support::snaprsync()).arg(format!("--snap-config={}", w.config.display())).arg("cleanup").ok();
    w.assert_nothing_left("KILL, then a sweep");
}

/// A relative source read from a working directory inside the snapshotted
/// volume is read from the snapshot (the program enters its working directory
/// again by path, under the mounts), in the rsync role as in exec: the live
/// file is changed after the snapshot, and the copy holds the old one.
#[test]
fn a_relative_source_is_read_from_the_snapshot() {
    let w = small_world("exec-relative", "");
    let hold = w.path("hold");
    let dest = w.path("dest");
    let mut child = Command::new(crate::support::snaprsync())
        .arg(format!("--snap-config={}", w.config.display()))
        .args(["-a", "./"])
        .arg(&dest)
        .current_dir(w.src())
        .env("SNAPRSYNC_FAULT", format!("after-create:hold={}", hold.display()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let held = w.path("hold.held");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !held.exists() {
        assert!(Instant::now() < deadline, "the run never reached the snapshot\n{}", w.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    fs::write(w.src().join("file"), "changed after the snapshot\n").unwrap();
    fs::write(&hold, "").unwrap();
    assert!(child.wait().unwrap().success(), "{}", w.log());
    assert_eq!(fs::read_to_string(dest.join("file")).unwrap(), "frozen\n", "rsync read the live file");
    w.assert_nothing_left("relative source");
}

/// A signal that comes while `pre_snapshot` runs ends the run (128+N), but
/// `post_snapshot`, which undoes it, still runs to its end: it is not handed
/// the signal that came before it started.
#[test]
fn post_snapshot_runs_to_its_end_after_a_signal_during_pre_snapshot() {
    for round in 0..5 {
        let marks = testbed::tempdir("exec-post");
        let done = marks.path().join("post-done");
        let extra = format!(
            "snapshot_removal = \"wait\"\npre_snapshot = [\"/bin/sh\", \"-c\", \"sleep 2\"]\npost_snapshot = [\"/bin/sh\", \"-c\", \"sleep 0.5; touch '{}'\"]\n",
            done.display()
        );
        let w = World::new(&format!("exec-post{round}"), 300, &extra);
        let mut child = w.exec(&[&w.src()], &["true"]).spawn();
        std::thread::sleep(Duration::from_millis(700));
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + 15), "round {round}: TERM during pre_snapshot\n{}", w.log());
        assert!(done.exists(), "round {round}: post_snapshot was cut short\n{}", w.log());
        w.assert_nothing_left("a signal during pre_snapshot");
    }
}

/// A source reached through a bind mount of a directory inside a subvolume
/// (mountinfo root `/part`) is read from the snapshot of that subvolume, and
/// only that directory of it: the snapshot ioctl would take any directory for
/// the root of the subvolume holding it, and rsync would be shown the whole
/// subvolume where it asked for the directory (tests/bind.rs has the rest).
#[test]
fn a_bind_mounted_directory_inside_a_subvolume_is_read_from_its_snapshot_alone() {
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let w = small_world("exec-bind", "");
    let part = w.fs.mnt().join("part");
    fs::create_dir(&part).unwrap();
    fs::write(part.join("file"), "in part\n").unwrap();
    let view = w.path("view");
    fs::create_dir(&view).unwrap();
    cmd("mount").arg("--bind").arg(&part).arg(&view).ok();
    let _unmount = Unmount(view.clone());
    let dest = w.path("dest");
    let before = w.snapshots_taken();
    let out = cmd(crate::support::snaprsync())
        .arg(format!("--snap-config={}", w.config.display()))
        .arg("-a")
        .arg(format!("{}/", view.display()))
        .arg(&dest)
        .run();
    out.expect_code(0).expect_stdout_empty();
    assert_eq!(w.snapshots_taken() - before, 1, "{}", w.log());
    assert_eq!(crate::support::tree::names(&dest), ["file"], "the bound directory, nothing else of the subvolume");
    w.assert_nothing_left("bind-mounted directory");
}

/// Several subvolumes in one run (a source with two nested below it): the
/// log says "one instant" only when every snapshot was made in one
/// transaction commit, as each snapshot's generation at creation tells
/// (`btrfs subvolume show`, read while the run holds its snapshots); else it
/// names the commits. Over several runs, with a writer committing on the
/// same filesystem, so that both outcomes can occur.
#[test]
fn the_log_says_one_instant_only_for_snapshots_of_one_btrfs_commit() {
    let w = small_world("exec-commit", "");
    for sub in ["a", "b"] {
        testbed::btrfs::create_subvolume(&w.src().join(sub));
    }
    let writer = Writer::start(&w.fs.mnt().join("busy"), torture::Config { files: 50, size: 64 * 1024 }).expect("start torture writer");
    let (mut one, mut several) = (0, 0);
    for round in 0..6 {
        fs::write(w.log_path(), "").unwrap();
        let hold = w.path(&format!("hold{round}"));
        let mut child = w.exec(&[&w.src()], &["true"]).env("SNAPRSYNC_FAULT", format!("after-create:hold={}", hold.display())).spawn();
        let held = w.path(&format!("hold{round}.held"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !held.exists() {
            assert!(Instant::now() < deadline, "the run never reached its snapshots\n{}", w.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut generations: Vec<u64> = Vec::new();
        for snap in w.fs.subvolumes().into_iter().filter(|p| p.contains(".snaprsync/") && p.contains("snaprsync-")) {
            let shown = cmd("btrfs").args(["subvolume", "show"]).arg(w.fs.mnt().join(&snap)).ok().stdout_str();
            let gen =
                shown.lines().find_map(|l| l.trim().strip_prefix("Gen at creation:")).expect("btrfs subvolume show says the generation");
            generations.push(gen.trim().parse().unwrap());
        }
        fs::write(&hold, "").unwrap();
        assert!(child.wait().unwrap().success(), "{}", w.log());
        assert_eq!(generations.len(), 3, "round {round}: three snapshots\n{}", w.log());
        let log = w.log();
        let said =
            log.lines().find(|l| l.contains("btrfs: 3 subvolumes snapshotted")).unwrap_or_else(|| panic!("no line on the commits\n{log}"));
        if generations.iter().all(|g| *g == generations[0]) {
            one += 1;
            assert!(
                said.ends_with(&format!("at one instant (one transaction commit, generation {})", generations[0])),
                "{generations:?}: {said}"
            );
        } else {
            several += 1;
            assert!(!said.contains("one instant") && said.contains("transaction commits"), "{generations:?}: {said}");
        }
    }
    writer.stop().expect("the writer wrote");
    eprintln!("one commit: {one} of 6 runs; several: {several}");
    w.assert_nothing_left("commit generations");
}

/// A source holding more read-only subvolumes (other tools' snapshots) than
/// the usual soft limit of 1024 open files (sshd's sessions under systemd get
/// 1024:524288): each is a place shown, held open while all are mounted. The
/// run raises its soft limit up to the hard one for that and puts it back, so
/// COMMAND and rsync start with the limit they were given. Past the hard
/// limit the run fails with 86 naming the limit and the fix, and leaves
/// nothing.
#[test]
fn more_read_only_subvolumes_below_a_source_than_the_soft_limit_on_open_files() {
    use testbed::btrfs::{create_subvolume, snapshot_ro};
    const SNAPSHOTS: usize = 1100;
    let w = small_world("exec-nofile", "");
    let base = w.src().join("base");
    create_subvolume(&base);
    fs::write(base.join("f"), "in every snapshot\n").unwrap();
    let snaps = w.src().join(".snapshots");
    fs::create_dir(&snaps).unwrap();
    for k in 1..=SNAPSHOTS {
        fs::create_dir(snaps.join(k.to_string())).unwrap();
        snapshot_ro(&base, &snaps.join(format!("{k}/snapshot")));
    }
    // snaprsync ARGS under `ulimit` LIMITS (a shell's words).
    let limited = |limits: &str, args: &[&std::ffi::OsStr]| {
        cmd("sh")
            .arg("-c")
            .arg(format!("{limits} && exec \"$@\""))
            .arg("sh")
            .arg(crate::support::snaprsync())
            .arg(format!("--snap-config={}", w.config.display()))
            .args(args)
            .run()
    };
    let src = w.src();
    let look = format!("ulimit -S -n; cat {0}/.snapshots/{SNAPSHOTS}/snapshot/f; ls {0}/.snapshots | wc -l", src.display());
    let out = limited("ulimit -S -n 1024", &["exec".as_ref(), src.as_os_str(), "--".as_ref(), "sh".as_ref(), "-c".as_ref(), look.as_ref()]);
    out.expect_code(0);
    assert_eq!(out.stdout_str(), format!("1024\nin every snapshot\n{SNAPSHOTS}\n"), "{}", out.report());
    let dest = w.path("dest");
    let from = format!("{}/", src.display());
    limited("ulimit -S -n 1024", &["-a".as_ref(), from.as_ref(), dest.as_os_str()]).expect_code(0).expect_stdout_empty();
    assert_eq!(fs::read_dir(dest.join(".snapshots")).unwrap().count(), SNAPSHOTS);
    assert_eq!(fs::read_to_string(dest.join(format!(".snapshots/{SNAPSHOTS}/snapshot/f"))).unwrap(), "in every snapshot\n");
    let out = limited("ulimit -S -n 500 && ulimit -H -n 600", &["-a".as_ref(), from.as_ref(), w.path("dest2").as_os_str()]);
    out.expect_code(86).expect_stdout_empty();
    assert_one_line(&out, "its hard limit, ulimit -Hn); raise it (LimitNOFILE=");
    w.assert_nothing_left("more read-only subvolumes than open files");
}
