//! Names, the bottom floor: a run's stamp (`snaprsync-<UTC time>-p<pid>`),
//! which prefixes every snapshot name snaprsync gives and names its journal
//! entry, how a name is read back, and whether the run a stamp names (or its
//! remover, `__remove-run STAMP`) may still be running.

/// The internal subcommand a run starts to remove its snapshots in the background.
pub const REMOVE_RUN: &str = "__remove-run";

/// Prefix of every run stamp, and so of every snapshot name snaprsync gives.
pub const NAME_PREFIX: &str = "snaprsync-";

/// This run's stamp, `snaprsync-<UTC time>-p<pid>`: the prefix of its snapshot
/// names and the name of its journal entry. The same for the whole process.
pub fn run_stamp() -> &'static str {
    static STAMP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STAMP.get_or_init(|| {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let compact: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        format!("{NAME_PREFIX}{compact}-p{}", std::process::id())
    })
}

/// The pid and start time a stamp names (`snaprsync-20261126T103101Z-p7422`).
pub fn parse_stamp(stamp: &str) -> Option<(std::time::SystemTime, u32)> {
    let rest = stamp.strip_prefix(NAME_PREFIX)?;
    let (time, pid) = rest.split_once("-p")?;
    let b = time.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let iso = format!("{}-{}-{}T{}:{}:{}Z", &time[0..4], &time[4..6], &time[6..8], &time[9..11], &time[11..13], &time[13..15]);
    Some((humantime::parse_rfc3339(&iso).ok()?, pid.parse().ok()?))
}

/// The run stamp in a snapshot's name (`<stamp>-<n>`), if it is one of snaprsync's.
pub fn stamp_of_name(name: &str) -> Option<&str> {
    let (stamp, n) = name.rsplit_once('-')?;
    (name.starts_with(NAME_PREFIX) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(stamp)
}

/// Whether the run a stamp names may still be running, judged without its
/// journal entry (which may sit in another `state_dir`): its pid runs, and
/// that process started no later than the stamp was made. A reused pid
/// belongs to a process started after the run died, so it does not count.
pub fn stamp_owner_may_live(stamp: &str) -> bool {
    let Some((made, pid)) = parse_stamp(stamp) else { return false };
    crate::host::process_started_at(pid).is_some_and(|started| started <= made + std::time::Duration::from_secs(2))
}

/// Whether a `__remove-run` of the run `stamp` runs (its argv names the
/// stamp): how a run journaled in another `state_dir`, whose own process has
/// ended, is still known to be removing its snapshots.
#[cfg(target_os = "linux")]
pub fn remover_runs(stamp: &str) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else { return false };
    procs.flatten().filter(|p| p.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit())).any(|p| {
        std::fs::read(p.path().join("cmdline")).is_ok_and(|argv| {
            let mut words = argv.split(|b| *b == 0);
            words.any(|w| w == REMOVE_RUN.as_bytes()) && words.next() == Some(stamp.as_bytes())
        })
    })
}

#[cfg(not(target_os = "linux"))]
pub fn remover_runs(_stamp: &str) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_name_pid_and_time() {
        let (t, pid) = parse_stamp("snaprsync-20261126T103101Z-p7422").unwrap();
        assert_eq!(pid, 7422);
        assert_eq!(humantime::format_rfc3339_seconds(t).to_string(), "2026-11-26T10:31:01Z");
        assert_eq!(parse_stamp(run_stamp()).unwrap().1, std::process::id());
        for bad in ["snaprsync-2026-p1", "other-20261126T103101Z-p1", "snaprsync-20261126T103101Z-px"] {
            assert!(parse_stamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn this_run_may_live_and_a_reused_pid_does_not() {
        assert!(stamp_owner_may_live(run_stamp()));
        // This pid, but a stamp made long before this process started.
        let old = format!("{NAME_PREFIX}20000101T000000Z-p{}", std::process::id());
        assert!(!stamp_owner_may_live(&old));
        assert!(!stamp_owner_may_live("snaprsync-20261126T103101Z-p4000000"));
    }
}
