#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# PuzzleFS hostile-image tests (busybox ash / POSIX sh), run in the guest.
#
#   hostile-tests.sh DATA
#
# DATA is the staging folder built by build-images.sh; hostile.py wrote the
# mutated images under DATA/hostile/ and the case lists DATA/hostile.txt and
# DATA/hostile-scale.txt (formats: see hostile.py).
#
# For each case of hostile.txt: mount it (the agent's mount-errno, killed
# after PFS_HOSTILE_MOUNT_TIMEOUT s), check the outcome against EXPECT, and if
# it mounted, crawl the whole tree (the agent's crawl: readdir, lstat,
# readlink, xattrs, every file read, a few mapped; killed after
# PFS_HOSTILE_CRAWL_TIMEOUT s), do the READS, unmount. One result line per
# case: "PFS-TEST: ok hostile/CASE" or "PFS-TEST: not ok hostile/CASE: WHY";
# a process that does not die on SIGKILL within 5 s is a hang: the case fails
# and the run goes on (each case has its own mount point).
#
# Scale cases (hostile-scale.txt), KIND bound: the mount must take at most
#   PFS_SCALE_BASE_S + PFS_SCALE_S_PER_MIB x (MiB of metadata)   seconds
# (default 10 + 3 s/MiB: TCG with the debug kernel), and while mounted the
# kernel memory it holds, measured as the growth of MemTotal - MemFree -
# Buffers - Cached (slab, vmalloc, page tables, large kmallocs; page cache
# excluded) after dropping caches, must be at most
#   PFS_SCALE_MEM_FACTOR x metadata bytes + PFS_SCALE_MEM_SLACK_MIB   (4x + 64 MiB;
# the slack covers KASAN's quarantine and allocator noise); refusals are timed
# too. KIND kill: the mount runs in the background and gets SIGKILL after
# PFS_SCALE_KILL_AFTER s (default 1, or a third of the same image's measured
# mount time if shorter); the process must be gone within 5 s and the mount
# point must not be mounted.
#
# The last lines are
#   # hostile: N cases: X mounted, Y refused (EUCLEAN a, EINVAL b, ...), Z timeouts
#   # hostile: P passed, F failed in S s
# Nothing printed here may look like a kernel report (the harness scans the
# console for Oops, BUG:, WARNING:, KASAN, Call Trace:).

FSTYPE=puzzlefs
DATA=${1:?usage: hostile-tests.sh DATA}
DATA=$(cd "$DATA" && pwd)
MOUNT_TO=${PFS_HOSTILE_MOUNT_TIMEOUT:-20}
CRAWL_TO=${PFS_HOSTILE_CRAWL_TIMEOUT:-30}
MAX_ENTRIES=${PFS_HOSTILE_MAX_ENTRIES:-20000}
MAX_BYTES=${PFS_HOSTILE_MAX_BYTES:-33554432}
E_COMPRESSED=${PFS_E_COMPRESSED:-EOPNOTSUPP}
SCALE_BASE_S=${PFS_SCALE_BASE_S:-10}
SCALE_S_PER_MIB=${PFS_SCALE_S_PER_MIB:-3}
SCALE_MEM_FACTOR=${PFS_SCALE_MEM_FACTOR:-4}
SCALE_MEM_SLACK_MIB=${PFS_SCALE_MEM_SLACK_MIB:-64}
SCALE_KILL_AFTER=${PFS_SCALE_KILL_AFTER:-1}
SCALE_MAX_ENTRIES=${PFS_SCALE_MAX_ENTRIES:-2000}
SCALE_CRAWL_TO=${PFS_SCALE_CRAWL_TIMEOUT:-60}
# Cases run in PFS_HOSTILE_JOBS parallel parts (default: the CPU count), the
# scale cases one at a time afterwards. A part is this script run again with
# PFS_HOSTILE_PART=i and PFS_HOSTILE_TMP set.
JOBS=${PFS_HOSTILE_JOBS:-$(nproc 2>/dev/null || echo 1)}
PART=${PFS_HOSTILE_PART:-}
ROOT=/mnt/pfs-hostile${PART:+/p$PART}
TMP=${PFS_HOSTILE_TMP:-${TMPDIR:-/tmp}/pfs-hostile.$$}${PART:+/w$PART}
mkdir -p "$ROOT" "$TMP" || exit 1
# A FIFO nobody writes to: "read -t" on it is a sleep without a fork (forks
# are what costs most here under TCG with a debug kernel).
mkfifo "$TMP/idle" && exec 4<>"$TMP/idle" || exit 1
nap() { read -r -t "$1" _ <&4; }

if [ -n "${PFS_AGENT:-}" ]; then
	A=$PFS_AGENT
elif [ -x "$DATA/bin/pfs-check" ]; then
	A="$DATA/bin/pfs-check"
else
	A=$(command -v pfs-check) || { echo "PFS-TEST: not ok hostile-setup: no pfs-check"; exit 1; }
fi

NCASES=0
MOUNTED=0
REFUSED=0
TIMEOUTS=0
: >"$TMP/errnos"

# ok, notok, note and the PASS/FAIL counts
. "$(dirname "$0")/vm-lib.sh"

# NOW: centiseconds since boot (no fork)
now() {
	read -r _now_up _ </proc/uptime
	_now_c=${_now_up#*.}
	NOW=$((${_now_up%.*} * 100 + ${_now_c#0}))
}
now
T0=$NOW
# CS: centiseconds $1 as "S.CC" (a variable, not a subshell: no fork)
cs() {
	_f=$(($1 % 100))
	[ "$_f" -lt 10 ] && _f=0$_f
	CS=$(($1 / 100)).$_f
}

# the state letter of a process from /proc/PID/stat ("" when gone)
pstate() {
	_st=
	[ -r "/proc/$1/stat" ] || return
	read -r _line <"/proc/$1/stat" 2>/dev/null || return
	_line=${_line##*) }
	_st=${_line%% *}
}

# bounded SECS OUT CMD...: run CMD in the background with its output in OUT,
# SIGKILL it after SECS seconds. RC: its exit status, 124 if killed, 125 if it
# survived SIGKILL for 5 s (it is left behind, a hang).
bounded() {
	_lim=$(($1 * 100))
	_o=$2
	shift 2
	"$@" </dev/null >"$_o" 2>&1 4>&- &
	_pid=$!
	now
	_t0=$NOW
	_n=0
	while :; do
		pstate "$_pid"
		case "$_st" in "" | Z | X) break ;; esac
		now
		if [ $((NOW - _t0)) -ge "$_lim" ]; then
			kill -9 "$_pid" 2>/dev/null
			_k=$NOW
			while now && [ $((NOW - _k)) -lt 500 ]; do
				pstate "$_pid"
				case "$_st" in "" | Z | X) wait "$_pid" 2>/dev/null; RC=124; return ;; esac
				nap 0.1
			done
			RC=125
			return
		fi
		# poll often at first: most calls take a fraction of a second
		case $_n in 0 | 1 | 2 | 3 | 4) nap 0.01 ;; 5 | 6 | 7 | 8 | 9) nap 0.03 ;; *) nap 0.1 ;; esac
		_n=$((_n + 1))
	done
	wait "$_pid"
	RC=$?
}

is_mounted() {
	while read -r _d _m _r; do
		[ "$_m" = "$1" ] && return 0
	done </proc/mounts
	return 1
}

# umnt MNT: unmount (bounded); echoes nothing, sets UMOUNT_ERR on failure
umnt() {
	UMOUNT_ERR=
	bounded 30 "$TMP/umount" umount "$1"
	if [ "$RC" != 0 ] || is_mounted "$1"; then
		UMOUNT_ERR="umount failed (rc $RC)"
		bounded 10 "$TMP/umount" umount -l "$1"
	fi
}

# expected EXPECT OUTCOME: whether OUTCOME (mounted or an errno name) is one
# of the "|"-separated outcomes of EXPECT ("ok" = mounted, "any" = anything)
expected() {
	[ "$1" = any ] && return 0
	_old=$IFS
	IFS='|'
	for _x in $1; do
		if [ "$_x" = "$2" ] || { [ "$_x" = ok ] && [ "$2" = mounted ]; }; then
			IFS=$_old
			return 0
		fi
	done
	IFS=$_old
	return 1
}

# do_reads CASE MNT READS: the READS field (FILE:EXPECT[:OFF:LEN],...);
# sets READ_ERR to the first failure
do_reads() {
	READ_ERR=
	echo "$3" | tr ',' '\n' >"$TMP/reads"
	_i=0
	while IFS=: read -r _f _e _off _len; do
		[ -n "$_f" ] || continue
		_i=$((_i + 1))
		[ "$_e" = EOPNOTSUPP ] && [ "$E_COMPRESSED" != EOPNOTSUPP ] && _e=any
		if [ "$_e" = any ]; then
			bounded "$CRAWL_TO" "$TMP/read" "$A" read-errno "$1/$_i" ok "$2$_f"
			[ "$RC" -ge 124 ] && READ_ERR="read $_f: timeout" && return
			continue
		fi
		if [ -n "$_off" ]; then
			bounded "$CRAWL_TO" "$TMP/read" "$A" read-errno "$1/$_i" "$_e" "$2$_f" "$_off" "$_len"
		else
			bounded "$CRAWL_TO" "$TMP/read" "$A" read-errno "$1/$_i" "$_e" "$2$_f"
		fi
		if [ "$RC" -ge 124 ]; then
			READ_ERR="read $_f: timeout"
			return
		fi
		if ! grep -q '^PFS-TEST: ok' "$TMP/read"; then
			READ_ERR="read $_f: $(grep -m1 '^PFS-TEST: not ok' "$TMP/read" | sed 's/^PFS-TEST: not ok [^:]*: //')"
			return
		fi
	done <"$TMP/reads"
}

# mount_case CASE EXPECT MNT OPTS MOUNT_TIMEOUT: mount (kept when it
# succeeds, expected or not, so that it is crawled); sets OUTCOME (mounted,
# an errno name, timeout, hang) and WHY (non-empty when EXPECT is not met)
mount_case() {
	WHY=
	bounded "$5" "$TMP/mount" "$A" mount-errno "$1" any "$FSTYPE" "$3" "$4"
	case "$RC" in
	124)
		OUTCOME=timeout
		TIMEOUTS=$((TIMEOUTS + 1))
		WHY="mount did not end within $5 s (killed)"
		is_mounted "$3" && umnt "$3"
		return
		;;
	125)
		OUTCOME=hang
		TIMEOUTS=$((TIMEOUTS + 1))
		WHY="mount did not end within $5 s and survived SIGKILL"
		return
		;;
	esac
	OUTCOME=
	while read -r _l; do
		case "$_l" in
		"# mount/$1: mounted") OUTCOME=mounted ;;
		"# mount/$1: failed with "*) _x=${_l#"# mount/$1: failed with "} && OUTCOME=${_x%% *} ;;
		esac
	done <"$TMP/mount"
	if [ "$OUTCOME" = mounted ]; then
		MOUNTED=$((MOUNTED + 1))
	else
		[ -n "$OUTCOME" ] || OUTCOME="agent-rc$RC"
		REFUSED=$((REFUSED + 1))
		echo "$OUTCOME" >>"$TMP/errnos"
	fi
	expected "$2" "$OUTCOME" || WHY="$OUTCOME, expected $2"
}

# crawl_case CASE MNT [ARGS]: crawl the mount; sets CRAWL_ERR, CRAWL_LINE
crawl_case() {
	_c=$1
	_m=$2
	shift 2
	CRAWL_ERR=
	bounded "$CRAWL_TO" "$TMP/crawl" "$A" crawl "$_c" "$_m" "$@"
	CRAWL_LINE=
	_pass=
	_fail=
	while read -r _l; do
		case "$_l" in
		"# crawl/$_c: "*) [ -z "$CRAWL_LINE" ] && CRAWL_LINE=${_l#"# crawl/$_c: "} ;;
		"PFS-TEST: ok "*) _pass=1 ;;
		"PFS-TEST: not ok crawl/$_c: "*) [ -z "$_fail" ] && _fail=${_l#"PFS-TEST: not ok crawl/$_c: "} ;;
		esac
	done <"$TMP/crawl"
	case "$RC" in
	124) TIMEOUTS=$((TIMEOUTS + 1)) && CRAWL_ERR="crawl did not end within $CRAWL_TO s" ;;
	125) TIMEOUTS=$((TIMEOUTS + 1)) && CRAWL_ERR="crawl did not end within $CRAWL_TO s and survived SIGKILL" ;;
	*)
		if [ -z "$_pass" ]; then
			CRAWL_ERR="crawl: ${_fail:-exit status $RC}"
		fi
		;;
	esac
}

# --- the cases of hostile.txt ----------------------------------------------

# One mount point, replaced after a case that may have left something on it
# (a mount that did not end).
N=0
fresh_mnt() {
	N=$((N + 1))
	mnt="$ROOT/$N"
	mkdir -p "$mnt"
}

# run_cases LIST: every case of LIST
run_cases() {
	fresh_mnt
	while read -r c gen oci dg exp reads rest; do
		[ -n "$c" ] || continue
		NCASES=$((NCASES + 1))
		now
		t=$NOW
		mount_case "$c" "$exp" "$mnt" "oci_root_dir=$DATA/$oci,image_manifest=$dg" "$MOUNT_TO"
		err=$WHY
		detail=$OUTCOME
		if [ "$OUTCOME" = mounted ]; then
			crawl_case "$c" "$mnt" --max-entries "$MAX_ENTRIES" --max-bytes "$MAX_BYTES"
			[ -z "$err" ] && err=$CRAWL_ERR
			detail="mounted; crawl: $CRAWL_LINE"
			if [ -z "$CRAWL_ERR" ] && [ "${reads:--}" != - ]; then
				do_reads "$c" "$mnt" "$reads"
				[ -z "$err" ] && err=$READ_ERR
			fi
			umnt "$mnt"
			[ -z "$err" ] && err=$UMOUNT_ERR
		fi
		now
		el=$((NOW - t))
		if [ -z "$err" ]; then
			ok "hostile/$c"
		else
			notok "hostile/$c" "$err"
			[ -s "$TMP/crawl" ] && [ "$OUTCOME" = mounted ] && grep '^# ' "$TMP/crawl" | head -n 5
		fi
		# one detail line per named case (random ones only when they mount slowly)
		case "$c" in
		*-rand-*) [ "$el" -ge 300 ] && cs "$el" && note "$c: $detail ($CS s)" ;;
		*) cs "$el" && note "$c: $detail ($CS s)" ;;
		esac
		case "$OUTCOME:$UMOUNT_ERR" in
		timeout:* | hang:* | *:?*) fresh_mnt ;;
		esac
		UMOUNT_ERR=
	done <"$1"
}

if [ -n "$PART" ]; then
	# a part: its cases, then its counts for the parent
	run_cases "$TMP/../part.$PART"
	echo "$PASS $FAIL $NCASES $MOUNTED $REFUSED $TIMEOUTS" >"$TMP/../counts.$PART"
	cat "$TMP/errnos" >"$TMP/../errnos.$PART"
	exit 0
fi

if [ -f "$DATA/hostile.txt" ]; then
	grep -v '^#' "$DATA/hostile.txt" >"$TMP/cases"
	note "hostile: $(grep -c . "$TMP/cases") cases from $DATA/hostile.txt in $JOBS parallel parts," \
		"mount timeout $MOUNT_TO s, crawl timeout $CRAWL_TO s"
else
	: >"$TMP/cases"
	note "hostile: no $DATA/hostile.txt"
fi
if [ "$JOBS" -gt 1 ]; then
	awk -v n="$JOBS" -v d="$TMP" '{ print > (d "/part." (NR % n)) }' "$TMP/cases"
	_i=0
	_pids=
	while [ "$_i" -lt "$JOBS" ]; do
		touch "$TMP/part.$_i"
		PFS_HOSTILE_PART=$_i PFS_HOSTILE_TMP=$TMP PFS_AGENT=$A sh "$0" "$DATA" 4>&- &
		_pids="$_pids $!"
		_i=$((_i + 1))
	done
	for _p in $_pids; do wait "$_p"; done
	_i=0
	while [ "$_i" -lt "$JOBS" ]; do
		if [ -s "$TMP/counts.$_i" ]; then
			read -r _a _b _c _d _e _f <"$TMP/counts.$_i"
			PASS=$((PASS + _a))
			FAIL=$((FAIL + _b))
			NCASES=$((NCASES + _c))
			MOUNTED=$((MOUNTED + _d))
			REFUSED=$((REFUSED + _e))
			TIMEOUTS=$((TIMEOUTS + _f))
			cat "$TMP/errnos.$_i" >>"$TMP/errnos"
		else
			notok "hostile/part-$_i" "part $_i of the cases did not finish"
		fi
		_i=$((_i + 1))
	done
else
	run_cases "$TMP/cases"
fi

# --- scale cases --------------------------------------------------------------

# kernel memory not in the page cache, in KiB
kmem() {
	awk '/^MemTotal:/ { t = $2 } /^MemFree:/ { f = $2 } /^Buffers:/ { b = $2 } /^Cached:/ { c = $2 }
		END { print t - f - b - c }' /proc/meminfo
}
settle() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 1
	echo 3 >/proc/sys/vm/drop_caches
}

if [ -f "$DATA/hostile-scale.txt" ]; then
	grep -v '^#' "$DATA/hostile-scale.txt" >"$TMP/scale"
	note "hostile: $(grep -c . "$TMP/scale") scale cases; budgets: mount <= $SCALE_BASE_S s +" \
		"$SCALE_S_PER_MIB s/MiB of metadata, memory <= $SCALE_MEM_FACTOR x metadata +" \
		"$SCALE_MEM_SLACK_MIB MiB"
else
	: >"$TMP/scale"
fi
: >"$TMP/mount-times"
while read -r c gen oci dg exp meta kind rest; do
	[ -n "$c" ] || continue
	NCASES=$((NCASES + 1))
	fresh_mnt
	o="oci_root_dir=$DATA/$oci,image_manifest=$dg"
	mib=$(((meta + 1048575) / 1048576))
	if [ "$kind" = kill ]; then
		# the same image's mount time, if a bound case measured it
		prev=$(awk -v d="$dg" '$1 == d { print $2 }' "$TMP/mount-times" | head -n1)
		after=$((SCALE_KILL_AFTER * 100))
		[ -n "$prev" ] && [ $((prev / 3)) -lt "$after" ] && after=$((prev / 3))
		[ "$after" -lt 5 ] && after=5
		"$A" mount-errno "$c" any "$FSTYPE" "$mnt" "$o" </dev/null >"$TMP/kill" 2>&1 &
		pid=$!
		cs "$after"
		nap "$CS"
		now
		t=$NOW
		kill -9 "$pid" 2>/dev/null
		gone=
		while now && [ $((NOW - t)) -lt 500 ]; do
			pstate "$pid"
			case "$_st" in "" | Z | X) gone=$((NOW - t)); break ;; esac
			nap 0.05
		done
		if [ -z "$gone" ]; then
			TIMEOUTS=$((TIMEOUTS + 1))
			notok "scale/$c" "the mount survived SIGKILL for 5 s"
			# let it end before the next case, if it does
			bounded 300 "$TMP/wait" sh -c "while [ -d /proc/$pid ]; do sleep 1; done"
		else
			wait "$pid" 2>/dev/null
			if is_mounted "$mnt"; then
				umnt "$mnt"
				ok "scale/$c"
				cs "$after"
				note "$c: the mount finished before SIGKILL at $CS s: nothing to check (image too small for this kernel)"
			else
				ok "scale/$c"
				cs "$gone"
				_g=$CS
				cs "$after"
				note "$c: SIGKILL at $CS s into the mount; the process was gone $_g s later, nothing mounted"
			fi
		fi
		rmdir "$mnt" 2>/dev/null
		continue
	fi
	budget=$((SCALE_BASE_S + SCALE_S_PER_MIB * meta / 1048576))
	membudget=$((SCALE_MEM_FACTOR * meta / 1024 + SCALE_MEM_SLACK_MIB * 1024))
	settle
	m0=$(kmem)
	now
	t=$NOW
	mount_case "$c" "$exp" "$mnt" "$o" $((budget + 5))
	now
	el=$((NOW - t))
	err=$WHY
	echo "$dg $el" >>"$TMP/mount-times"
	[ -z "$err" ] && [ "$el" -gt $((budget * 100)) ] &&
		cs "$el" && err="mount took $CS s, budget $budget s for $mib MiB of metadata"
	cs "$el"
	detail="$OUTCOME in $CS s (budget $budget s, $meta bytes of metadata)"
	if [ "$OUTCOME" = mounted ]; then
		settle
		m1=$(kmem)
		d=$((m1 - m0))
		detail="$detail; kernel memory +$((d / 1024)) MiB (budget $((membudget / 1024)) MiB)"
		[ -z "$err" ] && [ "$d" -gt "$membudget" ] &&
			err="mount holds $((d / 1024)) MiB of kernel memory, budget $((membudget / 1024)) MiB ($SCALE_MEM_FACTOR x $mib MiB + $SCALE_MEM_SLACK_MIB)"
		_cto=$CRAWL_TO
		CRAWL_TO=$SCALE_CRAWL_TO
		crawl_case "$c" "$mnt" --max-entries "$SCALE_MAX_ENTRIES" --max-bytes 1048576
		CRAWL_TO=$_cto
		[ -z "$err" ] && err=$CRAWL_ERR
		detail="$detail; crawl: $CRAWL_LINE"
		now
		t=$NOW
		umnt "$mnt"
		[ -z "$err" ] && err=$UMOUNT_ERR
		now
		cs $((NOW - t))
		detail="$detail; umount $CS s"
	fi
	if [ -z "$err" ]; then ok "scale/$c"; else notok "scale/$c" "$err"; fi
	note "$c: $detail"
	rmdir "$mnt" 2>/dev/null
done <"$TMP/scale"

now
el=$((NOW - T0))
errs=$(sort "$TMP/errnos" | uniq -c | awk '{ printf "%s%s %s", (n++ ? ", " : ""), $2, $1 }')
note "hostile: $NCASES cases: $MOUNTED mounted, $REFUSED refused (${errs:-none}), $TIMEOUTS timeouts"
cs "$el"
note "hostile: $PASS passed, $FAIL failed in $CS s"
rm -rf "$TMP"
[ "$FAIL" = 0 ]
