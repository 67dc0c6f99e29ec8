//! One snaprsync run in the rsync role: read the argv, snapshot what this side
//! reads, show the snapshot to the real rsync, run it, remove everything, and
//! return rsync's exit status. Nothing here writes to stdout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::Options;
use crate::config::{Config, OnSnapshotFailure, ProviderChoice, Removal};
use crate::error::{Error, Result};
use crate::journal::{self, Entry, Journal};
use crate::platform::{Confine, Exposure, Platform, PlatformInterface};
use crate::protect_args;
use crate::provider::{Provider, SnapshotSet};
use crate::restrict;
use crate::rsync_args::{self, Invocation, Role};
use crate::sweep;

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
        cfg.log_level = l.parse().map_err(|e| Error::Usage(format!("--snap-log-level={l}: {e}")))?;
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
    std::env::split_paths(&path).map(|d| d.join(Platform::rsync_file_name())).find(|p| p.is_file() && !is_me(p)).ok_or_else(|| {
        Error::RsyncMissing {
            path: Platform::rsync_file_name().into(),
            msg: "no rsync on PATH other than snaprsync; install rsync or set rsync_path in the config".into(),
        }
    })
}

/// Removes what a run made if the normal path did not (an error or a panic
/// between creation and removal). Only logs: it cannot report.
struct Cleanup {
    provider: Box<dyn Provider>,
    journal: Journal,
    set: Option<SnapshotSet>,
    exposure: Option<Box<dyn Exposure>>,
}

impl Cleanup {
    /// Undoes the exposure, removes the set, then drops the journal entry; the
    /// first error is returned, and the entry stays for the next sweep.
    fn finish(&mut self) -> Result<()> {
        let undo = self.exposure.take().map_or(Ok(()), |e| e.undo());
        let removed = self.set.take().map_or(Ok(()), |s| self.provider.remove(&s));
        if removed.is_ok() {
            if let Err(e) = self.journal.remove(journal::run_stamp()) {
                log::warn!("{e}");
            }
        } else {
            log::warn!("the snapshot stays recorded in {} for the next run's sweep", self.journal.dir().display());
        }
        undo.and(removed)
    }

    /// Undoes the exposure now, then hands the removal of the snapshots to a
    /// detached `snaprsync __remove-run` so that rsync's status reaches the
    /// backup server without waiting for it. Where the provider cannot, or the
    /// process cannot be started, removes them here.
    fn finish_in_background(&mut self, opts: &Options) -> Result<()> {
        if !self.provider.removal_can_detach() {
            return self.finish();
        }
        let undo = self.exposure.take().map_or(Ok(()), |e| e.undo());
        if undo.is_err() {
            // Mounts still in place: remove here, where they can be reported.
            return undo.and(self.finish());
        }
        match remover(opts).spawn() {
            Ok(child) => {
                log::debug!("removal handed to pid {}", child.id());
                self.set = None;
                Ok(())
            }
            Err(e) => {
                log::warn!("cannot start the background removal ({e}); removing now");
                self.finish()
            }
        }
    }
}

/// `snaprsync [own options] __remove-run STAMP`, detached from the session:
/// no stdio (so the ssh session can close), its own process group, `/` as
/// working directory (so it holds no filesystem busy).
fn remover(opts: &Options) -> std::process::Command {
    use std::process::Stdio;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("snaprsync"));
    let mut c = std::process::Command::new(exe);
    if let Some(p) = &opts.config {
        c.arg(format!("--snap-config={}", p.display()));
    }
    if let Some(p) = &opts.log_file {
        c.arg(format!("--snap-log-file={}", p.display()));
    }
    if let Some(l) = &opts.log_level {
        c.arg(format!("--snap-log-level={l}"));
    }
    c.arg(crate::cli::REMOVE_RUN).arg(journal::run_stamp());
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).current_dir(Platform::root_dir());
    Platform::detach(&mut c);
    c
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

/// Sweeps what dead runs left, records this run, and makes its snapshots.
fn create(cfg: &Config, sources: &[PathBuf]) -> Result<Cleanup> {
    let mut provider = Platform::provider(cfg, sources)?;
    let journal = Journal::new(&cfg.state_dir.clone().unwrap_or_else(Platform::default_state_dir));
    let swept = sweep::sweep(&journal, provider.as_mut(), false);
    if !swept.stale.is_empty() {
        log::info!("sweep: removed {} snapshot(s) that earlier runs left", swept.stale.len());
    }
    for (path, why) in &swept.failed {
        log::warn!("sweep: could not remove {}: {why}", path.display());
    }
    let entry = Entry::for_this_run(journal::run_stamp(), provider.name(), sources);
    journal.write(&entry).map_err(|e| Error::Snapshot {
        path: journal.dir().to_owned(),
        msg: format!("cannot record the run before snapshotting ({e}); make state_dir writable by root"),
    })?;
    match provider.create(sources) {
        Ok(set) => Ok(Cleanup { provider, journal, set: Some(set), exposure: None }),
        Err(e) => {
            // create() left nothing behind; nor may the record.
            if let Err(j) = journal.remove(journal::run_stamp()) {
                log::warn!("{j}");
            }
            Err(e)
        }
    }
}

/// A refusal of restricted mode: logged with the client's address, then returned.
fn refuse(r: restrict::Refusal) -> Error {
    let from = std::env::var("SSH_CONNECTION").unwrap_or_else(|_| "(no SSH_CONNECTION)".into());
    log::info!("restricted mode refused: {r}; SSH_CONNECTION={from}");
    Error::from(r)
}

/// The rsync role: returns the exit status to leave with.
pub fn rsync(cfg: &Config, opts: &Options, argv: Vec<OsString>) -> Result<u8> {
    let policy = opts.restrict.then(|| restrict::Policy { allow: opts.allow.clone(), allow_write: opts.allow_write.clone() });
    let allowances = restrict::Allowances { allow_iconv: opts.allow_iconv };
    let argv = match &policy {
        None => argv,
        Some(_) => {
            let Some(cmd) = std::env::var_os("SSH_ORIGINAL_COMMAND") else {
                return Err(restrict::Refused::NotForced.into());
            };
            restrict::command_argv(cmd.as_encoded_bytes()).map_err(refuse)?
        }
    };
    let rsync = find_rsync(cfg)?;
    let bad_args = |e: rsync_args::ArgError| match policy {
        Some(_) => Error::Refused(e.into()),
        None => Error::Usage(format!("rsync arguments: {e}")),
    };
    let mut inv = rsync_args::parse(&argv).map_err(bad_args)?;
    let mut protected = None;
    if let Some(p) = &policy {
        restrict::check_with(&inv, p, allowances).map_err(refuse)?;
    }
    let server = matches!(inv.role, Role::ServerSender | Role::ServerReceiver);
    let wants_paths = inv.role == Role::ServerSender && cfg.provider != ProviderChoice::None;
    if server && inv.protect_args && (wants_paths || policy.is_some()) {
        // The paths come on stdin (--protect-args): take exactly that block, and
        // give rsync the same arguments on its command line instead.
        let mut stdin = protect_args::unbuffered_stdin().map_err(|e| Error::io("stdin", e))?;
        let block = protect_args::read_block(&mut stdin)?;
        log::debug!("protected args: {}", crate::command::shell_line(block.iter().map(|a| a.as_os_str())));
        let merged = rsync_args::parse_with_protected(&argv, &block).map_err(bad_args)?;
        if let Some(p) = &policy {
            restrict::check_with(&merged, p, allowances).map_err(refuse)?;
        }
        let head = inv.render_without_protect_args(&[]).map_err(bad_args)?.len();
        protected = Some(Protected { cmdline: argv, block, head });
        inv = merged;
    }
    if let Some(p) = &policy {
        if inv.role == Role::ServerReceiver {
            // A push: no snapshot, but rsync sees only the write directories.
            crate::fault::point("after-check");
            if let Some(mut exposure) = Platform::expose_confined(
                cfg,
                None,
                &inv,
                &rsync,
                &Confine { write: &p.allow_write, iconv: opts.allow_iconv, ..Confine::default() },
            )? {
                let argv = rsync_argv(protected.as_ref(), &inv.args, exposure.argv())?;
                return exposure.run(&rsync, &with_confine_root(&rsync, argv, &p.allow_write));
            }
        } else if cfg.provider == ProviderChoice::None {
            return Err(restrict::Refused::NoSnapshots.into());
        }
    }
    if !inv.reads_local_files() || cfg.provider == ProviderChoice::None {
        log::debug!("nothing to snapshot ({:?}); running {} unchanged", inv.role, rsync.display());
        let argv = rsync_argv(protected.as_ref(), &inv.args, &inv.args)?;
        return Platform::run_unchanged(&rsync, &argv);
    }
    snapshot_and_run(cfg, &rsync, &inv, opts, policy.as_ref(), protected.as_ref())
}

/// An rsync command line whose arguments came on stdin (`--protect-args`).
struct Protected {
    /// The command line as received, `s` included.
    cmdline: Vec<OsString>,
    /// The block as read.
    block: Vec<OsString>,
    /// How many leading arguments of the merged argv came from the command line.
    head: usize,
}

/// The argv to start rsync with. For `--protect-args`, rsync is handed the
/// block on its stdin, as the client sent it (or with the paths `exposed`
/// rewrote), so that rsync reads it itself, globbing and `--iconv` included;
/// where the platform cannot do that, the arguments go on its command line.
fn rsync_argv(protected: Option<&Protected>, merged: &[OsString], exposed: &[OsString]) -> Result<Vec<OsString>> {
    let Some(p) = protected else { return Ok(exposed.to_vec()) };
    let block = if exposed == merged {
        p.block.clone()
    } else {
        std::iter::once(OsString::from("rsync")).chain(exposed[p.head..].iter().cloned()).collect()
    };
    if Platform::refeed_stdin(protect_args::render_block(&block)?)? {
        Ok(p.cmdline.clone())
    } else {
        Ok(exposed.to_vec())
    }
}

/// Restricted mode: adds `--confine-root=DIR` after `--server` when there is
/// one allowed directory and the rsync found knows the option (rsync ≥ 3.5.0);
/// it bounds the files rsync itself opens for filter merges and the like. The
/// confinement holds without it; this is a second wall where rsync has one.
fn with_confine_root(rsync: &Path, mut argv: Vec<OsString>, allowed: &[PathBuf]) -> Vec<OsString> {
    let [dir] = allowed else { return argv };
    if crate::fault::active("without-confine-root") {
        return argv;
    }
    let Ok(dir) = dir.canonicalize() else { return argv };
    let knows = std::fs::read(rsync).is_ok_and(|b| b.windows(12).any(|w| w == b"confine-root"));
    if let (true, Some(at)) = (knows, argv.iter().position(|a| a == "--server")) {
        let mut opt = OsString::from("--confine-root=");
        opt.push(dir.as_os_str());
        argv.insert(at + 1, opt);
    }
    argv
}

/// Checks every source as the exposure shows it to rsync: under its own name in
/// the namespace method, under the rewritten name (and mapped roots) otherwise,
/// inside the snapshot when confined.
fn confine_in_snapshot(
    policy: &restrict::Policy,
    inv: &Invocation,
    exposure: &dyn Exposure,
    set: &SnapshotSet,
    sources: &[PathBuf],
) -> std::result::Result<(), restrict::Refusal> {
    let mut roots = policy.allow.clone();
    roots.extend(policy.allow.iter().filter_map(|r| set.locate(r)));
    for (k, &i) in inv.source_indices().iter().enumerate() {
        let seen = if exposure.method() == "confined" {
            // snaprsync itself sees the live tree: look in the snapshot rsync reads.
            set.locate(&sources[k]).unwrap_or_else(|| sources[k].clone())
        } else if exposure.argv().get(i) == inv.args.get(i) {
            sources[k].clone()
        } else {
            PathBuf::from(&exposure.argv()[i])
        };
        restrict::confine(&seen, &roots)?;
    }
    Ok(())
}

/// What to snapshot for one source: the path itself, or for a glob pattern
/// (which rsync expands itself under `--protect-args`) its longest existing
/// ancestor. A plain path that does not exist is left to rsync to report.
fn snapshot_target(path: &Path) -> Option<PathBuf> {
    if path.symlink_metadata().is_ok() {
        return Some(path.to_owned());
    }
    let glob = path.as_os_str().as_encoded_bytes().iter().any(|b| b"*?[".contains(b));
    glob.then(|| path.ancestors().skip(1).find(|a| a.is_dir()).map(Path::to_owned)).flatten()
}

fn snapshot_and_run(
    cfg: &Config,
    rsync: &Path,
    inv: &Invocation,
    opts: &Options,
    policy: Option<&restrict::Policy>,
    protected: Option<&Protected>,
) -> Result<u8> {
    // Aligned with inv.sources(); a source that does not exist is left to rsync.
    let sources: Vec<PathBuf> = inv.sources().map(|a| Platform::source_path(a).unwrap_or_else(|| PathBuf::from(a))).collect();
    let mut existing: Vec<PathBuf> = sources.iter().filter_map(|p| snapshot_target(p)).collect();
    existing.dedup();
    if policy.is_some() {
        // Restricted mode never reads the live tree: every source is read from a snapshot.
        if let Some((arg, _)) = inv.sources().zip(&sources).find(|(_, p)| snapshot_target(p).is_none()) {
            return Err(refuse(restrict::Refusal::new(
                arg.as_encoded_bytes(),
                "does not exist here, and restricted mode reads only from a snapshot; name an existing path",
            )));
        }
    }
    if existing.is_empty() {
        return Platform::run_unchanged(rsync, &rsync_argv(protected, &inv.args, &inv.args)?);
    }

    Platform::hold_signals()?;
    // Tests change the tree here: after the checks, before the snapshot.
    crate::fault::point("after-check");
    let started = Instant::now();
    let prepared = create(cfg, &existing).and_then(|mut cleanup| {
        let set = cleanup.set.as_ref().expect("just created");
        let confined = match policy {
            Some(p) => Platform::expose_confined(
                cfg,
                Some(set),
                inv,
                rsync,
                &Confine { read: &p.allow, iconv: opts.allow_iconv, ..Confine::default() },
            )?,
            None => None,
        };
        cleanup.exposure = Some(match confined {
            Some(e) => e,
            None => Platform::expose(cfg, set, inv, &sources)?,
        });
        Ok(cleanup)
    });
    let mut cleanup = match prepared {
        Ok(c) => c,
        // Never in restricted mode: a key reads snapshots or nothing.
        Err(e) if e.is_snapshot_failure() && cfg.on_snapshot_failure == OnSnapshotFailure::Live && policy.is_none() => {
            log::warn!("{e}; on_snapshot_failure = \"live\": backing up the LIVE files, not a snapshot");
            return Platform::run_unchanged(rsync, &rsync_argv(protected, &inv.args, &inv.args)?);
        }
        Err(e) => return Err(e),
    };
    let created = started.elapsed();
    crate::fault::point("after-create");
    if let Some(p) = policy {
        // The same confinement again, now as rsync will see the paths: inside the snapshot.
        let exposure = cleanup.exposure.as_ref().expect("exposed above");
        let set = cleanup.set.as_ref().expect("created above");
        confine_in_snapshot(p, inv, exposure.as_ref(), set, &sources).map_err(refuse)?;
    }
    if let Some(sig) = Platform::pending_signal() {
        // Drop removes what was made.
        return Err(Error::Interrupted(sig));
    }
    let exposure = cleanup.exposure.as_mut().expect("exposed above");
    let method = exposure.method();
    let mut argv = rsync_argv(protected, &inv.args, exposure.argv())?;
    if let Some(p) = policy {
        argv = with_confine_root(rsync, argv, &p.allow);
    }
    log::debug!("running {}", crate::command::shell_line(std::iter::once(rsync.as_os_str()).chain(argv.iter().map(|a| a.as_os_str()))));
    let snapshots = cleanup.set.as_ref().map_or(0, |s| s.volumes.len());
    let ran = Instant::now();
    let status = exposure.run(rsync, &argv);
    let ran = ran.elapsed();
    crate::fault::point("after-rsync");
    let removing = Instant::now();
    let removed = match cfg.snapshot_removal {
        Removal::Background => cleanup.finish_in_background(opts),
        Removal::Wait => cleanup.finish(),
    };
    let removed_in = removing.elapsed();
    log::info!(
        "summary: sources={:?} provider={} method={method} snapshots={snapshots} create={}ms rsync={}ms remove={}ms ({:?}) rsync_status={} removal={}",
        sources,
        cleanup.provider.name(),
        created.as_millis(),
        ran.as_millis(),
        removed_in.as_millis(),
        cfg.snapshot_removal,
        status.as_ref().map_or_else(|e| format!("not run ({e})"), |s| s.to_string()),
        removed.as_ref().map_or_else(|e| format!("FAILED ({e})"), |_| "ok".into()),
    );
    // rsync's status wins over a failed removal: the backup itself is fine.
    if let Err(e) = removed {
        log::error!("{e}");
    }
    status
}
