//! btrfs provider: a read-only snapshot of each subvolume holding a source
//! path, plus every subvolume nested below a source path (a btrfs snapshot
//! shows nested subvolumes as empty directories).
//!
//! Snapshots are stored on the same filesystem, in a subvolume named
//! `btrfs_snapshot_dir` (default `.snaprsync`) at the root of the mount, as
//! `snaprsync-<UTC time>-p<pid>-<n>`: the name says who made it and when, so a
//! later sweep can recognise what a killed run left.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::mountinfo::{self, Mount};
use crate::provider::{Leftover, Provider, SnapshotSet, VolumeSnapshot};

/// The inode number of every btrfs subvolume's root directory.
const SUBVOLUME_ROOT_INO: u64 = 256;

pub use crate::journal::NAME_PREFIX;

pub struct Btrfs {
    mounts: Vec<Mount>,
    snapshot_dir: String,
    stamp: String,
}

impl Btrfs {
    pub fn new(mounts: Vec<Mount>, snapshot_dir: &str) -> Self {
        Btrfs { mounts, snapshot_dir: snapshot_dir.to_owned(), stamp: crate::journal::run_stamp().to_owned() }
    }

    fn mount_of(&self, path: &Path) -> Result<&Mount> {
        let m =
            mountinfo::find(&self.mounts, path).ok_or_else(|| Error::Snapshot { path: path.into(), msg: "no mount holds it".into() })?;
        if m.fstype != "btrfs" {
            return Err(Error::NoProvider { path: path.into(), fstype: m.fstype.clone() });
        }
        Ok(m)
    }

    /// Every subvolume of `mount` visible below one of `sources`, as mounted paths.
    fn nested_below(&self, mount: &Mount, sources: &[PathBuf]) -> Result<Vec<PathBuf>> {
        let out = Cmd::new("btrfs").arg("subvolume").arg("list").arg(&mount.mount_point).run()?;
        let root = mount.root.strip_prefix("/").unwrap_or(&mount.root);
        let own = mount.mount_point.join(&self.snapshot_dir);
        Ok(parse_subvolume_list(&out)
            .into_iter()
            .filter_map(|p| p.strip_prefix(root).ok().map(|rel| mount.mount_point.join(rel)))
            .filter(|p| !p.starts_with(&own))
            .filter(|p| sources.iter().any(|s| p.starts_with(s) && p != s))
            .collect())
    }

    fn ensure_snapshot_dir(&self, mount: &Mount) -> Result<PathBuf> {
        let dir = mount.mount_point.join(&self.snapshot_dir);
        if !dir.exists() {
            if let Err(e) = Cmd::new("btrfs").arg("subvolume").arg("create").arg(&dir).run() {
                // Another run may have made it at the same moment.
                if !dir.is_dir() {
                    return Err(e);
                }
            }
        }
        Ok(dir)
    }
}

/// The nearest ancestor of `path` (itself included) that is a subvolume root.
fn subvolume_root(path: &Path) -> Result<PathBuf> {
    let mut p = path;
    loop {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.ino() == SUBVOLUME_ROOT_INO {
            return Ok(p.to_owned());
        }
        p = p.parent().ok_or_else(|| Error::Snapshot { path: path.into(), msg: "no btrfs subvolume holds it".into() })?;
    }
}

/// The `path` column of `btrfs subvolume list`.
fn parse_subvolume_list(out: &str) -> Vec<PathBuf> {
    out.lines().filter_map(|l| l.split_once(" path ").map(|(_, p)| PathBuf::from(p))).collect()
}

impl Provider for Btrfs {
    fn name(&self) -> &'static str {
        "btrfs"
    }

    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        // Which subvolumes, on which mounts, parents first.
        let mut origins: Vec<(PathBuf, Mount)> = Vec::new();
        let mut mounts: Vec<Mount> = Vec::new();
        for s in sources {
            let mount = self.mount_of(s)?.clone();
            let root = subvolume_root(s)?;
            let root = if root.starts_with(&mount.mount_point) { root } else { mount.mount_point.clone() };
            if !mounts.contains(&mount) {
                mounts.push(mount.clone());
            }
            origins.push((root, mount));
        }
        // One subvolume listing per filesystem, however many sources it holds.
        for mount in mounts {
            for nested in self.nested_below(&mount, sources)? {
                origins.push((nested, mount.clone()));
            }
        }
        origins.sort_by(|a, b| a.0.components().count().cmp(&b.0.components().count()).then(a.0.cmp(&b.0)));
        origins.dedup_by(|a, b| a.0 == b.0);

        let mut set = SnapshotSet { provider: "btrfs", volumes: Vec::new() };
        for (n, (origin, mount)) in origins.iter().enumerate() {
            let made = self.ensure_snapshot_dir(mount).and_then(|dir| {
                let snap = dir.join(format!("{}-{n}", self.stamp));
                Cmd::new("btrfs").arg("subvolume").arg("snapshot").arg("-r").arg(origin).arg(&snap).run()?;
                Ok(snap)
            });
            match made {
                Ok(snap) => set.volumes.push(VolumeSnapshot { origin: origin.clone(), id: snap.display().to_string(), snapshot: snap }),
                Err(e) => {
                    // All or nothing: undo what this set already made.
                    if let Err(undo) = self.remove(&set) {
                        log::error!("{undo}");
                    }
                    return Err(match e {
                        Error::Command { cmd, stderr, .. } => Error::Snapshot {
                            path: origin.clone(),
                            msg: format!(
                                "{cmd}: {stderr}; snaprsync must run as root (or with CAP_SYS_ADMIN) and the filesystem needs free space"
                            ),
                        },
                        e => e,
                    });
                }
            }
        }
        Ok(set)
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        let mut first = None;
        for v in set.volumes.iter().rev() {
            let mut tries = 0;
            let res = loop {
                match Cmd::new("btrfs").arg("subvolume").arg("delete").arg(&v.snapshot).run() {
                    // A just-released mount can hold it busy for a moment.
                    Err(e) if tries < 5 && e.to_string().contains("busy") => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(50 * tries));
                    }
                    r => break r,
                }
            };
            if let Err(e) = res {
                log::error!("could not remove snapshot {}: {e}", v.snapshot.display());
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn leftovers(&self) -> Result<Vec<Leftover>> {
        let mut found = Vec::new();
        for m in self.mounts.iter().filter(|m| m.fstype == "btrfs") {
            let Ok(dir) = std::fs::read_dir(m.mount_point.join(&self.snapshot_dir)) else { continue };
            for item in dir.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                if let Some(stamp) = stamp_of(&name) {
                    found.push(Leftover { path: item.path(), stamp: stamp.to_owned() });
                }
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        found.dedup();
        Ok(found)
    }

    fn removal_can_detach(&self) -> bool {
        true
    }

    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()> {
        match Cmd::new("btrfs").arg("subvolume").arg("delete").arg(&leftover.path).run() {
            // Another sweep, or another mount of the same filesystem, got it first.
            Err(_) if leftover.path.symlink_metadata().is_err() => Ok(()),
            r => r.map(drop),
        }
    }
}

/// The run stamp in a snapshot name `<stamp>-<n>`; `None` for names snaprsync
/// does not give, which are never touched.
fn stamp_of(name: &str) -> Option<&str> {
    let (stamp, n) = name.rsplit_once('-')?;
    (name.starts_with(NAME_PREFIX) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subvolume_list() {
        let out = "ID 256 gen 7 top level 5 path .snaprsync\nID 257 gen 9 top level 5 path data/with space/n\n";
        assert_eq!(parse_subvolume_list(out), vec![PathBuf::from(".snaprsync"), PathBuf::from("data/with space/n")]);
    }

    #[test]
    fn only_our_names_have_a_stamp() {
        assert_eq!(stamp_of("snaprsync-20261126T102709Z-p31107-0"), Some("snaprsync-20261126T102709Z-p31107"));
        assert_eq!(stamp_of("snaprsync-20261126T102709Z-p31107-12"), Some("snaprsync-20261126T102709Z-p31107"));
        for other in ["home-snap-1", "snaprsync-x-", "snaprsync-x-1a", "daily-0", "snaprsync"] {
            assert_eq!(stamp_of(other), None, "{other}");
        }
    }

    #[test]
    fn names_say_who_and_when() {
        let b = Btrfs::new(Vec::new(), ".snaprsync");
        assert!(b.stamp.starts_with("snaprsync-20"), "{}", b.stamp);
        assert!(b.stamp.ends_with(&format!("-p{}", std::process::id())), "{}", b.stamp);
        assert!(b.stamp.contains('T') && b.stamp.contains('Z'), "{}", b.stamp);
    }
}
