//! `snaprsync exec PATH... -- COMMAND [ARGS...]`: any backup program (restic,
//! borg, tar, kopia) reads a point-in-time snapshot. Every volume holding a
//! PATH is snapshotted (one set, with the same providers, journal, sweep and
//! hooks as the rsync role, through `lifecycle`), the set is shown to COMMAND
//! (Linux: each snapshot over its origin in a private namespace, so COMMAND's
//! own paths read it; Windows: the configured `expose`), COMMAND runs with
//! stdio inherited, and exec exits with COMMAND's status once everything is
//! removed. COMMAND's argv is never rewritten; where it reads is told in its
//! environment (see [`env`]). Nothing here writes to stdout: it is COMMAND's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::cli::{Exec, Options};
use crate::config::{Config, ProviderChoice};
use crate::error::{Error, Result};
use crate::platform::{Exposure, Launch, Place, Program, System};
use crate::provider::SnapshotSet;
use crate::run::lifecycle::{self, Task};

/// Runs `exec`; returns COMMAND's exit status.
pub fn run(sys: &dyn System, cfg: &Config, opts: &Options, exec: Exec) -> Result<u8> {
    let mut sources: Vec<PathBuf> = Vec::new();
    for p in &exec.paths {
        let path = sys.exec_path(p).ok_or_else(|| {
            Error::Usage(format!(
                "exec: {} does not exist; name an existing file or directory",
                crate::text::shown(p.as_encoded_bytes(), 200)
            ))
        })?;
        if !sources.contains(&path) {
            sources.push(path);
        }
    }
    let task = ExecTask { sys, command: exec.command, sources };
    if cfg.provider == ProviderChoice::None {
        log::info!("provider = \"none\": running the command on the live files");
        return lifecycle::run_live(sys, cfg, "exec", &task.sources, "provider = \"none\"", &task.launch_live());
    }
    lifecycle::run(sys, cfg, opts, &task.sources, &task)
}

/// exec as a lifecycle task.
struct ExecTask<'s> {
    sys: &'s dyn System,
    command: Vec<OsString>,
    sources: Vec<PathBuf>,
}

impl ExecTask<'_> {
    fn launch_with(&self, env: Vec<(OsString, OsString)>) -> Launch {
        Launch {
            program: PathBuf::from(&self.command[0]),
            args: self.command[1..].to_vec(),
            env,
            what: Program::Command,
            watch_peer: false,
        }
    }

    /// COMMAND on the live files: every PATH is read where it is.
    fn launch_live(&self) -> Launch {
        self.launch_with(env("live", &[], &self.sources))
    }
}

impl Task for ExecTask<'_> {
    fn expose(&self, cfg: &Config, set: &SnapshotSet) -> Result<Exposure> {
        self.sys.expose_in_place(cfg, set)
    }

    fn launch(&self, exposure: &Exposure) -> Result<Launch> {
        Ok(self.launch_with(env(exposure.method().as_str(), exposure.places(), &self.sources)))
    }

    fn live(&self) -> Option<Result<Launch>> {
        Some(Ok(self.launch_live()))
    }

    fn role(&self) -> &'static str {
        "exec"
    }
}

/// Where `path` is read: inside the place of the deepest volume holding it,
/// or where it is when no snapshot holds it.
fn seen(places: &[Place], path: &Path) -> PathBuf {
    places
        .iter()
        .filter_map(|p| path.strip_prefix(&p.origin).ok().map(|rest| (p, rest)))
        .max_by_key(|(p, _)| p.origin.components().count())
        .map_or_else(|| path.to_owned(), |(p, rest)| if rest.as_os_str().is_empty() { p.seen.clone() } else { p.seen.join(rest) })
}

/// Pure: COMMAND's environment, on top of snaprsync's own:
///
/// - `SNAPRSYNC_STAMP`: the run's stamp (the prefix of its snapshot names);
/// - `SNAPRSYNC_EXPOSE`: `namespace` (Linux), `drive-letter` or `device-path`
///   (Windows), or `live` (no snapshot: `provider = "none"` or the
///   `on_snapshot_failure = "live"` fallback);
/// - `SNAPRSYNC_SNAPSHOT_COUNT`, and for each place n from 0 that shows a
///   snapshot (each volume, then each bind mount of a directory inside one)
///   `SNAPRSYNC_SNAPSHOT_<n>_ORIGIN` (the live volume, such as `/srv` or `C:\`,
///   or the bind mount, such as `/srv/www`) and `SNAPRSYNC_SNAPSHOT_<n>_PATH`
///   (where COMMAND reads its snapshot: the origin itself on Linux, `R:\` or a
///   device path on Windows);
/// - `SNAPRSYNC_PATH_COUNT`, and for each PATH n as given, made absolute,
///   `SNAPRSYNC_PATH_<n>`: where COMMAND reads it.
pub fn env(method: &str, places: &[Place], sources: &[PathBuf]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![
        ("SNAPRSYNC_STAMP".into(), crate::stamp::run_stamp().into()),
        ("SNAPRSYNC_EXPOSE".into(), method.into()),
        ("SNAPRSYNC_SNAPSHOT_COUNT".into(), places.len().to_string().into()),
    ];
    for (n, p) in places.iter().enumerate() {
        env.push((format!("SNAPRSYNC_SNAPSHOT_{n}_ORIGIN").into(), p.origin.clone().into()));
        env.push((format!("SNAPRSYNC_SNAPSHOT_{n}_PATH").into(), p.seen.clone().into()));
    }
    env.push(("SNAPRSYNC_PATH_COUNT".into(), sources.len().to_string().into()));
    for (n, s) in sources.iter().enumerate() {
        env.push((format!("SNAPRSYNC_PATH_{n}").into(), seen(places, s).into()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(env: &[(OsString, OsString)], k: &str) -> String {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.to_string_lossy().into_owned()).unwrap_or_else(|| panic!("no {k}"))
    }

    #[cfg(unix)]
    #[test]
    fn each_path_is_told_where_its_snapshot_is_read() {
        let places =
            vec![Place { origin: "/srv".into(), seen: "/shown/srv".into() }, Place { origin: "/srv/vm".into(), seen: "/shown/vm".into() }];
        let e = env("namespace", &places, &["/srv/db".into(), "/srv/vm/disk".into(), "/srv/vm".into(), "/other".into()]);
        assert_eq!(get(&e, "SNAPRSYNC_EXPOSE"), "namespace");
        assert!(get(&e, "SNAPRSYNC_STAMP").starts_with(crate::stamp::NAME_PREFIX));
        assert_eq!(get(&e, "SNAPRSYNC_SNAPSHOT_COUNT"), "2");
        assert_eq!((get(&e, "SNAPRSYNC_SNAPSHOT_1_ORIGIN"), get(&e, "SNAPRSYNC_SNAPSHOT_1_PATH")), ("/srv/vm".into(), "/shown/vm".into()));
        assert_eq!(get(&e, "SNAPRSYNC_PATH_COUNT"), "4");
        assert_eq!(get(&e, "SNAPRSYNC_PATH_0"), "/shown/srv/db");
        assert_eq!(get(&e, "SNAPRSYNC_PATH_1"), "/shown/vm/disk", "the deepest volume holds it");
        assert_eq!(get(&e, "SNAPRSYNC_PATH_2"), "/shown/vm");
        assert_eq!(get(&e, "SNAPRSYNC_PATH_3"), "/other", "no snapshot holds it: read where it is");
        let live = env("live", &[], &["/srv/db".into()]);
        assert_eq!((get(&live, "SNAPRSYNC_SNAPSHOT_COUNT"), get(&live, "SNAPRSYNC_PATH_0")), ("0".into(), "/srv/db".into()));
    }

    #[cfg(windows)]
    #[test]
    fn each_path_is_told_where_its_snapshot_is_read() {
        let places = vec![
            Place { origin: r"C:\".into(), seen: r"R:\".into() },
            Place { origin: r"D:\".into(), seen: r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy3\".into() },
        ];
        let e = env("drive-letter", &places, &[r"C:\data\x".into(), r"D:\y".into(), r"c:\lower".into()]);
        assert_eq!(get(&e, "SNAPRSYNC_PATH_0"), r"R:\data\x");
        assert_eq!(get(&e, "SNAPRSYNC_PATH_1"), r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy3\y");
        assert_eq!(get(&e, "SNAPRSYNC_PATH_2"), r"R:\lower", "drive letters compare without case");
    }
}
