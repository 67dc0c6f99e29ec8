//! The process rsync (or exec's command) runs in. snaprsync starts it as a
//! fresh exec of itself (`snaprsync __child ...`), which prepares the process
//! and then becomes the program with `exec`. What is said of rsync here holds
//! for exec's command alike, except confinement, which is restricted mode's:
//!
//! - it asks the kernel to SIGKILL it when snaprsync dies (a parent-death
//!   signal), so that rsync never outlives a killed snaprsync and keeps its
//!   snapshot busy; snaprsync's own handlers would not survive the exec, and a
//!   fresh process needs no `unsafe` pre-exec hook to do this;
//! - in restricted mode it confines rsync by construction: a private mount
//!   namespace whose root is an empty read-only tmpfs holding only the allowed
//!   snapshots (read-only), the allowed write directories, rsync and the files it
//!   loads (read-only). Outside that, nothing exists for rsync, whatever a path,
//!   filter rule, symlink or charset conversion asks for. rsync's own
//!   `RSYNC_*` environment variables are cleared too.
//!
//! Failures end this process with snaprsync's own status (86: the confinement
//! could not be built; 82: the program could not be started) and one stderr
//! line; snaprsync passes that status on like the program's own.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::status;
use crate::provider::{DeviceMount, SnapshotSet};

/// The subcommand word of the child.
pub const WORD: &str = "__child";

/// What the child does before it becomes rsync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// snaprsync's pid: if the child's parent is already another process, it ends.
    pub parent: u32,
    pub confine: Option<Confinement>,
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// rsync's whole world in restricted mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Confinement {
    /// An empty directory the new root is mounted on (private to the child).
    pub root: PathBuf,
    /// (where rsync sees it, what is shown there): snapshot directories, read-only.
    pub read: Vec<(PathBuf, PathBuf)>,
    /// Directories rsync may write to, at their own paths.
    pub write: Vec<PathBuf>,
    /// Files rsync needs (itself, its libraries, the name databases), read-only,
    /// at their own paths.
    pub files: Vec<PathBuf>,
    /// The working directory rsync starts in (created empty if not shown).
    pub cwd: PathBuf,
    /// Snapshot devices (LVM) to mount first, each at the directory `read` names.
    pub devices: Vec<(DeviceMount, PathBuf)>,
}

impl Spec {
    /// The child's argv after the subcommand word.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--parent".into(), self.parent.to_string().into()];
        if let Some(c) = &self.confine {
            a.extend(["--root".into(), c.root.clone().into(), "--cwd".into(), c.cwd.clone().into()]);
            for (at, from) in &c.read {
                a.extend(["--read".into(), at.clone().into(), from.clone().into()]);
            }
            for w in &c.write {
                a.extend(["--write".into(), w.clone().into()]);
            }
            for f in &c.files {
                a.extend(["--file".into(), f.clone().into()]);
            }
            for (d, at) in &c.devices {
                a.extend([
                    "--device".into(),
                    d.device.clone().into(),
                    d.fstype.clone().into(),
                    d.options.clone().into(),
                    at.clone().into(),
                ]);
            }
        }
        a.push("--".into());
        a.push(self.program.clone().into());
        a.extend(self.args.iter().cloned());
        a
    }

    /// Reads [`Spec::to_args`] back.
    pub fn parse(args: &[OsString]) -> Result<Spec, String> {
        let mut it = args.iter();
        let mut next = |what: &str| it.next().cloned().ok_or_else(|| format!("{WORD}: {what} needs a value"));
        let mut parent = None;
        let mut c = Confinement::default();
        let mut confined = false;
        loop {
            let word = next("an option")?;
            match word.to_str() {
                Some("--parent") => parent = next("--parent")?.to_str().and_then(|p| p.parse().ok()),
                Some("--root") => {
                    confined = true;
                    c.root = next("--root")?.into();
                }
                Some("--cwd") => c.cwd = next("--cwd")?.into(),
                Some("--read") => c.read.push((next("--read")?.into(), next("--read")?.into())),
                Some("--write") => c.write.push(next("--write")?.into()),
                Some("--file") => c.files.push(next("--file")?.into()),
                Some("--device") => {
                    let device = next("--device")?.into();
                    let fstype = next("--device")?.to_string_lossy().into_owned();
                    let options = next("--device")?.to_string_lossy().into_owned();
                    c.devices.push((DeviceMount { device, fstype, options }, next("--device")?.into()));
                }
                Some("--") => break,
                _ => return Err(format!("{WORD}: unexpected {}", word.to_string_lossy())),
            }
        }
        let program = PathBuf::from(next("a program")?);
        let rest: Vec<OsString> = it.cloned().collect();
        let parent = parent.ok_or_else(|| format!("{WORD}: --parent is required"))?;
        Ok(Spec { parent, confine: confined.then_some(c), program, args: rest })
    }
}

/// The child's whole life: returns only on failure, with the status to end with.
pub fn main(args: &[OsString]) -> u8 {
    let spec = match Spec::parse(args) {
        Ok(s) => s,
        Err(e) => return fail(status::USAGE, &e),
    };
    // Set before the check, so that a death between the two cannot be missed.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        return fail(status::INTERNAL, &format!("cannot set a parent-death signal: {e}"));
    }
    if nix::unistd::getppid().as_raw() as u32 != spec.parent {
        // snaprsync died before the signal was set: rsync must not start.
        return fail(status::INTERNAL, "snaprsync ended before the program started");
    }
    if let Some(c) = &spec.confine {
        if let Err(e) = confine(c) {
            return fail(status::EXPOSE, &format!("cannot confine rsync: {e}; nothing was read"));
        }
    } else {
        reenter_cwd();
    }
    let err = std::process::Command::new(&spec.program).args(&spec.args).exec();
    fail(status::RSYNC_MISSING, &format!("cannot start {}: {err}", spec.program.display()))
}

/// The working directory, entered again by its path: the one inherited is the
/// live directory even where a snapshot is now mounted over it, so relative
/// paths would read the live files. If the path is gone (from the snapshot
/// too), the inherited one stays.
fn reenter_cwd() {
    if let Ok(cwd) = std::env::current_dir() {
        let _ = std::env::set_current_dir(cwd);
    }
}

fn fail(code: u8, msg: &str) -> u8 {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "snaprsync: {msg}");
    code
}

/// Opens `path` (absolute) without following any symlink on the way, so that
/// what is mounted is what was named; `O_PATH` asks for no access.
fn open_exact(path: &Path, follow_last: bool) -> Result<OwnedFd, String> {
    let mut how = OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC);
    if !follow_last {
        how = how.flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW).resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    }
    openat2(nix::fcntl::AT_FDCWD, path, how).map_err(|e| format!("{}: {e}", path.display()))
}

/// `path` inside `root`; `..` and `.` never appear in what is mounted.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let mut out = root.to_path_buf();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => return Err(format!("{}: not a plain absolute path", path.display())),
        }
    }
    Ok(out)
}

fn bind(fd: &OwnedFd, target: &Path, flags: MsFlags) -> Result<(), String> {
    let src = format!("/proc/self/fd/{}", fd.as_raw_fd());
    mount(Some(src.as_str()), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| format!("mounting on {}: {e}", target.display()))?;
    mount(None::<&str>, target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags, None::<&str>)
        .map_err(|e| format!("making {} {flags:?}: {e}", target.display()))
}

/// Builds rsync's world (see the module header) and makes it this process's root.
fn confine(c: &Confinement) -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| format!("making mounts private: {e}"))?;
    // Device snapshots are mounted where `read` will find them: in this
    // namespace only.
    for (dev, at) in &c.devices {
        super::ns::mount_device(dev, at)?;
    }
    // Everything is opened before the new root hides anything.
    let mut read: Vec<(&PathBuf, OwnedFd)> = Vec::new();
    for (at, from) in &c.read {
        read.push((at, open_exact(from, false)?));
    }
    let write = c.write.iter().map(|w| Ok((w, open_exact(w, false)?))).collect::<Result<Vec<_>, String>>()?;
    // Files are named as rsync and the loader name them (`/lib64/ld-linux...`
    // may be a symlink): the name is kept, the file it leads to is shown.
    let files = c.files.iter().map(|f| Ok((f, open_exact(f, true)?))).collect::<Result<Vec<_>, String>>()?;
    let root = &c.root;
    mount(Some("tmpfs"), root, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755,size=1m,nr_inodes=4096"))
        .map_err(|e| format!("mounting a tmpfs on {}: {e}", root.display()))?;
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    // Nothing is shown at the root itself: the tmpfs must stay the top mount
    // there, or what is created and remounted below would be the host's.
    if c.read.iter().map(|(at, _)| at).chain(&c.write).any(|p| inside(root, p).is_ok_and(|t| &t == root)) {
        return Err("an allowed directory of / would be shown as the whole root; allow the directories below it".into());
    }
    // Parents before children: a nested snapshot is mounted inside its parent's.
    read.sort_by_key(|(at, _)| at.components().count());
    for (at, fd) in &read {
        let target = inside(root, at)?;
        std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        bind(fd, &target, ro)?;
    }
    for (w, fd) in &write {
        let target = inside(root, w)?;
        std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        bind(fd, &target, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
    }
    for (f, fd) in &files {
        let target = inside(root, f)?;
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        if std::fs::symlink_metadata(&target).is_err() {
            std::fs::File::create(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        }
        // Not nodev: /dev/null is a device, and the list holds no other.
        bind(fd, &target, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID)?;
    }
    // rsync resolves relative paths from here, as on the host; an empty
    // directory where the host's is not shown.
    let cwd = inside(root, &c.cwd)?;
    let _ = std::fs::create_dir_all(&cwd);
    // MS_BIND: this mount alone, never the filesystem beneath it.
    mount(None::<&str>, root, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | ro, None::<&str>)
        .map_err(|e| format!("making the new root read-only: {e}"))?;
    // The new root over the old one, and the old one detached: nothing of the
    // host's tree stays reachable, not even through `..` or /proc.
    std::env::set_current_dir(root).map_err(|e| format!("{}: {e}", root.display()))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("/: {e}"))?;
    if std::env::set_current_dir(&c.cwd).is_err() {
        log_cwd(&c.cwd);
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    // rsync reads settings from RSYNC_* variables (RSYNC_MAX_ALLOC=0 lifts its
    // allocation cap); a key's session must not set them through sshd.
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"RSYNC_") {
            std::env::remove_var(&name);
        }
    }
    Ok(())
}

/// Pure: what rsync sees of the snapshots in restricted mode, as (where, what):
/// every allowed directory that lies in a snapshotted volume, shown from the
/// snapshot, and every snapshotted volume that lies in an allowed directory.
/// Nothing else of the tree is shown, so nothing live is read.
pub fn read_map(set: &SnapshotSet, allow: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    let mut out: Vec<(PathBuf, PathBuf)> = Vec::new();
    for a in allow {
        // The deepest volume that holds the allowed directory shows it.
        let holder = set.volumes.iter().filter(|v| a.starts_with(&v.origin)).max_by_key(|v| v.origin.components().count());
        if let Some(v) = holder {
            let rest = a.strip_prefix(&v.origin).unwrap_or(Path::new(""));
            out.push((a.clone(), if rest.as_os_str().is_empty() { v.snapshot.clone() } else { v.snapshot.join(rest) }));
        }
        // Volumes below it are shown over their empty place in the parent snapshot.
        for v in set.volumes.iter().filter(|v| v.origin.starts_with(a) && &v.origin != a) {
            out.push((v.origin.clone(), v.snapshot.clone()));
        }
    }
    out.sort_by(|x, y| x.0.components().count().cmp(&y.0.components().count()).then_with(|| x.0.cmp(&y.0)));
    out.dedup_by(|x, y| x.0 == y.0);
    out
}

/// Pure: the absolute paths of the files `ldd` lists (the libraries and the
/// loader), in order.
pub fn ldd_paths(out: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = out.lines().filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/'))).map(PathBuf::from).collect();
    v.dedup();
    v
}

fn log_cwd(cwd: &Path) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "snaprsync: note: rsync starts in / (working directory {} is not shown)",
        crate::text::shown(cwd.as_os_str().as_bytes(), 200)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips() {
        let plain = Spec { parent: 42, confine: None, program: "/usr/bin/rsync".into(), args: vec!["--server".into(), "-- x".into()] };
        assert_eq!(Spec::parse(&plain.to_args()).unwrap(), plain);
        let confined = Spec {
            confine: Some(Confinement {
                root: "/var/lib/snaprsync/root".into(),
                read: vec![("/srv/a b".into(), "/srv/.snaprsync/s-0/a b".into())],
                write: vec!["/in".into()],
                files: vec!["/usr/bin/rsync".into(), "/etc/passwd".into()],
                cwd: "/root".into(),
                devices: vec![(
                    DeviceMount { device: "/dev/vg/s-0".into(), fstype: "xfs".into(), options: "ro,norecovery,nouuid".into() },
                    "/st/mnt/s-0".into(),
                )],
            }),
            args: vec!["--".into(), "--parent".into()],
            ..plain
        };
        assert_eq!(Spec::parse(&confined.to_args()).unwrap(), confined);
    }

    #[test]
    fn bad_specs_are_refused() {
        let a = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(Spec::parse(&a(&["--", "rsync"])).is_err(), "no parent");
        assert!(Spec::parse(&a(&["--parent", "1"])).is_err(), "no program");
        assert!(Spec::parse(&a(&["--parent", "1", "--bogus", "--", "rsync"])).is_err());
        assert!(Spec::parse(&a(&["--parent", "1", "--read", "/x"])).is_err());
    }

    fn set(vols: &[(&str, &str)]) -> SnapshotSet {
        SnapshotSet {
            provider: "btrfs",
            volumes: vols
                .iter()
                .map(|(o, s)| crate::provider::VolumeSnapshot { origin: o.into(), snapshot: s.into(), id: s.to_string(), mount: None })
                .collect(),
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(PathBuf, PathBuf)> {
        v.iter().map(|(a, b)| (PathBuf::from(a), PathBuf::from(b))).collect()
    }

    #[test]
    fn read_map_shows_only_allowed_snapshots() {
        // The allowed directory inside a volume: only that part of the snapshot.
        let s = set(&[("/mnt", "/mnt/.s/a-0")]);
        assert_eq!(read_map(&s, &["/mnt/data".into()]), pairs(&[("/mnt/data", "/mnt/.s/a-0/data")]));
        // The volume itself allowed.
        assert_eq!(read_map(&s, &["/mnt".into()]), pairs(&[("/mnt", "/mnt/.s/a-0")]));
        // An allowed directory above the volume: only the volume, nothing live around it.
        let s = set(&[("/srv/vol", "/srv/vol/.s/a-0")]);
        assert_eq!(read_map(&s, &["/srv".into()]), pairs(&[("/srv/vol", "/srv/vol/.s/a-0")]));
        // Nested volumes: the parent's snapshot first, the child's over its place.
        let s = set(&[("/", "/.s/a-0"), ("/home", "/home/.s/a-1"), ("/home/u/vm", "/home/u/vm/.s/a-2")]);
        assert_eq!(
            read_map(&s, &["/home/u".into(), "/etc".into()]),
            pairs(&[("/etc", "/.s/a-0/etc"), ("/home/u", "/home/.s/a-1/u"), ("/home/u/vm", "/home/u/vm/.s/a-2")])
        );
        // A volume outside every allowed directory is not shown.
        let s = set(&[("/mnt", "/mnt/.s/a-0"), ("/other", "/other/.s/a-1")]);
        assert_eq!(read_map(&s, &["/mnt/x".into()]), pairs(&[("/mnt/x", "/mnt/.s/a-0/x")]));
        assert!(read_map(&s, &["/elsewhere".into()]).is_empty());
    }

    #[test]
    fn ldd_output_gives_the_files() {
        let out = "\tlinux-vdso.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(ldd_paths(out), vec![PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"), PathBuf::from("/lib64/ld-linux-x86-64.so.2")]);
        assert!(ldd_paths("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn inside_keeps_paths_plain() {
        assert_eq!(inside(Path::new("/r"), Path::new("/srv/x")).unwrap(), PathBuf::from("/r/srv/x"));
        assert_eq!(inside(Path::new("/r"), Path::new("/")).unwrap(), PathBuf::from("/r"));
        assert!(inside(Path::new("/r"), Path::new("/srv/../etc")).is_err());
    }
}
