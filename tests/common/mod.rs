//! Helpers shared by the end-to-end tests: a temporary shark home and a way to run the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch environment: a temporary directory holding a shark home and a work directory.
pub struct TestEnv {
    _dir: tempfile::TempDir,
    /// The `SHARK_HOME` of every command run through this environment.
    pub home: PathBuf,
    /// A scratch working directory.
    pub work: PathBuf,
    /// Commands run as uid/gid 65534 (through `setpriv`), which owns the tree.
    pub unprivileged: bool,
}

/// The user an unprivileged [`TestEnv`] runs shark as.
pub const NOBODY: u32 = 65534;

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(dir.path().join("user")).unwrap();
        TestEnv {
            _dir: dir,
            home,
            work,
            unprivileged: false,
        }
    }

    /// An environment whose commands run as uid/gid 65534, which owns its tree; `None` when
    /// the tests do not run as root (they then already run unprivileged).
    #[allow(dead_code)]
    pub fn unprivileged() -> Option<Self> {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let mut env = TestEnv::new();
        let top = env.work.parent().unwrap().to_path_buf();
        std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in [&env.work, &top.join("user")] {
            nix::unistd::chown(d, Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
        }
        std::fs::create_dir_all(&env.home).unwrap();
        nix::unistd::chown(&env.home, Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
        env.unprivileged = true;
        Some(env)
    }

    /// A `shark` command with this environment's home, run in the work directory, with a
    /// fixed, minimal environment so that two invocations key alike.
    pub fn shark(&self) -> Command {
        let mut c = if self.unprivileged {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(reachable_shark());
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_shark"))
        };
        c.env_clear()
            .env("SHARK_HOME", &self.home)
            .env("HOME", self.work.parent().unwrap().join("user"))
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .current_dir(&self.work);
        c
    }

    /// Runs `shark -c LINE` and returns its output.
    #[allow(dead_code)]
    pub fn line(&self, line: &str) -> Output {
        self.run(&["-c", line])
    }

    /// Writes a file in the work directory (owned by the environment's user).
    #[allow(dead_code)]
    pub fn write(&self, rel: &str, content: &str) {
        let p = self.work.join(rel);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        self.own(&p);
    }

    /// Makes `path` (and the directories between it and the tree) the environment user's.
    #[allow(dead_code)]
    pub fn own(&self, path: &Path) {
        if !self.unprivileged {
            return;
        }
        let top = self.work.parent().unwrap();
        for p in path.ancestors().take_while(|p| *p != top) {
            let _ = nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                p,
                Some(NOBODY.into()),
                Some(NOBODY.into()),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            );
        }
    }

    /// Reads a file in the work directory.
    #[allow(dead_code)]
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.work.join(rel)).unwrap()
    }

    /// `shark log --json`, oldest first.
    #[allow(dead_code)]
    pub fn log(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["log", "--json", "-n", "1000"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let mut runs: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        runs.reverse();
        runs
    }

    /// Whether the last recorded run was a reuse.
    #[allow(dead_code)]
    pub fn last_cached(&self) -> bool {
        self.log().last().unwrap()["cached"].as_bool().unwrap()
    }

    /// Runs shark with `args` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.shark().args(args).output().expect("run shark")
    }

    #[allow(dead_code)]
    pub fn path(&self, rel: &str) -> PathBuf {
        self.work.join(rel)
    }
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[allow(dead_code)]
pub fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// The shark binary at a path uid 65534 can reach: the build's own when every folder above it
/// is open to others, else a copy in a temporary folder (made once per test process).
#[allow(dead_code)]
pub fn reachable_shark() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_shark"));
    let open_to_others =
        |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    if bin.ancestors().all(open_to_others) {
        return bin;
    }
    COPY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("shark-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("shark");
        std::fs::copy(&bin, &copy).unwrap();
        copy
    })
    .clone()
}

/// Runs `cmd` with `input` on its standard input and returns its output.
#[allow(dead_code)]
pub fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Flips the last stored byte of packed blobs, the rows of the pack (`store/pack.db`) under
/// shark home `home`: of every row, or only of `digest`'s. Returns the digests of the rows
/// damaged (a row of empty content has no byte to flip and is left alone).
#[allow(dead_code)]
pub fn damage_packed(
    home: &Path,
    digest: Option<&shark_store::Digest>,
) -> Vec<shark_store::Digest> {
    use rusqlite::OpenFlags;
    let pack = home.join("store/pack.db");
    let conn = rusqlite::Connection::open_with_flags(&pack, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", pack.display()));
    let rows: Vec<([u8; 32], Vec<u8>)> = conn
        .prepare("SELECT digest, data FROM blobs")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut damaged = Vec::new();
    for (bytes, mut data) in rows {
        let d = shark_store::Digest::from_bytes(bytes);
        if digest.is_some_and(|only| *only != d) {
            continue;
        }
        let Some(last) = data.last_mut() else {
            continue;
        };
        *last ^= 0xff;
        conn.execute(
            "UPDATE blobs SET data = ?2 WHERE digest = ?1",
            rusqlite::params![bytes.as_slice(), data],
        )
        .unwrap();
        damaged.push(d);
    }
    damaged
}
