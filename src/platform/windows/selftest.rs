//! `snaprsync selftest [--report FILE]`: a once-per-machine check on real
//! Windows, run as Administrator. It locks a file against every other reader,
//! snapshots its volume, reads it through both exposures (device path and
//! drive letter), has the real rsync list it through each (`--list-only` of
//! the source argument rewritten as a backup's would be), removes everything,
//! prints a verdict and writes a report.
#![allow(clippy::print_stdout)]
// Called by the admin dispatcher through `platform::selftest`.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::windows::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{expose_with, ffi, flavor_of, map_free_letter, reader_env};
use crate::config::{Config, Expose};
use crate::error::{Error, Result};
use crate::provider::vss::Vss;
use crate::provider::Snapshotter;
use crate::winpath;

/// Runs the self-test; `args` are what follows `selftest`. Returns 0 when every
/// check passed, else the status of the first failure (or SNAPSHOT).
pub fn selftest(cfg: &Config, args: &[OsString]) -> Result<u8> {
    let mut report_path = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--report") => report_path = Some(PathBuf::from(it.next().ok_or_else(|| Error::Usage("--report needs a file".into()))?)),
            Some(s) if s.starts_with("--report=") => report_path = Some(PathBuf::from(&s["--report=".len()..])),
            _ => return Err(Error::Usage(format!("selftest: unknown argument {a:?}; usage: snaprsync selftest [--report FILE]"))),
        }
    }
    let base = std::env::var_os("ProgramData").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
    let report_path = report_path.unwrap_or_else(|| base.join("snaprsync").join("selftest-report.txt"));
    let mut report = String::new();
    let outcome = run_checks(cfg, &base, &mut report);
    let verdict = match &outcome {
        Ok(()) => "PASS: VSS snapshots work here; both expose methods read a locked file, and rsync lists it through each".to_owned(),
        Err(e) => format!("FAIL: {e}"),
    };
    let _ = writeln!(report, "verdict: {verdict}");
    print!("{report}");
    if let Some(dir) = report_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::File::create(&report_path).and_then(|mut f| f.write_all(report.as_bytes())).map_err(|e| Error::io(&report_path, e))?;
    println!("report written to {}", report_path.display());
    Ok(outcome.map_or_else(|e| e.exit_code(), |()| 0))
}

fn run_checks(cfg: &Config, base: &std::path::Path, report: &mut String) -> Result<()> {
    let _ = writeln!(report, "snaprsync {} selftest", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(report, "os: {} {}", std::env::consts::OS, std::env::consts::ARCH);
    let _ = writeln!(report, "config: expose={:?} drive_letters={} vss_timeout={}", cfg.expose, cfg.drive_letters, cfg.vss_timeout);
    let dir = base.join("snaprsync").join(format!("selftest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let file = dir.join("locked by selftest ü.txt");
    let content = format!("snaprsync selftest {}\n", std::process::id());
    std::fs::write(&file, &content).map_err(|e| Error::io(&file, e))?;
    // Another handle holds the file open with no sharing at all.
    let lock = std::fs::OpenOptions::new().read(true).write(true).share_mode(0).open(&file).map_err(|e| Error::io(&file, e))?;
    let direct = std::fs::read(&file);
    let _ = writeln!(
        report,
        "live read of the locked file: {}",
        if direct.is_err() { "refused (as expected)" } else { "allowed (the lock did not hold)" }
    );

    let result = (|| {
        let mut vss = Vss::new(cfg.vss_timeout);
        let set = vss.create(std::slice::from_ref(&file))?;
        for v in &set.volumes {
            let _ = writeln!(report, "snapshot: {} -> {}", v.origin.display(), v.snapshot.display());
        }
        let checks = check_exposures(cfg, &set, &file, &content, report).and_then(|()| check_rsync(cfg, &set, &dir, &file, report));
        let removed = vss.remove(&set);
        let _ = writeln!(report, "snapshot removal: {}", removed.as_ref().map_or_else(|e| e.to_string(), |()| "ok".into()));
        checks.and(removed)
    })();
    drop(lock);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn check_exposures(
    cfg: &Config,
    set: &crate::provider::SnapshotSet,
    file: &std::path::Path,
    content: &str,
    report: &mut String,
) -> Result<()> {
    let fail = |msg: String| Error::Snapshot { path: file.to_owned(), msg };
    let inside = set.locate(file).ok_or_else(|| fail("not in the snapshot set".into()))?;
    let device = std::fs::read_to_string(&inside);
    let _ = writeln!(report, "device path {}: {}", inside.display(), verdict(&device, content));
    let vol = &set.volumes[0];
    let target = winpath::raw_target(&vol.snapshot.to_string_lossy()).ok_or_else(|| fail("snapshot is not a device".into()))?;
    let mut letter = map_free_letter(&cfg.drive_letters, &target, &mut Vec::new())?;
    let rel = file.strip_prefix(&vol.origin).map_err(|_| fail("outside its volume".into()))?;
    let via_letter = PathBuf::from(winpath::drive_root(letter.letter)).join(rel);
    let lettered = std::fs::read_to_string(&via_letter);
    let _ = writeln!(report, "drive letter {}: {}", via_letter.display(), verdict(&lettered, content));
    letter.remove()?;
    let left = ffi::query_dos_device(&format!("{}:", letter.letter));
    let _ = writeln!(
        report,
        "drive letter {}: after removal {}",
        letter.letter,
        if left.is_empty() { "gone".into() } else { format!("STILL MAPPED to {left:?}") }
    );
    match (device, lettered) {
        (Ok(a), Ok(b)) if a == content && b == content && left.is_empty() => Ok(()),
        _ => Err(fail("the locked file could not be read back through both exposures (see the report)".into())),
    }
}

/// The real rsync's `--list-only` of the locked file's folder through each
/// exposure: the lines it listed go in the report; the file must be among
/// them, and each entry must show the same mode, size and time through both
/// (a cygwin rsync reads a device path as a POSIX path, with modes from the
/// ACLs, and a drive-letter path as `noacl`: a switch of `expose` would then
/// make a `--link-dest` series copy everything again).
fn check_rsync(cfg: &Config, set: &crate::provider::SnapshotSet, dir: &Path, file: &Path, report: &mut String) -> Result<()> {
    let rsync = crate::real_rsync::find(cfg)?;
    let _ = writeln!(report, "rsync: {} ({:?} build)", rsync.display(), flavor_of(&rsync));
    let want = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut first = Ok(());
    let mut listings = Vec::new();
    for mode in [Expose::DevicePath, Expose::DriveLetter] {
        let seen = list_through(cfg, set, dir, &rsync, mode);
        let _ = match &seen {
            Ok((arg, entries)) => writeln!(
                report,
                "rsync --list-only {arg}: saw {}",
                entries.iter().map(|(n, m)| format!("{m} {n}")).collect::<Vec<_>>().join(" | ")
            ),
            Err(e) => writeln!(report, "rsync --list-only through {mode:?}: {e}"),
        };
        let ok = seen.as_ref().is_ok_and(|(_, entries)| entries.iter().any(|(n, _)| *n == want));
        if let Ok((_, entries)) = &seen {
            listings.push(entries.clone());
        }
        if !ok && first.is_ok() {
            first = Err(seen.err().unwrap_or_else(|| Error::Snapshot {
                path: file.to_owned(),
                msg: format!("rsync did not list the locked file through {mode:?} (see the report)"),
            }));
        }
    }
    if let [device, letter] = &listings[..] {
        let differ = metadata_differences(device, letter);
        for d in &differ {
            let _ = writeln!(report, "metadata differs: {d}");
        }
        if !differ.is_empty() && first.is_ok() {
            first = Err(Error::Snapshot {
                path: dir.to_owned(),
                msg: format!(
                    "rsync shows {} entr{} with other metadata through expose = \"device-path\" than through \"drive-letter\" (see the report): keep one expose setting for a series of backups (docs/windows.md)",
                    differ.len(),
                    if differ.len() == 1 { "y" } else { "ies" }
                ),
            });
        }
    }
    first
}

/// Pure: how two listings of one folder (name, "mode size date time") differ:
/// an entry with other metadata, or one seen through one exposure only.
pub(super) fn metadata_differences(device: &[(String, String)], letter: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, meta) in device {
        match letter.iter().find(|(n, _)| n == name) {
            Some((_, m)) if m != meta => out.push(format!("{name}: {meta} (device-path) vs {m} (drive-letter)")),
            Some(_) => {}
            None => out.push(format!("{name}: listed through device-path only")),
        }
    }
    for (name, _) in letter {
        if !device.iter().any(|(n, _)| n == name) {
            out.push(format!("{name}: listed through drive-letter only"));
        }
    }
    out
}

/// `rsync --list-only` of `dir` in `set`, exposed by `mode`: the source
/// argument as a backup's is rewritten (in the form `rsync`'s build reads),
/// and the names rsync listed.
pub(super) fn list_through(
    cfg: &Config,
    set: &crate::provider::SnapshotSet,
    dir: &Path,
    rsync: &Path,
    mode: Expose,
) -> Result<(String, Vec<(String, String)>)> {
    let flavor = flavor_of(rsync);
    let native = dir.to_string_lossy().into_owned();
    let arg = if flavor == winpath::Flavor::Native { format!("{native}\\") } else { format!("{}/", native.replace('\\', "/")) };
    let argv: Vec<OsString> = ["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", &arg].map(OsString::from).to_vec();
    let inv = crate::rsync_args::parse(&argv).map_err(|e| Error::Usage(e.to_string()))?;
    let mut exposure = expose_with(mode, &cfg.drive_letters, flavor, set, &inv, &[dir.to_owned()], &[])?;
    let shown = exposure.argv()[4].to_string_lossy().into_owned();
    let out = std::process::Command::new(rsync).arg("--list-only").arg(&shown).envs(reader_env(flavor)).output();
    exposure.undo()?;
    let out = out.map_err(|e| Error::NotStarted { what: "rsync", path: rsync.to_owned(), msg: e.to_string() })?;
    if !out.status.success() {
        return Err(Error::Snapshot {
            path: dir.to_owned(),
            msg: format!(
                "rsync --list-only {shown} ended with {}: {}",
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok((shown, listed_entries(&String::from_utf8_lossy(&out.stdout))))
}

/// Pure: the names in `rsync --list-only` output (`-rw-r--r--  38 2026/01/01 00:00:00 NAME`).
#[cfg(test)]
pub(super) fn listed_names(out: &str) -> Vec<String> {
    listed_entries(out).into_iter().map(|(n, _)| n).collect()
}

/// Pure: the entries of `rsync --list-only` output: (name, "mode size date time").
pub(super) fn listed_entries(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut rest = l.trim_start();
            let mut meta = Vec::new();
            for _ in 0..4 {
                let end = rest.find(char::is_whitespace)?;
                meta.push(&rest[..end]);
                rest = rest[end..].trim_start();
            }
            (!rest.is_empty()).then(|| (rest.to_owned(), meta.join(" ")))
        })
        .collect()
}

fn verdict(r: &std::io::Result<String>, want: &str) -> String {
    match r {
        Ok(s) if s == want => "read the locked file: ok".into(),
        Ok(_) => "read, but the content differs".into(),
        Err(e) => format!("cannot read: {e}"),
    }
}
