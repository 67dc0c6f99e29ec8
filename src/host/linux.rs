//! The host on Linux: fixed paths, and process identity from `/proc`.

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

pub fn default_config_path() -> PathBuf {
    PathBuf::from("/etc/snaprsync/config.toml")
}

pub fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/snaprsync")
}

pub fn root_dir() -> PathBuf {
    PathBuf::from("/")
}

pub fn detach(cmd: &mut Command) {
    // Its own process group: no signal meant for the session's group reaches it.
    cmd.process_group(0);
}

pub fn rsync_file_name() -> &'static OsStr {
    OsStr::new("rsync")
}

pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    proc_start_time(&stat)
}

pub fn process_started_at(pid: u32) -> Option<SystemTime> {
    let ticks = process_start(pid)?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??.max(1) as u64;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(btime) + Duration::from_millis(ticks * 1000 / hz))
}

pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_owned()).unwrap_or_default()
}

pub fn journald_socket() -> Option<PathBuf> {
    Some(PathBuf::from("/run/systemd/journal/socket"))
}

pub fn syslog_socket() -> Option<PathBuf> {
    Some(PathBuf::from("/dev/log"))
}

pub fn send_datagram(socket: &Path, bytes: &[u8]) -> std::io::Result<()> {
    UnixDatagram::unbound()?.send_to(bytes, socket).map(drop)
}

/// The event log is Windows'.
pub const HAS_EVENT_LOG: bool = false;

pub fn report_event(_source: &str, _kind: u16, _id: u32, _message: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no event log on Linux"))
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks after boot); `None`
/// for a process that has ended but not been reaped (a zombie cannot clean up).
/// The command name (field 2) may hold spaces and parentheses, so count from the last `)`.
fn proc_start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_command_names() {
        let stat = "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(proc_start_time(stat), Some(987654));
        assert_eq!(proc_start_time(&stat.replace(" S 1 ", " Z 1 ")), None, "a zombie is not alive");
        assert_eq!(proc_start_time("garbage"), None);
    }

    #[test]
    fn this_process_has_a_start_and_a_boot() {
        let me = std::process::id();
        assert!(process_start(me).is_some());
        assert!(process_started_at(me).is_some_and(|t| t <= SystemTime::now()));
        assert!(!boot_id().is_empty());
    }
}
