//! What `snaprsync doctor` asks of a Windows machine: elevation (told by
//! whether `net session` may run, which needs it), the volume holding a path,
//! its free space, and which rsync build was found.

use std::path::{Component, Path};

use super::{ffi, flavor_of, Platform};
use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::platform::{Diagnosing, Lacking, Space};

impl Diagnosing for Platform {
    fn privileges(&self) -> std::result::Result<String, Lacking> {
        match Cmd::new("net").arg("session").run() {
            Ok(_) => Ok("elevated (net session may run)".into()),
            Err(e) => Err(Lacking {
                what: format!("not elevated ({e}): VSS needs an Administrator or a Backup Operator"),
                fix:
                    "run snaprsync from an elevated prompt, and log the backup account in as a member of Administrators or Backup Operators"
                        .into(),
            }),
        }
    }

    fn filesystem(&self, path: &Path) -> Result<String> {
        match path.components().next() {
            Some(Component::Prefix(p)) => Ok(format!("volume {}\\", p.as_os_str().to_string_lossy())),
            _ => Err(Error::Snapshot { path: path.to_owned(), msg: "not on a drive (a relative or UNC path?)".into() }),
        }
    }

    fn space(&self, path: &Path) -> Result<Space> {
        let (available, total) = ffi::disk_space(path).map_err(|e| Error::io(path, e))?;
        Ok(Space { available, total })
    }

    fn identity(&self, _path: &Path) -> Option<(u64, u64)> {
        None
    }

    fn rsync_notes(&self, rsync: &Path) -> Option<String> {
        Some(format!("{:?} build", flavor_of(rsync)))
    }
}
