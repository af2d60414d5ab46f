# SPDX-License-Identifier: GPL-2.0
#
# `run demo`: the seed's demonstration on our kernel. An example tree (two directories with
# extended attributes and a text file) becomes an image through the upstream `puzzlefs build`;
# the image goes on an ext4 disk; the demo kernel boots, mounts it and shows it.

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

cmd_demo() {
	local work=$PZ_CACHE/demo staging digest
	cmd_setup
	kernel_build demo
	rm -rf "$work"
	mkdir -p "$work/staging"
	demo_tree "$work/tree"
	step "puzzlefs build (upstream $PUZZLEFS_NEW_VERSION)" "$PZ_LOGS/demo-image.log" \
		"$PUZZLEFS_NEW" build "$work/tree" "$work/staging/image:demo"
	# With an OCI image layout (Generation B), image_manifest= is the image manifest's digest.
	digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' \
		"$work/staging/image/index.json")
	install -m 0755 "$PZ_REPO/scripts/puzzlefs/guest/demo.sh" "$work/staging/demo.sh"
	gcc -static -O2 -o "$work/staging/getfattr" "$PZ_REPO/scripts/puzzlefs/guest/getfattr.c" ||
		die "cannot build the guest's getfattr"
	echo "$digest" >"$work/staging/digest"
	mkfs.ext4 -q -F -L pfsdemo -d "$work/staging" "$work/disk.img" 64M >/dev/null
	vm_initramfs "$work/initramfs.cpio.gz" "$PZ_REPO/scripts/puzzlefs/init.sh"
	vm_run "$KIMAGE" "$work/initramfs.cpio.gz" "pfs.mode=demo" "$work/console.log" 300 "$work/disk.img"
	# Show the guest's session, without the boot messages before userspace.
	sed -n '/PFS-INIT: userspace/,$p' "$work/console.log" | grep -v '^PFS-INIT' | sed '/^PFS-END/q'
	grep -q '^PFS-END' "$work/console.log" || die "the guest did not finish; console log: $work/console.log"
	log "demo done; console log: $work/console.log"
}
