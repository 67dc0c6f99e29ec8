//! The bounded-state soak (BENCHMARKS.md "Bounded state"): a million runs
//! through the run journal, the run history and the sweep's journal work,
//! with no snapshot made, to show that `state_dir` stays under a stated size
//! and a run's cost stays flat however many runs came before.
//!
//!     cargo run --release --example soak -- DIR [RUNS] [HISTORY_SIZE]
//!
//! Each run does what a run does to `state_dir`: writes its journal entry,
//! runs the sweep's journal part, adds its history record twice (the record
//! at the hand-over to rsync and the finished one), and drops its entry.
//! Every 1,000th run is killed instead (its entry stays, with a half-written
//! temporary entry beside it), every 10,000th leaves a corrupt journal file:
//! the next run's sweep finds them. Prints one line per twentieth of the
//! runs: the median and 99th percentile of a run's time in it, and the size
//! and file count of DIR.

// A measuring tool: its results are its output.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use snaprsync::config::Config;
use snaprsync::history::{History, Record};
use snaprsync::run::journal::{Entry, Journal};
use snaprsync::stamp::NAME_PREFIX;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().expect("usage: soak DIR [RUNS] [HISTORY_SIZE]"));
    let runs: u64 = args.get(1).map_or(1_000_000, |a| a.parse().expect("RUNS"));
    let keep: u32 = args.get(2).map_or(1000, |a| a.parse().expect("HISTORY_SIZE"));
    std::fs::create_dir_all(&dir).expect("DIR");
    let cfg = Config { state_dir: Some(dir.clone()), history_size: keep, ..Config::default() };
    let (journal, hist) = (Journal::new(&dir), History::of(&cfg));
    let template: Record = serde_json::from_str(TEMPLATE).expect("template");
    let sources = [PathBuf::from("/srv/www")];
    let bucket = (runs / 20).max(1);
    let (mut times, mut max_bytes) = (Vec::with_capacity(bucket as usize), 0);
    println!("| runs | median run µs | p99 run µs | state_dir bytes | files |");
    println!("|---|---|---|---|---|");
    for i in 1..=runs {
        let t = Instant::now();
        // A stamp of its own per run, with the time of day from its number.
        let stamp = format!("{NAME_PREFIX}2026{:04}T{:06}Z-p{}", 101 + i / 1_000_000, i % 1_000_000, std::process::id());
        let mut entry = Entry::for_this_run(&stamp, "btrfs", &sources);
        if i % 1000 == 0 {
            // Killed: a process that no longer runs, caught writing a second entry.
            entry.pid = 4_000_000;
            journal.write(&entry).expect("entry");
            std::fs::write(dir.join(format!(".{stamp}.tmp")), "half an ent").expect("tmp");
        } else {
            journal.write(&entry).expect("entry");
            sweep_journal(&cfg, &journal);
            let mut rec = template.clone();
            rec.stamp = stamp.clone();
            rec.start = format!("2026-01-01T00:00:00.{i:09}Z");
            hist.add(rec.clone()).expect("history");
            rec.status = Some(0);
            hist.add(rec).expect("history");
            journal.remove(&stamp).expect("remove");
        }
        if i % 10_000 == 0 {
            std::fs::write(dir.join(format!("{NAME_PREFIX}junk-{i}.toml")), "not an entry").expect("junk");
        }
        times.push(t.elapsed().as_micros() as u64);
        if i % bucket == 0 {
            let (bytes, files) = size_of(&dir);
            max_bytes = max_bytes.max(bytes);
            times.sort_unstable();
            let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!("| {i} | {} | {} | {bytes} | {files} |", p(0.5), p(0.99));
            times.clear();
        }
    }
    let (rs, bad) = hist.read().expect("history");
    println!("\nlargest state_dir seen at a bucket's end: {max_bytes} bytes; history holds {} runs ({bad} bad lines)", rs.len());
}

/// What the sweep does to the journal before a run's snapshot: records dead
/// runs as killed, drops their entries, sets corrupt files aside, tidies.
fn sweep_journal(cfg: &Config, journal: &Journal) {
    snaprsync::run::record::killed(cfg, journal);
    let (entries, corrupt) = journal.read();
    for e in entries.iter().filter(|e| !e.alive()) {
        journal.remove(&e.stamp).expect("drop a dead entry");
    }
    for c in &corrupt {
        journal.set_aside(c).expect("set aside");
    }
    journal.tidy();
}

fn size_of(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut files) = (0, 0);
    for e in std::fs::read_dir(dir).expect("DIR").flatten() {
        bytes += e.metadata().map_or(0, |m| m.len());
        files += 1;
    }
    (bytes, files)
}

/// A finished pull's record, as a run writes it.
const TEMPLATE: &str = r#"{"stamp":"s","role":"rsync","start":"2026-01-01T00:00:00.000Z","end":"2026-01-01T00:00:02.500Z","sources":["/srv/www"],"provider":"btrfs","exposure":"namespace","live_reason":null,"snapshots":1,"create_ms":14,"program_ms":2480,"remove_ms":0,"program_status":null,"status":null,"removal":"background","outcome":"consistent","warnings":[],"error":null}"#;
