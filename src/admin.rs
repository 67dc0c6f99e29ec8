//! Admin subcommands (`list`, `help`, `version`): the only code that prints to
//! stdout, since they never run in the rsync role.
#![allow(clippy::print_stdout)]

use crate::cli::Admin;
use crate::config::Config;
use crate::error::{Error, Result};

const HELP: &str = "\
snaprsync: rsync that reads from a point-in-time snapshot

Use it wherever a backup server names the remote rsync:
  rsync --rsync-path=snaprsync ...        dirvish: rsync-client: snaprsync
  rsnapshot: rsync_long_args ... --rsync-path=snaprsync

  snaprsync [--snap-config=FILE] [--snap-log-file=FILE] [--snap-log-level=LEVEL] RSYNC-ARGS...
  snaprsync [--snap-config=FILE] list      snapshots snaprsync made that still exist
  snaprsync help | version

To copy a local directory named like a subcommand, write ./list.
Exit statuses: rsync's own, or 80-89 for snaprsync's failures (see README).";

pub fn run(cfg: &Config, cmd: Admin) -> Result<u8> {
    match cmd {
        Admin::Help => println!("{HELP}"),
        Admin::Version => println!("snaprsync {}", env!("CARGO_PKG_VERSION")),
        Admin::List => list(cfg)?,
        Admin::Selftest(args) => return selftest(cfg, &args),
    }
    Ok(0)
}

#[cfg(target_os = "linux")]
fn list(cfg: &Config) -> Result<()> {
    use crate::provider::btrfs::NAME_PREFIX;
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::io("/proc/self/mountinfo", e))?;
    let mut seen = std::collections::BTreeSet::new();
    for m in crate::mountinfo::parse(&text).iter().filter(|m| m.fstype == "btrfs") {
        let dir = m.mount_point.join(&cfg.btrfs_snapshot_dir);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().starts_with(NAME_PREFIX) && seen.insert(e.path()) {
                println!("btrfs\t{}", e.path().display());
            }
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn list(_cfg: &Config) -> Result<()> {
    // VSS shadow copies in the backup context are non-persistent: none outlive a run.
    Ok(())
}

fn selftest(cfg: &Config, args: &[std::ffi::OsString]) -> Result<u8> {
    let _ = (cfg, args);
    Err(Error::Usage("selftest is for Windows: it checks VSS on the machine it runs on".into()))
}
