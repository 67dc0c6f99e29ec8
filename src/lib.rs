//! snaprsync: a stand-in for rsync that makes the sending side read from a
//! point-in-time snapshot (btrfs on Linux, VSS on Windows).
//!
//! One run flows through these modules in order: `cli` splits snaprsync's own
//! options from rsync's argv, `rsync_args` reads that argv, `run` plans the
//! snapshots through a `provider`, shows them to rsync through `platform`'s
//! exposure, runs the real rsync, and removes everything again.

pub mod admin;
pub mod cli;
pub mod command;
pub mod config;
pub mod error;
pub mod journal;
pub mod logger;
#[cfg(target_os = "linux")]
pub mod mountinfo;
pub mod platform;
pub mod protect_args;
pub mod provider;
pub mod restrict;
pub mod rsync_args;
pub mod run;
pub mod sweep;
pub mod winpath;

use std::ffi::OsString;
use std::io::Write;

/// The whole program: returns the exit status. Errors become one stderr line.
pub fn main(argv: Vec<OsString>) -> u8 {
    let result = cli::parse(argv).and_then(|(opts, mode)| {
        let cfg = run::load_config(&opts)?;
        logger::init(cfg.log_file.as_deref(), cfg.log_level.filter());
        match mode {
            cli::Mode::Admin(cmd) => admin::run(&cfg, cmd),
            cli::Mode::Rsync(argv) => run::rsync(&cfg, &opts, argv),
        }
    });
    match result {
        Ok(status) => status,
        Err(e) => {
            if log::max_level() >= log::LevelFilter::Error {
                log::error!("{e}");
            } else {
                let _ = writeln!(std::io::stderr(), "snaprsync: {e}");
            }
            e.exit_code()
        }
    }
}
