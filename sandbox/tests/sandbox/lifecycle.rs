//! The process tree's life: orphans, interruption, the supervisor's death, setup failures.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shark_sandbox::{check_support, run, LandlockStatus, SandboxError, Stage};

use crate::common::{argvs, Env};

/// A `sleep` duration unique to this call, so its processes can be found in /proc.
fn marker() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("1000.{nanos:09}")
}

/// Host pids of processes whose command line contains `needle`.
fn find(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) && pid != std::process::id() as i32 {
            pids.push(pid);
        }
    }
    pids
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

both_legs!(background_children_die_with_the_command, |env: &Env| {
    // The shell waits until the background child has exec'd `sleep` (its comm changes), so the
    // exec is certain to have happened before the main process exits.
    let script = "sleep 100 & echo $! > pid.txt\n\
                  until read -r c < /proc/$!/comm && [ \"$c\" = sleep ]; do :; done";
    let started = Instant::now();
    let report = run(env.spec(&["sh", "-c", script])).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "run returned promptly"
    );
    assert!(report.status.success());
    assert_eq!(
        argvs(&report),
        [vec!["sh", "-c", script], vec!["sleep", "100"]]
    );
    let sleep = report.processes[1].pid;
    assert!(!alive(sleep), "the orphaned sleep (pid {sleep}) was killed");
    assert_eq!(env.changes(&report).len(), 1, "pid.txt");
});

const SUPERVISE: &str = "SHARK_SANDBOX_TEST_SUPERVISE";
const IGNORE_SIGINT: &str = "SHARK_SANDBOX_TEST_IGNORE_SIGINT";
const REPORT: &str = "SHARK_SANDBOX_TEST_REPORT";

/// Not a test on its own: with `SHARK_SANDBOX_TEST_SUPERVISE=MARK` set, it is a supervisor
/// (like shark) running `sleep MARK & sleep MARK` that the tests below signal. With
/// `SHARK_SANDBOX_TEST_IGNORE_SIGINT` it ignores SIGINT while it waits, as a shell does for a
/// foreground command, and writes the outcome to `SHARK_SANDBOX_TEST_REPORT`.
#[test]
fn supervisor_helper() {
    let Some(mark) = std::env::var_os(SUPERVISE) else {
        return;
    };
    if std::env::var_os(IGNORE_SIGINT).is_some() {
        // SAFETY: installs SIG_IGN, no handler code.
        unsafe { nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigIgn) }
            .unwrap();
    }
    let env = Env::new();
    let mark = mark.to_string_lossy().into_owned();
    let script = format!("sleep {mark} & sleep {mark}; echo not reached");
    let report = run(env.spec(&["sh", "-c", &script])).unwrap();
    if let Some(out) = std::env::var_os(REPORT) {
        let pids: Vec<String> = report.processes.iter().map(|p| p.pid.to_string()).collect();
        let line = format!(
            "{:?} {} {}",
            report.status,
            report.status.code(),
            pids.join(",")
        );
        std::fs::write(out, line).unwrap();
    }
}

/// Starts `supervisor_helper` in its own process group and waits for both sleeps.
fn supervisor(mark: &str, ignore_sigint: bool, report: Option<&Path>) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "lifecycle::supervisor_helper",
            "--test-threads=1",
        ])
        .env(SUPERVISE, mark)
        .current_dir("/tmp")
        .stdout(std::process::Stdio::null())
        .process_group(0);
    if ignore_sigint {
        command.env(IGNORE_SIGINT, "1");
    }
    if let Some(report) = report {
        command.env(REPORT, report);
    }
    let child = command.spawn().unwrap();
    wait_for("the sandboxed sleeps", || {
        find(&format!("sleep\0{mark}")).len() == 2
    });
    child
}

both_legs!(ctrl_c_ends_the_whole_tree, |env: &Env| {
    // Ctrl-C at a terminal sends SIGINT to the foreground process group: the supervisor (which
    // ignores it while waiting, as a shell does) and the whole sandboxed tree. `sh` dies of it
    // with its foreground sleep; the background sleep ignores SIGINT (POSIX shells do that for
    // `&` jobs) and is killed when the command's main process is gone.
    let mark = marker();
    let out = env.root.join("report");
    std::fs::write(&out, "").unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let mut supervisor = supervisor(&mark, true, Some(&out));
    kill(Pid::from_raw(-(supervisor.id() as i32)), Signal::SIGINT).unwrap();
    assert!(
        supervisor.wait().unwrap().success(),
        "the supervisor survives"
    );
    let line = std::fs::read_to_string(&out).unwrap();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[..2], ["Signaled(2)", "130"], "{line}");
    let pids: Vec<u32> = fields[2].split(',').map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.len(), 3, "sh and two sleeps: {line}");
    assert!(pids.iter().all(|&p| !alive(p)), "every process is gone");
    assert!(find(&mark).is_empty());
});

both_legs!(killing_the_supervisor_kills_the_tree, |_env: &Env| {
    let mark = marker();
    let mut supervisor = supervisor(&mark, false, None);
    supervisor.kill().unwrap();
    supervisor.wait().unwrap();
    wait_for("the tree to die", || find(&mark).is_empty());
});

both_legs!(interrupting_the_supervisor_kills_the_tree, |_env: &Env| {
    // SIGINT to the supervisor alone (not its group): it dies of it, and the tree with it.
    let mark = marker();
    let mut supervisor = supervisor(&mark, false, None);
    kill(Pid::from_raw(supervisor.id() as i32), Signal::SIGINT).unwrap();
    let status = supervisor.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGINT)
    );
    wait_for("the tree to die", || find(&mark).is_empty());
});

both_legs!(a_missing_program_is_an_exec_error, |env: &Env| {
    match run(env.spec(&["no-such-program-here"])) {
        Err(e @ SandboxError::Exec { .. }) => {
            assert!(e.is_command_not_found());
            assert_eq!(e.exec_exit_code(), Some(127));
            let SandboxError::Exec { program, source } = e else {
                unreachable!()
            };
            assert_eq!(program, "no-such-program-here");
            assert_eq!(source, nix::errno::Errno::ENOENT);
        }
        other => panic!("expected an exec error, got {other:?}"),
    }
    let missing = env.work.join("missing");
    let err = run(env.spec(&[missing.to_str().unwrap()])).unwrap_err();
    assert!(err.is_command_not_found(), "{err:?}");
});

both_legs!(
    a_file_that_is_not_executable_is_an_exec_error,
    |env: &Env| {
        env.write("work/data.txt", "not a program");
        match run(env.spec(&["./data.txt"])) {
            Err(e @ SandboxError::Exec { .. }) => {
                assert!(!e.is_command_not_found());
                assert_eq!(e.exec_exit_code(), Some(126));
                assert!(matches!(
                    e,
                    SandboxError::Exec {
                        source: nix::errno::Errno::EACCES,
                        ..
                    }
                ));
            }
            other => panic!("expected an exec error, got {other:?}"),
        }
    }
);

both_legs!(a_missing_cwd_names_the_failed_stage, |env: &Env| {
    let mut spec = env.spec(&["true"]);
    spec.cwd = env.work.join("missing");
    match run(spec) {
        Err(
            e @ SandboxError::Setup {
                stage: Stage::Chdir,
                ..
            },
        ) => {
            assert_eq!(
                e.to_string(),
                format!(
                    "sandbox setup failed: chdir to {}/missing",
                    env.work.display()
                )
            );
        }
        other => panic!("expected a chdir error, got {other:?}"),
    }
});

both_legs!(support_is_detected, |_env: &Env| {
    let support = check_support().unwrap();
    assert_eq!(support.landlock, LandlockStatus::Enforced { abi: 7 });
    assert!(support.sync_wake_up);
});

both_legs!(runs_from_many_threads_at_once, |env: &Env| {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let spec = env.spec(&["sh", "-c", &format!("echo {i} > out{i}.txt")]);
            std::thread::spawn(move || run(spec).unwrap())
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let report = handle.join().unwrap();
        assert_eq!(
            env.changes(&report),
            [format!("file work/out{i}.txt 644 \"{i}\\n\"")]
        );
    }
});
