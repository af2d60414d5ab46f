# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Upstream PuzzleFS image builders (the reference the driver is tested against).
#
# Sourced by scripts/puzzlefs/run. Expects $PZ_CACHE (default ~/.cache/puzzlefs)
# and the functions `log` and `die`; falls back to simple ones when sourced alone.
#
#   puzzlefs_cli_setup      install puzzlefs 0.2.0 and 0.1.0 (idempotent)
#   puzzlefs_cli VERSION    print the path of that version's binary (0.2.0 | 0.1.0)
#   PUZZLEFS_NEW            0.2.0 binary (Generation B images, OCI manifest)
#   PUZZLEFS_OLD            0.1.0 binary (Generation A images, capnp rootfs)

: "${PZ_CACHE:=$HOME/.cache/puzzlefs}"
declare -F log >/dev/null || log() { printf '%s\n' "$*" >&2; }
declare -F die >/dev/null || die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Pins (scripts/puzzlefs/pins.sh may set them first) and binary paths (may
# come from the environment).
: "${PUZZLEFS_NEW_VERSION:=0.2.0}"
: "${PUZZLEFS_OLD_VERSION:=0.1.0}"
: "${PUZZLEFS_NEW:=$PZ_CACHE/tools/puzzlefs-$PUZZLEFS_NEW_VERSION/bin/puzzlefs}"
: "${PUZZLEFS_OLD:=$PZ_CACHE/tools/puzzlefs-$PUZZLEFS_OLD_VERSION/bin/puzzlefs}"

puzzlefs_cli() {
	case "$1" in
	"$PUZZLEFS_NEW_VERSION" | new | B) echo "$PUZZLEFS_NEW" ;;
	"$PUZZLEFS_OLD_VERSION" | old | A) echo "$PUZZLEFS_OLD" ;;
	*) die "puzzlefs_cli: unknown version '$1'" ;;
	esac
}

# A binary counts as installed when it runs and a stamp records the version.
_puzzlefs_cli_ok() {
	local bin=$1 ver=$2
	[ -x "$bin" ] && [ "$(cat "$bin.stamp" 2>/dev/null)" = "$ver" ] &&
		"$bin" --help >/dev/null 2>&1
}

_puzzlefs_cli_install_new() {
	local root
	root=$(dirname "$(dirname "$PUZZLEFS_NEW")")
	_puzzlefs_cli_ok "$PUZZLEFS_NEW" "$PUZZLEFS_NEW_VERSION" && return 0
	log "puzzlefs-cli: installing puzzlefs $PUZZLEFS_NEW_VERSION into $root"
	# puzzlefs-lib uses one #![feature]: allow it on a stable compiler.
	RUSTC_BOOTSTRAP=1 cargo install puzzlefs --version "$PUZZLEFS_NEW_VERSION" \
		--locked --root "$root" ||
		die "puzzlefs-cli: cargo install puzzlefs $PUZZLEFS_NEW_VERSION failed"
	echo "$PUZZLEFS_NEW_VERSION" >"$PUZZLEFS_NEW.stamp"
}

# 0.1.0's Cargo.lock pins a `time` crate that current rustc rejects. Get the
# crate source through cargo itself (a throwaway project that depends on it),
# update only `time` in its lock file, and install from that path.
_puzzlefs_cli_install_old() {
	local root work src reg
	root=$(dirname "$(dirname "$PUZZLEFS_OLD")")
	work="$root.build"
	_puzzlefs_cli_ok "$PUZZLEFS_OLD" "$PUZZLEFS_OLD_VERSION" && return 0
	log "puzzlefs-cli: installing puzzlefs $PUZZLEFS_OLD_VERSION into $root"
	rm -rf "$work"
	mkdir -p "$work/fetch/src" || die "puzzlefs-cli: mkdir $work"
	cat >"$work/fetch/Cargo.toml" <<-EOF
		[package]
		name = "pzfetch"
		version = "0.0.0"
		edition = "2021"
		publish = false

		[dependencies]
		puzzlefs = "=$PUZZLEFS_OLD_VERSION"
	EOF
	: >"$work/fetch/src/lib.rs"
	(cd "$work/fetch" && cargo fetch) ||
		die "puzzlefs-cli: cargo fetch of puzzlefs $PUZZLEFS_OLD_VERSION failed"
	reg="${CARGO_HOME:-$HOME/.cargo}/registry/src"
	src=$(find "$reg" -mindepth 2 -maxdepth 2 -type d \
		-name "puzzlefs-$PUZZLEFS_OLD_VERSION" | head -n1)
	[ -n "$src" ] && [ -f "$src/Cargo.lock" ] ||
		die "puzzlefs-cli: puzzlefs-$PUZZLEFS_OLD_VERSION source not found under $reg"
	cp -a "$src" "$work/src" || die "puzzlefs-cli: copy $src"
	(cd "$work/src" && cargo update -p time) ||
		die "puzzlefs-cli: cargo update -p time failed"
	RUSTC_BOOTSTRAP=1 cargo install --path "$work/src" --locked --root "$root" ||
		die "puzzlefs-cli: cargo install puzzlefs $PUZZLEFS_OLD_VERSION failed"
	echo "$PUZZLEFS_OLD_VERSION" >"$PUZZLEFS_OLD.stamp"
	rm -rf "$work"
}

puzzlefs_cli_setup() {
	command -v cargo >/dev/null || die "puzzlefs-cli: cargo not in PATH"
	mkdir -p "$(dirname "$(dirname "$(dirname "$PUZZLEFS_NEW")")")" \
		"$(dirname "$(dirname "$(dirname "$PUZZLEFS_OLD")")")" ||
		die "puzzlefs-cli: cannot create the install folders"
	_puzzlefs_cli_install_new
	_puzzlefs_cli_install_old
	log "puzzlefs-cli: $PUZZLEFS_NEW"
	log "puzzlefs-cli: $PUZZLEFS_OLD"
}
