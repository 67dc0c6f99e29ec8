//! Exposure on Linux: a private mount namespace in which each snapshot is
//! mounted over its origin (or, for an origin of `/`, rsync's paths rewritten
//! into the snapshot), or in restricted mode a root of rsync's own (`child`).

use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::ns::{self, Applied, Kernel, MountOps};
use super::plan::{plan, plan_rewrite};
use super::{child, supervise, Platform};
use crate::command::Cmd;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::platform::{Confine, Exposing, Exposure};
use crate::provider::SnapshotSet;
use crate::rsync_args::Invocation;

/// What an exposure set up, and how rsync runs in it.
pub enum Held {
    /// Mounts in snaprsync's private namespace, unmounted on undo.
    Mounts(Vec<PathBuf>),
    /// Nothing in snaprsync's namespace: rsync builds its own root.
    Confined(child::Confinement),
}

impl Held {
    pub fn run(&mut self, program: &Path, argv: &[OsString]) -> Result<u8> {
        match self {
            Held::Mounts(_) => supervise::run(program, argv, None),
            Held::Confined(c) => supervise::run(program, argv, Some(c)),
        }
    }

    pub fn undo(&mut self) -> Result<()> {
        match self {
            Held::Mounts(targets) => ns::unmount_all(&mut Kernel, &std::mem::take(targets)),
            Held::Confined(_) => Ok(()),
        }
    }
}

/// The exposure of `set` for `inv`, made through `ops`.
fn expose_with<M: MountOps>(ops: &mut M, set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf]) -> Result<Exposure> {
    let plan = plan(set, inv, sources);
    let exposure = match ns::apply(ops, &plan)? {
        Applied::Mounted(made) => Exposure::new(plan.argv, plan.method, Held::Mounts(made)),
        Applied::NoNamespace(why) if plan.method == "namespace" => {
            // Rewriting the paths instead; the names may differ.
            log::warn!("no private mount namespace ({why}); rewriting rsync's paths instead");
            Exposure::new(plan_rewrite(set, inv, sources, false).argv, "rewrite", Held::Mounts(Vec::new()))
        }
        Applied::NoNamespace(why) => {
            log::warn!("no private mount namespace ({why}); nested subvolumes will arrive empty");
            Exposure::new(plan.argv, plan.method, Held::Mounts(Vec::new()))
        }
    };
    log::debug!("exposure: {}", exposure.method());
    Ok(exposure)
}

impl Exposing for Platform {
    fn expose(_cfg: &Config, set: &SnapshotSet, inv: &Invocation, sources: &[PathBuf], _rsync: &Path) -> Result<Exposure> {
        expose_with(&mut Kernel, set, inv, sources)
    }

    fn expose_confined(
        cfg: &Config,
        set: Option<&SnapshotSet>,
        inv: &Invocation,
        rsync: &Path,
        confine: &Confine,
    ) -> Result<Option<Exposure>> {
        // Allowed directories by their real paths: the snapshot paths are real.
        let real = |dirs: &[PathBuf]| dirs.iter().filter_map(|d| d.canonicalize().ok()).collect::<Vec<_>>();
        let state = cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir);
        let root = state.join("confine-root");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&root).map_err(|e| Error::io(&root, e))?;
        let mut files = vec![rsync.to_owned()];
        let mut shown: Vec<(PathBuf, PathBuf)> = set.map(|s| child::read_map(s, &real(confine.read))).unwrap_or_default();
        match Cmd::new("ldd").arg(rsync).run() {
            Ok(out) => {
                let libs = child::ldd_paths(&out);
                if confine.iconv {
                    // --iconv loads its converters beside the C library.
                    let gconv = libs
                        .iter()
                        .find(|l| l.file_name().is_some_and(|n| n == "libc.so.6"))
                        .and_then(|l| l.parent())
                        .map(|d| d.join("gconv"));
                    if let Some(g) = gconv.filter(|g| g.is_dir()).and_then(|g| g.canonicalize().ok()) {
                        shown.push((g.clone(), g));
                    }
                }
                files.extend(libs);
            }
            Err(Error::Command { stderr, .. }) if stderr.contains("not a dynamic executable") => {}
            Err(e) => {
                return Err(Error::Expose {
                    path: rsync.to_owned(),
                    msg: format!("cannot tell which libraries rsync loads ({e}); install libc-bin"),
                })
            }
        }
        // World-readable files rsync and the C library consult.
        for f in ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ld.so.cache", "/etc/localtime", "/dev/null"] {
            if Path::new(f).exists() {
                files.push(f.into());
            }
        }
        let confinement = child::Confinement {
            root,
            read: shown,
            write: real(confine.write),
            files,
            cwd: std::env::current_dir().unwrap_or_else(|_| "/".into()),
            devices: set
                .map(|s| s.volumes.iter().filter_map(|v| v.mount.clone().map(|m| (m, v.snapshot.clone()))).collect())
                .unwrap_or_default(),
        };
        log::debug!("confined: {confinement:?}");
        Ok(Some(Exposure::new(inv.args.clone(), "confined", Held::Confined(confinement))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::imp::plan::tests::{inv, set};

    #[test]
    fn namespace_exposure_mounts_and_keeps_the_argv() {
        let mut r = ns::Recorder::default();
        let s = set(&[("/mnt", "/mnt/.s/a-0")]);
        let i = inv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/mnt/data/"]);
        let e = expose_with(&mut r, &s, &i, &["/mnt/data".into()]).unwrap();
        assert_eq!((e.method(), e.argv()), ("namespace", &i.args[..]));
        assert!(matches!(e.held, Held::Mounts(ref m) if m == &[PathBuf::from("/mnt")]));
    }

    #[test]
    fn without_a_namespace_the_paths_are_rewritten_and_nothing_is_mounted() {
        let mut r = ns::Recorder { fail_namespace: true, ..ns::Recorder::default() };
        let s = set(&[("/mnt", "/mnt/.s/a-0")]);
        let i = inv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/mnt/data/"]);
        let e = expose_with(&mut r, &s, &i, &["/mnt/data".into()]).unwrap();
        assert_eq!(e.method(), "rewrite");
        assert_eq!(e.argv()[4], OsString::from("/mnt/.s/a-0/data/"));
        assert!(matches!(e.held, Held::Mounts(ref m) if m.is_empty()));
        assert_eq!(r.calls, ["unshare"]);
    }

    #[test]
    fn a_failed_mount_fails_the_exposure_and_leaves_no_mount() {
        let mut r = ns::Recorder { fail_bind: Some("/mnt/n".into()), ..ns::Recorder::default() };
        let s = set(&[("/mnt", "/mnt/.s/a-0"), ("/mnt/n", "/mnt/n/.s/a-1")]);
        let i = inv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/mnt/"]);
        let err = expose_with(&mut r, &s, &i, &["/mnt".into()]).err().expect("the mount failed");
        assert_eq!(err.exit_code(), crate::error::status::EXPOSE);
        assert_eq!(r.calls.last().map(String::as_str), Some("unmount /mnt"));
    }
}
