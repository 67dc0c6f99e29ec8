//! Exposure planning (pure): how rsync will see a snapshot set under the names
//! it asked for. Either each snapshot is mounted over its origin in a private
//! namespace and rsync's argv stays as it is, or, when an origin is `/` (which
//! cannot be mounted over for a running program), the source arguments are
//! rewritten into the snapshot.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

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
}

/// The device snapshots of `set`, each with the directory it is read at.
fn devices(set: &SnapshotSet) -> Vec<(DeviceMount, PathBuf)> {
    set.volumes.iter().filter_map(|v| v.mount.clone().map(|m| (m, v.snapshot.clone()))).collect()
}

/// Pure: the namespace method (each snapshot mounted over its origin, argv
/// unchanged) unless an origin is `/`, which cannot be mounted over for rsync;
/// then rewriting.
pub fn plan(set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf]) -> Plan {
    if set.volumes.iter().all(|v| v.origin != Path::new("/")) {
        let binds = set.volumes.iter().map(|v| (v.snapshot.clone(), v.origin.clone())).collect();
        return Plan { argv: inv.args.clone(), method: Method::Namespace, binds, devices: devices(set) };
    }
    plan_rewrite(set, inv, sources, true)
}

/// Pure: exec's plan, each snapshot mounted over its origin, for a program
/// whose paths snaprsync cannot rewrite. An origin of `/` cannot be mounted
/// over for a running program: it is returned as the error.
pub fn plan_in_place(set: &SnapshotSet) -> Result<Plan, PathBuf> {
    if let Some(root) = set.volumes.iter().find(|v| v.origin == Path::new("/")) {
        return Err(root.origin.clone());
    }
    let binds = set.volumes.iter().map(|v| (v.snapshot.clone(), v.origin.clone())).collect();
    Ok(Plan { argv: Vec::new(), method: Method::Namespace, binds, devices: devices(set) })
}

/// Pure: source arguments rewritten into the snapshot, with nested snapshots
/// mounted inside their parent snapshot. With `--relative`, the names are kept
/// by marking the snapshot root with `/./` when the origin is `/`.
pub fn plan_rewrite(set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf], nested_binds: bool) -> Plan {
    let mut i = 0;
    let argv = inv.render_with_sources(|arg| {
        let src = sources.get(i);
        i += 1;
        let Some(src) = src else { return arg.to_owned() };
        rewrite_one(set, inv.relative, arg, src).unwrap_or_else(|| arg.to_owned())
    });
    let mut binds = Vec::new();
    if nested_binds {
        for (k, v) in set.volumes.iter().enumerate() {
            let parent = SnapshotSet { provider: set.provider, volumes: set.volumes[..k].to_vec() };
            if let Some(inside) = parent.locate(&v.origin) {
                binds.push((v.snapshot.clone(), inside));
            }
        }
    }
    Plan { argv, method: Method::Rewrite, binds, devices: devices(set) }
}

fn rewrite_one(set: &SnapshotSet, relative: bool, arg: &OsStr, src: &Path) -> Option<OsString> {
    let vol = set.volumes.iter().filter(|v| src.starts_with(&v.origin)).max_by_key(|v| v.origin.components().count())?;
    let rest = src.strip_prefix(&vol.origin).ok()?;
    let mut out = vol.snapshot.as_os_str().as_bytes().to_vec();
    if relative {
        if vol.origin != Path::new("/") {
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
    fn in_place_mounts_every_snapshot_over_its_origin_and_refuses_root() {
        let s = set(&[("/mnt", "/mnt/.snaprsync/a-0"), ("/mnt/data/n", "/mnt/.snaprsync/a-1")]);
        let p = plan_in_place(&s).unwrap();
        assert_eq!((p.method, p.argv.len()), (Method::Namespace, 0));
        assert_eq!(p.binds, vec![("/mnt/.snaprsync/a-0".into(), "/mnt".into()), ("/mnt/.snaprsync/a-1".into(), "/mnt/data/n".into())]);
        let s = set(&[("/", "/.snaprsync/a-0"), ("/home", "/home/.snaprsync/a-1")]);
        assert_eq!(plan_in_place(&s), Err(PathBuf::from("/")));
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

    #[test]
    fn rewrite_without_relative_keeps_trailing_slash_semantics() {
        let s = set(&[("/", "/.s/a-0")]);
        let i = inv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/", "/etc", "/srv/x/"]);
        let p = plan(&s, &i, &["/".into(), "/etc".into(), "/srv/x".into()]);
        assert_eq!(p.argv[4..].to_vec(), vec![OsString::from("/.s/a-0/"), OsString::from("/.s/a-0/etc"), OsString::from("/.s/a-0/srv/x/")]);
    }
}
