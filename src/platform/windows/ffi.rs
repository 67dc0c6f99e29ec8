//! Every Win32 call of the Windows platform, as small safe functions: drive
//! letters (DefineDosDevice / QueryDosDevice, and the lock runs share to pick
//! one), the token's backup privileges, the console control handler,
//! and the Job Object that ties rsync's life to snaprsync's.
//!
//! All `unsafe` of `platform::windows` is in this file, the only module of it
//! that may have any; every block says why it holds.
#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::io::AsRawHandle;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::Duration;

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_NOT_ALL_ASSIGNED, HANDLE, LUID, WAIT_ABANDONED, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::{
    AdjustTokenPrivileges, LookupPrivilegeValueW, LUID_AND_ATTRIBUTES, SE_PRIVILEGE_ENABLED, TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES,
    TOKEN_QUERY,
};
use windows_sys::Win32::Storage::FileSystem::{
    DefineDosDeviceW, GetDiskFreeSpaceExW, GetFileAttributesW, GetLogicalDrives, QueryDosDeviceW, DDD_EXACT_MATCH_ON_REMOVE,
    DDD_NO_BROADCAST_SYSTEM, DDD_RAW_TARGET_PATH, DDD_REMOVE_DEFINITION, INVALID_FILE_ATTRIBUTES,
};
use windows_sys::Win32::System::Console::{
    SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation, SetInformationJobObject, TerminateJobObject,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    CreateMutexW, GetCurrentProcess, GetCurrentThread, OpenProcessToken, OpenThread, ReleaseMutex, ResumeThread, SetThreadPriority,
    WaitForSingleObject, THREAD_PRIORITY_IDLE, THREAD_SUSPEND_RESUME,
};

/// The exit status snaprsync gives rsync when it ends it on a console event
/// (128 + SIGINT, as on Linux).
pub const KILLED_STATUS: u32 = 130;

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// Bytes the caller may still write, and the size, of the volume holding `path`.
pub fn disk_space(path: &std::path::Path) -> io::Result<(u64, u64)> {
    let p = wide(path.as_os_str());
    let (mut available, mut total, mut free) = (0u64, 0u64, 0u64);
    // SAFETY: NUL-terminated path; the three out-pointers are valid u64s.
    let ok = unsafe { GetDiskFreeSpaceExW(p.as_ptr(), &mut available, &mut total, &mut free) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((available, total))
}

/// Gives the calling thread idle priority: it runs only when nothing else wants the CPU.
pub fn idle_thread_priority() -> io::Result<()> {
    // SAFETY: the pseudo-handle of the calling thread; no pointers.
    if unsafe { SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_IDLE) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The GetLogicalDrives bitmask (bit 0 = A:).
pub fn logical_drives() -> u32 {
    // SAFETY: no arguments.
    unsafe { GetLogicalDrives() }
}

/// Whether the shadow copy device `target` (`\Device\HarddiskVolumeShadowCopy7`)
/// still exists: its root can be read.
pub fn device_exists(target: &str) -> bool {
    let root = wide(OsStr::new(&format!(r"\\?\GLOBALROOT{}\", target.trim_end_matches('\\'))));
    // SAFETY: a NUL-terminated path.
    let attrs = unsafe { GetFileAttributesW(root.as_ptr()) };
    attrs != INVALID_FILE_ATTRIBUTES
}

/// The current targets of DOS device `name` (`R:`), newest first; empty if none.
pub fn query_dos_device(name: &str) -> Vec<String> {
    let n = wide(OsStr::new(name));
    let mut buf = vec![0u16; 4096];
    // SAFETY: NUL-terminated name; `buf` is writable for its length.
    let len = unsafe { QueryDosDeviceW(n.as_ptr(), buf.as_mut_ptr(), buf.len() as u32) } as usize;
    if len == 0 {
        return Vec::new();
    }
    OsString::from_wide(&buf[..len.min(buf.len())]).to_string_lossy().split('\0').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Maps `letter:` to the NT path `target` (DDD_RAW_TARGET_PATH) for this
/// logon session, without telling every window of the system
/// (DDD_NO_BROADCAST_SYSTEM: the broadcast can stall on a hung window, and
/// nobody but rsync needs the letter).
pub fn define_letter(letter: char, target: &str) -> io::Result<()> {
    let n = wide(OsStr::new(&format!("{letter}:")));
    let t = wide(OsStr::new(target));
    // SAFETY: both strings are NUL-terminated.
    let ok = unsafe { DefineDosDeviceW(DDD_RAW_TARGET_PATH | DDD_NO_BROADCAST_SYSTEM, n.as_ptr(), t.as_ptr()) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes exactly the mapping of `letter:` to `target`, nothing else.
pub fn remove_letter(letter: char, target: &str) -> io::Result<()> {
    let n = wide(OsStr::new(&format!("{letter}:")));
    let t = wide(OsStr::new(target));
    let flags = DDD_REMOVE_DEFINITION | DDD_EXACT_MATCH_ON_REMOVE | DDD_RAW_TARGET_PATH | DDD_NO_BROADCAST_SYSTEM;
    // SAFETY: both strings are NUL-terminated.
    let ok = unsafe { DefineDosDeviceW(flags, n.as_ptr(), t.as_ptr()) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// This process's token, opened to read and adjust its privileges.
struct Token(HANDLE);

impl Token {
    fn open() -> io::Result<Token> {
        let mut h: HANDLE = std::ptr::null_mut();
        // SAFETY: the pseudo handle of this process and a valid out pointer.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &mut h) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Token(h))
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        // SAFETY: the token handle opened above, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

fn privilege_luid(name: &str) -> io::Result<LUID> {
    let n = wide(OsStr::new(name));
    let mut luid = LUID { LowPart: 0, HighPart: 0 };
    // SAFETY: the local system (null), a NUL-terminated name, a valid out pointer.
    if unsafe { LookupPrivilegeValueW(std::ptr::null(), n.as_ptr(), &mut luid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(luid)
}

/// Enables (or disables) privilege `name` (`SeBackupPrivilege`) in this
/// process's token, which the programs it starts inherit; `Ok(false)` when
/// the token does not hold it at all (the account lacks the right).
pub fn set_privilege(name: &str, enable: bool) -> io::Result<bool> {
    let token = Token::open()?;
    let luid = privilege_luid(name)?;
    let state = TOKEN_PRIVILEGES {
        PrivilegeCount: 1,
        Privileges: [LUID_AND_ATTRIBUTES { Luid: luid, Attributes: if enable { SE_PRIVILEGE_ENABLED } else { 0 } }],
    };
    // SAFETY: a token opened with TOKEN_ADJUST_PRIVILEGES; one privilege in
    // `state`; no previous state asked for.
    let ok = unsafe { AdjustTokenPrivileges(token.0, 0, &state, 0, std::ptr::null_mut(), std::ptr::null_mut()) };
    // SAFETY: no arguments; read at once after the call.
    let err = unsafe { GetLastError() };
    if ok == 0 {
        return Err(io::Error::from_raw_os_error(err as i32));
    }
    // It succeeds without assigning what the token does not hold.
    Ok(err != ERROR_NOT_ALL_ASSIGNED)
}

/// Whether privilege `name` is held by this process's token and enabled:
/// `None` when not held.
#[cfg(test)]
pub fn privilege_enabled(name: &str) -> io::Result<Option<bool>> {
    use windows_sys::Win32::Security::{GetTokenInformation, TokenPrivileges};
    let token = Token::open()?;
    let luid = privilege_luid(name)?;
    let mut buf = vec![0u64; 1024];
    let mut len = 0u32;
    // SAFETY: a token opened with TOKEN_QUERY; `buf` is writable (and u64-aligned) for its size.
    let ok = unsafe { GetTokenInformation(token.0, TokenPrivileges, buf.as_mut_ptr().cast(), (buf.len() * 8) as u32, &mut len) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: GetTokenInformation wrote a TOKEN_PRIVILEGES with
    // PrivilegeCount entries into `buf`, which is aligned for it.
    let found = unsafe {
        let tp = &*buf.as_ptr().cast::<TOKEN_PRIVILEGES>();
        let all = std::slice::from_raw_parts(tp.Privileges.as_ptr(), tp.PrivilegeCount as usize);
        all.iter()
            .find(|p| p.Luid.LowPart == luid.LowPart && p.Luid.HighPart == luid.HighPart)
            .map(|p| p.Attributes & SE_PRIVILEGE_ENABLED != 0)
    };
    Ok(found)
}

/// The application manifest embedded in `exe` (resource 1 of type
/// RT_MANIFEST), read with the exe loaded as data only (tests).
#[cfg(test)]
pub fn manifest_of(exe: &std::path::Path) -> io::Result<String> {
    use windows_sys::Win32::Foundation::FreeLibrary;
    use windows_sys::Win32::System::LibraryLoader::{
        FindResourceW, LoadLibraryExW, LoadResource, LockResource, SizeofResource, LOAD_LIBRARY_AS_DATAFILE,
    };
    let p = wide(exe.as_os_str());
    // SAFETY: a NUL-terminated path; as a data file nothing of it runs.
    let module = unsafe { LoadLibraryExW(p.as_ptr(), std::ptr::null_mut(), LOAD_LIBRARY_AS_DATAFILE) };
    if module.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a loaded module; MAKEINTRESOURCE(1) and RT_MANIFEST (24) are
    // integer resource names, as FindResourceW takes them.
    let text = unsafe {
        let res = FindResourceW(module, 1 as _, 24 as _);
        let data = if res.is_null() { std::ptr::null_mut() } else { LockResource(LoadResource(module, res)) };
        let text = if data.is_null() {
            Err(io::Error::last_os_error())
        } else {
            let bytes = std::slice::from_raw_parts(data.cast::<u8>(), SizeofResource(module, res) as usize);
            Ok(String::from_utf8_lossy(bytes).into_owned())
        };
        FreeLibrary(module);
        text
    };
    text
}

/// The lock every snaprsync run of this machine holds while it chooses,
/// maps and checks a drive letter (a named mutex, in the global namespace
/// where the account may make one), so that two runs never pick the same
/// free letter. Released on drop; a holder that died leaves it abandoned,
/// which counts as free.
pub struct LetterLock(HANDLE);

impl LetterLock {
    pub fn acquire(limit: Duration) -> io::Result<LetterLock> {
        let mut last = io::Error::other("no mutex name tried");
        for name in [r"Global\snaprsync-drive-letters", r"Local\snaprsync-drive-letters"] {
            let n = wide(OsStr::new(name));
            // SAFETY: default security, not initially owned, a NUL-terminated name.
            let h = unsafe { CreateMutexW(std::ptr::null(), 0, n.as_ptr()) };
            if h.is_null() {
                last = io::Error::last_os_error();
                continue;
            }
            // SAFETY: a live mutex handle; a bounded wait.
            let w = unsafe { WaitForSingleObject(h, limit.as_millis().min(u32::MAX as u128 - 1) as u32) };
            if w == WAIT_OBJECT_0 || w == WAIT_ABANDONED {
                return Ok(LetterLock(h));
            }
            // SAFETY: the handle opened above, closed once.
            unsafe { CloseHandle(h) };
            return Err(if w == WAIT_TIMEOUT { io::Error::from(io::ErrorKind::TimedOut) } else { io::Error::last_os_error() });
        }
        Err(last)
    }
}

impl Drop for LetterLock {
    fn drop(&mut self) {
        // SAFETY: this thread owns the mutex (acquired above); the handle is closed once.
        unsafe {
            ReleaseMutex(self.0);
            CloseHandle(self.0);
        }
    }
}

/// Resumes the threads of `child`, started with CREATE_SUSPENDED so that it
/// joined its job before running a single instruction (std gives no handle
/// to its main thread, so they are found in a thread snapshot).
pub fn resume(child: &Child) -> io::Result<()> {
    let pid = child.id();
    // SAFETY: a snapshot of the system's threads; closed below.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snap.is_null() || snap as isize == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an all-zero THREADENTRY32 is valid; dwSize is set before use.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
    let mut resumed = 0;
    // SAFETY: a live snapshot handle and an entry with its size set.
    let mut more = unsafe { Thread32First(snap, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: a thread id from the snapshot; the handle is closed below.
            let t = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
            if !t.is_null() {
                // SAFETY: a live thread handle with THREAD_SUSPEND_RESUME, closed once.
                let was = unsafe { ResumeThread(t) };
                // SAFETY: as above.
                unsafe { CloseHandle(t) };
                // u32::MAX: the call failed and the thread still sleeps.
                if was != u32::MAX {
                    resumed += 1;
                }
            }
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snap, &mut entry) } != 0;
    }
    // SAFETY: the snapshot handle, closed once.
    unsafe { CloseHandle(snap) };
    if resumed == 0 {
        return Err(io::Error::other(format!("no thread of process {pid} found to resume")));
    }
    Ok(())
}

/// A Job Object that kills every process in it when its last handle closes:
/// if snaprsync dies, however, rsync dies with it.
pub struct Job(HANDLE);

// SAFETY: a job handle may be used from any thread.
unsafe impl Send for Job {}
// SAFETY: as above; the calls made on it are thread-safe kernel calls.
unsafe impl Sync for Job {}

impl Job {
    pub fn new() -> io::Result<Job> {
        // SAFETY: null attributes and name: an anonymous job with default security.
        let h = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if h.is_null() {
            return Err(io::Error::last_os_error());
        }
        let job = Job(h);
        // SAFETY: an all-zero JOBOBJECT_EXTENDED_LIMIT_INFORMATION is valid (no limits).
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: a live job handle; `info` is the struct the class names, with its size.
        let ok = unsafe {
            SetInformationJobObject(
                job.0,
                JobObjectExtendedLimitInformation,
                (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(job)
    }

    pub fn assign(&self, child: &Child) -> io::Result<()> {
        // SAFETY: live job and process handles (the Child owns the latter).
        let ok = unsafe { AssignProcessToJobObject(self.0, child.as_raw_handle() as HANDLE) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn raw(&self) -> HANDLE {
        self.0
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: we own the handle; closing it kills what is still in the job.
        unsafe { CloseHandle(self.0) };
    }
}

/// The job of the rsync now running, for the console handler.
static RUNNING_JOB: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(std::ptr::null_mut());
/// Set once a console event asked snaprsync to stop.
static STOPPING: AtomicBool = AtomicBool::new(false);
static HANDLER: std::sync::Once = std::sync::Once::new();

/// Set by the main thread once every shadow copy and drive letter is released
/// (the run is over); a close, logoff or shutdown event waits for it.
static CLEANED: (std::sync::Mutex<bool>, std::sync::Condvar) = (std::sync::Mutex::new(false), std::sync::Condvar::new());

/// The run is over and everything it made is released: a console event that
/// waits may let Windows end the process now.
pub fn cleaned_up() {
    let mut done = CLEANED.0.lock().unwrap_or_else(|e| e.into_inner());
    *done = true;
    CLEANED.1.notify_all();
}

/// Waits until [`cleaned_up`], at most `limit`; whether it came.
fn wait_cleaned(limit: Duration) -> bool {
    let done = CLEANED.0.lock().unwrap_or_else(|e| e.into_inner());
    let (done, _) = CLEANED.1.wait_timeout_while(done, limit, |d| !*d).unwrap_or_else(|e| e.into_inner());
    *done
}

/// Whether a console event (Ctrl-C, Ctrl-Break, close, logoff, shutdown) arrived.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Ends the rsync in `job` (if any) with [`KILLED_STATUS`].
fn end_running() {
    let h = RUNNING_JOB.load(Ordering::SeqCst);
    if !h.is_null() {
        // SAFETY: the pointer is a job handle that stays open while it is
        // published (see `Running`); terminating an emptied job is harmless.
        unsafe { TerminateJobObject(h, KILLED_STATUS) };
    }
}

unsafe extern "system" fn on_console_event(event: u32) -> BOOL {
    // Windows sends every console process a logoff event when ANY user logs
    // off; under an ssh server (a service) that is not this run's session.
    if event == CTRL_LOGOFF_EVENT && std::env::var_os("SSH_CONNECTION").is_some() {
        return 1;
    }
    STOPPING.store(true, Ordering::SeqCst);
    match event {
        // rsync shares the console and sees these too; make sure it ends, and
        // let the main thread clean up.
        CTRL_C_EVENT | CTRL_BREAK_EVENT => {
            end_running();
            1
        }
        // Windows ends the process when this returns (or after ~5 s): end
        // rsync now, and return once the main thread has released the shadow
        // copy and the letter, not after a fixed time.
        CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => {
            end_running();
            if !wait_cleaned(Duration::from_millis(4500)) {
                log::warn!("console event {event}: cleanup still under way when Windows ends the process");
            }
            1
        }
        _ => 0,
    }
}

/// Installs the console control handler once per process.
pub fn install_console_handler() -> io::Result<()> {
    let mut result = Ok(());
    HANDLER.call_once(|| {
        // SAFETY: a function with the PHANDLER_ROUTINE signature that lives forever.
        if unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } == 0 {
            result = Err(io::Error::last_os_error());
        }
    });
    result
}

/// Publishes `job` to the console handler while alive.
pub struct Running<'a>(&'a Job);

impl<'a> Running<'a> {
    pub fn publish(job: &'a Job) -> Running<'a> {
        RUNNING_JOB.store(job.raw(), Ordering::SeqCst);
        if stopping() {
            end_running();
        }
        Running(job)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = RUNNING_JOB.compare_exchange(self.0.raw(), std::ptr::null_mut(), Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Forgets a console event and a finished cleanup (tests only: the flags are process-wide).
#[cfg(test)]
pub fn reset_stopping() {
    STOPPING.store(false, Ordering::SeqCst);
    *CLEANED.0.lock().unwrap_or_else(|e| e.into_inner()) = false;
}

/// Sends this process's console group a Ctrl-Break, as a user pressing it
/// would; for tests of the handler.
#[cfg(test)]
pub fn raise_console_event(event: u32) {
    // SAFETY: calls the handler as the system would, on this thread.
    unsafe { on_console_event(event) };
}
