//! Restricted mode end to end: a key pinned in `authorized_keys` to
//! `snaprsync --snap-restrict --snap-allow=DIR`, a real sshd, a real rsync
//! client and a loop-mounted btrfs. Hostile requests are refused with status
//! 85, one stderr line, a log entry, no snapshot and nothing changed; the pulls
//! dirvish, rsnapshot and BackupPC make go through and read the snapshot.
//! Needs rsync, btrfs-progs, openssh-server and -client.

use std::path::{Path, PathBuf};

use crate::support::forced::ForcedKey;
use crate::support::rig::{Remote, Rig};
use crate::support::{snaprsync, tree, write_config};
use testbed::cmd::cmd;

/// A rig whose source tree holds symlinks that lead out of it, a secret next
/// to it (outside the allowed directory, on the same btrfs), and a key that
/// may read only the source tree.
struct Restricted {
    rig: Rig,
    key: ForcedKey,
    secret: PathBuf,
}

const SECRET: &str = "not for the backup server\n";
const PWNED: &str = "/tmp/srs-restrict-pwned";

impl Restricted {
    fn new(tag: &str) -> Restricted {
        let rig = Rig::build(tag).data(tree::make_sample).start();
        let secret = rig.fs.mnt().join("secret");
        std::fs::create_dir(&secret).unwrap();
        std::fs::write(secret.join("secret.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink(&secret, rig.src().join("link-out")).unwrap();
        std::os::unix::fs::symlink("../secret/secret.txt", rig.src().join("rel-out")).unwrap();
        let key = ForcedKey::new(rig.sshd(), "restricted", &forced_command(&rig, &format!("--snap-allow={}", rig.src().display())));
        Restricted { rig, key, secret }
    }

    fn src(&self) -> PathBuf {
        self.rig.src()
    }

    /// Replaces `{S}` (the allowed tree) and `{O}` (the secret directory outside it).
    fn fill(&self, s: &str) -> String {
        s.replace("{S}", &self.src().display().to_string()).replace("{O}", &self.secret.display().to_string())
    }

    fn refusals_logged(&self) -> usize {
        self.rig.log().lines().filter(|l| l.contains("refused")).count()
    }

    /// Nothing changed, nothing snapshotted, nothing left behind.
    fn assert_untouched(&self, what: &str, before: &std::collections::BTreeMap<String, String>) {
        assert_eq!(self.rig.snapshots_taken(), 0, "{what}: a refused request must not snapshot\n--- snaprsync log ---\n{}", self.rig.log());
        self.rig.fs.assert_no_snapshot_left();
        tree::assert_same(&format!("{what}: the allowed tree must not change"), before, &tree::describe(&self.src()));
        assert_eq!(std::fs::read_to_string(self.secret.join("secret.txt")).unwrap(), SECRET, "{what}");
        assert!(!Path::new(PWNED).exists(), "{what}: a command ran");
    }
}

fn forced_command(rig: &Rig, allow: &str) -> String {
    format!("{} --snap-config={} --snap-restrict {allow}", snaprsync(), rig.config.display())
}

/// What the client asks for: a command line for `SSH_ORIGINAL_COMMAND` (none:
/// a shell), and what to send on stdin (a protect-args block).
struct Hostile {
    name: &'static str,
    command: Option<String>,
    stdin: Option<Vec<u8>>,
    /// A word the one stderr line must hold.
    says: &'static str,
}

fn hostile(name: &'static str, command: &str, says: &'static str) -> Hostile {
    Hostile { name, command: Some(command.to_owned()), stdin: None, says }
}

/// A protect-args block as an rsync client sends it.
fn block(args: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    for a in std::iter::once(&"rsync").chain(args) {
        b.extend_from_slice(a.as_bytes());
        b.push(0);
    }
    b.push(0);
    b
}

const PULL: &str = "rsync --server --sender -logDtpre.iLsfxCIvu";

fn hostile_table() -> Vec<Hostile> {
    let mut t = vec![
        // Other programs and no command at all.
        Hostile { name: "no command (a shell)", command: None, stdin: None, says: "SSH_ORIGINAL_COMMAND" },
        hostile("a shell", "sh -c id", "not rsync"),
        hostile("bash", "/bin/bash -i", "not rsync"),
        hostile("ls", "ls -la /", "not rsync"),
        hostile("scp", "scp -f /etc/shadow", "not rsync"),
        hostile("sudo", "sudo rsync --server --sender -r . /", "not rsync"),
        hostile("a look-alike name", "/tmp/rsync2 --server --sender -r . {S}/", "not rsync"),
        // Not an rsync server.
        hostile("rsync daemon", "rsync --daemon --config=/tmp/x.conf", "--server"),
        hostile("rsync version", "rsync --version", "--server"),
        hostile("rsync as a client", "rsync -a /etc/ /tmp/stolen/", "--server"),
        hostile("--server not first", "rsync -v --server --sender . {S}/", "--server"),
        hostile("--server then --daemon", "rsync --server --daemon .", "--daemon"),
        // snaprsync's own options.
        hostile("--snap-config injection", &format!("{PULL} --snap-config=/tmp/evil.toml . {{S}}/"), "--snap-"),
        hostile("--snap-allow injection", "rsync --server --sender --snap-allow=/ -r . /", "--snap-"),
        // Shell syntax: several commands, substitutions, redirections, globs.
        hostile("semicolon", &format!("{PULL} . {{S}}/; touch {PWNED}"), "shell syntax"),
        hostile("and-and", &format!("{PULL} . {{S}}/ && touch {PWNED}"), "shell syntax"),
        hostile("pipe", &format!("{PULL} . {{S}}/ | tee {PWNED}"), "shell syntax"),
        hostile("background", &format!("{PULL} . {{S}}/ & touch {PWNED}"), "shell syntax"),
        hostile("redirection", &format!("{PULL} . {{S}}/ > {PWNED}"), "shell syntax"),
        hostile("command substitution", &format!("{PULL} . $(touch {PWNED})"), "shell syntax"),
        hostile("backticks", &format!("{PULL} . `touch {PWNED}`"), "shell syntax"),
        hostile("variable", &format!("{PULL} . $HOME/"), "shell syntax"),
        hostile("expansion in double quotes", &format!("{PULL} . \"$(touch {PWNED})\""), "shell syntax"),
        hostile("subshell", &format!("{PULL} . (touch {PWNED})"), "shell syntax"),
        hostile("brace expansion", &format!("{PULL} . {{S}}/{{a,b}}"), "shell syntax"),
        hostile("glob", &format!("{PULL} . /etc/*"), "shell syntax"),
        hostile("tilde", &format!("{PULL} . ~root/"), "shell syntax"),
        hostile("unterminated quote", &format!("{PULL} . '{{S}}/"), "shell syntax"),
        // Control bytes (a NUL cannot pass sshd: it refuses such an exec request).
        hostile("newline", &format!("{PULL} . {{S}}/\ntouch {PWNED}"), "newline"),
        hostile("escaped newline", &format!("{PULL} . {{S}}/\\\ntouch {PWNED}"), "newline"),
        hostile("quoted newline", &format!("{PULL} . '{{S}}/\nx'"), "newline"),
        hostile("carriage return", &format!("{PULL} . {{S}}/\r"), "carriage return"),
        // Oversized.
        hostile("100 KiB command", &format!("{PULL} . /{}", "a".repeat(100 * 1024)), "more than the"),
        // Path traversal and symlink escape.
        hostile("outside path", &format!("{PULL} . /etc/"), "outside"),
        hostile("dot-dot", &format!("{PULL} . {{S}}/../secret/"), "outside"),
        hostile("dot-dot to root", &format!("{PULL} . {{S}}/../../../../../../"), "outside"),
        hostile("quoted dot-dot", &format!("{PULL} . '{{S}}/a/../../secret'"), "outside"),
        hostile("symlink out, contents", &format!("{PULL} . {{S}}/link-out/"), "outside"),
        hostile("symlink out, file below", &format!("{PULL} . {{S}}/link-out/secret.txt"), "outside"),
        hostile("relative symlink out", &format!("{PULL} . {{S}}/rel-out"), "outside"),
        hostile("directory argument outside", "rsync --server --sender -r {O} secret.txt", "outside"),
        hostile("directory argument, dot-dot", "rsync --server --sender -r {S} ../secret", "outside"),
        hostile("directory argument alone", "rsync --server --sender -r /", "outside"),
        hostile("-R and no path: the login directory", "rsync --server --sender -rRe.iLsfxCIvu .", "outside"),
        hostile("wildcard, escaped", &format!("{PULL} . {{S}}/\\*"), "wildcards"),
        // Options: injection of forbidden ones.
        hostile("-L", "rsync --server --sender -logDtpLre.iLsfxCIvu . {S}/", "symlinks"),
        hostile("--copy-links", "rsync --server --sender -r --copy-links . {S}/", "symlinks"),
        hostile("--copy-unsafe-links", "rsync --server --sender -r --copy-unsafe-links . {S}/", "symlinks"),
        hostile("-k", "rsync --server --sender -rk . {S}/", "symlinks"),
        hostile("--remove-source-files", &format!("{PULL} --remove-source-files . {{S}}/"), "deletes"),
        hostile("-e a shell", "rsync --server --sender -r -e 'sh -c id' . {S}/", "protocol flags"),
        hostile("--rsh", "rsync --server --sender -r --rsh=ssh . {S}/", "program"),
        hostile("--rsync-path", "rsync --server --sender -r --rsync-path=/bin/sh . {S}/", "program"),
        hostile("--files-from a local file", "rsync --server --sender -r --files-from=/etc/passwd . {S}/", "--files-from"),
        hostile("--files-from stdin", "rsync --server --sender -r --files-from=- --from0 . {S}/", "--files-from"),
        hostile("--exclude-from", "rsync --server --sender -r --exclude-from=/etc/shadow . {S}/", "local file"),
        hostile("--include-from", "rsync --server --sender -r --include-from=/etc/shadow . {S}/", "local file"),
        hostile("--filter merge", "rsync --server --sender -r '--filter=merge /etc/shadow' . {S}/", "filter"),
        hostile("--log-file", &format!("rsync --server --sender -r --log-file={PWNED} . {{S}}/"), "writes a file"),
        hostile("--temp-dir outside", "rsync --server --sender -r --temp-dir=/tmp . {S}/", "outside"),
        hostile("--write-devices", "rsync --server --sender -r --write-devices . {S}/", "device"),
        hostile("--copy-devices", "rsync --server --sender -r --copy-devices . {S}/", "device"),
        hostile("--config", "rsync --server --sender --config=/tmp/x.conf . {S}/", "daemon"),
        hostile("--remote-option", "rsync --server --sender -r -M--log-file=/tmp/x . {S}/", "passes options"),
        hostile("popt expansion", "rsync --server --sender -r '--log-format=x!#:+' . {S}/", "!#:+"),
        hostile("unknown option", "rsync --server --sender -r --frobnicate . {S}/", "not an rsync option"),
        // Writing without --snap-allow-write.
        hostile("push", "rsync --server -logDtpre.iLsfxCIvu . {S}/", "push"),
        hostile("push with -s", "rsync --server -se.iLsfxCIvu", "push"),
    ];
    // Protect-args smuggling: a harmless command line, the payload on stdin.
    let smuggle = |name, args: &[&str], says| Hostile {
        name,
        command: Some("rsync --server --sender -se.iLsfxCIvu".into()),
        stdin: Some(block(args)),
        says,
    };
    t.push(smuggle("-s: --remove-source-files", &["-logDtpr", "--remove-source-files", ".", "{S}/"], "deletes"));
    t.push(smuggle("-s: -L", &["-rL", ".", "{S}/"], "symlinks"));
    t.push(smuggle("-s: --rsync-path", &["-r", "--rsync-path=/bin/sh", ".", "{S}/"], "program"));
    t.push(smuggle("-s: path outside", &["-r", ".", "/etc/"], "outside"));
    t.push(smuggle("-s: dot-dot", &["-r", ".", "{S}/../secret/"], "outside"));
    t.push(smuggle("-s: symlink out", &["-r", ".", "{S}/link-out/"], "outside"));
    t.push(smuggle("-s: glob", &["-r", ".", "{S}/*"], "wildcards"));
    t.push(smuggle("-s: --daemon", &["--daemon", ".", "{S}/"], "daemon"));
    t.push(smuggle("-s: --log-file", &["-r", &format!("--log-file={PWNED}"), ".", "{S}/"], "writes a file"));
    t.push(smuggle("-s: newline in a name", &["-r", ".", "{S}/../secret\n"], "outside"));
    // What rsync would read differently from the check: a charset conversion,
    // `..` collapsed as text, kernel filesystems; and a value lifting a limit.
    t.push(hostile("--iconv", &format!("{PULL} --iconv=ASCII//TRANSLIT . {{S}}/"), "--snap-allow-iconv"));
    t.push(hostile(
        "-s with --iconv on the command line",
        "rsync --server --sender -se.iLsfxCIvu --iconv=ASCII//TRANSLIT",
        "--snap-allow-iconv",
    ));
    t.push(smuggle("-s: --iconv", &["-r", "--iconv=UTF-8,ASCII//TRANSLIT", ".", "{S}/\u{2025}/secret/"], "--snap-allow-iconv"));
    t.push(smuggle("-s: dot-dot that resolves inside", &["-r", ".", "{S}/a/b/../../top.txt"], "`..`"));
    t.push(hostile("/proc/self/root", &format!("{PULL} . /proc/self/root{{S}}/"), "/proc"));
    t.push(hostile("/proc/1/root", &format!("{PULL} . /proc/1/root{{S}}/"), "/proc"));
    t.push(hostile("directory argument /proc", "rsync --server --sender -r /proc 1/root{S}/", "/proc"));
    t.push(smuggle("-s: /proc/1/root", &["-r", ".", "/proc/1/root{S}/"], "/proc"));
    t.push(hostile("/dev/fd/0", &format!("{PULL} . /dev/fd/0"), "/dev"));
    t.push(hostile("--max-alloc=0", &format!("{PULL} --max-alloc=0 . {{S}}/"), "lifts rsync's cap"));
    t.push(smuggle("-s: a newline forging a log line", &["-r", ".", "{O}/secret.txt\n2026-01-01T00:00:00Z (1) accepted"], "outside"));
    t
}

/// At least 30 hostile requests through sshd: each one exits 85 with one
/// stderr line naming the cause, logs the refusal, and leaves no snapshot and
/// no trace.
#[test]
fn hostile_requests_are_refused() {
    let w = Restricted::new("hostile");
    let before = tree::describe(&w.src());
    let table = hostile_table();
    assert!(table.len() >= 30);
    for h in &table {
        let logged = w.refusals_logged();
        let mut c = w.key.ssh(h.command.as_deref().map(|c| w.fill(c)).as_deref());
        if let Some(stdin) = &h.stdin {
            c = c.stdin(w.fill(&String::from_utf8_lossy(stdin)).into_bytes());
        }
        let out = c.run();
        let why = format!("{}\n{}\n--- snaprsync log ---\n{}", h.name, out.report(), w.rig.log());
        assert_eq!(out.code(), Some(85), "{why}");
        assert!(out.stdout.is_empty(), "nothing may reach stdout: {why}");
        let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "exactly one stderr line: {why}");
        assert!(lines[0].starts_with("snaprsync: refused") && lines[0].contains(h.says), "{why}");
        assert!(w.refusals_logged() > logged, "the refusal must be logged: {why}");
        w.assert_untouched(h.name, &before);
    }
    // The log names the client (SSH_CONNECTION) and the offending argument.
    let log = w.rig.log();
    assert!(
        log.lines().any(|l| l.contains("restricted mode refused")
            && l.contains("--remove-source-files")
            && l.contains("SSH_CONNECTION=127.0.0.1 ")),
        "{log}"
    );
}

/// Real rsync clients asking for what the key does not allow: refused before
/// any transfer (the client reports snaprsync's 85, or its own 12 when it saw
/// the connection close first), nothing copied, nothing deleted, no snapshot.
#[test]
fn hostile_rsync_clients_are_refused() {
    let w = Restricted::new("clients");
    let before = tree::describe(&w.src());
    let s = w.src().display().to_string();
    let list = w.rig.work.path().join("list");
    std::fs::write(&list, "top.txt\nlink-out/secret.txt\n").unwrap();
    let local = w.rig.dest("local");
    tree::make_sample(&local);
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("-L", vec!["-a".into(), "-L".into(), format!("{s}/")], "symlinks"),
        ("--copy-unsafe-links", vec!["-a".into(), "--copy-unsafe-links".into(), format!("{s}/")], "symlinks"),
        ("-k", vec!["-a".into(), "-k".into(), format!("{s}/")], "symlinks"),
        ("--remove-source-files", vec!["-a".into(), "--remove-source-files".into(), format!("{s}/")], "deletes"),
        ("symlink out", vec!["-a".into(), format!("{s}/link-out/")], "outside"),
        ("dot-dot", vec!["-a".into(), format!("{s}/../secret/")], "outside"),
        ("--rsync-path=/bin/sh", vec!["-a".into(), "--rsync-path=/bin/sh".into(), format!("{s}/")], "not rsync"),
        ("--files-from", vec!["-a".into(), format!("--files-from={}", list.display()), format!("{s}/")], "--files-from"),
        ("-M--log-file", vec!["-a".into(), format!("-M--log-file={PWNED}"), format!("{s}/")], "writes a file"),
        ("-s --remove-source-files", vec!["-s".into(), "-a".into(), "--remove-source-files".into(), format!("{s}/")], "deletes"),
        ("-s --copy-unsafe-links", vec!["-s".into(), "-a".into(), "--copy-unsafe-links".into(), format!("{s}/")], "symlinks"),
        ("-s outside", vec!["-s".into(), "-a".into(), format!("{}/", w.secret.display())], "outside"),
        ("-s symlink out", vec!["-s".into(), "-a".into(), format!("{s}/link-out/")], "outside"),
    ];
    for (k, (name, args, says)) in cases.iter().enumerate() {
        let dest = w.rig.dest(&format!("dst{k}"));
        let (src_arg, opts) = args.split_last().unwrap();
        let mut all: Vec<String> = opts.to_vec();
        all.push(format!("{}:{src_arg}", w.key.host));
        all.push(dest.display().to_string());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let logged = w.refusals_logged();
        let out = w.key.rsync(&all);
        let why = format!("{name}\n{}\n--- snaprsync log ---\n{}", out.report(), w.rig.log());
        assert!(matches!(out.code(), Some(85 | 12)), "{why}");
        assert!(out.stderr.contains("snaprsync: refused") && out.stderr.contains(says), "{why}");
        assert!(w.refusals_logged() > logged, "{why}");
        assert!(!dest.join("top.txt").exists() && !dest.join("secret.txt").exists(), "nothing may be copied: {why}");
        w.assert_untouched(name, &before);
    }
    // A push: the key may not write.
    let out = w.key.rsync(&["-a", &format!("{}/", local.display()), &format!("{}:{s}/pushed/", w.key.host)]);
    assert!(matches!(out.code(), Some(85 | 12)) && out.stderr.contains("push"), "push\n{}", out.report());
    assert!(!w.src().join("pushed").exists());
    w.assert_untouched("push", &before);
}

/// The pulls backup tools make, through the same key: they succeed, read the
/// snapshot (snaprsync took and removed one), and copy the tree exactly; the
/// symlink that leads out is copied as a symlink, never followed.
#[test]
fn backup_tool_pulls_succeed_from_the_snapshot() {
    let w = Restricted::new("legit");
    let s = w.src().display().to_string();
    let src = tree::describe(&w.src());
    let pulls: &[(&str, &[&str], bool)] = &[
        ("rsync -a", &["-a"], false),
        // dirvish: -vrltH --delete, plus -pgo, --stats, -D, --numeric-ids, -x
        ("dirvish", &["-vrltH", "--delete", "-pgo", "--stats", "-D", "--numeric-ids", "-x"], false),
        // rsnapshot's rsync_short_args and rsync_long_args
        ("rsnapshot", &["-a", "--delete", "--numeric-ids", "--relative", "--delete-excluded"], true),
        // BackupPC 4 sends its arguments protected
        (
            "BackupPC",
            &[
                "-s",
                "--numeric-ids",
                "--perms",
                "--owner",
                "--group",
                "-D",
                "--links",
                "--hard-links",
                "--times",
                "--recursive",
                "--delete",
                "--partial",
                "--one-file-system",
                "--super",
            ],
            false,
        ),
        ("-s -H --numeric-ids with a checksum", &["-s", "-aH", "--numeric-ids", "-c", "-z"], false),
    ];
    for (k, (name, args, relative)) in pulls.iter().enumerate() {
        let dest = w.rig.dest(&format!("pull{k}"));
        let remote = format!("{}:{s}/", w.key.host);
        let mut all: Vec<&str> = args.to_vec();
        all.push(&remote);
        let d = dest.display().to_string();
        all.push(&d);
        let out = w.rig.assert_snapshotted(name, || w.key.rsync(&all));
        assert!(out.status.success(), "{name}\n{}\n--- snaprsync log ---\n{}", out.report(), w.rig.log());
        let copied = if *relative { dest.join(s.trim_start_matches('/')) } else { dest.clone() };
        tree::assert_same(&format!("{name} through the restricted key"), &src, &tree::describe(&copied));
        let link = std::fs::symlink_metadata(copied.join("link-out")).unwrap();
        assert!(link.file_type().is_symlink(), "{name}: the symlink out must stay a symlink");
        assert!(!out.stdout_str().contains(SECRET.trim()), "{name}");
    }
    w.rig.fs.assert_no_snapshot_left();
}

/// A key with `--snap-allow-write=DIR` may push into DIR (no snapshot is made
/// for a receiver) and nowhere else; it still pulls from its read directory.
#[test]
fn allow_write_permits_pushes_there_only() {
    let w = Restricted::new("write");
    let inbox = w.rig.fs.mnt().join("in");
    std::fs::create_dir(&inbox).unwrap();
    let allow = format!("--snap-allow={} --snap-allow-write={}", w.src().display(), inbox.display());
    let key = ForcedKey::new(w.rig.sshd(), "writer", &forced_command(&w.rig, &allow));
    let local = w.rig.dest("local");
    tree::make_sample(&local);
    let out = key.rsync(&["-a", "--delete", &format!("{}/", local.display()), &key.remote(&inbox.join("copy"))]);
    assert!(out.status.success(), "push into the allowed directory\n{}\n--- snaprsync log ---\n{}", out.report(), w.rig.log());
    tree::assert_same("pushed tree", &tree::describe(&local), &tree::describe(&inbox.join("copy")));
    for (name, target) in [
        ("into the read-only tree", w.src().join("pushed")),
        ("outside", w.secret.join("pushed")),
        ("dot-dot", inbox.join("../secret/pushed")),
    ] {
        let out = key.rsync(&["-a", &format!("{}/", local.display()), &key.remote(&target)]);
        assert!(matches!(out.code(), Some(85 | 12)) && out.stderr.contains("snaprsync: refused"), "{name}\n{}", out.report());
        assert!(!target.exists(), "{name}");
    }
    let out = key.rsync(&["-a", "--temp-dir=/tmp", &format!("{}/", local.display()), &key.remote(&inbox.join("t"))]);
    assert!(out.stderr.contains("snaprsync: refused") && out.stderr.contains("outside"), "--temp-dir outside\n{}", out.report());
    let dest = w.rig.dest("pull");
    let remote = format!("{}/", key.remote(&w.src()));
    let out = w.rig.assert_snapshotted("pull with the writer key", || key.rsync(&["-a", &remote, &dest.display().to_string()]));
    assert!(out.status.success(), "{}", out.report());
    assert_eq!(w.rig.fs.leftover_snapshots(), Vec::<String>::new());
}

/// Filter rules travel over the connection after every check. A `dir-merge`
/// rule can name a file outside the allowed tree (in a parent directory of the
/// transfer, or up through `..`), and a plain rsync server reads it: an
/// oracle, since each line of it excludes a name. Through the key, rsync runs
/// in a root where that file does not exist: nothing is excluded, and a FIFO
/// or device named so neither hangs nor reads anything.
#[test]
fn filter_rules_cannot_reach_outside_the_allowed_tree() {
    let w = Restricted::new("filters");
    let mnt = w.rig.fs.mnt().to_path_buf();
    std::fs::write(mnt.join("rules"), "- top.txt\n").unwrap();
    std::fs::write(w.secret.join("rules"), "- top.txt\n").unwrap();
    cmd("mkfifo").arg(mnt.join("fifo")).ok();
    let m = mnt.display().to_string();
    let leaking: Vec<String> = vec![
        format!("dir-merge {m}/rules"),
        format!(": {m}/rules"),
        format!("dir-merge,- {m}/rules"),
        format!(":- {m}/rules"),
        format!(":e {m}/rules"),
        "dir-merge ../rules".into(),
        "dir-merge,- ../rules".into(),
        ":- ../rules".into(),
        "dir-merge ../secret/rules".into(),
        "dir-merge,- ../secret/rules".into(),
        "dir-merge ./../rules".into(),
        "dir-merge a/../../rules".into(),
    ];
    let blocking: Vec<String> = vec![
        format!("dir-merge {m}/fifo"),
        "dir-merge ../fifo".into(),
        "dir-merge /proc/self/root/dev/zero".into(),
        "dir-merge ../../../../../../../../dev/zero".into(),
        "dir-merge ../../../../../../../../dev/stdin".into(),
    ];
    // On a plain rsync server the oracle works: this test can fail.
    let mut leaked_plain = 0;
    for (k, attack) in leaking.iter().enumerate() {
        let control = w.rig.dest(&format!("control{k}"));
        let out =
            w.rig.rsync(Remote::Plain).arg("-a").arg(format!("--filter={attack}")).arg(w.rig.remote_dir(&w.src())).arg(&control).run();
        if out.status.success() && !control.join("top.txt").exists() {
            leaked_plain += 1;
        }
    }
    assert!(leaked_plain >= 3, "the oracle should work on a plain rsync server for most rules: {leaked_plain} of {}", leaking.len());
    // The key as it is, and as with an rsync that has no --confine-root: the
    // confinement alone must hold.
    let bare = ForcedKey::new(
        w.rig.sshd(),
        "bare",
        &format!("SNAPRSYNC_FAULT=without-confine-root {}", forced_command(&w.rig, &format!("--snap-allow={}", w.src().display()))),
    );
    let attempts = [&w.key, &bare].into_iter().flat_map(|key| leaking.iter().chain(&blocking).map(move |a| (key, a)));
    for (k, (key, attack)) in attempts.enumerate() {
        let remote = format!("{}:{}/", key.host, w.src().display());
        let dest = w.rig.dest(&format!("f{k}"));
        let started = std::time::Instant::now();
        let out = cmd("timeout")
            .arg("60")
            .arg("rsync")
            .arg("-e")
            .arg(key.rsh())
            .arg("-a")
            .arg(format!("--filter={attack}"))
            .arg(&remote)
            .arg(&dest)
            .run();
        assert!(started.elapsed() < std::time::Duration::from_secs(50), "{attack}: the server hung\n{}", out.report());
        assert!(out.status.success(), "{attack}: a legitimate pull with a harmless outcome\n{}\n{}", out.report(), w.rig.log());
        assert!(
            dest.join("top.txt").exists(),
            "{attack} (key {}): a rule file outside was read\n{}\n{}",
            key.host,
            out.report(),
            w.rig.log()
        );
        assert!(!dest.join("secret.txt").exists() && !dest.join("rules").exists(), "{attack}");
    }
    assert_eq!(std::fs::read_to_string(w.secret.join("secret.txt")).unwrap(), SECRET);
    w.rig.fs.assert_no_snapshot_left();
}

/// The tree changes between snaprsync's checks and rsync's reads (held there
/// by a test hook): a directory that passed the checks becomes a symlink that
/// leads out. Through the key, rsync runs in a root where outside does not
/// exist, so nothing of it is read, and a push writes nothing there. On a
/// plain snapshot exposure the same swap would read the secret.
#[test]
fn a_swap_after_the_checks_reaches_nothing_outside() {
    let w = Restricted::new("swap");
    let hold = w.rig.dest("hold");
    let inbox = w.rig.fs.mnt().join("in");
    std::fs::create_dir(&inbox).unwrap();
    let allow = format!("--snap-allow={} --snap-allow-write={}", w.src().display(), inbox.display());
    let command = format!("SNAPRSYNC_FAULT=after-check:hold={} {}", hold.display(), forced_command(&w.rig, &allow));
    let key = ForcedKey::new(w.rig.sshd(), "swapper", &command);
    let held = PathBuf::from(format!("{}.held", hold.display()));
    let mut trials = 0;
    for round in 0..10 {
        for (name, pull) in [("pull a directory's contents", true), ("push into a directory", false)] {
            trials += 1;
            let _ = std::fs::remove_file(&hold);
            let _ = std::fs::remove_file(&held);
            let base = if pull { w.src() } else { inbox.clone() };
            let victim = base.join(format!("d{round}"));
            std::fs::create_dir(&victim).unwrap();
            std::fs::write(victim.join("harmless"), "x").unwrap();
            let dest = w.rig.dest(&format!("swap{round}-{pull}"));
            let local = w.rig.dest(&format!("local{round}"));
            std::fs::create_dir_all(&local).unwrap();
            std::fs::write(local.join("pwned"), "pwned").unwrap();
            let args: Vec<String> = if pull {
                vec!["-a".into(), format!("{}/", key.remote(&victim)), dest.display().to_string()]
            } else {
                vec!["-a".into(), format!("{}/", local.display()), format!("{}/", key.remote(&victim))]
            };
            let mut client = std::process::Command::new("rsync")
                .arg("-e")
                .arg(key.rsh())
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !held.exists() {
                assert!(std::time::Instant::now() < deadline, "{name}: snaprsync never reached the hook\n{}", w.rig.log());
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            // The swap: the checked directory becomes a symlink to the secret.
            std::fs::remove_dir_all(&victim).unwrap();
            std::os::unix::fs::symlink(&w.secret, &victim).unwrap();
            std::fs::write(&hold, "").unwrap();
            let status = client.wait().unwrap();
            let _ = status;
            assert!(!dest.join("secret.txt").exists(), "{name} (round {round}): the secret was read through the swapped link");
            assert!(!w.secret.join("pwned").exists(), "{name} (round {round}): a file was written through the swapped link");
            assert_eq!(std::fs::read_to_string(w.secret.join("secret.txt")).unwrap(), SECRET);
            std::fs::remove_file(&victim).unwrap();
        }
    }
    assert_eq!(trials, 20);
    assert!(w.rig.log().contains("confined: Confinement"), "rsync ran confined\n{}", w.rig.log());
    w.rig.fs.assert_no_snapshot_left();
}

/// All the files under `root` (a process's root seen through
/// `/proc/PID/root`), as paths inside it; symlinks are not followed.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        out.push(format!("/{}", p.strip_prefix(root).unwrap().display()));
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &p, out);
        }
    }
}

/// The rsync processes whose parent runs with `config`.
fn rsyncs_of(config: &Path) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim() == "rsync").unwrap_or(false) {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).unwrap_or("0").to_owned();
            let parent = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&parent).contains(&config.display().to_string()) {
                found.push(pid);
            }
        }
    }
    found
}

/// What rsync can reach through a restricted key, looked at directly: while a
/// slow pull (and a push) runs, every path in rsync's root is listed. It holds
/// the allowed directory from the snapshot, rsync, the files it loads and the
/// name databases, and nothing else: no /root, no /etc/shadow, no /proc, not
/// the secret next to the allowed tree.
#[test]
fn the_confined_root_holds_only_what_rsync_needs() {
    let w = Restricted::new("root");
    let inbox = w.rig.fs.mnt().join("in");
    std::fs::create_dir(&inbox).unwrap();
    let allow = format!("--snap-allow={} --snap-allow-write={}", w.src().display(), inbox.display());
    // A variable the session sets must not reach rsync (RSYNC_MAX_ALLOC=0 lifts its cap).
    let key = ForcedKey::new(w.rig.sshd(), "looker", &format!("RSYNC_MAX_ALLOC=0 {}", forced_command(&w.rig, &allow)));
    let local = w.rig.dest("local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("big"), tree::pattern(3_000_000, 9)).unwrap();
    let runs = [
        (
            "pull",
            vec!["-a".to_owned(), "--bwlimit=100".into(), format!("{}/", key.remote(&w.src())), w.rig.dest("pulled").display().to_string()],
        ),
        ("push", vec!["-a".to_owned(), "--bwlimit=100".into(), format!("{}/", local.display()), format!("{}/", key.remote(&inbox))]),
    ];
    for (name, args) in runs {
        let mut client = std::process::Command::new("rsync")
            .arg("-e")
            .arg(key.rsh())
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let pid = loop {
            if let Some(p) = rsyncs_of(&w.rig.config).first() {
                break *p;
            }
            assert!(std::time::Instant::now() < deadline, "{name}: no rsync of snaprsync's appeared\n{}", w.rig.log());
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        // Let rsync start reading or writing.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let mut seen = Vec::new();
        walk(&root, &root, &mut seen);
        // /dev/null works there (rsync may open it); read through rsync's own mount.
        let null = std::fs::File::open(root.join("dev/null"));
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&environ).contains("RSYNC_MAX_ALLOC"), "{name}: RSYNC_* reached rsync");
        // The environment is built, not inherited: these three, nothing the session sent.
        let names: Vec<String> = environ
            .split(|&b| b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).split('=').next().unwrap_or("").to_owned())
            .collect();
        // rsync's powers as the kernel holds them: only what copying needs, and a seccomp filter.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| status.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("").to_owned();
        let powers = ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:", "Seccomp:", "NoNewPrivs:"].map(field);
        let _ = client.kill();
        let _ = client.wait();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !rsyncs_of(&w.rig.config).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(names, ["HOME", "LANG", "PATH"], "{name}: rsync's environment");
        // A pull: CAP_DAC_READ_SEARCH; a push: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, MKNOD.
        let caps = if name == "pull" { "0000000000000004" } else { "000000000800001b" };
        assert_eq!(powers, [caps, caps, caps, "0000000000000000", "0000000000000000", "2", "1"], "{name}: rsync's powers\n{status}");
        assert!(!seen.is_empty(), "{name}: rsync's root could not be listed");
        assert!(null.is_ok(), "{name}: /dev/null cannot be opened in rsync's root: {null:?}");
        let allowed_dir = if name == "pull" { w.src() } else { inbox.clone() };
        let needed = ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ld.so.cache", "/etc/localtime", "/dev/null"];
        for p in &seen {
            let path = Path::new(p);
            let ok = path.starts_with(&allowed_dir)
                || allowed_dir.starts_with(path)
                || needed.contains(&p.as_str())
                || ["/etc", "/dev", "/usr", "/usr/bin", "/usr/bin/rsync", "/lib64", "/root"].contains(&p.as_str())
                || (p.starts_with("/lib/x86_64-linux-gnu") && !p.ends_with("gnu") && p.contains(".so"))
                || p == "/lib"
                || p == "/lib/x86_64-linux-gnu"
                || (p.starts_with("/lib64/ld-linux") && p.contains(".so"));
            assert!(ok, "{name}: rsync's root holds {p}, which it does not need\nall: {seen:#?}");
        }
        for absent in ["/etc/shadow", "/proc", "/sys", "/root/.ssh", "/home"] {
            assert!(!seen.iter().any(|p| p == absent), "{name}: {absent} is in rsync's root");
        }
        let secret = w.secret.display().to_string();
        assert!(!seen.iter().any(|p| p.starts_with(&secret)), "{name}: the secret next to the allowed tree is in rsync's root");
        assert!(seen.iter().any(|p| p == "/usr/bin/rsync"), "{name}: rsync itself is there: {seen:#?}");
        assert!(
            seen.iter().any(|p| Path::new(p).starts_with(&allowed_dir) && p.len() > allowed_dir.as_os_str().len()),
            "{name}: the allowed tree is there"
        );
    }
    w.rig.fs.assert_no_snapshot_left();
}

/// Restricted mode reads a snapshot or nothing: a source that does not exist
/// (and so has no snapshot) is refused, `provider = "none"` is refused, and
/// `on_snapshot_failure = "live"` does not apply, so a source that cannot be
/// snapshotted fails instead of being read live.
#[test]
fn restricted_mode_never_reads_the_live_tree() {
    let w = Restricted::new("live");
    let dest = w.rig.dest("missing");
    let out = w.key.rsync(&["-a", &format!("{}/", w.key.remote(&w.src().join("missing"))), &dest.display().to_string()]);
    assert!(matches!(out.code(), Some(85 | 12)) && out.stderr.contains("does not exist"), "a missing source\n{}", out.report());
    assert!(!dest.exists());
    // A live directory next to the rig, on a filesystem that cannot be snapshotted.
    let live = testbed::tempdir("live-src");
    std::fs::write(live.path().join("file"), "live\n").unwrap();
    for (name, extra, allowed) in [
        ("provider none", "provider = \"none\"\n", w.src()),
        ("live fallback", "on_snapshot_failure = \"live\"\n", live.path().to_path_buf()),
    ] {
        let dir = testbed::tempdir("live-cfg");
        let config = write_config(dir.path(), extra);
        let command = format!("{} --snap-config={} --snap-restrict --snap-allow={}", snaprsync(), config.display(), allowed.display());
        let key = ForcedKey::new(w.rig.sshd(), &format!("k{}", name.len()), &command);
        let dest = w.rig.dest(&format!("live-{}", name.len()));
        let out = key.rsync(&["-a", &format!("{}/", key.remote(&allowed)), &dest.display().to_string()]);
        assert!(!out.status.success(), "{name}: the live tree was read\n{}", out.report());
        assert!(!dest.join("file").exists() && !dest.join("top.txt").exists(), "{name}: files arrived\n{}", out.report());
        assert!(out.stderr.contains("snaprsync:"), "{name}: snaprsync says why\n{}", out.report());
    }
    w.rig.fs.assert_no_snapshot_left();
}

/// `--iconv` is refused unless the key allows it (`--snap-allow-iconv`); then
/// the confined rsync is shown the C library's converters and the pull works.
#[test]
fn iconv_works_only_where_the_key_allows_it() {
    let w = Restricted::new("iconv");
    let args = |key: &ForcedKey, dest: &Path| {
        key.rsync(&["-a", "--iconv=UTF-8,ISO-8859-15", &format!("{}/", key.remote(&w.src())), &dest.display().to_string()])
    };
    let dest = w.rig.dest("refused");
    let out = args(&w.key, &dest);
    assert!(matches!(out.code(), Some(85 | 12)) && out.stderr.contains("iconv"), "{}", out.report());
    assert!(!dest.join("top.txt").exists());
    let allow = format!("--snap-allow-iconv --snap-allow={}", w.src().display());
    let key = ForcedKey::new(w.rig.sshd(), "iconv", &forced_command(&w.rig, &allow));
    let dest = w.rig.dest("allowed");
    let out = w.rig.assert_snapshotted("iconv pull", || args(&key, &dest));
    assert!(out.status.success(), "{}\n{}", out.report(), w.rig.log());
    assert_eq!(std::fs::read_to_string(dest.join("top.txt")).unwrap(), "top level\n");
    w.rig.fs.assert_no_snapshot_left();
}

/// A key allowed `/` (to read, or to write) is refused: confined to `/`,
/// rsync would be shown the host's root itself, and building that root would
/// touch the host's filesystems. The host's root stays as it was.
#[test]
fn an_allowed_root_directory_is_refused() {
    let w = Restricted::new("slash");
    let root_options = || {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        mounts.lines().find(|l| l.split(' ').nth(4) == Some("/")).map(|l| l.split(' ').nth(5).unwrap_or("").to_owned())
    };
    let before = root_options();
    let local = w.rig.dest("local");
    tree::make_sample(&local);
    for (name, allow) in [("read", "--snap-allow=/"), ("write", "--snap-allow-write=/")] {
        let key = ForcedKey::new(w.rig.sshd(), &format!("slash-{name}"), &forced_command(&w.rig, allow));
        let dest = w.rig.dest(&format!("slash-{name}"));
        let out = if name == "read" {
            key.rsync(&["-a", &format!("{}/", key.remote(&w.src())), &dest.display().to_string()])
        } else {
            key.rsync(&["-a", &format!("{}/", local.display()), &format!("{}/", key.remote(&dest))])
        };
        assert!(!out.status.success(), "{name}: a key confined to / ran\n{}", out.report());
        assert!(out.stderr.contains("cannot confine rsync to /"), "{name}: says why\n{}", out.report());
        assert!(!dest.join("top.txt").exists(), "{name}: files arrived");
        assert_eq!(root_options(), before, "{name}: the host's root changed its mount options");
        assert!(!Path::new("/dev/null").is_file(), "{name}: a plain file replaced /dev/null");
    }
    w.rig.fs.assert_no_snapshot_left();
}

/// The README's `--rsync-path="snaprsync --snap-config=..."` (for a key
/// without restriction) sent to a restricted key: refused with the line that
/// says where `--snap-*` options belong, and the backup server's rsync ends
/// with snaprsync's own 85, every time (said in the rsync protocol).
#[test]
fn snap_options_in_rsync_path_are_refused_with_where_they_belong() {
    let w = Restricted::new("rpath");
    for t in 0..5 {
        let dest = w.rig.dest(&format!("rpath-{t}"));
        let rsync_path = format!("--rsync-path={} --snap-config={}", snaprsync(), w.rig.config.display());
        let out = w.key.rsync(&["-a", &rsync_path, &format!("{}/", w.key.remote(&w.src())), &dest.display().to_string()]);
        assert_eq!(out.code(), Some(85), "trial {t}\n{}", out.report());
        assert!(out.stderr.contains("belong in the key's forced command") && out.stderr.contains("--rsync-path"), "{}", out.report());
        assert!(!dest.join("top.txt").exists());
    }
    w.rig.fs.assert_no_snapshot_left();
}

/// The backup server polls the client's run history over the backup key:
/// `snaprsync check` runs where the forced command has `--snap-allow-check`
/// (Nagios states, one line on stdout), and is refused (85) where it has not.
#[test]
fn check_runs_over_a_key_that_allows_it() {
    let w = Restricted::new("check");
    let dest = w.rig.dest("pulled");
    let out = w.key.rsync(&["-a", &format!("{}/", w.key.remote(&w.src())), &dest.display().to_string()]);
    assert!(out.status.success(), "{}", out.report());
    let allow = format!("--snap-allow-check --snap-allow={}", w.src().display());
    let checker = ForcedKey::new(w.rig.sshd(), "checker", &forced_command(&w.rig, &allow));
    let ok = checker.ssh(Some(&format!("snaprsync check --max-age=1h {}", w.src().display()))).run();
    assert_eq!(ok.code(), Some(0), "{}", ok.report());
    assert!(ok.stdout_str().starts_with("SNAPRSYNC OK"), "{}", ok.report());
    // A path with no run is CRITICAL, over the key as locally.
    let none = checker.ssh(Some("snaprsync check /nowhere")).run();
    assert_eq!(none.code(), Some(2), "{}", none.report());
    // A check-only key: polls, and pulls nothing.
    let only = ForcedKey::new(w.rig.sshd(), "checkonly", &forced_command(&w.rig, "--snap-allow-check"));
    assert_eq!(only.ssh(Some("snaprsync check")).run().code(), Some(0));
    let dest = w.rig.dest("by-checker");
    let pulled = only.rsync(&["-a", &format!("{}/", only.remote(&w.src())), &dest.display().to_string()]);
    assert!(!pulled.status.success() && !dest.join("top.txt").exists(), "{}", pulled.report());
    // The pulling key alone may not poll.
    let refused = w.key.ssh(Some("snaprsync check")).run();
    assert_eq!(refused.code(), Some(85), "{}", refused.report());
    assert!(refused.stderr.contains("--snap-allow-check") && refused.stdout_str().is_empty(), "{}", refused.report());
}
