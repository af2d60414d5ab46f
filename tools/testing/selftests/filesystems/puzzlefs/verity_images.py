#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""fs-verity test images for the in-VM tests (stdlib only).

    verity_images.py STAGING ROOT SUBDIR [--tree smallfiles]

STAGING is the folder build-images.sh made; ROOT is the root of the data disk
(mounted on the host; it holds a copy of STAGING, and /data in the guest);
the images and lists go to ROOT/SUBDIR. Every file is a fresh copy (its own
inode): build-images.sh hard-links identical blobs across images, and fs-verity
is enabled (and a block overwritten) on these copies only.

fs-verity can only be enabled on a mounted file system that supports it, and
the host's kernel may not (the development machine's does not): the guest
enables it, with upstream's own `puzzlefs enable-fs-verity` for the images
and the tiny helper (verity-helper.c) for single files. This script writes
what the guest must do, and what it must then see:

SUBDIR/prep.txt, one action per line, in order:
    enable GEN OCI_DIR TAG ROOT_HASH
        upstream `puzzlefs enable-fs-verity` of generation GEN (B: 0.2.0,
        OCI_DIR:TAG; A: 0.1.0, OCI_DIR TAG). ROOT_HASH is the fs-verity digest
        of the blob the mount names (image manifest / rootfs), computed here
        with hostile.fsverity(), which upstream checks against the kernel's.
    swap OCI_DIR BLOB FILE verity|plain
        rename FILE over OCI_DIR/blobs/sha256/BLOB, then (verity) enable
        fs-verity on it.

SUBDIR/cases.txt, one case per line:
    CASE GEN OCI_DIR DIGEST OPTS MOUNT WALK READS BLOB MSG...
    OPTS   extra mount options ("-": none; the default is verity=on)
    MOUNT  ok | an errno name (the mount must fail so) | raw (the raw-disk
           case: see extras-tests.sh)
    WALK   "-", or a manifest to walk the mount with; "sub:MANIFEST" for a
           subset of the tree (walked by lookup, without readdir)
    READS  "-", or a list of paths whose reads must fail with EIO
    BLOB   "-", or a blob digest the kernel log must name
    MSG    "-", or text the kernel log must contain (the rest of the line)
Paths are relative to ROOT; OCI_DIR to ROOT too.

The images (GEN = B and A, from TREE.GEN of the staging folder):
    ok.GEN        fs-verity on every blob (upstream enable-fs-verity)
    impostor.GEN  then chunk blob X replaced by a file of the same name and
                  size with one byte changed, fs-verity enabled on it
    noverity.GEN  then chunk blob X replaced by a copy without fs-verity
    raw.GEN       fs-verity on, then (in the guest, after mounting and
                  reading) X's first block overwritten on the block device
    meta.GEN      fs-verity on (tag TREE), and tags whose metadata lies:
                  B "lie": the manifest's rootfs verity annotation is wrong
                  (its digest and index entry fixed up, so only it lies);
                  B "noann": no annotation; B/A "novdata": a rootfs without
                  fsVerityData; A "lie": a wrong fs-verity digest recorded
                  for the layer blob.
X is the chunk blob that the fewest files use (at least two), so that most
files do not use it.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hostile as H  # noqa: E402
from manifest import pct  # noqa: E402

REF = "org.opencontainers.image.ref.name"


rd, wr = H.rd, H.wr


def copy_tree(src, dst):
    """A copy of src in which every file is a new inode (no hard links)."""
    os.makedirs(dst)
    for name in sorted(os.listdir(src)):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isdir(s):
            copy_tree(s, d)
        else:
            shutil.copyfile(s, d)
            os.chmod(d, 0o644)


def staging_cases(staging):
    """cases.txt of the staging folder: CASE -> dict of its fields."""
    out = {}
    with open(os.path.join(staging, "cases.txt")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            c, gen, oci, dg, tag, man, tree, mexp, reads = line.split()
            out[c] = dict(gen=gen, oci=oci, digest=dg, tag=tag, manifest=man, tree=tree)
    return out


def blob_users(img):
    """Chunk blob digest -> [(path, [(offset, len)])] of the files using it."""
    users = {}
    for path, inode in img.reach():
        if inode.kind != H.FILE:
            continue
        for c in inode.chunks:
            d = c.blob.digest.hex()
            entry = users.setdefault(d, {})
            entry.setdefault(path, []).append((c.blob.offset, c.len))
    return users


def root_hash(oci, gen, tag):
    """The fs-verity digest upstream's enable-fs-verity wants: of the image
    manifest (B) or of the rootfs blob (A) of tag."""
    with open(os.path.join(oci, "index.json")) as f:
        idx = json.load(f)
    entry = next(m for m in idx["manifests"] if (m.get("annotations") or {}).get(REF) == tag)
    return H.fsverity(rd(os.path.join(oci, "blobs", "sha256", entry["digest"].split(":")[-1])))


def add_tag(dst, img, tag):
    """Saves the mutated image img as tag of the OCI dir dst (new blobs
    copied in, an index entry added); returns the digest to mount."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "oci")
        dg = img.save(out)
        bdir = os.path.join(out, "blobs", "sha256")
        for name in os.listdir(bdir):
            d = os.path.join(dst, "blobs", "sha256", name)
            if not os.path.exists(d):
                shutil.copyfile(os.path.join(bdir, name), d)
                os.chmod(d, 0o644)
        with open(os.path.join(out, "index.json")) as f:
            entry = next(m for m in json.load(f)["manifests"]
                         if (m.get("annotations") or {}).get(REF) == img.tag)
    entry = json.loads(json.dumps(entry))
    entry["annotations"][REF] = tag
    ip = os.path.join(dst, "index.json")
    with open(ip) as f:
        idx = json.load(f)
    idx["manifests"].append(entry)
    wr(ip, H.dumps(idx))
    return dg


def write_subset(src_manifest, dst, keep):
    """The records of src_manifest whose path is in keep (pct-encoded), and
    the root's (the walk looks the subset up from the root)."""
    recs = []
    with open(src_manifest) as f:
        for line in f:
            if line.startswith("#"):
                continue
            path = line.split(" ", 2)[1]
            if path == "/" or path in keep:
                recs.append(line)
    with open(dst, "w") as f:
        f.write("# pfs-manifest 1\n")
        f.writelines(recs)
        f.write(f"# end {len(recs)}\n")
    return len(recs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("staging")
    ap.add_argument("root")
    ap.add_argument("subdir")
    ap.add_argument("--tree", default="smallfiles")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    out = os.path.join(root, args.subdir)
    rel = args.subdir.strip("/")
    if os.path.exists(out):
        shutil.rmtree(out)
    for d in ("aside", "lists", "manifests"):
        os.makedirs(os.path.join(out, d))
    cases = staging_cases(args.staging)
    prep, lines = [], []

    def case(name, gen, oci, dg, opts="-", mount="ok", walk="-", reads="-", blob="-", msg="-"):
        lines.append(f"{name} {gen} {oci} {dg} {opts} {mount} {walk} {reads} {blob} {msg}")

    for gen in ("B", "A"):
        base = cases[f"{args.tree}.{gen}"]
        src = os.path.join(args.staging, base["oci"])
        tag, dg, full = base["tag"], base["digest"], base["manifest"]
        img = H.Image(src, tag)
        users = blob_users(img)
        # X: used by the fewest files, at least two, at least one block long,
        # and with a file whose data starts at X's first byte (the raw case).
        cands = []
        for d, files in users.items():
            size = os.path.getsize(os.path.join(src, "blobs", "sha256", d))
            first = [p for p, ext in files.items() if any(o == 0 for o, _ in ext)]
            if len(files) >= 2 and size >= 4096 and first:
                cands.append((len(files), d, sorted(first)[0]))
        if not cands:
            sys.exit(f"verity_images: no suitable chunk blob in {src}")
        _, x, first_file = min(cands)
        affected = sorted(users[x])
        keep_all = set()
        with open(os.path.join(args.staging, full)) as f:
            for line in f:
                if not line.startswith("#"):
                    keep_all.add(line.split(" ", 2)[1])
        aff_pct = {pct(p) for p in affected}
        n_rest = write_subset(os.path.join(args.staging, full),
                              os.path.join(out, "manifests", f"unaffected.{gen}.txt"),
                              keep_all - aff_pct)
        write_subset(os.path.join(args.staging, full),
                     os.path.join(out, "manifests", f"affected.{gen}.txt"), aff_pct)
        with open(os.path.join(out, "lists", f"affected.{gen}.txt"), "w") as f:
            for p in affected:
                f.write(os.fsdecode(p) + "\n")
        with open(os.path.join(out, "lists", f"raw.{gen}.txt"), "w") as f:
            f.write(os.fsdecode(first_file) + "\n")
        rest = f"sub:{rel}/manifests/unaffected.{gen}.txt"
        aff_walk = f"sub:{rel}/manifests/affected.{gen}.txt"
        aff_list = f"{rel}/lists/affected.{gen}.txt"
        print(f"{gen}: chunk blob {x[:16]}... used by {len(affected)} files,"
              f" {n_rest} other records; raw case reads {os.fsdecode(first_file)}")

        xbytes = rd(os.path.join(src, "blobs", "sha256", x))
        rh = root_hash(src, gen, tag)
        for v in ("ok", "impostor", "noverity", "raw", "meta"):
            copy_tree(src, os.path.join(out, f"{v}.{gen}"))
            prep.append(f"enable {gen} {rel}/{v}.{gen} {tag} {rh}")

        o = f"{rel}/ok.{gen}"
        case(f"require-walk.{gen}", gen, o, dg, "verity=require", walk=full)
        case(f"on-walk.{gen}", gen, o, dg, walk=full)
        case(f"off-walk.{gen}", gen, o, dg, "verity=off", walk=full)

        # an impostor: X with one byte changed, fs-verity enabled on it
        imp = bytearray(xbytes)
        imp[len(imp) // 2] ^= 0xFF
        wr(os.path.join(out, "aside", f"impostor.{gen}"), bytes(imp))
        prep.append(f"swap {rel}/impostor.{gen} {x} {rel}/aside/impostor.{gen} verity")
        o = f"{rel}/impostor.{gen}"
        for opts in ("-", "verity=require"):
            nm = "require" if opts != "-" else "on"
            case(f"impostor-{nm}.{gen}", gen, o, dg, opts, walk=rest, reads=aff_list, blob=x,
                 msg="fs-verity digest differs")

        # X as a plain copy, without fs-verity
        wr(os.path.join(out, "aside", f"noverity.{gen}"), xbytes)
        prep.append(f"swap {rel}/noverity.{gen} {x} {rel}/aside/noverity.{gen} plain")
        o = f"{rel}/noverity.{gen}"
        case(f"noverity-require.{gen}", gen, o, dg, "verity=require", walk=rest, reads=aff_list,
             blob=x, msg="no fs-verity on its file")
        case(f"noverity-on.{gen}", gen, o, dg, walk=aff_walk)
        case(f"noverity-off.{gen}", gen, o, dg, "verity=off", walk=aff_walk)

        # the raw-disk case: read, overwrite X's first block on the disk, read
        if xbytes[:4096] == b"Z" * 4096:
            sys.exit("verity_images: the raw case's pattern equals the blob's data")
        case(f"raw.{gen}", gen, f"{rel}/raw.{gen}", dg, mount="raw",
             reads=f"{rel}/lists/raw.{gen}.txt", blob=x)

        # metadata that lies, or records no fs-verity digests
        m = os.path.join(out, f"meta.{gen}")
        mo = f"{rel}/meta.{gen}"
        if gen == "B":
            lie = H.Image(m, tag)

            def wrong(man):
                r = H.Image.rootfs_desc(man)
                good = r["annotations"][H.VERITY_ANN]
                r["annotations"][H.VERITY_ANN] = good[:-1] + ("0" if good[-1] != "0" else "1")
                return H.dumps(man)
            lie.manifest_hook = wrong
            ldg = add_tag(m, lie, "lie")
            for opts, exp in (("-", "EIO"), ("verity=require", "EIO"), ("verity=off", "ok")):
                nm = opts.split("=")[-1] if opts != "-" else "on"
                case(f"root-hash-lie-{nm}.B", "B", mo, ldg, opts, exp,
                     walk=full if exp == "ok" else "-",
                     msg="-" if exp == "ok" else "fs-verity digest differs")

            noann = H.Image(m, tag)

            def drop(man):
                H.Image.rootfs_desc(man).pop("annotations", None)
                return H.dumps(man)
            noann.manifest_hook = drop
            ndg = add_tag(m, noann, "noann")
            case("no-annotation-require.B", "B", mo, ndg, "verity=require", "EIO",
                 msg="records no fs-verity digest for the rootfs")
            case("no-annotation-on.B", "B", mo, ndg, walk=full)
        else:
            lie = H.Image(m, tag)
            layer = lie.layer_digests[0]
            for v in lie.rootfs.verity:
                if v.digest.hex() == layer:
                    v.verity = bytes(b ^ 0x01 if i == 0 else b for i, b in enumerate(v.verity))
            lie.dirty.add("rootfs")
            ldg = add_tag(m, lie, "lie")
            for opts, exp in (("-", "EIO"), ("verity=require", "EIO"), ("verity=off", "ok")):
                nm = opts.split("=")[-1] if opts != "-" else "on"
                case(f"layer-hash-lie-{nm}.A", "A", mo, ldg, opts, exp,
                     walk=full if exp == "ok" else "-", blob=layer if exp != "ok" else "-",
                     msg="-" if exp == "ok" else "fs-verity digest differs")

        nov = H.Image(m, tag)
        nov.rootfs.verity_ptr = None
        nov.dirty.add("rootfs")
        vdg = add_tag(m, nov, "novdata")
        prep.append(f"enable {gen} {mo} novdata {root_hash(m, gen, 'novdata')}")
        msg = ("records no fs-verity digest for chunk blob" if gen == "B"
               else "the image records no fs-verity digest for it")
        case(f"no-verity-data-require.{gen}", gen, mo, vdg, "verity=require", "EIO", msg=msg)
        case(f"no-verity-data-on.{gen}", gen, mo, vdg, walk=full)

        # the staging image itself: no fs-verity on any file
        case(f"no-fs-verity-require.{gen}", gen, base["oci"], dg, "verity=require", "EIO",
             msg="no fs-verity on its file")
        case(f"no-fs-verity-on.{gen}", gen, base["oci"], dg)

    with open(os.path.join(out, "prep.txt"), "w") as f:
        f.write("# enable GEN OCI_DIR TAG ROOT_HASH | swap OCI_DIR BLOB FILE verity|plain\n")
        f.writelines(p + "\n" for p in prep)
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("# CASE GEN OCI_DIR DIGEST OPTS MOUNT WALK READS BLOB MSG...\n")
        f.writelines(c + "\n" for c in lines)
    print(f"{len(lines)} fs-verity cases, {len(prep)} preparation steps in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
