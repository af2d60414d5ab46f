#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Small helpers over PuzzleFS OCI image directories (stdlib only).

    pfsimg.py digest OCI_DIR TAG        the digest to pass as image_manifest=
    pfsimg.py check OCI_DIR DIGEST [REF_OCI_DIR]  list missing/mismatched blobs ("ok" if none)
    pfsimg.py dedupe IMAGES_DIR         hard-link identical valid blobs across images
    pfsimg.py corrupt OCI_DIR TAG GEN DATA_FILE OUT_PARENT PREFIX
        make corrupted copies of a small image as OUT_PARENT/PREFIX-<case>/
        and print one cases.txt line per case (paths relative to the
        staging root, which is OUT_PARENT/..).

Generation B (puzzlefs 0.2.0): index.json is a standard OCI index
(schemaVersion 2); the manifest whose annotation
org.opencontainers.image.ref.name is TAG names the image manifest blob, whose
layers are the rootfs (application/vnd.puzzlefs.image.rootfs.v1) and the chunk
blobs. image_manifest= is the image manifest's digest.

Generation A (puzzlefs 0.1.0): index.json has schemaVersion -1; its entry for
TAG names the capnp rootfs blob; the rootfs names the metadata blobs. The
image_manifest= digest is the rootfs blob's digest.
"""

import hashlib
import json
import os
import shutil
import sys

REF = "org.opencontainers.image.ref.name"
ROOTFS_B = "application/vnd.puzzlefs.image.rootfs.v1"


def blob(oci, digest):
    return os.path.join(oci, "blobs", "sha256", digest.split(":")[-1])


def index(oci):
    with open(os.path.join(oci, "index.json")) as f:
        return json.load(f)


def find_desc(oci, tag):
    idx = index(oci)
    for m in idx.get("manifests", []):
        ann = m.get("annotations") or {}
        if ann.get(REF) == tag:
            return idx, m
    sys.exit(f"pfsimg: tag {tag} not in {oci}/index.json")


def gen_of(oci):
    return "A" if index(oci).get("schemaVersion") == -1 else "B"


def digest(oci, tag):
    _, m = find_desc(oci, tag)
    return m["digest"].split(":")[-1]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def rd(p):
    with open(p, "rb") as f:
        return f.read()


def wr(p, b):
    with open(p, "wb") as f:
        f.write(b)


def flip(p, at=None):
    b = bytearray(rd(p))
    i = len(b) // 2 if at is None else at
    b[i] ^= 0x01
    wr(p, bytes(b))


def truncate(p, n):
    with open(p, "r+b") as f:
        f.truncate(n)


def layout_b(oci, tag):
    """(manifest digest, rootfs digest, [chunk digests in manifest order])."""
    md = digest(oci, tag)
    man = json.loads(rd(blob(oci, md)))
    rootfs = None
    chunks = []
    for layer in man["layers"]:
        d = layer["digest"].split(":")[-1]
        if layer["mediaType"] == ROOTFS_B:
            rootfs = d
        else:
            chunks.append((d, layer["size"]))
    return md, rootfs, chunks


def replace_blob_b(oci, tag, old, new_bytes):
    """Store new_bytes as a blob that replaces `old` in the tag's manifest
    (digests and sizes kept consistent, so only the content is wrong)."""
    new = sha(new_bytes)
    wr(blob(oci, new), new_bytes)
    os.unlink(blob(oci, old))
    idx, m = find_desc(oci, tag)
    md = m["digest"].split(":")[-1]
    man = json.loads(rd(blob(oci, md)))
    for layer in man["layers"]:
        if layer["digest"].split(":")[-1] == old:
            layer["digest"] = "sha256:" + new
            layer["size"] = len(new_bytes)
    mb = json.dumps(man).encode()
    nmd = sha(mb)
    wr(blob(oci, nmd), mb)
    os.unlink(blob(oci, md))
    m["digest"] = "sha256:" + nmd
    m["size"] = len(mb)
    wr(os.path.join(oci, "index.json"), json.dumps(idx).encode())
    return nmd


def layout_a(oci, tag, data):
    """(rootfs digest, [metadata blob digests], [chunk digests]) for 0.1.0.
    Chunk blobs are told apart by content: each is a piece of DATA_FILE
    (the image holds one non-empty regular file)."""
    rootfs = digest(oci, tag)
    meta, chunks = [], []
    for name in sorted(os.listdir(os.path.join(oci, "blobs", "sha256"))):
        if name == rootfs:
            continue
        b = rd(blob(oci, name))
        if b and b in data:
            chunks.append((name, len(b), data.index(b)))
        else:
            meta.append(name)
    chunks.sort(key=lambda c: c[2])
    return rootfs, meta, [(c[0], c[1]) for c in chunks]


def corrupt(oci, tag, gen, data_file, out_parent, prefix):
    data = rd(data_file)
    staging = os.path.dirname(os.path.abspath(out_parent))
    lines = []

    def case(name, fn, mount, reads="-", dig=None):
        d = os.path.join(out_parent, f"{prefix}-{name}")
        if os.path.exists(d):
            shutil.rmtree(d)
        shutil.copytree(oci, d)
        got = fn(d)
        dg = got if isinstance(got, str) else (dig or digest(d, tag))
        rel = os.path.relpath(d, staging)
        lines.append(f"{prefix}-{name} {gen} {rel} {dg} {tag} - - {mount} {reads}")

    if gen == "B":
        md, rootfs, chunks = layout_b(oci, tag)
        first_len = chunks[0][1]
        last = chunks[-1]
        case("missing-manifest", lambda d: os.unlink(blob(d, md)), "ENOENT")
        case("missing-rootfs", lambda d: os.unlink(blob(d, rootfs)), "ENOENT")
        case("trunc-rootfs", lambda d: truncate(blob(d, rootfs), os.path.getsize(blob(d, rootfs)) // 2), "EUCLEAN")
        case("flip-rootfs", lambda d: flip(blob(d, rootfs)), "EUCLEAN")

        def flip_manifest(d):
            # change one hex digit of a digest: still valid JSON, wrong sha256
            p = blob(d, md)
            b = bytearray(rd(p))
            i = b.index(b"sha256:") + 7
            b[i] = ord("0") if b[i] != ord("0") else ord("1")
            wr(p, bytes(b))
        case("flip-manifest", flip_manifest, "EUCLEAN")

        def garbage_rootfs(d):
            return replace_blob_b(d, tag, rootfs, bytes(range(256)) * 3)
        case("garbage-rootfs", garbage_rootfs, "EUCLEAN")

        def version_rootfs(d):
            # Rootfs.manifestVersion is the struct's only data word; with the
            # root struct pointer at offset 0 it is bytes 16..24.
            b = bytearray(rd(blob(d, rootfs)))
            if int.from_bytes(b[16:24], "little") != 3:
                sys.exit("pfsimg: unexpected rootfs layout (manifestVersion not at 16)")
            b[16:24] = (99).to_bytes(8, "little")
            return replace_blob_b(d, tag, rootfs, bytes(b))
        case("bad-version", version_rootfs, "EINVAL")
        case("missing-chunk", lambda d: os.unlink(blob(d, last[0])), "ok",
             "/data:EIO,/empty:ok")
        case("trunc-chunk", lambda d: truncate(blob(d, last[0]), last[1] // 2), "ok",
             f"/data:EIO,/data:ok:0:{first_len},/empty:ok")
        case("flip-chunk", lambda d: flip(blob(d, chunks[0][0])), "ok", "/data:any,/empty:ok")
    else:
        rootfs, meta, chunks = layout_a(oci, tag, data)
        if not meta or not chunks:
            sys.exit(f"pfsimg: cannot tell metadata from chunks in {oci}")
        first_len = chunks[0][1]
        last = chunks[-1]
        case("missing-rootfs", lambda d: os.unlink(blob(d, rootfs)), "ENOENT")
        case("flip-rootfs", lambda d: flip(blob(d, rootfs)), "EUCLEAN")
        case("trunc-rootfs", lambda d: truncate(blob(d, rootfs), os.path.getsize(blob(d, rootfs)) // 2), "EUCLEAN")
        case("missing-metadata", lambda d: os.unlink(blob(d, meta[0])), "ENOENT")
        case("flip-metadata", lambda d: flip(blob(d, meta[0])), "EUCLEAN")
        case("missing-chunk", lambda d: os.unlink(blob(d, last[0])), "ok", "/data:EIO,/empty:ok")
        case("trunc-chunk", lambda d: truncate(blob(d, last[0]), last[1] // 2), "ok",
             f"/data:EIO,/data:ok:0:{first_len},/empty:ok")
    print("\n".join(lines))


def dedupe(images):
    """Hard-link identical blobs across image dirs (content-addressed: same
    name, and content whose sha256 is that name; corrupted copies never
    qualify). mkfs.ext4 -d keeps hard links, so the disk holds each chunk
    once, as a real blob store shared by images would."""
    first = {}
    saved = 0
    for img in sorted(os.listdir(images)):
        d = os.path.join(images, img, "blobs", "sha256")
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if sha(rd(p)) != name:
                continue
            if name not in first:
                first[name] = p
            elif not os.path.samefile(first[name], p):
                saved += os.path.getsize(p)
                os.unlink(p)
                os.link(first[name], p)
    print(f"dedupe: {saved} bytes saved")


def check(oci, dg, ref=None):
    """Blob problems reachable from digest dg: missing blobs, sha256 or size
    mismatches. Gen B: the manifest and its layers; gen A: every blob."""
    probs = []

    def ok(d, size=None):
        p = blob(oci, d)
        if not os.path.exists(p):
            probs.append(f"missing {d[:12]}")
            return None
        b = rd(p)
        if sha(b) != d:
            probs.append(f"sha256 mismatch {d[:12]}")
        if size is not None and size != len(b):
            probs.append(f"size mismatch {d[:12]}")
        return b

    if gen_of(oci) == "B":
        mb = ok(dg)
        if mb is not None:
            try:
                man = json.loads(mb)
                for layer in man["layers"]:
                    ok(layer["digest"].split(":")[-1], layer["size"])
            except (ValueError, KeyError) as e:
                probs.append(f"bad manifest json: {e}")
    else:
        ok(dg)
        for name in sorted(os.listdir(os.path.join(oci, "blobs", "sha256"))):
            if name != dg:
                ok(name)
    if ref:
        # blobs of the reference image (the uncorrupted original) that are gone
        have = set(os.listdir(os.path.join(oci, "blobs", "sha256")))
        for name in sorted(os.listdir(os.path.join(ref, "blobs", "sha256"))):
            if name not in have and f"missing {name[:12]}" not in probs:
                probs.append(f"missing {name[:12]}")
    return probs


def main():
    a = sys.argv[1:]
    if a[:1] == ["digest"] and len(a) == 3:
        print(digest(a[1], a[2]))
    elif a[:1] == ["gen"] and len(a) == 2:
        print(gen_of(a[1]))
    elif a[:1] == ["check"] and len(a) in (3, 4):
        print("\n".join(check(*a[1:])) or "ok")
    elif a[:1] == ["dedupe"] and len(a) == 2:
        dedupe(a[1])
    elif a[:1] == ["corrupt"] and len(a) == 7:
        corrupt(*a[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
