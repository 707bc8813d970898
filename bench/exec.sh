#!/usr/bin/env bash
# Benchmarks of memoized execution and the lineage queries (issue 4), in one run on one
# machine. Writes bench/results-exec.md with medians and ratios:
#
#   1. `shark run -- true` reused and missed, against `bash -c true` and `true`; one command
#      writing 1,000 small files, under shark and bash;
#   2. a 20-step pipeline over 1,000 small files as a shark script, the same bash script, an
#      equivalent Makefile and an equivalent dvc.yaml: first run, and the no-op re-check;
#   3. `shark log -n 20` and `shark lineage FILE` on a database holding 100,000 runs.
#
# Needs: cargo, hyperfine, make, python3, /usr/bin/time (GNU), dvc (pip install dvc).
#
# Usage: bench/exec.sh [WORKDIR]   (default /tmp). Everything goes in a fresh directory inside
# WORKDIR, removed at the end. MICRO_RUNS (default 200), MANY_RUNS (default 20), PIPE_RUNS (default 5), QUERY_RUNS
# (default 30) and FILL_RUNS (default 100000) change the sizes.
#
# hyperfine puts a randomised variable (HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET) in each
# command's environment. The environment is part of shark's cache key, so every shark command
# here runs under `env -u` that variable, or nothing would ever be reused; the `env -u ... true`
# row shows what that wrapper costs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/tmp}
[ -d "$parent" ] || { echo "bench/exec.sh: $parent is not a directory" >&2; exit 2; }
micro_runs=${MICRO_RUNS:-200}
many_runs=${MANY_RUNS:-20}
pipe_runs=${PIPE_RUNS:-5}
query_runs=${QUERY_RUNS:-30}
fill_runs=${FILL_RUNS:-100000}
out="$repo/bench/results-exec.md"

for tool in hyperfine make python3 /usr/bin/time dvc; do
    command -v "$tool" >/dev/null || { echo "bench/exec.sh: $tool is missing" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p shark
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p shark-lineage --example fill
shark="$repo/target/release/shark"
fill="$repo/target/release/examples/fill"

work=$(mktemp -d "$parent/shark-bench-exec.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)

U="env -u HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET"
export DVC_NO_ANALYTICS=1
hf() { hyperfine --style basic "$@"; }

echo "== 1. one trivial command"
mkdir -p micro && cd micro
export SHARK_HOME="$work/home-micro"
$U "$shark" run -- true
hf -N --warmup 10 --runs "$micro_runs" --export-json "$work/micro.json" \
    "$U $shark run -- true" "$U $shark run --fresh -- true" \
    "$U bash -c true" "$U true" "true"

echo "== 1b. one command writing 1,000 small files"
# New content every run ($RANDOM), so each run stores 1,000 new blobs; --fresh so none is
# reused. The prepare step removes the outputs, so every run creates the files anew.
many='mkdir -p out && for i in $(seq 1000); do echo "file $i $RANDOM$RANDOM" > out/f$i.txt; done'
hf -N --warmup 2 --runs "$many_runs" --export-json "$work/many.json" --prepare "rm -rf out" \
    --command-name "bash" "bash -c '$many'" \
    --command-name "shark run --fresh" "$U $shark run --fresh -- bash -c '$many'"
cd "$work"

echo "== 2. a 20-step pipeline over 1,000 files"
# The steps: dependencies, the one output (a file or a directory), the command. Steps 3, 4, 12
# and 17 loop over files, one process per file; 14 and 19 are Python.
cat >steps.tsv <<'EOF'
in	s01_all.txt	cat in/*.txt > s01_all.txt
s01_all.txt	s02_lower.txt	tr 'A-Z' 'a-z' < s01_all.txt > s02_lower.txt
in	s03	mkdir -p s03 && for f in in/*.txt; do tr -d '[:punct:]' < "$f" > "s03/${f##*/}"; done
s03	s04	mkdir -p s04 && for f in s03/*.txt; do wc -w < "$f" > "s04/${f##*/}"; done
s04	s05_total.txt	cat s04/*.txt | awk '{ s += $1 } END { print s }' > s05_total.txt
s02_lower.txt	s06_words.txt	tr -cs 'a-z' '\n' < s02_lower.txt | grep -v '^$' > s06_words.txt
s06_words.txt	s07_sorted.txt	LC_ALL=C sort s06_words.txt > s07_sorted.txt
s07_sorted.txt	s08_counts.txt	uniq -c s07_sorted.txt > s08_counts.txt
s08_counts.txt	s09_ranked.txt	LC_ALL=C sort -k1,1nr -k2,2 s08_counts.txt > s09_ranked.txt
s09_ranked.txt	s10_top.txt	head -n 50 s09_ranked.txt > s10_top.txt
s10_top.txt	s11_topwords.txt	awk '{ print $2 }' s10_top.txt > s11_topwords.txt
s03 s11_topwords.txt	s12	mkdir -p s12 && for f in s03/*.txt; do grep -c -i -w -F -f s11_topwords.txt "$f" > "s12/${f##*/}" || true; done
s12	s13_hits.txt	awk '{ print FILENAME, $1 }' s12/*.txt > s13_hits.txt
s04 s13_hits.txt	s14_stats.json	python3 -c 'import glob, json, sys; w = [int(open(p).read()) for p in sorted(glob.glob("s04/*.txt"))]; h = [int(l.split()[1]) for l in open("s13_hits.txt")]; json.dump({"files": len(w), "mean_words": sum(w) / len(w), "mean_hits": sum(h) / len(h)}, sys.stdout, sort_keys=True)' > s14_stats.json
s13_hits.txt	s15_best.txt	LC_ALL=C sort -k2,2nr -k1,1 s13_hits.txt | head -n 10 > s15_best.txt
s15_best.txt	s16_names.txt	cut -d' ' -f1 s15_best.txt | sed 's|^s12/||' > s16_names.txt
s03 s16_names.txt	s17	mkdir -p s17 && while read -r n; do LC_ALL=C sort -u "s03/$n" > "s17/$n"; done < s16_names.txt
s17	s18_lines.txt	cat s17/*.txt | wc -l > s18_lines.txt
s05_total.txt s14_stats.json s18_lines.txt	s19_report.txt	python3 -c 'import json; s = json.load(open("s14_stats.json")); print("files", s["files"], "words", open("s05_total.txt").read().strip(), "mean_hits", round(s["mean_hits"], 3), "distinct_lines", open("s18_lines.txt").read().strip())' > s19_report.txt
s05_total.txt s18_lines.txt s10_top.txt s19_report.txt	s20_digest.txt	cat s05_total.txt s18_lines.txt s10_top.txt s19_report.txt | sha256sum > s20_digest.txt
EOF
python3 "$repo/bench/pipeline_inputs.py" steps.tsv proto
python3 - <<'PY'
import json, re
steps = [line.rstrip("\n").split("\t") for line in open("steps.tsv")]
dirs = {"in"} | {out for _, out, _ in steps if "." not in out}
with open("proto/Makefile", "w") as f:
    f.write("SHELL := /bin/bash\n.DELETE_ON_ERROR:\n")
    f.write("all: " + " ".join(out for _, out, _ in steps) + "\n")
    for deps, out, cmd in steps:
        pre = []
        for d in deps.split():
            pre += [d, f"$(wildcard {d}/*.txt)"] if d in dirs else [d]
        f.write(f"\n{out}: {' '.join(pre)}\n\t{cmd.replace('$', '$$')}\n")
with open("proto/dvc.yaml", "w") as f:
    f.write("stages:\n")
    for deps, out, cmd in steps:
        name = re.match(r"s\d\d", out).group(0)
        # DVC interpolates ${...}; a backslash keeps the shell's own.
        escaped = json.dumps(cmd.replace("${", "\\${"))
        f.write(f"  {name}:\n    cmd: {escaped}\n")
        f.write("    deps:\n" + "".join(f"      - {d}\n" for d in deps.split()))
        f.write(f"    outs:\n      - {out}\n")
PY
for v in bash shark make dvc; do cp -r proto "p-$v"; done
outs="s[0-9][0-9]*"
digest() { (cd "$1" && find s[0-9][0-9]* -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

# First runs: each from a state with no outputs (and, for shark, an empty home).
pipe_home="$work/home-pipe"
hf --runs "$pipe_runs" --export-json "$work/first.json" \
    --prepare "cd $work/p-bash && rm -rf $outs" \
    --prepare "cd $work/p-shark && rm -rf $outs $pipe_home" \
    --prepare "cd $work/p-make && rm -rf $outs" \
    --command-name "bash pipeline.sh" "cd $work/p-bash && bash pipeline.sh" \
    --command-name "shark pipeline.sh" \
    "cd $work/p-shark && $U SHARK_HOME=$pipe_home $shark pipeline.sh >/dev/null" \
    --command-name "make" "cd $work/p-make && make -s"

# One more first run of each under GNU time, for CPU time and peak memory.
gtime() { /usr/bin/time -f "%e %U %S %M" -o "$work/time-$1.txt" "${@:2}"; }
(cd p-bash && rm -rf $outs && gtime bash bash pipeline.sh)
(cd p-shark && rm -rf $outs "$pipe_home" && SHARK_HOME=$pipe_home gtime shark "$shark" pipeline.sh >/dev/null)
(cd p-make && rm -rf $outs && gtime make make -s)
(cd p-dvc && dvc init --no-scm -q && gtime dvc dvc repro -q)

# No-op re-runs: everything is up to date.
(cd p-shark && $U SHARK_HOME=$pipe_home "$shark" pipeline.sh >/dev/null)
cd "$work"
hf --warmup 1 --runs "$pipe_runs" --export-json "$work/noop.json" \
    --command-name "shark pipeline.sh" \
    "cd $work/p-shark && $U SHARK_HOME=$pipe_home $shark pipeline.sh >/dev/null" \
    --command-name "make -q" "cd $work/p-make && make -q" \
    --command-name "make" "cd $work/p-make && make -s" \
    --command-name "dvc status" "cd $work/p-dvc && dvc status -q" \
    --command-name "dvc repro" "cd $work/p-dvc && dvc repro -q"
SHARK_HOME=$pipe_home "$shark" log -n 40 --json >"$work/pipe-log.jsonl"

for v in bash shark make dvc; do echo "$v $(digest "p-$v")"; done >"$work/digests.txt"
cat "$work/digests.txt"

echo "== 3. queries on $fill_runs runs"
big_home="$work/home-big"
/usr/bin/time -f "%e" -o "$work/time-fill.txt" "$fill" "$big_home" "$work/big" "$fill_runs" >"$work/deep.txt"
deep=$(cat "$work/deep.txt")
export SHARK_HOME="$big_home"
"$shark" lineage "$deep" >"$work/lineage.txt"
hf -N --warmup 3 --runs "$query_runs" --export-json "$work/query.json" \
    "$shark log -n 20" "$shark lineage $deep" "$shark lineage --json $deep"
db_size=$(du -bc "$big_home"/lineage.db* | tail -1 | cut -f1)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== writing $out"
export work commit load_before load_after db_size fill_runs micro_runs many_runs pipe_runs query_runs
python3 - "$out" <<'PY'
import json, os, re, sys
w = os.environ["work"]
def load(name):
    return {r["command"]: r for r in json.load(open(f"{w}/{name}.json"))["results"]}
def ms(r):
    return r["median"] * 1000
micro, first, noop, query = load("micro"), load("first"), load("noop"), load("query")
many = load("many")
def row(name, r, goal="", ref=None):
    ratio = f"{r['median'] / ref['median']:.2f}x" if ref else ""
    return f"| `{name}` | {ms(r):.1f} | {r['min'] * 1000:.1f} | {(r['user'] + r['system']) * 1000:.1f} | {ratio} | {goal} |"
def find(results, prefix):
    return next(r for c, r in results.items() if c.startswith(prefix) or c == prefix)
U = "env -u HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET "
hit = next(r for c, r in micro.items() if c.endswith("run -- true"))
miss = next(r for c, r in micro.items() if c.endswith("run --fresh -- true"))
env_true = micro[U + "true"]
times = {v: open(f"{w}/time-{v}.txt").read().split() for v in ["bash", "shark", "make", "dvc"]}
digests = dict(l.split() for l in open(f"{w}/digests.txt"))
log = [json.loads(l) for l in open(f"{w}/pipe-log.jsonl")]
def yes(ok):
    return "met" if ok else "**missed**"
L = []
L.append("# Benchmarks: memoized execution and lineage queries\n")
L.append(f"Written by `bench/exec.sh` (issue 4) at {os.environ['commit']}, in one run on this machine: "
         f"{os.cpu_count()} CPUs, load average {os.environ['load_before']} before and "
         f"{os.environ['load_after']} after (other work shared the machine). Times are "
         "hyperfine medians in ms unless said otherwise; *min* is the fastest run; *CPU* is "
         "user + system time of the command and its children.\n")
L.append(f"## 1. One trivial command ({os.environ['micro_runs']} runs each)\n")
L.append("Every command runs under `env -u HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET` (see the "
         "script's header); the ratio is to that wrapper running `true`.\n")
L.append("| command | median | min | CPU | vs `env -u ... true` | goal |")
L.append("|---|---:|---:|---:|---:|---|")
L.append(row("shark run -- true (reused)", hit, f"< 3 ms: {yes(ms(hit) < 3)}", env_true))
L.append(row("shark run --fresh -- true (miss)", miss, f"< 10 ms: {yes(ms(miss) < 10)}", env_true))
L.append(row("bash -c true", micro[U + "bash -c true"], "", env_true))
L.append(row("env -u ... true", env_true, "", env_true))
L.append(row("true (bare, no wrapper)", micro["true"], "", env_true))
L.append("")
L.append(f"Net of the wrapper (its median, {ms(env_true):.1f} ms, subtracted; the goals are judged "
         f"on the medians above): reused {ms(hit) - ms(env_true):.1f} ms, "
         f"miss {ms(miss) - ms(env_true):.1f} ms.\n")
L.append(f"### One command writing 1,000 small files ({os.environ['many_runs']} runs each)\n")
L.append("`mkdir -p out && for i in $(seq 1000); do echo \"file $i $RANDOM$RANDOM\" > out/f$i.txt; "
         "done`, run by `bash -c` and by `shark run --fresh -- bash -c` (under the `env -u` "
         "wrapper), each from no `out/`: every shark run stores 1,000 new blobs.\n")
L.append("| command | median | min | CPU | vs bash | goal |")
L.append("|---|---:|---:|---:|---:|---|")
for name in ["bash", "shark run --fresh"]:
    L.append(row(name, many[name], "", many["bash"]))
L.append("")
L.append(f"## 2. A 20-step pipeline over 1,000 files ({os.environ['pipe_runs']} runs each)\n")
L.append("Four forms of the same 20 steps (see `steps.tsv` in the script): a shark script, the "
         "same file run by bash, a Makefile and a `dvc.yaml` (in a `dvc init --no-scm` "
         "directory). Four steps loop over files with one process per file (about 3,000 "
         "processes in all).\n")
bash_first, shark_first = first["bash pipeline.sh"], first["shark pipeline.sh"]
ratio = shark_first["median"] / bash_first["median"]
L.append("### First run (no outputs, empty shark home)\n")
L.append("| command | median | min | CPU | vs bash | goal |")
L.append("|---|---:|---:|---:|---:|---|")
L.append(row("bash pipeline.sh", bash_first, "", bash_first))
L.append(row("shark pipeline.sh", shark_first, f"<= 1.10x bash: {yes(ratio <= 1.10)}", bash_first))
L.append(row("make", first["make"], "", bash_first))
L.append("")
L.append("One more first run each under GNU time (seconds; peak RSS of the largest process):\n")
L.append("| form | wall s | user s | sys s | peak RSS MiB |")
L.append("|---|---:|---:|---:|---:|")
for v, (e, u, s, m) in times.items():
    L.append(f"| {v} | {e} | {u} | {s} | {int(m) / 1024:.0f} |")
L.append("")
sn = noop["shark pipeline.sh"]
L.append("### No-op re-run (everything up to date)\n")
L.append("| command | median | min | CPU | vs `make -q` | goal |")
L.append("|---|---:|---:|---:|---:|---|")
L.append(row("shark pipeline.sh", sn, f"< 200 ms: {yes(ms(sn) < 200)}", noop["make -q"]))
for name in ["make -q", "make", "dvc status", "dvc repro"]:
    L.append(row(name, noop[name], "", noop["make -q"]))
L.append("")
reused = sum(1 for r in log[:20] if r["cached"])
L.append(f"In the last shark re-run, {reused} of 20 steps were reused. Digest of all outputs "
         "(the same in every form means they computed the same thing): "
         + ", ".join(f"{v} `{d}`" for v, d in digests.items()) + ".\n")
L.append(f"## 3. Queries on {int(os.environ['fill_runs']):,} runs ({os.environ['query_runs']} runs each)\n")
fill_s = open(f"{w}/time-fill.txt").read().strip()
L.append("The database is filled by `lineage/examples/fill.rs`: 100 interleaved chains, each step "
         "reading its chain's previous output, about fifty inputs per run (interpreter, shared "
         "libraries, modules, absent paths, script, config), a reuse row after every fifth run "
         f"(so {int(os.environ['fill_runs']) * 6 // 5:,} rows). Filling took {fill_s} s; the "
         f"database is {int(os.environ['db_size']) / 2**20:.0f} MiB. `shark lineage` is asked about "
         "the newest output of a chain 1,000 steps long, so it walks the default 64 levels.\n")
L.append("| command | median | min | CPU | goal |")
L.append("|---|---:|---:|---:|---|")
for c, r in query.items():
    short = "shark " + c.split(" ", 1)[1].replace(w, "$WORK")
    L.append(f"| `{short}` | {ms(r):.1f} | {r['min'] * 1000:.1f} | {(r['user'] + r['system']) * 1000:.1f} | < 50 ms: {yes(ms(r) < 50)} |")
L.append("")
L.append("Reproduce: `bench/exec.sh` (about ten minutes here).\n")
# Earlier results stay below the new ones, for comparison: the run this one replaces moves
# to the top of them, its headings demoted.
marker = "## Earlier results"
old = open(sys.argv[1]).read() if os.path.exists(sys.argv[1]) else ""
top, _, earlier = old.partition(marker)
top = top.split("\n", 1)[1].strip() if top.startswith("# ") else ""
if top and "Written by" in top:
    at = re.search(r"Written by `bench/exec.sh` \(issue 4\)(?: at (\S+))?,", top)
    name = at.group(1) if at and at.group(1) else "an earlier commit"
    top = re.sub(r"^(#+) ", lambda m: "##" + m.group(1) + " ", top, flags=re.M)
    earlier = f"### Run at {name}\n\n{top}\n\n" + earlier.lstrip("\n")
L.append(marker + "\n")
L.append(earlier.lstrip("\n") if earlier.strip() else "None yet.\n")
open(sys.argv[1], "w").write("\n".join(L))
PY
cat "$out"
