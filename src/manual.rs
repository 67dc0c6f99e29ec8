//! The man pages snaprsync(1) and snaprsync.toml(5), the commented sample
//! config and `snaprsync help`, made from the tables the program itself
//! reads: `cli::OPTIONS` and `cli::COMMANDS`, `config::KEYS` with
//! `Config::default()`, `error::STATUSES`, and the host's paths. So they
//! cannot drift from the code; a test holds README's tables to the same data.
//! `SNAPRSYNC_FAULT` is left out on purpose: release builds, which the
//! packages ship, ignore it.
//!
//! Text in the tables marks code with backquotes: bold in roff, plain in text.

use std::fmt::Write;

use crate::cli::{COMMANDS, OPTIONS};
use crate::config::{default_text, Os, KEYS};
use crate::error::{SIGNAL_STATUS, STATUSES};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Text escaped for roff: backslashes, hyphens (as `\-`, so that options
/// copy as typed), a dot or quote starting a line, and anything not ASCII.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '\'' => out.push_str("\\(aq"),
            '\n' => out.push('\n'),
            c if c.is_ascii() => out.push(c),
            c => {
                let _ = write!(out, "\\[u{:04X}]", u32::from(c));
            }
        }
    }
    // A line starting with a dot would be read as a request.
    out.lines().map(|l| if l.starts_with('.') { format!("\\&{l}") } else { l.to_owned() }).collect::<Vec<_>>().join("\n")
}

/// Table text in roff: `code` in bold, the rest escaped.
fn roff(text: &str) -> String {
    text.split('`').enumerate().map(|(i, part)| if i % 2 == 1 { format!("\\fB{}\\fR", esc(part)) } else { esc(part) }).collect()
}

/// Table text as plain text: the backquotes dropped.
fn plain(text: &str) -> String {
    text.replace('`', "")
}

/// Table text as a sentence: plain, its first letter in upper case.
fn sentence(text: &str) -> String {
    let p = plain(text);
    let mut c = p.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A description short enough for a menu or a usage line: the first clause
/// of `about`, plain, cut at a word before 60 characters.
pub fn short(about: &str) -> String {
    let plain = plain(about);
    let first = plain.split("; ").next().unwrap_or("").split(" (").next().unwrap_or("").trim().to_owned();
    if first.len() <= 60 {
        return first;
    }
    let cut = first[..60].rfind(' ').unwrap_or(60);
    format!("{}...", &first[..cut])
}

/// `--snap-config=FILE` in roff.
fn option_roff(name: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("\\fB{}\\fR=\\fI{}\\fR", esc(name), esc(v)),
        None => format!("\\fB{}\\fR", esc(name)),
    }
}

/// Lines of code shown as they are (no filling), indented.
fn example(out: &mut String, lines: &str) {
    out.push_str(".PP\n.RS 4\n.nf\n");
    for l in lines.lines() {
        out.push_str(&esc(l));
        out.push('\n');
    }
    out.push_str(".fi\n.RE\n");
}

fn para(out: &mut String, text: &str) {
    out.push_str(".PP\n");
    out.push_str(&roff(text));
    out.push('\n');
}

/// The installed program's path, as examples name it.
const BIN: &str = "/usr/bin/snaprsync";

/// snaprsync(1).
pub fn man1() -> String {
    let mut o = String::new();
    let _ = writeln!(o, ".TH SNAPRSYNC 1 \"\" \"snaprsync {VERSION}\" \"User Commands\"");
    // Options and paths are typed as shown: no hyphenation, no stretched lines.
    o.push_str(".nh\n.ad l\n");
    o.push_str(".SH NAME\nsnaprsync \\- rsync that reads from a point\\-in\\-time snapshot\n");
    o.push_str(".SH SYNOPSIS\n.B snaprsync\n[\\fB\\-\\-snap\\-\\fIOPTION\\fR...] \\fIRSYNC\\-ARGS\\fR...\n.br\n");
    o.push_str(".B snaprsync\n[\\fB\\-\\-snap\\-config\\fR=\\fIFILE\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n");
    o.push_str(".SH DESCRIPTION\n");
    o.push_str(&roff(
        "snaprsync stands in for rsync on the machine being backed up. A backup server (rsync, dirvish, rsnapshot, BackupPC) \
         names it as the remote rsync. When it is rsync's sending side, it takes a read-only snapshot of every filesystem \
         that holds a source path (btrfs subvolume snapshots, or LVM snapshots of logical volumes), runs the real rsync so that \
         it reads the snapshot under the original names (in a private mount namespace, with the snapshot mounted over the \
         original path), passes stdin, stdout and stderr through untouched, removes the snapshot, and exits with rsync's \
         exit status. The backup is then point-in-time consistent.",
    ));
    o.push('\n');
    para(
        &mut o,
        "In every other case (the receiving side, `--version`, a transfer with no local source, `provider = \"none\"`) it \
         runs the real rsync unchanged. It never writes to stdout in this role, since stdout carries the rsync protocol. It \
         removes every snapshot it makes, also on errors, panics and signals; a run killed with SIGKILL is recorded in \
         `state_dir`, and the next run sweeps what it left.",
    );
    para(&mut o, "snaprsync must run as root (or with CAP_SYS_ADMIN). Run `snaprsync doctor` once on each client to check the set-up.");
    o.push_str(".SH OPTIONS\n");
    o.push_str(&roff(
        "snaprsync's own options come before rsync's arguments, so that they fit in `--rsync-path=\"snaprsync --snap-config=/x.toml\"`. \
         Everything from the first other word on is rsync's, passed on untouched.",
    ));
    o.push('\n');
    for opt in OPTIONS {
        let _ = writeln!(o, ".TP\n{}", option_roff(opt.name, opt.value));
        let again = if opt.repeats { "; may be given more than once" } else { "" };
        let _ = writeln!(o, "{}{again}", roff(opt.about));
    }
    o.push_str(".SH COMMANDS\n");
    o.push_str(&roff(
        "A first word that is one of these is snaprsync's; anything else is rsync's. To copy a local directory named like a \
         command, write `./list`.",
    ));
    o.push('\n');
    for c in COMMANDS {
        let args = if c.args.is_empty() { String::new() } else { format!(" {}", esc(c.args)) };
        let _ = writeln!(o, ".TP\n\\fB{}\\fR{args}\n{}", esc(c.name), roff(c.about));
    }
    o.push_str(".SS \"exec of the root filesystem\"\n");
    o.push_str(&roff(
        "A PATH on the root filesystem's own volume (a btrfs root subvolume, `/` on a logical volume) cannot be mounted over \
         for a running program. COMMAND then runs in a mount namespace of its own whose root is the snapshot of `/` \
         (`pivot_root`, the old root detached), with the run's other snapshots at their places: its programs, libraries and \
         paths are found there, frozen and read-only. Shown live, as they are: every filesystem mounted below `/` that no \
         snapshot covers (`/proc`, `/sys`, `/dev`, `/run`, a tmpfs `/tmp`, `/boot`, a separate `/usr`, the disk a repository \
         is on, a volume not named as a PATH such as `/home`), because a program needs them and each is a volume of its own, \
         frozen only when it is a PATH; and `/tmp` and `/var/tmp`, the scratch space programs write to. The log names them \
         (`shown live:`). A repository or cache on the root volume itself cannot be written: put it elsewhere. `/proc` is the \
         live system's; a backup of `/` stays on one filesystem (`--one-file-system`) or excludes `/proc`, `/sys` and `/dev`.",
    ));
    o.push('\n');
    o.push_str(".SH EXIT STATUS\n");
    o.push_str(&roff(
        "rsync's own status passes through exactly (0, 23, 24, ...); a signal N that kills rsync becomes 128+N. snaprsync's \
         own failures use statuses no rsync version uses, and print one line on stderr that names the cause and the fix:",
    ));
    o.push('\n');
    for (code, meaning) in STATUSES {
        let _ = writeln!(o, ".TP\n.B {code}\n{}", roff(meaning));
    }
    let _ = writeln!(o, ".TP\n.B 128+N\n{}", roff(SIGNAL_STATUS));
    o.push_str(".SH FILES\n");
    for (file, what) in files() {
        let _ = writeln!(o, ".TP\n.I {}\n{}", esc(&file), roff(&what));
    }
    o.push_str(".SH ENVIRONMENT\n");
    for (var, what) in [
        ("PATH", "where the real rsync is looked for, unless `rsync_path` names it; a snaprsync found there is skipped"),
        ("SSH_ORIGINAL_COMMAND", "with `--snap-restrict`: the rsync command the client sent, read without a shell and checked"),
        ("SSH_CONNECTION", "with `--snap-restrict`: logged with each refusal"),
        ("RSYNC_*", "cleared for the rsync of a restricted key"),
    ] {
        let _ = writeln!(o, ".TP\n.B {}\n{}", esc(var), roff(what));
    }
    o.push_str(".SH EXAMPLES\n");
    para(&mut o, "A pull with plain rsync:");
    example(&mut o, &format!("rsync -a --rsync-path={BIN} root@client:/srv/data/ /backup/data/"));
    para(&mut o, "dirvish, in the vault's `default.conf` (`rsync-client:` becomes `--rsync-path=`):");
    example(&mut o, &format!("client: client.example.org\ntree: /srv\nrsync-client: {BIN}"));
    para(&mut o, "rsnapshot, in `rsnapshot.conf` (fields separated by tabs):");
    example(
        &mut o,
        &format!(
            "rsync_long_args\t--delete --numeric-ids --relative --delete-excluded --rsync-path={BIN}\nbackup\troot@client.example.org:/srv/\tclient/"
        ),
    );
    para(&mut o, "BackupPC, in `config.pl` (its `--protect-args` block is read and snapshotted too):");
    example(&mut o, &format!("$Conf{{RsyncClientPath}} = '{BIN}';"));
    para(&mut o, "A backup key that can only read `/srv` and `/home`, from snapshots, in `/root/.ssh/authorized_keys`:");
    example(
        &mut o,
        &format!("command=\"{BIN} --snap-restrict --snap-allow=/srv --snap-allow=/home\",restrict ssh-ed25519 AAAA... backup@server"),
    );
    para(&mut o, "Checking a client and that key once:");
    example(
        &mut o,
        &format!(
            "snaprsync doctor /srv /home \\\n    --authorized-keys-line='command=\"{BIN} --snap-restrict --snap-allow=/srv\",restrict ssh-ed25519 AAAA...'"
        ),
    );
    o.push_str(".SH SEE ALSO\n");
    o.push_str(".BR snaprsync.toml (5),\n.BR rsync (1),\n.BR btrfs\\-subvolume (8),\n.BR lvcreate (8),\n.BR journalctl (1),\n.BR dirvish (8),\n.BR rsnapshot (1)\n");
    o
}

/// The files snaprsync reads and writes on this platform, and what they are.
fn files() -> Vec<(String, String)> {
    let default = |name: &str| KEYS.iter().find(|k| k.name == name).map(default_text).unwrap_or_default().trim_matches('"').to_owned();
    vec![
        (crate::host::default_config_path().display().to_string(), "the config file, if it exists; see snaprsync.toml(5)".into()),
        (
            default("state_dir"),
            "`state_dir`: one record per running snapshot run, written before it snapshots, for crash recovery; a file there \
             that is not a record is set aside as `*.corrupt`"
                .into(),
        ),
        (
            format!("MOUNT/{}/", default("btrfs_snapshot_dir")),
            "`btrfs_snapshot_dir`: the subvolume at the root of each btrfs mount that holds snaprsync's snapshots, \
             named `snaprsync-TIME-pPID-N`"
                .into(),
        ),
        ("/usr/share/doc/snaprsync/config.sample.toml".into(), "a commented sample config with every key and its default".into()),
    ]
}

/// snaprsync.toml(5).
pub fn man5() -> String {
    let mut o = String::new();
    let _ = writeln!(o, ".TH SNAPRSYNC.TOML 5 \"\" \"snaprsync {VERSION}\" \"File Formats\"");
    o.push_str(".nh\n.ad l\n");
    o.push_str(".SH NAME\nsnaprsync.toml \\- the configuration of snaprsync\n");
    let _ = writeln!(o, ".SH SYNOPSIS\n.I {}", esc(&crate::host::default_config_path().display().to_string()));
    o.push_str(".SH DESCRIPTION\n");
    o.push_str(&roff(
        "TOML, read once per run: the default file if it exists, or the file named by `--snap-config=FILE`. Every key is \
         optional and sits at the top level (there are no tables); without a file the defaults apply. A named file that is \
         missing is an error (status 80); so is an unknown key or a bad value, reported on one line that names the file, \
         the key, its line, the bad value as written and what the key accepts.",
    ));
    o.push('\n');
    o.push_str(".SH KEYS\n");
    for k in KEYS {
        let _ = writeln!(o, ".TP\n\\fB{}\\fR (default: {})", esc(k.name), roff(&default_text(k)));
        let _ = writeln!(o, "{}. Accepts: {}.", roff(k.about), roff(k.accepts));
    }
    o.push_str(".SH LOGGING\n");
    o.push_str(&roff(
        "Warnings and errors always go to stderr, which backup servers show or log. Records at `log_level` go where `log` \
         says, and to `log_file` as well. The default, `log = \"auto\"` with `log_level = \"info\"`, keeps unattended nights \
         quiet: a good run prints nothing on stderr, so the backup server's report and cron's mail stay empty, and leaves one \
         summary line in the journal (or syslog) with the run stamp, sources, provider, times and rsync's status \
         (`journalctl -t snaprsync`). In the journal each of those is a field of its own, such as `SNAPRSYNC_RUN` and \
         `SNAPRSYNC_RSYNC_STATUS`.",
    ));
    o.push('\n');
    o.push_str(".SH EXAMPLE\n");
    example(
        &mut o,
        "# /etc/snaprsync/config.toml\non_snapshot_failure = \"fail\"\nlog = \"journald\"\nlog_level = \"info\"\nsnapshot_removal = \"background\"",
    );
    para(&mut o, "Every key with its default, commented out, is in `/usr/share/doc/snaprsync/config.sample.toml`.");
    o.push_str(".SH SEE ALSO\n.BR snaprsync (1)\n");
    o
}

/// Wraps `text` into comment lines of at most 78 columns.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 78 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// The commented sample config: every key of this platform with its default.
pub fn sample_config() -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# snaprsync {VERSION}: copy to {} and edit.", crate::host::default_config_path().display());
    o.push_str("# Every key is optional; each is shown with its default, commented out.\n# snaprsync.toml(5) says more.\n");
    let here = if cfg!(windows) { Os::Windows } else { Os::Any };
    for k in KEYS.iter().filter(|k| k.os == Os::Any || k.os == here) {
        o.push('\n');
        comment(&mut o, &format!("{}.", sentence(k.about)));
        comment(&mut o, &format!("Accepts: {}.", plain(k.accepts)));
        if k.unset.is_empty() {
            let _ = writeln!(o, "#{} = {}", k.name, default_text(k));
        } else {
            comment(&mut o, &format!("Default: {}; for example:", plain(k.unset)));
            let _ = writeln!(o, "#{} = {}", k.name, k.example);
        }
    }
    o
}

/// The first clause of `about`, plain and whole (`help` wraps it rather than cut it).
fn clause(about: &str) -> String {
    let plain = plain(about);
    plain.split("; ").next().unwrap_or("").trim().to_owned()
}

/// `text` after a first column of `indent`, wrapped at word boundaries to fit `width`.
fn wrapped(o: &mut String, first: &str, indent: usize, text: &str, width: usize) {
    let mut line = format!("{first:<indent$}");
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > width {
            o.push_str(line.trim_end());
            o.push('\n');
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    o.push_str(line.trim_end());
    o.push('\n');
}

/// `snaprsync help` (also `--help`, `-h`, and no arguments at a terminal),
/// within 80 columns.
pub fn usage() -> String {
    let mut o = String::from(
        "snaprsync: rsync that reads from a point-in-time snapshot\n\n\
         Use it wherever a backup server names the remote rsync:\n  \
         rsync --rsync-path=snaprsync ...        dirvish: rsync-client: snaprsync\n  \
         rsnapshot: rsync_long_args ... --rsync-path=snaprsync\n\n\
         Usage:\n  snaprsync [--snap-OPTION...] RSYNC-ARGS...\n  snaprsync [--snap-config=FILE] COMMAND [ARGS]\n\n\
         Options (before rsync's arguments):\n",
    );
    for opt in OPTIONS {
        let name = format!("{}{}", opt.name, opt.value.map(|v| format!("={v}")).unwrap_or_default());
        wrapped(&mut o, &format!("  {name:<24}"), 27, &clause(opt.about), 80);
    }
    o.push_str("\nCommands:\n");
    for c in COMMANDS {
        let head = format!("{} {}", c.name, c.args).trim_end().to_owned();
        if head.len() < 24 {
            wrapped(&mut o, &format!("  {head:<24}"), 27, &clause(c.about), 80);
        } else {
            let _ = writeln!(o, "  {head}");
            wrapped(&mut o, "", 27, &clause(c.about), 80);
        }
    }
    let first = STATUSES.first().map_or(0, |s| s.0);
    let last = STATUSES.last().map_or(0, |s| s.0);
    let _ = write!(
        o,
        "\nTo copy a local directory named like a command, write ./list.\n\
         Exit statuses: rsync's own, or {first}-{last} for snaprsync's (man snaprsync).\n\
         Check a client once with: snaprsync doctor [PATH...]\n         This is snaprsync's help; for rsync's own, run: rsync --help"
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `.TP` entries of a man page section, as their first line.
    fn entries<'a>(page: &'a str, section: &str) -> Vec<&'a str> {
        let start = page.find(&format!(".SH {section}\n")).unwrap_or_else(|| panic!("no section {section}"));
        let body = &page[start + 5 + section.len()..];
        let body = &body[..body.find("\n.SH ").unwrap_or(body.len())];
        let lines: Vec<&str> = body.lines().collect();
        lines.windows(2).filter(|w| w[0] == ".TP").map(|w| w[1]).collect()
    }

    /// The rows of the first Markdown table under `heading` in README.
    fn readme_rows(heading: &str) -> Vec<Vec<String>> {
        let readme = include_str!("../README.md");
        let start = readme.find(&format!("\n## {heading}\n")).unwrap_or_else(|| panic!("README has no {heading}"));
        readme[start..]
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_owned()).collect())
            .collect()
    }

    #[test]
    fn man5_lists_every_key_with_its_default() {
        let page = man5();
        let listed: Vec<&str> = entries(&page, "KEYS");
        assert_eq!(listed.len(), KEYS.len());
        for (line, k) in listed.iter().zip(KEYS) {
            let want = format!("\\fB{}\\fR (default: {})", esc(k.name), roff(&default_text(k)));
            assert_eq!(*line, want);
        }
    }

    #[test]
    fn man1_lists_every_status_option_and_command() {
        let page = man1();
        let statuses: Vec<&str> = entries(&page, "EXIT STATUS");
        let mut want: Vec<String> = STATUSES.iter().map(|(c, _)| format!(".B {c}")).collect();
        want.push(".B 128+N".into());
        assert_eq!(statuses, want);
        let options = entries(&page, "OPTIONS");
        assert_eq!(options, OPTIONS.iter().map(|o| option_roff(o.name, o.value)).collect::<Vec<_>>());
        let commands = entries(&page, "COMMANDS");
        assert_eq!(commands.len(), COMMANDS.len());
        for (line, c) in commands.iter().zip(COMMANDS) {
            assert!(line.starts_with(&format!("\\fB{}\\fR", esc(c.name))), "{line}");
        }
        assert!(!page.contains("SNAPRSYNC_FAULT"), "release builds ignore it, so the page does not name it");
        for client in ["rsync -a", "dirvish", "rsnapshot", "BackupPC", "authorized_keys", "doctor"] {
            assert!(page.contains(&esc(client)), "no example for {client}");
        }
    }

    #[test]
    fn readme_exit_statuses_are_the_codes() {
        let rows = readme_rows("Exit statuses");
        let mut want: Vec<Vec<String>> = STATUSES.iter().map(|(c, m)| vec![c.to_string(), (*m).to_owned()]).collect();
        want.push(vec!["128+N".into(), SIGNAL_STATUS.into()]);
        assert_eq!(rows, want, "README \"Exit statuses\" must say what error::STATUSES says");
    }

    /// README gives Linux's defaults (and Windows' in words).
    #[cfg(target_os = "linux")]
    #[test]
    fn readme_config_keys_are_the_codes() {
        let rows = readme_rows("Configuration");
        let keys: Vec<(String, String)> = rows.iter().map(|r| (r[0].trim_matches('`').to_owned(), r[1].clone())).collect();
        let want: Vec<(String, String)> = KEYS
            .iter()
            .map(|k| {
                let d = default_text(k);
                let shown = if k.unset.is_empty() { format!("`{d}`") } else { d };
                (k.name.to_owned(), shown)
            })
            .collect();
        assert_eq!(keys, want, "README \"Configuration\" must list config::KEYS with their defaults, in order");
    }

    #[test]
    fn roff_escapes() {
        assert_eq!(roff("`--snap-x` a\\b"), "\\fB\\-\\-snap\\-x\\fR a\\eb");
        assert_eq!(esc(".dot\n'q"), "\\&.dot\n\\(aqq");
        assert_eq!(esc("é—"), "\\[u00E9]\\[u2014]");
    }

    #[test]
    fn sample_config_parses_commented_and_uncommented() {
        let text = sample_config();
        let path = std::path::Path::new("sample.toml");
        assert_eq!(crate::config::Config::parse(&text, path).unwrap(), crate::config::Config::default());
        let open: String = text
            .lines()
            .map(|l| l.strip_prefix('#').filter(|r| !r.starts_with(' ') && !r.is_empty()).unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let cfg = crate::config::Config::parse(&open, path).unwrap_or_else(|e| panic!("{e}\n{open}"));
        assert_eq!(cfg.provider, crate::config::ProviderChoice::Auto);
        for k in KEYS.iter().filter(|k| k.os == Os::Any) {
            assert!(text.contains(&format!("\n#{} = ", k.name)), "{} missing", k.name);
        }
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
    }

    /// `help` fits 80 columns, and cuts nothing: every option's and command's
    /// first clause is there whole.
    #[test]
    fn help_fits_80_columns_without_cutting() {
        let text = usage();
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
        let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for about in OPTIONS.iter().map(|o| o.about).chain(COMMANDS.iter().map(|c| c.about)) {
            let c = clause(about).split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(joined.contains(&c), "{c:?} is not whole in:\n{text}");
        }
        assert!(text.trim_end().ends_with("rsync --help"), "{text}");
    }

    #[test]
    fn short_descriptions() {
        assert_eq!(short("list `x`; more"), "list x");
        assert_eq!(short("a (b)"), "a");
        let long = short(&"word ".repeat(30));
        assert!(long.len() <= 63 && long.ends_with("..."), "{long}");
        assert_eq!(sentence("`x` y"), "X y");
    }

    #[test]
    fn usage_names_every_option_and_command() {
        let u = usage();
        for o in OPTIONS {
            assert!(u.contains(o.name));
        }
        for c in COMMANDS {
            assert!(u.contains(&format!("  {}", c.name)));
        }
    }

    /// README keeps Windows in its own section: outside it, prose names
    /// Windows only in the overview, in a line pointing to the section, for
    /// the config's path, or about the code; the tables hold both platforms'
    /// values by design.
    #[test]
    fn readme_keeps_windows_in_its_own_section() {
        let allowed = ["", "What it is, and why", "Configuration", "Windows", "Architecture", "Development"];
        let mut section = "";
        let mut stray = Vec::new();
        for line in include_str!("../README.md").lines() {
            if let Some(h) = line.strip_prefix("## ") {
                section = h;
            } else if line.contains("Windows") && !line.starts_with('|') && !line.contains("(#windows)") && !allowed.contains(&section) {
                stray.push(format!("{section}: {line}"));
            }
        }
        assert!(stray.is_empty(), "README: Windows material outside its section \"Windows\":\n{}", stray.join("\n"));
    }
}
