//! The sweep: removes what runs that no longer live left behind, and nothing
//! else. It runs at the start of every snapshot run and as `snaprsync cleanup`.
//! What counts as a snapshot is the provider's to prove (`Sweeper::leftovers`);
//! a name that only looks like one is never removed.
//!
//! Exactly one process removes each snapshot: its run while the run lives;
//! the run's detached remover, recorded in the run's entry before it may
//! start, while that lives; otherwise a sweep, of which one at a time acts
//! (a lock on `state_dir`).
//!
//! Order matters for concurrent runs: snapshots are listed first, journal
//! entries read second. A run writes its entry before it creates a snapshot
//! and drops it only after the snapshot is gone, so a snapshot seen here has
//! an entry by the time the entries are read, unless it was removed in
//! between, or has no entry in this journal at all. Which of the two is told
//! by listing once more: only what is still there is an orphan.
//!
//! A run's own sweep ([`sweep_recorded`]) asks the provider only for what the
//! journal's dead runs may have left ([`Sweeper::leftovers_of`]), so that its
//! cost does not grow with other tools' snapshots (a ZFS pool's thousands);
//! `cleanup` and `doctor` look at every snapshot ([`sweep`]).

use std::collections::HashSet;
use std::path::PathBuf;

use crate::provider::{Leftover, RunOf, Sweeper};
use crate::run::journal::{self, Entry, Journal};

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

/// Whether a sweep waits for another one to end, or leaves the work to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    Wait,
    Skip,
}

/// What a sweep lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every snapshot the provider can tell is snaprsync's (`cleanup`, `doctor`).
    Machine,
    /// What the journal's dead runs may have left (a run's own sweep).
    Recorded,
}

/// Sweeps what dead runs left; with `dry_run` only reports it. While another
/// process sweeps this journal, `busy` says whether to wait for it or to
/// leave it the work (a report of nothing).
pub fn sweep(journal: &Journal, provider: &mut dyn Sweeper, dry_run: bool, busy: Busy) -> Report {
    sweep_in(Scope::Machine, journal, provider, dry_run, busy)
}

/// A run's sweep: as [`sweep`], looking only where the journal's dead runs
/// made their snapshots ([`Sweeper::leftovers_of`]). A snapshot no entry
/// records (a run journaled in another `state_dir`) is left to `cleanup`
/// unless the provider's listing there shows it anyway.
pub fn sweep_recorded(journal: &Journal, provider: &mut dyn Sweeper, busy: Busy) -> Report {
    sweep_in(Scope::Recorded, journal, provider, false, busy)
}

/// The runs of `entries`, as the providers see them.
fn runs_of(entries: &[Entry]) -> Vec<RunOf<'_>> {
    entries.iter().map(|e| RunOf { stamp: &e.stamp, provider: &e.provider, sources: &e.sources }).collect()
}

fn sweep_in(scope: Scope, journal: &Journal, provider: &mut dyn Sweeper, dry_run: bool, busy: Busy) -> Report {
    // A dry run removes nothing: it needs no lock.
    let _lock = match (!dry_run).then(|| journal.lock_sweep(busy == Busy::Wait)) {
        None => None,
        Some(Ok(Some(lock))) => Some(lock),
        Some(Ok(None)) => {
            log::debug!("sweep: another process is sweeping {}; left to it", journal.dir().display());
            return Report::default();
        }
        // No state_dir yet (or one that cannot be opened, which the run's
        // record then reports): nothing to serialise on.
        Some(Err(e)) => {
            log::debug!("sweep: {e}; sweeping without the lock");
            None
        }
    };
    // A run killed while it held filesystems frozen (LVM's one instant): its
    // devices are resumed and its filesystems thawed before anything else, so
    // that no listing or removal waits on them. No live run holds a freeze
    // now: a run holds this lock while it does.
    #[cfg(target_os = "linux")]
    if !dry_run {
        for e in journal.read().0.iter().filter(|e| !e.frozen.is_empty() && !e.alive()) {
            crate::provider::freeze::thaw_left(&e.frozen);
        }
    }
    let mut report = Report::default();
    let list = |provider: &dyn Sweeper| {
        let listed = match scope {
            Scope::Machine => provider.leftovers(),
            Scope::Recorded => {
                let dead: Vec<Entry> = journal.read().0.into_iter().filter(|e| !e.alive()).collect();
                provider.leftovers_of(&runs_of(&dead))
            }
        };
        listed.unwrap_or_else(|e| {
            log::warn!("sweep: cannot list snapshots: {e}");
            Vec::new()
        })
    };
    let mut leftovers = list(provider);
    let (entries, corrupt) = journal.read();
    let recorded: HashSet<String> = entries.iter().map(|e| e.stamp.clone()).collect();
    if leftovers.iter().any(|l| !recorded.contains(l.stamp.as_str())) {
        // Gone since the listing, with its entry after it: its remover did it.
        let still: HashSet<PathBuf> = list(provider).into_iter().map(|l| l.path).collect();
        leftovers.retain(|l| recorded.contains(l.stamp.as_str()) || still.contains(&l.path));
    }
    for c in corrupt {
        log::warn!("journal file {} is corrupt ({}); setting it aside", c.path.display(), c.why);
        if !dry_run {
            if let Err(e) = journal.set_aside(&c) {
                log::warn!("{e}");
            }
        }
        report.corrupt.push((c.path, c.why));
    }
    if !dry_run {
        journal.tidy();
    }
    // A run is live while it, or the remover it handed its snapshots to, runs.
    // An entry read while its run lived may have changed since (the hand-off
    // records the remover, then the run ends): one whose run is found dead is
    // read again, and that copy is final, since only the run writes it. Gone
    // by then, its run (or remover) has finished removing.
    let mut live: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut dead = Vec::new();
    for e in entries {
        if e.alive() {
            live.insert(e.stamp);
            continue;
        }
        match journal.get(&e.stamp) {
            Ok(Some(now)) if now.alive() => drop(live.insert(now.stamp)),
            Ok(Some(now)) => dead.push(now),
            Ok(None) => drop(finished.insert(e.stamp)),
            Err(err) => {
                log::warn!("sweep: {err}; its run's snapshots are left for the next sweep");
                live.insert(e.stamp);
            }
        }
    }
    // A snapshot with no entry here may belong to a live run that journals
    // elsewhere (another state_dir): judge it by the pid and time in its
    // name, and by a remover of its run that still runs.
    let live_elsewhere =
        |stamp: &str| !recorded.contains(stamp) && (crate::stamp::stamp_owner_may_live(stamp) || crate::stamp::remover_runs(stamp));
    let mut failed_stamps = HashSet::new();
    for l in leftovers {
        if finished.contains(&l.stamp) {
            continue;
        }
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
    for e in dead.into_iter().filter(|e| !failed_stamps.contains(&e.stamp)) {
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
/// or not: the background removal of a run that has handed it over, which
/// only the remover its entry names may do (no sweep touches the run then).
pub fn remove_run(journal: &Journal, provider: &mut dyn Sweeper, stamp: &str) -> crate::error::Result<()> {
    let me = journal::Process::running(std::process::id());
    let entry = journal.get(stamp)?;
    if me.is_none() || entry.as_ref().and_then(|e| e.remover) != me {
        return Err(crate::error::Error::Snapshot {
            path: journal.dir().to_owned(),
            msg: format!("the run {stamp} has not recorded this process as its remover; its snapshots are left to it or to a sweep"),
        });
    }
    let started = std::time::Instant::now();
    let runs = entry.as_slice();
    let mine: Vec<Leftover> = provider.leftovers_of(&runs_of(runs))?.into_iter().filter(|l| l.stamp == stamp).collect();
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
    use std::path::Path;

    /// A sweeper over an in-memory list: a test double for the sweep's logic
    /// alone (real btrfs sweeping is covered by the fault-injection suite).
    struct ListDouble {
        snaps: Vec<Leftover>,
    }

    impl Sweeper for ListDouble {
        fn name(&self) -> &'static str {
            "double"
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

        let dry = sweep(&j, &mut p, true, Busy::Wait);
        assert_eq!(dry.stale.len(), 2);
        assert_eq!(p.snaps.len(), 3, "dry run removes nothing");
        assert_eq!(j.read().0.len(), 2);

        let r = sweep(&j, &mut p, false, Busy::Wait);
        assert_eq!(r.live, vec![snap("snaprsync-live-p1")]);
        assert_eq!(r.stale, vec![snap("snaprsync-dead-p2"), snap("snaprsync-orphan-p3")]);
        assert_eq!(p.snaps, vec![snap("snaprsync-live-p1")]);
        assert_eq!(j.read().0, vec![live]);
        assert!(sweep(&j, &mut p, false, Busy::Wait).is_empty());
    }

    /// A dead run's entry that names a live remover (here this process) keeps
    /// its snapshots from every sweep; once the remover is gone, they are swept.
    #[test]
    fn a_live_remover_keeps_its_run_from_the_sweep() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        let mut handed = Entry::for_this_run("snaprsync-handed-p2", "btrfs", &[]);
        handed.start += 1;
        handed.remover = journal::Process::running(std::process::id());
        j.write(&handed).unwrap();
        let mut p = ListDouble { snaps: vec![snap("snaprsync-handed-p2")] };
        let r = sweep(&j, &mut p, false, Busy::Wait);
        assert_eq!((r.live.len(), r.stale.len(), p.snaps.len(), j.read().0.len()), (1, 0, 1, 1), "{r:?}");
        handed.remover = handed.remover.map(|r| journal::Process { start: r.start + 1, ..r });
        j.write(&handed).unwrap();
        let r = sweep(&j, &mut p, false, Busy::Wait);
        assert_eq!((r.live.len(), r.stale.len(), p.snaps.len(), j.read().0.len()), (0, 1, 0, 0), "{r:?}");
    }

    /// A remover that finishes between the sweep's listing and its reading of
    /// the journal (snapshot gone, then entry gone) leaves nothing for the
    /// sweep to remove: the snapshot without an entry is listed again first.
    struct FinishesAfterListing<'a> {
        journal: &'a Journal,
        snaps: std::cell::RefCell<Vec<Leftover>>,
        removed: Vec<Leftover>,
    }

    impl Sweeper for FinishesAfterListing<'_> {
        fn name(&self) -> &'static str {
            "double"
        }
        fn leftovers(&self) -> Result<Vec<Leftover>> {
            // The listing, then the remover's work: snapshot, then entry.
            let listed = self.snaps.borrow().clone();
            for l in self.snaps.borrow_mut().drain(..) {
                self.journal.remove(&l.stamp).unwrap();
            }
            Ok(listed)
        }
        fn remove_leftover(&mut self, l: &Leftover) -> Result<()> {
            self.removed.push(l.clone());
            Ok(())
        }
    }

    #[test]
    fn a_snapshot_removed_with_its_entry_since_the_listing_is_not_removed_again() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        let mut gone = Entry::for_this_run("snaprsync-gone-p2", "btrfs", &[]);
        gone.start += 1;
        j.write(&gone).unwrap();
        let mut p = FinishesAfterListing { journal: &j, snaps: vec![snap("snaprsync-gone-p2")].into(), removed: Vec::new() };
        let r = sweep(&j, &mut p, false, Busy::Wait);
        assert!(p.removed.is_empty() && r.stale.is_empty(), "removed twice: {:?}", p.removed);
    }

    /// A sweeper whose listing of the machine is not to be asked (it would
    /// grow with other tools' snapshots): what the runs it is given left.
    struct Narrowed {
        snaps: Vec<Leftover>,
        asked: std::cell::RefCell<Vec<Vec<String>>>,
    }

    impl Sweeper for Narrowed {
        fn name(&self) -> &'static str {
            "double"
        }
        fn leftovers(&self) -> Result<Vec<Leftover>> {
            panic!("a run's sweep listed every snapshot");
        }
        fn leftovers_of(&self, runs: &[RunOf]) -> Result<Vec<Leftover>> {
            self.asked.borrow_mut().push(runs.iter().map(|r| r.stamp.to_owned()).collect());
            Ok(self.snaps.iter().filter(|l| runs.iter().any(|r| r.stamp == l.stamp)).cloned().collect())
        }
        fn remove_leftover(&mut self, l: &Leftover) -> Result<()> {
            self.snaps.retain(|s| s != l);
            Ok(())
        }
    }

    /// A run's sweep asks only for what the journal's dead runs left, and
    /// removes it; a live run's snapshots are not even asked for, and with
    /// no dead run nothing is asked. The background removal asks for its run alone.
    #[test]
    fn a_runs_sweep_asks_only_for_the_dead_runs_it_records() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        let live = Entry::for_this_run("snaprsync-live-p1", "btrfs", &[]);
        let mut dead = Entry::for_this_run("snaprsync-dead-p2", "btrfs", &[]);
        dead.start += 1;
        j.write(&live).unwrap();
        j.write(&dead).unwrap();
        let mut p = Narrowed { snaps: vec![snap("snaprsync-live-p1"), snap("snaprsync-dead-p2")], asked: Default::default() };
        let r = sweep_recorded(&j, &mut p, Busy::Wait);
        assert_eq!(r.stale, vec![snap("snaprsync-dead-p2")]);
        assert_eq!(p.asked.take(), [vec!["snaprsync-dead-p2".to_owned()]]);
        assert_eq!((p.snaps.clone(), j.read().0), (vec![snap("snaprsync-live-p1")], vec![live.clone()]));
        assert!(sweep_recorded(&j, &mut p, Busy::Wait).is_empty());
        assert_eq!(p.asked.take(), [Vec::<String>::new()]);
        let mut handed = live;
        handed.remover = journal::Process::running(std::process::id());
        j.write(&handed).unwrap();
        remove_run(&j, &mut p, "snaprsync-live-p1").unwrap();
        assert_eq!(p.asked.take(), [vec!["snaprsync-live-p1".to_owned()]]);
        assert!(p.snaps.is_empty() && j.read().0.is_empty());
    }

    /// While one process sweeps, a run's sweep leaves the work to it.
    #[test]
    fn one_sweep_at_a_time() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        let mut p = ListDouble { snaps: vec![snap("snaprsync-orphan-p3")] };
        let other = j.lock_sweep(true).unwrap();
        assert!(sweep(&j, &mut p, false, Busy::Skip).is_empty());
        assert_eq!(p.snaps.len(), 1);
        drop(other);
        assert_eq!(sweep(&j, &mut p, false, Busy::Skip).stale.len(), 1);
    }

    /// Only the remover a run's entry names removes the run's snapshots.
    #[test]
    fn remove_run_acts_only_as_the_recorded_remover() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::new(d.path());
        let stamp = "snaprsync-handed-p2";
        let mut e = Entry::for_this_run(stamp, "btrfs", &[]);
        let mut p = ListDouble { snaps: vec![snap(stamp)] };
        j.write(&e).unwrap();
        assert!(remove_run(&j, &mut p, stamp).is_err(), "no remover recorded");
        assert!(remove_run(&j, &mut p, "snaprsync-none-p3").is_err(), "no entry");
        e.remover = journal::Process::running(std::process::id()).map(|r| journal::Process { start: r.start + 1, ..r });
        j.write(&e).unwrap();
        assert!(remove_run(&j, &mut p, stamp).is_err(), "another process recorded");
        assert_eq!(p.snaps.len(), 1);
        e.remover = journal::Process::running(std::process::id());
        j.write(&e).unwrap();
        remove_run(&j, &mut p, stamp).unwrap();
        assert!(p.snaps.is_empty() && j.read().0.is_empty());
    }
}
