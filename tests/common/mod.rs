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
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        TestEnv {
            _dir: dir,
            home,
            work,
        }
    }

    /// A `shark` command with this environment's home, run in the work directory.
    pub fn shark(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_shark"));
        c.env("SHARK_HOME", &self.home).current_dir(&self.work);
        c
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
