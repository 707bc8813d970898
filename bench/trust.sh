#!/usr/bin/env bash
# What trustworthy reuse and safe writes cost (issues 9 and 10), in one run on one machine,
# against the shark before them (BASE, a release build of an earlier commit) where a figure
# has a "before". Writes bench/results-trust.md with medians and ratios:
#
#   1. `shark run -- true` reused and missed, current against BASE (goal: no regression, the
#      safe paths at most 10% dearer), with `bash -c true` beside;
#   2. a 1 GiB output restored by a reuse (raw, incompressible data), current against BASE,
#      with `cp` beside;
#   3. the GDAL example with every output in its own folder: first run, and the no-op re-run
#      (goal: fully reused, under 50 ms); BASE re-runs most steps there, so it is shown too;
#   4. the 20-step pipeline of bench/exec.sh: the no-op re-run, current against BASE.
#
# Needs: cargo, hyperfine, gdal-bin, python3.
#
# Usage: BASE=/path/to/old/shark bench/trust.sh [WORKDIR]   (default /var/tmp). RUNS (default
# 30) changes the number of timed runs of the small commands.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/var/tmp}
runs=${RUNS:-30}
out="$repo/bench/results-trust.md"
base=${BASE:?set BASE to a release build of shark before the ordered access model (e.g. a5dad2a)}
for tool in hyperfine gdalinfo python3; do
    command -v "$tool" >/dev/null || { echo "bench/trust.sh: $tool is missing" >&2; exit 2; }
done
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p shark
shark="$repo/target/release/shark"
work=$(mktemp -d "$parent/shark-bench-trust.XXXXXX")
trap 'rm -rf "$work"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
U="env -u HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET"
hf() { hyperfine --style basic "$@"; }
median() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(' '.join('%.4f' % r['median'] for r in d['results']))" "$1"; }

echo "== 1. one trivial command"
mkdir -p "$work/micro" && cd "$work/micro"
for who in new old; do
    bin=$shark; [ $who = old ] && bin=$base
    SHARK_HOME="$work/home-micro-$who" $U "$bin" run -- true
done
hf -N --warmup 10 --runs "$runs" --export-json "$work/micro.json" \
    "$U env SHARK_HOME=$work/home-micro-new $shark run -- true" \
    "$U env SHARK_HOME=$work/home-micro-old $base run -- true" \
    "$U env SHARK_HOME=$work/home-micro-new $shark run --fresh -- true" \
    "$U env SHARK_HOME=$work/home-micro-old $base run --fresh -- true" \
    "$U bash -c true"
read -r reuse_new reuse_old fresh_new fresh_old bash_true < <(median "$work/micro.json")

echo "== 2. a 1 GiB output restored by a reuse"
mkdir -p "$work/big" && cd "$work/big"
head -c 1073741824 /dev/urandom > "$work/big.src"
for who in new old; do
    bin=$shark; [ $who = old ] && bin=$base
    SHARK_HOME="$work/home-big-$who" $U "$bin" -c "cat $work/big.src > out-$who.bin"
done
hf --warmup 1 --runs 5 --export-json "$work/big.json" \
    --prepare "rm -f out-new.bin out-old.bin copy.bin; sync" \
    "$U env SHARK_HOME=$work/home-big-new $shark -c 'cat $work/big.src > out-new.bin'" \
    "$U env SHARK_HOME=$work/home-big-old $base -c 'cat $work/big.src > out-old.bin'" \
    "cp $work/big.src copy.bin"
read -r big_new big_old big_cp < <(median "$work/big.json")
rm -f "$work/big.src"

echo "== 3. the GDAL example in its own folder"
gdal_run() { # bin home -> prints seconds for one run of the pipeline; counts reused steps
    local start end
    start=$(date +%s.%N)
    SHARK_HOME="$2" SHARK_QUIET=1 "$1" pipeline.sh . >/dev/null 2>&1
    end=$(date +%s.%N)
    python3 -c "print('%.4f' % ($end - $start))"
}
reused_of() { # bin home -> "reused/total" of the last 11 runs
    SHARK_HOME="$2" "$1" log --json -n 11 | python3 -c "import json,sys; r=[json.loads(l) for l in sys.stdin]; print('%d/%d' % (sum(x['cached'] for x in r), len(r)))"
}
for who in new old; do
    bin=$shark; [ $who = old ] && bin=$base
    mkdir -p "$work/gdal-$who" && cd "$work/gdal-$who"
    cp "$repo"/examples/gdal/{pipeline.sh,make_dem.py,dem.params,sun.params} .
    declare "gdal_first_$who=$(gdal_run "$bin" "$work/home-gdal-$who")"
    declare "gdal_noop_$who=$(gdal_run "$bin" "$work/home-gdal-$who")"
    declare "gdal_reused_$who=$(reused_of "$bin" "$work/home-gdal-$who")"
done
cd "$work/gdal-new"
hf --warmup 2 --runs "$runs" --export-json "$work/gdal.json" \
    "$U env SHARK_HOME=$work/home-gdal-new SHARK_QUIET=1 $shark pipeline.sh ."
read -r gdal_noop_median < <(median "$work/gdal.json")

echo "== 4. the 20-step pipeline, no-op re-run"
mkdir -p "$work/pipe" && cd "$work/pipe"
python3 - <<'EOF'
import os
os.makedirs("data", exist_ok=True)
for i in range(1000):
    with open(f"data/f{i:04}.txt", "w") as f:
        f.write("".join(f"{(i * 7919 + j * 104729) % 1000003} line {j}\n" for j in range(20)))
steps = ["mkdir -p out"]
for s in range(19):
    src = "data" if s == 0 else f"out/s{s-1}"
    steps.append(f"mkdir -p out/s{s} && for f in {src}/*.txt; do sort \"$f\" | tr a-z A-Z > out/s{s}/$(basename \"$f\"); done")
open("pipeline.sh", "w").write("\n".join(steps) + "\n")
EOF
for who in new old; do
    bin=$shark; [ $who = old ] && bin=$base
    SHARK_HOME="$work/home-pipe-$who" SHARK_QUIET=1 "$bin" pipeline.sh >/dev/null
done
hf --warmup 2 --runs 10 --export-json "$work/pipe.json" \
    "$U env SHARK_HOME=$work/home-pipe-new SHARK_QUIET=1 $shark pipeline.sh" \
    "$U env SHARK_HOME=$work/home-pipe-old SHARK_QUIET=1 $base pipeline.sh"
read -r pipe_new pipe_old < <(median "$work/pipe.json")

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
ms() { python3 -c "print('%.1f ms' % (float('$1') * 1000))"; }
ratio() { python3 -c "print('%.2fx' % (float('$1') / float('$2')))"; }
{
    echo "# Trust and safety: what they cost"
    echo
    echo "Run of $(date -u +%Y-%m-%d) at commit $commit against BASE \`$base\`; load average $load_before before, $load_after after. Medians of hyperfine runs. Reproduce: \`BASE=... bench/trust.sh\`."
    echo
    echo "| what | now | before | now / before | anchor |"
    echo "|---|---|---|---|---|"
    echo "| reused \`run -- true\` | $(ms "$reuse_new") | $(ms "$reuse_old") | $(ratio "$reuse_new" "$reuse_old") | bash -c true $(ms "$bash_true") |"
    echo "| fresh \`run --fresh -- true\` | $(ms "$fresh_new") | $(ms "$fresh_old") | $(ratio "$fresh_new" "$fresh_old") | |"
    echo "| reuse restoring a 1 GiB output | $(ms "$big_new") | $(ms "$big_old") | $(ratio "$big_new" "$big_old") | cp $(ms "$big_cp") |"
    echo "| GDAL in its own folder, first run | ${gdal_first_new} s | ${gdal_first_old} s | | |"
    echo "| GDAL in its own folder, no-op re-run | $(ms "$gdal_noop_median") ($gdal_reused_new steps reused) | ${gdal_noop_old} s ($gdal_reused_old steps reused) | | goal < 50 ms, all reused |"
    echo "| 20-step pipeline, no-op re-run | $(ms "$pipe_new") | $(ms "$pipe_old") | $(ratio "$pipe_new" "$pipe_old") | |"
} > "$out.new"
if [ -f "$out" ]; then
    { cat "$out.new"; echo; echo "## Earlier runs"; echo; sed '1,2d' "$out"; } > "$out.tmp" && mv "$out.tmp" "$out"
    rm -f "$out.new"
else
    mv "$out.new" "$out"
fi
cat "$out" | head -20
