//! The executor: run a command in the sandbox, or reuse a recorded run whose inputs still hold.
//!
//! 1. The weak key ([`key`]) names the command: argv, cwd, environment, sandbox policy.
//! 2. Earlier successful runs with that key are tried newest first; one whose every recorded
//!    input still holds ([`inputs::check`]) is reused: its outputs restored ([`outputs`]), its
//!    stdout/stderr replayed, its exit status returned, and the reuse recorded.
//! 3. Otherwise the command runs in the sandbox; its inputs (what it read, and what it looked
//!    for and did not find), outputs and streams are stored and recorded, then its changes are
//!    applied to the real filesystem. Failed, networked or unfaithfully observed runs are
//!    recorded but never reused.

pub mod inputs;
pub mod key;
pub mod outputs;
pub mod reason;
pub mod stdio;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use shark_lineage::{Db, Input, InputKind, NewRun, Output, OutputKind, ProcessRecord, Run, RunId};
use shark_sandbox::{Report, Spec, Status, Stdio};
use shark_store::{Digest, StatCache, Store};

use crate::error::CliError;
use crate::home::Home;
use crate::state::{self, ShellState};
use reason::Reason;
use stdio::{Captured, Live, Outputs, StdinPlan};

/// How many earlier runs with the same weak key are checked before running.
const MAX_CANDIDATES: usize = 16;

/// One command to execute.
#[derive(Debug, Clone)]
pub struct Request {
    /// The command as the user wrote it (shown by `shark log`).
    pub text: String,
    /// What runs in the sandbox.
    pub argv: Vec<OsString>,
    /// Run even if a recorded run could be reused.
    pub fresh: bool,
    /// Allow network access (the run is then never reused, unless `reuse_network`).
    pub network: bool,
    /// With `network`: the user vouches that what the command fetches does not change, so
    /// the run may be reused like any other (and may reuse an earlier networked run).
    pub reuse_network: bool,
    /// The working directory.
    pub cwd: PathBuf,
    /// The complete environment.
    pub env: Vec<(OsString, OsString)>,
    /// The command is a step of a shell session that leaves the shell state behind (in the
    /// sandbox's private `/dev/shm`, see [`state`]); it is recorded with the run and returned
    /// in the [`Outcome`].
    pub stateful: bool,
    /// What the key is computed from instead of `env`: for a step of a session, the exported
    /// environment and the part of the shell state the step can reach (see
    /// [`state::reach`]). It is also what is stored as the run's environment, so that
    /// `shark why` can name what changed.
    pub key_env: Option<Vec<(OsString, OsString)>>,
    /// Where the sandbox starts the command, when not in `cwd` (a session's step starts where
    /// its program is, and changes to `cwd` itself).
    pub start_dir: Option<PathBuf>,
}

impl Request {
    /// A request to run `argv` in this process's working directory and environment.
    pub fn here(text: String, argv: Vec<OsString>) -> std::io::Result<Request> {
        Ok(Request {
            text,
            argv,
            fresh: false,
            network: false,
            reuse_network: false,
            cwd: std::env::current_dir()?,
            env: std::env::vars_os().collect(),
            stateful: false,
            key_env: None,
            start_dir: None,
        })
    }
}

/// What happened.
#[derive(Debug)]
pub struct Outcome {
    /// The record of this execution.
    pub run: RunId,
    /// Its exit status, as a shell reports it.
    pub code: i32,
    /// For a reuse: the run reused and how long it had taken.
    pub reused: Option<(RunId, Duration)>,
    /// How long this execution took.
    pub took: Duration,
    /// For a stateful request: the shell state the line left (`None` if it left none, e.g.
    /// when it was killed).
    pub state: Option<ShellState>,
}

impl Outcome {
    /// The exit status to pass on.
    pub fn code(&self) -> i32 {
        self.code
    }
}

/// Everything a command is run against.
#[derive(Debug)]
pub struct Executor {
    _lock: crate::home::HomeLock,
    home: Home,
    store: Store,
    cache: StatCache,
    db: Db,
    scratch: PathBuf,
}

/// The facts about one invocation that both lookup and running need.
struct Invocation {
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
    /// What the key and the stored environment are made of (`env`, or the request's key_env).
    key_env: Vec<(OsString, OsString)>,
    env_digest: Digest,
    roots: Vec<PathBuf>,
    key: Digest,
    stdin: StdinPlan,
}

impl Executor {
    /// Opens the store, stat cache and lineage database of `home`.
    pub fn open(home: &Home) -> Result<Executor, CliError> {
        let lock = home.lock(false)?;
        // Batched: a run's blobs are flushed together by one sync before it is recorded.
        let store = Store::open(&home.store_dir())
            .map_err(|e| CliError::failed("cannot open the store", e))?
            .batched();
        let cache = StatCache::open(&home.root().join("statcache.db"))
            .map_err(|e| CliError::failed("cannot open the stat cache", e))?;
        let db = Db::open(&home.db_path())
            .map_err(|e| CliError::failed("cannot open the lineage database", e))?;
        let scratch = home.root().join("tmp");
        std::fs::create_dir_all(&scratch)
            .map_err(|e| CliError::failed(format!("cannot create {}", scratch.display()), e))?;
        sweep_scratch(&scratch);
        Ok(Executor {
            _lock: lock,
            home: home.clone(),
            store,
            cache,
            db,
            scratch,
        })
    }

    /// The lineage database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Runs or reuses `req`.
    pub fn execute(&mut self, req: &Request) -> Result<Outcome, CliError> {
        let inv = self.invocation(req)?;
        let reason = if req.fresh {
            Reason::Fresh
        } else if req.network && !req.reuse_network {
            Reason::Network
        } else {
            match self.lookup(req, &inv)? {
                Ok(run) => match self.reuse(req, &inv, &run) {
                    Ok(outcome) => return Ok(outcome),
                    Err(reason) => reason,
                },
                Err(reason) => reason,
            }
        };
        self.run(req, inv, reason)
    }

    fn invocation(&self, req: &Request) -> Result<Invocation, CliError> {
        let cwd = req.cwd.clone();
        let env = req.env.clone();
        let key_env = req.key_env.clone().unwrap_or_else(|| env.clone());
        let env_digest = key::env_digest(&key_env);
        let roots = writable_roots(&cwd);
        let stdin = StdinPlan::detect(&self.scratch, &self.cache)
            .map_err(|e| CliError::failed("cannot read standard input", e))?;
        let key = key::weak_key(&key::KeyParts {
            argv: &req.argv,
            cwd: &cwd,
            env: env_digest,
            network: req.network,
            writable_roots: &roots,
            stdin_mode: stdin.mode(),
            stdout_tty: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            stderr_tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        });
        Ok(Invocation {
            cwd,
            env,
            key_env,
            env_digest,
            roots,
            key,
            stdin,
        })
    }

    /// The newest recorded run whose inputs all hold, or why there is none.
    fn lookup(&self, req: &Request, inv: &Invocation) -> Result<Result<Run, Reason>, CliError> {
        let candidates = self
            .db
            .candidates(&inv.key, MAX_CANDIDATES)
            .map_err(|e| CliError::failed("cannot query the lineage database", e))?;
        let mut first_mismatch = None;
        for run in candidates {
            let stdin = inv.stdin.digest();
            let holds = |i: &Input| match inputs::check(i, &self.cache, stdin.as_ref()) {
                Ok(()) => Ok(()),
                // The run's own result in place counts, within limits (`own_output_stands_in`).
                Err(m) => match run.outputs.iter().rev().find(|o| o.path == i.path) {
                    Some(o) if self.own_output_stands_in(&run, i, o) => Ok(()),
                    _ => Err(m),
                },
            };
            match run.inputs.iter().try_for_each(holds) {
                Ok(()) => return Ok(Ok(run)),
                Err(m) => {
                    first_mismatch.get_or_insert(Reason::InputChanged {
                        run: run.id.0,
                        path: m.path,
                        was: m.was,
                        now: m.now,
                    });
                }
            }
        }
        if let Some(m) = first_mismatch {
            return Ok(Err(m));
        }
        Ok(Err(self.key_change(req, inv)))
    }

    /// Whether what `run` left at an input's path may stand in for the input (see
    /// [`inputs::holds_as_output`]). Not when the run wrote to the file without truncating it:
    /// an existing file opened for update (its old content flows into the new) or an absent
    /// one created that way (`>>`: a second run appends again); a failed update-open of an
    /// absent path followed by a truncating creation (`gdalwarp -overwrite`) is no append.
    /// Not when the run listed a directory it made: entries it did not make may have come
    /// since. In doubt (the database cannot answer), it may not.
    fn own_output_stands_in(&self, run: &Run, input: &Input, output: &Output) -> bool {
        let accessed = |kind| self.db.accessed(run.id, &input.path, kind).unwrap_or(true);
        let appended = match input.kind {
            InputKind::File => accessed("Modify"),
            InputKind::Absent => accessed("Modify") && !accessed("Create"),
            _ => false,
        };
        let listed = output.kind == OutputKind::Dir && accessed("Read");
        !appended && !listed && inputs::holds_as_output(input, output, &self.cache)
    }

    /// Why no earlier run matched the weak key: what differs from the newest earlier run of
    /// the same command text in the same directory, if there is one.
    fn key_change(&self, req: &Request, inv: &Invocation) -> Reason {
        let cwd = inv.cwd.to_string_lossy();
        let Ok(Some(prev)) = self.db.last_run_of_command(&req.text, &cwd) else {
            return Reason::NoEarlierRun;
        };
        let mut what = Vec::new();
        let argv: Vec<String> = req
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if argv != prev.argv {
            what.push("its arguments differ".to_owned());
        }
        if prev.network != req.network {
            what.push("network access differs".to_owned());
        }
        if prev.env_digest != inv.env_digest {
            let before = self
                .store
                .read_to_vec(&prev.env_digest)
                .ok()
                .and_then(|b| key::decode_env(&b));
            match before {
                Some(before) => what.extend(reason::env_changes(&before, &inv.key_env)),
                None => what.push("the environment differs".to_owned()),
            }
        }
        if what.is_empty() {
            what.push("standard input or the writable directories differ".to_owned());
        }
        Reason::KeyChanged {
            run: prev.id.0,
            what,
        }
    }

    /// Restores `run`'s outputs and replays its streams; a blob that cannot be restored
    /// sends the command to run instead, with the reason recorded.
    fn reuse(&mut self, req: &Request, inv: &Invocation, run: &Run) -> Result<Outcome, Reason> {
        let started = SystemTime::now();
        let failed = |e: &(dyn std::error::Error + 'static)| {
            let detail = crate::error::chain(e);
            eprintln!(
                "shark: warning: cannot reuse run {}: {detail}; running the command",
                run.id
            );
            Reason::RestoreFailed {
                run: run.id.0,
                detail,
            }
        };
        // Everything that can fail comes before anything reaches the user's files or screen.
        let state = match (req.stateful, run.shell_state) {
            (true, Some(d)) => match self.store.read_to_vec(&d) {
                Ok(bytes) => match state::decode_blob(&bytes) {
                    Some(state) => Some(state),
                    None => {
                        let e = std::io::Error::other("its shell state is of an older format");
                        return Err(failed(&e));
                    }
                },
                Err(e) => return Err(failed(&e)),
            },
            _ => None,
        };
        if let Err(e) = outputs::restore(&run.outputs, &self.store, &self.cache) {
            return Err(failed(&e));
        }
        let empty = Digest::of_bytes(b"");
        for (digest, live) in [(run.stdout, Live::Stdout), (run.stderr, Live::Stderr)] {
            // Most streams are empty: nothing to read or replay.
            if let Some(d) = digest.filter(|d| *d != empty) {
                // The blobs were stored by the original run; a missing one only loses replay.
                if let Ok(bytes) = self.store.read_to_vec(&d) {
                    let _ = stdio::write_live(live, &bytes);
                }
            }
        }
        let code = run.exit_code.unwrap_or(1);
        let record = NewRun {
            reused_from: Some(run.id),
            reusable: false,
            reason: Some(Reason::Reused { run: run.id.0 }.to_json()),
            duration: started.elapsed().unwrap_or_default(),
            ..self.new_run(req, inv, started)
        };
        let record = NewRun {
            exit_code: run.exit_code,
            stdout: run.stdout,
            stderr: run.stderr,
            shell_state: run.shell_state,
            ..record
        };
        let id = self.db.record(&record).map_err(|e| Reason::RestoreFailed {
            run: run.id.0,
            detail: e.to_string(),
        })?;
        Ok(Outcome {
            run: id,
            code,
            reused: Some((run.id, run.duration)),
            took: started.elapsed().unwrap_or_default(),
            state,
        })
    }

    fn new_run(&self, req: &Request, inv: &Invocation, started: SystemTime) -> NewRun {
        let cwd = inv.cwd.to_string_lossy().into_owned();
        NewRun {
            argv: req
                .argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            network: req.network,
            ..NewRun::new(req.text.clone(), cwd, inv.env_digest, inv.key, started)
        }
    }

    /// Runs the command in the sandbox and records it.
    fn run(
        &mut self,
        req: &Request,
        mut inv: Invocation,
        reason: Reason,
    ) -> Result<Outcome, CliError> {
        let started = SystemTime::now();
        let streams =
            Outputs::start(matches!(inv.stdin, StdinPlan::Tty), &self.scratch).map_err(io_fail)?;
        let stdin = match std::mem::replace(&mut inv.stdin, StdinPlan::Null) {
            StdinPlan::Null => Stdio::Null,
            other => {
                inv.stdin = other;
                streams.stdin.map_or(Stdio::Inherit, Stdio::Fd)
            }
        };
        let spec = Spec {
            argv: req.argv.clone(),
            cwd: req.start_dir.clone().unwrap_or_else(|| inv.cwd.clone()),
            env: inv.env.clone(),
            writable_roots: inv.roots.clone(),
            scratch_dir: self.scratch.clone(),
            read_only: vec![self.home.root().to_path_buf()],
            network: req.network,
            stdin,
            stdout: Stdio::Fd(streams.stdout),
            stderr: Stdio::Fd(streams.stderr),
        };
        let report = shark_sandbox::run(spec).map_err(sandbox_fail);
        let (out_file, err_file) = streams.copiers.finish().map_err(io_fail)?;
        let report = report?;
        let dump = match req.stateful {
            true => report.read_private(state::DUMP_NAME),
            false => None,
        };
        let state = dump.as_deref().and_then(state::dump::parse);
        let state_blob = match dump.as_ref().filter(|_| state.is_some()) {
            Some(dump) => Some(
                self.store
                    .put_bytes(&state::encode_blob(dump))
                    .map_err(|e| CliError::failed("cannot store the shell state", e))?
                    .digest,
            ),
            None => None,
        };
        let record = self.record_run(
            req,
            &inv,
            started,
            &report,
            state_blob,
            [&out_file, &err_file],
            reason,
        );
        drop((out_file, err_file)); // removes capture files, if there were any
        let run = record?;
        report
            .apply()
            .map_err(|e| CliError::failed("cannot apply the command's changes", e))?;
        Ok(Outcome {
            run,
            code: report.status.code(),
            reused: None,
            took: report.wall,
            state,
        })
    }

    /// Stores streams and outputs, computes inputs, and records the run in one transaction.
    #[allow(clippy::too_many_arguments)]
    fn record_run(
        &mut self,
        req: &Request,
        inv: &Invocation,
        started: SystemTime,
        report: &Report,
        shell_state: Option<Digest>,
        streams: [&Captured; 2],
        reason: Reason,
    ) -> Result<RunId, CliError> {
        let put = |c: &Captured| c.put(&self.store);
        let stdout = put(streams[0]).map_err(|e| CliError::failed("cannot store stdout", e))?;
        let stderr = put(streams[1]).map_err(|e| CliError::failed("cannot store stderr", e))?;
        let mut ignore = vec![
            PathBuf::from("/proc"),
            PathBuf::from("/sys"),
            PathBuf::from("/dev"),
            self.home.root().to_path_buf(),
        ];
        ignore.push(self.scratch.clone());
        let observed = inputs::observe(&report.accesses, &ignore, &self.cache);
        let mut inputs_list = observed.inputs;
        if let Some(d) = inv.stdin.digest() {
            inputs_list.push(Input {
                path: "<stdin>".into(),
                kind: InputKind::Stdin,
                digest: Some(d),
                mode: None,
            });
        }
        let (outputs, outputs_faithful) = outputs::record(&report.changes, &self.store)
            .map_err(|e| CliError::failed("cannot store the command's outputs", e))?;
        let sources_faithful = self.keep_sources(&inputs_list, &inv.roots)?;
        // An earlier run with this weak key stored the same environment (the key includes
        // its digest); asking the database is cheaper than looking in the store.
        let env_stored = self.db.has_key(&inv.key).unwrap_or(false);
        if !env_stored {
            self.store
                .put_bytes(&key::env_blob(&inv.key_env))
                .map_err(|e| CliError::failed("cannot store the environment", e))?;
        }
        let status = &report.status;
        let mut run = self.new_run(req, inv, started);
        run.duration = report.wall;
        (run.exit_code, run.signal) = match *status {
            Status::Exited(code) => (Some(code), None),
            Status::Signaled(signal) => (None, Some(signal)),
        };
        run.user_time = report.rusage.user;
        run.sys_time = report.rusage.system;
        run.max_rss_kib = report.rusage.max_rss_kib;
        run.stdout = Some(stdout);
        run.stderr = Some(stderr);
        // A run that read the terminal depends on what was typed, which no input records; one
        // that read the lineage database (shark's queries, run from shark's own shell)
        // depends on what was recorded, which no input records either.
        let db = self.home.db_path().into_os_string();
        let read_lineage = report.accesses.iter().any(|a| {
            let path = a.path.as_os_str().as_encoded_bytes();
            path.starts_with(db.as_encoded_bytes())
        });
        run.reusable = status.success()
            && (!req.network || req.reuse_network)
            && !report.terminal_input
            && !read_lineage
            && !matches!(inv.stdin, StdinPlan::Device)
            && observed.faithful
            && outputs_faithful
            && sources_faithful;
        run.reason = Some(reason.to_json());
        run.shell_state = shell_state;
        run.inputs = inputs_list;
        run.outputs = outputs;
        run.processes = report
            .processes
            .iter()
            .map(|p| ProcessRecord {
                pid: p.pid,
                argv: p
                    .argv
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            })
            .collect();
        // Accesses are recorded at the paths they reached, like the inputs, so that what a
        // run did to an input (`Db::accessed`) is found whatever name the program used.
        run.accesses = report
            .accesses
            .iter()
            .map(|a| {
                let at = observed.resolved.get(&a.path).unwrap_or(&a.path);
                (
                    a.pid,
                    at.to_string_lossy().into_owned(),
                    format!("{:?}", a.kind),
                )
            })
            .collect();
        // Every blob the record names must be on disk before the record is.
        self.store
            .sync()
            .map_err(|e| CliError::failed("cannot store the command's outputs", e))?;
        self.db
            .record(&run)
            .map_err(|e| CliError::failed("cannot record the run", e))
    }
}

impl Executor {
    /// Stores the content of the files a run read under the writable roots (the user's data,
    /// not system files) that the store does not hold yet, so that `shark replay` can
    /// materialise them later. False if one changed since it was hashed: such a run is
    /// recorded but not reused.
    fn keep_sources(&self, inputs: &[Input], roots: &[PathBuf]) -> Result<bool, CliError> {
        let mut faithful = true;
        for input in inputs {
            let (InputKind::File, Some(digest)) = (input.kind, input.digest) else {
                continue;
            };
            let path = Path::new(&input.path);
            if !roots.iter().any(|r| path.starts_with(r)) || self.store.contains(&digest) {
                continue;
            }
            match self.store.put_file(path) {
                Ok(put) if put.digest == digest => {}
                Ok(put) => {
                    // The file changed after the command read it; keep what is there now
                    // (it is a valid blob) but do not trust the run.
                    let _ = put;
                    faithful = false;
                }
                Err(_) => faithful = false,
            }
        }
        Ok(faithful)
    }
}

/// Removes what killed shark processes left in the scratch directory: sandbox upper layers
/// (`.shark-sandbox-PID-N`) and stream captures (`.shark-stream-PID-...`) of processes that
/// no longer exist. Best effort: anything that cannot be removed is left for next time.
fn sweep_scratch(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let pid = [
            "shark-sandbox-",
            ".shark-sandbox-",
            ".shark-stream-",
            ".shark-step-",
        ]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            let _ = make_removable(&path);
            let _ = std::fs::remove_dir_all(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Overlay work directories can hold entries without write permission; open them up so that
/// the sweep can delete them.
fn make_removable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700));
            let _ = make_removable(&path);
        }
    }
    Ok(())
}

/// The writable roots: those listed in `SHARK_WRITABLE` (colon-separated absolute paths), else
/// `$HOME`, the current directory and `/tmp`; nested ones are merged into the outermost.
pub fn writable_roots(cwd: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    match std::env::var_os("SHARK_WRITABLE").filter(|v| !v.is_empty()) {
        Some(list) => roots.extend(std::env::split_paths(&list).filter(|p| p.is_absolute())),
        None => {
            if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                roots.push(PathBuf::from(home));
            }
            roots.push(cwd.to_path_buf());
            roots.push(PathBuf::from("/tmp"));
        }
    }
    roots.retain(|r| r.is_dir() && r != Path::new("/"));
    roots.sort();
    roots.dedup();
    let all = roots.clone();
    roots.retain(|r| !all.iter().any(|o| o != r && r.starts_with(o)));
    roots
}

fn io_fail(e: std::io::Error) -> CliError {
    CliError::failed("cannot capture the command's output", e)
}

fn sandbox_fail(e: shark_sandbox::SandboxError) -> CliError {
    let message = match &e {
        shark_sandbox::SandboxError::InvalidSpec {
            reason: shark_sandbox::InvalidSpec::MountInsideRoot { .. },
        } => {
            "cannot run the command in the sandbox (SHARK_WRITABLE=DIR:DIR... chooses the \
              writable directories)"
        }
        _ => "cannot run the command in the sandbox",
    };
    CliError::failed(message, e)
}
