//! Provider choice on Linux: the filesystem of each source, from
//! `/proc/self/mountinfo` and sysfs, picks the provider by the table
//! (`provider::PROVIDERS`: btrfs, LVM for a logical volume, ZFS); and the
//! path a source argument names, as rsync will resolve it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::Platform;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::mountinfo;
use crate::platform::{Diagnosing, Volumes};
use crate::provider::{self, Machine, Several, Snapshotter, Sweeper};

/// What the providers are built from: the mounts, read now.
fn machine() -> Result<Machine> {
    Ok(Machine { mounts: read_mounts()?, cannot_mount: || Platform.privileges().err().map(|l| l.what) })
}

pub(super) fn read_mounts() -> Result<Vec<mountinfo::Mount>> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(mountinfo::parse(&text))
}

impl Volumes for Platform {
    fn source_path(&self, arg: &OsStr) -> Option<PathBuf> {
        let cwd = std::env::current_dir().ok()?;
        let full = cwd.join(arg);
        // A trailing slash (or `.`) means "the directory's contents": follow it.
        // Otherwise the last component is sent as itself (a symlink stays one),
        // so only its parent is resolved.
        let b = arg.as_bytes();
        if b.ends_with(b"/") || b.ends_with(b"/.") || b == b"." || b == b".." {
            return full.canonicalize().ok();
        }
        let name = full.file_name()?;
        full.parent()?.canonicalize().ok().map(|p| p.join(name))
    }

    fn exec_path(&self, arg: &OsStr) -> Option<PathBuf> {
        std::fs::canonicalize(arg).ok()
    }

    fn provider(&self, cfg: &Config, sources: &[PathBuf]) -> Result<Box<dyn Snapshotter>> {
        let machine = machine()?;
        let parts = provider::chosen(cfg.provider, || provider::detect(&machine.mounts, sources))?;
        (parts.build)(cfg, &machine)
    }

    fn sweep_provider(&self, cfg: &Config) -> Result<Box<dyn Sweeper>> {
        Ok(Box::new(Several(provider::sweepers(cfg, &machine()?)?)))
    }
}
