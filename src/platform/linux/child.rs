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
//!   filter rule, symlink or charset conversion asks for. Every mount source and
//!   target is reached by file descriptor, no symlink followed (but the last
//!   one of the files rsync loads, named as the loader names them): a write
//!   directory must be the very one snaprsync pinned (the device and inode of
//!   its hold, `/proc/PARENT/fd/N`), a snapshot's copy of an allowed directory must have its inode number, and
//!   a target is made one component at a time inside the new root. Then rsync
//!   loses every capability but what copying needs, gets a seccomp filter and
//!   an environment of its own (`jail`).
//!
//! - for exec of a root volume (`--pivot`), it makes the new root snaprsync
//!   built of the snapshots (`plan::NewRoot`) its root, in a mount namespace
//!   of its own (`pivot_root`, so that snaprsync's own root stays the live
//!   one), and detaches the old root: the live tree is then reachable only
//!   where the new root shows it;
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
    /// exec of a root volume: the new root to pivot to.
    pub pivot: Option<PathBuf>,
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// A directory shown read-only in the confinement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Where rsync sees it.
    pub at: PathBuf,
    /// What is shown there (a directory in a snapshot).
    pub from: PathBuf,
    /// The inode number `from` must have: that of the pinned allowed
    /// directory, which a snapshot keeps; 0 for a snapshot's own root
    /// (snaprsync made it, and no name in it was resolved).
    pub ino: u64,
}

/// A directory rsync may write to: one snaprsync holds open, and which the
/// child binds only if what its path leads to is that very directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writable {
    /// Where rsync sees it (its own path).
    pub at: PathBuf,
    /// snaprsync's descriptor of it, looked at by the child as `/proc/PARENT/fd/N`.
    pub fd: i32,
    /// Its inode number, checked again on the descriptor opened.
    pub ino: u64,
}

/// rsync's whole world in restricted mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Confinement {
    /// An empty directory the new root is mounted on (private to the child).
    pub root: PathBuf,
    /// Snapshot directories, read-only.
    pub read: Vec<Shown>,
    /// Directories rsync may write to, at their own paths (a push).
    pub write: Vec<Writable>,
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
        if let Some(p) = &self.pivot {
            a.extend(["--pivot".into(), p.clone().into()]);
        }
        if let Some(c) = &self.confine {
            a.extend(["--root".into(), c.root.clone().into(), "--cwd".into(), c.cwd.clone().into()]);
            for r in &c.read {
                a.extend(["--read".into(), r.at.clone().into(), r.from.clone().into(), r.ino.to_string().into()]);
            }
            for w in &c.write {
                a.extend(["--write".into(), w.at.clone().into(), w.fd.to_string().into(), w.ino.to_string().into()]);
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
        let mut pivot = None;
        loop {
            let word = next("an option")?;
            match word.to_str() {
                Some("--parent") => parent = next("--parent")?.to_str().and_then(|p| p.parse().ok()),
                Some("--pivot") => pivot = Some(next("--pivot")?.into()),
                Some("--root") => {
                    confined = true;
                    c.root = next("--root")?.into();
                }
                Some("--cwd") => c.cwd = next("--cwd")?.into(),
                Some("--read") => {
                    let (at, from) = (next("--read")?.into(), next("--read")?.into());
                    c.read.push(Shown { at, from, ino: number(&next("--read")?)? });
                }
                Some("--write") => {
                    let at = next("--write")?.into();
                    let fd = number(&next("--write")?)?;
                    c.write.push(Writable { at, fd, ino: number(&next("--write")?)? });
                }
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
        Ok(Spec { parent, confine: confined.then_some(c), pivot, program, args: rest })
    }
}

fn number<T: std::str::FromStr>(w: &OsString) -> Result<T, String> {
    w.to_str().and_then(|w| w.parse().ok()).ok_or_else(|| format!("{WORD}: not a number: {}", w.to_string_lossy()))
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
    let mut command = std::process::Command::new(&spec.program);
    command.args(&spec.args);
    if let Some(c) = &spec.confine {
        if let Err(e) = confine(c, spec.parent) {
            return fail(status::EXPOSE, &format!("cannot confine rsync: {e}; rsync did not start"));
        }
        // Nothing of the ssh session's environment (LD_*, LC_*, RSYNC_*).
        command.env_clear().envs(super::jail::environment());
    } else if let Some(root) = &spec.pivot {
        if let Err(e) = enter_root(root) {
            return fail(status::EXPOSE, &format!("cannot give the command the snapshot of / as its root: {e}; it did not start"));
        }
    } else {
        reenter_cwd();
    }
    let err = command.exec();
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

/// Makes `root` (a mount in snaprsync's namespace) this process's root, in a
/// namespace of its own: `pivot_root` changes the root of every process of a
/// namespace, and snaprsync's must stay the live one. The old root is
/// detached, so nothing of the live tree stays reachable but what `root`
/// shows. The working directory is entered again by its path, in the new
/// root (or `/`, said on stderr, where it is not there).
fn enter_root(root: &Path) -> Result<(), String> {
    let cwd = std::env::current_dir().ok();
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| format!("making mounts private: {e}"))?;
    std::env::set_current_dir(root).map_err(|e| format!("{}: {e}", root.display()))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root to {}: {e}", root.display()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("/: {e}"))?;
    if let Some(cwd) = cwd {
        if std::env::set_current_dir(&cwd).is_err() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "snaprsync: note: the command starts in / (working directory {} is not in the snapshot)",
                crate::text::shown(cwd.as_os_str().as_bytes(), 200)
            );
        }
    }
    Ok(())
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
        how = how
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    }
    openat2(nix::fcntl::AT_FDCWD, path, how).map_err(|e| format!("{}: {e}", path.display()))
}

/// The inode number of what `fd` refers to, required to be `ino` and a directory.
fn same_dir(fd: &OwnedFd, ino: u64, what: &Path, pinned: &Path) -> Result<(), String> {
    let st = nix::sys::stat::fstat(fd).map_err(|e| format!("{}: {e}", what.display()))?;
    let dir = nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT == nix::sys::stat::SFlag::S_IFDIR;
    if !dir || st.st_ino != ino {
        return Err(format!(
            "{} is not the allowed directory {} that was resolved when the key was used (replaced since, or not in the snapshot); \
             run the backup again, and allow a directory that nobody else can replace",
            what.display(),
            pinned.display()
        ));
    }
    Ok(())
}

/// The plain components of an absolute path; `..` never appears in what is mounted.
fn plain(path: &Path) -> Result<Vec<&std::ffi::OsStr>, String> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => return Err(format!("{}: not a plain absolute path", path.display())),
        }
    }
    Ok(out)
}

/// A mount target inside the new root: the directory it is in, its name
/// there, and the target itself, each held open.
struct Place {
    parent: OwnedFd,
    name: OsString,
    fd: OwnedFd,
}

const DIR_PATH: OFlag = OFlag::O_PATH.union(OFlag::O_NOFOLLOW).union(OFlag::O_DIRECTORY).union(OFlag::O_CLOEXEC);

/// The directory `name` in `dir`, made if missing; `None` where a symlink
/// or a file is there (a snapshot mounted earlier may hold one): it is never
/// followed.
fn step(dir: &OwnedFd, name: &std::ffi::OsStr, whole: &Path) -> Result<Option<OwnedFd>, String> {
    use nix::errno::Errno;
    use nix::sys::stat::Mode;
    let open = || nix::fcntl::openat(dir, name, DIR_PATH, Mode::empty());
    let opened = match open() {
        Err(Errno::ENOENT) => match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => open(),
            Err(e) => Err(e),
        },
        r => r,
    };
    match opened {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOTDIR | Errno::ELOOP) => Ok(None),
        Err(e) => Err(format!("{}: {e}", whole.display())),
    }
}

/// The directory `at` inside the new root, made one component at a time;
/// `None` where a symlink or a file stands on the way.
fn dir_or_link_in(root: &OwnedFd, at: &Path) -> Result<Option<Place>, String> {
    let parts = plain(at)?;
    let Some((last, above)) = parts.split_last() else {
        return Err("an allowed directory of / would be shown as the whole root; allow the directories below it".into());
    };
    let mut parent = root.try_clone().map_err(|e| format!("{e}"))?;
    for name in above {
        match step(&parent, name, at)? {
            Some(next) => parent = next,
            None => return Ok(None),
        }
    }
    Ok(step(&parent, last, at)?.map(|fd| Place { parent, name: (*last).to_owned(), fd }))
}

/// The directory `at` inside the new root, made one component at a time; a
/// symlink on the way is refused, never followed.
fn dir_in(root: &OwnedFd, at: &Path) -> Result<Place, String> {
    dir_or_link_in(root, at)?.ok_or_else(|| {
        format!(
            "{}: a snapshot shown earlier holds a symlink or a file where this directory of rsync's root goes; \
             nothing is mounted through it (allow the directory by a path without it)",
            at.display()
        )
    })
}

/// The file `at` inside the new root, made empty if missing. `None` where a
/// snapshot already shown there holds a symlink, at the file or on the way
/// (`/usr/lib64 -> lib` in an allowed `/usr`): that stays as it is, and rsync
/// finds the snapshot's own copy through it, inside its root.
fn file_in(root: &OwnedFd, at: &Path) -> Result<Option<Place>, String> {
    use nix::errno::Errno;
    use nix::sys::stat::{Mode, SFlag};
    let (Some(dir), Some(name)) = (at.parent(), at.file_name()) else {
        return Err(format!("{}: not a file path", at.display()));
    };
    let parent = if dir == Path::new("/") {
        root.try_clone().map_err(|e| format!("{e}"))?
    } else {
        match dir_or_link_in(root, dir)? {
            Some(place) => place.fd,
            None => return Ok(None),
        }
    };
    match nix::sys::stat::fstatat(&parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK => return Ok(None),
        Ok(_) => {}
        Err(Errno::ENOENT) => {
            let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            drop(nix::fcntl::openat(&parent, name, flags, Mode::from_bits_truncate(0o644)).map_err(|e| format!("{}: {e}", at.display()))?);
        }
        Err(e) => return Err(format!("{}: {e}", at.display())),
    }
    let fd = nix::fcntl::openat(&parent, name, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("{}: {e}", at.display()))?;
    Ok(Some(Place { parent, name: name.to_owned(), fd }))
}

fn proc_fd(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Binds `src` onto `place`, both by descriptor, then sets `flags` on the new
/// mount (reached by its name in its parent, which now leads to it).
fn bind(src: &OwnedFd, place: &Place, at: &Path, flags: MsFlags) -> Result<(), String> {
    let target = proc_fd(&place.fd);
    mount(Some(proc_fd(src).as_str()), target.as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| format!("mounting on {}: {e}", at.display()))?;
    let top = nix::fcntl::openat(
        &place.parent,
        place.name.as_os_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", at.display()))?;
    mount(None::<&str>, proc_fd(&top).as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags, None::<&str>)
        .map_err(|e| format!("making {} {flags:?}: {e}", at.display()))
}

/// Builds rsync's world (see the module header) and makes it this process's
/// root; `parent` is snaprsync, which holds the write directories open.
fn confine(c: &Confinement, parent: u32) -> Result<(), String> {
    // Mounts of its own; no network (rsync talks over its stdin and stdout)
    // and no System V IPC shared with the host's root processes.
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC)
        .map_err(|e| format!("unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC): {e}"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| format!("making mounts private: {e}"))?;
    // Device snapshots are mounted where `read` will find them: in this
    // namespace only.
    for (dev, at) in &c.devices {
        super::ns::mount_device(dev, at)?;
    }
    // Everything is opened before the new root hides anything: room for it.
    let _room = super::ns::FdRoom::make(c.read.len() + c.write.len() + c.files.len())?;
    let mut read: Vec<(&PathBuf, OwnedFd)> = Vec::new();
    for r in &c.read {
        let fd = open_exact(&r.from, false)?;
        if r.ino != 0 {
            same_dir(&fd, r.ino, &r.from, &r.at)?;
        }
        read.push((&r.at, fd));
    }
    let mut write = Vec::new();
    for w in &c.write {
        // The directory snaprsync pinned, not whatever its path names now. A
        // mount can only be bound from this namespace's own copy of it, so it
        // is opened here (no symlink followed) and must be the very directory
        // snaprsync holds: same device, same inode.
        let held = PathBuf::from(format!("/proc/{parent}/fd/{}", w.fd));
        let pinned =
            nix::sys::stat::stat(&held).map_err(|e| format!("{} (snaprsync's hold on {}): {e}", held.display(), w.at.display()))?;
        let fd = open_exact(&w.at, false)?;
        same_dir(&fd, w.ino, &w.at, &w.at)?;
        let here = nix::sys::stat::fstat(&fd).map_err(|e| format!("{}: {e}", w.at.display()))?;
        if (here.st_dev, here.st_ino) != (pinned.st_dev, pinned.st_ino) || pinned.st_ino != w.ino {
            return Err(format!(
                "{} is not the directory that was resolved when the key was used (replaced since); run the backup again",
                w.at.display()
            ));
        }
        write.push((&w.at, fd));
    }
    // Files are named as rsync and the loader name them (`/lib64/ld-linux...`
    // may be a symlink): the name is kept, the file it leads to is shown.
    let files = c.files.iter().map(|f| Ok((f, open_exact(f, true)?))).collect::<Result<Vec<_>, String>>()?;
    let root = &c.root;
    mount(Some("tmpfs"), root, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755,size=1m,nr_inodes=4096"))
        .map_err(|e| format!("mounting a tmpfs on {}: {e}", root.display()))?;
    let root_fd = nix::fcntl::open(root, DIR_PATH, nix::sys::stat::Mode::empty()).map_err(|e| format!("{}: {e}", root.display()))?;
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    // Nothing is shown at the root itself: the tmpfs must stay the top mount
    // there, or what is created and remounted below would be the host's.
    if read.iter().map(|(at, _)| *at).chain(write.iter().map(|(at, _)| *at)).any(|p| plain(p).is_ok_and(|v| v.is_empty())) {
        return Err("an allowed directory of / would be shown as the whole root; allow the directories below it".into());
    }
    // Parents before children: a nested snapshot is mounted inside its parent's.
    read.sort_by_key(|(at, _)| at.components().count());
    for (at, fd) in &read {
        bind(fd, &dir_in(&root_fd, at)?, at, ro)?;
    }
    for (at, fd) in &write {
        bind(fd, &dir_in(&root_fd, at)?, at, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
    }
    for (f, fd) in &files {
        // Not nodev: /dev/null is a device, and the list holds no other.
        if let Some(place) = file_in(&root_fd, f)? {
            bind(fd, &place, f, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID)?;
        }
    }
    // rsync resolves relative paths from here, as on the host; an empty
    // directory where the host's is not shown.
    let _ = dir_in(&root_fd, &c.cwd);
    // MS_BIND: this mount alone, never the filesystem beneath it.
    mount(None::<&str>, proc_fd(&root_fd).as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | ro, None::<&str>)
        .map_err(|e| format!("making the new root read-only: {e}"))?;
    // The new root over the old one, and the old one detached: nothing of the
    // host's tree stays reachable, not even through `..` or /proc.
    nix::unistd::fchdir(&root_fd).map_err(|e| format!("{}: {e}", root.display()))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("/: {e}"))?;
    if std::env::set_current_dir(&c.cwd).is_err() {
        log_cwd(&c.cwd);
    }
    super::jail::apply(!c.write.is_empty())
}

/// Pure: what rsync sees of the snapshots in restricted mode, as (where, what):
/// every allowed directory that lies in a snapshotted volume, shown from the
/// snapshot, and every snapshotted volume that lies in an allowed directory.
/// Nothing else of the tree is shown, so nothing live is read.
pub fn read_map(set: &SnapshotSet, allow: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    let mut out: Vec<(PathBuf, PathBuf)> = Vec::new();
    let shown = set.shown();
    for a in allow {
        // The deepest volume (or bind mount's view) that holds the allowed directory shows it.
        if let Some(inside) = set.locate(a) {
            out.push((a.clone(), inside));
        }
        // Volumes and views below it are shown over their empty place in the parent snapshot.
        for (live, snap) in shown.iter().filter(|(live, _)| live.starts_with(a) && live != a) {
            out.push((live.to_path_buf(), snap.to_path_buf()));
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
        let plain =
            Spec { parent: 42, confine: None, pivot: None, program: "/usr/bin/rsync".into(), args: vec!["--server".into(), "-- x".into()] };
        assert_eq!(Spec::parse(&plain.to_args()).unwrap(), plain);
        let rooted = Spec { pivot: Some("/var/lib/snaprsync/exec-root".into()), ..plain.clone() };
        assert_eq!(Spec::parse(&rooted.to_args()).unwrap(), rooted);
        let confined = Spec {
            confine: Some(Confinement {
                root: "/var/lib/snaprsync/root".into(),
                read: vec![Shown { at: "/srv/a b".into(), from: "/srv/.snaprsync/s-0/a b".into(), ino: 257 }],
                write: vec![Writable { at: "/in".into(), fd: 7, ino: 300 }],
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
            views: Vec::new(),
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
        // A bind mount of a directory inside a volume: that directory of the snapshot, and nothing else of it.
        let mut s = set(&[("/data", "/data/.s/a-0"), ("/data/www/n", "/data/.s/a-1")]);
        assert!(s.show(Path::new("/srv/www"), Path::new("/data/www")));
        assert_eq!(read_map(&s, &["/srv/www".into()]), pairs(&[("/srv/www", "/data/.s/a-0/www"), ("/srv/www/n", "/data/.s/a-1")]));
        assert_eq!(read_map(&s, &["/srv".into()]), pairs(&[("/srv/www", "/data/.s/a-0/www"), ("/srv/www/n", "/data/.s/a-1")]));
    }

    #[test]
    fn ldd_output_gives_the_files() {
        let out = "\tlinux-vdso.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(ldd_paths(out), vec![PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"), PathBuf::from("/lib64/ld-linux-x86-64.so.2")]);
        assert!(ldd_paths("\tnot a dynamic executable\n").is_empty());
    }

    /// A mount target is made inside the new root one component at a time:
    /// a symlink on the way (one a snapshot shown earlier holds) is refused,
    /// never followed, and nothing is made where it leads.
    #[test]
    fn targets_never_follow_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let (root, outside) = (d.path().join("root"), d.path().join("outside"));
        std::fs::create_dir_all(root.join("shown")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("shown/link")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("shown/up")).unwrap();
        let fd = nix::fcntl::open(&root, DIR_PATH, nix::sys::stat::Mode::empty()).unwrap();
        for at in ["/shown/link/x", "/shown/link", "/shown/up/outside/y"] {
            let err = dir_in(&fd, Path::new(at)).err().unwrap_or_else(|| panic!("{at}: a symlink was followed"));
            assert!(err.contains("a symlink"), "{at}: {err}");
        }
        // A symlink on the way to a file: left as it is, nothing made through it.
        assert!(file_in(&fd, Path::new("/shown/link/passwd")).unwrap().is_none());
        // A symlink where a file goes stays as it is: nothing is bound over or through it.
        assert!(file_in(&fd, Path::new("/shown/link")).unwrap().is_none());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "something was made through the symlink");
        // Plain targets are made.
        assert!(dir_in(&fd, Path::new("/srv/new/dir")).is_ok() && root.join("srv/new/dir").is_dir());
        assert!(file_in(&fd, Path::new("/etc/passwd")).unwrap().is_some() && root.join("etc/passwd").is_file());
    }

    #[test]
    fn mounted_paths_are_plain() {
        assert_eq!(plain(Path::new("/srv/x")).unwrap(), ["srv", "x"]);
        assert!(plain(Path::new("/")).unwrap().is_empty());
        assert!(plain(Path::new("/srv/../etc")).is_err());
    }
}
