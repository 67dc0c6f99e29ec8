//! The guest lab from the tests' side: runs a script as root in a QEMU guest
//! booted by `scripts/guest.sh`, where device-mapper, LVM, XFS and ZFS exist
//! (the host kernel has none of them). The guest sees the host's root read-only, so
//! host tools and this build's binaries are there.
//!
//! `scripts/guest.sh setup` (which `scripts/test.sh` runs) must have built the
//! guest. A guest that cannot boot or times out fails the test; nothing is skipped.
//!
//! Scripts report in lines `CHECK <name> ok`, `CHECK <name> FAIL <detail>` and
//! `VALUE <name> <value>` on stdout; [`Report`] reads them.

use std::collections::BTreeMap;
use std::path::Path;
use testbed::cmd::{cmd, Output};

const GUEST_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/guest.sh");

/// One boot of the guest: its disks and settings, then [`Guest::exec`].
#[derive(Default)]
pub struct Guest {
    disks: Vec<(String, u64)>,
    mem_mb: Option<u64>,
    timeout_secs: Option<u64>,
    zfs: bool,
}

impl Guest {
    /// Boots a guest with blank `disks` (file name, size in MiB) and runs
    /// `script` in it. See [`Guest::exec`].
    pub fn run(script: &str, disks: &[(&str, u64)]) -> Output {
        let mut guest = Guest::default();
        for &(name, size_mib) in disks {
            guest = guest.disk(name, size_mib);
        }
        guest.exec(script)
    }

    /// Adds a blank sparse disk image; the script finds the disks, in the order
    /// added, in `GUEST_DISKS` (e.g. "/dev/vda /dev/vdb").
    pub fn disk(mut self, name: &str, size_mib: u64) -> Self {
        self.disks.push((name.to_owned(), size_mib));
        self
    }

    /// Loads the ZFS modules (built by dkms in `scripts/guest.sh setup`).
    pub fn zfs(mut self) -> Self {
        self.zfs = true;
        self
    }

    pub fn mem_mb(mut self, mb: u64) -> Self {
        self.mem_mb = Some(mb);
        self
    }

    /// After this the guest is killed and the test fails (guest.sh's default: 600 s).
    pub fn timeout_secs(mut self, secs: u64) -> Self {
        self.timeout_secs = Some(secs);
        self
    }

    /// Boots, runs `script` (given `#!/bin/bash` when it has no `#!` line) as
    /// root and returns its exit status, stdout and stderr. Panics when the
    /// guest failed before the script ended, so that a harness failure is never
    /// read as the script's status.
    pub fn exec(self, script: &str) -> Output {
        let dir = testbed::tempdir("guest");
        let script_path = dir.path().join("script");
        let text = if script.starts_with("#!") { script.to_owned() } else { format!("#!/bin/bash\n{script}") };
        std::fs::write(&script_path, text).expect("write guest script");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o755)).expect("chmod guest script");
        }
        let status_file = dir.path().join("status");
        let mut c = cmd(GUEST_SH).arg("run").arg("--status-file").arg(&status_file);
        for (name, size_mib) in &self.disks {
            // guest.sh creates the image: a fresh temp dir means a blank disk.
            let image = dir.path().join(format!("{name}.img"));
            c = c.arg("--disk").arg(format!("{}:{size_mib}M", image.display()));
        }
        if self.zfs {
            c = c.arg("--zfs");
        }
        if let Some(mb) = self.mem_mb {
            c = c.arg("--mem").arg(mb.to_string());
        }
        if let Some(secs) = self.timeout_secs {
            c = c.arg("--timeout").arg(secs.to_string());
        }
        let out = c.arg("--").arg(&script_path).run();
        let Ok(reported) = std::fs::read_to_string(&status_file) else {
            panic!("the guest lab failed before the script ended (was `scripts/guest.sh setup` run?)\n{}", out.report());
        };
        let reported = reported.trim().parse::<i32>().ok();
        assert_eq!(out.code(), reported, "guest.sh's status is not the script's\n{}", out.report());
        out
    }
}

/// The script that runs the scenario `tests/guest/NAME` in the guest, with
/// what it needs in its environment: the binary under test (`SNAPRSYNC`),
/// testbed's (`TESTBED`: the torture writer and checker, built beside it by
/// `cargo build --workspace`) and a remote shell that runs the command here
/// (`LOCAL_RSH`: the guest has no sshd).
pub fn scenario(name: &str) -> String {
    let snaprsync = crate::support::snaprsync();
    let testbed = Path::new(env!("CARGO_BIN_EXE_snaprsync")).with_file_name("testbed");
    assert!(testbed.exists(), "{} is missing: build the workspace (cargo build --workspace)", testbed.display());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    format!(
        "#!/bin/bash\nexport SNAPRSYNC={snaprsync} TESTBED={} LOCAL_RSH={}\nexec {}\n",
        testbed.display(),
        repo.join("scripts/bench/local-rsh").display(),
        repo.join("tests/guest").join(name).display()
    )
}

/// The `CHECK` and `VALUE` lines of a guest script's stdout.
#[derive(Debug, Default)]
pub struct Report {
    /// Name and `None` for ok, or the failure's detail; in order.
    pub checks: Vec<(String, Option<String>)>,
    pub values: BTreeMap<String, String>,
}

impl Report {
    pub fn parse(out: &Output) -> Report {
        let mut report = Report::default();
        for line in out.stdout_str().lines() {
            if let Some(rest) = line.strip_prefix("CHECK ") {
                let (name, result) = rest.split_once(' ').unwrap_or((rest, ""));
                let failure = if result == "ok" { None } else { Some(result.to_owned()) };
                report.checks.push((name.to_owned(), failure));
            } else if let Some(rest) = line.strip_prefix("VALUE ") {
                let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                report.values.insert(name.to_owned(), value.to_owned());
            }
        }
        report
    }

    /// Asserts that exactly `expected` checks ran, each once, and all passed.
    pub fn assert_all_ok(&self, expected: &[&str], out: &Output) {
        let failed: Vec<_> = self.checks.iter().filter(|(_, f)| f.is_some()).collect();
        assert!(failed.is_empty(), "guest checks failed: {failed:?}\n{}", out.report());
        let ran: Vec<&str> = self.checks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(ran, expected, "guest checks ran are not the expected ones\n{}", out.report());
    }

    /// A value the script reported; panics (with the run) when it did not.
    pub fn value(&self, name: &str, out: &Output) -> &str {
        self.values.get(name).unwrap_or_else(|| panic!("the guest script reported no VALUE {name}\n{}", out.report()))
    }
}
