//! One test's world: a btrfs source filesystem, a private sshd reachable as
//! `snaphost`, a work dir on another filesystem for destinations, and a
//! snaprsync config file.

use super::btrfs::Btrfs;
use super::cmd::{cmd, Cmd};
use super::sshd::{Sshd, HOST};
use std::path::{Path, PathBuf};

/// What the remote side runs in place of rsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remote {
    /// snaprsync with the rig's config.
    Snaprsync,
    /// The real rsync, reading the live tree.
    Plain,
}

pub struct Rig {
    pub fs: Btrfs,
    pub sshd: Sshd,
    pub work: tempfile::TempDir,
    pub config: PathBuf,
}

impl Rig {
    pub fn new(tag: &str) -> Rig {
        Rig::with_size(tag, 400)
    }

    /// A rig whose (sparse) btrfs image has `size_mb` MiB.
    pub fn with_size(tag: &str, size_mb: u64) -> Rig {
        let fs = Btrfs::new(size_mb);
        let sshd = Sshd::start();
        let work = super::tempdir(tag);
        let config = super::write_config(work.path(), "on_snapshot_failure = \"fail\"\n");
        std::fs::create_dir(fs.mnt().join("data")).expect("create source dir");
        Rig { fs, sshd, work, config }
    }

    /// The source directory on btrfs: `<mnt>/data`.
    pub fn src(&self) -> PathBuf {
        self.fs.mnt().join("data")
    }

    /// A fresh path under the work dir (not created).
    pub fn dest(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `--rsync-path` value for `remote`.
    pub fn rsync_path(&self, remote: Remote) -> String {
        match remote {
            Remote::Snaprsync => super::snaprsync_path(&self.config),
            Remote::Plain => "/usr/bin/rsync".to_owned(),
        }
    }

    /// `rsync -e <ssh -F ..> --rsync-path=<remote>`; add options and paths.
    pub fn rsync(&self, remote: Remote) -> Cmd {
        cmd("rsync").arg("-e").arg(self.sshd.rsh()).arg(format!("--rsync-path={}", self.rsync_path(remote)))
    }

    /// `snaphost:<path>`.
    pub fn remote_path(&self, path: &Path) -> String {
        format!("{HOST}:{}", path.display())
    }

    /// `snaphost:<path>/` — the contents of a directory.
    pub fn remote_dir(&self, path: &Path) -> String {
        format!("{HOST}:{}/", path.display())
    }

    /// Runs `command` (one shell command line) on `snaphost` through ssh.
    pub fn ssh(&self, command: &str) -> super::cmd::Output {
        cmd("ssh").arg("-F").arg(self.sshd.ssh_config()).arg(HOST).arg(command).run()
    }

    /// Where snaprsync logs.
    pub fn log_path(&self) -> PathBuf {
        self.config.with_file_name("snaprsync.log")
    }

    /// snaprsync's log, for failure messages.
    pub fn log(&self) -> String {
        super::snaprsync_log(&self.config)
    }

    /// How many read-only snapshots snaprsync's log says it took so far
    /// (it logs every external command line it runs).
    pub fn snapshots_taken(&self) -> usize {
        self.log().lines().filter(|l| l.contains("btrfs subvolume snapshot -r")).count()
    }

    /// Runs `f` (a backup through snaprsync) and asserts that snaprsync took
    /// a snapshot for it and removed it again.
    pub fn assert_snapshotted<T>(&self, what: &str, f: impl FnOnce() -> T) -> T {
        let before = self.snapshots_taken();
        let out = f();
        assert!(self.snapshots_taken() > before, "{what}: snaprsync took no snapshot\n--- snaprsync log ---\n{}", self.log());
        self.fs.assert_no_snapshot_left();
        out
    }

    /// Pulls `src/` into a new `dest` with `rsync -a` plus `extra`, asserting success.
    pub fn pull(&self, remote: Remote, extra: &[&str], dest: &Path) -> super::cmd::Output {
        let run = || {
            let out = self.rsync(remote).arg("-a").args(extra).arg(self.remote_dir(&self.src())).arg(dest).run();
            assert!(out.status.success(), "pull through {remote:?} failed\n{}\n--- snaprsync log ---\n{}", out.report(), self.log());
            out
        };
        match remote {
            Remote::Snaprsync => self.assert_snapshotted("pull", run),
            Remote::Plain => {
                let before = self.snapshots_taken();
                let out = run();
                assert_eq!(self.snapshots_taken(), before, "a plain rsync pull must not involve snaprsync");
                out
            }
        }
    }
}
