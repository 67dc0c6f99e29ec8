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

use std::path::PathBuf;

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
}

impl From<Refusal> for crate::error::Error {
    fn from(r: Refusal) -> Self {
        crate::error::Error::Refused(Refused::Argument(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
