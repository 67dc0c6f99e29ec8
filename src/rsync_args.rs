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
//! An [`ArgError`] from [`parse`] is always an argv that rsync itself rejects;
//! running rsync unchanged lets it say why.

use std::ffi::{OsStr, OsString};

use crate::rsync_options::{self, Effect};

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
    options: Vec<ParsedOption>,
}

/// One option as rsync reads it, in argv order (see [`Invocation::options`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOption {
    /// Index into `args` of the argument that names the option (a `-abc` cluster
    /// gives one entry per letter, all with the same index).
    pub arg: usize,
    /// The name: `Long("numeric-ids")` for `--numeric-ids`, `Short(b'v')` for `v`.
    pub name: OptionName,
    /// Whether the name is one of rsync's (3.0–3.5); unknown names are read as flags.
    pub known: bool,
    /// The value of an option that takes one (attached or the next argument), as
    /// `OsStr::as_encoded_bytes` gives it.
    pub value: Option<Vec<u8>>,
}

/// The name of a [`ParsedOption`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionName {
    /// `--name` or `--name=value`, without the dashes (lossy if not UTF-8).
    Long(String),
    /// One letter of a short-option cluster.
    Short(u8),
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
    options: Vec<ParsedOption>,
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
            let row = rsync_options::long(name);
            let mut option = ParsedOption { arg: i, name: OptionName::Long(lossy(name)), known: row.is_some(), value: None };
            if row.is_some_and(|o| o.value) {
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
                option.value = Some(value.to_vec());
            } else if attached.is_some() && row.is_some() {
                return Err(ArgError::UnexpectedValue(format!("--{}", lossy(name))));
            }
            st.options.push(option);
            if let Some(e) = row.and_then(|o| o.effect) {
                st.apply(e, i, None)?;
            }
        } else {
            st.first_cluster.get_or_insert(i);
            let mut j = 1;
            while j < a.len() {
                let c = a[j];
                let at = j;
                j += 1;
                let row = rsync_options::short(c);
                if row.is_some_and(|o| o.value) {
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
                    st.options.push(ParsedOption { arg: i, name: OptionName::Short(c), known: true, value: Some(value.to_vec()) });
                    break;
                }
                if j < a.len() && a[j] == b'=' && row.is_some() {
                    return Err(ArgError::UnexpectedValue(format!("-{}", char::from(c))));
                }
                st.options.push(ParsedOption { arg: i, name: OptionName::Short(c), known: row.is_some(), value: None });
                if let Some(e) = row.and_then(|o| o.effect) {
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
        options: st.options.clone(),
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
            // A name the client chose: one line in the message.
            return Err(ArgError::MixedSources(crate::text::shown(s.as_encoded_bytes(), 200)));
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
    // rsync's second pass still has protect-args on, so this conflicts there.
    if block_scan.old_args {
        return Err(ArgError::OldArgsConflict);
    }
    let block = strip_protect(block, &block_scan.protect_on, &[])?;
    let combined = cmd.render_without_protect_args(&block)?;
    parse(&combined)
}

/// `args` without the options in `protect_on` and without the arguments in `drop`.
fn strip_protect(args: &[OsString], protect_on: &[(usize, Option<usize>)], drop: &[usize]) -> Result<Vec<OsString>, ArgError> {
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

    /// Every option in argv order, with its value, as rsync reads them. Options
    /// after one that stops the transfer (`--daemon`, `--help`, ...) are not read.
    pub fn options(&self) -> &[ParsedOption] {
        &self.options
    }

    /// Indices into `args` of the positional arguments (for a server with
    /// protect-args in effect, the ones rsync ignores in favour of stdin).
    pub fn positional_indices(&self) -> &[usize] {
        &self.positionals
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

/// The long names or the letters of the table's options that take a value
/// (`true`) or none, for the tests.
#[cfg(test)]
fn names(value: bool) -> (Vec<&'static str>, Vec<u8>) {
    let rows = || rsync_options::OPTIONS.iter().filter(move |o| o.value == value);
    (rows().filter_map(|o| o.long).collect(), rows().filter_map(|o| o.short).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn strs(inv: &Invocation) -> Vec<String> {
        inv.sources().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn snap(s: &OsStr) -> OsString {
        let mut o = OsString::from("/snap");
        o.push(s);
        o
    }

    /// (argv, role, sources, protect_args, relative)
    type Case = (&'static [&'static str], Role, &'static [&'static str], bool, bool);

    const SS: Role = Role::ServerSender;
    const SR: Role = Role::ServerReceiver;
    const LOCAL: Role = Role::Client { local_sources: true };
    const REMOTE: Role = Role::Client { local_sources: false };
    const PASS: Role = Role::Passthrough;

    const CASES: &[Case] = &[
        (&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/src/"], SS, &["/src/"], false, false),
        (&["--server", "-logDtpre.iLsfxCIvu", ".", "/dst/"], SR, &[], false, false),
        (&["--server", "--sender", "-vlHogDtprxe.iLsfxCIvu", "--numeric-ids", ".", "/tree/"], SS, &["/tree/"], false, false),
        (&["--server", "--sender", "-logDtprRe.iLsfxCIvu", "--numeric-ids", ".", "/path/"], SS, &["/path/"], false, true),
        (&["--server", "--sender", "-slHogDtprce.iLsfxCIvu"], SS, &[], true, false),
        (&["--server", "--sender", "-vlogDtprze.iLsf", ".", "/home/a", "/home/b"], SS, &["/home/a", "/home/b"], false, false),
        // `e` swallows the rest: the `s` and `R` after it are compat flags.
        (&["--server", "--sender", "-le.iLsRf", ".", "x"], SS, &["x"], false, false),
        (&["--server", "--sender", "-l", "--", ".", "--delete", "-x"], SS, &["--delete", "-x"], false, false),
        (&["--server", "--sender", "-l", ".", "-", "a"], SS, &["-", "a"], false, false),
        (&["--server", "--sender", "-r", "."], SS, &["."], false, false),
        (&["--server", "--sender", "-a", "."], SS, &["."], false, false),
        (&["--server", "--sender", "-l", "."], SS, &[], false, false),
        (&["--server", "--sender", "-rR", "."], SS, &[], false, true),
        (&["--server", "--sender", "-l", "--files-from=-", "--from0", ".", "/base"], SS, &["/base"], false, true),
        (&["--server", "--sender", "-l", "--files-from=-", "--no-R", ".", "/base"], SS, &["/base"], false, false),
        (&["--server", "--sender", "-R", "--no-relative", ".", "/x"], SS, &["/x"], false, false),
        (&["--server", "--sender", "--relative", "-l", ".", "/x"], SS, &["/x"], false, true),
        (&["--server", "--sender", "-s", "--no-protect-args", ".", "/x"], SS, &["/x"], false, false),
        (&["--server", "--sender", "--protect-args", ".", "/x"], SS, &[], true, false),
        (&["--server", "--sender", "--secluded-args", "--no-s", ".", "/x"], SS, &["/x"], false, false),
        (&["--server", "--daemon", "."], PASS, &[], false, false),
        (&["--server", "--sender", "--version", ".", "/x"], PASS, &[], false, false),
        (&["-a", "src1", "src2", "dest"], LOCAL, &["src1", "src2"], false, false),
        (&["-a", "host:/x", "/y"], REMOTE, &[], false, false),
        (&["-a", "/x", "host:/y"], LOCAL, &["/x"], false, false),
        (&["-a", "/x", "user@host::mod/y"], LOCAL, &["/x"], false, false),
        (&["-a", "rsync://host/mod/x", "/y"], REMOTE, &[], false, false),
        (&["-a", "RSYNC://host:873/mod", "/y"], REMOTE, &[], false, false),
        (&["-a", "host::mod", "/y"], REMOTE, &[], false, false),
        (&["-a", "[::1]:/x", "/y"], REMOTE, &[], false, false),
        (&["-a", "./a:b", "/y"], LOCAL, &["./a:b"], false, false),
        (&["-a", "-e", "ssh -p 22", "/x", "h:/y"], LOCAL, &["/x"], false, false),
        (&["-aessh", "/x", "h:/y"], LOCAL, &["/x"], false, false),
        (&["-a", "-T", "/tmp", "/x", "/y"], LOCAL, &["/x"], false, false),
        (&["-a", "-f- *.o", "/x", "/y"], LOCAL, &["/x"], false, false),
        (&["-a", "-f", "- *.o", "/x", "/y"], LOCAL, &["/x"], false, false),
        (&["-aR", "/x/./y", "/z"], LOCAL, &["/x/./y"], false, true),
        (&["-as", "/x", "h:/z"], LOCAL, &["/x"], true, false),
        (&["-a", "/x", "--delete", "/y"], LOCAL, &["/x"], false, false),
        (&["-a", "--", "-x", "--y", "/z"], LOCAL, &["-x", "--y"], false, false),
        (&["-a", "/only"], PASS, &[], false, false),
        (&[], PASS, &[], false, false),
        (&["-h"], PASS, &[], false, false),
        (&["-h", "/x", "/y"], LOCAL, &["/x"], false, false),
        (&["--help", "/x", "/y"], PASS, &[], false, false),
        (&["-V"], PASS, &[], false, false),
        (&["--daemon", "--config=/etc/r.conf"], PASS, &[], false, false),
        (&["--config", "/etc/r.conf", "/x", "/y"], PASS, &[], false, false),
        (&["--read-batch=b", "/y"], PASS, &[], false, false),
        (&["-a", "--exclude=!#:+", "/x", "/y", "/z"], LOCAL, &["/y"], false, false),
        (&["-a", "--unknown-opt", "/x", "/y"], LOCAL, &["/x"], false, false),
        (&["-a", "--unknown-opt=1", "/x", "/y"], LOCAL, &["/x"], false, false),
        (&["-aQ", "/x", "/y"], LOCAL, &["/x"], false, false),
        (&["-", "/y"], LOCAL, &["-"], false, false),
    ];

    #[test]
    fn table() {
        for (i, &(args, role, sources, protect, relative)) in CASES.iter().enumerate() {
            let a = argv(args);
            let inv = parse(&a).unwrap_or_else(|e| panic!("case {i} {args:?}: {e}"));
            assert_eq!(inv.role, role, "case {i} {args:?}");
            assert_eq!(strs(&inv), sources, "case {i} {args:?}");
            assert_eq!(inv.protect_args, protect, "case {i} {args:?}");
            assert_eq!(inv.relative, relative, "case {i} {args:?}");
            assert_eq!(inv.render_with_sources(|s| s.to_owned()), a, "case {i}");
            let out = inv.render_with_sources(snap);
            for (k, (x, y)) in a.iter().zip(&out).enumerate() {
                assert_eq!(x != y, inv.source_indices().contains(&k), "case {i} arg {k}");
            }
            assert_eq!(inv.reads_local_files(), !sources.is_empty(), "case {i}");
        }
    }

    #[test]
    fn errors() {
        let e = |v: &[&str]| parse(&argv(v)).unwrap_err();
        assert_eq!(e(&["-a", "/x", "-e"]), ArgError::MissingValue("-e".into()));
        assert_eq!(e(&["--server", "--sender", "-l", ".", "--exclude"]), ArgError::MissingValue("--exclude".into()));
        assert_eq!(e(&["--delete=yes", "/x", "/y"]), ArgError::UnexpectedValue("--delete".into()));
        assert_eq!(e(&["-v=1", "/x", "/y"]), ArgError::UnexpectedValue("-v".into()));
        assert_eq!(e(&["--sender", "--server", ".", "/x"]), ArgError::SenderWithoutServer);
        assert_eq!(e(&["-a", "", "/y"]), ArgError::EmptySource);
        assert_eq!(e(&["-a", "/x", "h:/z", "/y"]), ArgError::MixedSources("h:/z".into()));
        assert_eq!(e(&["-a", "/x", "h:/z\n\x1b[2K", "/y"]), ArgError::MixedSources("h:/z\\n\\x1b[2K".into()));
        assert_eq!(e(&["--server", "-s", "--old-args", "."]), ArgError::OldArgsConflict);
    }

    #[test]
    fn value_taking_long_options_never_hide_or_make_a_path() {
        for name in &names(true).0 {
            for joined in [true, false] {
                let opt = |v: &str| {
                    if joined {
                        vec![format!("--{name}={v}")]
                    } else {
                        vec![format!("--{name}"), v.to_owned()]
                    }
                };
                let stop = matches!(*name, "config" | "dparam");
                let batch = *name == "read-batch";
                let mut server = vec!["--server".to_owned(), "--sender".to_owned(), "-logDtpre.iLsf".to_owned()];
                server.extend(opt("/src/"));
                server.extend([".".to_owned(), "/real".to_owned()]);
                let inv = parse(&server.iter().map(OsString::from).collect::<Vec<_>>()).unwrap();
                if stop {
                    assert_eq!(inv.role, PASS, "{name}");
                } else {
                    assert_eq!(inv.role, SS, "{name}");
                    assert_eq!(strs(&inv), ["/real"], "{name} {joined}");
                }
                let mut client = vec!["-a".to_owned()];
                client.extend(opt("/tmp/x"));
                client.extend(["/real".to_owned(), "h:/dst".to_owned()]);
                let inv = parse(&client.iter().map(OsString::from).collect::<Vec<_>>()).unwrap();
                if stop || batch {
                    assert_eq!(inv.role, PASS, "{name}");
                } else {
                    assert_eq!(strs(&inv), ["/real"], "{name} {joined}");
                }
            }
        }
    }

    #[test]
    fn value_taking_short_options_attached_and_separate() {
        for c in names(true).1 {
            let c = char::from(c);
            for form in
                [vec![format!("-{c}/v")], vec![format!("-{c}=/v")], vec![format!("-a{c}"), "/v".into()], vec![format!("-{c}"), "-x".into()]]
            {
                let mut v = vec!["--server".to_owned(), "--sender".to_owned()];
                v.extend(form.clone());
                v.extend([".".to_owned(), "/real".to_owned()]);
                let inv = parse(&v.iter().map(OsString::from).collect::<Vec<_>>()).unwrap();
                assert_eq!(strs(&inv), ["/real"], "{form:?}");
            }
        }
    }

    #[test]
    fn every_value_less_option_keeps_paths() {
        for name in &names(false).0 {
            let v = argv(&["--server", "--sender", &format!("--{name}"), ".", "/real"]);
            let inv = parse(&v).unwrap_or_else(|e| panic!("{name}: {e}"));
            let stop = matches!(*name, "help" | "daemon" | "detach" | "no-detach" | "version");
            if stop {
                assert_eq!(inv.role, PASS, "{name}");
            } else if matches!(*name, "protect-args" | "secluded-args") {
                assert_eq!(strs(&inv), Vec::<String>::new(), "{name}");
            } else {
                assert_eq!(strs(&inv), ["/real"], "{name}");
            }
        }
        for c in names(false).1 {
            let v = argv(&["--server", "--sender", &format!("-{}", char::from(c)), ".", "/real"]);
            let inv = parse(&v).unwrap();
            let expect: &[&str] = match c {
                b'V' | b's' => &[],
                _ => &["/real"],
            };
            assert_eq!(strs(&inv), expect, "-{}", char::from(c));
        }
    }

    #[test]
    fn hostspecs() {
        let remote = [
            "h:/x",
            "h:",
            ":x",
            "u@h:x",
            "h::m",
            "[::1]:x",
            "u@[fe80::1]:x",
            "rsync://h",
            "rsync://h/m",
            "rsync://h:873/m",
            "Rsync://h/m",
            "C:/x",
            "rsync:x",
        ];
        let local = ["/x", "x", "./h:x", "a/b:c", "[::1]", "[::1]/x", "x[:y", "", "h", "u@h"];
        for r in remote {
            assert!(is_remote(OsStr::new(r)), "{r}");
        }
        for l in local {
            assert!(!is_remote(OsStr::new(l)), "{l}");
        }
    }

    #[test]
    fn server_short_options_index() {
        let inv = parse(&argv(&["--server", "--sender", "-logDtpre.iLsf", "-v", ".", "/x"])).unwrap();
        assert_eq!(inv.server_short_options(), Some(2));
        assert_eq!(inv.server_dir_index(), Some(4));
        let inv = parse(&argv(&["-a", "/x", "/y"])).unwrap();
        assert_eq!(inv.server_short_options(), None);
        let inv = parse(&argv(&["--server", "--sender", "-R", ".", "/x"])).unwrap();
        assert_eq!(inv.server_dir_index(), None);
    }

    #[test]
    fn options_as_parsed() {
        let inv = parse(&argv(&["--server", "--sender", "-lHe.iLsf", "--temp-dir", "/t", "--log-format=%i", "--bogus", "-T=x", ".", "/x"]))
            .unwrap();
        let got: Vec<(usize, OptionName, bool, Option<&[u8]>)> =
            inv.options().iter().map(|o| (o.arg, o.name.clone(), o.known, o.value.as_deref())).collect();
        let long = |n: &str| OptionName::Long(n.into());
        assert_eq!(
            got,
            [
                (0, long("server"), true, None),
                (1, long("sender"), true, None),
                (2, OptionName::Short(b'l'), true, None),
                (2, OptionName::Short(b'H'), true, None),
                (2, OptionName::Short(b'e'), true, Some(&b".iLsf"[..])),
                (3, long("temp-dir"), true, Some(&b"/t"[..])),
                (5, long("log-format"), true, Some(&b"%i"[..])),
                (6, long("bogus"), false, None),
                (7, OptionName::Short(b'T'), true, Some(&b"x"[..])),
            ]
        );
        assert_eq!(inv.positional_indices(), [8, 9]);
    }

    #[test]
    fn backuppc_protected_args() {
        let cmd = argv(&["--server", "--sender", "-slHogDtprce.iLsfxCIvu"]);
        let inv = parse(&cmd).unwrap();
        assert!(inv.protect_args && inv.sources().next().is_none());
        let stdin = argv(&["rsync", "--numeric-ids", "--perms", ".", "C/", "D/"]);
        let full = parse_with_protected(&cmd, &stdin).unwrap();
        assert_eq!(full.args, argv(&["--server", "--sender", "-lHogDtprce.iLsfxCIvu", "--numeric-ids", "--perms", ".", "C/", "D/"]));
        assert_eq!(full.role, SS);
        assert!(!full.protect_args);
        assert_eq!(strs(&full), ["C/", "D/"]);
        assert_eq!(full.server_dir_index(), Some(5));
    }

    #[test]
    fn protected_args_edge_forms() {
        // A lone `-s`, `s` again in the block, and cmdline positionals (ignored by rsync).
        let cmd = argv(&["--server", "--sender", "-s", "-le.iLsf", "--", "ignored"]);
        let stdin = argv(&["rsync", "-sR", "--secluded-args", ".", "/a/./b"]);
        let full = parse_with_protected(&cmd, &stdin).unwrap();
        assert_eq!(full.args, argv(&["--server", "--sender", "-le.iLsf", "-R", ".", "/a/./b"]));
        assert!(full.relative);
        assert_eq!(strs(&full), ["/a/./b"]);
        let plain = argv(&["--server", "--sender", "-l", ".", "/x"]);
        assert_eq!(parse_with_protected(&plain, &stdin), Err(ArgError::NotProtected));
        assert_eq!(parse_with_protected(&cmd, &[]), Err(ArgError::EmptyProtectedArgs));
        assert_eq!(parse_with_protected(&cmd, &argv(&["rsync", "--old-args", ".", "/x"])), Err(ArgError::OldArgsConflict));
        let expanding = argv(&["--server", "--sender", "-s", "--exclude=a!#:+"]);
        assert!(matches!(parse_with_protected(&expanding, &stdin), Err(ArgError::Unsupported(_))));
        let receiver = argv(&["--server", "-sle.iLsf"]);
        let full = parse_with_protected(&receiver, &argv(&["rsync", ".", "/dst"])).unwrap();
        assert_eq!(full.role, SR);
        assert_eq!(full.args, argv(&["--server", "-le.iLsf", ".", "/dst"]));
        // Without protect-args the renderer only appends.
        let inv = parse(&plain).unwrap();
        assert_eq!(inv.render_without_protect_args(&argv(&["y"])).unwrap(), argv(&["--server", "--sender", "-l", ".", "/x", "y"]));
    }

    #[cfg(unix)]
    #[test]
    fn odd_bytes_in_paths() {
        use std::os::unix::ffi::OsStringExt;
        let weird = [b"/a b/c".to_vec(), b"/new\nline".to_vec(), vec![b'/', 0xff, 0xfe, b'x'], b"/tab\there".to_vec()];
        let mut a = argv(&["--server", "--sender", "-logDtpre.iLsf", "."]);
        a.extend(weird.iter().cloned().map(OsString::from_vec));
        let inv = parse(&a).unwrap();
        let got: Vec<Vec<u8>> = inv.sources().map(|s| s.as_encoded_bytes().to_vec()).collect();
        assert_eq!(got, weird);
        assert_eq!(inv.render_with_sources(|s| s.to_owned()), a);
        // A non-UTF-8 option value is a value all the same.
        let mut c = vec![OsString::from("--exclude"), OsString::from_vec(vec![0xff, b'/'])];
        c.extend(argv(&["/x", "/y"]));
        assert_eq!(strs(&parse(&c).unwrap()), ["/x"]);
    }
}

#[cfg(all(test, unix))]
mod props {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    const COMPACT: &[&str] =
        &["-logDtpre.iLsfxCIvu", "-vlHogDtprxe.iLsfxCIvu", "-logDtprRe.iLsfxCIvu", "-vlogDtprze.iLsf", "-lHogDtprce.iLsfxCIvu"];

    /// Options that change the role or stop the transfer: not generated.
    fn neutral_long(name: &str) -> bool {
        !matches!(
            name,
            "help"
                | "daemon"
                | "detach"
                | "no-detach"
                | "version"
                | "server"
                | "sender"
                | "protect-args"
                | "secluded-args"
                | "old-args"
                | "config"
                | "dparam"
                | "read-batch"
        )
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(1u8..=255, 0..max)
    }

    /// Any option value; popt's `!#:+` would legitimately swallow a path.
    fn value() -> impl Strategy<Value = Vec<u8>> {
        bytes(12).prop_filter("no popt expansion", |v| !has_expansion(v))
    }

    /// One option, as one or two arguments.
    fn option() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let (values, short_values) = names(true);
        let (flags, short_flags) = names(false);
        let longs: Vec<&str> = values.into_iter().filter(|n| neutral_long(n)).collect();
        let flags: Vec<&str> = flags.into_iter().filter(|n| neutral_long(n)).collect();
        let shorts: Vec<u8> = short_flags.into_iter().filter(|c| !b"Vs".contains(c)).collect();
        prop_oneof![
            (prop::sample::select(longs.clone()), value()).prop_map(|(n, v)| vec![[b"--", n.as_bytes(), b"=", &v].concat()]),
            (prop::sample::select(longs), value()).prop_map(|(n, v)| vec![[b"--", n.as_bytes()].concat(), v]),
            (prop::sample::select(short_values.clone()), value().prop_filter("joined", |v| !v.is_empty())).prop_map(|(c, v)| vec![[
                &[b'-', c][..],
                &v
            ]
            .concat()]),
            (prop::sample::select(short_values.clone()), value()).prop_map(|(c, v)| vec![vec![b'-', c], v]),
            prop::sample::select(flags).prop_map(|n| vec![[b"--", n.as_bytes()].concat()]),
            prop::collection::vec(prop::sample::select(shorts), 1..5).prop_map(|l| vec![[&b"-"[..], &l].concat()]),
        ]
    }

    fn options() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(option(), 0..6).prop_map(|o| o.concat())
    }

    #[derive(Debug, Clone, Copy)]
    enum Shape {
        Sender,
        Receiver,
        Client,
    }

    /// An argv, the indices of its sources, and the role it must get.
    fn invocation() -> impl Strategy<Value = (Vec<OsString>, Vec<usize>, Role)> {
        invocation_of(prop_oneof![Just(Shape::Sender), Just(Shape::Receiver), Just(Shape::Client)])
    }

    fn invocation_of(shape: impl Strategy<Value = Shape>) -> impl Strategy<Value = (Vec<OsString>, Vec<usize>, Role)> {
        (
            shape,
            prop::sample::select(COMPACT.to_vec()),
            options(),
            options(),
            any::<bool>(),
            prop::collection::vec(bytes(24), 1..4),
            prop_oneof![Just(b"/dst".to_vec()), Just(b"host:/dst".to_vec()), bytes(10).prop_map(|b| [&b"/"[..], &b].concat())],
        )
            .prop_map(|(shape, compact, before, after, dashdash, paths, dest)| {
                let mut v: Vec<Vec<u8>> = Vec::new();
                if !matches!(shape, Shape::Client) {
                    v.push(b"--server".to_vec());
                    if matches!(shape, Shape::Sender) {
                        v.push(b"--sender".to_vec());
                    }
                    v.push(compact.as_bytes().to_vec());
                }
                v.extend(before);
                // Options may follow positionals unless `--` came first.
                let trailing = if dashdash { Vec::new() } else { after };
                if dashdash {
                    v.push(b"--".to_vec());
                }
                let mut want = Vec::new();
                let path = |p: Vec<u8>| {
                    if dashdash {
                        [&b"-/"[..], &p].concat()
                    } else {
                        [&b"/"[..], &p].concat()
                    }
                };
                let role = match shape {
                    Shape::Sender | Shape::Receiver => {
                        v.push(b".".to_vec());
                        let sender = matches!(shape, Shape::Sender);
                        for p in paths {
                            if sender {
                                want.push(v.len());
                            }
                            v.push(path(p));
                        }
                        if sender {
                            Role::ServerSender
                        } else {
                            Role::ServerReceiver
                        }
                    }
                    Shape::Client => {
                        for p in paths {
                            want.push(v.len());
                            v.push(path(p));
                        }
                        v.push(dest);
                        Role::Client { local_sources: true }
                    }
                };
                v.extend(trailing);
                (v.into_iter().map(OsString::from_vec).collect(), want, role)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn identity_render_is_byte_exact((args, want, role) in invocation()) {
            let inv = parse(&args).unwrap();
            prop_assert_eq!(inv.role, role);
            prop_assert_eq!(inv.source_indices(), &want[..]);
            prop_assert_eq!(inv.render_with_sources(|s| s.to_owned()), args);
        }

        #[test]
        fn rewrite_touches_exactly_the_sources((args, want, _role) in invocation()) {
            let inv = parse(&args).unwrap();
            let out = inv.render_with_sources(|s| {
                let mut b = b"/snap".to_vec();
                b.extend_from_slice(s.as_bytes());
                OsString::from_vec(b)
            });
            prop_assert_eq!(out.len(), args.len());
            prop_assert_eq!(inv.sources().count(), want.len());
            for (k, (a, o)) in args.iter().zip(&out).enumerate() {
                if want.contains(&k) {
                    prop_assert_eq!([&b"/snap"[..], a.as_bytes()].concat(), o.as_bytes().to_vec());
                } else {
                    prop_assert_eq!(a, o);
                }
            }
        }

        #[test]
        fn protected_block_gives_the_same_sources(
            (args, want, _role) in invocation_of(Just(Shape::Sender))
        ) {
            // Move everything after the compact string to stdin, with `s` added.
            let compact = [&b"-s"[..], &args[2].as_bytes()[1..]].concat();
            let cmd = vec![args[0].clone(), args[1].clone(), OsString::from_vec(compact)];
            let mut block = vec![OsString::from("rsync")];
            block.extend(args[3..].iter().cloned());
            let full = parse_with_protected(&cmd, &block).unwrap();
            prop_assert_eq!(&full.args, &args);
            prop_assert_eq!(full.source_indices(), &want[..]);
        }

        #[test]
        fn never_panics(args in prop::collection::vec(prop_oneof![
            bytes(8),
            prop::sample::select(vec![
                &b"--server"[..], b"--sender", b"-", b"--", b"-e", b"-s", b".", b"h:x",
                b"--exclude", b"!#:+", b"-R", b"-se", b"--old-args",
            ]).prop_map(|b| b.to_vec()),
        ], 0..10)) {
            let args: Vec<OsString> = args.into_iter().map(OsString::from_vec).collect();
            if let Ok(inv) = parse(&args) {
                prop_assert_eq!(inv.render_with_sources(|s| s.to_owned()), args.clone());
                let _ = inv.render_without_protect_args(&args);
                let _ = parse_with_protected(&args, &args);
            }
        }
    }
}
