//! ZFS provider: one `zfs snapshot` command per pool for every dataset that
//! holds a source and every dataset mounted below one, so the sources in one
//! pool are one point in time (ZFS takes the names of one command together).
//! Pools are snapshotted one after another, and the log says so.
//!
//! - Each snapshot carries the user property `snaprsync:run` (the run stamp)
//!   and a `zfs hold` tagged `snaprsync` while it exists: another tool's
//!   `zfs destroy` cannot take it away while rsync reads it. Removal marks it
//!   for deferred destroy and releases the hold, so it goes at that instant.
//! - It is not mounted here, and `.zfs/snapshot` is never used (its automount
//!   fails inside other mount namespaces): [`VolumeSnapshot::mount`] tells the
//!   exposure to mount `pool/fs@name` explicitly, inside rsync's private
//!   namespace, at a directory under `state_dir`.
//! - The sweep, `list` and `cleanup` touch only snapshots whose name carries a
//!   run stamp *and* whose `snaprsync:run` property says the same stamp:
//!   snapshots of sanoid, zfs-auto-snapshot or an administrator never match.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::mountinfo::{self, Mount};
use crate::provider::{self, DeviceMount, Leftover, Parts, RunOf, SnapshotSet, Snapshotter, Sweeper, VolumeSnapshot};

/// The hold tag on every snapshot snaprsync makes.
pub const HOLD: &str = "snaprsync";
/// The user property that records the run which made a snapshot.
pub const PROPERTY: &str = "snaprsync:run";

/// Pure: the pool a dataset (`pool/fs/child`) belongs to.
pub fn pool_of(dataset: &str) -> &str {
    dataset.split('/').next().unwrap_or(dataset)
}

/// Pure: whether a mount is a ZFS dataset snaprsync can snapshot (not a
/// snapshot mounted under `.zfs/snapshot`, whose name has an `@`).
pub fn is_dataset(m: &Mount) -> bool {
    m.fstype == "zfs" && !m.source.contains('@')
}

/// Pure: `zfs list -H -t snapshot -o name,snaprsync:run` output as the
/// snapshots snaprsync made: the name's snapshot part carries a run stamp and
/// the property names the same stamp.
pub fn parse_ours(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|line| {
            let (name, run) = line.split_once('\t')?;
            let (_, snap) = name.split_once('@')?;
            let stamp = crate::stamp::stamp_of_name(snap)?;
            (stamp == run.trim()).then(|| (name.to_owned(), stamp.to_owned()))
        })
        .collect()
}

/// Pure: a failed `zfs` command's error, with the cause named and the fix.
fn explain(e: Error, what: &str) -> Error {
    let Error::Command { stderr, .. } = &e else { return e };
    let low = stderr.to_lowercase();
    let fix = if low.contains("out of space") || low.contains("no space") {
        "the pool is full: free space in it (destroy old snapshots, or add a vdev)"
    } else if low.contains("permission denied") {
        "permission denied: run snaprsync as root (a `zfs allow` delegation is not enough: on Linux only root may mount a snapshot)"
    } else if low.contains("busy") {
        "the dataset is busy (another snapshot, a receive or a rollback is under way): run the backup again later"
    } else if low.contains("dataset already exists") {
        "a snapshot of that name exists: another snaprsync run with the same stamp? run `snaprsync list`"
    } else {
        return Error::Snapshot { path: what.into(), msg: stderr.trim().to_owned() };
    };
    Error::Snapshot { path: what.into(), msg: format!("{}: {fix}", stderr.trim()) }
}

pub struct Zfs {
    mounts: Vec<Mount>,
    /// Why this process cannot mount a snapshot (not root), if so: then no
    /// snapshot is made at all, since one that cannot be mounted cannot be
    /// read, and a delegated user without `mount` may not destroy it either.
    cannot_mount: Option<String>,
    /// Where the exposure mounts each snapshot (a directory per snapshot).
    mount_dir: PathBuf,
    stamp: String,
}

impl Zfs {
    pub fn new(mounts: Vec<Mount>, state_dir: &Path, cannot_mount: Option<String>) -> Self {
        Zfs { mounts, cannot_mount, mount_dir: state_dir.join("mnt"), stamp: crate::stamp::run_stamp().to_owned() }
    }

    /// The mounts to snapshot: the dataset holding each source and every
    /// dataset mounted below a source; parents first, each mount once.
    fn datasets(&self, sources: &[PathBuf]) -> Result<Vec<Mount>> {
        let mut out: Vec<Mount> = Vec::new();
        let mut add = |m: &Mount| {
            if !out.iter().any(|o| o.mount_point == m.mount_point) {
                out.push(m.clone());
            }
        };
        for s in sources {
            let m = mountinfo::find(&self.mounts, s).ok_or_else(|| Error::Snapshot { path: s.clone(), msg: "no mount holds it".into() })?;
            if !is_dataset(m) {
                return Err(Error::NoProvider { path: s.clone(), fstype: format!("{} (not a ZFS dataset)", m.fstype) });
            }
            if m.root != Path::new("/") {
                return Err(Error::Snapshot {
                    path: s.clone(),
                    msg: format!(
                        "{} is a bind mount of {}:{}; name the path under the dataset's own mount point",
                        m.mount_point.display(),
                        m.source,
                        m.root.display()
                    ),
                });
            }
            add(m);
            for nested in self.mounts.iter().filter(|n| n.mount_point.starts_with(s) && &n.mount_point != s) {
                // Only the last mount at a place is visible.
                if mountinfo::find(&self.mounts, &nested.mount_point).is_some_and(|top| top == nested) && is_dataset(nested) {
                    // Its snapshot would show the whole dataset where the mount shows one directory.
                    if nested.root != Path::new("/") {
                        return Err(Error::Unmatched {
                            arg: nested.mount_point.display().to_string(),
                            why: format!(
                                "a bind mount of the directory {} of {}, below a source; name it as a source of its own",
                                nested.root.display(),
                                nested.source
                            ),
                        });
                    }
                    add(nested);
                }
            }
        }
        out.sort_by_key(|m| m.mount_point.components().count());
        Ok(out)
    }

    /// The directory a snapshot is mounted at: one per run and pool, one
    /// below it per mount.
    fn mount_at(&self, snap: &str, k: usize) -> PathBuf {
        self.mount_dir.join(snap).join(k.to_string())
    }
}

/// The stderr of a failed `zfs` command (not its command line, which names
/// datasets that may contain any word).
fn stderr_of(e: &Error) -> &str {
    match e {
        Error::Command { stderr, .. } => stderr,
        _ => "",
    }
}

fn gone(e: &Error) -> bool {
    let s = stderr_of(e);
    s.contains("does not exist") || s.contains("could not find any snapshots")
}

/// `zfs destroy -d`: destroys the snapshot now if nothing holds it, else marks
/// it to go when the last hold or clone does. Retried while it is busy (still
/// mounted a moment after the namespace that mounted it ended).
fn destroy_deferred(name: &str) -> Result<()> {
    let mut tries = 0;
    loop {
        match Cmd::new("zfs").arg("destroy").arg("-d").arg(name).run() {
            Ok(_) => return Ok(()),
            Err(e) if gone(&e) => return Ok(()),
            Err(e) if tries < 25 && stderr_of(&e).contains("busy") => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

/// What keeps a snapshot after removal: its user holds, whether it is marked
/// for deferred destroy, and its clones; `None` once it is gone.
fn left(name: &str) -> Result<Option<(u64, bool, String)>> {
    match Cmd::new("zfs").arg("get").arg("-Hp").arg("-o").arg("value").arg("userrefs,defer_destroy,clones").arg(name).run() {
        Ok(out) => Ok(Some(parse_left(&out))),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Pure: `zfs get -Hp -o value userrefs,defer_destroy,clones` output.
fn parse_left(out: &str) -> (u64, bool, String) {
    let mut l = out.lines().map(str::trim);
    let refs = l.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let deferred = l.next() == Some("on");
    let clones = l.next().filter(|v| !v.is_empty() && *v != "-").unwrap_or_default().to_owned();
    (refs, deferred, clones)
}

/// Removes snapshots (`pool/fs@name`): each is marked for deferred destroy,
/// then snaprsync's holds are released, which destroys them at that instant.
/// The result is judged by what is left: one that another tool holds is
/// marked and goes when that tool releases it (not a failure); one with a
/// clone cannot go, and the error names the clone.
fn destroy(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut busy: Vec<&String> = Vec::new();
    for n in names {
        if let Err(e) = destroy_deferred(n) {
            log::debug!("{e}");
            busy.push(n);
        }
    }
    // Each snapshot is released on its own; one without the hold (the run
    // died between `zfs snapshot` and `zfs hold`) only sets the status.
    let mut release = Cmd::new("zfs").arg("release").arg(HOLD);
    for n in names {
        release = release.arg(n);
    }
    if let Err(e) = release.run() {
        log::debug!("{e}");
    }
    let mut first = None;
    for n in names {
        if busy.contains(&n) {
            // Once more: one that was busy above may be free now.
            let _ = destroy_deferred(n);
        }
        match left(n) {
            Ok(None) => {}
            Ok(Some((_, _, clones))) if !clones.is_empty() => {
                first.get_or_insert(Error::Snapshot {
                    path: n.into(),
                    msg: format!(
                        "it has a clone ({clones}), so it cannot be removed; destroy the clone (or `zfs promote` it) and the snapshot goes with it, or run `snaprsync cleanup` after"
                    ),
                });
            }
            Ok(Some((refs, true, _))) if refs > 0 => {
                log::info!("zfs: {n} is held by another tool; it is destroyed when that hold is released");
            }
            Ok(Some(_)) => {
                first.get_or_insert(Error::Snapshot { path: n.into(), msg: "still there after `zfs destroy -d` and `zfs release`".into() });
            }
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// `zfs list` of snapshots with the run each was marked with, for
/// [`parse_ours`]; all of them, or those named after it.
fn list_marked() -> Cmd {
    Cmd::new("zfs").arg("list").arg("-H").arg("-t").arg("snapshot").arg("-o").arg(format!("name,{PROPERTY}"))
}

/// Its row's parts: a mounted dataset; a sweep asks `zfs` only once the
/// module is loaded (`/dev/zfs` exists). A run's snapshotter is told whether
/// this process may mount what it makes.
pub const PARTS: Parts = Parts {
    detects: is_dataset,
    build: |cfg, machine| Ok(Box::new(Zfs::new(machine.mounts.clone(), &provider::state_dir(cfg), (machine.cannot_mount)()))),
    in_use: || Path::new("/dev/zfs").exists(),
    sweeper: |cfg, machine| Ok(Box::new(Zfs::new(machine.mounts.clone(), &provider::state_dir(cfg), None))),
};

impl Snapshotter for Zfs {
    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        let (sources, binds) = crate::provider::through_volume_mounts(&self.mounts, sources, "the dataset", is_dataset)?;
        let mounts = self.datasets(&sources)?;
        if let (Some(why), Some(first)) = (&self.cannot_mount, mounts.first()) {
            return Err(Error::Snapshot {
                path: first.mount_point.clone(),
                msg: format!(
                    "permission denied: {why}; run snaprsync as root (a `zfs allow` delegation is not enough: on Linux only root may mount a snapshot)"
                ),
            });
        }
        let mut pools: Vec<&str> = Vec::new();
        for m in &mounts {
            if !pools.contains(&pool_of(&m.source)) {
                pools.push(pool_of(&m.source));
            }
        }
        if pools.len() > 1 {
            log::info!(
                "zfs: {} pools ({}) are snapshotted one after another: the datasets of one pool are one point in time, the pools are not",
                pools.len(),
                pools.join(", ")
            );
        }
        let mut set = SnapshotSet { provider: self.name(), ..SnapshotSet::default() };
        // All or nothing: what a failed (or panicking) step made is removed.
        let result = provider::all_or_nothing(self, &mut set, |z, set| {
            for (n, pool) in pools.iter().enumerate() {
                let snap = format!("{}-{n}", z.stamp);
                let here: Vec<(usize, &Mount)> = mounts.iter().enumerate().filter(|(_, m)| pool_of(&m.source) == *pool).collect();
                let mut names: Vec<String> = Vec::new();
                for (_, m) in &here {
                    let name = format!("{}@{snap}", m.source);
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                // The directories first: once a snapshot exists, nothing may
                // fail before it is in the set that a failure removes.
                for (k, _) in &here {
                    let at = z.mount_at(&snap, *k);
                    std::fs::create_dir_all(&at).map_err(|e| Error::io(&at, e))?;
                }
                let mut c = Cmd::new("zfs").arg("snapshot").arg("-o").arg(format!("{PROPERTY}={}", z.stamp));
                for name in &names {
                    c = c.arg(name);
                }
                c.run().map_err(|e| explain(e, pool))?;
                for (k, m) in here {
                    let name = format!("{}@{snap}", m.source);
                    set.volumes.push(VolumeSnapshot {
                        origin: m.mount_point.clone(),
                        snapshot: z.mount_at(&snap, k),
                        id: name.clone(),
                        mount: Some(DeviceMount { device: PathBuf::from(name), fstype: "zfs".into(), options: "ro".into() }),
                    });
                }
                let mut hold = Cmd::new("zfs").arg("hold").arg(HOLD);
                for name in &names {
                    hold = hold.arg(name);
                }
                hold.run().map_err(|e| explain(e, pool))?;
                log::debug!("zfs: {} in pool {pool} at one instant", names.join(" "));
            }
            Ok(())
        });
        if let Err(e) = result {
            // The directories of a pool whose snapshot failed are in no set.
            for (n, _) in pools.iter().enumerate() {
                self.remove_dirs(&format!("{}-{n}", self.stamp));
            }
            return Err(e);
        }
        set.volumes.sort_by_key(|v| v.origin.components().count());
        for (at, live) in &binds {
            set.show(at, live);
        }
        Ok(set)
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        let mut names: Vec<String> = Vec::new();
        for v in &set.volumes {
            if !names.contains(&v.id) {
                names.push(v.id.clone());
            }
        }
        let result = destroy(&names);
        for name in &names {
            if let Some((_, snap)) = name.split_once('@') {
                self.remove_dirs(snap);
            }
        }
        result
    }

    fn removal_can_detach(&self) -> bool {
        true
    }
}

impl Sweeper for Zfs {
    fn name(&self) -> &'static str {
        "zfs"
    }

    fn leftovers(&self) -> Result<Vec<Leftover>> {
        let out = list_marked().run()?;
        Ok(as_leftovers(&out))
    }

    /// The snapshots of the datasets that held the runs' sources (and of
    /// those mounted below them), one `zfs list -d 1` for all: not every
    /// snapshot of the machine. No ZFS run, no command at all. A run whose
    /// datasets cannot be told from today's mounts, or a listing that fails
    /// (a dataset gone since), falls back to the whole listing.
    fn leftovers_of(&self, runs: &[RunOf]) -> Result<Vec<Leftover>> {
        let Some(datasets) = provider::places_of_runs(runs, self.name(), |s| self.datasets_of(s)) else {
            return self.leftovers();
        };
        if datasets.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = list_marked().arg("-d").arg("1");
        for d in &datasets {
            c = c.arg(d);
        }
        match c.run() {
            Ok(out) => Ok(as_leftovers(&out)),
            Err(e) => {
                log::debug!("zfs: {e}: listing every snapshot");
                self.leftovers()
            }
        }
    }

    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()> {
        let name = leftover.path.to_string_lossy().into_owned();
        // Checked again: still ours.
        let out = match list_marked().arg(&name).run() {
            Ok(out) => out,
            Err(e) if gone(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        if parse_ours(&out).is_empty() {
            return Ok(());
        }
        destroy(std::slice::from_ref(&name))?;
        if let Some((_, snap)) = name.split_once('@') {
            self.remove_dirs(snap);
        }
        Ok(())
    }
}

/// Pure: [`parse_ours`] as leftovers.
fn as_leftovers(out: &str) -> Vec<Leftover> {
    parse_ours(out).into_iter().map(|(name, stamp)| Leftover { provider: "zfs", path: PathBuf::from(name), stamp }).collect()
}

impl Zfs {
    /// The datasets a run of `sources` snapshotted, as today's mounts show
    /// them: the dataset of each source and each dataset mounted below one.
    /// Lenient where [`Zfs::datasets`] refuses: a sweep looks, it does not snapshot.
    fn datasets_of(&self, sources: &[PathBuf]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in sources {
            let holding = mountinfo::find(&self.mounts, s).filter(|m| is_dataset(m));
            let below = self.mounts.iter().filter(|n| n.mount_point.starts_with(s) && is_dataset(n));
            for m in holding.into_iter().chain(below) {
                if !out.contains(&m.source) {
                    out.push(m.source.clone());
                }
            }
        }
        out
    }

    /// Removes a run's empty mount directories (never anything in them).
    fn remove_dirs(&self, snap: &str) {
        let dir = self.mount_dir.join(snap);
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(e.path());
        }
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &str, fstype: &str, source: &str) -> Mount {
        Mount { root: "/".into(), mount_point: point.into(), fstype: fstype.into(), source: source.into(), dev: "0:50".into() }
    }

    #[test]
    fn pools() {
        assert_eq!(pool_of("tank/home/u"), "tank");
        assert_eq!(pool_of("tank"), "tank");
    }

    #[test]
    fn snapshots_mounted_below_a_source_are_not_datasets() {
        assert!(is_dataset(&mount("/tank", "zfs", "tank")));
        assert!(!is_dataset(&mount("/tank/.zfs/snapshot/x", "zfs", "tank@x")));
        assert!(!is_dataset(&mount("/mnt", "ext4", "/dev/sda1")));
    }

    #[test]
    fn only_snapshots_named_and_marked_by_a_run_are_ours() {
        let out = "tank/a@snaprsync-20261129T100000Z-p12-0\tsnaprsync-20261129T100000Z-p12\n\
                   tank/a@autosnap_2026-11-29_00:00:01_daily\t-\n\
                   tank/a@snaprsync-20261129T100000Z-p13-0\t-\n\
                   tank/a@snaprsync-20261129T100000Z-p14-0\tsnaprsync-20261129T100000Z-p99\n\
                   tank/b@zfs-auto-snap_hourly-2026-11-29-1000\t-\n\
                   garbage\n";
        assert_eq!(
            parse_ours(out),
            vec![("tank/a@snaprsync-20261129T100000Z-p12-0".to_owned(), "snaprsync-20261129T100000Z-p12".to_owned())]
        );
    }

    /// A provider over these mounts, as a run of stamp `snaprsync-20261129T100000Z-p1` has it.
    fn over(mounts: Vec<Mount>) -> Zfs {
        Zfs { mounts, cannot_mount: None, mount_dir: "/var/lib/snaprsync/mnt".into(), stamp: "snaprsync-20261129T100000Z-p1".into() }
    }

    #[test]
    fn datasets_below_a_source_come_with_it_parents_first() {
        let z = over(vec![
            mount("/", "ext4", "/dev/vda1"),
            mount("/tank/data/child", "zfs", "tank/data/child"),
            mount("/tank/data", "zfs", "tank/data"),
            mount("/tank/data/.zfs/snapshot/x", "zfs", "tank/data@x"),
            mount("/tank/other", "zfs", "tank/other"),
        ]);
        let got: Vec<String> = z.datasets(&["/tank/data".into()]).unwrap().into_iter().map(|m| m.source).collect();
        assert_eq!(got, ["tank/data", "tank/data/child"]);
        let err = z.datasets(&["/etc".into()]).unwrap_err();
        assert!(matches!(err, Error::NoProvider { .. }), "{err}");
    }

    #[test]
    fn a_bind_mount_of_a_subdirectory_below_a_source_is_83_not_the_whole_dataset() {
        let mut bind = mount("/srv/www", "zfs", "tank/data");
        bind.root = "/www".into();
        let z = over(vec![mount("/srv", "zfs", "tank/srv"), bind]);
        let err = z.datasets(&["/srv".into()]).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::status::NO_PROVIDER, "{err}");
        assert!(err.to_string().contains("/srv/www: a bind mount of the directory /www of tank/data, below a source"), "{err}");
    }

    #[test]
    fn a_bind_mount_of_a_subdirectory_is_refused_with_the_fix() {
        let mut m = mount("/srv", "zfs", "tank/data");
        m.root = "/sub".into();
        let z = over(vec![m]);
        let err = z.datasets(&["/srv".into()]).unwrap_err().to_string();
        assert!(err.contains("bind mount of tank/data:/sub"), "{err}");
    }

    /// A sweep looks where a run's sources were: the dataset of each and
    /// those mounted below, through a bind mount of a directory too.
    #[test]
    fn a_runs_datasets_are_told_from_its_sources() {
        let mut bind = mount("/srv/www", "zfs", "tank/data");
        bind.root = "/www".into();
        let z = over(vec![
            mount("/", "ext4", "/dev/vda1"),
            mount("/tank/data", "zfs", "tank/data"),
            mount("/tank/data/child", "zfs", "tank/data/child"),
            mount("/tank/data/.zfs/snapshot/x", "zfs", "tank/data@x"),
            mount("/tank/other", "zfs", "tank/other"),
            mount("/pool2", "zfs", "pool2"),
            bind,
        ]);
        let of = |s: &[&str]| z.datasets_of(&s.iter().map(PathBuf::from).collect::<Vec<_>>());
        assert_eq!(of(&["/tank/data/a/file"]), ["tank/data"]);
        assert_eq!(of(&["/tank/data"]), ["tank/data", "tank/data/child"]);
        assert_eq!(of(&["/srv/www", "/pool2/x", "/tank/data/child/y"]), ["tank/data", "pool2", "tank/data/child"]);
        assert!(of(&["/etc", "/nowhere"]).is_empty(), "not on ZFS: nothing to look at");
        assert!(z.leftovers_of(&[]).unwrap().is_empty(), "no run, no listing (and no zfs command)");
        let sources = [PathBuf::from("/tank/data")];
        let btrfs_run = RunOf { stamp: "snaprsync-20260101T000000Z-p1", provider: "btrfs", sources: &sources };
        assert!(z.leftovers_of(&[btrfs_run]).unwrap().is_empty(), "another provider's run: no listing");
    }

    #[test]
    fn what_keeps_a_snapshot_is_read() {
        assert_eq!(parse_left("0\noff\n\n"), (0, false, String::new()));
        assert_eq!(parse_left("1\non\n-\n"), (1, true, String::new()));
        assert_eq!(parse_left("0\non\ntank/clone\n"), (0, true, "tank/clone".to_owned()));
        assert_eq!(parse_left(""), (0, false, String::new()));
    }

    #[test]
    fn failures_name_the_cause_and_the_fix() {
        let cmd = |stderr: &str| Error::Command { cmd: "zfs snapshot".into(), status: crate::error::Exit::Code(1), stderr: stderr.into() };
        for (stderr, want) in [
            ("cannot create snapshot 'tank/a@x': out of space", "pool is full"),
            ("cannot create snapshot 'tank/a@x': permission denied", "run snaprsync as root"),
            ("cannot create snapshot 'tank/a@x': dataset is busy", "run the backup again later"),
            ("cannot create snapshot 'tank/a@x': I/O error", "I/O error"),
        ] {
            let e = explain(cmd(stderr), "tank");
            assert_eq!(e.exit_code(), crate::error::status::SNAPSHOT);
            let s = e.to_string();
            assert!(s.contains(want) && s.contains("tank"), "{s}");
        }
    }
}
