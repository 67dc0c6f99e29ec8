//! snaprsync: a stand-in for rsync that makes the sending side read from a
//! point-in-time snapshot (btrfs on Linux, VSS on Windows).
//!
//! One run flows through these modules in order: `cli` splits snaprsync's own
//! options from rsync's argv, `rsync_args` reads that argv, `run` says what
//! rsync reads, and `lifecycle` snapshots it through a `provider` (between
//! the `hook`s), shows it to rsync through `platform`'s exposure, runs the
//! real rsync, and removes everything again. `exec` is the same lifecycle for
//! any other program.

pub mod admin;
pub mod cli;
pub mod command;
pub mod completion;
pub mod config;
pub mod doctor;
pub mod error;
pub mod exec;
pub mod fault;
pub mod guard;
pub mod history;
pub mod hook;
pub mod host;
pub mod journal;
pub mod lifecycle;
pub mod logger;
pub mod manual;
pub mod metrics;
pub mod monitor;
#[cfg(target_os = "linux")]
pub mod mountinfo;
pub mod pin;
pub mod platform;
pub mod prefetch;
pub mod protect_args;
pub mod provider;
pub mod real_rsync;
pub mod restrict;
pub mod rsync_args;
pub mod run;
pub mod sweep;
pub mod system_log;
pub mod text;
pub mod winpath;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};

/// The whole program: returns the exit status. Errors become one stderr line.
/// A panic is a bug: it becomes one stderr line too, and status 89, after
/// unwinding has removed whatever the run had made (see `guard`).
pub fn main(argv: Vec<OsString>) -> u8 {
    use platform::Processes;
    if let Some(status) = platform::Platform::internal(&argv) {
        return status;
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        report(&format!("internal error{at}: {msg}; this is a bug in snaprsync, please report it"));
    }));
    let run = || {
        cli::parse(argv).and_then(|(opts, mode)| {
            let mode = cli::at_terminal(&opts, mode, std::io::stdout().is_terminal());
            if let cli::Mode::Admin(cli::Admin::Doctor(args)) = &mode {
                // A config that does not parse is one of doctor's findings, not its end.
                logger::init_stderr();
                return Ok(doctor::run(&opts, args));
            }
            let cfg = config::Config::for_options(&opts)?;
            logger::init(&logger::Destinations::of(&cfg));
            match mode {
                cli::Mode::Admin(cmd) => admin::run(&cfg, cmd),
                cli::Mode::Exec(e) => exec::run(&cfg, &opts, e),
                cli::Mode::Rsync(argv) => run::rsync(&cfg, &opts, argv),
            }
        })
    };
    let status = match std::panic::catch_unwind(run) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            report(&e.to_string());
            e.exit_code()
        }
        // The hook has reported it.
        Err(_) => error::status::INTERNAL,
    };
    platform::Platform::finished();
    status
}

/// One line on stderr: through the logger (which also writes it to the log
/// file) once it is set up, directly before.
fn report(line: &str) {
    if log::max_level() >= log::LevelFilter::Error {
        log::error!("{line}");
    } else {
        let _ = writeln!(std::io::stderr(), "snaprsync: {line}");
    }
}
