//! The host on Windows: paths under `%ProgramData%`, process identity from
//! the process's creation time (FILETIME, absolute across reboots), and the
//! Application event log (RegisterEventSourceW / ReportEventW). Those system
//! calls are FFI.

#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use windows_sys::Win32::Foundation::{CloseHandle, FILETIME, STILL_ACTIVE};
use windows_sys::Win32::System::EventLog::{DeregisterEventSource, RegisterEventSourceW, ReportEventW};
use windows_sys::Win32::System::Threading::{GetExitCodeProcess, GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};

fn program_data() -> PathBuf {
    PathBuf::from(std::env::var_os("ProgramData").unwrap_or_else(|| OsString::from(r"C:\ProgramData"))).join("snaprsync")
}

pub fn default_config_path() -> PathBuf {
    program_data().join("config.toml")
}

pub fn default_state_dir() -> PathBuf {
    program_data().join("state")
}

pub fn root_dir() -> PathBuf {
    // `C:` plus a separator: the drive's root, not its current directory.
    std::env::var_os("SystemDrive").map_or_else(
        || PathBuf::from(r"C:\"),
        |mut d| {
            d.push("\\");
            PathBuf::from(d)
        },
    )
}

pub fn detach(cmd: &mut Command) {
    use std::os::windows::process::CommandExt;
    // DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP: no console, no console events.
    cmd.creation_flags(0x0000_0008 | 0x0000_0200);
}

pub fn rsync_file_name() -> &'static OsStr {
    OsStr::new("rsync.exe")
}

/// The journal and syslog are Linux's: Windows has the event log.
pub fn journald_socket() -> Option<PathBuf> {
    None
}

pub fn syslog_socket() -> Option<PathBuf> {
    None
}

pub fn send_datagram(socket: &Path, _bytes: &[u8]) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, format!("no local datagram sockets on Windows ({})", socket.display())))
}

pub const HAS_EVENT_LOG: bool = true;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// One record in the Application log under `source`: event type `kind`
/// (`EVENTLOG_*_TYPE`), ID `id`, and `message` as its one insertion string.
/// The source is registered per record: a run writes a few, and no handle
/// outlives the call.
pub fn report_event(source: &str, kind: u16, id: u32, message: &str) -> std::io::Result<()> {
    let source = wide(source);
    // A NUL inside would end the string early: none is written.
    let text: Vec<u16> = message.encode_utf16().filter(|&u| u != 0).chain(std::iter::once(0)).collect();
    // SAFETY: a NUL-terminated source name; null server means this machine.
    let h = unsafe { RegisterEventSourceW(std::ptr::null(), source.as_ptr()) };
    if h.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    let strings = [text.as_ptr()];
    // SAFETY: a live handle from RegisterEventSourceW; one NUL-terminated
    // string, as wNumStrings says; no SID, no raw data.
    let ok = unsafe { ReportEventW(h, kind, 0, id, std::ptr::null_mut(), 1, 0, strings.as_ptr(), std::ptr::null()) };
    let err = (ok == 0).then(std::io::Error::last_os_error);
    // SAFETY: the handle is ours and is not used again.
    unsafe { DeregisterEventSource(h) };
    err.map_or(Ok(()), Err)
}

/// When process `pid` started (FILETIME, 100 ns since 1601); `None` if it is gone.
pub fn process_start(pid: u32) -> Option<u64> {
    // SAFETY: a plain call; the handle is closed below.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if h.is_null() {
        return None;
    }
    let mut t = [FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 }; 4];
    let [c, e, k, u] = &mut t;
    // SAFETY: a live process handle and four valid out pointers.
    let ok = unsafe { GetProcessTimes(h, c, e, k, u) };
    let mut code = 0;
    // SAFETY: as above, valid out pointer.
    let alive = unsafe { GetExitCodeProcess(h, &mut code) } != 0 && code == STILL_ACTIVE as u32;
    // SAFETY: we own the handle.
    unsafe { CloseHandle(h) };
    (ok != 0 && alive).then(|| (u64::from(t[0].dwHighDateTime) << 32) | u64::from(t[0].dwLowDateTime))
}

pub fn process_started_at(pid: u32) -> Option<SystemTime> {
    // FILETIME counts 100 ns from 1601-01-01; the Unix epoch is this many later.
    const EPOCH: u64 = 116_444_736_000_000_000;
    let t = process_start(pid)?.checked_sub(EPOCH)?;
    Some(UNIX_EPOCH + Duration::from_nanos(t.saturating_mul(100)))
}

/// Process start times are absolute (FILETIME), so they alone tell a live run
/// from a dead one across reboots: the boot needs no id.
pub fn boot_id() -> String {
    "windows".into()
}
