# SPDX-License-Identifier: GPL-2.0
#
# The kernel tree: pristine Linux source from Debian's linux-source package, our patches, the
# pinned crates and the repository's overlay files; configured from our fragments; built with
# clang/LLVM 19 and Debian's rustc-web.
#
# Cache layout (outside the repository):
#   $PZ_CACHE/src/linux-source-X.Y            pristine source, unpacked once per package version
#   $PZ_CACHE/tree/<key>/linux                patched source + crates + overlay, synced file by
#                                             file when the content differs, so mtimes of
#                                             unchanged files stay and rebuilds are incremental
#   $PZ_CACHE/tree/<key>/out-<flavor>         build output (O=), one per kernel flavour
# where <key> names the pristine source (package version, or PUZZLEFS_KSRC).

# Folders of the repository that mirror the kernel tree.
OVERLAY_DIRS=(arch fs rust kernel Documentation include)

kernel_pristine() {
	local src=$PZ_CACHE/src/linux-source-$KERNEL_SERIES
	# Another Linux 7.3 source tree (e.g. a git checkout) instead of Debian's package.
	if [ -n "${PUZZLEFS_KSRC:-}" ]; then
		[ -f "$PUZZLEFS_KSRC/Makefile" ] || die "PUZZLEFS_KSRC=$PUZZLEFS_KSRC is not a kernel tree"
		(cd "$PUZZLEFS_KSRC" && pwd)
		return
	fi
	if [ "$(cat "$src/.pkg-version" 2>/dev/null)" != "$KERNEL_PKG_VERSION" ]; then
		local have
		have=$(dpkg-query -W -f='${Version}' "linux-source-$KERNEL_SERIES" 2>/dev/null || true)
		[ "$have" = "$KERNEL_PKG_VERSION" ] ||
			die "linux-source-$KERNEL_SERIES $KERNEL_PKG_VERSION is not installed (have '$have'): run 'scripts/puzzlefs/run setup'"
		rm -rf "$src" "$src.tmp"
		mkdir -p "$src.tmp"
		step "unpack linux-source-$KERNEL_SERIES" "$PZ_LOGS/unpack.log" \
			tar -C "$src.tmp" -xf "/usr/src/linux-source-$KERNEL_SERIES.tar.xz"
		mv "$src.tmp/linux-source-$KERNEL_SERIES" "$src"
		rmdir "$src.tmp"
		echo "$KERNEL_PKG_VERSION" >"$src/.pkg-version"
	fi
	printf '%s\n' "$src"
}

# One tree per pristine source. Patches, crates and overlay files are synced into it file by file
# (see tree_sync_files), so a change to the series rebuilds only what it touches.
tree_key() {
	printf '%s %s\n' "$KERNEL_PKG_VERSION" "${PUZZLEFS_KSRC:-}" | sha256sum | cut -c1-16
}

# install_if_changed SRC DST: copy only when the content differs, so make sees no change otherwise.
install_if_changed() {
	if ! cmp -s "$1" "$2"; then
		mkdir -p "$(dirname "$2")"
		cp "$1" "$2"
	fi
}

# tree_sync_files TREE LISTNAME STAGED: make TREE hold the files under the folder STAGED (paths
# relative to it); files that an earlier sync installed but STAGED no longer has go back to their
# pristine content (or away). TREE/.pz-LISTNAME keeps what was installed.
tree_sync_files() {
	local tree=$1 list=$1/.pz-$2 staged=$3 new f
	new=$(cd "$staged" && find . -type f | sed 's#^\./##' | LC_ALL=C sort)
	if [ -f "$list" ]; then
		comm -23 "$list" <(printf '%s\n' "$new") | while read -r f; do
			[ -n "$f" ] || continue
			if [ -f "$KSRC_PRISTINE/$f" ]; then install_if_changed "$KSRC_PRISTINE/$f" "$tree/$f"; else rm -f "$tree/$f"; fi
		done
	fi
	printf '%s\n' "$new" | while read -r f; do
		[ -n "$f" ] && install_if_changed "$staged/$f" "$tree/$f"
	done
	printf '%s\n' "$new" >"$list"
}

# The files our patches change, patched, in a staging folder.
tree_stage_patches() {
	local staged=$1 p f
	[ -f "$PZ_REPO/patches/series" ] || return 0
	for p in $(grep -v '^#' "$PZ_REPO/patches/series"); do
		[ -f "$PZ_REPO/patches/$p" ] || die "patches/series names a missing patch: $p"
		for f in $(sed -n 's#^+++ b/\([^[:space:]]*\).*#\1#p' "$PZ_REPO/patches/$p"); do
			if [ ! -e "$staged/$f" ] && [ -f "$KSRC_PRISTINE/$f" ]; then
				mkdir -p "$(dirname "$staged/$f")"
				cp "$KSRC_PRISTINE/$f" "$staged/$f"
			fi
		done
		patch -d "$staged" -p1 --no-backup-if-mismatch -s <"$PZ_REPO/patches/$p" ||
			die "patch $p does not apply to Linux $KERNEL_SERIES"
	done
}

# The third-party crates, laid out as rust/zerocopy is (rust/<crate>/src/lib.rs), with our patch.
tree_stage_crates() {
	local staged=$1 crates p
	crates=$(crates_dir)
	for p in capnp hex; do
		mkdir -p "$staged/rust/$p"
		cp -a "$crates/$p-"*/. "$staged/rust/$p/"
		rm -f "$staged/rust/$p/.cargo-checksum.json" "$staged/rust/$p/.cargo_vcs_info.json"
	done
	patch -d "$staged/rust/capnp" -p1 --no-backup-if-mismatch -s \
		<"$PZ_REPO/scripts/puzzlefs/crates/capnp-no-float-format.patch" ||
		die "the capnp patch does not apply"
}

# The repository's files that mirror the kernel tree.
tree_stage_overlay() {
	local staged=$1 d
	for d in "${OVERLAY_DIRS[@]}"; do
		[ -d "$PZ_REPO/$d" ] || continue
		(cd "$PZ_REPO" && find "$d" -type f ! -path '*/target/*' -print0 |
			xargs -0 -r cp --parents -t "$staged")
	done
}

kernel_tree() {
	local base tree staged
	KSRC_PRISTINE=$(kernel_pristine)
	crates_fetch
	base=$PZ_CACHE/tree/$(tree_key)
	# Kbuild records absolute paths: always build through the real path.
	[ -e "$base" ] && base=$(readlink -f "$base")
	tree=$base/linux
	if [ ! -e "$base/.ready" ]; then
		rm -rf "$base"
		mkdir -p "$base"
		log "copy the pristine kernel source to $tree"
		cp -a "$KSRC_PRISTINE" "$tree"
		touch "$base/.ready"
	fi
	staged=$(mktemp -d)
	mkdir -p "$staged/patches" "$staged/crates" "$staged/overlay"
	tree_stage_patches "$staged/patches"
	tree_stage_crates "$staged/crates"
	tree_stage_overlay "$staged/overlay"
	tree_sync_files "$tree" patches "$staged/patches"
	tree_sync_files "$tree" crates "$staged/crates"
	tree_sync_files "$tree" overlay "$staged/overlay"
	rm -rf "$staged"
	KTREE=$tree
	KBASE=$base
}

# Fragments per flavour: "demo" is the kernel users boot, with the filesystems `run bench`
# compares with (so that the benchmark measures the kernel users run, and needs no build of its
# own); "test" adds the debug checks.
kernel_fragments() {
	local f=(arch/x86/configs/qemu-busybox-min.config kernel/configs/puzzlefs.config)
	[ "$1" = test ] && f+=(kernel/configs/puzzlefs-test.config)
	[ "$1" = demo ] && f+=(kernel/configs/puzzlefs-bench.config)
	printf '%s\n' "${f[@]}"
}

# kernel_config_ok FLAVOR OUT: every line of the flavour's fragments is in OUT/.config. Kconfig
# silently drops what it cannot satisfy (a wrong rustc drops CONFIG_RUST), and any make in the
# build folder may rewrite .config (syncconfig), so this is checked before and after each build.
kernel_config_ok() {
	local flavor=$1 out=$2 frags=() f line sym
	mapfile -t frags < <(kernel_fragments "$flavor")
	[ -f "$out/.config" ] || return 1
	for f in "${frags[@]}"; do
		while read -r line; do
			case $line in
			CONFIG_*=n) sym=${line%%=*}
				! grep -qE "^$sym=[ym]" "$out/.config" || { log "$f: $line is not in $out/.config"; return 1; } ;;
			CONFIG_*) grep -qx "$line" "$out/.config" || { log "$f: $line is not in $out/.config"; return 1; } ;;
			esac
		done <"$PZ_REPO/$f"
	done
}

kernel_config() {
	local flavor=$1 out=$2 frags=() f hash
	mapfile -t frags < <(kernel_fragments "$flavor")
	hash=$(cd "$PZ_REPO" && cat "${frags[@]}" | sha256sum | cut -c1-16)
	if [ "$(cat "$out/.pz-config" 2>/dev/null)" = "$hash" ]; then
		kernel_config_ok "$flavor" "$out" && return 0
		log "the $flavor kernel's .config lost fragment options: configuring it again"
	fi
	mkdir -p "$out"
	(
		cd "$KTREE"
		"${KMAKE[@]}" O="$out" tinyconfig
		KCONFIG_CONFIG=$out/.config scripts/kconfig/merge_config.sh -m -O "$out" "$out/.config" \
			$(for f in "${frags[@]}"; do echo "$PZ_REPO/$f"; done)
		"${KMAKE[@]}" O="$out" olddefconfig
	) >"$PZ_LOGS/config-$flavor.log" 2>&1 || { tail -20 "$PZ_LOGS/config-$flavor.log"; die "kernel configuration failed"; }
	kernel_config_ok "$flavor" "$out" ||
		die "the $flavor kernel's fragments did not survive olddefconfig (see $PZ_LOGS/config-$flavor.log)"
	echo "$hash" >"$out/.pz-config"
}

# kernel_build FLAVOR: build bzImage; sets KIMAGE and KOUT.
kernel_build() {
	local flavor=$1
	kmake_vars
	kernel_tree
	KOUT=$KBASE/out-$flavor
	kernel_config "$flavor" "$KOUT"
	step "build the $flavor kernel (make -j2 bzImage)" "$PZ_LOGS/build-$flavor.log" \
		"${KMAKE[@]}" -C "$KTREE" O="$KOUT" -j"${PUZZLEFS_JOBS:-2}" bzImage
	kernel_config_ok "$flavor" "$KOUT" || die "the $flavor kernel's .config changed during its build"
	KIMAGE=$KOUT/arch/x86/boot/bzImage
	# Once per set of bindings (about 20 s).
	local bh
	bh=$(cat "$KOUT/rust/bindings/bindings_generated.rs" "$KOUT/rust/.bindings.o.cmd" | sha256sum | cut -c1-16)
	if [ "$(cat "$KOUT/.pz-layout-ok" 2>/dev/null)" != "$bh" ]; then
		kernel_layout_guard "$KOUT"
		echo "$bh" >"$KOUT/.pz-layout-ok"
	fi
	[ -f "$KIMAGE" ] || die "no bzImage at $KIMAGE"
}

# kernel_layout_guard OUT: bindgen generates the kernel's bindings without layout tests. Generate
# them once more, with the same command but with layout tests, and compile them with the same
# rustc command as rust/bindings.o: any struct whose Rust layout differs from C's (like the
# alignment of an empty struct that bindgen drops) fails the build here instead of corrupting
# memory at run time.
kernel_layout_guard() {
	local out=$1 tmp gen rustc
	tmp=$(mktemp -d)
	mkdir -p "$tmp/rust/bindings"
	cp "$out/rust/bindings/bindings_helpers_generated.rs" "$tmp/rust/bindings/"
	gen=$(sed -n '1s/^savedcmd_[^ ]* := //p' "$out/rust/bindings/.bindings_generated.rs.cmd")
	gen=${gen//'$(pound)'/'#'}
	gen=${gen//' --no-layout-tests'/}
	gen=${gen//' rust/bindings/bindings_generated.rs'/" $tmp/rust/bindings/bindings_generated.rs"}
	gen=${gen//'-Wp,-MMD,rust/bindings/.bindings_generated.rs.d'/"-Wp,-MMD,$tmp/bindings.d"}
	rustc=$(sed -n '1s/^savedcmd_[^ ]* := //p' "$out/rust/.bindings.o.cmd")
	rustc=${rustc//"OBJTREE=$out "/"OBJTREE=$tmp "}
	rustc=${rustc//' --emit=dep-info=rust/.bindings.o.d'/}
	rustc=${rustc//' --emit=obj=rust/bindings.o'/}
	rustc=${rustc//'--emit=metadata=rust/libbindings.rmeta'/"--emit=metadata=$tmp/libbindings.rmeta"}
	[ -n "$gen" ] && [ -n "$rustc" ] || die "layout guard: no bindgen or rustc command in $out/rust"
	if ! (cd "$out" && export RUSTC_BOOTSTRAP=1 && eval "$gen" && eval "$rustc") >"$PZ_LOGS/layout-guard.log" 2>&1; then
		grep -E 'error|Size of|Alignment of|Offset of' "$PZ_LOGS/layout-guard.log" | head -n 20 >&2
		rm -rf "$tmp"
		die "bindgen layout tests failed: Rust and C disagree on a struct layout (log: $PZ_LOGS/layout-guard.log)"
	fi
	rm -rf "$tmp"
	log "bindgen layout tests pass"
}
