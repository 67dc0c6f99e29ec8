//! The system logs administrators read: systemd's journal and syslog, each
//! one datagram per record to a local socket (the journal's native protocol,
//! and the traditional `/dev/log` line). Building the datagrams is pure; the
//! sockets are the host's (`crate::host`), so a platform without them has none.

use std::path::PathBuf;

use log::Level;

use crate::config::LogTarget;

/// The name records carry (`journalctl -t snaprsync`, syslog's tag).
pub const IDENTIFIER: &str = "snaprsync";

/// syslog's facility "daemon": snaprsync runs unattended, started by sshd.
const FACILITY_DAEMON: u8 = 3;

/// A message longer than this is cut: one datagram must hold a record.
const MAX_MESSAGE: usize = 32 * 1024;

/// Which system log, and its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemLog {
    Journald(PathBuf),
    Syslog(PathBuf),
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
            LogTarget::Auto => Ok(exists(&journal).map(SystemLog::Journald).or_else(|| exists(&syslog).map(SystemLog::Syslog))),
            LogTarget::Journald => named("journald", journal).map(|p| Some(SystemLog::Journald(p))),
            LogTarget::Syslog => named("syslog", syslog).map(|p| Some(SystemLog::Syslog(p))),
            LogTarget::Stderr | LogTarget::File(_) => Ok(None),
        }
    }

    /// A short description for messages: `the journal (/run/systemd/journal/socket)`.
    pub fn describe(&self) -> String {
        match self {
            SystemLog::Journald(p) => format!("the journal ({})", p.display()),
            SystemLog::Syslog(p) => format!("syslog ({})", p.display()),
        }
    }

    /// Sends one record; `fields` are the record's key-value pairs.
    pub fn send(&self, level: Level, message: &str, fields: &[(String, String)]) -> std::io::Result<()> {
        match self {
            SystemLog::Journald(p) => crate::host::send_datagram(p, &journald_datagram(level, message, fields)),
            SystemLog::Syslog(p) => crate::host::send_datagram(p, &syslog_datagram(level, message)),
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

fn cut(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE;
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
}
