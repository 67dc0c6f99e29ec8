//! The snapshot-provider boundary: knows snapshots, nothing of rsync.
//!
//! A provider turns a list of source paths into one [`SnapshotSet`] (one
//! snapshot per volume or subvolume that holds them, all taken together), and
//! removes that set again. The set is plain data, so mapping a source path into
//! its snapshot is the same code for every provider.

use std::path::{Path, PathBuf};

use crate::error::Result;

#[cfg(target_os = "linux")]
pub mod btrfs;
#[cfg(target_os = "linux")]
pub mod lvm;
#[cfg(windows)]
pub mod vss;
#[cfg(target_os = "linux")]
pub mod zfs;

/// One snapshot of one volume (a btrfs subvolume, a Windows volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSnapshot {
    /// The live root this snapshot was taken of, e.g. `/srv` or `C:\`.
    pub origin: PathBuf,
    /// Where that root's frozen copy can be read, e.g. `/.snaprsync/snaprsync-…`
    /// or `\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy7\`.
    pub snapshot: PathBuf,
    /// The provider's own identity for it (snapshot path, VSS snapshot id,
    /// `VG/LV`), for the log and for removal.
    pub id: String,
    /// A snapshot that must be mounted (an LVM device, a ZFS snapshot): the
    /// exposure mounts it, inside rsync's private namespace, at `snapshot` first.
    pub mount: Option<DeviceMount>,
}

/// How a snapshot is mounted: a block device, or a ZFS `pool/fs@name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMount {
    pub device: PathBuf,
    pub fstype: String,
    /// Read-only, with what the filesystem needs to mount a frozen copy.
    pub options: String,
}

/// A bind mount of a directory inside a snapshotted volume (`mount --bind
/// /data/www /srv/www`): its mount point `at` shows `from`, that directory in
/// one of the set's snapshots. Made by [`SnapshotSet::show`]; never removed on
/// its own (the snapshot it is part of is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub at: PathBuf,
    pub from: PathBuf,
}

/// Everything one run snapshotted. `volumes` is ordered parents before
/// children, so nested volumes can be laid over their parents in order;
/// `views` are the bind mounts of directories inside them, shown from the
/// same snapshots (one instant however many there are).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotSet {
    pub provider: &'static str,
    pub volumes: Vec<VolumeSnapshot>,
    pub views: Vec<View>,
}

impl SnapshotSet {
    /// Where `source` can be read inside the snapshot: the snapshot of the
    /// deepest volume (or view) that contains it, with the rest of the path kept.
    pub fn locate(&self, source: &Path) -> Option<PathBuf> {
        self.shown()
            .into_iter()
            .filter_map(|(live, snap)| source.strip_prefix(live).ok().map(|rest| (live, snap, rest)))
            .max_by_key(|(live, ..)| live.components().count())
            .map(|(_, snap, rest)| if rest.as_os_str().is_empty() { snap.to_owned() } else { snap.join(rest) })
    }

    /// Every place a snapshot is shown, as (live path, snapshot path): each
    /// volume at its origin, then each view at its mount point.
    pub fn shown(&self) -> Vec<(&Path, &Path)> {
        let volumes = self.volumes.iter().map(|v| (v.origin.as_path(), v.snapshot.as_path()));
        volumes.chain(self.views.iter().map(|v| (v.at.as_path(), v.from.as_path()))).collect()
    }

    /// Adds the views of a bind mount at `at` of the live directory `live`:
    /// `live` as the snapshot holds it, and every volume of the set below
    /// `live` at its place under `at` (a snapshot shows a nested volume as an
    /// empty directory). `false`, and nothing added, when no volume of the
    /// set holds `live`.
    pub fn show(&mut self, at: &Path, live: &Path) -> bool {
        let Some(from) = self.locate(live) else { return false };
        let mut views = vec![View { at: at.to_owned(), from }];
        for v in &self.volumes {
            if let Ok(rest) = v.origin.strip_prefix(live) {
                if !rest.as_os_str().is_empty() {
                    views.push(View { at: at.join(rest), from: v.snapshot.clone() });
                }
            }
        }
        for v in views {
            if !self.views.contains(&v) {
                self.views.push(v);
            }
        }
        true
    }
}

/// A snapshot mechanism. `create` either makes the whole set or leaves nothing
/// behind; `remove` tries every volume and reports the first failure.
pub trait Provider {
    /// A short name for logs and config (`btrfs`, `vss`).
    fn name(&self) -> &'static str;

    /// Snapshots every volume holding one of `sources` (absolute, canonical).
    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet>;

    /// Removes every snapshot of `set`.
    fn remove(&mut self, set: &SnapshotSet) -> Result<()>;

    /// After rsync read `set`: whether every snapshot stayed whole (an LVM
    /// thick snapshot that filled up is garbage). Most cannot overflow.
    fn verify(&self, set: &SnapshotSet) -> Result<()> {
        let _ = set;
        Ok(())
    }

    /// Snapshots this provider made that still exist, from any run. Only what
    /// it can tell it made, never by name alone: anything else is logged and
    /// left out. Providers whose snapshots cannot outlive their process (VSS
    /// backup context) have none.
    fn leftovers(&self) -> Result<Vec<Leftover>> {
        Ok(Vec::new())
    }

    /// Whether another process can remove this provider's snapshots (by
    /// `leftovers`/`remove_leftover`). VSS shadow copies live only as long as
    /// the process that made them, so they cannot.
    fn removal_can_detach(&self) -> bool {
        false
    }

    /// Removes one leftover, checked again just before; one that is already
    /// gone is not an error.
    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()> {
        let _ = leftover;
        Ok(())
    }
}

/// A snapshot found on disk, and the stamp of the run that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Which provider found it (`Provider::name`).
    pub provider: &'static str,
    pub path: PathBuf,
    pub stamp: String,
}

/// Several providers as one, for the sweep, `list` and `cleanup`: each
/// leftover and each set goes back to the provider that made it.
pub struct Several(pub Vec<Box<dyn Provider>>);

impl Several {
    fn part(&mut self, name: &str) -> Result<&mut Box<dyn Provider>> {
        self.0
            .iter_mut()
            .find(|p| p.name() == name)
            .ok_or_else(|| crate::error::Error::Usage(format!("no {name} provider on this machine")))
    }
}

impl Provider for Several {
    fn name(&self) -> &'static str {
        "several"
    }

    fn create(&mut self, _sources: &[PathBuf]) -> Result<SnapshotSet> {
        Err(crate::error::Error::Usage("snapshots are made by one provider, not by the sweep's".into()))
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        self.part(set.provider)?.remove(set)
    }

    /// Every part's; one that cannot list (its tool missing or failing) is
    /// logged and left out, so it never hides the others' leftovers.
    fn leftovers(&self) -> Result<Vec<Leftover>> {
        let mut all = Vec::new();
        for p in &self.0 {
            match p.leftovers() {
                Ok(l) => all.extend(l),
                Err(e) => log::warn!("{}: cannot list its snapshots: {e}", p.name()),
            }
        }
        Ok(all)
    }

    fn removal_can_detach(&self) -> bool {
        self.0.iter().any(|p| p.removal_can_detach())
    }

    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()> {
        self.part(leftover.provider)?.remove_leftover(leftover)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> SnapshotSet {
        let v = |o: &str, s: &str| VolumeSnapshot { origin: o.into(), snapshot: s.into(), id: s.into(), mount: None };
        SnapshotSet { provider: "test", volumes: vec![v("/", "/.s/root"), v("/home", "/home/.s/home")], views: Vec::new() }
    }

    #[test]
    fn locate_picks_the_deepest_volume() {
        let s = set();
        assert_eq!(s.locate(Path::new("/etc/x")), Some("/.s/root/etc/x".into()));
        assert_eq!(s.locate(Path::new("/home/u/f")), Some("/home/.s/home/u/f".into()));
        assert_eq!(s.locate(Path::new("/home")), Some("/home/.s/home".into()));
        assert_eq!(s.locate(Path::new("/homer")), Some("/.s/root/homer".into()));
    }

    #[test]
    fn a_bind_mount_is_shown_from_the_snapshot_of_its_volume_with_what_is_nested_below_it() {
        let v = |o: &str, s: &str| VolumeSnapshot { origin: o.into(), snapshot: s.into(), id: s.into(), mount: None };
        let mut s = SnapshotSet {
            provider: "test",
            volumes: vec![v("/data", "/data/.s/a-0"), v("/data/www/n", "/data/.s/a-1"), v("/data/other/m", "/data/.s/a-2")],
            views: Vec::new(),
        };
        assert!(s.show(Path::new("/srv/www"), Path::new("/data/www")));
        assert!(s.show(Path::new("/srv/www"), Path::new("/data/www")), "twice: the same views, once");
        let view = |at: &str, from: &str| View { at: at.into(), from: from.into() };
        assert_eq!(s.views, [view("/srv/www", "/data/.s/a-0/www"), view("/srv/www/n", "/data/.s/a-1")]);
        assert_eq!(s.locate(Path::new("/srv/www/index.html")), Some("/data/.s/a-0/www/index.html".into()));
        assert_eq!(s.locate(Path::new("/srv/www/n/f")), Some("/data/.s/a-1/f".into()));
        assert_eq!(s.locate(Path::new("/srv/wwwx")), None);
        assert!(!s.show(Path::new("/srv/x"), Path::new("/elsewhere/x")), "no volume holds it");
        assert_eq!(s.views.len(), 2);
    }

    /// A provider whose listing fails, or that lists one leftover.
    struct Lists(Option<&'static str>);

    impl Provider for Lists {
        fn name(&self) -> &'static str {
            self.0.unwrap_or("broken")
        }
        fn create(&mut self, _: &[PathBuf]) -> Result<SnapshotSet> {
            unreachable!()
        }
        fn remove(&mut self, _: &SnapshotSet) -> Result<()> {
            Ok(())
        }
        fn leftovers(&self) -> Result<Vec<Leftover>> {
            match self.0 {
                Some(name) => Ok(vec![Leftover { provider: name, path: "/x".into(), stamp: "s".into() }]),
                None => Err(crate::error::Error::Usage("zfs: command not found".into())),
            }
        }
    }

    #[test]
    fn one_part_that_cannot_list_hides_no_other_parts_leftovers() {
        let several = Several(vec![Box::new(Lists(Some("btrfs"))), Box::new(Lists(None)), Box::new(Lists(Some("lvm")))]);
        let found: Vec<&str> = several.leftovers().unwrap().iter().map(|l| l.provider).collect();
        assert_eq!(found, ["btrfs", "lvm"]);
    }

    #[test]
    fn locate_outside_every_volume_is_none() {
        let s = SnapshotSet {
            provider: "t",
            volumes: vec![VolumeSnapshot { origin: "/srv".into(), snapshot: "/x".into(), id: String::new(), mount: None }],
            views: Vec::new(),
        };
        assert_eq!(s.locate(Path::new("/etc")), None);
    }
}
