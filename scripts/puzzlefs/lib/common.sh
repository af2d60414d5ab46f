# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers of scripts/puzzlefs/run: logging, timing, the cache layout and the tool chain.

PZ_CACHE=${PUZZLEFS_CACHE:-$HOME/.cache/puzzlefs}
PZ_LOGS=$PZ_CACHE/logs
PZ_TOOLS=$PZ_CACHE/tools
mkdir -p "$PZ_CACHE/stamps" "$PZ_LOGS" "$PZ_TOOLS"

PZ_T0=$(date +%s)

log() { printf '[puzzlefs %5ss] %s\n' "$(($(date +%s) - PZ_T0))" "$*" >&2; }
die() { printf 'puzzlefs: error: %s\n' "$*" >&2; exit 1; }

# step NAME LOGFILE CMD... : run a long step with its output in LOGFILE, print its name and its
# elapsed time, and the tail of the log if it fails.
step() {
	local name=$1 logf=$2 t0 rc
	shift 2
	t0=$(date +%s)
	log "$name ... (log: $logf)"
	set +e
	"$@" >"$logf" 2>&1 &
	local pid=$! n=0
	# Progress: every minute, the elapsed time and the last line of the log.
	while kill -0 "$pid" 2>/dev/null; do
		sleep 2
		n=$((n + 1))
		if [ $((n % 30)) -eq 0 ]; then
			log "  ... $name: $(($(date +%s) - t0))s: $(tail -n 1 "$logf" | cut -c1-100)"
		fi
	done
	wait "$pid"
	rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		tail -n 40 "$logf" >&2
		die "$name failed (exit $rc) after $(($(date +%s) - t0))s; full log: $logf"
	fi
	log "$name done in $(($(date +%s) - t0))s"
}

# The kernel is built with Debian's rustc-web, whose library source is rust-web-src: rustup's
# rustc comes first in PATH and has no library source, so name every tool explicitly.
RUSTC_K=/usr/bin/rustc
RUSTDOC_K=/usr/bin/rustdoc
RUST_LIB_SRC_K=/usr/src/rustc-${RUST_WEB_VERSION}.0/library
BINDGEN_K=$PZ_TOOLS/bin/bindgen

kmake_vars() {
	local cc=clang-19
	# ccache's compiler links keep CC and HOSTCC one word each (a two-word HOSTCC breaks the host
	# Rust programs).
	if [ -x /usr/lib/ccache/clang-19 ]; then
		cc=/usr/lib/ccache/clang-19
		# Objects of another build tree with the same layout are cache hits too.
		export CCACHE_BASEDIR=$PZ_CACHE/tree
	fi
	KMAKE=(make LLVM=-19 "CC=$cc" "HOSTCC=$cc" "RUSTC=$RUSTC_K" "RUSTDOC=$RUSTDOC_K"
	       "HOSTRUSTC=$RUSTC_K" "RUST_LIB_SRC=$RUST_LIB_SRC_K" "BINDGEN=$BINDGEN_K")
}

# The repository (this script lives in scripts/puzzlefs/).
PZ_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
