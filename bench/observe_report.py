"""Writes bench/results-observe.md from the JSON files bench/observe.sh leaves in $work.

Keeps the earlier results of the file below the new ones.
"""

import json
import os
import re
import statistics
import sys

work = os.environ["work"]
out = sys.argv[1]


def medians(name):
    results = json.load(open(f"{work}/{name}.json"))["results"]
    return {r["command"]: statistics.median(r["times"]) for r in results}


def by_position(name):
    results = json.load(open(f"{work}/{name}.json"))["results"]
    return [statistics.median(r["times"]) for r in results]


ms = lambda s: f"{s * 1000:.1f} ms"
us = lambda s: f"{s * 1e6:.2f} µs"
x = lambda a, b: f"{a / b:.2f}x"
verdict = lambda ok: "met" if ok else "**missed**"

before = os.environ.get("before")
# (workload, anchor name, anchor, shark, shark without the fast path or None, shark before or
# None, goal, issue 14's ratio)
rows = []
t = medians("true")
rows.append(("fresh `true`", "bwrap", t["bwrap"], t["shark run --fresh"],
             t["shark run --fresh, no fast path"], t.get("before: shark run --fresh"), 1.5,
             "2.3x"))
rows.append(("reused `true`", "`bash -c true`", t["bash -c true"], t["shark run (reused)"],
             None, t.get("before: shark run (reused)"), 2.0, "2.4x"))
for name, label, goal, issue in [
    ("import", "import-heavy Python line", 1.15, "1.4x"),
    ("gdal", "GDAL example, first run", 1.15, "1.3-1.4x"),
    ("trsort", "1,000 `tr | sort`", 1.4, "2.1x"),
    ("pipe", "20-step pipeline, first run", 1.3, "1.6x"),
    ("compute", "compute-bound Python", 1.03, "1.0x"),
    ("gcc", "`gcc -O2` of a generated file", 1.03, "1.0x"),
]:
    m = medians(name)
    rows.append((label, "bash", m["bash"], m["shark"], m["shark, no fast path"], m.get("before"),
                 goal, issue))

calls = {}
for call in ["open", "stat"]:
    o = by_position(f"call-{call}")
    n, n_slow = int(os.environ["n"]), int(os.environ["n_slow"])
    calls[call] = ((o[1] - o[0]) / n, (o[3] - o[2]) / n, (o[5] - o[4]) / n_slow)

counts = [line.strip().split("|") for line in open(f"{work}/counts.txt")]
loads = [line.strip() for line in open(f"{work}/loads.txt")]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), "?")

lines = [
    "# Observation benchmarks (issue 14)",
    "",
    f"Written by `bench/observe.sh` at {os.environ['commit']}: medians of hyperfine runs taken in "
    f"{os.environ['rounds']} interleaved rounds, on {os.cpu_count()} CPUs ({cpu}), Linux "
    f"{os.environ['KERNEL']}. The machine is shared: the load average (1, 5, 15 min) after "
    "each part is listed at the end. `shark` runs each workload with `shark run --fresh -- bash "
    "SCRIPT` (the pipelines as scripts, `shark pipeline.sh`, from an empty shark home), "
    "`no fast path` the same with `SHARK_FAST_PATH=0`; "
    + (f"`before` is `{before}`, run the same way; " if before else "")
    + "every command, anchors included, runs under the same `env -u` wrapper (see the script).",
    "",
    "## Goals",
    "",
    "| workload | anchor | anchor median | shark | ratio | no fast path | ratio | before | ratio "
    "| goal | issue 14 |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
]
cells = lambda t, anchor: f"{ms(t)} | {x(t, anchor)}" if t else " | "
for label, anchor_name, anchor, now, slow, then, goal, issue in rows:
    lines.append(
        f"| {label} | {anchor_name} | {ms(anchor)} | {cells(now, anchor)} | "
        f"{cells(slow, anchor)} | {cells(then, anchor)} | "
        f"≤ {goal}x: {verdict(now <= goal * anchor)} | {issue} |"
    )
lines += [
    "",
    "## One call, on the fast path and notified",
    "",
    f"Per call = (median with N calls − median with none) / N ({os.environ['n']} calls, "
    f"{os.environ['n_slow']} notified), of a file outside the writable roots, absolute path, "
    "in `sandbox-run` (the sandbox without the shell). The fast path's repeated call is "
    "recorded once per process, then goes through the library's per-process set and the stub; "
    "with `--slow` every call is a round trip through the supervisor.",
    "",
    "| call | untraced | fast path | ratio | notified | extra | ratio | goal |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
]
for call, (bare, fast, notified) in calls.items():
    lines.append(
        f"| `{call}` | {us(bare)} | {us(fast)} | {x(fast, bare)} | {us(notified)} | "
        f"{us(notified - bare)} | {x(notified, bare)} | ≤ 2x: {verdict(fast <= 2 * bare)} |"
    )
lines += [
    "",
    "Issue 14 measured a notified `openat` at 9.9 µs over untraced.",
    "",
    "## Notifications per run",
    "",
    "One run of each workload in `sandbox-run` (shark's default writable roots): system calls "
    "the supervisor was notified of with the fast path (and the accesses the library recorded "
    "itself), and without it.",
    "",
    "| workload | with the fast path | without |",
    "|---|---|---|",
]
for name, fast, slow in counts:
    lines.append(f"| {name} | {fast} | {slow} |")
lines += ["", "Load average after each part: " + "; ".join(f"`{l}`" for l in loads), ""]

earlier = ""
if os.path.exists(out):
    # Keep what the file held: its latest run first among the earlier ones.
    body = open(out).read().split("\n", 1)[1]
    current, _, older = body.partition("\n## Earlier results\n")
    found = re.search(r" at (\S+):", current)
    heading = f"### Run at {found.group(1) if found else 'an earlier commit'}"
    earlier = (f"\n## Earlier results\n\n{heading}\n" + current.replace("\n## ", "\n#### ")
               + older)
open(out, "w").write("\n".join(lines) + earlier)
print("\n".join(lines))
