//! Restricted mode attacked as a red team did, through a real sshd and rsync:
//! a key that redirects its own read directory, an unprivileged local user
//! who swaps an allowed directory (read, then write) for a symlink, and code
//! run inside the confined rsync. Each is judged by what arrives or is
//! created (the secret's bytes, a file outside), or by the confined
//! process's own view of its powers, never by an exit status.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::forced::ForcedKey;
use crate::support::rig::Rig;
use crate::support::{snaprsync, tree, write_config};
use testbed::cmd::cmd;

const SECRET: &str = "root's eyes only: 7f3a9c\n";
/// An unprivileged local user on the client (Debian's `nobody`).
const USER: &str = "65534";

/// A rig with a root-only secret on the same btrfs (`rootonly/secret`, 0600
/// in a 0700 directory), its work directories open to other users so that a
/// local user can reach the directories given to it.
fn rig(tag: &str) -> (Rig, PathBuf) {
    let rig = Rig::build(tag).data(tree::make_sample).start();
    let mnt = rig.fs.mnt();
    // The directory holding the mount point is the test's own (0700): let others pass.
    for d in mnt.ancestors().skip(1).take_while(|d| d.starts_with(std::env::temp_dir()) && *d != std::env::temp_dir()) {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let secret = mnt.join("rootonly");
    std::fs::create_dir(&secret).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(secret.join("secret"), SECRET).unwrap();
    std::fs::set_permissions(secret.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    (rig, secret)
}

fn key(rig: &Rig, name: &str, allow: &str) -> ForcedKey {
    ForcedKey::new(rig.sshd(), name, &format!("{} --snap-config={} --snap-restrict {allow}", snaprsync(), rig.config.display()))
}

/// Every file below `dir`, with its bytes.
fn received(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(received(&p));
        } else if t.is_file() {
            out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
        }
    }
    out
}

/// No byte of the secret, and no other part of the filesystem, reached `dest`.
fn assert_nothing_leaked(what: &str, dest: &Path, rig: &Rig) {
    for (p, bytes) in received(dest) {
        assert!(!String::from_utf8_lossy(&bytes).contains(SECRET.trim()), "{what}: the secret arrived as {}\n{}", p.display(), rig.log());
        assert!(!p.ends_with("top.txt"), "{what}: another part of the filesystem arrived ({})\n{}", p.display(), rig.log());
    }
}

/// Runs `script` in `dir` as the unprivileged user.
fn as_user(dir: &Path, script: &str) {
    cmd("setpriv")
        .args([&format!("--reuid={USER}"), &format!("--regid={USER}"), "--clear-groups", "sh", "-c", script])
        .current_dir(dir)
        .ok();
}

fn chown_user(p: &Path) {
    std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
}

/// The key alone: with `--snap-allow=in/pub --snap-allow-write=in` it pushes a
/// symlink `pub -> <filesystem root>` over its own read directory, then pulls
/// it. The key is refused as it stands (a read directory inside its write
/// directory); the read directory stays a directory, and nothing arrives.
#[test]
fn a_key_cannot_redirect_its_own_read_directory() {
    let (rig, _secret) = rig("rt-self");
    let mnt = rig.fs.mnt();
    let inbox = mnt.join("in");
    let public = inbox.join("pub");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(public.join("public.txt"), "public\n").unwrap();
    let k = key(&rig, "rt-self", &format!("--snap-allow={} --snap-allow-write={}", public.display(), inbox.display()));
    let local = rig.dest("attack");
    std::fs::create_dir(&local).unwrap();
    std::os::unix::fs::symlink(mnt, local.join("pub")).unwrap();
    let push = k.rsync(&["-rl", "--force", &format!("{}/", local.display()), &format!("{}/", k.remote(&inbox))]);
    for (n, src) in [("the read directory", format!("{}/", public.display())), ("the filesystem's root", format!("{}/", mnt.display()))] {
        let dest = rig.dest(&format!("pulled-{}", n.len()));
        let out = k.rsync(&["-a", &format!("{}:{src}", k.host), &dest.display().to_string()]);
        assert_nothing_leaked(n, &dest, &rig);
        assert!(!out.status.success(), "{n}: the key was used\n{}", out.report());
    }
    assert!(std::fs::symlink_metadata(&public).unwrap().is_dir(), "the push replaced the read directory\n{}", push.report());
    assert!(rig.log().contains("lies inside"), "the refusal names the nesting\n{}", rig.log());
    rig.fs.assert_no_snapshot_left();
}

/// A read-only key and a local user: the user owns the directory above the
/// key's read directory, swaps it for a symlink to the filesystem's root,
/// and the key pulls. Nothing of the root-only secret arrives: the key is
/// refused for the user's directory above it, and for the symlink.
#[test]
fn a_local_user_cannot_redirect_a_read_directory() {
    let (rig, _secret) = rig("rt-user-read");
    let mnt = rig.fs.mnt();
    let home = mnt.join("data2/alice");
    let shared = home.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("notes.txt"), "alice's notes\n").unwrap();
    chown_user(&home);
    chown_user(&shared);
    let k = key(&rig, "rt-user-read", &format!("--snap-allow={}", shared.display()));
    as_user(&home, &format!("mv shared shared.old && ln -s {} shared", mnt.display()));
    assert!(std::fs::symlink_metadata(&shared).unwrap().file_type().is_symlink(), "the user could not swap");
    for src in [format!("{}/", shared.display()), format!("{}/rootonly/", shared.display())] {
        let dest = rig.dest(&format!("after-{}", src.len()));
        let out = k.rsync(&["-a", &format!("{}:{src}", k.host), &dest.display().to_string()]);
        assert_nothing_leaked(&src, &dest, &rig);
        assert!(!out.status.success(), "{src}: the key was used\n{}", out.report());
        // Refused for the user's directory above it, which the user could swap at any time.
        assert!(out.stderr.contains("belongs to"), "{src}: says why\n{}", out.report());
    }
    // With the user's directory made root's, the symlink itself is what is refused, and named.
    std::os::unix::fs::chown(&home, Some(0), Some(0)).unwrap();
    let dest = rig.dest("symlink");
    let out = k.rsync(&["-a", &format!("{}/", k.remote(&shared)), &dest.display().to_string()]);
    assert_nothing_leaked("the symlink", &dest, &rig);
    assert!(out.stderr.contains("is a symlink") && out.stderr.contains("real path"), "{}", out.report());
    rig.fs.assert_no_snapshot_left();
}

/// A write key and a local user: the user swaps the key's write directory
/// for a symlink to a root-owned directory (an /etc stand-in); the key
/// pushes. No file appears there.
#[test]
fn a_local_user_cannot_redirect_a_write_directory() {
    let (rig, _secret) = rig("rt-user-write");
    let mnt = rig.fs.mnt();
    let etc = mnt.join("etc-standin");
    std::fs::create_dir(&etc).unwrap();
    let home = mnt.join("data2/alice");
    let incoming = home.join("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    chown_user(&home);
    chown_user(&incoming);
    let k = key(&rig, "rt-user-write", &format!("--snap-allow-write={}", incoming.display()));
    as_user(&home, &format!("mv incoming incoming.old && ln -s {} incoming", etc.display()));
    let local = rig.dest("local");
    std::fs::create_dir(&local).unwrap();
    std::fs::write(local.join("pwned.conf"), "evil\n").unwrap();
    // The configured name, and the real path it now leads to.
    for dest in [format!("{}/", incoming.display()), format!("{}/pwned.conf", incoming.display()), format!("{}/", etc.display())] {
        let out = k.rsync(&["-a", &format!("{}/pwned.conf", local.display()), &format!("{}:{dest}", k.host)]);
        assert_eq!(std::fs::read_dir(&etc).unwrap().count(), 0, "{dest}: a file was written through the symlink\n{}", out.report());
        assert!(!out.status.success(), "{dest}: the key was used\n{}", out.report());
    }
    rig.fs.assert_no_snapshot_left();
}

/// Code run inside the confined rsync: a probe stands in for rsync (the
/// config's `rsync_path`) and tries each system call the confinement
/// refuses, then reports its capability sets and seccomp mode. Every call
/// fails with EPERM, the only effective capability is the pull's one, and
/// the filter is on.
#[test]
fn code_inside_the_confined_rsync_holds_no_power() {
    let (rig, _secret) = rig("rt-probe");
    let (k, work) = probe_key(&rig, "rt-probe");
    let out = k.rsync(&["-a", &format!("{}/", k.remote(&rig.src())), &rig.dest("probed").display().to_string()]);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("probe ")).collect();
    let log = std::fs::read_to_string(work.path().join("snaprsync.log")).unwrap_or_default();
    assert!(lines.iter().any(|l| l.starts_with("probe done")), "the probe did not run confined\n{}\n{log}", out.report());
    for l in lines.iter().filter(|l| l.starts_with("probe call ")) {
        assert!(l.ends_with(" EPERM"), "a refused call got through: {l}\n{}", out.report());
    }
    assert!(lines.iter().filter(|l| l.starts_with("probe call ")).count() >= 36, "{lines:#?}");
    // clone3 as on a kernel without it (the C library falls back to clone, whose flags the filter reads).
    assert!(lines.contains(&"probe clone3 ENOSYS"), "{lines:#?}");
    assert!(lines.contains(&"probe fork ok") && lines.contains(&"probe socketpair ok"), "what rsync needs is refused: {lines:#?}");
    let caps = lines.iter().find(|l| l.starts_with("probe caps ")).unwrap_or_else(|| panic!("{lines:#?}"));
    // CAP_DAC_READ_SEARCH (bit 2) alone, in the effective, permitted and bounding sets.
    assert_eq!(
        *caps,
        "probe caps eff=0000000000000004 prm=0000000000000004 inh=0000000000000000 bnd=0000000000000004 amb=0000000000000000"
    );
    assert!(lines.contains(&"probe seccomp 2") && lines.contains(&"probe no_new_privs 1"), "{lines:#?}");
    assert!(lines.contains(&"probe env HOME LANG PATH"), "the environment was inherited: {lines:#?}");
    rig.fs.assert_no_snapshot_left();
}

/// A pull that names no path rsync would read (no `-r` or `-d`, or `-R`
/// with no path) snapshots nothing: it is refused, never run outside the
/// confinement. The probe stands in for rsync, so a run would show.
#[test]
fn a_pull_that_names_nothing_never_runs_unconfined() {
    let (rig, _secret) = rig("rt-nothing");
    let (k, _work) = probe_key(&rig, "rt-nothing");
    let src = rig.src().display().to_string();
    for command in [
        format!("rsync --server --sender -l {src}"),
        format!("rsync --server --sender -lR {src}"),
        "rsync --server --sender -rR .".to_owned(),
    ] {
        let out = k.ssh(Some(&command)).run();
        assert!(!out.stderr.contains("probe "), "{command}: rsync ran\n{}", out.report());
        assert_eq!(out.code(), Some(85), "{command}\n{}", out.report());
    }
    rig.fs.assert_no_snapshot_left();
}

/// A key that may read the rig's source, whose config names the probe (built
/// here from [`PROBE`]) as rsync; and the directory holding both.
fn probe_key(rig: &Rig, name: &str) -> (ForcedKey, tempfile::TempDir) {
    let work = testbed::tempdir(&format!("{name}-bin"));
    let probe = work.path().join("probe");
    let source = work.path().join("probe.c");
    std::fs::write(&source, PROBE).unwrap();
    cmd("cc").arg("-O").arg("-o").arg(&probe).arg(&source).ok();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = write_config(work.path(), "on_snapshot_failure = \"fail\"\n");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("rsync_path = \"/usr/bin/rsync\"", &format!("rsync_path = \"{}\"", probe.display()));
    std::fs::write(&config, text).unwrap();
    let command = format!("{} --snap-config={} --snap-restrict --snap-allow={}", snaprsync(), config.display(), rig.src().display());
    (ForcedKey::new(rig.sshd(), name, &command), work)
}

/// The probe that stands in for rsync (C, so that its system calls are its own).
const PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
extern char **environ;
int main(void) {
    struct { const char *name; long nr; } calls[] = {
        {"mount", SYS_mount}, {"umount2", SYS_umount2}, {"pivot_root", SYS_pivot_root}, {"chroot", SYS_chroot},
        {"open_tree", SYS_open_tree}, {"move_mount", SYS_move_mount}, {"fsopen", SYS_fsopen}, {"fsconfig", SYS_fsconfig},
        {"fsmount", SYS_fsmount}, {"fspick", SYS_fspick}, {"mount_setattr", SYS_mount_setattr},
        {"open_by_handle_at", SYS_open_by_handle_at}, {"name_to_handle_at", SYS_name_to_handle_at},
        {"ptrace", SYS_ptrace}, {"process_vm_readv", SYS_process_vm_readv}, {"process_vm_writev", SYS_process_vm_writev},
        {"bpf", SYS_bpf}, {"init_module", SYS_init_module}, {"finit_module", SYS_finit_module},
        {"delete_module", SYS_delete_module}, {"kexec_load", SYS_kexec_load}, {"kexec_file_load", SYS_kexec_file_load},
        {"unshare", SYS_unshare}, {"setns", SYS_setns}, {"keyctl", SYS_keyctl}, {"add_key", SYS_add_key},
        {"request_key", SYS_request_key}, {"perf_event_open", SYS_perf_event_open}, {"userfaultfd", SYS_userfaultfd},
        {"io_uring_setup", SYS_io_uring_setup}, {"swapoff", SYS_swapoff}, {"pidfd_open", SYS_pidfd_open},
        {"pidfd_getfd", SYS_pidfd_getfd}, {"kcmp", SYS_kcmp},
    };
    for (unsigned i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        /* Harmless arguments: where a call is let through it fails otherwise, or does nothing. */
        long r = syscall(calls[i].nr, -1L, 0L, 0L, 0L, 0L, 0L);
        if (calls[i].nr == SYS_unshare) r = syscall(SYS_unshare, 0L);
        fprintf(stderr, "probe call %s %s\n", calls[i].name, r == -1 ? strerrorname_np(errno) : "allowed");
    }
    /* A new user namespace through clone (a child, if it were let through, ends at once). */
    long c = syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L);
    if (c == 0) _exit(0);
    fprintf(stderr, "probe call clone_newuser %s\n", c == -1 ? strerrorname_np(errno) : "allowed");
    long sk = syscall(SYS_socket, (long)AF_INET, (long)SOCK_STREAM, 0L);
    fprintf(stderr, "probe call socket_inet %s\n", sk == -1 ? strerrorname_np(errno) : "allowed");
    long s3 = syscall(SYS_clone3, 0L, 0L);
    fprintf(stderr, "probe clone3 %s\n", s3 == -1 ? strerrorname_np(errno) : "allowed");
    /* What rsync itself needs still works: a fork, and a unix socket pair. */
    int sv[2];
    pid_t f = fork();
    if (f == 0) _exit(0);
    fprintf(stderr, "probe fork %s\n", f > 0 ? "ok" : strerrorname_np(errno));
    fprintf(stderr, "probe socketpair %s\n", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 ? "ok" : strerrorname_np(errno));
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    syscall(SYS_capget, &h, d);
    unsigned long long bnd = 0;
    for (int c = 0; c < 64; c++) if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) bnd |= 1ULL << c;
    unsigned long long amb = 0;
    for (int c = 0; c < 64; c++) if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1) amb |= 1ULL << c;
    fprintf(stderr, "probe caps eff=%08x%08x prm=%08x%08x inh=%08x%08x bnd=%016llx amb=%016llx\n",
            d[1].effective, d[0].effective, d[1].permitted, d[0].permitted, d[1].inheritable, d[0].inheritable, bnd, amb);
    fprintf(stderr, "probe seccomp %d\n", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
    fprintf(stderr, "probe no_new_privs %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    fprintf(stderr, "probe env");
    for (char **e = environ; *e; e++) { fprintf(stderr, " %.*s", (int)strcspn(*e, "="), *e); }
    fprintf(stderr, "\nprobe done\n");
    return 0;
}
"#;
