//! Shared fixtures for snaprsync's end-to-end tests: a command runner, a
//! loop-mounted btrfs filesystem, a private sshd, tree helpers, the torture
//! writer/checker that proves a copy is (or is not) point-in-time, and the
//! guest lab (a QEMU guest for what the host kernel lacks, such as LVM).
//!
//! Everything here drives real programs. A required tool that is missing makes
//! the test fail with the command line that could not start; nothing is skipped.

#![allow(dead_code)]

// Portable: the command runner and the torture writer/checker.
pub mod cmd;
pub mod torture;

// Linux only: btrfs, sshd, the guest lab and POSIX file metadata.
#[cfg(target_os = "linux")]
pub mod backuppc;
#[cfg(target_os = "linux")]
pub mod btrfs;
#[cfg(target_os = "linux")]
pub mod forced;
#[cfg(target_os = "linux")]
pub mod guest;
#[cfg(target_os = "linux")]
pub mod rig;
#[cfg(target_os = "linux")]
pub mod sshd;
#[cfg(target_os = "linux")]
pub mod tree;

use std::path::{Path, PathBuf};

/// The snaprsync binary under test: this build's, or another one named by
/// `SNAPRSYNC_UNDER_TEST` (to show that a test fails on an older build).
pub fn snaprsync() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| std::env::var("SNAPRSYNC_UNDER_TEST").unwrap_or_else(|_| env!("CARGO_BIN_EXE_snaprsync").to_owned()))
}

/// A temp dir for one test. The prefix keeps these recognisable in `/tmp`
/// without ever containing `snaprsync-`, which marks snapshots.
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("srs-e2e-{tag}-")).tempdir().expect("create temp dir")
}

/// Writes a snaprsync config file into `dir` and returns its path. The log
/// goes to `dir/snaprsync.log` at debug level so failures can show it; run
/// records go to `dir/state` so that tests running in parallel never see each
/// other's records.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("snaprsync.toml");
    let log = dir.join("snaprsync.log");
    let text = format!(
        "rsync_path = \"/usr/bin/rsync\"\nlog_file = \"{}\"\nlog_level = \"debug\"\nstate_dir = \"{}\"\n{extra}",
        log.display(),
        dir.join("state").display()
    );
    std::fs::write(&path, text).expect("write snaprsync config");
    path
}

/// The `--rsync-path` value that makes the remote side run snaprsync.
pub fn snaprsync_path(config: &Path) -> String {
    format!("{} --snap-config={}", snaprsync(), config.display())
}

/// The contents of snaprsync's log next to `config`, for failure messages.
pub fn snaprsync_log(config: &Path) -> String {
    let log = config.with_file_name("snaprsync.log");
    std::fs::read_to_string(&log).unwrap_or_else(|e| format!("(no log at {}: {e})", log.display()))
}
