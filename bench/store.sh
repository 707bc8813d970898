#!/usr/bin/env bash
# Benchmarks of shark's store against the tools it stands in for (issue 2), in one run on one
# machine. Writes bench/results-store.md with medians and ratios.
#
# Needs: cargo, hyperfine, b3sum (cargo install b3sum), zstd, python3, /usr/bin/time (GNU).
# As root it also drops the page cache before each restore run (so the blob and cp's source
# are both cold) and measures restores on btrfs and xfs loop mounts (btrfs-progs, xfsprogs).
#
# Usage: bench/store.sh [WORKDIR]   (default /tmp; needs ~30 GB free there). Everything goes in
# a fresh directory inside WORKDIR, removed at the end. RUNS=N sets hyperfine's run count
# (default 5). BEFORE=REV also builds store-tool at git revision REV (or BEFORE_TOOL=PATH uses
# one built already) and measures its restores and sparse-file handling beside this one's.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/tmp}
[ -d "$parent" ] || { echo "bench/store.sh: $parent is not a directory" >&2; exit 2; }
work=$(mktemp -d "$parent/shark-bench-store.XXXXXX")
runs=${RUNS:-5}
out="$repo/bench/results-store.md"

cleanup() {
    for m in "$work"/mnt-*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
    rm -rf "$work"
}
trap cleanup EXIT

for tool in hyperfine b3sum zstd python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench/store.sh: $tool is missing" >&2; exit 2; }
done
root=false; [ "$(id -u)" = 0 ] && root=true

cargo build --release --quiet -p shark-store --example store-tool --manifest-path "$repo/Cargo.toml"
tool="$repo/target/release/examples/store-tool"
mkdir -p "$work" && cd "$work"
before=${BEFORE_TOOL:-}
if [ -z "$before" ] && [ -n "${BEFORE:-}" ]; then
    mkdir before-src
    git -C "$repo" archive "$BEFORE" | tar -x -C before-src
    CARGO_TARGET_DIR="$work/before-target" cargo build --release --quiet -p shark-store \
        --example store-tool --manifest-path before-src/Cargo.toml
    before="$work/before-target/release/examples/store-tool"
fi

cold="sync"
$root && cold="sync; echo 3 >/proc/sys/vm/drop_caches"

echo "== inputs"
head -c 1G /dev/urandom >rand.bin
# 500 MB of sensor readings: 400 stations with fixed coordinates, hourly timestamps, readings
# with one or two decimals -- the kind of CSV the store sees from data pipelines.
python3 - <<'PY'
import random
random.seed(7)
stations = [(f"ST{i:04d}", round(random.uniform(-60, 70), 4), round(random.uniform(-180, 180), 4)) for i in range(400)]
with open("data.csv", "w") as f:
    f.write("station,lat,lon,time,temperature_c,humidity_pct,pressure_hpa,status\n")
    size, hour, rows = 0, 0, []
    while size < 500_000_000:
        day, h = divmod(hour, 24)
        ts = f"2023-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{h:02d}:00:00Z"
        for sid, lat, lon in stations:
            line = f"{sid},{lat},{lon},{ts},{random.gauss(12, 8):.1f},{random.randint(20, 100)},{random.gauss(1013, 9):.1f},{'ok' if random.random() < 0.97 else 'suspect'}\n"
            rows.append(line)
            size += len(line)
        hour += 1
        if len(rows) > 50_000:
            f.write("".join(rows)); rows = []
    f.write("".join(rows))
PY
csv_size=$(stat -c %s data.csv)

hf() { hyperfine --style basic --runs "$runs" "$@"; }

echo "== hashing 1 GiB"
hf --warmup 1 --export-json hash.json "$tool hash rand.bin" "b3sum rand.bin"

echo "== storing 1 GiB of random bytes"
hf --prepare "rm -rf st cp.bin; sync" --export-json put.json \
    "$tool put st rand.bin" "cp rand.bin cp.bin" "cp rand.bin cp.bin && sync cp.bin"

echo "== storing 500 MB of CSV"
hf --prepare "rm -rf stc data.csv.zst; sync" --export-json csv.json \
    "$tool put stc data.csv" "zstd -1 -q -f data.csv -o data.csv.zst"
rm -rf stc && "$tool" put stc data.csv >/dev/null
csv_stored=$(find stc/blobs -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
zstd_size=$(stat -c %s data.csv.zst)

echo "== restoring 1 GiB"
rm -rf st && "$tool" put st rand.bin >/dev/null
digest=$("$tool" hash rand.bin)
hf --prepare "rm -f restored.bin cp.bin; $cold" \
    --export-json restore.json \
    "$tool restore st $digest restored.bin" "cp rand.bin cp.bin" "cp rand.bin cp.bin && sync cp.bin"
rm -f restored.bin cp.bin

reflink_rows=""
for fs in btrfs xfs; do
    if ! $root || ! command -v "mkfs.$fs" >/dev/null; then
        reflink_rows+="| $fs | skipped (needs root and mkfs.$fs) | | |"$'\n'; continue
    fi
    echo "== restore on $fs"
    truncate -s 3G "$fs.img" && "mkfs.$fs" -q "$fs.img" && mkdir -p "mnt-$fs"
    mount -o loop "$fs.img" "mnt-$fs"
    "$tool" put "mnt-$fs/st" rand.bin >/dev/null
    python3 "$repo/bench/interleave.py" "$runs" "rm -f mnt-$fs/r.bin; sync" "reflink-$fs.json" \
        "$tool restore mnt-$fs/st $digest mnt-$fs/r.bin" \
        ${before:+"$before restore mnt-$fs/st $digest mnt-$fs/r.bin"}
    how=$("$tool" restore "mnt-$fs/st" "$digest" "mnt-$fs/r.bin")
    shared=$(filefrag -v "mnt-$fs/r.bin" | grep -c shared || true)
    median=$(python3 -c "import json,statistics;r=json.load(open('reflink-$fs.json'))['results'];print(' / before '.join(f'{statistics.median(x[\"times\"]):.3f} s' for x in r))")
    reflink_rows+="| $fs | $how | ${median} | $shared extents marked shared (filefrag -v) |"$'\n'
    umount "mnt-$fs"; rm -f "$fs.img"
done

echo "== restoring 1 GiB: raw and zstd, before and after, against cp and zstd -d"
cat data.csv data.csv | head -c 1G >csv1g.csv
rm -rf sr sz && "$tool" put sr rand.bin >/dev/null && "$tool" put sz csv1g.csv >/dev/null
dz=$("$tool" hash csv1g.csv)
zstd -1 -q -f csv1g.csv -o csv1g.csv.zst
cmds_raw=("$tool restore sr $digest r.bin" "cp rand.bin r.bin")
cmds_zst=("$tool restore sz $dz r.csv" "zstd -d -q -f csv1g.csv.zst -o r.csv")
if [ -n "$before" ]; then
    cmds_raw+=("$before restore sr $digest r.bin")
    cmds_zst+=("$before restore sz $dz r.csv")
fi
# Interleaved (see bench/interleave.py): on a shared machine, the ratios of one run compare
# commands that met the same load. Cold: page cache dropped before each run (as root); warm:
# blob and source cached, earlier output flushed.
ilv() { python3 "$repo/bench/interleave.py" "$runs" "$@"; }
ilv "rm -f r.bin; $cold" restore-raw.json "${cmds_raw[@]}"
ilv "rm -f r.bin; sync" restore-raw-warm.json "${cmds_raw[@]}"
ilv "rm -f r.csv; $cold" restore-zstd.json "${cmds_zst[@]}"
ilv "rm -f r.csv; sync" restore-zstd-warm.json "${cmds_zst[@]}"
# Over an existing file of the same size: the new restore exchanges instead of renaming over.
cmds_over=("$tool restore sr $digest r.bin")
[ -n "$before" ] && cmds_over+=("$before restore sr $digest r.bin")
ilv "cp rand.bin r.bin; sync" restore-over.json "${cmds_over[@]}"
rm -f r.bin r.csv csv1g.csv csv1g.csv.zst

echo "== a 10 GiB sparse file with 4 KiB of data"
truncate -s 10G sparse.img
head -c 4096 /dev/urandom | dd of=sparse.img bs=4096 seek=1310720 conv=notrunc status=none
timed() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
sparse_rows=""
for t in "$tool" $before; do
    label=after; [ "$t" = "$tool" ] || label=before
    rm -rf ssp sp.out
    read -r h_s h_k < <(timed "$t" hash sparse.img)
    read -r p_s p_k < <(timed "$t" put ssp sparse.img)
    ds=$("$tool" hash sparse.img)
    sync; $root && echo 3 >/proc/sys/vm/drop_caches
    read -r r_s r_k < <(timed "$t" restore ssp "$ds" sp.out)
    alloc=$(( $(stat -c %b sp.out) * $(stat -c %B sp.out) ))
    read -r v_s v_k < <(timed "$t" verify ssp)
    stored=$(du -sk ssp | cut -f1)
    sparse_rows+="| $label | ${h_s} s, $((h_k / 1024)) MiB | ${p_s} s, $((p_k / 1024)) MiB, store ${stored} KiB | ${r_s} s, $((r_k / 1024)) MiB, ${alloc} bytes allocated | ${v_s} s, $((v_k / 1024)) MiB |"$'\n'
    rm -rf ssp sp.out
done
rm -f sparse.img

echo "== peak memory storing 4 GiB"
for i in 1 2 3 4; do cat rand.bin; done >big.bin
# (not `| head -c 4G`: cat's SIGPIPE would fail the pipeline under pipefail)
for i in $(seq 9); do cat data.csv; done >big.csv && truncate -s 4G big.csv
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
rss_raw=$(rss "$tool" put st4 big.bin)
rss_csv=$(rss "$tool" put st4 big.csv)
rm -f big.bin big.csv

python3 - "$out" "$csv_size" "$csv_stored" "$zstd_size" "$rss_raw" "$rss_csv" "$runs" "${before:+yes}" <<PY
import json, statistics, sys, platform, os, subprocess
out, csv_size, csv_stored, zstd_size, rss_raw, rss_csv, runs, has_before = sys.argv[1:]
def med(f):
    return [statistics.median(r["times"]) for r in json.load(open(f))["results"]]
h, p, c, r = med("hash.json"), med("put.json"), med("csv.json"), med("restore.json")
gib = 1 << 30
rev = subprocess.run(["git", "-C", "$repo", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "?"
load = open("/proc/loadavg").read().split()[:3]
cpu = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = [
 "# Store benchmarks",
 "",
 f"Produced by \`bench/store.sh\` at {rev} ({runs} runs each, medians). Machine: {os.cpu_count()} cores, {cpu},",
 f"kernel {platform.release()}, work directory on \`{subprocess.run(['df','--output=fstype','.'],capture_output=True,text=True).stdout.split()[-1]}\`, load average {' '.join(load)} at the end.",
 "",
 "| benchmark | shark store | reference | ratio | goal |",
 "|---|---|---|---|---|",
 f"| hash 1 GiB | {h[0]:.3f} s ({gib/h[0]/1e9:.2f} GB/s) | b3sum {h[1]:.3f} s ({gib/h[1]/1e9:.2f} GB/s) | {h[1]/h[0]:.2f}x b3sum's throughput | >= 0.9x |",
 f"| store 1 GiB random (fsynced) | {p[0]:.3f} s | cp {p[1]:.3f} s; cp + sync {p[2]:.3f} s | {p[0]/p[1]:.2f}x cp; {p[0]/p[2]:.2f}x cp+sync | <= 1.3x cp |",
 f"| store {int(csv_size)/1e6:.0f} MB CSV | {c[0]:.3f} s, {int(csv_stored)/1e6:.1f} MB stored ({int(csv_size)/int(csv_stored):.2f}x smaller) | zstd -1 {c[1]:.3f} s, {int(zstd_size)/1e6:.1f} MB ({int(csv_size)/int(zstd_size):.2f}x) | {c[0]/c[1]:.2f}x zstd's time | >= 3x smaller |",
 f"| restore 1 GiB | {r[0]:.3f} s | cp {r[1]:.3f} s; cp + sync {r[2]:.3f} s | {r[0]/r[1]:.2f}x cp; {r[0]/r[2]:.2f}x cp+sync | <= 1.3x cp |",
 f"| peak RSS storing 4 GiB random | {int(rss_raw)/1024:.1f} MiB | | | < 64 MiB |",
 f"| peak RSS storing 4 GiB CSV (zstd, 2 workers) | {int(rss_csv)/1024:.1f} MiB | | | < 64 MiB |",
 "",
 "Restore of an uncompressed 1 GiB blob on a loop-mounted filesystem:",
 "",
 "| filesystem | method | median time (this / before) | evidence |",
 "|---|---|---|---|",
]
def cpu(f):
    return [statistics.median(r["cpu"]) for r in json.load(open(f))["results"]]
restores = [
 "",
 "Restore of 1 GiB from the store, against the tool it stands in for, and against the restore",
 "of the revision before (path-based, two passes, dense) where given; commands interleaved",
 "(\`bench/interleave.py\`), medians of wall time, and of CPU time (user + system) after the slash:",
 "",
 "| restore | cache | this shark | reference | ratio | before | this / before | goal |",
 "|---|---|---|---|---|---|---|---|",
]
def row(name, cache, f, ref):
    w, c = med(f), cpu(f)
    b = f"{w[2]:.3f} s / {c[2]:.3f} s | {w[0]/w[2]:.2f}x" if len(w) > 2 else "| "
    return (f"| {name} | {cache} | {w[0]:.3f} s / {c[0]:.3f} s | {ref} {w[1]:.3f} s / {c[1]:.3f} s "
            f"| {w[0]/w[1]:.2f}x | {b} | <= 1.3x; <= 1.1x before |")
for cache, suffix in (("cold", ""), ("warm", "-warm")):
    restores.append(row("raw (random bytes)", cache, f"restore-raw{suffix}.json", "cp"))
    restores.append(row("zstd (CSV)", cache, f"restore-zstd{suffix}.json", "zstd -d"))
wo, co = med("restore-over.json"), cpu("restore-over.json")
over = f"{wo[1]:.3f} s / {co[1]:.3f} s | {wo[0]/wo[1]:.2f}x" if len(wo) > 1 else "| "
restores.append(f"| raw, over an existing file | warm | {wo[0]:.3f} s / {co[0]:.3f} s | | | {over} | |")
restores += [
 "",
 "A 10 GiB sparse file with 4 KiB of data (time and peak RSS from /usr/bin/time -v):",
 "",
 "| store-tool | hash | put | restore (cold) | verify |",
 "|---|---|---|---|---|",
]
notes = [
 "",
 "Notes: \`store-tool put\` fsyncs the blob before it returns (inside shark, a run's blobs are",
 "made durable together instead); a restore, like \`cp\`, leaves the file to the filesystem's",
 "writeback, so both cp and cp + sync are shown. Restores start from a cold",
 "page cache when run as root. The reflink restore hashes the clone before renaming it into place",
 "(a corrupt blob is never handed out), so its time is about one read and hash of 1 GiB. Times",
 "are wall-clock medians; on a busy machine compare the ratios of one run, not figures across runs.",
]
new = "\n".join(lines) + "\n" + """$reflink_rows""" + "\n".join(restores) + "\n" + """$sparse_rows""" + "\n".join(notes) + "\n"
# Earlier results stay below the new ones: the run this one replaces moves to the top of
# them, its headings demoted.
import re
marker = "## Earlier results"
old = open(out).read() if os.path.exists(out) else ""
top, _, earlier = old.partition(marker)
top = top.split("\n", 1)[1].strip() if top.startswith("# ") else ""
if top:
    at = re.search(r"Produced by \`bench/store.sh\`(?: at (\S+))? ", top)
    name = at.group(1) if at and at.group(1) else "an earlier commit"
    top = re.sub(r"^(#+) ", lambda m: "##" + m.group(1) + " ", top, flags=re.M)
    earlier = f"### Run at {name}\n\n{top}\n\n" + earlier.lstrip("\n")
new += "\n" + marker + "\n\n" + (earlier.lstrip("\n") if earlier.strip() else "None yet.\n")
open(out, "w").write(new)
PY
echo "wrote $out"
cat "$out"
