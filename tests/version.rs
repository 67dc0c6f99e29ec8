//! `snaprsync version`, and `--version`: rsync's own answer, byte for byte,
//! through a pipe (as a backup server or a script asks it), snaprsync's and
//! rsync's version lines at a terminal. Linux only; needs rsync and script
//! (bsdutils).

use testbed::cmd::cmd;

#[test]
fn version_names_snaprsync_and_the_real_rsync() {
    let out = cmd(crate::support::snaprsync()).arg("version").ok();
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.report());
    assert_eq!(lines[0], format!("snaprsync {}", env!("CARGO_PKG_VERSION")));
    let rsync = cmd("rsync").arg("--version").ok().stdout_str();
    let first = rsync.lines().next().unwrap();
    assert!(lines[1].starts_with(first) && lines[1].ends_with("(/usr/bin/rsync)"), "{}", out.report());
}

#[test]
fn version_option_through_a_pipe_is_rsyncs_own_output() {
    let ours = cmd(crate::support::snaprsync()).arg("--version").ok();
    let theirs = cmd("/usr/bin/rsync").arg("--version").ok();
    assert_eq!(ours.stdout, theirs.stdout, "{}", ours.report());
}

#[test]
fn version_option_at_a_terminal_is_snaprsyncs() {
    // script(1) gives the command a terminal as its stdout.
    let out = cmd("script").args(["-qec", &format!("{} --version", crate::support::snaprsync()), "/dev/null"]).ok();
    let text = out.stdout_str().replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first().copied(), Some(format!("snaprsync {}", env!("CARGO_PKG_VERSION")).as_str()), "{}", out.report());
    assert!(lines.get(1).is_some_and(|l| l.starts_with("rsync  version")), "{}", out.report());
    assert_eq!(lines.len(), 2, "{}", out.report());
}
