//! The one lifecycle of a snapshot run, shared by the rsync role and `exec`:
//! signals held → hooks around the snapshot set's creation → exposure →
//! checks → the program runs → the snapshots are verified → everything is
//! removed → one summary line, and one record in the run history (`history`). The rsync role is one [`Task`] (`run.rs`),
//! exec another (`exec.rs`): a task says how the set is shown, what program
//! runs there with which argv, and whether it may read the live files instead
//! when no snapshot can be made.

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::Options;
use crate::config::{Config, OnSnapshotFailure};
use crate::error::{Error, Result};
use crate::platform::{Exposure, Launch, Method, Program, System};
use crate::provider::SnapshotSet;
use crate::run::guard::{Exposed, Snapshotted};
use crate::run::record::Recorder;

/// What a run does with its snapshot set.
pub trait Task {
    /// Shows `set` to the program.
    fn expose(&self, cfg: &Config, set: &SnapshotSet) -> Result<Exposure>;

    /// Checks made once the set is shown, before the program starts.
    fn check(&self, exposed: &Exposed) -> Result<()> {
        let _ = exposed;
        Ok(())
    }

    /// The program to run in `exposure`, and its argv.
    fn launch(&self, exposure: &Exposure) -> Result<Launch>;

    /// The program to run on the live files when no snapshot can be made and
    /// `on_snapshot_failure = "live"`; `None` where that is never allowed.
    fn live(&self) -> Option<Result<Launch>>;

    /// What the run history calls this kind of run: `rsync` or `exec`.
    fn role(&self) -> &'static str {
        "rsync"
    }
}

/// Runs `launch` on the live files for `reason` (no snapshot), and records
/// the run in the history: the runs that never reach [`run`].
pub fn run_live(sys: &dyn System, cfg: &Config, role: &str, sources: &[PathBuf], reason: &str, launch: &Launch) -> Result<u8> {
    let mut rec = Recorder::start(cfg, role, sources);
    let result = live(sys, &mut rec, None, reason, launch);
    rec.finish(&result);
    result
}

fn live(sys: &dyn System, rec: &mut Recorder, provider: Option<&str>, reason: &str, launch: &Launch) -> Result<u8> {
    rec.live(provider, reason);
    // On Linux the process becomes the program here: what is known is written now.
    rec.handover();
    let ran = Instant::now();
    let status = sys.run_unchanged(launch);
    rec.ran("live", ran.elapsed(), status.as_ref().ok().copied());
    status
}

/// Snapshots `sources` (absolute, existing), runs `task`'s program on the
/// snapshot, removes everything, and returns the program's exit status.
pub fn run(sys: &dyn System, cfg: &Config, opts: &Options, sources: &[PathBuf], task: &dyn Task) -> Result<u8> {
    // Every way out of the run is recorded (a panic by the recorder's Drop).
    let mut rec = Recorder::start(cfg, task.role(), sources);
    let result = recorded(sys, cfg, opts, sources, task, &mut rec);
    rec.finish(&result);
    result
}

fn recorded(sys: &dyn System, cfg: &Config, opts: &Options, sources: &[PathBuf], task: &dyn Task, rec: &mut Recorder) -> Result<u8> {
    sys.hold_signals()?;
    // Tests change the tree here: after the checks, before the snapshot.
    crate::fault::point("after-check");
    let started = Instant::now();
    let prepared = Snapshotted::create(sys, cfg, sources).and_then(|snap| Exposed::new(snap, |set| task.expose(cfg, set)));
    let mut exposed = match prepared {
        Ok(e) => e,
        Err(e) if e.is_snapshot_failure() && cfg.on_snapshot_failure == OnSnapshotFailure::Live => match task.live() {
            Some(launch) => {
                log::warn!("{e}; on_snapshot_failure = \"live\": backing up the LIVE files, not a snapshot");
                return live(sys, rec, None, &e.to_string(), &launch?);
            }
            None => return Err(e),
        },
        Err(e) => return Err(e),
    };
    let created = started.elapsed();
    let snapshot_ms = exposed.made_in().as_millis() as u64;
    rec.created(exposed.provider_name(), exposed.set().volumes.len(), created);
    crate::fault::point("after-create");
    task.check(&exposed)?;
    if let Some(sig) = sys.pending_signal() {
        // Drop removes what was made.
        return Err(Error::Interrupted(sig));
    }
    let method = exposed.exposure().method();
    let launch = task.launch(exposed.exposure())?;
    log::debug!(
        "running {}",
        crate::command::shell_line(std::iter::once(launch.program.as_os_str()).chain(launch.args.iter().map(|a| a.as_os_str())))
    );
    let snapshots = exposed.set().volumes.len();
    let provider = exposed.provider_name();
    let ran = Instant::now();
    let prefetch = prefetch(cfg, exposed.set(), sources, method);
    let status = exposed.run(&launch);
    // rsync is done with the snapshot: so is the prefetch.
    drop(prefetch);
    let ran = ran.elapsed();
    rec.ran(method.as_str(), ran, status.as_ref().ok().copied());
    crate::fault::point("after-rsync");
    // Checked before removal, also when the program failed: a torn copy must not pass.
    let whole = exposed.verify();
    let removing = Instant::now();
    let removed = exposed.finish(sys, cfg.snapshot_removal, opts);
    let removed_in = removing.elapsed();
    rec.removed(removal_word(&removed), removed_in);
    let what = launch.what;
    // One line per run for the system log; its pairs are fields of their own in the journal.
    let sources_text = sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(",");
    let program_status = status.as_ref().map_or_else(|e| format!("not run ({e})"), |s| s.to_string());
    let removal = match &removed {
        Ok(crate::run::guard::Removed::Now) => "ok".to_owned(),
        // Not done yet: the remover says how it went, in a line of its own.
        Ok(crate::run::guard::Removed::Background) => "background".to_owned(),
        Err(e) => format!("FAILED ({e})"),
    };
    let snapshot_removal = format!("{:?}", cfg.snapshot_removal).to_lowercase();
    let (create_ms, ran_ms, remove_ms) = (created.as_millis() as u64, ran.as_millis() as u64, removed_in.as_millis() as u64);
    // The keys name the program, as the journal's fields do (rsync_status, command_status).
    let method = method.as_str();
    if what == Program::Rsync {
        log::info!(
            run = crate::stamp::run_stamp(), sources = sources_text.as_str(), provider = provider, method = method,
            snapshots = snapshots, create_ms = create_ms, snapshot_ms = snapshot_ms, rsync_ms = ran_ms, remove_ms = remove_ms,
            snapshot_removal = snapshot_removal.as_str(), removal = removal.as_str(), rsync_status = program_status.as_str();
            "summary"
        );
    } else {
        log::info!(
            run = crate::stamp::run_stamp(), sources = sources_text.as_str(), provider = provider, method = method,
            snapshots = snapshots, create_ms = create_ms, snapshot_ms = snapshot_ms, command_ms = ran_ms, remove_ms = remove_ms,
            snapshot_removal = snapshot_removal.as_str(), removal = removal.as_str(), command_status = program_status.as_str();
            "summary"
        );
    }
    // The program's status wins over a failed removal: the backup itself is fine.
    if let Err(e) = removed {
        log::error!("{e}");
    }
    // Not over a snapshot that overflowed: then the backup is not. The error
    // itself is reported once, as the run's end (lib.rs); this line only
    // says what the program's status was.
    if let Err(e) = whole {
        if let Ok(s) = &status {
            log::warn!("{what} ended with {s}, but the snapshot did not stay whole while it read; snaprsync ends with {}", e.exit_code());
        }
        return Err(e);
    }
    status
}

/// The history's word for a removal: `background` when it was handed to the
/// detached remover (which reports its own outcome in the log).
fn removal_word(removed: &Result<crate::run::guard::Removed>) -> &'static str {
    match removed {
        Err(_) => "failed",
        Ok(crate::run::guard::Removed::Background) => "background",
        Ok(crate::run::guard::Removed::Now) => "ok",
    }
}

/// Starts the metadata prefetch of what the program will read in `set`, where
/// `prefetch = "auto"` and snaprsync sees the snapshot as a directory: by its
/// own path (a btrfs snapshot, a shadow copy's device), or, where it is
/// mounted over its origin in snaprsync's own namespace, by the source's path.
fn prefetch(cfg: &Config, set: &SnapshotSet, sources: &[PathBuf], method: Method) -> Option<crate::prefetch::Prefetch> {
    if cfg.prefetch == crate::config::Prefetch::Off {
        return None;
    }
    let roots: Vec<PathBuf> = sources
        .iter()
        .filter_map(|s| match set.locate(s) {
            Some(p) if p.is_dir() => Some(p),
            _ if method == Method::Namespace => Some(s.clone()),
            _ => None,
        })
        .collect();
    let threads = match cfg.prefetch_threads {
        0 => crate::prefetch::auto_threads(),
        n => n as usize,
    };
    crate::prefetch::Prefetch::start(roots, threads, crate::platform::lower_thread_priority)
}

/// The lifecycle's order and its cleanup on every way out, with the
/// recording [`crate::platform::fake::FakeSystem`] as the machine: through
/// `role::exec` and `role::rsync`, the roles' own code, in milliseconds and
/// without root.
#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::Path;

    use crate::cli::{Exec, Options};
    use crate::config::{Config, HookFailure, OnSnapshotFailure, Prefetch, Removal};
    use crate::error::{status, Result};
    use crate::platform::fake::{FakeSystem, Script, SIGNAL};
    use crate::run::journal::Journal;

    /// One run through the fake, and what it left.
    struct Run {
        result: Result<u8>,
        calls: Vec<String>,
        fake: FakeSystem,
        state: tempfile::TempDir,
    }

    impl Run {
        fn status(&self) -> u8 {
            match &self.result {
                Ok(s) => *s,
                Err(e) => e.exit_code(),
            }
        }

        /// Every snapshot removed, and no record of the run left in the journal.
        fn assert_clean(&self) {
            assert_eq!(self.fake.snapshots(), Vec::<String>::new(), "snapshots left: {:?}", self.calls);
            let (entries, corrupt) = Journal::new(self.state.path()).read();
            assert!(entries.is_empty() && corrupt.is_empty(), "the journal keeps {entries:?}: {:?}", self.calls);
        }
    }

    fn config(state: &Path, tweak: impl FnOnce(&mut Config)) -> Config {
        let mut cfg = Config {
            state_dir: Some(state.to_owned()),
            pre_snapshot: Some(vec!["pre".into()]),
            post_snapshot: Some(vec!["post".into()]),
            snapshot_removal: Removal::Wait,
            prefetch: Prefetch::Off,
            rsync_path: Some("/fake/rsync".into()),
            ..Config::default()
        };
        tweak(&mut cfg);
        cfg
    }

    /// `snaprsync exec /srv/data -- backup --all`.
    fn exec(script: Script, tweak: impl FnOnce(&mut Config)) -> Run {
        let state = tempfile::tempdir().unwrap();
        let cfg = config(state.path(), tweak);
        let fake = FakeSystem::new(script);
        let e = Exec { paths: vec!["/srv/data".into()], command: vec!["backup".into(), "--all".into()] };
        let result = crate::role::exec::run(&fake, &cfg, &Options::default(), e);
        Run { result, calls: fake.calls(), fake, state }
    }

    /// The rsync role as a pull's sender of an existing directory.
    fn rsync(script: Script, tweak: impl FnOnce(&mut Config)) -> Run {
        let state = tempfile::tempdir().unwrap();
        let cfg = config(state.path(), tweak);
        let fake = FakeSystem::new(script);
        let source = format!("{}/", state.path().display());
        let argv: Vec<OsString> = ["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &source].iter().map(OsString::from).collect();
        let result = crate::role::rsync::rsync(&fake, &cfg, &Options::default(), argv);
        Run { result, calls: fake.calls(), fake, state }
    }

    fn script(status: u8) -> Script {
        Script { status, ..Script::default() }
    }

    fn failing(call: &'static str) -> Script {
        Script { fail: vec![call], ..Script::default() }
    }

    /// The calls of a whole run, up to and including `last`.
    fn whole(program: &str) -> Vec<String> {
        let mut calls: Vec<String> =
            ["hold signals", "provider", "sweep", "pre_snapshot", "create", "post_snapshot created", "expose"].map(String::from).to_vec();
        calls.extend([format!("run {program}"), "verify".into(), "undo".into(), "remove".into()]);
        calls
    }

    fn until(calls: &[String], last: &str) -> Vec<String> {
        let at = calls.iter().position(|c| c == last).unwrap_or_else(|| panic!("no {last} in {calls:?}"));
        calls[..=at].to_vec()
    }

    #[test]
    fn a_run_goes_in_order_and_leaves_nothing() {
        let r = exec(script(0), |_| {});
        assert_eq!(r.calls, whole("command"));
        assert_eq!(r.result.as_ref().ok(), Some(&0));
        r.assert_clean();
    }

    #[test]
    fn the_programs_status_passes_through_and_everything_is_removed() {
        for status in [1, 23, 24, 143, 255] {
            let r = rsync(script(status), |_| {});
            assert_eq!(r.calls, whole("rsync"), "rsync ended with {status}");
            assert_eq!(r.result.as_ref().ok(), Some(&status));
            r.assert_clean();
            let r = exec(script(status), |_| {});
            assert_eq!(r.result.as_ref().ok(), Some(&status));
            r.assert_clean();
        }
    }

    #[test]
    fn a_program_that_cannot_start_still_has_everything_removed() {
        let r = rsync(failing("run"), |_| {});
        assert_eq!(r.calls, whole("rsync"));
        assert_eq!(r.status(), status::RSYNC_MISSING, "{:?}", r.result);
        r.assert_clean();
    }

    #[test]
    fn a_failing_pre_snapshot_snapshots_nothing_and_post_snapshot_still_runs() {
        let r = exec(failing("pre_snapshot"), |_| {});
        assert_eq!(r.calls, ["hold signals", "provider", "sweep", "pre_snapshot", "post_snapshot skipped"]);
        assert_eq!(r.status(), status::HOOK, "{:?}", r.result);
        r.assert_clean();
        // hook_failure = "warn": the run goes on.
        let r = exec(failing("pre_snapshot"), |c| c.hook_failure = HookFailure::Warn);
        assert_eq!(r.calls, whole("command"));
        assert_eq!(r.result.as_ref().ok(), Some(&0));
        r.assert_clean();
    }

    #[test]
    fn a_failing_post_snapshot_removes_the_snapshot_and_runs_nothing() {
        let r = exec(failing("post_snapshot"), |_| {});
        let mut want = until(&whole("command"), "post_snapshot created");
        want.push("remove".into());
        assert_eq!(r.calls, want);
        assert_eq!(r.status(), status::HOOK, "{:?}", r.result);
        r.assert_clean();
    }

    #[test]
    fn a_snapshot_failure_ends_the_run_or_with_live_reads_the_live_files() {
        let failed = ["hold signals", "provider", "sweep", "pre_snapshot", "create", "post_snapshot failed"];
        let r = exec(failing("create"), |_| {});
        assert_eq!(r.calls, failed);
        assert_eq!(r.status(), status::SNAPSHOT, "{:?}", r.result);
        r.assert_clean();
        for (r, program) in [
            (exec(Script { status: 7, ..failing("create") }, |c| c.on_snapshot_failure = OnSnapshotFailure::Live), "command"),
            (rsync(Script { status: 7, ..failing("create") }, |c| c.on_snapshot_failure = OnSnapshotFailure::Live), "rsync"),
        ] {
            let mut want = failed.map(String::from).to_vec();
            want.push(format!("run live {program}"));
            assert_eq!(r.calls, want);
            assert_eq!(r.result.as_ref().ok(), Some(&7), "the live run's status");
            r.assert_clean();
        }
    }

    #[test]
    fn an_exposure_failure_removes_the_snapshot_and_runs_nothing_or_goes_live() {
        let exposed = until(&whole("command"), "expose");
        let r = exec(failing("expose"), |_| {});
        assert_eq!(r.calls, [exposed.clone(), vec!["remove".into()]].concat());
        assert_eq!(r.status(), status::EXPOSE, "{:?}", r.result);
        r.assert_clean();
        let r = rsync(failing("expose"), |c| c.on_snapshot_failure = OnSnapshotFailure::Live);
        assert_eq!(r.calls, [exposed, vec!["remove".into(), "run live rsync".into()]].concat());
        assert_eq!(r.result.as_ref().ok(), Some(&0));
        r.assert_clean();
    }

    /// A held signal after each step: before the program starts the run ends
    /// with 128+N once what was made is removed; from the program's start on,
    /// the program's own status passes and removal goes on.
    #[test]
    fn a_signal_at_each_step_ends_the_run_there_and_removes_what_was_made() {
        let full = whole("command");
        let upto = |last: &str, then: &[&str]| [until(&full, last), then.iter().map(|s| s.to_string()).collect()].concat();
        let cases: [(&str, Vec<String>, u8); 8] = [
            ("hold signals", upto("sweep", &[]), 128 + SIGNAL as u8),
            ("sweep", upto("sweep", &[]), 128 + SIGNAL as u8),
            ("pre_snapshot", upto("pre_snapshot", &["post_snapshot skipped"]), 128 + SIGNAL as u8),
            ("create", upto("expose", &["undo", "remove"]), 128 + SIGNAL as u8),
            ("post_snapshot", upto("expose", &["undo", "remove"]), 128 + SIGNAL as u8),
            ("expose", upto("expose", &["undo", "remove"]), 128 + SIGNAL as u8),
            ("run", full.clone(), 3),
            ("undo", full.clone(), 3),
        ];
        for (after, want, status) in cases {
            let r = exec(Script { signal_after: Some(after), status: 3, ..Script::default() }, |_| {});
            assert_eq!(r.calls, want, "a signal after {after}");
            assert_eq!(r.status(), status, "a signal after {after}: {:?}", r.result);
            r.assert_clean();
        }
    }

    #[test]
    fn a_snapshot_that_did_not_stay_whole_fails_the_run_after_removal() {
        let r = exec(Script { status: 0, ..failing("verify") }, |_| {});
        assert_eq!(r.calls, whole("command"));
        assert_eq!(r.status(), status::SNAPSHOT_OVERFLOW, "{:?}", r.result);
        r.assert_clean();
    }

    #[test]
    fn background_removal_is_handed_to_the_remover_once_recorded() {
        let detach = Script { status: 5, detach: true, ..Script::default() };
        let r = rsync(detach.clone(), |c| c.snapshot_removal = Removal::Background);
        assert_eq!(r.calls, [until(&whole("rsync"), "undo"), vec!["remover".into()]].concat());
        assert_eq!(r.result.as_ref().ok(), Some(&5), "rsync's status does not wait for the removal");
        assert_eq!(r.fake.snapshots().len(), 1, "the snapshot is the remover's now");
        assert_eq!(r.fake.handed_to_remover(), Some(vec![crate::run::guard::HAND_OFF]), "told once, after the record");
        let (entries, _) = Journal::new(r.state.path()).read();
        let remover = entries.first().and_then(|e| e.remover.as_ref()).map(|p| p.pid);
        assert_eq!((entries.len(), remover), (1, Some(std::process::id())), "the record names the remover: {entries:?}");
    }

    #[test]
    fn background_removal_falls_back_to_removing_here() {
        let detach = Script { detach: true, ..Script::default() };
        // A provider whose snapshots die with this process (VSS).
        let r = exec(Script::default(), |c| c.snapshot_removal = Removal::Background);
        assert_eq!(r.calls, whole("command"));
        r.assert_clean();
        // The remover cannot start.
        let r = exec(Script { fail: vec!["remover"], ..detach.clone() }, |c| c.snapshot_removal = Removal::Background);
        assert_eq!(r.calls, [until(&whole("command"), "undo"), vec!["remover".into(), "remove".into()]].concat());
        assert_eq!(r.fake.handed_to_remover(), None);
        r.assert_clean();
        // The exposure cannot be undone: removed here, where it is reported.
        let r = exec(Script { fail: vec!["undo"], ..detach }, |c| c.snapshot_removal = Removal::Background);
        assert_eq!(r.calls, whole("command"));
        assert_eq!(r.result.as_ref().ok(), Some(&0), "the program's status wins over a failed undo");
        r.assert_clean();
    }

    #[test]
    fn a_waited_removal_that_fails_keeps_the_record_for_the_sweep() {
        let r = exec(Script { status: 9, ..failing("remove") }, |_| {});
        assert_eq!(r.calls, whole("command"));
        assert_eq!(r.result.as_ref().ok(), Some(&9), "the program's status wins over a failed removal");
        assert_eq!(r.fake.snapshots().len(), 1);
        let (entries, _) = Journal::new(r.state.path()).read();
        assert_eq!(entries.len(), 1, "the next sweep finds it by its record");
    }
}
