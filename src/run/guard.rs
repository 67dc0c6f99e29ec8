//! A run's resources as typed guards, each owning its undo. [`Snapshotted`]
//! is a snapshot set with its journal entry: dropped while it still owns the
//! set, it removes it. [`Exposed`] is an exposure over a `Snapshotted`:
//! dropped, it undoes the exposure, then the snapshots go. The normal path ends
//! them explicitly ([`Exposed::finish`]), so that errors are reported; `Drop`
//! is the backstop for an error or a panic in between, and only logs. What
//! `Drop` cannot cover (kill -9, power loss) the journal's sweep covers.

use std::path::PathBuf;

use crate::cli::Options;
use crate::config::{Config, Removal};
use crate::error::{Error, Result};
use crate::platform::{Exposure, Launch, System};
use crate::provider::{SnapshotSet, Snapshotter};
use crate::run::hook::{self, Hook, Outcome};
use crate::run::journal::{self, Entry, Journal};
use crate::run::sweep;

/// Snapshots made for this run, recorded in the journal.
pub struct Snapshotted {
    provider: Box<dyn Snapshotter>,
    journal: Journal,
    /// This run's record in the journal.
    entry: Entry,
    set: SnapshotSet,
    /// False once the set is removed, or handed to the background remover.
    owned: bool,
    /// How long the provider took to make the set (the summary's `snapshot_ms`).
    made_in: std::time::Duration,
}

impl Snapshotted {
    /// Sweeps what dead runs left, records this run, and makes its snapshots
    /// between the `pre_snapshot` and `post_snapshot` hooks. On failure
    /// nothing is left behind, the record included.
    pub fn create(sys: &dyn System, cfg: &Config, sources: &[PathBuf]) -> Result<Snapshotted> {
        let mut provider = sys.provider(cfg, sources)?;
        let journal = Journal::new(&cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir));
        crate::run::record::killed(cfg, &journal);
        let swept = sweep::sweep_recorded(&journal, provider.as_mut(), sweep::Busy::Skip);
        if !swept.stale.is_empty() {
            log::info!("sweep: removed {} snapshot(s) that earlier runs left", swept.stale.len());
        }
        for (path, why) in &swept.failed {
            log::warn!("sweep: could not remove {}: {why}", path.display());
        }
        let entry = Entry::for_this_run(crate::stamp::run_stamp(), provider.name(), sources);
        journal.write(&entry).map_err(|e| {
            // Not root, a full or read-only state_dir: the cause and its fix.
            let fix = match &e {
                Error::Io { source, .. } => crate::error::cause_and_fix(source),
                _ => None,
            };
            let fix = fix.unwrap_or("make state_dir writable by root");
            Error::Snapshot { path: journal.dir().to_owned(), msg: format!("cannot record the run before snapshotting ({e}); {fix}") }
        })?;
        provider.record_freezes_in(Box::new(crate::run::journal::FreezeRecorder(journal.dir().to_owned())));
        let forget = |journal: &Journal| {
            if let Err(j) = journal.remove(crate::stamp::run_stamp()) {
                log::warn!("{j}");
            }
        };
        if let Some(sig) = sys.pending_signal() {
            forget(&journal);
            return Err(Error::Interrupted(sig));
        }
        // post_snapshot runs whenever pre_snapshot started (to undo it), or,
        // without pre_snapshot, after the attempt.
        let mut attempted = false;
        let pre = hook::run(sys, cfg, Hook::Pre, sources, None);
        let started = std::time::Instant::now();
        // A signal (passed on to the hook, which then failed) outranks the hook's failure.
        let created = match (pre, sys.pending_signal()) {
            (_, Some(sig)) => Err(Error::Interrupted(sig)),
            (Err(e), None) => Err(e),
            (Ok(()), None) => {
                attempted = true;
                provider.create(sources).map_err(Error::while_snapshotting)
            }
        };
        let made_in = started.elapsed();
        let outcome = match (&created, attempted) {
            (Ok(_), _) => Outcome::Created,
            (Err(_), true) => Outcome::Failed,
            (Err(_), false) => Outcome::Skipped,
        };
        let post = hook::run(sys, cfg, Hook::Post, sources, Some(outcome));
        match (created, post) {
            (Ok(set), Ok(())) => Ok(Snapshotted { provider, journal, entry, set, owned: true, made_in }),
            (Ok(set), Err(e)) => {
                let mut made = Snapshotted { provider, journal, entry, set, owned: true, made_in };
                if let Err(r) = made.remove() {
                    log::error!("cleanup after the failed hook: {r}");
                }
                Err(e)
            }
            (Err(e), post) => {
                // create() left nothing behind; nor may the record.
                if let Err(p) = post {
                    log::error!("{p}");
                }
                forget(&journal);
                Err(e)
            }
        }
    }

    pub fn set(&self) -> &SnapshotSet {
        &self.set
    }

    pub fn provider_name(&self) -> &'static str {
        self.provider.name()
    }

    /// Removes the set now, then drops the journal entry; on failure the entry
    /// stays for the next sweep.
    fn remove(&mut self) -> Result<()> {
        if !self.owned {
            return Ok(());
        }
        self.owned = false;
        let removed = self.provider.remove(&self.set);
        if removed.is_ok() {
            if let Err(e) = self.journal.remove(crate::stamp::run_stamp()) {
                log::warn!("{e}");
            }
        } else {
            log::warn!("the snapshot stays recorded in {} for the next run's sweep", self.journal.dir().display());
        }
        removed
    }

    /// Hands the removal to a detached `snaprsync __remove-run`, so that rsync's
    /// status reaches the backup server without waiting for it. Where the
    /// provider cannot, or the process cannot be started, removes it here.
    ///
    /// One process removes the set at any time: the remover waits on a pipe
    /// until this run has recorded it (pid and start time) in the journal,
    /// so that no sweep takes the run for dead while it works, and acts only
    /// on the byte [`HAND_OFF`]. Until that byte is written the set is this
    /// run's; should the record fail, the pipe closes without it, the
    /// remover ends idle, and the set is removed here.
    fn remove_in_background(&mut self, sys: &dyn System, opts: &Options) -> Result<Removed> {
        use std::io::Write;
        if !self.owned {
            return Ok(Removed::Now);
        }
        if !self.provider.removal_can_detach() {
            return self.remove().map(|()| Removed::Now);
        }
        let started = std::io::pipe().and_then(|(wait, go)| sys.start_remover(remover(opts), wait).map(|pid| (pid, go)));
        let (pid, mut go) = match started {
            Ok(started) => started,
            Err(e) => {
                log::warn!("cannot start the background removal ({e}); removing now");
                return self.remove().map(|()| Removed::Now);
            }
        };
        let handed = Entry { remover: journal::Process::running(pid), ..self.entry.clone() };
        let recorded = match handed.remover {
            Some(_) => self.journal.write(&handed).map_err(|e| e.to_string()),
            None => Err(format!("the remover (pid {pid}) ended before it was recorded")),
        };
        crate::fault::point("hand-off");
        let told = recorded.and_then(|()| go.write_all(&[HAND_OFF]).map_err(|e| format!("the remover (pid {pid}) did not take it: {e}")));
        match told {
            Ok(()) => {
                log::debug!("removal handed to pid {pid}");
                self.owned = false;
                Ok(Removed::Background)
            }
            Err(why) => {
                // The remover sees the pipe close without the byte and leaves the set alone.
                drop(go);
                log::warn!("cannot hand the removal over ({why}); removing now");
                self.remove().map(|()| Removed::Now)
            }
        }
    }
}

impl Drop for Snapshotted {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            log::error!("cleanup after failure: {e}");
        }
    }
}

/// The byte by which a run hands its removal to the remover it recorded.
pub const HAND_OFF: u8 = b'!';

/// `snaprsync [own options] __remove-run STAMP`, detached from the session:
/// no output (so the ssh session can close), its own process group, the
/// root directory as working directory (so it holds no filesystem busy).
/// Its stdin is for the caller to set (the hand-off pipe).
fn remover(opts: &Options) -> std::process::Command {
    use std::process::Stdio;
    let mut c = std::process::Command::new(own_program());
    // Absolute: the remover starts in the root directory, not here.
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    if let Some(p) = &opts.config {
        c.arg(format!("--snap-config={}", absolute(p).display()));
    }
    if let Some(p) = &opts.log_file {
        c.arg(format!("--snap-log-file={}", absolute(p).display()));
    }
    if let Some(l) = &opts.log_level {
        c.arg(format!("--snap-log-level={l}"));
    }
    c.arg(crate::stamp::REMOVE_RUN).arg(crate::stamp::run_stamp());
    c.stdout(Stdio::null()).stderr(Stdio::null()).current_dir(crate::host::root_dir());
    crate::host::detach(&mut c);
    c
}

/// This program, to start again. On Linux the kernel's link to it, which
/// holds in a chroot and after the namespace switch, where the path that
/// `current_exe` reads names it from another root (`/newroot/...`).
#[cfg(target_os = "linux")]
fn own_program() -> PathBuf {
    PathBuf::from("/proc/self/exe")
}

#[cfg(not(target_os = "linux"))]
fn own_program() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("snaprsync"))
}

/// Snapshots shown to rsync.
pub struct Exposed {
    // Field order matters for a panic: the exposure is undone (in Drop below)
    // before `snap` removes the snapshots.
    exposure: Exposure,
    snap: Snapshotted,
}

impl Exposed {
    /// Shows `snap` to rsync with `expose`; if that fails, `snap` is removed.
    pub fn new(snap: Snapshotted, expose: impl FnOnce(&SnapshotSet) -> Result<Exposure>) -> Result<Exposed> {
        let exposure = expose(snap.set())?;
        Ok(Exposed { exposure, snap })
    }

    pub fn exposure(&self) -> &Exposure {
        &self.exposure
    }

    pub fn set(&self) -> &SnapshotSet {
        self.snap.set()
    }

    pub fn provider_name(&self) -> &'static str {
        self.snap.provider_name()
    }

    /// How long the provider took to make the snapshots.
    pub fn made_in(&self) -> std::time::Duration {
        self.snap.made_in
    }

    /// Whether the snapshots stayed whole while rsync read them (see
    /// [`crate::provider::Snapshotter::verify`]).
    pub fn verify(&self) -> Result<()> {
        self.snap.provider.verify(&self.snap.set)
    }

    /// Runs rsync (or exec's command) in the exposure (see [`Exposure::run`]).
    pub fn run(&mut self, launch: &Launch) -> Result<u8> {
        self.exposure.run(launch)
    }

    /// Undoes the exposure, then removes the snapshots as `removal` says; the
    /// first error is returned. An exposure that cannot be undone (mounts still
    /// in place) makes the removal happen here, where it can be reported.
    pub fn finish(mut self, sys: &dyn System, removal: Removal, opts: &Options) -> Result<Removed> {
        let undo = self.exposure.undo();
        let removed = match (removal, &undo) {
            (Removal::Background, Ok(())) => self.snap.remove_in_background(sys, opts),
            _ => self.snap.remove().map(|()| Removed::Now),
        };
        undo.and(removed)
    }
}

/// How the snapshots went: removed here, or handed to the background
/// remover (which logs its own line with the outcome and time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Now,
    Background,
}

impl Drop for Exposed {
    fn drop(&mut self) {
        if let Err(e) = self.exposure.undo() {
            log::error!("cleanup after failure: {e}");
        }
    }
}
