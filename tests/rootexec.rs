//! `snaprsync exec` on a root-filesystem volume, in a Fedora-like layout made
//! on a btrfs loop image: subvolume `root` is `/` and subvolume `home` is
//! `/home` of a private mount namespace whose root has been pivoted to
//! `root` (`/proc`, `/sys`, `/dev` and `/run` mounted, a few files of `/etc`
//! copied). Its `/usr` is either a copy in `root` of the programs the test
//! runs and their libraries (so they are found in the snapshot), or the
//! host's `/usr` bound in read-only (a separate `/usr`, shown live). snaprsync runs there as it
//! would on such a machine. Writers outside keep changing a counter pair in
//! `/` (`/etc/pair/a`, `/etc/pair/b`), another in `/home/pair`, and the
//! torture series in `/etc/t` and `/home/t`. The command reads the snapshot
//! under the usual names, frozen (what is written during its run is not
//! seen), each volume one instant; the same command without snaprsync reads
//! the live, changing files (so the checks can fail). No snapshot is left,
//! also after `kill -9` of snaprsync and the next run's sweep. restic backs
//! up `/` from its snapshot. Needs root, btrfs-progs, util-linux (`unshare`,
//! `pivot_root`), tar and restic.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testbed::btrfs::{create_subvolume, Btrfs};
use testbed::cmd::{cmd, Cmd, Output};
use testbed::torture::{self, Writer};

/// What the private namespace is made of before snaprsync runs in it: the
/// image's `root` at `N`, `home` at `N/home`, the host's `/usr` read-only,
/// the API filesystems, snaprsync's binary; then `pivot_root` into `N` and
/// the old root detached. `$1` is the image's device, `$2` `N`, `$3` the
/// binary; the rest is run there.
const ENTER: &str = r#"set -e
dev=$1 n=$2 bin=$3; shift 3
mount -o subvol=root "$dev" "$n"
mount -o subvol=home "$dev" "$n/home"
if [ "$USR" = mounted ]; then mount --bind /usr "$n/usr"; mount -o remount,bind,ro "$n/usr"; fi
mount -t proc proc "$n/proc"
mount --rbind /dev "$n/dev"
mount --rbind /sys "$n/sys"
mount -t tmpfs tmpfs "$n/run"
mount --bind "$bin" "$n/work/snaprsync"
cd "$n"; mkdir -p old; pivot_root . old; umount -l /old; rmdir /old
cd /
exec "$@"
"#;

/// Where the layout's `/usr` is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Usr {
    /// In `root`: the programs the test runs and their libraries, copied.
    Copied,
    /// The host's, bound in read-only: a mount of its own.
    Mounted,
}

/// The programs a [`Usr::Copied`] layout holds.
const PROGRAMS: &[&str] = &[
    "/usr/bin/sh",
    "/usr/bin/dash",
    "/usr/bin/cat",
    "/usr/bin/sleep",
    "/usr/bin/touch",
    "/usr/bin/tar",
    "/usr/bin/umount",
    "/usr/bin/rmdir",
    "/usr/bin/ls",
    "/usr/bin/wc",
    "/usr/bin/restic",
];

/// Copies `program` and the libraries `ldd` lists into `root` at their own
/// paths (the host's symlinks along the way made again, their targets copied).
fn install(root: &Path, program: &Path) {
    let ldd = cmd("ldd").arg(program).run().stdout_str();
    let libs = ldd.lines().filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/'))).map(PathBuf::from);
    let inside = |p: &Path| root.join(p.strip_prefix("/").unwrap());
    for f in std::iter::once(program.to_owned()).chain(libs) {
        // The name with its directories resolved (`/lib64` is `usr/lib64`), then the file.
        let named = f.parent().unwrap().canonicalize().unwrap().join(f.file_name().unwrap());
        let real = f.canonicalize().unwrap();
        fs::create_dir_all(inside(&named).parent().unwrap()).unwrap();
        if named != real && fs::symlink_metadata(inside(&named)).is_err() {
            std::os::unix::fs::symlink(fs::read_link(&named).unwrap(), inside(&named)).unwrap();
        }
        fs::create_dir_all(inside(&real).parent().unwrap()).unwrap();
        if !inside(&real).exists() {
            fs::copy(&real, inside(&real)).unwrap_or_else(|e| panic!("{}: {e}", real.display()));
        }
    }
}

/// The layout and the writers.
struct Fedora {
    fs: Btrfs,
    usr: Usr,
    dev: String,
    tmp: tempfile::TempDir,
    newroot: PathBuf,
    stop: Arc<AtomicBool>,
    pairs: Arc<AtomicU64>,
    pair_thread: Option<std::thread::JoinHandle<()>>,
    torture: Vec<Writer>,
}

impl Drop for Fedora {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.pair_thread.take() {
            let _ = t.join();
        }
        self.torture.clear();
    }
}

/// Writes `n` to `path` whole (a temporary file renamed over it).
fn put(path: &Path, n: u64) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("{n}\n")).unwrap();
    fs::rename(&tmp, path).unwrap();
}

impl Fedora {
    /// `state_dir` as the layout's snaprsync has it.
    fn new(usr: Usr, state_dir: &str) -> Fedora {
        let fs = Btrfs::new(512);
        let dev = cmd("findmnt").args(["-n", "-o", "SOURCE"]).arg(fs.mnt()).ok().stdout_str().trim().to_owned();
        let root = fs.mnt().join("root");
        create_subvolume(&root);
        create_subvolume(&fs.mnt().join("home"));
        for d in ["usr", "proc", "sys", "dev", "run", "tmp", "var/tmp", "home", "etc/pair", "work", "root"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for l in ["bin", "lib", "lib64", "sbin"] {
            match fs::read_link(Path::new("/").join(l)) {
                Ok(to) => std::os::unix::fs::symlink(to, root.join(l)).unwrap(),
                Err(_) => panic!("/{l} is not a symlink into /usr on this host: the layout needs merged /usr"),
            }
        }
        for f in ["passwd", "group", "nsswitch.conf", "ld.so.cache"] {
            let _ = fs::copy(Path::new("/etc").join(f), root.join("etc").join(f));
        }
        fs::write(root.join("work/snaprsync"), "").unwrap();
        if usr == Usr::Copied {
            // The binary is bound in from the build; its libraries are the snapshot's.
            let programs = PROGRAMS.iter().map(PathBuf::from).chain([PathBuf::from(crate::support::snaprsync())]);
            programs.for_each(|p| install(&root, &p));
            let _ = fs::remove_file(root.join(Path::new(crate::support::snaprsync()).strip_prefix("/").unwrap()));
        }
        fs::write(
            root.join("work/cfg.toml"),
            format!("log_file = \"/work/snaprsync.log\"\nlog_level = \"debug\"\nstate_dir = \"{state_dir}\"\n"),
        )
        .unwrap();
        fs::create_dir_all(fs.mnt().join("home/pair")).unwrap();
        let tmp = testbed::tempdir("rootexec");
        let newroot = tmp.path().join("newroot");
        fs::create_dir(&newroot).unwrap();
        let mut f = Fedora {
            fs,
            usr,
            dev,
            tmp,
            newroot,
            stop: Arc::new(AtomicBool::new(false)),
            pairs: Arc::new(AtomicU64::new(0)),
            pair_thread: None,
            torture: Vec::new(),
        };
        f.start_pairs();
        f
    }

    /// A path of the layout, as the host reaches it (`/etc/x` is `root/etc/x`).
    fn host(&self, path: &str) -> PathBuf {
        let rel = path.trim_start_matches('/');
        match rel.strip_prefix("home") {
            Some(rest) => self.fs.mnt().join("home").join(rest.trim_start_matches('/')),
            None => self.fs.mnt().join("root").join(rel),
        }
    }

    /// The counter pairs, round n: `/etc/pair/a`, `/etc/pair/b`, then
    /// `/home/pair/a`, `/home/pair/b`. At any instant a volume's `b` is its
    /// `a` or one less.
    fn start_pairs(&mut self) {
        let files: Vec<PathBuf> = ["/etc/pair/a", "/etc/pair/b", "/home/pair/a", "/home/pair/b"].iter().map(|p| self.host(p)).collect();
        for f in &files {
            put(f, 0);
        }
        let (stop, pairs) = (self.stop.clone(), self.pairs.clone());
        self.pair_thread = Some(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                for f in &files {
                    put(f, n);
                }
                pairs.store(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        }));
    }

    fn start_torture(&mut self) {
        let cfg = torture::Config { files: 100, size: 16 * 1024 };
        for d in ["/etc/t", "/home/t"] {
            self.torture.push(Writer::start(&self.host(d), cfg).unwrap());
        }
    }

    /// `COMMAND...` run in the layout's namespace.
    fn inside(&self, command: &[&str]) -> Cmd {
        cmd("unshare")
            .env("USR", if self.usr == Usr::Mounted { "mounted" } else { "copied" })
            .args(["-m", "--propagation", "private", "sh", "-c", ENTER, "enter"])
            .arg(&self.dev)
            .arg(&self.newroot)
            .arg(crate::support::snaprsync())
            .args(command)
    }

    /// `snaprsync exec PATHS -- COMMAND...` run in the layout's namespace.
    fn exec(&self, paths: &[&str], command: &[&str]) -> Cmd {
        let mut words = vec!["/work/snaprsync", "--snap-config=/work/cfg.toml", "exec"];
        words.extend(paths);
        words.push("--");
        words.extend(command);
        self.inside(&words)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.host("/work/snaprsync.log")).unwrap_or_default()
    }

    fn assert_no_snapshot_left(&self, what: &str) {
        let left = self.fs.settled_leftovers();
        assert!(left.is_empty(), "{what}: snapshots left: {left:?}\n--- log ---\n{}", self.log());
    }
}

/// The command of the `/` test: each volume's counter pair read twice, 0.3 s
/// apart (`b` read 50 ms after `a`, so that a live read sees them apart),
/// then what it sees live and what it cannot write, then a tar of `/`.
const LOOK: &str = r#"pair() { a=$(cat $1/a); sleep 0.05; b=$(cat $1/b); echo "$a $b"; }
echo "root1 $(pair /etc/pair)"; echo "home1 $(pair /home/pair)"
sleep 0.3
echo "root2 $(pair /etc/pair)"; echo "home2 $(pair /home/pair)"
test -r /proc/self/status && echo proc-live
echo x > /dev/null && echo dev-live
touch /tmp/from-command && echo tmp-writable
touch /etc/pair/new 2>/dev/null || echo root-read-only
tar --one-file-system -cf /tmp/root.tar / 2>/tmp/tar.err; echo "tar $?"
echo "in-state-dir $(ls -A /run/snaprsync/exec-root | wc -l)"
"#;

/// Each line `NAME a b` of `out`, by name.
fn pair(out: &Output, name: &str) -> (u64, u64) {
    let text = out.stdout_str();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name} line\n{}", out.report()));
    let n: Vec<u64> = line.split_whitespace().skip(1).map(|w| w.parse().unwrap()).collect();
    (n[0], n[1])
}

/// One instant of a counter pair: `b` is `a` or one less.
fn one_instant((a, b): (u64, u64)) -> bool {
    a == b || a == b + 1
}

/// `snaprsync exec / -- sh -c LOOK`: the command's `/` is the snapshot of the
/// root volume under its usual names, frozen and one instant; `/proc`, `/dev`,
/// `/tmp` and `/home` (a volume not named) are live; `/` is read-only; a tar
/// of `/` holds nothing of `/proc`; the state directory (where the new root
/// is built) is on the live `/run`, and the new root is not seen in it. The programs and their libraries are the
/// snapshot's (this `/usr` is a directory of `/`). The same command without snaprsync sees
/// the pair move and apart, so the checks can fail.
#[test]
fn exec_of_root_reads_its_snapshot_under_the_usual_names() {
    let f = Fedora::new(Usr::Copied, "/run/snaprsync");
    while f.pairs.load(Ordering::SeqCst) < 5 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = f.exec(&["/"], &["sh", "-c", LOOK]).run();
    assert!(out.status.success(), "{}\n--- log ---\n{}", out.report(), f.log());
    let (r1, r2) = (pair(&out, "root1"), pair(&out, "root2"));
    assert_eq!(r1, r2, "the snapshot of / changed during the command's run\n{}", out.report());
    assert!(one_instant(r1), "/ is not one instant: {r1:?}\n{}", out.report());
    assert!(f.pairs.load(Ordering::SeqCst) > r1.0 + 10, "the writer did not go on meanwhile");
    // /home is another volume, not named: shown live, as the documentation says.
    assert_ne!(pair(&out, "home1"), pair(&out, "home2"), "/home (not named) is shown live\n{}", out.report());
    // The new root is built in the state directory, on the live /run: not shown inside itself.
    for seen in ["proc-live", "dev-live", "tmp-writable", "root-read-only", "tar 0", "in-state-dir 0"] {
        assert!(out.stdout_str().lines().any(|l| l == seen), "{seen} missing\n{}\n--- log ---\n{}", out.report(), f.log());
    }
    assert!(f.host("/tmp/from-command").exists(), "/tmp is the live one");
    let list = cmd("tar").arg("-tf").arg(f.host("/tmp/root.tar")).ok().stdout_str();
    assert!(list.lines().any(|l| l == "etc/pair/a"), "the tar of / holds /etc\n{list}");
    let from_proc: Vec<&str> = list.lines().filter(|l| l.starts_with("proc/") && *l != "proc/").collect();
    assert!(from_proc.is_empty(), "the tar of / holds {} entries of /proc: {:?}", from_proc.len(), &from_proc[..from_proc.len().min(5)]);
    assert!(!list.lines().any(|l| l.starts_with("home/pair")), "the tar of / with --one-file-system crossed into /home");
    // The programs and their libraries came from the snapshot: /usr is not a mount here.
    let log = f.log();
    let shown: Vec<&str> = log.lines().find_map(|l| l.split_once("shown live: ")).map(|(_, w)| w.split(' ').collect()).unwrap_or_default();
    assert_eq!(shown, ["/dev", "/home", "/proc", "/run", "/sys", "/tmp", "/var/tmp", "/work/snaprsync"], "{log}");
    assert!(list.lines().any(|l| l == "usr/bin/tar"), "the tar of / holds /usr, which is on /");
    f.assert_no_snapshot_left("exec /");

    // Without snaprsync the same command reads the live files: up to 5 tries
    // (a loaded machine may stall the writer for one), each check caught once.
    let (mut moved, mut apart, mut tries) = (false, false, Vec::new());
    for _ in 0..5 {
        let live = f.inside(&["sh", "-c", LOOK]).run();
        let (l1, l2) = (pair(&live, "root1"), pair(&live, "root2"));
        assert!(live.stdout_str().lines().all(|l| l != "root-read-only"), "the live / is writable");
        moved |= l1 != l2;
        apart |= !one_instant(l1) || !one_instant(l2);
        tries.push((l1, l2));
        if moved && apart {
            break;
        }
    }
    assert!(moved, "no live read moved: the frozen check proves nothing: {tries:?}");
    assert!(apart, "no live read was apart: the instant check proves nothing: {tries:?}");
}

/// `snaprsync exec /etc /home -- tar`: two tars of `/etc` and `/home` 0.3 s
/// apart are the same (frozen), each volume's torture series and counter pair
/// one instant, while the writers go on; the same without snaprsync differs.
/// `/usr` is a mount of its own here: shown live, tar and its libraries are found.
/// Across the two volumes btrfs gives no one instant (two subvolumes are two
/// snapshots): what the cross pair showed is printed, not asserted.
#[test]
fn exec_of_etc_and_home_on_a_root_volume_tars_one_frozen_copy() {
    let mut f = Fedora::new(Usr::Mounted, "/work/state");
    f.start_torture();
    f.torture.iter().for_each(|w| w.wait_for(2));
    let tars = "tar -cf /tmp/one.tar /etc/t /etc/pair /home/t /home/pair 2>/dev/null; sleep 0.3; \
                tar -cf /tmp/two.tar /etc/t /etc/pair /home/t /home/pair 2>/dev/null; echo done";
    let check = |what: &str| -> (Vec<u8>, Vec<u8>, String) {
        let (one, two) = (fs::read(f.host("/tmp/one.tar")).unwrap(), fs::read(f.host("/tmp/two.tar")).unwrap());
        let dir = f.tmp.path().join(what);
        fs::create_dir_all(&dir).unwrap();
        cmd("tar").arg("-xf").arg(f.host("/tmp/one.tar")).arg("-C").arg(&dir).ok();
        let mut verdicts = String::new();
        for v in ["etc", "home"] {
            let t = torture::check(&dir.join(v).join("t")).unwrap();
            let p = |n: &str| fs::read_to_string(dir.join(v).join("pair").join(n)).unwrap().trim().parse::<u64>().unwrap();
            verdicts.push_str(&format!("{v}: {t}; pair {} {}; {}\n", p("a"), p("b"), one_instant((p("a"), p("b")))));
        }
        let cross = |v: &str| fs::read_to_string(dir.join(v).join("pair/a")).unwrap().trim().to_owned();
        verdicts.push_str(&format!("cross: /etc/pair/a {} /home/pair/a {}\n", cross("etc"), cross("home")));
        (one, two, verdicts)
    };
    let before = f.torture[0].generation();
    let out = f.exec(&["/etc", "/home"], &["sh", "-c", tars]).run();
    assert!(out.status.success() && out.stdout_str() == "done\n", "{}\n--- log ---\n{}", out.report(), f.log());
    assert!(f.torture[0].generation() > before + 1, "the writer did not go on during the run");
    let (one, two, verdicts) = check("through");
    eprintln!("through snaprsync:\n{verdicts}");
    assert!(one == two, "the two tars differ: the command did not read one frozen copy\n{verdicts}");
    assert!(!verdicts.contains("torn") && !verdicts.contains("false"), "a volume is not one instant:\n{verdicts}\n{}", f.log());
    assert_eq!(f.log().matches("BTRFS_IOC_SNAP_CREATE_V2").count(), 2, "one snapshot each of / and /home\n{}", f.log());
    f.assert_no_snapshot_left("exec /etc /home");

    // Up to 5 tries: a loaded machine may stall the writers for one.
    let differ = (0..5).any(|n| {
        let live = f.inside(&["sh", "-c", tars]).run();
        assert!(live.status.success(), "{}", live.report());
        let (one, two, verdicts) = check(&format!("live-{n}"));
        eprintln!("live:\n{verdicts}");
        one != two
    });
    assert!(differ, "two live tars 0.3 s apart were the same 5 times: the frozen check proves nothing");
}

/// `kill -9` of snaprsync while the command runs on the snapshot of `/`: the
/// command dies with it (its parent-death signal), the snapshot stays until
/// the next run's sweep, which leaves nothing.
#[test]
fn a_killed_exec_of_root_is_swept_by_the_next_run() {
    let f = Fedora::new(Usr::Mounted, "/work/state");
    let mut child = f.exec(&["/", "/home"], &["sh", "-c", "echo $$ > /tmp/command.pid; exec sleep 30"]).spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.fs.leftover_snapshots().len() < 2 || !f.host("/tmp/command.pid").exists() {
        assert!(Instant::now() < deadline, "no snapshots made\n{}", f.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(f.fs.leftover_snapshots().len(), 2, "the killed run's snapshots are there until a sweep");
    let pid = fs::read_to_string(f.host("/tmp/command.pid")).unwrap().trim().to_owned();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(!cmdline.starts_with(b"sleep\0"), "the command (pid {pid}) outlived snaprsync");
    let out = f.exec(&["/"], &["true"]).run();
    assert!(out.status.success(), "{}\n--- log ---\n{}", out.report(), f.log());
    f.assert_no_snapshot_left("the run after kill -9");
}

/// restic of `/` through `snaprsync exec / -- restic backup --one-file-system
/// /`, as README shows it, while the torture writer rewrites `/etc/t`: restic
/// (a program of the snapshot) writes its repository and its temporary pack
/// files in the live `/tmp`, its cache in `/root/.cache` cannot be made (the
/// snapshot is read-only) and it goes on without; the restored `/etc/t` is
/// one instant, and the snapshot holds nothing of `/proc`, `/sys` or `/dev`.
#[test]
fn restic_backs_up_root_from_its_snapshot() {
    const PASSWORD: &str = "snaprsync-test";
    let mut f = Fedora::new(Usr::Copied, "/work/state");
    let repo = f.host("/tmp/repo");
    cmd("restic").env("RESTIC_PASSWORD", PASSWORD).arg("-r").arg(&repo).args(["-q", "init"]).ok();
    let cfg = torture::Config { files: 100, size: 16 * 1024 };
    f.torture.push(Writer::start(&f.host("/etc/t"), cfg).unwrap());
    f.torture[0].wait_for(2);
    let before = f.torture[0].generation();
    let out = f
        .exec(&["/"], &["restic", "-r", "/tmp/repo", "backup", "--one-file-system", "/"])
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("HOME", "/root")
        .run();
    assert!(out.status.success(), "{}\n--- log ---\n{}", out.report(), f.log());
    assert!(f.torture[0].generation() > before, "the writer did not go on during the backup");
    assert!(out.stderr.contains("/root/.cache: read-only file system"), "restic's cache is on the read-only snapshot\n{}", out.report());
    let restore = f.tmp.path().join("restored");
    let restic = |args: &[&str]| cmd("restic").env("RESTIC_PASSWORD", PASSWORD).arg("-r").arg(&repo).arg("-q").args(args);
    restic(&["restore", "latest", "--target"]).arg(&restore).ok();
    let verdict = torture::check(&restore.join("etc/t")).unwrap();
    assert!(verdict.consistent(), "restic's copy of /etc/t: {verdict}\n{}", out.report());
    let listed = restic(&["ls", "latest"]).ok().stdout_str();
    let api: Vec<&str> = listed.lines().filter(|l| ["/proc/", "/sys/", "/dev/"].iter().any(|p| l.starts_with(p))).collect();
    assert!(api.is_empty(), "the backup holds {} entries of /proc, /sys or /dev: {:?}", api.len(), &api[..api.len().min(5)]);
    assert!(listed.lines().any(|l| l == "/usr/bin/restic"), "the backup of / holds /usr (on /)");
    assert!(!listed.lines().any(|l| l.starts_with("/tmp/repo/")), "the live /tmp is another filesystem: not in the backup");
    eprintln!("restic of /: {verdict}; {} entries; its stderr: {}", listed.lines().count(), out.stderr);
    f.assert_no_snapshot_left("restic of /");
}

/// Through the new root, COMMAND's status and stdout are its own, a relative
/// path is read from the snapshot (the working directory is entered again by
/// its path in the new root), and a COMMAND that is not there ends with 82
/// and one stderr line.
#[test]
fn status_stdout_and_working_directory_pass_through_the_new_root() {
    let f = Fedora::new(Usr::Copied, "/work/state");
    let run = "cd /etc/pair && exec /work/snaprsync --snap-config=/work/cfg.toml exec / -- sh -c 'pwd; cat a; sleep 0.3; cat a; exit 7'";
    let out = f.inside(&["sh", "-c", run]).run();
    assert_eq!(out.code(), Some(7), "{}\n--- log ---\n{}", out.report(), f.log());
    let lines: Vec<String> = out.stdout_str().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "stdout is the command's alone\n{}", out.report());
    assert_eq!(lines[0], "/etc/pair");
    assert_eq!(lines[1], lines[2], "the relative path was read live\n{}", out.report());
    let missing = f.exec(&["/"], &["no-such-program"]).run();
    assert_eq!(missing.code(), Some(82), "{}", missing.report());
    assert!(missing.stdout.is_empty(), "{}", missing.report());
    let said: Vec<&str> = missing.stderr.lines().filter(|l| l.starts_with("snaprsync:")).collect();
    assert!(said.len() == 1 && said[0].contains("no-such-program"), "{}", missing.report());
    f.assert_no_snapshot_left("status and stdout");
}
