#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Generate the PuzzleFS test source trees, deterministically.

    mktrees.py OUTDIR [--busybox PATH]

Creates OUTDIR/<tree>/ for every tree in TREES (layered trees as
OUTDIR/<tree>.v1 and OUTDIR/<tree>.v2). Must run as root on a filesystem
that takes trusted./security. xattrs and xattr values >= 4 KiB (tmpfs does,
ext4 without ea_inode does not), mknod and chown.

Tree contents (the issue's list):
  small       one non-empty file: the base of the corrupted-image cases
  compress    text + random data, built with `puzzlefs build -c`
  sizes       boundary sizes, > 10 MiB file, identical files, modes with
              suid/sgid/sticky, uid/gid 0/1000/65534/4294967294, a static
              executable (bin/busybox)
  smallfiles  2000+ small files back to back (chunks spanning files), duplicates
  names       255-byte names, non-UTF-8 bytes, spaces, newlines, 5000 entries,
              80-deep nesting
  special     fifo, char/block devices, unix socket, symlinks (relative,
              absolute, dangling, 4095-byte target, non-UTF-8 target), hard links
  xattrs      user./trusted./security. xattrs, empty, binary and >= 4 KiB values
  layers.v1 / layers.v2
              base and top of a two-layer image: added, modified, deleted files,
              a deleted directory, a file replaced by a directory (no hard links:
              puzzlefs 0.2.0 build -b cannot delete one name of a hard link)
"""

import os
import random
import shutil
import socket
import stat
import sys

# Special uid/gid values: root, a user, nobody, and (u32)-2 (the largest valid id).
IDS = (0, 1000, 65534, 4294967294)
SIZES = (0, 1, 4095, 4096, 4097, 65535, 65536, 262143, 262144, 262145)
BIG_SIZE = 10 * 1024 * 1024 + 1


def rbytes(seed, n):
    """n pseudo-random bytes, a pure function of (seed, n)."""
    return random.Random(seed).randbytes(n)


def wfile(path, data, mode=0o644, uid=0, gid=0):
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def mkdir(path, mode=0o755, uid=0, gid=0):
    os.mkdir(path)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def symlink(target, path, uid=0, gid=0):
    os.symlink(target, path)
    os.lchown(path, uid, gid)


def mksock(path):
    # sun_path is limited to 108 bytes: bind a relative name from its directory.
    cwd = os.getcwd()
    try:
        os.chdir(os.path.dirname(path) or ".")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(os.path.basename(path))
        s.close()
    finally:
        os.chdir(cwd)


def tree_sizes(root, busybox):
    mkdir(root)
    mkdir(f"{root}/sizes")
    for i, n in enumerate(SIZES):
        wfile(f"{root}/sizes/size_{n}", rbytes(100 + i, n))
    wfile(f"{root}/big", rbytes(99, BIG_SIZE))
    # identical files: same content, different names and directories
    mkdir(f"{root}/dup")
    same = rbytes(7, 200000)
    for name in ("a", "b", "c"):
        wfile(f"{root}/dup/{name}", same)
    wfile(f"{root}/dup/copy_of_size_262145", rbytes(100 + SIZES.index(262145), 262145))
    # a file made of the same 64 KiB block repeated (chunker sees repeats)
    wfile(f"{root}/dup/repeated", rbytes(8, 65536) * 5)
    wfile(f"{root}/dup/zeros", bytes(300000))
    # modes
    mkdir(f"{root}/modes")
    for mode in (0o4755, 0o2755, 0o6755, 0o1755, 0o7777, 0o0000, 0o0400, 0o0644,
                 0o0700, 0o2711, 0o4000):
        wfile(f"{root}/modes/m{mode:04o}", b"mode %o\n" % mode, mode=mode)
    mkdir(f"{root}/modes/sticky_dir", mode=0o1777)
    mkdir(f"{root}/modes/sgid_dir", mode=0o2775)
    mkdir(f"{root}/modes/closed_dir", mode=0o0000)
    # ownership
    mkdir(f"{root}/owners", uid=1000, gid=1000)
    for u in IDS:
        for g in IDS:
            wfile(f"{root}/owners/f_{u}_{g}", b"%d:%d\n" % (u, g), uid=u, gid=g)
        mkdir(f"{root}/owners/d_{u}", uid=u, gid=u)
        symlink("../big", f"{root}/owners/l_{u}", uid=u, gid=u)
    # a static executable to run from the mount
    mkdir(f"{root}/bin")
    with open(busybox, "rb") as f:
        wfile(f"{root}/bin/busybox", f.read(), mode=0o755)
    with open(f"{root}/bin/hello.sh", "wb") as f:
        f.write(b"#!/bin/sh\necho puzzlefs-exec-ok\n")
    os.chmod(f"{root}/bin/hello.sh", 0o755)


def tree_smallfiles(root):
    mkdir(root)
    rnd = random.Random(2)
    common = rbytes(3, 1500)
    for d in range(20):
        mkdir(f"{root}/d{d:02d}")
        for i in range(110):
            n = rnd.choice((0, 1, 2, 17, 100, 511, 512, 1000, 2048, 3000, 4095, 4096))
            if i % 13 == 0:
                data = common
            else:
                data = rbytes(1000 * d + i, n)
            wfile(f"{root}/d{d:02d}/f{i:03d}", data)
    # a run of 1-byte files: many files inside one chunk
    mkdir(f"{root}/tiny")
    for i in range(300):
        wfile(f"{root}/tiny/t{i:03d}", bytes([i & 0xFF]))


def tree_names(root):
    mkdir(root)
    r = os.fsencode(root)
    names = [
        b"n" * 255,
        ("\u00e9" * 127).encode() + b"x",        # 255 bytes of UTF-8
        b"\xff\xfe\xfd not utf-8",
        b"latin1-caf\xe9",
        b"\x80",
        b"with space",
        b" leading-space",
        b"trailing-space ",
        b"new\nline",
        b"\nstarts-with-newline",
        b"tab\there",
        b"-dash",
        b".hidden",
        b"..dots",
        b"...",
        b"quote'\"",
        b"back\\slash",
        b"percent%41",
        b"star*?[]",
        b"\x01\x02\x1f\x7f",
    ]
    for i, n in enumerate(names):
        wfile(os.path.join(r, n), b"name %d\n" % i)
    os.mkdir(os.path.join(r, b"dir \xff\n" + b"d" * 200))
    wfile(os.path.join(r, b"dir \xff\n" + b"d" * 200, b"m" * 255), b"inside\n")
    # one directory with 5000 entries
    mkdir(f"{root}/many")
    for i in range(5000):
        data = b"%d\n" % i if i % 10 == 0 else b""
        wfile(f"{root}/many/entry_{i:05d}", data)
    mkdir(f"{root}/many/subdir")
    # 80 levels of nesting
    p = f"{root}/deep"
    mkdir(p)
    for i in range(80):
        p = f"{p}/{i % 10}"
        mkdir(p)
    wfile(f"{p}/bottom", b"deepest file\n")
    # long path: 255-byte components nested
    p = f"{root}/longpath"
    mkdir(p)
    for i in range(12):
        p = f"{p}/{chr(ord('a') + i) * 255}"
        mkdir(p)
    wfile(f"{p}/end", b"long path end\n")


def tree_special(root):
    mkdir(root)
    mkdir(f"{root}/dev")
    os.mkfifo(f"{root}/dev/fifo", 0o644)
    os.mkfifo(f"{root}/dev/fifo_sticky", 0o1600)
    os.mknod(f"{root}/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(f"{root}/dev/chr_big", 0o600 | stat.S_IFCHR, os.makedev(4095, 1048575))
    os.mknod(f"{root}/dev/chr_0", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(f"{root}/dev/sda", 0o660 | stat.S_IFBLK, os.makedev(8, 0))
    os.mknod(f"{root}/dev/blk_big", 0o640 | stat.S_IFBLK, os.makedev(259, 65537))
    os.chown(f"{root}/dev/sda", 0, 6)
    os.chown(f"{root}/dev/fifo", 1000, 65534)
    mksock(f"{root}/dev/socket")
    os.chmod(f"{root}/dev/socket", 0o777)
    mksock(f"{root}/dev/socket_priv")
    os.chmod(f"{root}/dev/socket_priv", 0o600)
    # symlinks
    mkdir(f"{root}/links")
    wfile(f"{root}/links/target", b"target data\n")
    symlink("target", f"{root}/links/rel")
    symlink("../links/target", f"{root}/links/rel_up")
    symlink("/etc/passwd", f"{root}/links/abs")
    symlink("does/not/exist", f"{root}/links/dangling")
    symlink(".", f"{root}/links/dot")
    symlink("..", f"{root}/links/dotdot")
    symlink("../dev", f"{root}/links/to_dir")
    symlink("loop_b", f"{root}/links/loop_a")
    symlink("loop_a", f"{root}/links/loop_b")
    symlink(b"\xff\xfe non-utf8 target\n", os.fsencode(f"{root}/links/nonutf8"))
    symlink("x/" * 2047 + "y", f"{root}/links/long_4095")   # 4095 bytes
    symlink("a" * 255, f"{root}/links/target_255")
    symlink("target", f"{root}/links/owned", uid=1000, gid=65534)
    # hard links: groups of 2 and 3 names, across directories, empty files,
    # a hard-linked fifo and a hard-linked symlink
    mkdir(f"{root}/hl")
    mkdir(f"{root}/hl/sub")
    wfile(f"{root}/hl/three", rbytes(11, 70000), mode=0o640, uid=1000, gid=1000)
    os.link(f"{root}/hl/three", f"{root}/hl/three_b")
    os.link(f"{root}/hl/three", f"{root}/hl/sub/three_c")
    wfile(f"{root}/hl/empty", b"")
    os.link(f"{root}/hl/empty", f"{root}/hl/sub/empty_b")
    wfile(f"{root}/hl/small", b"small\n", mode=0o4755)
    os.link(f"{root}/hl/small", f"{root}/hl/small_b")
    os.mkfifo(f"{root}/hl/fifo", 0o600)
    os.link(f"{root}/hl/fifo", f"{root}/hl/fifo_b")
    symlink("three", f"{root}/hl/sym")
    os.link(f"{root}/hl/sym", f"{root}/hl/sym_b", follow_symlinks=False)
    # an empty directory and a directory holding only special files
    mkdir(f"{root}/emptydir")


def setx(path, key, val, follow=True):
    os.setxattr(path, key, val, follow_symlinks=follow)


def tree_xattrs(root):
    mkdir(root)
    setx(root, "user.root", b"on the root directory")
    wfile(f"{root}/plain", b"no xattrs\n")
    wfile(f"{root}/f", b"xattrs\n")
    setx(f"{root}/f", "user.empty", b"")
    setx(f"{root}/f", "user.small", b"value")
    setx(f"{root}/f", "user.binary", bytes(range(256)))
    setx(f"{root}/f", "user.big", rbytes(21, 5000))
    setx(f"{root}/f", "trusted.t", b"trusted value")
    setx(f"{root}/f", "trusted.empty", b"")
    setx(f"{root}/f", "trusted.big4096", rbytes(22, 4096))
    setx(f"{root}/f", "security.s", b"security value")
    setx(f"{root}/f", "security.empty", b"")
    setx(f"{root}/f", "security.big", rbytes(23, 8192))
    wfile(f"{root}/many", b"many xattrs\n")
    for i in range(40):
        setx(f"{root}/many", f"user.k{i:02d}", b"v" * i)
    wfile(f"{root}/nul_values", b"")
    setx(f"{root}/nul_values", "user.nul", b"\0")
    setx(f"{root}/nul_values", "user.nuls", b"\0a\0b\0")
    setx(f"{root}/nul_values", "user.long_" + "k" * 240, b"long name")  # 250-byte name
    mkdir(f"{root}/dir")
    setx(f"{root}/dir", "user.dir", b"on a directory")
    setx(f"{root}/dir", "trusted.overlay.opaque", b"y")
    wfile(f"{root}/dir/inner", b"inner\n")
    setx(f"{root}/dir/inner", "user.inner", b"1")
    # user.* is not allowed on symlinks and special files; trusted.* is
    symlink("plain", f"{root}/sym")
    setx(f"{root}/sym", "trusted.onlink", b"link xattr", follow=False)
    os.mkfifo(f"{root}/fifo", 0o644)
    setx(f"{root}/fifo", "trusted.onfifo", b"fifo xattr")
    wfile(f"{root}/big_data_big_xattr", rbytes(24, 300000))
    setx(f"{root}/big_data_big_xattr", "user.big", rbytes(25, 16384))


def tree_layers(root, version):
    mkdir(root)
    mkdir(f"{root}/keep")
    wfile(f"{root}/keep/same", rbytes(31, 100000))
    wfile(f"{root}/keep/same_small", b"unchanged\n")
    mkdir(f"{root}/keep/sub")
    wfile(f"{root}/keep/sub/x", b"x\n")
    if version == 1:
        wfile(f"{root}/modify", rbytes(32, 150000))
        wfile(f"{root}/shrink", rbytes(33, 300000))
        wfile(f"{root}/grow", b"small\n")
        wfile(f"{root}/chmod", b"chmod me\n", mode=0o644)
        wfile(f"{root}/chown", b"chown me\n", uid=1000, gid=1000)
        wfile(f"{root}/delete_me", rbytes(34, 5000))
        wfile(f"{root}/keep/delete_inner", b"bye\n")
        mkdir(f"{root}/deldir")
        wfile(f"{root}/deldir/a", b"a\n")
        mkdir(f"{root}/deldir/sub")
        wfile(f"{root}/deldir/sub/b", rbytes(35, 70000))
        wfile(f"{root}/becomes_dir", b"file now\n")
        mkdir(f"{root}/becomes_file")
        wfile(f"{root}/becomes_file/x", b"x\n")
        symlink("keep/same", f"{root}/link_retarget")
        wfile(f"{root}/xattr_change", b"x\n")
        setx(f"{root}/xattr_change", "user.old", b"old")
        setx(f"{root}/xattr_change", "user.keep", b"keep")
    else:
        data = bytearray(rbytes(32, 150000))
        data[70000:70010] = b"MODIFIED!!"
        wfile(f"{root}/modify", bytes(data))
        wfile(f"{root}/shrink", rbytes(33, 300000)[:1000])
        wfile(f"{root}/grow", b"small\n" + rbytes(36, 200000))
        wfile(f"{root}/chmod", b"chmod me\n", mode=0o4750)
        wfile(f"{root}/chown", b"chown me\n", uid=65534, gid=4294967294)
        mkdir(f"{root}/becomes_dir")
        wfile(f"{root}/becomes_dir/inside", b"inside\n")
        wfile(f"{root}/becomes_file", b"was a dir\n")
        symlink("keep/same_small", f"{root}/link_retarget")
        wfile(f"{root}/xattr_change", b"x\n")
        setx(f"{root}/xattr_change", "user.new", b"new")
        setx(f"{root}/xattr_change", "user.keep", b"keep")
        wfile(f"{root}/added", rbytes(37, 80000))
        mkdir(f"{root}/added_dir")
        wfile(f"{root}/added_dir/f", b"new file in new dir\n")
        wfile(f"{root}/keep/added_inner", b"hello\n")


def tree_small(root):
    """The base of the corrupted-image cases: one non-empty regular file, so
    that every chunk blob is a piece of /data."""
    mkdir(root)
    wfile(f"{root}/data", rbytes(41, 300000))
    wfile(f"{root}/empty", b"")
    mkdir(f"{root}/dir")
    symlink("../data", f"{root}/dir/link")


def tree_compress(root):
    """Built with `puzzlefs build -c`: compressible text (stored as zstd
    chunks) and random data (the builder stores a chunk raw when zstd does not
    make it smaller)."""
    mkdir(root)
    line = b"PuzzleFS compressed chunk test line, the same again and again.\n"
    wfile(f"{root}/text", line * 5000)
    wfile(f"{root}/random", rbytes(51, 200000))
    wfile(f"{root}/empty", b"")


TREES = ("small", "compress", "sizes", "smallfiles", "names", "special", "xattrs", "layers.v1", "layers.v2")


def main():
    args = sys.argv[1:]
    busybox = "/bin/busybox"
    if "--busybox" in args:
        i = args.index("--busybox")
        busybox = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    out = args[0]
    os.umask(0)
    os.makedirs(out, exist_ok=True)
    for t in TREES:
        p = os.path.join(out, t)
        if os.path.lexists(p):
            shutil.rmtree(p)
    tree_small(f"{out}/small")
    tree_compress(f"{out}/compress")
    tree_sizes(f"{out}/sizes", busybox)
    tree_smallfiles(f"{out}/smallfiles")
    tree_names(f"{out}/names")
    tree_special(f"{out}/special")
    tree_xattrs(f"{out}/xattrs")
    tree_layers(f"{out}/layers.v1", 1)
    tree_layers(f"{out}/layers.v2", 2)


if __name__ == "__main__":
    main()
