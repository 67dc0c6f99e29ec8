#!/usr/bin/env python3
"""Times the kernel's read-only snapshot ioctl alone: snap_ioctl.py ORIGIN DIR NAME
makes DIR/NAME, a read-only snapshot of the subvolume ORIGIN, with one
BTRFS_IOC_SNAP_CREATE_V2, and prints the milliseconds that ioctl took. The
bench's floor for a run's create time: what any tool pays for one snapshot on
that filesystem, without a process start or anything of snaprsync's."""
import fcntl
import os
import struct
import sys
import time

# struct btrfs_ioctl_vol_args_v2: fd, transid, flags, 4 reserved u64, name[4040].
SIZE = 4096
SNAP_CREATE_V2 = (1 << 30) | (SIZE << 16) | (0x94 << 8) | 23  # _IOW(0x94, 23, 4096 bytes)
RDONLY = 1 << 1


def main():
    origin, where, name = sys.argv[1:4]
    src = os.open(origin, os.O_RDONLY | os.O_DIRECTORY)
    dst = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    args = bytearray(SIZE)
    struct.pack_into("=qQQ", args, 0, src, 0, RDONLY)
    args[56:56 + len(name.encode())] = name.encode()
    t0 = time.perf_counter()
    fcntl.ioctl(dst, SNAP_CREATE_V2, args)
    t1 = time.perf_counter()
    print(f"{(t1 - t0) * 1000:.3f}")


main()
