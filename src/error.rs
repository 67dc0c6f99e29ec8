//! snaprsync's own failures, as one typed error whose exit status is a method.
//!
//! Policy: every error names what failed (a path, a command line, an HRESULT) and
//! how to fix it, in one line; `Error::exit_code` maps it to a documented status
//! that no rsync version uses, so a backup server can tell "snaprsync could not
//! start the backup" from anything rsync itself reports.

use std::path::PathBuf;

/// snaprsync's own exit statuses. rsync uses 0-35 and 128+N for signals; these
/// sit in 80-95 so that they never collide. Documented in README "Exit statuses".
pub mod status {
    /// A `--snap-*` option, the config file or a subcommand is wrong.
    pub const USAGE: u8 = 80;
    /// A snapshot could not be created (and `on_snapshot_failure = "fail"`).
    pub const SNAPSHOT: u8 = 81;
    /// The real rsync could not be found or started.
    pub const RSYNC_MISSING: u8 = 82;
    /// A source path lies on a filesystem that no provider can snapshot, or
    /// cannot be matched to a snapshotted volume, or the sources need two providers.
    pub const NO_PROVIDER: u8 = 83;
    /// The rsync argument block read from stdin (`--protect-args`) is malformed.
    pub const PROTECT_ARGS: u8 = 84;
    /// Restricted mode refused the requested command.
    pub const REFUSED: u8 = 85;
    /// The snapshot could not be exposed to rsync under its original names.
    pub const EXPOSE: u8 = 86;
    /// VSS refused for lack of privilege (Windows).
    pub const ACCESS_DENIED: u8 = 87;
    /// Windows: another snapshot set stayed in progress, or a VSS step outlasted `vss_timeout`.
    pub const VSS_BUSY: u8 = 88;
    /// Any other failure of snaprsync itself (I/O on its own files, a bug).
    pub const INTERNAL: u8 = 89;
    /// Windows: not enough shadow storage, or the maximum number of shadow copies.
    pub const VSS_NO_STORAGE: u8 = 90;
    /// Windows: a volume VSS cannot shadow (network drive, FAT/exFAT).
    pub const VSS_VOLUME_UNSUPPORTED: u8 = 91;
    /// Windows: VSS is not available (service off, 32-bit snaprsync on 64-bit Windows, wine).
    pub const VSS_UNAVAILABLE: u8 = 92;
    /// A snapshot was lost while rsync read it, so what was read is garbage:
    /// an LVM thick snapshot filled up, or a VSS shadow copy vanished (Event 25).
    pub const SNAPSHOT_OVERFLOW: u8 = 93;
    /// A `pre_snapshot` or `post_snapshot` hook failed or outlasted
    /// `hook_timeout` (with `hook_failure = "fail"`); nothing was left behind.
    pub const HOOK: u8 = 94;
    /// `snaprsync doctor`: at least one check failed.
    pub const CHECK_FAILED: u8 = 95;
}

/// Every status of [`status`] with what it means, as README "Exit statuses",
/// the man page and `snaprsync help` show it (text between backquotes is code).
/// A test keeps README's table equal to this one.
pub const STATUSES: &[(u8, &str)] = &[
    (status::USAGE, "usage: a bad `--snap-*` option, config file or subcommand"),
    (
        status::SNAPSHOT,
        "a snapshot could not be created (with `on_snapshot_failure = \"fail\"`): not root, no space, the snapshot location read-only, the run could not be recorded in `state_dir`",
    ),
    (status::RSYNC_MISSING, "the real rsync could not be found or started (exec: COMMAND could not be started)"),
    (
        status::NO_PROVIDER,
        "a source path is on a filesystem no provider can snapshot, or cannot be matched to a snapshotted volume (Windows: a path under the cygwin root), or the sources are on two kinds of volume (one run snapshots one kind)",
    ),
    (status::PROTECT_ARGS, "the `--protect-args` argument block on stdin is malformed or too large"),
    (status::REFUSED, "restricted mode refused the command"),
    (status::EXPOSE, "the snapshot could not be shown to rsync under its original names"),
    (status::ACCESS_DENIED, "Windows: VSS access denied (not elevated, not in Backup Operators)"),
    (status::VSS_BUSY, "Windows: another snapshot set stayed in progress, or VSS outlasted `vss_timeout`"),
    (status::INTERNAL, "any other failure of snaprsync itself, including a panic (a bug: the line says where)"),
    (status::VSS_NO_STORAGE, "Windows: not enough shadow storage, or the maximum number of shadow copies"),
    (status::VSS_VOLUME_UNSUPPORTED, "Windows: a volume VSS cannot shadow (a locked BitLocker volume, network drive, FAT/exFAT, RAM disk)"),
    (status::VSS_UNAVAILABLE, "Windows: VSS unavailable"),
    (
        status::SNAPSHOT_OVERFLOW,
        "a snapshot was lost while rsync read it; the copy is not consistent. LVM: a thick snapshot filled up (raise `lvm_snapshot_size`); Windows: a shadow copy vanished (Event 25: give the volume more shadow storage). Reported also when rsync itself failed",
    ),
    (
        status::HOOK,
        "a `pre_snapshot` or `post_snapshot` hook failed or outlasted `hook_timeout` (with `hook_failure = \"fail\"`); nothing was left behind",
    ),
    (status::CHECK_FAILED, "`snaprsync doctor`: at least one check failed (its line says FAIL)"),
];

/// The meaning of status 128+N, which is not one number.
pub const SIGNAL_STATUS: &str = "snaprsync itself was stopped by signal N before rsync (or COMMAND) started (after removing what it made)";

/// One failure of snaprsync itself; rsync's own failures are exit statuses, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("config file {path}: {msg}; fix the file or point --snap-config at another one")]
    Config { path: PathBuf, msg: String },

    #[error("cannot snapshot {path}: {msg}")]
    Snapshot { path: PathBuf, msg: String },

    #[error("{cmd} failed ({status}): {stderr}")]
    Command { cmd: String, status: Exit, stderr: String },

    /// A system call on a path failed, e.g. a btrfs ioctl; `op` names it.
    #[error("{op} {path}: {source}")]
    Syscall {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The program a run starts (`what`: rsync, or exec's command) could not be found or started.
    #[error("cannot start {what} {path}: {msg}")]
    NotStarted { what: &'static str, path: PathBuf, msg: String },

    /// Sources on two kinds of volume (say btrfs and LVM): one run snapshots one kind.
    #[error("{path} is on {kind} and an earlier source on {earlier}: one run snapshots one kind of volume; back them up in separate runs", path = path.display())]
    MixedProviders { path: PathBuf, kind: String, earlier: String },

    #[error("{path} is on a {fstype} filesystem, which snaprsync cannot snapshot; back it up without snaprsync, or set on_snapshot_failure = \"live\"")]
    NoProvider { path: PathBuf, fstype: String },

    /// Windows, `vss_writers = "require"`: a VSS writer failed while the
    /// shadow copy was made. Not a snapshot failure: never turned into a live backup.
    #[error("VSS writers failed while the shadow copy of {volumes} was made: {msg}")]
    WritersFailed { volumes: String, msg: String },

    /// A source rsync would read that cannot be matched to a snapshotted
    /// volume: never read live in silence.
    #[error("{arg}: {why}; or set on_snapshot_failure = \"live\" to back it up live")]
    Unmatched { arg: String, why: String },

    #[error("protect-args block on stdin: {0}")]
    ProtectArgs(#[from] crate::protect_args::ProtectArgsError),

    #[error("refused: {0}")]
    Refused(#[from] crate::restrict::refusal::Refused),

    #[error("cannot show the snapshot of {path}: {msg}")]
    Expose { path: PathBuf, msg: String },

    #[error("{what}: HRESULT {hresult:#010x}: {msg}")]
    Vss { what: String, hresult: u32, msg: String, kind: VssKind },

    #[error("the snapshot {snapshot} of {volume} filled up while rsync read it, so this backup is not a consistent copy; raise lvm_snapshot_size (or use a thin volume)", volume = volume.display())]
    SnapshotOverflow { volume: PathBuf, snapshot: String },

    /// A hook (`pre_snapshot`, `post_snapshot`) failed with `hook_failure = "fail"`.
    #[error("{hook} {msg}; nothing was left behind; fix the hook, or set hook_failure = \"warn\" to go on without it")]
    Hook { hook: &'static str, msg: String },

    #[error("stopped by signal {0} before the backup program started; nothing was left behind")]
    Interrupted(i32),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The documented exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config { .. } => status::USAGE,
            Error::Snapshot { .. } | Error::Command { .. } | Error::Syscall { .. } | Error::WritersFailed { .. } => status::SNAPSHOT,
            Error::NotStarted { .. } => status::RSYNC_MISSING,
            Error::NoProvider { .. } | Error::Unmatched { .. } | Error::MixedProviders { .. } => status::NO_PROVIDER,
            Error::ProtectArgs(_) => status::PROTECT_ARGS,
            Error::Refused(_) => status::REFUSED,
            Error::Expose { .. } => status::EXPOSE,
            Error::Vss { kind, .. } => kind.status(),
            Error::SnapshotOverflow { .. } => status::SNAPSHOT_OVERFLOW,
            Error::Hook { .. } => status::HOOK,
            Error::Interrupted(sig) => 128u8.saturating_add(*sig as u8),
            Error::Io { .. } => status::INTERNAL,
        }
    }

    /// Whether `on_snapshot_failure = "live"` may turn this error into a live backup.
    pub fn is_snapshot_failure(&self) -> bool {
        matches!(
            self,
            Error::Snapshot { .. }
                | Error::Command { .. }
                | Error::Syscall { .. }
                | Error::NoProvider { .. }
                | Error::Unmatched { .. }
                | Error::Vss { .. }
                | Error::Expose { .. }
        )
    }

    /// A failure while the snapshots were made (or the run recorded before):
    /// never a bug, so an I/O or system-call error becomes `Snapshot` (81,
    /// and `on_snapshot_failure = "live"` may take it), said with its cause
    /// and fix when a user can cause it ([`cause_and_fix`]).
    pub fn while_snapshotting(self) -> Error {
        match self {
            Error::Io { path, source } | Error::Syscall { path, source, .. } => {
                let msg = match cause_and_fix(&source) {
                    Some(fix) => format!("{source}; {fix}"),
                    None => source.to_string(),
                };
                Error::Snapshot { path, msg }
            }
            other => other,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// What a user can do about an OS error met while making a snapshot: no
/// space, a quota, no privilege, a read-only location.
pub fn cause_and_fix(e: &std::io::Error) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use nix::libc;
        match e.raw_os_error()? {
            libc::ENOSPC => Some("the filesystem is full, and a snapshot needs room for its metadata; free some space on it (or set on_snapshot_failure = \"live\")"),
            libc::EDQUOT => Some("a quota on the filesystem is used up; raise it or free space under it (or set on_snapshot_failure = \"live\")"),
            libc::EACCES | libc::EPERM => Some("snaprsync needs root or CAP_SYS_ADMIN to make snapshots; run it as root (log the backup key in as root, or use sudo)"),
            libc::EROFS => Some("the filesystem is mounted read-only, so no snapshot can be made on it; remount it read-write, or back it up without snaprsync (a read-only filesystem does not change), or set on_snapshot_failure = \"live\""),
            _ => None,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        None
    }
}

/// How a helper command that did not succeed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It could not be started (why is in the error's `stderr`).
    NotStarted,
    /// It exited with this status.
    Code(i32),
    /// A signal ended it (Unix).
    Signal(i32),
}

impl From<std::process::ExitStatus> for Exit {
    fn from(s: std::process::ExitStatus) -> Self {
        #[cfg(unix)]
        if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&s) {
            return Exit::Signal(sig);
        }
        // Windows always has a code; on Unix it is either a code or a signal.
        Exit::Code(s.code().unwrap_or(-1))
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::NotStarted => f.write_str("could not start"),
            Exit::Code(c) => write!(f, "exit status: {c}"),
            Exit::Signal(s) => write!(f, "signal: {s}"),
        }
    }
}

/// What a failed VSS step means, read from its HRESULT by
/// `provider::vss::classify`; the run's exit status follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VssKind {
    /// The account may not make shadow copies.
    AccessDenied,
    /// Another set in progress, or a writer or the system too slow for `vss_timeout`.
    Busy,
    /// No VSS here: not implemented, the service disabled, the provider not registered.
    Unavailable,
    /// Too little shadow storage, or too many copies on the volume.
    NoStorage,
    /// VSS (or the chosen provider) cannot shadow this volume.
    VolumeUnsupported,
    /// A shadow copy vanished while it was read.
    Lost,
    /// Any other failure of a VSS step.
    Failed,
}

impl VssKind {
    pub fn status(self) -> u8 {
        match self {
            VssKind::AccessDenied => status::ACCESS_DENIED,
            VssKind::Busy => status::VSS_BUSY,
            VssKind::Unavailable => status::VSS_UNAVAILABLE,
            VssKind::NoStorage => status::VSS_NO_STORAGE,
            VssKind::VolumeUnsupported => status::VSS_VOLUME_UNSUPPORTED,
            VssKind::Lost => status::SNAPSHOT_OVERFLOW,
            VssKind::Failed => status::SNAPSHOT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status rsync 3.x documents in its man page, plus the signal range.
    const RSYNC_CODES: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 30, 35];

    #[test]
    fn own_statuses_never_collide_with_rsync() {
        for &(code, _) in STATUSES {
            assert!(!RSYNC_CODES.contains(&code), "{code} is an rsync status");
            assert!(code < 128, "{code} looks like a signal death");
        }
    }

    /// The table is in order, has no status twice, and holds every status an
    /// error can end with.
    #[test]
    fn statuses_table_is_complete() {
        let codes: Vec<u8> = STATUSES.iter().map(|(c, _)| *c).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "{codes:?}");
        assert_eq!(codes, (status::USAGE..=status::CHECK_FAILED).collect::<Vec<_>>(), "no gaps");
        let vss = |kind| Error::Vss { what: String::new(), hresult: 0, msg: String::new(), kind };
        let errors = [
            Error::Usage(String::new()),
            Error::Snapshot { path: PathBuf::new(), msg: String::new() },
            Error::NotStarted { what: "rsync", path: PathBuf::new(), msg: String::new() },
            Error::Hook { hook: "pre_snapshot", msg: String::new() },
            Error::NoProvider { path: PathBuf::new(), fstype: String::new() },
            Error::Unmatched { arg: String::new(), why: String::new() },
            Error::WritersFailed { volumes: String::new(), msg: String::new() },
            Error::ProtectArgs(crate::protect_args::ProtectArgsError::EmptyBlock),
            Error::Refused(crate::restrict::refusal::Refused::NotForced),
            Error::Expose { path: PathBuf::new(), msg: String::new() },
            Error::Syscall { op: "ioctl", path: PathBuf::new(), source: std::io::Error::other("x") },
            vss(VssKind::AccessDenied),
            vss(VssKind::Busy),
            vss(VssKind::Unavailable),
            vss(VssKind::NoStorage),
            vss(VssKind::VolumeUnsupported),
            vss(VssKind::Lost),
            vss(VssKind::Failed),
            Error::SnapshotOverflow { volume: PathBuf::new(), snapshot: String::new() },
            Error::io("", std::io::Error::other("x")),
        ];
        for e in errors {
            assert!(codes.contains(&e.exit_code()), "{e:?} ends with {}, which is not in STATUSES", e.exit_code());
        }
    }

    /// An OS error while snapshotting is a snapshot failure (81, never 89),
    /// with its cause and fix when a user can cause it.
    #[cfg(unix)]
    #[test]
    fn os_errors_while_snapshotting_say_their_fix() {
        use nix::libc;
        for (errno, says) in [
            (libc::ENOSPC, "free some space"),
            (libc::EDQUOT, "quota"),
            (libc::EACCES, "needs root or CAP_SYS_ADMIN"),
            (libc::EPERM, "needs root or CAP_SYS_ADMIN"),
            (libc::EROFS, "read-only"),
            (libc::EIO, "Input/output error"),
        ] {
            let io = Error::io("/srv/.snaprsync", std::io::Error::from_raw_os_error(errno)).while_snapshotting();
            let sys =
                Error::Syscall { op: "ioctl", path: "/srv".into(), source: std::io::Error::from_raw_os_error(errno) }.while_snapshotting();
            for e in [io, sys] {
                assert_eq!(e.exit_code(), status::SNAPSHOT, "{e}");
                assert!(e.is_snapshot_failure(), "{e}");
                assert!(e.to_string().contains(says), "{e}");
            }
        }
        assert_eq!(Error::Usage("x".into()).while_snapshotting().exit_code(), status::USAGE);
    }

    /// A refusal by vss_writers = "require" is snaprsync's 81, but never a
    /// snapshot failure that on_snapshot_failure = "live" turns into a live backup.
    #[test]
    fn a_refused_writer_is_never_taken_live() {
        let e = Error::WritersFailed { volumes: "C:\\".into(), msg: "SqlServerWriter (failed at freeze, 0x800423f2)".into() };
        assert_eq!(e.exit_code(), status::SNAPSHOT);
        assert!(!e.is_snapshot_failure());
        assert!(e.to_string().contains("SqlServerWriter"));
        assert!(Error::Unmatched { arg: "/x".into(), why: String::new() }.is_snapshot_failure());
    }

    /// The typed errors keep the words of the one stderr line and their statuses.
    #[test]
    fn typed_errors_keep_their_words_and_statuses() {
        use crate::protect_args::ProtectArgsError;
        use crate::restrict::refusal::{Refusal, Refused};
        use crate::rsync_args::ArgError;
        let cases: [(Error, &str, u8); 6] = [
            (
                Refused::NotForced.into(),
                "refused: no SSH_ORIGINAL_COMMAND: --snap-restrict works only as an ssh forced command",
                status::REFUSED,
            ),
            (
                Refused::NoSnapshots.into(),
                "refused: provider = \"none\" in the config: restricted mode reads only from a snapshot; set provider = \"auto\"",
                status::REFUSED,
            ),
            (Refused::RsyncArgs(ArgError::EmptySource).into(), "refused: rsync arguments: empty source argument", status::REFUSED),
            (Refusal::new("-L", "follows symlinks").into(), "refused: -L: follows symlinks", status::REFUSED),
            (
                ProtectArgsError::EmptyArg { index: 2 }.into(),
                "protect-args block on stdin: argument 2 is empty and would end the block early; send \".\" instead, as rsync clients do",
                status::PROTECT_ARGS,
            ),
            (
                Error::Command { cmd: "btrfs subvolume delete /x".into(), status: Exit::Code(1), stderr: "ERROR: boom".into() },
                "btrfs subvolume delete /x failed (exit status: 1): ERROR: boom",
                status::SNAPSHOT,
            ),
        ];
        for (e, line, code) in cases {
            assert_eq!(e.to_string(), line);
            assert_eq!(e.exit_code(), code, "{line}");
        }
        assert!(matches!(Error::from(ProtectArgsError::EmptyBlock), Error::ProtectArgs(ProtectArgsError::EmptyBlock)));
        assert!(matches!(Error::from(Refusal::new("x", "y")), Error::Refused(Refused::Argument(r)) if r.arg() == "x"));
    }
}
