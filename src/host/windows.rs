//! The host on Windows: paths under `%ProgramData%`, and process identity from
//! the process's creation time (FILETIME, absolute across reboots). The one
//! system call here is FFI.

#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use windows_sys::Win32::Foundation::{CloseHandle, FILETIME, STILL_ACTIVE};
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

/// The journal is Linux's; the Application event log is not written yet.
pub fn journald_socket() -> Option<PathBuf> {
    None
}

pub fn syslog_socket() -> Option<PathBuf> {
    None
}

pub fn send_datagram(socket: &Path, _bytes: &[u8]) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, format!("no local datagram sockets on Windows ({})", socket.display())))
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
