//! A small logger that never touches stdout (it carries the rsync protocol).
//!
//! Warnings and errors always go to stderr, which backup servers show or log.
//! Everything at or above `log_level` also goes to `log_file` when one is set,
//! one timestamped line each, so an unattended night can be read afterwards.
//! Messages quote names a client chose: control characters in them are escaped
//! ([`one_line`]), so that a record is always one line and cannot forge another.

use std::borrow::Cow;
use std::fmt::Write as _;
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

/// Whether `c` must not reach a log line as it is: a control character (C0,
/// DEL, C1: a line break, a terminal escape), a line or paragraph separator, or
/// a bidirectional override that would show the line's text out of order.
fn must_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` on one line: `\n`, `\r` and `\t` written so, other control bytes as
/// `\x1b`, the other characters of [`must_escape`] as `\u{2028}`.
/// Backslashes are kept as they are (Windows paths stay readable).
pub fn one_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(must_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x80 && must_escape(c) => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if must_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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
    fn control_characters_are_escaped() {
        assert!(matches!(one_line("plain /srv/ünïcödé/naïve €.txt C:\\x"), Cow::Borrowed(_)));
        for (raw, want) in [
            ("a\nb", "a\\nb"),
            ("a\r\nb", "a\\r\\nb"),
            ("tab\there", "tab\\there"),
            ("esc\x1b[31mred", "esc\\x1b[31mred"),
            ("nul\0", "nul\\x00"),
            ("del\x7f", "del\\x7f"),
            ("bell\x07", "bell\\x07"),
            ("nel\u{85}x", "nel\\u{85}x"),
            ("ls\u{2028}ps\u{2029}", "ls\\u{2028}ps\\u{2029}"),
            ("bidi\u{202e}txt.exe", "bidi\\u{202e}txt.exe"),
            ("back\\slash", "back\\slash"),
        ] {
            assert_eq!(one_line(raw), want, "{raw:?}");
        }
    }

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
