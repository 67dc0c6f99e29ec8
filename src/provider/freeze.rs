//! The freeze window that makes a run's LVM snapshots one instant: every
//! origin's filesystem is frozen, the snapshots are made, and all are thawed,
//! with the freeze held only while the snapshots are made.
//!
//! What the kernel allows decides the order. On Debian 12's kernel (6.1),
//! `lvcreate -s` of an origin whose filesystem is already frozen fails:
//! device-mapper's suspend freezes the filesystem itself, a second freeze is
//! refused (EBUSY), and for a thick origin LVM then cannot revert and leaves a
//! half-made LV behind. So a thick origin is frozen (`fsfreeze -f`), then its
//! device suspended *without* the filesystem lock (`dmsetup suspend
//! --nolockfs`), then snapshotted: LVM finds it suspended, skips its own
//! suspend (and so the freeze), loads the snapshot and resumes the device,
//! while the filesystem stays frozen until `fsfreeze -u`. A thin snapshot
//! needs LVM's own suspend (the pool's `create_snap` message is sent from it:
//! over a suspended origin `lvcreate` fails), so a thin origin is snapshotted
//! by LVM's own freeze, last, while the others are still frozen: that moment
//! is the run's instant. Only one volume can be last, so a second thin origin
//! (or a second volume holding what snaprsync and LVM write or run meanwhile)
//! is its own instant, and the log says so.
//!
//! The freeze is undone on every way out: [`Window`]'s `Drop` thaws (an error,
//! a panic), a watchdog thread thaws when the window outlasts
//! `lvm_freeze_timeout`, and for kill -9 the run's journal entry names the
//! mount points before the first freeze, so that the sweep thaws what a dead
//! run left frozen ([`thaw_left`]), before it lists or removes anything.
//! Thawing a filesystem that is not frozen fails with EINVAL, which is taken
//! for done.
//!
//! What undoes a freeze never waits on one: `fsfreeze -u` and `dmsetup
//! resume` are run unlogged ([`Cmd::unlogged`]: a log file or stderr on a
//! frozen filesystem, or the lock of a writer waiting there, would hold the
//! watchdog), and the watchdog logs nothing itself.
//!
//! `fsfreeze` (util-linux) is run through [`Cmd`]: neither rustix nor nix has
//! a safe FIFREEZE, and `unsafe` is kept to the Windows FFI files.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::mountinfo::{self, Mount};

/// A device-mapper device: its `major:minor` and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dm {
    pub dev: String,
    pub name: String,
}

impl Dm {
    /// The device-mapper device behind a mount, if it is one.
    pub fn of(mount: &Mount) -> Option<Dm> {
        let name = std::fs::read_to_string(format!("/sys/dev/block/{}/dm/name", mount.dev)).ok()?;
        Some(Dm { dev: mount.dev.clone(), name: name.trim().to_owned() })
    }

    fn suspended(&self) -> bool {
        std::fs::read_to_string(format!("/sys/dev/block/{}/dm/suspended", self.dev)).is_ok_and(|s| s.trim() == "1")
    }

    /// Resumes it if it is suspended.
    fn resume(&self) -> Result<()> {
        if self.suspended() {
            Cmd::new("dmsetup").arg("resume").arg(&self.name).unlogged().run()?;
        }
        Ok(())
    }
}

/// Pure: a device-mapper name (`vg-lv`, each `-` inside a name doubled) as
/// volume group and logical volume.
pub fn split_dm_name(dm: &str) -> Option<(String, String)> {
    let b = dm.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'-' {
            if b.get(i + 1) == Some(&b'-') {
                i += 2;
                continue;
            }
            let (vg, lv) = (&dm[..i], &dm[i + 1..]);
            if vg.is_empty() || lv.is_empty() {
                return None;
            }
            return Some((vg.replace("--", "-"), lv.replace("--", "-")));
        }
        i += 1;
    }
    None
}

fn freeze(mount_point: &Path) -> Result<()> {
    Cmd::new("fsfreeze").arg("-f").arg(mount_point).run().map(drop)
}

/// Thaws; one that is not frozen (EINVAL) counts as thawed.
fn thaw(mount_point: &Path) -> Result<bool> {
    match Cmd::new("fsfreeze").arg("-u").arg(mount_point).unlogged().run() {
        Ok(_) => Ok(true),
        Err(e) if e.to_string().contains("Invalid argument") => Ok(false),
        Err(e) => Err(e),
    }
}

#[derive(Default)]
struct State {
    /// Mount points frozen, or about to be (recorded before the freeze).
    frozen: Vec<PathBuf>,
    /// Devices suspended without the filesystem lock, or about to be.
    suspended: Vec<Dm>,
    /// The step running now, for the error that names a slow one.
    step: String,
    /// The step that was running when the window outlasted its limit.
    expired: Option<String>,
    done: bool,
    /// What the last thaw could not undo, for the log once the window is shut.
    failures: Vec<String>,
}

impl State {
    /// Resumes every suspended device (a filesystem thawed over a suspended
    /// device would wait for it), then thaws every filesystem. Kept
    /// idempotent, and the lists kept, so that a step that ends after a
    /// watchdog thaw is undone by the next.
    fn thaw_all(&mut self) {
        for dm in &self.suspended {
            if let Err(e) = dm.resume() {
                self.failures.push(e.to_string());
            }
        }
        for mp in &self.frozen {
            if let Err(e) = thaw(mp) {
                self.failures.push(e.to_string());
            }
        }
    }
}

type Shared = Arc<(Mutex<State>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// An open freeze window: what is frozen and suspended, undone by
/// [`Window::close`], by `Drop`, or by the watchdog past the limit.
pub struct Window {
    shared: Shared,
    watchdog: Option<std::thread::JoinHandle<()>>,
    opened: Instant,
    limit: Duration,
    closed: bool,
}

impl Window {
    /// Opens a window that may stay open `limit` at most.
    pub fn open(limit: Duration) -> Window {
        let shared: Shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let opened = Instant::now();
        let watched = Arc::clone(&shared);
        // Nothing logged here: a log file may sit on a frozen filesystem.
        let watchdog = std::thread::Builder::new()
            .name("freeze-watchdog".into())
            .spawn(move || {
                let mut s = lock(&watched);
                while !s.done {
                    let left = limit.saturating_sub(opened.elapsed());
                    if left.is_zero() {
                        s.expired = Some(s.step.clone());
                        s.thaw_all();
                        return;
                    }
                    s = watched.1.wait_timeout(s, left).unwrap_or_else(|p| p.into_inner()).0;
                }
            })
            .ok();
        Window { shared, watchdog, opened, limit, closed: false }
    }

    /// Runs one step inside the window; `what` names it if it is the slow one.
    pub fn step<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        {
            let mut s = lock(&self.shared);
            if let Some(slow) = &s.expired {
                return Err(self.expired_error(slow));
            }
            s.step = what.to_owned();
        }
        let r = f();
        let mut s = lock(&self.shared);
        if let Some(slow) = s.expired.clone() {
            // The watchdog thawed while this step ran: undo what it did since.
            s.thaw_all();
            return Err(self.expired_error(&slow));
        }
        r
    }

    /// The debug fault point `name` (see [`crate::fault`]), as a step: a test
    /// holds or kills a run there, inside the window.
    pub fn fault(&self, name: &str) -> Result<()> {
        self.step(&format!("fault point {name}"), || {
            crate::fault::point(name);
            Ok(())
        })
    }

    /// Freezes the filesystem at `mount_point`.
    pub fn freeze(&self, mount_point: &Path) -> Result<()> {
        lock(&self.shared).frozen.push(mount_point.to_owned());
        self.step(&format!("fsfreeze -f {}", mount_point.display()), || freeze(mount_point))
    }

    /// Suspends `dm` without the filesystem lock (its filesystem is frozen).
    pub fn suspend(&self, dm: &Dm) -> Result<()> {
        lock(&self.shared).suspended.push(dm.clone());
        self.step(&format!("dmsetup suspend --nolockfs {}", dm.name), || {
            Cmd::new("dmsetup").arg("suspend").arg("--nolockfs").arg(&dm.name).run().map(drop)
        })
    }

    /// Thaws everything; how long the window was open, or the error that
    /// names the step that outlasted the limit.
    pub fn close(mut self) -> Result<Duration> {
        self.closed = true;
        let expired = {
            let mut s = lock(&self.shared);
            s.done = true;
            self.shared.1.notify_all();
            s.expired.clone()
        };
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        let mut s = lock(&self.shared);
        s.thaw_all();
        let open = self.opened.elapsed();
        let failures = std::mem::take(&mut s.failures);
        drop(s);
        if let Some(first) = failures.first() {
            return Err(Error::Snapshot { path: self.first_frozen(), msg: format!("cannot thaw: {first}; run `fsfreeze -u` on it") });
        }
        match expired {
            Some(slow) => Err(self.expired_error(&slow)),
            None => Ok(open),
        }
    }

    fn first_frozen(&self) -> PathBuf {
        lock(&self.shared).frozen.first().cloned().unwrap_or_default()
    }

    fn expired_error(&self, slow: &str) -> Error {
        Error::Snapshot {
            path: PathBuf::from(slow),
            msg: format!(
                "the filesystems stayed frozen past lvm_freeze_timeout = {} s while this ran; they were thawed and no snapshot is kept: \
                 raise lvm_freeze_timeout, or set lvm_freeze = \"none\"",
                self.limit.as_secs()
            ),
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        {
            let mut s = lock(&self.shared);
            s.done = true;
            self.shared.1.notify_all();
            s.thaw_all();
            for f in s.failures.drain(..) {
                log::error!("{f}");
            }
        }
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
    }
}

/// The sweep's part: thaws each of `mount_points` that a dead run recorded
/// as frozen and that is still a mount point, first resuming its device if it
/// was left suspended. `lvs` of the volume group goes first: it waits for an
/// `lvcreate` the dead run started, which resumes the device itself.
pub fn thaw_left(mount_points: &[PathBuf]) {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    let mounts = mountinfo::parse(&text);
    for mp in mount_points {
        // The last mount at a place is the one a path there reaches.
        let Some(m) = mounts.iter().rev().find(|m| &m.mount_point == mp) else {
            log::debug!("sweep: {} is no longer a mount point; not thawed", mp.display());
            continue;
        };
        if let Some(dm) = Dm::of(m) {
            if dm.suspended() {
                if let Some((vg, _)) = split_dm_name(&dm.name) {
                    let _ = Cmd::new("lvs").arg("--noheadings").arg("-o").arg("lv_name").arg(vg).run();
                }
                match dm.resume() {
                    Ok(()) => log::info!("sweep: resumed {}, which a dead run left suspended", dm.name),
                    Err(e) => log::warn!("sweep: {e}"),
                }
            }
        }
        match thaw(mp) {
            Ok(true) => log::info!("sweep: thawed {}, which a dead run left frozen", mp.display()),
            Ok(false) => log::debug!("sweep: {} was not frozen", mp.display()),
            Err(e) => log::warn!("sweep: {e}"),
        }
    }
}
