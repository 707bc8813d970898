//! A BuildGrid server for the tests: `bgd` on 127.0.0.1 with an in-memory or on-disk CAS,
//! optionally behind TLS and JWT authentication.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::stderr;

/// The BuildGrid release `tests/setup/buildgrid.sh` installs.
const BUILDGRID: &str = "buildgrid-0.4.4";

/// Where `bgd` is, if installed: `$SHARK_TEST_BGD`, else where the set-up script puts it.
pub fn bgd() -> Option<PathBuf> {
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

/// Where the CAS keeps blobs.
#[derive(Clone, Copy, PartialEq)]
pub enum Cas {
    /// In memory, behind TLS, requiring a JWT bearer token (HS256, secret in `secret`).
    MemoryTlsToken,
    /// In memory (BuildGrid's LRU storage).
    Memory,
    /// On disk, so a test can damage a blob at rest (BuildGrid checks what it is sent).
    Disk,
}

/// A running `bgd` on 127.0.0.1, killed when dropped (and, through `setpriv --pdeathsig`,
/// when the thread that started it ends).
pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Server {
    pub fn start(bgd: &Path, cas: Cas) -> Server {
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
            let mut server = Server {
                child: spawn(bgd, dir.path()),
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

    /// Kills the server and starts it again on the same port, with an empty cache.
    pub fn restart(&mut self, bgd: &Path) {
        self.kill();
        self.child = spawn(bgd, self.dir.path());
        let port = self.url.rsplit(':').next().unwrap().parse().unwrap();
        assert!(self.wait_ready(port), "bgd did not restart");
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
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The file of blob `sha256` in a [`Cas::Disk`] server's storage.
    pub fn blob_file(&self, sha256: &str) -> PathBuf {
        self.dir
            .path()
            .join("cas/cas/objects")
            .join(&sha256[..2])
            .join(&sha256[2..])
    }
}

/// Starts `bgd` with the config file in `dir`, logging to `dir/bgd.log`.
fn spawn(bgd: &Path, dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("bgd.log")).unwrap();
    Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--"])
        .arg(bgd)
        .args(["server", "start"])
        .arg(dir.join("bgd.yml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start bgd")
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
pub fn shared_server(bgd: &Path) -> &'static str {
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
