//! Provider choice on Linux: the filesystem of each source, from
//! `/proc/self/mountinfo`, picks the provider; and the path a source argument
//! names, as rsync will resolve it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::Platform;
use crate::config::{Config, ProviderChoice};
use crate::error::{Error, Result};
use crate::mountinfo::{self, Mount};
use crate::platform::Volumes;
use crate::provider::btrfs::Btrfs;
use crate::provider::Provider;

fn read_mounts() -> Result<Vec<Mount>> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(mountinfo::parse(&text))
}

impl Volumes for Platform {
    fn source_path(arg: &OsStr) -> Option<PathBuf> {
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

    fn provider(cfg: &Config, sources: &[PathBuf]) -> Result<Box<dyn Provider>> {
        let mounts = read_mounts()?;
        if cfg.provider == ProviderChoice::Auto {
            for s in sources {
                match mountinfo::find(&mounts, s) {
                    Some(m) if m.fstype == "btrfs" => {}
                    Some(m) => return Err(Error::NoProvider { path: s.clone(), fstype: m.fstype.clone() }),
                    None => return Err(Error::NoProvider { path: s.clone(), fstype: "unknown".into() }),
                }
            }
        }
        match cfg.provider {
            ProviderChoice::Auto | ProviderChoice::Btrfs => Ok(Box::new(Btrfs::new(mounts, &cfg.btrfs_snapshot_dir))),
            other => Err(Error::Usage(format!("provider = {other:?} is not available on Linux; use \"auto\" or \"btrfs\""))),
        }
    }

    fn sweep_provider(cfg: &Config) -> Result<Box<dyn Provider>> {
        Ok(Box::new(Btrfs::new(read_mounts()?, &cfg.btrfs_snapshot_dir)))
    }
}
