//! btrfs provider: a read-only snapshot of each subvolume holding a source
//! path, plus every subvolume nested below a source path (a btrfs snapshot
//! shows nested subvolumes as empty directories). A source on a bind mount
//! of a directory inside a subvolume (`mount --bind /data/www /srv/www`) gets
//! the snapshot of that subvolume, reached through a mount that shows its
//! root, and the set's view of the bound directory (see [`Btrfs::reach`]).
//! Below a directory that `btrfs_skip_nested` names, nested subvolumes are
//! neither walked nor snapshotted nor shown (other tools' snapshots that the
//! backup excludes: each shown costs a bind mount).
//!
//! Snapshots are stored on the same filesystem, in a subvolume named
//! `btrfs_snapshot_dir` (default `.snaprsync`) at the root of the mount, as
//! `<name>/<name>` with `<name>` = `snaprsync-<UTC time>-p<pid>-<n>`: the name
//! says who made it and when, so a later sweep can recognise what a killed run
//! left. Each has a directory of its own so that a run's snapshots, made all
//! at once, share transaction commits (see [`snapshot_place`]).
//!
//! Snapshots are made, listed and deleted with the btrfs ioctls (through the
//! `btrfs-uapi` crate), not one `btrfs` process each: a run with many nested
//! subvolumes would otherwise pay a process start per subvolume.
//!
//! A name alone proves nothing. So snaprsync deletes only real subvolumes
//! (checked with lstat) in a snapshot directory that is a root-owned subvolume
//! with mode 0700, reached through directories only root can change, each in
//! a plain directory of its own there (or directly in it, as earlier versions
//! made them); anything else is left alone. The delete names the entry inside
//! its directory, opened without following a symlink, so the kernel never
//! follows one either.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::mountinfo::{self, Mount};
use crate::provider::{self, Leftover, Parts, SnapshotSet, Snapshotter, Sweeper, VolumeSnapshot};

/// The inode number of every btrfs subvolume's root directory.
const SUBVOLUME_ROOT_INO: u64 = 256;

pub use crate::stamp::NAME_PREFIX;

pub struct Btrfs {
    mounts: Vec<Mount>,
    snapshot_dir: String,
    /// `btrfs_skip_nested`: names below a source where the walk stops.
    skip: Vec<String>,
    stamp: String,
}

impl Btrfs {
    pub fn new(mounts: Vec<Mount>, snapshot_dir: &str, skip: &[String]) -> Self {
        Btrfs { mounts, snapshot_dir: snapshot_dir.to_owned(), skip: skip.to_vec(), stamp: crate::stamp::run_stamp().to_owned() }
    }

    fn mount_of(&self, path: &Path) -> Result<&Mount> {
        let m =
            mountinfo::find(&self.mounts, path).ok_or_else(|| Error::Snapshot { path: path.into(), msg: "no mount holds it".into() })?;
        if m.fstype != "btrfs" {
            return Err(Error::NoProvider { path: path.into(), fstype: m.fstype.clone() });
        }
        Ok(m)
    }

    /// Where the source `s` is snapshotted from. Mostly its own mount, with
    /// the subvolume root at or above `s` there. When `s` lies on a bind
    /// mount of a directory inside a subvolume (`mount --bind /data/www
    /// /srv/www`, which shows no subvolume root), another mount of the same
    /// filesystem that reaches that subvolume's root (`/data`), checked to show
    /// the very same directory; a layout with none is refused, never read live.
    fn reach(&self, s: &Path) -> Result<Reached> {
        let own = self.mount_of(s)?;
        let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).map_err(|e| Error::io(p, e));
        let (want, want_top) = (id(s)?, id(&own.mount_point)?);
        // A mount of a plain directory (a bind mount): its subvolume is
        // snapshotted through a mount that shows the subvolume's root.
        if want_top.1 != SUBVOLUME_ROOT_INO {
            let rest = s.strip_prefix(&own.mount_point).unwrap_or(Path::new(""));
            for (other, bound) in mountinfo::reaching(&self.mounts, own) {
                let path = if rest.as_os_str().is_empty() { bound.clone() } else { bound.join(rest) };
                // The same directory, not one renamed or put in its place since the bind.
                if id(&path).ok() != Some(want) || id(&bound).ok() != Some(want_top) {
                    log::debug!("{}: not the directory the bind mount {} shows; not used", path.display(), own.mount_point.display());
                    continue;
                }
                let Some(root) = subvolume_root(&path, other)? else { continue };
                log::debug!(
                    "{} is a bind mount of {}: snapshotting the subvolume {}",
                    own.mount_point.display(),
                    bound.display(),
                    root.display()
                );
                // What the bind mount shows of that subvolume: all it shows,
                // or, for a subvolume nested inside it, that one's place.
                let bind = match root.strip_prefix(&bound) {
                    Ok(inside) => (own.mount_point.join(inside), root.clone()),
                    Err(_) => (own.mount_point.clone(), bound),
                };
                return Ok(Reached { mount: other.clone(), path, root, bind: Some(bind) });
            }
        }
        // A subvolume nested inside the directory is seen where it is.
        if let Some(root) = subvolume_root(s, own)? {
            return Ok(Reached { mount: own.clone(), path: s.to_owned(), root, bind: None });
        }
        Err(Error::Unmatched {
            arg: s.display().to_string(),
            why: format!(
                "it is on a bind mount at {} of the directory {} inside a btrfs subvolume of {}, and no mount of that filesystem \
                 shows the subvolume itself, so it cannot be snapshotted; mount the subvolume too (for example \
                 `mount -o subvolid=5 {} /mnt/top`) and run again",
                own.mount_point.display(),
                own.root.display(),
                own.source,
                own.source
            ),
        })
    }

    /// Every subvolume of `mount` visible below one of `sources`, as mounted
    /// paths, each with whether it is frozen already ([`Nested::frozen`]): a
    /// walk down from each source's subvolume, so that its cost grows with
    /// what is nested there, not with every subvolume of the filesystem.
    fn nested_below(&self, mount: &Mount, sources: &[PathBuf]) -> Result<Vec<Nested>> {
        let own = mount.mount_point.join(&self.snapshot_dir);
        let mut roots = Vec::new();
        for s in sources.iter().filter(|s| self.mount_of(s).is_ok_and(|m| m == mount)) {
            roots.extend(subvolume_root(s, mount)?);
        }
        roots.sort();
        roots.dedup();
        // Below a source and not passed over by `btrfs_skip_nested` there.
        let below = |p: &Path| sources.iter().any(|s| p.starts_with(s) && !skipped_below(p, s, &self.skip));
        // Only where a source is, or what leads to one.
        let relevant = |p: &Path| !p.starts_with(&own) && (below(p) || sources.iter().any(|s| s.starts_with(p)));
        // What a directory holding subvolumes can hold of that, before any of
        // their names is looked up: a directory off every source's way (where
        // other tools keep theirs) is passed over whole.
        let place = |d: &Path| {
            if d.starts_with(&own) {
                Place::Nothing
            } else if own.starts_with(d) || sources.iter().any(|s| s.starts_with(d) && s != d) {
                Place::ByName
            } else if below(d) {
                Place::All
            } else {
                Place::Nothing
            }
        };
        let walked: Result<Vec<Vec<Nested>>> = roots.iter().map(|r| nested_in(r, &place, &relevant)).collect();
        let found = match walked {
            Ok(lists) => lists.concat(),
            // A name that is not UTF-8, which the crate does not resolve:
            // btrfs-progs prints it as it is (and each is snapshotted).
            Err(Error::Syscall { source, .. }) if source.raw_os_error() == Some(nix::libc::EINVAL) => {
                let out = Cmd::new("btrfs").arg("subvolume").arg("list").arg(&mount.mount_point).run_bytes()?;
                let root = mount.root.strip_prefix("/").unwrap_or(&mount.root);
                parse_subvolume_list(&out)
                    .into_iter()
                    .filter_map(|p| p.strip_prefix(root).ok().map(|rel| mount.mount_point.join(rel)))
                    .map(|path| Nested { path, read_only: false })
                    .collect()
            }
            Err(e) => return Err(e),
        };
        Ok(found
            .into_iter()
            .filter(|n| !n.path.starts_with(&own))
            .filter(|n| sources.iter().any(|s| n.path.starts_with(s) && &n.path != s && !skipped_below(&n.path, s, &self.skip)))
            .collect())
    }

    /// The snapshot directory of `mount`, made if missing (for snapshotting
    /// `origin`). One that the sweep could not trust is refused, not used.
    fn ensure_snapshot_dir(&self, mount: &Mount, origin: &Path) -> Result<PathBuf> {
        let dir = mount.mount_point.join(&self.snapshot_dir);
        let refuse = |why: String| Error::Snapshot {
            path: origin.to_owned(),
            msg: format!(
                "snapshot directory {}: {why}; snaprsync keeps snapshots only in a root-owned btrfs subvolume with mode 0700 \
                 on a path only root can change: fix or remove it",
                dir.display()
            ),
        };
        check_ancestors(&dir).map_err(refuse)?;
        let mut made = false;
        match std::fs::symlink_metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                made = true;
                if let Err(e) = create_subvolume(&dir) {
                    // Another run may have made it at the same moment.
                    if std::fs::symlink_metadata(&dir).is_err() {
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
        let facts = Facts::lstat(&dir).map_err(|e| Error::io(&dir, e))?;
        // New ones come out as the umask says, and earlier versions left 0755.
        if snapshot_dir_problem(&facts).is_some() && may_tighten(&facts) {
            tighten(&dir, made).map_err(|e| refuse(format!("cannot set its mode to 0700: {e}")))?;
        }
        check_snapshot_dir(&dir).map_err(refuse)?;
        Ok(dir)
    }
}

/// Where one source is snapshotted from (see [`Btrfs::reach`]).
struct Reached {
    /// The mount the subvolume is seen through.
    mount: Mount,
    /// The source, seen through that mount.
    path: PathBuf,
    /// The subvolume's root there.
    root: PathBuf,
    /// For a bind mount of a directory: its mount point, and that directory
    /// seen through `mount`.
    bind: Option<(PathBuf, PathBuf)>,
}

/// What the checks need to know of one path, from lstat: a symlink is seen as
/// itself, never as what it points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Facts {
    kind: Kind,
    ino: u64,
    uid: u32,
    /// Permission bits, with setuid, setgid and sticky.
    mode: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Symlink,
    Other,
}

impl Facts {
    fn of(meta: &std::fs::Metadata) -> Facts {
        let t = meta.file_type();
        let kind = if t.is_symlink() {
            Kind::Symlink
        } else if t.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        };
        Facts { kind, ino: meta.ino(), uid: meta.uid(), mode: meta.mode() & 0o7777 }
    }

    fn lstat(path: &Path) -> std::io::Result<Facts> {
        std::fs::symlink_metadata(path).map(|m| Facts::of(&m))
    }

    /// Why this is not the root of a btrfs subvolume.
    fn not_a_subvolume(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Symlink => Some("it is a symlink"),
            Kind::Other => Some("it is not a directory"),
            Kind::Dir if self.ino != SUBVOLUME_ROOT_INO => Some("it is a plain directory, not a btrfs subvolume"),
            Kind::Dir => None,
        }
    }
}

/// Why a snapshot directory cannot be trusted to hold only what root put there.
/// Root-owned with no access for others is what makes every entry root's.
fn snapshot_dir_problem(f: &Facts) -> Option<String> {
    if let Some(why) = f.not_a_subvolume() {
        return Some(why.into());
    }
    if f.uid != 0 {
        return Some(format!("it is owned by uid {}, not root", f.uid));
    }
    if f.mode & 0o077 != 0 {
        return Some(format!("its mode is {:04o}, not 0700", f.mode));
    }
    None
}

/// Why a user other than root could rename or replace what is in `f`, a
/// directory above a snapshot directory. In a sticky one only an entry's owner
/// can, and the entry below is checked to be root's.
fn ancestor_problem(f: &Facts) -> Option<String> {
    match f.kind {
        Kind::Symlink => return Some("it is a symlink".into()),
        Kind::Other => return Some("it is not a directory".into()),
        Kind::Dir => {}
    }
    if f.uid != 0 {
        return Some(format!("it is owned by uid {}, not root", f.uid));
    }
    if f.mode & 0o022 != 0 && f.mode & 0o1000 == 0 {
        return Some(format!("its mode {:04o} lets others than root change it", f.mode));
    }
    None
}

/// Whether a snapshot directory may be set to 0700 in place: a root-owned
/// subvolume only root could ever write to, so all in it is root's already.
fn may_tighten(f: &Facts) -> bool {
    f.not_a_subvolume().is_none() && f.uid == 0 && f.mode & 0o022 == 0
}

/// Sets a snapshot directory to 0700 through a handle opened without following
/// a symlink, and rechecked, so what is changed is what was checked. For one
/// this run `just_made`, that is routine: logged at debug, not in the night's log.
fn tighten(dir: &Path, just_made: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_DIRECTORY).open(dir)?;
    let facts = Facts::of(&f.metadata()?);
    if !may_tighten(&facts) {
        return Err(std::io::Error::other("it changed while being checked"));
    }
    f.set_permissions(std::fs::Permissions::from_mode(0o700))?;
    let level = if just_made { log::Level::Debug } else { log::Level::Info };
    log::log!(level, "snapshot directory {}: mode {:04o} set to 0700, so that only root can enter it", dir.display(), facts.mode);
    Ok(())
}

/// That every directory above `dir` is one only root can change, so that the
/// path reaches the same directory when checked and when used.
fn check_ancestors(dir: &Path) -> std::result::Result<(), String> {
    for a in dir.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
        let facts = Facts::lstat(a).map_err(|e| format!("{}: {e}", a.display()))?;
        if let Some(why) = ancestor_problem(&facts) {
            return Err(format!("{} above it: {why}", a.display()));
        }
    }
    Ok(())
}

/// That `dir` is a snapshot directory only root can have put anything in.
fn check_snapshot_dir(dir: &Path) -> std::result::Result<(), String> {
    let facts = Facts::lstat(dir).map_err(|e| e.to_string())?;
    if let Some(why) = snapshot_dir_problem(&facts) {
        return Err(why);
    }
    check_ancestors(dir)
}

/// That `path` is a snapshot snaprsync may delete: a real subvolume in a
/// snapshot directory that passes [`check_snapshot_dir`], in a directory of
/// its own there (or directly in it, as earlier versions made them).
fn check_snapshot(path: &Path) -> std::result::Result<(), String> {
    let holder = holder_of(path);
    let dir = holder.unwrap_or(path).parent().ok_or("it has no parent directory")?;
    check_snapshot_dir(dir).map_err(|why| format!("snapshot directory {}: {why}", dir.display()))?;
    if let Some(holder) = holder {
        let facts = Facts::lstat(holder).map_err(|e| format!("{}: {e}", holder.display()))?;
        if let Some(why) = holder_problem(&facts) {
            return Err(format!("its directory {}: {why}", holder.display()));
        }
    }
    let facts = Facts::lstat(path).map_err(|e| e.to_string())?;
    facts.not_a_subvolume().map_or(Ok(()), |why| Err(why.into()))
}

/// What a sweep removes of `holder` (whose `facts` say it is a plain directory
/// named like a snapshot): the snapshot in it, or the directory itself when it
/// is empty (its run ended between making it and the snapshot); `None` when
/// it is gone since listed (its run's remover, or another sweep). Why not,
/// otherwise.
///
/// What is in it is read before it is looked at, so that a live run's
/// snapshot appearing or going meanwhile is never mistaken for something
/// else: the kernel shows a new snapshot whole, as a subvolume, or not at all.
fn in_holder(holder: &Path, facts: &Facts) -> std::result::Result<Option<PathBuf>, String> {
    if let Some(why) = holder_problem(facts) {
        return Err(why);
    }
    let name = holder.file_name().unwrap_or_default();
    let entries = match std::fs::read_dir(holder).and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect::<std::io::Result<Vec<_>>>()) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    match entries.as_slice() {
        [] => Ok(Some(holder.to_owned())),
        [only] if only == name => {
            let inner = holder.join(name);
            match Facts::lstat(&inner) {
                Ok(f) => match f.not_a_subvolume() {
                    None => Ok(Some(inner)),
                    Some(why) => Err(format!("it is a plain directory, and {} in it is not a snapshot: {why}", inner.display())),
                },
                // Deleted since: the directory is left, empty.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(holder.to_owned())),
                Err(e) => Err(format!("{}: {e}", inner.display())),
            }
        }
        _ => Err("it is a plain directory holding other things than one snapshot".into()),
    }
}

/// Removes the empty directory `holder` that held a snapshot (rmdir: it never
/// follows a link, and never removes anything in it).
fn remove_holder(holder: &Path) -> Result<()> {
    log::debug!("rmdir {}", holder.display());
    match std::fs::remove_dir(holder) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(holder, e)),
        _ => Ok(()),
    }
}

/// Deletes one snapshot, if [`check_snapshot`] passes.
fn delete_snapshot(path: &Path) -> Result<()> {
    check_snapshot(path)
        .map_err(|why| Error::io(path, std::io::Error::other(format!("not a snapshot snaprsync made ({why}); left alone"))))?;
    // Checked by lstat, then deleted by name in its directory. Nobody but
    // root can swap it in between: the snapshot directory is root-owned 0700,
    // so only root can add, rename or replace its entries, and the
    // directories above it are root's and closed to others, so only root can
    // move it or put a symlink in its place.
    let mut tries = 0;
    loop {
        match destroy(path) {
            // A just-released mount can hold it busy for a moment.
            Err(e) if tries < 5 && e.is_busy() => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50 * tries));
            }
            Err(e) => return Err(e),
            Ok(()) => return holder_of(path).map_or(Ok(()), remove_holder),
        }
    }
}

/// A failed btrfs command or ioctl while snapshotting `origin`, with the fix.
fn with_fix(origin: &Path, e: Error) -> Error {
    const FIX: &str = "snaprsync must run as root (or with CAP_SYS_ADMIN) and the filesystem needs free space";
    match e {
        Error::Command { cmd, stderr, .. } => Error::Snapshot { path: origin.to_owned(), msg: format!("{cmd}: {stderr}; {FIX}") },
        Error::Syscall { op, path, source } => {
            // The fix for what a user can cause (no space, a quota, not root, read-only), else the usual ones.
            let fix = crate::error::cause_and_fix(&source).unwrap_or(FIX);
            Error::Snapshot { path: origin.to_owned(), msg: format!("{op} {}: {source}; {fix}", path.display()) }
        }
        e => e,
    }
}

/// Opens a directory for an ioctl; with `nofollow`, a symlink in the last
/// component is refused rather than followed.
fn open_dir(path: &Path, nofollow: bool) -> std::io::Result<File> {
    let mut flags = nix::fcntl::OFlag::O_DIRECTORY;
    if nofollow {
        flags |= nix::fcntl::OFlag::O_NOFOLLOW;
    }
    std::fs::OpenOptions::new().read(true).custom_flags(flags.bits()).open(path)
}

/// The last component of `path`, for the ioctls that take a name.
fn leaf_name(path: &Path) -> std::io::Result<CString> {
    let name = path.file_name().ok_or_else(|| std::io::Error::other("it has no name"))?;
    CString::new(name.as_bytes()).map_err(std::io::Error::other)
}

/// A subvolume found nested below a source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Nested {
    path: PathBuf,
    /// Its read-only flag was set when the walk reached it.
    read_only: bool,
}

/// What a directory that holds subvolumes holds of what a run needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Nothing: no source lies at or below it, and it lies below none.
    Nothing,
    /// Everything: it lies below a source.
    All,
    /// Some: it leads to a source (or to the snapshot directory); each name decides.
    ByName,
}

/// Every subvolume nested in the subvolume whose root is `root`, at any
/// depth, that is `relevant`, as paths below it, from the kernel's references
/// of each subvolume to the ones in it; one that is not relevant is not
/// walked either. The references are grouped by the directory that holds
/// them, whose path is looked up once: a directory where `place` says
/// nothing is needed costs one lookup, however many subvolumes it holds.
fn nested_in(root: &Path, place: &dyn Fn(&Path) -> Place, relevant: &dyn Fn(&Path) -> bool) -> Result<Vec<Nested>> {
    let mut found = Vec::new();
    let mut todo = vec![(root.to_owned(), true)];
    while let Some((dir, is_root)) = todo.pop() {
        log::debug!("ioctl: BTRFS_IOC_GET_SUBVOL_ROOTREF (nested subvolumes) {}", dir.display());
        let fail = |source| Error::Syscall { op: "btrfs nested subvolume lookup ioctl in", path: dir.clone(), source };
        let fd = open_dir(&dir, false).map_err(fail)?;
        if !is_root {
            let flags = btrfs_uapi::subvolume::subvolume_flags_get(fd.as_fd()).map_err(|e| fail(e.into()))?;
            found.push(Nested { path: dir.clone(), read_only: flags.contains(btrfs_uapi::subvolume::SubvolumeFlags::RDONLY) });
        }
        let mut by_dir: std::collections::BTreeMap<u64, Vec<u64>> = std::collections::BTreeMap::new();
        for r in btrfs_uapi::subvolume::subvol_rootrefs(fd.as_fd()).map_err(|e| fail(e.into()))? {
            by_dir.entry(r.dirid).or_default().push(r.treeid);
        }
        for (dirid, trees) in by_dir {
            let first = btrfs_uapi::inode::ino_lookup_user(fd.as_fd(), trees[0], dirid).map_err(|e| fail(e.into()))?;
            let holder: PathBuf = dir.join(&first.path).components().collect();
            if place(&holder) == Place::Nothing {
                log::debug!("btrfs: {} subvolume(s) in {}: passed over (no source there)", trees.len(), holder.display());
                continue;
            }
            for (k, tree) in trees.into_iter().enumerate() {
                let name = match k {
                    0 => first.name.clone(),
                    _ => btrfs_uapi::inode::ino_lookup_user(fd.as_fd(), tree, dirid).map_err(|e| fail(e.into()))?.name,
                };
                let path = holder.join(name);
                if relevant(&path) {
                    todo.push((path, false));
                }
            }
        }
    }
    Ok(found)
}

/// Whether `path`, at or below the source `source`, is at or below a
/// directory that `btrfs_skip_nested` names (`skip`): the source's own name
/// and those above it do not count.
fn skipped_below(path: &Path, source: &Path, skip: &[String]) -> bool {
    path.strip_prefix(source).is_ok_and(|rest| rest.components().any(|c| skip.iter().any(|n| c.as_os_str() == n.as_str())))
}

/// Whether the read-only subvolume at `path` may be shown as it is, in place
/// of a snapshot: its root is root's, and every directory above it is one
/// only root can change (`seen` remembers the directories judged), so that
/// the path the exposure opens is the subvolume the walk found read-only.
fn frozen_in_place(path: &Path, seen: &mut std::collections::HashMap<PathBuf, bool>) -> bool {
    let own = Facts::lstat(path).is_ok_and(|f| f.not_a_subvolume().is_none() && f.uid == 0);
    own && path
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .all(|a| *seen.entry(a.to_owned()).or_insert_with(|| Facts::lstat(a).is_ok_and(|f| ancestor_problem(&f).is_none())))
}

/// From this many read-only subvolumes shown in one run, the log says how to skip them.
const MANY_SHOWN: usize = 1000;

/// At most this many snapshots are made at once (one thread each).
const MAX_PARALLEL: usize = 32;

/// Where the snapshot named `name` goes: `<dir>/<name>/<name>`, in a directory
/// of its own. The kernel holds the lock of the directory a snapshot is made in
/// until the transaction commits, so snapshots made in one shared directory
/// each wait for the previous one's commit; made in directories of their own,
/// at once, they share commits (nested subvolumes, and concurrent runs).
fn snapshot_place(dir: &Path, name: &str) -> PathBuf {
    dir.join(name).join(name)
}

/// The directory of its own that holds `path` (see [`snapshot_place`]);
/// `None` for a snapshot directly in the snapshot directory, as earlier
/// versions made them.
fn holder_of(path: &Path) -> Option<&Path> {
    let parent = path.parent()?;
    (parent.file_name().is_some() && parent.file_name() == path.file_name()).then_some(parent)
}

/// Why `f`, a directory holding one snapshot, could hold what someone other
/// than root put there (it is in the root-only snapshot directory, so only a
/// tool running as root could have made it so).
fn holder_problem(f: &Facts) -> Option<String> {
    match f.kind {
        Kind::Symlink => Some("it is a symlink".into()),
        Kind::Other => Some("it is not a directory".into()),
        Kind::Dir if f.ino == SUBVOLUME_ROOT_INO => Some("it is a subvolume, not a plain directory".into()),
        Kind::Dir if f.uid != 0 => Some(format!("it is owned by uid {}, not root", f.uid)),
        Kind::Dir if f.mode & 0o022 != 0 => Some(format!("its mode {:04o} lets others than root change it", f.mode)),
        Kind::Dir => None,
    }
}

/// Makes the directory of its own for `snap`, then the snapshot of `origin`
/// in it; the directory goes again if the snapshot cannot be made.
fn make_snapshot(origin: &Path, snap: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let holder = snap.parent().expect("a snapshot place has a directory");
    std::fs::DirBuilder::new().mode(0o700).create(holder).map_err(|e| Error::io(holder, e))?;
    snapshot(origin, snap).inspect_err(|_| {
        if let Err(e) = std::fs::remove_dir(holder) {
            log::warn!("{}: {e}", holder.display());
        }
    })
}

/// The transaction in which the snapshot at `snap` was made (its root's
/// `otransid`, "Gen at creation" in `btrfs subvolume show`), if it can be read.
fn created_in(snap: &Path) -> Option<u64> {
    let dir = open_dir(snap, true).ok()?;
    btrfs_uapi::subvolume::subvolume_info(dir.as_fd()).ok().map(|info| info.otransid)
}

/// Pure: what the log says of a run's snapshots, given each one's filesystem
/// (its mount's `major:minor`) and creation transaction. Snapshots made at
/// once often share a commit, but nothing in btrfs makes them: "one instant"
/// only when every one was made in the same commit of the same filesystem.
/// Nothing for one snapshot.
pub fn commit_summary(made: &[(String, Option<u64>)]) -> Option<String> {
    if made.len() < 2 {
        return None;
    }
    let generations: Vec<String> = made.iter().map(|(_, g)| g.map_or_else(|| "unknown".into(), |g| g.to_string())).collect();
    let generations = generations.join(", ");
    let n = made.len();
    let mut commits: Vec<(&str, u64)> = Vec::new();
    for (fs, g) in made {
        let Some(g) = g else {
            return Some(format!(
                "btrfs: {n} subvolumes snapshotted (generations {generations}): whether in one transaction commit cannot be told,                  so each is taken for its own point in time"
            ));
        };
        if !commits.contains(&(fs.as_str(), *g)) {
            commits.push((fs.as_str(), *g));
        }
    }
    Some(match commits.as_slice() {
        [(_, g)] => format!("btrfs: {n} subvolumes snapshotted at one instant (one transaction commit, generation {g})"),
        _ => format!(
            "btrfs: {n} subvolumes snapshotted in {} transaction commits (generations {generations}), each its own point in time: \
             btrfs does not guarantee one commit",
            commits.len()
        ),
    })
}

/// Runs `f` on every job, on up to [`MAX_PARALLEL`] threads, and returns the
/// results in the jobs' order. If a thread cannot be started, the ones there
/// are (this one at least) do all the jobs.
fn in_parallel<J: Sync, R: Send>(jobs: &[J], f: impl Fn(&J) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = jobs.get(i) else { break };
        let r = f(job);
        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    };
    std::thread::scope(|s| {
        for _ in 1..jobs.len().min(MAX_PARALLEL) {
            if std::thread::Builder::new().stack_size(256 * 1024).spawn_scoped(s, work).is_err() {
                break;
            }
        }
        work();
    });
    results.into_iter().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every job was run")).collect()
}

/// Runs one btrfs ioctl on the entry `path` names: `call` gets its directory,
/// opened without following a symlink, and its name there (which the kernel
/// looks up without following one either). Logged like a helper's command
/// line; a failure carries `op` and the path it is `about`.
fn on_entry(
    logged: std::fmt::Arguments,
    op: &'static str,
    about: &Path,
    path: &Path,
    call: impl FnOnce(BorrowedFd<'_>, &CStr) -> std::io::Result<()>,
) -> Result<()> {
    log::debug!("ioctl: {logged}");
    let fail = |source| Error::Syscall { op, path: about.to_owned(), source };
    let dir = path.parent().ok_or_else(|| fail(std::io::Error::other("it has no parent directory")))?;
    let parent = open_dir(dir, true).map_err(fail)?;
    let name = leaf_name(path).map_err(fail)?;
    call(parent.as_fd(), &name).map_err(fail)
}

/// Makes the empty subvolume `path`.
fn create_subvolume(path: &Path) -> Result<()> {
    let logged = format_args!("BTRFS_IOC_SUBVOL_CREATE_V2 {}", path.display());
    on_entry(logged, "btrfs subvolume create ioctl of", path, path, |dir, name| {
        Ok(btrfs_uapi::subvolume::subvolume_create(dir, name, &[])?)
    })
}

/// Makes `snap` a read-only snapshot of the subvolume at `origin`.
fn snapshot(origin: &Path, snap: &Path) -> Result<()> {
    let logged = format_args!("BTRFS_IOC_SNAP_CREATE_V2 read-only {} {}", origin.display(), snap.display());
    on_entry(logged, "btrfs snapshot ioctl (read-only) of", origin, snap, |dir, name| {
        let source = open_dir(origin, false)?;
        Ok(btrfs_uapi::subvolume::snapshot_create(dir, source.as_fd(), name, true, &[])?)
    })
}

/// Deletes the subvolume `path`.
fn destroy(path: &Path) -> Result<()> {
    let logged = format_args!("BTRFS_IOC_SNAP_DESTROY_V2 {}", path.display());
    on_entry(logged, "btrfs subvolume delete ioctl of", path, path, |dir, name| Ok(btrfs_uapi::subvolume::subvolume_delete(dir, name)?))
}

/// The nearest ancestor of `path` (itself included) that is a subvolume root,
/// no higher than `mount`'s mount point: above it is another filesystem, and
/// a mount of a directory inside a subvolume shows no subvolume root at all
/// (`None`). (The snapshot ioctl would take any directory for the root of the
/// subvolume holding it, so this is what keeps rsync from being shown a
/// whole subvolume where it asked for a directory in one.)
fn subvolume_root(path: &Path, mount: &Mount) -> Result<Option<PathBuf>> {
    let mut p = path;
    while p.starts_with(&mount.mount_point) {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.ino() == SUBVOLUME_ROOT_INO {
            return Ok(Some(p.to_owned()));
        }
        let Some(up) = p.parent() else { break };
        p = up;
    }
    Ok(None)
}

/// The `path` column of `btrfs subvolume list`.
fn parse_subvolume_list(out: &[u8]) -> Vec<PathBuf> {
    const PATH: &[u8] = b" path ";
    out.split(|&b| b == b'\n')
        .filter_map(|l| l.windows(PATH.len()).position(|w| w == PATH).map(|at| &l[at + PATH.len()..]))
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .collect()
}

/// Its row's parts: any btrfs mount; a sweep looks at every one.
pub const PARTS: Parts = Parts {
    detects: |m| m.fstype == "btrfs",
    build: |cfg, machine| Ok(Box::new(Btrfs::new(machine.mounts.clone(), &cfg.btrfs_snapshot_dir, &cfg.btrfs_skip_nested))),
    in_use: || true,
    sweeper: |cfg, machine| Ok(Box::new(Btrfs::new(machine.mounts.clone(), &cfg.btrfs_snapshot_dir, &cfg.btrfs_skip_nested))),
};

impl Snapshotter for Btrfs {
    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        // Which subvolumes, on which mounts, parents first; each source as
        // seen through the mount its subvolume is snapshotted from.
        let mut origins: Vec<(PathBuf, Mount)> = Vec::new();
        let mut mounts: Vec<Mount> = Vec::new();
        let mut reached_sources = Vec::new();
        let mut binds: Vec<(PathBuf, PathBuf)> = Vec::new();
        for s in sources {
            let r = self.reach(s)?;
            if !mounts.contains(&r.mount) {
                mounts.push(r.mount.clone());
            }
            binds.extend(r.bind);
            reached_sources.push(r.path);
            origins.push((r.root, r.mount));
        }
        // One subvolume listing per filesystem, however many sources it holds.
        // A nested subvolume that is read-only already (another tool's
        // snapshot: Snapper's, btrbk's) is frozen: it is shown as it is, at
        // its place, not snapshotted again.
        let mut frozen: Vec<PathBuf> = Vec::new();
        let mut judged = std::collections::HashMap::new();
        for mount in mounts {
            for nested in self.nested_below(&mount, &reached_sources).map_err(|e| with_fix(&mount.mount_point, e))? {
                if nested.read_only && frozen_in_place(&nested.path, &mut judged) {
                    frozen.push(nested.path);
                } else {
                    origins.push((nested.path, mount.clone()));
                }
            }
        }
        frozen.sort();
        frozen.dedup();
        if frozen.len() >= MANY_SHOWN {
            // Each costs a bind mount; say how to spare them when nobody reads them.
            log::info!(
                "btrfs: {} read-only subvolumes below the sources shown as they are, a bind mount each; if the backup leaves \
                 them out, name their directory in btrfs_skip_nested (such as [\".snapshots\"]) and the run skips them",
                frozen.len()
            );
        } else if !frozen.is_empty() {
            log::debug!("btrfs: {} read-only subvolume(s) below the sources shown as they are, not snapshotted", frozen.len());
        }
        if !self.skip.is_empty() {
            log::debug!("btrfs: nested subvolumes in directories named {} below the sources are not shown", self.skip.join(", "));
        }
        origins.sort_by(|a, b| a.0.components().count().cmp(&b.0.components().count()).then(a.0.cmp(&b.0)));
        origins.dedup_by(|a, b| a.0 == b.0);
        // One snapshot per subvolume (each has a device number of its own),
        // however many places show it: the others are shown from it.
        let mut seen: Vec<(u64, PathBuf)> = Vec::new();
        origins.retain(|(origin, _)| {
            let Ok(dev) = std::fs::metadata(origin).map(|m| m.dev()) else { return true };
            match seen.iter().find(|(d, _)| *d == dev) {
                Some((_, first)) => {
                    binds.push((origin.clone(), first.clone()));
                    false
                }
                None => {
                    seen.push((dev, origin.clone()));
                    true
                }
            }
        });

        // Each mount's snapshot directory, checked once however many origins it holds.
        let mut dirs: Vec<(&Mount, PathBuf)> = Vec::new();
        let mut jobs = Vec::new();
        let mut filesystems = Vec::new();
        for (n, (origin, mount)) in origins.iter().enumerate() {
            let dir = match dirs.iter().find(|(m, _)| *m == mount) {
                Some((_, dir)) => dir.clone(),
                None => {
                    let dir = self.ensure_snapshot_dir(mount, origin).map_err(|e| with_fix(origin, e))?;
                    dirs.push((mount, dir.clone()));
                    dir
                }
            };
            jobs.push((origin, snapshot_place(&dir, &format!("{}-{n}", self.stamp))));
            filesystems.push(mount.dev.clone());
        }
        // All at once: snapshots made together can share transaction commits.
        let made = in_parallel(&jobs, |(origin, snap)| make_snapshot(origin, snap));
        let mut set = SnapshotSet { provider: "btrfs", ..SnapshotSet::default() };
        let mut failed = None;
        for ((origin, snap), done) in jobs.into_iter().zip(made) {
            match done {
                Ok(()) => {
                    set.volumes.push(VolumeSnapshot { origin: origin.clone(), id: snap.display().to_string(), snapshot: snap, mount: None })
                }
                Err(e) => drop(failed.get_or_insert(with_fix(origin, e))),
            }
        }
        if failed.is_none() {
            set.views.extend(frozen.into_iter().map(|f| provider::View { at: f.clone(), from: f }));
        }
        for (at, live) in &binds {
            if failed.is_none() && !set.show(at, live) {
                failed = Some(Error::Unmatched {
                    arg: at.display().to_string(),
                    why: format!("no snapshot of this run holds {}", live.display()),
                });
            }
        }
        if failed.is_none() {
            let made: Vec<(String, Option<u64>)> =
                filesystems.into_iter().zip(&set.volumes).map(|(fs, v)| (fs, created_in(&v.snapshot))).collect();
            if let Some(said) = commit_summary(&made) {
                log::info!("{said}");
            }
        }
        match failed {
            Some(e) => Err(provider::undo_partial(self, &set, e)),
            None => Ok(set),
        }
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        provider::remove_last_first(set, |v| {
            delete_snapshot(&v.snapshot).inspect_err(|e| log::error!("could not remove snapshot {}: {e}", v.snapshot.display()))
        })
    }

    fn removal_can_detach(&self) -> bool {
        true
    }
}

impl Sweeper for Btrfs {
    fn name(&self) -> &'static str {
        "btrfs"
    }

    fn leftovers(&self) -> Result<Vec<Leftover>> {
        let mut found = Vec::new();
        for m in self.mounts.iter().filter(|m| m.fstype == "btrfs") {
            let dir = m.mount_point.join(&self.snapshot_dir);
            let Ok(facts) = Facts::lstat(&dir) else { continue };
            let untrusted = |why: String| {
                log::warn!("snapshot directory {}: {why}; nothing in it is treated as snaprsync's, it is left alone", dir.display());
            };
            if let Err(why) = check_ancestors(&dir) {
                untrusted(why);
                continue;
            }
            if let Some(why) = snapshot_dir_problem(&facts) {
                if may_tighten(&facts) {
                    // As earlier versions left it: the next snapshot run sets it to 0700.
                    log::info!("snapshot directory {}: {why}; it is swept once a snapshot run has set it to 0700", dir.display());
                } else {
                    untrusted(why);
                }
                continue;
            }
            let Ok(items) = std::fs::read_dir(&dir) else { continue };
            for item in items.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                let Some(stamp) = stamp_of(&name) else { continue };
                let path = item.path();
                let leftover = |path| Leftover { provider: "btrfs", path, stamp: stamp.to_owned() };
                match Facts::lstat(&path).map(|f| (f, f.not_a_subvolume())) {
                    // Directly in the snapshot directory, as earlier versions made them.
                    Ok((_, None)) => found.push(leftover(path)),
                    Ok((f, Some(_))) if f.kind == Kind::Dir => match in_holder(&path, &f) {
                        Ok(Some(p)) => found.push(leftover(p)),
                        Ok(None) => log::debug!("{}: gone since listed", path.display()),
                        Err(why) => log::warn!("{}: not a snapshot snaprsync made ({why}); left alone", path.display()),
                    },
                    Ok((_, Some(why))) => log::warn!("{}: not a snapshot snaprsync made ({why}); left alone", path.display()),
                    // Removed since the listing (its own run's remover, or another sweep).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => log::debug!("{}: gone since listed", path.display()),
                    Err(e) => log::warn!("{}: {e}; left alone", path.display()),
                }
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        found.dedup();
        Ok(found)
    }

    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()> {
        let removed = match Facts::lstat(&leftover.path) {
            // An empty directory of its own, left by a run ended before its snapshot was made.
            Ok(f) if f.kind == Kind::Dir && f.ino != SUBVOLUME_ROOT_INO => remove_holder(&leftover.path),
            _ => delete_snapshot(&leftover.path),
        };
        match removed {
            // Another sweep, or another mount of the same filesystem, got it first.
            Err(_) if leftover.path.symlink_metadata().is_err() => Ok(()),
            r => r.map(drop),
        }
    }
}

/// The run stamp in a snapshot name `<stamp>-<n>`; `None` for names snaprsync
/// does not give, which are never touched.
use crate::stamp::stamp_of_name as stamp_of;

#[cfg(test)]
mod tests {
    use super::*;

    /// "one instant" only for snapshots of one commit of one filesystem.
    #[test]
    fn one_instant_only_when_every_snapshot_shares_one_commit() {
        let fs = |d: &str, g: Option<u64>| (d.to_owned(), g);
        assert_eq!(commit_summary(&[]), None);
        assert_eq!(commit_summary(&[fs("0:40", Some(7))]), None);
        let one = commit_summary(&[fs("0:40", Some(7)), fs("0:40", Some(7)), fs("0:40", Some(7))]).unwrap();
        assert_eq!(one, "btrfs: 3 subvolumes snapshotted at one instant (one transaction commit, generation 7)");
        for not_one in [
            vec![fs("0:40", Some(7)), fs("0:40", Some(8))],
            vec![fs("0:40", Some(7)), fs("0:41", Some(7))],
            vec![fs("0:40", Some(7)), fs("0:40", None)],
        ] {
            let said = commit_summary(&not_one).unwrap();
            assert!(!said.contains("one instant"), "{said}");
            assert!(said.contains("its own point in time"), "{said}");
        }
        assert_eq!(
            commit_summary(&[fs("0:40", Some(7)), fs("0:40", Some(8)), fs("0:40", Some(7))]).unwrap(),
            "btrfs: 3 subvolumes snapshotted in 2 transaction commits (generations 7, 8, 7), each its own point in time: \
             btrfs does not guarantee one commit"
        );
    }

    #[test]
    fn skip_names_count_only_below_the_source() {
        let skip = [".snapshots".to_string(), "timeshift-btrfs".to_string()];
        let src = Path::new("/data");
        for (p, want) in [
            ("/data/.snapshots", true),
            ("/data/.snapshots/5/snapshot", true),
            ("/data/home/.snapshots/1/snapshot", true),
            ("/data/timeshift-btrfs/snapshots/x/@", true),
            ("/data", false),
            ("/data/home", false),
            ("/data/.snapshots-old/1", false),
            ("/data/x.snapshots", false),
            ("/elsewhere/.snapshots", false),
        ] {
            assert_eq!(skipped_below(Path::new(p), src, &skip), want, "{p}");
        }
        // The source's own name, and the names above it, do not count.
        let inside = Path::new("/.snapshots/5/snapshot");
        assert!(!skipped_below(Path::new("/.snapshots/5/snapshot/var"), inside, &skip));
        assert!(skipped_below(Path::new("/.snapshots/5/snapshot/.snapshots/1"), inside, &skip));
        assert!(!skipped_below(Path::new("/data/.snapshots"), src, &[]), "nothing is skipped by default");
    }

    #[test]
    fn parses_subvolume_list() {
        let out = b"ID 256 gen 7 top level 5 path .snaprsync\nID 257 gen 9 top level 5 path data/with space/n\nID 258 gen 9 top level 5 path odd-\xff\n";
        let odd = PathBuf::from(std::ffi::OsStr::from_bytes(b"odd-\xff"));
        assert_eq!(parse_subvolume_list(out), vec![PathBuf::from(".snaprsync"), PathBuf::from("data/with space/n"), odd]);
    }

    #[test]
    fn each_snapshot_has_a_directory_of_its_own() {
        let snap = snapshot_place(Path::new("/m/.snaprsync"), "snaprsync-20260101T000000Z-p1-0");
        assert_eq!(snap, Path::new("/m/.snaprsync/snaprsync-20260101T000000Z-p1-0/snaprsync-20260101T000000Z-p1-0"));
        assert_eq!(holder_of(&snap), Some(Path::new("/m/.snaprsync/snaprsync-20260101T000000Z-p1-0")));
        // As earlier versions made them, and names that only look alike.
        assert_eq!(holder_of(Path::new("/m/.snaprsync/snaprsync-20260101T000000Z-p1-0")), None);
        assert_eq!(holder_of(Path::new("/m/.snaprsync/a/b")), None);
        assert_eq!(holder_of(Path::new("/x")), None);
    }

    #[test]
    fn a_holder_is_a_plain_directory_only_root_can_change() {
        assert_eq!(holder_problem(&dir(300, 0, 0o700)), None);
        assert_eq!(holder_problem(&dir(300, 0, 0o755)), None);
        for (f, why) in [
            (dir(256, 0, 0o700), "subvolume"),
            (dir(300, 1000, 0o700), "uid 1000"),
            (dir(300, 0, 0o775), "0775"),
            (dir(300, 0, 0o1777), "1777"),
            (Facts { kind: Kind::Symlink, ..dir(300, 0, 0o777) }, "symlink"),
            (Facts { kind: Kind::Other, ..dir(300, 0, 0o600) }, "not a directory"),
        ] {
            assert!(holder_problem(&f).is_some_and(|w| w.contains(why)), "{f:?}: {:?}", holder_problem(&f));
        }
    }

    /// What the sweep makes of a directory laid out as a snapshot's own, read
    /// while other runs make and remove theirs (the subvolume case needs btrfs:
    /// the sweep tests in tests/cli.rs and tests/faults.rs).
    #[test]
    fn a_holder_is_judged_by_what_it_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let holder = tmp.path().join("snaprsync-20260101T000000Z-p1-0");
        let facts = dir(300, 0, 0o700);
        // Gone since listed: another sweep, or its run's remover, got it.
        assert_eq!(in_holder(&holder, &facts), Ok(None));
        std::fs::create_dir(&holder).unwrap();
        assert_eq!(in_holder(&holder, &facts), Ok(Some(holder.clone())), "empty: removed by rmdir");
        std::fs::write(holder.join("other"), "").unwrap();
        assert!(in_holder(&holder, &facts).is_err_and(|w| w.contains("other things")));
        std::fs::remove_file(holder.join("other")).unwrap();
        std::fs::write(holder.join(holder.file_name().unwrap()), "").unwrap();
        assert!(in_holder(&holder, &facts).is_err_and(|w| w.contains("not a snapshot: it is not a directory")));
        assert!(in_holder(&holder, &dir(300, 1000, 0o700)).is_err_and(|w| w.contains("uid 1000")));
    }

    #[test]
    fn in_parallel_runs_every_job_once_and_keeps_their_order() {
        for n in [0, 1, 2, MAX_PARALLEL, MAX_PARALLEL + 1, 500] {
            let jobs: Vec<usize> = (0..n).collect();
            let runs = std::sync::atomic::AtomicUsize::new(0);
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            let out = in_parallel(&jobs, |j| {
                runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                threads.lock().unwrap().insert(std::thread::current().id());
                std::thread::sleep(Duration::from_millis(1));
                j * 2
            });
            assert_eq!(out, jobs.iter().map(|j| j * 2).collect::<Vec<_>>());
            assert_eq!(runs.into_inner(), n);
            assert!(threads.into_inner().unwrap().len() <= n.clamp(1, MAX_PARALLEL));
        }
    }

    #[test]
    fn only_our_names_have_a_stamp() {
        assert_eq!(stamp_of("snaprsync-20261126T102709Z-p31107-0"), Some("snaprsync-20261126T102709Z-p31107"));
        assert_eq!(stamp_of("snaprsync-20261126T102709Z-p31107-12"), Some("snaprsync-20261126T102709Z-p31107"));
        for other in ["home-snap-1", "snaprsync-x-", "snaprsync-x-1a", "daily-0", "snaprsync"] {
            assert_eq!(stamp_of(other), None, "{other}");
        }
    }

    fn dir(ino: u64, uid: u32, mode: u32) -> Facts {
        Facts { kind: Kind::Dir, ino, uid, mode }
    }

    const LINK: Facts = Facts { kind: Kind::Symlink, ino: 256, uid: 0, mode: 0o777 };

    #[test]
    fn only_a_real_subvolume_is_a_snapshot() {
        assert_eq!(dir(256, 0, 0o755).not_a_subvolume(), None);
        assert_eq!(dir(256, 1000, 0o700).not_a_subvolume(), None);
        for (f, why) in [
            (LINK, "symlink"),
            (dir(257, 0, 0o755), "plain directory"),
            (Facts { kind: Kind::Other, ino: 256, uid: 0, mode: 0o644 }, "not a directory"),
        ] {
            assert!(f.not_a_subvolume().is_some_and(|w| w.contains(why)), "{f:?}");
        }
    }

    #[test]
    fn snapshot_dir_must_be_roots_subvolume_closed_to_others() {
        assert_eq!(snapshot_dir_problem(&dir(256, 0, 0o700)), None);
        assert_eq!(snapshot_dir_problem(&dir(256, 0, 0o500)), None);
        for (f, why) in [
            (LINK, "symlink"),
            (dir(300, 0, 0o700), "plain directory"),
            (dir(256, 1000, 0o700), "uid 1000"),
            (dir(256, 0, 0o755), "0755"),
            (dir(256, 0, 0o1777), "1777"),
            (dir(256, 0, 0o701), "0701"),
        ] {
            assert!(snapshot_dir_problem(&f).is_some_and(|w| w.contains(why)), "{f:?}: {:?}", snapshot_dir_problem(&f));
        }
    }

    #[test]
    fn only_roots_own_unshared_snapshot_dirs_are_tightened() {
        assert!(may_tighten(&dir(256, 0, 0o755)));
        assert!(may_tighten(&dir(256, 0, 0o711)));
        for f in [dir(256, 0, 0o775), dir(256, 0, 0o757), dir(256, 1000, 0o755), dir(257, 0, 0o755), LINK] {
            assert!(!may_tighten(&f), "{f:?}");
        }
    }

    #[test]
    fn ancestors_must_be_roots_and_closed_or_sticky() {
        assert_eq!(ancestor_problem(&dir(2, 0, 0o755)), None);
        assert_eq!(ancestor_problem(&dir(2, 0, 0o1777)), None, "a sticky /tmp");
        assert_eq!(ancestor_problem(&dir(2, 0, 0o700)), None);
        for f in [dir(2, 0, 0o777), dir(2, 0, 0o775), dir(2, 1000, 0o755), dir(2, 1000, 0o1777), LINK] {
            assert!(ancestor_problem(&f).is_some(), "{f:?}");
        }
    }

    #[test]
    fn facts_come_from_lstat_not_from_what_a_link_points_to() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::create_dir(&target).unwrap();
        let link = d.path().join("snaprsync-20200101T000000Z-p1-0");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(Facts::lstat(&link).unwrap().kind, Kind::Symlink);
        assert_eq!(Facts::lstat(&target).unwrap().kind, Kind::Dir);
        let err = check_snapshot(&link).unwrap_err();
        assert!(err.contains("snapshot directory"), "{err}");
        assert!(delete_snapshot(&link).is_err());
        assert!(target.is_dir() && link.symlink_metadata().is_ok());
    }

    #[test]
    fn names_say_who_and_when() {
        let b = Btrfs::new(Vec::new(), ".snaprsync", &[]);
        assert!(b.stamp.starts_with("snaprsync-20"), "{}", b.stamp);
        assert!(b.stamp.ends_with(&format!("-p{}", std::process::id())), "{}", b.stamp);
        assert!(b.stamp.contains('T') && b.stamp.contains('Z'), "{}", b.stamp);
    }
}
