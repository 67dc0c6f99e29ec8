//! snaprsync: a stand-in for rsync that makes the sending side read from a
//! point-in-time snapshot (btrfs, LVM or ZFS on Linux, VSS on Windows).
//!
//! One run flows through these modules in order: `cli` splits snaprsync's own
//! options from rsync's argv, `rsync_args` reads that argv, `role::rsync`
//! says what rsync reads, and `run::lifecycle` snapshots it through a
//! `provider` (between the `run::hook`s), shows it to rsync through
//! `platform`'s exposure, runs the real rsync, and removes everything again.
//! `role::exec` is the same lifecycle for any other program. ARCHITECTURE.md
//! draws the floors the modules stand on.

pub mod admin;
pub mod cli;
pub mod command;
pub mod completion;
pub mod config;
pub mod doctor;
pub mod error;
pub mod fault;
pub mod history;
pub mod host;
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
pub mod role;
pub mod rsync_args;
pub mod rsync_options;
pub mod run;
pub mod stamp;
pub mod system_log;
pub mod text;
pub mod winpath;
pub mod wire;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};

/// The whole program: returns the exit status. Errors become one stderr line.
/// A panic is a bug: it becomes one stderr line too, and status 89, after
/// unwinding has removed whatever the run had made (see `guard`).
pub fn main(argv: Vec<OsString>) -> u8 {
    use platform::{Processes, System};
    // The real system, made once; everything below is handed it as `&dyn System`.
    let system = platform::Platform;
    if let Some(status) = system.internal(&argv) {
        return status;
    }
    // A pull's sending side tells the client its own failure in-band (see `wire`).
    let pull = pull_of(&argv);
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let line = format!("internal error{at}: {msg}; this is a bug in snaprsync, please report it");
        // The main thread's panic ends the run: reported below, where it may go in-band.
        match PANIC_LINE.lock() {
            Ok(mut last) if std::thread::current().name() == Some("main") => *last = Some(line),
            _ => report(&line),
        }
    }));
    let run = || {
        let sys: &dyn System = &system;
        cli::parse(argv).and_then(|(opts, mode)| {
            let mode = cli::at_terminal(&opts, mode, std::io::stdout().is_terminal());
            if let cli::Mode::Admin(cli::Admin::Doctor(args)) = &mode {
                // A config that does not parse is one of doctor's findings, not its end.
                logger::init_stderr();
                return Ok(doctor::run(sys, &opts, args));
            }
            let cfg = config::Config::for_options(&opts)?;
            logger::init(&logger::Destinations::of(&cfg));
            match mode {
                cli::Mode::Admin(cmd) => admin::run(sys, &cfg, cmd),
                cli::Mode::Exec(e) => role::exec::run(sys, &cfg, &opts, e),
                cli::Mode::Rsync(argv) => role::rsync::rsync(sys, &cfg, &opts, argv),
            }
        })
    };
    let status = match std::panic::catch_unwind(run) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            let (line, status) = (e.to_string(), e.exit_code());
            logger::in_band(wire::tell(pull.as_ref(), &line, status));
            report(&line);
            status
        }
        // The hook has kept the line (or reported another thread's panic).
        Err(_) => {
            if let Some(line) = PANIC_LINE.lock().ok().and_then(|mut l| l.take()) {
                logger::in_band(wire::tell(pull.as_ref(), &line, error::status::INTERNAL));
                report(&line);
            }
            error::status::INTERNAL
        }
    };
    system.finished();
    status
}

/// The line of a panic, for the client of a pull.
static PANIC_LINE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// A pull's sending side: the server words of argv, or in restricted mode
/// those of the client's command (`SSH_ORIGINAL_COMMAND`).
fn pull_of(argv: &[OsString]) -> Option<wire::Pull> {
    let words: Vec<&[u8]> = argv.iter().map(|a| a.as_encoded_bytes()).collect();
    if words.iter().take_while(|w| w.starts_with(b"--snap-")).any(|w| *w == b"--snap-restrict") {
        let cmd = std::env::var_os("SSH_ORIGINAL_COMMAND")?;
        let words: Vec<&[u8]> = cmd.as_encoded_bytes().split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).collect();
        return wire::Pull::of(&words);
    }
    wire::Pull::of(&words)
}

/// One line on stderr: through the logger (which also writes it to the log
/// file) once it is set up, directly before; not on stderr when the client
/// of a pull was told it in-band (it would show it twice).
fn report(line: &str) {
    if log::max_level() >= log::LevelFilter::Error {
        log::error!("{line}");
    } else if !logger::told_in_band() {
        let _ = writeln!(std::io::stderr(), "snaprsync: {line}");
    }
}
