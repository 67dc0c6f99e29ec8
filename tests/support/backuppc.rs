//! A private BackupPC 4 server (Debian's `backuppc` with `rsync_bpc`) for one
//! test: its own TopDir, log and run dirs and config, with one host whose
//! backups go through the rig's sshd to snaprsync.
//!
//! BackupPC reads its main config from the compiled-in `/etc/backuppc`, and
//! `BackupPC_dump` insists on talking to a running `BackupPC` daemon. So every
//! step runs in a private mount namespace (`unshare --mount`) in which this
//! fixture's config dir is bind-mounted over `/etc/backuppc`, with a
//! foreground `BackupPC` daemon started for the step and stopped after it.
//! Nothing on the machine's own BackupPC setup is read or changed, and tests
//! running in parallel each have their own server.
//!
//! The config is the package's pristine default (`/usr/share/backuppc/conf/
//! config.pl`, so the default `RsyncArgs` with `--protect-args` apply) with
//! overrides appended: paths into the temp dir, no ping or NetBIOS lookups,
//! no scheduled backups. The host's own config (`conf/<client>.pl`) is
//! README's BackupPC example ([`host_config`]), with only this machine's paths
//! put in: snaprsync and its config, an `ssh -F` config that reaches the rig's
//! sshd, and the share.

use super::rig::Rig;
use std::path::{Path, PathBuf};
use testbed::cmd::{cmd, Output};
use testbed::sshd::HOST;

/// The client name in BackupPC's hosts file.
pub const CLIENT: &str = "snaphost";

const BIN: &str = "/usr/share/backuppc/bin";
const DEFAULT_CONFIG: &str = "/usr/share/backuppc/conf/config.pl";
const RSYNC_BPC: &str = "/usr/libexec/backuppc-rsync/rsync_bpc";

pub struct BackupPc {
    dir: tempfile::TempDir,
    share: PathBuf,
}

impl BackupPc {
    /// A server that backs up `share` (a directory on the rig's host) with
    /// `RsyncClientPath` = `rsync_client_path`.
    pub fn new(rig: &Rig, share: &Path, rsync_client_path: &str) -> BackupPc {
        for tool in [DEFAULT_CONFIG, RSYNC_BPC, "/etc/backuppc"] {
            assert!(Path::new(tool).exists(), "{tool} is missing: install the Debian packages backuppc and backuppc-rsync");
        }
        let dir = testbed::tempdir("backuppc");
        let d = dir.path();
        for sub in ["conf", "top/pc", "top/cpool", "top/pool", "log", "run"] {
            std::fs::create_dir_all(d.join(sub)).expect("create BackupPC dirs");
        }

        // BackupPC connects to the address, not the alias: the rig's ssh
        // config, with 127.0.0.1 as a second name for the same host.
        let ssh_config = std::fs::read_to_string(rig.sshd().ssh_config()).expect("read ssh config");
        let ssh_config = ssh_config.replacen(&format!("Host {HOST}\n"), &format!("Host {HOST} 127.0.0.1\n"), 1);
        assert!(ssh_config.contains("127.0.0.1\n"), "unexpected ssh config layout:\n{ssh_config}");
        std::fs::write(d.join("ssh_config"), ssh_config).expect("write ssh config");

        let base = std::fs::read_to_string(DEFAULT_CONFIG).expect("read BackupPC's default config");
        let overrides = format!(
            r#"
# ---- test overrides ----
$Conf{{TopDir}} = {top};
$Conf{{LogDir}} = {log};
$Conf{{RunDir}} = {run};
$Conf{{ServerPort}} = -1;
$Conf{{BackupPCUserVerify}} = 0;
$Conf{{SmbClientPath}} = '';
$Conf{{NmbLookupPath}} = '';
$Conf{{NmbLookupCmd}} = '';
$Conf{{NmbLookupFindHostCmd}} = '';
$Conf{{FixedIPNetBiosNameCheck}} = 0;
$Conf{{SendmailPath}} = '';
$Conf{{PingCmd}} = '';
$Conf{{BackupsDisable}} = 1;
$Conf{{XferMethod}} = 'rsync';
$Conf{{XferLogLevel}} = 1;
$Conf{{ClientNameAlias}} = '127.0.0.1';
$Conf{{RsyncBackupPCPath}} = {rsync_bpc};
1;
"#,
            top = perl_str(&d.join("top").display().to_string()),
            log = perl_str(&d.join("log").display().to_string()),
            run = perl_str(&d.join("run").display().to_string()),
            rsync_bpc = perl_str(RSYNC_BPC),
        );
        std::fs::write(d.join("conf/config.pl"), format!("{base}\n{overrides}")).expect("write config.pl");
        let host = host_config(readme_host_config(), rsync_client_path, &d.join("ssh_config"), share);
        std::fs::write(d.join(format!("conf/{CLIENT}.pl")), format!("{host}1;\n")).expect("write the host's config");
        std::fs::write(d.join("conf/hosts"), format!("host dhcp user moreUsers\n{CLIENT} 0 root\n")).expect("write hosts");
        BackupPc { dir, share: share.to_owned() }
    }

    /// Runs `steps` (a POSIX shell fragment; `$BIN` is BackupPC's bin dir,
    /// `$SHARE` the share, `$WORK` this fixture's dir) with BackupPC's config
    /// in place and its daemon running. The fragment's status is the result.
    pub fn run(&self, steps: &str) -> Output {
        let script = format!(
            r#"set -u
mount --bind "$WORK/conf" /etc/backuppc || exit 70
"$BIN/BackupPC" >"$WORK/daemon.out" 2>&1 &
daemon=$!
i=0
while [ ! -S "$WORK/run/BackupPC.sock" ]; do
  if ! kill -0 "$daemon" 2>/dev/null || [ "$i" -ge 400 ]; then
    echo "BackupPC daemon did not start:" >&2; cat "$WORK/daemon.out" "$WORK/log/LOG" >&2 2>/dev/null
    kill "$daemon" 2>/dev/null; exit 71
  fi
  i=$((i+1)); sleep 0.05
done
( {steps}
)
rc=$?
# The daemon has been seen to start over after a TERM that came early in its
# start-up: give it 5 s to end (to exit, or be a zombie until the wait), then
# KILL it.
kill "$daemon"
i=0
while [ "$i" -lt 100 ]; do
  state=$(sed 's/.*) //; s/ .*//' "/proc/$daemon/stat" 2>/dev/null)
  case $state in ''|Z) break ;; esac
  i=$((i+1)); sleep 0.05
done
kill -KILL "$daemon" 2>/dev/null
wait "$daemon"
exit $rc
"#
        );
        cmd("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("WORK", self.dir.path())
            .env("BIN", BIN)
            .env("SHARE", &self.share)
            .run()
    }

    /// A full backup by hand, as the daemon would run it: `BackupPC_dump -f -v`.
    pub fn full(&self) -> Output {
        self.run(&format!(r#""$BIN/BackupPC_dump" -f -v {CLIENT}"#))
    }

    /// Extracts the share from the newest backup into `dest` (created) with
    /// `BackupPC_tarCreate | tar -x`.
    pub fn extract_latest(&self, dest: &Path) -> Output {
        std::fs::create_dir_all(dest).expect("create extract dir");
        let tar = self.dir.path().join("latest.tar");
        let out = self.run(&format!(
            r#""$BIN/BackupPC_tarCreate" -h {CLIENT} -n -1 -s "$SHARE" . > {}"#,
            testbed::cmd::quote(&tar.display().to_string())
        ));
        if !out.status.success() {
            return out;
        }
        cmd("tar").arg("-x").arg("-p").arg("--numeric-owner").arg("-f").arg(&tar).arg("-C").arg(dest).run()
    }

    /// BackupPC's per-host log (`XferLOG` of the newest backup is compressed;
    /// this is the plain `LOG` of the host), for failure messages.
    pub fn host_log(&self) -> String {
        let path = self.dir.path().join("top/pc").join(CLIENT).join("LOG");
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(path.parent().unwrap()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("LOG") && !name.ends_with(".z") {
                    text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        text
    }

    /// The number of the backups BackupPC lists for the client (the `backups` file).
    pub fn backups(&self) -> Vec<String> {
        let path = self.dir.path().join("top/pc").join(CLIENT).join("backups");
        std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

/// The Perl text of README's BackupPC example: the fenced block between its
/// `backuppc-host-config` markers.
pub fn readme_host_config() -> &'static str {
    let readme = include_str!("../../README.md");
    let (begin, end) = ("<!-- backuppc-host-config:begin -->\n```perl\n", "```\n<!-- backuppc-host-config:end -->");
    let start = readme.find(begin).expect("README has no backuppc-host-config block") + begin.len();
    let len = readme[start..].find(end).expect("README's backuppc-host-config block has no end");
    &readme[start..start + len]
}

/// The host config the fixture uses: README's example, with only the paths of
/// this machine put in (snaprsync's binary and config from `client_path`,
/// the ssh config appended to the ssh command, the share for `/srv`). Every
/// other byte is README's, so that the example cannot drift from what runs.
pub fn host_config(readme: &str, client_path: &str, ssh_config: &Path, share: &Path) -> String {
    let (bin, config) = client_path.split_once(" --snap-config=").expect("client path is '<snaprsync> --snap-config=<file>'");
    for local in [bin, config] {
        // Put inside README's single-quoted Perl string as it is.
        assert!(local.chars().all(|c| (' '..='~').contains(&c) && c != '\'' && c != '\\'), "path {local:?} needs quoting");
    }
    let ssh = format!("$sshPath -l root -F {}", ssh_config.display());
    assert!(!ssh.contains('\''), "ssh config path {ssh:?} needs quoting");
    let swaps = [
        ("/usr/bin/snaprsync --snap-config=", format!("{bin} --snap-config=")),
        ("=/etc/snaprsync/backuppc.toml'", format!("={config}'")),
        ("'$sshPath -l root'", format!("'{ssh}'")),
        ("['/srv']", format!("[{}]", perl_str(&share.display().to_string()))),
    ];
    let mut text = readme.to_owned();
    for (from, to) in swaps {
        assert_eq!(text.matches(from).count(), 1, "README's BackupPC example must hold {from:?} once:\n{readme}");
        text = text.replacen(from, &to, 1);
    }
    let names: Vec<&str> = text.lines().map(|l| l.strip_prefix("$Conf{").and_then(|l| l.split_once('}')).map_or(l, |(n, _)| n)).collect();
    assert_eq!(
        names,
        ["XferMethod", "RsyncClientPath", "RsyncSshArgs", "RsyncShareName"],
        "README's BackupPC example must set exactly these, one a line:\n{readme}"
    );
    text
}

/// A Perl string literal holding `s` as characters, with non-ASCII written
/// as `\x{..}` escapes, as BackupPC's own config editor stores values.
fn perl_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' | '"' | '$' | '@' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push_str(&format!("\\x{{{:x}}}", c as u32)),
        }
    }
    out.push('"');
    out
}
