//! Trust in reuse: a reuse happens only when running the command again would do the same.
//!
//! Each test here is a case where shark used to reuse a result that running the command would
//! not give (a read-modify-write in place, an input edited during the run, stdin at an offset,
//! the umask, permission bits, special files, extended attributes, reads it did not see), or
//! ran a command whose result it had (reverting an input, a command reading back its own
//! output, a script whose steps list the folder they write into). Each checks both what shark
//! says (`cached`) and what bash would leave.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{stderr, stdout, TestEnv};

/// Runs `line`, asserts success, returns stdout.
fn ok(env: &TestEnv, line: &str) -> String {
    let out = env.line(line);
    assert_eq!(out.status.code(), Some(0), "{line}: {}", stderr(&out));
    stdout(&out)
}

/// `bash -c SCRIPT` in the work directory with shark on the PATH and the environment's home.
fn bash(env: &TestEnv, script: &str) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_shark")).parent().unwrap();
    Command::new("bash")
        .args(["-c", script])
        .env_clear()
        .env("SHARK_HOME", &env.home)
        .env("HOME", env.work.parent().unwrap().join("user"))
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("LANG", "C.UTF-8")
        .current_dir(&env.work)
        .output()
        .unwrap()
}

fn mode(env: &TestEnv, rel: &str) -> u32 {
    std::fs::metadata(env.path(rel))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_counter_incremented_in_place_counts_as_in_bash() {
    let env = TestEnv::new();
    env.write("counter", "0\n");
    for _ in 0..3 {
        ok(&env, "n=$(cat counter); echo $((n+1)) > counter");
        assert!(!env.last_cached(), "the counter it read has changed");
    }
    assert_eq!(env.read("counter"), "3\n");
}

#[test]
fn sed_in_place_edits_every_time() {
    let env = TestEnv::new();
    env.write("f", "line\n");
    for _ in 0..3 {
        ok(&env, "sed -i 's/$/x/' f");
    }
    assert_eq!(env.read("f"), "linexxx\n");
    // Restoring what the first run read brings its result back.
    env.write("f", "line\n");
    ok(&env, "sed -i 's/$/x/' f");
    assert!(env.last_cached());
    assert_eq!(env.read("f"), "linex\n");
}

#[test]
fn an_input_edited_while_the_command_runs_is_not_trusted() {
    let env = TestEnv::new();
    env.write("in.txt", "one\n");
    // The command waits for a file outside its writable roots, which the test creates once
    // it has seen the command read its input.
    let go = env.work.parent().unwrap().join("user/go");
    let line = format!(
        "cat in.txt > out.txt; echo read; while [ ! -e {} ]; do sleep 0.01; done",
        go.display()
    );
    let mut child = env
        .shark()
        .env("SHARK_WRITABLE", &env.work)
        .args(["-c", &line])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "read");
    env.write("in.txt", "two, longer\n");
    std::fs::write(&go, "").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(
        env.read("out.txt"),
        "one\n",
        "the command read the old content"
    );
    let log = env.log();
    let first = log.last().unwrap()["id"].to_string();

    let again = env
        .shark()
        .env("SHARK_WRITABLE", &env.work)
        .args(["-c", &line])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        !env.last_cached(),
        "a run whose input changed under it is never reused"
    );
    assert_eq!(env.read("out.txt"), "two, longer\n");
    let why = stdout(&env.run(&["why", &first]));
    assert!(why.contains("changed while the command ran"), "{why}");
    assert!(why.contains("in.txt"), "{why}");
}

#[test]
fn stdin_from_a_file_is_what_can_still_be_read_and_a_reuse_consumes_it() {
    let env = TestEnv::new();
    env.write("in.txt", "a\nb\nc\n");
    // The outer shell has read one line: the command sees the rest.
    let out = bash(&env, "{ read x; shark -c cat; } < in.txt");
    assert_eq!(stdout(&out), "b\nc\n", "{}", stderr(&out));
    // Another first line, the same rest: what the command can read is the same.
    env.write("in.txt", "z\nb\nc\n");
    let out = bash(&env, "{ read x; shark -c cat; } < in.txt");
    assert_eq!(stdout(&out), "b\nc\n");
    assert!(env.last_cached());
    // The same first line, another rest: it runs.
    env.write("in.txt", "z\nB\nc\n");
    let out = bash(&env, "{ read x; shark -c cat; } < in.txt");
    assert_eq!(stdout(&out), "B\nc\n");
    assert!(!env.last_cached());
    // A reused command leaves the offset where running it did: `head -n1` consumes one line
    // (it seeks back over what it read ahead), and the outer `cat` gets the rest.
    for _ in 0..2 {
        let out = bash(&env, "{ shark -c 'head -n1'; cat; } < in.txt");
        assert_eq!(stdout(&out), "z\nB\nc\n", "{}", stderr(&out));
    }
    assert!(env.last_cached());
}

#[test]
fn the_umask_is_part_of_what_a_command_sees() {
    let env = TestEnv::new();
    let line = "rm -f f; echo x > f";
    assert!(bash(&env, &format!("umask 022; shark -c '{line}'"))
        .status
        .success());
    assert_eq!(mode(&env, "f"), 0o644);
    assert!(bash(&env, &format!("umask 077; shark -c '{line}'"))
        .status
        .success());
    assert!(!env.last_cached());
    assert_eq!(mode(&env, "f"), 0o600, "as bash would leave it");
    // As the first run found it (no f), under its umask: that run is reused.
    std::fs::remove_file(env.path("f")).unwrap();
    assert!(bash(&env, &format!("umask 022; shark -c '{line}'"))
        .status
        .success());
    assert!(env.last_cached(), "the earlier run under that umask");
    assert_eq!(mode(&env, "f"), 0o644);
}

#[test]
fn the_permission_bits_of_files_read_or_tested_are_inputs() {
    let env = TestEnv::new();
    env.write("src", "data\n");
    std::fs::set_permissions(env.path("src"), PermissionsExt::from_mode(0o644)).unwrap();
    ok(&env, "cp src dst");
    assert_eq!(mode(&env, "dst"), 0o644);
    std::fs::set_permissions(env.path("src"), PermissionsExt::from_mode(0o755)).unwrap();
    ok(&env, "rm -f dst; cp src dst");
    ok(&env, "rm -f dst; cp src dst");
    assert_eq!(mode(&env, "dst"), 0o755, "cp copies the mode, as in bash");
    let test = "if [ -x src ]; then echo yes; else echo no; fi";
    assert_eq!(ok(&env, test), "yes\n");
    std::fs::set_permissions(env.path("src"), PermissionsExt::from_mode(0o644)).unwrap();
    assert_eq!(ok(&env, test), "no\n");
    assert!(!env.last_cached());
}

#[test]
fn a_fifo_replaced_by_a_regular_file_runs_again() {
    let env = TestEnv::new();
    nix::unistd::mkfifo(
        &env.path("p"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let line = "if [ -p p ]; then echo fifo; else echo other; fi";
    assert_eq!(ok(&env, line), "fifo\n");
    std::fs::remove_file(env.path("p")).unwrap();
    env.write("p", "");
    assert_eq!(ok(&env, line), "other\n");
    assert!(!env.last_cached());
}

#[test]
fn extended_attributes_read_are_inputs() {
    let env = TestEnv::new();
    env.write("f", "x");
    let set = |v: &str| {
        let code = format!("import os; os.setxattr('f', 'user.tag', b'{v}')");
        let st = Command::new("python3")
            .args(["-c", &code])
            .current_dir(&env.work)
            .status()
            .unwrap();
        assert!(st.success());
    };
    set("one");
    let line = "python3 -c \"import os; print(os.getxattr('f', 'user.tag').decode())\"";
    assert_eq!(ok(&env, line), "one\n");
    assert_eq!(ok(&env, line), "one\n");
    assert!(env.last_cached());
    set("two");
    assert_eq!(ok(&env, line), "two\n");
    assert!(!env.last_cached());
}

#[test]
fn reads_through_proc_self_root_cwd_and_dev_fd_are_seen() {
    let env = TestEnv::new();
    for line in [
        "cat /proc/self/root$PWD/in.txt",
        "cat /proc/self/cwd/in.txt",
        "exec 3< .; cat /dev/fd/3/in.txt",
    ] {
        env.write("in.txt", "one\n");
        assert_eq!(ok(&env, line), "one\n", "{line}");
        env.write("in.txt", "two\n");
        assert_eq!(ok(&env, line), "two\n", "{line}");
        assert!(!env.last_cached(), "{line}");
    }
}

/// Opens and reads the file named by argv[1] with io_uring (`IORING_OP_OPENAT`, then
/// `IORING_OP_READ`), so that no system call of its own names the path; falls back to
/// open/read when io_uring is refused. Prints what it read.
const URING_CAT_C: &str = r#"
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static char buf[4096];

static int submit(int ring, struct io_uring_params *p, char *sq, char *cq,
                  struct io_uring_sqe *sqes, struct io_uring_sqe *op) {
    unsigned *tail = (unsigned *)(sq + p->sq_off.tail);
    unsigned mask = *(unsigned *)(sq + p->sq_off.ring_mask);
    unsigned *array = (unsigned *)(sq + p->sq_off.array);
    unsigned t = *tail;
    sqes[t & mask] = *op;
    array[t & mask] = t & mask;
    __atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return -1;
    unsigned *head = (unsigned *)(cq + p->cq_off.head);
    unsigned cmask = *(unsigned *)(cq + p->cq_off.ring_mask);
    struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p->cq_off.cqes);
    int res = cqes[*head & cmask].res;
    __atomic_store_n(head, *head + 1, __ATOMIC_RELEASE);
    return res;
}

int main(int argc, char **argv) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int ring = syscall(__NR_io_uring_setup, 4, &p);
    ssize_t n;
    if (ring < 0) {
        int fd = open(argv[1], O_RDONLY);
        n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
        fprintf(stderr, "plain\n");
    } else {
        char *sq = mmap(0, p.sq_off.array + p.sq_entries * sizeof(unsigned),
                        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
        char *cq = mmap(0, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
                        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
        struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe),
                        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
        struct io_uring_sqe op;
        memset(&op, 0, sizeof op);
        op.opcode = IORING_OP_OPENAT;
        op.fd = AT_FDCWD;
        op.addr = (uint64_t)(uintptr_t)argv[1];
        op.open_flags = O_RDONLY;
        int fd = submit(ring, &p, sq, cq, sqes, &op);
        memset(&op, 0, sizeof op);
        op.opcode = IORING_OP_READ;
        op.fd = fd;
        op.addr = (uint64_t)(uintptr_t)buf;
        op.len = sizeof buf;
        n = fd < 0 ? -1 : submit(ring, &p, sq, cq, sqes, &op);
        fprintf(stderr, "io_uring\n");
    }
    if (n < 0) return 1;
    fwrite(buf, 1, n, stdout);
    return 0;
}
"#;

#[test]
fn a_read_by_io_uring_is_seen() {
    let env = TestEnv::new();
    let dir = env.work.parent().unwrap().join("user");
    std::fs::write(dir.join("uring_cat.c"), URING_CAT_C).unwrap();
    let bin = dir.join("uring_cat");
    let cc = Command::new("gcc")
        .arg(dir.join("uring_cat.c"))
        .arg("-o")
        .arg(&bin)
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", stderr(&cc));
    env.write("in.txt", "one\n");
    // Outside shark it does read through io_uring, unseen by any traced call.
    let bare = Command::new(&bin)
        .arg("in.txt")
        .current_dir(&env.work)
        .output()
        .unwrap();
    assert_eq!(stdout(&bare), "one\n");
    assert_eq!(stderr(&bare), "io_uring\n");
    let line = format!("{} in.txt 2>/dev/null", bin.display());
    assert_eq!(ok(&env, &line), "one\n");
    env.write("in.txt", "two\n");
    assert_eq!(ok(&env, &line), "two\n");
    assert!(!env.last_cached());
}

#[test]
fn reverting_an_input_of_a_command_that_overwrites_its_output_reuses_the_first_run() {
    let env = TestEnv::new();
    for line in ["cat in > out", "sort in -o out"] {
        for (content, cached) in [("v1\n", false), ("v2\n", false), ("v1\n", true)] {
            env.write("in", content);
            ok(&env, line);
            assert_eq!(env.read("out"), content, "{line}");
            assert_eq!(env.last_cached(), cached, "{line} with {content:?}");
        }
        std::fs::remove_file(env.path("out")).unwrap();
    }
}

#[test]
fn a_command_reading_back_its_own_output_is_reused_and_not_its_own_ancestor() {
    let env = TestEnv::new();
    env.write("in.txt", "b\na\n");
    let line = "sort in.txt > sorted.txt && wc -l < sorted.txt";
    assert_eq!(ok(&env, line), "2\n");
    assert_eq!(ok(&env, line), "2\n");
    assert!(env.last_cached(), "re-run in place");
    std::fs::remove_file(env.path("sorted.txt")).unwrap();
    assert_eq!(ok(&env, line), "2\n");
    assert!(env.last_cached(), "re-run after the output was deleted");
    assert_eq!(env.read("sorted.txt"), "a\nb\n");
    let show = env.run(&["show", "--json", "1"]);
    let run: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let inputs: Vec<&str> = run["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] != "notdir")
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert!(
        !inputs.iter().any(|p| p.ends_with("sorted.txt")),
        "its own output is no input: {inputs:?}"
    );
    let out = env.run(&["lineage", "--json", "sorted.txt"]);
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let upstream: Vec<&str> = tree["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap())
        .collect();
    assert_eq!(upstream, [env.path("in.txt").to_str().unwrap()], "{tree}");
    let dot = stdout(&env.run(&["lineage", "--dot", "sorted.txt"]));
    assert!(!dot.contains("sort in.txt > sorted.txt\" -> \"r1"), "{dot}");
    assert_eq!(
        dot.matches(" -> ").count(),
        2,
        "in.txt -> run -> sorted.txt: {dot}"
    );
}

/// A pipeline of Python steps in one folder: each lists the folder when it imports (Python's
/// module search starts in the script's directory), and writes its output there.
const PIPELINE: &str = "python3 gen.py\npython3 summarise.py\ntr a-z A-Z < data.csv > upper.csv\n";
const GEN_PY: &str = "import csv, os\n\
with open('data.csv', 'w', newline='') as f:\n    \
w = csv.writer(f)\n    \
w.writerow(['x'])\n    \
w.writerow([open('params.txt').read().strip()])\n\
if os.path.exists('extra.flag'):\n    \
open('extra.csv', 'w').write('more\\n')\n";
const SUMMARISE_PY: &str = "import json, os\n\
rows = open('data.csv').read().split()\n\
csvs = sorted(n for n in os.listdir('.') if n.endswith('.csv'))\n\
json.dump({'rows': rows, 'csvs': csvs}, open('summary.json', 'w'))\n";

fn pipeline_steps(env: &TestEnv) -> Vec<(String, bool)> {
    let out = env.run(&["pipeline.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = env.log();
    log[log.len() - 3..]
        .iter()
        .map(|r| {
            let c = r["command"].as_str().unwrap().to_owned();
            (c, r["cached"].as_bool().unwrap())
        })
        .collect()
}

fn ran(steps: &[(String, bool)]) -> Vec<&str> {
    steps
        .iter()
        .filter(|(_, cached)| !cached)
        .map(|(c, _)| c.as_str())
        .collect()
}

#[test]
fn a_script_whose_steps_list_the_folder_they_write_into_is_reused_whole() {
    let env = TestEnv::new();
    env.write("pipeline.sh", PIPELINE);
    env.write("gen.py", GEN_PY);
    env.write("summarise.py", SUMMARISE_PY);
    env.write("params.txt", "1\n");
    assert_eq!(ran(&pipeline_steps(&env)).len(), 3);
    let summary = env.read("summary.json");

    // Nothing changed: every step is reused, although the folder each Python step listed
    // has gained the outputs of the steps after it.
    assert_eq!(ran(&pipeline_steps(&env)), Vec::<&str>::new());
    assert_eq!(env.read("summary.json"), summary);

    // A file added by hand: the steps that listed the folder run again, the one that did
    // not is reused; then the script settles.
    env.write("notes.txt", "mine\n");
    assert_eq!(
        ran(&pipeline_steps(&env)),
        ["python3 gen.py", "python3 summarise.py"]
    );
    assert_eq!(ran(&pipeline_steps(&env)), Vec::<&str>::new());

    // An upstream step that now writes a new file: the downstream step that lists the
    // folder runs again and sees it, as bash would.
    env.write("extra.flag", "");
    let steps = pipeline_steps(&env);
    assert!(ran(&steps).contains(&"python3 summarise.py"), "{steps:?}");
    assert!(env.read("summary.json").contains("extra.csv"));
    assert_eq!(ran(&pipeline_steps(&env)), Vec::<&str>::new());
}

#[test]
fn another_user_does_not_reuse_a_run_of_root() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run as another user");
        return;
    }
    let env = TestEnv::new();
    // A home and a folder both users may write: a shared setup.
    for dir in [env.home.parent().unwrap(), &env.work] {
        std::fs::set_permissions(dir, PermissionsExt::from_mode(0o777)).unwrap();
    }
    std::fs::create_dir_all(&env.home).unwrap();
    let shark = crate::common::reachable_shark();
    let as_user = |uid: &str| {
        Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ])
            .arg(&shark)
            .args(["--home", env.home.to_str().unwrap(), "-c", "id -u"])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &env.work)
            .current_dir(&env.work)
            .output()
            .unwrap()
    };
    assert_eq!(stdout(&as_user("0")), "0\n");
    std::fs::set_permissions(&env.home, PermissionsExt::from_mode(0o777)).unwrap();
    for entry in walk(&env.home) {
        let _ = std::fs::set_permissions(&entry, PermissionsExt::from_mode(0o777));
    }
    let out = as_user("65534");
    assert_eq!(stdout(&out), "65534\n", "{}", stderr(&out));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            all.extend(walk(&p));
        }
        all.push(p);
    }
    all
}

#[test]
fn the_host_tree_is_not_readable_through_the_shark_home() {
    let env = TestEnv::new();
    env.write("in.txt", "one\n");
    // The sandbox's root is mounted on a scratch directory under the shark home; through it
    // every file would be readable under another name, unseen as an input.
    let line = "ls -A \"$SHARK_HOME/tmp\"; cat \"$SHARK_HOME\"/tmp/.shark-sandbox-*\"$PWD/in.txt\"";
    let out = env.line(line);
    assert_eq!(stdout(&out), "", "{}", stderr(&out));
}
