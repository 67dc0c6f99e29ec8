//! Platform seam: what differs between Linux and Windows above the host layer
//! (`crate::host`), as a value. [`System`] is four object-safe capabilities
//! with methods on `&self`; `lib::main` makes the real one of this OS
//! ([`Platform`], from the module chosen here) once and hands it down as
//! `&dyn System` to the roles, the lifecycle, its guards and doctor, so that a
//! double can stand in (the unit tests' `fake::FakeSystem`, the Windows tests'
//! directory double). If one OS lacks a method, the build fails:
//!
//! - [`Volumes`]: which filesystem holds a source, and which provider snapshots it;
//! - [`Exposing`]: how rsync, or exec's command, is shown a snapshot set ([`Exposure`]);
//! - [`Processes`]: snaprsync's own signals, running rsync or the command
//!   ([`Launch`]), hooks with a time limit, and the detached remover;
//! - [`Diagnosing`]: what `snaprsync doctor` asks of the machine.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::error::Result;
use crate::provider::{SnapshotSet, Snapshotter, Sweeper};
use crate::rsync_args::Invocation;

#[cfg(target_os = "linux")]
#[path = "linux/mod.rs"]
mod imp;

#[cfg(windows)]
#[path = "windows/mod.rs"]
mod imp;

/// The real system of this OS: the one value of [`System`] outside tests.
pub use imp::Platform;

/// Gives the calling thread the lowest CPU priority (the prefetch threads:
/// they must take only what rsync leaves idle).
pub use imp::lower_thread_priority;

/// The recording double of the whole system, for the lifecycle's unit tests.
#[cfg(test)]
pub mod fake;

/// Everything a run asks of the machine, as one value.
pub trait System: Volumes + Exposing + Processes + Diagnosing {}

impl<T: Volumes + Exposing + Processes + Diagnosing> System for T {}

/// Which program a [`Launch`] starts; its name in messages and in the summary's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// The real rsync (the rsync role).
    Rsync,
    /// exec's command.
    Command,
}

impl Program {
    pub fn as_str(self) -> &'static str {
        match self {
            Program::Rsync => "rsync",
            Program::Command => "command",
        }
    }
}

impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an [`Exposure`] shows the snapshots; its word in the log, the
/// history and exec's `SNAPRSYNC_EXPOSE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Linux: each snapshot over its origin in a private mount namespace.
    Namespace,
    /// Linux: rsync's paths rewritten into the snapshot.
    Rewrite,
    /// Linux, restricted mode: a root of rsync's own.
    Confined,
    /// Windows: a shadow copy on a free drive letter.
    DriveLetter,
    /// Windows: a shadow copy by its device path.
    DevicePath,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Namespace => "namespace",
            Method::Rewrite => "rewrite",
            Method::Confined => "confined",
            Method::DriveLetter => "drive-letter",
            Method::DevicePath => "device-path",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Windows: snapshots a volume and reads an exclusively held file through both
/// exposures, then prints a verdict and writes a report (`snaprsync selftest`).
#[cfg(windows)]
pub use imp::selftest;

/// What a run starts while the snapshot is shown: rsync in the rsync role,
/// the command in `exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    /// Without argv[0].
    pub args: Vec<OsString>,
    /// Set in its environment, on top of snaprsync's own.
    pub env: Vec<(OsString, OsString)>,
    /// What it is: rsync or exec's command (its name in messages and the summary).
    pub what: Program,
    /// Whether stdout is a backup server's connection, watched while it runs
    /// (the rsync role); exec's stdout is just the command's output.
    pub watch_peer: bool,
}

/// How rsync (or exec's command) is shown the snapshot: the argv rsync gets,
/// where each snapshot is seen, and what the platform set up for it
/// (a [`Hold`]: mounts, drive letters), which [`Exposure::undo`] removes
/// before the snapshot is.
pub struct Exposure {
    argv: Vec<OsString>,
    method: Method,
    places: Vec<Place>,
    held: Box<dyn Hold>,
}

/// What an exposure set up, and how a program runs in it (`Any`: a test
/// may look at what its platform's exposure holds).
pub trait Hold: std::any::Any {
    /// Runs `launch` in the exposure (see [`Exposure::run`]).
    fn run(&mut self, launch: &Launch) -> Result<u8>;

    /// Removes what was set up; a second call finds nothing to do.
    fn undo(&mut self) -> Result<()>;
}

/// Where a program reads one volume's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The live volume (btrfs subvolume, LVM mount, Windows volume), e.g. `/srv` or `C:\`.
    pub origin: PathBuf,
    /// Where its snapshot is seen: the origin itself in a private namespace,
    /// a drive letter or a device path on Windows.
    pub seen: PathBuf,
}

impl Exposure {
    pub(crate) fn new(argv: Vec<OsString>, method: Method, held: impl Hold + 'static) -> Exposure {
        Exposure { argv, method, places: Vec::new(), held: Box::new(held) }
    }

    /// The same, telling where each volume's snapshot is seen (exec).
    pub(crate) fn with_places(mut self, places: Vec<Place>) -> Exposure {
        self.places = places;
        self
    }

    /// Where each snapshot is seen; empty for the rsync role's exposures.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// The argv to give the real rsync (without argv[0]).
    pub fn argv(&self) -> &[OsString] {
        &self.argv
    }

    /// How the snapshots are shown.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Runs `launch` while the exposure is in effect; returns its exit status
    /// (128+N for signal N), with stdio inherited and signals/console events
    /// forwarded.
    pub fn run(&mut self, launch: &Launch) -> Result<u8> {
        self.held.run(launch)
    }

    /// Removes whatever the exposure set up; a second call finds nothing to do.
    pub fn undo(&mut self) -> Result<()> {
        self.held.undo()
    }
}

/// What a restricted rsync may reach: the allowed directories as they were
/// resolved once ([`crate::pin`]), never by their configured text again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Confine<'a> {
    /// Directories it reads, from the snapshot.
    pub read: &'a [crate::pin::Pin],
    /// Directories it writes to (a push).
    pub write: &'a [crate::pin::Pin],
    /// `--iconv` is allowed: the C library's charset converters are shown too.
    pub iconv: bool,
}

/// A hook's command, the same on every platform: stdin from the null device,
/// stdout and stderr to snaprsync's stderr (stdout carries the rsync
/// protocol), started in the root directory. The platform adds the group or
/// job that ends it as a whole.
pub(crate) fn hook_command(program: &Path, args: &[OsString], env: &[(OsString, OsString)]) -> std::process::Command {
    let mut c = std::process::Command::new(program);
    c.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr())
        .stderr(std::io::stderr())
        .current_dir(crate::host::root_dir());
    c
}

/// Which filesystem holds a source, and which provider snapshots it.
pub trait Volumes {
    /// The absolute native path an rsync source argument names, for finding its
    /// volume (Windows: `/cygdrive/c/x` and `/c/x` become `C:\x`). `None` when
    /// the argument is not a local path.
    fn source_path(&self, arg: &OsStr) -> Option<PathBuf>;

    /// The rsync this run starts, once found: on Windows its build decides
    /// how a posix argument reads (`/c/x` is `C:\x` to MSYS2, a path under
    /// the cygwin root to cygwin). Until then every form is read.
    fn reader(&self, rsync: &Path) {
        let _ = rsync;
    }

    /// Why rsync would read `arg` somewhere snaprsync cannot tell, if so
    /// (Windows: `/home/alice` is under the cygwin or MSYS2 root, which only
    /// rsync's runtime knows). Such a source is never read live in silence.
    fn unmatched(&self, arg: &OsStr) -> Option<String> {
        let _ = arg;
        None
    }

    /// exec: the absolute path a PATH argument names, with symlinks followed
    /// (the command reads what they lead to, so that is what is snapshotted).
    /// `None` when it does not exist.
    fn exec_path(&self, arg: &OsStr) -> Option<PathBuf>;

    /// The provider for these sources: from the filesystem type, or as
    /// configured (`provider::PROVIDERS`).
    fn provider(&self, cfg: &Config, sources: &[PathBuf]) -> Result<Box<dyn Snapshotter>>;

    /// A sweeper that can list and remove the snapshots of any run, every
    /// provider's, for the sweep and for `list`/`cleanup`.
    fn sweep_provider(&self, cfg: &Config) -> Result<Box<dyn Sweeper>>;
}

/// How rsync is shown a snapshot set.
pub trait Exposing {
    /// Sets up how `rsync` will read `set` under the names `inv` asks for.
    fn expose(&self, cfg: &Config, set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf], rsync: &Path) -> Result<Exposure>;

    /// Restricted mode: an exposure in which rsync sees nothing but the
    /// directories `confine.read` as they are in `set` (read-only), the
    /// directories `confine.write` (read-write) and what rsync itself loads.
    /// `None` where the platform cannot confine a process (Windows), which then
    /// relies on the checks of the paths alone.
    fn expose_confined(
        &self,
        cfg: &Config,
        set: Option<&SnapshotSet>,
        inv: &Invocation,
        rsync: &Path,
        confine: &Confine,
    ) -> Result<Option<Exposure>>;

    /// exec: shows every snapshot of `set` to a program that names no paths
    /// snaprsync could rewrite, with [`Exposure::places`] telling where.
    /// Linux: each snapshot over its origin in a private namespace (an
    /// origin of `/` is refused); Windows: the configured `expose`.
    fn expose_in_place(&self, cfg: &Config, set: &SnapshotSet) -> Result<Exposure>;
}

/// How a program run with a time limit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounded {
    Code(i32),
    /// Ended by a signal (Unix), or by a console event (Windows: 2).
    Signal(i32),
    /// It outlasted its time and was ended, with its process group (Unix) or
    /// job (Windows).
    TimedOut,
}

/// snaprsync's own process (signals, stdin) and the running of rsync.
pub trait Processes {
    /// From now on the signals (Windows: console events) that would end
    /// snaprsync no longer do so at once: they are remembered or ignored, so
    /// that what was made can be removed.
    fn hold_signals(&self) -> Result<()>;

    /// The signal held since `hold_signals`, if any.
    fn pending_signal(&self) -> Option<i32>;

    /// Everything the run made is released and snaprsync is about to exit
    /// (Windows: a close, logoff or shutdown event waits for this).
    fn finished(&self) {}

    /// Makes stdin read `prefix` and then the rest of the original stdin, for
    /// every child started from now on (a pipe fed by a thread). Used to hand
    /// the real rsync the `--protect-args` block snaprsync read, so that rsync
    /// itself reads it (with its globbing and `--iconv`). Returns false where
    /// the platform does not do this; the block's arguments then go on rsync's
    /// command line instead.
    fn refeed_stdin(&self, prefix: Vec<u8>) -> Result<bool>;

    /// Runs `launch` on the live files (nothing to snapshot, or the `live`
    /// fallback); returns its exit status. May replace the current process.
    fn run_unchanged(&self, launch: &Launch) -> Result<u8>;

    /// Runs a hook: stdin from the null device, stdout and stderr to
    /// snaprsync's stderr (stdout belongs to rsync or the command), in a
    /// process group (Windows: job) of its own that is ended as a whole when it
    /// outlasts `limit`. An ending signal snaprsync holds is passed on to it.
    /// What it leaves running after it exits by itself is left alone (a
    /// helper that holds a lock until `post_snapshot`).
    fn run_bounded(&self, program: &Path, args: &[OsString], env: &[(OsString, OsString)], limit: Duration) -> std::io::Result<Bounded>;

    /// Runs this process as an internal helper if `argv` (without argv[0])
    /// asks for one, and returns its exit status; `None` otherwise.
    fn internal(&self, argv: &[OsString]) -> Option<u8>;

    /// Starts `remover` (`snaprsync __remove-run`, detached) with its stdin
    /// reading `wait`, the pipe by which the run hands it the removal;
    /// returns its pid. The child is not waited for.
    fn start_remover(&self, mut remover: std::process::Command, wait: std::io::PipeReader) -> std::io::Result<u32> {
        remover.stdin(wait).spawn().map(|child| child.id())
    }
}

/// Space on the filesystem holding a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes a root process may still write.
    pub available: u64,
    pub total: u64,
}

/// What a process lacks to make snapshots, and how to give it that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lacking {
    pub what: String,
    pub fix: String,
}

/// The machine's facts that `snaprsync doctor` checks and that differ per OS;
/// the snapshot check itself goes through [`Volumes`] and [`Exposing`], as a run does.
pub trait Diagnosing {
    /// Whether this process may make snapshots and expose them; `Ok` says how.
    fn privileges(&self) -> std::result::Result<String, Lacking>;

    /// The filesystem (or volume) holding the existing `path`, in words.
    fn filesystem(&self, path: &Path) -> Result<String>;

    /// The space on the filesystem holding `path`.
    fn space(&self, path: &Path) -> Result<Space>;

    /// The identity of the file at `path` (device, inode), to tell a snapshot
    /// from the live tree; `None` where the platform has no such thing.
    fn identity(&self, path: &Path) -> Option<(u64, u64)>;

    /// Notes on the rsync found, such as which build it is (Windows).
    fn rsync_notes(&self, rsync: &Path) -> Option<String>;
}
