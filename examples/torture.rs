//! `torture`: a writer that keeps rewriting an ordered series of files, and a
//! checker that tells whether a copy of them is a single point in time.
//!
//!     torture write DIR --seconds S [--files N] [--size BYTES]
//!     torture check DIR
//!
//! `check` prints a one-line verdict and exits 0 if the copy is consistent,
//! 1 if it is torn, 2 on a usage or I/O error.

// This demo tool's verdict is its output.
#![allow(clippy::print_stdout)]

#[path = "../tests/support/torture.rs"]
mod torture;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: torture write DIR --seconds S [--files N] [--size BYTES] | torture check DIR";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("torture: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut it = args.into_iter();
    let command = it.next().ok_or(USAGE)?;
    let dir = PathBuf::from(it.next().ok_or(USAGE)?);
    match command.as_str() {
        "write" => {
            let mut cfg = torture::Config::default();
            let mut seconds = None;
            while let Some(flag) = it.next() {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
                let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
                match flag.as_str() {
                    "--seconds" => seconds = Some(number(&value)?),
                    "--files" => cfg.files = number(&value)? as usize,
                    "--size" => cfg.size = number(&value)? as usize,
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
