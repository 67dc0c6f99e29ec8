//! `testbed`: snaprsync's test world for its scripts (`scripts/demo.sh`,
//! `scripts/bench.sh`), built by the same code as the integration tests'.
//!
//!     testbed btrfs-image SIZE_MB DIR   a sparse DIR/btrfs.img, formatted btrfs and
//!                                       mounted through a loop device at DIR/mnt;
//!                                       prints DIR/mnt
//!     testbed btrfs-remove DIR          unmounts DIR/mnt, detaches the loop device,
//!                                       deletes the image
//!     testbed sshd DIR [ALIAS]          a private sshd on 127.0.0.1 with its files in
//!                                       DIR; prints the ssh config whose Host ALIAS
//!                                       (default snaphost) logs in as root; stop it
//!                                       with kill "$(cat DIR/sshd.pid)"
//!     testbed torture write DIR --seconds S [--files N] [--size BYTES]
//!     testbed torture check DIR         a one-line verdict: 0 if the copy in DIR is
//!                                       one point in time, 1 if it is torn
//!     testbed chain SECONDS STATS FILE...  a counter chain across filesystems: writes
//!                                       1, 2, ... to each FILE in order (by a rename,
//!                                       so each is always whole) for SECONDS; at any
//!                                       instant each FILE holds its predecessor's
//!                                       number or one less (stops early once
//!                                       STATS.stop exists). Then writes to STATS
//!                                       "steps N median_ms M max_ms X" (one step
//!                                       writes every FILE; max_ms is its longest
//!                                       stall, as while a filesystem is frozen)
//!
//! Needs root for the btrfs image and sshd. Exits 2 on a usage or I/O error.

// What the scripts read is this tool's output.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use testbed::btrfs::Btrfs;
use testbed::sshd::{Sshd, HOST};
use testbed::torture;

const USAGE: &str = "usage: testbed btrfs-image SIZE_MB DIR | btrfs-remove DIR | sshd DIR [ALIAS]
       | torture write DIR --seconds S [--files N] [--size BYTES] | torture check DIR
       | chain SECONDS STATS FILE...";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("testbed: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["btrfs-image", size, dir] => {
            let size = size.parse::<u64>().map_err(|_| format!("SIZE_MB: not a number: {size}"))?;
            println!("{}", Btrfs::create_in(Path::new(dir), size).keep().display());
        }
        ["btrfs-remove", dir] => Btrfs::remove(Path::new(dir))?,
        ["sshd", dir] => println!("{}", Sshd::start_in(Path::new(dir), HOST).keep().display()),
        ["sshd", dir, alias] => println!("{}", Sshd::start_in(Path::new(dir), alias).keep().display()),
        ["torture", rest @ ..] => return torture_tool(rest),
        ["chain", seconds, stats, files @ ..] if !files.is_empty() => {
            let seconds = seconds.parse::<u64>().map_err(|_| format!("SECONDS: not a number: {seconds}"))?;
            chain(Duration::from_secs(seconds), Path::new(stats), files).map_err(|e| format!("chain: {e}"))?;
        }
        _ => return Err(USAGE.into()),
    }
    Ok(ExitCode::SUCCESS)
}

fn chain(duration: Duration, stats: &Path, files: &[&str]) -> std::io::Result<()> {
    let start = std::time::Instant::now();
    let mut steps: Vec<f64> = Vec::new();
    let mut n = 0u64;
    let mut stop = stats.as_os_str().to_owned();
    stop.push(".stop");
    let stop = PathBuf::from(stop);
    while start.elapsed() < duration && !stop.exists() {
        n += 1;
        let step = std::time::Instant::now();
        for f in files {
            let f = Path::new(f);
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            let tmp = f.with_file_name(format!(".{name}.tmp"));
            std::fs::write(&tmp, format!("{n}\n"))?;
            std::fs::rename(&tmp, f)?;
        }
        steps.push(step.elapsed().as_secs_f64() * 1000.0);
    }
    steps.sort_by(f64::total_cmp);
    let median = steps.get(steps.len() / 2).copied().unwrap_or(0.0);
    let max = steps.last().copied().unwrap_or(0.0);
    std::fs::write(stats, format!("steps {} median_ms {median:.0} max_ms {max:.0}\n", steps.len()))
}

fn torture_tool(args: &[&str]) -> Result<ExitCode, String> {
    let mut it = args.iter().copied();
    let command = it.next().ok_or(USAGE)?;
    let dir = PathBuf::from(it.next().ok_or(USAGE)?);
    match command {
        "write" => {
            let mut cfg = torture::Config::default();
            let mut seconds = None;
            while let Some(flag) = it.next() {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
                let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
                match flag {
                    "--seconds" => seconds = Some(number(value)?),
                    "--files" => cfg.files = number(value)? as usize,
                    "--size" => cfg.size = number(value)? as usize,
                    _ => return Err(format!("unknown option {flag}\n{USAGE}")),
                }
            }
            let seconds = seconds.ok_or_else(|| format!("--seconds is required\n{USAGE}"))?;
            let last = torture::write_for(&dir, cfg, Duration::from_secs(seconds)).map_err(|e| format!("{}: {e}", dir.display()))?;
            eprintln!("torture: wrote generations 0..={last} of {} files in {}", cfg.files, dir.display());
            Ok(ExitCode::SUCCESS)
        }
        "check" => {
            if it.next().is_some() {
                return Err(USAGE.into());
            }
            let verdict = torture::check(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            println!("{verdict}");
            Ok(if verdict.consistent() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        _ => Err(USAGE.into()),
    }
}
