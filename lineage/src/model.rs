//! The plain data the database stores and returns.
//!
//! Everything here is a value: no type holds a connection. [`NewRun`] is what the executor
//! records; [`Run`] is what queries return (the same fields plus the id the database gave it).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use shark_store::Digest;

use crate::serial;

/// The id of a recorded run. Ids are never reused, even after runs are deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Text that is not a run id.
#[derive(Debug, thiserror::Error)]
#[error("malformed run id {text:?}: expected a number such as 42 or #42")]
pub struct RunIdParseError {
    /// The rejected text.
    pub text: String,
}

impl FromStr for RunId {
    type Err = RunIdParseError;

    /// Accepts `42` and `#42`: decimal digits only, no sign, no spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('#').unwrap_or(s);
        let malformed = || RunIdParseError { text: s.to_owned() };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        digits.parse().map(RunId).map_err(|_| malformed())
    }
}

/// What kind of thing a run read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A regular file; the digest is of its content.
    File,
    /// A directory; the digest, when present, is of its listing (names and kinds). A directory
    /// that was only looked at (stat), not listed, has no digest.
    Dir,
    /// A symbolic link; the digest is of its target.
    Symlink,
    /// A path the run looked for and did not find; no digest.
    Absent,
    /// The run's standard input; the digest is of the bytes it could read (a file's content
    /// from its offset, what a pipe delivered).
    Stdin,
    /// A path the run replaced without reading it (a truncating open, a rename over it): what
    /// it depended on is only that no directory was in the way. No digest.
    NotDir,
    /// A fifo, socket or device node; the digest is of its kind and device number.
    Special,
    /// The extended attributes of a path the run read them from; the digest is of every
    /// name and value.
    Xattrs,
}

/// What a run did to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Created or replaced a regular file; the digest is of its content.
    File,
    /// Created a directory.
    Dir,
    /// Created a symbolic link; the digest is of its target.
    Symlink,
    /// Deleted whatever was at the path.
    Deleted,
}

/// One thing a run read, with its state at the time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Input {
    /// Absolute path, or a pseudo path such as `<stdin>`.
    pub path: String,
    /// What was there.
    pub kind: InputKind,
    /// Its digest; `None` for absent paths and unlisted directories.
    #[serde(serialize_with = "serial::digest_opt")]
    pub digest: Option<Digest>,
    /// The permission bits of a file, directory or special file (whether it may be read,
    /// written or executed is part of what the run depended on); `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// For a directory listing: names the run itself created or removed before it listed the
    /// directory, left out of the listing's digest (their presence was the run's own doing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Whether the input also holds when the path is exactly as the run's unit of work (the
    /// script, document, session or command it belonged to) left it: directory listings, and
    /// paths the run found absent and then created. See [`UnitState`].
    #[serde(skip_serializing_if = "AsLeft::is_no")]
    pub as_left: AsLeft,
}

/// Whether, and how, an input may hold as its run's unit of work left the path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AsLeft {
    /// Only the recorded state holds.
    #[default]
    No,
    /// Also what the unit left at the path (its kind and content).
    Entry,
    /// Also the whole listing the unit left in the directory at the path.
    Listing,
}

impl AsLeft {
    /// Whether this is [`AsLeft::No`].
    pub fn is_no(&self) -> bool {
        *self == AsLeft::No
    }

    /// Its number in the database.
    pub(crate) fn code(self) -> i64 {
        self as i64
    }

    /// From its number in the database (an unknown number is `No`).
    pub(crate) fn from_code(code: i64) -> AsLeft {
        match code {
            1 => AsLeft::Entry,
            2 => AsLeft::Listing,
            _ => AsLeft::No,
        }
    }
}

impl Input {
    /// An input with no mode, exclusions or unit-of-work rule.
    pub fn new(path: impl Into<String>, kind: InputKind, digest: Option<Digest>) -> Input {
        Input {
            path: path.into(),
            kind,
            digest,
            mode: None,
            exclude: Vec::new(),
            as_left: AsLeft::No,
        }
    }
}

/// The state a unit of work (a script, a document, an interactive session, one `-c` or `run`
/// command) left a path in, after its latest run: what an input with [`Input::as_left`] is
/// also compared with. Recorded for the directories its runs listed and for the paths its
/// runs created where they had found nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitState {
    /// The path.
    pub path: String,
    /// What was there.
    pub state: PathState,
}

/// What a [`UnitState`] records of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum PathState {
    /// A directory's whole listing (names and kinds).
    Listing {
        /// Its digest.
        #[serde(serialize_with = "serial::digest")]
        digest: Digest,
    },
    /// What is at the path, as an input would record it (file content, directory, symlink
    /// target, special file, or absent).
    Entry {
        /// Its kind.
        kind: InputKind,
        /// Its digest, as for an input of that kind.
        #[serde(serialize_with = "serial::digest_opt")]
        digest: Option<Digest>,
    },
}

/// One change a run made. Outputs are returned in the order they were recorded, which is the
/// order the executor applies them in (a directory before the files inside it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Output {
    /// Absolute path.
    pub path: String,
    /// What the run left there.
    pub kind: OutputKind,
    /// Content digest of a file, target digest of a symlink, `None` otherwise.
    #[serde(serialize_with = "serial::digest_opt")]
    pub digest: Option<Digest>,
    /// Permission bits of a file or directory.
    pub mode: Option<u32>,
    /// Target of a symlink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
}

/// One process a run started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessRecord {
    /// Its pid inside the sandbox.
    pub pid: u32,
    /// Its argument vector.
    pub argv: Vec<String>,
}

/// Which process touched which path, and how (the sandbox's access kind, stored as text).
pub type Access = (u32, String, String);

/// A run to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    /// The command as typed.
    pub command: String,
    /// The argument vector that ran.
    pub argv: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// Digest of the shell state and environment the run saw.
    pub env_digest: Digest,
    /// The cache key built before running (command, cwd, environment, sandbox policy).
    pub weak_key: Digest,
    /// When it started.
    pub started: SystemTime,
    /// How long it took (wall clock).
    pub duration: Duration,
    /// Exit status; `None` when a signal killed it.
    pub exit_code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// User CPU time.
    pub user_time: Duration,
    /// System CPU time.
    pub sys_time: Duration,
    /// Peak resident set size in KiB.
    pub max_rss_kib: u64,
    /// Digest of everything it wrote to stdout.
    pub stdout: Option<Digest>,
    /// Digest of everything it wrote to stderr.
    pub stderr: Option<Digest>,
    /// `Some` when this row records a reuse of an earlier run rather than a real execution.
    pub reused_from: Option<RunId>,
    /// Whether a later identical command may reuse this run.
    pub reusable: bool,
    /// Whether it ran with the network on.
    pub network: bool,
    /// Why it ran instead of being reused: opaque text chosen by the executor.
    pub reason: Option<String>,
    /// The blob holding the shell state the command left behind, when it ran as a line of a
    /// stateful shell (an interactive session or a script).
    pub shell_state: Option<Digest>,
    /// What it read.
    pub inputs: Vec<Input>,
    /// What it changed, in the order to apply.
    pub outputs: Vec<Output>,
    /// The processes it started.
    pub processes: Vec<ProcessRecord>,
    /// Which process touched which path.
    pub accesses: Vec<Access>,
    /// The first run of the unit of work this run belongs to (its script, document or
    /// session); `None` when it is the first (a `-c` or `run` command is a unit of its own).
    pub unit: Option<RunId>,
    /// How many bytes of a regular file on standard input the run consumed (the file's
    /// offset moved by this much), so that a reuse leaves the offset where the run did.
    pub stdin_consumed: Option<u64>,
    /// Why the run may never be reused although it succeeded (an input changed while it
    /// ran, an input could not be recorded exactly); `None` when nothing stands in the way.
    pub unreusable: Option<String>,
}

impl NewRun {
    /// A run of `command` in `cwd` that has not finished yet: empty argv and lists, no exit
    /// status, zero times, not reusable. Fill in the rest with struct update syntax.
    pub fn new(
        command: impl Into<String>,
        cwd: impl Into<String>,
        env_digest: Digest,
        weak_key: Digest,
        started: SystemTime,
    ) -> Self {
        NewRun {
            command: command.into(),
            argv: Vec::new(),
            cwd: cwd.into(),
            env_digest,
            weak_key,
            started,
            duration: Duration::ZERO,
            exit_code: None,
            signal: None,
            user_time: Duration::ZERO,
            sys_time: Duration::ZERO,
            max_rss_kib: 0,
            stdout: None,
            stderr: None,
            reused_from: None,
            reusable: false,
            network: false,
            reason: None,
            shell_state: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            processes: Vec::new(),
            accesses: Vec::new(),
            unit: None,
            stdin_consumed: None,
            unreusable: None,
        }
    }
}

/// A recorded run. Some queries return summaries, with `inputs`, `outputs`, `processes` and
/// `accesses` left empty; each query says whether it does.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// The command as typed.
    pub command: String,
    /// The argument vector that ran.
    pub argv: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// Digest of the shell state and environment the run saw.
    #[serde(skip)]
    pub env_digest: Digest,
    /// The cache key.
    #[serde(serialize_with = "serial::digest")]
    pub weak_key: Digest,
    /// When it started.
    #[serde(serialize_with = "serial::time")]
    pub started: SystemTime,
    /// How long it took.
    #[serde(rename = "duration_ms", serialize_with = "serial::millis")]
    pub duration: Duration,
    /// Exit status; `None` when a signal killed it.
    pub exit_code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// User CPU time.
    #[serde(skip)]
    pub user_time: Duration,
    /// System CPU time.
    #[serde(skip)]
    pub sys_time: Duration,
    /// Peak resident set size in KiB.
    #[serde(skip)]
    pub max_rss_kib: u64,
    /// Digest of its stdout.
    #[serde(serialize_with = "serial::digest_opt")]
    pub stdout: Option<Digest>,
    /// Digest of its stderr.
    #[serde(serialize_with = "serial::digest_opt")]
    pub stderr: Option<Digest>,
    /// Whether this row records a reuse; always `reused_from.is_some()`.
    pub cached: bool,
    /// The run it reused.
    pub reused_from: Option<RunId>,
    /// Whether a later identical command may reuse it.
    #[serde(skip)]
    pub reusable: bool,
    /// Whether it ran with the network on.
    #[serde(skip)]
    pub network: bool,
    /// Why it ran, as the executor recorded it.
    #[serde(skip)]
    pub reason: Option<String>,
    /// The blob holding the shell state it left behind, if it ran as a line of a shell.
    #[serde(skip)]
    pub shell_state: Option<Digest>,
    /// What it read (empty in summaries).
    pub inputs: Vec<Input>,
    /// What it changed, in order (empty in summaries).
    pub outputs: Vec<Output>,
    /// The processes it started (empty in summaries).
    #[serde(skip)]
    pub processes: Vec<ProcessRecord>,
    /// Which process touched which path (empty in summaries).
    #[serde(skip)]
    pub accesses: Vec<Access>,
    /// The first run of its unit of work (itself for the first).
    #[serde(skip)]
    pub unit: RunId,
    /// How many bytes of a regular file on standard input it consumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin_consumed: Option<u64>,
    /// Why it may never be reused, if something stands in the way although it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreusable: Option<String>,
}

impl Run {
    /// Whether a later identical command may reuse this run: it succeeded, was marked
    /// reusable, and is itself a real execution, not a reuse.
    pub fn is_candidate(&self) -> bool {
        self.reusable && self.exit_code == Some(0) && self.reused_from.is_none()
    }
}

/// Totals over the whole database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Rows, reuses included.
    pub runs: u64,
    /// Rows that record a reuse.
    pub reused: u64,
    /// Sum of the original durations of the reused runs: time not spent computing.
    #[serde(rename = "time_saved_ms", serialize_with = "serial::millis")]
    pub time_saved: Duration,
}
