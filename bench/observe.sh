#!/usr/bin/env bash
# Benchmarks of observation at near-native speed (issue 14): each workload under shark (with the
# fast path, and with SHARK_FAST_PATH=0) against its anchor (bash, bubblewrap, untraced calls),
# and under an earlier shark (BEFORE) when given, in one run on one machine, in interleaved
# rounds. Writes bench/results-observe.md with
# medians, ratios, notification counts and the load average.
#
# Needs: cargo, gcc, make, hyperfine, bwrap, python3, gdal-bin (Debian: apt-get install -y
# hyperfine bubblewrap gdal-bin), and unprivileged user namespaces (or root).
#
# Usage: bench/observe.sh [WORKDIR]   (default /tmp). Everything goes in a fresh directory
# inside WORKDIR, removed at the end. ROUNDS=N interleaved rounds (default 3); QUICK=1 for a
# short smoke run (1 round, fewer runs, 100 loop iterations). BEFORE=PATH adds a column for
# another shark binary (a release build of an earlier commit).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/tmp}
[ -d "$parent" ] || { echo "bench/observe.sh: $parent is not a directory" >&2; exit 2; }
for tool in cargo gcc make hyperfine bwrap python3 gdal_translate; do
    command -v "$tool" >/dev/null || { echo "bench/observe.sh: $tool is missing" >&2; exit 2; }
done
rounds=${ROUNDS:-3}
loops=1000
[ -n "${QUICK:-}" ] && { rounds=1; loops=100; }
out="$repo/bench/results-observe.md"

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p shark
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p shark-sandbox --example sandbox-run
shark="$repo/target/release/shark"
sandbox_run="$repo/target/release/examples/sandbox-run"
work=$(mktemp -d "$parent/shark-bench-observe.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
# One fixed environment, as a user's would be from one login to the next.
export PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
unset OLDPWD
# hyperfine puts a random variable in each command's environment; shark must not see it (the
# environment is part of the key), and every command runs under the same wrapper.
U="env -u HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET"
before=${BEFORE:-}
NOFAST="SHARK_FAST_PATH=0"

# rounds NAME COUNT HYPERFINE-ARGS...: hyperfine COUNT times, times merged into NAME.json by
# command. On a shared machine the load drifts; short rounds spread it over every command.
rounds() {
    local name=$1 count=$2
    shift 2
    for r in $(seq "$count"); do
        hyperfine --style none "$@" --export-json "$name-$r.json" >/dev/null
    done
    python3 "$repo/bench/merge_rounds.py" "$name" "$count"
    echo "$name $(cut -d' ' -f1-3 /proc/loadavg)" >>loads.txt
}

# counts NAME COMMAND...: notifications and fast-path records of one sandboxed run, with and
# without the fast path (sandbox-run, shark's default writable roots).
counts() {
    local name=$1
    shift
    local fast slow
    fast=$("$sandbox_run" -q "$@" 2>&1 >/dev/null | grep -o '[0-9]* notifications, [0-9]* fast' | tail -1)
    slow=$("$sandbox_run" -q --slow "$@" 2>&1 >/dev/null | grep -o '[0-9]* notifications' | tail -1)
    echo "$name|$fast|$slow" >>counts.txt
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee loads.txt

echo "== fixed cost of true"
home_true="$work/home-true"
$U SHARK_HOME="$home_true" "$shark" run -- true
true_cmds=(-n "bash -c true" "$U bash -c true"
    -n "bwrap" "$U bwrap --unshare-all --ro-bind / / true"
    -n "shark run --fresh" "$U SHARK_HOME=$home_true $shark run --fresh -- true"
    -n "shark run --fresh, no fast path" "$U SHARK_HOME=$home_true $NOFAST $shark run --fresh -- true"
    -n "shark run (reused)" "$U SHARK_HOME=$home_true $shark run -- true")
if [ -n "$before" ]; then
    $U SHARK_HOME="$home_true-before" "$before" run -- true
    true_cmds+=(-n "before: shark run --fresh" "$U SHARK_HOME=$home_true-before $before run --fresh -- true"
        -n "before: shark run (reused)" "$U SHARK_HOME=$home_true-before $before run -- true")
fi
rounds true "$rounds" -N --warmup 3 --runs 10 "${true_cmds[@]}"
counts "true" /usr/bin/true

# Each workload is a script, run by bash directly and by shark in its sandbox.
imports="import email, json, http.client, asyncio, decimal, xml.dom.minidom"
echo "python3 -c '$imports'" >import.sh
echo 'python3 -c "sum(i*i for i in range(10**7))"' >compute.sh
mkdir -p in
python3 -c "
import random
random.seed(14)
for i in range(1, $loops + 1):
    open(f'in/f{i}.txt', 'w').write(''.join(random.choice('abcdef \n') for _ in range(200)))"
echo "for i in \$(seq $loops); do tr a-z A-Z < in/f\$i.txt | sort > /dev/null; done" >trsort.sh
python3 - <<'PY'
# A compute-bound C file: many small functions with loops gcc optimises.
with open("big.c", "w") as f:
    for i in range(600):
        f.write(f"""
static double f{i}(const double *a, int n) {{
    double s = 0;
    for (int j = 0; j < n; j++) s += a[j] * {i + 1} / (1 + a[(j * 7) % n]);
    for (int j = 1; j < n; j++) if (a[j] > a[j - 1]) s -= a[j] * {i % 13};
    return s;
}}""")
    f.write("\ndouble all(const double *a, int n) { double s = 0;\n")
    f.write("".join(f"    s += f{i}(a, n);\n" for i in range(600)))
    f.write("    return s; }\n")
PY
echo 'gcc -O2 -c big.c -o big.o' >gcc.sh

home_work="$work/home-work"
one() { # one NAME SCRIPT RUNS WARMUP: bash, shark (with and without the fast path), the shark before
    local cmds=(-n "bash" "$U bash $2" -n "shark" "$U SHARK_HOME=$home_work $shark run --fresh -- bash $2"
        -n "shark, no fast path" "$U SHARK_HOME=$home_work $NOFAST $shark run --fresh -- bash $2")
    [ -n "$before" ] && cmds+=(-n "before" "$U SHARK_HOME=$home_work-before $before run --fresh -- bash $2")
    rounds "$1" "$rounds" --warmup "$4" --runs "$3" "${cmds[@]}"
    counts "$1" bash "$2"
}
echo "== import-heavy Python"
one import import.sh 5 2
echo "== 1,000 tr | sort"
one trsort trsort.sh 1 1
echo "== compute-bound Python"
one compute compute.sh 2 1
echo "== gcc -O2"
one gcc gcc.sh 1 1

# first_run NAME DIR CLEAN RUNS WARMUP: bash, shark (with and without the fast path) and the
# shark before running DIR's
# pipeline.sh from scratch (CLEAN, and shark's home, removed before each run).
first_run() {
    local name=$1 dir=$2 clean=$3 home="$work/home-$1"
    local cmds=(-n "bash" --prepare "cd $dir && rm -rf $clean" "cd $dir && bash pipeline.sh"
        -n "shark" --prepare "cd $dir && rm -rf $clean $home"
        "cd $dir && $U SHARK_HOME=$home $shark pipeline.sh >/dev/null"
        -n "shark, no fast path" --prepare "cd $dir && rm -rf $clean $home"
        "cd $dir && $U SHARK_HOME=$home $NOFAST $shark pipeline.sh >/dev/null")
    [ -n "$before" ] && cmds+=(-n "before" --prepare "cd $dir && rm -rf $clean $home"
        "cd $dir && $U SHARK_HOME=$home $before pipeline.sh >/dev/null")
    rounds "$name" "$rounds" --runs "$4" --warmup "$5" "${cmds[@]}"
}

echo "== GDAL example, first run"
mkdir gdal && cp "$repo"/examples/gdal/{pipeline.sh,make_dem.py,dem.params,sun.params} gdal
first_run gdal "$work/gdal" out 2 1
(cd gdal && rm -rf out && counts gdal bash pipeline.sh)

echo "== 20-step pipeline, first run"
# The steps of bench/exec.sh, over the same kind of input.
mkdir pipe && sed -n "/^cat >steps.tsv <<'EOF'$/,/^EOF$/p" "$repo/bench/exec.sh" | sed '1d;$d' >pipe/steps.tsv
python3 "$repo/bench/pipeline_inputs.py" pipe/steps.tsv pipe
first_run pipe "$work/pipe" "s[0-9][0-9]*" 1 0

echo "== cost of one call, on the fast path and notified"
cat >loop.c <<'C'
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* loop open|stat N PATH: N opens (and closes), or N stats, of PATH. */
int main(int argc, char **argv) {
    long n = atol(argv[2]);
    struct stat st;
    for (long i = 0; i < n; i++) {
        if (strcmp(argv[1], "open") == 0) {
            int fd = open(argv[3], O_RDONLY | O_CLOEXEC);
            if (fd < 0) return 1;
            close(fd);
        } else if (stat(argv[3], &st) != 0) return 1;
    }
    return 0;
}
C
gcc -O2 -o loop loop.c
echo data >"$work/file"
sr="$sandbox_run -q --root $work/home-work"
n=100000
n_slow=20000
for call in open stat; do
    rounds "call-$call" "$rounds" -N --warmup 1 --runs 3 \
        "./loop $call 0 $work/file" "./loop $call $n $work/file" \
        "$sr ./loop $call 0 $work/file" "$sr ./loop $call $n $work/file" \
        "$sr --slow ./loop $call 0 $work/file" "$sr --slow ./loop $call $n_slow $work/file"
done

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a loads.txt
export work commit rounds loops n n_slow before KERNEL=$(uname -r)
python3 "$repo/bench/observe_report.py" "$out"
