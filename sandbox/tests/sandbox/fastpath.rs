//! The fast path's equivalence suite: a corpus of real programs, each run with the preloaded
//! library and without it, must report the same accesses, in the same order, with the same
//! fingerprints, the same processes and the same changes. Any difference is a bug. Each test
//! also requires the library to have recorded something (or, for a static binary and a
//! program that clears its environment, nothing), so a fast path that silently stood down
//! would fail here.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use shark_sandbox::{run, AccessKind, Fingerprint, Report, Spec};

use crate::common::{argvs, compile, Env};

/// Whether the library must record accesses in a run (`Some(true)`), must not (`Some(false)`:
/// static binaries), or either (`None`).
type Expect = Option<bool>;

/// Runs `spec()` without and with the fast path, requires equivalent reports, returns both.
fn equivalent(env: &Env, spec: impl Fn() -> Spec, fast: Expect) -> (Report, Report) {
    let mut slow_spec = spec();
    slow_spec.fast_path = false;
    let slow = run(slow_spec).unwrap();
    let mut fast_spec = spec();
    fast_spec.fast_path = true;
    let quick = run(fast_spec).unwrap();
    assert_eq!(slow.stats.fast_path, 0);
    match fast {
        Some(true) => {
            assert!(quick.stats.fast_path > 0, "the library recorded nothing");
            assert!(
                quick.stats.notifications < slow.stats.notifications,
                "{:?} vs {:?}",
                quick.stats,
                slow.stats
            );
        }
        Some(false) => assert_eq!(quick.stats.fast_path, 0),
        None => {}
    }
    assert_eq!(slow.status, quick.status);
    assert_same(env, &slow, &quick);
    (slow, quick)
}

/// One access, comparable across runs: the path (random temporary names masked), the kind,
/// the rank of the process that made it (by first appearance), and the fingerprint (only
/// whether there is one and its kind, for directories other processes of the machine write).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    path: String,
    kind: AccessKind,
    process: usize,
    fingerprint: Option<String>,
}

fn seen(env: &Env, report: &Report) -> Vec<Seen> {
    let mut ranks: HashMap<u32, usize> = HashMap::new();
    report
        .accesses
        .iter()
        .map(|a| {
            let next = ranks.len();
            let process = *ranks.entry(a.pid).or_insert(next);
            let busy = ["/tmp", "/var/tmp", "/dev/shm"]
                .iter()
                .any(|d| a.path == Path::new(d))
                || (a.path.starts_with("/tmp") && !a.path.starts_with(&env.root));
            let fingerprint = a.fingerprint.map(|f| match (f, busy) {
                (Fingerprint::Present { .. }, true) => "present".to_string(),
                (f, _) => format!("{f:?}"),
            });
            Seen {
                path: mask_temporary(&a.path.display().to_string()),
                kind: a.kind,
                process,
                fingerprint,
            }
        })
        .collect()
}

/// Replaces the random part of temporary names (`ccAbC123.s`) with `*`.
fn mask_temporary(path: &str) -> String {
    path.split('/')
        .map(|part| {
            let b = part.as_bytes();
            let random = b.len() >= 8
                && b.starts_with(b"cc")
                && b[2..8].iter().all(u8::is_ascii_alphanumeric)
                && (b.len() == 8 || b[8] == b'.');
            if random {
                format!("cc*{}", &part[8..])
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn assert_same(env: &Env, slow: &Report, fast: &Report) {
    let (a, b) = (seen(env, slow), seen(env, fast));
    let first_difference = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(
        a == b,
        "the accesses differ (slow {} / fast {}), first at {first_difference:?}:\nslow: {:#?}\nfast: {:#?}",
        a.len(),
        b.len(),
        first_difference.map(|i| &a[i.saturating_sub(2)..(i + 3).min(a.len())]),
        first_difference.map(|i| &b[i.saturating_sub(2)..(i + 3).min(b.len())]),
    );
    let masked = |r: &Report| -> Vec<Vec<String>> {
        let argvs = argvs(r).into_iter();
        argvs
            .map(|a| a.iter().map(|s| mask_temporary(s)).collect())
            .collect()
    };
    assert_eq!(masked(slow), masked(fast));
    let changes =
        |r: &Report| -> Vec<String> { env.changes(r).iter().map(|c| mask_temporary(c)).collect() };
    assert_eq!(changes(slow), changes(fast));
    assert_eq!(slow.terminal_input, fast.terminal_input);
    assert_eq!(slow.append_bases, fast.append_bases);
}

fn sh(env: &Env, script: &str) -> Spec {
    env.spec(&["sh", "-c", script])
}

both_legs!(coreutils_are_observed_alike, |env: &Env| {
    env.write("work/in.txt", "pear\napple\nfig\n");
    fs::create_dir_all(env.work.join("sub/deeper")).unwrap();
    env.write("work/sub/a", "a");
    env.write("work/sub/deeper/b", "b");
    std::os::unix::fs::symlink("in.txt", env.work.join("link")).unwrap();
    let script = "ls -la . sub; cat in.txt link; sort in.txt > out.txt; cat out.txt; \
                  wc -l in.txt out.txt; cp in.txt copy.txt; mkdir -p d/e; stat in.txt sub; \
                  head -c 3 in.txt; tr a-z A-Z < in.txt; readlink -f link; du -s sub; \
                  find sub -name b; test -e missing || echo no; touch in.txt; rm copy.txt; \
                  mv out.txt d/e/; ls -R d; cat /etc/hostname /proc/self/status >/dev/null";
    equivalent(env, || sh(env, script), Some(true));
});

both_legs!(python_with_imports_is_observed_alike, |env: &Env| {
    env.write("work/data.csv", "a,b\n1,2\n");
    let code = "import json, email, decimal, sqlite3, csv, os, glob, pathlib\n\
                rows = list(csv.reader(open('data.csv')))\n\
                os.listdir('.'); glob.glob('*.csv'); pathlib.Path('data.csv').stat()\n\
                os.path.exists('/nowhere'); os.path.isdir('/usr/lib')\n\
                open('out.json', 'w').write(json.dumps(rows))\n\
                print(open('out.json').read())";
    let spec = || {
        let mut spec = env.spec(&["/usr/bin/python3", "-c", code]);
        spec.env
            .push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
        spec
    };
    equivalent(env, spec, Some(true));
});

/// A 4x3 grid in GDAL's ASCII format.
const GRID: &str = "ncols 4\nnrows 3\nxllcorner 0\nyllcorner 0\ncellsize 10\nNODATA_value -9999\n\
                    1 2 3 4\n5 6 7 8\n9 10 11 12\n";

both_legs!(gdal_tools_are_observed_alike, |env: &Env| {
    env.write("work/in.asc", GRID);
    let script = "gdal_translate -q -of GTiff -a_srs EPSG:32631 in.asc out.tif && \
                  gdalinfo -stats out.tif > info.txt && gdalinfo in.asc > /dev/null";
    equivalent(env, || sh(env, script), Some(true));
});

both_legs!(gcc_and_make_are_observed_alike, |env: &Env| {
    env.write(
        "work/hello.c",
        "#include <stdio.h>\n#include <math.h>\nint main(void) { printf(\"%f\\n\", sqrt(2)); }\n",
    );
    env.write(
        "work/Makefile",
        "all: hello\nhello: hello.o\n\tgcc hello.o -o hello -lm\nhello.o: hello.c\n\tgcc -O2 -c hello.c\n",
    );
    equivalent(env, || env.spec(&["make", "-s"]), Some(true));
});

both_legs!(git_is_observed_alike, |env: &Env| {
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&env.work)
            .env("HOME", &env.home)
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    env.write("work/a.txt", "one\n");
    git(&["init", "-q"]);
    git(&["add", "a.txt"]);
    git(&["commit", "-q", "-m", "first"]);
    env.write("work/a.txt", "two\n");
    env.write("work/b.txt", "new\n");
    let script = "git status --porcelain; git log --oneline; git diff --stat; git ls-files; \
                  git rev-parse HEAD; git show HEAD:a.txt";
    equivalent(env, || sh(env, script), Some(true));
});

const STATIC: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
extern char **environ;
int main(void) {
    struct stat st;
    stat("in.txt", &st);
    close(open("in.txt", O_RDONLY));
    access("missing", F_OK);
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) == 0)
            return 3;
    return 0;
}
"#;

both_legs!(
    a_static_binary_is_observed_alike_and_sees_no_preload,
    |env: &Env| {
        env.write("work/in.txt", "x");
        let program = compile(&env.root, "static-prog", STATIC, &["-static", "-O2"]);
        let program = program.to_str().unwrap().to_string();
        let (_, fast) = equivalent(env, || env.spec(&[&program]), Some(false));
        assert!(fast.status.success(), "the static program saw LD_PRELOAD");
    }
);

/// Runs a program with an empty environment through the raw system call, as Go does.
const CLEARS_ENV: &str = r#"
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char *env[] = {0};
    return (int)syscall(SYS_execve, argv[1], argv + 1, env);
}
"#;

both_legs!(
    a_program_that_clears_its_environment_is_observed_alike,
    |env: &Env| {
        env.write("work/in.txt", "x\n");
        let program = compile(&env.root, "clears-env", CLEARS_ENV, &["-O2"]);
        let program = program.to_str().unwrap().to_string();
        // The launcher is dynamic and gets the library; cat, started with no environment, does not.
        let spec = || env.spec(&[&program, "/usr/bin/cat", "in.txt"]);
        let (_, fast) = equivalent(env, spec, None);
        let cat = fast.processes.iter().find(|p| p.argv[0] == "/usr/bin/cat");
        let cat = cat.expect("cat ran").pid;
        let read = fast
            .accesses
            .iter()
            .find(|a| a.path == env.work.join("in.txt"))
            .unwrap();
        assert_eq!(read.pid, cat, "cat's read, by the slow path, is cat's");
    }
);

/// Appends by a C program: `fopen(..., "a")` and `open(..., O_WRONLY | O_APPEND)`.
const APPENDS: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    FILE *f = fopen("c.log", "a");
    if (!f || fputs("c\n", f) < 0 || fclose(f) != 0)
        return 1;
    int fd = open("d.log", O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 || write(fd, "d\n", 2) != 2)
        return 2;
    return close(fd);
}
"#;

both_legs!(
    an_append_by_a_dynamic_program_gets_its_base_with_the_fast_path,
    |env: &Env| {
        let program = compile(&env.root, "appends", APPENDS, &["-O2"]);
        let program = program.to_str().unwrap().to_string();
        let logs = ["a.log", "b.log", "c.log", "d.log"];
        for (i, log) in logs.iter().enumerate() {
            env.write(&format!("work/{log}"), &"x".repeat(10 + i));
        }
        // cat's reads make the supervisor fingerprint every log first, so each is known to
        // the library when bash, python and the C program open it to append.
        let script = format!(
            "cat {} >/dev/null; echo a >> a.log; \
             /usr/bin/python3 -S -c \"open('b.log', 'a').write('b')\"; {program}",
            logs.join(" ")
        );
        let spec = || {
            let mut spec = env.spec(&["/bin/bash", "-c", &script]);
            spec.env
                .push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
            spec
        };
        let (slow, fast) = equivalent(env, spec, Some(true));
        assert!(fast.status.success(), "{:?}", fast.status);
        for report in [&slow, &fast] {
            for (i, log) in logs.iter().enumerate() {
                let path = env.work.join(log);
                assert_eq!(
                    report.append_bases.get(&path),
                    Some(&(10 + i as u64)),
                    "{log}: {:?}",
                    report.append_bases
                );
                assert!(
                    report
                        .accesses
                        .iter()
                        .any(|a| a.path == path && a.kind == AccessKind::Append),
                    "{log}"
                );
            }
        }
    }
);

both_legs!(a_mapped_root_is_observed_alike, |env: &Env| {
    // A mount point that exists on the host: no synthetic root, the fast path stays on.
    let inside = env.root.join("view");
    fs::create_dir_all(&inside).unwrap();
    fs::create_dir_all(env.root.join("data/sub")).unwrap();
    env.write("data/x.txt", "x\n");
    env.write("data/sub/y.txt", "y\n");
    let v = inside.display().to_string();
    let script = format!(
        "cat {v}/x.txt; ls {v} {v}/sub; cat {v}/x.txt {v}/sub/y.txt; stat {v}/x.txt; \
         test -e {v}/missing || echo no; cat {v}/sub/y.txt; echo z > {v}/z.txt"
    );
    let spec = || {
        let mut spec = sh(env, &script);
        spec.mapped_roots = vec![shark_sandbox::MappedRoot {
            inside: inside.clone(),
            host: env.root.join("data"),
        }];
        spec
    };
    let (_, fast) = equivalent(env, spec, None);
    assert!(fast.status.success(), "{:?}", fast.status);
    assert!(fast.stats.fast_path > 0, "the fast path stood down");
    let host = env.root.join("data/sub/y.txt");
    let first = fast.accesses.iter().find(|a| a.path == host);
    assert!(first.is_some_and(|a| a.fingerprint.is_some()), "{first:?}");
    assert!(!fast.accesses.iter().any(|a| a.path.starts_with(&inside)));
});

both_legs!(
    a_synthetic_root_is_observed_alike_without_the_library,
    |env: &Env| {
        // `/data` does not exist on the host: the sandbox's `/` is a tmpfs, whose root the
        // library would fingerprint in place of the host's, so the fast path stands down.
        assert!(
            !Path::new("/data").exists(),
            "the test needs a host without /data"
        );
        fs::create_dir(env.work.join("data")).unwrap();
        env.write("work/data/in.txt", "3\n1\n2\n");
        let script = "ls / >/dev/null; sort /data/in.txt; cat /data/in.txt; stat / /data";
        let spec = || {
            let mut spec = sh(env, script);
            spec.mapped_roots = vec![shark_sandbox::MappedRoot {
                inside: "/data".into(),
                host: env.work.join("data"),
            }];
            spec
        };
        let (_, fast) = equivalent(env, spec, Some(false));
        assert!(fast.status.success(), "{:?}", fast.status);
    }
);

both_legs!(
    a_program_started_often_with_few_calls_is_started_without_the_library,
    |env: &Env| {
        for i in 0..12 {
            env.write(&format!("work/f{i}.txt"), &format!("{i}\n"));
        }
        // Each `cat` reports whether it was started with the library (the environment it was
        // started with, as the kernel kept it), and reads one file. Its processes make too few
        // calls through the library to pay for loading it: after a few starts, later ones go
        // without it, and are observed by notifications alike.
        // (One process at a time: the order of a pipeline's accesses would vary.)
        let script = "for i in $(seq 0 11); do cat /proc/self/environ f$i.txt > env$i; done; \
                      for i in $(seq 0 11); do grep -c fast.so env$i; done; true";
        let mut fast = sh(env, script);
        let (out, stdout) = env.capture("fast-out");
        fast.stdout = stdout;
        fast.fast_path = true;
        let report = run(fast).unwrap();
        assert!(report.status.success());
        let counts: Vec<u32> = fs::read_to_string(out)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(
            counts,
            [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "started with the library"
        );
        // Observed alike all the same (without the environment, which differs by design).
        let script = "for i in $(seq 0 11); do cat f$i.txt > out$i; done";
        equivalent(env, || sh(env, script), None);
    }
);
