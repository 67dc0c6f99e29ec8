//! A program run with a time limit (the hooks), in a process group of its own,
//! so that when it outlasts its time the whole group can be ended: a shell
//! script's children go with it. The group is its own, so a terminal's Ctrl-C
//! does not reach it directly; an ending signal snaprsync holds is passed on.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::supervise::passed_on;
use super::Platform;
use crate::platform::{Bounded, Processes};

/// How long a timed-out hook's group has after TERM before it gets KILL.
const GRACE: Duration = Duration::from_secs(1);

/// How often the loop looks at the hook and at held signals.
const TICK: Duration = Duration::from_millis(10);

/// See `Processes::run_bounded`.
pub fn run(program: &Path, args: &[OsString], env: &[(OsString, OsString)], limit: Duration) -> io::Result<Bounded> {
    let mut child = crate::platform::hook_command(program, args, env).process_group(0).spawn()?;
    let group = Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + limit;
    // Only a signal that comes while the hook runs is passed on: one held
    // before must not kill post_snapshot, the hook that undoes pre_snapshot.
    let mut passed = Platform.pending_signal();
    while !exited(group) {
        if let Some(sig) = Platform.pending_signal().filter(|s| Some(*s) != passed) {
            passed = Some(sig);
            if let Ok(s) = Signal::try_from(passed_on(sig)) {
                log::info!("passing {s} on to the hook");
                let _ = killpg(group, s);
            }
        }
        if Instant::now() >= deadline {
            end_group(group, &mut child);
            return Ok(Bounded::TimedOut);
        }
        std::thread::sleep(TICK);
    }
    let status = child.wait()?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => Bounded::Code(code),
        (None, Some(sig)) => Bounded::Signal(sig),
        (None, None) => Bounded::Code(255),
    })
}

/// Whether the hook has ended, without reaping it: while it is a zombie its
/// pid, and so its group's id, cannot be reused by another process.
fn exited(pid: Pid) -> bool {
    !matches!(waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT), Ok(WaitStatus::StillAlive))
}

/// TERM to the whole group, a grace period for the leader, then KILL to
/// whatever of the group is left; then the leader is reaped.
fn end_group(group: Pid, child: &mut Child) {
    let _ = killpg(group, Signal::SIGTERM);
    let until = Instant::now() + GRACE;
    while !exited(group) && Instant::now() < until {
        std::thread::sleep(TICK);
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}
