#!/usr/bin/env bash
# Benchmarks of issue 15, in one run on one machine. Writes bench/results-web.md with medians
# and ratios:
#
#   1. time to first page of `shark serve` on a home holding 100,000 runs: start the server,
#      wait for its port, fetch `/` (the newest fifty runs); against `shark log -n 50` on the
#      same home; plus a filtered page (`/?q=...`, a command text that no run has, so the
#      whole table is scanned) and a run page, on a server already running;
#   2. `shark md -j 2` against `-j 1` on a document with two independent CPU-heavy blocks
#      (both forced to run with --fresh, after a first run recorded their lineage).
#
# Needs: cargo, hyperfine, curl, awk.
# Usage: bench/web.sh [WORKDIR] (default /tmp). FILL_RUNS (default 100000), PAGE_RUNS
# (default 20) and MD_RUNS (default 5) change the sizes.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/tmp}
fill_runs=${FILL_RUNS:-100000}
page_runs=${PAGE_RUNS:-20}
md_runs=${MD_RUNS:-5}
out="$repo/bench/results-web.md"
for tool in hyperfine curl awk; do
    command -v "$tool" >/dev/null || { echo "bench/web.sh: $tool is missing" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p shark
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p shark-lineage --example fill
target=${CARGO_TARGET_DIR:-$repo/target}
shark="$target/release/shark"
fill="$target/release/examples/fill"

work=$(mktemp -d "$parent/shark-bench-web.XXXXXX")
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
hf() { hyperfine --style basic "$@"; }
U="env -u HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET"

echo "== 1. first page on $fill_runs runs"
export SHARK_HOME="$work/home"
mkdir -p "$work/w"
"$fill" "$SHARK_HOME" "$work/w" "$fill_runs" >/dev/null
# One start-fetch-stop cycle of the server, on a port of its own choosing.
cat > "$work/first-page.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
log=\$(mktemp "$work/serve.XXXXXX")
"$shark" serve --port 0 2> "\$log" &
pid=\$!
until grep -q http:// "\$log"; do sleep 0.002; done
addr=\$(grep -o '127.0.0.1:[0-9]*' "\$log")
curl -sf "http://\$addr/" >/dev/null
kill "\$pid"; wait "\$pid" 2>/dev/null || true
rm -f "\$log"
SH
chmod +x "$work/first-page.sh"
hf --warmup 2 --runs "$page_runs" --export-json "$work/first.json" \
    "$work/first-page.sh" "$shark log -n 50"
"$shark" serve --port 0 2> "$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do grep -q http:// "$work/serve.log" 2>/dev/null && break; sleep 0.05; done
addr=$(grep -o '127.0.0.1:[0-9]*' "$work/serve.log")
hf --warmup 3 --runs "$page_runs" --export-json "$work/pages.json" \
    "curl -sf http://$addr/" "curl -sf 'http://$addr/?q=no-such-command'" \
    "curl -sf http://$addr/run/$((fill_runs / 2))"
kill "$server_pid"; server_pid=""

echo "== 2. -j 2 against -j 1"
export SHARK_HOME="$work/home-md"
mkdir -p "$work/md" && cd "$work/md"
cat > heavy.md <<'MD'
---
n: 40000000
---

```shark-run
mkdir -p /data/out
```

```shark-run
awk 'BEGIN { for (i = 0; i < %{n}; i++) s += i % 7; print s }' > /data/out/a.txt
```

```shark-run
awk 'BEGIN { for (i = 0; i < %{n}; i++) s += i % 11; print s }' > /data/out/b.txt
```
MD
$U "$shark" md heavy.md 2>/dev/null
hf --runs "$md_runs" --export-json "$work/md.json" \
    "$U $shark md -j 1 --fresh heavy.md" "$U $shark md -j 2 --fresh heavy.md"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

median() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; print('\n'.join('%s\t%.1f' % (x['command'], x['median']*1000) for x in r))" "$1"; }
{
    echo "# Web view and parallel documents (bench/web.sh)"
    echo
    echo "Commit $commit, $(nproc) CPUs, load average $load_before before and $load_after after."
    echo
    echo "## 1. Time to first page, $fill_runs runs in the home (medians, ms)"
    echo
    echo "| command | median ms |"
    echo "|---|---|"
    median "$work/first.json" | awk -F'\t' -v w="$work" '{ gsub(w, "…", $1); print "| `" $1 "` | " $2 " |" }'
    median "$work/pages.json" | awk -F'\t' '{ print "| `" $1 "` (server running) | " $2 " |" }'
    echo
    echo "## 2. \`shark md -j\` on two independent CPU-heavy blocks (medians, ms)"
    echo
    echo "| command | median ms |"
    echo "|---|---|"
    median "$work/md.json" | awk -F'\t' -v w="$work" '{ gsub(w, "…", $1); print "| `" $1 "` | " $2 " |" }'
    python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; print('\n-j 1 / -j 2 = %.2f' % (r[0]['median']/r[1]['median']))" "$work/md.json"
} > "$out"
cat "$out"
