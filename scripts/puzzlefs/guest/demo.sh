#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the demo guest (busybox), from the data disk: mount the demo image and show it.
data=$1
digest=$(cat "$data/digest")
run() { echo "~ # $*"; "$@"; }

echo "~ # grep puzzlefs /proc/filesystems"
grep puzzlefs /proc/filesystems || echo "(puzzlefs is not registered in this kernel)"
mkdir -p /mnt
run mount -t puzzlefs -o "oci_root_dir=$data/image,image_manifest=$digest" none /mnt
if ! grep -q ' /mnt puzzlefs ' /proc/mounts; then
	echo "The puzzlefs driver could not mount the image yet (see the message above)."
	dmesg | grep -i puzzlefs | tail -5
	exit 0
fi
dmesg | grep -i puzzlefs | tail -2
cd /mnt || exit 0
run ls -la
run cat test.txt
run readlink link-to-test.txt
run "$data/getfattr" test test-2
run df /mnt
run stat -f /mnt
cd /
run umount /mnt
