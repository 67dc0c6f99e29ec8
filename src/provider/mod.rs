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

/// A bind mount to show from a snapshot: its mount point, and the directory it
/// shows as the volume's own mount has it (for [`SnapshotSet::show`]).
pub type Bind = (PathBuf, PathBuf);

/// For the device providers (LVM, ZFS), whose volumes are mounted with root
/// `/`: where a source `s` on the mount `m` is snapshotted from. A source on
/// a volume's own mount is its own; one on a bind mount of a directory inside
/// a volume (`mount --bind /data/www /srv/www`) is snapshotted through the
/// volume's mount (`/data`), checked to show the very same directory, and the
/// bind mount (its place, and the directory seen through `/data`) is to be
/// shown with [`SnapshotSet::show`]. With no such mount: 83, naming the
/// layout and the fix; never a read of the live files.
#[cfg(target_os = "linux")]
pub fn through_volume_mount<'a>(
    mounts: &'a [crate::mountinfo::Mount],
    m: &'a crate::mountinfo::Mount,
    s: &Path,
    what: &str,
) -> Result<(&'a crate::mountinfo::Mount, PathBuf, Option<Bind>)> {
    use std::os::unix::fs::MetadataExt;
    if m.root == Path::new("/") {
        return Ok((m, s.to_owned(), None));
    }
    let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let rest = s.strip_prefix(&m.mount_point).unwrap_or(Path::new(""));
    for (whole, bound) in crate::mountinfo::reaching(mounts, m).into_iter().filter(|(w, _)| w.root == Path::new("/")) {
        let path = if rest.as_os_str().is_empty() { bound.clone() } else { bound.join(rest) };
        // The same directory, not one renamed or put in its place since the bind.
        if id(&path).is_some() && id(&path) == id(s) && id(&bound) == id(&m.mount_point) {
            log::debug!("{} is a bind mount of {}: snapshotting {what} {}", m.mount_point.display(), bound.display(), whole.source);
            return Ok((whole, path, Some((m.mount_point.clone(), bound))));
        }
    }
    Err(crate::error::Error::Unmatched {
        arg: s.display().to_string(),
        why: format!(
            "it is on a bind mount at {} of the directory {} inside {what} {}, which is mounted nowhere else, so it cannot be \
             snapshotted; mount {what} itself too (anywhere) and run again",
            m.mount_point.display(),
            m.root.display(),
            m.source
        ),
    })
}

/// [`through_volume_mount`] for every source whose mount `is_kind` (the
/// others are left to the provider to refuse): the sources as the volumes'
/// own mounts show them, and the bind mounts to show.
#[cfg(target_os = "linux")]
pub fn through_volume_mounts(
    mounts: &[crate::mountinfo::Mount],
    sources: &[PathBuf],
    what: &str,
    is_kind: impl Fn(&crate::mountinfo::Mount) -> bool,
) -> Result<(Vec<PathBuf>, Vec<Bind>)> {
    let (mut reached, mut binds) = (Vec::new(), Vec::new());
    for s in sources {
        match crate::mountinfo::find(mounts, s).filter(|m| is_kind(m)) {
            Some(m) => {
                let (_, path, bind) = through_volume_mount(mounts, m, s, what)?;
                reached.push(path);
                binds.extend(bind);
            }
            None => reached.push(s.clone()),
        }
    }
    Ok((reached, binds))
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

    #[cfg(target_os = "linux")]
    #[test]
    fn a_bind_mount_of_a_directory_is_reached_through_its_volumes_own_mount() {
        use crate::mountinfo::Mount;
        let d = tempfile::tempdir().unwrap();
        let (vol, srv) = (d.path().join("vol"), d.path().join("srv"));
        std::fs::create_dir_all(vol.join("www/sub")).unwrap();
        std::fs::create_dir_all(vol.join("other")).unwrap();
        std::fs::create_dir(&srv).unwrap();
        // A symlink stands for the bind mount: the same directory, as stat sees it.
        std::os::unix::fs::symlink(vol.join("www"), srv.join("www")).unwrap();
        std::os::unix::fs::symlink(vol.join("other"), srv.join("moved")).unwrap();
        let mount = |root: &str, at: &Path| Mount {
            root: root.into(),
            mount_point: at.to_owned(),
            fstype: "ext4".into(),
            source: "/dev/vg/lv".into(),
            dev: "254:3".into(),
        };
        let mounts = vec![mount("/", &vol), mount("/www", &srv.join("www")), mount("/www", &srv.join("moved"))];
        let (whole, path, bind) = through_volume_mount(&mounts, &mounts[1], &srv.join("www/sub"), "the logical volume").unwrap();
        assert_eq!((whole, path), (&mounts[0], vol.join("www/sub")));
        assert_eq!(bind, Some((srv.join("www"), vol.join("www"))));
        assert_eq!(through_volume_mount(&mounts, &mounts[0], &vol.join("x"), "it").unwrap(), (&mounts[0], vol.join("x"), None));
        // A bind whose directory is not the one at that path now, or whose volume is mounted nowhere: 83.
        for (all, k) in [(&mounts[..], 2), (&mounts[1..2], 0)] {
            let err = through_volume_mount(all, &all[k], &all[k].mount_point, "the logical volume").unwrap_err();
            assert_eq!(err.exit_code(), crate::error::status::NO_PROVIDER, "{err}");
            assert!(err.to_string().contains("bind mount at") && err.to_string().contains("mount the logical volume itself"), "{err}");
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
