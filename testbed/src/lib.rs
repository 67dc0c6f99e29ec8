//! snaprsync's test world, shared by its integration tests and its scripts
//! (`scripts/demo.sh`, `scripts/bench.sh` call the `testbed` binary): a
//! command runner, a btrfs filesystem on a loop-mounted image, a private sshd
//! on 127.0.0.1, and the torture writer/checker that tells whether a copy is
//! a single point in time.
//!
//! Everything here drives real programs. A required tool that is missing
//! fails with the command line that could not start; nothing is skipped.

pub mod btrfs;
pub mod cmd;
pub mod sshd;
pub mod torture;

/// A temp dir for one test's fixture. The prefix keeps these recognisable in
/// `/tmp` without ever containing `snaprsync-`, which marks snapshots.
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("srs-e2e-{tag}-")).tempdir().expect("create temp dir")
}
