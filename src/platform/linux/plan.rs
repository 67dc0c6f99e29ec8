//! Exposure planning (pure): how rsync will see a snapshot set under the names
//! it asked for. Either each snapshot is mounted over its origin in a private
//! namespace and rsync's argv stays as it is, or, when an origin is `/` (which
//! cannot be mounted over for a running program), the source arguments are
//! rewritten into the snapshot. A bind mount of a directory inside a volume
//! (a view of the set) is shown the same way, from that volume's snapshot.
//! exec, which has no paths to rewrite, gets for an origin of `/` a new root
//! ([`NewRoot`]): the snapshot of `/`, the set's other snapshots at their
//! places in it, and the live mounts no snapshot covers.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::mountinfo::Mount;
use crate::platform::Method;
use crate::provider::{DeviceMount, SnapshotSet};
use crate::rsync_args::Invocation;

/// How rsync will see the snapshot: its argv and the bind mounts to make.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub argv: Vec<OsString>,
    pub method: Method,
    /// (snapshot, where to mount it), in order.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// Snapshot devices to mount first, each at its snapshot directory (LVM).
    pub devices: Vec<(DeviceMount, PathBuf)>,
    /// exec with an origin of `/`: the root the command is given.
    pub root: Option<NewRoot>,
}

/// exec's root for a set with an origin of `/`, built in snaprsync's private
/// namespace at `at` and made the command's root (`pivot_root`) in a
/// namespace of the command's own (`child`).
#[derive(Debug, PartialEq, Eq)]
pub struct NewRoot {
    /// Where it is built: an empty directory of snaprsync's.
    pub at: PathBuf,
    /// The snapshot of `/`, mounted at `at`.
    pub snapshot: PathBuf,
    /// Then, in order (shallower places first), what is mounted in it.
    pub inside: Vec<Inside>,
}

/// One mount inside a [`NewRoot`].
#[derive(Debug, PartialEq, Eq)]
pub struct Inside {
    /// A snapshot (or a directory in one), or a live path.
    pub from: PathBuf,
    /// Where the command sees it (absolute, as on the host).
    pub at: PathBuf,
    /// A live mount, bound with all the mounts below it; a snapshot is bound alone.
    pub live: bool,
}

/// The device snapshots of `set`, each with the directory it is read at.
fn devices(set: &SnapshotSet) -> Vec<(DeviceMount, PathBuf)> {
    set.volumes.iter().filter_map(|v| v.mount.clone().map(|m| (m, v.snapshot.clone()))).collect()
}

/// Pure: the namespace method (each snapshot mounted over its origin, each
/// view at its bind mount's place, argv unchanged) unless an origin is `/`,
/// which cannot be mounted over for rsync; then rewriting.
pub fn plan(set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf]) -> Plan {
    if set.volumes.iter().all(|v| v.origin != Path::new("/")) {
        return Plan { argv: inv.args.clone(), method: Method::Namespace, binds: in_place(set), devices: devices(set), root: None };
    }
    plan_rewrite(set, inv, sources, true)
}

/// Every snapshot over its origin and every view over its bind mount, the
/// shallower places first (a view may lie in a volume's place, a nested
/// volume's view in a view's).
fn in_place(set: &SnapshotSet) -> Vec<(PathBuf, PathBuf)> {
    let mut binds: Vec<(PathBuf, PathBuf)> = set.shown().into_iter().map(|(live, snap)| (snap.to_owned(), live.to_owned())).collect();
    binds.sort_by_key(|(_, at)| at.components().count());
    binds
}

/// Pure: exec's plan, each snapshot mounted over its origin and each view
/// over its bind mount, for a program whose paths snaprsync cannot rewrite.
///
/// An origin of `/` cannot be mounted over for a running program, so then
/// the command gets a new root, built at `at` ([`NewRoot`]): the snapshot of
/// `/`; every other place of the set (volumes, views) from its snapshot; and
/// live, each of `mounts` (this process's, from mountinfo) below `/` that no
/// other place of the set covers, with what is mounted below it (`/proc`,
/// `/sys`, `/dev`, `/run`, a tmpfs `/tmp`, `/boot`, a disk the repository is
/// on), and each of `scratch` (`/tmp`, `/var/tmp` where they are plain
/// directories of `/`) likewise. A mount inside another place of the set
/// stays hidden by that snapshot, as for every other origin.
pub fn plan_in_place(set: &SnapshotSet, mounts: &[Mount], scratch: &[PathBuf], at: &Path) -> Plan {
    let root = Path::new("/");
    let Some(top) = set.volumes.iter().find(|v| v.origin == root) else {
        return Plan { argv: Vec::new(), method: Method::Namespace, binds: in_place(set), devices: devices(set), root: None };
    };
    let places: Vec<(&Path, &Path)> = set.shown().into_iter().filter(|(live, _)| *live != root).collect();
    let covered = |p: &Path| places.iter().any(|(live, _)| p.starts_with(live));
    let mut inside: Vec<Inside> =
        places.iter().map(|(live, snap)| Inside { from: snap.to_path_buf(), at: live.to_path_buf(), live: false }).collect();
    let mut live: Vec<&Path> = mounts.iter().map(|m| m.mount_point.as_path()).chain(scratch.iter().map(PathBuf::as_path)).collect();
    live.retain(|p| *p != root && !covered(p));
    live.sort();
    live.dedup();
    // One bind of the outermost: it brings what is mounted below it.
    let outermost: Vec<&Path> = live.iter().copied().filter(|p| !live.iter().any(|q| q != p && p.starts_with(q))).collect();
    inside.extend(outermost.into_iter().map(|p| Inside { from: p.to_owned(), at: p.to_owned(), live: true }));
    // Shallower first: a snapshot below a live mount goes over it.
    inside.sort_by(|a, b| a.at.components().count().cmp(&b.at.components().count()).then_with(|| a.at.cmp(&b.at)));
    let new_root = NewRoot { at: at.to_owned(), snapshot: top.snapshot.clone(), inside };
    Plan { argv: Vec::new(), method: Method::Namespace, binds: Vec::new(), devices: devices(set), root: Some(new_root) }
}

/// Pure: source arguments rewritten into the snapshot, with nested snapshots
/// mounted inside their parent snapshot, and views at their place there. With
/// `--relative`, the names are kept by marking the snapshot root with `/./`
/// when the origin is `/`. Without those mounts (`nested_binds` false, no
/// namespace), a source in a view is rewritten into the view's snapshot.
pub fn plan_rewrite(set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf], nested_binds: bool) -> Plan {
    let volumes = SnapshotSet { provider: set.provider, volumes: set.volumes.clone(), views: Vec::new() };
    let seen = if nested_binds { &volumes } else { set };
    let mut i = 0;
    let argv = inv.render_with_sources(|arg| {
        let src = sources.get(i);
        i += 1;
        let Some(src) = src else { return arg.to_owned() };
        rewrite_one(seen, inv.relative, arg, src).unwrap_or_else(|| arg.to_owned())
    });
    let mut binds = Vec::new();
    if nested_binds {
        for (k, v) in set.volumes.iter().enumerate() {
            let parent = SnapshotSet { provider: set.provider, volumes: set.volumes[..k].to_vec(), views: Vec::new() };
            if let Some(inside) = parent.locate(&v.origin) {
                binds.push((v.snapshot.clone(), inside));
            }
        }
        // Then each view where rsync reads its place, through the mounts before it.
        let mut views: Vec<_> = set.views.iter().filter_map(|w| volumes.locate(&w.at).map(|inside| (w.from.clone(), inside))).collect();
        views.sort_by_key(|(_, at)| at.components().count());
        binds.extend(views);
    }
    Plan { argv, method: Method::Rewrite, binds, devices: devices(set), root: None }
}

fn rewrite_one(set: &SnapshotSet, relative: bool, arg: &OsStr, src: &Path) -> Option<OsString> {
    let (origin, snapshot) =
        set.shown().into_iter().filter(|(live, _)| src.starts_with(live)).max_by_key(|(live, _)| live.components().count())?;
    let rest = src.strip_prefix(origin).ok()?;
    let mut out = snapshot.as_os_str().as_bytes().to_vec();
    if relative {
        if origin != Path::new("/") {
            log::warn!("--relative names of {} will include the snapshot path: the namespace method was not available", src.display());
        }
        out.extend_from_slice(b"/.");
    }
    if !rest.as_os_str().is_empty() {
        out.push(b'/');
        out.extend_from_slice(rest.as_os_str().as_bytes());
    }
    if arg.as_bytes().ends_with(b"/") && !out.ends_with(b"/") {
        out.push(b'/');
    }
    Some(OsString::from_vec(out))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::provider::VolumeSnapshot;
    use crate::rsync_args;

    pub(crate) fn inv(words: &[&str]) -> Invocation {
        rsync_args::parse(&words.iter().map(OsString::from).collect::<Vec<_>>()).unwrap()
    }

    pub(crate) fn set(vols: &[(&str, &str)]) -> SnapshotSet {
        SnapshotSet {
            provider: "btrfs",
            volumes: vols
                .iter()
                .map(|(o, s)| VolumeSnapshot { origin: o.into(), snapshot: s.into(), id: s.to_string(), mount: None })
                .collect(),
            views: Vec::new(),
        }
    }

    #[test]
    fn namespace_keeps_argv_and_binds_parents_first() {
        let s = set(&[("/mnt", "/mnt/.snaprsync/a-0"), ("/mnt/data/n", "/mnt/.snaprsync/a-1")]);
        let i = inv(&["--server", "--sender", "-logDtprRe.iLsfxCIvu", ".", "/mnt/data/"]);
        let p = plan(&s, &i, &["/mnt/data".into()]);
        assert_eq!(p.method, Method::Namespace);
        assert_eq!(p.argv, i.args);
        assert_eq!(p.binds, vec![("/mnt/.snaprsync/a-0".into(), "/mnt".into()), ("/mnt/.snaprsync/a-1".into(), "/mnt/data/n".into())]);
    }

    #[test]
    fn in_place_mounts_every_snapshot_over_its_origin() {
        let s = set(&[("/mnt", "/mnt/.snaprsync/a-0"), ("/mnt/data/n", "/mnt/.snaprsync/a-1")]);
        let p = plan_in_place(&s, &[], &[], Path::new("/st/root"));
        assert_eq!((p.method, p.argv.len(), p.root), (Method::Namespace, 0, None));
        assert_eq!(p.binds, vec![("/mnt/.snaprsync/a-0".into(), "/mnt".into()), ("/mnt/.snaprsync/a-1".into(), "/mnt/data/n".into())]);
    }

    fn mount(at: &str) -> Mount {
        Mount { root: "/".into(), mount_point: at.into(), fstype: "x".into(), source: "x".into(), dev: "0:1".into() }
    }

    /// The Fedora layout (`/` and `/home` subvolumes) with the usual mounts:
    /// a new root of the snapshots, the live mounts no snapshot covers, each
    /// once, outermost only, parents first.
    #[test]
    fn in_place_on_the_root_volume_builds_a_new_root() {
        let mut s = set(&[("/", "/.s/a-0"), ("/home", "/home/.s/a-1"), ("/mnt/vol", "/mnt/vol/.s/a-2")]);
        assert!(s.show(Path::new("/srv/www"), Path::new("/home/www")));
        let mounts: Vec<Mount> = [
            "/",
            "/proc",
            "/sys",
            "/sys/fs/cgroup",
            "/dev",
            "/dev/pts",
            "/run",
            "/run/user/0",
            "/home",
            "/home/u/fuse",
            "/mnt",
            "/mnt/vol",
            "/boot",
            "/boot/efi",
            "/srv/www",
            "/tmp",
            "/tmp",
        ]
        .into_iter()
        .map(mount)
        .collect();
        let p = plan_in_place(&s, &mounts, &["/tmp".into(), "/var/tmp".into()], Path::new("/st/root"));
        assert!(p.binds.is_empty(), "nothing over the live origins: {:?}", p.binds);
        let r = p.root.expect("a new root");
        assert_eq!((r.at.as_path(), r.snapshot.as_path()), (Path::new("/st/root"), Path::new("/.s/a-0")));
        let got: Vec<(&str, &str, bool)> = r.inside.iter().map(|i| (i.from.to_str().unwrap(), i.at.to_str().unwrap(), i.live)).collect();
        assert_eq!(
            got,
            [
                ("/boot", "/boot", true),
                ("/dev", "/dev", true),
                ("/home/.s/a-1", "/home", false),
                ("/mnt", "/mnt", true),
                ("/proc", "/proc", true),
                ("/run", "/run", true),
                ("/sys", "/sys", true),
                ("/tmp", "/tmp", true),
                ("/mnt/vol/.s/a-2", "/mnt/vol", false),
                ("/home/.s/a-1/www", "/srv/www", false),
                ("/var/tmp", "/var/tmp", true),
            ]
        );
    }

    #[test]
    fn root_origin_is_rewritten_with_relative_marker() {
        let s = set(&[("/", "/.snaprsync/a-0"), ("/home", "/.snaprsync/a-1")]);
        let i = inv(&["--server", "--sender", "-logDtprRe.iLsfxCIvu", ".", "/etc/", "/var/log"]);
        let p = plan(&s, &i, &["/etc".into(), "/var/log".into()]);
        assert_eq!(p.method, Method::Rewrite);
        let tail: Vec<_> = p.argv[4..].to_vec();
        assert_eq!(tail, vec![OsString::from("/.snaprsync/a-0/./etc/"), OsString::from("/.snaprsync/a-0/./var/log")]);
        assert_eq!(p.binds, vec![("/.snaprsync/a-1".into(), "/.snaprsync/a-0/home".into())]);
    }

    fn with_views(mut s: SnapshotSet, binds: &[(&str, &str)]) -> SnapshotSet {
        for (at, live) in binds {
            assert!(s.show(Path::new(at), Path::new(live)), "{at}");
        }
        s
    }

    #[test]
    fn a_bind_mount_of_a_directory_is_shown_from_its_volumes_snapshot_after_the_volumes() {
        let s = set(&[("/data", "/data/.s/a-0"), ("/data/www/n", "/data/.s/a-1")]);
        let s = with_views(s, &[("/srv/www", "/data/www"), ("/srv/again", "/data/www")]);
        let i = inv(&["--server", "--sender", "-logDtprRe.iLsfxCIvu", ".", "/srv/www/"]);
        let p = plan(&s, &i, &["/srv/www".into()]);
        assert_eq!((p.method, &p.argv), (Method::Namespace, &i.args));
        let b = |x: &str, y: &str| (PathBuf::from(x), PathBuf::from(y));
        assert_eq!(
            p.binds,
            [
                b("/data/.s/a-0", "/data"),
                b("/data/.s/a-0/www", "/srv/www"),
                b("/data/.s/a-0/www", "/srv/again"),
                b("/data/.s/a-1", "/data/www/n"),
                b("/data/.s/a-1", "/srv/www/n"),
                b("/data/.s/a-1", "/srv/again/n"),
            ]
        );
        assert_eq!(plan_in_place(&s, &[], &[], Path::new("/")).binds, p.binds, "exec shows them the same way");
    }

    #[test]
    fn a_bind_mount_under_a_root_origin_is_mounted_where_rsync_reads_it() {
        let s = with_views(set(&[("/", "/.s/a-0"), ("/data", "/data/.s/a-1")]), &[("/srv/www", "/data/www")]);
        let i = inv(&["--server", "--sender", "-logDtprRe.iLsfxCIvu", ".", "/srv/www/"]);
        let p = plan(&s, &i, &["/srv/www".into()]);
        assert_eq!(p.method, Method::Rewrite);
        assert_eq!(p.argv[4], OsString::from("/.s/a-0/./srv/www/"));
        let b = |x: &str, y: &str| (PathBuf::from(x), PathBuf::from(y));
        assert_eq!(p.binds, [b("/data/.s/a-1", "/.s/a-0/data"), b("/data/.s/a-1/www", "/.s/a-0/srv/www")]);
        // Without a namespace nothing is mounted: the source is read from the view's own snapshot.
        let p = plan_rewrite(&s, &i, &["/srv/www".into()], false);
        assert_eq!((p.argv[4].clone(), p.binds.len()), (OsString::from("/data/.s/a-1/www/./"), 0));
    }

    #[test]
    fn rewrite_without_relative_keeps_trailing_slash_semantics() {
        let s = set(&[("/", "/.s/a-0")]);
        let i = inv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/", "/etc", "/srv/x/"]);
        let p = plan(&s, &i, &["/".into(), "/etc".into(), "/srv/x".into()]);
        assert_eq!(p.argv[4..].to_vec(), vec![OsString::from("/.s/a-0/"), OsString::from("/.s/a-0/etc"), OsString::from("/.s/a-0/srv/x/")]);
    }
}
