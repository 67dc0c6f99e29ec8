//! A second key for the private sshd, pinned in `authorized_keys` to a forced
//! command (`command="...",restrict ssh-ed25519 ...`), and an `ssh -F` config
//! whose Host alias logs in with it. sshd reads `authorized_keys` at every
//! login, so the key works as soon as it is appended.

use std::io::Write;
use std::path::{Path, PathBuf};
use testbed::cmd::{cmd, Cmd, Output};
use testbed::sshd::Sshd;

pub struct ForcedKey {
    /// The Host alias of this key in its own ssh config.
    pub host: String,
    ssh_config: PathBuf,
    _dir: tempfile::TempDir,
}

impl ForcedKey {
    /// Generates a key, pins it to `command` (inserted in the `command="..."`
    /// option; `"` and `\` are escaped) and writes a client config for `alias`.
    pub fn new(sshd: &Sshd, alias: &str, command: &str) -> ForcedKey {
        let dir = testbed::tempdir("forced");
        let d = dir.path();
        let key = d.join("forced_key");
        cmd("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", alias, "-f"]).arg(&key).ok();
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        let escaped = command.replace('\\', "\\\\").replace('"', "\\\"");
        let mut auth = std::fs::OpenOptions::new().append(true).open(sshd.dir().join("authorized_keys")).expect("open authorized_keys");
        writeln!(auth, "command=\"{escaped}\",restrict {}", public.trim()).expect("append to authorized_keys");
        let ssh_config = d.join("ssh_config");
        std::fs::write(&ssh_config, sshd.client_config(alias, &key)).expect("write ssh config");
        ForcedKey { host: alias.to_owned(), ssh_config, _dir: dir }
    }

    /// The `-e` / rsh value for rsync: `ssh -F <config>`.
    pub fn rsh(&self) -> String {
        format!("ssh -F {}", self.ssh_config.display())
    }

    /// `ssh` logging in with this key and asking for `command` (which becomes
    /// `SSH_ORIGINAL_COMMAND`; the forced command runs instead). No command at
    /// all asks for a shell.
    pub fn ssh(&self, command: Option<&str>) -> Cmd {
        let c = cmd("ssh").arg("-F").arg(&self.ssh_config).arg(&self.host);
        match command {
            Some(command) => c.arg(command),
            None => c,
        }
    }

    /// Runs `rsync -e <ssh with this key>` with `args`.
    pub fn rsync(&self, args: &[&str]) -> Output {
        cmd("rsync").arg("-e").arg(self.rsh()).args(args).run()
    }

    /// `<alias>:<path>`.
    pub fn remote(&self, path: &Path) -> String {
        format!("{}:{}", self.host, path.display())
    }
}
