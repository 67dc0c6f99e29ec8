//! A small logger that never touches stdout (it carries the rsync protocol).
//!
//! Warnings and errors always go to stderr, which backup servers show or log.
//! Everything at or above `log_level` also goes to `log_file` when one is set,
//! one timestamped line each, so an unattended night can be read afterwards.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Logger {
    file: Option<Mutex<File>>,
    file_level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, meta: &Metadata) -> bool {
        meta.level() <= Level::Warn || (self.file.is_some() && meta.level() <= self.file_level)
    }

    fn log(&self, record: &Record) {
        if record.level() <= Level::Warn {
            // Best effort: a closed stderr must not stop the backup.
            let _ = writeln!(std::io::stderr(), "snaprsync: {}", record.args());
        }
        if let Some(file) = &self.file {
            if record.level() <= self.file_level {
                let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                let line = format!("{now} [{}] {}\n", std::process::id(), record.args());
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger once. A log file that cannot be opened is reported on
/// stderr and otherwise ignored: logging must never cost a backup.
pub fn init(log_file: Option<&Path>, level: LevelFilter) {
    let file = log_file.and_then(|p| match OpenOptions::new().create(true).append(true).open(p) {
        Ok(f) => Some(Mutex::new(f)),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "snaprsync: cannot open log_file {}: {e}; logging to stderr only", p.display());
            None
        }
    });
    let max = if file.is_some() { level.max(LevelFilter::Warn) } else { LevelFilter::Warn };
    if log::set_logger(Box::leak(Box::new(Logger { file, file_level: level }))).is_ok() {
        log::set_max_level(max);
    }
}
