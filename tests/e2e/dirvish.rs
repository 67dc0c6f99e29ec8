//! Real dirvish: a bank and vault whose `client:` is the ssh alias, `rsh:` the
//! test's `ssh -F`, and `rsync-client:` snaprsync. dirvish's master config
//! path is compiled into the script, so the test runs a copy of
//! `/usr/sbin/dirvish` whose `$CONFDIR` points at a temp dir.

use crate::support::rig::{Remote, Rig};
use crate::support::tree;
use std::fs;
use std::path::{Path, PathBuf};
use testbed::cmd::{cmd, Cmd};
use testbed::sshd::HOST;

struct Bank {
    script: PathBuf,
    bank: PathBuf,
}

const VAULT: &str = "vault";

fn setup(rig: &Rig) -> Bank {
    let top = rig.dest("dirvish");
    let confdir = top.join("etc");
    let bank = top.join("bank");
    fs::create_dir_all(&confdir).unwrap();
    fs::create_dir_all(bank.join(VAULT).join("dirvish")).unwrap();

    let original = fs::read_to_string("/usr/sbin/dirvish").expect("read /usr/sbin/dirvish (is dirvish installed?)");
    let line = "$CONFDIR = \"/etc/dirvish\";";
    assert!(original.contains(line), "/usr/sbin/dirvish no longer sets {line}");
    let script = top.join("dirvish");
    fs::write(&script, original.replacen(line, &format!("$CONFDIR = \"{}\";", confdir.display()), 1)).unwrap();

    fs::write(confdir.join("master.conf"), format!("bank:\n\t{}\nimage-default: %Y%m%d-%H%M%S\nindex: none\nlog: none\n", bank.display()))
        .unwrap();
    fs::write(
        bank.join(VAULT).join("dirvish/default.conf"),
        format!(
            "client: {HOST}\ntree: {tree}\nrsh: {rsh}\nrsync-client: {client}\nxdev: 1\nindex: none\n",
            tree = rig.src().display(),
            rsh = rig.sshd().rsh(),
            client = rig.rsync_path(Remote::Snaprsync),
        ),
    )
    .unwrap();
    Bank { script, bank }
}

impl Bank {
    fn dirvish(&self) -> Cmd {
        cmd("perl").arg(&self.script).args(["--vault", VAULT])
    }

    fn tree(&self, image: &str) -> PathBuf {
        self.bank.join(VAULT).join(image).join("tree")
    }

    fn run(&self, rig: &Rig, extra: &[&str]) {
        rig.assert_snapshotted("dirvish", || {
            let out = self.dirvish().args(extra).run();
            assert!(out.status.success(), "dirvish failed\n{}\n--- snaprsync log ---\n{}", out.report(), rig.log());
        });
    }

    fn summary(&self, image: &str) -> String {
        fs::read_to_string(self.bank.join(VAULT).join(image).join("summary")).unwrap_or_default()
    }
}

fn assert_linked(a: &Path, b: &Path) {
    assert_eq!(tree::inode(a), tree::inode(b), "{} and {} must be one inode", a.display(), b.display());
}

/// An init image and an incremental image through snaprsync: both hold the
/// source exactly; unchanged files in the second are hard links into the
/// first, the changed one is a new file.
#[test]
fn dirvish_init_and_incremental() {
    let rig = Rig::new("dirvish");
    tree::make_sample(&rig.src());
    let bank = setup(&rig);

    bank.run(&rig, &["--init", "--image", "img1"]);
    let summary = bank.summary("img1");
    assert!(summary.contains("Status: success"), "img1 summary:\n{summary}");
    assert!(
        summary.contains("--rsync-path=") && summary.contains(&format!("{HOST}:")),
        "dirvish must go through ssh with rsync-client as --rsync-path:\n{summary}"
    );
    tree::assert_same("dirvish img1 vs source", &tree::describe(&rig.src()), &tree::describe(&bank.tree("img1")));

    fs::write(rig.src().join("a/one.txt"), "changed\n").unwrap();
    bank.run(&rig, &["--image", "img2"]);
    let summary = bank.summary("img2");
    assert!(summary.contains("Status: success"), "img2 summary:\n{summary}");
    let (img1, img2) = (bank.tree("img1"), bank.tree("img2"));
    tree::assert_same("dirvish img2 vs source", &tree::describe(&rig.src()), &tree::describe(&img2));
    assert_linked(&img1.join("a/b/c/three"), &img2.join("a/b/c/three"));
    assert_linked(&img1.join("ünïcödé/naïve €.txt"), &img2.join("ünïcödé/naïve €.txt"));
    assert_ne!(tree::inode(&img1.join("a/one.txt")), tree::inode(&img2.join("a/one.txt")), "the changed file must be new in img2");
    assert_eq!(fs::read_to_string(img1.join("a/one.txt")).unwrap(), "one\n".repeat(100), "img1 must keep the old contents");
}
