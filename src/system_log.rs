//! The system logs administrators read: systemd's journal and syslog, each
//! one datagram per record to a local socket (the journal's native protocol,
//! and the traditional `/dev/log` line), and Windows' Application event log.
//! Building the records is pure; the sockets and the event log are the
//! host's (`crate::host`), so a platform without them has none.
//!
//! An event record's text is its one insertion string. The installer
//! registers the source with `%SystemRoot%\System32\EventCreate.exe` as its
//! message file (what `eventcreate` and Go's `eventlog.InstallAsEventCreate`
//! register): its message for every ID from 1 to 1000 is `%1`, so Event
//! Viewer shows the text as it is, with no message DLL of snaprsync's.

use std::path::PathBuf;

use log::Level;

use crate::config::LogTarget;

/// The name records carry (`journalctl -t snaprsync`, syslog's tag).
pub const IDENTIFIER: &str = "snaprsync";

/// syslog's facility "daemon": snaprsync runs unattended, started by sshd.
const FACILITY_DAEMON: u8 = 3;

/// A message longer than this is cut: one datagram must hold a record.
const MAX_MESSAGE: usize = 32 * 1024;

/// An event's insertion string may have 31,839 characters: this many bytes
/// of UTF-8 are never more UTF-16 units than that.
const MAX_EVENT_MESSAGE: usize = 31_000;

/// Which system log, and its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemLog {
    Journald(PathBuf),
    Syslog(PathBuf),
    /// Windows' Application log, under source [`IDENTIFIER`].
    EventLog,
}

/// Why a system log named in the config cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("log = \"{which}\": there is no {which} on this system")]
    NotOnThisSystem { which: &'static str },
    #[error("log = \"{which}\": no socket at {}; is {which} running?", socket.display())]
    NoSocket { which: &'static str, socket: PathBuf },
}

impl SystemLog {
    /// The system log `target` names: `Ok(None)` for a target that is not one
    /// (stderr, a file) and for `auto` where neither socket exists.
    pub fn for_target(target: &LogTarget) -> Result<Option<SystemLog>, Unavailable> {
        let journal = crate::host::journald_socket();
        let syslog = crate::host::syslog_socket();
        let exists = |p: &Option<PathBuf>| p.clone().filter(|p| p.exists());
        match target {
            LogTarget::Auto => Ok(exists(&journal)
                .map(SystemLog::Journald)
                .or_else(|| exists(&syslog).map(SystemLog::Syslog))
                .or_else(|| crate::host::HAS_EVENT_LOG.then_some(SystemLog::EventLog))),
            LogTarget::Journald => named("journald", journal).map(|p| Some(SystemLog::Journald(p))),
            LogTarget::Syslog => named("syslog", syslog).map(|p| Some(SystemLog::Syslog(p))),
            LogTarget::EventLog if crate::host::HAS_EVENT_LOG => Ok(Some(SystemLog::EventLog)),
            LogTarget::EventLog => Err(Unavailable::NotOnThisSystem { which: "eventlog" }),
            LogTarget::Stderr | LogTarget::File(_) => Ok(None),
        }
    }

    /// A short description for messages: `the journal (/run/systemd/journal/socket)`.
    pub fn describe(&self) -> String {
        match self {
            SystemLog::Journald(p) => format!("the journal ({})", p.display()),
            SystemLog::Syslog(p) => format!("syslog ({})", p.display()),
            SystemLog::EventLog => format!("the Application event log (source {IDENTIFIER})"),
        }
    }

    /// Sends one record; `fields` are the record's key-value pairs.
    pub fn send(&self, level: Level, message: &str, fields: &[(String, String)]) -> std::io::Result<()> {
        match self {
            SystemLog::Journald(p) => crate::host::send_datagram(p, &journald_datagram(level, message, fields)),
            SystemLog::Syslog(p) => crate::host::send_datagram(p, &syslog_datagram(level, message)),
            SystemLog::EventLog => {
                let (kind, id) = event_type_and_id(level);
                crate::host::report_event(IDENTIFIER, kind, id, cut_to(message, MAX_EVENT_MESSAGE))
            }
        }
    }
}

fn named(which: &'static str, socket: Option<PathBuf>) -> Result<PathBuf, Unavailable> {
    match socket {
        None => Err(Unavailable::NotOnThisSystem { which }),
        Some(p) if !p.exists() => Err(Unavailable::NoSocket { which, socket: p }),
        Some(p) => Ok(p),
    }
}

/// syslog's severity for a level (journald's PRIORITY is the same number).
fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// An event's type (`EVENTLOG_ERROR_TYPE` 1, `_WARNING_TYPE` 2,
/// `_INFORMATION_TYPE` 4) and its ID, one per type, within EventCreate.exe's
/// 1 to 1000: 1 information, 2 warning, 3 error.
pub fn event_type_and_id(level: Level) -> (u16, u32) {
    match level {
        Level::Error => (1, 3),
        Level::Warn => (2, 2),
        Level::Info | Level::Debug | Level::Trace => (4, 1),
    }
}

fn cut(message: &str) -> &str {
    cut_to(message, MAX_MESSAGE)
}

fn cut_to(message: &str, max: usize) -> &str {
    if message.len() <= max {
        return message;
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// A journal field name for a record's key: `SNAPRSYNC_` and the key in
/// upper case, anything but letters and digits as `_` (the journal's rule).
pub fn field_name(key: &str) -> String {
    let tail: String = key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("SNAPRSYNC_{tail}")
}

/// One record in the journal's native protocol: `NAME=value` lines, or for a
/// value holding a newline, the name, a newline, its length as 64-bit little
/// endian, the value and a newline.
pub fn journald_datagram(level: Level, message: &str, fields: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 128);
    let mut field = |name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    };
    field("MESSAGE", cut(message));
    field("PRIORITY", &severity(level).to_string());
    field("SYSLOG_IDENTIFIER", IDENTIFIER);
    field("SYSLOG_FACILITY", &FACILITY_DAEMON.to_string());
    for (k, v) in fields {
        field(&field_name(k), cut(v));
    }
    out
}

/// One record for the local syslog socket: `<PRI>snaprsync[PID]: message`.
/// No timestamp: the local receiver stamps it (rsyslog and journald do, and
/// a timestamp would have to be in local time, which std cannot tell).
pub fn syslog_datagram(level: Level, message: &str) -> Vec<u8> {
    let pri = FACILITY_DAEMON * 8 + severity(level);
    format!("<{pri}>{IDENTIFIER}[{}]: {}", std::process::id(), cut(message)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_fields_and_binary_values() {
        let d =
            journald_datagram(Level::Info, "summary run=x", &[("run".into(), "snaprsync-1-p2".into()), ("odd key".into(), "a\nb".into())]);
        let want_head = "MESSAGE=summary run=x\nPRIORITY=6\nSYSLOG_IDENTIFIER=snaprsync\nSYSLOG_FACILITY=3\nSNAPRSYNC_RUN=snaprsync-1-p2\n";
        assert!(d.starts_with(want_head.as_bytes()), "{:?}", String::from_utf8_lossy(&d));
        let mut tail = b"SNAPRSYNC_ODD_KEY\n".to_vec();
        tail.extend_from_slice(&3u64.to_le_bytes());
        tail.extend_from_slice(b"a\nb\n");
        assert!(d.ends_with(&tail));
    }

    #[test]
    fn syslog_line() {
        let d = syslog_datagram(Level::Warn, "careful");
        assert_eq!(d, format!("<28>snaprsync[{}]: careful", std::process::id()).into_bytes());
        assert!(syslog_datagram(Level::Error, "x").starts_with(b"<27>"));
    }

    #[test]
    fn long_messages_are_cut_on_a_character() {
        let long = "é".repeat(MAX_MESSAGE);
        let c = cut(&long);
        assert!(c.len() <= MAX_MESSAGE && c.chars().all(|ch| ch == 'é'));
    }

    #[test]
    fn event_types_and_ids_are_windows_own_within_eventcreates_range() {
        assert_eq!(event_type_and_id(Level::Error), (1, 3));
        assert_eq!(event_type_and_id(Level::Warn), (2, 2));
        assert_eq!(event_type_and_id(Level::Info), (4, 1));
        assert_eq!(event_type_and_id(Level::Debug), (4, 1));
        let long = "€".repeat(MAX_EVENT_MESSAGE);
        assert!(cut_to(&long, MAX_EVENT_MESSAGE).encode_utf16().count() <= 31_839);
    }

    #[test]
    fn the_event_log_is_windows_alone() {
        let got = SystemLog::for_target(&LogTarget::EventLog);
        if cfg!(windows) {
            assert_eq!(got, Ok(Some(SystemLog::EventLog)));
            assert_eq!(SystemLog::for_target(&LogTarget::Auto), Ok(Some(SystemLog::EventLog)), "auto is the event log");
        } else {
            assert_eq!(got, Err(Unavailable::NotOnThisSystem { which: "eventlog" }));
            assert_ne!(SystemLog::for_target(&LogTarget::Auto), Ok(Some(SystemLog::EventLog)));
        }
    }

    #[test]
    fn field_names_follow_the_journals_rule() {
        assert_eq!(field_name("rsync_status"), "SNAPRSYNC_RSYNC_STATUS");
        assert_eq!(field_name("a-b.c"), "SNAPRSYNC_A_B_C");
    }

    #[cfg(unix)]
    #[test]
    fn a_record_arrives_as_one_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        SystemLog::Journald(path.clone()).send(Level::Error, "boom", &[("run".into(), "r".into())]).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = rx.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(got.starts_with("MESSAGE=boom\nPRIORITY=3\n") && got.ends_with("SNAPRSYNC_RUN=r\n"), "{got:?}");
        SystemLog::Syslog(path).send(Level::Info, "hello", &[]).unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"<30>snaprsync["), "{:?}", String::from_utf8_lossy(&buf[..n]));
    }

    /// RegisterEventSourceW and ReportEventW succeed for records of each
    /// type. Wine keeps no event log to read them back from: `scripts/windows.sh
    /// test` reads what wine's ReportEventW traces instead (`eventlog_check`).
    #[cfg(windows)]
    #[test]
    fn records_of_each_type_are_reported() {
        for level in [Level::Error, Level::Warn, Level::Info, Level::Debug] {
            SystemLog::EventLog.send(level, &format!("snaprsync unit test: a {level} record"), &[("run".into(), "r".into())]).unwrap();
        }
    }
}
