//! Which rsync is the real one: `rsync_path` from the config, else the first
//! `rsync` on PATH that is not snaprsync itself (snaprsync may be installed as
//! `rsync`, and must never run itself in a loop).

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};

/// The system directories a restricted key's rsync is looked for in: never
/// the `PATH` the ssh session brought.
pub const RSYNC_DIRS: &[&str] = &["/usr/bin", "/bin", "/usr/local/bin"];

/// The real rsync for this config.
pub fn find(cfg: &Config) -> Result<PathBuf> {
    find_with(cfg, false)
}

/// [`find`]; `restricted`: looked for in [`RSYNC_DIRS`] (unless
/// `rsync_path` names it), not on `PATH`.
pub fn find_with(cfg: &Config, restricted: bool) -> Result<PathBuf> {
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let is_me = |p: &Path| p.canonicalize().ok().is_some_and(|c| Some(&c) == me.as_ref());
    if let Some(p) = &cfg.rsync_path {
        if is_me(p) {
            return Err(Error::Usage(format!("rsync_path = {} is snaprsync itself; point it at the real rsync", p.display())));
        }
        if copy_of_me(p) {
            return Err(Error::Usage(format!(
                "rsync_path = {} is a copy of snaprsync, which would run itself; point it at the real rsync (usually /usr/bin/rsync)",
                p.display()
            )));
        }
        return Ok(p.clone());
    }
    let name = crate::host::rsync_file_name();
    let path = match restricted && cfg!(unix) {
        true => std::env::join_paths(RSYNC_DIRS).unwrap_or_default(),
        false => std::env::var_os("PATH").unwrap_or_default(),
    };
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file() && !is_me(p) && !copy_of_me(p)).ok_or_else(|| {
        Error::NotStarted {
            what: "rsync",
            path: name.into(),
            msg: match restricted {
                true => format!(
                    "no rsync in {} (a restricted key never looks on PATH); install rsync or set rsync_path in the config",
                    RSYNC_DIRS.join(", ")
                ),
                false => "no rsync on PATH other than snaprsync; install rsync or set rsync_path in the config".into(),
            },
        }
    })
}

/// Whether `path` holds the very bytes of the running snaprsync (a copy of
/// it, which `is_me` cannot tell by its name).
pub fn copy_of_me(path: &Path) -> bool {
    let Ok(me) = std::env::current_exe() else { return false };
    let same_len = match (std::fs::metadata(path), std::fs::metadata(&me)) {
        (Ok(a), Ok(b)) => a.len() == b.len(),
        _ => false,
    };
    same_len && matches!((std::fs::read(path), std::fs::read(&me)), (Ok(a), Ok(b)) if a == b)
}
