//! End-to-end tests: snaprsync as the remote rsync of real clients (rsync,
//! rsnapshot, dirvish) over a real sshd on 127.0.0.1, reading a loop-mounted
//! btrfs filesystem. Linux only; needs root and the packages rsync,
//! btrfs-progs, openssh-server, openssh-client, dirvish and rsnapshot.
//! A missing tool fails the test; nothing is skipped.

#![cfg(target_os = "linux")]

mod support;

#[path = "e2e/consistency.rs"]
mod consistency;
#[path = "e2e/dirvish.rs"]
mod dirvish;
#[path = "e2e/rsnapshot.rs"]
mod rsnapshot;
#[path = "e2e/rsync.rs"]
mod rsync;
#[path = "e2e/status.rs"]
mod status;
