//! Admin subcommands (`list`, `help`, `version`; `doctor` is its own module):
//! the only code that prints to stdout, since they never run in the rsync role.
#![allow(clippy::print_stdout)]

use crate::cli::Admin;
use crate::config::Config;
use crate::error::Result;
use crate::journal::Journal;
use crate::platform::{Platform, Volumes};
use crate::sweep;

const HELP: &str = "\
snaprsync: rsync that reads from a point-in-time snapshot

Use it wherever a backup server names the remote rsync:
  rsync --rsync-path=snaprsync ...        dirvish: rsync-client: snaprsync
  rsnapshot: rsync_long_args ... --rsync-path=snaprsync

  snaprsync [--snap-config=FILE] [--snap-log-file=FILE] [--snap-log-level=LEVEL] RSYNC-ARGS...
  snaprsync [--snap-config=FILE] list      snapshots snaprsync made that still exist, and their owners
  snaprsync [--snap-config=FILE] cleanup [--dry-run]   remove what killed runs left
  snaprsync [--snap-config=FILE] doctor [--authorized-keys-line=LINE] [PATH...]   check this client once
  snaprsync help | version

To copy a local directory named like a subcommand, write ./list.
Exit statuses: rsync's own, or 80-94 for snaprsync's (see README).";

pub fn run(cfg: &Config, cmd: Admin) -> Result<u8> {
    match cmd {
        Admin::Help => println!("{HELP}"),
        Admin::Version => println!("snaprsync {}", env!("CARGO_PKG_VERSION")),
        Admin::List => list(cfg)?,
        Admin::Cleanup { dry_run } => return cleanup(cfg, dry_run),
        Admin::Selftest(args) => return selftest(cfg, &args),
        // Dispatched before the config is read (see lib.rs).
        Admin::Doctor(_) => return Err(crate::error::Error::Usage("doctor runs before the config is read".into())),
        Admin::RemoveRun(stamp) => {
            let mut provider = Platform::sweep_provider(cfg)?;
            sweep::remove_run(&journal_of(cfg), provider.as_mut(), &stamp)?;
        }
    }
    Ok(0)
}

/// Every snapshot snaprsync made that still exists, with its owner's state.
fn list(cfg: &Config) -> Result<()> {
    let provider = Platform::sweep_provider(cfg)?;
    let journal = journal_of(cfg);
    let leftovers = provider.leftovers()?;
    let (entries, corrupt) = journal.read();
    println!("{:<8} {:<7} {:<22} {:<8} path", "provider", "owner", "created", "pid");
    for l in &leftovers {
        let entry = entries.iter().find(|e| e.stamp == l.stamp);
        let (owner, created, pid) = match entry {
            Some(e) if e.owner_alive() => ("live", e.created.as_str(), e.pid.to_string()),
            Some(e) => ("dead", e.created.as_str(), e.pid.to_string()),
            None => ("none", "-", "-".to_owned()),
        };
        println!("{:<8} {:<7} {:<22} {:<8} {}", l.provider, owner, created, pid, l.path.display());
    }
    for c in corrupt {
        println!("corrupt journal file {}: {}", c.path.display(), c.why);
    }
    Ok(())
}

/// Removes what dead runs left (snapshots and journal entries).
fn cleanup(cfg: &Config, dry_run: bool) -> Result<u8> {
    let mut provider = Platform::sweep_provider(cfg)?;
    let report = sweep::sweep(&journal_of(cfg), provider.as_mut(), dry_run);
    let verb = if dry_run { "would remove" } else { "removed" };
    for l in &report.stale {
        println!("{verb} {}", l.path.display());
    }
    for l in &report.live {
        println!("kept {} (its run is live)", l.path.display());
    }
    for e in &report.dead_entries {
        println!("{verb} journal entry {} (pid {} started {})", e.stamp, e.pid, e.created);
    }
    for (path, why) in &report.corrupt {
        println!("set aside corrupt journal file {} ({why})", path.display());
    }
    for (path, why) in &report.failed {
        println!("FAILED to remove {}: {why}", path.display());
    }
    Ok(if report.failed.is_empty() { 0 } else { crate::error::status::SNAPSHOT })
}

fn journal_of(cfg: &Config) -> Journal {
    Journal::new(&cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir))
}

#[cfg(windows)]
fn selftest(cfg: &Config, args: &[std::ffi::OsString]) -> Result<u8> {
    crate::platform::selftest(cfg, args)
}

#[cfg(not(windows))]
fn selftest(_cfg: &Config, _args: &[std::ffi::OsString]) -> Result<u8> {
    Err(crate::error::Error::Usage("selftest is for Windows: it checks VSS on the machine it runs on".into()))
}
