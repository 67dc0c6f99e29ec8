//! The refusal types of restricted mode: a leaf, so that `error` can hold
//! them without reaching into the rest of restricted mode.

/// A refusal: the offending argument and why, for one line on stderr and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{arg}: {why}")]
pub struct Refusal {
    /// The offending argument, shown on one line (control bytes escaped, cut short).
    pub arg: String,
    /// Why it is refused.
    pub why: String,
}

impl Refusal {
    pub fn new(arg: impl AsRef<[u8]>, why: impl Into<String>) -> Self {
        // The reason may quote a path (a resolved one): keep it on one line too.
        let why = crate::text::one_line(&why.into()).into_owned();
        Refusal { arg: crate::text::shown(arg.as_ref(), SHOWN_CHARS), why }
    }

    /// The offending argument, for logging.
    pub fn arg(&self) -> &str {
        &self.arg
    }
}

/// Why restricted mode refused a request: because of one argument, or as a
/// whole. Becomes [`crate::error::Error::Refused`] (exit status 85).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// One argument of the request.
    #[error(transparent)]
    Argument(#[from] Refusal),
    /// snaprsync was not started by sshd for a forced command.
    #[error("no SSH_ORIGINAL_COMMAND: --snap-restrict works only as an ssh forced command")]
    NotForced,
    /// An argv that rsync itself rejects.
    #[error("rsync arguments: {0}")]
    RsyncArgs(#[from] crate::rsync_args::ArgError),
    /// The config turns snapshots off, and a restricted key reads only from one.
    #[error("provider = \"none\" in the config: restricted mode reads only from a snapshot; set provider = \"auto\"")]
    NoSnapshots,
}

/// How much of an offending argument a refusal shows, in characters.
const SHOWN_CHARS: usize = 200;
