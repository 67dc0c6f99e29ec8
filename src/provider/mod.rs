//! The snapshot-provider boundary: knows snapshots, nothing of rsync.
//!
//! A provider turns a list of source paths into one [`SnapshotSet`] (one
//! snapshot per volume or subvolume that holds them, all taken together), and
//! removes that set again. The set is plain data, so mapping a source path into
//! its snapshot is the same code for every provider.
//!
//! Making is a [`Snapshotter`]'s, sweeping what dead runs left a [`Sweeper`]'s.
//! Every provider is one row of [`PROVIDERS`] (its name, and on its system
//! its detection, its snapshotter and its sweeper), which the config's
//! `provider` words, the choice for a run and the sweep all read: adding a
//! provider is its file and its row.

use std::path::{Path, PathBuf};

use crate::config::{Config, ProviderChoice, ProviderName};
use crate::error::{Error, Result};
#[cfg(target_os = "linux")]
use crate::mountinfo::Mount;

#[cfg(target_os = "linux")]
pub mod btrfs;
#[cfg(target_os = "linux")]
pub mod freeze;
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
///
/// A view of a place by itself (`at` == `from`) is a volume frozen already
/// (a read-only btrfs subvolume nested below a source: another tool's
/// snapshot), shown as it is rather than snapshotted again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub at: PathBuf,
    pub from: PathBuf,
}

impl View {
    /// Whether this is a frozen volume shown at its own place.
    pub fn is_frozen(&self) -> bool {
        self.at == self.from
    }
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
        // The set's volumes, and the subvolumes shown as they are (frozen).
        let frozen = self.views.iter().filter(|w| w.is_frozen()).map(|w| (&w.at, &w.from));
        for (origin, snapshot) in self.volumes.iter().map(|v| (&v.origin, &v.snapshot)).chain(frozen) {
            if let Ok(rest) = origin.strip_prefix(live) {
                if !rest.as_os_str().is_empty() {
                    views.push(View { at: at.join(rest), from: snapshot.clone() });
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

/// Finds and removes what dead runs left: the snapshots of this kind that
/// still exist, from any run. A sweep-only part (Windows' stray drive
/// letters) is a sweeper and nothing else.
pub trait Sweeper {
    /// A short name for logs and config (`btrfs`, `vss`): its row's name in [`PROVIDERS`].
    fn name(&self) -> &'static str;

    /// Snapshots of its kind that still exist, from any run. Only what it
    /// can tell snaprsync made, never by name alone: anything else is logged
    /// and left out.
    fn leftovers(&self) -> Result<Vec<Leftover>>;

    /// What the runs `runs` (as their journal entries record them) may have
    /// left, and what else its listing there shows: a run's sweep and its
    /// background removal ask this, `cleanup` and `doctor` [`leftovers`].
    /// By default every leftover, for a provider whose listing grows only
    /// with snaprsync's own snapshots (btrfs reads its snapshot directory);
    /// one whose listing grows with the machine (ZFS) looks only where the
    /// runs' sources are.
    ///
    /// [`leftovers`]: Sweeper::leftovers
    fn leftovers_of(&self, runs: &[RunOf]) -> Result<Vec<Leftover>> {
        let _ = runs;
        self.leftovers()
    }

    /// Removes one leftover, checked again just before; one that is already
    /// gone is not an error.
    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()>;
}

/// Makes, checks and removes one run's snapshots. `create` either makes the
/// whole set or leaves nothing behind ([`undo_partial`]); `remove` tries every
/// volume and reports the first failure. A snapshotter is also the sweeper of
/// its own kind: the run sweeps with it before it snapshots.
pub trait Snapshotter: Sweeper {
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

    /// Whether another process can remove this set (by its sweeper's
    /// `leftovers`/`remove_leftover`). VSS shadow copies live only as long
    /// as the process that made them, so they cannot.
    fn removal_can_detach(&self) -> bool {
        false
    }

    /// Where this run records the filesystems a snapshotter freezes (LVM's
    /// one instant), given by the run before `create`; one that freezes
    /// nothing ignores it.
    fn record_freezes_in(&mut self, record: Box<dyn FreezeRecord>) {
        let _ = record;
    }
}

/// The run's record of what a snapshotter holds frozen, for a sweep after a
/// kill -9 (the run's journal entry), and the hold that keeps sweeps off
/// while it is frozen. The run's, given to its snapshotter.
pub trait FreezeRecord {
    /// Records `frozen`, the mount points about to be frozen (or none once
    /// thawed), in this run's record.
    fn record(&self, frozen: &[PathBuf]) -> Result<()>;

    /// Keeps every sweep of this run's journal off until the value is dropped.
    fn hold_sweeps(&self) -> Option<Box<dyn std::any::Any>>;
}

/// All or nothing: a `create` that failed part way gives its set (what it
/// made so far) and the `failure` here; the set is removed by the provider's
/// own `remove` (the last made first) and the failure given back. A failure
/// of that removal is logged: the journal's entry keeps the rest for a sweep.
#[cfg(target_os = "linux")]
pub(crate) fn undo_partial(provider: &mut dyn Snapshotter, set: &SnapshotSet, failure: Error) -> Error {
    if let Err(undo) = provider.remove(set) {
        log::error!("{undo}");
    }
    failure
}

/// Makes a set by `make`, all or nothing: on its error, or its panic, what it
/// made so far is removed before the error returns or the panic goes on
/// (whoever catches the panic never sees the set).
#[cfg(target_os = "linux")]
pub(crate) fn all_or_nothing<P: Snapshotter>(
    provider: &mut P,
    set: &mut SnapshotSet,
    make: impl FnOnce(&mut P, &mut SnapshotSet) -> Result<()>,
) -> Result<()> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make(provider, set))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(undo_partial(provider, set, e)),
        Err(panic) => {
            if let Err(undo) = provider.remove(set) {
                log::error!("{undo}");
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// Removes each snapshot of `set` by `remove_one`, the last made first (a
/// child before its parent), every one tried; the first failure is returned.
#[cfg(target_os = "linux")]
pub(crate) fn remove_last_first(set: &SnapshotSet, mut remove_one: impl FnMut(&VolumeSnapshot) -> Result<()>) -> Result<()> {
    let mut first = None;
    for v in set.volumes.iter().rev() {
        if let Err(e) = remove_one(v) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// A run as its journal entry records it, for [`Sweeper::leftovers_of`].
#[derive(Debug, Clone, Copy)]
pub struct RunOf<'a> {
    pub stamp: &'a str,
    /// The name of the provider that snapshotted it.
    pub provider: &'a str,
    pub sources: &'a [PathBuf],
}

/// The places a scoped sweep looks at for `runs` (see
/// [`Sweeper::leftovers_of`]): what `of` says holds each source of the runs
/// of the provider `name` (its datasets, its volume groups), each once;
/// `None` when `of` finds nothing for one run, whose places today's mounts no
/// longer show (every place is then looked at).
pub fn places_of_runs(runs: &[RunOf], name: &str, of: impl Fn(&[PathBuf]) -> Vec<String>) -> Option<Vec<String>> {
    let mut places: Vec<String> = Vec::new();
    for run in runs.iter().filter(|r| r.provider == name) {
        let found = of(run.sources);
        if found.is_empty() {
            log::debug!("{name}: the run {} has no source where it found them: looking everywhere", run.stamp);
            return None;
        }
        for p in found {
            if !places.contains(&p) {
                places.push(p);
            }
        }
    }
    Some(places)
}

/// A snapshot found on disk, and the stamp of the run that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// Which provider found it (`Sweeper::name`).
    pub provider: &'static str,
    pub path: PathBuf,
    pub stamp: String,
}

/// Several sweepers as one, for the sweep, `list` and `cleanup`: each
/// leftover goes back to the sweeper that found it.
pub struct Several(pub Vec<Box<dyn Sweeper>>);

impl Sweeper for Several {
    fn name(&self) -> &'static str {
        "several"
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

    /// Every part's, as [`Several::leftovers`].
    fn leftovers_of(&self, runs: &[RunOf]) -> Result<Vec<Leftover>> {
        let mut all = Vec::new();
        for p in &self.0 {
            match p.leftovers_of(runs) {
                Ok(l) => all.extend(l),
                Err(e) => log::warn!("{}: cannot list its snapshots: {e}", p.name()),
            }
        }
        Ok(all)
    }

    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()> {
        let name = leftover.provider;
        let part = self.0.iter_mut().find(|p| p.name() == name);
        part.ok_or_else(|| Error::Usage(format!("no {name} provider on this machine")))?.remove_leftover(leftover)
    }
}

/// One provider: a row of [`PROVIDERS`]. Adding a provider is its file
/// (with its [`Parts`]) and its row.
pub struct Provider {
    /// Which it is; its word in the config, and its name in logs, the
    /// journal and `list` (its snapshotter's and sweeper's `name`).
    pub kind: ProviderName,
    /// The system it runs on, named where it is asked for on another.
    pub os: &'static str,
    /// How it is found, made and swept: only in the build for its system.
    pub here: Option<&'static Parts>,
}

/// What a provider is, on the system it runs on.
pub struct Parts {
    /// Linux: whether it snapshots the filesystem of this mount (`provider =
    /// "auto"`); the first row that does is chosen.
    #[cfg(target_os = "linux")]
    pub detects: fn(&Mount) -> bool,
    /// One run's snapshotter.
    pub build: fn(&Config, &Machine) -> Result<Box<dyn Snapshotter>>,
    /// Whether anything of its kind is here for a sweep to look at (LVM's
    /// devices, ZFS's module): if not, its tool is not asked.
    pub in_use: fn() -> bool,
    /// Its sweeper, for the sweep, `list`, `cleanup` and the background removal.
    pub sweeper: fn(&Config, &Machine) -> Result<Box<dyn Sweeper>>,
}

/// What the platform found that a provider is built from.
pub struct Machine {
    /// This process's mounts.
    #[cfg(target_os = "linux")]
    pub mounts: Vec<Mount>,
    /// Why this process cannot mount a snapshot, if so (asked by a provider
    /// whose snapshots must be mounted to be read).
    #[cfg(target_os = "linux")]
    pub cannot_mount: fn() -> Option<String>,
    /// Whether the run has been asked to stop (a console event).
    #[cfg(windows)]
    pub stopping: fn() -> bool,
}

/// `Some(parts)` in the build for the system `$os`, `None` in every other.
macro_rules! only {
    ($os:meta, $parts:expr) => {{
        #[cfg($os)]
        let here = Some($parts);
        #[cfg(not($os))]
        let here = None;
        here
    }};
}

/// Every provider, of every system: the config's words, detection (in this
/// order), creation and the sweep all read this table.
pub const PROVIDERS: &[Provider] = &[
    Provider { kind: ProviderName::Btrfs, os: "Linux", here: only!(target_os = "linux", &btrfs::PARTS) },
    Provider { kind: ProviderName::Lvm, os: "Linux", here: only!(target_os = "linux", &lvm::PARTS) },
    Provider { kind: ProviderName::Zfs, os: "Linux", here: only!(target_os = "linux", &zfs::PARTS) },
    Provider { kind: ProviderName::Vss, os: "Windows", here: only!(windows, &vss::PARTS) },
];

impl Provider {
    pub const fn name(&self) -> &'static str {
        self.kind.word()
    }
}

/// This build's system, in the words of [`Provider::os`].
const THIS_OS: &str = if cfg!(windows) { "Windows" } else { "Linux" };

/// The row named `name`, of any system.
pub fn named(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name() == name)
}

/// The providers of this build, in the table's order.
pub fn here() -> impl Iterator<Item = (&'static Provider, &'static Parts)> {
    PROVIDERS.iter().filter_map(|p| p.here.map(|parts| (p, parts)))
}

/// Words as a sentence lists them: `"a", "b" or "c"`.
pub fn spoken(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The provider a run uses: the configured one, or under `"auto"` the one
/// `detect` finds. One of another system's is refused, naming those of this one.
pub fn chosen(choice: ProviderChoice, detect: impl FnOnce() -> Result<&'static Parts>) -> Result<&'static Parts> {
    let name = match choice {
        ProviderChoice::Auto => return detect(),
        ProviderChoice::Named(name) => name.word(),
        ProviderChoice::None => "none",
    };
    if let Some(parts) = named(name).and_then(|p| p.here) {
        return Ok(parts);
    }
    let usable: Vec<&str> = std::iter::once("auto").chain(here().map(|(p, _)| p.name())).collect();
    Err(Error::Usage(format!("provider = {name:?} is not available on {THIS_OS}; use {}", spoken(&usable))))
}

/// The provider for every source from the filesystem of its mount, by the
/// first row that detects it. One run has one provider; with no sources, the first.
#[cfg(target_os = "linux")]
pub fn detect(mounts: &[Mount], sources: &[PathBuf]) -> Result<&'static Parts> {
    let mut kind: Option<(&Provider, &'static Parts)> = None;
    for s in sources {
        let m = crate::mountinfo::find(mounts, s).ok_or_else(|| Error::NoProvider { path: s.clone(), fstype: "unknown".into() })?;
        let this =
            here().find(|(_, parts)| (parts.detects)(m)).ok_or_else(|| Error::NoProvider { path: s.clone(), fstype: m.fstype.clone() })?;
        match kind {
            Some((k, _)) if k.name() != this.0.name() => {
                return Err(Error::MixedProviders { path: s.clone(), kind: this.0.name().into(), earlier: k.name().into() })
            }
            _ => kind = Some(this),
        }
    }
    kind.map_or_else(first, |(_, parts)| Ok(parts))
}

/// The first provider of this build: for a run with no sources, and
/// Windows' `"auto"` (its one provider takes every local volume).
pub fn first() -> Result<&'static Parts> {
    here().next().map(|(_, parts)| parts).ok_or_else(|| Error::Usage("no provider in this build".into()))
}

/// The sweepers of every provider here whose kind is in use (`in_use`): the
/// sweep's, `list`'s and `cleanup`'s.
pub fn sweepers(cfg: &Config, machine: &Machine) -> Result<Vec<Box<dyn Sweeper>>> {
    sweepers_where(cfg, machine, |parts| (parts.in_use)())
}

fn sweepers_where(cfg: &Config, machine: &Machine, in_use: impl Fn(&Parts) -> bool) -> Result<Vec<Box<dyn Sweeper>>> {
    here().filter(|(_, parts)| in_use(parts)).map(|(_, parts)| (parts.sweeper)(cfg, machine)).collect()
}

/// Where a provider keeps what it needs beside its snapshots (mount points).
#[cfg(target_os = "linux")]
pub(crate) fn state_dir(cfg: &Config) -> PathBuf {
    cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir)
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

    /// A read-only subvolume below a source is a view of itself: shown live at
    /// its place, and at its place under a bind mount of a directory above it.
    #[test]
    fn a_frozen_volume_is_shown_as_it_is_also_under_a_bind_mount() {
        let v = |o: &str, s: &str| VolumeSnapshot { origin: o.into(), snapshot: s.into(), id: s.into(), mount: None };
        let view = |at: &str, from: &str| View { at: at.into(), from: from.into() };
        let mut s = SnapshotSet {
            provider: "test",
            volumes: vec![v("/data", "/data/.s/a-0")],
            views: vec![view("/data/www/.snapshots/1/snapshot", "/data/www/.snapshots/1/snapshot")],
        };
        assert!(s.views[0].is_frozen());
        assert_eq!(s.locate(Path::new("/data/www/.snapshots/1/snapshot/f")), Some("/data/www/.snapshots/1/snapshot/f".into()));
        assert_eq!(s.locate(Path::new("/data/www/.snapshots/1/info")), Some("/data/.s/a-0/www/.snapshots/1/info".into()));
        assert!(s.show(Path::new("/srv/www"), Path::new("/data/www")));
        assert_eq!(
            s.views[1..],
            [view("/srv/www", "/data/.s/a-0/www"), view("/srv/www/.snapshots/1/snapshot", "/data/www/.snapshots/1/snapshot")]
        );
        assert!(!s.views[1].is_frozen() && !s.views[2].is_frozen());
    }

    /// A sweeper whose listing fails, or that lists one leftover.
    struct Lists(Option<&'static str>);

    impl Sweeper for Lists {
        fn name(&self) -> &'static str {
            self.0.unwrap_or("broken")
        }
        fn leftovers(&self) -> Result<Vec<Leftover>> {
            match self.0 {
                Some(name) => Ok(vec![Leftover { provider: name, path: "/x".into(), stamp: "s".into() }]),
                None => Err(crate::error::Error::Usage("zfs: command not found".into())),
            }
        }
        fn remove_leftover(&mut self, _: &Leftover) -> Result<()> {
            Ok(())
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

    /// A machine with nothing mounted, whose process may mount.
    fn bare() -> Machine {
        Machine {
            #[cfg(target_os = "linux")]
            mounts: Vec::new(),
            #[cfg(target_os = "linux")]
            cannot_mount: || None,
            #[cfg(windows)]
            stopping: || false,
        }
    }

    /// Every provider of this build has a sweeper of its own, and the sweep's
    /// list is made from the table: were one left out, or given another's
    /// sweeper, its leftovers would never be swept.
    #[test]
    fn every_provider_here_has_its_own_sweeper_and_the_sweep_asks_each() {
        let cfg = Config::default();
        let rows: Vec<&str> = here().map(|(p, _)| p.name()).collect();
        assert!(!rows.is_empty());
        for (p, parts) in here() {
            let sweeper = (parts.sweeper)(&cfg, &bare()).unwrap_or_else(|e| panic!("{}: no sweeper: {e}", p.name()));
            assert_eq!(sweeper.name(), p.name(), "the sweeper of {}", p.name());
            let snapshotter = (parts.build)(&cfg, &bare()).unwrap_or_else(|e| panic!("{}: {e}", p.name()));
            assert_eq!(snapshotter.name(), p.name(), "the snapshotter of {}", p.name());
        }
        let swept: Vec<&str> = sweepers_where(&cfg, &bare(), |_| true).unwrap().iter().map(|s| s.name()).collect();
        assert_eq!(swept, rows, "the sweep's sweepers, with every kind in use");
    }

    /// Every name of the config has exactly one row, in its order; the
    /// config's words are the table's, and it reads each.
    #[test]
    fn the_config_takes_the_tables_words() {
        let kinds: Vec<ProviderName> = PROVIDERS.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, ProviderName::ALL, "one row per provider name, in its order");
        let names: Vec<&str> = std::iter::once("auto").chain(PROVIDERS.iter().map(|p| p.name())).chain(["none"]).collect();
        assert_eq!(crate::config::PROVIDER_WORDS, spoken(&names));
        assert_eq!(crate::config::PROVIDER_WORDS, r#""auto", "btrfs", "lvm", "zfs", "vss" or "none""#);
        for p in PROVIDERS {
            let cfg = Config::parse(&format!("provider = {:?}", p.name()), Path::new("t.toml")).unwrap();
            assert_eq!(cfg.provider, ProviderChoice::Named(p.kind));
        }
    }

    /// A provider of another system is refused with those of this one named.
    #[test]
    fn another_systems_provider_is_refused_by_name() {
        let elsewhere = PROVIDERS.iter().find(|p| p.here.is_none()).unwrap();
        let e = chosen(ProviderChoice::Named(elsewhere.kind), || unreachable!()).err().unwrap().to_string();
        let usable: Vec<&str> = std::iter::once("auto").chain(here().map(|(p, _)| p.name())).collect();
        assert!(usable.len() > 1 && usable.len() < PROVIDERS.len() + 1);
        assert_eq!(e, format!("provider = {:?} is not available on {THIS_OS}; use {}", elsewhere.name(), spoken(&usable)));
        for (p, _) in here() {
            assert!(chosen(ProviderChoice::Named(p.kind), || unreachable!()).is_ok());
        }
        let linux = r#"use "auto", "btrfs", "lvm" or "zfs""#;
        assert!(e.ends_with(if cfg!(windows) { r#"use "auto" or "vss""# } else { linux }), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn detection_by_the_tables_order_and_one_kind_a_run() {
        let m = |at: &str, fstype: &str, source: &str| Mount {
            root: "/".into(),
            mount_point: at.into(),
            fstype: fstype.into(),
            source: source.into(),
            dev: "0:0".into(),
        };
        let mounts = [m("/", "ext4", "/dev/sda1"), m("/srv", "btrfs", "/dev/sdb"), m("/tank", "zfs", "tank/data")];
        let name = |sources: &[&str]| {
            let sources: Vec<PathBuf> = sources.iter().map(PathBuf::from).collect();
            detect(&mounts, &sources).map(|parts| here().find(|(_, p)| std::ptr::eq(*p, parts)).unwrap().0.name())
        };
        assert_eq!(name(&["/srv/a", "/srv/b"]).unwrap(), "btrfs");
        assert_eq!(name(&["/tank/x"]).unwrap(), "zfs");
        assert_eq!(name(&[]).unwrap(), "btrfs");
        assert!(matches!(name(&["/etc"]), Err(Error::NoProvider { fstype, .. }) if fstype == "ext4"));
        let mixed = name(&["/srv/a", "/tank/x"]).err().unwrap();
        assert!(matches!(&mixed, Error::MixedProviders { path, .. } if path == Path::new("/tank/x")), "{mixed:?}");
        assert_eq!(mixed.exit_code(), crate::error::status::NO_PROVIDER, "sources on two kinds of volume have their own status");
        assert!(mixed.to_string().contains("/tank/x is on zfs and an earlier source on btrfs"), "{mixed}");
    }

    /// The all-or-nothing helpers, which the Linux providers use.
    #[cfg(target_os = "linux")]
    mod undo {
        use super::*;

        /// TEST DOUBLE of a snapshotter: records what it is asked to remove,
        /// last first, and fails to remove the volumes named in `stuck`.
        struct Records {
            removed: Vec<String>,
            stuck: Vec<&'static str>,
        }

        impl Sweeper for Records {
            fn name(&self) -> &'static str {
                "records"
            }
            fn leftovers(&self) -> Result<Vec<Leftover>> {
                Ok(Vec::new())
            }
            fn remove_leftover(&mut self, _: &Leftover) -> Result<()> {
                Ok(())
            }
        }

        impl Snapshotter for Records {
            fn create(&mut self, _: &[PathBuf]) -> Result<SnapshotSet> {
                unreachable!()
            }
            fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
                remove_last_first(set, |v| {
                    self.removed.push(v.id.clone());
                    match self.stuck.contains(&v.id.as_str()) {
                        true => Err(Error::Usage(format!("{} is busy", v.id))),
                        false => Ok(()),
                    }
                })
            }
        }

        /// A create that failed part way: what it made is removed, the last made
        /// first, every one tried though one fails; the creation's failure is what
        /// the caller gets, not the removal's.
        #[test]
        fn a_partial_set_is_undone_last_first_and_the_first_failure_kept() {
            let partial = set();
            let mut p = Records { removed: Vec::new(), stuck: vec!["/.s/root"] };
            let e = undo_partial(&mut p, &partial, Error::Usage("the third failed".into()));
            assert_eq!(e.to_string(), Error::Usage("the third failed".into()).to_string());
            assert_eq!(p.removed, ["/home/.s/home", "/.s/root"]);
            let mut p = Records { removed: Vec::new(), stuck: vec!["/home/.s/home", "/.s/root"] };
            let first = p.remove(&partial).err().unwrap().to_string();
            assert!(first.contains("/home/.s/home is busy"), "{first}");
            assert_eq!(p.removed.len(), 2);
        }

        /// A make that fails or panics part way: what it put in the set is
        /// removed, the last first, before the error returns or the panic
        /// goes on; a make that succeeds removes nothing.
        #[test]
        fn a_make_that_fails_or_panics_leaves_nothing() {
            let whole = set();
            let fill = |set: &mut SnapshotSet| set.volumes.extend(whole.volumes.iter().cloned());
            let mut p = Records { removed: Vec::new(), stuck: Vec::new() };
            let mut made = SnapshotSet::default();
            all_or_nothing(&mut p, &mut made, |_, set| {
                fill(set);
                Ok(())
            })
            .unwrap();
            assert!(p.removed.is_empty());
            let mut made = SnapshotSet::default();
            let e = all_or_nothing(&mut p, &mut made, |_, set| {
                fill(set);
                Err(Error::Usage("the second failed".into()))
            });
            assert_eq!(e.unwrap_err().to_string(), "the second failed");
            assert_eq!(p.removed, ["/home/.s/home", "/.s/root"]);
            let mut p = Records { removed: Vec::new(), stuck: Vec::new() };
            let mut made = SnapshotSet::default();
            let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = all_or_nothing(&mut p, &mut made, |_, set| {
                    fill(set);
                    panic!("a step panicked");
                });
            }));
            assert!(panicked.is_err(), "the panic goes on");
            assert_eq!(p.removed, ["/home/.s/home", "/.s/root"]);
        }
    }
}
