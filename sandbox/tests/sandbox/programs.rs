//! Real programs: what each reads and writes, exactly.

use shark_sandbox::{run, AccessKind::*, Status};

use crate::common::{argvs, compile, has, set, Env};

both_legs!(cat_reads_its_argument, |env: &Env| {
    env.write("work/in.txt", "hello\n");
    let mut spec = env.spec(&["cat", "in.txt"]);
    let (out, stdout) = env.capture("stdout");
    spec.stdout = stdout;
    let report = run(spec).unwrap();
    assert_eq!(report.status, Status::Exited(0));
    assert_eq!(std::fs::read_to_string(out).unwrap(), "hello\n");
    assert_eq!(env.accesses(&report), set(&[("work/in.txt", Read)]));
    assert!(has(&report, "/usr/bin/cat", Exec));
    assert!(has(&report, "/etc/ld.so.cache", Read));
    assert_eq!(argvs(&report), [["cat", "in.txt"]]);
    assert_eq!(env.changes(&report), Vec::<String>::new());
});

both_legs!(cp_reads_source_and_creates_target, |env: &Env| {
    env.write("work/a.txt", "content\n");
    let report = run(env.spec(&["cp", "a.txt", "b.txt"])).unwrap();
    assert!(report.status.success());
    let expected = set(&[
        ("work/a.txt", Stat),
        ("work/a.txt", Read),
        ("work/b.txt", Stat),
        ("work/b.txt", CreateNew),
    ]);
    assert_eq!(env.accesses(&report), expected);
    assert_eq!(env.changes(&report), ["file work/b.txt 644 \"content\\n\""]);
    assert!(
        !env.work.join("b.txt").exists(),
        "nothing reaches the real tree before apply"
    );
    report.apply().unwrap();
    assert_eq!(env.read("work/b.txt"), "content\n");
});

both_legs!(sort_writes_its_output_file, |env: &Env| {
    env.write("work/in.txt", "b\na\n");
    let report = run(env.spec(&["sort", "in.txt", "-o", "out.txt"])).unwrap();
    assert!(report.status.success());
    let expected = set(&[
        ("work/in.txt", Stat),
        ("work/in.txt", Read),
        ("work/out.txt", Overwrite),
        ("work/out.txt", Truncate),
    ]);
    assert_eq!(env.accesses(&report), expected);
    assert_eq!(env.changes(&report), ["file work/out.txt 644 \"a\\nb\\n\""]);
});

both_legs!(shell_pipeline_with_redirections, |env: &Env| {
    env.write("work/in.txt", "b\na\n");
    env.write("work/log.txt", "old\n");
    let script = "cat in.txt | sort > out.txt 2>err.txt; echo more >> log.txt";
    let report = run(env.spec(&["sh", "-c", script])).unwrap();
    assert!(report.status.success());
    let expected = set(&[
        ("work/in.txt", Read),
        ("work/out.txt", Create),
        ("work/err.txt", Create),
        ("work/log.txt", Append),
    ]);
    assert_eq!(env.accesses(&report), expected);
    let changes = [
        "file work/err.txt 644 \"\"",
        "file work/log.txt 644 \"old\\nmore\\n\"",
        "file work/out.txt 644 \"a\\nb\\n\"",
    ];
    assert_eq!(env.changes(&report), changes);
    assert_eq!(
        argvs(&report),
        [
            vec!["sh", "-c", script],
            vec!["cat", "in.txt"],
            vec!["sort"]
        ]
    );
    let cat = report
        .processes
        .iter()
        .find(|p| p.argv[0] == "cat")
        .unwrap()
        .pid;
    let read = report
        .accesses
        .iter()
        .find(|a| a.path.ends_with("work/in.txt"))
        .unwrap();
    assert_eq!(
        read.pid, cat,
        "the read is attributed to cat, not the shell"
    );
});

both_legs!(python_reads_and_writes, |env: &Env| {
    env.write("work/in.txt", "abc");
    let code = "open('out.txt', 'w').write(open('in.txt').read().upper())";
    let report = run(env.spec(&["/usr/bin/python3", "-S", "-c", code])).unwrap();
    assert!(report.status.success());
    let expected = set(&[("work/in.txt", Read), ("work/out.txt", Create)]);
    assert_eq!(env.accesses(&report), expected);
    assert!(has(&report, "/usr/bin/python3", Exec));
    assert!(report
        .accesses
        .iter()
        .any(|a| a.path.starts_with("/usr/lib/python3.11") && a.kind == Read));
    assert_eq!(env.changes(&report), ["file work/out.txt 644 \"ABC\""]);
});

both_legs!(gcc_compiles_a_program, |env: &Env| {
    env.write(
        "work/hello.c",
        "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
    );
    let report = run(env.spec(&["gcc", "hello.c", "-o", "hello"])).unwrap();
    assert!(report.status.success());
    let seen = env.accesses(&report);
    assert!(seen.contains(&("work/hello.c".into(), Read)), "{seen:?}");
    assert!(seen.contains(&("work/hello".into(), Create)), "{seen:?}");
    assert!(has(&report, "/usr/include/stdio.h", Read));
    let names: Vec<_> = argvs(&report).into_iter().map(|a| a[0].clone()).collect();
    assert!(names.iter().any(|n| n.ends_with("cc1")), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.ends_with("ld") || n.ends_with("collect2")),
        "{names:?}"
    );
    // Temporary files in $TMPDIR were created and deleted: only the binary remains.
    let changes = env.changes(&report);
    assert_eq!(changes, ["file work/hello 755 \"<binary>\""]);
    report.apply().unwrap();
    let out = std::process::Command::new(env.work.join("hello"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"hi\n");
});

const COPY_C: &str = r#"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char buf[64];
    int in = open(argv[1], O_RDONLY);
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ssize_t n = read(in, buf, sizeof buf);
    return in < 0 || out < 0 || write(out, buf, n) != n;
}
"#;

both_legs!(static_binary_is_traced, |env: &Env| {
    let bin = compile(&env.root, "copy", COPY_C, &["-static", "-O1"]);
    env.write("work/in.txt", "static");
    let report = run(env.spec(&[bin.to_str().unwrap(), "in.txt", "out.txt"])).unwrap();
    assert!(report.status.success());
    // A static binary loads nothing; glibc's static start-up only reads its own exe link,
    // which is recorded at the program it names.
    let expected = set(&[
        ("copy", Exec),
        ("copy", ReadLink),
        ("work/in.txt", Read),
        ("work/out.txt", Create),
    ]);
    assert_eq!(env.accesses(&report), expected);
    assert_eq!(report.accesses.len(), 4, "{:?}", report.accesses);
    assert_eq!(env.changes(&report), ["file work/out.txt 600 \"static\""]);
});

const THREADS_C: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
static void *reader(void *arg) {
    char name[16];
    snprintf(name, sizeof name, "t%ld.txt", (long)arg);
    int fd = open(name, O_RDONLY);
    if (fd >= 0) close(fd);
    return NULL;
}
int main(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, reader, (void *)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    return 0;
}
"#;

both_legs!(multi_threaded_program_is_traced, |env: &Env| {
    let bin = compile(&env.root, "threads", THREADS_C, &["-pthread"]);
    for i in 0..4 {
        env.write(&format!("work/t{i}.txt"), "x");
    }
    let report = run(env.spec(&[bin.to_str().unwrap()])).unwrap();
    assert!(report.status.success());
    let expected = set(&[
        ("threads", Exec),
        ("work/t0.txt", Read),
        ("work/t1.txt", Read),
        ("work/t2.txt", Read),
        ("work/t3.txt", Read),
    ]);
    assert_eq!(env.accesses(&report), expected);
    let pid = report.processes[0].pid;
    let under: Vec<_> = report
        .accesses
        .iter()
        .filter(|a| a.path.starts_with(&env.work))
        .collect();
    assert!(
        under.iter().all(|a| a.pid == pid),
        "threads are attributed to their process: {under:?}"
    );
});

both_legs!(ls_reads_the_directory, |env: &Env| {
    std::fs::create_dir(env.work.join("sub")).unwrap();
    env.write("work/sub/x", "");
    let (out, stdout) = env.capture("stdout");
    let mut spec = env.spec(&["ls", "sub"]);
    spec.stdout = stdout;
    let report = run(spec).unwrap();
    assert!(report.status.success());
    assert_eq!(std::fs::read_to_string(out).unwrap(), "x\n");
    assert_eq!(
        env.accesses(&report),
        set(&[("work/sub", Stat), ("work/sub", Read), ("work/sub", List)])
    );
});

both_legs!(test_e_of_a_missing_file_is_a_stat, |env: &Env| {
    let report = run(env.spec(&["sh", "-c", "test -e missing.txt"])).unwrap();
    assert_eq!(report.status, Status::Exited(1));
    assert_eq!(env.accesses(&report), set(&[("work/missing.txt", Stat)]));
    assert!(report.changes.is_empty());
});

both_legs!(
    relative_dirfd_and_proc_self_fd_paths_resolve,
    |env: &Env| {
        std::fs::create_dir(env.work.join("d")).unwrap();
        env.write("work/d/f.txt", "x");
        let code = "import os\nd = os.open('d', os.O_RDONLY)\nos.close(os.open('f.txt', os.O_RDONLY, dir_fd=d))\n\
                open('/proc/self/fd/%d/../d/./f.txt' % d).close()\nos.stat('d/../d/f.txt')";
        let report = run(env.spec(&["/usr/bin/python3", "-S", "-c", code])).unwrap();
        assert!(report.status.success());
        let expected = set(&[
            ("work/d", Read),
            ("work/d/f.txt", Read),
            ("work/d/f.txt", Stat),
        ]);
        assert_eq!(env.accesses(&report), expected);
    }
);

const RAW_CALLS_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1) return 7; /* the execveat'd copy of itself */
    int dir = open("d", O_RDONLY | O_DIRECTORY);
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY;
    int fd = syscall(SYS_openat2, dir, "in.txt", &how, sizeof how);
    how.flags = O_WRONLY | O_CREAT | O_TRUNC;
    how.mode = 0644;
    int out = syscall(SYS_openat2, AT_FDCWD, "out.txt", &how, sizeof how);
    if (dir < 0 || fd < 0 || out < 0 || write(out, "ok", 2) != 2) return 1;
    char *args[] = {"self", "again", NULL};
    syscall(SYS_execveat, dir, "../raw", args, environ, 0);
    return 2;
}
"#;

both_legs!(openat2_and_execveat_are_traced, |env: &Env| {
    compile(&env.work, "raw", RAW_CALLS_C, &[]);
    std::fs::create_dir(env.work.join("d")).unwrap();
    env.write("work/d/in.txt", "x");
    let report = run(env.spec(&["./raw"])).unwrap();
    assert_eq!(
        report.status,
        Status::Exited(7),
        "the execveat'd program ran"
    );
    let expected = set(&[
        ("work/raw", Exec),
        ("work/d", Read),
        ("work/d/in.txt", Read),
        ("work/out.txt", Create),
    ]);
    assert_eq!(env.accesses(&report), expected);
    assert_eq!(argvs(&report), [vec!["./raw"], vec!["self", "again"]]);
    assert_eq!(env.changes(&report), ["file work/out.txt 644 \"ok\""]);
});

both_legs!(paths_through_symlinks_are_reported_as_named, |env: &Env| {
    // The sandbox reports the path each process named; the caller walks it on the host to find
    // the symlinks met and the place reached. So `..` after a symlink must not be collapsed:
    // `deep/../f.txt` is `real/f.txt`, not `f.txt`.
    std::fs::create_dir_all(env.work.join("real/sub")).unwrap();
    env.write("work/real/f.txt", "x");
    std::os::unix::fs::symlink("real", env.work.join("dirlink")).unwrap();
    std::os::unix::fs::symlink("real/f.txt", env.work.join("filelink")).unwrap();
    std::os::unix::fs::symlink("real/sub", env.work.join("deep")).unwrap();
    let (out, stdout) = env.capture("stdout");
    let mut spec = env.spec(&["cat", "dirlink/f.txt", "filelink", "deep/../f.txt"]);
    spec.stdout = stdout;
    let report = run(spec).unwrap();
    assert!(report.status.success());
    assert_eq!(std::fs::read_to_string(out).unwrap(), "xxx");
    let expected = set(&[
        ("work/dirlink/f.txt", Read),
        ("work/filelink", Read),
        ("work/deep/../f.txt", Read),
    ]);
    assert_eq!(env.accesses(&report), expected);
});

/// Runs `argv` with `stdin` and returns whether the report says it read a terminal.
fn read_terminal(env: &Env, argv: &[&str], stdin: shark_sandbox::Stdio) -> bool {
    let mut spec = env.spec(argv);
    spec.stdin = stdin;
    let report = run(spec).unwrap();
    assert!(report.status.success(), "{:?}", report.status);
    report.terminal_input
}

both_legs!(reading_a_terminal_is_reported, |env: &Env| {
    use shark_sandbox::Stdio;
    let typed = || {
        let pty = nix::pty::openpty(None, None).unwrap();
        nix::unistd::write(&pty.master, b"typed\n").unwrap();
        pty
    };
    // stdin a pty: reading it counts, not reading it does not.
    let pty = typed();
    assert!(read_terminal(
        env,
        &["head", "-c", "1"],
        Stdio::Fd(pty.slave)
    ));
    let pty = typed();
    assert!(!read_terminal(env, &["true"], Stdio::Fd(pty.slave)));
    // stdin a pipe with the same bytes: not a terminal.
    let (read, write) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&write, b"typed\n").unwrap();
    drop(write);
    assert!(!read_terminal(env, &["head", "-c", "1"], Stdio::Fd(read)));
    // Opening a pty by name for reading counts too (here the one on stdout).
    let pty = typed();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&pty.slave);
    let name = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    let script = format!("head -c 1 < {}", name.display());
    let mut spec = env.spec(&["sh", "-c", &script]);
    spec.stdout = Stdio::Fd(pty.slave.try_clone().unwrap());
    let report = run(spec).unwrap();
    assert!(report.status.success(), "{:?}", report.status);
    assert!(report.terminal_input);
});

both_legs!(only_the_terminals_on_stdio_can_be_opened, |env: &Env| {
    // Another terminal of the host (another user's, or another of the caller's) is out of
    // reach: it could be read (stealing keystrokes) or written to.
    let other = nix::pty::openpty(None, None).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&other.slave);
    let name = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    let script = format!("echo hello > {}; ls /dev/pts", name.display());
    let (out, stdout) = env.capture("stdout");
    let mut spec = env.spec(&["sh", "-c", &script]);
    spec.stdout = stdout;
    let report = run(spec).unwrap();
    assert!(report.status.success());
    assert_eq!(
        std::fs::read_to_string(out).unwrap(),
        "",
        "no terminal is there"
    );
    let mut buf = [0u8; 16];
    nix::fcntl::fcntl(
        &other.master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    assert!(
        nix::unistd::read(&other.master, &mut buf).is_err(),
        "nothing was written to it"
    );
});

both_legs!(
    the_command_starts_with_the_ignored_signals_of_the_spec,
    |env: &Env| {
        for (ignored, shown) in [(vec![], ""), (vec![libc::SIGHUP], "trap -- '' SIGHUP\n")] {
            let (out, stdout) = env.capture("stdout");
            let mut spec = env.spec(&["bash", "-c", "trap"]);
            spec.stdout = stdout;
            spec.ignored_signals = ignored;
            let report = run(spec).unwrap();
            assert_eq!(report.status, Status::Exited(0));
            assert_eq!(std::fs::read_to_string(out).unwrap(), shown);
        }
    }
);
