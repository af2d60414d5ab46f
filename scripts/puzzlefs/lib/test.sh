# SPDX-License-Identifier: GPL-2.0
#
# `run test`: every test of the project, with one summary line at the end.
#
#   1. host tests: the format core's cargo tests and fuzz smoke runs, the check that the committed
#      capnp readers are what the schema compiler generates;
#   2. one boot of the debug test kernel (KASAN, lockdep, ...): KUnit runs at boot, then /init runs
#      the in-VM tests from an ext4 data disk holding the images, source trees and manifests;
#   3. one boot of the demo kernel, the configuration users run (16 KiB stacks where KASAN's are
#      32 KiB, no debug code): the same in-VM tests once more.
#
# It fails on any failed test, on any Oops/BUG/WARNING/KASAN/lockdep report in the console log,
# and on a boot that does not reach its end marker before the timeout.
#
# Also: warnings (lib/warnings.sh: the test kernel has CONFIG_WERROR; rustfmt, make rustdoc,
# make CLIPPY=1), the demo kernel on QEMU's pc and q35 machines with a virtio-pci disk
# (lib/demo.sh), and the patch series (lib/series.sh: checkpatch, git am, one build;
# PUZZLEFS_SKIP_SERIES=1 skips it).

SELFTESTS=tools/testing/selftests/filesystems/puzzlefs
T_PASS=0
T_FAIL=0
T_FAILED_NAMES=()

t_result() { # t_result NAME PASSED FAILED
	T_PASS=$((T_PASS + $2))
	T_FAIL=$((T_FAIL + $3))
	[ "$3" -gt 0 ] && T_FAILED_NAMES+=("$1")
	log "$1: $2 passed, $3 failed"
}

# A host suite prints "N passed, N failed" as its last such line and exits non-zero on failure.
t_host_suite() {
	local name=$1 logf=$PZ_LOGS/test-$1.log p f rc line
	shift
	log "host suite $name ... (log: $logf)"
	set +e
	"$@" >"$logf" 2>&1
	rc=$?
	set -e
	line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$logf" | tail -n 1)
	if [ -z "$line" ]; then
		tail -n 20 "$logf" >&2
		t_result "$name" 0 1
		return
	fi
	p=$(sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
	f=$(sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/' <<<"$line")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	[ "$f" -gt 0 ] && grep -E 'FAIL|not ok|panicked|error' "$logf" | head -n 20 >&2
	t_result "$name" "$p" "$f"
}

t_host() {
	if [ -x "$PZ_REPO/scripts/puzzlefs/regen-capnp" ]; then
		if "$PZ_REPO/scripts/puzzlefs/regen-capnp" --check >"$PZ_LOGS/test-regen-capnp.log" 2>&1; then
			t_result "capnp readers match the schemas" 1 0
		else
			tail -n 20 "$PZ_LOGS/test-regen-capnp.log" >&2
			t_result "capnp readers match the schemas" 0 1
		fi
	fi
	if [ -x "$PZ_REPO/$SELFTESTS/format-host/run-tests.sh" ]; then
		# Build output in the cache, so that a fresh clone does not rebuild the oracles.
		t_host_suite format-host env CARGO_TARGET_DIR="$PZ_CACHE/cargo-target/format-host" \
			"$PZ_REPO/$SELFTESTS/format-host/run-tests.sh"
	fi
}

# The data disk of the test VM: built by the selftests' scripts into a cached staging folder.
t_data_disk() {
	local staging=$1 disk=$2
	mkdir -p "$staging"
	if [ -x "$PZ_REPO/$SELFTESTS/build-images.sh" ]; then
		step "build the test images and manifests" "$PZ_LOGS/test-images.log" \
			env PUZZLEFS_NEW="$PUZZLEFS_NEW" PUZZLEFS_OLD="$PUZZLEFS_OLD" \
			PFS_HOSTILE_RANDOM="${PFS_HOSTILE_RANDOM:-}" \
			"$PZ_REPO/$SELFTESTS/build-images.sh" "$staging"
	fi
	if [ -f "$PZ_REPO/$SELFTESTS/vm-tests.sh" ]; then
		install -m 0755 "$PZ_REPO/$SELFTESTS/vm-tests.sh" "$staging/vm-tests.sh"
		install -m 0644 "$PZ_REPO/$SELFTESTS/vm-lib.sh" "$staging/vm-lib.sh"
	fi
	local size_mb
	size_mb=$(( $(du -sm "$staging" | cut -f1) * 3 / 2 + 64 ))
	rm -f "$disk"
	# 4 KiB blocks: fs-verity's Merkle tree blocks (upstream enable-fs-verity's) are 4 KiB.
	step "make the ext4 data disk (${size_mb} MiB)" "$PZ_LOGS/test-disk.log" \
		mkfs.ext4 -q -F -b 4096 -O verity -L pfstest -d "$staging" "$disk" "${size_mb}M"
	# The extras (fs-verity images, lying compressed chunks, the 2 GiB image) are written into
	# the disk afterwards: their copies must not be hard links, and the big image is cached
	# apart from the staging folder. PUZZLEFS_BIG=0 leaves the big image out.
	if [ -x "$PZ_REPO/$SELFTESTS/extras.sh" ]; then
		step "add the extra images to the data disk" "$PZ_LOGS/test-extras.log" \
			env PUZZLEFS_NEW="$PUZZLEFS_NEW" PUZZLEFS_OLD="$PUZZLEFS_OLD" PZ_CACHE="$PZ_CACHE" \
			"$PZ_REPO/$SELFTESTS/extras.sh" "$disk" "$staging"
	fi
}

# Reports in the console log that fail the run whatever the tests said.
T_BAD_PATTERNS='(Oops|BUG:|WARNING:|KASAN|UBSAN|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|Kernel panic|kernel BUG|general protection fault|rust_panic|panicked at|INFO: task .* blocked|Call Trace:)'

# t_vm_parse LOG LABEL KUNIT(yes|no) TESTS(yes|no): count the results of one boot.
t_vm_parse() {
	local logf=$1 label=$2 kunit=$3 tests=$4 p f reports
	reports=$PZ_LOGS/test-kernel-reports-${label// /-}.txt
	[ "$kunit" = yes ] && t_vm_kunit "$logf"

	# In-VM tests: one line each, "PFS-TEST: ok NAME" or "PFS-TEST: not ok NAME: why".
	# A kernel message can land in the middle of a result line on the serial console: failures
	# are matched anywhere in a line, and the guest's own count (its summary line, made from
	# complete lines) is their floor.
	local sf
	p=$(grep -cE '^PFS-TEST: ok ' "$logf" || true)
	f=$(grep -cE 'PFS-TEST: not ok' "$logf" || true)
	grep -E 'PFS-TEST: not ok' "$logf" | head -n 30 >&2 || true
	sf=$(sed -n 's/.*PFS-TEST-SUMMARY: [0-9]* passed, \([0-9]*\) failed.*/\1/p' "$logf" | tail -n 1)
	if [ -n "$sf" ] && [ "$sf" -gt "$f" ]; then
		log "the guest counted $sf failures, the console shows $f (a line garbled by a kernel message)"
		f=$sf
	fi
	# A boot that was to run the tests and reported none failed.
	[ "$tests" = yes ] && [ $((p + f)) -eq 0 ] && f=1
	[ $((p + f)) -gt 0 ] && t_result "in-VM tests ($label)" "$p" "$f"

	if ! grep -q '^PFS-END' "$logf"; then
		log "the guest did not reach its end marker (PFS-END)"
		t_result "VM boot reached its end ($label)" 0 1
	else
		t_result "VM boot reached its end ($label)" 1 0
	fi
	if grep -nE "$T_BAD_PATTERNS" "$logf" >"$reports"; then
		head -n 20 "$reports" >&2
		t_result "no kernel reports (Oops/BUG/WARNING/KASAN/lockdep) ($label)" 0 1
	else
		t_result "no kernel reports (Oops/BUG/WARNING/KASAN/lockdep) ($label)" 1 0
	fi
}

# KUnit, parsed by the kernel tree's own parser.
t_vm_kunit() {
	local logf=$1 summary p f k_rc
	set +e
	summary=$(python3 "$KTREE/tools/testing/kunit/kunit.py" parse --summary "$logf" 2>&1)
	k_rc=$?
	set -e
	printf '%s\n' "$summary" >"$PZ_LOGS/test-kunit.txt"
	python3 "$KTREE/tools/testing/kunit/kunit.py" parse "$logf" >"$PZ_LOGS/test-kunit-full.txt" 2>&1 || true
	p=$(grep -oE 'passed: [0-9]+' <<<"$summary" | tail -n 1 | grep -oE '[0-9]+' || echo 0)
	f=0
	for kind in failed crashed errors; do
		f=$((f + $(grep -oE "$kind: [0-9]+" <<<"$summary" | tail -n 1 | grep -oE '[0-9]+' || echo 0)))
	done
	if [ "$p" -eq 0 ] || { [ "$k_rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then f=$((f + 1)); fi
	[ "$f" -gt 0 ] && grep -E 'not ok|FAILED|ASSERTION|Expected' "$PZ_LOGS/test-kunit-full.txt" | head -n 20 >&2
	t_result "KUnit (see $PZ_LOGS/test-kunit-full.txt)" "$p" "$f"
}

cmd_test() {
	local work=$PZ_CACHE/test
	cmd_setup
	# PUZZLEFS_SKIP_HOST=1 skips the host suites while iterating on the kernel side.
	[ -n "${PUZZLEFS_SKIP_HOST:-}" ] || t_host
	kernel_build test
	t_warnings
	mkdir -p "$work"
	t_data_disk "$work/staging" "$work/disk.img"
	# The small images of both generations go on the initramfs too: the tests mount them from
	# there as well as from the ext4 disk.
	vm_initramfs "$work/initramfs.cpio.gz" "$PZ_REPO/scripts/puzzlefs/init.sh" "$(
		printf 'dir /pfs-initramfs 0755 0 0\ndir /pfs-initramfs/images 0755 0 0\n'
		for gen in B A; do
			vm_cpio_tree "$work/staging/images/small.$gen" "/pfs-initramfs/images/small.$gen"
		done)"
	# PUZZLEFS_VM_MODE=smoke boots without the in-VM tests (KUnit and the kernel-report scan
	# still run): a quick check of the harness itself.
	local mode=${PUZZLEFS_VM_MODE:-test}
	vm_run "$KIMAGE" "$work/initramfs.cpio.gz" "pfs.mode=$mode" "$work/console.log" \
		"${PUZZLEFS_VM_TIMEOUT:-3600}" "$work/disk.img"
	t_vm_parse "$work/console.log" "test kernel" yes "$([ "$mode" = smoke ] && echo no || echo yes)"
	log "console log: $work/console.log"

	# The demo kernel: what the debug kernel cannot show (stack use without KASAN's doubled
	# stacks, timing without the debug code). PUZZLEFS_SKIP_DEMO=1 skips it while iterating.
	if [ -z "${PUZZLEFS_SKIP_DEMO:-}" ]; then
		kernel_build demo
		# The hostile images run on the debug kernel only (pfs.hostile=0): they are about its
		# checks (KASAN, lockdep, hung tasks), and they are the longest section.
		vm_run "$KIMAGE" "$work/initramfs.cpio.gz" "pfs.mode=$mode pfs.hostile=0" \
			"$work/console-demo.log" \
			"${PUZZLEFS_VM_TIMEOUT:-3600}" "$work/disk.img"
		t_vm_parse "$work/console-demo.log" "demo kernel" no "$([ "$mode" = smoke ] && echo no || echo yes)"
		log "console log (demo kernel): $work/console-demo.log"
		t_machines
		# The benchmark's smoke mode (one tiny tree, one repetition, every filesystem's bytes
		# checked): the harness that `run bench` relies on keeps working.
		[ -n "${PUZZLEFS_SKIP_BENCH:-}" ] || t_bench_smoke
	fi
	[ -n "${PUZZLEFS_SKIP_SERIES:-}" ] || t_series
	[ ${#T_FAILED_NAMES[@]} -gt 0 ] && log "failed: ${T_FAILED_NAMES[*]}"
	printf '%d passed, %d failed\n' "$T_PASS" "$T_FAIL"
	[ "$T_FAIL" -eq 0 ]
}
