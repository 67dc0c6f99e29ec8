//! The cost of adding one run's record to a full run history (1,000 runs
//! kept), as BENCHMARKS.md "Bounded state" quotes it:
//!
//!     cargo run --release --example history_cost -- DIR N
//!
//! fills DIR's history with 1,000 records, then times N more adds and prints
//! the median and 99th percentile in µs.

// A measuring tool: its results are its output.
#![allow(clippy::print_stdout)]

fn main() {
    let usage = "usage: history_cost DIR N";
    let d = std::env::args().nth(1).expect(usage);
    let n: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).expect(usage);
    let h = snaprsync::history::History::new(std::path::Path::new(&d), 1000);
    let rec: snaprsync::history::Record = serde_json::from_str(T).unwrap();
    for i in 0..1000 {
        let mut x = rec.clone();
        x.stamp = format!("s{i}");
        h.add(x).unwrap();
    }
    let mut ts = Vec::new();
    for i in 0..n {
        let mut x = rec.clone();
        x.stamp = format!("t{i}");
        let t = std::time::Instant::now();
        h.add(x).unwrap();
        ts.push(t.elapsed().as_micros());
    }
    ts.sort();
    println!("median add µs {} p99 {}", ts[n / 2], ts[n * 99 / 100]);
}
const T: &str = r#"{"stamp":"s","role":"rsync","start":"2026-01-01T00:00:00.000Z","end":"2026-01-01T00:00:02.500Z","sources":["/srv/www"],"provider":"btrfs","exposure":"namespace","live_reason":null,"snapshots":1,"create_ms":14,"program_ms":2480,"remove_ms":0,"program_status":null,"status":null,"removal":"background","outcome":"consistent","warnings":[],"error":null}"#;
