//! rsync's options, one row each, as rsync's own `options.c` keeps them: the
//! long name, the letter, whether it takes a value, what it changes in the
//! argv model ([`crate::rsync_args`]), restricted mode's rule for it on a
//! server ([`crate::restrict`]), and the bound of a numeric one. Pure data,
//! and a leaf: the argv model, the allowlist and the number bounds all read
//! this one table.
//!
//! The rows are the union over rsync 3.0–3.5's `long_options[]`; a value is
//! POPT_ARG_STRING/INT/LONG (none there has an optional value), a flag
//! POPT_ARG_NONE/VAL/BIT_SET. A test holds the table against the installed
//! rsync's `--help`.

/// One rsync option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsyncOption {
    /// The long name without its dashes; `None` for a letter with none (`-D`, `-F`, `-P`).
    pub long: Option<&'static str>,
    /// The short letter, if any.
    pub short: Option<u8>,
    /// Whether it takes a value (attached or the next argument).
    pub value: bool,
    /// What it changes that the argv model cares about.
    pub effect: Option<Effect>,
    /// Restricted mode's rule for it on a server.
    pub rule: Rule,
    /// The letter's rule where it differs from the long name's: `-e` on a
    /// server carries the protocol flags, never `--rsh`'s program; clients
    /// send `--from0` long, never `-0`; `-h` alone is help.
    pub letter_rule: Option<Rule>,
    /// A numeric option's bound in restricted mode.
    pub bound: Option<Bound>,
}

impl RsyncOption {
    /// Restricted mode's rule for the option as spelled by its letter.
    pub fn short_rule(&self) -> Rule {
        self.letter_rule.unwrap_or(self.rule)
    }

    const fn short(mut self, c: u8) -> Self {
        self.short = Some(c);
        self
    }

    const fn letter_rule(mut self, rule: Rule) -> Self {
        self.letter_rule = Some(rule);
        self
    }

    const fn effect(mut self, e: Effect) -> Self {
        self.effect = Some(e);
        self
    }

    const fn bound(mut self, number: Number, range: &'static str) -> Self {
        self.bound = Some(Bound { number, range });
        self
    }
}

const fn flag(long: &'static str, rule: Rule) -> RsyncOption {
    RsyncOption { long: Some(long), short: None, value: false, effect: None, rule, letter_rule: None, bound: None }
}

const fn value(long: &'static str, rule: Rule) -> RsyncOption {
    RsyncOption { value: true, ..flag(long, rule) }
}

const fn letter(c: u8, rule: Rule) -> RsyncOption {
    RsyncOption { long: None, ..flag("", rule) }.short(c)
}

/// What an option changes that the argv model cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
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

/// What restricted mode's allowlist does with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Allowed as it is (a flag, or a value rsync checks and that names no
    /// file; a numeric value is held to the row's [`Bound`]).
    Allow,
    /// `--iconv`: only where the forced command allows it (`--snap-allow-iconv`).
    Iconv,
    /// A directory rsync writes into or reads basis files from: confined.
    Dir(DirKind),
    /// `-e` on a server: only the protocol flags (`.iLsfxCIvu`).
    ProtocolFlags,
    /// `--suffix`: a value without a path separator.
    NoSeparator,
    /// Refused, with the reason.
    Refuse(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    /// `--temp-dir`, `--backup-dir`: written; relative to the destination.
    Write,
    /// `--partial-dir`: written; a relative one is made in each file's directory.
    Partial,
    /// `--compare-dest`, `--copy-dest`, `--link-dest`: read; relative to the destination.
    Basis,
}

/// A numeric option's bound: how rsync reads the value, and the range as a
/// refusal states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub number: Number,
    pub range: &'static str,
}

/// How rsync reads a numeric option's value, and what restricted mode takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    /// popt's `POPT_ARG_INT`, here in plain decimal only: popt reads `010` as
    /// 8 and `0x10` as 16, so those forms are refused rather than guessed.
    Int { min: i64, max: i64 },
    /// rsync's `parse_size_arg`, in bytes; `unit` is the default unit. `0` is
    /// taken only if `zero` says why it is harmless.
    Size { unit: u8, min: u64, max: u64, zero: bool },
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
const EIB: u64 = 1 << 60;

const FOLLOWS_LINKS: &str = "follows symlinks, which can lead out of the allowed directories";
const FILTERS: &str = "filter rules come over the connection; on the command line they can merge local files";
const DAEMON: &str = "not a server transfer (daemon mode)";
const RUNS: &str = "names a program to run";
/// Any other known option: restricted mode takes only what clients send.
const NOT_SENT: &str = "not an option an rsync client sends to a server; restricted mode allows only those";

/// Every option, the letters without a long name first, then sorted by long
/// name. A `no-` form is allowed (turning an option off never reaches further
/// than leaving it on) unless its row says otherwise.
#[rustfmt::skip]
pub const OPTIONS: &[RsyncOption] = &[
    letter(b'D', Rule::Allow),
    letter(b'F', Rule::Refuse(FILTERS)),
    letter(b'P', Rule::Refuse(NOT_SENT)),
    flag("8-bit-output", Rule::Refuse(NOT_SENT)).short(b'8'),
    flag("acls", Rule::Allow).short(b'A'),
    value("address", Rule::Refuse(NOT_SENT)),
    flag("append", Rule::Allow),
    flag("append-verify", Rule::Allow),
    flag("archive", Rule::Allow).short(b'a').effect(Effect::Archive),
    flag("atimes", Rule::Allow).short(b'U'),
    flag("backup", Rule::Allow).short(b'b'),
    value("backup-dir", Rule::Dir(DirKind::Write)),
    value("block-size", Rule::Allow).short(b'B').bound(Number::Size { unit: b'b', min: 0, max: 128 * KIB, zero: true }, "0 (rsync picks) to 128K, rsync's largest block"),
    flag("blocking-io", Rule::Refuse(NOT_SENT)),
    value("bwlimit", Rule::Allow).bound(Number::Size { unit: b'K', min: 512, max: TIB, zero: true }, "0 (no limit) or 512 to 1T bytes per second (K by default)"),
    value("cc", Rule::Allow),
    flag("checksum", Rule::Allow).short(b'c'),
    value("checksum-choice", Rule::Allow),
    value("checksum-seed", Rule::Allow).bound(Number::Int { min: i32::MIN as i64, max: i32::MAX as i64 }, "a 32-bit integer"),
    value("chmod", Rule::Refuse(NOT_SENT)),
    value("chown", Rule::Refuse(NOT_SENT)),
    value("compare-dest", Rule::Dir(DirKind::Basis)),
    flag("compress", Rule::Allow).short(b'z'),
    value("compress-choice", Rule::Allow),
    value("compress-level", Rule::Allow).bound(Number::Int { min: -131_072, max: 22 }, "-131072 to 22"),
    value("compress-threads", Rule::Refuse(NOT_SENT)),
    value("config", Rule::Refuse(DAEMON)).effect(Effect::Stop),
    value("confine-root", Rule::Refuse(NOT_SENT)),
    value("contimeout", Rule::Refuse(NOT_SENT)),
    value("copy-as", Rule::Refuse("changes the user rsync runs as")),
    value("copy-dest", Rule::Dir(DirKind::Basis)),
    flag("copy-devices", Rule::Refuse("reads the contents of device files")),
    flag("copy-dirlinks", Rule::Refuse(FOLLOWS_LINKS)).short(b'k'),
    flag("copy-links", Rule::Refuse(FOLLOWS_LINKS)).short(b'L'),
    flag("copy-unsafe-links", Rule::Refuse(FOLLOWS_LINKS)),
    flag("crtimes", Rule::Allow).short(b'N'),
    flag("cvs-exclude", Rule::Allow).short(b'C'),
    flag("daemon", Rule::Refuse(DAEMON)).effect(Effect::Stop),
    value("debug", Rule::Allow),
    flag("del", Rule::Refuse(NOT_SENT)),
    flag("delay-updates", Rule::Allow),
    flag("delete", Rule::Allow),
    flag("delete-after", Rule::Allow),
    flag("delete-before", Rule::Allow),
    flag("delete-delay", Rule::Allow),
    flag("delete-during", Rule::Allow),
    flag("delete-excluded", Rule::Allow),
    flag("delete-missing-args", Rule::Allow),
    flag("detach", Rule::Refuse(DAEMON)).effect(Effect::Stop),
    flag("devices", Rule::Allow),
    flag("dirs", Rule::Allow).short(b'd').effect(Effect::Dirs(2)),
    value("dparam", Rule::Refuse(DAEMON)).effect(Effect::Stop),
    flag("drop-D", Rule::Refuse(NOT_SENT)),
    flag("dry-run", Rule::Allow).short(b'n'),
    value("early-input", Rule::Refuse("reads a local file")),
    value("exclude", Rule::Refuse(FILTERS)),
    value("exclude-from", Rule::Refuse("reads a local file (filter rules come over the connection)")),
    flag("executability", Rule::Allow).short(b'E'),
    flag("existing", Rule::Allow),
    flag("fake-super", Rule::Refuse(NOT_SENT)),
    value("files-from", Rule::Refuse("the names in the list arrive after this check and can pass through symlinks in the tree to outside it")).effect(Effect::FilesFrom),
    value("filter", Rule::Refuse(FILTERS)).short(b'f'),
    flag("force", Rule::Allow),
    flag("from0", Rule::Allow).short(b'0').letter_rule(Rule::Refuse(NOT_SENT)),
    flag("fsync", Rule::Allow),
    flag("fuzzy", Rule::Allow).short(b'y'),
    flag("group", Rule::Allow).short(b'g'),
    value("groupmap", Rule::Allow),
    flag("hard-links", Rule::Allow).short(b'H'),
    flag("help", Rule::Refuse("not a transfer")).effect(Effect::Stop),
    flag("human-readable", Rule::Refuse(NOT_SENT)).short(b'h').letter_rule(Rule::Refuse("not a transfer")),
    flag("i-d", Rule::Allow),
    flag("i-r", Rule::Allow),
    value("iconv", Rule::Iconv),
    flag("ignore-errors", Rule::Allow),
    flag("ignore-existing", Rule::Allow),
    flag("ignore-missing-args", Rule::Allow),
    flag("ignore-non-existing", Rule::Allow),
    flag("ignore-times", Rule::Allow).short(b'I'),
    flag("implied-dirs", Rule::Allow),
    flag("inc-recursive", Rule::Allow),
    value("include", Rule::Refuse(FILTERS)),
    value("include-from", Rule::Refuse("reads a local file (filter rules come over the connection)")),
    value("info", Rule::Allow),
    flag("inplace", Rule::Allow),
    flag("insecure-links", Rule::Refuse(NOT_SENT)),
    flag("ipv4", Rule::Refuse(NOT_SENT)).short(b'4'),
    flag("ipv6", Rule::Refuse(NOT_SENT)).short(b'6'),
    flag("itemize-changes", Rule::Refuse(NOT_SENT)).short(b'i'),
    flag("keep-dirlinks", Rule::Refuse(FOLLOWS_LINKS)).short(b'K'),
    value("link-dest", Rule::Dir(DirKind::Basis)),
    flag("links", Rule::Allow).short(b'l'),
    flag("list-only", Rule::Allow).effect(Effect::ListOnly),
    value("log-file", Rule::Refuse("writes a file on this machine")),
    value("log-file-format", Rule::Refuse("goes with --log-file, which writes a file on this machine")),
    value("log-format", Rule::Allow),
    value("max-alloc", Rule::Allow).bound(Number::Size { unit: b'B', min: MIB, max: 16 * GIB, zero: false }, "1M to 16G, or leave it out for rsync's 1G"),
    value("max-delete", Rule::Allow).bound(Number::Int { min: -1, max: i32::MAX as i64 }, "-1 to 2147483647"),
    value("max-size", Rule::Allow).bound(Number::Size { unit: b'b', min: 0, max: EIB, zero: true }, "0 to 1EiB"),
    value("min-size", Rule::Allow).bound(Number::Size { unit: b'b', min: 0, max: EIB, zero: true }, "0 to 1EiB"),
    flag("mkpath", Rule::Allow),
    value("modify-window", Rule::Allow).short(b'@').bound(Number::Int { min: -1, max: 86_400 }, "-1 to 86400 seconds"),
    flag("motd", Rule::Refuse(NOT_SENT)),
    flag("msgs2stderr", Rule::Allow),
    flag("munge-links", Rule::Allow),
    flag("new-compress", Rule::Allow),
    flag("no-8", Rule::Allow),
    flag("no-8-bit-output", Rule::Allow),
    flag("no-A", Rule::Allow),
    flag("no-D", Rule::Allow),
    flag("no-H", Rule::Allow),
    flag("no-J", Rule::Allow),
    flag("no-N", Rule::Allow),
    flag("no-O", Rule::Allow),
    flag("no-R", Rule::Allow).effect(Effect::Relative(false)),
    flag("no-S", Rule::Allow),
    flag("no-U", Rule::Allow),
    flag("no-W", Rule::Allow),
    flag("no-X", Rule::Allow),
    flag("no-acls", Rule::Allow),
    flag("no-append", Rule::Allow),
    flag("no-atimes", Rule::Allow),
    flag("no-backup", Rule::Allow),
    flag("no-blocking-io", Rule::Allow),
    flag("no-bwlimit", Rule::Allow),
    flag("no-c", Rule::Allow),
    flag("no-checksum", Rule::Allow),
    flag("no-compress", Rule::Allow),
    flag("no-contimeout", Rule::Allow),
    flag("no-crtimes", Rule::Allow),
    flag("no-d", Rule::Allow).effect(Effect::Dirs(0)),
    flag("no-delay-updates", Rule::Allow),
    flag("no-detach", Rule::Refuse(DAEMON)).effect(Effect::Stop),
    flag("no-devices", Rule::Allow),
    flag("no-dirs", Rule::Allow).effect(Effect::Dirs(0)),
    flag("no-drop-D", Rule::Allow),
    flag("no-force", Rule::Allow),
    flag("no-from0", Rule::Allow),
    flag("no-fuzzy", Rule::Allow),
    flag("no-g", Rule::Allow),
    flag("no-group", Rule::Allow),
    flag("no-h", Rule::Allow),
    flag("no-hard-links", Rule::Allow),
    flag("no-human-readable", Rule::Allow),
    flag("no-i", Rule::Allow),
    flag("no-i-d", Rule::Allow),
    flag("no-i-r", Rule::Allow),
    flag("no-iconv", Rule::Allow),
    flag("no-ignore-errors", Rule::Allow),
    flag("no-implied-dirs", Rule::Allow),
    flag("no-inc-recursive", Rule::Allow),
    flag("no-inplace", Rule::Allow),
    flag("no-insecure-links", Rule::Allow),
    flag("no-itemize-changes", Rule::Allow),
    flag("no-l", Rule::Allow),
    flag("no-links", Rule::Allow),
    flag("no-m", Rule::Allow),
    flag("no-mkpath", Rule::Allow),
    flag("no-motd", Rule::Allow),
    flag("no-msgs2stderr", Rule::Allow),
    flag("no-munge-links", Rule::Refuse("turns off a safety option")),
    flag("no-numeric-ids", Rule::Allow),
    flag("no-o", Rule::Allow),
    flag("no-old-args", Rule::Allow).effect(Effect::OldArgs(false)),
    flag("no-omit-dir-times", Rule::Allow),
    flag("no-omit-link-times", Rule::Allow),
    flag("no-one-file-system", Rule::Allow),
    flag("no-open-noatime", Rule::Allow),
    flag("no-owner", Rule::Allow),
    flag("no-p", Rule::Allow),
    flag("no-partial", Rule::Allow),
    flag("no-perms", Rule::Allow),
    flag("no-progress", Rule::Allow),
    flag("no-protect-args", Rule::Allow).effect(Effect::Protect(false)),
    flag("no-prune-empty-dirs", Rule::Allow),
    flag("no-r", Rule::Allow).effect(Effect::Recurse(0)),
    flag("no-recursive", Rule::Allow).effect(Effect::Recurse(0)),
    flag("no-relative", Rule::Allow).effect(Effect::Relative(false)),
    flag("no-s", Rule::Allow).effect(Effect::Protect(false)),
    flag("no-secluded-args", Rule::Allow).effect(Effect::Protect(false)),
    flag("no-sparse", Rule::Allow),
    flag("no-specials", Rule::Allow),
    flag("no-super", Rule::Allow),
    flag("no-t", Rule::Allow),
    flag("no-timeout", Rule::Allow),
    flag("no-times", Rule::Allow),
    flag("no-v", Rule::Allow),
    flag("no-verbose", Rule::Allow),
    flag("no-whole-file", Rule::Allow),
    flag("no-write-devices", Rule::Allow),
    flag("no-x", Rule::Allow),
    flag("no-xattrs", Rule::Allow),
    flag("no-y", Rule::Allow),
    flag("no-z", Rule::Allow),
    flag("numeric-ids", Rule::Allow),
    flag("old-args", Rule::Refuse(NOT_SENT)).effect(Effect::OldArgs(true)),
    flag("old-compress", Rule::Allow),
    flag("old-d", Rule::Allow).effect(Effect::Dirs(4)),
    flag("old-dirs", Rule::Allow).effect(Effect::Dirs(4)),
    flag("omit-dir-times", Rule::Allow).short(b'O'),
    flag("omit-link-times", Rule::Allow).short(b'J'),
    flag("one-file-system", Rule::Allow).short(b'x'),
    value("only-write-batch", Rule::Refuse("writes a batch file on this machine")),
    flag("open-noatime", Rule::Refuse("opens files with O_NOATIME, which needs CAP_FOWNER, a power a restricted key's rsync does not hold (and a snapshot's access times never change); leave it out")),
    value("out-format", Rule::Refuse(NOT_SENT)),
    value("outbuf", Rule::Refuse(NOT_SENT)),
    flag("owner", Rule::Allow).short(b'o'),
    flag("partial", Rule::Allow),
    value("partial-dir", Rule::Dir(DirKind::Partial)),
    value("password-file", Rule::Refuse("reads a local file")),
    flag("perms", Rule::Allow).short(b'p'),
    value("port", Rule::Refuse(NOT_SENT)),
    flag("preallocate", Rule::Allow),
    flag("progress", Rule::Refuse(NOT_SENT)),
    flag("protect-args", Rule::Allow).effect(Effect::Protect(true)),
    value("protocol", Rule::Refuse(NOT_SENT)),
    flag("prune-empty-dirs", Rule::Allow).short(b'm'),
    flag("qsort", Rule::Allow),
    flag("quiet", Rule::Allow).short(b'q'),
    value("read-batch", Rule::Refuse("reads a batch file on this machine")).effect(Effect::ReadBatch),
    flag("recursive", Rule::Allow).short(b'r').effect(Effect::Recurse(2)),
    flag("relative", Rule::Allow).short(b'R').effect(Effect::Relative(true)),
    value("remote-option", Rule::Refuse("passes options on to another rsync")).short(b'M'),
    flag("remove-sent-files", Rule::Refuse("deletes the files it sends from this machine")),
    flag("remove-source-files", Rule::Refuse("deletes the files it sends from this machine")),
    value("rsh", Rule::Refuse(RUNS)).short(b'e').letter_rule(Rule::ProtocolFlags),
    value("rsync-path", Rule::Refuse(RUNS)),
    flag("safe-links", Rule::Allow),
    flag("secluded-args", Rule::Allow).short(b's').effect(Effect::Protect(true)),
    flag("sender", Rule::Allow).effect(Effect::Sender),
    flag("server", Rule::Allow).effect(Effect::Server),
    flag("size-only", Rule::Allow),
    value("skip-compress", Rule::Allow),
    value("sockopts", Rule::Refuse(NOT_SENT)),
    flag("sparse", Rule::Allow).short(b'S'),
    flag("specials", Rule::Allow),
    flag("stats", Rule::Allow),
    value("stderr", Rule::Refuse(NOT_SENT)),
    value("stop-after", Rule::Refuse(NOT_SENT)),
    value("stop-at", Rule::Refuse(NOT_SENT)),
    value("suffix", Rule::NoSeparator),
    flag("super", Rule::Allow),
    value("temp-dir", Rule::Dir(DirKind::Write)).short(b'T'),
    value("time-limit", Rule::Refuse(NOT_SENT)),
    value("timeout", Rule::Allow).bound(Number::Int { min: 0, max: 86_400 }, "0 (none) to 86400 seconds"),
    flag("times", Rule::Allow).short(b't'),
    flag("trust-sender", Rule::Refuse(NOT_SENT)),
    flag("update", Rule::Allow).short(b'u'),
    value("usermap", Rule::Allow),
    flag("verbose", Rule::Allow).short(b'v'),
    flag("version", Rule::Refuse("not a transfer")).short(b'V').effect(Effect::Version),
    flag("whole-file", Rule::Allow).short(b'W'),
    value("write-batch", Rule::Refuse("writes a batch file on this machine")),
    flag("write-devices", Rule::Refuse("writes into device files")),
    flag("xattrs", Rule::Allow).short(b'X'),
    value("zc", Rule::Allow),
    value("zl", Rule::Allow).bound(Number::Int { min: -131_072, max: 22 }, "-131072 to 22"),
    value("zt", Rule::Refuse(NOT_SENT)),
];

/// The option named `--name` (without the dashes), if rsync has one.
pub fn long(name: &[u8]) -> Option<&'static RsyncOption> {
    let k = OPTIONS.binary_search_by(|o| o.long.map(str::as_bytes).cmp(&Some(name))).ok()?;
    Some(&OPTIONS[k])
}

/// The option with the letter `c`, if rsync has one.
pub fn short(c: u8) -> Option<&'static RsyncOption> {
    OPTIONS.iter().find(|o| o.short == Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_each_name_once() {
        assert!(OPTIONS.windows(2).all(|w| (w[0].long, w[0].short) < (w[1].long, w[1].short)), "sorted by long name, each once");
        for o in OPTIONS {
            if let Some(c) = o.short {
                assert_eq!(short(c), Some(o), "-{} is on one row", char::from(c));
            }
            if let Some(n) = o.long {
                assert_eq!(long(n.as_bytes()), Some(o), "--{n}");
            }
            assert!(o.bound.is_none() || o.value, "{o:?}: a bound needs a value");
        }
        assert_eq!(long(b""), None);
        assert_eq!(long(b"no-such-option"), None);
    }

    /// Every option the installed rsync's `--help` lists is a row, with the
    /// same letter and the same value-taking (on Unix, where the tests' rsync is).
    #[cfg(unix)]
    #[test]
    fn every_option_of_rsync_help_is_a_row() {
        let Ok(out) = std::process::Command::new("rsync").arg("--help").output() else {
            panic!("rsync is not installed (the tests need it)");
        };
        let help = String::from_utf8_lossy(&out.stdout);
        let mut seen = 0;
        for line in help.lines().map(str::trim_start).filter(|l| l.starts_with('-')) {
            let names = line.split("  ").next().unwrap_or_default();
            let help_letter = line.contains("(*)");
            let mut longs = Vec::new();
            for word in names.split(", ").map(|w| w.split(' ').next().unwrap_or_default()) {
                if let Some(body) = word.strip_prefix("--") {
                    let (name, takes) = body.split_once('=').map_or((body, false), |(n, _)| (n, true));
                    if name == "no-OPTION" {
                        continue;
                    }
                    let o = long(name.as_bytes()).unwrap_or_else(|| panic!("--{name} ({line}) is not in the table"));
                    assert_eq!(o.value, takes, "--{name}: {line}");
                    longs.push(o);
                    seen += 1;
                } else if let Some(&[c]) = word.strip_prefix('-').map(str::as_bytes) {
                    if help_letter {
                        continue;
                    }
                    let o = short(c).unwrap_or_else(|| panic!("-{} ({line}) is not in the table", char::from(c)));
                    if let Some(first) = longs.first() {
                        assert_eq!(o, *first, "-{} is --{:?}'s letter: {line}", char::from(c), first.long);
                    }
                    seen += 1;
                }
            }
        }
        assert!(seen > 150, "read {seen} options from rsync --help:\n{help}");
    }
}
