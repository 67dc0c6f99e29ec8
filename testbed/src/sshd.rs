//! A private sshd on 127.0.0.1 with its own host key, and an `ssh -F` config
//! whose Host alias (`snaphost` for the tests) logs in as root with a
//! generated key. Dropping it kills sshd (and so every session it still
//! serves); a script that keeps it (`testbed sshd`) kills the pid in
//! `<dir>/sshd.pid`.

use crate::cmd::cmd;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// The tests' Host alias in the client config.
pub const HOST: &str = "snaphost";

pub struct Sshd {
    /// None once kept running for a script.
    child: Option<Child>,
    port: u16,
    alias: String,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Sshd {
    /// An sshd with its files in a new temp dir, reached as [`HOST`].
    pub fn start() -> Sshd {
        let temp = crate::tempdir("sshd");
        let mut sshd = Sshd::start_in(temp.path(), HOST);
        sshd._temp = Some(temp);
        sshd
    }

    /// An sshd with its keys, configs, log (`sshd.log`) and pid file in
    /// `dir`; `ssh -F dir/ssh_config alias` logs in as root.
    pub fn start_in(dir: &Path, alias: &str) -> Sshd {
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        for key in ["host_key", "client_key"] {
            cmd("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "snaprsync-e2e", "-f"]).arg(dir.join(key)).ok();
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("authorized_keys");
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        std::fs::write(dir.join("known_hosts"), format!("{alias} {}\n", host_pub.join(" "))).expect("known_hosts");
        let log = dir.join("sshd.log");

        // A port picked by binding :0 may be taken again before sshd binds it:
        // retry with another one when sshd exits early.
        let mut last_err = String::new();
        for _ in 0..10 {
            let port = free_port();
            let sshd_config = dir.join("sshd_config");
            std::fs::write(&sshd_config, sshd_config_text(dir, port)).expect("sshd_config");
            let mut child = cmd("/usr/sbin/sshd").arg("-D").arg("-f").arg(&sshd_config).arg("-E").arg(&log).spawn();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!("sshd exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let sshd = Sshd { child: Some(child), port, alias: alias.to_owned(), dir: dir.to_owned(), _temp: None };
                    std::fs::write(sshd.ssh_config(), sshd.client_config(alias, &dir.join("client_key"))).expect("ssh_config");
                    sshd.check_login();
                    return sshd;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = "sshd did not listen within 10 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("cannot start sshd: {last_err}");
    }

    /// Leaves sshd running when this value goes (for a script); returns the
    /// ssh config.
    pub fn keep(mut self) -> PathBuf {
        self.child = None;
        self.ssh_config()
    }

    /// The `-e` / `rsh` value: `ssh -F <config>`.
    pub fn rsh(&self) -> String {
        format!("ssh -F {}", self.ssh_config().display())
    }

    /// The client config, with one Host: the alias given at the start.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// sshd's files: keys, configs, `authorized_keys`, `known_hosts`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// An `ssh -F` config with one host `alias` on this sshd, logging in as
    /// root with `key`, the host key checked as this sshd's.
    pub fn client_config(&self, alias: &str, key: &Path) -> String {
        format!(
            "Host {alias}
  HostName 127.0.0.1
  Port {port}
  User root
  IdentityFile {key}
  IdentitiesOnly yes
  HostKeyAlias {host}
  UserKnownHostsFile {known}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
",
            port = self.port,
            key = key.display(),
            host = self.alias,
            known = self.dir.join("known_hosts").display(),
        )
    }

    fn check_login(&self) {
        let out = cmd("ssh").arg("-F").arg(self.ssh_config()).arg(&self.alias).arg("echo ok").run();
        assert!(
            out.status.success() && out.stdout_str().trim() == "ok",
            "ssh login to the test sshd failed\n{}\n--- sshd log ---\n{}",
            out.report(),
            self.log()
        );
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn sshd_config_text(d: &Path, port: u16) -> String {
    format!(
        "ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {pid}
AuthorizedKeysFile {auth}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 64
MaxSessions 64
LogLevel VERBOSE
",
        host_key = d.join("host_key").display(),
        pid = d.join("sshd.pid").display(),
        auth = d.join("authorized_keys").display(),
    )
}
