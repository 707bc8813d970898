//! The remote cache against a real REAPI server: BuildGrid's `bgd`, installed by
//! `tests/setup/buildgrid.sh` (which `./test.sh` runs). Two [`TestEnv`]s are two machines:
//! different shark homes, home directories and working directories. Without BuildGrid the
//! tests that need it print why and return.

mod server;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{stderr, stdout, TestEnv};
use server::{bgd, shared_server, Cas, Server};

macro_rules! require_bgd {
    () => {
        match bgd() {
            Some(bgd) => bgd,
            None => {
                eprintln!(
                    "skipping: BuildGrid is not installed (tests/setup/buildgrid.sh installs it)"
                );
                return;
            }
        }
    };
}

/// `shark -c LINE` on machine `env` with the remote `url`.
fn remote_line(env: &TestEnv, url: &str, line: &str) -> Output {
    let out = env
        .shark()
        .env("SHARK_REMOTE", url)
        .args(["-c", line])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{line}: {}", stderr(&out));
    out
}

fn warnings(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.contains("warning"))
        .map(str::to_owned)
        .collect()
}

/// A pipeline step with a nonce: if it runs, its `nonce` differs from any other run's.
const STEP: &str = "sort data/in.csv > sorted.csv; head -c 16 /dev/urandom | od -An -tx1 > nonce; \
    head -c 300000 /dev/urandom > blob.bin; mkdir -p outdir; ln -sfn ../sorted.csv outdir/link; \
    echo step done";

/// Two machines with their own `data/in.csv`. Each has `outdir/link` already: a command
/// typed on its own that creates a path it found absent (`mkdir -p`, `ln -s`) finds it there
/// the next time, and runs again (bash's rule for single commands); here the step finds
/// both as it leaves them, so the second machine can also reuse its result locally.
fn two_machines(input_b: &str) -> (TestEnv, TestEnv) {
    (machine("b,2\na,1\n"), machine(input_b))
}

/// A machine with `data/in.csv` holding `input`, set up for [`STEP`] (see [`two_machines`]).
fn machine(input: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write("data/in.csv", input);
    std::fs::create_dir(env.path("outdir")).unwrap();
    std::os::unix::fs::symlink("../sorted.csv", env.path("outdir/link")).unwrap();
    env
}

#[test]
fn a_second_machine_reuses_the_first_machines_result() {
    let bgd = require_bgd!();
    let url = shared_server(&bgd);
    let (a, b) = two_machines("b,2\na,1\n");
    let line = format!("{STEP} # reuse");
    let ran = remote_line(&a, url, &line);
    assert!(warnings(&ran).is_empty(), "{}", stderr(&ran));
    let reused = remote_line(&b, url, &line);
    assert!(warnings(&reused).is_empty(), "{}", stderr(&reused));
    // The nonce proves the second machine did not run the step.
    assert_eq!(b.read("nonce"), a.read("nonce"));
    for f in ["sorted.csv", "blob.bin"] {
        assert_eq!(
            std::fs::read(b.path(f)).unwrap(),
            std::fs::read(a.path(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(
        std::fs::read_link(b.path("outdir/link")).unwrap(),
        Path::new("../sorted.csv")
    );
    assert_eq!(stdout(&reused), "step done\n");
    let log = b.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["remote"]["server"], url.to_owned());
    assert_eq!(log[1]["reused_from"], log[0]["id"]);
    let why = b.run(&["why", "sorted.csv"]);
    assert!(
        stdout(&why).contains(&format!("from the remote cache {url}")),
        "{}",
        stdout(&why)
    );
    // Now a local result: no remote round trip, still the same nonce.
    remote_line(&b, url, &line);
    assert_eq!(b.read("nonce"), a.read("nonce"));
    assert_eq!(b.log()[2]["reused_from"], log[0]["id"]);
}

#[test]
fn an_input_changed_on_the_second_machine_runs_there() {
    let bgd = require_bgd!();
    let url = shared_server(&bgd);
    let (a, b) = two_machines("c,3\n");
    let line = format!("{STEP} # changed");
    remote_line(&a, url, &line);
    let ran = remote_line(&b, url, &line);
    assert!(warnings(&ran).is_empty(), "{}", stderr(&ran));
    assert_ne!(b.read("nonce"), a.read("nonce"));
    assert_eq!(b.read("sorted.csv"), "c,3\n");
    let log = b.log();
    assert_eq!(log.len(), 1);
    assert!(log[0]["remote"].is_null() && !log[0]["cached"].as_bool().unwrap());
}

#[test]
fn a_read_only_machine_uploads_nothing_until_it_pushes() {
    let bgd = require_bgd!();
    let url = shared_server(&bgd);
    let (a, b) = two_machines("b,2\na,1\n");
    let line = format!("{STEP} # push");
    let out = a
        .shark()
        .env("SHARK_REMOTE", url)
        .args(["--remote-upload=false", "-c", &line])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    remote_line(&b, url, &line);
    assert_ne!(
        b.read("nonce"),
        a.read("nonce"),
        "nothing was uploaded, so b ran"
    );
    // The remote named in the config file this time.
    let config = a.path("../user/.config/shark/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, format!("[remote]\nurl = \"{url}\"\n")).unwrap();
    let pushed = a.run(&["store", "push", "sorted.csv"]);
    assert_eq!(pushed.status.code(), Some(0), "{}", stderr(&pushed));
    assert!(
        stdout(&pushed).starts_with("pushed run 1 "),
        "{}",
        stdout(&pushed)
    );
    let c = machine("b,2\na,1\n");
    remote_line(&c, url, &line);
    assert_eq!(c.read("nonce"), a.read("nonce"), "c reused what a pushed");
}

#[test]
fn an_unreachable_server_warns_once_and_commands_run() {
    let env = TestEnv::new();
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("grpc://127.0.0.1:{port}");
    env.write("s.sh", "echo one > one\necho two > two\ncat one two\n");
    let out = env
        .shark()
        .env("SHARK_REMOTE", &url)
        .arg("s.sh")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "one\ntwo\n");
    let w = warnings(&out);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains(&url) && w[0].contains("working locally"),
        "{w:?}"
    );
}

#[test]
fn a_malformed_remote_url_is_a_usage_error() {
    let env = TestEnv::new();
    let out = env
        .shark()
        .env("SHARK_REMOTE", "127.0.0.1:50051")
        .args(["-c", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad remote URL \"127.0.0.1:50051\""),
        "{}",
        stderr(&out)
    );
}

/// A script whose step 2 prints `ready` and waits for the test to create `go`; by then step 1
/// has been recorded and uploaded, and step 2 looked the remote up. `go` is in /var/tmp, out
/// of the writable roots: the sandbox sees those through overlays, which may keep a file's
/// absence cached.
struct Paused {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    signal: tempfile::TempDir,
}

const PAUSED: &str = "echo first > first\n\
    echo ready; while [ ! -e GO ]; do sleep 0.05; done; echo second > second\n\
    echo third > third\ncat first second third > all\necho finished\n";

impl Paused {
    fn start(env: &TestEnv, url: &str) -> Paused {
        let signal = tempfile::tempdir_in("/var/tmp").unwrap();
        let go = signal.path().join("go");
        env.write("s.sh", &PAUSED.replace("GO", go.to_str().unwrap()));
        let mut child = env
            .shark()
            .env("SHARK_REMOTE", url)
            .arg("s.sh")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        Paused {
            child,
            lines,
            signal,
        }
    }

    /// Lets step 2 go on; returns the script's output and the signal's directory.
    fn resume(self) -> (Output, tempfile::TempDir) {
        std::fs::write(self.signal.path().join("go"), "").unwrap();
        let rest: Vec<String> = self.lines.map(Result::unwrap).collect();
        let out = self.child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(rest, vec!["finished"]);
        (out, self.signal)
    }
}

#[test]
fn a_server_killed_mid_session_warns_once_and_commands_succeed() {
    let bgd = require_bgd!();
    let mut server = Server::start(&bgd, Cas::Memory);
    let env = TestEnv::new();
    let paused = Paused::start(&env, &server.url);
    server.kill();
    let (out, _signal) = paused.resume();
    assert_eq!(env.read("all"), "first\nsecond\nthird\n");
    let w = warnings(&out);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("unavailable"), "{w:?}");
}

#[test]
fn a_server_restarted_between_steps_is_reconnected_without_a_warning() {
    let bgd = require_bgd!();
    let mut server = Server::start(&bgd, Cas::Memory);
    let env = TestEnv::new();
    // Step 3 looks the remote up on a connection to the old server: the call fails once and
    // is retried on a new one.
    let paused = Paused::start(&env, &server.url);
    server.restart(&bgd);
    let (out, signal) = paused.resume();
    assert!(warnings(&out).is_empty(), "{}", stderr(&out));
    // Steps 3 on went to the new server: another machine running the script reuses them
    // (step 1 went to the old one; step 2 saw its `go` file appear while it ran, so its
    // result is never reused).
    let other = TestEnv::new();
    other.write("s.sh", &env.read("s.sh"));
    let out = other
        .shark()
        .env("SHARK_REMOTE", &server.url)
        .arg("s.sh")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(warnings(&out).is_empty(), "{}", stderr(&out));
    let log = other.log();
    let remote: Vec<bool> = log
        .iter()
        .filter(|r| r["cached"] == false)
        .map(|r| !r["remote"].is_null())
        .collect();
    assert_eq!(remote, vec![false, false, true, true, true], "{log:?}");
    drop(signal);
}

/// SHA-256 of a file, through coreutils.
fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_corrupt_blob_on_the_server_is_rejected_and_the_command_runs() {
    let bgd = require_bgd!();
    let server = Server::start(&bgd, Cas::Disk);
    let (a, b) = two_machines("b,2\na,1\n");
    // One output small enough for a batch read, one large enough for ByteStream.
    let small =
        "head -c 1000 /dev/urandom > small.bin; head -c 16 /dev/urandom | od -An -tx1 > nonce";
    let large =
        "head -c 3000000 /dev/urandom > large.bin; head -c 16 /dev/urandom | od -An -tx1 > nonce2";
    for line in [small, large] {
        remote_line(&a, &server.url, line);
    }
    for f in ["small.bin", "large.bin"] {
        let blob = server.blob_file(&sha256(&a.path(f)));
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(&blob, bytes).unwrap();
    }
    for (line, nonce) in [(small, "nonce"), (large, "nonce2")] {
        let out = remote_line(&b, &server.url, line);
        let w = warnings(&out);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("rejected") && w[0].contains("corrupt"),
            "{w:?}"
        );
        assert_ne!(b.read(nonce), a.read(nonce), "the command ran");
    }
    let why = b.run(&["why", "large.bin"]);
    assert!(stdout(&why).contains("rejected"), "{}", stdout(&why));
}

#[test]
fn a_200_mb_output_goes_through_bytestream() {
    let bgd = require_bgd!();
    let url = shared_server(&bgd);
    let (a, b) = two_machines("");
    let line =
        "head -c 200000000 /dev/urandom > big.bin; head -c 16 /dev/urandom | od -An -tx1 > nonce";
    let uploaded = remote_line(&a, url, line);
    assert!(warnings(&uploaded).is_empty(), "{}", stderr(&uploaded));
    let out = remote_line(&b, url, line);
    assert!(warnings(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(b.read("nonce"), a.read("nonce"), "b reused a's result");
    assert_eq!(
        std::fs::metadata(b.path("big.bin")).unwrap().len(),
        200_000_000
    );
    assert_eq!(sha256(&b.path("big.bin")), sha256(&a.path("big.bin")));
}

#[test]
fn a_script_is_reused_step_by_step_with_its_shell_state() {
    let bgd = require_bgd!();
    let url = shared_server(&bgd);
    let (a, b) = two_machines("b,2\na,1\n");
    let script = "N=$(wc -l < data/in.csv) # script\n\
        head -c 16 /dev/urandom | od -An -tx1 > nonce\n\
        echo \"lines=$N\" > count\ncd data\ncat in.csv\n";
    for env in [&a, &b] {
        env.write("p.sh", script);
        let out = env
            .shark()
            .env("SHARK_REMOTE", url)
            .arg("p.sh")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), "b,2\na,1\n");
        assert!(warnings(&out).is_empty(), "{}", stderr(&out));
    }
    assert_eq!(b.read("nonce"), a.read("nonce"));
    assert_eq!(b.read("count"), "lines=2\n");
    // Every step came from the remote: its variable and its `cd` reached the next steps.
    let log = b.log();
    assert_eq!(
        log.iter().filter(|r| !r["remote"].is_null()).count(),
        5,
        "{log:?}"
    );
    assert_eq!(
        log.iter().filter(|r| r["cached"] == true).count(),
        5,
        "{log:?}"
    );
}

#[test]
fn a_result_that_mentions_the_machines_directories_is_not_shared() {
    let bgd = require_bgd!();
    let url = shared_server(&bgd);
    let (a, b) = two_machines("");
    let line = "pwd > where; head -c 16 /dev/urandom | od -An -tx1 > nonce";
    remote_line(&a, url, line);
    remote_line(&b, url, line);
    assert_ne!(b.read("nonce"), a.read("nonce"), "b ran the command");
    assert_eq!(b.read("where"), format!("{}\n", b.work.display()));
}

#[test]
fn a_stopped_server_costs_one_timeout_and_commands_run() {
    let bgd = require_bgd!();
    let server = Server::start(&bgd, Cas::Memory);
    let env = TestEnv::new();
    let config = env.path("../user/.config/shark/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!("[remote]\nurl = \"{}\"\ntimeout_secs = 1\n", server.url),
    )
    .unwrap();
    // Stopped, the server accepts connections (the kernel does) but never answers.
    let pid = server.child.id().to_string();
    let stop = |signal: &str| {
        // setpriv execs bgd: the child's pid is bgd's.
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
    };
    stop("-STOP");
    env.write("s.sh", "echo one > one\necho two > two\ncat one two\n");
    let started = Instant::now();
    let out = env.shark().arg("s.sh").output().unwrap();
    let took = started.elapsed();
    stop("-CONT");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "one\ntwo\n");
    let w = warnings(&out);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("unavailable"), "{w:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn tls_and_a_bearer_token_reach_a_server_that_requires_them() {
    let bgd = require_bgd!();
    let server = Server::start(&bgd, Cas::MemoryTlsToken);
    let dir = server.dir.path();
    // An HS256 JWT signed with the server's secret, by the PyJWT BuildGrid depends on.
    let python = bgd.with_file_name("python");
    let token = Command::new(python)
        .args(["-c", "import jwt, sys, time; print(jwt.encode({'sub': 'shark', 'exp': int(time.time()) + 3600}, open(sys.argv[1]).read(), algorithm='HS256'))"])
        .arg(dir.join("secret"))
        .output()
        .unwrap();
    assert!(token.status.success(), "{}", stderr(&token));
    std::fs::write(dir.join("token"), stdout(&token)).unwrap();
    let (a, b) = two_machines("b,2\na,1\n");
    let configure = |env: &TestEnv, token: bool| {
        let mut text = format!(
            "[remote]\nurl = \"{}\"\nca_file = \"{}\"\n",
            server.url,
            dir.join("ca.pem").display()
        );
        if token {
            text.push_str(&format!(
                "token_file = \"{}\"\n",
                dir.join("token").display()
            ));
        }
        let config = env.path("../user/.config/shark/config.toml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, text).unwrap();
    };
    configure(&a, true);
    configure(&b, true);
    let line = format!("{STEP} # tls");
    for env in [&a, &b] {
        let out = env.run(&["-c", &line]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(warnings(&out).is_empty(), "{}", stderr(&out));
    }
    assert_eq!(b.read("nonce"), a.read("nonce"), "b reused a's result");
    // Without the token the server refuses: one warning, and the command runs.
    let c = machine("b,2\na,1\n");
    configure(&c, false);
    let out = c.run(&["-c", &line]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let w = warnings(&out);
    assert!(w.len() == 1 && w[0].contains("authentication"), "{w:?}");
    assert_ne!(c.read("nonce"), a.read("nonce"));
}

/// `shark -c LINE` as uid/gid 65534 (when the tests run as root) in a machine directory
/// `root` (holding `work`, `user`, `home`) with the remote `url`.
fn unprivileged_line(root: &Path, url: &str, line: &str) -> Output {
    let bin = crate::common::reachable_shark();
    let mut c = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = c
        .args(["-c", line])
        .env_clear()
        .env("SHARK_HOME", root.join("home"))
        .env("HOME", root.join("user"))
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("SHARK_REMOTE", url)
        .current_dir(root.join("work"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{line}: {}", stderr(&out));
    out
}

#[test]
fn unprivileged_machines_share_a_result() {
    use std::os::unix::fs::PermissionsExt;
    let bgd = require_bgd!();
    let url = shared_server(&bgd);
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        for sub in ["work", "user", "home"] {
            std::fs::create_dir(d.path().join(sub)).unwrap();
        }
        std::fs::write(d.path().join("work/in.txt"), "same input\n").unwrap();
        if nix::unistd::geteuid().is_root() {
            std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let chown = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(d.path())
                .status();
            assert!(chown.unwrap().success());
        }
    }
    let line = "wc -c < in.txt > n; head -c 16 /dev/urandom | od -An -tx1 > nonce # unprivileged";
    let ran = unprivileged_line(dirs[0].path(), url, line);
    assert!(warnings(&ran).is_empty(), "{}", stderr(&ran));
    let reused = unprivileged_line(dirs[1].path(), url, line);
    assert!(warnings(&reused).is_empty(), "{}", stderr(&reused));
    let read = |d: &tempfile::TempDir, f: &str| {
        std::fs::read_to_string(d.path().join("work").join(f)).unwrap()
    };
    assert_eq!(read(&dirs[1], "nonce"), read(&dirs[0], "nonce"));
    assert_eq!(read(&dirs[1], "n"), "11\n");
}
