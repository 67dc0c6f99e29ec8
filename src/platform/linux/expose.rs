//! Exposure on Linux: a private mount namespace in which each snapshot is
//! mounted over its origin (or, for an origin of `/`, rsync's paths rewritten
//! into the snapshot; exec, having no paths to rewrite, gives its command a
//! new root built of the snapshots, made its root in `child`), or in
//! restricted mode a root of rsync's own (`child`).

use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::ns::{self, Applied, Kernel, MountOps};
use super::plan::{plan, plan_in_place, plan_rewrite};
use super::{child, supervise, Platform};
use crate::command::Cmd;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::mountinfo::Mount;
use crate::platform::{Confine, Exposing, Exposure, Launch, Place};
use crate::platform::{Hold, Method};
use crate::provider::SnapshotSet;
use crate::rsync_args::Invocation;

/// What an exposure set up, and how rsync runs in it.
pub enum Held {
    /// Mounts in snaprsync's private namespace, unmounted on undo.
    Mounts(Vec<PathBuf>),
    /// exec of a root volume: the mounts (the new root among them), and the
    /// new root the command's own namespace pivots to.
    Root(Vec<PathBuf>, PathBuf),
    /// Nothing in snaprsync's namespace: rsync builds its own root.
    Confined(child::Confinement),
}

impl Hold for Held {
    fn run(&mut self, launch: &Launch) -> Result<u8> {
        match self {
            Held::Mounts(_) => supervise::run(launch, None, None),
            Held::Root(_, root) => supervise::run(launch, None, Some(root)),
            Held::Confined(c) => supervise::run(launch, Some(c), None),
        }
    }

    fn undo(&mut self) -> Result<()> {
        match self {
            Held::Mounts(targets) | Held::Root(targets, _) => ns::unmount_all(&mut Kernel, &std::mem::take(targets)),
            Held::Confined(_) => Ok(()),
        }
    }
}

/// The exposure of `set` for `inv`, made through `ops`.
fn expose_with<M: MountOps>(ops: &mut M, set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf]) -> Result<Exposure> {
    let plan = plan(set, inv, sources);
    let exposure = match ns::apply(ops, &plan)? {
        Applied::Mounted(made) => Exposure::new(plan.argv, plan.method, Held::Mounts(made)),
        Applied::NoNamespace(why) if plan.method == Method::Namespace => {
            // Rewriting the paths instead; the names may differ.
            log::warn!("no private mount namespace ({why}); rewriting rsync's paths instead");
            Exposure::new(plan_rewrite(set, inv, sources, false).argv, Method::Rewrite, Held::Mounts(Vec::new()))
        }
        Applied::NoNamespace(why) => {
            log::warn!("no private mount namespace ({why}); nested subvolumes will arrive empty");
            Exposure::new(plan.argv, plan.method, Held::Mounts(Vec::new()))
        }
    };
    log::debug!("exposure: {}", exposure.method());
    Ok(exposure)
}

/// exec's exposure of `set`, made through `ops`: every snapshot over its
/// origin, or, for an origin of `/`, a new root built at `at` of the
/// snapshots and the live `mounts` that no snapshot covers, with `scratch`.
fn expose_in_place_with<M: MountOps>(ops: &mut M, set: &SnapshotSet, mounts: &[Mount], scratch: &[PathBuf], at: &Path) -> Result<Exposure> {
    let plan = plan_in_place(set, mounts, scratch, at);
    let made = match ns::apply(ops, &plan)? {
        Applied::Mounted(made) => made,
        Applied::NoNamespace(why) => {
            // Never the live files under the snapshot's name, and never a mount everyone sees.
            return Err(Error::Expose {
                path: set.volumes.first().map_or_else(|| "/".into(), |v| v.origin.clone()),
                msg: format!("no private mount namespace ({why}); run snaprsync as root"),
            });
        }
    };
    let held = match plan.root {
        Some(root) => Held::Root(made, root.at),
        None => Held::Mounts(made),
    };
    // Each volume at its origin, each bind mount of a directory in one at its own place.
    let places = set.shown().into_iter().map(|(live, _)| Place { origin: live.to_owned(), seen: live.to_owned() }).collect();
    Ok(Exposure::new(Vec::new(), Method::Namespace, held).with_places(places))
}

impl Exposing for Platform {
    fn expose_in_place(&self, cfg: &Config, set: &SnapshotSet) -> Result<Exposure> {
        if set.volumes.iter().all(|v| v.origin != Path::new("/")) {
            return expose_in_place_with(&mut Kernel, set, &[], &[], Path::new("/"));
        }
        let mounts = super::choose::read_mounts()?;
        // Scratch space the command writes to (restic its packs in $TMPDIR), where they are directories of /.
        let scratch: Vec<PathBuf> = ["/tmp", "/var/tmp"].into_iter().map(PathBuf::from).filter(|p| p.is_dir()).collect();
        let state = cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir);
        let at = state.join("exec-root");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&at).map_err(|e| Error::io(&at, e))?;
        expose_in_place_with(&mut Kernel, set, &mounts, &scratch, &at)
    }

    fn expose(&self, _cfg: &Config, set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf], _rsync: &Path) -> Result<Exposure> {
        expose_with(&mut Kernel, set, inv, sources)
    }

    fn expose_confined(
        &self,
        cfg: &Config,
        set: Option<&SnapshotSet>,
        inv: &Invocation,
        rsync: &Path,
        confine: &Confine,
    ) -> Result<Option<Exposure>> {
        // The allowed directories as they were walked once (`crate::pin`):
        // paths with no symlink in them, held open.
        let read: Vec<PathBuf> = confine.read.iter().map(|p| p.path.clone()).collect();
        if confine.read.iter().chain(confine.write).any(|p| p.path == Path::new("/")) {
            // The confined root would be the host's root: nothing confined.
            return Err(Error::Usage(
                "restricted mode cannot confine rsync to / (--snap-allow=/ or --snap-allow-write=/); allow the directories below it".into(),
            ));
        }
        let state = cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir);
        let root = state.join("confine-root");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&root).map_err(|e| Error::io(&root, e))?;
        let mut files = vec![rsync.to_owned()];
        // Each allowed directory's copy in the snapshot must be that directory:
        // same inode number. Not a snapshot's own root: snaprsync made it, no
        // name inside it is resolved (and ZFS numbers a snapshot's root anew).
        let root_of_a_snapshot = |from: &Path| set.is_some_and(|s| s.volumes.iter().any(|v| v.snapshot == from));
        let ino = |at: &Path, from: &Path| match root_of_a_snapshot(from) {
            true => 0,
            false => confine.read.iter().find(|p| p.path == at).map_or(0, |p| p.ino),
        };
        let mut shown: Vec<child::Shown> = set
            .map(|s| child::read_map(s, &read))
            .unwrap_or_default()
            .into_iter()
            .map(|(at, from)| child::Shown { ino: ino(&at, &from), at, from })
            .collect();
        // `ldd` from the system's directories, with none of the session's
        // environment: LD_LIBRARY_PATH would change what it lists.
        match Cmd::system("ldd").arg(rsync).run() {
            Ok(out) => {
                let libs = child::ldd_paths(&out);
                if confine.iconv {
                    // --iconv loads its converters beside the C library.
                    let gconv = libs
                        .iter()
                        .find(|l| l.file_name().is_some_and(|n| n == "libc.so.6"))
                        .and_then(|l| l.parent())
                        .map(|d| d.join("gconv"));
                    if let Some(g) = gconv.filter(|g| g.is_dir()).and_then(|g| g.canonicalize().ok()) {
                        shown.push(child::Shown { at: g.clone(), from: g, ino: 0 });
                    }
                }
                files.extend(libs);
            }
            Err(Error::Command { stderr, .. }) if stderr.contains("not a dynamic executable") => {}
            Err(e) => {
                return Err(Error::Expose {
                    path: rsync.to_owned(),
                    msg: format!("cannot tell which libraries rsync loads ({e}); install libc-bin"),
                })
            }
        }
        // World-readable files rsync and the C library consult.
        for f in ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ld.so.cache", "/etc/localtime", "/dev/null"] {
            if Path::new(f).exists() {
                files.push(f.into());
            }
        }
        let write = confine.write.iter().map(|p| child::Writable { at: p.path.clone(), fd: p.fd.as_raw_fd(), ino: p.ino }).collect();
        let confinement = child::Confinement {
            root,
            read: shown,
            write,
            files,
            cwd: std::env::current_dir().unwrap_or_else(|_| "/".into()),
            devices: set
                .map(|s| s.volumes.iter().filter_map(|v| v.mount.clone().map(|m| (m, v.snapshot.clone()))).collect())
                .unwrap_or_default(),
        };
        log::debug!("confined: {confinement:?}");
        Ok(Some(Exposure::new(inv.args.clone(), Method::Confined, Held::Confined(confinement))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(e: &Exposure) -> &Held {
        let any: &dyn std::any::Any = &*e.held;
        any.downcast_ref().expect("a Linux exposure")
    }
    use crate::platform::imp::plan::tests::{inv, set};
    use std::ffi::OsString;

    #[test]
    fn namespace_exposure_mounts_and_keeps_the_argv() {
        let mut r = ns::Recorder::default();
        let s = set(&[("/mnt", "/mnt/.s/a-0")]);
        let i = inv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/mnt/data/"]);
        let e = expose_with(&mut r, &s, &i, &["/mnt/data".into()]).unwrap();
        assert_eq!((e.method(), e.argv()), (Method::Namespace, &i.args[..]));
        assert!(matches!(held(&e), Held::Mounts(ref m) if m == &[PathBuf::from("/mnt")]));
    }

    #[test]
    fn without_a_namespace_the_paths_are_rewritten_and_nothing_is_mounted() {
        let mut r = ns::Recorder { fail_namespace: true, ..ns::Recorder::default() };
        let s = set(&[("/mnt", "/mnt/.s/a-0")]);
        let i = inv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/mnt/data/"]);
        let e = expose_with(&mut r, &s, &i, &["/mnt/data".into()]).unwrap();
        assert_eq!(e.method(), Method::Rewrite);
        assert_eq!(e.argv()[4], OsString::from("/mnt/.s/a-0/data/"));
        assert!(matches!(held(&e), Held::Mounts(ref m) if m.is_empty()));
        assert_eq!(r.calls, ["unshare"]);
    }

    #[test]
    fn in_place_exposure_mounts_every_snapshot_and_says_where() {
        let mut r = ns::Recorder::default();
        let s = set(&[("/srv", "/srv/.s/a-0"), ("/srv/n", "/srv/n/.s/a-1")]);
        let e = expose_in_place_with(&mut r, &s, &[], &[], Path::new("/")).unwrap();
        assert_eq!(e.method(), Method::Namespace);
        assert!(matches!(held(&e), Held::Mounts(ref m) if m == &[PathBuf::from("/srv"), PathBuf::from("/srv/n")]));
        assert_eq!(
            e.places().iter().map(|p| (&p.origin, &p.seen)).collect::<Vec<_>>(),
            [(&s.volumes[0].origin, &s.volumes[0].origin), (&s.volumes[1].origin, &s.volumes[1].origin)]
        );
    }

    #[test]
    fn in_place_exposure_of_root_pivots_and_a_missing_namespace_mounts_nothing() {
        let mut r = ns::Recorder::default();
        let proc = Mount { root: "/".into(), mount_point: "/proc".into(), fstype: "proc".into(), source: "proc".into(), dev: "0:5".into() };
        let e = expose_in_place_with(&mut r, &set(&[("/", "/.s/a-0")]), &[proc], &[], Path::new("/st/root")).unwrap();
        assert!(matches!(held(&e), Held::Root(ref m, ref at) if m == &[PathBuf::from("/st/root")] && at == Path::new("/st/root")));
        assert_eq!(r.calls.last().map(String::as_str), Some("rbind /proc /st/root/proc"), "{:?}", r.calls);
        assert_eq!((e.places()[0].origin.as_path(), e.places()[0].seen.as_path()), (Path::new("/"), Path::new("/")));
        let mut r = ns::Recorder { fail_namespace: true, ..ns::Recorder::default() };
        let err = expose_in_place_with(&mut r, &set(&[("/srv", "/srv/.s/a-0")]), &[], &[], Path::new("/"))
            .err()
            .expect("no namespace, no exposure");
        assert_eq!(err.exit_code(), crate::error::status::EXPOSE);
        assert_eq!(r.calls, ["unshare"]);
    }

    #[test]
    fn a_failed_mount_fails_the_exposure_and_leaves_no_mount() {
        let mut r = ns::Recorder { fail_bind: Some("/mnt/n".into()), ..ns::Recorder::default() };
        let s = set(&[("/mnt", "/mnt/.s/a-0"), ("/mnt/n", "/mnt/n/.s/a-1")]);
        let i = inv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/mnt/"]);
        let err = expose_with(&mut r, &s, &i, &["/mnt".into()]).err().expect("the mount failed");
        assert_eq!(err.exit_code(), crate::error::status::EXPOSE);
        assert_eq!(r.calls.last().map(String::as_str), Some("unmount /mnt"));
    }
}
