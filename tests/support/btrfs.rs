//! A fresh btrfs filesystem on a sparse loop image, mounted at a temp dir.
//! Dropping it unmounts and detaches the loop device, also during a panic.

use super::cmd::cmd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Btrfs {
    mnt: PathBuf,
    loopdev: String,
    // Last field: removed after the unmount in `Drop`.
    dir: tempfile::TempDir,
}

/// Marks a snapshot made by snaprsync in a subvolume path.
pub const SNAPSHOT_MARK: &str = "snaprsync-";

impl Btrfs {
    /// Creates a `size_mb` sparse image, formats and mounts it.
    pub fn new(size_mb: u64) -> Btrfs {
        let dir = super::tempdir("btrfs");
        let image = dir.path().join("btrfs.img");
        let file = std::fs::File::create(&image).expect("create image");
        file.set_len(size_mb * 1024 * 1024).expect("size image");
        drop(file);
        cmd("mkfs.btrfs").arg("-q").arg(&image).ok();
        let loopdev = cmd("losetup").args(["--find", "--show"]).arg(&image).ok().stdout_str().trim().to_owned();
        assert!(loopdev.starts_with("/dev/loop"), "losetup printed {loopdev:?}");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("create mountpoint");
        let fs = Btrfs { mnt, loopdev, dir };
        cmd("mount").args(["-t", "btrfs"]).arg(&fs.loopdev).arg(&fs.mnt).ok();
        fs
    }

    /// The mountpoint (the top-level subvolume).
    pub fn mnt(&self) -> &Path {
        &self.mnt
    }

    /// A directory for scratch files next to, not inside, the filesystem.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Paths of all subvolumes, as `btrfs subvolume list` prints them.
    pub fn subvolumes(&self) -> Vec<String> {
        let out = cmd("btrfs").args(["subvolume", "list"]).arg(&self.mnt).ok();
        out.stdout_str().lines().filter_map(|line| line.split_once(" path ").map(|(_, path)| path.to_owned())).collect()
    }

    /// Subvolumes left behind by snaprsync. `.snaprsync` itself may stay.
    pub fn leftover_snapshots(&self) -> Vec<String> {
        self.subvolumes().into_iter().filter(|p| p.contains(SNAPSHOT_MARK)).collect()
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
        // Drop must not panic: report and go on.
        let mut unmounted = false;
        for _ in 0..20 {
            if cmd("umount").arg(&self.mnt).run().status.success() {
                unmounted = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !unmounted {
            let out = cmd("umount").arg("-l").arg(&self.mnt).run();
            if !out.status.success() {
                eprintln!("btrfs fixture: cannot unmount {}\n{}", self.mnt.display(), out.report());
            }
        }
        let out = cmd("losetup").arg("-d").arg(&self.loopdev).run();
        if !out.status.success() {
            eprintln!("btrfs fixture: cannot detach {}\n{}", self.loopdev, out.report());
        }
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
