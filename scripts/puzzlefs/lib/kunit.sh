# SPDX-License-Identifier: GPL-2.0
#
# `run kunit`: the KUnit tests of the driver (fs/puzzlefs/.kunitconfig) and of the VFS
# abstractions (rust/kernel/fs/.kunitconfig), run the way kernel developers run KUnit: with the
# tree's own tools/testing/kunit/kunit.py on x86_64 under QEMU, in the pipeline's kernel tree,
# with the pipeline's tool chain. kunit.py makes its own configuration (olddefconfig of the
# kunitconfigs), so this is a separate kernel build of its own, in tree/<key>/out-kunit: a full
# build the first time, which is why `run test` does not run it (its test kernel runs the same
# KUnit suites at boot). Opt in with `scripts/puzzlefs/run kunit`.
#
# kunit.py asks QEMU for KVM first (-accel kvm -accel hvf -accel tcg). Where KVM does not work
# (the pipeline's probe says so, e.g. under nested virtualisation), it runs with /dev/kvm hidden
# in a private mount namespace, so that QEMU falls back to TCG.

# The kunit.py command line, for the pipeline's tree (KTREE) and tool chain (KMAKE).
kunit_args() {
	local v
	KUNIT_ARGS=(run --kunitconfig=fs/puzzlefs --kunitconfig=rust/kernel/fs --arch=x86_64
		--build_dir="$KBASE/out-kunit" --jobs="${PUZZLEFS_JOBS:-2}" --timeout=1800)
	# The same make variables as every other build of the pipeline (LLVM=-19, RUSTC, ...).
	for v in "${KMAKE[@]:1}"; do
		KUNIT_ARGS+=(--make_options "$v")
	done
}

cmd_kunit() {
	local logf=$PZ_LOGS/kunit.log rc t0 accel hide=()
	cmd_setup
	kmake_vars
	kernel_tree
	kunit_args
	# Whether KVM works is probed by booting the demo kernel once (lib/vm.sh); without a kernel
	# yet, assume it does not unless PUZZLEFS_ACCEL=kvm says so.
	accel=${PUZZLEFS_ACCEL:-$(cat "$PZ_CACHE/stamps/kvm-$(uname -r)" 2>/dev/null || echo tcg)}
	if [ "$accel" != kvm ] && [ -e /dev/kvm ]; then
		hide=(unshare --mount --propagation private sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' sh)
	fi
	log "kunit.py ${KUNIT_ARGS[*]:0:6} ... (log: $logf)"
	t0=$(date +%s)
	set +e
	(cd "$KTREE" && "${hide[@]}" python3 tools/testing/kunit/kunit.py "${KUNIT_ARGS[@]}") 2>&1 |
		tee "$logf" >&2
	rc=${PIPESTATUS[0]}
	set -e
	log "kunit.py exited with $rc after $(($(date +%s) - t0))s; full output: $logf"
	grep -E 'Testing complete\.' "$logf" | tail -n 1
	return "$rc"
}
