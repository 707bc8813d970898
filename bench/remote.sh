#!/usr/bin/env bash
# Benchmarks of the remote cache (issue 13) against a real REAPI server (BuildGrid, in-memory
# CAS and Action Cache, on loopback), in one run on one machine. Writes
# bench/results-remote.md with medians and ratios:
#
#   1. a step with a 100 MB output (gzip -1 of 100 MB of random bytes): run by bash, run by
#      shark (no remote), reused by a second machine from the remote (a fresh shark home each
#      time, so every run fetches the 100 MB), and reused locally;
#   2. the cost of asking the remote for a trivial command: a hit and a miss, against the same
#      command without a remote;
#   3. the bytes a 20-step pipeline (bench/exec.sh's) puts on the wire: its first run uploading
#      from one machine, then its run on a second machine reusing every step.
#
# "Two machines" are two shark homes, home directories and checkouts in different places.
# Everything runs in a network namespace of its own (so the loopback byte counters of
# /proc/net/dev count only this benchmark's traffic, both directions, headers included).
#
# Needs: root (for the namespace), cargo, hyperfine, python3, gzip, ip; BuildGrid as installed
# by tests/setup/buildgrid.sh. Usage: bench/remote.sh [WORKDIR] (default /tmp). RUNS (default
# 10), BIG_RUNS (default 5) change the number of runs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${SHARK_BENCH_NETNS:-}" ]; then
    exec unshare --net env SHARK_BENCH_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

parent=${1:-/tmp}
runs=${RUNS:-10}
big_runs=${BIG_RUNS:-5}
out="$repo/bench/results-remote.md"
for tool in hyperfine python3 gzip; do
    command -v "$tool" >/dev/null || { echo "bench/remote.sh: $tool is missing" >&2; exit 2; }
done
"$repo/tests/setup/buildgrid.sh"
bgd="${SHARK_TEST_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/shark-test}/buildgrid-0.4.4/bin/bgd"
[ -x "$bgd" ] || { echo "bench/remote.sh: BuildGrid is not installed" >&2; exit 2; }

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p shark
shark="$repo/target/release/shark"
work=$(mktemp -d "$parent/shark-bench-remote.XXXXXX")
cd "$work"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)

port=50051
cat >bgd.yml <<EOF
server:
  - !channel
    address: "127.0.0.1:$port"
    insecure-mode: true
storages:
  - !lru-storage &cas
    size: 4G
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
instances:
  - name: ""
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
EOF
"$bgd" server start bgd.yml >bgd.log 2>&1 &
bgd_pid=$!
trap 'kill $bgd_pid 2>/dev/null; wait $bgd_pid 2>/dev/null; rm -rf "$work"' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.2; done
url="grpc://127.0.0.1:$port"

# Each machine: its own HOME, shark home and checkout; the same minimal environment (env -i
# also drops hyperfine's randomised variable, which would otherwise change every key).
machine() { # NAME: prints the env prefix of a command on machine NAME
    mkdir -p "$work/$1/home" "$work/$1/work"
    echo "env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME=$work/$1/home SHARK_HOME=$work/$1/shark"
}
A=$(machine a); B=$(machine b)
hf() { hyperfine --style basic "$@"; }
lo_bytes() { awk '/lo:/ { print $2 + $10 }' /proc/net/dev; }

echo "== 1. a step with a 100 MB output"
step='head -c 100000000 /dev/urandom | gzip -1 > big.gz'
(cd a/work && $A SHARK_REMOTE=$url "$shark" -c "$step")
size=$(stat -c %s a/work/big.gz)
hf --runs "$big_runs" --export-json "$work/big.json" \
    --prepare "rm -rf $work/b/work/big.gz $work/b/shark" \
    --command-name "bash" "cd $work/b/work && bash -c '$step'" \
    --command-name "shark, no remote (runs)" "cd $work/b/work && $B $shark -c '$step'" \
    --command-name "shark, remote hit (fetches 100 MB)" "cd $work/b/work && $B SHARK_REMOTE=$url $shark -c '$step'"
(cd b/work && $B SHARK_REMOTE=$url "$shark" -c "$step")
hf --runs "$big_runs" --export-json "$work/big-local.json" \
    --command-name "shark, local reuse" "cd $work/b/work && $B SHARK_REMOTE=$url $shark -c '$step'"
cmp a/work/big.gz b/work/big.gz

echo "== 2. remote lookup: hit and miss"
(cd a/work && $A SHARK_REMOTE=$url "$shark" run -- true)
# A template home that has run something (so its databases exist) but not `true`.
(cd b/work && rm -rf "$work/b/shark" && $B "$shark" run -- echo warm >/dev/null)
cp -r "$work/b/shark" "$work/template"
(cd b/work && $B "$shark" run -- true && cp -r "$work/b/shark" "$work/template-true")
fresh="rm -rf $work/b/shark && cp -r $work/template $work/b/shark"
hf --warmup 2 --runs "$runs" --export-json "$work/lookup.json" \
    --prepare "rm -rf $work/b/shark && cp -r $work/template-true $work/b/shark" \
    --command-name "local hit" "cd $work/b/work && $B $shark run -- true" \
    --prepare "$fresh" \
    --command-name "remote hit" "cd $work/b/work && $B SHARK_REMOTE=$url $shark run -- true" \
    --prepare "$fresh" \
    --command-name "local miss (runs), no remote" "cd $work/b/work && $B $shark run -- true miss" \
    --prepare "$fresh" \
    --command-name "remote miss (runs), uploads off" \
    "cd $work/b/work && $B SHARK_REMOTE=$url SHARK_REMOTE_UPLOAD=false $shark run -- true miss"

echo "== 3. a 20-step pipeline"
sed -n '/^cat >steps.tsv/,/^PY$/p' "$repo/bench/exec.sh" >make-pipeline.sh
bash make-pipeline.sh
mkdir -p a/work/pipe b/work/pipe
cp -r proto/. a/work/pipe
cp -r proto/. b/work/pipe
inputs=$(du -sb proto/in | cut -f1)
before=$(lo_bytes)
t0=$(date +%s.%N)
(cd a/work/pipe && $A SHARK_REMOTE=$url "$shark" pipeline.sh >/dev/null)
t1=$(date +%s.%N)
mid=$(lo_bytes)
(cd b/work/pipe && $B SHARK_REMOTE=$url "$shark" pipeline.sh >/dev/null)
t2=$(date +%s.%N)
after=$(lo_bytes)
(cd a/work/pipe && $A "$shark" log -n 20 --json) >a-log.jsonl
(cd b/work/pipe && $B "$shark" log -n 40 --json) >b-log.jsonl
outputs=$(cd a/work/pipe && du -scb s[0-9][0-9]* | tail -1 | cut -f1)
digest() { (cd "$1" && find s[0-9][0-9]* -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }
[ "$(digest a/work/pipe)" = "$(digest b/work/pipe)" ]
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== writing $out"
export work commit load_before load_after size runs big_runs before mid after t0 t1 t2 inputs outputs
python3 - "$out" <<'PY'
import json, os, sys
w = os.environ["work"]
def load(name):
    return {r["command"]: r for r in json.load(open(f"{w}/{name}.json"))["results"]}
big = load("big") | load("big-local")
look = load("lookup")
ms = lambda r: r["median"] * 1000
def row(name, r, ref):
    return (f"| {name} | {ms(r):.1f} | {r['min'] * 1000:.1f} | "
            f"{(r['user'] + r['system']) * 1000:.1f} | {r['median'] / ref['median']:.2f}x |")
L = ["# Benchmarks: the remote cache\n"]
L.append(f"Written by `bench/remote.sh` (issue 13) at {os.environ['commit']}, in one run on this "
         f"machine: {os.cpu_count()} CPUs, load average {os.environ['load_before']} before and "
         f"{os.environ['load_after']} after (other work shared the machine). The server is "
         "BuildGrid 0.4.4 (Python) with an in-memory CAS and Action Cache on 127.0.0.1, which "
         "offers SHA-256 only; shark hashes each blob once more for it. Times are hyperfine "
         "medians in ms; *min* the fastest run; *CPU* user + system of the command and its children "
         "(not the server's).\n")
L.append(f"## 1. A step with a {int(os.environ['size']) / 1e6:.0f} MB output ({os.environ['big_runs']} runs each)\n")
L.append("`head -c 100000000 /dev/urandom | gzip -1 > big.gz` on machine b, each run from no output "
         "and (but the last row) an empty shark home; machine a uploaded it before.\n")
L.append("| command | median | min | CPU | vs shark, no remote |")
L.append("|---|---:|---:|---:|---:|")
ref = big["shark, no remote (runs)"]
for name in ["bash", "shark, no remote (runs)", "shark, remote hit (fetches 100 MB)", "shark, local reuse"]:
    L.append(row(name, big[name], ref))
L.append("")
L.append(f"## 2. Asking the remote: a hit and a miss ({os.environ['runs']} runs each)\n")
L.append("`shark run -- true` on machine b, each run in a copy of a prepared shark home: for the "
         "local hit one that ran it, otherwise one that did not. The remote hit fetches, checks, "
         "records and restores machine a's run; the miss asks (one GetActionResult), finds "
         "nothing and runs the command (`true miss`, uploads off).\n")
L.append("| command | median | min | CPU | vs local hit |")
L.append("|---|---:|---:|---:|---:|")
for name in ["local hit", "remote hit", "local miss (runs), no remote", "remote miss (runs), uploads off"]:
    L.append(row(name, look[name], look["local hit"]))
hit = ms(look["remote hit"]) - ms(look["local hit"])
miss = ms(look["remote miss (runs), uploads off"]) - ms(look["local miss (runs), no remote"])
L.append(f"\nWhat the remote adds on loopback: {hit:.1f} ms to a hit (over a local hit), "
         f"{miss:.1f} ms to a miss (over a local miss).\n")
before, mid, after = (int(os.environ[k]) for k in ["before", "mid", "after"])
t0, t1, t2 = (float(os.environ[k]) for k in ["t0", "t1", "t2"])
alog = [json.loads(l) for l in open(f"{w}/a-log.jsonl")]
blog = [json.loads(l) for l in open(f"{w}/b-log.jsonl")]
remote = sum(1 for r in blog if r.get("remote"))
L.append("## 3. The 20-step pipeline of `bench/exec.sh`\n")
L.append(f"Inputs: 1,000 files, {int(os.environ['inputs']) / 1e6:.2f} MB; outputs "
         f"{int(os.environ['outputs']) / 1e6:.2f} MB. Bytes on the loopback interface of the "
         "benchmark's own network namespace (both directions, TCP/IP headers included), one run each.\n")
L.append("| run | wall s | bytes on the wire | per step |")
L.append("|---|---:|---:|---:|")
L.append(f"| machine a, first run, uploading | {t1 - t0:.2f} | {mid - before:,} | {(mid - before) / 20:,.0f} |")
L.append(f"| machine b, every step from the remote | {t2 - t1:.2f} | {after - mid:,} | {(after - mid) / 20:,.0f} |")
L.append(f"\nOn machine b, {remote} of 20 steps came from the remote; the outputs' digest matches machine a's.\n")
open(sys.argv[1], "w").write("\n".join(L))
PY
cat "$out"
