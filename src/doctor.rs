//! `snaprsync doctor [--authorized-keys-line=LINE] [PATH...]`: checks a
//! client once, before the first night, and prints one line per check: OK,
//! WARN or FAIL, what was found and the fix. Any FAIL ends it with status 95.
//! With `--json` each line is instead one JSON object with the same fields
//! (`level`, `check`, `detail`, `fix`; the tally as `fail`, `warn`, `ok`).
//!
//! The snapshot check of a PATH is a backup's own path through the code
//! (`guard::Snapshotted::create`, `platform::Exposing::expose`, then
//! `Exposed::finish`), so what it proves holds for the rsync role; like every
//! snapshot run it first sweeps what dead runs left. What differs per OS
//! (privileges, filesystems, free space) comes from `platform::Diagnosing`.
#![allow(clippy::print_stdout)]

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::{self, Options};
use crate::config::{Config, LogTarget, ProviderChoice, Removal};
use crate::error::{status, Error};
use crate::platform::{Space, System};
use crate::run::guard::{Exposed, Snapshotted};
use crate::run::journal::Journal;
use crate::system_log::SystemLog;

/// Below this share of free space a filesystem fails the check: every block
/// written while a snapshot exists takes new space, so writers would fail.
const FAIL_BELOW_PERCENT: u64 = 1;
/// Below this share it is a warning.
const WARN_BELOW_PERCENT: u64 = 10;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        })
    }
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub level: Level,
    pub check: String,
    pub detail: String,
    /// Empty when there is nothing to fix.
    pub fix: String,
}

impl Finding {
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding { level: Level::Ok, check: check.into(), detail: detail.into(), fix: String::new() }
    }

    fn warn(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { level: Level::Warn, check: check.into(), detail: detail.into(), fix: fix.into() }
    }

    fn fail(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { level: Level::Fail, check: check.into(), detail: detail.into(), fix: fix.into() }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = format!("{:<4}  {}: {}", self.level, self.check, self.detail);
        if !self.fix.is_empty() {
            line.push_str(&format!("; fix: {}", self.fix));
        }
        f.write_str(&crate::text::one_line(&line))
    }
}

/// Prints each finding as it is made (a snapshot can take a while), and keeps the worst.
struct Report {
    counts: [usize; 3],
    json: bool,
}

impl Report {
    fn add(&mut self, f: Finding) {
        self.counts[f.level as usize] += 1;
        if self.json {
            println!("{}", serde_json::to_string(&f).unwrap_or_default());
        } else {
            println!("{f}");
        }
    }

    /// The line of an error that ends doctor early.
    fn end(&self, e: &Error) {
        if self.json {
            println!("{}", serde_json::json!({ "error": e.to_string() }));
        } else {
            println!("{}", crate::text::one_line(&format!("doctor: {e}")));
        }
    }

    /// The tally, last.
    fn tally(&self) {
        let [ok, warn, fail] = self.counts;
        if self.json {
            println!("{}", serde_json::json!({ "fail": fail, "warn": warn, "ok": ok }));
        } else {
            println!("doctor: {fail} FAIL, {warn} WARN, {ok} OK");
        }
    }
}

/// Runs every check; returns the exit status.
pub fn run(sys: &dyn System, opts: &Options, args: &cli::Doctor) -> u8 {
    let mut r = Report { counts: [0; 3], json: args.json };
    let privileged = sys.privileges();
    r.add(match &privileged {
        Ok(how) => Finding::ok("privileges", how),
        Err(l) => Finding::fail("privileges", &l.what, &l.fix),
    });
    let (cfg, finding) = config(opts);
    r.add(finding);
    let (rsync, finding) = rsync(sys, &cfg);
    r.add(finding);
    let state = cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir);
    r.add(state_dir(&state));
    r.add(log(&cfg));
    let journal = Journal::new(&state);
    r.add(journal_files(&journal));
    let history = crate::history::History::new(&state, cfg.history_size as usize);
    if let Some(f) = history.read().ok().and_then(|(records, _)| exposure_switch(cfg.expose, &records)) {
        r.add(f);
    }
    r.add(match privileged {
        Ok(_) => leftovers(sys, &cfg, &journal),
        Err(_) => Finding::warn("leftovers", "not looked for: snapshot directories are root's", "run doctor as root"),
    });
    if !args.paths.is_empty() {
        // As a run does: a signal now is remembered, so the snapshot goes first.
        if let Err(e) = sys.hold_signals() {
            r.add(Finding::warn("signals", e.to_string(), "interrupting doctor now may leave a snapshot for the next sweep"));
        }
    }
    for path in &args.paths {
        for f in source(sys, &cfg, opts, rsync.as_deref(), path) {
            r.add(f);
        }
        if let Some(sig) = sys.pending_signal() {
            let e = Error::Interrupted(sig);
            r.end(&e);
            return e.exit_code();
        }
    }
    if let Some(line) = &args.key_line {
        r.add(authorized_keys_line(line));
    }
    r.tally();
    if r.counts[Level::Fail as usize] > 0 {
        status::CHECK_FAILED
    } else {
        0
    }
}

/// The config file parses; with a bad one the rest runs on the defaults.
fn config(opts: &Options) -> (Config, Finding) {
    let path = opts.config.clone().unwrap_or_else(crate::host::default_config_path);
    match Config::for_options(opts) {
        Ok(cfg) if path.exists() => (cfg, Finding::ok("config", format!("{} parses", path.display()))),
        Ok(cfg) => (cfg, Finding::ok("config", format!("no {}: the defaults apply", path.display()))),
        Err(e) => {
            (Config::default(), Finding::fail("config", format!("{e} (the checks below use the defaults)"), "fix the key the line names"))
        }
    }
}

/// `expose` (Windows) against the exposure the last run that used one read
/// through, as the history recorded it: a cygwin or MSYS2 rsync sees other
/// modes and owners through a drive letter than through a device path, so a
/// switch makes the next `--link-dest` backup copy every file again. None
/// where no run used either (on Linux, or before the first run).
pub(crate) fn exposure_switch(configured: crate::config::Expose, records: &[crate::history::Record]) -> Option<Finding> {
    let word = |e: crate::config::Expose| match e {
        crate::config::Expose::DriveLetter => "drive-letter",
        crate::config::Expose::DevicePath => "device-path",
    };
    let now = word(configured);
    let last = records.iter().rev().find(|r| matches!(r.exposure.as_deref(), Some("drive-letter" | "device-path")))?;
    let then = last.exposure.as_deref().unwrap_or_default();
    if then == now {
        return Some(Finding::ok("expose", format!("expose = \"{now}\", as the last run ({}) read", last.start)));
    }
    Some(Finding::warn(
        "expose",
        format!(
            "expose = \"{now}\", but the last run ({}) read through \"{then}\": a cygwin or MSYS2 rsync sees other modes and owners through the two, so the next --link-dest backup copies every file again"
        , last.start),
        format!("set expose = \"{then}\" again, or accept one full copy for the switch (docs/windows.md)"),
    ))
}

/// The real rsync: found, runs, says it is rsync, and is not snaprsync.
fn rsync(sys: &dyn System, cfg: &Config) -> (Option<PathBuf>, Finding) {
    let fix = "install rsync (apt install rsync), or set rsync_path to the real rsync";
    let path = match crate::real_rsync::find(cfg) {
        Ok(p) => p,
        Err(e) => return (None, Finding::fail("rsync", e.to_string(), fix)),
    };
    // The paths checked below are read as this rsync will read them.
    sys.reader(&path);
    if crate::real_rsync::copy_of_me(&path) {
        let detail = format!("{} is a copy of snaprsync itself, which would run itself", path.display());
        return (None, Finding::fail("rsync", detail, fix));
    }
    let out = match crate::command::Cmd::new(&path).arg("--version").run() {
        Ok(out) => out,
        Err(e) => return (None, Finding::fail("rsync", e.to_string(), fix)),
    };
    let first = out.lines().next().unwrap_or("").trim().to_owned();
    if !first.starts_with("rsync") || !first.contains("version") {
        let detail = format!("{} --version printed {first:?}, which is not rsync's version line", path.display());
        return (None, Finding::fail("rsync", detail, fix));
    }
    let notes = sys.rsync_notes(&path).map(|n| format!(" ({n})")).unwrap_or_default();
    let detail = format!("{}: {}{notes}", path.display(), first.split_whitespace().collect::<Vec<_>>().join(" "));
    (Some(path.clone()), Finding::ok("rsync", detail))
}

/// `state_dir` exists and root can write there.
fn state_dir(dir: &Path) -> Finding {
    let check = "state_dir";
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Finding::warn(
            check,
            format!("{} does not exist yet", dir.display()),
            format!("the first snapshot run makes it; or: install -d -m 0700 {}", dir.display()),
        ),
        Err(e) => Finding::fail(check, format!("{}: {e}", dir.display()), "make it a directory root can write"),
        Ok(m) if !m.is_dir() => {
            Finding::fail(check, format!("{} is not a directory", dir.display()), "remove it, or point state_dir elsewhere")
        }
        Ok(_) => {
            let probe = dir.join(format!(".doctor-{}", std::process::id()));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
                Ok(_) => {
                    let _ = std::fs::remove_file(&probe);
                    Finding::ok(check, format!("{} is writable", dir.display()))
                }
                Err(e) => Finding::fail(
                    check,
                    format!("cannot write in {}: {e}; a run could not record itself, so it would not snapshot", dir.display()),
                    "run as root, and make state_dir a directory root can write (mode 0700)",
                ),
            }
        }
    }
}

/// Where log records go, and that they can get there.
fn log(cfg: &Config) -> Finding {
    let check = "log";
    let mut notes = Vec::new();
    let mut level = Level::Ok;
    let mut fix = String::new();
    match SystemLog::for_target(&cfg.log) {
        Err(e) => {
            level = Level::Warn;
            notes.push(format!("{e}: records at log_level are lost (warnings still reach stderr)"));
            fix = "set log = \"syslog\", or a file path".into();
        }
        Ok(Some(sys)) => {
            let sent = sys.send(log::Level::Info, "doctor: a test record (snaprsync doctor checks the log)", &[]);
            match sent {
                Ok(()) => notes.push(format!("records go to {}", sys.describe())),
                Err(e) => {
                    level = Level::Warn;
                    notes.push(format!("cannot send to {}: {e}", sys.describe()));
                    fix = "check that the system log runs, or set log to a file path".into();
                }
            }
        }
        Ok(None) => match &cfg.log {
            LogTarget::Auto => match crate::logger::AUTO_FALLBACK {
                Some(p) => notes.push(appendable(Path::new(p), "log (auto: no journal, no syslog socket here)", &mut level, &mut fix)),
                None => {
                    level = Level::Warn;
                    notes.push("log = \"auto\" finds no journal and no syslog socket here: records at log_level are lost".into());
                    fix = "run a system log, or set log to a file path".into();
                }
            },
            LogTarget::Stderr => notes.push("records go to stderr (the backup server's log)".into()),
            LogTarget::File(p) => notes.push(appendable(p, "log", &mut level, &mut fix)),
            LogTarget::Journald | LogTarget::Syslog | LogTarget::EventLog => {}
        },
    }
    if let Some(p) = &cfg.log_file {
        notes.push(appendable(p, "log_file", &mut level, &mut fix));
    }
    notes.push(format!("log_level {:?}", cfg.log_level).to_lowercase());
    Finding { level, check: check.into(), detail: notes.join("; "), fix }
}

fn appendable(p: &Path, key: &str, level: &mut Level, fix: &mut String) -> String {
    match std::fs::OpenOptions::new().create(true).append(true).open(p) {
        Ok(_) => format!("{key} {} is writable", p.display()),
        Err(e) => {
            *level = (*level).max(Level::Warn);
            *fix = format!("make {} writable by root", p.display());
            format!("{key} {}: {e}", p.display())
        }
    }
}

/// Every file in the journal is a run record.
fn journal_files(journal: &Journal) -> Finding {
    match std::fs::read_dir(journal.dir()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Finding::ok("journal", "no run records yet"),
        Err(e) => return Finding::warn("journal", format!("cannot read {}: {e}", journal.dir().display()), "run doctor as root"),
        Ok(_) => {}
    }
    let (entries, corrupt) = journal.read();
    match corrupt.first() {
        None => Finding::ok("journal", format!("{} run record(s) in {}, all readable", entries.len(), journal.dir().display())),
        Some(c) => Finding::fail(
            "journal",
            format!(
                "{} is not a run record ({}){}",
                c.path.display(),
                c.why,
                if corrupt.len() > 1 { format!(", nor are {} more", corrupt.len() - 1) } else { String::new() }
            ),
            format!(
                "look at it (disk errors? another program writing to {}?); snaprsync cleanup sets it aside as *.corrupt",
                journal.dir().display()
            ),
        ),
    }
}

/// What dead runs left: the sweep's dry run.
fn leftovers(sys: &dyn System, cfg: &Config, journal: &Journal) -> Finding {
    let check = "leftovers";
    let mut provider = match sys.sweep_provider(cfg) {
        Ok(p) => p,
        Err(e) => return Finding::warn(check, format!("cannot look for snapshots: {e}"), "run doctor as root"),
    };
    if let Err(e) = provider.leftovers() {
        return Finding::warn(check, format!("cannot list snapshots: {e}"), "run doctor as root");
    }
    let report = crate::run::sweep::sweep(journal, provider.as_mut(), true, crate::run::sweep::Busy::Wait);
    let live = if report.live.is_empty() { String::new() } else { format!("; {} snapshot(s) of running backups", report.live.len()) };
    if report.stale.is_empty() && report.dead_entries.is_empty() {
        return Finding::ok(check, format!("nothing left by dead runs{live}"));
    }
    let paths: Vec<String> = report.stale.iter().map(|l| l.path.display().to_string()).collect();
    Finding::warn(
        check,
        format!(
            "dead runs left {} snapshot(s) [{}] and {} run record(s){live}",
            report.stale.len(),
            paths.join(", "),
            report.dead_entries.len()
        ),
        "snaprsync cleanup (every snapshot run also sweeps them, the checks of PATHs below included)",
    )
}

/// The checks of one source path: filesystem, provider, free space, and a
/// snapshot made, shown as rsync would see it, and removed.
fn source(sys: &dyn System, cfg: &Config, opts: &Options, rsync: Option<&Path>, path: &Path) -> Vec<Finding> {
    let name = path.display().to_string();
    let at = |what: &str| format!("{name}: {what}");
    let arg = path.as_os_str();
    // The path as rsync would resolve it, as the rsync role finds it.
    let Some(real) = sys.source_path(arg).filter(|p| !arg.is_empty() && p.exists()) else {
        return vec![Finding::fail(at("path"), "does not exist", "name an existing path")];
    };
    let mut out = Vec::new();
    match sys.filesystem(&real) {
        Ok(fs) => out.push(Finding::ok(at("filesystem"), fs)),
        Err(e) => out.push(Finding::fail(at("filesystem"), e.to_string(), "")),
    }
    match sys.space(&real) {
        Ok(space) => out.push(free_space(&at("free space"), space)),
        Err(e) => out.push(Finding::warn(at("free space"), e.to_string(), "")),
    }
    if cfg.provider == ProviderChoice::None {
        out.push(Finding::warn(at("provider"), "provider = \"none\": its backups read the live files", "set provider = \"auto\""));
        return out;
    }
    let sources = vec![real.clone()];
    match sys.provider(cfg, &sources) {
        Ok(p) => out.push(Finding::ok(at("provider"), p.name())),
        Err(Error::NoProvider { fstype, .. }) => {
            let live = cfg.on_snapshot_failure == crate::config::OnSnapshotFailure::Live;
            let (level, then) = if live {
                (Level::Warn, "with on_snapshot_failure = \"live\" its backups read the live files".to_owned())
            } else {
                (Level::Fail, format!("a backup of it ends with status {}", status::NO_PROVIDER))
            };
            let detail = format!("{fstype}, which no provider can snapshot: {then}");
            let fix = "keep it out of snaprsync's backups, or move it to btrfs, ZFS or an LVM logical volume";
            out.push(Finding { level, check: at("provider"), detail, fix: fix.into() });
            return out;
        }
        Err(e) => {
            out.push(Finding::fail(at("provider"), format!("{e} (a backup of it ends with status {})", e.exit_code()), ""));
            return out;
        }
    }
    out.push(snapshot(sys, cfg, opts, rsync, &real, arg.to_owned(), at("snapshot")));
    out
}

fn free_space(check: &str, s: Space) -> Finding {
    let percent = (s.available as u128 * 100).checked_div(s.total as u128).unwrap_or(0) as u64;
    let detail = format!("{} of {} free ({percent}%)", bytes(s.available), bytes(s.total));
    let fix = "free some space: while a snapshot exists, every block written takes new space";
    if percent < FAIL_BELOW_PERCENT {
        Finding::fail(check, format!("{detail}: the filesystem is full"), fix)
    } else if percent < WARN_BELOW_PERCENT {
        Finding::warn(check, format!("{detail}: little room for changes during a backup"), fix)
    } else {
        Finding::ok(check, detail)
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A snapshot of `real` made and exposed as for `rsync --server --sender . ARG`,
/// read there, and removed, through the rsync role's own guards.
fn snapshot(sys: &dyn System, cfg: &Config, opts: &Options, rsync: Option<&Path>, real: &Path, arg: OsString, check: String) -> Finding {
    let argv: Vec<OsString> = ["--server", "--sender", "-logDtpre.iLsfxCIvu", "."].iter().map(OsString::from).chain([arg]).collect();
    let inv = match crate::rsync_args::parse(&argv) {
        Ok(inv) => inv,
        Err(e) => return Finding::fail(check, format!("rsync would not take this path: {e}"), "name the path as a backup server would"),
    };
    let rsync = rsync.map(Path::to_owned).unwrap_or_else(|| PathBuf::from("rsync"));
    let sources = vec![real.to_owned()];
    let live = sys.identity(real);
    let started = Instant::now();
    let made =
        Snapshotted::create(sys, cfg, &sources).and_then(|snap| Exposed::new(snap, |set| sys.expose(cfg, set, &inv, &sources, &rsync)));
    let exposed = match made {
        Ok(e) => e,
        Err(e) => {
            return Finding::fail(
                check,
                format!("{e} (a backup would end with status {})", e.exit_code()),
                "see the line; snaprsync doctor again once fixed",
            )
        }
    };
    let provider = exposed.provider_name();
    let method = exposed.exposure().method();
    // Where rsync would read the source: the same name in a namespace, or the rewritten one.
    let shown =
        inv.source_indices().first().and_then(|&i| exposed.exposure().argv().get(i)).map(PathBuf::from).unwrap_or_else(|| real.to_owned());
    let read = std::fs::metadata(&shown).and_then(|m| if m.is_dir() { std::fs::read_dir(&shown).map(|d| d.count()) } else { Ok(1) });
    let frozen = match (live, sys.identity(&shown)) {
        (Some(a), Some(b)) => Some(a != b),
        _ => None,
    };
    let removed = exposed.finish(sys, Removal::Wait, opts);
    let ms = started.elapsed().as_millis();
    match (read, frozen, removed) {
        (_, _, Err(e)) => Finding::fail(check, format!("made and shown, but not removed: {e}"), "snaprsync cleanup; see the line for why"),
        (Err(e), _, _) => Finding::fail(
            check,
            format!("made ({provider}), but rsync could not read it at {}: {e}", shown.display()),
            "report this with the line",
        ),
        (Ok(_), Some(false), _) => Finding::fail(
            check,
            format!("made ({provider}), but {} still showed the live files ({method})", shown.display()),
            "report this with the line",
        ),
        (Ok(n), _, Ok(_)) => Finding::ok(
            check,
            format!("made ({provider}), shown to rsync ({method}, {n} entries at {}) and removed in {ms} ms", shown.display()),
        ),
    }
}

/// One `authorized_keys` line, split: its options and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLine {
    /// `(name, value)`; a value's `\"` is unescaped.
    pub options: Vec<(String, Option<String>)>,
    pub key_type: String,
    pub key: String,
}

/// Key types sshd takes (OpenSSH 9).
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

/// Splits a line as sshd reads it: options (comma-separated, values in double
/// quotes with `\"` for a quote), then the key type, the key, a comment.
pub fn parse_key_line(line: &str) -> Result<KeyLine, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Err("empty, or a comment".into());
    }
    let mut options = Vec::new();
    let mut rest = line;
    if !KEY_TYPES.iter().any(|t| line.split_whitespace().next() == Some(*t)) {
        let b = line.as_bytes();
        let (mut i, mut name, mut value, mut in_value, mut quoted) = (0, String::new(), None::<String>, false, false);
        loop {
            let c = b.get(i).copied();
            match c {
                Some(b'"') if in_value => quoted = !quoted,
                Some(b'\\') if quoted && b.get(i + 1) == Some(&b'"') => {
                    value.get_or_insert_with(String::new).push('"');
                    i += 1;
                }
                Some(b'=') if !in_value => {
                    in_value = true;
                    value = Some(String::new());
                }
                Some(b',') | Some(b' ') | Some(b'\t') | None if !quoted => {
                    if name.is_empty() {
                        return Err(format!("an empty option at byte {i}"));
                    }
                    options.push((std::mem::take(&mut name), value.take()));
                    in_value = false;
                    if c != Some(b',') {
                        rest = &line[(i).min(line.len())..];
                        break;
                    }
                }
                None => return Err("an unterminated quote in the options".into()),
                Some(_) => {
                    let ch = line[i..].chars().next().unwrap_or(' ');
                    if in_value {
                        value.get_or_insert_with(String::new).push(ch);
                    } else {
                        name.push(ch);
                    }
                    i += ch.len_utf8();
                    continue;
                }
            }
            i += 1;
        }
    }
    let mut words = rest.split_whitespace();
    let key_type = words.next().ok_or("no key after the options")?.to_owned();
    if !KEY_TYPES.contains(&key_type.as_str()) {
        return Err(format!("{key_type:?} is not a key type sshd knows (such as ssh-ed25519)"));
    }
    let key = words.next().ok_or("no key after the key type")?.to_owned();
    if key.len() < 16 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) {
        return Err(format!("the key {:?} is not base64", crate::text::shown(key.as_bytes(), 20)));
    }
    Ok(KeyLine { options, key_type, key })
}

/// An `authorized_keys` line for a backup key: it parses, its forced command
/// is snaprsync in restricted mode with directories to read, and they exist.
pub fn authorized_keys_line(line: &str) -> Finding {
    let check = "authorized_keys line";
    let fail = |detail: String, fix: &str| Finding::fail(check, detail, fix);
    let example = "command=\"/usr/bin/snaprsync --snap-restrict --snap-allow=/srv\",restrict ssh-ed25519 AAAA... backup@server";
    let k = match parse_key_line(line) {
        Ok(k) => k,
        Err(e) => return fail(format!("does not parse: {e}"), &format!("write it as: {example}")),
    };
    let Some(command) = k.options.iter().find(|(n, _)| n.eq_ignore_ascii_case("command")).and_then(|(_, v)| v.clone()) else {
        return fail("no command=\"...\": the key may run anything".into(), &format!("pin it to snaprsync: {example}"));
    };
    let (program, opts) = match crate::restrict::forced_command(&command, example) {
        Ok(f) => (f.program, f.opts),
        Err(u) => return fail(u.problem, &u.fix),
    };
    if let Some(c) = &opts.config {
        if let Err(e) = Config::load(c, true) {
            return fail(format!("its --snap-config: {e}"), "fix that file");
        }
    }
    let restricted = k.options.iter().any(|(n, _)| n.eq_ignore_ascii_case("restrict"));
    let allowed: Vec<String> = opts.allow.iter().map(|d| d.display().to_string()).collect();
    let writes = if opts.allow_write.is_empty() { String::new() } else { format!(", writes to {}", opts.allow_write.len()) };
    let reads = if allowed.is_empty() { "nothing".to_owned() } else { allowed.join(", ") };
    let checks = if opts.allow_check { ", may run check" } else { "" };
    let detail = format!("{} key runs {} in restricted mode, reads {reads}{writes}{checks}", k.key_type, program.display());
    if restricted {
        Finding::ok(check, detail)
    } else {
        Finding::warn(
            check,
            format!("{detail}; no \"restrict\" option"),
            "add restrict, so that the key gets no terminal and no forwarding",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_split_as_sshd_reads_them() {
        let k = parse_key_line(r#"command="/usr/bin/snaprsync --snap-restrict --snap-allow=\"/srv\"",restrict,from="10.0.0.1" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI b@s"#)
            .unwrap();
        assert_eq!(
            k.options,
            vec![
                ("command".into(), Some(r#"/usr/bin/snaprsync --snap-restrict --snap-allow="/srv""#.into())),
                ("restrict".into(), None),
                ("from".into(), Some("10.0.0.1".into())),
            ]
        );
        assert_eq!(k.key_type, "ssh-ed25519");
        let bare = parse_key_line("ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB x").unwrap();
        assert!(bare.options.is_empty());
        for bad in [
            "",
            "# c",
            r#"command="x ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"#,
            "restrict",
            "restrict nokey AAAAC3NzaC1lZDI1NTE5AAAAI",
            "ssh-ed25519 !!!!",
        ] {
            assert!(parse_key_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn forced_commands_are_judged() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("snaprsync");
        std::fs::write(&exe, "").unwrap();
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGfake b@s";
        // Forward slashes: a backslash in a forced command escapes, as in sh.
        let slashed = |p: &Path| p.display().to_string().replace('\\', "/");
        let (d, exe) = (slashed(dir.path()), PathBuf::from(slashed(&exe)));
        let line = |cmd: &str, opts: &str| format!("command=\"{cmd}\"{opts} {key}");
        // Only root may change what lies above an allowed directory: a system
        // directory passes that for any user running the test.
        let g = if cfg!(unix) { "/usr/share".to_owned() } else { d.clone() };
        let good = authorized_keys_line(&line(&format!("{} --snap-restrict --snap-allow={g}", exe.display()), ",restrict"));
        assert_eq!(good.level, Level::Ok, "{good}");
        #[cfg(unix)]
        std::os::unix::fs::symlink("/usr/share", dir.path().join("link")).unwrap();
        let cases = [
            (line(&format!("{} --snap-restrict --snap-allow={g}", exe.display()), ""), Level::Warn, "restrict"),
            #[cfg(unix)]
            (line(&format!("{} --snap-restrict --snap-allow={d}/link", exe.display()), ",restrict"), Level::Fail, "would refuse"),
            #[cfg(unix)]
            (
                line(&format!("{} --snap-restrict --snap-allow=/usr/share/doc --snap-allow-write=/usr/share", exe.display()), ",restrict"),
                Level::Fail,
                "lies inside",
            ),
            (key.to_owned(), Level::Fail, "no command"),
            (line("/usr/bin/rsync --server", ",restrict"), Level::Fail, "not snaprsync"),
            (line(&format!("{} --snap-allow={d}", exe.display()), ",restrict"), Level::Fail, "only apply with --snap-restrict"),
            (line(&format!("{} --snap-restrict", exe.display()), ",restrict"), Level::Fail, "--snap-allow"),
            (line(&format!("{} --snap-restrict --snap-allow-check", exe.display()), ",restrict"), Level::Ok, "reads nothing"),
            (line(&format!("{} --snap-restrict --snap-allow={d}/nope", exe.display()), ",restrict"), Level::Fail, "do not exist"),
            (line("snaprsync --snap-restrict --snap-allow=/", ",restrict"), Level::Fail, "full path"),
            (line(&format!("{} --snap-restrict --snap-allow=$HOME", exe.display()), ",restrict"), Level::Fail, "shell"),
            ("command=\"x".to_owned(), Level::Fail, "does not parse"),
        ];
        for (l, level, says) in cases {
            let f = authorized_keys_line(&l);
            assert_eq!(f.level, level, "{l}: {f}");
            assert!(f.to_string().contains(says), "{l}: {f} should say {says:?}");
        }
    }

    #[test]
    fn free_space_levels() {
        let s = |available, total| free_space("x", Space { available, total }).level;
        assert_eq!(s(50, 100), Level::Ok);
        assert_eq!(s(5, 100), Level::Warn);
        assert_eq!(s(0, 100), Level::Fail);
        assert_eq!(s(0, 0), Level::Fail);
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12), "12 B");
    }

    /// A switch of `expose` since the last run is one WARN line naming the
    /// consequence and the fix; the same exposure is OK; no run that used
    /// either (Linux's exposures, a live run) gives no line.
    #[test]
    fn a_switch_of_expose_since_the_last_run_is_warned_of() {
        use crate::config::Expose;
        let run = |start: &str, exposure: Option<&str>| crate::history::Record {
            stamp: format!("s{start}"),
            role: "rsync".into(),
            start: start.into(),
            end: None,
            sources: Vec::new(),
            provider: None,
            exposure: exposure.map(str::to_owned),
            live_reason: None,
            snapshots: 1,
            create_ms: None,
            program_ms: None,
            remove_ms: None,
            program_status: Some(0),
            status: Some(0),
            removal: "ok".into(),
            outcome: crate::history::Outcome::Consistent,
            warnings: Vec::new(),
            error: None,
        };
        let records = [run("1", Some("device-path")), run("2", Some("drive-letter")), run("3", Some("live")), run("4", None)];
        let f = exposure_switch(Expose::DevicePath, &records).unwrap();
        assert_eq!(f.level, Level::Warn, "{f}");
        let line = f.to_string();
        for want in [
            "\"device-path\"",
            "last run (2)",
            "\"drive-letter\"",
            "--link-dest",
            "copies every file again",
            "fix: set expose = \"drive-letter\"",
        ] {
            assert!(line.contains(want), "{want:?} not in {line}");
        }
        assert!(!line.contains('\n'));
        assert_eq!(exposure_switch(Expose::DriveLetter, &records).unwrap().level, Level::Ok);
        assert!(exposure_switch(Expose::DevicePath, &records[2..]).is_none());
        assert!(exposure_switch(Expose::DevicePath, &[run("1", Some("namespace"))]).is_none());
    }

    #[test]
    fn a_finding_is_one_line() {
        let f = Finding::fail("a\nb", "c\rd", "e");
        assert_eq!(f.to_string(), "FAIL  a\\nb: c\\rd; fix: e");
        assert_eq!(Finding::ok("x", "y").to_string(), "OK    x: y");
    }
}
