# SPDX-License-Identifier: GPL-2.0
#
# A Debian root filesystem, the tree a container image usually holds: `debootstrap
# --variant=minbase` of bookworm from the Debian archive, made once and cached in
# $PZ_CACHE/rootfs/. Used by `run demo` (the container step) and meant for `run bench` too, so
# that both work on the same tree.

ROOTFS_SUITE=bookworm
ROOTFS_MIRROR=http://deb.debian.org/debian

# rootfs_debian: make (once) and print the folder of the minbase tree. The folder is only ever
# complete: debootstrap works in a temporary folder that is renamed when it succeeds.
rootfs_debian() {
	local dir=$PZ_CACHE/rootfs/debian-$ROOTFS_SUITE-minbase missing
	if [ -f "$dir/etc/os-release" ] && [ -f "$dir.stamp" ]; then
		printf '%s\n' "$dir"
		return 0
	fi
	missing=$(pkgs_missing debootstrap)
	if [ -n "$missing" ]; then
		apt_configure_suites
		apt_safe_install debootstrap
	fi
	mkdir -p "$PZ_CACHE/rootfs"
	rm -rf "$dir" "$dir.tmp" "$dir.stamp"
	step "debootstrap --variant=minbase $ROOTFS_SUITE" "$PZ_LOGS/rootfs-debootstrap.log" \
		debootstrap --variant=minbase "$ROOTFS_SUITE" "$dir.tmp" "$ROOTFS_MIRROR"
	# Nothing of the host's belongs in the image: the downloaded packages and apt's lists go.
	rm -rf "$dir.tmp/var/cache/apt/archives/"*.deb "$dir.tmp/var/lib/apt/lists/"*_Packages
	mv "$dir.tmp" "$dir"
	printf '%s %s\n' "$ROOTFS_SUITE" "$(date -u +%F)" >"$dir.stamp"
	printf '%s\n' "$dir"
}
