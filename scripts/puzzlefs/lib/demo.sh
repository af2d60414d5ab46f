# SPDX-License-Identifier: GPL-2.0
#
# `run demo`: the seed's demonstration on our kernel, then what a container runtime does.
#
#   1. An example tree (two directories with extended attributes and a text file) becomes an
#      image through the upstream `puzzlefs build`; the demo kernel mounts it and shows it.
#   2. A Debian bookworm minbase root filesystem (debootstrap, cached; lib/rootfs.sh) becomes an
#      image the same way; the guest mounts it read-only, puts an overlayfs with a tmpfs upper
#      layer on top, and runs commands inside with chroot: a container's root filesystem.
#      PUZZLEFS_DEMO_CONTAINER=0 skips this step.
#
# Both images go on one ext4 disk; one boot of the demo kernel shows both.

demo_tree() {
	local t=$1
	rm -rf "$t"
	mkdir -p "$t/test" "$t/test-2"
	printf 'The quick brown fox\n' >"$t/test.txt"
	setfattr -n user.comment -v "this is a dir" "$t/test"
	setfattr -n user.groceries -v "want to buy a file" "$t/test"
	setfattr -n user.whatever -v "want to buy a file" "$t/test-2"
	ln -s test.txt "$t/link-to-test.txt"
}

# The digest of the first image manifest of an OCI layout (Generation B): image_manifest=.
demo_manifest_digest() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' \
		"$1/index.json"
}

# demo_staging WORK: the small example image, the guest's demo script and getfattr in
# WORK/staging (the content of the demo disk).
demo_staging() {
	local work=$1
	rm -rf "$work/staging" "$work/tree"
	mkdir -p "$work/staging"
	demo_tree "$work/tree"
	step "puzzlefs build (upstream $PUZZLEFS_NEW_VERSION)" "$PZ_LOGS/demo-image.log" \
		"$PUZZLEFS_NEW" build "$work/tree" "$work/staging/image:demo"
	demo_manifest_digest "$work/staging/image" >"$work/staging/digest"
	install -m 0755 "$PZ_REPO/scripts/puzzlefs/guest/demo.sh" "$work/staging/demo.sh"
	gcc -static -O2 -o "$work/staging/getfattr" "$PZ_REPO/scripts/puzzlefs/guest/getfattr.c" ||
		die "cannot build the guest's getfattr"
}

# demo_container_image STAGING: the Debian root filesystem as a PuzzleFS image in
# STAGING/debian, built once per tree and builder version.
demo_container_image() {
	local staging=$1 rootfs img key
	rootfs=$(rootfs_debian)
	img=$PZ_CACHE/demo-images/debian
	key="$(cat "$rootfs.stamp") puzzlefs $PUZZLEFS_NEW_VERSION"
	if [ "$(cat "$img.stamp" 2>/dev/null)" != "$key" ]; then
		rm -rf "$img" "$img.tmp" "$img.stamp"
		mkdir -p "$(dirname "$img")"
		step "puzzlefs build of the Debian root filesystem ($(du -sh "$rootfs" | cut -f1))" \
			"$PZ_LOGS/demo-container-image.log" \
			"$PUZZLEFS_NEW" build "$rootfs" "$img.tmp:bookworm"
		mv "$img.tmp" "$img"
		echo "$key" >"$img.stamp"
	fi
	cp -a "$img" "$staging/debian"
	demo_manifest_digest "$staging/debian" >"$staging/debian.digest"
	log "container image: $(find "$staging/debian/blobs" -type f | wc -l) blobs, $(du -sh "$staging/debian" | cut -f1) (tree: $(du -sh "$rootfs" | cut -f1))"
}

# demo_disk STAGING DISK: an ext4 disk with STAGING's content and room to spare.
demo_disk() {
	local staging=$1 disk=$2 size_mb
	size_mb=$(( $(du -sm "$staging" | cut -f1) * 5 / 4 + 64 ))
	rm -f "$disk"
	mkfs.ext4 -q -F -L pfsdemo -d "$staging" "$disk" "${size_mb}M" >/dev/null
}

# demo_machine_boot MACHINE KERNEL INITRD DISK LOG: boot QEMU's MACHINE (pc, q35) the way a user
# would, with the disk as `-drive if=virtio` (virtio-pci); the guest runs the demo.
demo_machine_boot() {
	local machine=$1 kernel=$2 initrd=$3 disk=$4 logf=$5 accel
	accel=$(vm_accel "$kernel" "$initrd")
	set +e
	timeout --foreground -k 5 "${PUZZLEFS_VM_TIMEOUT_MACHINE:-300}" qemu-system-x86_64 -M "$machine" \
		-accel "$accel" -m 512 -nographic -no-reboot -kernel "$kernel" -initrd "$initrd" \
		-drive "file=$disk,format=raw,if=virtio" \
		-append "console=ttyS0 panic=-1 pfs.mode=demo" </dev/null >"$logf" 2>&1
	set -e
	tr -d '\r' <"$logf" >"$logf.tmp" && mv "$logf.tmp" "$logf"
}

# t_machines: `run test`'s check that the demo kernel sees a virtio-pci disk on QEMU's pc and q35
# machines and mounts an image from it (after `kernel_build demo`).
t_machines() {
	local work=$PZ_CACHE/test/machines m logf
	mkdir -p "$work"
	demo_staging "$work"
	demo_disk "$work/staging" "$work/disk.img"
	vm_initramfs "$work/initramfs.cpio.gz" "$PZ_REPO/scripts/puzzlefs/init.sh"
	for m in pc q35; do
		logf=$work/console-$m.log
		demo_machine_boot "$m" "$KIMAGE" "$work/initramfs.cpio.gz" "$work/disk.img" "$logf"
		if grep -q '^The quick brown fox' "$logf" && grep -q '^PFS-END' "$logf" &&
			! grep -qE "$T_BAD_PATTERNS" "$logf"; then
			t_result "demo kernel on QEMU -M $m: virtio-pci disk, image mounted" 1 0
		else
			tail -n 20 "$logf" >&2
			t_result "demo kernel on QEMU -M $m: virtio-pci disk, image mounted (log $logf)" 0 1
		fi
	done
}

cmd_demo() {
	local work=$PZ_CACHE/demo
	cmd_setup
	kernel_build demo
	rm -rf "$work"
	mkdir -p "$work"
	demo_staging "$work"
	[ "${PUZZLEFS_DEMO_CONTAINER:-1}" = 0 ] || demo_container_image "$work/staging"
	demo_disk "$work/staging" "$work/disk.img"
	vm_initramfs "$work/initramfs.cpio.gz" "$PZ_REPO/scripts/puzzlefs/init.sh"
	vm_run "$KIMAGE" "$work/initramfs.cpio.gz" "pfs.mode=demo" "$work/console.log" 600 "$work/disk.img"
	# Show the guest's session, without the boot messages before userspace.
	sed -n '/PFS-INIT: userspace/,$p' "$work/console.log" | grep -v '^PFS-INIT' | sed '/^PFS-END/q'
	grep -q '^PFS-END' "$work/console.log" || die "the guest did not finish; console log: $work/console.log"
	if [ "${PUZZLEFS_DEMO_CONTAINER:-1}" != 0 ] && ! grep -q '^PFS-DEMO: container ok' "$work/console.log"; then
		die "the container step failed; console log: $work/console.log"
	fi
	log "demo done; console log: $work/console.log"
}
