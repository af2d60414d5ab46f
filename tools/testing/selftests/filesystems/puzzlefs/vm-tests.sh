#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# PuzzleFS in-VM tests (busybox ash / POSIX sh).
#
#   vm-tests.sh DATA [EXTRA_ROOT]
#
# DATA is the staging folder built by build-images.sh (mounted from the ext4
# disk). EXTRA_ROOT, if given, is another folder holding images/small.B and
# images/small.A (the harness puts them on the initramfs): they are mounted,
# walked and read too. The agent is DATA/bin/pfs-check or pfs-check in PATH.
#
# Every result is one line "PFS-TEST: ok NAME" or "PFS-TEST: not ok NAME: WHY";
# "# " lines are details. The last line is "PFS-TEST-SUMMARY: N passed, M failed".
# Then DATA/extras/extras-tests.sh (fs-verity, lying compressed chunks, the
# 2 GiB image: see extras.sh), and last DATA/hostile-tests.sh (hostile
# images), unless the kernel command line has pfs.hostile=0.
#
# Expected errnos (one place, change them here):
#   bad options (missing, unknown, repeated, relative oci_root_dir,
#   malformed digest, tag and image_manifest together)     EINVAL
#   oci_root_dir or a blob absent                           ENOENT
#   oci_root_dir not a directory                            ENOTDIR
#   sha256 mismatch or corrupt metadata                     EUCLEAN
#   unsupported manifest version                            EINVAL (cases.txt)
#   reading a chunk that is missing or runs past its blob   EIO (cases.txt)

FSTYPE=puzzlefs
MAGIC=${PFS_MAGIC:-0x7a7a6c70}
E_OPT=EINVAL
E_NOENT=ENOENT
E_NOTDIR=ENOTDIR
# Reading a zstd-compressed chunk (puzzlefs build -c): "ok" (the driver reads
# them): the compress.* images are walked and compared like the others. Set
# PFS_E_COMPRESSED=EOPNOTSUPP to test a driver without zstd support.
E_COMPRESSED=${PFS_E_COMPRESSED:-ok}
PREAD_N=${PFS_PREAD_N:-300}
CYCLES=${PFS_CYCLES:-200}
READERS=${PFS_READERS:-8}
READER_ROUNDS=${PFS_READER_ROUNDS:-2}

DATA=${1:?usage: vm-tests.sh DATA [EXTRA_ROOT]}
EXTRA=${2:-}
DATA=$(cd "$DATA" && pwd)
MNT=/mnt/pfs
OVL=/mnt/pfs-ovl
TMP=${TMPDIR:-/tmp}/pfs-vm-tests.$$
mkdir -p "$MNT" "$OVL" "$TMP" || exit 1

if [ -n "${PFS_AGENT:-}" ]; then
	A=$PFS_AGENT
elif [ -x "$DATA/bin/pfs-check" ]; then
	A="$DATA/bin/pfs-check"
else
	A=$(command -v pfs-check) || { echo "PFS-TEST: not ok setup: no pfs-check"; exit 1; }
fi

# a hung agent call fails its check instead of stalling the whole run
TO=
command -v timeout >/dev/null 2>&1 && TO="timeout ${PFS_TIMEOUT:-600}"
T0=$(date +%s)
section() { echo "# [$(($(date +%s) - T0)) s] $*"; }

# ok, notok, note, run and the PASS/FAIL counts
. "$(dirname "$0")/vm-lib.sh"

opts() { # OCI_DIR(abs) DIGEST
	echo "oci_root_dir=$1,image_manifest=$2"
}

umnt() {
	umount "$1" 2>/dev/null || { sleep 1; umount "$1" 2>/dev/null; } ||
		notok "umount$1" "umount failed"
}

dmesg_count() { dmesg 2>/dev/null | grep -ci puzzlefs; }

# --- checks on a mounted image ------------------------------------------

check_mounted() { # CASE GEN OCI DIGEST MANIFEST TREE
	c=$1
	case "$c" in
	layers-v2.*) run "walk/$c" walk "$c" "$MNT" "$DATA/$5" --absent "$DATA/manifests/layers.v1.$2.txt" ;;
	*) run "walk/$c" walk "$c" "$MNT" "$DATA/$5" ;;
	esac
	if [ "$6" != - ]; then
		run "pread/$c" pread "$c" "$MNT" "$DATA/$6" 1 "$PREAD_N"
		run "mmap/$c" mmap "$c" "$MNT" "$DATA/$6"
	fi
	case "$c" in
	layers*) run "statfs/$c" statfs "$c" "$MNT" "$MAGIC" - ;;
	*) run "statfs/$c" statfs "$c" "$MNT" "$MAGIC" "$DATA/$5" ;;
	esac
	# trusted.* names are listed only to CAP_SYS_ADMIN
	case "$c" in
	xattrs.*) run "xattr-unpriv/$c" xattr-unpriv "$c" "$MNT" "$DATA/$5" ;;
	esac
	# /proc/mounts shows the type, ro and the options
	line=$(grep " $MNT $FSTYPE " /proc/mounts)
	case "$line" in
	*" $MNT $FSTYPE ro"*"oci_root_dir=$DATA/$3"*"image_manifest="*"$4"*) ok "proc-mounts/$c" ;;
	*) notok "proc-mounts/$c" "line '$line'" ;;
	esac
	# writes fail with EROFS
	if touch "$MNT/pfs-new-file" 2>/dev/null || mkdir "$MNT/pfs-new-dir" 2>/dev/null; then
		notok "write-refused/$c" "creating a file succeeded"
	else
		ok "write-refused/$c"
	fi
}

remount_rw() { # CASE
	# Refused either by an error or by staying read-only (as erofs/squashfs do).
	$TO "$A" mount-errno "remount-rw/$1" ok "$FSTYPE" "$MNT" "" remount-rw </dev/null >"$TMP/out" 2>&1
	if grep -q '^PFS-TEST: ok' "$TMP/out"; then
		if grep " $MNT $FSTYPE " /proc/mounts | grep -q " ro[ ,]"; then
			ok "remount-rw/$1"
			note "remount rw returned 0 and the mount stayed read-only"
		else
			notok "remount-rw/$1" "remount rw made the mount writable"
		fi
	else
		ok "remount-rw/$1"
		note "remount rw: $(grep -o 'failed with [A-Z0-9]*' "$TMP/out" | head -n1)"
	fi
}

do_reads() { # CASE READS
	echo "$2" | tr ',' '\n' >"$TMP/reads"
	i=0
	while IFS=: read -r f exp off len; do
		i=$((i + 1))
		if [ "$exp" = any ]; then
			if $TO "$A" read-errno "$1/$i" ok "$MNT$f" </dev/null >/dev/null 2>&1; then r=data; else r=error; fi
			ok "read/$1/$i"
			note "read $f of a corrupted image: $r (either is accepted; no crash)"
		elif [ -n "$off" ]; then
			run "read/$1/$i" read-errno "$1/$i" "$exp" "$MNT$f" "$off" "$len"
		else
			run "read/$1/$i" read-errno "$1/$i" "$exp" "$MNT$f"
		fi
	done <"$TMP/reads"
}

# --- the image cases from cases.txt --------------------------------------

section "image cases"

note "puzzlefs vm-tests: data $DATA, agent $A, magic $MAGIC"
grep -q "^nodev[[:space:]]*$FSTYPE\$\|[[:space:]]$FSTYPE\$" /proc/filesystems &&
	ok "registered" || notok "registered" "$FSTYPE not in /proc/filesystems"

DM0=$(dmesg_count)
grep -v '^#' "$DATA/cases.txt" >"$TMP/cases"
while read -r c gen oci dg tag man tree mexp reads; do
	[ -n "$c" ] || continue
	o=$(opts "$DATA/$oci" "$dg")
	if [ "$mexp" != ok ]; then
		run "mount/$c" mount-errno "$c" "$mexp" "$FSTYPE" "$MNT" "$o"
		continue
	fi
	run "mount/$c" mount-errno "$c" keep "$FSTYPE" "$MNT" "$o" || continue
	case "$c:$E_COMPRESSED" in
	compress.*:ok) reads=- ;;
	compress.*) man=- reads=$(echo "$reads" | sed "s/:EOPNOTSUPP/:$E_COMPRESSED/g") ;;
	esac
	if [ "$man" != - ]; then
		check_mounted "$c" "$gen" "$oci" "$dg" "$man" "$tree"
	fi
	[ "$reads" != - ] && do_reads "$c" "$reads"
	case "$c" in small.*) remount_rw "$c" ;; esac
	case "$c" in
	sizes.*)
		# a static binary runs from the mount (exec and mmap of text)
		out=$("$MNT/bin/busybox" echo puzzlefs-exec-ok 2>&1 </dev/null)
		[ "$out" = puzzlefs-exec-ok ] && ok "exec/$c" || notok "exec/$c" "output '$out'"
		out=$("$MNT/bin/hello.sh" 2>&1 </dev/null)
		[ "$out" = puzzlefs-exec-ok ] && ok "exec-script/$c" || notok "exec-script/$c" "output '$out'"
		out=$("$MNT/bin/busybox" sha256sum "$MNT/dup/a" 2>&1 | cut -d' ' -f1)
		want=$(grep '^f /dup/a ' "$DATA/$man" | sed 's/.*sha256=\([0-9a-f]*\).*/\1/')
		[ "$out" = "$want" ] && ok "exec-read/$c" || notok "exec-read/$c" "got '$out'"
		;;
	esac
	umnt "$MNT"
done <"$TMP/cases"

# cases.txt field lookup: case_field CASE FIELD_NO
case_field() { awk -v c="$1" -v n="$2" '$1 == c { print $n }' "$TMP/cases"; }

# --- tag= instead of image_manifest= ------------------------------------

section "tag="

for gen in B A; do
	oci="$DATA/$(case_field "layers-v2.$gen" 3)"
	for v in v1 v2; do
		c="tag-$v.$gen"
		if run "mount/$c" mount-errno "$c" keep "$FSTYPE" "$MNT" "oci_root_dir=$oci,tag=$v"; then
			run "walk/$c" walk "$c" "$MNT" "$DATA/manifests/layers.$v.$gen.txt"
			grep " $MNT $FSTYPE " /proc/mounts | grep -q "tag=$v" &&
				ok "proc-mounts/$c" || notok "proc-mounts/$c" "no tag=$v in /proc/mounts"
			umnt "$MNT"
		fi
	done
done

# --- blob_cache=drop (the default is keep) ----------------------------------

section "blob_cache=drop"

for c in smallfiles.B sizes.A smallfiles.Bz; do
	dg=$(case_field "$c" 4)
	if [ -z "$dg" ]; then
		notok "drop/$c" "no case $c in cases.txt"
		continue
	fi
	o="$(opts "$DATA/$(case_field "$c" 3)" "$dg"),blob_cache=drop"
	if run "mount/drop-$c" mount-errno "drop-$c" keep "$FSTYPE" "$MNT" "$o"; then
		run "walk/drop-$c" walk "drop-$c" "$MNT" "$DATA/$(case_field "$c" 6)"
		grep " $MNT $FSTYPE " /proc/mounts | grep -q "blob_cache=drop" &&
			ok "proc-mounts/drop-$c" ||
			notok "proc-mounts/drop-$c" "no blob_cache=drop in /proc/mounts"
		umnt "$MNT"
	fi
done

# What drop is for: after a full read from cold caches, the chunk blob pages that the reads
# used whole are gone from the page cache; with keep they stay. Most of the sizes tree is in
# large files, whose blob pages are used whole. The totals include the metadata blobs, which
# the mount reads and leaves cached in both modes (a few KiB here).
c=sizes.B
blob_cache_after_walk() { # OPTIONS NAME: "RESIDENT TOTAL" bytes of the case's blobs in $TMP/res
	echo "- -" >"$TMP/res"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	if run "mount/$2" mount-errno "$2" keep "$FSTYPE" "$MNT" "$1"; then
		run "walk/$2" walk "$2" "$MNT" "$DATA/$(case_field "$c" 6)"
		$TO "$A" resident "$DATA/$(case_field "$c" 3)/blobs/sha256" >"$TMP/res.new" &&
			mv "$TMP/res.new" "$TMP/res"
		umnt "$MNT"
	fi
}
is_count() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }
o=$(opts "$DATA/$(case_field "$c" 3)" "$(case_field "$c" 4)")
blob_cache_after_walk "$o,blob_cache=keep" "keep-cache-$c"
read -r keep_res keep_total <"$TMP/res"
blob_cache_after_walk "$o,blob_cache=drop" "drop-cache-$c"
read -r drop_res drop_total <"$TMP/res"
note "blobs of $c in the page cache after a cold full read: keep $keep_res of $keep_total, drop $drop_res of $drop_total bytes"
if ! is_count "$keep_res" || ! is_count "$keep_total" || ! is_count "$drop_res" ||
	[ "$drop_total" != "$keep_total" ] || [ "$keep_total" -eq 0 ]; then
	notok "drop-releases-blob-pages" "no measurement (keep: $keep_res $keep_total, drop: $drop_res $drop_total)"
elif [ $((keep_res * 2)) -ge "$keep_total" ] && [ $((drop_res * 4)) -le "$keep_res" ]; then
	ok "drop-releases-blob-pages"
else
	notok "drop-releases-blob-pages" "keep $keep_res, drop $drop_res of $keep_total bytes cached"
fi

# --- bad input ------------------------------------------------------------

section "bad input"

D="$DATA/$(case_field small.B 3)"
G=$(case_field small.B 4)
DA="$DATA/$(case_field small.A 3)"
GA=$(case_field small.A 4)
Z64=0000000000000000000000000000000000000000000000000000000000000000
bad() { # NAME ERRNO DATA
	run "mount/bad-$1" mount-errno "bad-$1" "$2" "$FSTYPE" "$MNT" "$3"
}
bad no-options "$E_OPT" ""
bad no-manifest "$E_OPT" "oci_root_dir=$D"
bad no-root-dir "$E_OPT" "image_manifest=$G"
bad unknown-option "$E_OPT" "oci_root_dir=$D,image_manifest=$G,bogus=1"
bad unknown-flag "$E_OPT" "oci_root_dir=$D,image_manifest=$G,bogus"
bad repeated-root "$E_OPT" "oci_root_dir=$D,oci_root_dir=$D,image_manifest=$G"
bad repeated-manifest "$E_OPT" "oci_root_dir=$D,image_manifest=$G,image_manifest=$G"
bad tag-and-manifest "$E_OPT" "oci_root_dir=$D,image_manifest=$G,tag=small"
bad empty-root-dir "$E_OPT" "oci_root_dir=,image_manifest=$G"
bad relative-root-dir "$E_OPT" "oci_root_dir=$(echo "$D" | sed 's|^/||'),image_manifest=$G"
bad missing-root-dir "$E_NOENT" "oci_root_dir=/nonexistent/pfs,image_manifest=$G"
bad root-dir-is-file "$E_NOTDIR" "oci_root_dir=$DATA/cases.txt,image_manifest=$G"
bad digest-short "$E_OPT" "oci_root_dir=$D,image_manifest=$(echo "$G" | cut -c2-)"
bad digest-long "$E_OPT" "oci_root_dir=$D,image_manifest=${G}0"
bad digest-nonhex "$E_OPT" "oci_root_dir=$D,image_manifest=$(echo "$G" | cut -c2-)g"
bad digest-empty "$E_OPT" "oci_root_dir=$D,image_manifest="
bad digest-sha512 "$E_OPT" "oci_root_dir=$D,image_manifest=sha512:$G"
bad digest-absent "$E_NOENT" "oci_root_dir=$D,image_manifest=$Z64"
bad digest-absent-A "$E_NOENT" "oci_root_dir=$DA,image_manifest=$Z64"
bad tag-unknown "$E_NOENT" "oci_root_dir=$D,tag=no-such-tag"
bad no-index "$E_NOENT" "oci_root_dir=$DATA/trees,tag=small"
bad no-blobs "$E_NOENT" "oci_root_dir=$DATA/trees,image_manifest=$G"
# the digest of another blob kind: a chunk is not a manifest
bad chunk-as-manifest EUCLEAN "oci_root_dir=$D,image_manifest=$(grep -o '"sha256:[0-9a-f]*"' "$D/blobs/sha256/$G" | tail -n1 | tr -d '"' | cut -d: -f2)"
# accepted forms
run "mount/sha256-prefix" mount-errno sha256-prefix ok "$FSTYPE" "$MNT" "oci_root_dir=$D,image_manifest=sha256:$G"
run "mount/gen-A" mount-errno gen-A ok "$FSTYPE" "$MNT" "oci_root_dir=$DA,image_manifest=$GA"
# without MS_RDONLY: either the mount comes up read-only or it is refused
"$A" mount-errno no-ro-flag keep "$FSTYPE" "$MNT" "$(opts "$D" "$G")" rw >"$TMP/out" 2>&1
if grep -q '^PFS-TEST: ok' "$TMP/out"; then
	run "statfs/no-ro-flag" statfs no-ro-flag "$MNT" "$MAGIC" -
	umnt "$MNT"
elif grep -q 'failed with \(EROFS\|EACCES\),' "$TMP/out"; then
	ok "mount/no-ro-flag"
	note "a mount without MS_RDONLY: $(grep -o 'failed with [A-Z]*' "$TMP/out")"
else
	notok "mount/no-ro-flag" "$(grep -m1 'not ok' "$TMP/out")"
fi
# the user's path: busybox mount(8)
if mount -t "$FSTYPE" -o "$(opts "$D" "$G")" none "$MNT" 2>"$TMP/err"; then
	[ "$(ls "$MNT" | tr '\n' ' ')" = "data dir empty " ] && ok "mount8-ls" ||
		notok "mount8-ls" "ls shows '$(ls "$MNT" | tr '\n' ' ')'"
	umnt "$MNT"
else
	notok "mount8-ls" "mount(8) failed: $(cat "$TMP/err")"
fi
DM1=$(dmesg_count)
if [ "$DM1" -gt "$DM0" ]; then ok "errors-logged"; else notok "errors-logged" "no puzzlefs message in dmesg"; fi

# --- concurrency, cycles ---------------------------------------------------

section "concurrency and cycles"

for c in sizes.B sizes.A; do
	o=$(opts "$DATA/$(case_field "$c" 3)" "$(case_field "$c" 4)")
	if run "mount/readers-$c" mount-errno "readers-$c" keep "$FSTYPE" "$MNT" "$o"; then
		run "readers/$c" readers "$c" "$MNT" "$DATA/$(case_field "$c" 6)" "$READERS" "$READER_ROUNDS"
		umnt "$MNT"
	fi
done
# Leak check around the mount/read/unmount cycles, with the VFS's own counters of allocated
# inodes and open files (/proc/sys/fs/inode-nr, file-nr): slab counts are no use under KASAN,
# whose quarantine keeps freed objects counted. Chunk blobs are kept open per mount and every
# mount instantiates inodes, so a leak of either grows with the number of cycles.
nr_inodes() { cut -f1 /proc/sys/fs/inode-nr; }
nr_files() { cut -f1 /proc/sys/fs/file-nr; }
settle() { sync; echo 3 > /proc/sys/vm/drop_caches; sleep 1; echo 3 > /proc/sys/vm/drop_caches; }
settle
ino0=$(nr_inodes); files0=$(nr_files)
run "cycles/small.B" cycles small.B "$CYCLES" "$FSTYPE" "$MNT" "$(opts "$D" "$G")" /data
run "cycles/small.A" cycles small.A "$((CYCLES / 4))" "$FSTYPE" "$MNT" "$(opts "$DA" "$GA")" /data
settle
ino1=$(nr_inodes); files1=$(nr_files)
note "after $CYCLES+$((CYCLES / 4)) cycles: inodes $ino0 -> $ino1, open files $files0 -> $files1"
if [ -z "$ino0" ] || [ -z "$files0" ]; then
	notok "cycles-no-leak" "no inode-nr or file-nr counts"
elif [ "$ino1" -le $((ino0 + 16)) ] && [ "$files1" -le $((files0 + 2)) ]; then
	ok "cycles-no-leak"
else
	notok "cycles-no-leak" "inodes $ino0 -> $ino1, open files $files0 -> $files1"
fi
# two mounts of one image at once, and of both generations
mkdir -p "$MNT.2"
if run "mount/twice-1" mount-errno twice-1 keep "$FSTYPE" "$MNT" "$(opts "$D" "$G")" &&
	run "mount/twice-2" mount-errno twice-2 keep "$FSTYPE" "$MNT.2" "$(opts "$D" "$G")"; then
	cmp -s "$MNT/data" "$MNT.2/data" && ok "two-mounts" || notok "two-mounts" "contents differ"
fi
umount "$MNT.2" 2>/dev/null
umount "$MNT" 2>/dev/null

# --- overlayfs: puzzlefs lower, tmpfs upper --------------------------------

section "overlayfs"

S="$DATA/$(case_field sizes.B 3)"
SG=$(case_field sizes.B 4)
if run "mount/ovl-lower" mount-errno ovl-lower keep "$FSTYPE" "$MNT" "$(opts "$S" "$SG")"; then
	mkdir -p "$TMP/ovl" && mount -t tmpfs pfs-upper "$TMP/ovl" &&
		mkdir -p "$TMP/ovl/u" "$TMP/ovl/w"
	if mount -t overlay overlay -o "lowerdir=$MNT,upperdir=$TMP/ovl/u,workdir=$TMP/ovl/w" "$OVL"; then
		ok "overlay-mount"
		run "pread/overlay" pread overlay "$OVL" "$DATA/trees/sizes" 2 100
		# copy-up of a modified small and big file
		for f in dup/a big; do
			sz=$(wc -c <"$DATA/trees/sizes/$f")
			if echo appended >>"$OVL/$f"; then
				if head -c "$sz" "$OVL/$f" | cmp -s - "$DATA/trees/sizes/$f" &&
					[ "$(tail -c 9 "$OVL/$f")" = appended ] &&
					[ -f "$TMP/ovl/u/$f" ] && cmp -s "$MNT/$f" "$DATA/trees/sizes/$f"; then
					ok "overlay-copy-up/$f"
				else
					notok "overlay-copy-up/$f" "content after copy-up is wrong"
				fi
			else
				notok "overlay-copy-up/$f" "append failed"
			fi
		done
		chmod 0600 "$OVL/modes/m4755" && [ -f "$TMP/ovl/u/modes/m4755" ] &&
			ok "overlay-chmod-copy-up" || notok "overlay-chmod-copy-up" "metadata copy-up failed"
		rm -f "$OVL/dup/b" && [ ! -e "$OVL/dup/b" ] && [ -e "$MNT/dup/b" ] &&
			ok "overlay-whiteout" || notok "overlay-whiteout" "delete through overlay failed"
		umount "$OVL" || notok "overlay-umount" "umount failed"
	else
		notok "overlay-mount" "mount -t overlay failed"
	fi
	umount "$TMP/ovl" 2>/dev/null
	umnt "$MNT"
fi

# --- images on another filesystem (e.g. the initramfs) ---------------------

section "extra root"

if [ -n "$EXTRA" ]; then
	for gen in B A; do
		c="small.$gen"
		o=$(opts "$EXTRA/images/small.$gen" "$(case_field "$c" 4)")
		if run "mount/extra-$c" mount-errno "extra-$c" keep "$FSTYPE" "$MNT" "$o"; then
			run "walk/extra-$c" walk "extra-$c" "$MNT" "$DATA/$(case_field "$c" 6)"
			run "pread/extra-$c" pread "extra-$c" "$MNT" "$DATA/$(case_field "$c" 7)" 2 200
			umnt "$MNT"
		fi
	done
fi

# --- extras (extras-tests.sh): fs-verity, lying compressed chunks, 2 GiB ---

section "extras"

if [ -x "$DATA/extras/extras-tests.sh" ]; then
	PFS_AGENT=$A sh "$DATA/extras/extras-tests.sh" "$DATA" 2>&1 | grep -v '^PFS-TEST-SUMMARY' |
		tee "$TMP/extras.out"
	_p=$(grep -c '^PFS-TEST: ok' "$TMP/extras.out")
	_f=$(grep -c '^PFS-TEST: not ok' "$TMP/extras.out")
	PASS=$((PASS + _p))
	FAIL=$((FAIL + _f))
	[ $((_p + _f)) -gt 0 ] || notok "extras" "extras-tests.sh reported nothing"
else
	note "no extras on $DATA"
fi

# --- hostile images (hostile-tests.sh) --------------------------------------

section "hostile images"

# pfs.hostile=0 on the kernel command line skips them (e.g. the demo kernel's boot)
case " $(cat /proc/cmdline 2>/dev/null) " in
*" pfs.hostile=0 "*) HOSTILE=0 ;;
*) HOSTILE=1 ;;
esac
if [ "$HOSTILE" = 0 ]; then
	note "hostile images skipped (pfs.hostile=0)"
elif [ -f "$DATA/hostile.txt" ] && [ -f "$DATA/hostile-tests.sh" ]; then
	PFS_AGENT=$A PFS_E_COMPRESSED=$E_COMPRESSED sh "$DATA/hostile-tests.sh" "$DATA" 2>&1 |
		tee "$TMP/hostile.out"
	_p=$(grep -c '^PFS-TEST: ok' "$TMP/hostile.out")
	_f=$(grep -c '^PFS-TEST: not ok' "$TMP/hostile.out")
	PASS=$((PASS + _p))
	FAIL=$((FAIL + _f))
	[ $((_p + _f)) -gt 0 ] || notok "hostile" "hostile-tests.sh reported nothing"
else
	note "no hostile images in $DATA"
fi

grep -q " $MNT " /proc/mounts && { notok "cleanup" "$MNT still mounted"; umount "$MNT"; }
rm -rf "$TMP"
section "done"
echo "PFS-TEST-SUMMARY: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
