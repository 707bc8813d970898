//! The fast path's library is invisible (the environment a program sees, its own `LD_PRELOAD`
//! chain) and safe (threads, signal handlers that make file calls, fork, vfork, chroot): the
//! same accesses are recorded with and without it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use shark_sandbox::{run, AccessKind, Report, Spec};

use crate::common::{compile, Env};

/// Runs `spec()` without, then with the fast path.
fn both(spec: impl Fn() -> Spec) -> (Report, Report) {
    let mut slow = spec();
    slow.fast_path = false;
    let mut fast = spec();
    fast.fast_path = true;
    (run(slow).unwrap(), run(fast).unwrap())
}

/// The paths under the test tree with the kinds they were accessed with, and how many of a
/// path's accesses carry a fingerprint: comparable when the order of threads varies.
type Summary = BTreeMap<String, (BTreeSet<AccessKind>, usize)>;

fn summary(env: &Env, report: &Report) -> Summary {
    let mut out = Summary::new();
    for a in &report.accesses {
        let Ok(rel) = a.path.strip_prefix(&env.root) else {
            continue;
        };
        let entry = out.entry(rel.display().to_string()).or_default();
        entry.0.insert(a.kind);
        entry.1 += usize::from(a.fingerprint.is_some());
    }
    out
}

const USER_PRELOAD: &str = r#"
#include <unistd.h>
__attribute__((constructor)) static void hello(void) { write(2, "user-preload\n", 13); }
"#;

both_legs!(programs_see_the_environment_they_were_given, |env: &Env| {
    let user = compile(&env.root, "user.so", USER_PRELOAD, &["-shared", "-fPIC"]);
    let script = "printf '[%s]\\n' \"$LD_PRELOAD\"; env | sort; \
                  /usr/bin/python3 -S -c 'import os; print(sorted(os.environ.items()))'; \
                  env -u LD_PRELOAD sh -c 'env | sort'; \
                  bash -c 'declare -p | grep -v BASH_EXECUTION_STRING | grep LD_PRELOAD'; \
                  env -i /usr/bin/env";
    for preload in [None, Some(user.display().to_string())] {
        let outputs: Vec<(String, String)> = [false, true]
            .into_iter()
            .map(|fast| {
                let mut spec = env.spec(&["sh", "-c", script]);
                if let Some(p) = &preload {
                    spec.env.push(("LD_PRELOAD".into(), p.into()));
                }
                spec.fast_path = fast;
                let (out, stdout) = env.capture("out");
                let (err, stderr) = env.capture("err");
                spec.stdout = stdout;
                spec.stderr = stderr;
                let report = run(spec).unwrap();
                assert!(report.status.success());
                assert_eq!(report.stats.fast_path > 0, fast);
                (
                    fs::read_to_string(out).unwrap(),
                    fs::read_to_string(err).unwrap(),
                )
            })
            .collect();
        assert_eq!(outputs[0], outputs[1], "with LD_PRELOAD {preload:?}");
        let (stdout, stderr) = &outputs[1];
        assert!(!stdout.contains(".shark"), "{stdout}");
        match &preload {
            None => assert!(stdout.starts_with("[]\n") && stderr.is_empty(), "{stdout}"),
            Some(p) => {
                assert!(stdout.starts_with(&format!("[{p}]\n")), "{stdout}");
                // bash keeps what it was given, as its own variable.
                assert!(
                    stdout.contains(&format!("declare -x LD_PRELOAD=\"{p}\"")),
                    "{stdout}"
                );
                // sh, env, sort, python3, both envs, bash and its grep: every program started
                // with it loads it.
                assert_eq!(stderr.matches("user-preload").count(), 9, "{stderr}");
            }
        }
    }
});

const CONCURRENT: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t hits;

static void handler(int sig) {
    struct stat st;
    stat("sig.txt", &st);
    int fd = open("sig2.txt", O_RDONLY);
    if (fd >= 0) close(fd);
    hits++;
}

static void *worker(void *arg) {
    long id = (long)arg;
    char name[32];
    for (int i = 0; i < 500; i++) {
        struct stat st;
        snprintf(name, sizeof name, "t%ld-%d.txt", id, i % 10);
        stat(name, &st);
        int fd = open("shared.txt", O_RDONLY);
        if (fd >= 0) close(fd);
        access(name, F_OK);
    }
    return 0;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval every = {{0, 200}, {0, 200}}, off = {0};
    setitimer(ITIMER_REAL, &every, 0);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, worker, (void *)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    setitimer(ITIMER_REAL, &off, 0);
    pid_t child = fork();
    if (child == 0) {
        struct stat st;
        printf("%d\n", getpid());
        fflush(stdout);
        stat("child.txt", &st);
        close(open("child2.txt", O_RDONLY));
        _exit(0);
    }
    waitpid(child, 0, 0);
    pid_t v = vfork();
    if (v == 0) {
        char *argv[] = {"/usr/bin/cat", "vfork.txt", 0};
        execv(argv[0], argv);
        _exit(127);
    }
    waitpid(v, 0, 0);
    struct stat st;
    stat("parent.txt", &st);
    return hits > 0 ? 0 : 2;
}
"#;

both_legs!(
    threads_signals_fork_and_vfork_are_observed_alike,
    |env: &Env| {
        let program = compile(&env.root, "concurrent", CONCURRENT, &["-O2", "-pthread"]);
        for f in [
            "shared.txt",
            "sig.txt",
            "sig2.txt",
            "child2.txt",
            "vfork.txt",
            "t0-3.txt",
        ] {
            env.write(&format!("work/{f}"), f);
        }
        let program = program.display().to_string();
        let (slow, fast) = both(|| {
            let mut spec = env.spec(&[&program]);
            spec.stdout = shark_sandbox::Stdio::Null;
            spec
        });
        assert!(
            slow.status.success() && fast.status.success(),
            "no signal was handled"
        );
        assert!(fast.stats.fast_path > 0);
        let (a, b) = (summary(env, &slow), summary(env, &fast));
        // Calls interrupted by the timer's signal are notified again when restarted: the first
        // of them that completes carries the path's fingerprint, on either path.
        for (path, (_, fingerprints)) in a.iter().chain(&b) {
            assert_eq!(
                *fingerprints, 1,
                "one fingerprint, at the first access, for {path}"
            );
        }
        assert_eq!(a, b);
        // The forked child's accesses are its own, by host pid, not its parent's.
        let pid_of = |report: &Report, name: &str| {
            let path = env.work.join(name);
            report.accesses.iter().find(|a| a.path == path).unwrap().pid
        };
        let parent = fast.processes[0].pid;
        assert_eq!(pid_of(&fast, "parent.txt"), parent);
        assert_eq!(pid_of(&fast, "child.txt"), pid_of(&fast, "child2.txt"));
        assert_ne!(pid_of(&fast, "child.txt"), parent);
        let host_pids: BTreeSet<u32> = fast.accesses.iter().map(|a| a.pid).collect();
        assert!(
            host_pids.iter().all(|&p| p > 3),
            "every pid is a host pid: {host_pids:?}"
        );
        let cat = fast.processes.iter().find(|p| p.argv[0] == "/usr/bin/cat");
        assert_eq!(pid_of(&fast, "vfork.txt"), cat.expect("cat ran").pid);
    }
);

both_legs!(after_a_chroot_the_library_stands_down, |env: &Env| {
    env.write("work/in.txt", "inside");
    let code = format!(
        "import os\nos.chroot({:?})\nos.stat('/in.txt')\nopen('/in.txt').read()\nos.path.exists('/nope')",
        env.work.display().to_string()
    );
    let (slow, fast) = both(|| env.spec(&["/usr/bin/python3", "-S", "-c", &code]));
    assert_eq!(slow.status, fast.status);
    assert_eq!(summary(env, &slow), summary(env, &fast));
    if nix::unistd::geteuid().is_root() {
        assert!(fast.status.success());
        let read = fast
            .accesses
            .iter()
            .any(|a| a.path == env.work.join("in.txt") && a.kind == AccessKind::Read);
        assert!(
            read,
            "the read inside the new root is recorded where it was"
        );
    }
});

both_legs!(
    a_command_that_truncates_the_shared_memory_does_not_bring_the_supervisor_down,
    |env: &Env| {
        // The shell's own wrapped calls (looking up `truncate`) map the memory first; after
        // the truncation its next one faults in the command, and the supervisor's next read
        // of the ring faults in the supervisor, which must carry on.
        let script = "test -e missing-1; truncate -s 0 /dev/shm/.shark/ring; \
                      /usr/bin/env true; test -e missing-2; echo done";
        let mut spec = env.spec(&["bash", "-c", script]);
        spec.fast_path = true;
        let report = run(spec).unwrap();
        assert!(report.stats.damaged, "{:?}", report.stats);
        assert!(report.stats.fast_path > 0, "{:?}", report.stats);
        // The supervisor's own record of the run stands.
        assert!(report.accesses.iter().any(|a| a.path.ends_with("truncate")));
        // Truncated and extended again at once, the memory may never fault; it is zeros.
        let script = "test -e missing-1; s=$(stat -c %s /dev/shm/.shark/ring); \
                      truncate -s 0 /dev/shm/.shark/ring; truncate -s $s /dev/shm/.shark/ring";
        let mut spec = env.spec(&["sh", "-c", script]);
        spec.fast_path = true;
        let report = run(spec).unwrap();
        assert!(report.stats.damaged, "{:?}", report.stats);
        // The next sandbox of this process starts whole.
        let mut spec = env.spec(&["bash", "-c", "test -e missing-3; true"]);
        spec.fast_path = true;
        let report = run(spec).unwrap();
        assert!(report.status.success());
        assert!(!report.stats.damaged);
        assert!(report.stats.fast_path > 0, "{:?}", report.stats);
    }
);
