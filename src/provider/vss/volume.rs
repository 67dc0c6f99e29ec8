//! Win32 questions about volumes and paths, asked by the VSS provider and by
//! the Windows platform: which volume holds a path, the volume's GUID name
//! (one volume can be reached by several paths), where every volume is
//! mounted, and the real path a name leads to once junctions, symbolic links,
//! mount points and 8.3 short names are followed.
//!
//! Each call is behind a small safe function; every `unsafe` block says why
//! it holds.
#![allow(unsafe_code)]

use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, ERROR_MORE_DATA, ERROR_NO_MORE_FILES, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FindFirstVolumeW, FindNextVolumeW, FindVolumeClose, GetDriveTypeW, GetFinalPathNameByHandleW,
    GetVolumeNameForVolumeMountPointW, GetVolumePathNameW, GetVolumePathNamesForVolumeNameW, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_NAME_NORMALIZED, FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING, VOLUME_NAME_DOS,
};

const DRIVE_REMOTE: u32 = 4;

fn wide(s: &std::ffi::OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// Past this length a path is handed to Windows in its `\\?\` form: MAX_PATH
/// (260) less room for a file name, as CreateDirectory counts.
const LONG_PATH: usize = 248;

/// `path` as a path call is given it: a long one in its `\\?\` form (or
/// `\\?\UNC\`), which Windows passes on unshortened whatever the system's
/// LongPathsEnabled says; and whether the prefix was added.
fn wide_path(path: &Path) -> (Vec<u16>, bool) {
    let long = match path.to_str() {
        Some(t) if t.len() >= LONG_PATH && t.as_bytes().get(1) == Some(&b':') => Some(format!(r"\\?\{}", t.replace('/', "\\"))),
        Some(t) if t.len() >= LONG_PATH && t.starts_with(r"\\") && !t.starts_with(r"\\?\") && !t.starts_with(r"\\.\") => {
            Some(format!(r"\\?\UNC\{}", t[2..].replace('/', "\\")))
        }
        _ => None,
    };
    match long {
        Some(l) => (wide(l.as_ref()), true),
        None => (wide(path.as_os_str()), false),
    }
}

fn text(buf: &[u16]) -> String {
    let n = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..n])
}

/// The root of the volume holding `path` (`C:\`, or a mount folder
/// `C:\Mount\Data\`), as GetVolumePathNameW reads the name: it does not
/// follow links (see [`final_path`]).
pub fn volume_path_name(path: &Path) -> io::Result<String> {
    let (w, prefixed) = wide_path(path);
    let mut buf = vec![0u16; w.len() + 64];
    // SAFETY: `w` is NUL-terminated; `buf` is writable for its length.
    let ok = unsafe { GetVolumePathNameW(w.as_ptr(), buf.as_mut_ptr(), buf.len() as u32) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let root = text(&buf);
    // The root as a short path would have given it (`C:\`, not `\\?\C:\`).
    Ok(match root.strip_prefix(r"\\?\") {
        Some(r) if prefixed && r.as_bytes().get(1) == Some(&b':') => r.to_owned(),
        _ => root,
    })
}

/// Whether `root` is a network drive (VSS cannot shadow it).
pub fn is_remote_drive(root: &str) -> bool {
    let w = wide(root.as_ref());
    // SAFETY: NUL-terminated string.
    unsafe { GetDriveTypeW(w.as_ptr()) == DRIVE_REMOTE }
}

/// The volume GUID name (`\\?\Volume{...}\`) of a volume root or mount folder
/// (a trailing `\` is added when missing).
pub fn volume_guid(root: &str) -> io::Result<String> {
    let mut r = root.to_owned();
    if !r.ends_with('\\') {
        r.push('\\');
    }
    let w = wide(r.as_ref());
    let mut buf = [0u16; 64];
    // SAFETY: `w` is NUL-terminated; `buf` is writable for its length (a GUID
    // name is 49 characters and the documented buffer is 50).
    let ok = unsafe { GetVolumeNameForVolumeMountPointW(w.as_ptr(), buf.as_mut_ptr(), buf.len() as u32) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(text(&buf))
}

/// The path `path` really is, every junction, symbolic link, mount point and
/// short name followed, with its drive letter (`\\?\D:\x`, or `\\?\UNC\...`).
/// Fails when it does not exist or its volume has no drive letter or folder.
pub fn final_path(path: &Path) -> io::Result<String> {
    let (w, _) = wide_path(path);
    // SAFETY: `w` is NUL-terminated; no security attributes or template.
    // No access is asked (only the name is read); BACKUP_SEMANTICS opens directories.
    let h = unsafe {
        CreateFileW(
            w.as_ptr(),
            0,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u16; 1024];
    let result = loop {
        // SAFETY: `h` is an open handle; `buf` is writable for its length.
        let n = unsafe { GetFinalPathNameByHandleW(h, buf.as_mut_ptr(), buf.len() as u32, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS) };
        match n as usize {
            0 => break Err(io::Error::last_os_error()),
            // Too small: `n` is the size needed, with the NUL.
            n if n >= buf.len() => buf.resize(n + 1, 0),
            n => break Ok(String::from_utf16_lossy(&buf[..n])),
        }
    };
    // SAFETY: `h` was opened above and is closed once.
    unsafe { CloseHandle(h) };
    result
}

/// Whether the root of `device` (a shadow copy's
/// `\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopyN`, or any directory) still
/// opens: a shadow copy volsnap deleted leaves no device behind.
pub fn device_opens(device: &str) -> io::Result<()> {
    let root = format!("{}\\", device.trim_end_matches('\\'));
    let w = wide(root.as_ref());
    // SAFETY: `w` is NUL-terminated; no security attributes or template.
    // Attributes only; BACKUP_SEMANTICS opens a directory (the volume's root).
    let h = unsafe {
        CreateFileW(
            w.as_ptr(),
            FILE_READ_ATTRIBUTES,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` was opened above and is closed once.
    unsafe { CloseHandle(h) };
    Ok(())
}

/// Every volume with each path it is mounted at (`C:\`, `C:\Mount\Data\`):
/// (GUID name, paths). A volume mounted nowhere has no paths.
pub fn mounted_volumes() -> io::Result<Vec<(String, Vec<String>)>> {
    let mut name = [0u16; 64];
    // SAFETY: `name` is writable for its length.
    let find = unsafe { FindFirstVolumeW(name.as_mut_ptr(), name.len() as u32) };
    if find == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let end = loop {
        let guid = text(&name);
        out.push((guid.clone(), volume_paths(&guid).unwrap_or_default()));
        // SAFETY: `find` is the open search handle; `name` is writable.
        if unsafe { FindNextVolumeW(find, name.as_mut_ptr(), name.len() as u32) } == 0 {
            // SAFETY: no arguments.
            let e = unsafe { GetLastError() };
            break if e == ERROR_NO_MORE_FILES { Ok(()) } else { Err(io::Error::from_raw_os_error(e as i32)) };
        }
    };
    // SAFETY: `find` is the open search handle, closed once.
    unsafe { FindVolumeClose(find) };
    end.map(|()| out)
}

/// The paths volume `guid` (`\\?\Volume{...}\`) is mounted at, a drive root first.
pub fn volume_paths(guid: &str) -> io::Result<Vec<String>> {
    let w = wide(guid.as_ref());
    let mut buf = vec![0u16; 512];
    loop {
        let mut needed = 0u32;
        // SAFETY: `w` is NUL-terminated; `buf` is writable for its length;
        // `needed` is a valid out-pointer.
        let ok = unsafe { GetVolumePathNamesForVolumeNameW(w.as_ptr(), buf.as_mut_ptr(), buf.len() as u32, &mut needed) };
        if ok != 0 {
            // A list of NUL-terminated names, ended by an empty one.
            return Ok(buf.split(|&c| c == 0).take_while(|s| !s.is_empty()).map(String::from_utf16_lossy).collect());
        }
        // SAFETY: no arguments.
        let e = unsafe { GetLastError() };
        if e != ERROR_MORE_DATA || needed as usize <= buf.len() {
            return Err(io::Error::from_raw_os_error(e as i32));
        }
        buf.resize(needed as usize, 0);
    }
}

#[cfg(test)]
pub fn long_form(path: &Path) -> String {
    let (w, _) = wide_path(path);
    String::from_utf16_lossy(&w[..w.len() - 1])
}

/// The 8.3 short name of an existing path, for the tests of short-name sources.
#[cfg(test)]
pub fn short_path(path: &Path) -> io::Result<String> {
    use windows_sys::Win32::Storage::FileSystem::GetShortPathNameW;
    let w = wide(path.as_os_str());
    let mut buf = vec![0u16; w.len() + 16];
    // SAFETY: `w` is NUL-terminated; `buf` is writable for its length.
    let n = unsafe { GetShortPathNameW(w.as_ptr(), buf.as_mut_ptr(), buf.len() as u32) };
    if n == 0 || n as usize >= buf.len() {
        return Err(io::Error::last_os_error());
    }
    Ok(text(&buf))
}
