#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write the manifest of a source tree: what a PuzzleFS mount of its image must show.

    manifest.py SRC_TREE [--gen A|B] > NAME.txt

Format (parsed by agent/ pfs-check): line 1 is "# pfs-manifest 1", then one
line per path, sorted by path bytes, fields separated by one space:

    TYPE PATH key=value ...

TYPE is one of d f l p c b s (dir, regular, symlink, fifo, char, block,
socket). PATH is the path below the tree root starting with "/" (the root is
"/"), percent-encoded: every byte outside [A-Za-z0-9._/+,=~@-] becomes %XX.
Keys, in this order:

    mode=OOOO      permission bits incl. suid/sgid/sticky (octal, mode & 07777)
    uid=N gid=N
    nlink=N        directories: 2 + subdirectories; others: names in the tree
    size=N         regular files and symlinks only (symlink: target length)
    sha256=HEX     regular files only
    target=PCT     symlinks: the target, percent-encoded
    rdev=MAJ:MIN   char and block devices
    link=N         hard-link group id (only when nlink > 1, non-directories)
    x=KEY:HEX      one per xattr, KEY percent-encoded, value hex (may be empty),
                   sorted by key

The last line is "# end N" with N the number of records.

Limitations of the upstream image builders that the oracle must not expect
from an image are applied here, by --gen (A = puzzlefs 0.1.0, B = 0.2.0); see
LIMITS below. Without --gen the manifest describes the source tree exactly.
"""

import hashlib
import os
import stat
import sys

SAFE = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/+,=~@-")

# What each generation's builder does not store, found by building the test
# trees, reading the images back with the upstream FUSE reader and extractor
# (host-selftest.sh) and reading the builders' sources (puzzlefs-lib
# format/types.rs: Inode::new_inode, InodeMode::new_other,
# InodeAdditional::get_xattrs). Both 0.1.0 and 0.2.0 store: all seven file
# types, mode & 07777 (suid/sgid/sticky included), uid/gid as u32 (4294967294
# included), rdev as major/minor u64, symlink targets as bytes, hard links as
# one ino, and every xattr llistxattr returns (user., trusted., security.; empty,
# binary, 16 KiB values; on directories, symlinks and fifos). No attribute the
# manifest records is lost, so both sets are empty. Not recorded at all: the
# format has no timestamps (the driver reports 0) and no link count (nlink
# here is what the driver must compute).
LIMITS = {"A": set(), "B": set()}


def pct(b):
    return "".join(chr(c) if c in SAFE else "%%%02X" % c for c in b)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            buf = f.read(1 << 20)
            if not buf:
                break
            h.update(buf)
    return h.hexdigest()


def xattrs(path):
    out = []
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for k in sorted(keys, key=os.fsencode):
        v = os.getxattr(path, k, follow_symlinks=False)
        out.append((os.fsencode(k), v))
    return out


def walk(root):
    """Yield (relpath_bytes, abspath_bytes, lstat) for every path, root first."""
    root = os.fsencode(root)
    stack = [b""]
    while stack:
        rel = stack.pop()
        ap = root + rel if rel else root
        st = os.lstat(ap)
        yield (rel or b"/"), ap, st
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(ap), reverse=True):
                stack.append(rel + b"/" + name)


def main():
    args = sys.argv[1:]
    gen = None
    if "--gen" in args:
        i = args.index("--gen")
        gen = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    limits = LIMITS.get(gen, set())
    entries = sorted(walk(args[0]), key=lambda e: e[0])
    subdirs = {}
    inos = {}
    for rel, ap, st in entries:
        if rel != b"/" and stat.S_ISDIR(st.st_mode):
            parent = rel.rsplit(b"/", 1)[0] or b"/"
            subdirs[parent] = subdirs.get(parent, 0) + 1
        if not stat.S_ISDIR(st.st_mode):
            inos.setdefault(st.st_ino, []).append(rel)
    groups = {}
    for ino, names in inos.items():
        if len(names) > 1:
            groups[ino] = len(groups) + 1
    out = ["# pfs-manifest 1"]
    for rel, ap, st in entries:
        m = st.st_mode
        if stat.S_ISDIR(m):
            t = "d"
        elif stat.S_ISREG(m):
            t = "f"
        elif stat.S_ISLNK(m):
            t = "l"
        elif stat.S_ISFIFO(m):
            t = "p"
        elif stat.S_ISCHR(m):
            t = "c"
        elif stat.S_ISBLK(m):
            t = "b"
        elif stat.S_ISSOCK(m):
            t = "s"
        else:
            sys.exit(f"unknown file type: {ap!r}")
        f = [t, pct(rel), "mode=%04o" % (m & 0o7777), f"uid={st.st_uid}", f"gid={st.st_gid}"]
        if t == "d":
            f.append(f"nlink={2 + subdirs.get(rel, 0)}")
        else:
            f.append(f"nlink={len(inos[st.st_ino])}")
        if t == "f":
            f.append(f"size={st.st_size}")
            f.append(f"sha256={sha256_file(ap)}")
        elif t == "l":
            tgt = os.readlink(ap)
            f.append(f"size={len(tgt)}")
            f.append(f"target={pct(tgt)}")
        elif t in "cb":
            f.append(f"rdev={os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
        if t != "d" and st.st_ino in groups:
            f.append(f"link={groups[st.st_ino]}")
        for k, v in xattrs(ap):
            f.append(f"x={pct(k)}:{v.hex()}")
        out.append(" ".join(f))
    out.append(f"# end {len(entries)}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
