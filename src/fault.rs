//! Fault injection for the test suite, in debug builds only: when the
//! environment variable `SNAPRSYNC_FAULT` names a point, that point panics, so
//! tests can show that a panic still removes every snapshot. Release builds
//! compile every point to nothing.

/// Panics here if `SNAPRSYNC_FAULT` equals `name` (debug builds only).
#[inline]
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("SNAPRSYNC_FAULT").is_some_and(|v| v == name) {
        panic!("fault injected at {name:?} (SNAPRSYNC_FAULT)");
    }
    let _ = name;
}
