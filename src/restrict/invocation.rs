//! The check of one parsed invocation against the policy: its role, each
//! option, and the text and confinement of every path.

use std::path::{Path, PathBuf};

use super::allowlist::{check_option, with_value};
use super::confine::{confine, located};
use super::paths::{path_text, plain_path};
use super::words::os_string;
use super::{Allowances, Policy, Refusal};
use crate::rsync_args::{Invocation, Role};
use crate::rsync_options::DirKind;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restrict::test_support::*;
    use crate::rsync_args::parse;
    #[cfg(unix)]
    use std::ffi::OsString;

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

    #[test]
    fn other_roles_are_refused() {
        let pol = Policy { allow: vec!["/".into()], allow_write: vec!["/".into()] };
        for args in [&["-a", "/etc", "/tmp/x"][..], &["--server", "--daemon"], &["--server", "--sender", "--version"], &["/etc"], &[]] {
            let inv = parse(&argv(args)).unwrap();
            assert!(check(&inv, &pol).is_err(), "{args:?}");
        }
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
