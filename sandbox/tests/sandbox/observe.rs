//! What the tracer records beyond plain opens: the order of a run's accesses, fingerprints
//! taken at the access, reads through `/proc` magic links and `/dev/fd`, listings, extended
//! attributes, and io_uring refused.

use crate::common::{compile, set, Env};
use shark_sandbox::{run, AccessKind::*, Fingerprint};

/// The kinds of the accesses to `rel` (under the test tree), in the order they were made.
fn kinds(env: &Env, report: &shark_sandbox::Report, rel: &str) -> Vec<shark_sandbox::AccessKind> {
    let path = env.root.join(rel);
    report
        .accesses
        .iter()
        .filter(|a| a.path == path)
        .map(|a| a.kind)
        .collect()
}

both_legs!(accesses_keep_their_order, |env: &Env| {
    env.write("work/counter", "0\n");
    env.write("work/other", "1\n");
    let script = "n=$(cat counter); echo $((n+1)) > counter; cat counter; \
                  echo 5 > other; cat other";
    let report = run(env.spec(&["bash", "-c", script])).unwrap();
    assert!(report.status.success());
    // The first read of `counter` comes before the truncating open; the second read is a
    // duplicate of the first kind and is not repeated.
    assert_eq!(kinds(env, &report, "work/counter"), [Read, Create]);
    assert_eq!(kinds(env, &report, "work/other"), [Create, Read]);
});

both_legs!(fingerprints_are_taken_before_the_call, |env: &Env| {
    env.write("work/in.txt", "data");
    let before = Fingerprint::of(&env.work.join("in.txt"));
    let report = run(env.spec(&[
        "sh",
        "-c",
        "cat in.txt; test -e missing; echo x > out.txt; cat out.txt",
    ]))
    .unwrap();
    assert!(report.status.success());
    let fingerprint = |rel: &str| {
        let path = env.root.join(rel);
        report
            .accesses
            .iter()
            .filter(|a| a.path == path)
            .map(|a| a.fingerprint)
            .collect::<Vec<_>>()
    };
    assert!(matches!(before, Fingerprint::Present { .. }));
    assert_eq!(fingerprint("work/in.txt"), [Some(before)]);
    assert_eq!(fingerprint("work/missing"), [Some(Fingerprint::Absent)]);
    // The first access of a path the command creates finds nothing; the read of its own
    // output after that takes no second fingerprint.
    assert_eq!(
        fingerprint("work/out.txt"),
        [Some(Fingerprint::Absent), None]
    );
});

const MAGIC_PY: &str = r#"
import os
root = os.getcwd()
open('/proc/self/root' + root + '/a.txt').read()
open('/proc/self/cwd/b.txt').read()
d = os.open('d', os.O_RDONLY)
open('/dev/fd/%d/c.txt' % d).read()
open('/proc/thread-self/fd/%d/../e.txt' % d).read()
open('/proc/%d/cwd/f.txt' % os.getpid()).read()
"#;

both_legs!(magic_links_name_what_they_reach, |env: &Env| {
    std::fs::create_dir(env.work.join("d")).unwrap();
    for f in ["a.txt", "b.txt", "d/c.txt", "e.txt", "f.txt"] {
        env.write(&format!("work/{f}"), f);
    }
    let report = run(env.spec(&["/usr/bin/python3", "-S", "-c", MAGIC_PY])).unwrap();
    assert!(report.status.success());
    let seen = env.accesses(&report);
    for f in ["a.txt", "b.txt", "d/c.txt", "e.txt", "f.txt"] {
        assert!(seen.contains(&(format!("work/{f}"), Read)), "{f}: {seen:?}");
    }
    assert!(
        !report
            .accesses
            .iter()
            .any(|a| a.path.starts_with("/proc/self") || a.path.starts_with("/dev/fd")),
        "{:?}",
        report.accesses
    );
});

both_legs!(
    listings_and_extended_attributes_are_observed,
    |env: &Env| {
        std::fs::create_dir(env.work.join("d")).unwrap();
        env.write("work/d/x", "");
        let code = "import os\nos.listdir('d')\n\
                try:\n  os.getxattr('d/x', 'user.tag')\nexcept OSError:\n  pass\n\
                os.listxattr('d/x')\nos.open('d', os.O_RDONLY | os.O_DIRECTORY)";
        let report = run(env.spec(&["/usr/bin/python3", "-S", "-c", code])).unwrap();
        assert!(report.status.success());
        assert_eq!(
            env.accesses(&report),
            set(&[("work/d", Read), ("work/d", List), ("work/d/x", Xattr)])
        );
    }
);

const URING_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    char params[120];
    memset(params, 0, sizeof params);
    long fd = syscall(425 /* io_uring_setup */, 4, params);
    printf("%ld %d\n", fd, fd < 0 ? errno : 0);
    return 0;
}
"#;

both_legs!(io_uring_is_refused, |env: &Env| {
    let bin = compile(&env.root, "uring", URING_C, &[]);
    let (out, stdout) = env.capture("stdout");
    let mut spec = env.spec(&[bin.to_str().unwrap()]);
    spec.stdout = stdout;
    let report = run(spec).unwrap();
    assert!(report.status.success());
    assert_eq!(
        std::fs::read_to_string(out).unwrap(),
        format!("-1 {}\n", libc::ENOSYS)
    );
});

both_legs!(every_notified_call_is_counted, |env: &Env| {
    // `test -e` is a shell builtin: without the fast path each one is a `stat` the supervisor
    // is notified of; with it, the first of a path is recorded by the library and the rest
    // are let through.
    let calls = |n: usize, fast_path: bool| {
        let script = format!("for i in $(seq {n}); do test -e missing; done; true");
        let mut spec = env.spec(&["bash", "-c", &script]);
        spec.fast_path = fast_path;
        let report = run(spec).unwrap();
        assert!(report.status.success());
        report.stats
    };
    let (few, many) = (calls(1, false), calls(201, false));
    assert!(few.notifications > 0);
    assert_eq!(
        many.notifications - few.notifications,
        200,
        "{few:?} then {many:?}"
    );
    assert_eq!((few.fast_path, many.fast_path), (0, 0));
    let (few, many) = (calls(1, true), calls(201, true));
    // (`seq 201` itself makes a call or two more than `seq 1`.)
    assert!(
        many.notifications < few.notifications + 10,
        "{few:?} then {many:?}"
    );
    assert!(few.fast_path > 0, "{few:?}");
});

/// Stats 400 missing files while a timer interrupts it every 50 µs.
const INTERRUPTED_C: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>
static void tick(int sig) { (void)sig; }
int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = tick;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval every = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &every, 0);
    char name[32];
    struct stat st;
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof name, "missing-%d", i);
        stat(name, &st);
    }
    return 0;
}
"#;

both_legs!(
    a_call_interrupted_by_a_signal_keeps_its_fingerprint,
    |env: &Env| {
        // A signal withdraws the notification of the call it interrupts; the restarted call is
        // notified again, and is then the path's first access.
        let bin = compile(&env.root, "interrupted", INTERRUPTED_C, &["-O2"]);
        let mut spec = env.spec(&[bin.to_str().unwrap()]);
        spec.fast_path = false;
        let report = run(spec).unwrap();
        assert!(report.status.success());
        for i in 0..400 {
            let path = env.work.join(format!("missing-{i}"));
            let fingerprints: Vec<_> = report
                .accesses
                .iter()
                .filter(|a| a.path == path)
                .map(|a| a.fingerprint)
                .collect();
            assert_eq!(fingerprints, [Some(Fingerprint::Absent)], "missing-{i}");
        }
    }
);
