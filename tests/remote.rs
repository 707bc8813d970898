//! The remote cache against a real REAPI server: BuildGrid's `bgd`, installed by
//! `tests/setup/buildgrid.sh` (which `./test.sh` runs). Two [`TestEnv`]s are two machines:
//! different shark homes, home directories and working directories. Without BuildGrid the
//! tests that need it print why and return.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{stderr, stdout, TestEnv};

/// The BuildGrid release `tests/setup/buildgrid.sh` installs.
const BUILDGRID: &str = "buildgrid-0.4.4";

/// Where `bgd` is, if installed: `$SHARK_TEST_BGD`, else where the set-up script puts it.
fn bgd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SHARK_TEST_BGD") {
        return Some(PathBuf::from(p));
    }
    let tools = std::env::var_os("SHARK_TEST_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("shark-test")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/shark-test")))?;
    let dir = tools.join(BUILDGRID);
    dir.join(".complete").exists().then(|| dir.join("bin/bgd"))
}

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

/// Where the CAS keeps blobs.
#[derive(Clone, Copy, PartialEq)]
enum Cas {
    /// In memory, behind TLS, requiring a JWT bearer token (HS256, secret in `secret`).
    MemoryTlsToken,
    /// In memory (BuildGrid's LRU storage).
    Memory,
    /// On disk, so a test can damage a blob at rest (BuildGrid checks what it is sent).
    Disk,
}

/// A running `bgd` on 127.0.0.1, killed when dropped (and, through `setpriv --pdeathsig`,
/// when the thread that started it ends).
struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(bgd: &Path, cas: Cas) -> Server {
        // A port taken between choosing and binding makes bgd exit: choose again.
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.path().join("bgd.yml");
            std::fs::write(&config, config_text(port, cas, dir.path())).unwrap();
            if cas == Cas::MemoryTlsToken {
                make_credentials(dir.path());
            }
            let log = std::fs::File::create(dir.path().join("bgd.log")).unwrap();
            let child = Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "--"])
                .arg(bgd)
                .args(["server", "start"])
                .arg(&config)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start bgd");
            let mut server = Server {
                child,
                url: match cas {
                    Cas::MemoryTlsToken => format!("grpcs://localhost:{port}"),
                    _ => format!("grpc://127.0.0.1:{port}"),
                },
                dir,
            };
            if server.wait_ready(port) {
                return server;
            }
            let log =
                std::fs::read_to_string(server.dir.path().join("bgd.log")).unwrap_or_default();
            eprintln!("bgd exited before listening on port {port}:\n{log}");
        }
        panic!("bgd did not start");
    }

    /// Waits until bgd accepts connections; false if it exited first.
    fn wait_ready(&mut self, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.path().join("bgd.log")).unwrap_or_default();
        panic!("bgd did not listen within 120 s:\n{log}");
    }

    /// Kills the server and waits for it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The file of blob `sha256` in a [`Cas::Disk`] server's storage.
    fn blob_file(&self, sha256: &str) -> PathBuf {
        self.dir
            .path()
            .join("cas/cas/objects")
            .join(&sha256[..2])
            .join(&sha256[2..])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// In `dir`: a CA (`ca.pem`), a server certificate for localhost signed by it
/// (`server.pem`, `server.key`) and the secret of the server's JWTs (`secret`).
fn make_credentials(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=shark test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    std::fs::write(
        dir.join("secret"),
        "a secret only the test and the server know",
    )
    .unwrap();
}

fn config_text(port: u16, cas: Cas, dir: &Path) -> String {
    let d = dir.display();
    let (insecure, security) = match cas {
        Cas::MemoryTlsToken => (
            false,
            format!(
                "    credentials:\n      tls-server-key: {d}/server.key\n      tls-server-cert: {d}/server.pem\n\
                 authorization:\n  method: jwt\n  secret: {d}/secret\n  algorithm: hs256\n"
            ),
        ),
        _ => (true, String::new()),
    };
    let storage = match cas {
        Cas::Memory | Cas::MemoryTlsToken => "!lru-storage &cas\n    size: 2G".to_owned(),
        Cas::Disk => format!("!disk-storage &cas\n    path: {}/cas", dir.display()),
    };
    format!(
        "server:
  - !channel
    address: \"127.0.0.1:{port}\"
    insecure-mode: {insecure}
{security}storages:
  - {storage}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: \"\"
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"
    )
}

/// One in-memory server shared by the tests that neither kill nor damage it, started by a
/// thread that lives as long as the test process (so `--pdeathsig` ends it with the process).
fn shared_server(bgd: &Path) -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let bgd = bgd.to_owned();
        std::thread::spawn(move || {
            let server = Server::start(&bgd, Cas::Memory);
            tx.send(server.url.clone()).unwrap();
            let _keep = server;
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("the shared bgd did not start")
    })
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

fn two_machines(input_b: &str) -> (TestEnv, TestEnv) {
    let (a, b) = (TestEnv::new(), TestEnv::new());
    a.write("data/in.csv", "b,2\na,1\n");
    b.write("data/in.csv", input_b);
    (a, b)
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
    let c = TestEnv::new();
    c.write("data/in.csv", "b,2\na,1\n");
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
fn a_server_killed_mid_session_warns_once_and_commands_succeed() {
    let bgd = require_bgd!();
    let mut server = Server::start(&bgd, Cas::Memory);
    let env = TestEnv::new();
    // Step 2 waits for the test to kill the server after step 1 said it ran.
    env.write(
        "s.sh",
        "echo first > first; echo ready\n\
         while [ ! -e go ]; do sleep 0.05; done; echo second > second\n\
         echo third > third\ncat first second third > all\necho finished\n",
    );
    let mut child = env
        .shark()
        .env("SHARK_REMOTE", &server.url)
        .arg("s.sh")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    server.kill();
    std::fs::write(env.path("go"), "").unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(rest, vec!["finished"]);
    assert_eq!(env.read("all"), "first\nsecond\nthird\n");
    let w = warnings(&out);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("unavailable"), "{w:?}");
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
        assert!(w[0].contains("corrupt"), "{w:?}");
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
    remote_line(&a, url, line);
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
    let c = TestEnv::new();
    c.write("data/in.csv", "b,2\na,1\n");
    configure(&c, false);
    let out = c.run(&["-c", &line]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let w = warnings(&out);
    assert!(w.len() == 1 && w[0].contains("authentication"), "{w:?}");
    assert_ne!(c.read("nonce"), a.read("nonce"));
}
