//! Windows platform tests, run under wine by `scripts/windows.sh test`: drive
//! letters, argv rewriting, the rsync child, console events, the `live`
//! fallback when VSS is missing, and a whole run through `role::rsync` with
//! the directory test double standing in for VSS.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::config::{Config, OnSnapshotFailure};
use crate::provider::{SnapshotSet, VolumeSnapshot};

/// Tests that touch process-wide state (console handler, drive letters, env) run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A run through `role::rsync` names its rsync (the native echo helper).
    *READER.lock().unwrap_or_else(|e| e.into_inner()) = None;
    g
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

/// The argv-echoing stand-in for rsync that scripts/windows.sh builds.
fn echo_exe() -> PathBuf {
    PathBuf::from(std::env::var_os("SNAPRSYNC_ECHO_EXE").expect("SNAPRSYNC_ECHO_EXE is not set: run scripts/windows.sh test"))
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srs-win-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the echo helper through `run_child`; returns (status, lines it wrote).
fn echo(argv: &[OsString], exit: &str, sleep_ms: &str) -> (u8, Vec<String>) {
    let out = scratch("echo").join("out.txt");
    std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
    std::env::set_var("SNAPRSYNC_ECHO_EXIT", exit);
    std::env::set_var("SNAPRSYNC_ECHO_SLEEP", sleep_ms);
    let launch = Launch { program: echo_exe(), args: argv.to_vec(), env: Vec::new(), what: Program::Rsync, watch_peer: true };
    let status = run_child(&launch).unwrap();
    std::env::remove_var("SNAPRSYNC_ECHO_SLEEP");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    (status, text.lines().map(str::to_owned).collect())
}

const SHADOW: &str = r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy9\";

fn shadow_set() -> SnapshotSet {
    let v = |o: &str, s: &str| VolumeSnapshot { origin: o.into(), snapshot: s.into(), id: "{id}".into(), mount: None };
    SnapshotSet {
        provider: "vss",
        volumes: vec![v(r"C:\", SHADOW), v(r"D:\", r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy10\")],
        views: Vec::new(),
    }
}

fn sources_of(inv: &Invocation) -> Vec<PathBuf> {
    inv.sources().map(|a| Platform.source_path(a).unwrap()).collect()
}

#[test]
fn source_paths_are_native() {
    let _g = serial();
    assert_eq!(Platform.source_path("/cygdrive/c/NoSuch/".as_ref()), Some(PathBuf::from(r"C:\NoSuch")));
    // An existing one is named as the volume spells it (wine's is "users").
    assert_eq!(Platform.source_path("/cygdrive/c/USERS/".as_ref()), Some(PathBuf::from(r"C:\users")));
    assert_eq!(Platform.source_path("/d/data".as_ref()), Some(PathBuf::from(r"D:\data")));
    assert_eq!(Platform.source_path("C:/x y/".as_ref()), Some(PathBuf::from(r"C:\x y")));
    let rel = Platform.source_path("sub/dir".as_ref()).unwrap();
    assert_eq!(rel, std::env::current_dir().unwrap().join(r"sub\dir"));
    assert_eq!(Platform.source_path("/home/u".as_ref()), None);
}

/// The built snaprsync.exe carries its application manifest: long paths
/// (longPathAware) and the caller's token (asInvoker, no elevation prompt).
#[test]
fn the_exe_carries_a_long_path_aware_manifest() {
    let exe = PathBuf::from(std::env::var_os("SNAPRSYNC_EXE").expect("SNAPRSYNC_EXE is not set: run scripts/windows.sh test"));
    let m = ffi::manifest_of(&exe).unwrap_or_else(|e| panic!("{}: no manifest: {e}", exe.display()));
    let m: String = m.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(m.contains("<ws2:longPathAware>true</ws2:longPathAware>"), "{m}");
    assert!(m.contains(r#"xmlns:ws2="http://schemas.microsoft.com/SMI/2016/WindowsSettings""#), "{m}");
    assert!(m.contains(r#"<requestedExecutionLevel level="asInvoker""#), "{m}");
}

/// A source longer than MAX_PATH (260): its volume is found, it resolves to
/// itself, `vss_exclude_volumes` still matches it, and a whole run with the
/// directory double reads it from the copy (as far as wine allows).
#[test]
fn a_source_over_260_characters_is_found_resolved_and_excluded() {
    let _g = serial();
    let mut dir = scratch("long");
    while dir.as_os_str().len() < 300 {
        dir.push("a-rather-long-folder-name-to-pass-max-path");
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("probe.txt"), "original content").unwrap();
    let plain = dir.to_string_lossy().into_owned();
    assert!(plain.len() > 260 && !plain.starts_with(r"\\?\"), "{plain}");
    let root = crate::provider::vss::volume::volume_path_name(&dir).expect("the volume of a long path");
    assert!(same_volume_root(&root, &plain), "{root} for {plain}");
    let arg = format!("{plain}\\");
    let resolved = Platform.source_path(arg.as_ref()).unwrap();
    assert!(sources::same_place(&resolved.to_string_lossy(), &plain), "{} for {plain}", resolved.display());
    let drive = format!("{}:", &plain[..1]);
    assert_eq!(sources::excluded_by(&dir, std::slice::from_ref(&drive)), Some(drive.as_str()));
    // The form the path calls get it in: verbatim past MAX_PATH, short ones as they are.
    use crate::provider::vss::volume::long_form;
    assert_eq!(long_form(&dir), format!(r"\\?\{plain}"));
    assert_eq!(long_form(Path::new(r"C:\x")), r"C:\x");
    let unc = format!(r"\\srv\share\{}", "x".repeat(260));
    assert_eq!(long_form(Path::new(&unc)), format!(r"\\?\UNC\srv\share\{}", "x".repeat(260)));
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg]);
    let (r, lines, snaps) = run_with_double(&cfg_for(Expose::DevicePath, false), &argv, None);
    assert_eq!(r.unwrap(), 0);
    assert!(Path::new(&lines[4]).starts_with(&snaps), "{lines:?}");
    assert!(lines.iter().any(|l| l.ends_with("original content")), "{lines:?}");
}

/// `C:\` (or `\\?\C:\`) is the root of `path`'s drive.
fn same_volume_root(root: &str, path: &str) -> bool {
    let r = root.strip_prefix(r"\\?\").unwrap_or(root);
    r.len() == 3 && r[..1].eq_ignore_ascii_case(&path[..1]) && &r[1..] == ":\\"
}

#[test]
fn config_lives_under_programdata() {
    let p = crate::host::default_config_path();
    assert!(p.ends_with(r"snaprsync\config.toml"), "{}", p.display());
    assert!(p.to_string_lossy().to_ascii_lowercase().contains("programdata"), "{}", p.display());
}

#[test]
fn device_path_rewrites_each_source_for_the_reader() {
    let _g = serial();
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/cygdrive/c/Users/Jürgen Müller/", r"D:\data base", "C:/x/"]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let mut e = expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &shadow_set(), &inv, &sources_of(&inv), &[]).unwrap();
    assert_eq!(e.method(), Method::DevicePath);
    assert_eq!(
        e.argv(),
        os(&[
            "--server",
            "--sender",
            "-logDtpre.iLsfxCIvu",
            ".",
            "/proc/sys/Device/HarddiskVolumeShadowCopy9/Users/Jürgen Müller/",
            // Native forms, for a cygwin rsync: posix too, trailing slash kept.
            "/proc/sys/Device/HarddiskVolumeShadowCopy10/data base",
            "/proc/sys/Device/HarddiskVolumeShadowCopy9/x/",
        ])
    );
    e.undo().unwrap();
}

#[test]
fn a_native_rsync_gets_native_forms() {
    let _g = serial();
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", r"C:\Users\", "D:/data base", r"\\?\C:\x"]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let e = expose_with(Expose::DevicePath, "RS", Flavor::Native, &shadow_set(), &inv, &sources_of(&inv), &[]).unwrap();
    assert_eq!(
        e.argv()[4..],
        os(&[
            r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy9\Users\",
            r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy10\data base",
            r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy9\x",
        ])[..]
    );
}

#[test]
fn the_flavor_is_told_by_the_runtime_beside_rsync_exe() {
    let d = scratch("flavor");
    for (dll, want) in [(None, Flavor::Native), (Some("cygwin1.dll"), Flavor::Cygwin), (Some("msys-2.0.dll"), Flavor::Msys)] {
        let dir = d.join(format!("{want:?}"));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(dll) = dll {
            std::fs::write(dir.join(dll), b"").unwrap();
        }
        assert_eq!(flavor_of(&dir.join("rsync.exe")), want, "{dll:?}");
    }
}

#[test]
fn a_cygwin_or_msys_rsync_gets_noglob() {
    let _g = serial();
    std::env::set_var("CYGWIN", "winsymlinks:native");
    std::env::remove_var("MSYS");
    assert_eq!(reader_env(Flavor::Cygwin), [(OsString::from("CYGWIN"), OsString::from("winsymlinks:native noglob"))]);
    assert_eq!(reader_env(Flavor::Msys), [(OsString::from("MSYS"), OsString::from("noglob"))]);
    assert!(reader_env(Flavor::Native).is_empty());
    std::env::remove_var("CYGWIN");
}

#[test]
fn a_source_on_no_snapshotted_volume_is_never_read_live_in_silence() {
    let _g = serial();
    // It exists (the temp dir), but the set has no volume for its drive.
    let here = scratch("unmatched");
    let set = SnapshotSet { provider: "vss", volumes: vec![], views: Vec::new() };
    let arg = here.to_string_lossy().into_owned();
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let err = expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &set, &inv, &sources_of(&inv), &[]).err().expect("refused");
    assert_eq!(err.exit_code(), crate::error::status::NO_PROVIDER, "{err}");
    assert!(err.is_snapshot_failure(), "on_snapshot_failure = \"live\" may still take it, with a warning");
    assert!(err.to_string().contains("on no volume that was snapshotted"), "{err}");
    // One that does not exist is rsync's to report.
    let gone = format!("{arg}\\nothing-here");
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &gone]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let e = expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &set, &inv, &sources_of(&inv), &[]).unwrap();
    assert_eq!(e.argv()[4], gone.as_str());
}

#[test]
fn a_cygwin_root_path_is_refused_with_the_fix() {
    let _g = serial();
    for arg in ["/home/alice", "/home/alice/", "/usr/x", "/"] {
        let why = Platform.unmatched(arg.as_ref()).unwrap_or_else(|| panic!("{arg} passed"));
        assert!(why.contains("root") && why.contains("C:/cygwin64/"), "{why}");
    }
    for arg in ["/cygdrive/c/x/", "/c/x", "C:/x", r"C:\x", r"\\?\C:\x", "//server/share", "relative/x"] {
        assert_eq!(Platform.unmatched(arg.as_ref()), None, "{arg}");
    }
}

#[test]
fn a_posix_argument_reads_as_the_rsync_that_reads_it() {
    let _g = serial();
    let d = scratch("reader");
    let rsync_in = |dll: Option<&str>| {
        let dir = d.join(dll.unwrap_or("native"));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(dll) = dll {
            std::fs::write(dir.join(dll), b"").unwrap();
        }
        dir.join("rsync.exe")
    };
    // MSYS2: /c/Users is C:\Users.
    Platform.reader(&rsync_in(Some("msys-2.0.dll")));
    assert_eq!(Platform.source_path("/c/Users".as_ref()), Some(PathBuf::from(r"C:\Users")));
    assert_eq!(Platform.unmatched("/c/Users".as_ref()), None);
    // cygwin: /c/Users is under the cygwin root, /cygdrive/c/Users is C:\Users.
    Platform.reader(&rsync_in(Some("cygwin1.dll")));
    assert_eq!(Platform.source_path("/c/Users".as_ref()), None);
    assert!(Platform.unmatched("/c/Users".as_ref()).is_some_and(|w| w.contains("cygwin root")));
    assert_eq!(Platform.source_path("/cygdrive/c/Users".as_ref()), Some(PathBuf::from(r"C:\Users")));
    // A native rsync reads no posix form as a drive.
    Platform.reader(&rsync_in(None));
    assert!(Platform.unmatched("/cygdrive/c/Users".as_ref()).is_some());
    assert_eq!(Platform.source_path(r"C:\Users".as_ref()), Some(PathBuf::from(r"C:\Users")));
    *READER.lock().unwrap() = None;
}

#[test]
fn a_verbatim_volume_origin_still_matches() {
    let v = VolumeSnapshot { origin: r"\\?\C:\".into(), snapshot: SHADOW.into(), id: "{id}".into(), mount: None };
    let set = SnapshotSet { provider: "vss", volumes: vec![v], views: Vec::new() };
    assert!(find_volume(&set, Path::new(r"C:\Users\x")).is_some());
    assert!(find_volume(&set, Path::new(r"\\?\C:\Users\x")).is_some());
    assert!(find_volume(&set, Path::new(r"D:\Users")).is_none());
}

#[test]
fn a_source_that_is_a_mount_point_folder_never_becomes_a_bare_device_root() {
    let _g = serial();
    let v = |o: &str, s: &str| VolumeSnapshot { origin: o.into(), snapshot: s.into(), id: "{id}".into(), mount: None };
    let set = SnapshotSet {
        provider: "vss",
        volumes: vec![v(r"C:\", SHADOW), v(r"C:\Mount\Data\", r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy11\")],
        views: Vec::new(),
    };
    let run = |args: &[&str]| {
        let mut argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", "."]);
        argv.extend(os(args));
        let inv = crate::rsync_args::parse(&argv).unwrap();
        let sources: Vec<PathBuf> = args.iter().map(|a| PathBuf::from(a.trim_end_matches(['/', '\\']).replace('/', "\\"))).collect();
        expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &set, &inv, &sources, &[])
    };
    // With a trailing slash: the contents, from the mounted volume's shadow copy.
    let e = run(&["C:/Mount/Data/"]).unwrap();
    assert_eq!(e.argv()[4], "/proc/sys/Device/HarddiskVolumeShadowCopy11/");
    let e = run(&["C:/Mount/Data/sub"]).unwrap();
    assert_eq!(e.argv()[4], "/proc/sys/Device/HarddiskVolumeShadowCopy11/sub");
    // Without: it would be named after the device; refused, with the fix.
    let err = run(&["C:/Mount/Data"]).err().expect("refused");
    assert!(err.to_string().contains("volume mount point") && err.to_string().contains("C:/Mount/Data/"), "{err}");
    assert_eq!(err.exit_code(), crate::error::status::EXPOSE);
    // --relative with the marker above the mount point would drop Mount/Data from the names.
    let argv = os(&["--server", "--sender", "-logDtpRe.iLsfxCIvu", ".", "C:/./Mount/Data/x"]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let err = expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &set, &inv, &[PathBuf::from(r"C:\Mount\Data\x")], &[])
        .err()
        .expect("refused");
    assert!(err.to_string().contains("/./ marker at or below the mount point"), "{err}");
    let argv = os(&["--server", "--sender", "-logDtpRe.iLsfxCIvu", ".", "C:/Mount/Data/./x"]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let e = expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &set, &inv, &[PathBuf::from(r"C:\Mount\Data\x")], &[]).unwrap();
    assert_eq!(e.argv()[4], "/proc/sys/Device/HarddiskVolumeShadowCopy11/./x");
}

#[test]
fn relative_without_marker_is_refused_with_the_fix() {
    let _g = serial();
    let argv = os(&["--server", "--sender", "-logDtpRe.iLsfxCIvu", ".", "/cygdrive/c/Users/"]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    assert!(inv.relative);
    let err = expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &shadow_set(), &inv, &sources_of(&inv), &[]).err().unwrap();
    assert!(err.to_string().contains("/./"), "{err}");
    assert!(err.is_snapshot_failure());
    let argv = os(&["--server", "--sender", "-logDtpRe.iLsfxCIvu", ".", "/cygdrive/c/./Users/"]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let e = expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &shadow_set(), &inv, &sources_of(&inv), &[]).unwrap();
    assert_eq!(e.argv()[4], "/proc/sys/Device/HarddiskVolumeShadowCopy9/./Users/");
}

#[test]
fn drive_letter_is_mapped_exactly_and_removed_exactly() {
    let _g = serial();
    let target = r"\Device\HarddiskVolumeShadowCopy9";
    let mut taken = Vec::new();
    let letter = map_free_letter("RSTUVWXYZ", target, &mut taken).unwrap();
    let l = letter.letter;
    assert!("RSTUVWXY".contains(l), "{l} (Z: is wine's root drive)");
    assert_eq!(ffi::query_dos_device(&format!("{l}:")).first().map(String::as_str), Some(target));
    // A second mapping takes another letter.
    let second = map_free_letter("RSTUVWXYZ", target, &mut taken).unwrap();
    assert_ne!(second.letter, l);
    drop(second);
    let mut letter = letter;
    letter.remove().unwrap();
    assert!(ffi::query_dos_device(&format!("{l}:")).is_empty(), "{l}: still mapped");
    // No letter left: a clear error naming the fix.
    let used = ffi::logical_drives();
    let busy: String = ('A'..='Z').filter(|c| used & (1 << (*c as u32 - 'A' as u32)) != 0).collect();
    let err = map_free_letter(&busy, target, &mut Vec::new()).err().unwrap();
    assert!(err.to_string().contains("device-path"), "{err}");
}

/// Another program defines the very letter between snaprsync's check and
/// its definition (the fault point): theirs is kept, and the next letter is
/// taken, with exactly our definition. (Wine refuses a second definition of a
/// letter, where Windows stacks it on top: the stacked case is decided by
/// [`letter_is_ours`], tested below.)
#[test]
fn a_letter_defined_by_another_between_check_and_define_is_left_to_it() {
    let _g = serial();
    let (ours, theirs) = (r"\Device\HarddiskVolumeShadowCopy31", r"\Device\HarddiskVolumeShadowCopy32");
    let raced = std::rc::Rc::new(std::cell::Cell::new(None));
    let seen = raced.clone();
    BETWEEN_CHECK_AND_DEFINE.with(|f| {
        *f.borrow_mut() = Some(Box::new(move |l| {
            if seen.get().is_none() {
                ffi::define_letter(l, theirs).unwrap();
                seen.set(Some(l));
            }
        }))
    });
    let got = map_free_letter("RSTUVWXY", ours, &mut Vec::new());
    BETWEEN_CHECK_AND_DEFINE.with(|f| *f.borrow_mut() = None);
    let lost = raced.get().expect("the fault point ran");
    let got = got.unwrap();
    let (mine, kept) = (ffi::query_dos_device(&format!("{}:", got.letter)), ffi::query_dos_device(&format!("{lost}:")));
    drop(got);
    ffi::remove_letter(lost, theirs).unwrap();
    assert_eq!(kept, [theirs], "{lost}: the other program's definition must be kept, and only it");
    assert_eq!(mine, [ours], "the letter taken has exactly our definition");
}

/// Windows stacks definitions, newest first: a letter is ours only with
/// exactly one, ours. Checking only the newest took a letter another run had
/// defined just before, and left that run reading this run's copy.
#[test]
fn a_letter_is_ours_only_with_exactly_our_definition() {
    let (ours, theirs) = (r"\Device\HarddiskVolumeShadowCopy31".to_owned(), r"\Device\HarddiskVolumeShadowCopy32".to_owned());
    assert!(letter_is_ours(std::slice::from_ref(&ours), &ours));
    for targets in [
        vec![ours.clone(), theirs.clone()],
        vec![theirs.clone(), ours.clone()],
        vec![theirs.clone()],
        vec![],
        vec![ours.clone(), ours.clone()],
    ] {
        assert!(!letter_is_ours(&targets, &ours), "{targets:?}");
    }
}

/// Two mappers at once, the first held between its check and its
/// definition: the second waits for the lock snaprsync runs share instead of
/// taking the same free letter, so the first keeps the letter it checked, the
/// second gets the next, and each letter leads to its own run's copy only
/// (wine cannot open files through a letter, so QueryDosDevice tells).
#[test]
fn two_concurrent_mappers_each_get_their_own_letter() {
    let _g = serial();
    let d = scratch("two-mappers");
    let copy = |n: &str| format!(r"\??\{}", d.join(n).display());
    let (ta, tb) = (copy("copy-a"), copy("copy-b"));
    let (checked_tx, checked_rx) = std::sync::mpsc::channel();
    let ta2 = ta.clone();
    let a = std::thread::spawn(move || {
        BETWEEN_CHECK_AND_DEFINE.with(|f| {
            let mut once = Some(checked_tx);
            *f.borrow_mut() = Some(Box::new(move |l| {
                if let Some(tx) = once.take() {
                    tx.send(l).unwrap();
                    std::thread::sleep(Duration::from_millis(700));
                }
            }))
        });
        let l = map_free_letter("RSTUVWXY", &ta2, &mut Vec::new()).unwrap();
        let seen = ffi::query_dos_device(&format!("{}:", l.letter));
        (l, seen)
    });
    let checked = checked_rx.recv().unwrap();
    let tb2 = tb.clone();
    let b = std::thread::spawn(move || {
        let l = map_free_letter("RSTUVWXY", &tb2, &mut Vec::new()).unwrap();
        let seen = ffi::query_dos_device(&format!("{}:", l.letter));
        (l, seen)
    });
    let (la, seen_a) = a.join().unwrap();
    let (lb, seen_b) = b.join().unwrap();
    let now = (ffi::query_dos_device(&format!("{}:", la.letter)), ffi::query_dos_device(&format!("{}:", lb.letter)));
    let (a_letter, b_letter) = (la.letter, lb.letter);
    drop((la, lb));
    assert_eq!(a_letter, checked, "the first mapper keeps the letter it checked");
    assert_ne!(a_letter, b_letter);
    assert_eq!((seen_a, seen_b), (vec![ta.clone()], vec![tb.clone()]));
    assert_eq!(now, (vec![ta], vec![tb]), "each letter still has only its own run's definition");
    for l in [a_letter, b_letter] {
        assert!(ffi::query_dos_device(&format!("{l}:")).is_empty(), "{l}: still mapped");
    }
}

#[test]
fn the_sweep_removes_a_letter_left_on_a_dead_shadow_copy_and_nothing_else() {
    let _g = serial();
    let dead = r"\Device\HarddiskVolumeShadowCopy4242";
    let other_target = r"\Device\Mup\server\share";
    // Mapped as a killed run left it (no Letter guard to undo it), and
    // another tool's letter to something that is not a shadow copy.
    let free: Vec<char> = "RSTUVWXY".chars().filter(|l| ffi::query_dos_device(&format!("{l}:")).is_empty()).collect();
    let (stray, other) = (free[0], free[1]);
    ffi::define_letter(stray, dead).unwrap();
    ffi::define_letter(other, other_target).unwrap();
    let mut p = Platform.sweep_provider(&Config::default()).unwrap();
    let found: Vec<PathBuf> = p.leftovers().unwrap().into_iter().map(|l| l.path).collect();
    assert!(found.contains(&PathBuf::from(format!("{stray}:"))), "{found:?}");
    assert!(!found.contains(&PathBuf::from(format!("{other}:"))), "{found:?}");
    for l in p.leftovers().unwrap() {
        p.remove_leftover(&l).unwrap();
    }
    assert!(ffi::query_dos_device(&format!("{stray}:")).is_empty(), "the stray letter is still mapped");
    assert_eq!(ffi::query_dos_device(&format!("{other}:")), [other_target]);
    ffi::remove_letter(other, other_target).unwrap();
}

#[test]
fn drive_letter_exposure_rewrites_and_undo_unmaps() {
    let _g = serial();
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/cygdrive/c/Users/", "/c/Users/x", r"C:\Users\", r"D:\data"]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let mut e = expose_with(Expose::DriveLetter, "RSTUVWXY", Flavor::Msys, &shadow_set(), &inv, &sources_of(&inv), &[]).unwrap();
    let a: Vec<String> = e.argv().iter().map(|s| s.to_string_lossy().into_owned()).collect();
    let c = a[4].chars().nth("/cygdrive/".len()).unwrap();
    let d = a[7].chars().next().unwrap();
    assert_ne!(c.to_ascii_uppercase(), d);
    assert_eq!(a[4], format!("/cygdrive/{c}/Users/"));
    assert_eq!(a[5], format!("/{c}/Users/x"));
    // Native forms, for an MSYS2 rsync: forward slashes, never a backslash.
    assert_eq!(a[6], format!("{}:/Users/", c.to_ascii_uppercase()));
    assert_eq!(a[7], format!("{d}:/data"));
    let cu = c.to_ascii_uppercase();
    assert_eq!(ffi::query_dos_device(&format!("{cu}:")), [r"\Device\HarddiskVolumeShadowCopy9"]);
    assert_eq!(ffi::query_dos_device(&format!("{d}:")), [r"\Device\HarddiskVolumeShadowCopy10"]);
    e.undo().unwrap();
    assert!(ffi::query_dos_device(&format!("{cu}:")).is_empty());
    assert!(ffi::query_dos_device(&format!("{d}:")).is_empty());
}

/// rsync and COMMAND start with SeBackupPrivilege enabled in the token they
/// inherit, and a receiving rsync (a push) with SeRestorePrivilege too: the
/// stand-in reads its own token. Wine's token holds both, disabled at first.
#[test]
fn the_program_inherits_the_backup_privileges_it_needs() {
    let _g = serial();
    let privs = |args: &[&str], what: Program| {
        for p in ["SeBackupPrivilege", "SeRestorePrivilege"] {
            assert!(ffi::set_privilege(p, false).unwrap(), "wine's token holds {p}");
            assert_eq!(ffi::privilege_enabled(p).unwrap(), Some(false));
        }
        let out = scratch("privs").join("out.txt");
        std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
        std::env::set_var("SNAPRSYNC_ECHO_EXIT", "0");
        std::env::set_var("SNAPRSYNC_ECHO_PRIVS", "1");
        let launch = Launch { program: echo_exe(), args: os(args), env: Vec::new(), what, watch_peer: true };
        assert_eq!(run_child(&launch).unwrap(), 0);
        std::env::remove_var("SNAPRSYNC_ECHO_PRIVS");
        let text = std::fs::read_to_string(&out).unwrap();
        text.lines().filter(|l| l.starts_with("priv ")).map(str::to_owned).collect::<Vec<_>>()
    };
    let sender = privs(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "C:/x/"], Program::Rsync);
    assert_eq!(sender, ["priv SeBackupPrivilege enabled", "priv SeRestorePrivilege disabled"]);
    let receiver = privs(&["--server", "-logDtpre.iLsfxCIvu", ".", "C:/x/"], Program::Rsync);
    assert_eq!(receiver, ["priv SeBackupPrivilege enabled", "priv SeRestorePrivilege enabled"]);
    let command = privs(&["--server"], Program::Command);
    assert_eq!(command, ["priv SeBackupPrivilege enabled", "priv SeRestorePrivilege disabled"]);
}

#[test]
fn child_gets_exact_arguments_and_its_status_comes_back() {
    let _g = serial();
    let tricky = ["plain", "with space", "", r#"quo"te"#, r"trailing\", r"C:\dir with space\", "ünï €", r#"a\"b"#, "--server"];
    let (status, lines) = echo(&os(&tricky), "23", "0");
    assert_eq!(status, 23);
    assert_eq!(lines, tricky);
    let (status, _) = echo(&os(&["x"]), "0", "0");
    assert_eq!(status, 0);
}

#[test]
fn console_event_ends_rsync_and_is_held_for_cleanup() {
    let _g = serial();
    ffi::reset_stopping();
    Platform.hold_signals().unwrap();
    assert_eq!(Platform.pending_signal(), None);
    let t = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        ffi::raise_console_event(0 /* CTRL_C_EVENT */);
    });
    let started = std::time::Instant::now();
    let (status, lines) = echo(&os(&["long"]), "0", "60000");
    t.join().unwrap();
    assert!(started.elapsed().as_secs() < 30, "rsync was not ended");
    assert_eq!(status, ffi::KILLED_STATUS as u8);
    assert_eq!(lines, ["long"]);
    assert_eq!(Platform.pending_signal(), Some(2));
    ffi::reset_stopping();
}

#[test]
fn a_console_event_during_creation_ends_it_with_130_not_after_vss_timeout() {
    let _g = serial();
    ffi::reset_stopping();
    let dir = source_tree("stop");
    let mut cfg = cfg_for(Expose::DevicePath, false);
    cfg.vss_timeout = 600;
    let mut p = Platform.provider(&cfg, std::slice::from_ref(&dir)).unwrap();
    ffi::raise_console_event(0 /* CTRL_C_EVENT */);
    let started = std::time::Instant::now();
    let err = p.create(std::slice::from_ref(&dir)).err().expect("stopped");
    assert_eq!(err.exit_code(), 130, "{err}");
    assert!(started.elapsed().as_secs() < 5, "waited {:?}", started.elapsed());
    ffi::reset_stopping();
    // Without the event, the same call reaches VSS (which wine lacks: 92).
    let err = p.create(std::slice::from_ref(&dir)).err().expect("no VSS under wine");
    assert_eq!(err.exit_code(), crate::provider::vss::status::UNAVAILABLE, "{err}");
}

#[test]
fn another_users_logoff_does_not_end_a_backup_run_over_ssh() {
    let _g = serial();
    ffi::reset_stopping();
    Platform.hold_signals().unwrap();
    std::env::set_var("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22");
    ffi::raise_console_event(5 /* CTRL_LOGOFF_EVENT */);
    assert!(!ffi::stopping(), "a logoff under sshd ended the run");
    std::env::remove_var("SSH_CONNECTION");
    // At a console of its own, a logoff is this session's: the run ends.
    Platform.finished();
    ffi::raise_console_event(5);
    assert!(ffi::stopping());
    ffi::reset_stopping();
}

#[test]
fn a_close_event_waits_for_the_cleanup_not_a_timer() {
    let _g = serial();
    ffi::reset_stopping();
    Platform.hold_signals().unwrap();
    let started = std::time::Instant::now();
    let t = std::thread::spawn(|| {
        ffi::raise_console_event(2 /* CTRL_CLOSE_EVENT */);
        std::time::Instant::now()
    });
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(!t.is_finished(), "the handler returned before the cleanup");
    let cleaned = std::time::Instant::now();
    Platform.finished();
    let returned = t.join().unwrap();
    assert!(returned >= cleaned, "the handler returned before the cleanup");
    assert!(returned.duration_since(started).as_millis() < 3000, "the handler waited out a timer: {:?}", returned.duration_since(started));
    ffi::reset_stopping();
}

/// Writes a source tree with a probe file; returns (dir, native arg with trailing slash).
fn source_tree(tag: &str) -> PathBuf {
    let dir = scratch(tag).join("My Files");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("probe.txt"), "original content").unwrap();
    dir
}

fn cfg_for(expose: Expose, live: bool) -> Config {
    Config {
        rsync_path: Some(echo_exe()),
        on_snapshot_failure: if live { OnSnapshotFailure::Live } else { OnSnapshotFailure::Fail },
        expose,
        drive_letters: "RSTUVWXY".into(),
        state_dir: Some(scratch("state")),
        vss_timeout: 5,
        ..Config::default()
    }
}

#[test]
fn missing_vss_fails_with_its_status_or_falls_back_to_live() {
    let _g = serial();
    ffi::reset_stopping();
    let dir = source_tree("live");
    let arg = format!("{}\\", dir.display());
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg]);
    let out = scratch("live-out").join("out.txt");
    std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
    std::env::set_var("SNAPRSYNC_ECHO_EXIT", "0");

    let err = crate::role::rsync::rsync(&Platform, &cfg_for(Expose::DriveLetter, false), &crate::cli::Options::default(), argv.clone())
        .expect_err("VSS cannot work under wine");
    assert_eq!(err.exit_code(), crate::provider::vss::status::UNAVAILABLE, "{err}");
    assert!(err.to_string().contains("on_snapshot_failure"), "{err}");
    assert!(!out.exists(), "rsync must not run when the snapshot failed");

    let status =
        crate::role::rsync::rsync(&Platform, &cfg_for(Expose::DriveLetter, true), &crate::cli::Options::default(), argv.clone()).unwrap();
    assert_eq!(status, 0);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..5], ["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", arg.as_str()], "live runs the argv unchanged");
    assert!(text.contains("read ") && text.contains("original content"), "{text}");
}

#[test]
fn a_run_with_a_cygwin_root_source_fails_83_or_goes_live_with_a_warning() {
    let _g = serial();
    ffi::reset_stopping();
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/home/alice/"]);
    let out = scratch("cygroot-out").join("out.txt");
    std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
    std::env::set_var("SNAPRSYNC_ECHO_EXIT", "0");
    let err = crate::role::rsync::rsync(&Platform, &cfg_for(Expose::DevicePath, false), &crate::cli::Options::default(), argv.clone())
        .expect_err("a cygwin-root source is refused");
    assert_eq!(err.exit_code(), crate::error::status::NO_PROVIDER, "{err}");
    assert!(err.to_string().contains("/home/alice/") && err.to_string().contains("on_snapshot_failure"), "{err}");
    assert!(!out.exists(), "rsync must not run");
    let status = crate::role::rsync::rsync(&Platform, &cfg_for(Expose::DevicePath, true), &crate::cli::Options::default(), argv).unwrap();
    assert_eq!(status, 0);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().nth(4), Some("/home/alice/"), "live: the argv unchanged\n{text}");
}

/// The whole orchestration (argv -> provider -> exposure -> rsync -> removal),
/// with the directory TEST DOUBLE in place of VSS.
#[test]
fn end_to_end_with_the_directory_double() {
    let _g = serial();
    ffi::reset_stopping();
    let dir = source_tree("e2e");
    let snaps = scratch("e2e-snaps");
    let double = dir_double::DirSystem::new(&snaps);
    let arg = format!("{}\\", dir.display());
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg]);
    let out = scratch("e2e-out").join("out.txt");
    std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
    std::env::set_var("SNAPRSYNC_ECHO_EXIT", "24");

    let status = crate::role::rsync::rsync(&double, &cfg_for(Expose::DevicePath, false), &crate::cli::Options::default(), argv).unwrap();
    // The live file changes after the "snapshot": rsync must have read the copy.
    assert_eq!(status, 24, "rsync's status is passed through");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..4], ["--server", "--sender", "-logDtpre.iLsfxCIvu", "."]);
    let rewritten = Path::new(lines[4]);
    assert!(rewritten.starts_with(&snaps), "{} not in the double's copy {}", rewritten.display(), snaps.display());
    assert!(lines[4].ends_with("My Files\\"), "trailing slash kept: {}", lines[4]);
    assert!(text.contains("original content"), "{text}");
    assert_eq!(std::fs::read_dir(&snaps).unwrap().count(), 0, "the double's snapshot was not removed");
}

/// A shadow copy that vanishes while rsync reads it (volsnap's Event 25)
/// fails the run with 93, naming the event and the fix, although rsync's
/// stand-in ends with 24 (files vanished), which many servers accept. The
/// TEST DOUBLE deletes its copy once the stand-in has started.
#[test]
fn a_shadow_copy_that_vanishes_mid_run_fails_the_run_with_93() {
    let _g = serial();
    ffi::reset_stopping();
    let dir = source_tree("vanish");
    let snaps = scratch("vanish-snaps");
    let out = scratch("vanish-out").join("out.txt");
    let double = dir_double::DirSystem::new(&snaps).vanish_when(&out);
    std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
    std::env::set_var("SNAPRSYNC_ECHO_EXIT", "24");
    std::env::set_var("SNAPRSYNC_ECHO_SLEEP", "1500");
    let arg = format!("{}\\", dir.display());
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg]);
    let r = crate::role::rsync::rsync(&double, &cfg_for(Expose::DevicePath, true), &crate::cli::Options::default(), argv);
    std::env::remove_var("SNAPRSYNC_ECHO_SLEEP");
    let err = r.expect_err("a vanished shadow copy must fail the run");
    assert_eq!(err.exit_code(), crate::error::status::SNAPSHOT_OVERFLOW, "{err}");
    let msg = err.to_string();
    for want in ["vanished", "Event 25", "vssadmin resize shadowstorage", "no longer finds it"] {
        assert!(msg.contains(want), "{want:?} not in: {msg}");
    }
    assert!(!msg.contains('\n'), "{msg}");
    assert!(std::fs::read_to_string(&out).unwrap().contains("original content"), "the stand-in ran on the copy first");
    assert_eq!(std::fs::read_dir(&snaps).unwrap().count(), 0, "nothing of the double's is left");
}

/// The real field under wine: VSS answers E_NOTIMPL, so the `vss` check
/// fails with 92 and every check that needs a set says it did not run; the
/// report (file and stdout alike) ends with its summary and the line FAIL.
#[test]
fn selftest_under_wine_reports_the_failure_and_writes_the_report() {
    let _g = serial();
    let report = scratch("selftest").join("report.txt");
    let status = selftest(&cfg_for(Expose::DriveLetter, false), &os(&["--report", &report.display().to_string()])).unwrap();
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(status, crate::provider::vss::status::UNAVAILABLE, "{text}");
    assert_eq!(text.lines().last(), Some("FAIL"), "{text}");
    assert!(text.contains("  FAIL vss: VSS CreateVssBackupComponents"), "{text}");
    for name in ["locked file", "long path", "acl", "exposures", "killed run"] {
        assert!(text.contains(&format!("  FAIL {name}: not run")), "{name}: {text}");
    }
    assert!(text.contains("CreateVssBackupComponents: failed, HRESULT 0x80004001"), "the sequence as far as it went: {text}");
    assert!(selftest::parse_args(&os(&["--bogus"])).is_err());
    assert_eq!(selftest::parse_args(&os(&["--show-names", "--report=r"])).unwrap(), (Some(PathBuf::from("r")), true));
}

/// The field test on the TEST DOUBLE of the machine (dir_double::FieldDouble):
/// every check runs and passes, in order, each with what it saw; a file held
/// open without sharing is refused live (wine keeps the lock) and read from
/// the copy; the path of over 260 characters is read; the denied file is read
/// with backup semantics; rsync's stand-in lists both exposures with owners;
/// the child run's kill is timed; the summary comes last, then PASS.
#[test]
fn selftest_passes_every_check_on_the_test_double() {
    let _g = serial();
    std::env::remove_var("SNAPRSYNC_FAULT");
    let text = field_run(Flavor::Native, Duration::from_millis(300)).1;
    assert_eq!(text.lines().last(), Some("PASS"), "{text}");
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("system: windows x86_64, Microsoft Windows")), "{text}");
    let order: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(order, ["[vss]", "[locked file]", "[long path]", "[acl]", "[exposures]", "[vss removal]", "[killed run]"], "{text}");
    let summary = text.split("\nsummary:\n").nth(1).expect("a summary");
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 8, "{summary}");
    assert!(lines[..7].iter().all(|l| l.starts_with("  PASS ")), "{summary}");
    for want in [
        "live read of the file held open without sharing: refused, as it should be",
        "PASS long path: a path of ",
        "plain read: refused, as the ACL says",
        "read with backup semantics: read, content as written",
        "-rw-r--r-- 544:513 ",
        "PASS exposures: both exposures list the same modes, owners, sizes and times",
        "the child run's set is listed after",
        "PASS killed run: its set was gone from the VSS query 0.",
    ] {
        assert!(text.contains(want), "{want:?} not in: {text}");
    }
    assert!(text.contains("  PASS vss: 1 shadow copy made; 0 writer(s), 0 failed\n"), "{text}");
    let n: usize = text.split("a path of ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(n > 260, "{n}");
}

/// Runs the field test on the double; (report, its text).
fn field_run(flavor: Flavor, release_after: Duration) -> (selftest::Report, String) {
    field_run_with(flavor, release_after, false)
}

/// The same; `weak`: the double's lock and ACL keep no plain reader out.
fn field_run_with(flavor: Flavor, release_after: Duration, weak: bool) -> (selftest::Report, String) {
    let base = scratch("field");
    let snaps = scratch("field-snaps");
    let rsync = flavored_rsync(flavor);
    let mut field = dir_double::FieldDouble::new(&snaps, &rsync, &echo_exe(), release_after);
    field.weak = weak;
    let report = selftest::run(&cfg_for(Expose::DriveLetter, false), &mut field, &base, Duration::from_secs(2));
    let text = report.render("report.txt");
    drop(field);
    let left = std::fs::read_dir(&snaps).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count();
    assert_eq!(left, 0, "the double's copy is removed");
    assert_eq!(std::fs::read_dir(&base).unwrap().count(), 0, "the scratch folder is removed: {text}");
    (report, text)
}

/// Each check's failure path, forced by its fault point: that check (and
/// only it) fails, the report says why, and it ends with FAIL and a status.
/// Other owners through the two exposures fail for a native rsync and pass,
/// named, for a cygwin one.
#[test]
fn each_selftest_check_fails_by_its_fault_point() {
    let _g = serial();
    let cases = [
        ("selftest:vss", "vss", "fault injected"),
        ("selftest:locked", "locked file", "was not read back"),
        ("selftest:long", "long path", "was not read back"),
        ("selftest:acl", "acl", "not read with backup semantics"),
        ("selftest:exposures", "exposures", "a native rsync lists 1 entry with other modes or owners"),
        ("selftest:kill", "killed run", "still listed 2 s after the kill"),
    ];
    for (point, check, says) in cases {
        std::env::set_var("SNAPRSYNC_FAULT", point);
        let (report, text) = field_run(Flavor::Native, Duration::from_millis(100));
        std::env::remove_var("SNAPRSYNC_FAULT");
        assert_eq!(text.lines().last(), Some("FAIL"), "{point}: {text}");
        assert_ne!(report.status(), 0, "{point}");
        for c in &report.checks {
            let failed = c.outcome.is_err();
            let expected = c.name == check || (check == "vss" && c.name != "vss removal");
            assert_eq!(failed, expected, "{point}: {} {:?}", c.name, c.outcome.as_ref().err().map(ToString::to_string));
        }
        assert!(text.contains(&format!("  FAIL {check}: ")) && text.contains(says), "{point}: {says:?} not in {text}");
    }
    // A lock or an ACL that keeps no plain reader out shows nothing: both
    // fail; so does a child run that ends before VSS lists a set of its own.
    let (report, text) = field_run_with(Flavor::Native, Duration::from_millis(100), true);
    let failed: Vec<&str> = report.checks.iter().filter(|c| c.outcome.is_err()).map(|c| c.name).collect();
    assert_eq!(failed, ["locked file", "acl", "killed run"], "{text}");
    assert!(text.contains("FAIL killed run: the child run ended with 3 before VSS listed a shadow copy of its own"), "{text}");
    assert!(text.contains("FAIL locked file: the lock did not keep a plain reader out"), "{text}");
    assert!(text.contains("FAIL acl: the ACL did not keep a plain reader out"), "{text}");
    std::env::set_var("SNAPRSYNC_FAULT", "selftest:exposures");
    let (report, text) = field_run(Flavor::Cygwin, Duration::from_millis(100));
    std::env::remove_var("SNAPRSYNC_FAULT");
    assert!(report.passed(), "{text}");
    assert!(text.contains("PASS exposures: 1 entry with other modes or owners through the two, as a Cygwin rsync reads"), "{text}");
    assert!(text.contains("197108:197121"), "the other owner is shown: {text}");
}

/// The report names no user, domain or machine unless `--show-names`: this
/// machine's (under wine the temp folder holds the user's name) are replaced
/// as whole words, in any case, in the file and on stdout alike.
#[test]
fn selftest_report_names_no_user_or_machine_unless_asked() {
    let _g = serial();
    let r = selftest::Redactor::new(vec![("Al".into(), "<user>"), (r"C:\Users\Al".into(), "<profile>"), ("PC-7".into(), "<machine>")]);
    assert_eq!(
        r.apply(r"al on pc-7: C:\users\al\x, also Alan, al.txt, Al"),
        r"<user> on <machine>: <profile>\x, also Alan, al.txt, <user>"
    );
    let user = std::env::var("USERNAME").unwrap();
    let machine = std::env::var("COMPUTERNAME").unwrap();
    let report = selftest::Report {
        head: vec![format!("scratch folder: {}", std::env::temp_dir().display()), format!("on {machine} as {user}")],
        checks: vec![selftest::Check { name: "vss", lines: Vec::new(), outcome: Ok(format!("by {user}")) }],
    };
    let file = scratch("redact").join("report.txt");
    for (redactor, kept) in [(selftest::Redactor::of_this_machine(), false), (selftest::Redactor::none(), true)] {
        assert_eq!(selftest::finish(&report, &file, &redactor).unwrap(), 0);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().last(), Some("PASS"));
        for name in [&user, &machine] {
            let found = text.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_').any(|w| w.eq_ignore_ascii_case(name));
            assert_eq!(found, kept, "{name} in {text}");
        }
        assert_eq!(text.contains("<user>"), !kept, "{text}");
    }
}

/// The killed child run reads the config the self-test was given.
#[test]
fn the_child_run_gets_the_same_config_option() {
    let args = os(&["snaprsync", "--snap-config=C:\\a b.toml", "selftest", "--snap-config", "x.toml", "--report", "r"]);
    assert_eq!(selftest::config_args(args.into_iter()), os(&["--snap-config=C:\\a b.toml", "--snap-config", "x.toml"]));
    assert!(selftest::config_args(os(&["snaprsync", "selftest"]).into_iter()).is_empty());
}

#[test]
fn shadow_devices_are_read_from_vssadmin_output() {
    let out = "vssadmin 1.1\r\n\r\nContents of shadow copy set ID: {a}\r\n   Shadow Copy Volume: \\\\?\\GLOBALROOT\\Device\\HarddiskVolumeShadowCopy3\r\n   Inhalt: \\\\?\\GLOBALROOT\\Device\\HarddiskVolumeShadowCopy12\\ x\r\n";
    assert_eq!(
        selftest::shadow_devices(out),
        [r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy3", r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy12"]
    );
    assert!(selftest::shadow_devices("No items found that satisfy the query.").is_empty());
}

/// `snaprsync exec C:\...\My Files -- prog args` with the directory TEST
/// DOUBLE in place of VSS: the program gets its own argv untouched, the
/// documented variables, and reads the snapshot where SNAPRSYNC_PATH_0 says,
/// although a post_snapshot hook (the same helper) changed the live file
/// after the snapshot; its status passes through and the snapshot is removed.
#[test]
fn exec_shows_the_snapshot_where_the_environment_says() {
    let _g = serial();
    ffi::reset_stopping();
    let dir = source_tree("exec");
    let snaps = scratch("exec-snaps");
    let out = scratch("exec-out").join("out.txt");
    let hook_out = scratch("exec-hook").join("hooks.txt");
    std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
    std::env::set_var("SNAPRSYNC_ECHO_EXIT", "7");
    std::env::set_var("SNAPRSYNC_ECHO_HOOK_OUT", &hook_out);
    std::env::set_var("SNAPRSYNC_ECHO_CLOBBER", dir.join("probe.txt"));
    let echo = echo_exe().display().to_string();
    let cfg = Config { post_snapshot: Some(vec![echo.clone()]), ..cfg_for(Expose::DevicePath, false) };
    let exec = crate::cli::Exec { paths: vec![dir.clone().into()], command: os(&[&echo, "arg one", r"C:\x y\"]) };
    let status = crate::role::exec::run(&dir_double::DirSystem::new(&snaps), &cfg, &crate::cli::Options::default(), exec);
    std::env::remove_var("SNAPRSYNC_ECHO_CLOBBER");
    std::env::remove_var("SNAPRSYNC_ECHO_HOOK_OUT");
    assert_eq!(status.unwrap(), 7, "the command's status is exec's");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["arg one", r"C:\x y\"], "the command's argv is its own: {text}");
    let snap = snaps.join("snap0");
    for want in [
        "env SNAPRSYNC_EXPOSE=device-path".to_owned(),
        "env SNAPRSYNC_SNAPSHOT_COUNT=1".to_owned(),
        format!("env SNAPRSYNC_SNAPSHOT_0_ORIGIN={}", dir.parent().unwrap().display()),
        format!("env SNAPRSYNC_SNAPSHOT_0_PATH={}", snap.display()),
        "env SNAPRSYNC_PATH_COUNT=1".to_owned(),
        format!("env SNAPRSYNC_PATH_0={}", snap.join("My Files").display()),
        format!("read-path0 {}: original content", snap.join("My Files").display()),
    ] {
        assert!(lines.contains(&want.as_str()), "{want:?} missing from:\n{text}");
    }
    assert!(lines.iter().any(|l| l.starts_with("env SNAPRSYNC_STAMP=snaprsync-")), "{text}");
    assert_eq!(std::fs::read_to_string(dir.join("probe.txt")).unwrap(), "changed after the snapshot", "the hook changed the live file");
    assert_eq!(std::fs::read_to_string(&hook_out).unwrap().trim(), "hook post_snapshot created");
    assert_eq!(std::fs::read_dir(&snaps).unwrap().count(), 0, "the double's snapshot was not removed");
}

/// A failing pre_snapshot hook under Windows: status 94, the command never
/// runs, nothing is snapshotted.
#[test]
fn exec_with_a_failing_hook_is_94_and_runs_nothing() {
    let _g = serial();
    ffi::reset_stopping();
    let dir = source_tree("exec-hook");
    let snaps = scratch("exec-hook-snaps");
    let out = scratch("exec-hook-out").join("out.txt");
    std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
    let cfg = Config { pre_snapshot: Some(vec![r"C:\nonexistent\hook.exe".into()]), ..cfg_for(Expose::DevicePath, false) };
    let exec = crate::cli::Exec { paths: vec![dir.into()], command: os(&[&echo_exe().display().to_string()]) };
    let err = crate::role::exec::run(&dir_double::DirSystem::new(&snaps), &cfg, &crate::cli::Options::default(), exec)
        .expect_err("the hook cannot start");
    assert_eq!(err.exit_code(), crate::error::status::HOOK, "{err}");
    assert!(!out.exists(), "the command must not run");
    assert_eq!(std::fs::read_dir(&snaps).unwrap().count(), 0);
}

/// The fixture scripts/windows.sh makes: `C:\snaprsync-links\data`, whose
/// `link` leads to a folder on Z: (it stands in for a junction, which wine 8
/// cannot make), and that folder's Windows path.
fn link_fixture() -> (String, String) {
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} is not set: run scripts/windows.sh test"));
    (var("SNAPRSYNC_LINK_FIXTURE"), var("SNAPRSYNC_LINK_TARGET").trim_end_matches('\\').to_owned())
}

/// A set shadowing C: (copy 9) and Z: (copy 10), as VSS would name them.
fn c_and_z() -> SnapshotSet {
    let v = |o: &str, s: &str| VolumeSnapshot { origin: o.into(), snapshot: s.into(), id: o.into(), mount: None };
    SnapshotSet {
        provider: "vss",
        volumes: vec![v(r"C:\", SHADOW), v(r"Z:\", r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy10\")],
        views: Vec::new(),
    }
}

/// `Z:\a\b` → `a/b`.
fn below_root(p: &str, sep: &str) -> String {
    p[3..].replace('\\', sep)
}

#[test]
fn a_source_through_a_linked_folder_is_read_on_the_volume_it_leads_to() {
    let _g = serial();
    let (data, target) = link_fixture();
    let posix = data.replace('\\', "/");
    // The name alone says C:, which is what GetVolumePathNameW answers.
    let lexical = PathBuf::from(format!(r"{data}\link\sub"));
    assert_eq!(crate::provider::vss::volume::volume_path_name(&lexical).unwrap(), r"C:\");
    // Walked through (trailing slash, or a component below it): where it leads.
    assert_eq!(Platform.source_path(format!("{posix}/link/sub/").as_ref()), Some(PathBuf::from(format!(r"{target}\sub"))));
    assert_eq!(Platform.source_path(format!("{posix}/link/").as_ref()), Some(PathBuf::from(&target)));
    // The last component without a slash is read as itself (rsync copies the
    // link, from C:'s shadow copy).
    assert_eq!(Platform.source_path(format!("{posix}/link").as_ref()), Some(PathBuf::from(format!(r"{data}\link"))));

    let cygdrive = format!("/cygdrive/c/{}", below_root(&data, "/"));
    let z = below_root(&target, "/");
    let c = below_root(&data, "/");
    for (flavor, copy10, copy9) in [
        (
            Flavor::Cygwin,
            "/proc/sys/Device/HarddiskVolumeShadowCopy10/".to_owned(),
            "/proc/sys/Device/HarddiskVolumeShadowCopy9/".to_owned(),
        ),
        (Flavor::Msys, "/proc/sys/Device/HarddiskVolumeShadowCopy10/".to_owned(), "/proc/sys/Device/HarddiskVolumeShadowCopy9/".to_owned()),
        (Flavor::Native, r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy10\".to_owned(), SHADOW.to_owned()),
    ] {
        let native = flavor == Flavor::Native;
        let sep = if native { "\\" } else { "/" };
        let args: Vec<String> = if native {
            vec![format!(r"{data}\link\sub\"), format!(r"{data}\link"), format!(r"{data}\link\")]
        } else {
            vec![format!("{cygdrive}/link/sub/"), format!("{posix}/link"), format!("{posix}/link/")]
        };
        let mut argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", "."]);
        argv.extend(args.iter().map(OsString::from));
        let inv = crate::rsync_args::parse(&argv).unwrap();
        let e = expose_with(Expose::DevicePath, "RS", flavor, &c_and_z(), &inv, &sources_of(&inv), &[]).unwrap();
        let want = [
            format!("{copy10}{}{sep}sub{sep}", z.replace('/', sep)),
            format!("{copy9}{}{sep}link", c.replace('/', sep)),
            format!("{copy10}{}{sep}", z.replace('/', sep)),
        ];
        assert_eq!(e.argv()[4..], want.iter().map(OsString::from).collect::<Vec<_>>()[..], "{flavor:?}");
    }

    // --relative would send Z:'s names instead of the link's: refused, with the fix.
    let argv = os(&["--server", "--sender", "-logDtpRe.iLsfxCIvu", ".", &format!("C:/./{c}/link/sub/")]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let err = expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &c_and_z(), &inv, &sources_of(&inv), &[]).err().expect("refused");
    assert_eq!(err.exit_code(), crate::error::status::EXPOSE, "{err}");
    assert!(err.to_string().contains("leads through a junction, link or short name"), "{err}");
}

#[test]
fn a_short_name_source_is_read_by_its_long_name() {
    let _g = serial();
    let long = scratch("short").join("Long Directory Name");
    std::fs::create_dir_all(long.join("x")).unwrap();
    let short = crate::provider::vss::volume::short_path(&long).unwrap();
    assert_ne!(short.to_uppercase(), long.to_string_lossy().to_uppercase(), "wine gives a short name");
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &format!(r"{short}\x\"), &short]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    let sources = sources_of(&inv);
    assert_eq!(sources[0], long.join("x"));
    let e = expose_with(Expose::DevicePath, "RS", Flavor::Cygwin, &shadow_set(), &inv, &sources, &[]).unwrap();
    let long_posix = below_root(&long.to_string_lossy(), "/");
    assert_eq!(e.argv()[4], format!("/proc/sys/Device/HarddiskVolumeShadowCopy9/{long_posix}/x/").as_str());
    // Without a trailing slash the copy keeps the name it was given.
    let short_name = short.rsplit('\\').next().unwrap();
    assert!(e.argv()[5].to_string_lossy().ends_with(&format!("/{short_name}")), "{:?}", e.argv()[5]);
}

#[test]
fn a_volume_guid_source_is_read_as_its_drive() {
    let _g = serial();
    let dir = source_tree("guid");
    let guid = crate::provider::vss::volume::volume_guid(r"C:\").unwrap();
    assert!(guid.starts_with(r"\\?\Volume{"), "{guid}");
    let arg = format!("{guid}{}\\", below_root(&dir.to_string_lossy(), "\\"));
    assert_eq!(Platform.source_path(arg.as_ref()), Some(dir.clone()));
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg]);
    let inv = crate::rsync_args::parse(&argv).unwrap();
    for (flavor, want) in [
        (Flavor::Cygwin, format!("/proc/sys/Device/HarddiskVolumeShadowCopy9/{}/", below_root(&dir.to_string_lossy(), "/"))),
        (Flavor::Native, format!(r"{SHADOW}{}\", below_root(&dir.to_string_lossy(), "\\"))),
    ] {
        let e = expose_with(Expose::DevicePath, "RS", flavor, &shadow_set(), &inv, &sources_of(&inv), &[]).unwrap();
        assert_eq!(e.argv()[4], want.as_str(), "{flavor:?}");
    }
}

/// Runs `argv` through `role::rsync` with the directory TEST DOUBLE and the
/// echo helper as rsync; returns (status or error, the lines rsync wrote,
/// the double's scratch directory).
fn run_with_double(cfg: &Config, argv: &[OsString], mounts: Option<&[String]>) -> (Result<u8>, Vec<String>, PathBuf) {
    ffi::reset_stopping();
    let snaps = scratch("double-snaps");
    let mut double = dir_double::DirSystem::new(&snaps);
    if let Some(m) = mounts {
        double = double.pretend_mounts(m);
    }
    let out = scratch("double-out").join("out.txt");
    std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
    std::env::set_var("SNAPRSYNC_ECHO_EXIT", "0");
    let r = crate::role::rsync::rsync(&double, cfg, &crate::cli::Options::default(), argv.to_vec());
    let lines = std::fs::read_to_string(&out).unwrap_or_default().lines().map(str::to_owned).collect();
    (r, lines, snaps)
}

#[test]
fn a_volume_mounted_below_a_source_is_refused_or_named() {
    let _g = serial();
    let dir = source_tree("mounted");
    std::fs::create_dir_all(dir.join("mnt")).unwrap();
    let folder = format!("{}\\mnt\\", dir.display());
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &format!("{}\\", dir.display())]);

    let (r, lines, snaps) = run_with_double(&cfg_for(Expose::DevicePath, false), &argv, Some(std::slice::from_ref(&folder)));
    let err = r.expect_err("refused");
    assert_eq!(err.exit_code(), crate::error::status::NO_PROVIDER, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&folder) && msg.contains("vss_mount_points") && !msg.contains('\n'), "{msg}");
    assert!(lines.is_empty(), "rsync must not run");
    assert_eq!(std::fs::read_dir(&snaps).unwrap().count(), 0, "refused before anything was made");

    // "ignore": the run goes on (the folder is named in a warning).
    let cfg = Config { vss_mount_points: crate::config::VssMountPoints::Ignore, ..cfg_for(Expose::DevicePath, false) };
    let (r, lines, snaps) = run_with_double(&cfg, &argv, Some(std::slice::from_ref(&folder)));
    assert_eq!(r.unwrap(), 0);
    assert!(Path::new(&lines[4]).starts_with(&snaps), "{lines:?}");

    // A mount folder that is not below the source changes nothing.
    let elsewhere = [r"C:\elsewhere\mnt\".to_owned()];
    let (r, lines, _) = run_with_double(&cfg_for(Expose::DevicePath, false), &argv, Some(&elsewhere));
    assert_eq!(r.unwrap(), 0, "{lines:?}");
}

#[test]
fn an_excluded_volume_is_read_live_and_only_it() {
    let _g = serial();
    let on_c = source_tree("excl-c");
    let (_, target) = link_fixture();
    let on_z = format!(r"{target}\sub\");
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &format!("{}\\", on_c.display()), &on_z]);
    let z_guid = crate::provider::vss::volume::volume_guid(r"Z:\").unwrap();
    for entry in ["Z:", r"z:\", z_guid.as_str()] {
        let cfg = Config { vss_exclude_volumes: vec![entry.to_owned()], ..cfg_for(Expose::DevicePath, false) };
        let (r, lines, snaps) = run_with_double(&cfg, &argv, None);
        assert_eq!(r.unwrap(), 0, "{entry}");
        assert!(Path::new(&lines[4]).starts_with(&snaps), "{entry}: C: is shadowed: {lines:?}");
        assert_eq!(lines[5], on_z, "{entry}: Z: is read live, as given");
    }
    // Without the exclusion both are shadowed.
    let (r, lines, snaps) = run_with_double(&cfg_for(Expose::DevicePath, false), &argv, None);
    assert_eq!(r.unwrap(), 0);
    assert!(Path::new(&lines[5]).starts_with(&snaps), "{lines:?}");
}

/// An echo helper placed as a cygwin, MSYS2 or native `rsync.exe` (told apart
/// by the runtime DLL beside it, here an empty stand-in file).
fn flavored_rsync(flavor: Flavor) -> PathBuf {
    let dir = scratch(&format!("rsync-{flavor:?}"));
    let exe = dir.join("rsync.exe");
    std::fs::copy(echo_exe(), &exe).unwrap();
    match flavor {
        Flavor::Cygwin => std::fs::write(dir.join("cygwin1.dll"), b"").unwrap(),
        Flavor::Msys => std::fs::write(dir.join("msys-2.0.dll"), b"").unwrap(),
        Flavor::Native => {}
    }
    assert_eq!(flavor_of(&exe), flavor);
    exe
}

/// The arguments a cygwin or MSYS2 rsync gets, split by a stand-in written to
/// cygwin's rules (`build_argv` with globbing off): before (the C runtime's
/// quoting, as for a native rsync) and after (cygwin's). A native rsync's are
/// in `child_gets_exact_arguments_and_its_status_comes_back`.
#[test]
fn a_cygwin_or_msys_rsync_gets_its_arguments_exactly() {
    let _g = serial();
    let parser = PathBuf::from(std::env::var_os("SNAPRSYNC_CYGWIN_ARGS_EXE").expect("run scripts/windows.sh test"));
    let args = ["a b", r"x y\", "@f", "*", r"C:\dir\", "Jürgen Müller", "", r"back\\slash", "--filter=- *.tmp", "-M--log-file=x"];
    let run = |flavor: Flavor, args: &[&str]| {
        let dir = scratch(&format!("cygargs-{flavor:?}"));
        let exe = dir.join("rsync.exe");
        std::fs::copy(&parser, &exe).unwrap();
        match flavor {
            Flavor::Cygwin => std::fs::write(dir.join("cygwin1.dll"), b"").unwrap(),
            Flavor::Msys => std::fs::write(dir.join("msys-2.0.dll"), b"").unwrap(),
            Flavor::Native => {}
        }
        let out = dir.join("out.txt");
        std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
        let launch = Launch { program: exe, args: os(args), env: Vec::new(), what: Program::Rsync, watch_peer: true };
        let r = run_child(&launch);
        (r, std::fs::read_to_string(&out).unwrap_or_default().split('\n').map(str::to_owned).collect::<Vec<_>>())
    };
    let mut want: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    want.push(String::new());
    for flavor in [Flavor::Cygwin, Flavor::Msys] {
        let (r, got) = run(flavor, &args);
        assert_eq!(r.unwrap(), 0);
        assert_eq!(got, want, "{flavor:?}");
    }
    // Before: the C runtime's quoting, read by cygwin's rules.
    let (_, before) = run(Flavor::Native, &args);
    assert_eq!(before[0], "a b");
    assert_eq!(before[1], r"x y\\", "a doubled trailing backslash");
    assert_eq!(before[2], "@FILE f", "read as a response file");
    // A double quote cannot reach it: refused with the cause, nothing run.
    let (r, got) = run(Flavor::Cygwin, &["--server", r#"a"b"#]);
    let e = r.expect_err("a quote must be refused");
    assert_eq!(e.exit_code(), crate::error::status::USAGE);
    assert!(e.to_string().contains("double quote"), "{e}");
    assert_eq!(got, [""], "nothing was started");
}

/// A whole run per rsync flavour, with the directory TEST DOUBLE: the exact
/// source argument each rsync receives, and what it reads there.
#[test]
fn each_rsync_flavour_gets_its_own_form_in_a_whole_run() {
    let _g = serial();
    let dir = source_tree("flavours");
    let posix = dir.to_string_lossy().replace('\\', "/");
    let cygdrive = format!("/cygdrive/c/{}/", below_root(&dir.to_string_lossy(), "/"));
    for flavor in [Flavor::Cygwin, Flavor::Msys, Flavor::Native] {
        for (expose, arg) in [(Expose::DevicePath, format!("{posix}/")), (Expose::DriveLetter, cygdrive.clone())] {
            if flavor == Flavor::Native && arg.starts_with('/') {
                continue;
            }
            let cfg = Config { rsync_path: Some(flavored_rsync(flavor)), ..cfg_for(expose, false) };
            let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg]);
            let (r, lines, snaps) = run_with_double(&cfg, &argv, None);
            assert_eq!(r.unwrap(), 0, "{flavor:?} {expose:?}");
            let got = &lines[4];
            let copy = snaps.join("snap0").join("My Files");
            let copy_below = below_root(&copy.to_string_lossy(), "/");
            let want = match (flavor, expose) {
                (Flavor::Native, _) => format!("{}\\", copy.display()),
                (_, Expose::DevicePath) => format!("C:/{copy_below}/"),
                // The double's copy is a folder: its letter maps that folder.
                (_, Expose::DriveLetter) => format!("/cygdrive/{}/My Files/", got.chars().nth(10).unwrap()),
            };
            assert_eq!(got, &want, "{flavor:?} {expose:?}");
            assert!(!got.contains('\\') || flavor == Flavor::Native, "{flavor:?}: a backslash for a posix rsync: {got}");
            if !got.starts_with('/') {
                // The stand-in is a native program: it can open only the Windows forms.
                assert!(lines.iter().any(|l| l.starts_with("read ") && l.ends_with("original content")), "{lines:?}");
            }
        }
    }
}

#[test]
fn rsync_list_only_output_gives_the_names() {
    let out = "drwxr-xr-x          4,096 2026/11/29 13:00:00 .\n-rw-r--r--             38 2026/11/29 13:00:00 locked by selftest ü.txt\n\n";
    assert_eq!(selftest::listed_names(out), [".", "locked by selftest ü.txt"]);
    assert!(selftest::listed_names("rsync: error\n").is_empty());
    assert_eq!(selftest::listed_entries(out)[1].1, "-rw-r--r-- 38 2026/11/29 13:00:00");
}

/// selftest compares whole entries (mode, owner, size, time) between the
/// exposures: each that differs, and one listed through one only, is named;
/// a difference of mode or owner alone (what a cygwin reader's two views
/// give) is told from one of size, time or presence.
#[test]
fn selftest_names_metadata_that_differs_between_the_exposures() {
    let e = |n: &str, m: &str| (n.to_owned(), m.to_owned());
    let device = [
        e("a.txt", "-rwxr-x--- 197108:197121 38 2026/11/29 13:00:00"),
        e("b.txt", "-rw-r--r-- 0:0 1 2026/11/29 13:00:00"),
        e("c", "drwxr-xr-x 0:0 0 2026/11/29 13:00:00"),
        e("t", "-rw-r--r-- 0:0 1 2026/11/29 13:00:01"),
    ];
    let letter = [
        e("a.txt", "-rw-r--r-- 0:0 38 2026/11/29 13:00:00"),
        e("b.txt", "-rw-r--r-- 0:0 1 2026/11/29 13:00:00"),
        e("d", "drwxr-xr-x 0:0 0 2026/11/29 13:00:00"),
        e("t", "-rw-r--r-- 0:0 1 2026/11/29 13:00:00"),
    ];
    let d = selftest::differences(&device, &letter);
    let got: Vec<(&str, bool)> = d.iter().map(|d| (d.text.as_str(), d.view_only)).collect();
    assert_eq!(
        got,
        [
            ("a.txt: -rwxr-x--- 197108:197121 38 2026/11/29 13:00:00 (device-path) vs -rw-r--r-- 0:0 38 2026/11/29 13:00:00 (drive-letter)", true),
            ("c: listed through device-path only", false),
            ("t: -rw-r--r-- 0:0 1 2026/11/29 13:00:01 (device-path) vs -rw-r--r-- 0:0 1 2026/11/29 13:00:00 (drive-letter)", false),
            ("d: listed through drive-letter only", false),
        ]
    );
    assert!(selftest::differences(&letter, &letter).is_empty());
}

/// selftest's rsync step, with a shadow copy played by a copied folder (TEST
/// DOUBLE) and the echo helper's `--list-only` mode standing in for rsync (no
/// Windows rsync runs here): each exposure gives rsync a form it opens, and
/// the names come back; a listing without the file fails the check.
#[test]
fn selftest_lists_through_each_exposure() {
    let _g = serial();
    let dir = source_tree("selftest-list");
    let snaps = scratch("selftest-snaps");
    let mut double = DirDoubleForTest::new(&snaps);
    let set = double.create(std::slice::from_ref(&dir));
    let cfg = cfg_for(Expose::DriveLetter, false);
    for flavor in [Flavor::Native, Flavor::Cygwin] {
        let rsync = flavored_rsync(flavor);
        let (arg, entries) = selftest::list_through(&cfg, &set, &dir, &rsync, Expose::DevicePath).unwrap();
        assert!(entries.iter().any(|(n, m)| n == "probe.txt" && m.starts_with("-rw-r--r-- 544:513 ")), "{flavor:?} {arg}: {entries:?}");
        assert!(flavor == Flavor::Native || !arg.contains('\\'), "{flavor:?}: {arg}");
        // Wine maps a letter (DefineDosDevice) but cannot open files through
        // it: the listing fails, naming the letter, which is removed again.
        let err = selftest::list_through(&cfg, &set, &dir, &rsync, Expose::DriveLetter).err().expect("wine reads no mapped letter");
        let msg = err.to_string();
        let letter = msg.split("--list-only ").nth(1).and_then(|a| a.chars().next()).unwrap();
        assert!("RSTUVWXY".contains(letter), "{msg}");
        assert!(ffi::query_dos_device(&format!("{letter}:")).is_empty(), "{letter}: left mapped");
    }
    double.remove(&set);
}

/// The directory double, driven directly.
struct DirDoubleForTest(Box<dyn crate::provider::Snapshotter>);

impl DirDoubleForTest {
    fn new(scratch: &Path) -> Self {
        DirDoubleForTest(Box::new(dir_double::DirDouble::new(scratch)))
    }
    fn create(&mut self, sources: &[PathBuf]) -> SnapshotSet {
        self.0.create(sources).unwrap()
    }
    fn remove(&mut self, set: &SnapshotSet) {
        self.0.remove(set).unwrap();
    }
}

/// One metadata view per reader, end to end: a whole run through the TEST
/// DOUBLE with expose = "device-path" is recorded with its exposure in the
/// history of its state_dir, and doctor's check then warns, in one line, of
/// a config that says "drive-letter" (and is OK with "device-path").
#[test]
fn doctor_warns_of_an_expose_switch_after_a_recorded_run() {
    let _g = serial();
    ffi::reset_stopping();
    let dir = source_tree("switch");
    let snaps = scratch("switch-snaps");
    let out = scratch("switch-out").join("out.txt");
    std::env::set_var("SNAPRSYNC_ECHO_OUT", &out);
    std::env::set_var("SNAPRSYNC_ECHO_EXIT", "0");
    let cfg = cfg_for(Expose::DevicePath, false);
    let arg = format!("{}\\", dir.display());
    let argv = os(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg]);
    let double = dir_double::DirSystem::new(&snaps);
    assert_eq!(crate::role::rsync::rsync(&double, &cfg, &crate::cli::Options::default(), argv).unwrap(), 0);
    let (records, _) = crate::history::History::of(&cfg).read().unwrap();
    assert_eq!(records.last().and_then(|r| r.exposure.as_deref()), Some("device-path"), "{records:?}");
    let warn = crate::doctor::exposure_switch(Expose::DriveLetter, &records).expect("a line");
    assert_eq!(warn.level, crate::doctor::Level::Warn, "{warn}");
    let line = warn.to_string();
    assert!(line.contains("--link-dest") && line.contains("fix: set expose = \"device-path\" again"), "{line}");
    assert_eq!(crate::doctor::exposure_switch(Expose::DevicePath, &records).map(|f| f.level), Some(crate::doctor::Level::Ok));
}
