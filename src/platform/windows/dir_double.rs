//! TEST DOUBLE, not a snapshot: a directory-backed stand-in for VSS, for the
//! end-to-end tests under wine (where VSS answers E_NOTIMPL). "Snapshotting"
//! copies each source's parent directory into a scratch directory and reports
//! that copy as the volume's snapshot; everything after that (argv rewrite,
//! exposure, running rsync, removal) is the real code. It comes in as a
//! value: [`DirSystem`] is the real Windows system but for the provider, and
//! is handed to `role::rsync` or `role::exec` in its place.
//!
//! Like VSS after Event 25, it can lose its copy while rsync reads it
//! ([`DirSystem::vanish_when`]), and its `verify` finds that the way the VSS provider's
//! does (`vss::check_shadows`), with the same error.
//!
//! It can also pretend that volumes are mounted in given folders
//! ([`DirSystem::pretend_mounts`]), since wine cannot mount a volume in a folder, and it
//! leaves out of its copies every folder that leads elsewhere (a junction or
//! link): in a real shadow copy such a folder still leads to the live files.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Platform;
use crate::config::{Config, Expose};
use crate::error::{Error, Result};
use crate::platform::{Bounded, Confine, Diagnosing, Exposing, Exposure, Lacking, Launch, Processes, Space, Volumes};
use crate::provider::vss::{check_shadows, Failure, Shadow};
use crate::provider::{Leftover, SnapshotSet, Snapshotter, Sweeper, VolumeSnapshot};
use crate::rsync_args::Invocation;

/// The real Windows system with the double in place of VSS.
pub struct DirSystem {
    scratch: PathBuf,
    mounts: Option<Vec<String>>,
    vanish: Option<PathBuf>,
}

impl DirSystem {
    /// The double keeps its copies under `scratch`.
    pub fn new(scratch: &Path) -> DirSystem {
        DirSystem { scratch: scratch.to_owned(), mounts: None, vanish: None }
    }

    /// Makes the set's first copy vanish once `signal` exists (the rsync
    /// stand-in writes it when it starts), as volsnap deletes a shadow copy
    /// whose diff area could not grow.
    pub fn vanish_when(mut self, signal: &Path) -> DirSystem {
        self.vanish = Some(signal.to_owned());
        self
    }

    /// Makes the system see volumes mounted at `folders` (`C:\...\mnt\`).
    pub fn pretend_mounts(mut self, folders: &[String]) -> DirSystem {
        self.mounts = Some(folders.to_vec());
        self
    }
}

/// Every call but the provider's goes to the real [`Platform`].
impl Volumes for DirSystem {
    fn source_path(&self, arg: &OsStr) -> Option<PathBuf> {
        Platform.source_path(arg)
    }
    fn reader(&self, rsync: &Path) {
        Platform.reader(rsync)
    }
    fn unmatched(&self, arg: &OsStr) -> Option<String> {
        Platform.unmatched(arg)
    }
    fn exec_path(&self, arg: &OsStr) -> Option<PathBuf> {
        Platform.exec_path(arg)
    }
    fn provider(&self, cfg: &Config, sources: &[PathBuf]) -> Result<Box<dyn Snapshotter>> {
        let folders = self.mounts.clone().unwrap_or_else(super::sources::mount_folders);
        super::excluding(cfg, sources, &folders, || Ok(Box::new(DirDouble { scratch: self.scratch.clone(), vanish: self.vanish.clone() })))
    }
    fn sweep_provider(&self, cfg: &Config) -> Result<Box<dyn Sweeper>> {
        Platform.sweep_provider(cfg)
    }
}

impl Exposing for DirSystem {
    fn expose(&self, cfg: &Config, set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf], rsync: &Path) -> Result<Exposure> {
        Platform.expose(cfg, set, inv, sources, rsync)
    }
    fn expose_confined(
        &self,
        cfg: &Config,
        set: Option<&SnapshotSet>,
        inv: &Invocation,
        rsync: &Path,
        confine: &Confine,
    ) -> Result<Option<Exposure>> {
        Platform.expose_confined(cfg, set, inv, rsync, confine)
    }
    fn expose_in_place(&self, cfg: &Config, set: &SnapshotSet) -> Result<Exposure> {
        Platform.expose_in_place(cfg, set)
    }
}

impl Processes for DirSystem {
    fn hold_signals(&self) -> Result<()> {
        Platform.hold_signals()
    }
    fn pending_signal(&self) -> Option<i32> {
        Platform.pending_signal()
    }
    fn finished(&self) {
        Platform.finished()
    }
    fn refeed_stdin(&self, prefix: Vec<u8>) -> Result<bool> {
        Platform.refeed_stdin(prefix)
    }
    fn run_unchanged(&self, launch: &Launch) -> Result<u8> {
        Platform.run_unchanged(launch)
    }
    fn run_bounded(&self, program: &Path, args: &[OsString], env: &[(OsString, OsString)], limit: Duration) -> std::io::Result<Bounded> {
        Platform.run_bounded(program, args, env, limit)
    }
    fn internal(&self, argv: &[OsString]) -> Option<u8> {
        Platform.internal(argv)
    }
}

impl Diagnosing for DirSystem {
    fn privileges(&self) -> std::result::Result<String, Lacking> {
        Platform.privileges()
    }
    fn filesystem(&self, path: &Path) -> Result<String> {
        Platform.filesystem(path)
    }
    fn space(&self, path: &Path) -> Result<Space> {
        Platform.space(path)
    }
    fn identity(&self, path: &Path) -> Option<(u64, u64)> {
        Platform.identity(path)
    }
    fn rsync_notes(&self, rsync: &Path) -> Option<String> {
        Platform.rsync_notes(rsync)
    }
}

/// The double: origin = a source's parent directory, snapshot = its copy.
pub struct DirDouble {
    scratch: PathBuf,
    /// Its first copy vanishes once this file exists.
    vanish: Option<PathBuf>,
}

impl DirDouble {
    /// The double on its own, keeping its copies under `scratch`.
    pub fn new(scratch: &Path) -> DirDouble {
        DirDouble { scratch: scratch.to_owned(), vanish: None }
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        let leads_elsewhere = crate::provider::vss::volume::final_path(&e.path())
            .is_ok_and(|real| !super::sources::same_place(&real, &e.path().to_string_lossy()));
        if leads_elsewhere {
            continue;
        }
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// Like VSS's copies, its copies are removed by the run alone.
impl Sweeper for DirDouble {
    fn name(&self) -> &'static str {
        "dir-double"
    }

    fn leftovers(&self) -> Result<Vec<Leftover>> {
        Ok(Vec::new())
    }

    fn remove_leftover(&mut self, _leftover: &Leftover) -> Result<()> {
        Ok(())
    }
}

impl Snapshotter for DirDouble {
    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        let mut volumes: Vec<VolumeSnapshot> = Vec::new();
        for s in sources {
            let origin = s.parent().unwrap_or(s).to_owned();
            if volumes.iter().any(|v| v.origin == origin) {
                continue;
            }
            let snap = self.scratch.join(format!("snap{}", volumes.len()));
            copy_tree(&origin, &snap).map_err(|e| Error::io(&origin, e))?;
            volumes.push(VolumeSnapshot { origin, snapshot: snap.clone(), id: snap.display().to_string(), mount: None });
        }
        if let (Some(signal), Some(first)) = (self.vanish.take(), volumes.first()) {
            let copy = first.snapshot.clone();
            std::thread::spawn(move || {
                let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while !signal.exists() && std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                log::warn!("TEST DOUBLE: deleting its copy {} mid-run, as volsnap would", copy.display());
                let _ = std::fs::remove_dir_all(&copy);
            });
        }
        Ok(SnapshotSet { provider: "dir-double", volumes, views: Vec::new() })
    }

    /// As VSS's: each copy still listed (its directory there) and opening.
    fn verify(&self, set: &SnapshotSet) -> Result<()> {
        let shadows: Vec<Shadow<PathBuf>> = set
            .volumes
            .iter()
            .map(|v| Shadow { volume: v.origin.display().to_string(), id: v.snapshot.clone(), device: v.snapshot.display().to_string() })
            .collect();
        check_shadows(
            &shadows,
            |dir| {
                if dir.is_dir() {
                    Ok(dir.display().to_string())
                } else {
                    Err(Failure::new("the test double's listing", crate::provider::vss::hr::VSS_E_OBJECT_NOT_FOUND))
                }
            },
            crate::provider::vss::volume::device_opens,
        )
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        for v in &set.volumes {
            match std::fs::remove_dir_all(&v.snapshot) {
                // A copy that vanished has nothing left to remove.
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&v.snapshot, e)),
                _ => {}
            }
        }
        Ok(())
    }
}

/// TEST DOUBLE of the machine `selftest` examines, for wine: the directory
/// double in place of VSS (its copy is taken as the file is locked, since a
/// copy, unlike a shadow copy, cannot read through the lock), an ACL denial
/// that it enforces itself (wine keeps none), the echo helper as rsync, and
/// a pretended VSS query that lists a child run's set until `release_after`
/// past its kill. The checks' own logic, the locks, the reads, the listings
/// and the report are the real code.
pub struct FieldDouble {
    scratch: PathBuf,
    rsync: PathBuf,
    double: DirDouble,
    set: Option<SnapshotSet>,
    denied: Vec<PathBuf>,
    /// When the child run's set leaves the pretended query (None: listed).
    released: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    running: bool,
    release_after: Duration,
    /// The stand-in child run (the echo helper, sleeping).
    child: PathBuf,
    /// Its lock shares, its ACL denies nothing, and its child run ends at
    /// once without a set: the checks must see each.
    pub weak: bool,
}

impl FieldDouble {
    pub fn new(scratch: &Path, rsync: &Path, child: &Path, release_after: Duration) -> FieldDouble {
        FieldDouble {
            scratch: scratch.to_owned(),
            rsync: rsync.to_owned(),
            double: DirDouble::new(scratch),
            set: None,
            denied: Vec::new(),
            released: Default::default(),
            running: false,
            release_after,
            child: child.to_owned(),
            weak: false,
        }
    }
}

impl super::selftest::Field for FieldDouble {
    fn maker(&self) -> String {
        "TEST DOUBLE (a copied folder, not VSS)".into()
    }
    fn hold_open(&mut self, file: &Path) -> std::io::Result<std::fs::File> {
        use std::os::windows::fs::OpenOptionsExt;
        let dir = file.parent().unwrap_or(file).to_owned();
        self.set = Some(self.double.create(&[dir.join("x")]).map_err(|e| std::io::Error::other(e.to_string()))?);
        // FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE when weak.
        std::fs::OpenOptions::new().read(true).write(true).share_mode(if self.weak { 7 } else { 0 }).open(file)
    }
    fn snapshot(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        match self.set.take() {
            Some(set) => Ok(set),
            None => self.double.create(&sources.iter().map(|s| s.join("x")).collect::<Vec<_>>()),
        }
    }
    fn sequence(&self) -> Vec<String> {
        vec![format!("TEST DOUBLE: the folder copied under {}; no VSS steps, no writers", self.scratch.display())]
    }
    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        self.double.remove(set)
    }
    fn deny_read(&mut self, file: &Path) -> Result<()> {
        if !self.weak {
            self.denied.push(file.file_name().map(PathBuf::from).unwrap_or_default());
        }
        Ok(())
    }
    fn read_plain(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        if self.denied.iter().any(|d| path.file_name() == Some(d.as_os_str())) {
            return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        }
        std::fs::read(path)
    }
    fn rsync(&self) -> Result<PathBuf> {
        Ok(self.rsync.clone())
    }
    /// Both through the device path: wine maps a letter but reads nothing
    /// through it (`tests::selftest_lists_through_each_exposure` shows that).
    fn list(&mut self, set: &SnapshotSet, dir: &Path, rsync: &Path, mode: Expose) -> Result<(String, Vec<(String, String)>)> {
        let (arg, entries) = super::selftest::list_through(&Config::default(), set, dir, rsync, Expose::DevicePath)?;
        let arg = if mode == Expose::DevicePath { arg } else { format!("{arg} (TEST DOUBLE: through the device path)") };
        Ok((arg, entries))
    }
    fn listed_shadows(&mut self) -> Result<Vec<String>> {
        let released = *self.released.lock().unwrap_or_else(|e| e.into_inner());
        let listed = self.running && released.is_none_or(|at| std::time::Instant::now() < at);
        Ok(if listed { vec![r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy99 (TEST DOUBLE)".into()] } else { Vec::new() })
    }
    fn start_run(&mut self, _dir: &Path) -> Result<Box<dyn super::selftest::Killable>> {
        let child = std::process::Command::new(&self.child)
            .env("SNAPRSYNC_ECHO_SLEEP", if self.weak { "0" } else { "20000" })
            .env("SNAPRSYNC_ECHO_EXIT", "3")
            .env("SNAPRSYNC_ECHO_OUT", self.scratch.join("child.txt"))
            .spawn()
            .map_err(|e| Error::io(&self.child, e))?;
        // Weak: the child ends at once, and its set is never listed.
        self.running = !self.weak;
        Ok(Box::new(KilledDouble { child: super::selftest::ChildRun(child), released: self.released.clone(), after: self.release_after }))
    }
}

/// A copy taken for a lock but never asked for (a check failed first) goes too.
impl Drop for FieldDouble {
    fn drop(&mut self) {
        if let Some(set) = self.set.take() {
            let _ = self.double.remove(&set);
        }
    }
}

/// The child run; its kill starts the pretended release.
struct KilledDouble {
    child: super::selftest::ChildRun,
    released: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    after: Duration,
}

impl super::selftest::Killable for KilledDouble {
    fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        *self.released.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now() + self.after);
        Ok(())
    }
    fn exited(&mut self) -> Option<i32> {
        self.child.exited()
    }
}
