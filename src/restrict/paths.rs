//! The text rules of a path (see "Paths" in the module documentation of
//! `restrict`): read as rsync reads it, no `..`, nothing under `/proc`,
//! `/sys` or `/dev`.

use std::ffi::OsStr;

use super::Refusal;

/// Refuses an empty path, one with wildcards, and what [`path_text`] refuses.
pub(super) fn plain_path(arg: &OsStr) -> Result<(), Refusal> {
    let b = arg.as_encoded_bytes();
    if b.is_empty() {
        return Err(Refusal::new(b, "an empty path"));
    }
    if b.iter().any(|c| b"*?[".contains(c)) {
        return Err(Refusal::new(b, "a path with wildcards (* ? [): rsync may expand them after this check"));
    }
    path_text(b).map_err(|why| Refusal::new(b, why))
}

/// Whether `b` separates path components for rsync here.
fn is_sep(b: u8) -> bool {
    b == b'/' || (cfg!(windows) && b == b'\\')
}

/// `path` as rsync's `clean_fname` reads it, for the checks here: runs of `/`
/// made one and `.` components dropped. `..` is kept (it is refused, never
/// resolved). An absolute path stays absolute, a trailing `/` is kept, and
/// nothing left is `.`.
pub fn normalise(path: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = path.split(|&b| is_sep(b)).filter(|c| !c.is_empty() && *c != b".").collect();
    let absolute = path.first().is_some_and(|&b| is_sep(b));
    let mut out = Vec::with_capacity(path.len() + 1);
    if absolute {
        out.push(b'/');
    }
    for (k, part) in parts.iter().enumerate() {
        if k > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if parts.is_empty() {
        if !absolute {
            out.push(b'.');
        }
    } else if path.last().is_some_and(|&b| is_sep(b)) {
        out.push(b'/');
    }
    out
}

/// Whether a component is `..`. Windows drops trailing dots and spaces from a
/// name, so there anything of only dots and spaces with two dots counts.
fn is_dot_dot(c: &[u8]) -> bool {
    if cfg!(windows) {
        c.iter().all(|&b| b == b'.' || b == b' ') && c.iter().filter(|&&b| b == b'.').count() >= 2
    } else {
        c == b".."
    }
}

/// Kernel filesystems whose paths lead elsewhere than the snapshot.
const MAGIC: [&str; 3] = ["proc", "sys", "dev"];

/// The kernel filesystem (`proc`, `sys`, `dev`) an absolute path lies under, by its text.
pub(super) fn magic_dir(path: &[u8]) -> Option<&'static str> {
    let normal = normalise(path);
    if normal.first() != Some(&b'/') {
        return None;
    }
    let first = normal[1..].split(|&b| is_sep(b)).next()?;
    MAGIC.into_iter().find(|m| if cfg!(windows) { first.eq_ignore_ascii_case(m.as_bytes()) } else { first == m.as_bytes() })
}

pub(super) fn magic_why(m: &str) -> String {
    format!(
        "under /{m}: /proc/PID/root, /proc/self/..., /dev/fd/N and the like lead to other processes' views of the filesystem, \
         the live tree or open files, not to the snapshot; name a path inside an allowed directory"
    )
}

const DOT_DOT: &str = "a `..` component: rsync collapses it as text (`dir/link/..` is `dir`) where the filesystem follows `link` \
                       first, so it can lead outside the allowed directories; name the path without `..`";

/// Why the text of a path is refused, read as rsync reads it: a `..`
/// component, or a place under `/proc`, `/sys` or `/dev`.
pub(super) fn path_text(path: &[u8]) -> Result<(), String> {
    if path.split(|&b| is_sep(b)).any(is_dot_dot) {
        return Err(DOT_DOT.into());
    }
    match magic_dir(path) {
        Some(m) => Err(magic_why(m)),
        None => Ok(()),
    }
}

/// The text checks of a path on their own (see "Paths" in the module
/// documentation): `Ok` exactly when [`normalise`] leaves no `..` component
/// and no `/proc`, `/sys` or `/dev` at the start.
pub fn check_path_text(path: &[u8]) -> Result<(), Refusal> {
    path_text(path).map_err(|why| Refusal::new(path, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_collapses_slashes_and_dots_as_rsync_does() {
        for (path, want) in [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("/srv/./x", "/srv/x"),
            ("a/", "a/"),
            ("a/.", "a"),
            ("./a", "a"),
            ("a/../b", "a/../b"),
            ("//proc", "/proc"),
            ("/.//./proc/", "/proc/"),
            ("...", "..."),
        ] {
            assert_eq!(String::from_utf8(normalise(path.as_bytes())).unwrap(), want, "{path:?}");
        }
    }

    #[test]
    fn path_text_refuses_dot_dot_and_kernel_filesystems() {
        for (bad, says) in [
            ("..", "`..`"),
            ("a/..", "`..`"),
            ("../a", "`..`"),
            ("a/../b", "`..`"),
            ("/srv/./../x", "`..`"),
            ("a//..//b", "`..`"),
            ("/srv/a/../..", "outside"),
            ("/proc", "/proc"),
            ("/proc/", "/proc"),
            ("/proc/self/root/srv", "/proc"),
            ("/proc/1/root/srv/data", "/proc"),
            ("//proc/1/root", "/proc"),
            ("/./proc/self/cwd", "/proc"),
            ("/sys/kernel", "/sys"),
            ("/dev", "/dev"),
            ("/dev/fd/0", "/dev"),
            ("/dev/stdin", "/dev"),
            ("///dev//./fd/3", "/dev"),
        ] {
            let r = check_path_text(bad.as_bytes()).unwrap_err();
            assert!(r.why.contains(says), "{bad}: {r}");
            assert!(r.why.contains("name"), "the refusal says what to do instead: {r}");
        }
        for ok in [
            "/process",
            "/srv/proc",
            "/srv/dev/fd",
            "/devices",
            "proc/self",
            "..a",
            "a..",
            ".hidden",
            "/srv/./x",
            "/srv/my data/it's \"q\" (1)&$x;",
            "ünïcödé/naïve €.txt",
            "a\nb",
        ] {
            check_path_text(ok.as_bytes()).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        // Windows reads `\` as a separator and `...` as `..`; elsewhere they are names.
        for name in ["...", "a/.../b", "a\\..", ". ."] {
            assert_eq!(check_path_text(name.as_bytes()).is_ok(), cfg!(unix), "{name:?}");
        }
    }
}
