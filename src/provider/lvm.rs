//! LVM provider: a snapshot logical volume of each logical volume that holds a
//! source (and of each one mounted below a source), for ext4 and XFS.
//!
//! - A **thick** origin gets a classic snapshot of `lvm_snapshot_size` (a
//!   percentage of the origin, or a size); the volume group's free space is
//!   checked first. A thick snapshot that fills up becomes invalid and its
//!   contents garbage, so after rsync ran each is checked ([`Snapshotter::verify`]):
//!   an overflow fails the backup with its own status.
//! - A **thin** origin gets a thin snapshot, activated despite the skip flag
//!   (`-kn`); the pool's data and metadata use are checked first against
//!   `lvm_thin_pool_max_percent`, since a full pool stalls every volume in it.
//!
//! Creating a snapshot suspends its origin and freezes the filesystem on it:
//! each snapshot is crash-consistent. LVM has no command that takes several
//! volumes together: with `lvm_freeze = "all"` (the default) every origin is
//! frozen while the run's snapshots are made, so that they are one instant
//! (see [`freeze`](crate::provider::freeze)); with `"none"` each is its own
//! point in time. The log says which.
//!
//! The snapshot is not mounted here: [`VolumeSnapshot::mount`] tells the
//! exposure to mount it read-only (ext4 `noload`, XFS `norecovery,nouuid`)
//! inside rsync's private namespace, at a directory under `state_dir`, from
//! where it is shown over the origin like any snapshot.
//!
//! Names are `snaprsync-<UTC>-p<pid>-<n>` with the LVM tag `snaprsync`: the
//! sweep, `list` and `cleanup` remove only LVs that carry both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::Cmd;
use crate::config::SnapshotSize;
use crate::error::{Error, Result};
use crate::mountinfo::{self, Mount};
use crate::provider::{self, freeze, DeviceMount, Leftover, Parts, RunOf, SnapshotSet, Snapshotter, Sweeper, VolumeSnapshot};

/// The LVM tag every snapshot snaprsync makes carries.
pub const TAG: &str = "snaprsync";

/// What `lvs` says of one logical volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Lv {
    pub vg: String,
    pub name: String,
    /// `lv_attr`: character 1 is the type (`V` thin, `s`/`S` snapshot), 5 the state.
    pub attr: String,
    pub size: u64,
    pub pool: String,
    pub vg_free: u64,
    pub data_percent: Option<f64>,
    pub metadata_percent: Option<f64>,
    pub snap_percent: Option<f64>,
    pub tags: Vec<String>,
}

impl Lv {
    pub fn is_thin(&self) -> bool {
        self.attr.starts_with('V') || !self.pool.is_empty()
    }

    /// A thick snapshot that overflowed: invalid (attr 5 `I`, or `S` while
    /// suspended) or 100% full.
    pub fn overflowed(&self) -> bool {
        matches!(self.attr.chars().nth(4), Some('I' | 'S')) || self.snap_percent.is_some_and(|p| p >= 100.0)
    }
}

/// The fields `lvs` is asked for, in [`parse_lvs`]'s order.
const LVS_FIELDS: &str = "vg_name,lv_name,lv_attr,lv_size,pool_lv,vg_free,data_percent,metadata_percent,snap_percent,lv_tags";

/// Pure: `lvs --noheadings --nosuffix --units b --separator '|' -o LVS_FIELDS` output.
pub fn parse_lvs(out: &str) -> Vec<Lv> {
    out.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.trim().split('|').map(str::trim).collect();
            if f.len() < 10 {
                return None;
            }
            let pct = |s: &str| s.parse::<f64>().ok();
            Some(Lv {
                vg: f[0].to_owned(),
                name: f[1].to_owned(),
                attr: f[2].to_owned(),
                size: f[3].parse().ok()?,
                pool: f[4].to_owned(),
                vg_free: f[5].parse().unwrap_or(0),
                data_percent: pct(f[6]),
                metadata_percent: pct(f[7]),
                snap_percent: pct(f[8]),
                tags: f[9].split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
            })
        })
        .collect()
}

pub use crate::provider::freeze::split_dm_name;

/// Pure: the mount options a read-only snapshot of `fstype` needs. ext3/ext4
/// would replay their journal even read-only; XFS would refuse the log a
/// frozen filesystem left, and the origin's UUID.
pub fn mount_options(fstype: &str) -> &'static str {
    match fstype {
        "ext3" | "ext4" => "ro,noload",
        "xfs" => "ro,norecovery,nouuid",
        _ => "ro",
    }
}

/// The logical volume behind a mount, if any: from sysfs, by the device's
/// major:minor (`dm/uuid` starts with `LVM-`), named by `dm/name`.
pub fn lv_of(mount: &Mount) -> Option<(String, String)> {
    let sys = PathBuf::from(format!("/sys/dev/block/{}", mount.dev));
    let uuid = std::fs::read_to_string(sys.join("dm/uuid")).ok()?;
    if !uuid.starts_with("LVM-") {
        return None;
    }
    split_dm_name(std::fs::read_to_string(sys.join("dm/name")).ok()?.trim())
}

/// `lvs` for `what` (volume group or `VG/LV` names, or nothing for all).
fn lvs(what: &[String]) -> Result<Vec<Lv>> {
    lvs_selected(what, None)
}

/// `lvs` for `what`, only the rows that `select` (an `lvs -S` selection) takes.
fn lvs_selected(what: &[String], select: Option<&str>) -> Result<Vec<Lv>> {
    let mut c = Cmd::new("lvs").arg("--noheadings").arg("--nosuffix").arg("--units").arg("b").arg("--separator").arg("|");
    c = c.arg("-o").arg(LVS_FIELDS);
    if let Some(select) = select {
        c = c.arg("-S").arg(select);
    }
    for w in what {
        c = c.arg(w);
    }
    Ok(parse_lvs(&c.run()?))
}

/// Pure: the `lvs -S` selection of the origins named `lvs` and of every thin
/// pool (a thin origin's room is its pool's), asked of their VGs only: the
/// rows a run's checks read, not one per LV of a VG that holds hundreds.
pub fn origins_selection(lvs: &[&str]) -> String {
    let mut terms: Vec<String> = lvs.iter().map(|lv| format!("lv_name=\"{lv}\"")).collect();
    terms.sort();
    terms.dedup();
    terms.push("segtype=thin-pool".into());
    terms.join("||")
}

pub struct Lvm {
    mounts: Vec<Mount>,
    size: SnapshotSize,
    thin_max_percent: u8,
    /// Where the exposure mounts each snapshot (a directory per snapshot).
    mount_dir: PathBuf,
    stamp: String,
    /// What the sweep's `lvs` said of each volume group it asked about, kept
    /// for the run: it serves `create` where they share a VG (each LVM
    /// command costs tens of milliseconds). A sweep itself always lists anew.
    known: std::cell::RefCell<std::collections::HashMap<String, Vec<Lv>>>,
    /// The thick snapshots this run made (`VG/NAME`): only they can overflow.
    thick: Vec<String>,
    /// Where the journal is, for the frozen mount points.
    record: Option<Box<dyn provider::FreezeRecord>>,
    /// One instant across volumes (`lvm_freeze = "all"`), or none.
    freeze: Option<Freeze>,
}

impl Lvm {
    pub fn new(mounts: Vec<Mount>, size: SnapshotSize, thin_max_percent: u8, state_dir: &Path) -> Self {
        Lvm {
            mounts,
            size,
            thin_max_percent,
            mount_dir: state_dir.join("mnt"),
            stamp: crate::stamp::run_stamp().to_owned(),
            known: std::cell::RefCell::new(std::collections::HashMap::new()),
            thick: Vec::new(),
            record: None,
            freeze: None,
        }
    }

    /// The logical volumes of the volume groups `vgs` (every VG for none),
    /// listed now, and kept for `create` (see [`Lvm::known`]).
    fn listing(&self, vgs: &[String]) -> Result<Vec<Lv>> {
        let listed = lvs(vgs)?;
        let mut known = self.known.borrow_mut();
        if vgs.is_empty() {
            known.clear();
        }
        for vg in vgs {
            known.insert(vg.clone(), Vec::new());
        }
        for lv in &listed {
            known.entry(lv.vg.clone()).or_default().push(lv.clone());
        }
        Ok(listed)
    }

    /// What this run's sweep listed of the volume groups `vgs`, if it listed them all.
    fn listed_already(&self, vgs: &[String]) -> Option<Vec<Lv>> {
        let known = self.known.borrow();
        vgs.iter().all(|vg| known.contains_key(vg)).then(|| vgs.iter().flat_map(|vg| known[vg].clone()).collect())
    }

    /// The volume groups that hold `sources` or a volume mounted below one;
    /// none when one of them is on no logical volume now (unmounted since).
    fn vgs_of(&self, sources: &[PathBuf]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in sources {
            let Some((vg, _)) = mountinfo::find(&self.mounts, s).and_then(lv_of) else { return Vec::new() };
            let below = self.mounts.iter().filter(|m| m.mount_point.starts_with(s)).filter_map(lv_of).map(|(vg, _)| vg);
            for vg in std::iter::once(vg).chain(below) {
                if !out.contains(&vg) {
                    out.push(vg);
                }
            }
        }
        out
    }

    /// The tagged snapshots in `all`, and the mount directories of `runs`
    /// (every run's, for `None`) whose snapshot is not in it.
    fn leftovers_in(&self, all: &[Lv], runs: Option<&[RunOf]>) -> Vec<Leftover> {
        let mut found: Vec<Leftover> = all
            .iter()
            .filter(|l| l.tags.iter().any(|t| t == TAG))
            .filter_map(|l| {
                let stamp = crate::stamp::stamp_of_name(&l.name)?;
                Some(Leftover { provider: "lvm", path: PathBuf::from(format!("{}/{}", l.vg, l.name)), stamp: stamp.to_owned() })
            })
            .collect();
        let named: std::collections::HashSet<&str> = all.iter().map(|l| l.name.as_str()).collect();
        let strays = stray_mount_dirs(&self.mount_dir, &named, &current_mounts());
        found.extend(strays.into_iter().filter(|d| runs.is_none_or(|runs| runs.iter().any(|r| r.stamp == d.stamp))));
        found
    }

    /// The mounts to snapshot: the one holding each source, and every LV
    /// mounted below a source; parents first, each once.
    fn volumes(&self, sources: &[PathBuf]) -> Result<Vec<(Mount, String, String)>> {
        let mut out: Vec<(Mount, String, String)> = Vec::new();
        let mut add = |m: &Mount| -> Result<()> {
            if out.iter().any(|(o, ..)| o.mount_point == m.mount_point) {
                return Ok(());
            }
            // Its snapshot would show the whole volume where the mount shows one directory.
            if m.root != Path::new("/") {
                return Err(Error::Unmatched {
                    arg: m.mount_point.display().to_string(),
                    why: format!(
                        "a bind mount of the directory {} of {}, below a source; name it as a source of its own",
                        m.root.display(),
                        m.source
                    ),
                });
            }
            let Some((vg, lv)) = lv_of(m) else {
                return Err(Error::NoProvider { path: m.mount_point.clone(), fstype: format!("{} (not on a logical volume)", m.fstype) });
            };
            out.push((m.clone(), vg, lv));
            Ok(())
        };
        for s in sources {
            let m = mountinfo::find(&self.mounts, s).ok_or_else(|| Error::Snapshot { path: s.clone(), msg: "no mount holds it".into() })?;
            add(m)?;
            for nested in self.mounts.iter().filter(|n| n.mount_point.starts_with(s) && &n.mount_point != s) {
                // Only the last mount at a place is visible.
                if mountinfo::find(&self.mounts, &nested.mount_point).is_some_and(|top| top == nested) && lv_of(nested).is_some() {
                    add(nested)?;
                }
            }
        }
        out.sort_by_key(|(m, ..)| m.mount_point.components().count());
        Ok(out)
    }

    /// Refuses a snapshot that would not fit, or a thin pool too full to take one.
    fn check_room(&self, lv: &Lv, pool: Option<&Lv>, taken: u64) -> Result<u64> {
        let name = format!("{}/{}", lv.vg, lv.name);
        if lv.is_thin() {
            let Some(p) = pool else { return Ok(0) };
            let max = f64::from(self.thin_max_percent);
            for (what, used) in [("data", p.data_percent), ("metadata", p.metadata_percent)] {
                if used.is_some_and(|u| u >= max) {
                    return Err(Error::Snapshot {
                        path: name.into(),
                        msg: format!(
                            "thin pool {}/{} {what} is {:.1}% used, at or over lvm_thin_pool_max_percent = {}: a full pool stalls every volume in it; extend the pool or raise the limit",
                            p.vg,
                            p.name,
                            used.unwrap_or(0.0),
                            self.thin_max_percent
                        ),
                    });
                }
            }
            return Ok(0);
        }
        let want = self.size.bytes_for(lv.size);
        if lv.vg_free.saturating_sub(taken) < want {
            return Err(Error::Snapshot {
                path: name.into(),
                msg: format!(
                    "volume group {} has {} MiB free, the snapshot needs {} MiB: free space in the volume group or lower lvm_snapshot_size",
                    lv.vg,
                    lv.vg_free.saturating_sub(taken) >> 20,
                    want.div_ceil(1 << 20)
                ),
            });
        }
        Ok(want)
    }
}

fn remove_lv(vg_lv: &str) -> Result<()> {
    let mut tries = 0;
    loop {
        match Cmd::new("lvremove").arg("-y").arg(vg_lv).run() {
            Ok(_) => return Ok(()),
            // Right after an unmount the LV can still be open for a moment.
            Err(e) if tries < 25 && (e.to_string().contains("in use") || e.to_string().contains("open")) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) if e.to_string().contains("Failed to find logical volume") => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// The mounts of this namespace now (none if they cannot be read: then
/// nothing counts as unmounted, see [`stray_mount_dirs`]).
fn current_mounts() -> Option<Vec<Mount>> {
    std::fs::read_to_string("/proc/self/mountinfo").ok().map(|t| mountinfo::parse(&t))
}

/// Whether `dir` is one of snaprsync's mount points that nothing is in: a
/// real directory (not a link), named like a snapshot, empty, and no mount's
/// place in `mounts`.
fn is_stray_mount_dir(dir: &Path, mounts: &Option<Vec<Mount>>) -> bool {
    let Some(mounts) = mounts else { return false };
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    crate::stamp::stamp_of_name(name).is_some()
        && std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_dir())
        && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
        && !mounts.iter().any(|m| m.mount_point == dir)
}

/// The mount-point directories in `mount_dir` whose snapshot is gone (no LV
/// in `lvs` of that name): what a run killed during `lvremove` leaves, once
/// the orphaned `lvremove` has finished. The sweep removes them as its run's
/// leftovers, when that run is dead.
fn stray_mount_dirs(mount_dir: &Path, lvs: &std::collections::HashSet<&str>, mounts: &Option<Vec<Mount>>) -> Vec<Leftover> {
    let Ok(items) = std::fs::read_dir(mount_dir) else { return Vec::new() };
    let mut found: Vec<Leftover> = items
        .flatten()
        .filter_map(|item| {
            let name = item.file_name().to_str()?.to_owned();
            let stamp = crate::stamp::stamp_of_name(&name)?.to_owned();
            let path = item.path();
            (!lvs.contains(name.as_str()) && is_stray_mount_dir(&path, mounts)).then_some(Leftover { provider: "lvm", path, stamp })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Removes a mount-point directory that [`stray_mount_dirs`] found, checked
/// again; one that has become anything else is left alone, and said so.
fn remove_mount_dir(dir: &Path, mounts: &Option<Vec<Mount>>) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Ok(());
    }
    if !is_stray_mount_dir(dir, mounts) {
        return Err(Error::Snapshot {
            path: dir.to_owned(),
            msg: "no longer an empty, unmounted mount point of snaprsync's; left alone".into(),
        });
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

/// The first planned volume's mount point, for an error about the plan.
fn p0(plan: &[Planned]) -> PathBuf {
    plan.first().map(|p| p.mount.mount_point.clone()).unwrap_or_default()
}

/// One snapshot to make: checked, not yet made.
struct Planned {
    mount: Mount,
    vg: String,
    lv: String,
    thin: bool,
    /// The snapshot's name.
    name: String,
    /// A thick snapshot's size.
    bytes: u64,
}

/// How a run freezes (config `lvm_freeze`, `lvm_freeze_timeout`).
#[derive(Debug, Clone)]
pub struct Freeze {
    pub limit: Duration,
    /// Files snaprsync writes while the filesystems are frozen (`state_dir`,
    /// a log file): a volume holding one is not frozen by snaprsync.
    pub written: Vec<PathBuf>,
}

/// What snaprsync and LVM write or run while the filesystems are frozen,
/// besides [`Freeze::written`]: a volume holding one of them could not be
/// frozen, or its device suspended, without stopping the very step that
/// must end the freeze.
const USED_WHILE_FROZEN: &[&str] =
    &["/etc/lvm", "/run/lock", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/lib", "/lib", "/usr/lib64", "/lib64"];

impl Lvm {
    /// Freezes every origin while the run's snapshots are made, at most
    /// `freeze.limit`; without this, each snapshot is its own instant.
    pub fn with_freeze(mut self, freeze: Option<Freeze>) -> Self {
        self.freeze = freeze;
        self
    }

    /// Makes one snapshot (its mount-point directory first: once the LV
    /// exists, nothing may fail before it is in the set that a failure removes).
    fn make(&mut self, p: &Planned) -> Result<VolumeSnapshot> {
        let at = self.mount_dir.join(&p.name);
        std::fs::create_dir_all(&at).map_err(|e| Error::io(&at, e))?;
        let mut c = Cmd::new("lvcreate").arg("-s").arg("-n").arg(&p.name).arg("--addtag").arg(TAG);
        c = if p.thin { c.arg("-kn") } else { c.arg("-L").arg(format!("{}b", p.bytes)) };
        if let Err(e) = c.arg(format!("{}/{}", p.vg, p.lv)).run() {
            let _ = std::fs::remove_dir(&at);
            return Err(e);
        }
        if !p.thin {
            self.thick.push(format!("{}/{}", p.vg, p.name));
        }
        Ok(VolumeSnapshot {
            origin: p.mount.mount_point.clone(),
            snapshot: at,
            id: format!("{}/{}", p.vg, p.name),
            mount: Some(DeviceMount {
                device: PathBuf::from(format!("/dev/{}/{}", p.vg, p.name)),
                fstype: p.mount.fstype.clone(),
                options: mount_options(&p.mount.fstype).to_owned(),
            }),
        })
    }

    /// One after another, each snapshot frozen by LVM alone: its own instant.
    fn make_each(&mut self, plan: &[Planned], set: &mut SnapshotSet) -> Result<()> {
        if plan.len() > 1 {
            log::info!("lvm: {} volumes are snapshotted one after another, each its own point in time (lvm_freeze = \"none\")", plan.len());
        }
        for p in plan {
            set.volumes.push(self.make(p)?);
        }
        Ok(())
    }

    /// Whether snaprsync may freeze `p`'s filesystem across its `lvcreate`
    /// (see [`freeze`](crate::provider::freeze)): a thick origin that holds
    /// nothing written or run while frozen.
    fn freezable(&self, p: &Planned, written: &[PathBuf]) -> bool {
        !p.thin
            && freeze::Dm::of(&p.mount).is_some()
            && !written
                .iter()
                .map(PathBuf::as_path)
                .chain(USED_WHILE_FROZEN.iter().map(Path::new))
                .any(|used| mountinfo::find(&self.mounts, used).is_some_and(|m| m.dev == p.mount.dev))
    }

    /// The snapshots as one instant: every freezable origin frozen, each
    /// snapshotted over its suspended device, then one more (thin, or not
    /// freezable) by LVM's own freeze, then all thawed. More than one volume
    /// that is not freezable: the others are made first, each its own instant.
    fn make_frozen(&mut self, plan: &[Planned], set: &mut SnapshotSet) -> Result<()> {
        let Some(cfg) = self.freeze.clone() else { return self.make_each(plan, set) };
        let (frozen, rest): (Vec<&Planned>, Vec<&Planned>) = plan.iter().partition(|p| self.freezable(p, &cfg.written));
        let (alone, last) = match rest.split_last() {
            Some((last, alone)) => (alone.to_vec(), Some(*last)),
            None => (Vec::new(), None),
        };
        for p in &alone {
            set.volumes.push(self.make(p)?);
        }
        // Each filesystem once, though mounted at two places.
        let mut points: Vec<&Mount> = Vec::new();
        for p in &frozen {
            if !points.iter().any(|m| m.dev == p.mount.dev) {
                points.push(&p.mount);
            }
        }
        let points: Vec<PathBuf> = points.iter().map(|m| m.mount_point.clone()).collect();
        // Recorded before the first freeze, for a sweep after a kill -9; no
        // sweep of this journal runs while the filesystems are frozen.
        let record = self.record.as_ref().ok_or_else(|| Error::Snapshot {
            path: p0(plan),
            msg: "this run has no record to name what it freezes, so a frozen filesystem could not be thawed after a crash".into(),
        })?;
        record.record(&points)?;
        let _no_sweep = record.hold_sweeps();
        let window = (|| {
            let window = freeze::Window::open(cfg.limit);
            for mp in &points {
                window.freeze(mp)?;
            }
            window.fault("lvm-frozen")?;
            for (i, p) in frozen.iter().enumerate() {
                if i == 1 {
                    window.fault("lvm-between")?;
                }
                let dm = freeze::Dm::of(&p.mount)
                    .ok_or_else(|| Error::Snapshot { path: p.mount.mount_point.clone(), msg: "no device-mapper device".into() })?;
                window.suspend(&dm)?;
                if i == 0 {
                    window.fault("lvm-suspended")?;
                }
                // LVM finds the origin suspended, and resumes it when done.
                // Into the set at once, so that a step past the limit still
                // has its snapshot removed.
                window.step(&format!("lvcreate -s {}/{}", p.vg, p.lv), || {
                    set.volumes.push(self.make(p)?);
                    Ok(())
                })?;
            }
            if let Some(p) = last {
                window.step(&format!("lvcreate -s {}/{}", p.vg, p.lv), || {
                    set.volumes.push(self.make(p)?);
                    Ok(())
                })?;
            }
            window.fault("lvm-snapped")?;
            window.close()
        })();
        if let Err(e) = self.record.as_ref().map_or(Ok(()), |r| r.record(&[])) {
            log::warn!("{e}; a sweep will thaw what is no longer frozen");
        }
        let open = window?;
        let freeze_ms = open.as_millis();
        let volumes = frozen.len() + usize::from(last.is_some());
        if alone.is_empty() {
            log::info!(
                "lvm: {} volumes snapshotted at one instant, {} filesystem(s) frozen for freeze_ms={freeze_ms}",
                plan.len(),
                points.len()
            );
        } else {
            let names: Vec<String> = alone.iter().map(|p| format!("{}/{}", p.vg, p.lv)).collect();
            log::info!(
                "lvm: {volumes} volumes snapshotted at one instant (freeze_ms={freeze_ms}), but not {}: each is its own instant (a thin origin, or one holding what snaprsync or LVM write or run, is frozen by LVM alone, and only one can be)",
                names.join(", ")
            );
        }
        Ok(())
    }
}

impl Snapshotter for Lvm {
    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        let (sources, binds) = crate::provider::through_volume_mounts(&self.mounts, sources, "the logical volume", |m| lv_of(m).is_some())?;
        let vols = self.volumes(&sources)?;
        let mut vgs: Vec<String> = vols.iter().map(|(_, vg, _)| vg.clone()).collect();
        vgs.sort();
        vgs.dedup();
        // What the sweep listed of these VGs, or the origins' and pools' rows alone.
        let info = match self.listed_already(&vgs) {
            Some(info) => info,
            None => {
                let names: Vec<&str> = vols.iter().map(|(_, _, lv)| lv.as_str()).collect();
                lvs_selected(&vgs, Some(&origins_selection(&names)))?
            }
        };
        // Everything is checked before anything is made (or frozen).
        let mut plan = Vec::new();
        // What earlier snapshots of this run take from each volume group.
        let mut taken: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for (n, (mount, vg, lvname)) in vols.into_iter().enumerate() {
            let lv = info
                .iter()
                .find(|l| l.vg == vg && l.name == *lvname)
                .ok_or_else(|| Error::Snapshot { path: mount.mount_point.clone(), msg: format!("lvs does not list {vg}/{lvname}") })?;
            let pool = info.iter().find(|p| lv.is_thin() && p.vg == vg && p.name == lv.pool).cloned();
            let bytes = self.check_room(lv, pool.as_ref(), *taken.get(&vg).unwrap_or(&0))?;
            *taken.entry(vg.clone()).or_default() += bytes;
            plan.push(Planned { thin: lv.is_thin(), mount, vg, lv: lvname, name: format!("{}-{n}", self.stamp), bytes });
        }
        std::fs::create_dir_all(&self.mount_dir).map_err(|e| Error::io(&self.mount_dir, e))?;
        let mut set = SnapshotSet { provider: self.name(), ..SnapshotSet::default() };
        // All or nothing; by then every filesystem is thawed.
        provider::all_or_nothing(self, &mut set, |lvm, set| {
            if lvm.freeze.is_some() && plan.len() > 1 {
                lvm.make_frozen(&plan, set)
            } else {
                lvm.make_each(&plan, set)
            }
        })?;
        for (at, live) in &binds {
            set.show(at, live);
        }
        Ok(set)
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        provider::remove_last_first(set, |v| {
            let removed = remove_lv(&v.id);
            let _ = std::fs::remove_dir(&v.snapshot);
            removed
        })
    }

    fn verify(&self, set: &SnapshotSet) -> Result<()> {
        // Thin snapshots share their pool and cannot overflow on their own.
        let thick: Vec<String> = set.volumes.iter().filter(|v| self.thick.contains(&v.id)).map(|v| v.id.clone()).collect();
        if thick.is_empty() {
            return Ok(());
        }
        let info = lvs(&thick)?;
        for v in &set.volumes {
            if let Some(lv) = info.iter().find(|l| format!("{}/{}", l.vg, l.name) == v.id) {
                if lv.overflowed() {
                    return Err(Error::SnapshotOverflow { volume: v.origin.clone(), snapshot: v.id.clone() });
                }
            }
        }
        Ok(())
    }

    fn removal_can_detach(&self) -> bool {
        true
    }

    fn record_freezes_in(&mut self, record: Box<dyn provider::FreezeRecord>) {
        self.record = Some(record);
    }
}

impl Sweeper for Lvm {
    fn name(&self) -> &'static str {
        "lvm"
    }

    fn leftovers(&self) -> Result<Vec<Leftover>> {
        let all = self.listing(&[])?;
        Ok(self.leftovers_in(&all, None))
    }

    /// What the runs' volume groups hold of theirs, one `lvs` for all; no
    /// LVM run, no command at all. A run whose VGs cannot be told from
    /// today's mounts falls back to every VG.
    fn leftovers_of(&self, runs: &[RunOf]) -> Result<Vec<Leftover>> {
        let Some(mut vgs) = provider::places_of_runs(runs, self.name(), |s| self.vgs_of(s)) else {
            return self.leftovers();
        };
        if vgs.is_empty() {
            return Ok(Vec::new());
        }
        vgs.sort();
        let all = self.listing(&vgs)?;
        Ok(self.leftovers_in(&all, Some(runs)))
    }

    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()> {
        if leftover.path.starts_with(&self.mount_dir) {
            return remove_mount_dir(&leftover.path, &current_mounts());
        }
        let vg_lv = leftover.path.to_string_lossy();
        // Checked again: still ours.
        let still = lvs(&[vg_lv.to_string()]).unwrap_or_default();
        if !still.iter().any(|l| l.tags.iter().any(|t| t == TAG)) {
            return Ok(());
        }
        remove_lv(&vg_lv)?;
        if let Some(name) = leftover.path.file_name() {
            let _ = std::fs::remove_dir(self.mount_dir.join(name));
        }
        Ok(())
    }
}

/// Its row's parts: a mount on a logical volume (told by sysfs, no `lvs`
/// needed); a sweep asks `lvs` only where a device-mapper device is LVM's.
pub const PARTS: Parts = Parts {
    detects: |m| lv_of(m).is_some(),
    build: |cfg, machine| lvm(cfg, machine).map(|l| Box::new(l) as _),
    in_use,
    sweeper: |cfg, machine| lvm(cfg, machine).map(|l| Box::new(l) as _),
};

fn lvm(cfg: &crate::config::Config, machine: &provider::Machine) -> Result<Lvm> {
    let size = cfg.lvm_snapshot_size().map_err(Error::Usage)?;
    let state_dir = provider::state_dir(cfg);
    let freeze = (cfg.lvm_freeze == crate::config::LvmFreeze::All).then(|| {
        let log = match &cfg.log {
            crate::config::LogTarget::File(p) => Some(p.clone()),
            _ => None,
        };
        let written = [Some(state_dir.clone()), cfg.log_file.clone(), log].into_iter().flatten().collect();
        Freeze { limit: Duration::from_secs(cfg.lvm_freeze_timeout), written }
    });
    Ok(Lvm::new(machine.mounts.clone(), size, cfg.lvm_thin_pool_max_percent, &state_dir).with_freeze(freeze))
}

/// Whether any device-mapper device here is LVM's.
fn in_use() -> bool {
    std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| std::fs::read_to_string(e.path().join("dm/uuid")).is_ok_and(|u| u.starts_with("LVM-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's sweep with no dead LVM run in the journal asks LVM nothing
    /// (`lvs` is not run: the tempdir's state has no LVM), and another
    /// provider's run is not its to look for.
    #[test]
    fn a_run_asks_lvs_for_its_origins_and_the_pools_alone() {
        assert_eq!(origins_selection(&["root"]), r#"lv_name="root"||segtype=thin-pool"#);
        assert_eq!(origins_selection(&["xfs", "ext", "xfs"]), r#"lv_name="ext"||lv_name="xfs"||segtype=thin-pool"#);
    }

    #[test]
    fn no_lvm_run_no_listing() {
        let d = tempfile::tempdir().unwrap();
        let l = Lvm::new(Vec::new(), SnapshotSize::Percent(10), 90, d.path());
        assert!(l.leftovers_of(&[]).unwrap().is_empty());
        let sources = [PathBuf::from("/data")];
        let btrfs_run = RunOf { stamp: "snaprsync-20260101T000000Z-p1", provider: "btrfs", sources: &sources };
        assert!(l.leftovers_of(&[btrfs_run]).unwrap().is_empty());
        assert!(l.known.borrow().is_empty(), "nothing was listed");
    }

    /// The sweep's part in a kill -9 during `lvremove`: the mount point left
    /// behind is found and removed once its LV is gone, and nothing else is:
    /// not a directory whose LV is listed, not one with something in it, not a
    /// link, not a mount point, not a name snaprsync does not give.
    #[test]
    fn stray_mount_points_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let mnt = d.path().join("mnt");
        let stray = mnt.join("snaprsync-20260101T000000Z-p1-0");
        let with_lv = mnt.join("snaprsync-20260101T000000Z-p2-0");
        let full = mnt.join("snaprsync-20260101T000000Z-p3-0");
        let mounted = mnt.join("snaprsync-20260101T000000Z-p4-0");
        let foreign = mnt.join("not-snaprsync-0");
        for dir in [&stray, &with_lv, &full, &mounted, &foreign] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(full.join("file"), "x").unwrap();
        let link = mnt.join("snaprsync-20260101T000000Z-p5-0");
        std::os::unix::fs::symlink(d.path(), &link).unwrap();
        let mounts = Some(vec![Mount {
            root: "/".into(),
            mount_point: mounted.clone(),
            fstype: "ext4".into(),
            source: "/dev/vg/snaprsync-20260101T000000Z-p4-0".into(),
            dev: "253:4".into(),
        }]);
        let lvs: std::collections::HashSet<&str> = ["snaprsync-20260101T000000Z-p2-0"].into();
        let found = stray_mount_dirs(&mnt, &lvs, &mounts);
        assert_eq!(found, vec![Leftover { provider: "lvm", path: stray.clone(), stamp: "snaprsync-20260101T000000Z-p1".into() }]);
        assert!(stray_mount_dirs(&mnt, &lvs, &None).is_empty(), "unknown mounts: nothing is taken for unmounted");
        remove_mount_dir(&stray, &mounts).unwrap();
        assert!(!stray.exists());
        remove_mount_dir(&stray, &mounts).unwrap();
        for kept in [&full, &mounted, &link] {
            assert!(remove_mount_dir(kept, &mounts).is_err(), "{}", kept.display());
            assert!(std::fs::symlink_metadata(kept).is_ok());
        }
    }

    #[test]
    fn dm_names() {
        assert_eq!(split_dm_name("vg0-root"), Some(("vg0".into(), "root".into())));
        assert_eq!(split_dm_name("my--vg-my--lv"), Some(("my-vg".into(), "my-lv".into())));
        assert_eq!(split_dm_name("vg-lv--x"), Some(("vg".into(), "lv-x".into())));
        assert_eq!(split_dm_name("nodash"), None);
        assert_eq!(split_dm_name("-lv"), None);
    }

    #[test]
    fn lvs_output() {
        let out = "  vg|data|owi-aos---|1073741824||524288000|||||\n  vg|snaprsync-20260101T000000Z-p1-0|swi-a-s---|107374182|data|0|||12.50|snaprsync\n  vg|thin|Vwi-a-tz--|1073741824|pool|0|5.00||||\n  garbage\n";
        let l = parse_lvs(out);
        assert_eq!(l.len(), 3);
        assert_eq!((l[0].size, l[0].vg_free, l[0].is_thin()), (1 << 30, 524288000, false));
        assert_eq!(l[1].snap_percent, Some(12.5));
        assert_eq!(l[1].tags, vec!["snaprsync".to_owned()]);
        assert!(!l[1].overflowed());
        assert!(l[2].is_thin());
    }

    #[test]
    fn overflow_is_seen_in_attr_or_percent() {
        let mut lv = parse_lvs("vg|s|swi-a-s---|1|o|0|||50.00|snaprsync").remove(0);
        assert!(!lv.overflowed());
        lv.attr = "swi-I-s---".into();
        assert!(lv.overflowed());
        lv.attr = "swi-S-s---".into();
        assert!(lv.overflowed());
        lv.attr = "swi-a-s---".into();
        lv.snap_percent = Some(100.0);
        assert!(lv.overflowed());
    }

    #[test]
    fn options_per_filesystem() {
        assert_eq!(mount_options("ext4"), "ro,noload");
        assert_eq!(mount_options("xfs"), "ro,norecovery,nouuid");
        assert_eq!(mount_options("vfat"), "ro");
    }
}
