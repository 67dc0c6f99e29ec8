//! The sweep: removes what runs that no longer live left behind, and nothing
//! else. It runs at the start of every snapshot run and as `snaprsync cleanup`.
//! What counts as a snapshot is the provider's to prove (`Provider::leftovers`);
//! a name that only looks like one is never removed.
//!
//! Order matters for concurrent runs: snapshots are listed first, journal
//! entries read second. A live run writes its entry before it creates a
//! snapshot, so every snapshot seen here that belongs to a live run has an
//! entry by the time the entries are read.

use std::collections::HashSet;
use std::path::PathBuf;

use crate::journal::{self, Entry, Journal};
use crate::provider::{Leftover, Provider};

/// What one sweep found and did.
#[derive(Debug, Default)]
pub struct Report {
    /// Snapshots of dead runs (removed, or that would be with `dry_run`).
    pub stale: Vec<Leftover>,
    /// Snapshots that live runs own: left alone.
    pub live: Vec<Leftover>,
    /// Stale snapshots that could not be removed, with why.
    pub failed: Vec<(PathBuf, String)>,
    /// Entries of dead runs that were dropped.
    pub dead_entries: Vec<Entry>,
    /// Journal files that were not entries, moved aside.
    pub corrupt: Vec<(PathBuf, String)>,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.stale.is_empty() && self.failed.is_empty() && self.dead_entries.is_empty() && self.corrupt.is_empty()
    }
}

/// Sweeps what dead runs left; with `dry_run` only reports it.
pub fn sweep(journal: &Journal, provider: &mut dyn Provider, dry_run: bool) -> Report {
    let mut report = Report::default();
    let leftovers = provider.leftovers().unwrap_or_else(|e| {
        log::warn!("sweep: cannot list snapshots: {e}");
        Vec::new()
    });
    let (entries, corrupt) = journal.read();
    for c in corrupt {
        log::warn!("journal file {} is corrupt ({}); setting it aside", c.path.display(), c.why);
        if !dry_run {
            if let Err(e) = journal.set_aside(&c) {
                log::warn!("{e}");
            }
        }
        report.corrupt.push((c.path, c.why));
    }
    let live: HashSet<String> = entries.iter().filter(|e| e.owner_alive()).map(|e| e.stamp.clone()).collect();
    let recorded: HashSet<&str> = entries.iter().map(|e| e.stamp.as_str()).collect();
    // A snapshot with no entry here may belong to a live run that journals
    // elsewhere (another state_dir): judge it by the pid and time in its name.
    let live_elsewhere = |stamp: &str| !recorded.contains(stamp) && journal::stamp_owner_may_live(stamp);
    let mut failed_stamps = HashSet::new();
    for l in leftovers {
        if live.contains(&l.stamp) || live_elsewhere(&l.stamp) {
            report.live.push(l);
            continue;
        }
        if !dry_run {
            if let Err(e) = provider.remove_leftover(&l) {
                failed_stamps.insert(l.stamp.clone());
                report.failed.push((l.path.clone(), e.to_string()));
                continue;
            }
            log::info!("sweep: removed {} (its run is gone)", l.path.display());
        }
        report.stale.push(l);
    }
    for e in entries.into_iter().filter(|e| !live.contains(&e.stamp) && !failed_stamps.contains(&e.stamp)) {
        if !dry_run {
            if let Err(err) = journal.remove(&e.stamp) {
                log::warn!("{err}");
                continue;
            }
        }
        report.dead_entries.push(e);
    }
    report
}

/// Removes every snapshot of the run `stamp` and then its journal entry, live
/// or not: the background removal of a run that has handed it over.
pub fn remove_run(journal: &Journal, provider: &mut dyn Provider, stamp: &str) -> crate::error::Result<()> {
    let started = std::time::Instant::now();
    let mine: Vec<Leftover> = provider.leftovers()?.into_iter().filter(|l| l.stamp == stamp).collect();
    let mut first = None;
    let said = |outcome: &str| {
        let remove_ms = started.elapsed().as_millis() as u64;
        log::info!(run = stamp, snapshots = mine.len(), removal = outcome, remove_ms = remove_ms; "background removal");
    };
    for l in &mine {
        match provider.remove_leftover(l) {
            Ok(()) => log::debug!("removed {}", l.path.display()),
            Err(e) => {
                log::error!("could not remove snapshot {}: {e}; it stays recorded for the next run's sweep", l.path.display());
                first.get_or_insert(e);
            }
        }
    }
    match first {
        Some(e) => {
            said(&format!("FAILED ({e})"));
            Err(e)
        }
        None => {
            let recorded = journal.remove(stamp);
            said(&recorded.as_ref().map_or_else(|e| format!("FAILED ({e})"), |()| "ok".into()));
            recorded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::provider::SnapshotSet;
    use std::path::Path;

    /// A provider over an in-memory list: a test double for the sweep's logic
    /// alone (real btrfs sweeping is covered by the fault-injection suite).
    struct ListDouble {
        snaps: Vec<Leftover>,
    }

    impl Provider for ListDouble {
        fn name(&self) -> &'static str {
            "double"
        }
        fn create(&mut self, _: &[PathBuf]) -> Result<SnapshotSet> {
            unreachable!()
        }
        fn remove(&mut self, _: &SnapshotSet) -> Result<()> {
            unreachable!()
        }
        fn leftovers(&self) -> Result<Vec<Leftover>> {
            Ok(self.snaps.clone())
        }
        fn remove_leftover(&mut self, l: &Leftover) -> Result<()> {
            self.snaps.retain(|s| s != l);
            Ok(())
        }
    }

    fn snap(stamp: &str) -> Leftover {
        Leftover { provider: "btrfs", path: Path::new("/m/.snaprsync").join(format!("{stamp}-0")), stamp: stamp.into() }
    }

    #[test]
    fn removes_dead_runs_and_orphans_but_never_live_ones() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        let live = Entry::for_this_run("snaprsync-live-p1", "btrfs", &[]);
        let mut dead = Entry::for_this_run("snaprsync-dead-p2", "btrfs", &[]);
        dead.start += 1; // same pid, another process: pid reuse
        j.write(&live).unwrap();
        j.write(&dead).unwrap();
        let mut p = ListDouble { snaps: vec![snap("snaprsync-live-p1"), snap("snaprsync-dead-p2"), snap("snaprsync-orphan-p3")] };

        let dry = sweep(&j, &mut p, true);
        assert_eq!(dry.stale.len(), 2);
        assert_eq!(p.snaps.len(), 3, "dry run removes nothing");
        assert_eq!(j.read().0.len(), 2);

        let r = sweep(&j, &mut p, false);
        assert_eq!(r.live, vec![snap("snaprsync-live-p1")]);
        assert_eq!(r.stale, vec![snap("snaprsync-dead-p2"), snap("snaprsync-orphan-p3")]);
        assert_eq!(p.snaps, vec![snap("snaprsync-live-p1")]);
        assert_eq!(j.read().0, vec![live]);
        assert!(sweep(&j, &mut p, false).is_empty());
    }
}
