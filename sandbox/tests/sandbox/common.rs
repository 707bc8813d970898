//! Test environment: a private directory tree, spec construction, and helpers that turn a
//! report into exact, comparable sets relative to that tree.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use shark_sandbox::{AccessKind, Change, Report, Spec, Stdio};

/// Set in the environment of the unprivileged re-execution.
const LEG: &str = "SHARK_SANDBOX_TEST_UNPRIVILEGED";

/// Defines a test that runs `body` as root and again as an unprivileged user.
macro_rules! both_legs {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            let path = concat!(module_path!(), "::", stringify!($name));
            crate::common::both_legs(path, $body);
        }
    };
}

/// Runs `body` in this process; when root, also re-runs this exact test as uid 65534 and
/// requires it to pass.
pub fn both_legs(module_path: &str, body: fn(&Env)) {
    body(&Env::new());
    if std::env::var_os(LEG).is_some() || !nix::unistd::geteuid().is_root() {
        return;
    }
    let name = module_path
        .split_once("::")
        .map_or(module_path, |(_, rest)| rest);
    let exe = reachable_exe();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(exe)
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(LEG, "1")
        .current_dir("/tmp")
        .output()
        .expect("run setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "unprivileged leg of {name} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "unprivileged leg of {name} did not run:\n{stdout}"
    );
}

/// This test binary, or when uid 65534 cannot reach it (a checkout under a private folder) a
/// copy of it in a temporary folder, made once per process.
fn reachable_exe() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let exe = std::env::current_exe().expect("test binary");
    let open_to_others = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    };
    if exe.ancestors().all(open_to_others) {
        return exe;
    }
    COPY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("shark-sandbox-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let copy = dir.join("sandbox-tests");
        std::fs::copy(&exe, &copy).expect("copy the test binary");
        copy
    })
    .clone()
}

/// A private tree: `work/` (the cwd), `home/` and `tmp/` (writable roots), `scratch/`, and
/// `root` itself, which is not writable inside the sandbox.
pub struct Env {
    pub root: PathBuf,
    pub work: PathBuf,
    pub home: PathBuf,
    pub tmp: PathBuf,
    pub scratch: PathBuf,
    _dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("shark-sandbox-test-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().canonicalize().unwrap();
        let sub = |name: &str| {
            let p = root.join(name);
            fs::create_dir(&p).unwrap();
            p
        };
        Env {
            work: sub("work"),
            home: sub("home"),
            tmp: sub("tmp"),
            scratch: sub("scratch"),
            root,
            _dir: dir,
        }
    }

    /// A spec for `argv` in `work/` with a fixed, minimal environment and null stdio.
    pub fn spec(&self, argv: &[&str]) -> Spec {
        let mut spec = Spec::new(argv.iter().map(OsString::from).collect(), self.work.clone());
        spec.env = vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("HOME".into(), self.home.clone().into()),
            ("TMPDIR".into(), self.tmp.clone().into()),
            ("LC_ALL".into(), "C".into()),
        ];
        spec.writable_roots = vec![self.home.clone(), self.work.clone(), self.tmp.clone()];
        spec.scratch_dir = self.scratch.clone();
        spec.stdin = Stdio::Null;
        spec.stdout = Stdio::Null;
        spec.stderr = Stdio::Null;
        spec
    }

    pub fn write(&self, rel: &str, content: &str) {
        fs::write(self.root.join(rel), content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }

    /// A file to capture a stream into, and the `Stdio` writing to it.
    pub fn capture(&self, name: &str) -> (PathBuf, Stdio) {
        let path = self.root.join(name);
        let file = fs::File::create(&path).unwrap();
        (path, Stdio::Fd(file.into()))
    }

    fn rel(&self, path: &Path) -> Option<String> {
        path.strip_prefix(&self.root)
            .ok()
            .map(|p| p.display().to_string())
    }

    /// The accesses under the test tree, relative to it ("" is the tree itself).
    pub fn accesses(&self, report: &Report) -> BTreeSet<(String, AccessKind)> {
        report
            .accesses
            .iter()
            .filter_map(|a| Some((self.rel(&a.path)?, a.kind)))
            .collect()
    }

    /// The changes as readable lines, relative to the tree, with file contents inline.
    pub fn changes(&self, report: &Report) -> Vec<String> {
        report.changes.iter().map(|c| self.describe(c)).collect()
    }

    fn describe(&self, change: &Change) -> String {
        let rel = self
            .rel(change.path())
            .unwrap_or_else(|| change.path().display().to_string());
        match change {
            Change::File { source, mode, .. } => {
                let content = fs::read_to_string(source).unwrap_or_else(|_| "<binary>".into());
                format!("file {rel} {mode:o} {content:?}")
            }
            Change::Dir { mode, .. } => format!("dir {rel} {mode:o}"),
            Change::Symlink { target, .. } => format!("symlink {rel} -> {}", target.display()),
            Change::Deleted { .. } => format!("deleted {rel}"),
        }
    }
}

/// Builds a set from (path, kind) pairs.
pub fn set(items: &[(&str, AccessKind)]) -> BTreeSet<(String, AccessKind)> {
    items.iter().map(|(p, k)| (p.to_string(), *k)).collect()
}

/// Whether the report has an access of `kind` to the absolute `path`.
pub fn has(report: &Report, path: &str, kind: AccessKind) -> bool {
    report
        .accesses
        .iter()
        .any(|a| a.path == Path::new(path) && a.kind == kind)
}

/// The argv of every process, as strings.
pub fn argvs(report: &Report) -> Vec<Vec<String>> {
    report
        .processes
        .iter()
        .map(|p| {
            p.argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        })
        .collect()
}

/// Compiles C source with gcc (extra flags allowed) into `dir/name`.
pub fn compile(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    fs::write(&src, source).unwrap();
    let out = dir.join(name);
    let status = Command::new("gcc")
        .args(flags)
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "gcc {name}");
    out
}
