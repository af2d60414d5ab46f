#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the PuzzleFS QEMU guests (busybox). The job comes from the kernel command line:
#   pfs.mode=smoke   print a marker and stop (used to probe whether KVM works)
#   pfs.mode=demo    mount the demo image from the data disk and show it
#   pfs.mode=test    run the in-VM tests from the data disk
#   pfs.mode=bench   run the benchmark (/bench/bench.sh on the initramfs) on the data disk
# The guest always ends with "PFS-END" and reboot -f (QEMU runs with -no-reboot).

/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp

mode=smoke
for arg in $(cat /proc/cmdline); do
	case $arg in
	pfs.mode=*) mode=${arg#pfs.mode=} ;;
	esac
done

end() {
	sync
	echo "PFS-END"
	reboot -f
	sleep 10
}

mount_data() {
	# The data disk is the first virtio block device, ext4, mounted read-only by default.
	if [ -b /dev/vda ]; then
		mount -t ext4 -o "${1:-ro}" /dev/vda /data || echo "PFS-INIT: cannot mount /dev/vda"
	else
		echo "PFS-INIT: no data disk"
	fi
}

echo "PFS-INIT: userspace reached, mode $mode"
case $mode in
smoke)
	echo "PFS-SMOKE-OK"
	;;
demo)
	mount_data ro
	if [ -x /data/demo.sh ]; then
		/data/demo.sh /data
	else
		echo "PFS-INIT: no demo script on the data disk"
	fi
	;;
test)
	mount_data ro
	if [ -x /data/vm-tests.sh ]; then
		# The harness also puts the small images on the initramfs (rootfs).
		/data/vm-tests.sh /data /pfs-initramfs
	else
		echo "PFS-INIT: no in-VM tests on the data disk"
	fi
	;;
bench)
	mount_data ro
	if [ -x /bench/bench.sh ]; then
		/bench/bench.sh /data
	else
		echo "PFS-INIT: no bench script on the initramfs"
	fi
	;;
esac
end
