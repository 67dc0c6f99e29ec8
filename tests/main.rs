//! snaprsync's integration tests, one binary with a module per area (the
//! layout of ripgrep's `tests/tests.rs`). They drive the real binary with real
//! programs: sshd on 127.0.0.1, rsync, dirvish, rsnapshot and BackupPC, on
//! loop-mounted btrfs, and LVM and ZFS in a QEMU guest (`scripts/guest.sh`). Linux only; needs root and the packages
//! `scripts/deps.sh --tests` installs. A missing tool fails the test; nothing
//! is skipped. Plain `cargo test` leaves them out (the `integration` feature
//! turns them on; `scripts/test.sh` sets it).
//!
//!     cargo test --features integration --test main                  everything
//!     cargo test --features integration --test main restrict::       one area
//!     cargo test --features integration --test main faults::sigkill  one fault (was FAULT_ONLY=sigkill)

#![cfg(target_os = "linux")]

mod support;

mod bind;
mod cli;
mod confine_attacks;
mod doctor;
mod e2e;
mod exec;
mod faults;
mod first_night;
mod guest_lab;
mod logs;
mod lvm;
mod monitor;
mod prefetch;
mod protect_args;
mod restrict;
mod rootexec;
mod version;
mod zfs;
