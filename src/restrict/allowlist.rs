//! The option allowlist (see "The allowlist" in the module documentation of
//! `restrict`): what each rsync option may do on a restricted key's server.

use std::ffi::OsStr;

use super::numbers::check_number;
use super::{Allowances, Refusal};
use crate::rsync_args::{Invocation, OptionName, ParsedOption};
use crate::rsync_options::{self, Bound, DirKind, Rule, OPTIONS};

/// Restricted mode's rule for an option as it is spelled (its long name or
/// its letter), from the one option table; a name rsync lacks is refused.
pub(super) fn rule(name: &OptionName) -> Rule {
    let row = match name {
        OptionName::Long(n) => rsync_options::long(n.as_bytes()).map(|o| o.rule),
        OptionName::Short(c) => rsync_options::short(*c).map(|o| o.short_rule()),
    };
    row.unwrap_or(Rule::Refuse("not an rsync option"))
}

/// Every long option name on the allowlist, for documentation and tests.
pub fn allowed_long_options() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().filter(|o| !matches!(o.rule, Rule::Refuse(_))).filter_map(|o| o.long)
}

/// Every short option letter on the allowlist, value-taking ones (`e` for the
/// protocol flags, `B`, `@`, `T`) included.
pub fn allowed_short_options() -> impl Iterator<Item = char> {
    OPTIONS.iter().filter(|o| !matches!(o.short_rule(), Rule::Refuse(_))).filter_map(|o| o.short).map(char::from)
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

/// A numeric option's bound, by its long name or its letter (`-B`, `-@`),
/// with the long name its refusal gives.
fn bound(name: &OptionName) -> Option<(&'static str, Bound)> {
    let row = match name {
        OptionName::Long(n) => rsync_options::long(n.as_bytes()),
        OptionName::Short(c) => rsync_options::short(*c),
    }?;
    Some((row.long?, row.bound?))
}

/// Checks one option against the allowlist; a directory option is returned for
/// confinement.
pub(super) fn check_option<'a>(inv: &'a Invocation, o: &'a ParsedOption, allowances: Allowances) -> Result<Option<DirOption<'a>>, Refusal> {
    let arg = inv.args[o.arg].as_os_str();
    let shown_name = match &o.name {
        OptionName::Long(n) => format!("--{n}"),
        OptionName::Short(c) => format!("-{}", char::from(*c)),
    };
    let value = o.value.as_deref();
    if let Some(v) = value {
        if v.windows(4).any(|w| w == b"!#:+") {
            return Err(Refusal::new(arg.as_encoded_bytes(), "popt's !#:+ would take the next argument into this value"));
        }
    }
    match rule(&o.name) {
        Rule::Refuse(why) => Err(Refusal::new(arg.as_encoded_bytes(), format!("{shown_name} {why}"))),
        Rule::ProtocolFlags => match value {
            Some(v) if !protocol_flags(v) => Err(Refusal::new(
                arg.as_encoded_bytes(),
                "-e on a server carries only the protocol flags (like -e.iLsfxCIvu); a remote shell is never run here",
            )),
            _ => Ok(None),
        },
        Rule::NoSeparator => match value {
            Some(v) if v.iter().any(|&b| b == b'/' || b == b'\\') => {
                Err(Refusal::new(arg.as_encoded_bytes(), format!("{shown_name} must not hold a path separator")))
            }
            _ => Ok(None),
        },
        Rule::Allow => match (bound(&o.name), value) {
            (Some((long, b)), Some(v)) => check_number(b.number, v)
                .map(|()| None)
                .map_err(|problem| Refusal::new(with_value(arg.as_encoded_bytes(), v), format!("{problem}; --{long} takes {}", b.range))),
            _ => Ok(None),
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
    #[cfg(unix)]
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

    /// The letters taken: those rsync 3.2–3.4 clients put in a server's
    /// option cluster, `a`, and the value-taking `e B @ T`.
    #[test]
    fn allowed_letters_are_the_server_cluster() {
        let mut got: Vec<char> = allowed_short_options().collect();
        got.sort_unstable();
        let mut want: Vec<char> = "ACDEHIJNORSUWXabcdglmnopqrstuvxyzeB@T".chars().collect();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn allowlist_names_are_rsync_options() {
        for name in OPTIONS.iter().filter_map(|o| o.long) {
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
            assert!(
                longs.contains(&sent) || rule(&OptionName::Long(sent.into())) == Rule::Allow,
                "--{sent}, which rsync clients send, is not allowed"
            );
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
        let iconv = Allowances { allow_iconv: true, ..Allowances::default() };
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
