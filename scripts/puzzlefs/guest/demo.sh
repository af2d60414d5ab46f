#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the demo guest (busybox), from the data disk: mount the demo image and show it; then,
# if the disk has one, use a Debian image the way a container runtime does.
data=$1
run() { echo "~ # $*"; "$@"; }
# in_root CMD: CMD run by the container's own shell, chrooted into its root filesystem.
in_root() { echo "~ # chroot $root /bin/sh -c '$1'"; chroot "$root" /bin/sh -c "$1"; }

demo_image() {
	digest=$(cat "$data/digest")
	echo "~ # grep puzzlefs /proc/filesystems"
	grep puzzlefs /proc/filesystems || echo "(puzzlefs is not registered in this kernel)"
	mkdir -p /mnt
	run mount -t puzzlefs -o "oci_root_dir=$data/image,image_manifest=$digest" none /mnt
	if ! grep -q ' /mnt puzzlefs ' /proc/mounts; then
		echo "The puzzlefs driver could not mount the image yet (see the message above)."
		dmesg | grep -i puzzlefs | tail -5
		return
	fi
	dmesg | grep -i puzzlefs | tail -2
	cd /mnt || return
	run ls -la
	run cat test.txt
	run readlink link-to-test.txt
	run "$data/getfattr" test test-2
	run df /mnt
	run stat -f /mnt
	cd /
	run umount /mnt
}

# A container: the image is the read-only lower layer, a tmpfs holds the writable upper layer,
# overlayfs merges them into the root filesystem, and the commands run chrooted into it.
demo_container() {
	lower=/run/ctr/lower upper=/run/ctr/rw root=/run/ctr/root
	echo
	echo "--- a container on a PuzzleFS image of Debian bookworm (minbase) ---"
	mkdir -p /run/ctr
	run mount -t tmpfs -o size=64m ctr-rw /run/ctr
	mkdir -p "$lower" "$upper/upper" "$upper/work" "$root"
	run mount -t puzzlefs -o "oci_root_dir=$data/debian,image_manifest=$(cat "$data/debian.digest")" none "$lower" ||
		return
	run mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper/upper,workdir=$upper/work" "$root" ||
		return
	run mount -t proc proc "$root/proc"
	run mount -o bind /dev "$root/dev"
	run chroot "$root" /bin/cat /etc/os-release
	in_root 'dpkg -l | wc -l'
	in_root 'dpkg -l | grep -E "^ii +(bash|coreutils|dpkg|libc6:amd64) "'
	in_root 'echo "written in the container" > /root/hello.txt && ls -l /root/hello.txt'
	echo "# the write landed in the tmpfs upper layer; the image's /root is unchanged:"
	run ls -l "$upper/upper/root/"
	run cat "$upper/upper/root/hello.txt"
	run ls -la "$lower/root/"
	ok=1
	[ "$(cat "$upper/upper/root/hello.txt" 2>/dev/null)" = "written in the container" ] || ok=0
	[ -e "$lower/root/hello.txt" ] && ok=0
	chroot "$root" /bin/cat /etc/os-release | grep -q '^VERSION_CODENAME=bookworm' || ok=0
	run umount "$root/dev"
	run umount "$root/proc"
	run umount "$root"
	run umount "$lower"
	run umount /run/ctr
	[ "$ok" = 1 ] && echo "PFS-DEMO: container ok"
}

demo_image
[ -f "$data/debian.digest" ] && demo_container
exit 0
