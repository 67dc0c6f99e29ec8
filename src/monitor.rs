//! The admin subcommands over the run history (`history`), and the
//! monitoring check (`check`), on stdout:
//!
//! - `snaprsync history [--json] [--since=WHEN] [PATH...]`: one line per
//!   record for people, or the records as JSON lines (the history file's own
//!   form) for programs; WHEN is a duration back from now (`24h`, `7d`) or a
//!   UTC time (`2026-12-01`, `2026-12-01T03:00:00Z`); a PATH keeps the runs
//!   that read it (a source that is PATH or holds it).
//! - `snaprsync check [--max-age=DURATION] [PATH...]`: a Nagios/Icinga
//!   plugin: one line, `|`, performance data; status 0 OK, 1 WARNING,
//!   2 CRITICAL, 3 UNKNOWN. For each PATH (default: every source in the
//!   history) it is CRITICAL when its last run failed or was killed, or when
//!   it had no consistent run (a snapshot read, status 0 or 24, removal ok)
//!   within `--max-age` (default 25h); WARNING when its last run read the
//!   live files or logged a warning (a failed VSS writer, a hook), or when
//!   dead runs left snapshots or records behind; UNKNOWN when the history
//!   cannot be read or names nothing to check.
#![allow(clippy::print_stdout)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::history::{History, Outcome, Record};

/// `history`'s arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryArgs {
    pub json: bool,
    pub since: Option<SystemTime>,
    pub paths: Vec<PathBuf>,
}

/// `check`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckArgs {
    pub max_age: Duration,
    pub paths: Vec<PathBuf>,
}

/// `check`'s default `--max-age`: a nightly backup, and an hour of slack.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(25 * 3600);

/// A PATH as the history records sources: absolute, symlinks followed where it exists.
fn path_arg(a: &OsString) -> PathBuf {
    let p = PathBuf::from(a);
    p.canonicalize().or_else(|_| std::path::absolute(&p)).unwrap_or(p)
}

/// `--name=VALUE` or `--name VALUE`: the value, taking the next word if needed.
fn value<'a>(name: &str, word: &'a str, rest: &mut std::slice::Iter<'a, OsString>) -> Option<std::result::Result<&'a str, String>> {
    if word == name {
        return Some(rest.next().and_then(|v| v.to_str()).ok_or_else(|| format!("{name} needs a value")));
    }
    word.strip_prefix(name).and_then(|v| v.strip_prefix('=')).map(Ok)
}

/// Pure but for the clock: a WHEN of `--since`.
pub fn since(text: &str, now: SystemTime) -> std::result::Result<SystemTime, String> {
    if let Ok(d) = humantime::parse_duration(text) {
        return now.checked_sub(d).ok_or_else(|| format!("--since={text} reaches before 1970"));
    }
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_owned() };
    humantime::parse_rfc3339_weak(&full)
        .map_err(|_| format!("--since={text}: write a duration back from now (24h, 7d) or a UTC time (2026-12-01, 2026-12-01T03:00:00Z)"))
}

/// Reads `history`'s words (after the word itself).
pub fn history_args(words: &[OsString]) -> Result<HistoryArgs> {
    let mut a = HistoryArgs::default();
    let mut rest = words.iter();
    while let Some(w) = rest.next() {
        let text = w.to_str().unwrap_or("");
        if text == "--json" {
            a.json = true;
        } else if let Some(v) = value("--since", text, &mut rest) {
            a.since = Some(since(v.map_err(Error::Usage)?, SystemTime::now()).map_err(Error::Usage)?);
        } else if text.starts_with("--") {
            return Err(Error::Usage(format!("history: unknown option {text}; it takes --json, --since=WHEN and paths")));
        } else {
            a.paths.push(path_arg(w));
        }
    }
    Ok(a)
}

/// Reads `check`'s words; an error is `check`'s UNKNOWN.
pub fn check_args(words: &[OsString]) -> std::result::Result<CheckArgs, String> {
    let mut a = CheckArgs { max_age: DEFAULT_MAX_AGE, paths: Vec::new() };
    let mut rest = words.iter();
    while let Some(w) = rest.next() {
        let text = w.to_str().unwrap_or("");
        if let Some(v) = value("--max-age", text, &mut rest) {
            let v = v?;
            a.max_age = humantime::parse_duration(v).map_err(|_| format!("--max-age={v}: write a duration such as 25h, 2d or 90m"))?;
        } else if text.starts_with("--") {
            return Err(format!("unknown option {text}; check takes --max-age=DURATION and paths"));
        } else {
            a.paths.push(path_arg(w));
        }
    }
    Ok(a)
}

/// `snaprsync history`.
pub fn history(cfg: &Config, words: &[OsString]) -> Result<u8> {
    let args = history_args(words)?;
    let h = History::of(cfg);
    let (records, bad) = h.read()?;
    if bad > 0 {
        log::warn!("{}: {bad} line(s) are not run records; they are skipped", h.path().display());
    }
    for r in records.iter().filter(|r| selected(r, &args)) {
        if args.json {
            println!("{}", serde_json::to_string(r).map_err(|e| Error::io(h.path(), e.into()))?);
        } else {
            println!("{}", line(r));
        }
    }
    Ok(0)
}

fn selected(r: &Record, a: &HistoryArgs) -> bool {
    let recent = a.since.is_none_or(|t| r.start_time().is_some_and(|s| s >= t));
    recent && (a.paths.is_empty() || a.paths.iter().any(|p| r.covers(p)))
}

/// Pure: a record as one line for people.
pub fn line(r: &Record) -> String {
    let num = |v: Option<u8>| v.map_or("-".to_owned(), |v| v.to_string());
    let took = match (r.start_time(), r.end_time()) {
        (Some(s), Some(e)) => format!("{:.1}s", e.duration_since(s).unwrap_or_default().as_secs_f64()),
        _ => "-".into(),
    };
    let how = match (&r.provider, &r.exposure) {
        (p, Some(e)) => format!("{}/{e}", p.as_deref().unwrap_or("-")),
        (Some(p), None) => p.clone(),
        (None, None) => "-".into(),
    };
    let mut out = format!(
        "{}  {:<10} status {:<3} {} {:<3} {:>7}  {how}  removal {}  {}",
        r.start,
        r.outcome.word(),
        num(r.status),
        if r.role == "exec" { "command" } else { "rsync" },
        num(r.program_status),
        took,
        r.removal,
        r.sources.join(","),
    );
    if let Some(why) = &r.live_reason {
        out.push_str(&format!("  live because: {why}"));
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("  error: {e}"));
    }
    if !r.warnings.is_empty() {
        out.push_str(&format!("  warnings: {}", r.warnings.join(" | ")));
    }
    crate::text::one_line(&out).into_owned()
}

/// Nagios' states, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }
}

/// A short quote of outside text, for the one line.
fn quote(s: &str) -> String {
    let s = crate::text::one_line(s);
    if s.chars().count() > 160 {
        format!("{}...", s.chars().take(160).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// A perfdata label: in single quotes, a quote doubled, no `=`.
fn perf_label(s: &str) -> String {
    format!("'{}'", quote(s).replace('\'', "''").replace('=', "_"))
}

/// Pure: the verdict on `paths` (empty: every source in `records`) at `now`,
/// with `leftovers` stamps of dead runs; the state and the whole output line.
pub fn verdict(records: &[Record], paths: &[PathBuf], max_age: Duration, leftovers: usize, now: SystemTime) -> (State, String) {
    let mut paths: Vec<PathBuf> = paths.to_vec();
    if paths.is_empty() {
        for r in records {
            for s in &r.sources {
                if !paths.iter().any(|p| p.as_os_str() == s.as_str()) {
                    paths.push(PathBuf::from(s));
                }
            }
        }
    }
    if paths.is_empty() {
        return (
            State::Unknown,
            "SNAPRSYNC UNKNOWN - no run recorded yet, and no PATH named; run a backup, or name the PATHs to check".into(),
        );
    }
    let ago =
        |t: SystemTime| humantime::format_duration(Duration::from_secs(now.duration_since(t).unwrap_or_default().as_secs())).to_string();
    let mut worst = State::Ok;
    let mut texts = Vec::new();
    let mut perf = Vec::new();
    for p in &paths {
        let shown = p.display().to_string();
        let runs: Vec<&Record> = records.iter().filter(|r| r.covers(p)).collect();
        let good = runs.iter().rev().find(|r| r.outcome == Outcome::Consistent).copied();
        let good_end = good.and_then(|r| r.end_time());
        let fresh = good_end.is_some_and(|t| now.duration_since(t).unwrap_or_default() <= max_age);
        let last_good = good_end.map_or("never".to_owned(), |t| format!("{} ago", ago(t)));
        let (state, text) = match runs.last() {
            None => (State::Critical, format!("{shown}: no run recorded")),
            Some(r) if matches!(r.outcome, Outcome::Failed | Outcome::Killed) => {
                let how = match (r.outcome, r.status) {
                    (Outcome::Killed, _) => "was killed".to_owned(),
                    (_, Some(s)) => format!("failed with status {s}"),
                    (_, None) => "failed".to_owned(),
                };
                let why =
                    r.error.as_deref().or(r.warnings.first().map(String::as_str)).map(|e| format!(": {}", quote(e))).unwrap_or_default();
                (State::Critical, format!("{shown}: last run {how} at {}{why}; last consistent run {last_good}", r.start))
            }
            Some(r) if !fresh => (
                State::Critical,
                format!(
                    "{shown}: no consistent run within {}; last consistent run {last_good}, last run {} at {}",
                    humantime::format_duration(max_age),
                    r.outcome.word(),
                    r.start
                ),
            ),
            Some(r) if r.outcome == Outcome::Live => (
                State::Warning,
                format!(
                    "{shown}: last run read the LIVE files ({}); last consistent run {last_good}",
                    quote(r.live_reason.as_deref().unwrap_or("no reason recorded"))
                ),
            ),
            Some(r) if !r.warnings.is_empty() => {
                (State::Warning, format!("{shown}: last run warned: {}; last consistent run {last_good}", quote(&r.warnings[0])))
            }
            Some(_) => (State::Ok, format!("{shown}: consistent {last_good}")),
        };
        worst = worst.max(state);
        texts.push(text);
        let crit = max_age.as_secs();
        if let Some(t) = good_end {
            perf.push(format!(
                "{}={}s;;{crit};0",
                perf_label(&format!("{shown} age")),
                now.duration_since(t).unwrap_or_default().as_secs()
            ));
        }
        if let Some(d) = runs.last().and_then(|r| Some(r.end_time()?.duration_since(r.start_time()?).ok()?.as_secs_f64())) {
            perf.push(format!("{}={d:.3}s;;;0", perf_label(&format!("{shown} duration"))));
        }
    }
    if leftovers > 0 {
        worst = worst.max(State::Warning);
        texts.push(format!("{leftovers} dead run(s) left snapshots or records behind (snaprsync list; snaprsync cleanup)"));
    }
    perf.push(format!("leftovers={leftovers};0;;0"));
    (worst, format!("SNAPRSYNC {} - {} | {}", worst.word(), texts.join("; "), perf.join(" ")))
}

/// The stamps dead runs left behind: dead journal entries, corrupt journal
/// files, and snapshots of no live run, where the provider can list them.
/// A run that handed its removal to the background remover a minute ago or
/// less is not counted: its remover is still at work.
fn leftovers(cfg: &Config, records: &[Record], now: SystemTime) -> usize {
    let journal = crate::run::journal::Journal::new(&cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir));
    let (entries, corrupt) = journal.read();
    let mut stamps: Vec<String> = entries.iter().filter(|e| !e.owner_alive()).map(|e| e.stamp.clone()).collect();
    use crate::platform::Volumes;
    if let Ok(provider) = crate::platform::Platform.sweep_provider(cfg) {
        if let Ok(found) = provider.leftovers() {
            let live: Vec<&str> = entries.iter().filter(|e| e.owner_alive()).map(|e| e.stamp.as_str()).collect();
            for l in found {
                let owned = live.contains(&l.stamp.as_str()) || crate::stamp::stamp_owner_may_live(&l.stamp);
                if !owned && !stamps.contains(&l.stamp) {
                    stamps.push(l.stamp);
                }
            }
        }
    }
    let handed_just_now = |stamp: &String| {
        records.iter().any(|r| {
            &r.stamp == stamp
                && r.removal == "background"
                && r.end_time().is_some_and(|t| now.duration_since(t).unwrap_or_default() < Duration::from_secs(60))
        })
    };
    stamps.iter().filter(|s| !handed_just_now(s)).count() + corrupt.len()
}

/// `snaprsync check`: prints its line, returns the plugin status.
pub fn check(cfg: &Config, words: &[OsString]) -> u8 {
    let (state, line) = match check_args(words) {
        Err(e) => (State::Unknown, format!("SNAPRSYNC UNKNOWN - {e}")),
        Ok(args) => match History::of(cfg).read() {
            Err(e) => {
                (State::Unknown, format!("SNAPRSYNC UNKNOWN - cannot read the run history: {}; run check as root", quote(&e.to_string())))
            }
            Ok((records, _)) => {
                let now = SystemTime::now();
                verdict(&records, &args.paths, args.max_age, leftovers(cfg, &records, now), now)
            }
        },
    };
    println!("{line}");
    state as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-06T12:00:00Z";

    fn now() -> SystemTime {
        humantime::parse_rfc3339(NOW).unwrap()
    }

    /// A run of `sources` that ended `hours_ago`, with `outcome`.
    fn run(sources: &[&str], hours_ago: u64, outcome: Outcome) -> Record {
        let end = now() - Duration::from_secs(hours_ago * 3600);
        let live = outcome == Outcome::Live;
        Record {
            stamp: format!("snaprsync-{hours_ago}"),
            role: "rsync".into(),
            start: crate::history::time_text(end - Duration::from_secs(90)),
            end: (outcome != Outcome::Killed).then(|| crate::history::time_text(end)),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            provider: Some("btrfs".into()),
            exposure: Some(if live { "live" } else { "namespace" }.into()),
            live_reason: live.then(|| "cannot snapshot /srv: no space".into()),
            snapshots: u32::from(!live),
            create_ms: Some(40),
            program_ms: Some(89_000),
            remove_ms: Some(3),
            program_status: Some(if outcome == Outcome::Failed { 23 } else { 0 }),
            status: Some(if outcome == Outcome::Failed { 23 } else { 0 }),
            removal: "ok".into(),
            outcome,
            warnings: Vec::new(),
            error: None,
        }
    }

    fn judge(records: &[Record], paths: &[&str], leftovers: usize) -> (State, String) {
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        verdict(records, &paths, DEFAULT_MAX_AGE, leftovers, now())
    }

    #[test]
    fn ok_after_a_consistent_run() {
        let (s, line) = judge(&[run(&["/srv"], 2, Outcome::Consistent)], &["/srv/data"], 0);
        assert_eq!(s, State::Ok, "{line}");
        assert_eq!(line, "SNAPRSYNC OK - /srv/data: consistent 2h ago | '/srv/data age'=7200s;;90000;0 '/srv/data duration'=90.000s;;;0 leftovers=0;0;;0");
    }

    #[test]
    fn critical_after_a_failed_or_killed_run_even_with_a_good_one_before() {
        for bad in [Outcome::Failed, Outcome::Killed] {
            let (s, line) = judge(&[run(&["/srv"], 5, Outcome::Consistent), run(&["/srv"], 1, bad)], &[], 0);
            assert_eq!(s, State::Critical, "{line}");
            assert!(line.starts_with("SNAPRSYNC CRITICAL - /srv: last run "), "{line}");
            assert!(line.contains("last consistent run 5h ago"), "{line}");
        }
    }

    #[test]
    fn a_live_run_is_critical_alone_and_a_warning_after_a_fresh_consistent_one() {
        let (s, line) = judge(&[run(&["/srv"], 1, Outcome::Live)], &["/srv"], 0);
        assert_eq!(s, State::Critical, "{line}");
        assert!(line.contains("no consistent run within 1day 1h; last consistent run never, last run live"), "{line}");
        let (s, line) = judge(&[run(&["/srv"], 3, Outcome::Consistent), run(&["/srv"], 1, Outcome::Live)], &["/srv"], 0);
        assert_eq!(s, State::Warning, "{line}");
        assert!(line.contains("read the LIVE files (cannot snapshot /srv: no space)"), "{line}");
    }

    #[test]
    fn too_old_is_critical_and_each_path_counts() {
        let rs = [run(&["/srv"], 30, Outcome::Consistent), run(&["/home"], 1, Outcome::Consistent)];
        let (s, line) = judge(&rs, &["/home"], 0);
        assert_eq!(s, State::Ok, "{line}");
        let (s, line) = judge(&rs, &[], 0);
        assert_eq!(s, State::Critical, "{line}");
        assert!(line.contains("/srv: no consistent run within 1day 1h; last consistent run 1day 6h ago"), "{line}");
        assert!(line.contains("/home: consistent 1h ago"), "{line}");
        let (s, line) = judge(&rs, &["/var"], 0);
        assert_eq!((s, line.contains("/var: no run recorded")), (State::Critical, true), "{line}");
    }

    #[test]
    fn warnings_and_leftovers_warn() {
        let mut r = run(&["C:\\data"], 1, Outcome::Consistent);
        r.warnings = vec!["VSS writer \"SqlServerWriter\" failed: retryable\nerror".into()];
        let (s, line) = judge(&[r], &[], 0);
        assert_eq!(s, State::Warning, "{line}");
        assert!(line.contains(r#"last run warned: VSS writer "SqlServerWriter" failed: retryable\nerror"#), "{line}");
        assert_eq!(line.lines().count(), 1);
        let (s, line) = judge(&[run(&["/srv"], 1, Outcome::Consistent)], &[], 2);
        assert_eq!(s, State::Warning, "{line}");
        assert!(line.ends_with("leftovers=2;0;;0"), "{line}");
    }

    #[test]
    fn nothing_to_check_is_unknown() {
        assert_eq!(judge(&[], &[], 0).0, State::Unknown);
    }

    #[test]
    fn perfdata_labels_are_quoted() {
        assert_eq!(perf_label("/srv/it's=x age"), "'/srv/it''s_x age'");
    }

    #[test]
    fn arguments() {
        let w = |s: &[&str]| s.iter().map(OsString::from).collect::<Vec<_>>();
        let c = check_args(&w(&["--max-age=2d", "/srv"])).unwrap();
        assert_eq!(c.max_age, Duration::from_secs(172_800));
        // Windows reads a POSIX path as a drive path.
        if cfg!(unix) {
            assert_eq!(c.paths, vec![PathBuf::from("/srv")]);
        }
        assert_eq!(check_args(&w(&["--max-age", "90m"])).unwrap().max_age, Duration::from_secs(5400));
        assert!(check_args(&w(&["--max-age=soon"])).is_err());
        assert!(check_args(&w(&["--bogus"])).is_err());
        let h = history_args(&w(&["--json", "--since=2026-12-01", "/srv"])).unwrap();
        assert!(h.json);
        assert_eq!(h.since, Some(humantime::parse_rfc3339("2026-12-01T00:00:00Z").unwrap()));
        assert_eq!(since("24h", now()).unwrap(), now() - Duration::from_secs(86_400));
        assert_eq!(since("2026-12-01T03:00:00Z", now()).unwrap(), humantime::parse_rfc3339("2026-12-01T03:00:00Z").unwrap());
        assert!(since("yesterday", now()).is_err());
        assert_eq!(history_args(&w(&["--jsn"])).unwrap_err().exit_code(), crate::error::status::USAGE);
    }

    #[test]
    fn a_line_for_people() {
        let mut r = run(&["/srv", "/home"], 1, Outcome::Live);
        r.error = Some("x".into());
        let l = line(&r);
        assert!(l.starts_with("2026-12-06T10:58:30.000Z  live       status 0   rsync 0     90.0s  btrfs/live  removal ok  /srv,/home  live because: cannot snapshot /srv: no space  error: x"), "{l}");
    }
}
