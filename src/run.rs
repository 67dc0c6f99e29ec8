//! One snaprsync run in the rsync role: read the argv, snapshot what this side
//! reads, show the snapshot to the real rsync, run it, remove everything, and
//! return rsync's exit status. Nothing here writes to stdout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::Options;
use crate::config::{Config, OnSnapshotFailure, ProviderChoice};
use crate::error::{Error, Result};
use crate::platform::{Exposure, Platform, PlatformInterface};
use crate::provider::{Provider, SnapshotSet};
use crate::protect_args;
use crate::rsync_args::{self, Invocation, Role};

/// Loads the config named by the options, or the default one.
pub fn load_config(opts: &Options) -> Result<Config> {
    let mut cfg = match &opts.config {
        Some(p) => Config::load(p, true)?,
        None => Config::load(&Platform::default_config_path(), false)?,
    };
    if let Some(f) = &opts.log_file {
        cfg.log_file = Some(f.clone());
    }
    if let Some(l) = &opts.log_level {
        let path = Path::new("--snap-log-level");
        cfg.log_level = Config::parse(&format!("log_level = {l:?}"), path)?.log_level;
    }
    Ok(cfg)
}

/// The real rsync: `rsync_path`, else the first on PATH that is not snaprsync.
pub fn find_rsync(cfg: &Config) -> Result<PathBuf> {
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let is_me = |p: &Path| p.canonicalize().ok().is_some_and(|c| Some(&c) == me.as_ref());
    if let Some(p) = &cfg.rsync_path {
        if is_me(p) {
            return Err(Error::Usage(format!("rsync_path = {} is snaprsync itself; point it at the real rsync", p.display())));
        }
        return Ok(p.clone());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(Platform::rsync_file_name()))
        .find(|p| p.is_file() && !is_me(p))
        .ok_or_else(|| Error::RsyncMissing {
            path: Platform::rsync_file_name().into(),
            msg: "no rsync on PATH other than snaprsync; install rsync or set rsync_path in the config".into(),
        })
}

/// Removes what a run made if the normal path did not (an error or a panic
/// between creation and removal). Only logs: it cannot report.
struct Cleanup {
    provider: Box<dyn Provider>,
    set: Option<SnapshotSet>,
    exposure: Option<Box<dyn Exposure>>,
}

impl Cleanup {
    /// Undoes the exposure, then removes the set; the first error is returned.
    fn finish(&mut self) -> Result<()> {
        let undo = self.exposure.take().map_or(Ok(()), |e| e.undo());
        let removed = self.set.take().map_or(Ok(()), |s| self.provider.remove(&s));
        undo.and(removed)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.set.is_some() || self.exposure.is_some() {
            if let Err(e) = self.finish() {
                log::error!("cleanup after failure: {e}");
            }
        }
    }
}

/// The rsync role: returns the exit status to leave with.
pub fn rsync(cfg: &Config, argv: Vec<OsString>) -> Result<u8> {
    let rsync = find_rsync(cfg)?;
    let bad_args = |e: rsync_args::ArgError| Error::Usage(format!("rsync arguments: {e}"));
    let mut inv = rsync_args::parse(&argv).map_err(bad_args)?;
    if inv.role == Role::ServerSender && inv.protect_args && cfg.provider != ProviderChoice::None {
        // The paths come on stdin (--protect-args): take exactly that block, and
        // give rsync the same arguments on its command line instead.
        let mut stdin = protect_args::unbuffered_stdin().map_err(|e| Error::io("stdin", e))?;
        let block = protect_args::read_block(&mut stdin)?;
        log::debug!("protected args: {}", crate::command::shell_line(block.iter().map(|a| a.as_os_str())));
        inv = rsync_args::parse_with_protected(&argv, &block).map_err(bad_args)?;
    }
    if !inv.reads_local_files() || cfg.provider == ProviderChoice::None {
        log::debug!("nothing to snapshot ({:?}); running {} unchanged", inv.role, rsync.display());
        return Platform::run_unchanged(&rsync, &inv.args);
    }
    snapshot_and_run(cfg, &rsync, &inv)
}

fn snapshot_and_run(cfg: &Config, rsync: &Path, inv: &Invocation) -> Result<u8> {
    // Aligned with inv.sources(); a source that does not exist is left to rsync.
    let sources: Vec<PathBuf> = inv
        .sources()
        .map(|a| Platform::source_path(a).unwrap_or_else(|| PathBuf::from(a)))
        .collect();
    let existing: Vec<PathBuf> = sources.iter().filter(|p| p.symlink_metadata().is_ok()).cloned().collect();
    if existing.is_empty() {
        return Platform::run_unchanged(rsync, &inv.args);
    }

    Platform::hold_signals()?;
    let started = Instant::now();
    let prepared = Platform::provider(cfg, &existing).and_then(|mut provider| {
        let set = provider.create(&existing)?;
        let mut cleanup = Cleanup { provider, set: Some(set), exposure: None };
        let set = cleanup.set.as_ref().expect("just set");
        cleanup.exposure = Some(Platform::expose(cfg, set, inv, &sources)?);
        Ok(cleanup)
    });
    let mut cleanup = match prepared {
        Ok(c) => c,
        Err(e) if e.is_snapshot_failure() && cfg.on_snapshot_failure == OnSnapshotFailure::Live => {
            log::warn!("{e}; on_snapshot_failure = \"live\": backing up the LIVE files, not a snapshot");
            return Platform::run_unchanged(rsync, &inv.args);
        }
        Err(e) => return Err(e),
    };
    let created = started.elapsed();
    if let Some(sig) = Platform::pending_signal() {
        // Drop removes what was made.
        return Err(Error::Interrupted(sig));
    }
    let exposure = cleanup.exposure.as_mut().expect("exposed above");
    let method = exposure.method();
    log::debug!("running {}", crate::command::shell_line(std::iter::once(rsync.as_os_str()).chain(exposure.argv().iter().map(|a| a.as_os_str()))));
    let snapshots = cleanup.set.as_ref().map_or(0, |s| s.volumes.len());
    let ran = Instant::now();
    let status = exposure.run(rsync);
    let ran = ran.elapsed();
    let removing = Instant::now();
    let removed = cleanup.finish();
    let removed_in = removing.elapsed();
    log::info!(
        "summary: sources={:?} provider={} method={method} snapshots={snapshots} create={}ms rsync={}ms remove={}ms rsync_status={} removal={}",
        sources,
        cleanup.provider.name(),
        created.as_millis(),
        ran.as_millis(),
        removed_in.as_millis(),
        status.as_ref().map_or_else(|e| format!("not run ({e})"), |s| s.to_string()),
        removed.as_ref().map_or_else(|e| format!("FAILED ({e})"), |_| "ok".into()),
    );
    // rsync's status wins over a failed removal: the backup itself is fine.
    if let Err(e) = removed {
        log::error!("{e}");
    }
    status
}
