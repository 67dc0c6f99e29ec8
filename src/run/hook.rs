//! The `pre_snapshot` and `post_snapshot` hooks: the Linux counterpart of
//! VSS writers. `pre_snapshot` runs just before the snapshot set is created
//! (flush and lock a database, freeze an application), `post_snapshot` just
//! after, whether creation worked or not, so that whatever `pre_snapshot`
//! did is undone. Each runs without a shell, with a time limit
//! (`hook_timeout`), and learns the run from its environment:
//!
//! - `SNAPRSYNC_HOOK`: `pre_snapshot` or `post_snapshot`;
//! - `SNAPRSYNC_STAMP`: the run's stamp (the prefix of its snapshot names);
//! - `SNAPRSYNC_SOURCES`: the source paths, one per line;
//! - `SNAPRSYNC_SOURCE_COUNT` and `SNAPRSYNC_SOURCE_0`, `_1`, …: the same,
//!   exactly (a name may hold a newline);
//! - `post_snapshot` only: `SNAPRSYNC_SNAPSHOT`: `created`, `failed`, or
//!   `skipped` (not attempted: `pre_snapshot` failed, or a signal came).
//!
//! How the process is run (its own process group, ended as a whole on
//! timeout) is the system's (`Processes::run_bounded`); what a failure
//! means (`hook_failure`) is decided here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::{Config, HookFailure};
use crate::error::{Error, Result};
use crate::platform::{Bounded, System};

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Pre,
    Post,
}

impl Hook {
    /// Its config key, which is also its name in messages and `SNAPRSYNC_HOOK`.
    pub fn key(self) -> &'static str {
        match self {
            Hook::Pre => "pre_snapshot",
            Hook::Post => "post_snapshot",
        }
    }
}

/// What became of the snapshot set, for `post_snapshot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Failed,
    /// Not attempted.
    Skipped,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Pure: the environment a hook gets (see the module header).
pub fn env(hook: Hook, stamp: &str, sources: &[PathBuf], outcome: Option<Outcome>) -> Vec<(OsString, OsString)> {
    let mut all = OsString::new();
    for (i, s) in sources.iter().enumerate() {
        if i > 0 {
            all.push("\n");
        }
        all.push(s.as_os_str());
    }
    let mut env: Vec<(OsString, OsString)> = vec![
        ("SNAPRSYNC_HOOK".into(), hook.key().into()),
        ("SNAPRSYNC_STAMP".into(), stamp.into()),
        ("SNAPRSYNC_SOURCES".into(), all),
        ("SNAPRSYNC_SOURCE_COUNT".into(), sources.len().to_string().into()),
    ];
    env.extend(sources.iter().enumerate().map(|(i, s)| (format!("SNAPRSYNC_SOURCE_{i}").into(), s.clone().into_os_string())));
    if let Some(o) = outcome {
        env.push(("SNAPRSYNC_SNAPSHOT".into(), o.word().into()));
    }
    env
}

/// Whether `hook` is configured.
pub fn configured(cfg: &Config, hook: Hook) -> bool {
    argv(cfg, hook).is_some()
}

fn argv(cfg: &Config, hook: Hook) -> Option<&[String]> {
    match hook {
        Hook::Pre => cfg.pre_snapshot.as_deref(),
        Hook::Post => cfg.post_snapshot.as_deref(),
    }
    .filter(|a| !a.is_empty())
}

/// Runs `hook` if it is configured. `Ok` when it succeeded, is not
/// configured, or failed with `hook_failure = "warn"` (then a warning is
/// logged); a failure with `hook_failure = "fail"` is [`Error::Hook`].
pub fn run(sys: &dyn System, cfg: &Config, hook: Hook, sources: &[PathBuf], outcome: Option<Outcome>) -> Result<()> {
    let Some(argv) = argv(cfg, hook) else { return Ok(()) };
    let shown = crate::command::shell_line(argv.iter().map(std::ffi::OsStr::new));
    let limit = Duration::from_secs(cfg.hook_timeout);
    let env = env(hook, crate::stamp::run_stamp(), sources, outcome);
    log::debug!("{} hook: running {shown}", hook.key());
    let started = Instant::now();
    let ended = sys.run_bounded(argv[0].as_ref(), &argv[1..].iter().map(OsString::from).collect::<Vec<_>>(), &env, limit);
    let took = started.elapsed();
    let failure = match ended {
        Ok(Bounded::Code(0)) => {
            log::info!("{} hook `{shown}` succeeded in {} ms", hook.key(), took.as_millis());
            return Ok(());
        }
        Ok(Bounded::Code(code)) => format!("hook `{shown}` exited with status {code}"),
        Ok(Bounded::Signal(sig)) => format!("hook `{shown}` was ended by signal {sig}"),
        Ok(Bounded::TimedOut) => {
            format!("hook `{shown}` outlasted hook_timeout = {} s and was ended, with every process it started", cfg.hook_timeout)
        }
        Err(e) => format!("hook `{shown}` could not be started: {e}"),
    };
    match cfg.hook_failure {
        HookFailure::Fail => Err(Error::Hook { hook: hook.key(), msg: failure }),
        HookFailure::Warn => {
            log::warn!("{} {failure}; hook_failure = \"warn\": going on", hook.key());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(env: &'a [(OsString, OsString)], k: &str) -> Option<&'a OsString> {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    #[test]
    fn the_environment_names_the_run_and_every_source_exactly() {
        let sources = [PathBuf::from("/srv/db"), PathBuf::from("/srv/with\nnewline")];
        let e = env(Hook::Pre, "snaprsync-20260101T000000Z-p1", &sources, None);
        assert_eq!(get(&e, "SNAPRSYNC_HOOK").unwrap(), "pre_snapshot");
        assert_eq!(get(&e, "SNAPRSYNC_STAMP").unwrap(), "snaprsync-20260101T000000Z-p1");
        assert_eq!(get(&e, "SNAPRSYNC_SOURCES").unwrap(), "/srv/db\n/srv/with\nnewline");
        assert_eq!(get(&e, "SNAPRSYNC_SOURCE_COUNT").unwrap(), "2");
        assert_eq!(get(&e, "SNAPRSYNC_SOURCE_1").unwrap(), "/srv/with\nnewline");
        assert_eq!(get(&e, "SNAPRSYNC_SNAPSHOT"), None);
        let e = env(Hook::Post, "s", &sources, Some(Outcome::Failed));
        assert_eq!(get(&e, "SNAPRSYNC_HOOK").unwrap(), "post_snapshot");
        assert_eq!(get(&e, "SNAPRSYNC_SNAPSHOT").unwrap(), "failed");
    }

    #[cfg(unix)]
    fn cfg(pre: &[&str], timeout: u64, failure: HookFailure) -> Config {
        Config {
            pre_snapshot: Some(pre.iter().map(|s| s.to_string()).collect()),
            hook_timeout: timeout,
            hook_failure: failure,
            ..Config::default()
        }
    }

    #[cfg(unix)]
    #[test]
    fn success_failure_warning_and_timeout() {
        let src = [PathBuf::from("/srv")];
        assert!(run(&crate::platform::Platform, &Config::default(), Hook::Pre, &src, None).is_ok(), "no hook configured");
        assert!(run(
            &crate::platform::Platform,
            &cfg(&["/bin/sh", "-c", "test \"$SNAPRSYNC_SOURCES\" = /srv"], 10, HookFailure::Fail),
            Hook::Pre,
            &src,
            None
        )
        .is_ok());
        let e =
            run(&crate::platform::Platform, &cfg(&["/bin/sh", "-c", "exit 3"], 10, HookFailure::Fail), Hook::Pre, &src, None).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::status::HOOK);
        assert!(e.to_string().starts_with("pre_snapshot hook `/bin/sh -c 'exit 3'` exited with status 3;"), "{e}");
        assert!(run(&crate::platform::Platform, &cfg(&["/bin/sh", "-c", "exit 3"], 10, HookFailure::Warn), Hook::Pre, &src, None).is_ok());
        let e = run(&crate::platform::Platform, &cfg(&["/nonexistent/hook"], 10, HookFailure::Fail), Hook::Pre, &src, None).unwrap_err();
        assert!(e.to_string().contains("could not be started"), "{e}");
        let t = Instant::now();
        let e = run(&crate::platform::Platform, &cfg(&["/bin/sh", "-c", "sleep 30; true"], 1, HookFailure::Fail), Hook::Pre, &src, None)
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10), "the hook was not ended on time: {:?}", t.elapsed());
        assert!(e.to_string().contains("outlasted hook_timeout = 1 s"), "{e}");
    }
}
