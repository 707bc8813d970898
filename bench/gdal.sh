#!/usr/bin/env bash
# Benchmark of the GDAL example pipeline (examples/gdal) under shark against plain bash
# (issue 5): the first run (goal: at most 1.10x bash), a no-op re-run, a re-run after a fresh
# checkout (outputs restored from the store), and a re-run after one input changed. Writes
# bench/results-gdal.md with medians and ratios, and a per-step breakdown of one first run.
#
# Needs: cargo, hyperfine, gdal-bin, python3 (Debian: apt-get install hyperfine gdal-bin).
# Usage: bench/gdal.sh [WORKDIR]   (default /tmp). RUNS=N sets hyperfine's run count (default 10).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/tmp}
[ -d "$parent" ] || { echo "bench/gdal.sh: $parent is not a directory" >&2; exit 2; }
runs=${RUNS:-10}
out="$repo/bench/results-gdal.md"
for tool in hyperfine gdal_translate python3 cargo; do
    command -v "$tool" >/dev/null || { echo "bench/gdal.sh: $tool is missing" >&2; exit 2; }
done

work=$(mktemp -d "$parent/shark-bench-gdal.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
shark="$repo/target/release/shark"

# One fixed environment for every command, as a user's would be from one login to the next.
export PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 SHARK_HOME="$work/home"
unset OLDPWD
mkdir -p "$work/p" && cp "$repo"/examples/gdal/{pipeline.sh,make_dem.py,dem.params,sun.params} "$work/p"
cd "$work/p"
hf() { hyperfine --style basic --runs "$runs" --warmup 1 "$@"; }
# hyperfine sets HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET to a random value in each run; the
# environment is part of every step's key, so shark must not see it or nothing is ever reused.
sharkc="env -u HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET $shark pipeline.sh"
median() { python3 -c "import json,statistics,sys;print(statistics.median(json.load(open(sys.argv[1]))['results'][0]['times']))" "$1"; }

echo "== first run: bash, then shark with an empty shark home"
hf --prepare 'rm -rf out' --export-json "$work/bash.json" 'bash pipeline.sh'
hf --prepare "rm -rf out $SHARK_HOME" --export-json "$work/first.json" "$sharkc"

echo "== first run in a new directory, shark home already used (its stat cache warm)"
# Each run in a fresh copy of the example, so no step has a matching record, but the system
# files GDAL loads are already in the stat cache: a user's usual first run.
newdir="d=\$(mktemp -d $work/w.XXXXXX); cp $work/p/*.sh $work/p/*.py $work/p/*.params \$d; echo \$d >$work/next"
hf --prepare "$newdir" --export-json "$work/bash-new.json" "cd \$(cat $work/next) && bash pipeline.sh"
hf --prepare "$newdir" --export-json "$work/warm.json" "cd \$(cat $work/next) && $sharkc"

echo "== no-op re-run in place"
rm -rf out "$SHARK_HOME"
# Settle first: the first re-run in place still re-runs gdalwarp (see tests/gdal.rs).
"$shark" pipeline.sh && "$shark" pipeline.sh && "$shark" pipeline.sh
hf --export-json "$work/noop.json" "$sharkc"

echo "== re-run after a fresh checkout (out/ removed, every output restored)"
hf --prepare 'rm -rf out' --export-json "$work/restore.json" "$sharkc"

echo "== one input changed (a new light azimuth each run: hillshade, report, tiles re-run)"
"$shark" pipeline.sh && "$shark" pipeline.sh
echo 0 >"$work/az"
hf --prepare "a=\$(cat $work/az); echo \$((a + 7)) >$work/az; echo \"\$a 45\" >sun.params" \
    --export-json "$work/change.json" "$sharkc"

echo "== one first run, step by step"
cp "$repo/examples/gdal/sun.params" .
rm -rf out "$SHARK_HOME"
"$shark" pipeline.sh
steps=$("$shark" log --json -n 10)
ids=$(printf '%s\n' "$steps" | python3 -c 'import json,sys;print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin))')
shows=$(for id in $ids; do "$shark" show "$id" --json; echo; done)
rm -rf out
# (PS4 is set inside: bash ignores an inherited PS4 when run as root.)
bash_steps=$(bash -c 'PS4="+ \$EPOCHREALTIME "; set -x; . ./pipeline.sh; : end' 2>&1 >/dev/null | grep -E '^\++ [0-9]' || true)

python3 - "$out" "$runs" "$work" <<'PY'
import json, os, platform, statistics, subprocess, sys
out, runs, work = sys.argv[1], sys.argv[2], sys.argv[3]
def med(name):
    return statistics.median(json.load(open(f"{work}/{name}.json"))["results"][0]["times"])
bash, first, bash_new, warm, noop, restore, change = (
    med(n) for n in ("bash", "first", "bash-new", "warm", "noop", "restore", "change"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
gdal = subprocess.run(["gdalinfo", "--version"], capture_output=True, text=True).stdout.strip()
rows = [
    ("first run, plain bash", bash, "1.00x", ""),
    ("first run, shark (empty shark home)", first, f"{first / bash:.2f}x", "goal at most 1.10x"),
    ("first run in a new directory, plain bash", bash_new, f"{bash_new / bash:.2f}x", "includes mktemp + cp"),
    ("first run in a new directory, shark (stat cache warm)", warm, f"{warm / bash_new:.2f}x",
     "ratio against the line above"),
    ("no-op re-run in place, shark", noop, f"{noop / bash:.2f}x", "every step reused"),
    ("re-run after `rm -r out`, shark", restore, f"{restore / bash:.2f}x", "every step reused, outputs restored"),
    ("one input changed (sun.params), shark", change, f"{change / bash:.2f}x", "3 of 10 steps re-run"),
]
lines = [
    "# GDAL pipeline benchmark",
    "",
    f"Produced by `bench/gdal.sh` ({runs} runs each after one warm-up, medians; ratios against plain",
    f"bash's first run). Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}; {gdal}.",
    "The pipeline is `examples/gdal/pipeline.sh`: 10 top-level steps (set -e, export, mkdir,",
    "python3 DEM, gdal_translate, gdalwarp, gdaldem hillshade, gdaldem slope, gdalinfo -stats x2,",
    "a 4-tile gdal_translate loop).",
    "",
    "| case | median | vs bash | note |",
    "|---|---|---|---|",
]
lines += [f"| {c} | {t * 1000:.0f} ms | {r} | {n} |" for c, t, r, n in rows]
open(out, "w").write("\n".join(lines) + "\n")
PY

step_table='
import json, sys
runs = sorted((json.loads(l) for l in sys.stdin if l.strip()), key=lambda r: r["id"])
cpu = lambda r: (r.get("user_ms") or 0) + (r.get("sys_ms") or 0)
for r in runs:
    cmd = r["command"].splitlines()[0].replace("|", "\\|")[:60]
    print("| `%s` | %d ms | %d ms | %d | %d |" % (cmd, r["duration_ms"], cpu(r), len(r["inputs"]), len(r["outputs"])))
print("| total | %d ms | %d ms | | |" % (sum(r["duration_ms"] for r in runs), sum(cpu(r) for r in runs)))
'
# Per step: shark's wall time (duration_ms), the step's own CPU time (user+sys of the sandboxed
# command), files read; and plain bash's wall time per traced command.
{
    echo
    echo "## One first run, step by step"
    echo
    echo "| step | shark wall | its CPU (user+sys) | inputs recorded | outputs |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "$shows" | python3 -c "$step_table"
    echo
    echo "Plain bash, same run traced with \`PS4=\"+ \$EPOCHREALTIME \"\` (time until the next command starts):"
    echo
    echo '```'
    printf '%s\n' "$bash_steps" | python3 -c '
import sys
ls = [l.rstrip("\n").split(" ", 2) for l in sys.stdin if l.strip()]
for (p, t, c), nxt in zip(ls, ls[1:] + [None]):
    if nxt: print(f"{(float(nxt[1]) - float(t)) * 1000:7.1f} ms  {c[:70]}")
if ls: print(f"{(float(ls[-1][1]) - float(ls[0][1])) * 1000:7.1f} ms  total")
'
    echo '```'
} >>"$out"
cat "$out"
