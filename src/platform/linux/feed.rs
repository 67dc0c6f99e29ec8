//! The stdin feeder: hands rsync the `--protect-args` block snaprsync already
//! read, followed by everything else the backup server sends, through a pipe
//! fed by a thread.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::{splice, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Error, Result};

/// Whether stdin is a pipe fed by `feed` (see `refeed_stdin`).
static REFED: AtomicBool = AtomicBool::new(false);

/// Whether stdin is now fed by a thread of this process (so rsync may not
/// replace it with an exec).
pub fn refed() -> bool {
    REFED.load(Ordering::SeqCst)
}

/// See `Processes::refeed_stdin`.
pub fn refeed_stdin(prefix: Vec<u8>) -> Result<bool> {
    let stdin = std::io::stdin();
    let original = stdin.as_fd().try_clone_to_owned().map_err(|e| Error::io("stdin", e))?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::io("pipe", e.into()))?;
    nix::unistd::dup2_stdin(&read).map_err(|e| Error::io("stdin", e.into()))?;
    drop(read);
    std::thread::spawn(move || {
        if let Err(e) = feed(&prefix, original, write) {
            log::debug!("feeding rsync's stdin ended: {e}");
        }
    });
    REFED.store(true, Ordering::SeqCst);
    Ok(true)
}

/// Writes `prefix` into the pipe, then moves everything that arrives on the
/// original stdin into it (splice: no copy through user space), until EOF,
/// which is passed on by closing the pipe, or until rsync closes its end.
///
/// A blocking splice from a socket holds the pipe locked while it waits for
/// data, which would stall rsync's reads of what is already in the pipe; so
/// the wait is a poll, and the splice itself never blocks.
fn feed(prefix: &[u8], from: OwnedFd, into: OwnedFd) -> std::io::Result<()> {
    let mut into = File::from(into);
    into.write_all(prefix)?;
    let wait = |fd: BorrowedFd, ev: PollFlags| {
        let _ = poll(&mut [PollFd::new(fd, ev)], PollTimeout::NONE);
    };
    loop {
        wait(from.as_fd(), PollFlags::POLLIN);
        match splice(&from, None, &into, None, 1 << 16, SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK) {
            Ok(0) => return Ok(()),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // The pipe is full (or the data went to another reader): wait for room.
            Err(nix::errno::Errno::EAGAIN) => wait(into.as_fd(), PollFlags::POLLOUT),
            // Not a pipe or socket (a terminal, a file): copy instead.
            Err(nix::errno::Errno::EINVAL) => {
                std::io::copy(&mut File::from(from), &mut into)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}
