//! Restricted mode's allowed directories, resolved once when a key is used.
//!
//! Each `--snap-allow` and `--snap-allow-write` directory is walked from `/`
//! one component at a time, every step opened relative to the one before with
//! no symlink followed (`O_PATH | O_NOFOLLOW`), and the last one held open.
//! After that nothing resolves the configured text again: the checks compare
//! against the path that was walked (which has no symlink in it), the
//! confinement binds a write directory only if it is the held one (same
//! device and inode), and a snapshot's copy of a read directory only with the
//! same inode number (a snapshot keeps them).
//!
//! A directory is refused when
//! - its configured path passes through a symlink (write the real path);
//! - a directory above it can be changed by someone other than root, as
//!   OpenSSH's `StrictModes` judges the directories above `authorized_keys`:
//!   owned by another user, or writable by group or others without the sticky
//!   bit, or (under a sticky directory others may write to) owned by another
//!   user. The allowed directory itself may belong to a user (`/home/alice`):
//!   replacing it takes write access to its parent;
//! - a read directory lies strictly inside a write directory of the same key,
//!   or a write directory strictly inside a read one: the key could replace one
//!   with what it pushes. The same directory named in both is fine: what a push
//!   can change is inside it, never the directory itself.

use std::path::{Component, Path, PathBuf};

use crate::restrict::refusal::Refusal;

/// One allowed directory, resolved once.
#[derive(Debug)]
pub struct Pin {
    /// Absolute, with no symlink, `.` or `..` in it: the path that was walked.
    pub path: PathBuf,
    /// The directory itself, held open (`O_PATH`): what the confinement binds.
    #[cfg(unix)]
    pub fd: std::os::fd::OwnedFd,
    /// Its inode number (0 where the platform has none): a snapshot of the
    /// directory's volume holds it under the same number.
    pub ino: u64,
}

/// A key's allowed directories, resolved once; directories that do not exist
/// are left out (nothing can be read from or written to them in this run).
#[derive(Debug, Default)]
pub struct Pins {
    pub read: Vec<Pin>,
    pub write: Vec<Pin>,
}

impl Pins {
    /// The walked paths of the read directories.
    pub fn read_paths(&self) -> Vec<PathBuf> {
        self.read.iter().map(|p| p.path.clone()).collect()
    }

    /// The walked paths of the write directories.
    pub fn write_paths(&self) -> Vec<PathBuf> {
        self.write.iter().map(|p| p.path.clone()).collect()
    }
}

/// Resolves every allowed directory once (see the module header).
pub fn pin_all(read: &[PathBuf], write: &[PathBuf]) -> Result<Pins, Refusal> {
    let mut pins = Pins::default();
    for (dirs, out) in [(read, &mut pins.read), (write, &mut pins.write)] {
        for d in dirs {
            match pin(d)? {
                Some(p) => out.push(p),
                None => log::info!("restricted mode: allowed directory {} does not exist; left out", d.display()),
            }
        }
    }
    if pins.read.is_empty() && pins.write.is_empty() && !(read.is_empty() && write.is_empty()) {
        let all: Vec<String> = read.iter().chain(write).map(|d| d.display().to_string()).collect();
        return Err(Refusal::new(all.join(" "), "none of the allowed directories exists; fix --snap-allow in authorized_keys"));
    }
    if let Some((inner, outer, how)) = nested(&pins.read_paths(), &pins.write_paths()) {
        return Err(Refusal::new(
            inner.as_os_str().as_encoded_bytes(),
            format!(
                "lies inside {} ({how}), so this key could replace it with what it pushes; \
                 allow read and write directories that do not contain each other",
                outer.display()
            ),
        ));
    }
    Ok(pins)
}

/// A read directory strictly inside a write directory, or the other way round:
/// (the inner one, the outer one, which is which).
pub fn nested(read: &[PathBuf], write: &[PathBuf]) -> Option<(PathBuf, PathBuf, &'static str)> {
    for r in read {
        for w in write {
            if r != w && r.starts_with(w) {
                return Some((r.clone(), w.clone(), "a read directory inside a write directory"));
            }
            if r != w && w.starts_with(r) {
                return Some((w.clone(), r.clone(), "a write directory inside a read directory"));
            }
        }
    }
    None
}

/// The plain components of an absolute path (`.` and repeated `/` dropped);
/// `..` and relative paths are refused.
fn components(path: &Path) -> Result<Vec<&std::ffi::OsStr>, Refusal> {
    let arg = path.as_os_str().as_encoded_bytes();
    if !path.is_absolute() {
        return Err(Refusal::new(arg, "an allowed directory must be an absolute path"));
    }
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err(Refusal::new(arg, "an allowed directory must not hold `..`; write its real path")),
        }
    }
    Ok(out)
}

/// Why a directory above an allowed one could be changed by someone other than
/// root, given its owner and mode, if it could. `sticky_parent`: the directory
/// above this one is writable by others but has the sticky bit, so only the
/// owner of this entry (and root) may rename or remove it.
pub fn loose(uid: u32, mode: u32, sticky_parent: bool, ancestor: bool) -> Option<String> {
    if uid != 0 && (ancestor || sticky_parent) {
        let why = if ancestor { "so that user could replace what lies below it" } else { "in a directory others may write to" };
        return Some(format!("belongs to {} ({why})", user_name(uid)));
    }
    if ancestor && mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Some(format!(
            "is writable by {} without the sticky bit (mode {:04o})",
            if mode & 0o002 != 0 { "everyone" } else { "its group" },
            mode & 0o7777
        ));
    }
    None
}

#[cfg(unix)]
fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("user {} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

#[cfg(not(unix))]
fn user_name(uid: u32) -> String {
    format!("uid {uid}")
}

/// Walks `path` from `/` without following a symlink (see the module header).
/// `None`: some part of it does not exist.
#[cfg(unix)]
fn pin(path: &Path) -> Result<Option<Pin>, Refusal> {
    use nix::errno::Errno;
    use nix::fcntl::{open, openat, OFlag};
    use nix::sys::stat::{fstat, fstatat, Mode, SFlag};

    let arg = path.as_os_str().as_encoded_bytes();
    let parts = components(path)?;
    let dir = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut at = PathBuf::from("/");
    let mut fd = open("/", dir, Mode::empty()).map_err(|e| Refusal::new(arg, format!("cannot open /: {e}")))?;
    let mut st = fstat(&fd).map_err(|e| Refusal::new(arg, format!("cannot stat /: {e}")))?;
    let mut sticky_parent = false;
    let fix = "make it root's and not writable by others, or allow a directory elsewhere";
    if parts.is_empty() {
        // `/` itself: the confinement refuses it with its own reason.
        return Ok(Some(Pin { path: at, fd, ino: st.st_ino }));
    }
    for name in parts {
        if let Some(why) = loose(st.st_uid, st.st_mode, sticky_parent, true) {
            return Err(Refusal::new(arg, format!("{} {why}; {fix}", at.display())));
        }
        sticky_parent = st.st_mode & 0o022 != 0;
        let next = match openat(&fd, name, dir, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => {
                let here = at.join(name);
                let link = fstatat(&fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK);
                let why = if link {
                    let to = std::fs::read_link(&here).map(|t| t.display().to_string()).unwrap_or_default();
                    let real =
                        path.canonicalize().map(|r| format!("--snap-allow={}", r.display())).unwrap_or_else(|_| "its real path".into());
                    format!(
                        "{} is a symlink (to {to}); restricted mode takes an allowed directory only by its real path, \
                         so that nobody can redirect it: write {real} in authorized_keys",
                        here.display()
                    )
                } else if e == Errno::ENOTDIR {
                    format!("{} is not a directory", here.display())
                } else {
                    format!("cannot open {}: {e}", here.display())
                };
                return Err(Refusal::new(arg, why));
            }
        };
        at.push(name);
        st = fstat(&next).map_err(|e| Refusal::new(arg, format!("cannot stat {}: {e}", at.display())))?;
        fd = next;
    }
    if let Some(why) = loose(st.st_uid, st.st_mode, sticky_parent, false) {
        return Err(Refusal::new(arg, format!("{} {why}, so its owner could replace it; {fix}", at.display())));
    }
    Ok(Some(Pin { path: at, fd, ino: st.st_ino }))
}

/// Windows has no confinement to bind into: the directory is taken by its
/// real path, resolved here once, for the checks.
#[cfg(not(unix))]
fn pin(path: &Path) -> Result<Option<Pin>, Refusal> {
    components(path)?;
    Ok(path.canonicalize().ok().map(|path| Pin { path, ino: 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn nesting_of_read_and_write_directories() {
        assert_eq!(nested(&p(&["/srv/in/pub"]), &p(&["/srv/in"])).map(|n| n.0), Some("/srv/in/pub".into()));
        assert_eq!(nested(&p(&["/srv"]), &p(&["/srv/in"])).map(|n| n.0), Some("/srv/in".into()));
        // The same directory in both, and siblings, are fine.
        assert_eq!(nested(&p(&["/srv/in"]), &p(&["/srv/in"])), None);
        assert_eq!(nested(&p(&["/srv/a", "/srv/b"]), &p(&["/srv/ab", "/srv/c"])), None);
    }

    #[test]
    fn who_may_change_a_directory() {
        // Above the allowed directory: root's, not writable by others (or sticky).
        assert_eq!(loose(0, 0o40755, false, true), None);
        assert_eq!(loose(0, 0o41777, false, true), None);
        assert!(loose(1000, 0o40755, false, true).unwrap().contains("uid 1000"));
        assert!(loose(0, 0o40775, false, true).unwrap().contains("its group"));
        assert!(loose(0, 0o40757, false, true).unwrap().contains("everyone"));
        // Below a sticky shared directory, another user's entry can still be swapped by that user.
        assert!(loose(1000, 0o40700, true, true).is_some());
        // The allowed directory itself may be a user's, and writable, unless it sits in a sticky shared one.
        assert_eq!(loose(1000, 0o40777, false, false), None);
        assert!(loose(1000, 0o40700, true, false).is_some());
        assert_eq!(loose(0, 0o40700, true, false), None);
    }

    #[cfg(unix)]
    #[test]
    fn configured_paths_must_be_plain_and_absolute() {
        assert!(components(Path::new("srv")).is_err());
        assert!(components(Path::new("/srv/../etc")).is_err());
        assert_eq!(components(Path::new("//srv/./x/")).unwrap(), ["srv", "x"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_in_the_path_is_refused_and_named() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        // A temporary directory may sit below a loose one in a test sandbox: only judge the symlink.
        match pin(&d.path().join("link")) {
            Err(r) => assert!(r.why.contains("is a symlink") || r.why.contains("writable") || r.why.contains("belongs"), "{r}"),
            Ok(_) => panic!("a symlink was followed"),
        }
        assert!(pin(&d.path().join("missing")).is_ok_and(|p| p.is_none()) || pin(&d.path().join("missing")).is_err());
    }
}
