//! Supervision of snaprsync's own process and of rsync (or exec's command):
//! which signals end a run and which are ignored, and the one loop that waits
//! for the program while it passes signals on and, in the rsync role, watches
//! the backup server's connection. What is said of rsync here holds for exec's
//! command alike.
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

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{
    SIGALRM, SIGHUP, SIGINT, SIGIO, SIGPIPE, SIGPROF, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGVTALRM, SIGXCPU, SIGXFSZ,
};

use super::{bounded, child, feed, Platform};
use crate::error::{Error, Result};
use crate::platform::{Bounded, Launch, Processes};

/// Signals that end the run in order (see the module header).
const ENDING: [i32; 5] = [SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGXCPU];

/// Signals that are ignored while a snapshot exists (see the module header).
const IGNORED: [i32; 8] = [SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGVTALRM, SIGPROF, SIGXFSZ, SIGIO];

/// The signal rsync is sent for an ending signal snaprsync received.
pub(super) fn passed_on(sig: i32) -> i32 {
    if sig == SIGQUIT || sig == SIGXCPU {
        SIGTERM
    } else {
        sig
    }
}

/// The last ignored signal that arrived (0: none), for the log.
static IGNORED_SEEN: LazyLock<Arc<AtomicUsize>> = LazyLock::new(|| Arc::new(AtomicUsize::new(0)));

/// The last signal caught while held (0: none).
static HELD: LazyLock<Arc<AtomicUsize>> = LazyLock::new(|| Arc::new(AtomicUsize::new(0)));

/// See `platform::lower_thread_priority`.
pub fn lower_thread_priority() {
    // Linux's nice value is per thread: `None` is the calling one.
    if let Err(e) = rustix::process::setpriority_process(None, 19) {
        log::debug!("prefetch: cannot lower the thread's priority: {e}");
    }
}

impl Processes for Platform {
    fn hold_signals(&self) -> Result<()> {
        // Once: the handlers stay for the life of the process.
        static HOLDING: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
        let mut holding = HOLDING.lock().unwrap_or_else(|e| e.into_inner());
        if *holding {
            return Ok(());
        }
        *holding = true;
        for sig in ENDING {
            signal_hook::flag::register_usize(sig, Arc::clone(&HELD), sig as usize).map_err(|e| Error::io("signal handler", e))?;
        }
        for sig in IGNORED {
            signal_hook::flag::register_usize(sig, Arc::clone(&IGNORED_SEEN), sig as usize).map_err(|e| Error::io("signal handler", e))?;
        }
        Ok(())
    }

    fn pending_signal(&self) -> Option<i32> {
        match HELD.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig as i32),
        }
    }

    fn refeed_stdin(&self, prefix: Vec<u8>) -> Result<bool> {
        feed::refeed_stdin(prefix)
    }

    fn run_unchanged(&self, launch: &Launch) -> Result<u8> {
        if feed::refed() {
            // The thread that feeds stdin must outlive rsync: no exec.
            return run(launch, None, None);
        }
        let err = Command::new(&launch.program).args(&launch.args).envs(launch.env.iter().map(|(k, v)| (k, v))).exec();
        Err(Error::NotStarted { what: launch.what.as_str(), path: launch.program.clone(), msg: err.to_string() })
    }

    fn run_bounded(&self, program: &Path, args: &[OsString], env: &[(OsString, OsString)], limit: Duration) -> std::io::Result<Bounded> {
        bounded::run(program, args, env, limit)
    }

    fn internal(&self, argv: &[OsString]) -> Option<u8> {
        (argv.first()? == child::WORD).then(|| child::main(&argv[1..]))
    }
}

/// Runs rsync (or the command) with inherited stdio; INT, TERM and HUP sent to
/// snaprsync go to it, and it then ends in its own way; snaprsync waits for it
/// either way. `root`: exec's new root of a root volume, which the child
/// makes its root in a namespace of its own.
///
/// One loop on this thread does the waiting, the forwarding and, for rsync,
/// the watch on the backup server's connection (see `Watch`). It sleeps in a
/// poll on a pidfd of the program, which becomes readable when it ends, and on
/// a socket the signal handlers write to.
pub fn run(launch: &Launch, confine: Option<&child::Confinement>, root: Option<&Path>) -> Result<u8> {
    // Also where no snapshot exists (a push, a re-fed stdin): rsync signals
    // its parent with USR1, which must not end snaprsync before rsync.
    Platform.hold_signals()?;
    let program = launch.program.as_path();
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
            let spec = child::Spec {
                parent: std::process::id(),
                confine: confine.cloned(),
                pivot: root.map(Path::to_path_buf),
                program: program.to_owned(),
                args: launch.args.clone(),
            };
            Command::new("/proc/self/exe")
                .arg0("snaprsync")
                .arg(child::WORD)
                .args(spec.to_args())
                .envs(launch.env.iter().map(|(k, v)| (k, v)))
                .spawn()
                .map_err(|e| Error::NotStarted { what: launch.what.as_str(), path: program.into(), msg: e.to_string() })
        })
        .and_then(|child| wait_forwarding(child, launch, &forwarded, woken));
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    result
}

/// The loop of `run`, until rsync (or the command) has ended.
fn wait_forwarding(
    mut child: std::process::Child,
    launch: &Launch,
    forwarded: &[(i32, Arc<AtomicBool>)],
    woken: std::os::unix::net::UnixStream,
) -> Result<u8> {
    let program = launch.program.as_path();
    let pid = Pid::from_raw(child.id() as i32);
    // A signal held just before the spawn is passed on too.
    if let Some(sig) = Platform.pending_signal().and_then(|s| Signal::try_from(passed_on(s)).ok()) {
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
                    log::info!("got {got}; passing {sent} on to {}", launch.what);
                    let _ = kill(pid, sent);
                }
            }
        }
        note_ignored();
        if launch.watch_peer {
            watch.check(pid);
        }
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
                log::warn!("poll failed ({e}); waiting for {} without forwarding signals", launch.what);
                break child.wait().map_err(|e| Error::io(program, e))?;
            }
        }
        // Empty the socket (non-blocking): every wake-up is handled by the checks above.
        let mut buf = [0u8; 64];
        while matches!(std::io::Read::read(&mut &woken, &mut buf), Ok(n) if n > 0) {}
    };
    note_ignored();
    Ok(shell_status(status))
}

/// An exit status as a shell reports it: the code, or 128+N for signal N.
pub fn shell_status(status: std::process::ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.saturating_add(sig as u8),
        (None, None) => 255,
    }
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
