//! Bind mounts of directories inside a btrfs subvolume, as a machine lays them
//! out (`/data` is subvolume `vol`, `/srv/www` is `mount --bind /data/www
//! /srv/www`), pulled over a real sshd: the copy through snaprsync is one
//! point in time while the torture writer rewrites the bound directory (and
//! plain rsync of it is torn, so the check can fail), its names are plain
//! rsync's with and without `--relative`, nothing of the subvolume outside the
//! bound directory arrives, several bind mounts of one subvolume share one
//! snapshot, exec and the hooks see the bind mounts' paths, a directory a
//! real container runtime (systemd-nspawn) bind-mounts is read frozen from
//! inside the container and from the host, a layout that cannot be
//! snapshotted ends with 83, and no snapshot is left, also after `kill -9`.
//! Needs systemd-container besides the e2e packages.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testbed::btrfs::create_subvolume;
use testbed::cmd::cmd;
use testbed::torture::{self, Config, Writer};

use crate::support::rig::{Remote, Rig};
use crate::support::{assert_a_live_copy_is_torn, snaprsync, tree};

/// The layout: subvolume `vol` on the rig's btrfs, also mounted by itself at
/// `data` (as `/data` would be); in it `www` (with a nested subvolume `n`),
/// `sibling` (never to be copied) and a nested subvolume `deep` with `part`.
/// Bind mounts: `srv/www` of `data/www`, `srv/again` of `srv/www` (a bind of
/// a bind), `srv/part` of `data/deep/part` (a nested subvolume's directory).
struct Layout {
    rig: Rig,
    /// The live directories as the subvolume's own mount shows them.
    data: PathBuf,
    www: PathBuf,
    again: PathBuf,
    part: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Drop for Layout {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = cmd("umount").arg(m).run();
        }
    }
}

impl Layout {
    fn new(tag: &str, size_mb: u64, fill: impl FnOnce(&Path)) -> Layout {
        let rig = Rig::build(tag).size(size_mb).start();
        let vol = rig.fs.mnt().join("vol");
        create_subvolume(&vol);
        fs::create_dir_all(vol.join("www")).unwrap();
        fs::create_dir_all(vol.join("sibling")).unwrap();
        fs::write(vol.join("sibling/secret"), "not in the bind mount\n").unwrap();
        fs::write(vol.join("beside-www"), "not in the bind mount\n").unwrap();
        create_subvolume(&vol.join("deep"));
        fs::create_dir_all(vol.join("deep/part/x")).unwrap();
        fs::write(vol.join("deep/part/x/file"), "in a nested subvolume's directory\n").unwrap();
        fs::write(vol.join("deep/outside-part"), "not in the bind mount\n").unwrap();
        fill(&vol.join("www"));
        let work = rig.work.path().to_owned();
        let (data, srv) = (work.join("data"), work.join("srv"));
        let mut l = Layout { www: srv.join("www"), again: srv.join("again"), part: srv.join("part"), data, rig, mounts: Vec::new() };
        let loopdev = cmd("findmnt").args(["-n", "-o", "SOURCE"]).arg(l.rig.fs.mnt()).ok().stdout_str().trim().to_owned();
        l.mount(&["-o", "subvol=vol", &loopdev], &l.data.clone());
        l.mount(&["--bind", &l.data.join("www").display().to_string()], &l.www.clone());
        l.mount(&["--bind", &l.www.display().to_string()], &l.again.clone());
        l.mount(&["--bind", &l.data.join("deep/part").display().to_string()], &l.part.clone());
        l
    }

    fn mount(&mut self, args: &[&str], at: &Path) {
        fs::create_dir_all(at).unwrap();
        cmd("mount").args(args).arg(at).ok();
        self.mounts.push(at.to_owned());
    }

    /// `rsync -a EXTRA SOURCES... DEST` through `remote`; asserts success.
    fn pull(&self, remote: Remote, extra: &[&str], sources: &[String], dest: &Path) -> testbed::cmd::Output {
        let out = self.rig.rsync(remote).arg("-a").args(extra).args(sources).arg(dest).run();
        assert!(out.status.success(), "pull through {remote:?} failed\n{}\n--- snaprsync log ---\n{}", out.report(), self.rig.log());
        out
    }
}

/// Names in a copy that came from outside the bound directories.
fn outsiders(dest: &Path) -> Vec<String> {
    tree::names(dest)
        .into_iter()
        .filter(|n| n.contains("secret") || n.contains("sibling") || n.contains("outside") || n.contains("beside"))
        .collect()
}

const CFG: Config = Config { files: 200, size: 64 * 1024 };
const BWLIMIT: &str = "--bwlimit=8000";

#[test]
fn a_pull_of_a_bind_mount_is_one_instant_and_plain_rsync_of_it_is_torn() {
    let l = Layout::new("bind-consistency", 1024, |_| {});
    let writer = Writer::start(&l.data.join("www"), CFG).expect("start torture writer");
    writer.wait_for(1);
    for attempt in 0..2 {
        let dest = l.rig.dest(&format!("snap{attempt}"));
        let before = writer.generation();
        let out = l.rig.assert_snapshotted("bind pull", || l.pull(Remote::Snaprsync, &[BWLIMIT], &[l.rig.remote_dir(&l.www)], &dest));
        let after = writer.generation();
        assert!(after >= before + 2, "the copy overlapped only generations {before}..{after} (took {:.2?})", out.elapsed);
        let verdict = torture::check(&dest).expect("read copy");
        assert!(verdict.consistent(), "copy {attempt} ({before}..={after}) is not point-in-time: {verdict}\n{}", l.rig.log());
        assert!(outsiders(&dest).is_empty(), "the rest of the subvolume arrived: {:?}", outsiders(&dest));
        eprintln!("snaprsync copy of the bind mount {attempt}: {verdict} (writer went {before}..={after})");
    }
    assert_a_live_copy_is_torn(&l.rig, writer, "plain rsync of the bind mount", |dest| {
        l.rig.rsync(Remote::Plain).arg("-a").arg(BWLIMIT).arg(l.rig.remote_dir(&l.www)).arg(dest).run()
    });
    l.rig.fs.assert_no_snapshot_left();
}

/// Four places of one subvolume (a bind, a bind of that bind, the directory
/// through the top-level mount) and a nested subvolume's directory, in one
/// run: three snapshots (the subvolume, `www/n`, `deep`), and the names of
/// plain rsync, with and without `-R`.
#[test]
fn names_equal_plain_rsyncs_and_one_subvolume_is_one_snapshot() {
    let l = Layout::new("bind-names", 400, |www| {
        tree::make_sample(www);
        create_subvolume(&www.join("n"));
        fs::write(www.join("n/in-nested"), "in a subvolume nested in the bound directory\n").unwrap();
    });
    let top = l.rig.fs.mnt().join("vol/www");
    let sources = [l.rig.remote_dir(&l.www), l.rig.remote_path(&l.again), l.rig.remote_dir(&l.part), l.rig.remote_dir(&top)];
    for extra in [&[][..], &["-R"][..], &["-R", "-H", "--numeric-ids"][..]] {
        let tag = if extra.is_empty() { "plain".to_owned() } else { extra.join("") };
        let (with, without) = (l.rig.dest(&format!("snap{tag}")), l.rig.dest(&format!("live{tag}")));
        let before = l.rig.snapshots_taken();
        l.rig.assert_snapshotted("bind pull", || l.pull(Remote::Snaprsync, extra, &sources, &with));
        assert_eq!(l.rig.snapshots_taken() - before, 3, "{extra:?}: one snapshot per subvolume\n{}", l.rig.log());
        l.pull(Remote::Plain, extra, &sources, &without);
        let names = tree::names(&with);
        for want in ["a/b/c/three", "n/in-nested", "x/file"] {
            assert!(names.iter().any(|n| n.ends_with(want)), "{extra:?}: {want} is missing: {names:?}");
        }
        assert!(outsiders(&with).is_empty(), "{extra:?}: the rest of the subvolume arrived: {:?}", outsiders(&with));
        tree::assert_same(&format!("rsync -a {extra:?}: snaprsync vs plain rsync"), &tree::describe(&with), &tree::describe(&without));
    }
}

/// `kill -9` of snaprsync while rsync reads a bind mount: rsync goes with it,
/// and the next run's sweep removes the snapshot of the subvolume.
#[test]
fn kill_9_while_a_bind_mount_is_read_leaves_nothing_after_the_sweep() {
    let l = Layout::new("bind-kill", 400, |www| {
        fs::write(www.join("big"), tree::pattern(8 << 20, 7)).unwrap();
    });
    for round in 0..3 {
        let mut child = cmd(snaprsync())
            .arg(format!("--snap-config={}", l.rig.config.display()))
            .args(["-a", "--bwlimit=2000"])
            .arg(format!("{}/", l.www.display()))
            .arg(l.rig.dest(&format!("dst{round}")))
            .spawn();
        l.rig.wait_for_snapshot();
        std::thread::sleep(Duration::from_millis(200 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        cmd(snaprsync()).arg(format!("--snap-config={}", l.rig.config.display())).arg("cleanup").ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !l.rig.fs.leftover_snapshots().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(l.rig.fs.leftover_snapshots(), Vec::<String>::new(), "round {round}\n{}", l.rig.log());
    }
}

/// A bind mount whose subvolume no other mount shows (its filesystem's
/// mounts hidden under a tmpfs, as in a container that was given only the
/// bind) cannot be snapshotted: 83 and one line naming the bind mount and
/// the fix; nothing is read live and nothing is left.
#[test]
fn a_bind_mount_whose_subvolume_is_mounted_nowhere_else_ends_with_83() {
    let mut l = Layout::new("bind-unreachable", 300, |www| fs::write(www.join("f"), "x\n").unwrap());
    for hidden in [l.rig.fs.mnt().to_owned(), l.data.clone()] {
        l.mount(&["-t", "tmpfs", "tmpfs"], &hidden);
    }
    let dest = l.rig.dest("dest");
    let out = cmd(snaprsync())
        .arg(format!("--snap-config={}", l.rig.config.display()))
        .arg("-a")
        .arg(format!("{}/", l.part.display()))
        .arg(&dest)
        .run();
    out.expect_code(83).expect_stdout_empty();
    let line = out.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{}", out.report());
    for want in [&l.part.display().to_string()[..], "bind mount", "/vol/deep/part", "mount -o subvolid=5"] {
        assert!(line.contains(want), "{want:?} is not in: {line}");
    }
    assert!(!dest.exists(), "nothing was copied");
    // The tmpfs mounts go first (Drop, in reverse), then the btrfs is seen again.
    let hidden = l.mounts.split_off(l.mounts.len() - 2);
    for m in hidden.iter().rev() {
        cmd("umount").arg(m).ok();
    }
    l.rig.fs.assert_no_snapshot_left();
}

/// `snaprsync exec` of two bind mounts: COMMAND (a slowed rsync) reads them
/// frozen under their own names while the writer rewrites one, and the hooks
/// and COMMAND are told the bind mounts' paths.
#[test]
fn exec_reads_bind_mounts_frozen_and_the_hooks_are_told_their_paths() {
    let l = Layout::new("bind-exec", 1024, |_| {});
    let told = l.rig.dest("told");
    let config = crate::support::write_config(
        l.rig.work.path(),
        &format!(
            "on_snapshot_failure = \"fail\"\nsnapshot_removal = \"wait\"\npre_snapshot = [\"/bin/sh\", \"-c\", \"env | grep ^SNAPRSYNC_SOURCE_ | sort > '{}'\"]\n",
            told.display()
        ),
    );
    let writer = Writer::start(&l.data.join("www"), CFG).expect("start torture writer");
    writer.wait_for(1);
    let dest = l.rig.dest("copy");
    let script = format!(
        "test \"$SNAPRSYNC_PATH_0\" = '{www}' && test \"$SNAPRSYNC_PATH_1\" = '{part}' && mkdir -p '{dest}' && rsync -a {BWLIMIT} '{www}/' '{dest}/www' && rsync -a '{part}/' '{dest}/part'",
        www = l.www.display(),
        part = l.part.display(),
        dest = dest.display()
    );
    let before = writer.generation();
    let out = cmd(snaprsync())
        .arg(format!("--snap-config={}", config.display()))
        .arg("exec")
        .arg(&l.www)
        .arg(&l.part)
        .args(["--", "/bin/sh", "-c", &script])
        .run();
    let after = writer.generation();
    assert!(out.status.success(), "{}\n{}", out.report(), l.rig.log());
    assert!(after >= before + 2, "the copy overlapped only generations {before}..{after}");
    let verdict = torture::check(&dest.join("www")).expect("read copy");
    assert!(verdict.consistent(), "exec's copy ({before}..={after}) is not point-in-time: {verdict}\n{}", l.rig.log());
    assert_eq!(tree::names(&dest.join("part")), ["x", "x/file"], "only the bound directory");
    assert!(outsiders(&dest).is_empty(), "{:?}", outsiders(&dest));
    let told = fs::read_to_string(&told).unwrap();
    assert_eq!(
        told,
        format!("SNAPRSYNC_SOURCE_0={}\nSNAPRSYNC_SOURCE_1={}\nSNAPRSYNC_SOURCE_COUNT=2\n", l.www.display(), l.part.display())
    );
    writer.stop().unwrap();
    l.rig.fs.assert_no_snapshot_left();
}

/// A root for a systemd-nspawn container: the host's `/usr` (Debian's merged
/// `/bin` and `/lib` as links to it), its os-release, and empty places for
/// the binds.
fn container_tree(at: &Path) {
    for d in ["usr", "etc", "srv/www", "data", "cfg", "t"] {
        fs::create_dir_all(at.join(d)).unwrap();
    }
    for l in ["bin", "lib", "lib64", "sbin"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), at.join(l)).unwrap();
    }
    fs::copy("/etc/os-release", at.join("etc/os-release")).unwrap();
}

/// A real container runtime (systemd-nspawn, Debian's systemd-container)
/// bind-mounts a directory of a subvolume as the container's `/srv/www`, and
/// the torture writer runs inside the container, writing there. The host
/// pulls that directory through snaprsync over sshd while snaprsync inside
/// the container copies its own `/srv/www` (the container is also given the
/// subvolume at `/data`): both copies are one instant. A container given only
/// the bind mount cannot snapshot it: 83, with the fix.
#[test]
fn a_directory_a_systemd_nspawn_container_bind_mounts_is_read_frozen_inside_and_out() {
    let l = Layout::new("bind-nspawn", 1024, |_| {});
    let tree = l.rig.work.path().join("tree");
    container_tree(&tree);
    let cfg = l.rig.work.path().join("cfg");
    fs::create_dir(&cfg).unwrap();
    fs::write(
        cfg.join("c.toml"),
        "rsync_path = \"/usr/bin/rsync\"\nlog_file = \"/cfg/log\"\nlog_level = \"debug\"\nstate_dir = \"/cfg/state\"\non_snapshot_failure = \"fail\"\n",
    )
    .unwrap();
    let bin = Path::new(snaprsync()).parent().unwrap().to_owned();
    let nspawn = |binds: &[String], script: &str| {
        let mut c = std::process::Command::new("systemd-nspawn");
        c.args(["-q", "--register=no", "--keep-unit", "--bind-ro=/usr"]).arg("-D").arg(&tree);
        c.arg(format!("--bind={}:/cfg", cfg.display())).arg(format!("--bind-ro={}:/t", bin.display()));
        c.args(binds).args(["--", "/bin/sh", "-c", script]);
        c.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        c.spawn().unwrap_or_else(|e| panic!("cannot start systemd-nspawn: {e} (install systemd-container)"))
    };
    let www_bind = format!("--bind={}:/srv/www", l.data.join("www").display());
    let mut writing = nspawn(
        &[www_bind.clone(), format!("--bind={}:/data", l.data.display())],
        "/t/testbed torture write /srv/www --seconds 12 --files 200 --size 65536 & w=$!; \
         while [ ! -e /srv/www/f0199 ]; do sleep 0.1; done; sleep 1; \
         /t/snaprsync --snap-config=/cfg/c.toml -a --bwlimit=8000 /srv/www/ /cfg/inside/; echo inside=$?; wait $w; echo writer=$?",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !l.data.join("www/f0199").exists() {
        assert!(Instant::now() < deadline, "the writer in the container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let outside = l.rig.dest("outside");
    l.rig.assert_snapshotted("host pull", || l.pull(Remote::Snaprsync, &[BWLIMIT], &[l.rig.remote_dir(&l.data.join("www"))], &outside));
    assert!(writing.try_wait().unwrap().is_none(), "the container's writer ended before the host's copy did: it proves nothing");
    let done = writing.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&done.stdout).into_owned();
    let log = || fs::read_to_string(cfg.join("log")).unwrap_or_default();
    assert!(said.contains("inside=0") && said.contains("writer=0"), "{said}\n{}\n{}", String::from_utf8_lossy(&done.stderr), log());
    for (what, copy) in [("the host's", outside), ("the container's", cfg.join("inside"))] {
        let verdict = torture::check(&copy).expect("read copy");
        assert!(verdict.consistent(), "{what} copy is not point-in-time: {verdict}\n{}", log());
        assert!(outsiders(&copy).is_empty(), "{what}: {:?}", outsiders(&copy));
        eprintln!("{what} copy of the container's volume: {verdict}");
    }
    let refused = nspawn(&[www_bind], "/t/snaprsync --snap-config=/cfg/c.toml -a /srv/www/ /cfg/refused/; echo status=$?")
        .wait_with_output()
        .unwrap();
    let (said, err) = (String::from_utf8_lossy(&refused.stdout), String::from_utf8_lossy(&refused.stderr));
    assert!(said.contains("status=83"), "{said}\n{err}");
    // nspawn may hand the container's stderr to its stdout.
    let line = err.lines().chain(said.lines()).find(|l| l.starts_with("snaprsync:")).unwrap_or_default();
    assert!(line.contains("bind mount at /srv/www") && line.contains("mount the subvolume too"), "{said}\n{err}");
    assert!(!cfg.join("refused").exists(), "nothing was read live");
    l.rig.fs.assert_no_snapshot_left();
}

/// Restricted mode, a key allowed only the bind mount `srv/www`: the confined
/// rsync is shown that directory of the subvolume's snapshot (with the
/// subvolume nested in it) and nothing else, under plain rsync's names.
#[test]
fn a_restricted_key_allowed_a_bind_mount_reads_it_from_the_snapshot() {
    let l = Layout::new("bind-restricted", 400, |www| {
        tree::make_sample(www);
        create_subvolume(&www.join("n"));
        fs::write(www.join("n/in-nested"), "nested\n").unwrap();
    });
    let command = format!("{} --snap-config={} --snap-restrict --snap-allow={}", snaprsync(), l.rig.config.display(), l.www.display());
    let key = crate::support::forced::ForcedKey::new(l.rig.sshd(), "bind-restricted", &command);
    for extra in [&[][..], &["-R"][..]] {
        let tag = if extra.is_empty() { "plain" } else { "rel" };
        let (with, without) = (l.rig.dest(&format!("snap-{tag}")), l.rig.dest(&format!("live-{tag}")));
        let before = l.rig.snapshots_taken();
        let mut args: Vec<String> = vec!["-a".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend([format!("{}/", key.remote(&l.www)), with.display().to_string()]);
        let out = key.rsync(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "{}\n{}", out.report(), l.rig.log());
        assert_eq!(l.rig.snapshots_taken() - before, 2, "the subvolume and the one nested in www\n{}", l.rig.log());
        assert!(l.rig.log().contains("method=confined"), "{}", l.rig.log());
        l.pull(Remote::Plain, extra, &[l.rig.remote_dir(&l.www)], &without);
        assert!(outsiders(&with).is_empty(), "{:?}", outsiders(&with));
        assert!(tree::names(&with).iter().any(|n| n.ends_with("n/in-nested")), "{:?}", tree::names(&with));
        if extra.is_empty() {
            tree::assert_same("restricted vs plain rsync", &tree::describe(&with), &tree::describe(&without));
        } else {
            // The confined root makes the directories above the allowed one itself (mode 0755).
            assert_eq!(tree::names(&with), tree::names(&without), "restricted -R vs plain rsync");
        }
    }
    l.rig.fs.assert_no_snapshot_left();
}
