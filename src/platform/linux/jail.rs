//! What a confined rsync may still do once its root is built (restricted
//! mode): the capabilities it keeps, the system calls it is refused, and the
//! environment it gets. Applied by the child (`child`) after `pivot_root`,
//! just before it becomes rsync, so that code run inside rsync (a protocol
//! bug, a library it loads) holds no more than copying files takes.

use std::collections::BTreeMap;
use std::ffi::OsString;

use caps::{CapSet, Capability};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// The capabilities a confined rsync keeps: a pull only reads (past any
/// file's permissions); a push also creates files of any owner and mode.
pub fn kept(push: bool) -> Vec<Capability> {
    use Capability::*;
    if push {
        vec![CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_MKNOD]
    } else {
        vec![CAP_DAC_READ_SEARCH]
    }
}

/// The system calls a confined rsync is refused (EPERM): none of them is
/// needed to copy files, and each would undo the confinement or reach the
/// kernel or other processes.
pub fn refused_calls() -> Vec<(&'static str, i64)> {
    vec![
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("chroot", libc::SYS_chroot),
        ("open_tree", libc::SYS_open_tree),
        ("move_mount", libc::SYS_move_mount),
        ("fsopen", libc::SYS_fsopen),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fspick", libc::SYS_fspick),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("ptrace", libc::SYS_ptrace),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("bpf", libc::SYS_bpf),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("kexec_load", libc::SYS_kexec_load),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("unshare", libc::SYS_unshare),
        ("setns", libc::SYS_setns),
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("request_key", libc::SYS_request_key),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register),
        ("swapon", libc::SYS_swapon),
        ("swapoff", libc::SYS_swapoff),
        ("reboot", libc::SYS_reboot),
        ("pidfd_open", libc::SYS_pidfd_open),
        ("pidfd_getfd", libc::SYS_pidfd_getfd),
        ("kcmp", libc::SYS_kcmp),
        #[cfg(target_arch = "x86_64")]
        ("modify_ldt", libc::SYS_modify_ldt),
    ]
}

/// The namespace flags `clone` is refused with: a new user namespace would
/// give the process every capability over new network (and other)
/// namespaces, which is kernel attack surface rsync never needs.
const CLONE_NEW: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The filter: every call of [`refused_calls`], `clone` with a namespace
/// flag and `socket` of any family but `AF_UNIX` fail with EPERM; any other
/// architecture's calls end the process (seccompiler's own check), and on
/// x86-64 so does the x32 range (numbers with bit 30 set), which would
/// otherwise reach the same calls under other numbers.
pub fn filter() -> Result<BpfProgram, String> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = refused_calls().into_iter().map(|(_, nr)| (nr, Vec::new())).collect();
    let rule = |arg, op, value| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)
            .and_then(|c| SeccompRule::new(vec![c]))
            .map_err(|e| format!("seccomp: {e}"))
    };
    // `clone` with any namespace flag (its first argument); `fork` and threads pass none.
    let clone: Result<Vec<_>, String> = CLONE_NEW.iter().map(|&f| rule(0, SeccompCmpOp::MaskedEq(f as u64), f as u64)).collect();
    rules.insert(libc::SYS_clone, clone?);
    // Sockets of any family but AF_UNIX (rsync talks over its stdin and stdout,
    // and the C library asks nscd over a unix socket).
    rules.insert(libc::SYS_socket, vec![rule(0, SeccompCmpOp::Ne, libc::AF_UNIX as u64)?]);
    let arch = arch()?;
    let f = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
        .map_err(|e| format!("seccomp: {e}"))?;
    let mut prog: BpfProgram = f.try_into().map_err(|e: seccompiler::BackendError| format!("seccomp: {e}"))?;
    if cfg!(target_arch = "x86_64") {
        // After the architecture check (its first three instructions): load
        // the number; x32 (>= 0x40000000) ends the process. Jumps are relative,
        // so the rest of the program is unchanged by the insertion.
        let x32 = [
            seccompiler::sock_filter { code: 0x20, jt: 0, jf: 0, k: 0 }, // BPF_LD | BPF_W | BPF_ABS, seccomp_data.nr
            seccompiler::sock_filter { code: 0x35, jt: 0, jf: 1, k: 0x4000_0000 }, // BPF_JMP | BPF_JGE | BPF_K
            seccompiler::sock_filter { code: 0x06, jt: 0, jf: 0, k: libc::SECCOMP_RET_KILL_PROCESS }, // BPF_RET | BPF_K
        ];
        prog.splice(3..3, x32);
    }
    Ok(prog)
}

/// A second filter: `clone3` fails with ENOSYS, as on a kernel without it,
/// so that the C library falls back to `clone`, whose flags the first filter
/// can read (clone3's are in memory, out of a filter's reach).
pub fn clone3_filter() -> Result<BpfProgram, String> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let f = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), arch()?)
        .map_err(|e| format!("seccomp: {e}"))?;
    f.try_into().map_err(|e: seccompiler::BackendError| format!("seccomp: {e}"))
}

/// This machine's architecture, as the filter names it.
fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
        format!(
            "restricted mode has no seccomp filter for this machine's architecture ({}); it confines rsync on x86-64, aarch64 and riscv64 only",
            std::env::consts::ARCH
        )
    })
}

/// Drops every capability but [`kept`] from the bounding set (what rsync, run
/// as root, is given on exec), clears the inheritable and ambient sets, sets
/// `no_new_privs`, and installs [`filter`]. Once this returns, even this
/// process cannot mount or unshare again.
pub fn apply(push: bool) -> Result<(), String> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    let keep = kept(push);
    // The capabilities this kernel knows: an older one refuses to drop newer ones.
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| format!("dropping {cap} from the bounding set: {e}"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clearing the ambient capabilities: {e}"))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| format!("clearing the inheritable capabilities: {e}"))?;
    // What this process holds of them (a container may hold fewer).
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| format!("reading the permitted capabilities: {e}"))?;
    let keep_set: caps::CapsHashSet = keep.iter().copied().filter(|c| permitted.contains(c)).collect();
    caps::set(None, CapSet::Effective, &keep_set).map_err(|e| format!("lowering the effective capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &keep_set).map_err(|e| format!("lowering the permitted capabilities: {e}"))?;
    seccompiler::apply_filter(&filter()?).map_err(|e| format!("installing the seccomp filter: {e}"))?;
    seccompiler::apply_filter(&clone3_filter()?).map_err(|e| format!("installing the seccomp filter: {e}"))
}

/// The whole environment a confined rsync gets: nothing the ssh client sent
/// (`LD_*`, `LC_*`, `RSYNC_*`, `TMPDIR` and the rest never reach it).
pub fn environment() -> Vec<(OsString, OsString)> {
    [("PATH", "/usr/bin:/bin"), ("HOME", "/"), ("LANG", "C.UTF-8")].into_iter().map(|(k, v)| (k.into(), v.into())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_builds_and_names_each_call_once() {
        let prog = filter().unwrap();
        assert!(prog.len() > refused_calls().len());
        assert!(clone3_filter().unwrap().len() > 3);
        let mut names: Vec<_> = refused_calls().iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), refused_calls().len());
        if cfg!(target_arch = "x86_64") {
            // The x32 check sits right after the architecture check.
            assert_eq!((prog[3].code, prog[4].k, prog[5].k), (0x20, 0x4000_0000, libc::SECCOMP_RET_KILL_PROCESS));
        }
    }

    #[test]
    fn a_pull_keeps_only_reading() {
        assert_eq!(kept(false), [Capability::CAP_DAC_READ_SEARCH]);
        assert!(!kept(true).contains(&Capability::CAP_SYS_ADMIN));
        assert!(kept(true).contains(&Capability::CAP_MKNOD));
    }

    #[test]
    fn the_environment_is_built_not_inherited() {
        let names: Vec<_> = environment().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["PATH", "HOME", "LANG"]);
    }
}
