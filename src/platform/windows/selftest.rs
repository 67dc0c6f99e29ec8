//! `snaprsync selftest [--report FILE] [--show-names]`: the field test that
//! users run once per machine, as Administrator, and paste into a bug. In a
//! scratch folder under `%ProgramData%\snaprsync` it makes what each check
//! needs, and reports what it saw:
//!
//! - `vss`: one shadow copy set of the folder's volume, each VSS step with
//!   its time, and every writer's state;
//! - `locked file`: a file held open without any sharing, read from the copy;
//! - `long path`: a file under a path of over 260 characters, read from it;
//! - `acl`: a file whose ACL denies reading to Everyone: refused to a plain
//!   open, read with SeBackupPrivilege and `FILE_FLAG_BACKUP_SEMANTICS`;
//! - `exposures`: the real rsync lists the folder through the device path and
//!   through a drive letter; whole lines (mode, owner, size, time) compared.
//!   Other modes or owners are what a cygwin or MSYS2 rsync shows (DOS paths
//!   are `noacl` to it), reported and passed for those; any other difference
//!   fails;
//! - `killed run`: a child `snaprsync exec` run is killed once VSS lists its
//!   set, and the time until `vssadmin list shadows` no longer does is taken.
//!
//! The report ends with a summary, one line per check, and one line: PASS or
//! FAIL. User, domain and machine names (and the profile folder) are replaced
//! by `<user>`, `<domain>`, `<machine>`, `<profile>` unless `--show-names`.
//! It goes to stdout (an admin subcommand) and to the report file.
//!
//! What the machine does is a [`Field`]: [`Windows`] here; under wine, where
//! VSS cannot run, a test double (dir_double.rs). Each check's failure path
//! can be forced by a fault point, `SNAPRSYNC_FAULT=selftest:CHECK`.
#![allow(clippy::print_stdout)]
// Called by the admin dispatcher through `platform::selftest`.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{expose_with, ffi, flavor_of, reader_env};
use crate::config::{Config, Expose};
use crate::error::{Error, Result};
use crate::provider::vss::Vss;
use crate::provider::{SnapshotSet, Snapshotter, Sweeper};
use crate::winpath::{self, Flavor};

/// How long a killed run's set may stay listed before the check fails.
const KILL_WAIT: Duration = Duration::from_secs(120);
/// How long the child run may take to make its set.
const START_WAIT: Duration = Duration::from_secs(180);
/// `FILE_FLAG_BACKUP_SEMANTICS`.
const BACKUP_SEMANTICS: u32 = 0x0200_0000;

/// What the self-test needs of the machine (see the module header).
pub(super) trait Field {
    /// What makes the shadow copies, for the report's head.
    fn maker(&self) -> String;
    /// Holds `file` open with no sharing at all until the handle is dropped.
    fn hold_open(&mut self, file: &Path) -> std::io::Result<std::fs::File>;
    fn snapshot(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet>;
    /// The sequence's steps and the writers' states, as far as it went.
    fn sequence(&self) -> Vec<String>;
    fn remove(&mut self, set: &SnapshotSet) -> Result<()>;
    /// Denies reading `file` to Everyone in its ACL.
    fn deny_read(&mut self, file: &Path) -> Result<()>;
    /// A plain open and read, as an ordinary program makes it.
    fn read_plain(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    fn rsync(&self) -> Result<PathBuf>;
    /// rsync's listing of `dir` in `set` through `mode`: its argument, the entries.
    fn list(&mut self, set: &SnapshotSet, dir: &Path, rsync: &Path, mode: Expose) -> Result<(String, Vec<(String, String)>)>;
    /// The shadow copies the VSS query lists now.
    fn listed_shadows(&mut self) -> Result<Vec<String>>;
    /// Starts a run that shadows `dir` and holds its set until it is killed.
    fn start_run(&mut self, dir: &Path) -> Result<Box<dyn Killable>>;
}

/// A started child run.
pub(super) trait Killable {
    fn kill(&mut self) -> std::io::Result<()>;
    /// Its exit status, once it has ended by itself.
    fn exited(&mut self) -> Option<i32>;
}

/// Runs the self-test; `args` are what follows `selftest`. Returns 0 when every
/// check passed, else the status of the first failure.
pub fn selftest(cfg: &Config, args: &[OsString]) -> Result<u8> {
    let (report_path, show_names) = parse_args(args)?;
    let base = std::env::var_os("ProgramData").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
    let report_path = report_path.unwrap_or_else(|| base.join("snaprsync").join("selftest-report.txt"));
    let mut field = Windows::new(cfg);
    let report = run(cfg, &mut field, &base.join("snaprsync"), KILL_WAIT);
    finish(&report, &report_path, &if show_names { Redactor::none() } else { Redactor::of_this_machine() })
}

/// `--report FILE`, `--show-names`.
pub(super) fn parse_args(args: &[OsString]) -> Result<(Option<PathBuf>, bool)> {
    let (mut report, mut names) = (None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--report") => {
                report = Some(PathBuf::from(it.next().ok_or_else(|| Error::Usage("selftest: --report needs a file".into()))?))
            }
            Some(s) if s.starts_with("--report=") => report = Some(PathBuf::from(&s["--report=".len()..])),
            Some("--show-names") => names = true,
            _ => {
                return Err(Error::Usage(format!(
                    "selftest: unknown argument {a:?}; usage: snaprsync selftest [--report FILE] [--show-names]"
                )))
            }
        }
    }
    Ok((report, names))
}

/// Writes the report (redacted by `redact`) to `path` and prints it; the status.
pub(super) fn finish(report: &Report, path: &Path, redact: &Redactor) -> Result<u8> {
    let text = redact.apply(&report.render(&path.display().to_string()));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let written = std::fs::File::create(path).and_then(|mut f| f.write_all(text.as_bytes())).map_err(|e| Error::io(path, e));
    print!("{text}");
    written?;
    Ok(report.status())
}

/// One check: what it saw, and how it came out (a short note, or the failure).
pub(super) struct Check {
    pub name: &'static str,
    pub lines: Vec<String>,
    pub outcome: std::result::Result<String, Failed>,
}

/// Why a check failed, and the status it gives: a check's own finding is
/// 95 (a check failed, as doctor's), an error on the way its own status.
#[derive(Debug)]
pub(super) struct Failed {
    pub msg: String,
    pub status: u8,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed { msg: e.to_string(), status: e.exit_code() }
    }
}

impl Check {
    fn new(name: &'static str) -> Check {
        Check { name, lines: Vec::new(), outcome: Ok(String::new()) }
    }

    fn see(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    fn not_run(name: &'static str, why: &str) -> Check {
        Check { name, lines: Vec::new(), outcome: Err(fail(format!("not run: {why}"))) }
    }
}

/// A check's own failure (status 95, a check failed).
fn fail(msg: String) -> Failed {
    Failed { msg, status: crate::error::status::CHECK_FAILED }
}

/// The whole report: its head and each check.
pub(super) struct Report {
    pub head: Vec<String>,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.outcome.is_ok())
    }

    /// 0, or the status of the first check that failed.
    pub fn status(&self) -> u8 {
        self.checks.iter().find_map(|c| c.outcome.as_ref().err().map(|f| f.status)).unwrap_or(0)
    }

    /// The text: head, each check's lines, the summary, then PASS or FAIL.
    pub fn render(&self, report_file: &str) -> String {
        let mut out = String::new();
        for l in &self.head {
            out.push_str(&format!("{l}\n"));
        }
        for c in &self.checks {
            out.push_str(&format!("\n[{}]\n", c.name));
            for l in &c.lines {
                out.push_str(&format!("  {}\n", crate::text::one_line(l)));
            }
        }
        out.push_str(&format!("\nreport file: {report_file}\nsummary:\n"));
        for c in &self.checks {
            let (word, note) = match &c.outcome {
                Ok(n) => ("PASS", n.clone()),
                Err(e) => ("FAIL", e.to_string()),
            };
            let note = if note.is_empty() { String::new() } else { format!(": {note}") };
            out.push_str(&format!("  {word} {}{}\n", c.name, crate::text::one_line(&note)));
        }
        out.push_str(if self.passed() { "PASS\n" } else { "FAIL\n" });
        out
    }
}

/// Replaces names that identify a person or a machine by placeholders.
pub(super) struct Redactor {
    names: Vec<(String, &'static str)>,
}

impl Redactor {
    pub fn none() -> Redactor {
        Redactor { names: Vec::new() }
    }

    /// This machine's: `USERPROFILE`, `USERNAME`, `USERDOMAIN`, `COMPUTERNAME`.
    pub fn of_this_machine() -> Redactor {
        let var = |v: &str| std::env::var(v).ok().filter(|s| !s.trim().is_empty());
        let mut names = Vec::new();
        for (v, label) in [("USERPROFILE", "<profile>"), ("USERNAME", "<user>"), ("USERDOMAIN", "<domain>"), ("COMPUTERNAME", "<machine>")]
        {
            if let Some(n) = var(v) {
                names.push((n, label));
            }
        }
        Redactor::new(names)
    }

    /// Longest first, so that a profile folder goes before the name in it.
    pub fn new(mut names: Vec<(String, &'static str)>) -> Redactor {
        names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
        Redactor { names }
    }

    /// Pure: `text` with every name, in any case, as a whole word, replaced.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (name, label) in &self.names {
            out = replace_word(&out, name, label);
        }
        out
    }
}

/// `text` with each whole-word occurrence of `word` (any case) replaced.
fn replace_word(text: &str, word: &str, by: &str) -> String {
    let (lower, w) = (text.to_lowercase(), word.to_lowercase());
    if w.is_empty() || lower.len() != text.len() {
        // Lowercasing changed the lengths (rare scripts): compare as written.
        return if text.contains(word) { text.replace(word, by) } else { text.to_owned() };
    }
    let word_char = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.');
    let (mut out, mut at) = (String::new(), 0);
    while let Some(i) = lower[at..].find(&w).map(|i| i + at) {
        let end = i + w.len();
        let whole = !word_char(text[..i].chars().next_back()) && !word_char(text[end..].chars().next());
        out.push_str(&text[at..i]);
        out.push_str(if whole { by } else { &text[i..end] });
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// The files the checks read, under the scratch folder.
struct Fixture {
    dir: PathBuf,
    locked: PathBuf,
    long: PathBuf,
    denied: PathBuf,
    content: String,
}

impl Fixture {
    fn make(base: &Path) -> Result<Fixture> {
        let dir = base.join(format!("selftest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut deep = dir.clone();
        while deep.as_os_str().len() < 300 {
            deep.push("forty characters in the name of a folder");
        }
        std::fs::create_dir_all(&deep).map_err(|e| Error::io(&deep, e))?;
        let content = format!("snaprsync selftest {}\n", std::process::id());
        let f = Fixture {
            locked: dir.join("locked by selftest ü.txt"),
            long: deep.join("deep.txt"),
            denied: dir.join("denied by acl.txt"),
            dir,
            content,
        };
        for p in [&f.locked, &f.long, &f.denied] {
            std::fs::write(p, &f.content).map_err(|e| Error::io(p, e))?;
        }
        Ok(f)
    }
}

/// Every check, in order, on `field`, in a scratch folder under `base`
/// (removed again); `kill_wait` bounds the killed run's wait.
pub(super) fn run(cfg: &Config, field: &mut dyn Field, base: &Path, kill_wait: Duration) -> Report {
    let mut head = vec![
        format!("snaprsync {} selftest", env!("CARGO_PKG_VERSION")),
        format!("system: {} {}, {}", std::env::consts::OS, std::env::consts::ARCH, windows_version()),
        format!("config: expose={:?} drive_letters={} vss_timeout={}", cfg.expose, cfg.drive_letters, cfg.vss_timeout),
        format!("shadow copies by: {}", field.maker()),
    ];
    let fixture = match Fixture::make(base) {
        Ok(f) => f,
        Err(e) => {
            head.push(format!("scratch folder: {e}"));
            return Report { head, checks: vec![Check { name: "vss", lines: Vec::new(), outcome: Err(e.into()) }] };
        }
    };
    head.push(format!("scratch folder: {}", fixture.dir.display()));
    let mut checks = Vec::new();
    let mut acl = Check::new("acl");
    if let Err(e) = field.deny_read(&fixture.denied) {
        acl.outcome = Err(e.into());
    }
    let lock = field.hold_open(&fixture.locked);
    let mut vss = Check::new("vss");
    let set = if crate::fault::active("selftest:vss") {
        Err(fail("fault injected at selftest:vss".into()))
    } else {
        field.snapshot(std::slice::from_ref(&fixture.dir)).map_err(Failed::from)
    };
    for l in field.sequence() {
        vss.see(l);
    }
    match set {
        Err(e) => {
            drop(lock);
            vss.outcome = Err(e);
            checks.push(vss);
            for name in ["locked file", "long path", "acl", "exposures"] {
                checks.push(Check::not_run(name, "no shadow copy set"));
            }
            checks.push(Check::not_run("killed run", "VSS made no set here"));
        }
        Ok(set) => {
            for v in &set.volumes {
                vss.see(format!("shadow copy: {} -> {}", v.origin.display(), v.snapshot.display()));
            }
            let writers = vss.lines.iter().filter(|l| l.starts_with("writer ")).count();
            let failed = vss.lines.iter().filter(|l| l.starts_with("writer ") && l.contains(": failed at ")).count();
            vss.outcome = Ok(format!(
                "{} shadow cop{} made; {writers} writer(s), {failed} failed",
                set.volumes.len(),
                if set.volumes.len() == 1 { "y" } else { "ies" }
            ));
            checks.push(vss);
            checks.push(locked_file(&set, &fixture, lock));
            checks.push(long_path(&set, &fixture));
            checks.push(if acl.outcome.is_ok() { denied_file(field, &set, &fixture, acl) } else { acl });
            checks.push(exposures(field, &set, &fixture));
            let removed = field.remove(&set);
            let mut vss_done = Check::new("vss removal");
            for l in field.sequence().into_iter().rev().take(1) {
                vss_done.see(l);
            }
            vss_done.outcome = removed.map(|()| String::new()).map_err(Failed::from);
            checks.push(vss_done);
            checks.push(killed_run(field, &fixture.dir, kill_wait));
        }
    }
    let _ = std::fs::remove_dir_all(&fixture.dir);
    Report { head, checks }
}

/// What `ver` says ("Microsoft Windows [Version 10.0.19045.3803]").
fn windows_version() -> String {
    crate::command::Cmd::new("cmd.exe")
        .arg("/c")
        .arg("ver")
        .run()
        .ok()
        .and_then(|o| o.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned))
        .unwrap_or_else(|| "version unknown".into())
}

/// Reads `path` whole, altered by the fault point `point`.
fn read_faulted(path: &Path, point: &str, read: impl FnOnce(&Path) -> std::io::Result<Vec<u8>>) -> std::io::Result<Vec<u8>> {
    let got = read(path);
    if crate::fault::active(point) {
        return got.map(|mut b| {
            b.truncate(b.len() / 2);
            b
        });
    }
    got
}

fn same(got: &std::io::Result<Vec<u8>>, want: &str) -> String {
    match got {
        Ok(b) if b == want.as_bytes() => "read, content as written".into(),
        Ok(b) => format!("read, but {} bytes that differ from the {} written", b.len(), want.len()),
        Err(e) => format!("cannot read: {e}"),
    }
}

fn locked_file(set: &SnapshotSet, f: &Fixture, lock: std::io::Result<std::fs::File>) -> Check {
    let mut c = Check::new("locked file");
    let held = match lock {
        Ok(h) => h,
        Err(e) => {
            c.outcome = Err(Error::io(&f.locked, e).into());
            return c;
        }
    };
    let live = std::fs::read(&f.locked);
    c.see(format!(
        "live read of the file held open without sharing: {}",
        if live.is_err() { "refused, as it should be" } else { "allowed" }
    ));
    let Some(inside) = set.locate(&f.locked) else {
        c.outcome = Err(fail("the file is in no shadow copy of the set".into()));
        return c;
    };
    let got = read_faulted(&inside, "selftest:locked", |p| std::fs::read(p));
    c.see(format!("{}: {}", inside.display(), same(&got, &f.content)));
    drop(held);
    c.outcome = match (live, got) {
        (Ok(_), _) => Err(fail("the lock did not keep a plain reader out, so the check shows nothing".into())),
        (Err(_), Ok(b)) if b == f.content.as_bytes() => Ok("read from the shadow copy while held open".into()),
        _ => Err(fail(format!("the file held open was not read back from the shadow copy ({})", inside.display()))),
    };
    c
}

fn long_path(set: &SnapshotSet, f: &Fixture) -> Check {
    let mut c = Check::new("long path");
    let n = f.long.as_os_str().len();
    let Some(inside) = set.locate(&f.long) else {
        c.outcome = Err(fail("the long path is in no shadow copy of the set".into()));
        return c;
    };
    c.see(format!("live path: {n} characters; in the shadow copy: {}", inside.as_os_str().len()));
    let got = read_faulted(&inside, "selftest:long", |p| std::fs::read(p));
    c.see(format!("read: {}", same(&got, &f.content)));
    c.outcome = match got {
        Ok(b) if b == f.content.as_bytes() => Ok(format!("a path of {n} characters read from the shadow copy")),
        _ => Err(fail(format!("the file under a path of {n} characters was not read back from the shadow copy"))),
    };
    c
}

/// A file denied to Everyone: refused to a plain open in the shadow copy,
/// read there with SeBackupPrivilege and backup semantics.
fn denied_file(field: &mut dyn Field, set: &SnapshotSet, f: &Fixture, mut c: Check) -> Check {
    let Some(inside) = set.locate(&f.denied) else {
        c.outcome = Err(fail("the denied file is in no shadow copy of the set".into()));
        return c;
    };
    let plain = field.read_plain(&inside);
    c.see(format!("plain read: {}", if plain.is_err() { "refused, as the ACL says" } else { "allowed" }));
    let privilege = ffi::set_privilege("SeBackupPrivilege", true);
    c.see(format!(
        "SeBackupPrivilege: {}",
        match &privilege {
            Ok(true) => "enabled".to_owned(),
            Ok(false) => "the account lacks it".to_owned(),
            Err(e) => format!("cannot enable it: {e}"),
        }
    ));
    let got = read_with_backup_semantics(&inside);
    let got = if crate::fault::active("selftest:acl") { Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied)) } else { got };
    c.see(format!("read with backup semantics: {}", same(&got, &f.content)));
    c.outcome = match (plain, got) {
        (Ok(_), _) => Err(fail("the ACL did not keep a plain reader out, so the check shows nothing".into())),
        (Err(_), Ok(b)) if b == f.content.as_bytes() => Ok("denied to a plain open, read with backup semantics".into()),
        _ => Err(fail(
            "a file denied by its ACL was not read with backup semantics: run as a member of Administrators or Backup Operators".into(),
        )),
    };
    c
}

/// Opens `path` as a backup program does, past its ACL (with SeBackupPrivilege enabled).
pub(super) fn read_with_backup_semantics(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(BACKUP_SEMANTICS).open(path)?;
    let mut b = Vec::new();
    f.read_to_end(&mut b)?;
    Ok(b)
}

/// The real rsync's listing of the folder through both exposures, compared.
fn exposures(field: &mut dyn Field, set: &SnapshotSet, f: &Fixture) -> Check {
    let mut c = Check::new("exposures");
    let rsync = match field.rsync() {
        Ok(r) => r,
        Err(e) => {
            c.outcome = Err(e.into());
            return c;
        }
    };
    let flavor = flavor_of(&rsync);
    let version =
        crate::command::Cmd::new(&rsync).arg("--version").run().ok().and_then(|o| o.lines().next().map(str::trim).map(str::to_owned));
    c.see(format!("rsync: {} ({flavor:?} build): {}", rsync.display(), version.unwrap_or_else(|| "no version line".into())));
    let want = f.locked.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut listings = Vec::new();
    for mode in [Expose::DevicePath, Expose::DriveLetter] {
        match field.list(set, &f.dir, &rsync, mode) {
            Ok((arg, mut entries)) => {
                if mode == Expose::DriveLetter && crate::fault::active("selftest:exposures") {
                    // Another owner, as a cygwin rsync derives one from the ACL.
                    if let Some((_, m)) = entries.iter_mut().find(|(n, _)| *n == want) {
                        let mut fields: Vec<&str> = m.split(' ').collect();
                        fields[1] = "197108:197121";
                        *m = fields.join(" ");
                    }
                }
                c.see(format!("{mode:?}: rsync lists {arg}"));
                for (n, m) in &entries {
                    c.see(format!("  {m} {n}"));
                }
                if !entries.iter().any(|(n, _)| *n == want) {
                    c.outcome = Err(fail(format!("rsync did not list {want:?} through {mode:?}")));
                }
                listings.push(entries);
            }
            Err(e) => {
                c.see(format!("{mode:?}: {e}"));
                if c.outcome.is_ok() {
                    c.outcome = Err(e.into());
                }
            }
        }
    }
    let [device, letter] = &listings[..] else { return c };
    let diffs = differences(device, letter);
    for d in &diffs {
        c.see(format!("differs: {}", d.text));
    }
    let (view, other): (Vec<_>, Vec<_>) = diffs.iter().partition(|d| d.view_only);
    if c.outcome.is_err() {
        return c;
    }
    c.outcome = if !other.is_empty() {
        Err(fail(format!(
            "rsync lists {} entr{} with another size, time or presence through the two exposures",
            other.len(),
            ies(other.len())
        )))
    } else if view.is_empty() {
        Ok("both exposures list the same modes, owners, sizes and times".into())
    } else if flavor == Flavor::Native {
        Err(fail(format!(
            "a native rsync lists {} entr{} with other modes or owners through the two exposures",
            view.len(),
            ies(view.len())
        )))
    } else {
        Ok(format!(
            "{} entr{} with other modes or owners through the two, as a {flavor:?} rsync reads a drive-letter path as noacl: keep one expose for a --link-dest series (doctor warns of a switch)",
            view.len(),
            ies(view.len())
        ))
    };
    c
}

fn ies(n: usize) -> &'static str {
    if n == 1 {
        "y"
    } else {
        "ies"
    }
}

/// One way two listings of a folder differ.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Difference {
    pub text: String,
    /// Only the mode or the owner differ (what a cygwin reader's two views give).
    pub view_only: bool,
}

/// Pure: how two listings of one folder (name, "mode owner size date time")
/// differ: an entry with other metadata, or one listed through one exposure only.
pub(super) fn differences(device: &[(String, String)], letter: &[(String, String)]) -> Vec<Difference> {
    let mut out = Vec::new();
    for (name, meta) in device {
        match letter.iter().find(|(n, _)| n == name) {
            Some((_, m)) if m != meta => {
                // Past the mode and the owner: the size and the time.
                fn rest(s: &str) -> Vec<&str> {
                    s.split_whitespace().skip(2).collect()
                }
                out.push(Difference {
                    text: format!("{name}: {meta} (device-path) vs {m} (drive-letter)"),
                    view_only: rest(meta) == rest(m),
                });
            }
            Some(_) => {}
            None => out.push(Difference { text: format!("{name}: listed through device-path only"), view_only: false }),
        }
    }
    for (name, _) in letter {
        if !device.iter().any(|(n, _)| n == name) {
            out.push(Difference { text: format!("{name}: listed through drive-letter only"), view_only: false });
        }
    }
    out
}

/// A child run is killed once VSS lists its set; the time until it no longer does.
fn killed_run(field: &mut dyn Field, dir: &Path, wait: Duration) -> Check {
    let mut c = Check::new("killed run");
    let outcome = (|| -> std::result::Result<String, Failed> {
        let before = field.listed_shadows()?;
        c.see(format!("shadow copies listed before: {}", before.len()));
        let mut child = field.start_run(dir)?;
        let started = Instant::now();
        let theirs = loop {
            let now = field.listed_shadows()?;
            if let Some(s) = now.into_iter().find(|s| !before.contains(s)) {
                break s;
            }
            if let Some(code) = child.exited() {
                return Err(fail(format!("the child run ended with {code} before VSS listed a shadow copy of its own")));
            }
            if started.elapsed() > START_WAIT.min(wait * 10) {
                let _ = child.kill();
                return Err(fail(format!(
                    "the child run's shadow copy never appeared in the VSS query within {} s",
                    started.elapsed().as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        c.see(format!("the child run's set is listed after {:.1} s: {theirs}", started.elapsed().as_secs_f64()));
        child.kill().map_err(|e| Error::io("the child run", e))?;
        let killed = Instant::now();
        loop {
            let mut now = field.listed_shadows()?;
            if crate::fault::active("selftest:kill") {
                now.push(theirs.clone());
            }
            if !now.contains(&theirs) {
                let took = killed.elapsed().as_secs_f64();
                c.see(format!("gone from the VSS query {took:.1} s after the kill"));
                return Ok(format!("its set was gone from the VSS query {took:.1} s after the kill"));
            }
            if killed.elapsed() > wait {
                return Err(fail(format!("a killed run's shadow copy {theirs} was still listed {} s after the kill", wait.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    })();
    // A letter the killed run mapped, to a copy now gone: removed as the sweep does.
    let mut strays = super::StrayLetters;
    for l in strays.leftovers().unwrap_or_default() {
        let removed = strays.remove_leftover(&l);
        c.see(format!(
            "drive letter {} left by the killed run: {}",
            l.path.display(),
            removed.map_or_else(|e| e.to_string(), |()| "removed".into())
        ));
    }
    c.outcome = outcome;
    c
}

/// Real Windows: VSS, the real rsync, icacls, vssadmin, this snaprsync.
pub(super) struct Windows<'a> {
    cfg: &'a Config,
    vss: Vss,
}

impl<'a> Windows<'a> {
    pub fn new(cfg: &'a Config) -> Windows<'a> {
        Windows { cfg, vss: Vss::new(cfg.vss_timeout).with_provider(cfg.vss_provider_id().ok().flatten()) }
    }
}

impl Field for Windows<'_> {
    fn maker(&self) -> String {
        "VSS".into()
    }
    fn hold_open(&mut self, file: &Path) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new().read(true).write(true).share_mode(0).open(file)
    }
    fn snapshot(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        self.vss.create(sources)
    }
    fn sequence(&self) -> Vec<String> {
        self.vss.trace()
    }
    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        self.vss.remove(set)
    }
    fn deny_read(&mut self, file: &Path) -> Result<()> {
        // S-1-1-0: Everyone; RD: read data.
        crate::command::Cmd::new("icacls").arg(file).arg("/deny").arg("*S-1-1-0:(RD)").run().map(drop)
    }
    fn read_plain(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn rsync(&self) -> Result<PathBuf> {
        crate::real_rsync::find(self.cfg)
    }
    fn list(&mut self, set: &SnapshotSet, dir: &Path, rsync: &Path, mode: Expose) -> Result<(String, Vec<(String, String)>)> {
        list_through(self.cfg, set, dir, rsync, mode)
    }
    fn listed_shadows(&mut self) -> Result<Vec<String>> {
        let out = crate::command::Cmd::new("vssadmin").arg("list").arg("shadows").run()?;
        Ok(shadow_devices(&out))
    }
    fn start_run(&mut self, dir: &Path) -> Result<Box<dyn Killable>> {
        let me = std::env::current_exe().map_err(|e| Error::io("snaprsync.exe", e))?;
        let child = std::process::Command::new(&me)
            .args(config_args(std::env::args_os()))
            .arg("exec")
            .arg(dir)
            .args(["--", "cmd.exe", "/c", "ping -n 600 127.0.0.1 >NUL"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| Error::NotStarted { what: "snaprsync exec", path: me.clone(), msg: e.to_string() })?;
        Ok(Box::new(ChildRun(child)))
    }
}

/// Pure: the `--snap-config` options among this process's arguments, for
/// the child run (it reads the same config).
pub(super) fn config_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = args.skip(1);
    while let Some(a) = args.next() {
        if a == "--snap-config" {
            out.push(a);
            out.extend(args.next());
        } else if a.to_string_lossy().starts_with("--snap-config=") {
            out.push(a);
        }
    }
    out
}

/// A child process, killed outright (TerminateProcess).
pub(super) struct ChildRun(pub std::process::Child);

impl Killable for ChildRun {
    fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()?;
        self.0.wait().map(drop)
    }
    fn exited(&mut self) -> Option<i32> {
        self.0.try_wait().ok().flatten().map(|s| s.code().unwrap_or(-1))
    }
}

impl Drop for ChildRun {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Pure: the shadow copy devices in `vssadmin list shadows` output (its
/// labels are translated; the device names are not).
pub(super) fn shadow_devices(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let i = l.find(r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy")?;
            Some(l[i..].split_whitespace().next()?.trim_end_matches('\\').to_owned())
        })
        .collect()
}

/// `rsync` lists `dir` in `set`, exposed by `mode`, with the source argument
/// rewritten as a backup's is (in the form its build reads): `--list-only`
/// gives each entry's mode, size and time, and a dry run's `%U:%G` its owner
/// (`--list-only` shows none). Entries: (name, "mode owner size date time").
pub(super) fn list_through(
    cfg: &Config,
    set: &SnapshotSet,
    dir: &Path,
    rsync: &Path,
    mode: Expose,
) -> Result<(String, Vec<(String, String)>)> {
    let flavor = flavor_of(rsync);
    let form = |p: &Path| {
        let native = p.to_string_lossy().into_owned();
        if flavor == Flavor::Native {
            format!("{native}\\")
        } else {
            format!("{}/", native.replace('\\', "/"))
        }
    };
    let arg = form(dir);
    let argv: Vec<OsString> = ["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg].map(OsString::from).to_vec();
    let inv = crate::rsync_args::parse(&argv).map_err(|e| Error::Usage(e.to_string()))?;
    let mut exposure = expose_with(mode, &cfg.drive_letters, flavor, set, &inv, &[dir.to_owned()], &[])?;
    let shown = exposure.argv()[4].to_string_lossy().into_owned();
    let nowhere = form(&dir.with_extension("nowhere"));
    let listed = rsync_out(rsync, flavor, &["--list-only", &shown], dir);
    let owners = listed
        .as_ref()
        .ok()
        .map(|_| rsync_out(rsync, flavor, &["-n", "-d", "-go", "--numeric-ids", "--out-format=%U:%G %n", &shown, &nowhere], dir));
    exposure.undo()?;
    let listed = listed?;
    let owners = owners.transpose()?.unwrap_or_default();
    let owner_of: Vec<(String, String)> = owners
        .lines()
        .filter_map(|l| {
            let (o, n) = l.trim_end_matches('\r').split_once(' ')?;
            let n = n.trim_end_matches('/');
            Some((if n == "." || n.is_empty() { ".".to_owned() } else { n.to_owned() }, o.to_owned()))
        })
        .collect();
    let entries = listed_entries(&listed)
        .into_iter()
        .map(|(n, meta)| {
            let owner = owner_of.iter().find(|(o, _)| *o == n).map_or("?", |(_, o)| o.as_str());
            let (perm, rest) = meta.split_once(' ').unwrap_or((&meta, ""));
            let line = format!("{perm} {owner} {rest}");
            (n, line)
        })
        .collect();
    Ok((shown, entries))
}

/// rsync's stdout for `args`, quoted as its build splits a command line.
fn rsync_out(rsync: &Path, flavor: Flavor, args: &[&str], dir: &Path) -> Result<String> {
    let mut cmd = std::process::Command::new(rsync);
    for a in args {
        match flavor {
            Flavor::Native => {
                cmd.arg(a);
            }
            _ => {
                cmd.raw_arg(winpath::cygwin_arg(a).ok_or_else(|| Error::Usage(format!("{a:?} cannot reach a cygwin rsync")))?);
            }
        }
    }
    let out = cmd.envs(reader_env(flavor)).output().map_err(|e| Error::NotStarted {
        what: "rsync",
        path: rsync.to_owned(),
        msg: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(Error::Snapshot {
            path: dir.to_owned(),
            msg: format!(
                "rsync {} ended with {}: {}",
                args.join(" "),
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Pure: the names in `rsync --list-only` output (`-rw-r--r--  38 2026/01/01 00:00:00 NAME`).
#[cfg(test)]
pub(super) fn listed_names(out: &str) -> Vec<String> {
    listed_entries(out).into_iter().map(|(n, _)| n).collect()
}

/// Pure: the entries of `rsync --list-only` output: (name, "mode size date time").
pub(super) fn listed_entries(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut rest = l.trim_end_matches('\r').trim_start();
            let mut meta = Vec::new();
            for _ in 0..4 {
                let end = rest.find(char::is_whitespace)?;
                meta.push(&rest[..end]);
                rest = rest[end..].trim_start();
            }
            (!rest.is_empty()).then(|| (rest.to_owned(), meta.join(" ")))
        })
        .collect()
}
