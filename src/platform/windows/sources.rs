//! Which volume a source really lies on, and which volumes are not shadowed.
//!
//! A source argument names a place; rsync reads whatever that name leads to.
//! Below a drive, a junction, a symbolic link or a volume mount point can lead
//! to another volume, and inside a shadow copy it still leads to the LIVE one.
//! So each source is resolved to the path it really is (GetFinalPathNameByHandleW)
//! before its volume is chosen, volumes mounted in folders below a source are
//! refused (`vss_mount_points`), and volumes the admin excluded
//! (`vss_exclude_volumes`) are read live, each source named in a warning.

use std::path::{Path, PathBuf};

use crate::config::{Config, VssMountPoints};
use crate::error::{Error, Result};
use crate::provider::vss::{mount_points_below, same_volume, volume};
use crate::provider::{Leftover, SnapshotSet, Snapshotter, Sweeper};

/// `\\?\C:\x` → `C:\x`, `\\?\UNC\srv\share` → `\\srv\share`; others as they are.
fn without_verbatim(p: &str) -> String {
    if let Some(unc) = p.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{unc}")
    } else if p.len() >= 6 && p.starts_with(r"\\?\") && p.as_bytes()[5] == b':' {
        p[4..].to_owned()
    } else {
        p.to_owned()
    }
}

/// The path rsync really reads for `lexical`: the part it walks through (all
/// of it with a trailing slash, else all but the last component, which rsync
/// reads as itself and names the copy after) with every junction, symbolic
/// link, mount point and 8.3 short name followed; the last component kept
/// exactly. Unchanged when the walked part cannot be opened (rsync reports a
/// missing source itself).
pub fn resolve(lexical: &Path, trailing: bool) -> PathBuf {
    let (walked, last) = match (trailing, lexical.parent(), lexical.file_name()) {
        (false, Some(parent), Some(name)) => (parent, Some(name)),
        _ => (lexical, None),
    };
    match volume::final_path(walked) {
        Ok(real) => {
            let mut p = PathBuf::from(without_verbatim(&real));
            if let Some(name) = last {
                p.push(name);
            }
            p
        }
        Err(e) => {
            log::debug!("{}: not resolved ({e})", walked.display());
            lexical.to_owned()
        }
    }
}

/// Pure: whether two native paths are one place as Windows compares names
/// (case, the verbatim prefix, `.` components and trailing separators aside).
pub fn same_place(a: &str, b: &str) -> bool {
    let key = |s: &str| {
        let s = without_verbatim(s);
        let parts: Vec<String> = s.split(['\\', '/']).filter(|c| !c.is_empty() && *c != ".").map(str::to_uppercase).collect();
        (s.starts_with(r"\\"), parts)
    };
    key(a) == key(b)
}

/// Pure: whether a source argument names a folder's contents (a trailing
/// separator, or `.` as its last component), so that rsync walks into it.
pub fn names_contents(arg: &str) -> bool {
    arg.ends_with(['/', '\\']) || arg == "." || arg.ends_with("/.") || arg.ends_with("\\.")
}

/// The entry of `excluded` (config `vss_exclude_volumes`) naming the volume
/// that holds `source`, if one does: by its root (`D:`, `D:\`, a mount folder)
/// or by its GUID name.
pub fn excluded_by<'a>(source: &Path, excluded: &'a [String]) -> Option<&'a str> {
    if excluded.is_empty() {
        return None;
    }
    let root = volume::volume_path_name(source).ok()?;
    let guid = volume::volume_guid(&root).ok();
    excluded
        .iter()
        .find(|x| {
            let x = x.trim();
            let as_root = if x.len() == 2 && x.ends_with(':') { format!("{x}\\") } else { x.to_owned() };
            let named = |g: &str| same_volume(&as_root, g) || volume::volume_guid(&as_root).is_ok_and(|xg| xg.eq_ignore_ascii_case(g));
            same_volume(&as_root, &root) || guid.as_deref().is_some_and(named)
        })
        .map(String::as_str)
}

/// The folders volumes are mounted at (not drive roots): where a walk of a
/// source could step onto another, live, volume.
pub fn mount_folders() -> Vec<String> {
    match volume::mounted_volumes() {
        Ok(vols) => vols.into_iter().flat_map(|(_, paths)| paths).filter(|p| p.trim_end_matches('\\').len() > 2).collect(),
        Err(e) => {
            log::warn!("cannot list the volumes' mount points ({e}): a volume mounted in a folder below a source would be read live");
            Vec::new()
        }
    }
}

/// `vss_mount_points` applied to `sources` before anything is shadowed: a
/// volume mounted in a folder below one is refused (83, a snapshot failure),
/// or, with "ignore", named in a warning.
pub fn check_mount_points(cfg: &Config, sources: &[PathBuf], mounts: &[String]) -> Result<()> {
    let below = mount_points_below(sources, mounts);
    let Some((source, folder)) = below.first() else { return Ok(()) };
    match cfg.vss_mount_points {
        VssMountPoints::Refuse => Err(Error::Unmatched {
            arg: source.display().to_string(),
            why: format!(
                "{folder} below it is where another volume is mounted, and inside a shadow copy that folder leads to the LIVE volume: \
                 back that volume up as a source of its own and exclude the folder from this one, or set vss_mount_points = \"ignore\""
            ),
        }),
        VssMountPoints::Ignore => {
            for (source, folder) in &below {
                log::warn!(
                    "{}: {folder} below it is another volume's mount point; vss_mount_points = \"ignore\": rsync reads it LIVE",
                    source.display()
                );
            }
            Ok(())
        }
    }
}

/// A provider with `vss_exclude_volumes` applied: `skipped`, the sources on
/// an excluded volume, are not given to it (the exposure passes them on,
/// with a warning).
pub struct Excluding {
    pub inner: Box<dyn Snapshotter>,
    pub skipped: Vec<PathBuf>,
}

impl Snapshotter for Excluding {
    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        let kept: Vec<PathBuf> = sources.iter().filter(|s| !self.skipped.contains(s)).cloned().collect();
        if kept.is_empty() {
            return Ok(SnapshotSet { provider: self.inner.name(), ..SnapshotSet::default() });
        }
        self.inner.create(&kept)
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        if set.volumes.is_empty() {
            return Ok(());
        }
        self.inner.remove(set)
    }

    fn verify(&self, set: &SnapshotSet) -> Result<()> {
        self.inner.verify(set)
    }

    fn removal_can_detach(&self) -> bool {
        self.inner.removal_can_detach()
    }
}

impl Sweeper for Excluding {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn leftovers(&self) -> Result<Vec<Leftover>> {
        self.inner.leftovers()
    }

    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<()> {
        self.inner.remove_leftover(leftover)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_compare_as_windows_names_do() {
        assert!(same_place(r"C:\Users\Alice", r"\\?\c:\users\alice\"));
        assert!(same_place(r"C:\x\.\y", r"C:\x\y"));
        assert!(!same_place(r"C:\x", r"D:\x"));
        assert!(!same_place(r"C:\x\link\sub", r"Z:\tmp\target\sub"));
        assert_eq!(without_verbatim(r"\\?\UNC\srv\share\x"), r"\\srv\share\x");
        assert_eq!(without_verbatim(r"\\?\Volume{1}\x"), r"\\?\Volume{1}\x");
    }

    #[test]
    fn contents_are_named_by_a_trailing_separator_or_dot() {
        for arg in ["C:/x/", r"C:\x\", ".", "/cygdrive/c/x/.", r"C:\x\."] {
            assert!(names_contents(arg), "{arg}");
        }
        for arg in ["C:/x", r"C:\x", "x.", "/c/x/.."] {
            assert!(!names_contents(arg), "{arg}");
        }
    }
}
