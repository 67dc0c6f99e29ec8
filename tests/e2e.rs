//! End-to-end tests: snaprsync as the remote rsync of real clients (rsync,
//! rsnapshot, dirvish) over a real sshd on 127.0.0.1, reading a loop-mounted
//! btrfs filesystem. Needs the packages rsync, btrfs-progs, openssh-server,
//! openssh-client, dirvish and rsnapshot.

mod consistency;
mod dirvish;
mod rsnapshot;
mod rsync;
pub mod status;
