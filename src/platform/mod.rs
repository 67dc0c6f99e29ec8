//! Platform seam: everything that differs between Linux and Windows sits behind
//! [`PlatformInterface`], implemented once per OS in the module chosen here.
//! If one OS lacks a method, the build fails.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::Result;
use crate::provider::{Provider, SnapshotSet};
use crate::rsync_args::Invocation;

#[cfg(target_os = "linux")]
#[path = "linux/mod.rs"]
mod imp;

#[cfg(windows)]
#[path = "windows/mod.rs"]
mod imp;

pub use imp::Platform;

/// Windows: snapshots a volume and reads an exclusively held file through both
/// exposures, then prints a verdict and writes a report (`snaprsync selftest`).
#[cfg(windows)]
pub use imp::selftest;

/// How rsync is shown the snapshot; undone before the snapshot is removed.
pub trait Exposure {
    /// The argv to give the real rsync (without argv[0]).
    fn argv(&self) -> &[OsString];
    /// A short name of the method for the log (`namespace`, `rewrite`, `drive-letter`).
    fn method(&self) -> &'static str;
    /// Runs `program` with `argv` (normally [`Exposure::argv`]) while the
    /// exposure is in effect; returns rsync's exit status (128+N for signal N),
    /// with stdio inherited and signals/console events forwarded.
    fn run(&mut self, program: &Path, argv: &[OsString]) -> Result<u8>;
    /// Removes whatever the exposure set up (mounts, drive letters).
    fn undo(self: Box<Self>) -> Result<()>;
}

/// What a restricted rsync may reach.
#[derive(Debug, Clone, Default)]
pub struct Confine<'a> {
    /// Directories it reads, from the snapshot.
    pub read: &'a [PathBuf],
    /// Directories it writes to (a push).
    pub write: &'a [PathBuf],
    /// `--iconv` is allowed: the C library's charset converters are shown too.
    pub iconv: bool,
}

/// What every platform provides.
pub trait PlatformInterface {
    /// The config file read when `--snap-config` is not given.
    fn default_config_path() -> PathBuf;

    /// Where run records live when `state_dir` is not set.
    fn default_state_dir() -> PathBuf;

    /// When process `pid` started, as the OS counts it; `None` if no such process.
    fn process_start(pid: u32) -> Option<u64>;

    /// When process `pid` started, by the wall clock; `None` if no such process.
    fn process_started_at(pid: u32) -> Option<std::time::SystemTime>;

    /// Identifies the current boot of the machine.
    fn boot_id() -> String;

    /// The root directory, where detached helpers run (so they keep no
    /// filesystem busy).
    fn root_dir() -> PathBuf;

    /// Detaches a helper process from the session that started snaprsync, so
    /// that it outlives the backup connection.
    fn detach(cmd: &mut std::process::Command);

    /// A provider that can list and remove the snapshots of any run, for the
    /// sweep and for `list`/`cleanup`.
    fn sweep_provider(cfg: &Config) -> Result<Box<dyn Provider>>;

    /// The file name of the real rsync to look for on PATH (`rsync`, `rsync.exe`).
    fn rsync_file_name() -> &'static OsStr;

    /// The absolute native path an rsync source argument names, for finding its
    /// volume (Windows: `/cygdrive/c/x` and `/c/x` become `C:\x`). `None` when
    /// the argument is not a local path.
    fn source_path(arg: &OsStr) -> Option<PathBuf>;

    /// The provider for these sources: from the filesystem type, or as configured.
    fn provider(cfg: &Config, sources: &[PathBuf]) -> Result<Box<dyn Provider>>;

    /// Sets up how rsync will read `set` under the names `inv` asks for.
    fn expose(cfg: &Config, set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf]) -> Result<Box<dyn Exposure>>;

    /// From now on INT, TERM and HUP (Windows: console events) no longer end
    /// snaprsync at once: they are remembered, so that what was made can be removed.
    fn hold_signals() -> Result<()>;

    /// The first signal held since `hold_signals`, if any.
    fn pending_signal() -> Option<i32>;

    /// Makes stdin read `prefix` and then the rest of the original stdin, for
    /// every child started from now on (a pipe fed by a thread). Used to hand
    /// the real rsync the `--protect-args` block snaprsync read, so that rsync
    /// itself reads it (with its globbing and `--iconv`). Returns false where
    /// the platform does not do this; the block's arguments then go on rsync's
    /// command line instead.
    fn refeed_stdin(prefix: Vec<u8>) -> Result<bool>;

    /// Restricted mode: an exposure in which rsync sees nothing but the
    /// directories `confine.read` as they are in `set` (read-only), the
    /// directories `confine.write` (read-write) and what rsync itself loads. `None` where the
    /// platform cannot confine a process (Windows), which then relies on the
    /// checks of the paths alone.
    fn expose_confined(
        cfg: &Config,
        set: Option<&SnapshotSet>,
        inv: &Invocation,
        rsync: &Path,
        confine: &Confine,
    ) -> Result<Option<Box<dyn Exposure>>>;

    /// Runs this process as an internal helper if `argv` (without argv[0])
    /// asks for one, and returns its exit status; `None` otherwise.
    fn internal(argv: &[OsString]) -> Option<u8>;

    /// Runs rsync with `argv` unchanged (nothing to snapshot, or `live` fallback);
    /// returns its exit status. May replace the current process.
    fn run_unchanged(program: &Path, argv: &[OsString]) -> Result<u8>;
}
