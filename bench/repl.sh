#!/usr/bin/env bash
# Benchmarks of the interactive shell (issue 5): startup of `shark -i`, and prompt-to-prompt
# latency of a reused line and of a run of `true`, against `bash -c true`. Writes
# bench/results-repl.md with medians and ratios.
#
# Needs: cargo, hyperfine (Debian: apt-get install -y hyperfine), unprivileged user namespaces
# (or root). Usage: bench/repl.sh [WORKDIR] (default /tmp); RUNS=N sets hyperfine's run count
# (default 50).
#
# What is measured: shark reads lines from stdin when -i is given, so each measurement is one
# process that starts, runs N lines and exits; a line's latency is (time for N+1 lines - time
# for 1 line) / N, which removes startup. The reused line is `cat data.txt` after a warm-up run;
# the fresh line is `fresh: true` (run in the sandbox every time).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/tmp}
command -v hyperfine >/dev/null || { echo "bench/repl.sh: hyperfine is missing" >&2; exit 2; }
work=$(mktemp -d "$parent/shark-bench-repl.XXXXXX")
trap 'rm -rf "$work"' EXIT
runs=${RUNS:-50}
lines=20
out="$repo/bench/results-repl.md"

cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
shark="$repo/target/release/shark"
mkdir -p "$work/home" "$work/user" "$work/cwd"
cd "$work/cwd"
echo data > data.txt
export SHARK_HOME="$work/home" HOME="$work/user"

# lines_of LINE N: a file of `true` then N copies of LINE, then exit.
lines_of() {
    { echo true; for _ in $(seq "$2"); do echo "$1"; done; echo exit; } > "$work/in-$3"
}
lines_of 'cat data.txt' "$lines" reused
lines_of 'cat data.txt' 1 reused1
lines_of 'fresh: true' "$lines" fresh
lines_of 'fresh: true' 1 fresh1
"$shark" -i < "$work/in-reused" > /dev/null 2>&1 # warm the cache

hyperfine --warmup 3 --runs "$runs" --export-json "$work/h.json" \
    -n startup "$shark -i < /dev/null" \
    -n reused1 "$shark -i < $work/in-reused1" \
    -n reusedN "$shark -i < $work/in-reused" \
    -n fresh1 "$shark -i < $work/in-fresh1" \
    -n freshN "$shark -i < $work/in-fresh" >/dev/null

hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/b.json" -n bash "bash -c true" >/dev/null

python3 - "$work/h.json" "$lines" "$out" "$work/b.json" <<'PY'
import json, sys
res = {r["command"]: r for f in (sys.argv[1], sys.argv[4]) for r in json.load(open(f))["results"]}
n = int(sys.argv[2])
med = lambda k: res[k]["median"] * 1000
bash = med("bash")
startup = med("startup")
reused = (med("reusedN") - med("reused1")) / (n - 1)
fresh = (med("freshN") - med("fresh1")) / (n - 1)
rows = [
    ("interactive startup (`shark -i`, stdin /dev/null)", startup, 50),
    ("prompt to prompt, reused line (`cat data.txt`)", reused, 5),
    ("prompt to prompt, run of `true` (`fresh: true`)", fresh, 12),
]
with open(sys.argv[3], "w") as f:
    f.write("# Interactive shell benchmarks\n\n")
    f.write("Produced by `bench/repl.sh` (hyperfine medians; per-line latencies are the difference\n")
    f.write(f"between sessions of {n} lines and of 1 line, divided by {n - 1}). Baseline: `bash -c true`\n")
    f.write(f"= {bash:.2f} ms.\n\n")
    f.write("| what | median | goal | vs `bash -c true` |\n|---|---|---|---|\n")
    for name, v, goal in rows:
        f.write(f"| {name} | {v:.2f} ms | < {goal} ms | {v / bash:.1f}x |\n")
print(open(sys.argv[3]).read())
PY
