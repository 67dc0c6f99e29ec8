//! The mount-namespace system calls of an exposure, behind [`MountOps`], and
//! what is built from them: entering a private namespace, mounting each
//! snapshot of a [`Plan`] over its place (or building exec's new root of a
//! root volume), and unmounting on failure or undo.
//! The kernel does the calls in [`Kernel`]; the tests use a recording double,
//! so that the order of mounts and the unmounting on failure are checked
//! without root.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use super::plan::{NewRoot, Plan};
use crate::error::{Error, Result};
use crate::provider::DeviceMount;

/// The calls an exposure makes.
pub trait MountOps {
    /// A snapshot directory, opened.
    type Dir;
    /// Moves this process into its own mount namespace whose mounts never
    /// propagate back: what rsync sees changes for rsync alone.
    fn private_namespace(&mut self) -> Result<()>;
    fn open(&mut self, path: &Path) -> Result<Self::Dir>;
    /// Mounts a snapshot device read-only at `at`.
    fn mount_device(&mut self, dev: &DeviceMount, at: &Path) -> Result<()>;
    /// Mounts the opened `dir` (which is `snapshot`) over `target`.
    fn bind(&mut self, dir: &Self::Dir, snapshot: &Path, target: &Path) -> Result<()>;
    /// A live path, opened without following a symlink and without access
    /// (it may be a device or a file).
    fn open_live(&mut self, path: &Path) -> Result<Self::Dir>;
    /// Mounts the opened `dir` (which is `from`) at `at` inside the new root
    /// `root`, reached from `root` with no symlink followed; `recursive`
    /// with every mount below it.
    fn bind_inside(&mut self, dir: &Self::Dir, from: &Path, root: &Path, at: &Path, recursive: bool) -> Result<()>;
    /// Makes the mount at `target` unbindable: a recursive bind of a mount
    /// above it (the state directory's filesystem, shown live) leaves it out.
    fn unbindable(&mut self, target: &Path) -> Result<()>;
    fn unmount(&mut self, target: &Path) -> Result<()>;
}

/// The real calls.
pub struct Kernel;

impl MountOps for Kernel {
    type Dir = File;

    fn private_namespace(&mut self) -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| Error::Expose { path: "/".into(), msg: format!("unshare(CLONE_NEWNS): {e}") })?;
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
            .map_err(|e| Error::Expose { path: "/".into(), msg: format!("making mounts private: {e}") })
    }

    fn open(&mut self, path: &Path) -> Result<File> {
        File::open(path).map_err(|e| Error::io(path, e))
    }

    fn mount_device(&mut self, dev: &DeviceMount, at: &Path) -> Result<()> {
        mount_device(dev, at).map_err(|msg| Error::Expose { path: at.into(), msg })?;
        log::debug!("mounted {} ({}, {}) at {}", dev.device.display(), dev.fstype, dev.options, at.display());
        Ok(())
    }

    /// Mounts through /proc/self/fd: the directory opened, not whatever its
    /// path names by now (an earlier mount may hide it).
    fn bind(&mut self, dir: &File, snapshot: &Path, target: &Path) -> Result<()> {
        let src = format!("/proc/self/fd/{}", dir.as_raw_fd());
        mount(Some(src.as_str()), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| Error::Expose { path: target.into(), msg: format!("bind-mounting {}: {e}", snapshot.display()) })?;
        log::debug!("mounted {} over {}", snapshot.display(), target.display());
        Ok(())
    }

    fn open_live(&mut self, path: &Path) -> Result<File> {
        use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(nix::fcntl::AT_FDCWD, path, how).map_err(|e| Error::io(path, e.into()))?;
        Ok(File::from(fd))
    }

    /// The target is opened beneath the new root with no symlink followed: a
    /// snapshot holds what its users made, and a symlink there must not lead
    /// the mount out of it.
    fn bind_inside(&mut self, dir: &File, from: &Path, root: &Path, at: &Path, recursive: bool) -> Result<()> {
        use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
        let fail = |msg: String| Error::Expose { path: at.into(), msg };
        let base = File::open(root).map_err(|e| Error::io(root, e))?;
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let rel = at.strip_prefix("/").unwrap_or(at);
        let target = openat2(&base, rel, how)
            .map_err(|e| fail(format!("its place in the snapshot of /: {e} (a symlink on the way is not followed)")))?;
        let flags = if recursive { MsFlags::MS_BIND | MsFlags::MS_REC } else { MsFlags::MS_BIND };
        let (src, dst) = (format!("/proc/self/fd/{}", dir.as_raw_fd()), format!("/proc/self/fd/{}", target.as_raw_fd()));
        mount(Some(src.as_str()), dst.as_str(), None::<&str>, flags, None::<&str>)
            .map_err(|e| fail(format!("bind-mounting {}: {e}", from.display())))?;
        log::debug!("mounted {} at {} in the new root", from.display(), at.display());
        Ok(())
    }

    fn unbindable(&mut self, target: &Path) -> Result<()> {
        mount(None::<&str>, target, None::<&str>, MsFlags::MS_UNBINDABLE, None::<&str>)
            .map_err(|e| Error::Expose { path: target.into(), msg: format!("making it unbindable: {e}") })
    }

    fn unmount(&mut self, target: &Path) -> Result<()> {
        umount2(target, MntFlags::MNT_DETACH).map_err(|e| Error::Expose { path: target.into(), msg: format!("unmounting: {e}") })
    }
}

/// Mounts a snapshot device read-only (and nosuid, nodev) at `at`; `ro` in
/// its options is the read-only flag, the rest goes to the filesystem.
pub fn mount_device(dev: &DeviceMount, at: &Path) -> std::result::Result<(), String> {
    let data: Vec<&str> = dev.options.split(',').filter(|o| *o != "ro" && !o.is_empty()).collect();
    let data = data.join(",");
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some(&dev.device), at, Some(dev.fstype.as_str()), flags, (!data.is_empty()).then_some(data.as_str()))
        .map_err(|e| format!("mounting {} ({} -o {}): {e}", dev.device.display(), dev.fstype, dev.options))
}

/// What [`apply`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The plan's mounts are in place (none, if it had none).
    Mounted(Vec<PathBuf>),
    /// No private namespace could be had: nothing was mounted.
    NoNamespace(String),
}

/// Enters a private namespace and mounts the plan's snapshots in order. Every
/// snapshot is opened first: an earlier mount may hide a later one's path. If a
/// mount fails, those already made are unmounted before the error returns.
pub fn apply<M: MountOps>(ops: &mut M, plan: &Plan) -> Result<Applied> {
    if plan.binds.is_empty() && plan.devices.is_empty() && plan.root.is_none() {
        return Ok(Applied::Mounted(Vec::new()));
    }
    if let Err(e) = ops.private_namespace() {
        if let Some((dev, _)) = plan.devices.first() {
            // A device snapshot has no directory to read without a mount.
            return Err(Error::Expose {
                path: dev.device.clone(),
                msg: format!("it must be mounted, and there is no private mount namespace to do it in ({e}); run snaprsync as root"),
            });
        }
        // Never mount in the host's namespace: everyone would see it.
        return Ok(Applied::NoNamespace(e.to_string()));
    }
    // Every place is held open at once (below): room for them all first.
    let _room = FdRoom::make(plan.binds.len() + plan.root.as_ref().map_or(0, |r| r.inside.len() + 1))
        .map_err(|msg| Error::Expose { path: plan.binds.first().map_or_else(|| "/".into(), |(_, at)| at.clone()), msg })?;
    let mut made = Vec::new();
    for (dev, at) in &plan.devices {
        if let Err(e) = ops.mount_device(dev, at) {
            if let Err(undo) = unmount_all(ops, &made) {
                log::error!("{undo}");
            }
            return Err(e);
        }
        made.push(at.clone());
    }
    if let Some(root) = &plan.root {
        if let Err(e) = build_root(ops, root, &mut made) {
            if let Err(undo) = unmount_all(ops, &made) {
                log::error!("{undo}");
            }
            return Err(e);
        }
    }
    let opened = match plan.binds.iter().map(|(snap, target)| Ok((ops.open(snap)?, snap, target))).collect::<Result<Vec<_>>>() {
        Ok(o) => o,
        Err(e) => {
            if let Err(undo) = unmount_all(ops, &made) {
                log::error!("{undo}");
            }
            return Err(e);
        }
    };
    for (dir, snapshot, target) in &opened {
        if let Err(e) = ops.bind(dir, snapshot, target) {
            if let Err(undo) = unmount_all(ops, &made) {
                log::error!("{undo}");
            }
            return Err(e);
        }
        made.push((*target).clone());
    }
    Ok(Applied::Mounted(made))
}

/// Room for `places` more open files while an exposure holds every place
/// open: the soft limit on open files (often 1024, where a source may hold
/// thousands of other tools' read-only snapshots, each a place) is raised up
/// to the hard limit, and put back when this is dropped, so that rsync or
/// COMMAND starts with the limit it was given. Past the hard limit, the
/// exposure fails before anything is opened, naming the limit.
pub(super) struct FdRoom {
    restore: Option<Rlimit>,
}

impl FdRoom {
    /// Files a run holds open besides the places (the log, the journal, pins).
    const SPARE: u64 = 64;

    pub(super) fn make(places: usize) -> std::result::Result<FdRoom, String> {
        let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as u64;
        let need = open + places as u64 + Self::SPARE;
        let was = getrlimit(Resource::Nofile);
        if was.current.is_none_or(|soft| soft >= need) {
            return Ok(FdRoom { restore: None });
        }
        if let Some(hard) = was.maximum.filter(|hard| *hard < need) {
            return Err(format!(
                "{places} places to show (each read-only subvolume below a source is one) must be open at once, and this process may open at most {hard} files (its hard limit, ulimit -Hn); raise it (LimitNOFILE= of the ssh service, or nofile in limits.conf) to {need} or more"
            ));
        }
        setrlimit(Resource::Nofile, Rlimit { current: was.maximum, maximum: was.maximum })
            .map_err(|e| format!("raising the limit on open files for {places} places to show: {e}"))?;
        log::debug!("the soft limit on open files raised from {:?} to {:?} for {places} places", was.current, was.maximum);
        Ok(FdRoom { restore: Some(was) })
    }
}

impl Drop for FdRoom {
    fn drop(&mut self) {
        if let Some(was) = self.restore.take() {
            if let Err(e) = setrlimit(Resource::Nofile, was) {
                log::warn!("the limit on open files could not be put back to {:?}: {e}", was.current);
            }
        }
    }
}

/// Builds exec's new root: everything opened first, then the snapshot of `/`
/// at `root.at` (pushed to `made`: unmounting it detaches all below it), then
/// each mount inside it in order. A live mount that cannot be shown (gone
/// since, or no place for it in the snapshot) is left out with a warning; a
/// snapshot that cannot be is the exposure's failure.
fn build_root<M: MountOps>(ops: &mut M, root: &NewRoot, made: &mut Vec<PathBuf>) -> Result<()> {
    let top = ops.open(&root.snapshot)?;
    let mut opened = Vec::new();
    for i in &root.inside {
        match if i.live { ops.open_live(&i.from) } else { ops.open(&i.from) } {
            Ok(dir) => opened.push((dir, i)),
            Err(e) if i.live => log::warn!("exec: the command does not see the live {}: {e}", i.at.display()),
            Err(e) => return Err(e),
        }
    }
    ops.bind(&top, &root.snapshot, &root.at)?;
    made.push(root.at.clone());
    // Else a live filesystem holding the state directory would bring the new root into itself.
    ops.unbindable(&root.at)?;
    let mut live = Vec::new();
    for (dir, i) in &opened {
        match ops.bind_inside(dir, &i.from, &root.at, &i.at, i.live) {
            Ok(()) if i.live => live.push(i.at.display().to_string()),
            Ok(()) => {}
            Err(e) if i.live => log::warn!("exec: the command does not see the live {}: {e}", i.at.display()),
            Err(e) => return Err(e),
        }
    }
    log::info!("exec: the command's root is the snapshot of /; shown live: {}", live.join(" "));
    Ok(())
}

/// Unmounts `targets` in reverse order, all of them; returns the first failure.
pub fn unmount_all<M: MountOps>(ops: &mut M, targets: &[PathBuf]) -> Result<()> {
    let mut first = None;
    for target in targets.iter().rev() {
        if let Err(e) = ops.unmount(target) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// A test double of [`MountOps`]: records each call, and fails where told.
#[cfg(test)]
#[derive(Default)]
pub struct Recorder {
    pub calls: Vec<String>,
    pub fail_namespace: bool,
    /// Fail the bind (or unmount) of this target.
    pub fail_bind: Option<PathBuf>,
    pub fail_unmount: Option<PathBuf>,
}

#[cfg(test)]
impl MountOps for Recorder {
    type Dir = PathBuf;

    fn private_namespace(&mut self) -> Result<()> {
        self.calls.push("unshare".into());
        if self.fail_namespace {
            return Err(Error::Expose { path: "/".into(), msg: "EPERM".into() });
        }
        Ok(())
    }

    fn open(&mut self, path: &Path) -> Result<PathBuf> {
        self.calls.push(format!("open {}", path.display()));
        Ok(path.to_owned())
    }

    fn mount_device(&mut self, dev: &DeviceMount, at: &Path) -> Result<()> {
        self.calls.push(format!("mount {} {} {} {}", dev.device.display(), dev.fstype, dev.options, at.display()));
        if self.fail_bind.as_deref() == Some(at) {
            return Err(Error::Expose { path: at.into(), msg: "EINVAL".into() });
        }
        Ok(())
    }

    fn bind(&mut self, dir: &PathBuf, _snapshot: &Path, target: &Path) -> Result<()> {
        self.calls.push(format!("bind {} {}", dir.display(), target.display()));
        if self.fail_bind.as_deref() == Some(target) {
            return Err(Error::Expose { path: target.into(), msg: "EINVAL".into() });
        }
        Ok(())
    }

    fn open_live(&mut self, path: &Path) -> Result<PathBuf> {
        self.calls.push(format!("open live {}", path.display()));
        if self.fail_bind.as_deref() == Some(path) {
            return Err(Error::Expose { path: path.into(), msg: "ENOENT".into() });
        }
        Ok(path.to_owned())
    }

    fn bind_inside(&mut self, dir: &PathBuf, _from: &Path, root: &Path, at: &Path, recursive: bool) -> Result<()> {
        self.calls.push(format!("{} {} {}{}", if recursive { "rbind" } else { "bind" }, dir.display(), root.display(), at.display()));
        if self.fail_bind.as_deref() == Some(at) {
            return Err(Error::Expose { path: at.into(), msg: "ENOENT".into() });
        }
        Ok(())
    }

    fn unbindable(&mut self, target: &Path) -> Result<()> {
        self.calls.push(format!("unbindable {}", target.display()));
        Ok(())
    }

    fn unmount(&mut self, target: &Path) -> Result<()> {
        self.calls.push(format!("unmount {}", target.display()));
        if self.fail_unmount.as_deref() == Some(target) {
            return Err(Error::Expose { path: target.into(), msg: "EBUSY".into() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(binds: &[(&str, &str)]) -> Plan {
        Plan {
            argv: Vec::new(),
            method: crate::platform::Method::Namespace,
            binds: binds.iter().map(|(s, t)| (s.into(), t.into())).collect(),
            devices: vec![],
            root: None,
        }
    }

    fn dev(name: &str) -> DeviceMount {
        DeviceMount { device: format!("/dev/vg/{name}").into(), fstype: "ext4".into(), options: "ro,noload".into() }
    }

    fn new_root() -> NewRoot {
        let i = |from: &str, at: &str, live| super::super::plan::Inside { from: from.into(), at: at.into(), live };
        NewRoot {
            at: "/st/root".into(),
            snapshot: "/st/mnt/s-0".into(),
            inside: vec![i("/dev", "/dev", true), i("/home/.s/s-1", "/home", false), i("/proc", "/proc", true)],
        }
    }

    #[test]
    fn a_new_root_is_the_snapshot_of_root_with_the_rest_inside_it() {
        let mut r = Recorder::default();
        let mut p = plan(&[]);
        p.devices = vec![(dev("s-0"), "/st/mnt/s-0".into())];
        p.root = Some(new_root());
        assert_eq!(apply(&mut r, &p).unwrap(), Applied::Mounted(vec!["/st/mnt/s-0".into(), "/st/root".into()]));
        assert_eq!(
            r.calls,
            [
                "unshare",
                "mount /dev/vg/s-0 ext4 ro,noload /st/mnt/s-0",
                "open /st/mnt/s-0",
                "open live /dev",
                "open /home/.s/s-1",
                "open live /proc",
                "bind /st/mnt/s-0 /st/root",
                "unbindable /st/root",
                "rbind /dev /st/root/dev",
                "bind /home/.s/s-1 /st/root/home",
                "rbind /proc /st/root/proc",
            ]
        );
    }

    #[test]
    fn a_live_mount_that_cannot_be_shown_is_left_out_but_a_snapshot_fails_the_root() {
        let mut r = Recorder { fail_bind: Some("/proc".into()), ..Recorder::default() };
        let mut p = plan(&[]);
        p.root = Some(new_root());
        assert_eq!(apply(&mut r, &p).unwrap(), Applied::Mounted(vec!["/st/root".into()]));
        assert!(!r.calls.iter().any(|c| c.contains("rbind /proc")), "{:?}", r.calls);
        let mut r = Recorder { fail_bind: Some("/home".into()), ..Recorder::default() };
        let e = apply(&mut r, &p).unwrap_err();
        assert!(e.to_string().contains("/home"), "{e}");
        assert_eq!(r.calls.last().map(String::as_str), Some("unmount /st/root"), "{:?}", r.calls);
    }

    #[test]
    fn devices_are_mounted_before_the_binds_that_read_them() {
        let mut r = Recorder::default();
        let mut p = plan(&[("/st/mnt/s-0", "/srv")]);
        p.devices = vec![(dev("s-0"), "/st/mnt/s-0".into())];
        let got = apply(&mut r, &p).unwrap();
        assert_eq!(got, Applied::Mounted(vec!["/st/mnt/s-0".into(), "/srv".into()]));
        assert_eq!(r.calls, ["unshare", "mount /dev/vg/s-0 ext4 ro,noload /st/mnt/s-0", "open /st/mnt/s-0", "bind /st/mnt/s-0 /srv"]);
    }

    #[test]
    fn a_failed_bind_unmounts_the_devices_too() {
        let mut r = Recorder { fail_bind: Some("/srv".into()), ..Recorder::default() };
        let mut p = plan(&[("/st/mnt/s-0", "/srv")]);
        p.devices = vec![(dev("s-0"), "/st/mnt/s-0".into())];
        assert!(apply(&mut r, &p).is_err());
        assert_eq!(r.calls.last().map(String::as_str), Some("unmount /st/mnt/s-0"));
    }

    #[test]
    fn devices_without_a_namespace_are_an_error_not_a_host_mount() {
        let mut r = Recorder { fail_namespace: true, ..Recorder::default() };
        let mut p = plan(&[]);
        p.devices = vec![(dev("s-0"), "/st/mnt/s-0".into())];
        let e = apply(&mut r, &p).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::status::EXPOSE);
        assert_eq!(r.calls, ["unshare"]);
    }

    #[test]
    fn opens_everything_first_then_mounts_in_order() {
        let mut r = Recorder::default();
        let got = apply(&mut r, &plan(&[("/m/.s/a-0", "/m"), ("/m/.s/a-1", "/m/n")])).unwrap();
        assert_eq!(got, Applied::Mounted(vec!["/m".into(), "/m/n".into()]));
        assert_eq!(r.calls, ["unshare", "open /m/.s/a-0", "open /m/.s/a-1", "bind /m/.s/a-0 /m", "bind /m/.s/a-1 /m/n"]);
    }

    #[test]
    fn a_failed_mount_unmounts_what_was_made_in_reverse() {
        let mut r = Recorder { fail_bind: Some("/m/n/o".into()), ..Recorder::default() };
        let e = apply(&mut r, &plan(&[("/s0", "/m"), ("/s1", "/m/n"), ("/s2", "/m/n/o")])).unwrap_err();
        assert!(e.to_string().contains("/m/n/o"), "{e}");
        assert_eq!(&r.calls[6..], ["bind /s2 /m/n/o", "unmount /m/n", "unmount /m"]);
    }

    #[test]
    fn no_namespace_means_no_mount_at_all() {
        let mut r = Recorder { fail_namespace: true, ..Recorder::default() };
        let got = apply(&mut r, &plan(&[("/s0", "/m")])).unwrap();
        assert!(matches!(got, Applied::NoNamespace(ref why) if why.contains("EPERM")), "{got:?}");
        assert_eq!(r.calls, ["unshare"]);
    }

    #[test]
    fn nothing_to_mount_needs_no_namespace() {
        let mut r = Recorder::default();
        assert_eq!(apply(&mut r, &plan(&[])).unwrap(), Applied::Mounted(vec![]));
        assert!(r.calls.is_empty());
    }

    #[test]
    fn unmounting_goes_on_past_a_failure_and_reports_the_first() {
        let mut r = Recorder { fail_unmount: Some("/m/n".into()), ..Recorder::default() };
        let e = unmount_all(&mut r, &["/m".into(), "/m/n".into(), "/m/n/o".into()]).unwrap_err();
        assert!(e.to_string().contains("/m/n"), "{e}");
        assert_eq!(r.calls, ["unmount /m/n/o", "unmount /m/n", "unmount /m"]);
    }
}
