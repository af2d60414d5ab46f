# SPDX-License-Identifier: GPL-2.0
#
# Warnings fail `run test`. The test kernel is built with CONFIG_WERROR=y
# (kernel/configs/puzzlefs-test.config: -Werror for C, -Dwarnings for Rust), and after it is
# built:
#
#   - rustfmt: our Rust files, kernel and host side (not the fetched crates, which follow their
#     upstream's style, nor the generated capnp readers) against the tree's .rustfmt.toml, with
#     Debian's rustfmt-web, the rustfmt of the rustc that builds the kernel;
#   - make rustdoc, and make CLIPPY=1 of fs/puzzlefs/ and the crates it needs (rust/), in a copy
#     of the test kernel's build folder whose objects of our code are deleted first, so that a
#     warm tree cannot hide a warning and the test kernel's own objects are not rebuilt; with
#     -Dwarnings any diagnostic fails, and the ones in our files are shown.
#
# checkpatch runs in `run series` (lib/series.sh), which `run test` runs too.

WARN_PKGS=(rustfmt-web)
RUSTFMT_K=/usr/bin/rustfmt

warnings_setup() {
	apt_ensure "${WARN_PKGS[@]}"
}

# Our Rust files: the repository's kernel code at its kernel paths, and the host-side Rust of the
# tests and tools (format-host and its fuzz targets, the in-VM agent, the bench helper), without
# generated ones.
warn_rust_files() {
	(cd "$PZ_REPO" && git ls-files --cached --others --exclude-standard -- 'rust/*.rs' 'fs/*.rs' \
		'tools/testing/selftests/filesystems/puzzlefs/*.rs' 'scripts/puzzlefs/*.rs') |
		while read -r f; do
			[ -f "$PZ_REPO/$f" ] || continue
			grep -q '@generated' "$PZ_REPO/$f" && continue
			printf '%s\n' "$f"
		done
}

# t_rustfmt: rustfmt --check of our Rust files.
t_rustfmt() {
	local files logf=$PZ_LOGS/test-rustfmt.log
	mapfile -t files < <(warn_rust_files)
	if (cd "$PZ_REPO" && "$RUSTFMT_K" --check --edition 2021 --config-path "$KTREE/.rustfmt.toml" \
		"${files[@]}") >"$logf" 2>&1; then
		t_result "rustfmt (${#files[@]} files of ours)" 1 0
	else
		grep -E '^Diff in' "$logf" | head -n 10 >&2 || true
		t_result "rustfmt (${#files[@]} files of ours; log $logf)" 0 1
	fi
}

# warn_ours LOG: the diagnostics of LOG that point into our files ("--> path:line:col").
warn_ours() {
	local ours
	ours=$( (cd "$PZ_REPO" && git ls-files --cached --others --exclude-standard -- 'rust/*' 'fs/*') |
		sed 's/[.[\*^$]/\\&/g' | paste -sd'|')
	grep -nE -- "--> ([^ ]*/)?($ours):[0-9]+" "$1" || true
}

# t_lint_copy: clippy and rustdoc on a copy of the test kernel's build folder.
t_lint() {
	local copy=$KBASE/out-lint logf t0 rc ours
	t0=$(date +%s)
	rm -rf "$copy"
	cp -a "$KOUT" "$copy"
	# rustdoc first: the copy is up to date, so `prepare` rebuilds nothing before it. The
	# documentation of an earlier run goes, so that every crate is documented again.
	rm -rf "$copy/Documentation/output/rust" "$copy/rust/doc"
	find "$copy/rust" -maxdepth 1 -name '.rustdoc-*.cmd' -delete
	logf=$PZ_LOGS/test-rustdoc.log
	set +e
	"${KMAKE[@]}" -C "$KTREE" O="$copy" -j"${PUZZLEFS_JOBS:-2}" rustdoc >"$logf" 2>&1
	rc=$?
	set -e
	ours=$(warn_ours "$logf")
	if [ $rc -eq 0 ] && ! grep -qE '^(warning|error)(\[|:)' "$logf"; then
		t_result "make rustdoc: no warnings" 1 0
	else
		[ -n "$ours" ] && printf '%s\n' "$ours" | head -n 20 >&2 || true
		grep -E '^(warning|error)' "$logf" | head -n 20 >&2 || true
		t_result "make rustdoc: no warnings (log $logf)" 0 1
	fi
	# clippy: our objects go, the Rust crates are rebuilt with clippy-driver (make sees the new
	# command line); only the folders we need are built, not vmlinux.
	rm -f "$copy/rust/kernel.o" "$copy/rust/libkernel.rmeta"
	find "$copy/fs/puzzlefs" -name '*.o' -delete 2>/dev/null || true
	logf=$PZ_LOGS/test-clippy.log
	set +e
	"${KMAKE[@]}" -C "$KTREE" O="$copy" -j"${PUZZLEFS_JOBS:-2}" CLIPPY=1 \
		CLIPPY_DRIVER=/usr/bin/clippy-driver fs/puzzlefs/ >"$logf" 2>&1
	rc=$?
	set -e
	ours=$(warn_ours "$logf")
	if [ $rc -eq 0 ] && ! grep -qE '^(warning|error)(\[|:)' "$logf" &&
		grep -qE 'CLIPPY .*fs/puzzlefs/puzzlefs.o' "$logf"; then
		t_result "make CLIPPY=1 (rust/, fs/puzzlefs/): no warnings" 1 0
	else
		[ -n "$ours" ] && printf '%s\n' "$ours" | head -n 20 >&2 || true
		grep -E '^(warning|error)' "$logf" | head -n 20 >&2 || true
		t_result "make CLIPPY=1 (rust/, fs/puzzlefs/): no warnings (log $logf)" 0 1
	fi
	rm -rf "$copy"
	log "rustdoc and clippy in $(($(date +%s) - t0))s"
}

# t_warnings: after `kernel_build test` (KTREE, KBASE, KOUT set).
t_warnings() {
	warnings_setup
	kmake_vars
	t_rustfmt
	t_lint
}
