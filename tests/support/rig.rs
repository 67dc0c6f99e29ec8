//! One test's world, the fixture of every area: a btrfs source filesystem
//! with `data/`, a work dir on another filesystem for destinations and
//! configs, a snaprsync config file, and (unless built without) a private
//! sshd reachable as `snaphost`. [`Rig::build`] chooses the parts.

use std::path::{Path, PathBuf};
use testbed::btrfs::Btrfs;
use testbed::cmd::{cmd, Cmd, Output};
use testbed::sshd::{Sshd, HOST};

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
    sshd: Option<Sshd>,
    pub work: tempfile::TempDir,
    pub config: PathBuf,
}

/// What a test needs of its [`Rig`]; [`Builder::start`] makes it.
pub struct Builder {
    tag: String,
    size_mb: u64,
    sshd: bool,
    config: String,
    data: Option<Fill>,
}

/// What fills `data/`.
type Fill = Box<dyn FnOnce(&Path)>;

impl Builder {
    /// The size of the (sparse) btrfs image, in MiB.
    pub fn size(mut self, size_mb: u64) -> Builder {
        self.size_mb = size_mb;
        self
    }

    /// No sshd: the test runs snaprsync itself or through a local remote shell.
    pub fn without_sshd(mut self) -> Builder {
        self.sshd = false;
        self
    }

    /// What the config file holds after the log and state settings (instead
    /// of `on_snapshot_failure = "fail"`).
    pub fn config(mut self, extra: &str) -> Builder {
        self.config = extra.to_owned();
        self
    }

    /// Fills `data/` once it exists.
    pub fn data(mut self, fill: impl FnOnce(&Path) + 'static) -> Builder {
        self.data = Some(Box::new(fill));
        self
    }

    pub fn start(self) -> Rig {
        let fs = Btrfs::new(self.size_mb);
        let sshd = self.sshd.then(Sshd::start);
        let work = testbed::tempdir(&self.tag);
        let config = super::write_config(work.path(), &self.config);
        let rig = Rig { fs, sshd, work, config };
        std::fs::create_dir(rig.src()).expect("create source dir");
        if let Some(fill) = self.data {
            fill(&rig.src());
        }
        rig
    }
}

impl Rig {
    /// The usual world: a 400 MiB btrfs, an sshd, `on_snapshot_failure =
    /// "fail"`, an empty `data/`.
    pub fn new(tag: &str) -> Rig {
        Rig::build(tag).start()
    }

    /// The usual world, to change before [`Builder::start`]; `tag` names the work dir.
    pub fn build(tag: &str) -> Builder {
        Builder { tag: tag.to_owned(), size_mb: 400, sshd: true, config: "on_snapshot_failure = \"fail\"\n".to_owned(), data: None }
    }

    /// The sshd; a rig built without one has none to give.
    pub fn sshd(&self) -> &Sshd {
        self.sshd.as_ref().expect("this rig was built without an sshd")
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
        cmd("rsync").arg("-e").arg(self.sshd().rsh()).arg(format!("--rsync-path={}", self.rsync_path(remote)))
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
    pub fn ssh(&self, command: &str) -> Output {
        cmd("ssh").arg("-F").arg(self.sshd().ssh_config()).arg(HOST).arg(command).run()
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
        self.log().lines().filter(|l| l.contains("BTRFS_IOC_SNAP_CREATE_V2")).count()
    }

    /// Waits up to 20 s for a snapshot of snaprsync's to exist, i.e. for a
    /// backup to be under way.
    pub fn wait_for_snapshot(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.fs.leftover_snapshots().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no snapshot appeared\n--- snaprsync log ---\n{}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
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
    pub fn pull(&self, remote: Remote, extra: &[&str], dest: &Path) -> Output {
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
