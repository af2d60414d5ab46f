# SPDX-License-Identifier: GPL-2.0
#
# `run series [--check] [--per-patch-builds]`: the repository as a patch series against the
# pristine Linux tree, in the form reviewers take it (`git format-patch`, cover letter first).
#
# The series is built in a scratch git repository: a base commit holding the pristine versions
# of the kernel files the series changes, then one commit per row of SERIES_TABLE below, in that
# order, each with its message from scripts/puzzlefs/series/<id>.msg. Every file of the
# repository is either in exactly one patch or listed in SERIES_EXCLUDED with the reason: a new
# file that is in neither stops the series, so that it cannot silently drop code. The third-party
# crates (capnp, hex) are generated from the fetched, checksum-verified crates, the way mainline
# carries rust/syn: imported unchanged, then SPDX identifiers, then our adaptation, then a
# README.md naming origin, version and license.
#
# Then, always: the tree the series produces is compared with the tree `run build` builds (the
# same files, byte for byte, except those SERIES_EXCLUDED keeps out of the series), and
# scripts/checkpatch.pl --strict runs on every patch: an error fails, every warning and check must
# be justified in scripts/puzzlefs/series/checkpatch-justified, and the cover letter lists them.
#
# --check: `git am` the series onto a pristine tree in a scratch folder and build the result (the
# demo configuration; ccache makes the C side cheap, the Rust side is rebuilt, so no warning is
# hidden by a warm tree: any compiler warning fails). --per-patch-builds: build after every patch
# as well (bisectability; about N x 1-4 min).
#
# Output: $PZ_CACHE/series/out/ (printed as the last line); checkpatch reports and build logs in
# $PZ_CACHE/series/reports/. PUZZLEFS_SERIES_SIGNOFF (default "Your Name <you@example.org>")
# is the author and the Signed-off-by of every patch.

SERIES_DIR_REPO=scripts/puzzlefs/series
SERIES_SUBJECT_PREFIX=${PUZZLEFS_SERIES_PREFIX:-RFC PATCH}
SERIES_VERSION=${PUZZLEFS_SERIES_VERSION:-4}
SERIES_SIGNOFF=${PUZZLEFS_SERIES_SIGNOFF:-Your Name <you@example.org>}

# The series, one patch per row, in order: the patch's id (its message is
# scripts/puzzlefs/series/<id>.msg), then what it adds or changes:
#   PATH              a repository file, at its kernel path
#   GLOB              repository files matching a bash pattern (`*` crosses `/`); a file that
#                     several rows match goes to the row with the longest pattern
#   patch:NAME        all of patches/NAME; patch:NAME:PATH only its part that changes PATH
#   crate:NAME:import the crate's src/ as fetched (rust/NAME/src/), unchanged
#   crate:NAME:spdx   an SPDX-License-Identifier line (the crate's license) on each source file
#   crate:NAME:adapt  scripts/puzzlefs/crates/NAME-*.patch, our changes for the kernel
#   crate:NAME:readme rust/NAME/README.md: origin, version, checksum, license, changes
SERIES_TABLE='
bindgen-sched      patch:0004-rust-bindgen-keep-the-layout-of-sched_statistics.patch
task-resched       patch:0104-rust-task-add-cond_resched.patch
capability         rust/kernel/capability.rs patch:0105-rust-capability-module-hook.patch
crypto-sha256      rust/kernel/crypto.rs patch:0003-rust-crypto-sha256-library-binding.patch
zstd               rust/kernel/zstd.rs patch:0106-rust-zstd-decompression-binding.patch
fs-bindings        rust/helpers/vfs.c patch:0101-rust-fs-helpers-hook.patch patch:0102-rust-fs-bindings-includes.patch
fs-param           rust/kernel/fs/param.rs
fs-context         rust/kernel/fs/fs_context.rs
fs-sb              rust/kernel/fs/sb.rs
fs-inode           rust/kernel/fs/inode.rs
fs-dentry          rust/kernel/fs/dentry.rs
fs-dir             rust/kernel/fs/dir.rs
fs-folio           rust/kernel/fs/folio.rs
fs-address-space   rust/kernel/fs/address_space.rs
fs-mount           rust/kernel/fs/mount.rs
fs-xattr           rust/kernel/fs/xattr.rs
fs-ratelimit       rust/kernel/fs/ratelimit.rs
fs-modules         patch:0103-rust-fs-modules.patch rust/kernel/fs/.kunitconfig
hex-import         crate:hex:import
hex-spdx           crate:hex:spdx
hex-readme         crate:hex:readme
capnp-import       crate:capnp:import
capnp-spdx         crate:capnp:spdx
capnp-adapt        crate:capnp:adapt
capnp-readme       crate:capnp:readme
crates-kbuild      patch:0002-rust-build-capnp-and-hex-crates.patch
rust-analyzer      patch:0006-scripts-rust-analyzer-cover-fs-and-fetched-crates.patch
format-errors      fs/puzzlefs/format.rs fs/puzzlefs/format/error.rs
format-json        fs/puzzlefs/format/json.rs fs/puzzlefs/format/oci.rs
format-capnp       fs/puzzlefs/format/metadata.capnp fs/puzzlefs/format/manifest.capnp fs/puzzlefs/format/metadata_capnp.rs fs/puzzlefs/format/manifest_capnp.rs fs/puzzlefs/format/message.rs fs/puzzlefs/format/rootfs.rs
format-compile     fs/puzzlefs/format/tables.rs fs/puzzlefs/format/sort.rs fs/puzzlefs/format/compile.rs
format-seekable    fs/puzzlefs/format/seekable.rs
format-selftest    fs/puzzlefs/format/selftest.rs
driver-blob        fs/puzzlefs/blob.rs
driver-super       fs/puzzlefs/puzzlefs.rs fs/puzzlefs/internal.rs fs/puzzlefs/super_block.rs
driver-inode       fs/puzzlefs/inode.rs fs/puzzlefs/namei.rs
driver-dir         fs/puzzlefs/dir.rs
driver-data        fs/puzzlefs/data.rs
driver-decompress  fs/puzzlefs/decompress.rs
driver-xattr       fs/puzzlefs/xattr.rs
kconfig            fs/puzzlefs/Kconfig fs/puzzlefs/Makefile fs/puzzlefs/.kunitconfig kernel/configs/puzzlefs.config patch:0001-fs-puzzlefs-hook-into-fs-Kconfig-and-Makefile.patch
documentation      Documentation/filesystems/puzzlefs.rst patch:0005-puzzlefs-maintainers-and-documentation-index.patch:Documentation/filesystems/index.rst
maintainers        patch:0005-puzzlefs-maintainers-and-documentation-index.patch:MAINTAINERS
selftests-format   tools/testing/selftests/filesystems/puzzlefs/format-host/*
selftests-vm       tools/testing/selftests/filesystems/puzzlefs/* kernel/configs/puzzlefs-test.config
selftests-hostile  tools/testing/selftests/filesystems/puzzlefs/hostile* tools/testing/selftests/filesystems/puzzlefs/capnp_codec.py
'

# Repository files that are not sent, and why (same pattern rules as above).
SERIES_EXCLUDED='
scripts/puzzlefs/*                      the development pipeline (installs, builds, QEMU boots); crates/ pins the crates the series imports
arch/x86/configs/qemu-busybox-min.config the pipeline'"'"'s QEMU base configuration on top of tinyconfig
kernel/configs/puzzlefs-bench.config    the pipeline'"'"'s demo kernel: the filesystems its benchmark compares with
patches/series                          the pipeline'"'"'s order of patches/; the series orders them by SERIES_TABLE
README.md                               the repository'"'"'s own README
.ci/*                                   the repository'"'"'s CI entry point
.gitignore                              the repository'"'"'s ignore list
'

# --- the table ------------------------------------------------------------------------------

# series_rows TABLE: "id item..." lines without blanks.
series_rows() { printf '%s\n' "$1" | sed -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//' | grep -v '^$' || true; }

# The repository's files: tracked and new ones (not ignored), as they are in the work tree.
series_repo_files() {
	(cd "$PZ_REPO" && git ls-files -z --cached --others --exclude-standard) | tr '\0' '\n' |
		grep -vE '(^|/)(__pycache__|target)/|\.pyc$' | LC_ALL=C sort -u |
		while read -r f; do [ -f "$PZ_REPO/$f" ] && printf '%s\n' "$f"; done
}

# series_claims: fill S_OWNER[file]=id (or "-" for excluded), S_IDS (ordered), S_ITEMS[id];
# die listing every repository file that no row or several equally specific rows claim.
series_claims() {
	# Items are split on blanks; their patterns must not expand to file names here.
	local -
	set -f
	local row id items it f best bestlen n owner lost=() ambiguous=() pats=() owners=()
	declare -gA S_OWNER=() S_ITEMS=() S_EXCL_WHY=()
	S_IDS=()
	while read -r row; do
		id=${row%% *}
		items=${row#* }
		[ -z "${S_ITEMS[$id]+x}" ] || die "series table: id $id appears twice"
		S_IDS+=("$id")
		S_ITEMS[$id]=$items
		for it in $items; do
			case $it in
			patch:*|crate:*) ;;
			*) pats+=("$it"); owners+=("$id") ;;
			esac
		done
	done < <(series_rows "$SERIES_TABLE")
	while read -r row; do
		it=${row%% *}
		pats+=("$it"); owners+=("-")
		S_EXCL_WHY[$it]=${row#* }
	done < <(series_rows "$SERIES_EXCLUDED")
	# Patches of patches/ are claimed by patch: items.
	for id in "${S_IDS[@]}"; do
		for it in ${S_ITEMS[$id]}; do
			case $it in
			patch:*) it=${it#patch:}; S_OWNER[patches/${it%%:*}]=$id ;;
			esac
		done
	done
	while read -r f; do
		[ -n "${S_OWNER[$f]+x}" ] && continue
		best=; bestlen=-1; owner=; n=0
		for i in "${!pats[@]}"; do
			# shellcheck disable=SC2053
			[[ $f == ${pats[$i]} ]] || continue
			if [ ${#pats[$i]} -gt $bestlen ]; then
				best=${pats[$i]}; bestlen=${#pats[$i]}; owner=${owners[$i]}; n=1
			elif [ ${#pats[$i]} -eq $bestlen ] && [ "${owners[$i]}" != "$owner" ]; then
				n=$((n + 1))
			fi
		done
		if [ -z "$best" ]; then
			lost+=("$f")
		elif [ $n -gt 1 ]; then
			ambiguous+=("$f")
		else
			S_OWNER[$f]=$owner
		fi
	done < <(series_repo_files)
	if [ ${#lost[@]} -gt 0 ] || [ ${#ambiguous[@]} -gt 0 ]; then
		[ ${#lost[@]} -gt 0 ] && printf '  in no patch: %s\n' "${lost[@]}" >&2
		[ ${#ambiguous[@]} -gt 0 ] && printf '  in several patches: %s\n' "${ambiguous[@]}" >&2
		die "the series table (SERIES_TABLE in scripts/puzzlefs/lib/series.sh) does not account for every repository file: add each to a patch, or to SERIES_EXCLUDED with the reason"
	fi
	series_check_patches
}

# Every part of every patch that patches/series applies is in the series, and nothing else.
series_check_patches() {
	# Items are split on blanks; their patterns must not expand to file names here.
	local -
	set -f
	local p f id it want missing=()
	declare -A whole=() part=()
	for id in "${S_IDS[@]}"; do
		for it in ${S_ITEMS[$id]}; do
			case $it in
			patch:*:*) it=${it#patch:}; part[${it%%:*}:${it#*:}]=$id ;;
			patch:*) whole[${it#patch:}]=$id ;;
			esac
		done
	done
	for p in $(grep -v '^#' "$PZ_REPO/patches/series"); do
		[ -f "$PZ_REPO/patches/$p" ] || die "patches/series names a missing patch: $p"
		[ -n "${whole[$p]+x}" ] && continue
		for f in $(series_patch_paths "$PZ_REPO/patches/$p"); do
			[ -n "${part[$p:$f]+x}" ] || missing+=("$p ($f)")
		done
	done
	for want in "${!whole[@]}" "${!part[@]}"; do
		grep -qx "${want%%:*}" <(grep -v '^#' "$PZ_REPO/patches/series") ||
			log "series table: ${want%%:*} is not in patches/series: row ${whole[$want]:-${part[$want]:-}} leaves it out"
	done
	if [ ${#missing[@]} -gt 0 ]; then
		printf '  not in the series: %s\n' "${missing[@]}" >&2
		die "the series table does not take every patch of patches/series"
	fi
}

# The files a unified diff changes (its "+++ b/" lines).
series_patch_paths() { sed -n 's#^+++ b/\([^[:space:]]*\).*#\1#p' "$1"; }

# series_patch_section PATCH PATH: the part of a unified diff that changes PATH.
series_patch_section() {
	awk -v want="$2" '
	function flush() { if (have && keep) print prev; have = 0 }
	{
		if (have && $0 ~ /^\+\+\+ /) {
			path = $0; sub(/^\+\+\+ (b\/)?/, "", path); sub(/[ \t].*$/, "", path)
			keep = (path == want); insec = 1
			if (keep) { print prev; print }
			have = 0; next
		}
		flush()
		if ($0 ~ /^--- /) { prev = $0; have = 1; next }
		if (insec && keep) print
	}
	END { flush() }' "$1"
}

# --- the crates -----------------------------------------------------------------------------

series_crate_dir() { # NAME
	local -
	set +f
	local d
	d=$(ls -d "$(crates_dir)/$1-"[0-9]* 2>/dev/null | head -n 1)
	[ -d "$d/src" ] || die "crate $1 is not in $(crates_dir)"
	printf '%s\n' "$d"
}

series_crate_field() { # CRATE_DIR FIELD: a top-level string field of Cargo.toml's [package]
	awk -v k="$2" '/^\[/ { pkg = ($0 == "[package]") } pkg && $1 == k { sub(/^[^=]*= *"/, ""); sub(/" *$/, ""); print; exit }' "$1/Cargo.toml"
}

series_crate_checksum() { # NAME VERSION: from the pinned lock file
	awk -v n="$1" -v v="$2" '/^\[\[package\]\]/ { name = ""; ver = "" } $1 == "name" { name = $3 } $1 == "version" { ver = $3 }
		$1 == "checksum" && name == "\"" n "\"" && ver == "\"" v "\"" { gsub(/"/, "", $3); print $3 }' \
		"$PZ_REPO/scripts/puzzlefs/crates/Cargo.lock"
}

series_crate() { # REPO NAME STAGE
	local -
	set +f
	local repo=$1 name=$2 stage=$3 src dst f license version url sha vcs sub p
	src=$(series_crate_dir "$name")
	dst=$repo/rust/$name
	license=$(series_crate_field "$src" license)
	version=$(series_crate_field "$src" version)
	case $stage in
	import)
		mkdir -p "$dst"
		cp -r "$src/src" "$dst/"
		;;
	spdx)
		[ -n "$license" ] || die "crate $name: no license in Cargo.toml"
		find "$dst/src" -name '*.rs' -print0 | while IFS= read -r -d '' f; do
			{ printf '// SPDX-License-Identifier: %s\n\n' "$license"; cat "$f"; } >"$f.new"
			mv "$f.new" "$f"
		done
		;;
	adapt)
		p=$PZ_REPO/scripts/puzzlefs/crates/$name-no-float-format.patch
		for p in "$PZ_REPO/scripts/puzzlefs/crates/$name"-*.patch; do
			[ -f "$p" ] || die "crate $name: no patch in scripts/puzzlefs/crates/"
			patch -d "$dst" -p1 -s --no-backup-if-mismatch <"$p" || die "crate $name: $(basename "$p") does not apply"
		done
		;;
	readme)
		url=$(series_crate_field "$src" repository)
		sha=$(series_crate_checksum "$name" "$version")
		vcs=$(sed -n 's/.*"sha1": *"\([0-9a-f]*\)".*/\1/p' "$src/.cargo_vcs_info.json" 2>/dev/null || true)
		sub=$(sed -n 's/.*"path_in_vcs": *"\([^"]*\)".*/\1/p' "$src/.cargo_vcs_info.json" 2>/dev/null || true)
		[ -n "$sha" ] || die "crate $name $version: no checksum in scripts/puzzlefs/crates/Cargo.lock"
		{
			printf '# `%s`\n\n' "$name"
			printf 'These source files are the `src/` folder of the Rust `%s` crate,\n' "$name"
			printf 'version %s as published in the Rust crates registry (the sha256 of the `.crate`\n' "$version"
			printf 'file is %s),\n' "$sha"
			printf 'hosted in the <%s> repository' "$url"
			[ -n "$vcs" ] && printf ',\ncommit %s' "$vcs"
			printf '. It is licensed under "%s"\nand only modified to add the SPDX license identifiers' "$license"
			if ls "$PZ_REPO/scripts/puzzlefs/crates/$name"-*.patch >/dev/null 2>&1; then
				printf ' and to build with the\nkernel'"'"'s `core`, which cannot format floating point numbers'
			fi
			printf '.\n\nFor copyright details, please see:\n\n'
			for f in $(cd "$src" && ls LICENSE* COPYING* README* 2>/dev/null); do
				if [ -n "$vcs" ]; then
					printf '    %s/blob/%s/%s%s\n' "${url%/}" "$vcs" "${sub:+$sub/}" "$f"
				else
					printf '    %s (in the published crate)\n' "$f"
				fi
			done
		} >"$dst/README.md"
		;;
	*) die "series table: unknown crate stage $stage" ;;
	esac
}

# --- building the series --------------------------------------------------------------------

# series_apply REPO ID: make the commit of row ID in the scratch repository.
series_apply() {
	# Items are split on blanks; their patterns must not expand to file names here.
	local -
	set -f
	local repo=$1 id=$2 it name path f msg
	msg=$PZ_REPO/$SERIES_DIR_REPO/$id.msg
	[ -f "$msg" ] || die "series: no commit message $SERIES_DIR_REPO/$id.msg"
	for it in ${S_ITEMS[$id]}; do
		case $it in
		patch:*)
			name=${it#patch:}; path=
			if [[ $name == *:* ]]; then path=${name#*:}; name=${name%%:*}; fi
			# What patches/series does not apply is not in the tree either.
			grep -qx "$name" <(grep -v '^#' "$PZ_REPO/patches/series") || continue
			if [ -n "$path" ]; then
				series_patch_section "$PZ_REPO/patches/$name" "$path"
			else
				cat "$PZ_REPO/patches/$name"
			fi | patch -d "$repo" -p1 -s -t --no-backup-if-mismatch ||
				die "series: patches/$name${path:+ ($path)} does not apply in row $id"
			;;
		crate:*)
			it=${it#crate:}
			series_crate "$repo" "${it%%:*}" "${it#*:}"
			;;
		esac
	done
	for f in "${!S_OWNER[@]}"; do
		[ "${S_OWNER[$f]}" = "$id" ] || continue
		[[ $f == patches/* ]] && continue
		mkdir -p "$repo/$(dirname "$f")"
		cp "$PZ_REPO/$f" "$repo/$f"
	done
	git -C "$repo" add -A
	if git -C "$repo" diff --cached --quiet; then
		# A row for work that is not in the repository (yet, or any more) makes no patch.
		log "series: row $id has nothing in the repository: no patch"
		return
	fi
	{ cat "$msg"; printf '\nSigned-off-by: %s\n' "$SERIES_SIGNOFF"; } |
		git -C "$repo" commit -q -F -
	S_DONE+=("$id")
}

# The kernel files the series changes that the pristine tree has: the base commit's content.
series_base_files() {
	# Items are split on blanks; their patterns must not expand to file names here.
	local -
	set -f
	local id it name
	for id in "${S_IDS[@]}"; do
		for it in ${S_ITEMS[$id]}; do
			case $it in
			patch:*)
				name=${it#patch:}; name=${name%%:*}
				grep -qx "$name" <(grep -v '^#' "$PZ_REPO/patches/series") || continue
				series_patch_paths "$PZ_REPO/patches/$name"
				;;
			esac
		done
	done | LC_ALL=C sort -u | while read -r f; do
		[ -f "$KSRC_PRISTINE/$f" ] && printf '%s\n' "$f"
	done
	for f in "${!S_OWNER[@]}"; do
		[ "${S_OWNER[$f]}" != "-" ] && [ -f "$KSRC_PRISTINE/$f" ] && printf '%s\n' "$f"
	done
}

series_git_env() {
	local name=${SERIES_SIGNOFF% <*} email=${SERIES_SIGNOFF##*<}
	email=${email%>}
	# Dated like the repository's last commit, so that one commit gives one series, byte for byte.
	SERIES_DATE=$(git -C "$PZ_REPO" log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)
	export GIT_AUTHOR_NAME=$name GIT_AUTHOR_EMAIL=$email GIT_COMMITTER_NAME=$name \
		GIT_COMMITTER_EMAIL=$email GIT_AUTHOR_DATE=$SERIES_DATE GIT_COMMITTER_DATE=$SERIES_DATE
}

# series_build_repo REPO: the scratch repository with the base commit and one commit per row.
series_build_repo() {
	local repo=$1 f id
	rm -rf "$repo"
	mkdir -p "$repo"
	git -C "$repo" init -q
	git -C "$repo" config core.autocrlf false
	while read -r f; do
		mkdir -p "$repo/$(dirname "$f")"
		cp "$KSRC_PRISTINE/$f" "$repo/$f"
	done < <(series_base_files | LC_ALL=C sort -u)
	git -C "$repo" add -A
	git -C "$repo" commit -q --allow-empty -m "Linux $KERNEL_SERIES (the files the series changes)"
	git -C "$repo" tag base
	S_DONE=()
	for id in "${S_IDS[@]}"; do
		series_apply "$repo" "$id"
	done
}

# The series must give the tree that `run build` builds and `run test` tests.
series_verify_tree() {
	local repo=$1 staged f n=0 bad=() c
	staged=$(mktemp -d)
	mkdir -p "$staged/patches" "$staged/overlay" "$staged/crates"
	tree_stage_patches "$staged/patches"
	tree_stage_overlay "$staged/overlay"
	tree_stage_crates "$staged/crates"
	while read -r f; do
		[ "${S_OWNER[$f]:-}" = "-" ] && continue
		n=$((n + 1))
		if [ -f "$staged/overlay/$f" ]; then
			cmp -s "$staged/overlay/$f" "$repo/$f" || bad+=("$f")
		else
			cmp -s "$staged/patches/$f" "$repo/$f" || bad+=("$f")
		fi
	done < <( (cd "$staged/patches" && find . -type f; cd "$staged/overlay" && find . -type f) |
		sed 's#^\./##' | LC_ALL=C sort -u)
	# The crates: the files the kernel compiles, with the SPDX line (and the blank line after it).
	for c in capnp hex; do
		while read -r f; do
			n=$((n + 1))
			tail -n +3 "$repo/rust/$c/$f" 2>/dev/null | cmp -s - "$staged/crates/rust/$c/$f" || bad+=("rust/$c/$f")
		done < <(cd "$staged/crates/rust/$c" && find src -type f | LC_ALL=C sort)
	done
	rm -rf "$staged"
	if [ ${#bad[@]} -gt 0 ]; then
		printf '  differs from the build tree: %s\n' "${bad[@]}" >&2
		die "the series does not reproduce the tree that run build builds"
	fi
	log "series tree = build tree ($n files compared)"
}

# --- checkpatch -----------------------------------------------------------------------------

# series_checkpatch OUT REPORTS: run checkpatch on every patch (REPORTS/checkpatch-NNNN.txt), and
# write REPORTS/checkpatch-table.txt (counts per patch) and REPORTS/checkpatch-summary.txt (every
# remaining warning and check with its justification, for the cover letter); sets
# SERIES_CP_ERRORS and SERIES_CP_UNJUSTIFIED.
series_checkpatch() {
	local out=$1 reports=$2 p i=0 rep list
	list=$reports/checkpatch-patches.txt
	: >"$list"
	for p in "$out"/*.patch; do
		case $p in *-0000-cover-letter.patch) continue ;; esac
		i=$((i + 1))
		rep=$reports/checkpatch-$(printf '%04d' "$i").txt
		perl "$KSRC_PRISTINE/scripts/checkpatch.pl" --root="$KSRC_PRISTINE" --strict --show-types \
			--color=never "$p" >"$rep" 2>&1 || true
		printf '%s\t%s\t%s\n' "$i" "${S_DONE[$((i - 1))]}" "$(head -n 1 "$PZ_REPO/$SERIES_DIR_REPO/${S_DONE[$((i - 1))]}.msg")" >>"$list"
	done
	python3 - "$reports" "$list" "$PZ_REPO/$SERIES_DIR_REPO/checkpatch-justified" <<'PY'
import fnmatch, re, sys
from collections import OrderedDict
reports, listf, justf = sys.argv[1:4]
patches = [l.rstrip("\n").split("\t") for l in open(listf)]
n = len(patches)
just = []
for l in open(justf):
    if l.startswith("#") or not l.strip():
        continue
    pat, typ, reason = l.split(None, 2)
    just.append((pat, typ, reason.strip()))
def reason(pid, typ):
    for pat, t, r in just:
        if t == typ and fnmatch.fnmatchcase(pid, pat):
            return r, pat
    return None, None
errors = unjust = 0
table, general, specific = [], OrderedDict(), []
for num, pid, subj in patches:
    rep = open("%s/checkpatch-%04d.txt" % (reports, int(num))).read().splitlines()
    found = OrderedDict()
    counts = {"ERROR": 0, "WARNING": 0, "CHECK": 0}
    for k, line in enumerate(rep):
        m = re.match(r"^(ERROR|WARNING|CHECK):([A-Z0-9_]+): (.*)$", line)
        if not m:
            continue
        kind, typ, msg = m.groups()
        counts[kind] += 1
        f = None
        if k + 1 < len(rep):
            fm = re.search(r"FILE: ([^:]+):", rep[k + 1])
            f = fm.group(1) if fm else None
        e = found.setdefault((kind, typ), {"n": 0, "files": OrderedDict(), "msg": re.sub(r"\d+", "N", msg)})
        e["n"] += 1
        if f:
            e["files"][f] = 1
    errors += counts["ERROR"]
    table.append("%02d/%02d %-18s %3d errors %4d warnings %3d checks  %s" % (int(num), n, pid, counts["ERROR"], counts["WARNING"], counts["CHECK"], subj))
    for (kind, typ), e in found.items():
        if kind == "ERROR":
            continue
        r, pat = reason(pid, typ)
        if r is None:
            unjust += 1
            r = "UNJUSTIFIED (fix it, or justify it in scripts/puzzlefs/series/checkpatch-justified)"
        if pat == "*":
            general.setdefault((kind, typ, r), []).append(int(num))
            continue
        files = list(e["files"])
        where = ""
        if files:
            where = " in " + ", ".join(files[:3]) + (" and %d more files" % (len(files) - 3) if len(files) > 3 else "")
        specific.append("- %02d/%02d %s:\n  %s %s x%d%s (\"%s\")\n  -> %s" % (int(num), n, subj, kind, typ, e["n"], where, e["msg"], r))
def ranges(nums):
    out, start = [], None
    for i, x in enumerate(nums):
        if start is None:
            start = x
        if i + 1 == len(nums) or nums[i + 1] != x + 1:
            out.append(str(start) if start == x else "%d-%d" % (start, x))
            start = None
    return ", ".join(out)
summ = []
for (kind, typ, r), nums in general.items():
    summ.append("- %s %s in patches %s:\n  -> %s" % (kind, typ, ranges(nums), r))
summ += specific
if not summ:
    summ = ["(none)"]
# Wrapped for mail: 72 columns, continuation lines indented under their item.
import textwrap
def wrap(item):
    out = []
    for k, line in enumerate(item.split("\n")):
        ind = "  " if k == 0 else ("     " if line.startswith("  ->") else "    ")
        out += textwrap.wrap(line, 72, subsequent_indent=ind, break_long_words=False, break_on_hyphens=False)
    return "\n".join(out)
open(reports + "/checkpatch-summary.txt", "w").write("\n".join(wrap(x) for x in summ) + "\n")
open(reports + "/checkpatch-table.txt", "w").write("\n".join(table) + "\n")
open(reports + "/checkpatch-counts", "w").write("%d %d\n" % (errors, unjust))
PY
	read -r SERIES_CP_ERRORS SERIES_CP_UNJUSTIFIED <"$reports/checkpatch-counts"
}

# --- the cover letter -----------------------------------------------------------------------

# series_cover_letter OUT REPORTS CHECKED: fill in git's cover letter from the template;
# CHECKED says what was checked.
series_cover_letter() {
	local out=$1 reports=$2 checked=$3 cover tmpl=$PZ_REPO/$SERIES_DIR_REPO/cover-letter.txt body crates c d ids
	cover=$(ls "$out"/*-0000-cover-letter.patch)
	[ -f "$tmpl" ] || die "series: no $SERIES_DIR_REPO/cover-letter.txt"
	crates=$(for c in hex capnp; do
		d=$(series_crate_dir "$c")
		printf -- '- %s %s (%s), sha256 %s\n' "$c" "$(series_crate_field "$d" version)" \
			"$(series_crate_field "$d" license)" "$(series_crate_checksum "$c" "$(series_crate_field "$d" version)")"
	done)
	body=$(mktemp)
	# @N:id@ is the number of the patch of row id.
	ids="${S_DONE[*]}"
	awk -v cp="$reports/checkpatch-summary.txt" -v n="${#S_DONE[@]}" -v base="$KERNEL_SERIES" \
		-v pkg="$KERNEL_PKG_VERSION" -v crates="$crates" -v checked="$checked" -v ids="$ids" '
		BEGIN { k = split(ids, id, " ") }
		$0 == "@CHECKPATCH@" { while ((getline l < cp) > 0) print l; next }
		$0 == "@CRATES@" { print crates; next }
		$0 == "@CHECKED@" { print checked; next }
		{
			for (i = 1; i <= k; i++) gsub("@N:" id[i] "@", i)
			gsub(/@NPATCHES@/, n); gsub(/@BASE@/, base); gsub(/@PKG@/, pkg)
			if ($0 ~ /@N:[^@]*@/) { print "series: cover letter: unknown row in " $0 > "/dev/stderr"; bad = 1 }
			print
		}
		END { exit bad }' "$tmpl" >"$body" || die "series: the cover letter names a row that the table does not have"
	# The subject is the template's first line; the rest replaces git's blurb placeholder.
	python3 - "$cover" "$body" <<'PY'
import sys
cover, body = sys.argv[1], sys.argv[2]
lines = open(body).read().split("\n")
subject, text = lines[0], "\n".join(lines[1:]).strip("\n")
c = open(cover).read()
c = c.replace("*** SUBJECT HERE ***", subject, 1).replace("*** BLURB HERE ***", text, 1)
open(cover, "w").write(c)
PY
	rm -f "$body"
}

# --- --check --------------------------------------------------------------------------------

# The demo configuration (what `run build` builds) in OUT, for the tree in KTREE; no check that
# the fragments survived (before the Kconfig patch, CONFIG_PUZZLEFS_FS does not exist yet).
series_config() {
	local out=$1 f frags=()
	mapfile -t frags < <(kernel_fragments demo)
	mkdir -p "$out"
	(
		cd "$KTREE"
		"${KMAKE[@]}" O="$out" tinyconfig
		KCONFIG_CONFIG=$out/.config scripts/kconfig/merge_config.sh -m -O "$out" "$out/.config" \
			$(for f in "${frags[@]}"; do echo "$PZ_REPO/$f"; done)
		"${KMAKE[@]}" O="$out" olddefconfig
	)
}

# series_build LABEL LOG: configure and build the check tree; fails on a compiler warning too.
series_build() {
	local label=$1 logf=$2 t0 rc
	t0=$(date +%s)
	set +e
	# The configuration's messages (Kconfig warns about symbols that a later patch adds) go to a
	# log of their own; the build's log must have no warning.
	rc=0
	if [ ! -f "$KOUT/.pz-series-config" ] || [ "$label" = final ]; then
		series_config "$KOUT" >"${logf%.log}-config.log" 2>&1 && touch "$KOUT/.pz-series-config" || rc=$?
	fi
	[ $rc -eq 0 ] && { "${KMAKE[@]}" -C "$KTREE" O="$KOUT" -j"${PUZZLEFS_JOBS:-2}" bzImage >"$logf" 2>&1 || rc=$?; }
	set -e
	SERIES_BUILD_SECS=$(($(date +%s) - t0))
	if [ $rc -ne 0 ]; then
		SERIES_BUILD_RESULT="FAILED"
	elif grep -qE '(^|[^a-z])warning:' "$logf"; then
		SERIES_BUILD_RESULT="WARNINGS"
	else
		SERIES_BUILD_RESULT="ok"
	fi
}

# series_check OUT REPORTS PER_PATCH: git am onto a pristine tree, build; prints the per-patch
# report; sets SERIES_CHECK_FAILED.
series_check() {
	local out=$1 reports=$2 per_patch=$3 base tree p i=0 n files res changed
	base=$PZ_CACHE/tree/series-$(tree_key)
	# The layout mirrors the pipeline's tree (linux/ and out-demo/ side by side), so that ccache
	# (CCACHE_BASEDIR) hits on the objects `run build` compiled.
	[ -e "$base" ] && base=$(readlink -f "$base")
	tree=$base/linux
	# The pristine files the series changes (others it changes, it created itself).
	files=$(grep -h '^--- a/' "$out"/*.patch | sed 's#^--- a/##' | LC_ALL=C sort -u |
		while read -r f; do [ -f "$KSRC_PRISTINE/$f" ] && printf '%s\n' "$f"; done)
	if [ -e "$base/.ready" ] && [ "$(cat "$base/.base-files")" = "$files" ]; then
		# Back to the pristine state: files the last run added go, the changed ones come back.
		git -C "$tree" am --abort >/dev/null 2>&1 || true
		git -C "$tree" reset -q --hard base
	else
		[ -e "$base/.ready" ] && git -C "$tree" reset -q --hard base 2>/dev/null || true
		rm -rf "$base"
		mkdir -p "$base"
		log "copy the pristine kernel source to $tree"
		cp -a "$KSRC_PRISTINE" "$tree"
		git -C "$tree" init -q
		git -C "$tree" config core.autocrlf false
		# Only the files the series changes are tracked: git am needs them in the index, and
		# the rest of the tree stays as unpacked (untracked) at no cost.
		(cd "$tree" && printf '%s\n' "$files" | git add -f --pathspec-from-file=-)
		git -C "$tree" commit -q -m "Linux $KERNEL_SERIES (pristine)"
		git -C "$tree" tag base
		printf '%s\n' "$files" >"$base/.base-files"
		touch "$base/.ready"
	fi
	KTREE=$tree
	KOUT=$base/out-demo
	rm -f "$KOUT/.pz-series-config"
	SERIES_CHECK_FAILED=0
	n=$(ls "$out"/*.patch | grep -vc -- '-0000-cover-letter.patch')
	: >"$reports/check-table.txt"
	for p in "$out"/*.patch; do
		case $p in *-0000-cover-letter.patch) continue ;; esac
		i=$((i + 1))
		if ! git -C "$tree" am -q --keep-cr "$p" >"$reports/am-$(printf '%04d' "$i").log" 2>&1; then
			cat "$reports/am-$(printf '%04d' "$i").log" >&2
			printf '%02d/%02d does not apply\n' "$i" "$n" >>"$reports/check-table.txt"
			SERIES_CHECK_FAILED=1
			return
		fi
		res="applies"
		if [ "$per_patch" = yes ] && [ "$i" -lt "$n" ]; then
			changed=$(git -C "$tree" diff --name-only HEAD~1 HEAD)
			if ! grep -qvE '^(Documentation/|MAINTAINERS$|tools/testing/|scripts/generate_rust_analyzer\.py$|.*README\.md$)' <<<"$changed"; then
				# Nothing `make bzImage` reads: the previous build stands.
				res="$res, no build input changed"
			else
				# Reconfigure only when Kconfig may see something new.
				grep -qE '(^|/)Kconfig|\.config$' <<<"$changed" && rm -f "$KOUT/.pz-series-config"
				series_build "$i" "$reports/build-$(printf '%04d' "$i").log"
				res="$res, build $SERIES_BUILD_RESULT (${SERIES_BUILD_SECS}s)"
				[ "$SERIES_BUILD_RESULT" = ok ] || SERIES_CHECK_FAILED=1
			fi
			log "patch $i/$n: $res"
		fi
		printf '%02d/%02d %s\n' "$i" "$n" "$res" >>"$reports/check-table.txt"
	done
	echo "am $n" >>"$SERIES_STATUS"
	log "the series applies with git am ($n patches); building the result ..."
	series_build final "$reports/build-final.log"
	if [ "$SERIES_BUILD_RESULT" != ok ]; then
		grep -E 'error|warning:' "$reports/build-final.log" | head -n 20 >&2 || true
		SERIES_CHECK_FAILED=1
	fi
	# The final configuration must have everything the demo kernel has (PUZZLEFS_FS included).
	local f line
	for f in $(kernel_fragments demo); do
		while read -r line; do
			case $line in
			CONFIG_*=n) ;;
			CONFIG_*) grep -qx "$line" "$KOUT/.config" || { log "final build: $f: $line missing"; SERIES_CHECK_FAILED=1; } ;;
			esac
		done <"$PZ_REPO/$f"
	done
	printf '%02d/%02d final tree: build %s (%ss; log %s)\n' "$n" "$n" "$SERIES_BUILD_RESULT" \
		"$SERIES_BUILD_SECS" "$reports/build-final.log" >>"$reports/check-table.txt"
	[ "$SERIES_CHECK_FAILED" -eq 0 ] && echo "build $SERIES_BUILD_SECS" >>"$SERIES_STATUS"
	return 0
}

# --- the command ----------------------------------------------------------------------------

# series_run CHECK(yes|no) PER_PATCH(yes|no): sets SERIES_OUT, SERIES_FAILED; prints the report.
series_run() {
	local check=$1 per_patch=$2 work=$PZ_CACHE/series t0=$SECONDS repo out reports
	repo=$work/repo
	out=$work/out
	reports=$work/reports
	KSRC_PRISTINE=$(kernel_pristine)
	crates_fetch
	mkdir -p "$work"
	# One line per stage that passed, for `run test` (t_series).
	SERIES_STATUS=$work/status
	: >"$SERIES_STATUS"
	series_claims
	series_git_env
	series_build_repo "$repo"
	series_verify_tree "$repo"
	echo "tree ${#S_DONE[@]}" >>"$SERIES_STATUS"
	rm -rf "$out" "$reports"
	mkdir -p "$out" "$reports"
	git -C "$repo" format-patch -q -o "$out" --cover-letter -v "$SERIES_VERSION" \
		--subject-prefix="$SERIES_SUBJECT_PREFIX" base..HEAD
	log "wrote ${#S_DONE[@]} patches and the cover letter in $((SECONDS - t0))s"
	local t1=$SECONDS
	series_checkpatch "$out" "$reports"
	log "checkpatch --strict on ${#S_DONE[@]} patches in $((SECONDS - t1))s: $SERIES_CP_ERRORS errors, $SERIES_CP_UNJUSTIFIED unjustified warnings or checks"
	SERIES_FAILED=0
	[ "$SERIES_CP_ERRORS" -eq 0 ] || SERIES_FAILED=1
	[ "$SERIES_CP_UNJUSTIFIED" -eq 0 ] || SERIES_FAILED=1
	echo "checkpatch $SERIES_CP_ERRORS $SERIES_CP_UNJUSTIFIED" >>"$SERIES_STATUS"
	cat "$reports/checkpatch-table.txt" >&2
	if [ "$SERIES_FAILED" -ne 0 ]; then
		grep -h -B2 -A0 'UNJUSTIFIED' "$reports/checkpatch-summary.txt" >&2 || true
		grep -h -A3 '^ERROR:' "$reports"/checkpatch-0*.txt | head -n 40 >&2 || true
	fi
	if [ "$check" = yes ]; then
		kmake_vars
		t1=$SECONDS
		series_check "$out" "$reports" "$per_patch"
		cat "$reports/check-table.txt" >&2
		log "series check (git am$([ "$per_patch" = yes ] && echo ', a build per patch'), final build) in $((SECONDS - t1))s"
		[ "$SERIES_CHECK_FAILED" -eq 0 ] || SERIES_FAILED=1
	fi
	local checked
	if [ "$check" = yes ] && [ "$SERIES_CHECK_FAILED" -eq 0 ]; then
		checked="Each patch applies with git am and the result builds (x86_64, clang 19,
rustc 1.96, no warnings)"
		[ "$per_patch" = yes ] && checked="$checked; the series builds after every patch"
		checked="$checked."
	else
		checked="(Not checked yet: run \`scripts/puzzlefs/run series --per-patch-builds\`.)"
	fi
	series_cover_letter "$out" "$reports" "$checked"
	grep -q 'PLACEHOLDER' "$(ls "$out"/*-0000-cover-letter.patch)" &&
		log "note: the cover letter still has a PLACEHOLDER section to fill in"
	log "series: $((SECONDS - t0))s in all; reports in $reports"
	SERIES_OUT=$out
}

cmd_series() {
	local check=no per_patch=no
	while [ $# -gt 0 ]; do
		case $1 in
		--check) check=yes ;;
		--per-patch-builds) check=yes; per_patch=yes ;;
		*) die "run series: unknown option $1 (--check, --per-patch-builds)" ;;
		esac
		shift
	done
	cmd_setup
	series_run "$check" "$per_patch"
	[ "$SERIES_FAILED" -eq 0 ] || die "the series has problems (see above)"
	printf '%s\n' "$SERIES_OUT"
}

# t_series: `run test`'s part of the series: written, checked by checkpatch, applied with git am
# to a pristine tree and built once (no per-patch builds: see `run series --per-patch-builds`).
# After `kernel_build demo`, whose objects make the C side of the build ccache hits.
t_series() {
	local logf=$PZ_LOGS/test-series.log st n t0=$SECONDS
	log "patch series (run series --check) ... (log: $logf)"
	set +e
	(series_run yes no) >"$logf" 2>&1
	set -e
	st=$PZ_CACHE/series/status
	n=$(sed -n 's/^tree //p' "$st" 2>/dev/null)
	if [ -n "$n" ]; then
		t_result "series: $n patches hold every repository file and give the tested tree" 1 0
	else
		grep -E 'error|in no patch|in several|differs' "$logf" | head -n 20 >&2 || true
		t_result "series: every repository file in a patch (log $logf)" 0 1
		return
	fi
	if grep -qx 'checkpatch 0 0' "$st"; then
		t_result "series: checkpatch --strict, 0 errors, every warning justified" 1 0
	else
		grep -B2 'UNJUSTIFIED' "$PZ_CACHE/series/reports/checkpatch-summary.txt" | head -n 20 >&2 || true
		t_result "series: checkpatch --strict (log $logf)" 0 1
	fi
	if grep -q '^am ' "$st"; then
		t_result "series: git am onto pristine Linux $KERNEL_SERIES" 1 0
	else
		tail -n 20 "$logf" >&2 || true
		t_result "series: git am onto pristine Linux $KERNEL_SERIES (log $logf)" 0 1
		return
	fi
	if grep -q '^build ' "$st"; then
		t_result "series: the result builds, no warnings" 1 0
	else
		tail -n 30 "$PZ_CACHE/series/reports/build-final.log" >&2 || true
		t_result "series: the result builds, no warnings (log $PZ_CACHE/series/reports/build-final.log)" 0 1
	fi
	log "series done in $((SECONDS - t0))s"
}
