#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Hostile compressed chunks: upstream `build -c` images whose compressed
chunk blobs are corrupted, with every digest fixed up (stdlib only).

    zstd_hostile.py STAGING ROOT SUBDIR [--tree compress]
    zstd_hostile.py list

The base images are TREE.B (puzzlefs 0.2.0 -c: chunks in the zstd seekable
format, frames of 4 KiB and a seek table) and TREE.A (0.1.0 -c: each chunk
one plain zstd stream) of the staging folder. Each case rewrites one
compressed chunk blob and stores it under its new sha256; hostile.Image
then re-encodes the metadata that names it (Generation B: the rootfs, the
image manifest's layer list and its rootfs verity annotation, index.json;
Generation A: the layer blob, the rootfs, index.json) and records the new
blob's fs-verity digest in place of the old one. The image is therefore
self-consistent: only the compressed bytes lie.

Zstd frames are written here from the format (RFC 8878): raw and RLE blocks
need no entropy coder, which is all a decompression bomb needs (an RLE block
of 128 KiB takes 4 bytes).

Cases (ROOT/SUBDIR/cases.txt: "CASE GEN OCI_DIR DIGEST EIO_FILES OK_FILES"
with comma-separated paths; OCI_DIR relative to ROOT; OK_FILES are compared
with the source tree TREES_DIR given on the first line "# trees DIR"):
the mount must succeed, every EIO_FILES read must fail with EIO (with a
message in the kernel log; a path marked "?" may instead read exactly as
in the source), every OK_FILES file must read as in the source.

Seekable (B), on a chunk of two files ("mixed": a frame k that only the
second file uses) or of one file ("single"):
    frame-bad-magic        mixed, frame k's magic number zeroed
    frame-reserved-block   mixed, frame k's first block of the reserved type
    frame-truncated        mixed, frame k cut in half (table entry follows)
    frame-bomb-produces    mixed, frame k replaced by 45 bytes of RLE blocks
                           that produce 1 MiB; its entry still says 4 KiB
    frame-bomb-unknown     the same without a content size in the frame
    frame-fcs-claims-4g    mixed, frame k re-made with a header claiming
                           4 GiB of content (it holds 4 KiB)
    table-cut              single, the blob cut in the middle of the table
    table-entries-dropped  single, the last two entries removed (footer and
                           frame size fixed: the frames no longer fill the
                           blob)
    table-count-high       single, the footer counts one frame more
    table-dsize-larger     single, an entry's size doubled
    table-dsize-smaller    single, an entry's size halved
    table-csize-shift      single, 7 bytes moved between two compressed
                           sizes (the total still fills the blob)
    table-bomb-claims      single, a frame replaced by a tiny RLE frame whose
                           entry claims 1 GiB
Plain (A), on a chunk of one file:
    plain-bad-magic, plain-reserved-block, plain-truncated (10 bytes cut),
    plain-trailing-garbage, plain-fcs-small (header claims 1000 bytes),
    plain-fcs-4g (header claims 4 GiB), plain-short (a valid stream of
    fewer bytes than the file takes from the chunk), plain-bomb (RLE
    blocks producing 64 MiB from 2 KiB), plain-bomb-fcs (the same, single
    segment, its header saying 64 MiB)
"""

import argparse
import json
import os
import shutil
import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hostile as H  # noqa: E402

ZSTD_MAGIC = 0xFD2FB528
SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
BLOCK_MAX = 128 << 10
RAW, RLE, COMPRESSED, RESERVED = range(4)


# --- zstd frames (RFC 8878) --------------------------------------------------


def frame_header_len(b, off=0):
    """Bytes of the frame header at off (magic included)."""
    fhd = b[off + 4]
    fcs_flag, single, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    n = 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
    n += (1 if single else 0, 2, 4, 8)[fcs_flag]
    return n


def block_header(last, btype, size):
    v = (1 if last else 0) | btype << 1 | size << 3
    return struct.pack("<I", v)[:3]


def fcs_field(size, single):
    """(flag, bytes) of a Frame_Content_Size field for size."""
    if single and size < 256:
        return 0, bytes([size])
    if 256 <= size < 65536 + 256:
        return 1, struct.pack("<H", size - 256)
    if size < 1 << 32:
        return 2, struct.pack("<I", size)
    return 3, struct.pack("<Q", size)


def frame(blocks, fcs=None, single=False, window_log=17):
    """A zstd frame of blocks [(type, size, payload)], with a content size
    field (fcs) or not; single segment frames have no window descriptor."""
    out = struct.pack("<I", ZSTD_MAGIC)
    flag, field = (0, b"") if fcs is None else fcs_field(fcs, single)
    if single and fcs is None:
        raise ValueError("a single segment frame needs a content size")
    out += bytes([flag << 6 | (1 if single else 0) << 5])
    if not single:
        out += bytes([(window_log - 10) << 3])
    out += field
    for i, (t, size, payload) in enumerate(blocks):
        out += block_header(i == len(blocks) - 1, t, size) + payload
    return out


def rle_blocks(total, byte=0x5A):
    blocks = []
    while total:
        n = min(total, BLOCK_MAX)
        blocks.append((RLE, n, bytes([byte])))
        total -= n
    return blocks or [(RAW, 0, b"")]


def raw_blocks(data):
    blocks = [(RAW, len(data[i:i + BLOCK_MAX]), data[i:i + BLOCK_MAX])
              for i in range(0, len(data), BLOCK_MAX)]
    return blocks or [(RAW, 0, b"")]


def reserved_first_block(fr):
    """The frame with its first block's type set to Reserved."""
    at = frame_header_len(fr)
    b = bytearray(fr)
    b[at] = (b[at] & ~0x06) | RESERVED << 1
    return bytes(b)


# --- the seekable format -------------------------------------------------------


def parse_seekable(b):
    """(frames [[bytes, d_len, checksum]], checksum flag) of a seekable blob."""
    n, desc, magic = struct.unpack("<IBI", b[-9:])
    if magic != SEEKABLE_MAGIC:
        raise ValueError("not a seekable blob")
    el = 12 if desc & 0x80 else 8
    tl = 8 + n * el + 9
    t = b[-tl:]
    if struct.unpack("<I", t[:4])[0] != SKIPPABLE_MAGIC:
        raise ValueError("no skippable frame")
    frames, at = [], 0
    for i in range(n):
        e = t[8 + i * el:8 + (i + 1) * el]
        c, d = struct.unpack("<II", e[:8])
        frames.append([b[at:at + c], d, e[8:]])
        at += c
    if at != len(b) - tl:
        raise ValueError("frames do not fill the blob")
    return frames, bool(desc & 0x80)


def table(entries, checksums, count=None):
    """A seek table frame for entries [(c_len, d_len, checksum bytes)]."""
    el = 12 if checksums else 8
    body = b"".join(struct.pack("<II", c, d) + (k if checksums else b"") for c, d, k in entries)
    n = len(entries) if count is None else count
    foot = struct.pack("<IBI", n, 0x80 if checksums else 0, SEEKABLE_MAGIC)
    assert len(body) == len(entries) * el
    return struct.pack("<II", SKIPPABLE_MAGIC, len(body) + 9) + body + foot


def build_seekable(frames, checksums):
    return b"".join(f[0] for f in frames) + table(
        [(len(f[0]), f[1], f[2]) for f in frames], checksums)


def d_ranges(frames):
    out, at = [], 0
    for f in frames:
        out.append((at, at + f[1]))
        at += f[1]
    return out


# --- the cases -----------------------------------------------------------------


def seekable_cases(mixed, single, k, j):
    """name -> (which chunk, new blob bytes, scope) for Generation B. k: a
    frame of the mixed chunk that only its second file uses; j: a middle
    frame of the single chunk. Scope "frame": only files using frame k are
    affected; "chunk": every file using the chunk."""
    out = {}
    fr, ck = parse_seekable(mixed)

    def with_frame(data, d_len=None, frs=fr):
        g = [list(x) for x in frs]
        g[k][0] = data
        if d_len is not None:
            g[k][1] = d_len
        return build_seekable(g, ck)

    orig = fr[k][0]
    out["frame-bad-magic"] = ("mixed", with_frame(b"\0\0\0\0" + orig[4:]), "frame")
    out["frame-reserved-block"] = ("mixed", with_frame(reserved_first_block(orig)), "frame")
    out["frame-truncated"] = ("mixed", with_frame(orig[:len(orig) // 2]), "frame")
    out["frame-bomb-produces"] = ("mixed", with_frame(
        frame(rle_blocks(1 << 20), fcs=1 << 20, single=True)), "frame")
    out["frame-bomb-unknown"] = ("mixed", with_frame(frame(rle_blocks(1 << 20))), "frame")
    out["frame-fcs-claims-4g"] = ("mixed", with_frame(
        frame(rle_blocks(fr[k][1]), fcs=4 << 30)), "frame")

    fs, cs = parse_seekable(single)
    body = b"".join(f[0] for f in fs)
    tbl = single[len(body):]
    out["table-cut"] = ("single", single[:len(body) + len(tbl) // 2], "chunk")
    out["table-entries-dropped"] = ("single", body + table(
        [(len(f[0]), f[1], f[2]) for f in fs[:-2]], cs), "chunk")
    out["table-count-high"] = ("single", body + table(
        [(len(f[0]), f[1], f[2]) for f in fs], cs, count=len(fs) + 1), "chunk")

    def entries(edit):
        e = [[len(f[0]), f[1], f[2]] for f in fs]
        edit(e)
        return body + table([tuple(x) for x in e], cs)
    out["table-dsize-larger"] = ("single", entries(lambda e: e[j].__setitem__(1, e[j][1] * 2)),
                                 "chunk")
    out["table-dsize-smaller"] = ("single", entries(lambda e: e[j].__setitem__(1, e[j][1] // 2)),
                                  "chunk")

    def shift(e):
        e[j][0] += 7
        e[j + 1][0] -= 7
    out["table-csize-shift"] = ("single", entries(shift), "chunk")
    g = [list(x) for x in fs]
    g[j][0] = frame(rle_blocks(4096), fcs=4096, single=True)
    g[j][1] = 1 << 30
    out["table-bomb-claims"] = ("single", build_seekable(g, cs), "chunk")
    return out


def plain_cases(blob, d_len):
    """name -> new blob bytes for a plain (Generation A) chunk of d_len bytes."""
    hl = frame_header_len(blob)
    blocks = blob[hl:]
    fhd = blob[4]
    if fhd & 0x20 or fhd >> 6:
        raise ValueError("expected a frame without a content size and with a window")
    window = blob[5]

    def with_fcs(size):
        flag, field = fcs_field(size, False)
        return struct.pack("<I", ZSTD_MAGIC) + bytes([flag << 6 | (fhd & 0x1F), window]) + field + blocks
    return {
        "plain-bad-magic": b"\0\0\0\0" + blob[4:],
        "plain-reserved-block": reserved_first_block(blob),
        "plain-truncated": blob[:-10],
        "plain-trailing-garbage": blob + b"\x01garbage",
        "plain-fcs-small": with_fcs(1000),
        "plain-fcs-4g": with_fcs(4 << 30),
        "plain-short": frame(raw_blocks(b"P" * min(1000, d_len // 2)), fcs=min(1000, d_len // 2)),
        "plain-bomb": frame(rle_blocks(64 << 20)),
        "plain-bomb-fcs": frame(rle_blocks(64 << 20), fcs=64 << 20, single=True),
    }


# Cases whose affected reads may also give exactly the source's bytes: a plain
# chunk is one zstd frame, and what follows it is not specified.
LENIENT = {"plain-trailing-garbage"}

NAMES_B = ["frame-bad-magic", "frame-reserved-block", "frame-truncated", "frame-bomb-produces",
           "frame-bomb-unknown", "frame-fcs-claims-4g", "table-cut", "table-entries-dropped",
           "table-count-high", "table-dsize-larger", "table-dsize-smaller", "table-csize-shift",
           "table-bomb-claims"]
NAMES_A = ["plain-bad-magic", "plain-reserved-block", "plain-truncated", "plain-trailing-garbage",
           "plain-fcs-small", "plain-fcs-4g", "plain-short", "plain-bomb", "plain-bomb-fcs"]


# --- images ----------------------------------------------------------------------


def file_ranges(img):
    """Compressed chunk digest -> {path: [(offset, len)]}, and all file paths."""
    users, files = {}, []
    for path, inode in img.reach():
        if inode.kind != H.FILE:
            continue
        files.append(path)
        for c in inode.chunks:
            if c.blob.compressed:
                users.setdefault(c.blob.digest.hex(), {}).setdefault(path, []).append(
                    (c.blob.offset, c.len))
    return users, files


def overlaps(ranges, lo, hi):
    return any(o < hi and lo < o + n for o, n in ranges)


def replace_chunk(src, tag, old, new_bytes, out):
    """Saves the image src:tag with chunk blob old replaced by new_bytes (under
    its sha256) into out; returns the digest to mount."""
    img = H.Image(src, tag)
    new = H.sha(new_bytes)
    for iv in img.layers:
        for inode in iv.inodes:
            if inode.kind == H.FILE:
                for c in inode.chunks:
                    if c.blob.digest.hex() == old:
                        c.blob.digest = bytes.fromhex(new)
    if img.rootfs.verity_ptr is not None:
        img.rootfs.verity_ptr.items = [s for s in img.rootfs.verity_ptr.items
                                       if H.VerityData(s).digest.hex() != old]
        img.dirty.add("rootfs")
    img.extra[new] = new_bytes
    if img.gen == "B":
        def fix(man):
            for layer in man["layers"]:
                if layer["digest"] == "sha256:" + old:
                    layer["digest"] = "sha256:" + new
                    layer["size"] = len(new_bytes)
            return H.dumps(man)
        img.manifest_hook = fix
    dg = img.save(out)
    stale = os.path.join(out, "blobs", "sha256", old)
    if os.path.exists(stale):
        os.unlink(stale)
    return dg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("staging", nargs="?")
    ap.add_argument("root", nargs="?")
    ap.add_argument("subdir", nargs="?")
    ap.add_argument("--tree", default="compress")
    args = ap.parse_args()
    if args.staging == "list":
        for n in NAMES_B + NAMES_A:
            print(n)
        return 0
    if not args.subdir:
        ap.error("STAGING ROOT SUBDIR")
    root = os.path.abspath(args.root)
    rel = args.subdir.strip("/")
    outdir = os.path.join(root, rel)
    if os.path.exists(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    base = {}
    with open(os.path.join(args.staging, "cases.txt")) as f:
        for line in f:
            if not line.startswith("#") and line.strip():
                c = line.split()
                base[c[0]] = c
    lines = [f"# trees trees/{args.tree}"]
    for gen in ("B", "A"):
        c = base[f"{args.tree}.{gen}"]
        src, tag = os.path.join(args.staging, c[2]), c[4]
        img = H.Image(src, tag)
        users, files = file_ranges(img)
        blob = lambda d: H.rd(img.blob(d))  # noqa: E731
        singles = sorted(d for d, u in users.items() if len(u) == 1)
        if not singles:
            sys.exit(f"zstd_hostile: no compressed chunk of one file in {src}")
        s = singles[0]
        s_file = next(iter(users[s]))
        made = {}
        if gen == "B":
            # the file with the most frames of its own in a chunk it shares
            best = None
            for d, u in sorted(users.items()):
                if len(u) < 2:
                    continue
                frs, _ = parse_seekable(blob(d))
                rng = d_ranges(frs)
                for path in sorted(u):
                    others = [r for p, r in u.items() if p != path]
                    mine = [i for i, (lo, hi) in enumerate(rng) if hi > lo
                            and overlaps(u[path], lo, hi)
                            and not any(overlaps(r, lo, hi) for r in others)]
                    if len(mine) >= 3 and (best is None or len(mine) > best[0]):
                        best = (len(mine), d, mine[len(mine) // 2], path)
            if best:
                _, mixed, k, m_file = best
            else:
                sys.exit(f"zstd_hostile: no compressed chunk with a frame of one file in {src}")
            sfr, _ = parse_seekable(blob(s))
            j = len(sfr) // 2
            lo, hi = d_ranges(parse_seekable(blob(mixed))[0])[k]
            for name, (which, data, scope) in seekable_cases(blob(mixed), blob(s), k, j).items():
                if which == "mixed":
                    aff = [p for p, r in users[mixed].items() if overlaps(r, lo, hi)]
                    made[name] = (mixed, data, aff)
                else:
                    made[name] = (s, data, [s_file])
            note = (f"B: mixed chunk {mixed[:12]} frame {k} ({m_file.decode()}),"
                    f" single chunk {s[:12]} frame {j} ({s_file.decode()})")
        else:
            d_len = sum(n for r in users[s].values() for _, n in r)
            for name, data in plain_cases(blob(s), d_len).items():
                made[name] = (s, data, [s_file])
            note = f"A: plain chunk {s[:12]} ({s_file.decode()})"
        for name in (NAMES_B if gen == "B" else NAMES_A):
            old, data, aff = made[name]
            case = f"z{gen}-{name}"
            dg = replace_chunk(src, tag, old, data, os.path.join(outdir, case))
            ok_files = [p for p in files if p not in aff]
            mark = "?" if name in LENIENT else ""
            lines.append(f"{case} {gen} {rel}/{case} {dg} "
                         f"{','.join(mark + p.decode() for p in sorted(aff))} "
                         f"{','.join(p.decode() for p in sorted(ok_files)) or '-'}")
        print(note)
    with open(os.path.join(outdir, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines) - 1} compressed hostile cases in {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
