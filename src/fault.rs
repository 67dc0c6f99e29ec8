//! Fault injection for the test suite, in debug builds only. The environment
//! variable `SNAPRSYNC_FAULT` names a point and what happens there:
//!
//! - `NAME`: that point panics, so tests can show that a panic still removes
//!   every snapshot;
//! - `without-confine-root`: restricted mode does not pass `--confine-root`,
//!   as with an rsync that lacks it, so tests see the confinement alone;
//! - `NAME:hold=PATH`: that point creates `PATH.held` and waits (at most 30 s)
//!   until `PATH` exists, so tests can change the filesystem at an exact moment
//!   (between the checks of restricted mode and the snapshot, say).
//!
//! Release builds compile every point to nothing.

/// Acts at `name` as `SNAPRSYNC_FAULT` says (debug builds only).
#[inline]
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    if let Some(v) = std::env::var_os("SNAPRSYNC_FAULT") {
        let v = v.to_string_lossy();
        if v == name {
            panic!("fault injected at {name:?} (SNAPRSYNC_FAULT)");
        }
        if let Some(path) = v.strip_prefix(name).and_then(|r| r.strip_prefix(":hold=")) {
            hold(std::path::Path::new(path));
        }
    }
    let _ = name;
}

/// Whether `SNAPRSYNC_FAULT` equals `name` (always false in release builds).
#[inline]
pub fn active(name: &str) -> bool {
    cfg!(debug_assertions) && std::env::var_os("SNAPRSYNC_FAULT").is_some_and(|v| v == name)
}

#[cfg(debug_assertions)]
fn hold(path: &std::path::Path) {
    let mut held = path.as_os_str().to_owned();
    held.push(".held");
    let _ = std::fs::write(&held, b"");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
