//! The one lifecycle of a snapshot run, shared by the rsync role and `exec`:
//! signals held → hooks around the snapshot set's creation → exposure →
//! checks → the program runs → the snapshots are verified → everything is
//! removed → one summary line, and one record in the run history (`history`). The rsync role is one [`Task`] (`run.rs`),
//! exec another (`exec.rs`): a task says how the set is shown, what program
//! runs there with which argv, and whether it may read the live files instead
//! when no snapshot can be made.

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::Options;
use crate::config::{Config, OnSnapshotFailure};
use crate::error::{Error, Result};
use crate::guard::{Exposed, Snapshotted};
use crate::history::Recorder;
use crate::platform::{Exposure, Launch, Method, Program, System};
use crate::provider::SnapshotSet;

/// What a run does with its snapshot set.
pub trait Task {
    /// Shows `set` to the program.
    fn expose(&self, cfg: &Config, set: &SnapshotSet) -> Result<Exposure>;

    /// Checks made once the set is shown, before the program starts.
    fn check(&self, exposed: &Exposed) -> Result<()> {
        let _ = exposed;
        Ok(())
    }

    /// The program to run in `exposure`, and its argv.
    fn launch(&self, exposure: &Exposure) -> Result<Launch>;

    /// The program to run on the live files when no snapshot can be made and
    /// `on_snapshot_failure = "live"`; `None` where that is never allowed.
    fn live(&self) -> Option<Result<Launch>>;

    /// What the run history calls this kind of run: `rsync` or `exec`.
    fn role(&self) -> &'static str {
        "rsync"
    }
}

/// Runs `launch` on the live files for `reason` (no snapshot), and records
/// the run in the history: the runs that never reach [`run`].
pub fn run_live(sys: &dyn System, cfg: &Config, role: &str, sources: &[PathBuf], reason: &str, launch: &Launch) -> Result<u8> {
    let mut rec = Recorder::start(cfg, role, sources);
    let result = live(sys, &mut rec, None, reason, launch);
    rec.finish(&result);
    result
}

fn live(sys: &dyn System, rec: &mut Recorder, provider: Option<&str>, reason: &str, launch: &Launch) -> Result<u8> {
    rec.live(provider, reason);
    // On Linux the process becomes the program here: what is known is written now.
    rec.handover();
    let ran = Instant::now();
    let status = sys.run_unchanged(launch);
    rec.ran("live", ran.elapsed(), status.as_ref().ok().copied());
    status
}

/// Snapshots `sources` (absolute, existing), runs `task`'s program on the
/// snapshot, removes everything, and returns the program's exit status.
pub fn run(sys: &dyn System, cfg: &Config, opts: &Options, sources: &[PathBuf], task: &dyn Task) -> Result<u8> {
    // Every way out of the run is recorded (a panic by the recorder's Drop).
    let mut rec = Recorder::start(cfg, task.role(), sources);
    let result = recorded(sys, cfg, opts, sources, task, &mut rec);
    rec.finish(&result);
    result
}

fn recorded(sys: &dyn System, cfg: &Config, opts: &Options, sources: &[PathBuf], task: &dyn Task, rec: &mut Recorder) -> Result<u8> {
    sys.hold_signals()?;
    // Tests change the tree here: after the checks, before the snapshot.
    crate::fault::point("after-check");
    let started = Instant::now();
    let prepared = Snapshotted::create(sys, cfg, sources).and_then(|snap| Exposed::new(snap, |set| task.expose(cfg, set)));
    let mut exposed = match prepared {
        Ok(e) => e,
        Err(e) if e.is_snapshot_failure() && cfg.on_snapshot_failure == OnSnapshotFailure::Live => match task.live() {
            Some(launch) => {
                log::warn!("{e}; on_snapshot_failure = \"live\": backing up the LIVE files, not a snapshot");
                return live(sys, rec, None, &e.to_string(), &launch?);
            }
            None => return Err(e),
        },
        Err(e) => return Err(e),
    };
    let created = started.elapsed();
    let snapshot_ms = exposed.made_in().as_millis() as u64;
    rec.created(exposed.provider_name(), exposed.set().volumes.len(), created);
    crate::fault::point("after-create");
    task.check(&exposed)?;
    if let Some(sig) = sys.pending_signal() {
        // Drop removes what was made.
        return Err(Error::Interrupted(sig));
    }
    let method = exposed.exposure().method();
    let launch = task.launch(exposed.exposure())?;
    log::debug!(
        "running {}",
        crate::command::shell_line(std::iter::once(launch.program.as_os_str()).chain(launch.args.iter().map(|a| a.as_os_str())))
    );
    let snapshots = exposed.set().volumes.len();
    let provider = exposed.provider_name();
    let ran = Instant::now();
    let prefetch = prefetch(cfg, exposed.set(), sources, method);
    let status = exposed.run(&launch);
    // rsync is done with the snapshot: so is the prefetch.
    drop(prefetch);
    let ran = ran.elapsed();
    rec.ran(method.as_str(), ran, status.as_ref().ok().copied());
    crate::fault::point("after-rsync");
    // Checked before removal, also when the program failed: a torn copy must not pass.
    let whole = exposed.verify();
    let removing = Instant::now();
    let removed = exposed.finish(sys, cfg.snapshot_removal, opts);
    let removed_in = removing.elapsed();
    rec.removed(removal_word(&removed), removed_in);
    let what = launch.what;
    // One line per run for the system log; its pairs are fields of their own in the journal.
    let sources_text = sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(",");
    let program_status = status.as_ref().map_or_else(|e| format!("not run ({e})"), |s| s.to_string());
    let removal = match &removed {
        Ok(crate::guard::Removed::Now) => "ok".to_owned(),
        // Not done yet: the remover says how it went, in a line of its own.
        Ok(crate::guard::Removed::Background) => "background".to_owned(),
        Err(e) => format!("FAILED ({e})"),
    };
    let snapshot_removal = format!("{:?}", cfg.snapshot_removal).to_lowercase();
    let (create_ms, ran_ms, remove_ms) = (created.as_millis() as u64, ran.as_millis() as u64, removed_in.as_millis() as u64);
    // The keys name the program, as the journal's fields do (rsync_status, command_status).
    let method = method.as_str();
    if what == Program::Rsync {
        log::info!(
            run = crate::journal::run_stamp(), sources = sources_text.as_str(), provider = provider, method = method,
            snapshots = snapshots, create_ms = create_ms, snapshot_ms = snapshot_ms, rsync_ms = ran_ms, remove_ms = remove_ms,
            snapshot_removal = snapshot_removal.as_str(), removal = removal.as_str(), rsync_status = program_status.as_str();
            "summary"
        );
    } else {
        log::info!(
            run = crate::journal::run_stamp(), sources = sources_text.as_str(), provider = provider, method = method,
            snapshots = snapshots, create_ms = create_ms, snapshot_ms = snapshot_ms, command_ms = ran_ms, remove_ms = remove_ms,
            snapshot_removal = snapshot_removal.as_str(), removal = removal.as_str(), command_status = program_status.as_str();
            "summary"
        );
    }
    // The program's status wins over a failed removal: the backup itself is fine.
    if let Err(e) = removed {
        log::error!("{e}");
    }
    // Not over a snapshot that overflowed: then the backup is not. The error
    // itself is reported once, as the run's end (lib.rs); this line only
    // says what the program's status was.
    if let Err(e) = whole {
        if let Ok(s) = &status {
            log::warn!("{what} ended with {s}, but the snapshot did not stay whole while it read; snaprsync ends with {}", e.exit_code());
        }
        return Err(e);
    }
    status
}

/// The history's word for a removal: `background` when it was handed to the
/// detached remover (which reports its own outcome in the log).
fn removal_word(removed: &Result<crate::guard::Removed>) -> &'static str {
    match removed {
        Err(_) => "failed",
        Ok(crate::guard::Removed::Background) => "background",
        Ok(crate::guard::Removed::Now) => "ok",
    }
}

/// Starts the metadata prefetch of what the program will read in `set`, where
/// `prefetch = "auto"` and snaprsync sees the snapshot as a directory: by its
/// own path (a btrfs snapshot, a shadow copy's device), or, where it is
/// mounted over its origin in snaprsync's own namespace, by the source's path.
fn prefetch(cfg: &Config, set: &SnapshotSet, sources: &[PathBuf], method: Method) -> Option<crate::prefetch::Prefetch> {
    if cfg.prefetch == crate::config::Prefetch::Off {
        return None;
    }
    let roots: Vec<PathBuf> = sources
        .iter()
        .filter_map(|s| match set.locate(s) {
            Some(p) if p.is_dir() => Some(p),
            _ if method == Method::Namespace => Some(s.clone()),
            _ => None,
        })
        .collect();
    let threads = match cfg.prefetch_threads {
        0 => crate::prefetch::auto_threads(),
        n => n as usize,
    };
    crate::prefetch::Prefetch::start(roots, threads, crate::platform::lower_thread_priority)
}
