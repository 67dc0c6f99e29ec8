//! A private sshd on 127.0.0.1 with its own host key, and an `ssh -F` config
//! whose Host alias `snaphost` logs in as root with a generated key. Dropping
//! it kills sshd (and so every session it still serves).

use super::cmd::cmd;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Host alias in the client config.
pub const HOST: &str = "snaphost";

pub struct Sshd {
    child: Child,
    port: u16,
    ssh_config: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = super::tempdir("sshd");
        let d = dir.path();
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        for key in ["host_key", "client_key"] {
            cmd("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "snaprsync-e2e", "-f"]).arg(d.join(key)).ok();
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        std::fs::write(d.join("known_hosts"), format!("{HOST} {}\n", host_pub.join(" "))).expect("known_hosts");
        let log = d.join("sshd.log");

        // A port picked by binding :0 may be taken again before sshd binds it:
        // retry with another one when sshd exits early.
        let mut last_err = String::new();
        for _ in 0..10 {
            let port = free_port();
            let sshd_config = d.join("sshd_config");
            std::fs::write(&sshd_config, sshd_config_text(d, port)).expect("sshd_config");
            let ssh_config = d.join("ssh_config");
            std::fs::write(&ssh_config, ssh_config_text(HOST, port, &d.join("client_key"), &d.join("known_hosts"))).expect("ssh_config");
            let mut child = Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-f")
                .arg(&sshd_config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start /usr/sbin/sshd (is openssh-server installed?)");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!("sshd exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let sshd = Sshd { child, port, ssh_config, log, dir };
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

    /// The `-e` / `rsh` value: `ssh -F <config>`.
    pub fn rsh(&self) -> String {
        format!("ssh -F {}", self.ssh_config.display())
    }

    pub fn ssh_config(&self) -> &Path {
        &self.ssh_config
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn check_login(&self) {
        let out = cmd("ssh").arg("-F").arg(&self.ssh_config).arg(HOST).arg("echo ok").run();
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// An `ssh -F` config with one host `alias` on the sshd at `port`, logging in
/// as root with `key`, the host key checked against `known` (as `snaphost`).
pub fn ssh_config_text(alias: &str, port: u16, key: &Path, known: &Path) -> String {
    format!(
        "Host {alias}
  HostName 127.0.0.1
  Port {port}
  User root
  IdentityFile {key}
  IdentitiesOnly yes
  HostKeyAlias {HOST}
  UserKnownHostsFile {known}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
",
        key = key.display(),
        known = known.display(),
    )
}
