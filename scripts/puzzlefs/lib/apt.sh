# SPDX-License-Identifier: GPL-2.0
#
# Debian packages for the PuzzleFS tool chain.
#
# apt is shared by everything on the machine, so this file is careful: the two extra suites it adds
# are pinned below bookworm, only linux-source-7.3 may come from trixie-backports, only the QEMU
# system emulator set comes from bookworm-backports (to match the installed qemu-utils), and every
# install is simulated first and refused if it would upgrade or remove anything.

APT_SOURCES=/etc/apt/sources.list.d/puzzlefs.sources
APT_PREFS=/etc/apt/preferences.d/puzzlefs.pref
APT_LOCK_OPTS=(-o DPkg::Lock::Timeout=600)

# Packages from bookworm (and bookworm-security for rustc-web).
APT_BASE_PKGS=(
	clang-19 lld-19 llvm-19 libclang-19-dev rustc-web rust-web-src rust-web-clippy
	busybox-static cpio flex bison bc libelf-dev libssl-dev pkg-config
	e2fsprogs attr capnproto ccache xz-utils zstd python3 erofs-utils squashfs-tools
	gcc libc6-dev
)
# Taken from bookworm-backports so that they match qemu-utils 10.0 that the machine ships.
APT_BPO_PKGS=(qemu-system-x86 qemu-system-common qemu-system-data seabios)

apt_sudo() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_configure_suites() {
	local want_src want_pref
	want_src='Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
'
	# Nothing comes from the extra suites unless named here. A negative priority means "never",
	# a priority below 500 means "never as an upgrade" for the one package we take from each.
	want_pref="Package: *
Pin: release n=trixie-backports
Pin-Priority: -10

Package: linux-source-${KERNEL_SERIES}
Pin: release n=trixie-backports
Pin-Priority: 100

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 90
"
	if [ "$(cat "$APT_SOURCES" 2>/dev/null)" != "$want_src" ] ||
	   [ "$(cat "$APT_PREFS" 2>/dev/null)" != "$want_pref" ]; then
		printf '%s' "$want_src" | apt_sudo tee "$APT_SOURCES" >/dev/null
		printf '%s' "$want_pref" | apt_sudo tee "$APT_PREFS" >/dev/null
		rm -f "$PZ_CACHE/stamps/apt-update"
	fi
	if [ ! -e "$PZ_CACHE/stamps/apt-update" ]; then
		apt_sudo apt-get "${APT_LOCK_OPTS[@]}" update -q
		touch "$PZ_CACHE/stamps/apt-update"
	fi
}

# apt_safe_install PKG... : simulate, refuse upgrades/removals, then install.
apt_safe_install() {
	local sim
	sim=$(apt_sudo apt-get "${APT_LOCK_OPTS[@]}" -s -y --no-install-recommends install "$@" 2>&1) || {
		printf '%s\n' "$sim" >&2
		die "apt simulation failed for: $*"
	}
	if printf '%s\n' "$sim" | grep -qE '^(Remv|Inst [^ ]+ \[)'; then
		printf '%s\n' "$sim" | grep -E '^(Remv|Inst [^ ]+ \[)' >&2
		die "refusing: installing $* would upgrade or remove packages above"
	fi
	if printf '%s\n' "$sim" | grep -q '^Inst '; then
		DEBIAN_FRONTEND=noninteractive apt_sudo apt-get "${APT_LOCK_OPTS[@]}" -y -q \
			--no-install-recommends install "$@"
	fi
}

pkgs_missing() {
	local p missing=()
	for p in "$@"; do
		p=${p%%/*}; p=${p%%=*}
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	printf '%s\n' "${missing[@]}"
}

# apt_ensure PKG...: install those of PKG... that are missing (bookworm, pinned as above).
apt_ensure() {
	local missing
	missing=$(pkgs_missing "$@")
	[ -z "$missing" ] && return 0
	apt_configure_suites
	# shellcheck disable=SC2086
	apt_safe_install $missing
}

apt_setup() {
	local missing bpo=() p
	missing=$(pkgs_missing "${APT_BASE_PKGS[@]}" "${APT_BPO_PKGS[@]}" "linux-source-${KERNEL_SERIES}")
	[ -z "$missing" ] && return 0
	apt_configure_suites
	# Only what is missing: naming an installed package would upgrade it.
	missing=$(pkgs_missing "${APT_BASE_PKGS[@]}")
	[ -n "$missing" ] && apt_safe_install $missing
	missing=$(pkgs_missing "${APT_BPO_PKGS[@]}")
	for p in $missing; do bpo+=("$p/bookworm-backports"); done
	[ ${#bpo[@]} -gt 0 ] && apt_safe_install "${bpo[@]}"
	if [ -n "$(pkgs_missing "linux-source-${KERNEL_SERIES}")" ]; then
		apt_safe_install "linux-source-${KERNEL_SERIES}=${KERNEL_PKG_VERSION}"
	fi
	return 0
}
