# SPDX-License-Identifier: GPL-2.0
#
# Tools from the crates registry (bindgen for the kernel's Rust bindings), and the third-party
# crates that the kernel build compiles (capnp, hex).

bindgen_setup() {
	if [ -x "$BINDGEN_K" ] && "$BINDGEN_K" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
		return 0
	fi
	step "cargo install bindgen-cli $BINDGEN_VERSION" "$PZ_LOGS/bindgen.log" \
		cargo install bindgen-cli --version "$BINDGEN_VERSION" --locked --root "$PZ_TOOLS"
}

# crates_fetch: vendor the crates pinned (with checksums) in scripts/puzzlefs/crates/Cargo.lock into
# $PZ_CACHE/crates/<hash of the lock file>/, and print that folder.
crates_dir() {
	printf '%s/crates/%s\n' "$PZ_CACHE" "$(cat "$PZ_REPO/scripts/puzzlefs/crates/Cargo.lock" | sha256sum | cut -c1-16)"
}

crates_fetch() {
	local dir
	dir=$(crates_dir)
	[ -e "$dir/.done" ] && return 0
	rm -rf "$dir"
	# cargo vendor checks every crate against the checksum recorded in the lock file.
	step "fetch capnp and hex (cargo vendor --locked)" "$PZ_LOGS/crates.log" \
		cargo vendor --locked --versioned-dirs \
			--manifest-path "$PZ_REPO/scripts/puzzlefs/crates/Cargo.toml" "$dir"
	touch "$dir/.done"
}
