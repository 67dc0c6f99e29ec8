//! Helpers for the integration tests: the snaprsync under test and its
//! config, the common fixture ([`rig::Rig`]), sample trees, a forced-command
//! key and a private BackupPC server. The test world itself (btrfs image,
//! sshd, command runner, torture writer) is the `testbed` crate, which the
//! scripts use too.
//!
//! Everything here drives real programs. A required tool that is missing makes
//! the test fail with the command line that could not start; nothing is skipped.

pub mod backuppc;
pub mod forced;
pub mod guest;
pub mod rig;
pub mod tree;

use rig::Rig;
use std::path::{Path, PathBuf};
use testbed::cmd::Output;
use testbed::torture::{self, Writer};

/// The snaprsync binary under test: this build's, or another one named by
/// `SNAPRSYNC_UNDER_TEST` (to show that a test fails on an older build).
pub fn snaprsync() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| std::env::var("SNAPRSYNC_UNDER_TEST").unwrap_or_else(|_| env!("CARGO_BIN_EXE_snaprsync").to_owned()))
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

/// Up to 5 copies of the live tree by `copy` (plain rsync into the given
/// destination) while `writer` runs: the torture checker must catch one torn,
/// or it proves nothing. `what` names the copies in messages.
pub fn assert_a_live_copy_is_torn(rig: &Rig, writer: Writer, what: &str, copy: impl Fn(&Path) -> Output) {
    let mut verdicts = Vec::new();
    for attempt in 0..5 {
        let dest = rig.dest(&format!("live{attempt}"));
        let out = copy(&dest);
        // 24: the writer's temp files vanished during the copy.
        assert!(matches!(out.code(), Some(0 | 24)), "{what} failed\n{}", out.report());
        let verdict = torture::check(&dest).expect("read copy");
        eprintln!("{what} copy {attempt}: {verdict}");
        if !verdict.consistent() {
            writer.stop().expect("torture writer");
            return;
        }
        verdicts.push(verdict.to_string());
    }
    panic!("the checker never caught {what} tearing the live tree, so it proves nothing: {verdicts:?}");
}
