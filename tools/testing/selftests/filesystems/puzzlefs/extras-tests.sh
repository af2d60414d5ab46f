#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# PuzzleFS in-VM tests of the images extras.sh adds to the data disk (busybox
# ash / POSIX sh): compressed chunks that lie, the 2 GiB image, fs-verity.
#
#   extras-tests.sh DATA
#
# DATA is the data disk's mount point (/data); the images are in DATA/extras
# (see extras.sh), the agent is DATA/bin/pfs-check. Run as root after
# vm-tests.sh, by the guest's /init. Output as vm-tests.sh's: one
# "PFS-TEST: ok NAME" or "PFS-TEST: not ok NAME: WHY" per check, "# " details,
# a last line "PFS-TEST-SUMMARY: N passed, M failed" (exit status 1 on any
# failure).
#
# Sections:
#   zstd     compressed chunks of both generations, corrupted with every digest
#            fixed up (zstd_hostile.py): the mount succeeds, the reads of the
#            files using the broken part fail with EIO and a kernel message
#            naming the image, the other files read as in the source tree.
#   big      the image of 2 GiB of unique data (big_image.py), if present:
#            its mount (a manifest of several MiB), statfs and sizes, and
#            ranges of every file compared with the source's sha256.
#   verity   fs-verity (verity_images.py): the data disk is remounted
#            read-write, upstream `puzzlefs enable-fs-verity` (run with the
#            libraries extras.sh copied) and the helper pfs-verity prepare the
#            images, the disk goes back to read-only, then each case mounts
#            with verity=off|on|require and checks mount errnos, walks, EIO
#            reads and the kernel's messages. Last, the raw-disk case: a file
#            is read (the blob is opened and checked), the blob's first block
#            is overwritten on /dev/vda, caches are dropped, and the same read
#            must fail with EIO: never return other bytes.
# The preparation and the raw-disk case change the disk: they run once (a
# second boot on the same disk, e.g. the demo kernel's, finds them done and
# runs the other cases). With "pfs.hostile=0" on the kernel command line the
# walks of whole trees are skipped.

DATA=${1:?usage: extras-tests.sh DATA}
DATA=$(cd "$DATA" && pwd)
X=$DATA/extras
A=${PFS_AGENT:-$DATA/bin/pfs-check}
V=$X/bin/pfs-verity
FSTYPE=puzzlefs
MAGIC=${PFS_MAGIC:-0x7a7a6c70}
MNT=/mnt/pfs-extras
TMP=${TMPDIR:-/tmp}/pfs-extras.$$
mkdir -p "$MNT" "$TMP" || exit 1

TO=
command -v timeout >/dev/null 2>&1 && TO="timeout ${PFS_TIMEOUT:-600}"
LIGHT=
grep -qw 'pfs.hostile=0' /proc/cmdline 2>/dev/null && LIGHT=1

# ok, notok, note, run and the PASS/FAIL counts
. "$(dirname "$0")/vm-lib.sh"

# Seconds since boot with hundredths, for timings.
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
T0=$(now)
section() { echo "# [$(since "$T0") s] extras: $*"; }

# quiet_errno EXPECT FILE: the agent's read check, without its output; true if
# the read ended as EXPECT (ok or an errno name)
quiet_errno() {
	$TO "$A" read-errno q "$1" "$2" </dev/null 2>&1 | grep -q '^PFS-TEST: ok'
}

umnt() {
	umount "$1" 2>/dev/null || { sleep 1; umount "$1" 2>/dev/null; } ||
		notok "umount/$2" "umount $1 failed"
}

# log_has NAME TEXT...: the kernel log since the last "dmesg -c" holds TEXT
log_has() {
	_n=$1
	shift
	dmesg >"$TMP/dmesg" 2>/dev/null
	for _t in "$@"; do
		if ! grep -qF -- "$_t" "$TMP/dmesg"; then
			notok "$_n" "no kernel message with '$_t'"
			sed 's/^/# log: /' "$TMP/dmesg" | tail -n 5
			return 1
		fi
	done
	ok "$_n"
}

# ----------------------------------------------------------------------------
# compressed chunks that lie

zstd_section() {
	cf=$X/zhostile/cases.txt
	if [ ! -f "$cf" ]; then
		notok "zstd/setup" "no $cf"
		return
	fi
	trees=$DATA/$(sed -n 's/^# trees //p' "$cf")
	grep -v '^#' "$cf" >"$TMP/zcases"
	while read -r c gen oci dg eio others; do
		[ -n "$c" ] || continue
		n=zstd/$c
		dmesg -c >/dev/null 2>&1
		run "mount/$n" mount-errno "$n" keep "$FSTYPE" "$MNT" \
			"oci_root_dir=$DATA/$oci,image_manifest=$dg" || continue
		bad=
		eios=0
		for f in $(echo "$eio" | tr ',' ' '); do
			case $f in
			\?*)
				# EIO, or exactly the source's bytes
				f=${f#?}
				if quiet_errno EIO "$MNT$f"; then
					eios=$((eios + 1))
				elif cmp -s "$MNT$f" "$trees$f"; then
					note "$n: $f read as in the source"
				else
					bad="$bad $f(neither EIO nor the source bytes)"
				fi
				;;
			*)
				if quiet_errno EIO "$MNT$f"; then eios=$((eios + 1)); else bad="$bad $f"; fi
				;;
			esac
		done
		if [ -z "$bad" ]; then ok "$n/eio"; else notok "$n/eio" "not EIO:$bad"; fi
		[ $eios -gt 0 ] && log_has "$n/message" "$DATA/$oci" "compressed chunk"
		bad=
		for f in $(echo "$others" | tr ',' ' '); do
			[ "$f" = - ] && continue
			cmp -s "$MNT$f" "$trees$f" || bad="$bad $f"
		done
		if [ -z "$bad" ]; then ok "$n/others"; else notok "$n/others" "differ from the source:$bad"; fi
		umnt "$MNT" "$n"
	done <"$TMP/zcases"
}

# ----------------------------------------------------------------------------
# the 2 GiB image

big_section() {
	b=$X/big
	if [ ! -f "$b/info.txt" ]; then
		note "no big image on the disk (PUZZLEFS_BIG=0?): skipped"
		return
	fi
	dg=$(awk '$1 == "digest" { print $2 }' "$b/info.txt")
	note "big image: $(tr '\n' ' ' <"$b/info.txt")"
	dmesg -c >/dev/null 2>&1
	t=$(now)
	run mount/big mount-errno big keep "$FSTYPE" "$MNT" "oci_root_dir=$b/oci,image_manifest=$dg" ||
		{ dmesg | tail -n 5; return; }
	note "big image: mounted in $(since "$t") s; $(dmesg | grep -i puzzlefs | tail -n 1)"
	run statfs/big statfs big "$MNT" "$MAGIC" "$b/manifest.txt"
	bad=
	grep '^f ' "$b/manifest.txt" >"$TMP/bigfiles"
	while read -r _ p _ _ _ _ size _; do
		got=$(stat -c %s "$MNT$p" 2>&1)
		[ "$got" = "${size#size=}" ] || bad="$bad $p:$got"
	done <"$TMP/bigfiles"
	if [ -z "$bad" ]; then ok big/sizes; else notok big/sizes "sizes differ:$bad"; fi
	t=$(now)
	bad=
	n=0
	grep -v '^#' "$b/samples.txt" >"$TMP/samples"
	while read -r p off len sha; do
		n=$((n + 1))
		got=$(dd if="$MNT$p" bs=65536 iflag=skip_bytes,count_bytes,fullblock \
			skip="$off" count="$len" 2>/dev/null | sha256sum | cut -d' ' -f1)
		[ "$got" = "$sha" ] || bad="$bad $p@$off+$len"
	done <"$TMP/samples"
	if [ -z "$bad" ]; then ok big/samples; else notok big/samples "ranges differ:$bad"; fi
	note "big image: $n ranges read and hashed in $(since "$t") s"
	t=$(now)
	umnt "$MNT" big
	note "big image: unmounted in $(since "$t") s"
}

# ----------------------------------------------------------------------------
# fs-verity

LD=$X/lib/ld-linux-x86-64.so.2
upstream() { # VERSION ARGS...: an upstream puzzlefs CLI, with its own libraries
	_v=$1
	shift
	$TO "$LD" --library-path "$X/lib" "$X/bin/puzzlefs-$_v" "$@"
}

verity_prep() {
	vd=$X/verity
	if [ -e "$vd/.prepared" ]; then
		note "fs-verity images prepared by an earlier boot"
		return 0
	fi
	bs=$(stat -f -c %S "$DATA")
	if [ "$bs" != 4096 ]; then
		notok verity/prep "the data disk has $bs-byte blocks: fs-verity with 4 KiB Merkle tree blocks (upstream's) needs 4 KiB blocks"
		return 1
	fi
	if ! mount -o remount,rw "$DATA"; then
		notok verity/prep "cannot remount $DATA read-write"
		return 1
	fi
	t=$(now)
	i=0
	bad=
	grep -v '^#' "$vd/prep.txt" >"$TMP/prep"
	while read -r what a b c d; do
		i=$((i + 1))
		case $what in
		enable)
			# enable GEN OCI_DIR TAG ROOT_HASH
			if [ "$a" = B ]; then
				upstream 0.2.0 enable-fs-verity "$DATA/$b:$c" "$d" >"$TMP/up" 2>&1
			else
				upstream 0.1.0 enable-fs-verity "$DATA/$b" "$c" "$d" >"$TMP/up" 2>&1
			fi
			;;
		swap)
			# swap OCI_DIR BLOB FILE verity|plain
			mv "$DATA/$c" "$DATA/$a/blobs/sha256/$b" >"$TMP/up" 2>&1 &&
				if [ "$d" = verity ]; then "$V" enable "$DATA/$a/blobs/sha256/$b" >"$TMP/up" 2>&1; fi
			;;
		*) false ;;
		esac
		if [ $? != 0 ]; then
			bad="$bad $i"
			echo "# prep step $i ($what $a $b $c): $(tail -n 3 "$TMP/up" | tr '\n' ' ')"
		fi
	done <"$TMP/prep"
	if [ -z "$bad" ]; then
		ok verity/prep
		touch "$vd/.prepared"
	else
		notok verity/prep "steps failed:$bad"
	fi
	note "fs-verity preparation ($i steps, upstream enable-fs-verity) took $(since "$t") s"
	# the kernel's digest of one blob equals ours (hostile.fsverity)
	set -- $(grep '^enable B ' "$TMP/prep" | head -n 1)
	mdg=$(grep -v '^#' "$vd/cases.txt" | awk -v o="$3" '$3 == o { print $4; exit }')
	got=$("$V" measure "$DATA/$3/blobs/sha256/$mdg" 2>&1)
	[ "$got" = "$5" ] && ok verity/measure ||
		notok verity/measure "the manifest's fs-verity digest is '$got', expected $5"
	sync
	mount -o remount,ro "$DATA" || notok verity/prep-ro "cannot remount $DATA read-only"
	[ -z "$bad" ]
}

# expect_eio NAME LIST: every path of LIST fails its read with EIO
expect_eio() {
	bad=
	n=0
	while read -r p; do
		n=$((n + 1))
		quiet_errno EIO "$MNT$p" || bad="$bad $p"
	done <"$2"
	if [ -z "$bad" ]; then ok "$1"; else notok "$1" "not EIO:$bad"; fi
}

verity_raw() { # CASE GEN OCI DIGEST READS BLOB
	n=verity/$1 gen=$2 oci=$3 dg=$4 reads=$5 blob=$6
	vd=$X/verity
	if [ -e "$vd/.raw-$gen" ]; then
		note "$n: the blob was overwritten by an earlier boot: skipped"
		return
	fi
	blobf=$DATA/$oci/blobs/sha256/$blob
	f=$(head -n 1 "$DATA/$reads")
	src=$DATA/trees/smallfiles$f
	off=$("$V" offset "$blobf" 2>&1 | cut -d' ' -f1)
	case $off in
	'' | *[!0-9]*) notok "$n/offset" "pfs-verity offset: $off"; return ;;
	esac
	if [ $((off % 4096)) != 0 ]; then
		notok "$n/offset" "the blob's data starts at byte $off, not on a 4 KiB block"
		return
	fi
	dmesg -c >/dev/null 2>&1
	run "mount/$n" mount-errno "$n" keep "$FSTYPE" "$MNT" \
		"oci_root_dir=$DATA/$oci,image_manifest=$dg" || return
	if cat "$MNT$f" >"$TMP/before" 2>"$TMP/err" && cmp -s "$TMP/before" "$src"; then
		ok "$n/first-read"
	else
		notok "$n/first-read" "$(cat "$TMP/err") (or different bytes)"
	fi
	# A block of 'Z's over the blob's first 4 KiB, on the device under the mount. The marker
	# that tells a later boot (the demo kernel's, on the same disk) to skip this is written
	# first, with the disk briefly read-write.
	if mount -o remount,rw "$DATA" && touch "$vd/.raw-$gen" && sync &&
		mount -o remount,ro "$DATA"; then
		:
	else
		notok "$n/marker" "cannot write $vd/.raw-$gen"
		umnt "$MNT" "$n"
		return
	fi
	head -c 4096 /dev/zero | tr '\0' 'Z' >"$TMP/pattern"
	if ! dd if="$TMP/pattern" of=/dev/vda bs=4096 seek=$((off / 4096)) count=1 \
		conv=notrunc,fsync 2>"$TMP/err"; then
		notok "$n/overwrite" "dd: $(cat "$TMP/err")"
		umnt "$MNT" "$n"
		return
	fi
	note "$n: overwrote 4096 bytes at byte $off of /dev/vda (blob $blob, read by $f)"
	sync
	echo 3 >/proc/sys/vm/drop_caches
	if cat "$MNT$f" >"$TMP/after" 2>"$TMP/err"; then
		if cmp -s "$TMP/after" "$src"; then
			notok "$n/eio" "the read succeeded with the original bytes (not read from the disk?)"
		else
			notok "$n/eio" "the read succeeded with DIFFERENT bytes"
		fi
	else
		quiet_errno EIO "$MNT$f" && ok "$n/eio" || notok "$n/eio" "the read failed, but not with EIO"
	fi
	# what a failed read gave before its error is a prefix of the true bytes
	len=$(wc -c <"$TMP/after")
	if head -c "$len" "$src" | cmp -s - "$TMP/after"; then
		ok "$n/no-other-bytes"
	else
		notok "$n/no-other-bytes" "the $len bytes read before the error differ from the source"
	fi
	log_has "$n/message" "$DATA/$oci"
	umnt "$MNT" "$n"
}

verity_cases() {
	grep -v '^#' "$X/verity/cases.txt" >"$TMP/vcases"
	# the raw-disk case changes the disk: last
	grep -v ' raw ' "$TMP/vcases" >"$TMP/vcases1"
	grep ' raw ' "$TMP/vcases" >"$TMP/vraw"
	while read -r c gen oci dg opts mexp walk reads blob msg; do
		[ -n "$c" ] || continue
		n=verity/$c
		o="oci_root_dir=$DATA/$oci,image_manifest=$dg"
		[ "$opts" != - ] && o="$o,$opts"
		dmesg -c >/dev/null 2>&1
		if [ "$mexp" != ok ]; then
			run "mount/$n" mount-errno "$n" "$mexp" "$FSTYPE" "$MNT" "$o"
			set --
			[ "$blob" != - ] && set -- "$blob"
			[ "$msg" != - ] && set -- "$@" "$msg"
			[ $# -gt 0 ] && log_has "$n/message" "$@"
			continue
		fi
		run "mount/$n" mount-errno "$n" keep "$FSTYPE" "$MNT" "$o" || continue
		want=on
		case $opts in
		*verity=*)
			want=${opts#*verity=}
			want=${want%%,*}
			;;
		esac
		line=$(grep " $MNT $FSTYPE " /proc/mounts)
		case "$line" in
		*"verity=$want"*) ok "proc-mounts/$n" ;;
		*) notok "proc-mounts/$n" "no verity=$want in '$line'" ;;
		esac
		case $walk in
		-) ;;
		sub:*) run "walk/$n" walk "$n" "$MNT" "$DATA/${walk#sub:}" --skip readdir ;;
		*)
			if [ -n "$LIGHT" ]; then
				note "walk/$n: skipped (pfs.hostile=0)"
			else
				run "walk/$n" walk "$n" "$MNT" "$DATA/$walk"
			fi
			;;
		esac
		if [ "$reads" != - ]; then
			expect_eio "$n/eio" "$DATA/$reads"
			set --
			[ "$blob" != - ] && set -- "$blob"
			[ "$msg" != - ] && set -- "$@" "$msg"
			[ $# -gt 0 ] && log_has "$n/message" "$@"
		fi
		umnt "$MNT" "$n"
	done <"$TMP/vcases1"
	while read -r c gen oci dg opts mexp walk reads blob msg; do
		verity_raw "$c" "$gen" "$oci" "$dg" "$reads" "$blob"
	done <"$TMP/vraw"
}

verity_section() {
	if [ ! -f "$X/verity/cases.txt" ]; then
		notok "verity/setup" "no $X/verity/cases.txt"
		return
	fi
	verity_prep && verity_cases
}

section "start$([ -n "$LIGHT" ] && echo " (light: pfs.hostile=0)")"
zstd_section
section "big image"
big_section
section "fs-verity"
verity_section
grep -q " $MNT " /proc/mounts && { notok "extras/cleanup" "$MNT still mounted"; umount "$MNT"; }
rm -rf "$TMP"
section "done"
echo "PFS-TEST-SUMMARY: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
