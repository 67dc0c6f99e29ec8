#!/usr/bin/env bash
# The guest lab: a QEMU virtual machine for the tests that need kernel features
# the host lacks (device-mapper for LVM, the ZFS module). Debian 12, as root.
#
#   scripts/guest.sh setup
#       Installs QEMU, busybox and the LVM and filesystem tools with apt, downloads
#       Debian's kernel package and builds a small initramfs, all cached under
#       target/guest/ (or $GUEST_CACHE). Cheap to run again; remove that
#       directory to take the newest kernel.
#       ZFS: adds Debian's contrib component to apt when it is missing, installs
#       zfsutils-linux (the guest uses the host's tools) and zfs-dkms with the
#       guest kernel's headers, has dkms build the module for the guest kernel,
#       and keeps the built modules in the cache (debug info stripped): a
#       second setup builds nothing. GUEST_ZFS=0 leaves ZFS out.
#
#   scripts/guest.sh run [--disk IMG[:SIZE]]... [--zfs] [--share DIR] [--mem MB]
#                        [--smp N] [--timeout SECS] [--status-file FILE]
#                        -- SCRIPT [ARGS]...
#       Boots the guest and runs SCRIPT as root in a chroot of the host's root
#       (mounted read-only over 9p), so every host tool and build is there.
#       /proc, /sys, /dev (devtmpfs), /run and /tmp (tmpfs) are the guest's own;
#       This checkout is seen at its own path even when it lies under /tmp or
#       /run (a clone made there): it is shared read-only over the guest's own.
#       SCRIPT starts in the host's current directory when the guest can see it,
#       else in /. Its environment:
#         GUEST_SHARE     a writable directory shared with the host: --share DIR,
#                         else a scratch directory removed afterwards
#         GUEST_DISKS     the --disk images as guest block devices, in order
#                         (space-separated, e.g. "/dev/vda /dev/vdb")
#         LVM_SYSTEM_DIR  an lvm.conf that works without udev
#         LVM_SUPPRESS_FD_WARNINGS=1  (a test's extra open descriptors are fine)
#       --zfs loads the ZFS modules before SCRIPT starts (/dev/zfs is there).
#       --disk IMG:SIZE creates IMG as a sparse file of SIZE (as truncate(1) reads
#       it, e.g. 2G) when it does not exist; an existing IMG is used as it is.
#       A SCRIPT under /tmp, /run, /dev, /proc or /sys (hidden in the guest) is
#       copied into the run and started from there.
#       SCRIPT's stdout and stderr are printed on the host's stdout and stderr
#       once the guest has powered off; the guest kernel's messages are not.
#       The guest powers off when SCRIPT ends; after --timeout (default 600 s,
#       or $GUEST_TIMEOUT) QEMU is killed.
#       Exit status: SCRIPT's; 124 when the timeout struck, 125 when guest.sh or
#       the guest failed before SCRIPT ended (both with "guest.sh: error:" on
#       stderr, after the guest's console log when it booted). --status-file FILE receives SCRIPT's status only
#       when SCRIPT ran to its end, so a caller can tell the two apart.
#       GUEST_DEBUG=1 keeps the kernel's messages in the console log and prints
#       that log on stderr after the run.
#
# QEMU runs under software emulation (TCG): KVM does not work on these machines.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${GUEST_CACHE:-$ROOT/target/guest}
PACKAGES=(qemu-system-x86 busybox-static lvm2 xfsprogs e2fsprogs thin-provisioning-tools xz-utils fdisk)
# Loaded in this order in the guest, each after the modules it depends on.
# crc32c_generic comes first: xfs, ext4 and dm_persistent_data ask the crypto
# API for crc32c at run time, which no module dependency records.
MODULES=(crc32c_generic virtio_pci virtio_blk 9pnet_virtio 9p loop dm_mod dm_snapshot dm_thin_pool ext4 xfs)
GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'guest.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 125; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_updated=
apt_update() {
    [[ -n $apt_updated ]] && return
    apt-get update -qq
    apt_updated=1
}

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "installing packages needs root (or install: ${missing[*]})"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # lvm2 brings services (dmeventd, lvm2-monitor): keep them from starting.
    policy=/usr/sbin/policy-rc.d made_policy=''
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    trap '[[ -z $made_policy ]] || rm -f "$policy"' EXIT
    apt_update
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The kernel package that linux-image-amd64 depends on now, as NAME=VERSION.
kernel_package() {
    local name version
    name=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
    if [[ -z $name ]]; then
        apt_update
        name=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
    fi
    [[ -n $name ]] || die "apt knows no kernel package that linux-image-amd64 depends on"
    version=$(apt-cache policy "$name" | sed -n 's/^ *Candidate: //p')
    [[ -n $version && $version != "(none)" ]] || die "apt has no candidate for $name"
    printf '%s=%s\n' "$name" "$version"
}

# Downloads and unpacks the kernel package into $CACHE/kernel.
fetch_kernel() {
    local pkg=$1
    log "downloading $pkg"
    rm -rf "$CACHE/deb" "$CACHE/kernel" "$CACHE/kernel.pkg"
    mkdir -p "$CACHE/deb"
    (cd "$CACHE/deb" && apt-get download -qq -o APT::Sandbox::User=root "$pkg")
    dpkg -x "$CACHE"/deb/*.deb "$CACHE/kernel"
    rm -rf "$CACHE/deb"
    local kver
    kver=$(kernel_release)
    # The package ships no modules.dep (its postinst makes it): make one.
    busybox depmod -b "$CACHE/kernel" "$kver"
    printf '%s\n' "$pkg" >"$CACHE/kernel.pkg"
}

kernel_release() {
    local dirs=("$CACHE"/kernel/lib/modules/*)
    [[ ${#dirs[@]} == 1 && -d ${dirs[0]} ]] || die "expected one kernel under $CACHE/kernel/lib/modules"
    basename "${dirs[0]}"
}

# Prints the .ko paths (relative to the modules dir) of the modules named
# after MODDIR and of every module they depend on, each after its
# dependencies, builtins left out.
module_closure() {
    local moddir=$1
    shift
    declare -gA dep_of=() path_of=() seen=()
    local line key deps
    while IFS= read -r line; do
        key=${line%%:*}
        deps=${line#*:}
        local name=${key##*/}
        name=${name%.ko}
        name=${name//-/_}
        path_of[$name]=$key
        dep_of[$name]=$deps
    done <"$moddir/modules.dep"
    local builtin=" "
    if [[ -f $moddir/modules.builtin ]]; then
        builtin+=$(sed 's|.*/||; s|\.ko$||; s|-|_|g' "$moddir/modules.builtin" | tr '\n' ' ')
    fi
    local m
    for m in "$@"; do
        if [[ $builtin == *" $m "* ]]; then continue; fi
        visit "$m"
    done
}

visit() {
    local name=$1 d dname
    [[ -n ${seen[$name]:-} ]] && return
    seen[$name]=1
    [[ -n ${path_of[$name]:-} ]] || die "kernel module $name not found in the guest kernel"
    for d in ${dep_of[$name]}; do
        dname=${d##*/}
        dname=${dname%.ko}
        visit "${dname//-/_}"
    done
    printf '%s\n' "${path_of[$name]}"
}

# The initramfs's /init: mounts the host's root, runs the job, powers off.
write_init() {
    cat >"$1" <<'EOF'
#!/bin/busybox sh
# /init of the guest lab (scripts/guest.sh): loads the modules, mounts the
# host's root read-only over 9p, runs the job in a chroot of it, powers off.
/bin/busybox --install -s /bin
export PATH=/bin
say() { echo "guest-init: $*" >/dev/console; }
# Without a status file the host reports that the guest failed.
fail() { say "error: $*"; sync; poweroff -f; sleep 10; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/guest/modules); do
    insmod "/lib/modules/$(uname -r)/$m" || fail "insmod $m"
done
R=/newroot
P9=trans=virtio,version=9p2000.L,msize=512000
mkdir -p $R
mount -t 9p -o $P9,ro,cache=loose hostroot $R || fail "mount host root"
mount -t proc proc $R/proc || fail "mount proc"
mount -t sysfs sys $R/sys || fail "mount sys"
mount -t devtmpfs dev $R/dev || fail "mount dev"
# What udev would add to /dev: bash's <(...) needs /dev/fd.
ln -s /proc/self/fd $R/dev/fd
ln -s /proc/self/fd/0 $R/dev/stdin
ln -s /proc/self/fd/1 $R/dev/stdout
ln -s /proc/self/fd/2 $R/dev/stderr
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount -t tmpfs -o mode=755 run $R/run || fail "mount run"
mount -t tmpfs -o mode=1777 tmp $R/tmp || fail "mount tmp"
G=$R/run/guest
mkdir -p $G/ctl $G/share $G/lvm $R/run/lock $R/run/lvm
mount -t 9p -o $P9 guestctl $G/ctl || fail "mount control share"
mount -t 9p -o $P9 guestshare $G/share || fail "mount share"
if [ -e $G/ctl/repo ]; then
    repo=$(cat $G/ctl/repo)
    mkdir -p "$R$repo"
    mount -t 9p -o $P9,ro,cache=loose hostrepo "$R$repo" || fail "mount the checkout at $repo"
fi
cp /etc/guest/lvm.conf $G/lvm/lvm.conf
if [ -e $G/ctl/zfs ]; then
    [ -f /etc/guest/modules.zfs ] || fail "no ZFS modules in the guest: run scripts/guest.sh setup"
    for m in $(cat /etc/guest/modules.zfs); do
        insmod "/lib/modules/$(uname -r)/$m" || fail "insmod $m"
    done
fi
# The disks in the order given: QEMU gave each a serial guestdiskN.
disks=
n=0
while [ -e $G/ctl/disk$n ]; do
    dev=
    for s in /sys/block/vd*/serial; do
        b=${s%/serial}
        [ "$(cat "$s")" = guestdisk$n ] && dev=/dev/${b##*/}
    done
    [ -n "$dev" ] || fail "no block device with serial guestdisk$n"
    disks="$disks${disks:+ }$dev"
    n=$((n + 1))
done
say "running the job"
chroot $R /usr/bin/env -i PATH="$(cat /etc/guest/path)" HOME=/root LANG=C.UTF-8 TERM=dumb \
    GUEST_SHARE=/run/guest/share GUEST_DISKS="$disks" LVM_SYSTEM_DIR=/run/guest/lvm LVM_SUPPRESS_FD_WARNINGS=1 \
    /bin/bash /run/guest/ctl/job </dev/null >$G/ctl/stdout 2>$G/ctl/stderr
echo $? >$G/ctl/status.new && mv $G/ctl/status.new $G/ctl/status
sync
umount $G/ctl $G/share
poweroff -f
sleep 10
EOF
    chmod 755 "$1"
}

# lvm.conf for a guest without udev and with a read-only /etc.
write_lvm_conf() {
    cat >"$1" <<'EOF'
# lvm.conf of the guest lab (scripts/guest.sh): no udev, no dmeventd, /etc read-only.
devices {
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    use_devicesfile = 0
    hints = "none"
}
activation {
    udev_sync = 0
    udev_rules = 0
    verify_udev_operations = 0
    monitoring = 0
}
global {
    event_activation = 0
}
backup {
    backup = 0
    archive = 0
}
EOF
}

# Emulated, the kernel takes seconds to decompress itself and to check each
# module's signature: the guest boots an uncompressed vmlinux (QEMU starts it
# through its PVH entry) and loads modules without their signatures (the kernel
# does not enforce them; it only marks itself tainted).
extract_vmlinux() {
    local bz=$1 out=$2 off
    off=$(grep -abo $'\xfd7zXZ\x00' "$bz" | head -n1 | cut -d: -f1)
    [[ -n $off ]] || die "no xz payload in $bz"
    # xz complains about the bytes after the payload: the ELF check below judges.
    tail -c +$((off + 1)) "$bz" | xz -dcq >"$out.new" 2>/dev/null || true
    [[ $(head -c 4 "$out.new" | od -An -c | tr -d ' ') == 177ELF ]] || die "could not extract vmlinux from $bz"
    mv "$out.new" "$out"
}

strip_signature() {
    local f=$1 size len
    # ($(...) drops the marker's final newline.)
    [[ $(tail -c 28 "$f" | tr -d '\0') == '~Module signature appended~' ]] || return 0
    size=$(stat -c %s "$f")
    # struct module_signature (12 bytes, ending in the big-endian signature
    # length) sits before the 28-byte marker.
    len=$(tail -c 32 "$f" | head -c 4 | od -An -tu1 | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    truncate -s $((size - 28 - 12 - len)) "$f"
}

build_initramfs() {
    local kver=$1 stage=$CACHE/initramfs
    local moddir=$CACHE/kernel/lib/modules/$kver
    rm -rf "$stage" "$CACHE/initramfs.cpio"
    mkdir -p "$stage"/{bin,dev,proc,sys,newroot,etc/guest,lib/modules/"$kver"}
    cp /bin/busybox "$stage/bin/busybox"
    mknod "$stage/dev/console" c 5 1
    mknod "$stage/dev/null" c 1 3
    local closure m
    closure=$(module_closure "$moddir" "${MODULES[@]}")
    : >"$stage/etc/guest/modules"
    for m in $closure; do
        mkdir -p "$stage/lib/modules/$kver/$(dirname "$m")"
        cp "$moddir/$m" "$stage/lib/modules/$kver/$m"
        strip_signature "$stage/lib/modules/$kver/$m"
        printf '%s\n' "$m" >>"$stage/etc/guest/modules"
    done
    # ZFS's modules (and what they need beyond the above), loaded on demand.
    if [[ -f $moddir/updates/dkms/zfs.ko ]]; then
        : >"$stage/etc/guest/modules.zfs"
        for m in $(module_closure "$moddir" "${MODULES[@]}" zfs); do
            grep -qxF "$m" "$stage/etc/guest/modules" && continue
            mkdir -p "$stage/lib/modules/$kver/$(dirname "$m")"
            cp "$moddir/$m" "$stage/lib/modules/$kver/$m"
            strip_signature "$stage/lib/modules/$kver/$m"
            printf '%s\n' "$m" >>"$stage/etc/guest/modules.zfs"
        done
    fi
    cp "$moddir"/modules.{builtin,order} "$stage/lib/modules/$kver/" 2>/dev/null || true
    busybox depmod -b "$stage" "$kver"
    printf '%s\n' "$GUEST_PATH" >"$stage/etc/guest/path"
    write_init "$stage/init"
    write_lvm_conf "$stage/etc/guest/lvm.conf"
    # Uncompressed: decompressing under emulation costs more than reading it.
    (cd "$stage" && find . | LC_ALL=C sort | busybox cpio -o -H newc >"$CACHE/initramfs.cpio.new" 2>/dev/null)
    mv "$CACHE/initramfs.cpio.new" "$CACHE/initramfs.cpio"
}

# Debian's ZFS is in contrib: a sources entry for it, unless apt reads contrib.
ensure_contrib() {
    local codename
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    apt-cache policy 2>/dev/null | grep -q " $codename/contrib " && return
    log "adding Debian's contrib component for $codename (ZFS)"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$codename" "$codename" >/etc/apt/sources.list.d/debian-contrib.sources
    apt_updated=
    apt_update
}

# The ZFS module built by dkms for the guest kernel, its .ko files kept in the
# kernel tree of the cache; zfsutils-linux on the host (the guest runs the
# host's tools). Takes minutes the first time (the build), nothing after.
setup_zfs() {
    local pkg=$1 kver=$2 version=${1#*=}
    local dest=$CACHE/kernel/lib/modules/$kver/updates/dkms
    local want=(zfsutils-linux zfs-dkms dkms "linux-headers-$kver")
    local missing=() p
    for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
    if ((${#missing[@]})); then
        [[ $(id -u) == 0 ]] || die "installing packages needs root (or install: ${missing[*]})"
        ensure_contrib
        log "installing ${missing[*]} (dkms builds the ZFS module for $kver: minutes)"
        local started=$SECONDS args=() policy=/usr/sbin/policy-rc.d made=''
        for p in "${missing[@]}"; do
            # The headers of the guest's kernel, at its version.
            [[ $p == linux-headers-* ]] && p+="=$version"
            args+=("$p")
        done
        # zfsutils-linux brings services (zed, zfs-mount): keep them from starting.
        if [[ ! -e $policy ]]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made=1
        fi
        apt_update
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${args[@]}" >/dev/null \
            || { [[ -z $made ]] || rm -f "$policy"; die "could not install ${args[*]}"; }
        [[ -z $made ]] || rm -f "$policy"
        log "ZFS packages installed (with the module build) in $((SECONDS - started)) s"
    fi
    local zver
    zver=$(dpkg-query -W -f='${Version}' zfs-dkms)
    zver=${zver%%-*}
    if [[ -f $CACHE/zfs.stamp && $(<"$CACHE/zfs.stamp") == "zfs-$zver" && -f $dest/zfs.ko ]]; then
        return
    fi
    local built=/var/lib/dkms/zfs/$zver/$kver/x86_64/module
    if [[ ! -f $built/zfs.ko ]]; then
        log "dkms: building zfs $zver for $kver (minutes)"
        local started=$SECONDS
        dkms build "zfs/$zver" -k "$kver" >/dev/null || die "dkms could not build zfs $zver for $kver (see /var/lib/dkms/zfs/$zver/build/make.log)"
        log "dkms built zfs in $((SECONDS - started)) s"
    fi
    rm -rf "$dest"
    mkdir -p "$dest"
    local ko
    for ko in "$built"/*.ko; do
        strip --strip-debug -o "$dest/$(basename "$ko")" "$ko"
    done
    busybox depmod -b "$CACHE/kernel" "$kver"
    printf 'zfs-%s\n' "$zver" >"$CACHE/zfs.stamp"
}

setup() {
    install_packages
    mkdir -p "$CACHE"
    local pkg kver stamp
    # A cached kernel is kept (asking apt costs seconds): remove $CACHE to take
    # the newest one.
    if [[ -f $CACHE/kernel.pkg && -d $CACHE/kernel/boot ]]; then
        pkg=$(<"$CACHE/kernel.pkg")
    else
        pkg=$(kernel_package)
        fetch_kernel "$pkg"
    fi
    kver=$(kernel_release)
    [[ ${GUEST_ZFS:-1} == 0 ]] || setup_zfs "$pkg" "$kver"
    # The initramfs follows the kernel, the ZFS modules and this script (which
    # holds /init).
    local zfs_stamp=none
    [[ ! -f $CACHE/zfs.stamp ]] || zfs_stamp=$(<"$CACHE/zfs.stamp")
    stamp="$pkg $zfs_stamp $(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
    if [[ -f $CACHE/initramfs.cpio && -f $CACHE/initramfs.stamp && $(<"$CACHE/initramfs.stamp") == "$stamp" ]]; then
        return
    fi
    log "building the initramfs for $kver"
    build_initramfs "$kver"
    extract_vmlinux "$CACHE/kernel/boot/vmlinuz-$kver" "$CACHE/vmlinux"
    printf '%s\n' "$stamp" >"$CACHE/initramfs.stamp"
}

run() {
    local disks=() zfs='' share='' mem=1024 smp=2 timeout=${GUEST_TIMEOUT:-600} status_file=''
    while (($#)); do
        case $1 in
            --disk) disks+=("${2:?--disk needs IMG[:SIZE]}"); shift 2 ;;
            --zfs) zfs=1; shift ;;
            --share) share=${2:?--share needs a directory}; shift 2 ;;
            --mem) mem=${2:?--mem needs megabytes}; shift 2 ;;
            --smp) smp=${2:?--smp needs a count}; shift 2 ;;
            --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
            --status-file) status_file=${2:?--status-file needs a path}; shift 2 ;;
            --) shift; break ;;
            *) die "unknown option $1 (see the header of scripts/guest.sh)" ;;
        esac
    done
    (($#)) || die "run needs -- SCRIPT [ARGS]"
    [[ -f $CACHE/initramfs.cpio && -f $CACHE/vmlinux ]] || die "no guest built: run scripts/guest.sh setup"
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing: run scripts/guest.sh setup"
    [[ -z $status_file ]] || rm -f "$status_file"

    # Global: the EXIT trap needs it.
    run_dir=$(mktemp -d "${TMPDIR:-/tmp}/guest-run.XXXXXX")
    # QEMU is stopped and the run removed however this script ends (timeout(1)
    # passes the TERM on to QEMU).
    qemu_pid=
    trap 'if [[ -n $qemu_pid ]]; then kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" || true; fi; rm -rf "$run_dir"' EXIT
    trap 'exit 130' INT TERM HUP
    mkdir "$run_dir/ctl"
    if [[ -n $zfs ]]; then
        [[ -f $CACHE/zfs.stamp ]] || die "the guest has no ZFS modules: run scripts/guest.sh setup (without GUEST_ZFS=0)"
        : >"$run_dir/ctl/zfs"
    fi
    if [[ -z $share ]]; then
        share=$run_dir/share
        mkdir "$share"
    fi
    [[ -d $share ]] || die "--share $share is not a directory"

    local script=$1
    shift
    if [[ $script == */* ]]; then
        [[ -f $script && -x $script ]] || die "no executable file $script"
        script=$(realpath "$script")
        case $script in
            /tmp/* | /run/* | /dev/* | /proc/* | /sys/*)
                cp "$script" "$run_dir/ctl/script"
                chmod +x "$run_dir/ctl/script"
                script=/run/guest/ctl/script
                ;;
        esac
    fi
    local cwd=/
    case $PWD in /tmp | /tmp/* | /run | /run/* | /dev/* | /proc/* | /sys/*) ;; *) cwd=$PWD ;; esac
    # A checkout under a directory the guest has its own of: shared at its path.
    local repo_share=()
    case $ROOT in
        /tmp/* | /run/*)
            [[ $ROOT != *,* ]] || die "a checkout path must not contain a comma: $ROOT"
            printf '%s\n' "$ROOT" >"$run_dir/ctl/repo"
            repo_share=(-virtfs "local,path=$ROOT,mount_tag=hostrepo,security_model=none,readonly=on,multidevs=remap")
            [[ $PWD != "$ROOT" && $PWD != "$ROOT"/* ]] || cwd=$PWD
            ;;
    esac
    printf 'cd %q 2>/dev/null || cd /\nexec %q' "$cwd" "$script" >"$run_dir/ctl/job"
    local a
    for a in "$@"; do printf ' %q' "$a" >>"$run_dir/ctl/job"; done
    printf '\n' >>"$run_dir/ctl/job"

    # shellcheck disable=SC2054 # the commas are QEMU's
    local args=(-accel tcg -M q35 -m "$mem" -smp "$smp" -nodefaults -no-reboot
        -display none -vga none -monitor none -serial "file:$run_dir/console.log"
        -kernel "$CACHE/vmlinux" -initrd "$CACHE/initramfs.cpio"
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
        -virtfs "local,path=$run_dir/ctl,mount_tag=guestctl,security_model=none"
        -virtfs "local,path=$share,mount_tag=guestshare,security_model=none,multidevs=remap"
        "${repo_share[@]}")
    local n=0 d img size
    for d in "${disks[@]}"; do
        img=$d size=
        if [[ $d =~ ^(.*):([0-9]+[KMGT]?)$ ]]; then
            img=${BASH_REMATCH[1]} size=${BASH_REMATCH[2]}
        fi
        if [[ ! -e $img ]]; then
            [[ -n $size ]] || die "no disk image $img (give IMG:SIZE to create it)"
            truncate -s "$size" "$img"
        fi
        [[ $img != *,* ]] || die "a disk image path must not contain a comma: $img"
        args+=(-drive "file=$img,format=raw,if=none,id=disk$n,cache=unsafe"
            -device "virtio-blk-pci,drive=disk$n,serial=guestdisk$n")
        : >"$run_dir/ctl/disk$n"
        n=$((n + 1))
    done
    local cmdline="console=ttyS0 panic=-1 rdinit=/init"
    # Emergencies only (a panic says why the guest died): every message
    # costs time on the emulated serial port.
    [[ -n ${GUEST_DEBUG:-} ]] || cmdline+=" quiet loglevel=1"
    args+=(-append "$cmdline")

    timeout -k 5 "$timeout" qemu-system-x86_64 "${args[@]}" </dev/null >"$run_dir/qemu.log" 2>&1 &
    qemu_pid=$!
    local qemu_status=0
    wait "$qemu_pid" || qemu_status=$?
    qemu_pid=

    if [[ -n ${GUEST_DEBUG:-} ]]; then
        { echo "--- guest console ---"; cat "$run_dir/console.log"; } >&2
    fi
    [[ ! -f $run_dir/ctl/stdout ]] || cat "$run_dir/ctl/stdout"
    [[ ! -f $run_dir/ctl/stderr ]] || cat "$run_dir/ctl/stderr" >&2
    if [[ -f $run_dir/ctl/status ]]; then
        local status
        status=$(<"$run_dir/ctl/status")
        [[ -z $status_file ]] || printf '%s\n' "$status" >"$status_file"
        exit "$status"
    fi
    {
        echo "--- QEMU ---"
        cat "$run_dir/qemu.log"
        echo "--- guest console ---"
        tail -n 60 "$run_dir/console.log" 2>/dev/null || true
    } >&2
    if ((qemu_status == 124 || qemu_status == 137)); then
        log "error: the guest ran past the timeout of $timeout s and was killed"
        exit 124
    fi
    die "the guest stopped before SCRIPT ended (QEMU exit status $qemu_status)"
}

case ${1:-} in
    setup) shift; setup "$@" ;;
    run) shift; run "$@" ;;
    *) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
