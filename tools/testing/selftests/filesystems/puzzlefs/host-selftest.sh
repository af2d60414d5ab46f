#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Prove the oracle before the driver exists: run the check agent on the host
# against the images read back by the upstream puzzlefs CLIs.
#
#   host-selftest.sh STAGING
#
# STAGING is a folder built by build-images.sh. Needs root and /dev/fuse.
# For every image case of cases.txt:
#   1. `puzzlefs mount -f` (FUSE, the CLI of the image's generation), then the
#      agent's walk, pread and mmap. The upstream FUSE reader reports nlink 0, st_blocks 0,
#      rdev 0, symlink size 0, real timestamps and no "."/".." in readdir, and
#      its readdir breaks on directories holding whiteouts (the layered image
#      is walked by lookup), so walk skips exactly those checks; the driver
#      must pass them all.
#   2. `puzzlefs extract` into a tmpfs, then walk with every check except
#      mode, uid, gid and timestamps (extract chmods before it chowns, so the
#      kernel drops suid/sgid, and it chowns through symlinks; FUSE checks
#      those). Images the extractor cannot handle (sockets: todo!(); symlinks
#      to names not extracted yet or dangling: it chowns through them) are
#      reported and skipped. rdev is checked on an extracted devices-only tree.
# Then perturbs an extracted tree (chmod, one changed byte, an extra xattr, a
# removed file, a changed symlink) and checks that the agent fails each time.
#
# Output: PFS-TEST lines like vm-tests.sh and a summary line.

set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../../../.." && pwd)
S=$(cd "${1:?usage: host-selftest.sh STAGING}" && pwd)
. "$REPO/scripts/puzzlefs/lib/puzzlefs-cli.sh"
A="$S/bin/pfs-check"
[ -x "$A" ] || { echo "no $A: run build-images.sh first" >&2; exit 1; }

PASS=0
FAIL=0
count() { # file
	local p f
	p=$(grep -c '^PFS-TEST: ok' "$1")
	f=$(grep -c '^PFS-TEST: not ok' "$1")
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
}
ok() { echo "PFS-TEST: ok $1"; PASS=$((PASS + 1)); }
notok() { echo "PFS-TEST: not ok $1: $2"; FAIL=$((FAIL + 1)); }
run() { "$A" "$@" >"$W/out" 2>&1; cat "$W/out"; count "$W/out"; }

W=$(mktemp -d /tmp/pfs-host.XXXXXX)
mkdir -p "$W/fuse" "$W/t"
mount -t tmpfs -o size=1g pfs-host "$W/t" || exit 1
FPID=
cleanup() {
	umount "$W/fuse" 2>/dev/null
	[ -n "$FPID" ] && kill "$FPID" 2>/dev/null
	umount "$W/t" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

cli() { [ "$1" = B ] && echo "$PUZZLEFS_NEW" || echo "$PUZZLEFS_OLD"; }

fuse_mount() { # GEN OCI TAG
	local bin
	bin=$(cli "$1")
	if [ "$1" = B ]; then
		"$bin" mount -f "$2:$3" "$W/fuse" >"$W/fuse.log" 2>&1 &
	else
		"$bin" mount -f "$2" "$3" "$W/fuse" >"$W/fuse.log" 2>&1 &
	fi
	FPID=$!
	for _ in $(seq 50); do
		grep -q " $W/fuse fuse" /proc/mounts && return 0
		sleep 0.1
	done
	return 1
}

fuse_umount() {
	umount "$W/fuse" 2>/dev/null
	wait "$FPID" 2>/dev/null
	FPID=
}

extract() { # GEN OCI TAG DIR
	local bin
	bin=$(cli "$1")
	if [ "$1" = B ]; then
		"$bin" extract "$2:$3" "$4"
	else
		"$bin" extract "$2" "$3" "$4"
	fi >"$W/extract.log" 2>&1
}

grep -v '^#' "$S/cases.txt" >"$W/cases"
while read -r c gen oci dg tag man tree mexp reads; do
	[ "$man" = - ] && continue
	# 1. FUSE. Upstream's readdir breaks on directories holding whiteouts:
	# walk the layered image by lookup only, and look up the deleted names.
	extra=()
	case "$c" in
	layers-v2.*) extra=(--skip readdir,dots,nlink,rdev,lsize,times,blocks --absent "$S/manifests/layers.v1.$gen.txt") ;;
	*) extra=(--skip dots,nlink,rdev,lsize,times,blocks) ;;
	esac
	if fuse_mount "$gen" "$S/$oci" "$tag"; then
		run walk "fuse-$c" "$W/fuse" "$S/$man" "${extra[@]}"
		run pread "fuse-$c" "$W/fuse" "$S/$tree" 1 300
		run mmap "fuse-$c" "$W/fuse" "$S/$tree"
		fuse_umount
	else
		notok "fuse-mount/$c" "$(tail -n1 "$W/fuse.log")"
		fuse_umount
	fi
	# 2. extract
	rm -rf "$W/t/x"
	if extract "$gen" "$S/$oci" "$tag" "$W/t/x"; then
		# extract chmods before it chowns (the kernel then clears suid/sgid)
		# and chowns through symlinks: modes and owners are checked by FUSE.
		run walk "extract-$c" "$W/t/x" "$S/$man" --skip mode,uid,gid,times
		run pread "extract-$c" "$W/t/x" "$S/$tree" 2 300
	else
		echo "# extract-$c: upstream extract failed, skipped:" \
			"$(grep -m1 -o "panicked at.*\|Error: .*" "$W/extract.log" | head -c 200)"
	fi
done <"$W/cases"

# 2b. rdev: FUSE reports 0 and extract panics on the sockets of the special
# tree: build its devices and fifos alone with both CLIs and extract them.
python3 "$HERE/mktrees.py" "$W/t/trees" >/dev/null
mkdir -p "$W/t/dev"
cp -a "$W/t/trees/special/dev" "$W/t/dev/dev"
find "$W/t/dev" -type s -delete
python3 "$HERE/manifest.py" "$W/t/dev" >"$W/dev.txt"
for gen in B A; do
	rm -rf "$W/t/devimg" "$W/t/x"
	if [ "$gen" = B ]; then
		"$PUZZLEFS_NEW" build "$W/t/dev" "$W/t/devimg:dev" >/dev/null 2>&1
	else
		"$PUZZLEFS_OLD" build "$W/t/dev" "$W/t/devimg" dev >/dev/null 2>&1
	fi
	if extract "$gen" "$W/t/devimg" dev "$W/t/x"; then
		run walk "extract-devices.$gen" "$W/t/x" "$W/dev.txt" --skip times
	else
		notok "extract-devices.$gen" "$(tail -n1 "$W/extract.log")"
	fi
done

# 3. the agent must fail on a perturbed tree
c=small.B
rm -rf "$W/t/x"
extract B "$S/images/small.B" small "$W/t/x"
perturb() { # NAME COMMAND...
	local name=$1
	shift
	rm -rf "$W/t/p"
	cp -a "$W/t/x" "$W/t/p"
	"$@"
	if "$A" walk "perturb-$name" "$W/t/p" "$S/manifests/small.B.txt" --skip times >"$W/out" 2>&1; then
		notok "agent-detects/$name" "walk passed on a perturbed tree"
	elif grep -Eq "^PFS-TEST: not ok walk/perturb-$name: failed (.* )?$EXPECT\(" "$W/out"; then
		ok "agent-detects/$name"
	else
		notok "agent-detects/$name" "wrong check failed: $(grep -m1 'not ok' "$W/out")"
	fi
}
EXPECT=modes perturb chmod chmod 0600 "$W/t/p/data"
EXPECT=owners perturb chown chown 1000 "$W/t/p/empty"
EXPECT=content perturb byte sh -c "printf X | dd of='$W/t/p/data' bs=1 seek=123456 conv=notrunc 2>/dev/null"
EXPECT=sizes perturb append sh -c "printf X >>'$W/t/p/data'"
EXPECT=paths perturb remove rm "$W/t/p/empty"
EXPECT=paths perturb extra touch "$W/t/p/extra"
EXPECT=xattrs perturb xattr setfattr -n user.extra -v 1 "$W/t/p/data"
EXPECT=symlinks perturb symlink sh -c "rm '$W/t/p/dir/link' && ln -s ../datx '$W/t/p/dir/link'"
EXPECT=types perturb type sh -c "rm '$W/t/p/empty' && mkfifo '$W/t/p/empty'"
EXPECT=hardlinks perturb hardlink sh -c "rm '$W/t/p/empty' && ln '$W/t/p/data' '$W/t/p/empty'"
# pread and mmap must fail on a changed byte too
rm -rf "$W/t/p" && cp -a "$W/t/x" "$W/t/p"
printf X | dd of="$W/t/p/data" bs=1 seek=200000 conv=notrunc 2>/dev/null
"$A" pread perturb "$W/t/p" "$S/trees/small" 3 200 >/dev/null 2>&1 &&
	notok "agent-detects/pread" "pread passed" || ok "agent-detects/pread"
"$A" mmap perturb "$W/t/p" "$S/trees/small" >/dev/null 2>&1 &&
	notok "agent-detects/mmap" "mmap passed" || ok "agent-detects/mmap"

# 4. the corrupted images are corrupted as their names say (the driver's
# errno is checked in the VM); and what the upstream extractor makes of them.
while read -r c gen oci dg tag man tree mexp reads; do
	case "$c" in corrupt-*) ;; *) continue ;; esac
	ref=; [ "$gen" = A ] && ref="$S/images/small.A"  # gen A: no capnp parser here
	probs=$(python3 "$HERE/pfsimg.py" check "$S/$oci" "$dg" $ref)
	case "$c:$probs" in
	*-bad-version:ok | *-garbage-rootfs:ok) ok "corrupt-image/$c" ;;
	*-bad-version:* | *-garbage-rootfs:*) notok "corrupt-image/$c" "blobs not consistent: $probs" ;;
	*:ok) notok "corrupt-image/$c" "no missing or mismatched blob" ;;
	*) ok "corrupt-image/$c" ;;
	esac
	rm -rf "$W/t/x"
	extract "$gen" "$S/$oci" "$tag" "$W/t/x"
	r=$?
	cmp -s "$W/t/x/data" "$S/trees/small/data" && d=same || d=differs
	echo "# upstream extract of $c: exit $r, /data $d;" \
		"$(grep -m1 -o 'Error: .*\|panicked at [^ ]*' "$W/extract.log" | sed 's|.*/src/|src/|' | head -c 120)"
done <"$W/cases"

echo "PFS-TEST-SUMMARY: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
