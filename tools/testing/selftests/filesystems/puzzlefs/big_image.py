#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The large image of the in-VM tests: at least 2 GiB of unique data built by
upstream `puzzlefs` 0.2.0 (stdlib only).

    big_image.py OUT PUZZLEFS_0.2.0 [--files N] [--mib M] [--seed S]

Writes, unless OUT/stamp already names the same inputs (then it does nothing):

    OUT/oci/           the OCI image (tag "big"), built by upstream from a
                       tree of N files of M MiB (plus a few KiB each, so that
                       files do not end on a chunk or page boundary) of
                       pseudo-random bytes (random.Random seeded with S and
                       the file's number: unique, incompressible, the same on
                       every machine)
    OUT/manifest.txt   manifest.py of that tree (the statfs oracle)
    OUT/samples.txt    "PATH OFFSET LENGTH SHA256" lines: ranges of every
                       file (its head, its tail up to EOF, and random ones
                       that cross chunk and page boundaries) with the sha256
                       of their bytes in the source: the in-VM test reads
                       them from the mount and compares
    OUT/info.txt       "key value" lines: digest, tag, data bytes, files,
                       chunk blobs, image manifest bytes, rootfs bytes,
                       build seconds

The source tree is generated in a temporary folder next to OUT and deleted
once the image is built: everything the test needs is in OUT. About 16 s of
host time for the default 8 x 256 MiB on the development machine (data 1 s
per file, upstream's build 7 s); OUT takes about 2.1 GiB.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TAG = "big"
SAMPLES_PER_FILE = 4  # random ranges, besides the head and the tail
SAMPLE_LEN = 64 << 10


def file_size(i, mib):
    return (mib << 20) + 12345 * (i + 1)


def gen_file(path, i, mib, seed):
    """Writes file i and returns its bytes' sha256 of the sample ranges."""
    r = random.Random(f"pfs-big-{seed}-{i}")
    size = file_size(i, mib)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(r.randbytes(n))
            left -= n
    return size


def samples(path, rel, size, i, seed):
    """The sample ranges of one file: (rel, offset, length, sha256)."""
    r = random.Random(f"pfs-big-samples-{seed}-{i}")
    ranges = [(0, SAMPLE_LEN), (size - SAMPLE_LEN - 4097, SAMPLE_LEN + 4097)]
    for _ in range(SAMPLES_PER_FILE):
        n = r.randrange(1, SAMPLE_LEN)
        ranges.append((r.randrange(0, size - n), n))
    out = []
    with open(path, "rb") as f:
        for off, n in ranges:
            f.seek(off)
            out.append((rel, off, n, hashlib.sha256(f.read(n)).hexdigest()))
    return out


def stamp_of(args):
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    with open(args.puzzlefs, "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
    h.update(f"{args.files} {args.mib} {args.seed}".encode())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("puzzlefs")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    stamp = stamp_of(args)
    try:
        with open(os.path.join(out, "stamp")) as f:
            if f.read().strip() == stamp:
                print(f"big image {out} is up to date")
                return 0
    except OSError:
        pass
    if os.path.exists(out):
        shutil.rmtree(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(dir=parent, prefix=".big-tree.") as tmp:
        tree = os.path.join(tmp, "tree")
        os.mkdir(tree)
        lines = []
        total = 0
        for i in range(args.files):
            rel = f"/f{i}"
            path = tree + rel
            size = gen_file(path, i, args.mib, args.seed)
            total += size
            lines += samples(path, rel, size, i, args.seed)
        t1 = time.time()
        staged = os.path.join(tmp, "out")
        os.mkdir(staged)
        oci = os.path.join(staged, "oci")
        subprocess.run([args.puzzlefs, "build", tree, f"{oci}:{TAG}"], check=True,
                       stdout=subprocess.DEVNULL)
        t2 = time.time()
        with open(os.path.join(staged, "manifest.txt"), "wb") as f:
            subprocess.run([sys.executable, os.path.join(HERE, "manifest.py"), tree, "--gen", "B"],
                           check=True, stdout=f)
        with open(os.path.join(staged, "samples.txt"), "w") as f:
            f.write("# PATH OFFSET LENGTH SHA256\n")
            for rel, off, n, sha in lines:
                f.write(f"{rel} {off} {n} {sha}\n")
        with open(os.path.join(oci, "index.json")) as f:
            entry = json.load(f)["manifests"][0]
        digest = entry["digest"].split(":")[-1]
        with open(os.path.join(oci, "blobs", "sha256", digest)) as f:
            manifest = json.load(f)
        rootfs = next(x for x in manifest["layers"]
                      if x["mediaType"] == "application/vnd.puzzlefs.image.rootfs.v1")
        chunks = {x["digest"] for x in manifest["layers"] if x is not rootfs}
        info = {
            "digest": digest,
            "tag": TAG,
            "data_bytes": total,
            "files": args.files,
            "chunk_blobs": len(chunks),
            "manifest_bytes": entry["size"],
            "rootfs_bytes": rootfs["size"],
            "generate_s": round(t1 - t0, 1),
            "build_s": round(t2 - t1, 1),
        }
        with open(os.path.join(staged, "info.txt"), "w") as f:
            for k, v in info.items():
                f.write(f"{k} {v}\n")
        os.rename(staged, out)
    with open(os.path.join(out, "stamp"), "w") as f:
        f.write(stamp + "\n")
    print(" ".join(f"{k}={v}" for k, v in info.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
