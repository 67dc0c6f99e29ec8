//! What `snaprsync doctor` asks of a Linux machine: the capabilities of this
//! process (`/proc/self/status`), the mount holding a path (mountinfo), its
//! free space (statvfs) and a file's device and inode.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Platform;
use crate::error::{Error, Result};
use crate::platform::{Diagnosing, Lacking, Space};

/// CAP_SYS_ADMIN's bit in the capability sets: snapshots (btrfs ioctls, LVM)
/// and the private mount namespace need it.
const CAP_SYS_ADMIN: u32 = 21;

/// The effective capability set from `/proc/self/status` text.
fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

impl Diagnosing for Platform {
    fn privileges(&self) -> std::result::Result<String, Lacking> {
        let uid = nix::unistd::geteuid().as_raw();
        let caps = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| effective_caps(&s)).unwrap_or(0);
        let admin = caps & (1 << CAP_SYS_ADMIN) != 0;
        match (uid, admin) {
            (0, true) => Ok("running as root".into()),
            (_, true) => Ok(format!("running as uid {uid} with CAP_SYS_ADMIN")),
            (0, false) => Err(Lacking {
                what: "running as root but without CAP_SYS_ADMIN (a container?): no snapshots, no private mount namespace".into(),
                fix: "run snaprsync where root keeps CAP_SYS_ADMIN".into(),
            }),
            _ => Err(Lacking {
                what: format!("running as uid {uid} without CAP_SYS_ADMIN: snapshots and the private mount namespace need root"),
                fix: "run snaprsync as root (log the backup key in as root, or use sudo)".into(),
            }),
        }
    }

    fn filesystem(&self, path: &Path) -> Result<String> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::io("/proc/self/mountinfo", e))?;
        let mounts = crate::mountinfo::parse(&text);
        let m = crate::mountinfo::find(&mounts, path)
            .ok_or_else(|| Error::Snapshot { path: path.to_owned(), msg: "no mount in /proc/self/mountinfo holds it".into() })?;
        let sub = if m.fstype == "btrfs" { format!(", subvolume {}", m.root.display()) } else { String::new() };
        Ok(format!("{} on {}, mounted at {}{sub}", m.fstype, m.source, m.mount_point.display()))
    }

    fn space(&self, path: &Path) -> Result<Space> {
        let s = nix::sys::statvfs::statvfs(path).map_err(|e| Error::io(path, e.into()))?;
        let unit = s.fragment_size().max(1);
        Ok(Space { available: s.blocks_available().saturating_mul(unit), total: s.blocks().saturating_mul(unit) })
    }

    fn identity(&self, path: &Path) -> Option<(u64, u64)> {
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }

    fn rsync_notes(&self, _rsync: &Path) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_status() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\nCapBnd:\t0\n";
        assert_eq!(effective_caps(status), Some(0x1ff_ffff_ffff));
        assert!(effective_caps(status).unwrap() & (1 << CAP_SYS_ADMIN) != 0);
        assert_eq!(effective_caps("CapEff:\t0000000000000000\n"), Some(0));
        assert_eq!(effective_caps("nothing"), None);
    }

    #[test]
    fn this_machine_answers() {
        let here = std::env::current_dir().unwrap();
        assert!(Platform.filesystem(&here).unwrap().contains("mounted at"));
        let s = Platform.space(&here).unwrap();
        assert!(s.total > 0 && s.available <= s.total, "{s:?}");
        assert!(Platform.identity(&here).is_some());
    }
}
