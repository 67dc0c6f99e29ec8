//! Logs where administrators look: a backup through snaprsync with the
//! default `log = "auto"` says nothing on stderr and sends its summary record,
//! with the run stamp (and the background remover's line), to the journal's native socket, or to `/dev/log` where
//! there is no journal. The sockets are this test's own, mounted at those
//! paths in a private mount namespace (`unshare --mount`), so the machine's
//! own logs are neither needed nor touched. Linux only; needs root,
//! btrfs-progs, rsync and unshare (util-linux).

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use testbed::btrfs::Btrfs;
use testbed::cmd::cmd;

/// Puts the socket `$1` where the system log `$2` has its own, then runs the rest.
const WRAPPER: &str = r#"#!/bin/sh
set -e
sock=$1 which=$2
shift 2
mount -t tmpfs tmpfs /run
if [ "$which" = none ]; then
  # No journal (a /run of its own), no /dev/log, and a /var/log of the test's own.
  mount --bind "$sock" /var/log
  mkdir /run/dev
  mount --rbind /dev /run/dev
  mount -t tmpfs tmpfs /dev
  for f in null zero full random urandom tty; do
    touch "/dev/$f"
    mount --bind "/run/dev/$f" "/dev/$f"
  done
  ln -s /proc/self/fd /dev/fd
elif [ "$which" = journald ]; then
  mkdir -p /run/systemd/journal
  touch /run/systemd/journal/socket
  mount --bind "$sock" /run/systemd/journal/socket
else
  # A /dev of its own, with the devices rsync uses and the socket as /dev/log.
  mkdir /run/dev
  mount --rbind /dev /run/dev
  mount -t tmpfs tmpfs /dev
  for f in null zero full random urandom tty; do
    touch "/dev/$f"
    mount --bind "/run/dev/$f" "/dev/$f"
  done
  ln -s /proc/self/fd /dev/fd
  touch /dev/log
  mount --bind "$sock" /dev/log
fi
exec "$@"
"#;

/// Runs a local backup of a btrfs tree through snaprsync with `config`, with
/// `which` system log's socket being this test's; returns snaprsync's stderr,
/// its status and the records that arrived.
fn backup_logged_to(which: &str, config: &str) -> (String, Option<i32>, Vec<String>) {
    let fs = Btrfs::new(300);
    let data = fs.mnt().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("sub/f"), "f\n").unwrap();
    let work = testbed::tempdir("logs");
    let sock = work.path().join("socket");
    let rx = UnixDatagram::bind(&sock).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let wrapper = work.path().join("wrapper.sh");
    fs::write(&wrapper, WRAPPER).unwrap();
    let cfg = work.path().join("config.toml");
    fs::write(&cfg, format!("rsync_path = \"/usr/bin/rsync\"\nstate_dir = \"{}\"\n{config}", work.path().join("state").display())).unwrap();
    let out = cmd("unshare")
        .arg("--mount")
        .arg("sh")
        .arg(&wrapper)
        .arg(&sock)
        .arg(which)
        .arg(crate::support::snaprsync())
        .arg(format!("--snap-config={}", cfg.display()))
        .arg("-a")
        .arg(format!("{}/", data.display()))
        .arg(work.path().join("dst"))
        .run();
    assert_eq!(fs::read_to_string(work.path().join("dst/sub/f")).unwrap_or_default(), "f\n", "{}", out.report());
    fs.assert_no_snapshot_left();
    // The background removal may still be sending; wait for silence.
    let mut records = Vec::new();
    let mut buf = vec![0u8; 65536];
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        // Done once the summary is in, and with a background removal its remover's line too.
        let done = |r: &[String]| {
            r.iter().any(|x| x.contains("background removal"))
                || r.iter().any(|x| x.contains("summary run=") && !x.contains("removal=background"))
        };
        match rx.recv(&mut buf) {
            Ok(n) => records.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) if done(&records) => break,
            Err(_) => {}
        }
    }
    let code = out.code();
    (out.stderr, code, records)
}

/// The value of field `name` in a journal record.
fn field<'a>(record: &'a str, name: &str) -> Option<&'a str> {
    record.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

#[test]
fn a_quiet_night_is_its_summary_and_its_removal_in_the_journal_and_nothing_on_stderr() {
    let (stderr, status, records) = backup_logged_to("journald", "");
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(stderr, "", "a good run says nothing on stderr");
    // The summary, and the background remover's own line (the default
    // snapshot_removal = "background"), in either order.
    assert_eq!(records.len(), 2, "the summary and the remover's line: {records:#?}");
    let r = records.iter().find(|r| r.contains("MESSAGE=summary")).unwrap_or_else(|| panic!("no summary: {records:#?}"));
    let run = field(r, "SNAPRSYNC_RUN").unwrap_or_else(|| panic!("no run stamp: {r}"));
    assert!(run.starts_with("snaprsync-") && run.contains("-p"), "{r}");
    assert_eq!(field(r, "SYSLOG_IDENTIFIER"), Some("snaprsync"), "{r}");
    assert_eq!(field(r, "PRIORITY"), Some("6"), "{r}");
    assert_eq!(field(r, "SNAPRSYNC_PROVIDER"), Some("btrfs"), "{r}");
    assert_eq!(field(r, "SNAPRSYNC_RSYNC_STATUS"), Some("0"), "{r}");
    assert_eq!(field(r, "SNAPRSYNC_REMOVAL"), Some("background"), "handed off, not done yet: {r}");
    let message = field(r, "MESSAGE").unwrap();
    assert!(message.starts_with(&format!("summary run={run} sources=")), "{message}");
    let removal = records.iter().find(|r| r.contains("MESSAGE=background removal")).unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(field(removal, "SNAPRSYNC_RUN"), Some(run), "{removal}");
    assert_eq!(field(removal, "SNAPRSYNC_REMOVAL"), Some("ok"), "{removal}");
    assert_eq!(field(removal, "SNAPRSYNC_SNAPSHOTS"), Some("1"), "{removal}");
    assert!(field(removal, "SNAPRSYNC_REMOVE_MS").is_some_and(|ms| ms.parse::<u64>().is_ok()), "{removal}");
}

#[test]
fn without_a_journal_auto_falls_back_to_syslog() {
    let (stderr, status, records) = backup_logged_to("syslog", "");
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(stderr, "");
    assert_eq!(records.len(), 2, "the summary and the remover's line: {records:#?}");
    let r = records.iter().find(|r| r.contains("]: summary run=")).unwrap_or_else(|| panic!("{records:#?}"));
    assert!(
        records.iter().any(|r| r.contains("]: background removal run=snaprsync-") && r.contains(" removal=ok remove_ms=")),
        "{records:#?}"
    );
    // daemon.info, the tag and pid, then the same line as the journal's MESSAGE.
    assert!(r.starts_with("<30>snaprsync["), "{r}");
    assert!(r.contains("]: summary run=snaprsync-") && r.contains(" provider=btrfs ") && r.ends_with(" rsync_status=0"), "{r}");
}

#[test]
fn a_journal_named_but_missing_is_said_once_and_costs_no_backup() {
    let (stderr, status, _) = backup_logged_to("syslog", "log = \"journald\"\n");
    assert_eq!(status, Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("log = \"journald\": no socket at /run/systemd/journal/socket"), "{stderr}");
}

/// Neither the journal nor syslog (a container, a minimal VM): `auto` writes
/// to /var/log/snaprsync.log (here the test's own directory, mounted there in
/// the namespace), which the package rotates.
#[test]
fn without_journal_or_syslog_auto_falls_back_to_var_log() {
    let fs = Btrfs::new(300);
    let data = fs.mnt().join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("f"), "f\n").unwrap();
    let work = testbed::tempdir("logs-none");
    let var_log = work.path().join("var-log");
    fs::create_dir(&var_log).unwrap();
    let wrapper = work.path().join("wrapper.sh");
    fs::write(&wrapper, WRAPPER).unwrap();
    let cfg = work.path().join("config.toml");
    fs::write(&cfg, format!("rsync_path = \"/usr/bin/rsync\"\nstate_dir = \"{}\"\n", work.path().join("state").display())).unwrap();
    let out = cmd("unshare")
        .arg("--mount")
        .arg("sh")
        .arg(&wrapper)
        .arg(&var_log)
        .arg("none")
        .arg(crate::support::snaprsync())
        .arg(format!("--snap-config={}", cfg.display()))
        .arg("-a")
        .arg(format!("{}/", data.display()))
        .arg(work.path().join("dst"))
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.report());
    assert_eq!(out.stderr, "", "a good run says nothing on stderr");
    fs.assert_no_snapshot_left();
    let until = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = fs::read_to_string(var_log.join("snaprsync.log")).unwrap_or_default();
        if log.contains("summary run=snaprsync-") || Instant::now() > until {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        log.contains("summary run=snaprsync-") && log.contains(" provider=btrfs "),
        "the summary must be in /var/log/snaprsync.log:\n{log}"
    );
}
