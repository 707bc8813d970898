#!/usr/bin/env bash
# Benchmarks of undo (issue 12), in one run on one machine. Writes bench/results-undo.md with
# medians and ratios:
#
#   1. `shark undo` of a run that overwrote a 1 GiB file, on ext4 (prior content in the store),
#      btrfs on a loop device and ZFS through zfs-fuse (snapshots);
#   2. what a run pays for keeping prior content: the same run with SHARK_UNDO=on and =off,
#      for a run that replaces its earlier 64 MiB output (ext4, btrfs, ZFS) and for one that
#      writes 1 MiB (btrfs, ZFS: a snapshot should cost the same whatever the size), and for
#      one that replaces its earlier 1,000 small files (ext4).
#
# Needs root (loop devices, zfs-fuse: tests/setup/undo.sh installs and starts it), cargo,
# hyperfine, python3.
#
# Usage: bench/undo.sh [WORKDIR]   (default /var/tmp; it must be outside the default writable
# roots, which may hold no mount point). UNDO_RUNS (default 5) and COST_RUNS (default 10)
# change the counts.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/var/tmp}
undo_runs=${UNDO_RUNS:-5}
cost_runs=${COST_RUNS:-10}
out="$repo/bench/results-undo.md"
[ "$(id -u)" -eq 0 ] || { echo "bench/undo.sh: needs root (loop devices, zfs-fuse)" >&2; exit 2; }
for tool in hyperfine python3 mkfs.btrfs; do
    command -v "$tool" >/dev/null || { echo "bench/undo.sh: $tool is missing" >&2; exit 2; }
done
bash "$repo/tests/setup/undo.sh"
zpool list >/dev/null || { echo "bench/undo.sh: zfs-fuse is not running" >&2; exit 2; }

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p shark
shark="$repo/target/release/shark"
work=$(mktemp -d "$parent/shark-bench-undo.XXXXXX")
pool="sharkbench$$"
cleanup() {
    cd /
    umount "$work/btrfs" 2>/dev/null || true
    for _ in $(seq 50); do zpool destroy -f "$pool" 2>/dev/null && break; sleep 0.2; done
    rm -rf "$work"
}
trap cleanup EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)

# The three filesystems, each with a work directory that is the only writable root.
mkdir -p "$work/ext4/work" "$work/btrfs"
truncate -s 8G "$work/btrfs.img"
mkfs.btrfs -q "$work/btrfs.img"
mount -o loop "$work/btrfs.img" "$work/btrfs"
btrfs subvolume create "$work/btrfs/work" >/dev/null
truncate -s 6G "$work/zfs.img"
zpool create -m "$work/zfs" "$pool" "$work/zfs.img"
zfs create "$pool/work"
declare -A dirs=([ext4]="$work/ext4/work" [btrfs]="$work/btrfs/work" [zfs]="$work/zfs/work")

# Shark under a fixed environment; hyperfine's randomised variable is left out of it.
sh_cmd() { # FS HOME ARGS...: the command line running shark in FS's work directory
    local fs=$1 home=$2
    shift 2
    echo "cd ${dirs[$fs]} && env -u HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET SHARK_HOME=$home SHARK_WRITABLE=${dirs[$fs]} $shark $*"
}
hf() { hyperfine --style basic "$@"; }

echo "== 1. undo of a 1 GiB overwrite"
for fs in ext4 btrfs zfs; do
    home="$work/home-undo-$fs"
    head -c 1073741824 /dev/urandom >"${dirs[$fs]}/big"
    overwrite=$(sh_cmd "$fs" "$home" "-c 'head -c 1073741824 /dev/zero | tr \"\\\\0\" x > big' >/dev/null")
    hf --runs "$undo_runs" --prepare "$overwrite" --export-json "$work/undo-$fs.json" \
        -n "shark undo ($fs)" "$(sh_cmd "$fs" "$home" undo)"
done

echo "== 2. the cost of keeping prior content"
for fs in ext4 btrfs zfs; do
    for size in 64 1; do
        [ "$fs" = ext4 ] && [ "$size" = 1 ] && continue
        home="$work/home-cost-$fs-$size"
        gen="-c 'head -c $((size << 20)) /dev/urandom > out.bin'"
        eval "$(sh_cmd "$fs" "$home" run --fresh -- bash "$gen")" >/dev/null
        hf --warmup 1 --runs "$cost_runs" --export-json "$work/cost-$fs-$size.json" \
            -n "undo on ($fs, $size MiB)" "SHARK_UNDO=on $(sh_cmd "$fs" "$home" run --fresh -- bash "$gen")" \
            -n "undo off ($fs, $size MiB)" "SHARK_UNDO=off $(sh_cmd "$fs" "$home" run --fresh -- bash "$gen")"
    done
done
# Many small outputs: the per-file cost of keeping prior content (ext4: each replaced file is
# an earlier output, found by its stamp without hashing).
home="$work/home-cost-many"
many="-c 'mkdir -p out && for i in \$(seq 1000); do echo \"file \$i \$RANDOM\" > out/f\$i.txt; done'"
eval "$(sh_cmd ext4 "$home" run --fresh -- bash "$many")" >/dev/null
hf --warmup 1 --runs "$cost_runs" --export-json "$work/cost-ext4-many.json" \
    -n "undo on (ext4, 1,000 files)" "SHARK_UNDO=on $(sh_cmd ext4 "$home" run --fresh -- bash "$many")" \
    -n "undo off (ext4, 1,000 files)" "SHARK_UNDO=off $(sh_cmd ext4 "$home" run --fresh -- bash "$many")"
snapshots_btrfs=$(ls "$work/btrfs/work/.shark-snapshots" | wc -l)

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$work" "$out" "$commit" "$load_before" "$load_after" "$undo_runs" "$cost_runs" <<'PY'
import json, sys
work, out, commit, before, after, undo_runs, cost_runs = sys.argv[1:]

def res(name):
    return json.load(open(f"{work}/{name}.json"))["results"]

def row(r):
    ms = lambda s: s * 1000
    return ms(r["median"]), ms(r["min"]), ms(r["user"] + r["system"])

lines = [
    "# Benchmarks: undo",
    "",
    f"Written by `bench/undo.sh` (issue 12) at {commit}, in one run on this machine: 2 CPUs, "
    f"load average {before} before and {after} after. Release build. Times are hyperfine "
    "medians in ms; *min* is the fastest run; *CPU* is user + system time of shark and its "
    "children (zfs-fuse's own work happens in its daemon and is not in it). ext4 is the "
    "machine's disk; btrfs is an 8 GiB loop device on it; ZFS is zfs-fuse (a FUSE daemon, "
    "much slower than kernel ZFS) on a 6 GiB file on it.",
    "",
    f"## 1. Undo of a 1 GiB overwrite ({undo_runs} runs each)",
    "",
    "Before each undo, `shark -c 'head -c 1073741824 /dev/zero | tr \"\\0\" x > big'` "
    "overwrote `big`, 1 GiB of random bytes (not timed). On ext4 the random content was "
    "kept in the store before the run and is copied back; on btrfs the run's snapshot holds "
    "it and undo clones the file from it; on ZFS the snapshot is the latest and nothing else "
    "changed, so undo rolls the dataset back.",
    "",
    "| filesystem | median | min | CPU | vs ext4 |",
    "|---|---:|---:|---:|---:|",
]
base = None
for fs in ["ext4", "btrfs", "zfs"]:
    m, mn, cpu = row(res(f"undo-{fs}")[0])
    base = base or m
    lines.append(f"| {fs} | {m:.1f} | {mn:.1f} | {cpu:.1f} | {m / base:.3f}x |")
lines += [
    "",
    f"## 2. What a run pays for keeping prior content ({cost_runs} runs each)",
    "",
    "`shark run --fresh -- bash -c 'head -c SIZE /dev/urandom > out.bin'`, replacing the "
    "`out.bin` an earlier run of the same command left, with `SHARK_UNDO=on` and `=off`. On "
    "ext4 the replaced file is an earlier output, already in the store: keeping it costs a "
    "stat and a few rows. On btrfs and ZFS each run takes a snapshot. Goal: under 5% for "
    "runs that replace earlier outputs, and the same cost whatever the size on btrfs and ZFS.",
    "",
    "| filesystem | output | undo on | undo off | extra | ratio | goal |",
    "|---|---:|---:|---:|---:|---:|---|",
]
for fs in ["ext4", "btrfs", "zfs"]:
    for size in [64, 1, "many"]:
        try:
            on, off = res(f"cost-{fs}-{size}")
        except FileNotFoundError:
            continue
        a, b = row(on)[0], row(off)[0]
        ratio = a / b
        goal = ""
        if size != 1:
            goal = "< 5%: **met**" if ratio < 1.05 else "< 5%: **missed**"
        what = "1,000 files" if size == "many" else f"{size} MiB"
        lines.append(
            f"| {fs} | {what} | {a:.1f} | {b:.1f} | {a - b:+.1f} | {ratio:.3f}x | {goal} |"
        )
if float(before.split()[0]) > 2 or float(after.split()[0]) > 2:
    lines += [
        "",
        "**Load.** The machine was busy with other work during this run (load average above "
        "its 2 CPUs), so the spread between runs is larger than most differences in section "
        "2: there, only differences beyond the spread mean anything; rerun on a quiet machine "
        "to judge the 5% goal.",
    ]
lines.append("")
open(out, "w").write("\n".join(lines))
PY
echo "bench/undo.sh: wrote $out (btrfs snapshots left at the end: $snapshots_btrfs)"
