//! Provider choice on Linux: the filesystem of each source, from
//! `/proc/self/mountinfo` and sysfs, picks the provider (btrfs, ZFS, or LVM
//! for a logical volume); and the path a source argument names, as rsync will
//! resolve it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::Platform;
use crate::config::{Config, ProviderChoice};
use crate::error::{Error, Result};
use crate::mountinfo::{self, Mount};
use crate::platform::{Diagnosing, Volumes};
use crate::provider::btrfs::Btrfs;
use crate::provider::lvm::{self, Lvm};
use crate::provider::zfs::{self, Zfs};
use crate::provider::{Provider, Several};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Btrfs,
    Lvm,
    Zfs,
}

/// The provider for every source from its filesystem: btrfs, ZFS, or a
/// logical volume (told by sysfs, no `lvs` needed). One run has one provider.
fn detect(mounts: &[Mount], sources: &[PathBuf]) -> Result<Kind> {
    let mut kind = None;
    for s in sources {
        let m = mountinfo::find(mounts, s).ok_or_else(|| Error::NoProvider { path: s.clone(), fstype: "unknown".into() })?;
        let this = if m.fstype == "btrfs" {
            Kind::Btrfs
        } else if zfs::is_dataset(m) {
            Kind::Zfs
        } else if lvm::lv_of(m).is_some() {
            Kind::Lvm
        } else {
            return Err(Error::NoProvider { path: s.clone(), fstype: m.fstype.clone() });
        };
        match kind {
            Some(k) if k != this => {
                return Err(Error::MixedProviders { path: s.clone(), kind: format!("{this:?}"), earlier: format!("{k:?}") })
            }
            _ => kind = Some(this),
        }
    }
    Ok(kind.unwrap_or(Kind::Btrfs))
}

fn lvm(cfg: &Config, mounts: Vec<Mount>) -> Result<Box<dyn Provider>> {
    let size = cfg.lvm_snapshot_size().map_err(Error::Usage)?;
    Ok(Box::new(Lvm::new(mounts, size, cfg.lvm_thin_pool_max_percent, &state_dir(cfg))))
}

fn state_dir(cfg: &Config) -> PathBuf {
    cfg.state_dir.clone().unwrap_or_else(crate::host::default_state_dir)
}

/// Whether any device-mapper device here is LVM's: only then does the sweep
/// ask `lvs`.
fn lvm_in_use() -> bool {
    std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| std::fs::read_to_string(e.path().join("dm/uuid")).is_ok_and(|u| u.starts_with("LVM-")))
}

fn read_mounts() -> Result<Vec<Mount>> {
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

    fn provider(&self, cfg: &Config, sources: &[PathBuf]) -> Result<Box<dyn Provider>> {
        let mounts = read_mounts()?;
        let kind = match cfg.provider {
            ProviderChoice::Btrfs => Kind::Btrfs,
            ProviderChoice::Lvm => Kind::Lvm,
            ProviderChoice::Zfs => Kind::Zfs,
            ProviderChoice::Auto => detect(&mounts, sources)?,
            other => {
                return Err(Error::Usage(format!(
                    "provider = {other:?} is not available on Linux; use \"auto\", \"btrfs\", \"lvm\" or \"zfs\""
                )))
            }
        };
        Ok(match kind {
            Kind::Btrfs => Box::new(Btrfs::new(mounts, &cfg.btrfs_snapshot_dir)),
            Kind::Lvm => lvm(cfg, mounts)?,
            Kind::Zfs => Box::new(Zfs::new(mounts, &state_dir(cfg), self.privileges().err().map(|l| l.what))),
        })
    }

    fn sweep_provider(&self, cfg: &Config) -> Result<Box<dyn Provider>> {
        let mounts = read_mounts()?;
        let mut parts: Vec<Box<dyn Provider>> = vec![Box::new(Btrfs::new(mounts.clone(), &cfg.btrfs_snapshot_dir))];
        if lvm_in_use() {
            parts.push(lvm(cfg, mounts.clone())?);
        }
        // /dev/zfs exists once the module is loaded: only then is `zfs` asked.
        if std::path::Path::new("/dev/zfs").exists() {
            parts.push(Box::new(Zfs::new(mounts, &state_dir(cfg), None)));
        }
        Ok(Box::new(Several(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_on_two_kinds_of_volume_are_refused_with_their_own_status() {
        let mounts = mountinfo::parse(
            "22 1 254:1 / / rw - ext4 /dev/vda rw\n\
             43 22 0:39 / /srv rw - btrfs /dev/loop0 rw,subvolid=5,subvol=/\n\
             44 22 0:40 / /tank rw - zfs tank rw\n",
        );
        let e = detect(&mounts, &["/srv/a".into(), "/tank/b".into()]).unwrap_err();
        assert!(matches!(&e, Error::MixedProviders { path, .. } if path == std::path::Path::new("/tank/b")), "{e:?}");
        assert_eq!(e.exit_code(), crate::error::status::NO_PROVIDER);
        assert!(e.to_string().contains("/tank/b is on Zfs and an earlier source on Btrfs"), "{e}");
        assert_eq!(detect(&mounts, &["/srv/a".into(), "/srv/b".into()]).unwrap(), Kind::Btrfs);
    }
}
