//! snaprsync: a stand-in for rsync that makes the sending side read from a
//! point-in-time snapshot (btrfs on Linux, VSS on Windows).
//!
//! One run flows through these modules in order: `cli` splits snaprsync's own
//! options from rsync's argv, `rsync_args` reads that argv, `run` plans the
//! snapshots through a `provider`, shows them to rsync through `platform`'s
//! exposure, runs the real rsync with `child`, and removes everything again.

pub mod error;
pub mod rsync_args;
