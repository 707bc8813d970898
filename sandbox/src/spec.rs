//! What to run and how: the input of [`run`](crate::run).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Where one of the command's standard streams goes.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The supervisor's own stream.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// This file descriptor (a pipe, a file, a pseudo-terminal).
    Fd(OwnedFd),
}

/// A command to run in the sandbox.
#[derive(Debug)]
pub struct Spec {
    /// The program and its arguments; `argv[0]` is searched on the spec's `PATH` if it has no `/`.
    pub argv: Vec<OsString>,
    /// The working directory (absolute).
    pub cwd: PathBuf,
    /// The complete environment of the command.
    pub env: Vec<(OsString, OsString)>,
    /// Directories the command may change; each gets an overlay whose upper layer records the
    /// changes. Nested roots are merged into the outermost, unless a directory of another
    /// owner lies between them and the caller is not root (then the inner one keeps an overlay
    /// of its own, since overlayfs could not copy up that directory); missing ones are skipped.
    pub writable_roots: Vec<PathBuf>,
    /// Where the sandbox creates its upper and work directories.
    pub scratch_dir: PathBuf,
    /// Paths that stay read-only even inside writable roots.
    pub read_only: Vec<PathBuf>,
    /// Folders the command sees at another path, writable like a writable root (e.g. a
    /// document's data folder at `/data`); the report names what happens there by host path.
    pub mapped_roots: Vec<MappedRoot>,
    /// Paths the command must not see at all: each is replaced by an empty read-only
    /// directory (missing ones are skipped).
    pub hidden: Vec<PathBuf>,
    /// Whether the command gets the host network (otherwise only its own loopback).
    pub network: bool,
    /// Whether dynamically linked programs record their file accesses through shark's
    /// preloaded library instead of a notification per call (the same accesses either way,
    /// see the crate's `seccomp/fast.rs`). On by default, unless `SHARK_FAST_PATH=0`.
    pub fast_path: bool,
    /// Standard input.
    pub stdin: Stdio,
    /// Standard output.
    pub stdout: Stdio,
    /// Standard error.
    pub stderr: Stdio,
    /// Signals the command starts with ignored (none from [`Spec::new`]); every other one
    /// starts with its default disposition. A shell passes those it was started with ignored
    /// ([`inherited_ignored_signals`]), as bash does.
    pub ignored_signals: Vec<i32>,
}

/// A host folder mounted at another path inside the sandbox.
///
/// `inside` must be an existing directory of the host, or a directory directly under `/`
/// (then the sandbox's `/` is a read-only tmpfs holding binds of the host's top-level
/// entries, so that the mount point can exist without touching the host). Like a writable
/// root, `host` gets an overlay, so the command's changes there are recorded, not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRoot {
    /// Where the command sees it (absolute).
    pub inside: PathBuf,
    /// The folder on the host (absolute, existing).
    pub host: PathBuf,
}

/// The environment variable that turns the fast path off when set to `0` (see
/// [`Spec::fast_path_default`]).
pub const FAST_PATH_VAR: &str = "SHARK_FAST_PATH";

impl Spec {
    /// The default for [`Spec::fast_path`]: on, unless `SHARK_FAST_PATH=0` is in this
    /// process's environment.
    pub fn fast_path_default() -> bool {
        std::env::var_os(FAST_PATH_VAR).is_none_or(|v| v != "0")
    }

    /// A spec with the current environment, writable roots `$HOME`, `cwd` and `/tmp`, scratch
    /// space in the system temporary directory, no network and inherited stdio.
    pub fn new(argv: Vec<OsString>, cwd: PathBuf) -> Spec {
        let mut writable_roots = Vec::new();
        if let Some(home) = std::env::var_os("HOME") {
            writable_roots.push(PathBuf::from(home));
        }
        writable_roots.push(cwd.clone());
        writable_roots.push(PathBuf::from("/tmp"));
        Spec {
            argv,
            cwd,
            env: std::env::vars_os().collect(),
            writable_roots,
            scratch_dir: std::env::temp_dir(),
            read_only: Vec::new(),
            mapped_roots: Vec::new(),
            hidden: Vec::new(),
            network: false,
            fast_path: Spec::fast_path_default(),
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            ignored_signals: Vec::new(),
        }
    }
}

/// The signals this process was started with ignored, as bash keeps them ignored for the
/// commands it runs: `nohup shark script.sh` leaves its commands immune to hangups, and a
/// background job of a non-interactive shell to SIGINT. Taken at the first call, so a program
/// that changes dispositions (a shell ignoring SIGINT while a command runs) calls it first,
/// at the start of `main`. Left out: SIGPIPE (the Rust runtime ignores it before `main`, so its
/// inherited disposition is unknown; commands get the default, as from `std::process`),
/// SIGCHLD (ignored, the kernel would reap children before their parent could wait for them),
/// and SIGKILL and SIGSTOP.
pub fn inherited_ignored_signals() -> &'static [i32] {
    static IGNORED: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();
    IGNORED.get_or_init(|| {
        let skip = [libc::SIGKILL, libc::SIGSTOP, libc::SIGPIPE, libc::SIGCHLD];
        (1..=libc::SIGRTMAX())
            .filter(|s| !skip.contains(s))
            .filter(|&s| {
                // SAFETY: sigaction is plain data, valid zeroed.
                let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
                // SAFETY: with no new action, sigaction only reads the current one into `old`.
                let ret = unsafe { libc::sigaction(s, std::ptr::null(), &mut old) };
                ret == 0 && old.sa_sigaction == libc::SIG_IGN
            })
            .collect()
    })
}
