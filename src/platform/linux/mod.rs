//! Linux: mountinfo picks the provider; a private mount namespace shows rsync
//! the snapshot under the original names; signals are forwarded to rsync.
//!
//! # Signals
//!
//! From the moment a run is about to make a snapshot until it exits, no signal
//! that another process can send ends snaprsync without cleanup. Those whose
//! default action ends a process are handled as follows (a handler, not
//! `SIG_IGN`, so that rsync, which is exec'd, starts with its default
//! dispositions):
//!
//! - HUP, INT, TERM: passed on to rsync while it runs, which then ends in its
//!   own way; before rsync starts, the run stops (status 128+N) after removing
//!   what it made; after rsync ended, removal goes on.
//! - QUIT, XCPU: the same, but rsync is sent TERM (QUIT would make it dump
//!   core, XCPU is a resource limit of snaprsync's, not rsync's).
//! - USR1, USR2: ignored. rsync signals its parent with them (`kill(getppid(),
//!   SIGUSR1)` when its connection breaks), taking it for another rsync;
//!   snaprsync notes it in the log.
//! - PIPE, ALRM, VTALRM, PROF, XFSZ, IO: ignored. A write to a closed pipe or
//!   past a file-size limit then fails with an error instead (the logger drops
//!   it); snaprsync sets no timers and asks for no SIGIO.
//!
//! KILL cannot be handled: rsync then dies too (a parent-death signal, see
//! [`child`]), and the next run's sweep removes the snapshot.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{splice, SpliceFFlags};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{
    SIGALRM, SIGHUP, SIGINT, SIGIO, SIGPIPE, SIGPROF, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGVTALRM, SIGXCPU, SIGXFSZ,
};

use super::{Exposure, PlatformInterface};
use crate::command::Cmd;
use crate::config::{Config, ProviderChoice};
use crate::error::{Error, Result};
use crate::mountinfo::{self, Mount};
use crate::provider::btrfs::Btrfs;
use crate::provider::{Provider, SnapshotSet};
use crate::rsync_args::Invocation;

pub mod child;

pub struct Platform;

/// Signals that end the run in order (see the module header).
const ENDING: [i32; 5] = [SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGXCPU];

/// Signals that are ignored while a snapshot exists (see the module header).
const IGNORED: [i32; 8] = [SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGVTALRM, SIGPROF, SIGXFSZ, SIGIO];

/// The signal rsync is sent for an ending signal snaprsync received.
fn passed_on(sig: i32) -> i32 {
    if sig == SIGQUIT || sig == SIGXCPU {
        SIGTERM
    } else {
        sig
    }
}

/// The last ignored signal that arrived (0: none), for the log.
static IGNORED_SEEN: LazyLock<Arc<AtomicUsize>> = LazyLock::new(|| Arc::new(AtomicUsize::new(0)));

/// Whether stdin is a pipe fed by `feed` (see `refeed_stdin`).
static REFED: AtomicBool = AtomicBool::new(false);

/// The last signal caught while held (0: none).
static HELD: LazyLock<Arc<AtomicUsize>> = LazyLock::new(|| Arc::new(AtomicUsize::new(0)));

fn read_mounts() -> Result<Vec<Mount>> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(mountinfo::parse(&text))
}

impl PlatformInterface for Platform {
    fn default_config_path() -> PathBuf {
        PathBuf::from("/etc/snaprsync/config.toml")
    }

    fn default_state_dir() -> PathBuf {
        PathBuf::from("/var/lib/snaprsync")
    }

    fn process_start(pid: u32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        proc_start_time(&stat)
    }

    fn process_started_at(pid: u32) -> Option<SystemTime> {
        let ticks = Self::process_start(pid)?;
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??.max(1) as u64;
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let btime: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(btime) + Duration::from_millis(ticks * 1000 / hz))
    }

    fn boot_id() -> String {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_owned()).unwrap_or_default()
    }

    fn root_dir() -> PathBuf {
        PathBuf::from("/")
    }

    fn detach(cmd: &mut Command) {
        // Its own process group: no signal meant for the session's group reaches it.
        cmd.process_group(0);
    }

    fn sweep_provider(cfg: &Config) -> Result<Box<dyn Provider>> {
        Ok(Box::new(Btrfs::new(read_mounts()?, &cfg.btrfs_snapshot_dir)))
    }

    fn rsync_file_name() -> &'static OsStr {
        OsStr::new("rsync")
    }

    fn source_path(arg: &OsStr) -> Option<PathBuf> {
        let cwd = std::env::current_dir().ok()?;
        let full = cwd.join(arg);
        // A trailing slash (or `.`) means "the directory's contents": follow it.
        // Otherwise the last component is sent as itself (a symlink stays one),
        // so only its parent is resolved.
        let b = arg.as_bytes();
        if b.ends_with(b"/") || b.ends_with(b"/.") || b == b"." || b == b".." {
            return full.canonicalize().ok();
        }
        let name = full.file_name()?;
        full.parent()?.canonicalize().ok().map(|p| p.join(name))
    }

    fn provider(cfg: &Config, sources: &[PathBuf]) -> Result<Box<dyn Provider>> {
        let mounts = read_mounts()?;
        if cfg.provider == ProviderChoice::Auto {
            for s in sources {
                match mountinfo::find(&mounts, s) {
                    Some(m) if m.fstype == "btrfs" => {}
                    Some(m) => return Err(Error::NoProvider { path: s.clone(), fstype: m.fstype.clone() }),
                    None => return Err(Error::NoProvider { path: s.clone(), fstype: "unknown".into() }),
                }
            }
        }
        match cfg.provider {
            ProviderChoice::Auto | ProviderChoice::Btrfs => Ok(Box::new(Btrfs::new(mounts, &cfg.btrfs_snapshot_dir))),
            other => Err(Error::Usage(format!("provider = {other:?} is not available on Linux; use \"auto\" or \"btrfs\""))),
        }
    }

    fn expose(_cfg: &Config, set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf]) -> Result<Box<dyn Exposure>> {
        let plan = plan(set, inv, sources);
        let mut binds = Vec::new();
        if !plan.binds.is_empty() {
            match private_namespace() {
                Ok(()) => {}
                Err(e) if plan.method == "namespace" => {
                    // Fall back to rewriting the paths; the names may differ.
                    log::warn!("no private mount namespace ({e}); rewriting rsync's paths instead");
                    let fallback = plan_rewrite(set, inv, sources, false);
                    return Ok(Box::new(LinuxExposure { argv: fallback.argv, method: "rewrite", binds }));
                }
                Err(e) => log::warn!("no private mount namespace ({e}); nested subvolumes will arrive empty"),
            }
            // Open every snapshot first: an earlier bind may hide a later one's path.
            let opened = plan
                .binds
                .iter()
                .map(|(snap, target)| File::open(snap).map(|f| (f, snap, target)).map_err(|e| Error::io(snap, e)))
                .collect::<Result<Vec<_>>>()?;
            for (dir, snapshot, target) in opened {
                if let Err(e) = bind(&dir, snapshot, target) {
                    if let Err(undo) = unmount_all(&binds) {
                        log::error!("{undo}");
                    }
                    return Err(e);
                }
                binds.push(target.clone());
            }
        }
        log::debug!("exposure: {}", plan.method);
        Ok(Box::new(LinuxExposure { argv: plan.argv, method: plan.method, binds }))
    }

    fn expose_confined(
        cfg: &Config,
        set: Option<&SnapshotSet>,
        inv: &Invocation,
        rsync: &Path,
        confine: &super::Confine,
    ) -> Result<Option<Box<dyn Exposure>>> {
        // Allowed directories by their real paths: the snapshot paths are real.
        let real = |dirs: &[PathBuf]| dirs.iter().filter_map(|d| d.canonicalize().ok()).collect::<Vec<_>>();
        let state = cfg.state_dir.clone().unwrap_or_else(Self::default_state_dir);
        let root = state.join("confine-root");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&root).map_err(|e| Error::io(&root, e))?;
        let mut files = vec![rsync.to_owned()];
        let mut shown: Vec<(PathBuf, PathBuf)> = set.map(|s| child::read_map(s, &real(confine.read))).unwrap_or_default();
        match Cmd::new("ldd").arg(rsync).run() {
            Ok(out) => {
                let libs = child::ldd_paths(&out);
                if confine.iconv {
                    // --iconv loads its converters beside the C library.
                    let gconv = libs
                        .iter()
                        .find(|l| l.file_name().is_some_and(|n| n == "libc.so.6"))
                        .and_then(|l| l.parent())
                        .map(|d| d.join("gconv"));
                    if let Some(g) = gconv.filter(|g| g.is_dir()).and_then(|g| g.canonicalize().ok()) {
                        shown.push((g.clone(), g));
                    }
                }
                files.extend(libs);
            }
            Err(Error::Command { stderr, .. }) if stderr.contains("not a dynamic executable") => {}
            Err(e) => {
                return Err(Error::Expose {
                    path: rsync.to_owned(),
                    msg: format!("cannot tell which libraries rsync loads ({e}); install libc-bin"),
                })
            }
        }
        // World-readable files rsync and the C library consult.
        for f in ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ld.so.cache", "/etc/localtime", "/dev/null"] {
            if Path::new(f).exists() {
                files.push(f.into());
            }
        }
        let confinement = child::Confinement {
            root,
            read: shown,
            write: real(confine.write),
            files,
            cwd: std::env::current_dir().unwrap_or_else(|_| "/".into()),
        };
        log::debug!("confined: {confinement:?}");
        Ok(Some(Box::new(ConfinedExposure { argv: inv.args.clone(), confinement })))
    }

    fn internal(argv: &[OsString]) -> Option<u8> {
        (argv.first()? == child::WORD).then(|| child::main(&argv[1..]))
    }

    fn hold_signals() -> Result<()> {
        for sig in ENDING {
            signal_hook::flag::register_usize(sig, Arc::clone(&HELD), sig as usize).map_err(|e| Error::io("signal handler", e))?;
        }
        for sig in IGNORED {
            signal_hook::flag::register_usize(sig, Arc::clone(&IGNORED_SEEN), sig as usize).map_err(|e| Error::io("signal handler", e))?;
        }
        Ok(())
    }

    fn pending_signal() -> Option<i32> {
        match HELD.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig as i32),
        }
    }

    fn refeed_stdin(prefix: Vec<u8>) -> Result<bool> {
        let stdin = std::io::stdin();
        let original = stdin.as_fd().try_clone_to_owned().map_err(|e| Error::io("stdin", e))?;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::io("pipe", e.into()))?;
        nix::unistd::dup2_stdin(&read).map_err(|e| Error::io("stdin", e.into()))?;
        drop(read);
        std::thread::spawn(move || {
            if let Err(e) = feed(&prefix, original, write) {
                log::debug!("feeding rsync's stdin ended: {e}");
            }
        });
        REFED.store(true, Ordering::SeqCst);
        Ok(true)
    }

    fn run_unchanged(program: &Path, argv: &[OsString]) -> Result<u8> {
        if REFED.load(Ordering::SeqCst) {
            // The thread that feeds stdin must outlive rsync: no exec.
            return run_forwarding_signals(program, argv, None);
        }
        let err = Command::new(program).args(argv).exec();
        Err(Error::RsyncMissing { path: program.into(), msg: err.to_string() })
    }
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks after boot); `None`
/// for a process that has ended but not been reaped (a zombie cannot clean up).
/// The command name (field 2) may hold spaces and parentheses, so count from the last `)`.
fn proc_start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// How rsync will see the snapshot: its argv and the bind mounts to make.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    argv: Vec<OsString>,
    method: &'static str,
    /// (snapshot, where to mount it), in order.
    binds: Vec<(PathBuf, PathBuf)>,
}

/// Pure: the namespace method (each snapshot mounted over its origin, argv
/// unchanged) unless an origin is `/`, which cannot be mounted over for rsync;
/// then rewriting.
fn plan(set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf]) -> Plan {
    if set.volumes.iter().all(|v| v.origin != Path::new("/")) {
        let binds = set.volumes.iter().map(|v| (v.snapshot.clone(), v.origin.clone())).collect();
        return Plan { argv: inv.args.clone(), method: "namespace", binds };
    }
    plan_rewrite(set, inv, sources, true)
}

/// Pure: source arguments rewritten into the snapshot, with nested snapshots
/// mounted inside their parent snapshot. With `--relative`, the names are kept
/// by marking the snapshot root with `/./` when the origin is `/`.
fn plan_rewrite(set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf], nested_binds: bool) -> Plan {
    let mut i = 0;
    let argv = inv.render_with_sources(|arg| {
        let src = sources.get(i);
        i += 1;
        let Some(src) = src else { return arg.to_owned() };
        rewrite_one(set, inv.relative, arg, src).unwrap_or_else(|| arg.to_owned())
    });
    let mut binds = Vec::new();
    if nested_binds {
        for (k, v) in set.volumes.iter().enumerate() {
            let parent = SnapshotSet { provider: set.provider, volumes: set.volumes[..k].to_vec() };
            if let Some(inside) = parent.locate(&v.origin) {
                binds.push((v.snapshot.clone(), inside));
            }
        }
    }
    Plan { argv, method: "rewrite", binds }
}

fn rewrite_one(set: &SnapshotSet, relative: bool, arg: &OsStr, src: &Path) -> Option<OsString> {
    let vol = set.volumes.iter().filter(|v| src.starts_with(&v.origin)).max_by_key(|v| v.origin.components().count())?;
    let rest = src.strip_prefix(&vol.origin).ok()?;
    let mut out = vol.snapshot.as_os_str().as_bytes().to_vec();
    if relative {
        if vol.origin != Path::new("/") {
            log::warn!("--relative names of {} will include the snapshot path: the namespace method was not available", src.display());
        }
        out.extend_from_slice(b"/.");
    }
    if !rest.as_os_str().is_empty() {
        out.push(b'/');
        out.extend_from_slice(rest.as_os_str().as_bytes());
    }
    if arg.as_bytes().ends_with(b"/") && !out.ends_with(b"/") {
        out.push(b'/');
    }
    Some(OsString::from_vec(out))
}

/// Moves this process into its own mount namespace whose mounts never
/// propagate back: what rsync sees changes for rsync alone.
fn private_namespace() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| Error::Expose { path: "/".into(), msg: format!("unshare(CLONE_NEWNS): {e}") })?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| Error::Expose { path: "/".into(), msg: format!("making mounts private: {e}") })
}

/// Mounts the opened snapshot directory over `target`, through /proc/self/fd.
fn bind(dir: &File, snapshot: &Path, target: &Path) -> Result<()> {
    let src = format!("/proc/self/fd/{}", dir.as_raw_fd());
    mount(Some(src.as_str()), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| Error::Expose { path: target.into(), msg: format!("bind-mounting {}: {e}", snapshot.display()) })?;
    log::debug!("mounted {} over {}", snapshot.display(), target.display());
    Ok(())
}

/// Unmounts `targets` in reverse order; returns the first failure.
fn unmount_all(targets: &[PathBuf]) -> Result<()> {
    let mut first = None;
    for target in targets.iter().rev() {
        if let Err(e) = umount2(target, MntFlags::MNT_DETACH) {
            first.get_or_insert(Error::Expose { path: target.clone(), msg: format!("unmounting: {e}") });
        }
    }
    first.map_or(Ok(()), Err)
}

struct LinuxExposure {
    argv: Vec<OsString>,
    method: &'static str,
    binds: Vec<PathBuf>,
}

impl Exposure for LinuxExposure {
    fn argv(&self) -> &[OsString] {
        &self.argv
    }

    fn method(&self) -> &'static str {
        self.method
    }

    fn run(&mut self, program: &Path, argv: &[OsString]) -> Result<u8> {
        run_forwarding_signals(program, argv, None)
    }

    fn undo(self: Box<Self>) -> Result<()> {
        unmount_all(&self.binds)
    }
}

/// Restricted mode: rsync runs in a root of its own (see `child`); nothing is
/// mounted in snaprsync's own namespace.
struct ConfinedExposure {
    argv: Vec<OsString>,
    confinement: child::Confinement,
}

impl Exposure for ConfinedExposure {
    fn argv(&self) -> &[OsString] {
        &self.argv
    }

    fn method(&self) -> &'static str {
        "confined"
    }

    fn run(&mut self, program: &Path, argv: &[OsString]) -> Result<u8> {
        run_forwarding_signals(program, argv, Some(&self.confinement))
    }

    fn undo(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Runs rsync with inherited stdio; INT, TERM and HUP sent to snaprsync go to
/// rsync, which then ends in its own way; snaprsync waits for it either way.
///
/// One loop on this thread does the waiting, the forwarding and the watch on
/// the backup server's connection (see `Watch`). It sleeps in a poll on a
/// pidfd of rsync, which becomes readable when rsync ends, and on a socket
/// the signal handlers write to.
fn run_forwarding_signals(program: &Path, argv: &[OsString], confine: Option<&child::Confinement>) -> Result<u8> {
    let (wake, woken) = std::os::unix::net::UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
    woken.set_nonblocking(true).map_err(|e| Error::io("socketpair", e))?;
    let forwarded = ENDING.map(|sig| (sig, Arc::new(AtomicBool::new(false))));
    let mut ids = Vec::new();
    let registered: std::io::Result<()> = (|| {
        // The flags first: a handler runs its actions in order, so a wake-up
        // always finds its flag set.
        for (sig, flag) in &forwarded {
            ids.push(signal_hook::flag::register(*sig, Arc::clone(flag))?);
        }
        for (sig, _) in &forwarded {
            ids.push(signal_hook::low_level::pipe::register(*sig, wake.try_clone()?)?);
        }
        Ok(())
    })();
    let result = registered
        .map_err(|e| Error::io("signal handler", e))
        .and_then(|()| {
            // rsync is started through a fresh snaprsync (see `child`), which sets
            // its parent-death signal and, in restricted mode, its confinement.
            let spec =
                child::Spec { parent: std::process::id(), confine: confine.cloned(), program: program.to_owned(), args: argv.to_vec() };
            Command::new("/proc/self/exe")
                .arg0("snaprsync")
                .arg(child::WORD)
                .args(spec.to_args())
                .spawn()
                .map_err(|e| Error::RsyncMissing { path: program.into(), msg: e.to_string() })
        })
        .and_then(|child| wait_forwarding(child, program, &forwarded, woken));
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    result
}

/// The loop of `run_forwarding_signals`, until rsync has ended.
fn wait_forwarding(
    mut child: std::process::Child,
    program: &Path,
    forwarded: &[(i32, Arc<AtomicBool>)],
    woken: std::os::unix::net::UnixStream,
) -> Result<u8> {
    let pid = Pid::from_raw(child.id() as i32);
    // A signal held just before the spawn is passed on too.
    if let Some(sig) = Platform::pending_signal().and_then(|s| Signal::try_from(passed_on(s)).ok()) {
        let _ = kill(pid, sig);
    }
    // Without a pidfd (Linux before 5.3), the loop looks for rsync's exit every 20 ms.
    let pidfd = rustix::process::Pid::from_raw(pid.as_raw())
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let mut watch = Watch::default();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::io(program, e))? {
            break status;
        }
        for (sig, flag) in forwarded {
            if flag.swap(false, Ordering::SeqCst) {
                if let (Ok(got), Ok(sent)) = (Signal::try_from(*sig), Signal::try_from(passed_on(*sig))) {
                    log::info!("got {got}; passing {sent} on to rsync");
                    let _ = kill(pid, sent);
                }
            }
        }
        note_ignored();
        watch.check(pid);
        let mut fds = vec![PollFd::new(woken.as_fd(), PollFlags::POLLIN)];
        let mut timeout = watch.next_check();
        match &pidfd {
            Some(fd) => fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
            None => timeout = PollTimeout::from(20u8),
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                // Never leave rsync running on the snapshot: wait without the extras.
                log::warn!("poll failed ({e}); waiting for rsync without forwarding signals");
                break child.wait().map_err(|e| Error::io(program, e))?;
            }
        }
        // Empty the socket (non-blocking): every wake-up is handled by the checks above.
        let mut buf = [0u8; 64];
        while matches!(std::io::Read::read(&mut &woken, &mut buf), Ok(n) if n > 0) {}
    };
    note_ignored();
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.saturating_add(sig as u8),
        (None, None) => 255,
    })
}

/// Logs an ignored signal once it has arrived.
fn note_ignored() {
    let sig = IGNORED_SEEN.swap(0, Ordering::SeqCst) as i32;
    if let Ok(sig) = Signal::try_from(sig) {
        if sig == Signal::SIGUSR1 || sig == Signal::SIGUSR2 {
            log::info!("ignored {sig}: rsync signals its parent so when it ends early, taking it for another rsync");
        } else {
            log::info!("ignored {sig}");
        }
    }
}

/// Writes `prefix` into the pipe, then moves everything that arrives on the
/// original stdin into it (splice: no copy through user space), until EOF,
/// which is passed on by closing the pipe, or until rsync closes its end.
///
/// A blocking splice from a socket holds the pipe locked while it waits for
/// data, which would stall rsync's reads of what is already in the pipe; so
/// the wait is a poll, and the splice itself never blocks.
fn feed(prefix: &[u8], from: OwnedFd, into: OwnedFd) -> std::io::Result<()> {
    let mut into = File::from(into);
    into.write_all(prefix)?;
    let wait = |fd: BorrowedFd, ev: PollFlags| {
        let _ = poll(&mut [PollFd::new(fd, ev)], PollTimeout::NONE);
    };
    loop {
        wait(from.as_fd(), PollFlags::POLLIN);
        match splice(&from, None, &into, None, 1 << 16, SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK) {
            Ok(0) => return Ok(()),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // The pipe is full (or the data went to another reader): wait for room.
            Err(nix::errno::Errno::EAGAIN) => wait(into.as_fd(), PollFlags::POLLOUT),
            // Not a pipe or socket (a terminal, a file): copy instead.
            Err(nix::errno::Errno::EINVAL) => {
                std::io::copy(&mut File::from(from), &mut into)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How long rsync may live on after the backup server's connection is gone,
/// before it is asked to end (SIGTERM), and then made to (SIGKILL).
const PEER_GRACE: Duration = Duration::from_millis(1500);

/// How often the connection is looked at while it is there.
const PEER_CHECK: Duration = Duration::from_millis(250);

/// The watch on stdout, the connection to the backup server, while rsync runs.
/// When the far end goes away (a killed ssh client, a dropped link), rsync
/// normally ends at once on its own; if it hangs instead, it is ended here, so
/// the snapshot is removed within seconds. The look is a poll with a zero
/// timeout and no events asked (POLLERR/POLLHUP are reported anyway), so
/// nothing of snaprsync's waits on rsync's output.
#[derive(Default)]
struct Watch {
    lost: Option<Instant>,
    termed: bool,
}

impl Watch {
    fn check(&mut self, rsync: Pid) {
        if self.lost.is_none() {
            let stdout = std::io::stdout();
            let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
            let gone = PollFlags::POLLERR | PollFlags::POLLHUP;
            if poll(&mut fds, PollTimeout::ZERO).is_ok() && fds[0].revents().is_some_and(|r| r.intersects(gone)) {
                // Normally rsync ends by itself right away (this also fires when a
                // finished transfer's client hangs up first): only log the debug line.
                log::debug!("the connection to the backup server is gone");
                self.lost = Some(Instant::now());
            }
        }
        let Some(at) = self.lost else { return };
        let waited = at.elapsed();
        if waited > 2 * PEER_GRACE {
            let _ = kill(rsync, Signal::SIGKILL);
        } else if waited > PEER_GRACE {
            if !self.termed {
                log::warn!("rsync still runs {PEER_GRACE:?} after the backup server's connection went away; ending it");
                self.termed = true;
            }
            let _ = kill(rsync, Signal::SIGTERM);
        }
    }

    /// The longest wait before the next check.
    fn next_check(&self) -> PollTimeout {
        let wait = if self.lost.is_some() { Duration::from_millis(100) } else { PEER_CHECK };
        PollTimeout::try_from(wait).unwrap_or(PollTimeout::NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::VolumeSnapshot;
    use crate::rsync_args;

    fn inv(words: &[&str]) -> Invocation {
        rsync_args::parse(&words.iter().map(OsString::from).collect::<Vec<_>>()).unwrap()
    }

    fn set(vols: &[(&str, &str)]) -> SnapshotSet {
        SnapshotSet {
            provider: "btrfs",
            volumes: vols.iter().map(|(o, s)| VolumeSnapshot { origin: o.into(), snapshot: s.into(), id: s.to_string() }).collect(),
        }
    }

    #[test]
    fn start_time_survives_odd_command_names() {
        let stat = "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(proc_start_time(stat), Some(987654));
        assert_eq!(proc_start_time(&stat.replace(" S 1 ", " Z 1 ")), None, "a zombie is not alive");
        assert_eq!(proc_start_time("garbage"), None);
    }

    #[test]
    fn namespace_keeps_argv_and_binds_parents_first() {
        let s = set(&[("/mnt", "/mnt/.snaprsync/a-0"), ("/mnt/data/n", "/mnt/.snaprsync/a-1")]);
        let i = inv(&["--server", "--sender", "-logDtprRe.iLsfxCIvu", ".", "/mnt/data/"]);
        let p = plan(&s, &i, &["/mnt/data".into()]);
        assert_eq!(p.method, "namespace");
        assert_eq!(p.argv, i.args);
        assert_eq!(p.binds, vec![("/mnt/.snaprsync/a-0".into(), "/mnt".into()), ("/mnt/.snaprsync/a-1".into(), "/mnt/data/n".into())]);
    }

    #[test]
    fn root_origin_is_rewritten_with_relative_marker() {
        let s = set(&[("/", "/.snaprsync/a-0"), ("/home", "/.snaprsync/a-1")]);
        let i = inv(&["--server", "--sender", "-logDtprRe.iLsfxCIvu", ".", "/etc/", "/var/log"]);
        let p = plan(&s, &i, &["/etc".into(), "/var/log".into()]);
        assert_eq!(p.method, "rewrite");
        let tail: Vec<_> = p.argv[4..].to_vec();
        assert_eq!(tail, vec![OsString::from("/.snaprsync/a-0/./etc/"), OsString::from("/.snaprsync/a-0/./var/log")]);
        assert_eq!(p.binds, vec![("/.snaprsync/a-1".into(), "/.snaprsync/a-0/home".into())]);
    }

    #[test]
    fn rewrite_without_relative_keeps_trailing_slash_semantics() {
        let s = set(&[("/", "/.s/a-0")]);
        let i = inv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/", "/etc", "/srv/x/"]);
        let p = plan(&s, &i, &["/".into(), "/etc".into(), "/srv/x".into()]);
        assert_eq!(p.argv[4..].to_vec(), vec![OsString::from("/.s/a-0/"), OsString::from("/.s/a-0/etc"), OsString::from("/.s/a-0/srv/x/")]);
    }
}
