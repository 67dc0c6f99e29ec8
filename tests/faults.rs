//! Fault injection: kills, signals, a dropped connection, a full filesystem,
//! concurrent runs and a corrupt journal, each repeated, each followed by a
//! count of the snapshots and journal entries left behind. It prints a table
//! (run with `--nocapture` to see it) and fails unless every leftover count is 0.
//! Needs root, btrfs-progs, rsync and sshd, like the end-to-end suite.
#![cfg(target_os = "linux")]

mod support;

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::btrfs::Btrfs;
use support::cmd::cmd;
use support::rig::Rig;

/// One row of the table.
struct Row {
    fault: &'static str,
    trials: usize,
    leftovers: usize,
    note: String,
}

/// A btrfs source with some data, a config with its own state dir and log.
struct Bench {
    fs: Btrfs,
    work: tempfile::TempDir,
    config: PathBuf,
}

impl Bench {
    fn new(size_mb: u64, data_mb: usize) -> Bench {
        let fs = Btrfs::new(size_mb);
        let work = support::tempdir("faults");
        let config = support::write_config(work.path(), "");
        let data = fs.mnt().join("data");
        fs::create_dir_all(data.join("sub")).unwrap();
        for i in 0..data_mb {
            fs::write(data.join(format!("sub/chunk{i:03}")), support::tree::pattern(1 << 20, i as u8)).unwrap();
        }
        fs::write(data.join("small"), "small\n").unwrap();
        Bench { fs, work, config }
    }

    fn state(&self) -> PathBuf {
        self.work.path().join("state")
    }

    /// `snaprsync -a [--bwlimit] data/ DEST` as a local client: it snapshots the source.
    fn spawn(&self, dest: &str, bwlimit_kb: u32) -> Child {
        let mut c = Command::new(support::snaprsync());
        c.arg(format!("--snap-config={}", self.config.display())).arg("-a");
        if bwlimit_kb > 0 {
            c.arg(format!("--bwlimit={bwlimit_kb}"));
        }
        c.arg(format!("{}/", self.fs.mnt().join("data").display()))
            .arg(self.work.path().join(dest))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Snapshots plus journal entries left, once background removal is done.
    fn leftovers(&self) -> usize {
        let entries = || {
            fs::read_dir(self.state())
                .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".toml")).count())
                .unwrap_or(0)
        };
        let snapshots = self.fs.settled_leftovers().len();
        // The journal entry goes right after the snapshots.
        let deadline = Instant::now() + Duration::from_secs(2);
        while entries() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        snapshots + entries()
    }

    fn sweep(&self) {
        cmd(support::snaprsync()).arg(format!("--snap-config={}", self.config.display())).arg("cleanup").ok();
    }

    fn log(&self) -> String {
        support::snaprsync_log(&self.config)
    }
}

/// A small deterministic generator (the seed is printed, so a run can be replayed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn signal(pid: u32, sig: &str) {
    // The process may already be gone at a late kill point; that is a trial too.
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).stderr(Stdio::null()).status();
}

/// The direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Waits until the run's rsync has started (snaprsync logs the command line).
fn wait_for_rsync(b: &Bench, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.log().contains(&format!("[{pid}] running /")) {
        assert!(Instant::now() < deadline, "rsync never started\n{}", b.log());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigkill_at_random_points(rng: &mut Lcg) -> Row {
    let b = Bench::new(400, 24);
    let trials = 30;
    let mut leftovers = 0;
    let mut killed_with_snapshot = 0;
    for t in 0..trials {
        let mut child = b.spawn(&format!("dst{t}"), 40_000);
        std::thread::sleep(Duration::from_millis(rng.below(900)));
        if !b.fs.leftover_snapshots().is_empty() {
            killed_with_snapshot += 1;
        }
        signal(child.id(), "KILL");
        child.wait().unwrap();
        // The rsync that outlived snaprsync is no concern of the sweep.
        b.sweep();
        leftovers += b.leftovers();
    }
    Row {
        fault: "SIGKILL at a random point, then a sweep",
        trials,
        leftovers,
        note: format!("{killed_with_snapshot} kills landed while a snapshot existed"),
    }
}

fn held_signals(rng: &mut Lcg, sig: &'static str, fault: &'static str) -> Row {
    let b = Bench::new(400, 24);
    let trials = 8;
    let mut leftovers = 0;
    let mut codes = Vec::new();
    for t in 0..trials {
        let mut child = b.spawn(&format!("dst{t}"), 40_000);
        std::thread::sleep(Duration::from_millis(rng.below(900)));
        signal(child.id(), sig);
        let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("snaprsync did not end after a signal");
        codes.push(
            status.code().map_or_else(|| format!("sig{:?}", std::os::unix::process::ExitStatusExt::signal(&status)), |c| c.to_string()),
        );
        // No sweep: the run itself must have removed everything.
        leftovers += b.leftovers();
    }
    codes.sort();
    codes.dedup();
    Row { fault, trials, leftovers, note: format!("statuses seen: {}", codes.join(" ")) }
}

fn kill_rsync() -> Row {
    let b = Bench::new(400, 24);
    let trials = 5;
    let mut leftovers = 0;
    for t in 0..trials {
        let mut child = b.spawn(&format!("dst{t}"), 20_000);
        wait_for_rsync(&b, child.id());
        for rsync in children(child.id()) {
            signal(rsync, "KILL");
        }
        let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("snaprsync did not end");
        assert_eq!(status.code(), Some(128 + 9), "killed rsync's status passes on\n{}", b.log());
        leftovers += b.leftovers();
    }
    Row { fault: "SIGKILL of rsync", trials, leftovers, note: "status 137 passed on".into() }
}

fn kill_ssh_client() -> Row {
    let rig = Rig::with_size("faults-ssh", 400);
    for i in 0..24 {
        fs::write(rig.src().join(format!("chunk{i}")), support::tree::pattern(1 << 20, i)).unwrap();
    }
    let trials = 3;
    let mut leftovers = 0;
    let mut slowest = Duration::ZERO;
    for t in 0..trials {
        let mut client = Command::new("rsync")
            .arg("-e")
            .arg(rig.sshd.rsh())
            .arg(format!("--rsync-path={}", rig.rsync_path(support::rig::Remote::Snaprsync)))
            .args(["-a", "--bwlimit=2000"])
            .arg(rig.remote_dir(&rig.src()))
            .arg(rig.dest(&format!("dst{t}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while rig.fs.leftover_snapshots().is_empty() {
            assert!(Instant::now() < deadline, "no snapshot appeared\n{}", rig.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        for ssh in children(client.id()) {
            signal(ssh, "KILL");
        }
        let killed = Instant::now();
        while !rig.fs.leftover_snapshots().is_empty() && killed.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        slowest = slowest.max(killed.elapsed());
        assert!(killed.elapsed() < Duration::from_secs(5), "snapshot still there 5 s after the ssh client died\n{}", rig.log());
        wait_timeout(&mut client, Duration::from_secs(10));
        leftovers += rig.fs.leftover_snapshots().len();
    }
    Row { fault: "SIGKILL of the ssh client", trials, leftovers, note: format!("snapshot gone after at most {slowest:.2?}") }
}

fn full_filesystem() -> Row {
    // A small image filled to the brim: the snapshot may or may not fit.
    let b = Bench::new(200, 4);
    let fill = b.fs.mnt().join("fill");
    let _ = Command::new("dd").args(["if=/dev/zero", "bs=1M"]).arg(format!("of={}", fill.display())).stderr(Stdio::null()).status();
    for i in 0..2000 {
        if fs::write(b.fs.mnt().join(format!("meta{i}")), [0u8; 2048]).is_err() {
            break;
        }
    }
    let trials = 4;
    let mut leftovers = 0;
    let mut codes = Vec::new();
    for t in 0..trials {
        let mut child = b.spawn(&format!("dst{t}"), 0);
        let status = wait_timeout(&mut child, Duration::from_secs(60)).expect("snaprsync hung on a full filesystem");
        codes.push(status.code().unwrap_or(-1).to_string());
        leftovers += b.leftovers();
    }
    codes.sort();
    codes.dedup();
    Row { fault: "full filesystem", trials, leftovers, note: format!("statuses seen: {}", codes.join(" ")) }
}

fn concurrent_runs() -> Row {
    let b = Bench::new(400, 8);
    let mut kids: Vec<Child> = (0..8).map(|t| b.spawn(&format!("dst{t}"), 20_000)).collect();
    let mut ok = 0;
    for k in &mut kids {
        if wait_timeout(k, Duration::from_secs(120)).is_some_and(|s| s.success()) {
            ok += 1;
        }
    }
    assert_eq!(ok, 8, "every concurrent run succeeds\n{}", b.log());
    let log = b.log();
    let mut stamps: Vec<&str> =
        log.lines().filter(|l| l.contains("btrfs subvolume snapshot -r")).filter_map(|l| l.rsplit('/').next()).collect();
    stamps.sort();
    stamps.dedup();
    assert_eq!(stamps.len(), 8, "each run has its own snapshot: {stamps:?}");
    for t in 0..8 {
        assert_eq!(fs::read_to_string(b.work.path().join(format!("dst{t}/small"))).unwrap(), "small\n");
    }
    Row {
        fault: "8 concurrent runs of one filesystem",
        trials: 8,
        leftovers: b.leftovers(),
        note: "8 distinct snapshots, 8 successes".into(),
    }
}

fn corrupt_journal() -> Row {
    let b = Bench::new(400, 2);
    fs::create_dir_all(b.state()).unwrap();
    fs::write(b.state().join("snaprsync-20260101T000000Z-p1.toml"), "stamp = \"snaprsync-2026").unwrap();
    fs::write(b.state().join("garbage.toml"), [0xffu8, 0x00, 0x13]).unwrap();
    let trials = 3;
    let mut leftovers = 0;
    for t in 0..trials {
        let mut child = b.spawn(&format!("dst{t}"), 0);
        let status = wait_timeout(&mut child, Duration::from_secs(60)).unwrap();
        assert!(status.success(), "a corrupt journal never fails a backup\n{}", b.log());
        leftovers += b.leftovers();
    }
    let aside = fs::read_dir(b.state()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".corrupt")).count();
    assert_eq!(aside, 2, "both corrupt files are set aside");
    assert!(b.log().contains("corrupt"), "the corruption is reported\n{}", b.log());
    Row { fault: "corrupt journal", trials, leftovers, note: "reported and set aside; backups succeed".into() }
}

#[test]
fn fault_injection_suite() {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs());
    let mut rng = Lcg(seed);
    let started = Instant::now();
    let rows = vec![
        sigkill_at_random_points(&mut rng),
        held_signals(&mut rng, "TERM", "SIGTERM at a random point"),
        held_signals(&mut rng, "INT", "SIGINT at a random point"),
        held_signals(&mut rng, "HUP", "SIGHUP at a random point"),
        kill_ssh_client(),
        kill_rsync(),
        full_filesystem(),
        concurrent_runs(),
        corrupt_journal(),
    ];
    let mut table = format!("\nfault injection (FAULT_SEED={seed}, {:.0?})\n", started.elapsed());
    let _ = writeln!(table, "| fault | trials | leftovers | note |\n|---|---|---|---|");
    for r in &rows {
        let _ = writeln!(table, "| {} | {} | {} | {} |", r.fault, r.trials, r.leftovers, r.note);
    }
    eprintln!("{table}");
    let total: usize = rows.iter().map(|r| r.leftovers).sum();
    assert_eq!(total, 0, "leftovers after faults:{table}");
}
