//! The run's record in the history: [`Recorder`] is made when a run reaches
//! the lifecycle and writes its record (then the metrics file) on every way
//! out, a panic included; [`killed`] records the runs a sweep finds dead. The
//! history itself, its file and its bounds, is [`crate::history`]'s.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::error::Result;
use crate::history::{time_text, History, Outcome, Record};
use crate::run::journal;

/// One run's record in the making; written by [`Recorder::finish`], or by
/// `Drop` when a panic cuts the run short.
pub struct Recorder {
    history: History,
    metrics: Option<PathBuf>,
    started: SystemTime,
    rec: Record,
    written: bool,
}

impl Recorder {
    /// A run of `role` (`rsync` or `exec`) over `sources`, starting now.
    pub fn start(cfg: &Config, role: &str, sources: &[PathBuf]) -> Recorder {
        let started = SystemTime::now();
        Recorder {
            history: History::of(cfg),
            metrics: cfg.metrics_file.clone(),
            started,
            rec: Record::begun(crate::stamp::run_stamp(), role, time_text(started), sources),
            written: false,
        }
    }

    /// The snapshot set was made (by `provider`, `snapshots` of them, in `create`).
    pub fn created(&mut self, provider: &str, snapshots: usize, create: Duration) {
        self.rec.provider = Some(provider.to_owned());
        self.rec.snapshots = snapshots as u32;
        self.rec.create_ms = Some(create.as_millis() as u64);
    }

    /// The program ran in `exposure` for `ran`, ending with `status` (None: it
    /// could not be started or waited for).
    pub fn ran(&mut self, exposure: &str, ran: Duration, status: Option<u8>) {
        self.rec.exposure = Some(exposure.to_owned());
        self.rec.program_ms = Some(ran.as_millis() as u64);
        self.rec.program_status = status;
    }

    /// The program is to read the live files, for `reason`.
    pub fn live(&mut self, provider: Option<&str>, reason: &str) {
        self.rec.provider = provider.map(str::to_owned);
        self.rec.exposure = Some("live".into());
        self.rec.live_reason = Some(reason.to_owned());
    }

    /// How the removal went (`ok`, `background` or `failed`), in `took`.
    pub fn removed(&mut self, removal: &str, took: Duration) {
        self.rec.removal = removal.to_owned();
        self.rec.remove_ms = Some(took.as_millis() as u64);
    }

    /// Writes the record as it stands, before the process becomes the
    /// program (a live run on Linux execs rsync or COMMAND, so it never learns
    /// their status); a later [`Recorder::finish`] replaces it.
    pub fn handover(&mut self) {
        self.write();
        self.written = false;
    }

    /// Writes the record of a run that ends with `result`; then the metrics file.
    pub fn finish(mut self, result: &Result<u8>) {
        match result {
            Ok(s) => self.rec.status = Some(*s),
            Err(e) => {
                self.rec.status = Some(e.exit_code());
                self.rec.error = Some(crate::text::one_line(&e.to_string()).into_owned());
            }
        }
        self.write();
    }

    fn write(&mut self) {
        self.written = true;
        self.rec.end = Some(time_text(SystemTime::now().max(self.started)));
        self.rec.warnings = crate::logger::warnings();
        self.rec.outcome = self.rec.judge();
        if let Err(e) = self.history.add(self.rec.clone()) {
            log::info!("run history: {e}");
        }
        if let Some(m) = &self.metrics {
            crate::metrics::write_after_run(m, &self.history);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.written {
            // Only a panic gets here: lib.rs exits with INTERNAL.
            self.rec.status = Some(crate::error::status::INTERNAL);
            self.rec.error.get_or_insert_with(|| "internal error (a panic); see the log".into());
            self.write();
        }
    }
}

/// Records the runs of `journal` whose owner is dead as `killed`, unless they
/// recorded themselves (a run whose removal failed leaves its entry too) or
/// are recorded already. Called just before the sweep drops those entries: a
/// kill in between leaves the entry for the next sweep, so no dead run is
/// ever lost.
pub fn killed(cfg: &Config, journal: &journal::Journal) {
    // A run whose detached remover still works is not dead: it recorded itself.
    let dead: Vec<journal::Entry> = journal.read().0.into_iter().filter(|e| !e.alive()).collect();
    if dead.is_empty() {
        return;
    }
    let swept = time_text(SystemTime::now());
    let result = History::of(cfg).update(|records| {
        for e in &dead {
            if let Some(r) = records.iter_mut().find(|r| r.stamp == e.stamp) {
                // It recorded itself (or was recorded by an earlier sweep).
                let note = format!("a later run's sweep found what it left ({swept})");
                if r.outcome != Outcome::Killed && !r.warnings.iter().any(|w| w.starts_with("a later run's sweep")) {
                    r.warnings.truncate(crate::logger::MAX_WARNINGS - 1);
                    r.warnings.push(note);
                }
                continue;
            }
            let start = humantime::parse_rfc3339(&e.created).map(time_text).unwrap_or_else(|_| e.created.clone());
            records.push(Record {
                provider: Some(e.provider.clone()),
                removal: "swept".into(),
                outcome: Outcome::Killed,
                warnings: vec![format!("the run (pid {}) died without ending; a later run's sweep found it ({swept})", e.pid)],
                ..Record::begun(&e.stamp, "unknown", start, &e.sources)
            });
        }
    });
    if let Err(e) = result {
        log::info!("run history: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_run_is_killed_once_and_a_recorded_one_is_not() {
        let d = tempfile::tempdir().unwrap();
        let cfg = Config { state_dir: Some(d.path().to_owned()), ..Config::default() };
        let h = History::of(&cfg);
        let mut failed = Record::begun("snaprsync-20260101T000000Z-p2", "rsync", time_text(SystemTime::now()), &["/home".into()]);
        failed.removal = "failed".into();
        failed.start = "2026-01-01T00:00:00.000Z".into();
        h.add(failed).unwrap();
        let mut dead = crate::run::journal::Entry::for_this_run("snaprsync-20260101T010000Z-p1", "btrfs", &["/srv".into()]);
        dead.created = "2026-01-01T01:00:00Z".into();
        let recorded = crate::run::journal::Entry::for_this_run("snaprsync-20260101T000000Z-p2", "btrfs", &["/home".into()]);
        let journal = crate::run::journal::Journal::new(d.path());
        dead.pid = 4_000_000; // no such process
        journal.write(&dead).unwrap();
        let mut recorded = recorded;
        recorded.pid = 4_000_000;
        journal.write(&recorded).unwrap();
        killed(&cfg, &journal);
        killed(&cfg, &journal);
        let (rs, _) = h.read().unwrap();
        assert_eq!(rs.len(), 2, "{rs:?}");
        let k = &rs[1];
        assert_eq!((k.outcome, k.removal.as_str(), k.status, k.end.as_deref()), (Outcome::Killed, "swept", None, None));
        assert_eq!(
            (k.start.as_str(), k.sources.as_slice(), k.provider.as_deref()),
            ("2026-01-01T01:00:00.000Z", &["/srv".to_owned()][..], Some("btrfs"))
        );
        assert_eq!(rs[0].outcome, Outcome::Failed, "its own record stands");
        assert_eq!(rs[0].warnings.iter().filter(|w| w.contains("a later run's sweep found")).count(), 1, "{:?}", rs[0].warnings);
    }
}
