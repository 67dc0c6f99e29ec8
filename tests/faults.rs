//! Fault injection: kills, signals, a dropped connection, a full filesystem,
//! concurrent runs and a corrupt journal, each repeated, each followed by a
//! count of the snapshots and journal entries left behind. One test per
//! fault, which fails unless that count is 0. Each writes its row of the
//! table to `<target>/tmp/faults/NN-name.md` (NN: the table's order), which
//! `scripts/test.sh` prints under its header; `--nocapture` shows the rows here.
//! Needs btrfs-progs, rsync and sshd, like the end-to-end suite.
//!
//!     cargo test --features integration --test main faults::                 the whole table
//!     cargo test --features integration --test main faults::ssh_kill         one fault (FAULT_ONLY=ssh-kill before)
//!     FAULT_SEED=N cargo test --features integration --test main faults::    the random points of an earlier run
//!     SNAPRSYNC_UNDER_TEST=/path/to/snaprsync ...     another build, e.g. to see a fault fail
//!
//! The faults run one at a time, as they did in one test before: their
//! timings (removal within 5 s of a dropped connection) assume it.

use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::support::rig::{Remote, Rig};
use crate::support::{snaprsync, snaprsync_path, tree};
use testbed::cmd::cmd;

/// One row of the table.
struct Row {
    fault: &'static str,
    trials: usize,
    leftovers: usize,
    note: String,
    /// For dropped connections: from the fault to the snapshot's removal, each trial.
    removal: Vec<Duration>,
}

impl Row {
    fn new(fault: &'static str, trials: usize, leftovers: usize, note: impl Into<String>) -> Row {
        Row { fault, trials, leftovers, note: note.into(), removal: Vec::new() }
    }

    /// "median / max" of the removal times, or a dash.
    fn times(&self) -> String {
        let mut t = self.removal.clone();
        t.sort();
        match (t.get(t.len() / 2), t.last()) {
            (Some(m), Some(x)) => format!("{:.2} s / {:.2} s", m.as_secs_f64(), x.as_secs_f64()),
            _ => "—".into(),
        }
    }
}

/// The longest a snapshot may outlive a dropped connection.
const REMOVAL_LIMIT: Duration = Duration::from_secs(5);

/// A btrfs source of `size_mb` MiB whose `data/` holds `data_mb` MiB and a
/// small file, a config with its own state dir and log, no sshd.
fn bench(size_mb: u64, data_mb: usize) -> Rig {
    Rig::build("faults")
        .size(size_mb)
        .without_sshd()
        .config("")
        .data(move |data| {
            fs::create_dir_all(data.join("sub")).unwrap();
            for i in 0..data_mb {
                fs::write(data.join(format!("sub/chunk{i:03}")), tree::pattern(1 << 20, i as u8)).unwrap();
            }
            fs::write(data.join("small"), "small\n").unwrap();
        })
        .start()
}

fn state(b: &Rig) -> PathBuf {
    b.work.path().join("state")
}

/// `snaprsync -a [--bwlimit] data/ DEST` as a local client: it snapshots the source.
fn client(b: &Rig, dest: &str, bwlimit_kb: u32) -> testbed::cmd::Cmd {
    let mut c = cmd(snaprsync()).arg(format!("--snap-config={}", b.config.display())).arg("-a");
    if bwlimit_kb > 0 {
        c = c.arg(format!("--bwlimit={bwlimit_kb}"));
    }
    c.arg(format!("{}/", b.src().display())).arg(b.dest(dest))
}

fn spawn(b: &Rig, dest: &str, bwlimit_kb: u32) -> Child {
    client(b, dest, bwlimit_kb).spawn()
}

/// Snapshots plus journal entries left, once background removal is done.
fn left_behind(b: &Rig) -> usize {
    let entries =
        || fs::read_dir(state(b)).map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".toml")).count()).unwrap_or(0);
    let snapshots = b.fs.settled_leftovers().len();
    // The journal entry goes right after the snapshots.
    let deadline = Instant::now() + Duration::from_secs(2);
    while entries() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    snapshots + entries()
}

fn sweep(b: &Rig) {
    cmd(snaprsync()).arg(format!("--snap-config={}", b.config.display())).arg("cleanup").ok();
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
    let _ = cmd("kill").arg(format!("-{sig}")).arg(pid.to_string()).run();
}

/// The command name of process `pid`.
fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_owned())
}

/// Whether process `pid` still runs (a zombie does not).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
}

/// The direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Waits until the run's rsync runs: snaprsync logs its command line, then
/// starts it (through `snaprsync __child`, which becomes rsync), so the
/// log line alone can come before there is an rsync to kill.
fn wait_for_rsync(b: &Rig, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let rsync_runs = || children(pid).into_iter().any(|c| comm(c).as_deref() == Some("rsync"));
    while !b.log().contains(&format!("[{pid}] running /")) || !rsync_runs() {
        assert!(Instant::now() < deadline, "rsync never started\n{}", b.log());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until run `pid` has logged a line starting with `what`.
fn wait_for_log(b: &Rig, pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.log().contains(&format!("[{pid}] {what}")) {
        assert!(Instant::now() < deadline, "run {pid} never logged {what:?}\n{}", b.log());
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn sigkill_at_random_points(rng: &mut Lcg) -> Row {
    let b = bench(400, 24);
    let trials = 30;
    let mut leftovers = 0;
    let mut killed_with_snapshot = 0;
    let mut with_rsync = 0;
    let mut outlived = 0;
    for t in 0..trials {
        // Slow enough (3 s) that rsync would still be reading when snaprsync dies.
        let mut child = spawn(&b, &format!("dst{t}"), 8_000);
        std::thread::sleep(Duration::from_millis(rng.below(900)));
        if !b.fs.leftover_snapshots().is_empty() {
            killed_with_snapshot += 1;
        }
        let rsyncs: Vec<u32> = children(child.id()).into_iter().filter(|p| comm(*p).as_deref() == Some("rsync")).collect();
        signal(child.id(), "KILL");
        child.wait().unwrap();
        // rsync must not outlive snaprsync (its parent-death signal): it would
        // keep reading the snapshot and hold it busy for the sweep.
        let deadline = Instant::now() + Duration::from_secs(1);
        while rsyncs.iter().any(|p| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let survivors = rsyncs.iter().filter(|p| alive(**p)).count();
        outlived += survivors;
        with_rsync += usize::from(!rsyncs.is_empty());
        sweep(&b);
        leftovers += left_behind(&b) + survivors;
    }
    Row::new(
        "SIGKILL at a random point, then a sweep",
        trials,
        leftovers,
        format!("{killed_with_snapshot} kills landed while a snapshot existed, {with_rsync} while rsync ran; rsync outlived snaprsync {outlived} times"),
    )
}

/// Signals whose default action ends a process and that another process can
/// send. The first five end a run in order; the others are ignored.
const ENDING: &[&str] = &["HUP", "INT", "QUIT", "TERM", "XCPU"];
const IGNORED: &[&str] = &["USR1", "USR2", "PIPE", "ALRM", "VTALRM", "PROF", "XFSZ", "IO"];

/// Each signal of `sigs`, `each` times, at a random point of a run once it
/// holds signals (a snapshot exists from a few ms later). snaprsync
/// must never die of it; an ignored signal must not even stop the backup.
fn held_signals(rng: &mut Lcg, sigs: &[&'static str], each: usize, fault: &'static str) -> Row {
    let b = bench(400, 24);
    let mut leftovers = 0;
    let mut codes = Vec::new();
    let mut t = 0;
    for sig in sigs.iter().flat_map(|s| std::iter::repeat_n(*s, each)) {
        t += 1;
        let mut child = spawn(&b, &format!("dst{t}"), 40_000);
        // From the sweep on (signals are held from just before it) to the end.
        wait_for_log(&b, child.id(), "ioctl: BTRFS_IOC_GET_SUBVOL_ROOTREF");
        std::thread::sleep(Duration::from_millis(rng.below(700)));
        signal(child.id(), sig);
        let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("snaprsync did not end after a signal");
        let died = std::os::unix::process::ExitStatusExt::signal(&status);
        assert_eq!(died, None, "snaprsync died of SIG{sig}\n{}", b.log());
        if IGNORED.contains(&sig) {
            assert_eq!(status.code(), Some(0), "SIG{sig} is ignored: the backup goes on\n{}", b.log());
        }
        codes.push(status.code().map_or_else(|| "?".into(), |c| c.to_string()));
        // No sweep: the run itself must have removed everything.
        leftovers += left_behind(&b);
    }
    codes.sort();
    codes.dedup();
    Row::new(fault, t, leftovers, format!("statuses seen: {}", codes.join(" ")))
}

/// How long `b`'s snapshot outlived the fault at `fault_at` (trial `trial`,
/// where `what` happened); fails beyond [`REMOVAL_LIMIT`].
fn removal_after(b: &Rig, fault_at: Instant, trial: &str, what: &str) -> Duration {
    while !b.fs.leftover_snapshots().is_empty() && fault_at.elapsed() < 3 * REMOVAL_LIMIT {
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = fault_at.elapsed();
    assert!(took < REMOVAL_LIMIT, "{trial}: snapshot still there {took:.2?} after {what}\n{}", b.log());
    took
}

/// How a dropped-connection trial ends the backup server's rsync.
#[derive(Clone, Copy, PartialEq)]
enum Drop {
    /// SIGKILL while the server's rsync sleeps in `--bwlimit`.
    Kill,
    /// SIGSTOP until the server's rsync blocks writing, then SIGKILL.
    StopThenKill,
}

/// A pull through a remote shell without ssh (the server side runs snaprsync
/// as a child of the client, over pipes), whose client dies mid-transfer:
/// the snapshot must be gone within [`REMOVAL_LIMIT`] every time.
fn dropped_client(rng: &mut Lcg, how: Drop, fault: &'static str) -> Row {
    let b = bench(400, 48);
    let rsh = format!("{}/scripts/bench/local-rsh", env!("CARGO_MANIFEST_DIR"));
    let trials = 20;
    let mut leftovers = 0;
    let mut removal = Vec::new();
    for t in 0..trials {
        let mut client = cmd("rsync")
            .arg("-e")
            .arg(&rsh)
            .arg(format!("--rsync-path={}", snaprsync_path(&b.config)))
            .args(["-a", "--bwlimit=20000"])
            .arg(format!("x:{}/", b.src().display()))
            .arg(b.dest(&format!("dst{t}")))
            .spawn();
        b.wait_for_snapshot();
        std::thread::sleep(Duration::from_millis(200 + rng.below(1300)));
        if how == Drop::StopThenKill {
            signal(client.id(), "STOP");
            // Long enough for the pipe to fill and rsync to block writing.
            std::thread::sleep(Duration::from_millis(1000));
        }
        // The connection drops here.
        let fault_at = Instant::now();
        signal(client.id(), "KILL");
        client.wait().unwrap();
        removal.push(removal_after(&b, fault_at, &format!("trial {t}"), "the client died"));
        leftovers += left_behind(&b);
    }
    let signalled = b.log().matches("ignored SIGUSR").count();
    let mut row = Row::new(fault, trials, leftovers, format!("rsync signalled snaprsync (ignored) in {signalled} trials"));
    row.removal = removal;
    row
}

fn kill_rsync() -> Row {
    let b = bench(400, 24);
    let trials = 5;
    let mut leftovers = 0;
    for t in 0..trials {
        let mut child = spawn(&b, &format!("dst{t}"), 20_000);
        wait_for_rsync(&b, child.id());
        for rsync in children(child.id()) {
            signal(rsync, "KILL");
        }
        let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("snaprsync did not end");
        assert_eq!(status.code(), Some(128 + 9), "killed rsync's status passes on\n{}", b.log());
        leftovers += left_behind(&b);
    }
    Row::new("SIGKILL of rsync", trials, leftovers, "status 137 passed on")
}

fn kill_ssh_client(rng: &mut Lcg) -> Row {
    let rig = Rig::build("faults-ssh")
        .data(|data| {
            for i in 0..24 {
                fs::write(data.join(format!("chunk{i}")), tree::pattern(1 << 20, i)).unwrap();
            }
        })
        .start();
    let trials = 20;
    let mut leftovers = 0;
    let mut removal = Vec::new();
    for t in 0..trials {
        let mut client = rig
            .rsync(Remote::Snaprsync)
            .args(["-a", "--bwlimit=2000"])
            .arg(rig.remote_dir(&rig.src()))
            .arg(rig.dest(&format!("dst{t}")))
            .spawn();
        rig.wait_for_snapshot();
        std::thread::sleep(Duration::from_millis(200 + rng.below(1300)));
        for ssh in children(client.id()) {
            signal(ssh, "KILL");
        }
        removal.push(removal_after(&rig, Instant::now(), &format!("trial {t}"), "the ssh client died"));
        wait_timeout(&mut client, Duration::from_secs(10));
        leftovers += rig.fs.leftover_snapshots().len();
    }
    let mut row = Row::new("SIGKILL of the ssh client (real sshd)", trials, leftovers, "");
    row.removal = removal;
    row
}

fn full_filesystem() -> Row {
    // A small image filled to the brim: the snapshot may or may not fit.
    let b = bench(200, 4);
    let fill = b.fs.mnt().join("fill");
    let _ = cmd("dd").args(["if=/dev/zero", "bs=1M"]).arg(format!("of={}", fill.display())).run();
    for i in 0..2000 {
        if fs::write(b.fs.mnt().join(format!("meta{i}")), [0u8; 2048]).is_err() {
            break;
        }
    }
    let trials = 4;
    let mut leftovers = 0;
    let mut codes = Vec::new();
    for t in 0..trials {
        let mut child = spawn(&b, &format!("dst{t}"), 0);
        let status = wait_timeout(&mut child, Duration::from_secs(60)).expect("snaprsync hung on a full filesystem");
        codes.push(status.code().unwrap_or(-1).to_string());
        leftovers += left_behind(&b);
    }
    codes.sort();
    codes.dedup();
    Row::new("full filesystem", trials, leftovers, format!("statuses seen: {}", codes.join(" ")))
}

/// Rounds of 16 runs started at once: each sweeps while the others make,
/// expose and remove their snapshots (in the background, each handing its
/// removal to a detached remover), and must neither touch nor warn about what
/// a live run or a live remover has in the snapshot directory at any moment
/// of that. No run here dies, so a sweep that removes anything ("its run is
/// gone") is a second remover at work on a snapshot whose remover runs.
fn concurrent_runs() -> Row {
    const ROUNDS: usize = 10;
    const AT_ONCE: usize = 16;
    const STAGGER: Duration = Duration::from_millis(40);
    let b = bench(400, 8);
    let mut leftovers = 0;
    let mut stderr = Vec::new();
    for round in 0..ROUNDS {
        let outs: Vec<testbed::cmd::Output> = std::thread::scope(|s| {
            let b = &b;
            // Started 40 ms apart: the later runs sweep while the earlier
            // ones' removers are at work.
            let runs: Vec<_> = (0..AT_ONCE)
                .map(|t| {
                    s.spawn(move || {
                        std::thread::sleep(STAGGER * t as u32);
                        client(b, &format!("r{round}-dst{t}"), 20_000).run()
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let ok = outs.iter().filter(|o| o.code() == Some(0)).count();
        assert_eq!(ok, AT_ONCE, "round {round}: every concurrent run succeeds\n{}", b.log());
        stderr.extend(outs.iter().flat_map(|o| o.stderr.lines().map(str::to_owned)));
        for t in 0..AT_ONCE {
            assert_eq!(fs::read_to_string(b.dest(&format!("r{round}-dst{t}/small"))).unwrap(), "small\n");
        }
        leftovers += left_behind(&b);
    }
    let log = b.log();
    let mut stamps: Vec<&str> =
        log.lines().filter(|l| l.contains("BTRFS_IOC_SNAP_CREATE_V2")).filter_map(|l| l.rsplit('/').next()).collect();
    stamps.sort();
    stamps.dedup();
    assert_eq!(stamps.len(), AT_ONCE * ROUNDS, "each run has its own snapshot: {stamps:?}");
    let handed = log.matches("removal handed to pid").count();
    assert_eq!(handed, AT_ONCE * ROUNDS, "every run hands its removal to a remover\n{log}");
    let doubles: Vec<&str> = log.lines().filter(|l| l.contains("(its run is gone)")).collect();
    let alarms: Vec<&str> = log
        .lines()
        .filter(|l| {
            [
                "not a snapshot snaprsync made",
                "could not remove",
                "cannot start the background",
                "cannot hand the removal",
                "as its remover",
            ]
            .iter()
            .any(|a| l.contains(a))
        })
        .collect();
    eprintln!("concurrent: {handed} removals handed over, {} double removals, {} warnings", doubles.len(), stderr.len() + alarms.len());
    assert!(
        doubles.is_empty(),
        "{} of {handed} snapshots were removed by a sweep while their remover ran:\n{}",
        doubles.len(),
        doubles.join("\n")
    );
    assert!(stderr.is_empty(), "the runs warned:\n{}", stderr.join("\n"));
    assert!(alarms.is_empty(), "a run warned about what another run had made or removed:\n{}", alarms.join("\n"));
    Row::new(
        "16 concurrent runs of one filesystem, 10 rounds",
        AT_ONCE * ROUNDS,
        leftovers,
        "distinct snapshots, all succeed, each removed by its own remover alone (0 double removals), no warnings",
    )
}

/// The hand-off to the background remover, cut short: the run is killed
/// (SIGKILL) after it has recorded its remover and before it says go. The
/// remover must then end without touching the snapshot (the run never handed
/// it over), and the sweep that follows removes it once that remover is gone:
/// one remover, never two, never none. Five times.
#[test]
fn a_run_killed_in_the_hand_off_leaves_its_snapshot_to_one_sweep() {
    let b = bench(400, 2);
    let gate = b.work.path().join("gate");
    let held = b.work.path().join("gate.held");
    for t in 0..5 {
        let _ = fs::remove_file(&held);
        let mut run = client(&b, &format!("handoff{t}"), 0).env("SNAPRSYNC_FAULT", format!("hand-off:hold={}", gate.display())).spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !held.exists() {
            assert!(Instant::now() < deadline, "trial {t}: the run never reached the hand-off\n{}", b.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        // The entry names the remover now; it waits for the word.
        let entry = fs::read_dir(state(&b)).unwrap().flatten().find(|e| e.file_name().to_string_lossy().ends_with(".toml")).unwrap();
        let text = fs::read_to_string(entry.path()).unwrap();
        let remover: u32 =
            text.split("[remover]").nth(1).and_then(|r| r.split("pid = ").nth(1)).and_then(|p| p.lines().next()?.parse().ok()).unwrap();
        signal(run.id(), "KILL");
        run.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(remover) {
            assert!(Instant::now() < deadline, "trial {t}: the remover did not end when its run died");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(b.fs.leftover_snapshots().len(), 1, "trial {t}: the remover acted without the word\n{}", b.log());
        sweep(&b);
        assert_eq!(left_behind(&b), 0, "trial {t}\n{}", b.log());
    }
    let log = b.log();
    assert_eq!(log.matches("kept its removal").count(), 5, "{log}");
    assert_eq!(log.matches("background removal").count(), 0, "a remover removed what was not handed to it\n{log}");
}

fn corrupt_journal_runs() -> Row {
    let b = bench(400, 2);
    fs::create_dir_all(state(&b)).unwrap();
    fs::write(state(&b).join("snaprsync-20260101T000000Z-p1.toml"), "stamp = \"snaprsync-2026").unwrap();
    fs::write(state(&b).join("garbage.toml"), [0xffu8, 0x00, 0x13]).unwrap();
    let trials = 3;
    let mut leftovers = 0;
    for t in 0..trials {
        let mut child = spawn(&b, &format!("dst{t}"), 0);
        let status = wait_timeout(&mut child, Duration::from_secs(60)).unwrap();
        assert!(status.success(), "a corrupt journal never fails a backup\n{}", b.log());
        leftovers += left_behind(&b);
    }
    let aside = fs::read_dir(state(&b)).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".corrupt")).count();
    assert_eq!(aside, 2, "both corrupt files are set aside");
    assert!(b.log().contains("corrupt"), "the corruption is reported\n{}", b.log());
    Row::new("corrupt journal", trials, leftovers, "reported and set aside; backups succeed")
}

/// The seed of every fault's random points: `FAULT_SEED`, or the time.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs())
    })
}

/// Runs the fault `name`, row `order` of the table, while no other fault
/// runs; writes its row and fails on any leftover.
fn fault(order: u8, name: &str, run: impl FnOnce(&mut Lcg) -> Row) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    // A fault that failed still leaves the next one a clean start.
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let seed = seed();
    let started = Instant::now();
    let r = run(&mut Lcg(seed));
    let row = format!("| {} | {} | {} | {} | {} |", r.fault, r.trials, r.leftovers, r.times(), r.note);
    eprintln!("{row}\n(FAULT_SEED={seed}, {:.0?})", started.elapsed());
    // For the test script to show: the README's table comes from these rows.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("faults");
    let _ = fs::create_dir_all(&dir);
    let _ = fs::write(dir.join(format!("{order:02}-{name}.md")), format!("{row}\n"));
    assert_eq!(r.leftovers, 0, "leftovers after the fault (FAULT_SEED={seed}):\n{row}");
}

#[test]
fn sigkill() {
    fault(1, "sigkill", sigkill_at_random_points);
}

#[test]
fn ending_signals() {
    fault(2, "ending-signals", |r| held_signals(r, ENDING, 4, "HUP, INT, QUIT, TERM, XCPU at a random point"));
}

#[test]
fn ignored_signals() {
    fault(3, "ignored-signals", |r| held_signals(r, IGNORED, 3, "USR1, USR2, PIPE, ALRM, VTALRM, PROF, XFSZ, IO at a random point"));
}

#[test]
fn bwlimit_kill() {
    fault(4, "bwlimit-kill", |r| dropped_client(r, Drop::Kill, "client killed while rsync sleeps in --bwlimit"));
}

#[test]
fn stop_kill() {
    fault(5, "stop-kill", |r| dropped_client(r, Drop::StopThenKill, "client stopped (rsync blocks writing), then killed"));
}

#[test]
fn ssh_kill() {
    fault(6, "ssh-kill", kill_ssh_client);
}

#[test]
fn rsync_kill() {
    fault(7, "rsync-kill", |_| kill_rsync());
}

#[test]
fn full_fs() {
    fault(8, "full-fs", |_| full_filesystem());
}

#[test]
fn concurrent() {
    fault(9, "concurrent", |_| concurrent_runs());
}

#[test]
fn corrupt_journal() {
    fault(10, "corrupt-journal", |_| corrupt_journal_runs());
}
