//! Restricted mode: the policy for an ssh forced command (pure, apart from
//! resolving paths on the filesystem in [`confine`]).
//!
//! A backup key in `authorized_keys` is pinned to
//! `command="snaprsync --snap-restrict --snap-allow=DIR ..."`. sshd then runs
//! that command whatever the client asked for, and puts the request in
//! `SSH_ORIGINAL_COMMAND`. This module decides whether that request may run:
//!
//! 1. [`command_argv`] reads `SSH_ORIGINAL_COMMAND` into an argv, without a shell;
//! 2. [`check`] holds the parsed invocation against the [`Policy`]: the role, an
//!    allowlist of server options and the values of the numeric ones, the text
//!    of every path, and the confinement of every path;
//! 3. [`confine`] resolves one path (`..`, symlinks) and requires it to lie in
//!    an allowed directory, reached without passing through `/proc`, `/sys` or
//!    `/dev`.
//!
//! # Reading `SSH_ORIGINAL_COMMAND`
//!
//! An rsync client builds the remote command as `<rsync-path> --server
//! [--sender] <options> . <paths>` and the ssh client joins it with spaces.
//! rsync ≥ 3.2.4 backslash-escapes the characters a shell would act on
//! (`! # $ & ; | < > ( ) { } " ' `` ` `` space tab \`, and in option values also
//! `* ? [ ]`); older clients, and newer ones with `--old-args`, send the words
//! as they are; a user's `--rsync-path` may hold single or double quotes. The
//! words are split the way a POSIX shell would split these forms:
//!
//! - words are separated by unquoted spaces and tabs;
//! - outside quotes, `\c` is the byte `c`, for any byte `c`;
//! - `'...'` is literal up to the next `'`;
//! - in `"..."`, `\` before `$ `` ` `` " \` is dropped, any other `\` is kept.
//!
//! Refused, because a shell would act on them and snaprsync runs none: outside
//! quotes the bytes `; & | < > ( ) { } $ `` ` `` # * ? [`, a `~` that starts a
//! word, an unterminated quote, a trailing `\`; inside double quotes an unescaped
//! `$` or `` ` ``. Refused anywhere: a NUL byte, a newline or carriage return
//! (rsync never escapes a newline, so a name holding one can only travel in a
//! `-s` block), more than [`MAX_COMMAND_BYTES`] bytes, more than [`MAX_WORDS`]
//! words, a word longer than [`MAX_WORD_LEN`] bytes.
//!
//! The first word must name rsync (its last path component is `rsync`,
//! `rsync.exe`, `snaprsync` or `snaprsync.exe`, in any case); it is never run:
//! snaprsync always runs its configured rsync. The second word must be
//! `--server`, as every rsync client sends it. No word may start with `--snap-`:
//! the forced command alone sets snaprsync's own options.
//!
//! # The allowlist
//!
//! Only `--server --sender` (a pull) is accepted; `--server` alone (a push) only
//! with `--snap-allow-write`. Every option must be on the allowlist in
//! [`check_option`]: the options rsync 3.2–3.4 clients send to a server
//! (`server_options()` in rsync's `options.c`), and the long spellings of the
//! short ones. Everything else is refused, each with its reason; among them:
//! options that delete or change this machine's files (`--remove-source-files`),
//! run programs (`-e` other than the protocol flags, `--rsh`, `--rsync-path`),
//! read or write local files named in the command (`--files-from`,
//! `--include-from`, `--exclude-from`, `--filter`, `--log-file`,
//! `--write-batch`, `--password-file`), follow symlinks out of the allowed
//! directories (`-L`, `--copy-unsafe-links`, `-k`, `-K`), reach devices
//! (`--copy-devices`, `--write-devices`), or leave server mode (`--daemon`,
//! `--config`, `--version`). `--temp-dir`, `--backup-dir`, `--partial-dir` and the
//! basis directories (`--link-dest` ...) must lie in the allowed directories.
//!
//! `--iconv` (`--iconv=CHARSET`, `--iconv CHARSET`, on the command line or in a
//! `-s` block) is refused unless the forced command allows it
//! ([`Allowances::allow_iconv`], `--snap-allow-iconv`): rsync converts the
//! names of a `-s` block with it after they were checked here, and a conversion
//! can make `..`, `*` or `/` out of other bytes (`‥` U+2025 becomes `..` and `∗`
//! becomes `*` under `ASCII//TRANSLIT`; `.é.` becomes `..` under `//IGNORE`).
//! Allowing it gives up the text checks of `-s` names below: allow it only
//! where rsync is confined by other means. `--no-iconv` is allowed.
//!
//! The numeric options on the allowlist must hold a value rsync reads, within
//! bounds, else they are refused as malformed or out of range. Integers must
//! be plain decimal without leading zeros (popt would read `010` as 8 and
//! `0x10` as 16). Sizes are read as rsync reads them: a decimal number, then a
//! unit `B K M G T P` (if none, the option's own: bytes, or K for `--bwlimit`),
//! then `B` for powers of 1000 or `iB` for 1024, then `+1` or `-1`.
//!
//! | option | taken | why bounded |
//! | --- | --- | --- |
//! | `--max-alloc` | 1M to 16G (bytes by default) | `0` lifts rsync's cap on one allocation (default 1G) |
//! | `--bwlimit` | 0 (none) or 512 to 1T bytes/s (K by default) | |
//! | `--max-size`, `--min-size` | 0 to 1 EiB (bytes by default) | |
//! | `--block-size`, `-B` | 0 (rsync picks) to 128K | rsync's `MAX_BLOCK_SIZE` |
//! | `--timeout` | 0 (none) to 86400 s | |
//! | `--compress-level`, `--zl` | -131072 to 22 | zstd's range; zlib takes 0 to 9 |
//! | `--modify-window`, `-@` | -1 to 86400 s | |
//! | `--checksum-seed` | a 32-bit integer | |
//! | `--max-delete` | -1 to 2^31-1 | |
//!
//! `--contimeout` and `--compress-threads` are not on the allowlist.
//!
//! # Paths
//!
//! Every path is first read as text, the way rsync reads it ([`normalise`]):
//! runs of `/` made one and `.` components dropped, as rsync's `clean_fname`
//! does (so `/srv/./x`, the `-R` form, is `/srv/x` here and accepted). Refused
//! then, in a source, a destination, the directory argument (the `.` every
//! client sends) and the value of a directory option alike:
//!
//! - an empty path, and one holding the wildcards `* ? [` (rsync expands them
//!   itself in a `-s` block, after this check);
//! - a `..` component: rsync collapses `..` as text in a `-s` block (its
//!   `clean_fname`: `dir/link/..` is `dir`), while the filesystem, and
//!   [`confine`], follow `link` first; where `link` leads deeper, `link/../..`
//!   climbs out of the allowed directory. Name the path without `..` (a
//!   relative `--link-dest=../old` is refused too: give it absolute);
//! - a path under `/proc`, `/sys` or `/dev`, as given or joined to the
//!   directory it is relative to: `/proc/PID/root/...` and `/proc/self/...`
//!   lead into other processes' views of the filesystem (the live tree instead
//!   of the snapshot, other mount namespaces), `/dev/fd/N` and `/dev/stdin` are
//!   open files. [`confine`] also refuses a path whose resolution passes
//!   through one of them (a symlink in the tree that points there).
//!
//! Then every source of a pull, and the destination of a push, must resolve
//! inside an allowed directory ([`confine`]). Relative paths are taken from the
//! directory argument, itself relative to the working directory, as rsync does.
//!
//! Names may hold any other byte (spaces, quotes, UTF-8, newlines in a `-s`
//! block): the log escapes control characters, so a name cannot forge a log line.

use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};

use crate::rsync_args::{Invocation, OptionName, ParsedOption, Role};

/// Longest `SSH_ORIGINAL_COMMAND` read, in bytes. Real backup commands are a
/// few hundred bytes; a client with very many paths can send them with `-s`,
/// whose block on stdin has its own limits (`protect_args`).
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Most words in a command, argv[0] included: rsync's own `MAX_ARGS`.
pub const MAX_WORDS: usize = crate::protect_args::MAX_ARGS;

/// Longest single word, in bytes: what an rsync server keeps of an argument.
pub const MAX_WORD_LEN: usize = crate::protect_args::MAX_ARG_LEN;

/// What a forced command allows: `--snap-allow=DIR` (read) and
/// `--snap-allow-write=DIR`. A directory to be both pulled from and pushed to is
/// named in both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub allow: Vec<PathBuf>,
    pub allow_write: Vec<PathBuf>,
}

/// What a forced command may let through beyond [`check`]'s defaults, for
/// [`check_with`]. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allowances {
    /// `--snap-allow-iconv`: take `--iconv` (see "The allowlist").
    pub allow_iconv: bool,
}

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

impl From<Refusal> for crate::error::Error {
    fn from(r: Refusal) -> Self {
        crate::error::Error::Refused(Refused::Argument(r))
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

const ORIGINAL: &str = "SSH_ORIGINAL_COMMAND";

/// SSH_ORIGINAL_COMMAND (raw bytes) → rsync's argv without argv[0], read
/// without a shell (see the module documentation for the rules and limits).
pub fn command_argv(original: &[u8]) -> Result<Vec<OsString>, Refusal> {
    if original.len() > MAX_COMMAND_BYTES {
        return Err(Refusal::new(
            ORIGINAL,
            format!(
                "{} bytes, more than the {MAX_COMMAND_BYTES} a restricted command may have; send many paths with rsync -s",
                original.len()
            ),
        ));
    }
    if original.contains(&0) {
        return Err(Refusal::new(ORIGINAL, "holds a NUL byte"));
    }
    if let Some(&b) = original.iter().find(|&&b| b == b'\n' || b == b'\r') {
        let what = if b == b'\n' { "a newline" } else { "a carriage return" };
        return Err(Refusal::new(
            ORIGINAL,
            format!("holds {what}, which would end the command for a shell; a name holding one can only be sent with rsync -s"),
        ));
    }
    let words = split_words(original)?;
    if words.len() > MAX_WORDS {
        return Err(Refusal::new(ORIGINAL, format!("{} words, more than {MAX_WORDS}", words.len())));
    }
    if let Some(w) = words.iter().find(|w| w.len() > MAX_WORD_LEN) {
        return Err(Refusal::new(w, format!("{} bytes long, more than {MAX_WORD_LEN}", w.len())));
    }
    let Some((argv0, args)) = words.split_first() else {
        return Err(Refusal::new(ORIGINAL, "empty: this key only runs rsync"));
    };
    if !names_rsync(argv0) {
        return Err(Refusal::new(argv0, "not rsync: this key only runs rsync"));
    }
    // A client's `--rsync-path="snaprsync --snap-config=..."` puts snaprsync's
    // own options before `--server`: say where they belong.
    if let Some(w) = args.iter().take_while(|w| *w != b"--server").find(|w| w.starts_with(b"--snap-")) {
        return Err(Refusal::new(
            w,
            "snaprsync's --snap-* options belong in the key's forced command in authorized_keys, not in the client's --rsync-path; \
             leave --rsync-path out (or set it to rsync)",
        ));
    }
    match args.first() {
        Some(first) if first == b"--server" => {}
        Some(first) => {
            return Err(Refusal::new(first, "the command must be an rsync server (--server right after rsync)"));
        }
        None => return Err(Refusal::new(argv0, "the command must be an rsync server (--server right after rsync)")),
    }
    if let Some(w) = args.iter().find(|w| w.starts_with(b"--snap-")) {
        return Err(Refusal::new(w, "snaprsync's own options are set by the forced command only"));
    }
    args.iter().map(|w| os_string(w)).collect()
}

/// Whether the last path component of `word` is rsync's or snaprsync's name.
fn names_rsync(word: &[u8]) -> bool {
    let base = word.rsplit(|&b| b == b'/' || b == b'\\').next().unwrap_or(word);
    let base = base.to_ascii_lowercase();
    [&b"rsync"[..], b"rsync.exe", b"snaprsync", b"snaprsync.exe"].contains(&&base[..])
}

#[cfg(unix)]
fn os_string(w: &[u8]) -> Result<OsString, Refusal> {
    use std::os::unix::ffi::OsStringExt;
    Ok(OsString::from_vec(w.to_vec()))
}

#[cfg(not(unix))]
fn os_string(w: &[u8]) -> Result<OsString, Refusal> {
    String::from_utf8(w.to_vec()).map(OsString::from).map_err(|_| Refusal::new(w, "not UTF-8"))
}

/// Bytes a shell would act on outside quotes.
fn shell_meaning(b: u8) -> Option<&'static str> {
    Some(match b {
        b';' | b'&' | b'|' => "a command separator",
        b'<' | b'>' => "a redirection",
        b'(' | b')' | b'{' | b'}' => "a subshell or group",
        b'$' | b'`' => "an expansion",
        b'#' => "a comment",
        b'*' | b'?' | b'[' => "a wildcard (snaprsync expands none)",
        _ => return None,
    })
}

/// Splits the command into words by the quoting rules of the module documentation.
/// Splits a command into words as [`command_argv`] does (quotes and
/// backslashes; any other shell syntax is refused), for checking a forced
/// command written in `authorized_keys`.
pub fn shell_words(s: &[u8]) -> Result<Vec<Vec<u8>>, Refusal> {
    split_words(s)
}

fn split_words(s: &[u8]) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut words = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut i = 0;
    let syntax = |at: usize, what: &str| {
        let from = at.saturating_sub(20);
        Refusal::new(&s[from..(at + 20).min(s.len())], format!("shell syntax at byte {at}: {what}"))
    };
    while i < s.len() {
        let b = s[i];
        match b {
            b' ' | b'\t' => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
                i += 1;
            }
            b'\\' => {
                let Some(&c) = s.get(i + 1) else {
                    return Err(syntax(i, "a trailing backslash"));
                };
                cur.get_or_insert_with(Vec::new).push(c);
                i += 2;
            }
            b'\'' => {
                let Some(len) = s[i + 1..].iter().position(|&c| c == b'\'') else {
                    return Err(syntax(i, "an unterminated single quote"));
                };
                cur.get_or_insert_with(Vec::new).extend_from_slice(&s[i + 1..i + 1 + len]);
                i += len + 2;
            }
            b'"' => {
                let w = cur.get_or_insert_with(Vec::new);
                let mut j = i + 1;
                loop {
                    match s.get(j) {
                        None => return Err(syntax(i, "an unterminated double quote")),
                        Some(b'"') => break,
                        Some(b'\\') => match s.get(j + 1) {
                            Some(&c @ (b'$' | b'`' | b'"' | b'\\')) => {
                                w.push(c);
                                j += 2;
                            }
                            _ => {
                                w.push(b'\\');
                                j += 1;
                            }
                        },
                        Some(b'$' | b'`') => return Err(syntax(j, "an expansion inside double quotes")),
                        Some(&c) => {
                            w.push(c);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
            }
            b'~' if cur.is_none() => return Err(syntax(i, "a tilde expansion; write the full path")),
            _ => {
                if let Some(what) = shell_meaning(b) {
                    return Err(syntax(i, what));
                }
                cur.get_or_insert_with(Vec::new).push(b);
                i += 1;
            }
        }
    }
    if let Some(w) = cur.take() {
        words.push(w);
    }
    Ok(words)
}

/// What the allowlist does with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Allowed as it is (a flag, or a value rsync checks and that names no file;
    /// a numeric value is bounded, see [`NUMBERS`]).
    Allow,
    /// `--iconv`: only with [`Allowances::allow_iconv`].
    Iconv,
    /// A directory rsync writes into or reads basis files from: confined.
    Dir(DirKind),
    /// Refused, with the reason.
    Refuse(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirKind {
    /// `--temp-dir`, `--backup-dir`: written; relative to the destination.
    Write,
    /// `--partial-dir`: written; a relative one is made in each file's directory.
    Partial,
    /// `--compare-dest`, `--copy-dest`, `--link-dest`: read; relative to the destination.
    Basis,
}

const FOLLOWS_LINKS: &str = "follows symlinks, which can lead out of the allowed directories";
const FILTERS: &str = "filter rules come over the connection; on the command line they can merge local files";
const DAEMON: &str = "not a server transfer (daemon mode)";
const RUNS: &str = "names a program to run";

/// Long options: the allowed ones, and the refused ones worth a reason. Sorted.
/// Any other name, and any `no-` form not listed under [`NO_REFUSED`], is
/// decided in [`long_rule`].
#[rustfmt::skip]
const LONG_RULES: &[(&str, Rule)] = &[
    ("acls", Rule::Allow),
    ("append", Rule::Allow),
    ("append-verify", Rule::Allow),
    ("archive", Rule::Allow),
    ("atimes", Rule::Allow),
    ("backup", Rule::Allow),
    ("backup-dir", Rule::Dir(DirKind::Write)),
    ("block-size", Rule::Allow),
    ("bwlimit", Rule::Allow),
    ("cc", Rule::Allow),
    ("checksum", Rule::Allow),
    ("checksum-choice", Rule::Allow),
    ("checksum-seed", Rule::Allow),
    ("compare-dest", Rule::Dir(DirKind::Basis)),
    ("compress", Rule::Allow),
    ("compress-choice", Rule::Allow),
    ("compress-level", Rule::Allow),
    ("config", Rule::Refuse(DAEMON)),
    ("copy-as", Rule::Refuse("changes the user rsync runs as")),
    ("copy-dest", Rule::Dir(DirKind::Basis)),
    ("copy-devices", Rule::Refuse("reads the contents of device files")),
    ("copy-dirlinks", Rule::Refuse(FOLLOWS_LINKS)),
    ("copy-links", Rule::Refuse(FOLLOWS_LINKS)),
    ("copy-unsafe-links", Rule::Refuse(FOLLOWS_LINKS)),
    ("crtimes", Rule::Allow),
    ("cvs-exclude", Rule::Allow),
    ("daemon", Rule::Refuse(DAEMON)),
    ("debug", Rule::Allow),
    ("delay-updates", Rule::Allow),
    ("delete", Rule::Allow),
    ("delete-after", Rule::Allow),
    ("delete-before", Rule::Allow),
    ("delete-delay", Rule::Allow),
    ("delete-during", Rule::Allow),
    ("delete-excluded", Rule::Allow),
    ("delete-missing-args", Rule::Allow),
    ("detach", Rule::Refuse(DAEMON)),
    ("devices", Rule::Allow),
    ("dirs", Rule::Allow),
    ("dparam", Rule::Refuse(DAEMON)),
    ("dry-run", Rule::Allow),
    ("early-input", Rule::Refuse("reads a local file")),
    ("exclude", Rule::Refuse(FILTERS)),
    ("exclude-from", Rule::Refuse("reads a local file (filter rules come over the connection)")),
    ("executability", Rule::Allow),
    ("existing", Rule::Allow),
    ("files-from", Rule::Refuse("the names in the list arrive after this check and can pass through symlinks in the tree to outside it")),
    ("filter", Rule::Refuse(FILTERS)),
    ("force", Rule::Allow),
    ("from0", Rule::Allow),
    ("fsync", Rule::Allow),
    ("fuzzy", Rule::Allow),
    ("group", Rule::Allow),
    ("groupmap", Rule::Allow),
    ("hard-links", Rule::Allow),
    ("help", Rule::Refuse("not a transfer")),
    ("i-d", Rule::Allow),
    ("i-r", Rule::Allow),
    ("iconv", Rule::Iconv),
    ("ignore-errors", Rule::Allow),
    ("ignore-existing", Rule::Allow),
    ("ignore-missing-args", Rule::Allow),
    ("ignore-non-existing", Rule::Allow),
    ("ignore-times", Rule::Allow),
    ("implied-dirs", Rule::Allow),
    ("inc-recursive", Rule::Allow),
    ("include", Rule::Refuse(FILTERS)),
    ("include-from", Rule::Refuse("reads a local file (filter rules come over the connection)")),
    ("info", Rule::Allow),
    ("inplace", Rule::Allow),
    ("keep-dirlinks", Rule::Refuse(FOLLOWS_LINKS)),
    ("link-dest", Rule::Dir(DirKind::Basis)),
    ("links", Rule::Allow),
    ("list-only", Rule::Allow),
    ("log-file", Rule::Refuse("writes a file on this machine")),
    ("log-file-format", Rule::Refuse("goes with --log-file, which writes a file on this machine")),
    ("log-format", Rule::Allow),
    ("max-alloc", Rule::Allow),
    ("max-delete", Rule::Allow),
    ("max-size", Rule::Allow),
    ("min-size", Rule::Allow),
    ("mkpath", Rule::Allow),
    ("modify-window", Rule::Allow),
    ("msgs2stderr", Rule::Allow),
    ("munge-links", Rule::Allow),
    ("new-compress", Rule::Allow),
    ("numeric-ids", Rule::Allow),
    ("old-compress", Rule::Allow),
    ("old-d", Rule::Allow),
    ("old-dirs", Rule::Allow),
    ("omit-dir-times", Rule::Allow),
    ("omit-link-times", Rule::Allow),
    ("one-file-system", Rule::Allow),
    ("only-write-batch", Rule::Refuse("writes a batch file on this machine")),
    (
        "open-noatime",
        Rule::Refuse(
            "opens files with O_NOATIME, which needs CAP_FOWNER, a power a restricted key's rsync does not hold \
             (and a snapshot's access times never change); leave it out",
        ),
    ),
    ("owner", Rule::Allow),
    ("partial", Rule::Allow),
    ("partial-dir", Rule::Dir(DirKind::Partial)),
    ("password-file", Rule::Refuse("reads a local file")),
    ("perms", Rule::Allow),
    ("preallocate", Rule::Allow),
    ("protect-args", Rule::Allow),
    ("prune-empty-dirs", Rule::Allow),
    ("qsort", Rule::Allow),
    ("quiet", Rule::Allow),
    ("read-batch", Rule::Refuse("reads a batch file on this machine")),
    ("recursive", Rule::Allow),
    ("relative", Rule::Allow),
    ("remote-option", Rule::Refuse("passes options on to another rsync")),
    ("remove-sent-files", Rule::Refuse("deletes the files it sends from this machine")),
    ("remove-source-files", Rule::Refuse("deletes the files it sends from this machine")),
    ("rsh", Rule::Refuse(RUNS)),
    ("rsync-path", Rule::Refuse(RUNS)),
    ("safe-links", Rule::Allow),
    ("secluded-args", Rule::Allow),
    ("sender", Rule::Allow),
    ("server", Rule::Allow),
    ("size-only", Rule::Allow),
    ("skip-compress", Rule::Allow),
    ("sparse", Rule::Allow),
    ("specials", Rule::Allow),
    ("stats", Rule::Allow),
    ("suffix", Rule::Allow),
    ("super", Rule::Allow),
    ("temp-dir", Rule::Dir(DirKind::Write)),
    ("timeout", Rule::Allow),
    ("times", Rule::Allow),
    ("update", Rule::Allow),
    ("usermap", Rule::Allow),
    ("verbose", Rule::Allow),
    ("version", Rule::Refuse("not a transfer")),
    ("whole-file", Rule::Allow),
    ("write-batch", Rule::Refuse("writes a batch file on this machine")),
    ("write-devices", Rule::Refuse("writes into device files")),
    ("xattrs", Rule::Allow),
    ("zc", Rule::Allow),
    ("zl", Rule::Allow),
];

/// `no-` forms that are refused although negations are otherwise allowed.
const NO_REFUSED: &[(&str, &str)] = &[("no-detach", DAEMON), ("no-munge-links", "turns off a safety option")];

/// Short options the allowlist takes as they are: the letters rsync 3.2–3.4
/// clients put in a server's option cluster, and `a`.
const SHORT_ALLOWED: &[u8] = b"ACDEHIJNORSUWXabcdglmnopqrstuvxyz";

/// Every long option name on the allowlist, for documentation and tests.
pub fn allowed_long_options() -> impl Iterator<Item = &'static str> {
    LONG_RULES.iter().filter(|(_, r)| !matches!(r, Rule::Refuse(_))).map(|(n, _)| *n)
}

/// Every short option letter on the allowlist, value-taking ones (`e` for the
/// protocol flags, `B`, `@`, `T`) included.
pub fn allowed_short_options() -> impl Iterator<Item = char> {
    SHORT_ALLOWED.iter().chain(b"eB@T").map(|&c| char::from(c))
}

fn long_rule(name: &str, known: bool) -> Rule {
    if let Ok(k) = LONG_RULES.binary_search_by(|(n, _)| (*n).cmp(name)) {
        return LONG_RULES[k].1;
    }
    if let Some((_, why)) = NO_REFUSED.iter().find(|(n, _)| *n == name) {
        return Rule::Refuse(why);
    }
    if known && name.starts_with("no-") {
        // Turning an option off never reaches further than leaving it on.
        return Rule::Allow;
    }
    if known {
        Rule::Refuse("not an option an rsync client sends to a server; restricted mode allows only those")
    } else {
        Rule::Refuse("not an rsync option")
    }
}

fn short_rule(c: u8, known: bool) -> Rule {
    match c {
        _ if SHORT_ALLOWED.contains(&c) => Rule::Allow,
        b'B' | b'@' | b'e' => Rule::Allow,
        b'T' => Rule::Dir(DirKind::Write),
        b'L' | b'k' | b'K' => Rule::Refuse(FOLLOWS_LINKS),
        b'f' | b'F' => Rule::Refuse(FILTERS),
        b'M' => Rule::Refuse("passes options on to another rsync"),
        b'V' | b'h' => Rule::Refuse("not a transfer"),
        _ if known => Rule::Refuse("not an option an rsync client sends to a server; restricted mode allows only those"),
        _ => Rule::Refuse("not an rsync option"),
    }
}

/// `-e` on a server carries the protocol flags (`.iLsfxCIvu`, `31.0iLsf`),
/// never a remote shell.
fn protocol_flags(v: &[u8]) -> bool {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    v.get(digits) == Some(&b'.') && v[digits + 1..].iter().all(u8::is_ascii_alphanumeric)
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
const EIB: u64 = 1 << 60;

/// How rsync reads a numeric option's value, and what restricted mode takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    /// popt's `POPT_ARG_INT`, here in plain decimal only: popt reads `010` as
    /// 8 and `0x10` as 16, so those forms are refused rather than guessed.
    Int { min: i64, max: i64 },
    /// rsync's `parse_size_arg`, in bytes; `unit` is the default unit. `0` is
    /// taken only if `zero` says why it is harmless.
    Size { unit: u8, min: u64, max: u64, zero: bool },
}

/// The numeric options on the allowlist: the bound, and the range as the
/// refusal states it (see "The allowlist").
#[rustfmt::skip]
const NUMBERS: &[(&str, Number, &str)] = &[
    ("block-size", Number::Size { unit: b'b', min: 0, max: 128 * KIB, zero: true }, "0 (rsync picks) to 128K, rsync's largest block"),
    ("bwlimit", Number::Size { unit: b'K', min: 512, max: TIB, zero: true }, "0 (no limit) or 512 to 1T bytes per second (K by default)"),
    ("checksum-seed", Number::Int { min: i32::MIN as i64, max: i32::MAX as i64 }, "a 32-bit integer"),
    ("compress-level", Number::Int { min: -131_072, max: 22 }, "-131072 to 22"),
    ("max-alloc", Number::Size { unit: b'B', min: MIB, max: 16 * GIB, zero: false }, "1M to 16G, or leave it out for rsync's 1G"),
    ("max-delete", Number::Int { min: -1, max: i32::MAX as i64 }, "-1 to 2147483647"),
    ("max-size", Number::Size { unit: b'b', min: 0, max: EIB, zero: true }, "0 to 1EiB"),
    ("min-size", Number::Size { unit: b'b', min: 0, max: EIB, zero: true }, "0 to 1EiB"),
    ("modify-window", Number::Int { min: -1, max: 86_400 }, "-1 to 86400 seconds"),
    ("timeout", Number::Int { min: 0, max: 86_400 }, "0 (none) to 86400 seconds"),
    ("zl", Number::Int { min: -131_072, max: 22 }, "-131072 to 22"),
];

/// The bound of a numeric option, by its long name or its letter (`-B`, `-@`).
fn number_rule(name: &OptionName) -> Option<&'static (&'static str, Number, &'static str)> {
    let long = match name {
        OptionName::Long(n) => n.as_str(),
        OptionName::Short(b'B') => "block-size",
        OptionName::Short(b'@') => "modify-window",
        OptionName::Short(_) => return None,
    };
    NUMBERS.iter().find(|(n, _, _)| *n == long)
}

/// Why a numeric value is refused, if it is.
fn check_number(number: Number, value: &[u8]) -> Result<(), String> {
    match number {
        Number::Int { min, max } => {
            let digits = value.strip_prefix(b"-").unwrap_or(value);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0') {
                return Err("not a whole number in plain decimal (like 60)".into());
            }
            let n = std::str::from_utf8(value).ok().and_then(|v| v.parse::<i64>().ok());
            match n {
                Some(n) if (min..=max).contains(&n) => Ok(()),
                _ => Err("out of range".into()),
            }
        }
        Number::Size { unit, min, max, zero } => match parse_size(value, unit) {
            None => Err("not a size rsync reads (a decimal number, then K, M, G, T or P, then B or iB, like 100K or 1.5GiB)".into()),
            Some(0) if zero => Ok(()),
            Some(0) if min > 0 => Err("0 lifts rsync's cap".into()),
            Some(n) if (i128::from(min)..=i128::from(max)).contains(&n) => Ok(()),
            Some(_) => Err("out of range".into()),
        },
    }
}

/// rsync's `parse_size_arg`: the size `v` names in bytes (`unit` when it names
/// none), or `None` for a form rsync refuses. Unlike rsync, a value without a
/// digit (`""`, `K`, which rsync reads as 0) is refused too.
pub fn parse_size(v: &[u8], unit: u8) -> Option<i128> {
    let digits = |from: usize| v[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = digits(0);
    let mut seen = i;
    if v.get(i) == Some(&b'.') {
        let frac = digits(i + 1);
        seen += frac;
        i += 1 + frac;
    }
    if seen == 0 {
        return None;
    }
    let number: f64 = std::str::from_utf8(&v[..i]).ok()?.parse().ok()?;
    let unit = match v.get(i) {
        Some(&c) if c != b'+' && c != b'-' => {
            i += 1;
            c
        }
        _ => unit,
    };
    let reps = match unit.to_ascii_lowercase() {
        b'b' => 0,
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return None,
    };
    let mult: u64 = match v.get(i) {
        Some(b'b' | b'B') => {
            i += 1;
            1000
        }
        None | Some(b'+' | b'-') => 1024,
        Some(_) if v[i..].len() >= 2 && v[i..i + 2].eq_ignore_ascii_case(b"ib") => {
            i += 2;
            1024
        }
        Some(_) => return None,
    };
    // As rsync computes it: in floating point, then truncated (saturating here).
    let mut size = (number * mult.pow(reps) as f64) as i128;
    match (v.get(i), v.get(i + 1)) {
        (Some(b'+'), Some(b'1')) => size = size.saturating_add(1),
        (Some(b'-'), Some(b'1')) => size = size.saturating_sub(1),
        _ => return (i == v.len()).then_some(size),
    }
    (i + 2 == v.len()).then_some(size)
}

/// An option argument as the refusal shows it: with its value, which `-T DIR`
/// or `--max-alloc SIZE` has in the next argument.
fn with_value(arg: &[u8], value: &[u8]) -> Vec<u8> {
    if arg.ends_with(value) {
        arg.to_vec()
    } else {
        [arg, b" ", value].concat()
    }
}

/// A directory named by an option, to be confined once the paths are known.
struct DirOption<'a> {
    arg: &'a OsStr,
    kind: DirKind,
    value: &'a [u8],
}

/// Checks one option against the allowlist; a directory option is returned for
/// confinement.
fn check_option<'a>(inv: &'a Invocation, o: &'a ParsedOption, allowances: Allowances) -> Result<Option<DirOption<'a>>, Refusal> {
    let arg = inv.args[o.arg].as_os_str();
    let (rule, shown_name) = match &o.name {
        OptionName::Long(n) => (long_rule(n, o.known), format!("--{n}")),
        OptionName::Short(c) => (short_rule(*c, o.known), format!("-{}", char::from(*c))),
    };
    let value = o.value.as_deref();
    if let Some(v) = value {
        if v.windows(4).any(|w| w == b"!#:+") {
            return Err(Refusal::new(arg.as_encoded_bytes(), "popt's !#:+ would take the next argument into this value"));
        }
    }
    match rule {
        Rule::Refuse(why) => Err(Refusal::new(arg.as_encoded_bytes(), format!("{shown_name} {why}"))),
        Rule::Allow => match (&o.name, value) {
            (OptionName::Short(b'e'), Some(v)) if !protocol_flags(v) => Err(Refusal::new(
                arg.as_encoded_bytes(),
                "-e on a server carries only the protocol flags (like -e.iLsfxCIvu); a remote shell is never run here",
            )),
            (OptionName::Long(n), Some(v)) if n == "suffix" && v.iter().any(|&b| b == b'/' || b == b'\\') => {
                Err(Refusal::new(arg.as_encoded_bytes(), "--suffix must not hold a path separator"))
            }
            (name, Some(v)) => match number_rule(name) {
                Some(&(long, number, range)) => check_number(number, v)
                    .map(|()| None)
                    .map_err(|problem| Refusal::new(with_value(arg.as_encoded_bytes(), v), format!("{problem}; --{long} takes {range}"))),
                None => Ok(None),
            },
            (_, None) => Ok(None),
        },
        Rule::Iconv if allowances.allow_iconv => Ok(None),
        Rule::Iconv => Err(Refusal::new(
            arg.as_encoded_bytes(),
            "rsync would convert the names sent with -s after this check, which can turn other bytes into `..` or wildcards; \
             leave --iconv out, or allow it with --snap-allow-iconv in the forced command",
        )),
        Rule::Dir(kind) => Ok(value.map(|value| DirOption { arg, kind, value })),
    }
}

/// Checks a parsed invocation against the policy: the role, the option
/// allowlist, and the text and confinement of every path. With protect-args in
/// effect (the command line before its block is read) only the role and the
/// options are checked; call it again on the merged invocation from
/// [`crate::rsync_args::parse_with_protected`].
pub fn check(inv: &Invocation, policy: &Policy) -> Result<(), Refusal> {
    check_with(inv, policy, Allowances::default())
}

/// [`check`], with what the forced command allows beyond the defaults.
pub fn check_with(inv: &Invocation, policy: &Policy, allowances: Allowances) -> Result<(), Refusal> {
    let mut dirs = Vec::new();
    for o in inv.options() {
        if let Some(d) = check_option(inv, o, allowances)? {
            dirs.push(d);
        }
    }
    let writing = match inv.role {
        Role::ServerSender => false,
        Role::ServerReceiver if policy.allow_write.is_empty() => {
            return Err(Refusal::new(
                "--server",
                "without --sender this is a push, which writes here; this key may only read (no --snap-allow-write)",
            ));
        }
        Role::ServerReceiver => true,
        Role::Client { .. } | Role::Passthrough => {
            let first = inv.args.first().map_or(&b""[..], |a| a.as_encoded_bytes());
            return Err(Refusal::new(first, "not an rsync server transfer (--server [--sender] ... . PATH)"));
        }
    };
    if inv.protect_args {
        // The positionals here are ignored by rsync; the real ones come on stdin.
        return Ok(());
    }
    let cwd = std::env::current_dir().map_err(|e| Refusal::new(".", format!("cannot tell the working directory: {e}")))?;
    let positionals = inv.positional_indices();
    let Some(&first) = positionals.first() else {
        return Err(Refusal::new(
            inv.args.last().map_or(&b""[..], |a| a.as_encoded_bytes()),
            "no directory argument (the `.` rsync clients send) and no path",
        ));
    };
    for &k in positionals {
        plain_path(&inv.args[k])?;
    }
    let both: Vec<PathBuf> = policy.allow.iter().chain(&policy.allow_write).cloned().collect();
    let (write_base, dir_roots) = if writing {
        let dir = located(&inv.args[first], &cwd)?;
        let dests = &positionals[1..];
        let mut last = dir.clone();
        if dests.is_empty() {
            confine(&dir, &policy.allow_write)?;
        }
        for &k in dests {
            let dest = located(&inv.args[k], &dir)?;
            confine(&dest, &policy.allow_write)?;
            last = dest;
        }
        (last, &policy.allow_write)
    } else {
        let base = match inv.server_dir_index() {
            Some(d) => located(&inv.args[d], &cwd)?,
            None => cwd.clone(),
        };
        for (&k, arg) in inv.source_indices().iter().zip(inv.sources()) {
            let path = if Some(k) == inv.server_dir_index() { base.clone() } else { located(arg, &base)? };
            confine(&path, &policy.allow)?;
        }
        if inv.source_indices().is_empty() {
            // With no path rsync sends `.` when recursing: the directory
            // argument, or under -R (which ignores it) the working directory.
            confine(&base, &policy.allow)?;
        }
        (base, &both)
    };
    for d in dirs {
        plain_path(d.arg)?;
        path_text(d.value).map_err(|why| Refusal::new(with_value(d.arg.as_encoded_bytes(), d.value), why))?;
        let value = os_string(d.value)?;
        match d.kind {
            // Made inside each file's directory; its text was checked above.
            DirKind::Partial if Path::new(&value).is_relative() => {}
            DirKind::Partial | DirKind::Write => confine(&located(&value, &write_base)?, dir_roots)?,
            DirKind::Basis => confine(&located(&value, &write_base)?, &both)?,
        }
    }
    Ok(())
}

/// Refuses an empty path, one with wildcards, and what [`path_text`] refuses.
fn plain_path(arg: &OsStr) -> Result<(), Refusal> {
    let b = arg.as_encoded_bytes();
    if b.is_empty() {
        return Err(Refusal::new(b, "an empty path"));
    }
    if b.iter().any(|c| b"*?[".contains(c)) {
        return Err(Refusal::new(b, "a path with wildcards (* ? [): rsync may expand them after this check"));
    }
    path_text(b).map_err(|why| Refusal::new(b, why))
}

/// Whether `b` separates path components for rsync here.
fn is_sep(b: u8) -> bool {
    b == b'/' || (cfg!(windows) && b == b'\\')
}

/// `path` as rsync's `clean_fname` reads it, for the checks here: runs of `/`
/// made one and `.` components dropped. `..` is kept (it is refused, never
/// resolved). An absolute path stays absolute, a trailing `/` is kept, and
/// nothing left is `.`.
pub fn normalise(path: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = path.split(|&b| is_sep(b)).filter(|c| !c.is_empty() && *c != b".").collect();
    let absolute = path.first().is_some_and(|&b| is_sep(b));
    let mut out = Vec::with_capacity(path.len() + 1);
    if absolute {
        out.push(b'/');
    }
    for (k, part) in parts.iter().enumerate() {
        if k > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if parts.is_empty() {
        if !absolute {
            out.push(b'.');
        }
    } else if path.last().is_some_and(|&b| is_sep(b)) {
        out.push(b'/');
    }
    out
}

/// Whether a component is `..`. Windows drops trailing dots and spaces from a
/// name, so there anything of only dots and spaces with two dots counts.
fn is_dot_dot(c: &[u8]) -> bool {
    if cfg!(windows) {
        c.iter().all(|&b| b == b'.' || b == b' ') && c.iter().filter(|&&b| b == b'.').count() >= 2
    } else {
        c == b".."
    }
}

/// Kernel filesystems whose paths lead elsewhere than the snapshot.
const MAGIC: [&str; 3] = ["proc", "sys", "dev"];

/// The kernel filesystem (`proc`, `sys`, `dev`) an absolute path lies under, by its text.
fn magic_dir(path: &[u8]) -> Option<&'static str> {
    let normal = normalise(path);
    if normal.first() != Some(&b'/') {
        return None;
    }
    let first = normal[1..].split(|&b| is_sep(b)).next()?;
    MAGIC.into_iter().find(|m| if cfg!(windows) { first.eq_ignore_ascii_case(m.as_bytes()) } else { first == m.as_bytes() })
}

fn magic_why(m: &str) -> String {
    format!(
        "under /{m}: /proc/PID/root, /proc/self/..., /dev/fd/N and the like lead to other processes' views of the filesystem, \
         the live tree or open files, not to the snapshot; name a path inside an allowed directory"
    )
}

const DOT_DOT: &str = "a `..` component: rsync collapses it as text (`dir/link/..` is `dir`) where the filesystem follows `link` \
                       first, so it can lead outside the allowed directories; name the path without `..`";

/// Why the text of a path is refused, read as rsync reads it: a `..`
/// component, or a place under `/proc`, `/sys` or `/dev`.
fn path_text(path: &[u8]) -> Result<(), String> {
    if path.split(|&b| is_sep(b)).any(is_dot_dot) {
        return Err(DOT_DOT.into());
    }
    match magic_dir(path) {
        Some(m) => Err(magic_why(m)),
        None => Ok(()),
    }
}

/// The text checks of a path on their own (see "Paths" in the module
/// documentation): `Ok` exactly when [`normalise`] leaves no `..` component
/// and no `/proc`, `/sys` or `/dev` at the start.
pub fn check_path_text(path: &[u8]) -> Result<(), Refusal> {
    path_text(path).map_err(|why| Refusal::new(path, why))
}

/// [`native`], refused if the result lies under `/proc`, `/sys` or `/dev`
/// (a relative `arg` taken from a `base` there).
fn located(arg: &OsStr, base: &Path) -> Result<PathBuf, Refusal> {
    let path = native(arg, base)?;
    match magic_dir(path.as_os_str().as_encoded_bytes()) {
        Some(m) => Err(Refusal::new(arg.as_encoded_bytes(), format!("read from {}: {}", base.display(), magic_why(m)))),
        None => Ok(path),
    }
}

/// The native path `arg` names, relative paths taken from `base`.
#[cfg(unix)]
fn native(arg: &OsStr, base: &Path) -> Result<PathBuf, Refusal> {
    Ok(base.join(arg))
}

/// The native path `arg` names, relative paths taken from `base`; the POSIX
/// forms of the Windows rsync ports (`/cygdrive/c/x`, `/c/x`) as drive paths.
#[cfg(windows)]
fn native(arg: &OsStr, base: &Path) -> Result<PathBuf, Refusal> {
    use crate::platform::{Platform, Volumes};
    let Some(s) = arg.to_str() else {
        return Err(Refusal::new(arg.as_encoded_bytes(), "not UTF-8"));
    };
    if Path::new(s).is_absolute() {
        return Ok(PathBuf::from(s));
    }
    if s.starts_with('/') || s.starts_with('\\') {
        return Platform.source_path(arg).ok_or_else(|| Refusal::new(s, "not a path on a drive of this machine"));
    }
    Ok(base.join(s.replace('/', "\\")))
}

/// Requires `path`, resolved with `..` and symlinks, to lie within one of
/// `roots` (taken as they are on Linux: see [`root_path`]). A relative `path` is taken from the working
/// directory. A path that does not exist is resolved by its longest existing
/// ancestor; the missing rest must not hold `..`. An existing part that cannot
/// be resolved (a dangling symlink, a loop, no permission) is refused.
pub fn confine(path: &Path, roots: &[PathBuf]) -> Result<(), Refusal> {
    let arg = path.as_os_str().as_encoded_bytes();
    if roots.is_empty() {
        return Err(Refusal::new(arg, "no directory is allowed for this (--snap-allow / --snap-allow-write)"));
    }
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| Refusal::new(arg, format!("cannot tell the working directory: {e}")))?.join(path)
    };
    #[cfg(unix)]
    if let Some((link, m)) = magic_on_the_way(&full) {
        let why = match link {
            Some(link) => format!("the symlink {} leads {}", link.display(), magic_why(m)),
            None => magic_why(m),
        };
        return Err(Refusal::new(arg, why));
    }
    let real = resolve(&full).map_err(|why| Refusal::new(arg, why))?;
    let mut resolved_roots = Vec::new();
    for r in roots.iter().filter_map(|r| root_path(r)) {
        if real.starts_with(&r) {
            return Ok(());
        }
        resolved_roots.push(r.display().to_string());
    }
    if resolved_roots.is_empty() {
        return Err(Refusal::new(arg, "none of the allowed directories exists"));
    }
    Err(Refusal::new(arg, format!("resolves to {}, outside the allowed directories ({})", real.display(), resolved_roots.join(", "))))
}

/// An allowed directory as [`confine`] compares with it. On Linux it is a
/// path [`crate::pin`] walked (or one inside a snapshot snaprsync made), with
/// no symlink in it: it is never resolved again, so nothing changed on the
/// filesystem since can redirect it. Elsewhere it is resolved here.
fn root_path(root: &Path) -> Option<PathBuf> {
    if cfg!(unix) {
        Some(root.to_path_buf())
    } else {
        root.canonicalize().ok()
    }
}

/// Whether resolving `full` (absolute), following each symlink the way the
/// kernel does, passes under `/proc`, `/sys` or `/dev`: which of the three,
/// and the last symlink followed on the way there. `canonicalize` cannot tell:
/// it reads `/proc/1/root` as `/`, while opening through it reaches another
/// view of the filesystem. A loop or a missing part ends the walk ([`resolve`]
/// reports it).
#[cfg(unix)]
fn magic_on_the_way(full: &Path) -> Option<(Option<PathBuf>, &'static str)> {
    // Components still to walk, the next one last.
    let mut todo: Vec<OsString> = Vec::new();
    let push = |todo: &mut Vec<OsString>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => todo.push(n.to_owned()),
                Component::ParentDir => todo.push("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    };
    push(&mut todo, full);
    let mut at = PathBuf::from("/");
    let mut links = 0;
    let mut via = None;
    while let Some(c) = todo.pop() {
        if c == ".." {
            // `at` holds no symlink, so its parent is the real one.
            at.pop();
            continue;
        }
        at.push(&c);
        if let Some(m) = magic_dir(at.as_os_str().as_encoded_bytes()) {
            return Some((via, m));
        }
        let meta = at.symlink_metadata().ok()?;
        if meta.file_type().is_symlink() {
            links += 1;
            let target = std::fs::read_link(&at).ok().filter(|_| links <= 40)?;
            via = Some(at.clone());
            at.pop();
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            push(&mut todo, &target);
        }
    }
    None
}

/// `full` (absolute) with every existing part resolved by the filesystem.
fn resolve(full: &Path) -> Result<PathBuf, String> {
    let mut missing: Vec<Component> = Vec::new();
    let mut cur = full;
    loop {
        if cur.symlink_metadata().is_ok() {
            let mut out = cur.canonicalize().map_err(|e| format!("cannot resolve {}: {e}", cur.display()))?;
            for c in missing.iter().rev() {
                match c {
                    Component::Normal(n) => out.push(n),
                    Component::CurDir => {}
                    _ => return Err(format!("`..` after {}, which does not exist", out.display())),
                }
            }
            return Ok(out);
        }
        match (cur.parent(), cur.components().next_back()) {
            (Some(parent), Some(last)) => {
                missing.push(last);
                cur = parent;
            }
            _ => return Err("no part of it exists".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsync_args::parse;

    fn words(cmd: &str) -> Result<Vec<String>, Refusal> {
        command_argv(cmd.as_bytes()).map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    fn argv(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn escaped_form_of_rsync_3_2_4() {
        // What rsync >= 3.2.4 sends for the source `/srv/my data/it's "q" (1)&$x;`.
        let got = words(r#"rsync --server --sender -logDtpre.iLsfxCIvu . /srv/my\ data/it\'s\ \"q\"\ \(1\)\&\$x\;"#).unwrap();
        assert_eq!(got, ["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", r#"/srv/my data/it's "q" (1)&$x;"#]);
        // Option values also get their wildcards escaped; a tab is escaped too.
        let got = words("rsync --server -logDtpre.iLsf --suffix=\\*\\[x\\] . /d/a\\\tb").unwrap();
        assert_eq!(got, ["--server", "-logDtpre.iLsf", "--suffix=*[x]", ".", "/d/a\tb"]);
        // A leading dash of a file name is sent as `./-x`; `\!`, `\#` and `\\` are literal.
        let got = words(r"rsync --server --sender -r . ./-x a\!b\#c\\d").unwrap();
        assert_eq!(got, ["--server", "--sender", "-r", ".", "./-x", r"a!b#c\d"]);
    }

    #[test]
    fn older_clients_send_words_unescaped() {
        let got = words("rsync --server --sender -vlogDtpre.iLsfxCIvu --numeric-ids . /srv/data/").unwrap();
        assert_eq!(got, ["--server", "--sender", "-vlogDtpre.iLsfxCIvu", "--numeric-ids", ".", "/srv/data/"]);
        // A name with a space becomes two words, exactly as a shell would split it.
        let got = words("rsync  --server\t--sender -r .   /srv/my data  ").unwrap();
        assert_eq!(got, ["--server", "--sender", "-r", ".", "/srv/my", "data"]);
        // `!`, `=`, `%`, `:`, `,`, `@`, `+`, `^` and `]` mean nothing to sh -c.
        let got = words("rsync --server --sender --log-format=%i --info=flist2,name1 . /a!b/c]d@e+f^g:h").unwrap();
        assert_eq!(got[5], "/a!b/c]d@e+f^g:h");
    }

    #[test]
    fn user_quoting_in_rsync_path() {
        let got = words("'/usr/local/bin/snaprsync' --server --sender -r . /srv").unwrap();
        assert_eq!(got, ["--server", "--sender", "-r", ".", "/srv"]);
        let got = words(r#""/opt/my tools/rsync" --server --sender -r . "/srv/a b"'/c d'e"#).unwrap();
        assert_eq!(got, ["--server", "--sender", "-r", ".", "/srv/a b/c de"]);
        // Inside double quotes only \$ \` \" \\ are escapes.
        let got = words(r#"rsync --server --sender -r . "a\"b\$c\`d\\e\f""#).unwrap();
        assert_eq!(got[4], r#"a"b$c`d\e\f"#);
        // Quotes protect every metacharacter; an empty quoted word is a word.
        let got = words(r#"rsync --server --sender -r . ';|&<>(){}*?[#~' "" '~x'"#).unwrap();
        assert_eq!(&got[4..], [";|&<>(){}*?[#~", "", "~x"]);
    }

    #[test]
    fn argv0_names_rsync() {
        for ok in [
            "rsync",
            "/usr/bin/rsync",
            "rsync.exe",
            r"'C:\cwrsync\bin\RSYNC.EXE'",
            "C:/cwrsync/bin/rsync.exe",
            "snaprsync",
            "/usr/local/bin/snaprsync",
            "snaprsync.exe",
        ] {
            assert!(command_argv(format!("{ok} --server --sender -r . /x").as_bytes()).is_ok(), "{ok}");
        }
        for bad in [
            "sh",
            "bash",
            "/bin/sh",
            "rsync2",
            "/usr/bin/rsyncx",
            "xrsync",
            "scp",
            "sftp-server",
            "sudo",
            "env",
            "python3",
            "rsync/",
            "true",
            "ls",
        ] {
            let r = command_argv(format!("{bad} --server --sender -r . /x").as_bytes()).unwrap_err();
            assert!(r.why.contains("not rsync") || r.why.contains("--server"), "{bad}: {r}");
        }
        let r = command_argv(b"sudo rsync --server --sender -r . /x").unwrap_err();
        assert_eq!(r.arg(), "sudo");
    }

    #[test]
    fn only_a_server_command() {
        for bad in [
            "",
            "   ",
            "rsync",
            "rsync --version",
            "rsync --daemon",
            "rsync -a /etc /tmp/x",
            "rsync --sender --server -r . /x",
            "rsync -v --server --sender . /x",
        ] {
            assert!(command_argv(bad.as_bytes()).is_err(), "{bad:?}");
        }
        for bad in [
            "rsync --server --sender --snap-config=/tmp/evil.toml . /x",
            "rsync --server --sender -r . --snap-allow=/",
            "rsync --server --snap-log-file=/x . /y",
        ] {
            let r = command_argv(bad.as_bytes()).unwrap_err();
            assert!(r.arg().starts_with("--snap-"), "{bad}: {r}");
        }
        // The README's --rsync-path for an unrestricted client, sent to a restricted key.
        let r = command_argv(b"/usr/bin/snaprsync --snap-config=/etc/snaprsync.toml --server --sender -logDtpre.iLsfxCIvu . /srv/")
            .unwrap_err();
        assert_eq!(r.arg(), "--snap-config=/etc/snaprsync.toml");
        assert!(r.why.contains("forced command") && r.why.contains("--rsync-path"), "{r}");
    }

    #[test]
    fn shell_syntax_is_refused() {
        let base = "rsync --server --sender -r . ";
        for tail in [
            "/x; rm -rf /",
            "/x;id",
            "/x && id",
            "/x & id",
            "/x | nc h 1",
            "/x || id",
            "/x > /etc/passwd",
            "/x < /etc/shadow",
            "/x >> f",
            "$(id)",
            "/x$HOME",
            "${HOME}",
            "`id`",
            "(id)",
            "{a,b}",
            "/x #c",
            "/*",
            "/x?",
            "/x[ab]",
            "~/x",
            "~root",
            "'/x",
            "\"/x",
            "/x\\",
            "\"$HOME\"",
            "\"`id`\"",
            "\"$(id)\"",
        ] {
            let r = command_argv(format!("{base}{tail}").as_bytes()).unwrap_err();
            assert!(r.why.starts_with("shell syntax"), "{tail}: {r}");
            assert!(!r.to_string().contains('\n'));
        }
        // Escaped or quoted, the same bytes are plain names.
        for (tail, want) in
            [("/x\\;id", "/x;id"), ("'/x && id'", "/x && id"), ("\\$HOME", "$HOME"), ("/a\\*", "/a*"), ("a~b", "a~b"), ("\\~x", "~x")]
        {
            assert_eq!(words(&format!("{base}{tail}")).unwrap()[4], want, "{tail}");
        }
    }

    #[test]
    fn control_bytes_and_size() {
        for bad in [
            &b"rsync --server --sender -r . /x\nid"[..],
            b"rsync --server --sender -r . /x\\\nid",
            b"rsync --server --sender -r . '/a\nb'",
            b"rsync --server --sender -r . /x\r",
            b"rsync --server\0 --sender -r . /x",
        ] {
            let r = command_argv(bad).unwrap_err();
            assert_eq!(r.arg(), ORIGINAL, "{r}");
            assert!(!r.to_string().contains('\n'));
        }
        let head = "rsync --server --sender -r .";
        let mut ok = head.to_owned();
        while ok.len() + 4001 <= MAX_COMMAND_BYTES {
            ok.push(' ');
            ok.push_str(&"a".repeat(4000));
        }
        assert!(command_argv(ok.as_bytes()).is_ok());
        let big = format!("{head} {}", "a/".repeat(MAX_COMMAND_BYTES / 2));
        assert!(command_argv(big.as_bytes()).unwrap_err().why.contains("more than the"));
        let long = format!("{head} {}", "a".repeat(MAX_WORD_LEN + 1));
        assert!(command_argv(long.as_bytes()).unwrap_err().why.contains("bytes long"));
        let many = format!("{head}{}", " a".repeat(MAX_WORDS));
        assert!(command_argv(many.as_bytes()).unwrap_err().why.contains("words"));
        // Bytes that are not UTF-8 are kept (Unix) as they are.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let got = command_argv(b"rsync --server --sender -r . /\xff\xfe").unwrap();
            assert_eq!(got[4].as_bytes(), b"/\xff\xfe");
        }
    }

    /// A tree: `allowed/{sub/file, link-in -> sub, link-out -> ../outside, dangling}`,
    /// `outside/secret`, `allowed-evil/`, `write/`.
    #[cfg(unix)]
    struct World {
        dir: tempfile::TempDir,
    }

    #[cfg(unix)]
    impl World {
        fn new() -> World {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            for sub in ["allowed/sub", "outside", "allowed-evil", "write"] {
                std::fs::create_dir_all(d.join(sub)).unwrap();
            }
            std::fs::write(d.join("allowed/sub/file"), "x").unwrap();
            std::fs::write(d.join("outside/secret"), "s").unwrap();
            std::os::unix::fs::symlink("sub", d.join("allowed/link-in")).unwrap();
            std::os::unix::fs::symlink(d.join("outside"), d.join("allowed/link-out")).unwrap();
            std::os::unix::fs::symlink("../outside/secret", d.join("allowed/sub/rel-out")).unwrap();
            std::os::unix::fs::symlink(d.join("nowhere"), d.join("allowed/dangling")).unwrap();
            std::os::unix::fs::symlink("loop", d.join("allowed/loop")).unwrap();
            World { dir }
        }

        fn p(&self, rel: &str) -> String {
            format!("{}/{rel}", self.dir.path().display())
        }

        fn policy(&self) -> Policy {
            Policy { allow: vec![self.dir.path().join("allowed")], allow_write: vec![] }
        }

        fn write_policy(&self) -> Policy {
            Policy { allow: vec![self.dir.path().join("allowed")], allow_write: vec![self.dir.path().join("write")] }
        }

        /// `args` with `@` replaced by the world's directory.
        fn argv(&self, args: &[&str]) -> Vec<OsString> {
            args.iter().map(|a| OsString::from(a.replace('@', &self.dir.path().display().to_string()))).collect()
        }

        fn check(&self, args: &[&str], policy: &Policy) -> Result<(), Refusal> {
            let inv = parse(&self.argv(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            check(&inv, policy)
        }
    }

    #[cfg(unix)]
    #[test]
    fn confine_resolves_dots_and_symlinks() {
        let w = World::new();
        let roots = w.policy().allow;
        for ok in [
            "allowed",
            "allowed/",
            "allowed/.",
            "allowed/sub/file",
            "allowed/sub/../sub/file",
            "allowed/link-in/file",
            "allowed/new",
            "allowed/new/deeper/",
            "allowed/sub/./new",
        ] {
            confine(Path::new(&w.p(ok)), &roots).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "allowed/..",
            "allowed/../outside/secret",
            "allowed/sub/../../outside",
            "allowed/link-out",
            "allowed/link-out/",
            "allowed/link-out/secret",
            "allowed/sub/rel-out",
            "allowed/dangling",
            "allowed/loop",
            "allowed/new/../../outside",
            "allowed-evil",
            "allowed-evil/x",
            "outside",
            "",
            "allowed/../outside\nx",
            "allowed/link-out/\r",
        ] {
            let r = confine(Path::new(&w.p(bad)), &roots).unwrap_err();
            assert!(!r.to_string().contains('\n'), "{bad}: {r}");
        }
        assert!(confine(Path::new("/"), &roots).is_err());
        assert!(confine(Path::new(&w.p("allowed")), &[]).is_err());
        assert!(confine(Path::new(&w.p("allowed")), &[w.dir.path().join("missing-root")]).unwrap_err().why.contains("outside"));
        // A root is taken as `crate::pin` walked it, never resolved again: a
        // name through a symlink covers nothing of where it leads.
        std::os::unix::fs::symlink(w.dir.path().join("allowed"), w.dir.path().join("alias")).unwrap();
        assert!(confine(Path::new(&w.p("allowed/sub")), &[w.dir.path().join("alias")]).is_err());
        // A relative path is taken from the working directory.
        let cwd = std::env::current_dir().unwrap();
        confine(Path::new("src"), std::slice::from_ref(&cwd)).unwrap();
        assert!(confine(Path::new("../.."), &[cwd]).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn pulls_backup_tools_send() {
        let w = World::new();
        let pol = w.policy();
        let cases: &[&[&str]] = &[
            // rsync -a
            &["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "@/allowed/"],
            // dirvish: -vrltH --delete -pgo --stats -D --numeric-ids -x
            &["--server", "--sender", "-vlHogDtprxe.iLsfxCIvu", "--numeric-ids", ".", "@/allowed/"],
            // rsnapshot: -a --delete --numeric-ids --relative --delete-excluded
            &["--server", "--sender", "-logDtprRe.iLsfxCIvu", "--numeric-ids", ".", "@/allowed/sub"],
            // -R with /./ and several sources; -z, -c, -S, -H, -A, -X, -U, -N
            &[
                "--server",
                "--sender",
                "-lHogDtpAXUNrcRxSze.iLsfxCIvu",
                "--compress-level=3",
                ".",
                "@/allowed/./sub/file",
                "@/allowed/link-in/",
            ],
            // --list-only, --info, --log-format, --no-iconv, --timeout, --bwlimit, -B
            &[
                "--server",
                "--sender",
                "-de.iLsfxCIvu",
                "--list-only",
                "--info=flist2",
                "--log-format=%i",
                "--no-iconv",
                "--timeout=60",
                "--bwlimit=100",
                "-B2048",
                ".",
                "@/allowed/",
            ],
            // -e with a sub-protocol; --no-r, --no-implied-dirs, --ignore-missing-args, --max-alloc
            &[
                "--server",
                "--sender",
                "-lre31.14iLsfxCIvu",
                "--no-r",
                "--no-implied-dirs",
                "--ignore-missing-args",
                "--max-alloc=1G",
                "--checksum-choice=xxh128",
                ".",
                "@/allowed",
            ],
            // the directory argument as the base, and as the source itself
            &["--server", "--sender", "-r", "@/allowed", "sub/file"],
            &["--server", "--sender", "-r", "@/allowed"],
            &["--server", "--sender", "-r", "@/allowed/link-in", "."],
            // delete options do nothing on a sending side
            &["--server", "--sender", "-r", "--delete-excluded", "--delete", ".", "@/allowed/"],
        ];
        for c in cases {
            w.check(c, &pol).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        }
    }

    #[cfg(unix)]
    #[test]
    fn paths_out_of_bounds() {
        let w = World::new();
        let pol = w.policy();
        let cases: &[&[&str]] = &[
            &["--server", "--sender", "-r", ".", "@/outside"],
            &["--server", "--sender", "-r", ".", "@/allowed/../outside/secret"],
            &["--server", "--sender", "-r", ".", "@/allowed/link-out/"],
            &["--server", "--sender", "-r", ".", "@/allowed/link-out"],
            &["--server", "--sender", "-r", ".", "@/allowed/sub/rel-out"],
            &["--server", "--sender", "-r", ".", "@/allowed/", "@/outside/"],
            &["--server", "--sender", "-r", ".", "@/allowed-evil"],
            &["--server", "--sender", "-r", "@/allowed", "../outside"],
            &["--server", "--sender", "-r", "@/outside"],
            &["--server", "--sender", "-r", "@/outside", "secret"],
            &["--server", "--sender", "-r", "@/allowed/link-out", "secret"],
            &["--server", "--sender", "-rR", ".", "@/allowed/./../outside"],
            &["--server", "--sender", "-r", ".", "@/allowed/*"],
            &["--server", "--sender", "-r", ".", "@/allowed/s?b"],
            &["--server", "--sender", "-r", ".", "@/allowed/[s]ub"],
            &["--server", "--sender", "-r", ".", ""],
            &["--server", "--sender", "-r", ".", "/"],
            &["--server", "--sender", "-r", "/"],
            &["--server", "--sender", "-r", "--", "."],
            &["--server", "--sender", "-r"],
            // -R ignores the directory argument and sends the working directory.
            &["--server", "--sender", "-rR", "@/allowed"],
            &["--server", "--sender", "-rRe.iLsf", "."],
        ];
        for c in cases {
            let r = w.check(c, &pol).unwrap_err();
            assert!(!r.to_string().contains('\n'), "{c:?}: {r}");
        }
        // `.` is the working directory, which is not allowed here.
        assert!(w.check(&["--server", "--sender", "-r", "."], &pol).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn refused_options() {
        let w = World::new();
        let pol = w.write_policy();
        let cases: &[(&[&str], &str)] = &[
            (&["--remove-source-files"], "deletes"),
            (&["--remove-sent-files"], "deletes"),
            (&["--open-noatime"], "CAP_FOWNER"),
            (&["-e", "sh -c id"], "protocol flags"),
            (&["-esh"], "protocol flags"),
            (&["-le.iLsf", "-e", "ssh"], "protocol flags"),
            (&["--rsh=ssh"], "program"),
            (&["--rsync-path=/bin/sh"], "program"),
            (&["--files-from=-", "--from0"], "symlinks"),
            (&["--files-from=/etc/passwd"], "symlinks"),
            (&["--include-from=/etc/shadow"], "local file"),
            (&["--exclude-from=-"], "local file"),
            (&["--filter=merge /etc/shadow"], "filter"),
            (&["-f", ". /etc/shadow"], "filter"),
            (&["-F"], "filter"),
            (&["--exclude=x"], "filter"),
            (&["--include=x"], "filter"),
            (&["--write-devices"], "device"),
            (&["--copy-devices"], "device"),
            (&["--daemon"], "daemon"),
            (&["--config=/etc/rsyncd.conf"], "daemon"),
            (&["--dparam=x=y"], "daemon"),
            (&["--log-file=/etc/cron.d/x"], "writes"),
            (&["--log-file-format=%f"], "log-file"),
            (&["-L"], "symlinks"),
            (&["-logDtpLre.iLsf"], "symlinks"),
            (&["--copy-links"], "symlinks"),
            (&["--copy-unsafe-links"], "symlinks"),
            (&["-k"], "symlinks"),
            (&["--copy-dirlinks"], "symlinks"),
            (&["-K"], "symlinks"),
            (&["--keep-dirlinks"], "symlinks"),
            (&["--no-munge-links"], "safety"),
            (&["--write-batch=/tmp/b"], "batch"),
            (&["--only-write-batch=X"], "batch"),
            (&["--read-batch=/tmp/b"], "batch"),
            (&["-M--log-file=/x"], "passes options"),
            (&["--remote-option=--x"], "passes options"),
            (&["--password-file=/etc/shadow"], "local file"),
            (&["--early-input=/etc/shadow"], "local file"),
            (&["--copy-as=nobody"], "user"),
            (&["--version"], "transfer"),
            (&["-V"], "transfer"),
            (&["--help"], "transfer"),
            (&["--use-qsort"], "not an rsync option"),
            (&["--bogus"], "not an rsync option"),
            (&["-j"], "not an rsync option"),
            (&["--trust-sender"], "restricted mode allows only"),
            (&["--old-args"], "restricted mode allows only"),
            (&["--chmod=u+s"], "restricted mode allows only"),
            (&["--out-format=%f"], "restricted mode allows only"),
            (&["--suffix=/../../x"], "separator"),
            (&["--exclude=a!#:+"], "!#:+"),
            (&["--temp-dir=/tmp"], "outside"),
            (&["-T", "@/outside"], "outside"),
            (&["--backup-dir=@/outside"], "outside"),
            (&["--backup-dir=../outside"], "outside"),
            (&["--partial-dir=../../outside"], ".."),
            (&["--partial-dir=@/allowed-evil"], "outside"),
            (&["--link-dest=@/outside"], "outside"),
            (&["--compare-dest=/"], "outside"),
            (&["--copy-dest=@/allowed/link-out"], "outside"),
        ];
        for (opts, why) in cases {
            for head in [&["--server", "--sender", "-r"][..], &["--server", "-r"][..]] {
                let mut args = head.to_vec();
                args.extend_from_slice(opts);
                let tail = if head.len() == 3 { "@/allowed/" } else { "@/write/" };
                args.extend([".", tail]);
                let r = w.check(&args, &pol).expect_err(&format!("{args:?}"));
                assert!(r.to_string().contains(why), "{args:?}: {r}");
                assert!(!r.to_string().contains('\n'), "{args:?}: {r}");
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn pushes_need_allow_write() {
        let w = World::new();
        let push = ["--server", "-logDtpre.iLsfxCIvu", ".", "@/write/dest/"];
        let r = w.check(&push, &w.policy()).unwrap_err();
        assert!(r.why.contains("push"), "{r}");
        let pol = w.write_policy();
        w.check(&push, &pol).unwrap();
        for ok in [
            &["--server", "-logDtpre.iLsfxCIvu", "--delete", "--partial-dir=.rsync-partial", "--delay-updates", ".", "@/write/"][..],
            &["--server", "-r", "--temp-dir=@/write/tmp", "--backup-dir=old", "--suffix=~", "-b", ".", "@/write/d"],
            &["--server", "-r", "--link-dest=@/allowed/sub", "--compare-dest=@/allowed", ".", "@/write/"],
            &["--server", "-r", "@/write", "new/dir"],
            &["--server", "-r", "@/write"],
        ] {
            w.check(ok, &pol).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            &["--server", "-r", ".", "@/allowed/"][..],
            &["--server", "-r", ".", "@/outside"],
            &["--server", "-r", ".", "@/write/../outside"],
            &["--server", "-r", "@/write", "../outside"],
            &["--server", "-r", "@/outside"],
            &["--server", "-r", "--temp-dir=@/allowed", ".", "@/write/"],
            // A relative basis directory with `..` (give it absolute).
            &["--server", "-r", "--compare-dest=../allowed", ".", "@/write/"],
        ] {
            assert!(w.check(bad, &pol).is_err(), "{bad:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn protected_args_go_through_the_same_checks() {
        use crate::rsync_args::parse_with_protected;
        let w = World::new();
        let pol = w.policy();
        let cmd = argv(&["--server", "--sender", "-slHogDtprce.iLsfxCIvu"]);
        let inv = parse(&cmd).unwrap();
        check(&inv, &pol).unwrap();
        // A forbidden option before the block is refused at once.
        let bad = parse(&argv(&["--server", "--sender", "-sLe.iLsf"])).unwrap();
        assert!(check(&bad, &pol).is_err());
        // A push with -s is refused before its block when nothing may be written.
        let push = parse(&argv(&["--server", "-se.iLsf"])).unwrap();
        assert!(check(&push, &pol).is_err());
        check(&push, &w.write_policy()).unwrap();
        let block = |rest: &[&str]| {
            let mut b = vec!["rsync"];
            b.extend_from_slice(rest);
            w.argv(&b)
        };
        let good = parse_with_protected(&cmd, &block(&["--numeric-ids", "--perms", ".", "@/allowed/", "@/allowed/sub"])).unwrap();
        check(&good, &pol).unwrap();
        for smuggled in [
            &["--remove-source-files", ".", "@/allowed/"][..],
            &["--copy-links", ".", "@/allowed/"],
            &["-L", ".", "@/allowed/"],
            &["--files-from=-", ".", "@/allowed/"],
            &["--log-file=/tmp/x", ".", "@/allowed/"],
            &["-e", "sh", ".", "@/allowed/"],
            &[".", "@/outside/"],
            &[".", "@/allowed/../outside"],
            &[".", "@/allowed/link-out/"],
            &[".", "@/allowed/*"],
            &["@/outside", "secret"],
            &["--server", "--daemon", ".", "@/allowed/"],
        ] {
            let merged = parse_with_protected(&cmd, &block(smuggled)).unwrap_or_else(|e| panic!("{smuggled:?}: {e}"));
            assert!(check(&merged, &pol).is_err(), "{smuggled:?}");
        }
    }

    /// Confinement without symlinks, on every platform (Windows: drive paths,
    /// `..` and a name that only shares the allowed directory's prefix).
    #[test]
    fn confine_and_check_portable() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let roots = vec![allowed.clone()];
        confine(&allowed.join("sub"), &roots).unwrap();
        confine(&allowed.join("new").join("x"), &roots).unwrap();
        for bad in [
            allowed.join("..").join("outside"),
            dir.path().join("allowed-evil"),
            dir.path().to_path_buf(),
            allowed.join("new").join("..").join(".."),
        ] {
            assert!(confine(&bad, &roots).is_err(), "{}", bad.display());
        }
        let pol = Policy { allow: roots, allow_write: vec![] };
        let pull = |p: PathBuf| {
            let args: Vec<OsString> = vec!["--server".into(), "--sender".into(), "-r".into(), ".".into(), p.into_os_string()];
            check(&parse(&args).unwrap(), &pol)
        };
        pull(allowed.join("sub")).unwrap();
        assert!(pull(allowed.join("..").join("outside")).is_err());
    }

    #[test]
    fn other_roles_are_refused() {
        let pol = Policy { allow: vec!["/".into()], allow_write: vec!["/".into()] };
        for args in [&["-a", "/etc", "/tmp/x"][..], &["--server", "--daemon"], &["--server", "--sender", "--version"], &["/etc"], &[]] {
            let inv = parse(&argv(args)).unwrap();
            assert!(check(&inv, &pol).is_err(), "{args:?}");
        }
    }

    #[test]
    fn allowlist_names_are_rsync_options() {
        assert!(LONG_RULES.windows(2).all(|w| w[0].0 < w[1].0), "LONG_RULES must be sorted");
        for name in LONG_RULES.iter().map(|r| r.0).chain(NO_REFUSED.iter().map(|r| r.0)) {
            let inv = parse(&argv(&["--server", "--sender", &format!("--{name}"), "v", ".", "/x"])).unwrap();
            let o = &inv.options()[2];
            assert_eq!(o.name, OptionName::Long(name.into()));
            assert!(o.known, "--{name} is not an rsync option");
        }
        for c in allowed_short_options() {
            let inv = parse(&argv(&["--server", "--sender", &format!("-{c}"), "v", ".", "/x"])).unwrap();
            assert!(inv.options()[2].known, "-{c}");
        }
        let longs: Vec<&str> = allowed_long_options().collect();
        for sent in [
            "server",
            "sender",
            "list-only",
            "no-r",
            "compress-level",
            "no-specials",
            "specials",
            "log-format",
            "msgs2stderr",
            "no-msgs2stderr",
            "backup-dir",
            "suffix",
            "checksum-choice",
            "new-compress",
            "old-compress",
            "compress-choice",
            "max-delete",
            "min-size",
            "max-size",
            "delete-before",
            "delete-delay",
            "delete-during",
            "delete-after",
            "delete",
            "delete-excluded",
            "force",
            "super",
            "size-only",
            "stats",
            "skip-compress",
            "max-alloc",
            "delete-missing-args",
            "ignore-missing-args",
            "modify-window",
            "checksum-seed",
            "partial-dir",
            "delay-updates",
            "partial",
            "ignore-errors",
            "safe-links",
            "numeric-ids",
            "usermap",
            "groupmap",
            "ignore-existing",
            "existing",
            "temp-dir",
            "fsync",
            "link-dest",
            "compare-dest",
            "copy-dest",
            "info",
            "debug",
            "append",
            "inplace",
            "no-W",
            "no-relative",
            "no-implied-dirs",
            "preallocate",
            "mkpath",
            "iconv",
            "timeout",
            "bwlimit",
            "from0",
        ] {
            assert!(longs.contains(&sent) || long_rule(sent, true) == Rule::Allow, "--{sent}, which rsync clients send, is not allowed");
        }
        for letter in "svqbunldmOJyWHogDtUNpEAXrcCIRxSzeB@T".chars() {
            assert!(allowed_short_options().any(|c| c == letter), "-{letter}");
        }
    }

    #[test]
    fn refusal_is_one_line_and_maps_to_status_85() {
        let r = Refusal::new(b"a\nb\x00c", "why");
        assert_eq!(r.arg(), "a\\nb\\x00c");
        let e: crate::error::Error = r.into();
        assert_eq!(e.exit_code(), crate::error::status::REFUSED);
        assert_eq!(e.to_string(), "refused: a\\nb\\x00c: why");
        assert!(Refusal::new("x".repeat(1000), "w").arg().len() < 210);
        assert_eq!(Refusal::new("a", "resolves to /x\ny\r").why, "resolves to /x\\ny\\r");
    }

    #[test]
    fn normalise_collapses_slashes_and_dots_as_rsync_does() {
        for (path, want) in [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("/srv/./x", "/srv/x"),
            ("a/", "a/"),
            ("a/.", "a"),
            ("./a", "a"),
            ("a/../b", "a/../b"),
            ("//proc", "/proc"),
            ("/.//./proc/", "/proc/"),
            ("...", "..."),
        ] {
            assert_eq!(String::from_utf8(normalise(path.as_bytes())).unwrap(), want, "{path:?}");
        }
    }

    #[test]
    fn path_text_refuses_dot_dot_and_kernel_filesystems() {
        for (bad, says) in [
            ("..", "`..`"),
            ("a/..", "`..`"),
            ("../a", "`..`"),
            ("a/../b", "`..`"),
            ("/srv/./../x", "`..`"),
            ("a//..//b", "`..`"),
            ("/srv/a/../..", "outside"),
            ("/proc", "/proc"),
            ("/proc/", "/proc"),
            ("/proc/self/root/srv", "/proc"),
            ("/proc/1/root/srv/data", "/proc"),
            ("//proc/1/root", "/proc"),
            ("/./proc/self/cwd", "/proc"),
            ("/sys/kernel", "/sys"),
            ("/dev", "/dev"),
            ("/dev/fd/0", "/dev"),
            ("/dev/stdin", "/dev"),
            ("///dev//./fd/3", "/dev"),
        ] {
            let r = check_path_text(bad.as_bytes()).unwrap_err();
            assert!(r.why.contains(says), "{bad}: {r}");
            assert!(r.why.contains("name"), "the refusal says what to do instead: {r}");
        }
        for ok in [
            "/process",
            "/srv/proc",
            "/srv/dev/fd",
            "/devices",
            "proc/self",
            "..a",
            "a..",
            ".hidden",
            "/srv/./x",
            "/srv/my data/it's \"q\" (1)&$x;",
            "ünïcödé/naïve €.txt",
            "a\nb",
        ] {
            check_path_text(ok.as_bytes()).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        // Windows reads `\` as a separator and `...` as `..`; elsewhere they are names.
        for name in ["...", "a/.../b", "a\\..", ". ."] {
            assert_eq!(check_path_text(name.as_bytes()).is_ok(), cfg!(unix), "{name:?}");
        }
    }

    #[test]
    fn parse_size_reads_rsync_forms() {
        for (v, unit, want) in [
            ("0", b'b', 0),
            ("100", b'b', 100),
            ("100", b'K', 102_400),
            ("1k", b'b', 1024),
            ("1K", b'b', 1024),
            ("1KB", b'b', 1000),
            ("1kb", b'b', 1000),
            ("1KiB", b'b', 1024),
            ("1kIb", b'b', 1024),
            ("1.5M", b'b', 1_572_864),
            ("1.5MB", b'b', 1_500_000),
            (".5K", b'b', 512),
            ("2.", b'b', 2),
            ("1G", b'B', 1 << 30),
            ("1T", b'b', 1 << 40),
            ("1P", b'b', 1 << 50),
            ("1G+1", b'b', (1 << 30) + 1),
            ("1K-1", b'b', 1023),
            ("10b", b'K', 10),
            ("10+1", b'b', 11),
            ("0-1", b'b', -1),
        ] {
            assert_eq!(parse_size(v.as_bytes(), unit), Some(want), "{v} ({})", char::from(unit));
        }
        for bad in ["", "K", ".", "-1", "+1", "1E", "1e9", "0x10", "1,5G", "1 G", " 1", "1G+2", "1G+", "1Gi", "1GiBx", "1KBB", "1.2.3"] {
            assert_eq!(parse_size(bad.as_bytes(), b'b'), None, "{bad:?}");
        }
        assert!(parse_size(format!("{}P", "9".repeat(40)).as_bytes(), b'b').unwrap() > i128::from(u64::MAX));
        // Saturated, then +1: no overflow.
        assert_eq!(parse_size(format!("{}+1", "8".repeat(40)).as_bytes(), b'P'), Some(i128::MAX));
    }

    #[test]
    fn numeric_bounds_cover_allowed_options_only() {
        for (name, _, _) in NUMBERS {
            assert_eq!(long_rule(name, true), Rule::Allow, "--{name}");
        }
        for refused in ["contimeout", "compress-threads", "zt"] {
            assert!(matches!(long_rule(refused, true), Rule::Refuse(_)), "--{refused} is bounded only while refused");
        }
    }

    #[cfg(unix)]
    #[test]
    fn numeric_values_are_bounded() {
        let w = World::new();
        let pol = w.policy();
        let run = |opt: &str| {
            let mut args = w.argv(&["--server", "--sender", "-r"]);
            args.push(opt.into());
            args.extend(w.argv(&[".", "@/allowed/"]));
            check(&parse(&args).unwrap(), &pol)
        };
        for ok in [
            "--max-alloc=1G",
            "--max-alloc=1M",
            "--max-alloc=1048576",
            "--max-alloc=16G",
            "--max-alloc=16GiB",
            "--max-alloc=1.5GiB",
            "--max-alloc=2000MB",
            "--max-alloc=4g",
            "--bwlimit=0",
            "--bwlimit=100",
            "--bwlimit=1.5M",
            "--bwlimit=512b",
            "--bwlimit=10MB",
            "--bwlimit=1T",
            "--max-size=0",
            "--max-size=100M",
            "--max-size=1.5gb",
            "--max-size=1G+1",
            "--min-size=1k-1",
            "--min-size=1",
            "-B2048",
            "-B0",
            "-B131072",
            "--block-size=128K",
            "--block-size=8KiB",
            "--timeout=0",
            "--timeout=600",
            "--timeout=86400",
            "--compress-level=0",
            "--compress-level=9",
            "--compress-level=-1",
            "--compress-level=-131072",
            "--zl=22",
            "--modify-window=2",
            "--modify-window=-1",
            "-@-1",
            "-@2",
            "-@=2",
            "--checksum-seed=32761",
            "--checksum-seed=-5",
            "--checksum-seed=2147483647",
            "--max-delete=0",
            "--max-delete=100",
            "--max-delete=-1",
        ] {
            run(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, says) in [
            ("--max-alloc=0", "lifts rsync's cap"),
            ("--max-alloc=0M", "lifts rsync's cap"),
            ("--max-alloc=0.0G", "lifts rsync's cap"),
            ("--max-alloc=1K", "out of range"),
            ("--max-alloc=1M-1", "out of range"),
            ("--max-alloc=17G", "out of range"),
            ("--max-alloc=16G+1", "out of range"),
            ("--max-alloc=99999999999999999999999999999P", "out of range"),
            ("--max-alloc=1E", "not a size"),
            ("--max-alloc=", "not a size"),
            ("--max-alloc=G", "not a size"),
            ("--max-alloc=-1", "not a size"),
            ("--max-alloc=1e9", "not a size"),
            ("--max-alloc=0x100000", "not a size"),
            ("--max-alloc=1G+2", "not a size"),
            ("--max-alloc=1 G", "not a size"),
            ("--max-alloc=1,5G", "not a size"),
            ("--bwlimit=-1", "not a size"),
            ("--bwlimit=2T", "out of range"),
            ("--bwlimit=100b", "out of range"),
            ("--max-size=2EB", "not a size"),
            ("--max-size=2048P", "out of range"),
            ("--min-size=0-1", "out of range"),
            ("-B131073", "out of range"),
            ("--block-size=1M", "out of range"),
            ("--timeout=-1", "out of range"),
            ("--timeout=86401", "out of range"),
            ("--timeout=99999999999999999999", "out of range"),
            ("--timeout=010", "plain decimal"),
            ("--timeout=0x10", "plain decimal"),
            ("--timeout=+5", "plain decimal"),
            ("--timeout= 5", "plain decimal"),
            ("--timeout=", "plain decimal"),
            ("--timeout=1.5", "plain decimal"),
            ("--timeout=-", "plain decimal"),
            ("--compress-level=23", "out of range"),
            ("--zl=-131073", "out of range"),
            ("--modify-window=-2", "out of range"),
            ("-@-2", "out of range"),
            ("--checksum-seed=2147483648", "out of range"),
            ("--max-delete=-2", "out of range"),
        ] {
            let r = run(bad).unwrap_err();
            assert!(r.why.contains(says) && r.why.contains(" takes "), "{bad}: {r}");
            assert!(!r.to_string().contains('\n'));
        }
        // The value in the next argument is read the same way.
        let mut args = w.argv(&["--server", "--sender", "-r", "--max-alloc", "0", ".", "@/allowed/"]);
        let r = check(&parse(&args).unwrap(), &pol).unwrap_err();
        assert!(r.arg() == "--max-alloc 0" && r.why.contains("lifts"), "{r}");
        args[4] = "1G".into();
        check(&parse(&args).unwrap(), &pol).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn iconv_is_refused_unless_allowed() {
        use crate::rsync_args::parse_with_protected;
        let w = World::new();
        let pol = w.policy();
        let iconv = Allowances { allow_iconv: true };
        for opts in
            [&["--iconv=UTF-8"][..], &["--iconv=ASCII//TRANSLIT"], &["--iconv=UTF-8,ASCII//IGNORE"], &["--iconv", "UTF-8"], &["--iconv=-"]]
        {
            let mut args = vec!["--server", "--sender", "-r"];
            args.extend_from_slice(opts);
            args.extend([".", "@/allowed/"]);
            let r = w.check(&args, &pol).unwrap_err();
            assert!(r.arg().starts_with("--iconv") && r.why.contains("--snap-allow-iconv"), "{opts:?}: {r}");
            check_with(&parse(&w.argv(&args)).unwrap(), &pol, iconv).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        }
        w.check(&["--server", "--sender", "-r", "--no-iconv", ".", "@/allowed/"], &pol).unwrap();
        // With -s: on the command line (refused before the block is read), and in the block.
        let cmd = argv(&["--server", "--sender", "-se.iLsfxCIvu", "--iconv=ASCII//TRANSLIT"]);
        assert!(check(&parse(&cmd).unwrap(), &pol).unwrap_err().why.contains("iconv"));
        check_with(&parse(&cmd).unwrap(), &pol, iconv).unwrap();
        let cmd = argv(&["--server", "--sender", "-se.iLsfxCIvu"]);
        let block = w.argv(&["rsync", "-r", "--iconv=ASCII//TRANSLIT", ".", "@/allowed/\u{2025}/x"]);
        let merged = parse_with_protected(&cmd, &block).unwrap();
        assert!(check(&merged, &pol).unwrap_err().why.contains("iconv"));
    }

    #[cfg(unix)]
    #[test]
    fn dot_dot_is_refused_even_where_it_resolves_inside() {
        use crate::rsync_args::parse_with_protected;
        let w = World::new();
        let pol = w.write_policy();
        // `deep` leads two levels down: the filesystem reads deep/../.. as
        // `allowed/sub`, rsync (which collapses `..` as text) as the parent of `allowed`.
        std::fs::create_dir_all(w.dir.path().join("allowed/sub/x/y")).unwrap();
        std::os::unix::fs::symlink(w.dir.path().join("allowed/sub/x/y"), w.dir.path().join("allowed/deep")).unwrap();
        let climb = w.p("allowed/deep/../../outside/secret");
        confine(Path::new(&climb), &pol.allow).expect("physically inside: why `..` must be refused as text");
        let cases: &[&[&str]] = &[
            &["--server", "--sender", "-r", ".", "@/allowed/deep/../../outside/secret"],
            &["--server", "--sender", "-r", "@/allowed", "deep/../../outside"],
            &["--server", "--sender", "-r", "@/allowed/deep/../..", "outside"],
            &["--server", "--sender", "-rR", ".", "@/allowed/./deep/../.."],
            &["--server", "--sender", "-r", ".", "@/allowed/sub/.."],
            &["--server", "--sender", "-r", "--partial-dir=../x", ".", "@/allowed/"],
            &["--server", "-r", ".", "@/write/../write/x"],
            &["--server", "-r", "--temp-dir=@/write/../write", ".", "@/write/"],
            &["--server", "-r", "--link-dest=../allowed", ".", "@/write/"],
            &["--server", "-r", "-T", "@/write/..", ".", "@/write/"],
        ];
        for c in cases {
            let r = w.check(c, &pol).unwrap_err();
            assert!(r.why.contains("`..`") && r.why.contains("outside"), "{c:?}: {r}");
        }
        let r = w.check(&["--server", "-r", "-T", "@/write/..", ".", "@/write/"], &pol).unwrap_err();
        assert!(r.arg().starts_with("-T ") && r.arg().ends_with("/write/.."), "{r}");
        // In a -s block, as the attack sends it.
        let cmd = argv(&["--server", "--sender", "-se.iLsfxCIvu"]);
        let block = w.argv(&["rsync", "-r", ".", "@/allowed/deep/../../outside/secret"]);
        let merged = parse_with_protected(&cmd, &block).unwrap();
        assert!(check(&merged, &pol).unwrap_err().why.contains("`..`"));
    }

    #[cfg(unix)]
    #[test]
    fn kernel_filesystems_are_refused() {
        use crate::rsync_args::parse_with_protected;
        let w = World::new();
        let pol = w.write_policy();
        let inside = w.p("allowed/sub/file");
        let cases: Vec<Vec<String>> = vec![
            vec![".".into(), format!("/proc/self/root{inside}")],
            vec![".".into(), format!("/proc/1/root{inside}")],
            vec![".".into(), format!("//proc/./1/root{inside}")],
            vec![".".into(), "/dev/fd/0".into()],
            vec![".".into(), "/dev/stdin".into()],
            vec![".".into(), "/sys/kernel".into()],
            vec!["/proc".into(), format!("self/root{inside}")],
            vec!["/".into(), format!("proc/self/root{inside}")],
            vec!["/".into(), "dev/fd/0".into()],
        ];
        for c in &cases {
            let mut args = vec!["--server".to_owned(), "--sender".into(), "-r".into()];
            args.extend(c.iter().cloned());
            let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
            let r = check(&parse(&args).unwrap(), &pol).unwrap_err();
            assert!(["/proc", "/dev", "/sys"].iter().any(|m| r.why.contains(m)), "{c:?}: {r}");
        }
        for opt in ["--temp-dir=/dev/shm", "--link-dest=/proc/self/root/srv", "--backup-dir=/sys/x"] {
            let r = w.check(&["--server", "-r", opt, ".", "@/write/"], &pol).unwrap_err();
            assert!(r.why.contains("under /"), "{opt}: {r}");
        }
        // A symlink in the tree that leads there: canonicalize would read
        // /proc/self/root as `/` and pass it.
        std::os::unix::fs::symlink("/proc/self/root", w.dir.path().join("allowed/root-link")).unwrap();
        std::os::unix::fs::symlink("/dev/stdin", w.dir.path().join("allowed/sub/stdin")).unwrap();
        for (path, link, under) in [
            (format!("@/allowed/root-link{inside}"), "allowed/root-link", "/proc"),
            ("@/allowed/sub/stdin".into(), "allowed/sub/stdin", "/dev"),
            ("@/allowed/link-in/stdin".into(), "allowed/sub/stdin", "/dev"),
        ] {
            let r = w.check(&["--server", "--sender", "-r", ".", &path], &pol).unwrap_err();
            assert!(r.why.starts_with(&format!("the symlink {} leads under {under}:", w.p(link))), "{path}: {r}");
        }
        // In a -s block.
        let cmd = argv(&["--server", "--sender", "-se.iLsfxCIvu"]);
        let block = argv(&["rsync", "-r", ".", &format!("/proc/self/root{inside}")]);
        let merged = parse_with_protected(&cmd, &block).unwrap();
        assert!(check(&merged, &pol).unwrap_err().why.contains("/proc"));
    }

    #[cfg(unix)]
    #[test]
    fn awkward_names_are_accepted() {
        use crate::rsync_args::parse_with_protected;
        let w = World::new();
        let pol = w.policy();
        let names = [
            "with space",
            "it's \"q\" (1)&$x;",
            "ünïcödé/naïve €.txt",
            "a\nb",
            "tab\there",
            "...",
            "..hidden",
            "x..",
            ".hidden",
            "sub//file",
            "sub/./file",
            "./sub/file",
            "sub/",
            "./-leading-dash",
            "back\\slash",
        ];
        for name in names {
            w.check(&["--server", "--sender", "-r", "@/allowed", name], &pol).unwrap_or_else(|e| panic!("{name:?}: {e}"));
            w.check(&["--server", "--sender", "-r", ".", &format!("@/allowed/{name}")], &pol).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
        for rel in ["@/allowed/./sub/file", "@/allowed/./sub/", "@//allowed//./sub", "@/allowed/sub/./file"] {
            w.check(&["--server", "--sender", "-rR", ".", rel], &pol).unwrap_or_else(|e| panic!("{rel}: {e}"));
        }
        let cmd = argv(&["--server", "--sender", "-se.iLsfxCIvu"]);
        let mut block = vec!["rsync", "-r", "."];
        let paths: Vec<String> = names.iter().map(|n| format!("@/allowed/{n}")).collect();
        block.extend(paths.iter().map(String::as_str));
        let merged = parse_with_protected(&cmd, &w.argv(&block)).unwrap();
        check(&merged, &pol).unwrap();
    }
}
