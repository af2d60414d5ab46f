#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of `scripts/puzzlefs/run bench` (busybox ash), started by /init in
# pfs.mode=bench with the data disk on DATA:
#
#   bench.sh DATA
#
# DATA/cases.txt names one filesystem of one tree per line ("TREE FS SPEC [UNSUPPORTED]"):
#   sys:FSTYPE:SOURCE[:DATA]   mount(2); a SOURCE of loop=IMAGE is attached to a loop device
#                              first (read-only, outside the timing)
#   dir=PATH                   the extracted tree on the ext4 disk itself
#   tmpfs=PATH                 PATH copied (busybox tar) to a tmpfs first, outside the timing
#   fuse=OCI_DIR:TAG           upstream `puzzlefs mount -f` from DATA/fuse (its dynamic loader
#                              and libraries are there: the initramfs is busybox only)
# UNSUPPORTED is an errno name: when the byte check fails with it, the filesystem is reported
# unsupported and skipped instead of failed. A puzzlefs SPEC with verity=require gets fs-verity
# turned on for every blob of its oci_root_dir first (pfs-bench enable-verity, the data disk
# remounted read-write for it, outside the timing; a second boot finds it done).
#
# Repetitions come from the kernel command line (pfs.reps=N, default 1); pfs.only=FS,FS...
# keeps only the cases of those filesystems. Repetition 0 is the
# byte check of every filesystem; then each repetition runs every filesystem of the tree once,
# interleaved, so that a slow phase of the host spreads over all of them. The timed work is
# done by pfs-bench, which prints the "PFS-BENCH {json}" lines the host collects. The run ends
# with "PFS-BENCH-DONE".

data=$1
here=$(dirname "$0")
helper=$here/pfs-bench
reps=1
only=""
for arg in $(cat /proc/cmdline); do
	case $arg in
	pfs.reps=*) reps=${arg#pfs.reps=} ;;
	pfs.only=*) only=,${arg#pfs.only=}, ;;
	esac
done

say() { echo "PFS-BENCH-LOG $*"; }
now() { cut -d' ' -f1 /proc/uptime; }

cases=$data/cases.txt
if [ ! -f "$cases" ] || [ ! -x "$helper" ]; then
	say "no $cases or no $helper"
	echo "PFS-BENCH-DONE"
	exit 1
fi
mkdir -p /mnt/bench /bench-tmp
say "start at $(now) s, $reps repetitions, $(grep -c . "$cases") cases," \
	"$(grep MemTotal /proc/meminfo | tr -s ' ')"
# Times are only as fine as the clocksource: jiffies would make them 4 ms coarse.
echo "PFS-BENCH-CLOCKSOURCE $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"

# The state of each case: "" (to measure), skip (unsupported or failed).
state_file=/tmp/bench-state
: >"$state_file"
skipped() { grep -qx "$1" "$state_file"; }

trees=$(cut -d' ' -f1 "$cases" | awk '!seen[$0]++')
for tree in $trees; do
	say "tree $tree at $(now) s"
	loops=""
	tmpfs_on=""
	n=0
	# Per-tree setup: loop devices and the tmpfs copy.
	grep "^$tree " "$cases" >/tmp/bench-tree-cases
	: >/tmp/bench-tree-specs
	while read -r t fs spec unsup; do
		case $only in
		"" | *",$fs,"*) ;;
		*) continue ;;
		esac
		case $spec in
		sys:*:loop=*)
			img=${spec#*:loop=}
			img=${img%%:*}
			dev=/dev/loop$n
			n=$((n + 1))
			[ -b "$dev" ] || mknod "$dev" b 7 $((n - 1))
			if ! losetup -r "$dev" "$img"; then
				say "$tree $fs: losetup $dev $img failed"
			fi
			loops="$loops $dev"
			spec=$(echo "$spec" | sed "s#loop=$img#$dev#")
			;;
		sys:puzzlefs:*verity=require*)
			oci=$(echo "$spec" | sed -n 's/.*oci_root_dir=\([^,]*\).*/\1/p')
			t0=$(now)
			mount -o remount,rw "$data" &&
				say "$tree $fs: $("$helper" enable-verity "$oci/blobs/sha256" 2>&1)" \
					"in $(awk "BEGIN{print $(now) - $t0}") s"
			mount -o remount,ro "$data" || say "$tree $fs: cannot remount $data read-only"
			;;
		tmpfs=*)
			src=${spec#tmpfs=}
			if [ -z "$tmpfs_on" ]; then
				mount -t tmpfs -o size=75% bench-tmp /bench-tmp
				tmpfs_on=yes
			fi
			t0=$(now)
			mkdir -p "/bench-tmp/$tree"
			(cd "$src" && tar cf - .) | (cd "/bench-tmp/$tree" && tar xf -) ||
				say "$tree $fs: copy to tmpfs failed"
			say "$tree $fs: copied to tmpfs in $(awk "BEGIN{print $(now) - $t0}") s"
			spec=dir=/bench-tmp/$tree
			;;
		esac
		echo "$t $fs $spec $unsup" >>/tmp/bench-tree-specs
	done </tmp/bench-tree-cases

	rep=0
	while [ "$rep" -le "$reps" ]; do
		while read -r t fs spec unsup; do
			skipped "$tree $fs" && continue
			mnt=/mnt/bench
			set -- --tree "$tree" --fs "$fs" --rep "$rep" --lists "$data/lists/$tree"
			[ -n "$unsup" ] && set -- "$@" --unsupported "$unsup"
			case $spec in
			dir=*)
				set -- "$@" --mnt "${spec#dir=}" --mount dir ;;
			fuse=*)
				set -- "$@" --mnt "$mnt" --mount fuse -- \
					"$data/fuse/lib/ld-linux-x86-64.so.2" --library-path "$data/fuse/lib" \
					"$data/fuse/bin/puzzlefs" mount -f -i "{fifo}" "${spec#fuse=}" "{mnt}" ;;
			*)
				set -- "$@" --mnt "$mnt" --mount "$spec" ;;
			esac
			"$helper" run "$@" </dev/null
			rc=$?
			if [ "$rc" -ne 0 ]; then
				echo "$tree $fs" >>"$state_file"
				[ "$rc" -eq 3 ] && say "$tree $fs: unsupported, skipped" ||
					say "$tree $fs: failed (exit $rc), skipped from now on"
			fi
		done </tmp/bench-tree-specs
		say "$tree: repetition $rep done at $(now) s"
		rep=$((rep + 1))
	done

	for dev in $loops; do losetup -d "$dev"; done
	if [ -n "$tmpfs_on" ]; then
		umount /bench-tmp
	fi
done
# The driver's own split of its last mounts (read and hash the metadata, compile it), which
# loglevel=5 keeps off the console during the timing.
dmesg | grep 'puzzlefs.*opened image' | tail -n 24 | while read -r line; do say "$line"; done
say "end at $(now) s"
echo "PFS-BENCH-DONE"
