//! The run history: one record per run (rsync role and exec) in
//! `state_dir/history.jsonl`, so that what happened on an unattended night can
//! be asked later (`snaprsync history`, `snaprsync check`, the metrics file).
//!
//! - A record holds the run's stamp, start and end, sources, provider and
//!   exposure (or `live` and why), the create, program and remove times, the
//!   program's status and snaprsync's own, the removal's outcome, and every
//!   warning or error the run logged.
//! - Every run that reaches the lifecycle (its sources are known) adds one:
//!   [`Recorder`] is made at the start and writes its record on every way out,
//!   a panic included (from `Drop`). A run killed outright (kill -9, a power
//!   cut) cannot: the next sweep that drops its journal entry records it as
//!   `killed` ([`killed`]).
//! - The file is JSON lines, one per record written; a later line of a stamp
//!   replaces its earlier ones (a run that handed itself over to the program
//!   writes twice, a sweep adds a note to a dead run's). Readers see the last
//!   `history_size` runs, oldest first ([`History::read`]).
//! - A run appends its line under a lock (concurrent runs each add theirs)
//!   and fsyncs it, so that its cost does not grow with the history: it
//!   never reads the file. Once the file outgrows [`compact_at`], the
//!   appender rewrites it with only the last `history_size` runs: a
//!   temporary file, fsync, rename over, fsync the directory. A crash leaves
//!   at most a torn last line, which the next append starts after; a line
//!   that is not a record (a disk error, a hand edit) is skipped and
//!   counted, never fatal.
//!
//! Failing to write the history costs no backup: it is logged at info (in the
//! system log, not on stderr: a state_dir that cannot be written already fails
//! the run with its own one line), and the run's status is unchanged.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};

/// The history's file in `state_dir`.
pub const FILE: &str = "history.jsonl";
/// Taken (exclusively) while the history is replaced.
pub const LOCK: &str = "history.lock";
/// What the new history is written to before it is renamed over [`FILE`].
pub const TEMP: &str = ".history.jsonl.tmp";

/// What a run came to, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A snapshot was read, the program ended with 0 or 24 (files vanished),
    /// snaprsync added no failure of its own, and the removal went (or was
    /// handed to the background remover).
    Consistent,
    /// The program read the live files (`provider = "none"`, or the
    /// `on_snapshot_failure = "live"` fallback).
    Live,
    /// Anything else: no snapshot, the program failed, the snapshot
    /// overflowed, the removal failed.
    Failed,
    /// The run died without a word (kill -9, a power cut); its sweep says so.
    Killed,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Consistent => "consistent",
            Outcome::Live => "live",
            Outcome::Failed => "failed",
            Outcome::Killed => "killed",
        }
    }
}

/// One run. Times are UTC, RFC 3339 with milliseconds; durations in ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The run's stamp (the prefix of its snapshot names).
    pub stamp: String,
    /// `rsync` (the rsync role) or `exec`.
    pub role: String,
    pub start: String,
    /// None for a killed run.
    pub end: Option<String>,
    /// The source paths (absolute; a name that is not UTF-8 shown lossily).
    pub sources: Vec<String>,
    /// The provider that made the snapshots; None where none was chosen.
    pub provider: Option<String>,
    /// How the program saw the files: `namespace`, `rewrite`, `confined`,
    /// `drive-letter`, `device-path`, or `live`; None where it never ran.
    pub exposure: Option<String>,
    /// Why the run read the live files, when `exposure` is `live`.
    pub live_reason: Option<String>,
    /// How many snapshots the set held.
    pub snapshots: u32,
    pub create_ms: Option<u64>,
    /// How long rsync (or COMMAND) ran.
    pub program_ms: Option<u64>,
    pub remove_ms: Option<u64>,
    /// rsync's (or COMMAND's) exit status; None where it did not run, or
    /// where snaprsync became it (a live run on Linux execs it: the backup
    /// server's report has its status).
    pub program_status: Option<u8>,
    /// The status snaprsync exited with: the program's, or its own
    /// (README "Exit statuses"); None for a killed run, and where
    /// `program_status` is None because snaprsync became the program.
    pub status: Option<u8>,
    /// `ok`, `background` (handed to the detached remover), `failed`, `none`
    /// (nothing was made), or `swept` (a killed run's, by the sweep).
    pub removal: String,
    pub outcome: Outcome,
    /// The run's warnings and errors, as logged (a failed VSS writer, a hook
    /// with `hook_failure = "warn"`, a removal that failed, ...).
    pub warnings: Vec<String>,
    /// The error that ended the run, if one did.
    pub error: Option<String>,
}

impl Record {
    /// A run's record before anything is known of it but its start: it
    /// counts as failed until told otherwise.
    pub fn begun(stamp: &str, role: &str, start: String, sources: &[PathBuf]) -> Record {
        Record {
            stamp: stamp.to_owned(),
            role: role.to_owned(),
            start,
            end: None,
            sources: sources.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
            provider: None,
            exposure: None,
            live_reason: None,
            snapshots: 0,
            create_ms: None,
            program_ms: None,
            remove_ms: None,
            program_status: None,
            status: None,
            removal: "none".into(),
            outcome: Outcome::Failed,
            warnings: Vec::new(),
            error: None,
        }
    }

    pub fn start_time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.start).ok()
    }

    pub fn end_time(&self) -> Option<SystemTime> {
        self.end.as_deref().and_then(|e| humantime::parse_rfc3339(e).ok())
    }

    /// Whether this run read `path`: one of its sources is `path` or holds it.
    pub fn covers(&self, path: &Path) -> bool {
        self.sources.iter().any(|s| path.starts_with(s))
    }

    /// The outcome of a run that got this far (not killed): see [`Outcome`].
    pub fn judge(&self) -> Outcome {
        if self.exposure.as_deref() == Some("live") {
            return Outcome::Live;
        }
        let program_ok = matches!(self.program_status, Some(0 | 24)) && self.status == self.program_status;
        let removed = matches!(self.removal.as_str(), "ok" | "background");
        if self.snapshots > 0 && self.exposure.is_some() && program_ok && removed {
            Outcome::Consistent
        } else {
            Outcome::Failed
        }
    }
}

/// A time as the history writes it.
pub fn time_text(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The history in `dir` (`state_dir`).
pub struct History {
    dir: PathBuf,
    /// How many runs it keeps (`history_size`).
    keep: usize,
}

/// The size past which an append rewrites the file with only the last `keep`
/// runs: room for `keep` records of 1 KiB (most are under 600 bytes), so that
/// a rewrite comes once in hundreds of runs, not every run.
pub fn compact_at(keep: usize) -> u64 {
    (keep.max(1) as u64) * 1024
}

impl History {
    /// The history in `dir`, keeping the last `keep` runs.
    pub fn new(dir: &Path, keep: usize) -> History {
        History { dir: dir.to_owned(), keep }
    }

    /// The history of `cfg`'s `state_dir`.
    pub fn of(cfg: &Config) -> History {
        History::new(&cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir), cfg.history_size as usize)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The last `keep` runs, oldest first (by start), each as its latest
    /// line says, and how many lines were not records. A missing file is an
    /// empty history.
    pub fn read(&self) -> Result<(Vec<Record>, usize)> {
        let path = self.path();
        let text = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let (records, bad) = parse(&text);
        Ok((latest(records, self.keep), bad))
    }

    /// Takes the history's lock (exclusive), making `state_dir` if missing.
    fn lock(&self) -> Result<File> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let lock_path = self.dir.join(LOCK);
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        Ok(lock)
    }

    /// Appends `record` (replacing an earlier line of its stamp), without
    /// reading the file; rewrites the file once it has outgrown [`compact_at`].
    pub fn add(&self, record: Record) -> Result<()> {
        let _lock = self.lock()?;
        self.append(std::slice::from_ref(&record))
    }

    /// Changes the history under the lock: `change` gets the runs [`read`]
    /// gives; the records it adds or changes are appended.
    ///
    /// [`read`]: History::read
    pub fn update(&self, change: impl FnOnce(&mut Vec<Record>)) -> Result<()> {
        let _lock = self.lock()?;
        let (mut records, _) = self.read()?;
        let before: std::collections::HashMap<String, Record> = records.iter().map(|r| (r.stamp.clone(), r.clone())).collect();
        change(&mut records);
        let changed: Vec<Record> = records.into_iter().filter(|r| before.get(&r.stamp) != Some(r)).collect();
        self.append(&changed)
    }

    /// Under the lock: appends `records`, fsynced, after a torn last line if
    /// a crash left one; then compacts the file if it has grown past the bound.
    fn append(&self, records: &[Record]) -> Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        if records.is_empty() {
            return Ok(());
        }
        let path = self.path();
        let io = |e: std::io::Error| Error::io(&path, e);
        let mut text = Vec::new();
        for r in records {
            serde_json::to_writer(&mut text, r).map_err(|e| io(e.into()))?;
            text.push(b'\n');
        }
        let mut f = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        if len > 0 {
            let mut last = [0u8];
            f.seek(SeekFrom::Start(len - 1)).and_then(|_| f.read_exact(&mut last)).map_err(io)?;
            if last[0] != b'\n' {
                text.insert(0, b'\n');
            }
        }
        f.write_all(&text).and_then(|()| f.sync_data()).map_err(io)?;
        // Closed first: Windows renames nothing over a file that is open.
        drop(f);
        if len + text.len() as u64 > compact_at(self.keep) {
            self.compact()?;
        }
        Ok(())
    }

    /// Under the lock: rewrites the file with only the runs [`History::read`]
    /// gives, atomically.
    fn compact(&self) -> Result<()> {
        let (records, _) = self.read()?;
        let mut text = Vec::new();
        for r in &records {
            serde_json::to_writer(&mut text, r).map_err(|e| Error::io(self.path(), e.into()))?;
            text.push(b'\n');
        }
        let (path, tmp) = (self.path(), self.dir.join(TEMP));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            crate::fault::point("history-before-rename");
            fs::rename(&tmp, &path)?;
            if cfg!(unix) {
                File::open(&self.dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(&path, e)
        })
    }
}

/// Pure: each stamp's latest record, oldest first by start (a run killed
/// and recorded late takes its place), the last `keep` of them.
pub fn latest(records: Vec<Record>, keep: usize) -> Vec<Record> {
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<Record> = Vec::new();
    for r in records {
        match at.get(&r.stamp) {
            Some(&i) => out[i] = r,
            None => {
                at.insert(r.stamp.clone(), out.len());
                out.push(r);
            }
        }
    }
    out.sort_by(|a, b| a.start.cmp(&b.start));
    let skip = out.len().saturating_sub(keep);
    out.split_off(skip)
}

/// Pure: the records in `text`, and how many of its lines were not records.
pub fn parse(text: &[u8]) -> (Vec<Record>, usize) {
    let mut bad = 0;
    let records = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .filter_map(|l| {
            let r = serde_json::from_slice::<Record>(l).ok();
            bad += usize::from(r.is_none());
            r
        })
        .collect();
    (records, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished run's record, as the recorder makes it.
    pub(crate) fn record(stamp: &str, sources: &[&str]) -> Record {
        Record::begun(stamp, "rsync", time_text(SystemTime::now()), &sources.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    fn judged(f: impl FnOnce(&mut Record)) -> Outcome {
        let mut r = record("s", &["/srv"]);
        r.provider = Some("btrfs".into());
        r.snapshots = 1;
        r.exposure = Some("namespace".into());
        r.program_status = Some(0);
        r.status = Some(0);
        r.removal = "ok".into();
        f(&mut r);
        r.judge()
    }

    #[test]
    fn outcomes() {
        assert_eq!(judged(|_| {}), Outcome::Consistent);
        assert_eq!(judged(|r| (r.program_status, r.status) = (Some(24), Some(24))), Outcome::Consistent, "vanished files");
        assert_eq!(judged(|r| r.removal = "background".into()), Outcome::Consistent);
        assert_eq!(judged(|r| (r.program_status, r.status) = (Some(23), Some(23))), Outcome::Failed);
        assert_eq!(judged(|r| r.status = Some(93)), Outcome::Failed, "rsync ended 0, but the snapshot overflowed");
        assert_eq!(judged(|r| r.removal = "failed".into()), Outcome::Failed);
        assert_eq!(judged(|r| r.snapshots = 0), Outcome::Failed);
        assert_eq!(judged(|r| (r.program_status, r.status) = (None, Some(82))), Outcome::Failed);
        assert_eq!(judged(|r| r.exposure = Some("live".into())), Outcome::Live);
    }

    #[test]
    fn keeps_the_last_n_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let h = History::new(d.path(), 5);
        assert_eq!(h.read().unwrap(), (vec![], 0), "no file is an empty history");
        for i in 0..12 {
            h.add(record(&format!("s{i:02}"), &["/srv"])).unwrap();
        }
        let (rs, bad) = h.read().unwrap();
        assert_eq!(bad, 0);
        assert_eq!(rs.iter().map(|r| r.stamp.as_str()).collect::<Vec<_>>(), ["s07", "s08", "s09", "s10", "s11"]);
        let mut names: Vec<String> =
            fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, [FILE, LOCK]);
    }

    /// What a crash can leave: a temp file half written (the history itself is
    /// only ever renamed over), or a torn line from a copy or a disk error.
    #[test]
    fn a_torn_tail_or_a_stale_temp_file_loses_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let h = History::new(d.path(), 10);
        h.add(record("a", &["/srv"])).unwrap();
        h.add(record("b", &["/srv"])).unwrap();
        let whole = fs::read(h.path()).unwrap();
        for cut in 1..whole.len() {
            let (rs, bad) = parse(&whole[..cut]);
            let complete = whole[..cut].iter().filter(|b| **b == b'\n').count();
            assert!(rs.len() >= complete.min(2) && rs.len() <= 2 && bad <= 1, "cut at {cut}: {} records, {bad} bad", rs.len());
        }
        let mut torn = whole.clone();
        torn.extend_from_slice(br#"{"stamp":"c","ro"#);
        fs::write(h.path(), &torn).unwrap();
        fs::write(d.path().join(TEMP), b"half a histo").unwrap();
        h.add(record("d", &["/srv"])).unwrap();
        let (rs, bad) = h.read().unwrap();
        // The torn line is counted until the next rewrite; "d" starts on a line of its own.
        assert_eq!((rs.iter().map(|r| r.stamp.as_str()).collect::<Vec<_>>(), bad), (vec!["a", "b", "d"], 1));
        h.compact().unwrap();
        assert_eq!(parse(&fs::read(h.path()).unwrap()).1, 0, "a rewrite drops it");
        assert!(!d.path().join(TEMP).exists());
    }

    /// The file stays bounded however many runs add to it, a run's later line
    /// replaces its earlier one, and an append never reads the file (its
    /// cost does not grow with the history; see BENCHMARKS.md "bounded state").
    #[test]
    fn appends_stay_bounded_and_the_latest_line_of_a_run_wins() {
        let d = tempfile::tempdir().unwrap();
        let h = History::new(d.path(), 5);
        let mut max = 0;
        for i in 0..300 {
            let mut r = record(&format!("s{i:05}"), &["/srv"]);
            r.start = format!("2026-01-01T00:00:00.{i:05}Z");
            h.add(r.clone()).unwrap();
            // The handover's record, then the finished one.
            r.status = Some(0);
            h.add(r).unwrap();
            max = max.max(fs::metadata(h.path()).unwrap().len());
        }
        assert!(max <= compact_at(5) + 2048, "the file grew to {max} bytes");
        let (rs, bad) = h.read().unwrap();
        assert_eq!(bad, 0);
        assert_eq!(rs.len(), 5);
        assert_eq!(rs.first().map(|r| r.stamp.as_str()), Some("s00295"));
        assert!(rs.iter().all(|r| r.status == Some(0)), "each run as its last line says");
        assert!(!d.path().join(TEMP).exists());
    }

    #[test]
    fn an_update_appends_only_what_it_changed() {
        let d = tempfile::tempdir().unwrap();
        let h = History::new(d.path(), 100);
        h.add(record("a", &["/srv"])).unwrap();
        h.add(record("b", &["/srv"])).unwrap();
        let before = fs::read(h.path()).unwrap();
        h.update(|rs| rs[1].warnings.push("noted".into())).unwrap();
        let after = fs::read(h.path()).unwrap();
        assert!(after.starts_with(&before));
        assert_eq!(parse(&after[before.len()..]).0.iter().map(|r| r.stamp.as_str()).collect::<Vec<_>>(), ["b"]);
        h.update(|_| {}).unwrap();
        assert_eq!(fs::read(h.path()).unwrap(), after, "nothing changed, nothing written");
    }

    #[test]
    fn concurrent_writers_lose_no_record() {
        let d = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let dir = d.path().to_owned();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        History::new(&dir, 1000).add(record(&format!("t{t}-{i}"), &["/srv"])).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (rs, bad) = History::new(d.path(), 1000).read().unwrap();
        assert_eq!((rs.len(), bad), (200, 0));
    }

    #[test]
    fn json_lines_round_trip() {
        let mut r = record("s", &["/srv/ä \"q\"\nx"]);
        r.warnings = vec!["w1".into()];
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(parse(format!("{line}\n").as_bytes()), (vec![r], 0));
    }
}
