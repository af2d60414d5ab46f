#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host tests of the PuzzleFS format core: generated-reader check, no_std
# build, clippy (panic-freedom lints are denied on the format module),
# unit and differential tests (including the in-kernel KUnit self-tests of
# fs/puzzlefs/format/selftest.rs), and a short run of each fuzz target seeded
# from the images the differential tests build (the compile target takes a
# rootfs and its layer blobs, the json target index.json and manifests).
#
#   run-tests.sh                  FUZZ_SECONDS=20 per target by default
#   FUZZ_SECONDS=0 run-tests.sh   skip fuzzing
#
# Ends with "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../../../.." && pwd)
TOOLS=${PUZZLEFS_TOOLS:-$HOME/.cache/puzzlefs/tools}
CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export PATH="$TOOLS/bin:$PATH"
# The upstream oracles (puzzlefs-lib) and cargo-fuzz need one nightly feature.
export RUSTC_BOOTSTRAP=1

passed=0
failed=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ok() { passed=$((passed + 1)); echo "ok: $1"; }
not_ok() { failed=$((failed + 1)); echo "FAILED: $1"; }

step() {
	local name=$1
	shift
	if "$@" > "$work/log" 2>&1; then
		ok "$name"
	else
		tail -n 40 "$work/log"
		not_ok "$name"
	fi
}

cd "$HERE" || exit 1

step "generated capnp readers up to date" "$ROOT/scripts/puzzlefs/regen-capnp" --check
step "format core builds without std/alloc" cargo build --locked --lib
step "clippy (panic lints denied on format)" cargo clippy --locked --lib -- -D warnings
# cfg(test) adds the tests and format/selftest.rs (the KUnit cases), which
# sit in the format module and so get its denied lints too.
step "clippy on the tests and format self-tests" cargo clippy --locked --lib --tests -- -D warnings
# The self-tests as the kernel builds them: no std, capnp without alloc.
step "format self-tests build without std/alloc (cfg CONFIG_KUNIT)" \
	env RUSTFLAGS="--cfg CONFIG_KUNIT" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HERE/target}/kunit-cfg" \
	cargo clippy --locked --lib -- -D warnings

# Unit and differential tests; count each test.
mkdir -p "$work/seeds"
PUZZLEFS_SEED_DIR="$work/seeds" cargo test --locked --lib > "$work/test.log" 2>&1
rc=$?
grep -E '^test .* (ok|FAILED)$' "$work/test.log" | sed 's/^/  /'
tp=$(sed -n 's/^test result: .* \([0-9]\+\) passed; \([0-9]\+\) failed.*/\1/p' "$work/test.log" | awk '{s+=$1} END {print s+0}')
tf=$(sed -n 's/^test result: .* \([0-9]\+\) passed; \([0-9]\+\) failed.*/\2/p' "$work/test.log" | awk '{s+=$1} END {print s+0}')
passed=$((passed + tp))
failed=$((failed + tf))
if [ $rc -ne 0 ] && [ "$tf" -eq 0 ]; then
	tail -n 40 "$work/test.log"
	not_ok "cargo test"
fi

if [ "$FUZZ_SECONDS" -gt 0 ]; then
	if ! command -v cargo-fuzz > /dev/null; then
		cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS" > "$work/log" 2>&1 ||
			{ tail -n 20 "$work/log"; not_ok "install cargo-fuzz"; }
	fi
	# Seeds, written by the differential tests: every image's metadata in the
	# compile target's input layout, and its index.json and image manifest
	# for json, and every compressed chunk blob for seekable. Seeds over 256 KiB
	# would only slow libFuzzer down.
	mkdir -p "$work/corpus/compile" "$work/corpus/json" "$work/corpus/seekable"
	for t in compile seekable json; do
		[ -d "$work/seeds/$t" ] || continue
		find "$work/seeds/$t" -type f -size -256k -exec cp -t "$work/corpus/$t" {} +
	done
	for t in compile seekable json; do
		if (cd fuzz && cargo fuzz run -O -s none "$t" "$work/corpus/$t" -- \
			-max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1) > "$work/fuzz-$t.log" 2>&1; then
			runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz-$t.log")
			ok "fuzz $t (${runs:-?} runs, ${FUZZ_SECONDS}s)"
		else
			tail -n 40 "$work/fuzz-$t.log"
			not_ok "fuzz $t"
		fi
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
