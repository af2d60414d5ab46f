#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Add the extra test images to the ext4 data disk of the in-VM tests, after
# it was made from the staging folder (build-images.sh + mkfs.ext4 -d):
#
#   extras.sh DISK STAGING
#
# Needs root (a loop mount), python3, a C compiler with a static libc.
# Writes DISK's folder extras/ (the guest sees DATA/extras):
#   extras-tests.sh           the in-VM runner of what follows
#   vm-lib.sh                 the result helpers it sources (shared with vm-tests.sh)
#   bin/pfs-verity            verity-helper.c, static
#   bin/puzzlefs-0.2.0, bin/puzzlefs-0.1.0, lib/
#                             the upstream CLIs and the shared libraries they
#                             need (with the dynamic loader): the guest runs
#                             upstream's `puzzlefs enable-fs-verity` with them
#   verity/                   fs-verity images and cases (verity_images.py)
#   zhostile/                 corrupted compressed chunks (zstd_hostile.py)
#   big/                      the image of 2 GiB of unique data (big_image.py;
#                             built once into $PZ_CACHE/big-image);
#                             PUZZLEFS_BIG=0 leaves it out
#
# The disk must have 4 KiB blocks, as fs-verity's 4 KiB Merkle tree blocks
# (what upstream enable-fs-verity uses) need, and room for the extras. A disk
# with 4 KiB blocks is grown (resize2fs); one with smaller blocks (mke2fs
# picks 1 KiB for file systems under 512 MiB unless told `-b 4096`) is made
# again from STAGING with 4 KiB blocks and the same label and features.
#
# Environment: PUZZLEFS_NEW / PUZZLEFS_OLD (the upstream CLIs, else the
# pipeline's defaults), PZ_CACHE (default ~/.cache/puzzlefs), PUZZLEFS_BIG.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../../../.." && pwd)
declare -F log >/dev/null || log() { printf '[extras] %s\n' "$*" >&2; }
declare -F die >/dev/null || die() { printf '[extras] error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: extras.sh DISK STAGING"
DISK=$1
STAGING=$(cd "$2" && pwd)
[ "$(id -u)" = 0 ] || die "must run as root (loop mount)"
[ -f "$DISK" ] || die "no disk $DISK"
: "${PZ_CACHE:=$HOME/.cache/puzzlefs}"
# shellcheck source=../../../../../scripts/puzzlefs/lib/puzzlefs-cli.sh
. "$REPO/scripts/puzzlefs/lib/puzzlefs-cli.sh"
[ -x "$PUZZLEFS_NEW" ] && [ -x "$PUZZLEFS_OLD" ] || puzzlefs_cli_setup
BIG=${PUZZLEFS_BIG:-1}
T0=$(date +%s)
elapsed() { echo "$(($(date +%s) - T0)) s"; }

# The helper, static (busybox has no fs-verity or FIEMAP applet).
HELPER_DIR=$PZ_CACHE/extras
HELPER=$HELPER_DIR/pfs-verity
hsum=$(sha256sum "$HERE/verity-helper.c" | cut -d' ' -f1)
if [ "$(cat "$HELPER.src" 2>/dev/null)" != "$hsum" ] || [ ! -x "$HELPER" ]; then
	mkdir -p "$HELPER_DIR"
	cc -static -O2 -Wall -Werror -o "$HELPER" "$HERE/verity-helper.c" ||
		die "cannot build verity-helper.c statically (is libc's static library installed?)"
	echo "$hsum" >"$HELPER.src"
fi

# The large image, cached.
BIGDIR=$PZ_CACHE/big-image
if [ "$BIG" != 0 ]; then
	t=$(date +%s)
	python3 "$HERE/big_image.py" "$BIGDIR" "$PUZZLEFS_NEW" >&2 ||
		die "cannot build the big image"
	log "big image ready in $(($(date +%s) - t)) s: $(tr '\n' ' ' <"$BIGDIR/info.txt")"
fi

# Room: the big image, the copies of verity_images.py (5 x 2 images of the
# smallfiles tree), the compressed cases, the CLIs and libraries.
need_mb=256
[ "$BIG" != 0 ] && need_mb=$((need_mb + $(du -sm "$BIGDIR" | cut -f1) * 105 / 100))
dump=$(dumpe2fs -h "$DISK" 2>/dev/null)
field() { sed -n "s/^$1:[[:space:]]*//p" <<<"$dump"; }
bsize=$(field 'Block size')
free_mb=$(($(field 'Free blocks') * bsize >> 20))
size_mb=$(($(stat -c %s "$DISK") >> 20))
if [ "$bsize" != 4096 ]; then
	label=$(field 'Filesystem volume name')
	[ "$label" = "<none>" ] && label=
	features=$(field 'Filesystem features' | tr ' ' ',')
	new_mb=$((size_mb + need_mb))
	log "the disk has $bsize-byte blocks: fs-verity needs 4 KiB; making it again" \
		"(${new_mb} MiB, 4 KiB blocks, features $features)"
	rm -f "$DISK"
	mkfs.ext4 -q -F -b 4096 -O "$features" ${label:+-L "$label"} -d "$STAGING" "$DISK" \
		"${new_mb}M"
elif [ "$free_mb" -lt "$need_mb" ]; then
	new_mb=$((size_mb + need_mb - free_mb))
	log "growing the disk from $size_mb to $new_mb MiB"
	truncate -s "${new_mb}M" "$DISK"
	e2fsck -f -p "$DISK" >/dev/null
	resize2fs -f "$DISK" >/dev/null 2>&1 || die "resize2fs $DISK failed"
fi

MNT=$(mktemp -d /tmp/pfs-extras.XXXXXX)
cleanup() {
	if mountpoint -q "$MNT"; then umount "$MNT" || true; fi
	rmdir "$MNT" 2>/dev/null || true
}
trap cleanup EXIT
mount -o loop "$DISK" "$MNT"
X=$MNT/extras
rm -rf "$X"
mkdir -p "$X/bin" "$X/lib"
install -m 0755 "$HERE/extras-tests.sh" "$X/extras-tests.sh"
install -m 0644 "$HERE/vm-lib.sh" "$X/vm-lib.sh"
install -m 0755 "$HELPER" "$X/bin/pfs-verity"
install -m 0755 "$PUZZLEFS_NEW" "$X/bin/puzzlefs-0.2.0"
install -m 0755 "$PUZZLEFS_OLD" "$X/bin/puzzlefs-0.1.0"
# Their libraries and loader, as ldd resolves them on this host.
for lib in $(ldd "$PUZZLEFS_NEW" "$PUZZLEFS_OLD" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' |
	sort -u); do
	install -m 0755 "$(readlink -f "$lib")" "$X/lib/$(basename "$lib")"
done
[ -x "$X/lib/ld-linux-x86-64.so.2" ] || die "no dynamic loader among the CLIs' libraries"
log "helper, CLIs and $(ls "$X/lib" | wc -l) libraries copied ($(elapsed))"

python3 "$HERE/verity_images.py" "$STAGING" "$MNT" extras/verity >&2
python3 "$HERE/zstd_hostile.py" "$STAGING" "$MNT" extras/zhostile >&2
log "fs-verity and compressed cases written ($(elapsed))"

if [ "$BIG" != 0 ]; then
	cp -a "$BIGDIR" "$X/big"
	log "big image copied ($(elapsed))"
fi
sync -f "$X"
log "extras: $(du -sh "$X" | cut -f1); disk $(df -h --output=used,size "$MNT" | tail -n 1)"
umount "$MNT"
log "done in $(elapsed)"
