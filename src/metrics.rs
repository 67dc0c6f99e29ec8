//! The Prometheus textfile (config `metrics_file`, for node_exporter's
//! textfile collector), rewritten from the run history after each run:
//! per source the last run's and the last consistent run's end times, the
//! last run's durations and statuses, and the leftovers of dead runs. Names
//! and units follow Prometheus' conventions (`_timestamp_seconds`,
//! `_seconds`); it is written to a temporary file beside it and renamed over
//! it, so the collector never reads half a file. A failure is logged at warn
//! and costs no backup.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::SystemTime;

use crate::history::{History, Outcome, Record};

/// Rewrites `path` from `history` (just after a run added its record).
pub fn write_after_run(path: &Path, history: &History) {
    let records = match history.read() {
        Ok((r, _)) => r,
        Err(e) => {
            log::warn!("metrics_file: cannot read the run history: {e}");
            return;
        }
    };
    // The journal lives in the same state_dir as the history.
    let journal = crate::run::journal::Journal::new(history.dir());
    let (entries, corrupt) = journal.read();
    let leftovers = entries.iter().filter(|e| !e.owner_alive()).count() + corrupt.len();
    if let Err(e) = write_atomically(path, &render(&records, leftovers)) {
        log::warn!("metrics_file {}: {e}", path.display());
    }
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| std::io::Error::other("names no file"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A label value as the text format writes it: `\`, `"` and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Pure: the textfile for `records` (oldest first) and `leftovers`.
pub fn render(records: &[Record], leftovers: usize) -> String {
    // Per source: its last run, and its last consistent run.
    let mut last: BTreeMap<&str, &Record> = BTreeMap::new();
    let mut good: BTreeMap<&str, &Record> = BTreeMap::new();
    for r in records {
        for s in &r.sources {
            last.insert(s, r);
            if r.outcome == Outcome::Consistent {
                good.insert(s, r);
            }
        }
    }
    let mut out = String::new();
    let mut family = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let per = |f: &dyn Fn(&Record) -> Option<f64>, of: &BTreeMap<&str, &Record>| -> Vec<(String, f64)> {
        of.iter().filter_map(|(s, r)| f(r).map(|v| (format!("{{source=\"{}\"}}", label(s)), v))).collect()
    };
    let end = |r: &Record| r.end_time().or_else(|| r.start_time()).map(seconds);
    family("snaprsync_last_run_timestamp_seconds", "When the last run of the source ended (a killed run: started).", per(&end, &last));
    family(
        "snaprsync_last_success_timestamp_seconds",
        "When the last consistent run of the source ended (snapshot read, status 0 or 24, removal ok).",
        per(&end, &good),
    );
    family(
        "snaprsync_last_run_consistent",
        "1 if the last run of the source was consistent, else 0.",
        per(&|r| Some(f64::from(u8::from(r.outcome == Outcome::Consistent))), &last),
    );
    family(
        "snaprsync_last_run_live",
        "1 if the last run of the source read the live files, else 0.",
        per(&|r| Some(f64::from(u8::from(r.outcome == Outcome::Live))), &last),
    );
    family(
        "snaprsync_last_run_killed",
        "1 if the last run of the source died without ending (kill -9, power cut), else 0.",
        per(&|r| Some(f64::from(u8::from(r.outcome == Outcome::Killed))), &last),
    );
    family(
        "snaprsync_last_run_exit_status",
        "The status snaprsync exited with in the last run of the source (rsync's, or its own 80-95).",
        per(&|r| r.status.map(f64::from), &last),
    );
    family(
        "snaprsync_last_run_program_exit_status",
        "The exit status of rsync (or exec's COMMAND) in the last run of the source.",
        per(&|r| r.program_status.map(f64::from), &last),
    );
    family(
        "snaprsync_last_run_duration_seconds",
        "How long the last run of the source took, start to end.",
        per(&|r| Some(r.end_time()?.duration_since(r.start_time()?).ok()?.as_secs_f64()), &last),
    );
    let ms = |v: Option<u64>| v.map(|v| v as f64 / 1000.0);
    family(
        "snaprsync_last_run_create_seconds",
        "How long making the snapshot set took in the last run of the source.",
        per(&|r| ms(r.create_ms), &last),
    );
    family(
        "snaprsync_last_run_program_seconds",
        "How long rsync (or COMMAND) ran in the last run of the source.",
        per(&|r| ms(r.program_ms), &last),
    );
    family(
        "snaprsync_last_run_remove_seconds",
        "How long removing the snapshots took in the last run of the source.",
        per(&|r| ms(r.remove_ms), &last),
    );
    family(
        "snaprsync_last_run_warnings",
        "How many warnings the last run of the source logged.",
        per(&|r| Some(r.warnings.len() as f64), &last),
    );
    family(
        "snaprsync_leftovers",
        "Run records of dead runs still in state_dir (snapshots the sweep could not remove yet), and corrupt ones.",
        vec![(String::new(), leftovers as f64)],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sources: &[&str], outcome: Outcome, end: &str) -> Record {
        let (rs, _) = crate::history::parse(
            format!(
                r#"{{"stamp":"s","role":"rsync","start":"2026-01-01T00:00:00.000Z","end":"{end}","sources":{},"provider":"btrfs","exposure":"namespace","live_reason":null,"snapshots":1,"create_ms":10,"program_ms":2500,"remove_ms":5,"program_status":0,"status":0,"removal":"ok","outcome":"{}","warnings":[],"error":null}}"#,
                serde_json_list(sources),
                outcome.word()
            )
            .as_bytes(),
        );
        rs.into_iter().next().unwrap()
    }

    fn serde_json_list(s: &[&str]) -> String {
        format!("[{}]", s.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(","))
    }

    #[test]
    fn last_and_last_good_per_source() {
        let rs = [
            record(&["/srv", "/home"], Outcome::Consistent, "2026-01-01T00:00:10.000Z"),
            record(&["/srv"], Outcome::Failed, "2026-01-02T00:00:00.000Z"),
        ];
        let text = render(&rs, 2);
        assert!(text.contains("snaprsync_last_run_timestamp_seconds{source=\"/srv\"} 1767312000\n"), "{text}");
        assert!(text.contains("snaprsync_last_success_timestamp_seconds{source=\"/srv\"} 1767225610\n"), "{text}");
        assert!(text.contains("snaprsync_last_run_consistent{source=\"/srv\"} 0\n"), "{text}");
        assert!(text.contains("snaprsync_last_run_consistent{source=\"/home\"} 1\n"), "{text}");
        assert!(text.contains("snaprsync_last_run_program_seconds{source=\"/home\"} 2.5\n"), "{text}");
        assert!(text.contains("snaprsync_leftovers 2\n"), "{text}");
        // Every sample line belongs to a family declared just before it.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} gauge")), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let rs = [record(&["/srv/a\"b\\c\nd"], Outcome::Consistent, "2026-01-01T00:00:10.000Z")];
        let text = render(&rs, 0);
        assert!(text.contains(r#"{source="/srv/a\"b\\c\nd"}"#), "{text}");
    }
}
