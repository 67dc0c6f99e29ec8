//! TEST DOUBLE, not a snapshot: a directory-backed stand-in for VSS, for the
//! end-to-end tests under wine (where VSS answers E_NOTIMPL). "Snapshotting"
//! copies each source's parent directory into a scratch directory and reports
//! that copy as the volume's snapshot; everything after that (argv rewrite,
//! exposure, running rsync, removal) is the real code.
//!
//! Like VSS after Event 25, it can lose its copy while rsync reads it
//! ([`vanish_when`]), and its `verify` finds that the way the VSS provider's
//! does (`vss::check_shadows`), with the same error.
//!
//! It can also pretend that volumes are mounted in given folders
//! ([`pretend_mounts`]), since wine cannot mount a volume in a folder, and it
//! leaves out of its copies every folder that leads elsewhere (a junction or
//! link): in a real shadow copy such a folder still leads to the live files.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::provider::vss::{check_shadows, Shadow};
use crate::provider::{Provider, SnapshotSet, VolumeSnapshot};

thread_local! {
    static INSTALLED: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    static MOUNTS: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    static VANISH: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Makes the next set's first copy vanish once `signal` exists (the rsync
/// stand-in writes it when it starts), as volsnap deletes a shadow copy
/// whose diff area could not grow.
pub fn vanish_when(signal: &Path) {
    VANISH.with(|v| *v.borrow_mut() = Some(signal.to_owned()));
}

/// Makes the platform see volumes mounted at `folders` (`C:\...\mnt\`).
pub fn pretend_mounts(folders: &[String]) {
    MOUNTS.with(|m| *m.borrow_mut() = Some(folders.to_vec()));
}

/// The pretended mount folders, while the double is installed with some.
pub fn mount_folders() -> Option<Vec<String>> {
    MOUNTS.with(|m| m.borrow().clone())
}

/// Makes `Platform::provider` hand out a [`DirDouble`] on this thread,
/// keeping its copies under `scratch`.
pub fn install(scratch: &Path) {
    INSTALLED.with(|i| *i.borrow_mut() = Some(scratch.to_owned()));
}

pub fn uninstall() {
    INSTALLED.with(|i| *i.borrow_mut() = None);
    MOUNTS.with(|m| *m.borrow_mut() = None);
    VANISH.with(|v| *v.borrow_mut() = None);
}

pub fn installed() -> Option<Box<dyn Provider>> {
    INSTALLED.with(|i| i.borrow().clone()).map(|scratch| Box::new(DirDouble { scratch }) as Box<dyn Provider>)
}

/// The double: origin = a source's parent directory, snapshot = its copy.
pub struct DirDouble {
    scratch: PathBuf,
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        let leads_elsewhere = crate::provider::vss::volume::final_path(&e.path())
            .is_ok_and(|real| !super::sources::same_place(&real, &e.path().to_string_lossy()));
        if leads_elsewhere {
            continue;
        }
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

impl Provider for DirDouble {
    fn name(&self) -> &'static str {
        "dir-double"
    }

    fn create(&mut self, sources: &[PathBuf]) -> Result<SnapshotSet> {
        let mut volumes: Vec<VolumeSnapshot> = Vec::new();
        for s in sources {
            let origin = s.parent().unwrap_or(s).to_owned();
            if volumes.iter().any(|v| v.origin == origin) {
                continue;
            }
            let snap = self.scratch.join(format!("snap{}", volumes.len()));
            copy_tree(&origin, &snap).map_err(|e| Error::io(&origin, e))?;
            volumes.push(VolumeSnapshot { origin, snapshot: snap.clone(), id: snap.display().to_string(), mount: None });
        }
        if let (Some(signal), Some(first)) = (VANISH.with(|v| v.borrow_mut().take()), volumes.first()) {
            let copy = first.snapshot.clone();
            std::thread::spawn(move || {
                let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while !signal.exists() && std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                log::warn!("TEST DOUBLE: deleting its copy {} mid-run, as volsnap would", copy.display());
                let _ = std::fs::remove_dir_all(&copy);
            });
        }
        Ok(SnapshotSet { provider: "dir-double", volumes, views: Vec::new() })
    }

    /// As VSS's: each copy still listed (its directory there) and opening.
    fn verify(&self, set: &SnapshotSet) -> Result<()> {
        let shadows: Vec<Shadow<PathBuf>> = set
            .volumes
            .iter()
            .map(|v| Shadow { volume: v.origin.display().to_string(), id: v.snapshot.clone(), device: v.snapshot.display().to_string() })
            .collect();
        check_shadows(
            &shadows,
            |dir| {
                if dir.is_dir() {
                    Ok(dir.display().to_string())
                } else {
                    Err(("the test double's listing".into(), crate::provider::vss::hr::VSS_E_OBJECT_NOT_FOUND))
                }
            },
            crate::provider::vss::volume::device_opens,
        )
    }

    fn remove(&mut self, set: &SnapshotSet) -> Result<()> {
        for v in &set.volumes {
            match std::fs::remove_dir_all(&v.snapshot) {
                // A copy that vanished has nothing left to remove.
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&v.snapshot, e)),
                _ => {}
            }
        }
        Ok(())
    }
}
