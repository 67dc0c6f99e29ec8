//! A fresh btrfs filesystem on a sparse image, through a loop device,
//! mounted at `<dir>/mnt` with the image at `<dir>/btrfs.img`. Dropping it
//! unmounts and detaches the loop device, also during a panic; a script that
//! keeps it (`testbed btrfs-image`) undoes it with `testbed btrfs-remove`.

use crate::cmd::cmd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Btrfs {
    mnt: PathBuf,
    loopdev: String,
    /// Left mounted when dropped: a script removes it later.
    kept: bool,
    // Last field: removed after the unmount in `Drop`.
    _temp: Option<tempfile::TempDir>,
}

/// Marks a snapshot made by snaprsync in a subvolume path.
pub const SNAPSHOT_MARK: &str = "snaprsync-";

const IMAGE: &str = "btrfs.img";

impl Btrfs {
    /// A `size_mb` MiB filesystem in a new temp dir, removed with it.
    pub fn new(size_mb: u64) -> Btrfs {
        let temp = crate::tempdir("btrfs");
        let mut fs = Btrfs::create_in(temp.path(), size_mb);
        fs._temp = Some(temp);
        fs
    }

    /// Creates a `size_mb` MiB sparse image in `dir`, formats and mounts it
    /// at `dir/mnt`.
    pub fn create_in(dir: &Path, size_mb: u64) -> Btrfs {
        let image = dir.join(IMAGE);
        let file = std::fs::File::create(&image).expect("create image");
        file.set_len(size_mb * 1024 * 1024).expect("size image");
        drop(file);
        cmd("mkfs.btrfs").arg("-q").arg(&image).ok();
        let loopdev = cmd("losetup").args(["--find", "--show"]).arg(&image).ok().stdout_str().trim().to_owned();
        assert!(loopdev.starts_with("/dev/loop"), "losetup printed {loopdev:?}");
        let mnt = dir.join("mnt");
        std::fs::create_dir(&mnt).expect("create mountpoint");
        // Made before the mount, so that a failed mount still detaches.
        let fs = Btrfs { mnt, loopdev, kept: false, _temp: None };
        cmd("mount").args(["-t", "btrfs"]).arg(&fs.loopdev).arg(&fs.mnt).ok();
        fs
    }

    /// Leaves the filesystem mounted when this value goes (for a script,
    /// which calls [`Btrfs::remove`] later); returns the mountpoint.
    pub fn keep(mut self) -> PathBuf {
        self.kept = true;
        self.mnt.clone()
    }

    /// Undoes [`Btrfs::create_in`] of `dir` made by another process:
    /// unmounts `dir/mnt` if mounted, detaches every loop device of the
    /// image, deletes the image. Says what it could not do.
    pub fn remove(dir: &Path) -> Result<(), String> {
        let mnt = dir.join("mnt");
        let image = dir.join(IMAGE);
        let mut errors = Vec::new();
        if cmd("mountpoint").arg("-q").arg(&mnt).run().status.success() {
            errors.extend(unmount(&mnt).err());
        }
        // `losetup -j` prints `/dev/loopN: [dev]:inode (path)` per device.
        let devices = cmd("losetup").arg("-j").arg(&image).run().stdout_str();
        for dev in devices.lines().filter_map(|l| l.split_once(':')).map(|(dev, _)| dev) {
            errors.extend(detach(dev).err());
        }
        for removed in [std::fs::remove_file(&image), std::fs::remove_dir(&mnt)] {
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => errors.push(format!("{}: {e}", dir.display())),
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// The mountpoint (the top-level subvolume).
    pub fn mnt(&self) -> &Path {
        &self.mnt
    }

    /// Paths of all subvolumes, as `btrfs subvolume list` prints them.
    pub fn subvolumes(&self) -> Vec<String> {
        let out = cmd("btrfs").args(["subvolume", "list"]).arg(&self.mnt).ok();
        out.stdout_str().lines().filter_map(|line| line.split_once(" path ").map(|(_, path)| path.to_owned())).collect()
    }

    /// Subvolumes left behind by snaprsync, and the directories of their own
    /// they are made in (in `.snaprsync`, which itself may stay).
    pub fn leftover_snapshots(&self) -> Vec<String> {
        let mut left: Vec<String> = self.subvolumes().into_iter().filter(|p| p.contains(SNAPSHOT_MARK)).collect();
        if let Ok(entries) = std::fs::read_dir(self.mnt.join(".snaprsync")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let path = format!(".snaprsync/{name}");
                if name.contains(SNAPSHOT_MARK) && !left.iter().any(|l| l.starts_with(&path)) {
                    left.push(path);
                }
            }
        }
        left
    }

    /// Snaprsync's snapshots once any background removal has finished
    /// (waits up to 10 s for them to go).
    pub fn settled_leftovers(&self) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.leftover_snapshots();
            if left.is_empty() || std::time::Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn assert_no_snapshot_left(&self) {
        let left = self.settled_leftovers();
        assert!(left.is_empty(), "snaprsync left snapshots behind on {}: {left:?}", self.mnt.display());
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        // Drop must not panic: report and go on.
        for done in [unmount(&self.mnt), detach(&self.loopdev)] {
            if let Err(e) = done {
                eprintln!("btrfs fixture: {e}");
            }
        }
    }
}

/// Unmounts `mnt`, retrying while it is busy (a background snapshot removal
/// may still run), then lazily.
fn unmount(mnt: &Path) -> Result<(), String> {
    for _ in 0..20 {
        if cmd("umount").arg(mnt).run().status.success() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = cmd("umount").arg("-l").arg(mnt).run();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("cannot unmount {}\n{}", mnt.display(), out.report()))
    }
}

fn detach(loopdev: &str) -> Result<(), String> {
    let out = cmd("losetup").arg("-d").arg(loopdev).run();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("cannot detach {loopdev}\n{}", out.report()))
    }
}

/// Makes an empty subvolume at `path`.
pub fn create_subvolume(path: &Path) {
    cmd("btrfs").args(["subvolume", "create"]).arg(path).ok();
}

/// A read-only snapshot of the subvolume `origin` at `path`, as snaprsync makes them.
pub fn snapshot_ro(origin: &Path, path: &Path) {
    cmd("btrfs").args(["subvolume", "snapshot", "-r"]).arg(origin).arg(path).ok();
}

/// Whether `path` itself, not what a symlink there points to, is the root of a
/// subvolume (on btrfs those have inode number 256).
pub fn is_subvolume(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.ino() == 256)
}
