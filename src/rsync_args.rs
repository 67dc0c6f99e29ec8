//! The rsync argv model: a pure reading of an rsync command line (no I/O).
//!
//! It tells which role this rsync plays (server sender, server receiver, client,
//! or something snaprsync need not touch), which arguments are source paths, and
//! renders the argv back with chosen paths replaced and every other byte kept.
//!
//! Options are read the way rsync 3.0–3.5 reads them through popt:
//! - a short cluster `-abc` is read letter by letter; a letter that takes a value
//!   (`B e f M T @`) takes the rest of the cluster (one leading `=` dropped), or the
//!   next argument whole if nothing is left, even when that argument starts with `-`;
//! - `--name=value` or `--name value`; no abbreviations, no single-dash long names;
//! - `--` makes every later argument a positional; a bare `-` is a positional;
//! - options and positionals may be interleaved;
//! - popt's `!#:+` in an option value swallows the next argument that does not
//!   start with `-` into that value, so that argument is no positional.
//!
//! Unknown options are taken as flags without a value (rsync would reject them;
//! guessing a value for them could hide a path). Not modelled, as they depend on
//! the environment or on files: `POSIXLY_CORRECT` (options end at the first
//! positional) and popt aliases from `/etc/popt` or `~/.popt` (client side only).
//! The bundled popt of rsync 3.2.0–3.2.3 rejects a bare `-`; here it is a path.
//!
//! Roles:
//! - `--server --sender`: the first positional is the directory rsync changes into
//!   (the `.` every client sends; ignored under `-R`), the others are the sources,
//!   relative to it. With no source and `-r`/`-a`/`-d`/`--list-only`, rsync sends
//!   that directory itself, so it is then the one source (without `-R` only).
//! - `--server`: a receiver; its positionals are the directory and destination.
//! - `--server` with `-s` in effect: rsync ignores the positionals on the command
//!   line and reads its real arguments from stdin; see [`parse_with_protected`].
//! - client: a single positional (or none) lists or prints usage: `Passthrough`.
//!   Otherwise the last positional is the destination. If the first source has a
//!   host part (`host:path`, `host::module`, `rsync://host/...`, as rsync's
//!   `check_for_hostspec()` sees it) this side receives and has no sources;
//!   otherwise every source must be local and this side reads them.
//!   `--read-batch` reads no source tree: `Passthrough`.
//! - `--version`/`-V`, `--help`, and the daemon options (`--daemon`, `--config`,
//!   `--dparam`, `--detach`, `--no-detach`) anywhere among the options:
//!   `Passthrough`. `-h` alone means help to rsync; it has no path, so it is
//!   `Passthrough` like any argv without paths.
//!
//! An [`ArgError`] is always an argv that rsync itself rejects; running rsync
//! unchanged lets it say why.

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

/// Why an argv could not be read. From [`parse`], always an argv rsync rejects too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// A value-taking option is the last argument.
    #[error("option {0} needs a value")]
    MissingValue(String),
    /// A known option without a value was given one (`--delete=x`, `-v=x`).
    #[error("option {0} takes no value")]
    UnexpectedValue(String),
    /// `--sender` before any `--server`.
    #[error("--sender is only valid after --server")]
    SenderWithoutServer,
    /// `-s`/`--secluded-args` together with `--old-args`.
    #[error("--secluded-args conflicts with --old-args")]
    OldArgsConflict,
    /// A client source argument is the empty string.
    #[error("empty source argument")]
    EmptySource,
    /// The first client source is local but a later one names a host.
    #[error("source {0} is remote but the first source is local")]
    MixedSources(String),
    /// [`parse_with_protected`] on a command line that does not read its
    /// arguments from stdin (`--server` with `-s` in effect).
    #[error("the command line does not take its arguments from stdin")]
    NotProtected,
    /// The argument block from stdin is empty (it lacks even its argv[0]).
    #[error("the protected argument block is empty")]
    EmptyProtectedArgs,
    /// A legal but rare form this model does not rewrite.
    #[error("unsupported argument form: {0}")]
    Unsupported(&'static str),
}

/// One parsed rsync command line. `args` is kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub args: Vec<OsString>,
    pub role: Role,
    /// `-s`/`--protect-args`/`--secluded-args` is in effect: in server mode the
    /// remaining arguments arrive on stdin.
    pub protect_args: bool,
    /// rsync's `--relative` as it ends up: the last `-R`/`--relative`/`--no-R`/
    /// `--no-relative`, else on exactly when `--files-from` is given.
    pub relative: bool,
    /// `--files-from` is given: the names to send come from a list, relative to the
    /// one source argument (which is then the base, not part of the names).
    pub files_from: bool,
    sources: Vec<usize>,
    server_dir: Option<usize>,
    short_options: Option<usize>,
    /// Every option that turns protect-args on: (argument, byte of `s` in a cluster).
    protect_on: Vec<(usize, Option<usize>)>,
    positionals: Vec<usize>,
    terminators: Vec<usize>,
    expands: bool,
}

/// Long options that take a value: the union over rsync 3.0–3.5's `long_options[]`
/// (POPT_ARG_STRING/INT/LONG; none there has an optional value). Sorted.
const LONG_VALUE: &[&str] = &[
    "address", "backup-dir", "block-size", "bwlimit", "cc", "checksum-choice", "checksum-seed",
    "chmod", "chown", "compare-dest", "compress-choice", "compress-level", "compress-threads",
    "config", "confine-root", "contimeout", "copy-as", "copy-dest", "debug", "dparam",
    "early-input", "exclude", "exclude-from", "files-from", "filter", "groupmap", "iconv",
    "include", "include-from", "info", "link-dest", "log-file", "log-file-format",
    "log-format", "max-alloc", "max-delete", "max-size", "min-size", "modify-window",
    "only-write-batch", "out-format", "outbuf", "partial-dir", "password-file", "port",
    "protocol", "read-batch", "remote-option", "rsh", "rsync-path", "skip-compress",
    "sockopts", "stderr", "stop-after", "stop-at", "suffix", "temp-dir", "time-limit",
    "timeout", "usermap", "write-batch", "zc", "zl", "zt",
];

/// Long options that take no value (POPT_ARG_NONE/VAL/BIT_SET), same versions. Sorted.
const LONG_FLAG: &[&str] = &[
    "8-bit-output", "acls", "append", "append-verify", "archive", "atimes", "backup",
    "blocking-io", "checksum", "compress", "copy-devices", "copy-dirlinks", "copy-links",
    "copy-unsafe-links", "crtimes", "cvs-exclude", "daemon", "del", "delay-updates", "delete",
    "delete-after", "delete-before", "delete-delay", "delete-during", "delete-excluded",
    "delete-missing-args", "detach", "devices", "dirs", "drop-D", "dry-run", "executability",
    "existing", "fake-super", "force", "from0", "fsync", "fuzzy", "group", "hard-links",
    "help", "human-readable", "i-d", "i-r", "ignore-errors", "ignore-existing",
    "ignore-missing-args", "ignore-non-existing", "ignore-times", "implied-dirs",
    "inc-recursive", "inplace", "insecure-links", "ipv4", "ipv6", "itemize-changes",
    "keep-dirlinks", "links", "list-only", "mkpath", "motd", "msgs2stderr", "munge-links",
    "new-compress", "no-8", "no-8-bit-output", "no-A", "no-D", "no-H", "no-J", "no-N", "no-O",
    "no-R", "no-S", "no-U", "no-W", "no-X", "no-acls", "no-append", "no-atimes", "no-backup",
    "no-blocking-io", "no-bwlimit", "no-c", "no-checksum", "no-compress", "no-contimeout",
    "no-crtimes", "no-d", "no-delay-updates", "no-detach", "no-devices", "no-dirs",
    "no-drop-D", "no-force", "no-from0", "no-fuzzy", "no-g", "no-group", "no-h",
    "no-hard-links", "no-human-readable", "no-i", "no-i-d", "no-i-r", "no-iconv",
    "no-ignore-errors", "no-implied-dirs", "no-inc-recursive", "no-inplace",
    "no-insecure-links", "no-itemize-changes", "no-l", "no-links", "no-m", "no-mkpath",
    "no-motd", "no-msgs2stderr", "no-munge-links", "no-numeric-ids", "no-o", "no-old-args",
    "no-omit-dir-times", "no-omit-link-times", "no-one-file-system", "no-open-noatime",
    "no-owner", "no-p", "no-partial", "no-perms", "no-progress", "no-protect-args",
    "no-prune-empty-dirs", "no-r", "no-recursive", "no-relative", "no-s", "no-secluded-args",
    "no-sparse", "no-specials", "no-super", "no-t", "no-timeout", "no-times", "no-v",
    "no-verbose", "no-whole-file", "no-write-devices", "no-x", "no-xattrs", "no-y", "no-z",
    "numeric-ids", "old-args", "old-compress", "old-d", "old-dirs", "omit-dir-times",
    "omit-link-times", "one-file-system", "open-noatime", "owner", "partial", "perms",
    "preallocate", "progress", "protect-args", "prune-empty-dirs", "qsort", "quiet",
    "recursive", "relative", "remove-sent-files", "remove-source-files", "safe-links",
    "secluded-args", "sender", "server", "size-only", "sparse", "specials", "stats", "super",
    "times", "trust-sender", "update", "verbose", "version", "whole-file", "write-devices",
    "xattrs",
];

/// Short options that take a value: `-B` block-size, `-e` rsh, `-f` filter,
/// `-M` remote-option, `-T` temp-dir, `-@` modify-window.
const SHORT_VALUE: &[u8] = b"@BMTef";

/// Short options that take no value.
const SHORT_FLAG: &[u8] = b"0468ACDEFHIJKLNOPRSUVWXabcdghiklmnopqrstuvxyz";

/// What an option changes that this model cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Server,
    Sender,
    /// Help or daemon mode: rsync stops reading this argv as a transfer.
    Stop,
    Version,
    Relative(bool),
    Protect(bool),
    OldArgs(bool),
    /// rsync's `recurse`: `-a` sets 1 when unset, `-r` sets 2, `--no-r` 0.
    Recurse(u8),
    Archive,
    /// rsync's `xfer_dirs`: `-d` 2, `--old-dirs` 4, `--no-dirs` 0.
    Dirs(i8),
    ListOnly,
    FilesFrom,
    ReadBatch,
}

fn long_effect(name: &[u8]) -> Option<Effect> {
    use Effect::*;
    Some(match name {
        b"server" => Server,
        b"sender" => Sender,
        b"help" | b"daemon" | b"config" | b"dparam" | b"detach" | b"no-detach" => Stop,
        b"version" => Version,
        b"relative" => Relative(true),
        b"no-relative" | b"no-R" => Relative(false),
        b"secluded-args" | b"protect-args" => Protect(true),
        b"no-secluded-args" | b"no-protect-args" | b"no-s" => Protect(false),
        b"old-args" => OldArgs(true),
        b"no-old-args" => OldArgs(false),
        b"recursive" => Recurse(2),
        b"no-recursive" | b"no-r" => Recurse(0),
        b"archive" => Archive,
        b"dirs" => Dirs(2),
        b"old-dirs" | b"old-d" => Dirs(4),
        b"no-dirs" | b"no-d" => Dirs(0),
        b"list-only" => ListOnly,
        b"files-from" => FilesFrom,
        b"read-batch" => ReadBatch,
        _ => return None,
    })
}

fn short_effect(c: u8) -> Option<Effect> {
    use Effect::*;
    Some(match c {
        b'V' => Version,
        b'R' => Relative(true),
        b's' => Protect(true),
        b'r' => Recurse(2),
        b'a' => Archive,
        b'd' => Dirs(2),
        _ => return None,
    })
}

fn in_table(table: &[&str], name: &[u8]) -> bool {
    table.binary_search_by(|probe| probe.as_bytes().cmp(name)).is_ok()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The option state after reading an argv, as far as this model needs it.
#[derive(Debug, Default)]
struct Scan {
    positionals: Vec<usize>,
    terminators: Vec<usize>,
    protect_on: Vec<(usize, Option<usize>)>,
    first_cluster: Option<usize>,
    expands: bool,
    server: bool,
    sender: bool,
    stop: bool,
    version: bool,
    relative: Option<bool>,
    protect: bool,
    old_args: bool,
    recurse: u8,
    xfer_dirs: Option<i8>,
    list_only: bool,
    files_from: bool,
    read_batch: bool,
}

impl Scan {
    fn apply(&mut self, e: Effect, arg: usize, at: Option<usize>) -> Result<(), ArgError> {
        match e {
            Effect::Server => self.server = true,
            // rsync restarts parsing at --server, but a --sender seen before it has
            // already failed.
            Effect::Sender if !self.server => return Err(ArgError::SenderWithoutServer),
            Effect::Sender => self.sender = true,
            Effect::Stop => self.stop = true,
            Effect::Version => self.version = true,
            Effect::Relative(on) => self.relative = Some(on),
            Effect::Protect(on) => {
                self.protect = on;
                if on {
                    self.protect_on.push((arg, at));
                }
            }
            Effect::OldArgs(on) => self.old_args = on,
            Effect::Recurse(r) => self.recurse = r,
            Effect::Archive => {
                if self.recurse == 0 {
                    self.recurse = 1;
                }
            }
            Effect::Dirs(d) => self.xfer_dirs = Some(d),
            Effect::ListOnly => self.list_only = true,
            Effect::FilesFrom => self.files_from = true,
            Effect::ReadBatch => self.read_batch = true,
        }
        Ok(())
    }

    /// Whether a server sender with no path sends its directory (`main.c`).
    fn sends_dot_when_no_path(&self) -> bool {
        let recurse = if self.files_from && self.recurse == 1 { 0 } else { self.recurse };
        let dirs = match self.xfer_dirs {
            Some(d) => d > 0,
            None => self.files_from,
        };
        recurse != 0 || dirs || self.list_only
    }
}

/// popt's `!#:+`: the first later argument not starting with `-` and not yet
/// taken this way becomes part of the value instead of a positional.
fn swallow_next(args: &[OsString], swallowed: &mut [bool], from: usize) {
    for k in from..args.len() {
        if !swallowed[k] && args[k].as_encoded_bytes().first() != Some(&b'-') {
            swallowed[k] = true;
            return;
        }
    }
}

fn has_expansion(value: &[u8]) -> bool {
    value.windows(4).any(|w| w == b"!#:+")
}

/// Reads `args` as popt does with rsync's option table. `server` is the mode
/// already in force (rsync's second pass over protected arguments).
fn scan(args: &[OsString], server: bool) -> Result<Scan, ArgError> {
    let n = args.len();
    let mut swallowed = vec![false; n];
    let mut st = Scan { server, ..Scan::default() };
    let mut rest = false;
    let mut next = 0;
    while next < n {
        if swallowed[next] {
            next += 1;
            continue;
        }
        let i = next;
        next += 1;
        let a = args[i].as_encoded_bytes();
        if rest || a.first() != Some(&b'-') || a.len() == 1 {
            st.positionals.push(i);
            continue;
        }
        if a == b"--" {
            rest = true;
            st.terminators.push(i);
            continue;
        }
        if a[1] == b'-' {
            let body = &a[2..];
            let (name, attached) = match body.iter().position(|&b| b == b'=') {
                Some(p) => (&body[..p], Some(&body[p + 1..])),
                None => (body, None),
            };
            if in_table(LONG_VALUE, name) {
                let value = match attached {
                    Some(v) => v,
                    None if next < n => {
                        // Taken whole, whatever it looks like.
                        next += 1;
                        args[next - 1].as_encoded_bytes()
                    }
                    None => return Err(ArgError::MissingValue(format!("--{}", lossy(name)))),
                };
                if has_expansion(value) {
                    st.expands = true;
                    swallow_next(args, &mut swallowed, next);
                }
            } else if attached.is_some() && in_table(LONG_FLAG, name) {
                return Err(ArgError::UnexpectedValue(format!("--{}", lossy(name))));
            }
            if let Some(e) = long_effect(name) {
                st.apply(e, i, None)?;
            }
        } else {
            st.first_cluster.get_or_insert(i);
            let mut j = 1;
            while j < a.len() {
                let c = a[j];
                let at = j;
                j += 1;
                if SHORT_VALUE.contains(&c) {
                    let value = if j < a.len() {
                        &a[j + usize::from(a[j] == b'=')..]
                    } else if next < n {
                        next += 1;
                        args[next - 1].as_encoded_bytes()
                    } else {
                        return Err(ArgError::MissingValue(format!("-{}", char::from(c))));
                    };
                    if has_expansion(value) {
                        st.expands = true;
                        swallow_next(args, &mut swallowed, next);
                    }
                    break;
                }
                if j < a.len() && a[j] == b'=' && SHORT_FLAG.contains(&c) {
                    return Err(ArgError::UnexpectedValue(format!("-{}", char::from(c))));
                }
                if let Some(e) = short_effect(c) {
                    st.apply(e, i, Some(at))?;
                }
            }
        }
        if st.stop {
            break;
        }
    }
    Ok(st)
}

/// rsync's `parse_hostspec()` reduced to "is there a host part": `port_ok` is the
/// `rsync://` form, where the string may end or hit `/` inside the host part.
fn parse_hostspec(s: &[u8], port_ok: bool) -> bool {
    let mut host_start = 0;
    let mut i = 0;
    loop {
        let Some(&c) = s.get(i) else { return port_ok };
        match c {
            b'/' => return port_ok,
            b':' => {
                if !port_ok {
                    return true;
                }
                i += 1;
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                return s.get(i).is_none_or(|&c| c == b'/');
            }
            b'@' => host_start = i + 1,
            b'[' => {
                if i != host_start {
                    return false;
                }
                let open = i;
                while s.get(i).is_some_and(|&c| c != b']' && c != b'/') {
                    i += 1;
                }
                let closed = s.get(i) == Some(&b']');
                let after_ok = s.get(i + 1).is_none_or(|&c| c == b'/' || c == b':');
                if !closed || !after_ok || i == open + 1 {
                    return false;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// rsync's `check_for_hostspec()`: `host:path`, `host::module/path`, `:path`,
/// `[v6]:path`, `user@host:path`, `rsync://host[:port]/path` (any case).
pub fn is_remote(arg: &OsStr) -> bool {
    const URL: &[u8] = b"rsync://";
    let s = arg.as_encoded_bytes();
    if s.len() >= URL.len() && s[..URL.len()].eq_ignore_ascii_case(URL) && parse_hostspec(&s[URL.len()..], true) {
        return true;
    }
    parse_hostspec(s, false)
}

/// Reads an rsync argv (without argv[0]).
pub fn parse(args: &[OsString]) -> Result<Invocation, ArgError> {
    let st = scan(args, false)?;
    let relative = st.relative.unwrap_or(st.files_from);
    let mut inv = Invocation {
        args: args.to_vec(),
        role: Role::Passthrough,
        protect_args: st.protect,
        relative,
        files_from: st.files_from,
        sources: Vec::new(),
        server_dir: None,
        short_options: if st.server { st.first_cluster } else { None },
        protect_on: st.protect_on.clone(),
        positionals: st.positionals.clone(),
        terminators: st.terminators.clone(),
        expands: st.expands,
    };
    if st.stop || st.version {
        return Ok(inv);
    }
    if st.old_args && st.protect {
        return Err(ArgError::OldArgsConflict);
    }
    if st.server {
        inv.role = if st.sender { Role::ServerSender } else { Role::ServerReceiver };
        // The real arguments come on stdin; these positionals are ignored.
        if st.protect {
            return Ok(inv);
        }
        if let Some((&dir, paths)) = st.positionals.split_first() {
            let chdir = !(st.sender && relative);
            if chdir {
                inv.server_dir = Some(dir);
            }
            if st.sender {
                if !paths.is_empty() {
                    inv.sources = paths.to_vec();
                } else if chdir && st.sends_dot_when_no_path() {
                    inv.sources = vec![dir];
                }
            }
        }
        return Ok(inv);
    }
    if st.read_batch || st.positionals.len() < 2 {
        return Ok(inv);
    }
    let sources = &st.positionals[..st.positionals.len() - 1];
    if is_remote(&args[sources[0]]) {
        inv.role = Role::Client { local_sources: false };
        return Ok(inv);
    }
    for &k in sources {
        let s = &args[k];
        if s.is_empty() {
            return Err(ArgError::EmptySource);
        }
        if is_remote(s) {
            return Err(ArgError::MixedSources(s.to_string_lossy().into_owned()));
        }
    }
    inv.role = Role::Client { local_sources: true };
    inv.sources = sources.to_vec();
    Ok(inv)
}

/// Reads a server command line with `-s` plus the argument block rsync would read
/// from stdin, and returns the invocation of the equivalent command line without
/// `-s`: its `args` is what to hand the real rsync, its sources index into that.
///
/// `from_stdin` is the block as sent (NUL-separated, up to the empty string): its
/// first element is an argv[0] (`rsync`) and is skipped, as rsync does. The result
/// is [`Invocation::render_without_protect_args`] of `cmdline` followed by the rest
/// of the block with its own protect-args options removed (rsync's second pass
/// ignores them), so the real rsync applies the same options in the same order and
/// reads the same positionals. Not reproduced: rsync glob-expands the block's
/// arguments after its `.` (and converts them with `--iconv`); the returned paths
/// are the patterns as sent.
pub fn parse_with_protected(cmdline: &[OsString], from_stdin: &[OsString]) -> Result<Invocation, ArgError> {
    let cmd = parse(cmdline)?;
    if !cmd.is_server() || !cmd.protect_args {
        return Err(ArgError::NotProtected);
    }
    if cmd.expands {
        return Err(ArgError::Unsupported("popt's !#:+ in a protected command line"));
    }
    let Some((_argv0, block)) = from_stdin.split_first() else {
        return Err(ArgError::EmptyProtectedArgs);
    };
    let block_scan = scan(block, true)?;
    let block = strip_protect(block, &block_scan.protect_on, &[])?;
    let combined = cmd.render_without_protect_args(&block)?;
    parse(&combined)
}

/// `args` without the options in `protect_on` and without the arguments in `drop`.
fn strip_protect(
    args: &[OsString],
    protect_on: &[(usize, Option<usize>)],
    drop: &[usize],
) -> Result<Vec<OsString>, ArgError> {
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        if drop.contains(&i) || protect_on.contains(&(i, None)) {
            continue;
        }
        let letters: Vec<usize> = protect_on.iter().filter(|p| p.0 == i).filter_map(|p| p.1).collect();
        if letters.is_empty() {
            out.push(a.clone());
            continue;
        }
        let kept = remove_ascii_at(a, &letters)?;
        let b = kept.as_encoded_bytes();
        if b == b"-" {
            continue; // the cluster was only `s` letters
        }
        if b.starts_with(b"--") {
            return Err(ArgError::Unsupported("a short-option cluster with a `-` letter"));
        }
        out.push(kept);
    }
    Ok(out)
}

/// `a` without the ASCII bytes at `at` (all before any non-option byte).
#[cfg(unix)]
fn remove_ascii_at(a: &OsStr, at: &[usize]) -> Result<OsString, ArgError> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let kept = a.as_bytes().iter().enumerate().filter(|(k, _)| !at.contains(k)).map(|(_, &b)| b).collect();
    Ok(OsString::from_vec(kept))
}

/// `a` without the ASCII bytes at `at`; the bytes before them must be ASCII so that
/// byte and UTF-16 positions agree.
#[cfg(windows)]
fn remove_ascii_at(a: &OsStr, at: &[usize]) -> Result<OsString, ArgError> {
    use std::os::windows::ffi::{OsStrExt, OsStringExt};
    let last = at.iter().copied().max().unwrap_or(0);
    if !a.as_encoded_bytes()[..=last].is_ascii() {
        return Err(ArgError::Unsupported("a non-ASCII short-option cluster"));
    }
    let kept: Vec<u16> = a.encode_wide().enumerate().filter(|(k, _)| !at.contains(k)).map(|(_, w)| w).collect();
    Ok(OsString::from_wide(&kept))
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

    fn is_server(&self) -> bool {
        matches!(self.role, Role::ServerSender | Role::ServerReceiver)
    }

    /// Server mode only: the index of the first short-option cluster, which is
    /// where rsync clients put their compact options (`-logDtpre.iLsfxCIvu`).
    pub fn server_short_options(&self) -> Option<usize> {
        self.short_options
    }

    /// Server mode only: the index of the directory rsync changes into before
    /// reading the sources (the first positional, normally `.`); relative sources
    /// are relative to it. `None` for a sender under `-R`, which reads them relative
    /// to its working directory, and when the positionals came on stdin.
    pub fn server_dir_index(&self) -> Option<usize> {
        self.server_dir
    }

    /// `args` with every option that turns protect-args on removed (each `s` letter
    /// of a short cluster, a cluster left empty, `--protect-args`,
    /// `--secluded-args`), then `extra` appended. For a server with protect-args in
    /// effect the positionals and `--` are dropped too, since rsync ignores them in
    /// favour of the arguments on stdin. Everything else is kept byte for byte.
    pub fn render_without_protect_args(&self, extra: &[OsString]) -> Result<Vec<OsString>, ArgError> {
        let drop: Vec<usize> = if self.is_server() && self.protect_args {
            self.positionals.iter().chain(&self.terminators).copied().collect()
        } else {
            Vec::new()
        };
        let mut out = strip_protect(&self.args, &self.protect_on, &drop)?;
        out.extend(extra.iter().cloned());
        Ok(out)
    }
}
