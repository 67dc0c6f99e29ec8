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
//! with `--snap-allow-write`. Every option must be allowed by its row's rule in
//! [`crate::rsync_options::OPTIONS`]: the options rsync 3.2–3.4 clients send to a server
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

mod allowlist;
mod confine;
mod invocation;
mod numbers;
mod paths;
pub mod refusal;
mod words;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::pin::Pins;

pub use allowlist::{allowed_long_options, allowed_short_options};
pub use confine::confine;
pub use invocation::{check, check_with};
pub use numbers::parse_size;
pub use paths::{check_path_text, normalise};
pub use refusal::{Refusal, Refused};
pub use words::{command_argv, shell_words, MAX_COMMAND_BYTES, MAX_WORDS, MAX_WORD_LEN};

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
    /// `--snap-allow-check`: run `snaprsync check` (a monitoring poll) for [`request`].
    pub allow_check: bool,
}

/// What a restricted key was asked to run, once [`request`] took it.
#[derive(Debug)]
pub enum Request {
    /// `snaprsync check ARGS`, which the forced command allows: the ARGS.
    Check(Vec<OsString>),
    /// rsync: its argv (without `argv[0]`) to parse and [`check_with`], the
    /// allowed directories walked once and held open, and the policy of
    /// their walked paths.
    Rsync { argv: Vec<OsString>, pins: Pins, policy: Policy },
}

/// Restricted mode's one entry for a request: `original` (the
/// `SSH_ORIGINAL_COMMAND` sshd set, if any) read without a shell, and the
/// allowed directories `allow` and `allow_write` walked once ([`crate::pin`]),
/// after a `snaprsync check` request is told apart and before the rsync
/// command is read.
pub fn request(original: Option<&OsStr>, allow: &[PathBuf], allow_write: &[PathBuf], allowances: Allowances) -> Result<Request, Refused> {
    let Some(original) = original else { return Err(Refused::NotForced) };
    let original = original.as_encoded_bytes();
    if let Some(args) = words::check_request(original) {
        if !allowances.allow_check {
            return Err(Refusal::new(
                "check",
                "this key may not run `snaprsync check`; add --snap-allow-check to its forced command in authorized_keys",
            )
            .into());
        }
        return Ok(Request::Check(args));
    }
    let pins = crate::pin::pin_all(allow, allow_write)?;
    let argv = command_argv(original)?;
    let policy = Policy { allow: pins.read_paths(), allow_write: pins.write_paths() };
    Ok(Request::Rsync { argv, pins, policy })
}

/// A forced command of `authorized_keys` as restricted mode would take it for
/// a backup key: its program, and snaprsync's options.
#[derive(Debug)]
pub struct Forced {
    pub program: PathBuf,
    pub opts: crate::cli::Options,
}

/// Why a forced command would not serve a backup key, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    pub problem: String,
    pub fix: String,
}

/// Restricted mode's one entry for `snaprsync doctor --authorized-keys-line`:
/// the forced `command` split into words as sshd's shell would (refusing
/// any other shell syntax), naming snaprsync by its full path with
/// `--snap-restrict` and directories that exist, and those walked as a use
/// of the key walks them ([`crate::pin`]). `example` is a good line, for the
/// fixes.
pub fn forced_command(command: &str, example: &str) -> Result<Forced, Unfit> {
    let unfit = |problem: String, fix: &str| Err(Unfit { problem, fix: fix.to_owned() });
    let words = match shell_words(command.as_bytes()) {
        Ok(w) => w,
        Err(e) => return unfit(format!("its command does not split into words without a shell: {e}"), "write it without shell syntax"),
    };
    let words: Vec<OsString> = words.into_iter().map(|w| OsString::from(String::from_utf8_lossy(&w).into_owned())).collect();
    let Some((program, args)) = words.split_first() else { return unfit("its command is empty".into(), example) };
    let program = PathBuf::from(program);
    if program.file_stem().is_none_or(|n| n != "snaprsync") {
        return unfit(format!("its command runs {}, not snaprsync", program.display()), &format!("write it as: {example}"));
    }
    if !program.is_absolute() || !program.is_file() {
        return unfit(
            format!("its command runs {}, which is not a file here", program.display()),
            "name snaprsync by its full path, such as /usr/bin/snaprsync",
        );
    }
    let (opts, mode) = match crate::cli::parse(args.to_vec()) {
        Ok(p) => p,
        Err(e) => return unfit(format!("snaprsync would refuse its command: {e}"), example),
    };
    if !opts.restrict || mode != crate::cli::Mode::Rsync(vec![]) {
        return unfit("its command lacks --snap-restrict: the key may run any rsync command, also writes".into(), example);
    }
    if opts.allow.is_empty() && !opts.allow_check {
        return unfit("its command has no --snap-allow=DIR: the key can read nothing".into(), example);
    }
    let missing: Vec<String> =
        opts.allow.iter().chain(&opts.allow_write).filter(|d| !d.is_dir()).map(|d| d.display().to_string()).collect();
    if !missing.is_empty() {
        return unfit(
            format!("allowed directories that do not exist here: {}", missing.join(", ")),
            "create them, or fix the --snap-allow paths",
        );
    }
    // The same walk a use of the key makes: a symlink in a path, a directory
    // above one that others can change, read and write inside each other.
    if let Err(r) = crate::pin::pin_all(&opts.allow, &opts.allow_write) {
        return unfit(format!("restricted mode would refuse it: {r}"), "fix the --snap-allow paths as the line says");
    }
    Ok(Forced { program, opts })
}

impl From<Refusal> for crate::error::Error {
    fn from(r: Refusal) -> Self {
        crate::error::Error::Refused(Refused::Argument(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one entry for a request: not forced, a `check` poll allowed or
    /// not, and an rsync command read after the allowed directories' walk.
    #[test]
    fn request_tells_check_from_rsync() {
        let none = Allowances::default();
        let check = Allowances { allow_check: true, ..none };
        let dir = tempfile::tempdir().unwrap();
        let allow = [dir.path().canonicalize().unwrap()];
        let req = |cmd: Option<&str>, a| request(cmd.map(OsStr::new), &allow, &[], a);
        assert_eq!(req(None, check).unwrap_err(), Refused::NotForced);
        let poll = Some("/usr/bin/snaprsync check --max-age=2");
        match req(poll, check).unwrap() {
            Request::Check(args) => assert_eq!(args, ["--max-age=2"]),
            other => panic!("{other:?}"),
        }
        let Refused::Argument(r) = req(poll, none).unwrap_err() else { panic!("not one argument's refusal") };
        assert!(r.why.contains("--snap-allow-check"), "{r}");
        match req(Some("rsync --server --sender -r . /x"), check).unwrap() {
            Request::Rsync { argv, policy, .. } => {
                assert_eq!(argv, ["--server", "--sender", "-r", ".", "/x"]);
                assert_eq!(policy, Policy { allow: allow.to_vec(), allow_write: vec![] });
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(req(Some("sh -c id"), check), Err(Refused::Argument(_))));
        // The allowed directories are walked before the command is read.
        let missing = [dir.path().join("no/such")];
        let r = request(Some(OsStr::new("sh -c id")), &[], &missing, check).unwrap_err();
        assert!(r.to_string().contains("none of the allowed directories exists"), "{r}");
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
}

/// What the tests of restricted mode share.
#[cfg(test)]
mod test_support {
    use super::*;
    #[cfg(unix)]
    use crate::rsync_args::parse;
    use std::ffi::OsString;

    pub fn words(cmd: &str) -> Result<Vec<String>, Refusal> {
        command_argv(cmd.as_bytes()).map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    pub fn argv(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// A tree: `allowed/{sub/file, link-in -> sub, link-out -> ../outside, dangling}`,
    /// `outside/secret`, `allowed-evil/`, `write/`.
    #[cfg(unix)]
    pub struct World {
        pub dir: tempfile::TempDir,
    }

    #[cfg(unix)]
    impl World {
        pub fn new() -> World {
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

        pub fn p(&self, rel: &str) -> String {
            format!("{}/{rel}", self.dir.path().display())
        }

        pub fn policy(&self) -> Policy {
            Policy { allow: vec![self.dir.path().join("allowed")], allow_write: vec![] }
        }

        pub fn write_policy(&self) -> Policy {
            Policy { allow: vec![self.dir.path().join("allowed")], allow_write: vec![self.dir.path().join("write")] }
        }

        /// `args` with `@` replaced by the world's directory.
        pub fn argv(&self, args: &[&str]) -> Vec<OsString> {
            args.iter().map(|a| OsString::from(a.replace('@', &self.dir.path().display().to_string()))).collect()
        }

        pub fn check(&self, args: &[&str], policy: &Policy) -> Result<(), Refusal> {
            let inv = parse(&self.argv(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            check(&inv, policy)
        }
    }
}
