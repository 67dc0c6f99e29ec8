//! `snaprsync selftest [--report FILE]`: a once-per-machine check on real
//! Windows, run as Administrator. It locks a file against every other reader,
//! snapshots its volume, reads it through both exposures (device path and
//! drive letter), removes everything, prints a verdict and writes a report.
#![allow(clippy::print_stdout)]
// Called by the admin dispatcher through `platform::selftest`.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::windows::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{ffi, map_free_letter};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::provider::vss::Vss;
use crate::provider::Provider;
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
        Ok(()) => "PASS: VSS snapshots work here; both expose methods read a locked file".to_owned(),
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
        let checks = check_exposures(cfg, &set, &file, &content, report);
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

fn verdict(r: &std::io::Result<String>, want: &str) -> String {
    match r {
        Ok(s) if s == want => "read the locked file: ok".into(),
        Ok(_) => "read, but the content differs".into(),
        Err(e) => format!("cannot read: {e}"),
    }
}
