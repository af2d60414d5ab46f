#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Trees and reference lists of `scripts/puzzlefs/run bench` (stdlib only).

  benchdata.py tree small|large|smoke DIR
      Generate a synthetic tree (deterministic: a fixed seed per kind).
        small  20,000 files of 1-16 KiB in 200 folders, a quarter random bytes and the
               rest pseudo-text (so that lz4/zstd have something to do)
        large  8 random files of 64 MiB
        smoke  one tiny tree: 300 small files, two files >= 1 MiB, a symlink, a hard
               link, an empty file, nested folders
  benchdata.py lists TREE OUT [--random N] [--preads N] [--seed S]
      Write OUT/random.txt (N paths, seeded, regular files of at most 16 MiB),
      OUT/preads.txt ("OFFSET PATH": N 4 KiB-aligned reads in files of at least 1 MiB)
      and OUT/expect: the oracle the in-VM helper compares every filesystem with,
      computed here from the source tree:
        walk     sha256 of "T PATH[ SIZE]\\n" per entry, depth-first, names sorted
                 bytewise (T: d f l c b p s; SIZE for regular files only)
        content  sha256 of the contents of every regular file, in walk order
        random   sha256 of the contents of the random.txt files, in list order
        pread    sha256 of the 4 KiB read at each preads.txt line, in order
        files, bytes
"""

import hashlib
import os
import random
import stat
import sys

KIB = 1024
MIB = 1024 * KIB
PREAD = 4 * KIB


def words(rng, n):
    cons, vow = "bcdfghjklmnprstvwz", "aeiou"
    out = []
    for _ in range(n):
        w = "".join(rng.choice(cons) + rng.choice(vow) for _ in range(rng.randint(1, 4)))
        out.append(w.encode())
    return out


def text(rng, vocab, size):
    """Pseudo-text of exactly SIZE bytes."""
    parts, n = [], 0
    while n < size:
        line = b" ".join(rng.choices(vocab, k=12)) + b"\n"
        parts.append(line)
        n += len(line)
    return b"".join(parts)[:size]


def small_file(rng, vocab, size):
    # A quarter random, the rest text: lz4 roughly halves it, zstd more.
    r = size // 4
    return rng.randbytes(r) + text(rng, vocab, size - r)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def tree_small(root):
    rng = random.Random(0x5EED0001)
    # A small vocabulary: each file repeats words within itself, as text and code do, so
    # that per-block compressors (lz4 in 4 KiB EROFS clusters) find matches too.
    vocab = words(rng, 256)
    for i in range(20000):
        d = "d%02d/e%d" % (i // 1000, (i // 100) % 10)
        size = rng.randint(1 * KIB, 16 * KIB)
        write(os.path.join(root, d, "f%05d" % i), small_file(rng, vocab, size))


def tree_large(root):
    rng = random.Random(0x5EED0002)
    os.makedirs(root, exist_ok=True)
    for i in range(8):
        with open(os.path.join(root, "big%d" % i), "wb") as f:
            for _ in range(64):
                f.write(rng.randbytes(MIB))


def tree_smoke(root):
    rng = random.Random(0x5EED0003)
    vocab = words(rng, 256)
    for i in range(300):
        d = "a%d/b%d" % (i // 100, (i // 10) % 10)
        write(os.path.join(root, d, "f%03d" % i), small_file(rng, vocab, rng.randint(1 * KIB, 16 * KIB)))
    write(os.path.join(root, "big/one"), rng.randbytes(3 * MIB // 2))
    write(os.path.join(root, "big/two"), small_file(rng, vocab, 2 * MIB + 123))
    write(os.path.join(root, "empty"), b"")
    os.makedirs(os.path.join(root, "deep/er/and/deeper"), exist_ok=True)
    write(os.path.join(root, "deep/er/and/deeper/leaf"), b"leaf\n")
    os.symlink("a0/b0/f000", os.path.join(root, "link"))
    os.link(os.path.join(root, "a1/b0/f100"), os.path.join(root, "hardlink"))


def type_char(mode):
    for test, c in ((stat.S_ISDIR, "d"), (stat.S_ISREG, "f"), (stat.S_ISLNK, "l"), (stat.S_ISCHR, "c"),
                    (stat.S_ISBLK, "b"), (stat.S_ISFIFO, "p"), (stat.S_ISSOCK, "s")):
        if test(mode):
            return c
    return "?"


def walk(root, rel=b""):
    """Yield (relative path, lstat) depth-first, names sorted bytewise (as pfs-bench walks)."""
    d = os.path.join(root, rel) if rel else root
    for name in sorted(os.listdir(d)):
        r = rel + b"/" + name if rel else name
        st = os.lstat(os.path.join(root, r))
        yield r, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(root, r)


def file_hash_into(h, path):
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(MIB)
            if not b:
                return n
            h.update(b)
            n += len(b)


def lists(root, out, n_random, n_preads, seed):
    root = os.fsencode(root)
    walk_h, data_h = hashlib.sha256(), hashlib.sha256()
    files = []
    nbytes = 0
    for rel, st in walk(root):
        t = type_char(st.st_mode)
        line = t.encode() + b" " + rel
        if t == "f":
            n = file_hash_into(data_h, os.path.join(root, rel))
            if n != st.st_size:
                sys.exit("benchdata: %r changed while hashing" % rel)
            line += b" %d" % n
            nbytes += n
            files.append((rel, n))
        walk_h.update(line + b"\n")
    rng = random.Random(seed)
    cand = [r for r, s in files if s <= 16 * MIB and b"\n" not in r]
    pick = rng.sample(cand, min(n_random, len(cand)))
    big = [(r, s) for r, s in files if s >= MIB and b"\n" not in r]
    preads = []
    for _ in range(n_preads if big else 0):
        r, s = rng.choice(big)
        preads.append((rng.randrange(0, (s - PREAD) // PREAD + 1) * PREAD, r))
    rand_h, pread_h = hashlib.sha256(), hashlib.sha256()
    for r in pick:
        file_hash_into(rand_h, os.path.join(root, r))
    for off, r in preads:
        with open(os.path.join(root, r), "rb") as f:
            f.seek(off)
            b = f.read(PREAD)
            assert len(b) == PREAD
            pread_h.update(b)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "random.txt"), "wb") as f:
        f.write(b"".join(r + b"\n" for r in pick))
    with open(os.path.join(out, "preads.txt"), "wb") as f:
        f.write(b"".join(b"%d %s\n" % (off, r) for off, r in preads))
    with open(os.path.join(out, "expect"), "w") as f:
        f.write("walk %s\ncontent %s\nrandom %s\npread %s\nfiles %d\nbytes %d\n" % (
            walk_h.hexdigest(), data_h.hexdigest(), rand_h.hexdigest(), pread_h.hexdigest(),
            len(files), nbytes))
    print("%s: %d files, %d bytes, %d random files, %d preads in %d files >= 1 MiB" % (
        os.fsdecode(root), len(files), nbytes, len(pick), len(preads), len(big)))


def main(argv):
    if len(argv) >= 3 and argv[0] == "tree":
        gen = {"small": tree_small, "large": tree_large, "smoke": tree_smoke}.get(argv[1])
        if gen is None:
            sys.exit("benchdata: unknown tree kind %s" % argv[1])
        if os.path.exists(argv[2]):
            sys.exit("benchdata: %s exists" % argv[2])
        gen(argv[2])
        return
    if len(argv) >= 3 and argv[0] == "lists":
        opts = {"--random": 500, "--preads": 1000, "--seed": 10}
        rest = argv[3:]
        while rest:
            if rest[0] not in opts or len(rest) < 2:
                sys.exit(__doc__)
            opts[rest[0]] = int(rest[1])
            rest = rest[2:]
        lists(argv[1], argv[2], opts["--random"], opts["--preads"], opts["--seed"])
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
