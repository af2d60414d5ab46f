# SPDX-License-Identifier: GPL-2.0
#
# `run bench [--smoke]`: PuzzleFS against what its users would otherwise use, in one boot of the
# demo kernel (whose fragments include EROFS, squashfs, loop and FUSE), on the same trees and the
# same ext4 virtio disk:
#
#   puzzlefs        the driver, Generation B image (upstream `puzzlefs build`)
#   puzzlefs-drop   the same image mounted with blob_cache=drop (the chunk blob pages a read used
#                   whole are released after it: each byte mostly cached once; the default, keep,
#                   caches them too)
#   puzzlefs-zstd   the same tree built with `build -c` (zstd seekable chunks)
#   puzzlefs-verity a copy of the puzzlefs image whose blobs the guest gives fs-verity, mounted
#                   with verity=require: the integrity chain's cost against puzzlefs (verity=on
#                   on blobs without fs-verity, which checks nothing)
#   erofs           file-backed EROFS (mount -t erofs /path/img), uncompressed: the reference
#   erofs-lz4       the same, lz4 (bookworm's erofs-utils 1.5 cannot write zstd)
#   squashfs        uncompressed, on a read-only loop device
#   squashfs-zstd   zstd, on a read-only loop device
#   ext4            the tree extracted on the ext4 disk itself
#   tmpfs           the tree copied to a tmpfs in the guest
#   fuse            upstream `puzzlefs mount` (FUSE) in the guest
#
# Trees: a Debian bookworm minbase root filesystem (debootstrap), 20,000 small files, 8 random
# files of 64 MiB; --smoke uses one tiny tree and one repetition (a few minutes of VM time).
# Metrics, cold (unmount, drop_caches, mount) and warm: full-tree read, lstat walk, 500 random
# whole files, 1000 random 4 KiB preads in files >= 1 MiB, mount + root readdir, page cache and
# slab after the mount and after a cold full read, CPU time from /proc/stat. Every filesystem's
# bytes are checked against sha256s computed on the host from the source tree; a mismatch, or a
# filesystem that cannot be measured, makes `run bench` fail.
#
# Settings: PUZZLEFS_BENCH_REPS (default 5; --smoke: 1), PUZZLEFS_BENCH_TREES (default
# "debian small large"), PUZZLEFS_BENCH_FS (a comma-separated list of the filesystems above to
# measure, default all; erofs, the reference, is always kept), PUZZLEFS_BENCH_KARGS (more kernel
# arguments, e.g. module parameters: puzzlefs.max_open_blobs=N), PUZZLEFS_BENCH_TIMEOUT (seconds), PUZZLEFS_VM_MEM (default 4096 here:
# the tmpfs copy lives in the guest's RAM).
#
# Cache: $PZ_CACHE/bench/<smoke|full>/staging (trees, images, lists, the FUSE binary; the data
# disk is made from it), .../disk.img, console logs, and the results in $PZ_CACHE/bench/results/.

BENCH_PKGS=(debootstrap erofs-utils squashfs-tools e2fsprogs)
BENCH_SUITE=bookworm
BENCH_MIRROR=http://deb.debian.org/debian
BENCH_DIR=$PZ_REPO/scripts/puzzlefs/bench

bench_packages() {
	apt_ensure "${BENCH_PKGS[@]}"
}

# The static in-VM helper; sets BENCH_HELPER.
bench_helper() {
	local target=$PZ_CACHE/cargo-target/bench
	step "build the bench helper (pfs-bench)" "$PZ_LOGS/bench-helper.log" \
		env CARGO_TARGET_DIR="$target" RUSTFLAGS="-C target-feature=+crt-static" \
		cargo build --release --locked --target x86_64-unknown-linux-gnu \
			--manifest-path "$BENCH_DIR/Cargo.toml"
	BENCH_HELPER=$target/x86_64-unknown-linux-gnu/release/pfs-bench
}

# bench_cached DIR KEY CMD...: run CMD (which creates DIR) unless DIR.stamp says KEY.
bench_cached() {
	local dir=$1 key=$2
	shift 2
	[ -e "$dir" ] && [ "$(cat "$dir.stamp" 2>/dev/null)" = "$key" ] && return 0
	rm -rf "$dir" "$dir.stamp"
	"$@"
	[ -e "$dir" ] || die "$dir was not made"
	echo "$key" >"$dir.stamp"
}

bench_debootstrap() {
	local dir=$1
	rm -rf "$dir.tmp"
	step "debootstrap --variant=minbase $BENCH_SUITE (tree debian)" "$PZ_LOGS/bench-debootstrap.log" \
		debootstrap --variant=minbase "$BENCH_SUITE" "$dir.tmp" "$BENCH_MIRROR"
	mv "$dir.tmp" "$dir"
}

bench_synthetic() {
	local kind=$1 dir=$2
	rm -rf "$dir.tmp"
	step "generate tree $kind" "$PZ_LOGS/bench-tree-$kind.log" \
		python3 "$BENCH_DIR/benchdata.py" tree "$kind" "$dir.tmp"
	mv "$dir.tmp" "$dir"
}

bench_tree() {
	local name=$1 dir=$2
	case $name in
	debian) bench_cached "$dir" "debootstrap minbase $BENCH_SUITE" bench_debootstrap "$dir" ;;
	*) bench_cached "$dir" "$(sha256sum "$BENCH_DIR/benchdata.py" | cut -c1-16)" \
		bench_synthetic "$name" "$dir" ;;
	esac
}

bench_make_images() {
	local tree=$1 out=$2
	mkdir -p "$out.tmp"
	step "puzzlefs build $(basename "$out")" "$PZ_LOGS/bench-img-pfs.log" \
		"$PUZZLEFS_NEW" build "$tree" "$out.tmp/pfs:bench"
	step "puzzlefs build -c $(basename "$out")" "$PZ_LOGS/bench-img-pfs-zstd.log" \
		"$PUZZLEFS_NEW" build -c "$tree" "$out.tmp/pfs-zstd:bench"
	step "mkfs.erofs $(basename "$out")" "$PZ_LOGS/bench-img-erofs.log" \
		mkfs.erofs "$out.tmp/erofs.img" "$tree"
	step "mkfs.erofs -zlz4 $(basename "$out")" "$PZ_LOGS/bench-img-erofs-lz4.log" \
		mkfs.erofs -zlz4 "$out.tmp/erofs-lz4.img" "$tree"
	step "mksquashfs $(basename "$out")" "$PZ_LOGS/bench-img-sqfs.log" \
		mksquashfs "$tree" "$out.tmp/sqfs.img" -noappend -no-progress -noI -noD -noF -noX
	step "mksquashfs -comp zstd $(basename "$out")" "$PZ_LOGS/bench-img-sqfs-zstd.log" \
		mksquashfs "$tree" "$out.tmp/sqfs-zstd.img" -noappend -no-progress -comp zstd
	mv "$out.tmp" "$out"
}

bench_images() {
	local tree=$1 out=$2 key
	key=$(printf '%s\n' "$(cat "$tree.stamp")" "$PUZZLEFS_NEW_VERSION" \
		"$(dpkg-query -W -f='${Version}' erofs-utils squashfs-tools)" \
		"$(declare -f bench_make_images)" | sha256sum | cut -c1-16)
	bench_cached "$out" "$key" bench_make_images "$tree" "$out"
}

bench_lists() {
	local tree=$1 out=$2 nrand=$3 npread=$4 key
	key=$(printf '%s\n' "$(cat "$tree.stamp")" "$nrand $npread" \
		"$(sha256sum "$BENCH_DIR/benchdata.py")" | sha256sum | cut -c1-16)
	bench_cached "$out" "$key" step "reference lists and sha256s of $(basename "$tree")" \
		"$PZ_LOGS/bench-lists.log" python3 "$BENCH_DIR/benchdata.py" lists "$tree" "$out" \
		--random "$nrand" --preads "$npread"
}

# Upstream's FUSE reader with its dynamic loader and libraries (the guest has busybox only).
bench_fuse() {
	local out=$1 lib
	rm -rf "$out"
	mkdir -p "$out/bin" "$out/lib"
	cp "$PUZZLEFS_NEW" "$out/bin/puzzlefs"
	for lib in $(ldd "$PUZZLEFS_NEW" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do
		cp -L "$lib" "$out/lib/$(basename "$lib")"
	done
	[ -e "$out/lib/ld-linux-x86-64.so.2" ] || die "no dynamic loader in ldd $PUZZLEFS_NEW"
}

bench_digest() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' \
		"$1/index.json"
}

# bench_data SET TREES...: the staging folder and the data disk; sets BENCH_DISK, BENCH_CASES.
bench_data() {
	local set=$1 t img d nrand=500 npread=1000 key
	shift
	local base=$PZ_CACHE/bench/$set st=$PZ_CACHE/bench/$set/staging
	mkdir -p "$st/trees" "$st/images" "$st/lists"
	[ "$set" = smoke ] && nrand=50 npread=100
	bench_fuse "$st/fuse"
	: >"$st/cases.txt.new"
	for t in "$@"; do
		bench_tree "$t" "$st/trees/$t"
		bench_images "$st/trees/$t" "$st/images/$t"
		# A copy, not hard links: fs-verity is a property of the inode.
		bench_cached "$st/images/$t/pfs-verity" "$(cat "$st/images/$t.stamp")" \
			cp -a "$st/images/$t/pfs" "$st/images/$t/pfs-verity"
		bench_lists "$st/trees/$t" "$st/lists/$t" "$nrand" "$npread"
		img=/data/images/$t
		d=$(bench_digest "$st/images/$t/pfs")
		cat >>"$st/cases.txt.new" <<-EOF
			$t puzzlefs sys:puzzlefs:none:oci_root_dir=$img/pfs,image_manifest=$d
			$t puzzlefs-drop sys:puzzlefs:none:oci_root_dir=$img/pfs,image_manifest=$d,blob_cache=drop
			$t puzzlefs-verity sys:puzzlefs:none:oci_root_dir=$img/pfs-verity,image_manifest=$d,verity=require
			$t puzzlefs-zstd sys:puzzlefs:none:oci_root_dir=$img/pfs-zstd,image_manifest=$(bench_digest "$st/images/$t/pfs-zstd")
			$t erofs sys:erofs:$img/erofs.img
			$t erofs-lz4 sys:erofs:$img/erofs-lz4.img
			$t squashfs sys:squashfs:loop=$img/sqfs.img
			$t squashfs-zstd sys:squashfs:loop=$img/sqfs-zstd.img
			$t ext4 dir=/data/trees/$t
			$t tmpfs tmpfs=/data/trees/$t
			$t fuse fuse=$img/pfs:bench
		EOF
	done
	mv "$st/cases.txt.new" "$st/cases.txt"
	BENCH_CASES=$st/cases.txt
	BENCH_DISK=$base/disk.img
	key=$( (cat "$st/cases.txt"; cat "$st"/*/*.stamp; sha256sum "$st/fuse/bin/puzzlefs") | sha256sum | cut -c1-16)
	if [ "$(cat "$BENCH_DISK.stamp" 2>/dev/null)" != "$key" ]; then
		local size_mb
		size_mb=$(( $(du -sm "$st" | cut -f1) * 11 / 10 + 256 ))
		rm -f "$BENCH_DISK" "$BENCH_DISK.stamp"
		step "make the ext4 bench disk (${size_mb} MiB)" "$PZ_LOGS/bench-disk.log" \
			mkfs.ext4 -q -F -L pfsbench -b 4096 -O verity -d "$st" "$BENCH_DISK" "${size_mb}M"
		echo "$key" >"$BENCH_DISK.stamp"
	fi
}

# Under TCG the guest cannot calibrate its TSC (no HPET or PM timer on microvm, an emulated PIT
# too irregular) and falls back to jiffies, which would quantize every time to 4 ms. QEMU's TCG
# guest TSC is the host's TSC: pass its frequency, from the host kernel's log, so that the guest
# keeps the TSC as its clocksource. KVM guests have kvm-clock and need nothing.
bench_clock_args() {
	local mhz
	mhz=$(dmesg 2>/dev/null | sed -nE 's/.*tsc: (Refined TSC clocksource calibration:|Detected) ([0-9]+\.[0-9]+) MHz.*/\2/p' |
		tail -n 1)
	if [ -z "$mhz" ] || ! grep -qw constant_tsc /proc/cpuinfo; then
		log "bench: host TSC frequency unknown: the guest clock will tick in jiffies (coarse times)"
		return 0
	fi
	printf 'tsc_early_khz=%s tsc=reliable\n' "$(awk -v m="$mhz" 'BEGIN { printf "%d", m * 1000 }')"
}

cmd_bench() {
	local smoke=0 set=full reps trees tmo t0 work console json rc only=""
	case ${1:-} in
	--smoke) smoke=1; set=smoke ;;
	"") ;;
	*) die "usage: run bench [--smoke]" ;;
	esac
	t0=$(date +%s)
	local load0
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	cmd_setup
	bench_packages
	bench_helper
	if [ $smoke = 1 ]; then
		reps=${PUZZLEFS_BENCH_REPS:-1} trees=smoke tmo=${PUZZLEFS_BENCH_TIMEOUT:-1800}
	else
		reps=${PUZZLEFS_BENCH_REPS:-5} trees=${PUZZLEFS_BENCH_TREES:-debian small large}
		tmo=${PUZZLEFS_BENCH_TIMEOUT:-21600}
	fi
	if [ -n "${PUZZLEFS_BENCH_FS:-}" ]; then
		only=$(printf '%s' "erofs,$PUZZLEFS_BENCH_FS" | tr ', ' '\n\n' | awk 'NF && !seen[$0]++' |
			paste -sd, -)
	fi
	# shellcheck disable=SC2086
	bench_data "$set" $trees
	kernel_build demo
	work=$PZ_CACHE/bench/$set
	vm_initramfs "$work/initramfs.cpio.gz" "$PZ_REPO/scripts/puzzlefs/init.sh" "$(
		printf 'dir /bench 0755 0 0\n'
		printf 'file /bench/bench.sh %s 0755 0 0\n' "$PZ_REPO/scripts/puzzlefs/guest/bench.sh"
		printf 'file /bench/pfs-bench %s 0755 0 0\n' "$BENCH_HELPER")"
	console=$work/console.log
	# Informational kernel messages (every mount prints one) would go to the serial console
	# synchronously and count in the mount times: loglevel=5 keeps warnings and worse only.
	PUZZLEFS_VM_MEM=${PUZZLEFS_VM_MEM:-4096} vm_run "$KIMAGE" "$work/initramfs.cpio.gz" \
		"pfs.mode=bench pfs.reps=$reps${only:+ pfs.only=$only} loglevel=5 $(bench_clock_args)${PUZZLEFS_BENCH_KARGS:+ $PUZZLEFS_BENCH_KARGS}" "$console" "$tmo" \
		"$BENCH_DISK"
	mkdir -p "$PZ_CACHE/bench/results"
	json=$PZ_CACHE/bench/results/bench-$set-$(date -u +%Y%m%dT%H%M%SZ).json
	set +e
	python3 "$BENCH_DIR/report.py" "$console" "$BENCH_CASES" "$json" \
		"set=$set" "reps=$reps" "trees=$trees" "only=$only" "kargs=${PUZZLEFS_BENCH_KARGS:-}" "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		"host=$(uname -srm), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
		"accel=$(vm_accel "$KIMAGE" "$work/initramfs.cpio.gz")" "vm_mem_mb=${PUZZLEFS_VM_MEM:-4096}" \
		"commit=$(git -C "$PZ_REPO" rev-parse --short HEAD 2>/dev/null || echo none)" \
		"host_load_start=$load0" "host_load_end=$(cut -d' ' -f1-3 /proc/loadavg)" \
		"wall_s=$(($(date +%s) - t0))"
	rc=$?
	set -e
	log "console log: $console"
	log "results (JSON): $json"
	log "run bench${1:+ $1} took $(($(date +%s) - t0)) s"
	return $rc
}

# `run test`'s check of the benchmark harness: `run bench --smoke` passes (every filesystem
# mounted, read and byte-checked against the host's sha256s, no kernel report). Its times are
# not asserted: speed is what `run bench` reports, never a test.
t_bench_smoke() {
	local logf=$PZ_LOGS/test-bench.log t0=$SECONDS
	log "benchmark smoke run (run bench --smoke) ... (log: $logf)"
	if (cmd_bench --smoke) >"$logf" 2>&1; then
		t_result "bench --smoke: every filesystem mounted and byte-checked ($((SECONDS - t0)) s)" 1 0
	else
		tail -n 20 "$logf" >&2 || true
		t_result "bench --smoke (log $logf)" 0 1
	fi
}
