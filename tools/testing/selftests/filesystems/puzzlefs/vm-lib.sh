# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the in-VM runners (vm-tests.sh, hostile-tests.sh, extras-tests.sh; POSIX sh), which
# the harness copies next to this file: the result lines every runner prints and counts.
#
#   PFS-TEST: ok NAME
#   PFS-TEST: not ok NAME: WHY
#
# run() calls the check agent $A (under $TO: a timeout command, or empty) with its output in
# $TMP/out, and adds the agent's own result lines to the counts.

PASS=0
FAIL=0
ok() { echo "PFS-TEST: ok $1"; PASS=$((PASS + 1)); }
notok() { echo "PFS-TEST: not ok $1: $2"; FAIL=$((FAIL + 1)); }
note() { echo "# $*"; }

# run NAME pfs-check-args...: run the agent, show and count its result lines
run() {
	_name=$1
	shift
	$TO "$A" "$@" </dev/null >"$TMP/out" 2>&1
	_rc=$?
	cat "$TMP/out"
	_p=$(grep -c '^PFS-TEST: ok' "$TMP/out")
	_f=$(grep -c '^PFS-TEST: not ok' "$TMP/out")
	PASS=$((PASS + _p))
	FAIL=$((FAIL + _f))
	if [ "$_rc" != 0 ] && [ "$_f" = 0 ]; then
		notok "$_name" "pfs-check $1 exited with status $_rc"
	fi
	return "$_rc"
}
