//! A small logger that never touches stdout (it carries the rsync protocol).
//!
//! Warnings and errors always go to stderr, which backup servers show or log.
//! Everything at or above `log_level` also goes to `log_file` when one is set,
//! one timestamped line each, so an unattended night can be read afterwards.
//! Messages quote names a client chose: control characters in them are escaped
//! ([`crate::text::one_line`]), so that a record is always one line and cannot
//! forge another.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::text::one_line;

struct Logger {
    file: Option<Mutex<File>>,
    file_level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, meta: &Metadata) -> bool {
        meta.level() <= Level::Warn || (self.file.is_some() && meta.level() <= self.file_level)
    }

    fn log(&self, record: &Record) {
        let text = record.args().to_string();
        let msg = one_line(&text);
        if record.level() <= Level::Warn {
            // Best effort: a closed stderr must not stop the backup.
            let _ = writeln!(std::io::stderr(), "snaprsync: {msg}");
        }
        if let Some(file) = &self.file {
            if record.level() <= self.file_level {
                let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                let line = format!("{now} [{}] {msg}\n", std::process::id());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let logger = Logger { file: Some(Mutex::new(file)), file_level: LevelFilter::Debug };
        let name = "/srv/x\n2026-01-01T00:00:00Z [1] restricted mode accepted\r\x1b[2K";
        logger.log(&Record::builder().level(Level::Info).args(format_args!("refused: {name}")).build());
        logger.log(&Record::builder().level(Level::Debug).args(format_args!("second")).build());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert!(lines[0].ends_with("refused: /srv/x\\n2026-01-01T00:00:00Z [1] restricted mode accepted\\r\\x1b[2K"), "{text:?}");
        assert!(!text.contains('\r') && !text.contains('\x1b'));
    }
}
