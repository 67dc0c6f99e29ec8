//! The rsync argv model: a pure reading of an rsync command line (no I/O).
//!
//! It tells which role this rsync plays (server sender, server receiver, client,
//! or something snaprsync need not touch), which arguments are source paths, and
//! renders the argv back with chosen paths replaced and every other byte kept.

use std::ffi::{OsStr, OsString};

/// What the rsync invoked with these arguments will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `--server --sender`: this side reads files and sends them (a pull by the server).
    ServerSender,
    /// `--server` without `--sender`: this side writes files (a push to here).
    ServerReceiver,
    /// A client run: `rsync [OPTS] SRC... DEST`. `local_sources` is true when every
    /// source is a local path (so this side sends them).
    Client { local_sources: bool },
    /// Anything with nothing to snapshot: `--version`, `--help`, `--daemon`, no paths.
    Passthrough,
}

/// Why an argv could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("option {0} needs a value")]
    MissingValue(String),
}

/// One parsed rsync command line. `args` is kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub args: Vec<OsString>,
    pub role: Role,
    /// `-s`/`--protect-args`/`--secluded-args` is in effect: in server mode the
    /// remaining arguments arrive on stdin.
    pub protect_args: bool,
    /// `-R`/`--relative`.
    pub relative: bool,
    sources: Vec<usize>,
}

/// Reads an rsync argv (without argv[0]).
pub fn parse(args: &[OsString]) -> Result<Invocation, ArgError> {
    let _ = args;
    todo!("argv model")
}

impl Invocation {
    /// Indices into `args` of the local source paths this side will read.
    pub fn source_indices(&self) -> &[usize] {
        &self.sources
    }

    /// The local source paths this side will read, in order.
    pub fn sources(&self) -> impl Iterator<Item = &OsStr> {
        self.sources.iter().map(|&i| self.args[i].as_os_str())
    }

    /// True when this side reads local files: the only case worth a snapshot.
    pub fn reads_local_files(&self) -> bool {
        matches!(self.role, Role::ServerSender | Role::Client { local_sources: true }) && !self.sources.is_empty()
    }

    /// The argv with each source path passed through `f`; all else byte for byte.
    pub fn render_with_sources(&self, mut f: impl FnMut(&OsStr) -> OsString) -> Vec<OsString> {
        let mut out = self.args.clone();
        for &i in &self.sources {
            out[i] = f(&self.args[i]);
        }
        out
    }
}
