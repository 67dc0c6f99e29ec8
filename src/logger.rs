//! A small logger that never touches stdout (it carries the rsync protocol).
//!
//! Warnings and errors always go to stderr, which backup servers show or log.
//! Everything at or above `log_level` also goes where config `log` says (the
//! journal, syslog, stderr or a file) and to `log_file` when one is set, so
//! that an unattended night can be read afterwards. A record's key-value
//! pairs (`log::info!(run = stamp; "summary")`) follow its text as
//! `key=value`, and become fields of their own in the journal.
//! Messages quote names a client chose: control characters in them are escaped
//! ([`crate::text::one_line`]), so that a record is always one line and cannot
//! forge another.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::kv::{Key, Value, VisitSource};
use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::LogTarget;
use crate::system_log::SystemLog;
use crate::text::one_line;

/// Where the records at `log_level` go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destinations {
    pub target: LogTarget,
    pub file: Option<PathBuf>,
    pub level: LevelFilter,
}

impl Destinations {
    /// What the config (with `--snap-log-*` applied) says.
    pub fn of(cfg: &crate::config::Config) -> Destinations {
        Destinations { target: cfg.log.clone(), file: cfg.log_file.clone(), level: cfg.log_level.filter() }
    }
}

struct Logger {
    level: LevelFilter,
    /// `log = "stderr"`: records at `level` go to stderr too, not only warnings.
    stderr_all: bool,
    files: Vec<Mutex<File>>,
    system: Option<SystemLog>,
}

/// A record's key-value pairs, as text.
struct Fields(Vec<(String, String)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

/// ` key=value` for each pair; a value with a space, quote, `=` or nothing in
/// it is quoted, so the line splits back into its pairs.
fn render(text: &str, fields: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (k, v) in fields {
        let plain = !v.is_empty() && !v.contains([' ', '"', '=', '\\']);
        if plain {
            out.push_str(&format!(" {k}={v}"));
        } else {
            out.push_str(&format!(" {k}={v:?}"));
        }
    }
    out
}

impl Logger {
    fn wants(&self, level: Level) -> bool {
        level <= self.level && (self.stderr_all || !self.files.is_empty() || self.system.is_some())
    }
}

impl Log for Logger {
    fn enabled(&self, meta: &Metadata) -> bool {
        meta.level() <= Level::Warn || self.wants(meta.level())
    }

    fn log(&self, record: &Record) {
        let level = record.level();
        let mut fields = Fields(Vec::new());
        let _ = record.key_values().visit(&mut fields);
        let fields: Vec<(String, String)> = fields.0.into_iter().map(|(k, v)| (k, one_line(&v).into_owned())).collect();
        let text = render(&record.args().to_string(), &fields);
        let msg = one_line(&text);
        if level <= Level::Warn {
            note_warning(&msg);
        }
        if (level <= Level::Warn || (self.stderr_all && level <= self.level)) && !told_in_band() {
            // Best effort: a closed stderr must not stop the backup.
            let _ = writeln!(std::io::stderr(), "snaprsync: {msg}");
        }
        if level > self.level {
            return;
        }
        if !self.files.is_empty() {
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            let line = format!("{now} [{}] {msg}\n", std::process::id());
            for file in &self.files {
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
        }
        if let Some(system) = &self.system {
            // Best effort as well: a journal that went away costs no backup.
            let _ = system.send(level, &msg, &fields);
        }
    }

    fn flush(&self) {}
}

/// The client of a pull was told snaprsync's failure in-band (`wire`): the
/// line goes to the log, not again to stderr, which the client shows too.
/// The most warnings a run keeps for its record, and the most characters of each.
pub const MAX_WARNINGS: usize = 20;
const MAX_WARNING_CHARS: usize = 500;

/// The warnings and errors this process logged, for its record in the history.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn note_warning(msg: &str) {
    if let Ok(mut w) = WARNINGS.lock() {
        if w.len() < MAX_WARNINGS {
            w.push(msg.chars().take(MAX_WARNING_CHARS).collect());
        }
    }
}

/// Every warning and error logged so far (the first [`MAX_WARNINGS`]).
pub fn warnings() -> Vec<String> {
    WARNINGS.lock().map(|w| w.clone()).unwrap_or_default()
}

static IN_BAND: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records whether the failure went in-band (see [`told_in_band`]).
pub fn in_band(told: bool) {
    IN_BAND.store(told, std::sync::atomic::Ordering::SeqCst);
}

/// Whether the final line went to the client in-band, so not to stderr.
pub fn told_in_band() -> bool {
    IN_BAND.load(std::sync::atomic::Ordering::SeqCst)
}

fn open(p: &Path, what: &str) -> Option<Mutex<File>> {
    match OpenOptions::new().create(true).append(true).open(p) {
        Ok(f) => Some(Mutex::new(f)),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "snaprsync: cannot open {what} {}: {e}; logging to stderr only", p.display());
            None
        }
    }
}

/// The files to append to, each once, with the key that named it.
fn file_paths(d: &Destinations) -> Vec<(&Path, &'static str)> {
    let mut out = Vec::new();
    if let LogTarget::File(p) = &d.target {
        out.push((p.as_path(), "log"));
    }
    if let Some(p) = d.file.as_deref().filter(|p| !out.iter().any(|(o, _)| o == p)) {
        out.push((p, "log_file"));
    }
    out
}

/// Where `log = "auto"` writes when it finds neither the journal nor syslog
/// (a container, a minimal VM): the package rotates it with logrotate.
#[cfg(unix)]
pub const AUTO_FALLBACK: Option<&str> = Some("/var/log/snaprsync.log");
#[cfg(not(unix))]
pub const AUTO_FALLBACK: Option<&str> = None;

/// The file `auto` falls back to, unless a system log was found or the
/// file is already one of `d`'s.
fn auto_fallback(d: &Destinations, system_found: bool) -> Option<&'static Path> {
    let p = Path::new(AUTO_FALLBACK?);
    (d.target == LogTarget::Auto && !system_found && d.file.as_deref() != Some(p)).then_some(p)
}

/// Installs the logger once. A destination that cannot be had is reported on
/// stderr and otherwise ignored: logging must never cost a backup.
pub fn init(d: &Destinations) {
    let system = SystemLog::for_target(&d.target).unwrap_or_else(|e| {
        let _ = writeln!(std::io::stderr(), "snaprsync: {e}; logging to stderr only");
        None
    });
    let mut files: Vec<Mutex<File>> = file_paths(d).into_iter().filter_map(|(p, what)| open(p, what)).collect();
    // Quietly: a user who is not root cannot write there, and needs no line about it.
    if let Some(f) = auto_fallback(d, system.is_some()).and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok()) {
        files.push(Mutex::new(f));
    }
    let logger = Logger { level: d.level, stderr_all: d.target == LogTarget::Stderr, files, system };
    let max = if logger.wants(Level::Error) { d.level.max(LevelFilter::Warn) } else { LevelFilter::Warn };
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// Before the config is read: warnings and errors on stderr only.
pub fn init_stderr() {
    init(&Destinations { target: LogTarget::Stderr, file: None, level: LevelFilter::Warn });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_logger(path: &Path) -> Logger {
        let file = OpenOptions::new().create(true).append(true).open(path).unwrap();
        Logger { level: LevelFilter::Debug, stderr_all: false, files: vec![Mutex::new(file)], system: None }
    }

    #[test]
    fn one_record_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let logger = file_logger(&path);
        let name = "/srv/x\n2026-01-01T00:00:00Z [1] restricted mode accepted\r\x1b[2K";
        logger.log(&Record::builder().level(Level::Info).args(format_args!("refused: {name}")).build());
        logger.log(&Record::builder().level(Level::Debug).args(format_args!("second")).build());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert!(lines[0].ends_with("refused: /srv/x\\n2026-01-01T00:00:00Z [1] restricted mode accepted\\r\\x1b[2K"), "{text:?}");
        assert!(!text.contains('\r') && !text.contains('\x1b'));
    }

    #[test]
    fn key_values_follow_the_text_and_stay_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let logger = file_logger(&path);
        let kvs: [(&str, Value); 4] = [
            ("run", Value::from("snaprsync-20260101T000000Z-p1")),
            ("sources", Value::from("/srv/a b,/x\ny")),
            ("status", Value::from(0u8)),
            ("empty", Value::from("")),
        ];
        let kvs: &[(&str, Value)] = &kvs;
        logger.log(&Record::builder().level(Level::Info).args(format_args!("summary")).key_values(&kvs).build());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(
            text.trim_end().ends_with(r#"summary run=snaprsync-20260101T000000Z-p1 sources="/srv/a b,/x\\ny" status=0 empty="""#),
            "{text:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn auto_without_a_system_log_falls_back_to_var_log() {
        let d = |target, file: Option<&str>| Destinations { target, file: file.map(PathBuf::from), level: LevelFilter::Info };
        let var_log = Some(Path::new("/var/log/snaprsync.log"));
        assert_eq!(auto_fallback(&d(LogTarget::Auto, None), false), var_log);
        assert_eq!(auto_fallback(&d(LogTarget::Auto, Some("/l/b.log")), false), var_log, "log_file is another file");
        assert_eq!(auto_fallback(&d(LogTarget::Auto, Some("/var/log/snaprsync.log")), false), None, "once");
        assert_eq!(auto_fallback(&d(LogTarget::Auto, None), true), None, "a system log was found");
        assert_eq!(auto_fallback(&d(LogTarget::Stderr, None), false), None);
        assert_eq!(auto_fallback(&d(LogTarget::Journald, None), false), None);
    }

    #[test]
    fn files_are_log_and_log_file_each_once() {
        let (a, b) = (PathBuf::from("/l/a.log"), PathBuf::from("/l/b.log"));
        let d = |target, file: Option<&PathBuf>| Destinations { target, file: file.cloned(), level: LevelFilter::Info };
        let paths = |d: &Destinations| file_paths(d).into_iter().map(|(p, w)| (p.to_owned(), w)).collect::<Vec<_>>();
        assert_eq!(paths(&d(LogTarget::File(a.clone()), Some(&a))), [(a.clone(), "log")]);
        assert_eq!(paths(&d(LogTarget::File(a.clone()), Some(&b))), [(a.clone(), "log"), (b.clone(), "log_file")]);
        assert_eq!(paths(&d(LogTarget::Journald, Some(&b))), [(b, "log_file")]);
        assert!(paths(&d(LogTarget::Auto, None)).is_empty());
    }
}
