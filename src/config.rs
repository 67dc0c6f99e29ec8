//! The typed configuration: one optional TOML file, read once per run.
//!
//! Every key is optional and documented in README "Configuration"; an unknown
//! key or a bad value is an error that names it. With no file at the default
//! location, the defaults apply.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// What to do when a snapshot cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSnapshotFailure {
    /// Fail the backup with snaprsync's own exit status (the default).
    #[default]
    Fail,
    /// Run rsync on the live files, saying so on stderr and in the log.
    Live,
}

/// Which snapshot provider to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderChoice {
    /// From the filesystem type of each source (the default).
    #[default]
    Auto,
    Btrfs,
    Vss,
    /// Never snapshot: run rsync on the live files.
    None,
}

/// When the snapshots are removed after rsync ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expose {
    /// A free drive letter mapped with DefineDosDevice (what tb-rsync-vss did).
    #[default]
    DriveLetter,
    /// The shadow copy's device path; no letter needed.
    DevicePath,
}

/// Log verbosity for the log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
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

/// The whole configuration. Field docs are the reference; keep README in step.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The real rsync. Default: the first `rsync` on PATH that is not snaprsync.
    pub rsync_path: Option<PathBuf>,
    /// `fail` (default) or `live`.
    pub on_snapshot_failure: OnSnapshotFailure,
    /// `auto` (default), `btrfs`, `vss` or `none`.
    pub provider: ProviderChoice,
    /// Where log lines go besides stderr. Default: none (stderr only).
    pub log_file: Option<PathBuf>,
    /// Level for `log_file`: `error`, `warn`, `info` (default) or `debug`.
    pub log_level: LogLevel,
    /// btrfs: directory (a subvolume) at the root of each mounted btrfs
    /// filesystem that holds snaprsync's snapshots. Default `.snaprsync`.
    pub btrfs_snapshot_dir: String,
    /// `background` (default) or `wait`: when btrfs snapshots are removed.
    pub snapshot_removal: Removal,
    /// Where run records live (crash recovery). Default `/var/lib/snaprsync`
    /// (Windows: `%ProgramData%\snaprsync\state`).
    pub state_dir: Option<PathBuf>,
    /// Windows: `drive-letter` (default) or `device-path`.
    pub expose: Expose,
    /// Windows: letters `expose = "drive-letter"` may use, tried in order. Default `"RSTUVWXYZ"`.
    pub drive_letters: String,
    /// Windows: seconds to wait for each VSS step, including retries while
    /// another snapshot set is in progress. Default 600.
    pub vss_timeout: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rsync_path: None,
            on_snapshot_failure: OnSnapshotFailure::Fail,
            provider: ProviderChoice::Auto,
            log_file: None,
            log_level: LogLevel::Info,
            btrfs_snapshot_dir: ".snaprsync".into(),
            state_dir: None,
            snapshot_removal: Removal::Background,
            expose: Expose::DriveLetter,
            drive_letters: "RSTUVWXYZ".into(),
            vss_timeout: 600,
        }
    }
}

impl Config {
    /// Parses config text; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| Error::Config { path: path.to_owned(), msg: e.message().replace('\n', " ") })?;
        cfg.validate(path)?;
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

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Err(Error::Config { path: path.to_owned(), msg });
        let dir = &self.btrfs_snapshot_dir;
        if dir.is_empty() || dir.contains('/') || dir == "." || dir == ".." {
            return bad(format!("btrfs_snapshot_dir = {dir:?} must be one plain directory name"));
        }
        if self.drive_letters.is_empty() || !self.drive_letters.chars().all(|c| c.is_ascii_uppercase()) {
            return bad(format!("drive_letters = {:?} must be upper-case letters A-Z", self.drive_letters));
        }
        if self.vss_timeout == 0 {
            return bad("vss_timeout must be at least 1 (seconds)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/etc/snaprsync/config.toml"))
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
            "#,
        )
        .unwrap();
        assert_eq!(cfg.rsync_path.as_deref(), Some(Path::new("/usr/bin/rsync")));
        assert_eq!(cfg.on_snapshot_failure, OnSnapshotFailure::Live);
        assert_eq!(cfg.provider, ProviderChoice::Btrfs);
        assert_eq!(cfg.log_level, LogLevel::Debug);
        assert_eq!(cfg.btrfs_snapshot_dir, ".snaps");
        assert_eq!(cfg.snapshot_removal, Removal::Wait);
        assert_eq!(cfg.expose, Expose::DevicePath);
        assert_eq!(cfg.drive_letters, "QR");
        assert_eq!(cfg.vss_timeout, 30);
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

    #[test]
    fn missing_default_file_is_fine_but_missing_named_file_is_not() {
        let p = Path::new("/nonexistent/snaprsync.toml");
        assert_eq!(Config::load(p, false).unwrap(), Config::default());
        assert_eq!(Config::load(p, true).unwrap_err().exit_code(), crate::error::status::USAGE);
    }
}
