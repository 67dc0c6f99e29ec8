//! The typed configuration: one optional TOML file, read once per run.
//!
//! Every key is optional and described in [`KEYS`], which README
//! "Configuration", snaprsync.toml(5) and the sample config are made from (or,
//! for README, checked against). Any error in the file is one line naming the
//! file, the key, its line, the bad value and what is accepted. With no file at
//! the default location, the defaults apply.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::DeTable;

use crate::error::{Error, Result};

/// What to do when a snapshot cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSnapshotFailure {
    /// Fail the backup with snaprsync's own exit status (the default).
    #[default]
    Fail,
    /// Run rsync on the live files, saying so on stderr and in the log.
    Live,
}

/// A snapshot provider, by its word in the config (`provider = "btrfs"`):
/// the config's vocabulary. Each has its one row of
/// [`crate::provider::PROVIDERS`], in this order (a test there holds them equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderName {
    Btrfs,
    Lvm,
    Zfs,
    Vss,
}

impl ProviderName {
    pub const ALL: [ProviderName; 4] = [ProviderName::Btrfs, ProviderName::Lvm, ProviderName::Zfs, ProviderName::Vss];

    /// Its word in the config, and its name in logs, the journal and `list`.
    pub const fn word(self) -> &'static str {
        match self {
            ProviderName::Btrfs => "btrfs",
            ProviderName::Lvm => "lvm",
            ProviderName::Zfs => "zfs",
            ProviderName::Vss => "vss",
        }
    }

    pub fn of(word: &str) -> Option<ProviderName> {
        ProviderName::ALL.into_iter().find(|n| n.word() == word)
    }
}

/// What the config's `provider` accepts, as its doc says it: `"auto"`,
/// every provider's name (of every system), `"none"`. Made when the program
/// is compiled.
pub const PROVIDER_WORDS: &str = {
    const TEXT: Text = {
        let mut t = Text::new().push("\"auto\"");
        let mut i = 0;
        while i < ProviderName::ALL.len() {
            t = t.push(", \"").push(ProviderName::ALL[i].word()).push("\"");
            i += 1;
        }
        t.push(" or \"none\"")
    };
    TEXT.as_str()
};

/// A short text built at compile time ([`PROVIDER_WORDS`]).
struct Text {
    bytes: [u8; 128],
    len: usize,
}

impl Text {
    const fn new() -> Text {
        Text { bytes: [0; 128], len: 0 }
    }

    const fn push(mut self, s: &str) -> Text {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            self.bytes[self.len] = b[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    const fn as_str(&self) -> &str {
        match std::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(s) => s,
            Err(_) => panic!("not UTF-8"),
        }
    }
}

/// Which snapshot provider to use: one by its name, written as that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(into = "String")]
pub enum ProviderChoice {
    /// From the filesystem type of each source (the default).
    #[default]
    Auto,
    /// The provider of that name.
    Named(ProviderName),
    /// Never snapshot: run rsync on the live files.
    None,
}

/// A `provider` value that names no provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value `{0}`")]
pub struct NotAProvider(String);

impl TryFrom<String> for ProviderChoice {
    type Error = NotAProvider;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "auto" => Ok(ProviderChoice::Auto),
            "none" => Ok(ProviderChoice::None),
            _ => ProviderName::of(&s).map(ProviderChoice::Named).ok_or(NotAProvider(s)),
        }
    }
}

/// Read as an enum of unit variants is (a table or a number is refused as
/// one would be), by hand, so that the words are [`ProviderName`]'s.
impl<'de> Deserialize<'de> for ProviderChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Word;
        impl<'de> serde::de::Visitor<'de> for Word {
            type Value = ProviderChoice;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a provider's name")
            }
            fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<ProviderChoice, A::Error> {
                use serde::de::{Error, VariantAccess};
                let (word, variant): (String, _) = data.variant()?;
                variant.unit_variant()?;
                ProviderChoice::try_from(word).map_err(A::Error::custom)
            }
        }
        d.deserialize_enum("ProviderChoice", &[], Word)
    }
}

impl From<ProviderChoice> for String {
    fn from(c: ProviderChoice) -> String {
        match c {
            ProviderChoice::Auto => "auto".into(),
            ProviderChoice::Named(name) => name.word().into(),
            ProviderChoice::None => "none".into(),
        }
    }
}

/// When the snapshots are removed after rsync ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Removal {
    /// By a detached process, so the backup server gets rsync's status at once
    /// (removing a snapshot that was just read can take a few hundred ms).
    #[default]
    Background,
    /// Before snaprsync exits, reporting a failure on stderr.
    Wait,
}

/// How a Windows shadow copy is shown to rsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expose {
    /// A free drive letter mapped with DefineDosDevice (what tb-rsync-vss did).
    #[default]
    DriveLetter,
    /// The shadow copy's device path; no letter needed.
    DevicePath,
}

/// Whether a run's LVM snapshots are made with every origin frozen (config `lvm_freeze`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LvmFreeze {
    /// One instant across the volumes (the default).
    #[default]
    All,
    /// Each volume's snapshot is its own instant.
    None,
}

/// What a hook that fails or outlasts `hook_timeout` means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookFailure {
    /// The run fails with status 94, leaving nothing behind (the default).
    #[default]
    Fail,
    /// A warning on stderr and in the log; the run goes on.
    Warn,
}

/// Windows: what a VSS writer that failed while the shadow copy was made means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VssWriters {
    /// A warning naming the writer; the backup goes on (its data is then
    /// crash-consistent only). The default.
    #[default]
    Warn,
    /// The run fails with 81, leaving nothing.
    Require,
}

/// Windows: what a volume mounted in a folder below a source means. Inside a
/// shadow copy that folder still leads to the live volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VssMountPoints {
    /// The run fails with 83 before any shadow copy is made, naming the
    /// folder (with `on_snapshot_failure = "live"`: a live run, with a warning).
    #[default]
    Refuse,
    /// A warning naming the folder, which rsync then reads LIVE; the run goes on.
    Ignore,
}

/// Whether the snapshot's metadata is prefetched while rsync walks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefetch {
    /// Where the snapshot is a directory snaprsync sees (btrfs, VSS). The default.
    #[default]
    Auto,
    Off,
}

/// How big a thick snapshot is made (config `lvm_snapshot_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotSize {
    /// A percentage of the origin's size, 1–100.
    Percent(u8),
    /// Bytes.
    Bytes(u64),
}

impl SnapshotSize {
    /// Reads `10%`, `512M`, `2G`, `1T`, or plain bytes.
    pub fn parse(text: &str) -> std::result::Result<SnapshotSize, String> {
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            return match p.trim().parse::<u8>() {
                Ok(n @ 1..=100) => Ok(SnapshotSize::Percent(n)),
                _ => Err(format!("{text:?}: a percentage is 1% to 100%")),
            };
        }
        let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
            Some((i, _)) => {
                let mult = match t[i..].to_ascii_uppercase().trim_end_matches(['B', 'I']) {
                    "K" => 1u64 << 10,
                    "M" => 1 << 20,
                    "G" => 1 << 30,
                    "T" => 1 << 40,
                    _ => return Err(format!("{text:?}: write a percentage (10%) or a size (512M, 2G)")),
                };
                (&t[..i], mult)
            }
            None => (t, 1),
        };
        match num.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
            Some(b) if b >= 1 << 20 => Ok(SnapshotSize::Bytes(b)),
            _ => Err(format!("{text:?}: write a percentage (10%) or a size of at least 1M (512M, 2G)")),
        }
    }

    /// The snapshot's size in bytes for an origin of `origin` bytes, in whole
    /// MiB (lvcreate takes only multiples of 512 bytes, and rounds to extents).
    pub fn bytes_for(self, origin: u64) -> u64 {
        let b = match self {
            SnapshotSize::Percent(p) => (origin / 100).saturating_mul(u64::from(p)),
            SnapshotSize::Bytes(b) => b,
        };
        b.div_ceil(1 << 20).max(1).saturating_mul(1 << 20)
    }
}

/// Log verbosity for the log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
}

/// A log level that is none of `error`, `warn`, `info`, `debug`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a level; write error, warn, info or debug")]
pub struct NotALogLevel;

/// The spellings the config file takes (`--snap-log-level` reads the same).
impl std::str::FromStr for LogLevel {
    type Err = NotALogLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            _ => Err(NotALogLevel),
        }
    }
}

impl LogLevel {
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

/// Where log records at `log_level` go (config `log`). Warnings and errors
/// go to stderr as well, whatever this says.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LogTarget {
    /// The journal if it runs here, else syslog, else `/var/log/snaprsync.log`;
    /// on Windows, the Application event log.
    #[default]
    Auto,
    /// systemd's journal, through its native socket.
    Journald,
    /// The local syslog socket.
    Syslog,
    /// Windows' Application event log, under source `snaprsync`.
    EventLog,
    /// stderr, which the backup server shows or logs.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

/// A `log` value that is none of the words and not an absolute path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not \"auto\", \"journald\", \"syslog\", \"eventlog\", \"stderr\" or an absolute file path")]
pub struct NotALogTarget;

impl TryFrom<String> for LogTarget {
    type Error = NotALogTarget;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ok(match s.as_str() {
            "auto" => LogTarget::Auto,
            "journald" => LogTarget::Journald,
            "syslog" => LogTarget::Syslog,
            "eventlog" => LogTarget::EventLog,
            "stderr" => LogTarget::Stderr,
            _ if Path::new(&s).is_absolute() => LogTarget::File(s.into()),
            _ => return Err(NotALogTarget),
        })
    }
}

impl From<LogTarget> for String {
    fn from(t: LogTarget) -> String {
        match t {
            LogTarget::Auto => "auto".into(),
            LogTarget::Journald => "journald".into(),
            LogTarget::Syslog => "syslog".into(),
            LogTarget::EventLog => "eventlog".into(),
            LogTarget::Stderr => "stderr".into(),
            LogTarget::File(p) => p.display().to_string(),
        }
    }
}

/// The whole configuration. [`KEYS`] says what each key means; keep it in step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The real rsync. Default: the first `rsync` on PATH that is not snaprsync.
    pub rsync_path: Option<PathBuf>,
    /// `fail` (default) or `live`.
    pub on_snapshot_failure: OnSnapshotFailure,
    /// `auto` (default), `btrfs`, `lvm`, `zfs`, `vss` or `none`.
    pub provider: ProviderChoice,
    /// Where log records go: `auto` (default), `journald`, `syslog`, `stderr` or a file.
    pub log: LogTarget,
    /// A file that gets the log records as well. Default: none.
    pub log_file: Option<PathBuf>,
    /// Level for `log` and `log_file`: `error`, `warn`, `info` (default) or `debug`.
    pub log_level: LogLevel,
    /// btrfs: directory (a subvolume) at the root of each mounted btrfs
    /// filesystem that holds snaprsync's snapshots. Default `.snaprsync`.
    pub btrfs_snapshot_dir: String,
    /// btrfs: names of directories below a source whose nested subvolumes
    /// are neither walked nor shown (`".snapshots"`). Default: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub btrfs_skip_nested: Vec<String>,
    /// `background` (default) or `wait`: when btrfs snapshots are removed.
    pub snapshot_removal: Removal,
    /// `auto` (default) or `off`: threads that look at every inode of the
    /// snapshot while rsync walks it, so that rsync finds them built.
    pub prefetch: Prefetch,
    /// How many prefetch threads; 0 (the default) is one per core and one more.
    pub prefetch_threads: u32,
    /// Where run records live (crash recovery). Default `/var/lib/snaprsync`
    /// (Windows: `%ProgramData%\snaprsync\state`).
    pub state_dir: Option<PathBuf>,
    /// How many run records `state_dir`'s history keeps (the last ones). Default 1000.
    pub history_size: u32,
    /// A Prometheus textfile rewritten after each run. Default: none.
    pub metrics_file: Option<PathBuf>,
    /// Windows: `drive-letter` (default) or `device-path`.
    pub expose: Expose,
    /// Windows: letters `expose = "drive-letter"` may use, tried in order. Default `"RSTUVWXYZ"`.
    pub drive_letters: String,
    /// Windows: seconds to wait for each VSS step, including retries while
    /// another snapshot set is in progress. Default 600.
    pub vss_timeout: u64,
    /// Windows: `warn` (default) or `require`: what a VSS writer that failed
    /// while the shadow copy was made means.
    pub vss_writers: VssWriters,
    /// Windows: the VSS provider: `any` (default: VSS picks, a hardware
    /// provider first), `system` (Microsoft's software provider) or a GUID.
    pub vss_provider: String,
    /// Windows: `refuse` (default) or `ignore`: a volume mounted in a folder
    /// below a source.
    pub vss_mount_points: VssMountPoints,
    /// Windows: volumes never shadowed (`"D:"`, a mount folder, or a
    /// `\\?\Volume{...}\` name); their sources are read live, with a warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vss_exclude_volumes: Vec<String>,
    /// LVM: the size of a thick snapshot, a percentage of the origin (`"10%"`,
    /// the default) or a size (`"2G"`).
    pub lvm_snapshot_size: String,
    /// LVM: the most a thin pool's data or metadata may be used, in percent,
    /// before a thin snapshot is refused. Default 90.
    pub lvm_thin_pool_max_percent: u8,
    /// LVM: `all` (default) freezes every origin's filesystem while a run's
    /// snapshots are made, so that they are one instant; `none` does not.
    pub lvm_freeze: LvmFreeze,
    /// LVM: the most seconds the filesystems may stay frozen. Default 10.
    pub lvm_freeze_timeout: u64,
    /// A program and its arguments, run (without a shell) just before the
    /// snapshot set is created. Default: none.
    pub pre_snapshot: Option<Vec<String>>,
    /// A program and its arguments, run just after the snapshot set is
    /// created, or failed to be; always once `pre_snapshot` has started.
    pub post_snapshot: Option<Vec<String>>,
    /// Seconds each hook may run before its process group is ended. Default 60.
    pub hook_timeout: u64,
    /// `fail` (default) or `warn`: what a failed or timed-out hook means.
    pub hook_failure: HookFailure,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rsync_path: None,
            on_snapshot_failure: OnSnapshotFailure::Fail,
            provider: ProviderChoice::Auto,
            log: LogTarget::Auto,
            log_file: None,
            log_level: LogLevel::Info,
            btrfs_snapshot_dir: ".snaprsync".into(),
            btrfs_skip_nested: Vec::new(),
            state_dir: Some(crate::host::default_state_dir()),
            history_size: 1000,
            metrics_file: None,
            snapshot_removal: Removal::Background,
            prefetch: Prefetch::Auto,
            prefetch_threads: 0,
            expose: Expose::DriveLetter,
            drive_letters: "RSTUVWXYZ".into(),
            lvm_snapshot_size: "10%".into(),
            lvm_thin_pool_max_percent: 90,
            lvm_freeze: LvmFreeze::All,
            lvm_freeze_timeout: 10,
            vss_timeout: 600,
            vss_writers: VssWriters::Warn,
            vss_provider: "any".into(),
            vss_mount_points: VssMountPoints::Refuse,
            vss_exclude_volumes: Vec::new(),
            pre_snapshot: None,
            post_snapshot: None,
            hook_timeout: 60,
            hook_failure: HookFailure::Fail,
        }
    }
}

/// Which systems a key applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Any,
    Windows,
}

/// One config key: what it accepts (for error messages) and what it means
/// (for the man page, the sample config and README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub accepts: &'static str,
    pub about: &'static str,
    /// The default of a key that is unset by default, in words.
    pub unset: &'static str,
    /// A value to show in examples (for a key with no default value).
    pub example: &'static str,
    pub os: Os,
}

const fn key(name: &'static str, accepts: &'static str, about: &'static str) -> Key {
    Key { name, accepts, about, unset: "", example: "", os: Os::Any }
}

/// Every key, in `Config`'s order. Tests keep it in step with `Config` and its enums.
pub const KEYS: &[Key] = &[
    Key {
        unset: "the first `rsync` on PATH that is not snaprsync",
        example: "\"/usr/bin/rsync\"",
        ..key("rsync_path", "the path of the real rsync, as a quoted string", "the real rsync")
    },
    key(
        "on_snapshot_failure",
        r#""fail" or "live""#,
        "`\"live\"`: back up the live files when no snapshot can be made, saying so on stderr and in the log; \
         `\"fail\"`: fail the backup with snaprsync's own status",
    ),
    key(
        "provider",
        PROVIDER_WORDS,
        "`\"auto\"` picks it from the filesystem of each source (btrfs, ZFS, or LVM for a logical volume; VSS on Windows); \
         `\"none\"` never snapshots",
    ),
    key(
        "log",
        r#""auto", "journald", "syslog", "eventlog", "stderr", or an absolute file path as a quoted string"#,
        "where log records at `log_level` go: the journal (`journalctl -t snaprsync`), syslog (`/dev/log`), Windows' Application event log (source `snaprsync`), stderr, or a file; \
         `\"auto\"` is the journal if it runs here, else syslog, else `/var/log/snaprsync.log` (rotated by the package), and on Windows the event log; warnings and errors go to stderr as well, always",
    ),
    Key {
        unset: "none",
        example: "\"/var/log/snaprsync.log\"",
        ..key("log_file", "a file path, as a quoted string", "a file that gets the log records as well (`--snap-log-file` overrides it)")
    },
    key(
        "log_level",
        r#""error", "warn", "info" or "debug""#,
        "the least level logged to `log` and `log_file`; `\"info\"` is one summary line per run",
    ),
    key(
        "btrfs_snapshot_dir",
        r#"one plain directory name as a quoted string, without "/" and not "." or "..", such as ".snaprsync""#,
        "btrfs: the subvolume at the root of each mounted btrfs filesystem that holds snaprsync's snapshots",
    ),
    Key {
        unset: "none",
        example: r#"[".snapshots"]"#,
        ..key(
            "btrfs_skip_nested",
            r#"an array of plain directory names, each without "/", such as [".snapshots"]"#,
            "btrfs: below a source, a subvolume or directory of one of these names is where nested subvolumes are \
             neither snapshotted nor shown: the backup sees them as empty directories, as in a plain btrfs snapshot. \
             For other tools' snapshots the backup leaves out (Snapper's `.snapshots`), which a run otherwise shows, \
             one bind mount each",
        )
    },
    key(
        "snapshot_removal",
        r#""background" or "wait""#,
        "`\"background\"`: after rsync ends, a detached `snaprsync __remove-run` removes the snapshots, so the backup server \
         gets rsync's status at once; `\"wait\"`: remove them before exiting and report a failure on stderr",
    ),
    key(
        "prefetch",
        r#""auto" or "off""#,
        "`\"auto\"`: while rsync walks a fresh snapshot, low-priority threads look at each of its inodes first (in rsync's \
         order, a few at once, ahead of it), so that rsync finds them built; used where the snapshot is a \
         directory snaprsync sees (btrfs, VSS), stopped when rsync ends",
    ),
    key(
        "prefetch_threads",
        "a whole number, 0 to 64",
        "how many prefetch threads; 0 is one per core and one more (they run at the lowest priority)",
    ),
    key("state_dir", "a directory path, as a quoted string", "where runs are recorded before they snapshot, for crash recovery"),
    key(
        "history_size",
        "a whole number from 1 to 100000, such as 1000",
        "how many records of finished runs `state_dir`'s history keeps, the last ones (`snaprsync history`, `snaprsync check`)",
    ),
    Key {
        unset: "none",
        example: if cfg!(windows) {
            r#""C:\\ProgramData\\snaprsync\\snaprsync.prom""#
        } else {
            "\"/var/lib/prometheus/node-exporter/snaprsync.prom\""
        },
        ..key(
            "metrics_file",
            "an absolute file path, as a quoted string",
            "a Prometheus textfile (for node_exporter's textfile collector) rewritten after each run: per source the last \
             run's and the last consistent run's times, durations and statuses, and the leftovers",
        )
    },
    Key {
        os: Os::Windows,
        ..key(
            "expose",
            r#""drive-letter" or "device-path""#,
            "Windows: how rsync is shown the shadow copy: a free drive letter, or its device path",
        )
    },
    Key {
        os: Os::Windows,
        ..key(
            "drive_letters",
            r#"upper-case letters A-Z as a quoted string, such as "RSTUVWXYZ""#,
            "Windows: the letters `expose = \"drive-letter\"` may use, tried in order",
        )
    },
    Key {
        os: Os::Windows,
        ..key(
            "vss_timeout",
            "a whole number of seconds, at least 1, such as 600",
            "Windows: seconds to wait for each VSS step, including retries while another snapshot set is in progress",
        )
    },
    Key {
        os: Os::Windows,
        ..key(
            "vss_writers",
            r#""warn" or "require""#,
            "Windows: what a VSS writer that failed while the shadow copy was made means (its application's files are then only \
             crash-consistent): `\"warn\"` names it on stderr and in the log and goes on; `\"require\"` fails the run with 81",
        )
    },
    Key {
        os: Os::Windows,
        ..key(
            "vss_provider",
            r#""any", "system", or a provider GUID such as "{b5946137-7b9f-4925-af80-51abd60b20d5}""#,
            "Windows: the VSS provider that makes the shadow copies: `\"any\"` lets VSS choose (a hardware provider first); \
             `\"system\"` is Microsoft's software provider; a GUID names one (`vssadmin list providers`)",
        )
    },
    Key {
        os: Os::Windows,
        ..key(
            "vss_mount_points",
            r#""refuse" or "ignore""#,
            "Windows: a volume mounted in a folder below a source, which inside a shadow copy still leads to the live volume: \
             `\"refuse\"` fails the run with 83 before any shadow copy is made, naming the folder; `\"ignore\"` names it in a \
             warning and lets rsync read it live",
        )
    },
    Key {
        os: Os::Windows,
        unset: "none",
        example: r#"["D:", "C:\\Mount\\Scratch"]"#,
        ..key(
            "vss_exclude_volumes",
            r#"an array of volumes, each a drive such as "D:", a mount folder, or a name such as "\\?\Volume{...}\""#,
            "Windows: volumes never shadowed (a volume VSS cannot or should not shadow); sources on them are read live, \
             each named in a warning",
        )
    },
    key(
        "lvm_snapshot_size",
        r#"a percentage of the origin such as "10%", or a size of at least 1M such as "2G""#,
        "LVM: the size of a thick snapshot; the volume group's free space is checked first",
    ),
    key(
        "lvm_thin_pool_max_percent",
        "a whole number from 1 to 99, such as 90",
        "LVM: the most a thin pool's data or metadata may be used, in percent, before a thin snapshot is refused",
    ),
    key(
        "lvm_freeze",
        r#""all" or "none""#,
        "LVM: `\"all\"` freezes the filesystem of every volume a run snapshots until all its snapshots are made, so that \
         they are one instant; `\"none\"`: each snapshot is its own instant",
    ),
    key(
        "lvm_freeze_timeout",
        "a whole number of seconds, at least 1, such as 10",
        "LVM: the most seconds the filesystems stay frozen; past it they are thawed and the run fails with 81, naming the slow step",
    ),
    Key {
        unset: "none",
        example: r#"["/usr/local/bin/flush-app", "--lock"]"#,
        ..key("pre_snapshot", HOOK_ACCEPTED, "a command run just before the snapshot set is made: the program and its arguments, no shell")
    },
    Key {
        unset: "none",
        example: r#"["/usr/local/bin/unlock-app"]"#,
        ..key(
            "post_snapshot",
            HOOK_ACCEPTED,
            "a command run just after, whether the set was made or not; always once `pre_snapshot` has started",
        )
    },
    key(
        "hook_timeout",
        "a whole number of seconds, at least 1, such as 60",
        "seconds each hook may run before it is ended with every process it started",
    ),
    key(
        "hook_failure",
        r#""fail" or "warn""#,
        "`\"fail\"`: a failed or timed-out hook fails the run with 94, leaving nothing; `\"warn\"`: log it and go on",
    ),
];

/// Pure: a GUID as `{8-4-4-4-12}` hex digits (braces optional), as a number
/// whose hex digits read in the same order.
pub fn parse_guid(s: &str) -> Option<u128> {
    let s = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')).unwrap_or(s);
    let groups: Vec<&str> = s.split('-').collect();
    let shape = groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12];
    (shape && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit())))
        .then(|| u128::from_str_radix(&groups.concat(), 16).ok())
        .flatten()
}

/// What `pre_snapshot` and `post_snapshot` accept.
const HOOK_ACCEPTED: &str = r#"an array of strings, the program and its arguments, run without a shell, such as ["/usr/bin/sqlite3", "/srv/app.db", "PRAGMA wal_checkpoint(TRUNCATE)"] (for a shell: ["/bin/sh", "-c", "..."])"#;

/// A key's default as written in the file (`"fail"`, `600`), or in words for
/// a key that is unset by default. From `Config::default()` itself.
pub fn default_text(key: &Key) -> String {
    let value = toml::Value::try_from(Config::default()).ok();
    match value.as_ref().and_then(|v| v.get(key.name)) {
        Some(v) => v.to_string(),
        None => key.unset.to_owned(),
    }
}

impl Config {
    /// The config named by snaprsync's own options (or the default one), with
    /// their overrides applied.
    pub fn for_options(opts: &crate::cli::Options) -> Result<Config> {
        let mut cfg = match &opts.config {
            Some(p) => Config::load(p, true)?,
            None => Config::load(&crate::host::default_config_path(), false)?,
        };
        if let Some(f) = &opts.log_file {
            cfg.log_file = Some(f.clone());
        }
        if let Some(l) = &opts.log_level {
            cfg.log_level = l.parse().map_err(|e| Error::Usage(format!("--snap-log-level={l}: {e}")))?;
        }
        Ok(cfg)
    }

    /// `vss_provider`, read: `None` for any provider, else the provider's id.
    pub fn vss_provider_id(&self) -> std::result::Result<Option<u128>, String> {
        match self.vss_provider.as_str() {
            "any" => Ok(None),
            // Microsoft Software Shadow Copy provider 1.0.
            "system" => Ok(Some(0xb5946137_7b9f_4925_af80_51abd60b20d5)),
            s => parse_guid(s).map(Some).ok_or_else(|| format!("{s:?} is not a GUID")),
        }
    }

    /// `lvm_snapshot_size`, read.
    pub fn lvm_snapshot_size(&self) -> std::result::Result<SnapshotSize, String> {
        SnapshotSize::parse(&self.lvm_snapshot_size)
    }

    /// Parses config text; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let bad = |msg: String| Error::Config { path: path.to_owned(), msg };
        // The spanned table outlives deserialization so that any error can be
        // traced back to its key and line.
        let (table, syntax) = DeTable::parse_recoverable(text);
        if let Some(e) = syntax.first() {
            return Err(bad(syntax_error(text, table.get_ref(), e)));
        }
        let cfg =
            Config::deserialize(toml::de::Deserializer::from(table.clone())).map_err(|e| bad(value_error(text, table.get_ref(), &e)))?;
        if let Some((key, problem)) = cfg.validate() {
            return Err(bad(validate_error(text, table.get_ref(), key, problem)));
        }
        Ok(cfg)
    }

    /// Reads the config. A missing file is fine only where the user named none.
    pub fn load(path: &Path, explicit: bool) -> Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Config::default()),
            Err(e) => Err(Error::Config { path: path.to_owned(), msg: e.to_string() }),
        }
    }

    /// Semantic checks serde cannot make: the offending key and what is wrong.
    fn validate(&self) -> Option<(&'static str, &'static str)> {
        let dir = &self.btrfs_snapshot_dir;
        if dir.is_empty() || dir.contains('/') || dir == "." || dir == ".." {
            return Some(("btrfs_snapshot_dir", "not one plain directory name"));
        }
        if self.btrfs_skip_nested.iter().any(|n| n.is_empty() || n.contains('/') || n == "." || n == "..") {
            return Some(("btrfs_skip_nested", "has a name that is not one plain directory name"));
        }
        if self.drive_letters.is_empty() || !self.drive_letters.chars().all(|c| c.is_ascii_uppercase()) {
            return Some(("drive_letters", "not only upper-case letters A-Z"));
        }
        if self.prefetch_threads > 64 {
            return Some(("prefetch_threads", "more than 64"));
        }
        if self.vss_timeout == 0 {
            return Some(("vss_timeout", "must be at least 1"));
        }
        if self.vss_provider_id().is_err() {
            return Some(("vss_provider", "not \"any\", \"system\" or a GUID"));
        }
        if self.vss_exclude_volumes.iter().any(|v| v.trim().is_empty()) {
            return Some(("vss_exclude_volumes", "has an empty volume"));
        }
        if self.lvm_snapshot_size().is_err() {
            return Some(("lvm_snapshot_size", "not a percentage or a size"));
        }
        if !(1..=99).contains(&self.lvm_thin_pool_max_percent) {
            return Some(("lvm_thin_pool_max_percent", "out of range"));
        }
        for (key, hook) in [("pre_snapshot", &self.pre_snapshot), ("post_snapshot", &self.post_snapshot)] {
            if hook.as_ref().is_some_and(|argv| argv.first().is_none_or(String::is_empty)) {
                return Some((key, "names no program"));
            }
        }
        if self.lvm_freeze_timeout == 0 {
            return Some(("lvm_freeze_timeout", "must be at least 1"));
        }
        if self.hook_timeout == 0 {
            return Some(("hook_timeout", "must be at least 1"));
        }
        if !(1..=100_000).contains(&self.history_size) {
            return Some(("history_size", "out of range"));
        }
        if self.metrics_file.as_ref().is_some_and(|p| !p.is_absolute() || p.file_name().is_none()) {
            return Some(("metrics_file", "not an absolute file path"));
        }
        None
    }
}

/// Where a key sits in the file: its dotted path and the spans of its name and value.
struct Spot {
    path: Vec<String>,
    key: Range<usize>,
    value: Range<usize>,
}

impl Spot {
    fn dotted(&self) -> String {
        let bare = |k: &str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let parts: Vec<String> = self.path.iter().map(|k| if bare(k) { k.clone() } else { format!("{k:?}") }).collect();
        parts.join(".")
    }

    /// `key = value` with the value as written in the file.
    fn written(&self, text: &str) -> String {
        format!("{} = {}", self.dotted(), one_line(text.get(self.value.clone()).unwrap_or("")))
    }

    /// What the key accepts; a table where a top-level key belongs gets that key's values.
    fn accepted(&self) -> String {
        let top = self.path.first().map(String::as_str).unwrap_or("");
        match KEYS.iter().find(|k| k.name == top) {
            Some(k) if self.path.len() == 1 => k.accepts.to_owned(),
            Some(k) => format!("{top} = {}, not a table", k.accepts),
            None => accepted_keys(),
        }
    }
}

/// The deepest key whose name or value covers byte `at`. A `[table]` value
/// spans only its header, so every table is searched.
fn locate(table: &DeTable<'_>, at: usize) -> Option<Spot> {
    for (k, v) in table.iter() {
        if let Some(inner) = v.get_ref().as_table() {
            if let Some(mut spot) = locate(inner, at) {
                spot.path.insert(0, k.get_ref().to_string());
                return Some(spot);
            }
        }
        if k.span().contains(&at) || v.span().contains(&at) {
            return Some(Spot { path: vec![k.get_ref().to_string()], key: k.span(), value: v.span() });
        }
    }
    None
}

fn accepted_keys() -> String {
    let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    format!("the keys {}, each as key = value at the top level (there are no [tables])", names.join(", "))
}

/// 1-based line of byte `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The whole line holding byte `at`, as written.
fn line_text(text: &str, at: usize) -> &str {
    let bytes = text.as_bytes();
    let at = at.min(bytes.len());
    let start = bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let end = bytes[at..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| at + i);
    &text[start..end]
}

/// Text from the file made fit for a one-line message: trimmed, control
/// characters escaped (a newline as `\n`), long text cut.
fn one_line(s: &str) -> String {
    const MAX: usize = 80;
    crate::text::shown(s.trim().as_bytes(), MAX)
}

/// A toml error message on one line.
fn flat(msg: &str) -> String {
    msg.trim().replace('\n', " ")
}

/// The file is not valid TOML. The partly parsed table usually holds the key;
/// if not (a line with no `=`, a repeated key), the key comes from the line itself.
fn syntax_error(text: &str, table: &DeTable<'_>, e: &toml::de::Error) -> String {
    let at = e.span().map_or(0, |s| s.start);
    let line = line_of(text, at);
    if let Some(spot) = locate(table, at) {
        return format!("line {line}: {}: {}; accepted: {}", spot.written(text), flat(e.message()), spot.accepted());
    }
    let here = line_text(text, at).trim();
    let name = if here.starts_with('[') {
        here.trim_matches(|c| c == '[' || c == ']').trim().to_owned()
    } else {
        let name = match here.split_once('=') {
            Some((name, _)) => name.trim(),
            None => here.split_whitespace().next().unwrap_or(""),
        };
        match section_before(text, at) {
            Some(table) => format!("{table}.{name}"),
            None => name.to_owned(),
        }
    };
    let accepted = match KEYS.iter().find(|k| k.name == name) {
        Some(k) => k.accepts.to_owned(),
        None => accepted_keys(),
    };
    format!("line {line}: {}: {} (key {name}); accepted: {accepted}", one_line(here), flat(e.message()))
}

/// The `[table]` header above byte `at`, if any (a plain scan: only for lines toml could not parse).
fn section_before(text: &str, at: usize) -> Option<String> {
    let above = &text[..text.as_bytes()[..at.min(text.len())].iter().rposition(|&b| b == b'\n')?];
    above.lines().rev().map(str::trim).find(|l| l.starts_with('[')).map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
}

/// Valid TOML that does not fit `Config`: an unknown key, a wrong type or value.
fn value_error(text: &str, table: &DeTable<'_>, e: &toml::de::Error) -> String {
    let msg = flat(e.message());
    let Some(at) = e.span().map(|s| s.start) else { return format!("{msg}; accepted: {}", accepted_keys()) };
    let line = line_of(text, at);
    let Some(spot) = locate(table, at) else { return format!("line {line}: {msg}; accepted: {}", accepted_keys()) };
    if msg.starts_with("unknown field") {
        return format!("line {line}: {}: unknown key {}; accepted: {}", one_line(line_text(text, at)), spot.dotted(), accepted_keys());
    }
    // serde's "expected ..." names Rust types; the accepted values replace it.
    let problem = msg.split(", expected").next().unwrap_or(&msg).replace("unknown variant", "unknown value");
    let problem = if problem.starts_with("wanted") { format!("invalid type: {}", value_type(table, &spot)) } else { problem };
    format!("line {line}: {}: {problem}; accepted: {}", spot.written(text), spot.accepted())
}

/// The TOML type of the value at `spot`, such as "integer".
fn value_type(table: &DeTable<'_>, spot: &Spot) -> &'static str {
    let mut here = table;
    for (i, name) in spot.path.iter().enumerate() {
        let Some((_, v)) = here.iter().find(|(k, _)| k.get_ref() == name) else { break };
        match v.get_ref().as_table() {
            Some(inner) if i + 1 < spot.path.len() => here = inner,
            _ => return v.get_ref().type_str(),
        }
    }
    "value"
}

/// A value that parsed but `validate` refused; it came from the file, so its key is there.
fn validate_error(text: &str, table: &DeTable<'_>, key: &str, problem: &str) -> String {
    let accepted = KEYS.iter().find(|k| k.name == key).map_or("", |k| k.accepts);
    match table.iter().find(|(k, _)| k.get_ref() == key) {
        Some((k, v)) => {
            let spot = Spot { path: vec![key.to_owned()], key: k.span(), value: v.span() };
            format!("line {}: {}: {problem}; accepted: {accepted}", line_of(text, spot.key.start), spot.written(text))
        }
        None => format!("{key}: {problem}; accepted: {accepted}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(SnapshotSize::parse("10%"), Ok(SnapshotSize::Percent(10)));
        assert_eq!(SnapshotSize::parse("512M"), Ok(SnapshotSize::Bytes(512 << 20)));
        assert_eq!(SnapshotSize::parse("2G"), Ok(SnapshotSize::Bytes(2 << 30)));
        assert_eq!(SnapshotSize::parse("2GiB"), Ok(SnapshotSize::Bytes(2 << 30)));
        assert_eq!(SnapshotSize::parse("1t"), Ok(SnapshotSize::Bytes(1 << 40)));
        for bad in ["0%", "101%", "x", "10K", "-5G", "", "5Q"] {
            assert!(SnapshotSize::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SnapshotSize::Percent(10).bytes_for((10 << 30) + 7), 1 << 30, "rounded up to whole MiB");
        assert_eq!(SnapshotSize::Percent(25).bytes_for(64 << 20), 16 << 20);
        assert_eq!(SnapshotSize::Bytes((2 << 20) + 1).bytes_for(0), 3 << 20);
        assert_eq!(SnapshotSize::Percent(1).bytes_for(1 << 20), 1 << 20, "at least 1 MiB");
    }

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/etc/snaprsync/config.toml"))
    }

    #[test]
    fn log_level_from_str_reads_what_the_file_takes() {
        for word in ["error", "warn", "info", "debug", "Info", "DEBUG", "trace", "warning", "", " info", "info\n"] {
            let file = parse(&format!("log_level = {word:?}")).ok().map(|c| c.log_level);
            assert_eq!(word.parse::<LogLevel>().ok(), file, "{word:?}");
        }
        assert_eq!("trace".parse::<LogLevel>(), Err(NotALogLevel));
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn every_key_parses() {
        let cfg = parse(
            r#"
            rsync_path = "/usr/bin/rsync"
            on_snapshot_failure = "live"
            provider = "btrfs"
            log_file = "/var/log/snaprsync.log"
            log_level = "debug"
            btrfs_snapshot_dir = ".snaps"
            state_dir = "/run/snaprsync"
            snapshot_removal = "wait"
            expose = "device-path"
            drive_letters = "QR"
            vss_timeout = 30
            pre_snapshot = ["/usr/bin/sqlite3", "/srv/app.db", "PRAGMA wal_checkpoint(TRUNCATE)"]
            post_snapshot = ["/bin/sh", "-c", "echo done"]
            hook_timeout = 5
            hook_failure = "warn"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.rsync_path.as_deref(), Some(Path::new("/usr/bin/rsync")));
        assert_eq!(cfg.on_snapshot_failure, OnSnapshotFailure::Live);
        assert_eq!(cfg.provider, ProviderChoice::Named(ProviderName::Btrfs));
        assert_eq!(cfg.log_level, LogLevel::Debug);
        assert_eq!(cfg.btrfs_snapshot_dir, ".snaps");
        assert_eq!(cfg.snapshot_removal, Removal::Wait);
        assert_eq!(cfg.expose, Expose::DevicePath);
        assert_eq!(cfg.drive_letters, "QR");
        assert_eq!(cfg.vss_timeout, 30);
        assert_eq!(cfg.pre_snapshot.as_deref().map(<[String]>::len), Some(3));
        assert_eq!(cfg.post_snapshot, Some(vec!["/bin/sh".into(), "-c".into(), "echo done".into()]));
        assert_eq!((cfg.hook_timeout, cfg.hook_failure), (5, HookFailure::Warn));
    }

    #[test]
    fn hook_errors_name_key_line_value_and_accepted() {
        // A string is not run through a shell: it is refused, with the array form shown.
        assert_names("\npre_snapshot = \"sqlite3 db\"", "pre_snapshot", 2, "\"sqlite3 db\"", "an array of strings");
        assert_names("post_snapshot = []", "post_snapshot", 1, "[]", "names no program");
        assert_names("post_snapshot = [\"\", \"x\"]", "post_snapshot", 1, "[\"\", \"x\"]", "run without a shell");
        assert_names("pre_snapshot = [1]", "pre_snapshot", 1, "[1]", "an array of strings");
        assert_names("hook_timeout = 0", "hook_timeout", 1, "= 0", "at least 1");
        assert_names("hook_failure = \"ignore\"", "hook_failure", 1, "\"ignore\"", r#""fail" or "warn""#);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse("rsync_pth = \"/x\"").unwrap_err().to_string();
        assert!(e.contains("rsync_pth"), "{e}");
        assert!(e.contains("/etc/snaprsync/config.toml"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = parse("on_snapshot_failure = \"maybe\"").unwrap_err().to_string();
        assert!(e.contains("maybe"), "{e}");
        for bad in ["btrfs_snapshot_dir = \"a/b\"", "drive_letters = \"r\"", "vss_timeout = 0", "log_level = 3"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    const FILE: &str = "/etc/snaprsync/config.toml";

    /// Asserts the one-line message names the file, key, line, bad value and what is accepted.
    fn assert_names(text: &str, key: &str, line: usize, value: &str, accepted: &str) {
        let e = parse(text).unwrap_err().to_string();
        for part in [FILE, key, &format!("line {line}:"), value, accepted] {
            assert!(e.contains(part), "{part:?} missing from: {e}");
        }
        assert!(!e.contains('\n'), "more than one line: {e}");
        assert!(e.ends_with("; fix the file or point --snap-config at another one"), "{e}");
    }

    // The config is flat: every key is top-level and there are no tables, so
    // these cover all of it; a table in the file is itself an unknown key.

    #[test]
    fn wrong_type_names_key_line_value_and_accepted() {
        assert_names("provider = \"auto\"\nvss_timeout = \"ten\"\n", "vss_timeout", 2, "\"ten\"", "a whole number of seconds");
        assert_names("# c\n\non_snapshot_failure = 3", "on_snapshot_failure", 3, "= 3", r#""fail" or "live""#);
        assert_names("log_file = true", "log_file", 1, "true", "a file path");
    }

    #[test]
    fn wrong_value_names_key_line_value_and_accepted() {
        assert_names(
            "provider = \"auto\"\non_snapshot_failure = \"sometimes\"",
            "on_snapshot_failure",
            2,
            "\"sometimes\"",
            r#""fail" or "live""#,
        );
        assert_names("\nexpose = \"letter\"", "expose", 2, "\"letter\"", r#""drive-letter" or "device-path""#);
        assert_names("vss_timeout = -5", "vss_timeout", 1, "-5", "at least 1");
    }

    #[test]
    fn validation_errors_name_key_line_value_and_accepted() {
        assert_names("provider = \"auto\"\nbtrfs_snapshot_dir = \"a/b\"", "btrfs_snapshot_dir", 2, "\"a/b\"", "one plain directory name");
        assert_names("\n\ndrive_letters = \"rst\"", "drive_letters", 3, "\"rst\"", "upper-case letters A-Z");
        assert_names("vss_timeout = 0 # none", "vss_timeout", 1, "= 0", "at least 1");
    }

    #[test]
    fn unknown_key_names_key_line_value_and_accepted() {
        assert_names(
            "provider = \"auto\"\nrsync_pth = \"/x\"",
            "unknown key rsync_pth",
            2,
            "\"/x\"",
            "the keys rsync_path, on_snapshot_failure",
        );
        // A table is a key too: the file has none.
        assert_names("provider = \"auto\"\n[vss]\ntimeout = 5", "unknown key vss", 2, "[vss]", "there are no [tables]");
        assert_names("vss.timeout = 5", "unknown key vss", 1, "vss.timeout = 5", "at the top level");
    }

    #[test]
    fn known_key_written_as_table_is_named_with_its_dotted_key() {
        assert_names(
            "[provider]\nbtrfs = 1",
            "provider.btrfs",
            2,
            "= 1",
            r#"provider = "auto", "btrfs", "lvm", "zfs", "vss" or "none", not a table"#,
        );
    }

    #[test]
    fn syntax_errors_name_key_line_value_and_accepted() {
        assert_names("log_level = \"info\"\nprovider = btrfs", "provider", 2, "btrfs", r#""auto", "btrfs""#);
        assert_names("provider = \"vss\"\nprovider = \"btrfs\"", "key provider", 2, "\"btrfs\"", r#""auto", "btrfs""#);
        assert_names("vss_timeout 5", "key vss_timeout", 1, "5", "a whole number of seconds");
    }

    #[test]
    fn message_is_one_line_even_for_a_multi_line_value() {
        let e = parse("provider = [\n  \"btrfs\",\n  \"vss\",\n]").unwrap_err().to_string();
        assert!(!e.contains('\n') && !e.contains('\r'), "{e}");
        assert!(e.contains("line 1: provider = [\\n"), "{e}");
        let e = parse("rsync_path = \"\"\"\n/usr/bin/\nrsync\"\"\"\r\nnope = 1\r\n").unwrap_err().to_string();
        assert!(!e.contains('\n') && !e.contains('\r'), "{e}");
        assert!(e.contains("line 4: nope = 1: unknown key nope"), "{e}");
    }

    #[test]
    fn vss_provider_is_any_system_or_a_guid() {
        let id = |s: &str| Config { vss_provider: s.into(), ..Config::default() }.vss_provider_id();
        assert_eq!(id("any"), Ok(None));
        assert_eq!(id("system"), Ok(Some(0xb5946137_7b9f_4925_af80_51abd60b20d5)));
        assert_eq!(id("{B5946137-7B9F-4925-AF80-51ABD60B20D5}"), id("system"));
        assert_eq!(id("b5946137-7b9f-4925-af80-51abd60b20d5"), id("system"));
        for bad in [
            "",
            "hardware",
            "{b5946137-7b9f-4925-af80-51abd60b20d}",
            "b59461377b9f4925af8051abd60b20d5",
            "{g5946137-7b9f-4925-af80-51abd60b20d5}",
        ] {
            assert!(id(bad).is_err(), "{bad:?}");
        }
        assert_names("vss_provider = \"hw\"", "vss_provider", 1, "\"hw\"", "GUID");
    }

    #[test]
    fn keys_table_matches_config() {
        // serde lists the real fields in its own unknown-field message.
        let e = toml::from_str::<Config>("zz = 1").unwrap_err();
        let fields: Vec<&str> = e.message().split('`').skip(3).step_by(2).collect();
        let ours: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        assert_eq!(fields, ours);
        // Every value the message offers for an enum key parses.
        for key in [
            "on_snapshot_failure",
            "provider",
            "log",
            "log_level",
            "snapshot_removal",
            "expose",
            "vss_writers",
            "lvm_freeze",
            "hook_failure",
        ] {
            let what = KEYS.iter().find(|k| k.name == key).unwrap().accepts;
            for word in what.split('"').skip(1).step_by(2) {
                parse(&format!("{key} = \"{word}\"")).unwrap_or_else(|e| panic!("{key} = {word:?}: {e}"));
            }
        }
    }

    #[test]
    fn every_key_has_a_default_and_its_example_parses() {
        for k in KEYS {
            let d = default_text(k);
            assert!(!d.is_empty(), "{}: no default and no words for it", k.name);
            if k.unset.is_empty() {
                parse(&format!("{} = {d}", k.name)).unwrap_or_else(|e| panic!("{} = {d}: {e}", k.name));
            } else {
                assert!(!k.example.is_empty(), "{} is unset by default: it needs an example", k.name);
                parse(&format!("{} = {}", k.name, k.example)).unwrap_or_else(|e| panic!("{} = {}: {e}", k.name, k.example));
            }
        }
        let text = |name: &str| default_text(KEYS.iter().find(|k| k.name == name).unwrap());
        assert_eq!(text("on_snapshot_failure"), "\"fail\"");
        assert_eq!(text("vss_timeout"), "600");
        assert_eq!(text("log"), "\"auto\"");
        assert_eq!(text("log_file"), "none");
        let state = toml::Value::String(crate::host::default_state_dir().display().to_string());
        assert_eq!(text("state_dir"), state.to_string());
    }

    #[test]
    fn log_targets() {
        for (text, want) in [
            ("auto", LogTarget::Auto),
            ("journald", LogTarget::Journald),
            ("syslog", LogTarget::Syslog),
            ("eventlog", LogTarget::EventLog),
            ("stderr", LogTarget::Stderr),
        ] {
            assert_eq!(parse(&format!("log = {text:?}")).unwrap().log, want);
        }
        let file = std::env::temp_dir().join("snaprsync.log");
        let quoted = toml::Value::String(file.display().to_string());
        assert_eq!(parse(&format!("log = {quoted}")).unwrap().log, LogTarget::File(file));
        assert_names("log = \"journal\"", "log", 1, "\"journal\"", "an absolute file path");
        assert!(parse("log = \"snaprsync.log\"").is_err(), "a relative path depends on the directory sshd starts in");
    }

    #[test]
    fn missing_default_file_is_fine_but_missing_named_file_is_not() {
        let p = Path::new("/nonexistent/snaprsync.toml");
        assert_eq!(Config::load(p, false).unwrap(), Config::default());
        assert_eq!(Config::load(p, true).unwrap_err().exit_code(), crate::error::status::USAGE);
    }
}
