//! Admin subcommands (`list`, `cleanup`, `help`, `version`, the internal
//! `__remove-run` and `__doc`; `doctor` is its own module, `history` and
//! `check` are `monitor`'s): the only code that
//! prints to stdout, since they never run in the rsync role.
#![allow(clippy::print_stdout)]

use crate::cli::{Admin, Doc};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::platform::System;
use crate::run::journal::Journal;
use crate::run::sweep;

pub fn run(sys: &dyn System, cfg: &Config, cmd: Admin) -> Result<u8> {
    match cmd {
        Admin::Help => println!("{}", crate::manual::usage()),
        Admin::Version => return version(cfg),
        Admin::Doc(doc) => print!("{}", document(doc)),
        // Dispatched before the config is read (see lib.rs); here only for completeness.
        Admin::Doctor(_) => return Err(Error::Usage("doctor runs before the config is read".into())),
        Admin::List { json } => list(sys, cfg, json)?,
        Admin::Cleanup { dry_run } => return cleanup(sys, cfg, dry_run),
        Admin::Selftest(args) => return selftest(cfg, &args),
        Admin::History(words) => return crate::monitor::history(cfg, &words),
        Admin::Check(words) => return Ok(crate::monitor::check(cfg, &words)),
        Admin::RemoveRun(stamp) => {
            if !handed_over() {
                log::debug!("the run {stamp} kept its removal");
                return Ok(0);
            }
            crate::fault::point("remove-run");
            let mut provider = sys.sweep_provider(cfg)?;
            sweep::remove_run(&journal_of(cfg), provider.as_mut(), &stamp)?;
        }
    }
    Ok(0)
}

/// Waits for the run to hand its removal over: the byte
/// [`crate::run::guard::HAND_OFF`] on stdin, written once the run has recorded
/// this process as its remover. A pipe closed without it (the record failed,
/// or the run died first) leaves the snapshots to the run or to a sweep.
fn handed_over() -> bool {
    use std::io::Read;
    let mut byte = [0u8; 1];
    matches!(std::io::stdin().read(&mut byte), Ok(1)) && byte[0] == crate::run::guard::HAND_OFF
}

/// snaprsync's version, and the first line of the real rsync's `--version`.
fn version(cfg: &Config) -> Result<u8> {
    println!("snaprsync {}", env!("CARGO_PKG_VERSION"));
    let rsync = crate::real_rsync::find(cfg)?;
    let out = crate::command::Cmd::new(&rsync).arg("--version").run().map_err(|e| Error::NotStarted {
        what: "rsync",
        path: rsync.clone(),
        msg: format!("{e}; install rsync or fix rsync_path"),
    })?;
    println!("{} ({})", out.lines().next().unwrap_or("").trim(), rsync.display());
    Ok(0)
}

/// A generated document (`__doc WHAT`).
fn document(doc: Doc) -> String {
    match doc {
        Doc::Man1 => crate::manual::man1(),
        Doc::Man5 => crate::manual::man5(),
        Doc::Config => crate::manual::sample_config(),
        Doc::Bash => crate::completion::bash(),
        Doc::Zsh => crate::completion::zsh(),
        Doc::Fish => crate::completion::fish(),
    }
}

/// Every snapshot snaprsync made that still exists, with its owner's state:
/// a table, or with `json` one object a line with the same fields (`created`
/// and `pid` null where the table says `-`), then any corrupt journal file.
fn list(sys: &dyn System, cfg: &Config, json: bool) -> Result<()> {
    let provider = sys.sweep_provider(cfg)?;
    let journal = journal_of(cfg);
    let leftovers = provider.leftovers()?;
    let (entries, corrupt) = journal.read();
    if !json {
        println!("{:<8} {:<7} {:<22} {:<8} path", "provider", "owner", "created", "pid");
    }
    for l in &leftovers {
        let entry = entries.iter().find(|e| e.stamp == l.stamp);
        let (owner, created, pid) = match entry {
            Some(e) if e.owner_alive() => ("live", Some(e.created.as_str()), Some(e.pid)),
            Some(e) if e.remover_alive() => ("remover", Some(e.created.as_str()), Some(e.pid)),
            Some(e) => ("dead", Some(e.created.as_str()), Some(e.pid)),
            None => ("none", None, None),
        };
        if json {
            let line = serde_json::json!({
                "provider": l.provider,
                "owner": owner,
                "created": created,
                "pid": pid,
                "path": l.path.to_string_lossy(),
                "stamp": l.stamp,
            });
            println!("{line}");
        } else {
            let pid = pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
            println!("{:<8} {:<7} {:<22} {:<8} {}", l.provider, owner, created.unwrap_or("-"), pid, l.path.display());
        }
    }
    for c in corrupt {
        if json {
            println!("{}", serde_json::json!({ "corrupt_journal_file": c.path.to_string_lossy(), "why": c.why }));
        } else {
            println!("corrupt journal file {}: {}", c.path.display(), c.why);
        }
    }
    Ok(())
}

/// Removes what dead runs left (snapshots and journal entries).
fn cleanup(sys: &dyn System, cfg: &Config, dry_run: bool) -> Result<u8> {
    let mut provider = sys.sweep_provider(cfg)?;
    if !dry_run {
        crate::run::record::killed(cfg, &journal_of(cfg));
    }
    let report = sweep::sweep(&journal_of(cfg), provider.as_mut(), dry_run, sweep::Busy::Wait);
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
