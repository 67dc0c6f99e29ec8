//! The first night of a new administrator: the mistakes a user makes, each
//! ending with snaprsync's own documented status and one line that names the
//! cause and the fix (never 89, "a bug"), judged by what snaprsync returns and
//! says, and by what is left on disk.

use std::fs;
use std::path::{Path, PathBuf};

use crate::e2e::status::{assert_one_line, sender_args};
use crate::support::rig::{Remote, Rig};
use crate::support::{snaprsync, tree};
use testbed::cmd::{cmd, Output};

/// A config in `dir` with `body` after the test's log settings (its own state_dir).
fn config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let text =
        format!("rsync_path = \"/usr/bin/rsync\"\nlog_file = \"{}\"\nlog_level = \"debug\"\n{body}", dir.join("snaprsync.log").display());
    fs::write(&path, text).unwrap();
    path
}

/// snaprsync as sshd runs it for a pull of `src`, with `conf`.
fn pull(conf: &Path, src: &Path) -> Output {
    cmd(snaprsync()).arg(format!("--snap-config={}", conf.display())).args(sender_args(src)).run()
}

fn expect(out: &Output, code: i32, says: &str, what: &str) {
    assert_eq!(out.code(), Some(code), "{what}\n{}", out.report());
    out.expect_stdout_empty();
    assert_one_line(what, &out.stderr);
    assert!(out.stderr.contains(says), "{what}: the line must say {says:?}\n{}", out.report());
}

/// A full filesystem (its run record cannot be written there): 81, the cause
/// and the fix; with `on_snapshot_failure = "live"` the backup goes on live.
#[test]
fn a_full_filesystem_is_81_with_its_fix_and_live_takes_it() {
    let rig = Rig::build("full").size(200).start();
    tree::make_sample(&rig.src());
    let mnt = rig.fs.mnt();
    let _ = cmd("dd").args(["if=/dev/zero", "bs=1M"]).arg(format!("of={}", mnt.join("fill").display())).run();
    for i in 0..4000 {
        if fs::write(mnt.join(format!("meta{i}")), [0u8; 2048]).is_err() {
            break;
        }
    }
    let state = format!("state_dir = \"{}\"\n", mnt.join("state").display());
    let fail = config(rig.work.path(), "fail.toml", &format!("{state}on_snapshot_failure = \"fail\"\n"));
    let out = pull(&fail, &rig.src());
    expect(&out, 81, "No space left on device (os error 28)); the filesystem is full", "full filesystem");
    assert!(out.stderr.contains("free some space"), "{}", out.report());
    rig.fs.assert_no_snapshot_left();

    let live = config(rig.work.path(), "live.toml", &format!("{state}on_snapshot_failure = \"live\"\n"));
    let dest = rig.dest("live");
    let out = rig
        .rsync(Remote::Plain)
        .arg(format!("--rsync-path={} --snap-config={}", snaprsync(), live.display()))
        .arg("-a")
        .arg(rig.remote_dir(&rig.src()))
        .arg(&dest)
        .run();
    assert_eq!(out.code(), Some(0), "on_snapshot_failure = \"live\" takes a full filesystem\n{}", out.report());
    tree::assert_same("the live copy", &tree::describe(&rig.src()), &tree::describe(&dest));
    assert!(out.stderr.contains("live"), "the live backup is said\n{}", out.report());
    rig.fs.assert_no_snapshot_left();
}

/// A copy of snaprsync that user nobody may run.
fn nobodys_copy(dir: &Path) -> PathBuf {
    let exe = dir.join("snaprsync");
    fs::copy(snaprsync(), &exe).unwrap();
    cmd("chmod").args(["755"]).arg(dir).arg(&exe).ok();
    exe
}

/// Not root: one line, snaprsync needs root or CAP_SYS_ADMIN, status 81,
/// whether or not `state_dir` is writable.
#[test]
fn not_root_is_81_and_says_root_or_cap_sys_admin() {
    let rig = Rig::build("nobody").without_sshd().start();
    tree::make_sample(&rig.src());
    let dir = testbed::tempdir("first-night-nobody");
    let exe = nobodys_copy(dir.path());
    let open_state = dir.path().join("state");
    fs::create_dir(&open_state).unwrap();
    cmd("chmod").args(["777"]).arg(&open_state).ok();
    cmd("chmod").args(["755"]).arg(rig.work.path()).ok();
    let root_state = rig.work.path().join("root-state");
    fs::create_dir(&root_state).unwrap();
    for (what, state) in [("state_dir only root may write", &root_state), ("a writable state_dir", &open_state)] {
        let conf = dir.path().join(format!("{}.toml", state.file_name().unwrap().to_string_lossy()));
        fs::write(&conf, format!("rsync_path = \"/usr/bin/rsync\"\nstate_dir = \"{}\"\non_snapshot_failure = \"fail\"\n", state.display()))
            .unwrap();
        cmd("chmod").args(["644"]).arg(&conf).ok();
        let out = cmd("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe)
            .arg(format!("--snap-config={}", conf.display()))
            .args(sender_args(&rig.src()))
            .run();
        expect(&out, 81, "snaprsync needs root or CAP_SYS_ADMIN", what);
        rig.fs.assert_no_snapshot_left();
    }
}

/// A source on a filesystem mounted read-only: 81, and it says so.
#[test]
fn a_read_only_snapshot_location_is_81_and_says_read_only() {
    let rig = Rig::build("ro").without_sshd().start();
    tree::make_sample(&rig.src());
    let conf = config(
        rig.work.path(),
        "ro.toml",
        &format!("state_dir = \"{}\"\non_snapshot_failure = \"fail\"\n", rig.work.path().join("state").display()),
    );
    cmd("mount").args(["-o", "remount,ro"]).arg(rig.fs.mnt()).ok();
    let out = pull(&conf, &rig.src());
    cmd("mount").args(["-o", "remount,rw"]).arg(rig.fs.mnt()).ok();
    expect(&out, 81, "mounted read-only", "read-only mount");
    rig.fs.assert_no_snapshot_left();
}

/// A copy of snaprsync given as `rsync_path`: 80, caught as doctor catches it,
/// before anything is made.
#[test]
fn a_copy_of_snaprsync_as_rsync_path_is_80() {
    let rig = Rig::build("copy").without_sshd().start();
    tree::make_sample(&rig.src());
    let copy = rig.work.path().join("rsync");
    fs::copy(snaprsync(), &copy).unwrap();
    let conf = rig.work.path().join("copy.toml");
    fs::write(&conf, format!("rsync_path = \"{}\"\nstate_dir = \"{}\"\n", copy.display(), rig.work.path().join("state").display()))
        .unwrap();
    let out = pull(&conf, &rig.src());
    expect(&out, 80, "is a copy of snaprsync", "rsync_path a copy of snaprsync");
    rig.fs.assert_no_snapshot_left();
}

/// `--help`, `-h` and no arguments at a terminal are snaprsync's help (with
/// the way to rsync's), within 80 columns; without a terminal, no arguments
/// are still rsync's.
#[test]
fn help_is_snaprsyncs_for_people() {
    for flag in ["--help", "-h"] {
        let out = cmd(snaprsync()).arg(flag).run();
        assert_eq!(out.code(), Some(0), "{flag}\n{}", out.report());
        let text = out.stdout_str();
        assert!(text.starts_with("snaprsync: rsync that reads from a point-in-time snapshot"), "{flag}\n{}", out.report());
        assert!(text.contains("for rsync's own, run: rsync --help"), "{flag}\n{}", out.report());
        assert!(text.lines().all(|l| l.len() <= 80), "{flag}\n{text}");
    }
    // script(1) gives the command a terminal as its stdout.
    let out = cmd("script").args(["-qec", snaprsync(), "/dev/null"]).run();
    assert!(out.stdout_str().starts_with("snaprsync: rsync that reads"), "no arguments at a terminal\n{}", out.report());
    let out = cmd(snaprsync()).run();
    assert!(!out.stdout_str().contains("point-in-time snapshot"), "no arguments, no terminal: rsync's own answer\n{}", out.report());
}
