//! The metadata prefetch (`prefetch = "auto"`) stops when rsync ends, early
//! or killed, long before it has walked the snapshot, and the run's status,
//! snapshot removal and log are as without it. The end-to-end and
//! consistency suites run with it on (the default).

use std::fs;
use std::path::Path;

use crate::support::rig::Rig;
use crate::support::snaprsync;
use testbed::cmd::cmd;

/// Directories and files per directory of the tree walked.
const DIRS: usize = 300;
const FILES: usize = 200;

fn world() -> Rig {
    Rig::build("prefetch")
        .size(600)
        .without_sshd()
        .data(|data| {
            for d in 0..DIRS {
                let dir = data.join(format!("d{d:03}"));
                fs::create_dir(&dir).unwrap();
                for f in 0..FILES {
                    fs::write(dir.join(format!("f{f:03}")), b"x").unwrap();
                }
            }
        })
        .start()
}

/// A stand-in for rsync (a shell script): it ends the run the way `body` says.
fn fake_rsync(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    cmd("chmod").arg("+x").arg(&p).ok();
    p.display().to_string()
}

/// The inodes the prefetch looked at in each run, from the log's stop lines.
fn walked(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.split("prefetch: ").nth(1))
        .filter(|rest| rest.contains("stopped"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn prefetch_stops_when_rsync_ends_early_or_is_killed() {
    let w = world();
    let total = (DIRS * (FILES + 1)) as u64;
    let log = w.work.path().join("prefetch.log");
    let trials = 10;
    for (name, body, status) in [("ends-early", "exit 23", 23), ("killed", "sleep 0.05; kill -9 $$", 128 + 9)] {
        let _ = fs::remove_file(&log);
        let rsync = fake_rsync(w.work.path(), name, body);
        let cfg = w.work.path().join(format!("{name}.toml"));
        fs::write(
            &cfg,
            format!(
                "rsync_path = \"{rsync}\"\nprefetch_threads = 2\nlog_file = \"{}\"\nlog_level = \"debug\"\nsnapshot_removal = \"wait\"\nstate_dir = \"{}\"\n",
                log.display(),
                w.work.path().join("state").display()
            ),
        )
        .unwrap();
        for t in 0..trials {
            let out = cmd(snaprsync())
                .arg(format!("--snap-config={}", cfg.display()))
                .args(["--server", "--sender", "-logDtpre.iLsfxCIvu", "."])
                .arg(format!("{}/", w.src().display()))
                .run();
            out.expect_code(status).expect_stdout_empty();
            w.fs.assert_no_snapshot_left();
            let text = fs::read_to_string(&log).unwrap();
            let counts = walked(&text);
            assert_eq!(counts.len(), t + 1, "{name}: one prefetch stop per run\n{text}");
            let n = *counts.last().unwrap();
            assert!(n < total, "{name}, trial {t}: the prefetch walked all {total} inodes after rsync had ended\n{text}");
        }
        // Stopped before the snapshot was removed: the stop line comes first in every run.
        let text = fs::read_to_string(&log).unwrap();
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                if l.contains("prefetch: ") {
                    Some("prefetch")
                } else if l.contains(" summary ") {
                    Some("summary")
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(order, ["prefetch", "summary"].repeat(trials), "{name}\n{text}");
    }
}

#[test]
fn prefetch_walks_the_whole_snapshot_when_rsync_takes_long_enough() {
    let w = world();
    let total = (DIRS * (FILES + 1)) as u64;
    let log = w.work.path().join("prefetch.log");
    let rsync = fake_rsync(w.work.path(), "slow", "sleep 5; exit 0");
    let cfg = w.work.path().join("slow.toml");
    fs::write(
        &cfg,
        format!(
            "rsync_path = \"{rsync}\"\nprefetch_threads = 1\nlog_file = \"{}\"\nlog_level = \"debug\"\nstate_dir = \"{}\"\n",
            log.display(),
            w.work.path().join("state").display()
        ),
    )
    .unwrap();
    let out = cmd(snaprsync())
        .arg(format!("--snap-config={}", cfg.display()))
        .args(["--server", "--sender", "-logDtpre.iLsfxCIvu", "."])
        .arg(format!("{}/", w.src().display()))
        .run();
    out.expect_code(0).expect_stdout_empty();
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(walked(&text), [total], "every directory and file of the snapshot, once\n{text}");
    // prefetch = "off": no walk at all.
    fs::write(&cfg, fs::read_to_string(&cfg).unwrap() + "prefetch = \"off\"\n").unwrap();
    cmd(snaprsync())
        .arg(format!("--snap-config={}", cfg.display()))
        .args(["--server", "--sender", "-logDtpre.iLsfxCIvu", "."])
        .arg(format!("{}/", w.src().display()))
        .run()
        .expect_code(0);
    assert_eq!(walked(&fs::read_to_string(&log).unwrap()).len(), 1, "prefetch = \"off\" walked");
}
