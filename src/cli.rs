//! Splits snaprsync's own words from rsync's argv (pure).
//!
//! snaprsync's options are `--snap-*` long options placed before rsync's
//! arguments, so they fit in `--rsync-path="snaprsync --snap-config=/x.toml"`.
//! Then, a first word that is a subcommand (`list`, `help`, ...) selects an
//! admin command, or `exec` (any program on a snapshot); anything else is
//! rsync's argv, passed on untouched. To copy a local directory named like a
//! subcommand, write it as `./list`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::stamp::REMOVE_RUN;

/// Admin subcommands: the only code paths that may print to stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    /// `list [--json]`: the snapshots snaprsync made that still exist, and their owners.
    List { json: bool },
    /// `cleanup [--dry-run]`: removes what dead runs left.
    Cleanup { dry_run: bool },
    /// `help`: usage.
    Help,
    /// `version` (or `--version` alone at a terminal): snaprsync's version and the real rsync's.
    Version,
    /// `selftest [ARGS]`: a platform self-test (Windows VSS).
    Selftest(Vec<OsString>),
    /// `doctor [--json] [--authorized-keys-line=LINE] [PATH...]`: checks this client's set-up.
    Doctor(Doctor),
    /// `history [--json] [--since=WHEN] [PATH...]`: the run history (its words, read by `monitor`).
    History(Vec<OsString>),
    /// `check [--max-age=DURATION] [PATH...]`: a Nagios/Icinga check (its words, read by `monitor`).
    Check(Vec<OsString>),
    /// `__remove-run STAMP`: removes one finished run's snapshots and record;
    /// started detached by that run (not for people).
    RemoveRun(String),
    /// `__doc WHAT`: a generated document on stdout (man pages, completions,
    /// the sample config), for packaging.
    Doc(Doc),
}

/// What `snaprsync doctor` checks besides the machine itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doctor {
    /// Source paths to snapshot and expose as a backup would.
    pub paths: Vec<PathBuf>,
    /// An `authorized_keys` line whose forced command is checked.
    pub key_line: Option<String>,
    /// One JSON object a line instead of the text lines.
    pub json: bool,
}

/// The documents `__doc` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// snaprsync(1).
    Man1,
    /// snaprsync.toml(5).
    Man5,
    /// The commented sample config.
    Config,
    Bash,
    Zsh,
    Fish,
}

impl FromStr for Doc {
    type Err = Error;

    fn from_str(s: &str) -> Result<Doc> {
        Ok(match s {
            "man1" => Doc::Man1,
            "man5" => Doc::Man5,
            "config" => Doc::Config,
            "bash" => Doc::Bash,
            "zsh" => Doc::Zsh,
            "fish" => Doc::Fish,
            _ => return Err(Error::Usage(format!("{DOC} takes man1, man5, config, bash, zsh or fish, not {s:?}"))),
        })
    }
}

/// The internal subcommand that writes the generated documents.
pub const DOC: &str = "__doc";

/// One of snaprsync's own options, as usage, the man page and the completions show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionDoc {
    /// `--snap-config`.
    pub name: &'static str,
    /// What the value is (`FILE`), for an option written `NAME=VALUE`.
    pub value: Option<&'static str>,
    /// May be given more than once.
    pub repeats: bool,
    pub about: &'static str,
}

/// Every own option, in the order usage shows them; `parse` reads exactly these
/// (a test holds it to that).
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "--snap-config",
        value: Some("FILE"),
        repeats: false,
        about: "read this config file instead of the default one; a named file that is missing is an error",
    },
    OptionDoc { name: "--snap-log-file", value: Some("FILE"), repeats: false, about: "append log records to FILE (overrides `log_file`)" },
    OptionDoc {
        name: "--snap-log-level",
        value: Some("LEVEL"),
        repeats: false,
        about: "`error`, `warn`, `info` or `debug` (overrides `log_level`)",
    },
    OptionDoc {
        name: "--snap-restrict",
        value: None,
        repeats: false,
        about: "restricted mode, for an ssh forced command: the rsync command comes from `SSH_ORIGINAL_COMMAND`, is checked, \
                and may read only the allowed directories, from a snapshot",
    },
    OptionDoc { name: "--snap-allow", value: Some("DIR"), repeats: true, about: "restricted mode: a directory the key may read" },
    OptionDoc {
        name: "--snap-allow-write",
        value: Some("DIR"),
        repeats: true,
        about: "restricted mode: a directory the key may write to (a push)",
    },
    OptionDoc {
        name: "--snap-allow-iconv",
        value: None,
        repeats: false,
        about: "restricted mode: allow `--iconv`, which gives up the text checks of names sent with `-s`",
    },
    OptionDoc {
        name: "--snap-allow-check",
        value: None,
        repeats: false,
        about: "restricted mode: the key may also run `snaprsync check` (a monitoring poll over the backup key)",
    },
];

/// One subcommand, as usage, the man page and the completions show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandDoc {
    pub name: &'static str,
    /// What follows the word, in usage notation.
    pub args: &'static str,
    /// Options the subcommand takes (for completion).
    pub options: &'static [&'static str],
    pub about: &'static str,
}

/// The subcommands people use; a first rsync argument equal to one must be written `./WORD`.
pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "list",
        args: "[--json]",
        options: &["--json"],
        about: "list the snapshots snaprsync made that still exist, and whether their run is live, dead or unrecorded \
                (with `--json`: JSON lines)",
    },
    CommandDoc {
        name: "cleanup",
        args: "[--dry-run]",
        options: &["--dry-run"],
        about: "remove what dead runs left (snapshots and run records); with `--dry-run`, only say what would go",
    },
    CommandDoc {
        name: "doctor",
        args: "[--json] [--authorized-keys-line=LINE] [PATH...]",
        options: &["--json", "--authorized-keys-line="],
        about: "check this client once: privileges, the real rsync, the config, `state_dir`, the log, leftovers, and for each PATH \
                its filesystem, provider, free space and a snapshot actually made, shown as rsync would see it, and removed; \
                LINE is an `authorized_keys` line whose forced command is checked; one line per check (OK, WARN or FAIL, \
                and the fix; with `--json`: JSON lines), status 95 if any check fails",
    },
    CommandDoc {
        name: "exec",
        args: "PATH... -- COMMAND [ARGS...]",
        options: &[],
        about: "snapshot every filesystem that holds a PATH, show each snapshot at its original path, run COMMAND there \
                (stdio its own), remove everything, and exit with COMMAND's status",
    },
    CommandDoc {
        name: "history",
        args: "[--json] [--since=WHEN] [PATH...]",
        options: &["--json", "--since="],
        about: "print the run history, one line per run (with `--json`: JSON lines), those since WHEN (`24h`, `2026-12-01`), \
                those that read a PATH",
    },
    CommandDoc {
        name: "check",
        args: "[--max-age=DURATION] [PATH...]",
        options: &["--max-age="],
        about: "a Nagios/Icinga check of the run history: CRITICAL when a PATH's last run failed or it had no consistent run \
                within DURATION (default 25h), WARNING for a live run, a warning or leftovers; one line, then performance data; \
                status 0, 1, 2 or 3",
    },
    CommandDoc {
        name: "help",
        args: "",
        options: &[],
        about: "print a short usage (also `--help` or `-h` alone, and no arguments at a terminal)",
    },
    CommandDoc {
        name: "version",
        args: "",
        options: &[],
        about: "print snaprsync's version and the real rsync's version line (also `snaprsync --version` alone at a terminal)",
    },
    CommandDoc {
        name: "selftest",
        args: "[--report FILE] [--show-names]",
        options: &["--report", "--show-names"],
        about: "Windows: the field test (VSS and its writers, a locked file, a long path, a file denied by ACL, both exposures' rsync listings, a killed run); ends with PASS or FAIL, names redacted",
    },
];

/// Whether `word` is a subcommand word (never rsync's as a first argument).
pub fn is_subcommand(word: &str) -> bool {
    COMMANDS.iter().any(|c| c.name == word)
}

/// The subcommand that runs any program on a snapshot.
pub const EXEC: &str = "exec";

/// `exec PATH... -- COMMAND [ARGS...]`: snapshot what holds the PATHs, run
/// COMMAND on the snapshot. It writes nothing to stdout (that is COMMAND's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub paths: Vec<OsString>,
    /// The program, then its arguments.
    pub command: Vec<OsString>,
}

/// snaprsync's own options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `--snap-config=PATH`: the config file instead of the default.
    pub config: Option<PathBuf>,
    /// `--snap-log-file=PATH`: overrides `log_file`.
    pub log_file: Option<PathBuf>,
    /// `--snap-log-level=LEVEL`: overrides `log_level`.
    pub log_level: Option<String>,
    /// `--snap-restrict`: an ssh forced command; the rsync command to run is
    /// read from `SSH_ORIGINAL_COMMAND` and checked against the allowed roots.
    pub restrict: bool,
    /// `--snap-allow=DIR` (repeatable): roots a restricted key may read.
    pub allow: Vec<PathBuf>,
    /// `--snap-allow-write=DIR` (repeatable): roots a restricted key may write to.
    pub allow_write: Vec<PathBuf>,
    /// `--snap-allow-iconv`: a restricted key may send `--iconv`, which gives
    /// up the text checks of the names it sends with `-s` (see `restrict`).
    pub allow_iconv: bool,
    /// `--snap-allow-check`: a restricted key may run `snaprsync check`.
    pub allow_check: bool,
}

/// What this run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Admin(Admin),
    Exec(Exec),
    Rsync(Vec<OsString>),
}

/// Reads `exec`'s words (after the word itself).
fn exec(words: &[OsString]) -> Result<Exec> {
    const USE: &str = "write snaprsync exec PATH... -- COMMAND [ARGS...]";
    let Some(dashes) = words.iter().position(|w| w == "--") else {
        return Err(Error::Usage(format!("exec: no `--` before the command; {USE}")));
    };
    let (paths, command) = (&words[..dashes], &words[dashes + 1..]);
    if paths.is_empty() {
        return Err(Error::Usage(format!("exec: no PATH to snapshot; {USE}")));
    }
    if command.is_empty() || command[0].is_empty() {
        return Err(Error::Usage(format!("exec: no command after `--`; {USE}")));
    }
    if let Some(opt) = paths.iter().find(|p| p.as_encoded_bytes().starts_with(b"-")) {
        return Err(Error::Usage(format!(
            "exec: {} looks like an option, and exec takes none; write a PATH starting with - as ./{}",
            opt.to_string_lossy(),
            opt.to_string_lossy()
        )));
    }
    Ok(Exec { paths: paths.to_vec(), command: command.to_vec() })
}

/// Reads argv (without argv[0]).
pub fn parse(argv: Vec<OsString>) -> Result<(Options, Mode)> {
    let mut opts = Options::default();
    let mut rest = argv.into_iter().peekable();
    while let Some(arg) = rest.peek() {
        let Some(s) = arg.to_str().filter(|s| s.starts_with("--snap-")) else { break };
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (s, None),
        };
        let need = |v: Option<&str>| {
            v.filter(|v| !v.is_empty()).map(str::to_owned).ok_or_else(|| Error::Usage(format!("{key} needs a value: write {key}=VALUE")))
        };
        match key {
            "--snap-config" => opts.config = Some(need(value)?.into()),
            "--snap-log-file" => opts.log_file = Some(need(value)?.into()),
            "--snap-log-level" => opts.log_level = Some(need(value)?),
            "--snap-restrict" if value.is_none() => opts.restrict = true,
            "--snap-allow" => opts.allow.push(need(value)?.into()),
            "--snap-allow-write" => opts.allow_write.push(need(value)?.into()),
            "--snap-allow-iconv" if value.is_none() => opts.allow_iconv = true,
            "--snap-allow-check" if value.is_none() => opts.allow_check = true,
            _ => {
                let known: Vec<String> =
                    OPTIONS.iter().map(|o| format!("{}{}", o.name, if o.value.is_some() { "=" } else { "" })).collect();
                return Err(Error::Usage(format!(
                    "unknown option {key}; snaprsync's own options are {} (see snaprsync help)",
                    known.join(", ")
                )));
            }
        }
        rest.next();
    }
    let rest: Vec<OsString> = rest.collect();
    if opts.restrict {
        // A forced command names no rsync arguments: they come from the client.
        if !rest.is_empty() {
            return Err(Error::Usage(
                "--snap-restrict takes the rsync command from SSH_ORIGINAL_COMMAND; put nothing after the --snap-* options".into(),
            ));
        }
        if opts.allow.is_empty() && opts.allow_write.is_empty() && !opts.allow_check {
            return Err(Error::Usage("--snap-restrict needs at least one --snap-allow=DIR (or --snap-allow-check)".into()));
        }
        return Ok((opts, Mode::Rsync(rest)));
    }
    if !opts.allow.is_empty() || !opts.allow_write.is_empty() || opts.allow_iconv || opts.allow_check {
        return Err(Error::Usage(
            "--snap-allow, --snap-allow-write, --snap-allow-iconv and --snap-allow-check only apply with --snap-restrict".into(),
        ));
    }
    let mode = match rest.first().and_then(|a| a.to_str()) {
        Some("list") if rest.len() == 1 => Mode::Admin(Admin::List { json: false }),
        Some("list") if rest.len() == 2 && rest[1] == "--json" => Mode::Admin(Admin::List { json: true }),
        Some("cleanup") if rest.len() == 1 => Mode::Admin(Admin::Cleanup { dry_run: false }),
        Some("cleanup") if rest.len() == 2 && rest[1] == "--dry-run" => Mode::Admin(Admin::Cleanup { dry_run: true }),
        // rsync servers never send --help: a person asks, and gets snaprsync's.
        Some("help" | "--help" | "-h") if rest.len() == 1 => Mode::Admin(Admin::Help),
        Some("version") if rest.len() == 1 => Mode::Admin(Admin::Version),
        Some("selftest") => Mode::Admin(Admin::Selftest(rest[1..].to_vec())),
        Some("history") => Mode::Admin(Admin::History(rest[1..].to_vec())),
        Some("check") => Mode::Admin(Admin::Check(rest[1..].to_vec())),
        Some(EXEC) => Mode::Exec(exec(&rest[1..])?),
        Some("doctor") => Mode::Admin(Admin::Doctor(doctor_args(&rest[1..])?)),
        Some(REMOVE_RUN) if rest.len() == 2 => match rest[1].to_str() {
            Some(stamp) if stamp.starts_with(crate::stamp::NAME_PREFIX) => Mode::Admin(Admin::RemoveRun(stamp.to_owned())),
            _ => return Err(Error::Usage(format!("{REMOVE_RUN} takes a run stamp"))),
        },
        Some(DOC) if rest.len() == 2 => Mode::Admin(Admin::Doc(rest[1].to_str().unwrap_or("").parse()?)),
        Some(word) if is_subcommand(word) => {
            return Err(Error::Usage(format!(
                "snaprsync {word}: unexpected arguments (see snaprsync help); to copy a local directory named {word}, write ./{word}"
            )))
        }
        _ => Mode::Rsync(rest),
    };
    Ok((opts, mode))
}

/// `doctor`'s arguments: `--authorized-keys-line=LINE` (or `--authorized-keys-line LINE`), then paths.
fn doctor_args(args: &[OsString]) -> Result<Doctor> {
    const KEY_LINE: &str = "--authorized-keys-line";
    let mut d = Doctor::default();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        let text = a.to_str();
        let line = match text {
            Some(KEY_LINE) => Some(
                rest.next()
                    .and_then(|v| v.to_str())
                    .ok_or_else(|| Error::Usage(format!("{KEY_LINE} needs a line of authorized_keys, in quotes")))?,
            ),
            Some(t) => t.strip_prefix(KEY_LINE).and_then(|v| v.strip_prefix('=')),
            None => None,
        };
        match line {
            None if text == Some("--json") => d.json = true,
            Some(_) if d.key_line.is_some() => return Err(Error::Usage(format!("doctor: give {KEY_LINE} once"))),
            Some(l) => d.key_line = Some(l.to_owned()),
            None if text.is_some_and(|t| t.starts_with("--")) => {
                return Err(Error::Usage(format!(
                    "doctor: unknown option {}; it takes --json, {KEY_LINE}=LINE and paths",
                    text.unwrap_or_default()
                )))
            }
            None => d.paths.push(PathBuf::from(a)),
        }
    }
    Ok(d)
}

/// `--version` alone is rsync's (a backup server or a script asking the
/// remote rsync gets rsync's own answer, unchanged); typed by a person at a
/// terminal, it is snaprsync's `version`, which shows both.
pub fn at_terminal(opts: &Options, mode: Mode, stdout_is_terminal: bool) -> Mode {
    match mode {
        Mode::Rsync(argv) if stdout_is_terminal && !opts.restrict && argv.len() == 1 && argv[0] == "--version" => {
            Mode::Admin(Admin::Version)
        }
        // No arguments at all, typed at a terminal: snaprsync's help, not rsync's.
        Mode::Rsync(argv) if stdout_is_terminal && !opts.restrict && argv.is_empty() => Mode::Admin(Admin::Help),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn own_options_come_first_and_rsync_argv_is_untouched() {
        let (o, m) = parse(argv(&["--snap-config=/x.toml", "--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/src/"])).unwrap();
        assert_eq!(o.config, Some("/x.toml".into()));
        assert_eq!(m, Mode::Rsync(argv(&["--server", "--sender", "-logDtpre.iLsfxCIvu", ".", "/src/"])));
    }

    #[test]
    fn snap_options_after_rsync_args_belong_to_rsync() {
        let (o, m) = parse(argv(&["-a", "--snap-config=/x", "src", "dst"])).unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(m, Mode::Rsync(argv(&["-a", "--snap-config=/x", "src", "dst"])));
    }

    #[test]
    fn help_for_people() {
        for words in [&["--help"][..], &["-h"], &["help"]] {
            assert_eq!(parse(argv(words)).unwrap().1, Mode::Admin(Admin::Help), "{words:?}");
        }
        assert_eq!(parse(argv(&["-h", "x"])).unwrap().1, Mode::Rsync(argv(&["-h", "x"])), "rsync's -h among its arguments");
        let o = Options::default();
        assert_eq!(at_terminal(&o, Mode::Rsync(vec![]), true), Mode::Admin(Admin::Help));
        assert_eq!(at_terminal(&o, Mode::Rsync(vec![]), false), Mode::Rsync(vec![]), "not at a terminal: rsync's answer");
    }

    #[test]
    fn subcommands() {
        assert_eq!(parse(argv(&["list"])).unwrap().1, Mode::Admin(Admin::List { json: false }));
        assert_eq!(parse(argv(&["list", "--json"])).unwrap().1, Mode::Admin(Admin::List { json: true }));
        assert!(parse(argv(&["list", "--jsn"])).is_err());
        assert_eq!(parse(argv(&["cleanup"])).unwrap().1, Mode::Admin(Admin::Cleanup { dry_run: false }));
        assert_eq!(parse(argv(&["cleanup", "--dry-run"])).unwrap().1, Mode::Admin(Admin::Cleanup { dry_run: true }));
        assert!(parse(argv(&["cleanup", "--force"])).is_err());
        assert_eq!(parse(argv(&["--snap-config=/c", "help"])).unwrap().1, Mode::Admin(Admin::Help));
        assert_eq!(parse(argv(&["selftest", "--report", "r.txt"])).unwrap().1, Mode::Admin(Admin::Selftest(argv(&["--report", "r.txt"]))));
        // A local directory called `list` is written ./list.
        assert_eq!(parse(argv(&["./list", "/backup/"])).unwrap().1, Mode::Rsync(argv(&["./list", "/backup/"])));
        let e = parse(argv(&["list", "/backup/"])).unwrap_err().to_string();
        assert!(e.contains("./list"), "{e}");
    }

    #[test]
    fn exec_takes_paths_then_the_command_after_dashes() {
        let (o, m) = parse(argv(&["--snap-config=/c", "exec", "/srv", "rel dir", "--", "tar", "-cf", "-", "--", "x"])).unwrap();
        assert_eq!(o.config, Some("/c".into()));
        assert_eq!(m, Mode::Exec(Exec { paths: argv(&["/srv", "rel dir"]), command: argv(&["tar", "-cf", "-", "--", "x"]) }));
        for bad in [
            &["exec"][..],
            &["exec", "/srv"],
            &["exec", "/srv", "--"],
            &["exec", "--", "tar"],
            &["exec", "/srv", "--", ""],
            &["exec", "-v", "/srv", "--", "tar"],
        ] {
            let e = parse(argv(bad)).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::status::USAGE, "{bad:?}");
            assert!(e.to_string().contains("exec"), "{e}");
        }
        // A directory named exec is rsync's when written ./exec.
        assert_eq!(parse(argv(&["./exec", "/backup/"])).unwrap().1, Mode::Rsync(argv(&["./exec", "/backup/"])));
        assert!(
            parse(argv(&["--snap-restrict", "--snap-allow=/srv", "exec", "/srv", "--", "sh"])).is_err(),
            "no exec for a restricted key"
        );
    }

    #[test]
    fn bad_own_options_are_usage_errors() {
        for bad in [&["--snap-bogus=1"][..], &["--snap-config"], &["--snap-config="]] {
            let e = parse(argv(bad)).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::status::USAGE, "{bad:?}");
        }
    }

    #[test]
    fn restricted_mode_options() {
        let (o, m) = parse(argv(&["--snap-restrict", "--snap-allow=/srv", "--snap-allow=/home", "--snap-allow-write=/in"])).unwrap();
        assert!(o.restrict);
        assert_eq!(o.allow, vec![PathBuf::from("/srv"), PathBuf::from("/home")]);
        assert_eq!(o.allow_write, vec![PathBuf::from("/in")]);
        assert!(!o.allow_iconv);
        assert_eq!(m, Mode::Rsync(vec![]));
        let (o, _) = parse(argv(&["--snap-restrict", "--snap-allow=/srv", "--snap-allow-iconv"])).unwrap();
        assert!(o.allow_iconv);
        for bad in [
            &["--snap-restrict"][..],
            &["--snap-restrict", "--snap-allow=/srv", "list"],
            &["--snap-allow=/srv", "-a", "x", "y"],
            &["--snap-restrict=1", "--snap-allow=/x"],
            &["--snap-allow-iconv", "-a", "x", "y"],
            &["--snap-restrict", "--snap-allow-iconv"],
            &["--snap-restrict", "--snap-allow=/x", "--snap-allow-iconv=1"],
        ] {
            assert_eq!(parse(argv(bad)).unwrap_err().exit_code(), crate::error::status::USAGE, "{bad:?}");
        }
    }

    #[test]
    fn every_documented_option_is_read_and_nothing_else() {
        for o in OPTIONS {
            let arg = match o.value {
                Some(_) => format!("{}=/v", o.name),
                None => o.name.to_owned(),
            };
            // The allow options need restricted mode, and restricted mode an allow.
            let mut words = vec![arg.as_str()];
            words.extend(["--snap-restrict", "--snap-allow=/x"].into_iter().filter(|w| *w != o.name));
            parse(argv(&words)).unwrap_or_else(|e| panic!("{arg}: {e}"));
            if o.value.is_some() {
                assert!(parse(argv(&[o.name, "--snap-restrict", "--snap-allow=/x"])).is_err(), "{} without a value", o.name);
            }
        }
        let e = parse(argv(&["--snap-nope"])).unwrap_err().to_string();
        for o in OPTIONS {
            assert!(e.contains(o.name), "{e}");
        }
    }

    #[test]
    fn every_command_word_is_a_subcommand() {
        for c in COMMANDS {
            if c.name == EXEC {
                let m = parse(argv(&[c.name, "/srv", "--", "true"])).map(|(_, m)| m);
                assert!(matches!(m, Ok(Mode::Exec(_))), "{}: {m:?}", c.name);
                continue;
            }
            let m = parse(argv(&[c.name])).map(|(_, m)| m);
            assert!(matches!(m, Ok(Mode::Admin(_))), "{}: {m:?}", c.name);
            assert!(!matches!(m, Ok(Mode::Rsync(_))));
        }
    }

    #[test]
    fn doctor_arguments() {
        let d = |words: &[&str]| match parse(argv(words)) {
            Ok((_, Mode::Admin(Admin::Doctor(d)))) => Ok(d),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(d(&["doctor"]).unwrap(), Doctor::default());
        let line = r#"command="/usr/bin/snaprsync --snap-restrict --snap-allow=/srv",restrict ssh-ed25519 AAAA k"#;
        let want = Doctor { paths: vec!["/srv".into(), "/home".into()], key_line: Some(line.into()), json: false };
        assert_eq!(d(&["doctor", "--authorized-keys-line", line, "/srv", "/home"]).unwrap(), want);
        assert_eq!(d(&["doctor", "/srv", &format!("--authorized-keys-line={line}"), "/home"]).unwrap(), want);
        assert_eq!(d(&["doctor", "--json", "/srv"]).unwrap(), Doctor { paths: vec!["/srv".into()], key_line: None, json: true });
        for bad in [
            &["doctor", "--authorized-keys-line"][..],
            &["doctor", "--bogus"],
            &["doctor", "--authorized-keys-line=a", "--authorized-keys-line=b"],
        ] {
            assert_eq!(d(bad).unwrap_err().exit_code(), crate::error::status::USAGE, "{bad:?}");
        }
    }

    #[test]
    fn version_alone_at_a_terminal_is_snaprsyncs() {
        let o = Options::default();
        let v = || Mode::Rsync(argv(&["--version"]));
        assert_eq!(at_terminal(&o, v(), true), Mode::Admin(Admin::Version));
        assert_eq!(at_terminal(&o, v(), false), v(), "through a pipe or ssh it stays rsync's");
        let more = Mode::Rsync(argv(&["--version", "-a"]));
        assert_eq!(at_terminal(&o, more.clone(), true), more);
        let r = Options { restrict: true, ..Options::default() };
        assert_eq!(at_terminal(&r, v(), true), v());
        assert_eq!(parse(argv(&["version"])).unwrap().1, Mode::Admin(Admin::Version));
    }

    #[test]
    fn doc_words() {
        assert_eq!(parse(argv(&["__doc", "man1"])).unwrap().1, Mode::Admin(Admin::Doc(Doc::Man1)));
        assert_eq!(parse(argv(&["__doc", "fish"])).unwrap().1, Mode::Admin(Admin::Doc(Doc::Fish)));
        assert!(parse(argv(&["__doc", "man7"])).is_err());
    }

    #[test]
    fn empty_argv_is_rsync_with_nothing() {
        assert_eq!(parse(vec![]).unwrap().1, Mode::Rsync(vec![]));
    }
}
