#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The report of `scripts/puzzlefs/run bench` (stdlib only).

  report.py CONSOLE_LOG CASES JSON_OUT [KEY=VALUE ...]

Collects the "PFS-BENCH {json}" lines of the guest's console log, checks that every case of
CASES (the data disk's cases.txt) passed its byte check or was declared unsupported, writes the
raw records and medians/min/max to JSON_OUT (with the KEY=VALUE pairs as metadata), prints one
table per tree (median and ratio to EROFS uncompressed; then min-max) and exits non-zero when a
byte check failed, a filesystem could not be measured, the guest did not finish, or the kernel
reported a bug.
"""

import json
import re
import statistics
import sys

REF = "erofs"

# (label, metric, phase, field, unit)
ROWS = [
    ("full-tree read, cold", "full", "cold", "ms", "ms"),
    ("full-tree read, warm", "full", "warm", "ms", "ms"),
    ("lstat walk, cold", "lstat", "cold", "ms", "ms"),
    ("lstat walk, warm", "lstat", "warm", "ms", "ms"),
    ("random whole files, cold", "random", "cold", "ms", "ms"),
    ("random whole files, warm", "random", "warm", "ms", "ms"),
    ("4 KiB preads (files >= 1 MiB), cold", "pread", "cold", "ms", "ms"),
    ("4 KiB preads (files >= 1 MiB), warm", "pread", "warm", "ms", "ms"),
    ("mount + root readdir (TCG!)", "mount", "cold", "ms", "ms"),
    ("kernel CPU, full read cold", "full", "cold", "sys_ms", "ms"),
    ("kernel CPU, full read warm", "full", "warm", "sys_ms", "ms"),
    ("all CPU, full read cold", "full", "cold", "cpu_ms", "ms"),
    ("page cache after mount", "mount", "cold", "cache_kb", "MiB"),
    ("slab after mount", "mount", "cold", "slab_kb", "MiB"),
    ("page cache after cold full read", "full", "cold", "cache_kb", "MiB"),
    ("slab after cold full read", "full", "cold", "slab_kb", "MiB"),
]

BAD = re.compile(r"(Oops|BUG:|WARNING:|KASAN|Kernel panic|kernel BUG|general protection fault|"
                 r"rust_panic|panicked at|Call Trace:|INFO: task .* blocked)")


def read_cases(path):
    cases = []
    for line in open(path):
        f = line.split()
        if f and not f[0].startswith("#"):
            cases.append({"tree": f[0], "fs": f[1], "spec": f[2],
                          "unsupported": f[3] if len(f) > 3 else None})
    return cases


def parse(log):
    recs, bad_lines, reports, done, clock = [], 0, [], False, "?"
    for line in open(log, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("PFS-BENCH {"):
            try:
                recs.append(json.loads(line[len("PFS-BENCH "):]))
            except ValueError:
                bad_lines += 1
        elif line.startswith("PFS-BENCH-CLOCKSOURCE "):
            clock = line.split(" ", 1)[1].strip()
        elif line.startswith("PFS-BENCH-DONE"):
            done = True
        elif BAD.search(line):
            reports.append(line)
    return recs, bad_lines, reports, done, clock


SHORT = {"puzzlefs": "pfs", "puzzlefs-drop": "pfs-drop", "puzzlefs-zstd": "pfs-zstd",
         "puzzlefs-verity": "pfs-verity", "squashfs": "sqfs", "squashfs-zstd": "sqfs-zstd"}
LW, CW = 42, 12


def fmt_ratio(r):
    if r is None:
        return ""
    return " x%.2f" % r if r < 10 else (" x%.1f" % r if r < 100 else " x%.0f" % r)


def fmt_val(v, unit):
    if v is None:
        return "-"
    if unit == "MiB":
        v = v / 1024.0
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    log, cases_path, out = argv[:3]
    meta = dict(a.split("=", 1) for a in argv[3:] if "=" in a)
    cases = read_cases(cases_path)
    if meta.get("only"):
        keep = meta["only"].split(",")
        cases = [c for c in cases if c["fs"] in keep]
    recs, bad_lines, reports, done, clock = parse(log)
    meta["guest_clocksource"] = clock
    problems = []
    if not done:
        problems.append("the guest did not reach PFS-BENCH-DONE")
    if bad_lines:
        problems.append("%d PFS-BENCH lines could not be parsed (interleaved console output?)"
                        % bad_lines)
    for r in reports:
        problems.append("kernel report: " + r)

    # Per case: ok (byte check passed), unsupported, fail, or missing.
    status = {}
    for c in cases:
        status[(c["tree"], c["fs"])] = {"status": "missing", "why": "no byte check record"}
    for r in recs:
        k = (r.get("tree"), r.get("fs"))
        if k not in status:
            continue
        if r.get("metric") == "verify":
            if r.get("status") == "ok" and status[k]["status"] == "missing":
                status[k] = {"status": "ok"}
            elif r.get("status") != "ok":
                status[k] = {"status": "fail", "why": r.get("why", "")}
        elif r.get("metric") == "status":
            if r.get("phase") == "unsupported":
                status[k] = {"status": "unsupported", "why": r.get("why", "")}
            else:
                status[k] = {"status": "fail", "why": r.get("why", "")}
    for c in cases:
        k = (c["tree"], c["fs"])
        st = status[k]
        if st["status"] == "unsupported" and not c["unsupported"]:
            st["status"] = "fail"
        if st["status"] in ("fail", "missing"):
            problems.append("%s/%s: %s: %s" % (k[0], k[1], st["status"], st.get("why", "")))

    # Samples of repetitions >= 1.
    samples = {}
    for r in recs:
        if r.get("rep", 0) < 1 or r.get("metric") in ("verify", "status"):
            continue
        if status.get((r.get("tree"), r.get("fs")), {}).get("status") != "ok":
            continue
        if "sys_ms" in r and "user_ms" in r:
            r["cpu_ms"] = r["sys_ms"] + r["user_ms"]
        for field in ("ms", "sys_ms", "user_ms", "cpu_ms", "cache_kb", "slab_kb", "mount_ms",
                      "readdir_ms", "open_ms"):
            if field in r:
                samples.setdefault((r["tree"], r["fs"], r["metric"], r["phase"], field),
                                   []).append(r[field])
    summary = {}
    for k, v in samples.items():
        summary[k] = {"n": len(v), "median": statistics.median(v), "min": min(v), "max": max(v)}
    for k, s in summary.items():
        ref = summary.get((k[0], REF) + k[2:])
        # Memory deltas of EROFS below 1 MiB are noise, not a base for a ratio.
        small = k[4] in ("cache_kb", "slab_kb") and ref and abs(ref["median"]) < 1024
        s["ratio_erofs"] = (s["median"] / ref["median"]) if ref and ref["median"] and not small else None

    trees = []
    for c in cases:
        if c["tree"] not in trees:
            trees.append(c["tree"])
    info = {}
    for r in recs:
        if r.get("metric") == "verify" and r.get("status") == "ok":
            info.setdefault(r["tree"], r)

    lines, md = [], []
    for t in trees:
        fss = [c["fs"] for c in cases if c["tree"] == t]
        i = info.get(t)
        lines.append("")
        lines.append("tree %s: %s" % (t, "%d files, %.1f MiB, %d entries" % (
            i["files"], i["bytes"] / 1048576.0, i["entries"]) if i else "?"))
        md.append("\n### %s\n" % lines[-1])
        md.append("| metric | " + " | ".join(fss) + " |")
        md.append("|---" * (len(fss) + 1) + "|")
        for title, key in (("median (x ratio to %s)" % REF, "median"), ("min-max", "spread")):
            lines.append("%-*s" % (LW, title) + "".join(" %*s" % (CW - 1, SHORT.get(f, f)) for f in fss))
            for label, metric, phase, field, unit in ROWS:
                if not any((t, f, metric, phase, field) in summary for f in fss):
                    continue
                cells = []
                for f in fss:
                    st = status[(t, f)]["status"]
                    s = summary.get((t, f, metric, phase, field))
                    if st != "ok":
                        cells.append({"unsupported": "unsupp."}.get(st, "FAIL"))
                    elif s is None:
                        cells.append("-")
                    elif key == "median":
                        cells.append(fmt_val(s["median"], unit) + fmt_ratio(s["ratio_erofs"]))
                    else:
                        cells.append(fmt_val(s["min"], unit) + "-" + fmt_val(s["max"], unit))
                name = "%s (%s)" % (label, unit)
                lines.append("%-*s" % (LW, name) + "".join(" %*s" % (CW - 1, c) for c in cells))
                if key == "median":
                    md.append("| %s | %s |" % (name, " | ".join(c.replace(" x", " ×") for c in cells)))
            if key == "median":
                ext = summary.get((t, "ext4", "full", "cold", "cache_kb"))
                if ext and ext["median"] > 0:
                    cells = []
                    for f in fss:
                        s = summary.get((t, f, "full", "cold", "cache_kb"))
                        cells.append("%.2f" % (s["median"] / ext["median"]) if s else "-")
                    name = "page cache after cold read / ext4's"
                    lines.append("%-*s" % (LW, name) + "".join(" %*s" % (CW - 1, c) for c in cells))
                    md.append("| %s | %s |" % (name, " | ".join(cells)))
        pf = summary.get((t, "puzzlefs", "full", "cold", "ms"))
        fu = summary.get((t, "fuse", "full", "cold", "ms"))
        if pf and fu:
            fw = summary.get((t, "fuse", "full", "warm", "ms"))
            pw = summary.get((t, "puzzlefs", "full", "warm", "ms"))
            lines.append("puzzlefs vs upstream FUSE, full read: %.1fx faster cold, %sx warm" % (
                fu["median"] / pf["median"],
                "%.1f" % (fw["median"] / pw["median"]) if fw and pw else "?"))
        for f in fss:
            st = status[(t, f)]
            if st["status"] != "ok":
                lines.append("%s/%s %s: %s" % (t, f, st["status"], st.get("why", "")))
    lines.append("")
    lines.append("Times in ms (medians of %s repetitions; cold = after unmount, drop_caches and "
                 "mount), memory in MiB (deltas of Cached+Buffers and Slab)." % meta.get("reps", "?"))
    lines.append("Guest clocksource: %s%s." % (clock, " (times are jiffy-coarse)" if "jiffies" in clock else ""))
    if meta.get("accel", "tcg") == "tcg":
        lines.append("QEMU runs under TCG: CPU-bound work (hashing, decompression, mount-time "
                     "parsing) is inflated far more than I/O; compare ratios, not absolute times.")
    print("\n".join(lines))

    doc = {
        "meta": meta,
        "cases": cases,
        "status": {"%s/%s" % k: v for k, v in status.items()},
        "summary": [dict(zip(("tree", "fs", "metric", "phase", "field"), k), **v)
                    for k, v in sorted(summary.items())],
        "problems": problems,
        "records": recs,
        "table": lines,
        "markdown": md,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
    with open(out.rsplit(".", 1)[0] + ".md", "w") as f:
        f.write("\n".join(md + [""] + lines[-2:]) + "\n")
    for p in problems:
        print("bench: " + p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
