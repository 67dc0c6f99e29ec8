//! One snaprsync run in the rsync role: read the argv, snapshot what this side
//! reads, show the snapshot to the real rsync, run it, remove everything, and
//! return rsync's exit status. The snapshot's lifecycle is `lifecycle`'s,
//! shared with exec; this module says what rsync reads and how its argv is
//! made. Nothing here writes to stdout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::cli::Options;
use crate::config::{Config, ProviderChoice};
use crate::error::{Error, Result};
use crate::pin::Pins;
use crate::platform::{Confine, Exposure, Launch, Method, Program, System};
use crate::protect_args;
use crate::provider::SnapshotSet;
use crate::restrict;
use crate::rsync_args::{self, Invocation, Role};
use crate::run::guard::Exposed;
use crate::run::lifecycle::{self, Task};

/// One rsync-role request, once its argv is read and checked.
struct Request<'a> {
    sys: &'a dyn System,
    cfg: &'a Config,
    opts: &'a Options,
    /// The real rsync.
    rsync: PathBuf,
    inv: Invocation,
    /// Restricted mode's policy, if this is a forced command: the allowed
    /// directories by the paths `pins` walked.
    policy: Option<restrict::Policy>,
    /// Restricted mode's allowed directories, resolved once and held open.
    pins: Option<Pins>,
    protected: Option<Protected>,
}

impl Request<'_> {
    /// The argv to start rsync with, for an exposure that shows it `exposed`.
    fn rsync_argv(&self, exposed: &[OsString]) -> Result<Vec<OsString>> {
        rsync_argv(self.sys, self.protected.as_ref(), &self.inv.args, exposed)
    }

    /// rsync started with `argv`.
    fn launch(&self, argv: Vec<OsString>) -> Launch {
        // From here on stdout is rsync's alone.
        crate::wire::rsync_starting();
        Launch { program: self.rsync.clone(), args: argv, env: Vec::new(), what: Program::Rsync, watch_peer: true }
    }

    /// What a restricted rsync may reach.
    fn confine(&self) -> Option<Confine<'_>> {
        self.pins.as_ref().map(|p| match self.inv.role {
            Role::ServerReceiver => Confine { write: &p.write, iconv: self.opts.allow_iconv, ..Confine::default() },
            _ => Confine { read: &p.read, iconv: self.opts.allow_iconv, ..Confine::default() },
        })
    }
}

/// A refusal of restricted mode: one of an argument logged with the
/// client's address, then returned.
fn refuse(r: impl Into<restrict::Refused>) -> Error {
    let r = r.into();
    if let restrict::Refused::Argument(r) = &r {
        let from = std::env::var("SSH_CONNECTION").unwrap_or_else(|_| "(no SSH_CONNECTION)".into());
        log::info!("restricted mode refused: {r}; SSH_CONNECTION={from}");
    }
    Error::Refused(r)
}

/// The rsync role: returns the exit status to leave with.
pub fn rsync(sys: &dyn System, cfg: &Config, opts: &Options, argv: Vec<OsString>) -> Result<u8> {
    let allowances = restrict::Allowances { allow_iconv: opts.allow_iconv, allow_check: opts.allow_check };
    let (argv, pins, policy) = match opts.restrict {
        false => (argv, None, None),
        true => {
            let original = std::env::var_os("SSH_ORIGINAL_COMMAND");
            match restrict::request(original.as_deref(), &opts.allow, &opts.allow_write, allowances).map_err(refuse)? {
                restrict::Request::Check(args) => return Ok(crate::monitor::check(cfg, &args)),
                restrict::Request::Rsync { argv, pins, policy } => (argv, Some(pins), Some(policy)),
            }
        }
    };
    let rsync = crate::real_rsync::find_with(cfg, pins.is_some())?;
    sys.reader(&rsync);
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
    let req = Request { sys, cfg, opts, rsync, inv, policy, pins, protected };
    if req.policy.is_some() {
        if req.inv.role == Role::ServerReceiver {
            return push_confined(&req);
        } else if cfg.provider == ProviderChoice::None {
            return Err(restrict::Refused::NoSnapshots.into());
        } else if req.inv.sources().next().is_none() {
            // rsync would then read nothing snaprsync snapshots, and run
            // outside the confinement: a restricted key never runs it so.
            let last = req.inv.args.last().map_or(&b""[..], |a| a.as_encoded_bytes());
            return Err(refuse(restrict::Refusal::new(
                last,
                "a pull that names no path rsync would read (no -r or -d, or -R with no path); name a path inside an allowed directory",
            )));
        }
    }
    if !req.inv.reads_local_files() || cfg.provider == ProviderChoice::None {
        log::debug!("nothing to snapshot ({:?}); running {} unchanged", req.inv.role, req.rsync.display());
        let launch = req.launch(req.rsync_argv(&req.inv.args)?);
        if req.inv.reads_local_files() {
            // A backup all the same: the history says it read the live files.
            let sources: Vec<PathBuf> = req.inv.sources().map(|a| sys.source_path(a).unwrap_or_else(|| a.into())).collect();
            return lifecycle::run_live(sys, cfg, "rsync", &sources, "provider = \"none\"", &launch);
        }
        return sys.run_unchanged(&launch);
    }
    snapshot_and_run(&req)
}

/// Restricted mode's push: no snapshot, but rsync sees only the write
/// directories (where the platform can confine it).
fn push_confined(req: &Request) -> Result<u8> {
    crate::fault::point("after-check");
    let confine = req.confine().unwrap_or_default();
    match req.sys.expose_confined(req.cfg, None, &req.inv, &req.rsync, &confine)? {
        Some(mut exposure) => {
            let write: Vec<PathBuf> = confine.write.iter().map(|p| p.path.clone()).collect();
            let argv = with_confine_root(&req.rsync, req.rsync_argv(exposure.argv())?, &write);
            let status = exposure.run(&req.launch(argv));
            exposure.undo()?;
            status
        }
        None => req.sys.run_unchanged(&req.launch(req.rsync_argv(&req.inv.args)?)),
    }
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
fn rsync_argv(sys: &dyn System, protected: Option<&Protected>, merged: &[OsString], exposed: &[OsString]) -> Result<Vec<OsString>> {
    let Some(p) = protected else { return Ok(exposed.to_vec()) };
    let block = if exposed == merged {
        p.block.clone()
    } else {
        std::iter::once(OsString::from("rsync")).chain(exposed[p.head..].iter().cloned()).collect()
    };
    if sys.refeed_stdin(protect_args::render_block(&block)?)? {
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
    // `allowed` holds walked paths ([`crate::pin`]): no symlink to resolve.
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
    exposure: &Exposure,
    set: &SnapshotSet,
    sources: &[PathBuf],
) -> std::result::Result<(), restrict::Refusal> {
    let mut roots = policy.allow.clone();
    roots.extend(policy.allow.iter().filter_map(|r| set.locate(r)));
    for (k, &i) in inv.source_indices().iter().enumerate() {
        let seen = if exposure.method() == Method::Confined {
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

/// Snapshots what rsync reads, then runs rsync on the snapshot through the
/// one lifecycle (`lifecycle::run`).
fn snapshot_and_run(req: &Request) -> Result<u8> {
    let inv = &req.inv;
    if let Some((arg, why)) = inv.sources().find_map(|a| req.sys.unmatched(a).map(|why| (a, why))) {
        let e = Error::Unmatched { arg: arg.to_string_lossy().into_owned(), why };
        if req.cfg.on_snapshot_failure != crate::config::OnSnapshotFailure::Live || req.policy.is_some() {
            return Err(e);
        }
        log::warn!("{e}; on_snapshot_failure = \"live\": backing up the LIVE files, not a snapshot");
        let sources: Vec<PathBuf> = inv.sources().map(|a| req.sys.source_path(a).unwrap_or_else(|| a.into())).collect();
        return lifecycle::run_live(req.sys, req.cfg, "rsync", &sources, &e.to_string(), &req.launch(req.rsync_argv(&inv.args)?));
    }
    // Aligned with inv.sources(); a source that does not exist is left to rsync.
    let sources: Vec<PathBuf> = inv.sources().map(|a| req.sys.source_path(a).unwrap_or_else(|| PathBuf::from(a))).collect();
    let mut existing: Vec<PathBuf> = sources.iter().filter_map(|p| snapshot_target(p)).collect();
    existing.dedup();
    if req.policy.is_some() {
        // Restricted mode never reads the live tree: every source is read from a snapshot.
        if let Some((arg, _)) = inv.sources().zip(&sources).find(|(_, p)| snapshot_target(p).is_none()) {
            return Err(refuse(restrict::Refusal::new(
                arg.as_encoded_bytes(),
                "does not exist here, and restricted mode reads only from a snapshot; name an existing path",
            )));
        }
    }
    if existing.is_empty() {
        if req.policy.is_some() {
            // Unreachable by the checks above; never an unconfined rsync all the same.
            return Err(refuse(restrict::Refusal::new("", "nothing to read from a snapshot; name a path inside an allowed directory")));
        }
        let launch = req.launch(req.rsync_argv(&inv.args)?);
        return lifecycle::run_live(req.sys, req.cfg, "rsync", &sources, "no source exists here (rsync says which)", &launch);
    }
    lifecycle::run(req.sys, req.cfg, req.opts, &existing, &RsyncTask { req, sources })
}

/// The rsync role as a lifecycle task: rsync's own paths, shown in a private
/// namespace, rewritten, or confined.
struct RsyncTask<'r> {
    req: &'r Request<'r>,
    /// Aligned with `req.inv.sources()`.
    sources: Vec<PathBuf>,
}

impl Task for RsyncTask<'_> {
    fn expose(&self, cfg: &Config, set: &SnapshotSet) -> Result<Exposure> {
        let req = self.req;
        let confined = match req.confine() {
            Some(c) => req.sys.expose_confined(cfg, Some(set), &req.inv, &req.rsync, &c)?,
            None => None,
        };
        match confined {
            Some(e) => Ok(e),
            None => req.sys.expose(cfg, set, &req.inv, &self.sources, &req.rsync),
        }
    }

    fn check(&self, exposed: &Exposed) -> Result<()> {
        match &self.req.policy {
            // The same confinement again, now as rsync will see the paths: inside the snapshot.
            Some(p) => confine_in_snapshot(p, &self.req.inv, exposed.exposure(), exposed.set(), &self.sources).map_err(refuse),
            None => Ok(()),
        }
    }

    fn launch(&self, exposure: &Exposure) -> Result<Launch> {
        let mut argv = self.req.rsync_argv(exposure.argv())?;
        if let Some(p) = &self.req.policy {
            argv = with_confine_root(&self.req.rsync, argv, &p.allow);
        }
        Ok(self.req.launch(argv))
    }

    fn live(&self) -> Option<Result<Launch>> {
        // Never in restricted mode: a key reads snapshots or nothing.
        let req = self.req;
        req.policy.is_none().then(|| req.rsync_argv(&req.inv.args).map(|argv| req.launch(argv)))
    }
}
