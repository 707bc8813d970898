#!/usr/bin/env bash
# Benchmarks of shark's sandbox (issue 3) against a bare exec, bubblewrap, a bare seccomp
# user-notification supervisor and strace, in one run on one machine. Writes
# bench/results-sandbox.md with medians and ratios.
#
# Needs: cargo, gcc, hyperfine, bwrap (Debian: apt-get install -y hyperfine bubblewrap), strace,
# /usr/bin/python3, and unprivileged user namespaces (or root).
#
# Usage: bench/sandbox.sh [WORKDIR]   (default /tmp). Everything goes in a fresh directory inside
# WORKDIR, removed at the end. RUNS=N sets the number of interleaved rounds (default 30).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-/tmp}
[ -d "$parent" ] || { echo "bench/sandbox.sh: $parent is not a directory" >&2; exit 2; }
for tool in cargo gcc hyperfine bwrap strace /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "bench/sandbox.sh: $tool is missing" >&2; exit 2; }
done
work=$(mktemp -d "$parent/shark-bench-sandbox.XXXXXX")
trap 'rm -rf "$work"' EXIT
runs=${RUNS:-30}
out="$repo/bench/results-sandbox.md"

cargo build --release --quiet -p shark-sandbox --example sandbox-run --manifest-path "$repo/Cargo.toml"
# Shark's default writable roots ($HOME, the cwd, /tmp) in the common case of a cwd inside $HOME
# (so two overlays), but inside the work directory so a foreign mount under the real /tmp or
# $HOME cannot get in the way.
# The upper layers go in $work/scratch, on the same filesystem as the roots (as shark prefers).
mkdir -p "$work/home/project" "$work/tmp" "$work/scratch"
run="$repo/target/release/examples/sandbox-run -q --root $work/home --root $work/home/project --root $work/tmp"
sandbox="$run --scratch $work/scratch"
cd "$work/home/project"

# openloop N PATH: open and close PATH N times (one openat each).
cat >openloop.c <<'C'
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    for (long i = 0; i < n; i++) {
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0) return 1;
        close(fd);
    }
    return 0;
}
C
# notify-bare N PATH: the smallest seccomp user-notification supervisor: the child runs openloop
# under a filter that sends only openat to the parent, which answers CONTINUE without reading
# anything -- the kernel's round trip, the floor for any tracer built on it.
cat >notify-bare.c <<'C'
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
static void send_fd(int sock, int fd) {
    char byte = 0, control[CMSG_SPACE(sizeof fd)];
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof fd);
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    sendmsg(sock, &msg, 0);
}
static int recv_fd(int sock) {
    char byte, control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    if (recvmsg(sock, &msg, 0) < 1) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof fd);
    return fd;
}
int main(int argc, char **argv) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t pid = fork();
    if (pid == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof f / sizeof f[0], f};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (fd < 0) _exit(125);
        send_fd(sv[1], fd);
        close(fd);
        char go;
        read(sv[1], &go, 1);
        execv("./openloop", argv);
        _exit(126);
    }
    int fd = recv_fd(sv[0]);
    if (fd < 0) return 125;
    ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (__u64)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    write(sv[0], "g", 1);
    close(sv[0]);
    close(sv[1]);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, -1) < 0) continue;
        if (!(p.revents & POLLIN)) break;
        struct seccomp_notif req;
        memset(&req, 0, sizeof req);
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) continue;
        struct seccomp_notif_resp resp = {.id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
C
gcc -O2 -o openloop openloop.c
gcc -O2 -o notify-bare notify-bare.c
echo data >"$work/file"
# Outside the writable roots (a read-only bind, not an overlay), so the per-call numbers measure
# the tracing, not overlayfs.
file="$work/file"

# rounds NAME ROUNDS RUNS WARMUP COMMAND...: hyperfine ROUNDS times, RUNS runs of each command
# per round, times merged into NAME.json. On a shared machine the load drifts; short rounds
# spread that drift evenly over the commands compared, instead of biasing whichever ran last.
rounds() {
    local name=$1 count=$2 each=$3 warmup=$4
    shift 4
    for r in $(seq "$count"); do
        hyperfine --style none -N --warmup "$warmup" --runs "$each" --export-json "$name-$r.json" "$@" >/dev/null
    done
    python3 "$repo/bench/merge_rounds.py" "$name" "$count"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# The sandbox creates about a dozen inodes per run (scratch directories, overlay work
# directories), so its fixed cost depends on how fast the scratch filesystem creates them;
# measure that, and run `true` once more with the scratch space on tmpfs.
inode_cost=$(python3 -c "
import os, sys, time
base = sys.argv[1]
t = time.perf_counter()
for i in range(200):
    p = f'{base}/mk-{i}'
    os.mkdir(p)
    os.rmdir(p)
print(f'{(time.perf_counter() - t) / 200 * 1e6:.0f}')" "$work/scratch")
shm=$(mktemp -d /dev/shm/shark-bench-sandbox.XXXXXX)
trap 'rm -rf "$work" "$shm"' EXIT

echo "== fixed cost of true"
rounds true "$runs" 10 3 \
    "/usr/bin/true" "$sandbox /usr/bin/true" "bwrap --unshare-all --ro-bind / / /usr/bin/true" \
    "$run --scratch $shm /usr/bin/true"

echo "== 100k openat of one file"
n=100000
rounds open "$runs" 1 0 \
    "./openloop 0 $file" "./openloop $n $file" \
    "./notify-bare 0 $file" "./notify-bare $n $file" \
    "$sandbox ./openloop 0 $file" "$sandbox ./openloop $n $file" \
    "strace -f -o /dev/null ./openloop $n $file"

py=/usr/bin/python3
imports="import email, json, http.client, asyncio, decimal, xml.dom.minidom"
compute="sum(i*i for i in range(10**7))"
echo "== import-heavy Python"
rounds import "$runs" 2 1 \
    "$py -c '$imports'" "$sandbox $py -c '$imports'" "strace -f -o /dev/null $py -c '$imports'"
echo "== compute-bound Python"
rounds compute "$(( runs > 1 ? runs / 2 : 1 ))" 1 0 \
    "$py -c '$compute'" "$sandbox $py -c '$compute'" "strace -f -o /dev/null $py -c '$compute'"

accesses=$($sandbox $py -c "$imports" 2>&1 | grep -o '[0-9]* accesses')
INODE_COST=$inode_cost LOAD="$load_before -> $(cut -d' ' -f1-3 /proc/loadavg)" RUNS_USED=$runs N=$n ACCESSES=$accesses KERNEL=$(uname -r) python3 - "$out" <<'PY'
import json, os, platform, statistics, sys
def med(f):
    return [statistics.median(r["times"]) for r in json.load(open(f))["results"]]
t, o, i, c = med("true.json"), med("open.json"), med("import.json"), med("compute.json")
n = int(os.environ["N"])
ms = lambda s: f"{s * 1000:.1f} ms"
us = lambda s: f"{s * 1e6:.2f} µs"
x = lambda a, b: f"{a / b:.2f}x"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
bare_call = (o[1] - o[0]) / n
notify_call = (o[3] - o[2]) / n
sandbox_call = (o[5] - o[4]) / n
strace_call = (o[6] - o[0]) / n
goal = lambda ok: "met" if ok else "**missed**"
lines = [
    "# Sandbox benchmarks",
    "",
    f"Produced by `bench/sandbox.sh`: medians of hyperfine runs taken in {os.environ['RUNS_USED']} interleaved rounds",
    "(10 runs of each command per round for `true`, 2 for the Python import, 1 otherwise; half the",
    "rounds for the compute-bound command), so load drift on a shared machine hits every column alike.",
    f"Machine: {os.cpu_count()} cores, {cpu}, Linux {os.environ['KERNEL']}; load average (1, 5, 15 min)",
    f"{os.environ['LOAD']} from start to end of the run. `sandbox` is",
    "`target/release/examples/sandbox-run -q` (user/mount/pid/ipc/uts/net namespaces, fresh",
    "`/proc`, minimal `/dev`, overlays standing in for `$HOME` with the cwd inside it and `/tmp`",
    "(two overlays), Landlock, seccomp user-notification tracing with",
    "`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`).",
    "",
    "## Fixed cost of `true`",
    "",
    "| command | median | vs bare | vs bwrap |",
    "|---|---|---|---|",
    f"| bare `/usr/bin/true` | {ms(t[0])} | 1.00x | |",
    f"| sandbox + tracing | {ms(t[1])} | {x(t[1], t[0])} | {x(t[1], t[2])} |",
    f"| `bwrap --unshare-all --ro-bind / / true` | {ms(t[2])} | {x(t[2], t[0])} | 1.00x |",
    f"| sandbox + tracing, upper layers on tmpfs (`/dev/shm`) | {ms(t[3])} | {x(t[3], t[0])} | {x(t[3], t[2])} |",
    "",
    f"A `mkdir` + `rmdir` in the scratch directory took {os.environ['INODE_COST']} µs here; the sandbox makes",
    "about a dozen inodes per run (scratch and overlay work directories), so on a filesystem that is",
    "slow to allocate them the fixed cost grows by that much. The tmpfs row shows the cost without it",
    "(shark keeps upper layers on the roots' filesystem so that applying outputs is a rename).",
    "",
    f"Goal: sandbox+tracing at most 2x bwrap: {goal(t[1] <= 2 * t[2])} ({x(t[1], t[2])}).",
    "",
    f"## Cost per traced `openat` ({n:,} opens of one file outside the writable roots, absolute path)",
    "",
    "Per call = (median with N opens − median with 0 opens) / N, so process and sandbox start-up",
    "cancel out.",
    "",
    "| how | median, 0 opens | median, N opens | per call |",
    "|---|---|---|---|",
    f"| untraced | {ms(o[0])} | {ms(o[1])} | {us(bare_call)} |",
    f"| bare seccomp-notify round trip (C, CONTINUE, no reads) | {ms(o[2])} | {ms(o[3])} | {us(notify_call)} |",
    f"| sandbox (reads the path, resolves, records) | {ms(o[4])} | {ms(o[5])} | {us(sandbox_call)} |",
    f"| `strace -f -o /dev/null` | | {ms(o[6])} | {us(strace_call)} |",
    "",
    f"Sandbox per call vs bare round trip: {x(sandbox_call, notify_call)} (goal at most 1.5x: {goal(sandbox_call <= 1.5 * notify_call)}).",
    f"Added cost per traced call over untraced: sandbox {us(sandbox_call - bare_call)}, bare round trip {us(notify_call - bare_call)}, strace {us(strace_call - bare_call)}.",
    "",
    f"## Import-heavy Python ({os.environ['ACCESSES']} recorded)",
    "",
    "`python3 -c \"import email, json, http.client, asyncio, decimal, xml.dom.minidom\"`",
    "",
    "| how | median | vs bare |",
    "|---|---|---|",
    f"| bare | {ms(i[0])} | 1.00x |",
    f"| sandbox | {ms(i[1])} | {x(i[1], i[0])} |",
    f"| `strace -f -o /dev/null` | {ms(i[2])} | {x(i[2], i[0])} |",
    "",
    f"Goal: at most 1.25x bare: {goal(i[1] <= 1.25 * i[0])}.",
    "",
    "## Compute-bound Python",
    "",
    "`python3 -c \"sum(i*i for i in range(10**7))\"`",
    "",
    "| how | median | vs bare |",
    "|---|---|---|",
    f"| bare | {ms(c[0])} | 1.00x |",
    f"| sandbox | {ms(c[1])} | {x(c[1], c[0])} |",
    f"| `strace -f -o /dev/null` | {ms(c[2])} | {x(c[2], c[0])} |",
    "",
    f"Goal: at most 1.03x bare: {goal(c[1] <= 1.03 * c[0])}.",
    "",
]
open(sys.argv[1], "w").write("\n".join(lines))
print("\n".join(lines))
PY
