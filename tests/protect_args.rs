//! `--protect-args` (`-s`) end to end: the source paths reach snaprsync on
//! stdin, not on its command line, as BackupPC 4 sends them by default.
//!
//! * A real rsync client with BackupPC 4's default `RsyncArgs` over a real
//!   sshd: awkward source names (spaces, quotes, newlines, leading dashes,
//!   option-like and non-ASCII names) arrive whole, from a snapshot, and equal
//!   a plain-rsync backup of the same quiet tree.
//! * A `-s` backup made while the torture writer runs is a single point in
//!   time; a plain `-s` rsync of the live tree is caught torn by the same check.
//! * Malformed argument blocks fed straight into snaprsync's stdin each end
//!   with snaprsync's status 84, one stderr line, no stdout, and nothing left.
//! * A real BackupPC 4 server (`BackupPC_dump` with `rsync_bpc`) makes a full
//!   backup through snaprsync; its content, restored with
//!   `BackupPC_tarCreate`, equals the source.
//!
//! Needs the packages rsync, btrfs-progs, openssh-server, openssh-client,
//! backuppc and backuppc-rsync.

use crate::support::backuppc::BackupPc;
use crate::support::rig::{Remote, Rig};
use crate::support::{assert_a_live_copy_is_torn, snaprsync, snaprsync_log, tree};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use testbed::cmd::cmd;
use testbed::sshd::HOST;
use testbed::torture::{self, Config, Writer};

/// BackupPC 4's default `RsyncArgs` (as its documentation lists them).
const BACKUPPC_ARGS: &[&str] = &[
    "--super",
    "--recursive",
    "--protect-args",
    "--numeric-ids",
    "--perms",
    "--owner",
    "--group",
    "-D",
    "--times",
    "--links",
    "--hard-links",
    "--delete",
    "--delete-excluded",
    "--partial",
    "--log-format=log: %o %i %B %8U,%8G %9l %f%L",
    "--stats",
];
/// What BackupPC adds for a full backup.
const FULL_EXTRA: &str = "--checksum";

/// Directory names that a shell, an argv splitter or an option parser would
/// each get wrong somewhere. Each is named on the client's command line.
const AWKWARD_DIRS: &[&str] =
    &["dir with  two spaces ", "it's \"quoted\"", "new\nline dir", "-leading-dash", "--rsync-path=evil", "ünïcödé €uro 日本"];

/// File names placed inside every awkward directory.
const AWKWARD_FILES: &[&str] = &[
    "file with space.txt",
    "'single'",
    "\"double\"",
    "new\nline",
    "-dash",
    "--delete",
    "ü€ 日本.txt",
    "$(echo no) `echo no`; * ? \\",
    " leading and trailing space ",
];

/// Fills `dir` with one small file per awkward name, and a subdirectory too.
fn fill_awkward(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub dir 'x'")).unwrap();
    for (i, name) in AWKWARD_FILES.iter().enumerate() {
        std::fs::write(dir.join(name), format!("{name}\n{}", "x".repeat(i * 100))).unwrap();
        std::fs::write(dir.join("sub dir 'x'").join(name), format!("nested {name}\n")).unwrap();
    }
}

/// Last path component as a string.
fn base(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The top-level names in `dir`, sorted.
fn top_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Pulls `sources` (absolute paths on the rig's host) into `dest` with
/// BackupPC's full-backup arguments through `remote`; asserts success.
fn backuppc_style_pull(rig: &Rig, remote: Remote, sources: &[PathBuf], dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let mut c = rig.rsync(remote).args(BACKUPPC_ARGS).arg(FULL_EXTRA);
    for (i, s) in sources.iter().enumerate() {
        // The first source names the host; the others continue it with ':'.
        c = c.arg(if i == 0 { rig.remote_path(s) } else { format!(":{}", s.display()) });
    }
    let out = c.arg(format!("{}/", dest.display())).run();
    assert!(out.status.success(), "-s pull through {remote:?} failed\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
}

/// Over sshd with BackupPC's default arguments plus `--checksum`: source
/// directories and a source file with awkward names, each named on the
/// client's command line, arrive whole from a snapshot, equal to the source
/// and to a plain-rsync backup of the same tree.
#[test]
fn backuppc_args_with_awkward_names_over_sshd() {
    let rig = Rig::new("pa-names");
    let mnt = rig.fs.mnt().to_owned();
    let mut sources: Vec<PathBuf> = AWKWARD_DIRS.iter().map(|d| mnt.join(d)).collect();
    for dir in &sources {
        fill_awkward(dir);
    }
    // The sample tree (symlink, hard link, empty dir, a 3 MB file) in one of them.
    tree::make_sample(&sources[0].join("sample"));
    // A single file named on the command line, too.
    let file = mnt.join("-leading-dash").join("it's a \"file\"\n");
    std::fs::write(&file, "a file source\n").unwrap();
    sources.push(file.clone());

    let with = rig.dest("snap");
    let without = rig.dest("live");
    let before = rig.log().matches("protected args:").count();
    rig.assert_snapshotted("BackupPC-style -s pull", || backuppc_style_pull(&rig, Remote::Snaprsync, &sources, &with));
    let log = rig.log();
    assert!(
        log.matches("protected args:").count() > before,
        "snaprsync did not log reading a protected-args block, so the paths did not come on stdin\n--- snaprsync log ---\n{log}"
    );
    backuppc_style_pull(&rig, Remote::Plain, &sources, &without);

    let mut expected: Vec<String> = sources.iter().map(|s| base(s)).collect();
    expected.sort();
    assert_eq!(top_names(&with), expected, "the backup must hold exactly the named sources, under their own names");
    for src in &sources[..AWKWARD_DIRS.len()] {
        tree::assert_same(
            &format!("source {:?} vs its backup through snaprsync", base(src)),
            &tree::describe(src),
            &tree::describe(&with.join(base(src))),
        );
    }
    assert_eq!(std::fs::read(with.join(base(&file))).unwrap(), b"a file source\n", "the file source");
    let sample = with.join(base(&sources[0])).join("sample");
    assert_eq!(tree::inode(&sample.join("top.txt")), tree::inode(&sample.join("hardlink-to-top")), "--hard-links must keep the hard link");
    tree::assert_same("-s backup: snaprsync vs plain rsync", &tree::describe(&without), &tree::describe(&with));
}

const CFG: Config = Config { files: 200, size: 64 * 1024 };
/// 12.8 MB at 8000 KiB/s: a copy takes about 1.6 s while the writer finishes
/// a generation every few hundred milliseconds.
const BWLIMIT: &str = "--bwlimit=8000";

/// With `-s` and BackupPC's arguments, a backup through snaprsync made while
/// the torture writer runs is one point in time; the same check catches a
/// plain `-s` rsync of the live tree torn, which shows the check can fail.
#[test]
fn protect_args_backup_is_consistent_while_a_writer_runs() {
    // The writer churns ~12.8 MB per generation and a snapshot pins one
    // generation's extents: leave btrfs room (the image is sparse).
    let rig = Rig::build("pa-consistency").size(1024).start();
    let writer = Writer::start(&rig.src(), CFG).expect("start torture writer");
    writer.wait_for(1);
    let pull =
        |remote: Remote, dest: &Path| rig.rsync(remote).args(BACKUPPC_ARGS).arg(BWLIMIT).arg(rig.remote_dir(&rig.src())).arg(dest).run();

    let dest = rig.dest("snap");
    let before = writer.generation();
    let out = rig.assert_snapshotted("-s pull during writes", || pull(Remote::Snaprsync, &dest));
    let after = writer.generation();
    assert!(out.status.success(), "-s pull through snaprsync failed\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
    assert!(rig.log().contains("protected args:"), "snaprsync did not read a protected-args block\n--- snaprsync log ---\n{}", rig.log());
    assert!(
        after >= before + 2,
        "the copy overlapped only generations {before}..{after}; it must overlap at least 2 to mean anything (took {:.2?})",
        out.elapsed
    );
    let verdict = torture::check(&dest).expect("read copy");
    assert!(verdict.consistent(), "-s copy through snaprsync (during generations {before}..={after}) is not point-in-time: {verdict}");
    let (lo, hi) = (verdict.min_gen().unwrap(), verdict.max_gen().unwrap());
    assert!(before <= lo && hi <= after + 1, "copy holds generations {lo}..={hi}, outside {before}..={}", after + 1);
    eprintln!("-s copy through snaprsync: {verdict} (writer went {before}..={after} during the copy)");

    assert_a_live_copy_is_torn(&rig, writer, "plain -s rsync", |dest| pull(Remote::Plain, dest));
}

/// Every entry of `dir`, recursively (empty if it does not exist).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(entries(&e.path()));
            }
        }
    }
    out
}

/// Bytes of one protected-args string (with its NUL).
fn arg(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.push(0);
    v
}

/// Malformed argument blocks straight into snaprsync's stdin, with the argv
/// an `-s` client gives the server: each ends with snaprsync's status 84,
/// exactly one stderr line naming the cause, nothing on stdout, and no
/// snapshot and no journal entry left behind. The paths in the blocks name a
/// real source on btrfs, so a run that went on would have snapshotted it.
#[test]
fn malformed_blocks_fail_with_84_and_leave_nothing() {
    let rig = Rig::build("pa-malformed").size(300).without_sshd().data(tree::make_sample).start();
    let state = rig.work.path().join("state");
    let src = rig.src();
    let non_utf8 = OsStr::from_bytes(b"caf\xe9 latin-1");
    std::fs::write(src.join(non_utf8), "not UTF-8\n").unwrap();
    let subvolumes = rig.fs.subvolumes();

    let p = src.as_os_str().as_bytes();
    let head = [arg(b"rsync"), arg(b"--numeric-ids"), arg(b".")].concat();
    let long_path = |n: usize| [p, b"/", &vec![b'a'; n]].concat();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("EOF inside a path", [&head[..], &p[..p.len() / 2]].concat(), "the connection ended inside argument 3"),
        ("EOF before the empty terminator", [head.clone(), arg(p)].concat(), "without the empty string that ends the block"),
        ("a path longer than 4095 bytes", [head.clone(), arg(&long_path(5000)), arg(b"")].concat(), "longer than 4095 bytes"),
        (
            "a block over 1 MiB",
            [head.clone(), (0..400).flat_map(|_| arg(&long_path(3000))).collect(), arg(b"")].concat(),
            "exceed 1048576 bytes",
        ),
        ("1201 strings", [head.clone(), (0..1198).flat_map(|_| arg(p)).collect(), arg(b"")].concat(), "more than 1000 arguments"),
        ("a non-UTF-8 path", [head.clone(), arg(src.join(non_utf8).as_os_str().as_bytes()), arg(b"")].concat(), "is not UTF-8"),
    ];
    for (what, stdin, cause) in cases {
        let out = cmd(snaprsync())
            .arg(format!("--snap-config={}", rig.config.display()))
            .args(["--server", "--sender", "-slogDtpre.iLsfxCIvu"])
            .stdin(stdin)
            .run();
        let log = snaprsync_log(&rig.config);
        assert_eq!(out.code(), Some(84), "{what}: exit status\n{}\n--- snaprsync log ---\n{log}", out.report());
        out.expect_stdout_empty();
        let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{what}: snaprsync must explain itself in exactly one stderr line\n{}", out.report());
        assert!(
            lines[0].contains("protect-args") && lines[0].contains(cause),
            "{what}: the line must name the cause ({cause:?})\n{}",
            out.report()
        );
        assert!(!log.contains("BTRFS_IOC_SNAP_CREATE_V2"), "{what}: snaprsync snapshotted\n--- snaprsync log ---\n{log}");
        assert_eq!(rig.fs.subvolumes(), subvolumes, "{what}: subvolumes changed");
        let left = entries(&state);
        assert!(left.iter().all(|e| e.is_dir()), "{what}: journal entries left in {}: {left:?}", state.display());
        eprintln!("{what}: {}", lines[0]);
    }
}

/// A real BackupPC 4 full backup (`BackupPC_dump -f` running `rsync_bpc` with
/// its default `RsyncArgs`, so `--protect-args`) of a share on btrfs through
/// snaprsync over sshd: snaprsync reads the share from stdin and snapshots
/// it, BackupPC records a full backup, and the share restored from BackupPC
/// with `BackupPC_tarCreate` equals the source.
#[test]
fn backuppc_full_backup_through_snaprsync() {
    let rig = Rig::new("pa-backuppc");
    let share = rig.fs.mnt().join("BackupPC share ü");
    tree::make_sample(&share);
    fill_awkward(&share.join("awkward 'names'"));
    let bpc = BackupPc::new(&rig, &share, &rig.rsync_path(Remote::Snaprsync));

    let out = rig.assert_snapshotted("BackupPC full", || bpc.full());
    assert!(
        out.status.success(),
        "BackupPC_dump failed\n{}\n--- BackupPC host log ---\n{}\n--- snaprsync log ---\n{}",
        out.report(),
        bpc.host_log(),
        rig.log()
    );
    let log = rig.log();
    assert!(log.contains("protected args:"), "snaprsync did not read a protected-args block\n--- snaprsync log ---\n{log}");
    let backups = bpc.backups();
    assert!(
        backups.len() == 1 && backups[0].split('\t').nth(1) == Some("full"),
        "BackupPC must list one full backup, lists {backups:?}\n{}\n--- BackupPC host log ---\n{}",
        out.report(),
        bpc.host_log()
    );

    let restored = rig.dest("restored");
    let out = bpc.extract_latest(&restored);
    assert!(out.status.success(), "restoring the backup failed\n{}", out.report());
    tree::assert_same("BackupPC backup through snaprsync vs source", &tree::describe(&share), &tree::describe(&restored));
    eprintln!("BackupPC full through snaprsync: {} entries restored equal to the source", tree::names(&restored).len());
}

/// With `-s`, rsync itself expands glob patterns in the paths it reads from
/// stdin. snaprsync hands rsync the block on stdin, so a pattern backs up just
/// what plain rsync would, and from the snapshot.
#[test]
fn glob_patterns_in_protected_paths_expand_as_rsync_expands_them() {
    let rig = Rig::new("pa-glob");
    for (dir, file) in [("logs-a", "one"), ("logs-b", "two"), ("other", "three")] {
        std::fs::create_dir_all(rig.src().join(dir)).unwrap();
        std::fs::write(rig.src().join(dir).join(file), file).unwrap();
    }
    let pattern = format!("{}/logs-*", rig.src().display());
    let pull = |remote: Remote, dest: &Path| {
        let out = rig.rsync(remote).args(["-a", "-s"]).arg(format!("{}:{pattern}", HOST)).arg(format!("{}/", dest.display())).run();
        assert!(out.status.success(), "-s glob pull through {remote:?}\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
    };
    let with = rig.dest("snap");
    let without = rig.dest("live");
    rig.assert_snapshotted("-s glob pull", || pull(Remote::Snaprsync, &with));
    pull(Remote::Plain, &without);
    assert_eq!(top_names(&with), ["logs-a", "logs-b"]);
    tree::assert_same("-s glob: snaprsync vs plain rsync", &tree::describe(&without), &tree::describe(&with));
}
