//! TEST DOUBLE of the whole system, for the unit tests of the lifecycle and
//! the roles: a fake snapshotter, exposure, launcher, hook runner and remover
//! that touch nothing of the machine and record every call, in order. A
//! [`Script`] says which call fails and after which call a held signal
//! (TERM) arrives.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use super::{Bounded, Confine, Diagnosing, Exposing, Exposure, Hold, Lacking, Launch, Method, Place, Processes, Space, Volumes};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::provider::{Leftover, SnapshotSet, Snapshotter, Sweeper, VolumeSnapshot};
use crate::rsync_args::Invocation;

/// The signal the script delivers.
pub const SIGNAL: i32 = 15;

/// What the fake does besides recording.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The calls that fail, by name: `create`, `expose`, `run`, `verify`,
    /// `undo`, `remove`, `remover`, `pre_snapshot`, `post_snapshot`.
    pub fail: Vec<&'static str>,
    /// A held signal arrives once a call that starts with this is recorded.
    pub signal_after: Option<&'static str>,
    /// The exit status of the program (rsync or the command).
    pub status: u8,
    /// The provider's removal may be handed to the detached remover.
    pub detach: bool,
}

#[derive(Default)]
struct State {
    script: Script,
    calls: Vec<String>,
    /// The snapshots that exist now, by id.
    snapshots: Vec<String>,
    /// The read end of the last hand-off pipe given to the remover.
    remover: Option<std::io::PipeReader>,
}

/// The fake system; clones share one record.
#[derive(Clone, Default)]
pub struct FakeSystem(Rc<RefCell<State>>);

impl FakeSystem {
    pub fn new(script: Script) -> FakeSystem {
        FakeSystem(Rc::new(RefCell::new(State { script, ..State::default() })))
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.0.borrow().calls.clone()
    }

    /// The snapshots made and not removed.
    pub fn snapshots(&self) -> Vec<String> {
        self.0.borrow().snapshots.clone()
    }

    /// What the run wrote to the remover's hand-off pipe (it has closed its end).
    pub fn handed_to_remover(&self) -> Option<Vec<u8>> {
        use std::io::Read;
        let mut pipe = self.0.borrow_mut().remover.take()?;
        let mut got = Vec::new();
        pipe.read_to_end(&mut got).ok()?;
        Some(got)
    }

    /// Records `call`; whether the script makes it fail.
    fn call(&self, call: impl Into<String>) -> bool {
        let call = call.into();
        let mut s = self.0.borrow_mut();
        let fails = s.script.fail.iter().any(|f| call == *f || call.starts_with(&format!("{f} ")));
        s.calls.push(call);
        fails
    }

    fn failure(what: &str) -> Error {
        Error::Snapshot { path: PathBuf::from("/fake"), msg: format!("the fake's {what} failed") }
    }

    fn exposure(&self, argv: Vec<OsString>, set: &SnapshotSet) -> Exposure {
        let places = set.volumes.iter().map(|v| Place { origin: v.origin.clone(), seen: v.snapshot.clone() }).collect();
        Exposure::new(argv, Method::Namespace, FakeHold { system: self.clone(), undone: false }).with_places(places)
    }
}

impl Volumes for FakeSystem {
    /// The path as given: the tests name absolute paths.
    fn source_path(&self, arg: &OsStr) -> Option<PathBuf> {
        Some(PathBuf::from(arg))
    }

    fn exec_path(&self, arg: &OsStr) -> Option<PathBuf> {
        self.source_path(arg)
    }

    fn provider(&self, _cfg: &Config, _sources: &[PathBuf]) -> Result<Box<dyn Snapshotter>> {
        self.call("provider");
        Ok(Box::new(FakeSnapshotter(self.clone())))
    }

    fn sweep_provider(&self, _cfg: &Config) -> Result<Box<dyn Sweeper>> {
        Ok(Box::new(FakeSnapshotter(self.clone())))
    }
}

impl Exposing for FakeSystem {
    fn expose(&self, _cfg: &Config, set: &SnapshotSet, inv: &Invocation, _sources: &[PathBuf], _rsync: &Path) -> Result<Exposure> {
        match self.call("expose") {
            true => Err(Error::Expose { path: PathBuf::from("/fake"), msg: "the fake's exposure failed".into() }),
            false => Ok(self.exposure(inv.args.clone(), set)),
        }
    }

    fn expose_confined(
        &self,
        _cfg: &Config,
        _set: Option<&SnapshotSet>,
        _inv: &Invocation,
        _rsync: &Path,
        _confine: &Confine,
    ) -> Result<Option<Exposure>> {
        self.call("expose confined");
        Ok(None)
    }

    fn expose_in_place(&self, cfg: &Config, set: &SnapshotSet) -> Result<Exposure> {
        let _ = cfg;
        match self.call("expose") {
            true => Err(Error::Expose { path: PathBuf::from("/fake"), msg: "the fake's exposure failed".into() }),
            false => Ok(self.exposure(Vec::new(), set)),
        }
    }
}

impl Processes for FakeSystem {
    fn hold_signals(&self) -> Result<()> {
        self.call("hold signals");
        Ok(())
    }

    fn pending_signal(&self) -> Option<i32> {
        let s = self.0.borrow();
        let after = s.script.signal_after?;
        s.calls.iter().any(|c| c.starts_with(after)).then_some(SIGNAL)
    }

    fn refeed_stdin(&self, _prefix: Vec<u8>) -> Result<bool> {
        Ok(false)
    }

    fn run_unchanged(&self, launch: &Launch) -> Result<u8> {
        match self.call(format!("run live {}", launch.what)) {
            true => Err(Error::NotStarted { what: launch.what.as_str(), path: launch.program.clone(), msg: "the fake's".into() }),
            false => Ok(self.0.borrow().script.status),
        }
    }

    /// A hook: named by `SNAPRSYNC_HOOK`, with `post_snapshot`'s outcome.
    fn run_bounded(&self, _program: &Path, _args: &[OsString], env: &[(OsString, OsString)], _limit: Duration) -> std::io::Result<Bounded> {
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.to_string_lossy().into_owned());
        let name = [var("SNAPRSYNC_HOOK"), var("SNAPRSYNC_SNAPSHOT")].into_iter().flatten().collect::<Vec<_>>().join(" ");
        Ok(if self.call(name) { Bounded::Code(1) } else { Bounded::Code(0) })
    }

    fn internal(&self, _argv: &[OsString]) -> Option<u8> {
        None
    }

    /// Starts nothing: keeps the pipe's read end for [`FakeSystem::handed_to_remover`],
    /// and gives this process's pid, which lives while the test runs.
    fn start_remover(&self, remover: std::process::Command, wait: std::io::PipeReader) -> std::io::Result<u32> {
        let args: Vec<String> = remover.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let named =
            args.iter().any(|a| a == crate::stamp::REMOVE_RUN) && args.last().map(String::as_str) == Some(crate::stamp::run_stamp());
        if self.call(if named { "remover" } else { "remover (not __remove-run STAMP)" }) {
            return Err(std::io::Error::other("the fake's remover failed"));
        }
        self.0.borrow_mut().remover = Some(wait);
        Ok(std::process::id())
    }
}

impl Diagnosing for FakeSystem {
    fn privileges(&self) -> std::result::Result<String, Lacking> {
        Ok("fake".into())
    }

    fn filesystem(&self, _path: &Path) -> Result<String> {
        Ok("fake".into())
    }

    fn space(&self, _path: &Path) -> Result<Space> {
        Ok(Space { available: 1 << 30, total: 1 << 31 })
    }

    fn identity(&self, _path: &Path) -> Option<(u64, u64)> {
        None
    }

    fn rsync_notes(&self, _rsync: &Path) -> Option<String> {
        None
    }
}

/// The fake snapshotter: one snapshot per source, `/fake-snap/N`.
struct FakeSnapshotter(FakeSystem);

impl Sweeper for FakeSnapshotter {
    fn name(&self) -> &'static str {
        "fake"
    }

    /// `cleanup` and `doctor`'s listing of every snapshot.
    fn leftovers(&self) -> Result<Vec<Leftover>> {
        self.0.call("sweep every snapshot");
        Ok(Vec::new())
    }

    /// A run's sweep: only what the journal's dead runs left.
    fn leftovers_of(&self, _runs: &[crate::provider::RunOf]) -> Result<Vec<Leftover>> {
        self.0.call("sweep");
        Ok(Vec::new())
    }

    fn remove_leftover(&mut self, _leftover: &Leftover) -> Result<()> {
        Ok(())
    }
}

impl Snapshotter for FakeSnapshotter {
    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        if self.0.call("create") {
            return Err(FakeSystem::failure("create"));
        }
        let volumes: Vec<VolumeSnapshot> = sources
            .iter()
            .enumerate()
            .map(|(n, s)| {
                let snap = PathBuf::from(format!("/fake-snap/{n}"));
                VolumeSnapshot { origin: s.clone(), id: snap.display().to_string(), snapshot: snap, mount: None }
            })
            .collect();
        self.0 .0.borrow_mut().snapshots.extend(volumes.iter().map(|v| v.id.clone()));
        Ok(SnapshotSet { provider: "fake", volumes, views: Vec::new() })
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        if self.0.call("remove") {
            return Err(FakeSystem::failure("remove"));
        }
        self.0 .0.borrow_mut().snapshots.retain(|id| !set.volumes.iter().any(|v| &v.id == id));
        Ok(())
    }

    fn verify(&self, _set: &SnapshotSet) -> Result<()> {
        match self.0.call("verify") {
            true => Err(Error::SnapshotOverflow { volume: PathBuf::from("/fake"), snapshot: "fake".into() }),
            false => Ok(()),
        }
    }

    fn removal_can_detach(&self) -> bool {
        self.0 .0.borrow().script.detach
    }
}

/// The fake exposure: runs the program by recording it.
struct FakeHold {
    system: FakeSystem,
    undone: bool,
}

impl Hold for FakeHold {
    fn run(&mut self, launch: &Launch) -> Result<u8> {
        match self.system.call(format!("run {}", launch.what)) {
            true => Err(Error::NotStarted { what: launch.what.as_str(), path: launch.program.clone(), msg: "the fake's".into() }),
            false => Ok(self.system.0.borrow().script.status),
        }
    }

    /// Recorded once: a second call finds nothing to do, as the real ones.
    fn undo(&mut self) -> Result<()> {
        if self.undone {
            return Ok(());
        }
        self.undone = true;
        match self.system.call("undo") {
            true => Err(Error::Expose { path: PathBuf::from("/fake"), msg: "the fake's undo failed".into() }),
            false => Ok(()),
        }
    }
}
