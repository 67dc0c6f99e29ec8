//! The option allowlist (see "The allowlist" in the module documentation of
//! `restrict`): what each rsync option may do on a restricted key's server.

use std::ffi::OsStr;

use super::numbers::{check_number, number_rule};
use super::{Allowances, Refusal};
use crate::rsync_args::{Invocation, OptionName, ParsedOption};

/// What the allowlist does with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rule {
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
pub(super) enum DirKind {
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

pub(super) fn long_rule(name: &str, known: bool) -> Rule {
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

/// An option argument as the refusal shows it: with its value, which `-T DIR`
/// or `--max-alloc SIZE` has in the next argument.
pub(super) fn with_value(arg: &[u8], value: &[u8]) -> Vec<u8> {
    if arg.ends_with(value) {
        arg.to_vec()
    } else {
        [arg, b" ", value].concat()
    }
}

/// A directory named by an option, to be confined once the paths are known.
pub(super) struct DirOption<'a> {
    pub(super) arg: &'a OsStr,
    pub(super) kind: DirKind,
    pub(super) value: &'a [u8],
}

/// Checks one option against the allowlist; a directory option is returned for
/// confinement.
pub(super) fn check_option<'a>(inv: &'a Invocation, o: &'a ParsedOption, allowances: Allowances) -> Result<Option<DirOption<'a>>, Refusal> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restrict::test_support::*;
    use crate::restrict::{check, check_with};
    use crate::rsync_args::parse;

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
}
