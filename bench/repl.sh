#!/usr/bin/env bash
# Benchmarks of the interactive shell and of script steps: startup of `shark -i`, and the
# latency of a reused line and of a line that runs, prompt to prompt in the interactive shell
# and step to step in a script, against `bash -c true`. Appends a section to
# bench/results-repl.md (earlier sections are kept) with medians and ratios.
#
# Needs: cargo, hyperfine (Debian: apt-get install -y hyperfine), unprivileged user namespaces
# (or root). Usage: bench/repl.sh [WORKDIR] (default /tmp). RUNS=N sets hyperfine's run count
# (default 50); SHARK=BINARY measures that binary instead of this tree's release build, and
# LABEL names the section (default: the binary's source).
#
# What is measured: each measurement is one process that starts, runs N lines or steps and
# exits; a line's latency is (time for N+1 lines - time for 1 line) / N, which removes
# startup. Interactive: shark -i reading lines from stdin; the reused line is `cat data.txt`
# after a warm-up run, the fresh one `fresh: true`. Script: `shark SCRIPT` of `true` steps
# after a warm-up run (reused), and of `: WORD` steps with new words before each run (a no-op
# like `true` that is never reused, since its text is new).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/tmp}
command -v hyperfine >/dev/null || { echo "bench/repl.sh: hyperfine is missing" >&2; exit 2; }
work=$(mktemp -d "$parent/shark-bench-repl.XXXXXX")
trap 'rm -rf "$work"' EXIT
runs=${RUNS:-50}
lines=20
out="$repo/bench/results-repl.md"

if [[ -n ${SHARK:-} ]]; then
    shark=$SHARK
    label=${LABEL:-$SHARK}
else
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
    shark="$repo/target/release/shark"
    label=${LABEL:-"this tree ($(git -C "$repo" rev-parse --short HEAD))"}
fi
mkdir -p "$work/home" "$work/user" "$work/cwd"
cd "$work/cwd"
echo data > data.txt
export SHARK_HOME="$work/home" HOME="$work/user"

# lines_of LINE N NAME: a file of `true` then N copies of LINE, then exit.
lines_of() {
    { echo true; for _ in $(seq "$2"); do echo "$1"; done; echo exit; } > "$work/in-$3"
}
lines_of 'cat data.txt' "$lines" reused
lines_of 'cat data.txt' 1 reused1
lines_of 'fresh: true' "$lines" fresh
lines_of 'fresh: true' 1 fresh1
"$shark" -i < "$work/in-reused" > /dev/null 2>&1 # warm the cache

# Scripts: N steps of `true`; and a generator of N steps of `: WORD` with new words.
for n in 1 "$lines"; do
    { echo true; for _ in $(seq "$n"); do echo true; done; } > "$work/steps-$n.sh"
    "$shark" "$work/steps-$n.sh" > /dev/null 2>&1 # warm the cache
done
cat > "$work/gen.sh" <<'GEN'
#!/usr/bin/env bash
{ echo true; for _ in $(seq "$1"); do echo ": w$RANDOM$RANDOM$RANDOM"; done; } > "$2"
GEN
chmod +x "$work/gen.sh"

# hyperfine takes one --prepare per command, in order (`true` where nothing is prepared).
hyperfine --warmup 3 --runs "$runs" --export-json "$work/h.json" \
    --prepare true -n startup "$shark -i < /dev/null" \
    --prepare true -n reused1 "$shark -i < $work/in-reused1" \
    --prepare true -n reusedN "$shark -i < $work/in-reused" \
    --prepare true -n fresh1 "$shark -i < $work/in-fresh1" \
    --prepare true -n freshN "$shark -i < $work/in-fresh" \
    --prepare true -n sreused1 "$shark $work/steps-1.sh" \
    --prepare true -n sreusedN "$shark $work/steps-$lines.sh" \
    --prepare "$work/gen.sh 1 $work/new-1.sh" -n sfresh1 "$shark $work/new-1.sh" \
    --prepare "$work/gen.sh $lines $work/new-N.sh" -n sfreshN "$shark $work/new-N.sh" \
    >/dev/null

hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/b.json" -n bash "bash -c true" >/dev/null

python3 - "$work/h.json" "$lines" "$out" "$work/b.json" "$label" <<'PY'
import json, sys, datetime
res = {r["command"]: r for f in (sys.argv[1], sys.argv[4]) for r in json.load(open(f))["results"]}
n = int(sys.argv[2])
med = lambda k: res[k]["median"] * 1000
per = lambda a, b: (med(b) - med(a)) / (n - 1)
bash = med("bash")
rows = [
    ("interactive startup (`shark -i`, stdin /dev/null)", med("startup"), 50),
    ("prompt to prompt, reused line (`cat data.txt`)", per("reused1", "reusedN"), 5),
    ("prompt to prompt, run of `true` (`fresh: true`)", per("fresh1", "freshN"), 12),
    ("script step, reused (`true`)", per("sreused1", "sreusedN"), 5),
    ("script step, run (`: WORD`, never seen before)", per("sfresh1", "sfreshN"), 12),
]
with open(sys.argv[3], "a") as f:
    f.write(f"\n## {sys.argv[5]}, {datetime.date.today()}\n\n")
    f.write("Produced by `bench/repl.sh` (hyperfine medians; per-line latencies are the difference\n")
    f.write(f"between sessions of {n} lines and of 1 line, divided by {n - 1}). Baseline: `bash -c true`\n")
    f.write(f"= {bash:.2f} ms.\n\n")
    f.write("| what | median | goal | vs `bash -c true` |\n|---|---|---|---|\n")
    for name, v, goal in rows:
        f.write(f"| {name} | {v:.2f} ms | < {goal} ms | {v / bash:.1f}x |\n")
print(open(sys.argv[3]).read())
PY
