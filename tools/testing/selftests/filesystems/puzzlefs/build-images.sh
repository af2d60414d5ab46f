#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the PuzzleFS selftest staging folder: source trees, images from both
# upstream CLI generations, manifests, corrupted images, the case list and the
# check agent.
#
#   build-images.sh STAGING [--force]
#
# Needs root (tmpfs mount, mknod, chown, trusted./security. xattrs), python3,
# cargo. Uses scripts/puzzlefs/lib/puzzlefs-cli.sh for the upstream CLIs
# ($PZ_CACHE, default ~/.cache/puzzlefs). Cached: does nothing when the inputs
# (these scripts, the agent sources, the CLI versions, busybox,
# PFS_HOSTILE_RANDOM) are unchanged.
#
# PFS_HOSTILE_RANDOM (default 300): random mutations in the hostile set besides
# its named and scale cases (hostile.py; seed PFS_HOSTILE_SEED, default 1);
# 10000 is the long mode. 0 leaves the random cases out.
#
# STAGING layout (turn it into a disk with `mkfs.ext4 -d STAGING`):
#   bin/pfs-check                  static check agent
#   vm-tests.sh                    the in-VM test runner (copy of this folder's)
#   images/<tree>.<gen>/           OCI dirs (gen B = puzzlefs 0.2.0, A = 0.1.0)
#   images/corrupt-<gen>-<case>/   corrupted copies of images/small.<gen>
#   manifests/<tree>.<gen>.txt     manifest.py output for the tree as stored
#   trees/<tree>/                  regular files of each source tree (for
#                                  pread/mmap comparisons; no xattrs/devices)
#   cases.txt                      one line per mount case (see below)
#   hostile/<case>/                hostile images (hostile.py: upstream images
#                                  mutated, digests fixed up)
#   hostile.txt, hostile-scale.txt their case lists (formats: hostile.py)
#   hostile-tests.sh               the in-VM runner of the hostile cases
#   vm-lib.sh                      the result helpers the runners source
#   stamp                          the input hash this folder was built from
# Identical valid blobs are hard-linked across images (keep links when
# copying: mkfs.ext4 -d, cp -a, tar do).
#
# cases.txt: "# " comments, then lines of space-separated fields:
#   CASE GEN OCI_DIR DIGEST TAG MANIFEST TREE MOUNT_EXPECT READS
# OCI_DIR, MANIFEST, TREE are relative to STAGING ("-" = none); MOUNT_EXPECT is
# "ok" or an errno name; READS is "-" or a comma list of FILE:EXPECT[:OFF:LEN]
# with EXPECT ok | any | errno name (FILE relative to the mount).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../../../.." && pwd)

declare -F log >/dev/null || log() { printf '[build-images] %s\n' "$*" >&2; }
declare -F die >/dev/null || die() { printf '[build-images] error: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: build-images.sh STAGING [--force]"
OUT=$1
FORCE=${2:-}
[ "$(id -u)" = 0 ] || die "must run as root (mknod, chown, trusted. xattrs)"

# shellcheck source=../../../../../scripts/puzzlefs/lib/puzzlefs-cli.sh
. "$REPO/scripts/puzzlefs/lib/puzzlefs-cli.sh"
# PUZZLEFS_NEW / PUZZLEFS_OLD from the environment are used as they are.
if ! [ -x "$PUZZLEFS_NEW" ] || ! [ -x "$PUZZLEFS_OLD" ]; then
	puzzlefs_cli_setup
fi

BUSYBOX=${PFS_BUSYBOX:-/bin/busybox}
# static: an x86-64 ELF without a PT_INTERP program header
python3 - "$BUSYBOX" <<'PY' || die "$BUSYBOX is not a static executable (install busybox-static or set PFS_BUSYBOX)"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:4] == b"\x7fELF" and b[4] == 2
phoff, = struct.unpack_from("<Q", b, 0x20)
phentsize, phnum = struct.unpack_from("<HH", b, 0x36)
types = [struct.unpack_from("<I", b, phoff + i * phentsize)[0] for i in range(phnum)]
sys.exit(3 in types)
PY

AGENT_DIR="$HERE/agent"
HOSTILE_RANDOM=${PFS_HOSTILE_RANDOM:-300}
HOSTILE_SEED=${PFS_HOSTILE_SEED:-1}
input_hash() {
	{
		cat "$HERE/mktrees.py" "$HERE/manifest.py" "$HERE/pfsimg.py" \
			"$HERE/build-images.sh" "$HERE/vm-tests.sh" \
			"$HERE/hostile.py" "$HERE/capnp_codec.py" "$HERE/hostile-tests.sh" "$HERE/vm-lib.sh" \
			"$AGENT_DIR/Cargo.toml" "$AGENT_DIR/Cargo.lock" "$AGENT_DIR"/src/*.rs
		echo "hostile random $HOSTILE_RANDOM seed $HOSTILE_SEED"
		sha256sum "$BUSYBOX" "$PUZZLEFS_NEW" "$PUZZLEFS_OLD"
		python3 --version
	} 2>&1 | sha256sum | cut -d' ' -f1
}
HASH=$(input_hash)
if [ "$FORCE" != --force ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$HASH" ]; then
	log "staging $OUT is up to date"
	exit 0
fi

T0=$(date +%s)
log "building the check agent"
(cd "$AGENT_DIR" && RUSTFLAGS="-C target-feature=+crt-static" \
	cargo build --release --locked --target x86_64-unknown-linux-gnu -q) ||
	die "cargo build of pfs-check failed"
AGENT="$AGENT_DIR/target/x86_64-unknown-linux-gnu/release/pfs-check"

rm -rf "$OUT"
mkdir -p "$OUT"/{bin,images,manifests,trees}
cp "$AGENT" "$OUT/bin/pfs-check"
cp "$HERE/vm-tests.sh" "$HERE/hostile-tests.sh" "$HERE/vm-lib.sh" "$OUT/"
chmod 755 "$OUT/vm-tests.sh" "$OUT/hostile-tests.sh"

# The source trees need a filesystem with >= 4 KiB xattr values and trusted./
# security. xattrs: a private tmpfs.
WORK=$(mktemp -d /tmp/pfs-build.XXXXXX)
cleanup() { umount "$WORK/t" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir "$WORK/t"
mount -t tmpfs -o size=1g,mode=0755 pfs-trees "$WORK/t"
TREES="$WORK/t/trees"
log "generating source trees"
python3 "$HERE/mktrees.py" "$TREES" --busybox "$BUSYBOX"

CASES="$OUT/cases.txt"
{
	echo "# CASE GEN OCI_DIR DIGEST TAG MANIFEST TREE MOUNT_EXPECT READS"
	echo "# gen B: puzzlefs $PUZZLEFS_NEW_VERSION (OCI image manifest digest);" \
		"gen A: puzzlefs $PUZZLEFS_OLD_VERSION (rootfs blob digest)"
} >"$CASES"

# build GEN SRC OCI TAG [BASE_TAG]
build() {
	local gen=$1 src=$2 oci=$3 tag=$4 base=${5:-}
	local -a b=()
	[ -n "$base" ] && b=(-b "$base")
	[ -n "${BUILD_COMPRESS:-}" ] && b+=(-c)
	if [ "$gen" = B ]; then
		"$PUZZLEFS_NEW" build "${b[@]}" "$src" "$oci:$tag" >"$WORK/build.log" 2>&1
	else
		"$PUZZLEFS_OLD" build "${b[@]}" "$src" "$oci" "$tag" >"$WORK/build.log" 2>&1
	fi || { cat "$WORK/build.log" >&2; die "puzzlefs build ($gen) of $src failed"; }
}

# copy the regular files of a tree (the pread/mmap reference)
copy_data() {
	local src=$1 dst=$2
	(cd "$src" && find . -type f -print0 | cpio -0 -pdm --quiet "$dst") ||
		die "copy of $src failed"
	# cpio copies ownership and modes; keep the copy readable and plain
	chown -R 0:0 "$dst"
	find "$dst" -type d -exec chmod 0755 {} + && find "$dst" -type f -exec chmod 0644 {} +
}

add_case() { # CASE GEN OCI TAG MANIFEST TREE [MOUNT_EXPECT] [READS]
	local dg
	dg=$(python3 "$HERE/pfsimg.py" digest "$OUT/$3" "$4")
	echo "$1 $2 $3 $dg $4 $5 $6 ${7:-ok} ${8:--}" >>"$CASES"
}

for t in small sizes smallfiles names special xattrs; do
	copy_data "$TREES/$t" "$OUT/trees/$t"
	for gen in B A; do
		log "image $t.$gen"
		build "$gen" "$TREES/$t" "$OUT/images/$t.$gen" "$t"
		python3 "$HERE/manifest.py" "$TREES/$t" --gen "$gen" >"$OUT/manifests/$t.$gen.txt"
		add_case "$t.$gen" "$gen" "images/$t.$gen" "$t" "manifests/$t.$gen.txt" "trees/$t"
		# The same tree with compressed chunks (puzzlefs build -c): walked, read and
		# compared with the same manifest and files.
		log "image $t.${gen}z (build -c)"
		BUILD_COMPRESS=1 build "$gen" "$TREES/$t" "$OUT/images/$t.${gen}z" "$t"
		add_case "$t.${gen}z" "$gen" "images/$t.${gen}z" "$t" "manifests/$t.$gen.txt" "trees/$t"
	done
done

# Compressed chunks (puzzlefs build -c). Until the driver reads zstd, reading
# a compressed chunk gives EOPNOTSUPP; vm-tests.sh decides by $E_COMPRESSED.
copy_data "$TREES/compress" "$OUT/trees/compress"
for gen in B A; do
	log "image compress.$gen (build -c)"
	BUILD_COMPRESS=1 build "$gen" "$TREES/compress" "$OUT/images/compress.$gen" compress
	python3 "$HERE/manifest.py" "$TREES/compress" --gen "$gen" >"$OUT/manifests/compress.$gen.txt"
	add_case "compress.$gen" "$gen" "images/compress.$gen" compress \
		"manifests/compress.$gen.txt" "trees/compress" ok "/text:EOPNOTSUPP,/random:any,/empty:ok"
done

# Two layers: v1, then v2 built on top with -b (added, modified, deleted).
copy_data "$TREES/layers.v1" "$OUT/trees/layers.v1"
copy_data "$TREES/layers.v2" "$OUT/trees/layers.v2"
for gen in B A; do
	log "image layers.$gen (two layers)"
	build "$gen" "$TREES/layers.v1" "$OUT/images/layers.$gen" v1
	build "$gen" "$TREES/layers.v2" "$OUT/images/layers.$gen" v2 v1
	for v in v1 v2; do
		python3 "$HERE/manifest.py" "$TREES/layers.$v" --gen "$gen" \
			>"$OUT/manifests/layers.$v.$gen.txt"
		add_case "layers-$v.$gen" "$gen" "images/layers.$gen" "$v" \
			"manifests/layers.$v.$gen.txt" "trees/layers.$v"
	done
	# A layered image mixing an uncompressed layer and a compressed one on top.
	log "image layers-mixed.$gen (v1 plain, v2 -c on top)"
	build "$gen" "$TREES/layers.v1" "$OUT/images/layers-mixed.$gen" v1
	BUILD_COMPRESS=1 build "$gen" "$TREES/layers.v2" "$OUT/images/layers-mixed.$gen" v2 v1
	add_case "layers-v2.${gen}m" "$gen" "images/layers-mixed.$gen" v2 \
		"manifests/layers.v2.$gen.txt" "trees/layers.v2"
done

# Corrupted copies of the small image, both generations.
for gen in B A; do
	log "corrupted images ($gen)"
	python3 "$HERE/pfsimg.py" corrupt "$OUT/images/small.$gen" small "$gen" \
		"$TREES/small/data" "$OUT/images" "corrupt-$gen" >>"$CASES"
done

log "$(python3 "$HERE/pfsimg.py" dedupe "$OUT/images")"

# Hostile images: the images above mutated, digests fixed up (after the
# dedupe: unchanged blobs are hard links to the deduplicated ones).
log "hostile images ($HOSTILE_RANDOM random mutations, seed $HOSTILE_SEED)"
python3 "$HERE/hostile.py" build "$OUT" --random "$HOSTILE_RANDOM" --seed "$HOSTILE_SEED" \
	2>"$WORK/hostile.log" || { cat "$WORK/hostile.log" >&2; die "hostile.py build failed"; }
grep -v '^# skipped' "$WORK/hostile.log" >&2 || true
echo "$HASH" >"$OUT/stamp"
log "staging $OUT: $(du -sh "$OUT" | cut -f1), $(grep -vc '^#' "$CASES") cases," \
	"$(($(date +%s) - T0)) s"
